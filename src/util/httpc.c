/*
 * libcurl behind one function: bounded bodies, mandatory timeouts, only the
 * wanted headers kept, and a transfer another thread can cancel. It must
 * never turn on CURLOPT_VERBOSE or put a header line or a URL's query (which
 * may hold a token) into an error message.
 */
#include "util/common.h"
#include "util/httpc.h"
#include "util/strutil.h"

#include <pthread.h>
#include <curl/curl.h>

#define HTTPC_MAX_HEADER_VALUE 8192

struct httpc {
	CURLSH *share;
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
};

/* One transfer in flight. */
struct xfer {
	CURL *c;
	const struct httpc_request *req;
	struct buf body;
	uint64_t downloaded;
	int cb_err; /* negative errno a callback stopped the transfer with */
	struct httpc_header *hdrs;
	size_t n_hdrs;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void httpc_global_init(void)
{
	/* Once per process, before any thread uses libcurl (it is not thread-safe). */
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int httpc_ensure_global(struct err *e)
{
	pthread_once(&global_once, httpc_global_init);
	if (global_rc != CURLE_OK)
		return err_set(e, -EIO, "libcurl: %s", curl_easy_strerror(global_rc));
	return 0;
}

static void httpc_lock(CURL *c, curl_lock_data data, curl_lock_access access, void *arg)
{
	struct httpc *h = arg;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&h->locks[data]);
}

static void httpc_unlock(CURL *c, curl_lock_data data, void *arg)
{
	struct httpc *h = arg;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&h->locks[data]);
}

int httpc_new(struct httpc **ret, struct err *e)
{
	struct httpc *h;
	int r = httpc_ensure_global(e);

	if (r < 0)
		return r;
	h = calloc(1, sizeof(*h));
	if (!h)
		return err_set(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < ARRAY_SIZE(h->locks); i++)
		pthread_mutex_init(&h->locks[i], NULL);
	h->share = curl_share_init();
	if (!h->share) {
		httpc_free(h);
		return err_set(e, -ENOMEM, "libcurl: cannot create a share handle");
	}
	curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, httpc_lock);
	curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, httpc_unlock);
	curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	/* Keep-alive across calls: a 10-page list costs one TCP/TLS handshake. */
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	*ret = h;
	return 0;
}

void httpc_free(struct httpc *h)
{
	if (!h)
		return;
	if (h->share)
		curl_share_cleanup(h->share);
	for (size_t i = 0; i < ARRAY_SIZE(h->locks); i++)
		pthread_mutex_destroy(&h->locks[i]);
	free(h);
}

static void headers_free(struct httpc_header *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
}

void httpc_response_release(struct httpc_response *r)
{
	if (!r)
		return;
	buf_release(&r->body);
	headers_free(r->headers, r->n_headers);
	r->headers = NULL;
	r->n_headers = 0;
	r->status = 0;
	r->downloaded = 0;
}

const char *httpc_response_header(const struct httpc_response *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	int r;

	if (x->req->to_fd) {
		long status = 0;
		curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status < 300) {
			if (x->req->max_download && n > x->req->max_download - x->downloaded) {
				x->cb_err = -EFBIG; /* reported as -E2BIG, with its own message */
				return 0;
			}
			r = write_all(x->req->fd, p, n);
			if (r < 0) {
				x->cb_err = r;
				return 0;
			}
			x->downloaded += n;
			return n;
		}
	}
	r = buf_append(&x->body, p, n);
	if (r < 0) {
		x->cb_err = r;
		return 0;
	}
	return n;
}

