/*
 * The tokens of the one-pass scan (webhook_scan_internal.h): strings with
 * their escapes, surrogate pairs and UTF-8 checked as jansson checks them
 * (no \u0000, no lone surrogate, no overlong or out-of-range sequence, no
 * control character), numbers in JSON's grammar (an integer must fit in 64
 * bits; a real must not overflow a double), literals and whitespace. It
 * never reads past s->end.
 */
#include "util/common.h"
#include "webhook/webhook_scan_internal.h"

#include <math.h>

int scan_fail(struct scan *s, const unsigned char *at, const char *why)
{
	if (!s->err) {
		s->err = why;
		s->err_at = at;
	}
	return -EINVAL;
}

void scan_put(struct sink *o, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		o->hash = (o->hash ^ b[i]) * 16777619u;
		if (o->v && o->n + i + 1 < o->cap)
			o->v[o->n + i] = (char)b[i];
	}
	o->n += n;
}

static int hex4(const unsigned char *p, const unsigned char *end, uint32_t *ret)
{
	uint32_t v = 0;

	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		unsigned c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	*ret = v;
	return 0;
}

/* The length of the valid UTF-8 sequence at p (2..4), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0];
	size_t n;
	uint32_t v;

	if (c < 0xC2)
		return 0;
	if (c <= 0xDF) {
		n = 2;
		v = c & 0x1F;
	} else if (c <= 0xEF) {
		n = 3;
		v = c & 0x0F;
	} else if (c <= 0xF4) {
		n = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3F);
	}
	if (n == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF)))
		return 0;
	if (n == 4 && (v < 0x10000 || v > 0x10FFFF))
		return 0;
	return n;
}

static size_t utf8_put(uint32_t v, unsigned char *b)
{
	if (v < 0x80) {
		b[0] = (unsigned char)v;
		return 1;
	}
	if (v < 0x800) {
		b[0] = (unsigned char)(0xC0 | (v >> 6));
		b[1] = (unsigned char)(0x80 | (v & 0x3F));
		return 2;
	}
	if (v < 0x10000) {
		b[0] = (unsigned char)(0xE0 | (v >> 12));
		b[1] = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
		b[2] = (unsigned char)(0x80 | (v & 0x3F));
		return 3;
	}
	b[0] = (unsigned char)(0xF0 | (v >> 18));
	b[1] = (unsigned char)(0x80 | ((v >> 12) & 0x3F));
	b[2] = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
	b[3] = (unsigned char)(0x80 | (v & 0x3F));
	return 4;
}

/* A \u escape at *pp (after the backslash and 'u'): its code point, a pair joined. */
static int escape_u(struct scan *s, const unsigned char **pp, uint32_t *ret)
{
	const unsigned char *p = *pp;
	uint32_t v, lo;

	if (hex4(p, s->end, &v) < 0)
		return scan_fail(s, p, "invalid escape");
	p += 4;
	if (v >= 0xDC00 && v <= 0xDFFF)
		return scan_fail(s, p, "invalid Unicode");
	if (v >= 0xD800 && v <= 0xDBFF) {
		if (s->end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, s->end, &lo) < 0 ||
		    lo < 0xDC00 || lo > 0xDFFF)
			return scan_fail(s, p, "invalid Unicode");
		v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
		p += 6;
	}
	if (v == 0)
		return scan_fail(s, p, "\\u0000 is not allowed");
	*pp = p;
	*ret = v;
	return 0;
}

/* One escape at *pp (after the backslash) into o. */
static int escape(struct scan *s, const unsigned char **pp, struct sink *o)
{
	/* an escape's letter, then the byte it stands for */
	static const char simple[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
	const unsigned char *p = *pp;
	unsigned char b[4];
	uint32_t v = 0;
	size_t n = 0;

	if (p >= s->end)
		return scan_fail(s, p, "premature end of input");
	for (size_t i = 0; i + 1 < sizeof(simple) && !n; i += 2) {
		if (*p == (unsigned char)simple[i]) {
			b[0] = (unsigned char)simple[i + 1];
			n = 1;
		}
	}
	if (!n && *p == 'u') {
		p++;
		if (escape_u(s, &p, &v) < 0)
			return -EINVAL;
		n = utf8_put(v, b);
	} else if (!n) {
		return scan_fail(s, p, "invalid escape");
	} else {
		p++;
	}
	if (o) {
		o->escaped = true;
		scan_put(o, b, n);
	}
	*pp = p;
	return 0;
}

/* A string at s->p (its quote): checked, decoded into o when o. */
int scan_string(struct scan *s, struct sink *o)
{
	const unsigned char *p = s->p + 1, *end = s->end;

	for (;;) {
		const unsigned char *run = p;
		size_t n;

		while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
			p++;
		if (o && p > run)
			scan_put(o, run, (size_t)(p - run));
		if (p >= end)
			return scan_fail(s, p, "premature end of input");
		if (*p == '"')
			break;
		if (*p == '\\') {
			p++;
			if (escape(s, &p, o) < 0)
				return -EINVAL;
			continue;
		}
		if (*p < 0x20)
			return scan_fail(s, p, "control character in a string");
		n = utf8_seq(p, end);
		if (n == 0)
			return scan_fail(s, p, "invalid UTF-8");
		if (o)
			scan_put(o, p, n);
		p += n;
	}
	if (o && o->v)
		o->v[o->n < o->cap ? o->n : o->cap - 1] = '\0';
	s->p = p + 1;
	return 0;
}

static bool digit(const unsigned char *p, const unsigned char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

/* A number at s->p: *ret_int and *ret_value when it is an integer. */
int scan_number(struct scan *s, bool *ret_int, int64_t *ret_value)
{
	const unsigned char *p = s->p, *start = s->p, *end = s->end;
	bool neg = false, is_int = true;
	uint64_t v = 0, limit;

	if (p < end && *p == '-') {
		neg = true;
		p++;
	}
	if (!digit(p, end))
		return scan_fail(s, start, "invalid token");
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	if (*p == '0') {
		p++;
		if (digit(p, end))
			return scan_fail(s, start, "invalid token");
	} else {
		while (digit(p, end)) {
			unsigned d = *p++ - '0';
			if (v > (limit - d) / 10)
				v = limit + 1; /* too big: known once the token ends */
			else
				v = v * 10 + d;
		}
	}
	if (p < end && *p == '.') {
		is_int = false;
		p++;
		if (!digit(p, end))
			return scan_fail(s, start, "invalid token");
		while (digit(p, end))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		is_int = false;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (!digit(p, end))
			return scan_fail(s, start, "invalid token");
		while (digit(p, end))
			p++;
	}
	if (is_int) {
		if (v > limit)
			return scan_fail(s, start, "too big integer");
		*ret_value = neg ? (int64_t)(0 - v) : (int64_t)v;
	} else {
		/* as jansson: a real that overflows a double is an error */
		char small[64], *copy = small, *stop;
		size_t n = (size_t)(p - start);
		double d;

		if (n >= sizeof(small) && !(copy = malloc(n + 1))) {
			s->nomem = 1;
			return -ENOMEM;
		}
		memcpy(copy, start, n);
		copy[n] = '\0';
		errno = 0;
		d = strtod(copy, &stop);
		if (copy != small)
			free(copy);
		if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL))
			return scan_fail(s, start, "real number overflow");
	}
	*ret_int = is_int;
	s->p = p;
	return 0;
}

bool scan_literal(struct scan *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return false;
	s->p += n;
	return true;
}
