/*
 * Stopping a local instance (TERM, a grace, then KILL) and sweeping the
 * runner user's leftovers (gc). It must never signal a process that is
 * not the instance's or the runner user's: each process is pinned by a
 * pidfd and checked again before the signal, a pid counts only with the
 * recorded start time, and nothing of another uid is ever signalled.
 */
#include "util/common.h"
#include "provider/local/local_internal.h"
#include "util/clock.h"
#include "util/strutil.h"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/pidfd.h>

#define LOCAL_SWEEP_MIN_AGE_MS 2000
#define LOCAL_SWEEP_ROUNDS     5
#define LOCAL_SWEEP_PAUSE_MS   20

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
static bool stop_session_ours(const struct stop_ctx *s)
{
	struct local_proc_info pi;
	int r;

	if (s->pidfd >= 0)
		return true;
	r = local_proc_info_read(s->rec->pid, &pi);
	return r == -ENOENT || (r == 0 && pi.starttime == s->rec->starttime);
}

/* Is p one of the instance's processes (other than the leader)? */
static bool stop_member(const struct stop_ctx *s, pid_t p)
{
	struct local_proc_info pi;
	char path[64], home[PATH_MAX];
	uid_t uid = (uid_t)-1;

	if (p == s->rec->pid && s->pidfd >= 0)
		return false; /* the leader: signalled through its pidfd */
	if (s->nsfd >= 0) {
		struct stat st;
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)p);
		return stat(path, &st) == 0 && st.st_dev == s->ns.st_dev &&
		       st.st_ino == s->ns.st_ino;
	}
	/* Without namespaces: runner-owned processes only, whatever else they say. */
	if (local_proc_info_read(p, &pi) < 0 || local_proc_dead_state(pi.state) ||
	    local_proc_uid(p, &uid) < 0 || uid != s->l->uid)
		return false;
	/* A member started after its session's leader did. */
	if (pi.session == s->rec->pid && pi.starttime >= s->rec->starttime && stop_session_ours(s))
		return true;
	return local_proc_home(p, home, sizeof(home)) == 0 && strcmp(home, s->home) == 0;
}

/* Signal every member; returns how many were found, or -errno. */
static int stop_signal_members(const struct stop_ctx *s, int sig)
{
	int found = 0;
	DIR *d = opendir("/proc");
	pid_t p;

	if (!d)
		return -errno;
	while (local_proc_next(d, &p)) {
		int fd;

		if (!stop_member(s, p))
			continue;
		/*
		 * Pin the process, then check again: a pinned process that is
		 * still alive after the check is the one the check read.
		 */
		fd = pidfd_open(p, 0);
		if (fd < 0)
			continue;
		if (stop_member(s, p) && !pidfd_exited(fd)) {
			found++;
			(void)pidfd_send_signal(fd, sig, NULL, 0);
		}
		close(fd);
	}
	closedir(d);
	return found;
}

static void stop_signal(const struct stop_ctx *s, int sig)
{
	if (s->pidfd >= 0 && !pidfd_exited(s->pidfd))
		(void)pidfd_send_signal(s->pidfd, sig, NULL, 0);
	/* Killing the namespace's init kills the whole namespace at once. */
	if (s->nsfd >= 0 && sig == SIGKILL)
		return;
	(void)stop_signal_members(s, sig);
}

static bool stop_gone(const struct stop_ctx *s)
{
	if (s->pidfd >= 0 && !pidfd_exited(s->pidfd))
		return false;
	/* An init's exit completes only after every process of its namespace has gone. */
	if (s->nsfd >= 0)
		return true;
	return stop_signal_members(s, 0) == 0;
}

/*
 * Until every process is gone (true) or timeout_ms have passed, at most
 * until the call's deadline. The cancel flag does not cut it short: see
 * local_stop.
 */
