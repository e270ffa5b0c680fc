/*
 * The state store: runnerd's memory across restarts, one SQLite file in WAL
 * mode with synchronous=FULL, so a write is on disk when its call returns and
 * the action that depends on it may start. Every statement is prepared once
 * and takes its values through bound parameters: no SQL is ever built from
 * data. The schema grows only by appending to `migrations`; a file written by
 * a newer runnerd is refused rather than guessed at. This file must never log
 * above debug, never hold a secret, and never create the database, its WAL or
 * its shared-memory file with a mode wider than 0600.
 */
#include "util/common.h"
#include "util/fileutil.h"
#include "util/strutil.h"
#include "store/store.h"

#include <pthread.h>
#include <sqlite3.h>
#include <sys/file.h>

#define STORE_DB_NAME   "state.db"
#define STORE_LOCK_NAME "runnerd.lock"
#define STORE_BUSY_MS   5000
#define STORE_LIST_MAX  1000000 /* rows; far beyond any pool, guards the allocation */
#define STORE_KV_MAX    (64 * 1024)

/*
 * The schema, one step per version: step i takes the file from version i to
 * i + 1 (PRAGMA user_version). Add a table by appending a step; never edit a
 * step that has shipped. Enumerations are stored by name so the file reads
 * well in the sqlite3 shell and survives a reordering of the C enums.
 */
static const char *const migrations[] = {
        /* 1: instances, the action log, small settings */
        "CREATE TABLE instances ("
        " name TEXT PRIMARY KEY NOT NULL,"
        " flavor TEXT NOT NULL,"
        " provider TEXT NOT NULL,"
        " provider_id TEXT NOT NULL DEFAULT '',"
        " phase TEXT NOT NULL CHECK (phase IN ('creating', 'created', 'deleting')),"
        " created_at INTEGER NOT NULL,"
        " cloud_state TEXT NOT NULL CHECK (cloud_state IN ('created', 'active', 'stopped',"
        "  'error', 'deleted', 'unknown')),"
        " runner_id INTEGER NOT NULL DEFAULT 0,"
        " seen_on_github INTEGER NOT NULL DEFAULT 0 CHECK (seen_on_github IN (0, 1)),"
        " github_state TEXT NOT NULL CHECK (github_state IN ('absent', 'idle', 'busy',"
        "  'offline', 'unknown')),"
        " health TEXT NOT NULL CHECK (health IN ('unknown', 'healthy', 'unhealthy')),"
        " last_seen INTEGER NOT NULL DEFAULT 0,"
        " busy_since INTEGER NOT NULL DEFAULT 0"
        ") STRICT;"
        "CREATE TABLE actions ("
        " id INTEGER PRIMARY KEY,"
        " ts INTEGER NOT NULL,"
        " action TEXT NOT NULL,"
        " name TEXT NOT NULL DEFAULT '',"
        " reason TEXT NOT NULL DEFAULT '',"
        " outcome TEXT NOT NULL DEFAULT ''"
        ") STRICT;"
        "CREATE INDEX actions_by_action ON actions (action, ts);"
        "CREATE INDEX actions_by_ts ON actions (ts);"
        "CREATE TABLE kv ("
        " key TEXT PRIMARY KEY NOT NULL,"
        " value TEXT NOT NULL"
        ") STRICT;",
};

#define STORE_SCHEMA_VERSION ((int)ARRAY_SIZE(migrations))

enum stmt_id {
	ST_INSTANCE_PUT = 0,
	ST_INSTANCE_GET,
	ST_INSTANCE_LIST,
	ST_INSTANCE_DELETE,
	ST_ACTION_LOG,
	ST_ACTION_COUNT,
	ST_ACTION_COUNT_ALL,
	ST_ACTION_PRUNE,
	ST_KV_SET,
	ST_KV_GET,
	ST_KV_DELETE,
	ST__MAX,
};

#define INSTANCE_COLUMNS                                                                           \
	"name, flavor, provider, provider_id, phase, created_at, cloud_state, runner_id,"          \
	" seen_on_github, github_state, health, last_seen, busy_since"

