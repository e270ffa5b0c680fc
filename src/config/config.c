/*
 * runnerd.yaml -> struct config. libfyaml builds the document (it knows the
 * line and column of every scalar); one table of fields (config_fields[])
 * says, for every key, where its value goes, its type, default and range;
 * a walk over the document fills the structs through that table, then the
 * file is validated as a whole. Every problem is collected and reported as
 * "FILE:LINE:COLUMN: key.path: message", in file order; what is worth fixing
 * but not fatal (a secret file others can read) is a warning, handed over in
 * the config as "FILE:LINE:COLUMN: warning: key.path: message".
 *
 * It must never stop at the first error, never put a secret (or any free
 * text that might be one) in a message, and never follow a YAML alias: an
 * alias can make the document a cycle, and nothing in this file needs one.
 */
#include "util/common.h"
#include "config/config.h"
#include "config/config_internal.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <libfyaml.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

/* Enums are stored through an int *: make sure they are int-sized. */
_Static_assert(sizeof(enum arch) == sizeof(int), "enum arch is not int-sized");
_Static_assert(sizeof(enum queue_kind) == sizeof(int), "enum queue_kind is not int-sized");
_Static_assert(sizeof(enum lxd_type) == sizeof(int), "enum lxd_type is not int-sized");
_Static_assert(sizeof(enum lxd_bootstrap) == sizeof(int), "enum lxd_bootstrap is not int-sized");
/* A map item's key is the first member of its struct (free_scope, scope_prefix). */
_Static_assert(offsetof(struct config_provider, name) == 0, "a provider's name is not first");

#define CONFIG_FILE_MAX (1024 * 1024) /* an operator's file; anything larger is a mistake */
#define ERRORS_MAX      200           /* enough to fix a file; bounded for a hostile one */
#define DURATION_MAX    (365LL * 86400)
#define SIZE_MIN        (1LL << 20)
#define SIZE_MAX_BYTES  (1LL << 50)
#define VALUE_SHOWN_MAX 40 /* how much of a (non-secret) value a message quotes */
#define PROVIDERS_MAX   64

/* ---- validators of single strings ---- */

static bool is_env_name(const char *s)
{
	if (!(isalpha((unsigned char)*s) || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return false;
	return true;
}

/* "scheme://host..." with a non-empty host and no whitespace. */
static bool url_ok(const char *s, const char *const *schemes)
{
	for (size_t i = 0; schemes[i]; i++) {
		size_t n = strlen(schemes[i]);
		if (strncmp(s, schemes[i], n) != 0)
			continue;
		if (s[n] == '\0' || s[n] == '/' || s[n] == ':' || s[n] == '?' || s[n] == '#')
			return false;
		for (const char *p = s + n; *p; p++)
			if (isspace((unsigned char)*p))
				return false;
		return true;
	}
	return false;
}

static const char *const http_schemes[] = {"https://", "http://", NULL};
static const char *const https_schemes[] = {"https://", NULL};
static const char *const proxy_schemes[] = {"http://",   "https://",   "socks4://", "socks4a://",
                                            "socks5://", "socks5h://", NULL};

static bool check_api_url(const char *s, char *msg, size_t cap)
{
	if (url_ok(s, http_schemes))
		return true;
	snprintf(msg, cap,
	         "must be an https:// URL (http:// is allowed for tests), such as "
	         "https://api.github.com or https://HOST/api/v3");
	return false;
}

static bool check_http_url_opt(const char *s, char *msg, size_t cap)
{
	if (!*s || url_ok(s, http_schemes))
		return true;
	snprintf(msg, cap, "must be an http:// or https:// URL");
	return false;
}

static bool check_https_url_opt(const char *s, char *msg, size_t cap)
{
	if (!*s || url_ok(s, https_schemes))
		return true;
	snprintf(msg, cap, "must be an https:// URL");
	return false;
}

/* A host after "scheme://" and any "user:password@" ("http://u:p@:1" has none). */
static bool url_has_host(const char *s)
{
	const char *start = strstr(s, "://"), *end, *host;

	if (!start)
		return false;
	start += 3;
	end = start + strcspn(start, "/?#");
	host = start;
	for (const char *p = start; p < end; p++)
		if (*p == '@')
			host = p + 1;
	return host < end && *host != ':';
}

static bool check_proxy_opt(const char *s, char *msg, size_t cap)
{
	if (!*s || (url_ok(s, proxy_schemes) && url_has_host(s)))
		return true;
	snprintf(msg, cap, "must be a proxy URL such as http://proxy.example:3128");
	return false;
}

static bool github_name_ok(const char *s, size_t n, size_t max, bool dots)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' ||
		      (dots && s[i] == '.')))
			return false;
	return true;
}

static bool check_github_path(const char *s, char *msg, size_t cap)
{
	const char *slash = strchr(s, '/');
	bool ok;

	if (slash)
		ok = github_name_ok(s, (size_t)(slash - s), 39, false) &&
		     github_name_ok(slash + 1, strlen(slash + 1), 100, true) &&
		     strcmp(slash + 1, ".") != 0 && strcmp(slash + 1, "..") != 0;
	else
		ok = github_name_ok(s, strlen(s), 39, false);
	if (!ok)
		snprintf(msg, cap, "must be OWNER/REPO or an organization name");
	return ok;
}

static bool check_env_name_opt(const char *s, char *msg, size_t cap)
{
	if (!*s || is_env_name(s))
		return true;
	snprintf(msg, cap, "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
	return false;
}

static bool check_manager_name(const char *s, char *msg, size_t cap)
{
	if (name_is_valid(s, MANAGER_NAME_MAX))
		return true;
	snprintf(msg, cap,
	         "must be 1-%d characters of a-z, 0-9 and '-', not starting or ending with '-'",
	         MANAGER_NAME_MAX);
	return false;
}

static bool check_flavor_name(const char *s, char *msg, size_t cap)
{
	if (name_is_valid(s, 63))
		return true;
	snprintf(msg, cap,
	         "must be 1-63 characters of a-z, 0-9 and '-', not starting or ending "
	         "with '-'");
	return false;
}

static bool check_provider_name(const char *s, char *msg, size_t cap)
{
	if (name_is_valid(s, PROVIDER_NAME_MAX - 1))
		return true;
	snprintf(msg, cap,
	         "must be 1-%d characters of a-z, 0-9 and '-', not starting or ending with '-'",
	         PROVIDER_NAME_MAX - 1);
	return false;
}

static bool check_user(const char *s, char *msg, size_t cap)
{
	size_t n = strlen(s);
	bool ok = n >= 1 && n <= 32 && (islower((unsigned char)s[0]) || s[0] == '_');

	for (size_t i = 1; ok && i < n; i++)
		ok = islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_' ||
		     s[i] == '-';
	if (!ok)
		snprintf(msg, cap,
		         "must be a user name ([a-z_][a-z0-9_-]*, at most 32 characters)");
	return ok;
}

static bool check_label(const char *s, char *msg, size_t cap)
{
	size_t n = strlen(s);

	if (n == 0 || n > 256) {
		snprintf(msg, cap, "must be 1-256 characters");
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (s[i] == ',' || isspace((unsigned char)s[i])) {
			snprintf(msg, cap, "must not contain ',' or whitespace");
			return false;
		}
	return true;
}

static bool check_nonempty(const char *s, char *msg, size_t cap)
{
	if (*s)
		return true;
	snprintf(msg, cap, "must not be empty");
	return false;
}

/* "HOST:PORT": an IPv4 address, [IPv6] or a host name, and a port 1-65535. */
static bool check_listen_opt(const char *s, char *msg, size_t cap)
{
	const char *colon = strrchr(s, ':');
	char host[256];
	unsigned char addr[sizeof(struct in6_addr)];
	int64_t port;
	size_t n;
	bool ok = false;

	if (!*s)
		return true;
	if (!colon || parse_int64(colon + 1, 1, 65535, &port) < 0)
		goto out;
	n = (size_t)(colon - s);
	if (n == 0 || n >= sizeof(host))
		goto out;
	memcpy(host, s, n);
	host[n] = '\0';
	if (host[0] == '[') {
		if (n < 3 || host[n - 1] != ']')
			goto out;
		host[n - 1] = '\0';
		ok = inet_pton(AF_INET6, host + 1, addr) == 1;
		goto out;
	}
	if (inet_pton(AF_INET, host, addr) == 1) {
		ok = true;
		goto out;
	}
	ok = true;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)host[i]) || host[i] == '-' || host[i] == '.'))
			ok = false;
out:
	if (!ok)
		snprintf(msg, cap,
		         "must be HOST:PORT (such as 127.0.0.1:8080 or [::1]:8080), or \"\" "
		         "to disable");
	return ok;
}

/* An IPv4 or IPv6 address with an optional /prefix in range. */
static bool check_cidr(const char *s, char *msg, size_t cap)
{
	const char *slash = strchr(s, '/');
	unsigned char addr[sizeof(struct in6_addr)];
	char ip[INET6_ADDRSTRLEN + 1];
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	int64_t prefix;
	int family;

	if (n == 0 || n >= sizeof(ip))
		goto bad;
	memcpy(ip, s, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, addr) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, ip, addr) == 1)
		family = AF_INET6;
	else
		goto bad;
	if (slash && parse_int64(slash + 1, 0, family == AF_INET ? 32 : 128, &prefix) < 0) {
		snprintf(msg, cap, "prefix length must be 0-%d", family == AF_INET ? 32 : 128);
		return false;
	}
	return true;
bad:
	snprintf(msg, cap,
	         "must be an IPv4 or IPv6 address or CIDR, such as 10.0.0.0/8 or fd00::/8");
	return false;
}

/* ---- the table ---- */

static const char *const arch_names[] = {"x64", "arm64", NULL};
/* A type is here once its keys are in the table below (and its backend is built). */
const char *const config_provider_types[] = {"local", "lxd", NULL};
static const char *const lxd_type_names[] = {"container", "virtual-machine", NULL};
static const char *const lxd_bootstrap_names[] = {"cloud-init", "exec", NULL};
static const char *const queue_kind_names[] = {"sqlite", "amqp", NULL};

