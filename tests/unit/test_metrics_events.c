/*
 * Unit tests of the extraction of a runner's metrics storage into events
 * (src/metrics/metrics_read.c, metrics_process.c, metrics_quarantine.c) and
 * of the events log (metrics_event.c, metrics_events_log.c): every rule of
 * the original's extraction, each cause of a quarantine with the archive
 * read back, the events' JSON field names and what is left out, the line
 * bound and the reopen.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/fileutil.h"
#include "util/words.h"
#include "metrics/metrics_events_log.h"
#include "metrics/metrics_storage.h"

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#define NAME "mt-0123456789ab"

struct fx {
	char dir[64];
	char storage[128], qdir[128];
	struct metrics_event ev[8];
	size_t n;
	int fail_at; /* emit fails on this event (1-based), 0 never */
	bool lookup_ok;
	struct metrics_job job;
	int lookups;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/runnerd-test-events.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->storage, sizeof(f->storage), "%s/metrics/%s", f->dir, NAME);
	snprintf(f->qdir, sizeof(f->qdir), "%s/metrics-quarantine", f->dir);
	assert_int_equal(mkdir_p(f->storage, 0700, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	rm_rf(f->dir, NULL);
	free(f);
	return 0;
}

static void put(struct fx *f, const char *file, const char *text)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", f->storage, file);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static int emit(void *ctx, const struct metrics_event *ev, struct err *e)
{
	struct fx *f = ctx;

	if (f->fail_at && (int)f->n + 1 == f->fail_at)
		return err_set(e, -ENOSPC, "disk full");
	assert_true(f->n < ARRAY_SIZE(f->ev));
	f->ev[f->n++] = *ev;
	return 0;
}

static int lookup(void *ctx, const char *name, const struct metrics_pre_job *pre,
                  struct metrics_job *ret)
{
	struct fx *f = ctx;

	f->lookups++;
	assert_string_equal(name, NAME);
	if (!f->lookup_ok)
		return -ENOENT;
	*ret = f->job;
	return 0;
}

static int process(struct fx *f, struct metrics_processed *p)
{
	struct metrics_process_opts o = {.flavor = "small",
	                                 .quarantine_dir = f->qdir,
	                                 .lookup = lookup,
	                                 .emit = emit,
	                                 .ctx = f};
	struct err e = {0};

	return metrics_storage_process(f->storage, NAME, &o, p, &e);
}

static bool storage_gone(struct fx *f)
{
	struct stat st;
	return lstat(f->storage, &st) < 0 && errno == ENOENT;
}

#define PRE(ts)                                                                                    \
	"{\"workflow\": \"ci\", \"repository\": \"octo/hello\", \"event\": \"push\", "             \
	"\"timestamp\": " #ts ", \"workflow_run_id\": \"42\"}\n"

static void full_storage(struct fx *f, const char *post)
{
	put(f, METRICS_INSTALLATION_STARTED, "1000\n");
	put(f, METRICS_RUNNER_INSTALLED, "1030\n");
	put(f, METRICS_PRE_JOB, PRE(1100));
	if (post)
		put(f, METRICS_POST_JOB, post);
}

static void test_full_storage(void **state)
{
	struct fx *f = *state;
	struct metrics_processed p;

	full_storage(f, "{\"timestamp\": 1160, \"status\": \"normal\", "
	                "\"status_info\": {\"code\": 0}}\n");
	assert_int_equal(process(f, &p), 0);
	assert_int_equal(f->n, 3);
	assert_int_equal(p.issued, 3);
	assert_int_equal(f->ev[0].kind, METRICS_EVENT_RUNNER_INSTALLED);
	assert_true(f->ev[0].timestamp == 1030 && f->ev[0].duration == 30);
	assert_string_equal(f->ev[0].flavor, "small");
	assert_int_equal(f->ev[1].kind, METRICS_EVENT_RUNNER_START);
	assert_true(f->ev[1].timestamp == 1100 && f->ev[1].idle == 70);
	assert_string_equal(f->ev[1].workflow, "ci");
	assert_string_equal(f->ev[1].repo, "octo/hello");
	assert_string_equal(f->ev[1].github_event, "push");
	assert_false(f->ev[1].has_queue_duration);
	assert_int_equal(f->ev[2].kind, METRICS_EVENT_RUNNER_STOP);
	assert_true(f->ev[2].timestamp == 1160 && f->ev[2].job_duration == 60);
	assert_string_equal(f->ev[2].status, "normal");
	assert_true(f->ev[2].has_status_code);
	assert_string_equal(f->ev[2].job_conclusion, "");
	assert_int_equal(f->lookups, 1);
	assert_true(p.removed && storage_gone(f));
}

static void test_pre_job_before_installed_idle_zero(void **state)
{
	struct fx *f = *state;
	struct metrics_processed p;

	put(f, METRICS_RUNNER_INSTALLED, "2000");
	put(f, METRICS_PRE_JOB, PRE(1500));
	assert_int_equal(process(f, &p), 0);
	assert_int_equal(f->n, 1); /* no installation start: no runner_installed */
	assert_int_equal(f->ev[0].kind, METRICS_EVENT_RUNNER_START);
	assert_true(f->ev[0].idle == 0);
}

static void test_post_before_pre_job_duration_zero(void **state)
{
	struct fx *f = *state;
	struct metrics_processed p;

	full_storage(f, "{\"timestamp\": 1050, \"status\": \"normal\"}");
	assert_int_equal(process(f, &p), 0);
	assert_int_equal(f->n, 3);
	assert_true(f->ev[2].job_duration == 0);
	assert_false(f->ev[2].has_status_code);
}

static void test_post_without_pre_only_installed(void **state)
{
	struct fx *f = *state;
	struct metrics_processed p;

	put(f, METRICS_INSTALLATION_STARTED, "1000");
	put(f, METRICS_RUNNER_INSTALLED, "1030");
	/* ignored, even bad: without the pre-job file it is never read */
	put(f, METRICS_POST_JOB, "not json at all");
	assert_int_equal(process(f, &p), 0);
	assert_int_equal(f->n, 1);
	assert_int_equal(f->ev[0].kind, METRICS_EVENT_RUNNER_INSTALLED);
	assert_int_equal(f->lookups, 0);
	assert_true(storage_gone(f));
}

static void test_no_installed_nothing_issued(void **state)
{
	struct fx *f = *state;
	struct metrics_processed p;

	put(f, METRICS_INSTALLATION_STARTED, "1000");
	put(f, METRICS_PRE_JOB, "{{{{ bad");
	assert_int_equal(process(f, &p), 0);
	assert_int_equal(f->n, 0);
	assert_false(p.quarantined);
	assert_true(p.removed && storage_gone(f));
}

static void test_abnormal_with_code(void **state)
{
	struct fx *f = *state;
	struct metrics_processed p;
	char line[METRICS_EVENT_LINE_MAX];

	full_storage(f, "{\"timestamp\": 1200, \"status\": \"abnormal\", "
	                "\"status_info\": {\"code\": 137}}");
	assert_int_equal(process(f, &p), 0);
	assert_string_equal(f->ev[2].status, "abnormal");
	assert_true(f->ev[2].has_status_code);
	assert_int_equal(f->ev[2].status_code, 137);
	assert_true(metrics_event_json(&f->ev[2], line, sizeof(line)) > 0);
	assert_non_null(strstr(line, "\"status\":\"abnormal\",\"status_info\":{\"code\":137}"));
}

static void test_repo_policy_failure(void **state)
{
	struct fx *f = *state;
	struct metrics_processed p;

	full_storage(f, "{\"timestamp\": 1101, \"status\": \"repo-policy-check-failure\", "
	                "\"status_info\": {\"code\": 403}}");
	assert_int_equal(process(f, &p), 0);
	assert_int_equal(f->n, 3);
	assert_string_equal(f->ev[2].status, "repo-policy-check-failure");
	assert_int_equal(f->ev[2].status_code, 403);
}

static void test_job_fields_from_github(void **state)
{
	struct fx *f = *state;
	struct metrics_processed p;

	f->lookup_ok = true;
	f->job = (struct metrics_job){.has_queue_duration = true, .queue_duration = 12};
	snprintf(f->job.conclusion, sizeof(f->job.conclusion), "failure");
	full_storage(f, "{\"timestamp\": 1160, \"status\": \"normal\"}");
	assert_int_equal(process(f, &p), 0);
	assert_true(f->ev[1].has_queue_duration && f->ev[1].queue_duration == 12);
	assert_string_equal(f->ev[2].job_conclusion, "failure");
}

static void test_partial_failure_keeps_issued(void **state)
{
	struct fx *f = *state;
	struct metrics_processed p;

	f->fail_at = 2;
	full_storage(f, "{\"timestamp\": 1160, \"status\": \"normal\"}");
	assert_int_equal(process(f, &p), -ENOSPC);
	assert_int_equal(f->n, 1);
	assert_int_equal(p.issued, 1);
	assert_true(p.issued_kind[METRICS_EVENT_RUNNER_INSTALLED]);
	assert_true(storage_gone(f)); /* never issued twice */
}

static void test_keep(void **state)
{
	struct fx *f = *state;
	struct metrics_processed p;
	struct metrics_process_opts o = {.keep = true, .emit = emit, .ctx = f};

	full_storage(f, NULL);
	assert_int_equal(metrics_storage_process(f->storage, NAME, &o, &p, NULL), 0);
	assert_int_equal(f->n, 2);
	assert_false(p.removed);
	assert_false(storage_gone(f));
}

/* ---- quarantine ---------------------------------------------------------- */

/* The archive's entries: "name=size" or "name->target", joined by spaces. */
static void archive_listing(const char *path, char *out, size_t cap)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ae;
	size_t used = 0;

	out[0] = '\0';
	archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_filename(a, path, 4096), ARCHIVE_OK);
	while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
		char data[2048];
		la_ssize_t n = 0;
		if (archive_entry_filetype(ae) == AE_IFLNK) {
			used += (size_t)snprintf(out + used, cap - used, "%s->%s ",
			                         archive_entry_pathname(ae),
			                         archive_entry_symlink(ae));
			continue;
		}
		n = archive_read_data(a, data, sizeof(data));
		assert_true(n >= 0);
		used += (size_t)snprintf(out + used, cap - used, "%s=%zd ",
		                         archive_entry_pathname(ae), (ssize_t)n);
	}
	archive_read_free(a);
}

