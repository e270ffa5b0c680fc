/*
 * The manager's events: a deleted runner's metrics storage turned into
 * runner_installed / runner_start / runner_stop events (on the delete's
 * collecting lane, so its GitHub lookup never holds up a create), the
 * storages of runners no longer known (orphans) after a pass's actions,
 * and one reconciliation event per flavor per pass. Each event goes to the
 * events log (metrics.events_log, opened when first needed, reopened on
 * SIGHUP) and to the sink the daemon set. A bad storage is quarantined and
 * logged once; a failing events log is said once until it works again.
 * It must never let a runner's files stop a pass, nor touch a storage
 * folder of a name this manager does not own.
 */
#include "util/common.h"
#include "manager/manager_internal.h"
#include "metrics/metrics_events_log.h"
#include "metrics/metrics_storage.h"
#include "util/clock.h"
#include "util/fileutil.h"
#include "util/log.h"
#include "util/strutil.h"

#include <dirent.h>
#include <signal.h>

/* Orphan storages processed at most per pass (the rest wait for the next). */
#define ORPHANS_PER_PASS 32

void manager_set_metrics_sink(struct manager *m, const struct metrics_sink *s)
{
	pthread_mutex_lock(&m->events_lock);
	m->sink = s ? *s : (struct metrics_sink){0};
	pthread_mutex_unlock(&m->events_lock);
}

/* Under events_lock: the log, opened when it is not yet (said once on failure). */
static struct metrics_events_log *events_log(struct manager *m)
{
	struct err e = {0};
	const char *path = m->cfg->metrics.events_log;

	if (m->events_log || !m->events_enabled || !path || !*path)
		return m->events_log;
	if (metrics_events_log_open(path, &m->events_log, &e) < 0) {
		if (!m->events_failing)
			log_warn("%s (events are not logged until it works)", e.msg);
		m->events_failing = true;
		return NULL;
	}
	return m->events_log;
}

int manager_reopen_events_log(struct manager *m, struct err *e)
{
	const char *path = m->cfg->metrics.events_log;
	int r = 0;

	pthread_mutex_lock(&m->events_lock);
	m->events_enabled = true;
	if (m->events_log && path && *path)
		r = metrics_events_log_reopen(m->events_log, path, e);
	else if (!events_log(m))
		r = -EIO;
	pthread_mutex_unlock(&m->events_lock);
	return r;
}

void manager_events_release(struct manager *m)
{
	metrics_events_log_free(m->events_log);
	m->events_log = NULL;
}

/* The tally of flavor (under events_lock), NULL when full. */
static struct manager_tally *tally_of(struct manager *m, const char *flavor)
{
	for (size_t i = 0; i < m->n_tally; i++)
		if (strcmp(m->tally[i].flavor, flavor) == 0)
			return &m->tally[i];
	if (m->n_tally == ARRAY_SIZE(m->tally))
		return NULL;
	/* a slot of an earlier pass: its counts are not this pass's */
	m->tally[m->n_tally] = (struct manager_tally){0};
	str_copy(m->tally[m->n_tally].flavor, flavor, sizeof(m->tally[0].flavor));
	return &m->tally[m->n_tally++];
}

/* One event to the log and the sink. */
static int emit(void *ctx, const struct metrics_event *ev, struct err *e)
{
	struct manager *m = ctx;
	struct metrics_events_log *l;
	int r = 0;

	pthread_mutex_lock(&m->events_lock);
	l = events_log(m);
	if (l) {
		struct err we = {0};
		r = metrics_events_log_write(l, ev, &we);
		if (r < 0 && !m->events_failing)
			log_warn("%s (said once until it works again)", we.msg);
		else if (r == 0 && m->events_failing)
			log_info("events log %s: writing again", metrics_events_log_path(l));
		m->events_failing = r < 0;
		if (r < 0)
			*e = we;
	}
	if (ev->kind == METRICS_EVENT_RUNNER_START || ev->kind == METRICS_EVENT_RUNNER_STOP) {
		struct manager_tally *t = tally_of(m, ev->flavor);
		if (t && ev->kind == METRICS_EVENT_RUNNER_START)
			t->starts++;
		else if (t)
			t->stops++;
	}
	struct metrics_sink s = m->sink;
	pthread_mutex_unlock(&m->events_lock);
	/* the sink hears of every event, logged or not: its counters do not depend on a file */
	if (s.event)
		s.event(s.ctx, ev);
	return r;
}

/* The GitHub job the runner ran, in the configured scope (bounded pages). */
static int lookup(void *ctx, const char *name, const struct metrics_pre_job *pre,
                  struct metrics_job *ret)
{
	struct manager *m = ctx;
	struct metrics_github mg = {.gh = m->gh};

	return metrics_github_lookup(&mg, name, pre, ret);
}

static void storage_path(struct manager *m, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/metrics/%s", m->cfg->manager.state_dir, name);
}

