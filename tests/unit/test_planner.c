/*
 * Unit tests of the planner (src/manager/planner.c), table-driven: each case
 * describes store rows, provider instances, GitHub runners and in-flight
 * names in a one-line-per-thing notation and lists EVERY action it expects
 * (any other action fails the case), plus views and counts to check. Every
 * plan is also checked against the invariants that must hold whatever the
 * input; the same invariants are then asserted over many pseudo-random
 * inputs (fixed seed). Nothing here does I/O.
 *
 * Notation (tokens separated by spaces; a bare number N is the owned name
 * "ci-%012d"; a token with a '-' is a literal name; ages are seconds before
 * NOW):
 *   setup:   flush-idle | flush-busy | drain | inst-partial | gh-partial | manager=X
 *   flavor:  NAME [min=N] [max=N] [wait=N]           (default: "small min=0 max=10")
 *   row:     NAME [f=FLAVOR] [creating|created|deleting] [age=N|t0] [seen] [busy=AGE] [rid=N]
 *            (default f=small created age=100)
 *   inst:    NAME [f=FLAVOR] [active|created|stopped|error|deleted|unknown] [age=N|t0] [pid=X]
 *            [prov=PROVIDER] [probe=ok|bad]
 *            (default f=small active age=100 pid=p<NAME>)
 *   runner:  NAME [idle|busy|offline|offbusy] [id=N]  (default idle, id 1000+N)
 *   expect:  CREATE FLAVOR N | ADOPT NAME [f=X] | FORGET NAME
 *            | RUNNER NAME WHY [rid|rid=N]
 *            | DELETE NAME WHY [metrics] [logs] [confirm] [noinst] [rid|rid=N] [pid=X]
 *            | view NAME [gh=S] [cloud=S] [health=S] [f=X] [rid=N] [created=AGE]
 *            | count FLAVOR [online=N] [offline=N] [busy=N] [idle=N] [unknown=N] [pending=N]
 *                           [desired=N] [creating=N] [deleting=N] [waiting=N]
 *            | order NAME... (their DELETEs come in this order) | blocked | views=N
 *   "rid" alone means the runner's default id (1000+N); flags not named are false.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/strutil.h"
#include "manager/planner.h"

#define NOW        1000000
#define BOOT       1200
#define JOBTO      21600
#define GRACE      120
#define MAXN       16
#define MAXF       4
#define TOK        128
#define NO_ACTIONS NULL

struct tcase {
	const char *name;
	const char *setup;
	const char *flavors[MAXF];
	const char *rows[MAXN];
	const char *insts[MAXN];
	const char *runners[MAXN];
	const char *flight[MAXN];
	const char *expect[24];
};

struct fixture {
	char manager[64];
	struct plan_flavor flavors[MAXF];
	char flavor_names[MAXF][64];
	struct store_instance rows[MAXN];
	struct instance insts[MAXN];
	struct plan_runner runners[MAXN];
	char runner_names[MAXN][TOK];
	char flight_names[MAXN][TOK];
	const char *flight[MAXN];
	struct plan_input in;
};

/* ---- names for messages (the real ones live in the store/provider modules) ---- */

static const char *gh_name(enum github_state s)
{
	static const char *const v[] = {"absent", "idle", "busy", "offline", "unknown"};
	return (size_t)s < ARRAY_SIZE(v) ? v[s] : "?";
}

static const char *cloud_name(enum cloud_state s)
{
	static const char *const v[] = {"created", "active",  "stopped",
	                                "error",   "deleted", "unknown"};
	return (size_t)s < ARRAY_SIZE(v) ? v[s] : "?";
}

static const char *health_str(enum health h)
{
	static const char *const v[] = {"unknown", "healthy", "unhealthy"};
	return (size_t)h < ARRAY_SIZE(v) ? v[h] : "?";
}

static void describe(const struct action *a, char *out, size_t cap)
{
	snprintf(out, cap,
	         "%s %s why=%s flavor=%s count=%" PRId64 " rid=%" PRId64 " pid=%s%s%s%s%s",
	         action_kind_name(a->kind), a->name, delete_reason_name(a->why), a->flavor,
	         a->count, a->runner_id, a->provider_id, a->extract_metrics ? " metrics" : "",
	         a->pull_logs ? " logs" : "", a->confirm_github ? " confirm" : "",
	         a->delete_instance ? " inst" : "");
}

static void dump_plan(const struct plan *p)
{
	char d[512];

	for (size_t i = 0; i < p->n_actions; i++) {
		describe(&p->actions[i], d, sizeof(d));
		print_message("  action %zu: %s\n", i, d);
	}
}

/* ---- the notation ---- */

static bool next_tok(const char **p, char *tok, size_t cap)
{
	const char *s = *p;
	size_t n = 0;

	while (*s == ' ')
		s++;
	if (!*s)
		return false;
	while (*s && *s != ' ') {
		if (n + 1 < cap)
			tok[n++] = *s;
		s++;
	}
	tok[n] = '\0';
	*p = s;
	return true;
}

/* "key=value" -> value, else NULL */
static const char *kv(const char *tok, const char *key)
{
	size_t n = strlen(key);

	if (strncmp(tok, key, n) == 0 && tok[n] == '=')
		return tok + n + 1;
	return NULL;
}

static int64_t num(const char *s)
{
	int64_t v = 0;

	if (parse_int64(s, INT64_MIN, INT64_MAX, &v) < 0)
		fail_msg("bad number '%s'", s);
	return v;
}

static void name_of(const char *tok, char *out, size_t cap)
{
	if (strchr(tok, '-'))
		str_copy(out, tok, cap);
	else
		snprintf(out, cap, "ci-%012" PRId64, num(tok));
}

/* The default runner id of a name: 1000 + its decimal suffix. */
static int64_t rid_of(const char *name)
{
	const char *dash = strrchr(name, '-');
	int64_t v = 0;

	if (!dash || parse_int64(dash + 1, 0, INT64_MAX / 2, &v) < 0)
		return 999;
	return 1000 + v;
}

static int64_t age_to_time(const char *v)
{
	return NOW - num(v);
}

static void parse_flavor(struct fixture *fx, size_t i, const char *line)
{
	struct plan_flavor *f = &fx->flavors[i];
	char tok[TOK];
	const char *v;

	next_tok(&line, tok, sizeof(tok));
	str_copy(fx->flavor_names[i], tok, sizeof(fx->flavor_names[i]));
	*f = (struct plan_flavor){.name = fx->flavor_names[i], .max = 10};
	while (next_tok(&line, tok, sizeof(tok))) {
		if ((v = kv(tok, "min")))
			f->min_idle = num(v);
		else if ((v = kv(tok, "max")))
			f->max = num(v);
		else if ((v = kv(tok, "wait")))
			f->waiting_jobs = num(v);
		else
			fail_msg("flavor: bad token '%s'", tok);
	}
}

static void parse_row(struct store_instance *r, const char *line)
{
	char tok[TOK];
	const char *v;

	memset(r, 0, sizeof(*r));
	next_tok(&line, tok, sizeof(tok));
	name_of(tok, r->name, sizeof(r->name));
	str_copy(r->flavor, "small", sizeof(r->flavor));
	str_copy(r->provider, "test", sizeof(r->provider));
	r->phase = PHASE_CREATED;
	r->created_at = NOW - 100;
	r->cloud_state = CLOUD_ACTIVE;
	r->github_state = GH_ABSENT;
	while (next_tok(&line, tok, sizeof(tok))) {
		if ((v = kv(tok, "f")))
			str_copy(r->flavor, v, sizeof(r->flavor));
		else if (!strcmp(tok, "creating"))
			r->phase = PHASE_CREATING;
		else if (!strcmp(tok, "created"))
			r->phase = PHASE_CREATED;
		else if (!strcmp(tok, "deleting"))
			r->phase = PHASE_DELETING;
		else if ((v = kv(tok, "age")))
			r->created_at = age_to_time(v);
		else if (!strcmp(tok, "t0"))
			r->created_at = 0;
		else if (!strcmp(tok, "seen"))
			r->seen_on_github = true;
		else if ((v = kv(tok, "busy")))
			r->busy_since = age_to_time(v);
		else if ((v = kv(tok, "rid")))
			r->runner_id = num(v);
		else
			fail_msg("row: bad token '%s'", tok);
	}
}

static bool cloud_of(const char *tok, enum cloud_state *ret)
{
	static const char *const v[] = {"created", "active",  "stopped",
	                                "error",   "deleted", "unknown"};

	for (size_t i = 0; i < ARRAY_SIZE(v); i++)
		if (!strcmp(tok, v[i])) {
			*ret = (enum cloud_state)i;
			return true;
		}
	return false;
}

