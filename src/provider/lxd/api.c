/*
 * The LXD API core: one HTTP request on LXD's unix socket (URLs escaped,
 * the project added, every answer capped), LXD's JSON envelope and error
 * answers turned into errno values with LXD's own text, and waits on
 * LXD's asynchronous operations. Every other file of the backend talks to
 * LXD only through here. It must never put anything but a JSON body or a
 * caller's raw body on the wire (secrets travel only as a raw file body,
 * and never into an error message), never read an answer without a size
 * cap, and never let an operation id that is not a UUID into a URL.
 */
#include "util/common.h"
#include "provider/lxd/lxd_internal.h"

void lxd_answer_release(struct lxd_answer *a)
{
	json_decref(a->root);
	memset(a, 0, sizeof(*a));
}

void lxd_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

const char *lxd_jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* ---- URLs ----------------------------------------------------------- */

bool lxd_url_plain(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

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

int lxd_http(struct lxd *l, const struct lxd_req *q, struct httpc_response *ret, struct err *e)
{
	const char *method = q->method ? q->method : "GET";
	struct buf url = BUF_INIT(LXD_URL_MAX);
	const char *hdrs[16];
	char *json = NULL;
	const void *body = q->body;
	size_t n = 0, body_len = q->body_len;
	lxd_trace_fn trace;
	void *trace_arg;
	int r;

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
	        .connect_timeout_ms = l->connect_ms,
	        .timeout_ms = q->timeout_ms > 0 ? q->timeout_ms : l->request_ms,
	        .max_body = q->max_body ? q->max_body : LXD_RESPONSE_MAX,
	        .want_headers = q->want_headers,
	};
	r = httpc_perform(l->http, &hr, ret, e);
	if (r == -ECONNREFUSED && e)
		err_prefix(e, "lxd at %s", l->socket);
	else if (r < 0 && e)
		err_prefix(e, "lxd");
out:
	free(json);
	buf_release(&url);
	return r;
}

int lxd_status_errno(long status)
{
	switch (status) {
	case 400:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 409:
		return -EEXIST;
	case 412:
	case 503:
		return -EAGAIN;
	default:
		return -EIO;
	}
}

/* LXD's error text, bounded and printable. */
static void errtext(const char *in, char *out, size_t cap)
{
	size_t n = 0;

	for (const char *p = in ? in : ""; *p && n + 1 < cap && n < LXD_ERRTEXT_MAX; p++)
		out[n++] = (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p;
	if (in && strlen(in) > n && n + 4 < cap) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

int lxd_answer_error(const char *method, const char *path, long status, const json_t *root,
                     struct err *e)
{
	char text[LXD_ERRTEXT_MAX + 8];
	const char *msg = lxd_jstr(root, "error");
	json_int_t code = json_integer_value(json_object_get(root, "error_code"));

	if (code >= 400 && code < 600)
		status = (long)code;
	if (msg && *msg)
		errtext(msg, text, sizeof(text));
	else
		snprintf(text, sizeof(text), "HTTP %ld", status);
	return err_set(e, lxd_status_errno(status), "lxd: %s %s: %s", method, path, text);
}

/* Operation ids are UUIDs: anything else must not reach a URL. */
static bool op_id_valid(const char *s, size_t cap)
{
	size_t n = strlen(s);
	if (n == 0 || n >= cap)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || s[i] == '-'))
			return false;
	return true;
}

/* One request whose answer is LXD's JSON envelope; an error answer is an error. */
int lxd_call(struct lxd *l, const struct lxd_req *q, struct lxd_answer *ret, struct err *e)
{
	static const char *const want[] = {"Etag", NULL};
	const char *method = q->method ? q->method : "GET";
	struct httpc_response resp = {0};
	struct lxd_answer a = {0};
	struct lxd_req q2 = *q;
	const char *type, *etag;
	json_error_t je;
	int r;

	if (!q2.want_headers)
		q2.want_headers = want;
	r = lxd_http(l, &q2, &resp, e);
	if (r < 0)
		return r;
	a.root = resp.body.len ? json_loadb(resp.body.data, resp.body.len, 0, &je) : NULL;
	if (resp.status >= 400) {
		r = lxd_answer_error(method, q->path, resp.status, a.root, e);
		goto out;
	}
	if (!json_is_object(a.root) || !(type = lxd_jstr(a.root, "type"))) {
		r = err_set(e, -EBADMSG, "lxd: %s %s: unparsable answer (HTTP %ld)", method,
		            q->path, resp.status);
		goto out;
	}
	if (strcmp(type, "error") == 0) {
		r = lxd_answer_error(method, q->path, resp.status, a.root, e);
		goto out;
	}
	if (strcmp(type, "async") == 0) {
		const char *op = lxd_jstr(a.root, "operation");
		const char *id = op && str_has_prefix(op, LXD_OPS) ? op + strlen(LXD_OPS) : NULL;
		if (!id || !op_id_valid(id, sizeof(a.op))) {
			r = err_set(e, -EBADMSG, "lxd: %s %s: async answer without an operation",
			            method, q->path);
			goto out;
		}
		str_copy(a.op, id, sizeof(a.op));
	}
	etag = httpc_response_header(&resp, "Etag");
	if (etag)
		str_copy(a.etag, etag, sizeof(a.etag));
	a.meta = json_object_get(a.root, "metadata");
	*ret = a;
	a.root = NULL;
	r = 0;
out:
	json_decref(a.root);
	httpc_response_release(&resp);
	return r;
}

