/*
 * The daemon of runnerd serve, shared by its three files: cmd_serve.c
 * (start, signals, reload, stop), cmd_serve_loops.c (the pass loop and the
 * status loop) and cmd_serve_control.c (the control API, and the requests
 * that wait for a run of a loop).
 */
#ifndef RUNNERD_CMD_SERVE_H
#define RUNNERD_CMD_SERVE_H

#include "http/server.h"
#include "manager/manager.h"
#include "util/buf.h"

#include <pthread.h>

/* The most a report as JSON may take. */
#define REPORT_MAX (64 << 20)

/* A control request set aside until a run of its lane ends. */
struct waiter {
	uint64_t run;              /* the first run that starts after the request */
	struct http_deferred *def; /* where its answer goes */
	struct waiter *next;
};

/*
 * Runs of one kind, one at a time on their own thread: passes, or the
 * observations status asks for. Requests that arrive during a run share
 * the next one.
 */
struct lane {
	bool trigger;
	uint64_t started;       /* runs started; run n is the n-th */
	struct waiter *waiters; /* requests for a run not yet ended */
};

struct reactive;
struct serve_metrics;

struct daemon {
	struct manager *m;
	struct reactive *rx;           /* webhooks -> queue -> waiting jobs */
	struct serve_metrics *metrics; /* /metrics and /healthz; told of every pass */
	struct config *cfg;
	const char *config_path; /* what SIGHUP reloads */
	pthread_mutex_t lock;    /* guards everything below */
	pthread_cond_t cond;     /* to the loops: triggered, or stop (CLOCK_MONOTONIC) */
	bool stop;
	bool reload;         /* SIGHUP: the pass loop reloads before its next pass */
	enum plan_mode mode; /* of the next pass: the strongest asked */
	int64_t later_at;    /* a pass is asked for by then (mono ms; 0: none) */
	bool full_asked;     /* the next pass was asked for by more than webhooks */
	struct lane passes;
	struct lane looks; /* observations for status */
	struct manager_report last;
	bool have_last;
	struct buf last_json; /* last as JSON, once status needed it; empty: not yet */
};

/* cmd_serve_loops.c */
void *serve_pass_loop(void *d);   /* runs passes, and reloads between them */
void *serve_status_loop(void *d); /* runs observations for status requests */
void serve_trigger(struct daemon *d);
void serve_trigger_cb(void *d); /* for the webhook intake */
/* A pass within SERVE_LATER_MS, merged with any that starts before (the intake's). */
void serve_trigger_later_cb(void *d);
#define SERVE_LATER_MS 1000

/* cmd_serve_control.c */
extern const struct http_route serve_control_routes[];
extern const size_t serve_n_control_routes;
void serve_control_options(struct http_server_options *o);
/* Hand run n's report (r) to the requests of l that wait for it. */
void serve_answer_waiters(struct daemon *d, struct lane *l, uint64_t n,
                          const struct manager_report *r);
/* Run n of looks could not observe (why): its requests get the last pass's report. */
void serve_answer_unobserved(struct daemon *d, uint64_t n, const char *why);
/* Stopping: every request still waiting gets a 503. */
void serve_answer_stopping(struct daemon *d);

/* cmd_serve.c */
void serve_reload(struct daemon *d); /* SIGHUP, on the pass loop between two passes */

#endif
