/*
 * What a runner needs before its instance is created, kept between passes:
 * runnerd's verified runner package for instances that run it from the host
 * (checked hourly, retried every minute while missing, the last verified
 * copy when GitHub cannot be reached; fetched on a thread of its own, so a
 * slow download never holds the passes), GitHub's runner downloads for
 * instances that fetch it themselves, and the runner group (org scope). It
 * must never fall back silently to an unverified package or to the default
 * runner group.
 */
#include "util/common.h"
#include "manager/manager_internal.h"
#include "util/clock.h"
#include "util/fileutil.h"
#include "util/log.h"
#include "util/strutil.h"

/* The verified copy update_runner_bin left in state_dir/runner-bin (current-<arch>), into out. */
static bool cached_runner_bin(const char *state_dir, enum arch arch, char *out, size_t cap)
{
	char cur[PATH_MAX], line[256], path[PATH_MAX];
	struct buf b = BUF_INIT(sizeof(line));
	struct stat st;
	bool ok = false;

	snprintf(cur, sizeof(cur), "%s/runner-bin/current-%s", state_dir, arch_name(arch));
	if (file_read(cur, sizeof(line) - 1, true, &b, NULL) == 0 && b.len > 0 &&
	    b.len < sizeof(line)) {
		str_copy(line, b.data, sizeof(line));
		line[strcspn(line, "\n")] = '\0';
		if (line[0] && !strchr(line, '/') && line[0] != '.') {
			snprintf(path, sizeof(path), "%s/runner-bin/%s", state_dir, line);
			if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				str_copy(out, path, cap);
				ok = true;
			}
		}
	}
	buf_release(&b);
	return ok;
}

/* One fetch, on its own thread: what it needs, copied (the config may be reloaded). */
struct pkg_job {
	struct manager *m;
	struct github *gh;
	enum arch arch;
	char state_dir[PATH_MAX];
};

/*
 * The fetch: GitHub's current package, verified; when GitHub cannot be
 * reached and there is no package yet, the last verified download. It
 * never touches m but under pkg_lock.
 */
static void *pkg_fetch_main(void *arg)
{
	struct pkg_job *j = arg;
	struct manager *m = j->m;
	struct github_bin_result res = {0};
	char cached[PATH_MAX] = "", kept[PATH_MAX];
	struct err e = {0};
	bool have_cached = false;
	int r;

	pthread_setname_np(pthread_self(), "runner-fetch");
	r = github_runner_bin_update(j->gh, j->arch, j->state_dir, &res, &e);

	pthread_mutex_lock(&m->pkg_lock);
	if (r == 0) {
		m->runner_bin_at = clock_wall_ms() / 1000;
		str_copy(m->runner_tarball, res.path, sizeof(m->runner_tarball));
		manager_runner_version_in_use(m, res.version);
	} else if (!m->runner_tarball[0] &&
	           cached_runner_bin(j->state_dir, j->arch, cached, sizeof(cached))) {
		str_copy(m->runner_tarball, cached, sizeof(m->runner_tarball));
		have_cached = true;
	}
	str_copy(kept, m->runner_tarball, sizeof(kept));
	m->pkg_running = false;
	pthread_cond_broadcast(&m->pkg_done);
	pthread_mutex_unlock(&m->pkg_lock);

	if (r == 0 && res.outcome != GITHUB_BIN_UNCHANGED)
		log_info("runner binary %s: %s%s%s (%s)", arch_name(j->arch), res.old_version,
		         res.old_version[0] ? " -> " : "", res.version,
		         github_bin_outcome_name(res.outcome));
	else if (r == -ECANCELED)
		log_debug("runner binary: %s", e.msg);
	else if (r < 0 && have_cached)
		log_warn("runner binary: %s (using the verified copy %s)", e.msg, kept);
	else if (r < 0 && !kept[0])
		log_warn("runner binary: %s (no local instance can start until it is fetched)",
		         e.msg);
	else if (r < 0)
		log_warn("runner binary: %s (keeping %s)", e.msg, kept);
	free(j);
	return NULL;
}

