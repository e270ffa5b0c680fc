/*
 * Unit tests of src/metrics over the memory provider: what an instance's
 * metrics files and logs become on disk, the wait for post-job metrics of a
 * finished runner, the bounds on logs (bytes, time, a _diag a job filled),
 * what is refused, a collection that saved nothing, and the bounds on disk
 * (retention of logs and metrics, the total cap of saved logs, usage).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/clock.h"
#include "util/fileutil.h"
#include "metrics/metrics.h"
#include "provider/memory.h"

#include <pthread.h>

#define NAME "mt-0123456789ab"

struct fx {
	char dir[64];
	char state[128], logs[128];
	struct provider *p;
	atomic_bool cancel;
	struct metrics_opts o;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct instance in = {.state = CLOUD_ACTIVE};
	struct err e = {0};

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/runnerd-test-metrics.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
	snprintf(f->logs, sizeof(f->logs), "%s/logs", f->dir);
	assert_int_equal(memory_new("local", "mt", &f->p, &e), 0);
	snprintf(in.name, sizeof(in.name), NAME);
	snprintf(in.provider_id, sizeof(in.provider_id), "x");
	in.created_at = time(NULL);
	assert_int_equal(memory_add(f->p, &in), 0);
	atomic_init(&f->cancel, false);
	f->o = (struct metrics_opts){.manager = "mt",
	                             .state_dir = f->state,
	                             .log_dir = f->logs,
	                             .log_retention = 3600,
	                             .cancel = &f->cancel};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	provider_free(f->p);
	rm_rf(f->dir, NULL);
	free(f);
	return 0;
}

static void put(struct fx *f, const char *path, const char *data)
{
	assert_int_equal(memory_put_file(f->p, NAME, path, data, strlen(data)), 0);
}

/* What the runner's script wrote before any job: its two timestamps. */
static void put_installed(struct fx *f)
{
	put(f, METRICS_DIR "/" METRICS_INSTALLATION_STARTED, "1700000000");
	put(f, METRICS_DIR "/" METRICS_RUNNER_INSTALLED, "1700000010");
}

/* The file under dir/rel holds data, mode 0600. */
static void assert_saved(const char *dir, const char *rel, const char *data)
{
	char path[512];
	struct buf b = BUF_INIT(1 << 20);
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	assert_int_equal(file_read(path, b.max, true, &b, NULL), 0);
	assert_string_equal(buf_str(&b), data);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	buf_release(&b);
}

static bool exists(const char *dir, const char *rel)
{
	char path[512];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	return lstat(path, &st) == 0;
}

/* What the instance wrote is saved, what it did not is no error. */
static void test_extract_saves_what_is_there(void **state)
{
	struct fx *f = *state;
	struct metrics_extracted x = {0};
	char dir[256];
	struct stat st;
	struct err e = {0};

	put(f, METRICS_DIR "/" METRICS_PRE_JOB, "{\"a\":1}");
	put(f, METRICS_DIR "/" METRICS_RUNNER_INSTALLED, "1700000000");
	put(f, METRICS_DIR "/" METRICS_INSTALLATION_STARTED, "1699999990");
	assert_int_equal(metrics_extract(&f->o, f->p, NAME, false, &x, &e), 0);
	assert_int_equal(x.saved, (1u << METRICS_FILE_PRE_JOB) |
	                                  (1u << METRICS_FILE_RUNNER_INSTALLED) |
	                                  (1u << METRICS_FILE_INSTALLATION_STARTED));
	assert_int_equal(x.bytes, strlen("{\"a\":1}") + 2 * strlen("1700000000"));
	assert_int_equal(x.waited_ms, 0);
	assert_int_equal(x.looked_again, 0);
	snprintf(dir, sizeof(dir), "%s/metrics/" NAME, f->state);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_saved(dir, METRICS_PRE_JOB, "{\"a\":1}");
	assert_saved(dir, METRICS_RUNNER_INSTALLED, "1700000000");
	assert_false(exists(dir, METRICS_POST_JOB));
	assert_string_equal(metrics_file_name(METRICS_FILE_POST_JOB), METRICS_POST_JOB);
	assert_string_equal(metrics_file_name(METRICS_FILE_COUNT), "invalid");
}

