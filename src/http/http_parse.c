/*
 * runnerd's HTTP/1.1 request parser: the head (request line and fields) parsed
 * in place in the connection's buffer, what the fields say about the body and
 * the connection, and the chunked body decoder. Pure functions: every byte
 * comes from a peer, so nothing here may read past the length it is given,
 * write past a caller's buffer, allocate for a head, or accept what it cannot
 * represent exactly. tests/fuzz/fuzz_http_head.c drives it with any bytes.
 */
#include "util/common.h"
#include "http/http_parse.h"
#include "util/strutil.h"

/* A size line, or a trailer section, longer than this is refused. */
#define CHUNK_LINE_MAX 4096

/* RFC 9110 5.6.2 tchar: what a method or a field name is made of. */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* A control character a field value may not hold (HT may, bytes >= 0x80 may). */
static bool is_value_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* ---- head --------------------------------------------------------------- */

enum head_state {
	H_METHOD,
	H_TARGET, /* the target's first byte, which must be '/' */
	H_PATH,
	H_PCT_HI, /* after '%' in the path */
	H_PCT_LO,
	H_QUERY,
	H_PROTO, /* "HTTP/" */
	H_MAJOR,
	H_MINOR,
	H_LINE_LF, /* the request line's CR came */
	H_FIELD,   /* the start of a field line, or of the blank line */
	H_NAME,
	H_VALUE,
	H_VALUE_LF,
	H_END_LF,
};

/* Offsets into the buffer of one field line. */
struct field_span {
	size_t name, colon, value, value_end;
};

/*
 * What a scan found, as offsets: nothing is written to the buffer until the
 * whole head is known to be valid, so a refused or incomplete head leaves it
 * as it came.
 */
struct head_scan {
	enum head_state state;
	size_t method_end, target, path_end, query, target_end;
	size_t proto, version, minor_at;
	bool has_query, value_seen;
	int pct_hi;
	int minor;
	size_t n_fields;
	struct field_span fields[HTTP_MAX_FIELDS];
};

/* The request line is complete: only 1.0 and 1.1 are spoken. */
static int head_version(struct head_scan *s, const char *buf, size_t cr)
{
	const char *v = buf + s->version;
	size_t n = cr - s->version;

	if (n == 3 && memcmp(v, "1.0", 3) == 0)
		s->minor = 0;
	else if (n == 3 && memcmp(v, "1.1", 3) == 0)
		s->minor = 1;
	else
		return -505;
	return 0;
}

static int head_target_byte(struct head_scan *s, unsigned char c, size_t i)
{
	if (c == ' ') {
		if (s->state == H_PATH)
			s->path_end = i;
		s->target_end = i;
		s->proto = i + 1;
		s->state = H_PROTO;
		return 0;
	}
	if (c < 0x21 || c == 0x7f)
		return -400;
	if (s->state == H_QUERY)
		return 0;
	if (c == '%') {
		s->state = H_PCT_HI;
	} else if (c == '?') {
		s->path_end = i;
		s->query = i + 1;
		s->has_query = true;
		s->state = H_QUERY;
	}
	return 0;
}

static int head_value_byte(struct head_scan *s, unsigned char c, size_t i)
{
	struct field_span *f = &s->fields[s->n_fields];

	if (c == '\r') {
		if (!s->value_seen)
			f->value = f->value_end = i;
		s->state = H_VALUE_LF;
		return 0;
	}
	if (is_value_ctl(c))
		return -400;
	if (c == ' ' || c == '\t')
		return 0;
	if (!s->value_seen)
		f->value = i;
	s->value_seen = true;
	f->value_end = i + 1;
	return 0;
}

static int head_field_start(struct head_scan *s, unsigned char c, size_t i)
{
	if (c == '\r') {
		s->state = H_END_LF;
		return 0;
	}
	/* obsolete line folding, or whitespace before the first field */
	if (c == ' ' || c == '\t')
		return -400;
	if (s->n_fields == HTTP_MAX_FIELDS)
		return -431;
	if (!is_tchar(c))
		return -400;
	s->fields[s->n_fields].name = i;
	s->state = H_NAME;
	return 0;
}

/*
 * Judge buf[i], the bytes before it being fine: 0 to go on, the head's
 * length once its last byte came, or the status to refuse it with. Each
 * fault is caught at the first byte that makes it one, so a refusal never
 * depends on what comes later.
 */
