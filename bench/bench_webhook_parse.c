/*
 * A benchmark, not a test: the CPU of reading one delivery's body, the
 * intake's one-pass scan (webhook_parse) against the jansson tree it
 * replaced (tests/lib/webhook_reference.c), on the same body, in one run.
 *
 *     bench_webhook_parse FILE [N]    FILE: a body (bench_intake.py writes
 *                                     GitHub's queued example); N parses each
 */
#include "util/common.h"
#include "util/strutil.h"
#include "webhook_reference.h"

#include <time.h>

typedef int (*parse_fn)(const struct webhook_headers *, const char *, size_t,
                        struct webhook_delivery *, struct err *);

/* CPU microseconds per parse, the best of 3 rounds of n. */
static double per_parse(parse_fn fn, const char *body, size_t len, int n)
{
	struct webhook_headers h = {.event = "workflow_job", .delivery = "bench"};
	double best = 0;

	for (int round = 0; round < 3; round++) {
		struct timespec a, b;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
		for (int i = 0; i < n; i++) {
			struct webhook_delivery d;
			struct err e = {0};
			if (fn(&h, body, len, &d, &e) < 0) {
				fprintf(stderr, "bench_webhook_parse: %s\n", e.msg);
				exit(1);
			}
			webhook_delivery_release(&d);
		}
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
		double us = ((double)(b.tv_sec - a.tv_sec) * 1e6 +
		             (double)(b.tv_nsec - a.tv_nsec) / 1e3) /
		            n;
		if (round == 0 || us < best)
			best = us;
	}
	return best;
}

int main(int argc, char **argv)
{
	static char body[1 << 20];
	FILE *f;
	size_t len;
	int64_t n = 2000;
	double scan, tree;

	if (argc < 2 || (argc > 2 && parse_int64(argv[2], 1, 10000000, &n) < 0)) {
		fprintf(stderr, "usage: bench_webhook_parse FILE [N]\n");
		return 2;
	}
	f = fopen(argv[1], "r");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	len = fread(body, 1, sizeof(body), f);
	fclose(f);
	scan = per_parse(webhook_parse, body, len, (int)n);
	tree = per_parse(webhook_parse_reference, body, len, (int)n);
	printf("  parse of a %zu-byte workflow_job body (CPU, best of 3 x %d): one-pass scan %.1f "
	       "us, "
	       "jansson tree %.1f us (ratio %.2f)\n",
	       len, (int)n, scan, tree, scan / tree);
	return 0;
}
