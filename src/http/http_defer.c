/*
 * Deferred requests: a handler that must wait for other work (a reconcile
 * pass, an observation) sets its request aside, and the connection waits
 * suspended, holding no thread, until someone answers it from any thread,
 * its deadline passes (the handler's own response then goes out), or the
 * server stops (a 503). A deferral is shared by the server and the one who
 * answers, so it is counted and freed by whoever lets go last; either side
 * may go first. The first answer wins and the connection is never touched
 * after it: a suspended connection lives until it is resumed, and it is
 * resumed exactly once, by that answer. This file must never queue a
 * response off the connection's own thread, resume a connection twice or
 * after its answer, or leave one suspended when libmicrohttpd stops (it
 * aborts the process then).
 *
 * Locks: the server's lock (its list of deferrals), then a deferral's own
 * lock, then libmicrohttpd's (inside suspend/resume); libmicrohttpd calls
 * back into the server without holding its own.
 */
#include "util/common.h"
#include "http/http_internal.h"
#include "util/clock.h"

struct http_deferred {
	pthread_mutex_t lock; /* guards what follows but the list links */
	unsigned refs;        /* the server's and the answerer's */
	bool answered;        /* an answer is in, or the request is gone */
	bool suspended;       /* set aside: the answer resumes it */
	struct MHD_Connection *conn;
	struct MHD_Response *answer; /* queued by the connection's thread on resume */
	unsigned answer_status;
	struct MHD_Response *fallback; /* the handler's own response: sent at the deadline */
	unsigned fallback_status;
	int64_t deadline_ms;
	struct http_deferred *prev, *next; /* the server's list, under its lock */
};

