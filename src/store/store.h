/*
 * The state store: one SQLite file (<state_dir>/state.db, WAL, mode 0600)
 * with versioned migrations. All SQL of runnerd lives in store_schema.c.
 *
 * Invariant the manager relies on: a runner's name is written here (phase
 * CREATING) before anything is created for it on the provider or on GitHub,
 * so a crash at any point leaves nothing unaccounted for.
 *
 * A store handle may be used from several threads (SQLite serialized mode,
 * one connection, busy timeout); every write is durable when the call returns.
 */
#ifndef RUNNERD_STORE_H
#define RUNNERD_STORE_H

#include "util/common.h"
#include "util/err.h"
#include "util/words.h"

struct store;

enum store_phase {
	PHASE_CREATING = 0, /* name reserved; provider create not yet confirmed */
	PHASE_CREATED,      /* the provider confirmed the instance */
	PHASE_DELETING,     /* a delete was decided; the row goes when it is done */
};

const char *store_phase_name(enum store_phase p);

struct store_instance {
	char name[INSTANCE_NAME_MAX];
	char flavor[FLAVOR_NAME_MAX];
	char provider[PROVIDER_NAME_MAX];
	char provider_id[PROVIDER_ID_MAX];
	enum store_phase phase;
	int64_t created_at; /* unix seconds: when the name was reserved */
	enum cloud_state cloud_state;
	int64_t runner_id;   /* 0 until known */
	bool seen_on_github; /* the runner was ever listed on GitHub */
	enum github_state github_state;
	enum health health;
	int64_t last_seen;  /* last time GitHub listed it, 0 never */
	int64_t busy_since; /* when it was first seen busy, 0 when not busy */
};

struct store_instance_list {
	struct store_instance *v;
	size_t n;
};

/*
 * Open (creating and migrating) <state_dir>/state.db. The directory is created
 * 0700, the file (and its -wal/-shm) 0600. -ENOTSUP for a file written by a
 * newer runnerd (its schema version is beyond ours): it is never downgraded.
 */
int store_open(const char *state_dir, struct store **ret, struct err *e);
void store_close(struct store *s);
/* The state_dir it was opened in (files beside the database go there). */
const char *store_dir(const struct store *s);
/* The schema version the file is at after store_open. */
int store_schema_version(struct store *s);

/* Insert or replace the row with this name. */
int store_instance_put(struct store *s, const struct store_instance *in, struct err *e);
/* -ENOENT when there is no row. */
int store_instance_get(struct store *s, const char *name, struct store_instance *ret,
                       struct err *e);
/* Every row, oldest first; *ret is replaced (its old contents released). */
int store_instance_list(struct store *s, struct store_instance_list *ret, struct err *e);
void store_instance_list_release(struct store_instance_list *l);
/* Missing is success. */
int store_instance_delete(struct store *s, const char *name, struct err *e);

/* The log of actions taken: what, on which name, why, and the outcome ("ok" or the error). */
int store_log_action(struct store *s, int64_t when, const char *action, const char *name,
                     const char *reason, const char *outcome, struct err *e);
/* Count log rows (tests, status). action may be NULL for all. */
int store_count_actions(struct store *s, const char *action, int64_t *ret, struct err *e);
/* Forget log rows older than before (unix seconds), so the log stays bounded. */
int store_prune_actions(struct store *s, int64_t before, struct err *e);

/* Small durable settings (e.g. "drain" = "1"). get: -ENOENT when unset; *ret malloc'ed. */
int store_kv_set(struct store *s, const char *key, const char *value, struct err *e);
int store_kv_get(struct store *s, const char *key, char **ret, struct err *e);
int store_kv_delete(struct store *s, const char *key, struct err *e);

/*
 * Webhook deliveries seen (X-GitHub-Delivery), so a repeated one is
 * ignored. add: 0 when new (now recorded), -EEXIST when seen before.
 * forget: a delivery whose handling failed, so GitHub's redelivery is
 * handled. prune: those received before `before`. Times are unix ms.
 */
#define STORE_DELIVERY_ID_MAX 80
int store_delivery_add(struct store *s, const char *id, int64_t now, struct err *e);
int store_delivery_forget(struct store *s, const char *id, struct err *e);
/*
 * Whether the delivery was seen (and not forgotten): a committed record,
 * read on a connection of its own that never waits for a write under way.
 */
int store_delivery_seen(struct store *s, const char *id, bool *ret, struct err *e);
int store_delivery_prune(struct store *s, int64_t before, struct err *e);
/* When the newest delivery the store held at store_open was received (unix ms; 0: none). */
int64_t store_deliveries_newest_at_open(struct store *s);

/*
 * The WAL's checkpoints so far, made beside the writers by a thread of the
 * store's own (no commit waits for one), and those that failed.
 */
void store_checkpoint_counts(struct store *s, uint64_t *runs, uint64_t *failed);

/*
 * The jobs table, the sqlite queue (src/queue/queue_sqlite.c is its only
 * user). A row waits (done_at 0) until its job no longer needs a runner;
 * then it stays as a tombstone (done_at, done_why) until pruned, so a
 * "queued" delivered late (GitHub does not promise order) changes nothing.
 * Times are unix milliseconds.
 */
