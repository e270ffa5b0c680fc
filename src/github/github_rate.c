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

/* The request counters for one attempt (gh->mu held): a 304 or a lost request costs nothing. */
static void count_attempt(struct github *gh, int sent, const struct httpc_response *resp)
{
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
	count_attempt(gh, sent, resp);
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
