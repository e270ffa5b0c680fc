/*
 * The local provider's gc against the real kernel: adopted instances of an
 * older runnerd, leftovers of the shared user and of the uid range killed
 * (and nothing else), temporaries of interrupted record writes removed.
 */
#include "provider_local_fixture.h"

#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>

/* A process of (real) uid, euid and gid in its own session with envp, as a leftover would be. */
static pid_t spawn_sleep(uid_t uid, uid_t euid, gid_t gid, const char *arg, char *const envp[])
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[] = {"sleep", (char *)arg, NULL};
		int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(125);
		close_range(3, ~0U, 0);
		if (setsid() < 0 || setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(uid, euid, euid) < 0)
			_exit(126);
		execve("/bin/sleep", argv, envp);
		_exit(127);
	}
	for (size_t i = 0; i < ARRAY_SIZE(spawned); i++)
		if (spawned[i] == 0) {
			spawned[i] = pid;
			break;
		}
	return pid;
}

/* Did our child pid die of SIGKILL (true) or is it still running after a while (false)? */
static bool child_killed(pid_t pid, long ms)
{
	int64_t end = clock_mono_ms() + ms;
	int status = 0;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
		assert_int_equal(r, 0);
		if (clock_mono_ms() >= end)
			return false;
		clock_sleep_ms(20);
	}
}

/* The start time (field 22 of /proc/<pid>/stat) of a live process. */
static uint64_t starttime_of(pid_t pid)
{
	struct local_proc_info pi;
	assert_int_equal(local_proc_info_read(pid, &pi), 0);
	return pi.starttime;
}

/*
 * An instance an older runnerd started as the shared user (a version 1
 * record, no uid) is adopted: listed, spared by gc with its session, and
 * stopped by delete. The shared user's other processes are leftovers gc
 * kills, whatever their environment says (RUNNERD_HOME naming an instance
 * no longer spares anything); nothing of another uid, or of a mixed one,
 * is signalled. A list kills nothing.
 */
static void test_local_sweep(void **state)
{
	const char *a = "ci-0000000000f6";
	struct passwd *pw = getpwnam(TEST_USER);
	struct instance_list l = {0};
	char path[PATH_MAX], rec[512], home[PATH_MAX + 32];
	uid_t nobody = 65534;
	struct err e = {0};
	pid_t legacy, bare, claims_home, foreign_uid, mixed_uid;
	int status = 0;

	assert_non_null(pw);
	if (nobody == pw->pw_uid)
		nobody = 65533;
	snprintf(home, sizeof(home), "RUNNERD_HOME=%s/%s", work, a);
	{
		char *none[] = {NULL};
		char *home_env[] = {"A=1", home, NULL};
		legacy = spawn_sleep(pw->pw_uid, pw->pw_uid, pw->pw_gid, "1000.34", none);
		bare = spawn_sleep(pw->pw_uid, pw->pw_uid, pw->pw_gid, "1000.35", none);
		claims_home = spawn_sleep(pw->pw_uid, pw->pw_uid, pw->pw_gid, "1000.37", home_env);
		foreign_uid = spawn_sleep(nobody, nobody, nobody, "1000.36", none);
		/* the runner's real uid, root's effective one: not the runner's to kill */
		mixed_uid = spawn_sleep(pw->pw_uid, 0, pw->pw_gid, "1000.39", none);
	}
	assert_true(wait_cmdline("1000.39", 7));
	/* the record an older runnerd wrote for the first: its session leader */
	snprintf(rec, sizeof(rec),
	         "{\"version\":1,\"name\":\"%s\",\"flavor\":\"small\",\"pid\":%d,"
	         "\"starttime\":%" PRIu64 ",\"isolation\":\"none\",\"created_at\":%lld}",
	         a, (int)legacy, starttime_of(legacy), (long long)time(NULL));
	snprintf(path, sizeof(path), "%s/.state/%s.json", work, a);
	assert_int_equal(file_write_atomic(path, rec, strlen(rec), 0600, &e), 0);
	inst_path(path, sizeof(path), a, "");
	assert_int_equal(mkdir(path, 0700), 0);

	assert_int_equal(provider_list(lpm("ci"), &l, &e), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].name, a);
	assert_int_equal(l.v[0].state, CLOUD_ACTIVE);
	instance_list_release(&l);
	assert_false(child_killed(bare, 300));
	assert_int_equal(provider_gc(lp, &e), 0);
	assert_true(child_killed(bare, 3000));
	assert_true(child_killed(claims_home, 3000));
	assert_false(child_killed(legacy, 300));
	assert_false(child_killed(foreign_uid, 300));
	assert_false(child_killed(mixed_uid, 300));
	/* delete stops the legacy instance (TERM ends the sleep) */
	delete_ok(a);
	assert_int_equal(waitpid(legacy, &status, 0), legacy);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(provider_gc(lp, &e), 0);
	assert_false(child_killed(foreign_uid, 300));
	assert_false(child_killed(mixed_uid, 300));
	kill(foreign_uid, SIGKILL);
	kill(mixed_uid, SIGKILL);
	assert_true(child_killed(foreign_uid, 3000));
	assert_true(child_killed(mixed_uid, 3000));
}

