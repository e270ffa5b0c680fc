/*
 * An unhealthy instance's logs, saved to log_dir/<name>/ before it goes (the
 * startup log, cloud-init's output, the syslog, the runner's _diag
 * folders), choosing within the bounds what is most worth keeping and
 * counting, by reason, what they leave out. It must never take more than
 * its bounds in files, bytes and time (a job can fill _diag with thousands
 * of entries, and the collecting lane waits for this), never let such a
 * folder hide the runner's own logs nor make the whole collection fail,
 * never use a name from the instance that is not a plain file name, and
 * never call a collection that saved nothing of what was there a success.
 */
#include "util/common.h"
#include "metrics/metrics.h"
#include "runner/runner_script.h"
#include "util/clock.h"
#include "util/fileutil.h"
#include "util/strutil.h"

/* The runner's _diag folders: runnerd's own unpacked runner, then the image's. */
static const char *const diag_dirs[] = {"runner/_diag", RUNNER_IMAGE_DIR "/_diag"};
/* The runner's own logs in _diag, looked at before anything a job put there. */
static const char *const diag_prefer[] = {"Runner_", "Worker_", NULL};
/* A _diag listing asks for this many times the files that may be saved (some get skipped). */
#define DIAG_LIST_FACTOR 4

static const struct {
	const char *src, *dst;
} singles[] = {
        {"startup.log", "startup.log"},
        {"/var/log/cloud-init-output.log", "cloud-init-output.log"},
        {"/var/log/syslog", "syslog"},
};

/* The bounds of one run, defaults filled in. */
struct bounds {
	size_t file_max, bytes_max, diag_max;
	int64_t budget_ms;
};

static struct bounds bounds_of(const struct metrics_opts *o)
{
	return (struct bounds){
	        .file_max = o->log_file_max ? o->log_file_max : METRICS_LOG_FILE_MAX,
	        .bytes_max = o->log_bytes_max ? o->log_bytes_max : METRICS_LOG_BYTES_MAX,
	        .diag_max =
	                o->log_diag_files_max ? o->log_diag_files_max : METRICS_LOG_DIAG_FILES_MAX,
	        .budget_ms = o->log_budget_ms > 0 ? o->log_budget_ms : METRICS_LOG_BUDGET_MS,
	};
}

/* How many entries a _diag listing asks for. */
static size_t diag_list_max(const struct bounds *b)
{
	size_t n = b->diag_max * DIAG_LIST_FACTOR;
	return n < PROVIDER_LIST_FILES_MAX ? n : PROVIDER_LIST_FILES_MAX;
}

