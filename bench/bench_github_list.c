/*
 * Benchmark (not a test): what listing a large runner pool costs. ghsim holds
 * N runners (default 1,000); the client lists them R times (default 10) with
 * nothing changing in between. Printed per list: requests sent, requests
 * counted against the rate limit, 304s, and the client's CPU time
 * (getrusage). The target: the first list costs one counted request per page
 * (N/100), every unchanged list costs none. Exit 1 when the target is missed.
 *
 * Env: GHSIM_URL, GH_TOKEN_FILE (as scripts/bench.sh sets them).
 * Usage: bench_github_list [RUNNERS [ROUNDS]]
 */
#include "util/common.h"
#include "github/github.h"
#include "util/fileutil.h"
#include "util/httpc.h"
#include "util/strutil.h"

#include <sys/resource.h>

static double cpu_ms(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static double wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int control(const char *base, const char *path, const char *body, struct err *e)
{
	static const char *const hdrs[] = {"Content-Type: application/json", NULL};
	struct httpc_response resp = {0};
	char url[512];
	int r;

	snprintf(url, sizeof(url), "%s%s", base, path);
	r = httpc_perform(NULL,
	                  &(struct httpc_request){.method = "POST",
	                                          .url = url,
	                                          .headers = hdrs,
	                                          .body = body,
	                                          .body_len = strlen(body),
	                                          .timeout_ms = 60000,
	                                          .max_body = 1 << 24},
	                  &resp, e);
	if (r == 0 && resp.status != 200)
		r = err_set(e, -EIO, "ghsim %s: %ld", path, resp.status);
	httpc_response_release(&resp);
	return r;
}

int main(int argc, char **argv)
{
	const char *base = getenv("GHSIM_URL"), *tf = getenv("GH_TOKEN_FILE");
	int64_t runners = 1000, rounds = 10;
	struct config cfg = {0};
	struct github *gh = NULL;
	struct github_stats s0, s1;
	char *token = NULL, body[256], path[] = "octo/bench", empty[] = "", url[256];
	double first_cpu = 0, rest_cpu = 0;
	uint64_t first_counted = 0, rest_counted = 0, pages;
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
	if (control(base, "/_ghsim/reset", "{}", &e) < 0 ||
	    control(base, "/_ghsim/runners", body, &e) < 0)
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
	printf("%5s %8s %6s %8s %6s %10s %10s\n", "list", "runners", "sent", "counted", "304",
	       "cpu ms", "wall ms");
	for (int64_t i = 0; i < rounds; i++) {
		struct github_runner_list l = {0};
		double c0, w0, c, w;

		github_get_stats(gh, &s0);
		c0 = cpu_ms();
		w0 = wall_ms();
		if (github_list_runners(gh, "bench", &l, &e) < 0)
			goto out;
		c = cpu_ms() - c0;
		w = wall_ms() - w0;
		github_get_stats(gh, &s1);
		printf("%5" PRId64 " %8zu %6" PRIu64 " %8" PRIu64 " %6" PRIu64 " %10.2f %10.2f\n",
		       i + 1, l.n, s1.requests_sent - s0.requests_sent,
		       s1.requests_counted - s0.requests_counted, s1.not_modified - s0.not_modified,
		       c, w);
		if ((int64_t)l.n != runners) {
			err_set(&e, -EPROTO, "listed %zu runners, expected %" PRId64, l.n, runners);
			github_runner_list_release(&l);
			goto out;
		}
		github_runner_list_release(&l);
		if (i == 0) {
			first_cpu = c;
			first_counted = s1.requests_counted - s0.requests_counted;
		} else {
			rest_cpu += c;
			rest_counted += s1.requests_counted - s0.requests_counted;
		}
	}
	github_get_stats(gh, &s1);
	printf("total: %" PRIu64 " requests sent, %" PRIu64
	       " counted against the rate limit, %" PRIu64 " answered 304; rate limit left %" PRId64
	       "/%" PRId64 "\n",
	       s1.requests_sent, s1.requests_counted, s1.not_modified, s1.rate_remaining,
	       s1.rate_limit);
	printf("first list: %" PRIu64 " counted (target %" PRIu64 "), %.2f ms cpu\n", first_counted,
	       pages, first_cpu);
	printf("unchanged lists: %" PRIu64 " counted over %" PRId64
	       " (target 0), %.2f ms cpu each\n",
	       rest_counted, rounds - 1, rest_cpu / (double)(rounds - 1));
	rc = first_counted == pages && rest_counted == 0 ? 0 : 1;
	printf("%s\n", rc == 0 ? "target met" : "target MISSED");
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