static int header_keep(struct xfer *x, const char *name, const char *v, size_t vlen)
{
	char *value = strndup(v, vlen);
	if (!value)
		return -ENOMEM;
	/* The last occurrence wins, as for the single-valued headers we ask for. */
	for (size_t i = 0; i < x->n_hdrs; i++)
		if (strcasecmp(x->hdrs[i].name, name) == 0) {
			free(x->hdrs[i].value);
			x->hdrs[i].value = value;
			return 0;
		}
	struct httpc_header *nv = realloc(x->hdrs, (x->n_hdrs + 1) * sizeof(*nv));
	if (!nv) {
		free(value);
		return -ENOMEM;
	}
	x->hdrs = nv;
	x->hdrs[x->n_hdrs].name = strdup(name);
	if (!x->hdrs[x->n_hdrs].name) {
		free(value);
		return -ENOMEM;
	}
	x->hdrs[x->n_hdrs++].value = value;
	return 0;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb, namelen, vlen;
	const char *colon, *v;

	if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* A new answer (after a redirect or a 100): forget the previous one's headers. */
		headers_free(x->hdrs, x->n_hdrs);
		x->hdrs = NULL;
		x->n_hdrs = 0;
		return n;
	}
	if (!x->req->want_headers)
		return n;
	colon = memchr(p, ':', n);
	if (!colon)
		return n;
	namelen = (size_t)(colon - p);
	v = colon + 1;
	vlen = n - namelen - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ' ||
	                    v[vlen - 1] == '\t'))
		vlen--;
	if (vlen > HTTPC_MAX_HEADER_VALUE)
		return n;
	for (const char *const *w = x->req->want_headers; *w; w++) {
		if (strlen(*w) != namelen || strncasecmp(*w, p, namelen) != 0)
			continue;
		if (header_keep(x, *w, v, vlen) < 0) {
			x->cb_err = -ENOMEM;
			return 0;
		}
		break;
	}
	return n;
}

/* scheme://host/path of url: no user info, no query, so no secret reaches a message. */
static void url_for_message(const char *url, char *out, size_t cap)
{
	const char *s = strstr(url, "://");
	const char *host = s ? s + 3 : url;
	const char *end = host + strcspn(host, "/?#");
	const char *at = memchr(host, '@', (size_t)(end - host));
	size_t pathlen;

	if (at)
		host = at + 1;
	pathlen = strcspn(end, "?#");
	snprintf(out, cap, "%.*s%.*s%.*s", s ? (int)(s + 3 - url) : 0, url, (int)(end - host), host,
	         (int)pathlen, end);
}

static int map_curl_error(struct xfer *x, CURLcode rc, const char *errbuf, struct err *e)
{
	char where[512];
	const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
	const char *method = x->req->method ? x->req->method : "GET";
	curl_off_t connect_us = 0;
	long request_bytes = 0;

	url_for_message(x->req->url, where, sizeof(where));
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return err_set(e, -ECONNREFUSED, "%s %s: %s", method, where, why);
	case CURLE_OPERATION_TIMEDOUT:
		/*
		 * Never left only if nothing was sent: a reused connection reports no
		 * connect time, yet the request went out on it (and a POST that may
		 * have reached the server must not be taken for one that did not).
		 */
		curl_easy_getinfo(x->c, CURLINFO_CONNECT_TIME_T, &connect_us);
		curl_easy_getinfo(x->c, CURLINFO_REQUEST_SIZE, &request_bytes);
		if (connect_us == 0 && request_bytes <= 0)
			return err_set(e, -ECONNREFUSED, "%s %s: connect timed out (%s)", method,
			               where, why);
		return err_set(e, -ETIMEDOUT, "%s %s: timed out (%s)", method, where, why);
	case CURLE_WRITE_ERROR:
		if (x->cb_err == -EFBIG)
			return err_set(e, -E2BIG, "%s %s: download larger than %" PRIu64 " bytes",
			               method, where, x->req->max_download);
		if (x->cb_err == -E2BIG)
			return err_set(e, -E2BIG, "%s %s: response body larger than %zu bytes",
			               method, where, x->req->max_body);
		if (x->cb_err < 0)
			return err_set(e, x->cb_err, "%s %s: %s", method, where,
			               strerror(-x->cb_err));
		return err_set(e, -EIO, "%s %s: %s", method, where, why);
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_BAD_CONTENT_ENCODING:
		return err_set(e, -ECONNRESET, "%s %s: connection dropped (%s)", method, where,
		               why);
	case CURLE_SSL_CONNECT_ERROR:
		return err_set(e, -ECONNRESET, "%s %s: TLS handshake failed (%s)", method, where,
		               why);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
		return err_set(e, -EPROTO, "%s %s: TLS: %s", method, where, why);
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return err_set(e, -EINVAL, "%s %s: %s", method, where, why);
	case CURLE_OUT_OF_MEMORY:
		return err_set(e, -ENOMEM, "%s %s: out of memory", method, where);
	default:
		if (x->cb_err < 0)
			return err_set(e, x->cb_err, "%s %s: %s", method, where,
			               strerror(-x->cb_err));
		return err_set(e, -EIO, "%s %s: %s", method, where, why);
	}
}

