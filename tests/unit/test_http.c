/*
 * Unit tests of src/http: a real server on 127.0.0.1 / a unix socket in a
 * temporary directory, driven by a raw-socket client so the tests control
 * every byte (chunked bodies, slow and malformed clients, other uids).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "http/server.h"
#include "http_client.h"
#include "util/strutil.h"

#define NOBODY   65534
#define RESP_MAX (64 * 1024)

static atomic_int handler_calls;

/* ---- handlers ------------------------------------------------------------ */

static void h_ok(void *ctx, const struct http_request *req, struct http_response *resp)
{
	atomic_fetch_add(&handler_calls, 1);
	http_response_text(resp, 200, "ok\n");
}

/* "<method> <path> <query|-> <len> <ctx>\n" then the body, byte for byte. */
static void h_echo(void *ctx, const struct http_request *req, struct http_response *resp)
{
	atomic_fetch_add(&handler_calls, 1);
	resp->status = 200;
	buf_printf(&resp->body, "%s %s %s %zu %s\n", req->method, req->path,
	           req->query ? req->query : "-", req->body_len, (const char *)ctx);
	buf_append(&resp->body, req->body, req->body_len);
	if (req->body[req->body_len] != '\0')
		http_response_error(resp, 500, "body not NUL-terminated");
}

static void h_json(void *ctx, const struct http_request *req, struct http_response *resp)
{
	atomic_fetch_add(&handler_calls, 1);
	http_response_json(resp, 201, "{\"ok\":true}");
}

static void h_err(void *ctx, const struct http_request *req, struct http_response *resp)
{
	atomic_fetch_add(&handler_calls, 1);
	http_response_error(resp, 418, "bad \"thing\"\\\n");
}

static void h_hdr(void *ctx, const struct http_request *req, struct http_response *resp)
{
	const char *h = http_request_header(req, "x-test");
	const char *a = http_request_arg(req, "a");
	const char *f = http_request_arg(req, "flag");
	const char *m = http_request_arg(req, "missing");

	atomic_fetch_add(&handler_calls, 1);
	/* No cmocka asserts here: this runs on a server thread. */
	if (http_response_header(resp, "X-Reply", "yes") < 0) {
		http_response_error(resp, 500, "cannot add header");
		return;
	}
	buf_printf(&resp->body, "h=%s a=%s flag=%s missing=%s peer=%s", h ? h : "(null)",
	           a ? a : "(null)", f ? f : "(null)", m ? m : "(null)", req->peer);
}

static void h_peer(void *ctx, const struct http_request *req, struct http_response *resp)
{
	atomic_fetch_add(&handler_calls, 1);
	buf_printf(&resp->body, "uid=%d known=%d", (int)req->peer_uid, req->peer_uid_known);
}

static void h_nostatus(void *ctx, const struct http_request *req, struct http_response *resp)
{
	atomic_fetch_add(&handler_calls, 1);
	resp->status = 0;
}

/* 1 MiB, more than a socket buffer holds: the server must still be writing. */
static void h_big(void *ctx, const struct http_request *req, struct http_response *resp)
{
	static char chunk[4096];

	atomic_fetch_add(&handler_calls, 1);
	memset(chunk, 'b', sizeof(chunk));
	for (int i = 0; i < 256; i++)
		buf_append(&resp->body, chunk, sizeof(chunk));
}

/* A handler that takes a while, as an observation does. */
static void h_slow(void *ctx, const struct http_request *req, struct http_response *resp)
{
	atomic_fetch_add(&handler_calls, 1);
	usleep(20 * 1000);
	http_response_text(resp, 200, "slow\n");
}

/* ---- deferred answers ------------------------------------------------------ */

/* Requests set aside by h_defer, with the id each asked with, for the test to answer. */
static pthread_mutex_t parked_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	struct http_deferred *d;
	int64_t id;
} parked[64];
static int n_parked;

static int answer_with(struct http_deferred *d, const char *text)
{
	struct http_response resp;
	int r;

	http_response_init(&resp);
	http_response_text(&resp, 200, text);
	r = http_deferred_answer(d, &resp);
	http_response_release(&resp);
	return r;
}

static void *answer_thread(void *arg)
{
	(void)answer_with(arg, "thread");
	return NULL;
}

/*
 * Defers its request for ?ms= (default 10 s), leaving a 504 as the answer
 * at the deadline, then: ?self answers at once from the handler, ?thread
 * from a thread racing the handler's return, otherwise it is parked with
 * its ?id= for the test to answer. No cmocka asserts: a server thread.
 */
static void h_defer(void *ctx, const struct http_request *req, struct http_response *resp)
{
	const char *ms = http_request_arg(req, "ms"), *id = http_request_arg(req, "id");
	struct http_deferred *d;
	int64_t t = 10000, n = -1;
	pthread_t th;
	int r;

	atomic_fetch_add(&handler_calls, 1);
	if (ms)
		(void)parse_int64(ms, 1, 600000, &t);
	if (id)
		(void)parse_int64(id, 0, 1000000, &n);
	r = http_request_defer(req, (unsigned)t, &d);
	if (r < 0) {
		http_response_error(resp, 503, r == -EBUSY ? "busy" : strerror(-r));
		return;
	}
	http_response_error(resp, 504, "no answer in time");
	if (http_request_arg(req, "self")) {
		(void)answer_with(d, "self");
		return;
	}
	if (http_request_arg(req, "thread")) {
		if (pthread_create(&th, NULL, answer_thread, d) == 0)
			pthread_detach(th);
		else
			(void)answer_with(d, "no thread");
		return;
	}
	pthread_mutex_lock(&parked_lock);
	if (n_parked < (int)ARRAY_SIZE(parked)) {
		parked[n_parked].d = d;
		parked[n_parked].id = n;
		n_parked++;
		d = NULL;
	}
	pthread_mutex_unlock(&parked_lock);
	if (d)
		(void)answer_with(d, "no room to park");
}

static int parked_count(void)
{
	int n;

	pthread_mutex_lock(&parked_lock);
	n = n_parked;
	pthread_mutex_unlock(&parked_lock);
	return n;
}

/* The last request parked (its id in *ret_id), or NULL. */
static struct http_deferred *unpark(int64_t *ret_id)
{
	struct http_deferred *d = NULL;

	pthread_mutex_lock(&parked_lock);
	if (n_parked > 0) {
		n_parked--;
		d = parked[n_parked].d;
		*ret_id = parked[n_parked].id;
	}
	pthread_mutex_unlock(&parked_lock);
	return d;
}

static bool wait_parked(int n, double timeout_s)
{
	double end = now_s() + timeout_s;

	while (parked_count() < n && now_s() < end)
		usleep(10 * 1000);
	return parked_count() >= n;
}

static const struct http_route routes[] = {
        {"GET", "/healthz", h_ok, 0},
        {"GET", "/slow", h_slow, 0},
        {"GET", "/defer", h_defer, 0},
        {"POST", "/webhook", h_echo, 1024},
        {"GET", "/json", h_json, 0},
        {"GET", "/err", h_err, 0},
        {"GET", "/hdr", h_hdr, 0},
        {"GET", "/peer", h_peer, 0},
        {"GET", "/nostatus", h_nostatus, 0},
        {"GET", "/big", h_big, 0},
        {"DELETE", "/v1/runners/*", h_echo, 0},
        {"POST", "/v1/runners/*", h_echo, 16},
};

