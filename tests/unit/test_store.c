/*
 * Unit tests of src/store: round trips of every instance field, upserts,
 * settings, the action log, file modes, durability across a reopen and a
 * crash, schema versions, the daemon lock and concurrent use. Every test
 * works in its own mkdtemp directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/clock.h"
#include "util/fileutil.h"
#include "util/strutil.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "store/store_internal.h" /* the statements' SQL, for their query plans */

#include <pthread.h>
#include <sqlite3.h>
#include <sys/wait.h>

struct fixture {
	char dir[PATH_MAX];   /* mkdtemp */
	char state[PATH_MAX]; /* dir/state, not created by the test */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/runnerd-test-store-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	rm_rf(f->dir, NULL);
	free(f);
	return 0;
}

static struct store *open_ok(const struct fixture *f)
{
	struct store *s = NULL;
	struct err e = {0};
	int r = store_open(f->state, &s, &e);
	if (r < 0)
		fail_msg("store_open: %d %s", r, e.msg);
	assert_non_null(s);
	return s;
}

static mode_t mode_of(const char *dir, const char *name)
{
	char p[PATH_MAX + 64];
	struct stat st;
	snprintf(p, sizeof(p), "%s%s%s", dir, name ? "/" : "", name ? name : "");
	if (lstat(p, &st) < 0)
		fail_msg("stat %s: %s", p, strerror(errno));
	return st.st_mode & 07777;
}

static void fill(struct store_instance *in, const char *name, int salt)
{
	memset(in, 0, sizeof(*in));
	snprintf(in->name, sizeof(in->name), "%s", name);
	snprintf(in->flavor, sizeof(in->flavor), "flavor-%d", salt);
	snprintf(in->provider, sizeof(in->provider), "lxd");
	snprintf(in->provider_id, sizeof(in->provider_id), "id-%d-'quoted'", salt);
	in->phase = (enum store_phase)(salt % 3);
	in->created_at = 1700000000 + salt;
	in->cloud_state = (enum cloud_state)(salt % 6);
	in->runner_id = 5000000000LL + salt; /* beyond 2^32, like GitHub ids */
	in->seen_on_github = salt % 2;
	in->github_state = (enum github_state)(salt % 5);
	in->health = (enum health)(salt % 3);
	in->last_seen = 1700000100 + salt;
	in->busy_since = salt % 2 ? 1700000200 + salt : 0;
}

static void assert_instance_equal(const struct store_instance *a, const struct store_instance *b)
{
	assert_string_equal(a->name, b->name);
	assert_string_equal(a->flavor, b->flavor);
	assert_string_equal(a->provider, b->provider);
	assert_string_equal(a->provider_id, b->provider_id);
	assert_int_equal(a->phase, b->phase);
	assert_int_equal(a->created_at, b->created_at);
	assert_int_equal(a->cloud_state, b->cloud_state);
	assert_int_equal(a->runner_id, b->runner_id);
	assert_int_equal(a->seen_on_github, b->seen_on_github);
	assert_int_equal(a->github_state, b->github_state);
	assert_int_equal(a->health, b->health);
	assert_int_equal(a->last_seen, b->last_seen);
	assert_int_equal(a->busy_since, b->busy_since);
}

static void test_names(void **state)
{
	assert_string_equal(store_phase_name(PHASE_CREATING), "creating");
	assert_string_equal(store_phase_name(PHASE_CREATED), "created");
	assert_string_equal(store_phase_name(PHASE_DELETING), "deleting");
	assert_string_equal(store_phase_name((enum store_phase)42), "invalid");
	assert_string_equal(github_state_name(GH_ABSENT), "absent");
	assert_string_equal(github_state_name(GH_IDLE), "idle");
	assert_string_equal(github_state_name(GH_BUSY), "busy");
	assert_string_equal(github_state_name(GH_OFFLINE), "offline");
	assert_string_equal(github_state_name(GH_UNKNOWN), "unknown");
	assert_string_equal(github_state_name((enum github_state) - 1), "invalid");
}

static void test_modes(void **state)
{
	struct fixture *f = *state;
	struct store_instance in;
	struct store *s;
	mode_t old = umask(0); /* the store must not depend on the umask */

	s = open_ok(f);
	umask(old);
	fill(&in, "ci-000000000001", 1);
	assert_int_equal(store_instance_put(s, &in, NULL), 0);
	assert_int_equal(mode_of(f->state, NULL), 0700);
	assert_int_equal(mode_of(f->state, "state.db"), 0600);
	assert_int_equal(mode_of(f->state, "state.db-wal"), 0600);
	assert_int_equal(mode_of(f->state, "state.db-shm"), 0600);
	assert_true(store_schema_version(s) >= 1);
	store_close(s);
	store_close(NULL);
}

