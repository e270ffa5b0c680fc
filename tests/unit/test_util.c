/* Unit tests of src/util: bounded buffers, strict parsers, names. */
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
	        cmocka_unit_test(test_buf_bound),      cmocka_unit_test(test_buf_json_string),
	        cmocka_unit_test(test_buf_secret),     cmocka_unit_test(test_parse_int),
	        cmocka_unit_test(test_parse_duration), cmocka_unit_test(test_parse_size),
	        cmocka_unit_test(test_names),          cmocka_unit_test(test_err),
	        cmocka_unit_test(test_rfc3339),        cmocka_unit_test(test_strv),
	        cmocka_unit_test(test_words),          cmocka_unit_test(test_command_deadline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
