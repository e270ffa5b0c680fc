/*
 * Unit tests of the startup script's rendering (src/runner/runner_script):
 * refusals, golden renderings (tests/runner/<case>.sh.golden;
 * RUNNERD_UPDATE_GOLDEN=1 rewrites them), each option where it belongs,
 * `sh -n` / `busybox sh -n` of every rendering, the script chosen for a
 * provider, and hostile values that must stay inert.
 */
#include "runner_fixture.h"

#include <libgen.h>

/* The same quoting as the renderer's, written independently. */
static char *quoted(const char *s)
{
	size_t n = 2;
	for (const char *p = s; *p; p++)
		n += *p == '\'' ? 4 : 1;
	char *q = malloc(n + 1), *o = q;
	assert_non_null(q);
	*o++ = '\'';
	for (const char *p = s; *p; p++) {
		if (*p == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else {
			*o++ = *p;
		}
	}
	*o++ = '\'';
	*o = '\0';
	return q;
}

/* Remove every occurrence of needle from hay (in place). */
static void cut_all(char *hay, const char *needle)
{
	size_t n = strlen(needle);
	char *p;
	if (n == 0)
		return;
	while ((p = strstr(hay, needle)))
		memmove(p, p + n, strlen(p + n) + 1);
}

/*
 * Cut the shell word after each "NAME=" at a line's start: single-quoted
 * parts and \' between them, as runner_sh_quote writes. What it held is
 * inert whatever it is (a value built from a hostile one, say JSON).
 */
static void cut_word_after(char *hay, const char *name)
{
	char key[128];
	char *p = hay;

	snprintf(key, sizeof(key), "\n%s='", name);
	while ((p = strstr(p, key))) {
		char *w = p + strlen(key) - 1, *q = w;
		while (*q == '\'' || (q[0] == '\\' && q[1] == '\'')) {
			if (*q == '\\') {
				q += 2;
				continue;
			}
			q = strchr(q + 1, '\'');
			assert_non_null(q);
			q++;
		}
		memmove(w, q, strlen(q) + 1);
		p = w;
	}
}

static const struct golden_case {
	const char *name;
	void (*make)(struct fixture_cfg *f);
} golden_cases[] = {
        {"jit-image", case_jit_image},
        {"nojit-org-poweroff", case_nojit_org_poweroff},
        {"nojit-repo-simulator", case_nojit_repo_simulator},
        {"proxy", case_proxy},
        {"mirror", case_mirror},
        {"ssh-debug", case_ssh_debug},
        {"repo-policy", case_repo_policy},
        {"download", case_download},
        {"install", case_install},
        {"storage-memory", case_storage_memory},
};

/* ---- golden dir --------------------------------------------------------- */

static bool is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void golden_dir(char *out, size_t cap)
{
	const char *top = getenv("RUNNERD_TOP");
	char self[PATH_MAX], file[PATH_MAX];
	ssize_t n;

	if (top && *top) {
		pathf(out, cap, "%s/tests/runner", top);
		if (is_dir(out))
			return;
	}
	/* __FILE__ is as meson passed it: relative to the build dir, which is
	 * two levels above this binary (build/tests/unit/test_runner_script). */
	snprintf(file, sizeof(file), "%s", __FILE__);
	if (file[0] == '/') {
		pathf(out, cap, "%s/../runner", dirname(file));
		if (is_dir(out))
			return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		pathf(out, cap, "%s/../../%s", dirname(self), __FILE__);
		snprintf(file, sizeof(file), "%s", out);
		pathf(out, cap, "%s/../runner", dirname(file));
		if (is_dir(out))
			return;
	}
	snprintf(file, sizeof(file), "%s", __FILE__);
	pathf(out, cap, "%s/../runner", dirname(file));
	if (!is_dir(out))
		fail_msg("cannot find tests/runner: set RUNNERD_TOP");
}

static void test_render_errors(void **state)
{
	struct fixture_cfg f;
	struct buf b = BUF_INIT(RUNNER_SCRIPT_MAX);
	struct err e = {0};
	char *bad[] = {"a,b"};

	base(&f);
	f.opts.name = "";
	assert_int_equal(runner_script_render(&f.opts, &b, &e), -EINVAL);
	base(&f);
	f.opts.sha256 = "ABC";
	assert_int_equal(runner_script_render(&f.opts, &b, &e), -EINVAL);
	f.opts.sha256 = "62CC5735D63057D8D07441507C3D6974E90C1854BDB33E9C8B26C0DA086336E1";
	assert_int_equal(runner_script_render(&f.opts, &b, &e), -EINVAL);
	base(&f);
	f.opts.download_url = "https://example.com/r.tgz";
	assert_int_equal(runner_script_render(&f.opts, &b, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "sha256"));
	base(&f);
	f.flavor.labels.v = bad;
	f.flavor.labels.n = 1;
	assert_int_equal(runner_script_render(&f.opts, &b, &e), -EINVAL);
	base(&f);
	f.opts.end = (enum runner_end)7;
	assert_int_equal(runner_script_render(&f.opts, &b, &e), -EINVAL);
	base(&f);
	f.cfg.github.path = "";
	assert_int_equal(runner_script_render(&f.opts, &b, &e), -EINVAL);
	assert_int_equal(runner_script_render(NULL, &b, &e), -EINVAL);
	assert_int_equal(b.len, 0); /* nothing appended on failure */
	assert_string_equal(runner_end_name(RUNNER_END_EXIT), "exit");
	assert_string_equal(runner_end_name(RUNNER_END_POWEROFF), "poweroff");
	buf_release(&b);
}

/* ---- golden renderings -------------------------------------------------- */

static void test_golden(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	bool update = getenv("RUNNERD_UPDATE_GOLDEN") && *getenv("RUNNERD_UPDATE_GOLDEN");
	int mismatches = 0;

	golden_dir(dir, sizeof(dir));
	for (size_t i = 0; i < ARRAY_SIZE(golden_cases); i++) {
		struct fixture_cfg f;
		char *got, *want;

		golden_cases[i].make(&f);
		got = render_ok(&f.opts);
		pathf(path, sizeof(path), "%s/%s.sh.golden", dir, golden_cases[i].name);
		if (update)
			write_file(path, got, 0644);
		want = read_text(path);
		if (!want || strcmp(got, want) != 0) {
			char actual[PATH_MAX + 64];
			pathf(actual, sizeof(actual), "%s/%s.sh.actual", tmp_root,
			      golden_cases[i].name);
			write_file(actual, got, 0644);
			print_error("golden mismatch: diff -u %s %s\n", path, actual);
			mismatches++;
		}
		assert_syntax_text(got);
		free(got);
		free(want);
	}
	assert_int_equal(mismatches, 0);
}

/* Each option shows up where it should (independent of the goldens). */
static void test_render_options(void **state)
{
	struct fixture_cfg f;
	char *s;

	case_jit_image(&f);
	s = render_ok(&f.opts);
	assert_non_null(strstr(s, "RUNNERD_URL='https://github.com/octo/repo'\n"));
	assert_non_null(strstr(s, "RUNNERD_LABELS='self-hosted,linux,x64,large,GPU'\n"));
	assert_non_null(strstr(s, "RUNNERD_JIT=1\n"));
	assert_non_null(strstr(s, "RUNNERD_END=exit\n"));
	assert_non_null(strstr(s, "RUNNERD_IMAGE_DIR='/opt/actions-runner'\n"));
	assert_non_null(strstr(s, "RUNNERD_RUNNER_GROUP=''\n"));
	assert_null(strstr(s, "HTTP_PROXY"));
	assert_null(strstr(s, "TMATE_SERVER"));
	assert_non_null(strstr(s, "repo_policy_compliance.url is empty"));
	assert_null(strstr(s, "--jitconfig"));
	assert_null(strstr(s, "--token"));
	free(s);

	case_nojit_org_poweroff(&f);
	s = render_ok(&f.opts);
	assert_non_null(strstr(s, "RUNNERD_URL='https://ghe.example.com/octo'\n"));
	assert_non_null(strstr(s, "RUNNERD_RUNNER_GROUP='builders'\n"));
	assert_non_null(strstr(s, "RUNNERD_JIT=0\n"));
	assert_non_null(strstr(s, "RUNNERD_END=poweroff\n"));
	assert_non_null(strstr(s, "RUNNERD_SHA256='" SHA_ZERO "'\n"));
	free(s);

	case_nojit_repo_simulator(&f);
	s = render_ok(&f.opts);
	assert_non_null(strstr(s, "RUNNERD_URL='http://127.0.0.1:8080/octo/repo'\n"));
	assert_non_null(strstr(s, "RUNNERD_RUNNER_GROUP=''\n"));
	free(s);

	case_proxy(&f);
	s = render_ok(&f.opts);
	assert_non_null(strstr(s, "runnerd_env HTTP_PROXY 'http://proxy.example:3128'\n"));
	assert_non_null(strstr(s, "runnerd_env http_proxy 'http://proxy.example:3128'\n"));
	assert_non_null(strstr(s, "runnerd_env HTTPS_PROXY 'http://proxy.example:3129'\n"));
	assert_non_null(strstr(s, "runnerd_env https_proxy 'http://proxy.example:3129'\n"));
	assert_non_null(strstr(s, "runnerd_env NO_PROXY 'localhost,127.0.0.1,.internal'\n"));
	assert_non_null(strstr(s, "runnerd_env no_proxy 'localhost,127.0.0.1,.internal'\n"));
	/* aproxy: the http proxy's host and port, the default ports and ranges */
	assert_non_null(strstr(s, "RUNNERD_APROXY=1\n"));
	assert_non_null(strstr(s, "RUNNERD_APROXY_HOST='proxy.example'\n"));
	assert_non_null(strstr(s, "RUNNERD_APROXY_PORT='3128'\n"));
	assert_non_null(strstr(s, "RUNNERD_APROXY_PORTS='80 443'\n"));
	assert_non_null(
	        strstr(s, "RUNNERD_APROXY_EXCLUDE='10.0.0.0/8 172.16.0.0/12 192.168.0.0/16'\n"));
	/* Docker: the client's proxies, the daemon's drop-in */
	assert_non_null(strstr(s, "RUNNERD_DOCKER_CLIENT_JSON='{\"proxies\": {\"default\": "
	                          "{\"httpProxy\": \"http://proxy.example:3128\", \"httpsProxy\": "
	                          "\"http://proxy.example:3129\", \"noProxy\": "
	                          "\"localhost,127.0.0.1,.internal\"}}}'\n"));
	assert_non_null(strstr(s,
	                       "[Service]\nEnvironment=\"HTTP_PROXY=http://proxy.example:3128\"\n"
	                       "Environment=\"HTTPS_PROXY=http://proxy.example:3129\"\n"
	                       "Environment=\"NO_PROXY=localhost,127.0.0.1,.internal\"\n'\n"));
	free(s);
	f.cfg.runner.proxy.aproxy_address = "10.1.2.3:8443";
	f.cfg.runner.proxy.aproxy_ports = (struct strv){(char *[]){"8080"}, 1};
	f.cfg.runner.proxy.aproxy_exclude = (struct strv){(char *[]){"10.9.0.0/16", "1.2.3.4"}, 2};
	s = render_ok(&f.opts);
	assert_non_null(strstr(s, "RUNNERD_APROXY_HOST='10.1.2.3'\nRUNNERD_APROXY_PORT='8443'\n"
	                          "RUNNERD_APROXY_PORTS='8080'\n"
	                          "RUNNERD_APROXY_EXCLUDE='10.9.0.0/16 1.2.3.4'\n"));
	free(s);
	f.cfg.runner.proxy.aproxy = false;
	s = render_ok(&f.opts);
	assert_non_null(strstr(s, "RUNNERD_APROXY=0\n"));
	assert_null(strstr(s, "RUNNERD_APROXY_HOST='"));
	free(s);

	case_mirror(&f);
	s = render_ok(&f.opts);
	assert_non_null(strstr(s, "runnerd_env DOCKERHUB_MIRROR 'https://mirror.example:5000'\n"));
	assert_non_null(
	        strstr(s, "runnerd_env CONTAINER_REGISTRY_URL 'https://mirror.example:5000'\n"));
	assert_non_null(strstr(s, "RUNNERD_DOCKER_DAEMON_JSON='{\"registry-mirrors\": "
	                          "[\"https://mirror.example:5000\"]}'\n"));
	assert_non_null(strstr(s, "RUNNERD_DOCKER_CLIENT_JSON=''\n"));
	free(s);

	/* one server per runner, all of its fields; the servers share the runners */
	case_ssh_debug(&f);
	int picked[2] = {0, 0};
	static const char *const names[] = {"ci-0123456789ab", "ci-00000000000a", "ci-00000000000b",
	                                    "ci-00000000000c", "ci-00000000000d", "ci-00000000000e",
	                                    "ci-00000000000f", "ci-000000000010"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		f.opts.name = names[i];
		s = render_ok(&f.opts);
		bool first =
		        strstr(s, "runnerd_env TMATE_SERVER_HOST 'tmate.example'\n") &&
		        strstr(s, "runnerd_env TMATE_SERVER_PORT '10022'\n") &&
		        strstr(s,
		               "runnerd_env TMATE_SERVER_RSA_FINGERPRINT 'SHA256:rsa-first'\n") &&
		        strstr(s, "TMATE_SERVER_ED25519_FINGERPRINT 'SHA256:ed-first'\n") &&
		        !strstr(s, "second.example");
		bool second = strstr(s, "runnerd_env TMATE_SERVER_HOST 'second.example'\n") &&
		              strstr(s, "runnerd_env TMATE_SERVER_PORT '22'\n") &&
		              strstr(s, "TMATE_SERVER_RSA_FINGERPRINT 'SHA256:rsa-second'\n") &&
		              strstr(s, "TMATE_SERVER_ED25519_FINGERPRINT 'SHA256:ed-second'\n") &&
		              !strstr(s, "tmate.example");
		assert_true(first != second);
		picked[second]++;
		/* the same name picks the same server */
		char *again = render_ok(&f.opts);
		assert_string_equal(s, again);
		free(again);
		free(s);
	}
	assert_true(picked[0] > 0 && picked[1] > 0);
	f.opts.name = "ci-0123456789ab";

	case_repo_policy(&f);
	s = render_ok(&f.opts);
	assert_non_null(strstr(s, "RUNNERD_REPO_POLICY_URL='http://10.1.2.3:8080'\n"));
	assert_non_null(strstr(s, "RUNNERD_REPO_POLICY=1\n"));
	assert_null(strstr(s, "repo_policy_compliance.url is empty"));
	free(s);

	case_download(&f);
	s = render_ok(&f.opts);
	assert_non_null(strstr(s, "RUNNERD_HOME_DEFAULT='/home/runner'\n"));
	assert_non_null(strstr(s, "RUNNERD_LABELS='self-hosted,linux,arm64,large,X64,GPU'\n"));
	assert_non_null(strstr(s, "RUNNERD_DOWNLOAD_URL='https://github.com/actions/runner/"));
	free(s);
}

static void test_script_for(void **state)
{
	struct fixture_cfg f;
	struct buf b = BUF_INIT(RUNNER_SCRIPT_MAX);
	struct err e = {0};
	const char *s;

	base(&f);
	assert_int_equal(runner_script_for(&f.cfg, &f.flavor, "ci-0123456789ab", true, NULL, NULL,
	                                   NULL, &b, &e),
	                 0);
	s = buf_str(&b);
	assert_non_null(strstr(s, "RUNNERD_END=exit\n"));
	assert_non_null(strstr(s, "RUNNERD_HOME_DEFAULT=''\n"));
	assert_non_null(strstr(s, "RUNNERD_IMAGE_DIR=''\n"));
	assert_non_null(strstr(s, "RUNNERD_TARBALL=''\n"));
	assert_syntax_text(s);
	buf_reset(&b);
	assert_int_equal(runner_script_for(&f.cfg, &f.flavor, "ci-0123456789ab", false, NULL, NULL,
	                                   NULL, &b, &e),
	                 0);
	s = buf_str(&b);
	assert_non_null(strstr(s, "RUNNERD_END=poweroff\n"));
	assert_non_null(strstr(s, "RUNNERD_HOME_DEFAULT='" RUNNER_INSTANCE_HOME "'\n"));
	assert_non_null(strstr(s, "RUNNERD_IMAGE_DIR='" RUNNER_IMAGE_DIR "'\n"));
	assert_non_null(strstr(s, "RUNNERD_TARBALL='" RUNNER_INSTANCE_TARBALL "'\n"));
	assert_syntax_text(s);
	assert_int_equal(runner_script_for(&f.cfg, &f.flavor, "", false, NULL, NULL, NULL, &b, &e),
	                 -EINVAL);
	buf_release(&b);
}

static void test_hostile_inert(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(hostile_values); i++) {
		const char *h = hostile_values[i];
		struct fixture_cfg f;
		char label[256], joined[512];
		char *s, *q;

		hostile_config(&f, h, label, sizeof(label));
		s = render_ok(&f.opts);
		assert_syntax_text(s);

		/* Remove every quoted word that legitimately carries the value... */
		snprintf(joined, sizeof(joined), "self-hosted,linux,x64,%s", label);
		q = quoted(joined);
		cut_all(s, q);
		free(q);
		q = quoted(h);
		cut_all(s, q);
		free(q);
		/* ...the Docker configs built from the proxy and its host (aproxy)... */
		cut_word_after(s, "RUNNERD_DOCKER_CLIENT_JSON");
		cut_word_after(s, "RUNNERD_DOCKER_DROPIN");
		cut_word_after(s, "RUNNERD_APROXY_HOST");
		cut_word_after(s, "RUNNERD_APROXY_PORT");
		/* ...the repo-policy URL loses trailing '/' only; h has none. */
		/* Then no trace of the hostile text may remain anywhere. */
		if (strstr(s, "pwned"))
			fail_msg("value %zu appears unquoted near: %.80s", i, strstr(s, "pwned"));
		free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_render_errors),  cmocka_unit_test(test_golden),
	        cmocka_unit_test(test_render_options), cmocka_unit_test(test_script_for),
	        cmocka_unit_test(test_hostile_inert),
	};
	return cmocka_run_group_tests(tests, runner_fixture_setup, runner_fixture_teardown);
}
