/*
 * Unit tests of src/runner's helpers: the runner's labels, the web URL,
 * shell quoting and the secret environment. The startup script's renderings
 * and runs are in the other test_runner_*.c programs; their shared fixture
 * is runner_fixture.c.
 */
#include "runner_fixture.h"

/* ---- unit tests of the helpers ------------------------------------------ */

static void test_labels(void **state)
{
	struct fixture_cfg f;
	struct strv l = {NULL, 0};
	char *bad[] = {"ok", "a,b"};
	char *empty[] = {""};

	base(&f);
	assert_int_equal(runner_labels(&f.flavor, &l), 0);
	assert_int_equal(l.n, 5);
	assert_string_equal(l.v[0], "self-hosted");
	assert_string_equal(l.v[1], "linux");
	assert_string_equal(l.v[2], "x64");
	assert_string_equal(l.v[3], "large");
	assert_string_equal(l.v[4], "GPU");

	f.flavor.arch = ARCH_ARM64;
	f.labels[0] = "Self-Hosted";
	f.labels[1] = "large";
	f.labels[2] = "LARGE";
	assert_int_equal(runner_labels(&f.flavor, &l), 0); /* replaces l */
	assert_int_equal(l.n, 4);
	assert_string_equal(l.v[2], "arm64");
	assert_string_equal(l.v[3], "large");

	f.flavor.labels.v = bad;
	f.flavor.labels.n = 2;
	assert_int_equal(runner_labels(&f.flavor, &l), -EINVAL);
	assert_int_equal(l.n, 4); /* untouched */
	f.flavor.labels.v = empty;
	f.flavor.labels.n = 1;
	assert_int_equal(runner_labels(&f.flavor, &l), -EINVAL);
	f.flavor.labels.n = 0;
	assert_int_equal(runner_labels(&f.flavor, &l), 0);
	assert_int_equal(l.n, 3);
	strv_release(&l);
	strv_release(&l);
	strv_release(NULL);
	assert_string_equal(arch_name(ARCH_X64), "x64");
	assert_string_equal(arch_name(ARCH_ARM64), "arm64");
}

static void expect_url(const char *api, const char *path, const char *want)
{
	struct buf b = BUF_INIT(1024);
	assert_int_equal(runner_html_url(api, path, &b), 0);
	assert_string_equal(buf_str(&b), want);
	buf_release(&b);
}

static void test_html_url(void **state)
{
	struct buf b = BUF_INIT(1024);
	expect_url("https://api.github.com", "octo/repo", "https://github.com/octo/repo");
	expect_url("https://api.github.com/", "octo", "https://github.com/octo");
	expect_url("https://API.GitHub.com", "octo", "https://github.com/octo");
	expect_url("https://ghe.example.com/api/v3", "o/r", "https://ghe.example.com/o/r");
	expect_url("https://ghe.example.com/api/v3/", "o/r", "https://ghe.example.com/o/r");
	expect_url("http://127.0.0.1:8080", "o/r", "http://127.0.0.1:8080/o/r");
	expect_url("http://127.0.0.1:8080/api/v3", "o", "http://127.0.0.1:8080/o");
	expect_url("https://api.github.com.evil.example", "o",
	           "https://api.github.com.evil.example/o");
	assert_int_equal(runner_html_url("", "o", &b), -EINVAL);
	assert_int_equal(runner_html_url("https://api.github.com", "", &b), -EINVAL);
	assert_int_equal(runner_html_url(NULL, "o", &b), -EINVAL);
	buf_release(&b);
}

static void test_sh_quote(void **state)
{
	struct buf b = BUF_INIT(1024);
	assert_int_equal(runner_sh_quote("", &b), 0);
	assert_string_equal(buf_str(&b), "''");
	buf_reset(&b);
	assert_int_equal(runner_sh_quote("it's $(x) `y`", &b), 0);
	assert_string_equal(buf_str(&b), "'it'\\''s $(x) `y`'");
	buf_release(&b);

	struct buf small = BUF_INIT(4);
	assert_int_equal(runner_sh_quote("abcdef", &small), -E2BIG);
	buf_release(&small);
}

static void test_secret_env(void **state)
{
	static const char hostile[] = "ey'J9$(touch pwned)`id`\"\\\nline2 ";
	struct buf b = BUF_INIT(4096);
	char path[PATH_MAX], out[PATH_MAX], pwned[PATH_MAX], *got;
	char *argv[] = {
	        (char *)"/bin/sh", (char *)"-c",
	        (char *)"set -a; . ./secret.env; printf %s \"$ACTIONS_RUNNER_INPUT_JITCONFIG\" "
	                "> jit.out; printf %s \"$RUNNERD_REPO_POLICY_TOKEN\" > pol.out",
	        NULL};

	assert_int_equal(runner_secret_env("abc", true, &b), 0);
	assert_string_equal(buf_str(&b), "ACTIONS_RUNNER_INPUT_JITCONFIG='abc'\n");
	buf_reset(&b);
	assert_int_equal(runner_secret_env("t0k'n", false, &b), 0);
	assert_string_equal(buf_str(&b), "ACTIONS_RUNNER_INPUT_TOKEN='t0k'\\''n'\n");
	assert_int_equal(runner_secret_env("", false, &b), -EINVAL);
	assert_int_equal(runner_secret_env(NULL, true, &b), -EINVAL);
	assert_int_equal(runner_secret_env_var("bad-name", "x", &b), -EINVAL);
	assert_int_equal(runner_secret_env_var("1BAD", "x", &b), -EINVAL);
	assert_string_equal(buf_str(&b), "ACTIONS_RUNNER_INPUT_TOKEN='t0k'\\''n'\n");

	/* Too small: nothing half-written stays behind. */
	struct buf tiny = BUF_INIT(40);
	assert_int_equal(runner_secret_env("0123456789012345678901234567890123456789", true, &tiny),
	                 -E2BIG);
	assert_int_equal(tiny.len, 0);
	buf_release(&tiny);

	/* What sh reads back is exactly the secret, and nothing runs. */
	buf_reset(&b);
	assert_int_equal(runner_secret_env(hostile, true, &b), 0);
	assert_int_equal(runner_secret_env_var(RUNNER_REPO_POLICY_TOKEN_ENV, "p'o", &b), 0);
	pathf(path, sizeof(path), "%s/secret.env", tmp_root);
	write_file(path, buf_str(&b), 0600);
	assert_int_equal(run_cmd(argv, NULL, tmp_root, NULL), 0);
	pathf(out, sizeof(out), "%s/jit.out", tmp_root);
	got = read_text(out);
	assert_non_null(got);
	assert_string_equal(got, hostile);
	free(got);
	pathf(out, sizeof(out), "%s/pol.out", tmp_root);
	got = read_text(out);
	assert_string_equal(got, "p'o");
	free(got);
	pathf(pwned, sizeof(pwned), "%s/pwned", tmp_root);
	assert_false(exists(pwned));
	buf_wipe(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_labels),
	        cmocka_unit_test(test_html_url),
	        cmocka_unit_test(test_sh_quote),
	        cmocka_unit_test(test_secret_env),
	};
	return cmocka_run_group_tests(tests, runner_fixture_setup, runner_fixture_teardown);
}
