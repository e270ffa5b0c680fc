/*
 * Files inside an instance: the pushes create() makes, and pull_file and
 * list_files, which read through one exec while the instance runs
 * commands and through the files API otherwise. It must never have LXD
 * open a file it has not seen to be regular unless a blocked open can be
 * released (a FIFO wedges LXD 5.0's file server), never follow a symlink,
 * and never read more than the caller's cap.
 */
#include "util/common.h"
#include "provider/lxd/lxd_internal.h"

/*
 * The full path of path inside instance name (absolute, or relative to
 * LXD_HOME; no "..", no control characters), name being one of the
 * manager's. what names the operation in messages ("pull", "list files of").
 */
static int file_path(struct lxd *l, const char *name, const char *path, const char *what, char *out,
                     size_t cap, struct err *e)
{
	const char *c;
	bool bad = !path || !*path;

	if (lxd_check_name(name, e) < 0)
		return -EINVAL;
	if (l->manager[0] && !name_is_owned(l->manager, name))
		return err_set(e, -ENOENT, "lxd: %s is not a name of manager %s", name, l->manager);
	for (c = path; !bad && *c; c++)
		bad = (unsigned char)*c < 0x20 || *c == 0x7f;
	for (c = path; !bad && *c;) {
		size_t n = strcspn(c, "/");
		bad = n == 2 && c[0] == '.' && c[1] == '.';
		c += n;
		while (*c == '/')
			c++;
	}
	if (bad)
		return err_set(e, -EINVAL, "lxd: %s %s: bad path", what, name);
	if ((size_t)snprintf(out, cap, "%s%s", path[0] == '/' ? "" : LXD_HOME "/", path) >= cap)
		return err_set(e, -ENAMETOOLONG, "lxd: %s %s: bad path", what, name);
	return 0;
}

/*
 * One request on the files API for path in instance name: rq says the
 * method, headers, body and limits (its path and query are made here).
 * The answer is the plain exchange in *ret_resp when ret_resp is given
 * (reads: their body is the file), else LXD's envelope, which is only
 * checked (writes).
 */
static int files_do(struct lxd *l, const struct provider_call *c, struct lxd_req rq,
                    const char *name, const char *path, struct httpc_response *ret_resp,
                    struct err *e)
{
	struct buf p = BUF_INIT(512), q = BUF_INIT(8192);
	struct lxd_answer a = {0};
	int r;

	if (lxd_path_of(&p, "instances", name, "/files") < 0 || buf_puts(&q, "path=") < 0 ||
	    lxd_url_escape(&q, path, true) < 0) {
		r = err_set(e, -ENAMETOOLONG, "lxd: %s: path too long", path);
	} else {
		rq.path = buf_str(&p);
		rq.query = buf_str(&q);
		if (ret_resp) {
			r = lxd_http(l, c, &rq, ret_resp, e);
		} else {
			r = lxd_call(l, c, &rq, &a, e);
			lxd_answer_release(&a);
		}
	}
	buf_release(&p);
	buf_release(&q);
	return r;
}

/* Write data to path as root with mode (directory when dir). */
int lxd_file_push(struct lxd *l, const struct provider_call *c, const char *name, const char *path,
                  bool dir, const char *mode, const void *data, size_t len, struct err *e)
{
	char hmode[32];
	int r;

	snprintf(hmode, sizeof(hmode), "X-LXD-mode: %s", mode);
	/* octet-stream: with a form type LXD answers 200 and writes an empty file. */
	const char *hdrs[] = {"Content-Type: application/octet-stream",
	                      dir ? "X-LXD-type: directory" : "X-LXD-type: file",
	                      hmode,
	                      "X-LXD-uid: 0",
	                      "X-LXD-gid: 0",
	                      "X-LXD-write: overwrite",
	                      NULL};
	r = files_do(l, c,
	             (struct lxd_req){.method = "POST",
	                              .body = dir ? "" : data,
	                              .body_len = dir ? 0 : len,
	                              .headers = hdrs},
	             name, path, NULL, e);
	if (r < 0 && e)
		err_prefix(e, "push %s into %s", path, name);
	return r;
}

