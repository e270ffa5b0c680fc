/*
 * The quarantine: a storage that held something hostile is kept, for a
 * person to look at, as qdir/<name>.tar.gz (libarchive, written through a
 * temporary in qdir and renamed, 0600), and the storage goes. What is
 * archived is bounded (entries, bytes per file, bytes in all). It must
 * never follow a symlink inside the storage (a symlink is archived as a
 * symlink entry), never open a FIFO or a device, never read past its
 * bounds, and never write outside qdir.
 */
#include "util/common.h"
#include "metrics/metrics_storage.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <sys/random.h>

static bool plain_name(const char *s)
{
	return s && *s && *s != '.' && !strchr(s, '/') && strlen(s) < INSTANCE_NAME_MAX + 16;
}

/* A regular file's first bytes (at most max), without following or blocking. */
static int read_bounded(int dfd, const char *name, size_t max, char **ret, size_t *ret_len,
                        struct stat *ret_st)
{
	struct stat st;
	char *data = NULL;
	size_t len = 0;
	int fd, r = 0;

	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	data = malloc(max ? max : 1);
	if (!data) {
		r = -ENOMEM;
		goto out;
	}
	while (len < max) {
		ssize_t n = read(fd, data + len, max - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*ret = data;
	data = NULL;
	*ret_len = len;
	*ret_st = st;
out:
	free(data);
	close(fd);
	return r;
}

/* One entry of the storage into a; 1 archived, 0 skipped, <0 an archive failure. */
static int add_entry(struct archive *a, int dfd, const char *name, size_t *budget)
{
	struct archive_entry *ae;
	struct stat st;
	char *data = NULL;
	size_t len = 0;
	int r = 0;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	ae = archive_entry_new();
	if (!ae)
		return -ENOMEM;
	archive_entry_set_pathname(ae, name);
	archive_entry_set_mtime(ae, st.st_mtime, 0);
	archive_entry_set_perm(ae, 0600);
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlinkat(dfd, name, target, sizeof(target) - 1);
		if (n < 0)
			goto skip;
		target[n] = '\0';
		archive_entry_set_filetype(ae, AE_IFLNK);
		archive_entry_set_symlink(ae, target);
		archive_entry_set_size(ae, 0);
	} else if (S_ISREG(st.st_mode)) {
		size_t max = *budget < METRICS_QUARANTINE_FILE_MAX ? *budget
		                                                   : METRICS_QUARANTINE_FILE_MAX;
		if (max == 0 || read_bounded(dfd, name, max, &data, &len, &st) < 0)
			goto skip;
		*budget -= len;
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_size(ae, (la_int64_t)len);
	} else {
		goto skip; /* a FIFO, a device, a socket, a folder: never opened */
	}
	if (archive_write_header(a, ae) != ARCHIVE_OK ||
	    (len && archive_write_data(a, data, len) != (la_ssize_t)len))
		r = -EIO;
	else
		r = 1;
	goto out;
skip:
	r = 0;
out:
	free(data);
	archive_entry_free(ae);
	return r;
}

/* The names in dfd, sorted (the archive's order does not depend on readdir's). */
static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static int write_archive(int out_fd, int dfd, struct metrics_quarantined *q, struct err *e)
{
	char *names[METRICS_QUARANTINE_ENTRIES_MAX * 2];
	size_t n = 0, budget = METRICS_QUARANTINE_BYTES_MAX;
	struct archive *a = archive_write_new();
	struct dirent *de;
	DIR *d = NULL;
	int r = 0, dup_fd;

	if (!a)
		return err_set(e, -ENOMEM, "out of memory");
	dup_fd = dup(dfd);
	if (dup_fd < 0 || !(d = fdopendir(dup_fd))) {
		r = err_set(e, -errno, "cannot list it: %s", strerror(errno));
		if (dup_fd >= 0)
			close(dup_fd);
		goto out;
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == ARRAY_SIZE(names)) {
			q->skipped++;
			continue;
		}
		if (!(names[n] = strdup(de->d_name))) {
			r = err_set(e, -ENOMEM, "out of memory");
			goto out;
		}
		n++;
	}
	if (n > 1)
		qsort(names, n, sizeof(names[0]), cmp_str);
	if (archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
	    archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_open_fd(a, out_fd) != ARCHIVE_OK) {
		r = err_set(e, -EIO, "archive: %s", archive_error_string(a));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		int k;
		if (q->entries >= METRICS_QUARANTINE_ENTRIES_MAX) {
			q->skipped++;
			continue;
		}
		k = add_entry(a, dirfd(d), names[i], &budget);
		if (k < 0) {
			r = err_set(e, k, "archive: %s", archive_error_string(a));
			goto out;
		}
		if (k)
			q->entries++;
		else
			q->skipped++;
	}
	if (archive_write_close(a) != ARCHIVE_OK)
		r = err_set(e, -EIO, "archive: %s", archive_error_string(a));
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	if (d)
		closedir(d);
	archive_write_free(a);
	return r;
}

int metrics_quarantine(const char *dir, const char *qdir, const char *name,
                       struct metrics_quarantined *ret, struct err *e)
{
	struct metrics_quarantined q = {0};
	char tmp[PATH_MAX];
	unsigned char rnd[4] = {0};
	int dfd = -1, fd = -1, r;

	if (!plain_name(name))
		return err_set(e, -EINVAL, "quarantine: %s is not a plain name", name ? name : "");
	if ((size_t)snprintf(q.path, sizeof(q.path), "%s/%s.tar.gz", qdir, name) >= sizeof(q.path))
		return err_set(e, -ENAMETOOLONG, "quarantine: %s: path too long", qdir);
	r = mkdir_p(qdir, 0700, e);
	if (r < 0)
		return err_prefix(e, "quarantine");
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		r = err_set(e, -errno, "quarantine: %s: %s", dir, strerror(errno));
		goto out;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	/* named as file_write_atomic's temporaries, so the first pass's sweep knows them */
	snprintf(tmp, sizeof(tmp), "%s/.%s.tar.gz" FILE_TMP_TAG "%d.%02x%02x%02x%02x", qdir, name,
	         (int)getpid(), rnd[0], rnd[1], rnd[2], rnd[3]);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = err_set(e, -errno, "quarantine: %s: %s", tmp, strerror(errno));
		goto out;
	}
	r = write_archive(fd, dfd, &q, e);
	if (r == 0 && fsync(fd) < 0)
		r = err_set(e, -errno, "fsync: %s", strerror(errno));
	if (close(fd) < 0 && r == 0)
		r = err_set(e, -errno, "close: %s", strerror(errno));
	fd = -1;
	if (r == 0 && rename(tmp, q.path) < 0)
		r = err_set(e, -errno, "rename: %s", strerror(errno));
	/* the archive's name on disk before the storage it replaces is removed */
	if (r == 0)
		r = dir_sync(qdir, e);
	if (r < 0) {
		unlink(tmp);
		err_prefix(e, "quarantine %s", q.path);
		goto out;
	}
	r = rm_rf(dir, e);
	if (r < 0) {
		err_prefix(e, "quarantine: archived in %s, but the storage stays", q.path);
		goto out;
	}
	*ret = q;
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return r;
}
