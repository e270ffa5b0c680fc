/*
 * Stopping a local instance (TERM, a grace, then KILL) and sweeping
 * leftovers (gc): processes, and the temporaries a kill left among the
 * records. An instance's processes are those of its uid, which no job can
 * change or forge (it has no privileges and no_new_privs), in either mode;
 * an instance an older runnerd started as the shared user (a legacy
 * record) is told apart by its session or PID namespace. It must never
 * signal a process that is not wholly of the instance's uid (or the legacy
 * user's): each is pinned by a pidfd and checked again before the signal, a
 * leader counts only with the recorded start time, and nothing of another
 * uid, nor of a mixed one, is ever signalled.
 */
#include "util/common.h"
#include "provider/local/local_internal.h"
#include "util/clock.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/pidfd.h>

#define LOCAL_SWEEP_ROUNDS   5
#define LOCAL_SWEEP_PAUSE_MS 20

/* ---- stopping ------------------------------------------------------- */

/*
 * The processes of an instance: every process whose uids are all the
 * instance's, wherever it is (its session, a new one, its PID namespace).
 * Legacy: the leader's PID namespace, or without one the shared user's
 * processes of the leader's session.
 */
struct stop_ctx {
	struct local *l;
	const struct local_record *rec;
	int pidfd; /* the recorded leader, -1 when it is gone */
	int nsfd;  /* legacy, isolated: its PID namespace (held so the inode is not reused) */
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
	char path[64];
	uid_t uid = (uid_t)-1;

