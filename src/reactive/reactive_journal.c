/*
 * The intake's journal (webhook.answer_after: write). A delivery is
 * answered by the HTTP thread that read it, right after one write(2) of
 * its record to state_dir/intake.journal: in the kernel, so a crash of
 * runnerd keeps it, with no hand-over to another thread on the answer's
 * path. The applier, a thread of its own, writes what the journal holds
 * into the state store (store_intake_write, its usual synced commit) in
 * batches as large as have come, with its place in the journal in the same
 * transaction, and only then is a job waiting for the planner: the pass
 * it asks for sees it. What a power cut can lose is what the applier had
 * not committed yet (a commit or so), as with the flush behind before it;
 * the catch-up after a reboot asks GitHub for it (reactive_catch_up.c).
 *
 * At start, before the intake listens, whatever the journal holds past
 * the place the store kept is applied (a delivery the store has is a
 * duplicate there, so applying twice changes nothing), and the journal
 * starts a new generation. The journal starts over too whenever every
 * record is applied and it has grown past JOURNAL_RESTART_BYTES or its
 * generation is JOURNAL_RESTART_MS old.
 *
 * A delivery id is "seen" from its append on: the store's index once it
 * is applied, this file's index of the ids not applied yet before that,
 * both looked at under one lock with the append.
 *
 * It must never answer a delivery before its record is in the journal,
 * never apply a record twice into a state the first did not leave, and
 * never let a record the store has not committed out of the journal.
 */
#include "util/common.h"
#include "reactive/reactive_internal.h"
#include "store/delivery_index.h"
#include "util/clock.h"
#include "util/journal.h"
#include "util/log.h"
#include "util/strutil.h"

#define JOURNAL_NAME "intake.journal"
/* The store's setting that holds the applier's place: "<generation> <offset>". */
#define KV_JOURNAL_AT "intake.journal_at"
/*
 * A journal all applied starts over once it holds this many bytes, or
 * records this old: a record is never older than the store's memory of
 * deliveries (REACTIVE_KEEP_MS), so one applied again is always a
 * duplicate there.
 */
#define JOURNAL_RESTART_BYTES (64u * 1024 * 1024)
#define JOURNAL_RESTART_MS    (3600LL * 1000)
/* The applier's wait after a failed commit: doubled from the first up to the last. */
#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS   5000
#define RECORD_VERSION 1
/*
 * Under a stream of deliveries (the last commit ended less than STREAM_MS
 * ago) the applier lets a small backlog (under HOLD_BYTES of records) grow
 * for HOLD_US before it commits: the answers do not wait for its commits,
 * and a commit's fixed cost (its fsync above all) is paid by more of them.
 * A delivery after a quiet spell is committed at once.
 */
#define STREAM_MS  2
#define HOLD_BYTES (32u * 1024)
#define HOLD_US    1000
/*
 * How far the applier may fall behind the answers: past this many bytes of
 * records not in the store (about 28,000 deliveries, a second or two of
 * the applier's work), an append waits for room, BEHIND_WAIT_MS at most,
 * then the delivery is answered 503 (GitHub's redelivery, or the backfill,
 * brings it back). So a flat-out stream, or a store that fails, cannot
 * make the journal or the wait for a job's runner grow without bound.
 */
#define BEHIND_MAX_BYTES (8u * 1024 * 1024)
#define BEHIND_WAIT_MS   2000

struct reactive_journal {
	struct reactive *rx;
	struct journal *j;
	pthread_t thread;
	bool started;

	pthread_mutex_t mu;     /* what follows, and every append */
	pthread_cond_t wake;    /* the applier: records to apply, or stop */
	pthread_cond_t settled; /* applied reached the end, or a commit failed */
	pthread_cond_t room;    /* applied moved on: appends that wait for room */
	uint64_t behind_max;    /* BEHIND_MAX_BYTES (the tests make it smaller) */
	bool stopping;
	uint64_t applied;                 /* records before this offset are in the store */
	uint64_t applied_n;               /* records applied since the start */
	struct delivery_index *unapplied; /* ids appended, not in the store yet */
	uint64_t commits, commit_max, commit_us, failed;
	bool failing;         /* the last commit failed */
	int64_t begun_ms;     /* when this generation began (clock_mono_ms) */
	int64_t committed_us; /* when the applier's last commit ended (clock_mono_us), 0 none */

	/* the applier's batch */
	struct store_intake rows[REACTIVE_BATCH_MAX];
	struct store_intake *ptrs[REACTIVE_BATCH_MAX];
	size_t n;
};