/* A bad storage: -EBADMSG with cause, nothing issued, moved into a 0600 archive. */
static void expect_quarantine(struct fx *f, enum metrics_cause cause, const char *file,
                              const char *listing_has)
{
	struct metrics_processed p;
	char path[256], listing[2048];
	struct stat st;

	assert_int_equal(process(f, &p), -EBADMSG);
	assert_int_equal(f->n, 0);
	assert_int_equal(p.issued, 0);
	assert_int_equal(p.bad.cause, cause);
	assert_string_equal(p.bad.file, file);
	assert_true(p.quarantined && storage_gone(f));
	snprintf(path, sizeof(path), "%s/%s.tar.gz", f->qdir, NAME);
	assert_string_equal(p.quarantine_path, path);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	archive_listing(path, listing, sizeof(listing));
	assert_non_null(strstr(listing, METRICS_RUNNER_INSTALLED "="));
	if (listing_has)
		assert_non_null(strstr(listing, listing_has));
}

static void test_quarantine_too_big(void **state)
{
	struct fx *f = *state;
	char big[1100];

	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	full_storage(f, NULL);
	put(f, METRICS_PRE_JOB, big);
	expect_quarantine(f, METRICS_CAUSE_TOO_BIG, METRICS_PRE_JOB, METRICS_PRE_JOB "=1099");
}

