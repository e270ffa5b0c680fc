/*
 * File helpers (fileutil.h): bounded reads, atomic writes through
 * temporaries named for the directory's owner, and the sweep that removes
 * those a kill left behind, directory creation, removal and sizes. Nothing
 * here logs; every failure names the path. It must never follow a symlink
 * it removes or measures, and a sweep must never remove anything but a
 * regular file named as a temporary whose writer is gone.
 */
#include "util/common.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#include <dirent.h>
#include <signal.h>
#include <sys/random.h>

/* How much of a file's name its temporary's name keeps (NAME_MAX leaves room for the rest). */
#define TMP_BASE_MAX 200

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

/* ".<name>.runnerd-tmp.<pid>.<8 hex>" beside path, into out. */
static int tmp_path(const char *path, char *out, size_t cap, struct err *e)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t n = strlen(base);
	uint32_t rnd;

	if (!*base)
		return err_set(e, -EINVAL, "%s: not a file name", path);
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return err_set(e, -errno, "%s: getrandom: %s", path, strerror(errno));
	if ((size_t)snprintf(out, cap, "%.*s.%.*s" FILE_TMP_TAG "%ld.%08" PRIx32,
	                     (int)(base - path), path, (int)(n < TMP_BASE_MAX ? n : TMP_BASE_MAX),
	                     base, (long)getpid(), rnd) >= cap)
		return err_set(e, -ENAMETOOLONG, "%s: path too long", path);
	return 0;
}

int dir_sync(const char *dir, struct err *e)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return err_set(e, -errno, "%s: %s", dir, strerror(errno));
	if (fsync(fd) < 0 && errno != EINVAL)
		r = err_set(e, -errno, "%s: fsync: %s", dir, strerror(errno));
	close(fd);
	return r;
}

