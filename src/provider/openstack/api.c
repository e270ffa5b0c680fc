/*
 * Keystone and the requests of the openstack backend: one token with its
 * catalog, got when there is none, renewed OS_RENEW_MS before it expires
 * and once when an API answers 401 (the request is then sent again); and
 * every request under a connect and a total timeout cut to what is left
 * of the call's deadline, stopped by its cancel flag. The token and the
 * auth body are secrets: they live in secret bufs and go to libcurl only,
 * never into a message.
 */
#include "util/common.h"
#include "provider/openstack/os_internal.h"
#include "util/log.h"

int os_escape(struct buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		             (*p >= '0' && *p <= '9') || strchr("-._~", *p);
		if ((plain ? buf_append(b, p, 1) : buf_printf(b, "%%%02X", *p)) < 0)
			return -ENAMETOOLONG;
	}
	return 0;
}

static long bound(const struct os *o, const struct provider_call *c, long own)
{
	int64_t left = provider_call_left_ms(c);
	long t = own > 0 ? own : o->request_ms;
	return t < left ? t : (long)left;
}

/* A new token and catalog (o->lock held). */
static int authenticate(struct os *o, const struct provider_call *c, struct err *e)
{
	static const char *const want[] = {"X-Subject-Token", NULL};
	static const char *const hdrs[] = {"Content-Type: application/json",
	                                   "Accept: application/json", NULL};
	char ep[OS_SERVICES][OS_URL_MAX];
	struct httpc_response resp = {0};
	struct buf body = BUF_INIT_SECRET(0), url = BUF_INIT(OS_URL_MAX);
	const char *tok;
	int64_t expires;
	long timeout = bound(o, c, 0);
	int r;

	if (timeout <= 0)
		return err_set(e, -ETIMEDOUT, "keystone: no time left within the call's deadline");
	r = os_build_auth(&o->cloud, &body);
	if (r < 0)
		return err_set(e, r, "keystone: out of memory");
	if (buf_puts(&url, o->cloud.auth_url) < 0 ||
	    (!str_has_prefix(strrchr(o->cloud.auth_url, '/'), "/v3") &&
	     buf_puts(&url, "/v3") < 0) ||
	    buf_puts(&url, "/auth/tokens") < 0) {
		r = err_set(e, -ENAMETOOLONG, "keystone: auth_url too long");
		goto out;
	}
	struct httpc_request hr = {
	        .method = "POST",
	        .url = buf_str(&url),
	        .headers = hdrs,
	        .body = body.data,
	        .body_len = body.len,
	        .ca_file = o->ca_file,
	        .connect_timeout_ms = OS_CONNECT_MS < timeout ? OS_CONNECT_MS : timeout,
	        .timeout_ms = timeout,
	        .max_body = OS_PAGE_MAX,
	        .want_headers = want,
	        .cancel = c->cancel,
	};
	r = httpc_perform(o->http, &hr, &resp, e);
	atomic_fetch_add(&o->n_requests, 1);
	if (r < 0) {
		err_prefix(e, "keystone at %s", o->cloud.auth_url);
		goto out;
	}
	if (resp.status != 201 && resp.status != 200) {
		r = os_parse_error("keystone: authentication", resp.status, resp.body.data,
		                   resp.body.len, e);
		goto out;
	}
	tok = httpc_response_header(&resp, "X-Subject-Token");
	if (!tok || !*tok || strlen(tok) > OS_TOKEN_MAX || strpbrk(tok, "\r\n")) {
		r = err_set(e, -EBADMSG, "keystone: an answer without a usable X-Subject-Token");
		goto out;
	}
	r = os_parse_token(resp.body.data, resp.body.len, o->interface, o->region, &expires, ep, e);
	if (r < 0)
		goto out;
	buf_release(&o->token);
	buf_init_secret(&o->token, OS_TOKEN_MAX + 32);
	if (buf_printf(&o->token, "X-Auth-Token: %s", tok) < 0) {
		r = err_set(e, -ENOMEM, "keystone: out of memory");
		goto out;
	}
	o->token_until = expires - OS_RENEW_MS;
	memcpy(o->endpoint, ep, sizeof(ep));
out:
	/* the token is in a captured header: wipe it there too */
	for (size_t i = 0; i < resp.n_headers; i++)
		if (resp.headers[i].value)
			explicit_bzero(resp.headers[i].value, strlen(resp.headers[i].value));
	httpc_response_release(&resp);
	buf_release(&body);
	buf_release(&url);
	return r;
}

/*
 * The token header into hdr (a secret buf) and the endpoint of svc into
 * ep: a new token first when there is none, it is due, or stale (the one
 * a 401 was answered with).
 */
