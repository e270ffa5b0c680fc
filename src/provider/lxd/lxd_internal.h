/*
 * What the files of the lxd backend share, and what its unit tests and
 * fuzzers reach without an LXD: the backend's state, one request and its
 * parsed answer, and the functions each file offers the others, declared
 * by file, lowest layer first. Never included from outside
 * src/provider/lxd/ (but by its tests): the rest of runnerd has lxd.h,
 * and the front provider/backend.h.
 */
#ifndef RUNNERD_PROVIDER_LXD_INTERNAL_H
#define RUNNERD_PROVIDER_LXD_INTERNAL_H

#include "provider/backend.h"
#include "provider/lxd.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/httpc.h"
#include "util/strutil.h"

#include <jansson.h>
#include <pthread.h>

#define LXD_HOST               "http://lxd"
#define LXD_OPS                "/1.0/operations/"
#define LXD_URL_MAX            (16 * 1024)
#define LXD_RESPONSE_MAX       (4u << 20)  /* one instance, one operation, one network */
#define LXD_LIST_MAX           (64u << 20) /* every instance of the project */
#define LXD_DIR_API_MAX        (4u << 20)  /* a directory listing of the files API */
#define LXD_LISTING_LINE_MAX   300         /* a line of the listing script's output */
#define LXD_SECRET_MAX         (256 * 1024)
#define LXD_ERRTEXT_MAX        240
#define LXD_CONNECT_TIMEOUT_MS 5000
#define LXD_REQUEST_TIMEOUT_MS 30000
#define LXD_WAIT_SLACK_MS      10000 /* beyond LXD's own wait timeout */
#define LXD_WAIT_MARGIN_MS     250   /* a long poll ends this long before the wait does */
#define LXD_EXEC_TIMEOUT       30    /* seconds for a short exec */
#define LXD_CHECK_TIMEOUT      10    /* seconds for a file type check or listing */
#define LXD_PULL_TIMEOUT_MS    10000 /* one file read */
#define LXD_RESCUE_MS          2000  /* a files API read still unanswered: a FIFO */
#define LXD_STUCK_S            600   /* no reads from an instance whose read timed out */
#define LXD_POLL_MS            200
#define LXD_RETRY_MS           500
#define LXD_RETRY_S            30 /* how long a delete keeps trying */
#define LXD_ETAG_TRIES         5
#define LXD_LOG_PATH_MAX       256 /* an exec output log's path */
#define LXD_NET_NAME_MAX       128 /* a network name in an ACL's used_by */

/* The config keys that mark an instance as runnerd's. */
#define LXD_KEY_MANAGER "user.runnerd.manager"
#define LXD_KEY_FLAVOR  "user.runnerd.flavor"

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

/* ---- parse.c: LXD's text, pure ---------------------------------------- */

/* A string member of o, NULL when absent or not a string. */
const char *lxd_jstr(const json_t *o, const char *key);
/* A character that goes into a URL as it is (RFC 3986 unreserved). */
bool lxd_url_plain(unsigned char c);
void lxd_answer_release(struct lxd_answer *a);
/* LXD's HTTP status -> -errno (see lxd.h). */
int lxd_status_errno(long status);
/*
 * LXD's answer envelope (status, body of len bytes) -> *ret: the root, its
 * metadata, and for an async answer the operation's id (a UUID, checked);
 * ret->etag is left empty. An error answer (status >= 400, or type
 * error) is its -errno with LXD's text, bounded and printable;
 * a body that is not the envelope is -EBADMSG. method and path name the
 * request in messages.
 */
int lxd_parse_answer(const char *method, const char *path, long status, const void *body,
                     size_t len, struct lxd_answer *ret, struct err *e);
/*
 * An operation object (what a wait answers): 0 when it succeeded, 1 while
 * it runs, -EIO with LXD's text when it failed or was cancelled, -EBADMSG
 * when it is not an operation. what names it in messages.
 */
int lxd_parse_operation(const json_t *op, const char *what, struct err *e);
/*
 * An instance object -> *ret; *ret_owner is its user.runnerd.manager,
 * borrowed from o (NULL when absent or not a string). -EBADMSG when it is
 * not one (no name, status or config object, a name too long). Unknown
 * statuses are CLOUD_UNKNOWN; LXD's zero time is no creation time.
 */
