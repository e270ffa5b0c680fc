/*
 * GitHub REST client for self-hosted runners: repository ("owner/repo") and
 * organization scope, github.com or GitHub Enterprise Server.
 *
 * Guarantees the rest of runnerd relies on:
 * - Every request has a connect and a total timeout; no call can hang, and
 *   no call sleeps for a rate limit: while GitHub has barred us (403/429 with
 *   rate-limit headers or Retry-After) calls fail fast with -EAGAIN.
 * - Rate limits are kept per resource, as GitHub names it in
 *   X-RateLimit-Resource ("core", "search", "actions_runner_registration",
 *   ...): a bar on one resource fails fast only the calls GitHub last
 *   counted against that resource. A call GitHub has not answered yet, and
 *   an answer without a valid resource name, count as "core". (On github.com
 *   every call this client makes, registration-token and generate-jitconfig
 *   included, counts against "core"; "actions_runner_registration" is what
 *   the runner's own config.sh registration spends. The client does not
 *   assume it: it follows the header.)
 * - Idempotent calls are retried on 5xx and transport errors with bounded
 *   exponential backoff and jitter.
 * - Deadline: one API request -- every attempt, the backoff sleeps between
 *   them, and the installation-token exchange it may need first -- ends
 *   within 2 x github.request_timeout of its start (plus scheduling slack of
 *   a few tens of milliseconds), each attempt within request_timeout. A
 *   retry that could not finish in time is not started: the call fails with
 *   its last error ("... no time left for another attempt"), or -ETIMEDOUT.
 *   The bound is per request: a list of P pages may take P times as long.
 * - github_cancel() makes every call in flight fail with -ECANCELED within
 *   about 100 ms (an HTTP transfer is dropped, a backoff sleep cut short),
 *   and every later call at once, until github_uncancel().
 * - The runner list is fetched with If-None-Match per page; an unchanged list
 *   is answered from cache (304) and costs no rate limit.
 * - A list that fails part-way is an error with ret->complete == false, never
 *   a shorter list.
 * - Responses are read through bounded buffers and parsed with jansson; an
 *   unexpected shape is a clean -EPROTO error.
 * - The token, App key, installation token and JIT configs never reach a
 *   log line, an error message or argv.
 *
 * The client is safe to use from several threads at once (one internal lock
 * guards the token, caches and counters; requests run unlocked).
 */
#ifndef RUNNERD_GITHUB_H
#define RUNNERD_GITHUB_H

#include "util/common.h"
#include "util/err.h"
#include "config/config.h"

struct github;

enum github_runner_status { GITHUB_RUNNER_OFFLINE = 0, GITHUB_RUNNER_ONLINE };

struct github_runner {
	int64_t id;
	char name[128];
	enum github_runner_status status;
	bool busy;
	char **labels; /* owned */
	size_t n_labels;
};

struct github_runner_list {
	struct github_runner *v;
	size_t n;
	bool complete; /* every page was read */
};

struct github_jit {
	int64_t runner_id;
	char *encoded_jit_config; /* secret; wiped by github_jit_release */
};

struct github_token {
	char *token; /* secret; opaque: any length and shape (never assume 40 characters) */
	time_t expires_at;
};

struct github_runner_app {
	char os[32];
	char architecture[32];
	char download_url[1024];
	char filename[256];
	char sha256[65]; /* lowercase hex, "" when GitHub gave none */
};

struct github_app_list {
	struct github_runner_app *v;
	size_t n;
};

struct github_job {
	int64_t id;
	int64_t run_id;
	char status[32];     /* queued | in_progress | completed | waiting | ... */
	char conclusion[32]; /* "" while running */
	char name[256];
	char **labels;
	size_t n_labels;
	int64_t runner_id; /* 0 when none */
	char runner_name[128];
	time_t created_at, started_at, completed_at; /* 0 when absent */
};

struct github_job_list {
	struct github_job *v;
	size_t n;
};

