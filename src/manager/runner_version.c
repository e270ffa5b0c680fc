/*
 * Runner versions, which GitHub enforces since 2026 (a runner below its
 * minimum is refused; one more than 30 days behind the latest release gets
 * no job): GitHub's releases read every runner.version_check_interval with a
 * conditional request; the floor an image's runner must reach to be used as
 * is; the notes instances leave (an image's runner too old, a version GitHub
 * refused); and the hold on a flavor whose runners GitHub refuses, so that a
 * refused version never becomes a create/delete loop. It must never hold a
 * flavor without saying why, nor trust an instance's note beyond a version.
 */
#include "util/common.h"
#include "manager/manager_internal.h"
#include "runner/runner_version.h"
#include "util/log.h"
#include "util/strutil.h"

/* A flavor held for a refused version tries one runner again after this. */
#define HOLD_RETRY_S 3600

void manager_runner_version_init(struct manager *m)
{
	pthread_mutex_init(&m->ver_lock, NULL);
}

/* The releases as runner_version.c's pure functions take them (under ver_lock). */
static size_t releases(const struct manager *m, struct runner_release *out)
{
	for (size_t i = 0; i < m->releases.n; i++) {
		str_copy(out[i].version, m->releases.v[i].version, sizeof(out[i].version));
		out[i].published_at = m->releases.v[i].published_at;
	}
	return m->releases.n;
}

void manager_runner_version_check(struct manager *m, int64_t now)
{
	struct github_runner_releases got;
	int64_t every = m->cfg->runner.version_check_interval > 0
	                        ? m->cfg->runner.version_check_interval
	                        : 3600;
	char was[32] = "";
	struct err e = {0};
	bool changed = false;
	int r;

	if (m->releases_tried_at && now - m->releases_tried_at < every)
		return;
	m->releases_tried_at = now;
	r = github_runner_releases(m->gh, &got, &e);
	pthread_mutex_lock(&m->ver_lock);
	if (r < 0) {
		if (strcmp(m->versions.error, e.msg) != 0)
			log_warn("runner releases: %s (runner ages unknown; images' runners are "
			         "used as they are)",
			         e.msg);
		str_copy(m->versions.error, e.msg, sizeof(m->versions.error));
		pthread_mutex_unlock(&m->ver_lock);
		return;
	}
	if (m->releases.n)
		str_copy(was, m->releases.v[0].version, sizeof(was));
	m->releases = got;
	m->versions.checked_at = now;
	m->versions.error[0] = '\0';
	changed = got.n && strcmp(was, got.v[0].version) != 0;
	pthread_mutex_unlock(&m->ver_lock);
	if (changed && was[0]) {
		log_info("runner release %s is out (was %s): new instances get it",
		         got.v[0].version, was);
		/* fetch the package and the downloads list again now, not within the hour
		 * (and not only in a pass that creates: a held flavor creates nothing) */
		manager_runner_pkg_refresh(m, now);
	}
}

void manager_runner_version_in_use(struct manager *m, const char *version)
{
	if (!runner_version_valid(version))
		return;
	pthread_mutex_lock(&m->ver_lock);
	str_copy(m->versions.in_use, version[0] == 'v' ? version + 1 : version,
	         sizeof(m->versions.in_use));
	pthread_mutex_unlock(&m->ver_lock);
}

void manager_runner_image_floor(struct manager *m, const char *flavor, char *out, size_t cap)
{
	struct runner_release rel[GITHUB_RELEASES_MAX];
	char refused[32] = "";
	size_t n;

	pthread_mutex_lock(&m->ver_lock);
	n = releases(m, rel);
	for (size_t i = 0; flavor && i < m->versions.n_flavors; i++)
		if (strcmp(m->versions.flavors[i].flavor, flavor) == 0)
			str_copy(refused, m->versions.flavors[i].last_refused, sizeof(refused));
	pthread_mutex_unlock(&m->ver_lock);
	runner_version_floor(rel, n, time(NULL), m->cfg->runner.image_runner_max_behind, out, cap);
	/* GitHub refused a version the floor allows: an image's runner of it is replaced
	 * too ("2.321.0.1" is above 2.321.0 and below any later release) */
	if (refused[0] && runner_version_cmp(out, refused) <= 0) {
		char above[40];
		snprintf(above, sizeof(above), "%s.1", refused);
		if (runner_version_valid(above))
			str_copy(out, above, cap);
	}
}

/* The entry of flavor (added when there is room), under ver_lock; NULL when full. */
static struct manager_flavor_runner *flavor_entry(struct manager *m, const char *flavor)
{
	struct manager_runner_versions *v = &m->versions;

	for (size_t i = 0; i < v->n_flavors; i++)
		if (strcmp(v->flavors[i].flavor, flavor) == 0)
			return &v->flavors[i];
	if (v->n_flavors == ARRAY_SIZE(v->flavors))
		return NULL;
	memset(&v->flavors[v->n_flavors], 0, sizeof(v->flavors[0]));
	str_copy(v->flavors[v->n_flavors].flavor, flavor, FLAVOR_NAME_MAX);
	return &v->flavors[v->n_flavors++];
}

