/*
 * Unit tests of src/store/delivery_index (the deliveries' index by id, in
 * memory): a key is its id's alone; pending keys are seen by the writer
 * only until committed; the table grows far past its first size and every
 * key stays found; removals in the middle of probe runs (ids whose slots
 * collide) lose no other key; a prune takes out exactly the older ones and
 * shrinks the table; the count follows; and all of it holds while the table
 * grows a step at a time (a model of the same operations says what is in).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "store/delivery_index.h"

/* The key of the id "<prefix>-<i>". */
static struct delivery_key key(const char *prefix, int i)
{
	char id[64];
	struct delivery_key k;

	snprintf(id, sizeof(id), "%s-%d", prefix, i);
	delivery_key_of(id, &k);
	return k;
}

static void test_keys(void **state)
{
	struct delivery_key a, b, c;

	(void)state;
	delivery_key_of("72d3162e-cc78-11e3-81ab-4c9367dc0958", &a);
	delivery_key_of("72d3162e-cc78-11e3-81ab-4c9367dc0958", &b);
	delivery_key_of("72d3162e-cc78-11e3-81ab-4c9367dc0959", &c);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_memory_not_equal(&a, &c, sizeof(a));
	/* the first 128 bits of SHA-256("abc") (FIPS 180-2's example) */
	delivery_key_of("abc", &a);
	assert_true(a.hi == 0xba7816bf8f01cfeaULL);
	assert_true(a.lo == 0x414140de5dae2223ULL);
}

static void test_pending_then_committed(void **state)
{
	struct delivery_index *x = delivery_index_new();
	struct delivery_key k = key("d", 1);
	int64_t row = 0;

	(void)state;
	assert_non_null(x);
	assert_false(delivery_index_find(x, &k, true, NULL));
	assert_int_equal(delivery_index_add(x, &k, 100, 7, true), 0);
	assert_false(delivery_index_find(x, &k, false, NULL)); /* others: not yet */
	assert_true(delivery_index_find(x, &k, true, &row));   /* the writer: in */
	assert_int_equal(row, 7);
	assert_int_equal(delivery_index_add(x, &k, 200, 8, false), -EEXIST);
	delivery_index_commit(x, &k);
	assert_true(delivery_index_find(x, &k, false, &row));
	assert_int_equal(row, 7);
	assert_int_equal(delivery_index_add(x, &k, 200, 8, true), -EEXIST);
	assert_int_equal(delivery_index_add(x, &k, 200, 0, true), -EINVAL);
	/* a rolled-back one goes */
	k = key("d", 2);
	assert_int_equal(delivery_index_add(x, &k, 100, 9, true), 0);
	delivery_index_remove(x, &k);
	assert_false(delivery_index_find(x, &k, true, NULL));
	assert_int_equal(delivery_index_count(x), 1);
	delivery_index_free(x);
	delivery_index_free(NULL);
}

/* 20,000 keys (the table starts at 1,024 slots), a third removed, the rest all found. */
static void test_grow_and_remove(void **state)
{
	struct delivery_index *x = delivery_index_new();
	struct delivery_key k;
	int64_t row;
	const int n = 20000;

	(void)state;
	for (int i = 0; i < n; i++) {
		k = key("grow", i);
		assert_int_equal(delivery_index_add(x, &k, i, i + 1, false), 0);
	}
	assert_int_equal(delivery_index_count(x), n);
	for (int i = 0; i < n; i += 3) {
		k = key("grow", i);
		delivery_index_remove(x, &k);
	}
	k = key("never", 0);
	delivery_index_remove(x, &k); /* missing: nothing happens */
	assert_int_equal(delivery_index_count(x), n - (n + 2) / 3);
	for (int i = 0; i < n; i++) {
		k = key("grow", i);
		if (i % 3 == 0) {
			assert_false(delivery_index_find(x, &k, true, NULL));
		} else {
			assert_true(delivery_index_find(x, &k, false, &row));
			assert_int_equal(row, i + 1);
		}
	}
	for (int i = 0; i < 1000; i++) {
		k = key("never", i);
		assert_false(delivery_index_find(x, &k, true, NULL));
	}
	delivery_index_free(x);
}

/* Take out keys "<prefix>-<from..to)" held for rows i + 1; how many went. */
static size_t remove_range(struct delivery_index *x, const char *prefix, int from, int to)
{
	size_t n = (size_t)(to - from), gone;
	struct delivery_key *keys = calloc(n, sizeof(*keys));
	int64_t *rows = calloc(n, sizeof(*rows));

	assert_non_null(keys);
	assert_non_null(rows);
	for (int i = from; i < to; i++) {
		keys[i - from] = key(prefix, i);
		rows[i - from] = i + 1;
	}
	gone = delivery_index_remove_rows(x, keys, rows, n);
	free(keys);
	free(rows);
	return gone;
}

