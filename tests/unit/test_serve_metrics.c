/*
 * Unit tests of the daemon's metrics (src/daemon/serve_metrics*.c): what a
 * pass's report becomes in the snapshot (runners by flavor x GitHub state
 * x cloud state with every state present, sizes, provider and GitHub
 * counters, rate-limit budgets), the creates and deletes a pass counts,
 * /healthz through its window (starting, ok, 503 with a reason), and the
 * listener's routes on 127.0.0.1 (200, HEAD, 404, 405).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "daemon/serve_metrics.h"
#include "util/clock.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static struct config_flavor flavors[] = {{.name = "small", .min_idle = 2, .max = 4}};

static void fill_config(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->manager.reconcile_interval = 2;
	cfg->flavors = flavors;
	cfg->n_flavors = 1;
}

static void add_view(struct manager_report *r, const char *name, const char *flavor,
                     enum github_state g, enum cloud_state c)
{
	struct plan_view *v = &r->plan.views[r->plan.n_views++];
	snprintf(v->name, sizeof(v->name), "%s", name);
	snprintf(v->flavor, sizeof(v->flavor), "%s", flavor);
	v->github_state = g;
	v->cloud_state = c;
}

static void add_event(struct manager_report *r, const char *action, const char *provider,
                      const char *flavor, const char *reason, bool ok, const char *outcome)
{
	struct manager_event *ev = &r->events[r->n_events++];
	memset(ev, 0, sizeof(*ev));
	snprintf(ev->action, sizeof(ev->action), "%s", action);
	snprintf(ev->provider, sizeof(ev->provider), "%s", provider);
	snprintf(ev->flavor, sizeof(ev->flavor), "%s", flavor);
	snprintf(ev->reason, sizeof(ev->reason), "%s", reason);
	snprintf(ev->outcome, sizeof(ev->outcome), "%s", outcome);
	ev->ok = ok;
}

/* A report as a pass would leave it (static storage: nothing to free). */
static void fill_report(struct manager_report *r)
{
	static struct plan_view views[8];
	static struct plan_flavor_count counts[1];
	static struct manager_event events[8];

	memset(r, 0, sizeof(*r));
	r->plan.views = views;
	r->plan.counts = counts;
	r->events = events;
	add_view(r, "t-000000000001", "small", GH_IDLE, CLOUD_ACTIVE);
	add_view(r, "t-000000000002", "small", GH_IDLE, CLOUD_ACTIVE);
	add_view(r, "t-000000000003", "small", GH_BUSY, CLOUD_ACTIVE);
	add_view(r, "t-000000000004", "gone", GH_OFFLINE, CLOUD_STOPPED);
	snprintf(counts[0].name, sizeof(counts[0].name), "small");
	counts[0].desired = 3;
	counts[0].waiting = 2;
	r->plan.n_counts = 1;
	r->n_providers = 1;
	snprintf(r->providers[0].name, sizeof(r->providers[0].name), "local");
	r->providers[0].stats.op[PROVIDER_OP_LIST] =
	        (struct provider_op_stats){.calls = 5, .failures = 1, .total_ms = 1500};
	r->github.requests[0] = (struct github_request_count){
	        "/repos/{owner}/{repo}/actions/runners", "GET", 200, 3};
	r->github.requests[1] = (struct github_request_count){
	        "/repos/{owner}/{repo}/actions/runners", "GET", 304, 7};
	r->github.n_requests = 2;
	r->github.not_modified = 7;
	r->github.requests_counted = 3;
	r->github.n_resources = 1;
	r->github.resources[0] = (struct github_rate){
	        .resource = "core", .limit = 5000, .remaining = 4990, .reset = 1700000000};
	r->started_at = 1700000000000;
	r->finished_at = 1700000000250;
}

static char *render_reg(struct prom_registry *reg)
{
	struct buf b = BUF_INIT(1 << 20);
	size_t n;
	assert_int_equal(prom_render(reg, &b), 0);
	return buf_detach(&b, &n);
}

static int count_lines(const char *t, const char *prefix)
{
	int n = 0;
	for (const char *p = t; (p = strstr(p, prefix)); p++)
		n += p == t || p[-1] == '\n';
	return n;
}

/* Each of lines is a whole line of t. */
static void assert_lines(const char *t, const char *const *lines)
{
	for (size_t i = 0; lines[i]; i++) {
		char want[512];
		snprintf(want, sizeof(want), "\n%s\n", lines[i]);
		if (!strstr(t, want) && strncmp(t, want + 1, strlen(want + 1)) != 0)
			fail_msg("missing line: %s", lines[i]);
	}
}

