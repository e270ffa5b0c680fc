/*
 * The local provider's isolation against the real kernel: namespace mode
 * (everything dies with the namespace's init; secret files out of reach),
 * a uid of its own per instance, and fallback mode (forced, allowed only
 * with allow_weak_isolation): its own session and uid, escapes found and
 * stopped, instances kept apart.
 */
#include "provider_local_fixture.h"

#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>

/* Without namespaces: still its own session, still its own uid, still killed. */
static void test_local_fallback(void **state)
{
	const char *a = "ci-0000000000f2";
	char buf[1024];
	int64_t t0;

	local_set_isolated(lp, false);
	create_ok(a, "ci",
	          "trap '' TERM\n"
	          "id -u > uid.out\n"
	          "echo \"$MY_SECRET\" > secret.out\n"
	          "cat /proc/$$/stat > stat.out\n"
	          "sleep 1000.25 &\n"
	          "if cat " TOKEN_REL
	          " >/dev/null 2>&1; then echo readable; else echo denied; fi > probe.out\n"
	          "touch ready\n"
	          "while :; do sleep 0.1; done\n",
	          "MY_SECRET=fallback-S3CRET\n", NULL);
	local_set_isolated(lp, true);
	assert_true(wait_file(a, "ready", 5000));
	slurp(a, "uid.out", buf, sizeof(buf));
	assert_int_equal(strtol(buf, NULL, 10), proc_uid(leader_of(a)));
	assert_true(uid_in_range(strtol(buf, NULL, 10)));
	slurp(a, "secret.out", buf, sizeof(buf));
	assert_string_equal(buf, "fallback-S3CRET");
	slurp(a, "probe.out", buf, sizeof(buf));
	assert_string_equal(buf, "denied"); /* file modes alone keep it out */
	assert_false(proc_cmdline_has("fallback-S3CRET", 15));
	slurp(a, "stat.out", buf, sizeof(buf));
	assert_non_null(strrchr(buf, ')'));
	{
		long pid = strtol(buf, NULL, 10), pgrp = 0, sid = 0;
		assert_int_equal(sscanf(strrchr(buf, ')') + 2, "%*c %*d %ld %ld", &pgrp, &sid), 2);
		assert_int_equal(pid, leader_of(a));
		assert_int_equal(pgrp, pid);
		assert_int_equal(sid, pid);
	}
	assert_true(wait_cmdline("1000.25", 7));
	t0 = clock_mono_ms();
	delete_ok(a);
	assert_true(clock_mono_ms() - t0 >= GRACE_S * 1000);
	assert_false(proc_cmdline_has("1000.25", 7));

	/* A start that fails as the instance's uid (it cannot reach its dir) is an
	 * error that names the step, and leaves nothing behind. */
	{
		struct instance_spec s;
		struct instance in;
		struct instance_list l = {0};
		struct err e = {0};
		int r;

		local_set_isolated(lp, false);
		assert_int_equal(chmod(base, 0700), 0);
		spec_init(&s, "ci-0000000000f3", "touch ran\n", "K=v\n");
		r = provider_create(lpn(s.name), &s, &in, &e);
		chmod(base, 0711);
		local_set_isolated(lp, true);
		assert_int_equal(r, -EACCES);
		assert_non_null(strstr(e.msg, "chdir"));
		assert_int_equal(provider_list(lpm("ci"), &l, &e), 0);
		assert_int_equal(l.n, 0);
		instance_list_release(&l);
		inst_path(buf, sizeof(buf), "ci-0000000000f3", "");
		assert_int_not_equal(access(buf, F_OK), 0);
	}
}

/* Without namespaces, delete finds what left the leader behind: its session outlives
 * it (nohup, a killed shell) and a setsid'd child keeps the instance's environment. */
