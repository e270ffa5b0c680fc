/*
 * One connection, driven by its loop: read what the peer sent, parse the
 * request head (http_parse.c), route it and refuse what can be refused
 * before the body (no "100 Continue" and no body byte read for those), read
 * the body within its route's cap, call the handler, and send the answer;
 * then the next request on a keep-alive connection. conn_run moves it as
 * far as it can go without waiting, and is called again on its next event.
 *
 * A connection reads one recv() per event when the socket gives less than
 * asked (its queue was empty then: the next bytes bring a new event), and
 * reads no further while an answer is going out or its request is
 * deferred, so pipelined requests are answered in order. Nothing here may
 * buffer a body beyond its route's cap, log above debug, or put request
 * data in a message.
 */
#include "util/common.h"
#include "http/http_internal.h"
#include "util/clock.h"
#include "util/strutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>

static void peer_name(const struct sockaddr_storage *ss, bool is_unix, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN];

	str_copy(out, is_unix ? "unix" : "?", cap);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		if (inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host)))
			snprintf(out, cap, "%s:%u", host, (unsigned)ntohs(a->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		if (inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host)))
			snprintf(out, cap, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
	}
}

struct conn *conn_new(struct loop *l, int fd, const struct sockaddr_storage *addr)
{
	struct http_server *s = l->server;
	struct conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
	int64_t now = clock_mono_ms();
	bool admitted;

	if (c)
		c->in = malloc(INPUT_START);
	if (!c || !c->in) {
		pthread_mutex_lock(&s->lock);
		s->n_accepting--;
		l->n_assigned--;
		pthread_mutex_unlock(&s->lock);
		free(c);
		return NULL;
	}
	c->in_cap = INPUT_START;
	c->loop = l;
	c->fd = fd;
	c->addr = *addr;
	c->state = CONN_HEAD;
	c->head_since_ms = c->active_ms = now;
	buf_init(&c->body, 0);
	peer_name(addr, s->is_unix, c->peer, sizeof(c->peer));
	if (s->is_unix) {
		struct ucred cred;
		socklen_t len = sizeof(cred);

		/* fail closed: a peer we cannot identify is refused (403) */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
		    len == sizeof(cred)) {
			c->peer_uid = cred.uid;
			c->peer_uid_known = true;
		}
	}
	pthread_mutex_lock(&s->lock);
	s->n_accepting--; /* the slot accept_all took becomes this connection's */
	admitted = watch_add(s, c, now);
	if (admitted)
		keep_reserve(s, now);
	pthread_mutex_unlock(&s->lock);
	ev.data.ptr = c;
	if (!admitted || epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		pthread_mutex_lock(&s->lock);
		if (admitted)
			watch_remove(s, c);
		l->n_assigned--;
		pthread_mutex_unlock(&s->lock);
		free(c->in);
		free(c);
		return NULL;
	}
	c->lnext = l->conns;
	if (l->conns)
		l->conns->lprev = c;
	l->conns = c;
	return c;
}

/* The request is over (answered): drop its bytes and what it held. */
static void request_end(struct conn *c)
{
	size_t used = c->head_len + c->pos;

	if (used > c->in_len)
		used = c->in_len;
	memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
	c->head_len = 0;
	c->head_scan = 0;
	c->pos = 0;
	c->route = NULL;
	c->framing = HTTP_BODY_NONE;
	c->chunked = (struct http_chunked){0};
	memset(&c->head, 0, sizeof(c->head));
	buf_release(&c->body);
	http_query_release(&c->args);
}

void conn_answer(struct conn *c, struct http_out *o)
{
	request_end(c);
	c->out = *o;
	*o = (struct http_out){0};
	c->state = c->out.data ? CONN_WRITING : CONN_DONE;
}

/* A refusal of the server's own; close: the connection ends after it (its body is unread). */
static void refuse(struct conn *c, int status, const char *json, const char *allow, bool close)
{
	struct http_out o;
	/* a HEAD gets no body: after this one (with a body), nothing else on the connection */
	bool keep = c->keep_alive && !close && !c->is_head;

	if (http_out_json(status, json, allow, keep, c->head.minor, &o) < 0) {
		c->state = CONN_DONE;
		return;
	}
	conn_answer(c, &o);
}

