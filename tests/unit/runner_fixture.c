/*
 * The shared fixture of the runner tests (test_runner*.c): temp files and
 * commands, `sh -n` checks, the configurations the startup script is
 * rendered from (one per golden case), hostile values, and the sandbox in
 * which a rendered script runs against a fake runner (fake run.sh,
 * config.sh, curl, systemctl and poweroff in a temp dir) that records where
 * secrets go. It asserts (cmocka) rather than returning errors: only tests
 * use it. runner_fixture.h says what each piece is for.
 */
#include "runner_fixture.h"

#include <openssl/evp.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

char tmp_root[PATH_MAX];
bool have_busybox;

/* Test fixtures need no fsync (file_write_atomic's would cost seconds). */
void write_file(const char *path, const char *text, mode_t mode)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0 || fchmod(fd, mode) < 0 || write(fd, text, len) != (ssize_t)len)
		fail_msg("write %s: %s", path, strerror(errno));
	close(fd);
}

char *read_text(const char *path)
{
	struct buf b = BUF_INIT(1 << 20);
	if (file_read(path, b.max, false, &b, NULL) < 0)
		return NULL;
	return buf_detach(&b, NULL);
}

bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

void pathf(char *out, size_t cap, const char *fmt, ...)
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
int run_cmd(char *const argv[], char *const envp[], const char *dir, const char *log)
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

int sh_check(const char *shell, const char *path)
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

void assert_syntax(const char *path)
{
	assert_int_equal(sh_check("sh", path), 0);
	if (have_busybox)
		assert_int_equal(sh_check("busybox", path), 0);
}

void assert_syntax_text(const char *text)
{
	char path[PATH_MAX];
	pathf(path, sizeof(path), "%s/syntax-check.sh", tmp_root);
	write_file(path, text, 0600);
	assert_syntax(path);
}

void base(struct fixture_cfg *f)
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

void case_jit_image(struct fixture_cfg *f)
{
	base(f);
}

void case_nojit_org_poweroff(struct fixture_cfg *f)
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

void case_nojit_repo_simulator(struct fixture_cfg *f)
{
	base(f);
	f->cfg.runner.jit = false;
	f->cfg.github.api_url = "http://127.0.0.1:8080";
	f->cfg.github.runner_group = "builders"; /* not an org: not rendered */
}

void case_proxy(struct fixture_cfg *f)
{
	base(f);
	f->cfg.runner.proxy.http = "http://proxy.example:3128";
	f->cfg.runner.proxy.https = "http://proxy.example:3129";
	f->cfg.runner.proxy.no_proxy = "localhost,127.0.0.1,.internal";
	f->cfg.runner.proxy.aproxy = true;
}

void case_mirror(struct fixture_cfg *f)
{
	base(f);
	f->cfg.runner.dockerhub_mirror = "https://mirror.example:5000";
}

void case_ssh_debug(struct fixture_cfg *f)
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

void case_repo_policy(struct fixture_cfg *f)
{
	base(f);
	f->cfg.runner.repo_policy_url = "http://10.1.2.3:8080/";
}

void case_download(struct fixture_cfg *f)
{
	base(f);
	f->flavor.arch = ARCH_ARM64;
	f->opts.home = "/home/runner";
	f->opts.image_dir = NULL;
	f->opts.download_url = "https://github.com/actions/runner/releases/download/v2.321.0/"
	                       "actions-runner-linux-arm64-2.321.0.tar.gz";
	f->opts.sha256 = "62cc5735d63057d8d07441507c3d6974e90c1854bdb33e9c8b26c0da086336e1";
}

void case_install(struct fixture_cfg *f)
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

void case_storage_memory(struct fixture_cfg *f)
{
	base(f);
	f->opts.end = RUNNER_END_POWEROFF;
	f->cfg.runner.storage = RUNNER_STORAGE_MEMORY;
	f->cfg.runner.storage_size = 64LL << 20;
}

char *render_ok(const struct runner_script_opts *o)
{
	struct buf b = BUF_INIT(RUNNER_SCRIPT_MAX);
	struct err e = {0};
	int r = runner_script_render(o, &b, &e);
	if (r < 0)
		fail_msg("render: %d %s", r, e.msg);
	return buf_detach(&b, NULL);
}

/* ---- hostile values ----------------------------------------------------- */

