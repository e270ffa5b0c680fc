/*
 * Unit tests of the memory provider (src/provider/memory.c), the test double
 * behind the provider vtable: its hooks (failures, states, files, latency,
 * counts) and its scale. Needs neither root nor the shared lock.
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
#include "provider/backend.h"
#include "provider/memory.h"

static void spec_init(struct instance_spec *s, const char *name, const char *script,
                      const char *secret)
{
	static const struct config_flavor test_flavor = {.name = (char *)"small"};

	memset(s, 0, sizeof(*s));
	s->name = name;
	s->flavor = &test_flavor;
	s->startup_script = script;
	s->secret_env = secret;
}

/*
 * A provider that is not the memory one, for the hooks to refuse: a backend
 * that opens and does nothing (the local one would need root).
 */
static int stub_open(struct provider *p, const struct config_provider *pc, struct err *e)
{
	return 0;
}

static const struct provider_ops stub_ops = {.type = "stub", .open = stub_open};

static struct provider *open_stub(void)
{
	struct config_provider pc = {.name = (char *)"local", .type = (char *)"stub"};
	struct provider *p = NULL;

	assert_int_equal(provider_open_ops(&stub_ops, &pc, "ci", &p, NULL), 0);
	return p;
}

static void test_memory_basics(void **state)
{
	struct provider *m = NULL, *other;
	struct instance_spec s;
	struct instance in;
	struct instance_list l = {0};
	struct buf b = BUF_INIT(0);
	struct err e = {0};
	struct config_flavor fl = {.name = (char *)"small"};
	enum health h;

	assert_int_equal(memory_new("local", "ci", &m, &e), 0);
	assert_string_equal(provider_type(m), "memory");
	assert_string_equal(provider_name(m), "local");
	spec_init(&s, "ci-000000000001", "echo hi\n", "TOKEN=abc\n");
	s.flavor = &fl;
	assert_int_equal(provider_create(m, &s, &in, &e), 0);
	assert_int_equal(in.state, CLOUD_ACTIVE);
	assert_string_equal(in.flavor, "small");
	assert_int_equal(provider_create(m, &s, &in, &e), -EEXIST);
	/* another manager's name is refused by the front; its instances are not ours */
	spec_init(&s, "ci-east-000000000001", "", NULL);
	assert_int_equal(provider_create(m, &s, &in, &e), -EINVAL);
	in.state = CLOUD_ACTIVE;
	str_copy(in.name, "ci-east-000000000001", sizeof(in.name));
	assert_int_equal(memory_add(m, &in), 0);

	assert_int_equal(provider_list(m, &l, &e), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].name, "ci-000000000001");
	assert_int_equal(memory_get_secret_env(m, "ci-000000000001", &b), 0);
	assert_string_equal(buf_str(&b), "TOKEN=abc\n");
	assert_int_equal(memory_get_startup_script(m, "ci-000000000001", &b), 0);
	assert_string_equal(buf_str(&b), "echo hi\n");

	assert_int_equal(provider_health(m, "ci-000000000001", &h, &e), 0);
	assert_int_equal(h, HEALTH_HEALTHY);
	assert_int_equal(memory_set_state(m, "ci-000000000001", CLOUD_STOPPED), 0);
	assert_int_equal(provider_get(m, "ci-000000000001", &in, &e), 0);
	assert_int_equal(in.state, CLOUD_STOPPED);
	assert_int_equal(provider_health(m, "ci-000000000001", &h, &e), 0);
	assert_int_equal(h, HEALTH_UNHEALTHY);
	assert_int_equal(provider_health(m, "ci-00000000000f", &h, &e), 0);
	assert_int_equal(h, HEALTH_UNKNOWN);
	assert_int_equal(memory_set_state(m, "ci-00000000000f", CLOUD_STOPPED), -ENOENT);
	assert_int_equal(memory_set_created_at(m, "ci-000000000001", 1234), 0);
	assert_int_equal(provider_get(m, "ci-000000000001", &in, &e), 0);
	assert_int_equal(in.created_at, 1234);

	assert_int_equal(memory_put_file(m, "ci-000000000001", "m.json", "{}", 2), 0);
	assert_int_equal(provider_pull_file(m, "ci-000000000001", "m.json", 10, &b, &e), 0);
	assert_string_equal(buf_str(&b), "{}");
	assert_int_equal(provider_pull_file(m, "ci-000000000001", "m.json", 1, &b, &e), -E2BIG);
	assert_int_equal(provider_pull_file(m, "ci-000000000001", "x", 10, &b, &e), -ENOENT);

	assert_int_equal(provider_delete(m, "ci-000000000001", &e), 0);
	assert_int_equal(provider_delete(m, "ci-000000000001", &e), 0);
	assert_int_equal(provider_get(m, "ci-000000000001", &in, &e), -ENOENT);
	assert_int_equal(memory_count(m), 1);
	assert_int_equal(memory_calls(m, MEMORY_OP_DELETE), 2);
	/* Hooks refuse a provider that is not the memory one. */
	other = open_stub();
	assert_int_equal(memory_fail(other, MEMORY_OP_LIST, -EIO, 1), -EINVAL);
	assert_int_equal(memory_count(other), 0);
	provider_free(other);
	buf_release(&b);
	instance_list_release(&l);
	provider_free(m);
	provider_free(NULL);
}

