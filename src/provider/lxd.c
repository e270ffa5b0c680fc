/*
 * The `lxd` provider (see lxd.h): LXD's REST API over its unix socket via
 * httpc, JSON through jansson with every field type-checked. It must never
 * put a secret anywhere but the body of the one file push that writes
 * secret.env (no config key, no exec argument, no error message), never
 * touch an instance whose name is not the manager's or whose
 * user.runnerd.manager says another manager made it, never touch a network
 * ACL whose name is not ours, never read an answer without a size cap,
 * never have LXD open an instance's file it has not seen to be regular
 * unless a blocked open can be released, and never log above debug.
 */
#include "util/common.h"
#include "provider/backend.h"
#include "provider/lxd.h"
#include "util/clock.h"
#include "util/httpc.h"
#include "util/strutil.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <pthread.h>

#define LXD_HOST               "http://lxd"
#define LXD_OPS                "/1.0/operations/"
#define LXD_URL_MAX            (16 * 1024)
#define LXD_RESPONSE_MAX       (4u << 20)  /* one instance, one operation, one network */
#define LXD_LIST_MAX           (64u << 20) /* every instance of the project */
#define LXD_DIR_MAX            (1u << 20)  /* a directory listing */
#define LXD_SECRET_MAX         (256 * 1024)
#define LXD_ERRTEXT_MAX        240
#define LXD_FILES_MAX          1000
#define LXD_CONNECT_TIMEOUT_MS 5000
#define LXD_REQUEST_TIMEOUT_MS 30000
#define LXD_WAIT_SLACK_MS      10000 /* beyond LXD's own wait timeout */
#define LXD_EXEC_TIMEOUT       30    /* seconds for a short exec */
#define LXD_CHECK_TIMEOUT      10    /* seconds for a file type check or listing */
#define LXD_PULL_TIMEOUT_MS    10000 /* one file read */
#define LXD_RESCUE_MS          2000  /* a files API read still unanswered: a FIFO */
#define LXD_STUCK_S            600   /* no reads from an instance whose read timed out */
#define LXD_POLL_MS            200
#define LXD_RETRY_MS           500
#define LXD_RETRY_S            30 /* how long a delete keeps trying */
#define LXD_ETAG_TRIES         5
#define LXD_KEY_MANAGER        "user.runnerd.manager"
#define LXD_KEY_FLAVOR         "user.runnerd.flavor"

/*
 * Start the pushed script detached, immune to SIGHUP (what nohup does; not
 * every image has nohup: busybox builds often lack it). The exec bootstrap
 * runs this once the files are there.
 */
static const char lxd_launch_cmd[] = "(trap '' HUP; exec sh " LXD_HOME
                                     "/startup.sh) </dev/null >" LXD_HOME "/startup.log 2>&1 &";

/*
 * The cloud-init user data (run once, at first boot) around the startup
 * script: it writes the script, a quoted here-document (nothing expands),
 * to startup.sh and starts it detached once the marker is there. The
 * marker is pushed last, after secret.env: a container's files are there
 * before it boots, a VM's come through its agent after it booted, so the
 * wait is 10 min at most. The startup script holds no secret
 * (runner/runner_script.h), so neither does the user data.
 */
#define LXD_MARKER        LXD_HOME "/.pushed"
#define LXD_EOF           "RUNNERD_STARTUP_EOF"
#define LXD_USER_DATA_MAX (1u << 20)
static const char lxd_user_data_head[] =
        "#!/bin/sh\n"
        "# runnerd: writes the startup script below to " LXD_HOME "/startup.sh and starts\n"
        "# it once runnerd has pushed its files (" LXD_MARKER " comes last).\n"
        "mkdir -p " LXD_HOME " || exit 1\n"
        "(umask 077 && cat >" LXD_HOME "/startup.sh.new) <<'%s'\n";
static const char lxd_user_data_tail[] =
        "%s\n"
        "chmod 0700 " LXD_HOME "/startup.sh.new &&\n"
        "\tmv -f " LXD_HOME "/startup.sh.new " LXD_HOME "/startup.sh || exit 1\n"
        "(\n"
        "\ttrap '' HUP\n"
        "\ti=0\n"
        "\twhile [ ! -e " LXD_MARKER " ] && [ $i -lt 600 ]; do sleep 1; i=$((i + 1)); done\n"
        "\texec sh " LXD_HOME "/startup.sh\n"
        ") </dev/null >" LXD_HOME "/startup.log 2>&1 &\n";

/*
 * Exit 0: the runner process runs; 1: it does not, though the runner was
 * installed (it died); 2: not yet installed (booting). The [R] keeps this
 * command's own command line from matching.
 */
static const char lxd_health_script[] =
        "pgrep -f '[R]unner.Listener' >/dev/null 2>&1 && exit 0; "
        "grep -qs '[R]unner.Listener' /proc/[0-9]*/cmdline && exit 0; "
        "[ -e " LXD_HOME "/metrics/runner-installed.timestamp ] && exit 1; exit 2";

struct lxd {
	struct httpc *http;
	char *socket;
	char *project;
	char *network;
	char *pool;
	char **profiles;
	size_t n_profiles;
	enum lxd_type type;
	enum lxd_bootstrap bootstrap;
	char manager[MANAGER_NAME_MAX + 1]; /* "" when unknown: no denylist */
	long connect_ms;
	long request_ms;
	int64_t op_timeout;   /* seconds */
	int64_t stop_timeout; /* seconds */
	size_t max_list;      /* bytes */

	pthread_mutex_t trace_lock;
	lxd_trace_fn trace; /* trace_lock */
	void *trace_arg;

	pthread_mutex_t stuck_lock;
	struct {
		char name[INSTANCE_NAME_MAX];
		int64_t until_ms; /* monotonic */
	} stuck[32];              /* stuck_lock */

	pthread_mutex_t deny_lock; /* held across a whole sync: one at a time */
	char **deny;               /* canonical CIDRs to keep (deny_lock) */
	size_t n_deny;
	bool deny_synced; /* deny_lock */
};

/* One request. */
struct lxd_req {
	const char *method; /* NULL = GET */
	const char *path;   /* "/1.0/...", already escaped */
	const char *query;  /* escaped, without project; NULL = none */
	const json_t *json; /* body as JSON, or: */
	const void *body;   /* a raw body (with its own Content-Type header) */
	size_t body_len;
	const char *const *headers;      /* NULL-terminated, may be NULL */
	size_t max_body;                 /* 0 = LXD_RESPONSE_MAX */
	long timeout_ms;                 /* 0 = the request timeout */
	const char *const *want_headers; /* NULL-terminated, may be NULL */
};

/* A parsed JSON answer. */
struct lxd_answer {
	json_t *root;
	json_t *meta; /* borrowed from root; may be NULL */
	char op[80];  /* operation id of an async answer, "" otherwise */
	char etag[160];
};

