/*
 * runnerd.yaml as typed structs. config_load() parses with libfyaml through
 * one table of fields, validates the whole file, and reports every error as
 * "FILE:LINE:COLUMN: key: message" (1-based). Secrets (token, App key,
 * webhook secret, AMQP URI, repo-policy token) are read from the files or
 * environment variables the config names, never from the config itself, and
 * are held in struct config only; config_print() redacts them.
 *
 * Ownership: struct config owns every string and array in it; config_free()
 * releases (and wipes the secrets of) the whole tree. After a successful load
 * every char * below is non-NULL ("" when unset); relative paths have been
 * resolved against the config file's directory (absolute when it could be).
 *
 * Proxy URLs (github.proxy, runner.proxy.http/https) may carry
 * "user:password@": the password is then a secret held in the config itself.
 * Anything that shows such a URL, or any URL that may hold one (api_url, the
 * AMQP URI), in a log line or a message shows it through config_redact_url().
 */
#ifndef RUNNERD_CONFIG_H
#define RUNNERD_CONFIG_H

#include "util/common.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/strv.h"
#include "util/words.h"

#define CONFIG_DEFAULT_PATH "/etc/runnerd/runnerd.yaml"
#define MANAGER_NAME_MAX    50
#define QUEUE_PREFIX_MAX    63 /* characters of queue.prefix */

enum queue_kind { QUEUE_SQLITE = 0, QUEUE_AMQP };
/* webhook.answer_after: when a new delivery is answered, once flushed or once written. */
enum answer_after { ANSWER_AFTER_FLUSH = 0, ANSWER_AFTER_WRITE };
enum lxd_type { LXD_CONTAINER = 0, LXD_VM };
enum lxd_bootstrap { LXD_BOOTSTRAP_CLOUD_INIT = 0, LXD_BOOTSTRAP_EXEC };
/* runner.storage: where the runner's _work directory lives inside an instance. */
enum runner_storage { RUNNER_STORAGE_DISK = 0, RUNNER_STORAGE_MEMORY };

/* A secret read at load time; value is NULL when not configured. */
struct secret {
	char *value;
	char *source; /* "file:/path" or "env:NAME", safe to print */
};

struct config_app {
	int64_t app_id;
	int64_t installation_id;
	char *private_key_file;
	struct secret private_key; /* PEM */
};

struct config_github {
	char *api_url; /* default https://api.github.com; no trailing '/' */
	char *path;    /* "owner/repo" or "org" */
	bool is_org;   /* derived: path has no '/' */
	char *token_file;
	char *token_env;
	bool use_app; /* app: given */
	struct config_app app;
	struct secret token;     /* PAT; NULL when use_app */
	char *runner_group;      /* default "default"; organizations only */
	char *ca_file;           /* "" = system store */
	char *proxy;             /* "" = HTTPS_PROXY/NO_PROXY from the environment */
	int64_t connect_timeout; /* seconds, default 10 */
	int64_t request_timeout; /* seconds, default 30 */
};

struct config_manager {
	char *name;                 /* [a-z0-9-], 1..50 */
	char *state_dir;            /* default /var/lib/runnerd */
	char *log_dir;              /* default /var/log/runnerd */
	int64_t log_retention;      /* seconds, default 7d */
	int64_t logs_max_size;      /* bytes of saved logs in all, default 1GiB */
	int64_t metrics_retention;  /* seconds, default 7d */
	int64_t reconcile_interval; /* seconds, default 5m */
	int64_t bootstrap_timeout;  /* seconds, default 20m */
	int64_t job_timeout;        /* seconds, default 6h */
	int64_t create_concurrency; /* 1..100, default 10 */
};

struct config_resources {
	int64_t vcpu;   /* default 2 */
	int64_t memory; /* bytes, default 7GiB */
	int64_t disk;   /* bytes, default 10GiB */
};

struct config_flavor {
	char *name;     /* [a-z0-9-], unique */
	char *provider; /* the name of a provider instance (config_provider_find finds it) */
	char *image;
	enum arch arch;     /* default x64 */
	struct strv labels; /* as written, without the implied ones */
	int64_t min_idle;   /* 0..max */
	int64_t max;        /* >= 1 */
	struct config_resources resources;
	int line; /* where the flavor starts, for later messages */
};

