/*
 * The server's view of every connection, under its lock: how many there
 * are from each address (max_per_ip), and the reserve. Connections still
 * sending a request head and deferred requests together take at most
 * max_held slots; while they would take more, the head that has been
 * arriving longest is closed at once (on a new connection, and on every
 * loop's tick, since no new connection comes while every slot is taken).
 * A head younger than a moment is spared (its client may not have sent it
 * yet), and so is one whose bytes wait unread in the socket: its loop is
 * busy in a handler, which is the server's fault, not the peer's. Closing
 * is shutdown(SHUT_RD) from whichever loop decides: the owner reads end of
 * input and closes it as usual, but what it already read still completes.
 * A connection is unlinked here before its owner closes the descriptor, so
 * a descriptor on the list is always still the connection's.
 */
#include "util/common.h"
#include "http/http_internal.h"

#include <netinet/in.h>
#include <sys/ioctl.h>

static bool same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		              &((const struct sockaddr_in6 *)b)->sin6_addr,
		              sizeof(struct in6_addr)) == 0;
	return true;
}

bool watch_add(struct http_server *s, struct conn *c, int64_t now)
{
	if (s->max_per_ip && !s->is_unix) {
		unsigned n = 0;

		for (struct conn *o = s->conns; o; o = o->next)
			if (same_address(&o->addr, &c->addr) && ++n >= s->max_per_ip)
				return false;
	}
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	watch_head(s, c, true, now);
	return true;
}

void watch_head(struct http_server *s, struct conn *c, bool due, int64_t now)
{
	if (due && !c->in_head && !c->cut) {
		c->in_head = true;
		c->watch_since_ms = now;
		s->n_heads++;
	} else if (!due && c->in_head) {
		c->in_head = false;
		s->n_heads--;
	}
}

void watch_remove(struct http_server *s, struct conn *c)
{
	watch_head(s, c, false, 0);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	s->n_conns--;
}

/*
 * No answer goes out (nginx does the same on a header timeout): the peer
 * may be anywhere in its head, and the owner may be writing.
 */
static void cut(struct http_server *s, struct conn *c)
{
	watch_head(s, c, false, 0);
	c->cut = true;
	(void)shutdown(c->fd, SHUT_RD);
}

static bool unread_input(const struct conn *c)
{
	int n = 0;

	return ioctl(c->fd, FIONREAD, &n) == 0 && n > 0;
}

static struct conn *oldest_head(struct http_server *s, int64_t now)
{
	struct conn *old = NULL;

	for (struct conn *c = s->conns; c; c = c->next)
		if (c->in_head && c->watch_since_ms + EVICT_GRACE_MS <= now &&
		    (!old || c->watch_since_ms < old->watch_since_ms) && !unread_input(c))
			old = c;
	return old;
}

void keep_reserve(struct http_server *s, int64_t now)
{
	while (s->n_heads + s->n_deferred > s->max_held) {
		struct conn *old = oldest_head(s, now);

		if (!old)
			return; /* the young ones have their grace; a later tick looks again */
		cut(s, old);
	}
}
