/*
 * Unit tests of src/util/journal: records come back as appended, in order,
 * across a reopen and in bounded reads; CRC-32C against its published check
 * value; a tail cut short, zeroed (what a power cut leaves past the last
 * synced page) or flipped is cut at open and nothing after it is read; a
 * restart gives an empty file of the next generation, and appends go on
 * there; a file that is not a journal is refused and left alone; bad
 * lengths are refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/err.h"
#include "util/fileutil.h"
#include "util/journal.h"

struct seen {
	size_t n;
	char v[64][64];
};

static int collect(void *ctx, const void *data, size_t len)
{
	struct seen *s = ctx;

	assert_true(len < sizeof(s->v[0]));
	memcpy(s->v[s->n], data, len);
	s->v[s->n][len] = '\0';
	s->n++;
	return 0;
}

static char dir[64], path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/runnerd-journal-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/j", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	assert_int_equal(rm_rf(dir, NULL), 0);
	return 0;
}

/* Every record of j from the first into s (emptied first): how many. */
static size_t read_all(struct journal *j, struct seen *s)
{
	uint64_t pos = 0;

	s->n = 0;
	assert_int_equal(journal_read(j, &pos, journal_end(j), 100, collect, s), 0);
	assert_int_equal(pos, journal_end(j));
	return s->n;
}

static struct journal *open_ok(uint64_t *cut)
{
	struct journal *j = NULL;
	struct err e = {0};

	assert_int_equal(journal_open(path, &j, cut, &e), 0);
	return j;
}

static void append(struct journal *j, const char *s)
{
	assert_int_equal(journal_append(j, s, strlen(s), NULL), 0);
}

