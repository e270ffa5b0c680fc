/*
 * The LXD API core: one HTTP request on LXD's unix socket (URLs escaped,
 * the project added, every answer capped), its answer read as LXD's JSON
 * envelope (parse.c says what it holds), and waits on LXD's asynchronous
 * operations. Every other file of the backend talks to LXD only through
 * here. It must never put anything but a JSON body or a caller's raw body
 * on the wire (secrets travel only as a raw file body, and never into an
 * error message), never read an answer without a size cap, and never
 * build a URL from an operation id parse.c has not checked.
 */
#include "util/common.h"
#include "provider/lxd/lxd_internal.h"

int64_t lxd_until(const struct provider_call *c, int64_t ms)
{
	int64_t end = clock_mono_ms() + ms;
	return end < c->deadline ? end : c->deadline;
}

/* ---- URLs ----------------------------------------------------------- */

/* Append s percent-encoded (keep_slash: '/' stays as is, for paths). */
int lxd_url_escape(struct buf *b, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	int r = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p && r == 0; p++) {
		if (lxd_url_plain(*p) || (keep_slash && *p == '/')) {
			r = buf_append(b, p, 1);
		} else {
			char t[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			r = buf_append(b, t, 3);
		}
	}
	return r;
}

/* "/1.0/<coll>/<escaped name>[<suffix>]" into b. */
int lxd_path_of(struct buf *b, const char *coll, const char *name, const char *suffix)
{
	buf_reset(b);
	if (buf_printf(b, "/1.0/%s/", coll) < 0 || lxd_url_escape(b, name, false) < 0 ||
	    (suffix && buf_puts(b, suffix) < 0))
		return -ENAMETOOLONG;
	return 0;
}

/* ---- requests ------------------------------------------------------- */

/*
 * Every request sees the call: none is sent once the call is cancelled or
 * past its deadline, each one's timeout is its own or what is left of the
 * call, whichever is less, and the cancel flag stops it in flight (httpc
 * looks at it every HTTPC_CANCEL_POLL_MS).
 */
int lxd_http(struct lxd *l, const struct provider_call *c, const struct lxd_req *q,
             struct httpc_response *ret, struct err *e)
{
	const char *method = q->method ? q->method : "GET";
	long own = q->timeout_ms > 0 ? q->timeout_ms : l->request_ms, timeout;
	int64_t left;
	struct buf url = BUF_INIT(LXD_URL_MAX);
	const char *hdrs[16];
	char *json = NULL;
	const void *body = q->body;
	size_t n = 0, body_len = q->body_len;
	lxd_trace_fn trace;
	void *trace_arg;
	int r;

	if (provider_call_cancelled(c))
		return err_set(e, -ECANCELED, "lxd: %s %s: cancelled", method, q->path);
	left = provider_call_left_ms(c);
	if (left == 0)
		return err_set(e, -ETIMEDOUT, "lxd: %s %s: no time left within the call's deadline",
		               method, q->path);
	timeout = own < left ? own : (long)left;
	if (buf_puts(&url, LXD_HOST) < 0 || buf_puts(&url, q->path) < 0 ||
	    buf_puts(&url, "?") < 0 || (q->query && buf_printf(&url, "%s&", q->query) < 0) ||
	    buf_puts(&url, "project=") < 0 || lxd_url_escape(&url, l->project, false) < 0) {
		r = err_set(e, -ENAMETOOLONG, "lxd: %s %s: URL too long", method, q->path);
		goto out;
	}
	if (q->json) {
		/* Never holds a secret: secrets only travel as a raw file body. */
		json = json_dumps(q->json, JSON_COMPACT);
		if (!json) {
			r = err_set(e, -ENOMEM, "lxd: out of memory");
			goto out;
		}
		body = json;
		body_len = strlen(json);
		hdrs[n++] = "Content-Type: application/json";
	}
	for (const char *const *h = q->headers; h && *h && n + 1 < ARRAY_SIZE(hdrs); h++)
		hdrs[n++] = *h;
	hdrs[n] = NULL;

	pthread_mutex_lock(&l->trace_lock);
	trace = l->trace;
	trace_arg = l->trace_arg;
	pthread_mutex_unlock(&l->trace_lock);
	if (trace)
		trace(trace_arg, method, buf_str(&url), body, body ? body_len : 0);

	struct httpc_request hr = {
	        .method = method,
	        .url = buf_str(&url),
	        .unix_socket = l->socket,
	        .headers = hdrs,
	        .body = body,
	        .body_len = body_len,
	        .connect_timeout_ms = l->connect_ms < timeout ? l->connect_ms : timeout,
	        .timeout_ms = timeout,
	        .max_body = q->max_body ? q->max_body : LXD_RESPONSE_MAX,
	        .want_headers = q->want_headers,
	        .cancel = c->cancel,
	};
	r = httpc_perform(l->http, &hr, ret, e);
	if (r == -ECONNREFUSED && e)
		err_prefix(e, "lxd at %s", l->socket);
	else if (r == -ETIMEDOUT && timeout < own && e)
		err_prefix(e, "lxd: the call's deadline passed");
	else if (r < 0 && e)
		err_prefix(e, "lxd");
out:
	free(json);
	buf_release(&url);
	return r;
}

/* One request whose answer is LXD's JSON envelope; an error answer is an error. */
int lxd_call(struct lxd *l, const struct provider_call *c, const struct lxd_req *q,
             struct lxd_answer *ret, struct err *e)
{
	static const char *const want[] = {"Etag", NULL};
	struct httpc_response resp = {0};
	struct lxd_answer a = {0};
	struct lxd_req q2 = *q;
	const char *etag;
	int r;

