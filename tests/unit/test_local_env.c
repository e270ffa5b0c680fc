/*
 * Unit tests of the local provider's pure parsers (src/provider/local/env.c
 * and proc_parse.c): the environment a script starts with and the secrets
 * parsed into it, and what /proc's stat and status say. No root,
 * no processes: text in, values out.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "provider/local/local_internal.h"

#define HOME "/var/lib/runnerd/local/ci-000000000001"

/* The value of key in env, NULL when absent. */
static const char *env_get(const struct local_env *env, const char *key)
{
	size_t n = strlen(key);

	for (size_t i = 0; i < env->n; i++)
		if (strncmp(env->v[i], key, n) == 0 && env->v[i][n] == '=')
			return env->v[i] + n + 1;
	return NULL;
}

/* Parse s after the provider's own entries (no tarball); *n_secrets: how many it added. */
static int parse(const char *s, struct local_env *env, size_t *n_secrets, struct err *e)
{
	size_t base;
	int r;

	memset(env, 0, sizeof(*env));
	assert_int_equal(local_env_base(env, HOME, "runnerd-runner", false), 0);
	base = env->n;
	r = local_env_add_secrets(env, s, e);
	if (n_secrets)
		*n_secrets = env->n - base;
	assert_null(env->v[env->n]);
	return r;
}

/* s is refused with -EINVAL and a message that holds want and not the value secret. */
static void refused(const char *s, const char *want, const char *secret)
{
	struct local_env env;
	struct err e = {0};

	assert_int_equal(parse(s, &env, NULL, &e), -EINVAL);
	if (!strstr(e.msg, want))
		fail_msg("%s: message \"%s\" lacks \"%s\"", s, e.msg, want);
	if (secret)
		assert_null(strstr(e.msg, secret));
	local_env_wipe(&env);
}

static void test_env_base(void **state)
{
	struct local_env env = {0};

	assert_int_equal(local_env_base(&env, HOME, "runnerd-runner", false), 0);
	assert_int_equal(env.n, 5);
	assert_string_equal(env_get(&env, "PATH"), "/usr/local/bin:/usr/bin:/bin");
	assert_string_equal(env_get(&env, "HOME"), HOME);
	assert_string_equal(env_get(&env, "RUNNERD_HOME"), HOME);
	assert_string_equal(env_get(&env, "LANG"), "C.UTF-8");
	assert_string_equal(env_get(&env, "USER"), "runnerd-runner");
	assert_null(env_get(&env, "RUNNERD_RUNNER_TARBALL"));
	assert_null(env.v[env.n]);
	local_env_wipe(&env);
	assert_null(env.v);
	assert_int_equal(env.n, 0);

	assert_int_equal(local_env_base(&env, HOME, "u", true), 0);
	assert_int_equal(env.n, 6);
	assert_string_equal(env_get(&env, "RUNNERD_RUNNER_TARBALL"), HOME "/runner.tar.gz");
	local_env_wipe(&env);
	local_env_wipe(&env); /* twice is harmless */
}

