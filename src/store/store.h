/*
 * The state store: one SQLite file (<state_dir>/state.db, WAL, mode 0600)
 * with versioned migrations. All SQL of runnerd lives in store_schema.c.
 *
 * Invariant the manager relies on: a runner's name is written here (phase
 * CREATING) before anything is created for it on the provider or on GitHub,
 * so a crash at any point leaves nothing unaccounted for.
 *
 * A store handle may be used from several threads (SQLite serialized mode,
 * one connection, busy timeout); every write is durable when the call returns.
 */
#ifndef RUNNERD_STORE_H
#define RUNNERD_STORE_H

#include "util/common.h"
#include "util/err.h"
#include "util/words.h"

struct store;

enum store_phase {
	PHASE_CREATING = 0, /* name reserved; provider create not yet confirmed */
	PHASE_CREATED,      /* the provider confirmed the instance */
	PHASE_DELETING,     /* a delete was decided; the row goes when it is done */
};

const char *store_phase_name(enum store_phase p);

struct store_instance {
	char name[INSTANCE_NAME_MAX];
	char flavor[FLAVOR_NAME_MAX];
	char provider[PROVIDER_NAME_MAX];
	char provider_id[PROVIDER_ID_MAX];
	enum store_phase phase;
	int64_t created_at; /* unix seconds: when the name was reserved */
	enum cloud_state cloud_state;
	int64_t runner_id;   /* 0 until known */
	bool seen_on_github; /* the runner was ever listed on GitHub */
	enum github_state github_state;
	enum health health;
	int64_t last_seen;  /* last time GitHub listed it, 0 never */
	int64_t busy_since; /* when it was first seen busy, 0 when not busy */
};

struct store_instance_list {
	struct store_instance *v;
	size_t n;
};

/*
 * Open (creating and migrating) <state_dir>/state.db. The directory is created
 * 0700, the file (and its -wal/-shm) 0600. -ENOTSUP for a file written by a
 * newer runnerd (its schema version is beyond ours): it is never downgraded.
 */
int store_open(const char *state_dir, struct store **ret, struct err *e);
void store_close(struct store *s);
/* The schema version the file is at after store_open. */
int store_schema_version(struct store *s);

/* Insert or replace the row with this name. */
int store_instance_put(struct store *s, const struct store_instance *in, struct err *e);
/* -ENOENT when there is no row. */
int store_instance_get(struct store *s, const char *name, struct store_instance *ret,
                       struct err *e);
/* Every row, oldest first; *ret is replaced (its old contents released). */
int store_instance_list(struct store *s, struct store_instance_list *ret, struct err *e);
void store_instance_list_release(struct store_instance_list *l);
/* Missing is success. */
int store_instance_delete(struct store *s, const char *name, struct err *e);

/* The log of actions taken: what, on which name, why, and the outcome ("ok" or the error). */
int store_log_action(struct store *s, int64_t when, const char *action, const char *name,
                     const char *reason, const char *outcome, struct err *e);
/* Count log rows (tests, status). action may be NULL for all. */
int store_count_actions(struct store *s, const char *action, int64_t *ret, struct err *e);
/* Forget log rows older than before (unix seconds), so the log stays bounded. */
int store_prune_actions(struct store *s, int64_t before, struct err *e);

/* Small durable settings (e.g. "drain" = "1"). get: -ENOENT when unset; *ret malloc'ed. */
int store_kv_set(struct store *s, const char *key, const char *value, struct err *e);
int store_kv_get(struct store *s, const char *key, char **ret, struct err *e);
int store_kv_delete(struct store *s, const char *key, struct err *e);

/*
 * One daemon per state dir: an exclusive flock on <state_dir>/runnerd.lock
 * (mode 0600). -EWOULDBLOCK when another process holds it. *ret_fd keeps it.
 */
int store_lock(const char *state_dir, int *ret_fd, struct err *e);
void store_unlock(int fd);

#endif
