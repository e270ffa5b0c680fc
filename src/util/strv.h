/*
 * A list of malloc'ed strings, the one string-vector type of runnerd
 * (config lists, labels, file listings). A zeroed struct strv is empty.
 */
#ifndef RUNNERD_STRV_H
#define RUNNERD_STRV_H

#include "util/common.h"

struct strv {
	char **v;
	size_t n;
};

/* Append a copy of s (n bytes of it with strv_push_n); -ENOMEM leaves l as it was. */
int strv_push(struct strv *l, const char *s);
int strv_push_n(struct strv *l, const char *s, size_t n);
/* Whether l holds s (strcmp, or strcasecmp when nocase). */
bool strv_contains(const struct strv *l, const char *s, bool nocase);
/* Free every string and the array; l is empty again. NULL-safe. */
void strv_release(struct strv *l);

#endif