void manager_runner_pkg_init(struct manager *m)
{
	pthread_condattr_t a;

	pthread_mutex_init(&m->pkg_lock, NULL);
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&m->pkg_done, &a);
	pthread_condattr_destroy(&a);
}

void manager_runner_pkg_cancel(struct manager *m)
{
	pthread_mutex_lock(&m->pkg_lock);
	if (m->pkg_gh)
		github_cancel(m->pkg_gh);
	pthread_mutex_unlock(&m->pkg_lock);
}

void manager_runner_pkg_stop(struct manager *m)
{
	struct github *gh;
	bool join;

	pthread_mutex_lock(&m->pkg_lock);
	if (m->pkg_gh)
		github_cancel(m->pkg_gh);
	join = m->pkg_joinable;
	m->pkg_joinable = false;
	pthread_mutex_unlock(&m->pkg_lock);
	if (join)
		pthread_join(m->pkg_thread, NULL);
	/* no fetch runs now, and only the pass (or its owner) starts one */
	pthread_mutex_lock(&m->pkg_lock);
	gh = m->pkg_gh;
	m->pkg_gh = NULL;
	pthread_mutex_unlock(&m->pkg_lock);
	github_free(gh);
}

bool manager_runner_tarball(struct manager *m, char *out, size_t cap)
{
	bool have;

	pthread_mutex_lock(&m->pkg_lock);
	have = m->runner_tarball[0] != '\0';
	str_copy(out, m->runner_tarball, cap);
	pthread_mutex_unlock(&m->pkg_lock);
	return have;
}

/* Start a fetch (under pkg_lock, none running); false when it could not start. */
static bool pkg_fetch_start(struct manager *m, enum arch arch, int64_t now)
{
	struct pkg_job *j = calloc(1, sizeof(*j));
	struct err e = {0};

	m->runner_bin_tried_at = now;
	if (m->pkg_joinable) {
		/* the last fetch has ended (pkg_running is false): reap it */
		pthread_join(m->pkg_thread, NULL);
		m->pkg_joinable = false;
	}
	if (!j || (!m->pkg_gh && github_new(m->cfg, NULL, &m->pkg_gh, &e) < 0)) {
		log_warn("runner binary: %s (retried in a minute)", j ? e.msg : "out of memory");
		free(j);
		return false;
	}
	j->m = m;
	j->gh = m->pkg_gh;
	j->arch = arch;
	str_copy(j->state_dir, m->cfg->manager.state_dir, sizeof(j->state_dir));
	if (pthread_create(&m->pkg_thread, NULL, pkg_fetch_main, j) != 0) {
		log_warn("runner binary: cannot start a thread to fetch it (retried in a minute)");
		free(j);
		return false;
	}
	m->pkg_running = true;
	m->pkg_joinable = true;
	return true;
}

/*
 * The verified runner package local instances start from: checked against
 * GitHub at most once an hour, retried every minute while there is none,
 * and taken from the last verified download when GitHub cannot be reached.
 * The fetch runs beside the passes (a download may trickle for up to half
 * an hour): only the pass that starts it while there is no package yet
 * waits for it, at most 2 x request_timeout, so that a first start on a
 * good network creates its local runners at once.
 */
static void fetch_runner_bin(struct manager *m, int64_t now)
{
	bool need_local = false, due;
	enum arch arch = ARCH_X64;
	int64_t rt = m->cfg->github.request_timeout > 0 ? m->cfg->github.request_timeout : 30;

	for (size_t i = 0; i < m->cfg->n_flavors; i++) {
		struct provider *p = manager_provider_named(m, m->cfg->flavors[i].provider);
		if (p && provider_traits(p)->runner_from_host) {
			need_local = true;
			arch = m->cfg->flavors[i].arch;
		}
	}
	if (!need_local)
		return;
	pthread_mutex_lock(&m->pkg_lock);
	due = !m->pkg_running &&
	      (m->runner_tarball[0]
	               ? now - m->runner_bin_at >= 3600
	               : !m->runner_bin_tried_at || now - m->runner_bin_tried_at >= 60);
	if (due && pkg_fetch_start(m, arch, now) && !m->runner_tarball[0]) {
		int64_t at = clock_mono_ms() + 2 * rt * 1000;
		struct timespec ts = {.tv_sec = at / 1000, .tv_nsec = (at % 1000) * 1000000L};

		while (m->pkg_running)
			if (pthread_cond_timedwait(&m->pkg_done, &m->pkg_lock, &ts) == ETIMEDOUT)
				break;
	}
	pthread_mutex_unlock(&m->pkg_lock);
}

