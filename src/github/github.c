/*
 * The GitHub client's request core and its operations: every call goes
 * through github_do(), which adds credentials and GitHub's headers, keeps the
 * per-URL ETag cache, follows the rate limit of each resource (failing fast
 * while barred, never sleeping for it), retries only what is safe to repeat
 * with bounded backoff inside the call's deadline, stops when the client is
 * cancelled, and turns statuses into errors that name the operation. It must
 * never put a token, a JWT or a JIT config into a message, and never follow
 * a Link to another host with our credentials.
 */
#include "util/common.h"
#include "github/github_internal.h"
#include "util/strutil.h"

#include <sys/random.h>

#define ETAG_MAX_BODY (4u << 20) /* larger pages are not worth keeping */

void github_opts_default(struct github_opts *o)
{
	o->max_retries = 3;
	o->backoff_base_ms = 500;
	o->backoff_max_ms = 4000;
	o->max_response = 32u << 20;
}

/* Owner, repository and organization names as GitHub allows them (no URL syntax). */
static bool path_part_ok(const char *s, size_t n)
{
	if (n == 0 || n > 100)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return false;
	return !(n <= 2 && s[0] == '.' && (n == 1 || s[1] == '.'));
}

/* "owner/repo" */
static bool repo_ok(const char *s)
{
	const char *slash = s ? strchr(s, '/') : NULL;
	return slash && path_part_ok(s, (size_t)(slash - s)) &&
	       path_part_ok(slash + 1, strlen(slash + 1));
}

int github_new(const struct config *cfg, const struct github_opts *opts, struct github **ret,
               struct err *e)
{
	const struct config_github *g = &cfg->github;
	struct github *gh;
	uint64_t seed = 0;
	size_t n;
	int r;

	if (!g->api_url || !g->api_url[0] || !g->path)
		return err_set(e, -EINVAL, "github: api_url and path are required");
	if (g->is_org ? !path_part_ok(g->path, strlen(g->path)) : !repo_ok(g->path))
		return err_set(e, -EINVAL, "github: path '%s' is not %s", g->path,
		               g->is_org ? "an organization name" : "owner/repo");
	if (!str_has_prefix(g->api_url, "https://") && !str_has_prefix(g->api_url, "http://"))
		return err_set(e, -EINVAL, "github: api_url must be an http(s) URL");
	gh = calloc(1, sizeof(*gh));
	if (!gh)
		return err_set(e, -ENOMEM, "out of memory");
	gh->cfg = cfg;
	if (opts)
		gh->opts = *opts;
	else
		github_opts_default(&gh->opts);
	if (gh->opts.max_response == 0)
		gh->opts.max_response = 32u << 20;
	if (gh->opts.max_retries < 0)
		gh->opts.max_retries = 0;
	pthread_mutex_init(&gh->mu, NULL);
	pthread_mutex_init(&gh->refresh_mu, NULL);
	atomic_init(&gh->cancelled, false);
	str_copy(gh->rates[0].resource, "core", sizeof(gh->rates[0].resource));
	gh->rates[0].limit = -1;
	gh->rates[0].remaining = -1;
	gh->n_rates = 1;
	n = str_copy(gh->base, g->api_url, sizeof(gh->base));
	if (n >= sizeof(gh->base)) {
		r = err_set(e, -ENAMETOOLONG, "github: api_url is too long");
		goto fail;
	}
	while (n > 0 && gh->base[n - 1] == '/')
		gh->base[--n] = '\0';
	snprintf(gh->scope, sizeof(gh->scope), "%s/%s", g->is_org ? "orgs" : "repos", g->path);
	if (g->use_app) {
		if (g->app.app_id <= 0 || g->app.installation_id <= 0) {
			r = err_set(e, -EINVAL,
			            "GitHub App: app_id and installation_id are required");
			goto fail;
		}
		r = github_auth_load_key(g->app.private_key.value, &gh->app_key, e);
		if (r < 0)
			goto fail;
	}
	r = httpc_new(&gh->http, e);
	if (r < 0)
		goto fail;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)gh;
	gh->rng = seed | 1;
	*ret = gh;
	return 0;