static void parse_inst(struct instance *x, const char *line)
{
	char tok[TOK];
	const char *v;

	memset(x, 0, sizeof(*x));
	next_tok(&line, tok, sizeof(tok));
	name_of(tok, x->name, sizeof(x->name));
	snprintf(x->provider_id, sizeof(x->provider_id), "p%s", tok);
	str_copy(x->flavor, "small", sizeof(x->flavor));
	x->state = CLOUD_ACTIVE;
	x->created_at = NOW - 100;
	while (next_tok(&line, tok, sizeof(tok))) {
		if ((v = kv(tok, "f")))
			str_copy(x->flavor, v, sizeof(x->flavor));
		else if (cloud_of(tok, &x->state))
			;
		else if ((v = kv(tok, "age")))
			x->created_at = age_to_time(v);
		else if (!strcmp(tok, "t0"))
			x->created_at = 0;
		else if ((v = kv(tok, "pid")))
			str_copy(x->provider_id, v, sizeof(x->provider_id));
		else if ((v = kv(tok, "prov")))
			str_copy(x->provider, v, sizeof(x->provider));
		else if ((v = kv(tok, "probe")) && !strcmp(v, "bad"))
			x->probe = HEALTH_UNHEALTHY;
		else if ((v = kv(tok, "probe")) && !strcmp(v, "ok"))
			x->probe = HEALTH_HEALTHY;
		else
			fail_msg("inst: bad token '%s'", tok);
	}
}

static void parse_runner(struct plan_runner *r, char *name, size_t cap, const char *line)
{
	char tok[TOK];
	const char *v;

	next_tok(&line, tok, sizeof(tok));
	name_of(tok, name, cap);
	*r = (struct plan_runner){.id = rid_of(name), .name = name, .online = true};
	while (next_tok(&line, tok, sizeof(tok))) {
		if (!strcmp(tok, "idle"))
			r->online = true, r->busy = false;
		else if (!strcmp(tok, "busy"))
			r->online = true, r->busy = true;
		else if (!strcmp(tok, "offline"))
			r->online = false, r->busy = false;
		else if (!strcmp(tok, "offbusy"))
			r->online = false, r->busy = true;
		else if ((v = kv(tok, "id")))
			r->id = num(v);
		else
			fail_msg("runner: bad token '%s'", tok);
	}
}

static void build(const struct tcase *tc, struct fixture *fx)
{
	struct plan_input *in = &fx->in;
	const char *s = tc->setup ? tc->setup : "";
	char tok[TOK];
	const char *v;

	memset(fx, 0, sizeof(*fx));
	str_copy(fx->manager, "ci", sizeof(fx->manager));
	in->now = NOW;
	in->bootstrap_timeout = BOOT;
	in->job_timeout = JOBTO;
	in->health_grace = GRACE;
	in->instances_complete = true;
	in->runners_complete = true;
	while (next_tok(&s, tok, sizeof(tok))) {
		if (!strcmp(tok, "flush-idle"))
			in->mode = PLAN_FLUSH_IDLE;
		else if (!strcmp(tok, "flush-busy"))
			in->mode = PLAN_FLUSH_BUSY;
		else if (!strcmp(tok, "drain"))
			in->draining = true;
		else if (!strcmp(tok, "inst-partial"))
			in->instances_complete = false;
		else if (!strcmp(tok, "gh-partial"))
			in->runners_complete = false;
		else if ((v = kv(tok, "manager")))
			str_copy(fx->manager, v, sizeof(fx->manager));
		else
			fail_msg("setup: bad token '%s'", tok);
	}
	in->manager = fx->manager;

	if (!tc->flavors[0])
		parse_flavor(fx, in->n_flavors++, "small min=0 max=10");
	for (size_t i = 0; i < MAXF && tc->flavors[i]; i++)
		parse_flavor(fx, in->n_flavors++, tc->flavors[i]);
	for (size_t i = 0; i < MAXN && tc->rows[i]; i++)
		parse_row(&fx->rows[in->n_records++], tc->rows[i]);
	for (size_t i = 0; i < MAXN && tc->insts[i]; i++)
		parse_inst(&fx->insts[in->n_instances++], tc->insts[i]);
	for (size_t i = 0; i < MAXN && tc->runners[i]; i++) {
		parse_runner(&fx->runners[i], fx->runner_names[i], TOK, tc->runners[i]);
		in->n_runners++;
	}
	for (size_t i = 0; i < MAXN && tc->flight[i]; i++) {
		const char *p = tc->flight[i];

		next_tok(&p, tok, sizeof(tok));
		name_of(tok, fx->flight_names[i], TOK);
		fx->flight[i] = fx->flight_names[i];
		in->n_in_flight++;
	}
	in->flavors = fx->flavors;
	in->records = fx->rows;
	in->instances = fx->insts;
	in->runners = fx->runners;
	in->in_flight = fx->flight;
}

/* ---- invariants that hold for any input ---- */

static const struct plan_runner *find_runner(const struct plan_input *in, const char *name)
{
	for (size_t i = 0; i < in->n_runners; i++)
		if (!strcmp(in->runners[i].name, name))
			return &in->runners[i];
	return NULL;
}

static const struct store_instance *find_row(const struct plan_input *in, const char *name)
{
	for (size_t i = 0; i < in->n_records; i++)
		if (!strcmp(in->records[i].name, name))
			return &in->records[i];
	return NULL;
}

/* The newest listed instance of a name (first listed on a tie), and how many. */
static const struct instance *newest_inst(const struct plan_input *in, const char *name,
                                          size_t *ret_n)
{
	const struct instance *best = NULL;
	size_t n = 0;

	for (size_t i = 0; i < in->n_instances; i++) {
		const struct instance *x = &in->instances[i];

		if (strcmp(x->name, name))
			continue;
		n++;
		if (!best || x->created_at > best->created_at)
			best = x;
	}
	*ret_n = n;
	return best;
}

static bool is_in_flight(const struct plan_input *in, const char *name)
{
	for (size_t i = 0; i < in->n_in_flight; i++)
		if (!strcmp(in->in_flight[i], name))
			return true;
	return false;
}

static bool is_deletion(enum action_kind k)
{
	return k == ACTION_DELETE || k == ACTION_DELETE_RUNNER || k == ACTION_FORGET;
}

/*
 * Slots of flavor f that the planner must count whatever it decides: names
 * in flight with a row of f, and names not in flight with one active
 * instance of f whose runner is listed idle or busy on a complete list.
 */
static int64_t certain_slots(const struct plan_input *in, const char *flavor)
{
	int64_t n = 0;

	for (size_t i = 0; i < in->n_in_flight; i++) {
		const char *name = in->in_flight[i];
		const struct store_instance *r = find_row(in, name);
		bool dup = false;

		for (size_t k = 0; k < i; k++)
			dup |= !strcmp(in->in_flight[k], name);
		if (!dup && r && name_is_owned(in->manager, name) && str_eq(r->flavor, flavor))
			n++;
	}
	for (size_t i = 0; i < in->n_instances; i++) {
		const struct instance *x = &in->instances[i];
		const struct store_instance *r = find_row(in, x->name);
		const struct plan_runner *g = find_runner(in, x->name);
		const char *fl = r && r->flavor[0] ? r->flavor : x->flavor;
		size_t dup;

		if (!name_is_owned(in->manager, x->name) || is_in_flight(in, x->name))
			continue;
		newest_inst(in, x->name, &dup);
		if (dup != 1 || strcmp(fl, flavor) || (r && r->phase == PHASE_DELETING))
			continue;
		if (x->state != CLOUD_ACTIVE && x->state != CLOUD_CREATED)
			continue;
		if (in->runners_complete && g && (g->online || g->busy))
			n++;
	}
	return n;
}

