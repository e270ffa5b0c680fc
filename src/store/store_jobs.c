/*
 * The jobs of the sqlite queue (reactive mode; the deliveries seen are in
 * store_deliveries.c, the intake's batches in store_intake.c). Rows are
 * only what GitHub sent, checked by the webhook module; a row this file
 * cannot read back is an error, never a guess.
 */
#include "util/common.h"
#include "store/store_internal.h"

bool store_job_valid(const struct store_job *j)
{
	return j->job_id > 0 && store_field_terminated(j->repo, sizeof(j->repo)) &&
	       store_field_terminated(j->labels, sizeof(j->labels)) &&
	       store_field_terminated(j->flavor, sizeof(j->flavor)) && j->flavor[0] &&
	       store_field_terminated(j->delivery_id, sizeof(j->delivery_id)) &&
	       store_field_terminated(j->done_why, sizeof(j->done_why));
}

int store_job_add_locked(struct store *s, const struct store_job *j, struct err *e)
{
	sqlite3_stmt *st;
	int r = store_stmt_get(s, ST_JOB_ADD, &st, e);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, j->job_id);
	sqlite3_bind_int64(st, 2, j->run_id);
	store_bind_text(st, 3, j->repo);
	store_bind_text(st, 4, j->labels);
	store_bind_text(st, 5, j->flavor);
	store_bind_text(st, 6, j->delivery_id);
	sqlite3_bind_int64(st, 7, j->received_at);
	sqlite3_bind_int64(st, 8, j->done_at);
	store_bind_text(st, 9, j->done_why);
	sqlite3_bind_int64(st, 10, j->attempts);
	sqlite3_bind_int64(st, 11, j->next_at);
	sqlite3_bind_int64(st, 12, j->runner_at);
	sqlite3_bind_int64(st, 13, j->checked_at);
	r = store_stmt_exec(s, st, e, "add job");
	if (r == 0 && sqlite3_changes(s->db) == 0)
		r = -EEXIST;
	return r;
}

int store_job_add(struct store *s, const struct store_job *j, struct err *e)
{
	int r;

	if (!store_job_valid(j))
		return err_set(e, -EINVAL,
		               "state store: job with a bad id or an unterminated field");
	pthread_mutex_lock(&s->mu);
	r = store_job_add_locked(s, j, e);
	pthread_mutex_unlock(&s->mu);
	return r;
}

int store_job_done_locked(struct store *s, int64_t job_id, const char *why, int64_t now,
                          struct err *e)
{
	sqlite3_stmt *st;
	int r = store_stmt_get(s, ST_JOB_DONE, &st, e);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, job_id);
	sqlite3_bind_int64(st, 2, now);
	store_bind_text(st, 3, why && *why ? why : "done");
	return store_stmt_exec(s, st, e, "mark job done");
}

int store_job_done(struct store *s, int64_t job_id, const char *why, int64_t now, struct err *e)
{
	int r;

	if (job_id <= 0 || now <= 0)
		return err_set(e, -EINVAL, "state store: job done without an id or a time");
	pthread_mutex_lock(&s->mu);
	r = store_job_done_locked(s, job_id, why, now, e);
	pthread_mutex_unlock(&s->mu);
	return r;
}

