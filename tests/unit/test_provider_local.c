/*
 * Unit tests of the local provider (src/provider/local/) against the real
 * kernel: runs as root, creates the user runnerd-test-runner, starts real
 * process trees in a temporary work_dir and kills them. Its parsers have
 * test_local_env.c; the memory test double has test_provider_memory.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/clock.h"
#include "util/fileutil.h"
#include "util/strutil.h"
#include "provider/provider.h"
#include "provider/local.h"
#include "provider/local/local_internal.h"

#include <dirent.h>
#include <ftw.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define TEST_USER   "runnerd-test-runner"
#define TEST_SECRET "s3cr3t-jit 'value' with spaces"
#define GRACE_S     1
#define TOKEN_REL   "../../token" /* from an instance dir */
/* providers.local.uid_range of the tests: clear of this machine's accounts and subordinate ids */
#define UID_FIRST 1990000000u
#define UID_LAST  1990000999u
#define UID_RANGE "1990000000-1990000999"

static char base[PATH_MAX];  /* plays runnerd's state_dir */
static char work[PATH_MAX];  /* providers.local.work_dir, inside base */
static char token[PATH_MAX]; /* a root-only 0600 file next to work_dir */
static struct config_provider pcfg;
static struct strv hidden;  /* the policy's hidden_dirs: base plays runnerd's state dir */
static struct provider *lp; /* for manager "ci" */
/* One provider per manager name the tests use, all on the same work_dir. */
static struct {
	char manager[32];
	struct provider *p;
} lps[8];
static pid_t spawned[8];    /* test_local_sweep's children, killed by the teardown if left */
static char sdir[PATH_MAX]; /* test_local_secret_files' secrets, removed by the teardown */

static struct provider *open_local(const char *manager, const struct config_provider *pc,
                                   const struct strv *secrets)
{
	struct provider_policy pol = {.hidden_dirs = &hidden, .secret_files = secrets};
	struct provider *p = NULL;
	struct err e = {0};

	if (provider_open(pc, manager, &p, &e) != 0 || provider_policy(p, &pol, &e) != 0) {
		fprintf(stderr, "provider_open: %s\n", e.msg);
		provider_free(p);
		return NULL;
	}
	return p;
}

/*
 * The local provider of manager (opened on first use). Under a lock:
 * test_local_concurrent's threads ask for theirs at once, and each would
 * otherwise open one of its own (leaking the rest).
 */
static struct provider *lpm(const char *manager)
{
	static pthread_mutex_t lps_lock = PTHREAD_MUTEX_INITIALIZER;
	size_t i;

	pthread_mutex_lock(&lps_lock);
	for (i = 0; i < ARRAY_SIZE(lps); i++) {
		if (lps[i].p && strcmp(lps[i].manager, manager) == 0)
			break;
		if (!lps[i].p) {
			lps[i].p = open_local(manager, &pcfg, NULL);
			str_copy(lps[i].manager, manager, sizeof(lps[i].manager));
			break;
		}
	}
	pthread_mutex_unlock(&lps_lock);
	if (i == ARRAY_SIZE(lps)) {
		fail_msg("too many managers");
		return NULL;
	}
	/* a slot, once filled, stays as it is until the teardown */
	assert_non_null(lps[i].p);
	return lps[i].p;
}

/* The provider of the manager that owns name ("<manager>-<12 hex>"); "ci"'s for any other. */
static struct provider *lpn(const char *name)
{
	char m[64];
	size_t n = strlen(name);

	if (n > 13 && n - 13 < sizeof(m) && name[n - 13] == '-') {
		memcpy(m, name, n - 13);
		m[n - 13] = '\0';
		if (name_is_owned(m, name))
			return lpm(m);
	}
	return lpm("ci");
}

static void inst_path(char *out, size_t cap, const char *name, const char *file)
{
	snprintf(out, cap, "%s/%s/%s", work, name, file);
}

static bool wait_file(const char *name, const char *file, long ms)
{
	char path[PATH_MAX];
	int64_t end = clock_mono_ms() + ms;
	inst_path(path, sizeof(path), name, file);
	while (clock_mono_ms() < end) {
		if (access(path, F_OK) == 0)
			return true;
		clock_sleep_ms(20);
	}
	return false;
}

/* Contents of an instance file (trailing newline stripped); "" when missing. */
static void slurp(const char *name, const char *file, char *out, size_t cap)
{
	char path[PATH_MAX];
	struct buf b = BUF_INIT(cap - 1);
	inst_path(path, sizeof(path), name, file);
	out[0] = '\0';
	if (file_read(path, cap - 1, true, &b, NULL) == 0) {
		str_copy(out, buf_str(&b), cap);
		size_t n = strlen(out);
		while (n > 0 && out[n - 1] == '\n')
			out[--n] = '\0';
	}
	buf_release(&b);
}

static const struct config_flavor test_flavor = {.name = (char *)"small"};

static void spec_init(struct instance_spec *s, const char *name, const char *script,
                      const char *secret)
{
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->flavor = &test_flavor;
	s->startup_script = script;
	s->secret_env = secret;
}

static void create_ok(const char *name, const char *manager, const char *script, const char *secret,
                      struct instance *ret)
{
	struct instance_spec s;
	struct instance in;
	struct err e = {0};
	spec_init(&s, name, script, secret);
	int r = provider_create(lpm(manager), &s, ret ? ret : &in, &e);
	if (r != 0)
		fail_msg("create %s: %d %s", name, r, e.msg);
}

static void delete_ok(const char *name)
{
	struct err e = {0};
	int r = provider_delete(lpn(name), name, &e);
	if (r != 0)
		fail_msg("delete %s: %d %s", name, r, e.msg);
}

static enum cloud_state state_of(const char *name)
{
	struct instance in;
	assert_int_equal(provider_get(lpn(name), name, &in, NULL), 0);
	return in.state;
}

static bool wait_state(const char *name, enum cloud_state s, long ms)
{
	int64_t end = clock_mono_ms() + ms;
	while (clock_mono_ms() < end) {
		if (state_of(name) == s)
			return true;
		clock_sleep_ms(20);
	}
	return false;
}

/* Is any live process's command line holding needle? */
static bool proc_cmdline_has(const char *needle, size_t len)
{
	struct dirent *de;
	bool found = false;
	DIR *d = opendir("/proc");
	assert_non_null(d);
	while ((de = readdir(d)) && !found) {
		char path[300], data[8192];
		ssize_t n;
		int fd;
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, data, sizeof(data));
		close(fd);
		if (n > 0 && memmem(data, (size_t)n, needle, len))
			found = true;
	}
	closedir(d);
	return found;
}

/* A background command may not have exec'd yet when the script says ready. */
static bool wait_cmdline(const char *needle, size_t len)
{
	int64_t end = clock_mono_ms() + 3000;
	while (clock_mono_ms() < end) {
		if (proc_cmdline_has(needle, len))
			return true;
		clock_sleep_ms(20);
	}
	return false;
}

static pid_t leader_of(const char *name)
{
	struct instance in;
	int64_t v = 0;
	assert_int_equal(provider_get(lpn(name), name, &in, NULL), 0);
	assert_int_equal(parse_int64(in.provider_id, 1, INT_MAX, &v), 0);
	return (pid_t)v;
}

/* A "Key:\tvalue" line of /proc/<pid>/status, "" when absent. */
static void proc_status(pid_t pid, const char *key, char *out, size_t cap)
{
	char path[64], data[4096], *p, *end;
	ssize_t n;
	int fd;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	out[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, data, sizeof(data) - 1);
	close(fd);
	if (n <= 0)
		return;
	data[n] = '\0';
	p = strstr(data, key);
	if (!p)
		return;
	p += strlen(key);
	while (*p == ':' || *p == '\t' || *p == ' ')
		p++;
	end = strchr(p, '\n');
	if (end)
		*end = '\0';
	str_copy(out, p, cap);
}

/* The real, effective, saved and filesystem uid of pid (-1 when gone or mixed). */
static long proc_uid(pid_t pid)
{
	char buf[128];
	long v[4];

	proc_status(pid, "Uid", buf, sizeof(buf));
	if (sscanf(buf, "%ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3]) != 4 || v[1] != v[0] ||
	    v[2] != v[0] || v[3] != v[0])
		return -1;
	return v[0];
}

static bool uid_in_range(long uid)
{
	return uid >= (long)UID_FIRST && uid <= (long)UID_LAST;
}

static const char *secret_needle;
static int secret_files;

static int scan_file(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	struct buf b = BUF_INIT(1 << 20);
	(void)f;
	if (flag != FTW_F || !S_ISREG(st->st_mode) || strstr(path, "/secret.out") ||
	    strstr(path, "/env.out"))
		return 0;
	if (file_read(path, b.max, true, &b, NULL) == 0 &&
	    memmem(b.data, b.len, secret_needle, strlen(secret_needle))) {
		fprintf(stderr, "# secret found in %s\n", path);
		secret_files++;
	}
	buf_release(&b);
	return 0;
}

static void cfg_init(void)
{
	memset(&pcfg, 0, sizeof(pcfg));
	pcfg.name = (char *)"local";
	pcfg.type = (char *)"local";
	pcfg.concurrency = 10;
	pcfg.local.work_dir = work;
	pcfg.local.user = TEST_USER;
	pcfg.local.uid_range = (char *)UID_RANGE;
	pcfg.local.stop_timeout = GRACE_S;
	strv_release(&hidden);
	assert_int_equal(strv_push(&hidden, base), 0);
}

static int group_setup(void **state)
{
	struct err e = {0};
	int fd;

	if (geteuid() != 0) {
		fprintf(stderr, "test_provider_local needs root\n");
		return -1;
	}
	/* Not under /tmp, so instances get a private /tmp we can observe. */
	str_copy(base, "/run/runnerd-test-XXXXXX", sizeof(base));
	if (!mkdtemp(base)) {
		str_copy(base, "/tmp/runnerd-test-XXXXXX", sizeof(base));
		if (!mkdtemp(base))
			return -1;
	}
	chmod(base, 0711);
	snprintf(work, sizeof(work), "%s/work", base);
	snprintf(token, sizeof(token), "%s/token", base);
	fd = open(token, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "ROOT-ONLY-TOKEN\n", 16) != 16)
		return -1;
	close(fd);
	cfg_init();
	lp = lpm("ci");
	(void)e;
	return lp ? 0 : -1;
}