static void check_invariants(const struct plan_input *in, const struct plan *p)
{
	bool flush_busy = in->mode == PLAN_FLUSH_BUSY;
	bool partial = !in->instances_complete || !in->runners_complete;
	bool seen_other = false, seen_create = false;
	char d[512];

	assert_int_equal(p->n_counts, in->n_flavors);
	if (flush_busy)
		assert_false(p->deletions_blocked);
	else
		assert_int_equal(p->deletions_blocked, partial);

	for (size_t i = 0; i < p->n_actions; i++) {
		const struct action *a = &p->actions[i];
		const struct plan_runner *g;
		const struct instance *x;
		size_t n_dup;

		describe(a, d, sizeof(d));
		/* order: adopts first, creates last */
		if (a->kind == ACTION_ADOPT && seen_other)
			fail_msg("ADOPT after another action: %s", d);
		if (a->kind != ACTION_ADOPT)
			seen_other = true;
		if (a->kind != ACTION_CREATE && seen_create)
			fail_msg("action after a CREATE: %s", d);
		if (a->kind == ACTION_CREATE) {
			seen_create = true;
			if (a->name[0] || a->count <= 0)
				fail_msg("bad create: %s", d);
			if (in->mode != PLAN_NORMAL || in->draining)
				fail_msg("create in a flush or drain: %s", d);
			continue;
		}
		if (!name_is_owned(in->manager, a->name))
			fail_msg("action on a name we do not own: %s", d);
		if (is_in_flight(in, a->name))
			fail_msg("action on an in-flight name: %s", d);
		for (size_t j = 0; j < i; j++) {
			const struct action *b = &p->actions[j];

			if (strcmp(a->name, b->name) || b->kind == ACTION_CREATE)
				continue;
			if (a->kind == ACTION_ADOPT && b->kind == ACTION_ADOPT)
				fail_msg("two adopts: %s", d);
			if (is_deletion(a->kind) && is_deletion(b->kind) &&
			    a->why != WHY_DUPLICATE && b->why != WHY_DUPLICATE)
				fail_msg("two deletions of one name: %s", d);
		}
		if (!is_deletion(a->kind))
			continue;
		if (partial && !flush_busy)
			fail_msg("deletion while a list is partial: %s", d);
		if (flush_busy || a->why == WHY_DUPLICATE)
			continue;
		g = find_runner(in, a->name);
		if (!g || !g->busy)
			continue;
		if (a->kind == ACTION_DELETE_RUNNER)
			fail_msg("busy runner deleted on GitHub: %s", d);
		x = newest_inst(in, a->name, &n_dup);
		if (a->kind == ACTION_DELETE && x && x->state != CLOUD_ERROR &&
		    x->state != CLOUD_STOPPED && x->state != CLOUD_DELETED)
			fail_msg("busy runner deleted with its live instance: %s", d);
	}

	for (size_t f = 0; f < in->n_flavors; f++) {
		const struct plan_flavor_count *c = &p->counts[f];
		int64_t max = in->flavors[f].max > 0 ? in->flavors[f].max : 0;
		int64_t current = c->busy + c->idle + c->pending + c->unknown;
		int64_t created = 0, scaled = 0;

		assert_string_equal(c->name, in->flavors[f].name);
		for (size_t i = 0; i < p->n_actions; i++) {
			const struct action *a = &p->actions[i];

			if (a->kind == ACTION_CREATE && !strcmp(a->flavor, c->name)) {
				if (created)
					fail_msg("two creates for flavor %s", c->name);
				created += a->count;
			}
			if (a->kind == ACTION_DELETE && !strcmp(a->flavor, c->name) &&
			    (a->why == WHY_SCALE_DOWN || a->why == WHY_DRAIN))
				scaled++;
		}
		assert_int_equal(created, c->creating);
		if (created && created + current > max)
			fail_msg("flavor %s: create %" PRId64 " + current %" PRId64
			         " above max %" PRId64,
			         c->name, created, current, max);
		if (created && created + certain_slots(in, c->name) > max)
			fail_msg("flavor %s: create %" PRId64 " pushes certain slots above max",
			         c->name, created);
		if (c->desired < 0 || c->desired > max)
			fail_msg("flavor %s: desired %" PRId64 " out of range", c->name,
			         c->desired);
		if (scaled > 0 && scaled > current - c->desired)
			fail_msg("flavor %s: scaled down %" PRId64 " below desired", c->name,
			         scaled);
	}
}

/* ---- checking expectations ---- */

struct expect_action {
	struct action a;
	bool check_flavor;
	bool check_provider;
};

static bool why_of(const char *tok, enum delete_reason *ret)
{
	for (int w = WHY_NONE; w <= WHY_DEAD; w++)
		if (!strcmp(tok, delete_reason_name((enum delete_reason)w))) {
			*ret = (enum delete_reason)w;
			return true;
		}
	return false;
}

static bool parse_expect_action(const char *line, struct expect_action *ret)
{
	struct action *a = &ret->a;
	char tok[TOK], verb[TOK];
	const char *v;

	memset(ret, 0, sizeof(*ret));
	next_tok(&line, verb, sizeof(verb));
	if (!strcmp(verb, "CREATE")) {
		a->kind = ACTION_CREATE;
		next_tok(&line, tok, sizeof(tok));
		str_copy(a->flavor, tok, sizeof(a->flavor));
		next_tok(&line, tok, sizeof(tok));
		a->count = num(tok);
		ret->check_flavor = true;
		return true;
	}
	if (!strcmp(verb, "ADOPT"))
		a->kind = ACTION_ADOPT, ret->check_flavor = true;
	else if (!strcmp(verb, "FORGET"))
		a->kind = ACTION_FORGET;
	else if (!strcmp(verb, "RUNNER"))
		a->kind = ACTION_DELETE_RUNNER;
	else if (!strcmp(verb, "DELETE"))
		a->kind = ACTION_DELETE, a->delete_instance = true;
	else
		return false;
	next_tok(&line, tok, sizeof(tok));
	name_of(tok, a->name, sizeof(a->name));
	if (a->kind == ACTION_ADOPT)
		str_copy(a->flavor, "small", sizeof(a->flavor));
	if (a->kind == ACTION_DELETE || a->kind == ACTION_DELETE_RUNNER) {
		next_tok(&line, tok, sizeof(tok));
		if (!why_of(tok, &a->why))
			fail_msg("expect: bad reason '%s'", tok);
	}
	while (next_tok(&line, tok, sizeof(tok))) {
		if (!strcmp(tok, "metrics"))
			a->extract_metrics = true;
		else if (!strcmp(tok, "logs"))
			a->pull_logs = true;
		else if (!strcmp(tok, "confirm"))
			a->confirm_github = true;
		else if (!strcmp(tok, "noinst"))
			a->delete_instance = false;
		else if (!strcmp(tok, "rid"))
			a->runner_id = rid_of(a->name);
		else if ((v = kv(tok, "rid")))
			a->runner_id = num(v);
		else if ((v = kv(tok, "pid")))
			str_copy(a->provider_id, v, sizeof(a->provider_id));
		else if ((v = kv(tok, "f")))
			str_copy(a->flavor, v, sizeof(a->flavor)), ret->check_flavor = true;
		else if ((v = kv(tok, "prov")))
			str_copy(a->provider, v, sizeof(a->provider)), ret->check_provider = true;
		else
			fail_msg("expect: bad token '%s'", tok);
	}
	return true;
}

static bool action_matches(const struct expect_action *e, const struct action *a)
{
	const struct action *x = &e->a;

	return x->kind == a->kind && !strcmp(x->name, a->name) && x->why == a->why &&
	       x->count == a->count && x->runner_id == a->runner_id &&
	       x->extract_metrics == a->extract_metrics && x->pull_logs == a->pull_logs &&
	       x->confirm_github == a->confirm_github && x->delete_instance == a->delete_instance &&
	       !strcmp(x->provider_id, a->provider_id) &&
	       (!e->check_flavor || !strcmp(x->flavor, a->flavor)) &&
	       (!e->check_provider || !strcmp(x->provider, a->provider));
}

static const struct plan_view *find_view(const struct plan *p, const char *name)
{
	for (size_t i = 0; i < p->n_views; i++)
		if (!strcmp(p->views[i].name, name))
			return &p->views[i];
	return NULL;
}

static void check_view(const struct plan *p, const char *line)
{
	char tok[TOK], name[TOK];
	const struct plan_view *w;
	const char *v;

	next_tok(&line, tok, sizeof(tok)); /* "view" */
	next_tok(&line, tok, sizeof(tok));
	name_of(tok, name, sizeof(name));
	w = find_view(p, name);
	if (!w)
		fail_msg("no view for %s", name);
	while (next_tok(&line, tok, sizeof(tok))) {
		if ((v = kv(tok, "gh")))
			assert_string_equal(gh_name(w->github_state), v);
		else if ((v = kv(tok, "cloud")))
			assert_string_equal(cloud_name(w->cloud_state), v);
		else if ((v = kv(tok, "health")))
			assert_string_equal(health_str(w->health), v);
		else if ((v = kv(tok, "f")))
			assert_string_equal(w->flavor, v);
		else if ((v = kv(tok, "rid")))
			assert_int_equal(w->runner_id, num(v));
		else if ((v = kv(tok, "created")))
			assert_int_equal(w->created_at, age_to_time(v));
		else
			fail_msg("view: bad token '%s'", tok);
	}
}

