/*
 * A delivery's headers and body -> what runnerd needs of it. Pure and
 * fuzzed (tests/fuzz/fuzz_webhook.c): it reads only its arguments, holds
 * numbers as jansson's 64-bit integers (job ids pass 2^53; a double would
 * round them), and never puts body text in a message. It keys on
 * workflow_job's action, never on workflow_job.status: one of GitHub's own
 * examples has action "queued" with status "waiting".
 */
#include "util/common.h"
#include "webhook/webhook.h"

#include <jansson.h>

static const char *const action_names[] = {
        [WEBHOOK_QUEUED] = "queued",
        [WEBHOOK_IN_PROGRESS] = "in_progress",
        [WEBHOOK_COMPLETED] = "completed",
        [WEBHOOK_WAITING] = "waiting",
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

static int positive_id(json_t *obj, const char *key, int64_t *ret)
{
	json_t *v = json_object_get(obj, key);

	/* jansson holds integers as json_int_t (long long): exact to 2^63 */
	if (!json_is_integer(v) || json_integer_value(v) <= 0)
		return -EINVAL;
	*ret = (int64_t)json_integer_value(v);
	return 0;
}

static enum webhook_action action_of(const char *s)
{
	for (size_t i = 0; i < WEBHOOK_ACTION_OTHER; i++)
		if (strcmp(s, action_names[i]) == 0)
			return (enum webhook_action)i;
	return WEBHOOK_ACTION_OTHER;
}

static int parse_job(json_t *root, struct webhook_job *job, struct err *e)
{
	json_t *action = json_object_get(root, "action");
	json_t *wj = json_object_get(root, "workflow_job");
	json_t *repo = json_object_get(json_object_get(root, "repository"), "full_name");
	json_t *labels, *l;
	size_t i;
	const char *s;

	if (!json_is_string(action))
		return err_set(e, -EINVAL, "webhook: workflow_job delivery without an action");
	if (!json_is_object(wj))
		return err_set(e, -EINVAL, "webhook: workflow_job delivery without workflow_job");
	job->action = action_of(json_string_value(action));
	if (positive_id(wj, "id", &job->job_id) < 0)
		return err_set(e, -EINVAL, "webhook: workflow_job.id is not a positive integer");
	if (positive_id(wj, "run_id", &job->run_id) < 0)
		return err_set(e, -EINVAL, "webhook: workflow_job.run_id is not a positive integer");
	if (!json_is_string(repo) || (s = json_string_value(repo))[0] == '\0' ||
	    json_string_length(repo) >= sizeof(job->repo) || !strchr(s, '/') ||
	    strlen(s) != json_string_length(repo))
		return err_set(e, -EINVAL, "webhook: repository.full_name is missing or not owner/name");
	memcpy(job->repo, s, json_string_length(repo) + 1);
	labels = json_object_get(wj, "labels");
	if (!json_is_array(labels))
		return err_set(e, -EINVAL, "webhook: workflow_job.labels is not a list");
	if (json_array_size(labels) > WEBHOOK_LABELS_MAX)
		return err_set(e, -EINVAL, "webhook: workflow_job has more than %d labels",
		               WEBHOOK_LABELS_MAX);
	json_array_foreach (labels, i, l) {
		size_t n = json_string_length(l);
		if (!json_is_string(l) || n == 0 || n >= WEBHOOK_LABEL_MAX ||
		    strlen(json_string_value(l)) != n)
			return err_set(e, -EINVAL, "webhook: workflow_job.labels[%zu] is not a label", i);
		if (strv_push(&job->labels, json_string_value(l)) < 0)
			return err_set(e, -ENOMEM, "webhook: out of memory");
	}
	return 0;
}

int webhook_parse(const struct webhook_headers *h, const char *body, size_t len,
                  struct webhook_delivery *ret, struct err *e)
{
	struct webhook_delivery d = {0};
	json_error_t jerr;
	json_t *root = NULL;
	int r = 0;

	if (!header_token(h->event, d.event, sizeof(d.event)))
		return err_set(e, -EINVAL, "webhook: no valid X-GitHub-Event header");
	if (!header_token(h->delivery, d.id, sizeof(d.id)))
		return err_set(e, -EINVAL, "webhook: no valid X-GitHub-Delivery header");
	if (!content_type_json(h->content_type))
		return err_set(e, -EPROTONOSUPPORT,
		               "webhook: the body is not JSON: set the hook's content type to "
		               "application/json");
	/* JSON_DISABLE_EOF_CHECK off: one document and nothing after it */
	root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root || !json_is_object(root)) {
		/* where, never jansson's text: it quotes the body */
		if (root)
			r = err_set(e, -EINVAL, "webhook: the body is not a JSON object");
		else
			r = err_set(e, -EINVAL, "webhook: the body is not JSON (line %d, column %d)",
			            jerr.line, jerr.column);
		goto out;
	}
	if (strcmp(d.event, "ping") == 0) {
		d.kind = WEBHOOK_PING;
	} else if (strcmp(d.event, "workflow_job") == 0) {
		d.kind = WEBHOOK_JOB;
		r = parse_job(root, &d.job, e);
	} else {
		d.kind = WEBHOOK_OTHER;
	}
out:
	json_decref(root);
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