/* After a failed test: stop (by pid) any process still working under base. */
static void kill_strays(void)
{
	struct dirent *de;
	DIR *d = opendir("/proc");
	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[300], cwd[PATH_MAX];
		ssize_t n;
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cwd", de->d_name);
		n = readlink(path, cwd, sizeof(cwd) - 1);
		if (n <= 0)
			continue;
		cwd[n] = '\0';
		if (str_has_prefix(cwd, base) && (cwd[strlen(base)] == '/' || !cwd[strlen(base)])) {
			fprintf(stderr, "# killing stray process %s in %s\n", de->d_name, cwd);
			kill((pid_t)strtol(de->d_name, NULL, 10), SIGKILL);
		}
	}
	closedir(d);
}

static int group_teardown(void **state)
{
	struct instance_list l = {0};
	for (size_t m = 0; m < ARRAY_SIZE(lps) && lps[m].p; m++) {
		if (provider_list(lps[m].p, &l, NULL) == 0)
			for (size_t i = 0; i < l.n; i++) {
				struct err e = {0};
				if (provider_delete(lps[m].p, l.v[i].name, &e) < 0)
					fprintf(stderr, "# teardown: %s\n", e.msg);
			}
		instance_list_release(&l);
		provider_free(lps[m].p);
		lps[m].p = NULL;
	}
	lp = NULL;
	strv_release(&hidden);
	/* Only children not reaped yet: their pids cannot have been reused. */
	for (size_t i = 0; i < ARRAY_SIZE(spawned); i++)
		if (spawned[i] > 0 && waitpid(spawned[i], NULL, WNOHANG) == 0 &&
		    kill(spawned[i], SIGKILL) == 0)
			waitpid(spawned[i], NULL, 0);
	kill_strays();
	rm_rf(base, NULL);
	if (sdir[0])
		rm_rf(sdir, NULL);
	return 0;
}

/* ---- local: create and what the instance can and cannot do ------------- */

static void test_local_setup(void **state)
{
	struct passwd *pw = getpwnam(TEST_USER);
	struct stat st;

	/* the legacy user: still made, never run as */
	assert_non_null(pw);
	assert_int_not_equal(pw->pw_uid, 0);
	assert_int_equal(stat(work, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, 0711);
	assert_true(strstr(pw->pw_shell, "nologin") != NULL);
	/* Unknown provider types are refused. */
	struct config_provider nope = pcfg;
	struct provider *p = NULL;
	struct err e = {0};
	nope.type = (char *)"nope";
	assert_int_equal(provider_open(&nope, "ci", &p, &e), -ENOENT);
	assert_null(p);
	assert_true(provider_type_known("local"));
	assert_false(provider_type_known("nope"));
	/* what the manager acts on instead of the backend's name */
	assert_true(provider_traits(lp)->runner_from_host);
	assert_true(provider_traits(lp)->host_process);
	assert_true(provider_traits(lp)->pull_files);
	assert_true(provider_traits(lp)->list_files);
	assert_false(provider_traits(lp)->denylist);
	assert_non_null(
	        strstr(provider_traits(lp)->note, local_isolated(lp) ? "namespace" : "fallback"));
	fprintf(stderr, "# local provider isolation: %s\n",
	        local_isolated(lp) ? "pid+mount namespaces" : "none (session only)");
}

static void test_local_lifecycle(void **state)
{
	const char *a = "ci-00000000000a", *b = "ci-00000000000b";
	char script[4096], buf[512], path[PATH_MAX];
	struct instance in, in2;
	struct instance_list l = {0};
	struct provider *fresh = NULL;
	struct err e = {0};
	enum health h;
	struct stat st;
	long uid;
	pid_t pid;

	create_ok(b, "ci", "touch ready; while [ ! -e stop ]; do sleep 0.05; done\n", NULL, NULL);
	assert_true(wait_file(b, "ready", 5000));
	snprintf(script, sizeof(script),
	         "id -u > uid.out\n"
	         "id -G > groups.out\n"
	         "cat /proc/$$/stat > stat.out\n"
	         "echo \"$MY_SECRET\" > secret.out\n"
	         "env | sort > env.out\n"
	         "if cat '%s' > tok.out 2>/dev/null; then echo readable; else echo denied; fi > "
	         "probe.out\n"
	         "ls '%s' > ls.out 2>&1\n"
	         "ls /proc | grep -c '^[0-9]' > nproc.out\n"
	         "if [ -e '%s' ]; then echo visible; else echo hidden; fi > hide.out\n"
	         "touch /tmp/private-marker\n"
	         "touch ready\n"
	         "while [ ! -e stop ]; do sleep 0.05; done\n",
	         token, work, token);
	create_ok(a, "ci", script,
	          "MY_SECRET='"
	          "s3cr3t-jit '\\''value'\\'' with spaces"
	          "'\n\nPLAIN=x=y\n",
	          &in);
	assert_string_equal(in.name, a);
	assert_int_equal(in.state, CLOUD_ACTIVE);
	assert_true(in.created_at > 0);
	assert_true(wait_file(a, "ready", 5000));

	/* A uid of its own, its own group only, no way back to root. */
	pid = leader_of(a);
	uid = proc_uid(pid);
	assert_true(uid_in_range(uid));
	slurp(a, "uid.out", buf, sizeof(buf));
	assert_int_equal(strtol(buf, NULL, 10), uid);
	slurp(a, "groups.out", buf, sizeof(buf));
	snprintf(path, sizeof(path), "%ld", uid);
	assert_string_equal(buf, path);
	proc_status(pid, "NoNewPrivs", buf, sizeof(buf));
	assert_string_equal(buf, "1");
	proc_status(pid, "Uid", buf, sizeof(buf));
	snprintf(path, sizeof(path), "%ld\t%ld\t%ld\t%ld", uid, uid, uid, uid);
	assert_string_equal(buf, path);

	/* Its own session and process group, led by the leader runnerd recorded
	 * (in a PID namespace that leader is its init, pid 1). */
	slurp(a, "stat.out", buf, sizeof(buf));
	{
		char *p = strrchr(buf, ')');
		long pgrp = 0, sid = 0;
		assert_non_null(p);
		assert_int_equal(sscanf(p + 2, "%*c %*d %ld %ld", &pgrp, &sid), 2);
		assert_int_equal(pgrp, sid);
		assert_int_equal(sid, local_isolated(lp) ? 1 : (long)pid);
		assert_int_not_equal(sid, (long)getsid(0));
	}
	{
		char path2[64];
		struct buf sb = BUF_INIT(1024);
		snprintf(path2, sizeof(path2), "/proc/%d/stat", (int)pid);
		assert_int_equal(file_read(path2, 1024, false, &sb, NULL), 0);
		const char *p = strrchr(buf_str(&sb), ')');
		long pgrp = 0, sid = 0;
		assert_int_equal(sscanf(p + 2, "%*c %*d %ld %ld", &pgrp, &sid), 2);
		assert_int_equal(pgrp, (long)pid);
		assert_int_equal(sid, (long)pid);
		buf_release(&sb);
	}

	/* The secret arrived through the environment, quotes and all... */
	slurp(a, "secret.out", buf, sizeof(buf));
	assert_string_equal(buf, TEST_SECRET);
	/* ...and is in no command line and in no file but the one the script wrote. */
	assert_false(proc_cmdline_has("s3cr3t-jit", 10));
	secret_needle = "s3cr3t-jit";
	secret_files = 0;
	assert_int_equal(nftw(base, scan_file, 16, FTW_PHYS), 0);
	assert_int_equal(secret_files, 0);

	/* A minimal, clean environment. */
	slurp(a, "env.out", buf, sizeof(buf));
	{
		char expect[1024];
		snprintf(expect, sizeof(expect),
		         "HOME=%s/%s\nLANG=C.UTF-8\nMY_SECRET=%s\nPATH=/usr/local/bin:/usr/bin:/"
		         "bin\n"
		         "PLAIN=x=y\nPWD=%s/%s\nRUNNERD_HOME=%s/%s\nUSER=%s",
		         work, a, TEST_SECRET, work, a, work, a, a);
		assert_string_equal(buf, expect);
	}

	/* It cannot read runnerd's 0600 files, nor see the other instances. */
	slurp(a, "probe.out", buf, sizeof(buf));
	assert_string_equal(buf, "denied");
	slurp(a, "ls.out", buf, sizeof(buf));
	assert_null(strstr(buf, b));
	assert_null(strstr(buf, ".state"));
	if (local_isolated(lp)) {
		/* Its own PID namespace: the wrapper, the script, a few commands. */
		slurp(a, "nproc.out", buf, sizeof(buf));
		assert_true(strtol(buf, NULL, 10) <= 6);
		/* runnerd's state dir is an empty tmpfs in there: the token does not exist. */
		slurp(a, "hide.out", buf, sizeof(buf));
		assert_string_equal(buf, "hidden");
	}
	if (local_isolated(lp) && !str_has_prefix(base, "/tmp/")) {
		inst_path(path, sizeof(path), a, "tmp/private-marker");
		assert_int_equal(access(path, F_OK), 0);
		assert_int_not_equal(access("/tmp/private-marker", F_OK), 0);
	}

	/* Its directory is its own, 0700; runnerd's record is not in it. */
	inst_path(path, sizeof(path), a, "");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, uid);
	assert_int_equal(st.st_mode & 07777, 0700);
	snprintf(path, sizeof(path), "%s/.state/%s.json", work, a);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	/* get / health / list while it runs. */
	assert_int_equal(provider_get(lpn(a), a, &in2, &e), 0);
	assert_int_equal(in2.state, CLOUD_ACTIVE);
	assert_string_equal(in2.provider_id, in.provider_id);
	assert_int_equal(provider_health(lpn(a), a, &h, &e), 0);
	assert_int_equal(h, HEALTH_HEALTHY);
	assert_int_equal(provider_list(lpm("ci"), &l, &e), 0);
	assert_int_equal(l.n, 2);
	for (size_t i = 0; i < l.n; i++)
		assert_int_equal(l.v[i].state, CLOUD_ACTIVE);

	/* A daemon restart: a new provider sees what the old one started. */
	fresh = open_local("ci", &pcfg, NULL);
	assert_non_null(fresh);
	assert_int_equal(provider_list(fresh, &l, &e), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(provider_get(fresh, a, &in2, &e), 0);
	assert_int_equal(in2.state, CLOUD_ACTIVE);
	assert_string_equal(in2.provider_id, in.provider_id);
	provider_free(fresh);

	/* The script ends: STOPPED, unhealthy. */
	inst_path(path, sizeof(path), a, "stop");
	assert_int_equal(close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)), 0);
	assert_true(wait_state(a, CLOUD_STOPPED, 5000));
	assert_int_equal(provider_health(lpn(a), a, &h, &e), 0);
	assert_int_equal(h, HEALTH_UNHEALTHY);
	assert_int_equal(provider_list(lpm("ci"), &l, &e), 0);
	assert_int_equal(l.n, 2);
	for (size_t i = 0; i < l.n; i++)
		assert_int_equal(l.v[i].state,
		                 strcmp(l.v[i].name, a) == 0 ? CLOUD_STOPPED : CLOUD_ACTIVE);
	instance_list_release(&l);

	/* Delete removes everything; deleting again succeeds; get says ENOENT. */
	delete_ok(a);
	delete_ok(b);
	inst_path(path, sizeof(path), a, "");
	assert_int_not_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/.state/%s.json", work, a);
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_equal(provider_get(lpn(a), a, &in2, &e), -ENOENT);
	assert_int_equal(provider_health(lpn(a), a, &h, &e), 0);
	assert_int_equal(h, HEALTH_UNKNOWN);
	delete_ok(a);
	delete_ok("ci-0123456789ab");
}

