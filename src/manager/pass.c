/*
 * The pass driver: observe -> plan -> execute -> record, one pass at a time
 * under the pass lock, and the narrower operations built on it (cleanup,
 * create n, delete n, get runners, observe only), which rewrite the plan
 * before it runs. It must never let two passes overlap nor act on a plan
 * of a pass that could not observe.
 */
#include "util/common.h"
#include "manager/manager_internal.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strutil.h"

/*
 * A runner busy for longer than job_timeout is kept (a job may run that
 * long; GitHub's own job timeout ends it, and its runner then leaves) but
 * said once a pass, so that a stuck one does not sit unseen.
 */
static void warn_stuck(struct manager *m, const struct plan *plan)
{
	for (size_t i = 0; i < plan->n_views; i++) {
		const struct plan_view *v = &plan->views[i];
		if (v->github_state == GH_BUSY && v->health == HEALTH_UNHEALTHY &&
		    v->cloud_state != CLOUD_ERROR && v->cloud_state != CLOUD_STOPPED &&
		    v->cloud_state != CLOUD_DELETED)
			log_warn(
			        "runner %s: busy for longer than job_timeout (%" PRId64
			        " s): stuck? It is kept until its job ends; `runnerd flush --busy` "
			        "removes it",
			        v->name, m->cfg->manager.job_timeout);
	}
}

/*
 * Rewrites the planned actions before they run (the original's narrower
 * operations: cleanup only, create n, delete n). Returns 0 or -errno.
 */
typedef int (*select_fn)(struct manager *m, struct plan *plan, void *arg);

/* Whether jobs can reach the queue: an intake that can authenticate, or a shared queue. */
static bool reactive_on(const struct manager *m)
{
	const struct config *cfg = m->cfg;
	const char *secret = cfg->webhook.secret.value;

	if (!m->hooks.waiting_jobs)
		return false;
	return cfg->queue.kind == QUEUE_AMQP || (*cfg->webhook.listen && secret && *secret);
}

/*
 * A flavor whose create failed ahead of the lists (among the report's
 * first n_events, those of the creates ahead) is not tried again by the
 * same pass: a provider that refuses is asked once a pass, as without the
 * creates ahead.
 */
struct failed_ahead {
	const struct manager_report *rep;
	size_t n_events;
};

static int64_t not_failed_ahead(void *ctx, const struct action *a)
{
	const struct failed_ahead *fa = ctx;

	for (size_t i = 0; i < fa->n_events; i++) {
		const struct manager_event *ev = &fa->rep->events[i];
		if (!ev->ok && strcmp(ev->action, "create") == 0 &&
		    strcmp(ev->flavor, a->flavor) == 0)
			return 0;
	}
	return a->count;
}

static int pass(struct manager *m, enum plan_mode mode, bool act, select_fn sel, void *arg,
                struct manager_report *rep, struct err *e)
{
	struct failed_ahead ahead = {.rep = rep};
	struct observation o;
	int64_t now;
	bool quick;
	int r;

