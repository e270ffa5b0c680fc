/*
 * The metrics listener (serve_metrics.h): /metrics and /healthz on their
 * own HTTP server, and what each pass hands it. Handlers read only the
 * metrics' own locks and the health state's mutex, held for a few
 * assignments: never the pass lock. It must never run on the pass loop
 * anything slower than building the pass's snapshot.
 */
#include "util/common.h"
#include "daemon/serve_metrics.h"
#include "http/server.h"
#include "util/clock.h"
#include "util/strutil.h"

#include <pthread.h>

/* How many reconcile intervals without a successful pass make /healthz 503. */
#define HEALTH_INTERVALS 3

struct serve_metrics {
	struct metrics_prom *mp;
	struct http_server *srv;
	pthread_mutex_t lock; /* guards what follows */
	int64_t started_ms;   /* CLOCK_MONOTONIC */
	int64_t interval_s;   /* reconcile_interval of the last pass's config */
	int64_t passes;       /* passes ended */
	int64_t last_ok_ms;   /* CLOCK_MONOTONIC of the last successful pass's end, 0 none */
	int64_t last_ok_unix; /* the same in unix seconds */
	char last_error[256]; /* why the last pass failed, "" when it succeeded */
};

/* ---- handlers ----------------------------------------------------------- */

static void h_metrics(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct serve_metrics *sm = ctx;
	int rc = metrics_prom_render(sm->mp, &resp->body);

	if (rc < 0) {
		http_response_error(resp, 500, strerror(-rc));
		return;
	}
	resp->content_type = PROM_CONTENT_TYPE;
}

static void h_healthz(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct serve_metrics *sm = ctx;
	char body[1024];
	int status = serve_metrics_health(sm, clock_mono_ms(), body, sizeof(body));

	http_response_json(resp, status, body);
}

static const struct http_route routes[] = {
        {"GET", "/metrics", h_metrics, 0},
        {"GET", "/healthz", h_healthz, 0},
};

/* ---- health ------------------------------------------------------------- */

/* s as a JSON string into out (cap bytes), quotes included. */
static void json_str(const char *s, char *out, size_t cap)
{
	struct buf b = BUF_INIT(cap > 1 ? cap - 1 : 0);

	if (buf_json_string(&b, s) == 0)
		str_copy(out, buf_str(&b), cap);
	else
		str_copy(out, "\"\"", cap);
	buf_release(&b);
}

int serve_metrics_health(struct serve_metrics *sm, int64_t now_ms, char *out, size_t cap)
{
	char reason[512], err[300];
	int64_t window_s, since_s, ok_age_s, passes;
	bool ok_recent, never;
	int status;

	pthread_mutex_lock(&sm->lock);
	window_s = HEALTH_INTERVALS * sm->interval_s;
	since_s = (now_ms - sm->started_ms) / 1000;
	never = sm->last_ok_ms == 0;
	ok_age_s = never ? -1 : (now_ms - sm->last_ok_ms) / 1000;
	ok_recent = !never && now_ms - sm->last_ok_ms <= window_s * 1000;
	passes = sm->passes;
	json_str(sm->last_error, err, sizeof(err));
	pthread_mutex_unlock(&sm->lock);

	if (ok_recent) {
		status = 200;
		snprintf(reason, sizeof(reason),
		         "the last pass that succeeded ended %" PRId64 "s ago", ok_age_s);
	} else if (never && now_ms - sm->started_ms <= window_s * 1000) {
		/* just started: not unhealthy before it had its window */
		status = 200;
		snprintf(reason, sizeof(reason),
		         "starting: %s (runnerd started %" PRId64 "s ago; unhealthy after %" PRId64
		         "s without one)",
		         passes ? "no pass has succeeded yet" : "the first pass has not ended yet",
		         since_s, window_s);
	} else {
		status = 503;
		if (never)
			snprintf(reason, sizeof(reason),
			         "no pass has succeeded since runnerd started %" PRId64
			         "s ago (%" PRId64
			         " passes ended; more than %d reconcile intervals, %" PRId64 "s)",
			         since_s, passes, HEALTH_INTERVALS, window_s);
		else
			snprintf(reason, sizeof(reason),
			         "the last pass that succeeded ended %" PRId64
			         "s ago: more than %d reconcile intervals (%" PRId64 "s)",
			         ok_age_s, HEALTH_INTERVALS, window_s);
	}
	{
		char r_json[600];
		json_str(reason, r_json, sizeof(r_json));
		snprintf(out, cap,
		         "{\"status\":\"%s\",\"reason\":%s,\"last_error\":%s,\"passes\":%" PRId64
		         ",\"last_success_age_s\":%" PRId64 ",\"window_s\":%" PRId64 "}\n",
		         status == 503 ? "unhealthy"
		         : never       ? "starting"
		                       : "ok",
		         r_json, err, passes, ok_age_s, window_s);
	}
	return status;
}

