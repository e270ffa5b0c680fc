/*
 * Unit tests of the intake's commits flushed behind their answers
 * (src/store/store_flush_behind.c, the deferred syncs of store_vfs.c):
 * with it on, store_intake_write leaves its WAL sync to the flusher, which
 * makes it; what it wrote is in the file when it returns (a process that
 * dies right after loses nothing); the commit that starts the WAL over
 * syncs for real; every other write still syncs itself; a sync that fails
 * turns flushing behind off, and the commits sync themselves again; a
 * store that never flushes behind has no flusher thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "store/store.h"
#include "store/store_internal.h" /* the VFS's counts, and the flusher's descriptor */

#include <dirent.h>
#include <sys/wait.h>

struct fixture {
	char dir[64], sdir[PATH_MAX];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/runnerd-test-flush-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->sdir, sizeof(f->sdir), "%s/state", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* This process's threads named name (their comm in /proc/self/task). */
static int threads_named(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		char path[300], comm[32] = "";
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue; /* a thread that just ended */
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
		n += strcmp(comm, name) == 0;
	}
	closedir(d);
	return n;
}

/* A batch of n new queued jobs, delivery ids "<tag>-<first + i>". */
static void write_batch(struct store *s, const char *tag, int first, int n)
{
	struct store_intake v[16], *pv[16];
	struct err e = {0};

	assert_true(n <= 16);
	for (int i = 0; i < n; i++) {
		struct store_intake *in = &v[i];

		memset(in, 0, sizeof(*in));
		snprintf(in->delivery_id, sizeof(in->delivery_id), "%s-%d", tag, first + i);
		in->received_at = 1000 + first + i;
		in->op = STORE_INTAKE_JOB_ADD;
		in->job.job_id = 1000000 + first + i;
		snprintf(in->job.repo, sizeof(in->job.repo), "octo/hello");
		snprintf(in->job.labels, sizeof(in->job.labels), "[\"small\"]");
		snprintf(in->job.flavor, sizeof(in->job.flavor), "small");
		snprintf(in->job.delivery_id, sizeof(in->job.delivery_id), "%s", in->delivery_id);
		in->job.received_at = in->received_at;
		pv[i] = in;
	}
	assert_int_equal(store_intake_write(s, pv, (size_t)n, &e), 0);
}

static void assert_seen(struct store *s, const char *tag, int n)
{
	struct err e = {0};
	char id[64];

	for (int i = 0; i < n; i++) {
		bool seen = false;

		snprintf(id, sizeof(id), "%s-%d", tag, i);
		assert_int_equal(store_delivery_seen(s, id, &seen, &e), 0);
		if (!seen)
			fail_msg("delivery %s is not there", id);
	}
}

/*
 * On: the intake's commits leave their syncs to the flusher, which syncs
 * them all; another write syncs itself; off again: the commits sync.
 */
static void test_commits_synced_behind(void **state)
{
	struct fixture *f = *state;
	struct store_vfs_stats a, b, c;
	struct store_flush_counts n;
	struct store *s = NULL;
	struct err e = {0};

	assert_int_equal(store_open(f->sdir, &s, &e), 0);
	write_batch(s, "warm", 0, 1); /* the WAL's first commit (its header) */
	store_set_flush_behind(s, true);
	store_vfs_get_stats(&a);
	for (int i = 0; i < 200; i++)
		write_batch(s, "behind", i * 4, 4);
	store_vfs_get_stats(&b);
	assert_int_equal(b.deferred - a.deferred, 200);
	assert_int_equal(store_flush_behind_wait(s), 0);
	store_flush_behind_counts(s, &n);
	assert_true(n.on);
	assert_false(n.failing);
	assert_int_equal(n.commits, 200);
	assert_int_equal(n.behind, 0);
	assert_true(n.syncs >= 1);
	assert_true(n.syncs <= 200);
	assert_int_equal(n.failed, 0);

	/* a write other than the intake's syncs itself */
	assert_int_equal(store_delivery_add(s, "other", 5000, &e), 0);
	store_vfs_get_stats(&c);
	assert_int_equal(c.deferred, b.deferred);
	assert_true(c.wal_syncs > b.wal_syncs);

	store_set_flush_behind(s, false);
	write_batch(s, "synced", 0, 4);
	store_vfs_get_stats(&a);
	assert_int_equal(a.deferred, c.deferred);
	assert_true(a.wal_syncs > c.wal_syncs);
	store_close(s);

	assert_int_equal(store_open(f->sdir, &s, &e), 0);
	assert_seen(s, "behind", 800);
	assert_seen(s, "synced", 4);
	store_close(s);
}

/*
 * What a commit flushed behind wrote is in the file when the call returns:
 * a process that ends right after (no close, no sync of its own) loses
 * none of it. (The flusher's fdatasync could not send frames the VFS still
 * held in memory: only the write in the commit puts them in the file.)
 */
