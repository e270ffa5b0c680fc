/*
 * Deferred requests: a handler that must wait for other work (a write to
 * disk, a reconcile pass) sets its request aside, and the connection waits
 * in its loop, holding no thread, until someone answers it from any thread,
 * its deadline passes (the handler's own response then goes out), or the
 * server stops (a 503). A deferral is shared by the connection and the one
 * who answers, counted, and freed by whoever lets go last. The first answer
 * wins.
 *
 * The answer goes out from the answering thread itself when it can: while
 * the connection waits, its loop leaves the socket alone (input only marks
 * the deferral), so the answerer may send on it under the deferral's lock.
 * When the whole answer went out and nothing else waits, the connection is
 * ready for its next request without its loop waking up at all; otherwise
 * (a full socket, input that came meanwhile, a connection to close) the
 * answer is handed back to the loop, which sends the rest. This saves a
 * wake-up and a hand-over per request, most of what a deferred answer
 * costs. The answerer never touches a connection whose request is over:
 * the loop lets go of it under the same lock before it closes or reuses it.
 *
 * Locks: a deferral's, then a loop's (the hand-back list) or the server's
 * (the counts); never the other way round.
 */
#include "util/common.h"
#include "http/http_internal.h"
#include "util/clock.h"

#include <sys/eventfd.h>

struct http_deferred {
	pthread_mutex_t lock;
	unsigned refs;     /* the connection's and the answerer's */
	struct conn *conn; /* NULL once the server let go */
	struct http_server *server;
	int fd;
	bool keep_alive, head_only;
	int minor;
	bool answered;      /* an answer is decided */
	bool settled;       /* the handler returned: the connection waits */
	bool input_pending; /* input (or its end) came, or may wait, meanwhile */
	bool sent;          /* the answerer sent it all: ready for the next request */
	int64_t sent_ms;
	struct http_out answer;   /* decided, and not (all) sent: the loop sends it */
	struct http_out fallback; /* the handler's own: sent at the deadline */
	int64_t deadline_ms;
};