static void test_local_tarball(void **state)
{
	const char *a = "ci-0000000000c1";
	char tb[PATH_MAX], path[PATH_MAX], buf[256];
	struct instance_spec s;
	struct instance in;
	struct err e = {0};
	struct stat st;

	snprintf(tb, sizeof(tb), "%s/runner-src.tar.gz", base);
	assert_int_equal(file_write_atomic(tb, "TARBALL", 7, 0600, &e), 0);
	spec_init(&s, a,
	          "[ \"$RUNNERD_RUNNER_TARBALL\" = \"$HOME/runner.tar.gz\" ] && "
	          "cat \"$RUNNERD_RUNNER_TARBALL\" > tb.out\n"
	          "printf '%s|%s' \"$MULTI\" \"$B\" > multi.out\n"
	          "touch ready; sleep 30\n",
	          /* as runner_secret_env quotes: a quoted word may hold a newline */
	          "MULTI='line1\nit'\\''s line2'\nB=2");
	s.runner_tarball = tb;
	assert_int_equal(provider_create(lpn(s.name), &s, &in, &e), 0);
	assert_true(wait_file(a, "ready", 5000));
	slurp(a, "tb.out", buf, sizeof(buf));
	assert_string_equal(buf, "TARBALL");
	slurp(a, "multi.out", buf, sizeof(buf));
	assert_string_equal(buf, "line1\nit's line2|2");
	/* root's and read-only: the job reads it, never changes it */
	inst_path(path, sizeof(path), a, "runner.tar.gz");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, 0444);
	/* A graceful stop: TERM ends the sleep, the script ends well before the grace. */
	int64_t t0 = clock_mono_ms();
	delete_ok(a);
	assert_true(clock_mono_ms() - t0 < GRACE_S * 1000 - 200);
}

static void test_local_create_refused(void **state)
{
	struct instance_spec s;
	struct instance in;
	struct err e = {0};
	struct instance_list l = {0};

	spec_init(&s, "ci-0000000000d1", "true\n", "HOME=/root\n");
	assert_int_equal(provider_create(lpn(s.name), &s, &in, &e), -EINVAL);
	spec_init(&s, "ci-0000000000d1", "true\n", "MY_SECRET='unterminated-S3CRET\n");
	assert_int_equal(provider_create(lpn(s.name), &s, &in, &e), -EINVAL);
	assert_null(strstr(e.msg, "S3CRET"));
	spec_init(&s, "ci-0000000000d1", "true\n", "A=1\nA=2\n");
	assert_int_equal(provider_create(lpn(s.name), &s, &in, &e), -EINVAL);
	spec_init(&s, "ci-0000000000d1", "true\n", "1BAD=x\n");
	assert_int_equal(provider_create(lpn(s.name), &s, &in, &e), -EINVAL);
	spec_init(&s, "ci-0000000000d1", "true\n", "K='a'b\n");
	assert_int_equal(provider_create(lpn(s.name), &s, &in, &e), -EINVAL);
	spec_init(&s, "ci-0000000000d1", "true\n", "K\n");
	assert_int_equal(provider_create(lpn(s.name), &s, &in, &e), -EINVAL);
	spec_init(&s, "../etc", "true\n", NULL);
	assert_int_equal(provider_create(lpn(s.name), &s, &in, &e), -EINVAL);
	spec_init(&s, "ci-east-0000000000d1", "true\n", NULL);
	assert_int_equal(provider_create(lp, &s, &in, &e), -EINVAL);
	spec_init(&s, "ci-0000000000d1", NULL, NULL);
	assert_int_equal(provider_create(lpn(s.name), &s, &in, &e), -EINVAL);
	/* Nothing was left behind. */
	assert_int_equal(provider_list(lpm("ci"), &l, &e), 0);
	assert_int_equal(l.n, 0);
	instance_list_release(&l);
	assert_int_equal(provider_delete(lpn("../etc"), "../etc", &e), -EINVAL);
	assert_int_equal(provider_get(lpn("ci-0000000000d1"), "ci-0000000000d1", &in, &e), -ENOENT);
}

static void test_local_list_ownership(void **state)
{
	struct instance_list l = {0};
	struct err e = {0};
	char path[PATH_MAX], bak[PATH_MAX];

	create_ok("ci-east-0000000000e1", "ci-east", "sleep 30\n", NULL, NULL);
	create_ok("ci-0000000000e2", "ci", "sleep 30\n", NULL, NULL);
	/* Junk: dirs without records, records of other names, a corrupt record. */
	snprintf(path, sizeof(path), "%s/junk", work);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/ci-aaaaaaaaaaaa", work);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/.state/junk.json", work);
	assert_int_equal(file_write_atomic(path, "{}", 2, 0600, &e), 0);
	snprintf(path, sizeof(path), "%s/.state/ci-cccccccccccc.txt", work);
	assert_int_equal(file_write_atomic(path, "{}", 2, 0600, &e), 0);
	snprintf(path, sizeof(path), "%s/.state/ci-bbbbbbbbbbbb.json", work);
	assert_int_equal(file_write_atomic(path, "not json", 8, 0600, &e), 0);

	assert_int_equal(provider_list(lpm("ci"), &l, &e), 0);
	assert_int_equal(l.n, 2);
	for (size_t i = 0; i < l.n; i++) {
		if (strcmp(l.v[i].name, "ci-0000000000e2") == 0)
			assert_int_equal(l.v[i].state, CLOUD_ACTIVE);
		else if (strcmp(l.v[i].name, "ci-bbbbbbbbbbbb") == 0)
			assert_int_equal(l.v[i].state, CLOUD_ERROR); /* so the manager removes it */
		else
			fail_msg("unexpected %s", l.v[i].name);
	}
	assert_int_equal(provider_list(lpm("ci-east"), &l, &e), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].name, "ci-east-0000000000e1");
	assert_int_equal(provider_list(lpm("c"), &l, &e), 0);
	assert_int_equal(l.n, 0);

	/* A listing that cannot be completed is an error, and ret is untouched. */
	snprintf(path, sizeof(path), "%s/.state", work);
	snprintf(bak, sizeof(bak), "%s/.state-bak", work);
	assert_int_equal(rename(path, bak), 0);
	assert_int_equal(symlink(bak, path), 0);
	{
		int r = provider_list(lpm("ci"), &l, &e);
		assert_int_equal(unlink(path), 0);
		assert_int_equal(rename(bak, path), 0);
		assert_true(r == -ELOOP || r == -ENOTDIR);
		assert_int_equal(l.n, 0); /* the previous listing, untouched */
	}
	instance_list_release(&l);

	delete_ok("ci-east-0000000000e1");
	delete_ok("ci-0000000000e2");
	delete_ok("ci-bbbbbbbbbbbb");
	delete_ok("ci-aaaaaaaaaaaa"); /* a dir without a record goes too */
	assert_int_equal(provider_list(lpm("ci"), &l, &e), 0);
	assert_int_equal(l.n, 0);
	instance_list_release(&l);
	snprintf(path, sizeof(path), "%s/ci-aaaaaaaaaaaa", work);
	assert_int_not_equal(access(path, F_OK), 0);
}

