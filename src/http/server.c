/*
 * The HTTP server: our own listen sockets (http_socket.c) served by a few
 * event loops, one thread each. Every loop waits on the listen socket (the
 * kernel wakes one of them for a new connection) and on the connections
 * it serves: each accepted socket goes to the loop with the fewest, which
 * alone reads, answers and closes it (http_conn.c);
 * each loop also keeps its connections' deadlines on a tick, and the
 * server's lock keeps the limits over all of them (http_watch.c). A
 * handler runs on its connection's loop; one that must wait defers its
 * request (http_defer.c), and the answer goes out from whoever gives it.
 * Nothing in src/http may log above debug, echo request data into
 * messages, or let a peer make it buffer more than a route allows.
 */
#include "util/common.h"
#include "http/http_internal.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strutil.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>

/* ---- loops -------------------------------------------------------------- */

#define EVENTS_MAX 64

void loops_wake(struct http_server *s)
{
	uint64_t one = 1;

	for (unsigned i = 0; i < s->n_loops; i++)
		(void)!write(s->loops[i].wakefd, &one, sizeof(one));
}

static void listen_on(struct loop *l, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE,
	                         .data.ptr = &l->server->listen_fd};

	if (on == l->listening)
		return;
	if (on)
		l->listening = epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->server->listen_fd, &ev) == 0;
	else if (epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->server->listen_fd, NULL) == 0)
		l->listening = false;
}

/* The loop with the fewest connections, l itself on a tie. Under s->lock. */
static struct loop *least_busy(struct http_server *s, struct loop *l)
{
	struct loop *best = l;

	for (unsigned i = 0; i < s->n_loops; i++)
		if (s->loops[i].n_assigned < best->n_assigned)
			best = &s->loops[i];
	return best;
}

/*
 * Give an accepted socket to loop to, which serves it from its next
 * wake-up; false when out of memory (the caller keeps it).
 */
static bool hand_over(struct loop *to, int fd, const struct sockaddr_storage *ss)
{
	struct incoming *in = malloc(sizeof(*in));
	uint64_t one = 1;

	if (!in)
		return false;
	in->fd = fd;
	in->addr = *ss;
	pthread_mutex_lock(&to->lock);
	in->next = to->incoming;
	to->incoming = in;
	pthread_mutex_unlock(&to->lock);
	(void)!write(to->wakefd, &one, sizeof(one));
	return true;
}

/* Serve on l an accepted socket given to it. */
static void serve(struct loop *l, int fd, const struct sockaddr_storage *ss)
{
	struct conn *c = conn_new(l, fd, ss); /* takes the slot over */

	if (c)
		conn_run(c);
	else
		close(fd); /* over max_per_ip, or out of memory */
}

/*
 * Accept what waits while there is room. Full: this loop stops listening
 * until a connection closes (conn_close wakes it), and the rest wait in
 * the kernel's queue. Out of descriptors: it listens again on a later tick.
 *
 * The kernel wakes one loop for the listen socket, and that loop takes all
 * that waits: a burst of connections (a client that opens them side by
 * side) would all land on it, and one thread would read, verify and parse
 * for all of them while the others idle. So each socket goes to the loop
 * with the fewest connections, handed over when that is another.
 */
