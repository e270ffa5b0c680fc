/*
 * The planner: one reconcile pass's decisions, computed from what was
 * observed (store rows, provider instances, GitHub runners, waiting jobs,
 * config, the time) and nothing else. It must never do I/O, read the clock,
 * log or keep state between calls: the manager observes, the planner
 * decides, the executor acts, so every rule below is a table test.
 *
 * The rules, in full (DESIGN.md §3):
 *
 * Names. Only names owned by in->manager (name_is_owned: exactly
 * "<manager>-<12 hex>") are looked at; every other row, instance, runner or
 * in-flight name is ignored entirely, so manager "ci" never touches
 * "ci-east-...". Rows, instances and runners are joined by name.
 *
 * Completeness. GitHub state is UNKNOWN for everyone when the runner list
 * is incomplete. A pass in which either list is incomplete emits no
 * deletion of any kind (DELETE, DELETE_RUNNER, FORGET, scale-down, flush)
 * and sets deletions_blocked; it may still adopt and create. PLAN_FLUSH_BUSY
 * is the one exception: it deletes what it can see (deletes are idempotent).
 *
 * In flight. A name in in->in_flight is being created by this process right
 * now: it is pending, counts toward its flavor's pool, and is never deleted
 * or dangling in any mode (its create owns it; the next pass sees the
 * outcome).
 *
 * Classification of every other owned name:
 * - GitHub runner, no instance, no row: dangling -> DELETE_RUNNER (why
 *   DANGLING), only when not busy (GitHub would answer 422: retry next
 *   pass). It holds no slot.
 * - instance listed, no row: ADOPT (flavor as the provider recorded it),
 *   then classified as if it had a row that was never seen on GitHub, with
 *   the instance's created_at. A flavor that is not configured (or unknown)
 *   makes it surplus.
 * - duplicate: several instances with one name: the newest (created_at;
 *   ties keep the first listed) is the instance; every older one gets
 *   DELETE (why DUPLICATE, its provider_id and provider, no runner, no
 *   metrics) -- unless both were listed by the same named provider, which
 *   cannot be told apart by name (left alone).
 * - row, no instance listed, provider list complete: the instance is gone.
 *   Phase CREATING (a create that never finished: a crash) or CREATED (it
 *   went away behind our back) -> DELETE (why STALE / VANISHED,
 *   delete_instance (idempotent, in case the provider is slow to list it),
 *   runner_id when GitHub lists the runner). Phase DELETING -> FORGET when
 *   GitHub does not list the runner either, else DELETE (why RETRY) to
 *   remove the runner. None of these holds a slot.
 * - row, no instance listed, provider list incomplete: nothing is known;
 *   the row holds a slot (busy / idle / unknown / pending after its GitHub
 *   state) unless its phase is DELETING, so creates never exceed max.
 * - instance in CLOUD_ERROR -> DELETE (why ERROR, extract_metrics,
 *   pull_logs); CLOUD_STOPPED -> DELETE (why STOPPED, extract_metrics; an
 *   ephemeral instance stops by itself after its job, so no logs when its
 *   runner was seen and is gone from a complete list; pull_logs when the
 *   runner is still registered or was never seen); listed as
 *   CLOUD_DELETED -> DELETE (why VANISHED). At once, busy or not (the
 *   provider says it is gone), with runner_id when GitHub lists one; it
 *   holds no slot. Health unhealthy even when GitHub's state is unknown.
 *   CLOUD_UNKNOWN is treated as running.
 * - instance, GitHub state unknown: holds a slot ("unknown"), health
 *   unknown, never deleted (the pass is blocked anyway).
 * - instance + runner busy (online or not): busy, holds a slot. Busy for
 *   longer than job_timeout (now - busy_since, as the manager recorded it)
 *   is stuck: health unhealthy, still kept. A busy runner is deleted only
 *   by PLAN_FLUSH_BUSY or when its instance is error/stopped/gone.
 * - instance + runner online, not busy: idle, holds a slot.
 * - instance + runner offline, not busy: age (now - created_at) greater
 *   than bootstrap_timeout -> DELETE (why OFFLINE, confirm_github,
 *   extract_metrics, pull_logs); otherwise booting (a JIT runner is listed
 *   offline from the moment it is registered), holds a slot.
 * - booting (offline or never seen, within the bootstrap timeout) but the
 *   provider's health probe (instance.probe, filled by the manager) says
 *   UNHEALTHY -- the runner was installed and is not running -- and age >
 *   health_grace: dead -> DELETE (why DEAD, confirm_github, extract_metrics,
 *   pull_logs), no slot: a runner that crashed at start is replaced now,
 *   not after the bootstrap timeout.
 * - instance, runner absent from a complete list: seen_on_github (the
 *   manager records it before planning, so this or an earlier pass) ->
 *   finished: DELETE (why FINISHED, extract_metrics) at once, no slot.
 *   Never seen: age > bootstrap_timeout -> orphan: DELETE (why ORPHAN,
 *   extract_metrics, pull_logs), no slot; younger: booting, holds a slot.
 * - a row in phase DELETING whose instance is still listed: a delete that
 *   did not finish. The rules above still pick the reason when one applies
 *   (finished, orphan, ...); a busy runner is kept and counted busy (its
 *   confirmed delete was refused with 422); otherwise DELETE (why RETRY,
 *   confirm_github when a runner is listed). It holds no slot.
 * An age is unknown when created_at is 0 and then counts as past every
 * timeout: an instance nobody can date and whose runner is not online is
 * not worth keeping. The row's created_at (when the name was reserved) is
 * preferred to the instance's.
 *
 * Health: unhealthy for error/stopped/vanished/stale, orphan, offline past
 * the bootstrap timeout, stuck busy and dangling; unknown when GitHub's (or,
 * for a row not listed, the provider's) list is incomplete or for a
 * DELETING row; healthy otherwise (idle, busy within job_timeout, booting
 * within bootstrap_timeout, finished).
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
#include "manager/planner.h"

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

enum src_kind { SRC_ROW = 0, SRC_INST, SRC_RUNNER, SRC_FLIGHT };

/* One owned name from one of the four inputs, sorted to group by name. */
struct src {
	const char *name;
	enum src_kind kind;
	size_t idx;
};

