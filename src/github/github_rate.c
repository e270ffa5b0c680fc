/*
 * What each call costs: the client's request counters, and GitHub's rate
 * limits as its answers describe them, one budget per X-RateLimit-Resource
 * with the bar a refusal or a spent budget puts on it. Each route follows
 * the resource GitHub last counted it against ("core" until GitHub says).
 * The client never sleeps for a rate limit: a barred resource makes calls
 * fail fast with -EAGAIN. It must never believe a reset further away than
 * GITHUB_MAX_BAR, nor take a resource name it would not print as is.
 */
#include "util/common.h"
#include "github/github_internal.h"
#include "util/strutil.h"

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

/* A resource whose figures GitHub has not given yet (gh->mu held, room checked). */
static size_t rate_add(struct github *gh, const char *name)
{
	struct github_rate *t = &gh->rates[gh->n_rates];

	memset(t, 0, sizeof(*t));
	str_copy(t->resource, name, sizeof(t->resource));
	t->limit = -1;
	t->remaining = -1;
	return gh->n_rates++;
}

/* The index in gh->rates of a resource GitHub named (gh->mu held); 0 ("core") when unusable. */
static size_t resource_index(struct github *gh, const char *name)
{
	size_t i = 0;

	if (github_resource_name_ok(name)) {
		while (i < gh->n_rates && strcmp(gh->rates[i].resource, name) != 0)
			i++;
		/* More resources than GitHub has today: the rest count as core. */
		if (i == gh->n_rates)
			i = gh->n_rates < GITHUB_MAX_RESOURCES ? rate_add(gh, name) : 0;
	}
	return i;
}

/* What GitHub last said of route (gh->mu held); NULL when nothing yet. */
static struct github_route *route_find(struct github *gh, const char *route)
{
	struct github_route *found = NULL;

	for (size_t i = 0; route && !found && i < gh->n_routes; i++)
		if (strcmp(gh->routes[i].route, route) == 0)
			found = &gh->routes[i];
	return found;
}

/* The resource route was last counted against (gh->mu held); 0 when unknown. */
static size_t route_resource(struct github *gh, const char *route)
{
	const struct github_route *rt = route_find(gh, route);

	return rt ? rt->resource : 0;
}

/* GitHub counted route against resource (gh->mu held). */
static void route_learn(struct github *gh, const char *route, size_t resource)
{
	struct github_route *rt = route_find(gh, route);

	if (rt)
		rt->resource = resource;
	else if (route && gh->n_routes < GITHUB_MAX_ROUTES)
		gh->routes[gh->n_routes++] = (struct github_route){route, resource};
}

void github_rate_init(struct github *gh)
{
	gh->n_rates = 0;
	rate_add(gh, "core");
}

int github_rate_check(struct github *gh, const struct github_call *call, time_t now, struct err *e)
{
	char resource[sizeof(gh->rates[0].resource)];
	time_t barred;
	size_t res;
	int r = 0;

	pthread_mutex_lock(&gh->mu);
	res = route_resource(gh, call->route);
	barred = gh->rates[res].barred_until;
	str_copy(resource, gh->rates[res].resource, sizeof(resource));
	pthread_mutex_unlock(&gh->mu);
	if (barred > now)
		r = err_set(e, -EAGAIN,
		            "%s: not calling GitHub for another %llds: the rate limit of '%s' is "
		            "exhausted",
		            call->op, (long long)(barred - now), resource);
	return r;
}

/* A 403 or 429 whose message speaks of a rate limit: a secondary limit without headers. */
static bool says_rate_limit(int sent, const struct httpc_response *resp)
{
	char msg[160];
	bool says = false;

	if (sent == 0 && (resp->status == 403 || resp->status == 429)) {
		github_json_error_message(&resp->body, msg, sizeof(msg));
		says = strcasestr(msg, "rate limit") != NULL;
	}
	return says;
}

/*
 * Each route (github_call.route) as GitHub's API description templates its
 * path: what the request counters are labelled with, so a label never holds
 * an owner, a name or an id. Scope-relative routes have both forms.
 */
