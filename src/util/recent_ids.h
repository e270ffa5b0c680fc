/*
 * Recent ids: a fixed-size, lossy memory of ids (webhook delivery ids)
 * known to be recorded, each with when it was. A hit is exact (the whole
 * id is compared) and says "recorded, at that time"; a miss says nothing
 * (the id was never added, or a later one took its slot), so whoever asks
 * must fall back on the record itself. Any thread; one mutex.
 */
#ifndef RUNNERD_RECENT_IDS_H
#define RUNNERD_RECENT_IDS_H

#include "util/common.h"

/* Longer ids are never kept (a miss each time). */
#define RECENT_ID_MAX 80

struct recent_ids;

/* slots: rounded up to a power of two (>= 64). NULL when out of memory. */
struct recent_ids *recent_ids_new(size_t slots);
void recent_ids_free(struct recent_ids *r);

/* Remember id, recorded at at (any unit the caller compares in). */
void recent_ids_add(struct recent_ids *r, const char *id, int64_t at);
/* Forget id, if it is kept (its record was undone). */
void recent_ids_forget(struct recent_ids *r, const char *id);
/* Whether id is kept, recorded at or after since; *at (may be NULL) := when. */
bool recent_ids_has(struct recent_ids *r, const char *id, int64_t since, int64_t *at);

#endif
