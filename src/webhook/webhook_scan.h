/*
 * The one pass over a delivery's body that webhook_parse makes: the whole
 * body checked as strict JSON (the same documents jansson's json_loadb
 * with JSON_REJECT_DUPLICATES accepts: an object or array at the top,
 * UTF-8, escapes, surrogate pairs, no \u0000, integers within 64 bits, no
 * duplicate key in any object, at most 2048 levels; but a raw NUL byte
 * right after a number or literal, which jansson skips, is refused), and
 * of a workflow_job
 * only the few fields runnerd reads taken out on the way, without building
 * a tree. Private to src/webhook; pure (no I/O, no clock).
 */
#ifndef RUNNERD_WEBHOOK_SCAN_H
#define RUNNERD_WEBHOOK_SCAN_H

#include "webhook/webhook.h"

#define WEBHOOK_SCAN_ACTION_MAX 32 /* longer: no action runnerd knows */

/* What the scan found; a field is false/0 when absent or of another type. */
struct webhook_scan {
	bool root_object; /* the top is an object (else an array) */
	/* with want_job only */
	bool action_string;
	bool action_long; /* longer than WEBHOOK_SCAN_ACTION_MAX - 1 */
	char action[WEBHOOK_SCAN_ACTION_MAX];
	bool job_object; /* workflow_job */
	bool id_integer; /* workflow_job.id */
	int64_t id;
	bool run_id_integer; /* workflow_job.run_id */
	int64_t run_id;
	bool labels_array;     /* workflow_job.labels */
	size_t n_labels;       /* its elements */
	size_t bad_label;      /* the first that is no label (see below); n_labels when none */
	struct strv labels;    /* the first WEBHOOK_LABELS_MAX, when all are labels so far */
	bool full_name_string; /* repository.full_name */
	size_t full_name_len;  /* decoded; >= WEBHOOK_REPO_MAX: too long (not kept) */
	char full_name[WEBHOOK_REPO_MAX];
};

/*
 * Check body[0..len) and, when want_job, take out the fields of a
 * workflow_job into *ret (zeroed first; release its labels with
 * webhook_scan_release, also after a failure). A label is a string of
 * 1..WEBHOOK_LABEL_MAX-1 bytes. 0, or -EINVAL when the body is not such
 * JSON: then *ret_line and *ret_column (1-based) say where, -ENOMEM.
 */
int webhook_scan(const char *body, size_t len, bool want_job, struct webhook_scan *ret,
                 int *ret_line, int *ret_column);
void webhook_scan_release(struct webhook_scan *sc);

#endif
