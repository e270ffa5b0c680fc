/*
 * The one place SQL lives: the schema as numbered migrations and every
 * statement runnerd runs. Values always go through bound parameters; no SQL
 * is ever built from data. A table is added by appending a migration, never
 * by editing one that has shipped.
 */
#include "util/common.h"
#include "store/store_internal.h"

/*
 * The schema, one step per version: step i takes the file from version i to
 * i + 1 (PRAGMA user_version). Add a table by appending a step; never edit a
 * step that has shipped. Enumerations are stored by name so the file reads
 * well in the sqlite3 shell and survives a reordering of the C enums.
 */
const char *const store_migrations[] = {
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
        /* 2: reactive mode: webhook deliveries seen (dedup), the sqlite job queue */
        "CREATE TABLE deliveries ("
        " id TEXT PRIMARY KEY NOT NULL,"
        " received_at INTEGER NOT NULL"
        ") STRICT;"
        "CREATE INDEX deliveries_by_time ON deliveries (received_at);"
        "CREATE TABLE jobs ("
        " job_id INTEGER PRIMARY KEY NOT NULL CHECK (job_id > 0),"
        " run_id INTEGER NOT NULL,"
        " repo TEXT NOT NULL,"
        " labels TEXT NOT NULL,"
        " flavor TEXT NOT NULL,"
        " delivery_id TEXT NOT NULL,"
        " received_at INTEGER NOT NULL,"
        " done_at INTEGER NOT NULL DEFAULT 0,"
        " done_why TEXT NOT NULL DEFAULT '',"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " next_at INTEGER NOT NULL DEFAULT 0,"
        " runner_at INTEGER NOT NULL DEFAULT 0,"
        " checked_at INTEGER NOT NULL DEFAULT 0"
        ") STRICT;"
        "CREATE INDEX jobs_waiting ON jobs (done_at, flavor, next_at);",
        /* 3: the amqp queue's spool: jobs taken while the broker was away, until confirmed */
        "CREATE TABLE spool ("
        " job_id INTEGER PRIMARY KEY NOT NULL CHECK (job_id > 0),"
        " queue TEXT NOT NULL,"
        " body TEXT NOT NULL,"
        " spooled_at INTEGER NOT NULL"
        ") STRICT;"
        "CREATE INDEX spool_by_time ON spool (spooled_at, job_id);",
        /* 4: the waiting jobs oldest first, read in order up to a limit (ST_JOB_LIST)
         * instead of all of them sorted: a backlog of 50,000 cost 100 ms a look */
        "CREATE INDEX jobs_by_age ON jobs (done_at, received_at, job_id);",
        /* 5: the deliveries a log without an index on the id (random GUIDs:
         * each one recorded wrote a random page of that index); the index
         * by id is kept in memory (delivery_index.h) */
        "CREATE TABLE deliveries_log ("
        " id TEXT NOT NULL,"
        " received_at INTEGER NOT NULL"
        ") STRICT;"
        "INSERT INTO deliveries_log (id, received_at)"
        " SELECT id, received_at FROM deliveries ORDER BY received_at;"
        "DROP TABLE deliveries;"
        "ALTER TABLE deliveries_log RENAME TO deliveries;"
        "CREATE INDEX deliveries_by_time ON deliveries (received_at);",
};

const size_t store_n_migrations = ARRAY_SIZE(store_migrations);

#define INSTANCE_COLUMNS                                                                           \
	"name, flavor, provider, provider_id, phase, created_at, cloud_state, runner_id,"          \
	" seen_on_github, github_state, health, last_seen, busy_since"

#define JOB_COLUMNS                                                                                \
	"job_id, run_id, repo, labels, flavor, delivery_id, received_at, done_at, done_why,"       \
	" attempts, next_at, runner_at, checked_at"

const char *const store_stmt_sql[ST__MAX] = {
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
        /* no index on id: its index is in memory (delivery_index.h), which
         * says first whether the id is new */
        [ST_DELIVERY_ADD] = "INSERT INTO deliveries (id, received_at) VALUES (?1, ?2)",
        [ST_DELIVERY_FORGET] = "DELETE FROM deliveries WHERE rowid = ?1",
        [ST_DELIVERY_LOAD] = "SELECT rowid, id, received_at FROM deliveries",
        [ST_DELIVERY_PRUNE] = "DELETE FROM deliveries WHERE received_at < ?1 RETURNING rowid, id",
        /* a job known already (waiting, or a tombstone of one that no longer
         * waits) stays as it is: a late or repeated "queued" changes nothing */
        [ST_JOB_ADD] = "INSERT INTO jobs (" JOB_COLUMNS ")"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                       " ON CONFLICT (job_id) DO NOTHING",
        /* an unknown job becomes a tombstone, so its "queued" arriving late is ignored */
        [ST_JOB_DONE] =
                "INSERT INTO jobs (job_id, run_id, repo, labels, flavor, delivery_id,"
                " received_at, done_at, done_why) VALUES (?1, 0, '', '[]', '', '', ?2, ?2, ?3)"
                " ON CONFLICT (job_id) DO UPDATE SET done_at = excluded.done_at,"
                " done_why = excluded.done_why WHERE done_at = 0",
        [ST_JOB_UPDATE] = "UPDATE jobs SET attempts = ?2, next_at = ?3, runner_at = ?4,"
                          " checked_at = ?5 WHERE job_id = ?1 AND done_at = 0",
        [ST_JOB_LIST] = "SELECT " JOB_COLUMNS " FROM jobs WHERE done_at = 0"
                        " ORDER BY received_at, job_id LIMIT ?1",
        /* by the age index too: the rows not due are skipped, not returned */
        [ST_JOB_LIST_DUE] = "SELECT " JOB_COLUMNS " FROM jobs WHERE done_at = 0"
                            " AND max(received_at, checked_at, runner_at) <= ?2"
                            " ORDER BY received_at, job_id LIMIT ?1",
        [ST_JOB_GET] = "SELECT " JOB_COLUMNS " FROM jobs WHERE job_id = ?1",
        [ST_JOB_COUNT] = "SELECT count(*) FROM jobs WHERE done_at = 0 AND flavor = ?1"
                         " AND next_at <= ?2",
        [ST_JOB_PRUNE] = "DELETE FROM jobs WHERE done_at > 0 AND done_at < ?1",
        [ST_SPOOL_ADD] =
                "INSERT INTO spool (job_id, queue, body, spooled_at) VALUES (?1, ?2, ?3, ?4)"
                " ON CONFLICT (job_id) DO NOTHING",
        [ST_SPOOL_LIST] = "SELECT job_id, queue, body, spooled_at FROM spool"
                          " ORDER BY spooled_at, job_id LIMIT ?1",
        [ST_SPOOL_DELETE] = "DELETE FROM spool WHERE job_id = ?1",
        [ST_SPOOL_COUNT] = "SELECT count(*) FROM spool",
};
