/*
 * The table of delivery_index.h: open addressing with linear probing, at
 * most three quarters full; a removal shifts the entries after it back, so
 * a lookup stops at the first empty slot and no tombstones pile up.
 *
 * It grows a step at a time. Moving every entry into a table twice the size
 * at once held the mutex, and so every duplicate check of the HTTP loops and
 * the committer's batch, for as long as that took: 35 ms at 98,000 entries,
 * 280 ms at 786,000 on the 2-vCPU VM (most of it the new table's pages
 * faulted in). Now the old table stays beside the new one, and each add
 * moves a few of its slots over, so the old one is empty well before the
 * new one is full. Meanwhile every entry is in exactly one of them: lookups
 * look in the new one, then the old one; adds go to the new one. A slot
 * that was moved or removed in the old table becomes a tombstone, which
 * keeps its probe runs whole for the entries still there.
 *
 * A prune takes out the ids whose rows the table deleted (their keys come
 * from store_deliveries.c), a few hundred under the mutex at a time. It
 * used to sweep the whole table and rebuild it at once: 136 ms under the
 * mutex at a million entries. When what is left is far smaller than the
 * table, it moves into a smaller one, a step at a time as well, and the
 * prune makes those steps itself, so a quiet intake gets the memory back.
 */
#include "util/common.h"
#include "store/delivery_index.h"

#include <openssl/evp.h>
#include <pthread.h>

#define INDEX_MIN_SLOTS ((size_t)1024)
/*
 * Old slots moved by each add while the table grows: the old table has
 * S slots, the new one 2 S, and at least 3/4 S adds come before the new
 * one is 3/4 full, so 2 an add would do. A shrink (after a prune: the new
 * table at most a quarter of the old, at most 3/8 full) moves this many
 * times the ratio of the sizes, and is done before the new one is full too.
 */
#define MOVE_PER_ADD 4
/* A slot of the old table whose entry moved or was removed (never a row: rows are > 0). */
#define GONE INT64_MIN

struct slot {
	struct delivery_key k;
	int64_t at;
	int64_t row; /* > 0 committed, < 0 pending (-row), 0 empty, GONE (old table) */
};

