/*
 * The planner's first half: every owned name of the input joined by name
 * into one entry (its store row, listed instances, GitHub runner, whether
 * it is in flight) and classified: its GitHub and cloud state, its health,
 * the slot it holds in its flavor's pool, whether it may be a scale-down
 * victim, and the verdict of the cleanup rules. planner.c turns entries into
 * actions. Pure, like the rest of the planner: it must never do I/O, read
 * the clock, log, allocate or keep state between calls.
 *
 * Names. Only names owned by in->manager (name_is_owned: exactly
 * "<manager>-<12 hex>") are looked at; every other row, instance, runner or
 * in-flight name is ignored entirely, so manager "ci" never touches
 * "ci-east-...". Rows, instances and runners are joined by name.
 *
 * Completeness. GitHub state is UNKNOWN for everyone when the runner list
 * is incomplete (planner.c then emits no deletion).
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
 *   cannot be told apart by name, or carry the kept one's provider id: that
 *   is one instance listed by two providers looking at one backend (two
 *   openstack providers on one project). Both are left alone.
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
 *   extract_metrics, confirm_github when a runner is listed). It holds no
 *   slot. Its metrics are pulled as the delete it finishes would have:
 *   a job may have run since (the first attempt died before GitHub
 *   answered, the runner took a job, finished and left GitHub, and the
 *   retry's confirmation then finds it gone).
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
 */
#include "util/common.h"
#include "util/strutil.h"
#include "manager/planner_internal.h"

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

long planner_flavor_index(const struct plan_input *in, const char *name)
{
	if (!name || !*name)
		return -1;
	for (size_t i = 0; i < in->n_flavors; i++)
		if (str_eq(in->flavors[i].name, name))
			return (long)i;
	return -1;
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
			set_cleanup(e, ACTION_DELETE, WHY_RETRY, F_CONFIRM | F_METRICS);
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
			set_cleanup(e, ACTION_DELETE, WHY_RETRY, F_CONFIRM | F_METRICS);
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
		set_cleanup(e, ACTION_DELETE, WHY_RETRY, F_CONFIRM | F_METRICS);
		return;
	}
	e->slot = SLOT_PENDING;
	e->rank = RANK_BOOTING;
}

void planner_classify(const struct plan_input *in, struct entry *e)
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
	e->fl = planner_flavor_index(in, e->flavor);
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

size_t planner_join(const struct plan_input *in, struct src *srcs, struct entry *ents)
{
	size_t n_srcs = 0;

	collect_sources(in, srcs, &n_srcs);
	return build_entries(in, srcs, n_srcs, ents);
}

void planner_view(struct plan_view *w, const struct entry *e)
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
