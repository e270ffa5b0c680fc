/*
 * The events log (metrics.events_log): one JSON line per event, appended
 * (O_APPEND, one write per line, so lines of several writers never mix),
 * the file 0600 and its missing parent folders made 0750, reopened by path
 * on SIGHUP so logrotate can move it away. Safe to use from several
 * threads at once. Nothing here logs.
 */
#ifndef RUNNERD_METRICS_EVENTS_LOG_H
#define RUNNERD_METRICS_EVENTS_LOG_H

#include "util/common.h"
#include "util/err.h"
#include "metrics/metrics_event.h"

struct metrics_events_log;

/* Open (create) path for appending. */
int metrics_events_log_open(const char *path, struct metrics_events_log **ret, struct err *e);
/*
 * Open path again (the same or a new one) and switch to it; on failure the
 * old file stays in use.
 */
int metrics_events_log_reopen(struct metrics_events_log *l, const char *path, struct err *e);
/* Append ev as one line (at most METRICS_EVENT_LINE_MAX bytes: -E2BIG past it). */
int metrics_events_log_write(struct metrics_events_log *l, const struct metrics_event *ev,
                             struct err *e);
/* The path in use. */
const char *metrics_events_log_path(const struct metrics_events_log *l);
void metrics_events_log_free(struct metrics_events_log *l);

#endif
