/*
 * Reactive mode: GitHub's workflow_job webhooks -> the job queue -> the
 * planner's waiting jobs, so a queued job gets a runner at once (the
 * original's router and consumer). The daemon starts it beside its pass
 * loop:
 *
 *   intake (HTTP threads, reactive_intake.c): POST /webhook and GET
 *   /healthz on webhook.listen. The body is capped at webhook.max_body
 *   before it is read; the signature is checked before anything else is;
 *   then dedup by X-GitHub-Delivery, scope (github.path), routing, and a
 *   push to the queue (queued) or an ack (in_progress, completed). A queued
 *   job triggers a pass at once. It never calls GitHub and never waits for
 *   a pass: GitHub hears back within milliseconds.
 *
 *   consumer (the pass loop, reactive_consume.c): waiting jobs per flavor
 *   for the planner (manager_hooks.waiting_jobs), and after each pass the
 *   bookkeeping: which jobs a runner was made for, a recheck with GitHub
 *   (conditional) of jobs no in_progress/completed webhook came for, the
 *   bounded retries with backoff of jobs still queued after a runner was
 *   made for them, and pruning of old deliveries and tombstones; with
 *   webhook.hook_id, the backfill (reactive_backfill.c): failed deliveries
 *   GitHub lists are redelivered; in repository scope with the sqlite
 *   queue, the sweep (reactive_runs.c): queued jobs of the queued and
 *   in-progress runs that no webhook brought are queued.
 *
 * The webhook secret is copied into a secret buffer (wiped when freed) and
 * never logged; request bodies never reach a log line.
 */
#ifndef RUNNERD_REACTIVE_H
#define RUNNERD_REACTIVE_H

#include "util/common.h"
#include "util/err.h"
#include "config/config.h"
#include "github/github.h"
#include "manager/manager.h"
#include "metrics/prom.h"
#include "queue/queue.h"
#include "store/store.h"

struct reactive;

/* How long deliveries seen and jobs no longer waiting are remembered. */
#define REACTIVE_KEEP_MS (3LL * 86400 * 1000)
/* Jobs asked of GitHub after one pass at most (the rest wait for the next). */
#define REACTIVE_RECHECKS_PER_PASS 20
/* The longest backoff of a job still queued after a runner was made for it. */
#define REACTIVE_BACKOFF_MAX_MS (3600LL * 1000)

/* The bounds of the intake's answer times (seconds, rising), and their number. */
#define REACTIVE_ANSWER_BOUNDS 14
extern const double reactive_answer_bounds[REACTIVE_ANSWER_BOUNDS];

/* What the intake and the consumer counted since the start. */
struct reactive_stats {
	uint64_t deliveries;   /* requests to POST /webhook */
	uint64_t unauthorized; /* 401: signature missing or wrong */
	uint64_t malformed;    /* 400/415 */
	/* malformed by status: 400, 413 (a body the parser found too big or deep), 415, other */
	uint64_t refused_400, refused_413, refused_415, refused_other;
	uint64_t duplicates; /* a delivery id seen before */
	uint64_t pings;
	uint64_t other_events;
	uint64_t queued;     /* jobs pushed to the queue */
	uint64_t known;      /* a queued job known already */
	uint64_t acked;      /* in_progress/completed webhooks that ended a wait */
	uint64_t ignored[8]; /* by enum webhook_skip, and actions we do not act on */
	uint64_t errors;     /* the store or the queue failed: 500 */
	uint64_t runners_made;
	uint64_t rechecks;     /* GitHub asked about a waiting job */
	uint64_t recheck_done; /* ... and it no longer waited */
	uint64_t gone;         /* GitHub no longer knows the job */
	uint64_t retries;      /* a job still queued after its runner: backed off */
	uint64_t dropped;      /* retries ran out */
	uint64_t redelivered;  /* failed deliveries the backfill asked GitHub to send again */
	uint64_t caught_up;    /* deliveries a catch-up after a reboot asked GitHub to send again */
	uint64_t listed;       /* queued jobs no webhook brought, found in the runs list */
	/* the intake's writes: deliveries written, in how many commits, the most in one,
	 * and the time the commits took (microseconds, all of them) */
	uint64_t written, commits, commit_max, commit_us;
	/* answer_after write: deliveries answered from the intake's journal and not in the
	 * state store yet, and the journal's commits that failed (tried again) */
	uint64_t journal_behind, journal_failed;
	/*
	 * The time each POST /webhook took, from read whole to answered (microseconds):
	 * how many took at most each of reactive_answer_bounds and more than the one before
	 * (the rest took longer than them all), how many in all, and their total.
	 */
	uint64_t answer_in[REACTIVE_ANSWER_BOUNDS], answered, answer_us;
	/*
	 * Where the time of the deliveries the group commit wrote went (microseconds, all
	 * of them): checked and parsed, waiting for their commit, in it, then until answered.
	 */
	uint64_t staged, stage_parse_us, stage_wait_us, stage_write_us, stage_report_us;
};

