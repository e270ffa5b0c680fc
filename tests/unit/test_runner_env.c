/*
 * Real runs of the startup script that shape the runner's machine: the
 * work directory's storage (runner.storage), the Docker Hub mirror, aproxy
 * and Docker's proxies, and the repo-policy check (refused, accepted, no
 * token, a policy service that never answers).
 */
#include "runner_fixture.h"

/*
 * runner.storage memory: a tmpfs of the configured size mounted on the
 * runner's _work (a recording stand-in for mount), owned by the user that
 * runs the runner, before the runner starts; a refused mount ends the script
 * before the runner, the reason logged. disk mounts nothing, and memory on the
 * local provider (no stand-in: the real mount) is refused without trying.
 */
static void test_run_storage(void **state)
{
	static const char mount_sh[] =
	        "#!/bin/sh\nprintf '%s\\n' \"$*\" >>\"$FAKE_DIR/mount-args\"\n"
	        "[ -d \"$6\" ] || exit 32\n"
	        "exit \"$(cat \"$FAKE_DIR/mount-exit\" 2>/dev/null || echo 0)\"\n";

	for (size_t k = 0; k < ARRAY_SIZE(shells); k++) {
		for (int c = 0; c < 4; c++) { /* memory ok, mount fails, disk, no stand-in */
			char mnt[PATH_MAX + 16], mnt_env[PATH_MAX + 32], want[PATH_MAX + 256];
			const char *extra[] = {"ACTIONS_RUNNER_INPUT_JITCONFIG=j",
			                       c == 3 ? NULL : mnt_env, NULL};
			struct fixture_cfg f;
			struct sandbox sb;
			char *s;

			if (!have_busybox && k == 1)
				continue;
			sb_init(&sb, "storage");
			pathf(mnt, sizeof(mnt), "%s/mount-stand-in", sb.bin);
			write_file(mnt, mount_sh, 0755);
			pathf(mnt_env, sizeof(mnt_env), "RUNNERD_MOUNT=%s", mnt);
			if (c == 1)
				sb_put(&sb, "mount-exit", "32");
			case_jit_image(&f);
			f.opts.image_dir = sb.runner;
			f.cfg.runner.storage = c == 2 ? RUNNER_STORAGE_DISK : RUNNER_STORAGE_MEMORY;
			f.cfg.runner.storage_size = 64LL << 20;
			sb_render(&sb, &f.opts);
			sb_put(&sb, "expect-jit", "j");
			assert_int_equal(sb_run(&sb, shells[k], extra), c == 0 || c == 2 ? 0 : 1);
			sb_no_violation(&sb);
			s = sb_get(&sb, "mount-args");
			if (c >= 2) {
				assert_null(s);
			} else {
				pathf(want, sizeof(want),
				      "-t tmpfs -o size=67108864,mode=0755,uid=%u,gid=%u "
				      "runnerd-work "
				      "%s/_work\n",
				      (unsigned)getuid(), (unsigned)getgid(), sb.runner);
				assert_non_null(s);
				assert_string_equal(s, want);
			}
			free(s);
			s = sb_get(&sb, "ran");
			if (c == 0 || c == 2) {
				assert_non_null(s);
			} else {
				assert_null(s);
				assert_post_job(&sb, "abnormal", 1);
			}
			free(s);
			s = read_text(sb.log);
			assert_non_null(s);
			if (c == 0)
				assert_non_null(strstr(s, "_work is a tmpfs of 67108864 bytes"));
			if (c == 1)
				assert_non_null(strstr(s,
				                       "runner.storage memory: could not mount a "
				                       "tmpfs of 67108864 bytes on "));
			if (c == 3)
				assert_non_null(strstr(s, "runner.storage memory: not on the local "
				                          "provider"));
			if (c == 2)
				assert_null(strstr(s, "runner.storage"));
			free(s);
			sb_free(&sb);
		}
	}
}