/*
 * The version of GitHub's linux package (actions-runner-linux-x64-2.321.0.tar.gz):
 * what instances that download it run, unless their image's runner is recent.
 */
static void note_download_version(struct manager *m)
{
	for (size_t i = 0; i < m->apps.n; i++) {
		const char *fn = m->apps.v[i].filename, *dash = strrchr(fn, '-');
		char v[32];

		if (strcmp(m->apps.v[i].os, "linux") != 0 || !dash)
			continue;
		str_copy(v, dash + 1, sizeof(v));
		if (strlen(v) > 7 && strcmp(v + strlen(v) - 7, ".tar.gz") == 0)
			v[strlen(v) - 7] = '\0';
		manager_runner_version_in_use(m, v);
		return;
	}
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
	note_download_version(m);
}

const struct github_runner_app *manager_runner_download(const struct manager *m, enum arch a)
{
	for (size_t i = 0; i < m->apps.n; i++)
		if (strcmp(m->apps.v[i].os, "linux") == 0 &&
		    strcmp(m->apps.v[i].architecture, arch_name(a)) == 0 && m->apps.v[i].sha256[0])
			return &m->apps.v[i];
	return NULL;
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

/*
 * Whether some flavor's provider starts its runner from the host's package
 * (host), and whether some other one does not (other).
 */
static void providers_in_use(struct manager *m, bool *host, bool *other)
{
	*host = *other = false;
	for (size_t i = 0; i < m->cfg->n_flavors; i++) {
		struct provider *p = manager_provider_named(m, m->cfg->flavors[i].provider);
		if (p && provider_traits(p)->runner_from_host)
			*host = true;
		else if (p)
			*other = true;
	}
}

void manager_runner_pkg_refresh(struct manager *m, int64_t now)
{
	bool host, other;

	m->apps_at = 0;
	pthread_mutex_lock(&m->pkg_lock);
	m->runner_bin_at = 0;
	pthread_mutex_unlock(&m->pkg_lock);
	providers_in_use(m, &host, &other);
	if (host)
		fetch_runner_bin(m, now);
	if (other)
		refresh_downloads(m, now);
}

void manager_runner_pkg_warm(struct manager *m, int64_t now)
{
	bool host, other, have;

	if (m->warmed)
		return; /* once: what fails here is tried again by the creates that need it */
	m->warmed = true;
	providers_in_use(m, &host, &other);
	if (!m->runner_group_id)
		resolve_runner_group(m);
	if (other && !m->apps_at)
		refresh_downloads(m, now);
	pthread_mutex_lock(&m->pkg_lock);
	have = m->runner_tarball[0] || m->runner_bin_tried_at;
	pthread_mutex_unlock(&m->pkg_lock);
	if (host && !have)
		fetch_runner_bin(m, now);
}

/*
 * Before the workers of a pass that creates start: the runner group (JIT),
 * and the package each create's provider needs (GitHub's download for
 * instances that fetch it, runnerd's verified copy for host instances).
 */
void manager_runner_pkg_prepare(struct manager *m, const struct plan *plan)
{
	if (!m->runner_group_id)
		resolve_runner_group(m);
	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct config_flavor *f =
		        plan->actions[i].kind == ACTION_CREATE
		                ? config_flavor_find(m->cfg, plan->actions[i].flavor)
		                : NULL;
		struct provider *p = f ? manager_provider_named(m, f->provider) : NULL;
		if (p && !provider_traits(p)->runner_from_host)
			refresh_downloads(m, clock_wall_ms() / 1000);
		else if (p)
			fetch_runner_bin(m, clock_wall_ms() / 1000);
	}
}
