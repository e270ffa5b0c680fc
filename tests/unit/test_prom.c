/*
 * Unit tests of the Prometheus registry (src/metrics/prom.c) and runnerd's
 * live metrics over it (src/metrics/metrics_prom.c): names and labels
 * checked when a family is made, the exact text rendered (HELP and TYPE,
 * escaping, series in label-value order whatever the order of updates,
 * cumulative histogram buckets with +Inf, _sum and _count), values as
 * Prometheus reads them, the buffer's bound, and what the metrics sink
 * feeds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "metrics/metrics_prom.h"
#include "metrics/prom.h"

#include <math.h>
#include <stdatomic.h>
#include <pthread.h>

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})
#define V(...) ((const char *const[]){__VA_ARGS__})

static struct prom_registry *new_reg(void)
{
	struct prom_registry *r = NULL;
	assert_int_equal(prom_registry_new(&r), 0);
	return r;
}

static char *render(struct prom_registry *r)
{
	struct buf b = BUF_INIT(1 << 20);
	size_t n;
	assert_int_equal(prom_render(r, &b), 0);
	return buf_detach(&b, &n);
}

static void test_names_checked(void **state)
{
	struct prom_registry *r = new_reg();
	struct prom_family *f;
	const double ok[] = {1, 2}, flat[] = {1, 1}, inf[] = {1, INFINITY};

	/* a counter's name ends in _total */
	assert_int_equal(prom_family_new(r, PROM_COUNTER, "x_requests", "h", NULL, NULL, 0, &f),
	                 -EINVAL);
	assert_int_equal(prom_family_new(r, PROM_COUNTER, "9x_total", "h", NULL, NULL, 0, &f),
	                 -EINVAL);
	assert_int_equal(prom_family_new(r, PROM_GAUGE, "x-y", "h", NULL, NULL, 0, &f), -EINVAL);
	assert_int_equal(prom_family_new(r, PROM_GAUGE, "x", "h", L("a:b"), NULL, 0, &f), -EINVAL);
	assert_int_equal(prom_family_new(r, PROM_GAUGE, "x", "h", L("__a"), NULL, 0, &f), -EINVAL);
	assert_int_equal(prom_family_new(r, PROM_GAUGE, "x", "h", L("a", "a"), NULL, 0, &f),
	                 -EINVAL);
	assert_int_equal(prom_family_new(r, PROM_GAUGE, "x", "h",
	                                 L("a", "b", "c", "d", "e", "f", "g"), NULL, 0, &f),
	                 -EINVAL);
	/* histograms: "le" is theirs; bounds finite and strictly rising */
	assert_int_equal(prom_family_new(r, PROM_HISTOGRAM, "h", "h", L("le"), ok, 2, &f), -EINVAL);
	assert_int_equal(prom_family_new(r, PROM_HISTOGRAM, "h", "h", NULL, flat, 2, &f), -EINVAL);
	assert_int_equal(prom_family_new(r, PROM_HISTOGRAM, "h", "h", NULL, inf, 2, &f), -EINVAL);
	assert_int_equal(prom_family_new(r, PROM_HISTOGRAM, "h", "h", NULL, ok, 0, &f), -EINVAL);
	assert_int_equal(prom_family_new(r, PROM_COUNTER, "ns:x_total", "h", L("a"), NULL, 0, &f),
	                 0);
	assert_int_equal(prom_family_new(r, PROM_GAUGE, "ns:x_total", "h", NULL, NULL, 0, &f),
	                 -EEXIST);
	assert_ptr_equal(prom_family_find(r, "ns:x_total"), f);
	assert_null(prom_family_find(r, "nope"));
	/* the wrong operation for the type, a counter going down */
	assert_int_equal(prom_observe(f, V("v"), 1), -EINVAL);
	assert_int_equal(prom_add(f, V("v"), -1), -EINVAL);
	assert_int_equal(prom_add(f, V("v"), NAN), -EINVAL);
	assert_int_equal(prom_add(f, NULL, 1), -EINVAL);
	prom_registry_free(r);
}

