/*
 * Unit tests of src/util/group_commit: a lone item is written at once;
 * items handed in while a batch is being written all join the next one
 * (one fn call), in the order they came, at most max_batch a batch; a
 * failed write is reported to every item of its batch; a stop writes what
 * waits; many threads waiting at once share far fewer writes than items,
 * and every item is written exactly once. fn here is a fake that records
 * its batches; a gate holds it to line items up behind a batch.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/clock.h"
#include "util/group_commit.h"

#define MAX_ITEMS 4096

struct rec {
	struct group_commit_item gc; /* first */
	int id;
	int writes; /* times fn saw it */
	int done_r; /* what done reported */
	bool done;
};

struct fake {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool hold;    /* fn waits while set */
	bool in_fn;   /* fn is holding */
	int fail;     /* fn returns this */
	int sleep_ms; /* fn takes this long */
	size_t n_batches;
	size_t sizes[MAX_ITEMS];
	int order[MAX_ITEMS]; /* ids as fn saw them */
	size_t n_order;
	size_t n_done;
};

static int fake_fn(void *ctx, struct group_commit_item **v, size_t n)
{
	struct fake *f = ctx;

	pthread_mutex_lock(&f->lock);
	f->in_fn = true;
	pthread_cond_broadcast(&f->cond);
	while (f->hold)
		pthread_cond_wait(&f->cond, &f->lock);
	f->in_fn = false;
	f->sizes[f->n_batches++] = n;
	for (size_t i = 0; i < n; i++) {
		struct rec *r = (struct rec *)v[i];
		r->writes++;
		f->order[f->n_order++] = r->id;
	}
	pthread_mutex_unlock(&f->lock);
	if (f->sleep_ms)
		clock_sleep_ms(f->sleep_ms);
	return f->fail;
}

static struct fake *done_fake; /* the fake done callbacks report to */

static void on_done(struct group_commit_item *it, int r)
{
	struct rec *rec = (struct rec *)it;

	pthread_mutex_lock(&done_fake->lock);
	rec->done = true;
	rec->done_r = r;
	done_fake->n_done++;
	pthread_cond_broadcast(&done_fake->cond);
	pthread_mutex_unlock(&done_fake->lock);
}

static struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	done_fake = f;
	return f;
}

static void fake_free(struct fake *f)
{
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	free(f);
}

/* Hold fn, and wait until it holds a batch (of the one item handed in). */
static void hold_first_batch(struct fake *f, struct group_commit *g, struct rec *first)
{
	pthread_mutex_lock(&f->lock);
	f->hold = true;
	pthread_mutex_unlock(&f->lock);
	first->gc.done = on_done;
	assert_int_equal(group_commit_submit(g, &first->gc), 0);
	pthread_mutex_lock(&f->lock);
	while (!f->in_fn)
		pthread_cond_wait(&f->cond, &f->lock);
	pthread_mutex_unlock(&f->lock);
}

