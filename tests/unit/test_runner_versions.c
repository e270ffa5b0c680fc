/*
 * Runner versions: the helpers of src/runner/runner_version (order, how far
 * behind, the floor, the note) and a run of the startup script that
 * replaces an image's runner below the floor and notes a refused one.
 */
#include "runner_fixture.h"

/*
 * Runner versions: an image's runner older than the floor runnerd renders is
 * replaced from the verified package and noted; one at the floor is used as
 * is; a runner GitHub refused ("deprecated" in its _diag log) is noted.
 */
static void test_run_image_version(void **state)
{
	static const char listener[] = "#!/bin/sh\n[ \"$1\" = --version ] && echo 2.300.0\n";
	static const char refused_log[] =
	        "[2026-12-01 10:00:00Z ERR  Listener] An error occured: Runner version v2.300.0 "
	        "is deprecated and cannot receive messages.\n";

	for (size_t k = 0; k < ARRAY_SIZE(shells); k++) {
		for (int c = 0; c < 3; c++) {
			struct fixture_cfg f;
			struct sandbox sb;
			char pkg[PATH_MAX + 32], pkg_env[PATH_MAX + 64], sum[65], p[PATH_MAX + 64];
			const char *extra[] = {pkg_env, "ACTIONS_RUNNER_INPUT_JITCONFIG=j", NULL};
			char *note;

			if (!have_busybox && k == 1)
				continue;
			sb_init(&sb, "imgver");
			pathf(pkg, sizeof(pkg), "%s/pkg.tar.gz", sb.dir);
			make_package(&sb, pkg);
			sha256_hex(pkg, sum);
			pathf(p, sizeof(p), "%s/bin", sb.runner);
			assert_int_equal(mkdir(p, 0700), 0);
			pathf(p, sizeof(p), "%s/bin/Runner.Listener", sb.runner);
			write_file(p, listener, 0755);
			case_jit_image(&f);
			f.opts.image_dir = sb.runner;
			f.opts.sha256 = sum;
			/* 0: older than the floor; 1: at it; 2: at it, and GitHub refused it */
			f.opts.image_min_version = c == 0 ? "2.310.0" : "2.300.0";
			if (c == 2) {
				pathf(p, sizeof(p), "%s/_diag", sb.runner);
				assert_int_equal(mkdir(p, 0700), 0);
				pathf(p, sizeof(p), "%s/_diag/Runner_20261201-100000-utc.log",
				      sb.runner);
				write_file(p, refused_log, 0644);
				sb_put(&sb, "exit-code", "1");
			}
			sb_render(&sb, &f.opts);
			pathf(pkg_env, sizeof(pkg_env), "RUNNERD_RUNNER_TARBALL=%s", pkg);
			sb_put(&sb, "expect-jit", "j");
			assert_int_equal(sb_run(&sb, shells[k], extra), c == 2 ? 1 : 0);
			sb_no_violation(&sb);
			note = home_get(&sb, "metrics/" RUNNER_VERSION_NOTE);
			if (c == 0) {
				/* replaced: the package was unpacked and ran, and runnerd is told
				 */
				assert_true(home_has(&sb, "runner/run.sh"));
				assert_non_null(note);
				assert_string_equal(note, "image=2.300.0\n");
			} else if (c == 1) {
				assert_false(home_has(&sb, "runner/run.sh"));
				assert_null(note);
			} else {
				assert_false(home_has(&sb, "runner/run.sh"));
				assert_non_null(note);
				assert_string_equal(note, "refused=2.300.0\n");
			}
			free(note);
			sb_free(&sb);
		}
	}
}

/* The runner version helpers: order, how far behind, the floor, the note. */
static void test_runner_versions(void **state)
{
	const struct runner_release rel[] = {
	        {"2.322.0", 1000 * 86400},
	        {"2.321.0", 980 * 86400},
	        {"2.320.0", 900 * 86400},
	};
	struct runner_version_note n;
	char floor[32];

	assert_true(runner_version_cmp("2.321.0", "2.320.9") > 0);
	assert_true(runner_version_cmp("v2.10.0", "2.9.0") > 0);
	assert_true(runner_version_cmp("2.321", "2.321.0") == 0);
	assert_true(runner_version_cmp("junk", "2.0.0") < 0);
	assert_false(runner_version_valid("2..1"));
	assert_false(runner_version_valid("2.1.0-rc1"));
	assert_false(runner_version_valid("1234567890.1"));
	assert_true(runner_version_valid("v2.321.0"));

	/* 2.320.0 was superseded by 2.321.0 (day 980), 2.322.0 by nothing */
	assert_int_equal(runner_version_behind_since(rel, 3, "2.320.0"), 980 * 86400);
	assert_int_equal(runner_version_behind_since(rel, 3, "2.322.0"), 0);
	assert_int_equal(runner_version_behind_since(rel, 3, "2.100.0"), 900 * 86400);

	/* day 1010, 21 days: releases out by day 989 -> 2.321.0 is the floor */
	runner_version_floor(rel, 3, 1010 * 86400, 21 * 86400, floor, sizeof(floor));
	assert_string_equal(floor, "2.321.0");
	runner_version_floor(rel, 3, 1030 * 86400, 21 * 86400, floor, sizeof(floor));
	assert_string_equal(floor, "2.322.0");
	runner_version_floor(rel, 3, 910 * 86400, 21 * 86400, floor, sizeof(floor));
	assert_string_equal(floor, "");

	{
		static const char ok[] = "image=2.300.0\nrefused=v2.301.0\n";
		assert_int_equal(runner_version_note_parse(ok, strlen(ok), &n), 0);
	}
	assert_string_equal(n.image, "2.300.0");
	assert_string_equal(n.refused, "2.301.0");
	assert_int_equal(runner_version_note_parse("", 0, &n), 0);
	assert_string_equal(n.image, "");
	assert_int_equal(runner_version_note_parse("image=$(reboot)\n", 16, &n), -EBADMSG);
	assert_int_equal(runner_version_note_parse("other=2.0.0\n", 12, &n), -EBADMSG);
	assert_int_equal(runner_version_note_parse("image 2.0.0\n", 12, &n), -EBADMSG);
	assert_int_equal(runner_version_note_parse("image=2.0\0.0\n", 12, &n), -EBADMSG);
	{
		char big[RUNNER_VERSION_NOTE_MAX + 2];
		memset(big, '\n', sizeof(big));
		assert_int_equal(runner_version_note_parse(big, sizeof(big), &n), -E2BIG);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_run_image_version),
	        cmocka_unit_test(test_runner_versions),
	};
	return cmocka_run_group_tests(tests, runner_fixture_setup, runner_fixture_teardown);
}