static void refuse_parse(struct conn *c, int status)
{
	switch (status) {
	case 431:
		refuse(c, 431, "{\"error\":\"request head too large\"}", NULL, true);
		return;
	case 501:
		refuse(c, 501, "{\"error\":\"transfer coding not supported\"}", NULL, true);
		return;
	case 505:
		refuse(c, 505, "{\"error\":\"HTTP version not supported\"}", NULL, true);
		return;
	default:
		refuse(c, 400, "{\"error\":\"bad request\"}", NULL, true);
	}
}

static void dispatch(struct conn *c)
{
	struct http_server *s = c->loop->server;
	struct http_request req = {
	        .method = c->head.method,
	        .path = c->head.path,
	        .query = c->head.query,
	        .body = buf_str(&c->body),
	        .body_len = c->body.len,
	        .peer_uid = c->peer_uid,
	        .peer_uid_known = c->peer_uid_known,
	        .impl = c,
	};
	struct http_response resp;
	struct http_out o = {0};

	str_copy(req.peer, c->peer, sizeof(req.peer));
	http_response_init(&resp);
	c->route->fn(s->ctx, &req, &resp);
	if (c->deferred) {
		request_end(c);
		defer_settle(c, &resp);
	} else {
		(void)http_out_build(&resp, c->is_head, c->keep_alive, c->head.minor, &o);
		conn_answer(c, &o); /* out of memory: no answer, the connection closes */
	}
	http_response_release(&resp);
}

/* "HTTP/1.1 100 Continue": nothing is waiting to go out before it, and it is tiny. */
static void send_continue(struct conn *c)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	(void)!send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/*
 * The head is complete: route it and refuse what can be refused before
 * the body. Then the body is read (CONN_BODY) or the handler runs.
 */
static void begin(struct conn *c)
{
	struct http_server *s = c->loop->server;
	const struct http_route *route = NULL;
	char allow[256];
	int r, expect;
	bool has_body;

	pthread_mutex_lock(&s->lock);
	watch_head(s, c, false, 0);
	pthread_mutex_unlock(&s->lock);
	c->keep_alive = http_head_keep_alive(&c->head);
	c->is_head = strcmp(c->head.method, "HEAD") == 0;
	r = http_head_framing(&c->head, &c->framing, &c->body_left);
	if (r < 0) {
		refuse_parse(c, -r);
		return;
	}
	has_body = c->framing != HTTP_BODY_NONE;
	if (s->is_unix && (!c->peer_uid_known || (c->peer_uid != s->allowed_uid && c->peer_uid))) {
		refuse(c, 403, "{\"error\":\"forbidden\"}", NULL, true);
		return;
	}
	r = http_route_find(s->routes, s->n_routes, c->head.method, c->head.path, &route);
	if (r == -ENOENT) {
		refuse(c, 404, "{\"error\":\"not found\"}", NULL, has_body);
		return;
	}
	if (r < 0) {
		(void)http_route_allow(s->routes, s->n_routes, c->head.path, allow, sizeof(allow));
		refuse(c, 405, "{\"error\":\"method not allowed\"}", allow, has_body);
		return;
	}
	switch (http_body_admit(route, http_head_field(&c->head, "Content-Length"),
	                        http_head_field(&c->head, "Transfer-Encoding"))) {
	case 0:
		break;
	case 400:
		refuse(c, 400, "{\"error\":\"bad Content-Length\"}", NULL, true);
		return;
	default:
		refuse(c, 413, "{\"error\":\"request body too large\"}", NULL, true);
		return;
	}
	expect = http_head_expect(&c->head);
	if (expect < 0) {
		refuse(c, 417, "{\"error\":\"expectation not supported\"}", NULL, true);
		return;
	}
	r = http_query_parse(c->head.query, &c->args);
	if (r < 0) {
		if (r == -ENOMEM)
			c->state = CONN_DONE;
		else
			refuse(c, 400, "{\"error\":\"bad query string\"}", NULL, has_body);
		return;
	}
	c->route = route;
	buf_init(&c->body, route->max_body);
	c->body_since_ms = clock_mono_ms();
	c->state = CONN_BODY;
	/* only when the body is not on its way already */
	if (expect == 1 && has_body && c->in_len == c->head_len)
		send_continue(c);
}

