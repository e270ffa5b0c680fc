/*
 * The manager's side of the quota hold (quota_hold.c): a create its cloud
 * refused for quota holds that provider's creates for a while (noted from
 * the creates' lane), each pass drops or cuts to one probe the creates of a
 * held provider, and status shows the hold. It must never drop a create of
 * a provider no quota error named, nor a delete.
 */
#include "util/common.h"
#include "manager/manager_internal.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strutil.h"

void manager_quota_init(struct manager *m)
{
	pthread_mutex_init(&m->quota_lock, NULL);
	memset(&m->quota, 0, sizeof(m->quota));
}

void manager_quota_noted(struct manager *m, const char *provider, int r, const char *error)
{
	int64_t held;

	pthread_mutex_lock(&m->quota_lock);
	if (r == -EDQUOT) {
		held = quota_hold_note(&m->quota, provider, error, clock_wall_ms() / 1000);
		pthread_mutex_unlock(&m->quota_lock);
		log_warn("provider %s: quota exceeded: no create for %" PRId64
		         " s, then one to try it (runnerd status shows it)",
		         provider, held);
		return;
	}
	if (r == 0 && quota_hold_clear(&m->quota, provider)) {
		pthread_mutex_unlock(&m->quota_lock);
		log_info("provider %s: a create succeeded: the quota hold ends", provider);
		return;
	}
	pthread_mutex_unlock(&m->quota_lock);
}

struct quota_pass {
	struct manager *m;
	int64_t now;
};

/* A create on a held provider: none, or one probe once the hold is over. */
static int64_t quota_allow(void *ctx, const struct action *a)
{
	struct quota_pass *q = ctx;
	const struct config_flavor *f = config_flavor_find(q->m->cfg, a->flavor);
	int64_t n;

	if (!f)
		return a->count;
	n = quota_hold_allow(&q->m->quota, f->provider, a->count, q->now);
	if (n < a->count)
		log_debug("flavor %s: %" PRId64 " of %" PRId64
		          " runner(s) made: provider %s is held (quota)",
		          a->flavor, n, a->count, f->provider);
	return n;
}

void manager_quota_hold(struct manager *m, struct plan *plan, int64_t now)
{
	struct quota_pass q = {m, now};

	pthread_mutex_lock(&m->quota_lock);
	if (m->quota.n)
		plan_limit_creates(plan, quota_allow, &q);
	pthread_mutex_unlock(&m->quota_lock);
}

void manager_quota_view(struct manager *m, const char *provider, struct manager_provider_view *v)
{
	const struct quota_hold *h;

	pthread_mutex_lock(&m->quota_lock);
	h = quota_hold_find(&m->quota, provider);
	if (h) {
		str_copy(v->quota_error, h->error, sizeof(v->quota_error));
		v->quota_since = h->since;
		v->quota_retry_at = h->retry_at;
	} else {
		v->quota_error[0] = '\0';
		v->quota_since = v->quota_retry_at = 0;
	}
	pthread_mutex_unlock(&m->quota_lock);
}
