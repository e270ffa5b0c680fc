/*
 * Workflow jobs: one job, and the jobs of a run (all pages). The repository
 * comes from a webhook or a runner's file, so it is untrusted: it must never
 * reach a URL before it is checked as owner/repo, and a run's jobs are
 * never asked of a repository outside the configured scope.
 */
#include "util/common.h"
#include "github/github_internal.h"
#include "util/strutil.h"

/*
 * "get job 7 of owner/repo": the op of a call on a repository a webhook or
 * a runner named; -EINVAL for what is no owner/repo, and with scoped,
 * -EPERM for a repository outside the configured scope (no request is
 * sent for either). A single job is not scoped: the amqp queue may hold
 * jobs another manager, of another scope, took in.
 */
static int repo_op(const struct github *gh, const char *repo, bool scoped, char *op, size_t cap,
                   const char *what, int64_t id, struct err *e)
{
	snprintf(op, cap, "%s %" PRId64 " of %s", what, id, github_repo_ok(repo) ? repo : "?");
	return github_repo_check(gh, repo, scoped, op, e);
}

int github_get_job(struct github *gh, const char *repo, int64_t job_id, struct github_job *ret,
                   struct err *e)
{
	char url[GITHUB_URL_MAX], op[GITHUB_OP_MAX];
	json_t *root = NULL;
	int r;

	r = repo_op(gh, repo, false, op, sizeof(op), "get job", job_id, e);
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

/* The jobs of run_id in repo, page by page into pg (its take and ctx set by the caller). */
static int run_jobs_pages(struct github *gh, const char *repo, int64_t run_id,
                          struct github_pager *pg, char *op, struct err *e)
{
	char url[GITHUB_URL_MAX];
	int r;

	r = repo_op(gh, repo, true, op, GITHUB_OP_MAX, "list jobs of run", run_id, e);
	if (r < 0)
		return r;
	r = github_url(gh, url, sizeof(url), op, e,
	               "repos/%s/actions/runs/%" PRId64 "/jobs?per_page=100", repo, run_id);
	if (r < 0)
		return r;
	pg->op = op;
	pg->route = "run jobs";
	pg->conditional = true; /* an unchanged page costs no rate limit */
	return github_paginate(gh, pg, url, e);
}

int github_list_run_jobs(struct github *gh, const char *repo, int64_t run_id,
                         struct github_job_list *ret, struct err *e)
{
	struct github_job_list acc = {0};
	struct github_pager pg = {.take = jobs_take, .ctx = &acc};
	char op[GITHUB_OP_MAX];
	int r = run_jobs_pages(gh, repo, run_id, &pg, op, e);

	if (r == 0) {
		github_job_list_release(ret);
		*ret = acc;
		acc = (struct github_job_list){0};
	}
	github_job_list_release(&acc);
	return r;
}

/* What github_find_run_job looks for, and where it is in its pages. */
struct find_ctx {
	const char *runner_name;
	int max_pages;
	struct github_job found;
	bool have;
};

static int find_take(struct github_pager *pg, json_t *root, const struct buf *body, struct err *e)
{
	struct find_ctx *f = pg->ctx;
	struct github_job_list page = {0};
	int r = github_json_jobs_page(pg->page_op, root, &page, e);

	for (size_t i = 0; r == 0 && !f->have && i < page.n; i++) {
		if (strcmp(page.v[i].runner_name, f->runner_name) != 0)
			continue;
		f->found = page.v[i];
		page.v[i] = (struct github_job){0};
		f->have = true;
	}
	github_job_list_release(&page);
	pg->done = f->have || pg->number >= f->max_pages;
	return r;
}

int github_find_run_job(struct github *gh, const char *repo, int64_t run_id,
                        const char *runner_name, int max_pages, struct github_job *ret,
                        struct err *e)
{
	struct find_ctx f = {.runner_name = runner_name,
	                     .max_pages = max_pages > 0 ? max_pages : 1};
	struct github_pager pg = {.take = find_take, .ctx = &f};
	char op[GITHUB_OP_MAX];
	int r;

	if (!runner_name || !*runner_name)
		return err_set(e, -EINVAL, "find the job of a runner: no runner name");
	r = run_jobs_pages(gh, repo, run_id, &pg, op, e);
	if (r == 0 && !f.have)
		r = err_set(e, -ENOENT, "%s: no job ran on %s (in %d pages)", op, runner_name,
		            f.max_pages);
	if (r == 0) {
		github_job_release(ret);
		*ret = f.found;
		f.found = (struct github_job){0};
	}
	github_job_release(&f.found);
	return r;
}
