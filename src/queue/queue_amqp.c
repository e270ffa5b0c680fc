/*
 * The `amqp` queue: RabbitMQ (AMQP 0-9-1), so several managers share one
 * stream of jobs. One durable queue per flavor, "runnerd.<flavor>"; a job is
 * a persistent message published with a publisher confirm. A manager's
 * waiting jobs are the messages the broker delivered to it and it has not
 * acknowledged yet: at most the prefetch per flavor (the flavor's max, so a
 * manager never holds more jobs than it could give runners to while other
 * managers idle). ack is basic.ack of the message's delivery tag; a manager
 * that dies, or loses its connection, holding messages loses none: the
 * broker redelivers them (to another manager, or to this one once it is
 * back). What the consumer keeps per job (attempts, backoff) lives beside the
 * delivered message here and starts over on a redelivery.
 *
 * Threads: librabbitmq is not thread-safe per connection, so there are two.
 * The consumer connection belongs to one thread of this file (deliveries,
 * acks, reconnects with backoff); other threads hand it acks through the held
 * table. The publisher connection serves push from any thread, one at a time
 * (pub_lock). It must never block a caller on the broker for longer than
 * one publish's timeout, and never put the URI in a message.
 */
#include "util/common.h"
#include "queue/queue_internal.h"
#include "util/clock.h"
#include "util/strutil.h"

#include <pthread.h>

/* Done jobs remembered (a late "queued", or a redelivery, of one is acked at once). */
#define AMQP_DONE_MAX 4096
/* How long the consumer waits for a delivery before it looks at acks to send. */
#define AMQP_POLL_MS 100
/* Reconnect backoff bounds. */
#define AMQP_BACKOFF_MIN_MS 200
#define AMQP_BACKOFF_MAX_MS 5000
/* Prefetch per flavor at most. */
#define AMQP_PREFETCH_MAX 100

struct held {
	struct queue_job j;
	uint64_t tag; /* the delivery tag, on the consumer's connection of gen */
	bool acked;   /* done: its basic.ack waits to be sent */
};

struct done {
	int64_t job_id;
	int64_t at;
};

struct queue_amqp {
	struct queue q; /* first */
	char *uri;      /* a secret: wiped on free */

	size_t n_flavors;
	char (*qnames)[AMQP_QNAME_MAX + 1];
	uint16_t *prefetch;

	pthread_mutex_t pub_lock; /* the publisher link */
	struct amqp_link pub;
	int64_t pub_retry_at; /* mono ms: no reconnect before (backoff) */
	int64_t pub_backoff;

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t wake;
	bool stop, up;
	char down_why[512];
	struct held *held; /* capacity: the sum of prefetches */
	size_t n_held, cap_held;
	struct done done[AMQP_DONE_MAX];
	size_t n_done, next_done;
	void (*notify)(void *);
	void *notify_ctx;

	pthread_t thread;
	bool started;
};

static struct queue_amqp *of(struct queue *q)
{
	return (struct queue_amqp *)q;
}

/* ---- the held table and the done ring (under lock) ---- */

static bool is_done(struct queue_amqp *a, int64_t job_id)
{
	for (size_t i = 0; i < a->n_done; i++)
		if (a->done[i].job_id == job_id)
			return true;
	return false;
}

static void mark_done(struct queue_amqp *a, int64_t job_id, int64_t now)
{
	if (is_done(a, job_id))
		return;
	a->done[a->next_done] = (struct done){job_id, now};
	a->next_done = (a->next_done + 1) % AMQP_DONE_MAX;
	if (a->n_done < AMQP_DONE_MAX)
		a->n_done++;
}

static struct held *find_held(struct queue_amqp *a, int64_t job_id)
{
	for (size_t i = 0; i < a->n_held; i++)
		if (!a->held[i].acked && a->held[i].j.job_id == job_id)
			return &a->held[i];
	return NULL;
}

/* ---- the consumer thread: its connection is its own ---- */

