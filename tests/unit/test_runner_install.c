/*
 * Real runs of the startup script that install the runner and what jobs
 * need: the runner package from a tarball or a download (checked against its
 * sha256, with a deadline against a server that never answers), snaps and
 * executables (runner.install), and the pre-job script.
 */
#include "runner_fixture.h"

/* The runner package from $RUNNERD_RUNNER_TARBALL, checked, then a bad sum. */
static void test_run_tarball(void **state)
{
	for (size_t k = 0; k < ARRAY_SIZE(shells); k++) {
		for (int good = 1; good >= 0; good--) {
			struct fixture_cfg f;
			struct sandbox sb;
			char pkg[PATH_MAX + 32], pkg_env[PATH_MAX + 64], sum[65], *s;
			const char *extra[] = {pkg_env, "ACTIONS_RUNNER_INPUT_JITCONFIG=j", NULL};

			if (!have_busybox && k == 1)
				continue;
			sb_init(&sb, "tarball");
			pathf(pkg, sizeof(pkg), "%s/pkg.tar.gz", sb.dir);
			make_package(&sb, pkg);
			sha256_hex(pkg, sum);
			if (!good)
				sum[0] = sum[0] == '0' ? '1' : '0';
			case_jit_image(&f);
			f.opts.image_dir = "/nonexistent/runner";
			f.opts.tarball = "/nonexistent/default.tar.gz"; /* the env wins */
			f.opts.sha256 = sum;
			sb_render(&sb, &f.opts);
			pathf(pkg_env, sizeof(pkg_env), "RUNNERD_RUNNER_TARBALL=%s", pkg);
			sb_put(&sb, "expect-jit", "j");
			if (good) {
				assert_int_equal(sb_run(&sb, shells[k], extra), 0);
				sb_no_violation(&sb);
				assert_true(home_has(&sb, "runner/run.sh"));
				assert_non_null(s = sb_get(&sb, "ran"));
				free(s);
				assert_post_job(&sb, "normal", 0);
				assert_timestamp_file(&sb, "runner-installed.timestamp");
			} else {
				assert_int_equal(sb_run(&sb, shells[k], extra), 1);
				assert_false(home_has(&sb, "runner/run.sh"));
				assert_null(s = sb_get(&sb, "ran"));
				assert_post_job(&sb, "abnormal", 1);
				assert_false(home_has(&sb, "metrics/runner-installed.timestamp"));
				s = read_text(sb.log);
				assert_non_null(strstr(s, "refusing"));
				free(s);
			}
			sb_free(&sb);
		}
	}
}

/*
 * runner.install: snaps through the snap command (a recording stand-in here:
 * snaps cannot run in the test container), an executable downloaded (fake
 * curl), checked against its sha256 (given in uppercase) and on run.sh's
 * PATH; a wrong sha256 ends the script before the runner, the reason logged.
 */
