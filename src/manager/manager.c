/*
 * The manager: one reconcile pass at a time — observe (store, providers,
 * GitHub), plan (planner.c, pure), execute (executor.c, bounded pool), record
 * (store action log, report). It must never delete on partial data (the
 * planner guarantees it), never delete a busy runner except under
 * flush --busy, and never leave a create half-done: a failed create removes
 * its instance and its JIT registration before the row goes.
 */
#include "util/common.h"
#include "manager/manager.h"
#include "manager/executor.h"
#include "runner/runner.h"
#include "runner/runner_script.h"
#include "util/clock.h"
#include "util/fileutil.h"
#include "util/log.h"
#include "util/strutil.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/random.h>

#define METRICS_FILE_MAX (64 * 1024)
#define MAX_PROVIDERS    8

struct manager {
	const struct config *cfg;
	struct store *store;
	struct github *gh;
	struct provider *providers[MAX_PROVIDERS];
	size_t n_providers;
	bool owns_parts; /* manager_open built them: free them too */
	bool owns_gh;    /* gh too (built by manager_open or by a reload) */
	struct config *owned_cfg;
	int lock_fd;

	pthread_mutex_t pass_lock;
	pthread_mutex_t report_lock; /* guards report events during execution */
	atomic_bool cancel;          /* shutdown: no new action; providers and GitHub give up */
	atomic_bool draining;        /* written under pass_lock with the store; read anywhere */
	struct manager_hooks hooks;

	char runner_tarball[PATH_MAX]; /* verified runner package for local instances, "" none */
	struct github_app_list apps;   /* runner downloads for instances that fetch it themselves */
	int64_t apps_at;               /* when apps was fetched (unix s), 0 never */
	int64_t logs_pruned_at;        /* last log retention sweep (unix s) */
	int64_t runner_bin_at;         /* when runner_tarball was last confirmed (unix s) */
	int64_t runner_bin_tried_at;   /* last attempt to fetch it (unix s) */
	int64_t runner_group_id;       /* resolved once (org scope), 0 until then */
	char group_error[256];         /* why it did not resolve */
};

void manager_report_release(struct manager_report *r)
{
	if (!r)
		return;
	free(r->events);
	plan_release(&r->plan);
	memset(r, 0, sizeof(*r));
}

static void report_add(struct manager *m, struct manager_report *r, const char *action,
                       const char *name, const char *flavor, const char *reason, bool ok,
                       const char *outcome)
{
	pthread_mutex_lock(&m->report_lock);
	if (r->n_events == r->cap_events) {
		size_t ncap = r->cap_events ? r->cap_events * 2 : 16;
		struct manager_event *nv = realloc(r->events, ncap * sizeof(*nv));
		if (!nv) {
			pthread_mutex_unlock(&m->report_lock);
			return;
		}
		r->events = nv;
		r->cap_events = ncap;
	}
	struct manager_event *ev = &r->events[r->n_events++];
	memset(ev, 0, sizeof(*ev));
	str_copy(ev->action, action, sizeof(ev->action));
	str_copy(ev->name, name ? name : "", sizeof(ev->name));
	str_copy(ev->flavor, flavor ? flavor : "", sizeof(ev->flavor));
	str_copy(ev->reason, reason ? reason : "", sizeof(ev->reason));
	str_copy(ev->outcome, outcome ? outcome : "ok", sizeof(ev->outcome));
	ev->ok = ok;
	pthread_mutex_unlock(&m->report_lock);

	/* the action log is best effort: a full disk must not stop cleanup */
	struct err e = {0};
	if (store_log_action(m->store, clock_wall_ms() / 1000, action, name ? name : "",
	                     reason ? reason : "", outcome ? outcome : "ok", &e) < 0)
		log_debug("action log: %s", e.msg);
	if (ok)
		log_info("%s %s%s%s%s%s%s%s", action, name && *name ? name : "",
		         flavor && *flavor ? " flavor=" : "", flavor ? flavor : "",
		         reason && *reason ? " reason=" : "", reason ? reason : "",
		         outcome && strcmp(outcome, "ok") != 0 ? ": " : "",
		         outcome && strcmp(outcome, "ok") != 0 ? outcome : "");
	else
		log_warn("%s %s%s%s failed: %s", action, name ? name : "",
		         reason && *reason ? " reason=" : "", reason ? reason : "", outcome);
}

static struct provider *provider_named(struct manager *m, const char *name)
{
	for (size_t i = 0; name && *name && i < m->n_providers; i++)
		if (strcmp(provider_name(m->providers[i]), name) == 0)
			return m->providers[i];
	return NULL;
}

/*
 * The provider that holds an instance: the one that listed it, else the one
 * its row names, else its flavor's. Never a guess: a delete sent to the
 * wrong provider "succeeds" there and leaks the instance.
 */
static struct provider *provider_of(struct manager *m, const struct action *a,
                                    const struct store_instance *row, const char **ret_name)
{
	const struct config_flavor *f = config_flavor_find(m->cfg, a->flavor);
	const char *name = a->provider[0]            ? a->provider
	                   : row && row->provider[0] ? row->provider
	                   : f                       ? f->provider
	                                             : "";
	*ret_name = name;
	return provider_named(m, name);
}

int manager_new(const struct config *cfg, struct store *store, struct github *gh,
                struct provider **providers, size_t n_providers, struct manager **ret,
                struct err *e)
{
	struct manager *m;
	char *v = NULL;

	if (n_providers > MAX_PROVIDERS)
		return err_set(e, -EINVAL, "too many providers");
	m = calloc(1, sizeof(*m));
	if (!m)
		return err_set(e, -ENOMEM, "out of memory");
	m->cfg = cfg;
	m->store = store;
	m->gh = gh;
	m->lock_fd = -1;
	atomic_init(&m->cancel, false);
	atomic_init(&m->draining, false);
	for (size_t i = 0; i < n_providers; i++) {
		m->providers[i] = providers[i];
		provider_set_cancel(providers[i], &m->cancel);
	}
	m->n_providers = n_providers;
	pthread_mutex_init(&m->pass_lock, NULL);
	pthread_mutex_init(&m->report_lock, NULL);
	if (store_kv_get(store, "drain", &v, NULL) == 0) {
		atomic_store(&m->draining, strcmp(v, "1") == 0);
		free(v);
	}
	*ret = m;
	return 0;
}

