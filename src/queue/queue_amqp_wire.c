/*
 * The amqp backend's wire: one AMQP 0-9-1 connection per struct amqp_link
 * (librabbitmq), durable queues, persistent publishes waited on until the
 * broker confirms them, and a job's message as bounded JSON. It must never
 * put the URI (it holds the password) in a message, and never trust a
 * message's body: another manager, or anyone with the broker's password,
 * wrote it.
 */
#include "util/common.h"
#include "queue/queue_internal.h"
#include "util/clock.h"
#include "util/strutil.h"

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <jansson.h>

int amqp_queue_name(const char *prefix, const char *flavor, char *ret, size_t cap, struct err *e)
{
	int n = snprintf(ret, cap, "%s.%s", prefix, flavor);

	if (n < 0 || (size_t)n >= cap || (size_t)n > AMQP_QNAME_MAX)
		return err_set(e, -ENAMETOOLONG, "queue amqp: flavor %s: queue name too long",
		               flavor);
	return 0;
}

int amqp_reply_err(amqp_rpc_reply_t r, const char *what, struct err *e)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		return 0;
	case AMQP_RESPONSE_NONE:
		return err_set(e, -EPROTO, "queue amqp: %s: no reply", what);
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		return err_set(e, r.library_error == AMQP_STATUS_TIMEOUT ? -ETIMEDOUT : -ECONNRESET,
		               "queue amqp: %s: %s", what, amqp_error_string2(r.library_error));
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *c = r.reply.decoded;
			return err_set(e, -ECONNRESET,
			               "queue amqp: %s: the broker closed the connection: %u %.*s",
			               what, c->reply_code, (int)c->reply_text.len,
			               (const char *)c->reply_text.bytes);
		}
		if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *c = r.reply.decoded;
			return err_set(e, -EIO,
			               "queue amqp: %s: the broker closed the channel: %u %.*s",
			               what, c->reply_code, (int)c->reply_text.len,
			               (const char *)c->reply_text.bytes);
		}
		return err_set(e, -EPROTO, "queue amqp: %s: unexpected method 0x%08x", what,
		               r.reply.id);
	}
	return err_set(e, -EPROTO, "queue amqp: %s: unknown reply", what);
}

int64_t amqp_link_wait_ms(const struct amqp_link *l)
{
	int64_t left;

	if (l->deadline_ms <= 0)
		return AMQP_IO_TIMEOUT_S * 1000;
	left = l->deadline_ms - clock_mono_ms();
	if (left <= 0)
		return 0;
	return left < AMQP_IO_TIMEOUT_S * 1000 ? left : AMQP_IO_TIMEOUT_S * 1000;
}