#define R(m)   offsetof(struct config, m)
#define FL(m)  offsetof(struct config_flavor, m)
#define SSH(m) offsetof(struct config_ssh_debug, m)
#define PV(m)  offsetof(struct config_provider, m)
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
	 .def = "https://api.github.com", .flags = CONFIG_F_URL_PASSWORD, .check = check_api_url},
	{.path = "github.path", .type = CONFIG_T_STR, .off = R(github.path),
	 .flags = CONFIG_F_REQUIRED, .check = check_github_path},
	{.path = "github.token_file", .type = CONFIG_T_PATH, .off = R(github.token_file),
	 .flags = CONFIG_F_SECRET_FILE, .aux = R(github.token)},
	{.path = "github.token_env", .type = CONFIG_T_STR, .off = R(github.token_env),
	 .flags = CONFIG_F_SECRET_ENV, .aux = R(github.token), .check = check_env_name_opt},
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
	 .flags = CONFIG_F_URL_PASSWORD, .check = check_proxy_opt},
	{.path = "github.connect_timeout", .type = CONFIG_T_DURATION,
	 .off = R(github.connect_timeout), DURATION("10s")},
	{.path = "github.request_timeout", .type = CONFIG_T_DURATION,
	 .off = R(github.request_timeout), DURATION("30s")},

	SECTION("manager", .flags = CONFIG_F_REQUIRED),
	{.path = "manager.name", .type = CONFIG_T_STR, .off = R(manager.name),
	 .flags = CONFIG_F_REQUIRED, .check = check_manager_name},
	{.path = "manager.state_dir", .type = CONFIG_T_PATH, .off = R(manager.state_dir),
	 .def = "/var/lib/runnerd", .flags = CONFIG_F_NONEMPTY},
	{.path = "manager.log_dir", .type = CONFIG_T_PATH, .off = R(manager.log_dir),
	 .def = "/var/log/runnerd", .flags = CONFIG_F_NONEMPTY},
	{.path = "manager.log_retention", .type = CONFIG_T_DURATION,
	 .off = R(manager.log_retention), DURATION("7d")},
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
	 .flags = CONFIG_F_REQUIRED, .check = check_flavor_name},
	{.scope = CONFIG_SCOPE_FLAVOR, .path = "provider", .type = CONFIG_T_STR,
	 .off = FL(provider), .def = "local", .check = check_provider_name},
	{.scope = CONFIG_SCOPE_FLAVOR, .path = "image", .type = CONFIG_T_STR, .off = FL(image)},
	{.scope = CONFIG_SCOPE_FLAVOR, .path = "arch", .type = CONFIG_T_ENUM, .off = FL(arch),
	 .def = "x64", .names = arch_names},
	{.scope = CONFIG_SCOPE_FLAVOR, .path = "labels", .type = CONFIG_T_STRV, .off = FL(labels),
	 .check = check_label},
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
	 .off = PV(local.user), .def = "runnerd-runner", .check = check_user},
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
	 .off = PV(lxd.profiles), .def = "default", .check = check_nonempty},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "lxd", .path = "instance_type",
	 .type = CONFIG_T_ENUM, .off = PV(lxd.type), .def = "container", .names = lxd_type_names},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "lxd", .path = "bootstrap", .type = CONFIG_T_ENUM,
	 .off = PV(lxd.bootstrap), .def = "cloud-init", .names = lxd_bootstrap_names},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "lxd", .path = "stop_timeout",
	 .type = CONFIG_T_DURATION, .off = PV(lxd.stop_timeout), DURATION("10s")},
	{.scope = CONFIG_SCOPE_PROVIDER, .kind = "lxd", .path = "operation_timeout",
	 .type = CONFIG_T_DURATION, .off = PV(lxd.operation_timeout), DURATION("2m")},

	SECTION("runner"),
	{.path = "runner.jit", .type = CONFIG_T_BOOL, .off = R(runner.jit), .def = "true"},
	SECTION("runner.proxy"),
	{.path = "runner.proxy.http", .type = CONFIG_T_STR, .off = R(runner.proxy.http),
	 .flags = CONFIG_F_URL_PASSWORD, .check = check_proxy_opt},
	{.path = "runner.proxy.https", .type = CONFIG_T_STR, .off = R(runner.proxy.https),
	 .flags = CONFIG_F_URL_PASSWORD, .check = check_proxy_opt},
	{.path = "runner.proxy.no_proxy", .type = CONFIG_T_STR, .off = R(runner.proxy.no_proxy)},
	{.path = "runner.proxy.aproxy", .type = CONFIG_T_BOOL, .off = R(runner.proxy.aproxy),
	 .def = "false"},
	{.path = "runner.dockerhub_mirror", .type = CONFIG_T_STR,
	 .off = R(runner.dockerhub_mirror), .flags = CONFIG_F_URL_PASSWORD,
	 .check = check_https_url_opt},
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
	SECTION("runner.repo_policy_compliance"),
	{.path = "runner.repo_policy_compliance.url", .type = CONFIG_T_STR,
	 .off = R(runner.repo_policy_url), .flags = CONFIG_F_URL_PASSWORD,
	 .check = check_http_url_opt},
	{.path = "runner.repo_policy_compliance.token_file", .type = CONFIG_T_PATH,
	 .off = R(runner.repo_policy_token_file), .flags = CONFIG_F_SECRET_FILE,
	 .aux = R(runner.repo_policy_token)},
	{.path = "runner.denylist", .type = CONFIG_T_STRV, .off = R(runner.denylist),
	 .check = check_cidr},

	SECTION("webhook"),
	{.path = "webhook.listen", .type = CONFIG_T_STR, .off = R(webhook.listen),
	 .def = "127.0.0.1:8080", .check = check_listen_opt},
	{.path = "webhook.secret_file", .type = CONFIG_T_PATH, .off = R(webhook.secret_file),
	 .flags = CONFIG_F_SECRET_FILE, .aux = R(webhook.secret)},
	{.path = "webhook.secret_env", .type = CONFIG_T_STR, .off = R(webhook.secret_env),
	 .flags = CONFIG_F_SECRET_ENV, .aux = R(webhook.secret), .check = check_env_name_opt},

	SECTION("queue"),
	{.path = "queue.kind", .type = CONFIG_T_ENUM, .off = R(queue.kind), .def = "sqlite",
	 .names = queue_kind_names},
	{.path = "queue.uri_file", .type = CONFIG_T_PATH, .off = R(queue.uri_file),
	 .flags = CONFIG_F_SECRET_FILE, .aux = R(queue.uri)},
	{.path = "queue.uri_env", .type = CONFIG_T_STR, .off = R(queue.uri_env),
	 .flags = CONFIG_F_SECRET_ENV, .aux = R(queue.uri), .check = check_env_name_opt},

	SECTION("metrics"),
	{.path = "metrics.events_log", .type = CONFIG_T_PATH, .off = R(metrics.events_log),
	 .def = "/var/log/runnerd/metrics.log", .flags = CONFIG_F_NONEMPTY},
	{.path = "metrics.listen", .type = CONFIG_T_STR, .off = R(metrics.listen),
	 .def = "127.0.0.1:9464", .check = check_listen_opt},
};
/* clang-format on */
const size_t config_n_fields = ARRAY_SIZE(config_fields);

/* Keys that would hold a secret inline; refused wherever they appear. */
static const char *const inline_secret_keys[] = {"token", "secret", "password", "uri",
                                                 "private_key"};

/* ---- the loader ---- */

struct pos {
	int line, col; /* 1-based */
};

struct cerr {
	struct pos p;
	size_t seq; /* keeps the order of errors at the same position */
	char *msg;
};

/* A key found in the file: where it is, and whether its value was usable. */
struct seen {
	const struct config_field *f;
	const void *base; /* the struct the field lives in; for a list item, the item */
	struct pos key, val;
	struct fy_node *node; /* the value */
	bool ok;
};

struct loader {
	const char *name;
	char *basedir;    /* where relative paths start; NULL keeps them relative */
	mode_t file_mode; /* of the config file; 0 when it did not come from one */
	struct config *c;
	struct cerr *errs;
	size_t n_errs, cap_errs;
	bool errs_dropped;
	struct cerr *warns;
	size_t n_warns, cap_warns;
	struct seen **seen;
	size_t n_seen, cap_seen;
	struct pos root;
	bool nomem;
};

static void *grow(struct loader *l, void *v, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *nv;

	if (n < *cap)
		return v;
	ncap = *cap ? *cap * 2 : 16;
	nv = reallocarray(v, ncap, size);
	if (!nv) {
		l->nomem = true;
		return NULL;
	}
	*cap = ncap;
	return nv;
}

/* "FILE:LINE:COLUMN: [tag]path: msg" added to *v. */
static void msg_add(struct loader *l, struct cerr **v, size_t *n, size_t *cap, struct pos p,
                    const char *tag, const char *path, const char *msg)
{
	char *line = NULL;
	struct cerr *nv;
	int len;

	if (path && *path)
		len = asprintf(&line, "%s:%d:%d: %s%s: %s", l->name, p.line, p.col, tag, path, msg);
	else
		len = asprintf(&line, "%s:%d:%d: %s%s", l->name, p.line, p.col, tag, msg);
	nv = grow(l, *v, cap, *n, sizeof(*nv));
	if (len < 0 || !nv) {
		if (len >= 0)
			free(line);
		l->nomem = true;
		return;
	}
	*v = nv;
	(*v)[*n] = (struct cerr){p, *n, line};
	(*n)++;
}

