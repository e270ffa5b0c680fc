/*
 * The `amqp` queue: RabbitMQ (AMQP 0-9-1), so several managers share one
 * stream of jobs. One durable queue per flavor, "<prefix>.<flavor>"
 * (queue.prefix); a job is a persistent message published with a publisher
 * confirm. A manager's waiting jobs are the messages the broker delivered
 * to it and it has not acknowledged yet: at most the prefetch per flavor
 * (the flavor's max, so a manager never holds more jobs than it could give
 * runners to while other managers idle). ack is basic.ack of the message's
 * delivery tag; a manager that dies, or loses its connection, holding
 * messages loses none: the broker redelivers them (to another manager, or to
 * this one once it is back).
 *
 * Beyond one manager:
 * - a job that no longer waits is announced on the fanout exchange
 *   "<prefix>.state"; each manager binds an exclusive queue of its own to
 *   it and acks the job's message at once if it holds it (the webhook may
 *   have gone to another manager than the one holding the job);
 * - a push while the broker is away is kept in the state store's spool and
 *   published (confirmed, then deleted) when it is back: the webhook's 202
 *   holds;
 * - a retry's bookkeeping (attempts, backoff) travels in the message: the
 *   held message is republished with it and acked once the copy is
 *   confirmed, so a redelivery to another manager keeps the count.
 *
 * Threads (librabbitmq is not thread-safe per connection): the consumer
 * (queue_amqp_consume.c) and the publisher (queue_amqp_publish.c), each
 * with its connection; other threads hand them work through this struct.
 */
#include "util/common.h"
#include "queue/queue_internal.h"
#include "util/clock.h"
#include "util/strutil.h"

#include <sys/random.h>

/* Prefetch per flavor at most. */
#define AMQP_PREFETCH_MAX 100

static struct queue_amqp *of(struct queue *q)
{
	return (struct queue_amqp *)q;
}

/* ---- the held table and the done ring (under lock) ---- */

bool amqp_is_done(struct queue_amqp *a, int64_t job_id)
{
	for (size_t i = 0; i < a->n_done; i++)
		if (a->done[i].job_id == job_id)
			return true;
	return false;
}

bool amqp_mark_done(struct queue_amqp *a, int64_t job_id, int64_t now)
{
	if (amqp_is_done(a, job_id))
		return false;
	a->done[a->next_done] = (struct amqp_done){job_id, now};
	a->next_done = (a->next_done + 1) % AMQP_DONE_MAX;
	if (a->n_done < AMQP_DONE_MAX)
		a->n_done++;
	return true;
}

struct amqp_held *amqp_find_held(struct queue_amqp *a, int64_t job_id)
{
	for (size_t i = 0; i < a->n_held; i++)
		if (!a->held[i].acked && a->held[i].j.job_id == job_id)
			return &a->held[i];
	return NULL;
}

/* ---- the operations ---- */

static int am_push(struct queue *q, const struct queue_job *j, struct err *e)
{
	struct queue_amqp *a = of(q);
	char name[AMQP_QNAME_MAX + 1], body[AMQP_MSG_MAX];
	struct err pe = {0};
	size_t len;
	bool known;
	int r;

	pthread_mutex_lock(&a->lock);
	known = amqp_is_done(a, j->job_id) || amqp_find_held(a, j->job_id);
	pthread_mutex_unlock(&a->lock);
	if (known)
		return -EEXIST; /* what this manager knows; other managers dedupe on delivery */
	r = amqp_queue_name(a->prefix, j->flavor, name, sizeof(name), e);
	if (r < 0)
		return r;
	r = amqp_msg_encode(j, body, sizeof(body), &len, e);
	if (r < 0)
		return r;
	body[len] = '\0';
	r = amqp_pub_send(a, "", name, body, len, AMQP_PUSH_BUDGET_MS, &pe);
	if (r == 0)
		return 0;
	/* the broker is away (or refused it): kept here until it takes it */
	r = amqp_spool(a, j->job_id, name, body, e);
	if (r == 0 || r == -EEXIST)
		return r;
	return err_set(e, pe.code ? pe.code : r, "%s (and not spooled: %s)", pe.msg, e->msg);
}

