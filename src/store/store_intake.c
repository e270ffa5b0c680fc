/*
 * store_intake_write: the webhook intake's batches, each delivery recorded
 * (store_deliveries.c) and its job added or marked done (store_jobs.c), all
 * in one transaction, so one fsync for the batch.
 */
#include "util/common.h"
#include "store/store_internal.h"

/* One delivery of store_intake_write, with s->mu held and a transaction
 * open; *added: its key went into the index as pending. */
static int intake_one(struct store *s, struct store_intake *in, const struct delivery_key *k,
                      bool *added, struct err *e)
{
	int r = store_delivery_record_locked(s, k, in->delivery_id, in->received_at, true, e);

	in->seen = r == -EEXIST;
	in->job_known = false;
	*added = r == 0;
	if (r < 0)
		return in->seen ? 0 : r;
	switch (in->op) {
	case STORE_INTAKE_JOB_ADD:
		r = store_job_add_locked(s, &in->job, e);
		in->job_known = r == -EEXIST;
		return in->job_known ? 0 : r;
	case STORE_INTAKE_JOB_DONE:
		return store_job_done_locked(s, in->job.job_id, in->job.done_why, in->job.done_at,
		                             e);
	default:
		return 0;
	}
}

bool store_intake_valid(const struct store_intake *in)
{
	if (!store_delivery_id_valid(in->delivery_id))
		return false;
	switch (in->op) {
	case STORE_INTAKE_RECORD:
		return true;
	case STORE_INTAKE_JOB_ADD:
		return store_job_valid(&in->job);
	case STORE_INTAKE_JOB_DONE:
		return in->job.job_id > 0 && in->job.done_at > 0 &&
		       store_field_terminated(in->job.done_why, sizeof(in->job.done_why));
	default:
		return false;
	}
}

int store_intake_write_marked(struct store *s, struct store_intake *const *v, size_t n,
                              const char *key, const char *value, struct err *e)
{
	struct delivery_key *keys;
	size_t added = 0;
	int rc, r = 0;

	for (size_t i = 0; i < n; i++)
		if (!store_intake_valid(v[i]))
			return err_set(e, -EINVAL, "state store: a delivery with a bad id or job");
	if (n == 0)
		return key ? store_kv_set(s, key, value, e) : 0;
	/* the keys before the lock: hashing is no part of the serial path */
	keys = malloc(n * sizeof(*keys));
	if (!keys)
		return err_set(e, -ENOMEM, "state store: out of memory");
	for (size_t i = 0; i < n; i++)
		delivery_key_of(v[i]->delivery_id, &keys[i]);
	pthread_mutex_lock(&s->mu);
	/* IMMEDIATE: the write lock first, so no statement of it meets SQLITE_BUSY halfway */
	rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = store_db_err(s->db, rc, e, "begin deliveries");
		goto out;
	}
	for (size_t i = 0; r == 0 && i < n; i++) {
		bool one = false;

		r = intake_one(s, v[i], &keys[i], &one, e);
		if (one) /* the keys added, first in keys[] (the rest are seen, or not reached) */
			keys[added++] = keys[i];
	}
	if (r == 0 && key)
		r = store_kv_set_locked(s, key, value, e);
	if (r == 0) {
		/* synchronous = FULL: the one fsync of the whole batch */
		rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			r = store_db_err(s->db, rc, e, "commit deliveries");
	}
	if (r < 0 && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	/* a COMMIT that failed may have left the transaction open (then rolled
	 * back above) or ended it: in both cases nothing of it is kept */
	store_deliveries_settle(s, keys, added, r == 0);
out:
	pthread_mutex_unlock(&s->mu);
	free(keys);
	return r;
}

int store_intake_write(struct store *s, struct store_intake *const *v, size_t n, struct err *e)
{
	return store_intake_write_marked(s, v, n, NULL, NULL, e);
}