static void test_local_fallback_escapes(void **state)
{
	const char *a = "ci-0000000000f4", *b = "ci-0000000000f5";
	int64_t end;
	pid_t pid;

	local_set_isolated(lp, false);
	create_ok(a, "ci",
	          "nohup sleep 1000.31 >/dev/null 2>&1 &\n"
	          "(trap '' TERM; while :; do sleep 0.1; done) &\n"
	          "touch ready\n"
	          "kill -KILL $$\n",
	          NULL, NULL);
	create_ok(b, "ci",
	          "setsid sleep 1000.32 &\n"
	          "setsid sh -c 'trap \"\" TERM; while :; do sleep 0.1; done' 1000.33 &\n"
	          "touch ready\n"
	          "while :; do sleep 0.1; done\n",
	          NULL, NULL);
	local_set_isolated(lp, true);
	assert_true(wait_file(a, "ready", 5000));
	assert_true(wait_file(b, "ready", 5000));
	assert_true(wait_cmdline("1000.31", 7));
	assert_true(wait_cmdline("1000.32", 7));
	assert_true(wait_cmdline("1000.33", 7));
	/* The leader is gone, reaped even, its session is not. */
	pid = leader_of(a);
	assert_true(wait_state(a, CLOUD_STOPPED, 5000));
	for (end = clock_mono_ms() + 5000; kill(pid, 0) == 0 && clock_mono_ms() < end;)
		clock_sleep_ms(20);
	assert_int_equal(kill(pid, 0), -1);
	assert_true(proc_cmdline_has("1000.31", 7));
	delete_ok(a);
	assert_false(proc_cmdline_has("1000.31", 7));
	delete_ok(b);
	assert_false(proc_cmdline_has("1000.32", 7));
	assert_false(proc_cmdline_has("1000.33", 7));
}

/* Namespaces: when the namespace's init dies, by whatever hand, everything in it dies. */
static void test_local_init_dies(void **state)
{
	const char *a = "ci-0000000000f7";
	char path[64];
	struct stat ns;
	pid_t pid;
	int64_t end;
	int left = -1;

	if (!local_isolated(lp)) {
		skip();
		return;
	}
	create_ok(a, "ci",
	          "trap '' TERM\n"
	          "setsid sleep 1000.41 &\n"
	          "nohup sleep 1000.42 >/dev/null 2>&1 &\n"
	          "setsid sh -c 'trap \"\" TERM; while :; do sleep 0.1; done' 1000.43 &\n"
	          "touch ready\n"
	          "while :; do sleep 0.1; done\n",
	          NULL, NULL);
	assert_true(wait_file(a, "ready", 5000));
	assert_true(wait_cmdline("1000.41", 7));
	assert_true(wait_cmdline("1000.42", 7));
	assert_true(wait_cmdline("1000.43", 7));
	pid = leader_of(a);
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	assert_int_equal(stat(path, &ns), 0);
	assert_int_equal(kill(pid, SIGKILL), 0);
	for (end = clock_mono_ms() + 5000; left != 0 && clock_mono_ms() < end; clock_sleep_ms(20)) {
		struct dirent *de;
		DIR *d = opendir("/proc");
		assert_non_null(d);
		left = 0;
		while ((de = readdir(d))) {
			struct stat st;
			if (de->d_name[0] < '0' || de->d_name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "/proc/%s/ns/pid", de->d_name);
			if (stat(path, &st) == 0 && st.st_dev == ns.st_dev &&
			    st.st_ino == ns.st_ino)
				left++;
		}
		closedir(d);
	}
	assert_int_equal(left, 0);
	assert_false(proc_cmdline_has("1000.41", 7));
	assert_false(proc_cmdline_has("1000.42", 7));
	assert_false(proc_cmdline_has("1000.43", 7));
	assert_true(wait_state(a, CLOUD_STOPPED, 5000));
	delete_ok(a);
}

