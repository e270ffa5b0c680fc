/*
 * The `local` provider (see local.h): runner instances as process trees on
 * this machine. It must never run an instance as root or as the daemon's
 * user, never put a secret into argv or into a file, never signal a process
 * whose start time does not match runnerd's own record (pids are reused)
 * or that is neither the runner user's nor inside an instance's PID
 * namespace (every signal goes through a pidfd taken before the last
 * check), and never follow a symlink inside an instance directory: the
 * runner user owns that directory and everything in it is hostile input.
 *
 * Process tree of one instance: runnerd forks A; A (optionally) unshares
 * PID and mount namespaces, forks B and exits at once, so B belongs to no
 * runnerd process and survives a daemon restart. B makes itself a session
 * leader, sets up its mounts, waits until runnerd has durably recorded its
 * pid and start time (a crash before that makes B exit instead of running
 * unrecorded), drops to the runner user and execs /bin/sh startup.sh.
 * Between fork and exec the children call only async-signal-safe functions:
 * the executor forks from a multi-threaded process.
 */
#include "util/common.h"
#include "provider/backend.h"
#include "provider/local.h"
#include "util/clock.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#include <dirent.h>
#include <grp.h>
#include <jansson.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define LOCAL_RECORD_MAX       4096
#define LOCAL_GROUPS_MAX       64
#define LOCAL_HIDE_MAX         8
#define LOCAL_SECRETS_MAX      8
#define LOCAL_CUTS_MAX         64
#define LOCAL_SECRET_MAX       (256 * 1024)
#define LOCAL_SPAWN_TIMEOUT_MS 10000
#define LOCAL_KILL_TIMEOUT_MS  5000
#define LOCAL_POLL_MS          50
#define LOCAL_PATH             "/usr/local/bin:/usr/bin:/bin"
#define LOCAL_USER_MAX         32
#define LOCAL_ENVIRON_MAX      (256 * 1024)
#define LOCAL_NS_DEPTH_MAX     40 /* the kernel nests PID namespaces 32 deep at most */
#define LOCAL_SWEEP_MIN_AGE_MS 2000
#define LOCAL_SWEEP_ROUNDS     5
#define LOCAL_EMPTY_FILE       "empty" /* in state_dir: bound over secret files */

/*
 * What an isolated instance must not see (from the policy): directories
 * that become an empty tmpfs and secret files covered by an empty file. A
 * value, copied into each spawn plan under the lock, so a policy changed
 * by a reload never tears a spawn that is under way.
 */
struct local_hiding {
	char hide[LOCAL_HIDE_MAX][PATH_MAX]; /* canonical */
	size_t n_hide;
	int hide_root;              /* index of the hidden ancestor of work_dir, -1 when none */
	const char *tmp_targets[2]; /* bound to the instance's tmp/ when isolated */
	size_t n_tmp;
	char secrets[LOCAL_SECRETS_MAX][PATH_MAX]; /* canonical */
	size_t n_secrets;
};

struct local {
	pthread_mutex_t lock;
	char work_dir[PATH_MAX];  /* canonical, root-owned 0711 */
	char state_dir[PATH_MAX]; /* work_dir/.state, root-owned 0700 */
	char user[LOCAL_USER_MAX + 1];
	uid_t uid;
	gid_t gid;
	gid_t groups[LOCAL_GROUPS_MAX];
	size_t n_groups;
	int64_t stop_timeout_ms;
	bool can_isolate;
	bool isolate;               /* lock */
	struct local_hiding hiding; /* lock */
	char empty[PATH_MAX];       /* state_dir/empty: root-owned, 0400, size 0 */
	/* Names this process is creating right now (lock). */
	char (*creating)[INSTANCE_NAME_MAX];
	size_t n_creating, cap_creating;
};

/* runnerd's record of one instance: work_dir/.state/<name>.json */
struct local_record {
	char name[INSTANCE_NAME_MAX];
	char flavor[64];
	pid_t pid;          /* 0 while being created */
	uint64_t starttime; /* field 22 of /proc/<pid>/stat: tells a reused pid apart */
	bool isolated;
	time_t created_at;
};

struct proc_info {
	char state;
	pid_t session;
	uint64_t starttime;
};

static int path_join(char *out, size_t cap, const char *a, const char *b, const char *suffix)
{
	if ((size_t)snprintf(out, cap, "%s/%s%s", a, b, suffix) >= cap)
		return -ENAMETOOLONG;
	return 0;
}

/* a is b or inside b (both canonical absolute paths). */
static bool path_under(const char *a, const char *b)
{
	size_t n = strlen(b);
	if (strcmp(b, "/") == 0)
		return true;
	return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

/* ---- /proc ---------------------------------------------------------- */

/* /proc/<pid>/<file> into data (NUL-terminated, truncated to cap); -ENOENT when gone. */
static int proc_read(pid_t pid, const char *file, char *data, size_t cap)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? -ENOENT : -errno;
	do
		n = read(fd, data, cap - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0)
		return errno == ESRCH ? -ENOENT : -errno;
	data[n] = '\0';
	return 0;
}

/* -ENOENT when the process is gone. */
static int proc_info_read(pid_t pid, struct proc_info *ret)
{
	char data[1024], *p, *end;
	struct proc_info pi = {0};
	int r = proc_read(pid, "stat", data, sizeof(data));

	if (r < 0)
		return r;
	/* The command name may hold spaces and parentheses: fields start after the last ')'. */
	p = strrchr(data, ')');
	if (!p)
		return -EIO;
	p++;
	for (int field = 3; field <= 22; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -EIO;
		if (field == 3) {
			pi.state = *p;
		} else if (field == 6 || field == 22) {
			unsigned long long v;
			errno = 0;
			v = strtoull(p, &end, 10);
			if (errno || end == p)
				return -EIO;
			if (field == 6)
				pi.session = (pid_t)v;
			else
				pi.starttime = v;
		}
		while (*p && *p != ' ')
			p++;
	}
	*ret = pi;
	return 0;
}

/*
 * The uid of pid when its real, effective, saved and filesystem uids are
 * all that one (whom it is owned by, for a signal); -EPERM when they
 * differ, -ENOENT when it is gone.
 */
static int proc_uid(pid_t pid, uid_t *ret)
{
	char data[2048], *p, *end;
	unsigned long v[4];
	int r = proc_read(pid, "status", data, sizeof(data));

	if (r < 0)
		return r;
	p = strstr(data, "\nUid:");
	if (!p)
		return -EIO;
	p += 5;
	for (int i = 0; i < 4; i++) {
		errno = 0;
		v[i] = strtoul(p, &end, 10);
		if (errno || end == p)
			return -EIO;
		p = end;
	}
	if (v[1] != v[0] || v[2] != v[0] || v[3] != v[0])
		return -EPERM;
	*ret = (uid_t)v[0];
	return 0;
}

static bool proc_dead_state(char s)
{
	return s == 'Z' || s == 'X' || s == 'x';
}

/* How long ago a process started (starttime: clock ticks after boot). */
static int64_t proc_age_ms(uint64_t starttime)
{
	struct timespec ts;
	long hz = sysconf(_SC_CLK_TCK);

	if (hz <= 0)
		hz = 100;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 -
	       (int64_t)(starttime / (uint64_t)hz) * 1000 -
	       (int64_t)(starttime % (uint64_t)hz) * 1000 / hz;
}

/*
 * RUNNERD_HOME of pid's initial environment (the first such entry, as
 * getenv sees it) into out; -ENOENT when absent, too long or unreadable.
 * Only the first LOCAL_ENVIRON_MAX bytes are looked at. The value is the
 * process's own word: use it to spare or to attribute a runner-owned
 * process, never to reach anything that is not the runner's.
 */
static int proc_home(pid_t pid, char *out, size_t cap)
{
	static const char key[] = "RUNNERD_HOME=";
	const size_t klen = sizeof(key) - 1;
	char path[64], chunk[4096];
	size_t pos = 0, olen = 0, total = 0;
	bool match = true;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -ENOENT;
	while (total < LOCAL_ENVIRON_MAX) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += (size_t)n;
		for (ssize_t i = 0; i < n; i++) {
			char c = chunk[i];
			if (c == '\0') {
				if (match && pos > klen) {
					close(fd);
					out[olen] = '\0';
					return 0;
				}
				pos = olen = 0;
				match = true;
				continue;
			}
			if (pos < klen)
				match = match && c == key[pos];
			else if (match && olen + 1 < cap)
				out[olen++] = c;
			else
				match = false;
			pos++;
		}
	}
	close(fd);
	return -ENOENT;
}

struct ns_id {
	dev_t dev;
	ino_t ino;
};

static bool ns_same(const struct stat *st, const struct ns_id *id)
{
	return st->st_dev == id->dev && st->st_ino == id->ino;
}