/* ---- records: a delivery's store_intake as bytes ---- */

struct enc {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct enc *w, const void *v, size_t n)
{
	if (w->len + n <= w->cap)
		memcpy(w->p + w->len, v, n);
	w->len += n;
}

static void put_i64(struct enc *w, int64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)v >> (8 * i));
	put(w, b, 8);
}

static void put_str(struct enc *w, const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	uint8_t b[2] = {(uint8_t)n, (uint8_t)(n >> 8)};

	put(w, b, 2);
	put(w, s, n);
}

/* The record of in into out (cap bytes): its length, or -ENOSPC. */
static int encode(const struct store_intake *in, uint8_t *out, size_t cap)
{
	struct enc w = {out, 0, cap};
	const struct store_job *j = &in->job;
	uint8_t head[2] = {RECORD_VERSION, (uint8_t)in->op};

	put(&w, head, 2);
	put_str(&w, in->delivery_id, sizeof(in->delivery_id));
	put_i64(&w, in->received_at);
	put_i64(&w, j->job_id);
	put_i64(&w, j->run_id);
	put_str(&w, j->repo, sizeof(j->repo));
	put_str(&w, j->labels, sizeof(j->labels));
	put_str(&w, j->flavor, sizeof(j->flavor));
	put_str(&w, j->delivery_id, sizeof(j->delivery_id));
	put_i64(&w, j->received_at);
	put_i64(&w, j->done_at);
	put_str(&w, j->done_why, sizeof(j->done_why));
	put_i64(&w, j->next_at);
	return w.len <= cap ? (int)w.len : -ENOSPC;
}

struct dec {
	const uint8_t *p;
	size_t len, at;
	bool bad;
};

static int64_t get_i64(struct dec *r)
{
	uint64_t v = 0;

	if (r->len - r->at < 8) {
		r->bad = true;
		return 0;
	}
	for (int i = 7; i >= 0; i--)
		v = v << 8 | r->p[r->at + (size_t)i];
	r->at += 8;
	return (int64_t)v;
}

static void get_str(struct dec *r, char *out, size_t cap)
{
	size_t n;

	out[0] = '\0';
	if (r->len - r->at < 2) {
		r->bad = true;
		return;
	}
	n = (size_t)r->p[r->at] | (size_t)r->p[r->at + 1] << 8;
	r->at += 2;
	if (n >= cap || r->len - r->at < n || memchr(r->p + r->at, '\0', n)) {
		r->bad = true;
		return;
	}
	memcpy(out, r->p + r->at, n);
	out[n] = '\0';
	r->at += n;
}

/* The store_intake of a record: 0, or -EBADMSG. */
static int decode(const void *data, size_t len, struct store_intake *in)
{
	struct dec r = {data, len, 2, false};
	struct store_job *j = &in->job;

	memset(in, 0, sizeof(*in));
	if (len < 2 || r.p[0] != RECORD_VERSION || r.p[1] > STORE_INTAKE_JOB_DONE)
		return -EBADMSG;
	in->op = (enum store_intake_op)r.p[1];
	get_str(&r, in->delivery_id, sizeof(in->delivery_id));
	in->received_at = get_i64(&r);
	j->job_id = get_i64(&r);
	j->run_id = get_i64(&r);
	get_str(&r, j->repo, sizeof(j->repo));
	get_str(&r, j->labels, sizeof(j->labels));
	get_str(&r, j->flavor, sizeof(j->flavor));
	get_str(&r, j->delivery_id, sizeof(j->delivery_id));
	j->received_at = get_i64(&r);
	j->done_at = get_i64(&r);
	get_str(&r, j->done_why, sizeof(j->done_why));
	j->next_at = get_i64(&r);
	return r.bad || r.at != len ? -EBADMSG : 0;
}

/* ---- the applier ---- */

static int take_record(void *ctx, const void *data, size_t len)
{
	struct reactive_journal *jr = ctx;
	struct store_intake *in = &jr->rows[jr->n];

	if (decode(data, len, in) < 0 || !store_intake_valid(in)) {
		/* it checked, so runnerd wrote it: a record of another version, say */
		log_error("webhook journal: a record runnerd cannot read (%zu bytes): skipped",
		          len);
		return 0;
	}
	jr->ptrs[jr->n++] = in;
	return 0;
}

/*
 * Apply the records from *pos up to upto, REACTIVE_BATCH_MAX at most, in
 * one commit: 0 and *pos after them; < 0 when the commit failed (nothing of
 * it kept, *pos as it was). -EBADMSG: a record at *pos does not check.
 */