static void test_counter_text(void **state)
{
	struct prom_registry *r = new_reg();
	struct prom_family *c, *g;
	double v;
	char *t;

	assert_int_equal(prom_family_new(r, PROM_COUNTER, "app_deletes_total", "Deletes.",
	                                 L("flavor", "reason"), NULL, 0, &c),
	                 0);
	assert_int_equal(prom_family_new(r, PROM_GAUGE, "app_up", "Up.", NULL, NULL, 0, &g), 0);
	/* updated out of order: rendered in label-value order, labels in declared order */
	assert_int_equal(prom_add(c, V("small", "scale_down"), 2), 0);
	assert_int_equal(prom_add(c, V("large", "orphan"), 1), 0);
	assert_int_equal(prom_add(c, V("small", "error"), 1), 0);
	assert_int_equal(prom_add(c, V("small", "scale_down"), 1), 0);
	assert_int_equal(prom_get(c, V("small", "scale_down"), &v), 0);
	assert_true(v == 3);
	assert_int_equal(prom_get(c, V("small", "nope"), &v), -ENOENT);
	t = render(r);
	assert_string_equal(t, "# HELP app_deletes_total Deletes.\n"
	                       "# TYPE app_deletes_total counter\n"
	                       "app_deletes_total{flavor=\"large\",reason=\"orphan\"} 1\n"
	                       "app_deletes_total{flavor=\"small\",reason=\"error\"} 1\n"
	                       "app_deletes_total{flavor=\"small\",reason=\"scale_down\"} 3\n"
	                       "# HELP app_up Up.\n"
	                       "# TYPE app_up gauge\n"
	                       "app_up 0\n");
	free(t);
	prom_registry_free(r);
	prom_registry_free(NULL);
}

