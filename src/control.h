/*
 * The command side of the control API: each of status, reconcile, flush,
 * drain and resume works through a running daemon's unix socket, or, when
 * none runs, directly (taking the state-dir lock like the daemon does).
 */
#ifndef RUNNERD_CONTROL_H
#define RUNNERD_CONTROL_H

#include "util/buf.h"
#include "util/err.h"
#include "config/config.h"

void control_socket_path(const struct config *cfg, char *out, size_t cap);

/*
 * One request to the daemon, answered within timeout_s (> 0) or given up:
 * -ETIMEDOUT, e saying "the daemon did not answer within Ns (control socket
 * PATH); is it stuck? see its log". A full listen queue is waited out
 * within that time, not taken for a refusal. -ENOENT / -ECONNREFUSED when no daemon
 * listens (the caller then works directly); other errors are real. The
 * daemon runs passes on its pass loop only: POST /v1/reconcile and
 * /v1/flush[?busy=1] answer 200 with the report of a pass that started after
 * the request and covers its mode, 504 when none ended within 570 s (the
 * pass goes on), 503 while it stops; GET /v1/status answers the report of
 * an observation that started after the request, or, when none ended
 * within 15 s (a pass is under way), the last pass's report; /v1/drain and
 * /v1/resume set the flag, trigger a pass and answer at once. Any of them
 * may answer 503 with Retry-After when too many requests wait already.
 */
int control_call(const struct config *cfg, const char *method, const char *path, long timeout_s,
                 struct buf *ret_body, long *ret_status, struct err *e);

/* Print a report (the JSON of manager_report_json) for people. */
int control_print_report(const char *json, bool show_runners, bool show_actions, FILE *f);

#endif