static int consumer_open(struct queue_amqp *a, struct amqp_link *l, struct err *e)
{
	int r = amqp_link_open(l, a->uri, false, 30, e);

	for (size_t i = 0; r == 0 && i < a->n_flavors; i++) {
		r = amqp_link_declare(l, a->qnames[i], e);
		if (r < 0)
			break;
		/* per consumer (global false): each flavor's queue has its own bound */
		amqp_basic_qos(l->conn, 1, 0, a->prefetch[i], 0);
		r = amqp_reply_err(amqp_get_rpc_reply(l->conn), "basic.qos", e);
		if (r < 0)
			break;
		amqp_basic_consume(l->conn, 1, amqp_cstring_bytes(a->qnames[i]), amqp_empty_bytes,
		                   0, 0, 0, amqp_empty_table);
		r = amqp_reply_err(amqp_get_rpc_reply(l->conn), "basic.consume", e);
	}
	if (r < 0)
		amqp_link_close(l);
	return r;
}

/* Send the acks other threads asked for; drop what was sent. */
static int send_acks(struct queue_amqp *a, struct amqp_link *l, struct err *e)
{
	uint64_t tags[64];
	size_t n = 0, k = 0;
	int r;

	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->n_held; i++) {
		if (a->held[i].acked && n < ARRAY_SIZE(tags))
			tags[n++] = a->held[i].tag;
		else
			a->held[k++] = a->held[i];
	}
	a->n_held = k; /* acks beyond tags stay for the next round */
	pthread_mutex_unlock(&a->lock);
	for (size_t i = 0; i < n; i++) {
		r = amqp_basic_ack(l->conn, 1, tags[i], 0);
		if (r != AMQP_STATUS_OK)
			/* lost acks: the broker redelivers, the done ring acks them then */
			return err_set(e, -ECONNRESET, "queue amqp: basic.ack: %s",
			               amqp_error_string2(r));
	}
	return 0;
}

/* Ack a delivery we do not keep (a duplicate, a done job, garbage). */
static int ack_now(struct amqp_link *l, uint64_t tag, struct err *e)
{
	int r = amqp_basic_ack(l->conn, 1, tag, 0);

	if (r != AMQP_STATUS_OK)
		return err_set(e, -ECONNRESET, "queue amqp: basic.ack: %s", amqp_error_string2(r));
	return 0;
}

static int on_delivery(struct queue_amqp *a, struct amqp_link *l, amqp_envelope_t *env,
                       struct err *e)
{
	struct queue_job j;
	void (*notify)(void *) = NULL;
	void *ctx = NULL;
	enum { KEEP, DROP, BACK } what = DROP;
	int r;

	if (amqp_msg_decode(env->message.body.bytes, env->message.body.len, &j, NULL) < 0)
		return ack_now(l, env->delivery_tag, e); /* not a job: nobody could serve it */
	pthread_mutex_lock(&a->lock);
	if (is_done(a, j.job_id) || find_held(a, j.job_id)) {
		what = DROP; /* done here, or held already: one runner per job */
	} else if (a->n_held < a->cap_held) {
		a->held[a->n_held++] = (struct held){.j = j, .tag = env->delivery_tag};
		what = KEEP;
		notify = a->notify;
		ctx = a->notify_ctx;
	} else {
		what = BACK; /* more than the prefetch allows (a broker bug): never lose it */
	}
	pthread_mutex_unlock(&a->lock);
	if (what == DROP)
		return ack_now(l, env->delivery_tag, e);
	if (what == BACK) {
		r = amqp_basic_reject(l->conn, 1, env->delivery_tag, 1);
		if (r != AMQP_STATUS_OK)
			return err_set(e, -ECONNRESET, "queue amqp: basic.reject: %s",
			               amqp_error_string2(r));
		return 0;
	}
	if (notify)
		notify(ctx);
	return 0;
}