static int head_step(struct head_scan *s, const char *buf, size_t i)
{
	unsigned char c = (unsigned char)buf[i];
	int d;

	switch (s->state) {
	case H_METHOD:
		if (c == ' ' && i > 0) {
			s->method_end = i;
			s->state = H_TARGET;
			return 0;
		}
		return is_tchar(c) ? 0 : -400;
	case H_TARGET:
		/* origin-form only: no "*", no absolute URI */
		if (c != '/')
			return -400;
		s->target = i;
		s->state = H_PATH;
		return 0;
	case H_PATH:
	case H_QUERY:
		return head_target_byte(s, c, i);
	case H_PCT_HI:
		s->pct_hi = hex_digit_value((char)c);
		s->state = H_PCT_LO;
		return s->pct_hi < 0 ? -400 : 0;
	case H_PCT_LO:
		d = hex_digit_value((char)c);
		/* a NUL would cut the path short where the handler reads it */
		if (d < 0 || (s->pct_hi == 0 && d == 0))
			return -400;
		s->state = H_PATH;
		return 0;
	case H_PROTO:
		if (c != (unsigned char)"HTTP/"[i - s->proto])
			return -400;
		if (i - s->proto == 4) {
			s->version = i + 1;
			s->state = H_MAJOR;
		}
		return 0;
	case H_MAJOR:
		if (c == '.' && i > s->version) {
			s->minor_at = i + 1;
			s->state = H_MINOR;
			return 0;
		}
		return is_digit(c) ? 0 : -400;
	case H_MINOR:
		if (c == '\r' && i > s->minor_at) {
			s->state = H_LINE_LF;
			return 0;
		}
		return is_digit(c) ? 0 : -400;
	case H_LINE_LF:
		if (c != '\n')
			return -400;
		s->state = H_FIELD;
		return head_version(s, buf, i - 1);
	case H_FIELD:
		return head_field_start(s, c, i);
	case H_NAME:
		if (c == ':') {
			s->fields[s->n_fields].colon = i;
			s->value_seen = false;
			s->state = H_VALUE;
			return 0;
		}
		/* includes whitespace before ':' and a line without one */
		return is_tchar(c) ? 0 : -400;
	case H_VALUE:
		return head_value_byte(s, c, i);
	case H_VALUE_LF:
		if (c != '\n')
			return -400;
		s->n_fields++;
		s->state = H_FIELD;
		return 0;
	case H_END_LF:
		if (c != '\n')
			return -400;
		return (int)(i + 1);
	}
	return -400;
}

/* Decode the validated path s[0..n) in place and NUL-terminate it. */
static void path_decode(char *s, size_t n)
{
	size_t w = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			s[w++] = (char)(hex_digit_value(s[i + 1]) << 4 | hex_digit_value(s[i + 2]));
			i += 2;
		} else {
			s[w++] = s[i];
		}
	}
	s[w] = '\0';
}

/* The head is valid: cut it into strings where the scan marked them. */
static void head_apply(const struct head_scan *s, char *buf, struct http_head *ret)
{
	buf[s->method_end] = '\0';
	ret->method = buf;
	/* the query ends at the SP after the target; the path ends at or before '?' */
	buf[s->target_end] = '\0';
	ret->query = s->has_query ? buf + s->query : NULL;
	path_decode(buf + s->target, s->path_end - s->target);
	ret->path = buf + s->target;
	ret->minor = s->minor;
	ret->n_fields = s->n_fields;
	for (size_t i = 0; i < s->n_fields; i++) {
		const struct field_span *f = &s->fields[i];

		buf[f->colon] = '\0';
		buf[f->value_end] = '\0';
		ret->fields[i].name = buf + f->name;
		ret->fields[i].value = buf + f->value;
	}
}

int http_head_parse(char *buf, size_t len, struct http_head *ret)
{
	struct head_scan s = {.state = H_METHOD};
	size_t n = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++)
		r = head_step(&s, buf, i);
	if (r == 0)
		return len >= HTTP_HEAD_MAX ? -431 : 0;
	if (r > 0)
		head_apply(&s, buf, ret);
	return r;
}

const char *http_head_field(const struct http_head *h, const char *name)
{
	for (size_t i = 0; i < h->n_fields; i++)
		if (strcasecmp(h->fields[i].name, name) == 0)
			return h->fields[i].value;
	return NULL;
}

/* ---- what the fields say ------------------------------------------------- */

