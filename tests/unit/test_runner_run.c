/*
 * Real runs of the startup script under sh and busybox sh against a fake
 * runner (runner_fixture.c's sandbox): JIT from the environment or from
 * secret.env, registration with hostile values, where secrets go, the job
 * hooks' metrics, failures that still end the machine, the poweroff end.
 */
#include "runner_fixture.h"

static void strncat_safe(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(dst);
	if (snprintf(dst + n, cap - n, "%s", src) >= (int)(cap - n))
		fail_msg("string too long");
}

/* JIT from the environment (the local provider), a job that succeeds. */
static void test_run_jit_normal(void **state)
{
	static const char jit[] = "eyJ'jit\"$(touch pwned)";
	static const char workflow[] = "CI \"build\" \\ tab\tctl\001 nl\nend é";
	char jit_env[128];

	snprintf(jit_env, sizeof(jit_env), "ACTIONS_RUNNER_INPUT_JITCONFIG=%s", jit);
	for (size_t k = 0; k < ARRAY_SIZE(shells); k++) {
		/* The real runner runs .sh hooks with bash -e. */
		const char *extra[] = {jit_env, k == 0 ? "FAKE_HOOK_SHELL=bash -e" : NULL, NULL};
		struct fixture_cfg f;
		struct sandbox sb;
		json_t *j;
		char *env, *s;

		if (!have_busybox && k == 1)
			continue;
		sb_init(&sb, "jit");
		case_proxy(&f);
		f.opts.image_dir = sb.runner;
		sb_render(&sb, &f.opts);
		sb_put(&sb, "expect-jit", jit);
		sb_put(&sb, "workflow", workflow);
		assert_int_equal(sb_run(&sb, shells[k], extra), 0);
		sb_no_violation(&sb);
		s = sb_get(&sb, "ran");
		assert_non_null(s);
		free(s);

		assert_timestamp_file(&sb, "runner-installation-start.timestamp");
		assert_timestamp_file(&sb, "runner-installed.timestamp");
		j = load_json(&sb, "pre-job-metrics.json");
		assert_string_equal(json_str(j, "workflow"), workflow);
		assert_string_equal(json_str(j, "repository"), "octo/re\"po");
		assert_string_equal(json_str(j, "event"), "push");
		assert_string_equal(json_str(j, "workflow_run_id"), "4242");
		assert_true(json_int(j, "timestamp") > 1600000000);
		json_decref(j);
		assert_post_job(&sb, "normal", 0);

		/* The env file, and what run.sh got. */
		env = home_get(&sb, ".env");
		assert_non_null(env);
		assert_non_null(strstr(env, "LANG=C.UTF-8\n"));
		assert_non_null(strstr(env, "HTTP_PROXY=http://proxy.example:3128\n"));
		assert_non_null(strstr(env, "https_proxy=http://proxy.example:3129\n"));
		assert_non_null(strstr(env, "NO_PROXY=localhost,127.0.0.1,.internal\n"));
		assert_non_null(strstr(env, "ACTIONS_RUNNER_HOOK_JOB_STARTED="));
		assert_non_null(strstr(env, "/hooks/pre-job.sh\n"));
		assert_null(strstr(env, "eyJ"));
		free(env);
		env = sb_get(&sb, "run-env");
		assert_non_null(strstr(env, "http_proxy=http://proxy.example:3128\n"));
		assert_non_null(strstr(env, "RUNNERD_HOME="));
		free(env);
		{
			struct stat st;
			char p[PATH_MAX + 16];
			pathf(p, sizeof(p), "%s/.env", sb.home);
			assert_int_equal(stat(p, &st), 0);
			assert_int_equal(st.st_mode & 077, 0);
		}
		check_hooks_syntax(&sb);
		assert_false(home_has(&sb, "pwned"));
		sb_free(&sb);
	}
}

/* The secret in secret.env (LXD, OpenStack); run.sh fails. */
static void test_run_secret_file_abnormal(void **state)
{
	static const char jit[] = "eyJ'x\nsecond line $(touch pwned) `touch pwned2`";
	for (size_t k = 0; k < ARRAY_SIZE(shells); k++) {
		struct buf sec = BUF_INIT(4096);
		struct fixture_cfg f;
		struct sandbox sb;
		char p[PATH_MAX + 16];

		if (!have_busybox && k == 1)
			continue;
		sb_init(&sb, "secfile");
		case_jit_image(&f);
		f.opts.image_dir = sb.runner;
		sb_render(&sb, &f.opts);
		assert_int_equal(runner_secret_env(jit, true, &sec), 0);
		pathf(p, sizeof(p), "%s/secret.env", sb.home);
		write_file(p, buf_str(&sec), 0600);
		buf_wipe(&sec);
		sb_put(&sb, "expect-jit", jit);
		sb_put(&sb, "exit-code", "3");
		assert_int_equal(sb_run(&sb, shells[k], NULL), 3);
		sb_no_violation(&sb);
		assert_false(home_has(&sb, "secret.env"));
		assert_post_job(&sb, "abnormal", 3);
		assert_false(home_has(&sb, "pwned"));
		assert_false(exists("pwned"));
		sb_free(&sb);
	}
}

