/*
 * Time, in one place: the monotonic clock every timeout and deadline is
 * measured on, the wall clock that goes into records and reports, and the
 * one RFC 3339 parser (GitHub's and LXD's timestamps).
 */
#ifndef RUNNERD_CLOCK_H
#define RUNNERD_CLOCK_H

#include "util/common.h"

/* Milliseconds on CLOCK_MONOTONIC: for timeouts and deadlines, never stored. */
int64_t clock_mono_ms(void);
/* Microseconds on the same clock: for timing what takes less than a millisecond. */
int64_t clock_mono_us(void);
/* Unix time in milliseconds: for records, reports and ages. */
int64_t clock_wall_ms(void);
/* Sleep ms milliseconds (restarted after a signal). */
void clock_sleep_ms(int64_t ms);

/*
 * "2024-05-01T10:00:00Z", "...T10:00:00.123456789+02:00" -> unix seconds.
 * Strict: the whole string, a 'T' (or 't') between date and time, 'Z' (or
 * 'z') or a +hh:mm / -hh:mm offset; fractions are dropped. -EINVAL
 * otherwise (*ret untouched).
 */
int clock_parse_rfc3339(const char *s, int64_t *ret);

#endif