static struct http_server *start_tcp(const struct http_server_options *opts)
{
	struct http_server *s = NULL;
	struct err e = {0};

	assert_int_equal(http_server_start_tcp_opts("127.0.0.1:0", routes, ARRAY_SIZE(routes),
	                                            (void *)"ctx", opts, &s, &e),
	                 0);
	assert_non_null(s);
	assert_true(http_server_port(s) > 0);
	return s;
}

/* ---- tests --------------------------------------------------------------- */

static void test_parse_listen(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	struct err e = {0};

	assert_int_equal(http_parse_listen("127.0.0.1:8080", &ss, &len, &e), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(http_parse_listen("[::1]:0", &ss, &len, &e), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	assert_int_equal(http_parse_listen("localhost:9", &ss, &len, &e), 0);
	assert_int_equal(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(http_parse_listen("0.0.0.0:65535", &ss, &len, &e), 0);

	len = 77;
	const char *bad[] = {"",
	                     "8080",
	                     ":8080",
	                     "127.0.0.1",
	                     "127.0.0.1:",
	                     "127.0.0.1:65536",
	                     "127.0.0.1:-1",
	                     "127.0.0.1:+80",
	                     "127.0.0.1:80x",
	                     "::1:8080",
	                     "[::1]8080",
	                     "[::1]",
	                     "[127.0.0.1]:80",
	                     "example.com:80",
	                     "1.2.3.4.5:80",
	                     "[::1:80"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(http_parse_listen(bad[i], &ss, &len, &e), -EINVAL);
		assert_int_equal(len, 77); /* untouched on failure */
		assert_true(strlen(e.msg) > 0);
	}
}

static void test_response_helpers(void **state)
{
	struct http_response resp = {.status = 200};

	buf_init(&resp.body, 64);
	assert_int_equal(http_response_error(&resp, 400, "a\"b\\c\n\x01"), 0);
	assert_int_equal(resp.status, 400);
	assert_string_equal(resp.content_type, "application/json");
	assert_string_equal(buf_str(&resp.body), "{\"error\":\"a\\\"b\\\\c\\u000a\\u0001\"}");

	assert_int_equal(http_response_json(&resp, 202, "{}"), 0);
	assert_string_equal(buf_str(&resp.body), "{}");
	assert_int_equal(resp.status, 202);

	/* Over the body cap: a 500 error, never a truncated body. */
	char big[100];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(http_response_text(&resp, 200, big), -E2BIG);
	assert_int_equal(resp.status, 500);
	assert_string_equal(buf_str(&resp.body), "{\"error\":\"response too large\"}");

	assert_int_equal(http_response_header(&resp, "X-A", "1"), 0);
	assert_int_equal(http_response_header(&resp, "X-B", "evil\r\nSet-Cookie: x"), -EINVAL);
	assert_int_equal(http_response_header(&resp, "X C", "1"), -EINVAL);
	assert_int_equal(http_response_header(&resp, "", "1"), -EINVAL);
	assert_int_equal(http_response_header(&resp, "content-length", "1"), -EINVAL);
	assert_int_equal(http_response_header(&resp, "X-B", "2"), 0);
	assert_int_equal(http_response_header(&resp, "X-C", "3"), 0);
	assert_int_equal(http_response_header(&resp, "X-D", "4"), 0);
	assert_int_equal(http_response_header(&resp, "X-E", "5"), -E2BIG);
	assert_int_equal(resp.n_headers, 4);
	buf_release(&resp.body);
}

static void test_dispatch(void **state)
{
	struct http_server *s = start_tcp(NULL);
	int port = http_server_port(s);
	char out[RESP_MAX];

	assert_int_equal(request(port,
	                         "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	                         out, sizeof(out)),
	                 200);
	assert_string_equal(body_of(out), "ok\n");
	assert_true(has_header(out, "Content-Type", "text/plain; charset=utf-8"));

	/* HEAD is answered by the GET route, without a body. */
	assert_int_equal(request(port,
	                         "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	                         out, sizeof(out)),
	                 200);
	assert_string_equal(body_of(out), "");

	assert_int_equal(request(port, "GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	                         out, sizeof(out)),
	                 201);
	assert_true(has_header(out, "Content-Type", "application/json"));
	assert_string_equal(body_of(out), "{\"ok\":true}");

	assert_int_equal(request(port, "GET /err HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	                         out, sizeof(out)),
	                 418);
	assert_string_equal(body_of(out), "{\"error\":\"bad \\\"thing\\\"\\\\\\u000a\"}");

	assert_int_equal(request(port,
	                         "GET /hdr?a=b%20c&flag HTTP/1.1\r\nHost: x\r\nX-Test: hi there\r\n"
	                         "Connection: close\r\n\r\n",
	                         out, sizeof(out)),
	                 200);
	assert_true(has_header(out, "X-Reply", "yes"));
	assert_non_null(
	        strstr(body_of(out), "h=hi there a=b c flag= missing=(null) peer=127.0.0.1:"));

	/* Prefix routes see the full path; the query comes raw. */
	assert_int_equal(request(port,
	                         "DELETE /v1/runners/ci-0123456789ab?busy=1&x=%41 HTTP/1.1\r\n"
	                         "Host: x\r\nConnection: close\r\n\r\n",
	                         out, sizeof(out)),
	                 200);
	assert_string_equal(body_of(out),
	                    "DELETE /v1/runners/ci-0123456789ab busy=1&x=%41 0 ctx\n");

	/* A handler that forgets its status yields a 500, not garbage. */
	assert_int_equal(request(port,
	                         "GET /nostatus HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	                         out, sizeof(out)),
	                 500);

	/* Several requests on one keep-alive connection. */
	int fd = connect_tcp(port);
	send_str(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	             "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
	             "GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	read_all(fd, out, sizeof(out), 5000);
	close(fd);
	assert_int_equal(status_of(out), 200);
	assert_non_null(strstr(out, "POST /webhook - 3 ctx\nabc"));
	assert_non_null(strstr(out, "{\"ok\":true}"));

	http_server_stop(s);
	http_server_stop(NULL);
}

static void test_not_found_not_allowed(void **state)
{
	struct http_server *s = start_tcp(NULL);
	int port = http_server_port(s);
	char out[RESP_MAX];
	int before = atomic_load(&handler_calls);

	assert_int_equal(request(port, "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	                         out, sizeof(out)),
	                 404);
	assert_string_equal(body_of(out), "{\"error\":\"not found\"}");
	assert_true(has_header(out, "Content-Type", "application/json"));
	/* Exact paths: no trailing-slash or prefix leniency. */
	assert_int_equal(request(port,
	                         "GET /healthz/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	                         out, sizeof(out)),
	                 404);
	assert_int_equal(
	        request(port,
	                "DELETE /v1/runners/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", out,
	                sizeof(out)),
	        404);
	assert_int_equal(
	        request(port, "DELETE /v1/runners HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	                out, sizeof(out)),
	        404);

	assert_int_equal(request(port,
	                         "GET /webhook HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	                         out, sizeof(out)),
	                 405);
	assert_true(has_header(out, "Allow", "POST"));
	assert_string_equal(body_of(out), "{\"error\":\"method not allowed\"}");
	assert_int_equal(request(port,
	                         "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
	                         "Connection: close\r\n\r\nhi",
	                         out, sizeof(out)),
	                 405);
	assert_true(has_header(out, "Allow", "GET, HEAD"));
	assert_int_equal(
	        request(port, "PUT /v1/runners/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	                out, sizeof(out)),
	        405);
	assert_true(has_header(out, "Allow", "DELETE, POST"));
	assert_int_equal(atomic_load(&handler_calls), before);
	http_server_stop(s);
}

static void test_body_complete(void **state)
{
	struct http_server *s = start_tcp(NULL);
	int port = http_server_port(s);
	char out[RESP_MAX], body[1024], want[1200];
	int fd;

	/* The full cap, with a NUL inside, sent in pieces. */
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)('a' + i % 26);
	body[100] = '\0';
	fd = connect_tcp(port);
	send_str(fd, "POST /webhook?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n"
	             "Connection: close\r\n\r\n");
	for (size_t off = 0; off < sizeof(body); off += 256) {
		usleep(20 * 1000);
		send_all(fd, body + off, 256);
	}
	size_t n = read_all(fd, out, sizeof(out), 5000);
	close(fd);
	assert_int_equal(status_of(out), 200);
	int hl = snprintf(want, sizeof(want), "POST /webhook x=1 1024 ctx\n");
	memcpy(want + hl, body, sizeof(body));
	const char *b = body_of(out);
	assert_int_equal(n - (size_t)(b - out), (size_t)hl + sizeof(body));
	assert_memory_equal(b, want, (size_t)hl + sizeof(body));

	/* Expect: 100-continue under the cap: continue, then the answer. */
	fd = connect_tcp(port);
	send_str(fd, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
	             "Expect: 100-continue\r\nConnection: close\r\n\r\n");
	read_all(fd, out, sizeof(out), 300);
	assert_int_equal(status_of(out), 100);
	send_str(fd, "xyz");
	read_all(fd, out, sizeof(out), 5000);
	close(fd);
	assert_int_equal(status_of(out), 200);
	assert_string_equal(body_of(out), "POST /webhook - 3 ctx\nxyz");

	/* Chunked, under the cap, in two chunks. */
	fd = connect_tcp(port);
	send_str(fd, "POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
	             "Connection: close\r\n\r\n5\r\nhello\r\n");
	usleep(20 * 1000);
	send_str(fd, "6\r\n world\r\n0\r\n\r\n");
	read_all(fd, out, sizeof(out), 5000);
	close(fd);
	assert_int_equal(status_of(out), 200);
	assert_string_equal(body_of(out), "POST /webhook - 11 ctx\nhello world");
	http_server_stop(s);
}

static void test_too_large(void **state)
{
	struct http_server *s = start_tcp(NULL);
	int port = http_server_port(s);
	char out[RESP_MAX], chunk[700];
	int before = atomic_load(&handler_calls);
	int fd;
	double t0;

	/* Content-Length over the cap: 413 before any body, no 100 Continue. */
	fd = connect_tcp(port);
	t0 = now_s();
	send_str(fd, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n"
	             "Expect: 100-continue\r\n\r\n");
	read_all(fd, out, sizeof(out), 5000);
	close(fd);
	assert_true(now_s() - t0 < 1.0);
	assert_int_equal(status_of(out), 413);
	assert_string_equal(body_of(out), "{\"error\":\"request body too large\"}");

	/* Same with the body sent along. */
	memset(chunk, 'z', sizeof(chunk));
	fd = connect_tcp(port);
	send_str(fd, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 1400\r\n\r\n");
	send_all(fd, chunk, sizeof(chunk));
	send_all(fd, chunk, sizeof(chunk));
	read_all(fd, out, sizeof(out), 5000);
	close(fd);
	assert_int_equal(status_of(out), 413);

	/* A route that takes no body refuses one. */
	assert_int_equal(request(port,
	                         "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
	                         out, sizeof(out)),
	                 413);
	assert_int_equal(
	        request(port,
	                "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
	                "\r\n1\r\nx\r\n0\r\n\r\n",
	                out, sizeof(out)),
	        413);

	/* Chunked: counted as it arrives; the chunk that crosses the cap is refused. */
	fd = connect_tcp(port);
	send_str(fd, "POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	             "2bc\r\n");
	send_all(fd, chunk, sizeof(chunk));
	send_str(fd, "\r\n");
	usleep(50 * 1000);
	send_str(fd, "2bc\r\n");
	send_all(fd, chunk, sizeof(chunk));
	send_str(fd, "\r\n0\r\n\r\n");
	read_all(fd, out, sizeof(out), 5000);
	close(fd);
	assert_int_equal(status_of(out), 413);
	assert_true(has_header(out, "Connection", "close"));
	assert_string_equal(body_of(out), "{\"error\":\"request body too large\"}");

	/* A chunked sender that never stops is cut off at once, not read to the end. */
	fd = connect_tcp(port);
	send_str(fd,
	         "POST /v1/runners/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
	t0 = now_s();
	bool cut = false;
	for (int i = 0; i < 2000 && !cut; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (send(fd, "10\r\n0123456789abcdef\r\n", 22, MSG_NOSIGNAL) < 0)
			cut = true;
		else if (poll(&p, 1, 1) == 1)
			cut = true;
	}
	assert_true(cut);
	assert_true(now_s() - t0 < 2.0);
	close(fd);

	assert_int_equal(atomic_load(&handler_calls), before);
	/* And the server still serves. */
	assert_int_equal(request(port,
	                         "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	                         out, sizeof(out)),
	                 200);
	http_server_stop(s);
}

static void test_malformed(void **state)
{
	struct http_server *s = start_tcp(NULL);
	int port = http_server_port(s);
	char out[RESP_MAX];
	static char huge[48 * 1024];
	const char *bad[] = {
	        "GARBAGE\r\n\r\n",
	        "GET\r\n\r\n",
	        "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
	        "GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
	        "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
	        "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
	        "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: "
	        "99999999999999999999999\r\n\r\n",
	        "POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	        "GET /%zz%00%ff HTTP/1.1\r\nHost: x\r\n\r\n",
	        "\x00\x01\x02\xff\r\n\r\n",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int fd = connect_tcp(port);
		send_all(fd, bad[i], strlen(bad[i]) ? strlen(bad[i]) : 8);
		shutdown(fd, SHUT_WR);
		read_all(fd, out, sizeof(out), 3000);
		close(fd);
		int st = status_of(out);
		/* Either refused with a 4xx/5xx or dropped; never a 2xx. */
		assert_true(st == -1 || st >= 400);
	}
	/* A header block over the connection's memory. */
	memset(huge, 'a', sizeof(huge));
	int fd = connect_tcp(port);
	send_str(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
	send_all(fd, huge, sizeof(huge));
	send_str(fd, "\r\n\r\n");
	read_all(fd, out, sizeof(out), 3000);
	close(fd);
	assert_true(status_of(out) == -1 || status_of(out) >= 400);

	/* Clients that leave before reading a large answer: no SIGPIPE, no stall. */
	for (int i = 0; i < 5; i++) {
		fd = connect_tcp(port);
		send_str(fd, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
		read_all(fd, out, 100, 200);
		close(fd);
	}
	int before = atomic_load(&handler_calls);
	size_t n = 0;
	fd = connect_tcp(port);
	send_str(fd, "GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	for (;;) {
		char tmp[65536];
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;
		if (poll(&p, 1, 5000) <= 0 || (r = read(fd, tmp, sizeof(tmp))) <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	assert_true(n > 1024 * 1024);
	assert_int_equal(atomic_load(&handler_calls), before + 1);

	assert_int_equal(request(port,
	                         "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	                         out, sizeof(out)),
	                 200);
	http_server_stop(s);
}

static void test_slow_clients(void **state)
{
	struct http_server_options o = {.idle_timeout_s = 1, .body_timeout_s = 1};
	struct http_server *s = start_tcp(&o);
	int port = http_server_port(s);
	char out[RESP_MAX];
	int idle, partial, trickle;
	double t0, waited;

	idle = connect_tcp(port);
	partial = connect_tcp(port);
	send_str(partial, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
	t0 = now_s();
	/* Others are served while those two hang around. */
	assert_int_equal(request(port,
	                         "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	                         out, sizeof(out)),
	                 200);
	assert_true(now_s() - t0 < 0.5);
	waited = wait_closed(idle, 4.0);
	assert_true(waited >= 0.5 && waited < 3.5);
	waited = wait_closed(partial, 4.0);
	assert_true(waited >= 0 && now_s() - t0 < 3.5);
	close(idle);
	close(partial);

	/* A body trickled within the idle timeout is still cut at the body deadline. */
	trickle = connect_tcp(port);
	t0 = now_s();
	send_str(trickle, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n");
	bool closed = false;
	for (int i = 0; i < 40 && !closed; i++) {
		struct pollfd p = {.fd = trickle, .events = POLLIN};
		if (send(trickle, "x", 1, MSG_NOSIGNAL) < 0 || poll(&p, 1, 250) == 1)
			closed = true;
	}
	assert_true(closed);
	assert_true(now_s() - t0 < 4.0);
	close(trickle);
	http_server_stop(s);
}

static void test_per_ip_limit(void **state)
{
	struct http_server_options o = {.max_per_ip = 2};
	struct http_server *s = start_tcp(&o);
	int port = http_server_port(s);
	char out[RESP_MAX];
	int a = connect_tcp(port), b = connect_tcp(port);

	/* The third connection from the same address is closed at once. */
	usleep(100 * 1000);
	assert_int_equal(request(port,
	                         "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	                         out, sizeof(out)),
	                 -1);
	close(a);
	usleep(200 * 1000);
	assert_int_equal(request(port,
	                         "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	                         out, sizeof(out)),
	                 200);
	close(b);
	http_server_stop(s);
}

static void test_stop_is_prompt(void **state)
{
	struct http_server *s = start_tcp(NULL); /* default 10 s idle timeout */
	int port = http_server_port(s);
	int fds[3];
	double t0;

	fds[0] = connect_tcp(port);
	fds[1] = connect_tcp(port);
	fds[2] = connect_tcp(port);
	send_str(fds[1], "GET /healthz HTTP/1.1\r\nHost: x\r\n");
	send_str(fds[2], "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab");
	usleep(100 * 1000);
	t0 = now_s();
	http_server_stop(s);
	assert_true(now_s() - t0 < 1.5);
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
		assert_true(wait_closed(fds[i], 1.0) >= 0);
		close(fds[i]);
	}
	/* The port is free again. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), -1);
	assert_int_equal(errno, ECONNREFUSED);
	close(fd);
}

static void test_ipv6(void **state)
{
	struct http_server *s = NULL;
	struct err e = {0};
	char out[RESP_MAX];
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};

	assert_true(fd >= 0);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		skip(); /* no IPv6 loopback here */
	}
	close(fd);
	assert_int_equal(
	        http_server_start_tcp("[::1]:0", routes, ARRAY_SIZE(routes), (void *)"ctx", &s, &e),
	        0);
	sa.sin6_port = htons((uint16_t)http_server_port(s));
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	send_str(fd, "GET /hdr HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	read_all(fd, out, sizeof(out), 5000);
	close(fd);
	assert_int_equal(status_of(out), 200);
	assert_non_null(strstr(body_of(out), "peer=[::1]:"));
	http_server_stop(s);
}

static void test_start_errors(void **state)
{
	struct http_server *s = NULL, *s2 = (struct http_server *)&s; /* a canary */
	struct err e = {0};
	struct http_route bad_path[] = {{"GET", "healthz", h_ok, 0}};
	struct http_route bad_fn[] = {{"GET", "/x", NULL, 0}};
	struct http_route bad_method[] = {{"G T", "/x", h_ok, 0}};

	assert_int_equal(http_server_start_tcp("127.0.0.1:0", bad_path, 1, NULL, &s2, &e), -EINVAL);
	assert_int_equal(http_server_start_tcp("127.0.0.1:0", bad_fn, 1, NULL, &s2, &e), -EINVAL);
	assert_int_equal(http_server_start_tcp("127.0.0.1:0", bad_method, 1, NULL, &s2, &e),
	                 -EINVAL);
	assert_int_equal(http_server_start_tcp("nonsense", routes, 1, NULL, &s2, &e), -EINVAL);
	assert_ptr_equal(s2, (struct http_server *)&s); /* untouched on failure */

	/* A port in use. */
	assert_int_equal(http_server_start_tcp("127.0.0.1:0", routes, 1, NULL, &s, &e), 0);
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", http_server_port(s));
	assert_int_equal(http_server_start_tcp(addr, routes, 1, NULL, &s2, &e), -EADDRINUSE);
	assert_non_null(strstr(e.msg, "bind"));
	http_server_stop(s);
}

/* ---- unix socket ---------------------------------------------------------- */

struct unix_fixture {
	char dir[64];
	char path[128];
	struct http_deferred *d; /* one being answered */
};

static int unix_setup(void **state)
{
	struct unix_fixture *f = calloc(1, sizeof(*f));

	str_copy(f->dir, "/tmp/test_http.XXXXXX", sizeof(f->dir));
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/control.sock", f->dir);
	*state = f;
	return 0;
}

static int unix_teardown(void **state)
{
	struct unix_fixture *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static int unix_request(const char *path, const char *req, char *out, size_t cap)
{
	int fd = connect_unix(path);

	if (fd < 0)
		return fd;
	send_str(fd, req);
	read_all(fd, out, cap, 5000);
	close(fd);
	return status_of(out);
}

/* A server on the fixture's unix socket for this uid (NULL opts: the defaults). */
static struct http_server *start_unix(const char *path, const struct http_server_options *opts)
{
	struct http_server *s = NULL;
	struct err e = {0};

	assert_int_equal(http_server_start_unix_opts(path, 0600, geteuid(), routes,
	                                             ARRAY_SIZE(routes), (void *)"ctx", opts, &s,
	                                             &e),
	                 0);
	return s;
}

static void test_unix_socket(void **state)
{
	struct unix_fixture *f = *state;
	struct http_server *s = NULL;
	struct err e = {0};
	struct stat st;
	char out[RESP_MAX], want[64];
	struct http_server_options one_thread = {.threads = 1, .max_connections = 4};

	/* Root would be let in whatever the allowed uid: make the check real. */
	assert_int_equal(http_server_start_unix_opts(f->path, 0600, geteuid(), routes,
	                                             ARRAY_SIZE(routes), (void *)"ctx", &one_thread,
	                                             &s, &e),
	                 0);
	assert_int_equal(http_server_port(s), 0);
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);

	assert_int_equal(unix_request(f->path,
	                              "GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	                              out, sizeof(out)),
	                 200);
	snprintf(want, sizeof(want), "uid=%d known=1", (int)geteuid());
	assert_string_equal(body_of(out), want);
	assert_int_equal(unix_request(f->path,
	                              "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
	                              "Connection: close\r\n\r\nbody",
	                              out, sizeof(out)),
	                 200);
	assert_string_equal(body_of(out), "POST /webhook - 4 ctx\nbody");

	http_server_stop(s);
	assert_int_equal(lstat(f->path, &st), -1);
	assert_int_equal(errno, ENOENT);
}

/* Fork a child that becomes nobody and asks for path; returns its status (or -errno). */
static int request_as_nobody(const char *path)
{
	int pipefd[2];
	pid_t pid;
	int status = 0, result = -1000;

	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static const char req[] =
		        "GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
		char buf[512];
		int r = -1;

		close(pipefd[0]);
		if (setgroups(0, NULL) == 0 && setgid(NOBODY) == 0 && setuid(NOBODY) == 0 &&
		    getuid() == NOBODY) {
			int fd = connect_unix(path);
			if (fd < 0) {
				r = fd;
			} else {
				ssize_t n, len = 0;
				(void)send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
				while (len < (ssize_t)sizeof(buf) - 1 &&
				       (n = read(fd, buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
					len += n;
				buf[len] = '\0';
				r = status_of(buf);
			}
		}
		(void)write(pipefd[1], &r, sizeof(r));
		_exit(0);
	}
	close(pipefd[1]);
	assert_int_equal(read(pipefd[0], &result, sizeof(result)), (ssize_t)sizeof(result));
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return result;
}

static void test_unix_peer_uid(void **state)
{
	struct unix_fixture *f = *state;
	struct http_server *s = NULL;
	struct err e = {0};
	char out[RESP_MAX];
	int before;

	if (geteuid() != 0)
		skip();
	/* Let nobody reach the directory so only the server's check stands in the way. */
	assert_int_equal(chmod(f->dir, 0711), 0);

	/* Mode 0600: the file system already refuses nobody. */
	assert_int_equal(http_server_start_unix(f->path, 0600, 4321, routes, ARRAY_SIZE(routes),
	                                        (void *)"ctx", &s, &e),
	                 0);
	assert_int_equal(request_as_nobody(f->path), -EACCES);
	http_server_stop(s);

	/* Mode 0666 and another allowed uid: SO_PEERCRED refuses nobody with 403. */
	before = atomic_load(&handler_calls);
	assert_int_equal(http_server_start_unix(f->path, 0666, 4321, routes, ARRAY_SIZE(routes),
	                                        (void *)"ctx", &s, &e),
	                 0);
	assert_int_equal(request_as_nobody(f->path), 403);
	assert_int_equal(atomic_load(&handler_calls), before);
	/* Root is always served, whatever the allowed uid. */
	assert_int_equal(unix_request(f->path,
	                              "GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	                              out, sizeof(out)),
	                 200);
	http_server_stop(s);

	/* The allowed uid itself is served. */
	assert_int_equal(http_server_start_unix(f->path, 0666, NOBODY, routes, ARRAY_SIZE(routes),
	                                        (void *)"ctx", &s, &e),
	                 0);
	assert_int_equal(request_as_nobody(f->path), 200);
	http_server_stop(s);
}

static void test_unix_existing_file(void **state)
{
	struct unix_fixture *f = *state;
	struct http_server *s = NULL, *s2 = NULL;
	struct err e = {0};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char out[RESP_MAX], longpath[200];
	int fd;

	/* A regular file is never removed. */
	fd = open(f->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(
	        http_server_start_unix(f->path, 0600, 0, routes, ARRAY_SIZE(routes), NULL, &s, &e),
	        -EEXIST);
	assert_null(s);
	assert_int_equal(access(f->path, F_OK), 0);
	unlink(f->path);

	/* A stale socket (its server died without cleaning up) is replaced. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	str_copy(sa.sun_path, f->path, sizeof(sa.sun_path));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(http_server_start_unix(f->path, 0600, 0, routes, ARRAY_SIZE(routes),
	                                        (void *)"ctx", &s, &e),
	                 0);

	/* A live one is not. */
	assert_int_equal(
	        http_server_start_unix(f->path, 0600, 0, routes, ARRAY_SIZE(routes), NULL, &s2, &e),
	        -EADDRINUSE);
	assert_null(s2);
	assert_int_equal(
	        unix_request(f->path,
	                     "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", out,
	                     sizeof(out)),
	        200);

	/* Stop leaves alone a socket file that is no longer ours. */
	assert_int_equal(unlink(f->path), 0);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	http_server_stop(s);
	assert_int_equal(access(f->path, F_OK), 0);
	close(fd);
	unlink(f->path);

	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(
	        http_server_start_unix(longpath, 0600, 0, routes, ARRAY_SIZE(routes), NULL, &s, &e),
	        -ENAMETOOLONG);
}

/* ---- load (issue 8, finding 5) --------------------------------------------- */

#define DRIPPERS 200
#define BURST    300

/* Whether the server has closed fd (EOF or reset), without waiting. */
static bool is_closed(int fd)
{
	char tmp[512];
	ssize_t n;

	for (;;) {
		n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
		if (n > 0)
			continue; /* a 408 or the like: read on to the end */
		return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
	}
}

/* One GET /healthz on a fresh unix connection: its status, or -1; *ret_s its time. */
static int timed_unix_get(const char *path, double *ret_s)
{
	char out[4096];
	double t0 = now_s();
	int fd = connect_unix(path), st = -1;

	if (fd >= 0) {
		send_str(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
		read_all(fd, out, sizeof(out), 3000);
		close(fd);
		st = status_of(out);
	}
	*ret_s = now_s() - t0;
	return st;
}

/*
 * 200 clients that send a request line, then a header line a second, never
 * the end of their head (the idle timeout never fires on them). Each is
 * closed by the header deadline (default 5 s), none is refused at connect,
 * and requests that come meanwhile are answered at once.
 */
static void test_unix_slow_heads(void **state)
{
	struct unix_fixture *f = *state;
	struct http_server *s = NULL;
	int fds[DRIPPERS];
	double opened[DRIPPERS], closed_after[DRIPPERS], t0, last_drip = 0, worst = 0;
	int refused = 0, asked = 0, answered = 0;

	s = start_unix(f->path, NULL);
	for (int i = 0; i < DRIPPERS; i++) {
		fds[i] = connect_unix_nowait(f->path);
		opened[i] = now_s();
		closed_after[i] = -1;
		if (fds[i] < 0) {
			refused++;
			continue;
		}
		send_str(fds[i], "GET /healthz HTTP/1.1\r\nHost: x\r\n");
	}
	t0 = now_s();
	while (now_s() - t0 < 8.0) {
		double took;

		if (now_s() - last_drip >= 1.0) {
			last_drip = now_s();
			for (int i = 0; i < DRIPPERS; i++)
				if (fds[i] >= 0 && closed_after[i] < 0)
					(void)send(fds[i], "X-Drip: x\r\n", 11,
					           MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		for (int i = 0; i < DRIPPERS; i++)
			if (fds[i] >= 0 && closed_after[i] < 0 && is_closed(fds[i]))
				closed_after[i] = now_s() - opened[i];
		asked++;
		if (timed_unix_get(f->path, &took) == 200)
			answered++;
		if (took > worst)
			worst = took;
		usleep(200 * 1000);
	}
	int still_open = 0;
	double latest = 0;
	for (int i = 0; i < DRIPPERS; i++) {
		if (fds[i] < 0)
			continue;
		if (closed_after[i] < 0)
			still_open++;
		else if (closed_after[i] > latest)
			latest = closed_after[i];
		close(fds[i]);
	}
	print_message("slow heads: %d refused, %d still open, last closed after %.1fs; "
	              "%d/%d requests answered, slowest %.2fs\n",
	              refused, still_open, latest, answered, asked, worst);
	assert_int_equal(refused, 0);
	assert_int_equal(answered, asked);
	assert_true(worst < 1.0);
	assert_int_equal(still_open, 0);
	assert_true(latest < 5.0 + 1.5);
	http_server_stop(s);
}

/*
 * 300 requests at once, each connecting as curl does (no waiting at
 * connect), to a handler that takes 20 ms on 4 threads: every one is
 * queued, none refused, and all are answered.
 */
static void test_unix_burst(void **state)
{
	struct unix_fixture *f = *state;
	struct http_server *s = NULL;
	static int fds[BURST];
	char out[4096];
	int refused = 0, answered = 0;
	double t0;

	s = start_unix(f->path, NULL);
	t0 = now_s();
	for (int i = 0; i < BURST; i++) {
		fds[i] = connect_unix_nowait(f->path);
		if (fds[i] < 0) {
			refused++;
			continue;
		}
		send_str(fds[i], "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	}
	for (int i = 0; i < BURST; i++) {
		if (fds[i] < 0)
			continue;
		read_all(fds[i], out, sizeof(out), (int)(1000 * (t0 + 20.0 - now_s())));
		if (status_of(out) == 200)
			answered++;
		close(fds[i]);
	}
	print_message("burst: %d refused at connect, %d/%d answered in %.1fs\n", refused, answered,
	              BURST, now_s() - t0);
	assert_int_equal(refused, 0);
	assert_int_equal(answered, BURST);
	http_server_stop(s);
}

/*
 * K requests set aside by their handler hold no thread: on a server with
 * one thread, another request is answered at once while they wait; each
 * then gets its own answer from the test thread; answers that come from
 * the handler itself or race its return arrive too; one nobody answers
 * gets the handler's 504 at its deadline, and a late answer is refused.
 */
static void test_deferred(void **state)
{
	struct unix_fixture *f = *state;
	struct http_server_options one = {.threads = 1, .max_connections = 64};
	struct http_server *s = NULL;
	char out[RESP_MAX], req[128], want[32];
	int fds[8], racers[20];
	int64_t id;
	double took, t0;

	s = start_unix(f->path, &one);
	for (int i = 0; i < (int)ARRAY_SIZE(fds); i++) {
		fds[i] = connect_unix(f->path);
		assert_true(fds[i] >= 0);
		snprintf(req, sizeof(req),
		         "GET /defer?id=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", i);
		send_str(fds[i], req);
	}
	assert_true(wait_parked((int)ARRAY_SIZE(fds), 3.0));
	assert_int_equal(timed_unix_get(f->path, &took), 200);
	assert_true(took < 0.5);
	while ((f->d = unpark(&id)) != NULL) {
		snprintf(want, sizeof(want), "answer %" PRId64, id);
		assert_int_equal(answer_with(f->d, want), 0);
	}
	for (int i = 0; i < (int)ARRAY_SIZE(fds); i++) {
		read_all(fds[i], out, sizeof(out), 3000);
		close(fds[i]);
		snprintf(want, sizeof(want), "answer %d", i);
		assert_int_equal(status_of(out), 200);
		assert_string_equal(body_of(out), want);
	}

	/* Answers from the handler itself, and from threads racing its return. */
	assert_int_equal(unix_request(f->path,
	                              "GET /defer?self HTTP/1.1\r\nHost: x\r\n"
	                              "Connection: close\r\n\r\n",
	                              out, sizeof(out)),
	                 200);
	assert_string_equal(body_of(out), "self");
	for (int i = 0; i < (int)ARRAY_SIZE(racers); i++) {
		racers[i] = connect_unix(f->path);
		assert_true(racers[i] >= 0);
		send_str(racers[i], "GET /defer?thread HTTP/1.1\r\nHost: x\r\n"
		                    "Connection: close\r\n\r\n");
	}
	for (int i = 0; i < (int)ARRAY_SIZE(racers); i++) {
		read_all(racers[i], out, sizeof(out), 3000);
		close(racers[i]);
		assert_int_equal(status_of(out), 200);
		assert_string_equal(body_of(out), "thread");
	}

	/* Nobody answers: the handler's own answer at the deadline, then a late one is refused. */
	t0 = now_s();
	assert_int_equal(unix_request(f->path,
	                              "GET /defer?ms=300&id=99 HTTP/1.1\r\nHost: x\r\n"
	                              "Connection: close\r\n\r\n",
	                              out, sizeof(out)),
	                 504);
	took = now_s() - t0;
	assert_true(took >= 0.29 && took < 1.5);
	assert_string_equal(body_of(out), "{\"error\":\"no answer in time\"}");
	f->d = unpark(&id);
	assert_non_null(f->d);
	assert_int_equal(id, 99);
	assert_int_equal(answer_with(f->d, "late"), -EALREADY);

	/* On keep-alive: the answer, then the next request on the same connection. */
	int fd = connect_unix(f->path);
	send_str(fd, "GET /defer?id=7 HTTP/1.1\r\nHost: x\r\n\r\n"
	             "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	assert_true(wait_parked(1, 3.0));
	f->d = unpark(&id);
	assert_int_equal(answer_with(f->d, "first"), 0);
	read_all(fd, out, sizeof(out), 3000);
	close(fd);
	assert_int_equal(status_of(out), 200);
	assert_non_null(strstr(out, "\r\n\r\nfirst"));
	assert_non_null(strstr(out, "\r\n\r\nok\n"));
	http_server_stop(s);
}

/*
 * The connection's state machine under pipelining, byte splits and every
 * framing: 200 requests of four kinds (GET, HEAD, a POST with
 * Content-Length, a chunked POST in pieces of random sizes) in one stream,
 * sent in random slices with pauses, so heads and bodies straddle reads;
 * 200 answers come back in order, each the one its request asked for (a
 * HEAD's without its body).
 */
static void test_pipelined_stream(void **state)
{
	struct http_server *s = start_tcp(NULL);
	int fd = connect_tcp(http_server_port(s));
	struct buf req = BUF_INIT(4u << 20), want = BUF_INIT(4u << 20);
	static char got[4u << 20];
	size_t off = 0, n;

	srand(7);
	for (int i = 0; i < 200; i++) {
		int kind = rand() % 4;
		const char *last = i == 199 ? "Connection: close\r\n" : "";
		char body[1024];
		size_t len = (size_t)(rand() % 1000);

		for (size_t k = 0; k < len; k++)
			body[k] = (char)('a' + (i + (int)k) % 26);
		body[len] = '\0';
		if (kind == 0) {
			buf_printf(&req, "GET /healthz HTTP/1.1\r\nHost: x\r\n%s\r\n", last);
			buf_puts(&want, "200|ok\n|");
		} else if (kind == 1) {
			buf_printf(&req, "HEAD /healthz HTTP/1.1\r\nHost: x\r\n%s\r\n", last);
			buf_puts(&want, "200||");
		} else if (kind == 2) {
			buf_printf(&req,
			           "POST /webhook?i=%d HTTP/1.1\r\nHost: x\r\n%sContent-Length: "
			           "%zu\r\n\r\n%s",
			           i, last, len, body);
			buf_printf(&want, "200|POST /webhook i=%d %zu ctx\n%s|", i, len, body);
		} else {
			buf_printf(&req,
			           "POST /webhook?i=%d HTTP/1.1\r\nHost: x\r\n%s"
			           "Transfer-Encoding: chunked\r\n\r\n",
			           i, last);
			for (size_t k = 0; k < len;) {
				size_t piece = 1 + (size_t)rand() % 300;

				if (piece > len - k)
					piece = len - k;
				buf_printf(&req, "%zx\r\n%.*s\r\n", piece, (int)piece, body + k);
				k += piece;
			}
			buf_puts(&req, "0\r\n\r\n");
			buf_printf(&want, "200|POST /webhook i=%d %zu ctx\n%s|", i, len, body);
		}
	}
	for (size_t at = 0; at < req.len; at += n) {
		n = 1 + (size_t)rand() % 700;
		if (n > req.len - at)
			n = req.len - at;
		send_all(fd, req.data + at, n);
		if (rand() % 8 == 0)
			usleep(1000);
	}
	n = read_all(fd, got, sizeof(got), 10000);
	close(fd);
	/* the answers as "status|body|", a HEAD's body left out as the server did */
	struct buf seen = BUF_INIT(4u << 20);
	while (off < n) {
		char *end = strstr(got + off, "\r\n\r\n"), *cl;
		size_t body_len = 0;
		bool head_only;

		assert_non_null(end);
		*end = '\0';
		cl = strcasestr(got + off, "\r\nContent-Length: ");
		if (cl)
			body_len = (size_t)strtoul(cl + 18, NULL, 10);
		/* the only 200 with a length and no body is a HEAD's ("ok\n" is 3) */
		head_only =
		        body_len == 3 && (end + 4 >= got + n || strncmp(end + 4, "ok\n", 3) != 0);
		buf_printf(&seen, "%d|", status_of(got + off));
		if (!head_only)
			buf_append(&seen, end + 4, body_len);
		buf_puts(&seen, "|");
		off = (size_t)(end + 4 - got) + (head_only ? 0 : body_len);
	}
	assert_string_equal(buf_str(&seen), buf_str(&want));
	buf_release(&seen);
	buf_release(&req);
	buf_release(&want);
	http_server_stop(s);
}

/* Park one request: its answer from this thread, read on fd up to want. */
static void answer_parked(int fd, int64_t want_id, const char *text)
{
	char out[RESP_MAX];
	struct http_deferred *d;
	int64_t id = -1;

	assert_true(wait_parked(1, 3.0));
	d = unpark(&id);
	assert_int_equal(id, want_id);
	assert_int_equal(answer_with(d, text), 0);
	if (fd >= 0) {
		assert_true(read_until(fd, out, sizeof(out), text, 3000));
		assert_int_equal(status_of(out), 200);
	}
}

/*
 * On TCP the answer to a deferred request goes out from the answering
 * thread itself, and the connection then takes its next request without
 * its loop having been told: fifty requests one after the other on one
 * keep-alive connection, each answered from the test thread; two pipelined
 * ones (the second came while the first waited: the loop sends the answer
 * and goes on); and one whose peer shut its side down after asking (its
 * answer, then the connection closes).
 */
static void test_deferred_tcp(void **state)
{
	struct http_server_options one = {.threads = 1};
	struct http_server *s = start_tcp(&one);
	int port = http_server_port(s), fd = connect_tcp(port);
	char out[RESP_MAX], req[128], want[32];
	double t0;

	for (int i = 0; i < 50; i++) {
		snprintf(req, sizeof(req), "GET /defer?id=%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
		send_str(fd, req);
		snprintf(want, sizeof(want), "answer %d", i);
		answer_parked(fd, i, want);
	}
	send_str(fd, "GET /defer?id=100 HTTP/1.1\r\nHost: x\r\n\r\n"
	             "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
	answer_parked(-1, 100, "answer 100");
	assert_true(read_until(fd, out, sizeof(out), "\r\n\r\nok\n", 3000));
	assert_non_null(strstr(out, "answer 100"));
	assert_true(strstr(out, "answer 100") < strstr(out, "ok\n"));

	send_str(fd, "GET /defer?id=101 HTTP/1.1\r\nHost: x\r\n\r\n");
	shutdown(fd, SHUT_WR);
	answer_parked(-1, 101, "answer 101");
	t0 = now_s();
	read_all(fd, out, sizeof(out), 3000);
	assert_true(now_s() - t0 < 2.0); /* closed, not left to the idle timeout */
	assert_non_null(strstr(out, "answer 101"));
	close(fd);
	http_server_stop(s);
}

/*
 * At most max_connections less the reserve are set aside (8: 6); stopping
 * the server with requests set aside answers them 503, promptly; answers
 * after that are refused and free what they hold.
 */
static void test_deferred_limit_and_stop(void **state)
{
	struct unix_fixture *f = *state;
	struct http_server_options small = {.threads = 2, .max_connections = 8};
	struct http_server *s = NULL;
	char out[RESP_MAX];
	int fds[6], extra;
	int64_t id;
	double t0;

	s = start_unix(f->path, &small);
	for (int i = 0; i < (int)ARRAY_SIZE(fds); i++) {
		fds[i] = connect_unix(f->path);
		assert_true(fds[i] >= 0);
		send_str(fds[i], "GET /defer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	}
	assert_true(wait_parked((int)ARRAY_SIZE(fds), 3.0));
	extra = connect_unix(f->path);
	send_str(extra, "GET /defer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	read_all(extra, out, sizeof(out), 3000);
	close(extra);
	assert_int_equal(status_of(out), 503);
	assert_string_equal(body_of(out), "{\"error\":\"busy\"}");

	t0 = now_s();
	http_server_stop(s);
	assert_true(now_s() - t0 < 1.5);
	for (int i = 0; i < (int)ARRAY_SIZE(fds); i++) {
		read_all(fds[i], out, sizeof(out), 2000);
		close(fds[i]);
		/* the 503 is sent when the connection gets to it before it closes */
		assert_true(status_of(out) == 503 || status_of(out) == -1);
	}
	while ((f->d = unpark(&id)) != NULL)
		assert_int_equal(answer_with(f->d, "too late"), -EALREADY);
}

/*
 * The header deadline is a real one: a head dripped a line every 200 ms is
 * cut at 1 s, though the idle timeout (10 s) never fires; a keep-alive
 * connection that starts no next request is closed the same way; a head
 * that completes in time is served.
 */
static void test_header_deadline(void **state)
{
	struct http_server_options o = {.header_timeout_s = 1, .idle_timeout_s = 10};
	struct http_server *s = start_tcp(&o);
	int port = http_server_port(s);
	char out[RESP_MAX];
	double t0, waited = -1;
	int fd;

	fd = connect_tcp(port);
	t0 = now_s();
	send_str(fd, "GET /healthz HTTP/1.1\r\n");
	while (now_s() - t0 < 4.0) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 200) == 1 || send(fd, "X: y\r\n", 6, MSG_NOSIGNAL) < 0) {
			waited = now_s() - t0;
			break;
		}
	}
	close(fd);
	assert_true(waited >= 0.9 && waited < 2.0);

	fd = connect_tcp(port);
	send_str(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
	read_all(fd, out, sizeof(out), 300);
	assert_int_equal(status_of(out), 200);
	waited = wait_closed(fd, 4.0);
	close(fd);
	assert_true(waited >= 0.5 && waited < 2.0);

	fd = connect_tcp(port);
	send_str(fd, "GET /healthz HTTP/1.1\r\n");
	for (int i = 0; i < 3; i++) {
		usleep(200 * 1000);
		send_str(fd, "X: y\r\n");
	}
	send_str(fd, "Host: x\r\nConnection: close\r\n\r\n");
	read_all(fd, out, sizeof(out), 3000);
	close(fd);
	assert_int_equal(status_of(out), 200);
	http_server_stop(s);
}

/* What the server parses itself (the fuzz target's functions), on known cases. */
static void test_route_and_query(void **state)
{
	const struct http_route *rt = NULL;
	struct http_route body_route = {"POST", "/b", h_ok, 1024}, none = {"GET", "/n", h_ok, 0};
	struct http_query q, canary = {.n = 77};
	char allow[64];
	char many[200] = "";

	assert_int_equal(http_route_find(routes, ARRAY_SIZE(routes), "GET", "/healthz", &rt), 0);
	assert_ptr_equal(rt->fn, h_ok);
	assert_int_equal(http_route_find(routes, ARRAY_SIZE(routes), "HEAD", "/healthz", &rt), 0);
	assert_int_equal(http_route_find(routes, ARRAY_SIZE(routes), "POST", "/healthz", &rt),
	                 -EOPNOTSUPP);
	assert_int_equal(http_route_find(routes, ARRAY_SIZE(routes), "GET", "/nope", &rt), -ENOENT);
	assert_int_equal(
	        http_route_find(routes, ARRAY_SIZE(routes), "DELETE", "/v1/runners/x", &rt), 0);
	assert_string_equal(rt->path, "/v1/runners/*");
	assert_int_equal(http_route_find(routes, ARRAY_SIZE(routes), "DELETE", "/v1/runners/", &rt),
	                 -ENOENT);

	assert_int_equal(
	        http_route_allow(routes, ARRAY_SIZE(routes), "/v1/runners/x", allow, sizeof(allow)),
	        strlen("DELETE, POST"));
	assert_string_equal(allow, "DELETE, POST");
	http_route_allow(routes, ARRAY_SIZE(routes), "/healthz", allow, sizeof(allow));
	assert_string_equal(allow, "GET, HEAD");
	http_route_allow(routes, ARRAY_SIZE(routes), "/healthz", allow, 5);
	assert_string_equal(allow, "GET");
	http_route_allow(routes, ARRAY_SIZE(routes), "/healthz", allow, 3);
	assert_string_equal(allow, "");

	assert_int_equal(http_body_admit(&body_route, NULL, NULL), 0);
	assert_int_equal(http_body_admit(&body_route, "1024", NULL), 0);
	assert_int_equal(http_body_admit(&body_route, "1025", NULL), 413);
	assert_int_equal(http_body_admit(&body_route, "99999999999999999999999", NULL), 413);
	assert_int_equal(http_body_admit(&body_route, "", NULL), 400);
	assert_int_equal(http_body_admit(&body_route, "+5", NULL), 400);
	assert_int_equal(http_body_admit(&body_route, "-1", NULL), 400);
	assert_int_equal(http_body_admit(&body_route, " 5", NULL), 400);
	assert_int_equal(http_body_admit(&body_route, NULL, "chunked"), 0);
	assert_int_equal(http_body_admit(&none, "0", NULL), 0);
	assert_int_equal(http_body_admit(&none, "1", NULL), 413);
	assert_int_equal(http_body_admit(&none, NULL, "chunked"), 413);

	assert_int_equal(http_query_parse("a=b%20c&flag&&x=%41%42&a=2&=v&e=f=g&%62=1", &q), 0);
	assert_int_equal(q.n, 7);
	assert_string_equal(http_query_get(&q, "a"), "b c");
	assert_string_equal(http_query_get(&q, "flag"), "");
	assert_string_equal(http_query_get(&q, "x"), "AB");
	assert_string_equal(http_query_get(&q, ""), "v");
	assert_string_equal(http_query_get(&q, "e"), "f=g");
	assert_string_equal(http_query_get(&q, "b"), "1");
	assert_null(http_query_get(&q, "missing"));
	http_query_release(&q);
	assert_int_equal(http_query_parse(NULL, &q), 0);
	assert_int_equal(q.n, 0);
	http_query_release(&q);
	http_query_release(NULL);

	const char *bad[] = {"a=%zz", "a=%4", "a=%", "a=%00", "%00=1", "a=1&b=%g1"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		q = canary;
		assert_int_equal(http_query_parse(bad[i], &q), -EINVAL);
		assert_int_equal(q.n, 77); /* untouched on failure */
	}
	for (int i = 0; i <= HTTP_QUERY_MAX_ARGS; i++)
		str_copy(many + strlen(many), i ? "&a" : "a", sizeof(many) - strlen(many));
	q = canary;
	assert_int_equal(http_query_parse(many, &q), -E2BIG);
	assert_int_equal(q.n, 77);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_listen),
	        cmocka_unit_test(test_response_helpers),
	        cmocka_unit_test(test_dispatch),
	        cmocka_unit_test(test_not_found_not_allowed),
	        cmocka_unit_test(test_body_complete),
	        cmocka_unit_test(test_too_large),
	        cmocka_unit_test(test_malformed),
	        cmocka_unit_test(test_slow_clients),
	        cmocka_unit_test(test_per_ip_limit),
	        cmocka_unit_test(test_stop_is_prompt),
	        cmocka_unit_test(test_ipv6),
	        cmocka_unit_test(test_start_errors),
	        cmocka_unit_test_setup_teardown(test_unix_socket, unix_setup, unix_teardown),
	        cmocka_unit_test_setup_teardown(test_unix_peer_uid, unix_setup, unix_teardown),
	        cmocka_unit_test_setup_teardown(test_unix_existing_file, unix_setup, unix_teardown),
	        cmocka_unit_test_setup_teardown(test_unix_slow_heads, unix_setup, unix_teardown),
	        cmocka_unit_test_setup_teardown(test_unix_burst, unix_setup, unix_teardown),
	        cmocka_unit_test_setup_teardown(test_deferred, unix_setup, unix_teardown),
	        cmocka_unit_test_setup_teardown(test_deferred_limit_and_stop, unix_setup,
	                                        unix_teardown),
	        cmocka_unit_test(test_deferred_tcp),
	        cmocka_unit_test(test_pipelined_stream),
	        cmocka_unit_test(test_header_deadline),
	        cmocka_unit_test(test_route_and_query),
	};

	/* SIGPIPE stays fatal: the server must never raise it on a closed peer. */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
