/*
 * What a pass saw, as the Prometheus families a scrape renders until the
 * next pass (serve_metrics_snapshot): runners by flavor and state, sizes,
 * the provider front's counters and the GitHub client's counters and
 * budgets. It runs on the pass loop, once a pass, so a scrape costs only
 * the rendering of a few hundred series whatever the number of runners.
 * It must never read anything but the report and the config it is given.
 */
#include "util/common.h"
#include "daemon/serve_metrics.h"
#include "util/strutil.h"

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})
#define V(...) ((const char *const[]){__VA_ARGS__})

/* Runner counts of one flavor, by GitHub state and cloud state. */
struct flavor_counts {
	const char *name;
	int64_t n[GITHUB_STATE_COUNT][CLOUD_STATE_COUNT];
};

/* The entry of name in fc (added when absent and room is left), NULL otherwise. */
static struct flavor_counts *counts_of(struct flavor_counts *fc, size_t *n, size_t cap,
                                       const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(fc[i].name, name) == 0)
			return &fc[i];
	if (*n == cap)
		return NULL;
	memset(&fc[*n], 0, sizeof(fc[*n]));
	fc[*n].name = name;
	return &fc[(*n)++];
}

static int put_runners(struct prom_registry *reg, const struct config *cfg,
                       const struct manager_report *r)
{
	/* every configured flavor (all states, at 0 too: series do not come and go),
	 * then any other the pass saw (a flavor removed from the config) */
	size_t cap = cfg->n_flavors + r->plan.n_views, n = 0;
	struct flavor_counts *fc = calloc(cap ? cap : 1, sizeof(*fc));
	struct prom_family *f;
	int rc;

	if (!fc)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_flavors; i++)
		(void)counts_of(fc, &n, cap, cfg->flavors[i].name);
	for (size_t i = 0; i < r->plan.n_views; i++) {
		const struct plan_view *v = &r->plan.views[i];
		struct flavor_counts *c = counts_of(fc, &n, cap, v->flavor);
		if (c && (unsigned)v->github_state < GITHUB_STATE_COUNT &&
		    (unsigned)v->cloud_state < CLOUD_STATE_COUNT)
			c->n[v->github_state][v->cloud_state]++;
	}
	rc = prom_family_new(reg, PROM_GAUGE, "runnerd_runners",
	                     "Runners as the last pass saw them, by flavor, GitHub state and cloud "
	                     "state.",
	                     L("flavor", "github_state", "cloud_state"), NULL, 0, &f);
	for (size_t i = 0; i < n && rc == 0; i++)
		for (int g = 0; g < GITHUB_STATE_COUNT && rc == 0; g++)
			for (int c = 0; c < CLOUD_STATE_COUNT && rc == 0; c++)
				rc = prom_set(
				        f, V(fc[i].name, github_state_name(g), cloud_state_name(c)),
				        (double)fc[i].n[g][c]);
	free(fc);
	return rc;
}

static int put_sizes(struct prom_registry *reg, const struct config *cfg,
                     const struct manager_report *r, bool draining)
{
	struct prom_family *desired, *waiting, *min_idle, *max, *drain, *blocked;
	int rc = prom_family_new(reg, PROM_GAUGE, "runnerd_runners_desired",
	                         "Runners the last pass wanted per flavor: busy + max(min_idle, "
	                         "waiting jobs), at most max (0 while draining).",
	                         L("flavor"), NULL, 0, &desired);

	if (rc == 0)
		rc = prom_family_new(
		        reg, PROM_GAUGE, "runnerd_jobs_waiting",
		        "Queued jobs routed to each flavor that no runner took yet, as "
		        "the last pass counted them (reactive mode; 0 otherwise).",
		        L("flavor"), NULL, 0, &waiting);

	if (rc == 0)
		rc = prom_family_new(reg, PROM_GAUGE, "runnerd_flavor_min_idle",
		                     "The configured min_idle of each flavor.", L("flavor"), NULL,
		                     0, &min_idle);
	if (rc == 0)
		rc = prom_family_new(reg, PROM_GAUGE, "runnerd_flavor_max",
		                     "The configured max of each flavor.", L("flavor"), NULL, 0,
		                     &max);
	if (rc == 0)
		rc = prom_family_new(reg, PROM_GAUGE, "runnerd_draining",
		                     "1 while runnerd drains (pools go to zero until resume).",
		                     NULL, NULL, 0, &drain);
	if (rc == 0)
		rc = prom_family_new(reg, PROM_GAUGE, "runnerd_pass_deletions_blocked",
		                     "1 when the last pass deleted nothing because a list was "
		                     "incomplete.",
		                     NULL, NULL, 0, &blocked);
	for (size_t i = 0; i < r->plan.n_counts && rc == 0; i++)
		rc = prom_set(desired, V(r->plan.counts[i].name),
		              (double)r->plan.counts[i].desired);
	for (size_t i = 0; i < r->plan.n_counts && rc == 0; i++)
		rc = prom_set(waiting, V(r->plan.counts[i].name),
		              (double)r->plan.counts[i].waiting);
	for (size_t i = 0; i < cfg->n_flavors && rc == 0; i++) {
		const struct config_flavor *fl = &cfg->flavors[i];
		rc = prom_set(min_idle, V(fl->name), (double)fl->min_idle);
		if (rc == 0)
			rc = prom_set(max, V(fl->name), (double)fl->max);
	}
	if (rc == 0)
		rc = prom_set(drain, NULL, draining);
	if (rc == 0)
		rc = prom_set(blocked, NULL, r->deletions_blocked);
	return rc;
}