static bool stop_wait(const struct stop_ctx *s, const struct provider_call *c, int64_t timeout_ms)
{
	int64_t deadline = clock_mono_ms() + provider_call_bound_ms(c, timeout_ms);
	for (;;) {
		struct pollfd pfd = {.fd = s->pidfd, .events = POLLIN};
		int64_t left;

		if (stop_gone(s))
			return true;
		left = deadline - clock_mono_ms();
		if (left <= 0)
			return false;
		if (left > LOCAL_POLL_MS)
			left = LOCAL_POLL_MS;
		if (s->pidfd < 0 || pidfd_exited(s->pidfd))
			clock_sleep_ms(left);
		else
			(void)poll(&pfd, 1, (int)left);
	}
}

/*
 * TERM every process of the instance, give them grace_ms, then KILL. The
 * leader is signalled only while it is the recorded one (pid and start
 * time: a pid whose start time differs belongs to someone else now).
 * Without namespaces the rest of the instance may outlive its leader (a
 * job that killed its shell, `nohup cmd &`): they are found and stopped
 * all the same.
 *
 * Every wait ends at the call's deadline (-ETIMEDOUT when processes are
 * still there then) but not when the call is cancelled: a stop abandoned
 * between TERM and KILL would leave a job that was told to end running on,
 * and its record with it, until a later pass. Finishing takes at most the
 * grace and two KILL rounds, which the deadline bounds anyway.
 */
int local_stop(struct local *l, const struct local_record *rec, int64_t grace_ms,
               const struct provider_call *c, struct err *e)
{
	struct stop_ctx s = {.l = l, .rec = rec, .pidfd = -1, .nsfd = -1};
	struct local_proc_info pi;
	int r = 0;

	if (local_path_join(s.home, sizeof(s.home), l->work_dir, rec->name, "") < 0)
		return err_set(e, -ENAMETOOLONG, "instance %s: path too long", rec->name);
	s.pidfd = pidfd_open(rec->pid, 0);
	if (s.pidfd < 0 && errno != ESRCH)
		return err_set(e, -errno, "instance %s: pidfd_open: %s", rec->name,
		               strerror(errno));
	if (s.pidfd >= 0) {
		r = local_proc_info_read(rec->pid, &pi);
		if (r == -ENOENT || (r == 0 && pi.starttime != rec->starttime)) {
			close(s.pidfd);
			s.pidfd = -1;
			r = 0;
		} else if (r < 0) {
			r = err_set(e, r, "instance %s: reading /proc/%d: %s", rec->name,
			            (int)rec->pid, strerror(-r));
			goto out;
		}
	}
	if (rec->isolated) {
		char path[64];
		if (s.pidfd < 0 || pidfd_exited(s.pidfd))
			goto out; /* the namespace went with its init */
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)rec->pid);
		s.nsfd = open(path, O_RDONLY | O_CLOEXEC);
		/* Still alive after the open: the ns is the leader's, not a successor's. */
		if (s.nsfd < 0 || pidfd_exited(s.pidfd) || fstat(s.nsfd, &s.ns) < 0)
			goto out;
	}
	stop_signal(&s, SIGTERM);
	if (grace_ms > 0 && stop_wait(&s, c, grace_ms))
		goto out;
	stop_signal(&s, SIGKILL);
	if (!stop_wait(&s, c, LOCAL_KILL_TIMEOUT_MS)) {
		/* Non-isolated stragglers may be forking; one more round. */
		stop_signal(&s, SIGKILL);
		if (stop_wait(&s, c, LOCAL_KILL_TIMEOUT_MS))
			goto out;
		if (provider_call_left_ms(c) == 0)
			r = err_set(e, -ETIMEDOUT,
			            "instance %s: processes still there at the call's deadline",
			            rec->name);
		else
			r = err_set(e, -EBUSY, "instance %s: processes survive SIGKILL", rec->name);
	}