/* Is pid's PID namespace one of set[n], or nested inside one of them? */
static bool proc_pidns_within(pid_t pid, const struct ns_id *set, size_t n)
{
	char path[64];
	bool found = false;
	int fd;

	if (n == 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	for (int depth = 0; fd >= 0 && !found && depth < LOCAL_NS_DEPTH_MAX; depth++) {
		struct stat st;
		int parent;
		if (fstat(fd, &st) < 0)
			break;
		for (size_t i = 0; i < n && !found; i++)
			found = ns_same(&st, &set[i]);
		parent = ioctl(fd, NS_GET_PARENT);
		close(fd);
		fd = parent;
	}
	if (fd >= 0)
		close(fd);
	return found;
}

/* ---- records -------------------------------------------------------- */

static int record_path(const struct local *l, const char *name, char *out, size_t cap)
{
	return path_join(out, cap, l->state_dir, name, ".json");
}

static int record_write(const struct local *l, const struct local_record *r, struct err *e)
{
	char path[PATH_MAX];
	char *s = NULL;
	json_t *j;
	int ret;

	if (record_path(l, r->name, path, sizeof(path)) < 0)
		return err_set(e, -ENAMETOOLONG, "instance %s: record path too long", r->name);
	j = json_pack("{s:i, s:s, s:s, s:I, s:I, s:s, s:I}", "version", 1, "name", r->name,
	              "flavor", r->flavor, "pid", (json_int_t)r->pid, "starttime",
	              (json_int_t)r->starttime, "isolation", r->isolated ? "pidns" : "none",
	              "created_at", (json_int_t)r->created_at);
	if (j)
		s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		return err_set(e, -ENOMEM, "instance %s: out of memory", r->name);
	ret = file_write_atomic(path, s, strlen(s), 0600, e);
	free(s);
	return ret;
}

/* -ENOENT when there is no record, -EBADMSG when it cannot be understood. */
static int record_read(const struct local *l, const char *name, struct local_record *ret,
                       struct err *e)
{
	struct buf b = BUF_INIT(LOCAL_RECORD_MAX);
	struct local_record rec = {0};
	char path[PATH_MAX];
	const char *rname = NULL, *flavor = NULL, *iso = NULL;
	json_int_t version = 0, pid = -1, start = -1, created = 0;
	json_error_t je;
	json_t *j = NULL;
	int r;

	if (record_path(l, name, path, sizeof(path)) < 0)
		return err_set(e, -ENAMETOOLONG, "instance %s: record path too long", name);
	r = file_read(path, LOCAL_RECORD_MAX, true, &b, e);
	if (r == -ENOENT)
		return err_set(e, -ENOENT, "instance %s: not found", name);
	if (r == -E2BIG)
		r = -EBADMSG;
	if (r < 0)
		goto out;
	j = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &je);
	if (!j ||
	    json_unpack_ex(j, &je, 0, "{s:I, s:s, s:s, s:I, s:I, s:s, s:I}", "version", &version,
	                   "name", &rname, "flavor", &flavor, "pid", &pid, "starttime", &start,
	                   "isolation", &iso, "created_at", &created) < 0 ||
	    version != 1 || strcmp(rname, name) != 0 || pid < 0 || pid > INT_MAX || start < 0 ||
	    strlen(flavor) >= sizeof(rec.flavor) ||
	    (strcmp(iso, "pidns") != 0 && strcmp(iso, "none") != 0)) {
		r = err_set(e, -EBADMSG, "instance %s: %s: malformed record", name, path);
		goto out;
	}
	str_copy(rec.name, name, sizeof(rec.name));
	str_copy(rec.flavor, flavor, sizeof(rec.flavor));
	rec.pid = (pid_t)pid;
	rec.starttime = (uint64_t)start;
	rec.isolated = strcmp(iso, "pidns") == 0;
	rec.created_at = (time_t)created;
	*ret = rec;
out:
	json_decref(j);
	buf_release(&b);
	return r;
}

static bool creating_has(const struct local *l, const char *name)
{
	for (size_t i = 0; i < l->n_creating; i++)
		if (strcmp(l->creating[i], name) == 0)
			return true;
	return false;
}

