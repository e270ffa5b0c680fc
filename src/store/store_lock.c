/*
 * One daemon per state dir: an exclusive flock on <state_dir>/runnerd.lock.
 * The pid written in it is a courtesy for the message; the flock is the lock.
 */
#include "util/common.h"
#include "store/store_internal.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#include <sys/file.h>

/* Best effort: who holds the lock, for the message only. */
static long lock_holder(int fd)
{
	int64_t pid = 0;

	return fd_read_int64(fd, 1, INT32_MAX, &pid) == 0 ? (long)pid : 0;
}

int store_lock(const char *state_dir, int *ret_fd, struct err *e)
{
	char path[PATH_MAX], pid[32];
	int fd = -1, r, n;

	r = store_path_in(state_dir, STORE_LOCK_NAME, "lock", path, sizeof(path), e);
	if (r < 0)
		return r;
	r = store_open_private(path, true, "lock", &fd, e);
	if (r < 0)
		return r;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			long holder = lock_holder(fd);
			if (holder > 0)
				r = err_set(e, -EWOULDBLOCK,
				            "%s is locked by another runnerd (pid %ld)", path,
				            holder);
			else
				r = err_set(e, -EWOULDBLOCK, "%s is locked by another runnerd",
				            path);
		} else {
			r = err_set(e, -errno, "lock %s: %s", path, strerror(errno));
		}
		goto fail;
	}
	/* The pid is a courtesy for the message above; the lock is the flock. */
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == 0) {
		ssize_t w = pwrite(fd, pid, (size_t)n, 0);
		(void)w;
	}
	*ret_fd = fd;
	return 0;
fail:
	close(fd);
	return r;
}

void store_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}
