/*
 * The `sqlite` queue: the jobs table of the state database (store_jobs.c
 * holds the SQL). One host, no broker: durable as soon as push returns,
 * and what a restarted daemon finds is what waited before. The intake
 * writes its pushes and acks straight to the store, each in the same
 * transaction as its delivery (queue_sqlite_store). It must never keep a
 * job anywhere but the store.
 */
#include "util/common.h"
#include "queue/queue.h"

struct queue_sqlite {
	struct queue q; /* first */
	struct store *store;
};

static struct store *store_of(struct queue *q)
{
	return ((struct queue_sqlite *)q)->store;
}

/* The field sizes match (store.h, queue.h): a copy never cuts. */
_Static_assert(QUEUE_REPO_MAX == STORE_JOB_REPO_MAX, "repo sizes differ");
_Static_assert(QUEUE_LABELS_MAX == STORE_JOB_LABELS_MAX, "labels sizes differ");
_Static_assert(QUEUE_DELIVERY_MAX == STORE_DELIVERY_ID_MAX, "delivery id sizes differ");

void queue_sqlite_row(const struct queue_job *j, struct store_job *row)
{
	memset(row, 0, sizeof(*row));
	row->job_id = j->job_id;
	row->run_id = j->run_id;
	memcpy(row->repo, j->repo, sizeof(row->repo));
	memcpy(row->labels, j->labels, sizeof(row->labels));
	memcpy(row->flavor, j->flavor, sizeof(row->flavor));
	memcpy(row->delivery_id, j->delivery_id, sizeof(row->delivery_id));
	row->received_at = j->received_at;
	row->attempts = j->attempts;
	row->next_at = j->next_at;
	row->runner_at = j->runner_at;
	row->checked_at = j->checked_at;
}

static void from_row(const struct store_job *row, struct queue_job *j)
{
	memset(j, 0, sizeof(*j));
	j->job_id = row->job_id;
	j->run_id = row->run_id;
	memcpy(j->repo, row->repo, sizeof(j->repo));
	memcpy(j->labels, row->labels, sizeof(j->labels));
	memcpy(j->flavor, row->flavor, sizeof(j->flavor));
	memcpy(j->delivery_id, row->delivery_id, sizeof(j->delivery_id));
	j->received_at = row->received_at;
	j->attempts = row->attempts;
	j->next_at = row->next_at;
	j->runner_at = row->runner_at;
	j->checked_at = row->checked_at;
}

static int sq_push(struct queue *q, const struct queue_job *j, struct err *e)
{
	struct store_job row;

	queue_sqlite_row(j, &row);
	return store_job_add(store_of(q), &row, e);
}

static int sq_ack(struct queue *q, int64_t job_id, const char *why, int64_t now, struct err *e)
{
	return store_job_done(store_of(q), job_id, why, now, e);
}

static int sq_count(struct queue *q, const char *flavor, int64_t now, int64_t *ret, struct err *e)
{
	return store_job_count_waiting(store_of(q), flavor, now, ret, e);
}

/* rows as the queue's jobs, replacing *ret (rows is released). */
static int jobs_of_rows(struct store_job_list *rows, struct queue_job_list *ret, struct err *e)
{
	struct queue_job_list l = {0};

	if (rows->n && !(l.v = calloc(rows->n, sizeof(*l.v)))) {
		store_job_list_release(rows);
		return err_set(e, -ENOMEM, "queue: out of memory");
	}
	for (; l.n < rows->n; l.n++)
		from_row(&rows->v[l.n], &l.v[l.n]);
	store_job_list_release(rows);
	queue_job_list_release(ret);
	*ret = l;
	return 0;
}

static int sq_list(struct queue *q, size_t max, struct queue_job_list *ret, struct err *e)
{
	struct store_job_list rows = {0};
	int r = store_job_list_waiting(store_of(q), max, &rows, e);

	return r < 0 ? r : jobs_of_rows(&rows, ret, e);
}

static int sq_list_due(struct queue *q, int64_t before, size_t max, struct queue_job_list *ret,
                       struct err *e)
{
	struct store_job_list rows = {0};
	int r = store_job_list_due(store_of(q), before, max, &rows, e);

	return r < 0 ? r : jobs_of_rows(&rows, ret, e);
}

static int sq_update(struct queue *q, const struct queue_job *j, struct err *e)
{
	struct store_job row;

	queue_sqlite_row(j, &row);
	return store_job_update(store_of(q), &row, e);
}

static int sq_prune(struct queue *q, int64_t before, struct err *e)
{
	return store_job_prune(store_of(q), before, e);
}

static int sq_health(struct queue *q, struct err *e)
{
	int64_t n;

	/* the same file the passes write: a query that answers is a queue that works */
	return store_job_count_waiting(store_of(q), "", 0, &n, e);
}

static void sq_free(struct queue *q)
{
	free(q);
}

static const struct queue_ops sqlite_ops = {
        .name = "sqlite",
        .push = sq_push,
        .ack = sq_ack,
        .count = sq_count,
        .list = sq_list,
        .list_due = sq_list_due,
        .update = sq_update,
        .prune = sq_prune,
        .health = sq_health,
        .free = sq_free,
};

struct store *queue_sqlite_store(const struct queue *q)
{
	return q && q->ops == &sqlite_ops ? ((const struct queue_sqlite *)q)->store : NULL;
}

int queue_sqlite_open(struct store *store, struct queue **ret, struct err *e)
{
	struct queue_sqlite *q;

	if (!store)
		return err_set(e, -EINVAL, "queue sqlite: no state store");
	q = calloc(1, sizeof(*q));
	if (!q)
		return err_set(e, -ENOMEM, "queue sqlite: out of memory");
	q->q.ops = &sqlite_ops;
	q->store = store;
	*ret = &q->q;
	return 0;
}
