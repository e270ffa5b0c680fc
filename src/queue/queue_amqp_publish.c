/*
 * The amqp queue's publisher: one connection in confirm mode, used under
 * pub_lock by push and update (from the callers' threads) and by its own
 * thread, which announces state changes on the state fanout (so every
 * manager drops a job that no longer waits at once) and publishes the
 * spool: jobs a webhook brought while the broker was away (or too slow to
 * answer within the webhook's budget), each deleted only after the broker
 * confirmed it. It must never hold a webhook on the broker past its
 * budget (GitHub gives up after 10 s), nor put the URI in a message.
 */
#include "util/common.h"
#include "queue/queue_internal.h"
#include "util/clock.h"
#include "util/strutil.h"

/* Spooled messages published in one round at most. */
#define SPOOL_BATCH 32
/* The publisher thread looks at the spool at least this often. */
#define PUB_TICK_MS 500

/* pub_lock, waiting until deadline (mono ms; 0: as long as it takes): -ETIMEDOUT. */
static int lock_pub(struct queue_amqp *a, int64_t deadline)
{
	struct timespec ts;

	if (deadline <= 0)
		return -pthread_mutex_lock(&a->pub_lock);
	ts = (struct timespec){.tv_sec = deadline / 1000, .tv_nsec = (deadline % 1000) * 1000000L};
	return -pthread_mutex_clocklock(&a->pub_lock, CLOCK_MONOTONIC, &ts);
}

int amqp_pub_send(struct queue_amqp *a, const char *exchange, const char *rkey, const char *body,
                  size_t len, int64_t budget_ms, struct err *e)
{
	int64_t deadline = budget_ms > 0 ? clock_mono_ms() + budget_ms : 0;
	int r = -EAGAIN;

	/* the publisher thread may hold it, waiting on a silent broker: not past the budget */
	if (lock_pub(a, deadline > 0 ? deadline - budget_ms / 2 : 0) < 0)
		return err_set(e, -ETIMEDOUT,
		               "queue amqp: the broker is slow to answer (its publisher is busy)");
	a->pub.deadline_ms = deadline;
	/* a link that went stale (the broker restarted) fails once: one fresh try */
	for (int attempt = 0; attempt < 2; attempt++) {
		int64_t now = clock_mono_ms();

		if (!a->pub.conn) {
			if (now < a->pub_retry_at) {
				r = err_set(e, -EAGAIN,
				            "queue amqp: the broker is unreachable (retrying)");
				break;
			}
			r = amqp_link_open(&a->pub, a->uri, a->ca_file, true, 0, e);
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
		r = amqp_link_publish(&a->pub, exchange, rkey, body, len, e);
		if (r == 0 || r == -EIO)
			break;
		/* a confirm that did not come in time may still come: the link is not trusted */
		amqp_link_close(&a->pub);
		if (deadline > 0 && amqp_link_wait_ms(&a->pub) <= 0)
			break;
	}
	a->pub.deadline_ms = 0;
	pthread_mutex_unlock(&a->pub_lock);
	return r;
}

int amqp_spool(struct queue_amqp *a, int64_t job_id, const char *qname, const char *body,
               struct err *e)
{
	struct store_spooled *m;
	int r;

	if (!a->store)
		return err_set(e, -ENOTSUP, "queue amqp: no state store to spool in");
	m = calloc(1, sizeof(*m));
	if (!m)
		return err_set(e, -ENOMEM, "queue amqp: out of memory");
	m->job_id = job_id;
	m->spooled_at = clock_wall_ms();
	if (str_copy(m->queue, qname, sizeof(m->queue)) >= sizeof(m->queue) ||
	    str_copy(m->body, body, sizeof(m->body)) >= sizeof(m->body))
		r = err_set(e, -EMSGSIZE, "queue amqp: job %" PRId64 ": too large to spool",
		            job_id);
	else {
		/* the row and its count under one lock: the publisher's recount
		 * (flush_spool) never lands between them and counts a row twice */
		pthread_mutex_lock(&a->lock);
		r = store_spool_add(a->store, m, e);
		if (r == 0) {
			a->spooled++;
			/* the publisher takes it from here, now */
			pthread_cond_signal(&a->pub_wake);
		}
		pthread_mutex_unlock(&a->lock);
	}
	free(m);
	return r;
}

/* Announce the state changes waiting; those the broker did not take wait again. */
static void announce(struct queue_amqp *a)
{
	struct amqp_announce *v;
	size_t n, sent = 0;

	v = malloc(sizeof(a->announce));
	if (!v)
		return;
	pthread_mutex_lock(&a->lock);
	n = a->n_announce;
	memcpy(v, a->announce, n * sizeof(*v));
	a->n_announce = 0;
	pthread_mutex_unlock(&a->lock);
	for (; sent < n; sent++) {
		char body[512];
		size_t len;

		if (amqp_state_encode(v[sent].job_id, v[sent].why, a->manager, body, sizeof(body),
		                      &len, NULL) < 0)
			continue;
		if (amqp_pub_send(a, a->exchange, "", body, len, 0, NULL) < 0)
			break;
	}
	if (sent < n) {
		/* the unsent first, then what came meanwhile; the oldest go when full */
		pthread_mutex_lock(&a->lock);
		size_t keep = n - sent, newer = a->n_announce;
		if (keep + newer > AMQP_ANNOUNCE_MAX)
			keep = AMQP_ANNOUNCE_MAX - newer;
		memmove(&a->announce[keep], a->announce, newer * sizeof(*v));
		memcpy(a->announce, &v[n - keep], keep * sizeof(*v));
		a->n_announce = keep + newer;
		pthread_mutex_unlock(&a->lock);
	}
	free(v);
}

/* Publish the spool, oldest first; a row goes only after its confirm. */
static void flush_spool(struct queue_amqp *a)
{
	struct store_spool_list l = {0};
	int64_t left = 0;

	if (!a->store || store_spool_list(a->store, SPOOL_BATCH, &l, NULL) < 0)
		return;
	for (size_t i = 0; i < l.n; i++) {
		const struct store_spooled *m = &l.v[i];
		bool done;

		pthread_mutex_lock(&a->lock);
		done = amqp_is_done(a, m->job_id); /* it ended while spooled: nobody needs it */
		pthread_mutex_unlock(&a->lock);
		if (!done && amqp_pub_send(a, "", m->queue, m->body, strlen(m->body), 0, NULL) < 0)
			break;
		/* a crash before this delete publishes it again: consumers dedupe */
		if (store_spool_delete(a->store, m->job_id, NULL) < 0)
			break;
	}
	store_spool_list_release(&l);
	pthread_mutex_lock(&a->lock);
	if (store_spool_count(a->store, &left, NULL) == 0)
		a->spooled = left;
	pthread_mutex_unlock(&a->lock);
}

static void wait_tick(struct queue_amqp *a)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += PUB_TICK_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&a->lock);
	if (!a->stop && a->n_announce == 0)
		pthread_cond_timedwait(&a->pub_wake, &a->lock, &ts);
	pthread_mutex_unlock(&a->lock);
}

void *amqp_publisher(void *arg)
{
	struct queue_amqp *a = arg;

	pthread_setname_np(pthread_self(), "amqp-publish");
	for (;;) {
		bool stop, spooled;

		pthread_mutex_lock(&a->lock);
		stop = a->stop;
		spooled = a->spooled > 0;
		pthread_mutex_unlock(&a->lock);
		/* at a stop, one last try: a state change told late still frees a slot elsewhere */
		announce(a);
		if (stop)
			break;
		if (spooled)
			flush_spool(a);
		wait_tick(a);
	}
	return NULL;
}
