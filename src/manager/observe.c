/*
 * What a pass sees: the store's rows, every open provider's instances and
 * GitHub's runners, joined by name and folded into the store (only real
 * changes are written), with the health probes of booting instances, and
 * the planner's input built from it. It must never act on what it sees
 * (that is the planner's and the executor's) and never call a list
 * complete that was not.
 */
#include "util/common.h"
#include "manager/manager_internal.h"
#include "manager/executor.h"
#include "util/log.h"
#include "util/strutil.h"

void manager_observation_release(struct observation *o)
{
	store_instance_list_release(&o->rows);
	instance_list_release(&o->instances);
	github_runner_list_release(&o->gh);
	free(o->runners);
	free(o->flavors);
	memset(o, 0, sizeof(*o));
}

/* Name -> index lookups for joining observations: sorted once, searched per row. */
struct name_ref {
	const char *name;
	size_t idx;
};

static int name_ref_cmp(const void *a, const void *b)
{
	const struct name_ref *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : (x->idx < y->idx ? -1 : x->idx > y->idx);
}

static const struct name_ref *name_ref_find(const struct name_ref *v, size_t n, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(v[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && strcmp(v[lo].name, name) == 0 ? &v[lo] : NULL;
}

/*
 * How long a booting instance may show a dead runner before it is replaced:
 * a quarter of the bootstrap timeout, between 10 s and 2 min (the runner
 * starts seconds after it is installed).
 */
static int64_t health_grace(const struct manager *m)
{
	int64_t g = m->cfg->manager.bootstrap_timeout / 4;
	return g < 10 ? 10 : g > 120 ? 120 : g;
}

struct probe_ctx {
	struct manager *m;
	struct instance **v;
};

static void probe_one(void *ctx, size_t i)
{
	struct probe_ctx *c = ctx;
	struct instance *in = c->v[i];
	struct provider *p = manager_provider_named(c->m, in->provider);
	enum health h = HEALTH_UNKNOWN;
	struct err e = {0};

	if (p && provider_health(p, in->name, &h, &e) < 0) {
		log_debug("health %s: %s", in->name, e.msg);
		h = HEALTH_UNKNOWN;
	}
	in->probe = h;
}

/* Whether in's provider looks inside an instance for its health. */
static bool can_probe(struct manager *m, const struct instance *in)
{
	struct provider *p = manager_provider_named(m, in->provider);
	return p && provider_traits(p)->health_probe;
}

/* Run the health probes of the booting instances update_rows picked. */
static void probe_booting(struct manager *m, struct instance **v, size_t n)
{
	struct probe_ctx c = {m, v};

	if (n)
		executor_run(n, (size_t)m->cfg->manager.create_concurrency, probe_one, &c,
		             &m->cancel);
}

/*
 * Fold what was seen into the store before planning, so "seen on GitHub"
 * survives restarts and the planner sees one consistent picture. Only real
 * changes are written: a steady pool costs no store writes.
 */
static int update_rows(struct manager *m, struct observation *o, int64_t now)
{
	size_t ni = o->instances.n, ng = o->gh.n, n_probe = 0;
	struct name_ref *iv = calloc(ni ? ni : 1, sizeof(*iv));
	struct name_ref *gv = calloc(ng ? ng : 1, sizeof(*gv));
	struct instance **probe = calloc(ni ? ni : 1, sizeof(*probe));
	int64_t grace = health_grace(m);

	if (!iv || !gv || !probe) {
		free(iv);
		free(gv);
		free(probe);
		return -ENOMEM;
	}
	for (size_t i = 0; i < ni; i++)
		iv[i] = (struct name_ref){o->instances.v[i].name, i};
	for (size_t i = 0; i < ng; i++)
		gv[i] = (struct name_ref){o->gh.v[i].name, i};
	qsort(iv, ni, sizeof(*iv), name_ref_cmp);
	qsort(gv, ng, sizeof(*gv), name_ref_cmp);

	for (size_t i = 0; i < o->rows.n; i++) {
		struct store_instance *row = &o->rows.v[i];
		struct store_instance old = *row;
		const struct name_ref *ir = name_ref_find(iv, ni, row->name);
		struct instance *in = NULL;

		/* two instances with one name: the newest speaks for the row */
		for (; ir && ir < iv + ni && strcmp(ir->name, row->name) == 0; ir++)
			if (!in || o->instances.v[ir->idx].created_at > in->created_at)
				in = &o->instances.v[ir->idx];
		if (in) {
			row->cloud_state = in->state;
			if (row->phase == PHASE_CREATING)
				row->phase = PHASE_CREATED;
			if (!row->provider_id[0])
				str_copy(row->provider_id, in->provider_id,
				         sizeof(row->provider_id));
		} else if (o->instances_complete) {
			row->cloud_state = CLOUD_DELETED;
		}
		if (o->runners_complete) {
			const struct name_ref *gr_ref = name_ref_find(gv, ng, row->name);
			const struct github_runner *gr = gr_ref ? &o->gh.v[gr_ref->idx] : NULL;
			if (gr) {
				row->seen_on_github = true;
				row->runner_id = gr->id;
				row->github_state = gr->busy ? GH_BUSY
				                    : gr->status == GITHUB_RUNNER_ONLINE
				                            ? GH_IDLE
				                            : GH_OFFLINE;
				if (gr->busy && !row->busy_since)
					row->busy_since = now;
				if (!gr->busy)
					row->busy_since = 0;
			} else {
				row->github_state = GH_ABSENT;
				row->busy_since = 0;
			}
		}
		/*
		 * Booting past the health grace and within the bootstrap timeout
		 * (no runner yet, or registered and offline): worth asking the
		 * provider whether the runner died. Idle, busy and finished
		 * runners are never probed: GitHub speaks for them. Nor are the
		 * instances of a provider that cannot look inside one: its health
		 * is the state the listing gave, and a call per booting instance
		 * every pass would only say it again (100 OpenStack servers
		 * booting: 100 Nova requests a pass).
		 */
		if (in && in->state == CLOUD_ACTIVE && o->runners_complete && can_probe(m, in) &&
		    row->phase == PHASE_CREATED &&
		    (row->github_state == GH_OFFLINE ||
		     (row->github_state == GH_ABSENT && !row->seen_on_github))) {
			int64_t since =
			        row->created_at > 0 ? row->created_at : (int64_t)in->created_at;
			if (since > 0 && now - since > grace &&
			    now - since <= m->cfg->manager.bootstrap_timeout)
				probe[n_probe++] = in;
		}
		bool changed = memcmp(&old, row, sizeof(old)) != 0;
		/* last_seen alone is not worth a durable write every pass */
		if (o->runners_complete && row->github_state != GH_ABSENT)
			row->last_seen = now;
		if (changed) {
			struct err e = {0};
			if (store_instance_put(m->store, row, &e) < 0)
				log_warn("store: %s: what this pass saw of %s is not recorded "
				         "(written next pass)",
				         e.msg, row->name);
		}
	}
	free(iv);
	free(gv);
	probe_booting(m, probe, n_probe);
	free(probe);
	return 0;
}

int manager_observation_take(struct manager *m, struct observation *o, struct manager_report *rep,
                             int64_t now)
{
	struct err e = {0};
	int r;

	memset(o, 0, sizeof(*o));
	r = store_instance_list(m->store, &o->rows, &e);
	if (r < 0)
		return r; /* without the store we know nothing: no pass */

	o->instances_complete = true;
	for (size_t i = 0; i < m->n_providers; i++) {
		struct instance_list l = {0};
		err_clear(&e);
		int lr = provider_list(m->providers[i], &l, &e);
		if (lr < 0) {
			o->instances_complete = false;
			snprintf(rep->provider_error, sizeof(rep->provider_error), "%s: %s",
			         provider_name(m->providers[i]), e.msg);
			if (manager_stopping(m, lr))
				log_debug("provider %s list: %s (stopping)",
				          provider_name(m->providers[i]), e.msg);
			else
				log_warn("provider %s list failed: %s (no deletions this pass)",
				         provider_name(m->providers[i]), e.msg);
			instance_list_release(&l);
			continue;
		}
		for (size_t j = 0; j < l.n; j++) {
			if (instance_list_add(&o->instances, &l.v[j]) < 0)
				o->instances_complete = false;
		}
		instance_list_release(&l);
	}
	/* a row on a provider that is not open cannot be seen: nothing is complete */
	for (size_t i = 0; i < o->rows.n; i++) {
		const char *pn = o->rows.v[i].provider;
		if (pn[0] && !manager_provider_named(m, pn) &&
		    name_is_owned(m->cfg->manager.name, o->rows.v[i].name)) {
			o->instances_complete = false;
			snprintf(rep->provider_error, sizeof(rep->provider_error),
			         "%s (of %s) is not open: configure a flavor on it or restart", pn,
			         o->rows.v[i].name);
			log_warn("provider %s holds %s but is not open (no deletions this pass)",
			         pn, o->rows.v[i].name);
			break;
		}
	}

	err_clear(&e);
	if (github_list_runners(m->gh, m->cfg->manager.name, &o->gh, &e) < 0 || !o->gh.complete) {
		o->runners_complete = false;
		str_copy(rep->github_error, e.msg[0] ? e.msg : "incomplete list",
		         sizeof(rep->github_error));
		log_warn("github: list runners failed: %s (no deletions this pass)",
		         rep->github_error);
		github_runner_list_release(&o->gh);
	} else {
		o->runners_complete = true;
	}

	o->runners = calloc(o->gh.n ? o->gh.n : 1, sizeof(*o->runners));
	o->flavors = calloc(m->cfg->n_flavors ? m->cfg->n_flavors : 1, sizeof(*o->flavors));
	if (!o->runners || !o->flavors)
		return -ENOMEM;
	for (size_t i = 0; i < o->gh.n; i++) {
		o->runners[i].id = o->gh.v[i].id;
		o->runners[i].name = o->gh.v[i].name;
		o->runners[i].online = o->gh.v[i].status == GITHUB_RUNNER_ONLINE;
		o->runners[i].busy = o->gh.v[i].busy;
	}
	for (size_t i = 0; i < m->cfg->n_flavors; i++) {
		const struct config_flavor *f = &m->cfg->flavors[i];
		o->flavors[i].name = f->name;
		o->flavors[i].min_idle = f->min_idle;
		o->flavors[i].max = f->max;
		o->flavors[i].waiting_jobs =
		        m->hooks.waiting_jobs ? m->hooks.waiting_jobs(m->hooks.ctx, f->name) : 0;
	}
	return update_rows(m, o, now);
}

int manager_observation_plan(struct manager *m, struct observation *o, enum plan_mode mode,
                             int64_t now, struct plan *ret)
{
	struct plan_input in = {
	        .manager = m->cfg->manager.name,
	        .now = now,
	        .bootstrap_timeout = m->cfg->manager.bootstrap_timeout,
	        .job_timeout = m->cfg->manager.job_timeout,
	        .health_grace = health_grace(m),
	        .mode = mode,
	        .draining = atomic_load(&m->draining),
	        .flavors = o->flavors,
	        .n_flavors = m->cfg->n_flavors,
	        .records = o->rows.v,
	        .n_records = o->rows.n,
	        .instances = o->instances.v,
	        .n_instances = o->instances.n,
	        .instances_complete = o->instances_complete,
	        .runners = o->runners,
	        .n_runners = o->gh.n,
	        .runners_complete = o->runners_complete,
	};
	return planner_plan(&in, ret);
}
