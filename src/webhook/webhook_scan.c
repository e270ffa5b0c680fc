/*
 * webhook_scan.h's one pass: a recursive-descent checker of strict JSON
 * that keeps nothing but the fields a workflow_job delivery is read for.
 * A tree of a 7 KB delivery (jansson) cost about 80 us and most of the
 * intake's CPU; this pass reads each byte once. It must accept exactly
 * what jansson accepts (tests/fuzz/fuzz_webhook.c compares the two on
 * every input), never read past len, never recurse past MAX_DEPTH, and
 * never put body text in what it returns but the fields it was asked for.
 */
#include "util/common.h"
#include "webhook/webhook_scan.h"

#include <math.h>

#define MAX_DEPTH 2048 /* jansson's */
#define KEY_MAX   16   /* the longest key we look for ("workflow_job"), and room */
#define SLOTS_MIN 512

/* Which value of the document this is, for the fields we keep. */
enum want {
	W_NONE = 0,
	W_ROOT,
	W_JOB,    /* .workflow_job */
	W_REPO,   /* .repository */
	W_ACTION, /* .action */
	W_ID,     /* .workflow_job.id */
	W_RUN_ID, /* .workflow_job.run_id */
	W_LABELS, /* .workflow_job.labels */
	W_NAME,   /* .repository.full_name */
};

/* A key seen, for the duplicate check: which object, its hash, where it is. */
struct slot {
	uint32_t obj; /* 0: free */
	uint32_t hash;
	uint32_t off; /* of the key's first byte after the quote */
	uint32_t len; /* raw bytes; ESCAPED set when it holds a backslash */
};
#define ESCAPED 0x80000000u

/* Where decoded string bytes go: counted always, kept up to cap - 1. */
struct sink {
	char *v; /* NULL: only counted (and hashed) */
	size_t cap, n;
	uint32_t hash;
	bool escaped;
};

struct scan {
	const unsigned char *start, *p, *end;
	const char *err; /* set with err_at on the first error */
	const unsigned char *err_at;
	unsigned depth;
	uint32_t n_obj;
	struct slot *slots;
	size_t cap, used;
	struct webhook_scan *out; /* NULL: nothing to keep */
	int nomem;
};

static int fail(struct scan *s, const unsigned char *at, const char *why)
{
	if (!s->err) {
		s->err = why;
		s->err_at = at;
	}
	return -EINVAL;
}

static void sink_put(struct sink *o, const unsigned char *b, size_t n)
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
		return fail(s, p, "invalid escape");
	p += 4;
	if (v >= 0xDC00 && v <= 0xDFFF)
		return fail(s, p, "invalid Unicode");
	if (v >= 0xD800 && v <= 0xDBFF) {
		if (s->end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, s->end, &lo) < 0 ||
		    lo < 0xDC00 || lo > 0xDFFF)
			return fail(s, p, "invalid Unicode");
		v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
		p += 6;
	}
	if (v == 0)
		return fail(s, p, "\\u0000 is not allowed");
	*pp = p;
	*ret = v;
	return 0;
}

/* One escape at *pp (after the backslash) into o. */
static int escape(struct scan *s, const unsigned char **pp, struct sink *o)
{
	const unsigned char *p = *pp;
	unsigned char b[4];
	uint32_t v;
	size_t n = 1;

	if (p >= s->end)
		return fail(s, p, "premature end of input");
	switch (*p++) {
	case '"':
	case '\\':
	case '/':
		b[0] = p[-1];
		break;
	case 'b':
		b[0] = '\b';
		break;
	case 'f':
		b[0] = '\f';
		break;
	case 'n':
		b[0] = '\n';
		break;
	case 'r':
		b[0] = '\r';
		break;
	case 't':
		b[0] = '\t';
		break;
	case 'u':
		if (escape_u(s, &p, &v) < 0)
			return -EINVAL;
		n = utf8_put(v, b);
		break;
	default:
		return fail(s, p - 1, "invalid escape");
	}
	if (o) {
		o->escaped = true;
		sink_put(o, b, n);
	}
	*pp = p;
	return 0;
}