int lxd_parse_instance(const json_t *o, struct instance *ret, const char **ret_owner);
/*
 * A listing's metadata (recursion=1) -> the instances of manager (an owned
 * name whose user.runnerd.manager is manager) appended to *ret; others are
 * skipped. One entry that is not an instance makes it -EBADMSG.
 */
int lxd_parse_instances(const json_t *meta, const char *manager, struct instance_list *ret,
                        struct err *e);
/* An exec operation's return code; -EBADMSG when it has none. */
int lxd_parse_exec_return(const json_t *op, int *ret_rc);
/*
 * The paths of an exec's stdout ([0]) and stderr ([1]) logs, each "" unless
 * it is one of name's logs (/1.0/instances/<name>/logs/<plain>), so that
 * no answer can point the GET and DELETE that follow elsewhere.
 */
void lxd_parse_exec_logs(const json_t *op, const char *name, char ret[2][LXD_LOG_PATH_MAX]);
/*
 * The listing script's output ("0 <files> 0 -", then "<rank> <mtime>
 * <size> <name>" a line) -> its files offered to *out
 * (provider_file_list_offer: the q->max most useful stay, however many
 * lines there are), out->total at least the count it gives. Lines that
 * are not such, or whose name is not a plain file name, are skipped; a
 * time before 1970 is no time (0). -ENOMEM.
 */
int lxd_parse_listing(const void *data, size_t len, const struct provider_list_query *q,
                      struct provider_file_list *out);
/*
 * The files API's answer for a directory (JSON) -> its plain entry names
 * pushed onto *out, however many (the answer's size bounds them).
 * -EBADMSG when it is not a listing, -ENOMEM.
 */
int lxd_parse_dir(const void *body, size_t len, struct strv *out);
/* The network names in an ACL's used_by ("/1.0/networks/<name>[?project=...]"), cap at most. */
void lxd_parse_used_by(const json_t *used_by, char (*out)[LXD_NET_NAME_MAX], size_t cap,
                       size_t *ret_n);
/* Does the comma-separated list s (security.acls) hold item? */
bool lxd_list_has(const char *s, const char *item);
/* s with item added (add) or removed, into b; blanks trimmed, empty items dropped. */
int lxd_list_edit(const char *s, const char *item, bool add, struct buf *b);

/* ---- api.c: requests, operations -------------------------------------- */

/* now + ms, or the call's deadline when that comes first (monotonic ms). */
int64_t lxd_until(const struct provider_call *c, int64_t ms);
/* Append s percent-encoded (keep_slash: '/' stays as is, for paths). */
int lxd_url_escape(struct buf *b, const char *s, bool keep_slash);
/* "/1.0/<coll>/<escaped name>[<suffix>]" into b; -ENAMETOOLONG. */
int lxd_path_of(struct buf *b, const char *coll, const char *name, const char *suffix);
/*
 * One request, the plain exchange (any status) in *ret. Nothing is sent
 * once c is cancelled (-ECANCELED) or past its deadline (-ETIMEDOUT); the
 * timeout is q's own or what is left of c, whichever is less, and c's
 * cancel flag stops it in flight.
 */
int lxd_http(struct lxd *l, const struct provider_call *c, const struct lxd_req *q,
             struct httpc_response *ret, struct err *e);
/* lxd_http, its answer read as LXD's envelope (lxd_parse_answer), the Etag kept. */
int lxd_call(struct lxd *l, const struct provider_call *c, const struct lxd_req *q,
             struct lxd_answer *ret, struct err *e);
/*
 * Wait for operation id (what names it in messages) until it ends, for
 * timeout_s at most and never past c's deadline: 0 (its object in *ret_op
 * when asked, a new reference), -EIO when it failed or LXD lost it,
 * -ETIMEDOUT (LXD asked to cancel it when cancel_op), -ECANCELED.
 */
