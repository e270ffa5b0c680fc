/*
 * Benchmark (not a test): the consumer's assignment of a pass's runners to
 * waiting jobs (reactive_assign) over N waiting jobs, against the quadratic
 * assignment it replaced (tests/lib/assign_quadratic.c), on the same list
 * and report in one run: 4 flavors, a fifth of the jobs given a runner by
 * an earlier pass, 10 runners made by the pass and 5 idle per flavor.
 * Prints the best of a few runs of each (thread CPU time) and their ratio,
 * and checks that both gave the same jobs.
 *
 * usage: bench_assign [N]     (default 2000, the most a pass looks at)
 */
#include "util/common.h"
#include "util/strutil.h"
#include "assign_quadratic.h"

#define RUNS 5

typedef int (*assign_fn)(const struct manager_report *, struct queue_job *, size_t, int64_t,
                         size_t *, size_t *);

static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const char *const flavors[] = {"small", "large", "arm64-build", "gpu"};

static void fill(struct queue_job *v, size_t n, int64_t now)
{
	for (size_t i = 0; i < n; i++) {
		memset(&v[i], 0, sizeof(v[i]));
		v[i].job_id = (int64_t)i + 1;
		str_copy(v[i].flavor, flavors[i % 4], sizeof(v[i].flavor));
		str_copy(v[i].repo, "octo/hello", sizeof(v[i].repo));
		if (i % 5 == 0) {
			v[i].runner_at = now - 1000;
			v[i].attempts = 1;
		}
	}
}

/* The best of RUNS runs of fn over a fresh copy of the list: ms; *ret_n jobs given. */
static double measure(assign_fn fn, const struct manager_report *rep, const struct queue_job *tmpl,
                      struct queue_job *v, size_t n, size_t *given, size_t *ret_n, int64_t now)
{
	double best = 1e18;

	for (int k = 0; k < RUNS; k++) {
		double t0, t1;

		memcpy(v, tmpl, n * sizeof(*v));
		t0 = cpu_ms();
		if (fn(rep, v, n, now, given, ret_n) < 0) {
			fprintf(stderr, "bench_assign: out of memory\n");
			exit(1);
		}
		t1 = cpu_ms();
		if (t1 - t0 < best)
			best = t1 - t0;
	}
	return best;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
	struct manager_event ev[40];
	struct plan_flavor_count counts[4];
	struct manager_report rep = {.events = ev, .n_events = ARRAY_SIZE(ev)};
	struct queue_job *tmpl, *a, *b;
	size_t *ga, *gb, na = 0, nb = 0;
	int64_t now = 1700000000000;
	double t_new, t_old;

	if (n < 1 || n > 1000000) {
		fprintf(stderr, "usage: bench_assign [N]\n");
		return 2;
	}
	/* 10 creates per flavor, and as many deletes the assignment must skip */
	for (size_t i = 0; i < ARRAY_SIZE(ev); i++) {
		memset(&ev[i], 0, sizeof(ev[i]));
		str_copy(ev[i].action, i % 2 ? "delete" : "create", sizeof(ev[i].action));
		str_copy(ev[i].flavor, flavors[(i / 2) % 4], sizeof(ev[i].flavor));
		ev[i].ok = true;
	}
	for (size_t i = 0; i < 4; i++) {
		memset(&counts[i], 0, sizeof(counts[i]));
		str_copy(counts[i].name, flavors[i], sizeof(counts[i].name));
		counts[i].idle = 5;
	}
	rep.plan.counts = counts;
	rep.plan.n_counts = 4;
	tmpl = calloc((size_t)n, sizeof(*tmpl));
	a = calloc((size_t)n, sizeof(*a));
	b = calloc((size_t)n, sizeof(*b));
	ga = calloc((size_t)n, sizeof(*ga));
	gb = calloc((size_t)n, sizeof(*gb));
	if (!tmpl || !a || !b || !ga || !gb) {
		fprintf(stderr, "bench_assign: out of memory\n");
		return 1;
	}
	fill(tmpl, (size_t)n, now);
	t_new = measure(reactive_assign, &rep, tmpl, a, (size_t)n, ga, &na, now);
	t_old = measure(assign_quadratic, &rep, tmpl, b, (size_t)n, gb, &nb, now);
	printf("N=%-6ld waiting jobs, 4 flavors: reactive_assign %.3f ms CPU, the quadratic one it "
	       "replaced %.3f ms (ratio %.4f); %zu jobs given a runner (best of %d)\n",
	       n, t_new, t_old, t_old > 0 ? t_new / t_old : 0.0, na, RUNS);
	if (na != nb || memcmp(ga, gb, na * sizeof(*ga)) != 0 ||
	    memcmp(a, b, (size_t)n * sizeof(*a)) != 0) {
		fprintf(stderr, "bench_assign: the two assignments differ\n");
		return 1;
	}
	free(tmpl);
	free(a);
	free(b);
	free(ga);
	free(gb);
	return 0;
}
