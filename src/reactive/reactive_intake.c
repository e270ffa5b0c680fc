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
#include "util/group_commit.h"
#include "util/log.h"
#include "util/strutil.h"

/* At most one warning about rejected requests this often (the rest are counted). */
#define WARN_EVERY_MS (10 * 1000)

/* With rx->stats_lock held: whether a warning last given at *at (mono ms) may be given now. */
static bool warn_due(int64_t *at)
{
	int64_t now = clock_mono_ms();

	if (*at && now - *at < WARN_EVERY_MS)
		return false;
	*at = now;
	return true;
}

/* A rejected request: counted always, logged at most once in WARN_EVERY_MS. */
static void rejected(struct reactive *rx, const struct http_request *req, int status,
                     const char *why)
{
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
	say = warn_due(&rx->warned_at);
	pthread_mutex_unlock(&rx->stats_lock);
	if (say)
		log_warn("webhook from %s refused (%d): %s (later refusals for %ds are only "
		         "counted)",
		         req->peer, status, why, WARN_EVERY_MS / 1000);
}

int reactive_labels_json(const struct strv *labels, char *out, size_t cap)
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

/*
 * One delivery on its way to the disk: what is written (its id, and the
 * job's change when the queue's jobs live in the state store), and what
 * decides the answer once it is written. gc first: the committer hands
 * back its item.
 */
struct pending {
	struct group_commit_item gc;
	struct reactive *rx;
	struct reactive_stages t; /* when it passed each step, for the counters */
	struct store_intake row;
	struct queue_job job; /* queued: the message */
	int flavor;           /* queued: the config's index of job.flavor; -1: none */
	enum webhook_action action;
	int skip;                /* enum webhook_skip, or -1: the job is ours */
	const char *skip_what;   /* why, when skip >= 0 */
	struct http_deferred *d; /* answered by the committer; NULL: by the handler */
};

static void ignored(struct reactive *rx, const struct pending *p, struct http_response *resp)
{
	char msg[160];

	REACTIVE_COUNT(rx, ignored[p->skip], 1);
	/* debug: in organization scope, every GitHub-hosted job comes this way too */
	log_debug("webhook: job %" PRId64 " of %s (%s) ignored: %s", p->job.job_id, p->job.repo,
	          webhook_action_name(p->action), p->skip_what);
	snprintf(msg, sizeof(msg), "{\"ignored\":\"%s\"}\n", p->skip_what);
	http_response_json(resp, 200, msg);
}

static void skip(struct pending *p, enum webhook_skip why, const char *what)
{
	p->skip = (int)why;
	p->skip_what = what;
	p->row.op = STORE_INTAKE_RECORD;
}

/*
 * What a signed, new workflow_job delivery writes and means: p from d.
 * cfg is read-locked. A job of ours that is queued is routed; one that
 * runs or ended is acked; the rest is ignored (its delivery still recorded).
 */
static void plan(const struct config *cfg, const struct webhook_delivery *d, struct pending *p)
{
	struct queue_job *j = &p->job;

	str_copy(p->row.delivery_id, d->id, sizeof(p->row.delivery_id));
	p->row.received_at = clock_wall_ms();
	p->action = d->job.action;
	p->skip = -1;
	p->flavor = -1;
	j->job_id = d->job.job_id;
	j->run_id = d->job.run_id;
	j->received_at = p->row.received_at;
	str_copy(j->repo, d->job.repo, sizeof(j->repo));
	str_copy(j->delivery_id, d->id, sizeof(j->delivery_id));
	if (!config_repo_in_scope(cfg, d->job.repo)) {
		skip(p, WEBHOOK_SKIP_REPO, "not a repository of github.path");
		return;
	}
	switch (d->job.action) {
	case WEBHOOK_QUEUED: {
		size_t fi;

		if (webhook_route(cfg, &d->job.labels, &fi) < 0) {
			skip(p, WEBHOOK_SKIP_NO_FLAVOR, "no flavor has every label it asks for");
			return;
		}
		str_copy(j->flavor, cfg->flavors[fi].name, sizeof(j->flavor));
		p->flavor = (int)fi;
		/* not a job GitHub could hand a runner of ours either way: not an error of ours */
		if (reactive_labels_json(&d->job.labels, j->labels, sizeof(j->labels)) < 0) {
			skip(p, WEBHOOK_SKIP_NO_FLAVOR, "its labels are too long to queue");
			return;
		}
		p->row.op = STORE_INTAKE_JOB_ADD;
		queue_sqlite_row(j, &p->row.job);
		return;
	}
	case WEBHOOK_IN_PROGRESS:
	case WEBHOOK_COMPLETED:
		/* a runner took it, or it ended (cancelled too): it waits no more */
		p->row.op = STORE_INTAKE_JOB_DONE;
		p->row.job.job_id = j->job_id;
		p->row.job.done_at = p->row.received_at;
		str_copy(p->row.job.done_why, webhook_action_name(d->job.action),
		         sizeof(p->row.job.done_why));
		return;
	default:
		/* waiting (for an environment's approval): "queued" follows when it may run */
		skip(p, WEBHOOK_SKIP__MAX, "an action that needs no runner");
		return;
	}
}

