/* File helpers. Nothing here logs; every failure names the path. */
#include "util/common.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#include <dirent.h>
#include <libgen.h>

int file_read(const char *path, size_t max, bool nofollow, struct buf *ret, struct err *e)
{
	struct buf b = BUF_INIT(max);
	struct stat st;
	char chunk[8192];
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (nofollow ? O_NOFOLLOW : 0));
	if (fd < 0)
		return err_set(e, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		r = err_set(e, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = err_set(e, -EINVAL, "%s: not a regular file", path);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = err_set(e, -errno, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (buf_append(&b, chunk, (size_t)n) < 0) {
			r = err_set(e, -E2BIG, "%s: larger than %zu bytes", path, max);
			goto out;
		}
	}
	if (!b.data && buf_append(&b, "", 0) < 0) {
		r = err_set(e, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	buf_release(ret);
	*ret = b;
	b.data = NULL;
out:
	explicit_bzero(chunk, sizeof(chunk));
	buf_wipe(&b);
	close(fd);
	return r;
}

int file_read_secret(const char *path, char **ret, struct err *e)
{
	struct buf b = BUF_INIT(64 * 1024);
	int r = file_read(path, b.max, false, &b, e);
	if (r < 0)
		return r;
	while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r' ||
	                     b.data[b.len - 1] == ' ' || b.data[b.len - 1] == '\t'))
		b.data[--b.len] = '\0';
	if (b.len == 0) {
		buf_wipe(&b);
		return err_set(e, -EINVAL, "%s: file is empty", path);
	}
	*ret = buf_detach(&b, NULL);
	return 0;
}

/* A temporary of file_write_atomic is named <target>.tmp.<writer's pid>. */
#define TEMP_INFIX ".tmp."

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, struct err *e)
{
	char tmp[PATH_MAX];
	const char *p = data;
	int fd, r = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s" TEMP_INFIX "%ld", path, (long)getpid()) >=
	    sizeof(tmp))
		return err_set(e, -ENAMETOOLONG, "%s: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return err_set(e, -errno, "%s: %s", tmp, strerror(errno));
	if (fchmod(fd, mode) < 0) {
		r = err_set(e, -errno, "%s: chmod: %s", tmp, strerror(errno));
		goto fail;
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = err_set(e, -errno, "%s: write: %s", tmp, strerror(errno));
			goto fail;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) < 0) {
		r = err_set(e, -errno, "%s: fsync: %s", tmp, strerror(errno));
		goto fail;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		r = err_set(e, -errno, "%s: rename: %s", path, strerror(errno));
		unlink(tmp);
		return r;
	}
	return 0;
fail:
	close(fd);
	unlink(tmp);
	return r;
}

/* The target's file name of a temporary of file_write_atomic; false for any other name. */
static bool temp_target(const char *name, char *target, size_t cap)
{
	const char *infix = NULL, *digits;

	for (const char *at = strstr(name, TEMP_INFIX); at; at = strstr(at + 1, TEMP_INFIX))
		infix = at;
	if (!infix || infix == name)
		return false;
	digits = infix + strlen(TEMP_INFIX);
	if (!*digits || strspn(digits, "0123456789") != strlen(digits) ||
	    (size_t)(infix - name) >= cap)
		return false;
	memcpy(target, name, (size_t)(infix - name));
	target[infix - name] = '\0';
	return true;
}

int file_remove_temps(const char *dir, bool (*owned)(const char *target, void *ctx), void *ctx,
                      struct err *e)
{
	struct dirent *de;
	int removed = 0, r = 0;
	DIR *d = NULL;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0 && !(d = fdopendir(fd)))
		close(fd);
	if (!d)
		return errno == ENOENT ? 0 : err_set(e, -errno, "%s: %s", dir, strerror(errno));
	for (;;) {
		char target[NAME_MAX + 1];
		struct stat st;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				r = err_set(e, -errno, "%s: %s", dir, strerror(errno));
			break;
		}
		if (!temp_target(de->d_name, target, sizeof(target)) ||
		    (owned && !owned(target, ctx)))
			continue;
		/* only what file_write_atomic makes: a regular file (a symlink is not followed) */
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
		else if (errno != ENOENT) {
			r = err_set(e, -errno, "%s/%s: %s", dir, de->d_name, strerror(errno));
			break;
		}
	}
	closedir(d);
	return r < 0 ? r : removed;
}

int mkdir_p(const char *path, mode_t mode, struct err *e)
{
	char tmp[PATH_MAX];
	size_t n = str_copy(tmp, path, sizeof(tmp));

	if (n >= sizeof(tmp))
		return err_set(e, -ENAMETOOLONG, "%s: path too long", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return err_set(e, -errno, "mkdir %s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return err_set(e, -errno, "mkdir %s: %s", tmp, strerror(errno));
	return 0;
}

static int rm_rf_at(int parent, const char *name, struct err *e)
{
	struct stat st;
	int fd, r = 0;
	DIR *d;
	struct dirent *de;

	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0
		                       : err_set(e, -errno, "stat %s: %s", name, strerror(errno));
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(parent, name, 0) < 0 && errno != ENOENT)
			return err_set(e, -errno, "unlink %s: %s", name, strerror(errno));
		return 0;
	}
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, -errno, "open %s: %s", name, strerror(errno));
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return err_set(e, -errno, "opendir %s: %s", name, strerror(errno));
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		r = rm_rf_at(dirfd(d), de->d_name, e);
		if (r < 0)
			break;
	}
	closedir(d);
	if (r == 0 && unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		r = err_set(e, -errno, "rmdir %s: %s", name, strerror(errno));
	return r;
}

int rm_rf(const char *path, struct err *e)
{
	return rm_rf_at(AT_FDCWD, path, e);
}
