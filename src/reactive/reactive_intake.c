/*
 * The intake: POST /webhook and GET /healthz on webhook.listen. A request
 * is answered from what it carries and the state database alone, within
 * milliseconds: nothing here calls GitHub or waits for a pass. Order
 * matters: the body was capped by the server (413 unread), the signature
 * is checked before the body is parsed, and nothing is stored for a
 * request that is not signed. It must never log a body, a header value
 * but the delivery id and event, or the secret.
 */
#include "util/common.h"
#include "reactive/reactive_internal.h"
#include "util/handoff.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strutil.h"

/* At most one warning about rejected requests this often (the rest are counted). */
#define WARN_EVERY_MS (10 * 1000)

/* A rejected request: counted always, logged at most once in WARN_EVERY_MS. */
static void rejected(struct reactive *rx, const struct http_request *req, int status,
                     const char *why)
{
	int64_t now = clock_mono_ms();
	bool say;

	pthread_mutex_lock(&rx->stats_lock);
	if (status == 401)
		rx->stats.unauthorized++;
	else
		rx->stats.malformed++;
	if (status == 400)
		rx->stats.refused_400++;
	else if (status == 413)
		rx->stats.refused_413++;
	else if (status == 415)
		rx->stats.refused_415++;
	else if (status != 401)
		rx->stats.refused_other++;
	say = rx->warned_at == 0 || now - rx->warned_at >= WARN_EVERY_MS;
	if (say)
		rx->warned_at = now;
	pthread_mutex_unlock(&rx->stats_lock);
	if (say)
		log_warn("webhook from %s refused (%d): %s (later refusals for %ds are only "
		         "counted)",
		         req->peer, status, why, WARN_EVERY_MS / 1000);
}

/* The labels as a JSON array, for the queue's message. */
static int labels_json(const struct strv *labels, char *out, size_t cap)
{
	struct buf b = BUF_INIT(cap - 1);
	int r = buf_puts(&b, "[");

	for (size_t i = 0; r == 0 && i < labels->n; i++) {
		if (i)
			r = buf_puts(&b, ",");
		if (r == 0)
			r = buf_json_string(&b, labels->v[i]);
	}
	if (r == 0)
		r = buf_puts(&b, "]");
	if (r == 0)
		str_copy(out, buf_str(&b), cap);
	buf_release(&b);
	return r;
}

static void ignored(struct reactive *rx, const struct webhook_delivery *d, size_t why,
                    const char *what, struct http_response *resp)
{
	char msg[160];

	REACTIVE_COUNT(rx, ignored[why], 1);
	/* debug: in organization scope, every GitHub-hosted job comes this way too */
	log_debug("webhook: job %" PRId64 " of %s (%s) ignored: %s", d->job.job_id, d->job.repo,
	          webhook_action_name(d->job.action), what);
	snprintf(msg, sizeof(msg), "{\"ignored\":\"%s\"}\n", what);
	http_response_json(resp, 200, msg);
}

/* A queued job of ours: routed and pushed. cfg is read-locked. */
static int job_queued(struct reactive *rx, const struct config *cfg,
                      const struct webhook_delivery *d, struct http_response *resp, struct err *e)
{
	struct queue_job j = {
	        .job_id = d->job.job_id, .run_id = d->job.run_id, .received_at = clock_wall_ms()};
	size_t fi;
	int r;

	if (webhook_route(cfg, &d->job.labels, &fi) < 0) {
		ignored(rx, d, WEBHOOK_SKIP_NO_FLAVOR, "no flavor has every label it asks for",
		        resp);
		return 0;
	}
	str_copy(j.repo, d->job.repo, sizeof(j.repo));
	str_copy(j.flavor, cfg->flavors[fi].name, sizeof(j.flavor));
	str_copy(j.delivery_id, d->id, sizeof(j.delivery_id));
	if (labels_json(&d->job.labels, j.labels, sizeof(j.labels)) < 0) {
		/* not a job GitHub could hand a runner of ours either way: not an error of ours */
		ignored(rx, d, WEBHOOK_SKIP_NO_FLAVOR, "its labels are too long to queue", resp);
		return 0;
	}
	r = queue_push(rx->q, &j, e);
	if (r == -EEXIST) {
		REACTIVE_COUNT(rx, known, 1);
		log_info("webhook: job %" PRId64 " queued again (known already): nothing to do",
		         j.job_id);
		http_response_json(resp, 200, "{\"known\":true}\n");
		return 0;
	}
	if (r < 0)
		return r;
	REACTIVE_COUNT(rx, queued, 1);
	log_info("webhook: job %" PRId64 " of %s queued for flavor %s (delivery %s)", j.job_id,
	         j.repo, j.flavor, d->id);
	rx->trigger(rx->trigger_ctx);
	http_response_json(resp, 202, "{\"queued\":true}\n");
	return 0;
}

