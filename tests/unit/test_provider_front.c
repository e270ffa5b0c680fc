/*
 * Unit tests of the provider front (src/provider/provider.c) over the
 * memory backend: what goes in is checked, what comes back is judged as
 * untrusted, each call has a deadline and sees the cancel flag, creates and
 * deletes are bounded per provider, and everything is counted.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/clock.h"
#include "util/strutil.h"
#include "provider/provider.h"
#include "provider/memory.h"

#include <pthread.h>

static const struct config_flavor flavor = {.name = (char *)"small"};

static struct provider *open_mem(void)
{
	struct provider *m = NULL;
	struct err e = {0};

	assert_int_equal(memory_new("east", "ci", &m, &e), 0);
	return m;
}

static int create(struct provider *m, const char *name, struct err *e)
{
	struct instance_spec s = {.name = name, .flavor = &flavor, .startup_script = ""};
	struct instance in;
	return provider_create(m, &s, &in, e);
}

/* Names and paths going in: only this manager's, only plain paths. */
static void test_front_checks_input(void **state)
{
	struct provider *m = open_mem();
	struct instance_spec s = {.name = "ci-000000000001", .flavor = &flavor};
	struct instance in;
	struct buf b = BUF_INIT(0);
	struct provider_file_list v = {0};
	struct provider_list_query q = {.max = 4};
	struct provider_traits t = *provider_traits(m);
	struct err e = {0};

	assert_int_equal(provider_create(m, &s, &in, &e), -EINVAL); /* no script */
	assert_int_equal(create(m, "ci-east-000000000001", &e), -EINVAL);
	assert_non_null(strstr(e.msg, "not a name of manager ci"));
	assert_int_equal(create(m, "ci-00000000000G", &e), -EINVAL);
	assert_int_equal(create(m, "ci-000000000001", &e), 0);
	assert_int_equal(provider_delete(m, "../ci-000000000001", &e), -EINVAL);
	assert_int_equal(provider_get(m, "ci", &in, &e), -EINVAL);
	assert_int_equal(provider_pull_file(m, "ci-000000000001", "a/../../etc", 10, &b, &e),
	                 -EINVAL);
	assert_int_equal(provider_pull_file(m, "ci-000000000001", "", 10, &b, &e), -EINVAL);
	assert_int_equal(provider_pull_file(m, "ci-000000000001", "a\nb", 10, &b, &e), -EINVAL);
	assert_int_equal(
	        provider_pull_file(m, "ci-000000000001", "f", PROVIDER_PULL_MAX + 1, &b, &e),
	        -EINVAL);
	/* a listing: 1 to PROVIDER_LIST_FILES_MAX entries, few plain name prefixes */
	static const char *const bad_prefix[] = {"Runner_", "a b", NULL};
	static const char *const many[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", NULL};
	q.max = 0;
	assert_int_equal(provider_list_files(m, "ci-000000000001", "_diag", &q, &v, &e), -EINVAL);
	q.max = PROVIDER_LIST_FILES_MAX + 1;
	assert_int_equal(provider_list_files(m, "ci-000000000001", "_diag", &q, &v, &e), -EINVAL);
	q.max = 4;
	assert_int_equal(provider_list_files(m, "ci-000000000001", "_diag", NULL, &v, &e), -EINVAL);
	q.prefer = bad_prefix;
	assert_int_equal(provider_list_files(m, "ci-000000000001", "_diag", &q, &v, &e), -EINVAL);
	q.prefer = many;
	assert_int_equal(provider_list_files(m, "ci-000000000001", "_diag", &q, &v, &e), -EINVAL);
	q.prefer = NULL;
	assert_int_equal(provider_list_files(m, "ci-000000000001", "../x", &q, &v, &e), -EINVAL);
	assert_int_equal(memory_calls(m, MEMORY_OP_LIST_FILES), 0);
	/* a backend whose traits say it cannot list files: the front says so, nothing is called */
	t.list_files = false;
	assert_int_equal(memory_set_traits(m, &t), 0);
	assert_int_equal(provider_list_files(m, "ci-000000000001", "_diag", &q, &v, &e), -ENOTSUP);
	assert_int_equal(memory_calls(m, MEMORY_OP_LIST_FILES), 0);
	assert_null(v.v);
	assert_int_equal(memory_calls(m, MEMORY_OP_DELETE), 0);
	assert_int_equal(memory_calls(m, MEMORY_OP_GET), 0);
	assert_int_equal(memory_calls(m, MEMORY_OP_PULL_FILE), 0);
	provider_free(m);
}

/* What comes back is untrusted: a broken answer is refused whole, never half-used. */
static void test_front_refuses_broken_answers(void **state)
{
	struct provider *m = open_mem();
	struct instance_list l = {0};
	struct instance in = {.state = CLOUD_ACTIVE};
	struct provider_stats st;
	struct buf b = BUF_INIT(0);
	struct err e = {0};

	assert_int_equal(create(m, "ci-000000000001", &e), 0);
	assert_int_equal(provider_list(m, &l, &e), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].provider, "east"); /* stamped by the front */

	/* a backend that lists a name of another manager: the whole listing is refused */
	str_copy(in.name, "other-000000000001", sizeof(in.name));
	assert_int_equal(memory_add(m, &in), 0);
	assert_int_equal(memory_lie(m, true), 0);
	assert_int_equal(provider_list(m, &l, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "does not own"));
	assert_int_equal(l.n, 1); /* untouched */
	assert_int_equal(memory_lie(m, false), 0);
	assert_int_equal(provider_list(m, &l, &e), 0);

	/* a state no one knows */
	assert_int_equal(memory_set_state(m, "ci-000000000001", (enum cloud_state)42), 0);
	assert_int_equal(provider_get(m, "ci-000000000001", &in, &e), -EBADMSG);
	assert_int_equal(provider_list(m, &l, &e), -EBADMSG);
	assert_int_equal(memory_set_state(m, "ci-000000000001", CLOUD_ACTIVE), 0);
	/* a creation time a day and more ahead */
	assert_int_equal(memory_set_created_at(m, "ci-000000000001", time(NULL) + 2 * 86400), 0);
	assert_int_equal(provider_get(m, "ci-000000000001", &in, &e), -EBADMSG);
	assert_int_equal(memory_set_created_at(m, "ci-000000000001", time(NULL)), 0);

	/* more bytes than were asked for */
	assert_int_equal(memory_put_file(m, "ci-000000000001", "f", "0123456789", 10), 0);
	assert_int_equal(memory_lie(m, true), 0);
	assert_int_equal(provider_pull_file(m, "ci-000000000001", "f", 4, &b, &e), -EBADMSG);
	assert_null(b.data);
	assert_int_equal(memory_lie(m, false), 0);
	assert_int_equal(provider_pull_file(m, "ci-000000000001", "f", 4, &b, &e), -E2BIG);
	assert_int_equal(provider_pull_file(m, "ci-000000000001", "f", 10, &b, &e), 0);
	assert_string_equal(buf_str(&b), "0123456789");

	/* a listing: the three most useful of four, sorted, and the cut said */
	struct provider_list_query q = {.max = 3};
	struct provider_file_list fl = {0};
	for (int i = 0; i < 4; i++) {
		char path[32];
		snprintf(path, sizeof(path), "_diag/f%d", i);
		assert_int_equal(memory_put_file(m, "ci-000000000001", path, "x", 1), 0);
	}
	assert_int_equal(memory_set_file_time(m, "ci-000000000001", "_diag/f1", time(NULL) + 5), 0);
	assert_int_equal(provider_list_files(m, "ci-000000000001", "_diag", &q, &fl, &e), 0);
	assert_int_equal(fl.n, 3);
	assert_int_equal(fl.total, 4);
	assert_true(fl.cut);
	assert_string_equal(fl.v[0].name, "f1"); /* the newest */
	assert_true(fl.v[1].mtime >= fl.v[2].mtime);
	/* a backend that answers more entries than asked for, or a name that is not plain */
	assert_int_equal(memory_lie(m, true), 0);
	assert_int_equal(provider_list_files(m, "ci-000000000001", "_diag", &q, &fl, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "more entries than asked"));
	assert_int_equal(fl.n, 3); /* untouched */
	q.max = 5;
	assert_int_equal(memory_put_file(m, "ci-000000000001", "_diag/a\nb", "x", 1), 0);
	assert_int_equal(provider_list_files(m, "ci-000000000001", "_diag", &q, &fl, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "not a plain file name"));
	assert_int_equal(memory_lie(m, false), 0);
	provider_file_list_release(&fl);

	provider_stats(m, &st);
	assert_int_equal(st.op[PROVIDER_OP_LIST_FILES].refused, 2);
	assert_int_equal(st.op[PROVIDER_OP_LIST_FILES].calls, 3);
	assert_int_equal(st.op[PROVIDER_OP_LIST].refused, 2);
	assert_int_equal(st.op[PROVIDER_OP_LIST].calls, 4);
	assert_int_equal(st.op[PROVIDER_OP_LIST].failures, 2);
	assert_int_equal(st.op[PROVIDER_OP_GET].refused, 2);
	assert_int_equal(st.op[PROVIDER_OP_PULL_FILE].refused, 1);
	assert_int_equal(st.op[PROVIDER_OP_PULL_FILE].failures, 2);
	assert_int_equal(st.op[PROVIDER_OP_CREATE].calls, 1);
	assert_string_equal(provider_op_name(PROVIDER_OP_LIST_FILES), "list_files");
	buf_release(&b);
	instance_list_release(&l);
	provider_free(m);
}

