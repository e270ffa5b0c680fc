/*
 * What runnerd keeps of its instances on disk, and its bounds: the metrics
 * folders in state_dir/metrics/ (removed once processed, or after their
 * retention), the quarantined archives (after the same retention) and the saved log folders in
 * log_dir (removed after their retention, oldest first past their total cap), and what they hold
 * now. It must never remove or count anything but a folder (not a symlink) of a name this manager
 * owns, directly in one of those two directories.
 */
#include "util/common.h"
#include "metrics/metrics.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#include <dirent.h>

/* One folder of an owned name. */
struct owned_dir {
	char name[INSTANCE_NAME_MAX];
	int64_t mtime;  /* its last change, unix s */
	uint64_t bytes; /* of its files (when asked) */
};

struct owned_dirs {
	struct owned_dir *v;
	size_t n, cap;
};

/*
 * The folders of owned names in root (lstat: a symlink of an owned name is
 * not a folder we made), with their sizes when sized. A missing root holds
 * none. what names root in messages.
 */
static int owned_dirs_read(const struct metrics_opts *o, const char *root, const char *what,
                           bool sized, struct owned_dirs *ret, struct err *e)
{
	struct owned_dirs l = {0};
	struct dirent *de;
	int r = 0;
	DIR *d = opendir(root);

	if (!d) {
		if (errno == ENOENT)
			return 0;
		return err_set(e, -errno, "%s: %s: %s", what, root, strerror(errno));
	}
	while ((de = readdir(d))) {
		struct owned_dir od = {0};
		char path[PATH_MAX];
		struct stat st;

		if (!name_is_owned(o->manager, de->d_name) ||
		    (size_t)snprintf(path, sizeof(path), "%s/%s", root, de->d_name) >=
		            sizeof(path) ||
		    lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		str_copy(od.name, de->d_name, sizeof(od.name));
		od.mtime = st.st_mtime;
		if (sized && (r = file_tree_bytes(path, &od.bytes, e)) < 0) {
			err_prefix(e, "%s", what);
			break;
		}
		if (l.n == l.cap) {
			size_t ncap = l.cap ? l.cap * 2 : 16;
			struct owned_dir *v = reallocarray(l.v, ncap, sizeof(*v));
			if (!v) {
				r = err_set(e, -ENOMEM, "%s: out of memory", what);
				break;
			}
			l.v = v;
			l.cap = ncap;
		}
		l.v[l.n++] = od;
	}
	closedir(d);
	if (r < 0) {
		free(l.v);
		return r;
	}
	*ret = l;
	return 0;
}

/* Remove root/name; the first failure is kept in *first. */
static bool remove_dir(const char *root, const char *name, const char *what, struct err *first)
{
	char path[PATH_MAX];
	struct err re = {0};

	snprintf(path, sizeof(path), "%s/%s", root, name);
	if (rm_rf(path, &re) == 0)
		return true;
	if (!first->code)
		err_set(first, re.code ? re.code : -EIO, "%s: %s", what, re.msg);
	return false;
}

/* How many went, or the first failure. */
static int removed_or_first(int removed, const struct err *first, struct err *e)
{
	if (first->code) {
		if (e)
			*e = *first;
		return first->code;
	}
	return removed;
}

/* The folders in root last changed more than retention seconds before now go. */
static int prune(const struct metrics_opts *o, const char *root, int64_t retention, int64_t now,
                 const char *what, struct err *e)
{
	struct owned_dirs l = {0};
	struct err first = {0};
	int removed = 0, r;

	r = owned_dirs_read(o, root, what, false, &l, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < l.n; i++)
		if (now - l.v[i].mtime > retention && remove_dir(root, l.v[i].name, what, &first))
			removed++;
	free(l.v);
	return removed_or_first(removed, &first, e);
}

int metrics_prune_logs(const struct metrics_opts *o, int64_t now, struct err *e)
{
	return prune(o, o->log_dir, o->log_retention, now, "log retention", e);
}

/* state_dir/metrics into out. */
static int metrics_root(const struct metrics_opts *o, char *out, size_t cap, struct err *e)
{
	if ((size_t)snprintf(out, cap, "%s/metrics", o->state_dir) >= cap)
		return err_set(e, -ENAMETOOLONG, "metrics: state_dir is too long");
	return 0;
}

int metrics_prune_storage(const struct metrics_opts *o, int64_t now, struct err *e)
{
	char root[PATH_MAX];
	int r = metrics_root(o, root, sizeof(root), e);

	return r < 0 ? r : prune(o, root, o->metrics_retention, now, "metrics retention", e);
}

/*
 * The archives in state_dir/metrics-quarantine/ (<name>.tar.gz of an owned
 * name, regular files) older than metrics_retention go: each is bounded,
 * but a job that writes hostile metrics on every run would add one a run.
 */
int metrics_prune_quarantine(const struct metrics_opts *o, int64_t now, struct err *e)
{
	static const char suffix[] = ".tar.gz";
	char root[PATH_MAX];
	struct err first = {0};
	struct dirent *de;
	int removed = 0;
	DIR *d;

	if ((size_t)snprintf(root, sizeof(root), "%s/metrics-quarantine", o->state_dir) >=
	    sizeof(root))
		return err_set(e, -ENAMETOOLONG, "quarantine retention: state_dir too long");
	d = opendir(root);
	if (!d)
		return errno == ENOENT ? 0
		                       : err_set(e, -errno, "quarantine retention: %s: %s", root,
		                                 strerror(errno));
	while ((de = readdir(d))) {
		char name[INSTANCE_NAME_MAX];
		size_t len = strlen(de->d_name);
		struct stat st;

		if (len <= sizeof(suffix) - 1 || len - (sizeof(suffix) - 1) >= sizeof(name) ||
		    strcmp(de->d_name + len - (sizeof(suffix) - 1), suffix) != 0)
			continue;
		memcpy(name, de->d_name, len - (sizeof(suffix) - 1));
		name[len - (sizeof(suffix) - 1)] = '\0';
		if (!name_is_owned(o->manager, name) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || now - st.st_mtime <= o->metrics_retention)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
		else if (errno != ENOENT && !first.code)
			err_set(&first, -errno, "quarantine retention: %s/%s: %s", root, de->d_name,
			        strerror(errno));
	}
	closedir(d);
	return removed_or_first(removed, &first, e);
}

static int oldest_first(const void *a, const void *b)
{
	const struct owned_dir *x = a, *y = b;

	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(x->name, y->name);
}

int metrics_cap_logs(const struct metrics_opts *o, struct err *e)
{
	struct owned_dirs l = {0};
	struct err first = {0};
	uint64_t total = 0;
	int removed = 0, r;

	if (o->logs_max_bytes == 0)
		return 0;
	r = owned_dirs_read(o, o->log_dir, "saved logs cap", true, &l, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < l.n; i++)
		total += l.v[i].bytes;
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), oldest_first);
	for (size_t i = 0; i < l.n && total > o->logs_max_bytes; i++) {
		if (remove_dir(o->log_dir, l.v[i].name, "saved logs cap", &first)) {
			total -= l.v[i].bytes;
			removed++;
		}
	}
	free(l.v);
	return removed_or_first(removed, &first, e);
}