struct late_file {
	struct fx *f;
	int64_t after_ms;
};

static void *put_late(void *arg)
{
	struct late_file *l = arg;
	clock_sleep_ms(l->after_ms);
	put(l->f, METRICS_DIR "/" METRICS_POST_JOB, "{\"status\":\"normal\"}");
	return NULL;
}

/* A finished runner's post-job file comes a moment after it left GitHub: waited for. */
static void test_extract_waits_for_post_job(void **state)
{
	struct fx *f = *state;
	struct metrics_extracted x = {0};
	struct late_file l = {f, 300};
	char dir[256];
	pthread_t th;

	put_installed(f);
	put(f, METRICS_DIR "/" METRICS_PRE_JOB, "{}");
	f->o.post_job_wait_ms = 5000;
	assert_int_equal(pthread_create(&th, NULL, put_late, &l), 0);
	assert_int_equal(metrics_extract(&f->o, f->p, NAME, true, &x, NULL), 0);
	pthread_join(th, NULL);
	assert_true(x.saved & (1u << METRICS_FILE_POST_JOB));
	assert_in_range(x.waited_ms, 250, 2000);
	snprintf(dir, sizeof(dir), "%s/metrics/" NAME, f->state);
	assert_saved(dir, METRICS_POST_JOB, "{\"status\":\"normal\"}");
}

/* The wait is bounded, needs a started job and a running instance, and ends on cancel. */
static void test_extract_post_job_wait_is_bounded(void **state)
{
	struct fx *f = *state;
	struct metrics_extracted x = {0};
	int64_t t0;

	f->o.post_job_wait_ms = 600;
	/* no pre-job file: the job never started, nothing to wait for */
	assert_int_equal(metrics_extract(&f->o, f->p, NAME, true, &x, NULL), 0);
	assert_int_equal(x.waited_ms, 0);
	put_installed(f);
	put(f, METRICS_DIR "/" METRICS_PRE_JOB, "{}");
	t0 = clock_mono_ms();
	assert_int_equal(metrics_extract(&f->o, f->p, NAME, true, &x, NULL), 0);
	assert_int_equal(x.saved, (1u << METRICS_FILE_PRE_JOB) |
	                                  (1u << METRICS_FILE_RUNNER_INSTALLED) |
	                                  (1u << METRICS_FILE_INSTALLATION_STARTED));
	assert_in_range(x.waited_ms, 550, 1500);
	assert_in_range(clock_mono_ms() - t0, 550, 1500);
	/* not a finished runner: no wait */
	assert_int_equal(metrics_extract(&f->o, f->p, NAME, false, &x, NULL), 0);
	assert_int_equal(x.waited_ms, 0);
	/* the instance stopped: nothing will write it */
	assert_int_equal(memory_set_state(f->p, NAME, CLOUD_STOPPED), 0);
	assert_int_equal(metrics_extract(&f->o, f->p, NAME, true, &x, NULL), 0);
	assert_in_range(x.waited_ms, 0, 200);
	/* cancelled: no wait */
	assert_int_equal(memory_set_state(f->p, NAME, CLOUD_ACTIVE), 0);
	atomic_store(&f->cancel, true);
	f->o.post_job_wait_ms = 5000;
	assert_int_equal(metrics_extract(&f->o, f->p, NAME, true, &x, NULL), 0);
	assert_in_range(x.waited_ms, 0, 200);
}

struct late_put {
	struct fx *f;
	const char *path, *data;
	int64_t after_ms;
};

static void *put_later(void *arg)
{
	struct late_put *l = arg;
	clock_sleep_ms(l->after_ms);
	put(l->f, l->path, l->data);
	return NULL;
}

