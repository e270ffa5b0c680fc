/*
 * The executor: runs independent tasks on a bounded number of threads and
 * returns when all are done. Tasks are given out in lanes: each lane has
 * its own tasks and its own bound, and the lanes run at the same time, so
 * slow tasks in one lane never hold a thread another lane needs. Within a
 * lane tasks are claimed in index order; when *cancel becomes true no new
 * task starts (those under way finish). It must never let a task abort the
 * others: each reports its own outcome.
 */
#ifndef RUNNERD_EXECUTOR_H
#define RUNNERD_EXECUTOR_H

#include "util/common.h"

#include <stdatomic.h>

typedef void (*executor_fn)(void *ctx, size_t index);

struct executor_lane {
	size_t n;           /* tasks: fn(ctx, 0) .. fn(ctx, n - 1) */
	size_t concurrency; /* at most this many at once in this lane (0: 1) */
	executor_fn fn;
	void *ctx;
};

#define EXECUTOR_MAX_LANES 4

/*
 * Run the lanes (at most EXECUTOR_MAX_LANES) at once. Returns how many
 * tasks were started over all lanes (fewer than all only when cancelled).
 */
size_t executor_run_lanes(const struct executor_lane *lanes, size_t n_lanes,
                          const atomic_bool *cancel);

/* One lane. */
size_t executor_run(size_t n, size_t concurrency, executor_fn fn, void *ctx,
                    const atomic_bool *cancel);

#endif