/* One wait for a delivery. 0, or < 0 when the connection is no good. */
static int poll_once(struct queue_amqp *a, struct amqp_link *l, struct err *e)
{
	struct timeval tv = {.tv_usec = AMQP_POLL_MS * 1000};
	amqp_envelope_t env;
	amqp_rpc_reply_t rr;
	amqp_frame_t f;
	int r;

	amqp_maybe_release_buffers(l->conn);
	rr = amqp_consume_message(l->conn, &env, &tv, 0);
	if (rr.reply_type == AMQP_RESPONSE_NORMAL) {
		r = on_delivery(a, l, &env, e);
		amqp_destroy_envelope(&env);
		return r;
	}
	if (rr.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
	    rr.library_error == AMQP_STATUS_TIMEOUT)
		return 0;
	if (rr.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
	    rr.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
		/* a method other than a delivery: a close means reconnect, the rest is noise */
		if (amqp_simple_wait_frame_noblock(l->conn, &f, &tv) != AMQP_STATUS_OK)
			return err_set(e, -ECONNRESET, "queue amqp: the connection failed");
		if (f.frame_type == AMQP_FRAME_METHOD &&
		    (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
		     f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD))
			return err_set(e, -ECONNRESET,
			               "queue amqp: the broker closed the connection");
		return 0;
	}
	return amqp_reply_err(rr, "consume", e);
}

static void set_down(struct queue_amqp *a, const char *why)
{
	pthread_mutex_lock(&a->lock);
	a->up = false;
	str_copy(a->down_why, why, sizeof(a->down_why));
	/* the broker redelivers every unacked message of the dead connection */
	a->n_held = 0;
	pthread_mutex_unlock(&a->lock);
}

static void *consumer(void *arg)
{
	struct queue_amqp *a = arg;
	struct amqp_link l = {0};
	int64_t backoff = AMQP_BACKOFF_MIN_MS;

	for (;;) {
		struct err e = {0};
		bool stop;

		pthread_mutex_lock(&a->lock);
		stop = a->stop;
		pthread_mutex_unlock(&a->lock);
		if (stop)
			break;
		if (!l.conn) {
			if (consumer_open(a, &l, &e) < 0) {
				struct timespec ts;

				set_down(a, e.msg);
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += backoff / 1000;
				ts.tv_nsec += (backoff % 1000) * 1000000;
				if (ts.tv_nsec >= 1000000000) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000;
				}
				pthread_mutex_lock(&a->lock);
				if (!a->stop)
					pthread_cond_timedwait(&a->wake, &a->lock, &ts);
				pthread_mutex_unlock(&a->lock);
				backoff = backoff * 2 < AMQP_BACKOFF_MAX_MS ? backoff * 2
				                                            : AMQP_BACKOFF_MAX_MS;
				continue;
			}
			backoff = AMQP_BACKOFF_MIN_MS;
			pthread_mutex_lock(&a->lock);
			a->up = true;
			a->n_held = 0;
			pthread_mutex_unlock(&a->lock);
		}
		if (send_acks(a, &l, &e) < 0 || poll_once(a, &l, &e) < 0) {
			set_down(a, e.msg);
			amqp_link_close(&l);
		}
	}
	/* our unacked messages go back to the broker when this closes */
	amqp_link_close(&l);
	return NULL;
}

/* ---- the operations ---- */