static int am_ack(struct queue *q, int64_t job_id, const char *why, int64_t now, struct err *e)
{
	struct queue_amqp *a = of(q);
	struct amqp_held *h;

	pthread_mutex_lock(&a->lock);
	if (amqp_mark_done(a, job_id, now)) {
		/* tell the other managers: whoever holds it lets it go at once */
		if (a->n_announce == AMQP_ANNOUNCE_MAX) {
			memmove(a->announce, a->announce + 1,
			        (AMQP_ANNOUNCE_MAX - 1) * sizeof(a->announce[0]));
			a->n_announce--;
		}
		a->announce[a->n_announce].job_id = job_id;
		str_copy(a->announce[a->n_announce].why, why ? why : "", QUEUE_WHY_MAX);
		a->n_announce++;
		pthread_cond_signal(&a->pub_wake);
	}
	while ((h = amqp_find_held(a, job_id)) != NULL)
		h->acked = true; /* the consumer thread sends it within its poll */
	pthread_mutex_unlock(&a->lock);
	return 0;
}

static int am_count(struct queue *q, const char *flavor, int64_t now, int64_t *ret, struct err *e)
{
	struct queue_amqp *a = of(q);
	int64_t n = 0;

	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->n_held; i++) {
		const struct amqp_held *h = &a->held[i];
		if (!h->acked && h->j.next_at <= now &&
		    (!*flavor || strcmp(h->j.flavor, flavor) == 0))
			n++;
	}
	pthread_mutex_unlock(&a->lock);
	*ret = n;
	return 0;
}

static int by_age(const void *x, const void *y)
{
	const struct queue_job *a = x, *b = y;

	if (a->received_at != b->received_at)
		return a->received_at < b->received_at ? -1 : 1;
	return a->job_id < b->job_id ? -1 : a->job_id > b->job_id;
}

static int am_list(struct queue *q, size_t max, struct queue_job_list *ret, struct err *e)
{
	struct queue_amqp *a = of(q);
	struct queue_job_list l = {0};

	pthread_mutex_lock(&a->lock);
	if (a->n_held && !(l.v = calloc(a->n_held, sizeof(*l.v)))) {
		pthread_mutex_unlock(&a->lock);
		return err_set(e, -ENOMEM, "queue amqp: out of memory");
	}
	for (size_t i = 0; i < a->n_held; i++)
		if (!a->held[i].acked)
			l.v[l.n++] = a->held[i].j;
	pthread_mutex_unlock(&a->lock);
	qsort(l.v, l.n, sizeof(*l.v), by_age);
	if (l.n > max)
		l.n = max;
	queue_job_list_release(ret);
	*ret = l;
	return 0;
}

static struct amqp_held *find_tag(struct queue_amqp *a, uint64_t gen, uint64_t tag)
{
	for (size_t i = 0; i < a->n_held; i++)
		if (a->held[i].gen == gen && a->held[i].tag == tag)
			return &a->held[i];
	return NULL;
}

/*
 * The bookkeeping of a held job. When it waits again with a new attempts
 * count (a retry), its message is republished carrying it and the old one
 * acked once the copy is confirmed; until then (or if the broker is away)
 * the count lives here only.
 */
static int am_update(struct queue *q, const struct queue_job *j, struct err *e)
{
	struct queue_amqp *a = of(q);
	char name[AMQP_QNAME_MAX + 1], body[AMQP_MSG_MAX];
	struct queue_job copy;
	struct amqp_held *h;
	uint64_t gen = 0, tag = 0;
	bool carry = false;
	size_t len;
	int r;

	pthread_mutex_lock(&a->lock);
	h = amqp_find_held(a, j->job_id);
	if (h) {
		h->j.attempts = j->attempts;
		h->j.next_at = j->next_at;
		h->j.runner_at = j->runner_at;
		h->j.checked_at = j->checked_at;
		carry = j->runner_at == 0 && j->attempts != h->msg_attempts && !h->replacing;
		if (carry) {
			h->replacing = true;
			copy = h->j;
			gen = h->gen;
			tag = h->tag;
		}
	}
	pthread_mutex_unlock(&a->lock);
	if (!carry)
		return 0;
	r = amqp_queue_name(a->prefix, copy.flavor, name, sizeof(name), e);
	if (r == 0)
		r = amqp_msg_encode(&copy, body, sizeof(body), &len, e);
	if (r == 0)
		r = amqp_pub_send(a, "", name, body, len, 0, e);
	pthread_mutex_lock(&a->lock);
	h = find_tag(a, gen, tag);
	if (h) {
		h->replacing = false;
		if (r == 0)
			h->acked = true; /* the copy is the job's message now */
	}
	pthread_mutex_unlock(&a->lock);
	/* a failed republish keeps the held message (and the count here): not an error */
	return 0;
}

