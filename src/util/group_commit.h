/*
 * Group commit: writers that each need their record on disk before they
 * answer hand it to one committer thread, which writes every record that
 * waits as one batch (one transaction, one fsync) and then tells each
 * writer how it went. Records that arrive while a batch is being written
 * join the next one, so under load one fsync serves many writers; alone,
 * a record is written at once (nothing waits for a batch to fill).
 *
 * The committer never writes anything itself: fn does, with whatever
 * storage the caller has. A record is never reported done before fn
 * returned for its batch, and every record handed in is reported exactly
 * once, stop included (a stop writes what waits first).
 */
#ifndef RUNNERD_GROUP_COMMIT_H
#define RUNNERD_GROUP_COMMIT_H

#include "util/common.h"

#include <pthread.h>

struct group_commit_item;

/*
 * Called on the group commit's reporting thread (not the one that writes:
 * the next batch is being written meanwhile), in the order items were
 * written, once the item's batch was written:
 * r is what fn returned for that batch (0, or a negative errno: then none
 * of the batch was written). The item is the caller's again from then on.
 */
typedef void (*group_commit_done_fn)(struct group_commit_item *it, int r);

/* Embedded in the caller's record (at any offset); only done is the caller's to set. */
struct group_commit_item {
	group_commit_done_fn done; /* NULL: group_commit_wait waits for it */
	/* the committer's */
	struct group_commit_item *next;
	bool finished;
	int result;
};

/*
 * Write the n items of v (n >= 1, in the order they were handed in) as
 * one batch: 0 when every one is on disk, a negative errno when none is.
 */
typedef int (*group_commit_fn)(void *ctx, struct group_commit_item **v, size_t n);

struct group_commit_stats {
	uint64_t batches;   /* calls of fn */
	uint64_t items;     /* items written (or failed) */
	uint64_t max_batch; /* the largest batch yet */
	uint64_t failed;    /* batches fn failed */
	uint64_t busy_us;   /* time spent in fn, all batches (microseconds, monotonic) */
};

struct group_commit;

/*
 * Start the committer and reporting threads. Batches hold at most max_batch items (>= 1;
 * more wait for the next one). -EINVAL, -ENOMEM, or pthread_create's error.
 */
int group_commit_start(group_commit_fn fn, void *ctx, size_t max_batch, struct group_commit **ret);

/*
 * Hand in it (its done set): done(it, r) follows on the reporting thread.
 * -ESHUTDOWN once the committer stops (done is then never called).
 */
int group_commit_submit(struct group_commit *g, struct group_commit_item *it);

/*
 * Hand in it (its done NULL) and wait until its batch was written: what
 * fn returned for it, or -ESHUTDOWN once the committer stops.
 */
int group_commit_wait(struct group_commit *g, struct group_commit_item *it);

void group_commit_get_stats(struct group_commit *g, struct group_commit_stats *ret);

/* Write what waits, report it, stop the threads, free g. NULL-safe. */
void group_commit_stop(struct group_commit *g);

#endif
