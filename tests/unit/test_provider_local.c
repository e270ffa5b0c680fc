/*
 * Unit tests of the local provider (src/provider/local/) against the real
 * kernel: creating an instance and what it can and cannot do, tarballs,
 * refusals, ownership in lists, stubborn deletes, instances that outlive
 * their creator, concurrent calls. Isolation, gc, deadlines and files are
 * in the other test_provider_local_*.c programs (their shared fixture is
 * provider_local_fixture.c); the parsers have test_local_env.c, the memory
 * test double test_provider_memory.c.
 */
#include "provider_local_fixture.h"

#include <ftw.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>

static const char *secret_needle;
static int secret_files;

static int scan_file(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	struct buf b = BUF_INIT(1 << 20);
	(void)f;
	if (flag != FTW_F || !S_ISREG(st->st_mode) || strstr(path, "/secret.out") ||
	    strstr(path, "/env.out"))
		return 0;
	if (file_read(path, b.max, true, &b, NULL) == 0 &&
	    memmem(b.data, b.len, secret_needle, strlen(secret_needle))) {
		fprintf(stderr, "# secret found in %s\n", path);
		secret_files++;
	}
	buf_release(&b);
	return 0;
}

/* ---- local: create and what the instance can and cannot do ------------- */

static void test_local_setup(void **state)
{
	struct passwd *pw = getpwnam(TEST_USER);
	struct stat st;

	/* the legacy user: still made, never run as */
	assert_non_null(pw);
	assert_int_not_equal(pw->pw_uid, 0);
	assert_int_equal(stat(work, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, 0711);
	assert_true(strstr(pw->pw_shell, "nologin") != NULL);
	/* Unknown provider types are refused. */
	struct config_provider nope = pcfg;
	struct provider *p = NULL;
	struct err e = {0};
	nope.type = (char *)"nope";
	assert_int_equal(provider_open(&nope, "ci", &p, &e), -ENOENT);
	assert_null(p);
	assert_true(provider_type_known("local"));
	assert_false(provider_type_known("nope"));
	/* what the manager acts on instead of the backend's name */
	assert_true(provider_traits(lp)->runner_from_host);
	assert_true(provider_traits(lp)->host_process);
	assert_true(provider_traits(lp)->pull_files);
	assert_true(provider_traits(lp)->list_files);
	assert_false(provider_traits(lp)->denylist);
	assert_non_null(
	        strstr(provider_traits(lp)->note, local_isolated(lp) ? "namespace" : "fallback"));
	fprintf(stderr, "# local provider isolation: %s\n",
	        local_isolated(lp) ? "pid+mount namespaces" : "none (session only)");
}

static void test_local_lifecycle(void **state)
{
	const char *a = "ci-00000000000a", *b = "ci-00000000000b";
	char script[4096], buf[512], path[PATH_MAX];
	struct instance in, in2;
	struct instance_list l = {0};
	struct provider *fresh = NULL;
	struct err e = {0};
	enum health h;
	struct stat st;
	long uid;
	pid_t pid;

	create_ok(b, "ci", "touch ready; while [ ! -e stop ]; do sleep 0.05; done\n", NULL, NULL);
	assert_true(wait_file(b, "ready", 5000));
	snprintf(script, sizeof(script),
	         "id -u > uid.out\n"
	         "id -G > groups.out\n"
	         "cat /proc/$$/stat > stat.out\n"
	         "echo \"$MY_SECRET\" > secret.out\n"
	         "env | sort > env.out\n"
	         "if cat '%s' > tok.out 2>/dev/null; then echo readable; else echo denied; fi > "
	         "probe.out\n"
	         "ls '%s' > ls.out 2>&1\n"
	         "ls /proc | grep -c '^[0-9]' > nproc.out\n"
	         "if [ -e '%s' ]; then echo visible; else echo hidden; fi > hide.out\n"
	         "touch /tmp/private-marker\n"
	         "touch ready\n"
	         "while [ ! -e stop ]; do sleep 0.05; done\n",
	         token, work, token);
	create_ok(a, "ci", script,
	          "MY_SECRET='"
	          "s3cr3t-jit '\\''value'\\'' with spaces"
	          "'\n\nPLAIN=x=y\n",
	          &in);
	assert_string_equal(in.name, a);
	assert_int_equal(in.state, CLOUD_ACTIVE);
	assert_true(in.created_at > 0);
	assert_true(wait_file(a, "ready", 5000));

	/* A uid of its own, its own group only, no way back to root. */
	pid = leader_of(a);
	uid = proc_uid(pid);
	assert_true(uid_in_range(uid));
	slurp(a, "uid.out", buf, sizeof(buf));
	assert_int_equal(strtol(buf, NULL, 10), uid);
	slurp(a, "groups.out", buf, sizeof(buf));
	snprintf(path, sizeof(path), "%ld", uid);
	assert_string_equal(buf, path);
	proc_status(pid, "NoNewPrivs", buf, sizeof(buf));
	assert_string_equal(buf, "1");
	proc_status(pid, "Uid", buf, sizeof(buf));
	snprintf(path, sizeof(path), "%ld\t%ld\t%ld\t%ld", uid, uid, uid, uid);
	assert_string_equal(buf, path);

	/* Its own session and process group, led by the leader runnerd recorded
	 * (in a PID namespace that leader is its init, pid 1). */
	slurp(a, "stat.out", buf, sizeof(buf));
	{
		char *p = strrchr(buf, ')');
		long pgrp = 0, sid = 0;
		assert_non_null(p);
		assert_int_equal(sscanf(p + 2, "%*c %*d %ld %ld", &pgrp, &sid), 2);
		assert_int_equal(pgrp, sid);
		assert_int_equal(sid, local_isolated(lp) ? 1 : (long)pid);
		assert_int_not_equal(sid, (long)getsid(0));
	}
	{
		char path2[64];
		struct buf sb = BUF_INIT(1024);
		snprintf(path2, sizeof(path2), "/proc/%d/stat", (int)pid);
		assert_int_equal(file_read(path2, 1024, false, &sb, NULL), 0);
		const char *p = strrchr(buf_str(&sb), ')');
		long pgrp = 0, sid = 0;
		assert_int_equal(sscanf(p + 2, "%*c %*d %ld %ld", &pgrp, &sid), 2);
		assert_int_equal(pgrp, (long)pid);
		assert_int_equal(sid, (long)pid);
		buf_release(&sb);
	}

	/* The secret arrived through the environment, quotes and all... */
	slurp(a, "secret.out", buf, sizeof(buf));
	assert_string_equal(buf, TEST_SECRET);
	/* ...and is in no command line and in no file but the one the script wrote. */
	assert_false(proc_cmdline_has("s3cr3t-jit", 10));
	secret_needle = "s3cr3t-jit";
	secret_files = 0;
	assert_int_equal(nftw(base, scan_file, 16, FTW_PHYS), 0);
	assert_int_equal(secret_files, 0);

	/* A minimal, clean environment. */
	slurp(a, "env.out", buf, sizeof(buf));
	{
		char expect[1024];
		snprintf(expect, sizeof(expect),
		         "HOME=%s/%s\nLANG=C.UTF-8\nMY_SECRET=%s\nPATH=/usr/local/bin:/usr/bin:/"
		         "bin\n"
		         "PLAIN=x=y\nPWD=%s/%s\nRUNNERD_HOME=%s/%s\nUSER=%s",
		         work, a, TEST_SECRET, work, a, work, a, a);
		assert_string_equal(buf, expect);
	}

	/* It cannot read runnerd's 0600 files, nor see the other instances. */
	slurp(a, "probe.out", buf, sizeof(buf));
	assert_string_equal(buf, "denied");
	slurp(a, "ls.out", buf, sizeof(buf));
	assert_null(strstr(buf, b));
	assert_null(strstr(buf, ".state"));
	if (local_isolated(lp)) {
		/* Its own PID namespace: the wrapper, the script, a few commands. */
		slurp(a, "nproc.out", buf, sizeof(buf));
		assert_true(strtol(buf, NULL, 10) <= 6);
		/* runnerd's state dir is an empty tmpfs in there: the token does not exist. */
		slurp(a, "hide.out", buf, sizeof(buf));
		assert_string_equal(buf, "hidden");
	}
	if (local_isolated(lp) && !str_has_prefix(base, "/tmp/")) {
		inst_path(path, sizeof(path), a, "tmp/private-marker");
		assert_int_equal(access(path, F_OK), 0);
		assert_int_not_equal(access("/tmp/private-marker", F_OK), 0);
	}

	/* Its directory is its own, 0700; runnerd's record is not in it. */
	inst_path(path, sizeof(path), a, "");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, uid);
	assert_int_equal(st.st_mode & 07777, 0700);
	snprintf(path, sizeof(path), "%s/.state/%s.json", work, a);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	/* get / health / list while it runs. */
	assert_int_equal(provider_get(lpn(a), a, &in2, &e), 0);
	assert_int_equal(in2.state, CLOUD_ACTIVE);
	assert_string_equal(in2.provider_id, in.provider_id);
	assert_int_equal(provider_health(lpn(a), a, &h, &e), 0);
	assert_int_equal(h, HEALTH_HEALTHY);
	assert_int_equal(provider_list(lpm("ci"), &l, &e), 0);
	assert_int_equal(l.n, 2);
	for (size_t i = 0; i < l.n; i++)
		assert_int_equal(l.v[i].state, CLOUD_ACTIVE);

	/* A daemon restart: a new provider sees what the old one started. */
	fresh = open_local("ci", &pcfg, NULL);
	assert_non_null(fresh);
	assert_int_equal(provider_list(fresh, &l, &e), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(provider_get(fresh, a, &in2, &e), 0);
	assert_int_equal(in2.state, CLOUD_ACTIVE);
	assert_string_equal(in2.provider_id, in.provider_id);
	provider_free(fresh);

	/* The script ends: STOPPED, unhealthy. */
	inst_path(path, sizeof(path), a, "stop");
	assert_int_equal(close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)), 0);
	assert_true(wait_state(a, CLOUD_STOPPED, 5000));
	assert_int_equal(provider_health(lpn(a), a, &h, &e), 0);
	assert_int_equal(h, HEALTH_UNHEALTHY);
	assert_int_equal(provider_list(lpm("ci"), &l, &e), 0);
	assert_int_equal(l.n, 2);
	for (size_t i = 0; i < l.n; i++)
		assert_int_equal(l.v[i].state,
		                 strcmp(l.v[i].name, a) == 0 ? CLOUD_STOPPED : CLOUD_ACTIVE);
	instance_list_release(&l);

	/* Delete removes everything; deleting again succeeds; get says ENOENT. */
	delete_ok(a);
	delete_ok(b);
	inst_path(path, sizeof(path), a, "");
	assert_int_not_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/.state/%s.json", work, a);
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_equal(provider_get(lpn(a), a, &in2, &e), -ENOENT);
	assert_int_equal(provider_health(lpn(a), a, &h, &e), 0);
	assert_int_equal(h, HEALTH_UNKNOWN);
	delete_ok(a);
	delete_ok("ci-0123456789ab");
}