static void test_local_delete_stubborn(void **state)
{
	const char *a = "ci-0000000000f1";
	char path[PATH_MAX];
	int64_t t0, dt;
	pid_t pid;

	/* Ignores TERM and (where a namespace still holds it) escapes into its own session. */
	create_ok(a, "ci",
	          local_isolated(lp) ? "trap '' TERM\n"
	                               "setsid sleep 1000.125 &\n"
	                               "touch ready\n"
	                               "while :; do sleep 0.1; done\n"
	                             : "trap '' TERM\n"
	                               "sleep 1000.125 &\n"
	                               "touch ready\n"
	                               "while :; do sleep 0.1; done\n",
	          NULL, NULL);
	assert_true(wait_file(a, "ready", 5000));
	assert_true(wait_cmdline("1000.125", 8));
	pid = leader_of(a);
	t0 = clock_mono_ms();
	delete_ok(a);
	dt = clock_mono_ms() - t0;
	assert_true(dt >= GRACE_S * 1000);
	assert_true(dt < GRACE_S * 1000 + 4000);
	assert_false(proc_cmdline_has("1000.125", 8));
	{
		char sp[64], data[512];
		snprintf(sp, sizeof(sp), "/proc/%d/stat", (int)pid);
		struct buf b = BUF_INIT(sizeof(data));
		if (file_read(sp, sizeof(data), false, &b, NULL) == 0) {
			const char *p = strrchr(buf_str(&b), ')');
			assert_non_null(p);
			assert_true(p[2] == 'Z' || p[2] == 'X'); /* an unreaped orphan at most */
		}
		buf_release(&b);
	}
	inst_path(path, sizeof(path), a, "");
	assert_int_not_equal(access(path, F_OK), 0);
}

/* Without namespaces: still its own session, still its own uid, still killed. */
static void test_local_fallback(void **state)
{
	const char *a = "ci-0000000000f2";
	char buf[1024];
	int64_t t0;

	local_set_isolated(lp, false);
	create_ok(a, "ci",
	          "trap '' TERM\n"
	          "id -u > uid.out\n"
	          "echo \"$MY_SECRET\" > secret.out\n"
	          "cat /proc/$$/stat > stat.out\n"
	          "sleep 1000.25 &\n"
	          "if cat " TOKEN_REL
	          " >/dev/null 2>&1; then echo readable; else echo denied; fi > probe.out\n"
	          "touch ready\n"
	          "while :; do sleep 0.1; done\n",
	          "MY_SECRET=fallback-S3CRET\n", NULL);
	local_set_isolated(lp, true);
	assert_true(wait_file(a, "ready", 5000));
	slurp(a, "uid.out", buf, sizeof(buf));
	assert_int_equal(strtol(buf, NULL, 10), proc_uid(leader_of(a)));
	assert_true(uid_in_range(strtol(buf, NULL, 10)));
	slurp(a, "secret.out", buf, sizeof(buf));
	assert_string_equal(buf, "fallback-S3CRET");
	slurp(a, "probe.out", buf, sizeof(buf));
	assert_string_equal(buf, "denied"); /* file modes alone keep it out */
	assert_false(proc_cmdline_has("fallback-S3CRET", 15));
	slurp(a, "stat.out", buf, sizeof(buf));
	assert_non_null(strrchr(buf, ')'));
	{
		long pid = strtol(buf, NULL, 10), pgrp = 0, sid = 0;
		assert_int_equal(sscanf(strrchr(buf, ')') + 2, "%*c %*d %ld %ld", &pgrp, &sid), 2);
		assert_int_equal(pid, leader_of(a));
		assert_int_equal(pgrp, pid);
		assert_int_equal(sid, pid);
	}
	assert_true(wait_cmdline("1000.25", 7));
	t0 = clock_mono_ms();
	delete_ok(a);
	assert_true(clock_mono_ms() - t0 >= GRACE_S * 1000);
	assert_false(proc_cmdline_has("1000.25", 7));

	/* A start that fails as the instance's uid (it cannot reach its dir) is an
	 * error that names the step, and leaves nothing behind. */
	{
		struct instance_spec s;
		struct instance in;
		struct instance_list l = {0};
		struct err e = {0};
		int r;

		local_set_isolated(lp, false);
		assert_int_equal(chmod(base, 0700), 0);
		spec_init(&s, "ci-0000000000f3", "touch ran\n", "K=v\n");
		r = provider_create(lpn(s.name), &s, &in, &e);
		chmod(base, 0711);
		local_set_isolated(lp, true);
		assert_int_equal(r, -EACCES);
		assert_non_null(strstr(e.msg, "chdir"));
		assert_int_equal(provider_list(lpm("ci"), &l, &e), 0);
		assert_int_equal(l.n, 0);
		instance_list_release(&l);
		inst_path(buf, sizeof(buf), "ci-0000000000f3", "");
		assert_int_not_equal(access(buf, F_OK), 0);
	}
}

/* Without namespaces, delete finds what left the leader behind: its session outlives
 * it (nohup, a killed shell) and a setsid'd child keeps the instance's environment. */
static void test_local_fallback_escapes(void **state)
{
	const char *a = "ci-0000000000f4", *b = "ci-0000000000f5";
	int64_t end;
	pid_t pid;

	local_set_isolated(lp, false);
	create_ok(a, "ci",
	          "nohup sleep 1000.31 >/dev/null 2>&1 &\n"
	          "(trap '' TERM; while :; do sleep 0.1; done) &\n"
	          "touch ready\n"
	          "kill -KILL $$\n",
	          NULL, NULL);
	create_ok(b, "ci",
	          "setsid sleep 1000.32 &\n"
	          "setsid sh -c 'trap \"\" TERM; while :; do sleep 0.1; done' 1000.33 &\n"
	          "touch ready\n"
	          "while :; do sleep 0.1; done\n",
	          NULL, NULL);
	local_set_isolated(lp, true);
	assert_true(wait_file(a, "ready", 5000));
	assert_true(wait_file(b, "ready", 5000));
	assert_true(wait_cmdline("1000.31", 7));
	assert_true(wait_cmdline("1000.32", 7));
	assert_true(wait_cmdline("1000.33", 7));
	/* The leader is gone, reaped even, its session is not. */
	pid = leader_of(a);
	assert_true(wait_state(a, CLOUD_STOPPED, 5000));
	for (end = clock_mono_ms() + 5000; kill(pid, 0) == 0 && clock_mono_ms() < end;)
		clock_sleep_ms(20);
	assert_int_equal(kill(pid, 0), -1);
	assert_true(proc_cmdline_has("1000.31", 7));
	delete_ok(a);
	assert_false(proc_cmdline_has("1000.31", 7));
	delete_ok(b);
	assert_false(proc_cmdline_has("1000.32", 7));
	assert_false(proc_cmdline_has("1000.33", 7));
}

/* A process of (real) uid, euid and gid in its own session with envp, as a leftover would be. */
static pid_t spawn_sleep(uid_t uid, uid_t euid, gid_t gid, const char *arg, char *const envp[])
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[] = {"sleep", (char *)arg, NULL};
		int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(125);
		close_range(3, ~0U, 0);
		if (setsid() < 0 || setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(uid, euid, euid) < 0)
			_exit(126);
		execve("/bin/sleep", argv, envp);
		_exit(127);
	}
	for (size_t i = 0; i < ARRAY_SIZE(spawned); i++)
		if (spawned[i] == 0) {
			spawned[i] = pid;
			break;
		}
	return pid;
}

/* Did our child pid die of SIGKILL (true) or is it still running after a while (false)? */
static bool child_killed(pid_t pid, long ms)
{
	int64_t end = clock_mono_ms() + ms;
	int status = 0;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
		assert_int_equal(r, 0);
		if (clock_mono_ms() >= end)
			return false;
		clock_sleep_ms(20);
	}
}

/* The start time (field 22 of /proc/<pid>/stat) of a live process. */
static uint64_t starttime_of(pid_t pid)
{
	struct local_proc_info pi;
	assert_int_equal(local_proc_info_read(pid, &pi), 0);
	return pi.starttime;
}

/*
 * An instance an older runnerd started as the shared user (a version 1
 * record, no uid) is adopted: listed, spared by gc with its session, and
 * stopped by delete. The shared user's other processes are leftovers gc
 * kills, whatever their environment says (RUNNERD_HOME naming an instance
 * no longer spares anything); nothing of another uid, or of a mixed one,
 * is signalled. A list kills nothing.
 */
static void test_local_sweep(void **state)
{
	const char *a = "ci-0000000000f6";
	struct passwd *pw = getpwnam(TEST_USER);
	struct instance_list l = {0};
	char path[PATH_MAX], rec[512], home[PATH_MAX + 32];
	uid_t nobody = 65534;
	struct err e = {0};
	pid_t legacy, bare, claims_home, foreign_uid, mixed_uid;
	int status = 0;

	assert_non_null(pw);
	if (nobody == pw->pw_uid)
		nobody = 65533;
	snprintf(home, sizeof(home), "RUNNERD_HOME=%s/%s", work, a);
	{
		char *none[] = {NULL};
		char *home_env[] = {"A=1", home, NULL};
		legacy = spawn_sleep(pw->pw_uid, pw->pw_uid, pw->pw_gid, "1000.34", none);
		bare = spawn_sleep(pw->pw_uid, pw->pw_uid, pw->pw_gid, "1000.35", none);
		claims_home = spawn_sleep(pw->pw_uid, pw->pw_uid, pw->pw_gid, "1000.37", home_env);
		foreign_uid = spawn_sleep(nobody, nobody, nobody, "1000.36", none);
		/* the runner's real uid, root's effective one: not the runner's to kill */
		mixed_uid = spawn_sleep(pw->pw_uid, 0, pw->pw_gid, "1000.39", none);
	}
	assert_true(wait_cmdline("1000.39", 7));
	/* the record an older runnerd wrote for the first: its session leader */
	snprintf(rec, sizeof(rec),
	         "{\"version\":1,\"name\":\"%s\",\"flavor\":\"small\",\"pid\":%d,"
	         "\"starttime\":%" PRIu64 ",\"isolation\":\"none\",\"created_at\":%lld}",
	         a, (int)legacy, starttime_of(legacy), (long long)time(NULL));
	snprintf(path, sizeof(path), "%s/.state/%s.json", work, a);
	assert_int_equal(file_write_atomic(path, rec, strlen(rec), 0600, &e), 0);
	inst_path(path, sizeof(path), a, "");
	assert_int_equal(mkdir(path, 0700), 0);

	assert_int_equal(provider_list(lpm("ci"), &l, &e), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].name, a);
	assert_int_equal(l.v[0].state, CLOUD_ACTIVE);
	instance_list_release(&l);
	assert_false(child_killed(bare, 300));
	assert_int_equal(provider_gc(lp, &e), 0);
	assert_true(child_killed(bare, 3000));
	assert_true(child_killed(claims_home, 3000));
	assert_false(child_killed(legacy, 300));
	assert_false(child_killed(foreign_uid, 300));
	assert_false(child_killed(mixed_uid, 300));
	/* delete stops the legacy instance (TERM ends the sleep) */
	delete_ok(a);
	assert_int_equal(waitpid(legacy, &status, 0), legacy);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(provider_gc(lp, &e), 0);
	assert_false(child_killed(foreign_uid, 300));
	assert_false(child_killed(mixed_uid, 300));
	kill(foreign_uid, SIGKILL);
	kill(mixed_uid, SIGKILL);
	assert_true(child_killed(foreign_uid, 3000));
	assert_true(child_killed(mixed_uid, 3000));
}