/* One rate-limit resource as GitHub's answers described it. */
struct github_rate {
	char resource[48];   /* "core", "actions_runner_registration", ... */
	int64_t limit;       /* last X-RateLimit-Limit, -1 unknown */
	int64_t remaining;   /* last X-RateLimit-Remaining, -1 unknown */
	time_t reset;        /* last X-RateLimit-Reset */
	time_t barred_until; /* 0 when not barred */
};

#define GITHUB_MAX_RESOURCES 8 /* resources beyond this many are counted as "core" */

/* Distinct (route, method, status) triples counted; more go to requests_overflow. */
#define GITHUB_MAX_REQUEST_COUNTS 96

/*
 * Requests put on the wire for one route, method and answer. The route is
 * the endpoint's path as GitHub's API description templates it
 * ("/repos/{owner}/{repo}/actions/runners", "/orgs/{org}/actions/runners/{runner_id}"),
 * never a real owner, name or id; "other" for a call with no known route.
 */
struct github_request_count {
	const char *route;  /* static */
	const char *method; /* "GET", "POST", "DELETE", ... (static) */
	int status;         /* the HTTP status; 0: no answer (transport error, timeout) */
	uint64_t n;
};

struct github_stats {
	uint64_t requests_sent;    /* every HTTP request put on the wire */
	uint64_t requests_counted; /* those GitHub counts against the rate limit (not 304) */
	uint64_t not_modified;     /* 304 answers */
	uint64_t retries;
	/* The "core" resource (what almost every call spends): */
	int64_t rate_limit;     /* last X-RateLimit-Limit, -1 unknown */
	int64_t rate_remaining; /* last X-RateLimit-Remaining, -1 unknown */
	time_t rate_reset;      /* last X-RateLimit-Reset */
	time_t barred_until;    /* 0 when not barred */
	/* Every resource seen so far, "core" first (a bar already over shows as 0). */
	struct github_rate resources[GITHUB_MAX_RESOURCES];
	size_t n_resources;
	/* Requests by route, method and status, in the order first seen. */
	struct github_request_count requests[GITHUB_MAX_REQUEST_COUNTS];
	size_t n_requests;
	uint64_t requests_overflow; /* requests of triples beyond the table */
};

/* Client tunables beyond the config (tests shorten them). */
struct github_opts {
	int max_retries;      /* default 3 */
	long backoff_base_ms; /* default 500 */
	long backoff_max_ms;  /* default 4000 */
	size_t max_response;  /* default 32 MiB per response body */
};

void github_opts_default(struct github_opts *o);

/*
 * Cancel every call of this client, in flight or to come, from any thread
 * (async-signal-safe: it only stores to an atomic flag). Such calls fail with
 * -ECANCELED and a message that says so; nothing they half did is undone (a
 * POST GitHub received stays received). github_uncancel() lets calls through
 * again; a call that already failed is not resumed.
 */
void github_cancel(struct github *gh);
void github_uncancel(struct github *gh);
bool github_is_cancelled(const struct github *gh);

/* Uses cfg->github (api_url, path, token or app, ca_file, proxy, timeouts). cfg must outlive the
 * client. */
int github_new(const struct config *cfg, const struct github_opts *opts, struct github **ret,
               struct err *e);
void github_free(struct github *gh);

/*
 * Runners of the configured scope. Only runners whose name is owned by
 * `manager` (name_is_owned) are returned unless manager is NULL.
 * On a partial failure returns <0 and sets ret->complete = false (ret holds
 * nothing the caller may act on).
 */
int github_list_runners(struct github *gh, const char *manager, struct github_runner_list *ret,
                        struct err *e);
/*
 * One runner by name (GET .../actions/runners?name=NAME: one request however
 * many runners the scope has; names compare without case). -ENOENT when no
 * runner has it. Release *ret with github_runner_release().
 */
int github_find_runner(struct github *gh, const char *name, struct github_runner *ret,
                       struct err *e);
void github_runner_list_release(struct github_runner_list *l);
void github_runner_release(struct github_runner *r);