static struct timeval ms_tv(int64_t ms)
{
	return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

/* Bound the next RPC on l by its deadline: -ETIMEDOUT when it passed. */
static int arm(struct amqp_link *l, const char *what, struct err *e)
{
	int64_t ms = amqp_link_wait_ms(l);
	struct timeval tv = ms_tv(ms);

	if (ms <= 0)
		return err_set(e, -ETIMEDOUT, "queue amqp: %s: no time left", what);
	amqp_set_rpc_timeout(l->conn, &tv);
	return 0;
}

void amqp_link_close(struct amqp_link *l)
{
	int64_t ms;

	if (!l || !l->conn)
		return;
	/* a dead peer answers nothing: the rpc timeout bounds these, and the deadline it */
	ms = amqp_link_wait_ms(l);
	if (ms > 0) {
		struct timeval tv = ms_tv(ms);

		amqp_set_rpc_timeout(l->conn, &tv);
		amqp_channel_close(l->conn, 1, AMQP_REPLY_SUCCESS);
		amqp_connection_close(l->conn, AMQP_REPLY_SUCCESS);
	}
	amqp_destroy_connection(l->conn);
	l->conn = NULL;
	l->n_declared = 0;
}

int amqp_link_open(struct amqp_link *l, const char *uri, const char *ca_file, bool confirm,
                   int heartbeat, struct err *e)
{
	struct timeval tv = ms_tv(amqp_link_wait_ms(l));
	struct amqp_connection_info ci;
	char copy[2048];
	amqp_socket_t *sock;
	int r;

	amqp_link_close(l);
	if (tv.tv_sec == 0 && tv.tv_usec == 0)
		return err_set(e, -ETIMEDOUT, "queue amqp: connect: no time left");
	if (!uri || !*uri)
		return err_set(e, -EINVAL, "queue amqp: no URI (queue.uri_file or queue.uri_env)");
	if (str_copy(copy, uri, sizeof(copy)) >= sizeof(copy))
		return err_set(e, -EINVAL, "queue amqp: the URI is too long");
	amqp_default_connection_info(&ci);
	if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
		explicit_bzero(copy, sizeof(copy));
		/* not the URI itself: it holds the password */
		return err_set(e, -EINVAL,
		               "queue amqp: the URI does not parse "
		               "(amqp://user:password@host:port/vhost)");
	}
	l->conn = amqp_new_connection();
	if (!l->conn) {
		r = err_set(e, -ENOMEM, "queue amqp: out of memory");
		goto out;
	}
	amqp_set_handshake_timeout(l->conn, &tv);
	amqp_set_rpc_timeout(l->conn, &tv);
	if (ci.ssl) {
		sock = amqp_ssl_socket_new(l->conn);
		if (sock) {
			amqp_ssl_socket_set_verify_peer(sock, 1);
			amqp_ssl_socket_set_verify_hostname(sock, 1);
			if (ca_file && *ca_file &&
			    amqp_ssl_socket_set_cacert(sock, ca_file) != AMQP_STATUS_OK) {
				r = err_set(e, -EINVAL,
				            "queue amqp: queue.ca_file %s: no PEM certificates "
				            "could be read from it",
				            ca_file);
				goto fail;
			}
		}
	} else {
		sock = amqp_tcp_socket_new(l->conn);
	}
	if (!sock) {
		r = err_set(e, -ENOMEM, "queue amqp: no socket");
		goto fail;
	}
	r = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv);
	if (r != AMQP_STATUS_OK) {
		r = err_set(e, -ECONNREFUSED, "queue amqp: connect to %s:%d%s: %s", ci.host,
		            ci.port, ci.ssl ? " (amqps)" : "", amqp_error_string2(r));
		goto fail;
	}
	/* each step within what is left (the login is the handshake's) */
	tv = ms_tv(amqp_link_wait_ms(l));
	amqp_set_handshake_timeout(l->conn, &tv);
	r = arm(l, "login", e);
	if (r < 0)
		goto fail;
	r = amqp_reply_err(amqp_login(l->conn, ci.vhost, 0, 131072, heartbeat,
	                              AMQP_SASL_METHOD_PLAIN, ci.user, ci.password),
	                   "login", e);
	if (r < 0)
		goto fail;
	r = arm(l, "channel.open", e);
	if (r < 0)
		goto fail;
	amqp_channel_open(l->conn, 1);
	r = amqp_reply_err(amqp_get_rpc_reply(l->conn), "channel.open", e);
	if (r < 0)
		goto fail;
	if (confirm) {
		r = arm(l, "confirm.select", e);
		if (r < 0)
			goto fail;
		amqp_confirm_select(l->conn, 1);
		r = amqp_reply_err(amqp_get_rpc_reply(l->conn), "confirm.select", e);
		if (r < 0)
			goto fail;
	}
	r = 0;
	goto out;
fail:
	amqp_destroy_connection(l->conn);
	l->conn = NULL;
out:
	explicit_bzero(copy, sizeof(copy));
	return r;
}

static bool declared(struct amqp_link *l, const char *name)
{
	for (size_t i = 0; i < l->n_declared; i++)
		if (strcmp(l->declared[i], name) == 0)
			return true;
	return false;
}

static void remember(struct amqp_link *l, const char *name)
{
	if (l->n_declared < ARRAY_SIZE(l->declared))
		str_copy(l->declared[l->n_declared++], name, sizeof(l->declared[0]));
}

int amqp_link_declare(struct amqp_link *l, const char *name, struct err *e)
{
	int r;

	if (declared(l, name))
		return 0;
	r = arm(l, "queue.declare", e);
	if (r < 0)
		return r;
	amqp_queue_declare(l->conn, 1, amqp_cstring_bytes(name), 0, 1, 0, 0, amqp_empty_table);
	r = amqp_reply_err(amqp_get_rpc_reply(l->conn), "queue.declare", e);
	if (r < 0)
		return err_prefix(e, "%s", name);
	remember(l, name);
	return 0;
}

