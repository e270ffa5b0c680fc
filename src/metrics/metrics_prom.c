/*
 * runnerd's live Prometheus metrics (metrics_prom.h): the families that
 * grow as things happen, the sink the events feed, and the snapshot of the
 * last pass swapped in under a short lock. A scrape takes a reference to
 * the snapshot and renders it unlocked, so a pass publishing its snapshot
 * never waits for a scrape, nor a scrape for a pass.
 */
#include "util/common.h"
#include "metrics/metrics_prom.h"

#include <pthread.h>

/* Queued -> started: seconds to an hour (ARC's gha_job_startup_duration_seconds' range). */
static const double startup_bounds[] = {1,   2,   5,   10,  20,  30,   45,   60,  90,
                                        120, 180, 300, 600, 900, 1200, 1800, 3600};
/* A job's run: ten seconds to GitHub's six hours. */
const double metrics_prom_job_bounds[] = {10,   30,   60,   120,  300,  600,   900,   1200,
                                          1800, 2700, 3600, 5400, 7200, 10800, 14400, 21600};
const size_t metrics_prom_n_job_bounds = ARRAY_SIZE(metrics_prom_job_bounds);
static const double install_bounds[] = {1, 2, 5, 10, 20, 30, 60, 90, 120, 180, 300, 600, 1200};
static const double idle_bounds[] = {1,   5,    10,   30,   60,    120,   300,
                                     600, 1800, 3600, 7200, 14400, 28800, 86400};
static const double pass_bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                     2.5,  5,     10,   30,  60,   120, 300};

struct snapshot {
	struct prom_registry *r;
	unsigned refs;
};

struct metrics_prom {
	struct prom_registry *live;
	struct prom_family *events, *quarantines;
	struct prom_family *startup, *execution, *install, *idle;
	struct prom_family *pass_seconds, *passes, *creates, *deletes;
	pthread_mutex_t snap_lock; /* guards snap and every refs */
	struct snapshot *snap;
	int (*collect)(void *ctx, struct prom_registry *reg); /* set before any scrape */
	void *collect_ctx;
};

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

struct family_spec {
	size_t off; /* of the struct prom_family * in struct metrics_prom */
	enum prom_type type;
	const char *name, *help;
	const char *const *labels;
	const double *bounds;
	size_t n_bounds;
};

#define F(field) offsetof(struct metrics_prom, field)
#define B(a)     (a), ARRAY_SIZE(a)

static const struct family_spec specs[] = {
        {F(events), PROM_COUNTER, "runnerd_events_total",
         "Events issued to the events log, by event name.", L("event"), NULL, 0},
        {F(quarantines), PROM_COUNTER, "runnerd_quarantines_total",
         "Runner metrics storages quarantined, by flavor and cause.", L("flavor", "cause"), NULL,
         0},
        {F(startup), PROM_HISTOGRAM, "runnerd_job_startup_duration_seconds",
         "Time from a job queued to started on a runner (runner_start queue_duration).",
         L("flavor"), B(startup_bounds)},
        {F(execution), PROM_HISTOGRAM, "runnerd_job_execution_duration_seconds",
         "Time a job ran on a runner (runner_stop job_duration).", L("flavor"),
         B(metrics_prom_job_bounds)},
        {F(install), PROM_HISTOGRAM, "runnerd_runner_install_duration_seconds",
         "Time to install a runner in its instance (runner_installed duration).", L("flavor"),
         B(install_bounds)},
        {F(idle), PROM_HISTOGRAM, "runnerd_runner_idle_duration_seconds",
         "Time a runner waited, installed, for its job (runner_start idle).", L("flavor"),
         B(idle_bounds)},
        {F(pass_seconds), PROM_HISTOGRAM, "runnerd_pass_duration_seconds",
         "Wall time of reconcile passes.", NULL, B(pass_bounds)},
        {F(passes), PROM_COUNTER, "runnerd_passes_total",
         "Reconcile passes, by result (ok: GitHub and every provider were listed in full).",
         L("result"), NULL, 0},
        {F(creates), PROM_COUNTER, "runnerd_creates_total",
         "Runner creates, by provider, flavor and result.", L("provider", "flavor", "result"), NULL,
         0},
        {F(deletes), PROM_COUNTER, "runnerd_deletes_total",
         "Runner deletes, by provider, flavor, reason and result (kept: GitHub said the runner "
         "was busy; provider \"\" for a runner with no instance).",
         L("provider", "flavor", "reason", "result"), NULL, 0},
};