int store_job_update(struct store *s, const struct store_job *j, struct err *e)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&s->mu);
	r = store_stmt_get(s, ST_JOB_UPDATE, &st, e);
	if (r == 0) {
		sqlite3_bind_int64(st, 1, j->job_id);
		sqlite3_bind_int64(st, 2, j->attempts);
		sqlite3_bind_int64(st, 3, j->next_at);
		sqlite3_bind_int64(st, 4, j->runner_at);
		sqlite3_bind_int64(st, 5, j->checked_at);
		r = store_stmt_exec(s, st, e, "update job");
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* One row of JOB_COLUMNS into *ret; -EBADMSG for a row we cannot read. */
static int row_to_job(sqlite3_stmt *st, struct store_job *ret)
{
	struct store_job j;

	memset(&j, 0, sizeof(j));
	j.job_id = sqlite3_column_int64(st, 0);
	j.run_id = sqlite3_column_int64(st, 1);
	if (store_column_copy(st, 2, j.repo, sizeof(j.repo)) < 0 ||
	    store_column_copy(st, 3, j.labels, sizeof(j.labels)) < 0 ||
	    store_column_copy(st, 4, j.flavor, sizeof(j.flavor)) < 0 ||
	    store_column_copy(st, 5, j.delivery_id, sizeof(j.delivery_id)) < 0 ||
	    store_column_copy(st, 8, j.done_why, sizeof(j.done_why)) < 0)
		return -EBADMSG;
	j.received_at = sqlite3_column_int64(st, 6);
	j.done_at = sqlite3_column_int64(st, 7);
	j.attempts = sqlite3_column_int64(st, 9);
	j.next_at = sqlite3_column_int64(st, 10);
	j.runner_at = sqlite3_column_int64(st, 11);
	j.checked_at = sqlite3_column_int64(st, 12);
	*ret = j;
	return 0;
}

int store_job_get(struct store *s, int64_t job_id, struct store_job *ret, struct err *e)
{
	sqlite3_stmt *st;
	int rc, r;

	pthread_mutex_lock(&s->mu);
	r = store_stmt_get(s, ST_JOB_GET, &st, e);
	if (r < 0)
		goto out;
	sqlite3_bind_int64(st, 1, job_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		r = err_set(e, -ENOENT, "state store: job %" PRId64 " is unknown", job_id);
	else if (rc != SQLITE_ROW)
		r = store_db_err(s->db, rc, e, "get job");
	else if (row_to_job(st, ret) < 0)
		r = err_set(e, -EBADMSG, "state store: job %" PRId64 ": unreadable row", job_id);
	store_stmt_done(st);
out:
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* The rows stmt (on the pass's reader) returns, at most max (bound as ?1; before as ?2). */
static int list_jobs(struct store *s, int stmt, size_t max, int64_t before,
                     struct store_job_list *ret, struct err *e)
{
	struct store_reader *rd = &s->rd[STORE_READ_PASS];
	struct store_job_list l = {0};
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc, r;

	if (max > STORE_LIST_MAX)
		max = STORE_LIST_MAX;
	/* a reader: a long queue listed does not hold up the intake's commits */
	pthread_mutex_lock(&rd->mu);
	r = store_reader_stmt(s, STORE_READ_PASS, stmt, &st, e);
	if (r < 0)
		goto out;
	sqlite3_bind_int64(st, 1, (int64_t)max);
	if (stmt == ST_JOB_LIST_DUE)
		sqlite3_bind_int64(st, 2, before);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (l.n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct store_job *nv = realloc(l.v, ncap * sizeof(*nv));
			if (!nv) {
				r = err_set(e, -ENOMEM, "state store: out of memory");
				break;
			}
			l.v = nv;
			cap = ncap;
		}
		if (row_to_job(st, &l.v[l.n]) < 0) {
			r = err_set(e, -EBADMSG, "state store: an unreadable job row");
			break;
		}
		l.n++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_err(rd->db, rc, e, "list jobs");
	store_stmt_done(st);
out:
	pthread_mutex_unlock(&rd->mu);
	if (r < 0) {
		store_job_list_release(&l);
		return r;
	}
	store_job_list_release(ret);
	*ret = l;
	return 0;
}

int store_job_list_waiting(struct store *s, size_t max, struct store_job_list *ret, struct err *e)
{
	return list_jobs(s, ST_JOB_LIST, max, 0, ret, e);
}

int store_job_list_due(struct store *s, int64_t before, size_t max, struct store_job_list *ret,
                       struct err *e)
{
	return list_jobs(s, ST_JOB_LIST_DUE, max, before, ret, e);
}

void store_job_list_release(struct store_job_list *l)
{
	if (!l)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int store_job_count_waiting(struct store *s, const char *flavor, int64_t now, int64_t *ret,
                            struct err *e)
{
	struct store_reader *rd = &s->rd[STORE_READ_PASS];
	sqlite3_stmt *st;
	int rc, r;

	/* a reader: counting a long queue does not hold up the intake's commits */
	pthread_mutex_lock(&rd->mu);
	r = store_reader_stmt(s, STORE_READ_PASS, ST_JOB_COUNT, &st, e);
	if (r < 0)
		goto out;
	store_bind_text(st, 1, flavor);
	sqlite3_bind_int64(st, 2, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	else
		r = store_db_err(rd->db, rc, e, "count jobs");
	store_stmt_done(st);
out:
	pthread_mutex_unlock(&rd->mu);
	return r;
}

int store_job_prune(struct store *s, int64_t before, struct err *e)
{
	return store_exec_with_int(s, ST_JOB_PRUNE, before, e, "prune jobs");
}