int http_parse_length(const char *s, uint64_t *ret)
{
	uint64_t n = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		uint64_t d;

		if (!is_digit((unsigned char)*s))
			return -EINVAL;
		d = (uint64_t)(*s - '0');
		if (n > (UINT64_MAX - d) / 10)
			return -ERANGE;
		n = n * 10 + d;
	}
	*ret = n;
	return 0;
}

int http_head_framing(const struct http_head *h, enum http_framing *ret, uint64_t *ret_len)
{
	const char *te = NULL;
	size_t n_te = 0;
	bool have_len = false;
	uint64_t len = 0;

	for (size_t i = 0; i < h->n_fields; i++) {
		const struct http_field *f = &h->fields[i];
		uint64_t n;

		if (strcasecmp(f->name, "Content-Length") == 0) {
			if (http_parse_length(f->value, &n) < 0 || (have_len && n != len))
				return -400;
			have_len = true;
			len = n;
		} else if (strcasecmp(f->name, "Transfer-Encoding") == 0) {
			te = f->value;
			n_te++;
		}
	}
	if (te) {
		/* 1.0 has no chunked coding; a length beside it is how requests get smuggled */
		if (h->minor == 0 || have_len)
			return -400;
		/* a second field is a second coding, as "gzip, chunked" is */
		if (n_te > 1 || strcasecmp(te, "chunked") != 0)
			return -501;
		*ret = HTTP_BODY_CHUNKED;
		*ret_len = 0;
		return 0;
	}
	*ret = have_len ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
	*ret_len = len;
	return 0;
}

/* Does the comma-separated list hold token (case-insensitive, spaces/tabs ignored)? */
static bool list_has(const char *list, const char *token)
{
	size_t n = strlen(token);
	const char *p = list;

	while (*p) {
		const char *end = strchr(p, ',');
		const char *stop = end ? end : p + strlen(p);

		while (p < stop && (*p == ' ' || *p == '\t'))
			p++;
		while (stop > p && (stop[-1] == ' ' || stop[-1] == '\t'))
			stop--;
		if ((size_t)(stop - p) == n && strncasecmp(p, token, n) == 0)
			return true;
		if (!end)
			break;
		p = end + 1;
	}
	return false;
}

bool http_head_keep_alive(const struct http_head *h)
{
	bool closing = false, keeping = false;

	for (size_t i = 0; i < h->n_fields; i++) {
		if (strcasecmp(h->fields[i].name, "Connection") != 0)
			continue;
		closing = closing || list_has(h->fields[i].value, "close");
		keeping = keeping || list_has(h->fields[i].value, "keep-alive");
	}
	if (closing)
		return false;
	return h->minor >= 1 || keeping;
}

int http_head_expect(const struct http_head *h)
{
	int r = 0;

	for (size_t i = 0; i < h->n_fields; i++) {
		if (strcasecmp(h->fields[i].name, "Expect") != 0)
			continue;
		if (strcasecmp(h->fields[i].value, "100-continue") != 0)
			return -417;
		r = 1;
	}
	return r;
}

/* ---- chunked body -------------------------------------------------------- */

enum chunk_state {
	C_SIZE = 0, /* a zeroed struct http_chunked starts here */
	C_SIZE_WS,  /* BWS after the size, before ';' */
	C_EXT,
	C_SIZE_LF,
	C_DATA,
	C_DATA_CR,
	C_DATA_LF,
	C_TRAILER, /* the start of a trailer field line, or of the final CRLF */
	C_TRAILER_NAME,
	C_TRAILER_VALUE,
	C_TRAILER_LF,
	C_END_LF,
	C_DONE,
	/* refusals stick: a caller feeding again gets the same answer */
	C_BAD,
	C_TOO_BIG,
};

#define CHUNK_SIZE_MAX ((uint64_t)1 << 63)

static int chunk_fail(struct http_chunked *c, int status)
{
	c->state = status == -413 ? C_TOO_BIG : C_BAD;
	return status;
}

/* The size line's LF: the chunk's data may come, or the trailer section. */
static int chunk_size_done(struct http_chunked *c, const struct buf *out, size_t max)
{
	size_t room = out->len < max ? max - out->len : 0;

	c->line = 0;
	if (c->left == 0) {
		c->state = C_TRAILER;
		return 0;
	}
	/* refused before a byte of it is taken, whatever arrives after */
	if (c->left > room)
		return chunk_fail(c, -413);
	c->state = C_DATA;
	return 0;
}