static void snapshot_put(struct metrics_prom *mp, struct snapshot *s)
{
	bool last;

	if (!s)
		return;
	pthread_mutex_lock(&mp->snap_lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&mp->snap_lock);
	if (last) {
		prom_registry_free(s->r);
		free(s);
	}
}

/* Gauges fixed for the process's life: build info and start time. */
static int fixed_gauges(struct prom_registry *r, const char *version, double start_unix)
{
	struct prom_family *f;
	int rc = prom_family_new(r, PROM_GAUGE, "runnerd_build_info",
	                         "runnerd's version (the value is always 1).", L("version"), NULL,
	                         0, &f);

	if (rc == 0)
		rc = prom_set(f, (const char *const[]){version}, 1);
	if (rc == 0)
		rc = prom_family_new(r, PROM_GAUGE, "runnerd_process_start_time_seconds",
		                     "When this runnerd process started, in unix seconds.", NULL,
		                     NULL, 0, &f);
	if (rc == 0)
		rc = prom_set(f, NULL, start_unix);
	return rc;
}

int metrics_prom_new(const char *version, double start_unix, struct metrics_prom **ret)
{
	struct metrics_prom *mp = calloc(1, sizeof(*mp));
	int rc;

	if (!mp)
		return -ENOMEM;
	pthread_mutex_init(&mp->snap_lock, NULL);
	rc = prom_registry_new(&mp->live);
	if (rc == 0)
		rc = fixed_gauges(mp->live, version, start_unix);
	for (size_t i = 0; i < ARRAY_SIZE(specs) && rc == 0; i++) {
		const struct family_spec *s = &specs[i];
		rc = prom_family_new(mp->live, s->type, s->name, s->help, s->labels, s->bounds,
		                     s->n_bounds, (struct prom_family **)((char *)mp + s->off));
	}
	/* every event name and pass result from the start: rate() needs the zero */
	for (int k = 0; k < METRICS_EVENT_KIND_COUNT && rc == 0; k++)
		rc = prom_add(mp->events, (const char *const[]){metrics_event_name(k)}, 0);
	if (rc == 0)
		rc = prom_add(mp->passes, L("ok"), 0);
	if (rc == 0)
		rc = prom_add(mp->passes, L("failed"), 0);
	if (rc < 0) {
		metrics_prom_free(mp);
		return rc;
	}
	*ret = mp;
	return 0;
}

void metrics_prom_free(struct metrics_prom *mp)
{
	if (!mp)
		return;
	snapshot_put(mp, mp->snap);
	prom_registry_free(mp->live);
	pthread_mutex_destroy(&mp->snap_lock);
	free(mp);
}

struct prom_registry *metrics_prom_registry(struct metrics_prom *mp)
{
	return mp->live;
}

/* ---- the sink ----------------------------------------------------------- */

/* (void) on every update below: a series the registry could not make is
 * missing from the scrape, which is all that can be done from a sink. */
static void sink_event(void *ctx, const struct metrics_event *ev)
{
	struct metrics_prom *mp = ctx;
	const char *const flavor[] = {ev->flavor};

	(void)prom_add(mp->events, (const char *const[]){metrics_event_name(ev->kind)}, 1);
	switch (ev->kind) {
	case METRICS_EVENT_RUNNER_INSTALLED:
		(void)prom_observe(mp->install, flavor, ev->duration);
		break;
	case METRICS_EVENT_RUNNER_START:
		(void)prom_observe(mp->idle, flavor, ev->idle);
		if (ev->has_queue_duration)
			(void)prom_observe(mp->startup, flavor, ev->queue_duration);
		break;
	case METRICS_EVENT_RUNNER_STOP:
		(void)prom_observe(mp->execution, flavor, ev->job_duration);
		break;
	case METRICS_EVENT_RECONCILIATION:
		break;
	}
}

