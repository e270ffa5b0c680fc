/*
 * What a runner needs before its instance is created, kept between passes:
 * runnerd's verified runner package for instances that run it from the host
 * (checked hourly, retried every minute while missing, the last verified
 * copy when GitHub cannot be reached), GitHub's runner downloads for
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
		struct provider *p = manager_provider_named(m, m->cfg->flavors[i].provider);
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
