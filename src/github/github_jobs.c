/*
 * Workflow jobs: one job, and the jobs of a run (all pages). The repository
 * comes from a webhook, so it is untrusted: it must never reach a URL
 * before it is checked as owner/repo.
 */
#include "util/common.h"
#include "github/github_internal.h"
#include "util/strutil.h"

/* "get job 7 of owner/repo": the op of a call on a repository a webhook named. */
static int repo_op(const char *repo, char *op, size_t cap, const char *what, int64_t id,
                   struct err *e)
{
	int r = 0;

	snprintf(op, cap, "%s %" PRId64 " of %s", what, id, github_repo_ok(repo) ? repo : "?");
	if (!github_repo_ok(repo))
		r = err_set(e, -EINVAL, "%s: not an owner/repo", op);
	return r;
}

int github_get_job(struct github *gh, const char *repo, int64_t job_id, struct github_job *ret,
                   struct err *e)
{
	char url[GITHUB_URL_MAX], op[GITHUB_OP_MAX];
	json_t *root = NULL;
	int r;

	r = repo_op(repo, op, sizeof(op), "get job", job_id, e);
	if (r < 0)
		goto out;
	r = github_url(gh, url, sizeof(url), op, e, "repos/%s/actions/jobs/%" PRId64, repo, job_id);
	if (r < 0)
		goto out;
	/* conditional: the reactive consumer rechecks waiting jobs, mostly unchanged */
	r = github_get_json_conditional(gh, "get job", op, url, "no such job", &root, e);
	if (r == 0)
		r = github_json_job(op, root, ret, e);
out:
	json_decref(root);
	return r;
}

static int jobs_take(struct github_pager *pg, json_t *root, const struct buf *body, struct err *e)
{
	return github_json_jobs_page(pg->page_op, root, pg->ctx, e);
}

int github_list_run_jobs(struct github *gh, const char *repo, int64_t run_id,
                         struct github_job_list *ret, struct err *e)
{
	struct github_job_list acc = {0};
	struct github_pager pg = {.route = "run jobs", .take = jobs_take, .ctx = &acc};
	char url[GITHUB_URL_MAX], op[GITHUB_OP_MAX];
	int r;

	r = repo_op(repo, op, sizeof(op), "list jobs of run", run_id, e);
	if (r < 0)
		goto out;
	r = github_url(gh, url, sizeof(url), op, e,
	               "repos/%s/actions/runs/%" PRId64 "/jobs?per_page=100", repo, run_id);
	if (r < 0)
		goto out;
	pg.op = op;
	r = github_paginate(gh, &pg, url, e);
	if (r < 0)
		goto out;
	github_job_list_release(ret);
	*ret = acc;
	acc = (struct github_job_list){0};
out:
	github_job_list_release(&acc);
	return r;
}
