/*
 * The amqp queue's consumer thread: its connection is its own. It consumes
 * each flavor's queue (manual ack, prefetch = the flavor's max) and this
 * manager's own exclusive queue bound to the state fanout, through which
 * other managers say a job no longer waits; it sends the acks other
 * threads ask for, follows a reload's flavors (consumes new queues, cancels
 * removed ones and gives their held messages back), and reconnects with
 * backoff. It must never ack a job message it was not told is done, and
 * never lose one: what it cannot keep goes back to the broker.
 */
#include "util/common.h"
#include "queue/queue_internal.h"
#include "util/clock.h"
#include "util/strutil.h"

/* How long the consumer waits for a delivery before it looks at acks to send. */
#define AMQP_POLL_MS 100

/* What this thread consumes on its connection. */
struct consuming {
	struct amqp_flavor *v;
	size_t n;
	uint64_t flavors_gen; /* of a->flavors when last synced */
	uint64_t gen;         /* the connection's */
};

static bool has(const struct amqp_flavor *v, size_t n, const char *qname)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].qname, qname) == 0)
			return true;
	return false;
}

static int consume_one(struct amqp_link *l, const struct amqp_flavor *f, struct err *e)
{
	int r = amqp_link_declare(l, f->qname, e);

	if (r < 0)
		return r;
	/* per consumer (global false): each flavor's queue has its own bound */
	amqp_basic_qos(l->conn, 1, 0, f->prefetch, 0);
	r = amqp_reply_err(amqp_get_rpc_reply(l->conn), "basic.qos", e);
	if (r < 0)
		return r;
	/* the consumer tag is the queue's name: a cancel names it */
	amqp_basic_consume(l->conn, 1, amqp_cstring_bytes(f->qname), amqp_cstring_bytes(f->qname),
	                   0, 0, 0, amqp_empty_table);
	return amqp_reply_err(amqp_get_rpc_reply(l->conn), "basic.consume", e);
}

/* A flavor no longer served: stop its consumer, give back what it held (requeued). */
static int cancel_one(struct queue_amqp *a, struct amqp_link *l, const struct amqp_flavor *f,
                      uint64_t gen, struct err *e)
{
	uint64_t *tags;
	size_t n = 0, k = 0;
	int r;

	amqp_basic_cancel(l->conn, 1, amqp_cstring_bytes(f->qname));
	r = amqp_reply_err(amqp_get_rpc_reply(l->conn), "basic.cancel", e);
	if (r < 0)
		return r;
	pthread_mutex_lock(&a->lock);
	tags = calloc(a->n_held ? a->n_held : 1, sizeof(*tags));
	for (size_t i = 0; tags && i < a->n_held; i++) {
		const struct amqp_held *h = &a->held[i];
		if (!h->acked && h->gen == gen && strcmp(h->j.flavor, f->flavor) == 0)
			tags[n++] = h->tag;
		else
			a->held[k++] = *h;
	}
	if (tags)
		a->n_held = k;
	pthread_mutex_unlock(&a->lock);
	if (!tags)
		return err_set(e, -ENOMEM, "queue amqp: out of memory");
	for (size_t i = 0; i < n && r == 0; i++)
		if (amqp_basic_reject(l->conn, 1, tags[i], 1) != AMQP_STATUS_OK)
			r = err_set(e, -ECONNRESET,
			            "queue amqp: basic.reject: the connection failed");
	free(tags);
	return r;
}

/* Consume what a->flavors says, and only that. */
static int sync_flavors(struct queue_amqp *a, struct amqp_link *l, struct consuming *c,
                        struct err *e)
{
	struct amqp_flavor *want;
	size_t n;
	uint64_t fgen;
	int r = 0;

	pthread_mutex_lock(&a->lock);
	fgen = a->flavors_gen;
	n = a->n_flavors;
	want = fgen == c->flavors_gen ? NULL : calloc(n ? n : 1, sizeof(*want));
	if (want)
		memcpy(want, a->flavors, n * sizeof(*want));
	pthread_mutex_unlock(&a->lock);
	if (fgen == c->flavors_gen)
		return 0;
	if (!want)
		return err_set(e, -ENOMEM, "queue amqp: out of memory");
	for (size_t i = 0; r == 0 && i < c->n; i++)
		if (!has(want, n, c->v[i].qname))
			r = cancel_one(a, l, &c->v[i], c->gen, e);
	for (size_t i = 0; r == 0 && i < n; i++)
		if (!has(c->v, c->n, want[i].qname))
			r = consume_one(l, &want[i], e);
	if (r < 0) {
		free(want);
		return r;
	}
	free(c->v);
	c->v = want;
	c->n = n;
	c->flavors_gen = fgen;
	return 0;
}

static int consumer_open(struct queue_amqp *a, struct amqp_link *l, struct consuming *c,
                         struct err *e)
{
	int r = amqp_link_open(l, a->uri, a->ca_file, false, 30, e);