static void accept_all(struct loop *l, int64_t *retry_at)
{
	struct http_server *s = l->server;

	for (;;) {
		struct sockaddr_storage ss = {0};
		socklen_t len = sizeof(ss);
		struct loop *to = NULL;
		bool full;
		int fd;

		/* the slot first: loops that accept side by side never overshoot the limit */
		pthread_mutex_lock(&s->lock);
		full = s->n_conns + s->n_accepting >= s->max_conns;
		if (full) {
			s->accept_paused = true;
		} else {
			s->n_accepting++;
		}
		pthread_mutex_unlock(&s->lock);
		if (full) {
			listen_on(l, false);
			return;
		}
		fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &len,
		             SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			pthread_mutex_lock(&s->lock);
			s->n_accepting--;
			pthread_mutex_unlock(&s->lock);
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				log_debug("http: accept: %s", strerror(errno));
				listen_on(l, false);
				*retry_at = clock_mono_ms() + TICK_MS;
			}
			return;
		}
		/*
		 * the loop once there is a socket: a loop that counted one in
		 * before its accept came back empty (another loop took it) would
		 * have turned a third loop's choice away from the one it took
		 */
		pthread_mutex_lock(&s->lock);
		to = least_busy(s, l);
		to->n_assigned++;
		pthread_mutex_unlock(&s->lock);
		if (to != l && !hand_over(to, fd, &ss)) {
			pthread_mutex_lock(&s->lock);
			to->n_assigned--;
			l->n_assigned++;
			pthread_mutex_unlock(&s->lock);
			to = l;
		}
		if (to == l)
			serve(l, fd, &ss);
	}
}

/* The sockets other loops accepted for l. */
static void take_incoming(struct loop *l)
{
	struct incoming *list;

	pthread_mutex_lock(&l->lock);
	list = l->incoming;
	l->incoming = NULL;
	pthread_mutex_unlock(&l->lock);
	while (list) {
		struct incoming *in = list;

		list = in->next;
		serve(l, in->fd, &in->addr);
		free(in);
	}
}

/* Connections an answerer gave back, now that no event of this batch can name them. */
static void take_handbacks(struct loop *l)
{
	struct conn *list;

	pthread_mutex_lock(&l->lock);
	list = l->handback;
	l->handback = NULL;
	for (struct conn *c = list; c; c = c->hb_next)
		c->in_handback = false;
	pthread_mutex_unlock(&l->lock);
	while (list) {
		struct conn *next = list->hb_next;

		conn_run(list);
		list = next;
	}
}

static void tick(struct loop *l, int64_t now)
{
	struct http_server *s = l->server;

	for (struct conn *c = l->conns, *next; c; c = next) {
		next = c->lnext;
		conn_tick(c, now);
	}
	pthread_mutex_lock(&s->lock);
	keep_reserve(s, now);
	pthread_mutex_unlock(&s->lock);
}