/* A string at s->p (its quote): checked, decoded into o when o. */
static int string(struct scan *s, struct sink *o)
{
	const unsigned char *p = s->p + 1, *end = s->end;

	for (;;) {
		const unsigned char *run = p;
		size_t n;

		while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
			p++;
		if (o && p > run)
			sink_put(o, run, (size_t)(p - run));
		if (p >= end)
			return fail(s, p, "premature end of input");
		if (*p == '"')
			break;
		if (*p == '\\') {
			p++;
			if (escape(s, &p, o) < 0)
				return -EINVAL;
			continue;
		}
		if (*p < 0x20)
			return fail(s, p, "control character in a string");
		n = utf8_seq(p, end);
		if (n == 0)
			return fail(s, p, "invalid UTF-8");
		if (o)
			sink_put(o, p, n);
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
static int number(struct scan *s, bool *ret_int, int64_t *ret_value)
{
	const unsigned char *p = s->p, *start = s->p, *end = s->end;
	bool neg = false, is_int = true;
	uint64_t v = 0, limit;

	if (p < end && *p == '-') {
		neg = true;
		p++;
	}
	if (!digit(p, end))
		return fail(s, start, "invalid token");
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	if (*p == '0') {
		p++;
		if (digit(p, end))
			return fail(s, start, "invalid token");
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
			return fail(s, start, "invalid token");
		while (digit(p, end))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		is_int = false;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (!digit(p, end))
			return fail(s, start, "invalid token");
		while (digit(p, end))
			p++;
	}
	if (is_int) {
		if (v > limit)
			return fail(s, start, "too big integer");
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
			return fail(s, start, "real number overflow");
	}
	*ret_int = is_int;
	s->p = p;
	return 0;
}

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static bool literal(struct scan *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return false;
	s->p += n;
	return true;
}

/* Two keys of one object (slots) decode to the same bytes. */
static int same_key(struct scan *s, const struct slot *a, const struct slot *b, bool *ret)
{
	uint32_t la = a->len & ~ESCAPED, lb = b->len & ~ESCAPED;
	struct sink da = {0}, db = {0};
	const unsigned char *save = s->p;
	int r = 0;

	if (!(a->len & ESCAPED) && !(b->len & ESCAPED)) {
		*ret = la == lb && memcmp(s->start + a->off, s->start + b->off, la) == 0;
		return 0;
	}
	/* the rare key with an escape: both decoded (a decoded key is never longer) */
	da.cap = (size_t)la + 1;
	db.cap = (size_t)lb + 1;
	da.v = malloc(da.cap);
	db.v = malloc(db.cap);
	if (!da.v || !db.v) {
		s->nomem = 1;
		r = -ENOMEM;
		goto out;
	}
	/* both were checked already: decoding them again cannot fail */
	s->p = s->start + a->off - 1;
	(void)string(s, &da);
	s->p = s->start + b->off - 1;
	(void)string(s, &db);
	*ret = da.n == db.n && memcmp(da.v, db.v, da.n) == 0;
out:
	s->p = save;
	free(da.v);
	free(db.v);
	return r;
}

static int grow(struct scan *s)
{
	size_t cap = s->cap ? s->cap * 2 : SLOTS_MIN;
	struct slot *v = calloc(cap, sizeof(*v));

	if (!v) {
		s->nomem = 1;
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->cap; i++) {
		size_t j;
		if (!s->slots[i].obj)
			continue;
		for (j = s->slots[i].hash & (cap - 1); v[j].obj; j = (j + 1) & (cap - 1))
			;
		v[j] = s->slots[i];
	}
	free(s->slots);
	s->slots = v;
	s->cap = cap;
	return 0;
}

/* Remember key k of its object: -EINVAL when that object has it already. */
static int key_once(struct scan *s, struct slot k, const unsigned char *at)
{
	size_t j;
	bool same;

	if (2 * (s->used + 1) > s->cap && grow(s) < 0)
		return -ENOMEM;
	for (j = k.hash & (s->cap - 1); s->slots[j].obj; j = (j + 1) & (s->cap - 1)) {
		if (s->slots[j].obj != k.obj || s->slots[j].hash != k.hash)
			continue;
		if (same_key(s, &s->slots[j], &k, &same) < 0)
			return -ENOMEM;
		if (same)
			return fail(s, at, "duplicate object key");
	}
	s->slots[j] = k;
	s->used++;
	return 0;
}

/* The want of a member of an object that is w. */
static enum want member(enum want w, const struct sink *key)
{
	const char *k = key->v;

	if (key->n >= key->cap)
		return W_NONE;
	if (w == W_ROOT)
		return strcmp(k, "action") == 0         ? W_ACTION
		       : strcmp(k, "workflow_job") == 0 ? W_JOB
		       : strcmp(k, "repository") == 0   ? W_REPO
		                                        : W_NONE;
	if (w == W_JOB)
		return strcmp(k, "id") == 0       ? W_ID
		       : strcmp(k, "run_id") == 0 ? W_RUN_ID
		       : strcmp(k, "labels") == 0 ? W_LABELS
		                                  : W_NONE;
	if (w == W_REPO)
		return strcmp(k, "full_name") == 0 ? W_NAME : W_NONE;
	return W_NONE;
}

static int value(struct scan *s, enum want w);

static int object(struct scan *s, enum want w)
{
	uint32_t obj = ++s->n_obj;
	int r;

	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return 0;
	}
	for (;;) {
		char kbuf[KEY_MAX];
		struct sink key = {.v = kbuf, .cap = sizeof(kbuf), .hash = 2166136261u};
		const unsigned char *at = s->p;
		struct slot k;

		if (s->p >= s->end || *s->p != '"')
			return fail(s, s->p, "string or '}' expected");
		r = string(s, &key);
		if (r < 0)
			return r;
		k = (struct slot){.obj = obj,
		                  .hash = key.hash,
		                  .off = (uint32_t)(at + 1 - s->start),
		                  .len = (uint32_t)(s->p - 1 - (at + 1)) |
		                         (key.escaped ? ESCAPED : 0)};
		r = key_once(s, k, at);
		if (r < 0)
			return r;
		skip_ws(s);
		if (s->p >= s->end || *s->p != ':')
			return fail(s, s->p, "':' expected");
		s->p++;
		skip_ws(s);
		r = value(s, s->out ? member(w, &key) : W_NONE);
		if (r < 0)
			return r;
		skip_ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			skip_ws(s);
			continue;
		}
		if (s->p < s->end && *s->p == '}') {
			s->p++;
			return 0;
		}
		return fail(s, s->p, "'}' expected");
	}
}

