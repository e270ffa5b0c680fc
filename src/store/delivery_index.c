/*
 * The table of delivery_index.h: open addressing with linear probing, at
 * most three quarters full; a removal shifts the entries after it back, so
 * a lookup stops at the first empty slot and no tombstones pile up.
 */
#include "util/common.h"
#include "store/delivery_index.h"

#include <openssl/evp.h>
#include <pthread.h>

#define INDEX_MIN_SLOTS ((size_t)1024)

struct slot {
	struct delivery_key k;
	int64_t at;
	int64_t row; /* > 0 committed, < 0 pending (-row), 0 empty */
};

struct delivery_index {
	pthread_mutex_t mu;
	struct slot *v;
	size_t mask, n;
};

/* SHA-256 fetched once: EVP_sha256() looks the algorithm up on every use
 * (a third of a key's cost, and locks the intake's other threads share) */
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void delivery_key_of(const char *id, struct delivery_key *ret)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	uint64_t hi = 0, lo = 0;

	pthread_once(&sha256_once, sha256_fetch);
	/* SHA-256 of a short string cannot fail short of a broken libcrypto:
	 * then every id gets the same key, and is taken for a duplicate */
	memset(md, 0, sizeof(md));
	(void)EVP_Digest(id, strlen(id), md, &len, sha256 ? sha256 : EVP_sha256(), NULL);
	for (int i = 0; i < 8; i++) {
		hi = hi << 8 | md[i];
		lo = lo << 8 | md[8 + i];
	}
	ret->hi = hi;
	ret->lo = lo;
}

static bool same(const struct delivery_key *a, const struct delivery_key *b)
{
	return a->hi == b->hi && a->lo == b->lo;
}

static size_t home(const struct delivery_index *x, const struct delivery_key *k)
{
	return (size_t)k->lo & x->mask;
}

struct delivery_index *delivery_index_new(void)
{
	struct delivery_index *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->v = calloc(INDEX_MIN_SLOTS, sizeof(*x->v));
	if (!x->v) {
		free(x);
		return NULL;
	}
	x->mask = INDEX_MIN_SLOTS - 1;
	pthread_mutex_init(&x->mu, NULL);
	return x;
}

void delivery_index_free(struct delivery_index *x)
{
	if (!x)
		return;
	pthread_mutex_destroy(&x->mu);
	free(x->v);
	free(x);
}

/* The slot holding k, or the empty one where it would go. */
static struct slot *probe(const struct delivery_index *x, const struct delivery_key *k)
{
	for (size_t i = home(x, k);; i = (i + 1) & x->mask)
		if (x->v[i].row == 0 || same(&x->v[i].k, k))
			return &x->v[i];
}

/* Put s (not in x, x has room) into x. */
static void place(struct delivery_index *x, const struct slot *s)
{
	*probe(x, &s->k) = *s;
	x->n++;
}

/* Move x's entries into a table of slots slots (a power of two). */
static int rehash(struct delivery_index *x, size_t slots, int64_t keep_from)
{
	struct slot *old = x->v;
	size_t old_slots = x->mask + 1;

	x->v = calloc(slots, sizeof(*x->v));
	if (!x->v) {
		x->v = old;
		return -ENOMEM;
	}
	x->mask = slots - 1;
	x->n = 0;
	for (size_t i = 0; i < old_slots; i++)
		if (old[i].row != 0 && old[i].at >= keep_from)
			place(x, &old[i]);
	free(old);
	return 0;
}

/* Slots for n entries: a power of two, at most three quarters full. */
static size_t slots_for(size_t n)
{
	size_t slots = INDEX_MIN_SLOTS;

	while (slots / 4 * 3 < n)
		slots <<= 1;
	return slots;
}

int delivery_index_add(struct delivery_index *x, const struct delivery_key *k, int64_t at,
                       int64_t rowid, bool pending)
{
	struct slot *s;
	int r = 0;

	if (rowid <= 0)
		return -EINVAL;
	pthread_mutex_lock(&x->mu);
	s = probe(x, k);
	if (s->row != 0) {
		r = -EEXIST;
	} else if (slots_for(x->n + 1) > x->mask + 1) {
		r = rehash(x, (x->mask + 1) * 2, INT64_MIN);
		if (r == 0)
			place(x, &(struct slot){*k, at, pending ? -rowid : rowid});
	} else {
		*s = (struct slot){*k, at, pending ? -rowid : rowid};
		x->n++;
	}
	pthread_mutex_unlock(&x->mu);
	return r;
}

void delivery_index_commit(struct delivery_index *x, const struct delivery_key *k)
{
	struct slot *s;

	pthread_mutex_lock(&x->mu);
	s = probe(x, k);
	if (s->row < 0)
		s->row = -s->row;
	pthread_mutex_unlock(&x->mu);
}

bool delivery_index_find(struct delivery_index *x, const struct delivery_key *k, bool with_pending,
                         int64_t *rowid)
{
	struct slot *s;
	bool found;

	pthread_mutex_lock(&x->mu);
	s = probe(x, k);
	found = s->row > 0 || (with_pending && s->row < 0);
	if (found && rowid)
		*rowid = s->row > 0 ? s->row : -s->row;
	pthread_mutex_unlock(&x->mu);
	return found;
}

/* Whether home h lies cyclically in (i, j]: an entry there may not move to i. */
static bool between(size_t h, size_t i, size_t j)
{
	return i <= j ? (h > i && h <= j) : (h > i || h <= j);
}

void delivery_index_remove(struct delivery_index *x, const struct delivery_key *k)
{
	size_t i, j;

	pthread_mutex_lock(&x->mu);
	i = (size_t)(probe(x, k) - x->v);
	if (x->v[i].row == 0)
		goto out;
	x->n--;
	/* shift back each entry after i that may stand at i, until an empty slot */
	for (j = (i + 1) & x->mask; x->v[j].row != 0; j = (j + 1) & x->mask) {
		if (between(home(x, &x->v[j].k), i, j))
			continue;
		x->v[i] = x->v[j];
		i = j;
	}
	x->v[i] = (struct slot){0};
out:
	pthread_mutex_unlock(&x->mu);
}

int64_t delivery_index_prune(struct delivery_index *x, int64_t before)
{
	size_t kept = 0, had;
	int r;

	pthread_mutex_lock(&x->mu);
	had = x->n;
	for (size_t i = 0; i <= x->mask; i++)
		if (x->v[i].row != 0 && x->v[i].at >= before)
			kept++;
	r = kept == had ? 0 : rehash(x, slots_for(kept), before);
	pthread_mutex_unlock(&x->mu);
	return r < 0 ? r : (int64_t)(had - kept);
}

size_t delivery_index_count(struct delivery_index *x)
{
	size_t n;

	pthread_mutex_lock(&x->mu);
	n = x->n;
	pthread_mutex_unlock(&x->mu);
	return n;
}