/* Distinct provider names used by the configured flavors. */
static size_t used_providers(const struct config *cfg, const char *names[MAX_PROVIDERS])
{
	size_t n = 0;
	for (size_t i = 0; i < cfg->n_flavors; i++) {
		bool seen = false;
		for (size_t j = 0; j < n; j++)
			seen = seen || strcmp(names[j], cfg->flavors[i].provider) == 0;
		if (!seen && n < MAX_PROVIDERS)
			names[n++] = cfg->flavors[i].provider;
	}
	return n;
}

/* The verified copy update_runner_bin left in state_dir/runner-bin (current-<arch>). */
static bool cached_runner_bin(struct manager *m, enum arch arch)
{
	char cur[PATH_MAX], line[256], path[PATH_MAX];
	struct buf b = BUF_INIT(sizeof(line));
	struct stat st;
	bool ok = false;

	snprintf(cur, sizeof(cur), "%s/runner-bin/current-%s", m->cfg->manager.state_dir,
	         arch_name(arch));
	if (file_read(cur, sizeof(line) - 1, true, &b, NULL) == 0 && b.len > 0 &&
	    b.len < sizeof(line)) {
		str_copy(line, b.data, sizeof(line));
		line[strcspn(line, "\n")] = '\0';
		if (line[0] && !strchr(line, '/') && line[0] != '.') {
			snprintf(path, sizeof(path), "%s/runner-bin/%s", m->cfg->manager.state_dir,
			         line);
			if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				str_copy(m->runner_tarball, path, sizeof(m->runner_tarball));
				ok = true;
			}
		}
	}
	buf_release(&b);
	return ok;
}

/*
 * The verified runner package local instances start from: checked against
 * GitHub at most once an hour, retried every minute while there is none,
 * and taken from the last verified download when GitHub cannot be reached.
 */
static void fetch_runner_bin(struct manager *m, int64_t now)
{
	bool need_local = false;
	enum arch arch = ARCH_X64;
	struct err e = {0};

	for (size_t i = 0; i < m->cfg->n_flavors; i++) {
		struct provider *p = provider_named(m, m->cfg->flavors[i].provider);
		if (p && provider_traits(p)->runner_from_host) {
			need_local = true;
			arch = m->cfg->flavors[i].arch;
		}
	}
	if (!need_local)
		return;
	if (m->runner_tarball[0] && now - m->runner_bin_at < 3600)
		return;
	if (!m->runner_tarball[0] && m->runner_bin_tried_at && now - m->runner_bin_tried_at < 60)
		return;
	m->runner_bin_tried_at = now;
	struct github_bin_result res = {0};
	if (github_runner_bin_update(m->gh, arch, m->cfg->manager.state_dir, &res, &e) < 0) {
		if (!m->runner_tarball[0] && cached_runner_bin(m, arch))
			log_warn("runner binary: %s (using the verified copy %s)", e.msg,
			         m->runner_tarball);
		else if (!m->runner_tarball[0])
			log_warn("runner binary: %s (no local instance can start until it is "
			         "fetched)",
			         e.msg);
		else
			log_warn("runner binary: %s (keeping %s)", e.msg, m->runner_tarball);
		return;
	}
	m->runner_bin_at = now;
	str_copy(m->runner_tarball, res.path, sizeof(m->runner_tarball));
	if (res.outcome != GITHUB_BIN_UNCHANGED)
		log_info("runner binary %s: %s%s%s (%s)", arch_name(arch), res.old_version,
		         res.old_version[0] ? " -> " : "", res.version,
		         github_bin_outcome_name(res.outcome));
}

/*
 * What instances may reach and see of the host, from the config: the
 * denylist, runnerd's own directories and its secret files.
 */
static int apply_policy(struct manager *m, const struct config *cfg, bool quiet)
{
	struct strv dirs = {0}, secrets = {0};
	int r = 0;

	if (strv_push(&dirs, cfg->manager.state_dir) < 0 ||
	    strv_push(&dirs, cfg->manager.log_dir) < 0 || config_secret_files(cfg, &secrets) < 0) {
		r = -ENOMEM;
		goto out;
	}
	struct provider_policy pol = {
	        .denylist = &cfg->runner.denylist,
	        .hidden_dirs = &dirs,
	        .secret_files = &secrets,
	};
	for (size_t i = 0; i < m->n_providers; i++) {
		struct err e = {0};
		if (provider_policy(m->providers[i], &pol, &e) < 0) {
			r = e.code;
			if (!quiet)
				log_warn("provider %s: policy: %s (retried before each create)",
				         provider_name(m->providers[i]), e.msg);
		}
		if (cfg->runner.denylist.n > 0 && !provider_traits(m->providers[i])->denylist &&
		    !quiet)
			log_warn("provider %s (%s) does not enforce runner.denylist",
			         provider_name(m->providers[i]), provider_type(m->providers[i]));
	}
out:
	strv_release(&dirs);
	strv_release(&secrets);
	return r;
}

/*
 * Open the providers of cfg's flavors, and every provider that still holds
 * instances of ours (so they are cleaned up after their flavor left the
 * config): its config entry if it has one, else the defaults of the type it
 * is named after.
 */
static int open_providers(const struct config *cfg, struct store *store,
                          struct provider *provs[MAX_PROVIDERS], size_t *ret_n, struct err *e)
{
	const char *names[MAX_PROVIDERS];
	char row_names[MAX_PROVIDERS][PROVIDER_NAME_MAX];
	size_t np = used_providers(cfg, names), n_rows = 0;
	struct store_instance_list rows = {0};
	int r = 0;