#define STORE_JOB_REPO_MAX   256
#define STORE_JOB_LABELS_MAX 4096 /* the labels as a JSON array */
#define STORE_JOB_WHY_MAX    32
struct store_job {
	int64_t job_id, run_id;
	char repo[STORE_JOB_REPO_MAX];
	char labels[STORE_JOB_LABELS_MAX];
	char flavor[FLAVOR_NAME_MAX];
	char delivery_id[STORE_DELIVERY_ID_MAX];
	int64_t received_at;
	int64_t done_at; /* 0 while it waits */
	char done_why[STORE_JOB_WHY_MAX];
	int64_t attempts;   /* runners made for it so far */
	int64_t next_at;    /* it counts as waiting from then on (backoff), 0 at once */
	int64_t runner_at;  /* when the last runner was made for it, 0 none since */
	int64_t checked_at; /* when GitHub was last asked about it, 0 never */
};

struct store_job_list {
	struct store_job *v;
	size_t n;
};

/* A new waiting job: 0; -EEXIST when the job id is known (waiting or done). */
int store_job_add(struct store *s, const struct store_job *j, struct err *e);
/* The job no longer waits (idempotent; an unknown id becomes a tombstone). */
int store_job_done(struct store *s, int64_t job_id, const char *why, int64_t now, struct err *e);
/* Write attempts, next_at, runner_at and checked_at of a waiting job (none done). */
int store_job_update(struct store *s, const struct store_job *j, struct err *e);
/* One job, waiting or done: -ENOENT when unknown. */
int store_job_get(struct store *s, int64_t job_id, struct store_job *ret, struct err *e);
/* The waiting jobs, oldest first, at most max; *ret is replaced. */
int store_job_list_waiting(struct store *s, size_t max, struct store_job_list *ret, struct err *e);
/*
 * The waiting jobs that did not change (received, a runner made for it,
 * GitHub asked) after before, oldest first, at most max; *ret is replaced.
 */
int store_job_list_due(struct store *s, int64_t before, size_t max, struct store_job_list *ret,
                       struct err *e);
void store_job_list_release(struct store_job_list *l);
/* Waiting jobs of flavor whose next_at has come (at now). */
int store_job_count_waiting(struct store *s, const char *flavor, int64_t now, int64_t *ret,
                            struct err *e);
/* Forget tombstones of jobs done before `before`. */
int store_job_prune(struct store *s, int64_t before, struct err *e);

/*
 * What the webhook intake writes for one delivery: its id recorded as
 * seen and, when it is new, its job added (a queued job of the sqlite
 * queue) or marked done, as store_delivery_add, store_job_add and
 * store_job_done would, but for many deliveries in one transaction (one
 * fsync): store_intake_write. A delivery seen before changes nothing.
 */
enum store_intake_op {
	STORE_INTAKE_RECORD = 0, /* the delivery alone */
	STORE_INTAKE_JOB_ADD,    /* and job, a new waiting job */
	STORE_INTAKE_JOB_DONE,   /* and job.job_id no longer waits (job.done_at, job.done_why) */
};

struct store_intake {
	char delivery_id[STORE_DELIVERY_ID_MAX];
	int64_t received_at; /* unix ms */
	enum store_intake_op op;
	struct store_job job;
	/* set by store_intake_write */
	bool seen;      /* recorded before: nothing was written for it */
	bool job_known; /* JOB_ADD: the job id was known (waiting or done): not added */
};

/*
 * Write v[0..n) in one transaction, in order, durable when it returns 0
 * (each one's seen and job_known then set). On failure nothing of any of
 * them was written: -EINVAL for a bad delivery id or job (before anything
 * is), or the database's error. _marked: and the setting key := value
 * (store_kv_set) in the same transaction (key NULL: none), so a reader of
 * a journal can keep its place with what it wrote.
 */
int store_intake_write(struct store *s, struct store_intake *const *v, size_t n, struct err *e);
/* Whether store_intake_write takes in (its delivery id and job): false is its -EINVAL. */
bool store_intake_valid(const struct store_intake *in);
int store_intake_write_marked(struct store *s, struct store_intake *const *v, size_t n,
                              const char *key, const char *value, struct err *e);

/*
 * The amqp queue's spool: a job's message taken while the broker could not
 * be reached, kept until the broker confirms its publish (then deleted), so
 * a webhook answered 202 is never lost. queue is the broker queue it goes
 * to, body the message (at most STORE_SPOOL_BODY_MAX - 1 bytes of text).
 * add: -EEXIST when the job is spooled already. Times are unix ms.
 */
#define STORE_SPOOL_QUEUE_MAX 256
#define STORE_SPOOL_BODY_MAX  8193
struct store_spooled {
	int64_t job_id;
	char queue[STORE_SPOOL_QUEUE_MAX];
	char body[STORE_SPOOL_BODY_MAX];
	int64_t spooled_at;
};
struct store_spool_list {
	struct store_spooled *v;
	size_t n;
};
int store_spool_add(struct store *s, const struct store_spooled *m, struct err *e);
/* The oldest at most max; *ret is replaced. */
int store_spool_list(struct store *s, size_t max, struct store_spool_list *ret, struct err *e);
void store_spool_list_release(struct store_spool_list *l);
/* Missing is success. */
int store_spool_delete(struct store *s, int64_t job_id, struct err *e);
int store_spool_count(struct store *s, int64_t *ret, struct err *e);

/*
 * One daemon per state dir: an exclusive flock on <state_dir>/runnerd.lock
 * (mode 0600). -EWOULDBLOCK when another process holds it. *ret_fd keeps it.
 */
int store_lock(const char *state_dir, int *ret_fd, struct err *e);
void store_unlock(int fd);

#endif
