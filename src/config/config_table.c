/*
 * THE table of runnerd.yaml: every key with its place in the structs, type,
 * default, range and check, in the order config_print() and docs/config.md
 * follow; the name lists of its enums and the provider types this build
 * has; and the lookups into the table. Adding a key is one entry here (and
 * its line in docs/config.md). It must never hold logic beyond lookups: what
 * a value's text means is config_value.c's, what a check accepts is
 * config_check.c's.
 */
#include "util/common.h"
#include "config/config_internal.h"

/* Enums are stored through an int *: make sure they are int-sized. */
_Static_assert(sizeof(enum arch) == sizeof(int), "enum arch is not int-sized");
_Static_assert(sizeof(enum queue_kind) == sizeof(int), "enum queue_kind is not int-sized");
_Static_assert(sizeof(enum answer_after) == sizeof(int), "enum answer_after is not int-sized");
_Static_assert(sizeof(enum lxd_type) == sizeof(int), "enum lxd_type is not int-sized");
_Static_assert(sizeof(enum lxd_bootstrap) == sizeof(int), "enum lxd_bootstrap is not int-sized");
_Static_assert(sizeof(enum runner_storage) == sizeof(int), "enum runner_storage is not int-sized");
/* A map item's key is its struct's first member (free_scope, config_scope_prefix). */
_Static_assert(offsetof(struct config_provider, name) == 0, "a provider's name is not first");

#define DURATION_MAX (365LL * 86400)
#define SIZE_MIN     (1LL << 20)
/* The saved logs of one instance at most (metrics.h's METRICS_LOG_BYTES_MAX) */
#define LOGS_SIZE_MIN  (64LL << 20)
#define SIZE_MAX_BYTES (1LL << 50)
/* A tmpfs for _work smaller than this holds no checkout worth the name. */
#define STORAGE_SIZE_MIN (16LL << 20)
#define PROVIDERS_MAX    64
/* A workflow_job delivery is a few KiB; GitHub caps payloads at 25 MB. */
#define WEBHOOK_BODY_MIN (64LL << 10)
#define WEBHOOK_BODY_MAX (25LL << 20)

/* A type is here once its keys are in the table below (and its backend is built). */
const char *const config_provider_types[] = {"local", "lxd", "openstack", NULL};
/* Provider types whose instances start from an image the flavor names. */
const char *const config_image_types[] = {"lxd", "openstack", NULL};
/* Provider types that cannot be implied: they need keys of their own. */
const char *const config_explicit_types[] = {"openstack", NULL};
static const char *const os_interface_names[] = {"public", "internal", "admin", NULL};
const char *const config_lxd_type_names[] = {"container", "virtual-machine", NULL};
static const char *const lxd_bootstrap_names[] = {"cloud-init", "exec", NULL};
static const char *const queue_kind_names[] = {"sqlite", "amqp", NULL};
static const char *const answer_after_names[] = {"flush", "write", NULL};
static const char *const runner_storage_names[] = {"disk", "memory", NULL};

#define R(m)    offsetof(struct config, m)
#define FL(m)   offsetof(struct config_flavor, m)
#define SSH(m)  offsetof(struct config_ssh_debug, m)
#define SNAP(m) offsetof(struct config_snap, m)
#define EXE(m)  offsetof(struct config_executable, m)
#define PV(m)   offsetof(struct config_provider, m)
#define SECTION(p, ...)                                                                            \
	{                                                                                          \
		.path = p, .type = CONFIG_T_SECTION, __VA_ARGS__                                   \
	}
#define DURATION(def_) .def = def_, .min = 1, .max = DURATION_MAX

/*
 * Order matters: it is the order of config_print() and of docs/config.md.
 * (Kept one entry per line or two by hand: a table reads better as a table.)
 */