static void test_escaping(void **state)
{
	struct prom_registry *r = new_reg();
	struct prom_family *g;
	struct buf b = BUF_INIT(256);
	char *t;

	assert_int_equal(prom_family_new(r, PROM_GAUGE, "x", "Help with \\ and\nnew \"line\".",
	                                 L("v"), NULL, 0, &g),
	                 0);
	assert_int_equal(prom_set(g, V("a\\b\"c\nd"), 1.5), 0);
	t = render(r);
	assert_string_equal(t, "# HELP x Help with \\\\ and\\nnew \"line\".\n"
	                       "# TYPE x gauge\n"
	                       "x{v=\"a\\\\b\\\"c\\nd\"} 1.5\n");
	free(t);
	/* bytes that are not UTF-8 become U+FFFD; valid multi-byte ones stay */
	assert_int_equal(prom_escape_label(&b, "\xff\xc3\xa9\xe0\x80\x80z"), 0);
	assert_string_equal(buf_str(&b),
	                    "\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz");
	buf_release(&b);
	/* a value too long is refused, never cut */
	char longv[PROM_LABEL_VALUE_MAX + 2];
	memset(longv, 'a', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	assert_int_equal(prom_set(g, V(longv), 1), -E2BIG);
	prom_registry_free(r);
}

static void test_histogram_cumulative(void **state)
{
	struct prom_registry *r = new_reg();
	struct prom_family *h;
	const double bounds[] = {1, 2, 5};
	char *t;

	assert_int_equal(prom_family_new(r, PROM_HISTOGRAM, "job_seconds", "Jobs.", L("flavor"),
	                                 bounds, 3, &h),
	                 0);
	assert_int_equal(prom_observe(h, V("s"), 0.5), 0);
	assert_int_equal(prom_observe(h, V("s"), 1), 0); /* le is inclusive */
	assert_int_equal(prom_observe(h, V("s"), 3), 0);
	assert_int_equal(prom_observe(h, V("s"), 100), 0);
	assert_int_equal(prom_add(h, V("s"), 1), -EINVAL);
	t = render(r);
	assert_string_equal(t, "# HELP job_seconds Jobs.\n"
	                       "# TYPE job_seconds histogram\n"
	                       "job_seconds_bucket{flavor=\"s\",le=\"1\"} 2\n"
	                       "job_seconds_bucket{flavor=\"s\",le=\"2\"} 2\n"
	                       "job_seconds_bucket{flavor=\"s\",le=\"5\"} 3\n"
	                       "job_seconds_bucket{flavor=\"s\",le=\"+Inf\"} 4\n"
	                       "job_seconds_sum{flavor=\"s\"} 104.5\n"
	                       "job_seconds_count{flavor=\"s\"} 4\n");
	free(t);
	prom_registry_free(r);

	/* without labels: only le in the braces; rendered from the start */
	const double b2[] = {0.25};
	r = new_reg();
	assert_int_equal(prom_family_new(r, PROM_HISTOGRAM, "p", "P.", NULL, b2, 1, &h), 0);
	t = render(r);
	assert_string_equal(
	        t, "# HELP p P.\n# TYPE p histogram\n"
	           "p_bucket{le=\"0.25\"} 0\np_bucket{le=\"+Inf\"} 0\np_sum 0\np_count 0\n");
	free(t);
	prom_registry_free(r);
}

/* A histogram counted elsewhere, set at a scrape: rendered as if observed. */
static void test_histogram_set(void **state)
{
	struct prom_registry *r = new_reg();
	struct prom_family *h, *c;
	const double bounds[] = {1, 2, 5};
	const uint64_t counts[] = {2, 0, 1}, too_many[] = {2, 2, 1};
	char *t;

	assert_int_equal(
	        prom_family_new(r, PROM_HISTOGRAM, "job_seconds", "Jobs.", NULL, bounds, 3, &h), 0);
	assert_int_equal(prom_family_new(r, PROM_COUNTER, "n_total", "N.", NULL, NULL, 0, &c), 0);
	/* what observing 0.5, 1, 3 and 100 would have made */
	assert_int_equal(prom_histogram_set(h, NULL, counts, 4, 104.5), 0);
	/* set again: the latest counts, not added */
	assert_int_equal(prom_histogram_set(h, NULL, counts, 4, 104.5), 0);
	/* buckets that hold more than count, a sum that is no number, not a histogram */
	assert_int_equal(prom_histogram_set(h, NULL, too_many, 4, 1), -EINVAL);
	assert_int_equal(prom_histogram_set(h, NULL, counts, 4, NAN), -EINVAL);
	assert_int_equal(prom_histogram_set(c, NULL, counts, 4, 1), -EINVAL);
	t = render(r);
	assert_string_equal(t, "# HELP job_seconds Jobs.\n"
	                       "# TYPE job_seconds histogram\n"
	                       "job_seconds_bucket{le=\"1\"} 2\n"
	                       "job_seconds_bucket{le=\"2\"} 2\n"
	                       "job_seconds_bucket{le=\"5\"} 3\n"
	                       "job_seconds_bucket{le=\"+Inf\"} 4\n"
	                       "job_seconds_sum 104.5\n"
	                       "job_seconds_count 4\n"
	                       "# HELP n_total N.\n"
	                       "# TYPE n_total counter\n"
	                       "n_total 0\n");
	free(t);
	prom_registry_free(r);
}

static void test_values(void **state)
{
	char s[40];

	prom_format_value(1, s, sizeof(s));
	assert_string_equal(s, "1");
	prom_format_value(-3, s, sizeof(s));
	assert_string_equal(s, "-3");
	prom_format_value(0.1, s, sizeof(s));
	assert_string_equal(s, "0.1");
	prom_format_value(1e20, s, sizeof(s));
	assert_string_equal(s, "1e+20");
	prom_format_value(INFINITY, s, sizeof(s));
	assert_string_equal(s, "+Inf");
	prom_format_value(-INFINITY, s, sizeof(s));
	assert_string_equal(s, "-Inf");
	prom_format_value(NAN, s, sizeof(s));
	assert_string_equal(s, "NaN");
	prom_format_value(1.0 / 3, s, sizeof(s));
	assert_true(strtod(s, NULL) == 1.0 / 3);
}

static void test_bounded(void **state)
{
	struct prom_registry *r = new_reg();
	struct prom_family *c;
	struct buf b = BUF_INIT(64);

	assert_int_equal(prom_family_new(r, PROM_COUNTER, "a_total", "A.", L("x"), NULL, 0, &c), 0);
	assert_int_equal(prom_add(c, V("1"), 1), 0);
	assert_int_equal(prom_add(c, V("2"), 1), 0);
	assert_int_equal(buf_puts(&b, "before\n"), 0);
	assert_int_equal(prom_render(r, &b), -E2BIG);
	assert_string_equal(buf_str(&b), "before\n"); /* never half a family */
	buf_release(&b);
	prom_registry_free(r);
}

static void test_series_cap(void **state)
{
	struct prom_registry *r = new_reg();
	struct prom_family *g;
	char v[16];

	assert_int_equal(prom_family_new(r, PROM_GAUGE, "g", "G.", L("i"), NULL, 0, &g), 0);
	for (int i = 0; i < PROM_MAX_SERIES; i++) {
		snprintf(v, sizeof(v), "%05d", PROM_MAX_SERIES - i);
		assert_int_equal(prom_set(g, V(v), i), 0);
	}
	assert_int_equal(prom_set(g, V("x"), 1), -E2BIG);
	assert_int_equal(prom_set(g, V("00001"), 7), 0); /* an existing one still moves */
	prom_registry_free(r);
}

/* ---- runnerd's live metrics ---------------------------------------------- */

static char *render_mp(struct metrics_prom *mp)
{
	struct buf b = BUF_INIT(1 << 20);
	size_t n;
	assert_int_equal(metrics_prom_render(mp, &b), 0);
	return buf_detach(&b, &n);
}

static void test_sink(void **state)
{
	struct metrics_prom *mp;
	struct metrics_sink s;
	struct metrics_event ev = {.kind = METRICS_EVENT_RUNNER_START};
	char *t;

	assert_int_equal(metrics_prom_new("1.2.3", 1700000000, &mp), 0);
	metrics_prom_sink(mp, &s);
	snprintf(ev.flavor, sizeof(ev.flavor), "small");
	ev.idle = 12;
	ev.has_queue_duration = true;
	ev.queue_duration = 7;
	s.event(s.ctx, &ev);
	ev.kind = METRICS_EVENT_RUNNER_STOP;
	ev.job_duration = 95;
	s.event(s.ctx, &ev);
	ev.kind = METRICS_EVENT_RUNNER_INSTALLED;
	ev.duration = 3;
	s.event(s.ctx, &ev);
	ev.kind = METRICS_EVENT_RUNNER_START;
	ev.has_queue_duration = false; /* GitHub's job not found: no startup observation */
	s.event(s.ctx, &ev);
	s.quarantined(s.ctx, "small", "too_big");
	s.quarantined(s.ctx, "small", "too_big");
	metrics_prom_pass(mp, 0.3, true);
	metrics_prom_pass(mp, 0.3, false);
	metrics_prom_create(mp, "local", "small", METRICS_RESULT_OK);
	metrics_prom_delete(mp, "local", "small", "scale_down", METRICS_RESULT_KEPT);
	t = render_mp(mp);
	assert_non_null(strstr(t, "runnerd_build_info{version=\"1.2.3\"} 1\n"));
	assert_non_null(strstr(t, "runnerd_process_start_time_seconds 1700000000\n"));
	assert_non_null(strstr(t, "runnerd_events_total{event=\"runner_start\"} 2\n"));
	assert_non_null(strstr(t, "runnerd_events_total{event=\"runner_stop\"} 1\n"));
	assert_non_null(strstr(t, "runnerd_events_total{event=\"reconciliation\"} 0\n"));
	assert_non_null(
	        strstr(t, "runnerd_quarantines_total{flavor=\"small\",cause=\"too_big\"} 2\n"));
	assert_non_null(
	        strstr(t, "runnerd_job_startup_duration_seconds_count{flavor=\"small\"} 1\n"));
	assert_non_null(strstr(t, "runnerd_job_startup_duration_seconds_bucket{flavor=\"small\","
	                          "le=\"5\"} 0\n"));
	assert_non_null(strstr(t, "runnerd_job_startup_duration_seconds_bucket{flavor=\"small\","
	                          "le=\"10\"} 1\n"));
	assert_non_null(
	        strstr(t, "runnerd_job_execution_duration_seconds_sum{flavor=\"small\"} 95\n"));
	assert_non_null(
	        strstr(t, "runnerd_runner_idle_duration_seconds_count{flavor=\"small\"} 2\n"));
	assert_non_null(
	        strstr(t, "runnerd_runner_install_duration_seconds_sum{flavor=\"small\"} 3\n"));
	assert_non_null(strstr(t, "runnerd_pass_duration_seconds_count 2\n"));
	assert_non_null(strstr(t, "runnerd_passes_total{result=\"failed\"} 1\n"));
	assert_non_null(strstr(t, "runnerd_creates_total{provider=\"local\",flavor=\"small\","
	                          "result=\"ok\"} 1\n"));
	assert_non_null(strstr(t, "runnerd_deletes_total{provider=\"local\",flavor=\"small\","
	                          "reason=\"scale_down\",result=\"kept\"} 1\n"));
	free(t);
	metrics_prom_free(mp);
	metrics_prom_free(NULL);
}

static struct prom_registry *snapshot_with(double v)
{
	struct prom_registry *r = new_reg();
	struct prom_family *g;
	assert_int_equal(prom_family_new(r, PROM_GAUGE, "runnerd_runners_desired", "D.",
	                                 L("flavor"), NULL, 0, &g),
	                 0);
	assert_int_equal(prom_set(g, V("small"), v), 0);
	return r;
}

static void test_snapshot_swap(void **state)
{
	struct metrics_prom *mp;
	char *t;

	assert_int_equal(metrics_prom_new("1", 0, &mp), 0);
	t = render_mp(mp);
	assert_null(strstr(t, "runnerd_runners_desired")); /* no pass yet */
	free(t);
	metrics_prom_publish(mp, snapshot_with(2));
	metrics_prom_publish(mp, snapshot_with(3));
	t = render_mp(mp);
	assert_non_null(strstr(t, "runnerd_runners_desired{flavor=\"small\"} 3\n"));
	assert_null(strstr(t, "runnerd_runners_desired{flavor=\"small\"} 2\n"));
	free(t);
	metrics_prom_free(mp);
}

struct race {
	struct metrics_prom *mp;
	atomic_bool stop;
	int published;
};

static void *publisher(void *arg)
{
	struct race *x = arg;
	do /* at least once, however late this thread starts */
		metrics_prom_publish(x->mp, snapshot_with(x->published++));
	while (!atomic_load(&x->stop));
	return NULL;
}

/* Scrapes while passes publish: every render is whole (ASan sees no use after free). */
static void test_scrape_while_publishing(void **state)
{
	struct race x = {0};
	pthread_t t;

	assert_int_equal(metrics_prom_new("1", 0, &x.mp), 0);
	assert_int_equal(pthread_create(&t, NULL, publisher, &x), 0);
	for (int i = 0; i < 500; i++) {
		char *s = render_mp(x.mp);
		assert_non_null(strstr(s, "runnerd_build_info"));
		free(s);
	}
	atomic_store(&x.stop, true);
	pthread_join(t, NULL);
	assert_true(x.published > 0);
	metrics_prom_free(x.mp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_names_checked),
	        cmocka_unit_test(test_counter_text),
	        cmocka_unit_test(test_escaping),
	        cmocka_unit_test(test_histogram_cumulative),
	        cmocka_unit_test(test_histogram_set),
	        cmocka_unit_test(test_values),
	        cmocka_unit_test(test_bounded),
	        cmocka_unit_test(test_series_cap),
	        cmocka_unit_test(test_sink),
	        cmocka_unit_test(test_snapshot_swap),
	        cmocka_unit_test(test_scrape_while_publishing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
