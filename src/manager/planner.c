/*
 * The planner: one reconcile pass's decisions, computed from what was
 * observed (store rows, provider instances, GitHub runners, waiting jobs,
 * config, the time) and nothing else. It must never do I/O, read the clock,
 * log or keep state between calls: the manager observes, the planner
 * decides, the executor acts, so every rule below is a table test.
 *
 * The rules, in full (DESIGN.md §3). How each owned name is joined and
 * classified (names, in flight, the cleanup rules, health) is in
 * planner_classify.c; this file turns the classified names into actions:
 *
 * Completeness. GitHub state is UNKNOWN for everyone when the runner list
 * is incomplete. A pass in which either list is incomplete emits no
 * deletion of any kind (DELETE, DELETE_RUNNER, FORGET, scale-down, flush)
 * and sets deletions_blocked; it may still adopt and create. PLAN_FLUSH_BUSY
 * is the one exception: it deletes what it can see (deletes are idempotent).
 *
 * Sizing, per configured flavor: desired = clamp(busy + max(min_idle,
 * waiting_jobs), 0, max); draining makes it 0. current = the names holding a
 * slot: busy + idle + pending (booting, in flight, unlisted rows while the
 * provider list is incomplete) + unknown. current < desired -> CREATE
 * (flavor, desired - current), also when a list is incomplete. current >
 * desired (scale-down), only with both lists complete: victims, in order,
 * are booting names (registered offline or not yet registered), newest
 * first, then idle names, newest first; never busy or in-flight names (what
 * the cleanup rules delete is not counted, so it goes "first"). Every victim
 * gets extract_metrics (its installation timestamps are metrics too). A victim
 * with a runner on GitHub gets confirm_github (the executor deletes the
 * runner first and the instance only if GitHub confirmed: 422 means it just
 * became busy); one without gets a plain delete. why SCALE_DOWN, or DRAIN
 * when draining. Names of a flavor that is not configured are surplus:
 * desired 0, same victim rules.
 *
 * Modes. PLAN_FLUSH_IDLE: on top of the cleanup rules, every booting and
 * idle name of every flavor goes (why FLUSH, confirm_github as for a
 * scale-down); busy ones never. A flush pass creates nothing: it leaves the
 * pools empty of idle runners and the next normal pass refills them (a
 * flush that immediately re-created what it removed would not flush).
 * PLAN_FLUSH_BUSY: every name goes, busy included and whatever the lists'
 * completeness: each listed instance and each row's instance with
 * delete_instance, never confirm_github, runner_id when known (listed, or
 * the row's when GitHub's list is incomplete), extract_metrics when the
 * instance is listed or may be (provider list incomplete), pull_logs for
 * an unhealthy listed one (a stuck busy runner); dangling runners busy or not; the cleanup
 * reason is kept when one applies, why FLUSH otherwise. FORGET still needs
 * both lists complete. It creates nothing either.
 *
 * Ahead of the lists (planner_creates_ahead). A pass that webhooks asked
 * for may create before it observes, from the counts the last plan left:
 * desired = the sizing rule over the last busy count and the waiting jobs
 * now; current = the last busy + idle + pending + unknown + what was created
 * since (the last plan's creates, and those made ahead since). Counts only
 * grow stale toward fewer creates: runners leave the counts only by being
 * deleted or finishing (the stale count holds their slot), an idle runner
 * that took a job since still counts toward current, and the only runners
 * that join a pool are the manager's own creates, counted as they are
 * made. So a create ahead is one the next full plan would make too; that
 * plan follows at once and sees it as pending.
 *
 * Output order: ADOPT first (every instance acted on has a row), then the
 * cleanup deletions and FORGETs in name order, then scale-down / flush
 * victims (flavor order, victim order), then CREATEs in flavor order.
 * Views are in name order, one per owned name. Counts, one per input
 * flavor: online / offline = listed runners of the flavor by GitHub status;
 * busy / idle / pending / unknown = slot holders by class (they add up to
 * current); desired; creating = this pass's CREATE count; deleting = this
 * pass's DELETE actions for the flavor.
 */
#include "util/common.h"
#include "util/strutil.h"
#include "manager/planner_internal.h"

const char *action_kind_name(enum action_kind k)
{
	switch (k) {
	case ACTION_CREATE:
		return "create";
	case ACTION_DELETE:
		return "delete";
	case ACTION_DELETE_RUNNER:
		return "delete_runner";
	case ACTION_ADOPT:
		return "adopt";
	case ACTION_FORGET:
		return "forget";
	}
	return "?";
}