/* clang-format off */
const struct config_field config_fields[] = {
	SECTION("github", .flags = CONFIG_F_REQUIRED),
	{.path = "github.api_url", .type = CONFIG_T_STR, .off = R(github.api_url),
	 .def = "https://api.github.com", .flags = CONFIG_F_URL_PASSWORD, .check = config_check_api_url},
	{.path = "github.path", .type = CONFIG_T_STR, .off = R(github.path),
	 .flags = CONFIG_F_REQUIRED, .check = config_check_github_path},
	{.path = "github.token_file", .type = CONFIG_T_PATH, .off = R(github.token_file),
	 .flags = CONFIG_F_SECRET_FILE, .aux = R(github.token)},
	{.path = "github.token_env", .type = CONFIG_T_STR, .off = R(github.token_env),
	 .flags = CONFIG_F_SECRET_ENV, .aux = R(github.token), .check = config_check_env_name_opt},
	SECTION("github.app", .flags = CONFIG_F_OPTIONAL, .aux = R(github.use_app)),
	{.path = "github.app.app_id", .type = CONFIG_T_INT, .off = R(github.app.app_id),
	 .flags = CONFIG_F_REQUIRED, .min = 1, .max = INT64_MAX},
	{.path = "github.app.installation_id", .type = CONFIG_T_INT,
	 .off = R(github.app.installation_id), .flags = CONFIG_F_REQUIRED, .min = 1,
	 .max = INT64_MAX},
	{.path = "github.app.private_key_file", .type = CONFIG_T_PATH,
	 .off = R(github.app.private_key_file),
	 .flags = CONFIG_F_REQUIRED | CONFIG_F_NONEMPTY | CONFIG_F_SECRET_FILE,
	 .aux = R(github.app.private_key)},
	{.path = "github.runner_group", .type = CONFIG_T_STR, .off = R(github.runner_group),
	 .def = "default", .flags = CONFIG_F_NONEMPTY},
	{.path = "github.ca_file", .type = CONFIG_T_PATH, .off = R(github.ca_file),
	 .flags = CONFIG_F_READABLE},
	{.path = "github.proxy", .type = CONFIG_T_STR, .off = R(github.proxy),
	 .flags = CONFIG_F_URL_PASSWORD, .check = config_check_proxy_opt},
	{.path = "github.connect_timeout", .type = CONFIG_T_DURATION,
	 .off = R(github.connect_timeout), DURATION("10s")},
	{.path = "github.request_timeout", .type = CONFIG_T_DURATION,
	 .off = R(github.request_timeout), DURATION("30s")},

	SECTION("manager", .flags = CONFIG_F_REQUIRED),
	{.path = "manager.name", .type = CONFIG_T_STR, .off = R(manager.name),
	 .flags = CONFIG_F_REQUIRED, .check = config_check_manager_name},
	{.path = "manager.state_dir", .type = CONFIG_T_PATH, .off = R(manager.state_dir),
	 .def = "/var/lib/runnerd", .flags = CONFIG_F_NONEMPTY},
	{.path = "manager.log_dir", .type = CONFIG_T_PATH, .off = R(manager.log_dir),
	 .def = "/var/log/runnerd", .flags = CONFIG_F_NONEMPTY},
	{.path = "manager.log_retention", .type = CONFIG_T_DURATION,
	 .off = R(manager.log_retention), DURATION("7d")},
	{.path = "manager.logs_max_size", .type = CONFIG_T_SIZE, .off = R(manager.logs_max_size),
	 .def = "1GiB", .min = LOGS_SIZE_MIN, .max = SIZE_MAX_BYTES},
	{.path = "manager.metrics_retention", .type = CONFIG_T_DURATION,
	 .off = R(manager.metrics_retention), DURATION("7d")},
	{.path = "manager.reconcile_interval", .type = CONFIG_T_DURATION,
	 .off = R(manager.reconcile_interval), DURATION("5m")},
	{.path = "manager.bootstrap_timeout", .type = CONFIG_T_DURATION,
	 .off = R(manager.bootstrap_timeout), DURATION("20m")},
	{.path = "manager.job_timeout", .type = CONFIG_T_DURATION, .off = R(manager.job_timeout),
	 DURATION("6h")},
	{.path = "manager.create_concurrency", .type = CONFIG_T_INT,
	 .off = R(manager.create_concurrency), .def = "10", .min = 1, .max = 100},

	{.path = "flavors", .type = CONFIG_T_LIST, .off = R(flavors), .aux = R(n_flavors),
	 .flags = CONFIG_F_REQUIRED, .min = 1, .max = 1000, .elem = CONFIG_SCOPE_FLAVOR,
	 .elem_size = sizeof(struct config_flavor)},
	{.scope = CONFIG_SCOPE_FLAVOR, .path = "name", .type = CONFIG_T_STR, .off = FL(name),
	 .flags = CONFIG_F_REQUIRED, .check = config_check_flavor_name},
	{.scope = CONFIG_SCOPE_FLAVOR, .path = "provider", .type = CONFIG_T_STR,
	 .off = FL(provider), .def = "local", .check = config_check_provider_name},
	{.scope = CONFIG_SCOPE_FLAVOR, .path = "image", .type = CONFIG_T_STR, .off = FL(image)},
	{.scope = CONFIG_SCOPE_FLAVOR, .path = "arch", .type = CONFIG_T_ENUM, .off = FL(arch),
	 .def = "x64", .names = words_arch_names},
	{.scope = CONFIG_SCOPE_FLAVOR, .path = "labels", .type = CONFIG_T_STRV, .off = FL(labels),
	 .check = config_check_label},
	{.scope = CONFIG_SCOPE_FLAVOR, .path = "min_idle", .type = CONFIG_T_INT,
	 .off = FL(min_idle), .def = "0", .min = 0, .max = 10000},
	{.scope = CONFIG_SCOPE_FLAVOR, .path = "max", .type = CONFIG_T_INT, .off = FL(max),
	 .def = "1", .min = 1, .max = 10000},
	{.scope = CONFIG_SCOPE_FLAVOR, .path = "resources", .type = CONFIG_T_SECTION},
	{.scope = CONFIG_SCOPE_FLAVOR, .path = "resources.vcpu", .type = CONFIG_T_INT,
	 .off = FL(resources.vcpu), .def = "2", .min = 1, .max = 1024},
	{.scope = CONFIG_SCOPE_FLAVOR, .path = "resources.memory", .type = CONFIG_T_SIZE,
	 .off = FL(resources.memory), .def = "7GiB", .min = SIZE_MIN, .max = SIZE_MAX_BYTES},
	{.scope = CONFIG_SCOPE_FLAVOR, .path = "resources.disk", .type = CONFIG_T_SIZE,
	 .off = FL(resources.disk), .def = "10GiB", .min = SIZE_MIN, .max = SIZE_MAX_BYTES},

	/* Each backend's keys and defaults live here and nowhere else. */
	{.path = "providers", .type = CONFIG_T_MAP, .off = R(providers), .aux = R(n_providers),
	 .min = 0, .max = PROVIDERS_MAX, .elem = CONFIG_SCOPE_PROVIDER,
	 .elem_size = sizeof(struct config_provider)},
	{.scope = CONFIG_SCOPE_PROVIDER, .path = "type", .type = CONFIG_T_STR, .off = PV(type),
	 .names = config_provider_types},
	{.scope = CONFIG_SCOPE_PROVIDER, .path = "concurrency", .type = CONFIG_T_INT,
	 .off = PV(concurrency), .def = "10", .min = 1, .max = 100},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "local", .path = "work_dir", .type = CONFIG_T_PATH,
	 .off = PV(local.work_dir), .def = "/var/lib/runnerd/local", .flags = CONFIG_F_NONEMPTY},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "local", .path = "user", .type = CONFIG_T_STR,
	 .off = PV(local.user), .def = "runnerd-runner", .check = config_check_user},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "local", .path = "uid_range", .type = CONFIG_T_STR,
	 .off = PV(local.uid_range), .def = "2000000000-2000065535", .check = config_check_uid_range},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "local", .path = "allow_weak_isolation",
	 .type = CONFIG_T_BOOL, .off = PV(local.allow_weak_isolation), .def = "false"},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "local", .path = "stop_timeout",
	 .type = CONFIG_T_DURATION, .off = PV(local.stop_timeout), DURATION("10s")},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "lxd", .path = "socket", .type = CONFIG_T_PATH,
	 .off = PV(lxd.socket), .def = "/var/lib/lxd/unix.socket", .flags = CONFIG_F_NONEMPTY},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "lxd", .path = "project", .type = CONFIG_T_STR,
	 .off = PV(lxd.project), .def = "default", .flags = CONFIG_F_NONEMPTY},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "lxd", .path = "network", .type = CONFIG_T_STR,
	 .off = PV(lxd.network), .def = "lxdbr0", .flags = CONFIG_F_NONEMPTY},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "lxd", .path = "storage_pool", .type = CONFIG_T_STR,
	 .off = PV(lxd.storage_pool), .def = "default", .flags = CONFIG_F_NONEMPTY},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "lxd", .path = "profiles", .type = CONFIG_T_STRV,
	 .off = PV(lxd.profiles), .def = "default", .check = config_check_nonempty},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "lxd", .path = "instance_type",
	 .type = CONFIG_T_ENUM, .off = PV(lxd.type), .def = "container", .names = config_lxd_type_names},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "lxd", .path = "bootstrap", .type = CONFIG_T_ENUM,
	 .off = PV(lxd.bootstrap), .def = "cloud-init", .names = lxd_bootstrap_names},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "lxd", .path = "stop_timeout",
	 .type = CONFIG_T_DURATION, .off = PV(lxd.stop_timeout), DURATION("10s")},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "lxd", .path = "operation_timeout",
	 .type = CONFIG_T_DURATION, .off = PV(lxd.operation_timeout), DURATION("2m")},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "openstack", .path = "clouds_yaml",
	 .type = CONFIG_T_PATH, .off = PV(openstack.clouds_yaml),
	 .flags = CONFIG_F_REQUIRED | CONFIG_F_NONEMPTY | CONFIG_F_READABLE},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "openstack", .path = "cloud", .type = CONFIG_T_STR,
	 .off = PV(openstack.cloud), .flags = CONFIG_F_REQUIRED | CONFIG_F_NONEMPTY},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "openstack", .path = "region", .type = CONFIG_T_STR,
	 .off = PV(openstack.region), .check = config_check_os_name_opt},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "openstack", .path = "interface",
	 .type = CONFIG_T_STR, .off = PV(openstack.interface), .def = "public",
	 .names = os_interface_names},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "openstack", .path = "ca_file",
	 .type = CONFIG_T_PATH, .off = PV(openstack.ca_file), .flags = CONFIG_F_READABLE},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "openstack", .path = "flavor", .type = CONFIG_T_STR,
	 .off = PV(openstack.flavor), .flags = CONFIG_F_REQUIRED, .check = config_check_os_name},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "openstack", .path = "network", .type = CONFIG_T_STR,
	 .off = PV(openstack.network), .flags = CONFIG_F_REQUIRED, .check = config_check_os_name},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "openstack", .path = "security_group",
	 .type = CONFIG_T_STR, .off = PV(openstack.security_group),
	 .check = config_check_os_name_opt},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "openstack", .path = "ssh_key",
	 .type = CONFIG_T_PATH, .off = PV(openstack.ssh_key), .flags = CONFIG_F_READABLE},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "openstack", .path = "config_drive",
	 .type = CONFIG_T_BOOL, .off = PV(openstack.config_drive), .def = "false"},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "openstack", .path = "secret_url",
	 .type = CONFIG_T_STR, .off = PV(openstack.secret_url), .flags = CONFIG_F_URL_PASSWORD,
	 .check = config_check_http_url_opt},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "openstack", .path = "request_timeout",
	 .type = CONFIG_T_DURATION, .off = PV(openstack.request_timeout), DURATION("30s")},

	SECTION("runner"),
	{.path = "runner.jit", .type = CONFIG_T_BOOL, .off = R(runner.jit), .def = "true"},
	{.path = "runner.version_check_interval", .type = CONFIG_T_DURATION,
	 .off = R(runner.version_check_interval), .def = "1h", .min = 1, .max = 86400},
	{.path = "runner.image_runner_max_behind", .type = CONFIG_T_DURATION,
	 .off = R(runner.image_runner_max_behind), .def = "21d", .min = 0, .max = 30 * 86400},
	SECTION("runner.proxy"),
	{.path = "runner.proxy.http", .type = CONFIG_T_STR, .off = R(runner.proxy.http),
	 .flags = CONFIG_F_URL_PASSWORD, .check = config_check_proxy_opt},
	{.path = "runner.proxy.https", .type = CONFIG_T_STR, .off = R(runner.proxy.https),
	 .flags = CONFIG_F_URL_PASSWORD, .check = config_check_proxy_opt},
	{.path = "runner.proxy.no_proxy", .type = CONFIG_T_STR, .off = R(runner.proxy.no_proxy)},
	{.path = "runner.proxy.aproxy", .type = CONFIG_T_BOOL, .off = R(runner.proxy.aproxy),
	 .def = "false"},
	{.path = "runner.proxy.aproxy_address", .type = CONFIG_T_STR,
	 .off = R(runner.proxy.aproxy_address), .check = config_check_ipv4_port_opt},
	{.path = "runner.proxy.aproxy_ports", .type = CONFIG_T_STRV,
	 .off = R(runner.proxy.aproxy_ports), .check = config_check_port},
	{.path = "runner.proxy.aproxy_exclude", .type = CONFIG_T_STRV,
	 .off = R(runner.proxy.aproxy_exclude), .check = config_check_cidr4},
	{.path = "runner.dockerhub_mirror", .type = CONFIG_T_STR,
	 .off = R(runner.dockerhub_mirror), .flags = CONFIG_F_URL_PASSWORD,
	 .check = config_check_https_url_opt},
	{.path = "runner.ssh_debug", .type = CONFIG_T_LIST, .off = R(runner.ssh_debug),
	 .aux = R(runner.n_ssh_debug), .min = 0, .max = 100, .elem = CONFIG_SCOPE_SSH_DEBUG,
	 .elem_size = sizeof(struct config_ssh_debug)},
	{.scope = CONFIG_SCOPE_SSH_DEBUG, .path = "host", .type = CONFIG_T_STR, .off = SSH(host),
	 .flags = CONFIG_F_REQUIRED | CONFIG_F_NONEMPTY},
	{.scope = CONFIG_SCOPE_SSH_DEBUG, .path = "port", .type = CONFIG_T_INT, .off = SSH(port),
	 .def = "10022", .min = 1, .max = 65535},
	{.scope = CONFIG_SCOPE_SSH_DEBUG, .path = "rsa_fingerprint", .type = CONFIG_T_STR,
	 .off = SSH(rsa_fingerprint)},
	{.scope = CONFIG_SCOPE_SSH_DEBUG, .path = "ed25519_fingerprint", .type = CONFIG_T_STR,
	 .off = SSH(ed25519_fingerprint)},
	SECTION("runner.install"),
	{.path = "runner.install.snaps", .type = CONFIG_T_LIST, .off = R(runner.snaps),
	 .aux = R(runner.n_snaps), .min = 0, .max = 50, .elem = CONFIG_SCOPE_SNAP,
	 .elem_size = sizeof(struct config_snap)},
	{.scope = CONFIG_SCOPE_SNAP, .path = "name", .type = CONFIG_T_STR, .off = SNAP(name),
	 .flags = CONFIG_F_REQUIRED, .check = config_check_snap_name},
	{.scope = CONFIG_SCOPE_SNAP, .path = "channel", .type = CONFIG_T_STR, .off = SNAP(channel),
	 .def = "latest/stable", .check = config_check_snap_channel},
	{.scope = CONFIG_SCOPE_SNAP, .path = "revision", .type = CONFIG_T_INT, .off = SNAP(revision),
	 .def = "0", .min = 0, .max = 1000000000},
	{.path = "runner.install.executables", .type = CONFIG_T_LIST, .off = R(runner.executables),
	 .aux = R(runner.n_executables), .min = 0, .max = 50, .elem = CONFIG_SCOPE_EXECUTABLE,
	 .elem_size = sizeof(struct config_executable)},
	{.scope = CONFIG_SCOPE_EXECUTABLE, .path = "url", .type = CONFIG_T_STR, .off = EXE(url),
	 .flags = CONFIG_F_REQUIRED, .check = config_check_executable_url},
	{.scope = CONFIG_SCOPE_EXECUTABLE, .path = "cmd", .type = CONFIG_T_STR, .off = EXE(cmd),
	 .flags = CONFIG_F_REQUIRED, .check = config_check_command_name},
	{.scope = CONFIG_SCOPE_EXECUTABLE, .path = "sha256", .type = CONFIG_T_STR,
	 .off = EXE(sha256), .flags = CONFIG_F_REQUIRED, .check = config_check_sha256},
	{.path = "runner.pre_job_script", .type = CONFIG_T_STR, .off = R(runner.pre_job_script),
	 .flags = CONFIG_F_LINES},
	{.path = "runner.storage", .type = CONFIG_T_ENUM, .off = R(runner.storage), .def = "disk",
	 .names = runner_storage_names},
	{.path = "runner.storage_size", .type = CONFIG_T_SIZE, .off = R(runner.storage_size),
	 .def = "4GiB", .min = STORAGE_SIZE_MIN, .max = SIZE_MAX_BYTES},
	SECTION("runner.repo_policy_compliance"),
	{.path = "runner.repo_policy_compliance.url", .type = CONFIG_T_STR,
	 .off = R(runner.repo_policy_url), .flags = CONFIG_F_URL_PASSWORD,
	 .check = config_check_http_url_opt},
	{.path = "runner.repo_policy_compliance.token_file", .type = CONFIG_T_PATH,
	 .off = R(runner.repo_policy_token_file), .flags = CONFIG_F_SECRET_FILE,
	 .aux = R(runner.repo_policy_token)},
	{.path = "runner.denylist", .type = CONFIG_T_STRV, .off = R(runner.denylist),
	 .check = config_check_cidr},

	SECTION("webhook"),
	{.path = "webhook.listen", .type = CONFIG_T_STR, .off = R(webhook.listen),
	 .def = "127.0.0.1:8080", .check = config_check_listen_opt},
	{.path = "webhook.secret_file", .type = CONFIG_T_PATH, .off = R(webhook.secret_file),
	 .flags = CONFIG_F_SECRET_FILE, .aux = R(webhook.secret)},
	{.path = "webhook.secret_env", .type = CONFIG_T_STR, .off = R(webhook.secret_env),
	 .flags = CONFIG_F_SECRET_ENV, .aux = R(webhook.secret), .check = config_check_env_name_opt},
	{.path = "webhook.max_body", .type = CONFIG_T_SIZE, .off = R(webhook.max_body),
	 .def = "1MiB", .min = WEBHOOK_BODY_MIN, .max = WEBHOOK_BODY_MAX},
	{.path = "webhook.max_connections", .type = CONFIG_T_INT,
	 .off = R(webhook.max_connections), .def = "64", .min = 4, .max = 4096},
	{.path = "webhook.max_connections_per_address", .type = CONFIG_T_INT,
	 .off = R(webhook.max_connections_per_address), .def = "0", .min = 0, .max = 4096},
	{.path = "webhook.hook_id", .type = CONFIG_T_INT, .off = R(webhook.hook_id), .def = "0",
	 .min = 0, .max = INT64_MAX},
	{.path = "webhook.backfill_interval", .type = CONFIG_T_DURATION,
	 .off = R(webhook.backfill_interval), DURATION("2m")},
	{.path = "webhook.answer_after", .type = CONFIG_T_ENUM, .off = R(webhook.answer_after),
	 .def = "flush", .names = answer_after_names},

	SECTION("queue"),
	{.path = "queue.kind", .type = CONFIG_T_ENUM, .off = R(queue.kind), .def = "sqlite",
	 .names = queue_kind_names},
	{.path = "queue.uri_file", .type = CONFIG_T_PATH, .off = R(queue.uri_file),
	 .flags = CONFIG_F_SECRET_FILE, .aux = R(queue.uri)},
	{.path = "queue.uri_env", .type = CONFIG_T_STR, .off = R(queue.uri_env),
	 .flags = CONFIG_F_SECRET_ENV, .aux = R(queue.uri), .check = config_check_env_name_opt},
	{.path = "queue.prefix", .type = CONFIG_T_STR, .off = R(queue.prefix), .def = "runnerd",
	 .check = config_check_queue_prefix},
	{.path = "queue.ca_file", .type = CONFIG_T_PATH, .off = R(queue.ca_file),
	 .flags = CONFIG_F_READABLE},
	{.path = "queue.recheck_interval", .type = CONFIG_T_DURATION,
	 .off = R(queue.recheck_interval), DURATION("2m")},
	{.path = "queue.max_attempts", .type = CONFIG_T_INT, .off = R(queue.max_attempts),
	 .def = "5", .min = 1, .max = 100},

	SECTION("metrics"),
	{.path = "metrics.events_log", .type = CONFIG_T_PATH, .off = R(metrics.events_log),
	 .def = "/var/log/runnerd/metrics.log", .flags = CONFIG_F_NONEMPTY},
	{.path = "metrics.listen", .type = CONFIG_T_STR, .off = R(metrics.listen),
	 .def = "127.0.0.1:9464", .check = config_check_listen_opt},
};
/* clang-format on */
const size_t config_n_fields = ARRAY_SIZE(config_fields);