/* ---- life cycle ----------------------------------------------------------- */

int serve_metrics_new(const struct config *cfg, struct serve_metrics **ret)
{
	struct serve_metrics *sm = calloc(1, sizeof(*sm));
	int rc;

	if (!sm)
		return -ENOMEM;
	pthread_mutex_init(&sm->lock, NULL);
	sm->started_ms = clock_mono_ms();
	sm->interval_s = cfg->manager.reconcile_interval;
	rc = metrics_prom_new(RUNNERD_VERSION, (double)(clock_wall_ms() / 1000), &sm->mp);
	if (rc < 0) {
		serve_metrics_stop(sm);
		return rc;
	}
	*ret = sm;
	return 0;
}

int serve_metrics_listen(struct serve_metrics *sm, const char *listen, struct err *e)
{
	int rc = http_server_start_tcp(listen, routes, ARRAY_SIZE(routes), sm, &sm->srv, e);

	if (rc < 0)
		err_prefix(e, "metrics.listen %s", listen);
	return rc;
}

void serve_metrics_stop(struct serve_metrics *sm)
{
	if (!sm)
		return;
	http_server_stop(sm->srv);
	metrics_prom_free(sm->mp);
	pthread_mutex_destroy(&sm->lock);
	free(sm);
}

int serve_metrics_port(const struct serve_metrics *sm)
{
	return sm ? http_server_port(sm->srv) : 0;
}

struct metrics_prom *serve_metrics_prom(struct serve_metrics *sm)
{
	return sm->mp;
}

void serve_metrics_collector(struct serve_metrics *sm,
                             int (*fn)(void *ctx, struct prom_registry *reg), void *ctx)
{
	metrics_prom_set_collector(sm->mp, fn, ctx);
}

void serve_metrics_sink(struct serve_metrics *sm, struct metrics_sink *ret)
{
	metrics_prom_sink(sm->mp, ret);
}

/* ---- after a pass ------------------------------------------------------------ */

static enum metrics_prom_result result_of(const struct manager_event *ev)
{
	if (!ev->ok)
		return METRICS_RESULT_FAILED;
	/* ok, but not done: GitHub said the runner is busy (see execute.c) */
	return str_has_prefix(ev->outcome, "kept") ? METRICS_RESULT_KEPT : METRICS_RESULT_OK;
}

static void count_actions(struct serve_metrics *sm, const struct manager_report *r)
{
	for (size_t i = 0; i < r->n_events; i++) {
		const struct manager_event *ev = &r->events[i];
		if (strcmp(ev->action, "create") == 0)
			metrics_prom_create(sm->mp, ev->provider, ev->flavor, result_of(ev));
		else if (strcmp(ev->action, "delete") == 0 ||
		         strcmp(ev->action, "delete-runner") == 0)
			metrics_prom_delete(sm->mp, ev->provider, ev->flavor, ev->reason,
			                    result_of(ev));
	}
}

void serve_metrics_pass(struct serve_metrics *sm, const struct config *cfg,
                        const struct manager_report *r, bool draining, int rc, const char *error)
{
	bool ok = rc == 0 && !r->github_error[0] && !r->provider_error[0];
	const char *why = rc < 0 ? error : r->github_error[0] ? r->github_error : r->provider_error;
	struct prom_registry *snap = NULL;
	struct prom_family *f;
	int64_t last_ok_unix;

	metrics_prom_pass(sm->mp, (double)(r->finished_at - r->started_at) / 1000.0, ok);
	count_actions(sm, r);
	pthread_mutex_lock(&sm->lock);
	sm->interval_s = cfg->manager.reconcile_interval;
	sm->passes++;
	if (ok) {
		sm->last_ok_ms = clock_mono_ms();
		sm->last_ok_unix = r->finished_at / 1000;
	}
	str_copy(sm->last_error, ok ? "" : why ? why : "", sizeof(sm->last_error));
	last_ok_unix = sm->last_ok_unix;
	pthread_mutex_unlock(&sm->lock);

	/* (without memory for it, a scrape shows the pass before) */
	if (serve_metrics_snapshot(cfg, r, draining, &snap) < 0)
		return;
	if (prom_family_new(snap, PROM_GAUGE, "runnerd_last_successful_pass_timestamp_seconds",
	                    "When the last pass that listed GitHub and every provider in full "
	                    "ended, in unix seconds (0: none yet).",
	                    NULL, NULL, 0, &f) == 0)
		(void)prom_set(f, NULL, (double)last_ok_unix);
	metrics_prom_publish(sm->mp, snap);
}