static void deferred_unref(struct http_deferred *d)
{
	bool last;

	pthread_mutex_lock(&d->lock);
	last = --d->refs == 0;
	pthread_mutex_unlock(&d->lock);
	if (!last)
		return;
	http_out_release(&d->answer);
	http_out_release(&d->fallback);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* The deferral no longer holds a slot (it is answered, or gone). */
static void count_answered(struct http_server *s, struct conn *c, bool ready, int64_t now)
{
	pthread_mutex_lock(&s->lock);
	s->n_deferred--;
	/* sent: its next head is due from now (keep-alive) */
	if (ready && c)
		watch_head(s, c, true, now);
	pthread_mutex_unlock(&s->lock);
}

int http_request_defer(const struct http_request *req, unsigned timeout_ms,
                       struct http_deferred **ret)
{
	struct conn *c = req->impl;
	struct http_server *s = c->loop->server;
	struct http_deferred *d;
	int r = 0;

	if (timeout_ms == 0)
		return -EINVAL;
	if (c->deferred)
		return -EALREADY;
	pthread_mutex_lock(&s->lock);
	if (s->stopping)
		r = -ESHUTDOWN;
	else if (s->n_deferred >= s->max_held)
		r = -EBUSY;
	else
		s->n_deferred++;
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		return r;
	d = calloc(1, sizeof(*d));
	if (!d) {
		count_answered(s, NULL, false, 0);
		return -ENOMEM;
	}
	pthread_mutex_init(&d->lock, NULL);
	d->refs = 2;
	d->conn = c;
	d->server = s;
	d->fd = c->fd;
	d->keep_alive = c->keep_alive;
	d->head_only = c->is_head;
	d->minor = c->head.minor;
	d->deadline_ms = clock_mono_ms() + timeout_ms;
	c->deferred = d;
	*ret = d;
	return 0;
}

/* Under d->lock, answered by the caller: the loop takes the connection back. */
static void hand_back(struct http_deferred *d)
{
	struct conn *c = d->conn;
	struct loop *l = c->loop;
	uint64_t one = 1;

	pthread_mutex_lock(&l->lock);
	if (!c->in_handback) {
		c->in_handback = true;
		c->hb_next = l->handback;
		l->handback = c;
	}
	pthread_mutex_unlock(&l->lock);
	(void)!write(l->wakefd, &one, sizeof(one));
}

/*
 * Under d->lock, answered now by the caller, the connection waiting: send
 * o from here. All of it, keep-alive and nothing else waiting: done, the
 * connection is ready. Otherwise its loop sends the rest.
 */
static void send_or_hand_back(struct http_deferred *d, struct http_out *o)
{
	ssize_t n = send(d->fd, o->data, o->len, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n == (ssize_t)o->len && !o->close_after && !d->input_pending) {
		http_out_release(o);
		d->sent = true;
		d->sent_ms = clock_mono_ms();
		return;
	}
	if (n > 0)
		o->off = (size_t)n;
	d->answer = *o;
	*o = (struct http_out){0};
	hand_back(d);
}

int http_deferred_answer(struct http_deferred *d, const struct http_response *resp)
{
	struct http_out o = {0};
	bool built;
	int ret = 0;

	if (!d)
		return -EINVAL;
	built = http_out_build(resp, d->head_only, d->keep_alive, d->minor, &o) == 0;
	pthread_mutex_lock(&d->lock);
	if (d->answered) {
		ret = -EALREADY;
	} else {
		d->answered = true;
		if (!built) {
			/* no copy of resp: the handler's own answer, at once */
			ret = -ENOMEM;
			o = d->fallback;
			d->fallback = (struct http_out){0};
		}
		if (d->settled && o.data)
			send_or_hand_back(d, &o);
		else if (d->settled)
			hand_back(d); /* nothing to send: the loop closes it */
		else if (o.data) {
			d->answer = o; /* the handler still runs: settle sends it */
			o = (struct http_out){0};
		}
		/* under d->lock: the connection is still there to count */
		count_answered(d->server, d->conn, d->sent, d->sent_ms);
	}
	pthread_mutex_unlock(&d->lock);
	http_out_release(&o);
	deferred_unref(d);
	return ret;
}

/* The connection lets go of its deferral: its request is over. */
static void release(struct conn *c)
{
	struct http_deferred *d = c->deferred;

	pthread_mutex_lock(&d->lock);
	d->conn = NULL;
	pthread_mutex_unlock(&d->lock);
	c->deferred = NULL;
	deferred_unref(d);
}

void defer_settle(struct conn *c, const struct http_response *resp)
{
	struct http_deferred *d = c->deferred;
	struct http_out fb = {0}, now = {0};

	(void)http_out_build(resp, d->head_only, d->keep_alive, d->minor, &fb);
	pthread_mutex_lock(&d->lock);
	if (d->answered) {
		/* answered while the handler ran: no need to wait */
		now = d->answer.data ? d->answer : fb;
		if (d->answer.data)
			http_out_release(&fb);
		d->answer = (struct http_out){0};
	} else {
		d->fallback = fb;
		d->settled = true;
		d->input_pending = c->in_len > 0 || !c->drained || c->eof;
		c->state = CONN_DEFERRED;
	}
	pthread_mutex_unlock(&d->lock);
	if (c->state == CONN_DEFERRED)
		return;
	release(c);
	conn_answer(c, &now);
}

/* Under d->lock, not answered yet, its time is up: the loop sends the handler's own answer. */
static void answer_here(struct http_deferred *d)
{
	d->answered = true;
	d->answer = d->fallback;
	d->fallback = (struct http_out){0};
}

bool defer_resume(struct conn *c)
{
	struct http_deferred *d = c->deferred;
	struct http_out o = {0};
	bool sent;
	int64_t sent_ms;

	pthread_mutex_lock(&d->lock);
	if (!d->answered) {
		/*
		 * input came meanwhile (the loop marks an input event so): the answer
		 * must leave the rest to the loop; other events (the socket writable, a
		 * hand-back left from the previous request) change nothing
		 */
		if (!c->drained || c->hup)
			d->input_pending = true;
		pthread_mutex_unlock(&d->lock);
		return false;
	}
	sent = d->sent;
	sent_ms = d->sent_ms;
	o = d->answer;
	d->answer = (struct http_out){0};
	pthread_mutex_unlock(&d->lock);
	release(c);
	if (sent) {
		/* the answerer sent it all: the next request may come */
		c->state = CONN_HEAD;
		c->head_since_ms = sent_ms;
		c->active_ms = sent_ms;
		return true;
	}
	if (!o.data) {
		c->state = CONN_DONE;
		return true;
	}
	conn_answer(c, &o);
	return true;
}

bool defer_expire(struct conn *c, int64_t now)
{
	struct http_deferred *d = c->deferred;
	bool due;

	pthread_mutex_lock(&d->lock);
	if (!d->answered && d->settled && now >= d->deadline_ms) {
		answer_here(d);
		count_answered(c->loop->server, NULL, false, 0);
	}
	due = d->answered;
	pthread_mutex_unlock(&d->lock);
	return due;
}

void defer_end(struct conn *c, bool stopping)
{
	static const char busy[] = "{\"error\":\"the server is stopping\"}";
	struct http_deferred *d = c->deferred;
	struct http_out o = {0};

	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	if (!d->answered) {
		d->answered = true;
		/* what was set aside gets a 503, best effort: the connection closes next */
		if (stopping && d->settled &&
		    http_out_json(503, busy, NULL, false, d->minor, &o) == 0)
			(void)!send(d->fd, o.data, o.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		count_answered(c->loop->server, NULL, false, 0);
	}
	pthread_mutex_unlock(&d->lock);
	http_out_release(&o);
	release(c);
}