static int am_push(struct queue *q, const struct queue_job *j, struct err *e)
{
	struct queue_amqp *a = of(q);
	char name[AMQP_QNAME_MAX + 1], body[AMQP_MSG_MAX];
	size_t len;
	bool known;
	int r;

	pthread_mutex_lock(&a->lock);
	known = is_done(a, j->job_id) || find_held(a, j->job_id);
	pthread_mutex_unlock(&a->lock);
	if (known)
		return -EEXIST; /* what this manager knows; other managers dedupe on delivery */
	r = amqp_queue_name(j->flavor, name, sizeof(name), e);
	if (r < 0)
		return r;
	r = amqp_msg_encode(j, body, sizeof(body), &len, e);
	if (r < 0)
		return r;
	pthread_mutex_lock(&a->pub_lock);
	/* a link that went stale (the broker restarted) fails once: one fresh try */
	for (int attempt = 0; attempt < 2; attempt++) {
		int64_t now = clock_mono_ms();

		if (!a->pub.conn) {
			if (now < a->pub_retry_at) {
				r = err_set(e, -EAGAIN,
				            "queue amqp: the broker is unreachable (retrying)");
				break;
			}
			r = amqp_link_open(&a->pub, a->uri, true, 0, e);
			if (r < 0) {
				a->pub_backoff =
				        a->pub_backoff ? a->pub_backoff * 2 : AMQP_BACKOFF_MIN_MS;
				if (a->pub_backoff > AMQP_BACKOFF_MAX_MS)
					a->pub_backoff = AMQP_BACKOFF_MAX_MS;
				a->pub_retry_at = now + a->pub_backoff;
				break;
			}
			a->pub_backoff = 0;
		}
		r = amqp_link_publish(&a->pub, name, body, len, e);
		if (r == 0 || r == -EIO)
			break;
		amqp_link_close(&a->pub);
	}
	pthread_mutex_unlock(&a->pub_lock);
	return r;
}

static int am_ack(struct queue *q, int64_t job_id, const char *why, int64_t now, struct err *e)
{
	struct queue_amqp *a = of(q);
	struct held *h;

	pthread_mutex_lock(&a->lock);
	mark_done(a, job_id, now);
	h = find_held(a, job_id);
	if (h)
		h->acked = true; /* the consumer thread sends it within AMQP_POLL_MS */
	pthread_mutex_unlock(&a->lock);
	return 0;
}

static int am_count(struct queue *q, const char *flavor, int64_t now, int64_t *ret, struct err *e)
{
	struct queue_amqp *a = of(q);
	int64_t n = 0;

	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->n_held; i++) {
		const struct held *h = &a->held[i];
		if (!h->acked && h->j.next_at <= now &&
		    (!*flavor || strcmp(h->j.flavor, flavor) == 0))
			n++;
	}
	pthread_mutex_unlock(&a->lock);
	*ret = n;
	return 0;
}

static int by_age(const void *x, const void *y)
{
	const struct queue_job *a = x, *b = y;

	if (a->received_at != b->received_at)
		return a->received_at < b->received_at ? -1 : 1;
	return a->job_id < b->job_id ? -1 : a->job_id > b->job_id;
}

static int am_list(struct queue *q, size_t max, struct queue_job_list *ret, struct err *e)
{
	struct queue_amqp *a = of(q);
	struct queue_job_list l = {0};

	pthread_mutex_lock(&a->lock);
	if (a->n_held && !(l.v = calloc(a->n_held, sizeof(*l.v)))) {
		pthread_mutex_unlock(&a->lock);
		return err_set(e, -ENOMEM, "queue amqp: out of memory");
	}
	for (size_t i = 0; i < a->n_held; i++)
		if (!a->held[i].acked)
			l.v[l.n++] = a->held[i].j;
	pthread_mutex_unlock(&a->lock);
	qsort(l.v, l.n, sizeof(*l.v), by_age);
	if (l.n > max)
		l.n = max;
	queue_job_list_release(ret);
	*ret = l;
	return 0;
}

static int am_update(struct queue *q, const struct queue_job *j, struct err *e)
{
	struct queue_amqp *a = of(q);
	struct held *h;

	pthread_mutex_lock(&a->lock);
	h = find_held(a, j->job_id);
	if (h) {
		h->j.attempts = j->attempts;
		h->j.next_at = j->next_at;
		h->j.runner_at = j->runner_at;
		h->j.checked_at = j->checked_at;
	}
	pthread_mutex_unlock(&a->lock);
	return 0;
}

static int am_prune(struct queue *q, int64_t before, struct err *e)
{
	struct queue_amqp *a = of(q);
	size_t k = 0;

	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->n_done; i++)
		if (a->done[i].at >= before)
			a->done[k++] = a->done[i];
	a->n_done = k;
	a->next_done = k % AMQP_DONE_MAX;
	pthread_mutex_unlock(&a->lock);
	return 0;
}

