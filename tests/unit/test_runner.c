/*
 * Unit tests of src/runner: labels, quoting, the secret environment, the
 * web URL, golden renderings of the startup script (tests/runner/<case>.sh.golden;
 * RUNNERD_UPDATE_GOLDEN=1 rewrites them), `sh -n` / `busybox sh -n` of every
 * rendering, hostile values that must stay inert, and real runs of the
 * script under sh and busybox sh against a fake runner (fake run.sh,
 * config.sh, curl and poweroff in a temp dir) that checks where secrets go.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fileutil.h"
#include "util/strutil.h"
#include "runner/runner.h"
#include "runner/runner_script.h"
#include "runner/runner_version.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <libgen.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define SHA_ZERO "0000000000000000000000000000000000000000000000000000000000000000"

/* ---- helpers ------------------------------------------------------------ */

static char tmp_root[PATH_MAX];
static bool have_busybox;

/* Test fixtures need no fsync (file_write_atomic's would cost seconds). */
static void write_file(const char *path, const char *text, mode_t mode)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0 || fchmod(fd, mode) < 0 || write(fd, text, len) != (ssize_t)len)
		fail_msg("write %s: %s", path, strerror(errno));
	close(fd);
}

static char *read_text(const char *path)
{
	struct buf b = BUF_INIT(1 << 20);
	if (file_read(path, b.max, false, &b, NULL) < 0)
		return NULL;
	return buf_detach(&b, NULL);
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static void pathf(char *out, size_t cap, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void pathf(char *out, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if ((size_t)vsnprintf(out, cap, fmt, ap) >= cap)
		fail_msg("path too long");
	va_end(ap);
}

/*
 * Run argv with env (NULL-terminated "K=V"), cwd dir, output to log.
 * Returns the exit status, or 128 + signal. Killed after 30 s.
 */
static int run_cmd(char *const argv[], char *const envp[], const char *dir, const char *log)
{
	pid_t pid = fork();
	int status = 0;

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		              0600);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (nul >= 0)
			dup2(nul, 0);
		if (dir && chdir(dir) < 0)
			_exit(126);
		setpgid(0, 0);
		if (envp)
			execve(argv[0], argv, envp);
		else
			execv(argv[0], argv);
		_exit(127);
	}
	for (int waited = 0;; waited++) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		assert_true(w == 0);
		if (waited > 3000) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("%s timed out", argv[0]);
		}
		usleep(10000);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static int sh_check(const char *shell, const char *path)
{
	char *argv_sh[] = {(char *)"/bin/sh", (char *)"-n", (char *)path, NULL};
	char *argv_bb[] = {(char *)"/usr/bin/busybox", (char *)"sh", (char *)"-n", (char *)path,
	                   NULL};
	char *argv_bash[] = {(char *)"/bin/bash", (char *)"-n", (char *)path, NULL};
	char log[PATH_MAX];

	pathf(log, sizeof(log), "%s/syntax.log", tmp_root);
	if (strcmp(shell, "busybox") == 0)
		return run_cmd(argv_bb, NULL, NULL, log);
	if (strcmp(shell, "bash") == 0)
		return run_cmd(argv_bash, NULL, NULL, log);
	return run_cmd(argv_sh, NULL, NULL, log);
}

static void assert_syntax(const char *path)
{
	assert_int_equal(sh_check("sh", path), 0);
	if (have_busybox)
		assert_int_equal(sh_check("busybox", path), 0);
}

static void assert_syntax_text(const char *text)
{
	char path[PATH_MAX];
	pathf(path, sizeof(path), "%s/syntax-check.sh", tmp_root);
	write_file(path, text, 0600);
	assert_syntax(path);
}

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