/* Call with l->lock held. */
static int creating_add(struct local *l, const char *name)
{
	if (creating_has(l, name))
		return -EEXIST;
	if (l->n_creating == l->cap_creating) {
		size_t ncap = l->cap_creating ? l->cap_creating * 2 : 8;
		char(*v)[INSTANCE_NAME_MAX] = realloc(l->creating, ncap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->creating = v;
		l->cap_creating = ncap;
	}
	str_copy(l->creating[l->n_creating++], name, INSTANCE_NAME_MAX);
	return 0;
}

static void creating_remove(struct local *l, const char *name)
{
	for (size_t i = 0; i < l->n_creating; i++) {
		if (strcmp(l->creating[i], name) != 0)
			continue;
		memmove(l->creating[i], l->creating[l->n_creating - 1], INSTANCE_NAME_MAX);
		l->n_creating--;
		return;
	}
}

/*
 * Where the record says the instance is. An error (not "gone") means /proc
 * could not be read: the caller must not conclude the instance stopped.
 */
static int record_state(struct local *l, const struct local_record *rec, enum cloud_state *ret,
                        struct err *e)
{
	struct proc_info pi;
	int r;

	if (rec->pid == 0) {
		/* Recorded before its process started: being created here, or a crash
		 * interrupted the create (the process never ran, see the header). */
		pthread_mutex_lock(&l->lock);
		*ret = creating_has(l, rec->name) ? CLOUD_CREATED : CLOUD_ERROR;
		pthread_mutex_unlock(&l->lock);
		return 0;
	}
	r = proc_info_read(rec->pid, &pi);
	if (r == -ENOENT || (r == 0 && pi.starttime != rec->starttime)) {
		*ret = CLOUD_STOPPED;
		return 0;
	}
	if (r < 0)
		return err_set(e, r, "instance %s: reading /proc/%d: %s", rec->name, (int)rec->pid,
		               strerror(-r));
	if (proc_dead_state(pi.state)) {
		/* Our child only where runnerd is a subreaper; ECHILD otherwise. */
		(void)waitpid(rec->pid, NULL, WNOHANG);
		*ret = CLOUD_STOPPED;
		return 0;
	}
	*ret = CLOUD_ACTIVE;
	return 0;
}

static void record_to_instance(const struct local_record *rec, enum cloud_state s,
                               struct instance *ret)
{
	memset(ret, 0, sizeof(*ret));
	str_copy(ret->name, rec->name, sizeof(ret->name));
	snprintf(ret->provider_id, sizeof(ret->provider_id), "%d", (int)rec->pid);
	str_copy(ret->flavor, rec->flavor, sizeof(ret->flavor));
	ret->state = s;
	ret->created_at = rec->created_at;
}

/* ---- the environment ------------------------------------------------ */

struct local_env {
	char **v; /* NULL-terminated */
	size_t n, cap;
};

static void env_wipe(struct local_env *env)
{
	for (size_t i = 0; i < env->n; i++) {
		explicit_bzero(env->v[i], strlen(env->v[i]));
		free(env->v[i]);
	}
	free(env->v);
	env->v = NULL;
	env->n = env->cap = 0;
}

static bool env_has(const struct local_env *env, const char *key, size_t klen)
{
	for (size_t i = 0; i < env->n; i++)
		if (strncmp(env->v[i], key, klen) == 0 && env->v[i][klen] == '=')
			return true;
	return false;
}

static int env_add(struct local_env *env, const char *key, size_t klen, const char *val,
                   size_t vlen)
{
	char *s;

	if (env->n + 1 >= env->cap) {
		size_t ncap = env->cap ? env->cap * 2 : 16;
		char **v = realloc(env->v, ncap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		env->v = v;
		env->cap = ncap;
	}
	s = malloc(klen + vlen + 2);
	if (!s)
		return -ENOMEM;
	memcpy(s, key, klen);
	s[klen] = '=';
	memcpy(s + klen + 1, val, vlen);
	s[klen + 1 + vlen] = '\0';
	env->v[env->n++] = s;
	env->v[env->n] = NULL;
	return 0;
}

static int env_addz(struct local_env *env, const char *key, const char *val)
{
	return env_add(env, key, strlen(key), val, strlen(val));
}

static bool env_key_char(char c, bool first)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
	       (!first && c >= '0' && c <= '9');
}

/*
 * One POSIX shell word made of '...' runs and \x escapes, from *pp up to
 * the end of the line (a quoted run may span lines) -> v; *pp is left at
 * the '\n' or NUL that ends it. -EINVAL on a syntax error, -E2BIG/-ENOMEM.
 */
static int env_unquote(const char **pp, struct buf *v)
{
	const char *p = *pp;

	while (*p && *p != '\n') {
		const char *q;
		int r;

		if (*p == '\\' && p[1]) {
			r = buf_append(v, p + 1, 1);
			p += 2;
		} else if (*p == '\'' && (q = strchr(p + 1, '\''))) {
			r = buf_append(v, p + 1, (size_t)(q - p - 1));
			p = q + 1;
		} else {
			return -EINVAL; /* unterminated quote, or text outside quotes */
		}
		if (r < 0)
			return r;
	}
	*pp = p;
	return 0;
}

/*
 * spec->secret_env -> environment entries: "KEY=value" lines, value either
 * literal to the end of the line or one single-quoted word (what
 * runner_secret_env writes). Messages name the line and the key, never the
 * value. Keys the provider sets itself (and repeated keys) are refused: a
 * secret must not redirect HOME or PATH.
 */
static int env_add_secrets(struct local_env *env, const char *s, struct err *e)
{
	struct buf v = BUF_INIT(LOCAL_SECRET_MAX);
	size_t lineno = 1;
	int r = 0;

	if (strlen(s) > LOCAL_SECRET_MAX)
		return err_set(e, -E2BIG, "secret_env: larger than %d bytes", LOCAL_SECRET_MAX);
	while (*s) {
		const char *key = s, *p = s;
		size_t klen;

		if (*s == '\n') {
			s++;
			lineno++;
			continue;
		}
		while (env_key_char(*p, p == key))
			p++;
		klen = (size_t)(p - key);
		if (klen == 0 || *p != '=') {
			r = err_set(e, -EINVAL, "secret_env: line %zu: expected KEY=value", lineno);
			goto out;
		}
		if (env_has(env, key, klen)) {
			r = err_set(e, -EINVAL,
			            "secret_env: line %zu: %.*s is reserved or repeated", lineno,
			            (int)klen, key);
			goto out;
		}
		p++;
		buf_reset(&v);
		if (*p == '\'') {
			r = env_unquote(&p, &v);
		} else {
			const char *end = strchrnul(p, '\n');
			r = buf_append(&v, p, (size_t)(end - p));
			p = end;
		}
		if (r == 0)
			r = env_add(env, key, klen, buf_str(&v), v.len);
		if (r < 0) {
			r = err_set(e, r, "secret_env: line %zu: %.*s: %s", lineno, (int)klen, key,
			            r == -EINVAL ? "bad quoting" : strerror(-r));
			goto out;
		}
		for (const char *c = s; c < p; c++)
			lineno += *c == '\n';
		s = p;
	}
out:
	buf_wipe(&v);
	return r;
}

/* ---- spawning ------------------------------------------------------- */

enum spawn_stage {
	STAGE_FDS = 1,
	STAGE_UNSHARE,
	STAGE_FORK,
	STAGE_SETSID,
	STAGE_MOUNT_PRIVATE,
	STAGE_MOUNT_PROC,
	STAGE_OPEN_DIR,
	STAGE_HIDE_SECRETS,
	STAGE_HIDE,
	STAGE_MKDIR,
	STAGE_BIND_DIR,
	STAGE_BIND_TMP,
	STAGE_SETGROUPS,
	STAGE_SETGID,
	STAGE_SETUID,
	STAGE_REGAIN,
	STAGE_NO_NEW_PRIVS,
	STAGE_CHDIR,
	STAGE_STDIO,
	STAGE_EXEC,
};

static const char *stage_name(int s)
{
	static const char *const names[] = {
	        "",
	        "fd setup",
	        "unshare",
	        "fork",
	        "setsid",
	        "mount --make-rprivate /",
	        "mount /proc",
	        "open instance dir",
	        "hide runnerd's secret files",
	        "hide runnerd's dirs",
	        "mkdir",
	        "bind instance dir",
	        "bind /tmp",
	        "setgroups",
	        "setgid",
	        "setuid",
	        "privilege check",
	        "no_new_privs",
	        "chdir",
	        "stdio",
	        "exec /bin/sh",
	};
	return s > 0 && (size_t)s < ARRAY_SIZE(names) ? names[s] : "?";
}

#define MSG_PID  1
#define MSG_FAIL 2

struct spawn_msg {
	int32_t kind;
	int32_t stage;
	int32_t err;
	int32_t pid;
};

/* Everything the children need, computed before fork. */
struct spawn_plan {
	bool isolate;
	char dir[PATH_MAX];
	char log[PATH_MAX];
	char script[PATH_MAX];
	char *argv[5];
	char **envp;
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t n_groups;
	struct local_hiding hiding; /* a copy: the policy may change meanwhile */
	const char *empty;
	bool bind_dir;
	char mk[PATH_MAX]; /* the instance dir, cut at cuts[] to mkdir its parents */
	size_t cuts[LOCAL_CUTS_MAX];
	size_t n_cuts;
	int rep; /* children: write end of the report pipe */
	int go;  /* children: read end of the go pipe, -1 once read */
	bool in_b;
};

struct spawn_handle {
	pid_t pid;
	int pidfd;
	uint64_t starttime;
	int rep; /* read end */
	int go;  /* write end */
};

static void child_report(int fd, int kind, int stage, int err, pid_t pid)
{
	struct spawn_msg m = {kind, stage, err, pid};
	ssize_t n;
	do
		n = write(fd, &m, sizeof(m));
	while (n < 0 && errno == EINTR);
}

static _Noreturn void child_fail(const struct spawn_plan *pl, int stage)
{
	char c;

	child_report(pl->rep, MSG_FAIL, stage, errno, 0);
	/*
	 * B stays until runnerd says go or hangs up: by then runnerd holds a
	 * pidfd on it. Exiting earlier would free B's pid for reuse while
	 * runnerd may still take that pid for B's.
	 */
	if (pl->in_b && pl->go >= 0)
		while (read(pl->go, &c, 1) < 0 && errno == EINTR)
			;
	_exit(127);
}

static int child_fd_above2(int fd)
{
	return fd > 2 ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

/* Close every fd >= 3 but a and b. */
static void child_close_others(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;
	if (lo > 3)
		close_range(3, (unsigned)lo - 1, 0);
	if (hi > lo + 1)
		close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
	close_range((unsigned)hi + 1, ~0U, 0);
}

static void child_fd_path(char *out, int fd)
{
	static const char prefix[] = "/proc/self/fd/";
	char digits[16];
	size_t p = sizeof(prefix) - 1;
	int n = 0;

	memcpy(out, prefix, p);
	do {
		digits[n++] = (char)('0' + fd % 10);
		fd /= 10;
	} while (fd > 0 && n < (int)sizeof(digits));
	while (n > 0)
		out[p++] = digits[--n];
	out[p] = '\0';
}

static void child_mounts(struct spawn_plan *pl)
{
	char src[32];
	int dfd, tfd, efd;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		child_fail(pl, STAGE_MOUNT_PRIVATE);
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		child_fail(pl, STAGE_MOUNT_PROC);
	/* Take the instance dir before the tmpfs hides it. */
	dfd = open(pl->dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		child_fail(pl, STAGE_OPEN_DIR);
	tfd = openat(dfd, "tmp", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (tfd < 0)
		child_fail(pl, STAGE_OPEN_DIR);
	/*
	 * An empty root-only file over each secret file, read-only: the job
	 * reads nothing there, whatever the file's own mode. A secret file
	 * that is gone has nothing to hide.
	 */
	if (pl->hiding.n_secrets > 0) {
		efd = open(pl->empty, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (efd < 0)
			child_fail(pl, STAGE_HIDE_SECRETS);
		child_fd_path(src, efd);
		for (size_t i = 0; i < pl->hiding.n_secrets; i++) {
			if (mount(src, pl->hiding.secrets[i], NULL, MS_BIND, NULL) < 0) {
				if (errno == ENOENT)
					continue;
				child_fail(pl, STAGE_HIDE_SECRETS);
			}
			if (mount(NULL, pl->hiding.secrets[i], NULL,
			          MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV |
			                  MS_NOEXEC,
			          NULL) < 0)
				child_fail(pl, STAGE_HIDE_SECRETS);
		}
		close(efd);
	}
	for (size_t i = 0; i < pl->hiding.n_hide; i++)
		if (mount("tmpfs", pl->hiding.hide[i], "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		          "mode=0711,size=64k,nr_inodes=256") < 0)
			child_fail(pl, STAGE_HIDE);
	if (pl->bind_dir) {
		for (size_t i = 0; i < pl->n_cuts; i++) {
			pl->mk[pl->cuts[i]] = '\0';
			if (mkdir(pl->mk, 0711) < 0 && errno != EEXIST)
				child_fail(pl, STAGE_MKDIR);
			pl->mk[pl->cuts[i]] = '/';
		}
		if (mkdir(pl->mk, 0700) < 0 && errno != EEXIST)
			child_fail(pl, STAGE_MKDIR);
		child_fd_path(src, dfd);
		if (mount(src, pl->dir, NULL, MS_BIND, NULL) < 0)
			child_fail(pl, STAGE_BIND_DIR);
	}
	child_fd_path(src, tfd);
	for (size_t i = 0; i < pl->hiding.n_tmp; i++)
		if (mount(src, pl->hiding.tmp_targets[i], NULL, MS_BIND, NULL) < 0)
			child_fail(pl, STAGE_BIND_TMP);
	close(tfd);
	close(dfd);
}

static void child_drop_privileges(const struct spawn_plan *pl)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	/* Raw syscalls: this thread is alone, glibc's all-threads setxid is not needed. */
	if (syscall(SYS_setgroups, pl->n_groups, pl->groups) < 0)
		child_fail(pl, STAGE_SETGROUPS);
	if (syscall(SYS_setresgid, pl->gid, pl->gid, pl->gid) < 0)
		child_fail(pl, STAGE_SETGID);
	if (syscall(SYS_setresuid, pl->uid, pl->uid, pl->uid) < 0)
		child_fail(pl, STAGE_SETUID);
	errno = EPERM;
	if (getresuid(&ru, &eu, &su) < 0 || ru != pl->uid || eu != pl->uid || su != pl->uid ||
	    getresgid(&rg, &eg, &sg) < 0 || rg != pl->gid || eg != pl->gid || sg != pl->gid)
		child_fail(pl, STAGE_REGAIN);
	if (syscall(SYS_setresuid, 0, 0, 0) == 0 || syscall(SYS_setresgid, 0, 0, 0) == 0) {
		errno = EPERM;
		child_fail(pl, STAGE_REGAIN);
	}
	/* setuid binaries and file capabilities cannot lift it back up either. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(pl, STAGE_NO_NEW_PRIVS);
}

static _Noreturn void child_b(struct spawn_plan *pl)
{
	struct sigaction sa;
	sigset_t none;
	int in, out;
	char c = 0;
	ssize_t n;

	pl->in_b = true;
	if (setsid() < 0)
		child_fail(pl, STAGE_SETSID);
	/* runnerd may block or ignore signals; exec keeps both. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			(void)sigaction(s, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (pl->isolate)
		child_mounts(pl);

	do
		n = read(pl->go, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1 || c != 'g')
		_exit(1); /* runnerd gave up (or died) before recording us */
	close(pl->go);
	pl->go = -1;

	child_drop_privileges(pl);
	umask(077);
	if (chdir(pl->dir) < 0)
		child_fail(pl, STAGE_CHDIR);
	/* Opened as the runner user: the log is its file. */
	in = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (in < 0 || (in = child_fd_above2(in)) < 0)
		child_fail(pl, STAGE_STDIO);
	out = open(pl->log, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (out < 0 || (out = child_fd_above2(out)) < 0)
		child_fail(pl, STAGE_STDIO);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		child_fail(pl, STAGE_STDIO);
	close(in);
	close(out);
	execve("/bin/sh", pl->argv, pl->envp);
	child_fail(pl, STAGE_EXEC);
}

static _Noreturn void child_a(struct spawn_plan *pl)
{
	pid_t b;

	pl->rep = child_fd_above2(pl->rep);
	if (pl->rep < 0)
		_exit(127);
	pl->go = child_fd_above2(pl->go);
	if (pl->go < 0)
		child_fail(pl, STAGE_FDS);
	/* Do not hold other instances' pipes (or runnerd's sockets) open. */
	child_close_others(pl->rep, pl->go);
	if (pl->isolate && unshare(CLONE_NEWPID | CLONE_NEWNS) < 0)
		child_fail(pl, STAGE_UNSHARE);
	b = _Fork();
	if (b < 0)
		child_fail(pl, STAGE_FORK);
	if (b == 0)
		child_b(pl);
	child_report(pl->rep, MSG_PID, 0, 0, b);
	_exit(0);
}

/* 1 with a message, 0 on EOF, -ETIMEDOUT or -errno. */
static int spawn_read(int fd, int timeout_ms, struct spawn_msg *ret)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	int64_t deadline = clock_mono_ms() + timeout_ms;
	ssize_t n;

	for (;;) {
		int64_t left = deadline - clock_mono_ms();
		int r;
		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r > 0)
			break;
	}
	do
		n = read(fd, ret, sizeof(*ret));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	return n == (ssize_t)sizeof(*ret) ? 1 : -EIO;
}

static void wait_child(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static void spawn_close(struct spawn_handle *h)
{
	if (h->pidfd >= 0)
		close(h->pidfd);
	if (h->rep >= 0)
		close(h->rep);
	if (h->go >= 0)
		close(h->go);
	h->pidfd = h->rep = h->go = -1;
}

static int spawn_fail_msg(const char *name, const struct spawn_msg *m, struct err *e)
{
	return err_set(e, m->err > 0 ? -m->err : -EIO, "instance %s: %s: %s", name,
	               stage_name(m->stage), strerror(m->err > 0 ? m->err : EIO));
}

/* Start A and B; B waits for spawn_go(). */
static int spawn_start(const char *name, struct spawn_plan *pl, struct spawn_handle *h,
                       struct err *e)
{
	int rep[2] = {-1, -1}, go[2] = {-1, -1};
	struct spawn_msg m;
	struct proc_info pi;
	pid_t a;
	int r;

	if (pipe2(rep, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0) {
		r = err_set(e, -errno, "instance %s: pipe: %s", name, strerror(errno));
		goto fail;
	}
	pl->rep = rep[1];
	pl->go = go[0];
	a = fork();
	if (a < 0) {
		r = err_set(e, -errno, "instance %s: fork: %s", name, strerror(errno));
		goto fail;
	}
	if (a == 0)
		child_a(pl);
	close(rep[1]);
	close(go[0]);
	rep[1] = go[0] = -1;
	h->rep = rep[0];
	h->go = go[1];
	r = spawn_read(h->rep, LOCAL_SPAWN_TIMEOUT_MS, &m);
	wait_child(a);
	if (r == 1 && m.kind == MSG_FAIL)
		return spawn_fail_msg(name, &m, e);
	if (r != 1 || m.kind != MSG_PID || m.pid <= 0)
		return err_set(e, r < 0 ? r : -EIO, "instance %s: no pid from the starter", name);
	h->pid = m.pid;
	h->pidfd = pidfd_open(h->pid, 0);
	if (h->pidfd < 0)
		return err_set(e, -errno, "instance %s: pidfd_open: %s", name, strerror(errno));
	r = proc_info_read(h->pid, &pi);
	if (r < 0)
		return err_set(e, r, "instance %s: reading /proc/%d: %s", name, (int)h->pid,
		               strerror(-r));
	h->starttime = pi.starttime;
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (rep[i] >= 0)
			close(rep[i]);
		if (go[i] >= 0)
			close(go[i]);
	}
	return r;
}

/* Let B run the script, and wait until it has exec'd (EOF) or failed. */
static int spawn_go(const char *name, struct spawn_handle *h, struct err *e)
{
	struct spawn_msg m;
	ssize_t n;
	int r;

	do
		n = write(h->go, "g", 1);
	while (n < 0 && errno == EINTR);
	close(h->go);
	h->go = -1;
	if (n != 1)
		return err_set(e, -EIO, "instance %s: the starter is gone", name);
	r = spawn_read(h->rep, LOCAL_SPAWN_TIMEOUT_MS, &m);
	if (r == 0)
		return 0;
	if (r == 1 && m.kind == MSG_FAIL)
		return spawn_fail_msg(name, &m, e);
	return err_set(e, r < 0 ? r : -EIO, "instance %s: starting the script: %s", name,
	               strerror(r < 0 ? -r : EIO));
}

/* ---- stopping ------------------------------------------------------- */

/*
 * The processes of an instance. Isolated: every process of the leader's
 * PID namespace (the leader is its init). Not isolated: the runner-owned
 * processes of the leader's session, and those whose RUNNERD_HOME is the
 * instance's directory (a job that leaves the session with setsid keeps
 * its environment, as a rule). Whatever escapes both is a leftover for
 * the sweep below.
 */
struct stop_ctx {
	struct local *l;
	const struct local_record *rec;
	char home[PATH_MAX]; /* the instance dir: RUNNERD_HOME of its processes */
	int pidfd;           /* the recorded leader, -1 when it is gone */
	int nsfd;            /* isolated: its PID namespace (held so the inode is not reused) */
	struct stat ns;
};

static bool pidfd_exited(int pidfd)
{
	struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
	return poll(&pfd, 1, 0) > 0;
}

/*
 * Is session rec->pid still the instance's? While the leader lives, yes.
 * Once it is gone too: the kernel keeps a pid number allocated while any
 * process still has it as its session id, so the number cannot have been
 * reused while the session lasts. A live process with that pid and
 * another start time means the number was free and taken again: the
 * session of that number is someone else's.
 */
static bool stop_session_ours(const struct stop_ctx *c)
{
	struct proc_info pi;
	int r;

	if (c->pidfd >= 0)
		return true;
	r = proc_info_read(c->rec->pid, &pi);
	return r == -ENOENT || (r == 0 && pi.starttime == c->rec->starttime);
}

/* Is p one of the instance's processes (other than the leader)? */
static bool stop_member(const struct stop_ctx *c, pid_t p)
{
	struct proc_info pi;
	char path[64], home[PATH_MAX];
	uid_t uid = (uid_t)-1;

	if (p == c->rec->pid && c->pidfd >= 0)
		return false; /* the leader: signalled through its pidfd */
	if (c->nsfd >= 0) {
		struct stat st;
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)p);
		return stat(path, &st) == 0 && st.st_dev == c->ns.st_dev &&
		       st.st_ino == c->ns.st_ino;
	}
	/* Without namespaces: runner-owned processes only, whatever else they say. */
	if (proc_info_read(p, &pi) < 0 || proc_dead_state(pi.state) || proc_uid(p, &uid) < 0 ||
	    uid != c->l->uid)
		return false;
	/* A member started after its session's leader did. */
	if (pi.session == c->rec->pid && pi.starttime >= c->rec->starttime && stop_session_ours(c))
		return true;
	return proc_home(p, home, sizeof(home)) == 0 && strcmp(home, c->home) == 0;
}

/* Signal every member; returns how many were found, or -errno. */
static int stop_signal_members(const struct stop_ctx *c, int sig)
{
	struct dirent *de;
	int found = 0;
	DIR *d = opendir("/proc");

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		int64_t v;
		pid_t p;
		int fd;

		if (parse_int64(de->d_name, 1, INT_MAX, &v) < 0)
			continue;
		p = (pid_t)v;
		if (!stop_member(c, p))
			continue;
		/*
		 * Pin the process, then check again: a pinned process that is
		 * still alive after the check is the one the check read.
		 */
		fd = pidfd_open(p, 0);
		if (fd < 0)
			continue;
		if (stop_member(c, p) && !pidfd_exited(fd)) {
			found++;
			(void)pidfd_send_signal(fd, sig, NULL, 0);
		}
		close(fd);
	}
	closedir(d);
	return found;
}

static void stop_signal(const struct stop_ctx *c, int sig)
{
	if (c->pidfd >= 0 && !pidfd_exited(c->pidfd))
		(void)pidfd_send_signal(c->pidfd, sig, NULL, 0);
	/* Killing the namespace's init kills the whole namespace at once. */
	if (c->nsfd >= 0 && sig == SIGKILL)
		return;
	(void)stop_signal_members(c, sig);
}

static bool stop_gone(const struct stop_ctx *c)
{
	if (c->pidfd >= 0 && !pidfd_exited(c->pidfd))
		return false;
	/* An init's exit completes only after every process of its namespace has gone. */
	if (c->nsfd >= 0)
		return true;
	return stop_signal_members(c, 0) == 0;
}

static bool stop_wait(const struct stop_ctx *c, int64_t timeout_ms)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	for (;;) {
		struct pollfd pfd = {.fd = c->pidfd, .events = POLLIN};
		int64_t left;

		if (stop_gone(c))
			return true;
		left = deadline - clock_mono_ms();
		if (left <= 0)
			return false;
		if (c->pidfd < 0 || pidfd_exited(c->pidfd)) {
			struct timespec ts = {0, LOCAL_POLL_MS * 1000000L};
			nanosleep(&ts, NULL);
		} else {
			(void)poll(&pfd, 1, (int)(left < LOCAL_POLL_MS ? left : LOCAL_POLL_MS));
		}
	}
}

/*
 * TERM every process of the instance, give them grace_ms, then KILL. The
 * leader is signalled only while it is the recorded one (pid and start
 * time: a pid whose start time differs belongs to someone else now).
 * Without namespaces the rest of the instance may outlive its leader (a
 * job that killed its shell, `nohup cmd &`): they are found and stopped
 * all the same.
 */
static int local_stop(struct local *l, const struct local_record *rec, int64_t grace_ms,
                      struct err *e)
{
	struct stop_ctx c = {.l = l, .rec = rec, .pidfd = -1, .nsfd = -1};
	struct proc_info pi;
	int r = 0;

	if (path_join(c.home, sizeof(c.home), l->work_dir, rec->name, "") < 0)
		return err_set(e, -ENAMETOOLONG, "instance %s: path too long", rec->name);
	c.pidfd = pidfd_open(rec->pid, 0);
	if (c.pidfd < 0 && errno != ESRCH)
		return err_set(e, -errno, "instance %s: pidfd_open: %s", rec->name,
		               strerror(errno));
	if (c.pidfd >= 0) {
		r = proc_info_read(rec->pid, &pi);
		if (r == -ENOENT || (r == 0 && pi.starttime != rec->starttime)) {
			close(c.pidfd);
			c.pidfd = -1;
			r = 0;
		} else if (r < 0) {
			r = err_set(e, r, "instance %s: reading /proc/%d: %s", rec->name,
			            (int)rec->pid, strerror(-r));
			goto out;
		}
	}
	if (rec->isolated) {
		char path[64];
		if (c.pidfd < 0 || pidfd_exited(c.pidfd))
			goto out; /* the namespace went with its init */
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)rec->pid);
		c.nsfd = open(path, O_RDONLY | O_CLOEXEC);
		/* Still alive after the open: the ns is the leader's, not a successor's. */
		if (c.nsfd < 0 || pidfd_exited(c.pidfd) || fstat(c.nsfd, &c.ns) < 0)
			goto out;
	}
	stop_signal(&c, SIGTERM);
	if (grace_ms > 0 && stop_wait(&c, grace_ms))
		goto out;
	stop_signal(&c, SIGKILL);
	if (!stop_wait(&c, LOCAL_KILL_TIMEOUT_MS)) {
		/* Non-isolated stragglers may be forking; one more round. */
		stop_signal(&c, SIGKILL);
		if (!stop_wait(&c, LOCAL_KILL_TIMEOUT_MS))
			r = err_set(e, -EBUSY, "instance %s: processes survive SIGKILL", rec->name);
	}
out:
	if (c.nsfd >= 0)
		close(c.nsfd);
	if (c.pidfd >= 0)
		close(c.pidfd);
	return r;
}