	if (store_instance_list(store, &rows, NULL) == 0) {
		for (size_t i = 0; i < rows.n; i++) {
			bool have = !rows.v[i].provider[0];
			for (size_t j = 0; j < np && !have; j++)
				have = strcmp(names[j], rows.v[i].provider) == 0;
			if (!have && np < MAX_PROVIDERS) {
				str_copy(row_names[n_rows], rows.v[i].provider,
				         sizeof(row_names[0]));
				names[np++] = row_names[n_rows++];
			}
		}
		store_instance_list_release(&rows);
	}
	*ret_n = 0;
	for (size_t i = 0; i < np; i++) {
		const struct config_provider *pc = config_provider_find(cfg, names[i]);
		struct config_provider *implied = NULL;

		if (!pc && config_provider_implied(names[i], &implied) == 0)
			pc = implied;
		if (!pc) {
			/* its rows block deletions, with a message, until it is configured */
			log_warn("provider %s holds instances of ours but is not configured",
			         names[i]);
			continue;
		}
		r = provider_open(pc, cfg->manager.name, &provs[*ret_n], e);
		config_provider_free(implied);
		if (r < 0) {
			err_prefix(e, "provider %s", names[i]);
			return r;
		}
		(*ret_n)++;
	}
	return 0;
}

int manager_open(const struct config *cfg, struct manager **ret, struct err *e)
{
	struct provider *provs[MAX_PROVIDERS] = {0};
	struct store *store = NULL;
	struct github *gh = NULL;
	struct manager *m = NULL;
	int lock_fd = -1, r;
	size_t np = 0;

	r = mkdir_p(cfg->manager.state_dir, 0700, e);
	if (r < 0)
		return r;
	r = store_lock(cfg->manager.state_dir, &lock_fd, e);
	if (r < 0)
		return r;
	r = store_open(cfg->manager.state_dir, &store, e);
	if (r < 0)
		goto fail;
	r = github_new(cfg, NULL, &gh, e);
	if (r < 0)
		goto fail;
	r = open_providers(cfg, store, provs, &np, e);
	if (r < 0)
		goto fail;
	r = manager_new(cfg, store, gh, provs, np, &m, e);
	if (r < 0)
		goto fail;
	m->owns_parts = true;
	m->owns_gh = true;
	m->lock_fd = lock_fd;
	(void)apply_policy(m, cfg, true); /* logged by manager_log_setup */
	*ret = m;
	return 0;
fail:
	for (size_t i = 0; i < MAX_PROVIDERS; i++)
		provider_free(provs[i]);
	github_free(gh);
	store_close(store);
	store_unlock(lock_fd);
	return r;
}

void manager_log_setup(struct manager *m)
{
	for (size_t i = 0; i < m->n_providers; i++) {
		const struct provider_traits *t = provider_traits(m->providers[i]);
		if (t->note[0])
			log_info("provider %s (%s): %s", provider_name(m->providers[i]),
			         provider_type(m->providers[i]), t->note);
	}
	/* again, now that it can be said once: what the policy could not apply */
	(void)apply_policy(m, m->cfg, false);
}

void manager_free(struct manager *m)
{
	if (!m)
		return;
	if (m->owns_parts) {
		for (size_t i = 0; i < m->n_providers; i++)
			provider_free(m->providers[i]);
		store_close(m->store);
		store_unlock(m->lock_fd);
	}
	if (m->owns_gh)
		github_free(m->gh);
	github_app_list_release(&m->apps);
	pthread_mutex_destroy(&m->pass_lock);
	pthread_mutex_destroy(&m->report_lock);
	free(m);
}

void manager_set_hooks(struct manager *m, const struct manager_hooks *h)
{
	m->hooks = *h;
}

void manager_cancel(struct manager *m)
{
	atomic_store(&m->cancel, true);
	/* GitHub calls under way end now (-ECANCELED), not after their retries; the
	 * providers see the same flag */
	github_cancel(m->gh);
}

bool manager_draining(struct manager *m)
{
	return atomic_load(&m->draining);
}

int manager_set_draining(struct manager *m, bool on, struct err *e)
{
	int r;
	pthread_mutex_lock(&m->pass_lock);
	r = on ? store_kv_set(m->store, "drain", "1", e) : store_kv_delete(m->store, "drain", e);
	if (r == 0)
		atomic_store(&m->draining, on);
	pthread_mutex_unlock(&m->pass_lock);
	return r;
}

int manager_reload(struct manager *m, const struct config *cfg, struct err *e)
{
	const char *names[MAX_PROVIDERS];
	size_t np;

	if (strcmp(cfg->manager.name, m->cfg->manager.name) != 0)
		return err_set(e, -EINVAL,
		               "manager.name cannot change on reload (restart instead)");
	if (strcmp(cfg->manager.state_dir, m->cfg->manager.state_dir) != 0)
		return err_set(e, -EINVAL,
		               "manager.state_dir cannot change on reload (restart instead)");
	np = used_providers(cfg, names);
	for (size_t i = 0; i < np; i++) {
		if (!provider_named(m, names[i]))
			return err_set(e, -EINVAL, "provider %s is new: restart to add a provider",
			               names[i]);
	}
	/* an open provider keeps the settings it was opened with */
	for (size_t i = 0; i < m->n_providers; i++) {
		const char *pn = provider_name(m->providers[i]);
		const struct config_provider *was = config_provider_find(m->cfg, pn);
		const struct config_provider *now = config_provider_find(cfg, pn);
		if (was && now && !config_provider_same(was, now))
			log_warn("providers.%s changed: it keeps its running settings until a "
			         "restart",
			         pn);
	}
	pthread_mutex_lock(&m->pass_lock);
	struct github *gh = NULL;
	int r = github_new(cfg, NULL, &gh, e);
	if (r == 0) {
		if (m->owns_gh)
			github_free(m->gh);
		m->gh = gh;
		m->owns_gh = true;
		m->cfg = cfg;
		m->runner_group_id = 0; /* github.runner_group may have changed */
		m->apps_at = 0;
		m->runner_bin_at = 0;
		/* the denylist and what jobs must not see follow the config now */
		(void)apply_policy(m, cfg, false);
	}
	pthread_mutex_unlock(&m->pass_lock);
	return r;
}

/* ---- observe ---------------------------------------------------------- */

struct observation {
	struct store_instance_list rows;
	struct instance_list instances;
	bool instances_complete;
	struct github_runner_list gh;
	bool runners_complete;
	struct plan_runner *runners;
	struct plan_flavor *flavors;
};

