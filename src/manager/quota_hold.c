/*
 * The quota hold (quota_hold.h): when a cloud said its quota is used up,
 * how long no create goes to it, and when one probe may. Pure; it must
 * never hold a provider no quota error named.
 */
#include "util/common.h"
#include "manager/quota_hold.h"
#include "util/strutil.h"

static struct quota_hold *find(struct quota_holds *q, const char *provider)
{
	for (size_t i = 0; i < q->n; i++)
		if (strcmp(q->h[i].provider, provider) == 0)
			return &q->h[i];
	return NULL;
}

const struct quota_hold *quota_hold_find(const struct quota_holds *q, const char *provider)
{
	return find((struct quota_holds *)q, provider);
}

int64_t quota_hold_note(struct quota_holds *q, const char *provider, const char *error, int64_t now)
{
	struct quota_hold *h = find(q, provider);

	if (!h) {
		if (q->n == QUOTA_HOLDS_MAX)
			return 0;
		h = &q->h[q->n++];
		memset(h, 0, sizeof(*h));
		str_copy(h->provider, provider, sizeof(h->provider));
		h->since = now;
	}
	str_copy(h->error, error ? error : "", sizeof(h->error));
	if (h->hold_s && !h->probing)
		return h->hold_s; /* a create of the pass that was refused first */
	h->hold_s = h->hold_s ? h->hold_s * 2 : QUOTA_HOLD_FIRST_S;
	if (h->hold_s > QUOTA_HOLD_MAX_S)
		h->hold_s = QUOTA_HOLD_MAX_S;
	h->retry_at = now + h->hold_s;
	h->probing = false;
	return h->hold_s;
}

bool quota_hold_clear(struct quota_holds *q, const char *provider)
{
	struct quota_hold *h = find(q, provider);

	if (!h)
		return false;
	*h = q->h[--q->n];
	return true;
}

int64_t quota_hold_allow(struct quota_holds *q, const char *provider, int64_t want, int64_t now)
{
	struct quota_hold *h = find(q, provider);

	if (!h || want <= 0)
		return want;
	if (now < h->retry_at)
		return 0;
	h->retry_at = now + h->hold_s;
	h->probing = true;
	return 1;
}
