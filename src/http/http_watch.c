/*
 * The deadlines and the reserve libmicrohttpd does not keep. Its idle
 * timeout restarts on every byte, so a peer that drips its request head
 * would hold a connection for ever; and once every slot is taken, new
 * connections wait behind such peers. So every connection is watched from
 * accept to close: its request line and headers (on keep-alive, the next
 * request's, counted from the previous answer) must be complete within the
 * header deadline, and a watchdog thread closes the ones that are not; and
 * while heads in progress and deferred requests would take the slots kept
 * in reserve, the head that has been arriving longest is closed at once
 * (on a new connection, and by the watchdog when no new connection can
 * come). A head whose bytes wait unread in the socket is late by the
 * server's fault and spared; a head younger than a moment is spared too
 * (its client may not have sent it yet). Closing is shutdown(SHUT_RD):
 * the connection's thread reads end of input and closes it as usual, but
 * what it already read still completes, so a head that was complete in
 * its buffer when we decided is still served. The watchdog also ends
 * deferred requests whose time is up (http_defer.c). This file must never
 * close a descriptor (they are libmicrohttpd's) nor shut one down outside
 * the server lock: a watch is unlinked under it before libmicrohttpd
 * closes the socket, so a watched descriptor is still the connection's.
 */
#include "util/common.h"
#include "http/http_internal.h"
#include "util/clock.h"

#include <sys/ioctl.h>
#include <sys/socket.h>

struct conn_watch {
	int fd;
	int64_t head_since_ms; /* when its current request head became due */
	bool in_head;          /* that head is not complete yet */
	bool cut;              /* its input is shut: no next request */
	struct conn_watch *prev, *next;
};

static struct conn_watch *watch_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/*
 * Under s->lock. No answer goes out (nginx does the same on a header
 * timeout): the peer may be anywhere in its head, and the thread that
 * owns the connection may be writing.
 */
static void watch_cut(struct http_server *s, struct conn_watch *w)
{
	if (w->in_head)
		s->n_heads--;
	w->in_head = false;
	w->cut = true;
	(void)shutdown(w->fd, SHUT_RD);
}

/*
 * Whether the peer sent bytes its connection's thread has not read yet
 * (that thread is busy, say in a handler): then a late head is the
 * server's fault, not the peer's, and the head is spared. A peer that drips
 * has its every byte read at once, so this never spares it for long.
 */
static bool unread_input(const struct conn_watch *w)
{
	int n = 0;

	return ioctl(w->fd, FIONREAD, &n) == 0 && n > 0;
}

/*
 * Under s->lock: the head arriving longest, if it is the peer's to finish
 * and has had EVICT_GRACE_MS for it (a client that just connected may not
 * have sent its head yet, and must not be taken for one that drips).
 */
static struct conn_watch *oldest_head(struct http_server *s, int64_t now)
{
	struct conn_watch *old = NULL;

	for (struct conn_watch *w = s->conns; w; w = w->next)
		if (w->in_head && w->head_since_ms + EVICT_GRACE_MS <= now &&
		    (!old || w->head_since_ms < old->head_since_ms) && !unread_input(w))
			old = w;
	return old;
}

/*
 * Under s->lock: close the oldest heads while heads and deferred requests
 * take more than their share. Run on every new connection and by the
 * watchdog: when every slot is taken no new connection comes to run it.
 * Returns when to look again (INT64_MAX: not over): when the young heads
 * that are left have had their grace.
 */
static int64_t keep_reserve(struct http_server *s, int64_t now)
{
	while (s->n_heads + s->n_deferred > s->max_held) {
		struct conn_watch *old = oldest_head(s, now);
		int64_t next = INT64_MAX;

		if (old) {
			watch_cut(s, old);
			continue;
		}
		for (struct conn_watch *w = s->conns; w; w = w->next)
			if (w->in_head && w->head_since_ms + EVICT_GRACE_MS < next)
				next = w->head_since_ms + EVICT_GRACE_MS;
		/* those past their grace wait for their thread to read them */
		return next > now ? next : now + 10;
	}
	return INT64_MAX;
}

