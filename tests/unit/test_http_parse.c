/*
 * Unit tests of src/http/http_parse.c, the server's own request parser:
 * heads valid and refused (with the exact status), every prefix of a head,
 * the limits, what the fields say about framing, keep-alive and Expect, and
 * the chunked decoder fed whole, byte by byte and split anywhere. Every input
 * is parsed from a heap copy of exactly its bytes, so ASan sees an over-read.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "http/http_parse.h"

/* ---- helpers ------------------------------------------------------------- */

static char *copy_of(const char *s, size_t n)
{
	char *p = malloc(n ? n : 1);

	assert_non_null(p);
	memcpy(p, s, n);
	return p;
}

/* Parse s[0..n) from a copy kept in *ret_buf (the head's strings point into it). */
static int parse_n(const char *s, size_t n, struct http_head *h, char **ret_buf)
{
	*ret_buf = copy_of(s, n);
	return http_head_parse(*ret_buf, n, h);
}

static int parse(const char *s, struct http_head *h, char **ret_buf)
{
	return parse_n(s, strlen(s), h, ret_buf);
}

/* The result for s, checking that a refusal or a 0 leaves buf and the head alone. */
static int status_n(const char *s, size_t n)
{
	struct http_head h;
	char *buf = copy_of(s, n);
	int r;

	memset(&h, 0x5a, sizeof(h));
	r = http_head_parse(buf, n, &h);
	if (r <= 0) {
		assert_memory_equal(buf, s, n);
		assert_int_equal(h.n_fields, (size_t)0x5a5a5a5a5a5a5a5aull);
	}
	free(buf);
	return r;
}

static int status(const char *s)
{
	return status_n(s, strlen(s));
}

