/*
 * Unit tests of src/queue/ with its sqlite backend on a real state store
 * (and so of the store's deliveries and jobs tables): push and its
 * duplicates, ack as a tombstone a late "queued" cannot revive, counts per
 * flavor with backoff, list order, bookkeeping updates, pruning, the
 * delivery dedup, and 64-bit ids through SQLite.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/fileutil.h"
#include "util/strutil.h"
#include "queue/queue.h"

struct fixture {
	char dir[PATH_MAX];
	struct store *store;
	struct queue *q;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct err e = {0};

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/runnerd-test-queue-XXXXXX");
	if (!mkdtemp(f->dir) || store_open(f->dir, &f->store, &e) < 0 ||
	    queue_sqlite_open(f->store, &f->q, &e) < 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	queue_free(f->q);
	store_close(f->store);
	rm_rf(f->dir, NULL);
	free(f);
	return 0;
}

static struct queue_job job(int64_t id, const char *flavor, int64_t at)
{
	struct queue_job j = {.job_id = id, .run_id = id + 1, .received_at = at};
	str_copy(j.repo, "octo/hello", sizeof(j.repo));
	str_copy(j.labels, "[\"self-hosted\",\"small\"]", sizeof(j.labels));
	str_copy(j.flavor, flavor, sizeof(j.flavor));
	snprintf(j.delivery_id, sizeof(j.delivery_id), "d-%" PRId64, id);
	return j;
}

static int64_t count(struct queue *q, const char *flavor, int64_t now)
{
	int64_t n = -1;
	assert_int_equal(queue_count(q, flavor, now, &n, NULL), 0);
	return n;
}

static void test_push_ack(void **state)
{
	struct fixture *f = *state;
	struct queue_job a = job(INT64_C(9007199254740993), "small", 1000);
	struct queue_job b = job(7, "small", 2000), c = job(8, "large", 1500);
	struct queue_job_list l = {0};
	struct err e = {0};

	assert_string_equal(queue_name(f->q), "sqlite");
	assert_int_equal(queue_push(f->q, &a, &e), 0);
	assert_int_equal(queue_push(f->q, &b, &e), 0);
	assert_int_equal(queue_push(f->q, &c, &e), 0);
	assert_int_equal(queue_push(f->q, &b, &e), -EEXIST);
	assert_int_equal(count(f->q, "small", 5000), 2);
	assert_int_equal(count(f->q, "large", 5000), 1);
	assert_int_equal(count(f->q, "none", 5000), 0);

	/* oldest first; ids above 2^53 come back exact */
	assert_int_equal(queue_list(f->q, 100, &l, &e), 0);
	assert_int_equal(l.n, 3);
	assert_true(l.v[0].job_id == INT64_C(9007199254740993));
	assert_true(l.v[0].run_id == INT64_C(9007199254740994));
	assert_int_equal(l.v[1].job_id, 8);
	assert_int_equal(l.v[2].job_id, 7);
	assert_string_equal(l.v[0].labels, "[\"self-hosted\",\"small\"]");
	assert_string_equal(l.v[0].delivery_id, "d-9007199254740993");
	assert_int_equal(queue_list(f->q, 1, &l, &e), 0);
	assert_int_equal(l.n, 1);

	/* ack: no longer waits; again is fine; a late "queued" does not revive it */
	assert_int_equal(queue_ack(f->q, 7, "in_progress", 3000, &e), 0);
	assert_int_equal(queue_ack(f->q, 7, "completed", 3100, &e), 0);
	assert_int_equal(count(f->q, "small", 5000), 1);
	assert_int_equal(queue_push(f->q, &b, &e), -EEXIST);
	assert_int_equal(count(f->q, "small", 5000), 1);
	/* an ack before its "queued" (GitHub does not promise order) */
	assert_int_equal(queue_ack(f->q, 99, "completed", 3000, &e), 0);
	struct queue_job late = job(99, "small", 3500);
	assert_int_equal(queue_push(f->q, &late, &e), -EEXIST);
	assert_int_equal(count(f->q, "small", 5000), 1);

	/* bad input */
	struct queue_job bad = job(0, "small", 1);
	assert_int_equal(queue_push(f->q, &bad, &e), -EINVAL);
	bad = job(5, "", 1);
	assert_int_equal(queue_push(f->q, &bad, &e), -EINVAL);
	assert_int_equal(queue_ack(f->q, 0, "x", 1, &e), -EINVAL);
	assert_int_equal(queue_health(f->q, &e), 0);
	queue_job_list_release(&l);
}

static void test_backoff_update_prune(void **state)
{
	struct fixture *f = *state;
	struct queue_job a = job(1, "small", 1000);
	struct queue_job_list l = {0};
	struct store_job row;
	struct err e = {0};

	assert_int_equal(queue_push(f->q, &a, &e), 0);
	a.attempts = 2;
	a.next_at = 10000;
	a.runner_at = 0;
	a.checked_at = 4000;
	assert_int_equal(queue_update(f->q, &a, &e), 0);
	/* in backoff: not counted before next_at, counted from then on */
	assert_int_equal(count(f->q, "small", 9999), 0);
	assert_int_equal(count(f->q, "small", 10000), 1);
	assert_int_equal(queue_list(f->q, 10, &l, &e), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].attempts, 2);
	assert_int_equal(l.v[0].checked_at, 4000);
	/* an update after the ack changes nothing */
	assert_int_equal(queue_ack(f->q, 1, "dropped", 20000, &e), 0);
	a.attempts = 3;
	assert_int_equal(queue_update(f->q, &a, &e), 0);
	assert_int_equal(store_job_get(f->store, 1, &row, &e), 0);
	assert_int_equal(row.attempts, 2);
	assert_int_equal(row.done_at, 20000);
	assert_string_equal(row.done_why, "dropped");
	/* the first why stays */
	assert_int_equal(queue_ack(f->q, 1, "completed", 21000, &e), 0);
	assert_int_equal(store_job_get(f->store, 1, &row, &e), 0);
	assert_string_equal(row.done_why, "dropped");
	/* prune forgets tombstones older than the bound, never a waiting job */
	struct queue_job b = job(2, "small", 1);
	assert_int_equal(queue_push(f->q, &b, &e), 0);
	assert_int_equal(queue_prune(f->q, 20001, &e), 0);
	assert_int_equal(store_job_get(f->store, 1, &row, &e), -ENOENT);
	assert_int_equal(store_job_get(f->store, 2, &row, &e), 0);
	/* forgotten: the job id may be queued again */
	assert_int_equal(queue_push(f->q, &a, &e), 0);
	queue_job_list_release(&l);
}