static off_t file_size(void)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void test_crc32c(void **state)
{
	(void)state;
	/* the check value of CRC-32C (RFC 3720's, and every catalogue's) */
	assert_int_equal(journal_crc32c(0, "123456789", 9), 0xe3069283u);
	/* continued in pieces: the same */
	assert_int_equal(journal_crc32c(journal_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
	assert_int_equal(journal_crc32c(0, "", 0), 0);
}

static void test_append_read_reopen(void **state)
{
	struct journal *j = open_ok(NULL);
	struct seen s = {0};
	uint64_t pos = 0, end = 0, mid, gen;

	(void)state;
	gen = journal_generation(j);
	assert_true(gen >= (uint64_t)time(NULL) - 5 && gen <= (uint64_t)time(NULL));
	assert_int_equal(journal_end(j), JOURNAL_HEADER_BYTES);
	{
		struct stat st;

		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
	}
	append(j, "one");
	assert_int_equal(journal_append(j, "two", 3, &mid), 0);
	append(j, "three");
	end = journal_end(j);
	assert_int_equal(end, JOURNAL_HEADER_BYTES + 3 * 8 + 3 + 3 + 5);
	assert_int_equal(file_size(), (off_t)end);
	/* two at most, then the rest from where it stopped */
	assert_int_equal(journal_read(j, &pos, end, 2, collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(pos, mid);
	assert_int_equal(journal_read(j, &pos, end, 10, collect, &s), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(pos, end);
	assert_string_equal(s.v[0], "one");
	assert_string_equal(s.v[1], "two");
	assert_string_equal(s.v[2], "three");
	/* up to an end given before: what came after is not read */
	append(j, "four");
	pos = mid;
	s.n = 0;
	assert_int_equal(journal_read(j, &pos, end, 10, collect, &s), 0);
	assert_int_equal(s.n, 1);
	journal_close(j);

	/* a mode made wider meanwhile is narrowed again */
	assert_int_equal(chmod(path, 0644), 0);
	j = open_ok(NULL);
	assert_int_equal(journal_generation(j), gen);
	assert_int_equal(read_all(j, &s), 4);
	{
		struct stat st;

		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
	}
	assert_string_equal(s.v[3], "four");
	journal_close(j);
}

/* A record whose last n bytes were replaced by garbage (or cut when garbage is NULL). */
static void damage_tail(size_t n, int garbage)
{
	int fd = open(path, O_RDWR);
	off_t size = file_size();

	assert_true(fd >= 0);
	if (garbage < 0) {
		assert_int_equal(ftruncate(fd, size - (off_t)n), 0);
	} else {
		char b[64];

		memset(b, garbage, sizeof(b));
		assert_int_equal(pwrite(fd, b, n, size - (off_t)n), (ssize_t)n);
	}
	close(fd);
}

static void test_bad_tail_cut(void **state)
{
	const int ways[] = {-1, 0, 0x5a}; /* cut short, zeroed, garbage */

	(void)state;
	for (size_t w = 0; w < ARRAY_SIZE(ways); w++) {
		struct journal *j = open_ok(NULL);
		struct seen s = {0};
		uint64_t cut = 0, good;

		append(j, "kept");
		good = journal_end(j);
		append(j, "the last one");
		journal_close(j);
		damage_tail(3, ways[w]);

		j = open_ok(&cut);
		assert_int_equal(journal_end(j), good);
		assert_int_equal(cut, ways[w] < 0 ? 8 + 12 - 3 : 8 + 12);
		assert_int_equal(file_size(), (off_t)good);
		assert_int_equal(read_all(j, &s), 1);
		assert_string_equal(s.v[0], "kept");
		/* appends follow the last good record */
		append(j, "after");
		assert_int_equal(read_all(j, &s), 2);
		assert_string_equal(s.v[1], "after");
		journal_close(j);
		assert_int_equal(unlink(path), 0);
	}
}

static void test_bad_record_stops_read(void **state)
{
	struct journal *j = open_ok(NULL);
	struct seen s = {0};
	uint64_t pos = 0, first, end;
	int fd;

	(void)state;
	append(j, "first");
	first = journal_end(j);
	append(j, "second");
	append(j, "third");
	end = journal_end(j);
	/* a flipped byte in the second's payload: its CRC does not check */
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "S", 1, (off_t)first + 8), 1);
	close(fd);
	assert_int_equal(journal_read(j, &pos, end, 100, collect, &s), -EBADMSG);
	assert_int_equal(s.n, 1);
	assert_int_equal(pos, first);
	journal_close(j);
	/* at open, the third goes with it: nothing past a bad record is taken */
	j = open_ok(NULL);
	assert_int_equal(journal_end(j), first);
	journal_close(j);
}

static void test_restart(void **state)
{
	struct journal *j = open_ok(NULL);
	struct seen s = {0};
	struct err e = {0};
	uint64_t gen = journal_generation(j);

	(void)state;
	append(j, "old");
	assert_int_equal(journal_restart(j, &e), 0);
	assert_int_equal(journal_generation(j), gen + 1);
	assert_int_equal(journal_end(j), JOURNAL_HEADER_BYTES);
	assert_int_equal(file_size(), JOURNAL_HEADER_BYTES);
	append(j, "new");
	journal_close(j);
	j = open_ok(NULL);
	assert_int_equal(journal_generation(j), gen + 1);
	assert_int_equal(read_all(j, &s), 1);
	assert_string_equal(s.v[0], "new");
	journal_close(j);
}

static void test_refused(void **state)
{
	struct journal *j = open_ok(NULL);
	struct err e = {0};
	char big[JOURNAL_RECORD_MAX + 1] = {0};
	int fd;

	(void)state;
	assert_int_equal(journal_append(j, "", 0, NULL), -EINVAL);
	assert_int_equal(journal_append(j, big, sizeof(big), NULL), -EINVAL);
	assert_int_equal(journal_append(j, big, sizeof(big) - 1, NULL), 0);
	journal_close(j);
	/* not a journal: refused, and left as it was */
	assert_int_equal(unlink(path), 0);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "SQLite format 3\0", 16), 16);
	close(fd);
	j = NULL;
	assert_int_equal(journal_open(path, &j, NULL, &e), -EBADMSG);
	assert_null(j);
	assert_non_null(strstr(e.msg, "not a journal"));
	assert_int_equal(file_size(), 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_crc32c),
	        cmocka_unit_test_setup_teardown(test_append_read_reopen, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bad_tail_cut, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bad_record_stops_read, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