static const char *const want_type[] = {"X-LXD-type", NULL};

/* X-LXD-type of path ("file", "directory", "symlink") through HEAD; -ENOENT when missing. */
int lxd_file_type(struct lxd *l, const struct provider_call *c, const char *name, const char *path,
                  char *ret, size_t cap, struct err *e)
{
	struct httpc_response resp = {0};
	const char *t;
	int r;

	r = files_do(l, c, (struct lxd_req){.method = "HEAD", .want_headers = want_type}, name,
	             path, &resp, e);
	if (r < 0)
		goto out;
	if (resp.status == 404) {
		r = err_set(e, -ENOENT, "lxd: %s in %s: not found", path, name);
		goto out;
	}
	t = httpc_response_header(&resp, "X-LXD-type");
	if (resp.status != 200 || !t) {
		r = err_set(e, lxd_status_errno(resp.status), "lxd: HEAD %s in %s: HTTP %ld", path,
		            name, resp.status);
		goto out;
	}
	str_copy(ret, t, cap);
out:
	httpc_response_release(&resp);
	return r;
}

/*
 * GET a file through the files API: the body is capped at max_body, the
 * request at timeout_ms, and its X-LXD-type put in type. -ENOENT when
 * missing, -E2BIG over the cap, -ETIMEDOUT (a FIFO: LXD opens it and
 * waits for a writer).
 */
static int file_get(struct lxd *l, const struct provider_call *c, const char *name,
                    const char *path, size_t max_body, long timeout_ms, struct httpc_response *ret,
                    char *type, size_t type_cap, struct err *e)
{
	struct httpc_response resp = {0};
	struct err e2 = {0};
	const char *t;
	int r;

	r = files_do(l, c,
	             (struct lxd_req){.max_body = max_body,
	                              .timeout_ms = timeout_ms,
	                              .want_headers = want_type},
	             name, path, &resp, &e2);
	if (r == -E2BIG) {
		r = err_set(e, -E2BIG, "lxd: %s in %s: larger than %zu bytes", path, name,
		            max_body);
		goto out;
	}
	if (r < 0) {
		if (e)
			*e = e2;
		goto out;
	}
	if (resp.status >= 400) {
		struct lxd_answer a = {0};
		char what[128];
		snprintf(what, sizeof(what), "GET %s in", path);
		r = lxd_parse_answer(what, name, resp.status, resp.body.data, resp.body.len, &a, e);
		goto out;
	}
	t = httpc_response_header(&resp, "X-LXD-type");
	str_copy(type, t ? t : "", type_cap);
	*ret = resp;
	memset(&resp, 0, sizeof(resp));
out:
	httpc_response_release(&resp);
	return r;
}

/*
 * Reads go through an exec when the instance runs one: the type check and
 * the read in one shell, the path as $1 (never inside the script), the
 * content coming back as the exec's recorded output. LXD's files API is
 * the fallback (a stopped instance): it calls a FIFO, a socket or a device
 * "file" and opens whatever it reads, and LXD 5.0 does not survive a
 * FIFO: its file server blocks in open(), and once the client gives up it
 * spins and holds the instance (no stop, no delete) until LXD restarts.
 * Exit 3: missing; 4: not a regular file (symlinks included).
 */
static const char lxd_read_script[] = "[ -L \"$1\" ] && exit 4\n"
                                      "[ -e \"$1\" ] || exit 3\n"
                                      "[ -f \"$1\" ] || exit 4\n"
                                      "exec head -c \"$2\" \"$1\"\n";