/* The repo-policy check: refused (the hook's metrics stay) and accepted. */
static void test_run_repo_policy(void **state)
{
	for (size_t k = 0; k < ARRAY_SIZE(shells); k++) {
		for (int accept = 0; accept <= 1; accept++) {
			struct buf sec = BUF_INIT(4096);
			struct fixture_cfg f;
			struct sandbox sb;
			char p[PATH_MAX + 16], *s;
			json_t *j;

			if (!have_busybox && k == 1)
				continue;
			sb_init(&sb, "policy");
			case_repo_policy(&f);
			f.cfg.runner.repo_policy_url = "http://127.0.0.1:1/policy/";
			f.opts.image_dir = sb.runner;
			sb_render(&sb, &f.opts);
			assert_int_equal(runner_secret_env("jit", true, &sec), 0);
			assert_int_equal(runner_secret_env_var(RUNNER_REPO_POLICY_TOKEN_ENV,
			                                       "0123abcdef", &sec),
			                 0);
			pathf(p, sizeof(p), "%s/secret.env", sb.home);
			write_file(p, buf_str(&sec), 0600);
			buf_wipe(&sec);
			sb_put(&sb, "expect-jit", "jit");
			sb_put(&sb, "expect-policy-token", "0123abcdef");
			sb_put(&sb, "policy-code", accept ? "204" : "403");
			assert_int_equal(sb_run(&sb, shells[k], NULL), 0);
			sb_no_violation(&sb);

			s = sb_get(&sb, "policy-url");
			assert_non_null(s);
			assert_string_equal(s, "http://127.0.0.1:1/policy/push/check-run\n");
			free(s);
			sb_path(&sb, p, sizeof(p), "policy-body");
			j = json_load_file(p, 0, NULL);
			assert_non_null(j);
			/* the original's body for push: the repository only */
			assert_string_equal(json_str(j, "repository_name"), "octo/re\"po");
			assert_int_equal(json_object_size(j), 1);
			json_decref(j);

			s = sb_get(&sb, "hook-rc");
			assert_string_equal(s, accept ? "0\n" : "1\n");
			free(s);
			assert_false(home_has(&sb, ".repo-policy-token"));
			assert_false(home_has(&sb, ".repo-policy-request.json"));
			if (accept)
				assert_post_job(&sb, "normal", 0);
			else
				assert_post_job(&sb, "repo-policy-check-failure", 403);
			sb_free(&sb);
		}
	}
}

/* No token at all: the check fails closed. */
static void test_run_repo_policy_no_token(void **state)
{
	const char *extra[] = {"ACTIONS_RUNNER_INPUT_JITCONFIG=j", NULL};
	struct fixture_cfg f;
	struct sandbox sb;
	char *s;

	sb_init(&sb, "policy-none");
	case_repo_policy(&f);
	f.opts.image_dir = sb.runner;
	sb_render(&sb, &f.opts);
	sb_put(&sb, "expect-jit", "j");
	assert_int_equal(sb_run(&sb, "sh", extra), 0);
	sb_no_violation(&sb);
	s = sb_get(&sb, "hook-rc");
	assert_string_equal(s, "1\n");
	free(s);
	assert_null(s = sb_get(&sb, "curl-args"));
	assert_post_job(&sb, "repo-policy-check-failure", 1);
	sb_free(&sb);
}

/*
 * docs/deadlines.md, row "Repo-policy check": the real curl
 * against a policy service that never answers: the hook gives up at its
 * deadline (2 s here, 60 s as rendered by runnerd) and refuses the job
 * (curl's 28, "timed out", in the metrics), so the job and the runner end.
 */
static void test_run_repo_policy_silent_server(void **state)
{
	struct buf sec = BUF_INIT(4096);
	struct fixture_cfg f;
	struct sandbox sb;
	char url[128], p[PATH_MAX + 16], *s;
	int port, fd = silent_server(&port);
	int64_t t0;

	sb_init(&sb, "policy-silent");
	pathf(p, sizeof(p), "%s/curl", sb.bin);
	assert_int_equal(unlink(p), 0); /* the real curl */
	case_repo_policy(&f);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/policy/", port);
	f.cfg.runner.repo_policy_url = url;
	f.opts.image_dir = sb.runner;
	f.opts.policy_timeout_s = 2;
	sb_render(&sb, &f.opts);
	assert_int_equal(runner_secret_env("jit", true, &sec), 0);
	assert_int_equal(runner_secret_env_var(RUNNER_REPO_POLICY_TOKEN_ENV, "0123abcdef", &sec),
	                 0);
	pathf(p, sizeof(p), "%s/secret.env", sb.home);
	write_file(p, buf_str(&sec), 0600);
	buf_wipe(&sec);
	sb_put(&sb, "expect-jit", "jit");
	t0 = clock_mono_ms();
	assert_int_equal(sb_run(&sb, "sh", NULL), 0);
	assert_true(clock_mono_ms() - t0 < 10000);
	s = sb_get(&sb, "hook-rc");
	assert_string_equal(s, "1\n");
	free(s);
	assert_post_job(&sb, "repo-policy-check-failure", 28);
	close(fd);
	sb_free(&sb);
}

