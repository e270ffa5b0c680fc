/*
 * A bounded worker pool for one pass's actions. Threads live only for the
 * pass: a pass is rare (minutes apart) and thread start-up is microseconds,
 * so a persistent pool would buy nothing but shutdown complexity.
 */
#include "util/common.h"
#include "manager/executor.h"

#include <pthread.h>
#include <stdatomic.h>

struct pool {
	size_t n;
	executor_fn fn;
	void *ctx;
	const atomic_bool *cancel;
	atomic_size_t next;
	atomic_size_t started;
};

static void *worker(void *arg)
{
	struct pool *p = arg;
	for (;;) {
		if (p->cancel && atomic_load(p->cancel))
			break;
		size_t i = atomic_fetch_add(&p->next, 1);
		if (i >= p->n)
			break;
		atomic_fetch_add(&p->started, 1);
		p->fn(p->ctx, i);
	}
	return NULL;
}

size_t executor_run(size_t n, size_t concurrency, executor_fn fn, void *ctx,
                    const atomic_bool *cancel)
{
	struct pool p = {.n = n, .fn = fn, .ctx = ctx, .cancel = cancel};
	pthread_t tids[128];
	size_t nt, spawned = 0;

	if (n == 0)
		return 0;
	atomic_init(&p.next, 0);
	atomic_init(&p.started, 0);
	nt = concurrency ? concurrency : 1;
	if (nt > n)
		nt = n;
	if (nt > ARRAY_SIZE(tids))
		nt = ARRAY_SIZE(tids);
	/* the calling thread works too; extra threads only when useful */
	for (size_t i = 1; i < nt; i++) {
		if (pthread_create(&tids[spawned], NULL, worker, &p) != 0)
			break; /* fewer threads is still correct */
		spawned++;
	}
	worker(&p);
	for (size_t i = 0; i < spawned; i++)
		pthread_join(tids[i], NULL);
	return atomic_load(&p.started);
}
