/*
 * The committer of group_commit.h: one thread, a list of items that wait,
 * and the batch being written. It must never hold its lock while fn runs
 * (writers keep joining the next batch meanwhile), never report an item
 * before fn returned for it, and never drop one: a stop writes what waits.
 */
#include "util/common.h"
#include "util/group_commit.h"

#include <time.h>

struct group_commit {
	pthread_mutex_t lock;
	pthread_cond_t work;     /* items wait, or stop */
	pthread_cond_t finished; /* a batch written: waiters look at their item */
	struct group_commit_item *head, *tail;
	size_t n_waiting;
	bool stopping;
	pthread_t thread;
	group_commit_fn fn;
	void *ctx;
	size_t max_batch;
	struct group_commit_item **batch; /* max_batch slots, the thread's */
	struct group_commit_stats stats;
};

/* Take up to max_batch items off the list, oldest first. Under g->lock. */
static size_t take_batch(struct group_commit *g)
{
	size_t n = 0;

	while (g->head && n < g->max_batch) {
		struct group_commit_item *it = g->head;

		g->head = it->next;
		it->next = NULL;
		g->batch[n++] = it;
	}
	if (!g->head)
		g->tail = NULL;
	g->n_waiting -= n;
	return n;
}

static void *committer(void *arg)
{
	struct group_commit *g = arg;

	pthread_mutex_lock(&g->lock);
	for (;;) {
		struct timespec t0, t1;
		size_t n;
		int r;

		while (!g->head && !g->stopping)
			pthread_cond_wait(&g->work, &g->lock);
		if (!g->head)
			break; /* stopping, and nothing waits */
		n = take_batch(g);
		pthread_mutex_unlock(&g->lock);

		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = g->fn(g->ctx, g->batch, n);
		clock_gettime(CLOCK_MONOTONIC, &t1);

		pthread_mutex_lock(&g->lock);
		g->stats.busy_us += (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 +
		                               (t1.tv_nsec - t0.tv_nsec) / 1000);
		g->stats.batches++;
		g->stats.items += n;
		if (n > g->stats.max_batch)
			g->stats.max_batch = n;
		if (r < 0)
			g->stats.failed++;
		for (size_t i = 0; i < n; i++) {
			if (g->batch[i]->done)
				continue;
			/* a waiter's item: its waiter may free it once the lock is let go */
			g->batch[i]->result = r;
			g->batch[i]->finished = true;
			g->batch[i] = NULL;
		}
		pthread_cond_broadcast(&g->finished);
		pthread_mutex_unlock(&g->lock);
		/* callbacks run without the lock: they may take their own, or hand in more */
		for (size_t i = 0; i < n; i++)
			if (g->batch[i])
				g->batch[i]->done(g->batch[i], r);
		pthread_mutex_lock(&g->lock);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

int group_commit_start(group_commit_fn fn, void *ctx, size_t max_batch, struct group_commit **ret)
{
	struct group_commit *g;
	int r;

	if (!fn || max_batch == 0)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->batch = calloc(max_batch, sizeof(*g->batch));
	if (!g->batch) {
		free(g);
		return -ENOMEM;
	}
	g->fn = fn;
	g->ctx = ctx;
	g->max_batch = max_batch;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->work, NULL);
	pthread_cond_init(&g->finished, NULL);
	r = pthread_create(&g->thread, NULL, committer, g);
	if (r != 0) {
		pthread_cond_destroy(&g->finished);
		pthread_cond_destroy(&g->work);
		pthread_mutex_destroy(&g->lock);
		free(g->batch);
		free(g);
		return -r;
	}
	*ret = g;
	return 0;
}

/* Append it to the list. Under g->lock. */
static int enqueue(struct group_commit *g, struct group_commit_item *it)
{
	if (g->stopping)
		return -ESHUTDOWN;
	it->next = NULL;
	it->finished = false;
	it->result = 0;
	if (g->tail)
		g->tail->next = it;
	else
		g->head = it;
	g->tail = it;
	g->n_waiting++;
	pthread_cond_signal(&g->work);
	return 0;
}

int group_commit_submit(struct group_commit *g, struct group_commit_item *it)
{
	int r;

	if (!it->done)
		return -EINVAL;
	pthread_mutex_lock(&g->lock);
	r = enqueue(g, it);
	pthread_mutex_unlock(&g->lock);
	return r;
}

int group_commit_wait(struct group_commit *g, struct group_commit_item *it)
{
	int r;

	it->done = NULL;
	pthread_mutex_lock(&g->lock);
	r = enqueue(g, it);
	while (r == 0 && !it->finished)
		pthread_cond_wait(&g->finished, &g->lock);
	if (r == 0)
		r = it->result;
	pthread_mutex_unlock(&g->lock);
	return r;
}

void group_commit_get_stats(struct group_commit *g, struct group_commit_stats *ret)
{
	pthread_mutex_lock(&g->lock);
	*ret = g->stats;
	pthread_mutex_unlock(&g->lock);
}

void group_commit_stop(struct group_commit *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->stopping = true;
	pthread_cond_signal(&g->work);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->thread, NULL);
	pthread_cond_destroy(&g->finished);
	pthread_cond_destroy(&g->work);
	pthread_mutex_destroy(&g->lock);
	free(g->batch);
	free(g);
}