/*
 * The regular files (not symlinks) in directory $1, the $2 - 1 most useful
 * first, chosen in the instance so that what comes back stays small
 * whatever the directory holds: one line "<rank> <mtime> <size> <name>"
 * each (rank 1: a name with a prefix of $3, space-separated; 2: the
 * rest), sorted preferred, newest, largest, by name, after one line
 * "0 <files> 0 -" that counts them all. Names holding a newline are left
 * out. Exit 3: missing; 4: not a directory (a symlink to one included);
 * 6: the tools are not there (the files API lists it then).
 */
static const char lxd_listdir_script[] =
        "[ -L \"$1\" ] && exit 4\n"
        "[ -d \"$1\" ] || { [ -e \"$1\" ] && exit 4; exit 3; }\n"
        "cd \"$1\" || exit 5\n"
        "{ command -v find && command -v stat && command -v awk && command -v sort && "
        "command -v head; } >/dev/null || exit 6\n"
        "nl='\n"
        "'\n"
        "find . -mindepth 1 -maxdepth 1 -type f ! -name \"*$nl*\" "
        "-exec stat -c '%Y %s %n' {} + 2>/dev/null |\n"
        "awk -v pre=\"$3\" 'BEGIN { np = split(pre, p, \" \") }\n"
        "{ t = $1; s = $2; f = substr($0, length(t) + length(s) + 5); r = 2\n"
        "  for (i = 1; i <= np; i++) if (index(f, p[i]) == 1) { r = 1; break }\n"
        "  n++; print r, t, s, f }\n"
        "END { print 0, n + 0, 0, \"-\" }' |\n"
        "sort -k1,1n -k2,2nr -k3,3nr -k4 | head -n \"$2\"\n";

/* Did a read from name time out lately? Then its files are not read again for a while. */
static bool stuck_is(struct lxd *l, const char *name)
{
	int64_t now = clock_mono_ms();
	bool hit = false;

	pthread_mutex_lock(&l->stuck_lock);
	for (size_t i = 0; i < ARRAY_SIZE(l->stuck) && !hit; i++)
		hit = l->stuck[i].until_ms > now && strcmp(l->stuck[i].name, name) == 0;
	pthread_mutex_unlock(&l->stuck_lock);
	return hit;
}

static void stuck_mark(struct lxd *l, const char *name)
{
	size_t k = 0;

	pthread_mutex_lock(&l->stuck_lock);
	for (size_t i = 0; i < ARRAY_SIZE(l->stuck); i++) {
		if (strcmp(l->stuck[i].name, name) == 0) {
			k = i;
			break;
		}
		if (l->stuck[i].until_ms < l->stuck[k].until_ms)
			k = i; /* the free or oldest slot */
	}
	str_copy(l->stuck[k].name, name, sizeof(l->stuck[k].name));
	l->stuck[k].until_ms = clock_mono_ms() + LXD_STUCK_S * 1000;
	pthread_mutex_unlock(&l->stuck_lock);
}

/*
 * Through an exec: 0 with the content in *ret (at most ret's cap), -ENOENT,
 * -EINVAL (not a regular file), -E2BIG; -EAGAIN when the instance cannot
 * run it (not running, no shell or head, a VM without its agent).
 */
static int file_read_exec(struct lxd *l, const struct provider_call *c, const char *name,
                          const char *full, struct buf *ret)
{
	char n[32];
	int r, rc = -1;

	snprintf(n, sizeof(n), "%zu", ret->max);
	const char *const argv[] = {"/bin/sh", "-c", lxd_read_script, "sh", full, n, NULL};
	r = lxd_instance_exec_out(l, c, name, argv, LXD_CHECK_TIMEOUT, &rc, ret, NULL);
	if (r == -E2BIG)
		return -E2BIG;
	if (r < 0)
		return -EAGAIN;
	return rc == 0 ? 0 : rc == 3 ? -ENOENT : rc == 4 ? -EINVAL : -EAGAIN;
}

