/*
 * Jobs whose queued webhook never came, found in GitHub's lists
 * (repository scope, the sqlite queue, the intake on). GitHub redelivers
 * nothing by itself, and without webhook.hook_id runnerd cannot ask it to;
 * so every backfill_interval the pass loop lists the repository's queued
 * and in-progress runs (conditional requests: free while none changed),
 * reads the jobs of each run that changed (conditional too), and queues a
 * job that is queued on GitHub, routes to a flavor and is unknown to the
 * queue, as its webhook would have; a pass then makes its runner. An
 * in-progress run matters: a workflow whose GitHub-hosted job began has
 * its self-hosted job waiting in a run that is no longer queued.
 *
 * It must never queue a job the queue knows (waiting or ended), nor one
 * younger than RUNS_GRACE_S or backfill_interval, nor read a run that
 * changed that recently (their webhooks may be on their way); never read
 * more than RUNS_JOBS_PER_SWEEP runs' jobs a sweep, nor read again the jobs
 * of a run whose every queued job it settled (queued, known to the queue,
 * or not ours) until the run changes.
 */
#include "util/common.h"
#include "reactive/reactive_internal.h"
#include "util/log.h"
#include "util/strutil.h"

/* Runs of each status looked at in a sweep at most, newest first. */
#define RUNS_MAX 100
/*
 * Runs whose jobs are read in a sweep at most (a request each, on the pass
 * loop), the oldest first. A run whose every queued job was settled is not
 * read again until it changes (its updated_at, a re-run) or RUNS_REREAD_S
 * passed (a job may be queued in a running run, say once its needs ended,
 * without GitHub counting that as a change of the run).
 */
#define RUNS_JOBS_PER_SWEEP 10
#define RUNS_REREAD_S       600
/* A job queued this recently (seconds; or within backfill_interval) is left to its webhook. */
#define RUNS_GRACE_S 60

bool reactive_runs_wanted(const struct reactive *rx, const struct config *cfg)
{
	/* jobs come only through the intake with this queue: no intake, no reactive mode */
	return rx && rx->http && !cfg->github.is_org && strcmp(queue_name(rx->q), "sqlite") == 0;
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

/* run as an earlier sweep settled it, when unchanged since and read not too long ago; NULL. */
static const struct reactive_run_seen *settled_before(const struct reactive *rx,
                                                      const struct github_run *run, int64_t now_s)
{
	for (size_t i = 0; i < rx->n_runs_settled; i++) {
		const struct reactive_run_seen *v = &rx->runs_settled[i];
		if (v->id != run->id)
			continue;
		if (v->attempt == run->attempt && v->updated_at == run->updated_at &&
		    now_s >= v->settled_at && now_s - v->settled_at < RUNS_REREAD_S)
			return v;
		return NULL;
	}
	return NULL;
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

/* The run statuses swept, in this order: a queued run, then one another job of began. */
static const char *const swept[] = {"queued", "in_progress"};

void reactive_runs_sweep(struct reactive *rx, const struct config *cfg, struct github *gh,
                         int64_t now_ms)
{
	struct github_run_list lists[ARRAY_SIZE(swept)] = {{0}};
	struct reactive_run_seen *settled = NULL;
	struct err e = {0};
	size_t asked = 0, taken = 0, n_settled = 0, n = 0;
	int64_t now_s = now_ms / 1000;
	int64_t grace = cfg->webhook.backfill_interval < RUNS_GRACE_S
	                        ? cfg->webhook.backfill_interval
	                        : RUNS_GRACE_S;
	bool silent = false;

	for (size_t s = 0; s < ARRAY_SIZE(swept); s++) {
		if (github_list_runs(gh, cfg->github.path, swept[s], RUNS_MAX, &lists[s], &e) < 0) {
			log_warn("sweep: %s (tried again in %" PRId64 " s)", e.msg,
			         cfg->webhook.backfill_interval);
			goto out;
		}
		n += lists[s].n;
	}
	settled = malloc((n ? n : 1) * sizeof(*settled));
	if (!settled)
		goto out;
	/* each list the oldest first: a job missed long ago waits longest */
	for (size_t s = 0; s < ARRAY_SIZE(swept); s++) {
		for (size_t i = lists[s].n; i-- > 0;) {
			const struct github_run *run = &lists[s].v[i];
			const struct reactive_run_seen *before = settled_before(rx, run, now_s);
			struct reactive_run_seen seen = {run->id, run->attempt, run->updated_at,
			                                 now_s};
			int r;

			if (before) {
				settled[n_settled++] = *before; /* kept with the time it was read */
				continue;
			}
			/* a run that just changed may have its webhooks on their way */
			if (silent || asked >= RUNS_JOBS_PER_SWEEP ||
			    now_s - run->updated_at < grace)
				continue;
			asked++;
			r = sweep_run(rx, cfg, gh, run->id, grace, now_ms, &taken);
			if (r > 0)
				settled[n_settled++] = seen;
			/* a silent GitHub holds no pass loop: the rest next sweep */
			silent = r == -EIO;
		}
	}
	free(rx->runs_settled);
	rx->runs_settled = settled;
	rx->n_runs_settled = n_settled;
out:
	for (size_t s = 0; s < ARRAY_SIZE(swept); s++)
		github_run_list_release(&lists[s]);
	if (taken && rx->trigger)
		rx->trigger(rx->trigger_ctx);
}