	free(c->v);
	c->v = NULL;
	c->n = 0;
	c->flavors_gen = 0;
	if (r == 0)
		r = amqp_link_declare_fanout(l, a->exchange, e);
	if (r == 0) {
		/* this manager's own: gone with its connection, so it never piles up */
		amqp_queue_declare(l->conn, 1, amqp_cstring_bytes(a->state_q), 0, 0, 1, 1,
		                   amqp_empty_table);
		r = amqp_reply_err(amqp_get_rpc_reply(l->conn), "queue.declare", e);
	}
	if (r == 0) {
		amqp_queue_bind(l->conn, 1, amqp_cstring_bytes(a->state_q),
		                amqp_cstring_bytes(a->exchange), amqp_empty_bytes,
		                amqp_empty_table);
		r = amqp_reply_err(amqp_get_rpc_reply(l->conn), "queue.bind", e);
	}
	if (r == 0) {
		/* no_ack: a state change lost with the connection costs a recheck, nothing more */
		amqp_basic_consume(l->conn, 1, amqp_cstring_bytes(a->state_q),
		                   amqp_cstring_bytes("state"), 0, 1, 1, amqp_empty_table);
		r = amqp_reply_err(amqp_get_rpc_reply(l->conn), "basic.consume", e);
	}
	if (r == 0) {
		pthread_mutex_lock(&a->lock);
		c->gen = ++a->gen;
		pthread_mutex_unlock(&a->lock);
		r = sync_flavors(a, l, c, e);
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

/* Another manager (or this one) says a job no longer waits: its held message goes. */
static void on_state(struct queue_amqp *a, amqp_envelope_t *env)
{
	void (*notify)(void *) = NULL;
	void *ctx = NULL;
	struct amqp_held *h;
	int64_t job_id;

	if (amqp_state_decode(env->message.body.bytes, env->message.body.len, &job_id, NULL) < 0)
		return;
	pthread_mutex_lock(&a->lock);
	amqp_mark_done(a, job_id, clock_wall_ms());
	while ((h = amqp_find_held(a, job_id)) != NULL) {
		h->acked = true; /* sent by this thread's next round */
		notify = a->notify;
		ctx = a->notify_ctx;
	}
	pthread_mutex_unlock(&a->lock);
	if (notify)
		notify(ctx); /* a slot came free: the pass sizes the pool again */
}

static int on_delivery(struct queue_amqp *a, struct amqp_link *l, amqp_envelope_t *env,
                       uint64_t gen, struct err *e)
{
	struct queue_job j;
	struct amqp_held *h;
	void (*notify)(void *) = NULL;
	void *ctx = NULL;
	enum { KEEP, DROP, BACK } what = DROP;
	int r;

	if (env->exchange.len == strlen(a->exchange) &&
	    memcmp(env->exchange.bytes, a->exchange, env->exchange.len) == 0) {
		on_state(a, env);
		return 0;
	}
	if (amqp_msg_decode(env->message.body.bytes, env->message.body.len, &j, NULL) < 0)
		return ack_now(l, env->delivery_tag, e); /* not a job: nobody could serve it */
	pthread_mutex_lock(&a->lock);
	h = amqp_is_done(a, j.job_id) ? NULL : amqp_find_held(a, j.job_id);
	if (amqp_is_done(a, j.job_id) || (h && !h->replacing)) {
		what = DROP; /* done here, or held already: one runner per job */
	} else if (a->n_held < a->cap_held) {
		/* new, or the copy of a held one with newer bookkeeping: it takes the old one's
		 * place */
		if (h)
			h->acked = true;
		a->held[a->n_held++] = (struct amqp_held){
		        .j = j, .tag = env->delivery_tag, .gen = gen, .msg_attempts = j.attempts};
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
static int poll_once(struct queue_amqp *a, struct amqp_link *l, uint64_t gen, struct err *e)
{
	struct timeval tv = {.tv_usec = AMQP_POLL_MS * 1000};
	amqp_envelope_t env;
	amqp_rpc_reply_t rr;
	amqp_frame_t f;
	int r;

	amqp_maybe_release_buffers(l->conn);
	rr = amqp_consume_message(l->conn, &env, &tv, 0);
	if (rr.reply_type == AMQP_RESPONSE_NORMAL) {
		r = on_delivery(a, l, &env, gen, e);
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

static void wait_backoff(struct queue_amqp *a, int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&a->lock);
	if (!a->stop)
		pthread_cond_timedwait(&a->wake, &a->lock, &ts);
	pthread_mutex_unlock(&a->lock);
}

void *amqp_consumer(void *arg)
{
	struct queue_amqp *a = arg;
	struct amqp_link l = {0};
	struct consuming c = {0};
	int64_t backoff = AMQP_BACKOFF_MIN_MS;

	pthread_setname_np(pthread_self(), "amqp-consume");

	for (;;) {
		struct err e = {0};
		bool stop;

		pthread_mutex_lock(&a->lock);
		stop = a->stop;
		pthread_mutex_unlock(&a->lock);
		if (stop)
			break;
		if (!l.conn) {
			if (consumer_open(a, &l, &c, &e) < 0) {
				set_down(a, e.msg);
				wait_backoff(a, backoff);
				backoff = backoff * 2 < AMQP_BACKOFF_MAX_MS ? backoff * 2
				                                            : AMQP_BACKOFF_MAX_MS;
				continue;
			}
			backoff = AMQP_BACKOFF_MIN_MS;
			pthread_mutex_lock(&a->lock);
			a->up = true;
			pthread_mutex_unlock(&a->lock);
		}
		if (sync_flavors(a, &l, &c, &e) < 0 || send_acks(a, &l, &e) < 0 ||
		    poll_once(a, &l, c.gen, &e) < 0) {
			set_down(a, e.msg);
			amqp_link_close(&l);
		}
	}
	/* our unacked messages go back to the broker when this closes */
	amqp_link_close(&l);
	free(c.v);
	return NULL;
}