static void test_modes_tightened(void **state)
{
	struct fixture *f = *state;
	char p[PATH_MAX + 16];
	struct store *s;
	int fd;

	/* A file left world-readable (an old install, a copy) is fixed. */
	assert_int_equal(mkdir(f->state, 0700), 0);
	snprintf(p, sizeof(p), "%s/state.db", f->state);
	fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0644), 0);
	close(fd);
	s = open_ok(f);
	assert_int_equal(mode_of(f->state, "state.db"), 0600);
	store_close(s);

	/* A symlink in place of the database is refused, not followed. */
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	{
		struct err e = {0};
		struct store *s2 = NULL;
		assert_true(store_open(f->state, &s2, &e) < 0);
		assert_null(s2);
	}
}

static void test_instance_round_trip(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f);
	struct store_instance in, out;
	struct err e = {0};

	/* Every value of every enum, on both sides of the other fields. */
	for (int salt = 0; salt < 30; salt++) {
		char name[64];
		snprintf(name, sizeof(name), "ci-%012x", salt);
		fill(&in, name, salt);
		assert_int_equal(store_instance_put(s, &in, &e), 0);
		memset(&out, 0x5a, sizeof(out));
		assert_int_equal(store_instance_get(s, name, &out, &e), 0);
		assert_instance_equal(&in, &out);
	}

	/* Longest values that fit. */
	memset(&in, 0, sizeof(in));
	memset(in.name, 'n', sizeof(in.name) - 1);
	memset(in.flavor, 'f', sizeof(in.flavor) - 1);
	memset(in.provider, 'p', sizeof(in.provider) - 1);
	memset(in.provider_id, 'i', sizeof(in.provider_id) - 1);
	in.created_at = INT64_MAX;
	in.runner_id = INT64_MAX;
	in.last_seen = -1;
	assert_int_equal(store_instance_put(s, &in, &e), 0);
	assert_int_equal(store_instance_get(s, in.name, &out, &e), 0);
	assert_instance_equal(&in, &out);

	/* Data that looks like SQL stays data. */
	fill(&in, "x'); DROP TABLE instances; --", 7);
	assert_int_equal(store_instance_put(s, &in, &e), 0);
	assert_int_equal(store_instance_get(s, "x'); DROP TABLE instances; --", &out, &e), 0);
	assert_instance_equal(&in, &out);
	store_close(s);
}

static void test_instance_upsert_list_delete(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f);
	struct store_instance in, out;
	struct store_instance_list l = {NULL, 0};
	struct err e = {0};

	fill(&in, "ci-00000000000b", 1);
	assert_int_equal(store_instance_put(s, &in, &e), 0);
	fill(&in, "ci-00000000000a", 2);
	assert_int_equal(store_instance_put(s, &in, &e), 0);

	/* Upsert: same name, every field changed. */
	fill(&in, "ci-00000000000b", 4);
	in.created_at = 1; /* now the oldest: lists first */
	assert_int_equal(store_instance_put(s, &in, &e), 0);
	assert_int_equal(store_instance_get(s, "ci-00000000000b", &out, &e), 0);
	assert_instance_equal(&in, &out);

	assert_int_equal(store_instance_list(s, &l, &e), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].name, "ci-00000000000b");
	assert_string_equal(l.v[1].name, "ci-00000000000a");
	assert_instance_equal(&l.v[0], &in);

	assert_int_equal(store_instance_delete(s, "ci-00000000000b", &e), 0);
	assert_int_equal(store_instance_delete(s, "ci-00000000000b", &e), 0); /* missing is fine */
	assert_int_equal(store_instance_list(s, &l, &e), 0);                  /* reuses l */
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].name, "ci-00000000000a");
	store_instance_list_release(&l);
	store_instance_list_release(&l);
	assert_null(l.v);

	assert_int_equal(store_instance_delete(s, "ci-00000000000a", &e), 0);
	assert_int_equal(store_instance_list(s, &l, &e), 0);
	assert_int_equal(l.n, 0);
	store_instance_list_release(&l);
	store_close(s);
}