struct config_local {
	char *work_dir; /* default /var/lib/runnerd/local */
	char *user;     /* default runnerd-runner: what instances of an older runnerd ran as */
	/* "FIRST-LAST": a uid and gid of its own per instance, default 2000000000-2000065535 */
	char *uid_range;
	bool allow_weak_isolation; /* run without namespaces where the kernel has none */
	int64_t stop_timeout;      /* seconds between TERM and KILL on delete, default 10 */
};

/*
 * A providers.<name>.uid_range value: "FIRST-LAST" in decimal, 1 <= FIRST
 * <= LAST <= CONFIG_UID_MAX, 65534 and 65535 (nobody, the 16-bit -1) not
 * inside. -EINVAL otherwise; *ret_first and *ret_last are then untouched.
 */
#define CONFIG_UID_MAX 2147483646u
int config_uid_range_parse(const char *s, uint32_t *ret_first, uint32_t *ret_last);

struct config_lxd {
	char *socket;                 /* default /var/lib/lxd/unix.socket */
	char *project;                /* default "default" */
	char *network;                /* default lxdbr0 */
	char *storage_pool;           /* default "default" */
	struct strv profiles;         /* default [default] */
	enum lxd_type type;           /* container | virtual-machine */
	enum lxd_bootstrap bootstrap; /* cloud-init | exec */
	int64_t stop_timeout;         /* seconds of graceful stop before a forced one, default 10 */
	int64_t operation_timeout; /* seconds per LXD operation (create, start, ...), default 2m */
};

/* providers.<name> of type openstack (see docs/config.md). */
struct config_openstack {
	char *clouds_yaml;    /* path of a clouds.yaml, required */
	char *cloud;          /* the entry under its clouds:, required */
	char *region;         /* "" = the cloud's region_name, else the first in the catalog */
	char *interface;      /* "" = the cloud's, else public; public | internal | admin */
	char *ca_file;        /* "" = the cloud's cacert, else the system store */
	char *flavor;         /* Nova flavor, name or id, required */
	char *network;        /* Neutron network, name or id, required */
	char *security_group; /* "" = <manager>-runners, made when missing */
	char *ssh_key;        /* "" = no key pair; else an OpenSSH public key file */
	bool config_drive;
	char *secret_url;        /* base URL instances reach runnerd's webhook listener at */
	int64_t request_timeout; /* seconds per API request, default 30s */
};

/*
 * One provider instance: providers.<name>. A manager may have several of a
 * type (two LXD hosts, two projects). A key that is a type name and has no
 * `type` is an instance of that type (providers.lxd = instance "lxd" of type
 * lxd); a flavor naming a type that has no entry gets an implied instance of
 * that type with every default. Only the part of the struct that belongs to
 * its type is filled (the other parts are zero).
 */
struct config_provider {
	char *name;                /* the key: [a-z0-9-], 1-31 characters */
	char *type;                /* one of config_provider_types */
	int64_t concurrency;       /* at most this many creates and deletes on it at once; 1-100 */
	bool implied;              /* not in the file: a flavor named its type */
	int line;                  /* where it starts in the file; 0 when implied */
	struct config_local local; /* type local */
	struct config_lxd lxd;     /* type lxd */
	struct config_openstack openstack; /* type openstack */
};

/* The provider types this build can configure (and open), NULL-ended. */
extern const char *const config_provider_types[];

struct config_proxy {
	char *http;
	char *https;
	char *no_proxy;
	bool aproxy;
	/* aproxy: DNAT target IPv4:PORT ("" = the http proxy's host and port), the
	 * TCP ports redirected (empty = 80, 443) and the IPv4 destinations left
	 * alone (empty = the private ranges); each validated. */
	char *aproxy_address;
	struct strv aproxy_ports;
	struct strv aproxy_exclude;
};

struct config_ssh_debug {
	char *host;
	int64_t port;
	char *rsa_fingerprint;
	char *ed25519_fingerprint;
};

/* runner.install: what the startup script installs before the runner starts. */
struct config_snap {
	char *name;
	char *channel;    /* RISK, TRACK/RISK, RISK/BRANCH or TRACK/RISK/BRANCH */
	int64_t revision; /* 0: the channel's current one */
};

