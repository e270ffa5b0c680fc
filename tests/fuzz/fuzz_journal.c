/*
 * libFuzzer target: a journal file (util/journal) of untrusted bytes, as a
 * crash of the machine or a broken disk could leave one. Whatever comes
 * in: journal_open refuses it cleanly (-EBADMSG: not a journal) or opens
 * it with the tail that does not check cut off; then every record up to
 * the end reads back (none over JOURNAL_RECORD_MAX, the last one ending
 * exactly at the end), an append follows them, and a reopen finds one
 * record more and cuts nothing.
 */
#include "util/common.h"
#include "util/fileutil.h"
#include "util/journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], path[96];

static void cleanup(void)
{
	rm_rf(dir, NULL);
}

static int count(void *ctx, const void *rec, size_t len)
{
	(void)rec;
	if (len == 0 || len > JOURNAL_RECORD_MAX)
		abort();
	(*(size_t *)ctx)++;
	return 0;
}

static size_t read_all(struct journal *j)
{
	uint64_t pos = 0;
	size_t n = 0;

	if (journal_read(j, &pos, journal_end(j), SIZE_MAX, count, &n) != 0 ||
	    pos != journal_end(j))
		abort();
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct journal *j = NULL;
	struct err e = {0};
	uint64_t cut = 0;
	size_t n;
	int fd, r;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/runnerd-fuzz-journal-XXXXXX");
		if (!mkdtemp(dir))
			abort();
		snprintf(path, sizeof(path), "%s/j", dir);
		atexit(cleanup);
	}
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);

	r = journal_open(path, &j, &cut, &e);
	if (r == -EBADMSG) {
		if (j || !e.msg[0])
			abort();
		return 0;
	}
	if (r < 0 || !j || journal_end(j) < JOURNAL_HEADER_BYTES ||
	    journal_end(j) + cut != (size ? size : JOURNAL_HEADER_BYTES))
		abort();
	n = read_all(j);
	if (journal_append(j, "after", 5, NULL) != 0 || read_all(j) != n + 1)
		abort();
	journal_close(j);
	j = NULL;
	if (journal_open(path, &j, &cut, &e) != 0 || cut != 0 || read_all(j) != n + 1)
		abort();
	journal_close(j);
	return 0;
}