const char *delete_reason_name(enum delete_reason w)
{
	switch (w) {
	case WHY_NONE:
		return "none";
	case WHY_FINISHED:
		return "finished";
	case WHY_ORPHAN:
		return "orphan";
	case WHY_ERROR:
		return "error";
	case WHY_STOPPED:
		return "stopped";
	case WHY_OFFLINE:
		return "offline";
	case WHY_DANGLING:
		return "dangling";
	case WHY_VANISHED:
		return "vanished";
	case WHY_STALE:
		return "stale";
	case WHY_SCALE_DOWN:
		return "scale_down";
	case WHY_FLUSH:
		return "flush";
	case WHY_DRAIN:
		return "drain";
	case WHY_DUPLICATE:
		return "duplicate";
	case WHY_RETRY:
		return "retry";
	case WHY_DEAD:
		return "dead";
	}
	return "?";
}

struct out {
	struct action *v;
	size_t n, cap;
	bool oom;              /* an add failed: the plan fails with -ENOMEM */
	struct action scratch; /* what a failed add writes to */
};

static int64_t sat_add(int64_t a, int64_t b)
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/*
 * Grows as actions come (a steady pass has none: no upper bound of tens of
 * MB is reserved at 10,000 runners). Never NULL: when memory runs out the
 * action goes to a scratch slot and the plan fails as a whole.
 */
static struct action *out_add(struct out *o, enum action_kind k, const char *name)
{
	struct action *a;

	if (o->n == o->cap) {
		size_t ncap = o->cap ? o->cap * 2 : 16;
		struct action *nv = realloc(o->v, ncap * sizeof(*nv));
		if (!nv) {
			o->oom = true;
			a = &o->scratch;
			goto fill;
		}
		o->v = nv;
		o->cap = ncap;
	}
	a = &o->v[o->n++];
fill:
	memset(a, 0, sizeof(*a));
	a->kind = k;
	str_copy(a->name, name ? name : "", sizeof(a->name));
	return a;
}

/* Where the instance lives: the provider that listed it, else the row's. */
static void provider_of_entry(struct action *a, const struct entry *e)
{
	const char *p = e->inst && e->inst->provider[0] ? e->inst->provider
	                : e->row                        ? e->row->provider
	                                                : "";
	str_copy(a->provider, p, sizeof(a->provider));
}

static void fill_delete(struct action *a, const struct entry *e, enum delete_reason why,
                        unsigned flags)
{
	a->why = why;
	a->delete_instance = a->kind == ACTION_DELETE;
	a->runner_id = e->runner_id;
	a->extract_metrics = (flags & F_METRICS) != 0;
	a->pull_logs = (flags & F_LOGS) != 0;
	/* confirming needs a runner to ask GitHub about */
	a->confirm_github = (flags & F_CONFIRM) && e->runner && a->kind == ACTION_DELETE;
	str_copy(a->flavor, e->flavor, sizeof(a->flavor));
	provider_of_entry(a, e);
}

static void emit_cleanup(struct out *o, const struct entry *e)
{
	struct action *a = out_add(o, e->ck, e->name);

	if (e->ck == ACTION_FORGET) {
		a->why = e->cwhy;
		str_copy(a->flavor, e->flavor, sizeof(a->flavor));
		return;
	}
	fill_delete(a, e, e->cwhy, e->cflags);
}

static void emit_duplicates(struct out *o, const struct plan_input *in, const struct entry *e)
{
	for (size_t i = 0; i < e->n_insts; i++) {
		const struct instance *d = &in->instances[e->insts[i].idx];
		struct action *a;

		/* one provider cannot hold two instances of one name; if one did,
		 * a delete by name could hit the one kept: leave it. Nor is a copy
		 * with the kept one's provider id a duplicate: it is that instance,
		 * listed by two providers that look at one backend (two openstack
		 * providers on one project): a delete would end the kept one. */
		if (d == e->inst || (d->provider[0] && str_eq(d->provider, e->inst->provider)) ||
		    (d->provider_id[0] && str_eq(d->provider_id, e->inst->provider_id)))
			continue;
		a = out_add(o, ACTION_DELETE, e->name);
		a->why = WHY_DUPLICATE;
		a->delete_instance = true;
		str_copy(a->provider_id, d->provider_id, sizeof(a->provider_id));
		str_copy(a->provider, d->provider, sizeof(a->provider));
		str_copy(a->flavor, e->flavor, sizeof(a->flavor));
	}
}