static const char *const stmt_sql[ST__MAX] = {
        /* An upsert, not REPLACE: REPLACE deletes the row first, which would
         * cascade to rows of later tables that reference an instance. */
        [ST_INSTANCE_PUT] = "INSERT INTO instances (" INSTANCE_COLUMNS ")"
                            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                            " ON CONFLICT (name) DO UPDATE SET flavor = excluded.flavor,"
                            " provider = excluded.provider, provider_id = excluded.provider_id,"
                            " phase = excluded.phase, created_at = excluded.created_at,"
                            " cloud_state = excluded.cloud_state, runner_id = excluded.runner_id,"
                            " seen_on_github = excluded.seen_on_github,"
                            " github_state = excluded.github_state, health = excluded.health,"
                            " last_seen = excluded.last_seen, busy_since = excluded.busy_since",
        [ST_INSTANCE_GET] = "SELECT " INSTANCE_COLUMNS " FROM instances WHERE name = ?1",
        [ST_INSTANCE_LIST] = "SELECT " INSTANCE_COLUMNS " FROM instances ORDER BY created_at, name",
        [ST_INSTANCE_DELETE] = "DELETE FROM instances WHERE name = ?1",
        [ST_ACTION_LOG] = "INSERT INTO actions (ts, action, name, reason, outcome)"
                          " VALUES (?1, ?2, ?3, ?4, ?5)",
        [ST_ACTION_COUNT] = "SELECT count(*) FROM actions WHERE action = ?1",
        [ST_ACTION_COUNT_ALL] = "SELECT count(*) FROM actions",
        [ST_ACTION_PRUNE] = "DELETE FROM actions WHERE ts < ?1",
        [ST_KV_SET] = "INSERT INTO kv (key, value) VALUES (?1, ?2)"
                      " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [ST_KV_GET] = "SELECT value FROM kv WHERE key = ?1",
        [ST_KV_DELETE] = "DELETE FROM kv WHERE key = ?1",
};

struct store {
	sqlite3 *db;
	/* SQLite serializes calls on the connection, but a prepared statement
	 * is bind + step + reset: the whole sequence must not interleave. */
	pthread_mutex_t mu;
	sqlite3_stmt *stmt[ST__MAX];
	int version;
};

static const char *const phase_names[] = {
        [PHASE_CREATING] = "creating",
        [PHASE_CREATED] = "created",
        [PHASE_DELETING] = "deleting",
};

const char *store_phase_name(enum store_phase p)
{
	if ((unsigned)p < ARRAY_SIZE(phase_names))
		return phase_names[p];
	return "invalid";
}

static int name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (s && strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

static int errno_of(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_RANGE:
		return -EINVAL;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_TOOBIG:
		return -E2BIG;
	default:
		return -EIO;
	}
}

/* SQLite's messages name tables and constraints, never bound values. */
static int db_err(sqlite3 *db, int rc, struct err *e, const char *what)
{
	return err_set(e, errno_of(rc), "state store: %s: %s", what,
	               db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* Caller holds s->mu. The statement is reset when handed out. */
static int stmt_get(struct store *s, enum stmt_id id, sqlite3_stmt **ret, struct err *e)
{
	if (!s->stmt[id]) {
		int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
		                            &s->stmt[id], NULL);
		if (rc != SQLITE_OK)
			return db_err(s->db, rc, e, "prepare");
	}
	*ret = s->stmt[id];
	return 0;
}

static void stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_TRANSIENT);
}

/* Run a statement that returns no rows. Caller holds s->mu. */
static int stmt_exec(struct store *s, sqlite3_stmt *st, struct err *e, const char *what)
{
	int rc = sqlite3_step(st);
	int r = 0;

	if (rc != SQLITE_DONE)
		r = db_err(s->db, rc, e, what);
	stmt_done(st);
	return r;
}

static int exec_sql(sqlite3 *db, const char *sql, struct err *e, const char *what)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return db_err(db, rc, e, what);
	return 0;
}

static int read_user_version(sqlite3 *db, int *ret, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_err(db, rc, e, "read schema version");
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = db_err(db, rc, e, "read schema version");
		goto out;
	}
	*ret = sqlite3_column_int(st, 0);
out:
	sqlite3_finalize(st);
	return r;
}

