/*
 * The HTTP server: our own listen sockets (http_socket.c) handed to
 * libmicrohttpd, which runs a small pool of epoll threads with connection
 * limits and an idle timeout; the watch on each connection (http_watch.c)
 * adds the header deadline and the reserve it lacks. Each request is routed
 * before its body is read (http_route.c), its body is capped while it
 * arrives, and only a complete, in-limit request reaches a handler
 * (responses and request accessors are in http_message.c); a handler that
 * must wait defers its request (http_defer.c) and frees its thread. Nothing
 * in src/http may log above debug, echo request data into messages, or let
 * a peer make it buffer more than a route allows.
 */
#include "util/common.h"
#include "http/http_internal.h"
#include "util/log.h"
#include "util/strutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* ---- dispatch ----------------------------------------------------------- */

/* Queue a small response built by the server itself (errors, refusals). */
static enum MHD_Result queue_json(struct MHD_Connection *conn, unsigned status, const char *json,
                                  const char *allow)
{
	return http_queue(conn, status, http_json_response(json, allow));
}

static enum MHD_Result queue_not_allowed(struct http_server *s, struct MHD_Connection *conn,
                                         const char *path)
{
	char allow[256];

	(void)http_route_allow(s->routes, s->n_routes, path, allow, sizeof(allow));
	return queue_json(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "{\"error\":\"method not allowed\"}",
	                  allow);
}

static int connection_fd(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	return ci ? ci->connect_fd : -1;
}

static int peer_uid(struct MHD_Connection *conn, uid_t *ret)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = connection_fd(conn);

	if (fd < 0)
		return -EBADF;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (len != sizeof(cred))
		return -EIO;
	*ret = cred.uid;
	return 0;
}

static void peer_name(struct MHD_Connection *conn, bool is_unix, char *out, size_t cap)
{
	const union MHD_ConnectionInfo *ci;
	char host[INET6_ADDRSTRLEN];

	str_copy(out, is_unix ? "unix" : "?", cap);
	if (is_unix)
		return;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr)
		return;
	if (ci->client_addr->sa_family == AF_INET) {
		const struct sockaddr_in *a =
		        (const struct sockaddr_in *)(const void *)ci->client_addr;
		if (inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host)))
			snprintf(out, cap, "%s:%u", host, (unsigned)ntohs(a->sin_port));
	} else if (ci->client_addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a =
		        (const struct sockaddr_in6 *)(const void *)ci->client_addr;
		if (inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host)))
			snprintf(out, cap, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
	}
}

static struct request_state *request_state_new(const char *uri)
{
	struct request_state *rs = calloc(1, sizeof(*rs));
	const char *q;

	if (!rs)
		return NULL;
	buf_init(&rs->body, 0);
	q = uri ? strchr(uri, '?') : NULL;
	if (q) {
		rs->query = strdup(q + 1);
		if (!rs->query) {
			free(rs);
			return NULL;
		}
	}
	return rs;
}

static void request_state_free(struct request_state *rs)
{
	if (!rs)
		return;
	buf_release(&rs->body);
	http_query_release(&rs->args);
	free(rs->query);
	free(rs);
}

/* libmicrohttpd calls this once per request, with the raw request target. */
static void *server_on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct request_state *rs = request_state_new(uri);

	if (rs)
		rs->server = cls;
	return rs;
}

static void server_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                                enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct request_state *rs = *con_cls;

	if (rs)
		http_defer_completed(s, rs);
	request_state_free(rs);
	*con_cls = NULL;
	http_watch_request_done(s, conn);
}

__attribute__((format(printf, 2, 0))) static void server_on_log(void *cls, const char *fmt,
                                                                va_list ap)
{
	char line[256];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_debug("http: %s", line);
}

/*
 * First call for a request: headers are in, no body byte has been read.
 * Everything that can be refused without the body is refused here, so a
 * refused client never gets "100 Continue" and its body is never buffered.
 */