int amqp_link_declare_fanout(struct amqp_link *l, const char *name, struct err *e)
{
	int r;

	if (declared(l, name))
		return 0;
	r = arm(l, "exchange.declare", e);
	if (r < 0)
		return r;
	/* durable, not auto-deleted: it outlives every manager and a broker restart */
	amqp_exchange_declare(l->conn, 1, amqp_cstring_bytes(name), amqp_cstring_bytes("fanout"), 0,
	                      1, 0, 0, amqp_empty_table);
	r = amqp_reply_err(amqp_get_rpc_reply(l->conn), "exchange.declare", e);
	if (r < 0)
		return err_prefix(e, "%s", name);
	remember(l, name);
	return 0;
}

int amqp_link_publish(struct amqp_link *l, const char *exchange, const char *rkey, const char *body,
                      size_t len, struct err *e)
{
	const char *name = *exchange ? exchange : rkey;
	struct timeval tv;
	amqp_basic_properties_t props = {0};
	amqp_bytes_t b = {.len = len, .bytes = (void *)body};
	amqp_frame_t f;
	int r;

	r = *exchange ? amqp_link_declare_fanout(l, exchange, e) : amqp_link_declare(l, rkey, e);
	if (r < 0)
		return r;
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	/* the default exchange routes by queue name; the queue was declared on this link */
	r = amqp_basic_publish(l->conn, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes(rkey),
	                       0, 0, &props, b);
	if (r != AMQP_STATUS_OK)
		return err_set(e, -ECONNRESET, "queue amqp: publish to %s: %s", name,
		               amqp_error_string2(r));
	/* one publish at a time on this link: the next method is its confirm */
	for (;;) {
		int64_t ms = amqp_link_wait_ms(l);

		tv = ms_tv(ms);
		r = ms > 0 ? amqp_simple_wait_frame_noblock(l->conn, &f, &tv) : AMQP_STATUS_TIMEOUT;
		if (r == AMQP_STATUS_TIMEOUT)
			return err_set(e, -ETIMEDOUT,
			               "queue amqp: publish to %s: no confirm in time", name);
		if (r != AMQP_STATUS_OK)
			return err_set(e, -ECONNRESET, "queue amqp: publish to %s: %s", name,
			               amqp_error_string2(r));
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;
		switch (f.payload.method.id) {
		case AMQP_BASIC_ACK_METHOD:
			return 0;
		case AMQP_BASIC_NACK_METHOD:
			return err_set(e, -EIO, "queue amqp: publish to %s: the broker refused it",
			               name);
		case AMQP_CHANNEL_CLOSE_METHOD:
		case AMQP_CONNECTION_CLOSE_METHOD:
			return err_set(e, -ECONNRESET,
			               "queue amqp: publish to %s: the broker closed the link",
			               name);
		default:
			continue;
		}
	}
}

/* ---- the message ---- */

int amqp_msg_encode(const struct queue_job *j, char *ret, size_t cap, size_t *ret_len,
                    struct err *e)
{
	json_t *labels = json_loads(j->labels, JSON_REJECT_DUPLICATES, NULL);
	json_t *o;
	size_t n;

	if (!labels || !json_is_array(labels)) {
		json_decref(labels);
		return err_set(e, -EINVAL,
		               "queue amqp: job %" PRId64 ": its labels are not a JSON array",
		               j->job_id);
	}
	o = json_pack("{sI sI ss so ss ss sI}", "job_id", (json_int_t)j->job_id, "run_id",
	              (json_int_t)j->run_id, "repo", j->repo, "labels", labels, "flavor", j->flavor,
	              "delivery_id", j->delivery_id, "received_at", (json_int_t)j->received_at);
	if (!o)
		return err_set(e, -ENOMEM, "queue amqp: job %" PRId64 ": cannot encode it",
		               j->job_id);
	/* the consumer's bookkeeping that a redelivery to another manager keeps */
	if ((j->attempts &&
	     json_object_set_new(o, "attempts", json_integer((json_int_t)j->attempts)) < 0) ||
	    (j->next_at &&
	     json_object_set_new(o, "next_at", json_integer((json_int_t)j->next_at)) < 0) ||
	    (j->checked_at &&
	     json_object_set_new(o, "checked_at", json_integer((json_int_t)j->checked_at)) < 0)) {
		json_decref(o);
		return err_set(e, -ENOMEM, "queue amqp: job %" PRId64 ": cannot encode it",
		               j->job_id);
	}
	n = json_dumpb(o, ret, cap, JSON_COMPACT);
	json_decref(o);
	if (n == 0 || n >= cap)
		return err_set(e, -EMSGSIZE, "queue amqp: job %" PRId64 ": message too large",
		               j->job_id);
	*ret_len = n;
	return 0;
}

