/*
 * The shared fixture of the local provider's tests (test_provider_local*.c):
 * a temporary state_dir and work_dir, one local provider per manager name,
 * helpers that create and delete instances and look at /proc, the group
 * setup and teardown (which stops, by pid, whatever a failed test left), and
 * the lock that keeps two runs of these programs apart. It asserts (cmocka)
 * rather than returning errors: only tests use it.
 */
#include "provider_local_fixture.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>

char base[PATH_MAX];
char work[PATH_MAX];
char token[PATH_MAX];
struct config_provider pcfg;
struct strv hidden;
struct provider *lp;
pid_t spawned[8];
char sdir[PATH_MAX];
/* One provider per manager name the tests use, all on the same work_dir. */
static struct {
	char manager[32];
	struct provider *p;
} lps[8];

struct provider *open_local(const char *manager, const struct config_provider *pc,
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
struct provider *lpm(const char *manager)
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
struct provider *lpn(const char *name)
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

void inst_path(char *out, size_t cap, const char *name, const char *file)
{
	snprintf(out, cap, "%s/%s/%s", work, name, file);
}

bool wait_file(const char *name, const char *file, long ms)
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
void slurp(const char *name, const char *file, char *out, size_t cap)
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

void spec_init(struct instance_spec *s, const char *name, const char *script, const char *secret)
{
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->flavor = &test_flavor;
	s->startup_script = script;
	s->secret_env = secret;
}

void create_ok(const char *name, const char *manager, const char *script, const char *secret,
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

void delete_ok(const char *name)
{
	struct err e = {0};
	int r = provider_delete(lpn(name), name, &e);
	if (r != 0)
		fail_msg("delete %s: %d %s", name, r, e.msg);
}

enum cloud_state state_of(const char *name)
{
	struct instance in;
	assert_int_equal(provider_get(lpn(name), name, &in, NULL), 0);
	return in.state;
}

bool wait_state(const char *name, enum cloud_state s, long ms)
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
bool proc_cmdline_has(const char *needle, size_t len)
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
bool wait_cmdline(const char *needle, size_t len)
{
	int64_t end = clock_mono_ms() + 3000;
	while (clock_mono_ms() < end) {
		if (proc_cmdline_has(needle, len))
			return true;
		clock_sleep_ms(20);
	}
	return false;
}

pid_t leader_of(const char *name)
{
	struct instance in;
	int64_t v = 0;
	assert_int_equal(provider_get(lpn(name), name, &in, NULL), 0);
	assert_int_equal(parse_int64(in.provider_id, 1, INT_MAX, &v), 0);
	return (pid_t)v;
}

/* A "Key:\tvalue" line of /proc/<pid>/status, "" when absent. */
void proc_status(pid_t pid, const char *key, char *out, size_t cap)
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
long proc_uid(pid_t pid)
{
	char buf[128];
	long v[4];

	proc_status(pid, "Uid", buf, sizeof(buf));
	if (sscanf(buf, "%ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3]) != 4 || v[1] != v[0] ||
	    v[2] != v[0] || v[3] != v[0])
		return -1;
	return v[0];
}

bool uid_in_range(long uid)
{
	return uid >= (long)UID_FIRST && uid <= (long)UID_LAST;
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

int local_fixture_setup(void **state)
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

int local_fixture_teardown(void **state)
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

int local_fixture_lock(void)
{
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
		return -1;
	}
	return 0; /* the lock is held until the program exits */
}
