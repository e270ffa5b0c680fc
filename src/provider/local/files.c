/*
 * The files of a local instance: filling a new instance directory while it
 * is still root's, and reading files out of a running one (pull_file,
 * list_files). Whatever is inside a directory the instance's uid owns is
 * hostile: this file must never follow a symlink there, never read a file
 * that is not that uid's, and never write into a directory once it is the
 * instance's.
 */
#include "util/common.h"
#include "provider/local/local_internal.h"
#include "util/strutil.h"

#include <dirent.h>

/* ---- filling a new instance directory -------------------------------- */

static int write_file_at(int dfd, const char *name, const char *data, size_t len, mode_t mode,
                         uid_t uid, gid_t gid, struct err *e)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	int r = 0;

	if (fd < 0)
		return err_set(e, -errno, "%s: %s", name, strerror(errno));
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = err_set(e, -errno, "%s: write: %s", name, strerror(errno));
			goto out;
		}
		data += n;
		len -= (size_t)n;
	}
	if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0)
		r = err_set(e, -errno, "%s: chown: %s", name, strerror(errno));
out:
	close(fd);
	return r;
}

/* A root-owned, read-only copy of src. */
static int copy_file_at(int dfd, const char *name, const char *src, struct err *e)
{
	char chunk[65536];
	struct stat st;
	bool plain = false;
	int in, out = -1, r = 0;

	in = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (in < 0)
		return err_set(e, -errno, "%s: %s", src, strerror(errno));
	if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = err_set(e, -EINVAL, "%s: not a regular file", src);
		goto out;
	}
	out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		r = err_set(e, -errno, "%s: %s", name, strerror(errno));
		goto out;
	}
	for (;;) {
		ssize_t n, w;
		if (!plain) {
			n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
			              errno == EOPNOTSUPP)) {
				plain = true;
				continue;
			}
		} else {
			n = read(in, chunk, sizeof(chunk));
			for (ssize_t off = 0; n > 0 && off < n; off += w) {
				w = write(out, chunk + off, (size_t)(n - off));
				if (w < 0) {
					n = -1;
					break;
				}
			}
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = err_set(e, -errno, "copying %s: %s", src, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
	}
	if (fchmod(out, 0444) < 0)
		r = err_set(e, -errno, "%s: chmod: %s", name, strerror(errno));
out:
	if (out >= 0)
		close(out);
	close(in);
	return r;
}

/*
 * Fill the new directory while it is still root's, hand it to the instance's
 * uid last: no process of it can race us here. The script and the runner
 * package stay root's and read-only: the job cannot change them (it owns
 * the directory and may rename them, but the script runs from the file it
 * opened and the package is unpacked before the job).
 */
