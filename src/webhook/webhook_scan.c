/*
 * webhook_scan.h's one pass: a recursive-descent checker of strict JSON
 * (its structure here, its tokens in webhook_scan_token.c) that keeps
 * nothing but the fields a workflow_job delivery is read for.
 * A tree of a 7 KB delivery (jansson) cost about 80 us and most of the
 * intake's CPU; this pass reads each byte once. It must accept exactly
 * what jansson accepts (tests/fuzz/fuzz_webhook.c compares the two on
 * every input), never read past len, never recurse past MAX_DEPTH, and
 * never put body text in what it returns but the fields it was asked for.
 */
#include "util/common.h"
#include "webhook/webhook_scan_internal.h"

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
	(void)scan_string(s, &da);
	s->p = s->start + b->off - 1;
	(void)scan_string(s, &db);
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
			return scan_fail(s, at, "duplicate object key");
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

/* After a member or an element: 1 past a ',' (another follows), 0 past close, or an error. */
static int next(struct scan *s, char close, const char *expected)
{
	scan_ws(s);
	if (s->p < s->end && (*s->p == ',' || *s->p == close)) {
		bool more = *s->p == ',';

		s->p++;
		if (more)
			scan_ws(s);
		return more ? 1 : 0;
	}
	return scan_fail(s, s->p, expected);
}

static int object(struct scan *s, enum want w)
{
	uint32_t obj = ++s->n_obj;
	int r;

	s->p++;
	scan_ws(s);
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
			return scan_fail(s, s->p, "string or '}' expected");
		r = scan_string(s, &key);
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
		scan_ws(s);
		if (s->p >= s->end || *s->p != ':')
			return scan_fail(s, s->p, "':' expected");
		s->p++;
		scan_ws(s);
		r = value(s, s->out ? member(w, &key) : W_NONE);
		if (r == 0)
			r = next(s, '}', "'}' expected");
		if (r <= 0)
			return r;
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
	r = scan_string(s, &v);
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
	scan_ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return 0;
	}
	for (;;) {
		r = w == W_LABELS ? label(s) : value(s, W_NONE);
		if (r == 0)
			r = next(s, ']', "']' expected");
		if (r <= 0)
			return r;
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
		return scan_string(s, NULL);
	}
	r = scan_string(s, &v);
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
		return scan_fail(s, s->p, "premature end of input");
	/* as jansson counts: every value, a scalar too, is one level deeper than its container */
	if (s->depth >= MAX_DEPTH)
		return scan_fail(s, s->p, "maximum parsing depth reached");
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
		return scan_literal(s, "true") ? 0 : scan_fail(s, s->p, "invalid token");
	case 'f':
		return scan_literal(s, "false") ? 0 : scan_fail(s, s->p, "invalid token");
	case 'n':
		return scan_literal(s, "null") ? 0 : scan_fail(s, s->p, "invalid token");
	default:
		r = scan_number(s, &is_int, &n);
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
	scan_ws(&s);
	if (s.p >= s.end || (*s.p != '{' && *s.p != '[')) {
		r = scan_fail(&s, s.p, "'[' or '{' expected");
	} else {
		ret->root_object = *s.p == '{';
		r = value(&s, want_job ? W_ROOT : W_NONE);
	}
	if (r == 0) {
		scan_ws(&s);
		if (s.p != s.end)
			r = scan_fail(&s, s.p, "end of file expected");
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
