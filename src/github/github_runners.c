/*
 * Runners of the configured scope: the whole list (page by page, each page
 * conditional and memoized), one by id, one by name, and deletion. A list
 * that changed or failed while it was read is an error, never a shorter list.
 */
#include "util/common.h"
#include "github/github_internal.h"
#include "util/strutil.h"

/* One pass over the list: the runners gathered, and the figures that tell a list that moved. */
struct runner_pass {
	struct github *gh;
	const char *manager;  /* NULL = every runner */
	const char *memo_key; /* manager, "" for NULL */
	struct github_runner_list *acc;
	int64_t total; /* total_count of the last page, -1 before the first */
	size_t seen;   /* runners on the pages so far, ours or not */
	bool changed;  /* the pages disagree on total_count */
};

/* A page's figures counted into the pass. */
static int runners_counted(struct github_pager *pg, int64_t total, size_t seen, struct err *e)
{
	struct runner_pass *p = pg->ctx;
	int r = 0;

	if (p->total >= 0 && total != p->total)
		p->changed = true;
	p->total = total;
	p->seen += seen;
	/* An empty page that names another could send us round in circles. */
	if (seen == 0 && !pg->last)
		r = err_set(e, -EPROTO, "%s: page %d is empty but names a next page", pg->page_op,
		            pg->number);
	return r;
}

/* A page whose bytes the memo knows: its runners without a parse. */
static int runners_known(struct github_pager *pg, const struct buf *body, struct err *e)
{
	struct runner_pass *p = pg->ctx;
	int64_t total;
	size_t seen;
	int r = 0;

	if (github_memo_lookup(p->gh, pg->page_url, p->memo_key, body, p->acc, &total, &seen)) {
		r = runners_counted(pg, total, seen, e);
		if (r == 0)
			r = 1;
	}
	return r;
}

/* A parsed page: its runners appended, and remembered with its bytes. */
static int runners_take(struct github_pager *pg, json_t *root, const struct buf *body,
                        struct err *e)
{
	struct runner_pass *p = pg->ctx;
	size_t n0 = p->acc->n;
	int64_t total;
	size_t seen;
	int r;

	r = github_json_runners_page(pg->page_op, root, p->manager, p->acc, &total, &seen, e);
	if (r < 0)
		goto out;
	github_memo_store(p->gh, pg->page_url, p->memo_key, body, p->acc->v + n0, p->acc->n - n0,
	                  total, seen);
	r = runners_counted(pg, total, seen, e);
out:
	return r;
}

/*
 * One pass over every page. *ret_changed tells that the pages disagree (a
 * runner came or went while we read): the list may hold duplicates or miss a
 * runner, so it must not be used.
 */
static int list_runners_pass(struct github *gh, const char *manager, struct github_runner_list *acc,
                             bool *ret_changed, int64_t *ret_total, size_t *ret_seen, struct err *e)
{
	struct runner_pass p = {.gh = gh,
	                        .manager = manager,
	                        .memo_key = manager ? manager : "",
	                        .acc = acc,
	                        .total = -1};
	struct github_pager pg = {.route = "list runners",
	                          .conditional = true,
	                          .known = runners_known,
	                          .take = runners_take,
	                          .ctx = &p};
	char url[GITHUB_URL_MAX], op[GITHUB_OP_MAX];
	int r;

	pg.op = github_scope_op(gh, "list runners", op, sizeof(op));
	r = github_url(gh, url, sizeof(url), op, e, "%s/actions/runners?per_page=100", gh->scope);
	if (r < 0)
		goto out;
	r = github_paginate(gh, &pg, url, e);
	if (r < 0)
		goto out;
	*ret_changed = p.changed || (int64_t)p.seen != p.total;
	*ret_total = p.total;
	*ret_seen = p.seen;
out:
	return r;
}

int github_list_runners(struct github *gh, const char *manager, struct github_runner_list *ret,
                        struct err *e)
{
	struct github_runner_list acc = {0};
	bool changed = false;
	int64_t total = 0;
	size_t seen = 0;
	int r = 0;

