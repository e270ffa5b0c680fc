/*
 * journal.h: the file, its records and its generations. The layout, all
 * integers little-endian:
 *
 *   header   "rdjrnl01" (8 bytes), generation (u64)
 *   record   length (u32, 1..JOURNAL_RECORD_MAX), CRC-32C of the length's
 *            four bytes and the payload (u32), payload
 *
 * A zero length is never written, so the zeros a power cut leaves past a
 * file's last synced page end the records as surely as a bad CRC does.
 */
#include "util/common.h"
#include "util/journal.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <sys/uio.h>

#define MAGIC       "rdjrnl01"
#define FRAME_BYTES 8
/* What journal_read takes from the file at a time. */
#define READ_CHUNK (256 * 1024)

struct journal {
	char path[PATH_MAX];
	int fd;
	uint64_t generation;
	uint64_t end;
	uint8_t *chunk; /* journal_read's: bytes of the file from chunk_at, chunk_len of them */
	uint64_t chunk_at;
	size_t chunk_len;
};

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
			                  crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t journal_crc32c(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	/* eight bytes a step (slicing by 8), then the rest a byte at a time */
	while (len >= 8) {
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		                     (uint32_t)p[3] << 24);

		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^
		      crc_table[0][p[7]];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int write_all_at(int fd, const void *data, size_t len, uint64_t at)
{
	const uint8_t *p = data;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)at);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		at += (uint64_t)n;
	}
	return 0;
}

/* The header of fd: 0 and its generation, -EBADMSG when not a journal's, -ENODATA when empty. */
static int read_header(int fd, uint64_t *ret_gen)
{
	uint8_t h[JOURNAL_HEADER_BYTES];
	ssize_t n;

	do
		n = pread(fd, h, sizeof(h), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ENODATA;
	if ((size_t)n < sizeof(h) || memcmp(h, MAGIC, 8) != 0)
		return -EBADMSG;
	*ret_gen = get_u64(h + 8);
	return *ret_gen > 0 ? 0 : -EBADMSG;
}

static int write_header(int fd, uint64_t gen)
{
	uint8_t h[JOURNAL_HEADER_BYTES];

	memcpy(h, MAGIC, 8);
	put_u64(h + 8, gen);
	return write_all_at(fd, h, sizeof(h), 0);
}

static int count_record(void *ctx, const void *data, size_t len)
{
	(void)data;
	(void)len;
	(*(uint64_t *)ctx)++;
	return 0;
}

int journal_open(const char *path, struct journal **ret, uint64_t *ret_cut, struct err *e)
{
	struct journal *j;
	struct stat st;
	uint64_t pos = 0, n = 0;
	int r;

	if (ret_cut)
		*ret_cut = 0;
	j = calloc(1, sizeof(*j));
	if (!j || !(j->chunk = malloc(READ_CHUNK))) {
		free(j);
		return err_set(e, -ENOMEM, "journal %s: out of memory", path);
	}
	str_copy(j->path, path, sizeof(j->path));
	j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (j->fd < 0) {
		r = err_set(e, -errno, "journal %s: %s", path, strerror(errno));
		goto fail;
	}
	r = read_header(j->fd, &j->generation);
	if (r == -ENODATA) {
		/* new: a generation no journal made here before had (restarts add one) */
		j->generation = (uint64_t)time(NULL);
		r = write_header(j->fd, j->generation);
		if (r == 0 && fsync(j->fd) < 0)
			r = -errno;
	}
	if (r < 0) {
		err_set(e, r, "journal %s: %s", path,
		        r == -EBADMSG ? "not a journal (its header)" : strerror(-r));
		goto fail;
	}
	/* a state file: 0600 whatever made it wider */
	if (fstat(j->fd, &st) < 0 || ((st.st_mode & 07777) != 0600 && fchmod(j->fd, 0600) < 0)) {
		r = err_set(e, -errno, "journal %s: %s", path, strerror(errno));
		goto fail;
	}
	j->end = (uint64_t)st.st_size;
	r = journal_read(j, &pos, j->end, SIZE_MAX, count_record, &n);
	if (r < 0 && r != -EBADMSG) {
		err_set(e, r, "journal %s: %s", path, strerror(-r));
		goto fail;
	}
	if (pos < JOURNAL_HEADER_BYTES)
		pos = JOURNAL_HEADER_BYTES;
	/* the tail that does not check: cut, so appends follow the last good record */
	if (pos < j->end) {
		if (ftruncate(j->fd, (off_t)pos) < 0) {
			r = err_set(e, -errno, "journal %s: cutting its bad tail: %s", path,
			            strerror(errno));
			goto fail;
		}
		if (ret_cut)
			*ret_cut = j->end - pos;
	}
	j->end = pos;
	*ret = j;
	return 0;
fail:
	journal_close(j);
	return r;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	free(j->chunk);
	free(j);
}

uint64_t journal_generation(const struct journal *j)
{
	return j->generation;
}

uint64_t journal_end(const struct journal *j)
{
	return j->end;
}

int journal_append(struct journal *j, const void *data, size_t len, uint64_t *ret_end)
{
	uint8_t frame[FRAME_BYTES];
	struct iovec iov[2] = {{frame, sizeof(frame)}, {(void *)data, len}};
	size_t total = sizeof(frame) + len;
	ssize_t n;

	if (len == 0 || len > JOURNAL_RECORD_MAX)
		return -EINVAL;
	put_u32(frame, (uint32_t)len);
	put_u32(frame + 4, journal_crc32c(journal_crc32c(0, frame, 4), data, len));
	/* one call: a record is in the kernel whole, or (a failure) not counted */
	do
		n = pwritev(j->fd, iov, 2, (off_t)j->end);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n < total) {
		/* a short write (a full disk): the rest, or the record does not count */
		const uint8_t *rest = (size_t)n < sizeof(frame) ? NULL : (const uint8_t *)data;
		int r;

		if (!rest)
			return -ENOSPC;
		r = write_all_at(j->fd, rest + ((size_t)n - sizeof(frame)), total - (size_t)n,
		                 j->end + (uint64_t)n);
		if (r < 0)
			return r;
	}
	j->end += total;
	if (ret_end)
		*ret_end = j->end;
	return 0;
}

