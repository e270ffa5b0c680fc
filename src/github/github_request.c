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
	int64_t end = clock_mono_ms() + ms;

	for (;;) {
		int64_t left = end - clock_mono_ms();
		long slice;
		struct timespec ts;

		if (atomic_load(&gh->cancelled))
			return false;
		if (left <= 0)
			return true;
		slice = left < HTTPC_CANCEL_POLL_MS ? (long)left : HTTPC_CANCEL_POLL_MS;
		ts = (struct timespec){slice / 1000, (slice % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}

/* The index in gh->rates of a resource GitHub named (gh->mu held); 0 ("core") when unusable. */
static size_t resource_index(struct github *gh, const char *name)
{
	if (!github_resource_name_ok(name))
		return 0;
	for (size_t i = 0; i < gh->n_rates; i++)
		if (strcmp(gh->rates[i].resource, name) == 0)
			return i;
	if (gh->n_rates >= GITHUB_MAX_RESOURCES)
		return 0; /* more resources than GitHub has today: count the rest as core */
	struct github_rate *t = &gh->rates[gh->n_rates];
	memset(t, 0, sizeof(*t));
	str_copy(t->resource, name, sizeof(t->resource));
	t->limit = -1;
	t->remaining = -1;
	return gh->n_rates++;
}

/* The resource route was last counted against (gh->mu held); 0 when unknown. */
static size_t route_resource(const struct github *gh, const char *route)
{
	for (size_t i = 0; route && i < gh->n_routes; i++)
		if (strcmp(gh->routes[i].route, route) == 0)
			return gh->routes[i].resource;
	return 0;
}

/* GitHub counted route against resource (gh->mu held). */
static void route_learn(struct github *gh, const char *route, size_t resource)
{
	if (!route)
		return;
	for (size_t i = 0; i < gh->n_routes; i++)
		if (strcmp(gh->routes[i].route, route) == 0) {
			gh->routes[i].resource = resource;
			return;
		}
	if (gh->n_routes < GITHUB_MAX_ROUTES)
		gh->routes[gh->n_routes++] = (struct github_route){route, resource};
}

static bool accepted(const struct github_call *call, long status)
{
	if (status >= 200 && status < 300)
		return true;
	for (const int *a = call->accept; a && *a; a++)
		if (*a == status)
			return true;
	return false;
}

/* The error for a status nobody expected; note (may be "") ends the message. */
static int status_error(const struct github_call *call, long status, const struct buf *body,
                        int attempts, const char *note, struct err *e)
{
	char msg[160], tail[200] = "";

	github_json_error_message(body, msg, sizeof(msg));
	if (status == 401)
		return call->use_jwt
		               ? err_set(e, -EACCES, "%s: GitHub rejected the App's JWT (401 %s)",
		                         call->op, msg[0] ? msg : "Unauthorized")
		               : err_set(e, -EACCES, "GitHub rejected the credentials (401 %s)",
		                         msg[0] ? msg : "Unauthorized");
	if (attempts > 1)
		snprintf(tail, sizeof(tail), " after %d attempts%s", attempts, note);
	else if (note[0])
		snprintf(tail, sizeof(tail), "%s", note);
	switch (status) {
	case 403:
		return err_set(e, -EACCES,
		               "%s: GitHub refused (403 %s): check the token's permissions",
		               call->op, msg[0] ? msg : "Forbidden");
	case 404:
	case 410:
		return err_set(e, -ENOENT, "%s: not found (%ld %s)", call->op, status,
		               msg[0] ? msg : "Not Found");
	case 409:
		return err_set(e, -EEXIST, "%s: conflict (409 %s)", call->op, msg);
	case 400:
	case 422:
		return err_set(e, -EINVAL, "%s: GitHub refused the request (%ld %s)", call->op,
		               status, msg);
	default:
		return err_set(e, status >= 500 ? -EIO : -EPROTO, "%s: GitHub answered %ld%s%s%s%s",
		               call->op, status, msg[0] ? " (" : "", msg, msg[0] ? ")" : "", tail);
	}
}

/* The Link header's next URL, which must stay under our base URL (it gets our token). */
static int next_link(struct github *gh, const struct github_call *call, const char *link, char *ret,
                     size_t cap, struct err *e)
{
	size_t bl = strlen(gh->base);
	int r = github_link_next(link, ret, cap);

	if (r < 0)
		return err_set(e, -EPROTO, "%s: GitHub sent a malformed Link header", call->op);
	if (ret[0] && (strncmp(ret, gh->base, bl) != 0 || ret[bl] != '/')) {
		ret[0] = '\0';
		return err_set(e, -EPROTO, "%s: GitHub's next page is not under %s", call->op,
		               gh->base);
	}
	return 0;
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
	if (attempts > 0)
		return err_set(e, -ECANCELED, "%s: cancelled %s (after %d attempt%s)", call->op,
		               when, attempts, attempts == 1 ? "" : "s");
	return err_set(e, -ECANCELED, "%s: cancelled %s", call->op, when);
}

int github_do(struct github *gh, const struct github_call *call, struct github_reply *ret,
              struct err *e)
{
	static const char *const want[] = {"ETag",
	                                   "Link",
	                                   "X-RateLimit-Limit",
	                                   "X-RateLimit-Remaining",
	                                   "X-RateLimit-Reset",
	                                   "X-RateLimit-Resource",
	                                   "Retry-After",
	                                   NULL};
	static const char no_time[] = "; no time left for another attempt within the call's "
	                              "deadline (2 x request_timeout)";
	const struct config_github *g = &gh->cfg->github;
	const long timeout_ms = github_request_timeout_ms(gh);
	const long connect_ms = (g->connect_timeout > 0 && g->connect_timeout < LONG_MAX / 1000
	                                 ? (long)g->connect_timeout
	                                 : 10) *
	                        1000L;
	const int64_t deadline =
	        call->deadline > 0 ? call->deadline : clock_mono_ms() + 2 * (int64_t)timeout_ms;
	struct httpc_response resp = {0};
	struct github_etag cached = {0};
	bool have_cached = false;
	char *auth = NULL, *inm = NULL;
	const char *hdrs[8];
	struct err he;
	bool reauthed = false;
	int r = 0, attempt;
	size_t nh = 0;

	if (call->conditional)
		have_cached = github_etag_lookup(gh, call->url, &cached);
	if (have_cached && asprintf(&inm, "If-None-Match: %s", cached.etag) < 0) {
		inm = NULL;
		have_cached = false;
	}
	for (attempt = 0;; attempt++) {
		time_t now = time(NULL), barred;
		int64_t remaining, left;
		bool limited, retry_ok, says = false;
		char msg[160], resource[sizeof(gh->rates[0].resource)];
		const char *rname;
		long status, delay = 0;
		size_t res;

		if (atomic_load(&gh->cancelled)) {
			r = cancelled_error(call, "before the request was sent", attempt, e);
			goto out;
		}
		pthread_mutex_lock(&gh->mu);
		res = route_resource(gh, call->route);
		barred = gh->rates[res].barred_until;
		str_copy(resource, gh->rates[res].resource, sizeof(resource));
		pthread_mutex_unlock(&gh->mu);
		if (barred > now) {
			r = err_set(e, -EAGAIN,
			            "%s: not calling GitHub for another %llds: the rate limit of "
			            "'%s' is exhausted",
			            call->op, (long long)(barred - now), resource);
			goto out;
		}
		if (!auth) {
			r = github_auth_header(gh, call->use_jwt, deadline, &auth, e);
			if (r < 0)
				goto out;
		}
		left = deadline - clock_mono_ms();
		if (left < GITHUB_MIN_ATTEMPT_MS) {
			r = err_set(e, -ETIMEDOUT,
			            "%s: no time left within the call's deadline (2 x "
			            "request_timeout = %lds)",
			            call->op, 2 * timeout_ms / 1000);
			goto out;
		}
		nh = 0;
		hdrs[nh++] = auth;
		hdrs[nh++] = "Accept: application/vnd.github+json";
		hdrs[nh++] = "X-GitHub-Api-Version: " GITHUB_API_VERSION;
		hdrs[nh++] = "User-Agent: runnerd/" RUNNERD_VERSION;
		if (call->body)
			hdrs[nh++] = "Content-Type: application/json";
		if (inm)
			hdrs[nh++] = inm;
		hdrs[nh] = NULL;
		err_clear(&he);
		r = httpc_perform(
		        gh->http,
		        &(struct httpc_request){
		                .method = call->method,
		                .url = call->url,
		                .headers = hdrs,
		                .body = call->body,
		                .body_len = call->body ? strlen(call->body) : 0,
		                .ca_file = g->ca_file,
		                .proxy = g->proxy,
		                .connect_timeout_ms = connect_ms < left ? connect_ms : left,
		                .timeout_ms = timeout_ms < left ? timeout_ms : left,
		                .max_body = gh->opts.max_response,
		                .want_headers = want,
		                .cancel = &gh->cancelled,
		        },
		        &resp, &he);
		if (r == -ECANCELED) {
			pthread_mutex_lock(&gh->mu);
			gh->stats.requests_sent++;
			pthread_mutex_unlock(&gh->mu);
			r = cancelled_error(call, "while waiting for GitHub's answer", attempt + 1,
			                    e);
			goto out;
		}
		if (r == 0 && (resp.status == 403 || resp.status == 429)) {
			github_json_error_message(&resp.body, msg, sizeof(msg));
			says = strcasestr(msg, "rate limit") != NULL;
		}
		rname = r == 0 ? httpc_response_header(&resp, "X-RateLimit-Resource") : NULL;
		pthread_mutex_lock(&gh->mu);
		gh->stats.requests_sent++;
		if (r == 0 || r == -E2BIG)
			gh->stats.requests_counted += r == 0 && resp.status == 304 ? 0 : 1;
		if (r == 0 && resp.status == 304)
			gh->stats.not_modified++;
		if (rname) {
			/* GitHub says which budget it counted: later calls of this route follow. */
			res = resource_index(gh, rname);
			route_learn(gh, call->route, res);
		}
		limited = r == 0 && github_rate_update(
		                            &gh->rates[res], resp.status,
		                            httpc_response_header(&resp, "X-RateLimit-Limit"),
		                            httpc_response_header(&resp, "X-RateLimit-Remaining"),
		                            httpc_response_header(&resp, "X-RateLimit-Reset"),
		                            httpc_response_header(&resp, "Retry-After"), says, now);
		barred = gh->rates[res].barred_until;
		remaining = gh->rates[res].remaining;
		str_copy(resource, gh->rates[res].resource, sizeof(resource));
		pthread_mutex_unlock(&gh->mu);

		if (r < 0) {
			retry_ok = (call->retry == GITHUB_RETRY_ALL &&
			            (r == -ECONNREFUSED || r == -ETIMEDOUT || r == -ECONNRESET ||
			             r == -EIO)) ||
			           (call->retry == GITHUB_RETRY_UNSENT && r == -ECONNREFUSED);
			retry_ok = retry_ok && attempt < gh->opts.max_retries;
			if (retry_ok) {
				delay = github_backoff_ms(&gh->opts, attempt, rng_next(gh));
				if (time_for_another(deadline, delay))
					goto backoff;
			}
			if (attempt > 0 || retry_ok)
				r = err_set(e, r, "%s: %s (after %d attempt%s%s)", call->op, he.msg,
				            attempt + 1, attempt ? "s" : "",
				            retry_ok ? no_time : "");
			else
				r = err_set(e, r, "%s: %s", call->op, he.msg);
			goto out;
		}
		status = resp.status;
		if (limited) {
			const char *why = httpc_response_header(&resp, "Retry-After")
			                          ? "Retry-After"
			                  : remaining == 0 ? "none left"
			                                   : "secondary limit";
			r = err_set(e, -EAGAIN,
			            "%s: GitHub's rate limit refused the call (%ld, %s, resource "
			            "'%s'); no calls for %llds",
			            call->op, status, why, resource,
			            (long long)(barred > now ? barred - now : 0));
			goto out;
		}
		if (status == 304 && have_cached) {
			buf_reset(&ret->body);
			r = buf_append(&ret->body, cached.body, cached.len);
			if (r < 0) {
				r = err_set(e, r, "%s: cached answer over the size limit",
				            call->op);
				goto out;
			}
			r = next_link(gh, call, cached.link, ret->link_next, sizeof(ret->link_next),
			              e);
			if (r < 0)
				goto out;
			ret->status = 200;
			ret->from_cache = true;
			goto out;
		}
		retry_ok = status >= 500 && call->retry == GITHUB_RETRY_ALL &&
		           attempt < gh->opts.max_retries;
		if (retry_ok) {
			delay = github_backoff_ms(&gh->opts, attempt, rng_next(gh));
			if (time_for_another(deadline, delay))
				goto backoff;
		}
		if (status == 401 && !call->use_jwt && g->use_app && !reauthed) {
			/* The installation token was revoked or expired early: one fresh try. */
			github_auth_invalidate(gh);
			reauthed = true;
			explicit_bzero(auth, strlen(auth));
			free(auth);
			auth = NULL;
			httpc_response_release(&resp);
			attempt--;
			continue;
		}
		if (!accepted(call, status)) {
			r = status_error(call, status, &resp.body, attempt + 1,
			                 retry_ok ? no_time : "", e);
			goto out;
		}
		r = next_link(gh, call, httpc_response_header(&resp, "Link"), ret->link_next,
		              sizeof(ret->link_next), e);
		if (r < 0)
			goto out;
		if (call->conditional && status == 200)
			github_etag_store(gh, call->url, httpc_response_header(&resp, "ETag"),
			                  &resp.body, httpc_response_header(&resp, "Link"));
		buf_release(&ret->body);
		ret->body = resp.body;
		buf_init(&resp.body, gh->opts.max_response);
		ret->status = status;
		ret->from_cache = false;
		goto out;
	backoff:
		httpc_response_release(&resp);
		pthread_mutex_lock(&gh->mu);
		gh->stats.retries++;
		pthread_mutex_unlock(&gh->mu);
		if (!sleep_unless_cancelled(gh, delay)) {
			r = cancelled_error(call, "while waiting to retry", attempt + 1, e);
			goto out;
		}
	}
out:
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	free(inm);
	github_etag_clear(&cached);
	httpc_response_release(&resp);
	return r;
}
