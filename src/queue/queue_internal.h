/*
 * What the files of src/queue share: the amqp backend's state and its
 * halves. queue_amqp_wire.c: connections, declares, publish with confirms,
 * the messages' JSON. queue_amqp_consume.c: the consumer thread (its own
 * connection: deliveries, acks, state changes of other managers).
 * queue_amqp_publish.c: the publisher connection (push, republish, state
 * announcements) and its thread, which sends announcements and the spool.
 * queue_amqp.c: the queue operations over the held table. Never included
 * from outside src/queue/.
 *
 * One struct amqp_link is one connection with one channel: librabbitmq is
 * not thread-safe per connection, so each link is used by one thread at a
 * time (the consumer's by its thread; the publisher's under pub_lock).
 */
#ifndef RUNNERD_QUEUE_INTERNAL_H
#define RUNNERD_QUEUE_INTERNAL_H

#include "queue/queue.h"

#include <amqp.h>
#include <pthread.h>

/* A message's body at most (a job with 4 KiB of labels fits). */
#define AMQP_MSG_MAX 8192
/* Queue and exchange names at most (AMQP's shortstr is 255). */
#define AMQP_QNAME_MAX 255
/* Seconds a connect, a login, an RPC or a publisher confirm may take. */
#define AMQP_IO_TIMEOUT_S 5
/* Done jobs remembered (a late "queued", or a redelivery, of one is acked at once). */
#define AMQP_DONE_MAX 4096
/* State changes waiting to be announced at most (the oldest go first when full). */
#define AMQP_ANNOUNCE_MAX 1024
/* Reconnect backoff bounds. */
/*
 * A webhook's push waits on the broker this long at most (the lock, a
 * connect, the publish and its confirm), then spools the job: its answer
 * stays well within GitHub's 10 s however the broker behaves.
 */
#define AMQP_PUSH_BUDGET_MS 4000
#define AMQP_BACKOFF_MIN_MS 200
#define AMQP_BACKOFF_MAX_MS 5000

struct amqp_link {
	amqp_connection_state_t conn; /* NULL: not connected */
	int64_t deadline_ms; /* no wait on it goes past this (mono ms); 0: each AMQP_IO_TIMEOUT_S */
	char declared[8][AMQP_QNAME_MAX + 1]; /* queues and exchanges declared on it (a cache) */
	size_t n_declared;
};

/* A delivered message this manager holds, not yet acknowledged. */
struct amqp_held {
	struct queue_job j;
	uint64_t tag;         /* the delivery tag, on the consumer's connection of gen */
	uint64_t gen;         /* which connection of the consumer delivered it */
	int64_t msg_attempts; /* the attempts its message carries */
	bool acked;           /* done: its basic.ack waits to be sent */
	bool replacing;       /* a copy with newer bookkeeping is being published */
};

struct amqp_done {
	int64_t job_id;
	int64_t at;
};

struct amqp_announce {
	int64_t job_id;
	char why[QUEUE_WHY_MAX];
};

/* A flavor's queue and what this manager takes of it at once. */
struct amqp_flavor {
	char qname[AMQP_QNAME_MAX + 1];
	char flavor[FLAVOR_NAME_MAX];
	uint16_t prefetch;
};

struct queue_amqp {
	struct queue q;      /* first */
	char *uri;           /* a secret: wiped on free */
	char *ca_file;       /* amqps: queue.ca_file ("": the system's CAs) */
	struct store *store; /* the spool's (borrowed); NULL: no spool */
	char manager[MANAGER_NAME_MAX + 1];
	char exchange[AMQP_QNAME_MAX + 1]; /* "<prefix>.state": the state changes' fanout */
	char state_q[AMQP_QNAME_MAX + 1];  /* this manager's queue bound to it (exclusive) */
	char prefix[QUEUE_PREFIX_MAX + 1];

	pthread_mutex_t pub_lock; /* the publisher link and its backoff */
	struct amqp_link pub;
	int64_t pub_retry_at; /* mono ms: no reconnect before (backoff) */
	int64_t pub_backoff;