static void answer_release(struct lxd_answer *a)
{
	json_decref(a->root);
	memset(a, 0, sizeof(*a));
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* ---- URLs ----------------------------------------------------------- */

static bool url_plain(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* Append s percent-encoded (keep_slash: '/' stays as is, for paths). */
static int url_escape(struct buf *b, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	int r = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p && r == 0; p++) {
		if (url_plain(*p) || (keep_slash && *p == '/')) {
			r = buf_append(b, p, 1);
		} else {
			char t[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			r = buf_append(b, t, 3);
		}
	}
	return r;
}

/* "/1.0/<coll>/<escaped name>[<suffix>]" into b. */
static int path_of(struct buf *b, const char *coll, const char *name, const char *suffix)
{
	buf_reset(b);
	if (buf_printf(b, "/1.0/%s/", coll) < 0 || url_escape(b, name, false) < 0 ||
	    (suffix && buf_puts(b, suffix) < 0))
		return -ENAMETOOLONG;
	return 0;
}

/* ---- requests ------------------------------------------------------- */

static int lxd_http(struct lxd *l, const struct lxd_req *q, struct httpc_response *ret,
                    struct err *e)
{
	const char *method = q->method ? q->method : "GET";
	struct buf url = BUF_INIT(LXD_URL_MAX);
	const char *hdrs[16];
	char *json = NULL;
	const void *body = q->body;
	size_t n = 0, body_len = q->body_len;
	lxd_trace_fn trace;
	void *trace_arg;
	int r;

	if (buf_puts(&url, LXD_HOST) < 0 || buf_puts(&url, q->path) < 0 ||
	    buf_puts(&url, "?") < 0 || (q->query && buf_printf(&url, "%s&", q->query) < 0) ||
	    buf_puts(&url, "project=") < 0 || url_escape(&url, l->project, false) < 0) {
		r = err_set(e, -ENAMETOOLONG, "lxd: %s %s: URL too long", method, q->path);
		goto out;
	}
	if (q->json) {
		/* Never holds a secret: secrets only travel as a raw file body. */
		json = json_dumps(q->json, JSON_COMPACT);
		if (!json) {
			r = err_set(e, -ENOMEM, "lxd: out of memory");
			goto out;
		}
		body = json;
		body_len = strlen(json);
		hdrs[n++] = "Content-Type: application/json";
	}
	for (const char *const *h = q->headers; h && *h && n + 1 < ARRAY_SIZE(hdrs); h++)
		hdrs[n++] = *h;
	hdrs[n] = NULL;

	pthread_mutex_lock(&l->trace_lock);
	trace = l->trace;
	trace_arg = l->trace_arg;
	pthread_mutex_unlock(&l->trace_lock);
	if (trace)
		trace(trace_arg, method, buf_str(&url), body, body ? body_len : 0);

	struct httpc_request hr = {
	        .method = method,
	        .url = buf_str(&url),
	        .unix_socket = l->socket,
	        .headers = hdrs,
	        .body = body,
	        .body_len = body_len,
	        .connect_timeout_ms = l->connect_ms,
	        .timeout_ms = q->timeout_ms > 0 ? q->timeout_ms : l->request_ms,
	        .max_body = q->max_body ? q->max_body : LXD_RESPONSE_MAX,
	        .want_headers = q->want_headers,
	};
	r = httpc_perform(l->http, &hr, ret, e);
	if (r == -ECONNREFUSED && e)
		err_prefix(e, "lxd at %s", l->socket);
	else if (r < 0 && e)
		err_prefix(e, "lxd");
out:
	free(json);
	buf_release(&url);
	return r;
}

static int status_errno(long status)
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
	const char *msg = jstr(root, "error");
	json_int_t code = json_integer_value(json_object_get(root, "error_code"));

	if (code >= 400 && code < 600)
		status = (long)code;
	if (msg && *msg)
		errtext(msg, text, sizeof(text));
	else
		snprintf(text, sizeof(text), "HTTP %ld", status);
	return err_set(e, status_errno(status), "lxd: %s %s: %s", method, path, text);
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

/* One request whose answer is LXD's JSON envelope; an error answer is an error. */
static int lxd_call(struct lxd *l, const struct lxd_req *q, struct lxd_answer *ret, struct err *e)
{
	static const char *const want[] = {"Etag", NULL};
	const char *method = q->method ? q->method : "GET";
	struct httpc_response resp = {0};
	struct lxd_answer a = {0};
	struct lxd_req q2 = *q;
	const char *type, *etag;
	json_error_t je;
	int r;

	if (!q2.want_headers)
		q2.want_headers = want;
	r = lxd_http(l, &q2, &resp, e);
	if (r < 0)
		return r;
	a.root = resp.body.len ? json_loadb(resp.body.data, resp.body.len, 0, &je) : NULL;
	if (resp.status >= 400) {
		r = answer_error(method, q->path, resp.status, a.root, e);
		goto out;
	}
	if (!json_is_object(a.root) || !(type = jstr(a.root, "type"))) {
		r = err_set(e, -EBADMSG, "lxd: %s %s: unparsable answer (HTTP %ld)", method,
		            q->path, resp.status);
		goto out;
	}
	if (strcmp(type, "error") == 0) {
		r = answer_error(method, q->path, resp.status, a.root, e);
		goto out;
	}
	if (strcmp(type, "async") == 0) {
		const char *op = jstr(a.root, "operation");
		const char *id = op && str_has_prefix(op, LXD_OPS) ? op + strlen(LXD_OPS) : NULL;
		if (!id || !op_id_valid(id, sizeof(a.op))) {
			r = err_set(e, -EBADMSG, "lxd: %s %s: async answer without an operation",
			            method, q->path);
			goto out;
		}
		str_copy(a.op, id, sizeof(a.op));
	}
	etag = httpc_response_header(&resp, "Etag");
	if (etag)
		str_copy(a.etag, etag, sizeof(a.etag));
	a.meta = json_object_get(a.root, "metadata");
	*ret = a;
	a.root = NULL;
	r = 0;
out:
	json_decref(a.root);
	httpc_response_release(&resp);
	return r;
}

/*
 * Wait until operation id ends (what names it in messages). 0 when it
 * succeeded, with the operation object in *ret_op when asked (a new
 * reference); -EIO with LXD's text when it failed, and when LXD no longer
 * knows it (404: lost, as in an LXD restart: never "the object is gone");
 * -ETIMEDOUT when it did not end within timeout_s, after asking LXD to
 * cancel it when cancel is set.
 */
static int lxd_wait(struct lxd *l, const char *id, int64_t timeout_s, bool cancel, const char *what,
                    json_t **ret_op, struct err *e)
{
	int64_t deadline = clock_mono_ms() + timeout_s * 1000;
	char path[128], query[48];
	int r;

	snprintf(path, sizeof(path), "/1.0/operations/%s/wait", id);
	for (;;) {
		struct lxd_answer a = {0};
		int64_t left = deadline - clock_mono_ms(), t0 = clock_mono_ms();
		json_int_t sc;

		if (left <= 0) {
			char cpath[128];
			struct lxd_req cq = {.method = "DELETE", .path = cpath};
			snprintf(cpath, sizeof(cpath), "/1.0/operations/%s", id);
			if (cancel && lxd_call(l, &cq, &a, NULL) == 0)
				answer_release(&a);
			return err_set(e, -ETIMEDOUT, "lxd: %s: not done after %" PRId64 "s", what,
			               timeout_s);
		}
		snprintf(query, sizeof(query), "timeout=%" PRId64, (left + 999) / 1000);
		struct lxd_req q = {
		        .path = path, .query = query, .timeout_ms = left + LXD_WAIT_SLACK_MS};
		r = lxd_call(l, &q, &a, e);
		if (r == -ENOENT)
			return err_set(e, -EIO, "lxd: %s: operation lost (LXD restarted?)", what);
		if (r < 0) {
			if (e)
				err_prefix(e, "%s", what);
			return r;
		}
		if (!json_is_object(a.meta) ||
		    !json_is_integer(json_object_get(a.meta, "status_code"))) {
			answer_release(&a);
			return err_set(e, -EBADMSG, "lxd: %s: unparsable operation", what);
		}
		sc = json_integer_value(json_object_get(a.meta, "status_code"));
		if (sc == 200) {
			if (ret_op)
				*ret_op = json_incref(a.meta);
			answer_release(&a);
			return 0;
		}
		if (sc == 400 || sc == 401) {
			char text[LXD_ERRTEXT_MAX + 8];
			const char *err = jstr(a.meta, "err");
			errtext(err && *err ? err : (sc == 401 ? "cancelled" : "failed"), text,
			        sizeof(text));
			answer_release(&a);
			return err_set(e, -EIO, "lxd: %s: %s", what, text);
		}
		answer_release(&a);
		/* Still running: LXD answered before its timeout; do not spin. */
		if (clock_mono_ms() - t0 < LXD_POLL_MS)
			sleep_ms(LXD_POLL_MS);
	}
}

/* A request that starts an operation, then its wait. */
static int lxd_run(struct lxd *l, const struct lxd_req *q, int64_t timeout_s, const char *what,
                   json_t **ret_op, struct err *e)
{
	struct lxd_answer a = {0};
	int r = lxd_call(l, q, &a, e);

	if (r < 0)
		return r;
	if (!a.op[0]) {
		answer_release(&a);
		return err_set(e, -EBADMSG, "lxd: %s: expected an operation", what);
	}
	r = lxd_wait(l, a.op, timeout_s, true, what, ret_op, e);
	answer_release(&a);
	return r;
}

/* ---- instances ------------------------------------------------------ */

static int check_name(const char *name, struct err *e)
{
	if (!name || !name_is_valid(name, INSTANCE_NAME_MAX - 1))
		return err_set(e, -EINVAL, "lxd: invalid instance name");
	return 0;
}

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

/*
 * An instance object -> *ret; *ret_owner is its user.runnerd.manager (NULL
 * when absent or not a string). -EBADMSG when a field has the wrong type.
 */
static int instance_parse(const json_t *o, struct instance *ret, const char **ret_owner)
{
	const json_t *config = json_object_get(o, "config");
	const char *name = jstr(o, "name"), *status = jstr(o, "status");
	const char *flavor, *created;
	struct instance in = {0};

	if (!json_is_object(o) || !name || !status || !json_is_object(config))
		return -EBADMSG;
	created = jstr(o, "created_at");
	flavor = jstr(config, LXD_KEY_FLAVOR);
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
	*ret_owner = jstr(config, LXD_KEY_MANAGER);
	*ret = in;
	return 0;
}

/* GET one instance: -ENOENT when missing. *ret_owner points into *ret_ans (release it). */
static int instance_fetch(struct lxd *l, const char *name, struct instance *ret,
                          const char **ret_owner, struct lxd_answer *ret_ans, struct err *e)
{
	struct buf path = BUF_INIT(512);
	struct lxd_answer a = {0};
	int r;

	if (path_of(&path, "instances", name, NULL) < 0)
		return err_set(e, -ENAMETOOLONG, "lxd: name too long");
	struct lxd_req q = {.path = buf_str(&path)};
	r = lxd_call(l, &q, &a, e);
	if (r == -ENOENT) {
		r = err_set(e, -ENOENT, "lxd: instance %s: not found", name);
		goto out;
	}
	if (r < 0)
		goto out;
	if (instance_parse(a.meta, ret, ret_owner) < 0) {
		r = err_set(e, -EBADMSG, "lxd: instance %s: unparsable answer", name);
		goto out;
	}
	*ret_ans = a;
	a.root = NULL;
out:
	answer_release(&a);
	buf_release(&path);
	return r;
}

static bool owner_is(const struct lxd *l, const char *owner)
{
	return !l->manager[0] || (owner && strcmp(owner, l->manager) == 0);
}

static int lxd_get(struct provider *p, const struct provider_call *c, const char *name,
                   struct instance *ret, struct err *e)
{
	struct lxd *l = p->priv;
	struct lxd_answer a = {0};
	struct instance in;
	const char *owner;
	int r;

	if (check_name(name, e) < 0)
		return -EINVAL;
	if (l->manager[0] && !name_is_owned(l->manager, name))
		return err_set(e, -ENOENT, "lxd: %s is not a name of manager %s", name, l->manager);
	r = instance_fetch(l, name, &in, &owner, &a, e);
	if (r < 0)
		return r;
	if (!owner_is(l, owner)) {
		answer_release(&a);
		return err_set(e, -ENOENT, "lxd: instance %s: not made by manager %s", name,
		               l->manager);
	}
	answer_release(&a);
	*ret = in;
	return 0;
}

static int lxd_list(struct provider *p, const struct provider_call *c, struct instance_list *ret,
                    struct err *e)
{
	const char *manager = p->manager;
	struct lxd *l = p->priv;
	struct instance_list out = {0};
	struct lxd_answer a = {0};
	size_t i;
	json_t *o;
	int r;

	struct lxd_req q = {
	        .path = "/1.0/instances", .query = "recursion=1", .max_body = l->max_list};
	r = lxd_call(l, &q, &a, e);
	if (r < 0)
		return r;
	if (!json_is_array(a.meta)) {
		r = err_set(e, -EBADMSG, "lxd: list: unparsable answer");
		goto out;
	}
	json_array_foreach(a.meta, i, o)
	{
		struct instance in;
		const char *owner;
		if (instance_parse(o, &in, &owner) < 0) {
			r = err_set(e, -EBADMSG, "lxd: list: unparsable instance #%zu", i);
			goto out;
		}
		if (!name_is_owned(manager, in.name) || !owner || strcmp(owner, manager) != 0)
			continue;
		if (instance_list_add(&out, &in) < 0) {
			r = err_set(e, -ENOMEM, "lxd: list: out of memory");
			goto out;
		}
	}
	instance_list_release(ret);
	*ret = out;
	out.v = NULL;
out:
	instance_list_release(&out);
	answer_release(&a);
	return r;
}

/* PUT .../state {"action": action, ...} and wait. */
static int instance_state_change(struct lxd *l, const char *name, json_t *body, int64_t timeout_s,
                                 const char *what, struct err *e)
{
	struct buf path = BUF_INIT(512);
	char w[INSTANCE_NAME_MAX + 32];
	int r;

	if (!body)
		return err_set(e, -ENOMEM, "lxd: out of memory");
	snprintf(w, sizeof(w), "%s %s", what, name);
	if (path_of(&path, "instances", name, "/state") < 0)
		r = err_set(e, -ENAMETOOLONG, "lxd: name too long");
	else
		r = lxd_run(
		        l, &(struct lxd_req){.method = "PUT", .path = buf_str(&path), .json = body},
		        timeout_s, w, NULL, e);
	json_decref(body);
	buf_release(&path);
	return r;
}

/* Status of name right now: -ENOENT when missing. */
static int instance_status(struct lxd *l, const char *name, enum cloud_state *ret, struct err *e)
{
	struct lxd_answer a = {0};
	struct instance in;
	const char *owner;
	int r = instance_fetch(l, name, &in, &owner, &a, e);

	if (r == 0)
		*ret = in.state;
	answer_release(&a);
	return r;
}

/*
 * Stop name: gracefully for stop_timeout seconds when graceful, then by
 * force. 0 once it is stopped (or gone).
 */
static int instance_stop(struct lxd *l, const char *name, bool graceful, struct err *e)
{
	enum cloud_state s;
	int r;

	if (graceful && l->stop_timeout > 0) {
		/* Its failure (timed out, already stopped) is judged by the state. */
		(void)instance_state_change(l, name,
		                            json_pack("{s:s, s:I}", "action", "stop", "timeout",
		                                      (json_int_t)l->stop_timeout),
		                            l->stop_timeout + LXD_WAIT_SLACK_MS / 1000, "stop",
		                            NULL);
		r = instance_status(l, name, &s, e);
		if (r == -ENOENT || (r == 0 && s == CLOUD_STOPPED))
			return 0;
	}
	r = instance_state_change(l, name, json_pack("{s:s, s:b}", "action", "stop", "force", 1),
	                          l->op_timeout, "force stop", e);
	if (r < 0) {
		struct err e2 = {0};
		int r2 = instance_status(l, name, &s, &e2);
		if (r2 == -ENOENT || (r2 == 0 && s == CLOUD_STOPPED))
			return 0; /* "already stopped" */
	}
	return r;
}

/*
 * Stop and delete name. Success only once a fetch of it answers 404: the
 * answer to a DELETE alone is not trusted (its operation may be lost in
 * an LXD restart, and the instance left). Refuses (-EPERM) an instance
 * another manager made. Retried for up to LXD_RETRY_S seconds: LXD 5.0
 * keeps an instance "busy running a stop operation" for a moment after a
 * graceful stop timed out, an image's init may restart it between the stop
 * and the delete, and LXD may be restarting.
 */
static int instance_remove(struct lxd *l, const char *name, bool graceful, struct err *e)
{
	struct buf path = BUF_INIT(512);
	char what[INSTANCE_NAME_MAX + 16];
	int64_t limit = l->op_timeout < LXD_RETRY_S ? l->op_timeout : LXD_RETRY_S;
	int64_t deadline = clock_mono_ms() + limit * 1000;
	int r = 0, act = 0;

	if (path_of(&path, "instances", name, NULL) < 0)
		return err_set(e, -ENAMETOOLONG, "lxd: name too long");
	snprintf(what, sizeof(what), "delete %s", name);
	for (int i = 0;; i++) {
		struct lxd_answer a = {0};
		struct instance in;
		const char *owner;

		if (i > 0 && act < 0)
			sleep_ms(LXD_RETRY_MS);
		r = instance_fetch(l, name, &in, &owner, &a, e);
		if (r == -ENOENT) {
			err_clear(e);
			r = 0;
			break;
		}
		if (r == 0 && !owner_is(l, owner)) {
			answer_release(&a);
			r = err_set(e, -EPERM, "lxd: delete %s: not made by manager %s", name,
			            l->manager);
			break;
		}
		answer_release(&a);
		if (clock_mono_ms() >= deadline) {
			if (r == 0 && act >= 0)
				r = err_set(e, -EIO,
				            "lxd: delete %s: still there after %" PRId64 "s", name,
				            limit);
			else if (r == 0)
				r = act; /* its message is in e */
			break;
		}
		if (r < 0) {
			act = r; /* LXD unreachable, restarting: try again */
			continue;
		}
		if (in.state != CLOUD_STOPPED) {
			act = instance_stop(l, name, graceful && i == 0, e);
			if (act == -ETIMEDOUT) {
				r = act;
				break;
			}
			if (graceful && i == 0) /* the retries' time starts after it */
				deadline = clock_mono_ms() + limit * 1000;
			if (act < 0)
				continue;
		}
		act = lxd_run(l, &(struct lxd_req){.method = "DELETE", .path = buf_str(&path)},
		              l->op_timeout, what, NULL, e);
		if (act == -ENOENT)
			act = 0;
		/* Either way, the next fetch tells whether it is gone. */
	}
	buf_release(&path);
	return r;
}

static int lxd_delete(struct provider *p, const struct provider_call *c, const char *name,
                      struct err *e)
{
	struct lxd *l = p->priv;

	if (check_name(name, e) < 0)
		return -EINVAL;
	if (l->manager[0] && !name_is_owned(l->manager, name))
		return err_set(e, -EPERM, "lxd: delete %s: not a name of manager %s", name,
		               l->manager);
	return instance_remove(l, name, true, e);
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
		if (!url_plain((unsigned char)*s) && *s != '/')
			return false;
	return true;
}

/*
 * GET then DELETE the exec output logs an operation names (its stdout into
 * ret_out, at most ret_out's cap); -E2BIG over the cap. The logs live on
 * the host until deleted, so they are deleted whatever happens.
 */
static int exec_output(struct lxd *l, const char *name, const json_t *op, struct buf *ret_out,
                       struct err *e)
{
	const json_t *output = json_object_get(json_object_get(op, "metadata"), "output");
	char paths[2][256] = {"", ""};
	int r = 0;

	for (int fd = 1; fd <= 2; fd++) {
		const char *v = jstr(output, fd == 1 ? "1" : "2");
		size_t len = v ? strcspn(v, "?") : 0;
		if (len == 0 || len >= sizeof(paths[0]))
			continue;
		memcpy(paths[fd - 1], v, len);
		paths[fd - 1][len] = '\0';
		if (!exec_log_path_ok(paths[fd - 1], name))
			paths[fd - 1][0] = '\0';
	}
	if (!paths[0][0]) {
		r = err_set(e, -EBADMSG, "lxd: exec in %s: no output log", name);
	} else {
		struct httpc_response resp = {0};
		r = lxd_http(l, &(struct lxd_req){.path = paths[0], .max_body = ret_out->max},
		             &resp, e);
		if (r == 0 && resp.status != 200)
			r = err_set(e, status_errno(resp.status),
			            "lxd: exec in %s: output log: HTTP %ld", name, resp.status);
		if (r == 0 &&
		    buf_append(ret_out, resp.body.data ? resp.body.data : "", resp.body.len) < 0)
			r = err_set(e, -E2BIG, "lxd: exec in %s: output too large", name);
		httpc_response_release(&resp);
	}
	for (int i = 0; i < 2; i++) {
		struct lxd_answer a = {0};
		if (paths[i][0] &&
		    lxd_call(l, &(struct lxd_req){.method = "DELETE", .path = paths[i]}, &a,
		             NULL) == 0)
			answer_release(&a);
	}
	return r;
}

/*
 * Run argv in the instance: no websocket, no terminal. *ret_rc is its exit
 * status. Its standard output is recorded into *ret_out (appended, at most
 * its cap) when ret_out is not NULL; otherwise it is not kept.
 */
static int instance_exec_out(struct lxd *l, const char *name, const char *const *argv,
                             int64_t timeout_s, int *ret_rc, struct buf *ret_out, struct err *e)
{
	struct buf path = BUF_INIT(512);
	char what[INSTANCE_NAME_MAX + 16];
	json_t *body = NULL, *cmd = json_array(), *op = NULL, *rc;
	int r;

	for (const char *const *a = argv; cmd && *a; a++)
		if (json_array_append_new(cmd, json_string(*a)) < 0) {
			json_decref(cmd);
			cmd = NULL;
		}
	if (cmd)
		body = json_pack("{s:o, s:b, s:b, s:b}", "command", cmd, "wait-for-websocket", 0,
		                 "interactive", 0, "record-output", ret_out != NULL);
	if (!body) {
		r = err_set(e, -ENOMEM, "lxd: out of memory");
		goto out;
	}
	if (path_of(&path, "instances", name, "/exec") < 0) {
		r = err_set(e, -ENAMETOOLONG, "lxd: name too long");
		goto out;
	}
	snprintf(what, sizeof(what), "exec in %s", name);
	r = lxd_run(l, &(struct lxd_req){.method = "POST", .path = buf_str(&path), .json = body},
	            timeout_s, what, &op, e);
	if (r < 0)
		goto out;
	rc = json_object_get(json_object_get(op, "metadata"), "return");
	if (!json_is_integer(rc)) {
		r = err_set(e, -EBADMSG, "lxd: %s: no return code", what);
		goto out;
	}
	if (ret_out) {
		r = exec_output(l, name, op, ret_out, e);
		if (r < 0)
			goto out;
	}
	*ret_rc = (int)json_integer_value(rc);
out:
	json_decref(op);
	json_decref(body);
	buf_release(&path);
	return r;
}

static int instance_exec(struct lxd *l, const char *name, const char *const *argv,
                         int64_t timeout_s, int *ret_rc, struct err *e)
{
	return instance_exec_out(l, name, argv, timeout_s, ret_rc, NULL, e);
}

static int lxd_health(struct provider *p, const struct provider_call *c, const char *name,
                      enum health *ret, struct err *e)
{
	static const char *const argv[] = {"/bin/sh", "-c", lxd_health_script, NULL};
	struct lxd *l = p->priv;
	struct instance in;
	int r, rc = -1;

	r = lxd_get(p, c, name, &in, e);
	if (r == -ENOENT) {
		err_clear(e);
		*ret = HEALTH_UNKNOWN;
		return 0;
	}
	if (r < 0)
		return r;
	if (in.state != CLOUD_ACTIVE) {
		*ret = health_from_state(in.state);
		return 0;
	}
	r = instance_exec(l, name, argv, LXD_EXEC_TIMEOUT, &rc, e);
	if (r == -EIO || r == -EINVAL || r == -EAGAIN || r == -ENOENT) {
		/* LXD refused the exec (a VM whose agent is not up yet): nothing known. */
		err_clear(e);
		*ret = HEALTH_UNKNOWN;
		return 0;
	}
	if (r < 0)
		return r;
	*ret = rc == 0 ? HEALTH_HEALTHY : rc == 1 ? HEALTH_UNHEALTHY : HEALTH_UNKNOWN;
	return 0;
}

/* ---- files ---------------------------------------------------------- */

/* path inside the instance: absolute, or relative to LXD_HOME; no "..", no control characters. */
static int file_path(const char *path, char *out, size_t cap)
{
	const char *c;

	if (!path || !*path)
		return -EINVAL;
	for (c = path; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return -EINVAL;
	for (c = path; *c;) {
		size_t n = strcspn(c, "/");
		if (n == 2 && c[0] == '.' && c[1] == '.')
			return -EINVAL;
		c += n;
		while (*c == '/')
			c++;
	}
	if ((size_t)snprintf(out, cap, "%s%s", path[0] == '/' ? "" : LXD_HOME "/", path) >= cap)
		return -ENAMETOOLONG;
	return 0;
}

/* The files API's URL path (p) and query (q) for path in instance name. */
static int files_target(struct buf *p, struct buf *q, const char *name, const char *path,
                        struct err *e)
{
	buf_reset(q);
	if (path_of(p, "instances", name, "/files") < 0 || buf_puts(q, "path=") < 0 ||
	    url_escape(q, path, true) < 0)
		return err_set(e, -ENAMETOOLONG, "lxd: %s: path too long", path);
	return 0;
}

/* Write data to path as root with mode (directory when dir). */
static int file_push(struct lxd *l, const char *name, const char *path, bool dir, const char *mode,
                     const void *data, size_t len, struct err *e)
{
	struct buf p = BUF_INIT(512), q = BUF_INIT(8192);
	char hmode[32];
	struct lxd_answer a = {0};
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
	r = files_target(&p, &q, name, path, e);
	if (r < 0) {
		buf_release(&p);
		buf_release(&q);
		return r;
	}
	struct lxd_req rq = {.method = "POST",
	                     .path = buf_str(&p),
	                     .query = buf_str(&q),
	                     .body = dir ? "" : data,
	                     .body_len = dir ? 0 : len,
	                     .headers = hdrs};
	r = lxd_call(l, &rq, &a, e);
	if (r < 0 && e)
		err_prefix(e, "push %s into %s", path, name);
	answer_release(&a);
	buf_release(&p);
	buf_release(&q);
	return r;
}

/* X-LXD-type of path ("file", "directory", "symlink") through HEAD; -ENOENT when missing. */
static int file_type(struct lxd *l, const char *name, const char *path, char *ret, size_t cap,
                     struct err *e)
{
	static const char *const want[] = {"X-LXD-type", NULL};
	struct buf p = BUF_INIT(512), q = BUF_INIT(8192);
	struct httpc_response resp = {0};
	const char *t;
	int r;

	r = files_target(&p, &q, name, path, e);
	if (r < 0)
		goto out;
	r = lxd_http(l,
	             &(struct lxd_req){.method = "HEAD",
	                               .path = buf_str(&p),
	                               .query = buf_str(&q),
	                               .want_headers = want},
	             &resp, e);
	if (r < 0)
		goto out;
	if (resp.status == 404) {
		r = err_set(e, -ENOENT, "lxd: %s in %s: not found", path, name);
		goto out;
	}
	t = httpc_response_header(&resp, "X-LXD-type");
	if (resp.status != 200 || !t) {
		r = err_set(e, status_errno(resp.status), "lxd: HEAD %s in %s: HTTP %ld", path,
		            name, resp.status);
		goto out;
	}
	str_copy(ret, t, cap);
out:
	httpc_response_release(&resp);
	buf_release(&p);
	buf_release(&q);
	return r;
}

/*
 * GET a file through the files API: the body is capped at max_body, the
 * request at timeout_ms, and its X-LXD-type put in type. -ENOENT when
 * missing, -E2BIG over the cap, -ETIMEDOUT (a FIFO: LXD opens it and
 * waits for a writer).
 */
static int file_get(struct lxd *l, const char *name, const char *path, size_t max_body,
                    long timeout_ms, struct httpc_response *ret, char *type, size_t type_cap,
                    struct err *e)
{
	static const char *const want[] = {"X-LXD-type", NULL};
	struct buf p = BUF_INIT(512), q = BUF_INIT(8192);
	struct httpc_response resp = {0};
	struct err e2 = {0};
	const char *t;
	int r;

	r = files_target(&p, &q, name, path, e);
	if (r < 0)
		goto out;
	r = lxd_http(l,
	             &(struct lxd_req){.path = buf_str(&p),
	                               .query = buf_str(&q),
	                               .max_body = max_body,
	                               .timeout_ms = timeout_ms,
	                               .want_headers = want},
	             &resp, &e2);
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
		json_error_t je;
		json_t *root =
		        json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &je);
		char what[128];
		snprintf(what, sizeof(what), "GET %s in", path);
		r = answer_error(what, name, resp.status, root, e);
		json_decref(root);
		goto out;
	}
	t = httpc_response_header(&resp, "X-LXD-type");
	str_copy(type, t ? t : "", type_cap);
	*ret = resp;
	memset(&resp, 0, sizeof(resp));
out:
	httpc_response_release(&resp);
	buf_release(&p);
	buf_release(&q);
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
 * The regular files (not symlinks) in directory $1, one name a line
 * (names holding a newline left out). Exit 3: missing; 4: not a directory
 * (a symlink to one included).
 */
static const char lxd_listdir_script[] =
        "[ -L \"$1\" ] && exit 4\n"
        "[ -d \"$1\" ] || { [ -e \"$1\" ] && exit 4; exit 3; }\n"
        "cd \"$1\" || exit 5\n"
        "nl='\n"
        "'\n"
        "for f in * .[!.]* ..?*; do\n"
        "\tcase $f in *\"$nl\"*) continue ;; esac\n"
        "\t[ -f \"$f\" ] && [ ! -L \"$f\" ] && printf '%s\\n' \"$f\"\n"
        "done\n"
        "exit 0\n";

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
static int file_read_exec(struct lxd *l, const char *name, const char *full, struct buf *ret)
{
	char n[32];
	int r, rc = -1;

	snprintf(n, sizeof(n), "%zu", ret->max);
	const char *const argv[] = {"/bin/sh", "-c", lxd_read_script, "sh", full, n, NULL};
	r = instance_exec_out(l, name, argv, LXD_CHECK_TIMEOUT, &rc, ret, NULL);
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
	const char *name, *path;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;  /* the GET has returned (lock) */
	bool fired; /* the write was sent (lock) */
};

static void *rescue_main(void *arg)
{
	struct rescue *x = arg;
	struct buf p = BUF_INIT(512), q = BUF_INIT(8192);
	struct timespec ts;
	bool go;

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
	if (go && files_target(&p, &q, x->name, x->path, NULL) == 0) {
		static const char *const hdrs[] = {"Content-Type: application/octet-stream",
		                                   "X-LXD-type: file", "X-LXD-write: append", NULL};
		struct lxd_answer a = {0};
		if (lxd_call(x->l,
		             &(struct lxd_req){.method = "POST",
		                               .path = buf_str(&p),
		                               .query = buf_str(&q),
		                               .body = "",
		                               .body_len = 0,
		                               .headers = hdrs,
		                               .timeout_ms = LXD_PULL_TIMEOUT_MS},
		             &a, NULL) == 0)
			answer_release(&a);
	}
	buf_release(&p);
	buf_release(&q);
	return NULL;
}

/*
 * Through the files API (see above): LXD's type first (a HEAD does not
 * open), then the GET, rescued when it blocks. 0 with the content in *ret,
 * -ENOENT, -EINVAL (not a regular file), -E2BIG, -ETIMEDOUT, ...
 */
static int file_read_api(struct lxd *l, const char *name, const char *full, struct buf *ret,
                         struct err *e)
{
	struct httpc_response resp = {0};
	struct rescue x = {.l = l, .name = name, .path = full};
	pthread_condattr_t ca;
	pthread_t th;
	char type[32];
	bool fired;
	int r;

	if (stuck_is(l, name))
		return err_set(e, -ETIMEDOUT, "lxd: %s in %s: skipped: an earlier read timed out",
		               full, name);
	r = file_type(l, name, full, type, sizeof(type), e);
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
	r = file_get(l, name, full, ret->max < SIZE_MAX ? ret->max + 1 : ret->max,
	             LXD_PULL_TIMEOUT_MS, &resp, type, sizeof(type), e);
	pthread_mutex_lock(&x.lock);
	x.done = true;
	fired = x.fired;
	pthread_cond_signal(&x.cond);
	pthread_mutex_unlock(&x.lock);
	pthread_join(th, NULL);
	if (r == -ETIMEDOUT)
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

static int lxd_pull_file(struct provider *p, const struct provider_call *c, const char *name,
                         const char *path, size_t max_bytes, struct buf *ret, struct err *e)
{
	struct lxd *l = p->priv;
	char full[PATH_MAX];
	struct buf b = BUF_INIT(max_bytes < SIZE_MAX ? max_bytes + 1 : max_bytes);
	int r;

	if (check_name(name, e) < 0)
		return -EINVAL;
	if (l->manager[0] && !name_is_owned(l->manager, name))
		return err_set(e, -ENOENT, "lxd: %s is not a name of manager %s", name, l->manager);
	r = file_path(path, full, sizeof(full));
	if (r < 0)
		return err_set(e, r, "lxd: pull %s: bad path", name);
	r = file_read_exec(l, name, full, &b);
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
		r = file_read_api(l, name, full, &b, e);
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

static bool entry_name_ok(const char *s)
{
	if (!*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strlen(s) > 255)
		return false;
	for (; *s; s++)
		if (*s == '/' || (unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* Names in the listing script's output, one a line, into *out. */
static int listing_parse(const struct buf *b, const char *full, const char *name, struct strv *out,
                         struct err *e)
{
	const char *c = b->data ? b->data : "", *end = c + b->len;

	while (c < end) {
		const char *nl = memchr(c, '\n', (size_t)(end - c));
		size_t n = nl ? (size_t)(nl - c) : (size_t)(end - c);
		char ent[256];
		if (n > 0 && n < sizeof(ent) && !memchr(c, '\0', n)) {
			memcpy(ent, c, n);
			ent[n] = '\0';
			if (entry_name_ok(ent)) {
				if (out->n >= LXD_FILES_MAX)
					return err_set(e, -E2BIG,
					               "lxd: %s in %s: more than %d files", full,
					               name, LXD_FILES_MAX);
				if (strv_push_n(out, ent, n) < 0)
					return err_set(e, -ENOMEM, "lxd: out of memory");
			}
		}
		c += n + 1;
	}
	return 0;
}

/*
 * Without exec (a stopped instance): LXD's listing, its entries' types
 * through HEAD, which does not open them: directories and symlinks are
 * left out, but LXD 5.0 calls a FIFO, a socket or a device "file" too, so
 * those are listed and pull_file refuses them.
 */
static int listing_api(struct lxd *l, const char *name, const char *full, struct strv *out,
                       struct err *e)
{
	struct httpc_response resp = {0};
	json_t *root = NULL, *meta, *v;
	char type[32];
	json_error_t je;
	size_t i;
	int r;

	r = file_type(l, name, full, type, sizeof(type), e);
	if (r < 0)
		return r;
	if (strcmp(type, "directory") != 0)
		return err_set(e, -ENOTDIR, "lxd: %s in %s: not a directory", full, name);
	r = file_get(l, name, full, LXD_DIR_MAX, 0, &resp, type, sizeof(type), e);
	if (r < 0)
		goto out;
	if (strcmp(type, "directory") != 0) {
		r = err_set(e, -ENOTDIR, "lxd: %s in %s: not a directory", full, name);
		goto out;
	}
	root = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &je);
	meta = json_object_get(root, "metadata");
	if (!json_is_array(meta)) {
		r = err_set(e, -EBADMSG, "lxd: %s in %s: unparsable listing", full, name);
		goto out;
	}
	if (json_array_size(meta) > LXD_FILES_MAX) {
		r = err_set(e, -E2BIG, "lxd: %s in %s: more than %d entries", full, name,
		            LXD_FILES_MAX);
		goto out;
	}
	json_array_foreach(meta, i, v)
	{
		const char *ent = json_string_value(v);
		char epath[PATH_MAX], etype[32];
		struct err e2 = {0};
		if (!ent || !entry_name_ok(ent))
			continue;
		if ((size_t)snprintf(epath, sizeof(epath), "%s/%s", full, ent) >= sizeof(epath))
			continue;
		r = file_type(l, name, epath, etype, sizeof(etype), &e2);
		if (r == -ENOENT)
			continue;
		if (r < 0) {
			if (e)
				*e = e2;
			goto out;
		}
		if (strcmp(etype, "file") != 0)
			continue;
		if (strv_push(out, ent) < 0) {
			r = err_set(e, -ENOMEM, "lxd: out of memory");
			goto out;
		}
	}
	r = 0;
out:
	json_decref(root);
	httpc_response_release(&resp);
	return r;
}

static int lxd_list_files(struct provider *p, const struct provider_call *c, const char *name,
                          const char *dir, struct strv *ret, struct err *e)
{
	struct lxd *l = p->priv;
	struct buf out = BUF_INIT(LXD_DIR_MAX);
	struct strv v = {0};
	char full[PATH_MAX];
	struct err e2 = {0};
	int r, rc = -1;

	if (check_name(name, e) < 0)
		return -EINVAL;
	if (l->manager[0] && !name_is_owned(l->manager, name))
		return err_set(e, -ENOENT, "lxd: %s is not a name of manager %s", name, l->manager);
	r = file_path(dir, full, sizeof(full));
	if (r < 0)
		return err_set(e, r, "lxd: list files of %s: bad path", name);
	const char *const argv[] = {"/bin/sh", "-c", lxd_listdir_script, "sh", full, NULL};
	r = instance_exec_out(l, name, argv, LXD_CHECK_TIMEOUT, &rc, &out, &e2);
	if (r == -E2BIG) {
		r = err_set(e, -E2BIG, "lxd: %s in %s: listing larger than %u bytes", full, name,
		            LXD_DIR_MAX);
	} else if (r == 0 && rc == 3) {
		r = err_set(e, -ENOENT, "lxd: %s in %s: not found", full, name);
	} else if (r == 0 && rc == 4) {
		r = err_set(e, -ENOTDIR, "lxd: %s in %s: not a directory", full, name);
	} else if (r == 0 && rc == 0) {
		r = listing_parse(&out, full, name, &v, e);
	} else {
		r = listing_api(l, name, full, &v, e);
	}
	if (r == 0) {
		if (!v.v && !(v.v = calloc(1, sizeof(*v.v))))
			r = err_set(e, -ENOMEM, "lxd: out of memory");
	}
	if (r == 0) {
		strv_release(ret);
		*ret = v;
		v.v = NULL;
		v.n = 0;
	}
	strv_release(&v);
	buf_release(&out);
	return r;
}

/* ---- create --------------------------------------------------------- */

/* Does text hold line as one whole line? */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *c = text; (c = strstr(c, line)); c++)
		if ((c == text || c[-1] == '\n') && (c[n] == '\n' || c[n] == '\0'))
			return true;
	return false;
}

/* The cloud-init user data for script (malloc'ed), NULL when out of memory or too big. */
static char *user_data(const char *script)
{
	struct buf b = BUF_INIT(LXD_USER_DATA_MAX);
	size_t n = strlen(script);
	char eof[48];

	/* a delimiter that is no line of the script */
	str_copy(eof, LXD_EOF, sizeof(eof));
	for (unsigned i = 1; has_line(script, eof); i++)
		snprintf(eof, sizeof(eof), "%s_%u", LXD_EOF, i);
	if (buf_printf(&b, lxd_user_data_head, eof) < 0 || buf_append(&b, script, n) < 0 ||
	    (n > 0 && script[n - 1] != '\n' && buf_puts(&b, "\n") < 0) ||
	    buf_printf(&b, lxd_user_data_tail, eof) < 0) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

static json_t *instance_body(const struct lxd *l, const struct instance_spec *spec)
{
	const struct config_flavor *f = spec->flavor;
	char cpu[24], mem[24], disk[24];
	json_t *config, *devices, *profiles = json_array(), *body = NULL;

	snprintf(cpu, sizeof(cpu), "%" PRId64, f->resources.vcpu);
	snprintf(mem, sizeof(mem), "%" PRId64, f->resources.memory);
	snprintf(disk, sizeof(disk), "%" PRId64, f->resources.disk);
	for (size_t i = 0; profiles && i < l->n_profiles; i++)
		if (json_array_append_new(profiles, json_string(l->profiles[i])) < 0) {
			json_decref(profiles);
			profiles = NULL;
		}
	if (!profiles)
		return NULL;
	config = json_pack("{s:s, s:s, s:s, s:s}", "limits.cpu", cpu, "limits.memory", mem,
	                   LXD_KEY_MANAGER, l->manager, LXD_KEY_FLAVOR, f->name ? f->name : "");
	if (config && l->bootstrap == LXD_BOOTSTRAP_CLOUD_INIT) {
		char *ud = user_data(spec->startup_script);
		if (!ud ||
		    json_object_set_new(config, "cloud-init.user-data", json_string(ud)) < 0 ||
		    json_object_set_new(config, "user.user-data", json_string(ud)) < 0) {
			json_decref(config);
			config = NULL;
		}
		free(ud);
	}
	devices = json_pack("{s:{s:s, s:s, s:s, s:s}, s:{s:s, s:s}}", "root", "type", "disk",
	                    "path", "/", "pool", l->pool, "size", disk, "eth0", "type", "nic",
	                    "network", l->network);
	if (config && devices)
		body = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o, s:o, s:o}", "name", spec->name,
		                 "type", l->type == LXD_VM ? "virtual-machine" : "container",
		                 "source", "type", "image", "alias", f->image, "profiles", profiles,
		                 "config", config, "devices", devices);
	else {
		json_decref(profiles);
		json_decref(config);
		json_decref(devices);
	}
	return body;
}

/*
 * /opt, /opt/runnerd, startup.sh (the exec bootstrap: the cloud-init user
 * data carries it) and secret.env, then for cloud-init the marker; into a
 * container while it is stopped.
 */
static int instance_populate(struct lxd *l, const struct instance_spec *spec, struct err *e)
{
	char type[32];
	int r;

	/* The files API makes no parents; an existing /opt keeps its mode. */
	r = file_type(l, spec->name, "/opt", type, sizeof(type), e);
	if (r < 0) {
		err_clear(e);
		r = file_push(l, spec->name, "/opt", true, "0755", NULL, 0, e);
	}
	if (r < 0)
		return r;
	r = file_push(l, spec->name, LXD_HOME, true, "0755", NULL, 0, e);
	if (r < 0)
		return r;
	if (l->bootstrap == LXD_BOOTSTRAP_EXEC)
		r = file_push(l, spec->name, LXD_HOME "/startup.sh", false, "0700",
		              spec->startup_script, strlen(spec->startup_script), e);
	if (r < 0)
		return r;
	if (spec->secret_env && *spec->secret_env)
		r = file_push(l, spec->name, LXD_HOME "/secret.env", false, "0600",
		              spec->secret_env, strlen(spec->secret_env), e);
	if (r == 0 && l->bootstrap == LXD_BOOTSTRAP_CLOUD_INIT)
		r = file_push(l, spec->name, LXD_MARKER, false, "0600", "", 0, e);
	return r;
}

/* Wait until the instance runs commands (a VM: until its agent is up). */
static int instance_exec_wait(struct lxd *l, const char *name, struct err *e)
{
	static const char *const probe[] = {"/bin/sh", "-c", "exit 0", NULL};
	int64_t deadline = clock_mono_ms() + l->op_timeout * 1000;
	int r, rc = -1;

	for (;;) {
		struct err e2 = {0};
		r = instance_exec(l, name, probe, LXD_EXEC_TIMEOUT, &rc, &e2);
		if (r == 0 && rc == 0)
			return 0;
		if (clock_mono_ms() >= deadline) {
			if (r < 0 && e)
				*e = e2;
			else
				r = err_set(e, -ETIMEDOUT, "lxd: %s: exec not working (status %d)",
				            name, rc);
			if (e)
				err_prefix(e, "waiting for exec");
			return r < 0 ? r : -ETIMEDOUT;
		}
		sleep_ms(LXD_POLL_MS);
	}
}

/* Exec bootstrap: the script, started detached. */
static int instance_exec_launch(struct lxd *l, const char *name, struct err *e)
{
	const char *const launch[] = {"/bin/sh", "-c", lxd_launch_cmd, NULL};
	int r, rc = -1;

	r = instance_exec(l, name, launch, LXD_EXEC_TIMEOUT, &rc, e);
	if (r < 0)
		return r;
	if (rc != 0)
		return err_set(e, -EIO, "lxd: %s: starting the startup script: status %d", name,
		               rc);
	return 0;
}

static int deny_ensure(struct lxd *l, struct err *e);

static int lxd_create(struct provider *p, const struct provider_call *c,
                      const struct instance_spec *spec, struct instance *ret, struct err *e)
{
	struct lxd *l = p->priv;
	char what[INSTANCE_NAME_MAX + 16];
	struct lxd_answer a = {0};
	struct instance in;
	const char *owner;
	json_t *body = NULL;
	struct err e2 = {0};
	bool made = false;
	int r;

	if (!spec || check_name(spec->name, e) < 0)
		return -EINVAL;
	if (!name_is_owned(l->manager, spec->name))
		return err_set(e, -EINVAL, "lxd: create: %s is not a name of manager %s",
		               spec->name, l->manager);
	if (!spec->flavor || !spec->flavor->image || !*spec->flavor->image)
		return err_set(e, -EINVAL, "lxd: create %s: the flavor names no image", spec->name);
	if (!spec->startup_script)
		return err_set(e, -EINVAL, "lxd: create %s: no startup script", spec->name);
	if (strlen(spec->startup_script) > LXD_USER_DATA_MAX / 2)
		return err_set(e, -E2BIG, "lxd: create %s: startup script larger than %u bytes",
		               spec->name, LXD_USER_DATA_MAX / 2);
	if (spec->secret_env && strlen(spec->secret_env) > LXD_SECRET_MAX)
		return err_set(e, -E2BIG, "lxd: create %s: secrets larger than %d bytes",
		               spec->name, LXD_SECRET_MAX);
	r = deny_ensure(l, e);
	if (r < 0) {
		if (e)
			err_prefix(e, "create %s: runner.denylist not in place", spec->name);
		return r;
	}
	body = instance_body(l, spec);
	if (!body)
		return err_set(e, -ENOMEM, "lxd: create %s: out of memory", spec->name);

	snprintf(what, sizeof(what), "create %s", spec->name);
	/*
	 * An instance already there is never cleaned up: LXD 5.0 reports the
	 * clash only as a failed operation, after which the name's instance is
	 * the old one. So look first, and read the failure's text as well.
	 */
	r = instance_fetch(l, spec->name, &in, &owner, &a, e);
	answer_release(&a);
	if (r == 0) {
		r = err_set(e, -EEXIST, "lxd: %s: already exists", what);
		goto out;
	}
	if (r != -ENOENT)
		goto out;
	err_clear(e);
	r = lxd_call(l, &(struct lxd_req){.method = "POST", .path = "/1.0/instances", .json = body},
	             &a, e);
	if (r == -EEXIST)
		goto out;
	made = true; /* even a failed POST may have left something */
	if (r < 0)
		goto out;
	if (!a.op[0]) {
		r = err_set(e, -EBADMSG, "lxd: %s: expected an operation", what);
		goto out;
	}
	r = lxd_wait(l, a.op, l->op_timeout, false, what, NULL, &e2);
	if (r == -ETIMEDOUT) {
		/*
		 * LXD cannot cancel a create: it goes on unpacking, and a delete
		 * now would race it (the instance appearing after the delete
		 * found nothing). Give it as long again to end first.
		 */
		(void)lxd_wait(l, a.op, l->op_timeout, false, what, NULL, NULL);
	}
	answer_release(&a);
	if (r < 0) {
		if (strstr(e2.msg, "already exists")) {
			r = -EEXIST;
			made = false;
		}
		e2.code = r;
		if (e)
			*e = e2;
		goto out;
	}
	/* LXD writes into a stopped container, but a VM's files go through its agent. */
	if (l->type != LXD_VM) {
		r = instance_populate(l, spec, e);
		if (r < 0)
			goto out;
	}
	r = instance_state_change(l, spec->name, json_pack("{s:s}", "action", "start"),
	                          l->op_timeout, "start", e);
	if (r < 0)
		goto out;
	if (l->type == LXD_VM || l->bootstrap == LXD_BOOTSTRAP_EXEC) {
		r = instance_exec_wait(l, spec->name, e);
		if (r < 0)
			goto out;
	}
	if (l->type == LXD_VM) {
		r = instance_populate(l, spec, e);
		if (r < 0)
			goto out;
	}
	if (l->bootstrap == LXD_BOOTSTRAP_EXEC) {
		r = instance_exec_launch(l, spec->name, e);
		if (r < 0)
			goto out;
	}
	r = instance_fetch(l, spec->name, &in, &owner, &a, e);
	if (r < 0)
		goto out;
	*ret = in;
out:
	if (r < 0 && made) {
		struct err e3 = {0};
		if (instance_remove(l, spec->name, false, &e3) < 0) {
			char msg[sizeof(e3.msg)];
			str_copy(msg, e && e->msg[0] ? e->msg : "failed", sizeof(msg));
			r = err_set(e, PROVIDER_EMAYREMAIN,
			            "%s; deleting it failed too (%s): %s may remain", msg, e3.msg,
			            spec->name);
		}
	}
	answer_release(&a);
	json_decref(body);
	return r;
}

/* ---- the denylist ACL ----------------------------------------------- */

int lxd_deny_acl_name(const char *manager, char *out, size_t cap)
{
	if (!manager || !*manager)
		return -EINVAL;
	if ((size_t)snprintf(out, cap, "runnerd-%s-deny", manager) >= cap)
		return -ENAMETOOLONG;
	return 0;
}

/* "10.1.2.3/8" -> "10.0.0.0/8", "fd00::1" -> "fd00::1/128". */
static int cidr_canon(const char *in, char *out, size_t cap)
{
	unsigned char a[16];
	char ip[INET6_ADDRSTRLEN + 1], txt[INET6_ADDRSTRLEN];
	const char *slash = strchr(in, '/');
	size_t n = slash ? (size_t)(slash - in) : strlen(in);
	int64_t prefix;
	int fam, bits;

	if (n == 0 || n >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, in, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, a) == 1)
		fam = AF_INET, bits = 32;
	else if (inet_pton(AF_INET6, ip, a) == 1)
		fam = AF_INET6, bits = 128;
	else
		return -EINVAL;
	prefix = bits;
	if (slash && parse_int64(slash + 1, 0, bits, &prefix) < 0)
		return -EINVAL;
	for (int i = (int)prefix; i < bits; i++)
		a[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
	if (!inet_ntop(fam, a, txt, sizeof(txt)))
		return -EINVAL;
	if ((size_t)snprintf(out, cap, "%s/%" PRId64, txt, prefix) >= cap)
		return -ENAMETOOLONG;
	return 0;
}

static void deny_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Canonical, deduplicated copy of cidrs. */
static int deny_copy(const struct strv *cidrs, char ***ret, size_t *ret_n, struct err *e)
{
	size_t n = cidrs ? cidrs->n : 0, k = 0;
	char **v = calloc(n + 1, sizeof(*v));

	if (!v)
		return err_set(e, -ENOMEM, "lxd: out of memory");
	for (size_t i = 0; i < n; i++) {
		char c[INET6_ADDRSTRLEN + 8];
		bool dup = false;
		if (cidr_canon(cidrs->v[i], c, sizeof(c)) < 0) {
			deny_free(v, k);
			return err_set(e, -EINVAL,
			               "lxd: runner.denylist: %s: not an address or CIDR",
			               cidrs->v[i]);
		}
		for (size_t j = 0; j < k; j++)
			dup = dup || strcmp(v[j], c) == 0;
		if (dup)
			continue;
		v[k] = strdup(c);
		if (!v[k]) {
			deny_free(v, k);
			return err_set(e, -ENOMEM, "lxd: out of memory");
		}
		k++;
	}
	*ret = v;
	*ret_n = k;
	return 0;
}

/* Does the comma-separated list s hold item? */
static bool list_has(const char *s, const char *item)
{
	size_t n = strlen(item);
	for (const char *c = s; c && *c;) {
		size_t len = strcspn(c, ",");
		const char *t = c;
		size_t tl = len;
		while (tl && *t == ' ')
			t++, tl--;
		while (tl && t[tl - 1] == ' ')
			tl--;
		if (tl == n && strncmp(t, item, n) == 0)
			return true;
		c += len;
		if (*c == ',')
			c++;
	}
	return false;
}

/* s with item added (add) or removed, into b. */
static int list_edit(const char *s, const char *item, bool add, struct buf *b)
{
	size_t n = strlen(item);
	int r = 0;

	buf_reset(b);
	if (buf_puts(b, "") < 0)
		return -ENOMEM;
	for (const char *c = s; c && *c && r == 0;) {
		size_t len = strcspn(c, ",");
		const char *t = c;
		size_t tl = len;
		while (tl && *t == ' ')
			t++, tl--;
		while (tl && t[tl - 1] == ' ')
			tl--;
		if (tl && !(tl == n && strncmp(t, item, n) == 0))
			r = buf_printf(b, "%s%.*s", b->len ? "," : "", (int)tl, t);
		c += len;
		if (*c == ',')
			c++;
	}
	if (r == 0 && add)
		r = buf_printf(b, "%s%s", b->len ? "," : "", item);
	return r;
}

/*
 * Attach (or detach) acl to network net in security.acls, keeping every
 * other ACL; see lxd.h for the default actions. Optimistic: If-Match on the
 * network's ETag, retried when someone else changed it meanwhile.
 */
static int network_acl_set(struct lxd *l, const char *net, const char *acl, bool attach,
                           struct err *e)
{
	static const char *const defaults[] = {"security.acls.default.egress.action",
	                                       "security.acls.default.ingress.action"};
	struct buf path = BUF_INIT(512), list = BUF_INIT(64 * 1024);
	char marker[MANAGER_NAME_MAX + 48], ifmatch[200];
	int r = 0;

	snprintf(marker, sizeof(marker), "user.runnerd.%s.acl-defaults", l->manager);
	if (path_of(&path, "networks", net, NULL) < 0)
		return err_set(e, -ENAMETOOLONG, "lxd: network name too long");
	for (int t = 0; t < LXD_ETAG_TRIES; t++) {
		struct lxd_answer a = {0};
		json_t *config, *nc = NULL, *body = NULL;
		const char *acls, *desc;
		bool has, changed = false;

		r = lxd_call(l, &(struct lxd_req){.path = buf_str(&path)}, &a, e);
		if (r < 0)
			break;
		config = json_object_get(a.meta, "config");
		desc = jstr(a.meta, "description");
		acls = jstr(config, "security.acls");
		if (!json_is_object(config)) {
			answer_release(&a);
			r = err_set(e, -EBADMSG, "lxd: network %s: unparsable answer", net);
			break;
		}
		has = acls && list_has(acls, acl);
		nc = json_deep_copy(config);
		if (!nc || list_edit(acls, acl, attach, &list) < 0) {
			json_decref(nc);
			answer_release(&a);
			r = err_set(e, -ENOMEM, "lxd: out of memory");
			break;
		}
		if (attach && !has) {
			bool first = !acls || !*acls, set = false;
			json_object_set_new(nc, "security.acls", json_string(buf_str(&list)));
			for (size_t i = 0; first && i < ARRAY_SIZE(defaults); i++)
				if (!jstr(config, defaults[i])) {
					json_object_set_new(nc, defaults[i], json_string("allow"));
					set = true;
				}
			if (set)
				json_object_set_new(nc, marker, json_string("true"));
			changed = true;
		} else if (!attach && has) {
			if (list.len) {
				json_object_set_new(nc, "security.acls",
				                    json_string(buf_str(&list)));
			} else {
				/* The last ACL: the defaults go too, if we set them. */
				json_object_del(nc, "security.acls");
				if (jstr(config, marker))
					for (size_t i = 0; i < ARRAY_SIZE(defaults); i++)
						json_object_del(nc, defaults[i]);
				json_object_del(nc, marker);
			}
			changed = true;
		}
		if (!changed) {
			json_decref(nc);
			answer_release(&a);
			r = 0;
			break;
		}
		body = json_pack("{s:o, s:s}", "config", nc, "description", desc ? desc : "");
		snprintf(ifmatch, sizeof(ifmatch), "If-Match: %s", a.etag);
		const char *hdrs[] = {ifmatch, NULL};
		struct lxd_answer a2 = {0};
		r = body ? lxd_call(l,
		                    &(struct lxd_req){.method = "PUT",
		                                      .path = buf_str(&path),
		                                      .json = body,
		                                      .headers = a.etag[0] ? hdrs : NULL},
		                    &a2, e)
		         : err_set(e, -ENOMEM, "lxd: out of memory");
		answer_release(&a2);
		json_decref(body);
		answer_release(&a);
		if (r != -EAGAIN)
			break;
	}
	if (r < 0 && e)
		err_prefix(e, "%s ACL %s %s network %s", attach ? "attach" : "detach", acl,
		           attach ? "to" : "from", net);
	buf_release(&path);
	buf_release(&list);
	return r;
}

/* The network names in an ACL's used_by ("/1.0/networks/<name>[?project=...]"). */
static void used_by_networks(const json_t *used_by, char (*out)[128], size_t cap, size_t *ret_n)
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
		if (len == 0 || len >= sizeof(out[0]))
			continue;
		memcpy(out[n], s, len);
		out[n][len] = '\0';
		n++;
	}
	*ret_n = n;
}

/* Call with deny_lock held. */
static int deny_sync_locked(struct lxd *l, struct err *e)
{
	struct buf path = BUF_INIT(512);
	char name[128], nets[16][128];
	struct lxd_answer a = {0};
	json_t *egress = NULL, *body = NULL;
	size_t n_nets = 0;
	bool exists;
	int r;

	if (lxd_deny_acl_name(l->manager, name, sizeof(name)) < 0)
		return err_set(e, -EINVAL, "lxd: no manager name for the denylist ACL");
	if (path_of(&path, "network-acls", name, NULL) < 0)
		return err_set(e, -ENAMETOOLONG, "lxd: ACL name too long");
	r = lxd_call(l, &(struct lxd_req){.path = buf_str(&path)}, &a, e);
	if (r < 0 && r != -ENOENT)
		goto out;
	exists = r == 0;
	err_clear(e);
	if (exists)
		used_by_networks(json_object_get(a.meta, "used_by"), nets, ARRAY_SIZE(nets),
		                 &n_nets);

	if (l->n_deny == 0) {
		r = 0;
		if (!exists)
			goto done;
		for (size_t i = 0; i < n_nets && r == 0; i++)
			r = network_acl_set(l, nets[i], name, false, e);
		if (r == 0)
			r = network_acl_set(l, l->network, name, false, e);
		if (r < 0)
			goto out;
		struct lxd_answer a2 = {0};
		r = lxd_call(l, &(struct lxd_req){.method = "DELETE", .path = buf_str(&path)}, &a2,
		             e);
		answer_release(&a2);
		if (r == -ENOENT)
			r = 0;
		if (r < 0)
			goto out;
		goto done;
	}

	egress = json_array();
	for (size_t i = 0; egress && i < l->n_deny; i++)
		if (json_array_append_new(egress, json_pack("{s:s, s:s, s:s}", "action", "reject",
		                                            "destination", l->deny[i], "state",
		                                            "enabled")) < 0) {
			json_decref(egress);
			egress = NULL;
		}
	if (!egress) {
		r = err_set(e, -ENOMEM, "lxd: out of memory");
		goto out;
	}
	if (!exists) {
		body = json_pack("{s:s, s:s, s:O, s:[], s:{}}", "name", name, "description",
		                 "runnerd: runner.denylist of manager (do not edit)", "egress",
		                 egress, "ingress", "config");
		struct lxd_answer a2 = {0};
		r = body ? lxd_call(l,
		                    &(struct lxd_req){.method = "POST",
		                                      .path = "/1.0/network-acls",
		                                      .json = body},
		                    &a2, e)
		         : err_set(e, -ENOMEM, "lxd: out of memory");
		answer_release(&a2);
		if (r < 0)
			goto out;
	} else {
		const json_t *cur = json_object_get(a.meta, "egress");
		const json_t *in = json_object_get(a.meta, "ingress");
		if (!json_equal((json_t *)cur, egress) || (in && json_array_size(in) > 0)) {
			char ifmatch[200];
			const char *hdrs[] = {ifmatch, NULL};
			json_t *cfg = json_object_get(a.meta, "config");
			snprintf(ifmatch, sizeof(ifmatch), "If-Match: %s", a.etag);
			body = json_pack("{s:s, s:O, s:[], s:o}", "description",
			                 "runnerd: runner.denylist of manager (do not edit)",
			                 "egress", egress, "ingress", "config",
			                 json_is_object(cfg) ? json_incref(cfg) : json_object());
			struct lxd_answer a2 = {0};
			r = body ? lxd_call(l,
			                    &(struct lxd_req){.method = "PUT",
			                                      .path = buf_str(&path),
			                                      .json = body,
			                                      .headers = a.etag[0] ? hdrs : NULL},
			                    &a2, e)
			         : err_set(e, -ENOMEM, "lxd: out of memory");
			answer_release(&a2);
			if (r < 0)
				goto out;
		}
	}
	/* Attached to the configured network only (an earlier one is let go). */
	r = network_acl_set(l, l->network, name, true, e);
	for (size_t i = 0; i < n_nets && r == 0; i++)
		if (strcmp(nets[i], l->network) != 0)
			r = network_acl_set(l, nets[i], name, false, e);
	if (r < 0)
		goto out;
done:
	l->deny_synced = true;
out:
	if (r < 0 && e)
		err_prefix(e, "denylist");
	json_decref(body);
	json_decref(egress);
	answer_release(&a);
	buf_release(&path);
	return r;
}

/*
 * The policy: runner.denylist as the deny ACL (hidden_dirs and secret_files
 * concern the host, which an LXD instance cannot see anyway). The list is
 * kept even when LXD cannot be reached now: create() retries.
 */
static int lxd_policy(struct provider *p, const struct provider_call *c,
                      const struct provider_policy *pol, struct err *e)
{
	struct lxd *l = p->priv;
	char **v = NULL;
	size_t n = 0;
	int r;

	r = deny_copy(pol->denylist, &v, &n, e);
	if (r < 0)
		return r;
	pthread_mutex_lock(&l->deny_lock);
	deny_free(l->deny, l->n_deny);
	l->deny = v;
	l->n_deny = n;
	l->deny_synced = false;
	r = deny_sync_locked(l, e);
	pthread_mutex_unlock(&l->deny_lock);
	return r;
}

/*
 * Before a create: a denylist not yet in place is put in place now, and
 * failing that the create fails. An empty one is best effort (at worst a
 * stale ACL denies more than asked).
 */
static int deny_ensure(struct lxd *l, struct err *e)
{
	struct err e2 = {0};
	int r = 0;

	pthread_mutex_lock(&l->deny_lock);
	if (!l->deny_synced) {
		r = deny_sync_locked(l, &e2);
		if (r < 0 && l->n_deny == 0)
			r = 0;
		else if (r < 0 && e)
			*e = e2;
	}
	pthread_mutex_unlock(&l->deny_lock);
	return r;
}

/* ---- setup ---------------------------------------------------------- */

static void lxd_close(struct provider *p)
{
	struct lxd *l = p->priv;

	if (!l)
		return;
	httpc_free(l->http);
	free(l->socket);
	free(l->project);
	free(l->network);
	free(l->pool);
	deny_free(l->profiles, l->n_profiles);
	deny_free(l->deny, l->n_deny);
	pthread_mutex_destroy(&l->trace_lock);
	pthread_mutex_destroy(&l->deny_lock);
	pthread_mutex_destroy(&l->stuck_lock);
	free(l);
	p->priv = NULL;
}

static int lxd_open(struct provider *p, const struct config_provider *pc, struct err *e);

const struct provider_ops lxd_ops = {
        .type = "lxd",
        .open = lxd_open,
        .create = lxd_create,
        .get = lxd_get,
        .list = lxd_list,
        .delete = lxd_delete,
        .health = lxd_health,
        .pull_file = lxd_pull_file,
        .list_files = lxd_list_files,
        .policy = lxd_policy,
        .close = lxd_close,
};

int lxd_set_trace(struct provider *p, lxd_trace_fn fn, void *arg)
{
	struct lxd *l;

	if (!p || p->ops != &lxd_ops)
		return -EINVAL;
	l = p->priv;
	pthread_mutex_lock(&l->trace_lock);
	l->trace = fn;
	l->trace_arg = arg;
	pthread_mutex_unlock(&l->trace_lock);
	return 0;
}

static bool lxd_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f || s[i] == '/' || s[i] == '?' ||
		    s[i] == '#' || s[i] == '%')
			return false;
	return true;
}