static void test_local_tarball(void **state)
{
	const char *a = "ci-0000000000c1";
	char tb[PATH_MAX], path[PATH_MAX], buf[256];
	struct instance_spec s;
	struct instance in;
	struct err e = {0};
	struct stat st;

	snprintf(tb, sizeof(tb), "%s/runner-src.tar.gz", base);
	assert_int_equal(file_write_atomic(tb, "TARBALL", 7, 0600, &e), 0);
	spec_init(&s, a,
	          "[ \"$RUNNERD_RUNNER_TARBALL\" = \"$HOME/runner.tar.gz\" ] && "
	          "cat \"$RUNNERD_RUNNER_TARBALL\" > tb.out\n"
	          "printf '%s|%s' \"$MULTI\" \"$B\" > multi.out\n"
	          "touch ready; sleep 30\n",
	          /* as runner_secret_env quotes: a quoted word may hold a newline */
	          "MULTI='line1\nit'\\''s line2'\nB=2");
	s.runner_tarball = tb;
	assert_int_equal(provider_create(lpn(s.name), &s, &in, &e), 0);
	assert_true(wait_file(a, "ready", 5000));
	slurp(a, "tb.out", buf, sizeof(buf));
	assert_string_equal(buf, "TARBALL");
	slurp(a, "multi.out", buf, sizeof(buf));
	assert_string_equal(buf, "line1\nit's line2|2");
	/* root's and read-only: the job reads it, never changes it */
	inst_path(path, sizeof(path), a, "runner.tar.gz");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, 0444);
	/* A graceful stop: TERM ends the sleep, the script ends well before the grace. */
	int64_t t0 = clock_mono_ms();
	delete_ok(a);
	assert_true(clock_mono_ms() - t0 < GRACE_S * 1000 - 200);
}