void manager_runner_version_note(struct manager *m, struct provider *p, const char *name,
                                 const char *flavor)
{
	struct buf b = BUF_INIT(RUNNER_VERSION_NOTE_MAX);
	struct runner_version_note note;
	struct manager_flavor_runner *f;
	bool new_refusal = false, new_image = false;
	char floor[32] = "";
	int64_t now = time(NULL);
	int r;

	if (!flavor || !flavor[0] || !provider_traits(p)->pull_files)
		return;
	r = provider_pull_file(p, name, METRICS_DIR "/" RUNNER_VERSION_NOTE,
	                       RUNNER_VERSION_NOTE_MAX, &b, NULL);
	if (r == 0)
		r = runner_version_note_parse(b.data ? b.data : "", b.len, &note);
	buf_release(&b);
	if (r == -EBADMSG || r == -E2BIG)
		log_warn("%s: its runner version note is not one runnerd wrote: ignored", name);
	if (r < 0)
		return;
	manager_runner_image_floor(m, NULL, floor, sizeof(floor));
	pthread_mutex_lock(&m->ver_lock);
	f = flavor_entry(m, flavor);
	if (f && note.refused[0]) {
		new_refusal = strcmp(f->refused, note.refused) != 0;
		str_copy(f->refused, note.refused, sizeof(f->refused));
		str_copy(f->last_refused, note.refused, sizeof(f->last_refused));
		f->refused_at = now;
		f->retry_at = now + HOLD_RETRY_S;
	}
	if (f && note.image[0]) {
		new_image = strcmp(f->image, note.image) != 0;
		str_copy(f->image, note.image, sizeof(f->image));
		f->image_at = now;
	}
	pthread_mutex_unlock(&m->ver_lock);
	if (new_refusal)
		log_error(
		        "flavor %s is degraded: GitHub refused runner version %s (%s: \"deprecated "
		        "and cannot receive messages\"); no runner is made for it until a newer "
		        "runner release is out (checked every %" PRId64 "s) or for an hour",
		        flavor, note.refused, name, m->cfg->runner.version_check_interval);
	if (new_image)
		log_warn("flavor %s: the image's runner %s is older than %s (more than %" PRId64
		         "s behind GitHub's releases): each instance replaces it from the verified "
		         "package at start; rebuild the image",
		         flavor, note.image, floor[0] ? floor : "the floor",
		         m->cfg->runner.image_runner_max_behind);
}

/*
 * A held flavor makes runners again once the version new instances get is
 * no longer the refused one (the package of a newer release is there; an
 * image's runner of the refused version is replaced, see
 * manager_runner_image_floor), or an hour after the refusal.
 */
static void release_held(struct manager *m, int64_t now)
{
	for (size_t i = 0; i < m->versions.n_flavors; i++) {
		struct manager_flavor_runner *f = &m->versions.flavors[i];
		const char *why = NULL;

		if (!f->refused[0])
			continue;
		if (now >= f->retry_at)
			why = "an hour has passed";
		else if (m->versions.in_use[0] &&
		         runner_version_cmp(m->versions.in_use, f->refused) != 0)
			why = "a newer runner release is out";
		if (!why)
			continue;
		log_info("flavor %s: making runners again (GitHub refused runner %s; %s; new "
		         "instances get %s)",
		         f->flavor, f->refused, why,
		         m->versions.in_use[0] ? m->versions.in_use : "GitHub's download");
		f->refused[0] = '\0'; /* a refusal noted again holds it again */
	}
}

/* Under ver_lock: a create of a flavor held for a refused version is dropped. */
static int64_t version_allow(void *ctx, const struct action *a)
{
	struct manager *m = ctx;

	for (size_t j = 0; j < m->versions.n_flavors; j++) {
		const struct manager_flavor_runner *f = &m->versions.flavors[j];
		if (f->refused[0] && strcmp(f->flavor, a->flavor) == 0) {
			log_debug("flavor %s: %" PRId64
			          " runner(s) not made: held (refused version)",
			          a->flavor, a->count);
			return 0;
		}
	}
	return a->count;
}

void manager_runner_version_hold(struct manager *m, struct plan *plan, int64_t now)
{
	pthread_mutex_lock(&m->ver_lock);
	release_held(m, now);
	plan_limit_creates(plan, version_allow, m);
	pthread_mutex_unlock(&m->ver_lock);
}

void manager_runner_version_view(struct manager *m, int64_t now,
                                 struct manager_runner_versions *ret)
{
	struct runner_release rel[GITHUB_RELEASES_MAX];
	size_t n;

	pthread_mutex_lock(&m->ver_lock);
	*ret = m->versions;
	n = releases(m, rel);
	pthread_mutex_unlock(&m->ver_lock);
	if (n) {
		str_copy(ret->latest, rel[0].version, sizeof(ret->latest));
		ret->latest_published_at = rel[0].published_at;
	}
	for (size_t i = 0; i < n && ret->in_use[0]; i++)
		if (runner_version_cmp(rel[i].version, ret->in_use) == 0)
			ret->in_use_published_at = rel[i].published_at;
	if (ret->in_use[0])
		ret->behind_since = runner_version_behind_since(rel, n, ret->in_use);
	runner_version_floor(rel, n, now, m->cfg->runner.image_runner_max_behind, ret->image_floor,
	                     sizeof(ret->image_floor));
}