static int put_providers(struct prom_registry *reg, const struct manager_report *r)
{
	static const struct {
		const char *name, *help;
	} specs[] = {
	        {"runnerd_provider_calls_total",
	         "Calls through the provider front, by provider and "
	         "operation."},
	        {"runnerd_provider_call_failures_total",
	         "Provider calls that failed (refused answers and overruns of reads included)."},
	        {"runnerd_provider_call_overruns_total", "Provider calls that ended past their "
	                                                 "deadline."},
	        {"runnerd_provider_answers_refused_total",
	         "Provider answers the front refused for breaking the contract."},
	        {"runnerd_provider_call_duration_seconds_total", "Time spent in provider calls."},
	};
	struct prom_family *f[ARRAY_SIZE(specs)];
	int rc = 0;

	for (size_t k = 0; k < ARRAY_SIZE(specs) && rc == 0; k++)
		rc = prom_family_new(reg, PROM_COUNTER, specs[k].name, specs[k].help,
		                     L("provider", "operation"), NULL, 0, &f[k]);
	for (size_t i = 0; i < r->n_providers && rc == 0; i++) {
		const struct manager_provider_view *pv = &r->providers[i];
		for (int op = 0; op < PROVIDER_OP_COUNT && rc == 0; op++) {
			const struct provider_op_stats *st = &pv->stats.op[op];
			const char *const lv[] = {pv->name, provider_op_name((enum provider_op)op)};
			double v[] = {(double)st->calls, (double)st->failures, (double)st->overruns,
			              (double)st->refused, (double)st->total_ms / 1000.0};
			for (size_t k = 0; k < ARRAY_SIZE(specs) && rc == 0; k++)
				rc = prom_set(f[k], lv, v[k]);
		}
	}
	return rc;
}

static int put_github_requests(struct prom_registry *reg, const struct github_stats *st)
{
	struct prom_family *req, *nm, *counted, *retries;
	char status[16];
	int rc = prom_family_new(reg, PROM_COUNTER, "runnerd_github_requests_total",
	                         "Requests sent to GitHub, by route (the API's templated path), "
	                         "method and status (\"0\": no answer).",
	                         L("route", "method", "status"), NULL, 0, &req);

	if (rc == 0)
		rc = prom_family_new(
		        reg, PROM_COUNTER, "runnerd_github_not_modified_total",
		        "GitHub answers 304 Not Modified (conditional requests that cost "
		        "no rate limit).",
		        NULL, NULL, 0, &nm);
	if (rc == 0)
		rc = prom_family_new(
		        reg, PROM_COUNTER, "runnerd_github_requests_rate_counted_total",
		        "Requests GitHub counts against the rate limit (all but 304s).", NULL, NULL,
		        0, &counted);
	if (rc == 0)
		rc = prom_family_new(reg, PROM_COUNTER, "runnerd_github_retries_total",
		                     "GitHub requests retried after a 5xx or a transport error.",
		                     NULL, NULL, 0, &retries);
	for (size_t i = 0; i < st->n_requests && rc == 0; i++) {
		const struct github_request_count *c = &st->requests[i];
		snprintf(status, sizeof(status), "%d", c->status);
		rc = prom_add(req, V(c->route, c->method, status), (double)c->n);
	}
	if (rc == 0 && st->requests_overflow)
		rc = prom_add(req, V("other", "other", "other"), (double)st->requests_overflow);
	if (rc == 0)
		rc = prom_set(nm, NULL, (double)st->not_modified);
	if (rc == 0)
		rc = prom_set(counted, NULL, (double)st->requests_counted);
	if (rc == 0)
		rc = prom_set(retries, NULL, (double)st->retries);
	return rc;
}