static void test_instance_missing_and_invalid(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f);
	struct store_instance in, out;
	struct err e = {0};

	fill(&out, "untouched", 3);
	assert_int_equal(store_instance_get(s, "ci-000000000000", &out, &e), -ENOENT);
	assert_int_equal(e.code, -ENOENT);
	assert_string_equal(out.name, "untouched");

	fill(&in, "", 1);
	assert_int_equal(store_instance_put(s, &in, &e), -EINVAL);
	fill(&in, "ci-000000000001", 1);
	in.phase = (enum store_phase)3;
	assert_int_equal(store_instance_put(s, &in, &e), -EINVAL);
	fill(&in, "ci-000000000001", 1);
	in.cloud_state = (enum cloud_state)6;
	assert_int_equal(store_instance_put(s, &in, &e), -EINVAL);
	fill(&in, "ci-000000000001", 1);
	in.github_state = (enum github_state) - 1;
	assert_int_equal(store_instance_put(s, &in, &e), -EINVAL);
	fill(&in, "ci-000000000001", 1);
	in.health = (enum health)9;
	assert_int_equal(store_instance_put(s, &in, &e), -EINVAL);
	fill(&in, "ci-000000000001", 1);
	memset(in.flavor, 'x', sizeof(in.flavor)); /* no terminator */
	assert_int_equal(store_instance_put(s, &in, &e), -EINVAL);
	assert_int_equal(store_instance_get(s, "ci-000000000001", &out, &e), -ENOENT);
	store_close(s);
}

static void test_kv(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f);
	struct err e = {0};
	char *v = (char *)"untouched";

	assert_int_equal(store_kv_get(s, "drain", &v, &e), -ENOENT);
	assert_string_equal(v, "untouched");
	assert_int_equal(store_kv_set(s, "drain", "1", &e), 0);
	assert_int_equal(store_kv_get(s, "drain", &v, &e), 0);
	assert_string_equal(v, "1");
	free(v);
	assert_int_equal(store_kv_set(s, "drain", "0 'x' \"y\"", &e), 0);
	assert_int_equal(store_kv_get(s, "drain", &v, &e), 0);
	assert_string_equal(v, "0 'x' \"y\"");
	free(v);
	assert_int_equal(store_kv_set(s, "empty", "", &e), 0);
	assert_int_equal(store_kv_get(s, "empty", &v, &e), 0);
	assert_string_equal(v, "");
	free(v);
	assert_int_equal(store_kv_delete(s, "drain", &e), 0);
	assert_int_equal(store_kv_delete(s, "drain", &e), 0);
	assert_int_equal(store_kv_get(s, "drain", &v, &e), -ENOENT);
	assert_int_equal(store_kv_set(s, "", "1", &e), -EINVAL);
	assert_int_equal(store_kv_set(s, "k", NULL, &e), -EINVAL);
	store_close(s);
}