struct delivery_index {
	pthread_mutex_t mu;
	struct slot *v; /* where adds go */
	size_t mask;
	struct slot *old; /* being moved into v, from old_pos on; NULL when not growing */
	size_t old_mask, old_pos;
	size_t n; /* entries in both */
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

static size_t home(size_t mask, const struct delivery_key *k)
{
	return (size_t)k->lo & mask;
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
	free(x->old);
	free(x->v);
	free(x);
}

/* The slot of table v holding k, or the empty one where it would go. */
static struct slot *probe(struct slot *v, size_t mask, const struct delivery_key *k)
{
	for (size_t i = home(mask, k);; i = (i + 1) & mask)
		if (v[i].row == 0 || (v[i].row != GONE && same(&v[i].k, k)))
			return &v[i];
}

/* The slot holding k (in the old table: *in_old, which may be NULL), or NULL. */
static struct slot *lookup_in(const struct delivery_index *x, const struct delivery_key *k,
                              bool *in_old)
{
	struct slot *s = probe(x->v, x->mask, k);
	bool old = false;

	if (s->row == 0 && x->old) {
		s = probe(x->old, x->old_mask, k);
		old = true;
	}
	if (in_old)
		*in_old = old;
	return s->row != 0 ? s : NULL;
}

static struct slot *lookup(const struct delivery_index *x, const struct delivery_key *k)
{
	return lookup_in(x, k, NULL);
}

/* Move up to budget slots of the old table into the new one. */
static void move_some(struct delivery_index *x, size_t budget)
{
	while (x->old && budget-- > 0) {
		struct slot *s = &x->old[x->old_pos];

		if (s->row != 0 && s->row != GONE) {
			*probe(x->v, x->mask, &s->k) = *s; /* never in the new table yet */
			s->row = GONE;
		}
		if (x->old_pos++ == x->old_mask) {
			free(x->old);
			x->old = NULL;
		}
	}
}

/* Start moving into a table of slots slots (a power of two, room for every entry). */
static int resize(struct delivery_index *x, size_t slots)
{
	/* calloc: a large table is mapped, its pages faulted in as it fills */
	struct slot *v = calloc(slots, sizeof(*v));

	if (!v)
		return -ENOMEM;
	move_some(x, SIZE_MAX); /* never two old tables (the pace ends the last one first) */
	x->old = x->v;
	x->old_mask = x->mask;
	x->old_pos = 0;
	x->v = v;
	x->mask = slots - 1;
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
	int r = 0;

	if (rowid <= 0)
		return -EINVAL;
	pthread_mutex_lock(&x->mu);
	if (lookup(x, k))
		r = -EEXIST;
	else if (slots_for(x->n + 1) > x->mask + 1)
		r = resize(x, (x->mask + 1) * 2);
	if (r == 0) {
		*probe(x->v, x->mask, k) = (struct slot){*k, at, pending ? -rowid : rowid};
		x->n++;
		/* a shrink moves from a table many times the size: as many times the pace */
		if (x->old)
			move_some(x, MOVE_PER_ADD * ((x->old_mask + 1) / (x->mask + 1) + 1));
	}
	pthread_mutex_unlock(&x->mu);
	return r;
}

void delivery_index_commit(struct delivery_index *x, const struct delivery_key *k)
{
	struct slot *s;

	pthread_mutex_lock(&x->mu);
	s = lookup(x, k);
	if (s && s->row < 0)
		s->row = -s->row;
	pthread_mutex_unlock(&x->mu);
}

bool delivery_index_find(struct delivery_index *x, const struct delivery_key *k, bool with_pending,
                         int64_t *rowid)
{
	struct slot *s;
	bool found;

	pthread_mutex_lock(&x->mu);
	s = lookup(x, k);
	found = s && (s->row > 0 || (with_pending && s->row < 0));
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

/* Take out the entry in slot s (found by lookup_in: in_old says which table), x->mu held. */
static void remove_slot(struct delivery_index *x, struct slot *s, bool in_old)
{
	size_t i, j;

	x->n--;
	if (in_old) {
		s->row = GONE; /* the old table: its runs stay whole for the move */
		return;
	}
	/* shift back each entry after i that may stand at i, until an empty slot */
	i = (size_t)(s - x->v);
	for (j = (i + 1) & x->mask; x->v[j].row != 0; j = (j + 1) & x->mask) {
		if (between(home(x->mask, &x->v[j].k), i, j))
			continue;
		x->v[i] = x->v[j];
		i = j;
	}
	x->v[i] = (struct slot){0};
}

void delivery_index_remove(struct delivery_index *x, const struct delivery_key *k)
{
	struct slot *s;
	bool in_old;

	pthread_mutex_lock(&x->mu);
	s = lookup_in(x, k, &in_old);
	if (s)
		remove_slot(x, s, in_old);
	pthread_mutex_unlock(&x->mu);
}

/* Entries taken out under the mutex at a time: a lookup waits at most that long. */
#define REMOVE_PER_LOCK 256
/* Old slots moved under the mutex at a time after a prune's shrink (most of them empty). */
#define MOVE_PER_LOCK 4096

size_t delivery_index_remove_rows(struct delivery_index *x, const struct delivery_key *keys,
                                  const int64_t *rows, size_t n)
{
	size_t gone = 0;
	bool shrink;

	for (size_t i = 0; i < n;) {
		pthread_mutex_lock(&x->mu);
		for (size_t end = i + REMOVE_PER_LOCK; i < n && i < end; i++) {
			bool in_old;
			struct slot *s = lookup_in(x, &keys[i], &in_old);

			if (s && (s->row == rows[i] || s->row == -rows[i])) {
				remove_slot(x, s, in_old);
				gone++;
			}
		}
		pthread_mutex_unlock(&x->mu);
	}
	/*
	 * far too large now (a burst long gone): a table a quarter of the size or less, and
	 * the large one moved into it now, MOVE_PER_LOCK slots under the mutex at a time
	 * (an add between them moves some too), so its memory goes back even when no
	 * delivery comes after the prune
	 */
	pthread_mutex_lock(&x->mu);
	shrink = !x->old && x->mask + 1 > INDEX_MIN_SLOTS && slots_for(x->n) * 8 <= x->mask + 1 &&
	         resize(x, slots_for(x->n) * 2) == 0; /* out of memory: it stays as it is */
	pthread_mutex_unlock(&x->mu);
	while (shrink) {
		pthread_mutex_lock(&x->mu);
		move_some(x, MOVE_PER_LOCK);
		shrink = x->old != NULL;
		pthread_mutex_unlock(&x->mu);
	}
	return gone;
}

size_t delivery_index_slots(struct delivery_index *x)
{
	size_t n;

	pthread_mutex_lock(&x->mu);
	n = x->mask + 1 + (x->old ? x->old_mask + 1 : 0);
	pthread_mutex_unlock(&x->mu);
	return n;
}

size_t delivery_index_count(struct delivery_index *x)
{
	size_t n;

	pthread_mutex_lock(&x->mu);
	n = x->n;
	pthread_mutex_unlock(&x->mu);
	return n;
}
