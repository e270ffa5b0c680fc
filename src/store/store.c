/*
 * The state store: runnerd's memory across restarts, one SQLite file in WAL
 * mode with synchronous=FULL, so a write is on disk when its call returns and
 * the action that depends on it may start. This file opens, migrates and
 * closes it, and holds the helpers every statement goes through; the
 * statements themselves are in store_schema.c. A file written by a newer
 * runnerd is refused rather than guessed at. Nothing in src/store may log
 * above debug, hold a secret, or create the database, its WAL or its
 * shared-memory file with a mode wider than 0600.
 */
#include "util/common.h"
#include "store/store_internal.h"
#include "util/strutil.h"
#include "util/fileutil.h"

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
int store_db_err(sqlite3 *db, int rc, struct err *e, const char *what)
{
	return err_set(e, errno_of(rc), "state store: %s: %s", what,
	               db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* Statement id of db, prepared once into *slot. */
static int stmt_cached(sqlite3 *db, sqlite3_stmt **slot, enum stmt_id id, sqlite3_stmt **ret,
                       struct err *e)
{
	if (!*slot) {
		int rc = sqlite3_prepare_v3(db, store_stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
		                            slot, NULL);
		if (rc != SQLITE_OK)
			return store_db_err(db, rc, e, "prepare");
	}
	*ret = *slot;
	return 0;
}

/* Caller holds s->mu. The statement is reset when handed out. */
int store_stmt_get(struct store *s, enum stmt_id id, sqlite3_stmt **ret, struct err *e)
{
	return stmt_cached(s->db, &s->stmt[id], id, ret, e);
}

void store_stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

int store_bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_TRANSIENT);
}

/* Run a statement that returns no rows. Caller holds s->mu. */
int store_stmt_exec(struct store *s, sqlite3_stmt *st, struct err *e, const char *what)
{
	int rc = sqlite3_step(st);
	int r = 0;

	if (rc != SQLITE_DONE)
		r = store_db_err(s->db, rc, e, what);
	store_stmt_done(st);
	return r;
}

static int exec_sql(sqlite3 *db, const char *sql, struct err *e, const char *what)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return store_db_err(db, rc, e, what);
	return 0;
}

