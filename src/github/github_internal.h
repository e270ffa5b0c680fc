/*
 * What the files of the GitHub client share, and what the unit tests reach
 * without a server: the client's state, the request core, its rate-limit
 * bookkeeping and caches, the endpoints' shared JSON call and pager, JSON
 * shapes, the Link header, the App JWT and backoff. Declarations go by file,
 * lowest layer first. Never included from outside src/github/ (but by its
 * unit test and fuzzer): the rest of runnerd has github.h.
 */
#ifndef RUNNERD_GITHUB_INTERNAL_H
#define RUNNERD_GITHUB_INTERNAL_H

#include "github/github.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/httpc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <jansson.h>
#include <openssl/evp.h>

#define GITHUB_API_VERSION    "2022-11-28"
#define GITHUB_MAX_PAGES      1000 /* 100,000 runners: beyond that a Link loop is likelier */
#define GITHUB_ETAG_ENTRIES   256
#define GITHUB_MAX_BAR        3600 /* never believe a rate-limit reset further away than this */
#define GITHUB_URL_MAX        2048
#define GITHUB_OP_MAX         400 /* an operation's name, which starts its messages */
#define GITHUB_MAX_ROUTES     32  /* distinct github_call.route values (a dozen today) */
#define GITHUB_MIN_ATTEMPT_MS 100 /* an attempt with less time left is not started */
/*
 * The longest token (PAT, App JWT, installation, registration or remove
 * token) the client takes or sends. Tokens are opaque and of any length:
 * GitHub's installation tokens went from 40 characters to ~520 (a
 * "ghs_<APP ID>_<JWT>" that varies with what it holds) in 2026. Longer is
 * refused with an error, never cut.
 */
#define GITHUB_TOKEN_MAX 16384

/* One cached page of a conditional GET. */
struct github_etag {
	char *url;
	char *etag;
	char *body;
	size_t len;
	char *link;    /* the page's Link header ("" when none) */
	uint64_t used; /* clock of the last use, for eviction */
};

/* Which rate-limit resource GitHub last counted a route against. */
struct github_route {
	const char *route; /* github_call.route (static strings) */
	size_t resource;   /* index into github.rates */
};

struct github {
	const struct config *cfg;
	struct github_opts opts;
	struct httpc *http;
	char base[512];    /* api_url without a trailing '/' */
	char scope[320];   /* "repos/owner/repo" or "orgs/org" */
	EVP_PKEY *app_key; /* App auth only */
	atomic_bool cancelled;

	pthread_mutex_t refresh_mu; /* one installation-token exchange at a time */
	pthread_mutex_t mu;         /* guards everything below */
	char *inst_token;           /* App installation token (secret) */
	time_t inst_expires;
	struct github_etag etags[GITHUB_ETAG_ENTRIES];
	uint64_t etag_clock;
	struct github_page_memo *memos; /* parsed runner-list pages, GITHUB_ETAG_ENTRIES at most */
	size_t n_memos;
	struct github_stats stats; /* counters only: the rate figures live in rates */
	struct github_rate rates[GITHUB_MAX_RESOURCES]; /* [0] is "core" */
	size_t n_rates;
	struct github_route routes[GITHUB_MAX_ROUTES];
	size_t n_routes;
	uint64_t rng;
};

/*
 * A runner-list page as parsed, kept with the exact bytes it came from: an
 * unchanged page (a 304 answered from the ETag cache) is not parsed again.
 * The byte comparison, not the ETag, decides, so the memo can never speak
 * for another body.
 */
struct github_page_memo {
	char *url;
	char *manager; /* the filter it was parsed with ("" = none) */
	char *body;
	size_t len;
	struct github_runner_list runners;
	int64_t total;
	size_t seen;
	uint64_t used;
};

/* How a call may be repeated after a failure. */
enum github_retry {
	GITHUB_RETRY_NONE = 0,
	GITHUB_RETRY_UNSENT, /* only when the request never left (connect failure) */
	GITHUB_RETRY_ALL,    /* 5xx and transport errors: idempotent, or harmless to repeat */
};