static void check_count(const struct plan *p, const char *line)
{
	static const char *const keys[] = {"online",  "offline", "busy",     "idle",     "unknown",
	                                   "pending", "desired", "creating", "deleting", "waiting"};
	char tok[TOK], fl[TOK];
	const struct plan_flavor_count *c = NULL;

	next_tok(&line, tok, sizeof(tok)); /* "count" */
	next_tok(&line, fl, sizeof(fl));
	for (size_t i = 0; i < p->n_counts; i++)
		if (!strcmp(p->counts[i].name, fl))
			c = &p->counts[i];
	if (!c)
		fail_msg("no count for flavor %s", fl);
	while (next_tok(&line, tok, sizeof(tok))) {
		const int64_t got[] = {c->online,   c->offline, c->busy,    c->idle,
		                       c->unknown,  c->pending, c->desired, c->creating,
		                       c->deleting, c->waiting};
		bool found = false;

		for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
			const char *v = kv(tok, keys[k]);

			if (!v)
				continue;
			found = true;
			if (got[k] != num(v))
				fail_msg("count %s %s: got %" PRId64 ", want %s", fl, keys[k],
				         got[k], v);
		}
		if (!found)
			fail_msg("count: bad token '%s'", tok);
	}
}

static void check_order(const struct plan *p, const char *line)
{
	char tok[TOK], name[TOK];
	size_t last = 0;
	bool first = true;

	next_tok(&line, tok, sizeof(tok)); /* "order" */
	while (next_tok(&line, tok, sizeof(tok))) {
		size_t at = SIZE_MAX;

		name_of(tok, name, sizeof(name));
		for (size_t i = 0; i < p->n_actions; i++)
			if (p->actions[i].kind == ACTION_DELETE &&
			    !strcmp(p->actions[i].name, name))
				at = i;
		if (at == SIZE_MAX)
			fail_msg("order: no DELETE of %s", name);
		if (!first && at < last)
			fail_msg("order: %s deleted too early", name);
		last = at;
		first = false;
	}
}

static void check_expectations(const struct tcase *tc, const struct plan *p)
{
	bool used[256] = {false};
	bool want_blocked = false;
	char d[512];

	assert_true(p->n_actions < ARRAY_SIZE(used));
	for (size_t i = 0; i < ARRAY_SIZE(tc->expect) && tc->expect[i]; i++) {
		const char *line = tc->expect[i];
		struct expect_action e;
		const char *v;
		size_t j;

		if (!strncmp(line, "view ", 5)) {
			check_view(p, line);
			continue;
		}
		if (!strncmp(line, "count ", 6)) {
			check_count(p, line);
			continue;
		}
		if (!strncmp(line, "order ", 6)) {
			check_order(p, line);
			continue;
		}
		if (!strcmp(line, "blocked")) {
			want_blocked = true;
			continue;
		}
		if ((v = kv(line, "views"))) {
			assert_int_equal(p->n_views, num(v));
			continue;
		}
		if (!parse_expect_action(line, &e))
			fail_msg("bad expectation '%s'", line);
		for (j = 0; j < p->n_actions; j++)
			if (!used[j] && action_matches(&e, &p->actions[j]))
				break;
		if (j == p->n_actions) {
			dump_plan(p);
			fail_msg("expected action not found: %s", line);
		}
		used[j] = true;
	}
	for (size_t j = 0; j < p->n_actions; j++) {
		if (used[j])
			continue;
		dump_plan(p);
		describe(&p->actions[j], d, sizeof(d));
		fail_msg("unexpected action: %s", d);
	}
	assert_int_equal(p->deletions_blocked, want_blocked);
}

static void plan_of(const struct fixture *fx, struct plan *p)
{
	assert_int_equal(planner_plan(&fx->in, p), 0);
	check_invariants(&fx->in, p);
}

static void run_case(void **state)
{
	const struct tcase *tc = *state;
	struct fixture fx;
	struct plan p;

	build(tc, &fx);
	plan_of(&fx, &p);
	check_expectations(tc, &p);
	plan_release(&p);
}

/* ---- the table ---- */