/* ---- lookups ---- */

const struct config_field *config_field_find(enum config_scope scope, const char *path)
{
	for (size_t i = 0; i < config_n_fields; i++)
		if (config_fields[i].scope == scope && strcmp(config_fields[i].path, path) == 0)
			return &config_fields[i];
	return NULL;
}

/* The key of scope in base for this kind of item (NULL: none). */
const struct config_field *config_field_find_kind(enum config_scope scope, const char *path,
                                                  const char *kind)
{
	for (size_t i = 0; i < config_n_fields; i++)
		if (config_fields[i].scope == scope && strcmp(config_fields[i].path, path) == 0 &&
		    config_field_applies(&config_fields[i], kind))
			return &config_fields[i];
	return NULL;
}

/* The section a field sits in (NULL at the top of its scope). */
const struct config_field *config_field_parent(const struct config_field *f)
{
	const char *dot = strrchr(f->path, '.');
	char p[128];

	if (!dot || (size_t)(dot - f->path) >= sizeof(p))
		return NULL;
	memcpy(p, f->path, (size_t)(dot - f->path));
	p[dot - f->path] = '\0';
	return config_field_find(f->scope, p);
}

const struct config_field *config_field_list_of(enum config_scope scope)
{
	for (size_t i = 0; i < config_n_fields; i++)
		if ((config_fields[i].type == CONFIG_T_LIST ||
		     config_fields[i].type == CONFIG_T_MAP) &&
		    config_fields[i].elem == scope)
			return &config_fields[i];
	return NULL;
}

bool config_field_applies(const struct config_field *f, const char *kind)
{
	return !f->kind || (kind && strcmp(f->kind, kind) == 0);
}

const char *config_scope_kind(enum config_scope scope, const void *base)
{
	if (scope != CONFIG_SCOPE_PROVIDER)
		return NULL;
	return ((const struct config_provider *)base)->type;
}

bool config_field_is_provider_type(const struct config_field *f)
{
	return f->scope == CONFIG_SCOPE_PROVIDER && f->off == PV(type);
}

size_t config_provider_type_count(void)
{
	size_t n = 0;
	while (config_provider_types[n])
		n++;
	return n;
}

int config_name_index(const char *const *names, const char *s)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

void config_names_list(const char *const *names, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; names[i] && n < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? ", " : "", names[i]);
}
