/*
 * What the files of src/http share, private to the folder: the server, its
 * event loops (one thread each, each with the connections it accepted), a
 * connection and its request, deferred requests, and the socket helpers
 * the server starts from. Nothing outside src/http may include this.
 *
 * Ownership: a connection belongs to the loop that accepted it; only that
 * thread reads it, writes it, or closes its descriptor. Two things reach
 * into it from elsewhere, each under a lock: the reserve (any loop, under
 * the server's lock, shuts a slow head's input down) and the answer to a
 * deferred request (any thread, under the deferral's lock, sends it on the
 * socket while the loop leaves the connection alone).
 */
#ifndef RUNNERD_HTTP_INTERNAL_H
#define RUNNERD_HTTP_INTERNAL_H

#include "http/server.h"
#include "http/http_parse.h"
#include "util/buf.h"

#include <pthread.h>
#include <sys/socket.h>

#define DEFAULT_THREADS          4
#define DEFAULT_IDLE_TIMEOUT_S   10
#define DEFAULT_HEADER_TIMEOUT_S 5
#define DEFAULT_BODY_TIMEOUT_S   60
#define DEFAULT_MAX_CONNECTIONS  64
#define DEFAULT_MAX_PER_IP       16
#define MAX_THREADS              64
/* Deep, so a burst waits in the kernel's queue instead of being refused
 * (listen() caps it at net.core.somaxconn). */
#define LISTEN_BACKLOG 4096
/* A loop looks at its deadlines at least this often. */
#define TICK_MS 100
/* A head younger than this is never closed to free a slot: its client may
 * have connected a moment ago and be about to send it. */
#define EVICT_GRACE_MS 100
/* A connection's input buffer: a whole head fits, and a body arrives in
 * pieces this large. */
#define INPUT_MAX   (HTTP_HEAD_MAX + 16u * 1024)
#define INPUT_START (16u * 1024)

#define JSON_TYPE "application/json"
#define TEXT_TYPE "text/plain; charset=utf-8"

struct http_server;
struct loop;

/* An answer on its way out: its head (status line, headers) and body, sent from off. */
struct http_out {
	char *data; /* head, then body (one block) */
	size_t len, off;
	bool close_after; /* the connection ends once it is out */
	bool secret;      /* wiped when released */
};

enum conn_state {
	CONN_HEAD,     /* waiting for (the rest of) a request head */
	CONN_BODY,     /* reading the body of a routed request */
	CONN_DEFERRED, /* its handler set it aside: the answer comes from elsewhere */
	CONN_WRITING,  /* an answer is going out */
	CONN_DONE,     /* to be closed */
};

struct conn {
	struct loop *loop;
	int fd;
	enum conn_state state;
	struct sockaddr_storage addr;
	char peer[64];
	bool peer_uid_known;
	uid_t peer_uid;

	/* input: bytes read and not consumed yet, from in[0] */
	char *in;
	size_t in_len, in_cap;
	size_t pos;       /* body bytes consumed, after the head */
	size_t head_scan; /* bytes of in[] searched for the end of the head */
	bool drained;     /* the socket's queue was empty at the last read: wait for an event */
	bool eof;         /* the peer sends no more (read) */
	bool hup;         /* the peer shut its side down, or the socket failed (epoll said) */

	/* the request in progress */
	size_t head_len; /* bytes of in[] the parsed head takes */
	struct http_head head;
	const struct http_route *route;
	struct http_query args;
	enum http_framing framing;
	uint64_t body_left;
	struct http_chunked chunked;
	struct buf body;
	bool keep_alive;
	bool is_head; /* HEAD: the answer has no body */

	struct http_out out;
	struct http_deferred *deferred;

	/* deadlines (monotonic ms) */
	int64_t head_since_ms; /* its current head became due */
	int64_t body_since_ms; /* its body started */
	int64_t active_ms;     /* last byte read or written */

	/* the server's list, under its lock: the reserve and per-address counts */
	bool in_head; /* counted in n_heads */
	int64_t watch_since_ms;
	bool cut; /* input shut down by the reserve */
	struct conn *prev, *next;
	/* the loop's list of its own connections */
	struct conn *lprev, *lnext;
	/* handed back by an answerer (under the loop's lock) */
	struct conn *hb_next;
	bool in_handback;
};

