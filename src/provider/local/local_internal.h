/*
 * What the files of the local provider (local.h) share, and what its unit
 * tests reach: the provider's state, runnerd's per-instance records, the
 * uids it gives out, what it reads of /proc and how it parses it, the
 * environment, the spawn and stop steps and the instance's files.
 * Declarations go by file, lowest layer first. Never included from outside
 * src/provider/local/ (but by its unit tests): the rest of runnerd has
 * local.h, and the manager only provider.h.
 *
 * Every file here keeps the provider's promises: never run an instance as
 * root, as the daemon's user or as a uid another live instance has, never
 * put a secret into argv or into a file, never signal a process whose
 * start time does not match runnerd's own record (pids are reused) or
 * whose uids are not all the instance's (or, for an instance an older
 * runnerd started, the legacy user's), every signal going through a pidfd
 * taken before the last check, and never follow a symlink inside an
 * instance directory: the instance's uid owns that directory and
 * everything in it is hostile input.
 */
#ifndef RUNNERD_PROVIDER_LOCAL_INTERNAL_H
#define RUNNERD_PROVIDER_LOCAL_INTERNAL_H

#include "util/common.h"
#include "provider/backend.h"
#include "provider/local.h"

#include <dirent.h>
#include <pthread.h>

#define LOCAL_HIDE_MAX        8
#define LOCAL_SECRETS_MAX     8
#define LOCAL_SECRET_MAX      (256 * 1024) /* instance_spec.secret_env, bytes */
#define LOCAL_KILL_TIMEOUT_MS 5000         /* one KILL round of a stop (two at most) */
#define LOCAL_POLL_MS         50           /* how often a wait looks at what it waits for */
#define LOCAL_USER_MAX        32
#define LOCAL_SCRIPT_FILE     "startup.sh"    /* in the instance dir */
#define LOCAL_LOG_FILE        "startup.log"   /* in the instance dir: the script's output */
#define LOCAL_TARBALL_FILE    "runner.tar.gz" /* in the instance dir: the runner package */

/*
 * What an isolated instance must not see (from the policy): directories
 * that become an empty tmpfs and secret files covered by an empty file. A
 * value, copied into each spawn plan under the lock, so a policy changed
 * by a reload never tears a spawn that is under way.
 */
struct local_hiding {
	char hide[LOCAL_HIDE_MAX][PATH_MAX]; /* canonical */
	size_t n_hide;
	int hide_root;              /* index of the hidden ancestor of work_dir, -1 when none */
	const char *tmp_targets[2]; /* bound to the instance's tmp/ when isolated */
	size_t n_tmp;
	char secrets[LOCAL_SECRETS_MAX][PATH_MAX]; /* canonical */
	size_t n_secrets;
};

/* The provider's state (p->priv). */
struct local {
	pthread_mutex_t lock;
	char work_dir[PATH_MAX];  /* canonical, root-owned 0711 */
	char state_dir[PATH_MAX]; /* work_dir/.state, root-owned 0700 */
	/* providers.<name>.user: what instances of an older runnerd ran as (legacy records) */
	char user[LOCAL_USER_MAX + 1];
	uid_t uid;
	gid_t gid;
	/* providers.<name>.uid_range: one uid (and the gid of that number) per instance */
	uint32_t uid_first, uid_last;
	int64_t stop_timeout_ms;
	bool can_isolate;
	bool forced_fallback;       /* RUNNERD_LOCAL_NO_NAMESPACES=1 */
	bool isolate;               /* lock */
	struct local_hiding hiding; /* lock */
	char empty[PATH_MAX];       /* state_dir/empty: root-owned, 0400, size 0 */
	/* Names this process is creating right now (lock). */
	char (*creating)[INSTANCE_NAME_MAX];
	size_t n_creating, cap_creating;
};

/* a/b<suffix> into out; -ENAMETOOLONG when it does not fit. */
static inline int local_path_join(char *out, size_t cap, const char *a, const char *b,
                                  const char *suffix)
{
	if ((size_t)snprintf(out, cap, "%s/%s%s", a, b, suffix) >= cap)
		return -ENAMETOOLONG;
	return 0;
}

/* ---- proc.c: reading /proc ------------------------------------------- */

struct local_proc_info {
	char state;
	pid_t session;
	uint64_t starttime;
};

/* A PID namespace, as the inode of /proc/<pid>/ns/pid. */
struct local_ns_id {
	dev_t dev;
	ino_t ino;
};

/* A process's real, effective, saved and filesystem uids and gids. */
struct local_proc_ids {
	uid_t uid[4];
	gid_t gid[4];
};

