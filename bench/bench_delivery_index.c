/*
 * Benchmark (not a test): the deliveries' index in memory
 * (store/delivery_index) as it fills, one add at a time as the intake's
 * committer makes them. It holds its mutex for each add, and every
 * duplicate check of the HTTP loops waits for that mutex: so the figure
 * that matters is the slowest single add, which was the table's growth
 * (all entries moved at once: 35 ms at 98,000 entries, 280 ms at 786,000
 * on the 2-vCPU VM). Prints the slowest add and where it came, the mean,
 * a lookup's mean at the end, and what a prune of the older half costs
 * (the hourly prune of deliveries older than three days; it sweeps and
 * rebuilt the whole table under the mutex before: 136 ms at a million).
 *
 * usage: bench_delivery_index [N]   (default 1,000,000 ids: about 64 MB)
 */
#include "util/common.h"
#include "store/delivery_index.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
	struct delivery_index *x = delivery_index_new();
	struct delivery_key *keys;
	double worst = 0, total = 0, t0;
	long worst_at = 0;
	char id[64];

	if (n <= 0 || !x) {
		fprintf(stderr, "usage: bench_delivery_index [N > 0]\n");
		return 2;
	}
	keys = malloc((size_t)n * sizeof(*keys));
	if (!keys)
		return 1;
	/* the keys first: hashing is the HTTP loop's part, not the add's */
	for (long i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%08lx-cc78-11e3-81ab-4c9367dc0958", i);
		delivery_key_of(id, &keys[i]);
	}
	for (long i = 0; i < n; i++) {
		double took;

		t0 = now_us();
		if (delivery_index_add(x, &keys[i], i, i + 1, false) != 0) {
			fprintf(stderr, "bench_delivery_index: add %ld failed\n", i);
			return 1;
		}
		took = now_us() - t0;
		total += took;
		if (took > worst) {
			worst = took;
			worst_at = i + 1;
		}
	}
	t0 = now_us();
	for (long i = 0; i < n; i++)
		if (!delivery_index_find(x, &keys[i], false, NULL))
			return 1;
	printf("  %ld ids added one at a time: the slowest add %.0f us (the %ld-th), %.2f us on "
	       "average; a lookup %.2f us on average\n",
	       n, worst, worst_at, total / (double)n, (now_us() - t0) / (double)n);
	/* the prune: the older half, as the table's delete hands their ids back */
	int64_t *rows = malloc((size_t)n * sizeof(*rows));

	if (!rows)
		return 1;
	for (long i = 0; i < n; i++)
		rows[i] = i + 1;
	t0 = now_us();
	if (delivery_index_remove_rows(x, keys, rows, (size_t)(n / 2)) != (size_t)(n / 2))
		return 1;
	printf("  a prune of the older half: %.0f us in all, the mutex held for 256 removals at a "
	       "time (about %.0f us each)\n",
	       now_us() - t0, (now_us() - t0) / ((double)(n / 2) / 256));
	free(rows);
	delivery_index_free(x);
	free(keys);
	return 0;
}