static void *loop_main(void *arg)
{
	struct loop *l = arg;
	struct http_server *s = l->server;
	struct epoll_event ev[EVENTS_MAX];
	int64_t last_tick = clock_mono_ms(), retry_at = 0;
	bool stopping = false;
	char name[16];

	/* what top -H and perf show for it */
	snprintf(name, sizeof(name), "http-loop-%u", (unsigned)(l - s->loops) % 100);
	pthread_setname_np(pthread_self(), name);
	while (!stopping) {
		bool woken = false, accept = false;
		int n = epoll_wait(l->epfd, ev, EVENTS_MAX, TICK_MS);
		int64_t now;

		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == l) {
				uint64_t v;
				(void)!read(l->wakefd, &v, sizeof(v));
				woken = true;
			} else if (ev[i].data.ptr == &s->listen_fd) {
				accept = true;
			} else {
				struct conn *c = ev[i].data.ptr;

				/* new input, or its end: read again */
				if (ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
					c->drained = false;
				if (ev[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
					c->hup = true;
				conn_run(c);
			}
		}
		/* after the batch: these may close a connection an event above named */
		if (woken) {
			take_incoming(l);
			take_handbacks(l);
			pthread_mutex_lock(&s->lock);
			stopping = s->stopping;
			if (!s->accept_paused && !stopping)
				listen_on(l, true);
			pthread_mutex_unlock(&s->lock);
		}
		now = clock_mono_ms();
		if (!l->listening && retry_at && now >= retry_at) {
			retry_at = 0;
			listen_on(l, true);
		}
		if (accept && !stopping)
			accept_all(l, &retry_at);
		if (now - last_tick >= TICK_MS) {
			last_tick = now;
			tick(l, now);
		}
	}
	while (l->conns)
		conn_close(l->conns, true);
	return NULL;
}

/* ---- lifetime ----------------------------------------------------------- */

/* ---- lifetime ----------------------------------------------------------- */

static int server_new(const struct http_route *routes, size_t n_routes, void *ctx,
                      struct http_server **ret, struct err *e)
{
	struct http_server *s;

	if (n_routes && !routes)
		return err_set(e, -EINVAL, "http: route table is missing");
	for (size_t i = 0; i < n_routes; i++) {
		const struct http_route *rt = &routes[i];
		if (!rt->method || !http_is_token(rt->method) || !rt->path || rt->path[0] != '/' ||
		    !rt->fn)
			return err_set(e, -EINVAL, "http: route %zu is invalid", i);
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, -ENOMEM, "http: out of memory");
	if (n_routes) {
		s->routes = calloc(n_routes, sizeof(*s->routes));
		if (!s->routes) {
			free(s);
			return err_set(e, -ENOMEM, "http: out of memory");
		}
		memcpy(s->routes, routes, n_routes * sizeof(*routes));
	}
	s->n_routes = n_routes;
	s->ctx = ctx;
	s->listen_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	*ret = s;
	return 0;
}

static void loops_free(struct http_server *s)
{
	for (unsigned i = 0; i < s->n_loops; i++) {
		struct loop *l = &s->loops[i];

		if (l->epfd >= 0)
			close(l->epfd);
		if (l->wakefd >= 0)
			close(l->wakefd);
		/* handed over after this loop ended (the server is stopping) */
		while (l->incoming) {
			struct incoming *in = l->incoming;

			l->incoming = in->next;
			close(in->fd);
			free(in);
		}
		pthread_mutex_destroy(&l->lock);
	}
	free(s->loops);
	s->loops = NULL;
	s->n_loops = 0;
}

static void server_free(struct http_server *s)
{
	if (!s)
		return;
	loops_free(s);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	pthread_mutex_destroy(&s->lock);
	free(s->routes);
	free(s->unix_path);
	free(s);
}

static unsigned opt_or(unsigned v, unsigned dflt)
{
	return v ? v : dflt;
}

static void loops_stop(struct http_server *s)
{
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_mutex_unlock(&s->lock);
	loops_wake(s);
	for (unsigned i = 0; i < s->n_loops; i++)
		if (s->loops[i].started)
			pthread_join(s->loops[i].thread, NULL);
}

static int loops_start(struct http_server *s, unsigned n, struct err *e)
{
	s->loops = calloc(n, sizeof(*s->loops));
	if (!s->loops)
		return err_set(e, -ENOMEM, "http: out of memory");
	for (unsigned i = 0; i < n; i++) {
		struct loop *l = &s->loops[i];
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};

		l->server = s;
		l->epfd = epoll_create1(EPOLL_CLOEXEC);
		l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		pthread_mutex_init(&l->lock, NULL);
		s->n_loops++;
		if (l->epfd < 0 || l->wakefd < 0 ||
		    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) < 0)
			return err_set(e, -errno, "http: cannot start the server: %s",
			               strerror(errno));
		listen_on(l, true);
		if (!l->listening)
			return err_set(e, -errno, "http: cannot start the server: %s",
			               strerror(errno));
	}
	for (unsigned i = 0; i < n; i++) {
		int r = pthread_create(&s->loops[i].thread, NULL, loop_main, &s->loops[i]);

		if (r) {
			loops_stop(s);
			return err_set(e, -r, "http: cannot start the server: %s", strerror(r));
		}
		s->loops[i].started = true;
	}
	return 0;
}

/* Serve fd (ours from now on: closed on stop or failure). */
static int server_run(struct http_server *s, int fd, const struct http_server_options *opts,
                      struct err *e)
{
	unsigned threads, reserve;