static int am_prune(struct queue *q, int64_t before, struct err *e)
{
	struct queue_amqp *a = of(q);
	size_t k = 0;

	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->n_done; i++)
		if (a->done[i].at >= before)
			a->done[k++] = a->done[i];
	a->n_done = k;
	a->next_done = k % AMQP_DONE_MAX;
	pthread_mutex_unlock(&a->lock);
	return 0;
}

static int am_health(struct queue *q, struct err *e)
{
	struct queue_amqp *a = of(q);
	int r = 0;

	pthread_mutex_lock(&a->lock);
	if (!a->up)
		r = err_set(e, -ECONNREFUSED, "queue amqp: the broker is unreachable: %s",
		            a->down_why[0] ? a->down_why : "connecting");
	pthread_mutex_unlock(&a->lock);
	return r;
}

static int am_spooled(struct queue *q, int64_t *ret, struct err *e)
{
	struct queue_amqp *a = of(q);

	pthread_mutex_lock(&a->lock);
	*ret = a->spooled;
	pthread_mutex_unlock(&a->lock);
	return 0;
}

static void am_set_notify(struct queue *q, void (*fn)(void *), void *ctx)
{
	struct queue_amqp *a = of(q);

	pthread_mutex_lock(&a->lock);
	a->notify = fn;
	a->notify_ctx = ctx;
	pthread_mutex_unlock(&a->lock);
}

/* The flavors of cfg, each with its queue name and prefetch; *ret_cap: their sum. */
static int flavors_of(const struct queue_amqp *a, const struct config *cfg,
                      struct amqp_flavor **ret, size_t *ret_cap, struct err *e)
{
	struct amqp_flavor *v = calloc(cfg->n_flavors ? cfg->n_flavors : 1, sizeof(*v));
	size_t cap = 0;
	int r;

	if (!v)
		return err_set(e, -ENOMEM, "queue amqp: out of memory");
	for (size_t i = 0; i < cfg->n_flavors; i++) {
		int64_t max = cfg->flavors[i].max;

		r = amqp_queue_name(a->prefix, cfg->flavors[i].name, v[i].qname, sizeof(v[i].qname),
		                    e);
		if (r < 0) {
			free(v);
			return r;
		}
		str_copy(v[i].flavor, cfg->flavors[i].name, sizeof(v[i].flavor));
		v[i].prefetch = (uint16_t)(max < 1                   ? 1
		                           : max > AMQP_PREFETCH_MAX ? AMQP_PREFETCH_MAX
		                                                     : max);
		cap += v[i].prefetch;
	}
	*ret = v;
	*ret_cap = cap;
	return 0;
}

/*
 * A reload's flavors: the consumer consumes the new ones' queues and stops
 * consuming removed ones (what it held of them goes back to the broker). A
 * kept flavor keeps the prefetch it was consumed with.
 */
static int am_reload(struct queue *q, const struct config *cfg, struct err *e)
{
	struct queue_amqp *a = of(q);
	struct amqp_flavor *v;
	struct amqp_held *nh;
	size_t cap;
	int r = flavors_of(a, cfg, &v, &cap, e);

	if (r < 0)
		return r;
	pthread_mutex_lock(&a->lock);
	/* held messages of a removed flavor stay until given back: room for them too */
	cap += a->n_held;
	if (cap < a->cap_held)
		cap = a->cap_held;
	nh = realloc(a->held, cap * sizeof(*nh));
	if (!nh) {
		pthread_mutex_unlock(&a->lock);
		free(v);
		return err_set(e, -ENOMEM, "queue amqp: out of memory");
	}
	a->held = nh;
	a->cap_held = cap;
	free(a->flavors);
	a->flavors = v;
	a->n_flavors = cfg->n_flavors;
	a->flavors_gen++;
	pthread_mutex_unlock(&a->lock);
	return 0;
}

