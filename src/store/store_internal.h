/*
 * What the files of src/store share, private to the folder: the handle, the
 * statements every file prepares once (their SQL is in store_schema.c, the
 * one place SQL lives), and the few helpers that run them. Nothing outside
 * src/store may include this.
 */
#ifndef RUNNERD_STORE_INTERNAL_H
#define RUNNERD_STORE_INTERNAL_H

#include "store/store.h"
#include "store/delivery_index.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#define STORE_DB_NAME   "state.db"
#define STORE_LOCK_NAME "runnerd.lock"
#define STORE_BUSY_MS   5000
#define STORE_LIST_MAX  1000000 /* rows; far beyond any pool, guards the allocation */
#define STORE_KV_MAX    (64 * 1024)

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
	ST_DELIVERY_ADD,
	ST_DELIVERY_FORGET,
	ST_DELIVERY_LOAD,
	ST_DELIVERY_PRUNE,
	ST_JOB_ADD,
	ST_JOB_DONE,
	ST_JOB_UPDATE,
	ST_JOB_LIST,
	ST_JOB_LIST_DUE,
	ST_JOB_GET,
	ST_JOB_COUNT,
	ST_JOB_PRUNE,
	ST_SPOOL_ADD,
	ST_SPOOL_LIST,
	ST_SPOOL_DELETE,
	ST_SPOOL_COUNT,
	ST__MAX,
};

/*
 * A read-only connection to the same file. In WAL mode a reader never
 * waits for a writer and sees committed (so durable) rows only: the reads
 * that must not queue behind a commit and its fsync (which holds mu) go
 * through one, each kind on its own so neither waits for the other.
 */
struct store_reader {
	sqlite3 *db;
	pthread_mutex_t mu; /* taken alone, never with the store's mu */
	sqlite3_stmt *stmt[ST__MAX];
};

enum {
	STORE_READ_PASS = 0, /* the pass loop's look at the waiting jobs */
	STORE_N_READERS,
};

/*
 * The WAL's checkpoints, off the writers' path (store_checkpoint.c): a
 * thread with a connection of its own, woken when a commit leaves the WAL
 * at 1,000 pages or more.
 */
struct store_checkpointer {
	sqlite3 *db;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu; /* guards what follows; taken alone, or after the store's */
	pthread_cond_t wake;
	bool wanted, stopping;
	uint64_t runs, failed;
};

struct store {
	char dir[PATH_MAX]; /* the state_dir */
	sqlite3 *db;
	/* SQLite serializes calls on the connection, but a prepared statement
	 * is bind + step + reset: the whole sequence must not interleave. */
	pthread_mutex_t mu;
	sqlite3_stmt *stmt[ST__MAX];
	int version;
	/* read-only connections beside db (STORE_READ_*) */
	struct store_reader rd[STORE_N_READERS];
	/* the deliveries table's index by id (delivery_index.h) */
	struct delivery_index *deliveries;
	int64_t deliveries_newest_at_open; /* the newest received_at when it was loaded, 0 none */
	struct store_checkpointer ck;
};

/* The schema, one step per version (store_schema.c). */
extern const char *const store_migrations[];
extern const size_t store_n_migrations;
/* The SQL of each statement (store_schema.c). */
extern const char *const store_stmt_sql[ST__MAX];

/* A connection to the file at path: WAL mode, synchronous=FULL, through store_vfs (store.c). */
int store_db_open(const char *path, sqlite3 **ret, struct err *e);
/*
 * The checkpointer (store_checkpoint.c). start: its connection and thread,
 * and s->db's checkpoints handed to it (s->db open, nothing else running).
 * stop: joined and closed; s->db checkpoints itself again. Safe when
 * start failed or never ran.
 */
int store_checkpointer_start(struct store *s, const char *path, struct err *e);
void store_checkpointer_stop(struct store *s);