/* JIT off, hostile values everywhere: config.sh gets them verbatim. */
static void test_run_nojit_hostile(void **state)
{
	static const char token[] = "AABB'tok$(touch pwned)";
	char all[512] = "";

	/* Every value alone under sh; all of them in one value under both. */
	for (size_t i = 0; i < ARRAY_SIZE(hostile_values); i++)
		strncat_safe(all, sizeof(all), hostile_values[i]);
	for (size_t k = 0; k < ARRAY_SIZE(shells); k++) {
		for (size_t i = 0; i <= ARRAY_SIZE(hostile_values); i++) {
			const char *h = i < ARRAY_SIZE(hostile_values) ? hostile_values[i] : all;
			struct buf sec = BUF_INIT(4096);
			struct fixture_cfg f;
			struct sandbox sb;
			char label[600], p[PATH_MAX + 16], want[4096], *args;
			size_t wn = 0, an;
			const char *expect[] = {"--url",         "https://github.com/octo",
			                        "--ephemeral",   "--unattended",
			                        "--name",        h,
			                        "--labels",      NULL,
			                        "--runnergroup", h,
			                        "--work",        "_work"};
			char joined[700];

			if ((!have_busybox || i < ARRAY_SIZE(hostile_values)) && k == 1)
				continue;
			sb_init(&sb, "hostile 'q' $(x)");
			hostile_config(&f, h, label, sizeof(label));
			f.opts.image_dir = sb.runner;
			f.opts.home = NULL;
			f.opts.tarball = NULL;
			sb_render(&sb, &f.opts);
			assert_int_equal(runner_secret_env(token, false, &sec), 0);
			pathf(p, sizeof(p), "%s/secret.env", sb.home);
			write_file(p, buf_str(&sec), 0600);
			buf_wipe(&sec);
			sb_put(&sb, "expect-token", token);
			assert_int_equal(sb_run(&sb, shells[k], NULL), 0);
			sb_no_violation(&sb);

			snprintf(joined, sizeof(joined), "self-hosted,linux,x64,%s", label);
			expect[7] = joined;
			for (size_t a = 0; a < ARRAY_SIZE(expect); a++) {
				size_t l = strlen(expect[a]) + 1;
				assert_true(wn + l < sizeof(want));
				memcpy(want + wn, expect[a], l);
				wn += l;
			}
			sb_path(&sb, p, sizeof(p), "config-args");
			{
				struct buf b = BUF_INIT(8192);
				assert_int_equal(file_read(p, b.max, false, &b, NULL), 0);
				an = b.len;
				args = buf_detach(&b, NULL);
			}
			assert_int_equal(an, wn);
			assert_memory_equal(args, want, wn);
			free(args);
			/* The hostile policy URL is intact, and with no token the check
			 * fails closed before any request. */
			args = sb_get(&sb, "hook-rc");
			assert_non_null(args);
			assert_string_equal(args, "1\n");
			free(args);
			assert_null(args = sb_get(&sb, "curl-args"));
			assert_post_job(&sb, "repo-policy-check-failure", 1);
			check_hooks_syntax(&sb);
			/* A newline cannot go into .env: that variable is left out. */
			args = home_get(&sb, ".env");
			assert_non_null(args);
			if (!strchr(h, '\n'))
				assert_non_null(strstr(args, h));
			free(args);
			pathf(p, sizeof(p), "%s", sb.dir);
			assert_int_equal(
			        run_cmd((char *[]){(char *)"/bin/sh", (char *)"-c",
			                           (char *)"! find . -name 'pwned*' | grep -q .",
			                           NULL},
			                NULL, sb.dir, NULL),
			        0);
			sb_free(&sb);
		}
	}
}