static int copy_str(json_t *o, const char *key, char *dst, size_t cap, bool need)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return need ? -EINVAL : 0;
	if (!json_is_string(v) || json_string_length(v) >= cap ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return -EINVAL;
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int get_int(json_t *o, const char *key, int64_t *dst, bool need)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return need ? -EINVAL : 0;
	if (!json_is_integer(v))
		return -EINVAL;
	*dst = json_integer_value(v);
	return 0;
}

int amqp_msg_decode(const void *body, size_t len, struct queue_job *ret, struct err *e)
{
	struct queue_job j = {0};
	json_t *o, *labels;
	size_t n;
	int r = -EINVAL;

	if (len > AMQP_MSG_MAX)
		return err_set(e, -EMSGSIZE, "queue amqp: a message of %zu bytes (at most %d)", len,
		               AMQP_MSG_MAX);
	o = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!o || !json_is_object(o))
		goto out;
	if (get_int(o, "job_id", &j.job_id, true) < 0 || j.job_id <= 0 ||
	    get_int(o, "run_id", &j.run_id, false) < 0 ||
	    get_int(o, "received_at", &j.received_at, false) < 0 ||
	    get_int(o, "attempts", &j.attempts, false) < 0 || j.attempts < 0 ||
	    get_int(o, "next_at", &j.next_at, false) < 0 ||
	    get_int(o, "checked_at", &j.checked_at, false) < 0 ||
	    copy_str(o, "repo", j.repo, sizeof(j.repo), true) < 0 ||
	    copy_str(o, "flavor", j.flavor, sizeof(j.flavor), true) < 0 || !j.flavor[0] ||
	    copy_str(o, "delivery_id", j.delivery_id, sizeof(j.delivery_id), false) < 0)
		goto out;
	labels = json_object_get(o, "labels");
	if (!json_is_array(labels))
		goto out;
	for (size_t i = 0; i < json_array_size(labels); i++)
		if (!json_is_string(json_array_get(labels, i)))
			goto out;
	n = json_dumpb(labels, j.labels, sizeof(j.labels), JSON_COMPACT);
	if (n == 0 || n >= sizeof(j.labels))
		goto out;
	j.labels[n] = '\0';
	*ret = j;
	r = 0;
out:
	json_decref(o);
	if (r < 0)
		return err_set(e, r, "queue amqp: a message that is not a job");
	return 0;
}

/* ---- a state change ---- */

int amqp_state_encode(int64_t job_id, const char *why, const char *manager, char *ret, size_t cap,
                      size_t *ret_len, struct err *e)
{
	json_t *o = json_pack("{sI ss ss}", "job_id", (json_int_t)job_id, "state",
	                      why && *why ? why : "done", "manager", manager ? manager : "");
	size_t n;

	if (!o)
		return err_set(e, -ENOMEM, "queue amqp: job %" PRId64 ": cannot encode its state",
		               job_id);
	n = json_dumpb(o, ret, cap, JSON_COMPACT);
	json_decref(o);
	if (n == 0 || n >= cap)
		return err_set(e, -EMSGSIZE, "queue amqp: job %" PRId64 ": state too large",
		               job_id);
	*ret_len = n;
	return 0;
}

int amqp_state_decode(const void *body, size_t len, int64_t *ret_job_id, struct err *e)
{
	json_t *o = NULL;
	int64_t id = 0;
	int r = -EINVAL;

	if (len <= AMQP_MSG_MAX)
		o = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (o && json_is_object(o) && get_int(o, "job_id", &id, true) == 0 && id > 0) {
		*ret_job_id = id;
		r = 0;
	}
	json_decref(o);
	if (r < 0)
		return err_set(e, r, "queue amqp: a state change that names no job");
	return 0;
}
