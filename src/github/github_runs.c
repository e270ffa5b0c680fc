/*
 * A repository's workflow runs of one status, newest first: the reactive
 * sweep reads the queued and the in-progress ones to find jobs whose
 * webhook never came. A conditional request per page (an unchanged page
 * costs no rate limit), at most max runs. It must never ask of a repository outside the
 * configured scope, nor read more pages than max calls for.
 */
#include "util/common.h"
#include "github/github_internal.h"
#include "util/clock.h"
#include "util/strutil.h"

void github_run_list_release(struct github_run_list *l)
{
	if (!l)
		return;
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int run_of(const char *op, const char *where, json_t *o, struct github_run *ret,
                  struct err *e)
{
	char when[64];
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!json_is_object(o))
		return err_set(e, -EPROTO, "%s: unexpected answer from GitHub: %s is not an object",
		               op, where);
	r = github_json_field_int(op, where, o, "id", false, &ret->id, e);
	if (r == 0)
		r = github_json_field_str(op, where, o, "status", true, ret->status,
		                          sizeof(ret->status), e);
	if (r == 0)
		r = github_json_field_int(op, where, o, "run_attempt", true, &ret->attempt, e);
	if (r == 0)
		r = github_json_field_str(op, where, o, "created_at", false, when, sizeof(when), e);
	if (r == 0 && clock_parse_rfc3339(when, &ret->created_at) < 0)
		ret->created_at = 0;
	if (r == 0)
		r = github_json_field_str(op, where, o, "updated_at", true, when, sizeof(when), e);
	if (r == 0 && (!when[0] || clock_parse_rfc3339(when, &ret->updated_at) < 0))
		ret->updated_at = ret->created_at;
	return r;
}

/* What the pager fills, and up to how many. */
struct runs_ctx {
	struct github_run_list acc;
	size_t max;
};

static int runs_take(struct github_pager *pg, json_t *root, const struct buf *body, struct err *e)
{
	struct runs_ctx *c = pg->ctx;
	char where[40];
	json_t *arr = json_is_object(root) ? json_object_get(root, "workflow_runs") : NULL;
	size_t n;

	if (!json_is_array(arr))
		return err_set(e, -EPROTO,
		               "%s: unexpected answer from GitHub: no workflow_runs list",
		               pg->page_op);
	n = json_array_size(arr);
	if (n > c->max - c->acc.n)
		n = c->max - c->acc.n;
	if (n) {
		struct github_run *nv = realloc(c->acc.v, (c->acc.n + n) * sizeof(*nv));
		if (!nv)
			return err_set(e, -ENOMEM, "%s: out of memory", pg->page_op);
		c->acc.v = nv;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(where, sizeof(where), "workflow_runs[%zu]", i);
		int r = run_of(pg->page_op, where, json_array_get(arr, i), &c->acc.v[c->acc.n], e);
		if (r < 0)
			return r;
		c->acc.n++;
	}
	pg->done = c->acc.n >= c->max;
	return 0;
}

int github_list_runs(struct github *gh, const char *repo, const char *status, size_t max,
                     struct github_run_list *ret, struct err *e)
{
	struct runs_ctx c = {.max = max};
	struct github_pager pg = {.take = runs_take, .ctx = &c};
	char url[GITHUB_URL_MAX], op[GITHUB_OP_MAX];
	size_t per_page = max < 100 ? max : 100;
	int r;

	snprintf(op, sizeof(op), "list %s runs of %s", status, github_repo_ok(repo) ? repo : "?");
	r = github_repo_check(gh, repo, true, op, e);
	if (r < 0)
		return r;
	if (!max) {
		github_run_list_release(ret);
		return 0;
	}
	for (const char *s = status; *s; s++)
		if (!(*s >= 'a' && *s <= 'z') && *s != '_')
			return err_set(e, -EINVAL, "%s: not a run status", op);
	r = github_url(gh, url, sizeof(url), op, e,
	               "repos/%s/actions/runs?status=%s&exclude_pull_requests=true&per_page=%zu",
	               repo, status, per_page);
	if (r < 0)
		return r;
	pg.op = op;
	pg.route = "runs";
	pg.conditional = true;
	r = github_paginate(gh, &pg, url, e);
	if (r == 0) {
		github_run_list_release(ret);
		*ret = c.acc;
		c.acc = (struct github_run_list){0};
	}
	github_run_list_release(&c.acc);
	return r;
}