/* A workflow_job delivery, signed and new. cfg is read-locked. */
static int job_delivery(struct reactive *rx, const struct config *cfg,
                        const struct webhook_delivery *d, struct http_response *resp, struct err *e)
{
	int r;

	if (!webhook_in_scope(cfg, d->job.repo)) {
		ignored(rx, d, WEBHOOK_SKIP_REPO, "not a repository of github.path", resp);
		return 0;
	}
	switch (d->job.action) {
	case WEBHOOK_QUEUED:
		return job_queued(rx, cfg, d, resp, e);
	case WEBHOOK_IN_PROGRESS:
	case WEBHOOK_COMPLETED:
		/* a runner took it, or it ended (cancelled too): it waits no more */
		r = queue_ack(rx->q, d->job.job_id, webhook_action_name(d->job.action),
		              clock_wall_ms(), e);
		if (r < 0)
			return r;
		REACTIVE_COUNT(rx, acked, 1);
		log_info("webhook: job %" PRId64 " %s", d->job.job_id,
		         webhook_action_name(d->job.action));
		/* a runner left its pool, or will: the pass replaces it */
		rx->trigger(rx->trigger_ctx);
		http_response_json(resp, 200, "{\"done\":true}\n");
		return 0;
	default:
		/* waiting (for an environment's approval): "queued" follows when it may run */
		ignored(rx, d, WEBHOOK_SKIP__MAX, "an action that needs no runner", resp);
		return 0;
	}
}

static void h_webhook(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct reactive *rx = ctx;
	struct webhook_headers h = {
	        .event = http_request_header(req, "X-GitHub-Event"),
	        .delivery = http_request_header(req, "X-GitHub-Delivery"),
	        .content_type = http_request_header(req, "Content-Type"),
	};
	struct webhook_delivery d;
	struct err e = {0};
	bool recorded = false;
	int r, status;

	REACTIVE_COUNT(rx, deliveries, 1);
	pthread_rwlock_rdlock(&rx->cfg_lock);
	r = webhook_verify(buf_str(&rx->secret), rx->secret.len, req->body, req->body_len,
	                   http_request_header(req, "X-Hub-Signature-256"), &e);
	if (r == 0)
		r = webhook_parse(&h, req->body, req->body_len, &d, &e);
	if (r < 0) {
		pthread_rwlock_unlock(&rx->cfg_lock);
		status = webhook_http_status(r);
		rejected(rx, req, status, e.msg);
		http_response_error(resp, status,
		                    status == 401 ? "bad or missing signature" : e.msg);
		return;
	}
	if (d.kind == WEBHOOK_PING) {
		REACTIVE_COUNT(rx, pings, 1);
		log_info("webhook: ping (delivery %s): GitHub reaches runnerd", d.id);
		http_response_json(resp, 200, "{\"pong\":true}\n");
		goto out;
	}
	if (d.kind == WEBHOOK_OTHER) {
		REACTIVE_COUNT(rx, other_events, 1);
		log_debug("webhook: event %s (delivery %s) ignored", d.event, d.id);
		http_response_json(resp, 202, "{\"ignored\":\"event\"}\n");
		goto out;
	}
	r = store_delivery_add(rx->store, d.id, clock_wall_ms(), &e);
	if (r == -EEXIST) {
		REACTIVE_COUNT(rx, duplicates, 1);
		log_info("webhook: delivery %s seen before: ignored", d.id);
		http_response_json(resp, 200, "{\"duplicate\":true}\n");
		goto out;
	}
	recorded = r == 0;
	if (r == 0)
		r = job_delivery(rx, rx->cfg, &d, resp, &e);
	if (r < 0) {
		/* forgotten, so GitHub's redelivery of it is handled */
		if (recorded)
			(void)store_delivery_forget(rx->store, d.id, NULL);
		REACTIVE_COUNT(rx, errors, 1);
		log_error("webhook: delivery %s: %s", d.id, e.msg);
		http_response_error(resp, 500, "runnerd could not record the delivery");
	}
out:
	pthread_rwlock_unlock(&rx->cfg_lock);
	webhook_delivery_release(&d);
}