/*
 * The files API's answer to a FIFO: the GET's open() waits for a writer.
 * When the GET has not answered after LXD_RESCUE_MS, this opens the same
 * path for writing (append, nothing written: a regular file is left as it
 * is, a missing one is not made), which lets that open() return, and the
 * GET ends with an empty body.
 */
struct rescue {
	struct lxd *l;
	const struct provider_call *c; /* the read's: joined before it returns */
	const char *name, *path;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;  /* the GET has returned (lock) */
	bool fired; /* the write was sent (lock) */
};

static void *rescue_main(void *arg)
{
	struct rescue *x = arg;
	struct timespec ts;
	bool go;

	pthread_setname_np(pthread_self(), "lxd-rescue");
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += LXD_RESCUE_MS / 1000;
	ts.tv_nsec += (LXD_RESCUE_MS % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&x->lock);
	while (!x->done && pthread_cond_timedwait(&x->cond, &x->lock, &ts) != ETIMEDOUT)
		;
	go = x->fired = !x->done;
	pthread_mutex_unlock(&x->lock);
	if (go) {
		static const char *const hdrs[] = {"Content-Type: application/octet-stream",
		                                   "X-LXD-type: file", "X-LXD-write: append", NULL};
		(void)files_do(x->l, x->c,
		               (struct lxd_req){.method = "POST",
		                                .body = "",
		                                .body_len = 0,
		                                .headers = hdrs,
		                                .timeout_ms = LXD_PULL_TIMEOUT_MS},
		               x->name, x->path, NULL, NULL);
	}
	return NULL;
}

/*
 * Through the files API (see above): LXD's type first (a HEAD does not
 * open), then the GET, rescued when it blocks. 0 with the content in *ret,
 * -ENOENT, -EINVAL (not a regular file), -E2BIG, -ETIMEDOUT, ...
 */
static int file_read_api(struct lxd *l, const struct provider_call *c, const char *name,
                         const char *full, struct buf *ret, struct err *e)
{
	struct httpc_response resp = {0};
	struct rescue x = {.l = l, .c = c, .name = name, .path = full};
	pthread_condattr_t ca;
	pthread_t th;
	char type[32];
	bool fired;
	int r;

	if (stuck_is(l, name))
		return err_set(e, -ETIMEDOUT, "lxd: %s in %s: skipped: an earlier read timed out",
		               full, name);
	r = lxd_file_type(l, c, name, full, type, sizeof(type), e);
	if (r < 0)
		return r;
	if (strcmp(type, "file") != 0)
		return err_set(e, -EINVAL, "lxd: %s in %s: not a regular file (%s)", full, name,
		               type);
	pthread_mutex_init(&x.lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&x.cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&th, NULL, rescue_main, &x) != 0) {
		r = err_set(e, -EAGAIN, "lxd: %s in %s: no thread for the read", full, name);
		goto out;
	}
	/* One byte over the cap tells "too big" apart from "exactly the cap". */
	r = file_get(l, c, name, full, ret->max < SIZE_MAX ? ret->max + 1 : ret->max,
	             LXD_PULL_TIMEOUT_MS, &resp, type, sizeof(type), e);
	pthread_mutex_lock(&x.lock);
	x.done = true;
	fired = x.fired;
	pthread_cond_signal(&x.cond);
	pthread_mutex_unlock(&x.lock);
	pthread_join(th, NULL);
	/* The read's own timeout ran out (not the call's): the file server is stuck. */
	if (r == -ETIMEDOUT && provider_call_left_ms(c) > 0)
		stuck_mark(l, name);
	if (r < 0)
		goto out;
	if (strcmp(type, "file") != 0 || (fired && resp.body.len == 0)) {
		/* the open of a regular file does not wait */
		r = err_set(e, -EINVAL, "lxd: %s in %s: not a regular file (%s)", full, name,
		            fired ? "reading it blocked" : type);
		goto out;
	}
	if (resp.body.len > ret->max) {
		r = err_set(e, -E2BIG, "lxd: %s in %s: larger than %zu bytes", full, name,
		            ret->max);
		goto out;
	}
	if (buf_append(ret, resp.body.data ? resp.body.data : "", resp.body.len) < 0)
		r = err_set(e, -ENOMEM, "lxd: out of memory");
