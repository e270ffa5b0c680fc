/*
 * Benchmark (not a test): one steady-state reconcile pass at scale. ghsim
 * holds N idle runners of ours, the in-memory provider (behind the same
 * vtable as the real ones) holds their N instances, the store holds their
 * rows; min_idle = max = N so the pass has nothing to do but look. Prints the
 * pass's CPU time (user+sys, which excludes network waits), the requests it
 * sent and those GitHub would count against the rate limit, and peak RSS.
 *
 * usage: GHSIM_URL=... GH_TOKEN_FILE=... bench_reconcile N
 */
#include "util/common.h"
#include "bench_pool.h"
#include "util/log.h"

#include <sys/resource.h>

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	struct bench_pool bp;
	struct manager *m;
	struct provider *mem;
	struct store *store;
	struct github *gh;
	struct manager_report rep;
	struct github_stats s0, s1;
	struct err e = {0};
	long n;
	int rc = 1;

	if (argc != 2 || (n = strtol(argv[1], NULL, 10)) < 1 || n > 100000) {
		fprintf(stderr, "usage: GHSIM_URL=... GH_TOKEN_FILE=... bench_reconcile N\n");
		return 2;
	}
	log_setup(LOG_WARN, LOG_FORMAT_TEXT);
	if (bench_pool_open(&bp, "bench-reconcile", n) < 0)
		goto out;
	m = bp.m;
	mem = bp.mem;
	store = bp.store;
	gh = bp.gh;

	/* warm-up: adopt the instances, record what GitHub shows (not measured) */
	for (int i = 0; i < 2; i++) {
		manager_reconcile(m, PLAN_NORMAL, &rep, &e);
		manager_report_release(&rep);
	}

	/* the pass measured: the best of a few, so a busy machine does not inflate it */
	const char *rp = getenv("BENCH_PASSES");
	int passes = rp ? (int)strtol(rp, NULL, 10) : 3;
	double c0 = 0, c1 = 1e9;
	bool have = false;
	if (passes < 1)
		passes = 1;
	for (int i = 0; i < passes; i++) {
		struct manager_report one;
		struct github_stats a, b;
		github_get_stats(gh, &a);
		double t0 = cpu_seconds();
		int r = manager_reconcile(m, PLAN_NORMAL, &one, &e);
		double t1 = cpu_seconds();
		github_get_stats(gh, &b);
		if (r < 0) {
			manager_report_release(&one);
			if (have)
				manager_report_release(&rep);
			fprintf(stderr, "bench: pass failed: %s\n", e.msg);
			goto out;
		}
		if (!have || t1 - t0 < c1 - c0) {
			c0 = t0;
			c1 = t1;
			s0 = a;
			s1 = b;
			if (have)
				manager_report_release(&rep);
			rep = one;
			have = true;
		} else {
			manager_report_release(&one);
		}
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	int64_t idle = rep.plan.n_counts ? rep.plan.counts[0].idle : -1;
	printf("N=%-6ld steady pass (best of %d): cpu %.1f ms, requests sent %" PRIu64
	       ", counted against the rate limit %" PRIu64 ", actions %zu, idle %" PRId64
	       ", peak RSS %.1f MiB\n",
	       n, passes, (c1 - c0) * 1000.0, s1.requests_sent - s0.requests_sent,
	       s1.requests_counted - s0.requests_counted, rep.n_events, idle,
	       ru.ru_maxrss / 1024.0);
	manager_report_release(&rep);
	rc = idle == n ? 0 : 1;

	/* where a pass's CPU goes: each observation on its own */
	{
		struct github_runner_list gl = {0};
		struct store_instance_list sl = {0};
		struct instance_list il = {0};
		const char *rep_env = getenv("BENCH_LIST_REPEAT");
		int reps = rep_env ? (int)strtol(rep_env, NULL, 10) : 0;
		for (int i = 0; i < reps; i++) {
			github_list_runners(gh, "bench", &gl, &e);
			github_runner_list_release(&gl);
		}
		double t0 = cpu_seconds();
		github_list_runners(gh, "bench", &gl, &e);
		double t1 = cpu_seconds();
		store_instance_list(store, &sl, &e);
		double t2 = cpu_seconds();
		provider_list(mem, &il, &e);
		double t3 = cpu_seconds();
		printf("         of which: github list %.1f ms, store read %.1f ms, provider list "
		       "%.1f ms, "
		       "plan+join+rest %.1f ms\n",
		       (t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000,
		       ((c1 - c0) - (t3 - t0)) * 1000);
		github_runner_list_release(&gl);
		store_instance_list_release(&sl);
		instance_list_release(&il);
	}
out:
	if (rc && e.msg[0])
		fprintf(stderr, "bench: %s\n", e.msg);
	bench_pool_close(&bp);
	return rc;
}
