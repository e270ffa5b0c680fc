/*
 * A small HTTP client over libcurl, shared by the modules that talk to REST
 * APIs (GitHub, LXD, OpenStack): one request in, one bounded response out.
 * Every request has a connect and a total timeout, every body read into
 * memory has a mandatory size limit, and only the response headers the
 * caller names are kept. Header lines may carry secrets (Authorization):
 * they go to libcurl only, never into an error message, and verbose output
 * is never turned on.
 *
 * A struct httpc holds a connection cache that several threads may share;
 * each httpc_perform() uses its own easy handle, so calls run in parallel.
 * A request may name a cancel flag that another thread sets: the transfer
 * then stops within about HTTPC_CANCEL_POLL_MS, wherever it is (connecting,
 * waiting for the answer, reading the body).
 */
#ifndef RUNNERD_HTTPC_H
#define RUNNERD_HTTPC_H

#include "util/common.h"
#include "util/buf.h"
#include "util/err.h"

#include <stdatomic.h>

/* How often a transfer that has a cancel flag looks at it while it waits. */
#define HTTPC_CANCEL_POLL_MS 50

struct httpc;

struct httpc_request {
	const char *method;         /* NULL = "GET" */
	const char *url;            /* http:// or https:// */
	const char *unix_socket;    /* NULL = TCP; else connect to this socket */
	const char *const *headers; /* "Name: value" lines, NULL-terminated; may be NULL */
	const void *body;           /* sent when not NULL */
	size_t body_len;
	const char *ca_file; /* NULL or "" = the system store */
	/* NULL or "" = the environment's (HTTPS_PROXY...); NO_PROXY applies either way */
	const char *proxy;
	long connect_timeout_ms; /* 0 = 10 s */
	long timeout_ms;         /* whole transfer; 0 = 30 s */
	long low_speed_time_s;   /* > 0: abort when slower than 1 KiB/s for this long */
	size_t max_body;         /* bytes kept in memory; mandatory (> 0) */
	bool to_fd;              /* write the body of a 2xx answer to fd instead */
	int fd;
	uint64_t max_download;           /* limit in to_fd mode; 0 = no limit */
	bool follow_redirects;           /* at most 5, http/https only */
	const char *const *want_headers; /* response header names to capture, NULL-terminated */
	const atomic_bool *cancel;       /* NULL, or set by another thread to abort the transfer */
	bool secret; /* the answer holds a secret: its body is a secret buf (util/buf.h) */
};

struct httpc_header {
	char *name;  /* as the caller spelled it in want_headers */
	char *value; /* trimmed */
};

struct httpc_response {
	long status;                  /* HTTP status of the last answer */
	struct buf body;              /* body (or, in to_fd mode, the body of a non-2xx answer) */
	uint64_t downloaded;          /* bytes written to fd in to_fd mode */
	struct httpc_header *headers; /* captured headers of the last answer */
	size_t n_headers;
};

int httpc_new(struct httpc **ret, struct err *e);
/* Every httpc_perform() using h must have returned. NULL-safe. */
void httpc_free(struct httpc *h);

/*
 * Perform one request (h may be NULL: no connection reuse). *ret must be
 * zeroed (or hold an earlier response, released on success). On success *ret
 * holds the answer, whatever its status; release it with
 * httpc_response_release(). On failure *ret is untouched and:
 *   -ECONNREFUSED  the request never left: name resolution, connection or
 *                  proxy failed, or the connect timeout passed
 *   -ETIMEDOUT     connected, but the total timeout (or low-speed limit) passed
 *   -ECONNRESET    the connection dropped, or the peer answered nothing / garbage
 *   -E2BIG         the body is over max_body (or max_download)
 *   -EPROTO        the server's TLS certificate is not trusted (or ca_file is bad)
 *   -ECANCELED     *req->cancel was set (before or during the transfer)
 *   -EINVAL        a bad request (URL, option); -ENOMEM; -EIO otherwise
 */
int httpc_perform(struct httpc *h, const struct httpc_request *req, struct httpc_response *ret,
                  struct err *e);
/* The captured value of a header (case-insensitive name), NULL when absent. */
const char *httpc_response_header(const struct httpc_response *r, const char *name);
void httpc_response_release(struct httpc_response *r);

#endif
