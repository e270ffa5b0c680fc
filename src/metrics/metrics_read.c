/*
 * Reading and checking a runner's metrics storage: the four files its
 * startup script and pre-job hook wrote, as hostile input. Each is opened
 * without following a symlink and without blocking on a FIFO, checked to be
 * a regular file of at most METRICS_STORAGE_FILE_MAX bytes, and parsed into
 * the exact shape the original's pydantic models accept (a string too long
 * for its field is refused, never cut). It must never follow a symlink,
 * read a FIFO or a device, read past the bound, nor accept half a file.
 */
#include "util/common.h"
#include "metrics/metrics_storage.h"
#include "util/strutil.h"
#include "util/words.h"

#include <jansson.h>
#include <math.h>

static const char *const cause_names[] = {
        [METRICS_CAUSE_NONE] = "none",
        [METRICS_CAUSE_TOO_BIG] = "too_big",
        [METRICS_CAUSE_NOT_REGULAR] = "not_regular",
        [METRICS_CAUSE_INVALID_JSON] = "invalid_json",
        [METRICS_CAUSE_NOT_OBJECT] = "not_object",
        [METRICS_CAUSE_SCHEMA] = "schema",
        [METRICS_CAUSE_BAD_TIMESTAMP] = "bad_timestamp",
        [METRICS_CAUSE_UNREADABLE] = "unreadable",
};

const char *metrics_cause_name(enum metrics_cause c)
{
	return (size_t)c < ARRAY_SIZE(cause_names) ? cause_names[c] : "invalid";
}

static int bad(enum metrics_cause *ret_bad, enum metrics_cause c, struct err *e, const char *fmt,
               ...) __attribute__((format(printf, 4, 5)));

static int bad(enum metrics_cause *ret_bad, enum metrics_cause c, struct err *e, const char *fmt,
               ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ret_bad)
		*ret_bad = c;
	return err_set(e, -EBADMSG, "%s", msg);
}

/* A finite, non-negative number: what the original's NonNegativeFloat takes. */
static bool timestamp_ok(double v)
{
	return isfinite(v) && v >= 0;
}