static void deferred_unref(struct http_deferred *d)
{
	bool last;

	pthread_mutex_lock(&d->lock);
	last = --d->refs == 0;
	pthread_mutex_unlock(&d->lock);
	if (!last)
		return;
	if (d->answer)
		MHD_destroy_response(d->answer);
	if (d->fallback)
		MHD_destroy_response(d->fallback);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* The server lets go of d: its request is over, a late answer leaves it be. */
static void deferred_detach(struct http_deferred *d)
{
	pthread_mutex_lock(&d->lock);
	d->answered = true;
	d->suspended = false;
	d->conn = NULL;
	pthread_mutex_unlock(&d->lock);
	deferred_unref(d);
}

/*
 * Under d->lock, not answered yet: r (or, when r is NULL, the fallback)
 * becomes the answer, and a suspended connection resumes to send it. With
 * neither, it resumes without one and is closed.
 */
static void deliver(struct http_deferred *d, struct MHD_Response *r, unsigned status)
{
	if (!r) {
		r = d->fallback;
		status = d->fallback_status;
		d->fallback = NULL;
	}
	d->answered = true;
	d->answer = r;
	d->answer_status = status;
	if (d->suspended) {
		d->suspended = false;
		MHD_resume_connection(d->conn);
	}
}

int http_request_defer(const struct http_request *req, unsigned timeout_ms,
                       struct http_deferred **ret)
{
	struct request_state *rs = req->impl;
	struct http_server *s = rs->server;
	struct http_deferred *d;
	int r = 0;

	if (timeout_ms == 0)
		return -EINVAL;
	if (rs->deferred)
		return -EALREADY;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	d->refs = 2;
	d->conn = rs->conn;
	d->deadline_ms = clock_mono_ms() + timeout_ms;
	pthread_mutex_lock(&s->lock);
	if (s->stopping) {
		r = -ESHUTDOWN;
	} else if (s->n_deferred >= s->max_held) {
		r = -EBUSY;
	} else {
		d->next = s->deferred;
		if (s->deferred)
			s->deferred->prev = d;
		s->deferred = d;
		s->n_deferred++;
	}
	pthread_mutex_unlock(&s->lock);
	if (r < 0) {
		pthread_mutex_destroy(&d->lock);
		free(d);
		return r;
	}
	rs->deferred = d;
	*ret = d;
	return 0;
}

int http_deferred_answer(struct http_deferred *d, const struct http_response *resp)
{
	struct MHD_Response *r = NULL;
	unsigned status = 0;
	int ret;

	if (!d)
		return -EINVAL;
	ret = http_response_to_mhd(resp, &r, &status);
	pthread_mutex_lock(&d->lock);
	if (d->answered) {
		ret = -EALREADY;
	} else {
		deliver(d, r, status);
		r = NULL;
	}
	pthread_mutex_unlock(&d->lock);
	if (r)
		MHD_destroy_response(r);
	deferred_unref(d);
	return ret;
}

enum MHD_Result http_defer_settle(struct request_state *rs, const struct http_response *resp)
{
	struct http_deferred *d = rs->deferred;
	struct MHD_Response *fb = NULL, *now = NULL;
	unsigned fb_status = 0, now_status = 0;
	bool answered;

	if (http_response_to_mhd(resp, &fb, &fb_status) < 0)
		fb = NULL; /* the deadline then closes the connection without an answer */
	pthread_mutex_lock(&d->lock);
	d->fallback = fb;
	d->fallback_status = fb_status;
	answered = d->answered;
	if (answered) {
		/* answered while the handler ran: no need to wait */
		now = d->answer;
		now_status = d->answer_status;
		d->answer = NULL;
	} else {
		MHD_suspend_connection(rs->conn);
		d->suspended = true;
	}
	pthread_mutex_unlock(&d->lock);
	return answered ? http_queue(rs->conn, now_status, now) : MHD_YES;
}

enum MHD_Result http_defer_resumed(struct request_state *rs)
{
	struct http_deferred *d = rs->deferred;
	struct MHD_Response *r;
	unsigned status;

	pthread_mutex_lock(&d->lock);
	r = d->answer;
	status = d->answer_status;
	d->answer = NULL;
	pthread_mutex_unlock(&d->lock);
	return http_queue(rs->conn, status, r);
}

void http_defer_completed(struct http_server *s, struct request_state *rs)
{
	struct http_deferred *d = rs->deferred;

	if (!d)
		return;
	rs->deferred = NULL;
	pthread_mutex_lock(&s->lock);
	if (d->prev)
		d->prev->next = d->next;
	else
		s->deferred = d->next;
	if (d->next)
		d->next->prev = d->prev;
	d->prev = d->next = NULL;
	s->n_deferred--;
	pthread_mutex_unlock(&s->lock);
	deferred_detach(d);
}

int64_t http_defer_expire(struct http_server *s, int64_t now_ms)
{
	int64_t next = INT64_MAX;

	for (struct http_deferred *d = s->deferred; d; d = d->next) {
		int64_t due = d->deadline_ms;

		pthread_mutex_lock(&d->lock);
		if (!d->answered && now_ms >= due) {
			if (d->suspended)
				deliver(d, NULL, 0);
			else /* still in its handler, settled within moments */
				due = now_ms + 10;
		}
		if (!d->answered && due < next)
			next = due;
		pthread_mutex_unlock(&d->lock);
	}
	return next;
}

void http_defer_stop(struct http_server *s)
{
	static const char stopping[] = "{\"error\":\"the server is stopping\"}";

	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	for (struct http_deferred *d = s->deferred; d; d = d->next) {
		pthread_mutex_lock(&d->lock);
		if (!d->answered)
			deliver(d, http_json_response(stopping, NULL), 503);
		pthread_mutex_unlock(&d->lock);
	}
	pthread_mutex_unlock(&s->lock);
}

void http_defer_release_all(struct http_server *s)
{
	struct http_deferred *d;

	pthread_mutex_lock(&s->lock);
	d = s->deferred;
	s->deferred = NULL;
	s->n_deferred = 0;
	pthread_mutex_unlock(&s->lock);
	while (d) {
		struct http_deferred *next = d->next;

		deferred_detach(d);
		d = next;
	}
}