/* A read that ends past its deadline is stale: refused and counted. */
static void test_front_deadline(void **state)
{
	struct provider *m = open_mem();
	struct provider_stats st;
	struct instance in;
	struct err e = {0};
	int64_t t0;

	assert_int_equal(create(m, "ci-000000000001", &e), 0);
	assert_int_equal(memory_set_latency(m, MEMORY_OP_GET, 2000 * 1000), 0);
	assert_int_equal(memory_set_deadline(m, PROVIDER_OP_GET, 100), 0);
	t0 = clock_mono_ms();
	assert_int_equal(provider_get(m, "ci-000000000001", &in, &e), -ETIMEDOUT);
	/* the backend's wait was bounded by the deadline, not its 2 s */
	assert_true(clock_mono_ms() - t0 < 1500);
	assert_non_null(strstr(e.msg, "stale"));
	provider_stats(m, &st);
	assert_int_equal(st.op[PROVIDER_OP_GET].overruns, 1);
	assert_int_equal(st.op[PROVIDER_OP_GET].failures, 1);
	assert_true(st.op[PROVIDER_OP_GET].total_ms >= 100);

	/* what a late gc did stands: counted as an overrun, not refused as stale */
	assert_int_equal(memory_set_latency(m, MEMORY_OP_GC, 2000 * 1000), 0);
	assert_int_equal(memory_set_deadline(m, PROVIDER_OP_GC, 100), 0);
	assert_int_equal(provider_gc(m, &e), 0);
	provider_stats(m, &st);
	assert_int_equal(st.op[PROVIDER_OP_GC].overruns, 1);
	assert_int_equal(st.op[PROVIDER_OP_GC].failures, 0);
	provider_free(m);
}