static void test_env_values(void **state)
{
	struct local_env env;
	struct err e = {0};
	size_t n;

	/* literal to the end of the line, '=' and spaces included */
	assert_int_equal(parse("PLAIN=x=y\nSP=a b  c\nEMPTY=\n", &env, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_string_equal(env_get(&env, "PLAIN"), "x=y");
	assert_string_equal(env_get(&env, "SP"), "a b  c");
	assert_string_equal(env_get(&env, "EMPTY"), "");
	local_env_wipe(&env);

	/* one single-quoted word, as runner_secret_env writes it: 'it'\''s' */
	assert_int_equal(parse("Q='it'\\''s'\nQ2='s3cr3t-jit '\\''value'\\'' with spaces'\n"
	                       "Q3=''\nQ4='a\\b$c\"d'\n",
	                       &env, &n, &e),
	                 0);
	assert_int_equal(n, 4);
	assert_string_equal(env_get(&env, "Q"), "it's");
	assert_string_equal(env_get(&env, "Q2"), "s3cr3t-jit 'value' with spaces");
	assert_string_equal(env_get(&env, "Q3"), "");
	assert_string_equal(env_get(&env, "Q4"), "a\\b$c\"d"); /* nothing is special inside '' */
	local_env_wipe(&env);

	/* a quoted word may span lines; a backslash outside quotes escapes one character */
	assert_int_equal(parse("MULTI='line1\nit'\\''s line2'\nB=2", &env, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(env_get(&env, "MULTI"), "line1\nit's line2");
	assert_string_equal(env_get(&env, "B"), "2");
	local_env_wipe(&env);
	assert_int_equal(parse("E='a'\\ 'b'\\x\n", &env, &n, &e), 0);
	assert_string_equal(env_get(&env, "E"), "a bx");
	local_env_wipe(&env);

	/* keys: letters, digits (not first), underscores, either case */
	assert_int_equal(
	        parse("_A1=1\nlower_case=2\nACTIONS_RUNNER_INPUT_JITCONFIG=abc\n", &env, &n, &e),
	        0);
	assert_int_equal(n, 3);
	assert_string_equal(env_get(&env, "ACTIONS_RUNNER_INPUT_JITCONFIG"), "abc");
	local_env_wipe(&env);

	/* a value keeps a carriage return: the format is lines of \n */
	assert_int_equal(parse("CR=v\r\n", &env, &n, &e), 0);
	assert_string_equal(env_get(&env, "CR"), "v\r");
	local_env_wipe(&env);
}

static void test_env_blank_lines(void **state)
{
	struct local_env env;
	struct err e = {0};
	size_t n;

	assert_int_equal(parse("", &env, &n, &e), 0);
	assert_int_equal(n, 0);
	local_env_wipe(&env);
	assert_int_equal(parse("\n\n\n", &env, &n, &e), 0);
	assert_int_equal(n, 0);
	local_env_wipe(&env);
	assert_int_equal(parse("\nA=1\n\n\nB=2\n\n", &env, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(env_get(&env, "A"), "1");
	assert_string_equal(env_get(&env, "B"), "2");
	local_env_wipe(&env);
	/* no newline at the end */
	assert_int_equal(parse("A=1", &env, &n, &e), 0);
	assert_int_equal(n, 1);
	local_env_wipe(&env);
	/* a line of blanks is not blank: it is a bad key */
	refused("A=1\n \nB=2\n", "line 2: expected KEY=value", NULL);
}

static void test_env_duplicates(void **state)
{
	refused("A=1\nA=2\n", "line 2: A is reserved or repeated", NULL);
	refused("A='x'\nB=y\nA='TOP-SECRET'\n", "line 3: A is reserved or repeated", "TOP-SECRET");
	/* keys are case-sensitive */
	{
		struct local_env env;
		size_t n;
		assert_int_equal(parse("a=1\nA=2\n", &env, &n, NULL), 0);
		assert_int_equal(n, 2);
		local_env_wipe(&env);
	}
	/* a key that is a prefix of another is another key */
	{
		struct local_env env;
		size_t n;
		assert_int_equal(parse("AB=1\nA=2\nABC=3\n", &env, &n, NULL), 0);
		assert_int_equal(n, 3);
		assert_string_equal(env_get(&env, "A"), "2");
		local_env_wipe(&env);
	}
}

static void test_env_bad_keys(void **state)
{
	refused("1BAD=x\n", "line 1: expected KEY=value", NULL);
	refused("K\n", "line 1: expected KEY=value", NULL);
	refused("=x\n", "line 1: expected KEY=value", NULL);
	refused("K-1=x\n", "line 1: expected KEY=value", NULL);
	refused(" K=x\n", "line 1: expected KEY=value", NULL);
	refused("K =x\n", "line 1: expected KEY=value", NULL);
	refused("export K=x\n", "line 1: expected KEY=value", NULL);
	refused("K.x=1\n", "line 1: expected KEY=value", NULL);
	refused("A=1\n\xc3\xa9=2\n", "line 2: expected KEY=value", NULL);
}

/* A secret must not redirect what the provider sets. */
static void test_env_reserved(void **state)
{
	static const char *const reserved[] = {"PATH", "HOME", "LANG", "USER", "RUNNERD_HOME"};
	char line[64];

	for (size_t i = 0; i < ARRAY_SIZE(reserved); i++) {
		char want[64];
		snprintf(line, sizeof(line), "%s=/root\n", reserved[i]);
		snprintf(want, sizeof(want), "line 1: %s is reserved", reserved[i]);
		refused(line, want, "/root");
	}
	refused("HOME=/root\n", "secret_env: line 1", NULL);
	/* the tarball's variable is reserved when there is a tarball */
	{
		struct local_env env = {0};
		struct err e = {0};
		assert_int_equal(local_env_base(&env, HOME, "u", true), 0);
		assert_int_equal(local_env_add_secrets(&env, "RUNNERD_RUNNER_TARBALL=/x\n", &e),
		                 -EINVAL);
		assert_non_null(strstr(e.msg, "RUNNERD_RUNNER_TARBALL is reserved"));
		local_env_wipe(&env);
	}
	{
		struct local_env env;
		size_t n;
		assert_int_equal(
		        parse("RUNNERD_RUNNER_TARBALL=/x\nPATHS=1\nHOME2=2\n", &env, &n, NULL), 0);
		assert_int_equal(n, 3);
		assert_string_equal(env_get(&env, "HOME"), HOME);
		local_env_wipe(&env);
	}
}

static void test_env_quoting_errors(void **state)
{
	/* messages name the line and the key, never the value */
	refused("MY_SECRET='unterminated-S3CRET\n", "line 1: MY_SECRET: bad quoting", "S3CRET");
	refused("A=1\nMY_SECRET='unterminated-S3CRET", "line 2: MY_SECRET: bad quoting", "S3CRET");
	refused("K='a'b\n", "K: bad quoting", NULL);
	refused("K='a' \n", "K: bad quoting", NULL);
	refused("K='a'\"b\"\n", "K: bad quoting", NULL);
	refused("K='S3CRET'\\", "K: bad quoting", "S3CRET"); /* a backslash with nothing after */
	refused("K='x'''''y'\n", "K: bad quoting", NULL);
	/* line numbers count the lines of a quoted value */
	refused("A='1\n2\n3'\nB=ok\nC='S3CRET\n", "line 5: C: bad quoting", "S3CRET");
}

static void test_env_size_limits(void **state)
{
	struct local_env env;
	struct err e = {0};
	size_t n;
	char *s = malloc(LOCAL_SECRET_MAX + 2);

	assert_non_null(s);
	/* exactly the limit: one long value */
	memset(s, 'v', LOCAL_SECRET_MAX);
	memcpy(s, "K=", 2);
	s[LOCAL_SECRET_MAX] = '\0';
	assert_int_equal(parse(s, &env, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(strlen(env_get(&env, "K")), LOCAL_SECRET_MAX - 2);
	local_env_wipe(&env);
	/* quoted, the same bytes hold a shorter value */
	s[2] = '\'';
	s[LOCAL_SECRET_MAX - 1] = '\'';
	assert_int_equal(parse(s, &env, &n, &e), 0);
	assert_int_equal(strlen(env_get(&env, "K")), LOCAL_SECRET_MAX - 4);
	local_env_wipe(&env);
	/* one byte more is refused before anything is parsed */
	memset(s, 'v', LOCAL_SECRET_MAX + 1);
	memcpy(s, "K=", 2);
	s[LOCAL_SECRET_MAX + 1] = '\0';
	assert_int_equal(parse(s, &env, &n, &e), -E2BIG);
	assert_int_equal(n, 0);
	assert_non_null(strstr(e.msg, "larger than"));
	local_env_wipe(&env);
	/* many short entries */
	{
		size_t len = 0;
		for (int i = 0; len + 16 < LOCAL_SECRET_MAX && i < 5000; i++)
			len += (size_t)snprintf(s + len, 16, "K%d=%d\n", i, i);
		assert_int_equal(parse(s, &env, &n, &e), 0);
		assert_int_equal(n, 5000);
		assert_string_equal(env_get(&env, "K4999"), "4999");
		local_env_wipe(&env);
	}
	free(s);
}

/* ---- /proc text ------------------------------------------------------- */

static void test_proc_stat(void **state)
{
	struct local_proc_info pi = {0}, keep = {.state = '?', .session = 7, .starttime = 9};
	char line[512];

	snprintf(line, sizeof(line),
	         "1234 (sleep) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 "
	         "987654 8192 100 18446744073709551615\n");
	assert_int_equal(local_proc_parse_stat(line, &pi), 0);
	assert_int_equal(pi.state, 'S');
	assert_int_equal(pi.session, 1234);
	assert_int_equal(pi.starttime, 987654);

	/* a command name with spaces and parentheses: fields start after the last ')' */
	snprintf(line, sizeof(line),
	         "42 (a) Z 9 9 (x) y) R 1 42 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 555 0 0\n");
	assert_int_equal(local_proc_parse_stat(line, &pi), 0);
	assert_int_equal(pi.state, 'R');
	assert_int_equal(pi.session, 77);
	assert_int_equal(pi.starttime, 555);
	assert_true(local_proc_dead_state('Z'));
	assert_true(local_proc_dead_state('X'));
	assert_true(local_proc_dead_state('x'));
	assert_false(local_proc_dead_state('S'));
	assert_false(local_proc_dead_state('R'));

	/* malformed: ret untouched */
	pi = keep;
	assert_int_equal(local_proc_parse_stat("", &pi), -EIO);
	assert_int_equal(local_proc_parse_stat("1 (x S 1 1 1", &pi), -EIO);
	assert_int_equal(local_proc_parse_stat("1 (x) S 1 1 1 0 -1 0", &pi), -EIO); /* short */
	assert_int_equal(
	        local_proc_parse_stat("1 (x) S 1 1 x 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5", &pi),
	        -EIO); /* a session that is no number */
	assert_int_equal(local_proc_parse_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 "
	                                       "99999999999999999999999",
	                                       &pi),
	                 -EIO); /* a start time out of range */
	assert_int_equal(pi.state, '?');
	assert_int_equal(pi.session, 7);
	assert_int_equal(pi.starttime, 9);
}

static void test_proc_uid(void **state)
{
	uid_t uid = 4242;

	assert_int_equal(
	        local_proc_parse_uid("Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\n"
	                             "Uid:\t998\t998\t998\t998\nGid:\t998\t998\t998\t998\n",
	                             &uid),
	        0);
	assert_int_equal(uid, 998);
	/* a process that could regain another uid is nobody's to signal */
	uid = 4242;
	assert_int_equal(local_proc_parse_uid("Name:\tx\nUid:\t998\t0\t0\t0\n", &uid), -EPERM);
	assert_int_equal(local_proc_parse_uid("Name:\tx\nUid:\t998\t998\t0\t998\n", &uid), -EPERM);
	assert_int_equal(local_proc_parse_uid("Name:\tx\nUid:\t998\t998\t998\t0\n", &uid), -EPERM);
	/* no Uid line at the start of a line, or too few numbers */
	assert_int_equal(local_proc_parse_uid("Uid:\t1\t1\t1\t1\n", &uid), -EIO);
	assert_int_equal(local_proc_parse_uid("Name:\tUid: 1 1 1 1\n", &uid), -EIO);
	assert_int_equal(local_proc_parse_uid("Name:\tx\nUid:\t1\t1\t1\n", &uid), -EIO);
	assert_int_equal(local_proc_parse_uid("", &uid), -EIO);
	assert_int_equal(uid, 4242);
}

/* All four uids and gids: a uid is in use whichever of them has it. */
static void test_proc_ids(void **state)
{
	struct local_proc_ids ids;

	assert_int_equal(
	        local_proc_parse_ids("Name:\tx\nUid:\t5\t6\t7\t8\nGid:\t9\t10\t11\t12\n", &ids), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(ids.uid[i], 5 + i);
		assert_int_equal(ids.gid[i], 9 + i);
	}
	assert_int_equal(local_proc_parse_ids("Name:\tx\nUid:\t1\t1\t1\t1\n", &ids), -EIO);
	assert_int_equal(local_proc_parse_ids("Name:\tx\nGid:\t1\t1\t1\t1\n", &ids), -EIO);
	assert_int_equal(local_proc_parse_ids(
	                         "Name:\tx\nUid:\t1\t1\t1\t99999999999\nGid:\t1\t1\t1\t1\n", &ids),
	                 -EIO);
	assert_int_equal(local_proc_parse_ids("Name:\tx\nUid:\t1\t1\t1\nGid:\t1\t1\t1\t1\n", &ids),
	                 -EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_env_base),           cmocka_unit_test(test_env_values),
	        cmocka_unit_test(test_env_blank_lines),    cmocka_unit_test(test_env_duplicates),
	        cmocka_unit_test(test_env_bad_keys),       cmocka_unit_test(test_env_reserved),
	        cmocka_unit_test(test_env_quoting_errors), cmocka_unit_test(test_env_size_limits),
	        cmocka_unit_test(test_proc_stat),          cmocka_unit_test(test_proc_uid),
	        cmocka_unit_test(test_proc_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