static void test_snapshot(void **state)
{
	struct prom_registry *reg;
	struct manager_report r;
	struct config cfg;
	char *t;

	fill_config(&cfg);
	fill_report(&r);
	assert_int_equal(serve_metrics_snapshot(&cfg, &r, true, &reg), 0);
	t = render_reg(reg);
	/* every state of each flavor (configured, or seen), 0s included */
	assert_int_equal(count_lines(t, "runnerd_runners{"),
	                 2 * GITHUB_STATE_COUNT * CLOUD_STATE_COUNT);
	assert_lines(
	        t, (const char *const[]){
	                   "runnerd_runners{flavor=\"small\",github_state=\"idle\",cloud_state="
	                   "\"active\"} 2",
	                   "runnerd_runners{flavor=\"small\",github_state=\"busy\",cloud_state="
	                   "\"active\"} 1",
	                   "runnerd_runners{flavor=\"small\",github_state=\"absent\",cloud_state="
	                   "\"created\"} 0",
	                   "runnerd_runners{flavor=\"gone\",github_state=\"offline\",cloud_state="
	                   "\"stopped\"} 1",
	                   "runnerd_runners_desired{flavor=\"small\"} 3",
	                   "runnerd_jobs_waiting{flavor=\"small\"} 2",
	                   "runnerd_flavor_min_idle{flavor=\"small\"} 2",
	                   "runnerd_flavor_max{flavor=\"small\"} 4", "runnerd_draining 1",
	                   "runnerd_provider_calls_total{provider=\"local\",operation=\"list\"} 5",
	                   "runnerd_provider_call_failures_total{provider=\"local\",operation="
	                   "\"list\"} 1",
	                   "runnerd_provider_call_duration_seconds_total{provider=\"local\","
	                   "operation=\"list\"} 1.5",
	                   "runnerd_github_requests_total{route=\"/repos/{owner}/{repo}/actions/"
	                   "runners\",method=\"GET\",status=\"304\"} 7",
	                   "runnerd_github_not_modified_total 7",
	                   "runnerd_github_rate_limit_remaining{resource=\"core\"} 4990",
	                   "runnerd_github_rate_limit{resource=\"core\"} 5000", NULL});
	free(t);
	prom_registry_free(reg);
}

static char *scrape_text(struct serve_metrics *sm)
{
	struct buf b = BUF_INIT(1 << 20);
	size_t n;
	assert_int_equal(metrics_prom_render(serve_metrics_prom(sm), &b), 0);
	return buf_detach(&b, &n);
}

/* A collector as reactive mode's: one counter, its value from ctx, read at each scrape. */
static int collect(void *ctx, struct prom_registry *reg)
{
	struct prom_family *f;
	int rc = prom_family_new(reg, PROM_COUNTER, "runnerd_test_collected_total", "Test.", NULL,
	                         NULL, 0, &f);
	return rc < 0 ? rc : prom_set(f, NULL, (double)*(int *)ctx);
}

static void test_pass_counts(void **state)
{
	int collected = 3;
	struct serve_metrics *sm;
	struct manager_report r;
	struct config cfg;
	char *t;

	fill_config(&cfg);
	fill_report(&r);
	add_event(&r, "create", "local", "small", "", true, "ok");
	add_event(&r, "create", "local", "small", "", false, "no runner package");
	add_event(&r, "delete", "local", "small", "scale_down", true,
	          "kept: the runner became busy");
	add_event(&r, "delete", "local", "small", "finished", true, "ok");
	add_event(&r, "delete-runner", "", "", "dangling", true, "ok");
	add_event(&r, "adopt", "local", "small", "", true, "ok");
	assert_int_equal(serve_metrics_new(&cfg, &sm), 0);
	serve_metrics_collector(sm, collect, &collected);
	serve_metrics_pass(sm, &cfg, &r, false, 0, "");
	t = scrape_text(sm);
	assert_lines(t, (const char *const[]){
	                        "runnerd_test_collected_total 3",
	                        "runnerd_creates_total{provider=\"local\",flavor=\"small\",result="
	                        "\"ok\"} 1",
	                        "runnerd_creates_total{provider=\"local\",flavor=\"small\",result="
	                        "\"failed\"} 1",
	                        "runnerd_deletes_total{provider=\"local\",flavor=\"small\",reason="
	                        "\"scale_down\",result=\"kept\"} 1",
	                        "runnerd_deletes_total{provider=\"local\",flavor=\"small\",reason="
	                        "\"finished\",result=\"ok\"} 1",
	                        "runnerd_deletes_total{provider=\"\",flavor=\"\",reason="
	                        "\"dangling\",result=\"ok\"} 1",
	                        "runnerd_passes_total{result=\"ok\"} 1",
	                        "runnerd_pass_duration_seconds_bucket{le=\"0.25\"} 1",
	                        "runnerd_last_successful_pass_timestamp_seconds 1700000000",
	                        "runnerd_runners_desired{flavor=\"small\"} 3", NULL});
	free(t);
	/* a pass whose GitHub list failed is not a success */
	r.n_events = 0;
	snprintf(r.github_error, sizeof(r.github_error), "list runners: 500");
	serve_metrics_pass(sm, &cfg, &r, false, 0, "");
	t = scrape_text(sm);
	assert_non_null(strstr(t, "runnerd_passes_total{result=\"failed\"} 1\n"));
	assert_non_null(strstr(t, "\nrunnerd_test_collected_total 3\n"));
	assert_non_null(strstr(t, "runnerd_creates_total{provider=\"local\",flavor=\"small\","
	                          "result=\"ok\"} 1\n"));
	free(t);
	serve_metrics_stop(sm);
	serve_metrics_stop(NULL);
}

