/*
 * The manager's life cycle: build it over given parts or open them all from
 * the config (state-dir lock, store, GitHub client, the providers of the
 * flavors and of instances still ours), apply the config's policy to the
 * providers, reload, cancel, and the drain flag. It must never run a pass
 * (pass.c does) nor open a provider the config does not name or our
 * instances do not live on.
 */
#include "util/common.h"
#include "manager/manager_internal.h"
#include "util/fileutil.h"
#include "util/log.h"
#include "util/strutil.h"

struct provider *manager_provider_named(struct manager *m, const char *name)
{
	for (size_t i = 0; name && *name && i < m->n_providers; i++)
		if (strcmp(provider_name(m->providers[i]), name) == 0)
			return m->providers[i];
	return NULL;
}

void manager_metrics_opts(const struct manager *m, struct metrics_opts *ret)
{
	*ret = (struct metrics_opts){
	        .manager = m->cfg->manager.name,
	        .state_dir = m->cfg->manager.state_dir,
	        .log_dir = m->cfg->manager.log_dir,
	        .log_retention = m->cfg->manager.log_retention,
	        .metrics_retention = m->cfg->manager.metrics_retention,
	        .logs_max_bytes = (uint64_t)m->cfg->manager.logs_max_size,
	        .cancel = &m->cancel,
	};
}

int manager_new(const struct config *cfg, struct store *store, struct github *gh,
                struct provider **providers, size_t n_providers, struct manager **ret,
                struct err *e)
{
	struct manager *m;
	char *v = NULL;
	bool draining = false;
	int r;

	if (n_providers > MANAGER_MAX_PROVIDERS)
		return err_set(e, -EINVAL, "too many providers");
	/* a drained manager that forgot it would refill its pools: no start then */
	r = store_kv_get(store, "drain", &v, e);
	if (r < 0 && r != -ENOENT) {
		err_prefix(e, "the drain flag");
		return r;
	}
	if (r == 0) {
		draining = strcmp(v, "1") == 0;
		free(v);
	}
	err_clear(e);
	m = calloc(1, sizeof(*m));
	if (!m)
		return err_set(e, -ENOMEM, "out of memory");
	m->cfg = cfg;
	m->store = store;
	m->gh = gh;
	m->lock_fd = -1;
	atomic_init(&m->cancel, false);
	atomic_init(&m->draining, draining);
	for (size_t i = 0; i < n_providers; i++) {
		m->providers[i] = providers[i];
		provider_set_cancel(providers[i], &m->cancel);
	}
	m->n_providers = n_providers;
	pthread_mutex_init(&m->pass_lock, NULL);
	pthread_mutex_init(&m->report_lock, NULL);
	pthread_mutex_init(&m->drain_lock, NULL);
	pthread_mutex_init(&m->disk_lock, NULL);
	pthread_mutex_init(&m->events_lock, NULL);
	manager_runner_pkg_init(m);
	manager_runner_version_init(m);
	manager_quota_init(m);
	*ret = m;
	return 0;
}

/* Distinct provider names used by the configured flavors. */
static size_t used_providers(const struct config *cfg, const char *names[MANAGER_MAX_PROVIDERS])
{
	size_t n = 0;
	for (size_t i = 0; i < cfg->n_flavors; i++) {
		bool seen = false;
		for (size_t j = 0; j < n; j++)
			seen = seen || strcmp(names[j], cfg->flavors[i].provider) == 0;
		if (!seen && n < MANAGER_MAX_PROVIDERS)
			names[n++] = cfg->flavors[i].provider;
	}
	return n;
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
                          struct provider *provs[MANAGER_MAX_PROVIDERS], size_t *ret_n,
                          struct err *e)
{
	const char *names[MANAGER_MAX_PROVIDERS];
	char row_names[MANAGER_MAX_PROVIDERS][PROVIDER_NAME_MAX];
	size_t np = used_providers(cfg, names), n_rows = 0;
	struct store_instance_list rows = {0};
	struct err le = {0};
	int r = 0;