/* JSON's number grammar over s[0..n) exactly. */
static bool json_number_text(const char *s, size_t n)
{
	size_t i = 0;

	if (i < n && s[i] == '-')
		i++;
	if (i >= n || s[i] < '0' || s[i] > '9')
		return false;
	if (s[i] == '0')
		i++;
	else
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	if (i < n && s[i] == '.') {
		size_t d = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return false;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t d;
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		d = i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return false;
	}
	return i == n;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int metrics_parse_timestamp(const char *data, size_t len, double *ret, enum metrics_cause *ret_bad,
                            struct err *e)
{
	char text[64];
	double v;

	if (len > METRICS_STORAGE_FILE_MAX)
		return bad(ret_bad, METRICS_CAUSE_TOO_BIG, e, "over %d bytes",
		           METRICS_STORAGE_FILE_MAX);
	while (len && blank(data[0])) {
		data++;
		len--;
	}
	while (len && blank(data[len - 1]))
		len--;
	if (len == 0 || len >= sizeof(text) || !json_number_text(data, len))
		return bad(ret_bad, METRICS_CAUSE_BAD_TIMESTAMP, e, "not a number");
	memcpy(text, data, len);
	text[len] = '\0';
	v = strtod(text, NULL);
	if (!timestamp_ok(v))
		return bad(ret_bad, METRICS_CAUSE_BAD_TIMESTAMP, e,
		           "not a finite non-negative number");
	*ret = v;
	return 0;
}

/* data as a JSON object, or the cause. */
static int load_object(const char *data, size_t len, json_t **ret, enum metrics_cause *ret_bad,
                       struct err *e)
{
	json_error_t je;
	json_t *root;

	if (len > METRICS_STORAGE_FILE_MAX)
		return bad(ret_bad, METRICS_CAUSE_TOO_BIG, e, "over %d bytes",
		           METRICS_STORAGE_FILE_MAX);
	/* duplicate keys are refused: which one counts would be a guess */
	root = json_loadb(data, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return bad(ret_bad, METRICS_CAUSE_INVALID_JSON, e, "invalid JSON at line %d: %s",
		           je.line, je.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return bad(ret_bad, METRICS_CAUSE_NOT_OBJECT, e, "JSON, but not an object");
	}
	*ret = root;
	return 0;
}

static int get_timestamp(json_t *o, double *ret, enum metrics_cause *ret_bad, struct err *e)
{
	json_t *v = json_object_get(o, "timestamp");

	if (!v)
		return bad(ret_bad, METRICS_CAUSE_SCHEMA, e, "timestamp: missing");
	if (!json_is_number(v) || !timestamp_ok(json_number_value(v)))
		return bad(ret_bad, METRICS_CAUSE_BAD_TIMESTAMP, e,
		           "timestamp: not a finite non-negative number");
	*ret = json_number_value(v);
	return 0;
}

/* A required string that fits out whole. */
static int get_string(json_t *o, const char *key, char *out, size_t cap,
                      enum metrics_cause *ret_bad, struct err *e)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return bad(ret_bad, METRICS_CAUSE_SCHEMA, e, "%s: missing", key);
	if (!json_is_string(v))
		return bad(ret_bad, METRICS_CAUSE_SCHEMA, e, "%s: not a string", key);
	if (json_string_length(v) >= cap)
		return bad(ret_bad, METRICS_CAUSE_SCHEMA, e, "%s: longer than %zu bytes", key,
		           cap - 1);
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* "owner/repo": one slash, something on either side. */
static bool repository_ok(const char *s)
{
	const char *slash = strchr(s, '/');

	return slash && slash != s && slash[1] && !strchr(slash + 1, '/');
}

int metrics_parse_pre_job(const char *data, size_t len, struct metrics_pre_job *ret,
                          enum metrics_cause *ret_bad, struct err *e)
{
	struct metrics_pre_job p = {0};
	json_t *o = NULL;
	int r = load_object(data, len, &o, ret_bad, e);

	if (r < 0)
		return r;
	if ((r = get_timestamp(o, &p.timestamp, ret_bad, e)) < 0 ||
	    (r = get_string(o, "workflow", p.workflow, sizeof(p.workflow), ret_bad, e)) < 0 ||
	    (r = get_string(o, "workflow_run_id", p.workflow_run_id, sizeof(p.workflow_run_id),
	                    ret_bad, e)) < 0 ||
	    (r = get_string(o, "repository", p.repository, sizeof(p.repository), ret_bad, e)) < 0 ||
	    (r = get_string(o, "event", p.event, sizeof(p.event), ret_bad, e)) < 0)
		goto out;
	if (!repository_ok(p.repository)) {
		r = bad(ret_bad, METRICS_CAUSE_SCHEMA, e, "repository: not owner/repo");
		goto out;
	}
	*ret = p;
out:
	json_decref(o);
	return r;
}

static bool status_ok(const char *s)
{
	return strcmp(s, "normal") == 0 || strcmp(s, "abnormal") == 0 ||
	       strcmp(s, "repo-policy-check-failure") == 0;
}

int metrics_parse_post_job(const char *data, size_t len, struct metrics_post_job *ret,
                           enum metrics_cause *ret_bad, struct err *e)
{
	struct metrics_post_job p = {0};
	json_t *o = NULL, *info;
	int r = load_object(data, len, &o, ret_bad, e);

	if (r < 0)
		return r;
	if ((r = get_timestamp(o, &p.timestamp, ret_bad, e)) < 0 ||
	    (r = get_string(o, "status", p.status, sizeof(p.status), ret_bad, e)) < 0)
		goto out;
	if (!status_ok(p.status)) {
		r = bad(ret_bad, METRICS_CAUSE_SCHEMA, e,
		        "status: not normal, abnormal or repo-policy-check-failure");
		goto out;
	}
	info = json_object_get(o, "status_info");
	if (info && !json_is_null(info)) {
		json_t *code = json_is_object(info) ? json_object_get(info, "code") : NULL;
		if (!json_is_integer(code)) {
			r = bad(ret_bad, METRICS_CAUSE_SCHEMA, e,
			        "status_info: not an object with an integer code");
			goto out;
		}
		p.has_code = true;
		p.code = json_integer_value(code);
	}
	*ret = p;
out:
	json_decref(o);
	return r;
}

/*
 * The bytes of dfd/name into buf (at most METRICS_STORAGE_FILE_MAX); *ret_len.
 * 1 when the file is missing, 0 when read, -EBADMSG with the cause.
 */
static int read_file(int dfd, const char *name, char *buf, size_t *ret_len,
                     enum metrics_cause *ret_bad, struct err *e)
{
	struct stat st;
	size_t len = 0;
	int fd, r = 0;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 1;
		return bad(ret_bad, METRICS_CAUSE_UNREADABLE, e, "%s", strerror(errno));
	}
	if (!S_ISREG(st.st_mode))
		return bad(ret_bad, METRICS_CAUSE_NOT_REGULAR, e, "not a regular file");
	if (st.st_size > METRICS_STORAGE_FILE_MAX)
		return bad(ret_bad, METRICS_CAUSE_TOO_BIG, e, "over %d bytes",
		           METRICS_STORAGE_FILE_MAX);
	/* it may have been swapped since: open without following or blocking, check again */
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP || errno == ENXIO)
			return bad(ret_bad, METRICS_CAUSE_NOT_REGULAR, e, "not a regular file");
		return bad(ret_bad, METRICS_CAUSE_UNREADABLE, e, "%s", strerror(errno));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = bad(ret_bad, METRICS_CAUSE_NOT_REGULAR, e, "not a regular file");
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, METRICS_STORAGE_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = bad(ret_bad, METRICS_CAUSE_UNREADABLE, e, "%s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > METRICS_STORAGE_FILE_MAX) {
			r = bad(ret_bad, METRICS_CAUSE_TOO_BIG, e, "over %d bytes",
			        METRICS_STORAGE_FILE_MAX);
			goto out;
		}
	}
	*ret_len = len;