static void release(struct fake *f)
{
	pthread_mutex_lock(&f->lock);
	f->hold = false;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static void wait_done(struct fake *f, size_t n)
{
	pthread_mutex_lock(&f->lock);
	while (f->n_done < n)
		pthread_cond_wait(&f->cond, &f->lock);
	pthread_mutex_unlock(&f->lock);
}

static void test_alone(void **state)
{
	struct fake *f = fake_new();
	struct group_commit *g = NULL;
	struct group_commit_stats st;
	struct rec a = {.id = 1};

	(void)state;
	assert_int_equal(group_commit_start(fake_fn, f, 8, &g), 0);
	assert_int_equal(group_commit_wait(g, &a.gc), 0);
	assert_int_equal(a.writes, 1);
	assert_int_equal(f->n_batches, 1);
	assert_int_equal(f->sizes[0], 1);
	group_commit_get_stats(g, &st);
	assert_int_equal(st.batches, 1);
	assert_int_equal(st.items, 1);
	group_commit_stop(g);
	fake_free(f);
	assert_int_equal(group_commit_start(NULL, NULL, 8, &g), -EINVAL);
	assert_int_equal(group_commit_start(fake_fn, NULL, 0, &g), -EINVAL);
}

/* Items that come while a batch is written are the next batch, all of them, in order. */
static void test_joins_next_batch(void **state)
{
	struct fake *f = fake_new();
	struct group_commit *g = NULL;
	struct group_commit_stats st;
	struct rec first = {.id = 0}, v[10];

	(void)state;
	assert_int_equal(group_commit_start(fake_fn, f, 64, &g), 0);
	hold_first_batch(f, g, &first);
	for (int i = 0; i < 10; i++) {
		v[i] = (struct rec){.id = i + 1, .gc.done = on_done};
		assert_int_equal(group_commit_submit(g, &v[i].gc), 0);
	}
	/* nothing is done before its batch was written */
	assert_int_equal(f->n_done, 0);
	release(f);
	wait_done(f, 11);
	assert_int_equal(f->n_batches, 2);
	assert_int_equal(f->sizes[0], 1);
	assert_int_equal(f->sizes[1], 10);
	for (int i = 0; i < 11; i++)
		assert_int_equal(f->order[i], i);
	for (int i = 0; i < 10; i++) {
		assert_true(v[i].done);
		assert_int_equal(v[i].done_r, 0);
		assert_int_equal(v[i].writes, 1);
	}
	group_commit_get_stats(g, &st);
	assert_int_equal(st.max_batch, 10);
	assert_int_equal(st.items, 11);
	group_commit_stop(g);
	fake_free(f);
}

/* At most max_batch a batch: 7 waiting with max 3 are 3, 3, 1. */
static void test_max_batch(void **state)
{
	struct fake *f = fake_new();
	struct group_commit *g = NULL;
	struct rec first = {.id = 0}, v[7];

	(void)state;
	assert_int_equal(group_commit_start(fake_fn, f, 3, &g), 0);
	hold_first_batch(f, g, &first);
	for (int i = 0; i < 7; i++) {
		v[i] = (struct rec){.id = i + 1, .gc.done = on_done};
		assert_int_equal(group_commit_submit(g, &v[i].gc), 0);
	}
	release(f);
	wait_done(f, 8);
	assert_int_equal(f->n_batches, 4);
	assert_int_equal(f->sizes[1], 3);
	assert_int_equal(f->sizes[2], 3);
	assert_int_equal(f->sizes[3], 1);
	for (int i = 0; i < 8; i++)
		assert_int_equal(f->order[i], i);
	group_commit_stop(g);
	fake_free(f);
}

/* A failed write is every item's of its batch; the next batch is written anew. */
static void test_failure(void **state)
{
	struct fake *f = fake_new();
	struct group_commit *g = NULL;
	struct group_commit_stats st;
	struct rec first = {.id = 0}, a = {.id = 1, .gc.done = on_done}, b = {.id = 2};

	(void)state;
	assert_int_equal(group_commit_start(fake_fn, f, 8, &g), 0);
	f->fail = -EIO;
	hold_first_batch(f, g, &first);
	assert_int_equal(group_commit_submit(g, &a.gc), 0);
	release(f);
	wait_done(f, 2);
	assert_int_equal(first.done_r, -EIO);
	assert_int_equal(a.done_r, -EIO);
	assert_int_equal(group_commit_wait(g, &b.gc), -EIO);
	f->fail = 0;
	assert_int_equal(group_commit_wait(g, &b.gc), 0);
	assert_int_equal(b.writes, 2);
	group_commit_get_stats(g, &st);
	assert_int_equal(st.failed, 3);
	/* an item without done cannot be handed in without waiting for it */
	assert_int_equal(group_commit_submit(g, &b.gc), -EINVAL);
	group_commit_stop(g);
	fake_free(f);
}

struct stopper {
	struct group_commit *g;
};

static void *stop_thread(void *arg)
{
	group_commit_stop(((struct stopper *)arg)->g);
	return NULL;
}

/* A stop writes what waits before it returns. */
static void test_stop_writes_pending(void **state)
{
	struct fake *f = fake_new();
	struct stopper s = {0};
	struct rec first = {.id = 0}, v[5];
	pthread_t t;

	(void)state;
	assert_int_equal(group_commit_start(fake_fn, f, 64, &s.g), 0);
	hold_first_batch(f, s.g, &first);
	for (int i = 0; i < 5; i++) {
		v[i] = (struct rec){.id = i + 1, .gc.done = on_done};
		assert_int_equal(group_commit_submit(s.g, &v[i].gc), 0);
	}
	assert_int_equal(pthread_create(&t, NULL, stop_thread, &s), 0);
	clock_sleep_ms(20); /* the stop is under way while fn holds */
	release(f);
	pthread_join(t, NULL);
	assert_int_equal(f->n_done, 6);
	for (int i = 0; i < 5; i++)
		assert_int_equal(v[i].writes, 1);
	fake_free(f);
}

#define THREADS 8
#define PER     100

struct waiter {
	struct group_commit *g;
	struct rec recs[PER];
	int bad;
};

static void *waiter_thread(void *arg)
{
	struct waiter *w = arg;

	for (int i = 0; i < PER; i++)
		if (group_commit_wait(w->g, &w->recs[i].gc) != 0 || w->recs[i].writes != 1)
			w->bad++;
	return NULL;
}

/* Writers waiting at once share writes: far fewer batches than items, each item written once. */
static void test_concurrent_waiters_share(void **state)
{
	struct fake *f = fake_new();
	struct group_commit *g = NULL;
	struct group_commit_stats st;
	struct waiter *w = calloc(THREADS, sizeof(*w));
	pthread_t t[THREADS];

	(void)state;
	assert_non_null(w);
	f->sleep_ms = 2; /* an fsync's time */
	assert_int_equal(group_commit_start(fake_fn, f, 256, &g), 0);
	for (int k = 0; k < THREADS; k++) {
		w[k].g = g;
		for (int i = 0; i < PER; i++)
			w[k].recs[i].id = k * PER + i;
		assert_int_equal(pthread_create(&t[k], NULL, waiter_thread, &w[k]), 0);
	}
	for (int k = 0; k < THREADS; k++) {
		pthread_join(t[k], NULL);
		assert_int_equal(w[k].bad, 0);
	}
	group_commit_get_stats(g, &st);
	assert_int_equal(st.items, THREADS * PER);
	assert_true(st.max_batch >= 2);
	/* 8 writers each waiting for their own: one write per item would be 800 */
	assert_true(st.batches <= THREADS * PER / 2);
	/* the time in fn is counted: at least the 2 ms each batch sleeps, not wildly more */
	assert_true(st.busy_us >= st.batches * 2000);
	assert_true(st.busy_us < st.batches * 2000 + 10 * 1000 * 1000);
	print_message("%d items in %" PRIu64 " batches (largest %" PRIu64 ")\n", THREADS * PER,
	              st.batches, st.max_batch);
	group_commit_stop(g);
	fake_free(f);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_alone),
	        cmocka_unit_test(test_joins_next_batch),
	        cmocka_unit_test(test_max_batch),
	        cmocka_unit_test(test_failure),
	        cmocka_unit_test(test_stop_writes_pending),
	        cmocka_unit_test(test_concurrent_waiters_share),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
