/*
 * What the files of src/reactive share: the state of reactive mode, guarded
 * as said below. Never included from outside src/reactive/.
 */
#ifndef RUNNERD_REACTIVE_INTERNAL_H
#define RUNNERD_REACTIVE_INTERNAL_H

#include "reactive/reactive.h"
#include "http/server.h"
#include "queue/queue.h"
#include "util/buf.h"
#include "util/group_commit.h"
#include "webhook/webhook.h"

#include <pthread.h>
#include <stdatomic.h>

struct reactive {
	/* read-locked by every request and the consumer, write-locked by reload */
	pthread_rwlock_t cfg_lock;
	const struct config *cfg;
	struct buf secret; /* the webhook secret, a secret buffer; empty: none */

	struct store *store; /* borrowed */
	struct queue *q;
	struct http_server *http; /* NULL: no intake */
	char listen[128];         /* what the intake listens on (restart to change) */
	int64_t max_body;

	/* the intake's writes: deliveries that arrive together share a commit */
	struct group_commit *gc; /* NULL: no intake */
	/* answer_after write: the intake's journal (reactive_journal.c); NULL: none */
	struct reactive_journal *journal;
	/*
	 * Flavors (bit i: the config's flavor i, i < 64) the last pass left with no room
	 * for one more runner (at max, or the manager drains): a job queued for one asks
	 * for no pass of its own, as one could not make it a runner. Set by the pass
	 * loop, cleared by a reload; read by the HTTP threads.
	 */
	_Atomic uint64_t full;

	void (*trigger)(void *ctx);
	void (*trigger_later)(void *ctx); /* NULL: a full flavor's job asks for nothing */
	void *trigger_ctx;

	pthread_mutex_t stats_lock;
	struct reactive_stats stats;
	int64_t warned_at;        /* last rejected-request warning (mono ms), under stats_lock */
	int64_t behind_warned_at; /* last "behind" warning of the journal (mono ms), likewise */

	int64_t pruned_at;     /* last prune (wall ms), the pass loop's */
	int64_t looked_at;     /* last look at the waiting jobs (wall ms), the pass loop's */
	int64_t backfilled_at; /* last backfill run (wall ms), the pass loop's */
	/* the runs whose every queued job a sweep settled (reactive_runs.c), the pass loop's:
	 * their jobs are not read again until they change */
	struct reactive_run_seen {
		int64_t id, attempt, updated_at; /* as the runs list said */
		int64_t settled_at;              /* when its jobs were read (unix s) */
	} * runs_settled;
	size_t n_runs_settled;

	/* the catch-up after a reboot (reactive_catch_up.c), the pass loop's once started */
	char boot[64];             /* this boot's id, "" when unreadable */
	int64_t catch_up_since;    /* deliveries since then (unix s) to look at; 0: none to make */
	int64_t catch_up_began;    /* when the first try began (unix s) */
	int64_t catch_up_tried_at; /* the last try (wall ms) */
};

/* Deliveries written in one transaction at most (the rest join the next). */
#define REACTIVE_BATCH_MAX 256
/* A deferred delivery not written by then is answered 503 (GitHub waits 10 s). */
#define REACTIVE_DEFER_MS 9000

/* Add n to one counter (any thread). */
#define REACTIVE_COUNT(rx, field, n)                                                               \
	do {                                                                                       \
		pthread_mutex_lock(&(rx)->stats_lock);                                             \
		(rx)->stats.field += (n);                                                          \
		pthread_mutex_unlock(&(rx)->stats_lock);                                           \
	} while (0)

/*
 * reactive_timing.c. answered: a POST /webhook answered now, read whole at
 * since_us (clock_mono_us). staged: one the group commit wrote, answered
 * at answered, with the times t it passed (clock_mono_us each).
 */
struct reactive_stages {
	int64_t received;  /* read whole: its handler began */
	int64_t submitted; /* checked and parsed: handed to the committer */
	int64_t began;     /* its commit began */
	int64_t ended;     /* ... and ended */
};
void reactive_answered(struct reactive *rx, int64_t since_us);
void reactive_staged(struct reactive *rx, const struct reactive_stages *t, int64_t answered);

