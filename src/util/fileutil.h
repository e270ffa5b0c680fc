/*
 * Files: bounded reads, atomic 0600 writes, directory creation. Secrets and
 * state are always written with mode 0600 and O_CLOEXEC.
 */
#ifndef RUNNERD_FILEUTIL_H
#define RUNNERD_FILEUTIL_H

#include "util/buf.h"
#include "util/err.h"

/* Read a whole regular file (no symlink follow when nofollow) of at most max bytes. */
int file_read(const char *path, size_t max, bool nofollow, struct buf *ret, struct err *e);
/* Read a secret file: at most 64 KiB, trailing newline/space stripped; *ret malloc'ed. */
int file_read_secret(const char *path, char **ret, struct err *e);
/* Write data to path atomically (tmp file + fsync + rename) with the given mode. */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, struct err *e);
/*
 * The temporaries file_write_atomic leaves when its process dies between
 * their open and their rename (kill -9): removes those in dir (not below
 * it) whose target's file name `owned` accepts (NULL: every one). Call it
 * only on a directory no other process writes to, before this one begins
 * to write there (runnerd holds the state-dir lock and runs no pass yet):
 * every temporary there is then a dead writer's. Returns how many it
 * removed (a missing dir: 0) or -errno.
 */
int file_remove_temps(const char *dir, bool (*owned)(const char *target, void *ctx), void *ctx,
                      struct err *e);
/* mkdir -p with mode for the created components. */
int mkdir_p(const char *path, mode_t mode, struct err *e);
/* rm -rf that never follows symlinks; a missing path is success. */
int rm_rf(const char *path, struct err *e);

#endif
