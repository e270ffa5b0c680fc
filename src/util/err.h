/*
 * Errors as values. A function that can fail returns 0 or a negative errno
 * and, on failure, fills the caller's struct err with one message fit for the
 * log. Library code never logs above debug; the one caller that decides what
 * to do logs the message once. A NULL struct err is allowed everywhere.
 */
#ifndef RUNNERD_ERR_H
#define RUNNERD_ERR_H

#include "util/common.h"

struct err {
	int code;      /* negative errno, 0 when unset */
	char msg[512]; /* NUL-terminated, never holds a secret */
};

/* Fill e (if not NULL) and return code (a negative errno). */
int err_set(struct err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prepend "context: " to the message already in e; returns e->code (or -EIO). */
int err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void err_clear(struct err *e);

#endif
