/*
 * Unit tests of src/util/recent_ids: a hit is exact and carries its time;
 * an id never added never hits, however full the table; an evicted or
 * forgotten id misses; "since" hides what is older; ids too long to keep
 * always miss; threads adding and asking at once see no torn id.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/recent_ids.h"

#include <pthread.h>

static void test_hit_is_exact(void **state)
{
	struct recent_ids *r = recent_ids_new(1000);
	int64_t at = 0;

	(void)state;
	assert_non_null(r);
	recent_ids_add(r, "72d3162e-cc78-11e3-81ab-4c9367dc0958", 17);
	assert_true(recent_ids_has(r, "72d3162e-cc78-11e3-81ab-4c9367dc0958", 0, &at));
	assert_int_equal(at, 17);
	/* a prefix, a longer id, another case: not the same id */
	assert_false(recent_ids_has(r, "72d3162e-cc78-11e3-81ab-4c9367dc095", 0, NULL));
	assert_false(recent_ids_has(r, "72d3162e-cc78-11e3-81ab-4c9367dc09580", 0, NULL));
	assert_false(recent_ids_has(r, "72D3162E-CC78-11E3-81AB-4C9367DC0958", 0, NULL));
	/* since: older than asked is not recent */
	assert_true(recent_ids_has(r, "72d3162e-cc78-11e3-81ab-4c9367dc0958", 17, NULL));
	assert_false(recent_ids_has(r, "72d3162e-cc78-11e3-81ab-4c9367dc0958", 18, NULL));
	recent_ids_forget(r, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
	assert_false(recent_ids_has(r, "72d3162e-cc78-11e3-81ab-4c9367dc0958", 0, NULL));
	/* nothing, empty and too long: never kept, never a hit */
	recent_ids_add(r, "", 1);
	assert_false(recent_ids_has(r, "", 0, NULL));
	char longid[RECENT_ID_MAX + 8];
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	recent_ids_add(r, longid, 1);
	assert_false(recent_ids_has(r, longid, 0, NULL));
	assert_false(recent_ids_has(NULL, "x", 0, NULL));
	recent_ids_free(r);
}

/* A small table filled far past its size: only added ids hit, and the latest of each slot does. */
static void test_full_table_never_lies(void **state)
{
	struct recent_ids *r = recent_ids_new(10); /* 64 slots */
	char id[64];
	int hits = 0;

	(void)state;
	assert_non_null(r);
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "delivery-%d", i);
		recent_ids_add(r, id, i);
	}
	for (int i = 0; i < 5000; i++) {
		int64_t at = -1;

		snprintf(id, sizeof(id), "delivery-%d", i);
		if (recent_ids_has(r, id, 0, &at)) {
			hits++;
			assert_int_equal(at, i);
		}
		snprintf(id, sizeof(id), "other-%d", i);
		assert_false(recent_ids_has(r, id, 0, NULL));
	}
	/* at most one a slot, and the last ones added are there */
	assert_true(hits > 0 && hits <= 64);
	assert_true(recent_ids_has(r, "delivery-4999", 0, NULL));
	recent_ids_free(r);
}

struct worker {
	struct recent_ids *r;
	int base;
	int bad;
};

static void *churn(void *arg)
{
	struct worker *w = arg;
	char id[64];

	for (int i = 0; i < 20000; i++) {
		int64_t at = -1;

		snprintf(id, sizeof(id), "w%d-%d", w->base, i);
		recent_ids_add(w->r, id, i);
		/* a hit on our own id carries our own time: no slot torn between two writers */
		if (recent_ids_has(w->r, id, 0, &at) && at != i)
			w->bad++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct recent_ids *r = recent_ids_new(256);
	struct worker w[4];
	pthread_t t[4];

	(void)state;
	assert_non_null(r);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.r = r, .base = i};
		assert_int_equal(pthread_create(&t[i], NULL, churn, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].bad, 0);
	}
	recent_ids_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_hit_is_exact),
	        cmocka_unit_test(test_full_table_never_lies),
	        cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