static void test_local_create_refused(void **state)
{
	struct instance_spec s;
	struct instance in;
	struct err e = {0};
	struct instance_list l = {0};

	spec_init(&s, "ci-0000000000d1", "true\n", "HOME=/root\n");
	assert_int_equal(provider_create(lpn(s.name), &s, &in, &e), -EINVAL);
	spec_init(&s, "ci-0000000000d1", "true\n", "MY_SECRET='unterminated-S3CRET\n");
	assert_int_equal(provider_create(lpn(s.name), &s, &in, &e), -EINVAL);
	assert_null(strstr(e.msg, "S3CRET"));
	spec_init(&s, "ci-0000000000d1", "true\n", "A=1\nA=2\n");
	assert_int_equal(provider_create(lpn(s.name), &s, &in, &e), -EINVAL);
	spec_init(&s, "ci-0000000000d1", "true\n", "1BAD=x\n");
	assert_int_equal(provider_create(lpn(s.name), &s, &in, &e), -EINVAL);
	spec_init(&s, "ci-0000000000d1", "true\n", "K='a'b\n");
	assert_int_equal(provider_create(lpn(s.name), &s, &in, &e), -EINVAL);
	spec_init(&s, "ci-0000000000d1", "true\n", "K\n");
	assert_int_equal(provider_create(lpn(s.name), &s, &in, &e), -EINVAL);
	spec_init(&s, "../etc", "true\n", NULL);
	assert_int_equal(provider_create(lpn(s.name), &s, &in, &e), -EINVAL);
	spec_init(&s, "ci-east-0000000000d1", "true\n", NULL);
	assert_int_equal(provider_create(lp, &s, &in, &e), -EINVAL);
	spec_init(&s, "ci-0000000000d1", NULL, NULL);
	assert_int_equal(provider_create(lpn(s.name), &s, &in, &e), -EINVAL);
	/* Nothing was left behind. */
	assert_int_equal(provider_list(lpm("ci"), &l, &e), 0);
	assert_int_equal(l.n, 0);
	instance_list_release(&l);
	assert_int_equal(provider_delete(lpn("../etc"), "../etc", &e), -EINVAL);
	assert_int_equal(provider_get(lpn("ci-0000000000d1"), "ci-0000000000d1", &in, &e), -ENOENT);
}

