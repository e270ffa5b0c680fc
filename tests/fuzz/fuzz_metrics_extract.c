/*
 * libFuzzer target: the extraction of a runner's metrics storage from
 * untrusted bytes. The input is up to four files separated by "\n--\n"
 * (installation start, installed, pre-job, post-job; an empty part is a
 * missing file), written into a storage folder and processed as the daemon
 * does (without a quarantine folder and keeping the storage, so each run
 * starts clean); the same bytes also go to each parser directly. Whatever
 * comes in: a clean refusal (-EBADMSG with a cause) or events that obey
 * the rules (runner_stop only after runner_start, durations never
 * negative, every string whole and within its bound), each of which fits
 * one JSON line.
 */
#include "util/common.h"
#include "util/fileutil.h"
#include "util/words.h"
#include "metrics/metrics_storage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char top[64], dir[96];

static void cleanup(void)
{
	rm_rf(top, NULL);
}

struct seen {
	bool start;
	size_t n;
};

static int emit(void *ctx, const struct metrics_event *ev, struct err *e)
{
	struct seen *s = ctx;
	char line[METRICS_EVENT_LINE_MAX];
	int n = metrics_event_json(ev, line, sizeof(line));

	if (n <= 0 || line[n - 1] != '\n' || memchr(line, '\n', (size_t)n - 1))
		abort();
	if (ev->idle < 0 || ev->duration < 0 || ev->job_duration < 0 ||
	    (ev->has_queue_duration && ev->queue_duration < 0))
		abort();
	if (strnlen(ev->workflow, sizeof(ev->workflow)) == sizeof(ev->workflow) ||
	    strnlen(ev->repo, sizeof(ev->repo)) == sizeof(ev->repo))
		abort();
	if (ev->kind == METRICS_EVENT_RUNNER_START)
		s->start = true;
	if (ev->kind == METRICS_EVENT_RUNNER_STOP && !s->start)
		abort();
	s->n++;
	return 0;
}

static void put(const char *name, const uint8_t *p, size_t n)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	if (n == 0)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	if (write(fd, p, n) != (ssize_t)n)
		abort();
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const files[] = {METRICS_INSTALLATION_STARTED, METRICS_RUNNER_INSTALLED,
	                                    METRICS_PRE_JOB, METRICS_POST_JOB};
	struct metrics_pre_job pre;
	struct metrics_post_job post;
	struct metrics_processed p;
	enum metrics_cause c = METRICS_CAUSE_NONE;
	struct seen s = {0};
	size_t at = 0;
	double t;
	int r;

	if (!dir[0]) {
		snprintf(top, sizeof(top), "/tmp/runnerd-fuzz-metrics.%d", (int)getpid());
		snprintf(dir, sizeof(dir), "%s/fz-000000000000", top);
		if (mkdir_p(dir, 0700, NULL) < 0)
			abort();
		atexit(cleanup);
	}
	(void)metrics_parse_timestamp((const char *)data, size, &t, &c, NULL);
	(void)metrics_parse_pre_job((const char *)data, size, &pre, &c, NULL);
	(void)metrics_parse_post_job((const char *)data, size, &post, &c, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		const uint8_t *sep = NULL;
		for (size_t k = at; k + 4 <= size; k++)
			if (memcmp(data + k, "\n--\n", 4) == 0) {
				sep = data + k;
				break;
			}
		size_t end = sep ? (size_t)(sep - data) : size;
		put(files[i], data + at, end - at);
		at = sep ? end + 4 : size;
	}
	struct metrics_process_opts o = {.flavor = "f", .keep = true, .emit = emit, .ctx = &s};
	r = metrics_storage_process(dir, "fz-000000000000", &o, &p, NULL);
	if (r == -EBADMSG && (s.n || p.bad.cause == METRICS_CAUSE_NONE))
		abort(); /* nothing issued from a bad storage, and always a cause */
	if (r != 0 && r != -EBADMSG)
		abort();
	if (p.issued != s.n)
		abort();
	return 0;
}