/* Body bytes from the input: true when the body is complete (or refused). */
static bool take_body(struct conn *c)
{
	const char *p = c->in + c->head_len + c->pos;
	size_t avail = c->in_len - c->head_len - c->pos, used = 0;
	int r;

	switch (c->framing) {
	case HTTP_BODY_NONE:
		return true;
	case HTTP_BODY_LENGTH:
		used = avail < c->body_left ? avail : (size_t)c->body_left;
		if (used && buf_append(&c->body, p, used) < 0) {
			c->state = CONN_DONE; /* admitted within the cap: out of memory */
			return true;
		}
		c->pos += used;
		c->body_left -= used;
		return c->body_left == 0;
	case HTTP_BODY_CHUNKED:
		r = http_chunked_feed(&c->chunked, p, avail, &used, &c->body, c->route->max_body);
		c->pos += used;
		if (r == -413)
			refuse(c, 413, "{\"error\":\"request body too large\"}", NULL, true);
		else if (r == -ENOMEM)
			c->state = CONN_DONE;
		else if (r < 0)
			refuse(c, 400, "{\"error\":\"bad chunked body\"}", NULL, true);
		return r != 0;
	}
	return true;
}

/*
 * Whether parsing the head is worth it now: the parser reads the whole
 * head from its start, so a head dripped a byte at a time would cost the
 * square of its length. It runs on the first bytes (garbage is refused at
 * once), when the blank line that ends a head has come, and at the cap
 * (431); in between, only the new bytes are searched.
 */
static bool head_may_end(struct conn *c)
{
	size_t from = c->head_scan > 3 ? c->head_scan - 3 : 0;
	bool first = c->head_scan == 0;

	c->head_scan = c->in_len;
	return first || c->in_len >= HTTP_HEAD_MAX ||
	       memmem(c->in + from, c->in_len - from, "\r\n\r\n", 4);
}

/*
 * Serve what the input holds: true when the connection moved on (a head
 * parsed, a request answered or refused), false when it needs more bytes.
 */
static bool serve_input(struct conn *c)
{
	int r;

	if (c->state == CONN_HEAD) {
		if (c->in_len == 0 || !head_may_end(c))
			return false;
		r = http_head_parse(c->in, c->in_len, &c->head);
		if (r == 0)
			return false;
		if (r < 0) {
			refuse_parse(c, -r);
			return true;
		}
		c->head_len = (size_t)r;
		c->pos = 0;
		begin(c);
		return true;
	}
	/* CONN_BODY */
	if (!take_body(c))
		return false;
	if (c->state == CONN_BODY)
		dispatch(c);
	return true;
}

/* The parsed head's strings moved with in[] from old to in. */
static void rebase_head(struct conn *c, const char *old)
{
	struct http_head *h = &c->head;
#define REBASE(p) ((p) = (p) ? c->in + ((p)-old) : NULL)
	REBASE(h->method);
	REBASE(h->path);
	REBASE(h->query);
	for (size_t i = 0; i < h->n_fields; i++) {
		REBASE(h->fields[i].name);
		REBASE(h->fields[i].value);
	}
#undef REBASE
}

/* Room to read into: compact a body's consumed bytes away, or grow. */
static bool make_room(struct conn *c)
{
	size_t keep_from = c->head_len + c->pos;
	const char *old = c->in;
	char *p;

	if (c->in_len < c->in_cap)
		return true;
	if (c->state == CONN_BODY && c->pos) {
		/* the head stays (the handler reads it); the body's bytes were copied out */
		memmove(c->in + c->head_len, c->in + keep_from, c->in_len - keep_from);
		c->in_len -= c->pos;
		c->pos = 0;
		return true;
	}
	if (c->in_cap >= INPUT_MAX)
		return false;
	/* not realloc: the parsed head's strings are moved over from the old block */
	p = malloc(INPUT_MAX);
	if (!p)
		return false;
	memcpy(p, c->in, c->in_len);
	c->in = p;
	c->in_cap = INPUT_MAX;
	if (c->state == CONN_BODY)
		rebase_head(c, old);
	free((void *)old);
	return true;
}

/*
 * One recv: true when bytes (or the end of input) came and there is more
 * to do, false when the connection must wait for its next event.
 */