/* Make bytes [at, at + need) of the file be in j->chunk: 0, -EBADMSG past the file's end. */
static int fill(struct journal *j, uint64_t at, size_t need, uint64_t upto, const uint8_t **ret)
{
	if (at + need > upto)
		return -EBADMSG;
	if (at < j->chunk_at || at + need > j->chunk_at + j->chunk_len) {
		size_t want = READ_CHUNK, got = 0;

		if (upto - at < want)
			want = (size_t)(upto - at);
		while (got < want) {
			ssize_t n = pread(j->fd, j->chunk + got, want - got, (off_t)(at + got));

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			if (n == 0)
				break;
			got += (size_t)n;
		}
		j->chunk_at = at;
		j->chunk_len = got;
		if (got < need)
			return -EBADMSG;
	}
	*ret = j->chunk + (at - j->chunk_at);
	return 0;
}

int journal_read(struct journal *j, uint64_t *pos, uint64_t upto, size_t max, journal_record_fn fn,
                 void *ctx)
{
	uint64_t at = *pos < JOURNAL_HEADER_BYTES ? JOURNAL_HEADER_BYTES : *pos;
	size_t given = 0;
	int r = 0;

	/* a chunk read before may hold bytes since written over (a failed append's) */
	j->chunk_len = 0;
	while (r == 0 && at < upto && given < max) {
		const uint8_t *p;
		uint32_t len, crc;

		r = fill(j, at, FRAME_BYTES, upto, &p);
		if (r < 0)
			break;
		len = get_u32(p);
		crc = get_u32(p + 4);
		if (len == 0 || len > JOURNAL_RECORD_MAX) {
			r = -EBADMSG;
			break;
		}
		r = fill(j, at, FRAME_BYTES + len, upto, &p);
		if (r < 0)
			break;
		if (journal_crc32c(journal_crc32c(0, p, 4), p + FRAME_BYTES, len) != crc) {
			r = -EBADMSG;
			break;
		}
		r = fn(ctx, p + FRAME_BYTES, len);
		if (r != 0)
			break;
		at += FRAME_BYTES + len;
		given++;
	}
	*pos = at;
	return r;
}

int journal_restart(struct journal *j, struct err *e)
{
	char tmp[PATH_MAX + 16], dir[PATH_MAX];
	int fd, r;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.next", j->path) >= sizeof(tmp))
		return err_set(e, -ENAMETOOLONG, "journal %s: name too long", j->path);
	(void)unlink(tmp);
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return err_set(e, -errno, "journal %s: %s", tmp, strerror(errno));
	r = write_header(fd, j->generation + 1);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && rename(tmp, j->path) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		(void)unlink(tmp);
		return err_set(e, r, "journal %s: a new generation: %s", j->path, strerror(-r));
	}
	str_copy(dir, j->path, sizeof(dir));
	/* the new name on disk, or a power cut could bring the old file back */
	r = dir_sync(dirname(dir), e);
	close(j->fd);
	j->fd = fd;
	j->generation++;
	j->end = JOURNAL_HEADER_BYTES;
	j->chunk_len = 0;
	return r;
}