static void test_a_crash_of_the_process_loses_nothing(void **state)
{
	struct fixture *f = *state;
	struct store *s = NULL;
	struct err e = {0};
	int status = 0;
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (store_open(f->sdir, &s, &e) < 0)
			_exit(2);
		store_set_flush_behind(s, true);
		for (int i = 0; i < 100; i++)
			write_batch(s, "crash", i * 3, 3);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(store_open(f->sdir, &s, &e), 0);
	assert_seen(s, "crash", 300);
	store_close(s);
}

/*
 * Back-to-back commits flushed behind: the checkpointer starts the WAL over
 * now and then, and the commit that writes its new header syncs that
 * header for real before its frames.
 */
static void test_a_new_wal_header_syncs_for_real(void **state)
{
	struct fixture *f = *state;
	struct store_vfs_stats a, b;
	struct store *s = NULL;
	struct err e = {0};
	uint64_t runs = 0, failed = 0;

	assert_int_equal(store_open(f->sdir, &s, &e), 0);
	store_set_flush_behind(s, true);
	store_vfs_get_stats(&a);
	for (int i = 0; i < 3000; i++)
		write_batch(s, "restart", i * 4, 4);
	store_vfs_get_stats(&b);
	store_checkpoint_counts(s, &runs, &failed);
	assert_true(runs >= 1);
	assert_int_equal(failed, 0);
	/* each commit's sync left to the flusher, but the syncs of the new headers
	 * that came before some of them (SQLite syncs a header before the frames) */
	assert_int_equal(b.deferred - a.deferred, 3000);
	assert_true(b.header_syncs - a.header_syncs >= 1);
	assert_int_equal(store_flush_behind_wait(s), 0);
	store_close(s);
	assert_int_equal(store_open(f->sdir, &s, &e), 0);
	assert_seen(s, "restart", 12000);
	store_close(s);
}

/*
 * A sync of the flusher that fails is counted and turns flushing behind
 * off: the commits after it sync themselves.
 */
static void test_a_failed_sync_turns_it_off(void **state)
{
	struct fixture *f = *state;
	struct store_vfs_stats a, b;
	struct store_flush_counts n;
	struct store *s = NULL;
	struct err e = {0};
	int p[2];

	assert_int_equal(store_open(f->sdir, &s, &e), 0);
	write_batch(s, "first", 0, 1);
	assert_int_equal(pipe(p), 0);
	/* a pipe cannot be synced: fdatasync fails with EINVAL */
	pthread_mutex_lock(&s->fl.mu);
	s->fl.fd = p[0];
	pthread_mutex_unlock(&s->fl.mu);
	store_set_flush_behind(s, true);
	write_batch(s, "failed", 0, 2);
	assert_int_equal(store_flush_behind_wait(s), -EIO);
	store_flush_behind_counts(s, &n);
	assert_true(n.failing);
	assert_true(n.failed >= 1);
	store_vfs_get_stats(&a);
	write_batch(s, "after", 0, 2);
	store_vfs_get_stats(&b);
	assert_int_equal(b.deferred, a.deferred);
	assert_true(b.wal_syncs > a.wal_syncs);
	store_close(s); /* closes the pipe's end */
	close(p[1]);
}

/*
 * The flusher's thread starts the first time flushing behind is turned on:
 * a store that never does (answer_after: flush, the default) has none.
 */
static void test_a_thread_only_once_turned_on(void **state)
{
	struct fixture *f = *state;
	struct store_flush_counts n;
	struct store *s = NULL;
	struct err e = {0};

	assert_int_equal(threads_named("flush-behind"), 0);
	assert_int_equal(store_open(f->sdir, &s, &e), 0);
	store_set_flush_behind(s, false);
	write_batch(s, "off", 0, 4);
	assert_int_equal(threads_named("flush-behind"), 0);
	store_flush_behind_counts(s, &n);
	assert_false(n.on);
	assert_int_equal(n.commits, 0);
	assert_int_equal(store_flush_behind_wait(s), 0);

	store_set_flush_behind(s, true);
	assert_int_equal(threads_named("flush-behind"), 1);
	write_batch(s, "on", 0, 4);
	assert_int_equal(store_flush_behind_wait(s), 0);
	store_flush_behind_counts(s, &n);
	assert_true(n.on);
	assert_int_equal(n.commits, 1);
	/* off again, and on: the same thread */
	store_set_flush_behind(s, false);
	store_set_flush_behind(s, true);
	assert_int_equal(threads_named("flush-behind"), 1);
	store_close(s);
	assert_int_equal(threads_named("flush-behind"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_a_thread_only_once_turned_on, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_commits_synced_behind, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_a_crash_of_the_process_loses_nothing, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_a_new_wal_header_syncs_for_real, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_a_failed_sync_turns_it_off, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