/* One answer that took us microseconds, counted in st (its owner's lock held). */
void reactive_stats_answered(struct reactive_stats *st, int64_t us);

/*
 * How reactive mode asks the pass loop for passes (from HTTP threads and
 * the queue's; neither may block): now(ctx) for a pass at once, merged with
 * any asked; later(ctx) for one within a second, merged with any (asked by
 * a job of a flavor the last pass left no room: the waiting jobs the passes
 * count and export stay current). later NULL: such a job asks for nothing.
 */
struct reactive_triggers {
	void (*now)(void *ctx);
	void (*later)(void *ctx);
	void *ctx;
};

/*
 * Start reactive mode over store (borrowed: it must outlive rx): open the
 * queue of cfg->queue.kind and, when webhook.listen is set and a secret is
 * configured, the intake on it, asking for passes through t (copied). cfg
 * is borrowed until reactive_reload swaps it. Errors: the queue's, or the
 * listener's (-EADDRINUSE, ...).
 */
int reactive_start(const struct config *cfg, struct store *store, const struct reactive_triggers *t,
                   struct reactive **ret, struct err *e);
/* The TCP port the intake listens on, 0 when it does not. */
int reactive_port(const struct reactive *rx);

/* The hooks to hand manager_set_hooks (waiting jobs per flavor). */
void reactive_manager_hooks(struct reactive *rx, struct manager_hooks *ret);

/*
 * After a pass, on the pass loop: what the pass created, then rechecks,
 * retries and pruning (GitHub through gh, at most
 * REACTIVE_RECHECKS_PER_PASS calls). Logs what it decides; never fails.
 */
void reactive_after_pass(struct reactive *rx, struct github *gh, const struct manager_report *rep);
/*
 * Whether the backfill runs after passes (webhook.hook_id set, or the
 * sweep of queued runs applies): then a pass comes at least every
 * webhook.backfill_interval. The pass loop.
 */
bool reactive_backfills(const struct reactive *rx, const struct config *cfg);

/*
 * After each pass (rep), on the pass loop: which flavors it left with no
 * room for one more runner (its desired runners at the flavor's max, or
 * draining). Until the next pass, a job queued for one of them is stored
 * and answered but asks for no pass: a runner that leaves (its job's
 * in_progress or completed webhook) or the next interval does.
 */
void reactive_note_room(struct reactive *rx, const struct manager_report *rep, bool draining);

/*
 * Which jobs of v[0..n) (waiting, oldest first, as the queue lists them)
 * the runners of the pass rep reported go to: a flavor's runners (those
 * the pass made, and its idle ones that no job given one earlier holds)
 * go, in list order, to its jobs that have none and whose backoff has
 * passed at now. A job given one gets runner_at = now and attempts + 1;
 * ret_given (room for n) gets the indexes of those jobs in order, *ret_n
 * their count. O(n log n). -ENOMEM (v untouched).
 */
int reactive_assign(const struct manager_report *rep, struct queue_job *v, size_t n, int64_t now,
                    size_t *ret_given, size_t *ret_n);

/*
 * A new config (SIGHUP), used from the next request and pass on; the
 * secret is re-read from it. listen and max_body keep their values until
 * a restart (a warning says so). The old config may be freed on return.
 */
void reactive_reload(struct reactive *rx, const struct config *cfg);

void reactive_get_stats(struct reactive *rx, struct reactive_stats *ret);

/*
 * The counters of st as Prometheus families added to reg (runnerd_webhook_*
 * and runnerd_reactive_*, every series from 0). -ENOMEM, -EINVAL.
 */
int reactive_prom_put(const struct reactive_stats *st, struct prom_registry *reg);
/*
 * A metrics_prom collector (ctx: the struct reactive): rx's counters, read
 * under their own lock at each scrape, never waiting for a pass.
 */
int reactive_prom_collect(void *ctx, struct prom_registry *reg);

/* Stop the intake (waits for its handlers), close the queue. NULL-safe. */
void reactive_stop(struct reactive *rx);

#endif
