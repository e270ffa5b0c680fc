/*
 * Unit tests of the state store's checkpoints (src/store/store_checkpoint.c):
 * a writer that never pauses leaves them to the store's own thread, which
 * makes them without failing, and the WAL still starts over again and
 * again, so it stays far below what the writes would make of it without;
 * everything written is there after a reopen.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/fileutil.h"
#include "store/store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#define WRITES 12000

static off_t size_of(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? sb.st_size : 0;
}

/*
 * How many times the WAL at path started over: its header's checkpoint
 * sequence number (bytes 12-15, big-endian), which each start from the
 * beginning raises by one.
 */
static uint32_t wal_restarts(const char *path)
{
	unsigned char h[16];
	FILE *f = fopen(path, "rb");

	assert_non_null(f);
	assert_int_equal(fread(h, 1, sizeof(h), f), sizeof(h));
	fclose(f);
	return (uint32_t)h[12] << 24 | (uint32_t)h[13] << 16 | (uint32_t)h[14] << 8 | h[15];
}

static void test_checkpoints_beside_a_writer(void **state)
{
	char dir[] = "/tmp/runnerd-test-checkpoint-XXXXXX", sdir[PATH_MAX], path[PATH_MAX + 16],
	     id[32];
	struct store *s = NULL;
	struct err e = {0};
	uint64_t runs = 0, failed = 0;
	off_t biggest = 0;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	bool seen;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sdir, sizeof(sdir), "%s/state", dir);
	assert_int_equal(store_open(sdir, &s, &e), 0);
	snprintf(path, sizeof(path), "%s/state.db-wal", sdir);
	/* one transaction each, back to back: the writer never pauses */
	for (int i = 0; i < WRITES; i++) {
		off_t now;

		snprintf(id, sizeof(id), "checkpoint-%d", i);
		assert_int_equal(store_delivery_add(s, id, 1000 + i, &e), 0);
		now = size_of(path);
		if (now > biggest)
			biggest = now;
	}
	for (int t = 0; t < 500 && runs == 0; t++) {
		store_checkpoint_counts(s, &runs, &failed);
		if (runs == 0)
			usleep(10 * 1000);
	}
	assert_true(runs >= 1);
	assert_int_equal(failed, 0);
	/*
	 * Each write adds a page to the WAL: 12,000 pages of 4 KiB (49 MB) if it never
	 * started over. 1,000 pages wake the checkpointer (4 MB), and what comes while
	 * it copies adds to that: 4 MB on an idle machine, 9-15 MB with the cores
	 * oversubscribed three times over. So: started over at least three times, and
	 * never near the size it would have without.
	 */
	assert_true(wal_restarts(path) >= 3);
	assert_true(biggest > 0);
	assert_true(biggest < 32 * 1024 * 1024);
	store_close(s);

	s = NULL;
	assert_int_equal(store_open(sdir, &s, &e), 0);
	for (int i = 0; i < WRITES; i += 97) {
		snprintf(id, sizeof(id), "checkpoint-%d", i);
		assert_int_equal(store_delivery_seen(s, id, &seen, &e), 0);
		assert_true(seen);
	}
	store_close(s);
	snprintf(path, sizeof(path), "%s/state.db", sdir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM deliveries", -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), WRITES);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_exec(db, "PRAGMA integrity_check", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	rm_rf(dir, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_checkpoints_beside_a_writer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
