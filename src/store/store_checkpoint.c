/*
 * The WAL's checkpoints, beside the writers. By default SQLite checkpoints
 * in the commit that takes the WAL past 1,000 pages: that commit copies the
 * WAL's pages into the database file and syncs it before it returns. Under
 * a webhook burst that held the intake's batch for 5-25 ms every hundred
 * commits or so, now and then 160 ms. Here that commit only wakes this
 * thread, whose own connection checkpoints PASSIVE while the writers go on.
 *
 * Frames committed during that copy are not in it, and if writes never
 * paused the WAL would never start over: it would grow for as long as the
 * burst lasts. So after each copy the thread copies those too while it
 * holds the store's mutex (no write can come then). That is a few hundred
 * pages at most, and the next write starts the WAL from its beginning.
 */
#include "util/common.h"
#include "store/store_internal.h"

/* SQLite's own threshold for its automatic checkpoints. */
#define CHECKPOINT_PAGES 1000

/* s->db's WAL hook: after each commit, in the committing thread (s->mu held). */
static int wal_grown(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct store *s = arg;

	(void)db;
	(void)name;
	if (pages >= CHECKPOINT_PAGES) {
		pthread_mutex_lock(&s->ck.mu);
		if (!s->ck.wanted) {
			s->ck.wanted = true;
			pthread_cond_signal(&s->ck.wake);
		}
		pthread_mutex_unlock(&s->ck.mu);
	}
	return SQLITE_OK;
}

/* One PASSIVE checkpoint: the frames the WAL had when it began, copied as far as readers allow. */
static int checkpoint(sqlite3 *db)
{
	return sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
}

static void *checkpointer(void *arg)
{
	struct store *s = arg;
	struct store_checkpointer *ck = &s->ck;

	pthread_setname_np(pthread_self(), "checkpoint");
	pthread_mutex_lock(&ck->mu);
	for (;;) {
		int rc;

		while (!ck->wanted && !ck->stopping)
			pthread_cond_wait(&ck->wake, &ck->mu);
		if (ck->stopping)
			break;
		ck->wanted = false;
		pthread_mutex_unlock(&ck->mu);
		rc = checkpoint(ck->db);
		if (rc == SQLITE_OK) {
			/*
			 * what was committed meanwhile (a copy counts only the frames there
			 * were when it began), the writers held: then the WAL has nothing
			 * left to copy, and the next write starts it over
			 */
			pthread_mutex_lock(&s->mu);
			rc = checkpoint(ck->db);
			pthread_mutex_unlock(&s->mu);
		}
		pthread_mutex_lock(&ck->mu);
		ck->runs++;
		/* BUSY: another process checkpoints (an operator's sqlite3): the next one will */
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			ck->failed++;
	}
	pthread_mutex_unlock(&ck->mu);
	return NULL;
}

int store_checkpointer_start(struct store *s, const char *path, struct err *e)
{
	struct store_checkpointer *ck = &s->ck;
	int r;

	r = store_db_open(path, &ck->db, e);
	if (r < 0)
		return r;
	pthread_mutex_init(&ck->mu, NULL);
	pthread_cond_init(&ck->wake, NULL);
	r = pthread_create(&ck->thread, NULL, checkpointer, s);
	if (r != 0) {
		pthread_cond_destroy(&ck->wake);
		pthread_mutex_destroy(&ck->mu);
		sqlite3_close(ck->db);
		ck->db = NULL;
		return err_set(e, -r, "state store: cannot start the checkpointer: %s",
		               strerror(r));
	}
	ck->started = true;
	/* a WAL hook of our own turns SQLite's automatic checkpoints off */
	sqlite3_wal_hook(s->db, wal_grown, s);
	return 0;
}

void store_checkpointer_stop(struct store *s)
{
	struct store_checkpointer *ck = &s->ck;

	if (ck->started) {
		sqlite3_wal_autocheckpoint(s->db,
		                           CHECKPOINT_PAGES); /* the hook off: SQLite's again */
		pthread_mutex_lock(&ck->mu);
		ck->stopping = true;
		pthread_cond_signal(&ck->wake);
		pthread_mutex_unlock(&ck->mu);
		pthread_join(ck->thread, NULL);
		pthread_cond_destroy(&ck->wake);
		pthread_mutex_destroy(&ck->mu);
		ck->started = false;
	}
	sqlite3_close(ck->db);
	ck->db = NULL;
}

void store_checkpoint_counts(struct store *s, uint64_t *runs, uint64_t *failed)
{
	pthread_mutex_lock(&s->ck.mu);
	*runs = s->ck.runs;
	*failed = s->ck.failed;
	pthread_mutex_unlock(&s->ck.mu);
}
