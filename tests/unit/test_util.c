/* Unit tests of src/util: bounded buffers, strict parsers, names. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/strv.h"
#include "util/words.h"
#include "util/err.h"
#include "util/strutil.h"
#include "util/fileutil.h"

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

static void touch(const char *dir, const char *name)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
}

static bool present(const char *dir, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

static bool not_b(const char *target, void *ctx)
{
	assert_string_equal(ctx, "ctx");
	return strcmp(target, "b.json") != 0;
}

/*
 * What file_write_atomic leaves when killed between its open and its
 * rename, <target>.tmp.<pid>, goes; nothing else does: not the targets, a
 * name that only looks like one, a folder or a symlink so named, what the
 * filter refuses, nor anything below dir.
 */
static void test_file_remove_temps(void **state)
{
	char dir[] = "/tmp/runnerd-test-util.XXXXXX", sub[64], path[512];
	struct err e = {0};

	assert_non_null(mkdtemp(dir));
	assert_int_equal(file_remove_temps("/nonexistent/runnerd", NULL, NULL, &e), 0);
	snprintf(path, sizeof(path), "%s/a.json", dir);
	assert_int_equal(file_write_atomic(path, "{}", 2, 0600, &e), 0);
	touch(dir, "a.json.tmp.12345"); /* a killed writer's */
	touch(dir, "b.json.tmp.7");     /* refused by the filter */
	touch(dir, "c.tmp.1.tmp.99");   /* target c.tmp.1 */
	touch(dir, "d.tmp.");           /* no pid */
	touch(dir, "e.tmp.12x");        /* not a pid */
	touch(dir, ".tmp.5");           /* no target */
	touch(dir, "f.tmp");            /* no pid either */
	snprintf(sub, sizeof(sub), "%s/g.tmp.3", dir);
	assert_int_equal(mkdir(sub, 0700), 0); /* a folder so named */
	touch(sub, "h.tmp.4");                 /* below dir */
	snprintf(path, sizeof(path), "%s/i.tmp.5", dir);
	assert_int_equal(symlink("/etc/hostname", path), 0);

	assert_int_equal(file_remove_temps(dir, not_b, "ctx", &e), 2);
	assert_false(present(dir, "a.json.tmp.12345"));
	assert_false(present(dir, "c.tmp.1.tmp.99"));
	assert_true(present(dir, "a.json"));
	assert_true(present(dir, "b.json.tmp.7"));
	assert_true(present(dir, "d.tmp."));
	assert_true(present(dir, "e.tmp.12x"));
	assert_true(present(dir, ".tmp.5"));
	assert_true(present(dir, "f.tmp"));
	assert_true(present(dir, "g.tmp.3"));
	assert_true(present(sub, "h.tmp.4"));
	assert_true(present(dir, "i.tmp.5"));
	assert_true(present("/etc", "hostname"));
	/* no filter: every temporary */
	assert_int_equal(file_remove_temps(dir, NULL, NULL, &e), 1);
	assert_false(present(dir, "b.json.tmp.7"));
	assert_int_equal(rm_rf(dir, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_buf_bound),      cmocka_unit_test(test_buf_json_string),
	        cmocka_unit_test(test_buf_secret),     cmocka_unit_test(test_parse_int),
	        cmocka_unit_test(test_parse_duration), cmocka_unit_test(test_parse_size),
	        cmocka_unit_test(test_names),          cmocka_unit_test(test_err),
	        cmocka_unit_test(test_rfc3339),        cmocka_unit_test(test_strv),
	        cmocka_unit_test(test_words),          cmocka_unit_test(test_file_remove_temps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