static void write_mode(const char *path, const char *data, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/*
 * runnerd's secret files are out of a job's reach in namespace mode even
 * when their mode would let it read them; without namespaces their mode is
 * all that protects them.
 */
static void test_local_secret_files(void **state)
{
	const char *a = "ci-0000000000f8", *b = "ci-0000000000f9";
	char tok[PATH_MAX], key[PATH_MAX], pol[PATH_MAX], link[PATH_MAX];
	char other[PATH_MAX], missing[PATH_MAX], script[4096], buf[1024];
	struct strv secrets = {0};
	struct provider *p2 = NULL;
	struct instance_spec s;
	struct instance in;
	struct err e = {0};
	struct buf hb = BUF_INIT(256);

	str_copy(sdir, "/run/runnerd-test-sec-XXXXXX", sizeof(sdir));
	if (!mkdtemp(sdir)) {
		str_copy(sdir, "/var/tmp/runnerd-test-sec-XXXXXX", sizeof(sdir));
		assert_non_null(mkdtemp(sdir));
	}
	assert_int_equal(chmod(sdir, 0755), 0);
	snprintf(tok, sizeof(tok), "%s/token", sdir);
	snprintf(key, sizeof(key), "%s/app.pem", sdir);
	snprintf(pol, sizeof(pol), "%s/policy", sdir);
	snprintf(link, sizeof(link), "%s/policy-link", sdir);
	snprintf(other, sizeof(other), "%s/other.txt", sdir);
	snprintf(missing, sizeof(missing), "%s/missing", sdir);
	write_mode(tok, "GH-TOKEN-0644\n", 0644);
	write_mode(key, "APP-KEY-0644\n", 0644);
	write_mode(pol, "POLICY-0644\n", 0644);
	write_mode(other, "VISIBLE\n", 0644);
	assert_int_equal(symlink(pol, link), 0);

	/* the secret files a config names, as config_secret_files lists them */
	assert_int_equal(strv_push(&secrets, tok), 0);
	assert_int_equal(strv_push(&secrets, key), 0);
	assert_int_equal(strv_push(&secrets, missing), 0);
	assert_int_equal(strv_push(&secrets, link), 0); /* hidden where it leads */
	p2 = open_local("ci", &pcfg, &secrets);
	assert_non_null(p2);

	snprintf(script, sizeof(script),
	         "cat '%s' '%s' '%s' '%s' > read.out 2>&1\n"
	         "cat '%s' > other.out 2>&1\n"
	         "touch ready\n"
	         "sleep 30\n",
	         tok, key, pol, link, other);
	if (local_isolated(p2)) {
		spec_init(&s, a, script, NULL);
		if (provider_create(p2, &s, &in, &e) != 0)
			fail_msg("create %s: %s", a, e.msg);
		assert_true(wait_file(a, "ready", 5000));
		slurp(a, "read.out", buf, sizeof(buf));
		assert_null(strstr(buf, "0644"));
		assert_non_null(strstr(buf, "denied")); /* "Permission denied" */
		slurp(a, "other.out", buf, sizeof(buf));
		assert_string_equal(buf, "VISIBLE"); /* the files, not their directory */
		assert_int_equal(provider_delete(p2, a, &e), 0);
	}
	local_set_isolated(p2, false);
	spec_init(&s, b, script, NULL);
	if (provider_create(p2, &s, &in, &e) != 0)
		fail_msg("create %s: %s", b, e.msg);
	assert_true(wait_file(b, "ready", 5000));
	slurp(b, "read.out", buf, sizeof(buf));
	assert_non_null(strstr(buf, "GH-TOKEN-0644"));
	assert_int_equal(provider_delete(p2, b, &e), 0);
	provider_free(p2);
	strv_release(&secrets);

	/* The files themselves were not touched. */
	assert_int_equal(file_read(tok, 256, true, &hb, &e), 0);
	assert_string_equal(buf_str(&hb), "GH-TOKEN-0644\n");
	buf_release(&hb);
	rm_rf(sdir, NULL);
	sdir[0] = '\0';
}

/* ---- a uid of its own per instance -------------------------------------- */

/*
 * Every instance runs as a uid (and gid) of its own from uid_range, with no
 * other group; its script and runner package are root's and read-only to
 * it; a new provider (a daemon restart) finds the same uid in the record.
 */
static void test_local_uids(void **state)
{
	const char *a = "ci-0000000000a1", *b = "ci-0000000000a2";
	const char *script = "id -u > uid.out\n"
	                     "id -g > gid.out\n"
	                     "id -G > groups.out\n"
	                     "if (echo 'echo changed' >> startup.sh) 2>/dev/null; then echo wrote; "
	                     "else echo denied; fi > script.out\n"
	                     "if (echo x >> runner.tar.gz) 2>/dev/null; then echo wrote; "
	                     "else echo denied; fi > tarball.out\n"
	                     "touch ready\n"
	                     "while [ ! -e stop ]; do sleep 0.05; done\n";
	char tb[PATH_MAX], path[PATH_MAX], buf[256], want[64];
	struct provider *fresh;
	struct instance_spec s;
	struct instance in;
	struct err e = {0};
	struct stat st;
	long ua, ub;

	snprintf(tb, sizeof(tb), "%s/runner-uids.tar.gz", base);
	assert_int_equal(file_write_atomic(tb, "TARBALL", 7, 0600, &e), 0);
	for (int i = 0; i < 2; i++) {
		spec_init(&s, i ? b : a, script, NULL);
		s.runner_tarball = tb;
		if (provider_create(lp, &s, &in, &e) != 0)
			fail_msg("create %s: %s", s.name, e.msg);
	}
	assert_true(wait_file(a, "ready", 5000));
	assert_true(wait_file(b, "ready", 5000));
	ua = proc_uid(leader_of(a));
	ub = proc_uid(leader_of(b));
	fprintf(stderr, "# uids: %s %ld, %s %ld\n", a, ua, b, ub);
	assert_true(uid_in_range(ua));
	assert_true(uid_in_range(ub));
	assert_int_not_equal(ua, ub);
	slurp(a, "uid.out", buf, sizeof(buf));
	assert_int_equal(strtol(buf, NULL, 10), ua);
	snprintf(want, sizeof(want), "%ld", ua);
	slurp(a, "gid.out", buf, sizeof(buf));
	assert_string_equal(buf, want);
	slurp(a, "groups.out", buf, sizeof(buf));
	assert_string_equal(buf, want);
	/* its dir is its own; its script and package are root's, read-only */
	inst_path(path, sizeof(path), a, "");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, ua);
	assert_int_equal(st.st_gid, ua);
	assert_int_equal(st.st_mode & 07777, 0700);
	inst_path(path, sizeof(path), a, "startup.sh");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 0222, 0);
	slurp(a, "script.out", buf, sizeof(buf));
	assert_string_equal(buf, "denied");
	slurp(a, "tarball.out", buf, sizeof(buf));
	assert_string_equal(buf, "denied");
	/* a daemon restart: the same instances, the same uids */
	fresh = open_local("ci", &pcfg, NULL);
	assert_non_null(fresh);
	assert_int_equal(provider_get(fresh, a, &in, &e), 0);
	assert_int_equal(in.state, CLOUD_ACTIVE);
	provider_free(fresh);
	assert_int_equal(proc_uid(leader_of(a)), ua);
	delete_ok(a);
	delete_ok(b);
}

