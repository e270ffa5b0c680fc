/*
 * The local provider's calls under deadlines and the cancel flag: a create
 * cancelled in its handshake leaves nothing, the handshake's wait is
 * bounded, a delete's stop ends at its deadline.
 */
#include "provider_local_fixture.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

/* Another run of this test, waiting for the lock main takes (it names itself so). */
static bool waiting_twin(const char *pid)
{
	char path[300], comm[32] = "";
	FILE *f;
	snprintf(path, sizeof(path), "/proc/%s/comm", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = 0;
	fclose(f);
	return strncmp(comm, TWIN_COMM "\n", sizeof(TWIN_COMM)) == 0;
}

/* Is a process other than this one running this test binary (a starter, A or B)? */
static bool starter_left(void)
{
	struct stat self, st;
	struct dirent *de;
	bool found = false;
	DIR *d;

	assert_int_equal(stat("/proc/self/exe", &self), 0);
	d = opendir("/proc");
	assert_non_null(d);
	while ((de = readdir(d)) && !found) {
		char path[300];
		if (de->d_name[0] < '0' || de->d_name[0] > '9' ||
		    strtol(de->d_name, NULL, 10) == (long)getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%s/exe", de->d_name);
		found = stat(path, &st) == 0 && st.st_dev == self.st_dev &&
		        st.st_ino == self.st_ino && !waiting_twin(de->d_name);
	}
	closedir(d);
	return found;
}

/*
 * A create cancelled during its handshake gives up and leaves nothing: no
 * record, no directory, no starter, and the script never ran.
 */
static void test_local_create_cancelled(void **state)
{
	const char *a = "ci-0000000000c9";
	atomic_bool yes = true;
	struct provider_call c = {.deadline = clock_mono_ms() + 60000, .cancel = &yes};
	struct instance_spec s;
	struct instance in;
	struct err e = {0};
	char path[PATH_MAX];
	int64_t end;

	spec_init(&s, a, "touch ran; sleep 30\n", "K=v\n");
	/* the backend itself: the front refuses a call that is cancelled already */
	assert_int_equal(local_ops.create(lp, &c, &s, &in, &e), -ECANCELED);
	assert_non_null(strstr(e.msg, "cancelled"));
	assert_int_equal(provider_get(lp, a, &in, &e), -ENOENT);
	inst_path(path, sizeof(path), a, "");
	assert_int_not_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/.state/%s.json", work, a);
	assert_int_not_equal(access(path, F_OK), 0);
	for (end = clock_mono_ms() + 3000; starter_left() && clock_mono_ms() < end;)
		clock_sleep_ms(20);
	assert_false(starter_left());
	/* and the name is free again */
	create_ok(a, "ci", "touch ready; sleep 30\n", NULL, NULL);
	assert_true(wait_file(a, "ready", 5000));
	delete_ok(a);
}

static void *cancel_later(void *flag)
{
	clock_sleep_ms(100);
	atomic_store((atomic_bool *)flag, true);
	return NULL;
}

/* The handshake's wait ends at the call's deadline, and at once when it is cancelled. */
static void test_local_handshake_bounded(void **state)
{
	struct local_spawn_handle h = {.pidfd = -1, .rep = -1, .go = -1};
	atomic_bool flag = true;
	struct provider_call c = {.deadline = clock_mono_ms() + 10000, .cancel = &flag};
	struct err e = {0};
	int rep[2], go[2];
	pthread_t t;
	int64_t t0, dt;
	char ch = 0;

	/* cancelled before it: B is not let go ("go" stays empty for the caller to close) */
	assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
	assert_int_equal(pipe2(go, O_CLOEXEC | O_NONBLOCK), 0);
	h.rep = rep[0];
	h.go = go[1];
	assert_int_equal(local_spawn_go("ci-0000000000ca", &h, &c, &e), -ECANCELED);
	assert_int_equal(read(go[0], &ch, 1), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(h.go, go[1]);

	/* a starter that never answers: the call's deadline, not LOCAL_SPAWN_TIMEOUT_MS */
	atomic_store(&flag, false);
	c.deadline = clock_mono_ms() + 300;
	t0 = clock_mono_ms();
	assert_int_equal(local_spawn_go("ci-0000000000ca", &h, &c, &e), -ETIMEDOUT);
	dt = clock_mono_ms() - t0;
	assert_true(dt >= 250 && dt < 2000);
	assert_int_equal(read(go[0], &ch, 1), 1);
	assert_int_equal(ch, 'g');
	assert_int_equal(h.go, -1);
	close(go[0]);

	/* cancelled while it waits */
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	h.go = go[1];
	c.deadline = clock_mono_ms() + 10000;
	assert_int_equal(pthread_create(&t, NULL, cancel_later, &flag), 0);
	t0 = clock_mono_ms();
	assert_int_equal(local_spawn_go("ci-0000000000ca", &h, &c, &e), -ECANCELED);
	dt = clock_mono_ms() - t0;
	pthread_join(t, NULL);
	assert_true(dt < 1000);
	assert_non_null(strstr(e.msg, "cancelled"));
	close(go[0]);
	close(rep[1]);
	local_spawn_close(&h);
	assert_int_equal(h.rep, -1);
}

/*
 * A delete's stop ends at its deadline: the grace is cut short, the job
 * killed, and what is not seen gone by then keeps its record for the next
 * delete. The deadline is the grace and the KILL rounds at least.
 */
static void test_local_delete_deadline(void **state)
{
	const char *a = "ci-0000000000cb";
	struct config_provider slow = pcfg;
	struct provider *p2;
	struct instance in;
	struct err e = {0};
	int64_t saved, t0, dt, end;
	int r;

	slow.local.stop_timeout = 600;
	p2 = open_local("ci", &slow, NULL);
	assert_non_null(p2);
	assert_true(p2->deadline_ms[PROVIDER_OP_DELETE] >= 600 * 1000 + 2 * LOCAL_KILL_TIMEOUT_MS);
	provider_free(p2);
	assert_true(lp->deadline_ms[PROVIDER_OP_DELETE] >=
	            GRACE_S * 1000 + 2 * LOCAL_KILL_TIMEOUT_MS);

	create_ok(a, "ci",
	          "trap '' TERM\nsleep 1000.51 &\ntouch ready\nwhile :; do sleep 0.1; done\n", NULL,
	          NULL);
	assert_true(wait_file(a, "ready", 5000));
	assert_true(wait_cmdline("1000.51", 7));
	saved = lp->deadline_ms[PROVIDER_OP_DELETE];
	lp->deadline_ms[PROVIDER_OP_DELETE] = 300;
	t0 = clock_mono_ms();
	r = provider_delete(lp, a, &e);
	dt = clock_mono_ms() - t0;
	lp->deadline_ms[PROVIDER_OP_DELETE] = saved;
	if (r != 0 && r != -ETIMEDOUT)
		fail_msg("delete %s: %d %s", a, r, e.msg);
	fprintf(stderr, "# delete at a 300 ms deadline: %s after %" PRId64 " ms\n",
	        r == 0 ? "gone" : "record kept", dt);
	assert_true(dt < GRACE_S * 1000);
	for (end = clock_mono_ms() + 3000; proc_cmdline_has("1000.51", 7) && clock_mono_ms() < end;)
		clock_sleep_ms(20);
	assert_false(proc_cmdline_has("1000.51", 7));
	delete_ok(a);
	assert_int_equal(provider_get(lp, a, &in, &e), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_local_create_cancelled),
	        cmocka_unit_test(test_local_handshake_bounded),
	        cmocka_unit_test(test_local_delete_deadline),
	};
	if (local_fixture_lock() != 0)
		return 1;
	return cmocka_run_group_tests(tests, local_fixture_setup, local_fixture_teardown);
}
