/*
 * runnerd's HTTP server, on event loops of its own (HTTP/1.1, keep-alive,
 * pipelining, chunked bodies, 100-continue): one small API for the three places
 * runnerd listens (the control API on a unix socket in the state dir, the
 * webhook listener and the metrics listener on TCP). It owns sockets, limits,
 * deadlines and dispatch; what a request means is up to the handlers its
 * caller passes in, so this module depends on nothing but util. It must never
 * buffer a body beyond its route's cap, let slow, idle or waiting clients
 * take the last free slots or threads, log above debug, or put request data
 * (which may carry secrets) in any message.
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
 * sends none); header names and values are copied. A status outside 200..599 becomes
 * 500 (a 1xx does not end a request: only the server sends one, 100 Continue).
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
 * within the route's cap. A handler must return promptly: while it runs it
 * holds one worker thread (and the connections that thread serves), and
 * stopping the server waits for it. A request whose answer takes long
 * (it waits for other work) is deferred: see http_request_defer.
 */
typedef void (*http_handler_fn)(void *ctx, const struct http_request *req,
                                struct http_response *resp);

/*
 * A response outside a handler (for http_deferred_answer): 200, text, empty
 * body (max HTTP_RESPONSE_MAX_BODY), no headers. Release what init took.
 */
void http_response_init(struct http_response *resp);
void http_response_release(struct http_response *resp);

/*
 * A request answered later, from any thread. Called in a handler,
 * http_request_defer sets the request aside: once the handler returns, its
 * connection waits without a thread until http_deferred_answer (which
 * sends the answer from the answering thread itself when the socket takes
 * it whole), and what the handler left in resp becomes the
 * answer the server sends by itself when none came within timeout_ms (say,
 * a 504 saying why). While the server stops, every request still set aside
 * gets a 503. At most as many requests as the server keeps slots for
 * (max_connections less its reserve, see http_server_options) are set aside
 * at once. Returns 0 and *ret; -EBUSY when that many are, -ESHUTDOWN while
 * the server stops, -EALREADY when this request was deferred already,
 * -EINVAL for a zero timeout, -ENOMEM: then the handler answers in resp as
 * usual.
 */
struct http_deferred;
int http_request_defer(const struct http_request *req, unsigned timeout_ms,
                       struct http_deferred **ret);
/*
 * Answer a deferred request with resp (copied; the caller releases it) and
 * let go of d, whatever the outcome: call it exactly once per deferral,
 * from any thread, even after the server stopped. -EALREADY when the
 * server answered first (its deadline passed, it stopped, or the client is
 * gone); -ENOMEM when resp could not be copied: the server then sends
 * what the handler left (its timeout answer) at once.
 */
int http_deferred_answer(struct http_deferred *d, const struct http_response *resp);

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

/*
 * Limits; a zero field takes the default in brackets. max_per_ip does not
 * apply to a unix socket (every peer there is local; its uid is checked).
 *
 * Slots: a quarter of max_connections (at least one) is kept in reserve for
 * requests that arrive. Connections still sending a request head and
 * deferred requests together take at most the rest: when a new connection
 * would cut into the reserve, the one that has been sending its head
 * longest (100 ms at least, its bytes all read) is closed. Connections
 * beyond max_connections wait in the listen queue (4096 deep, as the
 * kernel allows): the server refuses none but those over max_per_ip.
 * The header deadline is a real one: an idle timeout restarts on every
 * byte, so a peer that drips its head would otherwise hold a slot for
 * ever; on keep-alive it runs from the end of the previous response (an
 * idle keep-alive connection is closed then too). threads is the number
 * of event loops; a handler runs on its connection's loop.
 */
struct http_server_options {
	unsigned threads;          /* event loops, one thread each [4] */
	unsigned idle_timeout_s;   /* a connection silent this long is closed [10] */
	unsigned header_timeout_s; /* request line and headers complete within this [5] */
	unsigned body_timeout_s;   /* a body still arriving after this is dropped [60] */
	unsigned max_connections;  /* at once, over all clients [64] */
	unsigned max_per_ip;       /* at once from one address, TCP only [16] */
};

/* max_per_ip: no limit from one address */
#define HTTP_NO_LIMIT UINT_MAX

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

/*
 * ---- What the server reads of a request itself (pure; fuzzed) ----
 * http_parse.c parses the request line and headers; the server then picks
 * the route, decides on the body and splits the query with these, which
 * touch nothing but their arguments.
 */

/*
 * The route for method and path, as the server picks it (see struct
 * http_route): 0 and *ret; -ENOENT when no route's path matches (404),
 * -EOPNOTSUPP when one does but not with this method (405).
 */
int http_route_find(const struct http_route *routes, size_t n_routes, const char *method,
                    const char *path, const struct http_route **ret);
/*
 * The methods of the routes whose path matches, for a 405's Allow header
 * ("GET, HEAD, POST"): each once, in table order, HEAD after GET; a method
 * that does not fit in out is left out whole. out is always NUL-terminated
 * (cap > 0); returns its length.
 */
size_t http_route_allow(const struct http_route *routes, size_t n_routes, const char *path,
                        char *out, size_t cap);
/*
 * Whether a request for route may send a body, from its Content-Length and
 * Transfer-Encoding values (NULL when absent): 0, or the status to refuse
 * it with before any body is read: 400 when Content-Length is not digits,
 * 413 when it is over max_body or when any Transfer-Encoding comes where no
 * body may (max_body 0).
 */
int http_body_admit(const struct http_route *route, const char *content_length,
                    const char *transfer_encoding);

#define HTTP_QUERY_MAX_ARGS 32

/* A query string split into its arguments (http_request_arg reads one). */
struct http_query {
	char *text; /* the decoded copy that names and values point into */
	size_t n;
	struct {
		const char *name;
		const char *value; /* "" for "?flag" */
	} args[HTTP_QUERY_MAX_ARGS];
};

/*
 * Split a raw query ("a=1&flag&b=%41", NULL or "" for none) at '&' (empty
 * pieces skipped) and each piece at its first '=', and decode %XX in names
 * and values ('+' stays '+'). -EINVAL for a '%' without two hex digits or
 * one that decodes to NUL, -E2BIG for more than HTTP_QUERY_MAX_ARGS
 * arguments (the server answers 400 to both), -ENOMEM; *ret is untouched
 * on failure.
 */
int http_query_parse(const char *raw, struct http_query *ret);
/* The value of the first argument called name; NULL when there is none. */
const char *http_query_get(const struct http_query *q, const char *name);
/* NULL-safe; leaves q empty. */
void http_query_release(struct http_query *q);

#endif