out:
	pthread_cond_destroy(&x.cond);
	pthread_mutex_destroy(&x.lock);
	httpc_response_release(&resp);
	return r;
}

int lxd_pull_file(struct provider *p, const struct provider_call *c, const char *name,
                  const char *path, size_t max_bytes, struct buf *ret, struct err *e)
{
	struct lxd *l = p->priv;
	char full[PATH_MAX];
	struct buf b = BUF_INIT(max_bytes < SIZE_MAX ? max_bytes + 1 : max_bytes);
	int r;

	r = file_path(l, name, path, "pull", full, sizeof(full), e);
	if (r < 0)
		return r;
	r = file_read_exec(l, c, name, full, &b);
	if (r == -ENOENT)
		r = err_set(e, -ENOENT, "lxd: %s in %s: not found", full, name);
	else if (r == -EINVAL)
		r = err_set(e, -EINVAL, "lxd: %s in %s: not a regular file", full, name);
	else if (r == 0 && b.len > max_bytes)
		r = -E2BIG;
	if (r == -E2BIG)
		r = err_set(e, -E2BIG, "lxd: %s in %s: larger than %zu bytes", full, name,
		            max_bytes);
	if (r == -EAGAIN) {
		buf_reset(&b);
		b.max = max_bytes;
		r = file_read_api(l, c, name, full, &b, e);
	}
	if (r < 0)
		goto out;
	buf_release(ret);
	*ret = b;
	b.data = NULL;
out:
	buf_release(&b);
	return r;
}

/* For the files API's listing: preferred names first, then the latest name first. */
struct ranked {
	const char *name;
	bool preferred;
};

static int ranked_cmp(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->preferred != y->preferred)
		return x->preferred ? -1 : 1;
	return strcmp(y->name, x->name);
}

/*
 * Without exec (a stopped instance): LXD's listing, its entries' types
 * through HEAD, which does not open them: directories and symlinks are
 * left out, but LXD 5.0 calls a FIFO, a socket or a device "file" too, so
 * those are listed and pull_file refuses them. LXD gives no sizes or times
 * here: the entries are looked at preferred first, then by name, latest
 * first (the runner's logs carry their date in their name), until q->max
 * files are found; what is left unseen counts in the total.
 */
static int listing_api(struct lxd *l, const struct provider_call *c, const char *name,
                       const char *full, const struct provider_list_query *q,
                       struct provider_file_list *out, struct err *e)
{
	struct httpc_response resp = {0};
	struct strv names = {0};
	struct ranked *v = NULL;
	size_t i = 0;
	char type[32];
	int r;

