/*
 * The executor: runs n independent tasks on at most `concurrency` threads
 * and returns when all are done. Tasks are claimed in index order; when
 * *cancel becomes true no new task starts (those under way finish). A task
 * never aborts the others: each reports its own outcome.
 */
#ifndef RUNNERD_EXECUTOR_H
#define RUNNERD_EXECUTOR_H

#include "util/common.h"

#include <stdatomic.h>

typedef void (*executor_fn)(void *ctx, size_t index);

/* Returns how many tasks were started (< n only when cancelled). */
size_t executor_run(size_t n, size_t concurrency, executor_fn fn, void *ctx,
                    const atomic_bool *cancel);

#endif