static int apply_some(struct reactive_journal *jr, uint64_t *pos, uint64_t upto)
{
	uint64_t at = *pos;
	char mark[64];
	struct err e = {0};
	int64_t t0;
	int r;

	jr->n = 0;
	r = journal_read(jr->j, &at, upto, REACTIVE_BATCH_MAX, take_record, jr);
	if (r < 0 && at == *pos)
		return r;
	snprintf(mark, sizeof(mark), "%" PRIu64 " %" PRIu64, journal_generation(jr->j), at);
	t0 = clock_mono_us();
	r = store_intake_write_marked(jr->rx->store, jr->ptrs, jr->n, KV_JOURNAL_AT, mark, &e);
	pthread_mutex_lock(&jr->mu);
	if (r < 0) {
		jr->failed++;
		if (!jr->failing)
			log_error("webhook journal: %zu deliveries not written to the state store "
			          "(tried "
			          "again; they stay in the journal until they are): %s",
			          jr->n, e.msg);
		jr->failing = true;
		pthread_cond_broadcast(&jr->settled);
		pthread_mutex_unlock(&jr->mu);
		return r;
	}
	if (jr->failing)
		log_info("webhook journal: the state store takes deliveries again");
	jr->failing = false;
	jr->commits++;
	jr->commit_us += (uint64_t)(clock_mono_us() - t0);
	if (jr->n > jr->commit_max)
		jr->commit_max = jr->n;
	jr->applied_n += jr->n;
	for (size_t i = 0; i < jr->n; i++) {
		struct delivery_key k;

		delivery_key_of(jr->rows[i].delivery_id, &k);
		delivery_index_remove(jr->unapplied, &k);
	}
	pthread_mutex_unlock(&jr->mu);
	*pos = at;
	/* counted, logged (the batch's lines gathered into few writes), a pass asked for:
	 * each as it would have been answered */
	log_gather(true);
	for (size_t i = 0; i < jr->n; i++)
		reactive_intake_written(jr->rx, &jr->rows[i]);
	log_gather(false);
	return 0;
}

/* The place the store kept, in this generation of the journal (the first record otherwise). */
static uint64_t kept_place(struct reactive_journal *jr)
{
	char *v = NULL, *end = NULL;
	uint64_t gen, at = 0;

	if (store_kv_get(jr->rx->store, KV_JOURNAL_AT, &v, NULL) < 0)
		return 0;
	errno = 0;
	gen = strtoull(v, &end, 10);
	if (!errno && end != v && *end == ' ' && gen == journal_generation(jr->j))
		at = strtoull(end + 1, NULL, 10);
	free(v);
	return at <= journal_end(jr->j) ? at : 0;
}

static void *applier(void *arg)
{
	struct reactive_journal *jr = arg;
	int64_t wait_ms = 0;

	pthread_setname_np(pthread_self(), "intake-journal");
	pthread_mutex_lock(&jr->mu);
	for (;;) {
		uint64_t pos = jr->applied, upto;
		struct err e = {0};
		int r;

		if (wait_ms > 0) {
			/* after a failed commit: appends do not cut the wait short, a stop does */
			int64_t until = clock_wall_ms() + wait_ms;
			struct timespec ts = {.tv_sec = until / 1000,
			                      .tv_nsec = (until % 1000) * 1000000L};

			while (!jr->stopping &&
			       pthread_cond_timedwait(&jr->wake, &jr->mu, &ts) != ETIMEDOUT)
				;
		}
		while (jr->applied == journal_end(jr->j) && !jr->stopping)
			pthread_cond_wait(&jr->wake, &jr->mu);
		if (!jr->stopping && wait_ms == 0 && jr->committed_us &&
		    clock_mono_us() - jr->committed_us < STREAM_MS * 1000 &&
		    journal_end(jr->j) - jr->applied < HOLD_BYTES) {
			pthread_mutex_unlock(&jr->mu);
			usleep(HOLD_US);
			pthread_mutex_lock(&jr->mu);
		}
		upto = journal_end(jr->j);
		/* stopping: all applied, or the store fails (the next start applies the rest) */
		if (jr->applied == upto || (jr->stopping && wait_ms > 0))
			break;
		pthread_mutex_unlock(&jr->mu);
		r = apply_some(jr, &pos, upto);
		pthread_mutex_lock(&jr->mu);
		if (r == -EBADMSG) {
			/* runnerd's own records, in the kernel: only a broken disk does this */
			log_error("webhook journal: a record at %" PRIu64 " does not check: the "
			          "%" PRIu64 " bytes after it are dropped",
			          pos, upto - pos);
			pos = upto;
			r = 0;
		}
		if (r < 0) {
			wait_ms = wait_ms ? wait_ms * 2 : RETRY_FIRST_MS;
			if (wait_ms > RETRY_MAX_MS)
				wait_ms = RETRY_MAX_MS;
			continue;
		}
		wait_ms = 0;
		jr->applied = pos;
		jr->committed_us = clock_mono_us();
		pthread_cond_broadcast(&jr->room);
		if (jr->applied == journal_end(jr->j)) {
			bool old = clock_mono_ms() - jr->begun_ms >= JOURNAL_RESTART_MS;

			if (jr->applied > JOURNAL_HEADER_BYTES &&
			    (jr->applied >= JOURNAL_RESTART_BYTES || old) &&
			    journal_restart(jr->j, &e) == 0) {
				jr->applied = journal_end(jr->j);
				jr->begun_ms = clock_mono_ms();
			} else if (e.msg[0])
				log_warn("webhook journal: %s (it grows until it can start over)",
				         e.msg);
			pthread_cond_broadcast(&jr->settled);
		}
	}
	pthread_cond_broadcast(&jr->settled);
	pthread_mutex_unlock(&jr->mu);
	return NULL;
}