/* One event loop and its thread. */
struct loop {
	struct http_server *server;
	pthread_t thread;
	bool started;
	int epfd;
	int wakefd;     /* eventfd: stop, handbacks, sockets handed over, room to accept again */
	bool listening; /* the listen socket is in epfd */
	struct conn *conns;        /* its own, touched by its thread only */
	pthread_mutex_t lock;      /* guards handback and incoming */
	struct conn *handback;     /* connections an answerer gave back */
	struct incoming *incoming; /* sockets another loop accepted for it */
	unsigned n_assigned; /* under the server's lock: its connections, and those on their way */
};

/* An accepted socket on its way to the loop that is to serve it. */
struct incoming {
	int fd;
	struct sockaddr_storage addr;
	struct incoming *next;
};

struct http_server {
	struct http_route *routes;
	size_t n_routes;
	void *ctx;
	int listen_fd;
	int port;
	bool is_unix;
	uid_t allowed_uid;
	char *unix_path; /* removed on stop if it is still our socket */
	dev_t sock_dev;
	ino_t sock_ino;

	/* limits */
	int64_t idle_timeout_ms, header_timeout_ms, body_timeout_ms;
	unsigned max_conns, max_per_ip;
	unsigned max_held; /* heads in progress + deferred requests, at most */

	struct loop *loops;
	unsigned n_loops;

	pthread_mutex_t lock; /* guards what follows, and each conn's list fields */
	bool stopping;        /* no new deferral; every deferred one gets a 503 */
	struct conn *conns;
	unsigned n_conns;
	unsigned n_accepting; /* slots taken by accept4 calls under way */
	unsigned n_heads;
	unsigned n_deferred;
	bool accept_paused; /* some loop took the listen socket out: full */
};

/* An HTTP token (a header name, a method): printable, no separators. */
bool http_is_token(const char *s);

/*
 * The bytes of an answer (http_message.c): status line, Content-Type,
 * Content-Length, the handler's headers, Connection when needed, then the
 * body unless head_only. A status outside 100..599 becomes a 500 of its
 * own. -ENOMEM.
 */
int http_out_build(const struct http_response *resp, bool head_only, bool keep_alive, int minor,
                   struct http_out *ret);
/* A small JSON answer of the server's own (errors, refusals); allow may be NULL. */
int http_out_json(int status, const char *json, const char *allow, bool keep_alive, int minor,
                  struct http_out *ret);
void http_out_release(struct http_out *o);

/*
 * Connections (http_conn.c), on their loop's thread only. conn_new: an
 * accepted socket joins loop l, taking over the slot accept took
 * (n_accepting) and the place it was given on l (n_assigned); NULL when
 * refused (over max_per_ip) or out of memory: both are given back and the
 * caller closes fd. conn_run: move it as far as it
 * goes without waiting (on any event, a hand-back, a tick). conn_tick: its
 * deadlines at now (it may close). conn_close: unlink, close and free;
 * stopping: a deferred request gets a 503 first. conn_answer: the request
 * is over, o (taken; empty: none, close) goes out next.
 */
struct conn *conn_new(struct loop *l, int fd, const struct sockaddr_storage *addr);
void conn_run(struct conn *c);
void conn_tick(struct conn *c, int64_t now);
void conn_close(struct conn *c, bool stopping);
void conn_answer(struct conn *c, struct http_out *o);

/* Wake every loop (server.c): room to accept again, or stop. */
void loops_wake(struct http_server *s);

/*
 * The server's lists and the reserve (http_watch.c), under s->lock.
 * watch_add: a new connection joins (false: over max_per_ip, refuse it);
 * watch_head: its head became due (true) or complete (false);
 * watch_remove: it leaves; keep_reserve: close the oldest heads while heads
 * and deferred requests take more than their share.
 */
bool watch_add(struct http_server *s, struct conn *c, int64_t now);
void watch_head(struct http_server *s, struct conn *c, bool due, int64_t now);
void watch_remove(struct http_server *s, struct conn *c);
void keep_reserve(struct http_server *s, int64_t now);

/*
 * Deferred requests (http_defer.c). settle: c's handler returned after
 * deferring, resp is its timeout answer: the connection waits, or the
 * answer that came already goes out. resume: c has an event while it
 * waits (input, or an answerer gave it back): false while it still waits,
 * true once its state moved on (ready for the next request, an answer
 * to send, or to close). expire: its deadline at now; true when it is
 * answered (resume then moves it on). end: c closes while deferred: the
 * server lets go (with a 503 for one still unanswered when stopping).
 */
void defer_settle(struct conn *c, const struct http_response *resp);
bool defer_resume(struct conn *c);
bool defer_expire(struct conn *c, int64_t now);
void defer_end(struct conn *c, bool stopping);

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
