/*
 * The job queue between the webhook intake and the manager: jobs that wait
 * for a runner, by flavor. One interface, backends chosen by name as the
 * providers are (a table of function pointers): `sqlite`, a table in the
 * state database (queue_sqlite.c), and `amqp` (RabbitMQ, to share work
 * among managers: queue_amqp.c says how its waiting jobs are the messages
 * delivered to this manager and not yet acknowledged). A message is the job as the original's
 * router publishes it: {job_id, run_id, repo, labels, flavor, delivery_id, received_at}; the rest
 * of struct queue_job is the consumer's bookkeeping (attempts, backoff, rechecks), kept by the
 * backend beside it.
 *
 * A job is acknowledged (ack) only when it no longer waits: a runner took
 * it, it was cancelled or completed, GitHub no longer knows it, or its
 * retries ran out. Backends never log above debug and never call GitHub.
 * Every operation may be called from any thread.
 */
#ifndef RUNNERD_QUEUE_H
#define RUNNERD_QUEUE_H

#include "util/common.h"
#include "util/err.h"
#include "config/config.h"
#include "store/store.h"

#define QUEUE_REPO_MAX     256
#define QUEUE_LABELS_MAX   4096 /* the labels as a JSON array of strings */
#define QUEUE_DELIVERY_MAX 80
#define QUEUE_WHY_MAX      32

struct queue_job {
	/* the message */
	int64_t job_id; /* > 0 */
	int64_t run_id;
	char repo[QUEUE_REPO_MAX];
	char labels[QUEUE_LABELS_MAX];
	char flavor[FLAVOR_NAME_MAX];
	char delivery_id[QUEUE_DELIVERY_MAX];
	int64_t received_at; /* unix ms */
	/* the consumer's bookkeeping, unix ms (0: not yet) */
	int64_t attempts;   /* runners made for it */
	int64_t next_at;    /* counts as waiting from then on (backoff) */
	int64_t runner_at;  /* when the last runner was made for it */
	int64_t checked_at; /* when GitHub was last asked about it */
};

struct queue_job_list {
	struct queue_job *v;
	size_t n;
};

void queue_job_list_release(struct queue_job_list *l);

struct queue;

struct queue_ops {
	const char *name;
	/* Publish a queued job: 0; -EEXIST when this job is known already
	 * (waiting, or acknowledged: a late "queued" never revives a job). */
	int (*push)(struct queue *q, const struct queue_job *j, struct err *e);
	/* The job no longer waits (why: "in_progress", "completed", "gone",
	 * "dropped", ...): idempotent; an unknown job is remembered as done. */
	int (*ack)(struct queue *q, int64_t job_id, const char *why, int64_t now, struct err *e);
	/* Waiting jobs of flavor whose backoff has passed at now. */
	int (*count)(struct queue *q, const char *flavor, int64_t now, int64_t *ret, struct err *e);
	/* Every waiting job, oldest first, at most max; *ret is replaced. */
	int (*list)(struct queue *q, size_t max, struct queue_job_list *ret, struct err *e);
	/* Optional: the waiting jobs unchanged since before (received_at, runner_at
	 * and checked_at all at or before it), oldest first, at most max; absent:
	 * list and keep those. */
	int (*list_due)(struct queue *q, int64_t before, size_t max, struct queue_job_list *ret,
	                struct err *e);
	/* Write back the bookkeeping of a waiting job (an acked one is left alone). */
	int (*update)(struct queue *q, const struct queue_job *j, struct err *e);
	/* Forget acknowledged jobs older than before (unix ms). */
	int (*prune)(struct queue *q, int64_t before, struct err *e);
	/* 0 when the queue can be used now (the broker is reachable, ...). */
	int (*health)(struct queue *q, struct err *e);
	/* Optional: jobs taken but not yet handed over (the amqp spool); absent: 0. */
	int (*spooled)(struct queue *q, int64_t *ret, struct err *e);
	/* Optional: a new config's flavors (the amqp queue consumes theirs). */
	int (*reload)(struct queue *q, const struct config *cfg, struct err *e);
	/* Optional: call fn(ctx), from any thread, when jobs arrive that no
	 * push of this process brought (another manager published them). */
	void (*set_notify)(struct queue *q, void (*fn)(void *), void *ctx);
	void (*free)(struct queue *q);
};

/*
 * A queue of cfg->queue.kind. The sqlite backend borrows store (it must
 * outlive the queue). -EOPNOTSUPP for a kind this build has no backend for.
 */
int queue_open(const struct config *cfg, struct store *store, struct queue **ret, struct err *e);
int queue_sqlite_open(struct store *store, struct queue **ret, struct err *e);
/*
 * The amqp backend: cfg->queue.uri, a queue "<queue.prefix>.<flavor>" per
 * flavor of cfg (queue_reload changes them). It connects in its own thread:
 * health says -ECONNREFUSED until then and while the broker is away. With a
 * store (borrowed, it must outlive the queue), a push the broker cannot take
 * is spooled there and published when it is back; without one it fails.
 * -EOPNOTSUPP when this build has no librabbitmq.
 */
int queue_amqp_open(const struct config *cfg, struct store *store, struct queue **ret,
                    struct err *e);

/*
 * The state store q keeps its jobs in (the sqlite backend), NULL when
 * another system keeps them (amqp). With it, the webhook intake records a
 * delivery and pushes or acks its job in one transaction of that store
 * (store_intake_write, a job as queue_sqlite_row makes it) rather than
 * through push and ack: the same rows, one fsync.
 */
struct store *queue_sqlite_store(const struct queue *q);
/* j as a row of the store's jobs table. */
void queue_sqlite_row(const struct queue_job *j, struct store_job *ret);

/* The backend's name ("sqlite"). */
const char *queue_name(const struct queue *q);

/* The operations, through the table (argument checks here, once). */
int queue_push(struct queue *q, const struct queue_job *j, struct err *e);
int queue_ack(struct queue *q, int64_t job_id, const char *why, int64_t now, struct err *e);
int queue_count(struct queue *q, const char *flavor, int64_t now, int64_t *ret, struct err *e);
int queue_list(struct queue *q, size_t max, struct queue_job_list *ret, struct err *e);
int queue_list_due(struct queue *q, int64_t before, size_t max, struct queue_job_list *ret,
                   struct err *e);
int queue_update(struct queue *q, const struct queue_job *j, struct err *e);
int queue_prune(struct queue *q, int64_t before, struct err *e);
int queue_health(struct queue *q, struct err *e);
void queue_set_notify(struct queue *q, void (*fn)(void *), void *ctx);
/* Jobs taken but not yet in the queue proper (the amqp spool): 0 for a backend without one. */
int queue_spooled(struct queue *q, int64_t *ret, struct err *e);
/* A reloaded config (its flavors); cfg need not outlive the call. */
int queue_reload(struct queue *q, const struct config *cfg, struct err *e);
void queue_free(struct queue *q); /* NULL-safe */

/* What every backend's struct starts with. */
struct queue {
	const struct queue_ops *ops;
};

#endif