static void answer_duplicate(struct reactive *rx, const char *id, struct http_response *resp)
{
	REACTIVE_COUNT(rx, duplicates, 1);
	log_info("webhook: delivery %s seen before: ignored", id);
	http_response_json(resp, 200, "{\"duplicate\":true}\n");
}

/* A queued job the queue knew already: counted and logged. */
static void queued_known(struct reactive *rx, int64_t job_id)
{
	REACTIVE_COUNT(rx, known, 1);
	log_info("webhook: job %" PRId64 " queued again (known already): nothing to do", job_id);
}

/*
 * A job now queued (fi: its flavor's index in the config, -1 unknown):
 * counted, logged, and a pass asked for. A flavor with no room waits for a
 * runner to leave (which asks for a pass); a pass soon still counts it.
 */
static void queued_new(struct reactive *rx, int64_t job_id, const char *repo, const char *flavor,
                       const char *delivery, int fi)
{
	REACTIVE_COUNT(rx, queued, 1);
	log_info("webhook: job %" PRId64 " of %s queued for flavor %s (delivery %s)", job_id, repo,
	         flavor, delivery);
	if (fi < 0 || !reactive_flavor_full(rx, (size_t)fi))
		rx->trigger(rx->trigger_ctx);
	else if (rx->trigger_later)
		rx->trigger_later(rx->trigger_ctx);
}

/* A job that runs or ended: counted, logged, and a pass (a runner left its pool, or will). */
static void job_done(struct reactive *rx, int64_t job_id, const char *action)
{
	REACTIVE_COUNT(rx, acked, 1);
	log_info("webhook: job %" PRId64 " %s", job_id, action);
	rx->trigger(rx->trigger_ctx);
}

void reactive_intake_written(struct reactive *rx, const struct store_intake *in)
{
	int fi = -1;

	if (in->seen)
		return; /* the store had it (applied before a restart, say): nothing new */
	switch (in->op) {
	case STORE_INTAKE_JOB_ADD:
		if (in->job_known) {
			queued_known(rx, in->job.job_id);
			return;
		}
		pthread_rwlock_rdlock(&rx->cfg_lock);
		for (size_t i = 0; i < rx->cfg->n_flavors && fi < 0; i++)
			if (strcmp(rx->cfg->flavors[i].name, in->job.flavor) == 0)
				fi = (int)i;
		pthread_rwlock_unlock(&rx->cfg_lock);
		queued_new(rx, in->job.job_id, in->job.repo, in->job.flavor, in->delivery_id, fi);
		return;
	case STORE_INTAKE_JOB_DONE:
		job_done(rx, in->job.job_id, in->job.done_why);
		return;
	default:
		return; /* ignored: counted when it was answered */
	}
}

/*
 * The answer to p once its delivery was written (r: the write's result),
 * and what follows from it (counters, a log line, a pass). job_known: a
 * queued job the queue knew already.
 */