	if (!q2.want_headers)
		q2.want_headers = want;
	r = lxd_http(l, c, &q2, &resp, e);
	if (r < 0)
		return r;
	r = lxd_parse_answer(q->method ? q->method : "GET", q->path, resp.status, resp.body.data,
	                     resp.body.len, &a, e);
	if (r == 0) {
		etag = httpc_response_header(&resp, "Etag");
		if (etag)
			str_copy(a.etag, etag, sizeof(a.etag));
		*ret = a;
	}
	httpc_response_release(&resp);
	return r;
}

/* The end of a wait that ran out of time: LXD is asked to cancel the operation when cancel_op. */
static int wait_timed_out(struct lxd *l, const struct provider_call *c, const char *id,
                          bool cancel_op, bool by_call, int64_t timeout_s, const char *what,
                          struct err *e)
{
	char path[128];
	struct lxd_answer a = {0};

	/* Past the call's deadline nothing can be sent: the operation ends on its own. */
	snprintf(path, sizeof(path), LXD_OPS "%s", id);
	if (cancel_op &&
	    lxd_call(l, c, &(struct lxd_req){.method = "DELETE", .path = path}, &a, NULL) == 0)
		lxd_answer_release(&a);
	if (by_call)
		return err_set(e, -ETIMEDOUT, "lxd: %s: not done within the call's deadline", what);
	return err_set(e, -ETIMEDOUT, "lxd: %s: not done after %" PRId64 "s", what, timeout_s);
}

/*
 * Wait until operation id ends (what names it in messages). 0 when it
 * succeeded, with the operation object in *ret_op when asked (a new
 * reference); -EIO with LXD's text when it failed, and when LXD no longer
 * knows it (404: lost, as in an LXD restart: never "the object is gone");
 * -ETIMEDOUT when it did not end within timeout_s or the call's deadline,
 * whichever comes first, after asking LXD to cancel it when cancel_op;
 * -ECANCELED as soon as the call is cancelled.
 *
 * LXD's wait takes whole seconds: each round long-polls for the whole
 * seconds left before the wait's end (less a margin), so that LXD answers
 * "still running" before the request's own timeout, which the call bounds,
 * cuts it off; with less than that left, the operation is read once
 * without waiting, then a short sleep.
 */
int lxd_wait(struct lxd *l, const struct provider_call *c, const char *id, int64_t timeout_s,
             bool cancel_op, const char *what, json_t **ret_op, struct err *e)
{
	int64_t end = lxd_until(c, timeout_s * 1000);
	bool by_call = end == c->deadline;
	char path[128], wpath[128], query[48];
	int r;

	snprintf(path, sizeof(path), LXD_OPS "%s", id);
	snprintf(wpath, sizeof(wpath), LXD_OPS "%s/wait", id);
	for (;;) {
		struct lxd_answer a = {0};
		int64_t t0 = clock_mono_ms(), left = end - t0;
		int64_t chunk_s = (left - LXD_WAIT_MARGIN_MS) / 1000;

		if (provider_call_cancelled(c))
			return err_set(e, -ECANCELED, "lxd: %s: cancelled", what);
		if (left <= 0)
			return wait_timed_out(l, c, id, cancel_op, by_call, timeout_s, what, e);
		snprintf(query, sizeof(query), "timeout=%" PRId64, chunk_s);
		struct lxd_req q = {.path = chunk_s > 0 ? wpath : path,
		                    .query = chunk_s > 0 ? query : NULL,
		                    .timeout_ms =
		                            (chunk_s > 0 ? chunk_s * 1000 : 0) + LXD_WAIT_SLACK_MS};
		r = lxd_call(l, c, &q, &a, e);
		if (r == -ENOENT)
			return err_set(e, -EIO, "lxd: %s: operation lost (LXD restarted?)", what);
		if (r == -ECANCELED)
			return err_set(e, r, "lxd: %s: cancelled", what);
		if (r == -ETIMEDOUT && provider_call_left_ms(c) == 0)
			return err_set(e, r, "lxd: %s: not done within the call's deadline", what);
		if (r < 0) {
			if (e)
				err_prefix(e, "%s", what);
			return r;
		}
		r = lxd_parse_operation(a.meta, what, e);
		if (r <= 0) {
			if (r == 0 && ret_op)
				*ret_op = json_incref(a.meta);
			lxd_answer_release(&a);
			return r;
		}
		lxd_answer_release(&a);
		/* Still running: LXD answered early (or was not asked to wait); do not spin. */
		if (clock_mono_ms() - t0 < LXD_POLL_MS && !provider_call_sleep(c, LXD_POLL_MS))
			return err_set(e, -ECANCELED, "lxd: %s: cancelled", what);
	}
}

/* A request that starts an operation, then its wait. */
int lxd_run(struct lxd *l, const struct provider_call *c, const struct lxd_req *q,
            int64_t timeout_s, const char *what, json_t **ret_op, struct err *e)
{
	struct lxd_answer a = {0};
	int r = lxd_call(l, c, q, &a, e);

	if (r < 0)
		return r;
	if (!a.op[0]) {
		lxd_answer_release(&a);
		return err_set(e, -EBADMSG, "lxd: %s: expected an operation", what);
	}
	r = lxd_wait(l, c, a.op, timeout_s, true, what, ret_op, e);
	lxd_answer_release(&a);
	return r;
}