static int health(struct serve_metrics *sm, int64_t at, char *out, size_t cap)
{
	return serve_metrics_health(sm, at, out, cap);
}

static void test_health(void **state)
{
	struct serve_metrics *sm;
	struct manager_report r;
	struct config cfg;
	char body[1024];
	int64_t t0;

	fill_config(&cfg); /* 2 s: unhealthy past 6 s */
	fill_report(&r);
	assert_int_equal(serve_metrics_new(&cfg, &sm), 0);
	t0 = clock_mono_ms();
	assert_int_equal(health(sm, t0, body, sizeof(body)), 200);
	assert_non_null(strstr(body, "\"status\":\"starting\""));
	assert_non_null(strstr(body, "the first pass has not ended yet"));
	/* a failed pass: still starting within the window, 503 past it */
	snprintf(r.github_error, sizeof(r.github_error), "list runners: GitHub answered 500");
	serve_metrics_pass(sm, &cfg, &r, false, 0, "");
	assert_int_equal(health(sm, t0 + 1000, body, sizeof(body)), 200);
	assert_non_null(strstr(body, "no pass has succeeded yet"));
	assert_int_equal(health(sm, t0 + 7000, body, sizeof(body)), 503);
	assert_non_null(strstr(body, "\"status\":\"unhealthy\""));
	assert_non_null(strstr(body, "no pass has succeeded since runnerd started"));
	assert_non_null(strstr(body, "\"last_error\":\"list runners: GitHub answered 500\""));
	/* a successful pass: ok for 3 intervals after it, then 503 with the reason */
	r.github_error[0] = '\0';
	serve_metrics_pass(sm, &cfg, &r, false, 0, "");
	t0 = clock_mono_ms();
	assert_int_equal(health(sm, t0 + 5000, body, sizeof(body)), 200);
	assert_non_null(strstr(body, "\"status\":\"ok\""));
	assert_non_null(strstr(body, "\"last_error\":\"\""));
	assert_int_equal(health(sm, t0 + 6500, body, sizeof(body)), 503);
	assert_non_null(strstr(body, "more than 3 reconcile intervals (6s)"));
	/* a failed pass after it keeps its error for the probe */
	serve_metrics_pass(sm, &cfg, &r, false, -EIO, "execute: I/O error");
	assert_int_equal(health(sm, t0 + 6500, body, sizeof(body)), 503);
	assert_non_null(strstr(body, "execute: I/O error"));
	serve_metrics_stop(sm);
}

/* The status line and whole answer of one request to 127.0.0.1:port. */
static int request(int port, const char *method, const char *path, char *out, size_t cap)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	char req[256];
	size_t got = 0;
	ssize_t k;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), status = -1;

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", method,
	         path);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while (got + 1 < cap && (k = read(fd, out + got, cap - 1 - got)) > 0)
		got += (size_t)k;
	out[got] = '\0';
	close(fd);
	if (sscanf(out, "HTTP/1.1 %d", &status) != 1)
		status = -1;
	return status;
}

static void test_listener(void **state)
{
	static char out[1 << 16];
	struct serve_metrics *sm;
	struct config cfg;
	struct err e = {0};
	int port;

	fill_config(&cfg);
	assert_int_equal(serve_metrics_new(&cfg, &sm), 0);
	assert_int_equal(serve_metrics_listen(sm, "127.0.0.1:0", &e), 0);
	port = serve_metrics_port(sm);
	assert_true(port > 0);
	assert_int_equal(request(port, "GET", "/metrics", out, sizeof(out)), 200);
	assert_non_null(strstr(out, "Content-Type: text/plain; version=0.0.4"));
	assert_non_null(strstr(out, "runnerd_build_info{version=\"" RUNNERD_VERSION "\"} 1\n"));
	assert_int_equal(request(port, "HEAD", "/metrics", out, sizeof(out)), 200);
	assert_int_equal(request(port, "GET", "/healthz", out, sizeof(out)), 200);
	assert_non_null(strstr(out, "\"status\":\"starting\""));
	assert_int_equal(request(port, "GET", "/", out, sizeof(out)), 404);
	assert_int_equal(request(port, "GET", "/metrics/x", out, sizeof(out)), 404);
	assert_int_equal(request(port, "POST", "/metrics", out, sizeof(out)), 405);
	assert_int_equal(request(port, "DELETE", "/healthz", out, sizeof(out)), 405);
	/* a second listener on the same port is refused, and says where */
	{
		struct serve_metrics *sm2;
		char listen[32];
		snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
		assert_int_equal(serve_metrics_new(&cfg, &sm2), 0);
		assert_int_equal(serve_metrics_listen(sm2, listen, &e), -EADDRINUSE);
		assert_non_null(strstr(e.msg, "metrics.listen 127.0.0.1:"));
		serve_metrics_stop(sm2);
	}
	serve_metrics_stop(sm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_snapshot),
	        cmocka_unit_test(test_pass_counts),
	        cmocka_unit_test(test_health),
	        cmocka_unit_test(test_listener),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
