/*
 * What the files of src/http share, private to the folder: the server and
 * per-request state, the limits, and the socket helpers the server starts
 * from. Nothing outside src/http may include this.
 */
#ifndef RUNNERD_HTTP_INTERNAL_H
#define RUNNERD_HTTP_INTERNAL_H

#include "http/server.h"
#include "util/buf.h"

#include <microhttpd.h>

#define DEFAULT_THREADS         4
#define DEFAULT_IDLE_TIMEOUT_S  10
#define DEFAULT_BODY_TIMEOUT_S  60
#define DEFAULT_MAX_CONNECTIONS 64
#define DEFAULT_MAX_PER_IP      16
#define MAX_THREADS             64
/* Request line + headers must fit here (libmicrohttpd answers 431/414 otherwise). */
#define CONNECTION_MEMORY (32u * 1024)
#define LISTEN_BACKLOG    128

#define JSON_TYPE "application/json"
#define TEXT_TYPE "text/plain; charset=utf-8"

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
};

/* Per request, from the URI callback to the completion callback. */
struct request_state {
	struct MHD_Connection *conn;
	const struct http_route *route; /* NULL until the request is routed */
	char *query;
	struct buf body;
	struct timespec started_at;
	bool started;
	bool peer_uid_known;
	uid_t peer_uid;
	char peer[64];
};

/* An HTTP token (a header name, a method): printable, no separators. */
bool http_is_token(const char *s);
/* A response before its handler runs: 200, text, empty, no headers. */
void http_response_init(struct http_response *resp);

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