/* A head of "GET / HTTP/1.1" and n fields "F<i>: v". */
static char *head_with_fields(size_t n)
{
	struct buf b = BUF_INIT(1 << 20);

	assert_int_equal(buf_puts(&b, "GET / HTTP/1.1\r\n"), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(buf_printf(&b, "F%zu: v%zu\r\n", i, i), 0);
	assert_int_equal(buf_puts(&b, "\r\n"), 0);
	return buf_detach(&b, NULL);
}

/* ---- valid heads ----------------------------------------------------------- */

static void test_minimal_get(void **state)
{
	const char *s = "GET / HTTP/1.1\r\n\r\n";
	struct http_head h;
	char *buf;

	assert_int_equal(parse(s, &h, &buf), (int)strlen(s));
	assert_string_equal(h.method, "GET");
	assert_string_equal(h.path, "/");
	assert_null(h.query);
	assert_int_equal(h.minor, 1);
	assert_int_equal(h.n_fields, 0);
	assert_null(http_head_field(&h, "Host"));
	free(buf);
}

static void test_post_with_fields(void **state)
{
	const char *s = "POST /v1/runners/abc?x=1&y=%41 HTTP/1.0\r\n"
	                "Host: example.org\r\n"
	                "content-type:application/json\r\n"
	                "X-Ows: \t a  b \t \r\n"
	                "X-Empty:\r\n"
	                "X-Blank:   \t\r\n"
	                "X-High: caf\xc3\xa9\r\n"
	                "host: second\r\n"
	                "\r\n";
	struct http_head h;
	char *buf;

	assert_int_equal(parse(s, &h, &buf), (int)strlen(s));
	assert_string_equal(h.method, "POST");
	assert_string_equal(h.path, "/v1/runners/abc");
	assert_string_equal(h.query, "x=1&y=%41");
	assert_int_equal(h.minor, 0);
	assert_int_equal(h.n_fields, 7);
	assert_string_equal(h.fields[0].name, "Host");
	assert_string_equal(h.fields[0].value, "example.org");
	assert_string_equal(h.fields[1].name, "content-type");
	assert_string_equal(h.fields[1].value, "application/json");
	assert_string_equal(h.fields[2].value, "a  b");
	assert_string_equal(h.fields[3].value, "");
	assert_string_equal(h.fields[4].value, "");
	assert_string_equal(h.fields[5].value, "caf\xc3\xa9");
	assert_string_equal(h.fields[6].name, "host");
	/* lookups ignore case and find the first */
	assert_string_equal(http_head_field(&h, "HOST"), "example.org");
	assert_string_equal(http_head_field(&h, "Content-Type"), "application/json");
	assert_string_equal(http_head_field(&h, "x-empty"), "");
	assert_null(http_head_field(&h, "X-Absent"));
	assert_null(http_head_field(&h, "Hos"));
	free(buf);
}

static void test_methods_are_tokens(void **state)
{
	const char *ok[] = {
	        "DELETE /x HTTP/1.1\r\n\r\n",
	        "M-SEARCH /x HTTP/1.1\r\n\r\n",
	        "a!#$%&'*+-.^_`|~9 /x HTTP/1.1\r\n\r\n",
	};

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		assert_int_equal(status(ok[i]), (int)strlen(ok[i]));
}

static void test_path_and_query(void **state)
{
	struct {
		const char *head, *path, *query;
	} cases[] = {
	        {"GET /a%20b/%2F%41 HTTP/1.1\r\n\r\n", "/a b//A", NULL},
	        {"GET /%2f%2F HTTP/1.1\r\n\r\n", "///", NULL},
	        {"GET /x%ff HTTP/1.1\r\n\r\n", "/x\xff", NULL},
	        {"GET /p?q=%zz HTTP/1.1\r\n\r\n", "/p", "q=%zz"},
	        {"GET /p?a?b HTTP/1.1\r\n\r\n", "/p", "a?b"},
	        {"GET /p? HTTP/1.1\r\n\r\n", "/p", ""},
	        {"GET /%3F?%3F HTTP/1.1\r\n\r\n", "/?", "%3F"},
	        {"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", "/caf\xc3\xa9", NULL},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct http_head h;
		char *buf;

		assert_int_equal(parse(cases[i].head, &h, &buf), (int)strlen(cases[i].head));
		assert_string_equal(h.path, cases[i].path);
		if (cases[i].query)
			assert_string_equal(h.query, cases[i].query);
		else
			assert_null(h.query);
		free(buf);
	}
}

static void test_head_then_body(void **state)
{
	const char *head = "POST /webhook HTTP/1.1\r\nContent-Length: 5\r\n\r\n";
	const char *s = "POST /webhook HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
	                "GET / HTTP/1.1\r\n\r\n";
	size_t n = strlen(head);
	struct http_head h;
	char *buf;

	assert_int_equal(parse(s, &h, &buf), (int)n);
	assert_memory_equal(buf + n, s + n, strlen(s) - n);
	assert_string_equal(http_head_field(&h, "content-length"), "5");
	free(buf);
	/* body bytes that look like an error do not matter either */
	assert_int_equal(status_n("GET / HTTP/1.1\r\n\r\n\x00\x01\r\n", 22), 18);
}

/* ---- refusals -------------------------------------------------------------- */

static const struct {
	const char *head;
	int status;
} refused[] = {
        {"\r\nGET / HTTP/1.1\r\n\r\n", -400},
        {" GET / HTTP/1.1\r\n\r\n", -400},
        {"GET  / HTTP/1.1\r\n\r\n", -400},
        {"G(T / HTTP/1.1\r\n\r\n", -400},
        {"G\xc3\x89T / HTTP/1.1\r\n\r\n", -400},
        {"GET\t/ HTTP/1.1\r\n\r\n", -400},
        {"GET * HTTP/1.1\r\n\r\n", -400},
        {"GET http://a/ HTTP/1.1\r\n\r\n", -400},
        {"GET a/ HTTP/1.1\r\n\r\n", -400},
        {"GET /a\x7f HTTP/1.1\r\n\r\n", -400},
        {"GET /a\tb HTTP/1.1\r\n\r\n", -400},
        {"GET /a\x01 HTTP/1.1\r\n\r\n", -400},
        {"GET /?a\x7f HTTP/1.1\r\n\r\n", -400},
        {"GET /%zz HTTP/1.1\r\n\r\n", -400},
        {"GET /%4 HTTP/1.1\r\n\r\n", -400},
        {"GET /%4?x HTTP/1.1\r\n\r\n", -400},
        {"GET /% HTTP/1.1\r\n\r\n", -400},
        {"GET /%00 HTTP/1.1\r\n\r\n", -400},
        {"GET /\r\n\r\n", -400},
        {"GET / \r\n\r\n", -400},
        {"GET / http/1.1\r\n\r\n", -400},
        {"GET / HTTP/1.1 \r\n\r\n", -400},
        {"GET / HTTP/1.\r\n\r\n", -400},
        {"GET / HTTP/.1\r\n\r\n", -400},
        {"GET / HTTP/1\r\n\r\n", -400},
        {"GET / HTTP/1.1.1\r\n\r\n", -400},
        {"GET / HTTP/1.1\n\r\n", -400},
        {"GET / HTTP/1.1\r\r\n\r\n", -400},
        {"GET / HTTP/1.1\rX", -400},
        {"GET / HTTP/1.1\r\nHost: a\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: a\r\n\n", -400},
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\r", -400},
        {"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\n: a\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\n\xff: a\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nA: \x1b[0m\r\n\r\n", -400},
        {"GET / HTTP/9.9\r\n\r\n", -505},
        {"GET / HTTP/2.0\r\n\r\n", -505},
        {"GET / HTTP/1.2\r\n\r\n", -505},
        {"GET / HTTP/0.9\r\n\r\n", -505},
        {"GET / HTTP/1.10\r\n\r\n", -505},
        {"GET / HTTP/01.1\r\n\r\n", -505},
};

static void test_refusals(void **state)
{
	assert_int_equal(status_n("\x00\x01", 2), -400);
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++)
		assert_int_equal(status(refused[i].head), refused[i].status);
	/* a NUL anywhere a field may not hold one */
	assert_int_equal(status_n("GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", 26), -400);
	assert_int_equal(status_n("GET /\0 HTTP/1.1\r\n\r\n", 19), -400);
	assert_int_equal(status_n("GET / HTTP/1.1\r\nA\0: b\r\n\r\n", 25), -400);
}

