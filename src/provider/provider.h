/*
 * The provider interface (the original's CloudRunnerManager): a table of
 * function pointers chosen by name. A provider creates, lists and deletes
 * instances — machines that each host one runner — and reads files from
 * them. It never touches an instance whose name is not owned by this
 * manager (name_is_owned(manager, name)).
 *
 * Every function returns 0 or a negative errno and, on failure, fills the
 * caller's struct err (providers never log above debug). Output parameters
 * are untouched on failure. Functions may be called from several executor
 * threads at once.
 */
#ifndef RUNNERD_PROVIDER_H
#define RUNNERD_PROVIDER_H

#include "util/common.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/strv.h"
#include "util/words.h"
#include "config/config.h"

struct instance {
	char name[INSTANCE_NAME_MAX];
	char provider_id[128]; /* the provider's own id (pid, LXD name, server uuid) */
	char flavor[64];       /* as recorded by the provider, "" when unknown */
	enum cloud_state state;
	time_t created_at; /* 0 when unknown */
	/* Filled by the manager, not by providers: */
	char provider[32]; /* the provider that listed it */
	enum health probe; /* provider health check of a booting instance, UNKNOWN if none */
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
	const char *manager;
	const struct config_flavor *flavor;
	const char *startup_script; /* POSIX sh, no secrets in it */
	/*
	 * "KEY=value\n" lines given to the startup script's environment
	 * (ACTIONS_RUNNER_INPUT_JITCONFIG or _TOKEN, ...). Secret: the provider
	 * writes it where only the instance can read it, never into argv.
	 * KEY is [A-Za-z_][A-Za-z0-9_]*; value is either the rest of the line
	 * taken literally or one POSIX single-quoted word ('it'\''s').
	 * Blank lines are skipped.
	 */
	const char *secret_env;
	const char *runner_tarball; /* verified runner package on this host, or NULL */
};

struct provider;

struct provider_ops {
	const char *name;
	int (*create)(struct provider *p, const struct instance_spec *spec, struct instance *ret,
	              struct err *e);
	/* -ENOENT when there is no such instance. */
	int (*get)(struct provider *p, const char *name, struct instance *ret, struct err *e);
	/*
	 * Only names owned by manager; a partial listing is an error. On
	 * success *ret holds exactly this listing (old contents released).
	 */
	int (*list)(struct provider *p, const char *manager, struct instance_list *ret,
	            struct err *e);
	/* Idempotent: a missing instance is success. */
	int (*delete)(struct provider *p, const char *name, struct err *e);
	/* From the provider's view only; an unknown name is HEALTH_UNKNOWN (not an error). */
	int (*health)(struct provider *p, const char *name, enum health *ret, struct err *e);
	/*
	 * A regular file inside the instance (path relative to the runner's
	 * home / work dir, or absolute inside the instance), at most max_bytes;
	 * symlinks and non-regular files are refused (-EINVAL), a missing file
	 * is -ENOENT, a larger one -E2BIG.
	 */
	int (*pull_file)(struct provider *p, const char *name, const char *path, size_t max_bytes,
	                 struct buf *ret, struct err *e);
	/*
	 * Optional (NULL = unsupported): the names of the regular files in a
	 * directory of the instance (path as for pull_file), under the same
	 * safety rules; not recursive, no symlinks. -ENOENT when the directory
	 * is missing, -ENOTDIR (or -EINVAL) when it is not a directory. On
	 * success *ret holds the names (old contents released): release with
	 * strv_release().
	 */
	int (*list_files)(struct provider *p, const char *name, const char *dir, struct strv *ret,
	                  struct err *e);
	void (*free)(struct provider *p);
};

struct provider {
	const struct provider_ops *ops;
	void *priv;
};

/* Pick a provider by name ("local", ...) and set it up from cfg. */
int provider_new(const char *name, const struct config *cfg, struct provider **ret, struct err *e);
/* Whether a provider of that name is built in. */
bool provider_known(const char *name);
void provider_free(struct provider *p);

#endif