/* What an earlier run left in the journal, into the store, before the intake listens. */
static int replay(struct reactive_journal *jr, struct err *e)
{
	uint64_t pos = kept_place(jr), upto = journal_end(jr->j), n = 0;
	int r = 0;

	while (pos < upto) {
		r = apply_some(jr, &pos, upto);
		if (r == -EBADMSG && n == 0 && pos > JOURNAL_HEADER_BYTES) {
			/* the place kept is not a record's (journal_open cut what does not
			 * check at its end): all of it again, each one the store has a duplicate */
			pos = JOURNAL_HEADER_BYTES;
			continue;
		}
		if (r == -EBADMSG)
			break;
		if (r < 0)
			return err_set(e, r,
			               "webhook journal: applying what it holds: the state "
			               "store fails");
		n += jr->n;
	}
	if (n)
		log_info("webhook journal: %" PRIu64 " deliveries answered before the restart "
		         "written to the state store",
		         n);
	if (upto > JOURNAL_HEADER_BYTES)
		return journal_restart(jr->j, e);
	return 0;
}

bool reactive_journal_exists(const char *state_dir)
{
	char path[PATH_MAX];

	return (size_t)snprintf(path, sizeof(path), "%s/%s", state_dir, JOURNAL_NAME) <
	               sizeof(path) &&
	       access(path, F_OK) == 0;
}

int reactive_journal_open(struct reactive *rx, const char *state_dir, struct reactive_journal **ret,
                          struct err *e)
{
	struct reactive_journal *jr;
	char path[PATH_MAX];
	uint64_t cut = 0;
	int r;

	*ret = NULL;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", state_dir, JOURNAL_NAME) >= sizeof(path))
		return err_set(e, -ENAMETOOLONG, "webhook journal: state_dir too long");
	jr = calloc(1, sizeof(*jr));
	if (!jr || !(jr->unapplied = delivery_index_new())) {
		free(jr);
		return err_set(e, -ENOMEM, "webhook journal: out of memory");
	}
	jr->rx = rx;
	pthread_mutex_init(&jr->mu, NULL);
	pthread_cond_init(&jr->wake, NULL);
	pthread_cond_init(&jr->settled, NULL);
	pthread_cond_init(&jr->room, NULL);
	jr->behind_max = BEHIND_MAX_BYTES;
	r = journal_open(path, &jr->j, &cut, e);
	if (r == -EBADMSG) {
		/* not a journal: kept aside for a look, and a new one begun */
		char aside[PATH_MAX + 32];

		snprintf(aside, sizeof(aside), "%s.bad-%" PRId64, path, clock_wall_ms() / 1000);
		if (rename(path, aside) < 0) {
			r = err_set(e, -errno,
			            "webhook journal: %s is not a journal, and moving it "
			            "aside failed: %s",
			            path, strerror(errno));
			goto fail;
		}
		log_error("webhook journal: %s is not a journal (its header): moved to %s; what it "
		          "held is not written to the state store",
		          path, aside);
		*e = (struct err){0};
		r = journal_open(path, &jr->j, &cut, e);
	}
	if (r < 0)
		goto fail;
	if (cut)
		log_warn("webhook journal: %" PRIu64 " bytes at its end did not check (a crash "
		         "of the machine): cut; what they held was never answered, or the "
		         "catch-up asks GitHub for it",
		         cut);
	r = replay(jr, e);
	if (r < 0)
		goto fail;
	jr->applied = journal_end(jr->j);
	jr->begun_ms = clock_mono_ms();
	r = pthread_create(&jr->thread, NULL, applier, jr);
	if (r) {
		r = err_set(e, -r, "webhook journal: its thread: %s", strerror(r));
		goto fail;
	}
	jr->started = true;
	*ret = jr;
	return 0;
fail:
	reactive_journal_close(jr);
	return r;
}