/* The amqp queue's spool: oldest first, one row a job, gone when deleted. */
static void test_spool(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f);
	struct store_spool_list l = {0};
	struct store_spooled m = {.job_id = INT64_C(9007199254740993), .spooled_at = 20};
	struct err e = {0};
	int64_t n = -1;

	str_copy(m.queue, "runnerd.small", sizeof(m.queue));
	str_copy(m.body, "{\"job_id\":9007199254740993}", sizeof(m.body));
	assert_int_equal(store_spool_add(s, &m, &e), 0);
	assert_int_equal(store_spool_add(s, &m, &e), -EEXIST);
	m.job_id = 7;
	m.spooled_at = 10;
	assert_int_equal(store_spool_add(s, &m, &e), 0);
	assert_int_equal(store_spool_count(s, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_spool_list(s, 10, &l, &e), 0);
	assert_int_equal(l.n, 2);
	assert_true(l.v[0].job_id == 7 && l.v[1].job_id == INT64_C(9007199254740993));
	assert_string_equal(l.v[1].queue, "runnerd.small");
	assert_string_equal(l.v[1].body, "{\"job_id\":9007199254740993}");
	assert_int_equal(store_spool_list(s, 1, &l, &e), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(store_spool_delete(s, 7, &e), 0);
	assert_int_equal(store_spool_delete(s, 7, &e), 0);
	assert_int_equal(store_spool_count(s, &n, &e), 0);
	assert_int_equal(n, 1);
	m.body[0] = '\0';
	assert_int_equal(store_spool_add(s, &m, &e), -EINVAL);
	store_spool_list_release(&l);
	store_close(s);
}

static void test_action_log(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f);
	struct err e = {0};
	int64_t n = -1;

	assert_int_equal(store_count_actions(s, NULL, &n, &e), 0);
	assert_int_equal(n, 0);
	assert_int_equal(
	        store_log_action(s, 100, "create", "ci-000000000001", "pool below min", "ok", &e),
	        0);
	assert_int_equal(store_log_action(s, 200, "create", "ci-000000000002", NULL, NULL, &e), 0);
	assert_int_equal(store_log_action(s, 300, "delete", "ci-000000000001", "finished",
	                                  "provider: 500", &e),
	                 0);
	assert_int_equal(store_log_action(s, 300, "", "x", "y", "z", &e), -EINVAL);
	assert_int_equal(store_count_actions(s, "create", &n, &e), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_count_actions(s, "delete", &n, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_count_actions(s, "flush", &n, &e), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_count_actions(s, NULL, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_int_equal(store_prune_actions(s, 250, &e), 0);
	assert_int_equal(store_count_actions(s, NULL, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_count_actions(s, "delete", &n, &e), 0);
	assert_int_equal(n, 1);
	store_close(s);
}

static void test_reopen_and_migrations(void **state)
{
	struct fixture *f = *state;
	struct store_instance in, out;
	struct err e = {0};
	struct store *s;
	char *v;
	int64_t n;
	int version;

	s = open_ok(f);
	version = store_schema_version(s);
	fill(&in, "ci-0000000000aa", 5);
	assert_int_equal(store_instance_put(s, &in, &e), 0);
	assert_int_equal(store_kv_set(s, "drain", "1", &e), 0);
	assert_int_equal(store_log_action(s, 1, "create", in.name, "", "ok", &e), 0);
	store_close(s);

	/* Reopening runs no migration twice and keeps everything. */
	for (int i = 0; i < 3; i++) {
		s = open_ok(f);
		assert_int_equal(store_schema_version(s), version);
		assert_int_equal(store_instance_get(s, "ci-0000000000aa", &out, &e), 0);
		assert_instance_equal(&in, &out);
		assert_int_equal(store_kv_get(s, "drain", &v, &e), 0);
		assert_string_equal(v, "1");
		free(v);
		assert_int_equal(store_count_actions(s, NULL, &n, &e), 0);
		assert_int_equal(n, 1);
		store_close(s);
	}
}

static int64_t count_rows(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/*
 * The deliveries of a file at schema 4 (the id its primary key) survive
 * migration 5 (a log without an index on the id) and are seen at once; what
 * is recorded, forgotten and pruned after is what a reopened store knows.
 */
static void test_deliveries_migrated_and_reloaded(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX + 16], sql[64];
	struct err e = {0};
	struct store *s;
	sqlite3 *db = NULL;
	bool seen = false;

	(void)mkdir(f->state, 0700);
	snprintf(path, sizeof(path), "%s/state.db", f->state);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL),
	                 SQLITE_OK);
	for (int v = 0; v < 4; v++)
		assert_int_equal(sqlite3_exec(db, store_migrations[v], NULL, NULL, NULL),
		                 SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "INSERT INTO deliveries VALUES ('a', 1000), ('b', 2000);"
	                              "PRAGMA user_version = 4",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(chmod(path, 0600), 0);

	s = open_ok(f);
	assert_true(store_schema_version(s) >= 5);
	assert_int_equal(store_delivery_seen(s, "a", &seen, &e), 0);
	assert_true(seen);
	assert_int_equal(store_delivery_add(s, "b", 3000, &e), -EEXIST);
	assert_int_equal(store_delivery_add(s, "c", 3000, &e), 0);
	store_close(s);
	/* the id has no index in the file: only the one by time */
	assert_int_equal(count_rows(path, "SELECT count(*) FROM pragma_index_list('deliveries')"),
	                 1);
	assert_int_equal(count_rows(path, "SELECT count(*) FROM deliveries"), 3);

	s = open_ok(f);
	assert_int_equal(store_delivery_add(s, "c", 4000, &e), -EEXIST);
	assert_int_equal(store_delivery_prune(s, 1500, &e), 0);
	/* at once, without a reopen: the pruned id is no longer seen, the later ones are */
	assert_int_equal(store_delivery_seen(s, "a", &seen, &e), 0);
	assert_false(seen);
	assert_int_equal(store_delivery_seen(s, "c", &seen, &e), 0);
	assert_true(seen);
	assert_int_equal(store_delivery_forget(s, "b", &e), 0);
	assert_int_equal(store_delivery_forget(s, "never", &e), 0);
	store_close(s);
	assert_int_equal(count_rows(path, "SELECT count(*) FROM deliveries"), 1);

	s = open_ok(f);
	for (int i = 0; i < 3; i++) {
		snprintf(sql, sizeof(sql), "%c", "abc"[i]);
		assert_int_equal(store_delivery_seen(s, sql, &seen, &e), 0);
		assert_int_equal(seen, i == 2);
	}
	assert_int_equal(store_delivery_add(s, "a", 5000, &e), 0);
	store_close(s);
}

static void test_crash_durability(void **state)
{
	struct fixture *f = *state;
	struct store_instance in, out;
	struct err e = {0};
	struct store *s;
	pid_t pid;
	int status;

	s = open_ok(f);
	store_close(s);
	/* A child writes and dies without closing anything (no checkpoint, no
	 * cleanup): what its calls returned for must be there. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *c = NULL;
		struct store_instance ci;
		if (store_open(f->state, &c, NULL) < 0)
			_exit(2);
		fill(&ci, "ci-0000000000cc", 9);
		if (store_instance_put(c, &ci, NULL) < 0 || store_kv_set(c, "k", "v", NULL) < 0)
			_exit(3);
		kill(getpid(), SIGKILL);
		_exit(4);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	s = open_ok(f);
	fill(&in, "ci-0000000000cc", 9);
	assert_int_equal(store_instance_get(s, "ci-0000000000cc", &out, &e), 0);
	assert_instance_equal(&in, &out);
	store_close(s);
}

static void set_user_version(const char *path, int v)
{
	char sql[64];
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_future_version_refused(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f);
	char path[PATH_MAX + 16];
	struct err e = {0};
	struct store_instance in;
	int version = store_schema_version(s);

	fill(&in, "ci-0000000000dd", 1);
	assert_int_equal(store_instance_put(s, &in, &e), 0);
	store_close(s);
	snprintf(path, sizeof(path), "%s/state.db", f->state);
	set_user_version(path, version + 1);

	s = (struct store *)0x1;
	assert_int_equal(store_open(f->state, &s, &e), -ENOTSUP);
	assert_ptr_equal(s, (struct store *)0x1); /* untouched */
	assert_non_null(strstr(e.msg, "newer"));

	/* Refused means untouched: back at our version, the data is there. */
	set_user_version(path, version);
	s = open_ok(f);
	assert_int_equal(store_instance_get(s, "ci-0000000000dd", &in, &e), 0);
	store_close(s);
}

/*
 * The statements a pass runs over the waiting jobs read an index in order
 * and stop at their limit: no sort of every waiting job (a temp B-tree),
 * whose cost grows with the backlog.
 */
static void test_waiting_jobs_read_by_index(void **state)
{
	struct fixture *f = *state;
	static const int stmts[] = {ST_JOB_LIST, ST_JOB_COUNT};
	char path[PATH_MAX + 16], sql[1024];
	sqlite3 *db;

	store_close(open_ok(f));
	(void)mkdir(f->state, 0700);
	snprintf(path, sizeof(path), "%s/state.db", f->state);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	for (size_t i = 0; i < ARRAY_SIZE(stmts); i++) {
		sqlite3_stmt *st;
		bool by_index = false;

		snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s", store_stmt_sql[stmts[i]]);
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *detail = (const char *)sqlite3_column_text(st, 3);

			print_message("%s: %s\n", store_stmt_sql[stmts[i]], detail);
			assert_null(strstr(detail, "TEMP B-TREE"));
			assert_null(strstr(detail, "SCAN"));
			by_index |= strstr(detail, "USING") && strstr(detail, "INDEX");
		}
		assert_true(by_index);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
}

static void test_not_a_database(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX + 16];
	struct store *s = NULL;
	struct err e = {0};
	static const char junk[] =
	        "this is not an SQLite file, not at all, no header here......"
	        "................................................................";

	assert_int_equal(mkdir(f->state, 0700), 0);
	snprintf(path, sizeof(path), "%s/state.db", f->state);
	assert_int_equal(file_write_atomic(path, junk, sizeof(junk) - 1, 0600, NULL), 0);
	assert_int_equal(store_open(f->state, &s, &e), -EBADMSG);
	assert_null(s);
	assert_true(e.msg[0] != '\0');
}

static int child_lock(const char *dir)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		int fd = -1;
		int r = store_lock(dir, &fd, NULL);
		_exit(r == -EWOULDBLOCK ? 10 : r == 0 ? 0 : 11);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void test_lock(void **state)
{
	struct fixture *f = *state;
	struct err e = {0};
	int fd = -1, fd2 = -7;

	assert_int_equal(store_lock(f->state, &fd, &e), 0);
	assert_true(fd >= 0);
	assert_int_equal(mode_of(f->state, NULL), 0700);
	assert_int_equal(mode_of(f->state, "runnerd.lock"), 0600);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);

	/* flock is per open file description: a second open in this very
	 * process conflicts, as another daemon would. */
	assert_int_equal(store_lock(f->state, &fd2, &e), -EWOULDBLOCK);
	assert_int_equal(fd2, -7);
	assert_non_null(strstr(e.msg, "locked"));
	assert_int_equal(child_lock(f->state), 10);

	store_unlock(fd);
	assert_int_equal(child_lock(f->state), 0); /* the child's lock died with it */
	assert_int_equal(store_lock(f->state, &fd2, &e), 0);
	assert_int_equal(child_lock(f->state), 10);
	store_unlock(fd2);
	store_unlock(-1);
}

struct worker_arg {
	struct store *s;
	int id;
	int failures;
};

#define WORKERS    4
#define PER_WORKER 50

static void *worker(void *p)
{
	struct worker_arg *a = p;
	for (int i = 0; i < PER_WORKER; i++) {
		struct store_instance in, out;
		char name[64], key[32];
		snprintf(name, sizeof(name), "ci-%06x%06x", a->id, i);
		fill(&in, name, i);
		if (store_instance_put(a->s, &in, NULL) < 0 ||
		    store_instance_get(a->s, name, &out, NULL) < 0 ||
		    out.created_at != in.created_at)
			a->failures++;
		snprintf(key, sizeof(key), "w%d", a->id);
		if (store_kv_set(a->s, key, name, NULL) < 0 ||
		    store_log_action(a->s, i, "create", name, "", "ok", NULL) < 0)
			a->failures++;
	}
	return NULL;
}

/*
 * docs/deadlines.md, row "SQLite": another process (here a
 * second connection) holds the database's write lock and never lets go: a
 * write waits at most the busy timeout (5 s), then fails with -EBUSY and
 * says so; once the lock is gone, writes go through again.
 */
static void test_busy_timeout(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f);
	struct store_instance in;
	struct err e = {0};
	char path[PATH_MAX + 16];
	sqlite3 *db = NULL;
	int64_t t0, took;

	snprintf(path, sizeof(path), "%s/state.db", f->state);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	fill(&in, "ci-0123456789ab", 1);
	t0 = clock_mono_ms();
	assert_int_equal(store_instance_put(s, &in, &e), -EBUSY);
	took = clock_mono_ms() - t0;
	assert_true(took >= 4500 && took < 8000);
	assert_non_null(strstr(e.msg, "locked"));
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_instance_put(s, &in, &e), 0);
	store_close(s);
}

