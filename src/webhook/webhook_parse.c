/*
 * A delivery's headers and body -> what runnerd needs of it. Pure and
 * fuzzed (tests/fuzz/fuzz_webhook.c): it reads only its arguments, reads
 * the body in one pass without a tree (webhook_scan.c), holds ids as
 * 64-bit integers (job ids pass 2^53; a double would round them), and
 * never puts body text in a message. It keys on
 * workflow_job's action, never on workflow_job.status: one of GitHub's own
 * examples has action "queued" with status "waiting".
 */
#include "util/common.h"
#include "webhook/webhook.h"
#include "webhook/webhook_scan.h"

static const char *const action_names[] = {
        [WEBHOOK_QUEUED] = "queued",       [WEBHOOK_IN_PROGRESS] = "in_progress",
        [WEBHOOK_COMPLETED] = "completed", [WEBHOOK_WAITING] = "waiting",
        [WEBHOOK_ACTION_OTHER] = "other",
};

const char *webhook_action_name(enum webhook_action a)
{
	return (unsigned)a < ARRAY_SIZE(action_names) ? action_names[a] : "other";
}

int webhook_http_status(int r)
{
	switch (r) {
	case 0:
		return 200;
	case -EACCES:
		return 401;
	case -E2BIG:
		return 413;
	case -EPROTONOSUPPORT:
		return 415;
	case -EINVAL:
		return 400;
	default:
		return 500;
	}
}

/* 1..max-1 characters of [A-Za-z0-9_.-], copied to out. */
static bool header_token(const char *s, char *out, size_t max)
{
	size_t n;

	if (!s)
		return false;
	n = strlen(s);
	if (n == 0 || n >= max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	memcpy(out, s, n + 1);
	return true;
}

/* JSON or no Content-Type at all; "application/json; charset=utf-8" too. */
static bool content_type_json(const char *ct)
{
	size_t n = strlen("application/json");

	if (!ct)
		return true;
	while (*ct == ' ')
		ct++;
	return strncasecmp(ct, "application/json", n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static enum webhook_action action_of(const struct webhook_scan *sc)
{
	if (sc->action_long)
		return WEBHOOK_ACTION_OTHER;
	for (size_t i = 0; i < WEBHOOK_ACTION_OTHER; i++)
		if (strcmp(sc->action, action_names[i]) == 0)
			return (enum webhook_action)i;
	return WEBHOOK_ACTION_OTHER;
}

/* The job of a scanned workflow_job delivery: its fields checked in this order. */
static int take_job(struct webhook_scan *sc, struct webhook_job *job, struct err *e)
{
	if (!sc->action_string)
		return err_set(e, -EINVAL, "webhook: workflow_job delivery without an action");
	if (!sc->job_object)
		return err_set(e, -EINVAL, "webhook: workflow_job delivery without workflow_job");
	job->action = action_of(sc);
	if (!sc->id_integer || sc->id <= 0)
		return err_set(e, -EINVAL, "webhook: workflow_job.id is not a positive integer");
	job->job_id = sc->id;
	if (!sc->run_id_integer || sc->run_id <= 0)
		return err_set(e, -EINVAL,
		               "webhook: workflow_job.run_id is not a positive integer");
	job->run_id = sc->run_id;
	if (!sc->full_name_string || sc->full_name_len == 0 ||
	    sc->full_name_len >= sizeof(job->repo) || !strchr(sc->full_name, '/'))
		return err_set(e, -EINVAL,
		               "webhook: repository.full_name is missing or not owner/name");
	memcpy(job->repo, sc->full_name, sc->full_name_len + 1);
	if (!sc->labels_array)
		return err_set(e, -EINVAL, "webhook: workflow_job.labels is not a list");
	if (sc->n_labels > WEBHOOK_LABELS_MAX)
		return err_set(e, -EINVAL, "webhook: workflow_job has more than %d labels",
		               WEBHOOK_LABELS_MAX);
	if (sc->bad_label < sc->n_labels)
		return err_set(e, -EINVAL, "webhook: workflow_job.labels[%zu] is not a label",
		               sc->bad_label);
	job->labels = sc->labels;
	sc->labels = (struct strv){0};
	return 0;
}

int webhook_parse(const struct webhook_headers *h, const char *body, size_t len,
                  struct webhook_delivery *ret, struct err *e)
{
	struct webhook_delivery d = {0};
	struct webhook_scan sc;
	bool job;
	int r, line = 0, column = 0;

	if (!header_token(h->event, d.event, sizeof(d.event)))
		return err_set(e, -EINVAL, "webhook: no valid X-GitHub-Event header");
	if (!header_token(h->delivery, d.id, sizeof(d.id)))
		return err_set(e, -EINVAL, "webhook: no valid X-GitHub-Delivery header");
	if (!content_type_json(h->content_type))
		return err_set(e, -EPROTONOSUPPORT,
		               "webhook: the body is not JSON: set the hook's content type to "
		               "application/json");
	job = strcmp(d.event, "workflow_job") == 0;
	/* one pass: the whole body checked, only a job's fields kept (no tree) */
	r = webhook_scan(body, len, job, &sc, &line, &column);
	if (r == -ENOMEM) {
		r = err_set(e, -ENOMEM, "webhook: out of memory");
	} else if (r < 0) {
		/* where, never the body's text */
		r = err_set(e, -EINVAL, "webhook: the body is not JSON (line %d, column %d)", line,
		            column);
	} else if (!sc.root_object) {
		r = err_set(e, -EINVAL, "webhook: the body is not a JSON object");
	} else if (strcmp(d.event, "ping") == 0) {
		d.kind = WEBHOOK_PING;
	} else if (job) {
		d.kind = WEBHOOK_JOB;
		r = take_job(&sc, &d.job, e);
	} else {
		d.kind = WEBHOOK_OTHER;
	}
	webhook_scan_release(&sc);
	if (r < 0) {
		webhook_delivery_release(&d);
		return r;
	}
	*ret = d;
	return 0;
}

void webhook_delivery_release(struct webhook_delivery *d)
{
	if (!d)
		return;
	strv_release(&d->job.labels);
}