/* What a name contributes to its flavor's pool. */
enum slot { SLOT_NONE = 0, SLOT_BUSY, SLOT_IDLE, SLOT_PENDING, SLOT_UNKNOWN };

/* Scale-down / flush-idle candidates, in the order they are given up. */
enum rank { RANK_NONE = 0, RANK_BOOTING, RANK_IDLE };

#define F_METRICS 0x1u
#define F_LOGS    0x2u
#define F_CONFIRM 0x4u

struct entry {
	const char *name;
	const struct store_instance *row;
	const struct instance *inst; /* the newest listed */
	const struct src *insts;     /* every listed instance of this name */
	size_t n_insts;
	const struct plan_runner *runner;
	bool in_flight;

	const char *flavor;
	long fl; /* index in in->flavors, -1: not configured (surplus) */
	int64_t created_at;
	int64_t runner_id; /* listed, or the row's while GitHub's list is incomplete */
	enum github_state gh;
	enum cloud_state cloud;
	enum health health;
	enum slot slot;
	enum rank rank;
	bool adopt;

	/* the cleanup rules' verdict (kind ACTION_CREATE: none) */
	enum action_kind ck;
	enum delete_reason cwhy;
	unsigned cflags;
};

struct out {
	struct action *v;
	size_t n, cap;
	bool oom;              /* an add failed: the plan fails with -ENOMEM */
	struct action scratch; /* what a failed add writes to */
};