/*
 * Wait until operation id ends (what names it in messages). 0 when it
 * succeeded, with the operation object in *ret_op when asked (a new
 * reference); -EIO with LXD's text when it failed, and when LXD no longer
 * knows it (404: lost, as in an LXD restart: never "the object is gone");
 * -ETIMEDOUT when it did not end within timeout_s, after asking LXD to
 * cancel it when cancel is set.
 */
int lxd_wait(struct lxd *l, const char *id, int64_t timeout_s, bool cancel, const char *what,
             json_t **ret_op, struct err *e)
{
	int64_t deadline = clock_mono_ms() + timeout_s * 1000;
	char path[128], query[48];
	int r;

	snprintf(path, sizeof(path), "/1.0/operations/%s/wait", id);
	for (;;) {
		struct lxd_answer a = {0};
		int64_t left = deadline - clock_mono_ms(), t0 = clock_mono_ms();
		json_int_t sc;

		if (left <= 0) {
			char cpath[128];
			struct lxd_req cq = {.method = "DELETE", .path = cpath};
			snprintf(cpath, sizeof(cpath), "/1.0/operations/%s", id);
			if (cancel && lxd_call(l, &cq, &a, NULL) == 0)
				lxd_answer_release(&a);
			return err_set(e, -ETIMEDOUT, "lxd: %s: not done after %" PRId64 "s", what,
			               timeout_s);
		}
		snprintf(query, sizeof(query), "timeout=%" PRId64, (left + 999) / 1000);
		struct lxd_req q = {
		        .path = path, .query = query, .timeout_ms = left + LXD_WAIT_SLACK_MS};
		r = lxd_call(l, &q, &a, e);
		if (r == -ENOENT)
			return err_set(e, -EIO, "lxd: %s: operation lost (LXD restarted?)", what);
		if (r < 0) {
			if (e)
				err_prefix(e, "%s", what);
			return r;
		}
		if (!json_is_object(a.meta) ||
		    !json_is_integer(json_object_get(a.meta, "status_code"))) {
			lxd_answer_release(&a);
			return err_set(e, -EBADMSG, "lxd: %s: unparsable operation", what);
		}
		sc = json_integer_value(json_object_get(a.meta, "status_code"));
		if (sc == 200) {
			if (ret_op)
				*ret_op = json_incref(a.meta);
			lxd_answer_release(&a);
			return 0;
		}
		if (sc == 400 || sc == 401) {
			char text[LXD_ERRTEXT_MAX + 8];
			const char *err = lxd_jstr(a.meta, "err");
			errtext(err && *err ? err : (sc == 401 ? "cancelled" : "failed"), text,
			        sizeof(text));
			lxd_answer_release(&a);
			return err_set(e, -EIO, "lxd: %s: %s", what, text);
		}
		lxd_answer_release(&a);
		/* Still running: LXD answered before its timeout; do not spin. */
		if (clock_mono_ms() - t0 < LXD_POLL_MS)
			lxd_sleep_ms(LXD_POLL_MS);
	}
}

/* A request that starts an operation, then its wait. */
int lxd_run(struct lxd *l, const struct lxd_req *q, int64_t timeout_s, const char *what,
            json_t **ret_op, struct err *e)
{
	struct lxd_answer a = {0};
	int r = lxd_call(l, q, &a, e);

	if (r < 0)
		return r;
	if (!a.op[0]) {
		lxd_answer_release(&a);
		return err_set(e, -EBADMSG, "lxd: %s: expected an operation", what);
	}
	r = lxd_wait(l, a.op, timeout_s, true, what, ret_op, e);
	lxd_answer_release(&a);
	return r;
}