struct github_call {
	const char *op;    /* "list runners": starts every error message */
	const char *route; /* the endpoint, for its rate-limit resource; NULL = always "core" */
	const char *method;
	const char *url;  /* absolute */
	const char *body; /* JSON, or NULL */
	enum github_retry retry;
	bool conditional;  /* If-None-Match from the ETag cache; 304 -> cached body */
	bool use_jwt;      /* App JWT instead of the token (installation token exchange) */
	const int *accept; /* statuses handed back to the caller, 0-terminated; 2xx always */
	int64_t deadline;  /* clock_mono_ms() by which all attempts end; 0 = 2 x request_timeout */
	bool secret;       /* the answer holds a secret (token, JIT config): its bytes are wiped */
	bool no_body;      /* github_call_json: the answer is not read as JSON (DELETE: 204) */
};

struct github_reply {
	long status; /* 304 answers show as 200 with the cached body */
	struct buf body;
	char link_next[GITHUB_URL_MAX]; /* rel="next" URL, "" when none */
	bool from_cache;
};

/* What github_call_json hands back; github_answer_release() frees it. */
struct github_answer {
	long status;       /* 2xx, or one of call->accept (a 304 shows as 200) */
	json_t *root;      /* the body of a 2xx; NULL with call->no_body or another status */
	char message[160]; /* GitHub's "message" when the status is not 2xx, else "" */
};

/*
 * A list read page by page through Link: rel="next" (GITHUB_MAX_PAGES at
 * most). Each page is offered to known() first, when set, with its exact
 * bytes (1 = taken as it is, say from a memo); else it is parsed and handed
 * to take(). Either may set done to stop early. The caller fills the first
 * block; github_paginate() fills the page at hand for the callbacks.
 */
struct github_pager {
	const char *op; /* names the list; " (page N)" is added from the second page */
	const char *route;
	bool conditional; /* If-None-Match per page: an unchanged page costs no rate limit */
	int (*known)(struct github_pager *pg, const struct buf *body, struct err *e);
	int (*take)(struct github_pager *pg, json_t *root, const struct buf *body, struct err *e);
	void *ctx;
	/* the page at hand */
	const char *page_op;
	const char *page_url;
	int number; /* 1, 2, ... */
	bool last;  /* GitHub names no page after this one */
	bool done;  /* set by a callback: the rest need not be read */
};

