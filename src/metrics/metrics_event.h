/*
 * The events runnerd issues about its runners' lives, as the original
 * (github-runner-operator's metrics/events.py) names them: what a runner
 * wrote about itself (installation, the job's start and end), joined with
 * what GitHub says of its job, and one summary per flavor per pass. They
 * go, one JSON object per line, to metrics.events_log, and to whoever
 * else listens (the Prometheus histograms) through a metrics_sink.
 *
 * An event holds no pointer: it is copied freely, and every string in it
 * is bounded (a longer value read from a runner is refused, never cut).
 */
#ifndef RUNNERD_METRICS_EVENT_H
#define RUNNERD_METRICS_EVENT_H

#include "util/common.h"
#include "util/words.h"

enum metrics_event_kind {
	METRICS_EVENT_RUNNER_INSTALLED = 0, /* "runner_installed" */
	METRICS_EVENT_RUNNER_START,         /* "runner_start" */
	METRICS_EVENT_RUNNER_STOP,          /* "runner_stop" */
	METRICS_EVENT_RECONCILIATION,       /* "reconciliation" */
};
#define METRICS_EVENT_KIND_COUNT (METRICS_EVENT_RECONCILIATION + 1)

/* Bounds of the strings a runner's files may carry. */
#define METRICS_WORKFLOW_MAX   256 /* workflow name */
#define METRICS_REPO_MAX       256 /* "owner/repo" */
#define METRICS_GH_EVENT_MAX   64  /* "push", "pull_request", ... */
#define METRICS_STATUS_MAX     32  /* "normal", "abnormal", "repo-policy-check-failure" */
#define METRICS_CONCLUSION_MAX 32  /* GitHub's job conclusion: "success", "failure", ... */

struct metrics_event {
	enum metrics_event_kind kind;
	double timestamp; /* unix seconds, as the runner (or the pass) wrote it */
	char flavor[FLAVOR_NAME_MAX];

	/* runner_installed: installed - installation start; reconciliation: the pass's */
	double duration;

	/* runner_start, runner_stop */
	char workflow[METRICS_WORKFLOW_MAX];
	char repo[METRICS_REPO_MAX];
	char github_event[METRICS_GH_EVENT_MAX];
	double idle;                     /* runner_start: max(pre-job - installed, 0) */
	bool has_queue_duration;         /* runner_start: GitHub's job was found */
	double queue_duration;           /* max(started_at - created_at, 0) */
	char status[METRICS_STATUS_MAX]; /* runner_stop */
	bool has_status_code;            /* runner_stop: status_info.code */
	int64_t status_code;
	double job_duration;                         /* runner_stop: max(post - pre, 0) */
	char job_conclusion[METRICS_CONCLUSION_MAX]; /* runner_stop: "" unknown */

	/* reconciliation */
	int64_t crashed_runners; /* runner_start - runner_stop issued in the pass */
	int64_t idle_runners;
	int64_t active_runners;
	int64_t expected_runners;
};

/* "runner_installed", ...; "invalid" out of range. */
const char *metrics_event_name(enum metrics_event_kind k);

/* The longest line an event takes in the events log, its newline included. */
#define METRICS_EVENT_LINE_MAX 4096

/*
 * ev as one JSON object and a newline into out (metrics_event.c), with the
 * original's field names: "event" (the snake_case name), "timestamp", then
 * the kind's fields; optional ones (queue_duration, status_info,
 * job_conclusion) left out when unknown. Returns the length written (NUL
 * not counted), or -E2BIG when it would not fit in cap (out then holds "").
 */
int metrics_event_json(const struct metrics_event *ev, char *out, size_t cap);

/*
 * Who hears of what the extraction issued and quarantined, besides the
 * events log: the daemon's Prometheus histograms and counters. Either
 * callback may be NULL. They are called on the thread that issues, must not
 * block, and must not keep the pointers they get.
 */
struct metrics_sink {
	void (*event)(void *ctx, const struct metrics_event *ev);
	/* a runner's storage was quarantined; cause is a short fixed word ("too_big", ...) */
	void (*quarantined)(void *ctx, const char *flavor, const char *cause);
	void *ctx;
};

#endif