static void test_threads(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f);
	struct worker_arg args[WORKERS];
	pthread_t t[WORKERS];
	struct store_instance_list l = {NULL, 0};
	int64_t n = 0;

	for (int i = 0; i < WORKERS; i++) {
		args[i] = (struct worker_arg){s, i, 0};
		assert_int_equal(pthread_create(&t[i], NULL, worker, &args[i]), 0);
	}
	for (int i = 0; i < WORKERS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(args[i].failures, 0);
	}
	assert_int_equal(store_instance_list(s, &l, NULL), 0);
	assert_int_equal(l.n, WORKERS * PER_WORKER);
	store_instance_list_release(&l);
	assert_int_equal(store_count_actions(s, "create", &n, NULL), 0);
	assert_int_equal(n, WORKERS * PER_WORKER);
	store_close(s);
}

static struct store_intake intake_row(const char *id, enum store_intake_op op, int64_t job_id)
{
	struct store_intake in;

	memset(&in, 0, sizeof(in));
	snprintf(in.delivery_id, sizeof(in.delivery_id), "%s", id);
	in.received_at = 1000;
	in.op = op;
	in.job.job_id = job_id;
	if (op == STORE_INTAKE_JOB_ADD) {
		snprintf(in.job.repo, sizeof(in.job.repo), "octo/hello");
		snprintf(in.job.labels, sizeof(in.job.labels), "[\"small\"]");
		snprintf(in.job.flavor, sizeof(in.job.flavor), "small");
		snprintf(in.job.delivery_id, sizeof(in.job.delivery_id), "%s", id);
		in.job.received_at = 1000;
	} else if (op == STORE_INTAKE_JOB_DONE) {
		in.job.done_at = 2000;
		snprintf(in.job.done_why, sizeof(in.job.done_why), "completed");
	}
	return in;
}