/*
 * Fallback mode (forced): instance B's job cannot read A's environment (its
 * secret), write into A's directory or replace A's hook; a process of B
 * that names A's directory in RUNNERD_HOME and leaves B's session dies with
 * B all the same (delete, then gc).
 */
static void test_local_fallback_apart(void **state)
{
	const char *a = "ci-0000000000a3", *b = "ci-0000000000a4";
	char adir[PATH_MAX], script[8192], buf[256], path[PATH_MAX];
	struct err e = {0};
	pid_t apid;

	local_set_isolated(lp, false);
	create_ok(a, "ci",
	          "mkdir -p hooks && printf '#!/bin/sh\\necho original\\n' > hooks/pre-job.sh\n"
	          "chmod 755 hooks/pre-job.sh\n"
	          "sleep 1000.6 &\n"
	          "touch ready\n"
	          "while [ ! -e stop ]; do sleep 0.05; done\n",
	          "MY_SECRET=APART-S3CRET-of-a\n", NULL);
	assert_true(wait_file(a, "ready", 5000));
	assert_true(wait_cmdline("1000.6", 6));
	apid = leader_of(a);
	inst_path(adir, sizeof(adir), a, "");
	adir[strlen(adir) - 1] = '\0'; /* no trailing slash */
	snprintf(script, sizeof(script),
	         "if grep -qa APART-S3CRET /proc/%d/environ 2>/dev/null; then echo readable; "
	         "else echo denied; fi > environ.out\n"
	         "n=0; for f in /proc/[0-9]*/environ; do "
	         "if grep -qa APART-S3CRET \"$f\" 2>/dev/null; then n=$((n+1)); fi; done; "
	         "echo $n > environ_all.out\n"
	         "if (echo x > '%s/intruder') 2>/dev/null; then echo wrote; else echo denied; fi "
	         "> write.out\n"
	         "if (printf 'echo replaced\\n' > '%s/hooks/pre-job.sh') 2>/dev/null; then echo "
	         "wrote; else echo denied; fi > hook.out\n"
	         "if mv '%s/hooks' '%s/hooks.old' 2>/dev/null; then echo moved; else echo denied; "
	         "fi > mv.out\n"
	         "RUNNERD_HOME='%s' setsid sleep 1000.61 </dev/null >/dev/null 2>&1 &\n"
	         "touch ready\n"
	         "while [ ! -e stop ]; do sleep 0.05; done\n",
	         (int)apid, adir, adir, adir, adir, adir);
	create_ok(b, "ci", script, NULL, NULL);
	local_set_isolated(lp, true);
	assert_true(wait_file(b, "ready", 5000));
	assert_true(wait_cmdline("1000.61", 7));
	slurp(b, "environ.out", buf, sizeof(buf));
	assert_string_equal(buf, "denied");
	slurp(b, "environ_all.out", buf, sizeof(buf));
	assert_string_equal(buf, "0");
	slurp(b, "write.out", buf, sizeof(buf));
	assert_string_equal(buf, "denied");
	slurp(b, "hook.out", buf, sizeof(buf));
	assert_string_equal(buf, "denied");
	slurp(b, "mv.out", buf, sizeof(buf));
	assert_string_equal(buf, "denied");
	inst_path(path, sizeof(path), a, "intruder");
	assert_int_not_equal(access(path, F_OK), 0);
	slurp(a, "hooks/pre-job.sh", buf, sizeof(buf));
	assert_string_equal(buf, "#!/bin/sh\necho original");

	/* B's process that claims A's home dies with B, and A's processes do not */
	delete_ok(b);
	assert_int_equal(provider_gc(lp, &e), 0);
	assert_false(proc_cmdline_has("1000.61", 7));
	assert_true(proc_cmdline_has("1000.6", 6));
	assert_int_equal(state_of(a), CLOUD_ACTIVE);
	delete_ok(a);
	assert_false(proc_cmdline_has("1000.6", 6));
}