/* What is wrong is refused as soon as it came, and a prefix never disagrees. */
static void test_refusals_early(void **state)
{
	assert_int_equal(status_n("\x00", 1), -400);
	assert_int_equal(status("GET / HTTP/9.9\r\n"), -505);
	assert_int_equal(status("GET / HTTP/1.1\r\nHost : "), -400);
	assert_int_equal(status("GET /%0"), 0);
	assert_int_equal(status("GET /%00"), -400);
	assert_int_equal(status("GET / HTTP/9.9"), 0);
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		const char *s = refused[i].head;
		size_t n = strlen(s);

		for (size_t k = 0; k < n; k++) {
			int r = status_n(s, k);

			assert_true(r == 0 || r == refused[i].status);
		}
	}
}

/* ---- incomplete heads and limits ------------------------------------------- */

static void test_every_prefix(void **state)
{
	const char *s = "POST /a%2Fb?c=d HTTP/1.1\r\n"
	                "Host: h\r\n"
	                "X-Ows:  v  \r\n"
	                "X-Empty:\r\n"
	                "\r\n";
	size_t n = strlen(s);

	for (size_t k = 0; k < n; k++)
		assert_int_equal(status_n(s, k), 0);
	assert_int_equal(status_n(s, n), (int)n);
}

static void test_field_count(void **state)
{
	char *ok = head_with_fields(HTTP_MAX_FIELDS);
	char *over = head_with_fields(HTTP_MAX_FIELDS + 1);
	struct http_head h;
	char *buf;

	assert_int_equal(parse(ok, &h, &buf), (int)strlen(ok));
	assert_int_equal(h.n_fields, HTTP_MAX_FIELDS);
	assert_string_equal(h.fields[HTTP_MAX_FIELDS - 1].name, "F63");
	assert_string_equal(http_head_field(&h, "f63"), "v63");
	free(buf);
	assert_int_equal(status(over), -431);
	/* known as soon as a 65th field begins */
	assert_int_equal(status_n(over, strlen(ok) - 2), 0);
	assert_int_equal(status_n(over, strlen(ok) - 1), -431);
	free(ok);
	free(over);
}