/*
 * A file the others say was written, found missing (an instance powering
 * off can answer so), is looked for again a second later, up to 3 times;
 * nothing is looked for again when the files agree.
 */
static void test_extract_looks_again_for_an_expected_file(void **state)
{
	struct fx *f = *state;
	struct metrics_extracted x = {0};
	struct late_put l = {f, METRICS_DIR "/" METRICS_INSTALLATION_STARTED, "1700000000", 1200};
	char dir[256];
	pthread_t th;
	int64_t t0;

	/* runner-installed there, installation-started not yet: found on the second look */
	put(f, METRICS_DIR "/" METRICS_RUNNER_INSTALLED, "1700000010");
	assert_int_equal(pthread_create(&th, NULL, put_later, &l), 0);
	t0 = clock_mono_ms();
	assert_int_equal(metrics_extract(&f->o, f->p, NAME, false, &x, NULL), 0);
	pthread_join(th, NULL);
	assert_int_equal(x.saved, (1u << METRICS_FILE_RUNNER_INSTALLED) |
	                                  (1u << METRICS_FILE_INSTALLATION_STARTED));
	assert_int_equal(x.looked_again, 1u << METRICS_FILE_INSTALLATION_STARTED);
	assert_in_range(clock_mono_ms() - t0, 1900, 3500);
	snprintf(dir, sizeof(dir), "%s/metrics/" NAME, f->state);
	assert_saved(dir, METRICS_INSTALLATION_STARTED, "1700000000");

	/* not finished: no pre-job file expected, no second look */
	t0 = clock_mono_ms();
	assert_int_equal(metrics_extract(&f->o, f->p, NAME, false, &x, NULL), 0);
	assert_int_equal(x.looked_again, 0);
	assert_in_range(clock_mono_ms() - t0, 0, 500);

	/* a finished runner without its pre-job file: 3 more looks, then none */
	t0 = clock_mono_ms();
	assert_int_equal(metrics_extract(&f->o, f->p, NAME, true, &x, NULL), 0);
	assert_int_equal(x.looked_again, 0);
	assert_false(x.saved & (1u << METRICS_FILE_PRE_JOB));
	assert_in_range(clock_mono_ms() - t0, 2900, 5000);

	/* cancelled: no second look */
	atomic_store(&f->cancel, true);
	t0 = clock_mono_ms();
	assert_int_equal(metrics_extract(&f->o, f->p, NAME, true, &x, NULL), 0);
	assert_in_range(clock_mono_ms() - t0, 0, 500);
}

/* Errors are returned (the first one, naming its file); the other files are still saved. */
static void test_extract_errors(void **state)
{
	struct fx *f = *state;
	struct metrics_extracted x = {.saved = 99};
	struct provider_traits t = {0};
	char dir[256];
	struct err e = {0};

	/* not ours: refused before anything is asked or written */
	assert_int_equal(metrics_extract(&f->o, f->p, "mt-east-0123456789ab", false, &x, &e),
	                 -EINVAL);
	assert_int_equal(memory_calls(f->p, MEMORY_OP_PULL_FILE), 0);
	assert_false(exists(f->state, "metrics"));
	put(f, METRICS_DIR "/" METRICS_PRE_JOB, "{}");
	put(f, METRICS_DIR "/" METRICS_RUNNER_INSTALLED, "1");
	put(f, METRICS_DIR "/" METRICS_INSTALLATION_STARTED, "1");
	/* the pre-job file fails to come: the error says so, the timestamp is saved */
	assert_int_equal(memory_fail(f->p, MEMORY_OP_PULL_FILE, -EIO, 1), 0);
	assert_int_equal(metrics_extract(&f->o, f->p, NAME, false, &x, &e), -EIO);
	assert_non_null(strstr(e.msg, METRICS_PRE_JOB));
	assert_int_equal(x.saved, 99); /* untouched */
	snprintf(dir, sizeof(dir), "%s/metrics/" NAME, f->state);
	assert_saved(dir, METRICS_RUNNER_INSTALLED, "1");
	/* a file over the bound */
	char *big = calloc(1, METRICS_FILE_MAX + 2);
	assert_non_null(big);
	memset(big, 'x', METRICS_FILE_MAX + 1);
	put(f, METRICS_DIR "/" METRICS_POST_JOB, big);
	free(big);
	assert_int_equal(metrics_extract(&f->o, f->p, NAME, false, &x, &e), -E2BIG);
	/* a provider that cannot read files */
	assert_int_equal(memory_set_traits(f->p, &t), 0);
	assert_int_equal(metrics_extract(&f->o, f->p, NAME, false, &x, &e), -ENOTSUP);
}

