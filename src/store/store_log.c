/*
 * The action log (what a pass did, bounded by log retention) and the small
 * durable settings (kv: the drain flag, ...).
 */
#include "util/common.h"
#include "store/store_internal.h"

int store_log_action(struct store *s, int64_t when, const char *action, const char *name,
                     const char *reason, const char *outcome, struct err *e)
{
	sqlite3_stmt *st;
	int r;

	if (!action || !*action)
		return err_set(e, -EINVAL, "state store: action log entry without an action");
	pthread_mutex_lock(&s->mu);
	r = store_stmt_get(s, ST_ACTION_LOG, &st, e);
	if (r == 0) {
		sqlite3_bind_int64(st, 1, when);
		store_bind_text(st, 2, action);
		store_bind_text(st, 3, name);
		store_bind_text(st, 4, reason);
		store_bind_text(st, 5, outcome);
		r = store_stmt_exec(s, st, e, "log action");
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

int store_count_actions(struct store *s, const char *action, int64_t *ret, struct err *e)
{
	sqlite3_stmt *st;
	int rc, r;

	pthread_mutex_lock(&s->mu);
	r = store_stmt_get(s, action ? ST_ACTION_COUNT : ST_ACTION_COUNT_ALL, &st, e);
	if (r < 0)
		goto out;
	if (action)
		store_bind_text(st, 1, action);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	else
		r = store_db_err(s->db, rc, e, "count actions");
	store_stmt_done(st);
out:
	pthread_mutex_unlock(&s->mu);
	return r;
}

int store_prune_actions(struct store *s, int64_t before, struct err *e)
{
	return store_exec_with_int(s, ST_ACTION_PRUNE, before, e, "prune actions");
}

int store_kv_set_locked(struct store *s, const char *key, const char *value, struct err *e)
{
	sqlite3_stmt *st;
	int r;

	if (!key || !*key || !value)
		return err_set(e, -EINVAL, "state store: setting without a key or value");
	if (strlen(value) > STORE_KV_MAX)
		return err_set(e, -E2BIG, "state store: setting %s: value too large", key);
	r = store_stmt_get(s, ST_KV_SET, &st, e);
	if (r == 0) {
		store_bind_text(st, 1, key);
		store_bind_text(st, 2, value);
		r = store_stmt_exec(s, st, e, "set setting");
	}
	return r;
}

int store_kv_set(struct store *s, const char *key, const char *value, struct err *e)
{
	int r;

	pthread_mutex_lock(&s->mu);
	r = store_kv_set_locked(s, key, value, e);
	pthread_mutex_unlock(&s->mu);
	return r;
}

int store_kv_get(struct store *s, const char *key, char **ret, struct err *e)
{
	sqlite3_stmt *st;
	char *v = NULL;
	int rc, r;

	pthread_mutex_lock(&s->mu);
	r = store_stmt_get(s, ST_KV_GET, &st, e);
	if (r < 0)
		goto out;
	store_bind_text(st, 1, key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = err_set(e, -ENOENT, "state store: setting %s is unset", key);
	} else if (rc != SQLITE_ROW) {
		r = store_db_err(s->db, rc, e, "get setting");
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
	store_stmt_done(st);
out:
	pthread_mutex_unlock(&s->mu);
	if (r == 0)
		*ret = v;
	return r;
}

int store_kv_delete(struct store *s, const char *key, struct err *e)
{
	return store_exec_with_text(s, ST_KV_DELETE, key, e, "delete setting");
}
