/*
 * Benchmark (not a test): what listing a large runner pool costs. ghsim holds
 * N runners (default 1,000); the client lists them R times (default 10) with
 * nothing changing in between. Printed per list, as the client saw it and as
 * ghsim counted it: requests sent, requests counted against the rate limit,
 * 304s, the drop in X-RateLimit-Remaining, and the client's CPU time
 * (getrusage). The target, judged on ghsim's own counters (GET /_ghsim/stats
 * before and after each list) and on the X-RateLimit-Remaining GitHub
 * reported, not on the client's word: the first list costs one counted
 * request per page (N/100), every unchanged list costs none, and the client's
 * counts agree with ghsim's. Exit 1 when the target is missed.
 *
 * Env: GHSIM_URL, GH_TOKEN_FILE (as scripts/bench.sh sets them).
 * Usage: bench_github_list [RUNNERS [ROUNDS]]
 */
#include "util/common.h"
#include "testlib.h"
#include "util/clock.h"
#include "github/github.h"
#include "util/fileutil.h"
#include "util/httpc.h"
#include "util/strutil.h"

#include <sys/resource.h>
#include <jansson.h>

static double cpu_ms(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static double wall_ms(void)
{
	return (double)clock_mono_ms();
}

/* ghsim's own counters (GitHub API requests only; control calls are not counted). */
struct sim_counts {
	int64_t requests, counted, not_modified;
};

static int sim_counts(const char *base, struct sim_counts *ret, struct err *e)
{
	json_t *j = test_ghsim(base, "GET", "/_ghsim/stats", NULL);

	if (!json_is_object(j)) {
		json_decref(j);
		return err_set(e, -EIO, "ghsim: no stats");
	}
	ret->requests = json_integer_value(json_object_get(j, "requests"));
	ret->counted = json_integer_value(json_object_get(j, "rate_counted"));
	ret->not_modified = json_integer_value(json_object_get(j, "not_modified"));
	json_decref(j);
	return 0;
}

int main(int argc, char **argv)
{
	const char *base = getenv("GHSIM_URL"), *tf = getenv("GH_TOKEN_FILE");
	int64_t runners = 1000, rounds = 10;
	struct config cfg = {0};
	struct github *gh = NULL;
	struct github_stats s0, s1;
	struct sim_counts g0, g1;
	char *token = NULL, body[256], path[] = "octo/bench", empty[] = "", url[256];
	double first_cpu = 0, rest_cpu = 0;
	int64_t first_sim = 0, rest_sim = 0, first_drop = 0, rest_drop = 0, rem_before = -1;
	uint64_t first_counted = 0, rest_counted = 0, pages;
	bool agree = true;
	struct err e = {0};
	int rc = 1;

	if (!base || !tf || (argc > 1 && parse_int64(argv[1], 1, 100000, &runners) < 0) ||
	    (argc > 2 && parse_int64(argv[2], 2, 1000, &rounds) < 0)) {
		fprintf(stderr, "usage: GHSIM_URL=... GH_TOKEN_FILE=... bench_github_list [RUNNERS "
		                "[ROUNDS]]\n");
		return 2;
	}
	if (file_read_secret(tf, &token, &e) < 0)
		goto out;
	snprintf(body, sizeof(body),
	         "{\"scope\":\"repos/octo/bench\",\"name\":\"bench-{hex}\",\"count\":%" PRId64 "}",
	         runners);
	if (!test_ghsim_ok(base, "POST", "/_ghsim/reset", "{}") ||
	    !test_ghsim_ok(base, "POST", "/_ghsim/runners", body))
		goto out;
	str_copy(url, base, sizeof(url));
	cfg.github.api_url = url;
	cfg.github.path = path;
	cfg.github.token.value = token;
	cfg.github.ca_file = empty;
	cfg.github.proxy = empty;
	cfg.github.connect_timeout = 5;
	cfg.github.request_timeout = 30;
	if (github_new(&cfg, NULL, &gh, &e) < 0)
		goto out;

	pages = (uint64_t)(runners + 99) / 100;
	printf("bench_github_list: %" PRId64 " runners (%" PRIu64 " pages), %" PRId64
	       " lists, nothing changing\n",
	       runners, pages, rounds);
	printf("%5s %8s | client: %5s %7s %5s | ghsim: %5s %7s %5s | %9s | %9s %9s\n", "list",
	       "runners", "sent", "counted", "304", "reqs", "counted", "304", "remaining", "cpu ms",
	       "wall ms");
	for (int64_t i = 0; i < rounds; i++) {
		struct github_runner_list l = {0};
		double c0, w0, c, w;
		int64_t drop;

		github_get_stats(gh, &s0);
		if (sim_counts(base, &g0, &e) < 0)
			goto out;
		c0 = cpu_ms();
		w0 = wall_ms();
		if (github_list_runners(gh, "bench", &l, &e) < 0)
			goto out;
		c = cpu_ms() - c0;
		w = wall_ms() - w0;
		github_get_stats(gh, &s1);
		if (sim_counts(base, &g1, &e) < 0) {
			github_runner_list_release(&l);
			goto out;
		}
		/* What GitHub said was left: before the first list, the limit itself. */
		if (rem_before < 0)
			rem_before = s1.rate_limit;
		drop = rem_before - s1.rate_remaining;
		rem_before = s1.rate_remaining;
		printf("%5" PRId64 " %8zu | client: %5" PRIu64 " %7" PRIu64 " %5" PRIu64
		       " | ghsim: %5" PRId64 " %7" PRId64 " %5" PRId64 " | %9" PRId64
		       " | %9.2f %9.2f\n",
		       i + 1, l.n, s1.requests_sent - s0.requests_sent,
		       s1.requests_counted - s0.requests_counted, s1.not_modified - s0.not_modified,
		       g1.requests - g0.requests, g1.counted - g0.counted,
		       g1.not_modified - g0.not_modified, drop, c, w);
		if ((int64_t)l.n != runners) {
			err_set(&e, -EPROTO, "listed %zu runners, expected %" PRId64, l.n, runners);
			github_runner_list_release(&l);
			goto out;
		}
		github_runner_list_release(&l);
		agree = agree &&
		        (int64_t)(s1.requests_sent - s0.requests_sent) ==
		                g1.requests - g0.requests &&
		        (int64_t)(s1.requests_counted - s0.requests_counted) ==
		                g1.counted - g0.counted &&
		        (int64_t)(s1.not_modified - s0.not_modified) ==
		                g1.not_modified - g0.not_modified &&
		        drop == g1.counted - g0.counted;
		if (i == 0) {
			first_cpu = c;
			first_counted = s1.requests_counted - s0.requests_counted;
			first_sim = g1.counted - g0.counted;
			first_drop = drop;
		} else {
			rest_cpu += c;
			rest_counted += s1.requests_counted - s0.requests_counted;
			rest_sim += g1.counted - g0.counted;
			rest_drop += drop;
		}
	}
	github_get_stats(gh, &s1);
	if (sim_counts(base, &g1, &e) < 0)
		goto out;
	printf("total: client %" PRIu64 " requests sent, %" PRIu64 " counted, %" PRIu64
	       " answered 304; ghsim %" PRId64 " requests, %" PRId64 " counted, %" PRId64
	       " not modified; rate limit left %" PRId64 "/%" PRId64 "\n",
	       s1.requests_sent, s1.requests_counted, s1.not_modified, g1.requests, g1.counted,
	       g1.not_modified, s1.rate_remaining, s1.rate_limit);
	printf("first list: ghsim counted %" PRId64 ", X-RateLimit-Remaining dropped %" PRId64
	       ", client counted %" PRIu64 " (target %" PRIu64 "), %.2f ms cpu\n",
	       first_sim, first_drop, first_counted, pages, first_cpu);
	printf("unchanged lists: ghsim counted %" PRId64 ", X-RateLimit-Remaining dropped %" PRId64
	       ", client counted %" PRIu64 " over %" PRId64 " (target 0), %.2f ms cpu each\n",
	       rest_sim, rest_drop, rest_counted, rounds - 1, rest_cpu / (double)(rounds - 1));
	printf("client and ghsim agree on every list: %s\n", agree ? "yes" : "NO");
	rc = first_sim == (int64_t)pages && first_drop == (int64_t)pages && rest_sim == 0 &&
	                     rest_drop == 0 && agree
	             ? 0
	             : 1;
	printf("%s (judged on ghsim's counters and X-RateLimit-Remaining)\n",
	       rc == 0 ? "target met" : "target MISSED");
out:
	if (e.msg[0])
		fprintf(stderr, "bench_github_list: %s\n", e.msg);
	github_free(gh);
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	return rc;
}