/* PLAN_FLUSH_BUSY: everything this pass can see goes. */
static void emit_flush_busy(struct out *o, const struct plan_input *in, const struct entry *e)
{
	struct action *a;
	unsigned flags;

	emit_duplicates(o, in, e);
	if (e->ck == ACTION_FORGET) {
		emit_cleanup(o, e);
		return;
	}
	if (!e->row && !e->inst) {
		a = out_add(o, ACTION_DELETE_RUNNER, e->name);
		fill_delete(a, e, e->ck == ACTION_DELETE_RUNNER ? e->cwhy : WHY_FLUSH, 0);
		return;
	}
	a = out_add(o, ACTION_DELETE, e->name);
	if (e->ck == ACTION_DELETE) {
		fill_delete(a, e, e->cwhy, e->cflags & ~F_CONFIRM);
		return;
	}
	/* metrics from an instance that may still be there; logs from a stuck one */
	flags = e->inst || !in->instances_complete ? F_METRICS : 0;
	if (e->health == HEALTH_UNHEALTHY && e->inst)
		flags |= F_LOGS;
	fill_delete(a, e, WHY_FLUSH, flags);
}

/* Victims of a scale-down: booting before idle, newest first in each. */
static int victim_cmp(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a;
	const struct entry *y = *(const struct entry *const *)b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	if (x->created_at != y->created_at)
		return x->created_at > y->created_at ? -1 : 1;
	return strcmp(x->name, y->name);
}

static bool is_candidate(const struct entry *e)
{
	return e->rank != RANK_NONE && !e->in_flight && e->ck == ACTION_CREATE;
}

/* Delete up to n candidates of flavor fl (-1: surplus) in victim order. */
static void emit_victims(struct out *o, struct entry *ents, size_t n_ents,
                         const struct entry **scratch, long fl, int64_t n, enum delete_reason why)
{
	size_t k = 0;

	for (size_t i = 0; i < n_ents; i++)
		if (is_candidate(&ents[i]) && ents[i].fl == fl)
			scratch[k++] = &ents[i];
	qsort(scratch, k, sizeof(*scratch), victim_cmp);
	for (size_t i = 0; i < k && (int64_t)i < n; i++) {
		struct action *a = out_add(o, ACTION_DELETE, scratch[i]->name);
		fill_delete(a, scratch[i], why, F_CONFIRM | F_METRICS);
	}
}

static int64_t desired_of(bool draining, const struct plan_flavor *f, int64_t busy)
{
	int64_t min_idle = f->min_idle > 0 ? f->min_idle : 0;
	int64_t waiting = f->waiting_jobs > 0 ? f->waiting_jobs : 0;
	int64_t max = f->max > 0 ? f->max : 0;
	int64_t d;

	if (draining)
		return 0;
	d = sat_add(busy, min_idle > waiting ? min_idle : waiting);
	return d > max ? max : d;
}

static void count_entry(struct plan_flavor_count *c, const struct entry *e)
{
	if (e->runner && e->gh != GH_UNKNOWN) {
		if (e->runner->online)
			c->online++;
		else
			c->offline++;
	}
	switch (e->slot) {
	case SLOT_BUSY:
		c->busy++;
		break;
	case SLOT_IDLE:
		c->idle++;
		break;
	case SLOT_PENDING:
		c->pending++;
		break;
	case SLOT_UNKNOWN:
		c->unknown++;
		break;
	case SLOT_NONE:
		break;
	}
}

static void *alloc_array(size_t n, size_t size)
{
	return calloc(n ? n : 1, size);
}