static void answer(struct pending *p, int r, bool job_known, struct http_response *resp)
{
	struct reactive *rx = p->rx;
	const struct queue_job *j = &p->job;

	if (r < 0) {
		REACTIVE_COUNT(rx, errors, 1);
		http_response_error(resp, 500, "runnerd could not record the delivery");
		return;
	}
	if (p->row.seen) {
		answer_duplicate(rx, p->row.delivery_id, resp);
		return;
	}
	if (p->skip >= 0) {
		ignored(rx, p, resp);
		return;
	}
	if (p->action == WEBHOOK_QUEUED && job_known) {
		queued_known(rx, j->job_id);
		http_response_json(resp, 200, "{\"known\":true}\n");
		return;
	}
	if (p->action == WEBHOOK_QUEUED) {
		queued_new(rx, j->job_id, j->repo, j->flavor, j->delivery_id, p->flavor);
		http_response_json(resp, 202, "{\"queued\":true}\n");
		return;
	}
	job_done(rx, j->job_id, webhook_action_name(p->action));
	http_response_json(resp, 200, "{\"done\":true}\n");
}

/*
 * answer_after write: p's record into the journal, answered at once; what
 * follows from it (counted, logged, a pass) comes once the journal's
 * applier has it in the store (reactive_intake_written). A queued job is
 * answered 202 whether or not the queue knew it: that is known only then.
 */
static void journal_then_answer(struct pending *p, struct http_response *resp)
{
	struct reactive *rx = p->rx;
	bool seen = false;
	int r = reactive_journal_take(rx->journal, &p->row, &seen);

	if (r == -EBUSY) {
		/* the store far behind the answers: GitHub's redelivery, or the backfill, later */
		bool say;

		pthread_mutex_lock(&rx->stats_lock);
		rx->stats.errors++;
		say = warn_due(&rx->behind_warned_at);
		pthread_mutex_unlock(&rx->stats_lock);
		if (say)
			log_warn(
			        "webhook: the state store is far behind the journal's answers: "
			        "deliveries answered 503 until it catches up (GitHub may send them "
			        "again; later ones for %ds are only counted)",
			        WARN_EVERY_MS / 1000);
		http_response_error(resp, 503, "runnerd is behind writing deliveries");
	} else if (r < 0) {
		log_error("webhook: delivery %s not written to the journal (answered 500, GitHub "
		          "may send it again): %s",
		          p->row.delivery_id, strerror(-r));
		answer(p, r, false, resp);
	} else if (seen) {
		answer_duplicate(rx, p->row.delivery_id, resp);
	} else if (p->skip >= 0) {
		ignored(rx, p, resp);
	} else if (p->action == WEBHOOK_QUEUED) {
		http_response_json(resp, 202, "{\"queued\":true}\n");
	} else {
		http_response_json(resp, 200, "{\"done\":true}\n");
	}
}

/* The committer's fn: a batch of deliveries in one transaction of the state store. */
int reactive_write_batch(void *ctx, struct group_commit_item **v, size_t n)
{
	struct reactive *rx = ctx;
	struct store_intake *rows[REACTIVE_BATCH_MAX] = {0};
	struct err e = {0};
	int64_t began = clock_mono_us(), ended;
	int r;

	for (size_t i = 0; i < n; i++)
		rows[i] = &((struct pending *)v[i])->row;
	r = store_intake_write(rx->store, rows, n, &e);
	ended = clock_mono_us();
	for (size_t i = 0; i < n; i++) {
		((struct pending *)v[i])->t.began = began;
		((struct pending *)v[i])->t.ended = ended;
	}
	if (r < 0)
		log_error("webhook: %zu deliveries not recorded (answered 500, GitHub may send "
		          "them again): %s",
		          n, e.msg);
	return r;
}

/* The committer's callback for a deferred request: its answer, now that it is on disk. */
static void written(struct group_commit_item *it, int r)
{
	struct pending *p = (struct pending *)it;
	struct http_response resp;
	int64_t now;
	bool late;

	http_response_init(&resp);
	answer(p, r, p->row.job_known, &resp);
	/* -EALREADY: the client is gone, or it was answered 503 at the deadline */
	late = http_deferred_answer(p->d, &resp) == -EALREADY;
	now = clock_mono_us();
	if (late && now > p->t.received + (int64_t)REACTIVE_DEFER_MS * 1000)
		now = p->t.received + (int64_t)REACTIVE_DEFER_MS * 1000;
	reactive_staged(p->rx, &p->t, now);
	http_response_release(&resp);
	free(p);
}

/*
 * A queue outside the state store (amqp): the delivery recorded (joining
 * others' commit), then the job pushed or acked there; a failure there
 * forgets the delivery again, so GitHub's redelivery of it is handled.
 */
