/*
 * Reading /proc for the local provider: a process's state, session and
 * start time, its owner, the RUNNERD_HOME it was started with, its PID
 * namespace. It only reads: it must never signal or write anything, and
 * never let what a process says of itself (its command name, its
 * environment) count for more than sparing or attributing a runner-owned
 * process.
 */
#include "util/common.h"
#include "provider/local/local_internal.h"
#include "util/clock.h"

#include <linux/nsfs.h>
#include <sys/ioctl.h>

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
int local_proc_info_read(pid_t pid, struct local_proc_info *ret)
{
	char data[1024], *p, *end;
	struct local_proc_info pi = {0};
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
int local_proc_uid(pid_t pid, uid_t *ret)
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

bool local_proc_dead_state(char s)
{
	return s == 'Z' || s == 'X' || s == 'x';
}

/* How long ago a process started (starttime: clock ticks after boot). */
int64_t local_proc_age_ms(uint64_t starttime)
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
int local_proc_home(pid_t pid, char *out, size_t cap)
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

static bool ns_same(const struct stat *st, const struct local_ns_id *id)
{
	return st->st_dev == id->dev && st->st_ino == id->ino;
}

/* Is pid's PID namespace one of set[n], or nested inside one of them? */
bool local_proc_pidns_within(pid_t pid, const struct local_ns_id *set, size_t n)
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