static void test_quarantine_symlink(void **state)
{
	struct fx *f = *state;
	char link[256];

	full_storage(f, NULL);
	snprintf(link, sizeof(link), "%s/%s", f->storage, METRICS_POST_JOB);
	assert_int_equal(symlink("/etc/shadow", link), 0);
	/* archived as a symlink, never followed */
	expect_quarantine(f, METRICS_CAUSE_NOT_REGULAR, METRICS_POST_JOB,
	                  METRICS_POST_JOB "->/etc/shadow");
}

static void test_quarantine_fifo(void **state)
{
	struct fx *f = *state;
	char fifo[256], listing[2048], path[256];

	full_storage(f, NULL);
	snprintf(fifo, sizeof(fifo), "%s/%s", f->storage, METRICS_PRE_JOB);
	unlink(fifo);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	/* it would block a reader forever: never opened, left out of the archive */
	expect_quarantine(f, METRICS_CAUSE_NOT_REGULAR, METRICS_PRE_JOB, NULL);
	snprintf(path, sizeof(path), "%s/%s.tar.gz", f->qdir, NAME);
	archive_listing(path, listing, sizeof(listing));
	assert_null(strstr(listing, METRICS_PRE_JOB));
}

static void test_quarantine_invalid_json(void **state)
{
	struct fx *f = *state;

	full_storage(f, "{\"timestamp\": 1, \"status\": ");
	expect_quarantine(f, METRICS_CAUSE_INVALID_JSON, METRICS_POST_JOB, METRICS_POST_JOB "=");
}