/*
 * A kill between writing a record and renaming it leaves a temporary in
 * .state/: gc removes those whose writer is gone and leaves a live one.
 */
static void test_local_sweep_temporaries(void **state)
{
	char dead_new[PATH_MAX], dead_old[PATH_MAX], live[PATH_MAX];
	struct err e = {0};
	struct stat st;
	pid_t dead = fork();

	assert_true(dead >= 0);
	if (dead == 0)
		_exit(0);
	assert_int_equal(waitpid(dead, NULL, 0), dead);
	snprintf(dead_new, sizeof(dead_new),
	         "%s/.state/.ci-0000000000f7.json" FILE_TMP_TAG "%d.0a1b2c3d", work, (int)dead);
	snprintf(dead_old, sizeof(dead_old), "%s/.state/ci-0000000000f8.json.tmp.%d", work,
	         (int)dead);
	snprintf(live, sizeof(live), "%s/.state/.ci-0000000000f9.json" FILE_TMP_TAG "%d.0a1b2c3d",
	         work, (int)getpid());
	assert_int_equal(file_write_atomic(dead_new, "{", 1, 0600, &e), 0);
	assert_int_equal(file_write_atomic(dead_old, "{", 1, 0600, &e), 0);
	assert_int_equal(file_write_atomic(live, "{", 1, 0600, &e), 0);
	assert_int_equal(provider_gc(lp, &e), 0);
	assert_int_equal(lstat(dead_new, &st), -1);
	assert_int_equal(lstat(dead_old, &st), -1);
	assert_int_equal(lstat(live, &st), 0);
	assert_int_equal(unlink(live), 0);
}

/* Namespaces: when the namespace's init dies, by whatever hand, everything in it dies. */
static void test_local_init_dies(void **state)
{
	const char *a = "ci-0000000000f7";
	char path[64];
	struct stat ns;
	pid_t pid;
	int64_t end;
	int left = -1;

	if (!local_isolated(lp)) {
		skip();
		return;
	}
	create_ok(a, "ci",
	          "trap '' TERM\n"
	          "setsid sleep 1000.41 &\n"
	          "nohup sleep 1000.42 >/dev/null 2>&1 &\n"
	          "setsid sh -c 'trap \"\" TERM; while :; do sleep 0.1; done' 1000.43 &\n"
	          "touch ready\n"
	          "while :; do sleep 0.1; done\n",
	          NULL, NULL);
	assert_true(wait_file(a, "ready", 5000));
	assert_true(wait_cmdline("1000.41", 7));
	assert_true(wait_cmdline("1000.42", 7));
	assert_true(wait_cmdline("1000.43", 7));
	pid = leader_of(a);
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	assert_int_equal(stat(path, &ns), 0);
	assert_int_equal(kill(pid, SIGKILL), 0);
	for (end = clock_mono_ms() + 5000; left != 0 && clock_mono_ms() < end; clock_sleep_ms(20)) {
		struct dirent *de;
		DIR *d = opendir("/proc");
		assert_non_null(d);
		left = 0;
		while ((de = readdir(d))) {
			struct stat st;
			if (de->d_name[0] < '0' || de->d_name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "/proc/%s/ns/pid", de->d_name);
			if (stat(path, &st) == 0 && st.st_dev == ns.st_dev &&
			    st.st_ino == ns.st_ino)
				left++;
		}
		closedir(d);
	}
	assert_int_equal(left, 0);
	assert_false(proc_cmdline_has("1000.41", 7));
	assert_false(proc_cmdline_has("1000.42", 7));
	assert_false(proc_cmdline_has("1000.43", 7));
	assert_true(wait_state(a, CLOUD_STOPPED, 5000));
	delete_ok(a);
}