	if (p == s->rec->pid && s->pidfd >= 0)
		return false; /* the leader: signalled through its pidfd */
	if (s->nsfd >= 0) {
		struct stat st;
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)p);
		return stat(path, &st) == 0 && st.st_dev == s->ns.st_dev &&
		       st.st_ino == s->ns.st_ino;
	}
	if (local_proc_info_read(p, &pi) < 0 || local_proc_dead_state(pi.state) ||
	    local_proc_uid(p, &uid) < 0 || uid != s->rec->uid)
		return false;
	if (!s->rec->legacy)
		return true;
	/* Legacy: the shared user's, so a member started after its session's leader did. */
	return pi.session == s->rec->pid && pi.starttime >= s->rec->starttime &&
	       stop_session_ours(s);
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
 * time: a pid whose start time differs belongs to someone else now). The
 * rest of the instance may outlive its leader (a job that killed its
 * shell, `setsid cmd &`): they are found by uid and stopped all the same,
 * and the stop ends only once no process of the uid is left.
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
	if (rec->isolated && rec->legacy) {
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
		/* Stragglers may be forking; one more round. */
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
 * What a sweep must leave alone: the uids the records hold, and the
 * sessions and PID namespaces of the legacy records (their processes all
 * have the shared user's uid).
 */
struct sweep_keep {
	uid_t *uids;
	size_t n_uids, cap_uids;
	pid_t *sids;
	size_t n_sids, cap_sids;
	struct local_ns_id *ns;
	size_t n_ns, cap_ns;
};

struct sweep_proc {
	pid_t pid;
	pid_t sid;
	uid_t uid;
	uint64_t starttime;
};

static void sweep_keep_release(struct sweep_keep *k)
{
	free(k->uids);
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

/* A legacy record's session, and its PID namespace while its leader lives. */
static int sweep_keep_legacy(struct sweep_keep *k, const struct local_record *rec)
{
	struct local_proc_info pi;
	struct stat st;
	char path[64];
	int r;

	if (rec->pid <= 0)
		return 0;
	if ((r = grow((void **)&k->sids, &k->cap_sids, k->n_sids, sizeof(*k->sids))) < 0)
		return r;
	k->sids[k->n_sids++] = rec->pid;
	if (!rec->isolated || local_proc_info_read(rec->pid, &pi) < 0 ||
	    pi.starttime != rec->starttime)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)rec->pid);
	if (stat(path, &st) < 0)
		return 0;
	if ((r = grow((void **)&k->ns, &k->cap_ns, k->n_ns, sizeof(*k->ns))) < 0)
		return r;
	k->ns[k->n_ns++] = (struct local_ns_id){st.st_dev, st.st_ino};
	return 0;
}

static int sweep_keep_record(const struct local_record *rec, void *arg)
{
	struct sweep_keep *k = arg;
	int r;

	if (rec->legacy)
		return sweep_keep_legacy(k, rec);
	/* held from the record's writing, pid or not: its processes come after */
	if ((r = grow((void **)&k->uids, &k->cap_uids, k->n_uids, sizeof(*k->uids))) < 0)
		return r;
	k->uids[k->n_uids++] = rec->uid;
	return 0;
}

static bool sweep_keeps(const struct local *l, const struct sweep_keep *k,
                        const struct sweep_proc *sp)
{
	if (sp->uid != l->uid) {
		for (size_t i = 0; i < k->n_uids; i++)
			if (k->uids[i] == sp->uid)
				return true;
		return false;
	}
	for (size_t i = 0; i < k->n_sids; i++)
		if (k->sids[i] == sp->sid)
			return true;
	return local_proc_pidns_within(sp->pid, k->ns, k->n_ns);
}

/* Is sp (pinned by fd) still that process, alive, wholly of its uid? */
static bool sweep_same(const struct sweep_proc *sp, int fd)
{
	struct local_proc_info pi;
	uid_t uid = (uid_t)-1;

	return local_proc_info_read(sp->pid, &pi) == 0 && pi.starttime == sp->starttime &&
	       pi.session == sp->sid && !local_proc_dead_state(pi.state) &&
	       local_proc_uid(sp->pid, &uid) == 0 && uid == sp->uid && !pidfd_exited(fd);
}

/* One round: the processes of the range's uids and the legacy user's first, then the records. */
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
		    local_proc_uid(pid, &uid) < 0 || (!local_uid_ours(l, uid) && uid != l->uid))
			continue;
		if ((r = grow((void **)&v, &cap, n, sizeof(*v))) < 0)
			break;
		v[n++] = (struct sweep_proc){pid, pi.session, uid, pi.starttime};
	}
	closedir(d);
	/*
	 * Records after processes: a record holds its uid before any process
	 * has it (and a legacy leader was recorded before it dropped to the
	 * shared user), so a process seen above whose instance lives has its
	 * record among those read now.
	 */
	if (r == 0 && n > 0)
		r = local_records_each(l, sweep_keep_record, &keep);
	for (size_t i = 0; r == 0 && i < n; i++) {
		int fd;
		if (sweep_keeps(l, &keep, &v[i]))
			continue;
		fd = pidfd_open(v[i].pid, 0);
		if (fd < 0)
			continue;
		if (sweep_same(&v[i], fd) && pidfd_send_signal(fd, SIGKILL, NULL, 0) == 0)
			killed++;
		close(fd);
	}
	sweep_keep_release(&keep);
	free(v);
	return r < 0 ? r : killed;
}

/*
 * Kill the leftovers: the processes of the range's uids that no record
 * holds (what outlived an instance whose record was lost, or a stranger in
 * the range, which must be this provider's alone), and the legacy user's
 * that are in no legacy instance's session or PID namespace. A process
 * cannot choose its uid: what it says of itself (its environment, its
 * session) spares nothing but a legacy instance's. Only processes wholly of
 * such a uid are signalled, each pinned by a pidfd and checked again first.
 * Best effort: returns how many were killed, or -errno; -ECANCELED or
 * -ETIMEDOUT when the call ends before the rounds do (what was killed stays
 * killed). The temporaries of records whose writer is gone (kill -9 between
 * write and rename) go too.
 */
int local_sweep(struct local *l, const struct provider_call *c)
{
	int total = 0;

	(void)file_tmp_sweep(l->state_dir, &(struct file_tmp_sweep){.now = time(NULL)}, NULL);

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