/* Logs: saved, 0600, bounded in bytes; missing files are no error. */
static void test_save_logs_bytes(void **state)
{
	struct fx *f = *state;
	struct metrics_logs l = {0};
	char dir[256];
	char hundred[101];

	memset(hundred, 'a', 100);
	hundred[100] = '\0';
	put(f, "startup.log", hundred);
	put(f, "/var/log/syslog", hundred);
	snprintf(dir, sizeof(dir), "%s/" NAME, f->logs);
	assert_int_equal(metrics_save_logs(&f->o, f->p, NAME, &l, NULL), 0);
	assert_int_equal(l.files, 2);
	assert_int_equal(l.bytes, 200);
	assert_int_equal(l.unreadable, 0); /* no cloud-init log: not an error */
	assert_int_equal(l.found, 2);
	assert_false(l.over_bytes || l.out_of_time || l.cancelled);
	assert_saved(dir, "startup.log", hundred);
	assert_saved(dir, "syslog", hundred);
	/* 150 bytes in all: the syslog does not fit in the 50 left */
	rm_rf(dir, NULL);
	f->o.log_bytes_max = 150;
	assert_int_equal(metrics_save_logs(&f->o, f->p, NAME, &l, NULL), 0);
	assert_int_equal(l.files, 1);
	assert_int_equal(l.over_bytes, 1);
	assert_int_equal(l.unreadable, 0);
	assert_false(exists(dir, "syslog"));
	/* 100: nothing is left for the next file */
	f->o.log_bytes_max = 100;
	assert_int_equal(metrics_save_logs(&f->o, f->p, NAME, &l, NULL), 0);
	assert_int_equal(l.files, 1);
	assert_true(l.over_bytes > 0);
}

/* Logs: bounded in time (on the monotonic clock) and by the cancel flag. */
static void test_save_logs_time(void **state)
{
	struct fx *f = *state;
	struct metrics_logs l = {0};
	struct err e = {0};
	int64_t t0 = clock_mono_ms();

	put(f, "startup.log", "s");
	put(f, "/var/log/cloud-init-output.log", "c");
	put(f, "/var/log/syslog", "y");
	assert_int_equal(memory_set_latency(f->p, MEMORY_OP_PULL_FILE, 300 * 1000), 0);
	f->o.log_budget_ms = 200;
	assert_int_equal(metrics_save_logs(&f->o, f->p, NAME, &l, &e), 0);
	assert_int_equal(l.files, 1);
	assert_true(l.out_of_time);
	assert_int_equal(l.late, 4); /* two logs and two _diag folders not looked at */
	assert_in_range(clock_mono_ms() - t0, 250, 1000);
	/* cancelled before anything: nothing saved is a failure, not "saved" */
	atomic_store(&f->cancel, true);
	l.files = 99;
	assert_int_equal(metrics_save_logs(&f->o, f->p, NAME, &l, &e), -ECANCELED);
	assert_non_null(strstr(e.msg, "nothing saved"));
	assert_int_equal(l.files, 99); /* untouched */
	/* not ours */
	assert_int_equal(metrics_save_logs(&f->o, f->p, "other-0123456789ab", &l, &e), -EINVAL);
}

