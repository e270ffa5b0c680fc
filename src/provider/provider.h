/*
 * The provider front: the one way runnerd reaches a backend (local, lxd,
 * openstack, and later external). A provider is a named instance of a
 * backend type (providers.<name> in the config), so one manager can use two
 * LXD hosts. The manager calls only the functions below and never names a
 * backend: what differs between backends is in struct provider_traits.
 *
 * Every call goes through the front, which treats the backend as untrusted
 * (an external provider's output will be): names going in must be owned by
 * this manager (^<manager>-[0-9a-f]{12}$) and paths inside an instance must
 * be plain; every instance coming back is validated (an owned name, the name
 * asked for, a known state, terminated and bounded fields, a plausible
 * creation time) and an answer that breaks the contract is refused
 * (-EBADMSG) whole, never half-used. Each call gets one deadline (per
 * operation) and sees the cancel flag; a read that ends past its deadline is
 * refused as stale (-ETIMEDOUT). Creates and deletes take one of the
 * provider's `concurrency` slots. Calls, failures, overruns and refusals
 * are counted per operation.
 *
 * Every function returns 0 or a negative errno and, on failure, fills the
 * caller's struct err (nothing here logs above debug). Output parameters
 * are untouched on failure. Functions may be called from several threads.
 */
#ifndef RUNNERD_PROVIDER_H
#define RUNNERD_PROVIDER_H

#include "util/common.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/strv.h"
#include "util/words.h"
#include "config/config.h"
#include "provider/provider_files.h"

#include <stdatomic.h>

struct instance {
	char name[INSTANCE_NAME_MAX];
	char provider_id[PROVIDER_ID_MAX]; /* the backend's own id (pid, LXD name, uuid) */
	char flavor[FLAVOR_NAME_MAX];      /* as recorded by the backend, "" when unknown */
	enum cloud_state state;
	time_t created_at; /* 0 when unknown */
	/* Filled by the front, not by backends: */
	char provider[PROVIDER_NAME_MAX]; /* the provider that answered */
	/* Filled by the manager: the health probe of a booting instance, UNKNOWN if none. */
	enum health probe;
};

struct instance_list {
	struct instance *v;
	size_t n;
	size_t cap;
};

int instance_list_add(struct instance_list *l, const struct instance *in);
void instance_list_release(struct instance_list *l);

/* What create() needs. The strings belong to the caller. */
struct instance_spec {
	const char *name; /* <manager>-<12 hex> */
	const struct config_flavor *flavor;
	const char *startup_script; /* POSIX sh, no secrets in it */
	/*
	 * "KEY=value\n" lines given to the startup script's environment
	 * (ACTIONS_RUNNER_INPUT_JITCONFIG or _TOKEN, ...). Secret: the backend
	 * writes it where only the instance can read it, never into argv.
	 * KEY is [A-Za-z_][A-Za-z0-9_]*; value is either the rest of the line
	 * taken literally or one POSIX single-quoted word ('it'\''s').
	 * Blank lines are skipped.
	 */
	const char *secret_env;
	/* runnerd's verified runner package on this host (traits.runner_from_host), or NULL */
	const char *runner_tarball;
};

/*
 * create() failed and what it made could not be removed (and seen gone):
 * the instance may remain. Keep its record and delete it later.
 */
#define PROVIDER_EMAYREMAIN (-EINPROGRESS)

/* What a backend is, for the manager to act on instead of its name. */
struct provider_traits {
	/* The instance runs runnerd's verified runner package (spec->runner_tarball);
	 * otherwise its image has the runner or the startup script downloads it. */
	bool runner_from_host;
	/* The instance is a process on this host: the startup script exits when the
	 * runner is done (there is no machine to power off) and finds its home and
	 * package in its environment. */
	bool host_process;
	bool pull_files; /* pull_file reads files inside an instance (metrics, logs) */
	bool list_files; /* list_files lists a directory inside an instance (logs) */
	/* health() looks inside a running instance (is the runner process there?);
	 * otherwise it only maps the cloud state. */
	bool health_probe;
	bool denylist; /* policy() enforces runner.denylist */
	/* How it protects the host and other instances, logged once at start ("" none). */
	char note[256];
};

/* What instances may reach and see of the host (provider_policy). */
struct provider_policy {
	const struct strv *denylist;     /* CIDRs no instance may reach (runner.denylist) */
	const struct strv *hidden_dirs;  /* host directories jobs must not see (state, logs) */
	const struct strv *secret_files; /* host files jobs must never read */
};

