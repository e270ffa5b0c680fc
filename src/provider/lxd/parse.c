/*
 * LXD's text, parsed: the answer envelope and its errors, operation
 * objects, instance objects and listings, what an exec leaves (its return
 * code, the paths of its output logs), the listing script's output, the
 * files API's directory listing and an ACL's used_by. Pure functions, so
 * that the unit tests and the fuzzers reach them without an LXD: bytes or
 * JSON in, typed values (or an errno and a message) out. Every answer is
 * untrusted (a broken or hostile LXD, or text an instance wrote). It must
 * never do I/O, never use a value whose type and length it has not
 * checked, and never hand back an id or a path that could steer a later
 * request anywhere but where it belongs.
 */
#include "util/common.h"
#include "provider/lxd/lxd_internal.h"

const char *lxd_jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

bool lxd_url_plain(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

void lxd_answer_release(struct lxd_answer *a)
{
	json_decref(a->root);
	memset(a, 0, sizeof(*a));
}

/* ---- the envelope and errors ---------------------------------------- */

int lxd_status_errno(long status)
{
	switch (status) {
	case 400:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 409:
		return -EEXIST;
	case 412:
	case 503:
		return -EAGAIN;
	default:
		return -EIO;
	}
}

/* LXD's error text, bounded and printable. */
static void errtext(const char *in, char *out, size_t cap)
{
	size_t n = 0;

	for (const char *p = in ? in : ""; *p && n + 1 < cap && n < LXD_ERRTEXT_MAX; p++)
		out[n++] = (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p;
	if (in && strlen(in) > n && n + 4 < cap) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

static int answer_error(const char *method, const char *path, long status, const json_t *root,
                        struct err *e)
{
	char text[LXD_ERRTEXT_MAX + 8];
	const char *msg = lxd_jstr(root, "error");
	json_int_t code = json_integer_value(json_object_get(root, "error_code"));

	if (code >= 400 && code < 600)
		status = (long)code;
	if (msg && *msg)
		errtext(msg, text, sizeof(text));
	else
		snprintf(text, sizeof(text), "HTTP %ld", status);
	return err_set(e, lxd_status_errno(status), "lxd: %s %s: %s", method, path, text);
}

/* Operation ids are UUIDs: anything else must not reach a URL. */
static bool op_id_valid(const char *s, size_t cap)
{
	size_t n = strlen(s);
	if (n == 0 || n >= cap)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || s[i] == '-'))
			return false;
	return true;
}

int lxd_parse_answer(const char *method, const char *path, long status, const void *body,
                     size_t len, struct lxd_answer *ret, struct err *e)
{
	struct lxd_answer a = {0};
	const char *type;
	json_error_t je;
	int r;

	a.root = len ? json_loadb(body, len, 0, &je) : NULL;
	if (status >= 400) {
		r = answer_error(method, path, status, a.root, e);
		goto out;
	}
	if (!json_is_object(a.root) || !(type = lxd_jstr(a.root, "type"))) {
		r = err_set(e, -EBADMSG, "lxd: %s %s: unparsable answer (HTTP %ld)", method, path,
		            status);
		goto out;
	}
	if (strcmp(type, "error") == 0) {
		r = answer_error(method, path, status, a.root, e);
		goto out;
	}
	if (strcmp(type, "async") == 0) {
		const char *op = lxd_jstr(a.root, "operation");
		const char *id = op && str_has_prefix(op, LXD_OPS) ? op + strlen(LXD_OPS) : NULL;
		if (!id || !op_id_valid(id, sizeof(a.op))) {
			r = err_set(e, -EBADMSG, "lxd: %s %s: async answer without an operation",
			            method, path);
			goto out;
		}
		str_copy(a.op, id, sizeof(a.op));
	}
	a.meta = json_object_get(a.root, "metadata");
	*ret = a;
	a.root = NULL;
	r = 0;
out:
	json_decref(a.root);
	return r;
}

/* ---- operations ----------------------------------------------------- */

int lxd_parse_operation(const json_t *op, const char *what, struct err *e)
{
	json_int_t sc;

	if (!json_is_object(op) || !json_is_integer(json_object_get(op, "status_code")))
		return err_set(e, -EBADMSG, "lxd: %s: unparsable operation", what);
	sc = json_integer_value(json_object_get(op, "status_code"));
	if (sc == 200)
		return 0;
	if (sc == 400 || sc == 401) {
		char text[LXD_ERRTEXT_MAX + 8];
		const char *err = lxd_jstr(op, "err");
		errtext(err && *err ? err : (sc == 401 ? "cancelled" : "failed"), text,
		        sizeof(text));
		return err_set(e, -EIO, "lxd: %s: %s", what, text);
	}
	return 1;
}

/* ---- instances ------------------------------------------------------ */

static enum cloud_state state_of(const char *status)
{
	static const struct {
		const char *status;
		enum cloud_state state;
	} map[] = {
	        {"Running", CLOUD_ACTIVE},   {"Ready", CLOUD_ACTIVE},
	        {"Starting", CLOUD_CREATED}, {"Stopped", CLOUD_STOPPED},
	        {"Stopping", CLOUD_STOPPED}, {"Error", CLOUD_ERROR},
	        {"Aborting", CLOUD_ERROR},   {"Frozen", CLOUD_UNKNOWN},
	        {"Freezing", CLOUD_UNKNOWN}, {"Thawed", CLOUD_UNKNOWN},
	};
	for (size_t i = 0; status && i < ARRAY_SIZE(map); i++)
		if (strcmp(map[i].status, status) == 0)
			return map[i].state;
	return CLOUD_UNKNOWN;
}

int lxd_parse_instance(const json_t *o, struct instance *ret, const char **ret_owner)
{
	const json_t *config = json_object_get(o, "config");
	const char *name = lxd_jstr(o, "name"), *status = lxd_jstr(o, "status");
	const char *flavor, *created;
	struct instance in = {0};

	if (!json_is_object(o) || !name || !status || !json_is_object(config))
		return -EBADMSG;
	created = lxd_jstr(o, "created_at");
	flavor = lxd_jstr(config, LXD_KEY_FLAVOR);
	if (strlen(name) >= sizeof(in.name))
		return -EBADMSG;
	str_copy(in.name, name, sizeof(in.name));
	str_copy(in.provider_id, name, sizeof(in.provider_id));
	if (flavor && strlen(flavor) < sizeof(in.flavor))
		str_copy(in.flavor, flavor, sizeof(in.flavor));
	in.state = state_of(status);
	in.created_at = 0;
	/* LXD's "never" is year 1: only a plausible time is a creation time */
	int64_t t;
	if (created && clock_parse_rfc3339(created, &t) == 0 && t > 365 * 86400)
		in.created_at = (time_t)t;
	*ret_owner = lxd_jstr(config, LXD_KEY_MANAGER);
	*ret = in;
	return 0;
}

int lxd_parse_instances(const json_t *meta, const char *manager, struct instance_list *ret,
                        struct err *e)
{
	size_t i;
	json_t *o;

	if (!json_is_array(meta))
		return err_set(e, -EBADMSG, "lxd: list: unparsable answer");
	json_array_foreach(meta, i, o)
	{
		struct instance in;
		const char *owner;
		if (lxd_parse_instance(o, &in, &owner) < 0)
			return err_set(e, -EBADMSG, "lxd: list: unparsable instance #%zu", i);
		if (!name_is_owned(manager, in.name) || !owner || strcmp(owner, manager) != 0)
			continue;
		if (instance_list_add(ret, &in) < 0)
			return err_set(e, -ENOMEM, "lxd: list: out of memory");
	}
	return 0;
}

/* ---- exec ----------------------------------------------------------- */

int lxd_parse_exec_return(const json_t *op, int *ret_rc)
{
	const json_t *rc = json_object_get(json_object_get(op, "metadata"), "return");

	if (!json_is_integer(rc))
		return -EBADMSG;
	*ret_rc = (int)json_integer_value(rc);
	return 0;
}

/* Is s the path of one of name's exec output logs ("/1.0/instances/<name>/logs/...")? */
static bool exec_log_path_ok(const char *s, const char *name)
{
	static const char pre[] = "/1.0/instances/";
	size_t n = strlen(name);

	if (!str_has_prefix(s, pre) || strncmp(s + strlen(pre), name, n) != 0 ||
	    !str_has_prefix(s + strlen(pre) + n, "/logs/"))
		return false;
	s += strlen(pre) + n + strlen("/logs/");
	if (!*s || strstr(s, ".."))
		return false;
	for (; *s; s++)
		if (!lxd_url_plain((unsigned char)*s) && *s != '/')
			return false;
	return true;
}

void lxd_parse_exec_logs(const json_t *op, const char *name, char ret[2][LXD_LOG_PATH_MAX])
{
	const json_t *output = json_object_get(json_object_get(op, "metadata"), "output");

	for (int fd = 1; fd <= 2; fd++) {
		const char *v = lxd_jstr(output, fd == 1 ? "1" : "2");
		size_t len = v ? strcspn(v, "?") : 0;
		ret[fd - 1][0] = '\0';
		if (len == 0 || len >= LXD_LOG_PATH_MAX)
			continue;
		memcpy(ret[fd - 1], v, len);
		ret[fd - 1][len] = '\0';
		if (!exec_log_path_ok(ret[fd - 1], name))
			ret[fd - 1][0] = '\0';
	}
}

/* ---- file listings -------------------------------------------------- */

/* A name a listing may give: one path component, printable. */
static bool entry_name_ok(const char *s)
{
	if (!*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strlen(s) > 255)
		return false;
	for (; *s; s++)
		if (*s == '/' || (unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* A decimal integer (an optional '-') at *c before end, then one space; the cursor moves past it.
 */
static bool listing_int(const char **c, const char *end, int64_t *ret)
{
	const char *p = *c;
	bool neg = p < end && *p == '-';
	int64_t v = 0;

	p += neg;
	if (p == end || *p < '0' || *p > '9')
		return false;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (v > (INT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (*p - '0');
	}
	if (p == end || *p != ' ')
		return false;
	*c = p + 1;
	*ret = neg ? -v : v;
	return true;
}

int lxd_parse_listing(const void *data, size_t len, const struct provider_list_query *q,
                      struct provider_file_list *out)
{
	const char *c = data ? data : "", *end = c + len;
	int64_t files = 0;

	while (c < end) {
		const char *nl = memchr(c, '\n', (size_t)(end - c));
		const char *eol = nl ? nl : end, *p = c;
		struct provider_file f = {0};
		int64_t rank, mtime, size;
		size_t n;

		c = eol + 1;
		if (!listing_int(&p, eol, &rank) || !listing_int(&p, eol, &mtime) ||
		    !listing_int(&p, eol, &size) || rank < 0 || rank > 2 || size < 0)
			continue;
		n = (size_t)(eol - p);
		if (rank == 0) {
			if (n == 1 && *p == '-' && mtime > files)
				files = mtime; /* "0 <files> 0 -" */
			continue;
		}
		if (n == 0 || n >= sizeof(f.name) || memchr(p, '\0', n))
			continue;
		memcpy(f.name, p, n);
		if (!entry_name_ok(f.name))
			continue;
		f.mtime = mtime > 0 ? mtime : 0;
		f.size = size;
		if (provider_file_list_offer(out, q, &f) < 0)
			return -ENOMEM;
	}
	if ((uint64_t)files > out->total)
		out->total = (size_t)files;
	return 0;
}

int lxd_parse_dir(const void *body, size_t len, struct strv *out)
{
	json_t *root, *meta, *v;
	json_error_t je;
	size_t i;
	int r = 0;

	root = json_loadb(body ? body : "", len, 0, &je);
	meta = json_object_get(root, "metadata");
	if (!json_is_array(meta))
		r = -EBADMSG;
	json_array_foreach(meta, i, v)
	{
		const char *ent = json_string_value(v);
		if (r < 0)
			break;
		if (ent && entry_name_ok(ent) && strv_push(out, ent) < 0)
			r = -ENOMEM;
	}
	json_decref(root);
	return r;
}

/* ---- network ACLs --------------------------------------------------- */

void lxd_parse_used_by(const json_t *used_by, char (*out)[LXD_NET_NAME_MAX], size_t cap,
                       size_t *ret_n)
{
	size_t i, n = 0;
	json_t *v;

	json_array_foreach(used_by, i, v)
	{
		const char *s = json_string_value(v);
		size_t len;
		if (!s || !str_has_prefix(s, "/1.0/networks/") || n == cap)
			continue;
		s += strlen("/1.0/networks/");
		len = strcspn(s, "?/");
		if (len == 0 || len >= LXD_NET_NAME_MAX)
			continue;
		memcpy(out[n], s, len);
		out[n][len] = '\0';
		n++;
	}
	*ret_n = n;
}

/*
 * The next item of a comma-separated list (LXD's security.acls), blanks
 * around it trimmed: its start and length; false at the end. *cur moves on.
 */
static bool list_next(const char **cur, const char **ret_item, size_t *ret_len)
{
	const char *c = *cur, *t;
	size_t len, tl;

	if (!c || !*c)
		return false;
	len = strcspn(c, ",");
	t = c;
	tl = len;
	while (tl && *t == ' ')
		t++, tl--;
	while (tl && t[tl - 1] == ' ')
		tl--;
	c += len;
	if (*c == ',')
		c++;
	*cur = c;
	*ret_item = t;
	*ret_len = tl;
	return true;
}

bool lxd_list_has(const char *s, const char *item)
{
	size_t n = strlen(item), tl;
	const char *t;

	while (list_next(&s, &t, &tl))
		if (tl == n && strncmp(t, item, n) == 0)
			return true;
	return false;
}

int lxd_list_edit(const char *s, const char *item, bool add, struct buf *b)
{
	size_t n = strlen(item), tl;
	const char *t;
	int r = 0;

	buf_reset(b);
	if (buf_puts(b, "") < 0)
		return -ENOMEM;
	while (r == 0 && list_next(&s, &t, &tl))
		if (tl && !(tl == n && strncmp(t, item, n) == 0))
			r = buf_printf(b, "%s%.*s", b->len ? "," : "", (int)tl, t);
	if (r == 0 && add)
		r = buf_printf(b, "%s%s", b->len ? "," : "", item);
	return r;
}