static int am_health(struct queue *q, struct err *e)
{
	struct queue_amqp *a = of(q);
	int r = 0;

	pthread_mutex_lock(&a->lock);
	if (!a->up)
		r = err_set(e, -ECONNREFUSED, "queue amqp: the broker is unreachable: %s",
		            a->down_why[0] ? a->down_why : "connecting");
	pthread_mutex_unlock(&a->lock);
	return r;
}

static void am_set_notify(struct queue *q, void (*fn)(void *), void *ctx)
{
	struct queue_amqp *a = of(q);

	pthread_mutex_lock(&a->lock);
	a->notify = fn;
	a->notify_ctx = ctx;
	pthread_mutex_unlock(&a->lock);
}

static void am_free(struct queue *q)
{
	struct queue_amqp *a = of(q);

	if (a->started) {
		pthread_mutex_lock(&a->lock);
		a->stop = true;
		pthread_cond_broadcast(&a->wake);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->thread, NULL);
	}
	amqp_link_close(&a->pub);
	if (a->uri) {
		explicit_bzero(a->uri, strlen(a->uri));
		free(a->uri);
	}
	free(a->qnames);
	free(a->prefetch);
	free(a->held);
	pthread_mutex_destroy(&a->pub_lock);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->wake);
	free(a);
}

static const struct queue_ops amqp_ops = {
        .name = "amqp",
        .push = am_push,
        .ack = am_ack,
        .count = am_count,
        .list = am_list,
        .update = am_update,
        .prune = am_prune,
        .health = am_health,
        .set_notify = am_set_notify,
        .free = am_free,
};

int queue_amqp_open(const struct config *cfg, struct queue **ret, struct err *e)
{
	struct queue_amqp *a;
	int r;

	if (!cfg->queue.uri.value || !*cfg->queue.uri.value)
		return err_set(e, -EINVAL, "queue amqp: no URI (queue.uri_file or queue.uri_env)");
	if (cfg->n_flavors == 0)
		return err_set(e, -EINVAL, "queue amqp: no flavors to consume");
	a = calloc(1, sizeof(*a));
	if (!a)
		return err_set(e, -ENOMEM, "queue amqp: out of memory");
	a->q.ops = &amqp_ops;
	pthread_mutex_init(&a->pub_lock, NULL);
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->wake, NULL);
	a->n_flavors = cfg->n_flavors;
	a->uri = strdup(cfg->queue.uri.value);
	a->qnames = calloc(cfg->n_flavors, sizeof(*a->qnames));
	a->prefetch = calloc(cfg->n_flavors, sizeof(*a->prefetch));
	if (!a->uri || !a->qnames || !a->prefetch) {
		r = err_set(e, -ENOMEM, "queue amqp: out of memory");
		goto fail;
	}
	for (size_t i = 0; i < cfg->n_flavors; i++) {
		int64_t max = cfg->flavors[i].max;

		r = amqp_queue_name(cfg->flavors[i].name, a->qnames[i], sizeof(a->qnames[i]), e);
		if (r < 0)
			goto fail;
		a->prefetch[i] = (uint16_t)(max < 1                   ? 1
		                            : max > AMQP_PREFETCH_MAX ? AMQP_PREFETCH_MAX
		                                                      : max);
		a->cap_held += a->prefetch[i];
	}
	a->held = calloc(a->cap_held, sizeof(*a->held));
	if (!a->held) {
		r = err_set(e, -ENOMEM, "queue amqp: out of memory");
		goto fail;
	}
	str_copy(a->down_why, "connecting", sizeof(a->down_why));
	r = -pthread_create(&a->thread, NULL, consumer, a);
	if (r < 0) {
		err_set(e, r, "queue amqp: cannot start its thread: %s", strerror(-r));
		goto fail;
	}
	a->started = true;
	*ret = &a->q;
	return 0;
fail:
	am_free(&a->q);
	return r;
}
