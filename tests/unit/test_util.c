/*
 * Unit tests of src/util: bounded buffers, strict parsers, names, and the
 * temporaries of atomic writes (how they are named, which a sweep removes).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/command.h"
#include "util/strv.h"
#include "util/words.h"
#include "util/err.h"
#include "util/strutil.h"
#include "util/fileutil.h"

#include <dirent.h>
#include <sys/wait.h>

static void test_buf_bound(void **state)
{
	struct buf b = BUF_INIT(8);
	assert_int_equal(buf_puts(&b, "abcd"), 0);
	assert_int_equal(buf_puts(&b, "efgh"), 0);
	assert_int_equal(buf_puts(&b, "i"), -E2BIG);
	assert_string_equal(buf_str(&b), "abcdefgh");
	assert_int_equal(buf_printf(&b, "%d", 1), -E2BIG);
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, "%s-%d", "ab", 42), 0);
	assert_string_equal(buf_str(&b), "ab-42");
	buf_release(&b);
	assert_string_equal(buf_str(&b), "");
	buf_release(NULL);
}

/* A secret buffer grows by copy and wipe, never by realloc; its contents and bounds hold. */
static void test_buf_secret(void **state)
{
	struct buf b = BUF_INIT_SECRET(5000);
	struct buf p;
	char chunk[100];

	memset(chunk, 'k', sizeof(chunk));
	for (int i = 0; i < 50; i++)
		assert_int_equal(buf_append(&b, chunk, sizeof(chunk)), 0);
	assert_true(b.secret);
	assert_int_equal(b.len, 5000);
	for (size_t i = 0; i < b.len; i++)
		assert_int_equal(b.data[i], 'k');
	assert_int_equal(b.data[b.len], '\0');
	assert_int_equal(buf_append(&b, "x", 1), -E2BIG);
	buf_release(&b);
	assert_null(b.data);
	assert_true(b.secret); /* still secret when it is filled again */
	assert_int_equal(buf_puts(&b, "again"), 0);
	assert_string_equal(buf_str(&b), "again");
	buf_wipe(&b);
	buf_init_secret(&p, 10);
	assert_true(p.secret);
	buf_init(&p, 10);
	assert_false(p.secret);
}

static void test_buf_json_string(void **state)
{
	struct buf b = BUF_INIT(256);
	assert_int_equal(buf_json_string(&b, "a\"b\\c\n\x01\x7f\xc3\xa9"), 0);
	assert_string_equal(buf_str(&b), "\"a\\\"b\\\\c\\u000a\\u0001\\u007f\xc3\xa9\"");
	buf_release(&b);
	struct buf small = BUF_INIT(4);
	assert_int_equal(buf_json_string(&small, "abcdef"), -E2BIG);
	buf_release(&small);
}