static void am_free(struct queue *q)
{
	struct queue_amqp *a = of(q);

	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_cond_broadcast(&a->wake);
	pthread_cond_broadcast(&a->pub_wake);
	pthread_mutex_unlock(&a->lock);
	if (a->started)
		pthread_join(a->thread, NULL);
	if (a->pub_started)
		pthread_join(a->pub_thread, NULL);
	amqp_link_close(&a->pub);
	if (a->uri) {
		explicit_bzero(a->uri, strlen(a->uri));
		free(a->uri);
	}
	free(a->ca_file);
	free(a->flavors);
	free(a->held);
	pthread_mutex_destroy(&a->pub_lock);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->wake);
	pthread_cond_destroy(&a->pub_wake);
	free(a);
}

static const struct queue_ops amqp_ops = {
        .name = "amqp",
        .push = am_push,
        .ack = am_ack,
        .count = am_count,
        .list = am_list,
        .update = am_update,
        .prune = am_prune,
        .health = am_health,
        .spooled = am_spooled,
        .reload = am_reload,
        .set_notify = am_set_notify,
        .free = am_free,
};

/* The names on the broker: the prefix, the state exchange, this manager's queue bound to it. */
static int names(struct queue_amqp *a, const struct config *cfg, struct err *e)
{
	const char *prefix =
	        cfg->queue.prefix && *cfg->queue.prefix ? cfg->queue.prefix : "runnerd";
	const char *manager = cfg->manager.name ? cfg->manager.name : "";
	uint32_t rnd = 0;
	int n;

	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint32_t)clock_mono_ms() ^ (uint32_t)getpid();
	if (str_copy(a->prefix, prefix, sizeof(a->prefix)) >= sizeof(a->prefix) ||
	    str_copy(a->manager, manager, sizeof(a->manager)) >= sizeof(a->manager))
		return err_set(e, -ENAMETOOLONG,
		               "queue amqp: queue.prefix or manager.name too long");
	snprintf(a->exchange, sizeof(a->exchange), "%s.state", prefix);
	n = snprintf(a->state_q, sizeof(a->state_q), "%s.state.%s%s%08x", prefix, manager,
	             *manager ? "." : "", rnd);
	if (n < 0 || (size_t)n >= sizeof(a->state_q))
		return err_set(e, -ENAMETOOLONG, "queue amqp: queue.prefix too long");
	return 0;
}

int queue_amqp_open(const struct config *cfg, struct store *store, struct queue **ret,
                    struct err *e)
{
	struct queue_amqp *a;
	size_t cap;
	int r;

	if (!cfg->queue.uri.value || !*cfg->queue.uri.value)
		return err_set(e, -EINVAL, "queue amqp: no URI (queue.uri_file or queue.uri_env)");
	if (cfg->n_flavors == 0)
		return err_set(e, -EINVAL, "queue amqp: no flavors to consume");
	a = calloc(1, sizeof(*a));
	if (!a)
		return err_set(e, -ENOMEM, "queue amqp: out of memory");
	a->q.ops = &amqp_ops;
	a->store = store;
	pthread_mutex_init(&a->pub_lock, NULL);
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->wake, NULL);
	pthread_cond_init(&a->pub_wake, NULL);
	a->uri = strdup(cfg->queue.uri.value);
	a->ca_file = strdup(cfg->queue.ca_file ? cfg->queue.ca_file : "");
	if (!a->uri || !a->ca_file) {
		r = err_set(e, -ENOMEM, "queue amqp: out of memory");
		goto fail;
	}
	r = names(a, cfg, e);
	if (r < 0)
		goto fail;
	r = flavors_of(a, cfg, &a->flavors, &cap, e);
	if (r < 0)
		goto fail;
	a->n_flavors = cfg->n_flavors;
	a->flavors_gen = 1;
	a->cap_held = cap;
	a->held = calloc(a->cap_held, sizeof(*a->held));
	if (!a->held) {
		r = err_set(e, -ENOMEM, "queue amqp: out of memory");
		goto fail;
	}
	/* what a previous run spooled goes out first */
	if (store && store_spool_count(store, &a->spooled, e) < 0) {
		r = e->code;
		goto fail;
	}
	str_copy(a->down_why, "connecting", sizeof(a->down_why));
	r = -pthread_create(&a->thread, NULL, amqp_consumer, a);
	if (r == 0) {
		a->started = true;
		r = -pthread_create(&a->pub_thread, NULL, amqp_publisher, a);
		a->pub_started = r == 0;
	}
	if (r < 0) {
		err_set(e, r, "queue amqp: cannot start its threads: %s", strerror(-r));
		goto fail;
	}
	*ret = &a->q;
	return 0;
fail:
	am_free(&a->q);
	return r;
}
