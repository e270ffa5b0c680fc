/*
 * What the files of src/http share, private to the folder: the server and
 * per-request state, the limits, the socket helpers the server starts from,
 * the connection watch (deadlines, reserve) and deferred requests. Nothing
 * outside src/http may include this.
 */
#ifndef RUNNERD_HTTP_INTERNAL_H
#define RUNNERD_HTTP_INTERNAL_H

#include "http/server.h"
#include "util/buf.h"

#include <microhttpd.h>
#include <pthread.h>

#define DEFAULT_THREADS          4
#define DEFAULT_IDLE_TIMEOUT_S   10
#define DEFAULT_HEADER_TIMEOUT_S 5
#define DEFAULT_BODY_TIMEOUT_S   60
#define DEFAULT_MAX_CONNECTIONS  64
#define DEFAULT_MAX_PER_IP       16
#define MAX_THREADS              64
/* Request line + headers must fit here (libmicrohttpd answers 431/414 otherwise). */
#define CONNECTION_MEMORY (32u * 1024)
/* Deep, so a burst waits in the kernel's queue instead of being refused
 * (listen() caps it at net.core.somaxconn). */
#define LISTEN_BACKLOG 4096
/* The watchdog looks at deadlines at least this often. */
#define WATCH_TICK_MS 250
/* A head younger than this is never closed to free a slot: its client may
 * have connected a moment ago and be about to send it. */
#define EVICT_GRACE_MS 100

#define JSON_TYPE "application/json"
#define TEXT_TYPE "text/plain; charset=utf-8"

struct conn_watch;
struct http_deferred;

struct http_server {
	struct MHD_Daemon *daemon;
	struct http_route *routes;
	size_t n_routes;
	void *ctx;
	unsigned body_timeout_s;
	int port;
	bool is_unix;
	uid_t allowed_uid;
	char *unix_path; /* removed on stop if it is still our socket */
	dev_t sock_dev;
	ino_t sock_ino;

	/* deadlines and slots (http_watch.c, http_defer.c) */
	int64_t header_timeout_ms;
	unsigned max_held;    /* heads in progress + deferred requests, at most */
	pthread_mutex_t lock; /* guards what follows, and each watch */
	pthread_cond_t wake;  /* to the watchdog: stop (CLOCK_MONOTONIC) */
	pthread_t watchdog;
	bool watchdog_running;
	bool watchdog_stop;
	bool stopping; /* no new deferral; every deferred one is answered */
	struct conn_watch *conns;
	unsigned n_heads; /* connections whose request head is still due */
	struct http_deferred *deferred;
	unsigned n_deferred;
};

/* Per request, from the URI callback to the completion callback. */
struct request_state {
	struct http_server *server;
	struct MHD_Connection *conn;
	const struct http_route *route; /* NULL until the request is routed */
	char *query;                    /* raw */
	struct http_query args;         /* parsed once routed */
	struct buf body;
	struct timespec started_at;
	bool started;
	bool peer_uid_known;
	uid_t peer_uid;
	char peer[64];
	struct http_deferred *deferred; /* set aside by its handler */
};

/* An HTTP token (a header name, a method): printable, no separators. */
bool http_is_token(const char *s);
/*
 * libmicrohttpd's copy of resp: *ret (the caller destroys it) and the status
 * to send (a status outside 100..599 becomes a 500). -ENOMEM.
 */
int http_response_to_mhd(const struct http_response *resp, struct MHD_Response **ret,
                         unsigned *ret_status);
/* A small JSON answer of the server's own (errors, refusals); NULL when out of memory. */
struct MHD_Response *http_json_response(const char *json, const char *allow);
/*
 * Queue r on conn (from the connection's own thread) and let go of our
 * reference; MHD_NO for a NULL r (out of memory: the connection closes).
 */
enum MHD_Result http_queue(struct MHD_Connection *conn, unsigned status, struct MHD_Response *r);

/*
 * The watch on every connection (http_watch.c). on_connection is
 * libmicrohttpd's connection callback: it starts and ends a connection's
 * watch, and on a new one closes the oldest unfinished heads that would cut
 * into the reserve. head_done: the request's head is complete (false for
 * a connection that could not be watched: refuse it).
 * request_done: its answer went out; on keep-alive the next head is due.
 * start/stop run the watchdog thread, which also ends deferrals whose time
 * is up.
 */
void http_watch_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode code);
bool http_watch_head_done(struct http_server *s, struct MHD_Connection *conn);
void http_watch_request_done(struct http_server *s, struct MHD_Connection *conn);
int http_watch_start(struct http_server *s);
void http_watch_stop(struct http_server *s);

/*
 * Deferred requests (http_defer.c). settle: the handler of rs returned
 * after deferring; resp is its timeout answer. The connection is suspended,
 * or answered at once when an answer came already. resumed: the call
 * libmicrohttpd makes after a resume: queue the answer. completed: the
 * request ended; the server lets go of its deferral. expire (under s->lock,
 * from the watchdog): answer those whose time is up; returns the next
 * deadline (INT64_MAX: none). stop: refuse new deferrals and answer every
 * one with a 503, so none is suspended when libmicrohttpd stops
 * (it aborts otherwise). release_all: after it stopped, what is left.
 */
enum MHD_Result http_defer_settle(struct request_state *rs, const struct http_response *resp);
enum MHD_Result http_defer_resumed(struct request_state *rs);
void http_defer_completed(struct http_server *s, struct request_state *rs);
int64_t http_defer_expire(struct http_server *s, int64_t now_ms);
void http_defer_stop(struct http_server *s);
void http_defer_release_all(struct http_server *s);

/*
 * Listen on a TCP address ("127.0.0.1:8080", "[::1]:0"): *ret_fd, and the
 * port bound (for port 0).
 */
int http_tcp_listen(const char *addr, int *ret_fd, int *ret_port, struct err *e);
/*
 * Listen on a unix socket at path with mode (a stale socket of a dead
 * server is replaced; a live one is -EADDRINUSE): *ret_fd, and the socket
 * file's identity, so stop removes only our own.
 */
int http_unix_listen(const char *path, mode_t mode, int *ret_fd, dev_t *ret_dev, ino_t *ret_ino,
                     struct err *e);

#endif