/* ---- leftovers ------------------------------------------------------ */

/*
 * Does home name an instance that has a record: <dir>/<name> where <dir>
 * has no symlink in it and <dir>, <dir>/.state and <dir>/.state/<name>.json
 * are root's (this work_dir, or another runnerd's that shares the user)?
 * A job chooses its RUNNERD_HOME: it can name only an instance that exists.
 */
static bool home_recorded(const char *home)
{
	const char *slash = strrchr(home, '/');
	char dir[PATH_MAX], real[PATH_MAX], path[PATH_MAX];
	struct stat st;

	if (home[0] != '/' || !slash || slash == home ||
	    !name_is_valid(slash + 1, INSTANCE_NAME_MAX - 1) ||
	    (size_t)(slash - home) >= sizeof(dir))
		return false;
	memcpy(dir, home, (size_t)(slash - home));
	dir[slash - home] = '\0';
	if (!realpath(dir, real) || strcmp(real, dir) != 0)
		return false;
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0)
		return false;
	if (path_join(path, sizeof(path), dir, ".state", "") < 0 || lstat(path, &st) < 0 ||
	    !S_ISDIR(st.st_mode) || st.st_uid != 0)
		return false;
	if ((size_t)snprintf(path, sizeof(path), "%s/.state/%s.json", dir, slash + 1) >=
	    sizeof(path))
		return false;
	return lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0;
}