#define DIAG "runner/_diag/"

/* A file of size bytes at path, changed at t. */
static void put_sized(struct fx *f, const char *path, size_t size, time_t t)
{
	char *data = malloc(size + 1);

	assert_non_null(data);
	memset(data, 'd', size);
	assert_int_equal(memory_put_file(f->p, NAME, path, data, size), 0);
	assert_int_equal(memory_set_file_time(f->p, NAME, path, t), 0);
	free(data);
}

/*
 * A job that fills _diag with 1,500 files hides nothing: the runner's own
 * logs and then the newest files are saved up to the caps, what was left
 * out is counted by reason, and the collection does not fail.
 */
static void test_save_logs_diag_many(void **state)
{
	struct fx *f = *state;
	struct metrics_logs l = {0};
	time_t t0 = time(NULL) - 100000;
	char path[256], dir[256], what[512], runner_log[101] = {0};
	struct err e = {0};

	put(f, "startup.log", "booted");
	put_sized(f, DIAG "Runner_20240101-000000-utc.log", 100, t0 - 5000);
	put_sized(f, DIAG "Worker_20240101-000001-utc.log", 100, t0 - 5000);
	for (int i = 0; i < 1500; i++) {
		snprintf(path, sizeof(path), DIAG "junk-%04d.log", i);
		put_sized(f, path, 10, t0 + i);
	}
	put_sized(f, DIAG "zz-big.log", 2000, t0 + 9000); /* the newest: over the file cap */
	put_sized(f, DIAG "zz-empty.log", 0, t0 + 9000);  /* nothing to save */
	f->o.log_file_max = 1000;

	assert_int_equal(metrics_save_logs(&f->o, f->p, NAME, &l, &e), 0);
	snprintf(dir, sizeof(dir), "%s/" NAME "/_diag", f->logs);
	assert_int_equal(l.files, 1 + METRICS_LOG_DIAG_FILES_MAX);
	assert_int_equal(l.found, 1 + 1504);
	memset(runner_log, 'd', 100);
	assert_saved(dir, "Runner_20240101-000000-utc.log", runner_log);
	assert_true(exists(dir, "Worker_20240101-000001-utc.log"));
	/* then the 62 newest that fit */
	for (int i = 1499; i >= 1438; i--) {
		snprintf(path, sizeof(path), "junk-%04d.log", i);
		assert_true(exists(dir, path));
	}
	assert_false(exists(dir, "junk-1437.log"));
	assert_false(exists(dir, "zz-big.log"));
	assert_false(exists(dir, "zz-empty.log"));
	/* what was left out, by reason: only the 256 most useful were listed */
	assert_int_equal(l.cut, 1504 - 4 * METRICS_LOG_DIAG_FILES_MAX);
	assert_int_equal(l.too_big, 1);
	assert_int_equal(l.empty, 1);
	assert_int_equal(l.over_files,
	                 4 * METRICS_LOG_DIAG_FILES_MAX - 2 - METRICS_LOG_DIAG_FILES_MAX);
	assert_int_equal(l.unreadable + l.unlisted + l.late, 0);
	assert_true(metrics_logs_describe(&f->o, &l, what, sizeof(what)) > 0);
	assert_non_null(strstr(what, "1248 _diag files left out by the listing"));
	assert_non_null(strstr(what, "190 past the 64-file cap"));
	assert_non_null(strstr(what, "1 over 1000B each"));
	assert_non_null(strstr(what, "1 empty"));
	/* the byte cap: newest first, each that still fits */
	rm_rf(f->logs, NULL);
	f->o.log_bytes_max = 6 + 100 + 100 + 35;
	assert_int_equal(metrics_save_logs(&f->o, f->p, NAME, &l, &e), 0);
	assert_int_equal(l.files, 1 + 2 + 3);
	assert_true(exists(dir, "junk-1497.log"));
	assert_false(exists(dir, "junk-1496.log"));
	assert_true(l.over_bytes > 0);
}

