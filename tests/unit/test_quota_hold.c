/* The quota hold (src/manager/quota_hold.c): held, probed, doubled, ended. */
#include "util/common.h"
#include "manager/quota_hold.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static void test_not_held_allows_all(void **state)
{
	struct quota_holds q = {0};
	(void)state;
	assert_int_equal(quota_hold_allow(&q, "os", 5, 100), 5);
	assert_false(quota_hold_clear(&q, "os"));
	assert_null(quota_hold_find(&q, "os"));
}

static void test_held_then_one_probe(void **state)
{
	struct quota_holds q = {0};
	(void)state;
	assert_int_equal(quota_hold_note(&q, "os", "Quota exceeded for instances", 1000),
	                 QUOTA_HOLD_FIRST_S);
	/* a second create of the same pass refused too: no longer a hold */
	assert_int_equal(quota_hold_note(&q, "os", "Quota exceeded for instances", 1001),
	                 QUOTA_HOLD_FIRST_S);
	const struct quota_hold *h = quota_hold_find(&q, "os");
	assert_non_null(h);
	assert_string_equal(h->error, "Quota exceeded for instances");
	assert_int_equal(h->since, 1000);
	assert_int_equal(h->retry_at, 1000 + QUOTA_HOLD_FIRST_S);
	/* another provider is not held */
	assert_int_equal(quota_hold_allow(&q, "lxd", 3, 1001), 3);
	/* every pass within the hold: nothing */
	for (int64_t t = 1000; t < 1000 + QUOTA_HOLD_FIRST_S; t += 2)
		assert_int_equal(quota_hold_allow(&q, "os", 3, t), 0);
	/* then one probe, and not another in the next pass */
	assert_int_equal(quota_hold_allow(&q, "os", 3, 1000 + QUOTA_HOLD_FIRST_S), 1);
	assert_int_equal(quota_hold_allow(&q, "os", 3, 1002 + QUOTA_HOLD_FIRST_S), 0);
	/* the probe is refused: twice as long; since stays */
	assert_int_equal(quota_hold_note(&q, "os", "again", 1031), 2 * QUOTA_HOLD_FIRST_S);
	assert_int_equal(quota_hold_find(&q, "os")->since, 1000);
	assert_int_equal(quota_hold_allow(&q, "os", 3, 1031 + 2 * QUOTA_HOLD_FIRST_S - 1), 0);
	assert_int_equal(quota_hold_allow(&q, "os", 3, 1031 + 2 * QUOTA_HOLD_FIRST_S), 1);
	/* the probe succeeds: the hold ends, all creates go */
	assert_true(quota_hold_clear(&q, "os"));
	assert_int_equal(quota_hold_allow(&q, "os", 3, 1100), 3);
	assert_int_equal(q.n, 0);
}

static void test_hold_is_bounded(void **state)
{
	struct quota_holds q = {0};
	int64_t last = 0, t = 0;
	(void)state;
	/* every probe refused: the hold doubles up to its bound */
	last = quota_hold_note(&q, "os", "x", t);
	for (int i = 0; i < 20; i++) {
		t = quota_hold_find(&q, "os")->retry_at;
		assert_int_equal(quota_hold_allow(&q, "os", 1, t), 1);
		last = quota_hold_note(&q, "os", "x", t);
	}
	assert_int_equal(last, QUOTA_HOLD_MAX_S);
	/* a full table notes nothing more, and holds nothing it did not note */
	for (int i = 1; i < QUOTA_HOLDS_MAX; i++) {
		char name[16];
		snprintf(name, sizeof(name), "p%d", i);
		assert_int_equal(quota_hold_note(&q, name, "x", 0), QUOTA_HOLD_FIRST_S);
	}
	assert_int_equal(quota_hold_note(&q, "one-too-many", "x", 0), 0);
	assert_int_equal(quota_hold_allow(&q, "one-too-many", 2, 0), 2);
	/* clearing one in the middle keeps the others */
	assert_true(quota_hold_clear(&q, "p3"));
	assert_non_null(quota_hold_find(&q, "os"));
	assert_non_null(quota_hold_find(&q, "p7"));
	assert_null(quota_hold_find(&q, "p3"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_not_held_allows_all),
	        cmocka_unit_test(test_held_then_one_probe),
	        cmocka_unit_test(test_hold_is_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