int metrics_storage_remove(const struct metrics_opts *o, const char *name, struct err *e)
{
	char root[PATH_MAX], path[PATH_MAX];
	int r;

	if (!name_is_owned(o->manager, name))
		return err_set(e, -EINVAL, "metrics: %s is not a name of manager %s", name,
		               o->manager);
	r = metrics_root(o, root, sizeof(root), e);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/%s", root, name);
	r = rm_rf(path, e);
	if (r < 0 && e)
		err_prefix(e, "metrics %s", name);
	return r;
}

/* The count and bytes of the owned folders in root. */
static int usage(const struct metrics_opts *o, const char *root, const char *what, size_t *ret_dirs,
                 uint64_t *ret_bytes, struct err *e)
{
	struct owned_dirs l = {0};
	uint64_t bytes = 0;
	int r = owned_dirs_read(o, root, what, true, &l, e);

	if (r < 0)
		return r;
	for (size_t i = 0; i < l.n; i++)
		bytes += l.v[i].bytes;
	*ret_dirs = l.n;
	*ret_bytes = bytes;
	free(l.v);
	return 0;
}

int metrics_disk_usage(const struct metrics_opts *o, struct metrics_disk *ret, struct err *e)
{
	struct metrics_disk d = {0};
	char root[PATH_MAX];
	int r = metrics_root(o, root, sizeof(root), e);

	if (r == 0)
		r = usage(o, root, "metrics storage", &d.metrics_dirs, &d.metrics_bytes, e);
	if (r == 0)
		r = usage(o, o->log_dir, "saved logs", &d.logs_dirs, &d.logs_bytes, e);
	if (r == 0)
		*ret = d;
	return r;
}
