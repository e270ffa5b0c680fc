/*
 * The hand-off table (util/handoff.h): a fixed array under one lock.
 * Tokens compare in constant time; expired entries are wiped whenever the
 * table is touched. Never logs, never puts a secret or a token in a
 * message.
 */
#include "util/common.h"
#include "util/handoff.h"
#include "util/clock.h"
#include "util/strutil.h"

#include <pthread.h>
#include <sys/random.h>

struct handoff {
	char token[HANDOFF_TOKEN_LEN + 1]; /* "" = free */
	char *secret;
	size_t len;
	int64_t until_ms; /* monotonic */
};

static pthread_mutex_t handoff_lock = PTHREAD_MUTEX_INITIALIZER;
static struct handoff handoffs[HANDOFF_MAX];

static void wipe(struct handoff *h)
{
	if (h->secret) {
		explicit_bzero(h->secret, h->len);
		free(h->secret);
	}
	explicit_bzero(h, sizeof(*h));
}

static void expire(int64_t now)
{
	for (size_t i = 0; i < HANDOFF_MAX; i++)
		if (handoffs[i].token[0] && handoffs[i].until_ms <= now)
			wipe(&handoffs[i]);
}

static bool is_token(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (n >= HANDOFF_TOKEN_LEN ||
		    !((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n == HANDOFF_TOKEN_LEN;
}

static struct handoff *find(const char *token)
{
	struct handoff *found = NULL;

	for (size_t i = 0; i < HANDOFF_MAX; i++)
		if (handoffs[i].token[0] &&
		    mem_equal_ct(handoffs[i].token, token, HANDOFF_TOKEN_LEN))
			found = &handoffs[i];
	return found;
}

int handoff_put(const void *secret, size_t len, int64_t ttl_ms, char *token, struct err *e)
{
	unsigned char rnd[HANDOFF_TOKEN_LEN / 2];
	struct handoff *slot = NULL;
	char *copy;

	if (len > HANDOFF_SECRET_MAX)
		return err_set(e, -E2BIG, "handoff: a secret larger than %d bytes",
		               HANDOFF_SECRET_MAX);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return err_set(e, -EIO, "handoff: getrandom failed");
	copy = malloc(len + 1);
	if (!copy)
		return err_set(e, -ENOMEM, "handoff: out of memory");
	memcpy(copy, secret, len);
	copy[len] = '\0';
	pthread_mutex_lock(&handoff_lock);
	expire(clock_mono_ms());
	for (size_t i = 0; i < HANDOFF_MAX && !slot; i++)
		if (!handoffs[i].token[0])
			slot = &handoffs[i];
	if (!slot) {
		pthread_mutex_unlock(&handoff_lock);
		explicit_bzero(copy, len);
		free(copy);
		return err_set(e, -ENOSPC, "handoff: %d secrets wait already", HANDOFF_MAX);
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(slot->token + 2 * i, 3, "%02x", rnd[i]);
	slot->secret = copy;
	slot->len = len;
	slot->until_ms = clock_mono_ms() + (ttl_ms > 0 ? ttl_ms : 1);
	str_copy(token, slot->token, HANDOFF_TOKEN_LEN + 1);
	pthread_mutex_unlock(&handoff_lock);
	explicit_bzero(rnd, sizeof(rnd));
	return 0;
}

int handoff_take(const char *token, struct buf *ret)
{
	struct buf b = BUF_INIT_SECRET(HANDOFF_SECRET_MAX + 1);
	struct handoff *h;
	int r = -ENOENT;

	if (!token || !is_token(token))
		return -ENOENT;
	pthread_mutex_lock(&handoff_lock);
	expire(clock_mono_ms());
	h = find(token);
	if (h) {
		r = buf_append(&b, h->secret, h->len) < 0 || (!b.data && buf_append(&b, "", 0) < 0)
		            ? -ENOMEM
		            : 0;
		if (r == 0)
			wipe(h);
	}
	pthread_mutex_unlock(&handoff_lock);
	if (r < 0) {
		buf_release(&b);
		return r;
	}
	buf_release(ret);
	*ret = b;
	return 0;
}

void handoff_drop(const char *token)
{
	struct handoff *h;

	if (!token || !is_token(token))
		return;
	pthread_mutex_lock(&handoff_lock);
	h = find(token);
	if (h)
		wipe(h);
	pthread_mutex_unlock(&handoff_lock);
}

size_t handoff_count(void)
{
	size_t n = 0;

	pthread_mutex_lock(&handoff_lock);
	expire(clock_mono_ms());
	for (size_t i = 0; i < HANDOFF_MAX; i++)
		n += handoffs[i].token[0] != '\0';
	pthread_mutex_unlock(&handoff_lock);
	return n;
}