/* github.c: request_timeout in milliseconds (30 s when unset). */
long github_request_timeout_ms(const struct github *gh);
/* base + "/" + path (path has no leading '/'); -ENAMETOOLONG ("<op>: URL too long"). */
int github_url(const struct github *gh, char *out, size_t cap, const char *op, struct err *e,
               const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* "<scope>: <what>" into buf (the op of a call in the configured scope); returns buf. */
const char *github_scope_op(const struct github *gh, const char *what, char *buf, size_t cap);
/* "owner/repo" as GitHub allows the names (nothing a URL would read as syntax). */
bool github_repo_ok(const char *s);
/*
 * A repository a webhook or a runner named, before any request about it:
 * -EINVAL ("<op>: not an owner/repo") unless github_repo_ok, and with
 * scoped, -EPERM for one outside the configured scope
 * (config_repo_in_scope).
 */
int github_repo_check(const struct github *gh, const char *repo, bool scoped, const char *op,
                      struct err *e);

/* github_request.c: the request core. Statuses outside 2xx and call->accept become errors. */
int github_do(struct github *gh, const struct github_call *call, struct github_reply *ret,
              struct err *e);
void github_reply_release(struct github_reply *r);
/* Equal jitter: a delay in [d/2, d] with d = min(max, base * 2^attempt); attempt >= 0. */
long github_backoff_ms(const struct github_opts *o, int attempt, uint32_t rnd);
/* The URL of rel="next" in a Link header into ret ("" when none). -EPROTO, -E2BIG. */
int github_link_next(const char *link, char *ret, size_t cap);

/*
 * github_rate.c: record the rate-limit headers of an answer (any may be
 * NULL) in s, the resource the answer was counted against. Returns true when
 * the answer is a rate-limit refusal (403/429 with remaining 0 or Retry-After, a bare 429,
 * or a 403 whose message says_rate_limit: a secondary limit);
 * s->barred_until then says until when no call on that resource may be
 * made. An answer that leaves remaining at 0 bars until the reset too.
 */
bool github_rate_update(struct github_rate *s, long status, const char *limit,
                        const char *remaining, const char *reset, const char *retry_after,
                        bool says_rate_limit, time_t now);
/* A resource name as GitHub spells them ([a-z0-9_], 1..47 bytes); others count as "core". */
bool github_resource_name_ok(const char *s);
/* The "core" resource, which every route counts against until GitHub names another. */
void github_rate_init(struct github *gh);
/* Before an attempt: -EAGAIN while the resource of call->route is barred. */
int github_rate_check(struct github *gh, const struct github_call *call, time_t now, struct err *e);
/*
 * After an attempt (sent: what httpc_perform returned): count it and record
 * the rate-limit headers of its answer against the resource GitHub names.
 * -EAGAIN when the answer is a rate-limit refusal.
 */
int github_rate_account(struct github *gh, const struct github_call *call, int sent,
                        const struct httpc_response *resp, time_t now, struct err *e);

/*
 * The route's templated path for the request counters ("/repos/{owner}/{repo}/actions/runners"
 * in repository scope, "/orgs/{org}/..." in organization scope), "other" for NULL or unknown.
 */
const char *github_route_path(const struct github *gh, const char *route);
/* Add n requests of (route path, method, status) to gh->stats (gh->mu held). */
void github_count_request(struct github *gh, const char *route_path, const char *method, int status,
                          uint64_t n);

/* github_cache.c: a copy of the cached page for url; false when there is none. */
bool github_etag_lookup(struct github *gh, const char *url, struct github_etag *ret);
/* Keep body (and its Link header) as the page of url under etag; best effort. */
void github_etag_store(struct github *gh, const char *url, const char *etag, const struct buf *body,
                       const char *link);
void github_etag_clear(struct github_etag *t);
/* A runner page seen before with exactly these bytes: its runners appended to acc. 1 = hit. */
int github_memo_lookup(struct github *gh, const char *url, const char *manager,
                       const struct buf *body, struct github_runner_list *acc, int64_t *ret_total,
                       size_t *ret_seen);
/* Remember the n runners parsed from a page (best effort: a failure only costs a parse). */
void github_memo_store(struct github *gh, const char *url, const char *manager,
                       const struct buf *body, const struct github_runner *page, size_t n,
                       int64_t total, size_t seen);
/* Both caches emptied (github_free). */
void github_cache_release(struct github *gh);

/* github_auth.c */
int github_auth_load_key(const char *pem, EVP_PKEY **ret, struct err *e);
/* An RS256 JWT for the App: iat = now - 60, exp = now + 540, iss = app_id. */
int github_auth_jwt(EVP_PKEY *key, int64_t app_id, time_t now, char **ret, struct err *e);
/*
 * "Authorization: Bearer ..." for the next call (installation token fetched
 * when needed, within deadline: clock_mono_ms() time).
 */
int github_auth_header(struct github *gh, bool use_jwt, int64_t deadline, char **ret,
                       struct err *e);
/* Forget the installation token (GitHub refused it). */
void github_auth_invalidate(struct github *gh);
/* Wipe and free a secret string (token, JWT, header line); *s becomes NULL. */
void github_secret_free(char **s);

/*
 * github_fetch.c: the shapes every endpoint takes. github_call_json makes
 * the call through github_do() and parses a 2xx body (within
 * opts.max_response) into ret->root. On failure *ret is untouched.
 */
int github_call_json(struct github *gh, const struct github_call *call, struct github_answer *ret,
                     struct err *e);
void github_answer_release(struct github_answer *a);
/*
 * The usual call: GET url, retried as idempotent, its JSON root into
 * *ret_root (the caller decrefs it). missing, when not NULL, says what a 404
 * means: -ENOENT "<op>: <missing>".
 */
int github_get_json(struct github *gh, const char *route, const char *op, const char *url,
                    const char *missing, json_t **ret_root, struct err *e);
/* The same with If-None-Match from the ETag cache: an unchanged answer (304) is free. */
int github_get_json_conditional(struct github *gh, const char *route, const char *op,
                                const char *url, const char *missing, json_t **ret_root,
                                struct err *e);
/* Every page of the list that starts at url, as struct github_pager says. */
int github_paginate(struct github *gh, struct github_pager *pg, const char *url, struct err *e);

/*
 * github_json.c: a body as JSON (jansson's limits, no duplicate keys), then
 * shapes from a parsed root. Every field's type is checked; -EPROTO names the
 * operation and the field. On failure *ret and acc are as they were.
 */
int github_json_load(const char *op, const struct buf *body, json_t **ret, struct err *e);
/*
 * One page of a runner list appended to acc (only runners owned by manager
 * when not NULL). *ret_total is total_count, *ret_seen the runners on the page.
 */
int github_json_runners_page(const char *op, json_t *root, const char *manager,
                             struct github_runner_list *acc, int64_t *ret_total, size_t *ret_seen,
                             struct err *e);
int github_json_runner(const char *op, json_t *root, struct github_runner *ret, struct err *e);
/* github_releases.c: the releases list (a JSON array) into *ret. */
int github_json_runner_releases(const char *op, json_t *root, struct github_runner_releases *ret,
                                struct err *e);
/* A token: 1..GITHUB_TOKEN_MAX bytes of RFC 6750's bearer-token characters, else -EPROTO. */
int github_json_token(const char *op, json_t *root, struct github_token *ret, struct err *e);
int github_json_jit(const char *op, json_t *root, struct github_jit *ret, struct err *e);
int github_json_apps(const char *op, json_t *root, struct github_app_list *ret, struct err *e);
/* Look name up (case-insensitively) in one page of runner groups; *ret_id 0 when absent. */
int github_json_group_page(const char *op, json_t *root, const char *name, int64_t *ret_id,
                           struct err *e);
int github_json_job(const char *op, json_t *root, struct github_job *ret, struct err *e);
int github_json_jobs_page(const char *op, json_t *root, struct github_job_list *acc, struct err *e);
/* GitHub's error "message", printable ASCII only, "" when none. */
void github_json_error_message(const struct buf *body, char *out, size_t cap);
/* github_hooks.c: a page of hook deliveries (at most GITHUB_DELIVERIES_MAX). */
int github_json_deliveries(const char *op, json_t *root, struct github_hook_delivery_list *ret,
                           struct err *e);
/*
 * One field of object o, its type checked (-EPROTO "<op>: unexpected answer
 * from GitHub: <where>.<key> ..."); optional: missing or null gives 0 / "".
 * A string that does not fit cap is an error. For the endpoints' own files.
 */
int github_json_field_int(const char *op, const char *where, json_t *o, const char *key,
                          bool optional, int64_t *ret, struct err *e);
int github_json_field_bool(const char *op, const char *where, json_t *o, const char *key, bool *ret,
                           struct err *e);
int github_json_field_str(const char *op, const char *where, json_t *o, const char *key,
                          bool optional, char *dst, size_t cap, struct err *e);

/*
 * github_runner_bin.c: download app into dir unless current-<arch> already
 * names it intact; ret says what happened.
 */
int github_runner_bin_install(struct github *gh, const struct github_runner_app *app,
                              const char *dir, const char *arch, struct github_bin_result *ret,
                              struct err *e);
/* "actions-runner-linux-x64-2.321.0.tar.gz" -> "2.321.0" (the file name when it has no version). */
void github_runner_bin_version(const char *filename, char *out, size_t cap);

#endif