/*
 * A kill between writing a record and renaming it leaves a temporary in
 * .state/: gc removes those whose writer is gone and leaves a live one.
 */
static void test_local_sweep_temporaries(void **state)
{
	char dead_new[PATH_MAX], dead_old[PATH_MAX], live[PATH_MAX];
	struct err e = {0};
	struct stat st;
	pid_t dead = fork();

	assert_true(dead >= 0);
	if (dead == 0)
		_exit(0);
	assert_int_equal(waitpid(dead, NULL, 0), dead);
	snprintf(dead_new, sizeof(dead_new),
	         "%s/.state/.ci-0000000000f7.json" FILE_TMP_TAG "%d.0a1b2c3d", work, (int)dead);
	snprintf(dead_old, sizeof(dead_old), "%s/.state/ci-0000000000f8.json.tmp.%d", work,
	         (int)dead);
	snprintf(live, sizeof(live), "%s/.state/.ci-0000000000f9.json" FILE_TMP_TAG "%d.0a1b2c3d",
	         work, (int)getpid());
	assert_int_equal(file_write_atomic(dead_new, "{", 1, 0600, &e), 0);
	assert_int_equal(file_write_atomic(dead_old, "{", 1, 0600, &e), 0);
	assert_int_equal(file_write_atomic(live, "{", 1, 0600, &e), 0);
	assert_int_equal(provider_gc(lp, &e), 0);
	assert_int_equal(lstat(dead_new, &st), -1);
	assert_int_equal(lstat(dead_old, &st), -1);
	assert_int_equal(lstat(live, &st), 0);
	assert_int_equal(unlink(live), 0);
}

/*
 * gc finds leftovers by uid: a process of a uid in the range that no
 * instance holds is killed whatever it says of itself (here: the home of a
 * live instance), the live instance's processes are not, and nothing of a
 * uid outside the range, or of a mixed uid, is signalled.
 */
static void test_local_gc_by_uid(void **state)
{
	const char *a = "ci-0000000000a5", *c = "ci-0000000000a6";
	char adir[PATH_MAX], script[4096], path[PATH_MAX], home[PATH_MAX + 32];
	char *none[] = {NULL};
	struct err e = {0};
	pid_t stray, mixed, foreign;
	uid_t nobody = 65534;

	create_ok(a, "ci", "sleep 1000.63 &\ntouch ready\nwhile :; do sleep 0.1; done\n", NULL,
	          NULL);
	assert_true(wait_file(a, "ready", 5000));
	inst_path(adir, sizeof(adir), a, "");
	adir[strlen(adir) - 1] = '\0';
	snprintf(script, sizeof(script),
	         "RUNNERD_HOME='%s' setsid sleep 1000.64 </dev/null >/dev/null 2>&1 &\n"
	         "touch ready\n"
	         "while :; do sleep 0.1; done\n",
	         adir);
	local_set_isolated(lp, false);
	create_ok(c, "ci", script, NULL, NULL);
	local_set_isolated(lp, true);
	assert_true(wait_file(c, "ready", 5000));
	assert_true(wait_cmdline("1000.64", 7));
	/* C's record is lost (unreadable): its delete cannot stop what it does not know */
	snprintf(path, sizeof(path), "%s/.state/%s.json", work, c);
	assert_int_equal(file_write_atomic(path, "not json", 8, 0600, &e), 0);
	delete_ok(c);
	snprintf(home, sizeof(home), "RUNNERD_HOME=%s", adir);
	{
		char *env[] = {home, NULL};
		stray = spawn_sleep(UID_LAST, UID_LAST, UID_LAST, "1000.65", env);
		mixed = spawn_sleep(UID_LAST - 1, 0, UID_LAST - 1, "1000.66", none);
		foreign = spawn_sleep(nobody, nobody, nobody, "1000.67", none);
	}
	assert_true(wait_cmdline("1000.67", 7));
	clock_sleep_ms(2300); /* older than any starter could be */
	assert_int_equal(provider_gc(lp, &e), 0);
	assert_false(proc_cmdline_has("1000.64", 7));
	assert_true(child_killed(stray, 3000));
	assert_false(child_killed(mixed, 300));
	assert_false(child_killed(foreign, 300));
	assert_true(proc_cmdline_has("1000.63", 7));
	assert_int_equal(state_of(a), CLOUD_ACTIVE);
	kill(mixed, SIGKILL);
	kill(foreign, SIGKILL);
	assert_true(child_killed(mixed, 3000));
	assert_true(child_killed(foreign, 3000));
	delete_ok(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_local_sweep),
	        cmocka_unit_test(test_local_sweep_temporaries),
	        cmocka_unit_test(test_local_gc_by_uid),
	};
	if (local_fixture_lock() != 0)
		return 1;
	return cmocka_run_group_tests(tests, local_fixture_setup, local_fixture_teardown);
}