static void strncat_safe(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(dst);
	if (snprintf(dst + n, cap - n, "%s", src) >= (int)(cap - n))
		fail_msg("string too long");
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

/* ---- configs ------------------------------------------------------------ */

struct fixture_cfg {
	struct config cfg;
	struct config_flavor flavor;
	struct config_ssh_debug ssh[2];
	char *labels[4];
	struct runner_script_opts opts;
};

static void base(struct fixture_cfg *f)
{
	memset(f, 0, sizeof(*f));
	f->labels[0] = "large";
	f->labels[1] = "X64"; /* an implied label again: dropped */
	f->labels[2] = "GPU";
	f->flavor.name = "small";
	f->flavor.provider = "lxd";
	f->flavor.image = "noble";
	f->flavor.arch = ARCH_X64;
	f->flavor.labels.v = f->labels;
	f->flavor.labels.n = 3;
	f->cfg.github.api_url = "https://api.github.com";
	f->cfg.github.path = "octo/repo";
	f->cfg.github.runner_group = "default";
	f->cfg.runner.jit = true;
	f->cfg.runner.proxy.http = "";
	f->cfg.runner.proxy.https = "";
	f->cfg.runner.proxy.no_proxy = "";
	f->cfg.runner.dockerhub_mirror = "";
	f->cfg.runner.repo_policy_url = "";
	f->opts.cfg = &f->cfg;
	f->opts.flavor = &f->flavor;
	f->opts.name = "ci-0123456789ab";
	f->opts.end = RUNNER_END_EXIT;
	f->opts.image_dir = "/opt/actions-runner";
}

static void case_jit_image(struct fixture_cfg *f)
{
	base(f);
}

static void case_nojit_org_poweroff(struct fixture_cfg *f)
{
	base(f);
	f->cfg.runner.jit = false;
	f->cfg.github.api_url = "https://ghe.example.com/api/v3";
	f->cfg.github.path = "octo";
	f->cfg.github.is_org = true;
	f->cfg.github.runner_group = "builders";
	f->opts.end = RUNNER_END_POWEROFF;
	f->opts.image_dir = NULL;
	f->opts.tarball = "/var/lib/runnerd/actions-runner.tar.gz";
	f->opts.sha256 = SHA_ZERO;
}

static void case_nojit_repo_simulator(struct fixture_cfg *f)
{
	base(f);
	f->cfg.runner.jit = false;
	f->cfg.github.api_url = "http://127.0.0.1:8080";
	f->cfg.github.runner_group = "builders"; /* not an org: not rendered */
}

static void case_proxy(struct fixture_cfg *f)
{
	base(f);
	f->cfg.runner.proxy.http = "http://proxy.example:3128";
	f->cfg.runner.proxy.https = "http://proxy.example:3129";
	f->cfg.runner.proxy.no_proxy = "localhost,127.0.0.1,.internal";
	f->cfg.runner.proxy.aproxy = true;
}

static void case_mirror(struct fixture_cfg *f)
{
	base(f);
	f->cfg.runner.dockerhub_mirror = "https://mirror.example:5000";
}

static void case_ssh_debug(struct fixture_cfg *f)
{
	base(f);
	f->ssh[0].host = "tmate.example";
	f->ssh[0].port = 10022;
	f->ssh[0].rsa_fingerprint = "SHA256:rsa-first";
	f->ssh[0].ed25519_fingerprint = "SHA256:ed-first";
	f->ssh[1].host = "second.example";
	f->ssh[1].port = 22;
	f->ssh[1].rsa_fingerprint = "SHA256:rsa-second";
	f->ssh[1].ed25519_fingerprint = "SHA256:ed-second";
	f->cfg.runner.ssh_debug = f->ssh;
	f->cfg.runner.n_ssh_debug = 2;
}

static void case_repo_policy(struct fixture_cfg *f)
{
	base(f);
	f->cfg.runner.repo_policy_url = "http://10.1.2.3:8080/";
}

static void case_download(struct fixture_cfg *f)
{
	base(f);
	f->flavor.arch = ARCH_ARM64;
	f->opts.home = "/home/runner";
	f->opts.image_dir = NULL;
	f->opts.download_url = "https://github.com/actions/runner/releases/download/v2.321.0/"
	                       "actions-runner-linux-arm64-2.321.0.tar.gz";
	f->opts.sha256 = "62cc5735d63057d8d07441507c3d6974e90c1854bdb33e9c8b26c0da086336e1";
}

static void case_install(struct fixture_cfg *f)
{
	static struct config_snap snaps[] = {{"charmcraft", "latest/stable", 0},
	                                     {"lxd", "5.0/edge/fix-1", 24322}};
	static struct config_executable exe[] = {
	        {"https://example.internal/yq?v=4", "yq",
	         "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"}};

	base(f);
	f->cfg.runner.snaps = snaps;
	f->cfg.runner.n_snaps = 2;
	f->cfg.runner.executables = exe;
	f->cfg.runner.n_executables = 1;
	f->opts.image_min_version = "2.318.0";
	f->cfg.runner.pre_job_script = "#!/bin/sh\necho \"preparing $GITHUB_REPOSITORY\"\n";
}

static void case_storage_memory(struct fixture_cfg *f)
{
	base(f);
	f->opts.end = RUNNER_END_POWEROFF;
	f->cfg.runner.storage = RUNNER_STORAGE_MEMORY;
	f->cfg.runner.storage_size = 64LL << 20;
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

static char *render_ok(const struct runner_script_opts *o)
{
	struct buf b = BUF_INIT(RUNNER_SCRIPT_MAX);
	struct err e = {0};
	int r = runner_script_render(o, &b, &e);
	if (r < 0)
		fail_msg("render: %d %s", r, e.msg);
	return buf_detach(&b, NULL);
}

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
	 * two levels above this binary (build/tests/unit/test_runner). */
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

/* ---- hostile values ----------------------------------------------------- */

static const char *const hostile_values[] = {
        "it's",
        "$(touch pwned-dollar)",
        "`touch pwned-tick`",
        "'; touch pwned-quote; '",
        "x\ntouch pwned-newline\n",
        "\"; touch pwned-dq; \"",
        "\\' ; touch pwned-bs ; \\'",
        "\nRUNNERD_PRE_JOB_EOF\ntouch pwned-heredoc\n",
};

static void hostile_config(struct fixture_cfg *f, const char *h, char *label_buf, size_t cap)
{
	base(f);
	snprintf(label_buf, cap, "l-%s", h);
	f->labels[0] = label_buf;
	f->flavor.labels.n = 1;
	f->opts.name = h;
	f->cfg.runner.jit = false;
	f->cfg.github.is_org = true;
	f->cfg.github.path = "octo";
	f->cfg.github.runner_group = (char *)h;
	f->cfg.runner.proxy.http = (char *)h;
	f->cfg.runner.proxy.no_proxy = (char *)h;
	f->cfg.runner.proxy.aproxy = true;
	f->ssh[0].host = (char *)h;
	f->ssh[0].port = 1;
	f->ssh[0].rsa_fingerprint = (char *)h;
	f->ssh[0].ed25519_fingerprint = "";
	f->cfg.runner.ssh_debug = f->ssh;
	f->cfg.runner.n_ssh_debug = 1;
	f->cfg.runner.repo_policy_url = (char *)h;
	f->opts.home = h;
	f->opts.image_dir = h;
	f->opts.tarball = h;
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

/* ---- real runs against a fake runner ------------------------------------ */

/* The fake runner: checks that secrets come by environment only. */
static const char fake_run_sh[] =
        "#!/bin/sh\n"
        "o=$FAKE_DIR\n"
        "v() { printf '%s\\n' \"$*\" >>\"$o/violation\"; }\n"
        "for a in \"$@\"; do case $a in --jitconfig*|--token*) v \"secret flag in argv\";; esac; "
        "done\n"
        "if [ -f \"$o/expect-jit\" ]; then\n"
        "  exp=$(cat \"$o/expect-jit\"; printf x); exp=${exp%x}\n"
        "  [ \"${ACTIONS_RUNNER_INPUT_JITCONFIG-}\" = \"$exp\" ] || v \"jitconfig not in env\"\n"
        "  for a in \"$@\"; do [ \"$a\" = \"$exp\" ] && v \"jitconfig in argv\"; done\n"
        "else\n"
        "  [ -z \"${ACTIONS_RUNNER_INPUT_JITCONFIG+x}\" ] || v \"jitconfig without jit\"\n"
        "fi\n"
        "[ \"$(id -u)\" != 0 ] || [ \"${RUNNER_ALLOW_RUNASROOT-}\" = 1 ] || v \"root without "
        "RUNNER_ALLOW_RUNASROOT\"\n"
        "[ -z \"${ACTIONS_RUNNER_INPUT_TOKEN+x}\" ] || v \"token reached run.sh\"\n"
        "[ -z \"${RUNNERD_REPO_POLICY_TOKEN+x}\" ] || v \"policy token reached run.sh\"\n"
        "env | grep -q RUNNERD_TEST_SECRET && v \"a secret in run.sh env\"\n"
        "printf '%s\\n' \"$*\" >\"$o/run-args\"\n"
        "env >\"$o/run-env\"\n"
        "wf=$(cat \"$o/workflow\"; printf x); wf=${wf%x}\n"
        "GITHUB_WORKFLOW=$wf GITHUB_REPOSITORY='octo/re\"po' GITHUB_EVENT_NAME=push \\\n"
        "  GITHUB_RUN_ID=4242 GITHUB_REF_NAME=main GITHUB_SHA=abc123 \\\n"
        "  ${FAKE_HOOK_SHELL:-sh} \"$ACTIONS_RUNNER_HOOK_JOB_STARTED\"\n"
        "echo $? >\"$o/hook-rc\"\n"
        "[ -e \"$RUNNERD_HOME/.repo-policy-token\" ] && v \"policy token file left for the job\"\n"
        "${FAKE_HOOK_SHELL:-sh} \"$ACTIONS_RUNNER_HOOK_JOB_COMPLETED\" || v \"post hook failed\"\n"
        "echo ran >\"$o/ran\"\n"
        "exit \"$(cat \"$o/exit-code\" 2>/dev/null || echo 0)\"\n";

static const char fake_config_sh[] =
        "#!/bin/sh\n"
        "o=$FAKE_DIR\n"
        "v() { printf '%s\\n' \"$*\" >>\"$o/violation\"; }\n"
        "exp=$(cat \"$o/expect-token\"; printf x); exp=${exp%x}\n"
        "[ \"${ACTIONS_RUNNER_INPUT_TOKEN-}\" = \"$exp\" ] || v \"token not in config.sh env\"\n"
        "for a in \"$@\"; do [ \"$a\" = \"$exp\" ] && v \"token in argv\"; done\n"
        "[ -z \"${ACTIONS_RUNNER_INPUT_JITCONFIG+x}\" ] || v \"jitconfig reached config.sh\"\n"
        "printf '%s\\0' \"$@\" >\"$o/config-args\"\n"
        "exit \"$(cat \"$o/config-exit\" 2>/dev/null || echo 0)\"\n";

/*
 * curl stand-in: the repo-policy request (--config - on stdin carries the
 * header) or a download (-o FILE URL: copies $FAKE_DIR/download.tar.gz).
 */
static const char fake_curl[] =
        "#!/bin/sh\n"
        "o=$FAKE_DIR\n"
        "v() { printf '%s\\n' \"$*\" >>\"$o/violation\"; }\n"
        "printf '%s\\n' \"$*\" >>\"$o/curl-args\"\n"
        "case \" $* \" in\n"
        "*' --config - '*)\n"
        "  cfg=$(cat)\n"
        "  tok=$(cat \"$o/expect-policy-token\")\n"
        "  [ \"$cfg\" = \"header = \\\"Authorization: Bearer $tok\\\"\" ] || v \"bad curl config: "
        "$cfg\"\n"
        "  case \"$*\" in *\"$tok\"*) v \"policy token in curl argv\";; esac\n"
        "  out= body= url=\n"
        "  while [ $# -gt 0 ]; do\n"
        "    case $1 in -o) out=$2; shift;; --data-binary) body=${2#@}; shift;;\n"
        "    -H|-w|--max-time|--noproxy|--config) shift;; -*) ;; *) url=$1;; esac; shift\n"
        "  done\n"
        "  printf '%s\\n' \"$url\" >\"$o/policy-url\"\n"
        "  cp \"$body\" \"$o/policy-body\"\n"
        "  code=$(cat \"$o/policy-code\")\n"
        "  [ \"$code\" = 204 ] || printf 'policy says no' >\"$out\"\n"
        "  printf '%s' \"$code\"\n"
        "  exit 0;;\n"
        "esac\n"
        "out= url=\n"
        "while [ $# -gt 0 ]; do case $1 in -o) out=$2; shift;;\n"
        "  --retry|--connect-timeout|--speed-*|--max-time|--retry-max-time) shift;;\n"
        "  -*) ;; *) url=$1;; esac; shift; done\n"
        "printf '%s\\n' \"$url\" >\"$o/download-url\"\n"
        "cp \"$o/download.tar.gz\" \"$out\"\n";

static const char fake_systemctl[] = "#!/bin/sh\n"
                                     "printf '%s\\n' \"$*\" >>\"$FAKE_DIR/systemctl\"\n"
                                     "exit 1\n";

static const char fake_poweroff[] = "#!/bin/sh\n"
                                    "echo poweroff >>\"$FAKE_DIR/ended\"\n";

struct sandbox {
	char dir[PATH_MAX];    /* everything */
	char home[PATH_MAX];   /* RUNNERD_HOME = where the script is */
	char fake[PATH_MAX];   /* FAKE_DIR: control and output files */
	char bin[PATH_MAX];    /* fake commands, first in PATH */
	char runner[PATH_MAX]; /* the fake runner (image dir) */
	char script[PATH_MAX];
	char log[PATH_MAX];
	const char *path; /* PATH of the run; NULL: bin, then /usr/bin and /bin */
};

static void sb_path(const struct sandbox *sb, char *out, size_t cap, const char *name)
{
	pathf(out, cap, "%s/%s", sb->fake, name);
}

static void sb_put(const struct sandbox *sb, const char *name, const char *text)
{
	char p[PATH_MAX + 64];
	sb_path(sb, p, sizeof(p), name);
	write_file(p, text, 0644);
}

static char *sb_get(const struct sandbox *sb, const char *name)
{
	char p[PATH_MAX + 64];
	sb_path(sb, p, sizeof(p), name);
	return read_text(p);
}

static char *home_get(const struct sandbox *sb, const char *name)
{
	char p[PATH_MAX + 64];
	pathf(p, sizeof(p), "%s/%s", sb->home, name);
	return read_text(p);
}

static bool home_has(const struct sandbox *sb, const char *name)
{
	char p[PATH_MAX + 64];
	pathf(p, sizeof(p), "%s/%s", sb->home, name);
	return exists(p);
}

static void sb_init(struct sandbox *sb, const char *tag)
{
	char p[PATH_MAX + 64];

	sb->path = NULL;
	pathf(sb->dir, sizeof(sb->dir), "%s/%s-XXXXXX", tmp_root, tag);
	assert_non_null(mkdtemp(sb->dir));
	pathf(sb->home, sizeof(sb->home), "%s/home", sb->dir);
	pathf(sb->fake, sizeof(sb->fake), "%s/fake", sb->dir);
	pathf(sb->bin, sizeof(sb->bin), "%s/bin", sb->dir);
	pathf(sb->runner, sizeof(sb->runner), "%s/image-runner", sb->dir);
	pathf(sb->script, sizeof(sb->script), "%s/start.sh", sb->home);
	pathf(sb->log, sizeof(sb->log), "%s/script.log", sb->dir);
	assert_int_equal(mkdir(sb->home, 0700), 0);
	assert_int_equal(mkdir(sb->fake, 0700), 0);
	assert_int_equal(mkdir(sb->bin, 0700), 0);
	assert_int_equal(mkdir(sb->runner, 0700), 0);
	pathf(p, sizeof(p), "%s/run.sh", sb->runner);
	write_file(p, fake_run_sh, 0755);
	pathf(p, sizeof(p), "%s/config.sh", sb->runner);
	write_file(p, fake_config_sh, 0755);
	pathf(p, sizeof(p), "%s/curl", sb->bin);
	write_file(p, fake_curl, 0755);
	pathf(p, sizeof(p), "%s/poweroff", sb->bin);
	write_file(p, fake_poweroff, 0755);
	pathf(p, sizeof(p), "%s/halt", sb->bin);
	write_file(p, fake_poweroff, 0755);
	pathf(p, sizeof(p), "%s/systemctl", sb->bin);
	write_file(p, fake_systemctl, 0755);
	sb_put(sb, "workflow", "wf");
}

/* Render opts into the sandbox's start.sh. */
static void sb_render(struct sandbox *sb, struct runner_script_opts *o)
{
	char *s = render_ok(o);
	write_file(sb->script, s, 0755);
	free(s);
}

/*
 * Run start.sh with shell ("sh" or "busybox") and extra environment
 * ("K=V" strings, NULL-terminated). No RUNNERD_HOME: the script finds its
 * own directory.
 */
static int sb_run(struct sandbox *sb, const char *shell, const char *const *extra)
{
	char path_env[PATH_MAX + 64], fake_env[PATH_MAX + 16], home_env[PATH_MAX + 16];
	char *envp[32];
	size_t n = 0;
	char *argv_sh[] = {(char *)"/bin/sh", sb->script, NULL};
	char *argv_bb[] = {(char *)"/usr/bin/busybox", (char *)"sh", sb->script, NULL};

	/* No sbin: the real poweroff and halt must be out of reach. */
	if (sb->path)
		pathf(path_env, sizeof(path_env), "PATH=%s", sb->path);
	else
		pathf(path_env, sizeof(path_env), "PATH=%s:/usr/bin:/bin", sb->bin);
	pathf(fake_env, sizeof(fake_env), "FAKE_DIR=%s", sb->fake);
	pathf(home_env, sizeof(home_env), "HOME=%s", sb->dir);
	envp[n++] = path_env;
	envp[n++] = fake_env;
	envp[n++] = home_env;
	envp[n++] = (char *)"LANG=C.UTF-8";
	for (size_t i = 0; extra && extra[i]; i++) {
		assert_true(n < ARRAY_SIZE(envp) - 2);
		envp[n++] = (char *)extra[i];
	}
	/* The hooks run under the same shell as the script, unless told. */
	if (strcmp(shell, "busybox") == 0)
		envp[n++] = (char *)"FAKE_HOOK_SHELL=busybox sh";
	envp[n] = NULL;
	return run_cmd(strcmp(shell, "busybox") == 0 ? argv_bb : argv_sh, envp, sb->dir, sb->log);
}

static void sb_no_violation(const struct sandbox *sb)
{
	char *v = sb_get(sb, "violation");
	if (v) {
		char *log = read_text(sb->log);
		fail_msg("fake runner saw: %s\nscript log:\n%s", v, log ? log : "");
	}
}

static void sb_free(struct sandbox *sb)
{
	rm_rf(sb->dir, NULL);
}

static json_t *load_json(const struct sandbox *sb, const char *name)
{
	char p[PATH_MAX + 64];
	json_error_t je;
	json_t *j;
	pathf(p, sizeof(p), "%s/metrics/%s", sb->home, name);
	j = json_load_file(p, 0, &je);
	if (!j)
		fail_msg("%s: %s", p, je.text);
	return j;
}

static int64_t json_int(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static const char *json_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

static void assert_timestamp_file(const struct sandbox *sb, const char *name)
{
	char rel[128], *t;
	int64_t v;
	snprintf(rel, sizeof(rel), "metrics/%s", name);
	t = home_get(sb, rel);
	assert_non_null(t);
	t[strcspn(t, "\n")] = '\0';
	assert_int_equal(parse_int64(t, 1600000000, 4000000000LL, &v), 0);
	free(t);
}

static void assert_post_job(const struct sandbox *sb, const char *status, int64_t code)
{
	json_t *j = load_json(sb, "post-job-metrics.json");
	json_t *info = json_object_get(j, "status_info");
	assert_string_equal(json_str(j, "status"), status);
	assert_true(json_int(j, "timestamp") > 1600000000);
	assert_true(json_is_object(info));
	assert_int_equal(json_int(info, "code"), code);
	json_decref(j);
}

static const char *const shells[] = {"sh", "busybox"};

static void check_hooks_syntax(const struct sandbox *sb)
{
	char p[PATH_MAX + 64];
	pathf(p, sizeof(p), "%s/hooks/pre-job.sh", sb->home);
	assert_syntax(p);
	assert_int_equal(sh_check("bash", p), 0);
	pathf(p, sizeof(p), "%s/hooks/post-job.sh", sb->home);
	assert_syntax(p);
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

static void sha256_hex(const char *path, char out[65])
{
	struct buf b = BUF_INIT(1 << 20);
	unsigned char md[32];
	unsigned int n = 0;
	assert_int_equal(file_read(path, b.max, false, &b, NULL), 0);
	assert_int_equal(EVP_Digest(b.data, b.len, md, &n, EVP_sha256(), NULL), 1);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	buf_release(&b);
}

/* Pack the fake runner into dest (a .tar.gz). */
static void make_package(const struct sandbox *sb, const char *dest)
{
	char *argv[] = {(char *)"/usr/bin/tar", (char *)"-czf",   (char *)dest,        (char *)"-C",
	                (char *)sb->runner,     (char *)"run.sh", (char *)"config.sh", NULL};
	assert_int_equal(run_cmd(argv, NULL, NULL, NULL), 0);
}

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
 * A server that never answers: it listens (so connections succeed, the
 * kernel queues them) but never accepts. Its port in *ret_port.
 */
static int silent_server(int *ret_port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*ret_port = ntohs(a.sin_port);
	return fd;
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

static int group_setup(void **state)
{
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/runnerd-test-runner-XXXXXX");
	if (!mkdtemp(tmp_root))
		return -1;
	have_busybox = access("/usr/bin/busybox", X_OK) == 0;
	if (!have_busybox)
		fprintf(stderr, "busybox missing: busybox runs are skipped\n");
	return 0;
}

static int group_teardown(void **state)
{
	if (!getenv("RUNNERD_KEEP_TMP"))
		rm_rf(tmp_root, NULL);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_labels),
	        cmocka_unit_test(test_html_url),
	        cmocka_unit_test(test_sh_quote),
	        cmocka_unit_test(test_secret_env),
	        cmocka_unit_test(test_render_errors),
	        cmocka_unit_test(test_golden),
	        cmocka_unit_test(test_run_image_version),
	        cmocka_unit_test(test_run_install),
	        cmocka_unit_test(test_run_pre_job_script),
	        cmocka_unit_test(test_run_storage),
	        cmocka_unit_test(test_runner_versions),
	        cmocka_unit_test(test_render_options),
	        cmocka_unit_test(test_script_for),
	        cmocka_unit_test(test_hostile_inert),
	        cmocka_unit_test(test_run_jit_normal),
	        cmocka_unit_test(test_run_secret_file_abnormal),
	        cmocka_unit_test(test_run_nojit_hostile),
	        cmocka_unit_test(test_run_tarball),
	        cmocka_unit_test(test_run_download),
	        cmocka_unit_test(test_run_aproxy_docker_proxy),
	        cmocka_unit_test(test_run_repo_policy),
	        cmocka_unit_test(test_run_repo_policy_no_token),
	        cmocka_unit_test(test_run_download_silent_server),
	        cmocka_unit_test(test_run_repo_policy_silent_server),
	        cmocka_unit_test(test_run_failures),
	        cmocka_unit_test(test_run_poweroff),
	        cmocka_unit_test(test_run_mirror),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