/* With jr->mu held: 0 once the applier is less than behind_max behind, or -EBUSY. */
static int wait_for_room(struct reactive_journal *jr)
{
	int64_t until = clock_wall_ms() + BEHIND_WAIT_MS;
	struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000L};

	while (journal_end(jr->j) - jr->applied >= jr->behind_max)
		if (pthread_cond_timedwait(&jr->room, &jr->mu, &ts) == ETIMEDOUT)
			return journal_end(jr->j) - jr->applied >= jr->behind_max ? -EBUSY : 0;
	return 0;
}

void reactive_journal_set_behind_max(struct reactive_journal *jr, uint64_t bytes)
{
	pthread_mutex_lock(&jr->mu);
	jr->behind_max = bytes;
	pthread_mutex_unlock(&jr->mu);
}

int reactive_journal_take(struct reactive_journal *jr, struct store_intake *in, bool *seen)
{
	uint8_t rec[sizeof(struct store_intake)];
	struct delivery_key k;
	bool in_store = false;
	int len, r;

	*seen = false;
	if (!store_intake_valid(in))
		return -EINVAL;
	len = encode(in, rec, sizeof(rec));
	if (len < 0)
		return len;
	delivery_key_of(in->delivery_id, &k);
	pthread_mutex_lock(&jr->mu);
	r = wait_for_room(jr);
	if (r < 0) {
		pthread_mutex_unlock(&jr->mu);
		return r;
	}
	/* seen: in the store (applied), or appended and not applied yet */
	if (delivery_index_find(jr->unapplied, &k, false, NULL) ||
	    (store_delivery_seen(jr->rx->store, in->delivery_id, &in_store, NULL) == 0 &&
	     in_store)) {
		*seen = true;
		r = 0;
	} else {
		r = journal_append(jr->j, rec, (size_t)len, NULL);
		if (r == 0) {
			r = delivery_index_add(jr->unapplied, &k, in->received_at, 1, false);
			if (r == -EEXIST)
				r = 0;
			pthread_cond_signal(&jr->wake);
		}
	}
	pthread_mutex_unlock(&jr->mu);
	return r;
}

int reactive_journal_settle(struct reactive_journal *jr, int64_t timeout_ms)
{
	int64_t until = clock_wall_ms() + timeout_ms;
	struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000L};
	int r = 0;

	if (!jr)
		return 0;
	pthread_mutex_lock(&jr->mu);
	while (jr->applied != journal_end(jr->j) && !jr->failing && jr->started && r == 0)
		r = pthread_cond_timedwait(&jr->settled, &jr->mu, &ts);
	r = jr->applied == journal_end(jr->j) ? 0 : -EIO;
	pthread_mutex_unlock(&jr->mu);
	return r;
}

void reactive_journal_counts(struct reactive_journal *jr, struct reactive_journal_counts *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!jr)
		return;
	pthread_mutex_lock(&jr->mu);
	ret->written = jr->applied_n;
	ret->commits = jr->commits;
	ret->commit_max = jr->commit_max;
	ret->commit_us = jr->commit_us;
	ret->behind = delivery_index_count(jr->unapplied);
	ret->failed = jr->failed;
	pthread_mutex_unlock(&jr->mu);
}

void reactive_journal_close(struct reactive_journal *jr)
{
	if (!jr)
		return;
	if (jr->started) {
		pthread_mutex_lock(&jr->mu);
		jr->stopping = true;
		pthread_cond_signal(&jr->wake);
		pthread_mutex_unlock(&jr->mu);
		pthread_join(jr->thread, NULL);
	}
	journal_close(jr->j);
	delivery_index_free(jr->unapplied);
	pthread_cond_destroy(&jr->wake);
	pthread_cond_destroy(&jr->settled);
	pthread_cond_destroy(&jr->room);
	pthread_mutex_destroy(&jr->mu);
	free(jr);
}
