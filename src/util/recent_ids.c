/*
 * The table of recent_ids.h: direct-mapped (one slot per hash), so an add
 * costs one hash and one copy and evicts whatever held the slot. It must
 * never answer a hit for an id it was not given, hence the full compare.
 */
#include "util/common.h"
#include "util/recent_ids.h"
#include "util/strutil.h"

#include <pthread.h>

struct slot {
	char id[RECENT_ID_MAX]; /* "" when empty */
	int64_t at;
};

struct recent_ids {
	pthread_mutex_t mu;
	size_t mask;
	struct slot *v;
};

/* FNV-1a, 64 bits: delivery ids are GUIDs, spread enough already. */
static uint64_t hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

struct recent_ids *recent_ids_new(size_t slots)
{
	struct recent_ids *r = calloc(1, sizeof(*r));
	size_t n = 64;

	if (!r)
		return NULL;
	while (n < slots && n < ((size_t)1 << 30))
		n <<= 1;
	r->v = calloc(n, sizeof(*r->v));
	if (!r->v) {
		free(r);
		return NULL;
	}
	r->mask = n - 1;
	pthread_mutex_init(&r->mu, NULL);
	return r;
}

void recent_ids_free(struct recent_ids *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->mu);
	free(r->v);
	free(r);
}

static bool keepable(const char *id)
{
	return id && *id && strnlen(id, RECENT_ID_MAX) < RECENT_ID_MAX;
}

void recent_ids_add(struct recent_ids *r, const char *id, int64_t at)
{
	struct slot *s;

	if (!r || !keepable(id))
		return;
	s = &r->v[hash(id) & r->mask];
	pthread_mutex_lock(&r->mu);
	str_copy(s->id, id, sizeof(s->id));
	s->at = at;
	pthread_mutex_unlock(&r->mu);
}

void recent_ids_forget(struct recent_ids *r, const char *id)
{
	struct slot *s;

	if (!r || !keepable(id))
		return;
	s = &r->v[hash(id) & r->mask];
	pthread_mutex_lock(&r->mu);
	if (strcmp(s->id, id) == 0)
		s->id[0] = '\0';
	pthread_mutex_unlock(&r->mu);
}

bool recent_ids_has(struct recent_ids *r, const char *id, int64_t since, int64_t *at)
{
	struct slot *s;
	bool hit;

	if (!r || !keepable(id))
		return false;
	s = &r->v[hash(id) & r->mask];
	pthread_mutex_lock(&r->mu);
	hit = strcmp(s->id, id) == 0 && s->at >= since;
	if (hit && at)
		*at = s->at;
	pthread_mutex_unlock(&r->mu);
	return hit;
}