/* dir_sync of path's directory. */
static int parent_sync(const char *path, struct err *e)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];

	if (!slash)
		return dir_sync(".", e);
	if (slash == path)
		return dir_sync("/", e);
	if ((size_t)(slash - path) >= sizeof(dir))
		return err_set(e, -ENAMETOOLONG, "%s: path too long", path);
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	return dir_sync(dir, e);
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, struct err *e)
{
	char tmp[PATH_MAX];
	const char *p = data;
	int fd, r;

	r = tmp_path(path, tmp, sizeof(tmp), e);
	if (r < 0)
		return r;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
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
	/* the file is in place; its name is on disk once the directory is */
	r = parent_sync(path, e);
	if (r < 0)
		err_prefix(e, "%s: written", path);
	return r;
fail:
	close(fd);
	unlink(tmp);
	return r;
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

static int tree_bytes_at(int parent, const char *name, uint64_t *sum, struct err *e)
{
	struct dirent *de;
	struct stat st;
	int fd, r = 0;
	DIR *d;

	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0
		                       : err_set(e, -errno, "stat %s: %s", name, strerror(errno));
	if (S_ISREG(st.st_mode))
		*sum += (uint64_t)st.st_size;
	if (!S_ISDIR(st.st_mode))
		return 0;
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0
		                       : err_set(e, -errno, "open %s: %s", name, strerror(errno));
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return err_set(e, -errno, "opendir %s: %s", name, strerror(errno));
	}
	while (r == 0 && (de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			r = tree_bytes_at(dirfd(d), de->d_name, sum, e);
	closedir(d);
	return r;
}

int file_tree_bytes(const char *path, uint64_t *ret, struct err *e)
{
	uint64_t sum = 0;
	int r = tree_bytes_at(AT_FDCWD, path, &sum, e);

	if (r == 0)
		*ret = sum;
	return r;
}

/* "<digits>" ending at end (exclusive), a pid: 1..INT_MAX. */
static bool pid_digits(const char *s, const char *end, pid_t *ret)
{
	int64_t v = 0;

	if (s == end || end - s > 10)
		return false;
	for (const char *c = s; c < end; c++) {
		if (*c < '0' || *c > '9')
			return false;
		v = v * 10 + (*c - '0');
	}
	if (v < 1 || v > INT_MAX)
		return false;
	*ret = (pid_t)v;
	return true;
}

/* The last occurrence of needle in s, NULL when none. */
static const char *last_of(const char *s, const char *needle)
{
	const char *hit = NULL;

	for (const char *c = strstr(s, needle); c; c = strstr(c + 1, needle))
		hit = c;
	return hit;
}

bool file_tmp_name(const char *entry, pid_t *ret_pid)
{
	const char *tag = entry[0] == '.' ? last_of(entry, FILE_TMP_TAG) : NULL;
	const char *dot, *end = entry + strlen(entry);
	pid_t pid = 0;

	if (tag && tag > entry + 1) {
		/* ".<name>" FILE_TMP_TAG "<pid>.<8 hex>" */
		const char *digits = tag + strlen(FILE_TMP_TAG);
		dot = strchr(digits, '.');
		if (!dot || !pid_digits(digits, dot, &pid) || end - (dot + 1) != 8)
			return false;
		for (const char *c = dot + 1; c < end; c++)
			if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
				return false;
	} else {
		/* the older "<name>.tmp.<pid>" */
		tag = last_of(entry, ".tmp.");
		if (!tag || tag == entry || !pid_digits(tag + 5, end, &pid))
			return false;
	}
	if (ret_pid)
		*ret_pid = pid;
	return true;
}

/* Whether process pid exists (whoever's it is). */
static bool pid_alive(pid_t pid)
{
	return kill(pid, 0) == 0 || errno == EPERM;
}

/* Whether entry (st) is a temporary nobody will rename. */
static bool tmp_left_over(const char *entry, const struct stat *st, const struct file_tmp_sweep *o)
{
	bool old = o->now - st->st_mtime > FILE_TMP_OLD_S;
	pid_t pid;

	if (!S_ISREG(st->st_mode))
		return false;
	if (file_tmp_name(entry, &pid))
		return old || !pid_alive(pid);
	return o->aged_prefix && str_has_prefix(entry, o->aged_prefix) && old;
}

/* Sweep the directory open at fd (taken), depth levels below it too. */
static int tmp_sweep_fd(int fd, const char *path, int depth, const struct file_tmp_sweep *o,
                        struct err *first)
{
	struct dirent *de;
	int removed = 0;
	DIR *d = fdopendir(fd);

	if (!d) {
		int err = errno;
		close(fd);
		if (!first->code)
			err_set(first, -err, "%s: %s", path, strerror(err));
		return 0;
	}
	while ((de = readdir(d))) {
		char sub[PATH_MAX];
		struct stat st;
		int sfd;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (tmp_left_over(de->d_name, &st, o)) {
			if (unlinkat(dirfd(d), de->d_name, 0) == 0)
				removed++;
			else if (errno != ENOENT && !first->code)
				err_set(first, -errno, "%s/%s: %s", path, de->d_name,
				        strerror(errno));
			continue;
		}
		if (!S_ISDIR(st.st_mode) || depth <= 0)
			continue;
		sfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (sfd >= 0)
			removed += tmp_sweep_fd(sfd, sub, depth - 1, o, first);
	}
	closedir(d);
	return removed;
}

int file_tmp_sweep(const char *dir, const struct file_tmp_sweep *o, struct err *e)
{
	struct err first = {0};
	int fd, removed;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : err_set(e, -errno, "%s: %s", dir, strerror(errno));
	removed = tmp_sweep_fd(fd, dir, o->depth, o, &first);
	if (first.code) {
		if (e)
			*e = first;
		return first.code;
	}
	return removed;
}

int fd_read_int64(int fd, int64_t min, int64_t max, int64_t *ret)
{
	char data[32];
	ssize_t n = pread(fd, data, sizeof(data) - 1, 0);

	if (n <= 0)
		return -EINVAL;
	data[n] = '\0';
	data[strcspn(data, "\n")] = '\0';
	return parse_int64(data, min, max, ret) < 0 ? -EINVAL : 0;
}