static void test_local_list_ownership(void **state)
{
	struct instance_list l = {0};
	struct err e = {0};
	char path[PATH_MAX], bak[PATH_MAX];

	create_ok("ci-east-0000000000e1", "ci-east", "sleep 30\n", NULL, NULL);
	create_ok("ci-0000000000e2", "ci", "sleep 30\n", NULL, NULL);
	/* Junk: dirs without records, records of other names, a corrupt record. */
	snprintf(path, sizeof(path), "%s/junk", work);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/ci-aaaaaaaaaaaa", work);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/.state/junk.json", work);
	assert_int_equal(file_write_atomic(path, "{}", 2, 0600, &e), 0);
	snprintf(path, sizeof(path), "%s/.state/ci-cccccccccccc.txt", work);
	assert_int_equal(file_write_atomic(path, "{}", 2, 0600, &e), 0);
	snprintf(path, sizeof(path), "%s/.state/ci-bbbbbbbbbbbb.json", work);
	assert_int_equal(file_write_atomic(path, "not json", 8, 0600, &e), 0);

	assert_int_equal(provider_list(lpm("ci"), &l, &e), 0);
	assert_int_equal(l.n, 2);
	for (size_t i = 0; i < l.n; i++) {
		if (strcmp(l.v[i].name, "ci-0000000000e2") == 0)
			assert_int_equal(l.v[i].state, CLOUD_ACTIVE);
		else if (strcmp(l.v[i].name, "ci-bbbbbbbbbbbb") == 0)
			assert_int_equal(l.v[i].state, CLOUD_ERROR); /* so the manager removes it */
		else
			fail_msg("unexpected %s", l.v[i].name);
	}
	assert_int_equal(provider_list(lpm("ci-east"), &l, &e), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].name, "ci-east-0000000000e1");
	assert_int_equal(provider_list(lpm("c"), &l, &e), 0);
	assert_int_equal(l.n, 0);

	/* A listing that cannot be completed is an error, and ret is untouched. */
	snprintf(path, sizeof(path), "%s/.state", work);
	snprintf(bak, sizeof(bak), "%s/.state-bak", work);
	assert_int_equal(rename(path, bak), 0);
	assert_int_equal(symlink(bak, path), 0);
	{
		int r = provider_list(lpm("ci"), &l, &e);
		assert_int_equal(unlink(path), 0);
		assert_int_equal(rename(bak, path), 0);
		assert_true(r == -ELOOP || r == -ENOTDIR);
		assert_int_equal(l.n, 0); /* the previous listing, untouched */
	}
	instance_list_release(&l);

	delete_ok("ci-east-0000000000e1");
	delete_ok("ci-0000000000e2");
	delete_ok("ci-bbbbbbbbbbbb");
	delete_ok("ci-aaaaaaaaaaaa"); /* a dir without a record goes too */
	assert_int_equal(provider_list(lpm("ci"), &l, &e), 0);
	assert_int_equal(l.n, 0);
	instance_list_release(&l);
	snprintf(path, sizeof(path), "%s/ci-aaaaaaaaaaaa", work);
	assert_int_not_equal(access(path, F_OK), 0);
}