	s->listen_fd = fd;
	threads = opt_or(opts ? opts->threads : 0, DEFAULT_THREADS);
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	s->max_conns = opt_or(opts ? opts->max_connections : 0, DEFAULT_MAX_CONNECTIONS);
	if (s->max_conns < threads)
		threads = s->max_conns;
	/* The per-IP limit is meaningless on a unix socket: every peer is "local". */
	s->max_per_ip = s->is_unix ? 0 : opt_or(opts ? opts->max_per_ip : 0, DEFAULT_MAX_PER_IP);
	if (s->max_per_ip == HTTP_NO_LIMIT)
		s->max_per_ip = 0;
	s->idle_timeout_ms =
	        (int64_t)opt_or(opts ? opts->idle_timeout_s : 0, DEFAULT_IDLE_TIMEOUT_S) * 1000;
	s->body_timeout_ms =
	        (int64_t)opt_or(opts ? opts->body_timeout_s : 0, DEFAULT_BODY_TIMEOUT_S) * 1000;
	s->header_timeout_ms =
	        (int64_t)opt_or(opts ? opts->header_timeout_s : 0, DEFAULT_HEADER_TIMEOUT_S) * 1000;
	reserve = s->max_conns / 4 ? s->max_conns / 4 : 1;
	s->max_held = s->max_conns > reserve ? s->max_conns - reserve : 1;
	return loops_start(s, threads, e);
}

int http_server_start_tcp(const char *addr, const struct http_route *routes, size_t n_routes,
                          void *ctx, struct http_server **ret, struct err *e)
{
	return http_server_start_tcp_opts(addr, routes, n_routes, ctx, NULL, ret, e);
}

int http_server_start_tcp_opts(const char *addr, const struct http_route *routes, size_t n_routes,
                               void *ctx, const struct http_server_options *opts,
                               struct http_server **ret, struct err *e)
{
	struct http_server *s = NULL;
	int fd = -1, port = 0, r;

	r = server_new(routes, n_routes, ctx, &s, e);
	if (r < 0)
		return r;
	r = http_tcp_listen(addr, &fd, &port, e);
	if (r < 0)
		goto out;
	s->port = port;
	r = server_run(s, fd, opts, e);
	if (r < 0)
		goto out;
	*ret = s;
	s = NULL;
out:
	server_free(s);
	return r;
}

int http_server_start_unix(const char *path, mode_t mode, uid_t allowed_uid,
                           const struct http_route *routes, size_t n_routes, void *ctx,
                           struct http_server **ret, struct err *e)
{
	return http_server_start_unix_opts(path, mode, allowed_uid, routes, n_routes, ctx, NULL,
	                                   ret, e);
}

int http_server_start_unix_opts(const char *path, mode_t mode, uid_t allowed_uid,
                                const struct http_route *routes, size_t n_routes, void *ctx,
                                const struct http_server_options *opts, struct http_server **ret,
                                struct err *e)
{
	struct http_server *s = NULL;
	int fd = -1, r;

	r = server_new(routes, n_routes, ctx, &s, e);
	if (r < 0)
		return r;
	s->is_unix = true;
	s->allowed_uid = allowed_uid;
	s->unix_path = str_dup(path);
	if (path && !s->unix_path) {
		r = err_set(e, -ENOMEM, "http: out of memory");
		goto out;
	}
	r = http_unix_listen(path, mode, &fd, &s->sock_dev, &s->sock_ino, e);
	if (r < 0)
		goto out;
	r = server_run(s, fd, opts, e);
	if (r < 0) {
		(void)unlink(path);
		goto out;
	}
	*ret = s;
	s = NULL;
out:
	server_free(s);
	return r;
}

int http_server_port(const struct http_server *s)
{
	return s ? s->port : 0;
}

void http_server_stop(struct http_server *s)
{
	struct stat st;

	if (!s)
		return;
	/* each loop closes its connections, a deferred request's with a 503 */
	loops_stop(s);
	/* Only our own socket: a newer server may already have taken the path. */
	if (s->unix_path && lstat(s->unix_path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == s->sock_dev && st.st_ino == s->sock_ino)
		(void)unlink(s->unix_path);
	server_free(s);
}
