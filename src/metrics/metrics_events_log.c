/*
 * The events log's file: opened for appending without following a symlink,
 * written one whole line per write(2), reopened by path. It must never
 * write half a line on purpose, never write through a symlink, and never
 * lose the old file when a reopen fails.
 */
#include "util/common.h"
#include "metrics/metrics_events_log.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#include <libgen.h>
#include <pthread.h>

struct metrics_events_log {
	pthread_mutex_t lock; /* fd and path */
	int fd;
	char path[PATH_MAX];
};

static int open_log(const char *path, int *ret_fd, struct err *e)
{
	char parent[PATH_MAX];
	struct stat st;
	int fd, r;

	if (!path || !*path)
		return err_set(e, -EINVAL, "events log: no path");
	if (strlen(path) >= sizeof(parent))
		return err_set(e, -ENAMETOOLONG, "events log: path too long");
	str_copy(parent, path, sizeof(parent));
	r = mkdir_p(dirname(parent), 0750, e);
	if (r < 0)
		return err_prefix(e, "events log %s", path);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, -errno, "events log %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(e, -EINVAL, "events log %s: not a regular file", path);
	}
	*ret_fd = fd;
	return 0;
}

int metrics_events_log_open(const char *path, struct metrics_events_log **ret, struct err *e)
{
	struct metrics_events_log *l;
	int fd, r = open_log(path, &fd, e);

	if (r < 0)
		return r;
	l = calloc(1, sizeof(*l));
	if (!l) {
		close(fd);
		return err_set(e, -ENOMEM, "out of memory");
	}
	pthread_mutex_init(&l->lock, NULL);
	l->fd = fd;
	str_copy(l->path, path, sizeof(l->path));
	*ret = l;
	return 0;
}

int metrics_events_log_reopen(struct metrics_events_log *l, const char *path, struct err *e)
{
	int fd, old, r = open_log(path, &fd, e);

	if (r < 0)
		return r;
	pthread_mutex_lock(&l->lock);
	old = l->fd;
	l->fd = fd;
	str_copy(l->path, path, sizeof(l->path));
	pthread_mutex_unlock(&l->lock);
	close(old);
	return 0;
}

int metrics_events_log_write(struct metrics_events_log *l, const struct metrics_event *ev,
                             struct err *e)
{
	char line[METRICS_EVENT_LINE_MAX];
	int len = metrics_event_json(ev, line, sizeof(line));
	ssize_t n;

	if (len < 0)
		return err_set(e, len, "events log: a %s event: %s", metrics_event_name(ev->kind),
		               len == -E2BIG ? "longer than a line may be" : strerror(-len));
	pthread_mutex_lock(&l->lock);
	do
		n = write(l->fd, line, (size_t)len);
	while (n < 0 && errno == EINTR);
	int saved = errno;
	pthread_mutex_unlock(&l->lock);
	if (n < 0)
		return err_set(e, -saved, "events log %s: %s", l->path, strerror(saved));
	if (n != len)
		return err_set(e, -EIO, "events log %s: short write", l->path);
	return 0;
}

const char *metrics_events_log_path(const struct metrics_events_log *l)
{
	return l ? l->path : "";
}

void metrics_events_log_free(struct metrics_events_log *l)
{
	if (!l)
		return;
	close(l->fd);
	pthread_mutex_destroy(&l->lock);
	free(l);
}
