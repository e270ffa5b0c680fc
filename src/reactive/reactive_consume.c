/*
 * The consumer, on the pass loop: it hands the planner the jobs that wait
 * per flavor and, after each pass, keeps the queue honest. A job leaves the
 * queue only when it no longer waits (a webhook said so, GitHub said so when
 * asked, or its retries ran out), so a missed webhook costs a recheck, never
 * a runner slot held for ever. It must never call GitHub from an HTTP
 * thread, nor ask GitHub more than REACTIVE_RECHECKS_PER_PASS times a pass.
 */
#include "util/common.h"
#include "reactive/reactive_internal.h"
#include "util/clock.h"
#include "util/log.h"

/* Jobs looked at after one pass at most (oldest first). */
#define CONSUME_LIST_MAX 2000
/* Prune deliveries and tombstones this often. */
#define PRUNE_EVERY_MS (3600LL * 1000)
/*
 * After a pass that has no runner to give (none made, none idle), the
 * jobs due for a recheck (which are minutes apart) are looked for at most
 * this often: under a stream of webhooks, passes follow each other back
 * to back.
 */
#define IDLE_LOOK_EVERY_MS 1000

bool reactive_flavor_full(struct reactive *rx, size_t fi)
{
	return fi < 64 && (atomic_load(&rx->full) >> fi & 1);
}

void reactive_note_room(struct reactive *rx, const struct manager_report *rep, bool draining)
{
	uint64_t full = 0;

	pthread_rwlock_rdlock(&rx->cfg_lock);
	for (size_t i = 0; i < rx->cfg->n_flavors && i < 64; i++) {
		const struct config_flavor *f = &rx->cfg->flavors[i];
		const struct plan_flavor_count *c = NULL;

		for (size_t k = 0; k < rep->plan.n_counts && !c; k++)
			if (strcmp(rep->plan.counts[k].name, f->name) == 0)
				c = &rep->plan.counts[k];
		/* desired at max: one more job waiting would not make one more runner */
		if (draining || (c && c->desired >= (f->max > 0 ? f->max : 0)))
			full |= (uint64_t)1 << i;
	}
	atomic_store(&rx->full, full);
	pthread_rwlock_unlock(&rx->cfg_lock);
}

int64_t reactive_waiting_jobs(void *ctx, const char *flavor)
{
	struct reactive *rx = ctx;
	struct err e = {0};
	int64_t n = 0;

	if (queue_count(rx->q, flavor, clock_wall_ms(), &n, &e) < 0) {
		log_warn("queue: waiting jobs of %s: %s (counted as none this pass)", flavor,
		         e.msg);
		return 0;
	}
	return n;
}

int64_t reactive_spooled(void *ctx)
{
	struct reactive *rx = ctx;
	int64_t n = 0;

	return queue_spooled(rx->q, &n, NULL) == 0 ? n : 0;
}

/* The runners of the pass to the oldest jobs of their flavor (reactive_assign), written back. */
static void assign_runners(struct reactive *rx, const struct manager_report *rep,
                           struct queue_job_list *l, int64_t now)
{
	size_t *given = malloc((l->n ? l->n : 1) * sizeof(*given));
	size_t n_given = 0;

	if (!given || reactive_assign(rep, l->v, l->n, now, given, &n_given) < 0) {
		log_warn("queue: out of memory: the runners of this pass are not assigned to jobs");
		free(given);
		return;
	}
	for (size_t k = 0; k < n_given; k++) {
		struct queue_job *j = &l->v[given[k]];
		struct err e = {0};

		if (queue_update(rx->q, j, &e) < 0)
			log_warn("queue: job %" PRId64 ": %s", j->job_id, e.msg);
	}
	REACTIVE_COUNT(rx, runners_made, n_given);
	free(given);
}