static void test_quarantine_not_object(void **state)
{
	struct fx *f = *state;

	full_storage(f, NULL);
	put(f, METRICS_PRE_JOB, "[1, 2]");
	expect_quarantine(f, METRICS_CAUSE_NOT_OBJECT, METRICS_PRE_JOB, NULL);
}

static void test_quarantine_schema(void **state)
{
	struct fx *f = *state;

	full_storage(f, NULL);
	put(f, METRICS_PRE_JOB,
	    "{\"timestamp\": 1, \"workflow\": \"ci\", \"workflow_run_id\": 42, "
	    "\"repository\": \"octo/hello\", \"event\": \"push\"}");
	expect_quarantine(f, METRICS_CAUSE_SCHEMA, METRICS_PRE_JOB, NULL);
}

static void test_quarantine_timestamp_not_number(void **state)
{
	struct fx *f = *state;

	full_storage(f, "{\"timestamp\": \"soon\", \"status\": \"normal\"}");
	expect_quarantine(f, METRICS_CAUSE_BAD_TIMESTAMP, METRICS_POST_JOB, NULL);
}

static void test_quarantine_timestamp_file(void **state)
{
	struct fx *f = *state;

	full_storage(f, NULL);
	put(f, METRICS_RUNNER_INSTALLED, "yesterday\n");
	expect_quarantine(f, METRICS_CAUSE_BAD_TIMESTAMP, METRICS_RUNNER_INSTALLED, NULL);
}

static void test_quarantine_bad_status(void **state)
{
	struct fx *f = *state;

	full_storage(f, "{\"timestamp\": 1160, \"status\": \"fine\"}");
	expect_quarantine(f, METRICS_CAUSE_SCHEMA, METRICS_POST_JOB, NULL);
}

static void test_quarantine_bounded(void **state)
{
	struct fx *f = *state;
	struct metrics_quarantined q;
	char path[256];

	full_storage(f, "not json");
	for (int i = 0; i < METRICS_QUARANTINE_ENTRIES_MAX + 10; i++) {
		snprintf(path, sizeof(path), "extra-%03d", i);
		put(f, path, "x");
	}
	assert_int_equal(metrics_quarantine(f->storage, f->qdir, NAME, &q, NULL), 0);
	assert_int_equal(q.entries, METRICS_QUARANTINE_ENTRIES_MAX);
	assert_int_equal(q.skipped, 14);
	assert_true(storage_gone(f));
	assert_int_equal(metrics_quarantine(f->storage, f->qdir, "../x", &q, NULL), -EINVAL);
}

