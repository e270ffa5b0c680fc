/*
 * The queue front: picks the backend by the config's kind and checks
 * arguments once for every backend. It must never hold a job of its own:
 * what waits lives in the backend (the state database, the broker).
 */
#include "util/common.h"
#include "queue/queue.h"

int queue_open(const struct config *cfg, struct store *store, struct queue **ret, struct err *e)
{
	switch (cfg->queue.kind) {
	case QUEUE_SQLITE:
		return queue_sqlite_open(store, ret, e);
	case QUEUE_AMQP:
		return queue_amqp_open(cfg, store, ret, e);
	default:
		return err_set(e, -EOPNOTSUPP, "queue: unknown kind %d", (int)cfg->queue.kind);
	}
}

const char *queue_name(const struct queue *q)
{
	return q ? q->ops->name : "none";
}

static bool job_ok(const struct queue_job *j)
{
	return j->job_id > 0 && memchr(j->repo, '\0', sizeof(j->repo)) &&
	       memchr(j->labels, '\0', sizeof(j->labels)) &&
	       memchr(j->flavor, '\0', sizeof(j->flavor)) && j->flavor[0] &&
	       memchr(j->delivery_id, '\0', sizeof(j->delivery_id));
}

int queue_push(struct queue *q, const struct queue_job *j, struct err *e)
{
	if (!job_ok(j))
		return err_set(e, -EINVAL,
		               "queue: a job without an id, a flavor, or a field's end");
	return q->ops->push(q, j, e);
}

int queue_ack(struct queue *q, int64_t job_id, const char *why, int64_t now, struct err *e)
{
	if (job_id <= 0)
		return err_set(e, -EINVAL, "queue: ack without a job id");
	return q->ops->ack(q, job_id, why, now, e);
}

int queue_count(struct queue *q, const char *flavor, int64_t now, int64_t *ret, struct err *e)
{
	return q->ops->count(q, flavor, now, ret, e);
}

int queue_list(struct queue *q, size_t max, struct queue_job_list *ret, struct err *e)
{
	return q->ops->list(q, max, ret, e);
}

/* Whether j did not change after before. */
static bool unchanged_since(const struct queue_job *j, int64_t before)
{
	return j->received_at <= before && j->runner_at <= before && j->checked_at <= before;
}

/* Jobs a backend without list_due lists at most, to keep the due ones of. */
#define LIST_DUE_SCAN 2000

int queue_list_due(struct queue *q, int64_t before, size_t max, struct queue_job_list *ret,
                   struct err *e)
{
	struct queue_job_list l = {0};
	size_t n = 0;
	int r;

	if (q->ops->list_due)
		return q->ops->list_due(q, before, max, ret, e);
	r = q->ops->list(q, LIST_DUE_SCAN, &l, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < l.n && n < max; i++)
		if (unchanged_since(&l.v[i], before))
			l.v[n++] = l.v[i];
	l.n = n;
	queue_job_list_release(ret);
	*ret = l;
	return 0;
}

int queue_update(struct queue *q, const struct queue_job *j, struct err *e)
{
	if (!job_ok(j))
		return err_set(e, -EINVAL,
		               "queue: a job without an id, a flavor, or a field's end");
	return q->ops->update(q, j, e);
}

int queue_prune(struct queue *q, int64_t before, struct err *e)
{
	return q->ops->prune(q, before, e);
}

int queue_health(struct queue *q, struct err *e)
{
	return q->ops->health(q, e);
}

void queue_set_notify(struct queue *q, void (*fn)(void *), void *ctx)
{
	if (q->ops->set_notify)
		q->ops->set_notify(q, fn, ctx);
}

int queue_spooled(struct queue *q, int64_t *ret, struct err *e)
{
	*ret = 0;
	return q->ops->spooled ? q->ops->spooled(q, ret, e) : 0;
}

int queue_reload(struct queue *q, const struct config *cfg, struct err *e)
{
	return q->ops->reload ? q->ops->reload(q, cfg, e) : 0;
}

#ifndef HAVE_LIBRABBITMQ
int queue_amqp_open(const struct config *cfg, struct store *store, struct queue **ret,
                    struct err *e)
{
	return err_set(e, -EOPNOTSUPP,
	               "queue: kind amqp: this runnerd was built without librabbitmq");
}
#endif

void queue_free(struct queue *q)
{
	if (q)
		q->ops->free(q);
}

void queue_job_list_release(struct queue_job_list *l)
{
	if (!l)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