static bool read_more(struct conn *c)
{
	bool unix_socket = c->loop->server->is_unix;
	size_t room;
	ssize_t n;

	if (c->eof) {
		c->state = CONN_DONE; /* nothing more will come to complete it */
		return true;
	}
	if (!make_room(c)) {
		if (c->state == CONN_HEAD)
			refuse_parse(c, 431);
		else
			c->state = CONN_DONE;
		return true;
	}
	room = c->in_cap - c->in_len;
	for (;;) {
		n = recv(c->fd, c->in + c->in_len, room, 0);
		if (n >= 0 || errno != EINTR)
			break;
	}
	if (n > 0) {
		c->in_len += (size_t)n;
		c->active_ms = clock_mono_ms();
		/*
		 * TCP: a short read emptied the socket's queue, and bytes that come
		 * later bring a new event; a unix socket may split what was sent, and
		 * a peer that shut its side down brings no event for its end of input
		 */
		c->drained = (size_t)n < room && !unix_socket && !c->hup;
		return true;
	}
	c->drained = true;
	if (n == 0) {
		c->eof = true;
		return true;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return false;
	c->state = CONN_DONE;
	return true;
}

/* Send what waits: true when it is all out (the connection moved on), false to wait. */
static bool send_out(struct conn *c)
{
	struct http_out *o = &c->out;
	struct http_server *s = c->loop->server;

	while (o->off < o->len) {
		ssize_t n = send(c->fd, o->data + o->off, o->len - o->off, MSG_NOSIGNAL);

		if (n > 0) {
			o->off += (size_t)n;
			c->active_ms = clock_mono_ms();
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return false;
		c->state = CONN_DONE;
		return true;
	}
	if (o->close_after) {
		c->state = CONN_DONE;
		return true;
	}
	http_out_release(o);
	c->state = CONN_HEAD;
	c->head_since_ms = c->active_ms = clock_mono_ms();
	pthread_mutex_lock(&s->lock);
	watch_head(s, c, true, c->head_since_ms);
	pthread_mutex_unlock(&s->lock);
	return true;
}

void conn_run(struct conn *c)
{
	for (;;) {
		switch (c->state) {
		case CONN_DEFERRED:
			if (!defer_resume(c))
				return;
			break;
		case CONN_WRITING:
			if (!send_out(c))
				return;
			break;
		case CONN_DONE:
			conn_close(c, false);
			return;
		case CONN_HEAD:
		case CONN_BODY:
			if (serve_input(c))
				break;
			/* the socket was emptied: its next bytes bring an event */
			if (c->drained && !c->eof)
				return;
			if (!read_more(c))
				return;
			break;
		}
	}
}

void conn_tick(struct conn *c, int64_t now)
{
	struct http_server *s = c->loop->server;
	bool late = false;

	switch (c->state) {
	case CONN_HEAD:
		/* on keep-alive the head is due from the previous answer: idle ones end too */
		late = now - c->head_since_ms >= s->header_timeout_ms ||
		       now - c->active_ms >= s->idle_timeout_ms;
		break;
	case CONN_BODY:
		late = now - c->body_since_ms >= s->body_timeout_ms ||
		       now - c->active_ms >= s->idle_timeout_ms;
		break;
	case CONN_WRITING:
		late = now - c->active_ms >= s->idle_timeout_ms; /* a peer that stopped reading */
		break;
	case CONN_DEFERRED:
		if (defer_expire(c, now))
			conn_run(c);
		return;
	case CONN_DONE:
		break;
	}
	if (late)
		c->state = CONN_DONE;
	if (c->state == CONN_DONE)
		conn_close(c, false);
}

void conn_close(struct conn *c, bool stopping)
{
	struct loop *l = c->loop;
	struct http_server *s = l->server;
	bool wake = false;

	if (c->deferred)
		defer_end(c, stopping);
	pthread_mutex_lock(&l->lock);
	if (c->in_handback) {
		struct conn **pp = &l->handback;

		while (*pp && *pp != c)
			pp = &(*pp)->hb_next;
		if (*pp)
			*pp = c->hb_next;
		c->in_handback = false;
	}
	pthread_mutex_unlock(&l->lock);
	/* off the server's list first: nobody may shut a reused descriptor down */
	pthread_mutex_lock(&s->lock);
	watch_remove(s, c);
	l->n_assigned--;
	if (s->accept_paused && s->n_conns < s->max_conns) {
		s->accept_paused = false;
		wake = true;
	}
	pthread_mutex_unlock(&s->lock);
	if (wake)
		loops_wake(s);
	(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->lprev)
		c->lprev->lnext = c->lnext;
	else
		l->conns = c->lnext;
	if (c->lnext)
		c->lnext->lprev = c->lprev;
	http_out_release(&c->out);
	buf_release(&c->body);
	http_query_release(&c->args);
	free(c->in);
	free(c);
}
