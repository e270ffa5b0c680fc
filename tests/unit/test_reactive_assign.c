/*
 * Unit tests of reactive_assign (src/reactive/reactive_assign.c): the
 * runners a pass made or saw idle go to the oldest waiting jobs of their
 * flavor, exactly as the quadratic assignment it replaced (tests/lib)
 * gave them, over random lists and reports, and by hand.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/strutil.h"
#include "reactive/reactive.h"
#include "assign_quadratic.h"

/* A random waiting list: flavors of a few names, some given a runner before, some backed off. */
static void random_jobs(unsigned *seed, struct queue_job *v, size_t n, int64_t now)
{
	static const char *const flavors[] = {"small", "large", "arm", "gpu", "k8s"};

	for (size_t i = 0; i < n; i++) {
		int x = rand_r(seed) % 100;

		memset(&v[i], 0, sizeof(v[i]));
		v[i].job_id = (int64_t)i + 1;
		str_copy(v[i].flavor, flavors[rand_r(seed) % 5], sizeof(v[i].flavor));
		v[i].attempts = x < 20 ? 1 : 0;
		v[i].runner_at = x < 20 ? now - 1000 : 0;
		v[i].next_at = x >= 20 && x < 30 ? now + 5000 : (x >= 30 && x < 35 ? now - 5 : 0);
	}
}

/*
 * reactive_assign gives exactly what the quadratic assignment it replaced
 * gave: the same jobs, in the same order, the same fields, over random
 * lists and reports (made and idle runners per flavor, failed creates).
 */
static void test_assign_matches_quadratic(void **state)
{
	static const char *const flavors[] = {"small", "large", "arm", "gpu", "k8s"};
	enum { N = 600, EVENTS = 40 };
	struct queue_job *a = calloc(N, sizeof(*a)), *b = calloc(N, sizeof(*b));
	size_t *ga = calloc(N, sizeof(*ga)), *gb = calloc(N, sizeof(*gb));
	struct manager_event ev[EVENTS];
	struct plan_flavor_count counts[5];
	unsigned seed = 20261203;
	int64_t now = 1700000000000;
	size_t total = 0;

	(void)state;
	assert_true(a && b && ga && gb);
	for (int round = 0; round < 200; round++) {
		size_t n = round == 0 ? 0 : (size_t)(rand_r(&seed) % N) + 1, na = 0, nb = 0;
		size_t n_ev = (size_t)(rand_r(&seed) % EVENTS);
		struct manager_report rep = {.events = ev, .n_events = n_ev};

		for (size_t i = 0; i < n_ev; i++) {
			memset(&ev[i], 0, sizeof(ev[i]));
			str_copy(ev[i].action, rand_r(&seed) % 4 ? "create" : "delete",
			         sizeof(ev[i].action));
			str_copy(ev[i].flavor, flavors[rand_r(&seed) % 5], sizeof(ev[i].flavor));
			ev[i].ok = rand_r(&seed) % 5 != 0;
		}
		rep.plan.counts = counts;
		rep.plan.n_counts = (size_t)(rand_r(&seed) % 6);
		for (size_t i = 0; i < rep.plan.n_counts; i++) {
			memset(&counts[i], 0, sizeof(counts[i]));
			str_copy(counts[i].name, flavors[i], sizeof(counts[i].name));
			counts[i].idle = rand_r(&seed) % 30;
		}
		random_jobs(&seed, a, n, now);
		memcpy(b, a, n * sizeof(*a));
		assert_int_equal(reactive_assign(&rep, a, n, now, ga, &na), 0);
		assert_int_equal(assign_quadratic(&rep, b, n, now, gb, &nb), 0);
		assert_int_equal(na, nb);
		for (size_t k = 0; k < na; k++)
			assert_int_equal(ga[k], gb[k]);
		assert_memory_equal(a, b, n * sizeof(*a));
		total += na;
	}
	/* the rounds did give runners (a comparison of two empty answers proves nothing) */
	assert_true(total > 1000);
	free(a);
	free(b);
	free(ga);
	free(gb);
}

/* By hand: made runners go to the oldest jobs of their flavor; held idle ones are not free. */
static void test_assign_by_hand(void **state)
{
	struct queue_job v[6];
	struct manager_event ev[2] = {
	        {.action = "create", .flavor = "small", .ok = true},
	        {.action = "create", .flavor = "large", .ok = true},
	};
	struct plan_flavor_count counts[1] = {{.name = "small", .idle = 2}};
	struct manager_report rep = {
	        .events = ev, .n_events = 2, .plan = {.counts = counts, .n_counts = 1}};
	const char *fl[6] = {"small", "large", "small", "small", "large", "small"};
	size_t given[6], n = 0;

	(void)state;
	memset(v, 0, sizeof(v));
	for (int i = 0; i < 6; i++) {
		v[i].job_id = i + 1;
		str_copy(v[i].flavor, fl[i], sizeof(v[i].flavor));
	}
	v[0].runner_at = 5; /* small: holds one of the 2 idle runners */
	v[3].next_at = 200; /* backed off */
	/* small: 1 made + (2 idle - 1 held) = 2 -> jobs 2 and 5 (index 2, 5); large: 1 -> index 1
	 */
	assert_int_equal(reactive_assign(&rep, v, 6, 100, given, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(given[0], 1);
	assert_int_equal(given[1], 2);
	assert_int_equal(given[2], 5);
	assert_int_equal(v[2].runner_at, 100);
	assert_int_equal(v[2].attempts, 1);
	assert_int_equal(v[4].runner_at, 0);
	assert_int_equal(v[0].runner_at, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_assign_matches_quadratic),
	        cmocka_unit_test(test_assign_by_hand),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