int local_instance_populate(const char *dir, const struct instance_spec *spec, uid_t uid,
                            struct err *e)
{
	gid_t gid = (gid_t)uid;
	int dfd, r = 0;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return err_set(e, -errno, "%s: %s", dir, strerror(errno));
	r = write_file_at(dfd, LOCAL_SCRIPT_FILE, spec->startup_script,
	                  strlen(spec->startup_script), 0444, 0, 0, e);
	if (r == 0)
		r = write_file_at(dfd, LOCAL_LOG_FILE, "", 0, 0600, uid, gid, e);
	if (r == 0 && mkdirat(dfd, "tmp", 0700) < 0)
		r = err_set(e, -errno, "%s/tmp: %s", dir, strerror(errno));
	if (r == 0 && fchownat(dfd, "tmp", uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		r = err_set(e, -errno, "%s/tmp: chown: %s", dir, strerror(errno));
	if (r == 0 && spec->runner_tarball)
		r = copy_file_at(dfd, LOCAL_TARBALL_FILE, spec->runner_tarball, e);
	if (r == 0 && (fchown(dfd, uid, gid) < 0 || fchmod(dfd, 0700) < 0))
		r = err_set(e, -errno, "%s: chown: %s", dir, strerror(errno));
	close(dfd);
	if (r < 0 && e)
		err_prefix(e, "instance %s", spec->name);
	return r;
}

/* ---- reading a running instance's files ------------------------------ */

static int open_errno(int err)
{
	if (err == ENOENT)
		return -ENOENT;
	if (err == ELOOP || err == ENOTDIR || err == EMLINK)
		return -EINVAL;
	return -err;
}

/*
 * Open path (relative, inside the instance's directory) one component at a
 * time, never following a symlink the runner planted; dir: the last
 * component must be a directory. *ret_fd is the open descriptor.
 */
static int instance_open(struct local *l, const char *verb, const char *name, const char *path,
                         bool dir, int *ret_fd, uid_t *ret_uid, struct err *e)
{
	char base[PATH_MAX], rel[PATH_MAX];
	struct local_record rec;
	char *comp, *next;
	int fd, r = 0;

	if (local_check_name(name, e) < 0)
		return -EINVAL;
	/* Whose the files are: the record says (no record, no instance to read). */
	r = local_record_read(l, name, &rec, NULL);
	if (r < 0)
		return err_set(e, r == -ENOENT ? -ENOENT : -EIO, "%s %s: %s", verb, name,
		               r == -ENOENT ? "no such instance" : "its record cannot be read");
	if (!path || !*path || path[0] == '/' || str_copy(rel, path, sizeof(rel)) >= sizeof(rel))
		return err_set(e, -EINVAL, "%s %s: %s: path must be relative", verb, name,
		               path ? path : "");
	if (local_path_join(base, sizeof(base), l->work_dir, name, "") < 0)
		return err_set(e, -ENAMETOOLONG, "%s %s: path too long", verb, name);
	fd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, open_errno(errno), "%s %s: no such instance", verb, name);
	for (comp = rel; comp; comp = next) {
		int nfd;
		next = strchr(comp, '/');
		if (next)
			*next++ = '\0';
		while (next && *next == '/')
			next++;
		if (next && !*next)
			next = NULL;
		if (!*comp || strcmp(comp, ".") == 0) {
			if (!next && !dir) {
				r = err_set(e, -EINVAL, "%s %s: %s: not a file", verb, name, path);
				goto out;
			}
			continue;
		}
		if (strcmp(comp, "..") == 0) {
			r = err_set(e, -EINVAL, "%s %s: %s: '..' refused", verb, name, path);
			goto out;
		}
		nfd = openat(fd, comp,
		             O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
		                     (next || dir ? O_DIRECTORY : O_NONBLOCK));
		if (nfd < 0) {
			int err = errno;
			/* the last component of a directory walk: say what it is not */
			r = dir && !next && err == ENOTDIR ? -ENOTDIR : open_errno(err);
			r = err_set(e, r, "%s %s: %s: %s", verb, name, path,
			            err == ELOOP ? "symlink refused" : strerror(err));
			goto out;
		}
		close(fd);
		fd = nfd;
	}
out:
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	*ret_uid = rec.uid;
	return 0;
}

int local_pull_file(struct provider *p, const struct provider_call *c, const char *name,
                    const char *path, size_t max_bytes, struct buf *ret, struct err *e)
{
	struct local *l = p->priv;
	struct buf b = BUF_INIT(max_bytes);
	char chunk[16384];
	struct stat st;
	uid_t uid = 0;
	int fd = -1, r;

	r = instance_open(l, "pull", name, path, false, &fd, &uid, e);
	if (r < 0)
		return r;
	if (fstat(fd, &st) < 0) {
		r = err_set(e, -errno, "pull %s: %s: %s", name, path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = err_set(e, -EINVAL, "pull %s: %s: not a regular file", name, path);
		goto out;
	}
	/* A hard link to a file of someone else (say runnerd's token) is not the instance's. */
	if (st.st_uid != uid) {
		r = err_set(e, -EACCES, "pull %s: %s: not the instance's file", name, path);
		goto out;
	}
	if ((uint64_t)st.st_size > max_bytes) {
		r = err_set(e, -E2BIG, "pull %s: %s: larger than %zu bytes", name, path, max_bytes);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = err_set(e, -errno, "pull %s: %s: %s", name, path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (buf_append(&b, chunk, (size_t)n) < 0) {
			r = err_set(e, -E2BIG, "pull %s: %s: larger than %zu bytes", name, path,
			            max_bytes);
			goto out;
		}
	}
	if (!b.data && buf_append(&b, "", 0) < 0) {
		r = err_set(e, -ENOMEM, "pull %s: out of memory", name);
		goto out;
	}
	buf_release(ret);
	*ret = b;
	b.data = NULL;
out:
	buf_release(&b);
	if (fd >= 0)
		close(fd);
	return r;
}

/* How many entries a listing reads between looks at the call's deadline and cancel flag. */
#define LIST_CHECK_EVERY 1024

/*
 * Regular files of the instance's uid, as pull_file would read them: every
 * one is seen and counted, the q->max most useful are kept.
 */
int local_list_files(struct provider *p, const struct provider_call *c, const char *name,
                     const char *dir, const struct provider_list_query *q,
                     struct provider_file_list *ret, struct err *e)
{
	struct local *l = p->priv;
	struct provider_file_list out = {0};
	struct dirent *de;
	size_t seen = 0;
	DIR *d;
	uid_t uid = 0;
	int fd = -1, r;

	r = instance_open(l, "list files", name, dir, true, &fd, &uid, e);
	if (r < 0)
		return r;
	d = fdopendir(fd);
	if (!d) {
		r = err_set(e, -errno, "list files %s: %s: %s", name, dir, strerror(errno));
		close(fd);
		return r;
	}
	while ((errno = 0, de = readdir(d))) {
		struct provider_file f = {0};
		struct stat st;

		if (++seen % LIST_CHECK_EVERY == 0 &&
		    (provider_call_cancelled(c) || provider_call_left_ms(c) == 0)) {
			r = err_set(e, provider_call_cancelled(c) ? -ECANCELED : -ETIMEDOUT,
			            "list files %s: %s: stopped after %zu entries", name, dir,
			            seen);
			goto out;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    str_copy(f.name, de->d_name, sizeof(f.name)) >= sizeof(f.name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_uid != uid)
			continue;
		f.size = st.st_size;
		f.mtime = st.st_mtime > 0 ? st.st_mtime : 0;
		if (provider_file_list_offer(&out, q, &f) < 0) {
			r = err_set(e, -ENOMEM, "list files: out of memory");
			goto out;
		}
	}
	if (errno) {
		r = err_set(e, -errno, "list files %s: %s: %s", name, dir, strerror(errno));
		goto out;
	}
	provider_file_list_release(ret);
	*ret = out;
	memset(&out, 0, sizeof(out));
out:
	provider_file_list_release(&out);
	closedir(d);
	return r;
}
