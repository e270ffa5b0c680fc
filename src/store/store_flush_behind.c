/*
 * The intake's commits flushed behind their answers (webhook.answer_after:
 * write). A commit of store_intake_write normally returns once its WAL
 * frames are on disk: SQLite fsyncs the WAL in the COMMIT. With flush
 * behind on, the VFS (store_vfs.c) writes the frames into the file, so
 * they are in the kernel and survive a crash of runnerd, and skips the
 * fsync; it tells this thread instead, which fdatasyncs the WAL by a
 * descriptor of its own as soon as it can, each sync covering every commit
 * written before it began. What a power cut can lose is the commits of the
 * last sync or so, a millisecond on an idle disk; the reactive side
 * recovers them from GitHub after a reboot (reactive_catch_up.c).
 *
 * Only the intake's commits are flushed behind, and of those never the one
 * that starts the WAL over (store_vfs.c syncs its header for real, as
 * SQLite requires). Every other write of the store is on disk when its call
 * returns, and the checkpointer syncs the WAL itself before it copies it.
 *
 * A sync that fails (the disk went away, say) is logged and counted, and
 * from then on the intake's commits sync themselves again, so the failure
 * reaches the deliveries that would have relied on it (a 500: GitHub's
 * redelivery or the backfill brings them back).
 */
#include "util/common.h"
#include "store/store_internal.h"
#include "util/log.h"

#include <fcntl.h>

/* After each intake commit that skipped its sync (the committing thread, s->mu held). */
static void written(void *arg)
{
	struct store_flusher *fl = arg;

	pthread_mutex_lock(&fl->mu);
	fl->written++;
	pthread_cond_signal(&fl->wake);
	pthread_mutex_unlock(&fl->mu);
}

/* The WAL's descriptor, opened the first time it is needed (the file exists by then). */
static int wal_fd(struct store_flusher *fl)
{
	if (fl->fd < 0)
		fl->fd = open(fl->wal_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return fl->fd;
}

static void *flusher(void *arg)
{
	struct store_flusher *fl = arg;

	pthread_mutex_lock(&fl->mu);
	for (;;) {
		uint64_t upto;
		int r, fd;

		while (fl->synced == fl->written && !fl->stopping)
			pthread_cond_wait(&fl->wake, &fl->mu);
		if (fl->synced == fl->written)
			break; /* stopping, and nothing left to sync */
		upto = fl->written;
		pthread_mutex_unlock(&fl->mu);
		fd = wal_fd(fl);
		r = fd < 0 || fdatasync(fd) < 0 ? -errno : 0;
		pthread_mutex_lock(&fl->mu);
		fl->syncs++;
		fl->synced = upto;
		if (r < 0) {
			fl->failed++;
			if (!atomic_exchange(&fl->failing, true))
				log_error("state store: syncing %s behind the intake's commits "
				          "failed: %s; the intake's commits sync themselves from "
				          "now on",
				          fl->wal_path, strerror(-r));
		}
		pthread_cond_broadcast(&fl->done);
	}
	pthread_mutex_unlock(&fl->mu);
	return NULL;
}

int store_flush_behind_init(struct store *s, const char *path, struct err *e)
{
	struct store_flusher *fl = &s->fl;

	if ((size_t)snprintf(fl->wal_path, sizeof(fl->wal_path), "%s-wal", path) >=
	    sizeof(fl->wal_path))
		return err_set(e, -ENAMETOOLONG, "state store: %s-wal: path too long", path);
	fl->fd = -1;
	fl->defer = (struct store_vfs_defer){.written = written, .arg = fl};
	pthread_mutex_init(&fl->mu, NULL);
	pthread_cond_init(&fl->wake, NULL);
	pthread_cond_init(&fl->done, NULL);
	fl->inited = true;
	return 0;
}

/* The thread, the first time flushing behind is turned on (fl->mu held). */
static void start(struct store_flusher *fl)
{
	int r;

	if (atomic_load(&fl->started))
		return;
	r = pthread_create(&fl->thread, NULL, flusher, fl);
	if (r != 0) {
		log_warn("state store: cannot start the flusher: %s; the intake's commits sync "
		         "themselves",
		         strerror(r));
		return;
	}
	pthread_setname_np(fl->thread, "flush-behind"); /* named once it exists */
	atomic_store(&fl->started, true);
}

void store_flush_behind_stop(struct store *s)
{
	struct store_flusher *fl = &s->fl;

	if (!fl->inited)
		return;
	if (atomic_load(&fl->started)) {
		pthread_mutex_lock(&fl->mu);
		fl->stopping = true; /* it syncs what is left first */
		pthread_cond_signal(&fl->wake);
		pthread_mutex_unlock(&fl->mu);
		pthread_join(fl->thread, NULL);
		atomic_store(&fl->started, false);
	}
	if (fl->fd >= 0)
		close(fl->fd);
	fl->fd = -1;
	pthread_cond_destroy(&fl->done);
	pthread_cond_destroy(&fl->wake);
	pthread_mutex_destroy(&fl->mu);
	fl->inited = false;
}

const struct store_vfs_defer *store_flush_behind_defer(struct store *s)
{
	struct store_flusher *fl = &s->fl;

	if (!atomic_load(&s->flush_behind) || !atomic_load(&fl->started) ||
	    atomic_load(&fl->failing))
		return NULL;
	return &fl->defer;
}

void store_set_flush_behind(struct store *s, bool on)
{
	struct store_flusher *fl = &s->fl;

	if (on && fl->inited) {
		pthread_mutex_lock(&fl->mu);
		start(fl);
		pthread_mutex_unlock(&fl->mu);
	}
	atomic_store(&s->flush_behind, on && atomic_load(&fl->started));
}

void store_flush_behind_counts(struct store *s, struct store_flush_counts *ret)
{
	struct store_flusher *fl = &s->fl;

	memset(ret, 0, sizeof(*ret));
	ret->on = atomic_load(&s->flush_behind);
	if (!atomic_load(&fl->started))
		return;
	pthread_mutex_lock(&fl->mu);
	ret->commits = fl->written;
	ret->syncs = fl->syncs;
	ret->failed = fl->failed;
	ret->behind = fl->written - fl->synced;
	pthread_mutex_unlock(&fl->mu);
	ret->failing = atomic_load(&fl->failing);
}

int store_flush_behind_wait(struct store *s)
{
	struct store_flusher *fl = &s->fl;
	uint64_t target;
	int r;

	if (!atomic_load(&fl->started))
		return 0; /* nothing was ever written unsynced */
	pthread_mutex_lock(&fl->mu);
	target = fl->written;
	while (fl->synced < target)
		pthread_cond_wait(&fl->done, &fl->mu);
	r = atomic_load(&fl->failing) ? -EIO : 0;
	pthread_mutex_unlock(&fl->mu);
	return r;
}