/*
 * store_intake_write: many deliveries and their jobs in one transaction;
 * one seen before (or twice in the batch) changes nothing; a job known
 * already is not added again; a bad one fails the batch before anything
 * is written; what it wrote is there after a reopen.
 */
static void test_intake_write(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f);
	struct store_intake v[6], bad;
	struct store_intake *pv[6];
	struct store_job j;
	struct err e = {0};
	bool seen = false;
	int64_t n = -1;

	assert_int_equal(store_delivery_add(s, "old", 1, &e), 0);
	v[0] = intake_row("d1", STORE_INTAKE_JOB_ADD, 11);
	v[1] = intake_row("old", STORE_INTAKE_JOB_ADD, 12); /* seen before: no job 12 */
	v[2] = intake_row("d3", STORE_INTAKE_JOB_ADD, 11);  /* job 11 known (d1, same batch) */
	v[3] = intake_row("d4", STORE_INTAKE_RECORD, 0);
	v[4] = intake_row("d4", STORE_INTAKE_JOB_DONE,
	                  13); /* d4 twice: the second changes nothing */
	v[5] = intake_row("d6", STORE_INTAKE_JOB_DONE, 14); /* unknown job: a tombstone */
	for (int i = 0; i < 6; i++)
		pv[i] = &v[i];
	assert_int_equal(store_intake_write(s, pv, 6, &e), 0);
	assert_false(v[0].seen);
	assert_false(v[0].job_known);
	assert_true(v[1].seen);
	assert_false(v[2].seen);
	assert_true(v[2].job_known);
	assert_false(v[3].seen);
	assert_true(v[4].seen);
	assert_false(v[5].seen);
	store_close(s);

	s = open_ok(f);
	assert_int_equal(store_job_get(s, 11, &j, &e), 0);
	assert_string_equal(j.delivery_id, "d1");
	assert_int_equal(j.done_at, 0);
	assert_int_equal(store_job_get(s, 12, &j, NULL), -ENOENT);
	assert_int_equal(store_job_get(s, 13, &j, NULL), -ENOENT);
	assert_int_equal(store_job_get(s, 14, &j, &e), 0);
	assert_string_equal(j.done_why, "completed");
	assert_int_equal(store_job_count_waiting(s, "small", 5000, &n, &e), 0);
	assert_int_equal(n, 1);
	for (int i = 0; i < 4; i++) {
		static const char *const ids[] = {"d1", "d3", "d4", "d6"};
		assert_int_equal(store_delivery_seen(s, ids[i], &seen, &e), 0);
		assert_true(seen);
	}

	/* a bad one (a job without a flavor) fails the whole batch, before anything is written */
	v[0] = intake_row("d7", STORE_INTAKE_RECORD, 0);
	bad = intake_row("d8", STORE_INTAKE_JOB_ADD, 15);
	bad.job.flavor[0] = '\0';
	pv[0] = &v[0];
	pv[1] = &bad;
	assert_int_equal(store_intake_write(s, pv, 2, &e), -EINVAL);
	assert_int_equal(store_delivery_seen(s, "d7", &seen, &e), 0);
	assert_false(seen);
	bad = intake_row("", STORE_INTAKE_RECORD, 0);
	pv[0] = &bad;
	assert_false(store_intake_valid(&bad));
	assert_int_equal(store_intake_write(s, pv, 1, &e), -EINVAL);
	assert_int_equal(store_intake_write(s, pv, 0, &e), 0);

	/* marked: the setting goes with the batch, and not without it */
	{
		char *mark = NULL;

		assert_int_equal(store_intake_write_marked(s, pv, 1, "at", "1 99", &e), -EINVAL);
		assert_int_equal(store_kv_get(s, "at", &mark, NULL), -ENOENT);
		v[0] = intake_row("d9", STORE_INTAKE_JOB_ADD, 16);
		assert_true(store_intake_valid(&v[0]));
		pv[0] = &v[0];
		assert_int_equal(store_intake_write_marked(s, pv, 1, "at", "1 100", &e), 0);
		assert_int_equal(store_kv_get(s, "at", &mark, &e), 0);
		assert_string_equal(mark, "1 100");
		free(mark);
		assert_int_equal(store_intake_write_marked(s, pv, 0, "at", "1 120", &e), 0);
		assert_int_equal(store_kv_get(s, "at", &mark, &e), 0);
		assert_string_equal(mark, "1 120");
		free(mark);
		assert_int_equal(store_job_get(s, 16, &j, &e), 0);
	}
	store_close(s);
}