struct config_executable {
	char *url;    /* https://, or http:// to loopback (tests) */
	char *cmd;    /* the name it gets on PATH */
	char *sha256; /* 64 hex digits */
};

struct config_runner {
	bool jit; /* default true */
	/* seconds between two looks at GitHub's runner releases (conditional), default 1h */
	int64_t version_check_interval;
	/* an image's runner further behind the latest release than this (seconds since the
	 * release that superseded it) is replaced at start from the verified package; 21d */
	int64_t image_runner_max_behind;
	struct config_proxy proxy;
	char *dockerhub_mirror; /* "" or https://... */
	struct config_ssh_debug *ssh_debug;
	size_t n_ssh_debug;
	struct config_snap *snaps; /* install.snaps */
	size_t n_snaps;
	struct config_executable *executables; /* install.executables */
	size_t n_executables;
	char *pre_job_script; /* shell text run by the pre-job hook before each job, "" none */
	/* disk (default): _work on the instance's disk; memory: a tmpfs of storage_size bytes
	 * mounted on it by the startup script (not on local providers: check-config refuses) */
	enum runner_storage storage;
	int64_t storage_size;  /* default 4GiB */
	char *repo_policy_url; /* repo_policy_compliance.url */
	char *repo_policy_token_file;
	struct secret repo_policy_token;
	struct strv denylist; /* CIDRs, validated */
};

struct config_webhook {
	char *listen; /* "" = disabled; default 127.0.0.1:8080 */
	char *secret_file;
	char *secret_env;
	struct secret secret;
	int64_t max_body;        /* bytes of a delivery at most, default 1MiB; larger: 413 unread */
	int64_t max_connections; /* served at once, default 64; more wait to be accepted */
	/* at once from one client address, default 0 = no limit (behind a proxy every
	 * delivery comes from its address) */
	int64_t max_connections_per_address;
	/* the hook's id on GitHub: its failed deliveries are redelivered; 0 = off */
	int64_t hook_id;
	int64_t backfill_interval;      /* seconds between two looks at them, default 2m */
	enum answer_after answer_after; /* default flush */
};

struct config_queue {
	enum queue_kind kind;
	char *uri_file;
	char *uri_env;
	struct secret uri; /* AMQP URI */
	/* amqp: what every name runnerd makes on the broker starts with ("<prefix>."); default
	 * runnerd */
	char *prefix;
	char *ca_file; /* amqps: the CA bundle the broker's certificate is checked against; ""
	                  system */
	/* seconds a queued job waits before its state is asked of GitHub, and the
	 * first backoff of a job a runner was made for that is still queued; default 2m */
	int64_t recheck_interval;
	int64_t max_attempts; /* runners made for one job before it is dropped, default 5 */
};

struct config_metrics {
	char *events_log; /* default /var/log/runnerd/metrics.log */
	char *listen;     /* "" = disabled; default 127.0.0.1:9464 */
};

struct config {
	char *path; /* the file it was loaded from */
	/*
	 * What a successful load found worth fixing but not fatal (a secret file
	 * other users can read, ...), one per line, "FILE:LINE:COLUMN: warning:
	 * key: message", in file order; never a secret. check-config prints them
	 * on stderr; serve should log each once at warning level.
	 */
	struct strv warnings;
	struct config_github github;
	struct config_manager manager;
	struct config_flavor *flavors;
	size_t n_flavors;
	/* every provider a flavor names, in file order, implied ones last */
	struct config_provider *providers;
	size_t n_providers;
	struct config_runner runner;
	struct config_webhook webhook;
	struct config_queue queue;
	struct config_metrics metrics;
};

/* One error per line, "FILE:LINE:COLUMN: key: message". */
struct config_errors {
	char **v;
	size_t n;
};

/*
 * Load and validate path. On success *ret is a new config and errs is empty
 * ((*ret)->warnings may not be). On failure returns -EINVAL (or -errno for
 * an unreadable file), *ret is untouched and errs holds every problem found,
 * in file order.
 */
int config_load(const char *path, struct config **ret, struct config_errors *errs);
/* Same from a memory buffer; name is used in messages. */
int config_load_string(const char *name, const char *text, size_t len, struct config **ret,
                       struct config_errors *errs);
void config_free(struct config *c);
void config_errors_release(struct config_errors *errs);

