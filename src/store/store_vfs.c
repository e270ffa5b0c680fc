/*
 * The state store's files through a thin layer over SQLite's own VFS that
 * gathers the writes of a write-ahead log into one. SQLite writes each WAL
 * frame as two pwrite calls (its header, then its page), so a commit that
 * touches ten pages costs twenty system calls before its fsync; on this
 * kind of machine a system call is several microseconds, and the commit is
 * the intake's serial path. Here the frames of a commit collect in memory,
 * in file order, and go out as one write just before anything that needs
 * them in the file: the sync (a commit), a read, the size, a truncation,
 * a lock change, a file control, and the close. A write that does not
 * follow the gathered ones, or would grow them past GATHER_MAX, sends them
 * first. Only WAL files are gathered; the database file and everything
 * else pass straight through.
 *
 * Why readers never see a frame that is not in the file yet: SQLite tells
 * readers of new frames (in the WAL index) only after the commit's sync of
 * the WAL, which sends them, as long as commits are synced. So the store's
 * connections keep synchronous=FULL (open_db sets it), and a PRAGMA that
 * would lower it on a file opened here is refused.
 *
 * It must never reorder writes to the same bytes, never let a sync return
 * before every write before it is in the file, and never report success
 * for a write it could not make: a failed flush fails the call that
 * needed it, as a failed write would have.
 */
#include "util/common.h"
#include "store/store_internal.h"

#include <pthread.h>
#include <stdatomic.h>

#define VFS_NAME "runnerd-gather"
/*
 * Most bytes gathered, and so written by one call: SQLite's unix VFS writes
 * at most 128 KiB - 1 a call (it masks the length, so a longer write comes
 * out short and fails), and ten pages of a commit take about 41 KiB.
 */
#define GATHER_MAX (64u * 1024)

struct gather_file {
	sqlite3_file base; /* pMethods: ours (or NULL when the open failed) */
	char *buf;         /* frames not written yet, for offset off.. */
	size_t len, cap;
	sqlite3_int64 off;
	bool gather;          /* a WAL file */
	sqlite3_file under[]; /* the real VFS's file (szOsFile bytes) */
};

static sqlite3_vfs gather_vfs;
static sqlite3_vfs *real_vfs;
static atomic_uint_fast64_t n_writes, n_flushes, n_wal_syncs;

static struct gather_file *gf(sqlite3_file *f)
{
	return (struct gather_file *)f;
}

static sqlite3_file *real(sqlite3_file *f)
{
	return gf(f)->under;
}

/* The gathered writes, as one write. */
static int flush(sqlite3_file *f)
{
	struct gather_file *g = gf(f);
	int rc;

	if (g->len == 0)
		return SQLITE_OK;
	rc = real(f)->pMethods->xWrite(real(f), g->buf, (int)g->len, g->off);
	atomic_fetch_add(&n_flushes, 1);
	/* written or not, what was gathered is the caller's failure now, not a later one's */
	g->len = 0;
	return rc;
}

static int x_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	struct gather_file *g = gf(f);
	int rc;

	if (!g->gather || n <= 0)
		return real(f)->pMethods->xWrite(real(f), p, n, off);
	atomic_fetch_add(&n_writes, 1);
	if (g->len && (off != g->off + (sqlite3_int64)g->len || g->len + (size_t)n > GATHER_MAX)) {
		rc = flush(f);
		if (rc != SQLITE_OK)
			return rc;
	}
	if ((size_t)n > GATHER_MAX)
		return real(f)->pMethods->xWrite(real(f), p, n, off);
	if (g->len + (size_t)n > g->cap) {
		size_t cap = GATHER_MAX;
		char *nb = realloc(g->buf, cap);

		if (!nb) {
			rc = flush(f);
			return rc != SQLITE_OK ? rc : real(f)->pMethods->xWrite(real(f), p, n, off);
		}
		g->buf = nb;
		g->cap = cap;
	}
	if (g->len == 0)
		g->off = off;
	memcpy(g->buf + g->len, p, (size_t)n);
	g->len += (size_t)n;
	return SQLITE_OK;
}