/* A collection that saved nothing of what was there is a failure, never "saved". */
static void test_save_logs_nothing_saved(void **state)
{
	struct fx *f = *state;
	struct metrics_logs l = {.files = 7};
	struct err e = {0};
	char path[64];

	/* no logs at all: nothing to save is no failure */
	assert_int_equal(metrics_save_logs(&f->o, f->p, NAME, &l, &e), 0);
	assert_int_equal(l.files, 0);
	assert_int_equal(l.found, 0);
	/* 1,500 files, every one over the file cap */
	for (int i = 0; i < 1500; i++) {
		snprintf(path, sizeof(path), DIAG "junk-%04d.log", i);
		put_sized(f, path, 200, time(NULL));
	}
	f->o.log_file_max = 100;
	l.files = 7;
	assert_int_equal(metrics_save_logs(&f->o, f->p, NAME, &l, &e), -E2BIG);
	assert_non_null(strstr(e.msg, "nothing saved of 1500 files"));
	assert_non_null(strstr(e.msg, "over 100B each"));
	assert_int_equal(l.files, 7); /* untouched */
	assert_false(exists(f->logs, NAME));
	/* the listing fails: nothing saved, the provider's error */
	f->o.log_file_max = 0;
	assert_int_equal(memory_fail(f->p, MEMORY_OP_LIST_FILES, -EIO, -1), 0);
	assert_int_equal(metrics_save_logs(&f->o, f->p, NAME, &l, &e), -EIO);
	assert_non_null(strstr(e.msg, "nothing saved"));
	assert_non_null(strstr(e.msg, "_diag folders not listed"));
	/* ... but with the startup log saved it is a success that says what is missing */
	put(f, "startup.log", "booted");
	assert_int_equal(metrics_save_logs(&f->o, f->p, NAME, &l, &e), 0);
	assert_int_equal(l.files, 1);
	assert_int_equal(l.unlisted, 2);
	assert_non_null(strstr(l.why, "injected failure"));
}