static void test_run_install(void **state)
{
	static const char snap_sh[] =
	        "#!/bin/sh\nprintf '%s\\n' \"$*\" >>\"$FAKE_DIR/snap-args\"\n";
	static const char tool[] = "#!/bin/sh\necho tool ran\n";

	for (size_t k = 0; k < ARRAY_SIZE(shells); k++) {
		for (int good = 1; good >= 0; good--) {
			struct config_snap snaps[] = {{"charmcraft", "latest/stable", 0},
			                              {"lxd", "5.0/stable", 24322}};
			char sum[65], upper[65], p[PATH_MAX + 64], *s;
			struct config_executable exe[] = {
			        {"https://example.internal/tool", "mytool", upper}};
			const char *extra[] = {"ACTIONS_RUNNER_INPUT_JITCONFIG=j", NULL};
			struct fixture_cfg f;
			struct sandbox sb;

			if (!have_busybox && k == 1)
				continue;
			sb_init(&sb, "install");
			pathf(p, sizeof(p), "%s/snap", sb.bin);
			write_file(p, snap_sh, 0755);
			pathf(p, sizeof(p), "%s/download.tar.gz", sb.fake);
			write_file(p, tool, 0644);
			sha256_hex(p, sum);
			if (!good)
				sum[63] = sum[63] == '0' ? '1' : '0';
			for (size_t i = 0; i < sizeof(sum); i++)
				upper[i] =
				        (char)((sum[i] >= 'a' && sum[i] <= 'f') ? sum[i] - 'a' + 'A'
				                                                : sum[i]);
			case_jit_image(&f);
			f.opts.image_dir = sb.runner;
			f.cfg.runner.snaps = snaps;
			f.cfg.runner.n_snaps = 2;
			f.cfg.runner.executables = exe;
			f.cfg.runner.n_executables = 1;
			sb_render(&sb, &f.opts);
			sb_put(&sb, "expect-jit", "j");
			assert_int_equal(sb_run(&sb, shells[k], extra), good ? 0 : 1);
			sb_no_violation(&sb);
			s = sb_get(&sb, "snap-args");
			assert_non_null(s);
			assert_string_equal(s,
			                    "install charmcraft --channel=latest/stable\n"
			                    "install lxd --channel=5.0/stable --revision=24322\n");
			free(s);
			if (good) {
				assert_true(home_has(&sb, "bin/mytool"));
				s = sb_get(&sb, "run-env");
				pathf(p, sizeof(p), "PATH=%s/bin:", sb.home);
				assert_non_null(strstr(s, p));
				free(s);
				assert_non_null(s = sb_get(&sb, "ran"));
				free(s);
			} else {
				assert_false(home_has(&sb, "bin/mytool"));
				assert_false(home_has(&sb, "bin/mytool.tmp"));
				assert_null(s = sb_get(&sb, "ran"));
				assert_post_job(&sb, "abnormal", 1);
				s = read_text(sb.log);
				assert_non_null(strstr(s, "executable mytool: sha256 of "
				                          "https://example.internal/tool is"));
				assert_non_null(strstr(s, "refusing it"));
				free(s);
			}
			sb_free(&sb);
		}
	}
}

/* runner.pre_job_script: run by the pre-job hook, its output with the job's; a failure fails the
 * hook. */
static void test_run_pre_job_script(void **state)
{
	for (size_t k = 0; k < ARRAY_SIZE(shells); k++) {
		for (int good = 1; good >= 0; good--) {
			const char *extra[] = {"ACTIONS_RUNNER_INPUT_JITCONFIG=j", NULL};
			struct fixture_cfg f;
			struct sandbox sb;
			char *s;

			if (!have_busybox && k == 1)
				continue;
			sb_init(&sb, "prejob");
			case_jit_image(&f);
			f.opts.image_dir = sb.runner;
			/* no final newline, and a line equal to the heredoc's delimiter */
			f.cfg.runner.pre_job_script =
			        good ? "echo pre-job-script says hi\nRUNNERD_PRE_JOB_SCRIPT_EOF=1\n"
			               "echo \"$GITHUB_REPOSITORY\" >\"$FAKE_DIR/pre-job-ran\""
			             : "echo about to fail\nexit 3\n";
			sb_render(&sb, &f.opts);
			sb_put(&sb, "expect-jit", "j");
			assert_int_equal(sb_run(&sb, shells[k], extra), 0);
			sb_no_violation(&sb);
			s = sb_get(&sb, "hook-rc");
			assert_non_null(s);
			assert_string_equal(s, good ? "0\n" : "3\n");
			free(s);
			s = read_text(sb.log);
			assert_non_null(
			        strstr(s, good ? "pre-job-script says hi" : "about to fail"));
			if (!good)
				assert_non_null(strstr(s, "runner.pre_job_script failed (3)"));
			free(s);
			s = sb_get(&sb, "pre-job-ran");
			if (good)
				assert_string_equal(s, "octo/re\"po\n");
			else
				assert_null(s);
			free(s);
			sb_free(&sb);
		}
	}
}