/* One save_logs run: its bounds, what it saved and left out, its first failure to write. */
struct saver {
	const struct metrics_opts *o;
	struct provider *p;
	const char *name;
	struct bounds b;
	int64_t deadline; /* clock_mono_ms() */
	size_t bytes_left;
	size_t diag_tried; /* _diag files pulled (saved or not) */
	struct metrics_logs got;
	int why_code; /* of got.why */
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

/* Keep the first failure to pull or list, for the report. */
static void saver_why(struct saver *s, const struct err *fe, int code)
{
	if (!s->got.why[0]) {
		str_copy(s->got.why, fe->msg[0] ? fe->msg : strerror(-code), sizeof(s->got.why));
		s->why_code = code;
	}
}

/* The most the next file may take. */
static size_t saver_room(const struct saver *s)
{
	return s->bytes_left < s->b.file_max ? s->bytes_left : s->b.file_max;
}

/*
 * Pull src (at most saver_room) and write it to dst_dir/dst_name, counting
 * what happened; returns the pull's result (-ENOENT: not there, uncounted).
 */
static int save_one(struct saver *s, const char *src, const char *dst_dir, const char *dst_name)
{
	size_t max = saver_room(s);
	struct buf b = BUF_INIT(max);
	char path[PATH_MAX];
	struct err fe = {0};
	int r, w;

	if (max == 0) {
		s->got.over_bytes++;
		return -E2BIG;
	}
	r = provider_pull_file(s->p, s->name, src, max, &b, &fe);
	if (r == -E2BIG && max < s->b.file_max) {
		s->got.over_bytes++;
	} else if (r == -E2BIG) {
		s->got.too_big++;
	} else if (r < 0 && r != -ENOENT) {
		s->got.unreadable++;
		saver_why(s, &fe, r);
	}
	if (r < 0)
		goto out;
	w = mkdir_p(dst_dir, 0700, &fe);
	if (w == 0 &&
	    (size_t)snprintf(path, sizeof(path), "%s/%s", dst_dir, dst_name) >= sizeof(path))
		w = err_set(&fe, -ENAMETOOLONG, "%s/%s: name too long", dst_dir, dst_name);
	if (w == 0)
		w = file_write_atomic(path, b.data ? b.data : "", b.len, 0600, &fe);
	if (w == 0) {
		s->got.files++;
		s->got.bytes += b.len;
		s->bytes_left -= b.len < s->bytes_left ? b.len : s->bytes_left;
	} else if (!s->first.code) {
		err_set(&s->first, w, "logs %s: %s", s->name, fe.msg);
	}
out:
	buf_release(&b);
	return r;
}

/* One file of a _diag listing, or the reason it is left out. */
static void save_diag_file(struct saver *s, const char *diag_dir, const char *dst_dir,
                           const struct provider_file *f)
{
	char src[PATH_MAX];

	if (f->size == 0) {
		s->got.empty++;
	} else if (f->size > 0 && (uint64_t)f->size > s->b.file_max) {
		s->got.too_big++;
	} else if (s->diag_tried >= s->b.diag_max) {
		s->got.over_files++;
	} else if (f->size > 0 && (uint64_t)f->size > s->bytes_left) {
		s->got.over_bytes++; /* a smaller one further down may still fit */
	} else if ((size_t)snprintf(src, sizeof(src), "%s/%s", diag_dir, f->name) < sizeof(src)) {
		s->diag_tried++;
		if (save_one(s, src, dst_dir, f->name) == -ENOENT)
			s->got.unreadable++; /* listed, then gone */
	}
}

/* The most useful files of one _diag folder, within the bounds of the whole run. */
static void save_diag(struct saver *s, const char *diag_dir, const char *dst_dir)
{
	struct provider_file_list l = {0};
	struct provider_list_query q = {.max = diag_list_max(&s->b), .prefer = diag_prefer};
	struct err fe = {0};
	size_t i;
	int r;

	if (saver_stopped(s)) {
		s->got.late++;
		return;
	}
	r = provider_list_files(s->p, s->name, diag_dir, &q, &l, &fe);
	if (r == -ENOENT)
		return; /* a folder the image does not have is no failure */
	if (r < 0) {
		s->got.unlisted++;
		saver_why(s, &fe, r);
		return;
	}
	s->got.found += l.total;
	s->got.cut += l.total - l.n;
	for (i = 0; i < l.n && !saver_stopped(s); i++)
		save_diag_file(s, diag_dir, dst_dir, &l.v[i]);
	s->got.late += l.n - i;
	provider_file_list_release(&l);
}

/* The code of a collection that saved nothing of what was there. */
static int nothing_saved_code(const struct saver *s)
{
	if (s->got.cancelled)
		return -ECANCELED;
	if (s->got.out_of_time)
		return -ETIMEDOUT;
	if (s->why_code < 0 && !s->got.over_files && !s->got.too_big && !s->got.over_bytes)
		return s->why_code;
	return -E2BIG;
}

int metrics_save_logs(const struct metrics_opts *o, struct provider *p, const char *name,
                      struct metrics_logs *ret, struct err *e)
{
	struct saver s = {.o = o, .p = p, .name = name, .b = bounds_of(o)};
	char dir[PATH_MAX], diag[PATH_MAX], what[400];

