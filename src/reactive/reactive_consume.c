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

int64_t reactive_waiting_jobs(void *ctx, const char *flavor)
{
	struct reactive *rx = ctx;
	struct err e = {0};
	int64_t n = 0;

	if (queue_count(rx->q, flavor, clock_wall_ms(), &n, &e) < 0) {
		log_warn("queue: waiting jobs of %s: %s (counted as none this pass)", flavor, e.msg);
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

/* Successful creates of flavor in the pass, and the runners it saw idle. */
static void runners_for(const struct manager_report *rep, const char *flavor, int64_t *ret_made,
                        int64_t *ret_idle)
{
	*ret_made = *ret_idle = 0;
	for (size_t i = 0; i < rep->n_events; i++) {
		const struct manager_event *ev = &rep->events[i];
		if (ev->ok && strcmp(ev->action, "create") == 0 && strcmp(ev->flavor, flavor) == 0)
			(*ret_made)++;
	}
	for (size_t i = 0; i < rep->plan.n_counts; i++)
		if (strcmp(rep->plan.counts[i].name, flavor) == 0)
			*ret_idle = rep->plan.counts[i].idle;
}

/*
 * The runners a job could have now go to the oldest jobs of their flavor
 * that have none: each runner the pass made (it made them for the jobs
 * that wait), and each idle one that no job given one earlier holds. A job
 * still queued recheck_interval after it was given one was not taken by
 * it (its labels are not what the webhook said, the runner never came up,
 * ...): that is what its retries count.
 */
static void assign_runners(struct reactive *rx, const struct manager_report *rep,
                           struct queue_job_list *l, int64_t now)
{
	bool *now_given = calloc(l->n ? l->n : 1, sizeof(*now_given));

	if (!now_given) {
		log_warn("queue: out of memory: the runners of this pass are not assigned to jobs");
		return;
	}
	for (size_t i = 0; i < l->n; i++) {
		struct queue_job *j = &l->v[i];
		struct err e = {0};
		int64_t made, idle, given = 0, held = 0;

		if (j->runner_at != 0 || j->next_at > now)
			continue;
		runners_for(rep, j->flavor, &made, &idle);
		for (size_t k = 0; k < l->n; k++) {
			if (k == i || strcmp(l->v[k].flavor, j->flavor) != 0 || l->v[k].runner_at == 0)
				continue;
			if (now_given[k])
				given++; /* by this pass, earlier in this loop */
			else
				held++;
		}
		if (given >= made + (idle > held ? idle - held : 0))
			continue;
		j->runner_at = now;
		j->attempts++;
		now_given[i] = true;
		if (queue_update(rx->q, j, &e) < 0)
			log_warn("queue: job %" PRId64 ": %s", j->job_id, e.msg);
		REACTIVE_COUNT(rx, runners_made, 1);
	}
	free(now_given);
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
		log_info("queue: job %" PRId64 " of %s: GitHub no longer knows it: dropped", j->job_id,
		         j->repo);
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

void reactive_after_pass(struct reactive *rx, struct github *gh, const struct manager_report *rep)
{
	struct queue_job_list l = {0};
	int64_t now = clock_wall_ms();
	struct err e = {0};
	size_t asked = 0;

	pthread_rwlock_rdlock(&rx->cfg_lock);
	if (queue_list(rx->q, CONSUME_LIST_MAX, &l, &e) < 0) {
		log_warn("queue: %s", e.msg);
		goto out;
	}
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