/* Downloaded (fake curl), checked against the rendered sha256. */
static void test_run_download(void **state)
{
	for (size_t k = 0; k < ARRAY_SIZE(shells); k++) {
		for (int good = 1; good >= 0; good--) {
			const char *extra[] = {"ACTIONS_RUNNER_INPUT_JITCONFIG=j", NULL};
			struct fixture_cfg f;
			struct sandbox sb;
			char pkg[PATH_MAX + 32], sum[65], *s;

			if (!have_busybox && k == 1)
				continue;
			sb_init(&sb, "download");
			sb_path(&sb, pkg, sizeof(pkg), "download.tar.gz");
			make_package(&sb, pkg);
			sha256_hex(pkg, sum);
			if (!good)
				sum[63] = sum[63] == 'a' ? 'b' : 'a';
			case_download(&f);
			f.flavor.arch = ARCH_X64;
			f.opts.home = NULL;
			f.opts.download_url = "http://127.0.0.1:1/_ghsim/downloads/r.tar.gz";
			f.opts.sha256 = sum;
			sb_render(&sb, &f.opts);
			sb_put(&sb, "expect-jit", "j");
			assert_int_equal(sb_run(&sb, shells[k], extra), good ? 0 : 1);
			s = sb_get(&sb, "download-url");
			assert_non_null(s);
			assert_string_equal(s, "http://127.0.0.1:1/_ghsim/downloads/r.tar.gz\n");
			free(s);
			assert_false(home_has(&sb, "actions-runner.tar.gz")); /* cleaned up */
			if (good) {
				sb_no_violation(&sb);
				assert_post_job(&sb, "normal", 0);
			} else {
				assert_false(home_has(&sb, "runner/run.sh"));
				assert_post_job(&sb, "abnormal", 1);
			}
			sb_free(&sb);
		}
	}
}

/*
 * docs/deadlines.md, row "Runner download inside an instance": against a
 * server that never answers, the download gives up at its deadline (2 s
 * here; the bootstrap timeout in use) and the script still writes its
 * metrics and ends: with the real curl, and (curl out of PATH) with
 * busybox's wget under its timeout applet, as the busybox test image has.
 */
static void test_run_download_silent_server(void **state)
{
	const char *extra[] = {"ACTIONS_RUNNER_INPUT_JITCONFIG=j", NULL};
	int port, fd = silent_server(&port);

	for (int use_wget = 0; use_wget <= 1; use_wget++) {
		struct fixture_cfg f;
		struct sandbox sb;
		char url[128], p[PATH_MAX + 16], bb[PATH_MAX + 16], path[2 * PATH_MAX + 64], *log;
		char *argv[] = {(char *)"/usr/bin/busybox", (char *)"--install", (char *)"-s", bb,
		                NULL};
		int64_t t0;

		if (use_wget && !have_busybox)
			continue;
		sb_init(&sb, "download-silent");
		pathf(p, sizeof(p), "%s/curl", sb.bin);
		assert_int_equal(unlink(p), 0); /* the real curl, or none */
		if (use_wget) {
			/* PATH: the fakes, then busybox's applets only (no curl) */
			pathf(bb, sizeof(bb), "%s/busybox-bin", sb.dir);
			assert_int_equal(mkdir(bb, 0700), 0);
			assert_int_equal(run_cmd(argv, NULL, sb.dir, NULL), 0);
			pathf(path, sizeof(path), "%s:%s", sb.bin, bb);
			sb.path = path;
		}
		case_download(&f);
		f.flavor.arch = ARCH_X64;
		f.opts.home = NULL;
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/_ghsim/downloads/r.tar.gz", port);
		f.opts.download_url = url;
		f.opts.sha256 = SHA_ZERO;
		f.opts.download_timeout_s = 2;
		sb_render(&sb, &f.opts);
		t0 = clock_mono_ms();
		assert_int_equal(sb_run(&sb, use_wget ? "busybox" : "sh", extra), 1);
		assert_true(clock_mono_ms() - t0 < 10000);
		log = read_text(sb.log);
		assert_non_null(strstr(log, "could not download the runner"));
		free(log);
		assert_post_job(&sb, "abnormal", 1);
		sb_free(&sb);
	}
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_run_install),
	        cmocka_unit_test(test_run_pre_job_script),
	        cmocka_unit_test(test_run_tarball),
	        cmocka_unit_test(test_run_download),
	        cmocka_unit_test(test_run_download_silent_server),
	};
	return cmocka_run_group_tests(tests, runner_fixture_setup, runner_fixture_teardown);
}