static const struct tcase cases[] = {
        /* dangling */
        {.name = "dangling idle runner is deleted on GitHub",
         .runners = {"1 idle"},
         .expect = {"RUNNER 1 dangling rid", "view 1 gh=idle cloud=deleted health=unhealthy",
                    "views=1"}},
        {.name = "dangling offline runner is deleted on GitHub",
         .runners = {"1 offline"},
         .expect = {"RUNNER 1 dangling rid"}},
        {.name = "busy dangling runner is left for a later pass (GitHub answers 422)",
         .runners = {"1 busy"},
         .expect = {"view 1 gh=busy health=unhealthy"}},
        {.name = "dangling runner is kept while the instance list is partial",
         .setup = "inst-partial",
         .runners = {"1 idle"},
         .expect = {"blocked", "view 1 gh=idle cloud=unknown health=unknown"}},

        /* in flight */
        {.name = "in-flight create whose JIT runner is listed is pending, not dangling",
         .flavors = {"small min=1 max=3"},
         .rows = {"1 creating age=5"},
         .runners = {"1 offline"},
         .flight = {"1"},
         .expect = {"count small pending=1 offline=1 desired=1 creating=0",
                    "view 1 gh=offline cloud=created health=healthy"}},
        {.name = "in-flight runner without row or instance is never dangling",
         .runners = {"1 idle"},
         .flight = {"1"},
         .expect = {"view 1 gh=idle"}},
        {.name = "in-flight creates count toward the pool",
         .flavors = {"small min=3 max=5"},
         .rows = {"1 creating age=5", "2 creating age=5"},
         .flight = {"1", "2"},
         .expect = {"CREATE small 1", "count small pending=2 desired=3 creating=1"}},
        {.name = "in-flight creates fill the pool: no over-create",
         .flavors = {"small min=2 max=2"},
         .rows = {"1 creating age=5", "2 creating age=5"},
         .flight = {"1", "2"},
         .expect = {"count small pending=2 desired=2 creating=0"}},
        {.name = "in-flight names are never deleted, not even by a busy flush",
         .setup = "flush-busy",
         .rows = {"1 creating age=5"},
         .insts = {"1 error"},
         .runners = {"1 busy"},
         .flight = {"1"},
         .expect = {NO_ACTIONS}},
        {.name = "in-flight surplus is not a scale-down victim",
         .rows = {"1 creating"},
         .insts = {"1"},
         .runners = {"1 idle"},
         .flight = {"1"},
         .expect = {"count small pending=1 desired=0"}},

        /* adoption */
        {.name = "an instance without a row is adopted and counted",
         .flavors = {"small min=1 max=3"},
         .insts = {"5 age=100"},
         .runners = {"5 idle"},
         .expect = {"ADOPT 5", "count small idle=1 desired=1",
                    "view 5 gh=idle cloud=active health=healthy created=100"}},
        {.name = "an adopted instance of a flavor not configured is surplus",
         .insts = {"5 f=gone"},
         .runners = {"5 idle"},
         .expect = {"ADOPT 5 f=gone", "DELETE 5 scale_down metrics confirm rid"}},
        {.name = "an adopted instance with no flavor is surplus",
         .insts = {"5 f="},
         .expect = {"ADOPT 5 f=", "DELETE 5 scale_down metrics"}},
        {.name = "an adopted instance whose runner never appeared is an orphan after the timeout",
         .flavors = {"small min=1 max=3"},
         .insts = {"5 age=1201"},
         .expect = {"ADOPT 5", "DELETE 5 orphan metrics logs", "CREATE small 1"}},
        {.name = "adoption still happens while a list is partial",
         .setup = "inst-partial",
         .flavors = {"small min=1 max=3"},
         .insts = {"5"},
         .runners = {"5 idle"},
         .expect = {"ADOPT 5", "blocked", "count small idle=1"}},

        /* rows whose instance is not listed */
        {.name = "a stale CREATING row after a crash is deleted (idempotently)",
         .rows = {"1 creating age=50"},
         .expect = {"DELETE 1 stale", "view 1 cloud=deleted gh=absent health=unhealthy"}},
        {.name = "a stale CREATING row with a registered JIT runner: runner and instance go",
         .flavors = {"small min=1 max=3"},
         .rows = {"1 creating age=50"},
         .runners = {"1 offline"},
         .expect = {"DELETE 1 stale rid", "CREATE small 1"}},
        {.name = "a CREATED row whose instance vanished is deleted even if GitHub says busy",
         .rows = {"1 seen"},
         .runners = {"1 busy"},
         .expect = {"DELETE 1 vanished rid", "count small busy=0 online=1 deleting=1"}},
        {.name = "a DELETING row with nothing left is forgotten",
         .rows = {"1 deleting"},
         .expect = {"FORGET 1"}},
        {.name = "a DELETING row whose runner is still listed: the runner delete is retried",
         .rows = {"1 deleting"},
         .runners = {"1 offline"},
         .expect = {"DELETE 1 retry rid"}},
        {.name = "a DELETING row, instance gone, runner busy: retried (the instance is gone)",
         .rows = {"1 deleting seen"},
         .runners = {"1 busy"},
         .expect = {"DELETE 1 retry rid"}},

        /* DELETING rows with an instance */
        {.name = "a DELETING row with its idle instance is retried with confirmation",
         .flavors = {"small min=1 max=3"},
         .rows = {"1 deleting seen"},
         .insts = {"1"},
         .runners = {"1 idle"},
         .expect = {"DELETE 1 retry confirm metrics rid", "CREATE small 1"}},
        /* regression (test_chaos): a flush killed after marking the row, its
         * retry confirmed by a 404 once the runner had run a job and left:
         * the instance went without its job's metrics */
        {.name = "a retried delete pulls the instance's metrics first, as the one it finishes "
                 "would have",
         .rows = {"1 deleting seen", "2 deleting", "3 deleting seen"},
         .insts = {"1", "2", "3"},
         .runners = {"1 idle", "2 offline"},
         .expect = {"DELETE 1 retry confirm metrics rid", "DELETE 2 retry confirm metrics rid",
                    "DELETE 3 finished metrics"}},
        {.name = "a retried delete with GitHub's list failed pulls metrics too (when deletes run)",
         .setup = "flush-busy gh-partial",
         .rows = {"1 deleting seen rid=5"},
         .insts = {"1"},
         .expect = {"DELETE 1 retry metrics rid=5"}},
        {.name = "a DELETING row whose runner became busy is kept and counted busy",
         .rows = {"1 deleting seen"},
         .insts = {"1"},
         .runners = {"1 busy"},
         .expect = {"count small busy=1 desired=1"}},

        /* cloud state */
        {.name = "an instance in error is deleted at once, busy or not",
         .flavors = {"small min=1 max=3"},
         .rows = {"1 seen"},
         .insts = {"1 error"},
         .runners = {"1 busy"},
         .expect = {"DELETE 1 error metrics logs rid", "CREATE small 1",
                    "view 1 cloud=error health=unhealthy"}},
        {.name = "a stopped instance is deleted at once",
         .rows = {"1 seen"},
         .insts = {"1 stopped"},
         .expect = {"DELETE 1 stopped metrics", "view 1 cloud=stopped health=unhealthy"}},
        {.name = "a stopped instance whose runner is still registered: its logs are saved",
         .rows = {"1 seen"},
         .insts = {"1 stopped"},
         .runners = {"1 offline"},
         .expect = {"DELETE 1 stopped metrics logs rid", "view 1 cloud=stopped health=unhealthy"}},
        {.name = "a stopped instance whose runner never appeared: its logs are saved",
         .rows = {"1"},
         .insts = {"1 stopped"},
         .expect = {"DELETE 1 stopped metrics logs", "view 1 cloud=stopped health=unhealthy"}},
        {.name = "an instance listed as deleted is treated as vanished",
         .rows = {"1 seen"},
         .insts = {"1 deleted"},
         .runners = {"1 offline"},
         .expect = {"DELETE 1 vanished rid"}},
        {.name = "an instance in unknown cloud state is treated as running",
         .flavors = {"small min=1 max=3"},
         .rows = {"1 seen"},
         .insts = {"1 unknown"},
         .runners = {"1 idle"},
         .expect = {"count small idle=1", "view 1 cloud=unknown health=healthy"}},

        /* GitHub state */
        {.name = "finished: a runner seen earlier and absent now is deleted at once",
         .flavors = {"small min=1 max=3"},
         .rows = {"1 seen age=30"},
         .insts = {"1 age=30"},
         .expect = {"DELETE 1 finished metrics", "CREATE small 1",
                    "count small pending=0 deleting=1 creating=1"}},
        {.name = "orphan: kept at exactly the bootstrap timeout",
         .flavors = {"small min=1 max=3"},
         .rows = {"1 age=1200"},
         .insts = {"1 age=1200"},
         .expect = {"count small pending=1 desired=1", "view 1 gh=absent health=healthy"}},
        {.name = "orphan: deleted one second after the bootstrap timeout",
         .flavors = {"small min=1 max=3"},
         .rows = {"1 age=1201"},
         .insts = {"1 age=1201"},
         .expect = {"DELETE 1 orphan metrics logs", "CREATE small 1", "view 1 health=unhealthy"}},
        {.name = "the bootstrap timeout runs from the row's created_at",
         .rows = {"1 age=1300"},
         .insts = {"1 age=100"},
         .expect = {"DELETE 1 orphan metrics logs"}},
        {.name = "an unknown created_at counts as past the bootstrap timeout",
         .rows = {"1 t0"},
         .insts = {"1 t0"},
         .expect = {"DELETE 1 orphan metrics logs"}},
        {.name = "offline past the bootstrap timeout: runner and instance go, GitHub first",
         .rows = {"1 age=1201"},
         .insts = {"1 age=1201"},
         .runners = {"1 offline"},
         .expect = {"DELETE 1 offline confirm metrics logs rid",
                    "view 1 gh=offline health=unhealthy"}},
        {.name = "offline within the bootstrap timeout is booting",
         .flavors = {"small min=1 max=3"},
         .rows = {"1 age=1200"},
         .insts = {"1 age=1200"},
         .runners = {"1 offline"},
         .expect = {"count small pending=1 offline=1", "view 1 health=healthy"}},
        {.name = "offline but busy (lost its connection mid-job) is busy and kept",
         .rows = {"1 seen age=9000"},
         .insts = {"1 age=9000"},
         .runners = {"1 offbusy"},
         .expect = {"count small busy=1 offline=1 desired=1", "view 1 gh=busy"}},
        {.name = "stuck busy past the job timeout is unhealthy but kept",
         .rows = {"1 seen age=30000 busy=21601"},
         .insts = {"1 age=30000"},
         .runners = {"1 busy"},
         .expect = {"view 1 gh=busy health=unhealthy", "count small busy=1"}},
        {.name = "busy for exactly the job timeout is healthy",
         .rows = {"1 seen age=30000 busy=21600"},
         .insts = {"1 age=30000"},
         .runners = {"1 busy"},
         .expect = {"view 1 gh=busy health=healthy rid=1001"}},

        /* the provider's health probe */
        {.name = "a booting instance whose runner died (probe) past the grace is dead",
         .rows = {"1 age=300"},
         .insts = {"1 age=300 probe=bad"},
         .expect = {"DELETE 1 dead metrics logs", "view 1 health=unhealthy",
                    "count small pending=0 desired=0"}},
        {.name = "a failed probe within the grace is still booting",
         .flavors = {"small min=1"},
         .rows = {"1 age=60"},
         .insts = {"1 age=60 probe=bad"},
         .expect = {"view 1 health=healthy", "count small pending=1 desired=1"}},
        {.name = "a registered runner that died before going online is deleted on GitHub first",
         .rows = {"1 age=300"},
         .insts = {"1 age=300 probe=bad"},
         .runners = {"1 offline"},
         .expect = {"DELETE 1 dead metrics logs confirm rid"}},
        {.name = "a probe never overrides GitHub: an online runner is idle, a busy one busy",
         .flavors = {"small min=2"},
         .rows = {"1 seen age=300", "2 seen age=300"},
         .insts = {"1 age=300 probe=bad", "2 age=300 probe=bad"},
         .runners = {"1 idle", "2 busy"},
         .expect = {"count small idle=1 busy=1 desired=3", "CREATE small 1"}},
        {.name = "a healthy probe changes nothing",
         .flavors = {"small min=1"},
         .rows = {"1 age=300"},
         .insts = {"1 age=300 probe=ok"},
         .expect = {"count small pending=1"}},

        /* sizing */
        {.name = "desired = min_idle with nothing busy or waiting",
         .flavors = {"small min=2 max=5"},
         .expect = {"CREATE small 2", "count small desired=2 creating=2 waiting=0"}},
        {.name = "desired = busy + waiting when waiting jobs exceed min_idle",
         .flavors = {"small min=1 max=10 wait=3"},
         .rows = {"1 seen"},
         .insts = {"1"},
         .runners = {"1 busy"},
         .expect = {"CREATE small 3", "count small desired=4 busy=1 creating=3 waiting=3"}},
        {.name = "desired = busy + min_idle when min_idle exceeds waiting",
         .flavors = {"small min=2 max=10 wait=1"},
         .rows = {"1 seen", "2 seen", "3 seen"},
         .insts = {"1", "2", "3"},
         .runners = {"1 busy", "2 busy", "3 idle"},
         .expect = {"CREATE small 1", "count small desired=4 busy=2 idle=1"}},
        {.name = "desired is clamped to max",
         .flavors = {"small min=1 max=3 wait=5"},
         .rows = {"1 seen"},
         .insts = {"1"},
         .runners = {"1 busy"},
         .expect = {"CREATE small 2", "count small desired=3"}},
        {.name = "a negative waiting count is none",
         .flavors = {"small min=1 max=4 wait=-3"},
         .expect = {"CREATE small 1", "count small desired=1 waiting=0"}},
        {.name = "a huge waiting count saturates at max",
         .flavors = {"small min=0 max=4 wait=9223372036854775807"},
         .rows = {"1 seen"},
         .insts = {"1"},
         .runners = {"1 busy"},
         .expect = {"CREATE small 3", "count small desired=4"}},
        {.name = "busy beyond max: only the idle runner goes",
         .flavors = {"small min=1 max=2"},
         .rows = {"1 seen", "2 seen", "3 seen", "4 seen"},
         .insts = {"1", "2", "3", "4"},
         .runners = {"1 busy", "2 busy", "3 busy", "4 idle"},
         .expect = {"DELETE 4 scale_down metrics confirm rid",
                    "count small desired=2 busy=3 idle=1"}},
        {.name = "max 0 scales every idle runner down",
         .flavors = {"small min=0 max=0"},
         .rows = {"1 seen"},
         .insts = {"1"},
         .runners = {"1 idle"},
         .expect = {"DELETE 1 scale_down metrics confirm rid"}},
        {.name = "waiting jobs create runners in their own flavor only",
         .flavors = {"small min=0 max=5", "large min=0 max=5 wait=2"},
         .expect = {"CREATE large 2", "count small desired=0", "count large desired=2"}},
        {.name = "counts are kept per flavor",
         .flavors = {"small min=1 max=5", "large min=0 max=2 wait=1"},
         .rows = {"1 seen", "2 seen", "3 f=large"},
         .insts = {"1", "2", "3 f=large"},
         .runners = {"1 busy", "2 idle", "3 offline"},
         .expect = {"count small online=2 offline=0 busy=1 idle=1 pending=0 desired=2",
                    "count large online=0 offline=1 busy=0 idle=0 pending=1 desired=1"}},

        /* scale-down */
        {.name = "scale-down: cleanup first, then booting newest first, then idle newest first",
         .flavors = {"small min=1 max=10"},
         .rows = {"1 seen age=900", "2 seen age=300", "3 seen age=200", "4 age=100", "5 age=50",
                  "6 seen", "7 age=2000"},
         .insts = {"1 age=900", "2 age=300", "3 age=200", "4 age=100", "5 age=50", "6 error",
                   "7 age=2000"},
         .runners = {"1 busy", "2 idle", "3 idle", "4 offline"},
         .expect = {"DELETE 6 error metrics logs", "DELETE 7 orphan metrics logs",
                    "DELETE 5 scale_down metrics", "DELETE 4 scale_down metrics confirm rid",
                    "DELETE 3 scale_down metrics confirm rid", "order 6 7 5 4 3",
                    "count small busy=1 idle=2 pending=2 desired=2 deleting=5"}},
        {.name = "scale-down among idle runners removes the newest first",
         .flavors = {"small min=1 max=10"},
         .rows = {"1 seen age=500", "2 seen age=100", "3 seen age=300"},
         .insts = {"1 age=500", "2 age=100", "3 age=300"},
         .runners = {"1 idle", "2 idle", "3 idle"},
         .expect = {"DELETE 2 scale_down metrics confirm rid",
                    "DELETE 3 scale_down metrics confirm rid", "order 2 3"}},
        {.name = "scale-down never deletes busy runners",
         .rows = {"1 seen", "2 seen age=50000 busy=40000"},
         .insts = {"1", "2"},
         .runners = {"1 busy", "2 busy"},
         .expect = {"count small busy=2 desired=2"}},
        {.name = "a CREATING row whose instance is listed (crash after create) is classified",
         .flavors = {"small min=1 max=3"},
         .rows = {"1 creating"},
         .insts = {"1"},
         .runners = {"1 idle"},
         .expect = {"count small idle=1"}},

        /* flush */
        {.name = "idle flush deletes the runner and its instance, and does not refill",
         .setup = "flush-idle",
         .flavors = {"small min=2 max=5"},
         .rows = {"1 seen"},
         .insts = {"1"},
         .runners = {"1 idle"},
         .expect = {"DELETE 1 flush metrics confirm rid", "count small desired=2 creating=0"}},
        {.name = "a busy runner survives an idle flush; offline and booting ones go",
         .setup = "flush-idle",
         .rows = {"1 seen", "2 seen", "3", "4"},
         .insts = {"1", "2", "3", "4"},
         .runners = {"1 busy", "2 idle", "3 offline"},
         .expect = {"DELETE 2 flush metrics confirm rid", "DELETE 3 flush metrics confirm rid",
                    "DELETE 4 flush metrics"}},
        {.name = "an idle flush still applies the cleanup rules",
         .setup = "flush-idle",
         .rows = {"1 seen", "2 seen"},
         .insts = {"1 error", "2"},
         .expect = {"DELETE 1 error metrics logs", "DELETE 2 finished metrics"}},
        {.name = "a stuck busy runner survives an idle flush",
         .setup = "flush-idle",
         .rows = {"1 seen age=40000 busy=30000"},
         .insts = {"1 age=40000"},
         .runners = {"1 busy"},
         .expect = {"view 1 health=unhealthy"}},
        {.name = "an idle flush flushes flavors removed from the config too",
         .setup = "flush-idle",
         .rows = {"1 f=old seen"},
         .insts = {"1 f=old"},
         .runners = {"1 idle"},
         .expect = {"DELETE 1 flush metrics confirm rid"}},
        {.name = "busy flush deletes the instance while GitHub still lists the runner busy",
         .setup = "flush-busy",
         .flavors = {"small min=2 max=5"},
         .rows = {"1 seen", "2 seen"},
         .insts = {"1", "2"},
         .runners = {"1 busy", "2 idle", "3 busy"},
         .expect = {"DELETE 1 flush metrics rid", "DELETE 2 flush metrics rid",
                    "RUNNER 3 flush rid"}},
        {.name = "busy flush keeps the cleanup reason when one applies",
         .setup = "flush-busy",
         .rows = {"1 seen", "2 age=2000", "3 deleting"},
         .insts = {"1 error", "2 age=2000"},
         .runners = {"2 offline", "4 idle"},
         .expect = {"DELETE 1 error metrics logs", "DELETE 2 offline metrics logs rid", "FORGET 3",
                    "RUNNER 4 dangling rid"}},
        {.name = "busy flush with a failed GitHub list deletes instances with the store's ids",
         .setup = "flush-busy gh-partial",
         .rows = {"1 seen rid=77", "2 deleting"},
         .insts = {"1"},
         .expect = {"DELETE 1 flush metrics rid=77", "DELETE 2 retry"}},
        {.name = "busy flush with a partial provider list deletes every row's instance",
         .setup = "flush-busy inst-partial",
         .rows = {"1 seen", "2 deleting"},
         .runners = {"1 busy"},
         .expect = {"DELETE 1 flush metrics rid", "DELETE 2 flush metrics"}},
        {.name = "busy flush saves a stuck busy runner's logs",
         .setup = "flush-busy",
         .rows = {"1 seen age=40000 busy=30000"},
         .insts = {"1 age=40000"},
         .runners = {"1 busy"},
         .expect = {"DELETE 1 flush metrics logs rid"}},
        {.name = "busy flush deletes both instances of a duplicated name",
         .setup = "flush-busy",
         .rows = {"1 seen"},
         .insts = {"1 age=500 pid=old", "1 age=100 pid=new"},
         .runners = {"1 busy"},
         .expect = {"DELETE 1 duplicate pid=old", "DELETE 1 flush metrics rid"}},

        /* drain */
        {.name = "drain: idle and booting runners go, busy ones stay, nothing is created",
         .setup = "drain",
         .flavors = {"small min=2 max=5 wait=3"},
         .rows = {"1 seen", "2 seen", "3"},
         .insts = {"1", "2", "3"},
         .runners = {"1 busy", "2 idle"},
         .expect = {"DELETE 2 drain metrics confirm rid", "DELETE 3 drain metrics",
                    "count small desired=0 busy=1"}},
        {.name = "drain: a busy runner that finished is removed",
         .setup = "drain",
         .rows = {"1 seen"},
         .insts = {"1"},
         .expect = {"DELETE 1 finished metrics"}},
        {.name = "drain with only busy runners deletes nothing",
         .setup = "drain",
         .flavors = {"small min=2 max=5"},
         .rows = {"1 seen", "2 seen"},
         .insts = {"1", "2"},
         .runners = {"1 busy", "2 busy"},
         .expect = {"count small desired=0 busy=2"}},

        /* duplicates */
        {.name = "two instances with one name: the newest is kept",
         .rows = {"1 seen"},
         .insts = {"1 age=500 pid=old", "1 age=100 pid=new"},
         .runners = {"1 busy"},
         .expect = {"DELETE 1 duplicate pid=old", "view 1 cloud=active gh=busy",
                    "count small busy=1"}},
        {.name = "two instances with one name: listing order does not matter",
         .rows = {"1 seen"},
         .insts = {"1 age=100 pid=new", "1 age=500 pid=old"},
         .runners = {"1 busy"},
         .expect = {"DELETE 1 duplicate pid=old"}},
        {.name = "an older duplicate in error does not condemn the newest",
         .rows = {"1 seen"},
         .insts = {"1 age=500 error pid=old", "1 age=100 pid=new"},
         .runners = {"1 busy"},
         .expect = {"DELETE 1 duplicate pid=old", "view 1 cloud=active"}},

        {.name = "duplicates on two providers: the older one is deleted on its own provider",
         .rows = {"1 seen"},
         .insts = {"1 age=500 pid=old prov=lxd", "1 age=100 pid=new prov=local"},
         .runners = {"1 busy"},
         .expect = {"DELETE 1 duplicate pid=old prov=lxd", "view 1 gh=busy"}},
        {.name = "one instance listed by two providers (one provider id): not a duplicate",
         .rows = {"1 seen"},
         .insts = {"1 age=100 pid=same prov=os-small", "1 age=100 pid=same prov=os-large"},
         .runners = {"1 busy"},
         .expect = {"view 1 cloud=active gh=busy", "count small busy=1"}},
        {.name = "one instance listed by two providers: not a duplicate in a busy flush either",
         .setup = "flush-busy",
         .rows = {"1 seen"},
         .insts = {"1 age=100 pid=same prov=os-small", "1 age=100 pid=same prov=os-large"},
         .runners = {"1 busy"},
         .expect = {"DELETE 1 flush metrics rid prov=os-small"}},
        {.name = "duplicates listed by one provider cannot be told apart by name: left alone",
         .rows = {"1 seen"},
         .insts = {"1 age=500 pid=old prov=lxd", "1 age=100 pid=new prov=lxd"},
         .runners = {"1 busy"},
         .expect = {"view 1 cloud=active gh=busy", "count small busy=1"}},
        {.name = "a deletion goes to the provider that listed the instance",
         .rows = {"1 seen"},
         .insts = {"1 error prov=lxd"},
         .expect = {"DELETE 1 error metrics logs prov=lxd"}},
        {.name = "an adopted instance keeps its provider",
         .flavors = {"small min=1"},
         .insts = {"2 prov=lxd"},
         .runners = {"2 idle"},
         .expect = {"ADOPT 2 prov=lxd", "count small idle=1"}},

        /* ownership */
        {.name = "manager ci never touches ci-east-...",
         .rows = {"ci-east-000000000001 creating", "ci-east-000000000005 deleting"},
         .insts = {"ci-east-000000000002 error", "ci-east-000000000001"},
         .runners = {"ci-east-000000000003 idle", "ci-east-000000000001 offline"},
         .flight = {"ci-east-000000000004"},
         .expect = {"views=0"}},
        {.name = "names that only look like ours are ignored",
         .runners = {"ci-00000000001", "ci-0000000000001", "ci-00000000000G", "CI-000000000001",
                     "ci-00000000000a-1", "cix-000000000001"},
         .insts = {"ci-00000000000A error", "ci--000000000001"},
         .expect = {"views=0"}},
        {.name = "manager ci-east owns ci-east-... and not ci-...",
         .setup = "manager=ci-east",
         .runners = {"ci-east-000000000003 idle", "3 idle"},
         .expect = {"RUNNER ci-east-000000000003 dangling rid=1003", "views=1"}},

        /* partial lists */
        {.name = "a partial instance list blocks deletions, creates, counts unlisted rows",
         .setup = "inst-partial",
         .flavors = {"small min=3 max=3"},
         .rows = {"1 seen", "2 creating age=5000", "3 seen", "4 deleting"},
         .insts = {"3 error"},
         .runners = {"1 idle"},
         .expect = {"CREATE small 1", "blocked", "count small idle=1 pending=1 desired=3",
                    "view 1 cloud=unknown health=unknown", "view 3 health=unhealthy"}},
        {.name = "a failed GitHub list: all states unknown, no deletions, creates allowed",
         .setup = "gh-partial",
         .flavors = {"small min=2 max=4"},
         .rows = {"1 seen", "2 seen"},
         .insts = {"1", "2 error"},
         .expect = {"CREATE small 1", "blocked", "count small unknown=1 desired=2",
                    "view 1 gh=unknown health=unknown", "view 2 health=unhealthy"}},
        {.name = "a partial list blocks scale-down",
         .setup = "inst-partial",
         .rows = {"1 seen", "2 seen"},
         .insts = {"1", "2"},
         .runners = {"1 idle", "2 idle"},
         .expect = {"blocked", "count small idle=2 desired=0"}},
        {.name = "an idle flush does nothing while a list is partial",
         .setup = "flush-idle gh-partial",
         .rows = {"1 seen"},
         .insts = {"1"},
         .expect = {"blocked"}},

        /* flavors removed from the config */
        {.name = "flavor removed from config: idle and booting go, busy stays",
         .rows = {"1 f=old seen", "2 f=old seen", "3 f=old"},
         .insts = {"1 f=old", "2 f=old", "3 f=old"},
         .runners = {"1 busy", "2 idle"},
         .expect = {"DELETE 2 scale_down metrics confirm rid", "DELETE 3 scale_down metrics",
                    "count small busy=0 idle=0 pending=0 online=0"}},
        {.name = "flavor removed from config: a finished runner goes",
         .rows = {"1 f=old seen"},
         .insts = {"1 f=old"},
         .expect = {"DELETE 1 finished metrics"}},
        {.name = "drain removes idle runners of flavors removed from the config",
         .setup = "drain",
         .rows = {"1 f=old seen"},
         .insts = {"1 f=old"},
         .runners = {"1 idle"},
         .expect = {"DELETE 1 drain metrics confirm rid"}},
};

