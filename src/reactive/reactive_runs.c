/*
 * Jobs whose queued webhook never came, found in GitHub's lists
 * (repository scope, the sqlite queue, the intake on). GitHub redelivers nothing by
 * itself, and without webhook.hook_id runnerd cannot ask it to; so every
 * backfill_interval the pass loop lists the repository's queued runs
 * (a conditional request: free while none was queued or left the queue)
 * and the jobs of each (conditional too: a waiting run's jobs do not
 * change), and queues a job that is queued on GitHub, routes to a flavor
 * and is unknown to the queue, as its webhook would have; a pass then
 * makes its runner. It must never queue a job the queue knows (waiting or
 * ended), one younger than RUNS_GRACE_S or backfill_interval (its webhook
 * may be on its way),
 * nor read more than RUNS_JOBS_PER_SWEEP runs' jobs a sweep.
 */
#include "util/common.h"
#include "reactive/reactive_internal.h"
#include "util/log.h"
#include "util/strutil.h"

/* Queued runs looked at in a sweep at most, newest first. */
#define RUNS_MAX 100
/* Runs whose jobs are read in a sweep at most (a request each), the oldest first. */
#define RUNS_JOBS_PER_SWEEP 20
/* A job queued this recently (seconds; or within backfill_interval) is left to its webhook. */
#define RUNS_GRACE_S 60

bool reactive_runs_wanted(const struct reactive *rx, const struct config *cfg)
{
	/* jobs come only through the intake with this queue: no intake, no reactive mode */
	return rx && rx->http && strchr(cfg->github.path, '/') &&
	       strcmp(queue_name(rx->q), "sqlite") == 0;
}

/* Queue j of repo (found queued on GitHub) when it routes to a flavor and is new: true. */
static bool take(struct reactive *rx, const struct config *cfg, const char *repo,
                 const struct github_job *j, int64_t now_ms)
{
	struct strv labels = {.v = j->labels, .n = j->n_labels};
	struct queue_job q = {.job_id = j->id, .run_id = j->run_id, .received_at = now_ms};
	struct err e = {0};
	size_t fi;
	int r;

	if (webhook_route(cfg, &labels, &fi) < 0 ||
	    reactive_labels_json(&labels, q.labels, sizeof(q.labels)) < 0)
		return false; /* not a job for runners of ours */
	str_copy(q.repo, repo, sizeof(q.repo));
	str_copy(q.flavor, cfg->flavors[fi].name, sizeof(q.flavor));
	r = queue_push(rx->q, &q, &e);
	if (r == -EEXIST)
		return false;
	if (r < 0) {
		log_warn("sweep: job %" PRId64 " of %s: %s", j->id, repo, e.msg);
		return false;
	}
	REACTIVE_COUNT(rx, listed, 1);
	log_info("sweep: job %" PRId64 " of %s (run %" PRId64 ") is queued on GitHub and no "
	         "webhook brought it: queued for flavor %s",
	         j->id, repo, j->run_id, q.flavor);
	return true;
}

void reactive_runs_sweep(struct reactive *rx, const struct config *cfg, struct github *gh,
                         int64_t now_ms)
{
	const char *repo = cfg->github.path;
	struct github_run_list runs = {0};
	struct err e = {0};
	size_t asked = 0, taken = 0;
	int64_t now_s = now_ms / 1000;
	int64_t grace = cfg->webhook.backfill_interval < RUNS_GRACE_S
	                        ? cfg->webhook.backfill_interval
	                        : RUNS_GRACE_S;

	if (github_list_runs(gh, repo, "queued", RUNS_MAX, &runs, &e) < 0) {
		log_warn("sweep: %s (tried again in %" PRId64 " s)", e.msg,
		         cfg->webhook.backfill_interval);
		return;
	}
	/* the oldest first: a job missed long ago waits longest */
	for (size_t i = runs.n; i-- > 0 && asked < RUNS_JOBS_PER_SWEEP;) {
		struct github_job_list jobs = {0};
		int r;

		if (runs.v[i].created_at && now_s - runs.v[i].created_at < grace)
			continue;
		asked++;
		err_clear(&e);
		r = github_list_run_jobs(gh, repo, runs.v[i].id, &jobs, &e);
		if (r < 0) {
			github_job_list_release(&jobs);
			if (r == -ENOENT)
				continue; /* gone since the list */
			log_warn("sweep: %s", e.msg);
			break; /* a silent GitHub holds no pass loop: the rest next sweep */
		}
		for (size_t k = 0; k < jobs.n; k++) {
			const struct github_job *j = &jobs.v[k];
			if (strcmp(j->status, "queued") == 0 &&
			    !(j->created_at && now_s - j->created_at < grace))
				taken += take(rx, cfg, repo, j, now_ms);
		}
		github_job_list_release(&jobs);
	}
	github_run_list_release(&runs);
	if (taken && rx->trigger)
		rx->trigger(rx->trigger_ctx);
}