	memset(rep, 0, sizeof(*rep));
	rep->started_at = clock_wall_ms();
	now = rep->started_at / 1000;
	pthread_mutex_lock(&m->pass_lock);
	quick = act && atomic_exchange(&m->pass_quick, false);
	if (act && !m->temporaries_swept)
		manager_disk_sweep_temporaries(m, now);
	if (act)
		manager_events_pass_start(m);
	/* a job that webhooks brought gets its runner before the lists */
	if (quick && !sel && mode == PLAN_NORMAL)
		rep->ahead = manager_ahead_create(m, rep, now);
	ahead.n_events = rep->n_events;
	r = manager_observation_take(m, &o, rep, now);
	if (r < 0) {
		err_set(e, r, "observe: %s", strerror(-r));
		goto out;
	}
	manager_runner_version_check(m, now);
	/* a fresh manager: the first job's create should not wait for these */
	if (act && o.runners_complete && !atomic_load(&m->cancel))
		manager_runner_pkg_warm(m, now);
	r = manager_observation_plan(m, &o, mode, now, &rep->plan);
	if (r < 0) {
		err_set(e, r, "plan: %s", strerror(-r));
		goto out;
	}
	rep->deletions_blocked = rep->plan.deletions_blocked;
	rep->reactive = reactive_on(m);
	rep->spooled = m->hooks.spooled ? m->hooks.spooled(m->hooks.ctx) : 0;
	if (sel) {
		r = sel(m, &rep->plan, arg);
		if (r < 0) {
			err_set(e, r, "%s", strerror(-r));
			goto out;
		}
	}
	if (act && !atomic_load(&m->cancel)) {
		warn_stuck(m, &rep->plan);
		manager_runner_version_hold(m, &rep->plan, now);
		manager_quota_hold(m, &rep->plan, now);
		if (ahead.n_events)
			plan_limit_creates(&rep->plan, not_failed_ahead, &ahead);
		r = manager_execute(m, &rep->plan, rep);
		if (r < 0)
			err_set(e, r, "execute: %s", strerror(-r));
		manager_ahead_keep(m, &rep->plan);
		manager_events_orphans(m, &rep->plan);
		if (!quick || !m->leftovers_at ||
		    now - m->leftovers_at >= MANAGER_LEFTOVERS_GAP_S || now < m->leftovers_at) {
			manager_collect_leftovers(m);
			m->leftovers_at = now;
		}
		manager_disk_retention(m, now);
		manager_events_reconciliation(m, rep);
	}
out:
	manager_observation_release(&o);
	manager_report_snapshot(m, rep);
	pthread_mutex_unlock(&m->pass_lock);
	rep->finished_at = clock_wall_ms();
	return r;
}

int manager_reconcile(struct manager *m, enum plan_mode mode, struct manager_report *ret,
                      struct err *e)
{
	return pass(m, mode, true, NULL, NULL, ret, e);
}

int manager_observe(struct manager *m, struct manager_report *ret, struct err *e)
{
	return pass(m, PLAN_NORMAL, false, NULL, NULL, ret, e);
}

static int keep_cleanup(struct manager *m, struct plan *plan, void *arg)
{
	size_t k = 0;
	/* cleanup is what is dead or orphaned, not sizing: no creates, no scale-down */
	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct action *a = &plan->actions[i];
		if (a->kind == ACTION_CREATE ||
		    (a->kind == ACTION_DELETE && (a->why == WHY_SCALE_DOWN || a->why == WHY_DRAIN)))
			continue;
		plan->actions[k++] = *a;
	}
	plan->n_actions = k;
	return 0;
}

int manager_cleanup(struct manager *m, struct manager_report *ret, struct err *e)
{
	return pass(m, PLAN_NORMAL, true, keep_cleanup, NULL, ret, e);
}

static bool holds_slot(const struct plan_view *v)
{
	return v->cloud_state != CLOUD_ERROR && v->cloud_state != CLOUD_STOPPED &&
	       v->cloud_state != CLOUD_DELETED;
}

struct create_arg {
	const char *flavor;
	int64_t n;
};

static int only_create(struct manager *m, struct plan *plan, void *arg)
{
	const struct create_arg *c = arg;
	const struct config_flavor *f = config_flavor_find(m->cfg, c->flavor);
	int64_t current = 0, n;

	if (!f)
		return -ENOENT;
	for (size_t i = 0; i < plan->n_views; i++)
		current +=
		        strcmp(plan->views[i].flavor, f->name) == 0 && holds_slot(&plan->views[i]);
	/* never above max, whatever was asked */
	n = c->n < f->max - current ? c->n : f->max - current;
	plan->n_actions = 0;
	if (n <= 0)
		return 0;
	if (!plan->actions) {
		plan->actions = calloc(1, sizeof(*plan->actions));
		if (!plan->actions)
			return -ENOMEM;
	}
	memset(&plan->actions[0], 0, sizeof(plan->actions[0]));
	plan->actions[0].kind = ACTION_CREATE;
	str_copy(plan->actions[0].flavor, f->name, sizeof(plan->actions[0].flavor));
	plan->actions[0].count = n;
	plan->n_actions = 1;
	return 0;
}