static int setup(struct httpc *h, struct xfer *x, struct curl_slist **ret_hdrs, char *errbuf,
                 struct err *e)
{
	const struct httpc_request *req = x->req;
	const char *method = req->method ? req->method : "GET";
	struct curl_slist *hl = NULL, *t;
	CURL *c = x->c;
	bool ok = true;

#define SET(opt, val) ok = ok && curl_easy_setopt(c, opt, val) == CURLE_OK
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_VERBOSE, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_CONNECTTIMEOUT_MS,
	    req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 10000L);
	SET(CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 30000L);
	if (req->low_speed_time_s > 0) {
		SET(CURLOPT_LOW_SPEED_LIMIT, 1024L);
		SET(CURLOPT_LOW_SPEED_TIME, req->low_speed_time_s);
	}
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, x);
	SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	if (!req->to_fd)
		SET(CURLOPT_ACCEPT_ENCODING, ""); /* the cap applies to the decoded body */
	if (h)
		SET(CURLOPT_SHARE, h->share);
	if (req->unix_socket)
		SET(CURLOPT_UNIX_SOCKET_PATH, req->unix_socket);
	if (req->ca_file && req->ca_file[0])
		SET(CURLOPT_CAINFO, req->ca_file);
	/* An explicit "" would disable the environment's proxy: leave it unset instead. */
	if (req->proxy && req->proxy[0])
		SET(CURLOPT_PROXY, req->proxy);
	if (req->follow_redirects) {
		SET(CURLOPT_FOLLOWLOCATION, 1L);
		SET(CURLOPT_MAXREDIRS, 5L);
	}
	if (strcmp(method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		SET(CURLOPT_NOBODY, 1L);
	} else {
		if (strcmp(method, "POST") != 0)
			SET(CURLOPT_CUSTOMREQUEST, method);
		if (req->body || strcmp(method, "POST") == 0) {
			SET(CURLOPT_POSTFIELDSIZE_LARGE,
			    (curl_off_t)(req->body ? req->body_len : 0));
			SET(CURLOPT_POSTFIELDS, req->body ? req->body : "");
		}
	}
#undef SET
	if (!ok)
		return err_set(e, -EINVAL, "libcurl refused an option (is it too old?)");

	for (const char *const *l = req->headers; l && *l; l++) {
		t = curl_slist_append(hl, *l);
		if (!t)
			goto oom;
		hl = t;
	}
	if (req->body) {
		/* No "Expect: 100-continue" round trip for our small bodies. */
		t = curl_slist_append(hl, "Expect:");
		if (!t)
			goto oom;
		hl = t;
	}
	if (hl && curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl) != CURLE_OK) {
		curl_slist_free_all(hl);
		return err_set(e, -EINVAL, "libcurl refused the headers");
	}
	*ret_hdrs = hl;
	return 0;
oom:
	curl_slist_free_all(hl);
	return err_set(e, -ENOMEM, "out of memory");
}

static int cancelled(const struct httpc_request *req, const char *when, struct err *e)
{
	char where[512];
	url_for_message(req->url, where, sizeof(where));
	return err_set(e, -ECANCELED, "%s %s: cancelled %s", req->method ? req->method : "GET",
	               where, when);
}

/*
 * Run the transfer on a multi handle of its own rather than with
 * curl_easy_perform(), which waits up to a second at a time between looks at
 * anything of ours: here the loop wakes at least every HTTPC_CANCEL_POLL_MS
 * when the request has a cancel flag, and drops the transfer once it is set.
 * The easy handle still uses the shared connection cache (CURLOPT_SHARE wins
 * over the multi handle's own). CURLE_FAILED_INIT with x->cb_err < 0 and e
 * filled: the multi interface itself failed.
 */