static int put_github_rates(struct prom_registry *reg, const struct github_stats *st)
{
	struct prom_family *rem, *lim, *reset;
	int rc = prom_family_new(reg, PROM_GAUGE, "runnerd_github_rate_limit_remaining",
	                         "GitHub's X-RateLimit-Remaining, by resource, as last answered.",
	                         L("resource"), NULL, 0, &rem);

	if (rc == 0)
		rc = prom_family_new(reg, PROM_GAUGE, "runnerd_github_rate_limit",
		                     "GitHub's X-RateLimit-Limit, by resource, as last answered.",
		                     L("resource"), NULL, 0, &lim);
	if (rc == 0)
		rc = prom_family_new(reg, PROM_GAUGE,
		                     "runnerd_github_rate_limit_reset_timestamp_seconds",
		                     "When GitHub resets the resource's budget, in unix seconds.",
		                     L("resource"), NULL, 0, &reset);
	for (size_t i = 0; i < st->n_resources && rc == 0; i++) {
		const struct github_rate *g = &st->resources[i];
		const char *const lv[] = {g->resource};
		if (g->remaining >= 0)
			rc = prom_set(rem, lv, (double)g->remaining);
		if (rc == 0 && g->limit >= 0)
			rc = prom_set(lim, lv, (double)g->limit);
		if (rc == 0 && g->reset > 0)
			rc = prom_set(reset, lv, (double)g->reset);
	}
	return rc;
}

/* Whether flavor is held for a refused version (degraded) or has a too old image runner. */
static void flavor_runner_flags(const struct manager_runner_versions *v, const char *flavor,
                                bool *ret_degraded, bool *ret_image)
{
	*ret_degraded = *ret_image = false;
	for (size_t i = 0; i < v->n_flavors; i++)
		if (strcmp(v->flavors[i].flavor, flavor) == 0) {
			*ret_degraded = v->flavors[i].refused[0] != '\0';
			*ret_image = v->flavors[i].image[0] != '\0';
		}
}

/* The runner version new instances get, its age, and the flavors it holds back. */
static int put_runner_version(struct prom_registry *reg, const struct config *cfg,
                              const struct manager_report *r)
{
	const struct manager_runner_versions *v = &r->runner;
	int64_t now = r->finished_at ? r->finished_at / 1000 : r->started_at / 1000;
	struct prom_family *info, *age, *behind, *degraded, *image;
	const struct {
		const char *name, *help;
		const char *const *labels;
		struct prom_family **ret;
	} fams[] = {
	        {"runnerd_runner_version_info",
	         "1 for the runner version new instances get, with GitHub's latest release (\"\" "
	         "until known).",
	         L("version", "latest"), &info},
	        {"runnerd_runner_version_age_seconds",
	         "Time since the runner version in use was released (absent while unknown).", NULL,
	         &age},
	        {"runnerd_runner_version_behind_seconds",
	         "Time since a newer runner release than the one in use came out (0: it is the "
	         "latest); GitHub gives no job to a runner 30 days behind.",
	         NULL, &behind},
	        {"runnerd_flavor_degraded",
	         "1 while no runner is made for the flavor because GitHub refused its runner "
	         "version.",
	         L("flavor"), &degraded},
	        {"runnerd_flavor_image_runner_outdated",
	         "1 when an instance of the flavor found its image's runner older than "
	         "runner.image_runner_max_behind allows (rebuild the image).",
	         L("flavor"), &image},
	};
	int rc = 0;

	for (size_t i = 0; i < ARRAY_SIZE(fams) && rc == 0; i++)
		rc = prom_family_new(reg, PROM_GAUGE, fams[i].name, fams[i].help, fams[i].labels,
		                     NULL, 0, fams[i].ret);
	if (rc == 0 && v->in_use[0])
		rc = prom_set(info, V(v->in_use, v->latest), 1);
	if (rc == 0 && v->in_use_published_at)
		rc = prom_set(age, NULL, (double)(now - v->in_use_published_at));
	if (rc == 0)
		rc = prom_set(behind, NULL, v->behind_since ? (double)(now - v->behind_since) : 0);
	for (size_t i = 0; i < cfg->n_flavors && rc == 0; i++) {
		bool d, im;
		flavor_runner_flags(v, cfg->flavors[i].name, &d, &im);
		rc = prom_set(degraded, V(cfg->flavors[i].name), d);
		if (rc == 0)
			rc = prom_set(image, V(cfg->flavors[i].name), im);
	}
	return rc;
}

int serve_metrics_snapshot(const struct config *cfg, const struct manager_report *r, bool draining,
                           struct prom_registry **ret)
{
	struct prom_registry *reg;
	int rc = prom_registry_new(&reg);

	if (rc < 0)
		return rc;
	rc = put_runners(reg, cfg, r);
	if (rc == 0)
		rc = put_sizes(reg, cfg, r, draining);
	if (rc == 0)
		rc = put_providers(reg, r);
	if (rc == 0)
		rc = put_runner_version(reg, cfg, r);
	if (rc == 0)
		rc = put_github_requests(reg, &r->github);
	if (rc == 0)
		rc = put_github_rates(reg, &r->github);
	if (rc < 0) {
		prom_registry_free(reg);
		return rc;
	}
	*ret = reg;
	return 0;
}
