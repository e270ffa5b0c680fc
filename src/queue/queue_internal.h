/*
 * What the files of src/queue share: the amqp backend's wire half
 * (queue_amqp_wire.c: connections, declares, publish with confirms, the
 * message's JSON) for its queue half (queue_amqp.c). Never included from
 * outside src/queue/. One struct amqp_link is one connection with one
 * channel: librabbitmq is not thread-safe per connection, so each link is
 * used by one thread at a time (the caller serializes).
 */
#ifndef RUNNERD_QUEUE_INTERNAL_H
#define RUNNERD_QUEUE_INTERNAL_H

#include "queue/queue.h"

#include <amqp.h>

/* A message's body at most (a job with 4 KiB of labels fits). */
#define AMQP_MSG_MAX 8192
/* Queue names at most (AMQP's shortstr is 255). */
#define AMQP_QNAME_MAX 255
/* Seconds a connect, a login, an RPC or a publisher confirm may take. */
#define AMQP_IO_TIMEOUT_S 5

struct amqp_link {
	amqp_connection_state_t conn;         /* NULL: not connected */
	char declared[8][AMQP_QNAME_MAX + 1]; /* queues declared on it (a small cache) */
	size_t n_declared;
};

/* The queue of flavor: "runnerd.<flavor>". */
int amqp_queue_name(const char *flavor, char *ret, size_t cap, struct err *e);

/*
 * Connect to uri (never put in a message), log in, open channel 1; with
 * confirm, put the channel in confirm mode; heartbeat in seconds (0: none).
 */
int amqp_link_open(struct amqp_link *l, const char *uri, bool confirm, int heartbeat,
                   struct err *e);
void amqp_link_close(struct amqp_link *l); /* idempotent */

/* Declare the durable queue name (once per link). */
int amqp_link_declare(struct amqp_link *l, const char *name, struct err *e);

/* Publish body persistently to queue name and wait for the broker's confirm. */
int amqp_link_publish(struct amqp_link *l, const char *name, const char *body, size_t len,
                      struct err *e);

/* A reply's failure as -errno plus a message (what, then the broker's words). */
int amqp_reply_err(amqp_rpc_reply_t r, const char *what, struct err *e);

/* The message of a job (its labels inlined as a JSON array), and back. */
int amqp_msg_encode(const struct queue_job *j, char *ret, size_t cap, size_t *ret_len,
                    struct err *e);
int amqp_msg_decode(const void *body, size_t len, struct queue_job *ret, struct err *e);

#endif
