/*
 * The webhook deliveries seen (dedup by X-GitHub-Delivery): a table in the
 * order they came, and its index by id in memory (delivery_index.h),
 * loaded when the store opens. The table is what survives a restart; the
 * index answers whether an id was seen, without SQLite.
 */
#include "util/common.h"
#include "store/store_internal.h"

bool store_delivery_id_valid(const char *id)
{
	return id && *id && strnlen(id, STORE_DELIVERY_ID_MAX) < STORE_DELIVERY_ID_MAX;
}

int store_deliveries_load(struct store *s, struct err *e)
{
	struct delivery_key k;
	sqlite3_stmt *st;
	int rc, r;

	s->deliveries = delivery_index_new();
	if (!s->deliveries)
		return err_set(e, -ENOMEM, "state store: out of memory for the deliveries");
	pthread_mutex_lock(&s->mu);
	r = store_stmt_get(s, ST_DELIVERY_LOAD, &st, e);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 1);

		if (!id || !store_delivery_id_valid(id)) {
			r = err_set(e, -EBADMSG, "state store: deliveries: row %lld has a bad id",
			            (long long)sqlite3_column_int64(st, 0));
			break;
		}
		delivery_key_of(id, &k);
		if (sqlite3_column_int64(st, 2) > s->deliveries_newest_at_open)
			s->deliveries_newest_at_open = sqlite3_column_int64(st, 2);
		r = delivery_index_add(s->deliveries, &k, sqlite3_column_int64(st, 2),
		                       sqlite3_column_int64(st, 0), false);
		if (r == -EEXIST) /* two rows of one id: either says it was seen */
			r = 0;
		else if (r < 0)
			r = err_set(e, r, "state store: out of memory for the deliveries");
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_err(s->db, rc, e, "load deliveries");
	if (st)
		store_stmt_done(st);
	pthread_mutex_unlock(&s->mu);
	return r;
}

int store_delivery_record_locked(struct store *s, const struct delivery_key *k, const char *id,
                                 int64_t at, bool pending, struct err *e)
{
	sqlite3_stmt *st;
	int r;

	if (delivery_index_find(s->deliveries, k, true, NULL))
		return -EEXIST;
	r = store_stmt_get(s, ST_DELIVERY_ADD, &st, e);
	if (r < 0)
		return r;
	store_bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, at);
	r = store_stmt_exec(s, st, e, "add delivery");
	if (r < 0)
		return r;
	r = delivery_index_add(s->deliveries, k, at, sqlite3_last_insert_rowid(s->db), pending);
	/* the row is written and not known as seen: a caller without a
	 * transaction cannot take it back, so the error says so */
	return r < 0 ? err_set(e, r, "state store: out of memory for the deliveries") : 0;
}

void store_deliveries_settle(struct store *s, const struct delivery_key *keys, size_t n,
                             bool committed)
{
	for (size_t i = 0; i < n; i++) {
		if (committed)
			delivery_index_commit(s->deliveries, &keys[i]);
		else
			delivery_index_remove(s->deliveries, &keys[i]);
	}
}

int store_delivery_add(struct store *s, const char *id, int64_t now, struct err *e)
{
	struct delivery_key k;
	int r;

	if (!store_delivery_id_valid(id))
		return err_set(e, -EINVAL, "state store: bad delivery id");
	delivery_key_of(id, &k);
	pthread_mutex_lock(&s->mu);
	r = store_delivery_record_locked(s, &k, id, now, false, e);
	pthread_mutex_unlock(&s->mu);
	return r;
}

int store_delivery_forget(struct store *s, const char *id, struct err *e)
{
	struct delivery_key k;
	sqlite3_stmt *st;
	int64_t row;
	int r = 0;

	if (!store_delivery_id_valid(id))
		return 0; /* never recorded */
	delivery_key_of(id, &k);
	pthread_mutex_lock(&s->mu);
	if (delivery_index_find(s->deliveries, &k, false, &row)) {
		r = store_stmt_get(s, ST_DELIVERY_FORGET, &st, e);
		if (r == 0) {
			sqlite3_bind_int64(st, 1, row);
			r = store_stmt_exec(s, st, e, "forget delivery");
		}
		if (r == 0)
			delivery_index_remove(s->deliveries, &k);
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

int store_delivery_seen(struct store *s, const char *id, bool *ret, struct err *e)
{
	struct delivery_key k;

	(void)e;
	if (!store_delivery_id_valid(id)) {
		*ret = false;
		return 0;
	}
	/* the index alone, never the store's mutex: a commit under way does
	 * not hold this up, and its deliveries are not seen until it is done */
	delivery_key_of(id, &k);
	*ret = delivery_index_find(s->deliveries, &k, false, NULL);
	return 0;
}

/* The keys and rows of the deliveries a prune deleted. */
struct pruned {
	struct delivery_key *keys;
	int64_t *rows;
	size_t n, cap;
};

static int pruned_add(struct pruned *p, const char *id, int64_t row)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 1024;
		struct delivery_key *keys = realloc(p->keys, cap * sizeof(*keys));
		int64_t *rows;

		if (!keys)
			return -ENOMEM;
		p->keys = keys;
		rows = realloc(p->rows, cap * sizeof(*rows));
		if (!rows)
			return -ENOMEM;
		p->rows = rows;
		p->cap = cap;
	}
	delivery_key_of(id, &p->keys[p->n]);
	p->rows[p->n++] = row;
	return 0;
}

int store_delivery_prune(struct store *s, int64_t before, struct err *e)
{
	struct pruned p = {0};
	sqlite3_stmt *st;
	int rc = SQLITE_DONE, r;

	pthread_mutex_lock(&s->mu);
	r = store_stmt_get(s, ST_DELIVERY_PRUNE, &st, e);
	if (r == 0) {
		sqlite3_bind_int64(st, 1, before);
		/*
		 * the rows are deleted at the first step, which then hands back
		 * each one's id; out of memory for them, the ids not kept still
		 * count as seen until runnerd restarts, which is harmless
		 */
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *id = (const char *)sqlite3_column_text(st, 1);

			if (id && pruned_add(&p, id, sqlite3_column_int64(st, 0)) < 0)
				break;
		}
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			r = store_db_err(s->db, rc, e, "prune deliveries");
		store_stmt_done(st);
	}
	pthread_mutex_unlock(&s->mu);
	/* a failed delete deleted nothing (the statement is undone) */
	if (r == 0)
		(void)delivery_index_remove_rows(s->deliveries, p.keys, p.rows, p.n);
	free(p.keys);
	free(p.rows);
	return r;
}

int64_t store_deliveries_newest_at_open(struct store *s)
{
	return s->deliveries_newest_at_open;
}
