/*
 * Bounded worker pools for one pass's actions, one per lane. Threads live
 * only for the pass: a pass is rare (minutes apart) and thread start-up is
 * microseconds, so a persistent pool would buy nothing but shutdown
 * complexity. It must never run a lane on more threads than its bound, nor
 * leave a task unrun because a thread could not be started.
 */
#include "util/common.h"
#include "manager/executor.h"

#include <pthread.h>
#include <stdatomic.h>

#define MAX_THREADS_PER_LANE 128

struct pool {
	const struct executor_lane *lane;
	const atomic_bool *cancel;
	atomic_size_t next;
	atomic_size_t started;
	size_t threads; /* threads that work in it, the caller's included */
};

static void *worker(void *arg)
{
	struct pool *p = arg;

	pthread_setname_np(pthread_self(), "executor");
	for (;;) {
		if (p->cancel && atomic_load(p->cancel))
			break;
		size_t i = atomic_fetch_add(&p->next, 1);
		if (i >= p->lane->n)
			break;
		atomic_fetch_add(&p->started, 1);
		p->lane->fn(p->lane->ctx, i);
	}
	return NULL;
}

size_t executor_run_lanes(const struct executor_lane *lanes, size_t n_lanes,
                          const atomic_bool *cancel)
{
	struct pool pools[EXECUTOR_MAX_LANES];
	pthread_t tids[EXECUTOR_MAX_LANES * MAX_THREADS_PER_LANE];
	size_t spawned = 0, started = 0;
	struct pool *mine = NULL;

	if (n_lanes > EXECUTOR_MAX_LANES)
		n_lanes = EXECUTOR_MAX_LANES;
	for (size_t l = 0; l < n_lanes; l++) {
		struct pool *p = &pools[l];
		size_t nt = lanes[l].concurrency ? lanes[l].concurrency : 1;

		p->lane = &lanes[l];
		p->cancel = cancel;
		p->threads = 0;
		atomic_init(&p->next, 0);
		atomic_init(&p->started, 0);
		if (lanes[l].n == 0)
			continue;
		if (nt > lanes[l].n)
			nt = lanes[l].n;
		if (nt > MAX_THREADS_PER_LANE)
			nt = MAX_THREADS_PER_LANE;
		/* the calling thread works in the first lane with tasks */
		if (!mine) {
			mine = p;
			p->threads = 1;
		}
		while (p->threads < nt) {
			if (pthread_create(&tids[spawned], NULL, worker, p) != 0)
				break; /* fewer threads is still correct */
			spawned++;
			p->threads++;
		}
	}
	if (mine)
		worker(mine);
	/* a lane no thread could be started for is run here, after the caller's */
	for (size_t l = 0; l < n_lanes; l++)
		if (lanes[l].n && pools[l].threads == 0)
			worker(&pools[l]);
	for (size_t i = 0; i < spawned; i++)
		pthread_join(tids[i], NULL);
	for (size_t l = 0; l < n_lanes; l++)
		started += atomic_load(&pools[l].started);
	return started;
}

size_t executor_run(size_t n, size_t concurrency, executor_fn fn, void *ctx,
                    const atomic_bool *cancel)
{
	struct executor_lane lane = {.n = n, .concurrency = concurrency, .fn = fn, .ctx = ctx};
	return executor_run_lanes(&lane, 1, cancel);
}
