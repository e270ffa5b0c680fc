/*
 * Creates ahead of the lists. A pass that webhooks alone asked for (a job
 * queued) makes the runners its waiting jobs call for before it lists the
 * providers and GitHub, sized from the counts the last plan left and the
 * creates made since (planner_creates_ahead); then it observes, plans and
 * acts as every pass does, and sees those runners as pending. Against
 * github.com the runner list is a round trip of a tenth of a second or
 * more, and an OpenStack server list as long: a job's create should not
 * wait for them.
 *
 * It must never delete, never create what the last plan's counts do not
 * allow, and never run before a full plan was made (at start, after a
 * reload) or while draining.
 */
#include "util/common.h"
#include "manager/manager_internal.h"
#include "util/log.h"
#include "util/strutil.h"

void manager_ahead_release(struct manager *m)
{
	free(m->ahead);
	m->ahead = NULL;
	m->n_ahead = 0;
}

static struct plan_flavor_count *ahead_of(struct manager *m, const char *flavor)
{
	for (size_t i = 0; i < m->n_ahead; i++)
		if (strcmp(m->ahead[i].name, flavor) == 0)
			return &m->ahead[i];
	return NULL;
}

/* The runners plan creates, added to each flavor's creating count. */
static void add_creates(struct manager *m, const struct plan *plan)
{
	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct action *a = &plan->actions[i];
		struct plan_flavor_count *c;

		if (a->kind == ACTION_CREATE && a->count > 0 && (c = ahead_of(m, a->flavor)))
			c->creating += a->count;
	}
}

void manager_ahead_keep(struct manager *m, const struct plan *plan)
{
	struct plan_flavor_count *v = NULL;

	if (plan->n_counts) {
		v = malloc(plan->n_counts * sizeof(*v));
		if (!v) {
			manager_ahead_release(m); /* no counts: no creates ahead until the next */
			return;
		}
		memcpy(v, plan->counts, plan->n_counts * sizeof(*v));
		for (size_t i = 0; i < plan->n_counts; i++)
			v[i].creating = 0; /* what was planned; what ran is added below */
	}
	manager_ahead_release(m);
	m->ahead = v;
	m->n_ahead = plan->n_counts;
	add_creates(m, plan);
}

/* The creates ahead, one action per flavor, into p->actions (calloc'ed by the caller). */
static void plan_ahead(struct manager *m, struct plan *p)
{
	for (size_t i = 0; i < m->cfg->n_flavors; i++) {
		const struct config_flavor *f = &m->cfg->flavors[i];
		const struct plan_flavor_count *c = ahead_of(m, f->name);
		struct plan_flavor pf;
		struct action *a;
		int64_t n;

		if (!c)
			continue; /* new since the last plan: the pass's own plan sizes it */
		pf = (struct plan_flavor){.name = f->name,
		                          .min_idle = f->min_idle,
		                          .max = f->max,
		                          .waiting_jobs =
		                                  m->hooks.waiting_jobs(m->hooks.ctx, f->name)};
		n = planner_creates_ahead(&pf, c, false);
		if (n <= 0)
			continue;
		a = &p->actions[p->n_actions++];
		a->kind = ACTION_CREATE;
		str_copy(a->flavor, f->name, sizeof(a->flavor));
		a->count = n;
	}
}

int64_t manager_ahead_create(struct manager *m, struct manager_report *rep, int64_t now)
{
	struct plan p = {0};
	int64_t n = 0;

	if (!m->n_ahead || !m->warmed || !m->hooks.waiting_jobs || atomic_load(&m->draining) ||
	    atomic_load(&m->cancel))
		return 0;
	p.actions = calloc(m->cfg->n_flavors ? m->cfg->n_flavors : 1, sizeof(*p.actions));
	if (!p.actions)
		return 0; /* the pass's own plan makes them */
	plan_ahead(m, &p);
	/* the holds of a refused runner version and of a used-up quota hold here too */
	manager_runner_version_hold(m, &p, now);
	manager_quota_hold(m, &p, now);
	for (size_t i = 0; i < p.n_actions; i++)
		n += p.actions[i].count;
	if (n) {
		log_debug("ahead of the lists: %" PRId64 " runners for waiting jobs", n);
		add_creates(m, &p);
		(void)manager_execute(m, &p, rep);
	}
	plan_release(&p);
	return n;
}