/* One element of workflow_job.labels, at s->p. */
static int label(struct scan *s)
{
	struct webhook_scan *o = s->out;
	char lb[WEBHOOK_LABEL_MAX];
	struct sink v = {.v = lb, .cap = sizeof(lb)};
	size_t i = o->n_labels++;
	int r;

	if (s->p >= s->end || *s->p != '"') {
		if (o->bad_label == SIZE_MAX)
			o->bad_label = i;
		return value(s, W_NONE);
	}
	r = string(s, &v);
	if (r < 0)
		return r;
	if (v.n == 0 || v.n >= sizeof(lb)) {
		if (o->bad_label == SIZE_MAX)
			o->bad_label = i;
		return 0;
	}
	if (o->bad_label == SIZE_MAX && i < WEBHOOK_LABELS_MAX && strv_push(&o->labels, lb) < 0) {
		s->nomem = 1;
		return -ENOMEM;
	}
	return 0;
}

static int array(struct scan *s, enum want w)
{
	int r;

	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return 0;
	}
	for (;;) {
		r = w == W_LABELS ? label(s) : value(s, W_NONE);
		if (r < 0)
			return r;
		skip_ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			skip_ws(s);
			continue;
		}
		if (s->p < s->end && *s->p == ']') {
			s->p++;
			return 0;
		}
		return fail(s, s->p, "']' expected");
	}
}

static int container(struct scan *s, enum want w)
{
	int r;

	s->depth++;
	r = *s->p == '{' ? object(s, w) : array(s, w);
	s->depth--;
	return r;
}