/* mkdir dir/name (a symlink to target when given), mtime age_s seconds ago. */
static void put_aged(const char *dir, const char *name, const char *target, int64_t age_s)
{
	char path[512];
	struct timespec ts[2];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (target)
		assert_int_equal(symlink(target, path), 0);
	else
		assert_int_equal(mkdir(path, 0700), 0);
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - age_s;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* Retention: old folders of owned names go; nothing else does. */
static void test_prune_logs(void **state)
{
	struct fx *f = *state;
	struct err e = {0};
	char outside[256];

	assert_int_equal(metrics_prune_logs(&f->o, time(NULL), &e), 0); /* no log_dir yet */
	assert_int_equal(mkdir(f->logs, 0700), 0);
	snprintf(outside, sizeof(outside), "%s/outside", f->dir);
	put_aged(f->dir, "outside", NULL, 7200);
	put_aged(f->logs, "mt-0123456789ab", NULL, 7200);
	put_aged(f->logs, "mt-aaaaaaaaaaaa", NULL, 60);
	put_aged(f->logs, "mt-east-0123456789ab", NULL, 7200);
	put_aged(f->logs, "keep", NULL, 7200);
	put_aged(f->logs, "mt-bbbbbbbbbbbb", outside, 7200);
	assert_int_equal(metrics_prune_logs(&f->o, time(NULL), &e), 1);
	assert_false(exists(f->logs, "mt-0123456789ab"));
	assert_true(exists(f->logs, "mt-aaaaaaaaaaaa"));
	assert_true(exists(f->logs, "mt-east-0123456789ab"));
	assert_true(exists(f->logs, "keep"));
	assert_true(exists(f->logs, "mt-bbbbbbbbbbbb"));
	assert_true(exists(f->dir, "outside"));
}

/* dir/name/file of size bytes, the folder changed age_s seconds ago. */
static void put_folder(const char *dir, const char *name, size_t size, int64_t age_s)
{
	char path[512], file[600];
	char *data = calloc(1, size + 1);
	struct timespec ts[2] = {{.tv_sec = time(NULL) - age_s}, {.tv_sec = time(NULL) - age_s}};

	assert_non_null(data);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(file, sizeof(file), "%s/f", path);
	assert_int_equal(mkdir_p(path, 0700, NULL), 0);
	assert_int_equal(file_write_atomic(file, data, size, 0600, NULL), 0);
	assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
	free(data);
}

/* Metrics folders: old ones of owned names go at their retention, or at once when processed. */
static void test_prune_storage(void **state)
{
	struct fx *f = *state;
	struct metrics_disk d = {0};
	struct err e = {0};
	char metrics[256], outside[256];

	snprintf(metrics, sizeof(metrics), "%s/metrics", f->state);
	snprintf(outside, sizeof(outside), "%s/outside", f->dir);
	f->o.metrics_retention = 3600;
	assert_int_equal(metrics_prune_storage(&f->o, time(NULL), &e), 0); /* none yet */
	put_folder(metrics, "mt-0123456789ab", 10, 7200);                  /* owned, old: removed */
	put_folder(metrics, "mt-aaaaaaaaaaaa", 20, 60);                    /* owned, recent: kept */
	put_folder(metrics, "mt-east-0123456789ab", 40, 7200);             /* another manager's */
	put_folder(f->dir, "outside", 80, 7200);
	put_aged(metrics, "mt-bbbbbbbbbbbb", outside, 7200); /* a symlink */
	assert_int_equal(metrics_disk_usage(&f->o, &d, &e), 0);
	assert_int_equal(d.metrics_dirs, 2);
	assert_int_equal(d.metrics_bytes, 30);
	assert_int_equal(metrics_prune_storage(&f->o, time(NULL), &e), 1);
	assert_false(exists(metrics, "mt-0123456789ab"));
	assert_true(exists(metrics, "mt-aaaaaaaaaaaa"));
	assert_true(exists(metrics, "mt-east-0123456789ab"));
	assert_true(exists(metrics, "mt-bbbbbbbbbbbb"));
	assert_true(exists(outside, "f"));
	/* processed: removed now, whatever its age; twice is no error */
	assert_int_equal(metrics_storage_remove(&f->o, "mt-aaaaaaaaaaaa", &e), 0);
	assert_false(exists(metrics, "mt-aaaaaaaaaaaa"));
	assert_int_equal(metrics_storage_remove(&f->o, "mt-aaaaaaaaaaaa", &e), 0);
	assert_int_equal(metrics_storage_remove(&f->o, "mt-east-0123456789ab", &e), -EINVAL);
	assert_int_equal(metrics_storage_remove(&f->o, "../outside", &e), -EINVAL);
	assert_true(exists(metrics, "mt-east-0123456789ab"));
	assert_int_equal(metrics_disk_usage(&f->o, &d, &e), 0);
	assert_int_equal(d.metrics_dirs, 0);
	assert_int_equal(d.metrics_bytes, 0);
}

/* An archive dir/name, changed age_s seconds ago. */
static void put_archive(const char *dir, const char *name, int64_t age_s)
{
	char path[512];
	struct timespec ts[2] = {{.tv_sec = time(NULL) - age_s}, {.tv_sec = time(NULL) - age_s}};

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(file_write_atomic(path, "gz", 2, 0600, NULL), 0);
	assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* Quarantined archives of owned names go after the metrics retention; nothing else does. */
static void test_prune_quarantine(void **state)
{
	struct fx *f = *state;
	struct err e = {0};
	char q[256];

	snprintf(q, sizeof(q), "%s/metrics-quarantine", f->state);
	f->o.metrics_retention = 3600;
	assert_int_equal(metrics_prune_quarantine(&f->o, time(NULL), &e), 0); /* no folder yet */
	assert_int_equal(mkdir_p(q, 0700, NULL), 0);
	put_archive(q, "mt-0123456789ab.tar.gz", 7200);      /* owned, old: removed */
	put_archive(q, "mt-aaaaaaaaaaaa.tar.gz", 60);        /* owned, recent: kept */
	put_archive(q, "mt-east-0123456789ab.tar.gz", 7200); /* another manager's */
	put_archive(q, "mt-0123456789ab.tar", 7200);         /* not an archive of ours */
	put_archive(q, ".tar.gz", 7200);
	put_aged(q, "mt-bbbbbbbbbbbb.tar.gz", "x", 7200);  /* a symlink */
	put_aged(q, "mt-cccccccccccc.tar.gz", NULL, 7200); /* a folder */
	assert_int_equal(metrics_prune_quarantine(&f->o, time(NULL), &e), 1);
	assert_false(exists(q, "mt-0123456789ab.tar.gz"));
	assert_true(exists(q, "mt-aaaaaaaaaaaa.tar.gz"));
	assert_true(exists(q, "mt-east-0123456789ab.tar.gz"));
	assert_true(exists(q, "mt-0123456789ab.tar"));
	assert_true(exists(q, ".tar.gz"));
	assert_true(exists(q, "mt-cccccccccccc.tar.gz"));
	assert_int_equal(metrics_prune_quarantine(&f->o, time(NULL) + 7200, &e), 1); /* later */
	assert_false(exists(q, "mt-aaaaaaaaaaaa.tar.gz"));
}

/* Saved logs past their total cap: whole folders go, oldest first, until the rest fits. */
static void test_cap_logs(void **state)
{
	struct fx *f = *state;
	struct metrics_disk d = {0};
	struct err e = {0};

	assert_int_equal(metrics_cap_logs(&f->o, &e), 0); /* no cap */
	f->o.logs_max_bytes = 1000;
	assert_int_equal(metrics_cap_logs(&f->o, &e), 0);  /* no log_dir yet */
	put_folder(f->logs, "mt-000000000001", 400, 4000); /* the oldest */
	put_folder(f->logs, "mt-000000000002", 400, 3000);
	put_folder(f->logs, "mt-000000000003", 400, 2000);
	put_folder(f->logs, "mt-000000000004", 100, 1000); /* the newest */
	put_folder(f->logs, "other-000000000001", 5000, 9000);
	assert_int_equal(metrics_disk_usage(&f->o, &d, &e), 0);
	assert_int_equal(d.logs_dirs, 4);
	assert_int_equal(d.logs_bytes, 1300);
	/* 1300 > 1000: the oldest goes, 900 fit */
	assert_int_equal(metrics_cap_logs(&f->o, &e), 1);
	assert_false(exists(f->logs, "mt-000000000001"));
	assert_true(exists(f->logs, "mt-000000000002"));
	assert_true(exists(f->logs, "other-000000000001"));
	f->o.logs_max_bytes = 499;
	assert_int_equal(metrics_cap_logs(&f->o, &e), 2);
	assert_false(exists(f->logs, "mt-000000000002"));
	assert_false(exists(f->logs, "mt-000000000003"));
	assert_true(exists(f->logs, "mt-000000000004"));
	assert_int_equal(metrics_cap_logs(&f->o, &e), 0);
	assert_int_equal(metrics_disk_usage(&f->o, &d, &e), 0);
	assert_int_equal(d.logs_dirs, 1);
	assert_int_equal(d.logs_bytes, 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_extract_saves_what_is_there, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_extract_waits_for_post_job, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_extract_post_job_wait_is_bounded, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_extract_looks_again_for_an_expected_file,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_extract_errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_save_logs_bytes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_save_logs_time, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_save_logs_diag_many, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_save_logs_nothing_saved, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_prune_logs, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_prune_storage, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_prune_quarantine, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cap_logs, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