static int x_close(sqlite3_file *f)
{
	int rc = flush(f), rc2 = real(f)->pMethods->xClose(real(f));

	free(gf(f)->buf);
	gf(f)->buf = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int x_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : real(f)->pMethods->xRead(real(f), p, n, off);
}

static int x_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : real(f)->pMethods->xTruncate(real(f), size);
}

/* The gathered frames written, then synced. */
static int x_sync(sqlite3_file *f, int flags)
{
	struct gather_file *g = gf(f);
	int rc = flush(f);

	if (rc != SQLITE_OK)
		return SQLITE_IOERR_FSYNC;
	if (g->gather)
		atomic_fetch_add(&n_wal_syncs, 1);
	return real(f)->pMethods->xSync(real(f), flags);
}

static int x_file_size(sqlite3_file *f, sqlite3_int64 *ret)
{
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : real(f)->pMethods->xFileSize(real(f), ret);
}

static int x_lock(sqlite3_file *f, int level)
{
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : real(f)->pMethods->xLock(real(f), level);
}

static int x_unlock(sqlite3_file *f, int level)
{
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : real(f)->pMethods->xUnlock(real(f), level);
}

static int x_check_reserved_lock(sqlite3_file *f, int *ret)
{
	return real(f)->pMethods->xCheckReservedLock(real(f), ret);
}

/* "PRAGMA synchronous = <value>" leaves every commit synced: FULL or EXTRA. */
static bool keeps_commits_synced(const char *value)
{
	return strcasecmp(value, "full") == 0 || strcasecmp(value, "extra") == 0 ||
	       strcmp(value, "2") == 0 || strcmp(value, "3") == 0;
}

static int x_file_control(sqlite3_file *f, int op, void *arg)
{
	int rc = flush(f);

	if (rc != SQLITE_OK)
		return rc;
	if (op == SQLITE_FCNTL_PRAGMA) {
		char **a = arg; /* [0] an error to return, [1] the pragma, [2] its value or NULL */

		if (a[1] && strcasecmp(a[1], "synchronous") == 0 && a[2] &&
		    !keeps_commits_synced(a[2])) {
			a[0] = sqlite3_mprintf("the state store keeps synchronous=FULL: its WAL "
			                       "writes are gathered until the commit's sync");
			return SQLITE_ERROR;
		}
	}
	return real(f)->pMethods->xFileControl(real(f), op, arg);
}

static int x_sector_size(sqlite3_file *f)
{
	return real(f)->pMethods->xSectorSize(real(f));
}

static int x_device_characteristics(sqlite3_file *f)
{
	return real(f)->pMethods->xDeviceCharacteristics(real(f));
}

static int x_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **ret)
{
	return real(f)->pMethods->xShmMap(real(f), pg, pgsz, extend, ret);
}

static int x_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
}

static void x_shm_barrier(sqlite3_file *f)
{
	real(f)->pMethods->xShmBarrier(real(f));
}

static int x_shm_unmap(sqlite3_file *f, int del)
{
	return real(f)->pMethods->xShmUnmap(real(f), del);
}

static int x_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **ret)
{
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : real(f)->pMethods->xFetch(real(f), off, n, ret);
}

static int x_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return real(f)->pMethods->xUnfetch(real(f), off, p);
}

static const sqlite3_io_methods gather_methods = {
        .iVersion = 3,
        .xClose = x_close,
        .xRead = x_read,
        .xWrite = x_write,
        .xTruncate = x_truncate,
        .xSync = x_sync,
        .xFileSize = x_file_size,
        .xLock = x_lock,
        .xUnlock = x_unlock,
        .xCheckReservedLock = x_check_reserved_lock,
        .xFileControl = x_file_control,
        .xSectorSize = x_sector_size,
        .xDeviceCharacteristics = x_device_characteristics,
        .xShmMap = x_shm_map,
        .xShmLock = x_shm_lock,
        .xShmBarrier = x_shm_barrier,
        .xShmUnmap = x_shm_unmap,
        .xFetch = x_fetch,
        .xUnfetch = x_unfetch,
};