	/* A list read while it changed is read once more before we give up. */
	for (int pass = 0; pass < 2; pass++) {
		github_runner_list_release(&acc);
		r = list_runners_pass(gh, manager, &acc, &changed, &total, &seen, e);
		if (r < 0 || !changed)
			break;
	}
	if (r == 0 && changed)
		r = err_set(e, -EAGAIN,
		            "%s: list runners: the list changed while it was read (%" PRId64
		            " announced, %zu seen)",
		            gh->scope, total, seen);
	github_runner_list_release(ret);
	if (r < 0) {
		github_runner_list_release(&acc);
		ret->complete = false;
		return r;
	}
	*ret = acc;
	ret->complete = true;
	return 0;
}

int github_get_runner(struct github *gh, int64_t id, struct github_runner *ret, struct err *e)
{
	char url[GITHUB_URL_MAX], op[GITHUB_OP_MAX];
	json_t *root = NULL;
	int r;

	snprintf(op, sizeof(op), "%s: get runner %" PRId64, gh->scope, id);
	r = github_url(gh, url, sizeof(url), op, e, "%s/actions/runners/%" PRId64, gh->scope, id);
	if (r < 0)
		goto out;
	r = github_get_json(gh, "get runner", op, url, "no such runner", &root, e);
	if (r == 0)
		r = github_json_runner(op, root, ret, e);
out:
	json_decref(root);
	return r;
}

int github_delete_runner(struct github *gh, int64_t id, struct err *e)
{
	static const int accept[] = {404, 422, 0};
	struct github_answer ans = {0};
	char url[GITHUB_URL_MAX], op[GITHUB_OP_MAX];
	int r;

	snprintf(op, sizeof(op), "%s: delete runner %" PRId64, gh->scope, id);
	r = github_url(gh, url, sizeof(url), op, e, "%s/actions/runners/%" PRId64, gh->scope, id);
	if (r < 0)
		goto out;
	/* DELETE is idempotent: a retry after a lost answer meets 404, which is success. */
	r = github_call_json(gh,
	                     &(struct github_call){.route = "delete runner",
	                                           .op = op,
	                                           .method = "DELETE",
	                                           .url = url,
	                                           .retry = GITHUB_RETRY_ALL,
	                                           .accept = accept,
	                                           .no_body = true},
	                     &ans, e);
	if (r == 0 && ans.status == 422)
		r = err_set(e, -EBUSY, "%s: the runner is running a job (422 %s)", op, ans.message);
out:
	github_answer_release(&ans);
	return r;
}

/* name percent-encoded for a query string ("" on overflow). */
static void query_escape(const char *name, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		             (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' ||
		             *p == '~';
		if (n + (plain ? 1 : 3) >= cap) {
			out[0] = '\0';
			return;
		}
		if (plain) {
			out[n++] = (char)*p;
		} else {
			out[n++] = '%';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 15];
		}
	}
	out[n] = '\0';
}

int github_find_runner(struct github *gh, const char *name, struct github_runner *ret,
                       struct err *e)
{
	struct github_runner_list l = {0};
	char url[GITHUB_URL_MAX], q[3 * 128 + 1], op[600];
	json_t *root = NULL;
	int64_t total = 0;
	size_t seen = 0;
	int r;

	query_escape(name, q, sizeof(q));
	snprintf(op, sizeof(op), "%s: look up runner %s", gh->scope, name);
	if (!q[0]) {
		r = err_set(e, -ENAMETOOLONG, "%s: name too long", op);
		goto out;
	}
	r = github_url(gh, url, sizeof(url), op, e, "%s/actions/runners?name=%s&per_page=100",
	               gh->scope, q);
	if (r < 0)
		goto out;
	r = github_get_json(gh, "list runners", op, url, NULL, &root, e);
	if (r == 0)
		r = github_json_runners_page(op, root, NULL, &l, &total, &seen, e);
	if (r < 0)
		goto out;
	r = err_set(e, -ENOENT, "%s: not registered", op);
	for (size_t i = 0; i < l.n; i++) {
		/* GitHub compares runner names without regard to case. */
		if (strcasecmp(l.v[i].name, name) != 0)
			continue;
		*ret = l.v[i];
		/* the list gives up its entry: swap the last one in */
		l.v[i] = l.v[--l.n];
		err_clear(e);
		r = 0;
		break;
	}
out:
	github_runner_list_release(&l);
	json_decref(root);
	return r;
}
