/*
 * Reading /proc for the local provider: a process's state, session and
 * start time, its uids and gids, its PID namespace. It only reads: it must
 * never signal or write anything, and never let what a process says of
 * itself (its command name, its environment) count for anything: a
 * process is an instance's by its uid, which it cannot choose.
 */
#include "util/common.h"
#include "provider/local/local_internal.h"
#include "util/strutil.h"

#include <linux/nsfs.h>
#include <sys/ioctl.h>

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

/* Its four uids and gids (who it is, to tell whether a uid is in use); -ENOENT when gone. */
int local_proc_ids_read(pid_t pid, struct local_proc_ids *ret)
{
	char data[2048];
	int r = proc_read(pid, "status", data, sizeof(data));

	return r < 0 ? r : local_proc_parse_ids(data, ret);
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