static int x_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	struct gather_file *g = gf(f);
	int rc;

	memset(g, 0, sizeof(*g));
	rc = real_vfs->xOpen(real_vfs, name, g->under, flags, out_flags);
	/* SQLite calls xClose only when pMethods is set: so only when the real open did */
	if (rc == SQLITE_OK && g->under->pMethods) {
		/* the methods above go as far as version 3: a real file of less has no shm */
		if (g->under->pMethods->iVersion < 3)
			return SQLITE_CANTOPEN;
		g->gather = (flags & SQLITE_OPEN_WAL) != 0;
		g->base.pMethods = &gather_methods;
	}
	return rc;
}

/* The rest of the VFS is the real one's. */
static int x_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
	return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int x_access(sqlite3_vfs *v, const char *name, int flags, int *ret)
{
	return real_vfs->xAccess(real_vfs, name, flags, ret);
}

static int x_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
	return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static int x_randomness(sqlite3_vfs *v, int n, char *out)
{
	return real_vfs->xRandomness(real_vfs, n, out);
}

static int x_sleep(sqlite3_vfs *v, int us)
{
	return real_vfs->xSleep(real_vfs, us);
}

static int x_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *ret)
{
	return real_vfs->xCurrentTimeInt64(real_vfs, ret);
}

static int x_get_last_error(sqlite3_vfs *v, int n, char *out)
{
	return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, n, out) : 0;
}

static int x_current_time(sqlite3_vfs *v, double *ret)
{
	return real_vfs->xCurrentTime(real_vfs, ret);
}

static void *x_dl_open(sqlite3_vfs *v, const char *name)
{
	return real_vfs->xDlOpen(real_vfs, name);
}

static void x_dl_error(sqlite3_vfs *v, int n, char *out)
{
	real_vfs->xDlError(real_vfs, n, out);
}

static void (*x_dl_sym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
	return real_vfs->xDlSym(real_vfs, h, sym);
}

static void x_dl_close(sqlite3_vfs *v, void *h)
{
	real_vfs->xDlClose(real_vfs, h);
}

static int registered_rc = SQLITE_ERROR;

static void register_vfs(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	if (!real_vfs || real_vfs->iVersion < 2 || !real_vfs->xCurrentTimeInt64 ||
	    !real_vfs->xDlOpen || !real_vfs->xCurrentTime)
		return;
	gather_vfs = (sqlite3_vfs){
	        .iVersion = 2,
	        .szOsFile = (int)sizeof(struct gather_file) + real_vfs->szOsFile,
	        .mxPathname = real_vfs->mxPathname,
	        .zName = VFS_NAME,
	        .xOpen = x_open,
	        .xDelete = x_delete,
	        .xAccess = x_access,
	        .xFullPathname = x_full_pathname,
	        .xDlOpen = x_dl_open,
	        .xDlError = x_dl_error,
	        .xDlSym = x_dl_sym,
	        .xDlClose = x_dl_close,
	        .xRandomness = x_randomness,
	        .xCurrentTime = x_current_time,
	        .xSleep = x_sleep,
	        .xGetLastError = x_get_last_error,
	        .xCurrentTimeInt64 = x_current_time_int64,
	};
	registered_rc = sqlite3_vfs_register(&gather_vfs, 0);
}

const char *store_vfs_name(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, register_vfs);
	return registered_rc == SQLITE_OK ? VFS_NAME : NULL; /* NULL: SQLite's own */
}

void store_vfs_get_stats(struct store_vfs_stats *ret)
{
	ret->writes = atomic_load(&n_writes);
	ret->flushes = atomic_load(&n_flushes);
	ret->wal_syncs = atomic_load(&n_wal_syncs);
}