/*
 * What each operation may take, from the timeouts it is made of: a create
 * is a create, pushes, a start and, when it fails, waiting the create out
 * and a delete; a delete is a stop (graceful, then forced) and a delete.
 */
static void lxd_deadlines(struct provider *p)
{
	const struct lxd *l = p->priv;
	int64_t op = l->op_timeout * 1000, stop = l->stop_timeout * 1000, req = l->request_ms;

	p->deadline_ms[PROVIDER_OP_CREATE] = 4 * op + 2 * stop + 4 * req;
	p->deadline_ms[PROVIDER_OP_DELETE] = 2 * op + stop + 2 * req;
	p->deadline_ms[PROVIDER_OP_HEALTH] = op + req;
	p->deadline_ms[PROVIDER_OP_PULL_FILE] = op + 2 * req;
	p->deadline_ms[PROVIDER_OP_LIST_FILES] = op + 2 * req;
	p->deadline_ms[PROVIDER_OP_GET] = 2 * req;
	p->deadline_ms[PROVIDER_OP_LIST] = 2 * req;
}

/* Settings come from the config table (their defaults too); none are guessed here. */
static int lxd_open(struct provider *p, const struct config_provider *pc, struct err *e)
{
	const struct config_lxd *c = &pc->lxd;
	struct lxd *l = NULL;
	int r;

	if (!c->socket || !*c->socket || !c->project || !lxd_name_ok(c->project) || !c->network ||
	    !lxd_name_ok(c->network) || !c->storage_pool || !lxd_name_ok(c->storage_pool) ||
	    c->operation_timeout <= 0 || c->stop_timeout <= 0)
		return err_set(e, -EINVAL,
		               "providers.%s: a socket, project, network and storage pool (names) "
		               "and timeouts are needed",
		               pc->name);
	l = calloc(1, sizeof(*l));
	if (!l)
		return err_set(e, -ENOMEM, "lxd: out of memory");
	pthread_mutex_init(&l->trace_lock, NULL);
	pthread_mutex_init(&l->deny_lock, NULL);
	pthread_mutex_init(&l->stuck_lock, NULL);
	p->priv = l;
	l->socket = strdup(c->socket);
	l->project = strdup(c->project);
	l->network = strdup(c->network);
	l->pool = strdup(c->storage_pool);
	if (!l->socket || !l->project || !l->network || !l->pool) {
		r = err_set(e, -ENOMEM, "lxd: out of memory");
		goto fail;
	}
	if (c->profiles.n > 0) {
		l->profiles = calloc(c->profiles.n, sizeof(*l->profiles));
		if (!l->profiles) {
			r = err_set(e, -ENOMEM, "lxd: out of memory");
			goto fail;
		}
		for (; l->n_profiles < c->profiles.n; l->n_profiles++) {
			l->profiles[l->n_profiles] = strdup(c->profiles.v[l->n_profiles]);
			if (!l->profiles[l->n_profiles]) {
				r = err_set(e, -ENOMEM, "lxd: out of memory");
				goto fail;
			}
		}
	}
	l->type = c->type;
	l->bootstrap = c->bootstrap;
	str_copy(l->manager, p->manager, sizeof(l->manager));
	l->connect_ms = LXD_CONNECT_TIMEOUT_MS;
	l->request_ms = LXD_REQUEST_TIMEOUT_MS;
	l->op_timeout = c->operation_timeout;
	l->stop_timeout = c->stop_timeout;
	l->max_list = LXD_LIST_MAX;
	r = httpc_new(&l->http, e);
	if (r < 0)
		goto fail;
	lxd_deadlines(p);
	p->traits = (struct provider_traits){
	        .pull_files = true,
	        .list_files = true,
	        .health_probe = true,
	        .denylist = true,
	};
	return 0;
fail:
	lxd_close(p);
	return r;
}

int lxd_set_opts(struct provider *p, const struct lxd_opts *opts)
{
	struct lxd *l;

	if (!p || p->ops != &lxd_ops || !opts)
		return -EINVAL;
	l = p->priv;
	if (opts->connect_timeout_ms > 0)
		l->connect_ms = opts->connect_timeout_ms;
	if (opts->request_timeout_ms > 0)
		l->request_ms = opts->request_timeout_ms;
	if (opts->operation_timeout > 0)
		l->op_timeout = opts->operation_timeout;
	if (opts->stop_timeout > 0)
		l->stop_timeout = opts->stop_timeout;
	if (opts->max_list_body > 0)
		l->max_list = opts->max_list_body;
	lxd_deadlines(p);
	return 0;
}
