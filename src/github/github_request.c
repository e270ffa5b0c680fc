/*
 * The request core: every GitHub call goes through github_do(), which adds
 * credentials and GitHub's headers, answers from the ETag cache on a 304,
 * follows the rate limit of each resource (failing fast while barred, never
 * sleeping for it), retries only what is safe to repeat with bounded backoff
 * inside the call's deadline, stops when the client is cancelled, and turns
 * statuses into errors that name the operation. It must never put a token, a
 * JWT or a JIT config into a message, and never follow a Link to another
 * host with our credentials.
 */
#include "util/common.h"
#include "github/github_internal.h"
#include "util/strutil.h"

long github_backoff_ms(const struct github_opts *o, int attempt, uint32_t rnd)
{
	long d = o->backoff_base_ms > 0 ? o->backoff_base_ms : 1;
	long max = o->backoff_max_ms > 0 ? o->backoff_max_ms : d;

	for (int i = 0; i < attempt && d < max; i++)
		d = d > LONG_MAX / 2 ? max : d * 2;
	if (d > max)
		d = max;
	/* Equal jitter: never less than half the step, so retries stay spread out. */
	return d - d / 2 + (long)(rnd % (uint32_t)(d / 2 + 1));
}

int github_link_next(const char *link, char *ret, size_t cap)
{
	const char *p = link;

	if (!link) {
		ret[0] = '\0';
		return 0;
	}
	/* Link: <url>; rel="next", <url>; rel="last" (rel may hold several words). */
	while (*p) {
		const char *u0, *u1, *end;
		bool next = false;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		if (*p != '<')
			return -EPROTO;
		u0 = p + 1;
		u1 = strchr(u0, '>');
		if (!u1)
			return -EPROTO;
		p = u1 + 1;
		end = p;
		/* Parameters up to the next link: a ',' outside quotes. */
		for (bool q = false; *end && (q || *end != ','); end++)
			if (*end == '"')
				q = !q;
		for (const char *s = p; s < end;) {
			const char *v, *ve;
			while (s < end && (*s == ';' || *s == ' ' || *s == '\t'))
				s++;
			if (end - s < 4 || strncasecmp(s, "rel=", 4) != 0) {
				while (s < end && *s != ';')
					s++;
				continue;
			}
			v = s + 4;
			if (v < end && *v == '"') {
				v++;
				ve = memchr(v, '"', (size_t)(end - v));
				if (!ve)
					return -EPROTO;
				s = ve + 1;
			} else {
				ve = v;
				while (ve < end && *ve != ';' && *ve != ' ')
					ve++;
				s = ve;
			}
			for (const char *w = v; w < ve;) {
				const char *we = w;
				while (we < ve && *we != ' ')
					we++;
				if (we - w == 4 && strncasecmp(w, "next", 4) == 0)
					next = true;
				w = we;
				while (w < ve && *w == ' ')
					w++;
			}
		}
		if (next) {
			if ((size_t)(u1 - u0) >= cap)
				return -E2BIG;
			memcpy(ret, u0, (size_t)(u1 - u0));
			ret[u1 - u0] = '\0';
			return 0;
		}
		p = end;
	}
	ret[0] = '\0';
	return 0;
}

void github_reply_release(struct github_reply *r)
{
	if (!r)
		return;
	buf_release(&r->body);
	r->link_next[0] = '\0';
	r->status = 0;
	r->from_cache = false;
}