int local_proc_info_read(pid_t pid, struct local_proc_info *ret);
int local_proc_uid(pid_t pid, uid_t *ret);
int local_proc_ids_read(pid_t pid, struct local_proc_ids *ret);
bool local_proc_pidns_within(pid_t pid, const struct local_ns_id *set, size_t n);
/* The next process of an opendir("/proc") listing; false at its end. */
bool local_proc_next(DIR *d, pid_t *ret);

/* ---- proc_parse.c: what /proc's files say (pure) --------------------- */

/*
 * The text of /proc/<pid>/stat (NUL-terminated): state (field 3), session
 * (6) and start time (22), counted after the last ')' since the command
 * name may hold anything. -EIO when a field is missing or not a number.
 */
int local_proc_parse_stat(const char *data, struct local_proc_info *ret);
/*
 * The text of /proc/<pid>/status (NUL-terminated): the uid of its "Uid:"
 * line when the real, effective, saved and filesystem uids are that one;
 * -EPERM when they differ, -EIO when the line is missing or malformed.
 */
int local_proc_parse_uid(const char *data, uid_t *ret);
/* All four of its "Uid:" and "Gid:" lines; -EIO when one is missing or malformed. */
int local_proc_parse_ids(const char *data, struct local_proc_ids *ret);
/* A zombie or dead state letter. */
bool local_proc_dead_state(char s);

/* ---- record.c: runnerd's records of its instances -------------------- */

/*
 * runnerd's record of one instance: work_dir/.state/<name>.json. Version 2
 * holds the instance's uid; a version 1 record is of an instance an older
 * runnerd started as the shared user (legacy: its uid is l->uid, and its
 * processes are told apart by session and PID namespace).
 */
struct local_record {
	char name[INSTANCE_NAME_MAX];
	char flavor[64];
	pid_t pid;          /* 0 while being created */
	uint64_t starttime; /* field 22 of /proc/<pid>/stat: tells a reused pid apart */
	uid_t uid;          /* its uid and gid; held from the record's writing to its removal */
	bool legacy;
	bool isolated;
	time_t created_at;
};

/* work_dir/.state/<name>.json */
int local_record_path(const struct local *l, const char *name, char *out, size_t cap);
/* Open state_dir to go through its records, never through a symlink; -errno. */
int local_records_open(const struct local *l, DIR **ret);
/* The instance a state_dir entry records ("<name>.json" -> name); false for any other. */
bool local_record_name(const char *file, char name[INSTANCE_NAME_MAX]);
/*
 * fn for every record of state_dir that can be read (one that cannot names
 * nothing it could be trusted for), until fn returns non-zero: that, or 0,
 * or -errno when state_dir cannot be read through.
 */
int local_records_each(struct local *l, int (*fn)(const struct local_record *rec, void *arg),
                       void *arg);
/* Atomically (root's, 0600); never a legacy record. */
int local_record_write(const struct local *l, const struct local_record *r, struct err *e);
/* -ENOENT when there is no record, -EBADMSG when it cannot be understood. */
int local_record_read(const struct local *l, const char *name, struct local_record *ret,
                      struct err *e);
/* The names this process is creating (l->creating); call with l->lock held. -EEXIST. */
bool local_creating_has(const struct local *l, const char *name);
int local_creating_add(struct local *l, const char *name);
void local_creating_remove(struct local *l, const char *name);
/*
 * Where the record says the instance is. An error (not "gone") means /proc
 * could not be read: the caller must not conclude the instance stopped.
 */
int local_record_state(struct local *l, const struct local_record *rec, enum cloud_state *ret,
                       struct err *e);
void local_record_to_instance(const struct local_record *rec, enum cloud_state s,
                              struct instance *ret);

/* ---- uids.c: the uids instances run as ------------------------------- */

/*
 * At open: refuse a uid_range that holds the daemon's or the legacy user's
 * uid, an account's uid, a group's gid or an /etc/subuid or /etc/subgid
 * entry (another's uids, whose processes gc would kill).
 */
int local_uids_check(const struct local *l, const char *provider, struct err *e);
/*
 * Give rec a uid of the range that no record holds, no process has (as
 * any of its uids or gids) and no account or group has, the least recently
 * given out first, and write rec: both under a lock on state_dir's uid
 * file, so concurrent creates (of this process or another) never share
 * one. The lock is waited for until the call's deadline. -EAGAIN when
 * every uid of the range is taken.
 */
int local_uid_claim(struct local *l, const struct provider_call *c, struct local_record *rec,
                    struct err *e);
