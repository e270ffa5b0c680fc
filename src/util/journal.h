/*
 * A journal: an append-only file of records, each framed by its length and
 * a CRC-32C of both, behind a header that names the file's generation.
 * An append is one write(2): once it returns the record is in the kernel,
 * so a crash of the process keeps it; nothing here fsyncs appends, so a
 * power cut may lose the last of them (and the pages of a file not synced
 * may come back in any order: a reader stops at the first record that does
 * not check, and takes nothing after it).
 *
 * A reader keeps its place as (generation, offset). Restarting the journal
 * replaces the file by an empty one of the next generation (written aside,
 * synced, renamed over it, the directory synced), so a place in an older
 * generation means "nothing of this file was read yet".
 *
 * No lock of its own: appends and restarts need the caller's lock, and
 * journal_read may run beside appends (it reads only up to an end that an
 * append returned) but not beside a restart.
 */
#ifndef RUNNERD_JOURNAL_H
#define RUNNERD_JOURNAL_H

#include "util/err.h"

/* The largest record's payload. */
#define JOURNAL_RECORD_MAX (64 * 1024)
/* The header's size: the first record's offset. */
#define JOURNAL_HEADER_BYTES 16

struct journal;

/*
 * Open the journal at path, made when missing (mode 0600; its generation
 * the unix time, so a journal made again never takes an older one's
 * number: restarts add one, far more slowly than seconds pass).
 * Its records are checked from the start: a tail that does not check (a
 * record cut short, or pages a power cut left out) is cut off, and its
 * bytes are in *ret_cut (may be NULL). A file whose header is not a
 * journal's is -EBADMSG, left as it is. -errno otherwise; e names the path.
 */
int journal_open(const char *path, struct journal **ret, uint64_t *ret_cut, struct err *e);
void journal_close(struct journal *j); /* NULL-safe */

uint64_t journal_generation(const struct journal *j);
/* The offset after the last record: where the next append goes. */
uint64_t journal_end(const struct journal *j);

/*
 * Append the record data[0..len) (1 <= len <= JOURNAL_RECORD_MAX): 0, and
 * *ret_end (may be NULL) := the offset after it. -EINVAL for a bad length;
 * -errno of write(2), and then nothing of it counts (the end stays, and
 * what part of it reached the file is written over by the next append).
 */
int journal_append(struct journal *j, const void *data, size_t len, uint64_t *ret_end);

/*
 * Each record from *pos (an offset journal_end or journal_read gave; 0 is
 * the first record) before upto, at most max of them: fn(ctx, data, len)
 * (data valid during the call; fn's non-zero return stops the read and is
 * returned). *pos := after the last record given. 0 when upto was reached
 * or max records were given; -EBADMSG at a record that does not check;
 * -errno of pread(2).
 */
typedef int (*journal_record_fn)(void *ctx, const void *data, size_t len);
int journal_read(struct journal *j, uint64_t *pos, uint64_t upto, size_t max, journal_record_fn fn,
                 void *ctx);

/*
 * Replace the file by an empty one of the next generation (see above):
 * 0, or -errno with the journal as it was.
 */
int journal_restart(struct journal *j, struct err *e);

/* CRC-32C (Castagnoli) of data[0..len), continuing crc (0 to begin). */
uint32_t journal_crc32c(uint32_t crc, const void *data, size_t len);

#endif