/* What a sweep must leave alone: the sessions and PID namespaces of the recorded instances. */
struct sweep_keep {
	pid_t *sids;
	size_t n_sids, cap_sids;
	struct ns_id *ns;
	size_t n_ns, cap_ns;
};

struct sweep_proc {
	pid_t pid;
	pid_t sid;
	uint64_t starttime;
};

static void sweep_keep_release(struct sweep_keep *k)
{
	free(k->sids);
	free(k->ns);
	memset(k, 0, sizeof(*k));
}

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *nv;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	nv = reallocarray(*v, ncap, size);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

static int sweep_keep_read(struct local *l, struct sweep_keep *k)
{
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	fd = open(l->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((errno = 0, de = readdir(d))) {
		char name[INSTANCE_NAME_MAX], path[64];
		struct local_record rec;
		struct proc_info pi;
		struct stat st;
		size_t n = strlen(de->d_name);

		if (n <= 5 || n - 5 >= sizeof(name) || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		memcpy(name, de->d_name, n - 5);
		name[n - 5] = '\0';
		if (!name_is_valid(name, INSTANCE_NAME_MAX - 1) ||
		    record_read(l, name, &rec, NULL) < 0 || rec.pid <= 0)
			continue;
		if ((r = grow((void **)&k->sids, &k->cap_sids, k->n_sids, sizeof(*k->sids))) < 0)
			break;
		k->sids[k->n_sids++] = rec.pid;
		if (!rec.isolated || proc_info_read(rec.pid, &pi) < 0 ||
		    pi.starttime != rec.starttime)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)rec.pid);
		if (stat(path, &st) < 0)
			continue;
		if ((r = grow((void **)&k->ns, &k->cap_ns, k->n_ns, sizeof(*k->ns))) < 0)
			break;
		k->ns[k->n_ns++] = (struct ns_id){st.st_dev, st.st_ino};
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(d);
	return r;
}

static bool sweep_keeps(const struct sweep_keep *k, const struct sweep_proc *sp)
{
	char home[PATH_MAX];

	for (size_t i = 0; i < k->n_sids; i++)
		if (k->sids[i] == sp->sid)
			return true;
	if (proc_pidns_within(sp->pid, k->ns, k->n_ns))
		return true;
	/* Only a session leader can be such a starter: a leftover's children are not spared. */
	if (sp->pid == sp->sid && proc_age_ms(sp->starttime) < LOCAL_SWEEP_MIN_AGE_MS)
		return true;
	return proc_home(sp->pid, home, sizeof(home)) == 0 && home_recorded(home);
}

/* Is sp (pinned by fd) still that runner-owned process, alive? */
static bool sweep_same(const struct local *l, const struct sweep_proc *sp, int fd)
{
	struct proc_info pi;
	uid_t uid = (uid_t)-1;

	return proc_info_read(sp->pid, &pi) == 0 && pi.starttime == sp->starttime &&
	       pi.session == sp->sid && !proc_dead_state(pi.state) &&
	       proc_uid(sp->pid, &uid) == 0 && uid == l->uid && !pidfd_exited(fd);
}

/* One round: the runner user's processes first, then the records (see local_sweep). */
static int sweep_round(struct local *l)
{
	struct sweep_keep keep = {0};
	struct sweep_proc *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int killed = 0, r = 0;
	DIR *d = opendir("/proc");

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct proc_info pi;
		uid_t uid = (uid_t)-1;
		int64_t pid;

		if (parse_int64(de->d_name, 1, INT_MAX, &pid) < 0 ||
		    proc_info_read((pid_t)pid, &pi) < 0 || proc_dead_state(pi.state) ||
		    proc_uid((pid_t)pid, &uid) < 0 || uid != l->uid)
			continue;
		if ((r = grow((void **)&v, &cap, n, sizeof(*v))) < 0)
			break;
		v[n++] = (struct sweep_proc){(pid_t)pid, pi.session, pi.starttime};
	}
	closedir(d);
	/*
	 * Records after processes: a runner-owned process's session leader was
	 * recorded before it dropped to the runner user, so any session seen
	 * above that is an instance's is in the records read now.
	 */
	if (r == 0 && n > 0)
		r = sweep_keep_read(l, &keep);
	for (size_t i = 0; r == 0 && i < n; i++) {
		int fd;
		if (sweep_keeps(&keep, &v[i]))
			continue;
		fd = pidfd_open(v[i].pid, 0);
		if (fd < 0)
			continue;
		if (sweep_same(l, &v[i], fd) && pidfd_send_signal(fd, SIGKILL, NULL, 0) == 0)
			killed++;
		close(fd);
	}
	sweep_keep_release(&keep);
	free(v);
	return r < 0 ? r : killed;
}

/*
 * Kill the runner user's leftovers: its processes that belong to no
 * recorded instance (a fallback-mode job that left its session and its
 * environment behind, or anything that outlived its instance's record).
 * Spared: the sessions and PID namespaces (nested ones included) of
 * recorded instances; processes whose RUNNERD_HOME names an instance that
 * has a record (a second runnerd sharing the user); processes younger
 * than LOCAL_SWEEP_MIN_AGE_MS (such a runnerd's starter between its setuid
 * and its exec shows neither). Only runner-owned processes are signalled,
 * each pinned by a pidfd and checked again first. Best effort: returns how
 * many were killed, or -errno.
 */
static int local_sweep(struct local *l)
{
	int total = 0;

	for (int round = 0; round < LOCAL_SWEEP_ROUNDS; round++) {
		struct timespec ts = {0, 20 * 1000000L};
		int r = sweep_round(l);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		total += r;
		/* Those it killed may have forked meanwhile: look again. */
		nanosleep(&ts, NULL);
	}
	return total;
}

/* ---- the instance directory ----------------------------------------- */

static int write_file_at(int dfd, const char *name, const char *data, size_t len, mode_t mode,
                         uid_t uid, gid_t gid, struct err *e)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	int r = 0;

	if (fd < 0)
		return err_set(e, -errno, "%s: %s", name, strerror(errno));
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = err_set(e, -errno, "%s: write: %s", name, strerror(errno));
			goto out;
		}
		data += n;
		len -= (size_t)n;
	}
	if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0)
		r = err_set(e, -errno, "%s: chown: %s", name, strerror(errno));
out:
	close(fd);
	return r;
}

static int copy_file_at(int dfd, const char *name, const char *src, uid_t uid, gid_t gid,
                        struct err *e)
{
	char chunk[65536];
	struct stat st;
	bool plain = false;
	int in, out = -1, r = 0;

	in = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (in < 0)
		return err_set(e, -errno, "%s: %s", src, strerror(errno));
	if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = err_set(e, -EINVAL, "%s: not a regular file", src);
		goto out;
	}
	out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		r = err_set(e, -errno, "%s: %s", name, strerror(errno));
		goto out;
	}
	for (;;) {
		ssize_t n, w;
		if (!plain) {
			n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
			              errno == EOPNOTSUPP)) {
				plain = true;
				continue;
			}
		} else {
			n = read(in, chunk, sizeof(chunk));
			for (ssize_t off = 0; n > 0 && off < n; off += w) {
				w = write(out, chunk + off, (size_t)(n - off));
				if (w < 0) {
					n = -1;
					break;
				}
			}
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = err_set(e, -errno, "copying %s: %s", src, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
	}
	if (fchown(out, uid, gid) < 0 || fchmod(out, 0600) < 0)
		r = err_set(e, -errno, "%s: chown: %s", name, strerror(errno));
out:
	if (out >= 0)
		close(out);
	close(in);
	return r;
}

/*
 * Fill the new directory while it is still root's, hand it to the runner
 * user last: no runner process can race us here.
 */
static int instance_populate(const struct local *l, const char *dir,
                             const struct instance_spec *spec, struct err *e)
{
	int dfd, r = 0;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return err_set(e, -errno, "%s: %s", dir, strerror(errno));
	r = write_file_at(dfd, "startup.sh", spec->startup_script, strlen(spec->startup_script),
	                  0700, l->uid, l->gid, e);
	if (r == 0)
		r = write_file_at(dfd, "startup.log", "", 0, 0600, l->uid, l->gid, e);
	if (r == 0 && mkdirat(dfd, "tmp", 0700) < 0)
		r = err_set(e, -errno, "%s/tmp: %s", dir, strerror(errno));
	if (r == 0 && fchownat(dfd, "tmp", l->uid, l->gid, AT_SYMLINK_NOFOLLOW) < 0)
		r = err_set(e, -errno, "%s/tmp: chown: %s", dir, strerror(errno));
	if (r == 0 && spec->runner_tarball)
		r = copy_file_at(dfd, "runner.tar.gz", spec->runner_tarball, l->uid, l->gid, e);
	if (r == 0 && (fchown(dfd, l->uid, l->gid) < 0 || fchmod(dfd, 0700) < 0))
		r = err_set(e, -errno, "%s: chown: %s", dir, strerror(errno));
	close(dfd);
	if (r < 0 && e)
		err_prefix(e, "instance %s", spec->name);
	return r;
}

static int plan_build(struct local *l, bool isolate, const char *dir, struct spawn_plan *pl,
                      struct err *e)
{
	const struct local_hiding *h = &pl->hiding;