const char *const hostile_values[] = {
        "it's",
        "$(touch pwned-dollar)",
        "`touch pwned-tick`",
        "'; touch pwned-quote; '",
        "x\ntouch pwned-newline\n",
        "\"; touch pwned-dq; \"",
        "\\' ; touch pwned-bs ; \\'",
        "\nRUNNERD_PRE_JOB_EOF\ntouch pwned-heredoc\n",
};

void hostile_config(struct fixture_cfg *f, const char *h, char *label_buf, size_t cap)
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

void sb_path(const struct sandbox *sb, char *out, size_t cap, const char *name)
{
	pathf(out, cap, "%s/%s", sb->fake, name);
}

void sb_put(const struct sandbox *sb, const char *name, const char *text)
{
	char p[PATH_MAX + 64];
	sb_path(sb, p, sizeof(p), name);
	write_file(p, text, 0644);
}

char *sb_get(const struct sandbox *sb, const char *name)
{
	char p[PATH_MAX + 64];
	sb_path(sb, p, sizeof(p), name);
	return read_text(p);
}

char *home_get(const struct sandbox *sb, const char *name)
{
	char p[PATH_MAX + 64];
	pathf(p, sizeof(p), "%s/%s", sb->home, name);
	return read_text(p);
}

bool home_has(const struct sandbox *sb, const char *name)
{
	char p[PATH_MAX + 64];
	pathf(p, sizeof(p), "%s/%s", sb->home, name);
	return exists(p);
}

void sb_init(struct sandbox *sb, const char *tag)
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
void sb_render(struct sandbox *sb, struct runner_script_opts *o)
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
int sb_run(struct sandbox *sb, const char *shell, const char *const *extra)
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

void sb_no_violation(const struct sandbox *sb)
{
	char *v = sb_get(sb, "violation");
	if (v) {
		char *log = read_text(sb->log);
		fail_msg("fake runner saw: %s\nscript log:\n%s", v, log ? log : "");
	}
}

void sb_free(struct sandbox *sb)
{
	rm_rf(sb->dir, NULL);
}

json_t *load_json(const struct sandbox *sb, const char *name)
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

int64_t json_int(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

const char *json_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

void assert_timestamp_file(const struct sandbox *sb, const char *name)
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

void assert_post_job(const struct sandbox *sb, const char *status, int64_t code)
{
	json_t *j = load_json(sb, "post-job-metrics.json");
	json_t *info = json_object_get(j, "status_info");
	assert_string_equal(json_str(j, "status"), status);
	assert_true(json_int(j, "timestamp") > 1600000000);
	assert_true(json_is_object(info));
	assert_int_equal(json_int(info, "code"), code);
	json_decref(j);
}

const char *const shells[] = {"sh", "busybox"};

void check_hooks_syntax(const struct sandbox *sb)
{
	char p[PATH_MAX + 64];
	pathf(p, sizeof(p), "%s/hooks/pre-job.sh", sb->home);
	assert_syntax(p);
	assert_int_equal(sh_check("bash", p), 0);
	pathf(p, sizeof(p), "%s/hooks/post-job.sh", sb->home);
	assert_syntax(p);
}

void sha256_hex(const char *path, char out[65])
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
void make_package(const struct sandbox *sb, const char *dest)
{
	char *argv[] = {(char *)"/usr/bin/tar", (char *)"-czf",   (char *)dest,        (char *)"-C",
	                (char *)sb->runner,     (char *)"run.sh", (char *)"config.sh", NULL};
	assert_int_equal(run_cmd(argv, NULL, NULL, NULL), 0);
}

/*
 * A server that never answers: it listens (so connections succeed, the
 * kernel queues them) but never accepts. Its port in *ret_port.
 */
int silent_server(int *ret_port)
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

int runner_fixture_setup(void **state)
{
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/runnerd-test-runner-XXXXXX");
	if (!mkdtemp(tmp_root))
		return -1;
	have_busybox = access("/usr/bin/busybox", X_OK) == 0;
	if (!have_busybox)
		fprintf(stderr, "busybox missing: busybox runs are skipped\n");
	return 0;
}

int runner_fixture_teardown(void **state)
{
	if (!getenv("RUNNERD_KEEP_TMP"))
		rm_rf(tmp_root, NULL);
	return 0;
}
