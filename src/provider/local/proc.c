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
#include "util/strutil.h"

#include <linux/nsfs.h>
#include <sys/ioctl.h>

#define LOCAL_ENVIRON_MAX  (256 * 1024)
#define LOCAL_NS_DEPTH_MAX 40 /* the kernel nests PID namespaces 32 deep at most */

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
	char data[1024];
	int r = proc_read(pid, "stat", data, sizeof(data));

	return r < 0 ? r : local_proc_parse_stat(data, ret);
}

/*
 * The uid of pid when its real, effective, saved and filesystem uids are
 * all that one (whom it is owned by, for a signal); -EPERM when they
 * differ, -ENOENT when it is gone.
 */
int local_proc_uid(pid_t pid, uid_t *ret)
{
	char data[2048];
	int r = proc_read(pid, "status", data, sizeof(data));

	return r < 0 ? r : local_proc_parse_uid(data, ret);
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
	struct local_environ_scan scan;
	char path[64], chunk[4096];
	size_t total = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -ENOENT;
	local_environ_scan_init(&scan, out, cap);
	while (total < LOCAL_ENVIRON_MAX) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += (size_t)n;
		if (local_environ_scan(&scan, chunk, (size_t)n) == 1) {
			close(fd);
			return 0;
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

bool local_proc_next(DIR *d, pid_t *ret)
{
	struct dirent *de;
	int64_t v;

	while ((de = readdir(d)))
		if (parse_int64(de->d_name, 1, INT_MAX, &v) == 0) {
			*ret = (pid_t)v;
			return true;
		}
	return false;
}