	pl->isolate = isolate;
	str_copy(pl->dir, dir, sizeof(pl->dir));
	if (path_join(pl->log, sizeof(pl->log), dir, "startup.log", "") < 0 ||
	    path_join(pl->script, sizeof(pl->script), dir, "startup.sh", "") < 0)
		return err_set(e, -ENAMETOOLONG, "%s: path too long", dir);
	if (isolate) {
		/*
		 * The namespace's init ignores every signal it has no handler for,
		 * so the script must not be init: a small shell is, and the script
		 * runs as its child with ordinary signal semantics (TERM ends it
		 * unless it traps TERM). When init ends, the kernel ends the rest.
		 */
		pl->argv[0] = "runnerd-init";
		pl->argv[1] = "-c";
		pl->argv[2] = "/bin/sh \"$0\"; exit $?";
		pl->argv[3] = pl->script;
		pl->argv[4] = NULL;
	} else {
		pl->argv[0] = "sh";
		pl->argv[1] = pl->script;
		pl->argv[2] = NULL;
	}
	pl->uid = l->uid;
	pl->gid = l->gid;
	pl->groups = l->groups;
	pl->n_groups = l->n_groups;
	pl->rep = pl->go = -1;
	if (!isolate)
		return 0;
	pthread_mutex_lock(&l->lock);
	pl->hiding = l->hiding;
	pthread_mutex_unlock(&l->lock);
	pl->empty = l->empty;
	if (h->hide_root >= 0) {
		/* Recreate the path from the hidden root down to the dir inside the tmpfs. */
		size_t from = strlen(h->hide[h->hide_root]);
		pl->bind_dir = true;
		str_copy(pl->mk, dir, sizeof(pl->mk));
		for (size_t i = from + 1; pl->mk[i]; i++) {
			if (pl->mk[i] != '/')
				continue;
			if (pl->n_cuts == LOCAL_CUTS_MAX)
				return err_set(e, -ENAMETOOLONG, "%s: too deep", dir);
			pl->cuts[pl->n_cuts++] = i;
		}
	}
	return 0;
}

/* ---- the provider operations ---------------------------------------- */

static int check_name(const char *name, struct err *e)
{
	if (!name || !name_is_valid(name, INSTANCE_NAME_MAX - 1))
		return err_set(e, -EINVAL, "invalid instance name");
	return 0;
}

static int local_create(struct provider *p, const struct provider_call *c,
                        const struct instance_spec *spec, struct instance *ret, struct err *e)
{
	struct local *l = p->priv;
	struct spawn_handle h = {.pidfd = -1, .rep = -1, .go = -1};
	struct local_record rec = {0};
	struct local_env env = {0};
	struct spawn_plan *pl = NULL;
	enum cloud_state state;
	char dir[PATH_MAX], rpath[PATH_MAX];
	bool registered = false, recorded = false, made_dir = false, isolate;
	struct stat st;
	int r;

	if (path_join(dir, sizeof(dir), l->work_dir, spec->name, "") < 0 ||
	    record_path(l, spec->name, rpath, sizeof(rpath)) < 0)
		return err_set(e, -ENAMETOOLONG, "create %s: path too long", spec->name);

	if (env_addz(&env, "PATH", LOCAL_PATH) < 0 || env_addz(&env, "HOME", dir) < 0 ||
	    env_addz(&env, "LANG", "C.UTF-8") < 0 || env_addz(&env, "USER", l->user) < 0 ||
	    env_addz(&env, "RUNNERD_HOME", dir) < 0) {
		r = err_set(e, -ENOMEM, "create %s: out of memory", spec->name);
		goto out;
	}
	if (spec->runner_tarball) {
		char tb[PATH_MAX];
		if (path_join(tb, sizeof(tb), dir, "runner.tar.gz", "") < 0 ||
		    env_addz(&env, "RUNNERD_RUNNER_TARBALL", tb) < 0) {
			r = err_set(e, -ENOMEM, "create %s: out of memory", spec->name);
			goto out;
		}
	}
	if (spec->secret_env && (r = env_add_secrets(&env, spec->secret_env, e)) < 0) {
		err_prefix(e, "create %s", spec->name);
		goto out;
	}

	pthread_mutex_lock(&l->lock);
	r = creating_add(l, spec->name);
	isolate = l->isolate;
	pthread_mutex_unlock(&l->lock);
	if (r < 0) {
		r = err_set(e, r, "create %s: %s", spec->name,
		            r == -EEXIST ? "already being created" : strerror(-r));
		goto out;
	}
	registered = true;
	if (lstat(rpath, &st) == 0 || lstat(dir, &st) == 0) {
		r = err_set(e, -EEXIST, "create %s: already exists", spec->name);
		goto out;
	}

	/* Recorded before anything exists, so a crash leaves nothing unaccounted for. */
	str_copy(rec.name, spec->name, sizeof(rec.name));
	if (spec->flavor && spec->flavor->name)
		str_copy(rec.flavor, spec->flavor->name, sizeof(rec.flavor));
	rec.isolated = isolate;
	rec.created_at = time(NULL);
	r = record_write(l, &rec, e);
	if (r < 0)
		goto out;
	recorded = true;
	if (mkdir(dir, 0700) < 0) {
		r = err_set(e, -errno, "create %s: mkdir %s: %s", spec->name, dir, strerror(errno));
		goto out;
	}
	made_dir = true;
	r = instance_populate(l, dir, spec, e);
	if (r < 0)
		goto out;

	pl = calloc(1, sizeof(*pl));
	if (!pl) {
		r = err_set(e, -ENOMEM, "create %s: out of memory", spec->name);
		goto out;
	}
	r = plan_build(l, isolate, dir, pl, e);
	if (r < 0)
		goto out;
	pl->envp = env.v;
	r = spawn_start(spec->name, pl, &h, e);
	if (r < 0)
		goto out;
	rec.pid = h.pid;
	rec.starttime = h.starttime;
	r = record_write(l, &rec, e);
	if (r < 0)
		goto out;
	r = spawn_go(spec->name, &h, e);
	if (r < 0)
		goto out;
	r = record_state(l, &rec, &state, e);
	if (r < 0)
		goto out;
	record_to_instance(&rec, state, ret);
out:
	if (r < 0) {
		if (h.go >= 0) {
			/* B has not run anything: closing "go" makes it exit by itself. */
			close(h.go);
			h.go = -1;
		}
		if (h.pidfd >= 0)
			(void)pidfd_send_signal(h.pidfd, SIGKILL, NULL, 0);
		if (rec.pid > 0)
			(void)local_stop(l, &rec, 0, NULL);
		if (made_dir)
			(void)rm_rf(dir, NULL);
		if (recorded)
			(void)unlink(rpath);
	}
	spawn_close(&h);
	free(pl);
	env_wipe(&env);
	if (registered) {
		pthread_mutex_lock(&l->lock);
		creating_remove(l, spec->name);
		pthread_mutex_unlock(&l->lock);
	}
	return r;
}

static int local_get(struct provider *p, const struct provider_call *c, const char *name,
                     struct instance *ret, struct err *e)
{
	struct local *l = p->priv;
	struct local_record rec = {0};
	enum cloud_state state = CLOUD_ERROR;
	int r;

	if (check_name(name, e) < 0)
		return -EINVAL;
	r = record_read(l, name, &rec, e);
	if (r == -EBADMSG) {
		/* Unreadable record: report it so the manager deletes it. */
		str_copy(rec.name, name, sizeof(rec.name));
	} else if (r < 0) {
		return r;
	} else {
		r = record_state(l, &rec, &state, e);
		if (r < 0)
			return r;
	}
	record_to_instance(&rec, state, ret);
	return 0;
}

static int local_list(struct provider *p, const struct provider_call *c, struct instance_list *ret,
                      struct err *e)
{
	struct local *l = p->priv;
	struct instance_list out = {0};
	struct dirent *de;
	DIR *d = NULL;
	int fd, r = 0;

	fd = open(l->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, -errno, "list: %s: %s", l->state_dir, strerror(errno));
	d = fdopendir(fd);
	if (!d) {
		r = err_set(e, -errno, "list: %s: %s", l->state_dir, strerror(errno));
		close(fd);
		return r;
	}
	for (;;) {
		char name[INSTANCE_NAME_MAX];
		struct local_record rec = {0};
		struct instance in;
		enum cloud_state state = CLOUD_ERROR;
		size_t n;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				r = err_set(e, -errno, "list: %s: %s", l->state_dir,
				            strerror(errno));
			break;
		}
		n = strlen(de->d_name);
		if (n <= 5 || n - 5 >= sizeof(name) || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		memcpy(name, de->d_name, n - 5);
		name[n - 5] = '\0';
		if (!name_is_owned(p->manager, name))
			continue;
		r = record_read(l, name, &rec, e);
		if (r == -ENOENT) { /* deleted while we listed */
			r = 0;
			continue;
		}
		if (r == -EBADMSG) {
			str_copy(rec.name, name, sizeof(rec.name));
			r = 0;
		} else if (r < 0 || (r = record_state(l, &rec, &state, e)) < 0) {
			break;
		}
		record_to_instance(&rec, state, &in);
		if (instance_list_add(&out, &in) < 0) {
			r = err_set(e, -ENOMEM, "list: out of memory");
			break;
		}
	}
	closedir(d);
	if (r < 0) {
		instance_list_release(&out);
		return r;
	}
	instance_list_release(ret);
	*ret = out;
	return 0;
}

static int local_delete(struct provider *p, const struct provider_call *c, const char *name,
                        struct err *e)
{
	struct local *l = p->priv;
	struct local_record rec = {0};
	char dir[PATH_MAX], rpath[PATH_MAX];
	bool busy;
	int r;

	if (check_name(name, e) < 0)
		return -EINVAL;
	if (path_join(dir, sizeof(dir), l->work_dir, name, "") < 0 ||
	    record_path(l, name, rpath, sizeof(rpath)) < 0)
		return err_set(e, -ENAMETOOLONG, "delete %s: path too long", name);
	pthread_mutex_lock(&l->lock);
	busy = creating_has(l, name);
	pthread_mutex_unlock(&l->lock);
	if (busy)
		return err_set(e, -EBUSY, "delete %s: being created", name);
	r = record_read(l, name, &rec, e);
	if (r == 0 && rec.pid > 0) {
		r = local_stop(l, &rec, l->stop_timeout_ms, e);
		if (r < 0)
			return r;
	} else if (r < 0 && r != -ENOENT && r != -EBADMSG) {
		return r;
	}
	/* Every process is gone: nothing races rm_rf, which never follows symlinks anyway. */
	r = rm_rf(dir, e);
	if (r < 0) {
		if (e)
			err_prefix(e, "delete %s", name);
		return r;
	}
	if (unlink(rpath) < 0 && errno != ENOENT)
		return err_set(e, -errno, "delete %s: %s: %s", name, rpath, strerror(errno));
	/* what left the instance (setsid, a cleared environment) goes in the next gc */
	return 0;
}