	r = lxd_file_type(l, c, name, full, type, sizeof(type), e);
	if (r < 0)
		return r;
	if (strcmp(type, "directory") != 0)
		return err_set(e, -ENOTDIR, "lxd: %s in %s: not a directory", full, name);
	r = file_get(l, c, name, full, LXD_DIR_API_MAX, 0, &resp, type, sizeof(type), e);
	if (r < 0)
		goto out;
	if (strcmp(type, "directory") != 0) {
		r = err_set(e, -ENOTDIR, "lxd: %s in %s: not a directory", full, name);
		goto out;
	}
	r = lxd_parse_dir(resp.body.data, resp.body.len, &names);
	if (r == -EBADMSG)
		r = err_set(e, r, "lxd: %s in %s: unparsable listing", full, name);
	else if (r < 0)
		r = err_set(e, r, "lxd: out of memory");
	if (r == 0 && names.n > 0 && !(v = calloc(names.n, sizeof(*v))))
		r = err_set(e, -ENOMEM, "lxd: out of memory");
	for (i = 0; r == 0 && i < names.n; i++) {
		v[i].name = names.v[i];
		for (size_t k = 0; q->prefer && q->prefer[k] && !v[i].preferred; k++)
			v[i].preferred = str_has_prefix(names.v[i], q->prefer[k]);
	}
	if (r == 0 && names.n > 1)
		qsort(v, names.n, sizeof(*v), ranked_cmp);
	for (i = 0; r == 0 && i < names.n && out->n < q->max; i++) {
		struct provider_file f = {.size = -1};
		char epath[PATH_MAX], etype[32];
		struct err e2 = {0};
		if ((size_t)snprintf(epath, sizeof(epath), "%s/%s", full, v[i].name) >=
		            sizeof(epath) ||
		    str_copy(f.name, v[i].name, sizeof(f.name)) >= sizeof(f.name))
			continue;
		r = lxd_file_type(l, c, name, epath, etype, sizeof(etype), &e2);
		if (r == -ENOENT) {
			r = 0;
			continue;
		}
		if (r < 0) {
			if (e)
				*e = e2;
		} else if (strcmp(etype, "file") == 0 && provider_file_list_offer(out, q, &f) < 0) {
			r = err_set(e, -ENOMEM, "lxd: out of memory");
		}
	}
	if (r == 0)
		out->total += names.n - i; /* not looked at: perhaps files */
out:
	free(v);
	strv_release(&names);
	httpc_response_release(&resp);
	return r;
}

int lxd_list_files(struct provider *p, const struct provider_call *c, const char *name,
                   const char *dir, const struct provider_list_query *q,
                   struct provider_file_list *ret, struct err *e)
{
	struct lxd *l = p->priv;
	/* each line at most "1 <20 digits> <20 digits> <255 bytes>\n", and the count's */
	struct buf out = BUF_INIT((q->max + 1) * LXD_LISTING_LINE_MAX);
	struct provider_file_list v = {0};
	char full[PATH_MAX], lines[32], prefer[PROVIDER_PREFER_MAX * (PROVIDER_PREFER_LEN_MAX + 1)];
	struct err e2 = {0};
	int r, rc = -1;

	r = file_path(l, name, dir, "list files of", full, sizeof(full), e);
	if (r < 0)
		return r;
	snprintf(lines, sizeof(lines), "%zu", q->max + 1);
	prefer[0] = '\0';
	for (size_t i = 0; q->prefer && q->prefer[i]; i++) {
		size_t n = strlen(prefer);
		snprintf(prefer + n, sizeof(prefer) - n, "%s%s", n ? " " : "", q->prefer[i]);
	}
	const char *const argv[] = {"/bin/sh", "-c", lxd_listdir_script, "sh", full, lines,
	                            prefer,    NULL};
	r = lxd_instance_exec_out(l, c, name, argv, LXD_CHECK_TIMEOUT, &rc, &out, &e2);
	if (r == -E2BIG) {
		r = err_set(e, -E2BIG, "lxd: %s in %s: listing larger than %zu bytes", full, name,
		            out.max);
	} else if (r == 0 && rc == 3) {
		r = err_set(e, -ENOENT, "lxd: %s in %s: not found", full, name);
	} else if (r == 0 && rc == 4) {
		r = err_set(e, -ENOTDIR, "lxd: %s in %s: not a directory", full, name);
	} else if (r == 0 && rc == 0) {
		r = lxd_parse_listing(out.data, out.len, q, &v);
		if (r < 0)
			r = err_set(e, r, "lxd: out of memory");
	} else {
		r = listing_api(l, c, name, full, q, &v, e);
	}
	if (r == 0) {
		provider_file_list_release(ret);
		*ret = v;
		memset(&v, 0, sizeof(v));
	}
	provider_file_list_release(&v);
	buf_release(&out);
	return r;
}