out:
	close(fd);
	return r;
}

/* One file: 1 missing, 0 parsed into *out, -EBADMSG. */
static int read_one(int dfd, const char *name, int kind, void *out, struct metrics_bad *ret_bad,
                    struct err *e)
{
	char buf[METRICS_STORAGE_FILE_MAX + 1];
	enum metrics_cause cause = METRICS_CAUSE_NONE;
	size_t len = 0;
	int r = read_file(dfd, name, buf, &len, &cause, e);

	if (r == 0) {
		if (kind == 0)
			r = metrics_parse_timestamp(buf, len, out, &cause, e);
		else if (kind == 1)
			r = metrics_parse_pre_job(buf, len, out, &cause, e);
		else
			r = metrics_parse_post_job(buf, len, out, &cause, e);
	}
	if (r < 0) {
		err_prefix(e, "%s", name);
		if (ret_bad) {
			ret_bad->cause = cause;
			str_copy(ret_bad->file, name, sizeof(ret_bad->file));
		}
	}
	return r;
}

int metrics_storage_read(const char *dir, struct metrics_storage *ret, struct metrics_bad *ret_bad,
                         struct err *e)
{
	struct metrics_storage s = {0};
	int dfd, r;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		r = -errno;
		if (r == -ELOOP)
			r = -ENOTDIR;
		return err_set(e, r, "metrics storage %s: %s", dir, strerror(-r));
	}
	/*
	 * In the original's order: without the installed timestamp nothing more
	 * is read, and without the pre-job file the post-job file is not.
	 */
	r = read_one(dfd, METRICS_INSTALLATION_STARTED, 0, &s.installation_start, ret_bad, e);
	if (r < 0)
		goto out;
	s.has_installation_start = r == 0;
	r = read_one(dfd, METRICS_RUNNER_INSTALLED, 0, &s.installed, ret_bad, e);
	if (r < 0)
		goto out;
	s.has_installed = r == 0;
	if (s.has_installed) {
		r = read_one(dfd, METRICS_PRE_JOB, 1, &s.pre, ret_bad, e);
		if (r < 0)
			goto out;
		s.has_pre_job = r == 0;
	}
	if (s.has_pre_job) {
		r = read_one(dfd, METRICS_POST_JOB, 2, &s.post, ret_bad, e);
		if (r < 0)
			goto out;
		s.has_post_job = r == 0;
	}
	r = 0;
	*ret = s;
out:
	close(dfd);
	return r;
}
