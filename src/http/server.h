/*
 * runnerd's HTTP server, on libmicrohttpd: one small API for the three places
 * runnerd listens (the control API on a unix socket in the state dir, the
 * webhook listener and the metrics listener on TCP). It owns sockets, limits
 * and dispatch; what a request means is up to the handlers its caller passes
 * in, so this module depends on nothing but util. It must never buffer a body
 * beyond its route's cap, let one slow or idle client hold the server, log
 * above debug, or put request data (which may carry secrets) in any message.
 */
#ifndef RUNNERD_HTTP_SERVER_H
#define RUNNERD_HTTP_SERVER_H

#include "util/common.h"

#include <sys/socket.h>

#include "util/buf.h"
#include "util/err.h"

/* Most bytes a handler may put in a response body (Prometheus text, JSON). */
#define HTTP_RESPONSE_MAX_BODY (32u * 1024 * 1024)
/* Extra response headers a handler may add besides Content-Type. */
#define HTTP_RESPONSE_MAX_HEADERS 4

/*
 * One request, valid only during the handler call. Strings are
 * NUL-terminated and never NULL unless said otherwise.
 */
struct http_request {
	const char *method; /* as sent ("GET", "HEAD", "POST", ...) */
	const char *path;   /* percent-decoded, without the query */
	const char *query;  /* raw text after '?', NULL when there is none */
	const char *body;   /* the whole body, NUL-terminated ("" when none) */
	size_t body_len;
	/* Unix socket only: the peer's uid from SO_PEERCRED (already checked). */
	uid_t peer_uid;
	bool peer_uid_known;
	char peer[64]; /* "127.0.0.1:54321", "[::1]:54321" or "unix" (for logs) */
	void *impl;    /* the server's, do not touch */
};

/* A request header, matched case-insensitively; NULL when absent. */
const char *http_request_header(const struct http_request *req, const char *name);
/* A query argument, percent-decoded; NULL when absent, "" for "?flag". */
const char *http_request_arg(const struct http_request *req, const char *name);

struct http_header {
	char name[64];
	char value[256];
};

/*
 * What a handler fills. The server prepares it as 200, "text/plain;
 * charset=utf-8", empty body (max HTTP_RESPONSE_MAX_BODY), no extra headers.
 * content_type must outlive the handler call (use a string literal; NULL
 * sends none); header names and values are copied. A status outside 100..599 becomes 500.
 */
struct http_response {
	int status;
	const char *content_type;
	struct buf body;
	struct http_header headers[HTTP_RESPONSE_MAX_HEADERS];
	size_t n_headers;
};

/*
 * Set status, type and body in one go. The body is replaced. Return 0,
 * -E2BIG (body over the cap: the response then is a 500 error) or -ENOMEM.
 */
int http_response_json(struct http_response *resp, int status, const char *json);
int http_response_text(struct http_response *resp, int status, const char *text);
/* {"error": "<message, JSON-escaped>"} with the given status. */
int http_response_error(struct http_response *resp, int status, const char *message);
/*
 * Add an extra header (e.g. "Retry-After"). -EINVAL when the name is not a
 * token or the value holds a control character (no header injection),
 * -E2BIG when full or too long.
 */
int http_response_header(struct http_response *resp, const char *name, const char *value);

/*
 * Handlers run on the server's worker threads, possibly several at once, so
 * ctx must be safe to share. They run once the whole body has arrived and is
 * within the route's cap. A handler should return promptly: while it runs
 * it holds one worker thread (and the connections that thread serves), and
 * stopping the server waits for it.
 */
typedef void (*http_handler_fn)(void *ctx, const struct http_request *req,
                                struct http_response *resp);

/*
 * One entry of a caller's route table. path is matched exactly, or, when
 * its last two characters are a slash and an asterisk, as a prefix: the
 * path "/v1/runners/" followed by "*" matches "/v1/runners/x" but neither
 * "/v1/runners/" nor "/v1/runners". The first entry (in table order) whose
 * path and method match wins; a "GET" route also answers HEAD. No path matches: 404. A path
 * matches but no method: 405 with Allow. A body over max_body (0 = no body
 * allowed): 413 at once, before it is buffered. The strings must outlive the
 * server (use a static table).
 */
struct http_route {
	const char *method;
	const char *path;
	http_handler_fn fn;
	size_t max_body;
};

/* Limits; a zero field takes the default in brackets. max_per_ip does not
 * apply to a unix socket (every peer there is local; its uid is checked). */
struct http_server_options {
	unsigned threads;         /* worker threads [4] */
	unsigned idle_timeout_s;  /* a connection silent this long is closed [10] */
	unsigned body_timeout_s;  /* a body still arriving after this is dropped [60] */
	unsigned max_connections; /* at once, over all clients [64] */
	unsigned max_per_ip;      /* at once from one address, TCP only [16] */
};

struct http_server;

/*
 * Serve routes on TCP. listen is "HOST:PORT" with a numeric IPv4 host, a
 * bracketed numeric IPv6 host ("[::1]:8080") or "localhost"; port 0 picks a
 * free port (see http_server_port). routes is copied (not its strings). On
 * success *ret owns a running server. Errors: -EINVAL (bad
 * listen string or route table), -EADDRINUSE, -EACCES, -ENOMEM, -EIO.
 */
int http_server_start_tcp(const char *listen, const struct http_route *routes, size_t n_routes,
                          void *ctx, struct http_server **ret, struct err *e);
/* The same with explicit limits (opts may be NULL: the defaults). */
int http_server_start_tcp_opts(const char *listen, const struct http_route *routes, size_t n_routes,
                               void *ctx, const struct http_server_options *opts,
                               struct http_server **ret, struct err *e);

/*
 * Serve routes on a unix stream socket at path, created with the given mode
 * (e.g. 0600). An existing file there is replaced only if it is a socket no
 * server answers on (-EADDRINUSE if one does, -EEXIST if it is not a socket).
 * Every request's peer uid is checked with SO_PEERCRED: anyone but
 * allowed_uid and root gets 403 before a handler runs.
 */
int http_server_start_unix(const char *path, mode_t mode, uid_t allowed_uid,
                           const struct http_route *routes, size_t n_routes, void *ctx,
                           struct http_server **ret, struct err *e);
int http_server_start_unix_opts(const char *path, mode_t mode, uid_t allowed_uid,
                                const struct http_route *routes, size_t n_routes, void *ctx,
                                const struct http_server_options *opts, struct http_server **ret,
                                struct err *e);

/* The bound TCP port (useful after port 0); 0 for a unix socket or NULL. */
int http_server_port(const struct http_server *s);

/*
 * Close every connection, wait for running handlers, free everything and
 * remove the unix socket file (only if it is still ours). Prompt even with
 * idle clients connected. NULL-safe.
 */
void http_server_stop(struct http_server *s);

/*
 * Parse a listen string as http_server_start_tcp does (exposed so callers
 * can validate configuration early). ret is a struct sockaddr_in or _in6.
 */
int http_parse_listen(const char *listen, struct sockaddr_storage *ret, socklen_t *ret_len,
                      struct err *e);

#endif
