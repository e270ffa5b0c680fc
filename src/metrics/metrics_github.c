/*
 * What GitHub says of the job a runner ran, for its runner_start and
 * runner_stop events: the job of the run its pre-job file names whose
 * runner_name is the runner's, found in a bounded number of pages. The
 * run and repository come from a runner's file: only repositories of the
 * configured scope are asked about (the GitHub client refuses the others
 * before any request), and a run id that is not a number is not asked
 * about at all.
 */
#include "util/common.h"
#include "metrics/metrics_storage.h"
#include "github/github.h"
#include "util/strutil.h"

int metrics_github_lookup(void *ctx, const char *name, const struct metrics_pre_job *pre,
                          struct metrics_job *ret)
{
	const struct metrics_github *mg = ctx;
	struct github_job job = {0};
	struct metrics_job mj = {0};
	int64_t run_id;
	int r;

	if (!mg || !mg->gh)
		return -EPERM;
	if (parse_int64(pre->workflow_run_id, 1, INT64_MAX, &run_id) < 0)
		return -EINVAL;
	r = github_find_run_job(mg->gh, pre->repository, run_id, name,
	                        mg->max_pages > 0 ? mg->max_pages : METRICS_GITHUB_PAGES_MAX, &job,
	                        NULL);
	if (r < 0)
		return r;
	if (job.created_at > 0 && job.started_at > 0) {
		mj.has_queue_duration = true;
		mj.queue_duration = job.started_at > job.created_at
		                            ? (double)(job.started_at - job.created_at)
		                            : 0;
	}
	str_copy(mj.conclusion, job.conclusion, sizeof(mj.conclusion));
	github_job_release(&job);
	*ret = mj;
	return 0;
}