enum provider_op {
	PROVIDER_OP_CREATE = 0,
	PROVIDER_OP_GET,
	PROVIDER_OP_LIST,
	PROVIDER_OP_DELETE,
	PROVIDER_OP_HEALTH,
	PROVIDER_OP_PULL_FILE,
	PROVIDER_OP_LIST_FILES,
	PROVIDER_OP_POLICY,
	PROVIDER_OP_GC,
};
#define PROVIDER_OP_COUNT (PROVIDER_OP_GC + 1)

/* "create", "list", ... */
const char *provider_op_name(enum provider_op op);

struct provider_op_stats {
	uint64_t calls;
	uint64_t failures; /* returned an error (refusals and overruns of reads included) */
	uint64_t overruns; /* ended past their deadline */
	uint64_t refused;  /* answers that broke the contract */
	uint64_t total_ms; /* time spent in the backend */
};

struct provider_stats {
	struct provider_op_stats op[PROVIDER_OP_COUNT];
};

/* The most pull_file may be asked to read. */
#define PROVIDER_PULL_MAX (64 << 20)

struct provider;

/*
 * Open the provider pc describes (its type's backend) for manager. Backends
 * set nothing up outside themselves here: policy and leftovers are applied
 * by provider_policy and provider_gc. -ENOENT for a type this build lacks.
 */
int provider_open(const struct config_provider *pc, const char *manager, struct provider **ret,
                  struct err *e);
/* Whether this build has a backend of that type. */
bool provider_type_known(const char *type);
void provider_free(struct provider *p);

const char *provider_name(const struct provider *p);
const char *provider_type(const struct provider *p);
const struct provider_traits *provider_traits(const struct provider *p);
/* The flag that makes every call under way give up (-ECANCELED) and new ones fail. */
void provider_set_cancel(struct provider *p, const atomic_bool *cancel);
/* A copy of the counters. */
void provider_stats(struct provider *p, struct provider_stats *ret);

/* -EEXIST when the name exists; PROVIDER_EMAYREMAIN: see above. */
int provider_create(struct provider *p, const struct instance_spec *spec, struct instance *ret,
                    struct err *e);
/* -ENOENT when there is no such instance. */
int provider_get(struct provider *p, const char *name, struct instance *ret, struct err *e);
/* Every instance of this manager; a partial listing is an error. *ret is replaced. */
int provider_list(struct provider *p, struct instance_list *ret, struct err *e);
/* Idempotent: a missing instance is success. */
int provider_delete(struct provider *p, const char *name, struct err *e);
/* From the provider's view; an unknown name is HEALTH_UNKNOWN, not an error. */
int provider_health(struct provider *p, const char *name, enum health *ret, struct err *e);
/*
 * A regular file inside the instance (path relative to the runner's home,
 * or absolute inside the instance; no ".."), at most max_bytes (at most
 * PROVIDER_PULL_MAX); symlinks and non-regular files are refused (-EINVAL),
 * a missing file is -ENOENT, a larger one -E2BIG. -ENOTSUP when the backend
 * cannot (traits.pull_files).
 */
int provider_pull_file(struct provider *p, const char *name, const char *path, size_t max_bytes,
                       struct buf *ret, struct err *e);
/*
 * The regular files in a directory of the instance (path as for
 * pull_file), not recursive, no symlinks: the q->max most useful ones (see
 * struct provider_list_query), most useful first, with the count of all in
 * ret->total. A directory with more files than that is no error: the rest
 * is left out and ret->cut says so. -ENOENT when the directory is missing,
 * -ENOTDIR (or -EINVAL) when it is not one, -ENOTSUP when the backend
 * cannot (traits.list_files). A listing with an entry that breaks the
 * contract (not a plain name, a name twice, more than asked, an impossible
 * size or time) is refused whole (-EBADMSG). *ret is replaced.
 */
int provider_list_files(struct provider *p, const char *name, const char *dir,
                        const struct provider_list_query *q, struct provider_file_list *ret,
                        struct err *e);
/*
 * Make the provider enforce pol from now on (the denylist, what jobs must
 * not see). Idempotent and cheap when nothing changed: the manager applies
 * it at start and on every reload. A backend that cannot apply it now
 * remembers it and retries (a create then fails while a denylist it must
 * enforce is not in place).
 */
int provider_policy(struct provider *p, const struct provider_policy *pol, struct err *e);
/*
 * Remove leftovers that belong to no instance of this manager (stray
 * processes, key pairs and ports). Best effort; called once a pass after
 * its actions. provider_gc_peers: the same, told every provider of the
 * manager's config (peers, n; the backend reads them during this call
 * only), so that it may also remove what it made for a provider no
 * longer there or configured otherwise (the openstack backend's security
 * groups); without them (provider_gc) nothing of that kind is removed.
 */
int provider_gc(struct provider *p, struct err *e);
int provider_gc_peers(struct provider *p, const struct config_provider *peers, size_t n,
                      struct err *e);

#endif