static void test_no_quarantine_dir_leaves_it(void **state)
{
	struct fx *f = *state;
	struct metrics_processed p;
	struct metrics_process_opts o = {.emit = emit, .ctx = f};

	full_storage(f, "[]");
	assert_int_equal(metrics_storage_process(f->storage, NAME, &o, &p, NULL), -EBADMSG);
	assert_int_equal(f->n, 0);
	assert_false(p.quarantined);
	assert_false(storage_gone(f));
}

/* ---- the parsers ----------------------------------------------------------- */

static void test_parsers(void **state)
{
	struct metrics_pre_job pre;
	struct metrics_post_job post;
	enum metrics_cause c = METRICS_CAUSE_NONE;
	char longwf[400];
	double t = -1;

	assert_int_equal(metrics_parse_timestamp(" 1700000000.5\n", 14, &t, &c, NULL), 0);
	assert_true(t == 1700000000.5);
	assert_int_equal(metrics_parse_timestamp("-1", 2, &t, &c, NULL), -EBADMSG);
	assert_int_equal(c, METRICS_CAUSE_BAD_TIMESTAMP);
	assert_int_equal(metrics_parse_timestamp("1e400", 5, &t, &c, NULL), -EBADMSG);
	assert_int_equal(metrics_parse_timestamp("nan", 3, &t, &c, NULL), -EBADMSG);
	assert_int_equal(metrics_parse_timestamp("", 0, &t, &c, NULL), -EBADMSG);
	/* duplicate keys, NUL in a string: refused as invalid */
	const char dup[] = "{\"timestamp\": 1, \"status\": \"normal\", \"status\": \"abnormal\"}";
	assert_int_equal(metrics_parse_post_job(dup, strlen(dup), &post, &c, NULL), -EBADMSG);
	assert_int_equal(c, METRICS_CAUSE_INVALID_JSON);
	const char nul[] = "{\"timestamp\": 1, \"status\": \"nor\\u0000mal\"}";
	assert_int_equal(metrics_parse_post_job(nul, strlen(nul), &post, &c, NULL), -EBADMSG);
	const char scalar[] = "42";
	assert_int_equal(metrics_parse_post_job(scalar, 2, &post, &c, NULL), -EBADMSG);
	assert_int_equal(c, METRICS_CAUSE_NOT_OBJECT);
	const char code_str[] = "{\"timestamp\": 1, \"status\": \"normal\", \"status_info\": "
	                        "{\"code\": \"1\"}}";
	assert_int_equal(metrics_parse_post_job(code_str, strlen(code_str), &post, &c, NULL),
	                 -EBADMSG);
	assert_int_equal(c, METRICS_CAUSE_SCHEMA);
	const char null_info[] =
	        "{\"timestamp\": 1, \"status\": \"normal\", \"status_info\": null}";
	assert_int_equal(metrics_parse_post_job(null_info, strlen(null_info), &post, &c, NULL), 0);
	assert_false(post.has_code);
	const char bool_ts[] = "{\"timestamp\": true, \"status\": \"normal\"}";
	assert_int_equal(metrics_parse_post_job(bool_ts, strlen(bool_ts), &post, &c, NULL),
	                 -EBADMSG);
	assert_int_equal(c, METRICS_CAUSE_BAD_TIMESTAMP);
	const char norepo[] =
	        "{\"timestamp\": 1, \"workflow\": \"ci\", \"workflow_run_id\": \"1\", "
	        "\"repository\": \"hello\", \"event\": \"push\"}";
	assert_int_equal(metrics_parse_pre_job(norepo, strlen(norepo), &pre, &c, NULL), -EBADMSG);
	assert_int_equal(c, METRICS_CAUSE_SCHEMA);
	/* a string too long for its field is refused, never cut */
	memset(longwf, 'w', 300);
	longwf[300] = '\0';
	char doc[800];
	snprintf(doc, sizeof(doc),
	         "{\"timestamp\": 1, \"workflow\": \"%s\", \"workflow_run_id\": \"1\", "
	         "\"repository\": \"o/r\", \"event\": \"push\"}",
	         longwf);
	assert_int_equal(metrics_parse_pre_job(doc, strlen(doc), &pre, &c, NULL), -EBADMSG);
	assert_int_equal(c, METRICS_CAUSE_SCHEMA);
	assert_string_equal(metrics_cause_name(METRICS_CAUSE_TOO_BIG), "too_big");
}