	if (!name_is_owned(o->manager, name))
		return err_set(e, -EINVAL, "logs: %s is not a name of manager %s", name,
		               o->manager);
	if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", o->log_dir, name) >= sizeof(dir) ||
	    (size_t)snprintf(diag, sizeof(diag), "%s/_diag", dir) >= sizeof(diag))
		return err_set(e, -ENAMETOOLONG, "logs: log_dir is too long");
	s.deadline = clock_mono_ms() + s.b.budget_ms;
	s.bytes_left = s.b.bytes_max;

	for (size_t i = 0; i < ARRAY_SIZE(singles); i++) {
		if (saver_stopped(&s))
			s.got.late++;
		else if (save_one(&s, singles[i].src, dir, singles[i].dst) != -ENOENT)
			s.got.found++;
	}
	for (size_t d = 0; d < ARRAY_SIZE(diag_dirs) && provider_traits(p)->list_files; d++)
		save_diag(&s, diag_dirs[d], diag);
	if (s.first.code) {
		if (e)
			*e = s.first;
		return s.first.code;
	}
	if (s.got.files == 0 && (s.got.found || s.got.unlisted || s.got.late)) {
		metrics_logs_describe(o, &s.got, what, sizeof(what));
		return err_set(e, nothing_saved_code(&s), "logs %s: nothing saved of %zu files: %s",
		               name, s.got.found, what);
	}
	if (ret)
		*ret = s.got;
	return 0;
}

/* Append ", <fmt>" (or "<fmt>" first) to out at *len, as far as it fits. */
static void describe_add(char *out, size_t cap, size_t *len, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void describe_add(char *out, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*len)
		*len += (size_t)snprintf(*len < cap ? out + *len : NULL,
		                         *len < cap ? cap - *len : 0, ", ");
	va_start(ap, fmt);
	n = vsnprintf(*len < cap ? out + *len : NULL, *len < cap ? cap - *len : 0, fmt, ap);
	va_end(ap);
	*len += n > 0 ? (size_t)n : 0;
}

size_t metrics_logs_describe(const struct metrics_opts *o, const struct metrics_logs *l, char *out,
                             size_t cap)
{
	struct bounds b = bounds_of(o);
	char file_max[32], bytes_max[32];
	size_t len = 0;

	if (cap)
		out[0] = '\0';
	format_size((int64_t)b.file_max, file_max, sizeof(file_max));
	format_size((int64_t)b.bytes_max, bytes_max, sizeof(bytes_max));
	if (l->cut)
		describe_add(out, cap, &len,
		             "%zu _diag files left out by the listing (the %zu most useful asked)",
		             l->cut, diag_list_max(&b));
	if (l->over_files)
		describe_add(out, cap, &len, "%zu past the %zu-file cap", l->over_files,
		             b.diag_max);
	if (l->too_big)
		describe_add(out, cap, &len, "%zu over %s each", l->too_big, file_max);
	if (l->over_bytes)
		describe_add(out, cap, &len, "%zu past the %s total", l->over_bytes, bytes_max);
	if (l->empty)
		describe_add(out, cap, &len, "%zu empty", l->empty);
	if (l->unreadable)
		describe_add(out, cap, &len, "%zu unreadable", l->unreadable);
	if (l->unlisted)
		describe_add(out, cap, &len, "%zu _diag folders not listed", l->unlisted);
	if (l->late)
		describe_add(out, cap, &len, "%zu not looked at (%s)", l->late,
		             l->cancelled ? "cancelled" : "out of time");
	if (l->out_of_time && !l->late)
		describe_add(out, cap, &len, "stopped at the %" PRId64 " s budget",
		             b.budget_ms / 1000);
	if (l->why[0])
		describe_add(out, cap, &len, "first failure: %s", l->why);
	return len;
}
