/*
 * The daemon's metrics listener (metrics.listen): GET /metrics in the
 * Prometheus text format and GET /healthz, on their own HTTP server. What
 * a scrape reads is published at the end of each pass (a snapshot of what
 * the pass saw, swapped in under a short lock) plus the live counters the
 * passes and the metrics sink feed: a scrape never takes the pass lock and
 * never waits for a pass, and a pass never waits for a scrape.
 *
 * /healthz is 200 while passes succeed (a pass succeeds when it listed
 * GitHub and every provider in full), and 503 with a JSON reason once the
 * last successful pass is older than three reconcile intervals -- or, when
 * none has succeeded yet, once the daemon has run that long without one.
 */
#ifndef RUNNERD_SERVE_METRICS_H
#define RUNNERD_SERVE_METRICS_H

#include "util/common.h"
#include "util/err.h"
#include "config/config.h"
#include "manager/manager.h"
#include "metrics/metrics_prom.h"

struct serve_metrics;

/* The metrics, no listener yet (cfg: the reconcile interval). -ENOMEM. */
int serve_metrics_new(const struct config *cfg, struct serve_metrics **ret);
/*
 * Serve /metrics and /healthz on listen ("HOST:PORT", see
 * http_server_start_tcp). -EINVAL, -EADDRINUSE, -EACCES, -ENOMEM, with e
 * saying which; the metrics go on being kept either way.
 */
int serve_metrics_listen(struct serve_metrics *sm, const char *listen, struct err *e);
/* Stop the listener and free everything. NULL-safe. */
void serve_metrics_stop(struct serve_metrics *sm);
/* The bound port (0 when not listening). */
int serve_metrics_port(const struct serve_metrics *sm);

/* The sink to hand the manager (manager_set_metrics_sink). */
void serve_metrics_sink(struct serve_metrics *sm, struct metrics_sink *ret);

/*
 * A pass ended (on the pass loop): rc is what manager_reconcile returned,
 * error its message ("" none). Counts its actions, times it, and publishes
 * what it saw. cfg is the config the pass ran with (its interval and
 * flavors).
 */
void serve_metrics_pass(struct serve_metrics *sm, const struct config *cfg,
                        const struct manager_report *r, bool draining, int rc, const char *error);

/*
 * What a pass saw, as a new registry (runners by flavor x GitHub state x
 * cloud state, desired and configured sizes, the provider front's and the
 * GitHub client's counters, rate-limit budgets). -ENOMEM.
 */
int serve_metrics_snapshot(const struct config *cfg, const struct manager_report *r, bool draining,
                           struct prom_registry **ret);

/* A collector rendered at each scrape (metrics_prom_set_collector): before listening. */
void serve_metrics_collector(struct serve_metrics *sm,
                             int (*fn)(void *ctx, struct prom_registry *reg), void *ctx);

/* The live metrics (the benchmark renders them without a listener). */
struct metrics_prom *serve_metrics_prom(struct serve_metrics *sm);

/*
 * The /healthz answer at now_ms (CLOCK_MONOTONIC): 200 or 503 and a JSON
 * body in out (cap bytes).
 */
int serve_metrics_health(struct serve_metrics *sm, int64_t now_ms, char *out, size_t cap);

#endif
