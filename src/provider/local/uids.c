/*
 * The uids local instances run as: one of providers.<name>.uid_range per
 * instance, with the gid of the same number and no other group. A uid is
 * held from the writing of its instance's record to the record's removal
 * (which comes only once every process of it is gone), and is given out
 * again only when no process has it either, the least recently given out
 * first. It checks the range at open against the accounts, groups and
 * subordinate ids of this machine. It must never give out a uid that a
 * record holds, that a process has (as any of its uids or gids), that an
 * account or group has, nor give one out twice: claims go one at a time,
 * under a lock that every process on this work_dir takes.
 */
#include "util/common.h"
#include "provider/local/local_internal.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#include <grp.h>
#include <pwd.h>
#include <sys/file.h>

#define LOCAL_UIDS_FILE   "uids" /* in state_dir: the claims' lock, and where the next starts */
#define LOCAL_SUBIDS_MAX  (1 << 20)
#define LOCAL_ID_BUF_SIZE 16384

/* ---- at open: the range is no one else's ------------------------------ */

static bool in_range(const struct local *l, uint64_t first, uint64_t count)
{
	return count > 0 && first <= l->uid_last && first + count - 1 >= l->uid_first;
}

/* getpwent and getgrent walk one list per process: one walk at a time. */
static pthread_mutex_t ids_walk_lock = PTHREAD_MUTEX_INITIALIZER;

static int accounts_check(const struct local *l, const char *provider, struct err *e)
{
	char buf[LOCAL_ID_BUF_SIZE];
	struct passwd pw, *pres;
	struct group gr, *gres;
	int r = 0;

	pthread_mutex_lock(&ids_walk_lock);
	setpwent();
	while (r == 0 && getpwent_r(&pw, buf, sizeof(buf), &pres) == 0)
		if (in_range(l, pw.pw_uid, 1) || in_range(l, pw.pw_gid, 1))
			r = err_set(e, -EEXIST,
			            "providers.%s.uid_range holds uid %u or gid %u of account %s",
			            provider, (unsigned)pw.pw_uid, (unsigned)pw.pw_gid, pw.pw_name);
	endpwent();
	setgrent();
	while (r == 0 && getgrent_r(&gr, buf, sizeof(buf), &gres) == 0)
		if (in_range(l, gr.gr_gid, 1))
			r = err_set(e, -EEXIST, "providers.%s.uid_range holds gid %u of group %s",
			            provider, (unsigned)gr.gr_gid, gr.gr_name);
	endgrent();
	pthread_mutex_unlock(&ids_walk_lock);
	return r;
}

/* /etc/subuid or /etc/subgid: "owner:first:count" lines; a missing file has none. */
static int subids_check(const struct local *l, const char *provider, const char *path,
                        struct err *e)
{
	struct buf b = BUF_INIT(LOCAL_SUBIDS_MAX);
	const char *line;
	int r = file_read(path, LOCAL_SUBIDS_MAX, false, &b, NULL);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return err_set(e, r, "%s: %s", path, strerror(-r));
	for (line = buf_str(&b); r == 0 && *line; line = strchrnul(line, '\n'), line += !!*line) {
		unsigned long long first, count;
		const char *p = strchr(line, ':');
		char *end;
		if (!p || p > strchrnul(line, '\n'))
			continue;
		errno = 0;
		first = strtoull(p + 1, &end, 10);
		if (errno || *end != ':')
			continue;
		count = strtoull(end + 1, &end, 10);
		if (errno || (*end && *end != '\n') || first > UINT32_MAX || count > UINT32_MAX)
			continue;
		if (in_range(l, first, count))
			r = err_set(e, -EEXIST, "providers.%s.uid_range overlaps %s's %.*s",
			            provider, path, (int)(strchrnul(line, '\n') - line), line);
	}
	buf_release(&b);
	return r;
}

int local_uids_check(const struct local *l, const char *provider, struct err *e)
{
	int r;

	if (in_range(l, l->uid, 1) || in_range(l, l->gid, 1) || in_range(l, geteuid(), 1))
		return err_set(e, -EINVAL,
		               "providers.%s.uid_range holds the uid of %s or of runnerd itself",
		               provider, l->user);
	r = accounts_check(l, provider, e);
	if (r == 0)
		r = subids_check(l, provider, "/etc/subuid", e);
	if (r == 0)
		r = subids_check(l, provider, "/etc/subgid", e);
	return r;
}

/* ---- claiming a uid --------------------------------------------------- */

/* The range's uids in use, sorted: held by a record, or had by a process. */
struct uid_set {
	uid_t *v;
	size_t n, cap;
};

static int set_add(const struct local *l, struct uid_set *s, uid_t u)
{
	if (!local_uid_ours(l, u))
		return 0;
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		uid_t *v = reallocarray(s->v, ncap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = ncap;
	}
	s->v[s->n++] = u;
	return 0;
}