/* "GET / HTTP/1.1\r\nX: aaa...\r\n\r\n" of exactly n bytes. */
static char *head_of_size(size_t n)
{
	const char *start = "GET / HTTP/1.1\r\nX: ", *end = "\r\n\r\n";
	size_t a = strlen(start), b = strlen(end);
	char *s = malloc(n + 1);

	assert_non_null(s);
	assert_true(n > a + b);
	memcpy(s, start, a);
	memset(s + a, 'a', n - a - b);
	memcpy(s + n - b, end, b);
	s[n] = '\0';
	return s;
}

static void test_head_size(void **state)
{
	char *fits = head_of_size(HTTP_HEAD_MAX);
	char *over = head_of_size(HTTP_HEAD_MAX + 1);
	char *longer = malloc(HTTP_HEAD_MAX + 100);

	assert_int_equal(status(fits), (int)HTTP_HEAD_MAX);
	assert_int_equal(status(over), -431);
	/* what follows a head that fits does not count */
	assert_non_null(longer);
	memcpy(longer, fits, HTTP_HEAD_MAX);
	memset(longer + HTTP_HEAD_MAX, 'b', 100);
	assert_int_equal(status_n(longer, HTTP_HEAD_MAX + 100), (int)HTTP_HEAD_MAX);
	/* no end yet: wait until HTTP_HEAD_MAX bytes came, then refuse */
	assert_int_equal(status_n(over, HTTP_HEAD_MAX - 1), 0);
	assert_int_equal(status_n(over, HTTP_HEAD_MAX), -431);
	memset(longer, 'G', HTTP_HEAD_MAX + 100);
	assert_int_equal(status_n(longer, HTTP_HEAD_MAX - 1), 0);
	assert_int_equal(status_n(longer, HTTP_HEAD_MAX + 100), -431);
	free(fits);
	free(over);
	free(longer);
}

/* ---- framing, keep-alive, expect --------------------------------------------- */

/* Parse s into *h and *buf, which must be valid. */
static void must_parse(const char *s, struct http_head *h, char **buf)
{
	assert_int_equal(parse(s, h, buf), (int)strlen(s));
}

static int framing_of(const char *fields, int minor, enum http_framing *ret, uint64_t *ret_len)
{
	char s[512];
	struct http_head h;
	char *buf;
	int r;

	assert_true((size_t)snprintf(s, sizeof(s), "POST / HTTP/1.%d\r\n%s\r\n", minor, fields) <
	            sizeof(s));
	must_parse(s, &h, &buf);
	r = http_head_framing(&h, ret, ret_len);
	free(buf);
	return r;
}