/* ---- events as JSON lines ----------------------------------------------- */

static json_t *line_json(const struct metrics_event *ev)
{
	char line[METRICS_EVENT_LINE_MAX];
	int n = metrics_event_json(ev, line, sizeof(line));
	json_t *j;

	assert_true(n > 0);
	assert_int_equal(line[n - 1], '\n');
	assert_null(memchr(line, '\n', (size_t)n - 1)); /* one line */
	j = json_loads(line, 0, NULL);
	assert_non_null(j);
	return j;
}

static void expect_keys(json_t *j, const char *const *keys)
{
	size_t n = 0;
	for (; keys[n]; n++)
		assert_non_null(json_object_get(j, keys[n]));
	assert_int_equal(json_object_size(j), n);
}

static void test_event_json_fields(void **state)
{
	struct metrics_event ev = {.kind = METRICS_EVENT_RUNNER_START, .timestamp = 1700000000};
	json_t *j;

	snprintf(ev.flavor, sizeof(ev.flavor), "small");
	snprintf(ev.workflow, sizeof(ev.workflow), "w\"\n\x01");
	j = line_json(&ev);
	expect_keys(j, (const char *[]){"event", "timestamp", "flavor", "workflow", "repo",
	                                "github_event", "idle", NULL});
	assert_string_equal(json_string_value(json_object_get(j, "event")), "runner_start");
	assert_string_equal(json_string_value(json_object_get(j, "workflow")), "w\"\n\x01");
	assert_true(json_real_value(json_object_get(j, "timestamp")) == 1700000000.0);
	json_decref(j);
	ev.has_queue_duration = true;
	j = line_json(&ev);
	assert_non_null(json_object_get(j, "queue_duration"));
	json_decref(j);

	ev = (struct metrics_event){.kind = METRICS_EVENT_RUNNER_STOP};
	snprintf(ev.status, sizeof(ev.status), "normal");
	j = line_json(&ev);
	expect_keys(j, (const char *[]){"event", "timestamp", "flavor", "workflow", "repo",
	                                "github_event", "status", "job_duration", NULL});
	json_decref(j);
	ev.has_status_code = true;
	snprintf(ev.job_conclusion, sizeof(ev.job_conclusion), "success");
	j = line_json(&ev);
	assert_int_equal(
	        json_integer_value(json_object_get(json_object_get(j, "status_info"), "code")), 0);
	assert_string_equal(json_string_value(json_object_get(j, "job_conclusion")), "success");
	json_decref(j);

	ev = (struct metrics_event){.kind = METRICS_EVENT_RUNNER_INSTALLED, .duration = 2.5};
	j = line_json(&ev);
	expect_keys(j, (const char *[]){"event", "timestamp", "flavor", "duration", NULL});
	json_decref(j);

	ev = (struct metrics_event){.kind = METRICS_EVENT_RECONCILIATION,
	                            .crashed_runners = 1,
	                            .idle_runners = 2,
	                            .active_runners = 3,
	                            .expected_runners = 4};
	j = line_json(&ev);
	expect_keys(j, (const char *[]){"event", "timestamp", "flavor", "crashed_runners",
	                                "idle_runners", "active_runners", "expected_runners",
	                                "duration", NULL});
	assert_int_equal(json_integer_value(json_object_get(j, "expected_runners")), 4);
	json_decref(j);
}

