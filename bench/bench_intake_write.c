/*
 * Benchmark (not a test): what the webhook intake's write costs the state
 * store, without HTTP: store_intake_write of N new queued deliveries (a
 * random delivery id each, as GitHub's are, and a new job), BATCH a
 * transaction as the group commit makes them under load, each durable
 * (synchronous=FULL: the commit's fdatasync) in a fresh state directory on
 * the disk of TMPDIR (default /var/tmp). Prints the process's CPU a
 * delivery (user and system: SQLite, the kernel's page cache, the
 * fdatasync's share) and the wall time a commit (its fdatasync's wait
 * included), so a change to the schema or the write path can be judged
 * apart from bench_intake's noisy end-to-end figures.
 *
 * usage: bench_intake_write [N] [BATCH]   (default 24000 deliveries, 6 a commit)
 */
#include "util/common.h"
#include "util/fileutil.h"
#include "util/strutil.h"
#include "store/store.h"

#include <sys/random.h>
#include <sys/resource.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* A delivery id as GitHub makes them: a random UUID, 36 characters. */
static void random_uuid(char *out, size_t cap)
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		abort();
	snprintf(out, cap, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	         b[13], b[14], b[15]);
}

static void queued(struct store_intake *in, int64_t job_id, int64_t at)
{
	memset(in, 0, sizeof(*in));
	random_uuid(in->delivery_id, sizeof(in->delivery_id));
	in->received_at = at;
	in->op = STORE_INTAKE_JOB_ADD;
	in->job.job_id = job_id;
	in->job.run_id = job_id / 4 + 1;
	snprintf(in->job.repo, sizeof(in->job.repo), "octo/hello");
	snprintf(in->job.labels, sizeof(in->job.labels), "[\"self-hosted\",\"small\"]");
	snprintf(in->job.flavor, sizeof(in->job.flavor), "small");
	snprintf(in->job.delivery_id, sizeof(in->job.delivery_id), "%s", in->delivery_id);
	in->job.received_at = at;
}

int main(int argc, char **argv)
{
	int64_t n = 24000, batch = 6;
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	char dir[PATH_MAX];
	struct store_intake *rows;
	struct store_intake **v;
	struct store *s = NULL;
	struct err e = {0};
	double t0, c0, wall, cpu;
	int64_t commits = 0;

	if ((argc > 1 && parse_int64(argv[1], 1, 10000000, &n) < 0) ||
	    (argc > 2 && parse_int64(argv[2], 1, 4096, &batch) < 0)) {
		fprintf(stderr, "usage: bench_intake_write [N] [BATCH 1-4096]\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s/runnerd-bench-write-XXXXXX", tmp);
	rows = calloc((size_t)batch, sizeof(*rows));
	v = calloc((size_t)batch, sizeof(*v));
	if (!rows || !v || !mkdtemp(dir)) {
		perror("bench_intake_write");
		return 1;
	}
	if (store_open(dir, &s, &e) < 0) {
		fprintf(stderr, "bench_intake_write: %s\n", e.msg);
		return 1;
	}
	t0 = now_us();
	c0 = cpu_us();
	for (int64_t done = 0; done < n; commits++) {
		int64_t k = n - done < batch ? n - done : batch;

		for (int64_t i = 0; i < k; i++) {
			queued(&rows[i], 7000000000 + done + i, 1700000000000 + done + i);
			v[i] = &rows[i];
		}
		if (store_intake_write(s, v, (size_t)k, &e) < 0) {
			fprintf(stderr, "bench_intake_write: %s\n", e.msg);
			return 1;
		}
		done += k;
	}
	wall = now_us() - t0;
	cpu = cpu_us() - c0;
	store_close(s);
	(void)rm_rf(dir, NULL);
	printf("  store_intake_write: %" PRId64 " new queued deliveries, %" PRId64
	       " a commit (%" PRId64 " commits, each fsynced), on %s\n",
	       n, batch, commits, tmp);
	printf("  CPU (user+system) %.1f us a delivery; a commit %.0f us of wall time; %.0f "
	       "deliveries/s from one writer\n",
	       cpu / (double)n, wall / (double)commits, 1e6 * (double)n / wall);
	free(rows);
	free(v);
	return 0;
}
