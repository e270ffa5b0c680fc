/*
 * GitHub's rate limits as its answers describe them: one budget per
 * X-RateLimit-Resource, and the bar a refusal or a spent budget puts on it.
 * The client never sleeps for a rate limit: a barred resource makes calls
 * fail fast. A reset further away than GITHUB_MAX_BAR is never believed.
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