static int apply_migrations(sqlite3 *db, int *ret_version, struct err *e)
{
	char sql[64];
	int v = 0, r;

	for (;;) {
		/* IMMEDIATE takes the write lock first, so two processes opening
		 * an old file at once migrate it once: the second re-reads the
		 * version inside its own transaction. */
		r = exec_sql(db, "BEGIN IMMEDIATE", e, "begin migration");
		if (r < 0)
			return r;
		r = read_user_version(db, &v, e);
		if (r < 0)
			goto rollback;
		if (v > STORE_SCHEMA_VERSION || v < 0) {
			r = err_set(
			        e, -ENOTSUP,
			        "state store: schema version %d is newer than this runnerd knows "
			        "(%d); refusing to open it",
			        v, STORE_SCHEMA_VERSION);
			goto rollback;
		}
		if (v == STORE_SCHEMA_VERSION)
			break;
		r = exec_sql(db, migrations[v], e, "migrate");
		if (r < 0) {
			err_prefix(e, "schema version %d -> %d", v, v + 1);
			goto rollback;
		}
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		r = exec_sql(db, sql, e, "set schema version");
		if (r < 0)
			goto rollback;
		r = exec_sql(db, "COMMIT", e, "commit migration");
		if (r < 0)
			goto rollback;
	}
	r = exec_sql(db, "COMMIT", e, "commit");
	if (r < 0)
		goto rollback;
	*ret_version = v;
	return 0;
rollback:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/*
 * Make path (if it exists) a regular file of mode 0600 without following a
 * symlink. SQLite gives the -wal and -shm files the database's mode, so
 * fixing the database before SQLite opens it covers files it creates later.
 */
static int tighten(const char *path, bool create, struct err *e)
{
	struct stat st;
	int fd, r = 0;

	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | (create ? O_CREAT : 0), 0600);
	if (fd < 0) {
		if (errno == ENOENT && !create)
			return 0;
		return err_set(e, -errno, "state store: %s: %s", path, strerror(errno));
	}
	if (fstat(fd, &st) < 0) {
		r = err_set(e, -errno, "state store: %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = err_set(e, -EINVAL, "state store: %s: not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0)
		r = err_set(e, -errno, "state store: chmod %s: %s", path, strerror(errno));
out:
	close(fd);
	return r;
}

static int join_path(char *out, size_t cap, const char *dir, const char *name, struct err *e)
{
	if ((size_t)snprintf(out, cap, "%s/%s", dir, name) >= cap)
		return err_set(e, -ENAMETOOLONG, "state store: %s/%s: path too long", dir, name);
	return 0;
}

static int open_db(const char *path, sqlite3 **ret, struct err *e)
{
	static const char *const pragmas[] = {
	        "PRAGMA trusted_schema = OFF",
	        "PRAGMA foreign_keys = ON",
	        /* FULL: in WAL mode every commit is fsynced before it returns. */
	        "PRAGMA synchronous = FULL",
	};
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	const char *mode;
	int rc, r = 0;

	rc = sqlite3_open_v2(path, &db,
	                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW |
	                             SQLITE_OPEN_EXRESCODE,
	                     NULL);
	if (rc != SQLITE_OK) {
		r = db_err(db, rc, e, path);
		goto fail;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, STORE_BUSY_MS);
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);

	/* journal_mode answers with the mode in force: check it really is WAL
	 * (it is not on a file system without shared memory, for one). */
	rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = db_err(db, rc, e, "set WAL mode");
		goto fail;
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	if (!mode || strcmp(mode, "wal") != 0) {
		r = err_set(e, -ENOTSUP, "state store: %s: WAL mode unavailable (got %s)", path,
		            mode ? mode : "?");
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(pragmas); i++) {
		r = exec_sql(db, pragmas[i], e, pragmas[i]);
		if (r < 0)
			goto fail;
	}
	*ret = db;
	return 0;
fail:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}

int store_open(const char *state_dir, struct store **ret, struct err *e)
{
	static const char *const suffixes[] = {"-wal", "-shm"};
	char path[PATH_MAX], side[PATH_MAX + 8];
	struct store *s = NULL;
	int r;

	if (!state_dir || !*state_dir)
		return err_set(e, -EINVAL, "state store: no state directory");
	r = mkdir_p(state_dir, 0700, e);
	if (r < 0)
		return err_prefix(e, "state store");
	r = join_path(path, sizeof(path), state_dir, STORE_DB_NAME, e);
	if (r < 0)
		return r;
	/* Create the file ourselves so it is 0600 from its first byte,
	 * whatever the umask (SQLite would use 0644 & ~umask). */
	r = tighten(path, true, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		snprintf(side, sizeof(side), "%s%s", path, suffixes[i]);
		r = tighten(side, false, e);
		if (r < 0)
			return r;
	}

	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, -ENOMEM, "state store: out of memory");
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return err_set(e, -ENOMEM, "state store: mutex");
	}
	r = open_db(path, &s->db, e);
	if (r < 0)
		goto fail;
	r = apply_migrations(s->db, &s->version, e);
	if (r < 0)
		goto fail;
	*ret = s;
	return 0;