static void sink_quarantined(void *ctx, const char *flavor, const char *cause)
{
	struct metrics_prom *mp = ctx;

	(void)prom_add(mp->quarantines,
	               (const char *const[]){flavor ? flavor : "", cause ? cause : ""}, 1);
}

void metrics_prom_sink(struct metrics_prom *mp, struct metrics_sink *ret)
{
	*ret = (struct metrics_sink){
	        .event = sink_event, .quarantined = sink_quarantined, .ctx = mp};
}

/* ---- passes and their actions -------------------------------------------- */

void metrics_prom_pass(struct metrics_prom *mp, double seconds, bool ok)
{
	(void)prom_observe(mp->pass_seconds, NULL, seconds < 0 ? 0 : seconds);
	(void)prom_add(mp->passes, L(ok ? "ok" : "failed"), 1);
}

const char *metrics_prom_result_name(enum metrics_prom_result r)
{
	static const char *const names[] = {"ok", "kept", "failed"};
	return (unsigned)r < ARRAY_SIZE(names) ? names[r] : "failed";
}

void metrics_prom_create(struct metrics_prom *mp, const char *provider, const char *flavor,
                         enum metrics_prom_result result)
{
	(void)prom_add(mp->creates, L(provider, flavor, metrics_prom_result_name(result)), 1);
}

void metrics_prom_delete(struct metrics_prom *mp, const char *provider, const char *flavor,
                         const char *reason, enum metrics_prom_result result)
{
	(void)prom_add(mp->deletes, L(provider, flavor, reason, metrics_prom_result_name(result)),
	               1);
}

/* ---- the snapshot and the scrape ------------------------------------------ */

void metrics_prom_publish(struct metrics_prom *mp, struct prom_registry *snapshot)
{
	struct snapshot *s = calloc(1, sizeof(*s)), *old;

	if (!s) {
		/* the last one stays: a scrape shows the pass before */
		prom_registry_free(snapshot);
		return;
	}
	s->r = snapshot;
	s->refs = 1; /* mp's */
	pthread_mutex_lock(&mp->snap_lock);
	old = mp->snap;
	mp->snap = s;
	pthread_mutex_unlock(&mp->snap_lock);
	snapshot_put(mp, old);
}

void metrics_prom_set_collector(struct metrics_prom *mp,
                                int (*fn)(void *ctx, struct prom_registry *reg), void *ctx)
{
	mp->collect = fn;
	mp->collect_ctx = ctx;
}

/* The collector's families appended to out. */
static int render_collected(struct metrics_prom *mp, struct buf *out)
{
	struct prom_registry *r;
	int rc = prom_registry_new(&r);

	if (rc < 0)
		return rc;
	rc = mp->collect(mp->collect_ctx, r);
	if (rc == 0)
		rc = prom_render(r, out);
	prom_registry_free(r);
	return rc;
}

int metrics_prom_render(struct metrics_prom *mp, struct buf *out)
{
	struct snapshot *s;
	size_t start = out->len;
	int rc;

	pthread_mutex_lock(&mp->snap_lock);
	s = mp->snap;
	if (s)
		s->refs++;
	pthread_mutex_unlock(&mp->snap_lock);
	rc = prom_render(mp->live, out);
	if (rc == 0 && s)
		rc = prom_render(s->r, out);
	snapshot_put(mp, s);
	if (rc == 0 && mp->collect)
		rc = render_collected(mp, out);
	if (rc < 0 && out->data) {
		out->len = start;
		out->data[start] = '\0';
	}
	return rc;
}
