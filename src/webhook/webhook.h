/*
 * GitHub webhook deliveries, as runnerd's reactive mode reads them: the
 * signature check (webhook_verify.c), the parse of a request's headers and
 * body into a delivery (webhook_parse.c) and the routing of a job to a
 * flavor (webhook_route.c). Everything here is pure: no I/O, no logging,
 * no GitHub call, no clock; the intake (src/reactive/) does the rest. The
 * body handed in is untrusted until webhook_verify said yes, and its size
 * was capped before anything here sees it.
 */
#ifndef RUNNERD_WEBHOOK_H
#define RUNNERD_WEBHOOK_H

#include "util/common.h"
#include "util/err.h"
#include "util/strv.h"
#include "config/config.h"

#define WEBHOOK_DELIVERY_MAX 80  /* X-GitHub-Delivery: a UUID (36), bounded */
#define WEBHOOK_EVENT_MAX    64  /* X-GitHub-Event */
#define WEBHOOK_REPO_MAX     256 /* "owner/name" (39 + 1 + 100 on github.com) */
#define WEBHOOK_LABELS_MAX   64  /* labels of one job */
#define WEBHOOK_LABEL_MAX    256 /* bytes of one label */

/*
 * Whether sig (the X-Hub-Signature-256 header, "sha256=" and 64 hex
 * digits, either case; NULL when absent) is the HMAC-SHA256 of body under
 * key. 0 when it is; -EACCES when it is absent, malformed or wrong (the
 * caller answers 401 to all three); -EINVAL for an empty key. The digests
 * are compared in constant time; nothing of key reaches e.
 */
int webhook_verify(const char *key, size_t key_len, const void *body, size_t len,
                   const char *sig, struct err *e);

enum webhook_kind {
	WEBHOOK_PING = 0,  /* GitHub's hello when a hook is made */
	WEBHOOK_JOB,       /* workflow_job */
	WEBHOOK_OTHER,     /* any other event: acknowledged and ignored */
};

/* workflow_job's action: what happened, whatever workflow_job.status says. */
enum webhook_action {
	WEBHOOK_QUEUED = 0,
	WEBHOOK_IN_PROGRESS,
	WEBHOOK_COMPLETED,
	WEBHOOK_WAITING, /* waits for an environment's approval: not runnable yet */
	WEBHOOK_ACTION_OTHER,
};

const char *webhook_action_name(enum webhook_action a);

struct webhook_job {
	enum webhook_action action;
	int64_t job_id; /* > 0, a 64-bit integer as sent (never through a double) */
	int64_t run_id; /* > 0 */
	char repo[WEBHOOK_REPO_MAX]; /* repository.full_name */
	struct strv labels;          /* workflow_job.labels, as sent */
};

struct webhook_delivery {
	char id[WEBHOOK_DELIVERY_MAX];  /* X-GitHub-Delivery */
	char event[WEBHOOK_EVENT_MAX];  /* X-GitHub-Event */
	enum webhook_kind kind;
	struct webhook_job job; /* WEBHOOK_JOB only */
};

/* The request headers the parse reads (NULL when absent). */
struct webhook_headers {
	const char *event;        /* X-GitHub-Event */
	const char *delivery;     /* X-GitHub-Delivery */
	const char *content_type; /* Content-Type */
};

/*
 * A delivery from a request whose signature was checked. 0 and *ret (to
 * release with webhook_delivery_release); otherwise *ret is untouched, e
 * says why (never quoting the body) and webhook_http_status(r) is the
 * answer: -EINVAL (400) for a missing or malformed header, malformed JSON,
 * or a workflow_job without its fields (action, workflow_job.id, run_id,
 * labels, repository.full_name); -EPROTONOSUPPORT (415) for a body that
 * is not JSON (a hook set to form encoding); -ENOMEM.
 */
int webhook_parse(const struct webhook_headers *h, const char *body, size_t len,
                  struct webhook_delivery *ret, struct err *e);
void webhook_delivery_release(struct webhook_delivery *d);

/* The HTTP status for an error of webhook_verify or webhook_parse. */
int webhook_http_status(int r);

/* Why a job gets no runner from this manager. */
enum webhook_skip {
	WEBHOOK_SKIP_NONE = 0,
	WEBHOOK_SKIP_REPO,      /* not a repository of github.path */
	WEBHOOK_SKIP_NO_FLAVOR, /* no flavor has every label it asks for */
	WEBHOOK_SKIP__MAX,
};

const char *webhook_skip_name(enum webhook_skip s);

/*
 * Whether repo ("owner/name") is github.path (repository scope) or a
 * repository of its organization (organization scope), case-insensitively.
 */
bool webhook_in_scope(const struct config *cfg, const char *repo);

/*
 * The flavor a job with these labels goes to (DESIGN.md section 3): the
 * first flavor, in config order, whose labels, with self-hosted, linux and
 * its arch label implied, hold every label of the job, compared
 * case-insensitively. Its index in cfg->flavors in *ret_index and 0;
 * -ENOENT when none does (*ret_index untouched).
 */
int webhook_route(const struct config *cfg, const struct strv *labels, size_t *ret_index);

#endif