fail:
	store_close(s);
	return r;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(s->stmt); i++)
		sqlite3_finalize(s->stmt[i]);
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int store_schema_version(struct store *s)
{
	return s->version;
}

static bool field_ok(const char *v, size_t cap)
{
	return memchr(v, '\0', cap) != NULL;
}

int store_instance_put(struct store *s, const struct store_instance *in, struct err *e)
{
	sqlite3_stmt *st;
	int r;

	if (!field_ok(in->name, sizeof(in->name)) || !in->name[0] ||
	    !field_ok(in->flavor, sizeof(in->flavor)) ||
	    !field_ok(in->provider, sizeof(in->provider)) ||
	    !field_ok(in->provider_id, sizeof(in->provider_id)))
		return err_set(e, -EINVAL,
		               "state store: instance with an empty or unterminated field");
	if ((unsigned)in->phase >= ARRAY_SIZE(phase_names) ||
	    (unsigned)in->cloud_state >= CLOUD_STATE_COUNT ||
	    (unsigned)in->github_state >= GITHUB_STATE_COUNT ||
	    (unsigned)in->health >= HEALTH_COUNT)
		return err_set(e, -EINVAL, "state store: %s: state out of range", in->name);

	pthread_mutex_lock(&s->mu);
	r = stmt_get(s, ST_INSTANCE_PUT, &st, e);
	if (r < 0)
		goto out;
	bind_text(st, 1, in->name);
	bind_text(st, 2, in->flavor);
	bind_text(st, 3, in->provider);
	bind_text(st, 4, in->provider_id);
	bind_text(st, 5, phase_names[in->phase]);
	sqlite3_bind_int64(st, 6, in->created_at);
	bind_text(st, 7, cloud_state_name(in->cloud_state));
	sqlite3_bind_int64(st, 8, in->runner_id);
	sqlite3_bind_int(st, 9, in->seen_on_github ? 1 : 0);
	bind_text(st, 10, github_state_name(in->github_state));
	bind_text(st, 11, health_name(in->health));
	sqlite3_bind_int64(st, 12, in->last_seen);
	sqlite3_bind_int64(st, 13, in->busy_since);
	r = stmt_exec(s, st, e, "put instance");
out:
	pthread_mutex_unlock(&s->mu);
	return r;
}

static int column_copy(sqlite3_stmt *st, int col, char *out, size_t cap)
{
	const unsigned char *v = sqlite3_column_text(st, col);
	int n = sqlite3_column_bytes(st, col);

	if (!v || n < 0 || (size_t)n >= cap || memchr(v, '\0', (size_t)n))
		return -EBADMSG;
	memcpy(out, v, (size_t)n);
	out[n] = '\0';
	return 0;
}

static int column_enum(sqlite3_stmt *st, int col, const char *const *names, size_t n)
{
	return name_index(names, n, (const char *)sqlite3_column_text(st, col));
}

/* One row of INSTANCE_COLUMNS into *ret; -EBADMSG for a row we cannot read. */
static int row_to_instance(sqlite3_stmt *st, struct store_instance *ret)
{
	struct store_instance in;
	int phase, cloud, gh, health;

	memset(&in, 0, sizeof(in));
	if (column_copy(st, 0, in.name, sizeof(in.name)) < 0 ||
	    column_copy(st, 1, in.flavor, sizeof(in.flavor)) < 0 ||
	    column_copy(st, 2, in.provider, sizeof(in.provider)) < 0 ||
	    column_copy(st, 3, in.provider_id, sizeof(in.provider_id)) < 0)
		return -EBADMSG;
	phase = column_enum(st, 4, phase_names, ARRAY_SIZE(phase_names));
	cloud = cloud_state_from_name((const char *)sqlite3_column_text(st, 6));
	gh = github_state_from_name((const char *)sqlite3_column_text(st, 9));
	health = health_from_name((const char *)sqlite3_column_text(st, 10));
	if (phase < 0 || cloud < 0 || gh < 0 || health < 0)
		return -EBADMSG;
	in.phase = (enum store_phase)phase;
	in.created_at = sqlite3_column_int64(st, 5);
	in.cloud_state = (enum cloud_state)cloud;
	in.runner_id = sqlite3_column_int64(st, 7);
	in.seen_on_github = sqlite3_column_int(st, 8) != 0;
	in.github_state = (enum github_state)gh;
	in.health = (enum health)health;
	in.last_seen = sqlite3_column_int64(st, 11);
	in.busy_since = sqlite3_column_int64(st, 12);
	*ret = in;
	return 0;
}

