/*
 * An unhealthy instance's logs, saved to log_dir/<name>/ before it goes (the
 * runner's _diag folders, the startup log, cloud-init's output, the
 * syslog), and the retention of saved log folders. It must never take more
 * than its bounds in files, bytes and time (a job can fill _diag with
 * thousands of entries, and a pass waits for this), never use a name from
 * the instance that is not a plain file name, and never remove anything in
 * log_dir but the folders of owned names.
 */
#include "util/common.h"
#include "metrics/metrics.h"
#include "runner/runner_script.h"
#include "util/clock.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#include <dirent.h>

/* The runner's _diag folders: runnerd's own unpacked runner, then the image's. */
static const char *const diag_dirs[] = {"runner/_diag", RUNNER_IMAGE_DIR "/_diag"};

static const struct {
	const char *src, *dst;
} singles[] = {
        {"startup.log", "startup.log"},
        {"/var/log/cloud-init-output.log", "cloud-init-output.log"},
        {"/var/log/syslog", "syslog"},
};

/* One save_logs run: its bounds, what it saved, its first failure. */
struct saver {
	const struct metrics_opts *o;
	struct provider *p;
	const char *name;
	int64_t deadline; /* clock_mono_ms() */
	size_t file_max, bytes_left;
	struct metrics_logs got;
	struct err first;
};

static bool saver_stopped(struct saver *s)
{
	if (clock_mono_ms() > s->deadline)
		s->got.out_of_time = true;
	if (s->o->cancel && atomic_load(s->o->cancel))
		s->got.cancelled = true;
	return s->got.out_of_time || s->got.cancelled;
}

static void save_one(struct saver *s, const char *src, const char *dst_dir, const char *dst_name)
{
	size_t max = s->bytes_left < s->file_max ? s->bytes_left : s->file_max;
	struct buf b = BUF_INIT(max);
	char path[PATH_MAX];
	struct err fe = {0};
	int r;

	if (max == 0) {
		s->got.out_of_bytes = true;
		return;
	}
	r = provider_pull_file(s->p, s->name, src, max, &b, &fe);
	if (r < 0) {
		s->got.unreadable += r != -ENOENT;
		buf_release(&b);
		return;
	}
	r = mkdir_p(dst_dir, 0700, &fe);
	if (r == 0 &&
	    (size_t)snprintf(path, sizeof(path), "%s/%s", dst_dir, dst_name) >= sizeof(path))
		r = err_set(&fe, -ENAMETOOLONG, "%s/%s: name too long", dst_dir, dst_name);
	if (r == 0)
		r = file_write_atomic(path, b.data ? b.data : "", b.len, 0600, &fe);
	if (r == 0) {
		s->got.files++;
		s->got.bytes += b.len;
		s->bytes_left -= b.len < s->bytes_left ? b.len : s->bytes_left;
	} else if (!s->first.code) {
		err_set(&s->first, r, "logs %s: %s", s->name, fe.msg);
	}
	buf_release(&b);
}

/* The plain files of one _diag folder, up to the file bound of the whole run. */
static void save_diag(struct saver *s, const char *diag_dir, const char *dst_dir, size_t files_max)
{
	struct strv files = {0};
	char src[PATH_MAX];

	int r = provider_list_files(s->p, s->name, diag_dir, &files, NULL);

	if (r < 0) {
		/* a folder the image does not have is no failure */
		s->got.unreadable += r != -ENOENT;
		strv_release(&files);
		return;
	}
	for (size_t i = 0; i < files.n; i++) {
		/* names from the instance: plain file names only */
		if (strchr(files.v[i], '/') || files.v[i][0] == '.')
			continue;
		if (s->got.files + s->got.unreadable >= files_max) {
			s->got.left_out++;
			continue;
		}
		if (saver_stopped(s))
			break;
		snprintf(src, sizeof(src), "%s/%s", diag_dir, files.v[i]);
		save_one(s, src, dst_dir, files.v[i]);
	}
	strv_release(&files);
}

int metrics_save_logs(const struct metrics_opts *o, struct provider *p, const char *name,
                      struct metrics_logs *ret, struct err *e)
{
	struct saver s = {.o = o, .p = p, .name = name};
	size_t files_max =
	        o->log_diag_files_max ? o->log_diag_files_max : METRICS_LOG_DIAG_FILES_MAX;
	char dir[PATH_MAX], diag[PATH_MAX];

