/*
 * Files: bounded reads, atomic writes through temporaries the owner of a
 * directory can recognise (and remove once their writer is gone), directory
 * creation, removal and sizes. Secrets and state are always written with
 * mode 0600 and O_CLOEXEC. Nothing here logs; every failure names the
 * path. It must never follow a symlink it is asked to remove or measure,
 * nor remove a file that is not one of its own temporaries while sweeping.
 */
#ifndef RUNNERD_FILEUTIL_H
#define RUNNERD_FILEUTIL_H

#include "util/buf.h"
#include "util/err.h"

/*
 * The number a small state file holds in its first line (a lock file's pid,
 * a cursor), read from offset 0 of fd: 0 and *ret, or -EINVAL when it holds
 * none in [min, max] (empty, unreadable, not a number); *ret untouched then.
 */
int fd_read_int64(int fd, int64_t min, int64_t max, int64_t *ret);
/* Read a whole regular file (no symlink follow when nofollow) of at most max bytes. */
int file_read(const char *path, size_t max, bool nofollow, struct buf *ret, struct err *e);
/* Read a secret file: at most 64 KiB, trailing newline/space stripped; *ret malloc'ed. */
int file_read_secret(const char *path, char **ret, struct err *e);
/*
 * Write data to path atomically with the given mode: a temporary
 * ".<name>.runnerd-tmp.<pid>.<8 hex>" in path's directory (made with
 * O_EXCL, never through a symlink), fsync, rename, and the directory
 * synced, so the new name is on disk too when it returns 0 (a crash of
 * the machine cannot bring the old file back). A temporary that a kill
 * left behind is found by file_tmp_sweep.
 */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, struct err *e);
/*
 * fsync the directory dir: the names made, renamed or removed in it so far
 * are on disk when it returns 0 (also on a file system that cannot sync a
 * directory: EINVAL, nothing to do there).
 */
int dir_sync(const char *dir, struct err *e);
/* mkdir -p with mode for the created components. */
int mkdir_p(const char *path, mode_t mode, struct err *e);
/* rm -rf that never follows symlinks; a missing path is success. */
int rm_rf(const char *path, struct err *e);
/*
 * The bytes of the regular files at and below path (st_size), never
 * following a symlink; a missing path is 0 bytes.
 */
int file_tree_bytes(const char *path, uint64_t *ret, struct err *e);

/* What marks file_write_atomic's temporaries. */
#define FILE_TMP_TAG ".runnerd-tmp."
/* A temporary unchanged for this long is left over, whatever its pid says (pids are reused). */
#define FILE_TMP_OLD_S 3600

/*
 * Whether entry (a name in a directory) is a temporary of file_write_atomic:
 * ".<name>.runnerd-tmp.<pid>.<8 hex>", or "<name>.tmp.<pid>" as runnerd
 * named them before; its writer's pid in *ret_pid (may be NULL).
 */
bool file_tmp_name(const char *entry, pid_t *ret_pid);

/* Where and what file_tmp_sweep removes. */
struct file_tmp_sweep {
	int depth;   /* levels of subdirectories visited too (0: the directory alone) */
	int64_t now; /* unix s */
	/*
	 * Also remove names with this prefix once unchanged for FILE_TMP_OLD_S:
	 * another writer's mkstemp temporaries, which name no pid (NULL: none).
	 */
	const char *aged_prefix;
};

/*
 * Remove the temporaries (file_tmp_name) in dir that no writer will rename:
 * those of a process that no longer exists and those unchanged for
 * FILE_TMP_OLD_S. Only regular files of such names are removed; symlinks
 * are neither removed nor followed. Returns how many went (0 when dir is
 * missing), or the first failure (the others were still tried).
 */
int file_tmp_sweep(const char *dir, const struct file_tmp_sweep *o, struct err *e);

#endif
