/*
 * The local provider's files of an instance: pulling one (bounded, never
 * through a link) and listing them (the most useful first when there are
 * too many).
 */
#include "provider_local_fixture.h"

static void test_local_pull_file(void **state)
{
	const char *a = "pf-000000000001";
	struct buf b = BUF_INIT(0);
	struct err e = {0};
	char path[PATH_MAX];
	int fd;

	create_ok(a, "pf",
	          "printf '{\"ok\":true}' > metrics.json\n"
	          "mkdir -p sub && printf x > sub/x\n"
	          "ln -s /etc/passwd leak\n"
	          "ln -s /etc etcl\n"
	          "head -c 5000 /dev/zero > big\n"
	          "mkfifo fifo\n"
	          "touch ready\n"
	          "sleep 30\n",
	          NULL, NULL);
	assert_true(wait_file(a, "ready", 5000));
	assert_int_equal(provider_pull_file(lpn(a), a, "metrics.json", 1024, &b, &e), 0);
	assert_string_equal(buf_str(&b), "{\"ok\":true}");
	assert_int_equal(provider_pull_file(lpn(a), a, "./sub//x", 1024, &b, &e), 0);
	assert_string_equal(buf_str(&b), "x");
	assert_int_equal(provider_pull_file(lpn(a), a, "big", 5000, &b, &e), 0);
	assert_int_equal(b.len, 5000);
	buf_release(&b);
	assert_int_equal(provider_pull_file(lpn(a), a, "big", 100, &b, &e), -E2BIG);
	assert_null(b.data); /* untouched */
	assert_int_equal(provider_pull_file(lpn(a), a, "leak", 1 << 20, &b, &e), -EINVAL);
	assert_int_equal(provider_pull_file(lpn(a), a, "etcl/passwd", 1 << 20, &b, &e), -EINVAL);
	assert_int_equal(provider_pull_file(lpn(a), a, "sub", 1024, &b, &e), -EINVAL);
	assert_int_equal(provider_pull_file(lpn(a), a, "fifo", 1024, &b, &e), -EINVAL);
	assert_int_equal(
	        provider_pull_file(lpn(a), a, "../pf-000000000001/metrics.json", 1024, &b, &e),
	        -EINVAL);
	assert_int_equal(provider_pull_file(lpn(a), a, "sub/../metrics.json", 1024, &b, &e),
	                 -EINVAL);
	assert_int_equal(provider_pull_file(lpn(a), a, "/etc/passwd", 1024, &b, &e), -EINVAL);
	assert_int_equal(provider_pull_file(lpn(a), a, "", 1024, &b, &e), -EINVAL);
	assert_int_equal(provider_pull_file(lpn(a), a, "missing", 1024, &b, &e), -ENOENT);
	assert_int_equal(
	        provider_pull_file(lpn("pf-000000000009"), "pf-000000000009", "x", 1024, &b, &e),
	        -ENOENT);
	/* A file that is not the runner's (as a hard link to a secret would be). */
	inst_path(path, sizeof(path), a, "rootfile");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(provider_pull_file(lpn(a), a, "rootfile", 1024, &b, &e), -EACCES);
	assert_null(b.data);
	delete_ok(a);
}

static bool listed(const struct provider_file_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return true;
	return false;
}

static const struct provider_list_query all_files = {.max = PROVIDER_LIST_FILES_MAX};