static void h_healthz(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct reactive *rx = ctx;
	struct buf b = BUF_INIT(4096);
	struct reactive_stats st;
	struct err e = {0};
	bool ok = queue_health(rx->q, &e) == 0;

	/* what the intake and the consumer counted: why jobs got no runner, among others */
	reactive_get_stats(rx, &st);
	buf_printf(&b,
	           "{\"status\":\"%s\",\"queue\":\"%s\",\"deliveries\":%" PRIu64
	           ",\"unauthorized\":%" PRIu64 ",\"malformed\":%" PRIu64 ",\"duplicates\":%" PRIu64
	           ",\"pings\":%" PRIu64 ",\"other_events\":%" PRIu64 ",\"queued\":%" PRIu64
	           ",\"known\":%" PRIu64 ",\"done\":%" PRIu64 ",\"ignored\":{\"%s\":%" PRIu64
	           ",\"%s\":%" PRIu64 ",\"action\":%" PRIu64 "},\"errors\":%" PRIu64
	           ",\"runners_given\":%" PRIu64 ",\"rechecks\":%" PRIu64
	           ",\"recheck_done\":%" PRIu64 ",\"gone\":%" PRIu64 ",\"retries\":%" PRIu64
	           ",\"dropped\":%" PRIu64 ",\"redelivered\":%" PRIu64 "}\n",
	           ok ? "ok" : "unavailable", queue_name(rx->q), st.deliveries, st.unauthorized,
	           st.malformed, st.duplicates, st.pings, st.other_events, st.queued, st.known,
	           st.acked, webhook_skip_name(WEBHOOK_SKIP_REPO), st.ignored[WEBHOOK_SKIP_REPO],
	           webhook_skip_name(WEBHOOK_SKIP_NO_FLAVOR), st.ignored[WEBHOOK_SKIP_NO_FLAVOR],
	           st.ignored[WEBHOOK_SKIP__MAX], st.errors, st.runners_made, st.rechecks,
	           st.recheck_done, st.gone, st.retries, st.dropped, st.redelivered);
	http_response_json(resp, ok ? 200 : 503, buf_str(&b));
	buf_release(&b);
}

/* max_body of /webhook is set from the config when the server starts. */
/*
 * GET /v1/handoff/<token>: an instance's secrets, once (util/handoff.h).
 * A HEAD is answered 405 without taking them; an unknown, taken or
 * expired token is 404, and the answer never says which.
 */
static void h_handoff(void *ctx, const struct http_request *req, struct http_response *resp)
{
	const char *token = req->path + strlen("/v1/handoff/");
	struct buf b = BUF_INIT_SECRET(0);

	(void)ctx;
	if (strcmp(req->method, "GET") != 0) {
		http_response_error(resp, 405, "GET only");
		return;
	}
	if (handoff_take(token, &b) < 0) {
		http_response_error(resp, 404, "no such hand-off");
		return;
	}
	resp->body.secret = true;
	resp->status = 200;
	resp->content_type = "text/plain; charset=utf-8";
	http_response_header(resp, "Cache-Control", "no-store");
	if (buf_append(&resp->body, b.data, b.len) < 0)
		http_response_error(resp, 500, "hand-off too large");
	buf_release(&b);
}

const struct http_route reactive_routes_template[] = {
        {"POST", "/webhook", h_webhook, 0},
        {"GET", "/v1/handoff/*", h_handoff, 0},
        {"GET", "/healthz", h_healthz, 0},
};
const size_t reactive_n_routes = ARRAY_SIZE(reactive_routes_template);