	if (store_instance_list(store, &rows, &le) < 0) {
		/* the first pass cannot read the store either: it will say so */
		log_warn("%s (providers that hold instances of flavors no longer configured are "
		         "not opened)",
		         le.msg);
	} else {
		for (size_t i = 0; i < rows.n; i++) {
			bool have = !rows.v[i].provider[0];
			for (size_t j = 0; j < np && !have; j++)
				have = strcmp(names[j], rows.v[i].provider) == 0;
			if (!have && np < MANAGER_MAX_PROVIDERS) {
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
	struct provider *provs[MANAGER_MAX_PROVIDERS] = {0};
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
	m->events_enabled = true;
	(void)apply_policy(m, cfg, true); /* logged by manager_log_setup */
	*ret = m;
	return 0;
fail:
	for (size_t i = 0; i < MANAGER_MAX_PROVIDERS; i++)
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
	manager_runner_pkg_stop(m);
	if (m->owns_parts) {
		for (size_t i = 0; i < m->n_providers; i++)
			provider_free(m->providers[i]);
		store_close(m->store);
		store_unlock(m->lock_fd);
	}
	if (m->owns_gh)
		github_free(m->gh);
	github_app_list_release(&m->apps);
	manager_events_release(m);
	manager_ahead_release(m);
	pthread_mutex_destroy(&m->events_lock);
	pthread_mutex_destroy(&m->pass_lock);
	pthread_mutex_destroy(&m->report_lock);
	pthread_mutex_destroy(&m->drain_lock);
	pthread_mutex_destroy(&m->disk_lock);
	pthread_cond_destroy(&m->pkg_done);
	pthread_mutex_destroy(&m->pkg_lock);
	pthread_mutex_destroy(&m->ver_lock);
	pthread_mutex_destroy(&m->quota_lock);
	free(m);
}

void manager_set_hooks(struct manager *m, const struct manager_hooks *h)
{
	m->hooks = *h;
}

struct store *manager_store(struct manager *m)
{
	return m->store;
}

struct github *manager_github(struct manager *m)
{
	return m->gh;
}

void manager_cancel(struct manager *m)
{
	atomic_store(&m->cancel, true);
	/* GitHub calls under way end now (-ECANCELED), not after their retries; the
	 * providers see the same flag */
	github_cancel(m->gh);
	manager_runner_pkg_cancel(m);
}

bool manager_draining(struct manager *m)
{
	return atomic_load(&m->draining);
}

void manager_next_pass_quick(struct manager *m)
{
	atomic_store(&m->pass_quick, true);
}

int manager_set_draining(struct manager *m, bool on, struct err *e)
{
	int r;

	/* not the pass lock: drain and resume never wait behind a running pass
	 * (which reads the flag as it plans); this lock only keeps the flag and
	 * its store row in step when drain and resume race */
	pthread_mutex_lock(&m->drain_lock);
	r = on ? store_kv_set(m->store, "drain", "1", e) : store_kv_delete(m->store, "drain", e);
	if (r == 0)
		atomic_store(&m->draining, on);
	pthread_mutex_unlock(&m->drain_lock);
	return r;
}

int manager_reload(struct manager *m, const struct config *cfg, struct err *e)
{
	const char *names[MANAGER_MAX_PROVIDERS];
	size_t np;

	if (strcmp(cfg->manager.name, m->cfg->manager.name) != 0)
		return err_set(e, -EINVAL,
		               "manager.name cannot change on reload (restart instead)");
	if (strcmp(cfg->manager.state_dir, m->cfg->manager.state_dir) != 0)
		return err_set(e, -EINVAL,
		               "manager.state_dir cannot change on reload (restart instead)");
	np = used_providers(cfg, names);
	for (size_t i = 0; i < np; i++) {
		if (!manager_provider_named(m, names[i]))
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
		/* a fetch under way uses the old config: it ends, the next pass starts anew */
		manager_runner_pkg_stop(m);
		/* the request counters go on where the old client stopped */
		github_adopt_counters(gh, m->gh);
		if (m->owns_gh)
			github_free(m->gh);
		m->gh = gh;
		m->owns_gh = true;
		m->cfg = cfg;
		m->runner_group_id = 0; /* github.runner_group may have changed */
		m->apps_at = 0;
		m->warmed = false;
		manager_ahead_release(m); /* the flavors may be others now */
		pthread_mutex_lock(&m->pkg_lock);
		m->runner_bin_at = 0;
		m->runner_bin_tried_at = 0;
		pthread_mutex_unlock(&m->pkg_lock);
		/* the denylist and what jobs must not see follow the config now */
		(void)apply_policy(m, cfg, false);
	}
	pthread_mutex_unlock(&m->pass_lock);
	return r;
}