/* Nothing to run: still metrics, still an end. config.sh failing likewise. */
static void test_run_failures(void **state)
{
	for (size_t k = 0; k < ARRAY_SIZE(shells); k++) {
		const char *extra[] = {"ACTIONS_RUNNER_INPUT_TOKEN=tok", NULL};
		struct fixture_cfg f;
		struct sandbox sb;
		char *s;

		if (!have_busybox && k == 1)
			continue;
		sb_init(&sb, "norunner");
		case_jit_image(&f);
		f.opts.image_dir = "/nonexistent";
		sb_render(&sb, &f.opts);
		assert_int_equal(sb_run(&sb, shells[k], NULL), 1);
		assert_timestamp_file(&sb, "runner-installation-start.timestamp");
		assert_false(home_has(&sb, "metrics/runner-installed.timestamp"));
		assert_true(home_has(&sb, "hooks/pre-job.sh"));
		assert_true(home_has(&sb, ".env"));
		assert_post_job(&sb, "abnormal", 1);
		sb_free(&sb);

		sb_init(&sb, "configfail");
		case_nojit_repo_simulator(&f);
		f.opts.image_dir = sb.runner;
		sb_render(&sb, &f.opts);
		sb_put(&sb, "expect-token", "tok");
		sb_put(&sb, "config-exit", "5");
		assert_int_equal(sb_run(&sb, shells[k], extra), 5);
		sb_no_violation(&sb);
		assert_null(s = sb_get(&sb, "ran"));
		assert_post_job(&sb, "abnormal", 5);
		sb_free(&sb);

		/* JIT expected, none given. */
		sb_init(&sb, "nojit");
		case_jit_image(&f);
		f.opts.image_dir = sb.runner;
		sb_render(&sb, &f.opts);
		assert_int_equal(sb_run(&sb, shells[k], NULL), 1);
		assert_null(s = sb_get(&sb, "ran"));
		assert_post_job(&sb, "abnormal", 1);
		sb_free(&sb);
	}
}

/*
 * End action poweroff, with a fake poweroff first in PATH (and no sbin).
 * Careful: busybox sh may prefer its own applets to PATH, so its poweroff
 * would be the real one. The run happens only when the very shell that runs
 * the script resolves poweroff and halt to the fakes; otherwise it is skipped.
 */
static void test_run_poweroff(void **state)
{
	int ran = 0;

	for (size_t k = 0; k < ARRAY_SIZE(shells); k++) {
		const char *extra[] = {"ACTIONS_RUNNER_INPUT_JITCONFIG=j", NULL};
		char check[PATH_MAX * 2 + 128], path_env[PATH_MAX + 32], out[PATH_MAX + 32];
		char *argv_sh[] = {(char *)"/bin/sh", (char *)"-c", check, NULL};
		char *argv_bb[] = {(char *)"/usr/bin/busybox", (char *)"sh", (char *)"-c", check,
		                   NULL};
		struct fixture_cfg f;
		struct sandbox sb;
		char *s;
		bool fake;

		if (!have_busybox && k == 1)
			continue;
		sb_init(&sb, "poweroff");
		pathf(path_env, sizeof(path_env), "PATH=%s:/usr/bin:/bin", sb.bin);
		pathf(out, sizeof(out), "%s/which", sb.dir);
		pathf(check, sizeof(check), "command -v poweroff >%s; command -v halt >>%s", out,
		      out);
		run_cmd(k == 1 ? argv_bb : argv_sh, (char *[]){path_env, NULL}, NULL, NULL);
		s = read_text(out);
		pathf(check, sizeof(check), "%s/poweroff\n%s/halt\n", sb.bin, sb.bin);
		fake = s && strcmp(s, check) == 0;
		free(s);
		if (!fake) {
			fprintf(stderr, "%s resolves poweroff to a real one: run skipped\n",
			        shells[k]);
			sb_free(&sb);
			continue;
		}

		case_jit_image(&f);
		f.opts.end = RUNNER_END_POWEROFF;
		f.opts.image_dir = sb.runner;
		sb_render(&sb, &f.opts);
		sb_put(&sb, "expect-jit", "j");
		sb_put(&sb, "exit-code", "7");
		assert_int_equal(sb_run(&sb, shells[k], extra), 7);
		sb_no_violation(&sb);
		s = sb_get(&sb, "ended");
		assert_non_null(s);
		assert_string_equal(s, "poweroff\n");
		free(s);
		assert_post_job(&sb, "abnormal", 7);
		sb_free(&sb);
		ran++;
	}
	assert_true(ran >= 1); /* dash resolves through PATH */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_run_jit_normal),
	        cmocka_unit_test(test_run_secret_file_abnormal),
	        cmocka_unit_test(test_run_nojit_hostile),
	        cmocka_unit_test(test_run_failures),
	        cmocka_unit_test(test_run_poweroff),
	};
	return cmocka_run_group_tests(tests, runner_fixture_setup, runner_fixture_teardown);
}