static enum MHD_Result request_begin(struct http_server *s, struct request_state *rs,
                                     struct MHD_Connection *conn, const char *path,
                                     const char *method)
{
	const struct http_route *route = NULL;
	int r;

	rs->conn = conn;
	clock_gettime(CLOCK_MONOTONIC, &rs->started_at);
	/* an unwatched connection would escape the deadlines */
	if (!http_watch_head_done(s, conn))
		return MHD_NO;
	peer_name(conn, s->is_unix, rs->peer, sizeof(rs->peer));

	if (s->is_unix) {
		/* Fail closed: a peer we cannot identify is a peer we refuse. */
		if (peer_uid(conn, &rs->peer_uid) < 0 ||
		    (rs->peer_uid != s->allowed_uid && rs->peer_uid != 0))
			return queue_json(conn, MHD_HTTP_FORBIDDEN, "{\"error\":\"forbidden\"}",
			                  NULL);
		rs->peer_uid_known = true;
	}

	r = http_route_find(s->routes, s->n_routes, method, path, &route);
	if (r == -ENOENT)
		return queue_json(conn, MHD_HTTP_NOT_FOUND, "{\"error\":\"not found\"}", NULL);
	if (r < 0)
		return queue_not_allowed(s, conn, path);

	switch (http_body_admit(
	        route,
	        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH),
	        MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                    MHD_HTTP_HEADER_TRANSFER_ENCODING))) {
	case 0:
		break;
	case 400:
		return queue_json(conn, MHD_HTTP_BAD_REQUEST, "{\"error\":\"bad Content-Length\"}",
		                  NULL);
	default:
		return queue_json(conn, MHD_HTTP_CONTENT_TOO_LARGE,
		                  "{\"error\":\"request body too large\"}", NULL);
	}
	r = http_query_parse(rs->query, &rs->args);
	if (r == -ENOMEM)
		return MHD_NO;
	if (r < 0)
		return queue_json(conn, MHD_HTTP_BAD_REQUEST, "{\"error\":\"bad query string\"}",
		                  NULL);

	rs->route = route;
	buf_init(&rs->body, route->max_body);
	return MHD_YES;
}

/*
 * A chunked body outgrew its cap. libmicrohttpd (0.9.75) only lets a
 * response be queued before the body or after all of it, and waiting for
 * the rest would mean reading what we refuse. So the 413 is written straight
 * to the socket, which is safe here: nothing of this request's response has
 * been sent and the previous response on the connection is complete. The
 * caller then returns MHD_NO and libmicrohttpd closes the connection.
 */
static void refuse_body_raw(struct MHD_Connection *conn)
{
	static const char body[] = "{\"error\":\"request body too large\"}";
	char msg[256];
	int fd = connection_fd(conn);
	int n;

	if (fd < 0)
		return;
	n = snprintf(msg, sizeof(msg),
	             "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\n"
	             "Content-Type: " JSON_TYPE "\r\nContent-Length: %zu\r\n\r\n%s",
	             sizeof(body) - 1, body);
	if (n > 0 && (size_t)n < sizeof(msg))
		(void)send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)shutdown(fd, SHUT_WR);
}

static bool body_overdue(const struct http_server *s, const struct request_state *rs)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec - rs->started_at.tv_sec > (time_t)s->body_timeout_s;
}

static enum MHD_Result request_body(struct http_server *s, struct request_state *rs,
                                    struct MHD_Connection *conn, const char *data, size_t *size)
{
	int r;

	/* The idle timeout resets on every byte; this bounds a trickled body. */
	if (!rs->route || body_overdue(s, rs))
		return MHD_NO;
	r = buf_append(&rs->body, data, *size);
	if (r == -E2BIG) {
		refuse_body_raw(conn);
		return MHD_NO;
	}
	if (r < 0)
		return MHD_NO;
	*size = 0;
	return MHD_YES;
}

static enum MHD_Result request_dispatch(struct http_server *s, struct request_state *rs,
                                        const char *path, const char *method)
{
	struct http_request req = {
	        .method = method,
	        .path = path,
	        .query = rs->query,
	        .body = buf_str(&rs->body),
	        .body_len = rs->body.len,
	        .peer_uid = rs->peer_uid,
	        .peer_uid_known = rs->peer_uid_known,
	        .impl = rs,
	};
	struct http_response resp;
	struct MHD_Response *r = NULL;
	unsigned status = 0;
	enum MHD_Result ret = MHD_NO;

	str_copy(req.peer, rs->peer, sizeof(req.peer));
	http_response_init(&resp);
	rs->route->fn(s->ctx, &req, &resp);
	if (rs->deferred)
		ret = http_defer_settle(rs, &resp);
	else if (http_response_to_mhd(&resp, &r, &status) == 0)
		ret = http_queue(rs->conn, status, r);
	http_response_release(&resp);
	return ret;
}