/* reactive_intake.c: the routes of webhook.listen. */
extern const struct http_route reactive_routes_template[];
extern const size_t reactive_n_routes;

/* reactive_intake.c: the intake committer's fn (rx: ctx). */
int reactive_write_batch(void *ctx, struct group_commit_item **v, size_t n);

/*
 * reactive_journal.c: the intake's journal. exists: whether state_dir has
 * one (an earlier run's, to apply). open: state_dir's, what it
 * holds applied to the store first, then its applier started. take: with
 * answer_after write, in's delivery appended (0), or *seen when the id is
 * in the store or appended already (0, nothing appended); -EBUSY when the
 * applier stayed too far behind for a while; -errno of the write (nothing
 * appended in either case). settle: wait (timeout_ms at most) until every
 * record appended is in the store: 0, or -EIO (a commit failed, or the
 * time ran out). counts: what the applier wrote. close: what is appended
 * applied (unless the store fails), the thread joined. NULL-safe but take.
 */
struct reactive_journal;
struct reactive_journal_counts {
	uint64_t written, commits, commit_max, commit_us; /* as the group commit counts them */
	uint64_t behind; /* deliveries answered, not in the store yet */
	uint64_t failed; /* commits of the applier that failed */
};
bool reactive_journal_exists(const char *state_dir);
int reactive_journal_open(struct reactive *rx, const char *state_dir, struct reactive_journal **ret,
                          struct err *e);
int reactive_journal_take(struct reactive_journal *jr, struct store_intake *in, bool *seen);
/* How far (bytes of records) the applier may fall behind before take waits, then -EBUSY. */
void reactive_journal_set_behind_max(struct reactive_journal *jr, uint64_t bytes);
int reactive_journal_settle(struct reactive_journal *jr, int64_t timeout_ms);
void reactive_journal_counts(struct reactive_journal *jr, struct reactive_journal_counts *ret);
void reactive_journal_close(struct reactive_journal *jr);

/*
 * reactive_intake.c: what follows from a delivery the journal's applier
 * wrote to the store (in: seen and job_known set): counted, logged, and a
 * pass asked for, as the intake does for one it answers after its commit.
 */
void reactive_intake_written(struct reactive *rx, const struct store_intake *in);

/* reactive_consume.c: whether the last pass left flavor fi (the config's index) no room. */
bool reactive_flavor_full(struct reactive *rx, size_t fi);

/* reactive_consume.c: the waiting_jobs hook. */
int64_t reactive_waiting_jobs(void *ctx, const char *flavor);
/* reactive_consume.c: the spooled hook (jobs the queue keeps until its broker is back). */
int64_t reactive_spooled(void *ctx);

/*
 * reactive_catch_up.c. plan (at start): whether deliveries answered before
 * their fsync in an earlier boot must be looked for on GitHub. mark: write
 * down this boot as one that flushes behind (or that it does not), unless
 * a catch-up is still to be made. catch_up (the pass loop, before the
 * backfill): make it, when planned; true when it was made now (it looked
 * at the failed deliveries of its window too).
 */
void reactive_catch_up_plan(struct reactive *rx, const struct config *cfg);
void reactive_catch_up_mark(struct reactive *rx, const struct config *cfg);
bool reactive_catch_up(struct reactive *rx, const struct config *cfg, struct github *gh,
                       int64_t now);

/* reactive_intake.c: the labels as a JSON array, for the queue's message (-ENOSPC: too long). */
int reactive_labels_json(const struct strv *labels, char *out, size_t cap);

/*
 * reactive_runs.c: whether the sweep of the runs applies (repository
 * scope, the sqlite queue, the intake on), and one sweep (the pass loop, every
 * backfill_interval): queued jobs no webhook brought are queued.
 */
bool reactive_runs_wanted(const struct reactive *rx, const struct config *cfg);
void reactive_runs_sweep(struct reactive *rx, const struct config *cfg, struct github *gh,
                         int64_t now_ms);

/*
 * reactive_backfill.c: when it is time (every backfill_interval), redeliver
 * missed deliveries (webhook.hook_id set) and sweep the queued runs
 * (reactive_runs_wanted).
 */
void reactive_backfill(struct reactive *rx, const struct config *cfg, struct github *gh,
                       int64_t now);

#endif
