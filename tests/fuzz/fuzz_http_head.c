/*
 * libFuzzer target: the server's own request parser (src/http/http_parse.c)
 * on untrusted bytes. Input: a request head, then whatever follows it as a
 * chunked body (when no head parses, the whole input is the body, so the
 * decoder sees every input too). Whatever the input, nothing crashes, leaks
 * or reads out of bounds (ASan+UBSan; every buffer handed over is a heap copy
 * of exactly its bytes), and:
 * - a head is accepted only through "\r\n\r\n", within the input and the
 *   limit, and its strings lie inside it; the same head with nothing after
 *   it gives the same length, and one byte less of it asks for more;
 * - a prefix of the input either asks for more or gets the same answer;
 * - "more is needed" leaves the buffer as it was;
 * - the chunked decoder gives the same result, the same decoded bytes and
 *   the same count of bytes consumed whether fed whole or byte by byte.
 */
#include "util/common.h"
#include "http/http_parse.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small, so the 413 cap is reached too. */
#define BODY_CAP 512

static char *copy_of(const void *p, size_t n)
{
	char *s = malloc(n ? n : 1);

	if (!s)
		abort();
	memcpy(s, p, n);
	return s;
}

static int parse_copy(const uint8_t *data, size_t n)
{
	struct http_head h;
	char *buf = copy_of(data, n);
	int r = http_head_parse(buf, n, &h);

	free(buf);
	return r;
}

/* s is a NUL-terminated string that starts and ends inside buf[0..n). */
static void check_inside(const char *s, const char *buf, size_t n)
{
	if (!s || s < buf || s >= buf + n || !memchr(s, '\0', (size_t)(buf + n - s)))
		abort();
}

static void check_head(const struct http_head *h, const char *buf, size_t n)
{
	enum http_framing f;
	uint64_t len = 99;
	int r;

	check_inside(h->method, buf, n);
	check_inside(h->path, buf, n);
	if (h->query)
		check_inside(h->query, buf, n);
	if (!h->method[0] || h->path[0] != '/' || (h->minor != 0 && h->minor != 1) ||
	    h->n_fields > HTTP_MAX_FIELDS)
		abort();
	for (size_t i = 0; i < h->n_fields; i++) {
		const char *v = h->fields[i].value;
		size_t vn;

		check_inside(h->fields[i].name, buf, n);
		check_inside(v, buf, n);
		vn = strlen(v);
		if (!h->fields[i].name[0] || http_head_field(h, h->fields[i].name) == NULL)
			abort();
		if (vn && (v[0] == ' ' || v[0] == '\t' || v[vn - 1] == ' ' || v[vn - 1] == '\t'))
			abort();
	}
	r = http_head_framing(h, &f, &len);
	if (r != 0 && r != -400 && r != -501)
		abort();
	if (r == 0 && f != HTTP_BODY_LENGTH && len != 0)
		abort();
	r = http_head_expect(h);
	if (r != 0 && r != 1 && r != -417)
		abort();
	(void)http_head_keep_alive(h);
}

/* The head of data[0..size): its length, or 0 when none parses. */
static size_t check_parse(const uint8_t *data, size_t size)
{
	struct http_head h;
	char *buf = copy_of(data, size);
	int r = http_head_parse(buf, size, &h), half;
	size_t n = r > 0 ? (size_t)r : 0;

	if (r < 0 && r != -400 && r != -431 && r != -505)
		abort();
	if (r == 0 && size >= HTTP_HEAD_MAX)
		abort();
	if (r > 0 &&
	    (n > size || n > HTTP_HEAD_MAX || n < 4 || memcmp(data + n - 4, "\r\n\r\n", 4) != 0))
		abort();
	/* only the head itself is rewritten, and only when it is accepted */
	if (memcmp(buf + n, data + n, size - n) != 0)
		abort();
	if (r > 0) {
		check_head(&h, buf, n);
		if (parse_copy(data, n) != r || parse_copy(data, n - 1) != 0)
			abort();
	}
	/* the first fault decides: a prefix asks for more or says the same */
	half = parse_copy(data, size / 2);
	if (half != 0 && half != r)
		abort();
	free(buf);
	return n;
}

struct fed {
	int r;
	size_t used;
	struct buf out;
};

static struct fed feed_whole(const char *in, size_t n)
{
	struct http_chunked c = {0};
	struct fed f = {0, 0, BUF_INIT(1 << 20)};
	char *copy = copy_of(in, n);

	f.r = http_chunked_feed(&c, copy, n, &f.used, &f.out, BODY_CAP);
	if (f.used > n || (f.r == 0 && f.used != n))
		abort();
	free(copy);
	return f;
}

static struct fed feed_bytes(const char *in, size_t n)
{
	struct http_chunked c = {0};
	struct fed f = {0, 0, BUF_INIT(1 << 20)};
	char *one = malloc(1);

	if (!one)
		abort();
	for (size_t i = 0; i < n && f.r == 0; i++) {
		size_t used = 2;

		one[0] = in[i];
		f.r = http_chunked_feed(&c, one, 1, &used, &f.out, BODY_CAP);
		if (used > 1 || (f.r == 0 && used != 1))
			abort();
		f.used += used;
	}
	free(one);
	return f;
}

static void check_chunked(const char *in, size_t n)
{
	struct fed whole = feed_whole(in, n), bytes = feed_bytes(in, n);

	if (whole.r != bytes.r || whole.used != bytes.used || whole.out.len != bytes.out.len ||
	    memcmp(buf_str(&whole.out), buf_str(&bytes.out), whole.out.len) != 0)
		abort();
	if (whole.r != 0 && whole.r != 1 && whole.r != -400 && whole.r != -413 &&
	    whole.r != -ENOMEM)
		abort();
	if (whole.out.len > BODY_CAP)
		abort();
	buf_release(&whole.out);
	buf_release(&bytes.out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t head = check_parse(data, size);

	check_chunked((const char *)data + head, size - head);
	return 0;
}