/* The normalized config as YAML, every key with its effective value, secrets redacted. */
int config_print(const struct config *c, struct buf *out);

/* What config_print() and config_redact_url() write in place of a URL's password. */
#define CONFIG_REDACTED "REDACTED"

/*
 * url with its password, if any, replaced by CONFIG_REDACTED, for a log line
 * or a message: "http://user:pw@proxy:3128" -> "http://user:REDACTED@proxy:3128".
 * A URL without "user:password@" in its authority comes back as it is. The
 * result is written to buf (cap bytes, always terminated; a longer result is
 * cut, which never uncovers the password) and buf is returned, so it can be
 * used inline: log_info("proxy %s", config_redact_url(u, b, sizeof(b))).
 * url NULL is ""; cap 0 returns "" and writes nothing.
 */
const char *config_redact_url(const char *url, char *buf, size_t cap);

/* Which path to load: explicit (-c) > $RUNNERD_CONFIG > CONFIG_DEFAULT_PATH. */
const char *config_path(const char *explicit_path);

const struct config_flavor *config_flavor_find(const struct config *c, const char *name);
/*
 * Whether repo ("owner/name", from a webhook or a runner's file: untrusted)
 * is github.path (repository scope) or a repository of its organization
 * (organization scope), case-insensitively. The one test of it: the webhook
 * intake and the GitHub client's run-jobs calls (the metrics lookup) ask here.
 */
bool config_repo_in_scope(const struct config *c, const char *repo);
/*
 * Whether a new delivery is answered once written to the intake's journal,
 * the state store's synced commit behind it (webhook.answer_after write),
 * rather than once its own commit is flushed.
 */
bool config_answer_after_write(const struct config *c);
/*
 * Whether what a power cut can take from the intake is in the state store
 * alone (answer_after write with the sqlite queue; with amqp the broker
 * confirmed each job first), so that after a reboot runnerd asks GitHub to
 * redeliver it: the catch-up (reactive_catch_up.c), and check-config's
 * warning when there is no webhook.hook_id to ask with.
 */
bool config_catch_up_after_reboot(const struct config *c);
/*
 * One cloud of an OpenStack clouds.yaml. Password auth (auth_type password
 * or v3password, the default) or application credentials
 * (v3applicationcredential); secret is the password or the credential's
 * secret. Domains not given default to domain_name/domain_id, then to the
 * domain id "default". Strings are NULL when absent.
 */
struct config_cloud {
	char *auth_url; /* http(s)://..., no trailing '/' */
	bool app_cred;
	char *username, *user_id, *user_domain_name, *user_domain_id;
	char *project_name, *project_id, *project_domain_name, *project_domain_id;
	char *app_cred_id, *app_cred_name;
	char *secret; /* wiped on release */
	char *region_name;
	char *cacert;
	bool verify; /* default true; false is refused by the openstack provider */
};

/*
 * The cloud of that name in the clouds.yaml at path (or in text, len bytes,
 * named name in messages). -EINVAL with "FILE:LINE:COLUMN: clouds.<cloud>.<key>:
 * message" (never a value) when it is missing or unusable; *ret is
 * untouched on failure.
 */
int config_cloud_load(const char *path, const char *cloud, struct config_cloud *ret, struct err *e);
int config_cloud_parse(const char *name, const char *text, size_t len, const char *cloud,
                       struct config_cloud *ret, struct err *e);
void config_cloud_release(struct config_cloud *c);

/* The provider instance of that name; NULL when there is none. */
const struct config_provider *config_provider_find(const struct config *c, const char *name);
/*
 * A provider of that type named after it, with every default of the type
 * (what a flavor naming the type implies), for a provider no longer in the
 * config that still holds instances. -EINVAL for a type config_provider_types
 * lacks. Free with config_provider_free.
 */
int config_provider_implied(const char *type, struct config_provider **ret);
void config_provider_free(struct config_provider *pv);
/* Whether a and b are the same type with the same settings (names and lines aside). */
bool config_provider_same(const struct config_provider *a, const struct config_provider *b);

/*
 * The secret files the config names (token, App key, webhook secret, AMQP
 * URI, repo-policy token), as absolute paths, appended to *ret: what a job
 * must never be able to read. 0 or -ENOMEM.
 */
int config_secret_files(const struct config *c, struct strv *ret);

#endif