/* The Docker Hub mirror: env, a fresh daemon.json, a merged one (jq). */
static void test_run_mirror(void **state)
{
	for (size_t k = 0; k < ARRAY_SIZE(shells); k++) {
		for (int merge = 0; merge <= 1; merge++) {
			char docker[PATH_MAX + 16], docker_env[PATH_MAX + 32], p[PATH_MAX + 32];
			const char *extra[] = {"ACTIONS_RUNNER_INPUT_JITCONFIG=j", docker_env,
			                       NULL};
			struct fixture_cfg f;
			struct sandbox sb;
			json_t *j, *m;
			char *s;

			if (!have_busybox && k == 1)
				continue;
			sb_init(&sb, "mirror");
			pathf(docker, sizeof(docker), "%s/docker", sb.dir);
			assert_int_equal(mkdir(docker, 0755), 0);
			pathf(docker_env, sizeof(docker_env), "RUNNERD_DOCKER_DIR=%s", docker);
			pathf(p, sizeof(p), "%s/daemon.json", docker);
			if (merge)
				write_file(p, "{\"log-driver\": \"journald\"}\n", 0644);
			case_mirror(&f);
			f.cfg.runner.dockerhub_mirror = "https://mirror.example:5000/\"x\"";
			f.opts.image_dir = sb.runner;
			sb_render(&sb, &f.opts);
			sb_put(&sb, "expect-jit", "j");
			assert_int_equal(sb_run(&sb, shells[k], extra), 0);
			sb_no_violation(&sb);
			j = json_load_file(p, 0, NULL);
			assert_non_null(j);
			m = json_object_get(j, "registry-mirrors");
			assert_true(json_is_array(m) && json_array_size(m) == 1);
			assert_string_equal(json_string_value(json_array_get(m, 0)),
			                    "https://mirror.example:5000/\"x\"");
			if (merge)
				assert_string_equal(json_str(j, "log-driver"), "journald");
			json_decref(j);
			s = sb_get(&sb, "run-env");
			assert_non_null(
			        strstr(s, "DOCKERHUB_MIRROR=https://mirror.example:5000/\"x\"\n"));
			free(s);
			s = sb_get(&sb, "systemctl"); /* asked, docker not active: no restart */
			assert_non_null(s);
			assert_string_equal(s, "is-active --quiet docker\n");
			free(s);
			sb_free(&sb);
		}
	}
}

/*
 * aproxy and Docker's proxies on a machine of our own: the nft rules handed
 * to nft (a stand-in that keeps them), the daemon's drop-in, the client's
 * config.json merged into the one there; nft refusing the rules ends the
 * script before the runner starts.
 */