/* ---- every deletion rule is blocked by a partial list ---- */

static void test_partial_blocks_every_deletion(void **state)
{
	size_t checked = 0;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct tcase *tc = &cases[i];
		struct fixture full;
		struct plan base;
		bool had_deletion = false;

		build(tc, &full);
		if (full.in.mode == PLAN_FLUSH_BUSY || !full.in.instances_complete ||
		    !full.in.runners_complete)
			continue;
		plan_of(&full, &base);
		for (size_t k = 0; k < base.n_actions; k++)
			had_deletion |= is_deletion(base.actions[k].kind);
		for (int variant = 0; variant < 3; variant++) {
			struct fixture fx;
			struct plan p;
			size_t adopts = 0, base_adopts = 0;

			build(tc, &fx);
			if (variant == 0)
				fx.in.instances_complete = false;
			else
				fx.in.runners_complete = false;
			if (variant == 2)
				fx.in.n_runners = 0; /* a failed list holds nothing */
			plan_of(&fx, &p);
			assert_true(p.deletions_blocked);
			for (size_t k = 0; k < p.n_actions; k++) {
				if (is_deletion(p.actions[k].kind)) {
					print_message("case '%s', variant %d\n", tc->name, variant);
					dump_plan(&p);
					fail_msg("deletion with a partial list");
				}
				adopts += p.actions[k].kind == ACTION_ADOPT;
			}
			for (size_t k = 0; k < base.n_actions; k++)
				base_adopts += base.actions[k].kind == ACTION_ADOPT;
			assert_int_equal(adopts, base_adopts);
			plan_release(&p);
		}
		checked += had_deletion;
		plan_release(&base);
	}
	/* the table has many deletion cases; make sure they were exercised */
	assert_true(checked >= 30);
}

