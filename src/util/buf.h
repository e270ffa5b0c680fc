/*
 * A growable byte buffer with a mandatory upper bound (curl's dynbuf idea):
 * everything filled from the network or from an instance goes through one,
 * so no peer can make runnerd allocate without limit. The data is always
 * NUL-terminated so it can be used as a string.
 */
#ifndef RUNNERD_BUF_H
#define RUNNERD_BUF_H

#include "util/common.h"

struct buf {
	char *data; /* NULL until the first append; owned by the buf */
	size_t len; /* bytes used, not counting the terminating NUL */
	size_t cap; /* bytes allocated */
	size_t max; /* most bytes len may ever reach */
	/* It holds a secret: growing it never leaves a copy in freed memory (the
	 * old block is wiped, not realloc'ed), and releasing it wipes it. */
	bool secret;
};

#define BUF_INIT(maxbytes)                                                                         \
	{                                                                                          \
		NULL, 0, 0, (maxbytes), false                                                      \
	}
#define BUF_INIT_SECRET(maxbytes)                                                                  \
	{                                                                                          \
		NULL, 0, 0, (maxbytes), true                                                       \
	}

/* Empty, bounded by max; buf_init_secret for a buffer that will hold a secret. */
void buf_init(struct buf *b, size_t max);
void buf_init_secret(struct buf *b, size_t max);
/* Free the data (wiped first when secret) and reset to empty (max is kept). NULL-safe. */
void buf_release(struct buf *b);
/* Empty the buffer but keep its memory. */
void buf_reset(struct buf *b);
/* -E2BIG when the result would exceed max (nothing appended), -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Always a valid C string ("" when empty). */
const char *buf_str(const struct buf *b);
/* Hand the data to the caller (malloc'ed, NUL-terminated, never NULL on success); b is reset. */
char *buf_detach(struct buf *b, size_t *ret_len);
/* Append s as a JSON string literal, quotes included (controls and DEL as \uXXXX). */
int buf_json_string(struct buf *b, const char *s);
/* Overwrite the contents with zeroes before freeing (for secrets, secret or not). */
void buf_wipe(struct buf *b);

#endif