static void record_then_queue(struct pending *p, struct http_response *resp)
{
	struct reactive *rx = p->rx;
	struct err e = {0};
	bool known = false;
	int r;

	p->row.op = STORE_INTAKE_RECORD;
	r = group_commit_wait(rx->gc, &p->gc);
	if (r < 0 || p->row.seen || p->skip >= 0) {
		answer(p, r, false, resp);
		return;
	}
	if (p->action == WEBHOOK_QUEUED)
		r = queue_push(rx->q, &p->job, &e);
	else
		r = queue_ack(rx->q, p->job.job_id, webhook_action_name(p->action),
		              p->row.received_at, &e);
	known = r == -EEXIST;
	if (r < 0 && !known) {
		(void)store_delivery_forget(rx->store, p->row.delivery_id, NULL);
		log_error("webhook: delivery %s: %s", p->row.delivery_id, e.msg);
	}
	answer(p, known ? 0 : r, known, resp);
}

/*
 * Write p and answer: the state store's queue defers the request, so the
 * HTTP thread is free while the committer writes it with the others that
 * wait (one fsync for them all) and answers. Takes p. True: deferred (the
 * committer answers it); false: answered in resp.
 */
static bool record(const struct http_request *req, struct pending *p, struct http_response *resp)
{
	struct reactive *rx = p->rx;
	int r;

	if (!queue_sqlite_store(rx->q)) {
		record_then_queue(p, resp);
		free(p);
		return false;
	}
	if (rx->journal && config_answer_after_write(rx->cfg)) {
		journal_then_answer(p, resp);
		free(p);
		return false;
	}
	/* what goes out if the write takes longer than GitHub waits: not a 202 */
	http_response_error(resp, 503, "runnerd could not record the delivery in time");
	if (http_request_defer(req, REACTIVE_DEFER_MS, &p->d) == 0) {
		p->gc.done = written;
		p->t.submitted = clock_mono_us();
		r = group_commit_submit(rx->gc, &p->gc);
		if (r == 0)
			return true;
		/* stopping: the answer is the 503 above */
		(void)http_deferred_answer(p->d, resp);
		free(p);
		return false;
	}
	/* no slot to set it aside: the handler waits for the write */
	r = group_commit_wait(rx->gc, &p->gc);
	answer(p, r, p->row.job_known, resp);
	free(p);
	return false;
}

