/*
 * Starting an instance. Process tree: runnerd forks A; A (optionally)
 * unshares PID and mount namespaces, forks B and exits at once, so B
 * belongs to no runnerd process and survives a daemon restart. B makes
 * itself a session leader, sets up its mounts, waits until runnerd has
 * durably recorded its pid and start time (a crash before that makes B
 * exit instead of running unrecorded), drops to the instance's uid (and the
 * gid of that number, no other group) and execs /bin/sh startup.sh. Between fork and exec the
 * children must call only async-signal-safe functions: the executor forks from a multi-threaded
 * process. B must never run the script as root, nor before runnerd said go.
 * runnerd's waits for the children end at the call's deadline and when the
 * call is cancelled; the caller then undoes what was started.
 */
#include "util/common.h"
#include "provider/local/local_internal.h"
#include "util/clock.h"
#include "util/strutil.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define LOCAL_SPAWN_TIMEOUT_MS 10000

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

#define LOCAL_CUTS_MAX 64

/* Everything the children need, computed before fork. */
struct local_spawn_plan {
	bool isolate;
	char dir[PATH_MAX];
	char log[PATH_MAX];
	char script[PATH_MAX];
	char *argv[5];
	char **envp;
	uid_t uid;                  /* and the gid of that number, no other group */
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

#define MSG_PID  1
#define MSG_FAIL 2

struct spawn_msg {
	int32_t kind;
	int32_t stage;
	int32_t err;
	int32_t pid;
};

/* Everything the children need, computed before fork. */

static void child_report(int fd, int kind, int stage, int err, pid_t pid)
{
	struct spawn_msg m = {kind, stage, err, pid};
	ssize_t n;
	do
		n = write(fd, &m, sizeof(m));
	while (n < 0 && errno == EINTR);
}

static _Noreturn void child_fail(const struct local_spawn_plan *pl, int stage)
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

int local_fd_above2(int fd)
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

static void child_mounts(struct local_spawn_plan *pl)
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

static void child_drop_privileges(const struct local_spawn_plan *pl)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	/* Raw syscalls: this thread is alone, glibc's all-threads setxid is not needed. */
	if (syscall(SYS_setgroups, 0, NULL) < 0)
		child_fail(pl, STAGE_SETGROUPS);
	if (syscall(SYS_setresgid, (gid_t)pl->uid, (gid_t)pl->uid, (gid_t)pl->uid) < 0)
		child_fail(pl, STAGE_SETGID);
	if (syscall(SYS_setresuid, pl->uid, pl->uid, pl->uid) < 0)
		child_fail(pl, STAGE_SETUID);
	errno = EPERM;
	if (getresuid(&ru, &eu, &su) < 0 || ru != pl->uid || eu != pl->uid || su != pl->uid ||
	    getresgid(&rg, &eg, &sg) < 0 || rg != (gid_t)pl->uid || eg != (gid_t)pl->uid ||
	    sg != (gid_t)pl->uid)
		child_fail(pl, STAGE_REGAIN);
	if (syscall(SYS_setresuid, 0, 0, 0) == 0 || syscall(SYS_setresgid, 0, 0, 0) == 0) {
		errno = EPERM;
		child_fail(pl, STAGE_REGAIN);
	}
	/* setuid binaries and file capabilities cannot lift it back up either. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(pl, STAGE_NO_NEW_PRIVS);
}

static _Noreturn void child_b(struct local_spawn_plan *pl)
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
	/* Opened as the instance's uid: the log is its file. */
	in = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (in < 0 || (in = local_fd_above2(in)) < 0)
		child_fail(pl, STAGE_STDIO);
	out = open(pl->log, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (out < 0 || (out = local_fd_above2(out)) < 0)
		child_fail(pl, STAGE_STDIO);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		child_fail(pl, STAGE_STDIO);
	close(in);
	close(out);
	execve("/bin/sh", pl->argv, pl->envp);
	child_fail(pl, STAGE_EXEC);
}

static _Noreturn void child_a(struct local_spawn_plan *pl)
{
	pid_t b;

	pl->rep = local_fd_above2(pl->rep);
	if (pl->rep < 0)
		_exit(127);
	pl->go = local_fd_above2(pl->go);
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

/*
 * One message from the children: 1 with one, 0 on EOF, -errno. The wait
 * ends at LOCAL_SPAWN_TIMEOUT_MS or the call's deadline, whichever comes
 * first (-ETIMEDOUT), and once the call is cancelled (-ECANCELED): it polls
 * in slices of LOCAL_POLL_MS to look at the flag.
 */
static int spawn_read(int fd, const struct provider_call *c, struct spawn_msg *ret)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	int64_t deadline = clock_mono_ms() + provider_call_bound_ms(c, LOCAL_SPAWN_TIMEOUT_MS);
	ssize_t n;

	for (;;) {
		int64_t left = deadline - clock_mono_ms();
		int r;
		if (provider_call_cancelled(c))
			return -ECANCELED;
		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)(left < LOCAL_POLL_MS ? left : LOCAL_POLL_MS));
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

void local_spawn_close(struct local_spawn_handle *h)
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

/* Start A and B; B waits for local_spawn_go(). */
int local_spawn_start(const char *name, struct local_spawn_plan *pl, const struct provider_call *c,
                      struct local_spawn_handle *h, struct err *e)
{
	int rep[2] = {-1, -1}, go[2] = {-1, -1};
	struct spawn_msg m;
	struct local_proc_info pi;
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
	r = spawn_read(h->rep, c, &m);
	/*
	 * Without a message A may still be on its way: it is our unreaped
	 * child, so its pid is still its own to kill. A B it forked already
	 * exits by itself once runnerd closes "go" (the caller's cleanup).
	 */
	if (r != 1)
		(void)kill(a, SIGKILL);
	wait_child(a);
	if (r == -ECANCELED)
		return err_set(e, r, "instance %s: cancelled while starting", name);
	if (r == 1 && m.kind == MSG_FAIL)
		return spawn_fail_msg(name, &m, e);
	if (r != 1 || m.kind != MSG_PID || m.pid <= 0)
		return err_set(e, r < 0 ? r : -EIO, "instance %s: no pid from the starter", name);
	h->pid = m.pid;
	h->pidfd = pidfd_open(h->pid, 0);
	if (h->pidfd < 0)
		return err_set(e, -errno, "instance %s: pidfd_open: %s", name, strerror(errno));
	r = local_proc_info_read(h->pid, &pi);
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

/*
 * Let B run the script, and wait until it has exec'd (EOF) or failed. A
 * call cancelled by now does not let it run at all: B exits by itself once
 * "go" is closed.
 */
int local_spawn_go(const char *name, struct local_spawn_handle *h, const struct provider_call *c,
                   struct err *e)
{
	struct spawn_msg m;
	ssize_t n;
	int r;

