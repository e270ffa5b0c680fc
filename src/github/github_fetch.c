/*
 * The shapes every GitHub endpoint takes, on top of the request core: one
 * call whose answer is JSON (github_call_json, and github_get_json for the
 * plain GET), and a list read page by page (github_paginate). An endpoint
 * says what it asks and what the answer means; how a body becomes a JSON
 * root, how an accepted error status hands back GitHub's message, how a
 * secret answer is wiped and how pages follow each other are said once,
 * here. It must never quote a body in a message (a token or a JIT config
 * may be in it), nor follow more than GITHUB_MAX_PAGES pages.
 */
#include "util/common.h"
#include "github/github_internal.h"
#include "util/strutil.h"

void github_answer_release(struct github_answer *a)
{
	if (!a)
		return;
	json_decref(a->root);
	a->root = NULL;
	a->status = 0;
	a->message[0] = '\0';
}

int github_call_json(struct github *gh, const struct github_call *call, struct github_answer *ret,
                     struct err *e)
{
	struct github_reply reply = {.body = BUF_INIT(gh->opts.max_response)};
	struct github_answer ans = {0};
	int r;

	r = github_do(gh, call, &reply, e);
	if (r < 0)
		goto out;
	ans.status = reply.status;
	if (reply.status < 200 || reply.status >= 300)
		github_json_error_message(&reply.body, ans.message, sizeof(ans.message));
	else if (!call->no_body)
		r = github_json_load(call->op, &reply.body, &ans.root, e);
	if (r < 0)
		goto out;
	github_answer_release(ret);
	*ret = ans;
out:
	if (call->secret)
		buf_wipe(&reply.body);
	github_reply_release(&reply);
	return r;
}

static int get_json(struct github *gh, const char *route, const char *op, const char *url,
                    const char *missing, bool conditional, json_t **ret_root, struct err *e)
{
	static const int accept_404[] = {404, 0};
	struct github_answer ans = {0};
	int r;

	r = github_call_json(gh,
	                     &(struct github_call){.route = route,
	                                           .op = op,
	                                           .method = "GET",
	                                           .url = url,
	                                           .retry = GITHUB_RETRY_ALL,
	                                           .conditional = conditional,
	                                           .accept = missing ? accept_404 : NULL},
	                     &ans, e);
	if (r < 0)
		goto out;
	if (ans.status == 404) {
		r = err_set(e, -ENOENT, "%s: %s", op, missing);
		goto out;
	}
	*ret_root = ans.root;
	ans.root = NULL;
out:
	github_answer_release(&ans);
	return r;
}

int github_get_json(struct github *gh, const char *route, const char *op, const char *url,
                    const char *missing, json_t **ret_root, struct err *e)
{
	return get_json(gh, route, op, url, missing, false, ret_root, e);
}

int github_get_json_conditional(struct github *gh, const char *route, const char *op,
                                const char *url, const char *missing, json_t **ret_root,
                                struct err *e)
{
	return get_json(gh, route, op, url, missing, true, ret_root, e);
}

/* The op of the page at hand: the list's, with the page's number from the second on. */
static void page_op(const struct github_pager *pg, char *out, size_t cap)
{
	if (pg->number > 1)
		snprintf(out, cap, "%s (page %d)", pg->op, pg->number);
	else
		snprintf(out, cap, "%s", pg->op);
}

/* One page: fetched, then taken as known bytes or parsed and taken. */
static int read_page(struct github *gh, struct github_pager *pg, struct github_reply *reply,
                     struct err *e)
{
	json_t *root = NULL;
	int r;

	r = github_do(gh,
	              &(struct github_call){.op = pg->page_op,
	                                    .route = pg->route,
	                                    .method = "GET",
	                                    .url = pg->page_url,
	                                    .retry = GITHUB_RETRY_ALL,
	                                    .conditional = pg->conditional},
	              reply, e);
	if (r < 0)
		goto out;
	pg->last = !reply->link_next[0];
	r = pg->known ? pg->known(pg, &reply->body, e) : 0;
	if (r != 0)
		goto out;
	r = github_json_load(pg->page_op, &reply->body, &root, e);
	if (r == 0)
		r = pg->take(pg, root, &reply->body, e);
out:
	json_decref(root);
	return r < 0 ? r : 0;
}

int github_paginate(struct github *gh, struct github_pager *pg, const char *url, struct err *e)
{
	struct github_reply reply = {.body = BUF_INIT(gh->opts.max_response)};
	char cur[GITHUB_URL_MAX], op[GITHUB_OP_MAX + 32];
	int r;

	str_copy(cur, url, sizeof(cur));
	pg->page_op = op;
	pg->page_url = cur;
	pg->done = false;
	for (pg->number = 1;; pg->number++) {
		page_op(pg, op, sizeof(op));
		if (pg->number > GITHUB_MAX_PAGES) {
			r = err_set(e, -EPROTO, "%s: more than %d pages", op, GITHUB_MAX_PAGES);
			break;
		}
		r = read_page(gh, pg, &reply, e);
		if (r < 0 || pg->done || pg->last)
			break;
		str_copy(cur, reply.link_next, sizeof(cur));
	}
	/* They pointed into this frame. */
	pg->page_op = NULL;
	pg->page_url = NULL;
	github_reply_release(&reply);
	return r;
}