void manager_events_process(struct manager *m, const char *name, const char *flavor)
{
	char dir[PATH_MAX], qdir[PATH_MAX];
	struct metrics_processed p;
	struct err e = {0};
	struct stat st;
	int r;

	if (!name_is_owned(m->cfg->manager.name, name))
		return;
	storage_path(m, name, dir, sizeof(dir));
	if (lstat(dir, &st) < 0)
		return; /* nothing was pulled */
	snprintf(qdir, sizeof(qdir), "%s/metrics-quarantine", m->cfg->manager.state_dir);
	struct metrics_process_opts o = {
	        .flavor = flavor ? flavor : "",
	        .quarantine_dir = qdir,
	        /* no GitHub lookup once stopping: the events go without job fields */
	        .lookup = m->gh && !atomic_load(&m->cancel) ? lookup : NULL,
	        .emit = emit,
	        .ctx = m,
	};
	r = metrics_storage_process(dir, name, &o, &p, &e);
	if (r == -EBADMSG) {
		struct metrics_sink s;
		log_warn("metrics of %s: %s; nothing issued from it", name, e.msg);
		pthread_mutex_lock(&m->events_lock);
		s = m->sink;
		pthread_mutex_unlock(&m->events_lock);
		if (s.quarantined)
			s.quarantined(s.ctx, o.flavor, metrics_cause_name(p.bad.cause));
	} else if (r < 0 && r != -ENOENT) {
		log_warn("metrics of %s: %s (%zu events issued)", name, e.msg, p.issued);
	} else if (r == 0) {
		log_debug("metrics of %s: %zu events issued", name, p.issued);
	}
}

/* The flavor the pass knew name by, "" when none. */
static const char *flavor_known(const struct plan *plan, const char *name)
{
	for (size_t i = 0; i < plan->n_views; i++)
		if (strcmp(plan->views[i].name, name) == 0)
			return plan->views[i].flavor;
	for (size_t i = 0; i < plan->n_actions; i++)
		if (strcmp(plan->actions[i].name, name) == 0)
			return plan->actions[i].flavor;
	return "";
}

/*
 * Whether a process that is still there is writing into dir (a temporary
 * of file_write_atomic whose writer lives): its storage is not whole yet.
 */
static bool being_written(const char *dir)
{
	struct dirent *de;
	bool busy = false;
	DIR *d = opendir(dir);

	if (!d)
		return false;
	while (!busy && (de = readdir(d))) {
		pid_t pid;
		busy = file_tmp_name(de->d_name, &pid) && pid > 0 &&
		       (kill(pid, 0) == 0 || errno == EPERM);
	}
	closedir(d);
	return busy;
}

void manager_events_orphans(struct manager *m, const struct plan *plan)
{
	char root[PATH_MAX];
	char names[ORPHANS_PER_PASS][INSTANCE_NAME_MAX];
	size_t n = 0;
	struct dirent *de;
	DIR *d;

	snprintf(root, sizeof(root), "%s/metrics", m->cfg->manager.state_dir);
	d = opendir(root);
	if (!d)
		return;
	while ((de = readdir(d)) && n < ORPHANS_PER_PASS) {
		struct store_instance row;
		if (!name_is_owned(m->cfg->manager.name, de->d_name))
			continue;
		/* a runner with a row is processed when its delete succeeds */
		if (store_instance_get(m->store, de->d_name, &row, NULL) != -ENOENT)
			continue;
		char dir[PATH_MAX];
		storage_path(m, de->d_name, dir, sizeof(dir));
		if (being_written(dir))
			continue; /* the next pass looks again */
		str_copy(names[n++], de->d_name, sizeof(names[0]));
	}
	closedir(d);
	for (size_t i = 0; i < n && !atomic_load(&m->cancel); i++) {
		const char *fl = flavor_known(plan, names[i]);
		char noted[FLAVOR_NAME_MAX];
		struct metrics_opts mo;

		if (!fl[0]) {
			/* its row went before its processing (a kill): the note made at its pull */
			manager_metrics_opts(m, &mo);
			metrics_storage_noted_flavor(&mo, names[i], noted, sizeof(noted));
			fl = noted;
		}
		manager_events_process(m, names[i], fl);
	}
}

void manager_events_pass_start(struct manager *m)
{
	pthread_mutex_lock(&m->events_lock);
	m->n_tally = 0;
	pthread_mutex_unlock(&m->events_lock);
}

void manager_events_reconciliation(struct manager *m, const struct manager_report *rep)
{
	double at = (double)clock_wall_ms() / 1000.0;
	double duration = (double)(clock_wall_ms() - rep->started_at) / 1000.0;

	for (size_t i = 0; i < rep->plan.n_counts; i++) {
		const struct plan_flavor_count *c = &rep->plan.counts[i];
		struct metrics_event ev = {.kind = METRICS_EVENT_RECONCILIATION};
		struct err e = {0};

		ev.timestamp = at;
		ev.duration = duration > 0 ? duration : 0;
		str_copy(ev.flavor, c->name, sizeof(ev.flavor));
		pthread_mutex_lock(&m->events_lock);
		const struct manager_tally *t = tally_of(m, c->name);
		if (t && t->starts > t->stops)
			ev.crashed_runners = t->starts - t->stops;
		pthread_mutex_unlock(&m->events_lock);
		ev.idle_runners = c->idle;
		ev.active_runners = c->busy;
		ev.expected_runners = c->desired;
		(void)emit(m, &ev, &e); /* a failure is said by emit */
	}
}
