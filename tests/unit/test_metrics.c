/*
 * Unit tests of src/metrics over the memory provider: what an instance's
 * metrics files and logs become on disk, the wait for post-job metrics of a
 * finished runner, the bounds on logs (bytes, time), what is refused, and
 * log retention.
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
	assert_int_equal(metrics_extract(&f->o, f->p, NAME, false, &x, &e), 0);
	assert_int_equal(x.saved,
	                 (1u << METRICS_FILE_PRE_JOB) | (1u << METRICS_FILE_RUNNER_INSTALLED));
	assert_int_equal(x.bytes, strlen("{\"a\":1}") + strlen("1700000000"));
	assert_int_equal(x.waited_ms, 0);
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
	put(f, METRICS_DIR "/" METRICS_PRE_JOB, "{}");
	t0 = clock_mono_ms();
	assert_int_equal(metrics_extract(&f->o, f->p, NAME, true, &x, NULL), 0);
	assert_int_equal(x.saved, 1u << METRICS_FILE_PRE_JOB);
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
	assert_false(l.out_of_bytes || l.out_of_time || l.cancelled);
	assert_saved(dir, "startup.log", hundred);
	assert_saved(dir, "syslog", hundred);
	/* 150 bytes in all: the syslog does not fit in the 50 left */
	rm_rf(dir, NULL);
	f->o.log_bytes_max = 150;
	assert_int_equal(metrics_save_logs(&f->o, f->p, NAME, &l, NULL), 0);
	assert_int_equal(l.files, 1);
	assert_int_equal(l.unreadable, 1);
	assert_false(exists(dir, "syslog"));
	/* 100: nothing is left for the next file */
	f->o.log_bytes_max = 100;
	assert_int_equal(metrics_save_logs(&f->o, f->p, NAME, &l, NULL), 0);
	assert_int_equal(l.files, 1);
	assert_true(l.out_of_bytes);
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
	assert_in_range(clock_mono_ms() - t0, 250, 1000);
	atomic_store(&f->cancel, true);
	assert_int_equal(metrics_save_logs(&f->o, f->p, NAME, &l, &e), 0);
	assert_int_equal(l.files, 0);
	assert_true(l.cancelled);
	/* not ours */
	assert_int_equal(metrics_save_logs(&f->o, f->p, "other-0123456789ab", &l, &e), -EINVAL);
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

/* An empty file at dir/rel, its folders made. */
static void plant(const char *dir, const char *rel)
{
	char path[512], *slash;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	slash = strrchr(path, '/');
	*slash = '\0';
	assert_int_equal(mkdir_p(path, 0700, NULL), 0);
	*slash = '/';
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
}

/*
 * A runnerd killed while it saved metrics or logs leaves the temporaries
 * of what it was writing (regression: they stayed for ever); they go, in
 * the folders of owned names only, and nothing else does.
 */
static void test_remove_temps(void **state)
{
	struct fx *f = *state;
	struct err e = {0};

	assert_int_equal(metrics_remove_temps(&f->o, &e), 0); /* no folders yet */
	plant(f->state, "metrics/mt-0123456789ab/pre-job-metrics.json");
	plant(f->state, "metrics/mt-0123456789ab/post-job-metrics.json.tmp.4242");
	plant(f->logs, "mt-0123456789ab/startup.log.tmp.4242");
	plant(f->logs, "mt-0123456789ab/_diag/Runner_20240101-000000-utc.log.tmp.4242");
	plant(f->logs, "mt-0123456789ab/_diag/Worker_20240101-000000-utc.log");
	plant(f->state, "metrics/mt-east-0123456789ab/pre-job-metrics.json.tmp.1");
	plant(f->logs, "keep/startup.log.tmp.1");
	plant(f->state, "state.db.tmp.1");
	assert_int_equal(metrics_remove_temps(&f->o, &e), 3);
	assert_false(exists(f->state, "metrics/mt-0123456789ab/post-job-metrics.json.tmp.4242"));
	assert_false(exists(f->logs, "mt-0123456789ab/startup.log.tmp.4242"));
	assert_false(
	        exists(f->logs, "mt-0123456789ab/_diag/Runner_20240101-000000-utc.log.tmp.4242"));
	assert_true(exists(f->state, "metrics/mt-0123456789ab/pre-job-metrics.json"));
	assert_true(exists(f->logs, "mt-0123456789ab/_diag/Worker_20240101-000000-utc.log"));
	assert_true(exists(f->state, "metrics/mt-east-0123456789ab/pre-job-metrics.json.tmp.1"));
	assert_true(exists(f->logs, "keep/startup.log.tmp.1"));
	assert_true(exists(f->state, "state.db.tmp.1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_extract_saves_what_is_there, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_extract_waits_for_post_job, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_extract_post_job_wait_is_bounded, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_extract_errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_save_logs_bytes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_save_logs_time, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_prune_logs, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_remove_temps, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