static void lerr(struct loader *l, struct pos p, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void lerr(struct loader *l, struct pos p, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (l->n_errs >= ERRORS_MAX) {
		l->errs_dropped = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	msg_add(l, &l->errs, &l->n_errs, &l->cap_errs, p, "", path, msg);
}

/* A warning: the config loads, and whoever loaded it shows this once. */
static void lwarn(struct loader *l, struct pos p, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void lwarn(struct loader *l, struct pos p, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (l->n_warns >= ERRORS_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	msg_add(l, &l->warns, &l->n_warns, &l->cap_warns, p, "warning: ", path, msg);
}

static const struct config_field *field_find(enum config_scope scope, const char *path)
{
	for (size_t i = 0; i < config_n_fields; i++)
		if (config_fields[i].scope == scope && strcmp(config_fields[i].path, path) == 0)
			return &config_fields[i];
	return NULL;
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

/* The key of scope in base for this kind of item (NULL: none). */
static const struct config_field *field_find_kind(enum config_scope scope, const char *path,
                                                  const char *kind)
{
	for (size_t i = 0; i < config_n_fields; i++)
		if (config_fields[i].scope == scope && strcmp(config_fields[i].path, path) == 0 &&
		    config_field_applies(&config_fields[i], kind))
			return &config_fields[i];
	return NULL;
}

/* The section a field sits in (NULL at the top of its scope). */
static const struct config_field *field_parent(const struct config_field *f)
{
	const char *dot = strrchr(f->path, '.');
	char p[128];

	if (!dot || (size_t)(dot - f->path) >= sizeof(p))
		return NULL;
	memcpy(p, f->path, (size_t)(dot - f->path));
	p[dot - f->path] = '\0';
	return field_find(f->scope, p);
}

static void *at(const void *base, size_t off)
{
	return (char *)base + off;
}

/* The items of a list field: base of item i. */
static void *list_item(const struct config *c, const struct config_field *lf, size_t i)
{
	return (char *)*(void **)at(c, lf->off) + i * lf->elem_size;
}

static size_t list_count(const struct config *c, const struct config_field *lf)
{
	return *(size_t *)at(c, lf->aux);
}

/* "flavors[1]" for a list item, "providers.lxd-east" for a map item, "" for the root. */
static void scope_prefix(const struct loader *l, enum config_scope scope, const void *base,
                         char *out, size_t cap)
{
	const struct config_field *lf = config_field_list_of(scope);
	size_t i;

	out[0] = '\0';
	if (scope == CONFIG_SCOPE_ROOT || !lf)
		return;
	if (lf->type == CONFIG_T_MAP) {
		const struct config_provider *pv = base;
		snprintf(out, cap, "%s.%s", lf->path, pv->name ? pv->name : "");
		return;
	}
	i = (size_t)((const char *)base - (const char *)*(void **)at(l->c, lf->off)) /
	    lf->elem_size;
	snprintf(out, cap, "%s[%zu]", lf->path, i);
}

/* The full key path of f in base, e.g. "flavors[1].resources.vcpu". */
static void field_display(const struct loader *l, const struct config_field *f, const void *base,
                          char *out, size_t cap)
{
	char pre[160];

	scope_prefix(l, f->scope, base, pre, sizeof(pre));
	snprintf(out, cap, "%s%s%s", pre, *pre ? "." : "", f->path);
}

static struct seen *seen_find(const struct loader *l, const struct config_field *f,
                              const void *base)
{
	for (size_t i = 0; i < l->n_seen; i++)
		if (l->seen[i]->f == f && l->seen[i]->base == base)
			return l->seen[i];
	return NULL;
}

/* Each entry is its own allocation: callers keep pointers across later adds. */
static struct seen *seen_add(struct loader *l, const struct config_field *f, const void *base,
                             struct pos key, struct pos val, struct fy_node *node)
{
	struct seen **v = grow(l, l->seen, &l->cap_seen, l->n_seen, sizeof(*v));
	struct seen *s;

	if (!v)
		return NULL;
	l->seen = v;
	s = malloc(sizeof(*s));
	if (!s) {
		l->nomem = true;
		return NULL;
	}
	*s = (struct seen){f, base, key, val, node, false};
	l->seen[l->n_seen++] = s;
	return s;
}

/* ---- YAML nodes ---- */

enum kind { K_NULL, K_BOOL, K_INT, K_FLOAT, K_STRING, K_MAPPING, K_SEQUENCE, K_ALIAS };

static const char *kind_name(enum kind k)
{
	static const char *const names[] = {"null",     "a boolean", "an integer", "a float",
	                                    "a string", "a mapping", "a sequence", "an alias"};
	return names[k];
}

static bool text_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(s, word, n) == 0;
}

static bool text_is_int(const char *s, size_t n)
{
	size_t i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;

	if (i == n)
		return false;
	for (; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* YAML 1.2 core schema floats: [-+]?(.digits|digits[.digits])([eE][-+]?digits)?, .inf, .nan */
static bool text_is_float(const char *s, size_t n)
{
	size_t i = 0, digits = 0;

	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	if (text_is(s + i, n - i, ".inf") || text_is(s + i, n - i, ".Inf") ||
	    text_is(s + i, n - i, ".INF") || text_is(s, n, ".nan") || text_is(s, n, ".NaN") ||
	    text_is(s, n, ".NAN"))
		return true;
	for (; i < n && isdigit((unsigned char)s[i]); i++)
		digits++;
	if (i < n && s[i] == '.')
		for (i++; i < n && isdigit((unsigned char)s[i]); i++)
			digits++;
	if (digits == 0)
		return false;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t e = 0;
		i++;
		if (i < n && (s[i] == '-' || s[i] == '+'))
			i++;
		for (; i < n && isdigit((unsigned char)s[i]); i++)
			e++;
		if (e == 0)
			return false;
	}
	return i == n;
}

static enum kind node_kind(struct fy_node *n)
{
	const char *s;
	size_t len = 0;

	if (!n)
		return K_NULL;
	if (fy_node_is_alias(n))
		return K_ALIAS;
	if (fy_node_get_type(n) == FYNT_MAPPING)
		return K_MAPPING;
	if (fy_node_get_type(n) == FYNT_SEQUENCE)
		return K_SEQUENCE;
	if (fy_node_get_style(n) != FYNS_PLAIN)
		return K_STRING;
	s = fy_node_get_scalar(n, &len);
	if (!s || len == 0 || text_is(s, len, "~") || text_is(s, len, "null") ||
	    text_is(s, len, "Null") || text_is(s, len, "NULL"))
		return K_NULL;
	if (text_is(s, len, "true") || text_is(s, len, "false") || text_is(s, len, "True") ||
	    text_is(s, len, "False") || text_is(s, len, "TRUE") || text_is(s, len, "FALSE"))
		return K_BOOL;
	if (text_is_int(s, len))
		return K_INT;
	if (text_is_float(s, len))
		return K_FLOAT;
	return K_STRING;
}

/* Where a node starts: its own token for a scalar, its first entry for a collection. */
static struct pos node_pos(struct fy_node *n, struct pos fallback)
{
	for (int depth = 0; n && depth < 8; depth++) {
		void *it = NULL;

		if (fy_node_is_alias(n))
			return fallback;
		switch (fy_node_get_type(n)) {
		case FYNT_SCALAR: {
			struct fy_token *t = fy_node_get_scalar_token(n);
			const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
			enum fy_node_style st = fy_node_get_style(n);
			if (!m)
				return fallback;
			/* libfyaml marks a quoted scalar at its text; point at the quote */
			if ((st == FYNS_SINGLE_QUOTED || st == FYNS_DOUBLE_QUOTED) && m->column > 0)
				return (struct pos){m->line + 1, m->column};
			return (struct pos){m->line + 1, m->column + 1};
		}
		case FYNT_MAPPING: {
			struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
			n = p ? fy_node_pair_key(p) : NULL;
			break;
		}
		default:
			n = fy_node_sequence_iterate(n, &it);
			break;
		}
	}
	return fallback;
}

/*
 * The text of a scalar as a new string. Control characters (NUL included)
 * are refused: values end up in env files, paths and argv of helpers, where
 * a newline could inject a line. Returns NULL and sets *ret_bad for those.
 */
static char *scalar_dup(struct loader *l, struct fy_node *n, bool *ret_bad)
{
	size_t len = 0;
	const char *s = fy_node_get_scalar(n, &len);
	char *r;

	*ret_bad = false;
	if (!s)
		s = "";
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			*ret_bad = true;
			return NULL;
		}
	r = strndup(s, len);
	if (!r)
		l->nomem = true;
	return r;
}

/* A short, printable rendering of a non-secret value for a message. */
static const char *shown(const char *s, char *buf, size_t cap)
{
	size_t n = strlen(s);

	if (n <= VALUE_SHOWN_MAX) {
		snprintf(buf, cap, "%s", s);
	} else {
		snprintf(buf, cap, "%.*s...", VALUE_SHOWN_MAX, s);
	}
	return buf;
}

/* ---- setting values ---- */

static int set_string(struct loader *l, char **slot, char *value)
{
	if (!value) {
		l->nomem = true;
		return -ENOMEM;
	}
	free(*slot);
	*slot = value;
	return 0;
}

/* A relative path joined to the config's directory; "" and absolute paths as they are. */
static char *resolve_path(struct loader *l, const char *v)
{
	char *r = NULL;

	if (!*v || v[0] == '/' || !l->basedir)
		return strdup(v);
	while (v[0] == '.' && v[1] == '/')
		for (v += 2; *v == '/'; v++)
			;
	if (!*v || strcmp(v, ".") == 0)
		return strdup(l->basedir);
	if (asprintf(&r, "%s/%s", strcmp(l->basedir, "/") == 0 ? "" : l->basedir, v) < 0)
		return NULL;
	return r;
}

static int enum_index(const char *const *names, const char *s)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

static void names_list(const char *const *names, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; names[i] && n < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? ", " : "", names[i]);
}

static void range_message(const struct config_field *f, char *msg, size_t cap)
{
	char lo[32], hi[32];

	if (f->type == CONFIG_T_DURATION) {
		format_duration(f->min, lo, sizeof(lo));
		format_duration(f->max, hi, sizeof(hi));
	} else if (f->type == CONFIG_T_SIZE) {
		format_size(f->min, lo, sizeof(lo));
		format_size(f->max, hi, sizeof(hi));
	} else {
		snprintf(lo, sizeof(lo), "%" PRId64, f->min);
		snprintf(hi, sizeof(hi), "%" PRId64, f->max);
	}
	if (f->max == INT64_MAX)
		snprintf(msg, cap, "must be at least %s", lo);
	else
		snprintf(msg, cap, "must be between %s and %s", lo, hi);
}

static int set_int_ranged(const struct config_field *f, void *base, int r, int64_t v,
                          const char *text, const char *what, char *msg, size_t cap)
{
	char b[VALUE_SHOWN_MAX + 8];

	if (r == -ERANGE || (r == 0 && (v < f->min || v > f->max))) {
		range_message(f, msg, cap);
		return -ERANGE;
	}
	if (r < 0) {
		snprintf(msg, cap, "invalid %s '%s'", what, shown(text, b, sizeof(b)));
		return -EINVAL;
	}
	*(int64_t *)at(base, f->off) = v;
	return 0;
}

/*
 * Parse text as the value of f and store it in base. Used for the file's
 * values (after the node's YAML type was checked) and for the defaults, so a
 * default goes through exactly the checks a written value does.
 */
static int set_from_text(struct loader *l, const struct config_field *f, void *base,
                         const char *text, char *msg, size_t cap)
{
	char b[VALUE_SHOWN_MAX + 8];
	int64_t v = 0;
	int r, i;

	switch (f->type) {
	case CONFIG_T_STR:
	case CONFIG_T_PATH:
		if ((f->flags & CONFIG_F_NONEMPTY) && !*text) {
			snprintf(msg, cap, "must not be empty");
			return -EINVAL;
		}
		if (f->names && enum_index(f->names, text) < 0) {
			char all[128];
			names_list(f->names, all, sizeof(all));
			snprintf(msg, cap, "'%s' is not one of: %s", shown(text, b, sizeof(b)),
			         all);
			return -EINVAL;
		}
		if (f->check && !f->check(text, msg, cap))
			return -EINVAL;
		return set_string(l, (char **)at(base, f->off),
		                  f->type == CONFIG_T_PATH ? resolve_path(l, text) : strdup(text));
	case CONFIG_T_INT:
		r = parse_int64(text, INT64_MIN, INT64_MAX, &v);
		return set_int_ranged(f, base, r, v, text, "integer", msg, cap);
	case CONFIG_T_DURATION:
		r = parse_duration(text, &v);
		if (r == -EINVAL) {
			snprintf(msg, cap,
			         "invalid duration '%s'; expected a number and a unit: "
			         "30s, 5m, 6h, 7d",
			         shown(text, b, sizeof(b)));
			return r;
		}
		return set_int_ranged(f, base, r, v, text, "duration", msg, cap);
	case CONFIG_T_SIZE:
		r = parse_size(text, &v);
		if (r == -EINVAL) {
			snprintf(msg, cap,
			         "invalid size '%s'; expected a number and a unit such as "
			         "512MiB or 7GiB",
			         shown(text, b, sizeof(b)));
			return r;
		}
		return set_int_ranged(f, base, r, v, text, "size", msg, cap);
	case CONFIG_T_BOOL:
		if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0) {
			snprintf(msg, cap, "expected true or false");
			return -EINVAL;
		}
		*(bool *)at(base, f->off) = strcmp(text, "true") == 0;
		return 0;
	case CONFIG_T_ENUM:
		i = enum_index(f->names, text);
		if (i < 0) {
			char all[128];
			names_list(f->names, all, sizeof(all));
			snprintf(msg, cap, "'%s' is not one of: %s", shown(text, b, sizeof(b)),
			         all);
			return -EINVAL;
		}
		*(int *)at(base, f->off) = i;
		return 0;
	case CONFIG_T_STRV: {
		struct strv *sv = at(base, f->off);
		char *item = strdup(text);
		char **nv = item ? reallocarray(sv->v, sv->n + 1, sizeof(*nv)) : NULL;
		if (!nv) {
			free(item);
			l->nomem = true;
			return -ENOMEM;
		}
		sv->v = nv;
		sv->v[sv->n++] = item;
		return 0;
	}
	default:
		return 0;
	}
}

static void apply_defaults(struct loader *l, enum config_scope scope, void *base)
{
	const char *kind = config_scope_kind(scope, base);

	for (size_t i = 0; i < config_n_fields; i++) {
		const struct config_field *f = &config_fields[i];
		char msg[256];

		if (f->scope != scope || f->type == CONFIG_T_SECTION || f->type == CONFIG_T_LIST ||
		    f->type == CONFIG_T_MAP || !config_field_applies(f, kind))
			continue;
		if (f->off == PV(type) && scope == CONFIG_SCOPE_PROVIDER)
			continue; /* set from the entry before its defaults */
		if (!f->def && f->type == CONFIG_T_STRV)
			continue;
		if (!f->def && f->type != CONFIG_T_STR && f->type != CONFIG_T_PATH)
			continue;
		/* A NULL default of a string is "", which is not checked: "" means unset. */
		if (!f->def) {
			set_string(l, (char **)at(base, f->off), strdup(""));
			continue;
		}
		if (set_from_text(l, f, base, f->def, msg, sizeof(msg)) < 0 && !l->nomem)
			lerr(l, (struct pos){1, 1}, f->path, "bad built-in default: %s", msg);
	}
}

/* Common checks of a value node: no aliases, no tags. */
static bool value_usable(struct loader *l, struct fy_node *v, struct pos p, const char *path)
{
	size_t tl = 0;

	if (v && fy_node_is_alias(v)) {
		lerr(l, p, path, "YAML aliases are not supported");
		return false;
	}
	if (v && fy_node_get_tag(v, &tl) && tl > 0) {
		lerr(l, p, path, "YAML tags are not supported");
		return false;
	}
	return true;
}

static void walk_mapping(struct loader *l, struct fy_node *map, enum config_scope scope, void *base,
                         const char *prefix);

/*
 * Every item is stored, a bad one too (as "" when it is not a string), so
 * item i of the strv is item i of the file for the checks that come later.
 */
static void parse_strv(struct loader *l, const struct config_field *f, void *base,
                       struct fy_node *v, struct seen *s, const char *disp)
{
	struct strv *sv = at(base, f->off);
	struct fy_node *item;
	void *it = NULL;
	size_t i = 0;

	/* What was written replaces the default. */
	for (size_t j = 0; j < sv->n; j++)
		free(sv->v[j]);
	free(sv->v);
	*sv = (struct strv){0};
	while ((item = fy_node_sequence_iterate(v, &it)) && !l->nomem) {
		char ipath[256], msg[256];
		struct pos p = node_pos(item, s->val);
		enum kind k = node_kind(item);
		bool bad = false;
		char *text = NULL;

		snprintf(ipath, sizeof(ipath), "%s[%zu]", disp, i++);
		if (!value_usable(l, item, p, ipath)) {
			bad = true;
		} else if (k == K_NULL || k == K_MAPPING || k == K_SEQUENCE) {
			lerr(l, p, ipath, "expected a string, got %s", kind_name(k));
			bad = true;
		} else {
			text = scalar_dup(l, item, &bad);
			if (bad)
				lerr(l, p, ipath, "must not contain control characters");
		}
		if (!bad && text && f->check && !f->check(text, msg, sizeof(msg)))
			lerr(l, p, ipath, "%s", msg);
		set_from_text(l, f, base, text ? text : "", msg, sizeof(msg));
		free(text);
	}
	s->ok = true;
}

static void parse_list(struct loader *l, const struct config_field *f, void *base,
                       struct fy_node *v, struct seen *s, const char *disp)
{
	size_t n = (size_t)fy_node_sequence_item_count(v), i = 0;
	struct fy_node *item;
	void *it = NULL;
	char *arr;

	if (n > (size_t)f->max) {
		lerr(l, s->val, disp, "at most %" PRId64 " items are allowed", f->max);
		return;
	}
	arr = calloc(n ? n : 1, f->elem_size);
	if (!arr) {
		l->nomem = true;
		return;
	}
	*(void **)at(base, f->off) = arr;
	*(size_t *)at(base, f->aux) = n;
	for (i = 0; i < n; i++)
		apply_defaults(l, f->elem, arr + i * f->elem_size);
	s->ok = true;
	for (i = 0; (item = fy_node_sequence_iterate(v, &it)) && i < n; i++) {
		void *elem = arr + i * f->elem_size;
		struct pos p = node_pos(item, s->val);
		struct seen *es = seen_add(l, f, elem, p, p, item);
		char ipath[160];
		enum kind k = node_kind(item);

		if (!es)
			return;
		if (f->elem == CONFIG_SCOPE_FLAVOR)
			((struct config_flavor *)elem)->line = p.line;
		snprintf(ipath, sizeof(ipath), "%s[%zu]", disp, i);
		if (!value_usable(l, item, p, ipath))
			continue;
		if (k != K_MAPPING) {
			lerr(l, p, ipath, "expected a mapping, got %s", kind_name(k));
			continue;
		}
		es->ok = true;
		walk_mapping(l, item, f->elem, elem, "");
	}
}

static size_t provider_type_count(void)
{
	size_t n = 0;
	while (config_provider_types[n])
		n++;
	return n;
}

/*
 * The type of providers.<name>: its `type` key, else its name when that is a
 * type. Before 0.2, providers.lxd.type was the LXD instance type: an entry
 * named lxd whose type is container or virtual-machine is that old form
 * (*ret_legacy; walk_mapping reads the key as instance_type). A bad `type`
 * is reported here (walk_mapping does not parse it again); the entry is
 * still walked as the type its name says, if any, so its other keys are
 * checked too. NULL when there is no type to walk it as.
 */
static const char *entry_type(struct loader *l, const char *name, struct fy_node *map,
                              struct pos kp, const char *disp, bool *ret_legacy)
{
	struct fy_node *tn = fy_node_mapping_lookup_by_string(map, "type", FY_NT);
	char all[128], b[VALUE_SHOWN_MAX + 8], tdisp[300];
	const char *kind = NULL;
	bool bad = false;
	char *text;

	*ret_legacy = false;
	names_list(config_provider_types, all, sizeof(all));
	if (!tn) {
		if (enum_index(config_provider_types, name) >= 0)
			return config_provider_types[enum_index(config_provider_types, name)];
		lerr(l, kp, disp, "missing required key type ('%s' is not a provider type: %s)",
		     shown(name, b, sizeof(b)), all);
		return NULL;
	}
	snprintf(tdisp, sizeof(tdisp), "%s.type", disp);
	if (!value_usable(l, tn, node_pos(tn, kp), tdisp))
		return NULL;
	if (node_kind(tn) != K_STRING) {
		lerr(l, node_pos(tn, kp), tdisp, "expected one of: %s, got %s", all,
		     kind_name(node_kind(tn)));
		return NULL;
	}
	text = scalar_dup(l, tn, &bad);
	if (!text) {
		if (bad)
			lerr(l, node_pos(tn, kp), tdisp, "must not contain control characters");
		return NULL;
	}
	if (enum_index(config_provider_types, text) >= 0) {
		kind = config_provider_types[enum_index(config_provider_types, text)];
	} else if (strcmp(name, "lxd") == 0 && enum_index(lxd_type_names, text) >= 0) {
		kind = "lxd";
		*ret_legacy = true;
	} else {
		lerr(l, node_pos(tn, kp), tdisp,
		     "'%s' is not a provider type of this runnerd (%s)%s",
		     shown(text, b, sizeof(b)), all,
		     strcmp(name, "lxd") == 0
		             ? ", nor an LXD instance type (container, virtual-machine)"
		             : "");
		if (enum_index(config_provider_types, name) >= 0)
			kind = config_provider_types[enum_index(config_provider_types, name)];
	}
	free(text);
	return kind;
}

/*
 * A mapping of names to entries (providers). Each entry's type is settled
 * first, since it decides which keys the entry may have and their defaults.
 * Room is kept for the implied entries a flavor may add later (one per type
 * at most): the seen table keeps pointers into the array, so it never moves.
 * An entry without a usable type is kept, nameless of type, so a flavor that
 * names it is not reported twice; its keys are not walked.
 */
static void parse_map(struct loader *l, const struct config_field *f, void *base, struct fy_node *v,
                      struct seen *s, const char *disp)
{
	size_t n = (size_t)fy_node_mapping_item_count(v), count = 0;
	struct fy_node_pair *pair;
	void *it = NULL;
	char *arr;

	if (n > (size_t)f->max) {
		lerr(l, s->val, disp, "at most %" PRId64 " entries are allowed", f->max);
		return;
	}
	arr = calloc(n + provider_type_count(), f->elem_size);
	if (!arr) {
		l->nomem = true;
		return;
	}
	*(void **)at(base, f->off) = arr;
	s->ok = true;
	while ((pair = fy_node_mapping_iterate(v, &it)) && !l->nomem) {
		struct fy_node *k = fy_node_pair_key(pair), *val = fy_node_pair_value(pair);
		struct config_provider *pv = (struct config_provider *)(arr + count * f->elem_size);
		struct pos kp = node_pos(k, s->key);
		char ipath[160], msg[256], b[VALUE_SHOWN_MAX + 8];
		bool bad = false, legacy;
		const char *kind;
		struct seen *es;
		char *key;

		if (!k || fy_node_get_type(k) != FYNT_SCALAR || fy_node_is_alias(k)) {
			lerr(l, kp, disp, "keys must be strings");
			continue;
		}
		key = scalar_dup(l, k, &bad);
		if (!key)
			continue;
		snprintf(ipath, sizeof(ipath), "%s.%s", disp, key);
		if (bad || !check_provider_name(key, msg, sizeof(msg))) {
			lerr(l, kp, disp, "'%s': %s", shown(key, b, sizeof(b)),
			     bad ? "must not contain control characters" : msg);
			free(key);
			continue;
		}
		for (size_t j = 0; j < count; j++) {
			const struct config_provider *o = (const void *)(arr + j * f->elem_size);
			if (strcmp(o->name, key) == 0) {
				lerr(l, kp, ipath, "duplicate key (first at line %d)", o->line);
				bad = true;
				break;
			}
		}
		if (bad || !value_usable(l, val, kp, ipath)) {
			free(key);
			continue;
		}
		if (node_kind(val) != K_MAPPING) {
			lerr(l, kp, ipath, "expected a mapping, got %s", kind_name(node_kind(val)));
			free(key);
			continue;
		}
		pv->name = key;
		pv->line = kp.line;
		*(size_t *)at(base, f->aux) = ++count;
		es = seen_add(l, f, pv, kp, kp, val);
		if (!es)
			return;
		es->ok = true;
		kind = entry_type(l, key, val, kp, ipath, &legacy);
		if (!kind)
			continue;
		if (set_string(l, &pv->type, strdup(kind)) < 0)
			return;
		apply_defaults(l, f->elem, pv);
		walk_mapping(l, val, f->elem, pv, "");
	}
}

static void parse_value(struct loader *l, const struct config_field *f, void *base,
                        struct fy_node *v, struct seen *s, const char *disp)
{
	enum kind k = node_kind(v);
	char msg[256];
	char *text;
	bool bad;

	switch (f->type) {
	case CONFIG_T_SECTION:
		if (k != K_MAPPING) {
			lerr(l, s->val, disp, "expected a mapping, got %s", kind_name(k));
			return;
		}
		s->ok = true;
		if (f->flags & CONFIG_F_OPTIONAL)
			*(bool *)at(base, f->aux) = true;
		walk_mapping(l, v, f->scope, base, f->path);
		return;
	case CONFIG_T_LIST:
		if (k != K_SEQUENCE) {
			lerr(l, s->val, disp, "expected a sequence of mappings, got %s",
			     kind_name(k));
			return;
		}
		parse_list(l, f, base, v, s, disp);
		return;
	case CONFIG_T_MAP:
		if (k != K_MAPPING) {
			lerr(l, s->val, disp, "expected a mapping of names to mappings, got %s",
			     kind_name(k));
			return;
		}
		parse_map(l, f, base, v, s, disp);
		return;
	case CONFIG_T_STRV:
		if (k != K_SEQUENCE) {
			lerr(l, s->val, disp, "expected a sequence of strings, got %s",
			     kind_name(k));
			return;
		}
		parse_strv(l, f, base, v, s, disp);
		return;
	case CONFIG_T_STR:
	case CONFIG_T_PATH:
		/* Lenient: any scalar is its text, so `image: 2204` is the string "2204". */
		if (k == K_NULL || k == K_MAPPING || k == K_SEQUENCE) {
			lerr(l, s->val, disp, "expected a string, got %s", kind_name(k));
			return;
		}
		break;
	case CONFIG_T_INT:
		if (k != K_INT) {
			lerr(l, s->val, disp, "expected an integer, got %s", kind_name(k));
			return;
		}
		break;
	case CONFIG_T_BOOL:
		if (k != K_BOOL) {
			lerr(l, s->val, disp, "expected true or false, got %s", kind_name(k));
			return;
		}
		break;
	case CONFIG_T_DURATION:
	case CONFIG_T_SIZE:
		if (k != K_STRING && k != K_INT) {
			lerr(l, s->val, disp, "expected a %s, got %s",
			     f->type == CONFIG_T_DURATION ? "duration such as 30s, 5m, 6h or 7d"
			                                  : "size such as 512MiB or 7GiB",
			     kind_name(k));
			return;
		}
		break;
	case CONFIG_T_ENUM:
		if (k != K_STRING) {
			char all[128];
			names_list(f->names, all, sizeof(all));
			lerr(l, s->val, disp, "expected one of: %s, got %s", all, kind_name(k));
			return;
		}
		break;
	}
	text = scalar_dup(l, v, &bad);
	if (bad)
		lerr(l, s->val, disp, "must not contain control characters");
	if (!text)
		return;
	if (set_from_text(l, f, base, text, msg, sizeof(msg)) == 0)
		s->ok = true;
	else if (!l->nomem)
		lerr(l, s->val, disp, "%s", msg);
	free(text);
}

/* providers.lxd.type: container (or virtual-machine), the form before named providers. */
static bool legacy_instance_type(struct loader *l, const struct config_field *f, const void *base,
                                 struct fy_node *v)
{
	const struct config_provider *pv = base;
	bool bad = false, legacy;
	char *text;

	if (f->scope != CONFIG_SCOPE_PROVIDER || f->off != PV(type) || !v ||
	    fy_node_get_type(v) != FYNT_SCALAR || strcmp(pv->name, "lxd") != 0 || !pv->type ||
	    strcmp(pv->type, "lxd") != 0)
		return false;
	text = scalar_dup(l, v, &bad);
	legacy = text && enum_index(lxd_type_names, text) >= 0;
	free(text);
	return legacy;
}

/* A key that names a secret: point at the *_file / *_env keys of the same mapping. */
static bool inline_secret(struct loader *l, enum config_scope scope, const char *rel,
                          const char *key, struct pos p, const char *disp)
{
	char alt[256];
	bool has_file, has_env;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(inline_secret_keys); i++)
		if (strcmp(key, inline_secret_keys[i]) == 0)
			break;
	if (i == ARRAY_SIZE(inline_secret_keys))
		return false;
	snprintf(alt, sizeof(alt), "%s_file", rel);
	has_file = field_find(scope, alt) != NULL;
	snprintf(alt, sizeof(alt), "%s_env", rel);
	has_env = field_find(scope, alt) != NULL;
	if (has_file && has_env)
		lerr(l, p, disp, "secrets are never inline; use %s_file or %s_env", key, key);
	else if (has_file)
		lerr(l, p, disp, "secrets are never inline; use %s_file", key);
	else
		lerr(l, p, disp,
		     "secrets are never inline; read them from a file or the "
		     "environment");
	return true;
}

static void walk_mapping(struct loader *l, struct fy_node *map, enum config_scope scope, void *base,
                         const char *prefix)
{
	struct fy_node_pair *pair;
	char pre[160];
	void *it = NULL;

	scope_prefix(l, scope, base, pre, sizeof(pre));
	while ((pair = fy_node_mapping_iterate(map, &it)) && !l->nomem) {
		struct fy_node *k = fy_node_pair_key(pair), *v = fy_node_pair_value(pair);
		struct pos kp = node_pos(k, l->root), vp;
		char rel[256], disp[512];
		const struct config_field *f;
		const char *kind;
		struct seen *s;
		bool bad;
		char *key;

		if (node_kind(k) == K_ALIAS || !k || fy_node_get_type(k) != FYNT_SCALAR) {
			lerr(l, kp, prefix, "keys must be strings");
			continue;
		}
		key = scalar_dup(l, k, &bad);
		if (!key) {
			if (bad)
				lerr(l, kp, prefix, "keys must not contain control characters");
			continue;
		}
		snprintf(rel, sizeof(rel), "%s%s%s", prefix, *prefix ? "." : "", key);
		snprintf(disp, sizeof(disp), "%s%s%s", pre, *pre ? "." : "", rel);
		/* read each time: walking the `type` key replaces the string */
		kind = config_scope_kind(scope, base);
		/* a quoted "a.b" key is one key, not a path into the table */
		f = strchr(key, '.') ? NULL : field_find_kind(scope, rel, kind);
		if (f && legacy_instance_type(l, f, base, v)) {
			lwarn(l, kp, disp,
			      "read as instance_type (the LXD instance type); type now names the "
			      "provider type: write type: lxd and instance_type");
			f = field_find_kind(scope, "instance_type", kind);
		} else if (f && f->scope == CONFIG_SCOPE_PROVIDER && f->off == PV(type)) {
			/* settled (and any problem reported) by entry_type */
			if (!seen_find(l, f, base))
				seen_add(l, f, base, kp, kp, v);
			else
				lerr(l, kp, disp, "duplicate key (first at line %d)",
				     seen_find(l, f, base)->key.line);
			free(key);
			continue;
		}
		if (!f) {
			if (!strchr(key, '.') && field_find(scope, rel))
				lerr(l, kp, disp, "not a key of %s providers", kind);
			else if (!inline_secret(l, scope, rel, key, kp, disp))
				lerr(l, kp, disp, "unknown key");
			free(key);
			continue;
		}
		free(key);
		s = seen_find(l, f, base);
		if (s) {
			lerr(l, kp, disp, "duplicate key (first at line %d)", s->key.line);
			continue;
		}
		/* A collection's error points at its key; a scalar's at the value itself. */
		vp = (v && fy_node_get_type(v) == FYNT_SCALAR) ? node_pos(v, kp) : kp;
		s = seen_add(l, f, base, kp, vp, v);
		if (!s)
			return;
		if (!value_usable(l, v, vp, disp))
			continue;
		parse_value(l, f, base, v, s, disp);
	}
}

/* ---- validation of the whole ---- */

/* Where to point for f in base: its value, else the nearest enclosing mapping given. */
static struct pos field_pos(const struct loader *l, const struct config_field *f, const void *base)
{
	for (const struct config_field *p = f; p; p = field_parent(p)) {
		struct seen *s = seen_find(l, p, base);
		if (s)
			return p == f ? s->val : s->key;
	}
	if (f->scope != CONFIG_SCOPE_ROOT) {
		struct seen *s = seen_find(l, config_field_list_of(f->scope), base);
		if (s)
			return s->val;
	}
	return l->root;
}

static void check_required(struct loader *l, bool root_ok)
{
	for (size_t i = 0; i < config_n_fields; i++) {
		const struct config_field *f = &config_fields[i];
		const struct config_field *lf = config_field_list_of(f->scope);
		size_t n = f->scope == CONFIG_SCOPE_ROOT ? 1 : list_count(l->c, lf);

		if (!(f->flags & CONFIG_F_REQUIRED))
			continue;
		for (size_t j = 0; j < n; j++) {
			const void *base = f->scope == CONFIG_SCOPE_ROOT ? (void *)l->c
			                                                 : list_item(l->c, lf, j);
			const struct config_field *parent = field_parent(f);

			if (!config_field_applies(f, config_scope_kind(f->scope, base)))
				continue;
			struct seen *ps;
			struct pos p;
			char disp[512];

			if (seen_find(l, f, base))
				continue;
			if (parent) {
				ps = seen_find(l, parent, base);
				if (!ps || !ps->ok)
					continue; /* the parent's own problem is reported */
				p = ps->key;
			} else if (f->scope == CONFIG_SCOPE_ROOT) {
				if (!root_ok)
					continue;
				p = l->root;
			} else {
				ps = seen_find(l, lf, base);
				if (!ps || !ps->ok)
					continue;
				p = ps->val;
			}
			field_display(l, f, base, disp, sizeof(disp));
			lerr(l, p, disp, "missing required key");
		}
	}
}

static const struct config_field *root_field(const char *path)
{
	const struct config_field *f = field_find(CONFIG_SCOPE_ROOT, path);
	if (!f)
		abort(); /* a typo in this file, caught by every test */
	return f;
}

/* Given = a non-empty string, or an optional section that is present. */
static bool given(const struct loader *l, const struct config_field *f)
{
	if (f->type == CONFIG_T_SECTION)
		return *(bool *)at(l->c, f->aux);
	return **(char **)at(l->c, f->off) != '\0';
}

static bool pos_before(struct pos a, struct pos b)
{
	return a.line < b.line || (a.line == b.line && a.col < b.col);
}

/* At most one (exactly one when required) of keys under section may be given. */
static void one_of(struct loader *l, const char *section, const char *const *keys, size_t n,
                   bool required, const char *why)
{
	const struct config_field *first = NULL;
	struct pos first_pos = {0, 0};
	char all[256], path[128];
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(all + len, sizeof(all) - len, "%s%s",
		                        i == 0 ? "" : (i + 1 == n ? " or " : ", "), keys[i]);
	/* the first given, in file order, stands; every later one is an error */
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s.%s", section, keys[i]);
		const struct config_field *f = root_field(path);
		struct pos p = field_pos(l, f, l->c);
		if (given(l, f) && (!first || pos_before(p, first_pos))) {
			first = f;
			first_pos = p;
		}
	}
	for (size_t i = 0; first && i < n; i++) {
		snprintf(path, sizeof(path), "%s.%s", section, keys[i]);
		const struct config_field *f = root_field(path);
		if (f != first && given(l, f))
			lerr(l, field_pos(l, f, l->c), f->path,
			     "conflicts with %s; give only one of %s", first->path, all);
	}
	if (!first && required)
		lerr(l, field_pos(l, root_field(section), l->c), section, "one of %s is required%s",
		     all, why);
}

