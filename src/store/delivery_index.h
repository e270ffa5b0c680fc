/*
 * The deliveries table's index by id, kept in memory (store_deliveries.c).
 * The table is a log in the order deliveries came, with no index on the
 * id: GitHub's delivery ids are random GUIDs, and an index of them had
 * each recorded delivery write a random page of it (a 4 KiB WAL frame a
 * delivery, the most of a commit's pages). This index answers "seen?"
 * instead, loaded from the table when the store opens and kept with it.
 *
 * An id is kept as the first 128 bits of its SHA-256 (32 bytes a delivery
 * with its time and row, about 64 MB for a million): two ids are taken for
 * one only when those bits agree, about once in 10^26 for a million ids.
 *
 * An entry is pending (written in a transaction not yet committed: seen by
 * the writer, which holds the store's mutex, and by nobody else) or
 * committed. Any thread; one mutex of its own, taken after the store's.
 */
#ifndef RUNNERD_STORE_DELIVERY_INDEX_H
#define RUNNERD_STORE_DELIVERY_INDEX_H

#include "util/common.h"

struct delivery_key {
	uint64_t hi, lo;
};

/* The key of id (NUL-terminated, any length). */
void delivery_key_of(const char *id, struct delivery_key *ret);

struct delivery_index;

/* NULL when out of memory. */
struct delivery_index *delivery_index_new(void);
void delivery_index_free(struct delivery_index *x); /* NULL-safe */

/* Add k, recorded at `at` in row `rowid` (> 0): 0; -EEXIST when k is in
 * (pending or committed; nothing changes); -ENOMEM. */
int delivery_index_add(struct delivery_index *x, const struct delivery_key *k, int64_t at,
                       int64_t rowid, bool pending);
/* A pending k is committed now (others see it). */
void delivery_index_commit(struct delivery_index *x, const struct delivery_key *k);
/* Whether k is in: committed ones only, or pending ones too. *rowid (may be
 * NULL) := its row. */
bool delivery_index_find(struct delivery_index *x, const struct delivery_key *k, bool with_pending,
                         int64_t *rowid);
/* Take k out (missing is fine). */
void delivery_index_remove(struct delivery_index *x, const struct delivery_key *k);
/*
 * The prune (store_deliveries.c): take out each keys[i] still held for row
 * rows[i] (a key held for another row stays), a few hundred under the mutex
 * at a time; how many went. Then the table, when far larger than what is
 * left needs, moves into a smaller one, a few thousand slots under the
 * mutex at a time, before the call returns.
 */
size_t delivery_index_remove_rows(struct delivery_index *x, const struct delivery_key *keys,
                                  const int64_t *rows, size_t n);
size_t delivery_index_count(struct delivery_index *x);
/* The slots held, both tables' while one moves into the other (the tests: a prune frees memory). */
size_t delivery_index_slots(struct delivery_index *x);

#endif