int manager_create_runners(struct manager *m, const char *flavor, int64_t n,
                           struct manager_report *ret, struct err *e)
{
	struct create_arg c = {flavor, n};
	return pass(m, PLAN_NORMAL, true, only_create, &c, ret, e);
}

static int view_newest_first(const void *a, const void *b)
{
	const struct plan_view *x = *(const struct plan_view *const *)a;
	const struct plan_view *y = *(const struct plan_view *const *)b;
	return (x->created_at < y->created_at) - (x->created_at > y->created_at);
}

static int only_delete_idle(struct manager *m, struct plan *plan, void *arg)
{
	int64_t n = *(const int64_t *)arg, k = 0;
	const struct plan_view **idle;
	size_t ni = 0;
	struct action *acts;

	plan->n_actions = 0;
	if (plan->deletions_blocked || n <= 0)
		return 0;
	idle = calloc(plan->n_views ? plan->n_views : 1, sizeof(*idle));
	acts = calloc((size_t)(n < (int64_t)plan->n_views ? n : (int64_t)plan->n_views) + 1,
	              sizeof(*acts));
	if (!idle || !acts) {
		free(idle);
		free(acts);
		return -ENOMEM;
	}
	for (size_t i = 0; i < plan->n_views; i++)
		if (plan->views[i].github_state == GH_IDLE &&
		    plan->views[i].cloud_state == CLOUD_ACTIVE)
			idle[ni++] = &plan->views[i];
	qsort(idle, ni, sizeof(*idle), view_newest_first);
	for (size_t i = 0; i < ni && k < n; i++, k++) {
		struct action *a = &acts[k];
		a->kind = ACTION_DELETE;
		a->why = WHY_SCALE_DOWN;
		str_copy(a->name, idle[i]->name, sizeof(a->name));
		str_copy(a->flavor, idle[i]->flavor, sizeof(a->flavor));
		a->runner_id = idle[i]->runner_id;
		a->confirm_github = true; /* a job may arrive meanwhile: 422 keeps it */
		a->delete_instance = true;
		a->extract_metrics = true;
	}
	free(idle);
	free(plan->actions);
	plan->actions = acts;
	plan->n_actions = (size_t)k;
	return 0;
}

int manager_delete_runners(struct manager *m, int64_t n, struct manager_report *ret, struct err *e)
{
	return pass(m, PLAN_NORMAL, true, only_delete_idle, &n, ret, e);
}

int manager_get_runners(struct manager *m, unsigned github_states, unsigned cloud_states,
                        struct plan_view **ret, size_t *ret_n, struct err *e)
{
	struct manager_report rep;
	struct plan_view *v;
	size_t k = 0;
	int r = manager_observe(m, &rep, e);

	if (r < 0) {
		manager_report_release(&rep);
		return r;
	}
	v = calloc(rep.plan.n_views ? rep.plan.n_views : 1, sizeof(*v));
	if (!v) {
		manager_report_release(&rep);
		return err_set(e, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < rep.plan.n_views; i++) {
		const struct plan_view *w = &rep.plan.views[i];
		if ((!github_states || (github_states & (1u << w->github_state))) &&
		    (!cloud_states || (cloud_states & (1u << w->cloud_state))))
			v[k++] = *w;
	}
	manager_report_release(&rep);
	*ret = v;
	*ret_n = k;
	return 0;
}

bool manager_is_empty(const struct manager_report *r)
{
	if (r->deletions_blocked || r->github_error[0] || r->provider_error[0])
		return false;
	return r->plan.n_views == 0;
}