static int local_health(struct provider *p, const struct provider_call *c, const char *name,
                        enum health *ret, struct err *e)
{
	struct instance in;
	int r = local_get(p, c, name, &in, e);

	if (r == -ENOENT) {
		err_clear(e);
		*ret = HEALTH_UNKNOWN;
		return 0;
	}
	if (r < 0)
		return r;
	*ret = health_from_state(in.state);
	return 0;
}

static int open_errno(int err)
{
	if (err == ENOENT)
		return -ENOENT;
	if (err == ELOOP || err == ENOTDIR || err == EMLINK)
		return -EINVAL;
	return -err;
}

/*
 * Open path (relative, inside the instance's directory) one component at a
 * time, never following a symlink the runner planted; dir: the last
 * component must be a directory. *ret_fd is the open descriptor.
 */
static int instance_open(struct local *l, const char *verb, const char *name, const char *path,
                         bool dir, int *ret_fd, struct err *e)
{
	char base[PATH_MAX], rel[PATH_MAX];
	char *comp, *next;
	int fd, r = 0;

	if (check_name(name, e) < 0)
		return -EINVAL;
	if (!path || !*path || path[0] == '/' || str_copy(rel, path, sizeof(rel)) >= sizeof(rel))
		return err_set(e, -EINVAL, "%s %s: %s: path must be relative", verb, name,
		               path ? path : "");
	if (path_join(base, sizeof(base), l->work_dir, name, "") < 0)
		return err_set(e, -ENAMETOOLONG, "%s %s: path too long", verb, name);
	fd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, open_errno(errno), "%s %s: no such instance", verb, name);
	for (comp = rel; comp; comp = next) {
		int nfd;
		next = strchr(comp, '/');
		if (next)
			*next++ = '\0';
		while (next && *next == '/')
			next++;
		if (next && !*next)
			next = NULL;
		if (!*comp || strcmp(comp, ".") == 0) {
			if (!next && !dir) {
				r = err_set(e, -EINVAL, "%s %s: %s: not a file", verb, name, path);
				goto out;
			}
			continue;
		}
		if (strcmp(comp, "..") == 0) {
			r = err_set(e, -EINVAL, "%s %s: %s: '..' refused", verb, name, path);
			goto out;
		}
		nfd = openat(fd, comp,
		             O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
		                     (next || dir ? O_DIRECTORY : O_NONBLOCK));
		if (nfd < 0) {
			int err = errno;
			/* the last component of a directory walk: say what it is not */
			r = dir && !next && err == ENOTDIR ? -ENOTDIR : open_errno(err);
			r = err_set(e, r, "%s %s: %s: %s", verb, name, path,
			            err == ELOOP ? "symlink refused" : strerror(err));
			goto out;
		}
		close(fd);
		fd = nfd;
	}
out:
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static int local_pull_file(struct provider *p, const struct provider_call *c, const char *name,
                           const char *path, size_t max_bytes, struct buf *ret, struct err *e)
{
	struct local *l = p->priv;
	struct buf b = BUF_INIT(max_bytes);
	char chunk[16384];
	struct stat st;
	int fd = -1, r;

	r = instance_open(l, "pull", name, path, false, &fd, e);
	if (r < 0)
		return r;
	if (fstat(fd, &st) < 0) {
		r = err_set(e, -errno, "pull %s: %s: %s", name, path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = err_set(e, -EINVAL, "pull %s: %s: not a regular file", name, path);
		goto out;
	}
	/* A hard link to a file of someone else (say runnerd's token) is not the runner's. */
	if (st.st_uid != l->uid) {
		r = err_set(e, -EACCES, "pull %s: %s: not owned by %s", name, path, l->user);
		goto out;
	}
	if ((uint64_t)st.st_size > max_bytes) {
		r = err_set(e, -E2BIG, "pull %s: %s: larger than %zu bytes", name, path, max_bytes);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = err_set(e, -errno, "pull %s: %s: %s", name, path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (buf_append(&b, chunk, (size_t)n) < 0) {
			r = err_set(e, -E2BIG, "pull %s: %s: larger than %zu bytes", name, path,
			            max_bytes);
			goto out;
		}
	}
	if (!b.data && buf_append(&b, "", 0) < 0) {
		r = err_set(e, -ENOMEM, "pull %s: out of memory", name);
		goto out;
	}
	buf_release(ret);
	*ret = b;
	b.data = NULL;
out:
	buf_release(&b);
	if (fd >= 0)
		close(fd);
	return r;
}

#define LOCAL_LIST_FILES_MAX 1000

/* Regular files owned by the runner user, as pull_file would read them. */
static int local_list_files(struct provider *p, const struct provider_call *c, const char *name,
                            const char *dir, struct strv *ret, struct err *e)
{
	struct local *l = p->priv;
	struct strv out = {0};
	size_t cap = 0;
	struct dirent *de;
	DIR *d;
	int fd = -1, r;

	r = instance_open(l, "list files", name, dir, true, &fd, e);
	if (r < 0)
		return r;
	d = fdopendir(fd);
	if (!d) {
		r = err_set(e, -errno, "list files %s: %s: %s", name, dir, strerror(errno));
		close(fd);
		return r;
	}
	while ((errno = 0, de = readdir(d))) {
		struct stat st;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_uid != l->uid)
			continue;
		if (out.n == LOCAL_LIST_FILES_MAX) {
			r = err_set(e, -E2BIG, "list files %s: %s: more than %d files", name, dir,
			            LOCAL_LIST_FILES_MAX);
			goto out;
		}
		if (out.n + 1 >= cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **v = realloc(out.v, ncap * sizeof(*v));
			if (!v) {
				r = err_set(e, -ENOMEM, "list files: out of memory");
				goto out;
			}
			out.v = v;
			cap = ncap;
		}
		out.v[out.n] = strdup(de->d_name);
		if (!out.v[out.n]) {
			r = err_set(e, -ENOMEM, "list files: out of memory");
			goto out;
		}
		out.n++;
	}
	if (errno) {
		r = err_set(e, -errno, "list files %s: %s: %s", name, dir, strerror(errno));
		goto out;
	}
	strv_release(ret);
	*ret = out;
	out.v = NULL;
	out.n = 0;
out:
	strv_release(&out);
	closedir(d);
	return r;
}

static void local_close(struct provider *p)
{
	struct local *l = p->priv;

	if (!l)
		return;
	pthread_mutex_destroy(&l->lock);
	free(l->creating);
	free(l);
	p->priv = NULL;
}

/* Leftovers: processes of the runner user that belong to no recorded instance. */
static int local_gc(struct provider *p, const struct provider_call *c, struct err *e)
{
	int r = local_sweep(p->priv);
	if (r < 0)
		return err_set(e, r, "local: sweeping leftover processes: %s", strerror(-r));
	return 0;
}

static int local_policy(struct provider *p, const struct provider_call *c,
                        const struct provider_policy *pol, struct err *e);
static int local_open(struct provider *p, const struct config_provider *pc, struct err *e);

const struct provider_ops local_ops = {
        .type = "local",
        .open = local_open,
        .create = local_create,
        .get = local_get,
        .list = local_list,
        .delete = local_delete,
        .health = local_health,
        .pull_file = local_pull_file,
        .list_files = local_list_files,
        .policy = local_policy,
        .gc = local_gc,
        .close = local_close,
};

/* ---- setup ---------------------------------------------------------- */

static bool user_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > LOCAL_USER_MAX || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return !(s[0] >= '0' && s[0] <= '9');
}

/* 0 found, -ENOENT missing. */
static int user_lookup(struct local *l, struct err *e)
{
	struct passwd pw, *res = NULL;
	char buf[16384];
	int n = LOCAL_GROUPS_MAX, r;

	r = getpwnam_r(l->user, &pw, buf, sizeof(buf), &res);
	if (r != 0)
		return err_set(e, -r, "user %s: %s", l->user, strerror(r));
	if (!res)
		return -ENOENT;
	l->uid = pw.pw_uid;
	l->gid = pw.pw_gid;
	if (getgrouplist(l->user, l->gid, l->groups, &n) < 0)
		return err_set(e, -E2BIG, "user %s: more than %d groups", l->user,
		               LOCAL_GROUPS_MAX);
	l->n_groups = (size_t)n;
	if (l->uid == 0 || l->uid == geteuid() || l->gid == 0)
		return err_set(e, -EPERM, "user %s: must not be root or the daemon's user",
		               l->user);
	for (size_t i = 0; i < l->n_groups; i++)
		if (l->groups[i] == 0)
			return err_set(e, -EPERM, "user %s: must not be in group root", l->user);
	return 0;
}

static int user_create(const char *user, struct err *e)
{
	char *const argv[] = {"useradd",      "--system",       "--no-create-home",  "--home-dir",
	                      "/nonexistent", "--shell",        "/usr/sbin/nologin", "--user-group",
	                      "--comment",    "runnerd runner", (char *)user,        NULL};
	char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", NULL};
	char out[400];
	size_t len = 0;
	int pfd[2], status = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return err_set(e, -errno, "useradd: pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return err_set(e, -errno, "useradd: fork: %s", strerror(errno));
	}
	if (pid == 0) {
		int in = child_fd_above2(open("/dev/null", O_RDONLY | O_CLOEXEC));
		int w = child_fd_above2(pfd[1]);
		if (in < 0 || w < 0 || dup2(in, 0) < 0 || dup2(w, 1) < 0 || dup2(w, 2) < 0)
			_exit(127);
		close_range(3, ~0U, 0);
		execve("/usr/sbin/useradd", argv, envp);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		char tmp[256];
		ssize_t n = read(pfd[0], tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n && len + 1 < sizeof(out); i++)
			out[len++] = tmp[i] == '\n' ? ' ' : tmp[i];
	}
	out[len] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return err_set(e, -EIO, "useradd %s failed (status %d): %s", user, status, out);
	return 0;
}