/* SQLite's result code as a negative errno, and as a message in e (names, never values). */
int store_db_err(sqlite3 *db, int rc, struct err *e, const char *what);
/* Caller holds s->mu. The statement is reset when handed out. */
int store_stmt_get(struct store *s, enum stmt_id id, sqlite3_stmt **ret, struct err *e);
/* The same from reader which (its mu held). */
int store_reader_stmt(struct store *s, int which, enum stmt_id id, sqlite3_stmt **ret,
                      struct err *e);
/* Reset a statement and clear its bindings. */
void store_stmt_done(sqlite3_stmt *st);
/* Whether the text field v (an array of cap bytes) ends within it. */
bool store_field_terminated(const char *v, size_t cap);
/* Copy a text column into out (cap bytes): -EBADMSG when it is NULL, too long or holds a NUL. */
int store_column_copy(sqlite3_stmt *st, int col, char *out, size_t cap);
/* Bind text (NULL as ""). */
int store_bind_text(sqlite3_stmt *st, int i, const char *v);
/* Run a statement that returns no rows. Caller holds s->mu. */
int store_stmt_exec(struct store *s, sqlite3_stmt *st, struct err *e, const char *what);
/* Run statement id with one integer parameter and no result rows (takes s->mu). */
int store_exec_with_int(struct store *s, enum stmt_id id, int64_t v, struct err *e,
                        const char *what);
/* Run statement id with one text parameter and no result rows (takes s->mu). */
int store_exec_with_text(struct store *s, enum stmt_id id, const char *v, struct err *e,
                         const char *what);
/* The jobs table (store_jobs.c), for the intake's batches (store_intake.c). */
bool store_job_valid(const struct store_job *j);
/* Add j (valid) with s->mu held: 0, -EEXIST when its id is known. */
int store_job_add_locked(struct store *s, const struct store_job *j, struct err *e);
/* Mark job_id done with s->mu held. */
int store_job_done_locked(struct store *s, int64_t job_id, const char *why, int64_t now,
                          struct err *e);
/* store_kv_set with s->mu held (store_log.c). */
int store_kv_set_locked(struct store *s, const char *key, const char *value, struct err *e);

/*
 * The deliveries table (store_deliveries.c). load: fill s->deliveries from
 * it (store_open). record_locked: with s->mu held, record id as key k
 * (delivery_key_of) in the table and in the index as pending (a
 * transaction is open) or committed: 0, -EEXIST when k is in already (its
 * row then untouched). After the transaction: store_deliveries_settle
 * commits the pending keys, or takes them out when it was rolled back.
 */
bool store_delivery_id_valid(const char *id);
int store_deliveries_load(struct store *s, struct err *e);
int store_delivery_record_locked(struct store *s, const struct delivery_key *k, const char *id,
                                 int64_t at, bool pending, struct err *e);
void store_deliveries_settle(struct store *s, const struct delivery_key *keys, size_t n,
                             bool committed);

/*
 * Open path read-write as a regular file of mode 0600 (created when create;
 * a symlink is refused, a wider mode narrowed): *ret_fd, or -1 when it is
 * missing and !create. Messages start with what.
 */
int store_open_private(const char *path, bool create, const char *what, int *ret_fd, struct err *e);
/*
 * state_dir/name into out, the directory made (0700) if missing; messages
 * start with what. -EINVAL without a state dir, -ENAMETOOLONG.
 */
int store_path_in(const char *state_dir, const char *name, const char *what, char *out, size_t cap,
                  struct err *e);

/*
 * The VFS the store opens its files with (store_vfs.c): SQLite's own, with
 * the writes of a WAL commit gathered into one. NULL when it could not be
 * set up: SQLite's own then.
 */
const char *store_vfs_name(void);

/* What it did since the process started (for tests and benchmarks). */
struct store_vfs_stats {
	uint64_t writes;    /* WAL writes SQLite asked for */
	uint64_t flushes;   /* writes made of them */
	uint64_t wal_syncs; /* WAL syncs */
};
void store_vfs_get_stats(struct store_vfs_stats *ret);

#endif