static void watch_add(struct http_server *s, struct MHD_Connection *conn, void **socket_context)
{
	const union MHD_ConnectionInfo *ci;
	struct conn_watch *w = calloc(1, sizeof(*w));

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!w || !ci) {
		/* unwatched, it would escape the deadline: refuse it */
		free(w);
		if (ci)
			(void)shutdown(ci->connect_fd, SHUT_RDWR);
		return;
	}
	w->fd = ci->connect_fd;
	w->in_head = true;
	w->head_since_ms = clock_mono_ms();
	pthread_mutex_lock(&s->lock);
	w->next = s->conns;
	if (s->conns)
		s->conns->prev = w;
	s->conns = w;
	s->n_heads++;
	if (keep_reserve(s, w->head_since_ms) != INT64_MAX)
		pthread_cond_broadcast(&s->wake); /* the watchdog takes it from here */
	pthread_mutex_unlock(&s->lock);
	*socket_context = w;
}

static void watch_remove(struct http_server *s, struct conn_watch *w)
{
	pthread_mutex_lock(&s->lock);
	if (w->in_head)
		s->n_heads--;
	if (w->prev)
		w->prev->next = w->next;
	else
		s->conns = w->next;
	if (w->next)
		w->next->prev = w->prev;
	pthread_mutex_unlock(&s->lock);
	free(w);
}

void http_watch_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode code)
{
	struct http_server *s = cls;

	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		watch_add(s, conn, socket_context);
	else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
		watch_remove(s, *socket_context);
		*socket_context = NULL;
	}
}

bool http_watch_head_done(struct http_server *s, struct MHD_Connection *conn)
{
	struct conn_watch *w = watch_of(conn);

	if (!w)
		return false;
	pthread_mutex_lock(&s->lock);
	if (w->in_head)
		s->n_heads--;
	w->in_head = false;
	pthread_mutex_unlock(&s->lock);
	return true;
}

void http_watch_request_done(struct http_server *s, struct MHD_Connection *conn)
{
	struct conn_watch *w = watch_of(conn);

	if (!w)
		return;
	pthread_mutex_lock(&s->lock);
	if (!w->cut && !w->in_head) {
		w->in_head = true;
		w->head_since_ms = clock_mono_ms();
		s->n_heads++;
	}
	pthread_mutex_unlock(&s->lock);
}

/* Under s->lock: close the late heads; the next head deadline (INT64_MAX: none). */
static int64_t cut_late_heads(struct http_server *s, int64_t now)
{
	int64_t next = INT64_MAX;

	for (struct conn_watch *w = s->conns; w; w = w->next) {
		int64_t due;

		if (!w->in_head)
			continue;
		due = w->head_since_ms + s->header_timeout_ms;
		if (now >= due && !unread_input(w))
			watch_cut(s, w);
		else if (now >= due)
			due = now + WATCH_TICK_MS; /* look again once its thread read it */
		if (w->in_head && due < next)
			next = due;
	}
	return next;
}

static void *watchdog_main(void *arg)
{
	struct http_server *s = arg;

	pthread_mutex_lock(&s->lock);
	while (!s->watchdog_stop) {
		int64_t now = clock_mono_ms(), next = now + WATCH_TICK_MS, due;
		struct timespec at;

		due = cut_late_heads(s, now);
		if (due < next)
			next = due;
		due = keep_reserve(s, now);
		if (due < next)
			next = due;
		due = http_defer_expire(s, now);
		if (due < next)
			next = due;
		at.tv_sec = (time_t)(next / 1000);
		at.tv_nsec = (long)(next % 1000) * 1000000L;
		(void)pthread_cond_timedwait(&s->wake, &s->lock, &at);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int http_watch_start(struct http_server *s)
{
	int r = pthread_create(&s->watchdog, NULL, watchdog_main, s);

	if (r != 0)
		return -r;
	s->watchdog_running = true;
	return 0;
}

void http_watch_stop(struct http_server *s)
{
	if (!s->watchdog_running)
		return;
	pthread_mutex_lock(&s->lock);
	s->watchdog_stop = true;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->watchdog, NULL);
	s->watchdog_running = false;
}