/* ---- the same invariants over pseudo-random inputs ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int64_t pick(int64_t n)
{
	return (int64_t)(rnd() % (uint64_t)n);
}

static void random_name(char *out, size_t cap)
{
	static const char *const foreign[] = {"ci-east-000000000001", "cx-000000000001",
	                                      "ci-00000000001"};
	if (pick(10) == 0)
		str_copy(out, foreign[pick(3)], cap);
	else
		snprintf(out, cap, "ci-%012" PRId64, pick(12));
}

static int64_t random_time(void)
{
	static const int64_t ages[] = {0, 5, 100, 1199, 1200, 1201, 5000, 21600, 21601, 90000};
	int64_t a = ages[pick(ARRAY_SIZE(ages))];

	return pick(12) == 0 ? 0 : NOW - a;
}

static void random_fixture(struct fixture *fx)
{
	static const char *const fl[] = {"small", "large", "old", ""};
	struct plan_input *in = &fx->in;

	memset(fx, 0, sizeof(*fx));
	str_copy(fx->manager, "ci", sizeof(fx->manager));
	in->manager = fx->manager;
	in->now = NOW;
	in->bootstrap_timeout = BOOT;
	in->job_timeout = JOBTO;
	in->mode = (enum plan_mode)pick(3);
	in->draining = pick(5) == 0;
	in->instances_complete = pick(4) != 0;
	in->runners_complete = pick(4) != 0;

	in->n_flavors = 1 + (size_t)pick(2);
	for (size_t i = 0; i < in->n_flavors; i++) {
		str_copy(fx->flavor_names[i], fl[i], sizeof(fx->flavor_names[i]));
		fx->flavors[i] = (struct plan_flavor){
		        .name = fx->flavor_names[i],
		        .min_idle = pick(5) - 1,
		        .max = pick(8) - 1,
		        .waiting_jobs = pick(6) == 0 ? INT64_MAX : pick(6) - 1,
		};
	}
	in->n_records = (size_t)pick(MAXN);
	for (size_t i = 0; i < in->n_records; i++) {
		struct store_instance *r = &fx->rows[i];

		random_name(r->name, sizeof(r->name));
		str_copy(r->flavor, fl[pick(4)], sizeof(r->flavor));
		r->phase = (enum store_phase)pick(3);
		r->created_at = random_time();
		r->seen_on_github = pick(2);
		r->busy_since = pick(2) ? random_time() : 0;
		r->runner_id = pick(3) ? 0 : 500 + pick(20);
	}
	in->n_instances = (size_t)pick(MAXN);
	for (size_t i = 0; i < in->n_instances; i++) {
		struct instance *x = &fx->insts[i];

		random_name(x->name, sizeof(x->name));
		snprintf(x->provider_id, sizeof(x->provider_id), "p%zu", i);
		str_copy(x->flavor, fl[pick(4)], sizeof(x->flavor));
		x->state = pick(2) ? CLOUD_ACTIVE : (enum cloud_state)pick(6);
		x->created_at = random_time();
	}
	in->n_runners = (size_t)pick(MAXN);
	for (size_t i = 0; i < in->n_runners; i++) {
		random_name(fx->runner_names[i], TOK);
		fx->runners[i] = (struct plan_runner){
		        .id = 1 + (int64_t)i,
		        .name = fx->runner_names[i],
		        .online = pick(3) != 0,
		        .busy = pick(3) == 0,
		};
	}
	in->n_in_flight = (size_t)pick(4);
	for (size_t i = 0; i < in->n_in_flight; i++) {
		random_name(fx->flight_names[i], TOK);
		fx->flight[i] = fx->flight_names[i];
	}
	in->flavors = fx->flavors;
	in->records = fx->rows;
	in->instances = fx->insts;
	in->runners = fx->runners;
	in->in_flight = fx->flight;
}

static void test_random_invariants(void **state)
{
	static struct fixture fx;
	size_t deletions = 0, creates = 0, busy_kept = 0;

	for (int iter = 0; iter < 20000; iter++) {
		struct plan p;

		random_fixture(&fx);
		plan_of(&fx, &p);
		for (size_t k = 0; k < p.n_actions; k++) {
			deletions += is_deletion(p.actions[k].kind);
			creates += p.actions[k].kind == ACTION_CREATE;
		}
		for (size_t k = 0; k < p.n_views; k++)
			busy_kept += p.views[k].github_state == GH_BUSY;
		plan_release(&p);
	}
	/* the generator must reach the interesting cases, or the test proves nothing */
	assert_true(deletions > 1000);
	assert_true(creates > 1000);
	assert_true(busy_kept > 1000);
}