static CURLcode drive(struct xfer *x, struct err *e)
{
	CURLM *m = curl_multi_init();
	CURLcode rc = CURLE_FAILED_INIT;
	int wait_ms = x->req->cancel ? HTTPC_CANCEL_POLL_MS : 1000;
	CURLMcode mc;

	if (!m) {
		x->cb_err = err_set(e, -ENOMEM, "libcurl: cannot create a multi handle");
		return rc;
	}
	mc = curl_multi_add_handle(m, x->c);
	if (mc != CURLM_OK) {
		x->cb_err = err_set(e, -ENOMEM, "libcurl: %s", curl_multi_strerror(mc));
		curl_multi_cleanup(m);
		return rc;
	}
	for (;;) {
		int running = 0, left = 0;
		CURLMsg *msg;

		mc = curl_multi_perform(m, &running);
		if (mc != CURLM_OK) {
			x->cb_err = err_set(e, -EIO, "libcurl: %s", curl_multi_strerror(mc));
			break;
		}
		while ((msg = curl_multi_info_read(m, &left)))
			if (msg->msg == CURLMSG_DONE && msg->easy_handle == x->c)
				rc = msg->data.result;
		if (!running)
			break;
		if (x->req->cancel && atomic_load(x->req->cancel)) {
			x->cb_err = -ECANCELED;
			rc = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
		/* Returns early on socket activity and on libcurl's own timers (timeouts). */
		mc = curl_multi_poll(m, NULL, 0, wait_ms, NULL);
		if (mc != CURLM_OK) {
			x->cb_err = err_set(e, -EIO, "libcurl: %s", curl_multi_strerror(mc));
			break;
		}
	}
	/* Removing a transfer that is still running closes its connection. */
	curl_multi_remove_handle(m, x->c);
	curl_multi_cleanup(m);
	return rc;
}

/* Header lines may hold a token: wipe libcurl's copies before they are freed. */
static void slist_wipe_free(struct curl_slist *l)
{
	for (struct curl_slist *i = l; i; i = i->next)
		explicit_bzero(i->data, strlen(i->data));
	curl_slist_free_all(l);
}

int httpc_perform(struct httpc *h, const struct httpc_request *req, struct httpc_response *ret,
                  struct err *e)
{
	struct xfer x = {.req = req};
	struct curl_slist *hl = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	CURLcode rc;
	long status = 0;
	int r;

	if (!req->url || req->max_body == 0 || (req->to_fd && req->fd < 0))
		return err_set(e, -EINVAL, "httpc: bad request (url, max_body or fd missing)");
	r = httpc_ensure_global(e);
	if (r < 0)
		return r;
	if (req->secret)
		buf_init_secret(&x.body, req->max_body);
	else
		buf_init(&x.body, req->max_body);
	x.c = curl_easy_init();
	if (!x.c)
		return err_set(e, -ENOMEM, "libcurl: cannot create a handle");
	r = setup(h, &x, &hl, errbuf, e);
	if (r < 0)
		goto out;
	if (req->cancel && atomic_load(req->cancel)) {
		r = cancelled(req, "before it was sent", e);
		goto out;
	}
	rc = drive(&x, e);
	if (rc == CURLE_ABORTED_BY_CALLBACK && x.cb_err == -ECANCELED) {
		r = cancelled(req, "in flight", e);
		goto out;
	}
	if (rc == CURLE_FAILED_INIT && x.cb_err < 0) {
		r = x.cb_err; /* drive() said why */
		goto out;
	}
	if (rc != CURLE_OK) {
		r = map_curl_error(&x, rc, errbuf, e);
		goto out;
	}
	curl_easy_getinfo(x.c, CURLINFO_RESPONSE_CODE, &status);
	httpc_response_release(ret);
	ret->status = status;
	ret->body = x.body;
	ret->downloaded = x.downloaded;
	ret->headers = x.hdrs;
	ret->n_headers = x.n_hdrs;
	buf_init(&x.body, req->max_body);
	x.hdrs = NULL;
	x.n_hdrs = 0;
out:
	curl_easy_cleanup(x.c);
	slist_wipe_free(hl);
	buf_release(&x.body);
	headers_free(x.hdrs, x.n_hdrs);
	return r;
}
