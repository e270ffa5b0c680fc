/*
 * Safe parsing and string helpers: strict integer, duration and size parsers
 * (no atoi), bounded copies, and name checks shared by config and manager.
 */
#ifndef RUNNERD_STRUTIL_H
#define RUNNERD_STRUTIL_H

#include "util/common.h"

/* Whole-string base-10 parse; -EINVAL on junk, -ERANGE outside [min, max]. */
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret);
/* "30s", "5m", "6h", "7d" (a bare number is refused) -> seconds. */
int parse_duration(const char *s, int64_t *ret_seconds);
/* "512MiB", "7GiB", "10G", "1024" (bytes) -> bytes. */
int parse_size(const char *s, int64_t *ret_bytes);
/* Print a duration as the largest exact unit ("90s", "5m", "6h", "7d"). */
void format_duration(int64_t seconds, char *out, size_t cap);
/* Print a size as the largest exact binary unit ("7GiB", "512MiB", "100B"). */
void format_size(int64_t bytes, char *out, size_t cap);

/* Copy with truncation; always NUL-terminates; returns strlen(src). */
size_t str_copy(char *dst, const char *src, size_t cap);
bool str_has_prefix(const char *s, const char *prefix);
/* Does text hold line as one whole line (a here-document's delimiter)? */
bool str_has_line(const char *text, const char *line);
bool str_eq(const char *a, const char *b); /* NULL-safe */
/* strdup that returns NULL for NULL. */
char *str_dup(const char *s);

/* [a-z0-9-], 1..maxlen characters, not starting or ending with '-'. */
bool name_is_valid(const char *s, size_t maxlen);
/* The value of one hex digit (either case), -1 for any other character. */
int hex_digit_value(char c);
/* s == "<manager>-" followed by exactly 12 lowercase hex digits. */
bool name_is_owned(const char *manager, const char *s);

/* Constant-time comparison of two byte strings of known length. */
bool mem_equal_ct(const void *a, const void *b, size_t n);

#endif