static int chunk_size_digit(struct http_chunked *c, int d)
{
	/* leading zeros are harmless: the line length bounds them */
	if (c->left > CHUNK_SIZE_MAX >> 4)
		return chunk_fail(c, -400);
	c->left = c->left << 4 | (uint64_t)d;
	if (c->left > CHUNK_SIZE_MAX)
		return chunk_fail(c, -400);
	return 0;
}

/* A byte after the size's digits: BWS, ";" and an extension, or the line's CR. */
static int chunk_size_end(struct http_chunked *c, unsigned char ch)
{
	if (ch == ' ' || ch == '\t') {
		c->state = C_SIZE_WS;
		return 0;
	}
	if (ch == ';') {
		c->state = C_EXT;
		return 0;
	}
	/* "5 \r\n": BWS belongs to an extension, none follows */
	if (ch == '\r' && c->state == C_SIZE) {
		c->state = C_SIZE_LF;
		return 0;
	}
	return chunk_fail(c, -400);
}

/*
 * Take the byte ch outside chunk data: 0 to go on, 1 when it ended the body,
 * or a refusal (c not taken).
 */
static int chunk_step(struct http_chunked *c, unsigned char ch, const struct buf *out, size_t max)
{
	int d;

	if (c->state != C_DATA_CR && c->state != C_DATA_LF && ++c->line > CHUNK_LINE_MAX)
		return chunk_fail(c, -400);
	switch (c->state) {
	case C_SIZE:
		d = hex_digit_value((char)ch);
		if (d >= 0)
			return chunk_size_digit(c, d);
		if (c->line == 1)
			return chunk_fail(c, -400);
		return chunk_size_end(c, ch);
	case C_SIZE_WS:
		return chunk_size_end(c, ch);
	case C_EXT:
		if (ch == '\r') {
			c->state = C_SIZE_LF;
			return 0;
		}
		return is_value_ctl(ch) ? chunk_fail(c, -400) : 0;
	case C_SIZE_LF:
		if (ch != '\n')
			return chunk_fail(c, -400);
		return chunk_size_done(c, out, max);
	case C_DATA_CR:
		if (ch != '\r')
			return chunk_fail(c, -400);
		c->state = C_DATA_LF;
		return 0;
	case C_DATA_LF:
		if (ch != '\n')
			return chunk_fail(c, -400);
		c->line = 0;
		c->state = C_SIZE;
		return 0;
	case C_TRAILER:
		if (ch == '\r') {
			c->state = C_END_LF;
			return 0;
		}
		if (!is_tchar(ch))
			return chunk_fail(c, -400);
		c->state = C_TRAILER_NAME;
		return 0;
	case C_TRAILER_NAME:
		if (ch == ':') {
			c->state = C_TRAILER_VALUE;
			return 0;
		}
		return is_tchar(ch) ? 0 : chunk_fail(c, -400);
	case C_TRAILER_VALUE:
		if (ch == '\r') {
			c->state = C_TRAILER_LF;
			return 0;
		}
		return is_value_ctl(ch) ? chunk_fail(c, -400) : 0;
	case C_TRAILER_LF:
		if (ch != '\n')
			return chunk_fail(c, -400);
		c->state = C_TRAILER;
		return 0;
	case C_END_LF:
		if (ch != '\n')
			return chunk_fail(c, -400);
		c->state = C_DONE;
		return 1;
	}
	return chunk_fail(c, -400);
}

int http_chunked_feed(struct http_chunked *c, const char *in, size_t len, size_t *used,
                      struct buf *out, size_t max)
{
	size_t i = 0;
	int r = 0;

	if (out->max < max)
		max = out->max;
	if (c->state == C_DONE || c->state == C_BAD || c->state == C_TOO_BIG) {
		*used = 0;
		return c->state == C_DONE ? 1 : c->state == C_BAD ? -400 : -413;
	}
	while (i < len && r == 0) {
		if (c->state == C_DATA) {
			size_t n = len - i;

			if (c->left < n)
				n = (size_t)c->left;
			r = buf_append(out, in + i, n);
			if (r < 0)
				break;
			i += n;
			c->left -= n;
			if (c->left == 0)
				c->state = C_DATA_CR;
			continue;
		}
		r = chunk_step(c, (unsigned char)in[i], out, max);
		if (r >= 0)
			i++;
	}
	*used = i;
	return r;
}