/* A POST /webhook read whole at t0 (clock_mono_us). True: deferred (answered later). */
static bool handle(struct reactive *rx, const struct http_request *req, struct http_response *resp,
                   int64_t t0)
{
	struct webhook_headers h = {
	        .event = http_request_header(req, "X-GitHub-Event"),
	        .delivery = http_request_header(req, "X-GitHub-Delivery"),
	        .content_type = http_request_header(req, "Content-Type"),
	};
	struct webhook_delivery d;
	struct pending *p;
	struct err e = {0};
	bool seen = false, deferred = false;
	int r, status;

	REACTIVE_COUNT(rx, deliveries, 1);
	pthread_rwlock_rdlock(&rx->cfg_lock);
	r = webhook_verify(buf_str(&rx->secret), rx->secret.len, req->body, req->body_len,
	                   http_request_header(req, "X-Hub-Signature-256"), &e);
	/*
	 * a delivery recorded (only workflow_job ones are; the store's index of them is in
	 * memory) is not parsed again. One being recorded is not seen yet: it is parsed, and
	 * the committer finds it recorded.
	 */
	if (r == 0 && h.event && strcmp(h.event, "workflow_job") == 0 && h.delivery &&
	    store_delivery_seen(rx->store, h.delivery, &seen, NULL) == 0 && seen) {
		pthread_rwlock_unlock(&rx->cfg_lock);
		answer_duplicate(rx, h.delivery, resp);
		return false;
	}
	if (r == 0)
		r = webhook_parse(&h, req->body, req->body_len, &d, &e);
	if (r < 0) {
		pthread_rwlock_unlock(&rx->cfg_lock);
		status = webhook_http_status(r);
		rejected(rx, req, status, e.msg);
		http_response_error(resp, status,
		                    status == 401 ? "bad or missing signature" : e.msg);
		return false;
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
	p = calloc(1, sizeof(*p));
	if (!p) {
		REACTIVE_COUNT(rx, errors, 1);
		http_response_error(resp, 500, "runnerd could not record the delivery");
		goto out;
	}
	p->rx = rx;
	p->t.received = t0;
	plan(rx->cfg, &d, p);
	deferred = record(req, p, resp);
out:
	pthread_rwlock_unlock(&rx->cfg_lock);
	webhook_delivery_release(&d);
	return deferred;
}

static void h_webhook(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct reactive *rx = ctx;
	int64_t t0 = clock_mono_us();

	if (!handle(rx, req, resp, t0))
		reactive_answered(rx, t0);
}

static void h_healthz(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct reactive *rx = ctx;
	struct buf b = BUF_INIT(4096);
	struct reactive_stats st;
	struct err e = {0};
	bool ok = queue_health(rx->q, &e) == 0;
	int64_t spooled = 0;
	bool journal;
	uint64_t ck_runs, ck_failed;

	/* what the intake and the consumer counted: why jobs got no runner, among others */
	reactive_get_stats(rx, &st);
	pthread_rwlock_rdlock(&rx->cfg_lock);
	journal = rx->journal && config_answer_after_write(rx->cfg);
	pthread_rwlock_unlock(&rx->cfg_lock);
	store_checkpoint_counts(rx->store, &ck_runs, &ck_failed);
	(void)queue_spooled(rx->q, &spooled, NULL); /* jobs kept here while the broker is away */
	buf_printf(&b,
	           "{\"status\":\"%s\",\"queue\":\"%s\",\"deliveries\":%" PRIu64
	           ",\"unauthorized\":%" PRIu64 ",\"malformed\":%" PRIu64 ",\"duplicates\":%" PRIu64
	           ",\"pings\":%" PRIu64 ",\"other_events\":%" PRIu64 ",\"queued\":%" PRIu64
	           ",\"known\":%" PRIu64 ",\"done\":%" PRIu64 ",\"ignored\":{\"%s\":%" PRIu64
	           ",\"%s\":%" PRIu64 ",\"action\":%" PRIu64 "},\"errors\":%" PRIu64
	           ",\"runners_given\":%" PRIu64 ",\"rechecks\":%" PRIu64
	           ",\"recheck_done\":%" PRIu64 ",\"gone\":%" PRIu64 ",\"retries\":%" PRIu64
	           ",\"dropped\":%" PRIu64 ",\"redelivered\":%" PRIu64 ",\"written\":%" PRIu64
	           ",\"commits\":%" PRIu64 ",\"commit_max\":%" PRIu64 ",\"commit_us\":%" PRIu64
	           ",\"spooled\":%" PRId64 ",\"caught_up\":%" PRIu64 ",\"listed\":%" PRIu64
	           ",\"answer_after\":\"%s\",\"journal_behind\":%" PRIu64
	           ",\"journal_failed\":%" PRIu64 ",\"checkpoint_failed\":%" PRIu64
	           ",\"answered\":%" PRIu64 ",\"answer_us\":%" PRIu64 ",\"staged\":%" PRIu64
	           ",\"stage_us\":{\"parse\":%" PRIu64 ",\"wait\":%" PRIu64 ",\"write\":%" PRIu64
	           ",\"report\":%" PRIu64 "}}\n",
	           ok ? "ok" : "unavailable", queue_name(rx->q), st.deliveries, st.unauthorized,
	           st.malformed, st.duplicates, st.pings, st.other_events, st.queued, st.known,
	           st.acked, webhook_skip_name(WEBHOOK_SKIP_REPO), st.ignored[WEBHOOK_SKIP_REPO],
	           webhook_skip_name(WEBHOOK_SKIP_NO_FLAVOR), st.ignored[WEBHOOK_SKIP_NO_FLAVOR],
	           st.ignored[WEBHOOK_SKIP__MAX], st.errors, st.runners_made, st.rechecks,
	           st.recheck_done, st.gone, st.retries, st.dropped, st.redelivered, st.written,
	           st.commits, st.commit_max, st.commit_us, spooled, st.caught_up, st.listed,
	           journal ? "write" : "flush", st.journal_behind, st.journal_failed, ck_failed,
	           st.answered, st.answer_us, st.staged, st.stage_parse_us, st.stage_wait_us,
	           st.stage_write_us, st.stage_report_us);
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