int store_instance_get(struct store *s, const char *name, struct store_instance *ret, struct err *e)
{
	struct store_instance in;
	sqlite3_stmt *st;
	int rc, r;

	pthread_mutex_lock(&s->mu);
	r = stmt_get(s, ST_INSTANCE_GET, &st, e);
	if (r < 0)
		goto out;
	bind_text(st, 1, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = err_set(e, -ENOENT, "state store: no instance %s", name);
	} else if (rc != SQLITE_ROW) {
		r = db_err(s->db, rc, e, "get instance");
	} else if (row_to_instance(st, &in) < 0) {
		r = err_set(e, -EBADMSG, "state store: instance %s: unreadable row", name);
	} else {
		*ret = in;
	}
	stmt_done(st);
out:
	pthread_mutex_unlock(&s->mu);
	return r;
}

int store_instance_list(struct store *s, struct store_instance_list *ret, struct err *e)
{
	struct store_instance_list l = {NULL, 0};
	size_t cap = 0;
	sqlite3_stmt *st;
	int rc, r;

	pthread_mutex_lock(&s->mu);
	r = stmt_get(s, ST_INSTANCE_LIST, &st, e);
	if (r < 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (l.n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct store_instance *v;
			if (ncap > STORE_LIST_MAX) {
				r = err_set(e, -E2BIG, "state store: more than %d instances",
				            STORE_LIST_MAX);
				break;
			}
			v = realloc(l.v, ncap * sizeof(*v));
			if (!v) {
				r = err_set(e, -ENOMEM, "state store: out of memory");
				break;
			}
			l.v = v;
			cap = ncap;
		}
		if (row_to_instance(st, &l.v[l.n]) < 0) {
			r = err_set(e, -EBADMSG, "state store: unreadable instance row");
			break;
		}
		l.n++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_err(s->db, rc, e, "list instances");
	stmt_done(st);
out:
	pthread_mutex_unlock(&s->mu);
	if (r < 0) {
		free(l.v);
		return r;
	}
	store_instance_list_release(ret);
	*ret = l;
	return 0;
}

void store_instance_list_release(struct store_instance_list *l)
{
	if (!l)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* A statement with one text parameter and no result rows. */
static int exec_with_text(struct store *s, enum stmt_id id, const char *v, struct err *e,
                          const char *what)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&s->mu);
	r = stmt_get(s, id, &st, e);
	if (r == 0) {
		bind_text(st, 1, v);
		r = stmt_exec(s, st, e, what);
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

int store_instance_delete(struct store *s, const char *name, struct err *e)
{
	return exec_with_text(s, ST_INSTANCE_DELETE, name, e, "delete instance");
}

int store_log_action(struct store *s, int64_t when, const char *action, const char *name,
                     const char *reason, const char *outcome, struct err *e)
{
	sqlite3_stmt *st;
	int r;

	if (!action || !*action)
		return err_set(e, -EINVAL, "state store: action log entry without an action");
	pthread_mutex_lock(&s->mu);
	r = stmt_get(s, ST_ACTION_LOG, &st, e);
	if (r == 0) {
		sqlite3_bind_int64(st, 1, when);
		bind_text(st, 2, action);
		bind_text(st, 3, name);
		bind_text(st, 4, reason);
		bind_text(st, 5, outcome);
		r = stmt_exec(s, st, e, "log action");
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

int store_count_actions(struct store *s, const char *action, int64_t *ret, struct err *e)
{
	sqlite3_stmt *st;
	int rc, r;

	pthread_mutex_lock(&s->mu);
	r = stmt_get(s, action ? ST_ACTION_COUNT : ST_ACTION_COUNT_ALL, &st, e);
	if (r < 0)
		goto out;
	if (action)
		bind_text(st, 1, action);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	else
		r = db_err(s->db, rc, e, "count actions");
	stmt_done(st);
out:
	pthread_mutex_unlock(&s->mu);
	return r;
}

int store_prune_actions(struct store *s, int64_t before, struct err *e)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&s->mu);
	r = stmt_get(s, ST_ACTION_PRUNE, &st, e);
	if (r == 0) {
		sqlite3_bind_int64(st, 1, before);
		r = stmt_exec(s, st, e, "prune actions");
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

int store_kv_set(struct store *s, const char *key, const char *value, struct err *e)
{
	sqlite3_stmt *st;
	int r;

	if (!key || !*key || !value)
		return err_set(e, -EINVAL, "state store: setting without a key or value");
	if (strlen(value) > STORE_KV_MAX)
		return err_set(e, -E2BIG, "state store: setting %s: value too large", key);
	pthread_mutex_lock(&s->mu);
	r = stmt_get(s, ST_KV_SET, &st, e);
	if (r == 0) {
		bind_text(st, 1, key);
		bind_text(st, 2, value);
		r = stmt_exec(s, st, e, "set setting");
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

int store_kv_get(struct store *s, const char *key, char **ret, struct err *e)
{
	sqlite3_stmt *st;
	char *v = NULL;
	int rc, r;

	pthread_mutex_lock(&s->mu);
	r = stmt_get(s, ST_KV_GET, &st, e);
	if (r < 0)
		goto out;
	bind_text(st, 1, key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = err_set(e, -ENOENT, "state store: setting %s is unset", key);
	} else if (rc != SQLITE_ROW) {
		r = db_err(s->db, rc, e, "get setting");
	} else {
		const unsigned char *t = sqlite3_column_text(st, 0);
		int n = sqlite3_column_bytes(st, 0);
		if (!t || n < 0 || n > STORE_KV_MAX) {
			r = err_set(e, -EBADMSG, "state store: setting %s: unreadable", key);
		} else if (!(v = malloc((size_t)n + 1))) {
			r = err_set(e, -ENOMEM, "state store: out of memory");
		} else {
			memcpy(v, t, (size_t)n);
			v[n] = '\0';
		}
	}
	stmt_done(st);
out:
	pthread_mutex_unlock(&s->mu);
	if (r == 0)
		*ret = v;
	return r;
}

int store_kv_delete(struct store *s, const char *key, struct err *e)
{
	return exec_with_text(s, ST_KV_DELETE, key, e, "delete setting");
}

/* Best effort: who holds the lock, for the message only. */
static long lock_holder(int fd)
{
	char b[32];
	ssize_t n = pread(fd, b, sizeof(b) - 1, 0);
	int64_t pid = 0;

	if (n <= 0)
		return 0;
	b[n] = '\0';
	b[strcspn(b, "\n")] = '\0';
	if (parse_int64(b, 1, INT32_MAX, &pid) < 0)
		return 0;
	return (long)pid;
}

int store_lock(const char *state_dir, int *ret_fd, struct err *e)
{
	char path[PATH_MAX], pid[32];
	struct stat st;
	int fd, r, n;

	if (!state_dir || !*state_dir)
		return err_set(e, -EINVAL, "lock: no state directory");
	r = mkdir_p(state_dir, 0700, e);
	if (r < 0)
		return err_prefix(e, "lock");
	r = join_path(path, sizeof(path), state_dir, STORE_LOCK_NAME, e);
	if (r < 0)
		return r;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (fd < 0)
		return err_set(e, -errno, "lock %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = err_set(e, -EINVAL, "lock %s: not a regular file", path);
		goto fail;
	}
	if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0) {
		r = err_set(e, -errno, "lock %s: chmod: %s", path, strerror(errno));
		goto fail;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			long holder = lock_holder(fd);
			if (holder > 0)
				r = err_set(e, -EWOULDBLOCK,
				            "%s is locked by another runnerd (pid %ld)", path,
				            holder);
			else
				r = err_set(e, -EWOULDBLOCK, "%s is locked by another runnerd",
				            path);
		} else {
			r = err_set(e, -errno, "lock %s: %s", path, strerror(errno));
		}
		goto fail;
	}
	/* The pid is a courtesy for the message above; the lock is the flock. */
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == 0) {
		ssize_t w = pwrite(fd, pid, (size_t)n, 0);
		(void)w;
	}
	*ret_fd = fd;
	return 0;
fail:
	close(fd);
	return r;
}

void store_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}