/*
 * RUNNERD_LOCAL_NO_NAMESPACES=1 forces fallback mode, which opens only with
 * allow_weak_isolation; the note then says what isolation is left.
 */
static void test_local_weak_refused(void **state)
{
	struct config_provider weak = pcfg;
	struct provider *p = NULL;
	struct err e = {0};
	const char *note;

	assert_int_equal(setenv("RUNNERD_LOCAL_NO_NAMESPACES", "1", 1), 0);
	assert_int_not_equal(provider_open(&pcfg, "ci", &p, &e), 0);
	assert_null(p);
	assert_non_null(strstr(e.msg, "allow_weak_isolation"));
	weak.local.allow_weak_isolation = true;
	assert_int_equal(provider_open(&weak, "ci", &p, &e), 0);
	unsetenv("RUNNERD_LOCAL_NO_NAMESPACES");
	assert_false(local_isolated(p));
	note = provider_traits(p)->note;
	fprintf(stderr, "# note: %s\n", note);
	assert_non_null(strstr(note, "fallback"));
	assert_non_null(strstr(note, UID_RANGE));
	assert_non_null(strstr(note, "/tmp"));
	assert_null(strchr(note, '\n'));
	provider_free(p);
	/* without the variable, where namespaces work, the same config opens isolated */
	p = open_local("ci", &pcfg, NULL);
	assert_non_null(p);
	note = provider_traits(p)->note;
	fprintf(stderr, "# note: %s\n", note);
	assert_non_null(strstr(note, UID_RANGE));
	if (local_isolated(p))
		assert_non_null(strstr(note, "namespace"));
	provider_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_local_fallback),
	        cmocka_unit_test(test_local_fallback_escapes),
	        cmocka_unit_test(test_local_init_dies),
	        cmocka_unit_test(test_local_secret_files),
	        cmocka_unit_test(test_local_uids),
	        cmocka_unit_test(test_local_fallback_apart),
	        cmocka_unit_test(test_local_weak_refused),
	};
	if (local_fixture_lock() != 0)
		return 1;
	return cmocka_run_group_tests(tests, local_fixture_setup, local_fixture_teardown);
}