static void test_local_list_files(void **state)
{
	const char *a = "lf-000000000001";
	struct provider_file_list v = {0};
	struct err e = {0};
	char path[PATH_MAX];
	int fd;

	assert_true(provider_traits(lp)->list_files);
	create_ok(a, "lf",
	          "mkdir -p _diag/sub && printf x > _diag/Runner_1.log && printf yy > "
	          "_diag/Worker_2.log\n"
	          "ln -s /etc/passwd _diag/leak\n"
	          "ln -s /etc etcl\n"
	          "mkfifo _diag/fifo\n"
	          "touch ready\n"
	          "sleep 30\n",
	          NULL, NULL);
	assert_true(wait_file(a, "ready", 5000));
	/* a file that is not the runner's is left out */
	inst_path(path, sizeof(path), a, "_diag/rootfile");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(provider_list_files(lpn(a), a, "_diag", &all_files, &v, &e), 0);
	assert_int_equal(v.n, 2);
	assert_int_equal(v.total, 2);
	assert_false(v.cut);
	assert_true(listed(&v, "Runner_1.log"));
	assert_true(listed(&v, "Worker_2.log"));
	for (size_t i = 0; i < v.n; i++) {
		assert_int_equal(v.v[i].size, strcmp(v.v[i].name, "Runner_1.log") == 0 ? 1 : 2);
		assert_in_range(v.v[i].mtime, time(NULL) - 60, time(NULL) + 1);
	}
	provider_file_list_release(&v);
	assert_int_equal(provider_list_files(lpn(a), a, "etcl", &all_files, &v, &e), -ENOTDIR);
	assert_int_equal(provider_list_files(lpn(a), a, "ready", &all_files, &v, &e), -ENOTDIR);
	assert_int_equal(provider_list_files(lpn(a), a, "missing", &all_files, &v, &e), -ENOENT);
	assert_int_equal(provider_list_files(lpn(a), a, "_diag/../..", &all_files, &v, &e),
	                 -EINVAL);
	assert_int_equal(provider_list_files(lpn(a), a, "/etc", &all_files, &v, &e), -EINVAL);
	assert_null(v.v); /* untouched */
	assert_int_equal(provider_list_files(lpn(a), a, ".", &all_files, &v, &e), 0);
	assert_true(listed(&v, "startup.sh") || listed(&v, "ready"));
	assert_false(listed(&v, "etcl"));
	assert_false(listed(&v, "_diag"));
	provider_file_list_release(&v);
	provider_file_list_release(NULL);
	delete_ok(a);
}

/*
 * A job that fills _diag with 1,500 files hides nothing: the listing does
 * not fail, it gives the most useful files (the runner's own first, then
 * the newest) and says how many there were.
 */
static void test_local_list_files_many(void **state)
{
	const char *a = "lf-000000000002";
	static const char *const prefer[] = {"Runner_", "Worker_", NULL};
	struct provider_list_query q = {.max = 10, .prefer = prefer};
	struct provider_file_list v = {0};
	struct err e = {0};
	char path[PATH_MAX], rel[64];
	time_t t0 = time(NULL) - 100000;

	create_ok(a, "lf",
	          "mkdir _diag && printf runner > _diag/Runner_1.log && printf w > "
	          "_diag/Worker_1.log\n"
	          "i=0; while [ $i -lt 1500 ]; do printf j > _diag/junk-$i.log; i=$((i+1)); done\n"
	          "touch ready\n"
	          "sleep 30\n",
	          NULL, NULL);
	assert_true(wait_file(a, "ready", 10000));
	/* junk-<i> was changed i seconds after t0, the runner's logs before all of it */
	for (int i = 0; i < 1502; i++) {
		struct timespec ts[2] = {{.tv_sec = t0 + i}, {.tv_sec = t0 + i}};
		if (i < 1500)
			snprintf(rel, sizeof(rel), "_diag/junk-%d.log", i);
		else
			snprintf(rel, sizeof(rel), "_diag/%s_1.log",
			         i == 1500 ? "Runner" : "Worker");
		if (i >= 1500)
			ts[0].tv_sec = ts[1].tv_sec = t0 - 1000;
		inst_path(path, sizeof(path), a, rel);
		assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
	}
	assert_int_equal(provider_list_files(lpn(a), a, "_diag", &q, &v, &e), 0);
	assert_int_equal(v.n, 10);
	assert_int_equal(v.total, 1502);
	assert_true(v.cut);
	assert_string_equal(v.v[0].name, "Runner_1.log");
	assert_true(v.v[0].preferred);
	assert_int_equal(v.v[0].size, 6);
	assert_string_equal(v.v[1].name, "Worker_1.log");
	for (int i = 2; i < 10; i++) {
		snprintf(rel, sizeof(rel), "junk-%d.log", 1499 - (i - 2));
		assert_string_equal(v.v[i].name, rel);
		assert_int_equal(v.v[i].mtime, t0 + 1499 - (i - 2));
		assert_false(v.v[i].preferred);
	}
	/* nothing preferred: the newest */
	q.prefer = NULL;
	q.max = 3;
	assert_int_equal(provider_list_files(lpn(a), a, "_diag", &q, &v, &e), 0);
	assert_int_equal(v.n, 3);
	assert_string_equal(v.v[0].name, "junk-1499.log");
	assert_string_equal(v.v[2].name, "junk-1497.log");
	provider_file_list_release(&v);
	delete_ok(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_local_pull_file),
	        cmocka_unit_test(test_local_list_files),
	        cmocka_unit_test(test_local_list_files_many),
	};
	if (local_fixture_lock() != 0)
		return 1;
	return cmocka_run_group_tests(tests, local_fixture_setup, local_fixture_teardown);
}
