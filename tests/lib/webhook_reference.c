/*
 * webhook_reference.h: the jansson parse webhook_parse used before its
 * one-pass scan, kept as the oracle the scan is compared with.
 */
#include "util/common.h"
#include "webhook_reference.h"
#include "util/strutil.h"

#include <jansson.h>

static int positive_id(json_t *obj, const char *key, int64_t *ret)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) <= 0)
		return -EINVAL;
	*ret = (int64_t)json_integer_value(v);
	return 0;
}

static enum webhook_action action_of(const char *s)
{
	for (int i = 0; i < WEBHOOK_ACTION_OTHER; i++)
		if (strcmp(s, webhook_action_name((enum webhook_action)i)) == 0)
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
		return err_set(e, -EINVAL, "no action");
	if (!json_is_object(wj))
		return err_set(e, -EINVAL, "no workflow_job");
	job->action = action_of(json_string_value(action));
	if (positive_id(wj, "id", &job->job_id) < 0)
		return err_set(e, -EINVAL, "id");
	if (positive_id(wj, "run_id", &job->run_id) < 0)
		return err_set(e, -EINVAL, "run_id");
	if (!json_is_string(repo) || (s = json_string_value(repo))[0] == '\0' ||
	    json_string_length(repo) >= sizeof(job->repo) || !strchr(s, '/') ||
	    strlen(s) != json_string_length(repo))
		return err_set(e, -EINVAL, "full_name");
	memcpy(job->repo, s, json_string_length(repo) + 1);
	labels = json_object_get(wj, "labels");
	if (!json_is_array(labels))
		return err_set(e, -EINVAL, "labels");
	if (json_array_size(labels) > WEBHOOK_LABELS_MAX)
		return err_set(e, -EINVAL, "more labels");
	json_array_foreach(labels, i, l)
	{
		size_t n = json_string_length(l);
		if (!json_is_string(l) || n == 0 || n >= WEBHOOK_LABEL_MAX ||
		    strlen(json_string_value(l)) != n)
			return err_set(e, -EINVAL, "labels[%zu]", i);
		if (strv_push(&job->labels, json_string_value(l)) < 0)
			return err_set(e, -ENOMEM, "out of memory");
	}
	return 0;
}

int webhook_parse_reference(const struct webhook_headers *h, const char *body, size_t len,
                            struct webhook_delivery *ret, struct err *e)
{
	struct webhook_delivery d = {0};
	json_error_t jerr;
	json_t *root;
	int r = 0;

	str_copy(d.event, h->event ? h->event : "", sizeof(d.event));
	str_copy(d.id, h->delivery ? h->delivery : "", sizeof(d.id));
	root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root || !json_is_object(root)) {
		r = err_set(e, -EINVAL, "%s", root ? "not an object" : jerr.text);
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

static bool same_delivery(const struct webhook_delivery *a, const struct webhook_delivery *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind != WEBHOOK_JOB)
		return true;
	if (a->job.action != b->job.action || a->job.job_id != b->job.job_id ||
	    a->job.run_id != b->job.run_id || strcmp(a->job.repo, b->job.repo) != 0 ||
	    a->job.labels.n != b->job.labels.n)
		return false;
	for (size_t i = 0; i < a->job.labels.n; i++)
		if (strcmp(a->job.labels.v[i], b->job.labels.v[i]) != 0)
			return false;
	return true;
}

int webhook_parse_compare(const struct webhook_headers *h, const char *body, size_t len, char *why,
                          size_t cap)
{
	struct webhook_delivery a = {0}, b = {0};
	struct err ea = {0}, eb = {0};
	int ra, rb, ret = 0;

	ra = webhook_parse(h, body, len, &a, &ea);
	if (ra == -EPROTONOSUPPORT || (ra < 0 && strstr(ea.msg, "header")))
		return 0; /* refused before the body: the oracle reads only bodies */
	rb = webhook_parse_reference(h, body, len, &b, &eb);
	/*
	 * The one difference, on purpose: jansson's lexer drops a NUL byte
	 * that directly follows a number or a literal (its unget leaves the
	 * NUL where it reads "buffer empty"), so it takes {"a":1\0} for
	 * {"a":1}; JSON has no NUL outside a string, and the scan refuses it.
	 */
	if (ra == -EINVAL && rb == 0 && body && memchr(body, '\0', len)) {
		webhook_delivery_release(&b);
		return 0;
	}
	if ((ra < 0) != (rb < 0)) {
		snprintf(why, cap, "scan: %d (%s), jansson: %d (%s)", ra, ea.msg, rb, eb.msg);
		ret = -1;
	} else if (ra < 0 && webhook_http_status(ra) != webhook_http_status(rb)) {
		snprintf(why, cap, "scan status %d, jansson %d", webhook_http_status(ra),
		         webhook_http_status(rb));
		ret = -1;
	} else if (ra == 0 && !same_delivery(&a, &b)) {
		snprintf(why, cap, "the deliveries differ");
		ret = -1;
	}
	if (ra == 0)
		webhook_delivery_release(&a);
	if (rb == 0)
		webhook_delivery_release(&b);
	return ret;
}