static void test_prune(void **state)
{
	struct delivery_index *x = delivery_index_new();
	struct delivery_key k, keys[2];
	int64_t rows[2];
	const int n = 10000;

	(void)state;
	for (int i = 0; i < n; i++) {
		k = key("t", i);
		assert_int_equal(delivery_index_add(x, &k, i, i + 1, false), 0);
	}
	assert_int_equal(delivery_index_slots(x), 16384);
	assert_int_equal(remove_range(x, "t", 0, 0), 0);
	/* a key held for another row stays (two rows of one id), a missing one is fine */
	keys[0] = key("t", 5);
	rows[0] = 999999;
	keys[1] = key("never", 1);
	rows[1] = 1;
	assert_int_equal(delivery_index_remove_rows(x, keys, rows, 2), 0);
	assert_true(delivery_index_find(x, &keys[0], false, NULL));
	/* the older ones: 9,900 in chunks, and the table shrinks: the large one is freed by the
	 * prune itself, with no add after it to move it */
	assert_int_equal(remove_range(x, "t", 0, n - 100), n - 100);
	assert_int_equal(delivery_index_count(x), 100);
	assert_true(delivery_index_slots(x) <= 2048);
	for (int i = 0; i < n; i++) {
		k = key("t", i);
		assert_int_equal(delivery_index_find(x, &k, false, NULL), i >= n - 100);
	}
	/* the smaller table takes new keys as before, while the rest moves over */
	for (int i = 0; i < 5000; i++) {
		k = key("u", i);
		assert_int_equal(delivery_index_add(x, &k, n + i, n + i + 1, false), 0);
	}
	assert_int_equal(delivery_index_count(x), 5100);
	for (int i = n - 100; i < n; i++) {
		k = key("t", i);
		assert_true(delivery_index_find(x, &k, false, NULL));
	}
	assert_int_equal(remove_range(x, "t", 0, n), 100);
	assert_int_equal(delivery_index_count(x), 5000);
	delivery_index_free(x);
}

/*
 * 300,000 random adds (pending or not), commits, removals, lookups and two
 * prunes over 60,000 ids, checked against a plain array after every step:
 * the table grows from 1,024 slots to 131,072 meanwhile, a step at a time,
 * so the ids are found, committed and removed while some of them are still
 * in the old table.
 */
static void test_while_growing_against_a_model(void **state)
{
	enum { IDS = 60000, OPS = 300000 };
	struct delivery_index *x = delivery_index_new();
	/* per id: 0 absent, 1 pending, 2 committed; its row and time */
	static signed char st[IDS];
	static int64_t rows[IDS], ats[IDS];
	uint64_t seed = 42;
	size_t n = 0;

	(void)state;
	memset(st, 0, sizeof(st));
	for (int op = 1; op <= OPS; op++) {
		int id, what;
		struct delivery_key k;
		int64_t row = 0;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		id = (int)((seed >> 33) % IDS);
		what = (int)((seed >> 20) % 10);
		k = key("model", id);
		if (what < 6) { /* add: most operations, so the table keeps growing */
			bool pending = what < 2;
			int r = delivery_index_add(x, &k, op, op, pending);

			if (st[id]) {
				assert_int_equal(r, -EEXIST);
			} else {
				assert_int_equal(r, 0);
				st[id] = pending ? 1 : 2;
				rows[id] = ats[id] = op;
				n++;
			}
		} else if (what < 7) {
			delivery_index_commit(x, &k);
			if (st[id] == 1)
				st[id] = 2;
		} else if (what < 8) {
			delivery_index_remove(x, &k);
			if (st[id])
				n--;
			st[id] = 0;
		}
		/* after every step: this id as the model has it */
		assert_int_equal(delivery_index_find(x, &k, true, &row), st[id] != 0);
		if (st[id])
			assert_int_equal(row, rows[id]);
		assert_int_equal(delivery_index_find(x, &k, false, NULL), st[id] == 2);
		if (op == OPS / 3 || op == 2 * OPS / 3) {
			/* a prune of the older half, in the middle of a growth or not */
			static struct delivery_key keys[IDS];
			static int64_t krows[IDS];
			size_t gone = 0;

			for (int i = 0; i < IDS; i++)
				if (st[i] == 2 && ats[i] < op / 2) {
					keys[gone] = key("model", i);
					krows[gone++] = rows[i];
					st[i] = 0;
				}
			assert_int_equal(delivery_index_remove_rows(x, keys, krows, gone), gone);
			n -= gone;
		}
		if (op % 50000 == 0 || op == OPS) {
			assert_int_equal(delivery_index_count(x), n);
			for (int i = 0; i < IDS; i++) {
				k = key("model", i);
				assert_int_equal(delivery_index_find(x, &k, true, NULL),
				                 st[i] != 0);
			}
		}
	}
	delivery_index_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_keys),
	        cmocka_unit_test(test_pending_then_committed),
	        cmocka_unit_test(test_grow_and_remove),
	        cmocka_unit_test(test_prune),
	        cmocka_unit_test(test_while_growing_against_a_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