static const struct {
	const char *route;
	const char *repo; /* in repository scope */
	const char *org;  /* in organization scope */
} route_paths[] = {
        {"scope", "/repos/{owner}/{repo}", "/orgs/{org}"},
        {"list runners", "/repos/{owner}/{repo}/actions/runners", "/orgs/{org}/actions/runners"},
        {"get runner", "/repos/{owner}/{repo}/actions/runners/{runner_id}",
         "/orgs/{org}/actions/runners/{runner_id}"},
        {"delete runner", "/repos/{owner}/{repo}/actions/runners/{runner_id}",
         "/orgs/{org}/actions/runners/{runner_id}"},
        {"registration-token", "/repos/{owner}/{repo}/actions/runners/registration-token",
         "/orgs/{org}/actions/runners/registration-token"},
        {"remove-token", "/repos/{owner}/{repo}/actions/runners/remove-token",
         "/orgs/{org}/actions/runners/remove-token"},
        {"generate-jitconfig", "/repos/{owner}/{repo}/actions/runners/generate-jitconfig",
         "/orgs/{org}/actions/runners/generate-jitconfig"},
        {"downloads", "/repos/{owner}/{repo}/actions/runners/downloads",
         "/orgs/{org}/actions/runners/downloads"},
        {"runner groups", "/orgs/{org}/actions/runner-groups", "/orgs/{org}/actions/runner-groups"},
        /* the runner software's releases, whatever the scope */
        {"runner releases", "/repos/{owner}/{repo}/releases", "/repos/{owner}/{repo}/releases"},
        /* jobs live in a repository whatever the scope */
        {"get job", "/repos/{owner}/{repo}/actions/jobs/{job_id}",
         "/repos/{owner}/{repo}/actions/jobs/{job_id}"},
        {"run jobs", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
         "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs"},
        {"runs", "/repos/{owner}/{repo}/actions/runs", "/repos/{owner}/{repo}/actions/runs"},
        {"app access token", "/app/installations/{installation_id}/access_tokens",
         "/app/installations/{installation_id}/access_tokens"},
};

const char *github_route_path(const struct github *gh, const char *route)
{
	bool org = strncmp(gh->scope, "orgs/", 5) == 0;

	for (size_t i = 0; route && i < ARRAY_SIZE(route_paths); i++)
		if (strcmp(route_paths[i].route, route) == 0)
			return org ? route_paths[i].org : route_paths[i].repo;
	return "other";
}

/* The method as a static word (the counters keep the pointer). */
static const char *method_word(const char *m)
{
	static const char *const words[] = {"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD"};

	for (size_t i = 0; m && i < ARRAY_SIZE(words); i++)
		if (strcmp(words[i], m) == 0)
			return words[i];
	return "other";
}

void github_count_request(struct github *gh, const char *route_path, const char *method, int status,
                          uint64_t n)
{
	struct github_stats *st = &gh->stats;
	size_t i;

	for (i = 0; i < st->n_requests; i++) {
		struct github_request_count *c = &st->requests[i];
		if (c->status == status && c->route == route_path && c->method == method)
			break;
	}
	if (i == st->n_requests) {
		if (i == GITHUB_MAX_REQUEST_COUNTS) {
			st->requests_overflow += n;
			return;
		}
		st->requests[st->n_requests++] =
		        (struct github_request_count){route_path, method, status, 0};
	}
	st->requests[i].n += n;
}

/* The request counters for one attempt (gh->mu held): a 304 or a lost request costs nothing. */
static void count_attempt(struct github *gh, const struct github_call *call, int sent,
                          const struct httpc_response *resp)
{
	github_count_request(gh, github_route_path(gh, call->route), method_word(call->method),
	                     sent == 0 || sent == -E2BIG ? (int)resp->status : 0, 1);
	gh->stats.requests_sent++;
	if (sent == 0 || sent == -E2BIG)
		gh->stats.requests_counted += sent == 0 && resp->status == 304 ? 0 : 1;
	if (sent == 0 && resp->status == 304)
		gh->stats.not_modified++;
}

static int refused_error(const struct github_call *call, const struct httpc_response *resp,
                         const struct github_rate *rate, time_t now, struct err *e)
{
	const char *why = httpc_response_header(resp, "Retry-After") ? "Retry-After"
	                  : rate->remaining == 0                     ? "none left"
	                                                             : "secondary limit";

	return err_set(e, -EAGAIN,
	               "%s: GitHub's rate limit refused the call (%ld, %s, resource '%s'); no "
	               "calls for %llds",
	               call->op, resp->status, why, rate->resource,
	               (long long)(rate->barred_until > now ? rate->barred_until - now : 0));
}

int github_rate_account(struct github *gh, const struct github_call *call, int sent,
                        const struct httpc_response *resp, time_t now, struct err *e)
{
	const char *rname = sent == 0 ? httpc_response_header(resp, "X-RateLimit-Resource") : NULL;
	bool says = says_rate_limit(sent, resp), refused = false;
	struct github_rate rate;
	size_t res;

	pthread_mutex_lock(&gh->mu);
	count_attempt(gh, call, sent, resp);
	res = route_resource(gh, call->route);
	if (rname) {
		/* GitHub says which budget it counted: later calls of this route follow. */
		res = resource_index(gh, rname);
		route_learn(gh, call->route, res);
	}
	if (sent == 0)
		refused = github_rate_update(&gh->rates[res], resp->status,
		                             httpc_response_header(resp, "X-RateLimit-Limit"),
		                             httpc_response_header(resp, "X-RateLimit-Remaining"),
		                             httpc_response_header(resp, "X-RateLimit-Reset"),
		                             httpc_response_header(resp, "Retry-After"), says, now);
	rate = gh->rates[res];
	pthread_mutex_unlock(&gh->mu);
	return refused ? refused_error(call, resp, &rate, now, e) : 0;
}
