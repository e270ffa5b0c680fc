/*
 * The committer of group_commit.h: one thread, a list of items that wait,
 * and the batch being written; and a reporter thread that calls the done
 * callbacks of written batches, so the committer starts the next batch
 * while the last one's writers are told (answering them is most of a
 * batch's cost but the fsync). It must never hold its lock while fn or a
 * callback runs (writers keep joining the next batch meanwhile), never
 * report an item before fn returned for it, and never drop one: a stop
 * writes what waits and reports it.
 */
#include "util/common.h"
#include "util/log.h"
#include "util/group_commit.h"

#include <time.h>

struct group_commit {
	pthread_mutex_t lock;
	pthread_cond_t work;     /* items wait, or stop */
	pthread_cond_t finished; /* a batch written: waiters look at their item */
	pthread_cond_t report;   /* written items to report, or the committer ended */
	struct group_commit_item *head, *tail;
	struct group_commit_item *done_head, *done_tail; /* written, their done to call */
	size_t n_waiting;
	bool stopping;
	bool committer_ended;
	pthread_t thread, reporter_thread;
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

	pthread_setname_np(pthread_self(), "commit");
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
			struct group_commit_item *it = g->batch[i];

			it->result = r;
			g->batch[i] = NULL;
			if (!it->done) {
				/* a waiter's item: its waiter may free it once the lock is let go
				 */
				it->finished = true;
				continue;
			}
			if (g->done_tail)
				g->done_tail->next = it;
			else
				g->done_head = it;
			g->done_tail = it;
		}
		pthread_cond_broadcast(&g->finished);
		pthread_cond_signal(&g->report);
	}
	g->committer_ended = true;
	pthread_cond_signal(&g->report);
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

/* Calls the done callbacks of written items, in the order they were written. */
static void *reporter(void *arg)
{
	struct group_commit *g = arg;

	pthread_setname_np(pthread_self(), "commit-report");
	pthread_mutex_lock(&g->lock);
	for (;;) {
		struct group_commit_item *list;

		while (!g->done_head && !g->committer_ended)
			pthread_cond_wait(&g->report, &g->lock);
		if (!g->done_head)
			break; /* the committer ended and everything was reported */
		list = g->done_head;
		g->done_head = g->done_tail = NULL;
		pthread_mutex_unlock(&g->lock);
		/*
		 * without the lock: a callback may take its own, or hand in more; the
		 * lines the callbacks log (one a delivery) written together
		 */
		log_gather(true);
		while (list) {
			struct group_commit_item *it = list;

			list = it->next;
			it->next = NULL;
			it->done(it, it->result); /* it is the caller's from here */
		}
		log_gather(false);
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
	pthread_cond_init(&g->report, NULL);
	r = pthread_create(&g->reporter_thread, NULL, reporter, g);
	if (r == 0) {
		r = pthread_create(&g->thread, NULL, committer, g);
		if (r != 0) {
			/* the reporter ends at once: nothing was written */
			pthread_mutex_lock(&g->lock);
			g->committer_ended = true;
			pthread_cond_signal(&g->report);
			pthread_mutex_unlock(&g->lock);
			pthread_join(g->reporter_thread, NULL);
		}
	}
	if (r != 0) {
		pthread_cond_destroy(&g->report);
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
	pthread_join(g->reporter_thread, NULL); /* every written item reported */
	pthread_cond_destroy(&g->report);
	pthread_cond_destroy(&g->finished);
	pthread_cond_destroy(&g->work);
	pthread_mutex_destroy(&g->lock);
	free(g->batch);
	free(g);
}