static int user_setup(struct local *l, struct err *e)
{
	static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;
	int r = user_lookup(l, e);

	if (r != -ENOENT)
		return r;
	pthread_mutex_lock(&create_lock);
	r = user_lookup(l, e);
	if (r == -ENOENT) {
		r = user_create(l->user, e);
		if (r == 0)
			r = user_lookup(l, e);
		if (r == -ENOENT)
			r = err_set(e, -ENOENT, "user %s: missing after useradd", l->user);
	}
	pthread_mutex_unlock(&create_lock);
	return r;
}

/* A root-owned directory (not a symlink) with exactly this mode. */
static int dir_own(int parent, const char *name, const char *shown, mode_t mode, struct err *e)
{
	struct stat st;
	int fd, r = 0;

	if (mkdirat(parent, name, mode) < 0 && errno != EEXIST)
		return err_set(e, -errno, "mkdir %s: %s", shown, strerror(errno));
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, -errno, "%s: %s", shown, strerror(errno));
	if (fstat(fd, &st) < 0)
		r = err_set(e, -errno, "%s: %s", shown, strerror(errno));
	else if (st.st_uid != 0)
		r = err_set(e, -EPERM, "%s: not owned by root", shown);
	else if ((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0)
		r = err_set(e, -errno, "%s: chmod: %s", shown, strerror(errno));
	close(fd);
	return r;
}

/* The file bound over secret files: root's, 0400, empty, not a symlink. */
static int empty_setup(const char *path, struct err *e)
{
	struct stat st;
	int fd, r = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0400);
	if (fd < 0)
		return err_set(e, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0)
		r = err_set(e, -errno, "%s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode) || st.st_uid != 0)
		r = err_set(e, -EPERM, "%s: not a regular file of root's", path);
	else if ((st.st_size != 0 && ftruncate(fd, 0) < 0) ||
	         ((st.st_mode & 07777) != 0400 && fchmod(fd, 0400) < 0))
		r = err_set(e, -errno, "%s: %s", path, strerror(errno));
	close(fd);
	return r;
}

static int work_dir_setup(struct local *l, const char *work, struct err *e)
{
	char real[PATH_MAX];
	int r;

	if (work[0] != '/')
		return err_set(e, -EINVAL, "providers.local.work_dir %s: must be absolute", work);
	r = mkdir_p(work, 0711, e);
	if (r < 0)
		return r;
	r = dir_own(AT_FDCWD, work, work, 0711, e);
	if (r < 0)
		return r;
	if (!realpath(work, real))
		return err_set(e, -errno, "%s: %s", work, strerror(errno));
	str_copy(l->work_dir, real, sizeof(l->work_dir));
	if (path_join(l->state_dir, sizeof(l->state_dir), real, ".state", "") < 0 ||
	    path_join(l->empty, sizeof(l->empty), l->state_dir, LOCAL_EMPTY_FILE, "") < 0)
		return err_set(e, -ENAMETOOLONG, "%s: path too long", work);
	r = dir_own(AT_FDCWD, l->state_dir, l->state_dir, 0700, e);
	if (r < 0)
		return r;
	return empty_setup(l->empty, e);
}

/*
 * The policy (provider_policy): what an isolated instance must not see.
 * runnerd's state and log dirs and the other instances (a tmpfs over each;
 * the instance's own dir is bound back), and runnerd's secret files
 * wherever they are (the empty file over each: their directory, /etc/runnerd
 * say, may hold more than runnerd's). A directory holding system paths is
 * never hidden; paths missing now are not hidden. The denylist is not
 * enforced here (traits.denylist is false).
 */
static int local_policy(struct provider *p, const struct provider_call *c,
                        const struct provider_policy *pol, struct err *e)
{
	static const char *const system[] = {"/bin",  "/dev", "/etc", "/lib", "/lib64",  "/proc",
	                                     "/sbin", "/sys", "/tmp", "/usr", "/var/tmp"};
	static const char *const tmps[] = {"/tmp", "/var/tmp"};
	struct local *l = p->priv;
	struct local_hiding h = {.hide_root = -1};
	const struct strv *dirs = pol->hidden_dirs, *secrets = pol->secret_files;
	char cand[LOCAL_HIDE_MAX][PATH_MAX];
	size_t n = 0, n_in = (dirs ? dirs->n : 0) + 1;

	if (n_in > LOCAL_HIDE_MAX || (secrets && secrets->n > LOCAL_SECRETS_MAX))
		return err_set(e, -E2BIG,
		               "local: at most %d directories and %d secret files to hide",
		               LOCAL_HIDE_MAX - 1, LOCAL_SECRETS_MAX);
	for (size_t i = 0; i < n_in; i++) {
		const char *in = i + 1 < n_in ? dirs->v[i] : l->work_dir;
		bool skip = false;
		if (!in || in[0] != '/' || !realpath(in, cand[n]))
			continue;
		for (size_t k = 0; k < ARRAY_SIZE(system); k++)
			if (path_under(system[k], cand[n]))
				skip = true;
		if (!skip)
			n++;
	}
	for (size_t i = 0; i < n; i++) {
		bool inner = false;
		for (size_t k = 0; k < n; k++)
			if (k != i && path_under(cand[i], cand[k]) &&
			    (strcmp(cand[i], cand[k]) != 0 || k < i))
				inner = true;
		if (inner)
			continue;
		if (path_under(l->work_dir, cand[i]))
			h.hide_root = (int)h.n_hide;
		str_copy(h.hide[h.n_hide++], cand[i], PATH_MAX);
	}
	for (size_t i = 0; secrets && i < secrets->n; i++) {
		char real[PATH_MAX];
		struct stat st;
		bool skip = false;
		if (!secrets->v[i] || !*secrets->v[i] || !realpath(secrets->v[i], real) ||
		    stat(real, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		for (size_t k = 0; k < h.n_hide; k++)
			if (path_under(real, h.hide[k]))
				skip = true; /* under a tmpfs already */
		for (size_t k = 0; k < h.n_secrets; k++)
			if (strcmp(real, h.secrets[k]) == 0)
				skip = true;
		if (!skip)
			str_copy(h.secrets[h.n_secrets++], real, PATH_MAX);
	}
	for (size_t i = 0; i < ARRAY_SIZE(tmps); i++) {
		struct stat st;
		bool ok = lstat(tmps[i], &st) == 0 && S_ISDIR(st.st_mode) &&
		          !path_under(l->work_dir, tmps[i]);
		for (size_t k = 0; ok && k < h.n_hide; k++)
			if (path_under(h.hide[k], tmps[i]))
				ok = false;
		if (ok)
			h.tmp_targets[h.n_tmp++] = tmps[i];
	}
	pthread_mutex_lock(&l->lock);
	l->hiding = h;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

/* Can we give an instance its own PID and mount namespaces here? Try it. */
static bool isolation_probe(const struct local *l)
{
	int status = 0;
	pid_t a = fork();

	if (a < 0)
		return false;
	if (a == 0) {
		pid_t b;
		close_range(3, ~0U, 0);
		if (unshare(CLONE_NEWPID | CLONE_NEWNS) < 0)
			_exit(1);
		b = _Fork();
		if (b < 0)
			_exit(1);
		if (b == 0) {
			if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
			    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) <
			            0 ||
			    mount("tmpfs", l->work_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			          "size=4k") < 0)
				_exit(1);
			_exit(getpid() == 1 ? 0 : 1);
		}
		while (waitpid(b, &status, 0) < 0 && errno == EINTR)
			;
		_exit(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1);
	}
	while (waitpid(a, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void local_traits(struct provider *p, bool isolated)
{
	p->traits = (struct provider_traits){
	        .runner_from_host = true,
	        .host_process = true,
	        .pull_files = true,
	        .list_files = true,
	};
	snprintf(p->traits.note, sizeof(p->traits.note), "%s",
	         isolated ? "each instance gets its own PID and mount namespace; runnerd's "
	                    "state, logs and secret files are hidden from jobs"
	                  : "no namespaces on this host (fallback): instances share the runner "
	                    "user, secret files are protected by their mode alone");
}

/* Settings come from the config table (their defaults too); none are guessed here. */
static int local_open(struct provider *p, const struct config_provider *pc, struct err *e)
{
	const struct config_local *cl = &pc->local;
	struct local *l = NULL;
	int r;

	if (!cl->work_dir || !*cl->work_dir || !cl->user || cl->stop_timeout <= 0)
		return err_set(e, -EINVAL,
		               "providers.%s: work_dir, user and stop_timeout are needed",
		               pc->name);
	if (!user_name_valid(cl->user))
		return err_set(e, -EINVAL, "providers.%s.user %s: not a valid user name", pc->name,
		               cl->user);
	if (geteuid() != 0)
		return err_set(e, -EPERM,
		               "local provider: runnerd must run as root to start instances as %s",
		               cl->user);
	l = calloc(1, sizeof(*l));
	if (!l) {
		r = err_set(e, -ENOMEM, "out of memory");
		goto fail;
	}
	str_copy(l->user, cl->user, sizeof(l->user));
	l->stop_timeout_ms =
	        cl->stop_timeout > INT64_MAX / 1000 ? INT64_MAX : cl->stop_timeout * 1000;
	r = user_setup(l, e);
	if (r < 0)
		goto fail;
	r = work_dir_setup(l, cl->work_dir, e);
	if (r < 0)
		goto fail;
	l->can_isolate = isolation_probe(l);
	l->isolate = l->can_isolate;
	r = pthread_mutex_init(&l->lock, NULL);
	if (r != 0) {
		r = err_set(e, -r, "mutex: %s", strerror(r));
		goto fail;
	}
	p->priv = l;
	/* until the manager's policy: the other instances at least are hidden */
	r = local_policy(p, NULL, &(struct provider_policy){0}, e);
	if (r < 0) {
		pthread_mutex_destroy(&l->lock);
		p->priv = NULL;
		goto fail;
	}
	local_traits(p, l->isolate);
	return 0;
fail:
	free(l);
	if (e)
		err_prefix(e, "local provider");
	return r;
}

bool local_isolated(const struct provider *p)
{
	struct local *l = p->priv;
	bool on;

	pthread_mutex_lock(&l->lock);
	on = l->isolate;
	pthread_mutex_unlock(&l->lock);
	return on;
}

void local_set_isolated(struct provider *p, bool on)
{
	struct local *l = p->priv;

	pthread_mutex_lock(&l->lock);
	l->isolate = on && l->can_isolate;
	pthread_mutex_unlock(&l->lock);
	local_traits(p, on && l->can_isolate);
}

uid_t local_runner_uid(const struct provider *p)
{
	return ((const struct local *)p->priv)->uid;
}