static void test_memory_failures(void **state)
{
	struct provider *m = NULL;
	struct instance_spec s;
	struct instance in;
	struct instance_list l = {0};
	struct err e = {0};

	assert_int_equal(memory_new("local", "ci", &m, &e), 0);
	spec_init(&s, "ci-000000000001", "", NULL);
	assert_int_equal(provider_create(m, &s, &in, &e), 0);
	assert_int_equal(provider_list(m, &l, &e), 0);
	assert_int_equal(l.n, 1);

	/* A failing list leaves ret as it was, once; then lists again. */
	assert_int_equal(memory_fail(m, MEMORY_OP_LIST, -EIO, 1), 0);
	assert_int_equal(provider_list(m, &l, &e), -EIO);
	assert_int_equal(l.n, 1);
	assert_int_equal(provider_list(m, &l, &e), 0);

	/* Failing creates: nothing left, or an instance left in ERROR. */
	assert_int_equal(memory_fail(m, MEMORY_OP_CREATE, -ETIMEDOUT, -1), 0);
	spec_init(&s, "ci-000000000002", "", NULL);
	assert_int_equal(provider_create(m, &s, &in, &e), -ETIMEDOUT);
	assert_int_equal(provider_get(m, "ci-000000000002", &in, &e), -ENOENT);
	assert_int_equal(memory_fail_create_leaves(m, CLOUD_ERROR), 0);
	assert_int_equal(provider_create(m, &s, &in, &e), -ETIMEDOUT);
	assert_int_equal(provider_get(m, "ci-000000000002", &in, &e), 0);
	assert_int_equal(in.state, CLOUD_ERROR);
	assert_int_equal(memory_fail(m, MEMORY_OP_CREATE, 0, 0), 0);
	spec_init(&s, "ci-000000000003", "", NULL);
	assert_int_equal(provider_create(m, &s, &in, &e), 0);

	/* Failing deletes keep the instance; get and pull can fail too. */
	assert_int_equal(memory_fail(m, MEMORY_OP_DELETE, -EIO, 2), 0);
	assert_int_equal(provider_delete(m, "ci-000000000003", &e), -EIO);
	assert_int_equal(provider_delete(m, "ci-000000000003", &e), -EIO);
	assert_int_equal(provider_get(m, "ci-000000000003", &in, &e), 0);
	assert_int_equal(provider_delete(m, "ci-000000000003", &e), 0);
	assert_int_equal(memory_fail(m, MEMORY_OP_GET, -EIO, 1), 0);
	assert_int_equal(provider_get(m, "ci-000000000001", &in, &e), -EIO);
	assert_int_equal(provider_get(m, "ci-000000000001", &in, &e), 0);
	assert_int_equal(memory_calls(m, MEMORY_OP_CREATE), 4);

	/* Latency is added to calls. */
	assert_int_equal(memory_set_latency(m, MEMORY_OP_GET, 30000), 0);
	int64_t t0 = clock_mono_ms();
	assert_int_equal(provider_get(m, "ci-000000000001", &in, &e), 0);
	assert_true(clock_mono_ms() - t0 >= 25);
	instance_list_release(&l);
	provider_free(m);
}

static void test_memory_scale(void **state)
{
	struct provider *m = NULL;
	struct instance_spec s;
	struct instance in;
	struct instance_list l = {0};
	char name[INSTANCE_NAME_MAX];
	int64_t t0 = clock_mono_ms();
	const int n = 10000;

	assert_int_equal(memory_new("local", "ci", &m, NULL), 0);
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "ci-%012x", i);
		spec_init(&s, name, "", NULL);
		assert_int_equal(provider_create(m, &s, &in, NULL), 0);
	}
	snprintf(name, sizeof(name), "other-%012x", 1);
	in.state = CLOUD_ACTIVE;
	str_copy(in.name, name, sizeof(in.name));
	assert_int_equal(memory_add(m, &in), 0);
	assert_int_equal(memory_add(m, &in), -EEXIST);
	assert_int_equal(provider_list(m, &l, NULL), 0);
	assert_int_equal(l.n, (size_t)n);
	/* Delete every other one, then check each is where it should be. */
	for (int i = 0; i < n; i += 2) {
		snprintf(name, sizeof(name), "ci-%012x", i);
		assert_int_equal(provider_delete(m, name, NULL), 0);
	}
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "ci-%012x", i);
		assert_int_equal(provider_get(m, name, &in, NULL), i % 2 ? 0 : -ENOENT);
	}
	assert_int_equal(memory_count(m), (size_t)n / 2 + 1);
	assert_int_equal(provider_list(m, &l, NULL), 0);
	assert_int_equal(l.n, (size_t)n / 2);
	for (int i = 1; i < n; i += 2) {
		snprintf(name, sizeof(name), "ci-%012x", i);
		assert_int_equal(provider_delete(m, name, NULL), 0);
	}
	assert_int_equal(memory_count(m), 1);
	assert_true(clock_mono_ms() - t0 < 3000);
	instance_list_release(&l);
	provider_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_memory_basics),
	        cmocka_unit_test(test_memory_failures),
	        cmocka_unit_test(test_memory_scale),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