static int token_get(struct os *o, const struct provider_call *c, const struct buf *stale,
                     enum os_service svc, struct buf *hdr, char *ep, struct err *e)
{
	int r = 0;

	pthread_mutex_lock(&o->lock);
	/* one new token per refused one: calls refused at once share it */
	bool refused = stale && stale->len == o->token.len &&
	               mem_equal_ct(stale->data, o->token.data, stale->len);
	if (refused)
		log_debug("openstack: the token was refused (401): authenticating again");
	if (o->token.len == 0 || clock_wall_ms() >= o->token_until || refused)
		r = authenticate(o, c, e);
	if (r == 0) {
		buf_reset(hdr);
		if (buf_append(hdr, o->token.data, o->token.len) < 0)
			r = err_set(e, -ENOMEM, "openstack: out of memory");
		if (ep)
			str_copy(ep, o->endpoint[svc], OS_URL_MAX);
	}
	pthread_mutex_unlock(&o->lock);
	return r;
}

int os_endpoint(struct os *o, const struct provider_call *c, enum os_service svc, char *out,
                size_t cap, struct err *e)
{
	struct buf hdr = BUF_INIT_SECRET(OS_TOKEN_MAX + 32);
	char ep[OS_URL_MAX];
	int r = token_get(o, c, NULL, svc, &hdr, ep, e);

	buf_release(&hdr);
	if (r == 0)
		str_copy(out, ep, cap);
	return r;
}

int os_request(struct os *o, const struct provider_call *c, const struct os_req *q,
               struct httpc_response *ret, struct err *e)
{
	static const char *const svc_name[OS_SERVICES] = {"nova", "neutron", "glance"};
	const char *method = q->method ? q->method : "GET";
	struct buf hdr = BUF_INIT_SECRET(OS_TOKEN_MAX + 32), url = BUF_INIT(OS_URL_MAX * 2);
	char ep[OS_URL_MAX];
	int r = 0;

	for (int attempt = 0; attempt < 2; attempt++) {
		const char *hdrs[] = {hdr.data, "Accept: application/json",
		                      "Content-Type: application/json", NULL};
		struct httpc_response resp = {0};
		long timeout;

		if (provider_call_cancelled(c)) {
			r = err_set(e, -ECANCELED, "%s: %s: cancelled", svc_name[q->svc], q->what);
			break;
		}
		r = token_get(o, c, attempt ? &hdr : NULL, q->svc, &hdr, ep, e);
		if (r < 0)
			break;
		hdrs[0] = buf_str(&hdr);
		timeout = bound(o, c, 0);
		if (timeout <= 0) {
			r = err_set(e, -ETIMEDOUT,
			            "%s: %s: no time left within the call's deadline",
			            svc_name[q->svc], q->what);
			break;
		}
		buf_reset(&url);
		if ((q->url ? buf_puts(&url, q->url) : buf_printf(&url, "%s%s", ep, q->path)) < 0) {
			r = err_set(e, -ENAMETOOLONG, "%s: %s: URL too long", svc_name[q->svc],
			            q->what);
			break;
		}
		struct httpc_request hr = {
		        .method = method,
		        .url = buf_str(&url),
		        .headers = hdrs,
		        .body = q->body,
		        .body_len = q->body ? strlen(q->body) : 0,
		        .ca_file = o->ca_file,
		        .connect_timeout_ms = OS_CONNECT_MS < timeout ? OS_CONNECT_MS : timeout,
		        .timeout_ms = timeout,
		        .max_body = q->max_body ? q->max_body : OS_RESPONSE_MAX,
		        .cancel = c->cancel,
		};
		r = httpc_perform(o->http, &hr, &resp, e);
		atomic_fetch_add(&o->n_requests, 1);
		if (r < 0) {
			err_prefix(e, "%s: %s", svc_name[q->svc], q->what);
			break;
		}
		if (resp.status == 401 && attempt == 0) {
			httpc_response_release(&resp);
			continue; /* the token was revoked or expired early: a new one, once */
		}
		httpc_response_release(ret);
		*ret = resp;
		break;
	}
	buf_release(&hdr);
	buf_release(&url);
	return r;
}

int os_call(struct os *o, const struct provider_call *c, const struct os_req *q,
            struct httpc_response *ret, struct err *e)
{
	static const char *const svc_name[OS_SERVICES] = {"nova", "neutron", "glance"};
	struct httpc_response resp = {0};
	char what[320];
	int r = os_request(o, c, q, &resp, e);

	if (r < 0)
		return r;
	if (resp.status >= 400) {
		snprintf(what, sizeof(what), "%s: %s", svc_name[q->svc], q->what);
		r = os_parse_error(what, resp.status, resp.body.data, resp.body.len, e);
		httpc_response_release(&resp);
		return r;
	}
	httpc_response_release(ret);
	*ret = resp;
	return 0;
}