	if (provider_call_cancelled(c))
		return err_set(e, -ECANCELED, "instance %s: cancelled before its script ran", name);
	do
		n = write(h->go, "g", 1);
	while (n < 0 && errno == EINTR);
	close(h->go);
	h->go = -1;
	if (n != 1)
		return err_set(e, -EIO, "instance %s: the starter is gone", name);
	r = spawn_read(h->rep, c, &m);
	if (r == 0)
		return 0;
	if (r == -ECANCELED)
		return err_set(e, r, "instance %s: cancelled while its script started", name);
	if (r == 1 && m.kind == MSG_FAIL)
		return spawn_fail_msg(name, &m, e);
	return err_set(e, r < 0 ? r : -EIO, "instance %s: starting the script: %s", name,
	               strerror(r < 0 ? -r : EIO));
}

static int plan_build(struct local *l, bool isolate, const char *dir, uid_t uid,
                      struct local_spawn_plan *pl, struct err *e)
{
	const struct local_hiding *h = &pl->hiding;

	if (uid == 0 || uid == geteuid())
		return err_set(e, -EPERM, "%s: never as root or as runnerd's uid", dir);
	pl->isolate = isolate;
	str_copy(pl->dir, dir, sizeof(pl->dir));
	if (local_path_join(pl->log, sizeof(pl->log), dir, LOCAL_LOG_FILE, "") < 0 ||
	    local_path_join(pl->script, sizeof(pl->script), dir, LOCAL_SCRIPT_FILE, "") < 0)
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
	pl->uid = uid;
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

int local_spawn_plan_new(const char *name, struct local *l, bool isolate, const char *dir,
                         uid_t uid, char **envp, struct local_spawn_plan **ret, struct err *e)
{
	struct local_spawn_plan *pl = calloc(1, sizeof(*pl));
	int r;

	if (!pl)
		return err_set(e, -ENOMEM, "create %s: out of memory", name);
	r = plan_build(l, isolate, dir, uid, pl, e);
	if (r < 0) {
		free(pl);
		return r;
	}
	pl->envp = envp;
	*ret = pl;
	return 0;
}

void local_spawn_plan_free(struct local_spawn_plan *pl)
{
	free(pl);
}