int planner_plan(const struct plan_input *in, struct plan *ret)
{
	struct src *srcs = NULL;
	struct entry *ents = NULL;
	const struct entry **scratch = NULL;
	struct out o = {0};
	struct plan p = {0};
	size_t n_ents = 0, total;
	bool flush_busy = in->mode == PLAN_FLUSH_BUSY;
	bool blocked = !(in->instances_complete && in->runners_complete);
	int r = -ENOMEM;

	total = in->n_records + in->n_instances + in->n_runners + in->n_in_flight;
	srcs = alloc_array(total, sizeof(*srcs));
	ents = alloc_array(total, sizeof(*ents));
	scratch = alloc_array(total, sizeof(*scratch));
	p.counts = alloc_array(in->n_flavors, sizeof(*p.counts));
	if (!srcs || !ents || !scratch || !p.counts)
		goto out;

	n_ents = planner_join(in, srcs, ents);
	p.views = alloc_array(n_ents, sizeof(*p.views));
	if (!p.views)
		goto out;
	for (size_t i = 0; i < n_ents; i++) {
		planner_classify(in, &ents[i]);
		planner_view(&p.views[i], &ents[i]);
	}
	p.n_views = n_ents;

	for (size_t i = 0; i < n_ents; i++) {
		if (ents[i].adopt) {
			struct action *a = out_add(&o, ACTION_ADOPT, ents[i].name);
			str_copy(a->flavor, ents[i].inst->flavor, sizeof(a->flavor));
			str_copy(a->provider, ents[i].inst->provider, sizeof(a->provider));
			a->created_at = (int64_t)ents[i].inst->created_at;
			a->cloud = ents[i].inst->state;
		}
	}

	for (size_t i = 0; i < n_ents; i++) {
		const struct entry *e = &ents[i];

		if (e->in_flight)
			continue;
		if (flush_busy)
			emit_flush_busy(&o, in, e);
		else if (!blocked) {
			emit_duplicates(&o, in, e);
			if (e->ck != ACTION_CREATE)
				emit_cleanup(&o, e);
		}
	}

	p.n_counts = in->n_flavors;
	for (size_t f = 0; f < in->n_flavors; f++) {
		struct plan_flavor_count *c = &p.counts[f];

		str_copy(c->name, in->flavors[f].name ? in->flavors[f].name : "", sizeof(c->name));
		for (size_t i = 0; i < n_ents; i++)
			if (ents[i].fl == (long)f)
				count_entry(c, &ents[i]);
		c->desired = desired_of(in->draining, &in->flavors[f], c->busy);
		c->waiting = in->flavors[f].waiting_jobs > 0 ? in->flavors[f].waiting_jobs : 0;
	}

	if (in->mode == PLAN_FLUSH_IDLE && !blocked) {
		for (size_t f = 0; f < in->n_flavors; f++)
			emit_victims(&o, ents, n_ents, scratch, (long)f, INT64_MAX, WHY_FLUSH);
		emit_victims(&o, ents, n_ents, scratch, -1, INT64_MAX, WHY_FLUSH);
	} else if (in->mode == PLAN_NORMAL && !blocked) {
		enum delete_reason why = in->draining ? WHY_DRAIN : WHY_SCALE_DOWN;

		for (size_t f = 0; f < in->n_flavors; f++) {
			struct plan_flavor_count *c = &p.counts[f];
			int64_t current = c->busy + c->idle + c->pending + c->unknown;

			if (current > c->desired)
				emit_victims(&o, ents, n_ents, scratch, (long)f,
				             current - c->desired, why);
		}
		emit_victims(&o, ents, n_ents, scratch, -1, INT64_MAX, why);
	}

	if (in->mode == PLAN_NORMAL) {
		for (size_t f = 0; f < in->n_flavors; f++) {
			struct plan_flavor_count *c = &p.counts[f];
			int64_t current = c->busy + c->idle + c->pending + c->unknown;
			struct action *a;

			if (current >= c->desired)
				continue;
			a = out_add(&o, ACTION_CREATE, "");
			str_copy(a->flavor, c->name, sizeof(a->flavor));
			a->count = c->desired - current;
			c->creating = a->count;
		}
	}

	for (size_t i = 0; i < o.n; i++) {
		long f;

		if (o.v[i].kind != ACTION_DELETE)
			continue;
		f = planner_flavor_index(in, o.v[i].flavor);
		if (f >= 0)
			p.counts[f].deleting++;
	}

	if (o.oom)
		goto out;
	p.actions = o.v;
	p.n_actions = o.n;
	o.v = NULL;
	p.deletions_blocked = blocked && !flush_busy;
	*ret = p;
	p = (struct plan){0};
	r = 0;
out:
	plan_release(&p);
	free(o.v);
	free(scratch);
	free(ents);
	free(srcs);
	return r;
}

int64_t planner_creates_ahead(const struct plan_flavor *f, const struct plan_flavor_count *last,
                              bool draining)
{
	int64_t current = sat_add(sat_add(last->busy, last->idle),
	                          sat_add(sat_add(last->pending, last->unknown), last->creating));
	int64_t desired = desired_of(draining, f, last->busy > 0 ? last->busy : 0);

	return current < desired ? desired - current : 0;
}

void plan_limit_creates(struct plan *p, int64_t (*allow)(void *ctx, const struct action *a),
                        void *ctx)
{
	size_t k = 0;

	for (size_t i = 0; i < p->n_actions; i++) {
		struct action *a = &p->actions[i];

		if (a->kind == ACTION_CREATE) {
			int64_t n = allow(ctx, a);
			if (n <= 0)
				continue;
			if (n < a->count)
				a->count = n;
		}
		p->actions[k++] = *a;
	}
	p->n_actions = k;
}

void plan_release(struct plan *p)
{
	if (!p)
		return;
	free(p->actions);
	free(p->views);
	free(p->counts);
	*p = (struct plan){0};
}