static void test_parse_int(void **state)
{
	int64_t v = 7;
	assert_int_equal(parse_int64("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(parse_int64("101", 0, 100, &v), -ERANGE);
	assert_int_equal(parse_int64("4x", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_int64("", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_int64(" 4", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_int64("99999999999999999999", 0, INT64_MAX, &v), -ERANGE);
	assert_int_equal(v, 42); /* untouched on failure */
}

static void test_parse_duration(void **state)
{
	int64_t s = 0;
	char out[32];
	assert_int_equal(parse_duration("30s", &s), 0);
	assert_int_equal(s, 30);
	assert_int_equal(parse_duration("5m", &s), 0);
	assert_int_equal(s, 300);
	assert_int_equal(parse_duration("6h", &s), 0);
	assert_int_equal(s, 21600);
	assert_int_equal(parse_duration("7d", &s), 0);
	assert_int_equal(s, 604800);
	assert_int_equal(parse_duration("5", &s), -EINVAL);
	assert_int_equal(parse_duration("5 m", &s), -EINVAL);
	assert_int_equal(parse_duration("-5m", &s), -EINVAL);
	assert_int_equal(parse_duration("m", &s), -EINVAL);
	assert_int_equal(parse_duration("999999999999999999d", &s), -ERANGE);
	format_duration(1380, out, sizeof(out));
	assert_string_equal(out, "23m");
	format_duration(90, out, sizeof(out));
	assert_string_equal(out, "90s");
}

static void test_parse_size(void **state)
{
	int64_t b = 0;
	char out[32];
	assert_int_equal(parse_size("512MiB", &b), 0);
	assert_int_equal(b, 512LL << 20);
	assert_int_equal(parse_size("7GiB", &b), 0);
	assert_int_equal(b, 7LL << 30);
	assert_int_equal(parse_size("10G", &b), 0);
	assert_int_equal(b, 10000000000LL);
	assert_int_equal(parse_size("7gib", &b), -EINVAL);
	assert_int_equal(parse_size("1.5GiB", &b), -EINVAL);
	format_size(7LL << 30, out, sizeof(out));
	assert_string_equal(out, "7GiB");
}

static void test_names(void **state)
{
	assert_true(name_is_valid("ci-east", 50));
	assert_false(name_is_valid("Ci", 50));
	assert_false(name_is_valid("-ci", 50));
	assert_false(name_is_valid("ci-", 50));
	assert_false(name_is_valid("", 50));
	assert_false(name_is_valid("ci_east", 50));
	assert_true(name_is_owned("ci", "ci-0123456789ab"));
	assert_false(name_is_owned("ci", "ci-east-0123456789ab"));
	assert_false(name_is_owned("ci", "ci-0123456789abc"));
	assert_false(name_is_owned("ci", "ci-0123456789aB"));
	assert_false(name_is_owned("ci", "ci-0123456789a"));
	assert_false(name_is_owned("ci-east", "ci-0123456789ab"));
	assert_true(name_is_owned("ci-east", "ci-east-0123456789ab"));
}

/* One RFC 3339 parser for GitHub's and LXD's times: strict, offsets applied. */
static void test_rfc3339(void **state)
{
	int64_t t = 0;

	assert_int_equal(clock_parse_rfc3339("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(clock_parse_rfc3339("2000-03-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 951868800);
	assert_int_equal(clock_parse_rfc3339("2024-02-29T23:59:59-00:30", &t), 0);
	assert_int_equal(t, 1709251199 + 1800);
	t = 5;
	assert_int_equal(clock_parse_rfc3339("2024-02-29 23:59:59Z", &t), -EINVAL);
	assert_int_equal(clock_parse_rfc3339("2024-13-01T00:00:00Z", &t), -EINVAL);
	assert_int_equal(clock_parse_rfc3339("2024-01-01T00:00:00", &t), -EINVAL);
	assert_int_equal(clock_parse_rfc3339("2024-01-01T00:00:00Zjunk", &t), -EINVAL);
	assert_int_equal(t, 5);
	assert_int_equal(clock_parse_rfc3339("2024-01-01T00:00:00.5", &t), -EINVAL);
	assert_int_equal(clock_parse_rfc3339("2024-01-01T00:00:00.123456789Z", &t), 0);
	assert_int_equal(t, 1704067200);
	assert_int_equal(clock_parse_rfc3339(NULL, &t), -EINVAL);
}

static void test_strv(void **state)
{
	struct strv l = {0};

	assert_int_equal(strv_push(&l, "Linux"), 0);
	assert_int_equal(strv_push_n(&l, "x64abc", 3), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[1], "x64");
	assert_true(strv_contains(&l, "linux", true));
	assert_false(strv_contains(&l, "linux", false));
	assert_false(strv_contains(&l, "arm64", true));
	strv_release(&l);
	assert_null(l.v);
	assert_int_equal(l.n, 0);
	strv_release(NULL);
}

/* The shared words: every state has one spelling, and it reads back. */
static void test_words(void **state)
{
	const char *implied[WORDS_IMPLIED_LABELS];

	for (int i = 0; i < CLOUD_STATE_COUNT; i++)
		assert_int_equal(cloud_state_from_name(cloud_state_name(i)), i);
	for (int i = 0; i < GITHUB_STATE_COUNT; i++)
		assert_int_equal(github_state_from_name(github_state_name(i)), i);
	for (int i = 0; i < HEALTH_COUNT; i++)
		assert_int_equal(health_from_name(health_name(i)), i);
	assert_string_equal(cloud_state_name(CLOUD_STATE_COUNT), "invalid");
	assert_int_equal(cloud_state_from_name("running"), -1);
	assert_int_equal(github_state_from_name(NULL), -1);
	assert_int_equal(health_from_state(CLOUD_ACTIVE), HEALTH_HEALTHY);
	assert_int_equal(health_from_state(CLOUD_STOPPED), HEALTH_UNHEALTHY);
	assert_int_equal(health_from_state(CLOUD_CREATED), HEALTH_UNKNOWN);
	words_implied_labels(ARCH_ARM64, implied);
	assert_string_equal(implied[0], "self-hosted");
	assert_string_equal(implied[1], "linux");
	assert_string_equal(implied[2], "arm64");
}

static void test_err(void **state)
{
	struct err e = {0};
	assert_int_equal(err_set(&e, -ENOENT, "no %s", "thing"), -ENOENT);
	assert_string_equal(e.msg, "no thing");
	assert_int_equal(err_prefix(&e, "load %d", 1), -ENOENT);
	assert_string_equal(e.msg, "load 1: no thing");
	assert_int_equal(err_set(NULL, -EIO, "x"), -EIO);
}

/* The pid of a process that has ended (a child, reaped). */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return pid;
}

/* A regular file dir/name (or a symlink to "x", or a directory), changed age_s seconds ago. */
static void put_file(const char *dir, const char *name, char kind, int64_t age_s)
{
	char path[512];
	struct timespec ts[2] = {{.tv_sec = time(NULL) - age_s}, {.tv_sec = time(NULL) - age_s}};

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (kind == 'l')
		assert_int_equal(symlink("x", path), 0);
	else if (kind == 'd')
		assert_int_equal(mkdir(path, 0700), 0);
	else
		assert_int_equal(file_write_atomic(path, "t", 1, 0600, NULL), 0);
	assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static bool present(const char *dir, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

/* How many entries of dir are file_write_atomic's temporaries. */
static size_t temporaries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += file_tmp_name(de->d_name, NULL);
	closedir(d);
	return n;
}

/* Temporaries are named for the directory's owner: ".<name>.runnerd-tmp.<pid>.<hex>". */
static void test_tmp_names(void **state)
{
	pid_t pid = 0;
	char dir[] = "/tmp/runnerd-test-util.XXXXXX", path[512];
	char *big = calloc(1, 300);

	assert_true(file_tmp_name(".state.json.runnerd-tmp.123.0a1b2c3d", &pid));
	assert_int_equal(pid, 123);
	assert_true(file_tmp_name("ci-0123456789ab.json.tmp.77", &pid)); /* the old naming */
	assert_int_equal(pid, 77);
	assert_true(file_tmp_name(".a.runnerd-tmp.9.runnerd-tmp.5.ffffffff", &pid));
	assert_int_equal(pid, 5);
	const char *no[] = {"state.json",
	                    ".runnerd-tmp.1.0a1b2c3d",   /* no name */
	                    "x.runnerd-tmp.1.0a1b2c3d",  /* not hidden */
	                    ".x.runnerd-tmp.1.0A1B2C3D", /* not lowercase hex */
	                    ".x.runnerd-tmp.1.0a1b2c3",  /* 7 digits */
	                    ".x.runnerd-tmp.0.0a1b2c3d", /* no pid 0 */
	                    ".x.runnerd-tmp.99999999999.0a1b2c3d",
	                    ".x.runnerd-tmp..0a1b2c3d",
	                    "x.tmp.",
	                    "x.tmp.12a",
	                    ".tmp.12",
	                    "x.tmp.-1",
	                    "Runner_1.log"};
	for (size_t i = 0; i < ARRAY_SIZE(no); i++)
		assert_false(file_tmp_name(no[i], NULL));

	/* an atomic write leaves its file and no temporary; a long name still fits */
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	assert_int_equal(file_write_atomic(path, "abc", 3, 0600, NULL), 0);
	memset(big, 'n', 255);
	snprintf(path, sizeof(path), "%s/%s", dir, big);
	assert_int_equal(file_write_atomic(path, "abc", 3, 0600, NULL), 0);
	assert_true(present(dir, "f") && present(dir, big));
	assert_int_equal(temporaries(dir), 0);
	free(big);
	assert_int_equal(rm_rf(dir, NULL), 0);
}

/*
 * dir_sync syncs a directory and names what it could not; file_write_atomic
 * syncs the directory of a bare name (the working one) too.
 */
static void test_dir_sync(void **state)
{
	char dir[] = "/tmp/runnerd-dirsync-XXXXXX", path[PATH_MAX], cwd[PATH_MAX];
	struct err e = {0};
	struct buf b = BUF_INIT(0);

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(dir_sync(dir, &e), 0);
	assert_int_equal(dir_sync("/", &e), 0);
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(dir_sync(path, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "missing"));
	snprintf(path, sizeof(path), "%s/file", dir);
	assert_int_equal(file_write_atomic(path, "x", 1, 0600, NULL), 0);
	assert_int_equal(dir_sync(path, &e), -ENOTDIR);

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(file_write_atomic("bare", "yz", 2, 0600, &e), 0);
	assert_int_equal(chdir(cwd), 0);
	snprintf(path, sizeof(path), "%s/bare", dir);
	assert_int_equal(file_read(path, 16, true, &b, &e), 0);
	assert_string_equal(buf_str(&b), "yz");
	buf_release(&b);
	assert_int_equal(rm_rf(dir, NULL), 0);
}

/*
 * A sweep removes the temporaries of processes that have ended and those
 * unchanged for an hour; a live writer's, and anything that is not a
 * temporary (or not a regular file), stays.
 */
static void test_tmp_sweep(void **state)
{
	char dir[] = "/tmp/runnerd-test-util.XXXXXX", sub[64], deep[96], name[128];
	pid_t dead = dead_pid(), live = getpid();
	struct file_tmp_sweep o = {.depth = 0, .now = time(NULL)};
	struct err e = {0};
	uint64_t bytes = 0;

	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/ci-0123456789ab", dir);
	snprintf(deep, sizeof(deep), "%s/_diag", sub);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(mkdir(deep, 0700), 0);
#define TMP(buf, fmt, pid) snprintf(buf, sizeof(buf), fmt, (int)(pid))
	TMP(name, ".a.json.runnerd-tmp.%d.00000001", dead);
	put_file(dir, name, 'f', 0); /* removed: its writer is gone */
	TMP(name, "b.json.tmp.%d", dead);
	put_file(dir, name, 'f', 0); /* removed: the old naming */
	TMP(name, ".c.json.runnerd-tmp.%d.00000002", live);
	put_file(dir, name, 'f', 0); /* kept: written right now */
	TMP(name, "d.json.tmp.%d", live);
	put_file(dir, name, 'f', 0); /* kept */
	TMP(name, ".e.json.runnerd-tmp.%d.00000003", live);
	put_file(dir, name, 'f', 2 * FILE_TMP_OLD_S); /* removed: untouched for too long */
	TMP(name, ".f.runnerd-tmp.%d.00000004", dead);
	put_file(dir, name, 'l', 0); /* a symlink: kept */
	TMP(name, ".g.runnerd-tmp.%d.00000005", dead);
	put_file(dir, name, 'd', 0); /* a directory: kept */
	put_file(dir, "state.json", 'f', 2 * FILE_TMP_OLD_S);
	put_file(dir, ".download-x64-AbC123", 'f', 2 * FILE_TMP_OLD_S);
	put_file(dir, ".download-x64-XyZ789", 'f', 0);
	TMP(name, ".h.runnerd-tmp.%d.00000006", dead);
	put_file(sub, name, 'f', 0);
	TMP(name, ".Runner_1.log.runnerd-tmp.%d.00000007", dead);
	put_file(deep, name, 'f', 0);

	assert_int_equal(file_tmp_sweep(dir, &o, &e), 3);
	assert_int_equal(temporaries(dir), 4);
	assert_true(present(dir, "state.json"));
	assert_true(present(dir, ".download-x64-AbC123"));
	assert_int_equal(temporaries(sub), 1); /* depth 0: not visited */
	/* two levels down; a mkstemp prefix that names no pid goes once it is old */
	o.depth = 2;
	o.aged_prefix = ".download-";
	assert_int_equal(file_tmp_sweep(dir, &o, &e), 3);
	assert_int_equal(temporaries(sub), 0);
	assert_int_equal(temporaries(deep), 0);
	assert_false(present(dir, ".download-x64-AbC123"));
	assert_true(present(dir, ".download-x64-XyZ789"));
	assert_int_equal(temporaries(dir), 4); /* the live ones, the symlink, the directory */
	TMP(name, ".c.json.runnerd-tmp.%d.00000002", live);
	assert_true(present(dir, name));
	TMP(name, "d.json.tmp.%d", live);
	assert_true(present(dir, name));
#undef TMP
	/* a missing directory is nothing to do */
	snprintf(name, sizeof(name), "%s/missing", dir);
	assert_int_equal(file_tmp_sweep(name, &o, &e), 0);

	/* sizes: regular files only, symlinks not followed */
	assert_int_equal(file_tree_bytes(dir, &bytes, &e), 0);
	assert_int_equal(bytes, 4); /* c, d, state.json and the fresh download: a byte each */
	assert_int_equal(file_tree_bytes(name, &bytes, &e), 0);
	assert_int_equal(bytes, 0);
	assert_int_equal(rm_rf(dir, NULL), 0);
}

/* sh -c script, within timeout_ms; its status in *status, its output in out. */
static int sh_run(const char *script, int64_t timeout_ms, char *out, size_t cap, int *status,
                  struct err *e)
{
	char *const argv[] = {"sh", "-c", (char *)script, NULL};
	char *const envp[] = {"PATH=/usr/bin:/bin", NULL};

	return command_run("/bin/sh", argv, envp, timeout_ms, out, cap, status, e);
}

/*
 * docs/deadlines.md, row "useradd": a helper command runs within
 * its deadline: one that hangs is killed at it, one that exits is not
 * waited for beyond its exit even when what it started holds its output.
 */
static void test_command_deadline(void **state)
{
	char out[64];
	struct err e = {0};
	int status = -1;
	int64_t t0;

	assert_int_equal(
	        sh_run("echo one; echo two >&2; exit 3", 5000, out, sizeof(out), &status, &e), 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 3);
	assert_string_equal(out, "one two ");
	/* silent and never ending: killed at the deadline */
	t0 = clock_mono_ms();
	assert_int_equal(sh_run("exec sleep 100", 300, out, sizeof(out), &status, &e), -ETIMEDOUT);
	assert_true(clock_mono_ms() - t0 < 2000);
	assert_non_null(strstr(e.msg, "still running after 300 ms: killed"));
	/* exited, but left a child holding its output open: not waited for */
	t0 = clock_mono_ms();
	assert_int_equal(sh_run("sleep 3 & echo done", 5000, out, sizeof(out), &status, &e), 0);
	assert_true(clock_mono_ms() - t0 < 2000);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_string_equal(out, "done ");
	/* a flood of output is read (and cut to out), so the command is never blocked */
	assert_int_equal(sh_run("head -c 1000000 /dev/zero | tr '\\0' x", 5000, out, sizeof(out),
	                        &status, &e),
	                 0);
	assert_int_equal(strlen(out), sizeof(out) - 1);
	/* a writer that never stops, left behind: the call still ends at the deadline */
	t0 = clock_mono_ms();
	assert_int_equal(sh_run("yes &", 5000, out, sizeof(out), &status, &e), 0);
	assert_true(clock_mono_ms() - t0 < 2000);
	/* not there: exec fails in the child, status 127 */
	assert_int_equal(command_run("/nonexistent/cmd", (char *[]){"x", NULL}, (char *[]){NULL},
	                             1000, out, sizeof(out), &status, &e),
	                 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 127);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_buf_bound),
	        cmocka_unit_test(test_buf_json_string),
	        cmocka_unit_test(test_buf_secret),
	        cmocka_unit_test(test_parse_int),
	        cmocka_unit_test(test_parse_duration),
	        cmocka_unit_test(test_parse_size),
	        cmocka_unit_test(test_names),
	        cmocka_unit_test(test_err),
	        cmocka_unit_test(test_rfc3339),
	        cmocka_unit_test(test_strv),
	        cmocka_unit_test(test_words),
	        cmocka_unit_test(test_tmp_names),
	        cmocka_unit_test(test_tmp_sweep),
	        cmocka_unit_test(test_dir_sync),
	        cmocka_unit_test(test_command_deadline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