static int read_user_version(sqlite3 *db, int *ret, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_db_err(db, rc, e, "read schema version");
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = store_db_err(db, rc, e, "read schema version");
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
		if (v > (int)store_n_migrations || v < 0) {
			r = err_set(
			        e, -ENOTSUP,
			        "state store: schema version %d is newer than this runnerd knows "
			        "(%d); refusing to open it",
			        v, (int)store_n_migrations);
			goto rollback;
		}
		if (v == (int)store_n_migrations)
			break;
		r = exec_sql(db, store_migrations[v], e, "migrate");
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

int store_open_private(const char *path, bool create, const char *what, int *ret_fd, struct err *e)
{
	struct stat st;
	int fd, r = 0;

	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | (create ? O_CREAT : 0), 0600);
	if (fd < 0) {
		if (errno == ENOENT && !create) {
			*ret_fd = -1;
			return 0;
		}
		return err_set(e, -errno, "%s %s: %s", what, path, strerror(errno));
	}
	if (fstat(fd, &st) < 0)
		r = err_set(e, -errno, "%s %s: %s", what, path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		r = err_set(e, -EINVAL, "%s %s: not a regular file", what, path);
	else if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0)
		r = err_set(e, -errno, "%s %s: chmod: %s", what, path, strerror(errno));
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

/*
 * Make path (if it exists) a regular file of mode 0600 without following a
 * symlink. SQLite gives the -wal and -shm files the database's mode, so
 * fixing the database before SQLite opens it covers files it creates later.
 */
static int tighten(const char *path, bool create, struct err *e)
{
	int fd = -1, r = store_open_private(path, create, "state store:", &fd, e);

	if (fd >= 0)
		close(fd);
	return r;
}

int store_path_in(const char *state_dir, const char *name, const char *what, char *out, size_t cap,
                  struct err *e)
{
	int r;

	if (!state_dir || !*state_dir)
		return err_set(e, -EINVAL, "%s: no state directory", what);
	r = mkdir_p(state_dir, 0700, e);
	if (r < 0)
		return err_prefix(e, "%s", what);
	if ((size_t)snprintf(out, cap, "%s/%s", state_dir, name) >= cap)
		return err_set(e, -ENAMETOOLONG, "%s: %s/%s: path too long", what, state_dir, name);
	return 0;
}

int store_db_open(const char *path, sqlite3 **ret, struct err *e)
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
	                     store_vfs_name());
	if (rc != SQLITE_OK) {
		r = store_db_err(db, rc, e, path);
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
		r = store_db_err(db, rc, e, "set WAL mode");
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

/* The readers: the file at path (migrated) opened again, for reads only. */
static int open_readers(struct store *s, const char *path, struct err *e)
{
	for (size_t i = 0; i < STORE_N_READERS; i++) {
		int r = store_db_open(path, &s->rd[i].db, e);

		if (r == 0)
			r = exec_sql(s->rd[i].db, "PRAGMA query_only = ON", e, "reader");
		if (r < 0)
			return r;
	}
	return 0;
}

int store_reader_stmt(struct store *s, int which, enum stmt_id id, sqlite3_stmt **ret,
                      struct err *e)
{
	struct store_reader *rd = &s->rd[which];

	return stmt_cached(rd->db, &rd->stmt[id], id, ret, e);
}

const char *store_dir(const struct store *s)
{
	return s->dir;
}

int store_open(const char *state_dir, struct store **ret, struct err *e)
{
	static const char *const suffixes[] = {"-wal", "-shm"};
	char path[PATH_MAX], side[PATH_MAX + 8];
	struct store *s = NULL;
	int r;

	r = store_path_in(state_dir, STORE_DB_NAME, "state store", path, sizeof(path), e);
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
	str_copy(s->dir, state_dir, sizeof(s->dir));
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return err_set(e, -ENOMEM, "state store: mutex");
	}
	for (size_t i = 0; i < STORE_N_READERS; i++)
		pthread_mutex_init(&s->rd[i].mu, NULL);
	r = store_db_open(path, &s->db, e);
	if (r < 0)
		goto fail;
	r = apply_migrations(s->db, &s->version, e);
	if (r < 0)
		goto fail;
	r = open_readers(s, path, e);
	if (r < 0)
		goto fail;
	r = store_deliveries_load(s, e);
	if (r < 0)
		goto fail;
	r = store_checkpointer_start(s, path, e);
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
	store_checkpointer_stop(s); /* before the last connection, which checkpoints on close */
	for (size_t i = 0; i < ARRAY_SIZE(s->stmt); i++)
		sqlite3_finalize(s->stmt[i]);
	for (size_t i = 0; i < STORE_N_READERS; i++) {
		for (size_t j = 0; j < ARRAY_SIZE(s->rd[i].stmt); j++)
			sqlite3_finalize(s->rd[i].stmt[j]);
		sqlite3_close(s->rd[i].db);
		pthread_mutex_destroy(&s->rd[i].mu);
	}
	sqlite3_close(s->db);
	delivery_index_free(s->deliveries);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int store_schema_version(struct store *s)
{
	return s->version;
}

/* A statement with one parameter (text, or an integer when !text) and no result rows. */
static int exec_with_one(struct store *s, enum stmt_id id, const char *text, int64_t v,
                         struct err *e, const char *what)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&s->mu);
	r = store_stmt_get(s, id, &st, e);
	if (r == 0) {
		if (text)
			store_bind_text(st, 1, text);
		else
			sqlite3_bind_int64(st, 1, v);
		r = store_stmt_exec(s, st, e, what);
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

int store_exec_with_text(struct store *s, enum stmt_id id, const char *v, struct err *e,
                         const char *what)
{
	return exec_with_one(s, id, v ? v : "", 0, e, what);
}

int store_exec_with_int(struct store *s, enum stmt_id id, int64_t v, struct err *e,
                        const char *what)
{
	return exec_with_one(s, id, NULL, v, e, what);
}

bool store_field_terminated(const char *v, size_t cap)
{
	return memchr(v, '\0', cap) != NULL;
}

int store_column_copy(sqlite3_stmt *st, int col, char *out, size_t cap)
{
	const unsigned char *v = sqlite3_column_text(st, col);
	int n = sqlite3_column_bytes(st, col);

	if (!v || n < 0 || (size_t)n >= cap || memchr(v, '\0', (size_t)n))
		return -EBADMSG;
	memcpy(out, v, (size_t)n);
	out[n] = '\0';
	return 0;
}
