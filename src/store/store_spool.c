/*
 * The amqp queue's spool (store.h): messages a webhook brought while the
 * broker was away, kept until the broker confirmed them. A row is the
 * message as it will be published; this file never reads into it.
 */
#include "util/common.h"
#include "store/store_internal.h"

static bool fits(const char *v, size_t cap)
{
	return store_field_terminated(v, cap) && *v;
}

int store_spool_add(struct store *s, const struct store_spooled *m, struct err *e)
{
	sqlite3_stmt *st;
	int r;

	if (m->job_id <= 0 || !fits(m->queue, sizeof(m->queue)) || !fits(m->body, sizeof(m->body)))
		return err_set(e, -EINVAL,
		               "state store: a spooled message without a job, a queue "
		               "or a body");
	pthread_mutex_lock(&s->mu);
	r = store_stmt_get(s, ST_SPOOL_ADD, &st, e);
	if (r == 0) {
		sqlite3_bind_int64(st, 1, m->job_id);
		store_bind_text(st, 2, m->queue);
		store_bind_text(st, 3, m->body);
		sqlite3_bind_int64(st, 4, m->spooled_at);
		r = store_stmt_exec(s, st, e, "spool a message");
		if (r == 0 && sqlite3_changes(s->db) == 0)
			r = -EEXIST;
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

int store_spool_list(struct store *s, size_t max, struct store_spool_list *ret, struct err *e)
{
	struct store_spool_list l = {0};
	sqlite3_stmt *st;
	int rc = SQLITE_DONE, r;

	if (max > 1024)
		max = 1024; /* rows are 8 KiB each: a caller takes them in small batches */
	if (max && !(l.v = calloc(max, sizeof(*l.v))))
		return err_set(e, -ENOMEM, "state store: out of memory");
	pthread_mutex_lock(&s->mu);
	r = store_stmt_get(s, ST_SPOOL_LIST, &st, e);
	if (r < 0)
		goto out;
	sqlite3_bind_int64(st, 1, (int64_t)max);
	while (l.n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_spooled *m = &l.v[l.n];

		m->job_id = sqlite3_column_int64(st, 0);
		m->spooled_at = sqlite3_column_int64(st, 3);
		if (store_column_copy(st, 1, m->queue, sizeof(m->queue)) < 0 ||
		    store_column_copy(st, 2, m->body, sizeof(m->body)) < 0) {
			r = err_set(e, -EBADMSG, "state store: an unreadable spool row");
			break;
		}
		l.n++;
	}
	if (r == 0 && l.n < max && rc != SQLITE_DONE)
		r = store_db_err(s->db, rc, e, "list the spool");
	store_stmt_done(st);
out:
	pthread_mutex_unlock(&s->mu);
	if (r < 0) {
		store_spool_list_release(&l);
		return r;
	}
	store_spool_list_release(ret);
	*ret = l;
	return 0;
}

void store_spool_list_release(struct store_spool_list *l)
{
	if (!l)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int store_spool_delete(struct store *s, int64_t job_id, struct err *e)
{
	return store_exec_with_int(s, ST_SPOOL_DELETE, job_id, e, "delete a spooled message");
}

int store_spool_count(struct store *s, int64_t *ret, struct err *e)
{
	sqlite3_stmt *st;
	int rc, r;

	pthread_mutex_lock(&s->mu);
	r = store_stmt_get(s, ST_SPOOL_COUNT, &st, e);
	if (r == 0) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			*ret = sqlite3_column_int64(st, 0);
		else
			r = store_db_err(s->db, rc, e, "count the spool");
		store_stmt_done(st);
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}