static void test_event_line_bound(void **state)
{
	struct metrics_event ev = {.kind = METRICS_EVENT_RUNNER_START};
	char small[64], line[METRICS_EVENT_LINE_MAX];

	memset(ev.workflow, 0x01, sizeof(ev.workflow) - 1); /* 6 bytes each as \u0001 */
	memset(ev.repo, 0x02, sizeof(ev.repo) - 1);
	memset(ev.github_event, 0x03, sizeof(ev.github_event) - 1);
	/* the longest event there can be still fits a line */
	assert_true(metrics_event_json(&ev, line, sizeof(line)) > 3000);
	assert_int_equal(metrics_event_json(&ev, small, sizeof(small)), -E2BIG);
	assert_string_equal(small, "");
	assert_string_equal(metrics_event_name(METRICS_EVENT_KIND_COUNT), "invalid");
}

/* ---- the events log -------------------------------------------------------- */

static size_t lines_in(const char *path)
{
	struct buf b = BUF_INIT(1 << 20);
	size_t n = 0;

	if (file_read(path, 1 << 20, true, &b, NULL) == 0)
		for (size_t i = 0; i < b.len; i++)
			n += b.data[i] == '\n';
	buf_release(&b);
	return n;
}

static void test_events_log_reopen(void **state)
{
	struct fx *f = *state;
	struct metrics_events_log *l = NULL;
	struct metrics_event ev = {.kind = METRICS_EVENT_RUNNER_INSTALLED};
	char path[256], moved[256], link[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/log/sub/metrics.log", f->dir);
	snprintf(moved, sizeof(moved), "%s.1", path);
	assert_int_equal(metrics_events_log_open(path, &l, NULL), 0); /* parents made */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(metrics_events_log_write(l, &ev, NULL), 0);
	assert_int_equal(metrics_events_log_write(l, &ev, NULL), 0);
	assert_int_equal(rename(path, moved), 0); /* logrotate */
	assert_int_equal(metrics_events_log_write(l, &ev, NULL), 0);
	assert_int_equal(metrics_events_log_reopen(l, path, NULL), 0);
	assert_int_equal(metrics_events_log_write(l, &ev, NULL), 0);
	assert_int_equal(lines_in(moved), 3);
	assert_int_equal(lines_in(path), 1);
	/* a reopen that fails keeps the old file */
	snprintf(link, sizeof(link), "%s/log/link.log", f->dir);
	assert_int_equal(symlink(moved, link), 0);
	assert_int_not_equal(metrics_events_log_reopen(l, link, NULL), 0);
	assert_int_equal(metrics_events_log_write(l, &ev, NULL), 0);
	assert_int_equal(lines_in(path), 2);
	assert_string_equal(metrics_events_log_path(l), path);
	metrics_events_log_free(l);
	metrics_events_log_free(NULL);
	assert_int_not_equal(metrics_events_log_open(link, &l, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_full_storage, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_pre_job_before_installed_idle_zero, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_post_before_pre_job_duration_zero, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_post_without_pre_only_installed, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_no_installed_nothing_issued, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_abnormal_with_code, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_repo_policy_failure, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_job_fields_from_github, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_partial_failure_keeps_issued, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_keep, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_quarantine_too_big, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_quarantine_symlink, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_quarantine_fifo, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_quarantine_invalid_json, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_quarantine_not_object, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_quarantine_schema, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_quarantine_timestamp_not_number, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_quarantine_timestamp_file, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_quarantine_bad_status, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_quarantine_bounded, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_no_quarantine_dir_leaves_it, setup, teardown),
	        cmocka_unit_test(test_parsers),
	        cmocka_unit_test(test_event_json_fields),
	        cmocka_unit_test(test_event_line_bound),
	        cmocka_unit_test_setup_teardown(test_events_log_reopen, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
