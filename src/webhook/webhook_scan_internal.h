/*
 * What the two files of the one-pass scan share, private to src/webhook:
 * its state, and the tokens (webhook_scan_token.c: strings, numbers,
 * literals, whitespace) that the structure (webhook_scan.c: objects,
 * arrays, duplicate keys, the fields kept) is made of.
 */
#ifndef RUNNERD_WEBHOOK_SCAN_INTERNAL_H
#define RUNNERD_WEBHOOK_SCAN_INTERNAL_H

#include "webhook/webhook_scan.h"

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

/* Note the first error (why, at) and return -EINVAL. */
int scan_fail(struct scan *s, const unsigned char *at, const char *why);
/* n decoded bytes into o: hashed (FNV-1a), counted, kept while they fit. */
void scan_put(struct sink *o, const unsigned char *b, size_t n);
/* A string at s->p (its quote), checked, decoded into o when o; s->p after it. */
int scan_string(struct scan *s, struct sink *o);
/* A number at s->p, checked: *ret_int, and *ret_value when it is an integer. */
int scan_number(struct scan *s, bool *ret_int, int64_t *ret_value);
/* Past JSON's whitespace (inline: it runs between every two tokens). */
static inline void scan_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}
/* Past word when s->p is at it. */
bool scan_literal(struct scan *s, const char *word);

#endif
