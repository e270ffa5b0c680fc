/*
 * libFuzzer target: a webhook delivery as runnerd reads it, from untrusted
 * bytes. Input: the X-GitHub-Event, X-GitHub-Delivery, Content-Type and
 * X-Hub-Signature-256 values, one per line (an empty line is an absent
 * header), then the body. The signature is checked against a fixed
 * secret, the delivery parsed and, for a workflow_job, routed. Whatever
 * the input, nothing crashes, leaks or reads out of bounds (ASan+UBSan),
 * a parsed job has positive ids and labels within bounds, a failure
 * leaves the output untouched and maps to a 4xx/5xx status, and the
 * one-pass scan answers as the jansson tree it replaced would have
 * (tests/lib/webhook_reference.c): the same refusal, or the same job.
 */
#include "util/common.h"
#include "webhook/webhook.h"
#include "webhook_reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzz webhook secret"

static const char *const CONFIG =
        "github:\n  path: octo/hello\n  token_env: FUZZ_TOKEN\n"
        "manager:\n  name: ci\n"
        "flavors:\n  - {name: small, provider: local, labels: [small], max: 2}\n"
        "  - {name: big, provider: local, labels: [big, gpu], max: 2}\n";

static struct config *cfg;

/* The next line of data (at most cap-1 bytes kept), NULL when it is empty. */
static const char *line(const uint8_t **p, const uint8_t *end, char *out, size_t cap)
{
	size_t n = 0;

	while (*p < end && **p != '\n') {
		if (n + 1 < cap)
			out[n++] = (char)**p;
		(*p)++;
	}
	if (*p < end)
		(*p)++;
	out[n] = '\0';
	return n ? out : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char ev[128], id[128], ct[128], sig[128], why[512];
	const uint8_t *p = data, *end = data + size;
	struct webhook_headers h;
	struct webhook_delivery d = {.id = "untouched"};
	struct err e = {0};
	char *body;
	size_t len, idx;
	int r;

	if (!cfg) {
		struct config_errors errs = {0};
		setenv("FUZZ_TOKEN", "ghp_fuzz", 1);
		if (config_load_string("fuzz.yaml", CONFIG, strlen(CONFIG), &cfg, &errs) < 0)
			abort();
	}
	h.event = line(&p, end, ev, sizeof(ev));
	h.delivery = line(&p, end, id, sizeof(id));
	h.content_type = line(&p, end, ct, sizeof(ct));
	const char *s = line(&p, end, sig, sizeof(sig));
	len = (size_t)(end - p);
	body = malloc(len + 1);
	if (!body)
		return 0;
	memcpy(body, p, len);
	body[len] = '\0';

	r = webhook_verify(SECRET, strlen(SECRET), body, len, s, &e);
	if (r != 0 && r != -EACCES)
		abort();
	r = webhook_parse(&h, body, len, &d, &e);
	if (r < 0) {
		if (strcmp(d.id, "untouched") != 0 || webhook_http_status(r) < 400)
			abort();
	} else if (d.kind == WEBHOOK_JOB) {
		if (d.job.job_id <= 0 || d.job.run_id <= 0 || d.job.labels.n > WEBHOOK_LABELS_MAX ||
		    !strchr(d.job.repo, '/'))
			abort();
		for (size_t i = 0; i < d.job.labels.n; i++)
			if (!*d.job.labels.v[i] || strlen(d.job.labels.v[i]) >= WEBHOOK_LABEL_MAX)
				abort();
		if (webhook_route(cfg, &d.job.labels, &idx) == 0 && idx >= cfg->n_flavors)
			abort();
		(void)config_repo_in_scope(cfg, d.job.repo);
	}
	webhook_delivery_release(&d);
	if (webhook_parse_compare(&h, body, len, why, sizeof(why)) < 0) {
		fprintf(stderr, "fuzz_webhook: %s\n", why);
		abort();
	}
	free(body);
	return 0;
}