static void write_mode(const char *path, const char *data, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/*
 * runnerd's secret files are out of a job's reach in namespace mode even
 * when their mode would let it read them; without namespaces their mode is
 * all that protects them.
 */
static void test_local_secret_files(void **state)
{
	const char *a = "ci-0000000000f8", *b = "ci-0000000000f9";
	char tok[PATH_MAX], key[PATH_MAX], pol[PATH_MAX], link[PATH_MAX];
	char other[PATH_MAX], missing[PATH_MAX], script[4096], buf[1024];
	struct strv secrets = {0};
	struct provider *p2 = NULL;
	struct instance_spec s;
	struct instance in;
	struct err e = {0};
	struct buf hb = BUF_INIT(256);

	str_copy(sdir, "/run/runnerd-test-sec-XXXXXX", sizeof(sdir));
	if (!mkdtemp(sdir)) {
		str_copy(sdir, "/var/tmp/runnerd-test-sec-XXXXXX", sizeof(sdir));
		assert_non_null(mkdtemp(sdir));
	}
	assert_int_equal(chmod(sdir, 0755), 0);
	snprintf(tok, sizeof(tok), "%s/token", sdir);
	snprintf(key, sizeof(key), "%s/app.pem", sdir);
	snprintf(pol, sizeof(pol), "%s/policy", sdir);
	snprintf(link, sizeof(link), "%s/policy-link", sdir);
	snprintf(other, sizeof(other), "%s/other.txt", sdir);
	snprintf(missing, sizeof(missing), "%s/missing", sdir);
	write_mode(tok, "GH-TOKEN-0644\n", 0644);
	write_mode(key, "APP-KEY-0644\n", 0644);
	write_mode(pol, "POLICY-0644\n", 0644);
	write_mode(other, "VISIBLE\n", 0644);
	assert_int_equal(symlink(pol, link), 0);

	/* the secret files a config names, as config_secret_files lists them */
	assert_int_equal(strv_push(&secrets, tok), 0);
	assert_int_equal(strv_push(&secrets, key), 0);
	assert_int_equal(strv_push(&secrets, missing), 0);
	assert_int_equal(strv_push(&secrets, link), 0); /* hidden where it leads */
	p2 = open_local("ci", &pcfg, &secrets);
	assert_non_null(p2);

	snprintf(script, sizeof(script),
	         "cat '%s' '%s' '%s' '%s' > read.out 2>&1\n"
	         "cat '%s' > other.out 2>&1\n"
	         "touch ready\n"
	         "sleep 30\n",
	         tok, key, pol, link, other);
	if (local_isolated(p2)) {
		spec_init(&s, a, script, NULL);
		if (provider_create(p2, &s, &in, &e) != 0)
			fail_msg("create %s: %s", a, e.msg);
		assert_true(wait_file(a, "ready", 5000));
		slurp(a, "read.out", buf, sizeof(buf));
		assert_null(strstr(buf, "0644"));
		assert_non_null(strstr(buf, "denied")); /* "Permission denied" */
		slurp(a, "other.out", buf, sizeof(buf));
		assert_string_equal(buf, "VISIBLE"); /* the files, not their directory */
		assert_int_equal(provider_delete(p2, a, &e), 0);
	}
	local_set_isolated(p2, false);
	spec_init(&s, b, script, NULL);
	if (provider_create(p2, &s, &in, &e) != 0)
		fail_msg("create %s: %s", b, e.msg);
	assert_true(wait_file(b, "ready", 5000));
	slurp(b, "read.out", buf, sizeof(buf));
	assert_non_null(strstr(buf, "GH-TOKEN-0644"));
	assert_int_equal(provider_delete(p2, b, &e), 0);
	provider_free(p2);
	strv_release(&secrets);

	/* The files themselves were not touched. */
	assert_int_equal(file_read(tok, 256, true, &hb, &e), 0);
	assert_string_equal(buf_str(&hb), "GH-TOKEN-0644\n");
	buf_release(&hb);
	rm_rf(sdir, NULL);
	sdir[0] = '\0';
}

/* Instances outlive the process that created them (a daemon restart). */
static void test_local_survives_creator(void **state)
{
	const char *a = "ci-0000000000a9";
	struct instance in;
	struct err e = {0};
	int status = 0;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct provider *p = NULL;
		struct instance_spec s;
		p = open_local("ci", &pcfg, NULL);
		if (!p)
			_exit(2);
		spec_init(&s, a, "touch ready; sleep 30\n", NULL);
		_exit(provider_create(p, &s, &in, NULL) == 0 ? 0 : 3);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(wait_file(a, "ready", 5000));
	assert_int_equal(provider_get(lpn(a), a, &in, &e), 0);
	assert_int_equal(in.state, CLOUD_ACTIVE);
	delete_ok(a);
	assert_int_equal(provider_get(lpn(a), a, &in, &e), -ENOENT);
}

static void test_local_pull_file(void **state)
{
	const char *a = "pf-000000000001";
	struct buf b = BUF_INIT(0);
	struct err e = {0};
	char path[PATH_MAX];
	int fd;

	create_ok(a, "pf",
	          "printf '{\"ok\":true}' > metrics.json\n"
	          "mkdir -p sub && printf x > sub/x\n"
	          "ln -s /etc/passwd leak\n"
	          "ln -s /etc etcl\n"
	          "head -c 5000 /dev/zero > big\n"
	          "mkfifo fifo\n"
	          "touch ready\n"
	          "sleep 30\n",
	          NULL, NULL);
	assert_true(wait_file(a, "ready", 5000));
	assert_int_equal(provider_pull_file(lpn(a), a, "metrics.json", 1024, &b, &e), 0);
	assert_string_equal(buf_str(&b), "{\"ok\":true}");
	assert_int_equal(provider_pull_file(lpn(a), a, "./sub//x", 1024, &b, &e), 0);
	assert_string_equal(buf_str(&b), "x");
	assert_int_equal(provider_pull_file(lpn(a), a, "big", 5000, &b, &e), 0);
	assert_int_equal(b.len, 5000);
	buf_release(&b);
	assert_int_equal(provider_pull_file(lpn(a), a, "big", 100, &b, &e), -E2BIG);
	assert_null(b.data); /* untouched */
	assert_int_equal(provider_pull_file(lpn(a), a, "leak", 1 << 20, &b, &e), -EINVAL);
	assert_int_equal(provider_pull_file(lpn(a), a, "etcl/passwd", 1 << 20, &b, &e), -EINVAL);
	assert_int_equal(provider_pull_file(lpn(a), a, "sub", 1024, &b, &e), -EINVAL);
	assert_int_equal(provider_pull_file(lpn(a), a, "fifo", 1024, &b, &e), -EINVAL);
	assert_int_equal(
	        provider_pull_file(lpn(a), a, "../pf-000000000001/metrics.json", 1024, &b, &e),
	        -EINVAL);
	assert_int_equal(provider_pull_file(lpn(a), a, "sub/../metrics.json", 1024, &b, &e),
	                 -EINVAL);
	assert_int_equal(provider_pull_file(lpn(a), a, "/etc/passwd", 1024, &b, &e), -EINVAL);
	assert_int_equal(provider_pull_file(lpn(a), a, "", 1024, &b, &e), -EINVAL);
	assert_int_equal(provider_pull_file(lpn(a), a, "missing", 1024, &b, &e), -ENOENT);
	assert_int_equal(
	        provider_pull_file(lpn("pf-000000000009"), "pf-000000000009", "x", 1024, &b, &e),
	        -ENOENT);
	/* A file that is not the runner's (as a hard link to a secret would be). */
	inst_path(path, sizeof(path), a, "rootfile");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(provider_pull_file(lpn(a), a, "rootfile", 1024, &b, &e), -EACCES);
	assert_null(b.data);
	delete_ok(a);
}

static bool listed(const struct provider_file_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return true;
	return false;
}

static const struct provider_list_query all_files = {.max = PROVIDER_LIST_FILES_MAX};

static void test_local_list_files(void **state)
{
	const char *a = "lf-000000000001";
	struct provider_file_list v = {0};
	struct err e = {0};
	char path[PATH_MAX];
	int fd;

	assert_true(provider_traits(lp)->list_files);
	create_ok(a, "lf",
	          "mkdir -p _diag/sub && printf x > _diag/Runner_1.log && printf yy > "
	          "_diag/Worker_2.log\n"
	          "ln -s /etc/passwd _diag/leak\n"
	          "ln -s /etc etcl\n"
	          "mkfifo _diag/fifo\n"
	          "touch ready\n"
	          "sleep 30\n",
	          NULL, NULL);
	assert_true(wait_file(a, "ready", 5000));
	/* a file that is not the runner's is left out */
	inst_path(path, sizeof(path), a, "_diag/rootfile");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(provider_list_files(lpn(a), a, "_diag", &all_files, &v, &e), 0);
	assert_int_equal(v.n, 2);
	assert_int_equal(v.total, 2);
	assert_false(v.cut);
	assert_true(listed(&v, "Runner_1.log"));
	assert_true(listed(&v, "Worker_2.log"));
	for (size_t i = 0; i < v.n; i++) {
		assert_int_equal(v.v[i].size, strcmp(v.v[i].name, "Runner_1.log") == 0 ? 1 : 2);
		assert_in_range(v.v[i].mtime, time(NULL) - 60, time(NULL) + 1);
	}
	provider_file_list_release(&v);
	assert_int_equal(provider_list_files(lpn(a), a, "etcl", &all_files, &v, &e), -ENOTDIR);
	assert_int_equal(provider_list_files(lpn(a), a, "ready", &all_files, &v, &e), -ENOTDIR);
	assert_int_equal(provider_list_files(lpn(a), a, "missing", &all_files, &v, &e), -ENOENT);
	assert_int_equal(provider_list_files(lpn(a), a, "_diag/../..", &all_files, &v, &e),
	                 -EINVAL);
	assert_int_equal(provider_list_files(lpn(a), a, "/etc", &all_files, &v, &e), -EINVAL);
	assert_null(v.v); /* untouched */
	assert_int_equal(provider_list_files(lpn(a), a, ".", &all_files, &v, &e), 0);
	assert_true(listed(&v, "startup.sh") || listed(&v, "ready"));
	assert_false(listed(&v, "etcl"));
	assert_false(listed(&v, "_diag"));
	provider_file_list_release(&v);
	provider_file_list_release(NULL);
	delete_ok(a);
}

/*
 * A job that fills _diag with 1,500 files hides nothing: the listing does
 * not fail, it gives the most useful files (the runner's own first, then
 * the newest) and says how many there were.
 */
static void test_local_list_files_many(void **state)
{
	const char *a = "lf-000000000002";
	static const char *const prefer[] = {"Runner_", "Worker_", NULL};
	struct provider_list_query q = {.max = 10, .prefer = prefer};
	struct provider_file_list v = {0};
	struct err e = {0};
	char path[PATH_MAX], rel[64];
	time_t t0 = time(NULL) - 100000;

	create_ok(a, "lf",
	          "mkdir _diag && printf runner > _diag/Runner_1.log && printf w > "
	          "_diag/Worker_1.log\n"
	          "i=0; while [ $i -lt 1500 ]; do printf j > _diag/junk-$i.log; i=$((i+1)); done\n"
	          "touch ready\n"
	          "sleep 30\n",
	          NULL, NULL);
	assert_true(wait_file(a, "ready", 10000));
	/* junk-<i> was changed i seconds after t0, the runner's logs before all of it */
	for (int i = 0; i < 1502; i++) {
		struct timespec ts[2] = {{.tv_sec = t0 + i}, {.tv_sec = t0 + i}};
		if (i < 1500)
			snprintf(rel, sizeof(rel), "_diag/junk-%d.log", i);
		else
			snprintf(rel, sizeof(rel), "_diag/%s_1.log",
			         i == 1500 ? "Runner" : "Worker");
		if (i >= 1500)
			ts[0].tv_sec = ts[1].tv_sec = t0 - 1000;
		inst_path(path, sizeof(path), a, rel);
		assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
	}
	assert_int_equal(provider_list_files(lpn(a), a, "_diag", &q, &v, &e), 0);
	assert_int_equal(v.n, 10);
	assert_int_equal(v.total, 1502);
	assert_true(v.cut);
	assert_string_equal(v.v[0].name, "Runner_1.log");
	assert_true(v.v[0].preferred);
	assert_int_equal(v.v[0].size, 6);
	assert_string_equal(v.v[1].name, "Worker_1.log");
	for (int i = 2; i < 10; i++) {
		snprintf(rel, sizeof(rel), "junk-%d.log", 1499 - (i - 2));
		assert_string_equal(v.v[i].name, rel);
		assert_int_equal(v.v[i].mtime, t0 + 1499 - (i - 2));
		assert_false(v.v[i].preferred);
	}
	/* nothing preferred: the newest */
	q.prefer = NULL;
	q.max = 3;
	assert_int_equal(provider_list_files(lpn(a), a, "_diag", &q, &v, &e), 0);
	assert_int_equal(v.n, 3);
	assert_string_equal(v.v[0].name, "junk-1499.log");
	assert_string_equal(v.v[2].name, "junk-1497.log");
	provider_file_list_release(&v);
	delete_ok(a);
}

struct cc_arg {
	char name[INSTANCE_NAME_MAX];
	int r;
};

static void *cc_create(void *p)
{
	struct cc_arg *c = p;
	struct instance_spec s;
	struct instance in;
	spec_init(&s, c->name, "sleep 30\n", "K=v\n");
	c->r = provider_create(lpn(s.name), &s, &in, NULL);
	return NULL;
}

static void *cc_delete(void *p)
{
	struct cc_arg *c = p;
	c->r = provider_delete(lpn(c->name), c->name, NULL);
	return NULL;
}

static void test_local_concurrent(void **state)
{
	pthread_t t[6];
	struct cc_arg a[6];
	struct instance_list l = {0};

	for (int i = 0; i < 6; i++) {
		snprintf(a[i].name, sizeof(a[i].name), "cc-%012x", i + 1);
		assert_int_equal(pthread_create(&t[i], NULL, cc_create, &a[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].r, 0);
	}
	assert_int_equal(provider_list(lpm("cc"), &l, NULL), 0);
	assert_int_equal(l.n, 6);
	for (size_t i = 0; i < l.n; i++)
		assert_int_equal(l.v[i].state, CLOUD_ACTIVE);
	for (int i = 0; i < 6; i++)
		assert_int_equal(pthread_create(&t[i], NULL, cc_delete, &a[i]), 0);
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].r, 0);
	}
	assert_int_equal(provider_list(lpm("cc"), &l, NULL), 0);
	assert_int_equal(l.n, 0);
	instance_list_release(&l);
}

/* ---- deadlines and the cancel flag -------------------------------------- */

/* Is a process other than this one running this test binary (a starter, A or B)? */
#define TWIN_COMM "lock-wait"