	if (!name_is_owned(o->manager, name))
		return err_set(e, -EINVAL, "logs: %s is not a name of manager %s", name,
		               o->manager);
	if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", o->log_dir, name) >= sizeof(dir) ||
	    (size_t)snprintf(diag, sizeof(diag), "%s/_diag", dir) >= sizeof(diag))
		return err_set(e, -ENAMETOOLONG, "logs: log_dir is too long");
	s.deadline =
	        clock_mono_ms() + (o->log_budget_ms > 0 ? o->log_budget_ms : METRICS_LOG_BUDGET_MS);
	s.file_max = o->log_file_max ? o->log_file_max : METRICS_LOG_FILE_MAX;
	s.bytes_left = o->log_bytes_max ? o->log_bytes_max : METRICS_LOG_BYTES_MAX;

	for (size_t d = 0; d < ARRAY_SIZE(diag_dirs) && provider_traits(p)->list_files; d++)
		save_diag(&s, diag_dirs[d], diag, files_max);
	for (size_t i = 0; i < ARRAY_SIZE(singles) && !saver_stopped(&s); i++)
		save_one(&s, singles[i].src, dir, singles[i].dst);
	if (s.first.code) {
		if (e)
			*e = s.first;
		return s.first.code;
	}
	if (ret)
		*ret = s.got;
	return 0;
}

/* The temporaries in root/<name>/<sub> of every owned name (see metrics_remove_temps). */
static int remove_temps_under(const struct metrics_opts *o, const char *root, const char *sub,
                              struct err *first)
{
	struct dirent *de;
	int removed = 0;
	DIR *d = opendir(root);

	if (!d) {
		if (errno != ENOENT && !first->code)
			err_set(first, -errno, "%s: %s", root, strerror(errno));
		return 0;
	}
	while ((de = readdir(d))) {
		char dir[PATH_MAX];
		struct err re = {0};
		int r;

		if (!name_is_owned(o->manager, de->d_name) ||
		    (size_t)snprintf(dir, sizeof(dir), "%s/%s%s", root, de->d_name, sub) >=
		            sizeof(dir))
			continue;
		r = file_remove_temps(dir, NULL, NULL, &re);
		if (r > 0)
			removed += r;
		else if (r < 0 && r != -ENOTDIR && r != -ELOOP && !first->code)
			*first = re; /* a name that is no folder (or a symlink) is not ours to clean
			              */
	}
	closedir(d);
	return removed;
}

int metrics_remove_temps(const struct metrics_opts *o, struct err *e)
{
	struct err first = {0};
	char metrics[PATH_MAX];
	int removed;

	if ((size_t)snprintf(metrics, sizeof(metrics), "%s/metrics", o->state_dir) >=
	    sizeof(metrics))
		return err_set(e, -ENAMETOOLONG, "metrics: state_dir is too long");
	removed = remove_temps_under(o, metrics, "", &first) +
	          remove_temps_under(o, o->log_dir, "", &first) +
	          remove_temps_under(o, o->log_dir, "/_diag", &first);
	if (first.code) {
		if (e)
			*e = first;
		return first.code;
	}
	return removed;
}

int metrics_prune_logs(const struct metrics_opts *o, int64_t now, struct err *e)
{
	struct err first = {0};
	struct dirent *de;
	int removed = 0;
	DIR *d;

	d = opendir(o->log_dir);
	if (!d) {
		if (errno == ENOENT)
			return 0; /* no instance saved logs yet */
		return err_set(e, -errno, "log retention: %s: %s", o->log_dir, strerror(errno));
	}
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		struct stat st;
		struct err re = {0};

		if (!name_is_owned(o->manager, de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", o->log_dir, de->d_name);
		/* lstat: a symlink of an owned name is not a folder we made */
		if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode) ||
		    now - st.st_mtime <= o->log_retention)
			continue;
		if (rm_rf(path, &re) == 0)
			removed++;
		else if (!first.code)
			err_set(&first, re.code ? re.code : -EIO, "log retention: %s", re.msg);
	}
	closedir(d);
	if (first.code) {
		if (e)
			*e = first;
		return first.code;
	}
	return removed;
}
