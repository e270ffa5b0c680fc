/*
 * Runners of the configured scope: the whole list (page by page, each page
 * conditional and memoized), one by id, one by name, and deletion. A list
 * that changed or failed while it was read is an error, never a shorter list.
 */
#include "util/common.h"
#include "github/github_internal.h"
#include "util/strutil.h"

/*
 * One pass over every page. *ret_changed tells that the pages disagree (a
 * runner came or went while we read): the list may hold duplicates or miss a
 * runner, so it must not be used.
 */
static int list_runners_pass(struct github *gh, const char *manager, struct github_runner_list *acc,
                             bool *ret_changed, int64_t *ret_total, size_t *ret_seen, struct err *e)
{
	struct github_reply reply = {.body = BUF_INIT(gh->opts.max_response)};
	char url[GITHUB_URL_MAX], op[400];
	int64_t total = -1, t;
	size_t seen = 0, s;
	int r, page;

	github_scope_op(gh, "list runners", op, sizeof(op));
	r = github_url(gh, url, sizeof(url), "%s/actions/runners?per_page=100", gh->scope);
	if (r < 0)
		return err_set(e, r, "%s: URL too long", op);
	*ret_changed = false;
	for (page = 1;; page++) {
		if (page > 1)
			snprintf(op, sizeof(op), "%s: list runners (page %d)", gh->scope, page);
		if (page > GITHUB_MAX_PAGES) {
			r = err_set(e, -EPROTO, "%s: more than %d pages", op, GITHUB_MAX_PAGES);
			goto out;
		}
		r = github_do(gh,
		              &(struct github_call){.route = "list runners",
		                                    .op = op,
		                                    .method = "GET",
		                                    .url = url,
		                                    .retry = GITHUB_RETRY_ALL,
		                                    .conditional = true},
		              &reply, e);
		if (r == 0 && !github_memo_lookup(gh, url, manager ? manager : "", &reply.body, acc,
		                                  &t, &s)) {
			struct github_runner_list parsed = {0};
			r = github_json_runners_page(op, &reply.body, manager, &parsed, &t, &s, e);
			if (r == 0) {
				github_memo_store(gh, url, manager ? manager : "", &reply.body,
				                  &parsed, t, s);
				r = github_runner_list_append(acc, &parsed);
				if (r < 0)
					err_set(e, r, "%s: out of memory", op);
			}
			github_runner_list_release(&parsed);
		}
		if (r < 0)
			goto out;
		if (total >= 0 && t != total)
			*ret_changed = true;
		total = t;
		seen += s;
		if (!reply.link_next[0])
			break;
		if (s == 0) {
			r = err_set(e, -EPROTO, "%s: page %d is empty but names a next page", op,
			            page);
			goto out;
		}
		str_copy(url, reply.link_next, sizeof(url));
	}
	if ((int64_t)seen != total)
		*ret_changed = true;
	*ret_total = total;
	*ret_seen = seen;
out:
	github_reply_release(&reply);
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
	static const int accept[] = {404, 0};
	struct github_reply reply = {.body = BUF_INIT(gh->opts.max_response)};
	char url[GITHUB_URL_MAX], op[400];
	int r;

	snprintf(op, sizeof(op), "%s: get runner %" PRId64, gh->scope, id);
	r = github_url(gh, url, sizeof(url), "%s/actions/runners/%" PRId64, gh->scope, id);
	if (r < 0)
		return err_set(e, r, "%s: URL too long", op);
	r = github_do(gh,
	              &(struct github_call){.route = "get runner",
	                                    .op = op,
	                                    .method = "GET",
	                                    .url = url,
	                                    .retry = GITHUB_RETRY_ALL,
	                                    .accept = accept},
	              &reply, e);
	if (r == 0 && reply.status == 404)
		r = err_set(e, -ENOENT, "%s: no such runner", op);
	else if (r == 0)
		r = github_json_runner(op, &reply.body, ret, e);
	github_reply_release(&reply);
	return r;
}

int github_delete_runner(struct github *gh, int64_t id, struct err *e)
{
	static const int accept[] = {404, 422, 0};
	struct github_reply reply = {.body = BUF_INIT(gh->opts.max_response)};
	char url[GITHUB_URL_MAX], op[400], msg[160];
	int r;

	snprintf(op, sizeof(op), "%s: delete runner %" PRId64, gh->scope, id);
	r = github_url(gh, url, sizeof(url), "%s/actions/runners/%" PRId64, gh->scope, id);
	if (r < 0)
		return err_set(e, r, "%s: URL too long", op);
	/* DELETE is idempotent: a retry after a lost answer meets 404, which is success. */
	r = github_do(gh,
	              &(struct github_call){.route = "delete runner",
	                                    .op = op,
	                                    .method = "DELETE",
	                                    .url = url,
	                                    .retry = GITHUB_RETRY_ALL,
	                                    .accept = accept},
	              &reply, e);
	if (r == 0 && reply.status == 422) {
		github_json_error_message(&reply.body, msg, sizeof(msg));
		r = err_set(e, -EBUSY, "%s: the runner is running a job (422 %s)", op, msg);
	}
	github_reply_release(&reply);
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
	struct github_reply reply = {.body = BUF_INIT(gh->opts.max_response)};
	struct github_runner_list l = {0};
	char url[GITHUB_URL_MAX], q[3 * 128 + 1], op[600];
	int64_t total = 0;
	size_t seen = 0;
	int r;

	query_escape(name, q, sizeof(q));
	snprintf(op, sizeof(op), "%s: look up runner %s", gh->scope, name);
	r = github_url(gh, url, sizeof(url), "%s/actions/runners?name=%s&per_page=100", gh->scope,
	               q);
	if (r < 0 || !q[0])
		return err_set(e, -ENAMETOOLONG, "%s: name too long", op);
	r = github_do(gh,
	              &(struct github_call){.op = op,
	                                    .route = "list runners",
	                                    .method = "GET",
	                                    .url = url,
	                                    .retry = GITHUB_RETRY_ALL},
	              &reply, e);
	if (r == 0)
		r = github_json_runners_page(op, &reply.body, NULL, &l, &total, &seen, e);
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
	github_reply_release(&reply);
	return r;
}