static void test_run_aproxy_docker_proxy(void **state)
{
	for (int refuse = 0; refuse <= 1; refuse++) {
		char nft[PATH_MAX + 16], nft_env[PATH_MAX + 32], docker_env[PATH_MAX + 32];
		char sysd_env[PATH_MAX + 32], p[PATH_MAX + 64];
		const char *extra[] = {"ACTIONS_RUNNER_INPUT_JITCONFIG=j", nft_env, docker_env,
		                       sysd_env, NULL};
		struct fixture_cfg f;
		struct sandbox sb;
		json_t *j;
		char *s;

		sb_init(&sb, "aproxy");
		pathf(nft, sizeof(nft), "%s/nft-stand-in", sb.bin);
		write_file(nft,
		           refuse ? "#!/bin/sh\nexit 1\n"
		                  : "#!/bin/sh\n[ \"$1\" = -f ] && cp \"$2\" "
		                    "\"$FAKE_DIR/nft-rules\"\n",
		           0755);
		pathf(nft_env, sizeof(nft_env), "RUNNERD_NFT=%s", nft);
		pathf(docker_env, sizeof(docker_env), "RUNNERD_DOCKER_DIR=%s/docker", sb.dir);
		pathf(sysd_env, sizeof(sysd_env), "RUNNERD_SYSTEMD_DIR=%s/systemd", sb.dir);
		pathf(p, sizeof(p), "%s/.docker", sb.dir);
		assert_int_equal(mkdir(p, 0700), 0);
		pathf(p, sizeof(p), "%s/.docker/config.json", sb.dir);
		write_file(p, "{\"auths\": {\"registry.example\": {}}}\n", 0600);
		case_proxy(&f);
		f.cfg.runner.proxy.aproxy_address = "10.1.2.3:3128";
		f.opts.image_dir = sb.runner;
		sb_render(&sb, &f.opts);
		sb_put(&sb, "expect-jit", "j");
		if (refuse) {
			assert_int_not_equal(sb_run(&sb, "sh", extra), 0);
			assert_null(sb_get(&sb, "ran"));
			assert_post_job(&sb, "abnormal", 1);
			sb_free(&sb);
			continue;
		}
		assert_int_equal(sb_run(&sb, "sh", extra), 0);
		sb_no_violation(&sb);
		s = sb_get(&sb, "nft-rules");
		assert_non_null(s);
		assert_non_null(strstr(s, "table ip runnerd_aproxy {\n\tchain output {\n"
		                          "\t\ttype nat hook output priority -100; policy accept;\n"
		                          "\t\tip daddr 127.0.0.0/8 return\n"
		                          "\t\tip daddr 10.1.2.3 return\n"
		                          "\t\tip daddr 10.0.0.0/8 return\n"
		                          "\t\tip daddr 172.16.0.0/12 return\n"
		                          "\t\tip daddr 192.168.0.0/16 return\n"
		                          "\t\ttcp dport 80 dnat to 10.1.2.3:3128\n"
		                          "\t\ttcp dport 443 dnat to 10.1.2.3:3128\n\t}\n"
		                          "\tchain prerouting {\n"));
		free(s);
		pathf(p, sizeof(p), "%s/systemd/docker.service.d/runnerd-proxy.conf", sb.dir);
		s = read_text(p);
		assert_non_null(s);
		assert_non_null(strstr(
		        s, "[Service]\nEnvironment=\"HTTP_PROXY=http://proxy.example:3128\"\n"
		           "Environment=\"HTTPS_PROXY=http://proxy.example:3129\"\n"
		           "Environment=\"NO_PROXY=localhost,127.0.0.1,.internal\"\n"));
		free(s);
		pathf(p, sizeof(p), "%s/.docker/config.json", sb.dir);
		j = json_load_file(p, 0, NULL);
		assert_non_null(j);
		assert_non_null(json_object_get(json_object_get(j, "auths"), "registry.example"));
		assert_string_equal(
		        json_string_value(json_object_get(
		                json_object_get(json_object_get(j, "proxies"), "default"),
		                "httpsProxy")),
		        "http://proxy.example:3129");
		json_decref(j);
		s = sb_get(&sb, "systemctl"); /* the drop-in read; docker not active: no restart */
		assert_non_null(s);
		assert_string_equal(s, "daemon-reload\nis-active --quiet docker\n");
		free(s);
		/* no mirror configured: no daemon.json */
		pathf(p, sizeof(p), "%s/docker/daemon.json", sb.dir);
		assert_false(exists(p));
		sb_free(&sb);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_run_storage),
	        cmocka_unit_test(test_run_aproxy_docker_proxy),
	        cmocka_unit_test(test_run_repo_policy),
	        cmocka_unit_test(test_run_repo_policy_no_token),
	        cmocka_unit_test(test_run_repo_policy_silent_server),
	        cmocka_unit_test(test_run_mirror),
	};
	return cmocka_run_group_tests(tests, runner_fixture_setup, runner_fixture_teardown);
}
