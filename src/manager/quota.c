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

void manager_quota_hold(struct manager *m, struct plan *plan, int64_t now)
{
	size_t k = 0;

	pthread_mutex_lock(&m->quota_lock);
	for (size_t i = 0; i < plan->n_actions; i++) {
		struct action *a = &plan->actions[i];
		const struct config_flavor *f;

		if (a->kind == ACTION_CREATE && m->quota.n &&
		    (f = config_flavor_find(m->cfg, a->flavor)) != NULL) {
			int64_t n = quota_hold_allow(&m->quota, f->provider, a->count, now);
			if (n < a->count)
				log_debug("flavor %s: %" PRId64 " of %" PRId64
				          " runner(s) made: provider %s is held (quota)",
				          a->flavor, n, a->count, f->provider);
			if (n == 0)
				continue;
			a->count = n;
		}
		plan->actions[k++] = *a;
	}
	plan->n_actions = k;
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