static int64_t backoff_ms(const struct config *cfg, int64_t attempts)
{
	int64_t ms = cfg->queue.recheck_interval * 1000;

	for (int64_t i = 1; i < attempts && ms < REACTIVE_BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < REACTIVE_BACKOFF_MAX_MS ? ms : REACTIVE_BACKOFF_MAX_MS;
}

static void ack(struct reactive *rx, struct queue_job *j, const char *why, int64_t now)
{
	struct err e = {0};

	if (queue_ack(rx->q, j->job_id, why, now, &e) < 0)
		log_warn("queue: job %" PRId64 ": %s (tried again next pass)", j->job_id, e.msg);
}

/*
 * Ask GitHub about one waiting job and act on the answer. -EIO when GitHub
 * did not answer (the caller asks no more this run: a silent GitHub must
 * not hold the pass loop for REACTIVE_RECHECKS_PER_PASS deadlines).
 */
static int recheck(struct reactive *rx, const struct config *cfg, struct github *gh,
                   struct queue_job *j, int64_t now)
{
	struct github_job gj = {0};
	struct err e = {0};
	int r, ret = 0;

	REACTIVE_COUNT(rx, rechecks, 1);
	r = github_get_job(gh, j->repo, j->job_id, &gj, &e);
	j->checked_at = now;
	if (r == -ENOENT) {
		REACTIVE_COUNT(rx, gone, 1);
		log_info("queue: job %" PRId64 " of %s: GitHub no longer knows it: dropped",
		         j->job_id, j->repo);
		ack(rx, j, "gone", now);
		return 0;
	}
	if (r < 0) {
		log_warn("queue: job %" PRId64 ": %s (asked again later)", j->job_id, e.msg);
		ret = -EIO;
		goto update;
	}
	if (strcmp(gj.status, "in_progress") == 0 || strcmp(gj.status, "completed") == 0) {
		REACTIVE_COUNT(rx, recheck_done, 1);
		log_info("queue: job %" PRId64 " is %s (its webhook never came)", j->job_id,
		         gj.status);
		ack(rx, j, gj.status, now);
		goto out;
	}
	if (j->runner_at == 0)
		goto update; /* it still waits, and no runner was made for it yet */
	/* still queued after a runner was made for it */
	if (j->attempts >= cfg->queue.max_attempts) {
		REACTIVE_COUNT(rx, dropped, 1);
		log_warn("queue: job %" PRId64 " of %s (flavor %s) still %s after %" PRId64
		         " runners were made for it: dropped",
		         j->job_id, j->repo, j->flavor, gj.status, j->attempts);
		ack(rx, j, "dropped", now);
		goto out;
	}
	REACTIVE_COUNT(rx, retries, 1);
	j->runner_at = 0;
	j->next_at = now + backoff_ms(cfg, j->attempts);
	log_info("queue: job %" PRId64 " still %s after a runner was made for it (attempt %" PRId64
	         " of %" PRId64 "): counted again in %" PRId64 " s",
	         j->job_id, gj.status, j->attempts, cfg->queue.max_attempts,
	         (j->next_at - now) / 1000);
update:
	if (queue_update(rx->q, j, &e) < 0)
		log_warn("queue: job %" PRId64 ": %s", j->job_id, e.msg);
out:
	github_job_release(&gj);
	return ret;
}

/* Whether j has waited recheck_interval since it last changed. */
static bool due(const struct config *cfg, const struct queue_job *j, int64_t now)
{
	int64_t last = j->received_at;

	if (j->checked_at > last)
		last = j->checked_at;
	if (j->runner_at > last)
		last = j->runner_at;
	return now - last >= cfg->queue.recheck_interval * 1000;
}

static void prune(struct reactive *rx, int64_t now)
{
	struct err e = {0};

	if (rx->pruned_at && now - rx->pruned_at < PRUNE_EVERY_MS)
		return;
	rx->pruned_at = now;
	if (store_delivery_prune(rx->store, now - REACTIVE_KEEP_MS, &e) < 0 ||
	    queue_prune(rx->q, now - REACTIVE_KEEP_MS, &e) < 0)
		log_warn("queue: prune: %s", e.msg);
}

/* Whether the pass made a runner or saw one idle: runners some job may be given. */
static bool runners_to_give(const struct manager_report *rep)
{
	for (size_t i = 0; i < rep->n_events; i++)
		if (rep->events[i].ok && strcmp(rep->events[i].action, "create") == 0)
			return true;
	for (size_t i = 0; i < rep->plan.n_counts; i++)
		if (rep->plan.counts[i].idle > 0)
			return true;
	return false;
}

void reactive_after_pass(struct reactive *rx, struct github *gh, const struct manager_report *rep)
{
	struct queue_job_list l = {0};
	int64_t now = clock_wall_ms();
	struct err e = {0};
	size_t asked = 0;
	bool give;
	int r;

	if (!runners_to_give(rep) && rx->looked_at && now >= rx->looked_at &&
	    now - rx->looked_at < IDLE_LOOK_EVERY_MS)
		return;
	rx->looked_at = now;
	pthread_rwlock_rdlock(&rx->cfg_lock);
	/*
	 * no runner to give: only the jobs due for a recheck are read (by the
	 * queue's age index: a backlog of thousands costs no more than its due ones)
	 */
	give = runners_to_give(rep);
	r = give ? queue_list(rx->q, CONSUME_LIST_MAX, &l, &e)
	         : queue_list_due(rx->q, now - rx->cfg->queue.recheck_interval * 1000,
	                          REACTIVE_RECHECKS_PER_PASS, &l, &e);
	if (r < 0) {
		log_warn("queue: %s", e.msg);
		goto out;
	}
	if (give)
		assign_runners(rx, rep, &l, now);
	for (size_t i = 0; i < l.n && asked < REACTIVE_RECHECKS_PER_PASS; i++) {
		if (!due(rx->cfg, &l.v[i], now))
			continue;
		asked++;
		if (recheck(rx, rx->cfg, gh, &l.v[i], now) < 0)
			break; /* GitHub does not answer: the others wait for the next pass */
	}
	prune(rx, now);
	reactive_backfill(rx, rx->cfg, gh, now);
out:
	pthread_rwlock_unlock(&rx->cfg_lock);
	queue_job_list_release(&l);
}