/* -ENOENT when GitHub answers 404. */
int github_get_runner(struct github *gh, int64_t id, struct github_runner *ret, struct err *e);
/* 0 on 204 or 404 (already gone); -EBUSY on 422 (the runner is running a job). */
int github_delete_runner(struct github *gh, int64_t id, struct err *e);

int github_registration_token(struct github *gh, struct github_token *ret, struct err *e);
int github_remove_token(struct github *gh, struct github_token *ret, struct err *e);
void github_token_release(struct github_token *t);

/*
 * generate-jitconfig. runner_group_id is 1 (Default) in repository scope.
 * A 409 (name already registered, e.g. after a crash) is resolved by looking
 * the runner up by name (GET .../actions/runners?name=NAME, one request
 * whatever the pool's size): a registration that is not busy is deleted and
 * the call is retried once; a busy one gives -EBUSY.
 */
int github_generate_jitconfig(struct github *gh, const char *name, int64_t runner_group_id,
                              const struct strv *labels, const char *work_folder,
                              struct github_jit *ret, struct err *e);
void github_jit_release(struct github_jit *j);

int github_list_runner_applications(struct github *gh, struct github_app_list *ret, struct err *e);
void github_app_list_release(struct github_app_list *l);

/* Organization scope: runner group name -> id; repository scope: 1. -ENOENT when unknown. */
int github_runner_group_id(struct github *gh, const char *name, int64_t *ret, struct err *e);

/*
 * repo is "owner/repo" (in organization scope it comes from the job's
 * webhook). A conditional request: asking again about an unchanged job
 * costs no rate limit. -ENOENT when GitHub does not know the job. These
 * job calls send nothing for a repo that is no owner/repo (-EINVAL); a
 * run's jobs (the two below) are not asked of a repo outside the
 * configured scope either (-EPERM; config_repo_in_scope).
 */
int github_get_job(struct github *gh, const char *repo, int64_t job_id, struct github_job *ret,
                   struct err *e);
int github_list_run_jobs(struct github *gh, const char *repo, int64_t run_id,
                         struct github_job_list *ret, struct err *e);
/*
 * A workflow run as the runs list shows it (what the reactive sweep needs).
 */
struct github_run {
	int64_t id;
	int64_t attempt; /* run_attempt: 1, 2 after a re-run, ...; 0 unknown */
	char status[32]; /* queued | in_progress | completed | waiting | ... */
	time_t created_at;
	time_t updated_at; /* its last change (a job queued, began or ended) */
};
struct github_run_list {
	struct github_run *v;
	size_t n;
};
/*
 * repo's workflow runs with this status (GitHub's filter: "queued",
 * "in_progress", ...), newest first, at most max (pages of up to 100,
 * conditional requests: an unchanged page costs no rate limit). -EINVAL
 * for a repo that is no owner/repo or a status that is no word, -EPERM for
 * a repo outside the configured scope: nothing is sent for either.
 */
int github_list_runs(struct github *gh, const char *repo, const char *status, size_t max,
                     struct github_run_list *ret, struct err *e);
void github_run_list_release(struct github_run_list *l);
/*
 * The job of run run_id that runner_name ran: the run's jobs read page by
 * page (conditional requests: an unchanged page costs no rate limit), at
 * most max_pages pages of 100, stopping at the first match. -ENOENT when
 * no job of those pages ran on it.
 */
int github_find_run_job(struct github *gh, const char *repo, int64_t run_id,
                        const char *runner_name, int max_pages, struct github_job *ret,
                        struct err *e);
/*
 * The webhook's deliveries (repository or organization hook, in the
 * configured scope): what runnerd's backfill reads to redeliver what failed.
 */
#define GITHUB_DELIVERIES_MAX 100
struct github_hook_delivery {
	int64_t id;
	char guid[80]; /* X-GitHub-Delivery */
	char event[64];
	char action[32];     /* "" when none */
	int64_t status_code; /* the receiver's HTTP status, 0 when it was not reached */
	bool redelivery;
	int64_t delivered_at; /* unix seconds, 0 when unreadable */
};

struct github_hook_delivery_list {
	struct github_hook_delivery *v;
	size_t n;
};