int lxd_wait(struct lxd *l, const struct provider_call *c, const char *id, int64_t timeout_s,
             bool cancel_op, const char *what, json_t **ret_op, struct err *e);
/* A request that starts an operation, then lxd_wait (cancel_op) for it. */
int lxd_run(struct lxd *l, const struct provider_call *c, const struct lxd_req *q,
            int64_t timeout_s, const char *what, json_t **ret_op, struct err *e);

/* ---- instance.c: instances, exec, health ----------------------------- */
/* lxd_get, lxd_list, ... (provider_ops entries) do what backend.h says. */

/* -EINVAL unless name is a valid instance name. */
int lxd_check_name(const char *name, struct err *e);
/*
 * GET one instance: -ENOENT when missing. *ret_owner (its
 * user.runnerd.manager, or NULL) points into *ret_ans: release it after.
 */
int lxd_instance_fetch(struct lxd *l, const struct provider_call *c, const char *name,
                       struct instance *ret, const char **ret_owner, struct lxd_answer *ret_ans,
                       struct err *e);
/* PUT .../state body (taken over; NULL: out of memory) and wait for timeout_s at most. */
int lxd_instance_state_change(struct lxd *l, const struct provider_call *c, const char *name,
                              json_t *body, int64_t timeout_s, const char *what, struct err *e);
/*
 * Stop (gracefully first when graceful) and delete name; 0 only once LXD
 * answers 404 for it. -EPERM for an instance another manager made.
 */
int lxd_instance_remove(struct lxd *l, const struct provider_call *c, const char *name,
                        bool graceful, struct err *e);
/*
 * Run argv in name (no websocket, no terminal) for timeout_s at most: its
 * exit status in *ret_rc, its standard output appended to *ret_out (at
 * most its cap, -E2BIG over it) when ret_out is not NULL.
 */
int lxd_instance_exec_out(struct lxd *l, const struct provider_call *c, const char *name,
                          const char *const *argv, int64_t timeout_s, int *ret_rc,
                          struct buf *ret_out, struct err *e);
int lxd_instance_exec(struct lxd *l, const struct provider_call *c, const char *name,
                      const char *const *argv, int64_t timeout_s, int *ret_rc, struct err *e);
int lxd_get(struct provider *p, const struct provider_call *c, const char *name,
            struct instance *ret, struct err *e);
int lxd_list(struct provider *p, const struct provider_call *c, struct instance_list *ret,
             struct err *e);
int lxd_delete(struct provider *p, const struct provider_call *c, const char *name, struct err *e);
int lxd_health(struct provider *p, const struct provider_call *c, const char *name,
               enum health *ret, struct err *e);

/* ---- files.c: pushes and reads --------------------------------------- */

/* Write data (len bytes) to path in name as root with mode, or make a directory (dir). */
int lxd_file_push(struct lxd *l, const struct provider_call *c, const char *name, const char *path,
                  bool dir, const char *mode, const void *data, size_t len, struct err *e);
/* LXD's X-LXD-type of path ("file", "directory", "symlink") through HEAD; -ENOENT. */
int lxd_file_type(struct lxd *l, const struct provider_call *c, const char *name, const char *path,
                  char *ret, size_t cap, struct err *e);
int lxd_pull_file(struct provider *p, const struct provider_call *c, const char *name,
                  const char *path, size_t max_bytes, struct buf *ret, struct err *e);
int lxd_list_files(struct provider *p, const struct provider_call *c, const char *name,
                   const char *dir, const struct provider_list_query *q,
                   struct provider_file_list *ret, struct err *e);

/* ---- create.c -------------------------------------------------------- */

int lxd_create(struct provider *p, const struct provider_call *c, const struct instance_spec *spec,
               struct instance *ret, struct err *e);

/* ---- acl.c: the denylist ACL ----------------------------------------- */

/* Free n strings and their array (NULL-safe). */
void lxd_strings_free(char **v, size_t n);
int lxd_policy(struct provider *p, const struct provider_call *c, const struct provider_policy *pol,
               struct err *e);
/* Before a create: the denylist in place (an empty one best effort). */
int lxd_deny_ensure(struct lxd *l, const struct provider_call *c, struct err *e);

#endif