static uint32_t rng_next(struct github *gh)
{
	uint64_t x;
	pthread_mutex_lock(&gh->mu);
	x = gh->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	gh->rng = x;
	pthread_mutex_unlock(&gh->mu);
	return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

/* Sleep ms in slices, so that github_cancel() cuts it short; false when cancelled. */
static bool sleep_unless_cancelled(struct github *gh, long ms)
{
	int64_t end = clock_mono_ms() + ms, left;
	bool cancelled;

	while (!(cancelled = atomic_load(&gh->cancelled)) && (left = end - clock_mono_ms()) > 0)
		clock_sleep_ms(left < HTTPC_CANCEL_POLL_MS ? left : HTTPC_CANCEL_POLL_MS);
	return !cancelled;
}

static bool accepted(const struct github_call *call, long status)
{
	bool ok = status >= 200 && status < 300;

	for (const int *a = call->accept; !ok && a && *a; a++)
		ok = *a == status;
	return ok;
}

/* A 401: the token, or the App's JWT, is no good. */
static int unauthorized_error(const struct github_call *call, const char *msg, struct err *e)
{
	const char *why = msg[0] ? msg : "Unauthorized";

	return call->use_jwt ? err_set(e, -EACCES, "%s: GitHub rejected the App's JWT (401 %s)",
	                               call->op, why)
	                     : err_set(e, -EACCES, "GitHub rejected the credentials (401 %s)", why);
}

/* The error for a status nobody expected; note (may be "") ends the message. */
static int status_error(const struct github_call *call, long status, const struct buf *body,
                        int attempts, const char *note, struct err *e)
{
	char msg[160], tail[200] = "";
	int r;

	github_json_error_message(body, msg, sizeof(msg));
	if (attempts > 1)
		snprintf(tail, sizeof(tail), " after %d attempts%s", attempts, note);
	else if (note[0])
		snprintf(tail, sizeof(tail), "%s", note);
	switch (status) {
	case 401:
		r = unauthorized_error(call, msg, e);
		break;
	case 403:
		r = err_set(e, -EACCES,
		            "%s: GitHub refused (403 %s): check the token's permissions", call->op,
		            msg[0] ? msg : "Forbidden");
		break;
	case 404:
	case 410:
		r = err_set(e, -ENOENT, "%s: not found (%ld %s)", call->op, status,
		            msg[0] ? msg : "Not Found");
		break;
	case 409:
		r = err_set(e, -EEXIST, "%s: conflict (409 %s)", call->op, msg);
		break;
	case 400:
	case 422:
		r = err_set(e, -EINVAL, "%s: GitHub refused the request (%ld %s)", call->op, status,
		            msg);
		break;
	default:
		r = err_set(e, status >= 500 ? -EIO : -EPROTO, "%s: GitHub answered %ld%s%s%s%s",
		            call->op, status, msg[0] ? " (" : "", msg, msg[0] ? ")" : "", tail);
		break;
	}
	return r;
}

/* The Link header's next URL, which must stay under our base URL (it gets our token). */
static int next_link(struct github *gh, const struct github_call *call, const char *link, char *ret,
                     size_t cap, struct err *e)
{
	size_t bl = strlen(gh->base);
	int r = github_link_next(link, ret, cap);

	if (r < 0) {
		r = err_set(e, -EPROTO, "%s: GitHub sent a malformed Link header", call->op);
	} else if (ret[0] && (strncmp(ret, gh->base, bl) != 0 || ret[bl] != '/')) {
		ret[0] = '\0';
		r = err_set(e, -EPROTO, "%s: GitHub's next page is not under %s", call->op,
		            gh->base);
	}
	return r;
}

/* Time for one more attempt after sleeping delay_ms? */
static bool time_for_another(int64_t deadline, long delay_ms)
{
	return clock_mono_ms() + delay_ms + GITHUB_MIN_ATTEMPT_MS <= deadline;
}

/* The error of a call stopped by github_cancel(). */
static int cancelled_error(const struct github_call *call, const char *when, int attempts,
                           struct err *e)
{
	char after[48] = "";

	if (attempts > 0)
		snprintf(after, sizeof(after), " (after %d attempt%s)", attempts,
		         attempts == 1 ? "" : "s");
	return err_set(e, -ECANCELED, "%s: cancelled %s%s", call->op, when, after);
}

/* One request across its attempts. */
struct request {
	struct github *gh;
	const struct github_call *call;
	int64_t deadline; /* clock_mono_ms() by which every attempt has ended */
	long timeout_ms;  /* one attempt at most */
	long connect_ms;
	struct github_etag cached; /* the page If-None-Match names */
	bool have_cached;
	char *inm;     /* "If-None-Match: ..." (conditional calls with a cached page) */
	char *auth;    /* "Authorization: ..." (secret); NULL until needed */
	bool reauthed; /* the one fresh installation token after a 401 was taken */
	int attempt;   /* attempts before the current one */
	time_t now;    /* wall clock at the attempt's start, for rate limits */
	int64_t left;  /* milliseconds the attempt may take */
	struct httpc_response resp;
	struct err transport; /* httpc's words for a failed attempt */
	long delay;           /* backoff before the next attempt */
};

/* What comes after an attempt that did not fail. */
enum step {
	STEP_DONE,    /* resp is the answer */
	STEP_BACKOFF, /* sleep rq->delay, then try again */
	STEP_REAUTH,  /* fetch a fresh installation token and try again at once */
};

/* Whether another attempt is allowed after a failure. */
enum verdict {
	RETRY_NO,      /* not repeatable, or no attempts left */
	RETRY_YES,     /* rq->delay is set */
	RETRY_NO_TIME, /* repeatable, but it could not end within the deadline */
};

static const char no_time[] = "; no time left for another attempt within the call's deadline "
                              "(2 x request_timeout)";

static void request_init(struct request *rq, struct github *gh, const struct github_call *call)
{
	int64_t connect = gh->cfg->github.connect_timeout;

	*rq = (struct request){.gh = gh, .call = call};
	rq->timeout_ms = github_request_timeout_ms(gh);
	rq->connect_ms = (connect > 0 && connect < LONG_MAX / 1000 ? (long)connect : 10) * 1000L;
	rq->deadline =
	        call->deadline > 0 ? call->deadline : clock_mono_ms() + 2 * (int64_t)rq->timeout_ms;
	if (call->conditional)
		rq->have_cached = github_etag_lookup(gh, call->url, &rq->cached);
	/* Without the header the cached page cannot be asked for: a plain GET. */
	if (rq->have_cached && asprintf(&rq->inm, "If-None-Match: %s", rq->cached.etag) < 0) {
		rq->inm = NULL;
		rq->have_cached = false;
	}
}

static void request_release(struct request *rq)
{
	github_secret_free(&rq->auth);
	free(rq->inm);
	github_etag_clear(&rq->cached);
	httpc_response_release(&rq->resp);
}

/* A 304 to our If-None-Match: the answer is the cached page. */
static bool from_cache(const struct request *rq)
{
	return rq->have_cached && rq->resp.status == 304;
}

/* Before an attempt: not cancelled, not barred, credentials at hand, time left. */
static int attempt_ready(struct request *rq, struct err *e)
{
	int r;

	if (atomic_load(&rq->gh->cancelled)) {
		r = cancelled_error(rq->call, "before the request was sent", rq->attempt, e);
		goto out;
	}
	r = github_rate_check(rq->gh, rq->call, rq->now, e);
	if (r < 0)
		goto out;
	if (!rq->auth) {
		r = github_auth_header(rq->gh, rq->call->use_jwt, rq->deadline, &rq->auth, e);
		if (r < 0)
			goto out;
	}
	rq->left = rq->deadline - clock_mono_ms();
	if (rq->left < GITHUB_MIN_ATTEMPT_MS)
		r = err_set(e, -ETIMEDOUT,
		            "%s: no time left within the call's deadline (2 x request_timeout = "
		            "%lds)",
		            rq->call->op, 2 * rq->timeout_ms / 1000);
out:
	return r;
}

/* Put one attempt on the wire: httpc_perform's result, its words in rq->transport. */
static int send_attempt(struct request *rq)
{
	static const char *const want[] = {"ETag",
	                                   "Link",
	                                   "X-RateLimit-Limit",
	                                   "X-RateLimit-Remaining",
	                                   "X-RateLimit-Reset",
	                                   "X-RateLimit-Resource",
	                                   "Retry-After",
	                                   NULL};
	const struct config_github *g = &rq->gh->cfg->github;
	const struct github_call *call = rq->call;
	const char *hdrs[8];
	size_t nh = 0;

	hdrs[nh++] = rq->auth;
	hdrs[nh++] = "Accept: application/vnd.github+json";
	hdrs[nh++] = "X-GitHub-Api-Version: " GITHUB_API_VERSION;
	hdrs[nh++] = "User-Agent: runnerd/" RUNNERD_VERSION;
	if (call->body)
		hdrs[nh++] = "Content-Type: application/json";
	if (rq->inm)
		hdrs[nh++] = rq->inm;
	hdrs[nh] = NULL;
	err_clear(&rq->transport);
	return httpc_perform(
	        rq->gh->http,
	        &(struct httpc_request){
	                .method = call->method,
	                .url = call->url,
	                .headers = hdrs,
	                .body = call->body,
	                .body_len = call->body ? strlen(call->body) : 0,
	                .ca_file = g->ca_file,
	                .proxy = g->proxy,
	                .connect_timeout_ms = rq->connect_ms < rq->left ? rq->connect_ms : rq->left,
	                .timeout_ms = rq->timeout_ms < rq->left ? rq->timeout_ms : rq->left,
	                .max_body = rq->gh->opts.max_response,
	                .want_headers = want,
	                .cancel = &rq->gh->cancelled,
	                .secret = rq->call->secret,
	        },
	        &rq->resp, &rq->transport);
}

/* May a failed attempt be repeated? RETRY_YES sets the backoff. */
static enum verdict may_retry(struct request *rq, bool repeatable)
{
	enum verdict v = RETRY_NO;

	if (repeatable && rq->attempt < rq->gh->opts.max_retries) {
		rq->delay = github_backoff_ms(&rq->gh->opts, rq->attempt, rng_next(rq->gh));
		v = time_for_another(rq->deadline, rq->delay) ? RETRY_YES : RETRY_NO_TIME;
	}
	return v;
}

/*
 * Transport failures worth another attempt. GITHUB_RETRY_UNSENT repeats only
 * what never left: httpc says -ECONNREFUSED then, and a kept-alive connection
 * that timed out after the request went out is -ETIMEDOUT, never that (a JIT
 * POST was once sent twice).
 */
static bool transport_repeatable(enum github_retry retry, int sent)
{
	bool unsent = sent == -ECONNREFUSED;
	bool lost = sent == -ETIMEDOUT || sent == -ECONNRESET || sent == -EIO;

	return (retry == GITHUB_RETRY_ALL && (unsent || lost)) ||
	       (retry == GITHUB_RETRY_UNSENT && unsent);
}

/* An attempt that got no answer: cancelled, retried, or the call's error. */
static int judge_failure(struct request *rq, int sent, enum step *ret_step, struct err *e)
{
	const struct github_call *call = rq->call;
	enum verdict v;
	int r = 0;

	if (sent == -ECANCELED) {
		r = cancelled_error(call, "while waiting for GitHub's answer", rq->attempt + 1, e);
		goto out;
	}
	v = may_retry(rq, transport_repeatable(call->retry, sent));
	if (v == RETRY_YES)
		*ret_step = STEP_BACKOFF;
	else if (rq->attempt > 0 || v == RETRY_NO_TIME)
		r = err_set(e, sent, "%s: %s (after %d attempt%s%s)", call->op, rq->transport.msg,
		            rq->attempt + 1, rq->attempt ? "s" : "",
		            v == RETRY_NO_TIME ? no_time : "");
	else
		r = err_set(e, sent, "%s: %s", call->op, rq->transport.msg);
out:
	return r;
}

/* An answer: a 5xx retried, a 401 re-authenticated once (App), a status not accepted an error. */
static int judge_status(struct request *rq, enum step *ret_step, struct err *e)
{
	const struct github_call *call = rq->call;
	long status = rq->resp.status;
	enum verdict v = may_retry(rq, status >= 500 && call->retry == GITHUB_RETRY_ALL);
	int r = 0;

	if (v == RETRY_YES)
		*ret_step = STEP_BACKOFF;
	else if (status == 401 && !call->use_jwt && rq->gh->cfg->github.use_app && !rq->reauthed)
		*ret_step = STEP_REAUTH; /* the installation token was revoked or expired early */
	else if (!accepted(call, status))
		r = status_error(call, status, &rq->resp.body, rq->attempt + 1,
		                 v == RETRY_NO_TIME ? no_time : "", e);
	else
		*ret_step = STEP_DONE;
	return r;
}

/* One attempt: checked, sent, counted against the rate limit, and judged. */
static int attempt(struct request *rq, enum step *ret_step, struct err *e)
{
	int r, sent;

	rq->now = time(NULL);
	r = attempt_ready(rq, e);
	if (r < 0)
		goto out;
	sent = send_attempt(rq);
	r = github_rate_account(rq->gh, rq->call, sent, &rq->resp, rq->now, e);
	if (r < 0)
		goto out;
	if (sent < 0)
		r = judge_failure(rq, sent, ret_step, e);
	else if (from_cache(rq))
		*ret_step = STEP_DONE;
	else
		r = judge_status(rq, ret_step, e);
out:
	return r;
}

/* The same attempt again with a fresh installation token: it does not count as a retry. */
static void reauth(struct request *rq)
{
	github_auth_invalidate(rq->gh);
	rq->reauthed = true;
	github_secret_free(&rq->auth);
	httpc_response_release(&rq->resp);
}

static int backoff(struct request *rq, struct err *e)
{
	int r = 0;

	httpc_response_release(&rq->resp);
	pthread_mutex_lock(&rq->gh->mu);
	rq->gh->stats.retries++;
	pthread_mutex_unlock(&rq->gh->mu);
	rq->attempt++;
	if (!sleep_unless_cancelled(rq->gh, rq->delay))
		r = cancelled_error(rq->call, "while waiting to retry", rq->attempt, e);
	return r;
}

/* A 304: the cached page, as if it had come again (status 200). */
static int answer_from_cache(struct request *rq, struct github_reply *ret, struct err *e)
{
	int r;

	buf_reset(&ret->body);
	r = buf_append(&ret->body, rq->cached.body, rq->cached.len);
	if (r < 0) {
		r = err_set(e, r, "%s: cached answer over the size limit", rq->call->op);
		goto out;
	}
	r = next_link(rq->gh, rq->call, rq->cached.link, ret->link_next, sizeof(ret->link_next), e);
	if (r < 0)
		goto out;
	ret->status = 200;
	ret->from_cache = true;
out:
	return r;
}

/* The answer that came: handed over, and kept in the ETag cache when conditional. */
static int answer_from_wire(struct request *rq, struct github_reply *ret, struct err *e)
{
	const char *link = httpc_response_header(&rq->resp, "Link");
	int r;

	r = next_link(rq->gh, rq->call, link, ret->link_next, sizeof(ret->link_next), e);
	if (r < 0)
		goto out;
	if (rq->call->conditional && rq->resp.status == 200)
		github_etag_store(rq->gh, rq->call->url, httpc_response_header(&rq->resp, "ETag"),
		                  &rq->resp.body, link);
	buf_release(&ret->body);
	ret->body = rq->resp.body;
	buf_init(&rq->resp.body, rq->gh->opts.max_response);
	ret->status = rq->resp.status;
	ret->from_cache = false;
out:
	return r;
}

int github_do(struct github *gh, const struct github_call *call, struct github_reply *ret,
              struct err *e)
{
	enum step step = STEP_DONE;
	struct request rq;
	int r;

	request_init(&rq, gh, call);
	do {
		r = attempt(&rq, &step, e);
		if (r == 0 && step == STEP_REAUTH)
			reauth(&rq);
		else if (r == 0 && step == STEP_BACKOFF)
			r = backoff(&rq, e);
	} while (r == 0 && step != STEP_DONE);
	if (r == 0)
		r = from_cache(&rq) ? answer_from_cache(&rq, ret, e)
		                    : answer_from_wire(&rq, ret, e);
	request_release(&rq);
	return r;
}
