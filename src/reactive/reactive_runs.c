/*
 * Jobs whose queued webhook never came, found in GitHub's lists
 * (repository scope, the sqlite queue, the intake on). GitHub redelivers
 * nothing by itself, and without webhook.hook_id runnerd cannot ask it to;
 * so every backfill_interval the pass loop lists the repository's queued
 * runs (a conditional request: free while none was queued or left the
 * queue) and the jobs of each new one (conditional too), and queues a job
 * that is queued on GitHub, routes to a flavor and is unknown to the
 * queue, as its webhook would have; a pass then makes its runner. It must
 * never queue a job the queue knows (waiting or ended), nor one younger
 * than RUNS_GRACE_S or backfill_interval (its webhook may be on its way);
 * never read more than RUNS_JOBS_PER_SWEEP runs' jobs a sweep, nor read
 * again the jobs of a run whose every queued job it settled (queued, known
 * to the queue, or not ours): a waiting run's jobs do not change.
 */
#include "util/common.h"
#include "reactive/reactive_internal.h"
#include "util/log.h"
#include "util/strutil.h"

/* Queued runs looked at in a sweep at most, newest first. */
#define RUNS_MAX 100
/*
 * Runs whose jobs are read in a sweep at most (a request each, on the pass
 * loop), the oldest first; a run whose every queued job was settled is not
 * read again while it stays queued.
 */
#define RUNS_JOBS_PER_SWEEP 10
/* A job queued this recently (seconds; or within backfill_interval) is left to its webhook. */
#define RUNS_GRACE_S 60

bool reactive_runs_wanted(const struct reactive *rx, const struct config *cfg)
{
	/* jobs come only through the intake with this queue: no intake, no reactive mode */
	return rx && rx->http && strchr(cfg->github.path, '/') &&
	       strcmp(queue_name(rx->q), "sqlite") == 0;
}

/* What became of a queued job the sweep found. */
enum found { FOUND_TAKEN, FOUND_SETTLED, FOUND_FAILED };

/*
 * Queue j of repo (found queued on GitHub) when it routes to a flavor and
 * is new (TAKEN); SETTLED: not a job of ours, or one the queue knows.
 */
static enum found take(struct reactive *rx, const struct config *cfg, const char *repo,
                       const struct github_job *j, int64_t now_ms)
{
	struct strv labels = {.v = j->labels, .n = j->n_labels};
	struct queue_job q = {.job_id = j->id, .run_id = j->run_id, .received_at = now_ms};
	struct err e = {0};
	size_t fi;
	int r;

	if (webhook_route(cfg, &labels, &fi) < 0 ||
	    reactive_labels_json(&labels, q.labels, sizeof(q.labels)) < 0)
		return FOUND_SETTLED; /* not a job for runners of ours */
	str_copy(q.repo, repo, sizeof(q.repo));
	str_copy(q.flavor, cfg->flavors[fi].name, sizeof(q.flavor));
	r = queue_push(rx->q, &q, &e);
	if (r == -EEXIST)
		return FOUND_SETTLED;
	if (r < 0) {
		log_warn("sweep: job %" PRId64 " of %s: %s", j->id, repo, e.msg);
		return FOUND_FAILED;
	}
	REACTIVE_COUNT(rx, listed, 1);
	log_info("sweep: job %" PRId64 " of %s (run %" PRId64 ") is queued on GitHub and no "
	         "webhook brought it: queued for flavor %s",
	         j->id, repo, j->run_id, q.flavor);
	return FOUND_TAKEN;
}

static bool settled_before(const struct reactive *rx, int64_t run_id)
{
	for (size_t i = 0; i < rx->n_runs_settled; i++)
		if (rx->runs_settled[i] == run_id)
			return true;
	return false;
}

/*
 * The jobs of run_id read and each queued one taken: whether every one was
 * settled (none too young, none failed); -EIO when GitHub did not answer.
 */
static int sweep_run(struct reactive *rx, const struct config *cfg, struct github *gh,
                     int64_t run_id, int64_t grace, int64_t now_ms, size_t *taken)
{
	const char *repo = cfg->github.path;
	struct github_job_list jobs = {0};
	struct err e = {0};
	bool settled = true;
	int r = github_list_run_jobs(gh, repo, run_id, &jobs, &e);

	if (r == -ENOENT)
		return 0; /* gone since the list */
	if (r < 0) {
		log_warn("sweep: %s", e.msg);
		return -EIO;
	}
	for (size_t k = 0; k < jobs.n; k++) {
		const struct github_job *j = &jobs.v[k];
		enum found f;

		if (strcmp(j->status, "queued") != 0)
			continue;
		if (j->created_at && now_ms / 1000 - j->created_at < grace) {
			settled = false; /* its webhook may be on its way: the next sweep */
			continue;
		}
		f = take(rx, cfg, repo, j, now_ms);
		*taken += f == FOUND_TAKEN;
		settled = settled && f != FOUND_FAILED;
	}
	github_job_list_release(&jobs);
	return settled;
}

void reactive_runs_sweep(struct reactive *rx, const struct config *cfg, struct github *gh,
                         int64_t now_ms)
{
	struct github_run_list runs = {0};
	struct err e = {0};
	size_t asked = 0, taken = 0, n_settled = 0;
	int64_t *settled;
	int64_t grace = cfg->webhook.backfill_interval < RUNS_GRACE_S
	                        ? cfg->webhook.backfill_interval
	                        : RUNS_GRACE_S;
	bool silent = false;

	if (github_list_runs(gh, cfg->github.path, "queued", RUNS_MAX, &runs, &e) < 0) {
		log_warn("sweep: %s (tried again in %" PRId64 " s)", e.msg,
		         cfg->webhook.backfill_interval);
		return;
	}
	settled = malloc((runs.n ? runs.n : 1) * sizeof(*settled));
	if (!settled) {
		github_run_list_release(&runs);
		return;
	}
	/* the oldest first: a job missed long ago waits longest */
	for (size_t i = runs.n; i-- > 0;) {
		const struct github_run *run = &runs.v[i];
		int r;

		if (settled_before(rx, run->id)) {
			settled[n_settled++] = run->id; /* its jobs do not change while it waits */
			continue;
		}
		if (silent || asked >= RUNS_JOBS_PER_SWEEP ||
		    (run->created_at && now_ms / 1000 - run->created_at < grace))
			continue;
		asked++;
		r = sweep_run(rx, cfg, gh, run->id, grace, now_ms, &taken);
		if (r > 0)
			settled[n_settled++] = run->id;
		/* a silent GitHub holds no pass loop: the rest next sweep */
		silent = r == -EIO;
	}
	free(rx->runs_settled);
	rx->runs_settled = settled;
	rx->n_runs_settled = n_settled;
	github_run_list_release(&runs);
	if (taken && rx->trigger)
		rx->trigger(rx->trigger_ctx);
}
