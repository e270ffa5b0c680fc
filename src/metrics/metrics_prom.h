/*
 * runnerd's own Prometheus metrics, as a scrape reads them: the counters
 * and histograms that grow as things happen (events issued and quarantines,
 * heard through a struct metrics_sink; passes and what their actions did)
 * in one live registry, and what the last pass saw (runners by state,
 * desired sizes, the provider front's and the GitHub client's counters) in
 * a snapshot registry the daemon builds at the end of each pass and swaps
 * in. A scrape renders both and waits for nothing but the two registries'
 * short locks: never for a pass. It must never block the thread that
 * reports to it for longer than one render of the live registry (a few
 * hundred series: well under a millisecond), the longest that registry's
 * lock is held.
 */
#ifndef RUNNERD_METRICS_PROM_H
#define RUNNERD_METRICS_PROM_H

#include "util/common.h"
#include "util/buf.h"
#include "metrics/metrics_event.h"
#include "metrics/prom.h"

struct metrics_prom;

/*
 * The live registry with every family made (build info = version, the
 * process's start time = start_unix). -ENOMEM.
 */
int metrics_prom_new(const char *version, double start_unix, struct metrics_prom **ret);
void metrics_prom_free(struct metrics_prom *mp);

/* A sink that counts events by name, quarantines by flavor and cause, and
 * feeds the job startup, execution, install and idle histograms. */
void metrics_prom_sink(struct metrics_prom *mp, struct metrics_sink *ret);

/* One pass ended after seconds; ok: it saw everything it asked for. */
void metrics_prom_pass(struct metrics_prom *mp, double seconds, bool ok);

enum metrics_prom_result { METRICS_RESULT_OK = 0, METRICS_RESULT_KEPT, METRICS_RESULT_FAILED };
/* "ok", "kept", "failed" */
const char *metrics_prom_result_name(enum metrics_prom_result r);
/* A create (reason ignored) or a delete a pass made. */
void metrics_prom_create(struct metrics_prom *mp, const char *provider, const char *flavor,
                         enum metrics_prom_result result);
void metrics_prom_delete(struct metrics_prom *mp, const char *provider, const char *flavor,
                         const char *reason, enum metrics_prom_result result);

/*
 * The registry what a pass saw goes into: the caller makes one with
 * prom_registry_new, fills it and hands it over here; the one it replaces
 * is freed once no scrape renders it.
 */
void metrics_prom_publish(struct metrics_prom *mp, struct prom_registry *snapshot);

/*
 * A source of families built afresh at each scrape (reactive mode's
 * counters): fn(ctx, reg) fills an empty registry rendered after the
 * snapshot. fn runs on the scraping thread and must take no lock a pass
 * holds long. Set it before any scrape can run (before the listener
 * starts): it is read without a lock. NULL fn: none.
 */
void metrics_prom_set_collector(struct metrics_prom *mp,
                                int (*fn)(void *ctx, struct prom_registry *reg), void *ctx);

/* The whole exposition (live, the last snapshot, the collector's) appended to out. */
int metrics_prom_render(struct metrics_prom *mp, struct buf *out);

/* The live registry (tests read values from it). */
struct prom_registry *metrics_prom_registry(struct metrics_prom *mp);

/* Bucket bounds, in seconds, of the histograms (for the docs and the dashboard). */
extern const double metrics_prom_job_bounds[];
extern const size_t metrics_prom_n_job_bounds;

#endif
