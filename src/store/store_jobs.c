/*
 * Reactive mode's tables: the webhook deliveries seen (dedup) and the jobs
 * of the sqlite queue. Rows are only what GitHub sent, checked by the
 * webhook module; a row this file cannot read back is an error, never a
 * guess.
 */
#include "util/common.h"
#include "store/store_internal.h"

static bool terminated(const char *v, size_t cap)
{
	return memchr(v, '\0', cap) != NULL;
}

static bool delivery_id_valid(const char *id)
{
	return id && *id && strnlen(id, STORE_DELIVERY_ID_MAX) < STORE_DELIVERY_ID_MAX;
}

/* Record id with s->mu held: 0 when new, -EEXIST when seen before. */
static int delivery_add_locked(struct store *s, const char *id, int64_t now, struct err *e)
{
	sqlite3_stmt *st;
	int r = store_stmt_get(s, ST_DELIVERY_ADD, &st, e);

	if (r < 0)
		return r;
	store_bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	r = store_stmt_exec(s, st, e, "add delivery");
	if (r == 0 && sqlite3_changes(s->db) == 0)
		r = -EEXIST;
	return r;
}

int store_delivery_add(struct store *s, const char *id, int64_t now, struct err *e)
{
	int r;

	if (!delivery_id_valid(id))
		return err_set(e, -EINVAL, "state store: bad delivery id");
	pthread_mutex_lock(&s->mu);
	r = delivery_add_locked(s, id, now, e);
	pthread_mutex_unlock(&s->mu);
	return r;
}

int store_delivery_forget(struct store *s, const char *id, struct err *e)
{
	return store_exec_with_text(s, ST_DELIVERY_FORGET, id, e, "forget delivery");
}

int store_delivery_seen(struct store *s, const char *id, bool *ret, struct err *e)
{
	struct store_reader *rd = &s->rd[STORE_READ_INTAKE];
	sqlite3_stmt *st;
	int rc, r;

	/* a reader: a commit under way on s->db does not hold this up */
	pthread_mutex_lock(&rd->mu);
	r = store_reader_stmt(s, STORE_READ_INTAKE, ST_DELIVERY_GET, &st, e);
	if (r == 0) {
		store_bind_text(st, 1, id);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW || rc == SQLITE_DONE)
			*ret = rc == SQLITE_ROW;
		else
			r = store_db_err(rd->db, rc, e, "get delivery");
		store_stmt_done(st);
	}
	pthread_mutex_unlock(&rd->mu);
	return r;
}

int store_delivery_prune(struct store *s, int64_t before, struct err *e)
{
	return store_exec_with_int(s, ST_DELIVERY_PRUNE, before, e, "prune deliveries");
}

static bool job_valid(const struct store_job *j)
{
	return j->job_id > 0 && terminated(j->repo, sizeof(j->repo)) &&
	       terminated(j->labels, sizeof(j->labels)) &&
	       terminated(j->flavor, sizeof(j->flavor)) && j->flavor[0] &&
	       terminated(j->delivery_id, sizeof(j->delivery_id)) &&
	       terminated(j->done_why, sizeof(j->done_why));
}

/* Add j (valid) with s->mu held: 0, -EEXIST when its id is known. */
static int job_add_locked(struct store *s, const struct store_job *j, struct err *e)
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

	if (!job_valid(j))
		return err_set(e, -EINVAL,
		               "state store: job with a bad id or an unterminated field");
	pthread_mutex_lock(&s->mu);
	r = job_add_locked(s, j, e);
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* Mark job_id done with s->mu held. */
static int job_done_locked(struct store *s, int64_t job_id, const char *why, int64_t now,
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
	r = job_done_locked(s, job_id, why, now, e);
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

/* One delivery of store_intake_write, with s->mu held and a transaction open. */
static int intake_one(struct store *s, struct store_intake *in, struct err *e)
{
	int r = delivery_add_locked(s, in->delivery_id, in->received_at, e);

	in->seen = r == -EEXIST;
	in->job_known = false;
	if (r < 0)
		return in->seen ? 0 : r;
	switch (in->op) {
	case STORE_INTAKE_JOB_ADD:
		r = job_add_locked(s, &in->job, e);
		in->job_known = r == -EEXIST;
		return in->job_known ? 0 : r;
	case STORE_INTAKE_JOB_DONE:
		return job_done_locked(s, in->job.job_id, in->job.done_why, in->job.done_at, e);
	default:
		return 0;
	}
}

static bool intake_valid(const struct store_intake *in)
{
	if (!delivery_id_valid(in->delivery_id))
		return false;
	switch (in->op) {
	case STORE_INTAKE_RECORD:
		return true;
	case STORE_INTAKE_JOB_ADD:
		return job_valid(&in->job);
	case STORE_INTAKE_JOB_DONE:
		return in->job.job_id > 0 && in->job.done_at > 0 &&
		       terminated(in->job.done_why, sizeof(in->job.done_why));
	default:
		return false;
	}
}

int store_intake_write(struct store *s, struct store_intake *const *v, size_t n, struct err *e)
{
	int rc, r = 0;

	for (size_t i = 0; i < n; i++)
		if (!intake_valid(v[i]))
			return err_set(e, -EINVAL, "state store: a delivery with a bad id or job");
	if (n == 0)
		return 0;
	pthread_mutex_lock(&s->mu);
	/* IMMEDIATE: the write lock first, so no statement of it meets SQLITE_BUSY halfway */
	rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = store_db_err(s->db, rc, e, "begin deliveries");
		goto out;
	}
	for (size_t i = 0; r == 0 && i < n; i++)
		r = intake_one(s, v[i], e);
	if (r == 0) {
		/* synchronous = FULL: the one fsync of the whole batch */
		rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			r = store_db_err(s->db, rc, e, "commit deliveries");
	}
	if (r < 0 && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
out:
	pthread_mutex_unlock(&s->mu);
	return r;
}