static void test_local_delete_stubborn(void **state)
{
	const char *a = "ci-0000000000f1";
	char path[PATH_MAX];
	int64_t t0, dt;
	pid_t pid;

	/* Ignores TERM and (where a namespace still holds it) escapes into its own session. */
	create_ok(a, "ci",
	          local_isolated(lp) ? "trap '' TERM\n"
	                               "setsid sleep 1000.125 &\n"
	                               "touch ready\n"
	                               "while :; do sleep 0.1; done\n"
	                             : "trap '' TERM\n"
	                               "sleep 1000.125 &\n"
	                               "touch ready\n"
	                               "while :; do sleep 0.1; done\n",
	          NULL, NULL);
	assert_true(wait_file(a, "ready", 5000));
	assert_true(wait_cmdline("1000.125", 8));
	pid = leader_of(a);
	t0 = clock_mono_ms();
	delete_ok(a);
	dt = clock_mono_ms() - t0;
	assert_true(dt >= GRACE_S * 1000);
	assert_true(dt < GRACE_S * 1000 + 4000);
	assert_false(proc_cmdline_has("1000.125", 8));
	{
		char sp[64], data[512];
		snprintf(sp, sizeof(sp), "/proc/%d/stat", (int)pid);
		struct buf b = BUF_INIT(sizeof(data));
		if (file_read(sp, sizeof(data), false, &b, NULL) == 0) {
			const char *p = strrchr(buf_str(&b), ')');
			assert_non_null(p);
			assert_true(p[2] == 'Z' || p[2] == 'X'); /* an unreaped orphan at most */
		}
		buf_release(&b);
	}
	inst_path(path, sizeof(path), a, "");
	assert_int_not_equal(access(path, F_OK), 0);
}

/* Instances outlive the process that created them (a daemon restart). */
static void test_local_survives_creator(void **state)
{
	const char *a = "ci-0000000000a9";
	struct instance in;
	struct err e = {0};
	int status = 0;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct provider *p = NULL;
		struct instance_spec s;
		p = open_local("ci", &pcfg, NULL);
		if (!p)
			_exit(2);
		spec_init(&s, a, "touch ready; sleep 30\n", NULL);
		_exit(provider_create(p, &s, &in, NULL) == 0 ? 0 : 3);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(wait_file(a, "ready", 5000));
	assert_int_equal(provider_get(lpn(a), a, &in, &e), 0);
	assert_int_equal(in.state, CLOUD_ACTIVE);
	delete_ok(a);
	assert_int_equal(provider_get(lpn(a), a, &in, &e), -ENOENT);
}

struct cc_arg {
	char name[INSTANCE_NAME_MAX];
	int r;
};

static void *cc_create(void *p)
{
	struct cc_arg *c = p;
	struct instance_spec s;
	struct instance in;
	spec_init(&s, c->name, "sleep 30\n", "K=v\n");
	c->r = provider_create(lpn(s.name), &s, &in, NULL);
	return NULL;
}

static void *cc_delete(void *p)
{
	struct cc_arg *c = p;
	c->r = provider_delete(lpn(c->name), c->name, NULL);
	return NULL;
}

static void test_local_concurrent(void **state)
{
	pthread_t t[6];
	struct cc_arg a[6];
	struct instance_list l = {0};

	for (int i = 0; i < 6; i++) {
		snprintf(a[i].name, sizeof(a[i].name), "cc-%012x", i + 1);
		assert_int_equal(pthread_create(&t[i], NULL, cc_create, &a[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].r, 0);
	}
	assert_int_equal(provider_list(lpm("cc"), &l, NULL), 0);
	assert_int_equal(l.n, 6);
	for (size_t i = 0; i < l.n; i++)
		assert_int_equal(l.v[i].state, CLOUD_ACTIVE);
	for (int i = 0; i < 6; i++)
		assert_int_equal(pthread_create(&t[i], NULL, cc_delete, &a[i]), 0);
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].r, 0);
	}
	assert_int_equal(provider_list(lpm("cc"), &l, NULL), 0);
	assert_int_equal(l.n, 0);
	instance_list_release(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_local_setup),
	        cmocka_unit_test(test_local_lifecycle),
	        cmocka_unit_test(test_local_tarball),
	        cmocka_unit_test(test_local_create_refused),
	        cmocka_unit_test(test_local_list_ownership),
	        cmocka_unit_test(test_local_delete_stubborn),
	        cmocka_unit_test(test_local_survives_creator),
	        cmocka_unit_test(test_local_concurrent),
	};
	if (local_fixture_lock() != 0)
		return 1;
	return cmocka_run_group_tests(tests, local_fixture_setup, local_fixture_teardown);
}