fail:
	github_free(gh);
	return r;
}

static void etag_clear(struct github_etag *t)
{
	free(t->url);
	free(t->etag);
	free(t->body);
	free(t->link);
	memset(t, 0, sizeof(*t));
}

static void memo_clear(struct github_page_memo *m)
{
	free(m->url);
	free(m->manager);
	free(m->body);
	github_runner_list_release(&m->runners);
	memset(m, 0, sizeof(*m));
}

static int runner_copy(const struct github_runner *src, struct github_runner *dst)
{
	*dst = *src;
	dst->labels = NULL;
	dst->n_labels = 0;
	if (src->n_labels) {
		dst->labels = calloc(src->n_labels, sizeof(*dst->labels));
		if (!dst->labels)
			return -ENOMEM;
		for (size_t i = 0; i < src->n_labels; i++) {
			dst->labels[i] = strdup(src->labels[i]);
			if (!dst->labels[i]) {
				dst->n_labels = i;
				github_runner_release(dst);
				return -ENOMEM;
			}
		}
		dst->n_labels = src->n_labels;
	}
	return 0;
}

/* Append copies of src's runners to acc; on failure acc is as it was. */
static int runner_list_append(struct github_runner_list *acc, const struct github_runner_list *src)
{
	size_t n0 = acc->n;
	struct github_runner *nv;

	if (!src->n)
		return 0;
	nv = realloc(acc->v, (acc->n + src->n) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	acc->v = nv;
	for (size_t i = 0; i < src->n; i++) {
		if (runner_copy(&src->v[i], &acc->v[acc->n]) < 0) {
			for (size_t j = n0; j < acc->n; j++)
				github_runner_release(&acc->v[j]);
			acc->n = n0;
			return -ENOMEM;
		}
		acc->n++;
	}
	return 0;
}

/* A page seen before with exactly these bytes: append its runners. 1 = hit. */
static int memo_lookup(struct github *gh, const char *url, const char *manager,
                       const struct buf *body, struct github_runner_list *acc, int64_t *ret_total,
                       size_t *ret_seen)
{
	int hit = 0;

	pthread_mutex_lock(&gh->mu);
	for (size_t i = 0; i < gh->n_memos; i++) {
		struct github_page_memo *m = &gh->memos[i];
		if (strcmp(m->url, url) != 0 || strcmp(m->manager, manager) != 0 ||
		    m->len != body->len || memcmp(m->body, buf_str(body), body->len) != 0)
			continue;
		if (runner_list_append(acc, &m->runners) == 0) {
			m->used = ++gh->etag_clock;
			*ret_total = m->total;
			*ret_seen = m->seen;
			hit = 1;
		}
		break;
	}
	pthread_mutex_unlock(&gh->mu);
	return hit;
}

/* Remember a parsed page (best effort: a failure only costs a parse next time). */
static void memo_store(struct github *gh, const char *url, const char *manager,
                       const struct buf *body, const struct github_runner_list *page, int64_t total,
                       size_t seen)
{
	struct github_page_memo m = {0}, *slot = NULL;

	m.url = strdup(url);
	m.manager = strdup(manager);
	m.body = malloc(body->len + 1);
	if (!m.url || !m.manager || !m.body || runner_list_append(&m.runners, page) < 0) {
		memo_clear(&m);
		return;
	}
	memcpy(m.body, buf_str(body), body->len);
	m.len = body->len;
	m.total = total;
	m.seen = seen;
	pthread_mutex_lock(&gh->mu);
	m.used = ++gh->etag_clock;
	for (size_t i = 0; i < gh->n_memos && !slot; i++)
		if (strcmp(gh->memos[i].url, url) == 0 &&
		    strcmp(gh->memos[i].manager, manager) == 0)
			slot = &gh->memos[i];
	if (!slot && gh->n_memos < GITHUB_ETAG_ENTRIES) {
		struct github_page_memo *nv = realloc(gh->memos, (gh->n_memos + 1) * sizeof(*nv));
		if (nv) {
			gh->memos = nv;
			slot = &gh->memos[gh->n_memos++];
			memset(slot, 0, sizeof(*slot));
		}
	}
	if (!slot && gh->n_memos) { /* full: the least recently used goes */
		slot = &gh->memos[0];
		for (size_t i = 1; i < gh->n_memos; i++)
			if (gh->memos[i].used < slot->used)
				slot = &gh->memos[i];
	}
	if (slot) {
		memo_clear(slot);
		*slot = m;
	}
	pthread_mutex_unlock(&gh->mu);
	if (!slot)
		memo_clear(&m);
}

void github_free(struct github *gh)
{
	if (!gh)
		return;
	httpc_free(gh->http);
	EVP_PKEY_free(gh->app_key);
	if (gh->inst_token) {
		explicit_bzero(gh->inst_token, strlen(gh->inst_token));
		free(gh->inst_token);
	}
	for (size_t i = 0; i < GITHUB_ETAG_ENTRIES; i++)
		etag_clear(&gh->etags[i]);
	for (size_t i = 0; i < gh->n_memos; i++)
		memo_clear(&gh->memos[i]);
	free(gh->memos);
	pthread_mutex_destroy(&gh->mu);
	pthread_mutex_destroy(&gh->refresh_mu);
	free(gh);
}

void github_get_stats(struct github *gh, struct github_stats *ret)
{
	time_t now = time(NULL);

	pthread_mutex_lock(&gh->mu);
	*ret = gh->stats;
	ret->n_resources = gh->n_rates;
	for (size_t i = 0; i < gh->n_rates; i++) {
		ret->resources[i] = gh->rates[i];
		if (ret->resources[i].barred_until <= now)
			ret->resources[i].barred_until = 0;
	}
	pthread_mutex_unlock(&gh->mu);
	ret->rate_limit = ret->resources[0].limit;
	ret->rate_remaining = ret->resources[0].remaining;
	ret->rate_reset = ret->resources[0].reset;
	ret->barred_until = ret->resources[0].barred_until;
}

void github_cancel(struct github *gh)
{
	atomic_store(&gh->cancelled, true);
}

void github_uncancel(struct github *gh)
{
	atomic_store(&gh->cancelled, false);
}

bool github_is_cancelled(const struct github *gh)
{
	return atomic_load(&gh->cancelled);
}

long github_request_timeout_ms(const struct github *gh)
{
	int64_t t = gh->cfg->github.request_timeout;
	return (t > 0 && t < LONG_MAX / 1000 ? (long)t : 30) * 1000L;
}

const char *github_scope(const struct github *gh)
{
	return gh->scope;
}

int github_url(const struct github *gh, char *out, size_t cap, const char *fmt, ...)
{
	char path[GITHUB_URL_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	n = snprintf(out, cap, "%s/%s", gh->base, path);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return 0;
}

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

bool github_resource_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n >= sizeof(((struct github_rate *)0)->resource))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

bool github_rate_update(struct github_rate *s, long status, const char *limit,
                        const char *remaining, const char *reset, const char *retry_after,
                        bool says_rate_limit, time_t now)
{
	int64_t v, rem = -1, ra = -1;
	time_t until = 0;
	bool refused = false;

	if (limit && parse_int64(limit, 0, INT64_MAX, &v) == 0)
		s->limit = v;
	if (remaining && parse_int64(remaining, 0, INT64_MAX, &v) == 0)
		s->remaining = rem = v;
	if (reset && parse_int64(reset, 0, INT64_MAX, &v) == 0)
		s->reset = (time_t)v;
	/* GitHub sends seconds; an HTTP date is ignored (then the reset time decides). */
	if (retry_after && parse_int64(retry_after, 0, 86400, &v) == 0)
		ra = v;
	if (status == 403 || status == 429) {
		if (ra >= 0) {
			refused = true;
			until = now + (ra > 0 ? ra : 1);
		} else if (rem == 0) {
			refused = true;
			until = reset && s->reset > now ? s->reset : now + 60;
		} else if (status == 429 || says_rate_limit) {
			/* A secondary limit without headers: GitHub says wait at least a minute. */
			refused = true;
			until = now + 60;
		}
	} else if (rem == 0 && reset && s->reset > now) {
		/* The budget is spent: the next call would only be refused. */
		until = s->reset;
	}
	if (until > now + GITHUB_MAX_BAR)
		until = now + GITHUB_MAX_BAR;
	if (until > s->barred_until)
		s->barred_until = until;
	return refused;
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

/* A copy of the cached page for url; false when there is none. */
static bool etag_lookup(struct github *gh, const char *url, struct github_etag *ret)
{
	bool found = false;

	pthread_mutex_lock(&gh->mu);
	for (size_t i = 0; i < GITHUB_ETAG_ENTRIES; i++) {
		struct github_etag *t = &gh->etags[i];
		if (!t->url || strcmp(t->url, url) != 0)
			continue;
		ret->url = NULL;
		ret->etag = strdup(t->etag);
		ret->body = malloc(t->len + 1);
		ret->link = strdup(t->link);
		ret->len = t->len;
		if (ret->etag && ret->body && ret->link) {
			memcpy(ret->body, t->body, t->len + 1);
			t->used = ++gh->etag_clock;
			found = true;
		} else {
			etag_clear(ret);
		}
		break;
	}
	pthread_mutex_unlock(&gh->mu);
	return found;
}

static void etag_store(struct github *gh, const char *url, const char *etag, const struct buf *body,
                       const char *link)
{
	struct github_etag n = {0};
	size_t slot = 0;

	if (!etag || !etag[0] || body->len > ETAG_MAX_BODY)
		return;
	n.url = strdup(url);
	n.etag = strdup(etag);
	n.body = malloc(body->len + 1);
	n.link = strdup(link ? link : "");
	if (!n.url || !n.etag || !n.body || !n.link) {
		etag_clear(&n); /* a cache miss later, nothing worse */
		return;
	}
	memcpy(n.body, buf_str(body), body->len);
	n.body[body->len] = '\0';
	n.len = body->len;
	pthread_mutex_lock(&gh->mu);
	for (size_t i = 0; i < GITHUB_ETAG_ENTRIES; i++) {
		struct github_etag *t = &gh->etags[i];
		if (t->url && strcmp(t->url, url) == 0) {
			slot = i;
			break;
		}
		if (!t->url) {
			if (gh->etags[slot].url)
				slot = i;
		} else if (gh->etags[slot].url && t->used < gh->etags[slot].used) {
			slot = i;
		}
	}
	etag_clear(&gh->etags[slot]);
	n.used = ++gh->etag_clock;
	gh->etags[slot] = n;
	pthread_mutex_unlock(&gh->mu);
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
		have_cached = etag_lookup(gh, call->url, &cached);
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
			etag_store(gh, call->url, httpc_response_header(&resp, "ETag"), &resp.body,
			           httpc_response_header(&resp, "Link"));
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
	etag_clear(&cached);
	httpc_response_release(&resp);
	return r;
}

static const char *scope_op(const struct github *gh, const char *what, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s: %s", gh->scope, what);
	return buf;
}

int github_check_scope(struct github *gh, struct err *e)
{
	struct github_reply reply = {.body = BUF_INIT(gh->opts.max_response)};
	char url[GITHUB_URL_MAX], op[400];
	json_t *j = NULL;
	int r;

	scope_op(gh, "read", op, sizeof(op));
	r = github_url(gh, url, sizeof(url), "%s", gh->scope);
	if (r < 0)
		return err_set(e, r, "%s: URL too long", op);
	r = github_do(gh,
	              &(struct github_call){.route = "scope",
	                                    .op = op,
	                                    .method = "GET",
	                                    .url = url,
	                                    .retry = GITHUB_RETRY_ALL},
	              &reply, e);
	if (r == 0) {
		r = github_json_load(op, &reply.body, &j, e);
		if (r == 0 && !json_is_object(j))
			r = err_set(e, -EPROTO, "%s: unexpected answer from GitHub: not an object",
			            op);
		json_decref(j);
	}
	github_reply_release(&reply);
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
	struct github_reply reply = {.body = BUF_INIT(gh->opts.max_response)};
	char url[GITHUB_URL_MAX], op[400];
	int64_t total = -1, t;
	size_t seen = 0, s;
	int r, page;

	scope_op(gh, "list runners", op, sizeof(op));
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
		if (r == 0 &&
		    !memo_lookup(gh, url, manager ? manager : "", &reply.body, acc, &t, &s)) {
			struct github_runner_list parsed = {0};
			r = github_json_runners_page(op, &reply.body, manager, &parsed, &t, &s, e);
			if (r == 0) {
				memo_store(gh, url, manager ? manager : "", &reply.body, &parsed, t,
				           s);
				r = runner_list_append(acc, &parsed);
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

static int token_call(struct github *gh, const char *what, struct github_token *ret, struct err *e)
{
	struct github_reply reply = {.body = BUF_INIT(gh->opts.max_response)};
	char url[GITHUB_URL_MAX], op[400];
	int r;

	scope_op(gh, what, op, sizeof(op));
	r = github_url(gh, url, sizeof(url), "%s/actions/runners/%s", gh->scope, what);
	if (r < 0)
		return err_set(e, r, "%s: URL too long", op);
	/* Asking twice only mints a second short-lived token: safe to retry. */
	r = github_do(gh,
	              &(struct github_call){.route = what,
	                                    .op = op,
	                                    .method = "POST",
	                                    .url = url,
	                                    .retry = GITHUB_RETRY_ALL},
	              &reply, e);
	if (r == 0)
		r = github_json_token(op, &reply.body, ret, e);
	buf_wipe(&reply.body);
	github_reply_release(&reply);
	return r;
}

int github_registration_token(struct github *gh, struct github_token *ret, struct err *e)
{
	return token_call(gh, "registration-token", ret, e);
}

int github_remove_token(struct github *gh, struct github_token *ret, struct err *e)
{
	return token_call(gh, "remove-token", ret, e);
}

static int jit_body(const char *name, int64_t group, const struct strv *labels,
                    const char *work_folder, char **ret)
{
	json_t *arr = json_array(), *o = NULL;
	int r = -ENOMEM;

	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; labels && i < labels->n; i++)
		if (json_array_append_new(arr, json_string(labels->v[i])) < 0)
			goto out;
	o = json_pack("{s:s, s:I, s:O, s:s}", "name", name, "runner_group_id", (json_int_t)group,
	              "labels", arr, "work_folder", work_folder ? work_folder : "_work");
	if (!o)
		goto out;
	*ret = json_dumps(o, JSON_COMPACT);
	r = *ret ? 0 : -ENOMEM;
out:
	json_decref(o);
	json_decref(arr);
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

/*
 * The 409 case: find the registration that holds name and clear it if it is
 * idle. Found nothing (it went away meanwhile): 0, and the caller simply
 * tries again.
 */
static int jit_resolve_conflict(struct github *gh, const char *op, const char *name, struct err *e)
{
	struct github_runner gr = {0};
	int r = github_find_runner(gh, name, &gr, e);

	if (r == -ENOENT) {
		err_clear(e);
		return 0;
	}
	if (r < 0) {
		err_prefix(e, "%s: resolving a 409", op);
		return r;
	}
	if (gr.busy)
		r = err_set(e, -EBUSY, "%s: runner %s is already registered and busy", op, name);
	else if ((r = github_delete_runner(gh, gr.id, e)) < 0)
		err_prefix(e, "%s: clearing the stale registration", op);
	github_runner_release(&gr);
	return r;
}

int github_generate_jitconfig(struct github *gh, const char *name, int64_t runner_group_id,
                              const struct strv *labels, const char *work_folder,
                              struct github_jit *ret, struct err *e)
{
	static const int accept[] = {409, 0};
	struct github_reply reply = {.body = BUF_INIT(gh->opts.max_response)};
	char url[GITHUB_URL_MAX], op[400];
	char *body = NULL;
	int r;

	snprintf(op, sizeof(op), "%s: generate JIT config for %s", gh->scope, name ? name : "?");
	if (!name || !name[0])
		return err_set(e, -EINVAL, "%s: no runner name", op);
	r = github_url(gh, url, sizeof(url), "%s/actions/runners/generate-jitconfig", gh->scope);
	if (r < 0)
		return err_set(e, r, "%s: URL too long", op);
	r = jit_body(name, runner_group_id > 0 ? runner_group_id : 1, labels, work_folder, &body);
	if (r < 0)
		return err_set(e, r, "%s: cannot build the request", op);
	for (int round = 0; round < 2; round++) {
		/* Not repeated after an answer: GitHub may have registered the runner already. */
		r = github_do(gh,
		              &(struct github_call){.route = "generate-jitconfig",
		                                    .op = op,
		                                    .method = "POST",
		                                    .url = url,
		                                    .body = body,
		                                    .retry = GITHUB_RETRY_UNSENT,
		                                    .accept = accept},
		              &reply, e);
		if (r < 0)
			break;
		if (reply.status != 409) {
			r = github_json_jit(op, &reply.body, ret, e);
			break;
		}
		if (round == 1) {
			r = err_set(e, -EEXIST, "%s: the name is still taken after clearing it",
			            op);
			break;
		}
		r = jit_resolve_conflict(gh, op, name, e);
		if (r < 0)
			break;
	}
	free(body);
	buf_wipe(&reply.body);
	github_reply_release(&reply);
	return r;
}

int github_list_runner_applications(struct github *gh, struct github_app_list *ret, struct err *e)
{
	struct github_reply reply = {.body = BUF_INIT(gh->opts.max_response)};
	char url[GITHUB_URL_MAX], op[400];
	int r;

	scope_op(gh, "list runner applications", op, sizeof(op));
	r = github_url(gh, url, sizeof(url), "%s/actions/runners/downloads", gh->scope);
	if (r < 0)
		return err_set(e, r, "%s: URL too long", op);
	r = github_do(gh,
	              &(struct github_call){.route = "downloads",
	                                    .op = op,
	                                    .method = "GET",
	                                    .url = url,
	                                    .retry = GITHUB_RETRY_ALL},
	              &reply, e);
	if (r == 0)
		r = github_json_apps(op, &reply.body, ret, e);
	github_reply_release(&reply);
	return r;
}

int github_runner_group_id(struct github *gh, const char *name, int64_t *ret, struct err *e)
{
	struct github_reply reply = {.body = BUF_INIT(gh->opts.max_response)};
	char url[GITHUB_URL_MAX], op[400];
	int64_t id = 0;
	int r;

	if (!gh->cfg->github.is_org) {
		*ret = 1;
		return 0;
	}
	scope_op(gh, "list runner groups", op, sizeof(op));
	r = github_url(gh, url, sizeof(url), "%s/actions/runner-groups?per_page=100", gh->scope);
	if (r < 0)
		return err_set(e, r, "%s: URL too long", op);
	for (int page = 1;; page++) {
		if (page > GITHUB_MAX_PAGES) {
			r = err_set(e, -EPROTO, "%s: more than %d pages", op, GITHUB_MAX_PAGES);
			break;
		}
		r = github_do(gh,
		              &(struct github_call){.route = "runner groups",
		                                    .op = op,
		                                    .method = "GET",
		                                    .url = url,
		                                    .retry = GITHUB_RETRY_ALL},
		              &reply, e);
		if (r == 0)
			r = github_json_group_page(op, &reply.body, name, &id, e);
		if (r < 0 || id > 0 || !reply.link_next[0])
			break;
		str_copy(url, reply.link_next, sizeof(url));
	}
	if (r == 0 && id <= 0)
		r = err_set(e, -ENOENT, "%s: no runner group named '%s'", op, name);
	if (r == 0)
		*ret = id;
	github_reply_release(&reply);
	return r;
}

int github_get_job(struct github *gh, const char *repo, int64_t job_id, struct github_job *ret,
                   struct err *e)
{
	static const int accept[] = {404, 0};
	struct github_reply reply = {.body = BUF_INIT(gh->opts.max_response)};
	char url[GITHUB_URL_MAX], op[400];
	int r;

	snprintf(op, sizeof(op), "get job %" PRId64 " of %s", job_id, repo_ok(repo) ? repo : "?");
	if (!repo_ok(repo))
		return err_set(e, -EINVAL, "%s: not an owner/repo", op);
	r = github_url(gh, url, sizeof(url), "repos/%s/actions/jobs/%" PRId64, repo, job_id);
	if (r < 0)
		return err_set(e, r, "%s: URL too long", op);
	r = github_do(gh,
	              &(struct github_call){.route = "get job",
	                                    .op = op,
	                                    .method = "GET",
	                                    .url = url,
	                                    .retry = GITHUB_RETRY_ALL,
	                                    .accept = accept},
	              &reply, e);
	if (r == 0 && reply.status == 404)
		r = err_set(e, -ENOENT, "%s: no such job", op);
	else if (r == 0)
		r = github_json_job(op, &reply.body, ret, e);
	github_reply_release(&reply);
	return r;
}

int github_list_run_jobs(struct github *gh, const char *repo, int64_t run_id,
                         struct github_job_list *ret, struct err *e)
{
	struct github_reply reply = {.body = BUF_INIT(gh->opts.max_response)};
	struct github_job_list acc = {0};
	char url[GITHUB_URL_MAX], op[400];
	int r;

	snprintf(op, sizeof(op), "list jobs of run %" PRId64 " of %s", run_id,
	         repo_ok(repo) ? repo : "?");
	if (!repo_ok(repo))
		return err_set(e, -EINVAL, "%s: not an owner/repo", op);
	r = github_url(gh, url, sizeof(url), "repos/%s/actions/runs/%" PRId64 "/jobs?per_page=100",
	               repo, run_id);
	if (r < 0)
		return err_set(e, r, "%s: URL too long", op);
	for (int page = 1;; page++) {
		if (page > 1)
			snprintf(op, sizeof(op), "list jobs of run %" PRId64 " of %s (page %d)",
			         run_id, repo, page);
		if (page > GITHUB_MAX_PAGES) {
			r = err_set(e, -EPROTO, "%s: more than %d pages", op, GITHUB_MAX_PAGES);
			break;
		}
		r = github_do(gh,
		              &(struct github_call){.route = "run jobs",
		                                    .op = op,
		                                    .method = "GET",
		                                    .url = url,
		                                    .retry = GITHUB_RETRY_ALL},
		              &reply, e);
		if (r == 0)
			r = github_json_jobs_page(op, &reply.body, &acc, e);
		if (r < 0)
			break;
		if (!reply.link_next[0])
			break;
		str_copy(url, reply.link_next, sizeof(url));
	}
	github_reply_release(&reply);
	if (r < 0) {
		github_job_list_release(&acc);
		return r;
	}
	github_job_list_release(ret);
	*ret = acc;
	return 0;
}