/* Is uid in the range? */
static inline bool local_uid_ours(const struct local *l, uid_t uid)
{
	return uid >= l->uid_first && uid <= l->uid_last;
}

/* ---- env.c: the instance's environment ------------------------------- */

struct local_env {
	char **v; /* NULL-terminated */
	size_t n, cap;
};

/* Free every entry, overwritten first (they hold secrets); env is empty after. */
void local_env_wipe(struct local_env *env);
/*
 * The entries the provider sets, which a secret may not replace: PATH,
 * HOME and RUNNERD_HOME (home), LANG, USER (user) and, with a runner
 * package, RUNNERD_RUNNER_TARBALL (home/runner.tar.gz). -ENOMEM.
 */
int local_env_base(struct local_env *env, const char *home, const char *user, bool tarball);
/*
 * Add the secrets of s (instance_spec.secret_env: "KEY=value" lines, the
 * value literal to the end of the line or one POSIX single-quoted word,
 * 'it'\''s', which may span lines; blank lines skipped) to env. A key
 * already in env (one the provider sets, or a repeated one) is refused, as
 * is a bad key or bad quoting (-EINVAL), and s over LOCAL_SECRET_MAX bytes
 * (-E2BIG). Messages name the line and the key, never a value. On failure
 * env may hold some of s's entries: the caller wipes it.
 */
int local_env_add_secrets(struct local_env *env, const char *s, struct err *e);

/* ---- spawn.c: starting an instance ----------------------------------- */

/* Everything the children need, computed before fork (spawn.c's own). */
struct local_spawn_plan;

struct local_spawn_handle {
	pid_t pid;
	int pidfd;
	uint64_t starttime;
	int rep; /* read end */
	int go;  /* write end */
};

/* fd, or a duplicate of it above stdio (async-signal-safe: for children). */
int local_fd_above2(int fd);
/*
 * The plan of the instance in dir, whose script runs as uid (and the gid of
 * that number, no other group) and starts with envp (kept, not copied: it
 * must outlive the plan); -ENOMEM, -ENAMETOOLONG.
 */
int local_spawn_plan_new(const char *name, struct local *l, bool isolate, const char *dir,
                         uid_t uid, char **envp, struct local_spawn_plan **ret, struct err *e);
void local_spawn_plan_free(struct local_spawn_plan *pl);
/*
 * The handshake with the children: start A and B (B then waits), then let
 * B run the script. Each wait ends at the call's deadline and once the
 * call is cancelled (-ECANCELED); the caller then cleans up: closing h->go
 * makes a B that was not let go exit by itself, h->pidfd reaches one that
 * was.
 */
int local_spawn_start(const char *name, struct local_spawn_plan *pl, const struct provider_call *c,
                      struct local_spawn_handle *h, struct err *e);
int local_spawn_go(const char *name, struct local_spawn_handle *h, const struct provider_call *c,
                   struct err *e);
void local_spawn_close(struct local_spawn_handle *h);

/* ---- stop.c: stopping instances, sweeping leftovers ------------------ */

/* TERM, grace_ms, then KILL every process of rec's instance (see stop.c). */
int local_stop(struct local *l, const struct local_record *rec, int64_t grace_ms,
               const struct provider_call *c, struct err *e);
/* Kill the processes of the range's uids that no record holds, and the legacy user's (gc). */
int local_sweep(struct local *l, const struct provider_call *c);

/* ---- files.c: the instance's files ----------------------------------- */

/*
 * Fill the new dir (startup script and runner package: root's, read-only;
 * log and tmp/: uid's), then hand it to uid.
 */
int local_instance_populate(const char *dir, const struct instance_spec *spec, uid_t uid,
                            struct err *e);
int local_pull_file(struct provider *p, const struct provider_call *c, const char *name,
                    const char *path, size_t max_bytes, struct buf *ret, struct err *e);
int local_list_files(struct provider *p, const struct provider_call *c, const char *name,
                     const char *dir, const struct provider_list_query *q,
                     struct provider_file_list *ret, struct err *e);

/* ---- setup.c: the user, work_dir, isolation and policy --------------- */

int local_open(struct provider *p, const struct config_provider *pc, struct err *e);
void local_close(struct provider *p);
int local_policy(struct provider *p, const struct provider_call *c,
                 const struct provider_policy *pol, struct err *e);

/* ---- ops.c: the operations ------------------------------------------- */

/* A valid instance name (the front checked ownership already); -EINVAL. */
int local_check_name(const char *name, struct err *e);

#endif
