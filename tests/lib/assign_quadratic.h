/*
 * The consumer's assignment of a pass's runners to waiting jobs as it was
 * written before reactive_assign (quadratic: each job scanned the whole
 * list and the whole report), kept as the oracle reactive_assign is held
 * to (tests/unit/test_reactive.c) and as the "before" of
 * bench/bench_assign.c. Same contract as reactive_assign (reactive.h).
 */
#ifndef RUNNERD_ASSIGN_QUADRATIC_H
#define RUNNERD_ASSIGN_QUADRATIC_H

#include "reactive/reactive.h"

int assign_quadratic(const struct manager_report *rep, struct queue_job *v, size_t n, int64_t now,
                     size_t *ret_given, size_t *ret_n);

#endif