	pthread_mutex_t lock;    /* everything below */
	pthread_cond_t wake;     /* the consumer thread's */
	pthread_cond_t pub_wake; /* the publisher thread's */
	bool stop, up;
	char down_why[512];
	struct amqp_flavor *flavors; /* what to consume (a reload changes it) */
	size_t n_flavors;
	uint64_t flavors_gen;   /* bumped by each change of flavors */
	uint64_t gen;           /* the consumer's connections so far */
	struct amqp_held *held; /* capacity: the sum of prefetches (and of old ones) */
	size_t n_held, cap_held;
	struct amqp_done done[AMQP_DONE_MAX];
	size_t n_done, next_done;
	struct amqp_announce announce[AMQP_ANNOUNCE_MAX];
	size_t n_announce;
	int64_t spooled; /* rows in the spool, as last counted */
	void (*notify)(void *);
	void *notify_ctx;

	pthread_t thread, pub_thread;
	bool started, pub_started;
};

/* ---- queue_amqp.c: the held table and the done ring (caller holds lock) ---- */
bool amqp_is_done(struct queue_amqp *a, int64_t job_id);
/* true when job_id was not done before */
bool amqp_mark_done(struct queue_amqp *a, int64_t job_id, int64_t now);
struct amqp_held *amqp_find_held(struct queue_amqp *a, int64_t job_id);

/* ---- queue_amqp_consume.c ---- */
void *amqp_consumer(void *arg);

/* ---- queue_amqp_publish.c ---- */
/*
 * Publish body to exchange ("" with queue rkey) on the publisher link, with
 * a fresh connection when it went stale; takes pub_lock. budget_ms > 0:
 * the whole of it (the lock, a connect, the publish and its confirm) ends
 * within that, -ETIMEDOUT when it cannot (a webhook waits on it); 0: each
 * wait on the broker is bounded by AMQP_IO_TIMEOUT_S.
 */
int amqp_pub_send(struct queue_amqp *a, const char *exchange, const char *rkey, const char *body,
                  size_t len, int64_t budget_ms, struct err *e);
void *amqp_publisher(void *arg);
/* Keep a job's message in the spool: 0, -EEXIST, or the store's error. */
int amqp_spool(struct queue_amqp *a, int64_t job_id, const char *qname, const char *body,
               struct err *e);

/* ---- queue_amqp_wire.c ---- */
/* "<prefix>.<flavor>": the queue of flavor. */
int amqp_queue_name(const char *prefix, const char *flavor, char *ret, size_t cap, struct err *e);

/*
 * Connect to uri (never put in a message), log in, open channel 1; with
 * confirm, put the channel in confirm mode; heartbeat in seconds (0: none).
 * amqps: the broker's certificate and host name are checked, against the
 * CA bundle ca_file when it is not empty (else the system's).
 */
int amqp_link_open(struct amqp_link *l, const char *uri, const char *ca_file, bool confirm,
                   int heartbeat, struct err *e);
void amqp_link_close(struct amqp_link *l); /* idempotent */

/* The time a wait on l may take now: AMQP_IO_TIMEOUT_S, or less by its deadline (0: past). */
int64_t amqp_link_wait_ms(const struct amqp_link *l);

/* Declare the durable queue name (once per link). */
int amqp_link_declare(struct amqp_link *l, const char *name, struct err *e);
/* Declare the durable fanout exchange name (once per link). */
int amqp_link_declare_fanout(struct amqp_link *l, const char *name, struct err *e);

/* Publish body persistently to exchange ("": the queue rkey) and wait for the broker's confirm. */
int amqp_link_publish(struct amqp_link *l, const char *exchange, const char *rkey, const char *body,
                      size_t len, struct err *e);

/* A reply's failure as -errno plus a message (what, then the broker's words). */
int amqp_reply_err(amqp_rpc_reply_t r, const char *what, struct err *e);

/* The message of a job (its labels inlined as a JSON array; the bookkeeping
 * that must survive a redelivery: attempts, next_at, checked_at), and back. */
int amqp_msg_encode(const struct queue_job *j, char *ret, size_t cap, size_t *ret_len,
                    struct err *e);
int amqp_msg_decode(const void *body, size_t len, struct queue_job *ret, struct err *e);

/* A state change: {"job_id":N,"state":why,"manager":name}, and back (the job id). */
int amqp_state_encode(int64_t job_id, const char *why, const char *manager, char *ret, size_t cap,
                      size_t *ret_len, struct err *e);
int amqp_state_decode(const void *body, size_t len, int64_t *ret_job_id, struct err *e);

#endif