out:
	if (s.nsfd >= 0)
		close(s.nsfd);
	if (s.pidfd >= 0)
		close(s.pidfd);
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
	if (local_path_join(path, sizeof(path), dir, ".state", "") < 0 || lstat(path, &st) < 0 ||
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
	struct local_ns_id *ns;
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
	int r = local_records_open(l, &d);

	if (r < 0)
		return r;
	while ((errno = 0, de = readdir(d))) {
		char name[INSTANCE_NAME_MAX], path[64];
		struct local_record rec;
		struct local_proc_info pi;
		struct stat st;

		if (!local_record_name(de->d_name, name) ||
		    !name_is_valid(name, INSTANCE_NAME_MAX - 1) ||
		    local_record_read(l, name, &rec, NULL) < 0 || rec.pid <= 0)
			continue;
		if ((r = grow((void **)&k->sids, &k->cap_sids, k->n_sids, sizeof(*k->sids))) < 0)
			break;
		k->sids[k->n_sids++] = rec.pid;
		if (!rec.isolated || local_proc_info_read(rec.pid, &pi) < 0 ||
		    pi.starttime != rec.starttime)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)rec.pid);
		if (stat(path, &st) < 0)
			continue;
		if ((r = grow((void **)&k->ns, &k->cap_ns, k->n_ns, sizeof(*k->ns))) < 0)
			break;
		k->ns[k->n_ns++] = (struct local_ns_id){st.st_dev, st.st_ino};
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
	if (local_proc_pidns_within(sp->pid, k->ns, k->n_ns))
		return true;
	/* Only a session leader can be such a starter: a leftover's children are not spared. */
	if (sp->pid == sp->sid && local_proc_age_ms(sp->starttime) < LOCAL_SWEEP_MIN_AGE_MS)
		return true;
	return local_proc_home(sp->pid, home, sizeof(home)) == 0 && home_recorded(home);
}

/* Is sp (pinned by fd) still that runner-owned process, alive? */
static bool sweep_same(const struct local *l, const struct sweep_proc *sp, int fd)
{
	struct local_proc_info pi;
	uid_t uid = (uid_t)-1;

	return local_proc_info_read(sp->pid, &pi) == 0 && pi.starttime == sp->starttime &&
	       pi.session == sp->sid && !local_proc_dead_state(pi.state) &&
	       local_proc_uid(sp->pid, &uid) == 0 && uid == l->uid && !pidfd_exited(fd);
}

/* One round: the runner user's processes first, then the records (see local_sweep). */
static int sweep_round(struct local *l)
{
	struct sweep_keep keep = {0};
	struct sweep_proc *v = NULL;
	size_t n = 0, cap = 0;
	int killed = 0, r = 0;
	DIR *d = opendir("/proc");
	pid_t pid;

	if (!d)
		return -errno;
	while (local_proc_next(d, &pid)) {
		struct local_proc_info pi;
		uid_t uid = (uid_t)-1;

		if (local_proc_info_read(pid, &pi) < 0 || local_proc_dead_state(pi.state) ||
		    local_proc_uid(pid, &uid) < 0 || uid != l->uid)
			continue;
		if ((r = grow((void **)&v, &cap, n, sizeof(*v))) < 0)
			break;
		v[n++] = (struct sweep_proc){pid, pi.session, pi.starttime};
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
 * many were killed, or -errno; -ECANCELED or -ETIMEDOUT when the call ends
 * before the rounds do (what was killed stays killed).
 */
int local_sweep(struct local *l, const struct provider_call *c)
{
	int total = 0;

	for (int round = 0; round < LOCAL_SWEEP_ROUNDS; round++) {
		int r;
		/* Those the last round killed may have forked meanwhile: look again. */
		if (round > 0 && !provider_call_sleep(c, LOCAL_SWEEP_PAUSE_MS))
			return -ECANCELED;
		if (round > 0 && provider_call_left_ms(c) == 0)
			return -ETIMEDOUT;
		r = sweep_round(l);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		total += r;
	}
	return total;
}