static void observation_release(struct observation *o)
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
	struct provider *p = provider_named(c->m, in->provider);
	enum health h = HEALTH_UNKNOWN;
	struct err e = {0};

	if (p && provider_health(p, in->name, &h, &e) < 0) {
		log_debug("health %s: %s", in->name, e.msg);
		h = HEALTH_UNKNOWN;
	}
	in->probe = h;
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
		 * runners are never probed: GitHub speaks for them.
		 */
		if (in && in->state == CLOUD_ACTIVE && o->runners_complete &&
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
				log_warn("store: %s", e.msg);
		}
	}
	free(iv);
	free(gv);
	probe_booting(m, probe, n_probe);
	free(probe);
	return 0;
}

static int observe(struct manager *m, struct observation *o, struct manager_report *rep,
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
		if (provider_list(m->providers[i], &l, &e) < 0) {
			o->instances_complete = false;
			snprintf(rep->provider_error, sizeof(rep->provider_error), "%s: %s",
			         provider_name(m->providers[i]), e.msg);
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
		if (pn[0] && !provider_named(m, pn) &&
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

static int plan_pass(struct manager *m, struct observation *o, enum plan_mode mode, int64_t now,
                     struct plan *ret)
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

/* ---- execute ---------------------------------------------------------- */

struct task {
	const struct action *a;
	char name[INSTANCE_NAME_MAX]; /* for creates: the generated name */
};

struct exec_ctx {
	struct manager *m;
	struct manager_report *rep;
	struct task *tasks;
	char *reg_token; /* one registration token per pass when JIT is off */
	pthread_mutex_t token_lock;
};

static int new_runner_name(const char *manager, char *out, size_t cap)
{
	unsigned char rnd[6];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	snprintf(out, cap, "%s-%02x%02x%02x%02x%02x%02x", manager, rnd[0], rnd[1], rnd[2], rnd[3],
	         rnd[4], rnd[5]);
	return 0;
}

/*
 * Pull the metrics files an instance wrote into state_dir/metrics/<name>/
 * (best effort). A runner leaves GitHub's list a moment before its wrapper
 * writes post-job-metrics.json: for a finished runner whose job started
 * (pre-job file present), wait up to POST_JOB_WAIT_MS for it while the
 * instance still runs.
 */
#define POST_JOB_WAIT_MS 15000

static int pull_post_job(struct manager *m, struct provider *p, const char *name, const char *file,
                         struct buf *b, struct err *e)
{
	int r = provider_pull_file(p, name, file, METRICS_FILE_MAX, b, e);

	for (int waited = 0; r == -ENOENT && waited < POST_JOB_WAIT_MS && !atomic_load(&m->cancel);
	     waited += 500) {
		struct instance in;
		bool running = provider_get(p, name, &in, NULL) == 0 && in.state == CLOUD_ACTIVE;
		if (running)
			clock_sleep_ms(500);
		err_clear(e);
		r = provider_pull_file(p, name, file, METRICS_FILE_MAX, b, e);
		if (!running)
			break;
	}
	return r;
}

static void extract_metrics(struct manager *m, struct provider *p, const char *name, bool finished)
{
	static const char *const files[] = {
	        "metrics/pre-job-metrics.json",
	        "metrics/post-job-metrics.json",
	        "metrics/runner-installed.timestamp",
	        "metrics/runner-installation-start.timestamp",
	};
	char dir[PATH_MAX], path[PATH_MAX + 64];
	struct err e = {0};
	bool made = false, job_started = false;

	snprintf(dir, sizeof(dir), "%s/metrics/%s", m->cfg->manager.state_dir, name);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		struct buf b = BUF_INIT(METRICS_FILE_MAX);
		err_clear(&e);
		int r = i == 1 && finished && job_started
		                ? pull_post_job(m, p, name, files[i], &b, &e)
		                : provider_pull_file(p, name, files[i], METRICS_FILE_MAX, &b, &e);
		if (r < 0) {
			if (r != -ENOENT)
				log_warn("metrics %s: %s: %s", name, files[i], e.msg);
			buf_release(&b);
			continue;
		}
		job_started = job_started || i == 0;
		if (!made && mkdir_p(dir, 0700, &e) < 0) {
			log_warn("metrics %s: %s", name, e.msg);
			buf_release(&b);
			return;
		}
		made = true;
		snprintf(path, sizeof(path), "%s/%s", dir, strrchr(files[i], '/') + 1);
		if (file_write_atomic(path, b.data ? b.data : "", b.len, 0600, &e) < 0)
			log_warn("metrics %s: %s", name, e.msg);
		buf_release(&b);
	}
}

/*
 * An unhealthy instance's logs, saved to log_dir/<name>/ before it goes: the
 * runner's _diag logs, the startup script's log and the system log where the
 * provider can read them. Best effort and bounded: the files come from a
 * machine the job controlled.
 */
#define LOG_FILE_MAX  (8 << 20)
#define LOG_TOTAL_MAX (64 << 20)

static void save_one_log(struct manager *m, struct provider *p, const char *name, const char *src,
                         const char *dst_dir, const char *dst_name, size_t *budget)
{
	struct buf b = BUF_INIT(LOG_FILE_MAX);
	char path[PATH_MAX];
	struct err e = {0};

	if (*budget == 0)
		return;
	if (provider_pull_file(p, name, src, *budget < LOG_FILE_MAX ? *budget : LOG_FILE_MAX, &b,
	                       &e) < 0) {
		if (e.code != -ENOENT)
			log_debug("logs %s: %s: %s", name, src, e.msg);
		buf_release(&b);
		return;
	}
	if (mkdir_p(dst_dir, 0700, &e) == 0) {
		snprintf(path, sizeof(path), "%s/%s", dst_dir, dst_name);
		if (file_write_atomic(path, b.data ? b.data : "", b.len, 0600, &e) < 0)
			log_warn("logs %s: %s", name, e.msg);
	}
	*budget -= b.len < *budget ? b.len : *budget;
	buf_release(&b);
}

/*
 * The _diag folders (runnerd's own unpacked runner, then the image's), the
 * startup log, cloud-init's output and the syslog. Bounded in files and in
 * time as well as in bytes: a job can fill _diag with thousands of entries,
 * and the pass waits for this.
 */
#define LOG_DIAG_FILES_MAX 64
#define LOG_SAVE_BUDGET_MS 60000

static void save_logs(struct manager *m, struct provider *p, const char *name)
{
	static const char *const diag_dirs[] = {"runner/_diag", RUNNER_IMAGE_DIR "/_diag"};
	static const struct {
		const char *src, *dst;
	} singles[] = {
	        {"startup.log", "startup.log"},
	        {"/var/log/cloud-init-output.log", "cloud-init-output.log"},
	        {"/var/log/syslog", "syslog"},
	};
	char dir[PATH_MAX], diag[PATH_MAX], src[PATH_MAX];
	size_t budget = LOG_TOTAL_MAX, taken = 0;
	int64_t deadline = clock_wall_ms() + LOG_SAVE_BUDGET_MS;

	snprintf(dir, sizeof(dir), "%s/%s", m->cfg->manager.log_dir, name);
	snprintf(diag, sizeof(diag), "%s/_diag", dir);
	for (size_t d = 0; d < ARRAY_SIZE(diag_dirs) && provider_traits(p)->list_files; d++) {
		struct strv files = {0};
		struct err e = {0};
		if (provider_list_files(p, name, diag_dirs[d], &files, &e) < 0) {
			strv_release(&files);
			continue;
		}
		for (size_t i = 0; i < files.n && taken < LOG_DIAG_FILES_MAX; i++) {
			/* names from the instance: plain file names only */
			if (strchr(files.v[i], '/') || files.v[i][0] == '.')
				continue;
			if (clock_wall_ms() > deadline || atomic_load(&m->cancel))
				break;
			snprintf(src, sizeof(src), "%s/%s", diag_dirs[d], files.v[i]);
			save_one_log(m, p, name, src, diag, files.v[i], &budget);
			taken++;
		}
		if (files.n > LOG_DIAG_FILES_MAX)
			log_warn("logs %s: %s holds %zu files, saved %zu", name, diag_dirs[d],
			         files.n, taken);
		strv_release(&files);
	}
	for (size_t i = 0;
	     i < ARRAY_SIZE(singles) && clock_wall_ms() <= deadline && !atomic_load(&m->cancel);
	     i++)
		save_one_log(m, p, name, singles[i].src, dir, singles[i].dst, &budget);
	if (clock_wall_ms() > deadline)
		log_warn("logs %s: stopped after %d s, some logs were not saved", name,
		         LOG_SAVE_BUDGET_MS / 1000);
	log_info("logs of %s saved in %s", name, dir);
}

/* Remove saved logs and action log entries older than log_retention (at most once an hour). */
static void prune_logs(struct manager *m, int64_t now)
{
	DIR *d;
	struct dirent *de;

	if (m->logs_pruned_at && now - m->logs_pruned_at < 3600)
		return;
	m->logs_pruned_at = now;
	/* the store's action log follows the same retention */
	struct err pe = {0};
	if (store_prune_actions(m->store, now - m->cfg->manager.log_retention, &pe) < 0)
		log_warn("action log retention: %s", pe.msg);
	d = opendir(m->cfg->manager.log_dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		struct stat st;
		if (!name_is_owned(m->cfg->manager.name, de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", m->cfg->manager.log_dir, de->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
		    now - st.st_mtime > m->cfg->manager.log_retention) {
			struct err e = {0};
			if (rm_rf(path, &e) < 0)
				log_warn("log retention: %s", e.msg);
			else
				log_info("log retention: removed %s", path);
		}
	}
	closedir(d);
}

/* A deletion decided by sizing (not by the instance's health): it may meet a job. */
static bool is_sizing(enum delete_reason why)
{
	return why == WHY_SCALE_DOWN || why == WHY_FLUSH || why == WHY_DRAIN;
}

/* An older instance that shares its name with the one kept: only it goes. */
static void do_delete_duplicate(struct exec_ctx *x, const struct action *a)
{
	struct manager *m = x->m;
	const char *pname;
	struct provider *p = provider_of(x->m, a, NULL, &pname);
	struct err e = {0};
	int r;

	if (!p || !a->provider[0]) {
		report_add(m, x->rep, "delete", a->name, a->flavor, "duplicate", false,
		           "its provider is not known: left alone");
		return;
	}
	r = provider_delete(p, a->name, &e);
	report_add(m, x->rep, "delete", a->name, a->flavor, "duplicate", r == 0,
	           r == 0 ? "ok" : e.msg);
}

static void do_delete(struct exec_ctx *x, const struct action *a)
{
	struct manager *m = x->m;
	struct store_instance row;
	bool have_row = store_instance_get(m->store, a->name, &row, NULL) == 0;
	const char *why = delete_reason_name(a->why);
	const char *flavor = have_row ? row.flavor : a->flavor;
	const char *pname;
	struct provider *p = provider_of(m, a, have_row ? &row : NULL, &pname);
	struct err e = {0};
	int r;

	if (a->why == WHY_DUPLICATE) {
		do_delete_duplicate(x, a);
		return;
	}
	if (a->delete_instance && !p) {
		char msg[128];
		snprintf(msg, sizeof(msg), "its provider \"%s\" is not open: kept", pname);
		report_add(m, x->rep, "delete", a->name, flavor, why, false, msg);
		return;
	}
	if (have_row && row.phase != PHASE_DELETING) {
		row.phase = PHASE_DELETING;
		if (store_instance_put(m->store, &row, &e) < 0) {
			report_add(m, x->rep, "delete", a->name, flavor, why, false, e.msg);
			return;
		}
	}
	int64_t runner_id = a->runner_id;
	bool confirm = a->confirm_github;
	if (!runner_id && is_sizing(a->why) && !m->cfg->runner.jit) {
		/*
		 * Without JIT a booting runner registers itself: it may have done so,
		 * and taken a job, since the list. Ask GitHub for it by name.
		 */
		struct github_runner gr = {0};
		r = github_find_runner(m->gh, a->name, &gr, &e);
		if (r == 0 && gr.busy) {
			r = -EBUSY;
			err_set(&e, r, "busy");
		}
		if (r == 0) {
			runner_id = gr.id;
			confirm = true;
		}
		github_runner_release(&gr);
		if (r < 0 && r != -ENOENT) {
			if (have_row) {
				row.phase = PHASE_CREATED;
				store_instance_put(m->store, &row, NULL);
			}
			report_add(m, x->rep, "delete", a->name, flavor, why, r == -EBUSY,
			           r == -EBUSY ? "kept: the runner registered and took a job"
			                       : e.msg);
			return;
		}
		err_clear(&e);
	}
	if (confirm && runner_id) {
		r = github_delete_runner(m->gh, runner_id, &e);
		if (r < 0) {
			/* GitHub did not confirm: the instance stays. -EBUSY means a job
			 * arrived in between and the runner is busy now. */
			if (have_row) {
				row.phase = PHASE_CREATED;
				store_instance_put(m->store, &row, NULL);
			}
			report_add(m, x->rep, "delete", a->name, flavor, why, r == -EBUSY,
			           r == -EBUSY ? "kept: the runner became busy" : e.msg);
			return;
		}
	}
	if (a->delete_instance) {
		if (a->extract_metrics)
			extract_metrics(m, p, a->name, a->why == WHY_FINISHED);
		if (a->pull_logs)
			save_logs(m, p, a->name);
		err_clear(&e);
		r = provider_delete(p, a->name, &e);
		if (r < 0) {
			report_add(m, x->rep, "delete", a->name, flavor, why, false, e.msg);
			return; /* the row stays DELETING: the next pass retries */
		}
	}
	if (!confirm && runner_id) {
		err_clear(&e);
		r = github_delete_runner(m->gh, runner_id, &e);
		if (r < 0 && r != -EBUSY)
			log_warn("delete runner %s on GitHub: %s (retried as dangling)", a->name,
			         e.msg);
	}
	if (have_row && a->delete_instance)
		store_instance_delete(m->store, a->name, NULL);
	report_add(m, x->rep, "delete", a->name, flavor, why, true, "ok");
}

static void do_delete_runner(struct exec_ctx *x, const struct action *a)
{
	struct err e = {0};
	int r = github_delete_runner(x->m->gh, a->runner_id, &e);
	if (r == -EBUSY)
		report_add(x->m, x->rep, "delete-runner", a->name, "", delete_reason_name(a->why),
		           true, "kept: busy on GitHub, retried next pass");
	else
		report_add(x->m, x->rep, "delete-runner", a->name, "", delete_reason_name(a->why),
		           r == 0, r == 0 ? "ok" : e.msg);
}

static int registration_token(struct exec_ctx *x, char **ret, struct err *e)
{
	int r = 0;
	pthread_mutex_lock(&x->token_lock);
	if (!x->reg_token) {
		struct github_token t = {0};
		r = github_registration_token(x->m->gh, &t, e);
		if (r == 0) {
			x->reg_token = t.token;
			t.token = NULL;
		}
		github_token_release(&t);
	}
	if (r == 0) {
		*ret = strdup(x->reg_token);
		if (!*ret)
			r = err_set(e, -ENOMEM, "out of memory");
	}
	pthread_mutex_unlock(&x->token_lock);
	return r;
}

/*
 * The runner download an instance falls back to when its image has no
 * runner: GitHub's linux package for the flavor's arch. The list is read
 * once an hour at most (before the pass's workers start, so no lock).
 */
static void refresh_downloads(struct manager *m, int64_t now)
{
	struct github_app_list l = {0};
	struct err e = {0};

	if (m->apps_at && now - m->apps_at < 3600)
		return;
	if (github_list_runner_applications(m->gh, &l, &e) < 0) {
		log_warn("runner downloads: %s (instances without a runner in their image will "
		         "fail)",
		         e.msg);
		return;
	}
	github_app_list_release(&m->apps);
	m->apps = l;
	m->apps_at = now;
}

static const struct github_runner_app *download_for(const struct manager *m, enum arch a)
{
	for (size_t i = 0; i < m->apps.n; i++)
		if (strcmp(m->apps.v[i].os, "linux") == 0 &&
		    strcmp(m->apps.v[i].architecture, arch_name(a)) == 0 && m->apps.v[i].sha256[0])
			return &m->apps.v[i];
	return NULL;
}

static void do_create(struct exec_ctx *x, struct task *t)
{
	struct manager *m = x->m;
	const struct action *a = t->a;
	const struct config_flavor *f = config_flavor_find(m->cfg, a->flavor);
	struct provider *p = f ? provider_named(m, f->provider) : NULL;
	struct store_instance row = {0};
	struct github_jit jit = {0};
	struct strv labels = {0};
	struct buf script = BUF_INIT(1 << 20), env = BUF_INIT(64 * 1024);
	struct instance inst = {0};
	char *secret = NULL;
	struct err e = {0};
	int r;

	if (!f || !p) {
		report_add(m, x->rep, "create", "", a->flavor, "", false,
		           "no such flavor or provider");
		return;
	}
	if (provider_traits(p)->runner_from_host && !m->runner_tarball[0]) {
		/* nothing to run: do not spend a JIT registration on it */
		report_add(m, x->rep, "create", "", a->flavor, "", false,
		           "no verified runner package yet (see the runner binary warning)");
		return;
	}
	if (m->cfg->runner.jit && !m->runner_group_id) {
		report_add(m, x->rep, "create", "", a->flavor, "", false,
		           m->group_error[0] ? m->group_error : "runner group not resolved");
		return;
	}
	if (new_runner_name(m->cfg->manager.name, t->name, sizeof(t->name)) < 0) {
		report_add(m, x->rep, "create", "", a->flavor, "", false,
		           "no randomness for a name");
		return;
	}
	/* the name is durable before anything exists for it */
	str_copy(row.name, t->name, sizeof(row.name));
	str_copy(row.flavor, f->name, sizeof(row.flavor));
	str_copy(row.provider, f->provider, sizeof(row.provider));
	row.phase = PHASE_CREATING;
	row.created_at = clock_wall_ms() / 1000;
	row.cloud_state = CLOUD_CREATED;
	row.github_state = GH_ABSENT;
	r = store_instance_put(m->store, &row, &e);
	if (r < 0)
		goto fail;

	r = runner_labels(f, &labels);
	if (r < 0) {
		err_set(&e, r, "labels: out of memory");
		goto fail;
	}
	if (m->cfg->runner.jit) {
		char work[PATH_MAX];
		snprintf(work, sizeof(work), "_work");
		r = github_generate_jitconfig(m->gh, t->name, m->runner_group_id, &labels, work,
		                              &jit, &e);
		if (r < 0)
			goto fail;
		row.runner_id = jit.runner_id;
		store_instance_put(m->store, &row, NULL);
		r = runner_secret_env(jit.encoded_jit_config, true, &env);
	} else {
		r = registration_token(x, &secret, &e);
		if (r < 0)
			goto fail;
		r = runner_secret_env(secret, false, &env);
	}
	if (r < 0) {
		err_set(&e, r, "secret env: %s", strerror(-r));
		goto fail;
	}
	const struct provider_traits *traits = provider_traits(p);
	const struct github_runner_app *dl =
	        traits->runner_from_host ? NULL : download_for(m, f->arch);
	r = runner_script_for(m->cfg, f, t->name, traits->host_process,
	                      dl ? dl->download_url : NULL, dl ? dl->sha256 : NULL, &script, &e);
	if (r < 0)
		goto fail;

	struct instance_spec spec = {
	        .name = t->name,
	        .flavor = f,
	        .startup_script = buf_str(&script),
	        .secret_env = buf_str(&env),
	        .runner_tarball =
	                traits->runner_from_host && m->runner_tarball[0] ? m->runner_tarball : NULL,
	};
	r = provider_create(p, &spec, &inst, &e);
	if (r < 0)
		goto fail;
	row.phase = PHASE_CREATED;
	row.cloud_state = inst.state;
	str_copy(row.provider_id, inst.provider_id, sizeof(row.provider_id));
	store_instance_put(m->store, &row, NULL);
	report_add(m, x->rep, "create", t->name, f->name, "", true, "ok");
	goto out;
fail:
	/* leave nothing behind: the instance, the JIT registration, then the row */
	{
		struct err e2 = {0};
		bool instance_gone = provider_delete(p, t->name, &e2) == 0;
		if (!instance_gone)
			log_warn(
			        "create %s: cleanup of the instance failed: %s (retried next pass)",
			        t->name, e2.msg);
		if (jit.runner_id && github_delete_runner(m->gh, jit.runner_id, &e2) < 0)
			log_warn(
			        "create %s: cleanup of the runner failed: %s (retried as dangling)",
			        t->name, e2.msg);
		if (instance_gone) {
			store_instance_delete(m->store, t->name, NULL);
		} else if (row.name[0]) {
			/* the row stays, DELETING: the next pass deletes what is left
			 * instead of adopting it as a runner that holds a slot */
			row.phase = PHASE_DELETING;
			store_instance_put(m->store, &row, NULL);
		}
	}
	report_add(m, x->rep, "create", t->name, f->name, "", false, e.msg);
out:
	if (secret) {
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
	github_jit_release(&jit);
	buf_wipe(&env);
	buf_release(&script);
	strv_release(&labels);
}

/*
 * An instance of ours with no row (a crash before the row was written, or a
 * lost store): record it as it is -- its provider, its own creation time
 * (so the bootstrap timeout and the scale-down order still hold), its state.
 */
static void do_adopt(struct exec_ctx *x, const struct action *a)
{
	struct store_instance row = {0};
	const struct config_flavor *f = config_flavor_find(x->m->cfg, a->flavor);
	struct err e = {0};
	int r;

	str_copy(row.name, a->name, sizeof(row.name));
	str_copy(row.flavor, a->flavor, sizeof(row.flavor));
	str_copy(row.provider,
	         a->provider[0] ? a->provider
	         : f            ? f->provider
	                        : "",
	         sizeof(row.provider));
	row.phase = PHASE_CREATED;
	row.created_at = a->created_at > 0 ? a->created_at : clock_wall_ms() / 1000;
	row.cloud_state = a->cloud;
	r = store_instance_put(x->m->store, &row, &e);
	report_add(x->m, x->rep, "adopt", a->name, a->flavor, "", r == 0, r == 0 ? "ok" : e.msg);
}

static void run_task(void *ctx, size_t i)
{
	struct exec_ctx *x = ctx;
	struct task *t = &x->tasks[i];
	struct err e = {0};

	switch (t->a->kind) {
	case ACTION_CREATE:
		do_create(x, t);
		break;
	case ACTION_DELETE:
		do_delete(x, t->a);
		break;
	case ACTION_DELETE_RUNNER:
		do_delete_runner(x, t->a);
		break;
	case ACTION_ADOPT:
		do_adopt(x, t->a);
		break;
	case ACTION_FORGET: {
		int r = store_instance_delete(x->m->store, t->a->name, &e);
		report_add(x->m, x->rep, "forget", t->a->name, "", delete_reason_name(t->a->why),
		           r == 0, r == 0 ? "ok" : e.msg);
		break;
	}
	}
}

static void resolve_runner_group(struct manager *m)
{
	struct err e = {0};
	int64_t id = 1;

	if (!m->cfg->github.is_org) {
		m->runner_group_id = 1;
		return;
	}
	/* never a silent fallback to the default group: runners registered in
	 * the wrong group run jobs the operator did not mean them to */
	if (github_runner_group_id(m->gh, m->cfg->github.runner_group, &id, &e) < 0) {
		log_warn("runner group %s: %s (no runner is created until it resolves)",
		         m->cfg->github.runner_group, e.msg);
		snprintf(m->group_error, sizeof(m->group_error), "runner group %s: %s",
		         m->cfg->github.runner_group, e.msg);
		return;
	}
	m->group_error[0] = '\0';
	m->runner_group_id = id;
}

/* Each provider's leftovers (stray processes, ...), once a pass after its actions. */
static void collect_leftovers(struct manager *m)
{
	for (size_t i = 0; i < m->n_providers && !atomic_load(&m->cancel); i++) {
		struct err e = {0};
		if (provider_gc(m->providers[i], &e) < 0)
			log_warn("provider %s: leftovers: %s", provider_name(m->providers[i]),
			         e.msg);
	}
}

static int execute(struct manager *m, const struct plan *plan, struct manager_report *rep)
{
	struct exec_ctx x = {.m = m, .rep = rep};
	size_t n = 0, k = 0;
	bool creates = false;

	/* adoptions first: every instance acted on below then has its row */
	for (size_t i = 0; i < plan->n_actions; i++)
		if (plan->actions[i].kind == ACTION_ADOPT)
			do_adopt(&x, &plan->actions[i]);
	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct action *a = &plan->actions[i];
		if (a->kind == ACTION_ADOPT)
			continue;
		n += a->kind == ACTION_CREATE ? (size_t)a->count : 1;
		creates = creates || a->kind == ACTION_CREATE;
	}
	if (n == 0)
		return 0;
	if (creates && !m->runner_group_id)
		resolve_runner_group(m);
	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct config_flavor *f =
		        plan->actions[i].kind == ACTION_CREATE
		                ? config_flavor_find(m->cfg, plan->actions[i].flavor)
		                : NULL;
		struct provider *p = f ? provider_named(m, f->provider) : NULL;
		if (p && !provider_traits(p)->runner_from_host)
			refresh_downloads(m, clock_wall_ms() / 1000);
		else if (p)
			fetch_runner_bin(m, clock_wall_ms() / 1000);
	}
	x.tasks = calloc(n, sizeof(*x.tasks));
	if (!x.tasks)
		return -ENOMEM;
	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct action *a = &plan->actions[i];
		int64_t c = a->kind == ACTION_CREATE ? a->count : a->kind == ACTION_ADOPT ? 0 : 1;
		for (int64_t j = 0; j < c; j++)
			x.tasks[k++].a = a;
	}
	pthread_mutex_init(&x.token_lock, NULL);
	executor_run(n, (size_t)m->cfg->manager.create_concurrency, run_task, &x, &m->cancel);
	pthread_mutex_destroy(&x.token_lock);
	if (x.reg_token) {
		explicit_bzero(x.reg_token, strlen(x.reg_token));
		free(x.reg_token);
	}
	free(x.tasks);
	return 0;
}

/*
 * Rewrites the planned actions before they run (the original's narrower
 * operations: cleanup only, create n, delete n). Returns 0 or -errno.
 */
typedef int (*select_fn)(struct manager *m, struct plan *plan, void *arg);

static int pass(struct manager *m, enum plan_mode mode, bool act, select_fn sel, void *arg,
                struct manager_report *rep, struct err *e)
{
	struct observation o;
	int64_t now;
	int r;

	memset(rep, 0, sizeof(*rep));
	rep->started_at = clock_wall_ms();
	now = rep->started_at / 1000;
	pthread_mutex_lock(&m->pass_lock);
	r = observe(m, &o, rep, now);
	if (r < 0) {
		err_set(e, r, "observe: %s", strerror(-r));
		goto out;
	}
	r = plan_pass(m, &o, mode, now, &rep->plan);
	if (r < 0) {
		err_set(e, r, "plan: %s", strerror(-r));
		goto out;
	}
	rep->deletions_blocked = rep->plan.deletions_blocked;
	if (sel) {
		r = sel(m, &rep->plan, arg);
		if (r < 0) {
			err_set(e, r, "%s", strerror(-r));
			goto out;
		}
	}
	if (act && !atomic_load(&m->cancel)) {
		r = execute(m, &rep->plan, rep);
		collect_leftovers(m);
		prune_logs(m, now);
	}
out:
	observation_release(&o);
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

/* ---- JSON ------------------------------------------------------------- */

int manager_report_json(const struct manager_report *r, bool draining, struct buf *out)
{
	int64_t now = r->finished_at / 1000;

	buf_printf(
	        out,
	        "{\"draining\":%s,\"empty\":%s,\"deletions_blocked\":%s,\"started_at_ms\":%" PRId64
	        ",\"duration_ms\":%" PRId64 ",\"github_error\":",
	        draining ? "true" : "false", manager_is_empty(r) ? "true" : "false",
	        r->deletions_blocked ? "true" : "false", r->started_at,
	        r->finished_at - r->started_at);
	buf_json_string(out, r->github_error);
	buf_puts(out, ",\"provider_error\":");
	buf_json_string(out, r->provider_error);
	buf_puts(out, ",\"flavors\":[");
	for (size_t i = 0; i < r->plan.n_counts; i++) {
		const struct plan_flavor_count *c = &r->plan.counts[i];
		buf_printf(out, "%s{\"name\":", i ? "," : "");
		buf_json_string(out, c->name);
		buf_printf(out,
		           ",\"online\":%" PRId64 ",\"offline\":%" PRId64 ",\"busy\":%" PRId64
		           ",\"idle\":%" PRId64 ",\"unknown\":%" PRId64 ",\"pending\":%" PRId64
		           ",\"desired\":%" PRId64 "}",
		           c->online, c->offline, c->busy, c->idle, c->unknown, c->pending,
		           c->desired);
	}
	buf_puts(out, "],\"runners\":[");
	for (size_t i = 0; i < r->plan.n_views; i++) {
		const struct plan_view *v = &r->plan.views[i];
		buf_printf(out, "%s{\"name\":", i ? "," : "");
		buf_json_string(out, v->name);
		buf_puts(out, ",\"flavor\":");
		buf_json_string(out, v->flavor);
		buf_printf(out,
		           ",\"github_state\":\"%s\",\"cloud_state\":\"%s\",\"health\":\"%s\","
		           "\"runner_id\":%" PRId64 ",\"age_s\":%" PRId64 "}",
		           github_state_name(v->github_state), cloud_state_name(v->cloud_state),
		           health_name(v->health), v->runner_id,
		           v->created_at ? now - v->created_at : 0);
	}
	buf_puts(out, "],\"actions\":[");
	for (size_t i = 0; i < r->n_events; i++) {
		const struct manager_event *ev = &r->events[i];
		buf_printf(out, "%s{\"action\":", i ? "," : "");
		buf_json_string(out, ev->action);
		buf_puts(out, ",\"name\":");
		buf_json_string(out, ev->name);
		buf_puts(out, ",\"flavor\":");
		buf_json_string(out, ev->flavor);
		buf_puts(out, ",\"reason\":");
		buf_json_string(out, ev->reason);
		buf_printf(out, ",\"ok\":%s,\"outcome\":", ev->ok ? "true" : "false");
		buf_json_string(out, ev->outcome);
		buf_puts(out, "}");
	}
	return buf_puts(out, "]}\n");
}