struct intake_arg {
	struct store *s;
	int r;
};

static void *intake_writer(void *arg)
{
	struct intake_arg *a = arg;
	struct store_intake in = intake_row("late", STORE_INTAKE_RECORD, 0);
	struct store_intake *pv[1] = {&in};

	a->r = store_intake_write(a->s, pv, 1, NULL);
	return NULL;
}

/*
 * The duplicate check and the pass's look at the waiting jobs never queue
 * behind a write under way: here the store's own writer waits (holding the
 * store) for another connection's write lock, and they still answer at
 * once. The check answers from the memory index, committed deliveries
 * only; the look from committed rows. Before the reader connections they
 * waited the 5 s busy timeout.
 */
static void test_seen_beside_a_writer(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f);
	struct store_job_list l = {0};
	struct store_job job;
	int64_t n = 0;
	struct intake_arg a = {s, 1};
	char path[PATH_MAX + 16];
	struct err e = {0};
	sqlite3 *db = NULL;
	pthread_t t;
	bool seen = false;
	int64_t t0, took;

	assert_int_equal(store_delivery_add(s, "old", 1000, &e), 0);
	job = intake_row("d21", STORE_INTAKE_JOB_ADD, 21).job;
	assert_int_equal(store_job_add(s, &job, &e), 0);
	snprintf(path, sizeof(path), "%s/state.db", f->state);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(pthread_create(&t, NULL, intake_writer, &a), 0);
	usleep(200 * 1000); /* the writer holds the store and waits for the lock */
	t0 = clock_mono_ms();
	assert_int_equal(store_delivery_seen(s, "old", &seen, &e), 0);
	assert_true(seen);
	assert_int_equal(store_delivery_seen(s, "late", &seen, &e), 0);
	assert_false(seen); /* not committed: not known */
	/* nor does the pass's look at the waiting jobs */
	assert_int_equal(store_job_count_waiting(s, "small", 5000, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_job_list_waiting(s, 10, &l, &e), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].job_id, 21);
	store_job_list_release(&l);
	took = clock_mono_ms() - t0;
	assert_true(took < 1000);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(a.r, 0);
	assert_int_equal(store_delivery_seen(s, "late", &seen, &e), 0);
	assert_true(seen);
	store_close(s);
}