/* Never asked: an encrypted key is refused before OpenSSL could prompt for its passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/*
 * The GitHub App key as a whole, as github_auth will use it: one PEM private
 * key, unencrypted, RSA (GitHub signs App JWTs with RS256). Offline; no
 * message shows any of the file, nor an OpenSSL error (which could quote it).
 */
static void check_app_key(struct loader *l, const struct config_field *f, struct pos p,
                          const char *path, const char *pem)
{
	EVP_PKEY *key;
	BIO *bio;

	if (strstr(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
	    strstr(pem, "Proc-Type: 4,ENCRYPTED")) {
		lerr(l, p, f->path,
		     "%s is an encrypted private key; runnerd needs it unencrypted "
		     "(openssl pkey -in KEY -out NEW)",
		     path);
		return;
	}
	bio = BIO_new_mem_buf(pem, -1);
	if (!bio) {
		l->nomem = true;
		return;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (!key)
		lerr(l, p, f->path,
		     "%s is not a PEM private key (the .pem file GitHub gives for the App)", path);
	else if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
		lerr(l, p, f->path, "%s holds a key of type %s; a GitHub App key is RSA", path,
		     EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "unknown");
	EVP_PKEY_free(key);
}

/*
 * A secret file other users may read (or write) leaks the secret, or lets
 * them swap it. A warning, not an error: group access is the usual way to
 * let runnerd's user read a file root owns, and is left alone.
 */
static void check_secret_mode(struct loader *l, const struct config_field *f, struct pos p,
                              const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0 || !(st.st_mode & 007))
		return;
	lwarn(l, p, f->path, "secret file %s is %s by others (mode %04o); chmod o-rwx", path,
	      (st.st_mode & 004)   ? "readable"
	      : (st.st_mode & 002) ? "writable"
	                           : "accessible",
	      (unsigned)(st.st_mode & 07777));
}

static void load_secret(struct loader *l, const struct config_field *f)
{
	struct secret *sec = at(l->c, f->aux);
	const char *v = *(char **)at(l->c, f->off);
	struct seen *s = seen_find(l, f, l->c);
	struct pos p = field_pos(l, f, l->c);
	char *value = NULL, *source = NULL;
	struct err e = {0};

	if (!*v || !s || !s->ok || sec->value)
		return;
	if (f->flags & CONFIG_F_SECRET_FILE) {
		if (file_read_secret(v, &value, &e) < 0) {
			lerr(l, p, f->path, "cannot read secret file %s", e.msg);
			return;
		}
		check_secret_mode(l, f, p, v);
		if (strcmp(f->path, "github.app.private_key_file") == 0)
			check_app_key(l, f, p, v, value);
		if (asprintf(&source, "file:%s", v) < 0)
			source = NULL;
	} else {
		const char *env = getenv(v);
		if (!env || !*env) {
			lerr(l, p, f->path, "environment variable %s is %s", v,
			     env ? "empty" : "not set");
			return;
		}
		value = strdup(env);
		if (asprintf(&source, "env:%s", v) < 0)
			source = NULL;
	}
	if (!value || !source) {
		if (value)
			explicit_bzero(value, strlen(value));
		free(value);
		free(source);
		l->nomem = true;
		return;
	}
	sec->value = value;
	sec->source = source;
}

static void check_readable(struct loader *l, const struct config_field *f)
{
	const char *v = *(char **)at(l->c, f->off);
	struct stat st;

	if (!*v)
		return;
	if (stat(v, &st) < 0 || access(v, R_OK) < 0)
		lerr(l, field_pos(l, f, l->c), f->path, "cannot read %s: %s", v, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		lerr(l, field_pos(l, f, l->c), f->path, "%s: not a regular file", v);
}

/*
 * A URL that holds a password: the placeholder --print wrote, or a real one
 * in a config file other users can read.
 */
static void check_url_password(struct loader *l, const struct config_field *f)
{
	const char *v = *(char **)at(l->c, f->off);
	struct seen *s = seen_find(l, f, l->c);
	size_t off, len, rl = strlen(CONFIG_REDACTED);

	if (!s || !s->ok || !config_url_password(v, &off, &len) || len == 0)
		return;
	if (len == rl && memcmp(v + off, CONFIG_REDACTED, rl) == 0)
		lwarn(l, s->val, f->path,
		      "the password is " CONFIG_REDACTED ", as check-config --print writes it; "
		      "put the real one back");
	else if (l->file_mode & 004)
		lwarn(l, s->val, f->path,
		      "this URL holds a password and %s is readable by others (mode %04o); "
		      "chmod o-rwx",
		      l->name, (unsigned)(l->file_mode & 07777));
}

/* Not given (the default stands), or given and valid. */
static bool value_ok(const struct loader *l, const struct config_field *f, const void *base)
{
	struct seen *s = seen_find(l, f, base);
	return !s || s->ok;
}

static void check_labels(struct loader *l, struct config_flavor *fl,
                         const struct config_field *labels_f)
{
	struct seen *s = seen_find(l, labels_f, fl);
	const char *mine = arch_name(fl->arch);
	const char *other = arch_name(fl->arch == ARCH_X64 ? ARCH_ARM64 : ARCH_X64);
	const char *implied[WORDS_IMPLIED_LABELS];
	char disp[256], ipath[300], b[VALUE_SHOWN_MAX + 8];
	struct fy_node *item;
	void *it = NULL;

	if (!s || !s->ok)
		return;
	words_implied_labels(fl->arch, implied);
	field_display(l, labels_f, fl, disp, sizeof(disp));
	for (size_t i = 0; i < fl->labels.n && (item = fy_node_sequence_iterate(s->node, &it));
	     i++) {
		const char *lab = fl->labels.v[i];
		struct pos p = node_pos(item, s->val);
		char m[128];
		bool bad = !check_label(lab, m, sizeof(m)); /* reported already */

		snprintf(ipath, sizeof(ipath), "%s[%zu]", disp, i);
		for (size_t j = 0; j < ARRAY_SIZE(implied) && !bad; j++)
			if (strcasecmp(lab, implied[j]) == 0) {
				/* harmless: every runner carries it anyway */
				lwarn(l, p, ipath, "label '%s' is implied; it can be removed",
				      shown(lab, b, sizeof(b)));
				bad = true;
			}
		if (!bad && strcasecmp(lab, other) == 0) {
			lerr(l, p, ipath, "label '%s' contradicts arch %s", lab, mine);
			bad = true;
		}
		for (size_t j = 0; j < i && !bad; j++)
			if (strcasecmp(lab, fl->labels.v[j]) == 0) {
				lwarn(l, p, ipath, "duplicate label '%s'; it can be removed",
				      shown(lab, b, sizeof(b)));
				bad = true;
			}
	}
}

/* Provider types whose instances start from an image the flavor names. */
static const char *const image_types[] = {"lxd", NULL};

/*
 * An implied provider: a flavor names a type that has no entry of that name
 * (provider: lxd, no providers.lxd). It takes every default of its type.
 * parse_map kept room for one per type; without a providers key there is
 * no array yet.
 */
static struct config_provider *imply_provider(struct loader *l, const char *type)
{
	struct config *c = l->c;
	struct config_provider *pv;

	if (!c->providers) {
		c->providers = calloc(provider_type_count(), sizeof(*c->providers));
		if (!c->providers) {
			l->nomem = true;
			return NULL;
		}
	}
	pv = &c->providers[c->n_providers++];
	if (set_string(l, &pv->name, strdup(type)) < 0 ||
	    set_string(l, &pv->type, strdup(type)) < 0)
		return NULL;
	pv->implied = true;
	apply_defaults(l, CONFIG_SCOPE_PROVIDER, pv);
	return pv;
}

/* Every flavor's provider exists (or is implied), and has what it needs. */
static void check_flavor_provider(struct loader *l, struct config_flavor *fl)
{
	const struct config_field *prov_f = field_find(CONFIG_SCOPE_FLAVOR, "provider");
	const struct config_field *image_f = field_find(CONFIG_SCOPE_FLAVOR, "image");
	const struct config_provider *pv = config_provider_find(l->c, fl->provider);
	char disp[256], all[128];

	if (!value_ok(l, prov_f, fl))
		return;
	if (!pv && enum_index(config_provider_types, fl->provider) >= 0)
		pv = imply_provider(l, fl->provider);
	if (!pv) {
		if (l->nomem)
			return;
		names_list(config_provider_types, all, sizeof(all));
		field_display(l, prov_f, fl, disp, sizeof(disp));
		lerr(l, field_pos(l, prov_f, fl), disp,
		     "no provider named '%s' under providers, and it is not a provider type of "
		     "this runnerd (%s)",
		     fl->provider, all);
		return;
	}
	if (pv->type && !*fl->image && enum_index(image_types, pv->type) >= 0) {
		field_display(l, image_f, fl, disp, sizeof(disp));
		lerr(l, field_pos(l, image_f, fl), disp, "required for a flavor on a %s provider",
		     pv->type);
	}
}

/* A provider no flavor names is harmless (it may hold instances to clean up): a warning. */
static void check_unused_providers(struct loader *l)
{
	const struct config_field *mf = root_field("providers");

	for (size_t i = 0; i < l->c->n_providers; i++) {
		const struct config_provider *pv = &l->c->providers[i];
		struct seen *s = seen_find(l, mf, pv);
		char disp[128];
		bool used = false;

		for (size_t j = 0; j < l->c->n_flavors && !used; j++)
			used = strcmp(l->c->flavors[j].provider, pv->name) == 0;
		if (used || pv->implied || !s)
			continue;
		snprintf(disp, sizeof(disp), "providers.%s", pv->name);
		lwarn(l, s->key, disp,
		      "no flavor uses this provider (runnerd opens it only to remove instances "
		      "it still holds there)");
	}
}

static void check_flavors(struct loader *l)
{
	const struct config_field *flf = root_field("flavors");
	const struct config_field *name_f = field_find(CONFIG_SCOPE_FLAVOR, "name");
	const struct config_field *min_f = field_find(CONFIG_SCOPE_FLAVOR, "min_idle");
	const struct config_field *max_f = field_find(CONFIG_SCOPE_FLAVOR, "max");
	const struct config_field *labels_f = field_find(CONFIG_SCOPE_FLAVOR, "labels");
	struct seen *s = seen_find(l, flf, l->c);
	char disp[256];

	if (s && s->ok && l->c->n_flavors < (size_t)flf->min)
		lerr(l, s->key, "flavors", "at least one flavor is required");
	for (size_t i = 0; i < l->c->n_flavors; i++) {
		struct config_flavor *fl = &l->c->flavors[i];
		struct seen *ns = seen_find(l, name_f, fl);

		if (ns && ns->ok)
			for (size_t j = 0; j < i; j++) {
				struct seen *os;
				if (strcmp(fl->name, l->c->flavors[j].name) != 0)
					continue;
				os = seen_find(l, name_f, &l->c->flavors[j]);
				if (!os || !os->ok)
					continue;
				field_display(l, name_f, fl, disp, sizeof(disp));
				lerr(l, ns->val, disp,
				     "duplicate flavor name '%s' (first at line %d)", fl->name,
				     os->val.line);
				break;
			}
		if (fl->min_idle > fl->max && value_ok(l, min_f, fl) && value_ok(l, max_f, fl)) {
			const struct config_field *at_f = seen_find(l, min_f, fl) ? min_f : max_f;
			field_display(l, at_f, fl, disp, sizeof(disp));
			lerr(l, field_pos(l, at_f, fl), disp,
			     "min_idle (%" PRId64 ") must not exceed max (%" PRId64 ")",
			     fl->min_idle, fl->max);
		}
		check_flavor_provider(l, fl);
		check_labels(l, fl, labels_f);
	}
	check_unused_providers(l);
}

static void validate(struct loader *l)
{
	static const char *const auth[] = {"token_file", "token_env", "app"};
	static const char *const wh[] = {"secret_file", "secret_env"};
	static const char *const qu[] = {"uri_file", "uri_env"};
	struct config *c = l->c;
	struct seen *gs;
	size_t n;

	/* derived values */
	n = strlen(c->github.api_url);
	while (n > 0 && c->github.api_url[n - 1] == '/')
		c->github.api_url[--n] = '\0';
	c->github.is_org = strchr(c->github.path, '/') == NULL;

	gs = seen_find(l, root_field("github"), c);
	if (gs && gs->ok)
		one_of(l, "github", auth, 3, true, "");
	if (*c->github.path && !c->github.is_org && strcmp(c->github.runner_group, "default") != 0)
		lerr(l, field_pos(l, root_field("github.runner_group"), c), "github.runner_group",
		     "runner groups are for organizations only; github.path names a repository");
	one_of(l, "webhook", wh, 2, false, "");
	if (c->queue.kind == QUEUE_AMQP) {
		one_of(l, "queue", qu, 2, true, " for kind amqp");
	} else {
		for (size_t i = 0; i < ARRAY_SIZE(qu); i++) {
			char p[64];
			snprintf(p, sizeof(p), "queue.%s", qu[i]);
			if (given(l, root_field(p)))
				lerr(l, field_pos(l, root_field(p), c), p,
				     "only used with kind amqp");
		}
	}
	if (*c->runner.repo_policy_url && !*c->runner.repo_policy_token_file)
		lerr(l, field_pos(l, root_field("runner.repo_policy_compliance.url"), c),
		     "runner.repo_policy_compliance.token_file", "required when url is set");
	if (!*c->runner.repo_policy_url && *c->runner.repo_policy_token_file)
		lerr(l, field_pos(l, root_field("runner.repo_policy_compliance.token_file"), c),
		     "runner.repo_policy_compliance.url", "required when token_file is set");
	check_flavors(l);
	for (size_t i = 0; i < config_n_fields; i++) {
		const struct config_field *f = &config_fields[i];
		if (f->scope != CONFIG_SCOPE_ROOT)
			continue;
		if (f->flags & (CONFIG_F_SECRET_FILE | CONFIG_F_SECRET_ENV))
			load_secret(l, f);
		if (f->flags & CONFIG_F_READABLE)
			check_readable(l, f);
		if (f->flags & CONFIG_F_URL_PASSWORD)
			check_url_password(l, f);
	}
}

/* ---- parsing and the public API ---- */

static void diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
}

/* The directory relative paths start from: the config file's, made absolute. */
static char *config_basedir(const char *name)
{
	const char *slash = strrchr(name, '/');
	char cwd[PATH_MAX], *r = NULL;
	size_t n;

	if (slash == name)
		return strdup("/");
	if (name[0] == '/')
		return strndup(name, (size_t)(slash - name));
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	if (!slash)
		return strdup(cwd);
	n = (size_t)(slash - name);
	while (n >= 2 && name[0] == '.' && name[1] == '/') {
		name += 2;
		n -= 2;
	}
	if (n == 0 || (n == 1 && name[0] == '.'))
		return strdup(cwd);
	if (asprintf(&r, "%s/%.*s", strcmp(cwd, "/") == 0 ? "" : cwd, (int)n, name) < 0)
		return NULL;
	return r;
}

static void report_diag(struct loader *l, struct fy_diag *diag)
{
	struct fy_diag_error *de;
	void *it = NULL;

	while ((de = fy_diag_errors_iterate(diag, &it)))
		if (de->type >= FYET_ERROR)
			lerr(l,
			     (struct pos){de->line > 0 ? de->line : 1,
			                  de->column > 0 ? de->column : 1},
			     NULL, "syntax error: %s", de->msg ? de->msg : "invalid YAML");
}

/* Parse the first document; a second one is an error. */
static void parse_and_walk(struct loader *l, const char *text, size_t len)
{
	struct fy_diag_cfg dcfg;
	struct fy_parse_cfg pcfg = {0};
	struct fy_diag *diag = NULL;
	struct fy_parser *fyp = NULL;
	struct fy_document *doc = NULL, *doc2 = NULL;
	struct fy_node *root;
	bool root_ok = true;

	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.output_fn = diag_discard;
	diag = fy_diag_create(&dcfg);
	if (!diag)
		goto nomem;
	fy_diag_set_collect_errors(diag, true);
	/* Duplicate keys are ours to find, so every error of the file is reported. */
	pcfg.flags = FYPCF_QUIET | FYPCF_COLLECT_DIAG | FYPCF_ALLOW_DUPLICATE_KEYS;
	pcfg.diag = diag;
	fyp = fy_parser_create(&pcfg);
	if (!fyp || fy_parser_set_string(fyp, text, len) < 0)
		goto nomem;
	doc = fy_parse_load_document(fyp);
	if (doc && !fy_diag_got_error(diag)) {
		doc2 = fy_parse_load_document(fyp);
		if (doc2) {
			struct fy_document_state *st = fy_document_get_document_state(doc2);
			const struct fy_mark *m = st ? fy_document_state_start_mark(st) : NULL;
			lerr(l, (struct pos){m ? m->line + 1 : 1, m ? m->column + 1 : 1}, NULL,
			     "only one YAML document is allowed");
		}
	}
	if (fy_diag_got_error(diag)) {
		report_diag(l, diag);
		goto out;
	}
	if (doc2)
		goto out;
	root = doc ? fy_document_root(doc) : NULL;
	l->root = node_pos(root, (struct pos){1, 1});
	if (root && !value_usable(l, root, l->root, NULL)) {
		root_ok = false;
	} else if (root && fy_node_get_type(root) != FYNT_MAPPING) {
		lerr(l, l->root, NULL, "the top level must be a mapping");
		root_ok = false;
	} else if (root) {
		walk_mapping(l, root, CONFIG_SCOPE_ROOT, l->c, "");
	}
	if (l->nomem)
		goto out;
	check_required(l, root_ok);
	if (root_ok)
		validate(l);
	goto out;
nomem:
	l->nomem = true;
out:
	if (doc2)
		fy_parse_document_destroy(fyp, doc2);
	if (doc)
		fy_parse_document_destroy(fyp, doc);
	fy_parser_destroy(fyp);
	if (diag)
		fy_diag_destroy(diag);
}

static int cerr_cmp(const void *a, const void *b)
{
	const struct cerr *x = a, *y = b;

	if (x->p.line != y->p.line)
		return x->p.line < y->p.line ? -1 : 1;
	if (x->p.col != y->p.col)
		return x->p.col < y->p.col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Move the collected errors, sorted into file order, to errs. */
static void hand_errors(struct loader *l, struct config_errors *errs)
{
	char **v;
	size_t extra = l->errs_dropped ? 1 : 0;

	if (l->n_errs == 0 && !extra)
		return;
	if (l->n_errs > 1)
		qsort(l->errs, l->n_errs, sizeof(*l->errs), cerr_cmp);
	if (!errs)
		goto drop;
	v = reallocarray(errs->v, errs->n + l->n_errs + extra, sizeof(*v));
	if (!v) {
		l->nomem = true;
		goto drop;
	}
	errs->v = v;
	for (size_t i = 0; i < l->n_errs; i++)
		errs->v[errs->n++] = l->errs[i].msg;
	if (extra && asprintf(&errs->v[errs->n], "%s: too many errors; only the first %d are shown",
	                      l->name, ERRORS_MAX) >= 0)
		errs->n++;
	free(l->errs);
	l->errs = NULL;
	return;
drop:
	for (size_t i = 0; i < l->n_errs; i++)
		free(l->errs[i].msg);
	free(l->errs);
	l->errs = NULL;
}

/* Move the warnings, sorted into file order, to c->warnings. */
static void hand_warnings(struct loader *l, struct config *c)
{
	char **v = NULL;

	if (l->n_warns > 1)
		qsort(l->warns, l->n_warns, sizeof(*l->warns), cerr_cmp);
	if (c && l->n_warns > 0)
		v = reallocarray(NULL, l->n_warns, sizeof(*v));
	for (size_t i = 0; i < l->n_warns; i++) {
		if (v)
			v[i] = l->warns[i].msg;
		else
			free(l->warns[i].msg);
	}
	if (v)
		c->warnings = (struct strv){v, l->n_warns};
	free(l->warns);
	l->warns = NULL;
	l->n_warns = 0;
}

/*
 * The first byte that is not well-formed UTF-8 (or a NUL), *ret_pos its
 * line and column; false when the text is clean. A config is UTF-8 text,
 * and libfyaml 0.7.12 loops forever on some malformed bytes (a directive
 * line such as "%\x9c"), so nothing else reaches it.
 */
static bool utf8_bad(const char *text, size_t len, struct pos *ret_pos)
{
	const unsigned char *s = (const unsigned char *)text;
	struct pos p = {1, 1};
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n = c < 0x80             ? 1
		           : (c & 0xe0) == 0xc0 ? 2
		           : (c & 0xf0) == 0xe0 ? 3
		           : (c & 0xf8) == 0xf0 ? 4
		                                : 0;
		uint32_t cp = n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
		if (c == 0 || n == 0 || i + n > len)
			goto bad;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		/* overlong forms, surrogates and values past U+10FFFF */
		if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			goto bad;
		if (c == '\n') {
			p.line++;
			p.col = 1;
		} else {
			p.col++;
		}
		i += n;
	}
	return false;
bad:
	*ret_pos = p;
	return true;
}

/* file_mode: of the file text came from, 0 when none. */
static int load_text(const char *name, const char *text, size_t len, mode_t file_mode,
                     struct config **ret, struct config_errors *errs)
{
	struct loader l = {.name = name, .root = {1, 1}, .file_mode = file_mode};
	int r = 0;

	l.c = calloc(1, sizeof(*l.c));
	l.basedir = config_basedir(name);
	if (!l.c || !(l.c->path = strdup(name))) {
		l.nomem = true;
		goto out;
	}
	apply_defaults(&l, CONFIG_SCOPE_ROOT, l.c);
	struct pos bad;
	if (!l.nomem && utf8_bad(text, len, &bad))
		lerr(&l, bad, NULL, "not valid UTF-8 text (a config file is UTF-8)");
	else if (!l.nomem)
		parse_and_walk(&l, text, len);
out:
	if (l.nomem)
		r = -ENOMEM;
	else if (l.n_errs > 0)
		r = -EINVAL;
	hand_errors(&l, errs);
	if (r == 0 && l.nomem)
		r = -ENOMEM;
	/* a warning lost to a failed allocation is only a warning: the config stands */
	hand_warnings(&l, r == 0 ? l.c : NULL);
	if (r == 0)
		*ret = l.c;
	else
		config_free(l.c);
	for (size_t i = 0; i < l.n_seen; i++)
		free(l.seen[i]);
	free(l.seen);
	free(l.basedir);
	return r;
}

int config_load_string(const char *name, const char *text, size_t len, struct config **ret,
                       struct config_errors *errs)
{
	return load_text(name, text, len, 0, ret, errs);
}

int config_load(const char *path, struct config **ret, struct config_errors *errs)
{
	struct buf b = BUF_INIT(CONFIG_FILE_MAX);
	struct err e = {0};
	struct stat st;
	int r;

	r = file_read(path, CONFIG_FILE_MAX, false, &b, &e);
	if (r < 0) {
		char *line = NULL;
		char **v = errs ? reallocarray(errs->v, errs->n + 1, sizeof(*v)) : NULL;
		if (v) {
			errs->v = v;
			/* e.msg starts with the path already */
			if (asprintf(&line, "%s", e.msg) >= 0)
				errs->v[errs->n++] = line;
		}
		return r;
	}
	/* only for a warning: a file swapped since it was read costs a warning, no more */
	if (stat(path, &st) < 0)
		st.st_mode = 0;
	r = load_text(path, buf_str(&b), b.len, st.st_mode, ret, errs);
	buf_release(&b);
	return r;
}

static void secret_wipe(struct secret *s)
{
	if (s->value) {
		explicit_bzero(s->value, strlen(s->value));
		free(s->value);
	}
	free(s->source);
	*s = (struct secret){0};
}

static void free_scope(enum config_scope scope, void *base)
{
	for (size_t i = 0; i < config_n_fields; i++) {
		const struct config_field *f = &config_fields[i];

		if (f->scope != scope)
			continue;
		switch (f->type) {
		case CONFIG_T_STR:
		case CONFIG_T_PATH:
			free(*(char **)at(base, f->off));
			*(char **)at(base, f->off) = NULL;
			break;
		case CONFIG_T_STRV:
			strv_release(at(base, f->off));
			break;
		case CONFIG_T_LIST:
		case CONFIG_T_MAP: {
			char *arr = *(char **)at(base, f->off);
			size_t n = *(size_t *)at(base, f->aux);
			for (size_t j = 0; arr && j < n; j++) {
				free_scope(f->elem, arr + j * f->elem_size);
				/* a map item's key is its first member */
				if (f->type == CONFIG_T_MAP)
					free(*(char **)(arr + j * f->elem_size));
			}
			free(arr);
			*(char **)at(base, f->off) = NULL;
			*(size_t *)at(base, f->aux) = 0;
			break;
		}
		default:
			break;
		}
		/* every secret has a *_file key: wipe it once, from there */
		if (f->flags & CONFIG_F_SECRET_FILE)
			secret_wipe(at(base, f->aux));
	}
}

void config_free(struct config *c)
{
	if (!c)
		return;
	free_scope(CONFIG_SCOPE_ROOT, c);
	strv_release(&c->warnings);
	free(c->path);
	free(c);
}

void config_errors_release(struct config_errors *errs)
{
	if (!errs)
		return;
	for (size_t i = 0; i < errs->n; i++)
		free(errs->v[i]);
	free(errs->v);
	errs->v = NULL;
	errs->n = 0;
}

const struct config_provider *config_provider_find(const struct config *c, const char *name)
{
	for (size_t i = 0; c && name && i < c->n_providers; i++)
		if (c->providers[i].name && strcmp(c->providers[i].name, name) == 0)
			return &c->providers[i];
	return NULL;
}

static void free_scope(enum config_scope scope, void *base);

int config_provider_implied(const char *type, struct config_provider **ret)
{
	struct loader l = {.name = "(defaults)", .root = {1, 1}};
	struct config_provider *pv;
	int r = 0;

	if (!type || enum_index(config_provider_types, type) < 0)
		return -EINVAL;
	pv = calloc(1, sizeof(*pv));
	if (!pv)
		return -ENOMEM;
	pv->implied = true;
	if (set_string(&l, &pv->name, strdup(type)) == 0 &&
	    set_string(&l, &pv->type, strdup(type)) == 0)
		apply_defaults(&l, CONFIG_SCOPE_PROVIDER, pv);
	if (l.nomem)
		r = -ENOMEM;
	else if (l.n_errs)
		r = -EINVAL; /* a bad built-in default: every test would see it */
	for (size_t i = 0; i < l.n_errs; i++)
		free(l.errs[i].msg);
	free(l.errs);
	if (r < 0) {
		config_provider_free(pv);
		return r;
	}
	*ret = pv;
	return 0;
}

void config_provider_free(struct config_provider *pv)
{
	if (!pv)
		return;
	free_scope(CONFIG_SCOPE_PROVIDER, pv);
	free(pv->name);
	free(pv);
}

static bool strv_same(const struct strv *a, const struct strv *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return false;
	return true;
}

bool config_provider_same(const struct config_provider *a, const struct config_provider *b)
{
	if (!a || !b || !a->type || !b->type || strcmp(a->type, b->type) != 0)
		return false;
	for (size_t i = 0; i < config_n_fields; i++) {
		const struct config_field *f = &config_fields[i];
		const void *x = at(a, f->off), *y = at(b, f->off);
		bool same = true;

		if (f->scope != CONFIG_SCOPE_PROVIDER || !config_field_applies(f, a->type))
			continue;
		switch (f->type) {
		case CONFIG_T_STR:
		case CONFIG_T_PATH:
			same = str_eq(*(char *const *)x, *(char *const *)y);
			break;
		case CONFIG_T_INT:
		case CONFIG_T_DURATION:
		case CONFIG_T_SIZE:
			same = *(const int64_t *)x == *(const int64_t *)y;
			break;
		case CONFIG_T_BOOL:
			same = *(const bool *)x == *(const bool *)y;
			break;
		case CONFIG_T_ENUM:
			same = *(const int *)x == *(const int *)y;
			break;
		case CONFIG_T_STRV:
			same = strv_same(x, y);
			break;
		default:
			break;
		}
		if (!same)
			return false;
	}
	return true;
}

int config_secret_files(const struct config *c, struct strv *ret)
{
	for (size_t i = 0; i < config_n_fields; i++) {
		const struct config_field *f = &config_fields[i];
		const char *v;

		if (f->scope != CONFIG_SCOPE_ROOT || !(f->flags & CONFIG_F_SECRET_FILE))
			continue;
		v = *(char *const *)at(c, f->off);
		if (v && *v && !strv_contains(ret, v, false) && strv_push(ret, v) < 0)
			return -ENOMEM;
	}
	return 0;
}

const char *config_path(const char *explicit_path)
{
	const char *env;

	if (explicit_path && *explicit_path)
		return explicit_path;
	env = getenv("RUNNERD_CONFIG");
	if (env && *env)
		return env;
	return CONFIG_DEFAULT_PATH;
}

const struct config_flavor *config_flavor_find(const struct config *c, const char *name)
{
	for (size_t i = 0; c && name && i < c->n_flavors; i++)
		if (strcmp(c->flavors[i].name, name) == 0)
			return &c->flavors[i];
	return NULL;
}