/* Another run of this test, waiting for the lock main takes (it names itself so). */
static bool waiting_twin(const char *pid)
{
	char path[300], comm[32] = "";
	FILE *f;
	snprintf(path, sizeof(path), "/proc/%s/comm", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = 0;
	fclose(f);
	return strncmp(comm, TWIN_COMM "\n", sizeof(TWIN_COMM)) == 0;
}

static bool starter_left(void)
{
	struct stat self, st;
	struct dirent *de;
	bool found = false;
	DIR *d;

	assert_int_equal(stat("/proc/self/exe", &self), 0);
	d = opendir("/proc");
	assert_non_null(d);
	while ((de = readdir(d)) && !found) {
		char path[300];
		if (de->d_name[0] < '0' || de->d_name[0] > '9' ||
		    strtol(de->d_name, NULL, 10) == (long)getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%s/exe", de->d_name);
		found = stat(path, &st) == 0 && st.st_dev == self.st_dev &&
		        st.st_ino == self.st_ino && !waiting_twin(de->d_name);
	}
	closedir(d);
	return found;
}

/*
 * A create cancelled during its handshake gives up and leaves nothing: no
 * record, no directory, no starter, and the script never ran.
 */
static void test_local_create_cancelled(void **state)
{
	const char *a = "ci-0000000000c9";
	atomic_bool yes = true;
	struct provider_call c = {.deadline = clock_mono_ms() + 60000, .cancel = &yes};
	struct instance_spec s;
	struct instance in;
	struct err e = {0};
	char path[PATH_MAX];
	int64_t end;

	spec_init(&s, a, "touch ran; sleep 30\n", "K=v\n");
	/* the backend itself: the front refuses a call that is cancelled already */
	assert_int_equal(local_ops.create(lp, &c, &s, &in, &e), -ECANCELED);
	assert_non_null(strstr(e.msg, "cancelled"));
	assert_int_equal(provider_get(lp, a, &in, &e), -ENOENT);
	inst_path(path, sizeof(path), a, "");
	assert_int_not_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/.state/%s.json", work, a);
	assert_int_not_equal(access(path, F_OK), 0);
	for (end = clock_mono_ms() + 3000; starter_left() && clock_mono_ms() < end;)
		clock_sleep_ms(20);
	assert_false(starter_left());
	/* and the name is free again */
	create_ok(a, "ci", "touch ready; sleep 30\n", NULL, NULL);
	assert_true(wait_file(a, "ready", 5000));
	delete_ok(a);
}

static void *cancel_later(void *flag)
{
	clock_sleep_ms(100);
	atomic_store((atomic_bool *)flag, true);
	return NULL;
}

/* The handshake's wait ends at the call's deadline, and at once when it is cancelled. */
static void test_local_handshake_bounded(void **state)
{
	struct local_spawn_handle h = {.pidfd = -1, .rep = -1, .go = -1};
	atomic_bool flag = true;
	struct provider_call c = {.deadline = clock_mono_ms() + 10000, .cancel = &flag};
	struct err e = {0};
	int rep[2], go[2];
	pthread_t t;
	int64_t t0, dt;
	char ch = 0;

	/* cancelled before it: B is not let go ("go" stays empty for the caller to close) */
	assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
	assert_int_equal(pipe2(go, O_CLOEXEC | O_NONBLOCK), 0);
	h.rep = rep[0];
	h.go = go[1];
	assert_int_equal(local_spawn_go("ci-0000000000ca", &h, &c, &e), -ECANCELED);
	assert_int_equal(read(go[0], &ch, 1), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(h.go, go[1]);

	/* a starter that never answers: the call's deadline, not LOCAL_SPAWN_TIMEOUT_MS */
	atomic_store(&flag, false);
	c.deadline = clock_mono_ms() + 300;
	t0 = clock_mono_ms();
	assert_int_equal(local_spawn_go("ci-0000000000ca", &h, &c, &e), -ETIMEDOUT);
	dt = clock_mono_ms() - t0;
	assert_true(dt >= 250 && dt < 2000);
	assert_int_equal(read(go[0], &ch, 1), 1);
	assert_int_equal(ch, 'g');
	assert_int_equal(h.go, -1);
	close(go[0]);

	/* cancelled while it waits */
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	h.go = go[1];
	c.deadline = clock_mono_ms() + 10000;
	assert_int_equal(pthread_create(&t, NULL, cancel_later, &flag), 0);
	t0 = clock_mono_ms();
	assert_int_equal(local_spawn_go("ci-0000000000ca", &h, &c, &e), -ECANCELED);
	dt = clock_mono_ms() - t0;
	pthread_join(t, NULL);
	assert_true(dt < 1000);
	assert_non_null(strstr(e.msg, "cancelled"));
	close(go[0]);
	close(rep[1]);
	local_spawn_close(&h);
	assert_int_equal(h.rep, -1);
}

/*
 * A delete's stop ends at its deadline: the grace is cut short, the job
 * killed, and what is not seen gone by then keeps its record for the next
 * delete. The deadline is the grace and the KILL rounds at least.
 */
static void test_local_delete_deadline(void **state)
{
	const char *a = "ci-0000000000cb";
	struct config_provider slow = pcfg;
	struct provider *p2;
	struct instance in;
	struct err e = {0};
	int64_t saved, t0, dt, end;
	int r;

	slow.local.stop_timeout = 600;
	p2 = open_local("ci", &slow, NULL);
	assert_non_null(p2);
	assert_true(p2->deadline_ms[PROVIDER_OP_DELETE] >= 600 * 1000 + 2 * LOCAL_KILL_TIMEOUT_MS);
	provider_free(p2);
	assert_true(lp->deadline_ms[PROVIDER_OP_DELETE] >=
	            GRACE_S * 1000 + 2 * LOCAL_KILL_TIMEOUT_MS);

	create_ok(a, "ci",
	          "trap '' TERM\nsleep 1000.51 &\ntouch ready\nwhile :; do sleep 0.1; done\n", NULL,
	          NULL);
	assert_true(wait_file(a, "ready", 5000));
	assert_true(wait_cmdline("1000.51", 7));
	saved = lp->deadline_ms[PROVIDER_OP_DELETE];
	lp->deadline_ms[PROVIDER_OP_DELETE] = 300;
	t0 = clock_mono_ms();
	r = provider_delete(lp, a, &e);
	dt = clock_mono_ms() - t0;
	lp->deadline_ms[PROVIDER_OP_DELETE] = saved;
	if (r != 0 && r != -ETIMEDOUT)
		fail_msg("delete %s: %d %s", a, r, e.msg);
	fprintf(stderr, "# delete at a 300 ms deadline: %s after %" PRId64 " ms\n",
	        r == 0 ? "gone" : "record kept", dt);
	assert_true(dt < GRACE_S * 1000);
	for (end = clock_mono_ms() + 3000; proc_cmdline_has("1000.51", 7) && clock_mono_ms() < end;)
		clock_sleep_ms(20);
	assert_false(proc_cmdline_has("1000.51", 7));
	delete_ok(a);
	assert_int_equal(provider_get(lp, a, &in, &e), -ENOENT);
}

/* ---- a uid of its own per instance -------------------------------------- */

/*
 * Every instance runs as a uid (and gid) of its own from uid_range, with no
 * other group; its script and runner package are root's and read-only to
 * it; a new provider (a daemon restart) finds the same uid in the record.
 */
static void test_local_uids(void **state)
{
	const char *a = "ci-0000000000a1", *b = "ci-0000000000a2";
	const char *script = "id -u > uid.out\n"
	                     "id -g > gid.out\n"
	                     "id -G > groups.out\n"
	                     "if (echo 'echo changed' >> startup.sh) 2>/dev/null; then echo wrote; "
	                     "else echo denied; fi > script.out\n"
	                     "if (echo x >> runner.tar.gz) 2>/dev/null; then echo wrote; "
	                     "else echo denied; fi > tarball.out\n"
	                     "touch ready\n"
	                     "while [ ! -e stop ]; do sleep 0.05; done\n";
	char tb[PATH_MAX], path[PATH_MAX], buf[256], want[64];
	struct provider *fresh;
	struct instance_spec s;
	struct instance in;
	struct err e = {0};
	struct stat st;
	long ua, ub;

	snprintf(tb, sizeof(tb), "%s/runner-uids.tar.gz", base);
	assert_int_equal(file_write_atomic(tb, "TARBALL", 7, 0600, &e), 0);
	for (int i = 0; i < 2; i++) {
		spec_init(&s, i ? b : a, script, NULL);
		s.runner_tarball = tb;
		if (provider_create(lp, &s, &in, &e) != 0)
			fail_msg("create %s: %s", s.name, e.msg);
	}
	assert_true(wait_file(a, "ready", 5000));
	assert_true(wait_file(b, "ready", 5000));
	ua = proc_uid(leader_of(a));
	ub = proc_uid(leader_of(b));
	fprintf(stderr, "# uids: %s %ld, %s %ld\n", a, ua, b, ub);
	assert_true(uid_in_range(ua));
	assert_true(uid_in_range(ub));
	assert_int_not_equal(ua, ub);
	slurp(a, "uid.out", buf, sizeof(buf));
	assert_int_equal(strtol(buf, NULL, 10), ua);
	snprintf(want, sizeof(want), "%ld", ua);
	slurp(a, "gid.out", buf, sizeof(buf));
	assert_string_equal(buf, want);
	slurp(a, "groups.out", buf, sizeof(buf));
	assert_string_equal(buf, want);
	/* its dir is its own; its script and package are root's, read-only */
	inst_path(path, sizeof(path), a, "");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, ua);
	assert_int_equal(st.st_gid, ua);
	assert_int_equal(st.st_mode & 07777, 0700);
	inst_path(path, sizeof(path), a, "startup.sh");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 0222, 0);
	slurp(a, "script.out", buf, sizeof(buf));
	assert_string_equal(buf, "denied");
	slurp(a, "tarball.out", buf, sizeof(buf));
	assert_string_equal(buf, "denied");
	/* a daemon restart: the same instances, the same uids */
	fresh = open_local("ci", &pcfg, NULL);
	assert_non_null(fresh);
	assert_int_equal(provider_get(fresh, a, &in, &e), 0);
	assert_int_equal(in.state, CLOUD_ACTIVE);
	provider_free(fresh);
	assert_int_equal(proc_uid(leader_of(a)), ua);
	delete_ok(a);
	delete_ok(b);
}

/*
 * Fallback mode (forced): instance B's job cannot read A's environment (its
 * secret), write into A's directory or replace A's hook; a process of B
 * that names A's directory in RUNNERD_HOME and leaves B's session dies with
 * B all the same (delete, then gc).
 */
static void test_local_fallback_apart(void **state)
{
	const char *a = "ci-0000000000a3", *b = "ci-0000000000a4";
	char adir[PATH_MAX], script[8192], buf[256], path[PATH_MAX];
	struct err e = {0};
	pid_t apid;

	local_set_isolated(lp, false);
	create_ok(a, "ci",
	          "mkdir -p hooks && printf '#!/bin/sh\\necho original\\n' > hooks/pre-job.sh\n"
	          "chmod 755 hooks/pre-job.sh\n"
	          "sleep 1000.6 &\n"
	          "touch ready\n"
	          "while [ ! -e stop ]; do sleep 0.05; done\n",
	          "MY_SECRET=APART-S3CRET-of-a\n", NULL);
	assert_true(wait_file(a, "ready", 5000));
	assert_true(wait_cmdline("1000.6", 6));
	apid = leader_of(a);
	inst_path(adir, sizeof(adir), a, "");
	adir[strlen(adir) - 1] = '\0'; /* no trailing slash */
	snprintf(script, sizeof(script),
	         "if grep -qa APART-S3CRET /proc/%d/environ 2>/dev/null; then echo readable; "
	         "else echo denied; fi > environ.out\n"
	         "n=0; for f in /proc/[0-9]*/environ; do "
	         "if grep -qa APART-S3CRET \"$f\" 2>/dev/null; then n=$((n+1)); fi; done; "
	         "echo $n > environ_all.out\n"
	         "if (echo x > '%s/intruder') 2>/dev/null; then echo wrote; else echo denied; fi "
	         "> write.out\n"
	         "if (printf 'echo replaced\\n' > '%s/hooks/pre-job.sh') 2>/dev/null; then echo "
	         "wrote; else echo denied; fi > hook.out\n"
	         "if mv '%s/hooks' '%s/hooks.old' 2>/dev/null; then echo moved; else echo denied; "
	         "fi > mv.out\n"
	         "RUNNERD_HOME='%s' setsid sleep 1000.61 </dev/null >/dev/null 2>&1 &\n"
	         "touch ready\n"
	         "while [ ! -e stop ]; do sleep 0.05; done\n",
	         (int)apid, adir, adir, adir, adir, adir);
	create_ok(b, "ci", script, NULL, NULL);
	local_set_isolated(lp, true);
	assert_true(wait_file(b, "ready", 5000));
	assert_true(wait_cmdline("1000.61", 7));
	slurp(b, "environ.out", buf, sizeof(buf));
	assert_string_equal(buf, "denied");
	slurp(b, "environ_all.out", buf, sizeof(buf));
	assert_string_equal(buf, "0");
	slurp(b, "write.out", buf, sizeof(buf));
	assert_string_equal(buf, "denied");
	slurp(b, "hook.out", buf, sizeof(buf));
	assert_string_equal(buf, "denied");
	slurp(b, "mv.out", buf, sizeof(buf));
	assert_string_equal(buf, "denied");
	inst_path(path, sizeof(path), a, "intruder");
	assert_int_not_equal(access(path, F_OK), 0);
	slurp(a, "hooks/pre-job.sh", buf, sizeof(buf));
	assert_string_equal(buf, "#!/bin/sh\necho original");

	/* B's process that claims A's home dies with B, and A's processes do not */
	delete_ok(b);
	assert_int_equal(provider_gc(lp, &e), 0);
	assert_false(proc_cmdline_has("1000.61", 7));
	assert_true(proc_cmdline_has("1000.6", 6));
	assert_int_equal(state_of(a), CLOUD_ACTIVE);
	delete_ok(a);
	assert_false(proc_cmdline_has("1000.6", 6));
}

/*
 * gc finds leftovers by uid: a process of a uid in the range that no
 * instance holds is killed whatever it says of itself (here: the home of a
 * live instance), the live instance's processes are not, and nothing of a
 * uid outside the range, or of a mixed uid, is signalled.
 */
static void test_local_gc_by_uid(void **state)
{
	const char *a = "ci-0000000000a5", *c = "ci-0000000000a6";
	char adir[PATH_MAX], script[4096], path[PATH_MAX], home[PATH_MAX + 32];
	char *none[] = {NULL};
	struct err e = {0};
	pid_t stray, mixed, foreign;
	uid_t nobody = 65534;

	create_ok(a, "ci", "sleep 1000.63 &\ntouch ready\nwhile :; do sleep 0.1; done\n", NULL,
	          NULL);
	assert_true(wait_file(a, "ready", 5000));
	inst_path(adir, sizeof(adir), a, "");
	adir[strlen(adir) - 1] = '\0';
	snprintf(script, sizeof(script),
	         "RUNNERD_HOME='%s' setsid sleep 1000.64 </dev/null >/dev/null 2>&1 &\n"
	         "touch ready\n"
	         "while :; do sleep 0.1; done\n",
	         adir);
	local_set_isolated(lp, false);
	create_ok(c, "ci", script, NULL, NULL);
	local_set_isolated(lp, true);
	assert_true(wait_file(c, "ready", 5000));
	assert_true(wait_cmdline("1000.64", 7));
	/* C's record is lost (unreadable): its delete cannot stop what it does not know */
	snprintf(path, sizeof(path), "%s/.state/%s.json", work, c);
	assert_int_equal(file_write_atomic(path, "not json", 8, 0600, &e), 0);
	delete_ok(c);
	snprintf(home, sizeof(home), "RUNNERD_HOME=%s", adir);
	{
		char *env[] = {home, NULL};
		stray = spawn_sleep(UID_LAST, UID_LAST, UID_LAST, "1000.65", env);
		mixed = spawn_sleep(UID_LAST - 1, 0, UID_LAST - 1, "1000.66", none);
		foreign = spawn_sleep(nobody, nobody, nobody, "1000.67", none);
	}
	assert_true(wait_cmdline("1000.67", 7));
	clock_sleep_ms(2300); /* older than any starter could be */
	assert_int_equal(provider_gc(lp, &e), 0);
	assert_false(proc_cmdline_has("1000.64", 7));
	assert_true(child_killed(stray, 3000));
	assert_false(child_killed(mixed, 300));
	assert_false(child_killed(foreign, 300));
	assert_true(proc_cmdline_has("1000.63", 7));
	assert_int_equal(state_of(a), CLOUD_ACTIVE);
	kill(mixed, SIGKILL);
	kill(foreign, SIGKILL);
	assert_true(child_killed(mixed, 3000));
	assert_true(child_killed(foreign, 3000));
	delete_ok(a);
}

/*
 * RUNNERD_LOCAL_NO_NAMESPACES=1 forces fallback mode, which opens only with
 * allow_weak_isolation; the note then says what isolation is left.
 */
static void test_local_weak_refused(void **state)
{
	struct config_provider weak = pcfg;
	struct provider *p = NULL;
	struct err e = {0};
	const char *note;

	assert_int_equal(setenv("RUNNERD_LOCAL_NO_NAMESPACES", "1", 1), 0);
	assert_int_not_equal(provider_open(&pcfg, "ci", &p, &e), 0);
	assert_null(p);
	assert_non_null(strstr(e.msg, "allow_weak_isolation"));
	weak.local.allow_weak_isolation = true;
	assert_int_equal(provider_open(&weak, "ci", &p, &e), 0);
	unsetenv("RUNNERD_LOCAL_NO_NAMESPACES");
	assert_false(local_isolated(p));
	note = provider_traits(p)->note;
	fprintf(stderr, "# note: %s\n", note);
	assert_non_null(strstr(note, "fallback"));
	assert_non_null(strstr(note, UID_RANGE));
	assert_non_null(strstr(note, "/tmp"));
	assert_null(strchr(note, '\n'));
	provider_free(p);
	/* without the variable, where namespaces work, the same config opens isolated */
	p = open_local("ci", &pcfg, NULL);
	assert_non_null(p);
	note = provider_traits(p)->note;
	fprintf(stderr, "# note: %s\n", note);
	assert_non_null(strstr(note, UID_RANGE));
	if (local_isolated(p))
		assert_non_null(strstr(note, "namespace"));
	provider_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_local_setup),
	        cmocka_unit_test(test_local_lifecycle),
	        cmocka_unit_test(test_local_tarball),
	        cmocka_unit_test(test_local_create_refused),
	        cmocka_unit_test(test_local_list_ownership),
	        cmocka_unit_test(test_local_delete_stubborn),
	        cmocka_unit_test(test_local_fallback),
	        cmocka_unit_test(test_local_fallback_escapes),
	        cmocka_unit_test(test_local_sweep),
	        cmocka_unit_test(test_local_sweep_temporaries),
	        cmocka_unit_test(test_local_init_dies),
	        cmocka_unit_test(test_local_secret_files),
	        cmocka_unit_test(test_local_survives_creator),
	        cmocka_unit_test(test_local_pull_file),
	        cmocka_unit_test(test_local_list_files),
	        cmocka_unit_test(test_local_list_files_many),
	        cmocka_unit_test(test_local_concurrent),
	        cmocka_unit_test(test_local_create_cancelled),
	        cmocka_unit_test(test_local_handshake_bounded),
	        cmocka_unit_test(test_local_delete_deadline),
	        cmocka_unit_test(test_local_uids),
	        cmocka_unit_test(test_local_fallback_apart),
	        cmocka_unit_test(test_local_gc_by_uid),
	        cmocka_unit_test(test_local_weak_refused),
	};
	/* Two runs at once (a build and its sanitizer twin, two checkouts) share the
	 * uid range and the process table: one's gc would stop the other's strays and
	 * its cmdline needles would match the other's sleeps. One run at a time; the
	 * one waiting names itself so that starter_left does not count it. */
	char comm[32] = "";
	int lock =
	        open("/tmp/runnerd-test-provider-local.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0 || prctl(PR_GET_NAME, comm) != 0 || prctl(PR_SET_NAME, TWIN_COMM) != 0 ||
	    flock(lock, LOCK_EX) != 0 || prctl(PR_SET_NAME, comm) != 0) {
		perror("/tmp/runnerd-test-provider-local.lock");
		return 1;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