struct slow_delete {
	struct provider *m;
	const char *name;
	int r;
};

static void *slow_delete_main(void *arg)
{
	struct slow_delete *d = arg;
	d->r = provider_delete(d->m, d->name, NULL);
	return NULL;
}

/* Two deletes of 200 ms: one slot makes them take turns, two let them overlap. */
static int64_t two_deletes_ms(struct provider *m)
{
	struct slow_delete d[2] = {{m, "ci-000000000001", 1}, {m, "ci-000000000002", 1}};
	pthread_t t[2];
	int64_t t0 = clock_mono_ms();

	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, slow_delete_main, &d[i]), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(d[i].r, 0);
	}
	return clock_mono_ms() - t0;
}

static void test_front_concurrency(void **state)
{
	struct provider *m = open_mem();

	assert_int_equal(memory_set_latency(m, MEMORY_OP_DELETE, 200 * 1000), 0);
	assert_int_equal(memory_set_concurrency(m, 1), 0);
	assert_true(two_deletes_ms(m) >= 390);
	assert_int_equal(memory_set_concurrency(m, 2), 0);
	assert_true(two_deletes_ms(m) < 390);
	provider_free(m);
}

struct canceller {
	atomic_bool *flag;
};

static void *cancel_soon(void *arg)
{
	clock_sleep_ms(100);
	atomic_store(((struct canceller *)arg)->flag, true);
	return NULL;
}

/* The cancel flag ends a slow call at once and refuses new ones. */
static void test_front_cancel(void **state)
{
	struct provider *m = open_mem();
	struct canceller c;
	atomic_bool flag;
	struct instance in;
	struct err e = {0};
	pthread_t t;
	int64_t t0;

	atomic_init(&flag, false);
	c.flag = &flag;
	assert_int_equal(create(m, "ci-000000000001", &e), 0);
	provider_set_cancel(m, &flag);
	assert_int_equal(memory_set_latency(m, MEMORY_OP_GET, 5000 * 1000), 0);
	assert_int_equal(pthread_create(&t, NULL, cancel_soon, &c), 0);
	t0 = clock_mono_ms();
	assert_int_equal(provider_get(m, "ci-000000000001", &in, &e), -ECANCELED);
	assert_true(clock_mono_ms() - t0 < 1000);
	pthread_join(t, NULL);
	assert_int_equal(create(m, "ci-000000000002", &e), -ECANCELED);
	assert_int_equal(memory_calls(m, MEMORY_OP_CREATE), 1);
	provider_set_cancel(m, NULL);
	assert_int_equal(create(m, "ci-000000000002", &e), 0);
	provider_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_front_checks_input),
	        cmocka_unit_test(test_front_refuses_broken_answers),
	        cmocka_unit_test(test_front_deadline),
	        cmocka_unit_test(test_front_concurrency),
	        cmocka_unit_test(test_front_cancel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