/*
 * The hook's failed deliveries, newest first, one page of at most
 * GITHUB_DELIVERIES_MAX (status=failure). A conditional request: while no
 * delivery failed anew, asking costs no rate limit. -ENOENT when GitHub
 * knows no such hook (or the credentials may not read it).
 */
int github_list_failed_deliveries(struct github *gh, int64_t hook_id,
                                  struct github_hook_delivery_list *ret, struct err *e);
/*
 * The hook's deliveries delivered at since (unix s) or later, whatever their
 * status, newest first, page by page (at most max, and GITHUB_MAX_PAGES
 * pages). Not conditional: it is asked once, after a reboot.
 */
int github_list_deliveries_since(struct github *gh, int64_t hook_id, int64_t since, size_t max,
                                 struct github_hook_delivery_list *ret, struct err *e);
void github_hook_delivery_list_release(struct github_hook_delivery_list *l);
/* Ask GitHub to deliver one again (202). -ENOENT when it knows no such delivery. */
int github_redeliver(struct github *gh, int64_t hook_id, int64_t delivery_id, struct err *e);

void github_job_release(struct github_job *j);
void github_job_list_release(struct github_job_list *l);

void github_get_stats(struct github *gh, struct github_stats *ret);
/*
 * gh takes over old's request counters (sent, counted, 304s, retries, by
 * route), so a client that replaces another (a reload) keeps counting
 * where it stopped: Prometheus counters never go down. gh has made no
 * request yet.
 */
void github_adopt_counters(struct github *gh, struct github *old);

/* "repos/owner/repo" or "orgs/org": the scope every runner call works in. */
const char *github_scope(const struct github *gh);
/*
 * GET the repository or organization itself: proves the credentials work and
 * the path exists for them (-EACCES bad credentials, -ENOENT unknown path).
 */
int github_check_scope(struct github *gh, struct err *e);

/*
 * The runner binary (check_runner_bin / update_runner_bin): pick the linux
 * application for arch, download it into <state_dir>/runner-bin/, verify its
 * sha256 against the API's checksum before it replaces the cached copy.
 */
enum github_bin_outcome {
	GITHUB_BIN_UNCHANGED = 0, /* the cached copy is that version and intact */
	GITHUB_BIN_INSTALLED,     /* there was no cached copy */
	GITHUB_BIN_UPDATED,       /* another version replaced the cached copy */
	GITHUB_BIN_REPAIRED,      /* the cached copy of this version was missing or damaged */
};

struct github_bin_result {
	enum github_bin_outcome outcome;
	char version[64];     /* now cached, e.g. "2.321.0" (from GitHub's file name) */
	char old_version[64]; /* cached before, "" when none */
	char path[PATH_MAX];  /* the verified tarball */
};

/*
 * The runner software's releases (GET repos/actions/runner/releases, one
 * conditional request: free while unchanged), newest first as GitHub lists
 * them, drafts, prereleases and tags that are not versions left out, at most
 * GITHUB_RELEASES_MAX. -ENOENT where the API has no such repository (GitHub
 * Enterprise Server).
 */
#define GITHUB_RELEASES_MAX 30
struct github_runner_release {
	char version[32]; /* "2.321.0" (the tag without its 'v') */
	int64_t published_at;
};
struct github_runner_releases {
	struct github_runner_release v[GITHUB_RELEASES_MAX];
	size_t n;
};
int github_runner_releases(struct github *gh, struct github_runner_releases *ret, struct err *e);

/* "installed", "updated", ... */
const char *github_bin_outcome_name(enum github_bin_outcome o);
int github_runner_bin_update(struct github *gh, enum arch arch, const char *state_dir,
                             struct github_bin_result *ret, struct err *e);
/*
 * The same, older shape: *ret_changed is true unless the outcome was
 * "unchanged"; ret_path (may be NULL, capacity cap) gets the tarball's path.
 */
int github_update_runner_bin(struct github *gh, enum arch arch, const char *state_dir,
                             bool *ret_changed, char *ret_path, size_t cap, struct err *e);

#endif