/*
 * A batch that fails halfway (here a trigger refuses its second job) keeps
 * none of its deliveries: the ones recorded before the failure are not
 * seen, and GitHub's redelivery of them is recorded as new.
 */
static void test_intake_rolled_back_forgets_its_deliveries(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f);
	struct store_intake a = intake_row("b1", STORE_INTAKE_JOB_ADD, 31);
	struct store_intake b = intake_row("b2", STORE_INTAKE_JOB_ADD, 666);
	struct store_intake *pv[2] = {&a, &b};
	char path[PATH_MAX + 16];
	struct err e = {0};
	sqlite3 *db = NULL;
	bool seen = true;
	int64_t n = -1;

	snprintf(path, sizeof(path), "%s/state.db", f->state);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "CREATE TRIGGER refuse_666 BEFORE INSERT ON jobs"
	                              " WHEN NEW.job_id = 666 BEGIN SELECT RAISE(ABORT, 'no'); END",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	assert_true(store_intake_write(s, pv, 2, &e) < 0);
	assert_int_equal(store_delivery_seen(s, "b1", &seen, &e), 0);
	assert_false(seen);
	assert_int_equal(store_job_count_waiting(s, "small", 5000, &n, &e), 0);
	assert_int_equal(n, 0);
	assert_int_equal(sqlite3_exec(db, "DROP TRIGGER refuse_666", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	/* sent again: both new, both kept */
	assert_int_equal(store_intake_write(s, pv, 2, &e), 0);
	assert_false(a.seen);
	assert_false(b.seen);
	assert_int_equal(store_delivery_seen(s, "b1", &seen, &e), 0);
	assert_true(seen);
	assert_int_equal(store_job_count_waiting(s, "small", 5000, &n, &e), 0);
	assert_int_equal(n, 2);
	store_close(s);
}

/*
 * The store's WAL writes are gathered: a commit of 64 deliveries (many
 * pages, two writes each) reaches the file in far fewer writes, and one of
 * 1,024 (frames past what SQLite's unix VFS takes in one write) commits
 * too; another connection on SQLite's own VFS reads it all at once; and a
 * PRAGMA that would let commits go unsynced (the gathering's premise) is
 * refused on a connection of the store's VFS, while FULL is taken.
 */
static void test_wal_writes_gathered(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f);
	static struct store_intake rows[1024];
	static struct store_intake *v[1024];
	struct store_vfs_stats a, b;
	char path[PATH_MAX + 16], id[32];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct err e = {0};

	for (int i = 0; i < 1024; i++) {
		snprintf(id, sizeof(id), "gather-%d", i);
		rows[i] = intake_row(id, STORE_INTAKE_JOB_ADD, 500 + i);
		v[i] = &rows[i];
	}
	assert_non_null(store_vfs_name());
	store_vfs_get_stats(&a);
	assert_int_equal(store_intake_write(s, v, 64, &e), 0);
	store_vfs_get_stats(&b);
	assert_true(b.writes - a.writes >= 8);
	assert_true(b.flushes - a.flushes >= 1);
	assert_true((b.flushes - a.flushes) * 4 <= b.writes - a.writes);
	assert_int_equal(b.wal_syncs - a.wal_syncs, 1); /* one commit, one sync */
	assert_int_equal(store_intake_write(s, v + 64, 1024 - 64, &e), 0);

	snprintf(path, sizeof(path), "%s/state.db", f->state);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM jobs WHERE job_id >= 500", -1,
	                                    &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1024);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_exec(db, "PRAGMA integrity_check", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, store_vfs_name()),
	                 SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL),
	                     SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "PRAGMA synchronous = 0", NULL, NULL, NULL),
	                     SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA synchronous = FULL", NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_names),
	        cmocka_unit_test_setup_teardown(test_wal_writes_gathered, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_modes_tightened, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_instance_round_trip, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_instance_upsert_list_delete, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_instance_missing_and_invalid, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_kv, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_action_log, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_spool, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_reopen_and_migrations, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_crash_durability, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_future_version_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_busy_timeout, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_intake_write, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_seen_beside_a_writer, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_deliveries_migrated_and_reloaded, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_intake_rolled_back_forgets_its_deliveries,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_waiting_jobs_read_by_index, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