static void test_framing(void **state)
{
	static const struct {
		const char *fields;
		int minor, status;
		enum http_framing framing;
		uint64_t len;
	} cases[] = {
	        {"", 1, 0, HTTP_BODY_NONE, 0},
	        {"", 0, 0, HTTP_BODY_NONE, 0},
	        {"Host: a\r\n", 1, 0, HTTP_BODY_NONE, 0},
	        {"Content-Length: 10\r\n", 1, 0, HTTP_BODY_LENGTH, 10},
	        {"content-length:  0 \r\n", 0, 0, HTTP_BODY_LENGTH, 0},
	        {"Content-Length: 18446744073709551615\r\n", 1, 0, HTTP_BODY_LENGTH, UINT64_MAX},
	        {"Content-Length: 7\r\nCONTENT-LENGTH: 7\r\n", 1, 0, HTTP_BODY_LENGTH, 7},
	        {"Content-Length: 7\r\nContent-Length: 007\r\n", 1, 0, HTTP_BODY_LENGTH, 7},
	        {"Transfer-Encoding: chunked\r\n", 1, 0, HTTP_BODY_CHUNKED, 0},
	        {"transfer-encoding:   ChUnKeD  \r\n", 1, 0, HTTP_BODY_CHUNKED, 0},
	        {"Content-Length: 7\r\nContent-Length: 8\r\n", 1, -400, 0, 0},
	        {"Content-Length: 18446744073709551616\r\n", 1, -400, 0, 0},
	        {"Content-Length: 99999999999999999999999\r\n", 1, -400, 0, 0},
	        {"Content-Length: abc\r\n", 1, -400, 0, 0},
	        {"Content-Length:\r\n", 1, -400, 0, 0},
	        {"Content-Length: -1\r\n", 1, -400, 0, 0},
	        {"Content-Length: +1\r\n", 1, -400, 0, 0},
	        {"Content-Length: 1 2\r\n", 1, -400, 0, 0},
	        {"Content-Length: 5, 5\r\n", 1, -400, 0, 0},
	        {"Content-Length: 0x10\r\n", 1, -400, 0, 0},
	        {"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 1, -400, 0, 0},
	        {"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 1, -400, 0, 0},
	        {"Transfer-Encoding: chunked\r\n", 0, -400, 0, 0},
	        {"Transfer-Encoding: gzip\r\n", 0, -400, 0, 0},
	        {"Transfer-Encoding: gzip, chunked\r\n", 1, -501, 0, 0},
	        {"Transfer-Encoding: chunked, gzip\r\n", 1, -501, 0, 0},
	        {"Transfer-Encoding: gzip\r\n", 1, -501, 0, 0},
	        {"Transfer-Encoding: identity\r\n", 1, -501, 0, 0},
	        {"Transfer-Encoding:\r\n", 1, -501, 0, 0},
	        {"Transfer-Encoding: chunkedx\r\n", 1, -501, 0, 0},
	        {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 1, -501, 0, 0},
	        {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 1, -501, 0, 0},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		enum http_framing f = (enum http_framing)77;
		uint64_t len = 12345;
		int r = framing_of(cases[i].fields, cases[i].minor, &f, &len);

		assert_int_equal(r, cases[i].status);
		if (r == 0) {
			assert_int_equal(f, cases[i].framing);
			assert_true(len == cases[i].len);
		} else {
			/* untouched on failure */
			assert_int_equal(f, 77);
			assert_true(len == 12345);
		}
	}
}

static bool keep_alive_of(const char *fields, int minor)
{
	char s[512];
	struct http_head h;
	char *buf;
	bool r;

	assert_true((size_t)snprintf(s, sizeof(s), "GET / HTTP/1.%d\r\n%s\r\n", minor, fields) <
	            sizeof(s));
	must_parse(s, &h, &buf);
	r = http_head_keep_alive(&h);
	free(buf);
	return r;
}

static void test_keep_alive(void **state)
{
	assert_true(keep_alive_of("", 1));
	assert_true(keep_alive_of("Connection: keep-alive\r\n", 1));
	assert_true(keep_alive_of("Connection: closed\r\n", 1));
	assert_true(keep_alive_of("Connection: upgrade\r\n", 1));
	assert_true(keep_alive_of("Connection: \"close\"\r\n", 1));
	assert_true(keep_alive_of("X-Connection: close\r\n", 1));
	assert_false(keep_alive_of("Connection: close\r\n", 1));
	assert_false(keep_alive_of("connection: CLOSE\r\n", 1));
	assert_false(keep_alive_of("Connection: upgrade ,\t Close \t, x\r\n", 1));
	assert_false(keep_alive_of("Connection: te,close\r\n", 1));
	assert_false(keep_alive_of("Connection: keep-alive\r\nConnection: close\r\n", 1));
	assert_false(keep_alive_of("Connection: keep-alive, close\r\n", 1));

	assert_false(keep_alive_of("", 0));
	assert_false(keep_alive_of("Connection: upgrade\r\n", 0));
	assert_false(keep_alive_of("Connection: keep-alived\r\n", 0));
	assert_false(keep_alive_of("Connection: close\r\n", 0));
	assert_true(keep_alive_of("Connection: keep-alive\r\n", 0));
	assert_true(keep_alive_of("Connection: Upgrade,  Keep-Alive \r\n", 0));
	assert_true(keep_alive_of("Connection: upgrade\r\nconnection: KEEP-ALIVE\r\n", 0));
	assert_false(keep_alive_of("Connection: keep-alive\r\nConnection: close\r\n", 0));
	assert_false(keep_alive_of("Connection: ,,\r\n", 0));
}

static int expect_of(const char *fields)
{
	char s[512];
	struct http_head h;
	char *buf;
	int r;

	assert_true((size_t)snprintf(s, sizeof(s), "POST / HTTP/1.1\r\n%s\r\n", fields) <
	            sizeof(s));
	must_parse(s, &h, &buf);
	r = http_head_expect(&h);
	free(buf);
	return r;
}

static void test_expect(void **state)
{
	assert_int_equal(expect_of(""), 0);
	assert_int_equal(expect_of("Host: a\r\n"), 0);
	assert_int_equal(expect_of("Expect: 100-continue\r\n"), 1);
	assert_int_equal(expect_of("expect:   100-Continue \t\r\n"), 1);
	assert_int_equal(expect_of("Expect: 100-continue\r\nEXPECT: 100-CONTINUE\r\n"), 1);
	assert_int_equal(expect_of("Expect: 200-ok\r\n"), -417);
	assert_int_equal(expect_of("Expect:\r\n"), -417);
	assert_int_equal(expect_of("Expect: 100-continue, x\r\n"), -417);
	assert_int_equal(expect_of("Expect: 100-continuex\r\n"), -417);
	assert_int_equal(expect_of("Expect: 100-continue\r\nExpect: x\r\n"), -417);
}

/* ---- chunked ------------------------------------------------------------------- */

struct decoded {
	int r;
	size_t used;
	struct buf out;
};

/* Feed in[0..n) in pieces of at most step bytes (0: all at once) until a result. */
static struct decoded feed(const char *in, size_t n, size_t step, size_t max)
{
	struct http_chunked c = {0};
	struct decoded d = {0, 0, BUF_INIT(1 << 20)};
	size_t off = 0;

	do {
		size_t k = step && n - off > step ? step : n - off, used = 9999;
		char *piece = copy_of(in + off, k);

		d.r = http_chunked_feed(&c, piece, k, &used, &d.out, max);
		free(piece);
		assert_true(used <= k);
		if (d.r == 0)
			assert_int_equal(used, k);
		off += used;
	} while (d.r == 0 && off < n);
	d.used = off;
	return d;
}

/* Whole, byte by byte, and split at every point: all the same, and as expected. */
static void check_chunked(const char *in, size_t n, size_t max, int r, size_t used,
                          const char *data, size_t data_len)
{
	struct decoded whole = feed(in, n, 0, max);

	assert_int_equal(whole.r, r);
	assert_int_equal(whole.used, used);
	assert_int_equal(whole.out.len, data_len);
	assert_memory_equal(buf_str(&whole.out), data, data_len);
	for (size_t step = 1; step <= 7 && step < n; step++) {
		struct decoded part = feed(in, n, step, max);

		assert_int_equal(part.r, r);
		assert_int_equal(part.used, used);
		assert_int_equal(part.out.len, data_len);
		assert_memory_equal(buf_str(&part.out), data, data_len);
		buf_release(&part.out);
	}
	for (size_t cut = 1; cut < n; cut++) {
		struct http_chunked c = {0};
		struct buf out = BUF_INIT(1 << 20);
		size_t u1 = 0, u2 = 0;
		int r1 = http_chunked_feed(&c, in, cut, &u1, &out, max);

		if (r1 == 0)
			r1 = http_chunked_feed(&c, in + cut, n - cut, &u2, &out, max);
		assert_int_equal(r1, r);
		assert_int_equal(u1 + u2, used);
		assert_int_equal(out.len, data_len);
		assert_memory_equal(buf_str(&out), data, data_len);
		buf_release(&out);
	}
	buf_release(&whole.out);
}

#define CHECK_CHUNKED(in, max, r, used, data)                                                      \
	check_chunked(in, strlen(in), max, r, used, data, strlen(data))

static void test_chunked_valid(void **state)
{
	const char *simple = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
	const char *ext = "5;name=val\r\nhello\r\n6 ; a=\"b;c\"\t;d\r\n world\r\n0;x\r\n\r\n";
	const char *trailers = "5\r\nhello\r\n0\r\nX-Sum: 1\r\ny:\r\n\r\n";
	const char *hex = "A\r\n0123456789\r\nf\r\nabcdefghijklmno\r\n0000\r\n\r\n";

	CHECK_CHUNKED(simple, 100, 1, strlen(simple), "hello world");
	CHECK_CHUNKED(ext, 100, 1, strlen(ext), "hello world");
	CHECK_CHUNKED(trailers, 100, 1, strlen(trailers), "hello");
	CHECK_CHUNKED(hex, 100, 1, strlen(hex), "0123456789abcdefghijklmno");
	CHECK_CHUNKED("0\r\n\r\n", 100, 1, 5, "");
	CHECK_CHUNKED("0005\r\nhello\r\n0\r\n\r\n", 100, 1, 18, "hello");
	/* data may hold anything, CRLFs included */
	check_chunked("4\r\n\r\n\0\xff\r\n0\r\n\r\n", 14, 100, 1, 14, "\r\n\0\xff", 4);
	/* incomplete: all taken, more needed */
	CHECK_CHUNKED("5\r\nhel", 100, 0, 6, "hel");
	CHECK_CHUNKED("5\r\nhello\r\n0\r\nX: y\r\n", 100, 0, 19, "hello");
}

static void test_chunked_then_next_request(void **state)
{
	const char *body = "3\r\nabc\r\n0\r\n\r\n";
	const char *s = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
	struct http_chunked c = {0};
	struct buf out = BUF_INIT(100);
	size_t used;

	CHECK_CHUNKED(s, 100, 1, strlen(body), "abc");
	assert_int_equal(http_chunked_feed(&c, s, strlen(s), &used, &out, 100), 1);
	assert_int_equal(used, strlen(body));
	/* the body ended: nothing more is taken */
	assert_int_equal(http_chunked_feed(&c, s + used, strlen(s) - used, &used, &out, 100), 1);
	assert_int_equal(used, 0);
	assert_string_equal(buf_str(&out), "abc");
	buf_release(&out);
}

static void test_chunked_malformed(void **state)
{
	static const struct {
		const char *in;
		size_t used; /* bytes before the one that is refused */
		const char *data;
	} cases[] = {
	        {"x\r\n", 0, ""},
	        {"\r\n", 0, ""},
	        {";a\r\n", 0, ""},
	        {" 5\r\n", 0, ""},
	        {"-5\r\n", 0, ""},
	        {"5x\r\n", 1, ""},
	        {"5 \r\nhello\r\n", 2, ""},
	        {"5\n", 1, ""},
	        {"5\r\r", 2, ""},
	        {"5;a\nb\r\n", 3, ""},
	        {"5;a\x01\r\n", 3, ""},
	        {"5\r\nhelloX\r\n", 8, "hello"},
	        {"5\r\nhello\rX", 9, "hello"},
	        {"5\r\nhello\n", 8, "hello"},
	        {"5\r\nhello\r\n\r\n", 10, "hello"},
	        {"0\r\n\r\r", 4, ""},
	        {"0\r\n\n", 3, ""},
	        {"0\r\nX-A\r\n\r\n", 6, ""},
	        {"0\r\nX A: b\r\n\r\n", 4, ""},
	        {"0\r\n: b\r\n\r\n", 3, ""},
	        {"0\r\nA: b\r\n c\r\n\r\n", 9, ""},
	        {"0\r\nA: b\x7f\r\n\r\n", 7, ""},
	        {"0\r\nA: b\nc\r\n\r\n", 7, ""},
	        {"ffffffffffffffffff\r\n", 15, ""},
	        {"10000000000000000\r\n", 16, ""},
	        {"8000000000000001\r\n", 15, ""},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		CHECK_CHUNKED(cases[i].in, 100, -400, cases[i].used, cases[i].data);
}

/* A size line or trailer section of exactly n bytes, CRLFs counted. */
static void test_chunked_line_limits(void **state)
{
	char *s = malloc(3 * 4096);
	size_t n;

	assert_non_null(s);
	/* "1;aaa...\r\n" of 4096 bytes, then data */
	n = 0;
	s[n++] = '1';
	s[n++] = ';';
	memset(s + n, 'a', 4096 - 4);
	n += 4096 - 4;
	memcpy(s + n, "\r\nz\r\n0\r\n\r\n", 10);
	check_chunked(s, n + 10, 100, 1, n + 10, "z", 1);
	/* one byte more */
	memmove(s + 3, s + 2, n + 10 - 2);
	s[2] = 'a';
	check_chunked(s, n + 11, 100, -400, 4096, "", 0);
	/* leading zeros count as well */
	memset(s, '0', 5000);
	check_chunked(s, 5000, 100, -400, 4096, "", 0);

	/* a trailer section "X: aaa...\r\n\r\n" of 4096 bytes */
	memcpy(s, "0\r\nX: ", 6);
	memset(s + 6, 'a', 4096 - 4 - 3);
	memcpy(s + 3 + 4096 - 4, "\r\n\r\n", 4);
	n = 3 + 4096;
	check_chunked(s, n, 100, 1, n, "", 0);
	memmove(s + 7, s + 6, n - 6);
	s[6] = 'a';
	check_chunked(s, n + 1, 100, -400, n, "", 0);
	free(s);
}

static void test_chunked_cap(void **state)
{
	const char *s = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
	const char *huge = "8000000000000000\r\nabc";
	struct http_chunked c = {0};
	struct buf small = BUF_INIT(8);
	size_t used;

	/* exactly the cap is fine; one byte less is refused at the size line's end */
	CHECK_CHUNKED(s, 11, 1, strlen(s), "hello world");
	CHECK_CHUNKED(s, 10, -413, 12, "hello");
	CHECK_CHUNKED(s, 4, -413, 2, "");
	CHECK_CHUNKED(s, 0, -413, 2, "");
	CHECK_CHUNKED("0\r\n\r\n", 0, 1, 5, "");
	/* 2^63 itself is a size, only too big for any cap */
	CHECK_CHUNKED(huge, SIZE_MAX, -413, 17, "");

	/* a buf's own max is a cap as well */
	assert_int_equal(http_chunked_feed(&c, s, strlen(s), &used, &small, 100), -413);
	assert_int_equal(used, 12);
	assert_string_equal(buf_str(&small), "hello");
	/* and the refusal sticks */
	assert_int_equal(http_chunked_feed(&c, s, strlen(s), &used, &small, 100), -413);
	assert_int_equal(used, 0);
	buf_release(&small);
}

static void test_chunked_sticky(void **state)
{
	struct http_chunked c = {0};
	struct buf out = BUF_INIT(100);
	size_t used = 77;

	assert_int_equal(http_chunked_feed(&c, "", 0, &used, &out, 100), 0);
	assert_int_equal(used, 0);
	assert_int_equal(http_chunked_feed(&c, "zz", 2, &used, &out, 100), -400);
	assert_int_equal(used, 0);
	assert_int_equal(http_chunked_feed(&c, "0\r\n\r\n", 5, &used, &out, 100), -400);
	assert_int_equal(used, 0);
	assert_int_equal(out.len, 0);
	buf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_minimal_get),
	        cmocka_unit_test(test_post_with_fields),
	        cmocka_unit_test(test_methods_are_tokens),
	        cmocka_unit_test(test_path_and_query),
	        cmocka_unit_test(test_head_then_body),
	        cmocka_unit_test(test_refusals),
	        cmocka_unit_test(test_refusals_early),
	        cmocka_unit_test(test_every_prefix),
	        cmocka_unit_test(test_field_count),
	        cmocka_unit_test(test_head_size),
	        cmocka_unit_test(test_framing),
	        cmocka_unit_test(test_keep_alive),
	        cmocka_unit_test(test_expect),
	        cmocka_unit_test(test_chunked_valid),
	        cmocka_unit_test(test_chunked_then_next_request),
	        cmocka_unit_test(test_chunked_malformed),
	        cmocka_unit_test(test_chunked_line_limits),
	        cmocka_unit_test(test_chunked_cap),
	        cmocka_unit_test(test_chunked_sticky),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