static enum MHD_Result server_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                         const char *method, const char *version,
                                         const char *upload_data, size_t *upload_data_size,
                                         void **con_cls)
{
	struct http_server *s = cls;
	struct request_state *rs = *con_cls;

	if (!rs) {
		rs = request_state_new(NULL);
		if (!rs)
			return MHD_NO;
		*con_cls = rs;
	}
	if (!rs->started) {
		rs->server = s;
		rs->started = true;
		return request_begin(s, rs, conn, url, method);
	}
	if (rs->deferred) /* set aside, and now resumed with its answer */
		return http_defer_resumed(rs);
	if (*upload_data_size)
		return request_body(s, rs, conn, upload_data, upload_data_size);
	if (!rs->route)
		return MHD_NO;
	return request_dispatch(s, rs, url, method);
}

/* ---- lifetime ----------------------------------------------------------- */

static int server_new(const struct http_route *routes, size_t n_routes, void *ctx,
                      struct http_server **ret, struct err *e)
{
	struct http_server *s;
	pthread_condattr_t ca;

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
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the watchdog's deadlines */
	pthread_cond_init(&s->wake, &ca);
	pthread_condattr_destroy(&ca);
	*ret = s;
	return 0;
}

static void server_free(struct http_server *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	free(s->routes);
	free(s->unix_path);
	free(s);
}

static unsigned opt_or(unsigned v, unsigned dflt)
{
	return v ? v : dflt;
}

/*
 * Hand fd to libmicrohttpd. From this call on fd is libmicrohttpd's: it
 * closes it on stop, and on most failure paths; we would rather leak it on
 * the others than risk closing a descriptor number another thread reused.
 * The watchdog starts first: a request may be deferred as soon as the
 * daemon runs, and only the watchdog ends a deferral that nobody answers.
 */
static int server_run(struct http_server *s, int fd, const struct http_server_options *opts,
                      struct err *e)
{
	unsigned threads, max_conn, per_ip, reserve;
	int r;

	threads = opt_or(opts ? opts->threads : 0, DEFAULT_THREADS);
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	max_conn = opt_or(opts ? opts->max_connections : 0, DEFAULT_MAX_CONNECTIONS);
	/* libmicrohttpd splits the limit between threads: each needs one. */
	if (max_conn < threads)
		threads = max_conn;
	/* The per-IP limit is meaningless on a unix socket: every peer is "local". */
	per_ip = s->is_unix ? 0 : opt_or(opts ? opts->max_per_ip : 0, DEFAULT_MAX_PER_IP);
	if (per_ip == HTTP_NO_LIMIT)
		per_ip = 0; /* libmicrohttpd's "none" */
	s->body_timeout_s = opt_or(opts ? opts->body_timeout_s : 0, DEFAULT_BODY_TIMEOUT_S);
	s->header_timeout_ms =
	        (int64_t)opt_or(opts ? opts->header_timeout_s : 0, DEFAULT_HEADER_TIMEOUT_S) * 1000;
	reserve = max_conn / 4 ? max_conn / 4 : 1;
	s->max_held = max_conn > reserve ? max_conn - reserve : 1;

	r = http_watch_start(s);
	if (r < 0)
		return err_set(e, r, "http: cannot start the watchdog: %s", strerror(-r));
	s->daemon = MHD_start_daemon(
	        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
	                MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
	        0, NULL, NULL, server_on_request, s,
	        /* first, so even start-up messages stay at debug */
	        MHD_OPTION_EXTERNAL_LOGGER, server_on_log, (void *)NULL, MHD_OPTION_LISTEN_SOCKET,
	        fd, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT, max_conn,
	        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
	        opt_or(opts ? opts->idle_timeout_s : 0, DEFAULT_IDLE_TIMEOUT_S),
	        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
	        MHD_OPTION_NOTIFY_CONNECTION, http_watch_on_connection, (void *)s,
	        MHD_OPTION_URI_LOG_CALLBACK, server_on_uri, (void *)s, MHD_OPTION_NOTIFY_COMPLETED,
	        server_on_completed, (void *)s, MHD_OPTION_END);
	if (!s->daemon) {
		http_watch_stop(s);
		return err_set(e, -EIO, "http: cannot start the server");
	}
	return 0;
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
	http_watch_stop(s);
	/* libmicrohttpd aborts when stopped with a connection suspended */
	http_defer_stop(s);
	if (s->daemon)
		MHD_stop_daemon(s->daemon);
	http_defer_release_all(s);
	/* Only our own socket: a newer server may already have taken the path. */
	if (s->unix_path && lstat(s->unix_path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == s->sock_dev && st.st_ino == s->sock_ino)
		(void)unlink(s->unix_path);
	server_free(s);
}