static int scalar_string(struct scan *s, enum want w)
{
	struct webhook_scan *o = s->out;
	struct sink v = {0};
	int r;

	if (w == W_ACTION) {
		v = (struct sink){.v = o->action, .cap = sizeof(o->action)};
	} else if (w == W_NAME) {
		v = (struct sink){.v = o->full_name, .cap = sizeof(o->full_name)};
	} else {
		return string(s, NULL);
	}
	r = string(s, &v);
	if (r < 0)
		return r;
	if (w == W_ACTION) {
		o->action_string = true;
		o->action_long = v.n >= v.cap;
	} else {
		o->full_name_string = true;
		o->full_name_len = v.n;
		if (v.n >= v.cap)
			o->full_name[0] = '\0';
	}
	return 0;
}

static int value(struct scan *s, enum want w)
{
	struct webhook_scan *o = s->out;
	bool is_int;
	int64_t n = 0;
	int r;

	if (s->p >= s->end)
		return fail(s, s->p, "premature end of input");
	/* as jansson counts: every value, a scalar too, is one level deeper than its container */
	if (s->depth >= MAX_DEPTH)
		return fail(s, s->p, "maximum parsing depth reached");
	switch (*s->p) {
	case '{':
		if (w == W_JOB)
			o->job_object = true;
		if (w != W_ROOT && w != W_JOB && w != W_REPO)
			w = W_NONE;
		return container(s, w);
	case '[':
		if (w == W_LABELS)
			o->labels_array = true;
		return container(s, w == W_LABELS ? W_LABELS : W_NONE);
	case '"':
		return scalar_string(s, w);
	case 't':
		return literal(s, "true") ? 0 : fail(s, s->p, "invalid token");
	case 'f':
		return literal(s, "false") ? 0 : fail(s, s->p, "invalid token");
	case 'n':
		return literal(s, "null") ? 0 : fail(s, s->p, "invalid token");
	default:
		r = number(s, &is_int, &n);
		if (r < 0)
			return r;
		if (w == W_ID && is_int) {
			o->id_integer = true;
			o->id = n;
		} else if (w == W_RUN_ID && is_int) {
			o->run_id_integer = true;
			o->run_id = n;
		}
		return 0;
	}
}

/* Line and column (1-based) of at, as an editor counts them (UTF-8 characters). */
static void position(const struct scan *s, const unsigned char *at, int *ret_line, int *ret_col)
{
	int line = 1, col = 1;

	for (const unsigned char *p = s->start; p < at && p < s->end; p++) {
		if (*p == '\n') {
			line++;
			col = 1;
		} else if ((*p & 0xC0) != 0x80) {
			col++;
		}
	}
	*ret_line = line;
	*ret_col = col;
}

int webhook_scan(const char *body, size_t len, bool want_job, struct webhook_scan *ret,
                 int *ret_line, int *ret_column)
{
	struct scan s = {0};
	int r;

	memset(ret, 0, sizeof(*ret));
	ret->bad_label = SIZE_MAX;
	s.start = s.p = (const unsigned char *)(body ? body : "");
	s.end = s.start + (body ? len : 0);
	s.out = want_job ? ret : NULL;
	if (len >= ESCAPED) {
		*ret_line = *ret_column = 1;
		return -EINVAL; /* offsets are 31 bits; the intake's cap is far below */
	}
	skip_ws(&s);
	if (s.p >= s.end || (*s.p != '{' && *s.p != '[')) {
		r = fail(&s, s.p, "'[' or '{' expected");
	} else {
		ret->root_object = *s.p == '{';
		r = value(&s, want_job ? W_ROOT : W_NONE);
	}
	if (r == 0) {
		skip_ws(&s);
		if (s.p != s.end)
			r = fail(&s, s.p, "end of file expected");
	}
	free(s.slots);
	if (s.nomem)
		return -ENOMEM;
	if (r < 0) {
		position(&s, s.err_at, ret_line, ret_column);
		return -EINVAL;
	}
	if (ret->bad_label == SIZE_MAX)
		ret->bad_label = ret->n_labels;
	return 0;
}

void webhook_scan_release(struct webhook_scan *sc)
{
	if (sc)
		strv_release(&sc->labels);
}