/* The ids of l, in order, as "1 5". */
static const char *ids(const struct queue_job_list *l)
{
	static char out[256];
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < l->n && n < sizeof(out); i++)
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%" PRId64, i ? " " : "",
		                      l->v[i].job_id);
	return out;
}

/*
 * The jobs due for a recheck: waiting, and unchanged (received, a runner
 * made, GitHub asked) since the bound, oldest first, found past any number
 * of recently checked older ones; the same through the generic fallback
 * of a backend without list_due.
 */
static void test_list_due(void **state)
{
	struct fixture *f = *state;
	struct queue_job_list l = {0};
	struct queue_ops plain = *f->q->ops;
	const struct queue_ops *own = f->q->ops;
	struct err e = {0};

	for (int64_t id = 1; id <= 5; id++) {
		struct queue_job j = job(id, "small", id * 1000);
		assert_int_equal(queue_push(f->q, &j, &e), 0);
	}
	struct queue_job j2 = job(2, "small", 2000), j3 = job(3, "small", 3000);
	j2.checked_at = 9000; /* asked lately */
	j3.runner_at = 8000;  /* a runner made for it lately */
	assert_int_equal(queue_update(f->q, &j2, &e), 0);
	assert_int_equal(queue_update(f->q, &j3, &e), 0);
	assert_int_equal(queue_ack(f->q, 4, "completed", 7000, &e), 0);
	plain.list_due = NULL;
	for (int pass = 0; pass < 2; pass++) {
		f->q->ops = pass ? &plain : own;
		assert_int_equal(queue_list_due(f->q, 6000, 10, &l, &e), 0);
		assert_string_equal(ids(&l), "1 5");
		assert_int_equal(queue_list_due(f->q, 6000, 1, &l, &e), 0);
		assert_string_equal(ids(&l), "1");
		assert_int_equal(queue_list_due(f->q, 8500, 10, &l, &e), 0);
		assert_string_equal(ids(&l), "1 3 5");
		assert_int_equal(queue_list_due(f->q, 999, 10, &l, &e), 0);
		assert_int_equal(l.n, 0);
	}
	f->q->ops = own;

	/* the due ones behind 300 older jobs asked lately */
	for (int64_t id = 100; id < 420; id++) {
		struct queue_job j = job(id, "small", 10000 + id);
		if (id < 400)
			j.checked_at = 50000;
		assert_int_equal(queue_push(f->q, &j, &e), 0);
		assert_int_equal(queue_update(f->q, &j, &e), 0);
	}
	assert_int_equal(queue_list_due(f->q, 40000, 6, &l, &e), 0);
	assert_string_equal(ids(&l), "1 2 3 5 400 401");
	queue_job_list_release(&l);
}

static void test_deliveries(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};

	assert_int_equal(store_delivery_add(f->store, "72d3162e-cc78-11e3", 1000, &e), 0);
	assert_int_equal(store_delivery_add(f->store, "72d3162e-cc78-11e3", 2000, &e), -EEXIST);
	assert_int_equal(store_delivery_add(f->store, "other", 5000, &e), 0);
	assert_int_equal(store_delivery_forget(f->store, "72d3162e-cc78-11e3", &e), 0);
	assert_int_equal(store_delivery_add(f->store, "72d3162e-cc78-11e3", 3000, &e), 0);
	assert_int_equal(store_delivery_prune(f->store, 4000, &e), 0);
	assert_int_equal(store_delivery_add(f->store, "72d3162e-cc78-11e3", 6000, &e), 0);
	assert_int_equal(store_delivery_add(f->store, "other", 6000, &e), -EEXIST);
	assert_int_equal(store_delivery_add(f->store, "", 6000, &e), -EINVAL);
	bool seen = false;
	assert_int_equal(store_delivery_seen(f->store, "other", &seen, &e), 0);
	assert_true(seen);
	assert_int_equal(store_delivery_seen(f->store, "never", &seen, &e), 0);
	assert_false(seen);
}

static void test_open_kinds(void **state)
{
	struct fixture *f = *state;
	struct config cfg = {0};
	struct queue *q = NULL;
	struct err e = {0};

	cfg.queue.kind = QUEUE_SQLITE;
	assert_int_equal(queue_open(&cfg, f->store, &q, &e), 0);
	assert_string_equal(queue_name(q), "sqlite");
	queue_free(q);
	q = NULL;
	/* amqp without a URI: refused at open, whether or not this build has it */
	cfg.queue.kind = QUEUE_AMQP;
	int r = queue_open(&cfg, f->store, &q, &e);
	assert_true(r == -EINVAL || r == -EOPNOTSUPP);
	assert_null(q);
	queue_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_push_ack, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_backoff_update_prune, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_list_due, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_deliveries, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_open_kinds, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
