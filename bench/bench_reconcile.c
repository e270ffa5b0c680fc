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
#include "testlib.h"
#include "config/config.h"
#include "github/github.h"
#include "manager/manager.h"
#include "provider/memory.h"
#include "store/store.h"
#include "util/httpc.h"
#include "util/fileutil.h"
#include "util/log.h"

#include <jansson.h>
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
	const char *url = getenv("GHSIM_URL"), *token = getenv("GH_TOKEN_FILE");
	char dir[] = "/tmp/runnerd-bench-reconcile.XXXXXX", yaml[4096], body[256];
	struct config *cfg = NULL;
	struct config_errors errs = {0};
	struct provider *mem = NULL;
	struct store *store = NULL;
	struct github *gh = NULL;
	struct manager *m = NULL;
	struct manager_report rep;
	struct github_stats s0, s1;
	struct err e = {0};
	json_t *root = NULL, *arr;
	long n;
	int rc = 1;

	if (argc != 2 || !url || !token || (n = strtol(argv[1], NULL, 10)) < 1 || n > 100000) {
		fprintf(stderr, "usage: GHSIM_URL=... GH_TOKEN_FILE=... bench_reconcile N\n");
		return 2;
	}
	log_setup(LOG_WARN, LOG_FORMAT_TEXT);
	if (!mkdtemp(dir))
		return 1;
	snprintf(yaml, sizeof(yaml),
	         "github: {api_url: \"%s\", path: octo/hello, token_file: \"%s\", request_timeout: "
	         "120s}\n"
	         "manager: {name: bench, state_dir: \"%s/state\", reconcile_interval: 1m}\n"
	         "flavors:\n  - {name: small, provider: local, labels: [small], min_idle: %ld, "
	         "max: %ld}\n"
	         "providers: {local: {work_dir: \"%s/work\"}}\n",
	         url, token, dir, n, n, dir);
	if (config_load_string("bench.yaml", yaml, strlen(yaml), &cfg, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		goto out;
	}
	/* N idle runners of ours on ghsim */
	if (!test_ghsim_ok(url, "POST", "/_ghsim/reset", "{}"))
		goto out;
	snprintf(body, sizeof(body),
	         "{\"scope\":\"repos/octo/hello\",\"name\":\"bench-{hex}\",\"labels\":[\"small\"],"
	         "\"status\":\"online\",\"count\":%ld}",
	         n);
	root = test_ghsim(url, "POST", "/_ghsim/runners", body);
	arr = json_object_get(root, "runners");
	if (!json_is_array(arr) || json_array_size(arr) != (size_t)n) {
		fprintf(stderr, "bench: ghsim did not add %ld runners\n", n);
		goto out;
	}
	/* their N instances in the memory provider */
	if (memory_new("local", "bench", &mem, &e) < 0 ||
	    store_open(cfg->manager.state_dir, &store, &e) < 0 ||
	    github_new(cfg, NULL, &gh, &e) < 0)
		goto out;
	for (size_t i = 0; i < (size_t)n; i++) {
		struct instance in = {.state = CLOUD_ACTIVE, .created_at = time(NULL) - 60};
		snprintf(in.name, sizeof(in.name), "%s",
		         json_string_value(json_object_get(json_array_get(arr, i), "name")));
		snprintf(in.provider_id, sizeof(in.provider_id), "mem-%zu", i);
		snprintf(in.flavor, sizeof(in.flavor), "small");
		memory_add(mem, &in);
	}
	if (manager_new(cfg, store, gh, &mem, 1, &m, &e) < 0)
		goto out;

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
	manager_free(m);
	github_free(gh);
	store_close(store);
	provider_free(mem);
	json_decref(root);
	config_errors_release(&errs);
	config_free(cfg);
	rm_rf(dir, NULL);
	return rc;
}