static int src_cmp(const void *a, const void *b)
{
	const struct src *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int64_t age_of(int64_t now, int64_t since)
{
	if (since <= 0)
		return INT64_MAX; /* unknown: past every timeout */
	if (since >= now)
		return 0;
	return now - since;
}

static int64_t sat_add(int64_t a, int64_t b)
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static long flavor_index(const struct plan_input *in, const char *name)
{
	if (!name || !*name)
		return -1;
	for (size_t i = 0; i < in->n_flavors; i++)
		if (str_eq(in->flavors[i].name, name))
			return (long)i;
	return -1;
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

static void set_cleanup(struct entry *e, enum action_kind k, enum delete_reason why, unsigned flags)
{
	e->ck = k;
	e->cwhy = why;
	e->cflags = flags;
}

static enum slot slot_of_gh(enum github_state gh)
{
	switch (gh) {
	case GH_BUSY:
		return SLOT_BUSY;
	case GH_IDLE:
		return SLOT_IDLE;
	case GH_UNKNOWN:
		return SLOT_UNKNOWN;
	default:
		return SLOT_PENDING;
	}
}

/* A row that is not listed by the provider. */
static void classify_unlisted(const struct plan_input *in, struct entry *e)
{
	bool deleting = e->row->phase == PHASE_DELETING;

	if (!in->instances_complete) {
		e->cloud = CLOUD_UNKNOWN;
		e->health = HEALTH_UNKNOWN;
		e->slot = deleting ? SLOT_NONE : slot_of_gh(e->gh);
		return;
	}
	e->cloud = CLOUD_DELETED;
	if (deleting) {
		e->health = HEALTH_UNKNOWN;
		if (e->gh == GH_ABSENT)
			set_cleanup(e, ACTION_FORGET, WHY_NONE, 0);
		else
			set_cleanup(e, ACTION_DELETE, WHY_RETRY, 0);
		return;
	}
	e->health = HEALTH_UNHEALTHY;
	set_cleanup(e, ACTION_DELETE, e->row->phase == PHASE_CREATING ? WHY_STALE : WHY_VANISHED,
	            0);
}

/* A name with a listed instance (e->inst). */
static void classify_listed(const struct plan_input *in, struct entry *e)
{
	bool deleting = e->row && e->row->phase == PHASE_DELETING;
	bool seen = e->row && e->row->seen_on_github;
	int64_t age = age_of(in->now, e->created_at);

	e->cloud = e->inst->state;
	switch (e->inst->state) {
	case CLOUD_ERROR:
		e->health = HEALTH_UNHEALTHY;
		set_cleanup(e, ACTION_DELETE, WHY_ERROR, F_METRICS | F_LOGS);
		return;
	case CLOUD_STOPPED: {
		/* An ephemeral runner stops its instance after its job and is gone
		 * from GitHub: no logs needed. A stop with the runner still
		 * registered, or never seen, is a failure worth its logs. */
		bool clean_end = seen && !e->runner && in->runners_complete;
		e->health = HEALTH_UNHEALTHY;
		set_cleanup(e, ACTION_DELETE, WHY_STOPPED, F_METRICS | (clean_end ? 0 : F_LOGS));
		return;
	}
	case CLOUD_DELETED:
		e->health = HEALTH_UNHEALTHY;
		set_cleanup(e, ACTION_DELETE, WHY_VANISHED, 0);
		return;
	default:
		break;
	}

	switch (e->gh) {
	case GH_UNKNOWN:
		e->health = HEALTH_UNKNOWN;
		if (deleting)
			set_cleanup(e, ACTION_DELETE, WHY_RETRY, F_CONFIRM);
		else
			e->slot = SLOT_UNKNOWN;
		return;
	case GH_BUSY: {
		int64_t since = e->row ? e->row->busy_since : 0;
		bool stuck = since > 0 && age_of(in->now, since) > in->job_timeout;

		e->health = stuck ? HEALTH_UNHEALTHY : HEALTH_HEALTHY;
		e->slot = SLOT_BUSY;
		return;
	}
	case GH_IDLE:
		e->health = HEALTH_HEALTHY;
		if (deleting) {
			set_cleanup(e, ACTION_DELETE, WHY_RETRY, F_CONFIRM);
			return;
		}
		e->slot = SLOT_IDLE;
		e->rank = RANK_IDLE;
		return;
	case GH_OFFLINE:
		if (age > in->bootstrap_timeout) {
			e->health = HEALTH_UNHEALTHY;
			set_cleanup(e, ACTION_DELETE, WHY_OFFLINE, F_CONFIRM | F_METRICS | F_LOGS);
			return;
		}
		break;
	case GH_ABSENT:
		if (seen) {
			e->health = HEALTH_HEALTHY;
			set_cleanup(e, ACTION_DELETE, WHY_FINISHED, F_METRICS);
			return;
		}
		if (age > in->bootstrap_timeout) {
			e->health = HEALTH_UNHEALTHY;
			set_cleanup(e, ACTION_DELETE, WHY_ORPHAN, F_METRICS | F_LOGS);
			return;
		}
		break;
	}
	/* booting: registered offline, or not registered yet, within the timeout */
	if (e->inst->probe == HEALTH_UNHEALTHY && age > in->health_grace) {
		/* the provider saw the runner installed and not running: it died */
		e->health = HEALTH_UNHEALTHY;
		set_cleanup(e, ACTION_DELETE, WHY_DEAD, F_CONFIRM | F_METRICS | F_LOGS);
		return;
	}
	e->health = HEALTH_HEALTHY;
	if (deleting) {
		set_cleanup(e, ACTION_DELETE, WHY_RETRY, F_CONFIRM);
		return;
	}
	e->slot = SLOT_PENDING;
	e->rank = RANK_BOOTING;
}

static void classify(const struct plan_input *in, struct entry *e)
{
	const struct store_instance *row = e->row;

	e->ck = ACTION_CREATE;
	if (!in->runners_complete)
		e->gh = GH_UNKNOWN;
	else if (!e->runner)
		e->gh = GH_ABSENT;
	else if (e->runner->busy)
		e->gh = GH_BUSY;
	else
		e->gh = e->runner->online ? GH_IDLE : GH_OFFLINE;
	if (e->runner)
		e->runner_id = e->runner->id;
	else if (!in->runners_complete && row)
		e->runner_id = row->runner_id;

	e->flavor = row && row->flavor[0] ? row->flavor : e->inst ? e->inst->flavor : "";
	e->fl = flavor_index(in, e->flavor);
	if (row && row->created_at > 0)
		e->created_at = row->created_at;
	else if (e->inst)
		e->created_at = (int64_t)e->inst->created_at;
	e->adopt = e->inst && !row && !e->in_flight;

	if (e->in_flight) {
		e->cloud = e->inst ? e->inst->state : CLOUD_CREATED;
		e->health = e->gh == GH_UNKNOWN ? HEALTH_UNKNOWN : HEALTH_HEALTHY;
		e->slot = e->gh == GH_BUSY ? SLOT_BUSY : SLOT_PENDING;
		return;
	}
	if (!row && !e->inst) {
		/* only GitHub knows this name: dangling */
		e->cloud = in->instances_complete ? CLOUD_DELETED : CLOUD_UNKNOWN;
		e->health = in->instances_complete ? HEALTH_UNHEALTHY : HEALTH_UNKNOWN;
		if (e->gh != GH_BUSY)
			set_cleanup(e, ACTION_DELETE_RUNNER, WHY_DANGLING, 0);
		return;
	}
	if (!e->inst)
		classify_unlisted(in, e);
	else
		classify_listed(in, e);
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
		 * a delete by name could hit the one kept: leave it */
		if (d == e->inst || (d->provider[0] && str_eq(d->provider, e->inst->provider)))
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

static int64_t desired_of(const struct plan_input *in, const struct plan_flavor *f, int64_t busy)
{
	int64_t min_idle = f->min_idle > 0 ? f->min_idle : 0;
	int64_t waiting = f->waiting_jobs > 0 ? f->waiting_jobs : 0;
	int64_t max = f->max > 0 ? f->max : 0;
	int64_t d;

	if (in->draining)
		return 0;
	d = sat_add(busy, min_idle > waiting ? min_idle : waiting);
	return d > max ? max : d;
}

static void collect_sources(const struct plan_input *in, struct src *v, size_t *ret_n)
{
	size_t n = 0;

	for (size_t i = 0; i < in->n_records; i++)
		if (name_is_owned(in->manager, in->records[i].name))
			v[n++] = (struct src){in->records[i].name, SRC_ROW, i};
	for (size_t i = 0; i < in->n_instances; i++)
		if (name_is_owned(in->manager, in->instances[i].name))
			v[n++] = (struct src){in->instances[i].name, SRC_INST, i};
	for (size_t i = 0; i < in->n_runners; i++)
		if (in->runners[i].name && name_is_owned(in->manager, in->runners[i].name))
			v[n++] = (struct src){in->runners[i].name, SRC_RUNNER, i};
	for (size_t i = 0; i < in->n_in_flight; i++)
		if (in->in_flight[i] && name_is_owned(in->manager, in->in_flight[i]))
			v[n++] = (struct src){in->in_flight[i], SRC_FLIGHT, i};
	qsort(v, n, sizeof(*v), src_cmp);
	*ret_n = n;
}

/* Group the sorted sources by name; extra rows or runners of one name are ignored. */
static size_t build_entries(const struct plan_input *in, const struct src *v, size_t n,
                            struct entry *ents)
{
	size_t n_ents = 0;

	for (size_t i = 0; i < n;) {
		struct entry *e = &ents[n_ents++];
		size_t j = i;

		memset(e, 0, sizeof(*e));
		e->name = v[i].name;
		for (; j < n && strcmp(v[j].name, e->name) == 0; j++) {
			const struct src *s = &v[j];

			switch (s->kind) {
			case SRC_ROW:
				if (!e->row)
					e->row = &in->records[s->idx];
				break;
			case SRC_INST: {
				const struct instance *x = &in->instances[s->idx];

				if (!e->insts)
					e->insts = s;
				e->n_insts++;
				/* sorted by index, so ">" keeps the first listed on a tie */
				if (!e->inst || x->created_at > e->inst->created_at)
					e->inst = x;
				break;
			}
			case SRC_RUNNER:
				if (!e->runner)
					e->runner = &in->runners[s->idx];
				break;
			case SRC_FLIGHT:
				e->in_flight = true;
				break;
			}
		}
		i = j;
	}
	return n_ents;
}

static void fill_view(struct plan_view *w, const struct entry *e)
{
	memset(w, 0, sizeof(*w));
	str_copy(w->name, e->name, sizeof(w->name));
	str_copy(w->flavor, e->flavor, sizeof(w->flavor));
	w->github_state = e->gh;
	w->cloud_state = e->cloud;
	w->health = e->health;
	w->created_at = e->created_at;
	w->runner_id = e->runner_id ? e->runner_id : e->row ? e->row->runner_id : 0;
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
	size_t n_srcs = 0, n_ents = 0, total;
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

	collect_sources(in, srcs, &n_srcs);
	n_ents = build_entries(in, srcs, n_srcs, ents);
	p.views = alloc_array(n_ents, sizeof(*p.views));
	if (!p.views)
		goto out;
	for (size_t i = 0; i < n_ents; i++) {
		classify(in, &ents[i]);
		fill_view(&p.views[i], &ents[i]);
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
		c->desired = desired_of(in, &in->flavors[f], c->busy);
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
		f = flavor_index(in, o.v[i].flavor);
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

void plan_release(struct plan *p)
{
	if (!p)
		return;
	free(p->actions);
	free(p->views);
	free(p->counts);
	*p = (struct plan){0};
}
