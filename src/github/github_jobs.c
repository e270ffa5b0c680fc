/*
 * Workflow jobs: one job, and the jobs of a run (all pages). The repository
 * comes from a webhook: it is checked as owner/repo before it goes into a URL.
 */
#include "util/common.h"
#include "github/github_internal.h"
#include "util/strutil.h"

int github_get_job(struct github *gh, const char *repo, int64_t job_id, struct github_job *ret,
                   struct err *e)
{
	static const int accept[] = {404, 0};
	struct github_reply reply = {.body = BUF_INIT(gh->opts.max_response)};
	char url[GITHUB_URL_MAX], op[400];
	int r;

	snprintf(op, sizeof(op), "get job %" PRId64 " of %s", job_id,
	         github_repo_ok(repo) ? repo : "?");
	if (!github_repo_ok(repo))
		return err_set(e, -EINVAL, "%s: not an owner/repo", op);
	r = github_url(gh, url, sizeof(url), "repos/%s/actions/jobs/%" PRId64, repo, job_id);
	if (r < 0)
		return err_set(e, r, "%s: URL too long", op);
	r = github_do(gh,
	              &(struct github_call){.route = "get job",
	                                    .op = op,
	                                    .method = "GET",
	                                    .url = url,
	                                    .retry = GITHUB_RETRY_ALL,
	                                    .accept = accept},
	              &reply, e);
	if (r == 0 && reply.status == 404)
		r = err_set(e, -ENOENT, "%s: no such job", op);
	else if (r == 0)
		r = github_json_job(op, &reply.body, ret, e);
	github_reply_release(&reply);
	return r;
}

int github_list_run_jobs(struct github *gh, const char *repo, int64_t run_id,
                         struct github_job_list *ret, struct err *e)
{
	struct github_reply reply = {.body = BUF_INIT(gh->opts.max_response)};
	struct github_job_list acc = {0};
	char url[GITHUB_URL_MAX], op[400];
	int r;

	snprintf(op, sizeof(op), "list jobs of run %" PRId64 " of %s", run_id,
	         github_repo_ok(repo) ? repo : "?");
	if (!github_repo_ok(repo))
		return err_set(e, -EINVAL, "%s: not an owner/repo", op);
	r = github_url(gh, url, sizeof(url), "repos/%s/actions/runs/%" PRId64 "/jobs?per_page=100",
	               repo, run_id);
	if (r < 0)
		return err_set(e, r, "%s: URL too long", op);
	for (int page = 1;; page++) {
		if (page > 1)
			snprintf(op, sizeof(op), "list jobs of run %" PRId64 " of %s (page %d)",
			         run_id, repo, page);
		if (page > GITHUB_MAX_PAGES) {
			r = err_set(e, -EPROTO, "%s: more than %d pages", op, GITHUB_MAX_PAGES);
			break;
		}
		r = github_do(gh,
		              &(struct github_call){.route = "run jobs",
		                                    .op = op,
		                                    .method = "GET",
		                                    .url = url,
		                                    .retry = GITHUB_RETRY_ALL},
		              &reply, e);
		if (r == 0)
			r = github_json_jobs_page(op, &reply.body, &acc, e);
		if (r < 0)
			break;
		if (!reply.link_next[0])
			break;
		str_copy(url, reply.link_next, sizeof(url));
	}
	github_reply_release(&reply);
	if (r < 0) {
		github_job_list_release(&acc);
		return r;
	}
	github_job_list_release(ret);
	*ret = acc;
	return 0;
}