static int uid_cmp(const void *a, const void *b)
{
	uid_t x = *(const uid_t *)a, y = *(const uid_t *)b;
	return (x > y) - (x < y);
}

static bool set_has(const struct uid_set *s, uid_t u)
{
	return s->n > 0 && bsearch(&u, s->v, s->n, sizeof(*s->v), uid_cmp);
}

struct busy_arg {
	const struct local *l;
	struct uid_set *s;
};

static int busy_record(const struct local_record *rec, void *arg)
{
	struct busy_arg *a = arg;
	return set_add(a->l, a->s, rec->uid);
}

/* Every uid and gid of the range a process has, whatever else it is. */
static int busy_processes(const struct local *l, struct uid_set *s)
{
	DIR *d = opendir("/proc");
	pid_t pid;
	int r = 0;

	if (!d)
		return -errno;
	while (r == 0 && local_proc_next(d, &pid)) {
		struct local_proc_ids ids;
		if (local_proc_ids_read(pid, &ids) < 0)
			continue;
		for (int i = 0; r == 0 && i < 4; i++) {
			r = set_add(l, s, ids.uid[i]);
			if (r == 0)
				r = set_add(l, s, ids.gid[i]);
		}
	}
	closedir(d);
	return r;
}

/* An account or a group made since open has it. */
static bool id_named(uid_t u)
{
	char buf[LOCAL_ID_BUF_SIZE];
	struct passwd pw, *pres = NULL;
	struct group gr, *gres = NULL;

	(void)getpwuid_r(u, &pw, buf, sizeof(buf), &pres);
	if (pres)
		return true;
	(void)getgrgid_r((gid_t)u, &gr, buf, sizeof(buf), &gres);
	return gres != NULL;
}

/* Take the claims' lock: polled, so the wait ends at the call's deadline or its cancel. */
static int claim_lock(const struct local *l, const struct provider_call *c, int *ret_fd)
{
	char path[PATH_MAX];
	int fd;

	if (local_path_join(path, sizeof(path), l->state_dir, LOCAL_UIDS_FILE, "") < 0)
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			*ret_fd = fd;
			return 0;
		}
		if (errno != EWOULDBLOCK && errno != EINTR) {
			int r = -errno;
			close(fd);
			return r;
		}
		if (provider_call_left_ms(c) == 0 || !provider_call_sleep(c, LOCAL_POLL_MS)) {
			close(fd);
			return provider_call_cancelled(c) ? -ECANCELED : -ETIMEDOUT;
		}
	}
}

/* Where the next search starts: an offset into the range, kept in the lock file. */
static uint64_t cursor_read(int fd)
{
	int64_t v = 0;

	return fd_read_int64(fd, 0, INT64_MAX, &v) == 0 ? (uint64_t)v : 0;
}

static void cursor_write(int fd, uint64_t next)
{
	char data[32];
	int n = snprintf(data, sizeof(data), "%" PRIu64 "\n", next);

	/* Only where the search starts: losing it costs an earlier reuse, nothing more. */
	if (pwrite(fd, data, (size_t)n, 0) == n)
		(void)ftruncate(fd, n);
}

int local_uid_claim(struct local *l, const struct provider_call *c, struct local_record *rec,
                    struct err *e)
{
	struct uid_set busy = {0};
	uint64_t count = (uint64_t)l->uid_last - l->uid_first + 1, start, k;
	int fd = -1, r;

	r = claim_lock(l, c, &fd);
	if (r < 0)
		return err_set(e, r, "instance %s: locking the uids: %s", rec->name, strerror(-r));
	/* Records and processes are read under the lock: no claim can come in between. */
	/* every uid a record holds (an unreadable record names none it could be trusted for) */
	r = local_records_each(l, busy_record, &(struct busy_arg){l, &busy});
	if (r == 0)
		r = busy_processes(l, &busy);
	if (r < 0) {
		r = err_set(e, r, "instance %s: finding the uids in use: %s", rec->name,
		            strerror(-r));
		goto out;
	}
	if (busy.n) /* qsort of a NULL array, even of 0 items, is undefined */
		qsort(busy.v, busy.n, sizeof(*busy.v), uid_cmp);
	start = cursor_read(fd) % count;
	for (k = 0; k < count; k++) {
		uid_t u = (uid_t)(l->uid_first + (start + k) % count);
		if (!set_has(&busy, u) && !id_named(u))
			break;
	}
	if (k == count) {
		r = err_set(e, -EAGAIN,
		            "instance %s: every uid of %" PRIu32 "-%" PRIu32 " is in use",
		            rec->name, l->uid_first, l->uid_last);
		goto out;
	}
	rec->uid = (uid_t)(l->uid_first + (start + k) % count);
	r = local_record_write(l, rec, e);
	if (r == 0)
		cursor_write(fd, (start + k + 1) % count);
out:
	free(busy.v);
	close(fd); /* and with it the lock */
	return r;
}