/*
 * Creates ahead of the lists: right after a plan, its counts (creating =
 * its creates) call for no more; and with k more jobs waiting, they call
 * for exactly what the next full plan makes once it sees those creates
 * booting, whatever else the input holds.
 */
static void test_creates_ahead_match_the_next_plan(void **state)
{
	static struct fixture fx;
	size_t some = 0;

	for (int iter = 0; iter < 20000; iter++) {
		struct plan p1, p2;
		struct plan_input *in = &fx.in;
		int64_t k;

		random_fixture(&fx);
		in->mode = PLAN_NORMAL;
		/* room for the creates of p1 (at most 6 a flavor) */
		in->n_records = in->n_records < 3 ? in->n_records : 3;
		in->n_instances = in->n_instances < 3 ? in->n_instances : 3;
		plan_of(&fx, &p1);
		for (size_t f = 0; f < in->n_flavors; f++) {
			const struct plan_flavor_count *c = &p1.counts[f];
			/* the plan made what its jobs called for: nothing more ahead */
			assert_int_equal(planner_creates_ahead(&in->flavors[f], c, in->draining),
			                 0);
			/* p1's creates, booting: a row and its instance each */
			for (int64_t j = 0; j < c->creating; j++) {
				struct store_instance *r = &fx.rows[in->n_records++];
				struct instance *x = &fx.insts[in->n_instances++];

				memset(r, 0, sizeof(*r));
				memset(x, 0, sizeof(*x));
				snprintf(r->name, sizeof(r->name), "ci-f%02zu%09" PRId64, f, j);
				str_copy(r->flavor, c->name, sizeof(r->flavor));
				r->phase = PHASE_CREATED;
				r->created_at = NOW;
				str_copy(x->name, r->name, sizeof(x->name));
				str_copy(x->flavor, c->name, sizeof(x->flavor));
				snprintf(x->provider_id, sizeof(x->provider_id), "new%zu",
				         in->n_instances);
				x->state = CLOUD_ACTIVE;
				x->created_at = NOW;
			}
		}
		k = pick(4);
		for (size_t f = 0; f < in->n_flavors; f++) {
			int64_t w = fx.flavors[f].waiting_jobs;
			fx.flavors[f].waiting_jobs = w > INT64_MAX - k ? INT64_MAX : w + k;
		}
		plan_of(&fx, &p2);
		for (size_t f = 0; f < in->n_flavors; f++) {
			int64_t ahead =
			        planner_creates_ahead(&in->flavors[f], &p1.counts[f], in->draining);
			assert_int_equal(ahead, p2.counts[f].creating);
			assert_true(ahead <= k);
			some += ahead > 0;
		}
		plan_release(&p1);
		plan_release(&p2);
	}
	assert_true(some > 1000);
}

static void test_names_and_release(void **state)
{
	struct plan p = {0};
	struct plan_input in = {
	        .manager = "ci", .now = NOW, .instances_complete = true, .runners_complete = true};

	assert_string_equal(action_kind_name(ACTION_DELETE_RUNNER), "delete_runner");
	assert_string_equal(delete_reason_name(WHY_SCALE_DOWN), "scale_down");
	assert_string_equal(delete_reason_name(WHY_RETRY), "retry");
	/* every reason has its own name */
	for (int a = WHY_NONE; a <= WHY_RETRY; a++)
		for (int b = a + 1; b <= WHY_RETRY; b++)
			assert_string_not_equal(delete_reason_name((enum delete_reason)a),
			                        delete_reason_name((enum delete_reason)b));
	/* empty input: an empty plan */
	assert_int_equal(planner_plan(&in, &p), 0);
	assert_int_equal(p.n_actions, 0);
	assert_int_equal(p.n_views, 0);
	assert_int_equal(p.n_counts, 0);
	assert_false(p.deletions_blocked);
	plan_release(&p);
	assert_null(p.actions);
	plan_release(&p);
	plan_release(NULL);
}

int main(void)
{
	size_t n = ARRAY_SIZE(cases);
	struct CMUnitTest *tests = calloc(n + 4, sizeof(*tests));
	int r;

	if (!tests)
		return 1;
	for (size_t i = 0; i < n; i++)
		tests[i] = (struct CMUnitTest){.name = cases[i].name,
		                               .test_func = run_case,
		                               .initial_state = (void *)&cases[i]};
	tests[n++] = (struct CMUnitTest){.name = "partial lists block every deletion rule",
	                                 .test_func = test_partial_blocks_every_deletion};
	tests[n++] = (struct CMUnitTest){.name = "invariants hold over random inputs",
	                                 .test_func = test_random_invariants};
	tests[n++] = (struct CMUnitTest){.name = "creates ahead match the next plan",
	                                 .test_func = test_creates_ahead_match_the_next_plan};
	tests[n++] = (struct CMUnitTest){.name = "names, empty input, release",
	                                 .test_func = test_names_and_release};
	r = _cmocka_run_group_tests("planner", tests, n, NULL, NULL);
	free(tests);
	return r;
}
