/*
 * Unit tests of what the lxd backend makes of LXD's text
 * (src/provider/lxd/parse.c), without an LXD: instance objects and
 * listings as LXD 5.0 answers them (fixtures cut from real answers), the
 * answer envelope and its errors, operations, what an exec leaves, the
 * listing script's output, the files API's directory listing, an ACL's
 * used_by and security.acls lists; and what a broken or hostile answer
 * gets: a clean error, never a half-filled result.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "provider/lxd/lxd_internal.h"

#define OP_ID "0b0b0b0b-0000-4000-8000-000000000001"

/* GET /1.0/instances/<name>: metadata, as LXD 5.0.2 answered it (user data cut short). */
static const char inst_running[] =
        "{\"architecture\":\"x86_64\",\"config\":{"
        "\"cloud-init.user-data\":\"#!/bin/sh\\n# runnerd: writes the startup script\\n\","
        "\"image.description\":\"runnerd test image (busybox)\",\"limits.cpu\":\"1\","
        "\"limits.memory\":\"268435456\",\"user.runnerd.flavor\":\"pool\","
        "\"user.runnerd.manager\":\"lxdt\",\"volatile.base_image\":"
        "\"ee94b4b04663790f5d91aae864f21f86cb5e8389d4befbe85c50b2d5dbf41552\","
        "\"volatile.eth0.hwaddr\":\"00:16:3e:f4:4a:96\",\"volatile.last_state.power\":"
        "\"RUNNING\",\"volatile.uuid\":\"da89818a-3d3b-43ae-8898-3be16690c20e\"},"
        "\"devices\":{\"eth0\":{\"network\":\"rdtestbr0\",\"type\":\"nic\"},\"root\":{"
        "\"path\":\"/\",\"pool\":\"rdtest\",\"size\":\"10737418240\",\"type\":\"disk\"}},"
        "\"ephemeral\":false,\"profiles\":[\"default\",\"ghsim-lxdt\"],\"stateful\":false,"
        "\"description\":\"\",\"created_at\":\"2026-12-03T12:38:38.856574222Z\","
        "\"expanded_config\":{},\"expanded_devices\":{},\"name\":\"lxdt-5e47b94ce7c8\","
        "\"status\":\"Running\",\"status_code\":103,\"last_used_at\":"
        "\"2026-12-03T12:38:43.284129786Z\",\"location\":\"none\",\"type\":\"container\","
        "\"project\":\"runnerd-e2e\"}";

static json_t *load(const char *s)
{
	json_error_t je;
	json_t *j = json_loads(s, JSON_DECODE_ANY, &je);
	assert_non_null(j);
	return j;
}

/* A real instance object: every field where it belongs. */
static void test_instance_real(void **state)
{
	json_t *o = load(inst_running);
	struct instance in;
	const char *owner = NULL;
	int64_t t;

	assert_int_equal(lxd_parse_instance(o, &in, &owner), 0);
	assert_string_equal(in.name, "lxdt-5e47b94ce7c8");
	assert_string_equal(in.provider_id, "lxdt-5e47b94ce7c8");
	assert_string_equal(in.flavor, "pool");
	assert_int_equal(in.state, CLOUD_ACTIVE);
	assert_int_equal(clock_parse_rfc3339("2026-12-03T12:38:38Z", &t), 0);
	assert_int_equal((int64_t)in.created_at, t);
	assert_string_equal(owner, "lxdt");
	json_decref(o);
}

/* Every LXD status, and one LXD does not have. */
static void test_instance_states(void **state)
{
	static const struct {
		const char *status;
		enum cloud_state want;
	} cases[] = {
	        {"Running", CLOUD_ACTIVE},    {"Ready", CLOUD_ACTIVE},
	        {"Starting", CLOUD_CREATED},  {"Stopped", CLOUD_STOPPED},
	        {"Stopping", CLOUD_STOPPED},  {"Error", CLOUD_ERROR},
	        {"Aborting", CLOUD_ERROR},    {"Frozen", CLOUD_UNKNOWN},
	        {"Freezing", CLOUD_UNKNOWN},  {"Thawed", CLOUD_UNKNOWN},
	        {"running", CLOUD_UNKNOWN},   {"", CLOUD_UNKNOWN},
	        {"Migrating", CLOUD_UNKNOWN},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *o = json_pack("{s:s, s:s, s:{}}", "name", "ci-000000000001", "status",
		                      cases[i].status, "config");
		struct instance in;
		const char *owner = "x";
		assert_int_equal(lxd_parse_instance(o, &in, &owner), 0);
		assert_int_equal(in.state, cases[i].want);
		assert_null(owner);
		assert_string_equal(in.flavor, "");
		json_decref(o);
	}
}

/* LXD's "never" (year 1), a missing or odd creation time: no creation time. */
static void test_instance_times(void **state)
{
	static const char *const odd[] = {
	        "{\"name\":\"a\",\"status\":\"Stopped\",\"config\":{},"
	        "\"created_at\":\"0001-01-01T00:00:00Z\"}",
	        "{\"name\":\"a\",\"status\":\"Stopped\",\"config\":{}}",
	        "{\"name\":\"a\",\"status\":\"Stopped\",\"config\":{},\"created_at\":42}",
	        "{\"name\":\"a\",\"status\":\"Stopped\",\"config\":{},\"created_at\":"
	        "\"yesterday\"}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(odd); i++) {
		json_t *o = load(odd[i]);
		struct instance in;
		const char *owner;
		assert_int_equal(lxd_parse_instance(o, &in, &owner), 0);
		assert_int_equal((int64_t)in.created_at, 0);
		json_decref(o);
	}
}

/* Objects that are no instance: refused whole, the output untouched. */
static void test_instance_broken(void **state)
{
	char longname[200];
	const char *const bad[] = {
	        "[]",
	        "\"lxdt-5e47b94ce7c8\"",
	        "{\"status\":\"Running\",\"config\":{}}",
	        "{\"name\":42,\"status\":\"Running\",\"config\":{}}",
	        "{\"name\":\"a\",\"config\":{}}",
	        "{\"name\":\"a\",\"status\":null,\"config\":{}}",
	        "{\"name\":\"a\",\"status\":\"Running\"}",
	        "{\"name\":\"a\",\"status\":\"Running\",\"config\":[]}",
	        "{\"name\":\"a\",\"status\":\"Running\",\"config\":\"user.runnerd.manager=x\"}",
	        longname,
	};
	snprintf(longname, sizeof(longname),
	         "{\"name\":\"ci-%064d\",\"status\":\"Running\",\"config\":{}}", 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		json_t *o = load(bad[i]);
		struct instance in = {.name = "untouched"};
		const char *owner = "untouched";
		assert_int_equal(lxd_parse_instance(o, &in, &owner), -EBADMSG);
		assert_string_equal(in.name, "untouched");
		assert_string_equal(owner, "untouched");
		json_decref(o);
	}
	assert_int_equal(lxd_parse_instance(NULL, &(struct instance){0}, &(const char *){0}),
	                 -EBADMSG);
}

/* Fields of the wrong type or size are dropped, not trusted. */
static void test_instance_odd_fields(void **state)
{
	char flavor[100];
	json_t *o;
	struct instance in;
	const char *owner;

	memset(flavor, 'f', sizeof(flavor) - 1);
	flavor[sizeof(flavor) - 1] = '\0';
	o = json_pack("{s:s, s:s, s:{s:i, s:s}}", "name", "ci-000000000001", "status", "Running",
	              "config", "user.runnerd.manager", 7, "user.runnerd.flavor", flavor);
	assert_int_equal(lxd_parse_instance(o, &in, &owner), 0);
	assert_null(owner);
	assert_string_equal(in.flavor, "");
	json_decref(o);
}

/* A listing: only this manager's instances, by name and by user.runnerd.manager. */
static void test_instances_filter(void **state)
{
	json_t *meta = load("[{\"name\":\"ci-000000000001\",\"status\":\"Running\",\"config\":"
	                    "{\"user.runnerd.manager\":\"ci\",\"user.runnerd.flavor\":\"small\"}},"
	                    "{\"name\":\"ci-000000000002\",\"status\":\"Stopped\",\"config\":"
	                    "{\"user.runnerd.manager\":\"other\"}},"
	                    "{\"name\":\"ci-000000000003\",\"status\":\"Running\",\"config\":{}},"
	                    "{\"name\":\"ci-east-000000000004\",\"status\":\"Running\",\"config\":"
	                    "{\"user.runnerd.manager\":\"ci\"}},"
	                    "{\"name\":\"ci-00000000000G\",\"status\":\"Running\",\"config\":"
	                    "{\"user.runnerd.manager\":\"ci\"}},"
	                    "{\"name\":\"web\",\"status\":\"Running\",\"config\":{}},"
	                    "{\"name\":\"ci-000000000005\",\"status\":\"Error\",\"config\":"
	                    "{\"user.runnerd.manager\":\"ci\"}}]");
	struct instance_list l = {0};
	struct err e = {0};

	assert_int_equal(lxd_parse_instances(meta, "ci", &l, &e), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].name, "ci-000000000001");
	assert_string_equal(l.v[0].flavor, "small");
	assert_string_equal(l.v[1].name, "ci-000000000005");
	assert_int_equal(l.v[1].state, CLOUD_ERROR);
	instance_list_release(&l);
	json_decref(meta);
}

/* One broken entry breaks the listing: never a shorter list. */
static void test_instances_broken(void **state)
{
	json_t *meta = load("[{\"name\":\"ci-000000000001\",\"status\":\"Running\",\"config\":"
	                    "{\"user.runnerd.manager\":\"ci\"}},{\"name\":42}]");
	json_t *obj = load("{\"name\":\"ci-000000000001\"}");
	struct instance_list l = {0};
	struct err e = {0};

	assert_int_equal(lxd_parse_instances(meta, "ci", &l, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "#1"));
	instance_list_release(&l);
	assert_int_equal(lxd_parse_instances(obj, "ci", &l, &e), -EBADMSG);
	assert_int_equal(lxd_parse_instances(NULL, "ci", &l, &e), -EBADMSG);
	assert_int_equal(l.n, 0);
	json_decref(meta);
	json_decref(obj);
}

static int answer(long status, const char *body, struct lxd_answer *a, struct err *e)
{
	return lxd_parse_answer("GET", "/1.0/x", status, body, body ? strlen(body) : 0, a, e);
}

/* Sync and async answers as LXD gives them. */
static void test_answer_ok(void **state)
{
	struct lxd_answer a = {0};
	struct err e = {0};

	assert_int_equal(answer(200,
	                        "{\"type\":\"sync\",\"status\":\"Success\",\"status_code\":200,"
	                        "\"operation\":\"\",\"error_code\":0,\"error\":\"\",\"metadata\":"
	                        "{\"config\":{\"images.auto_update_interval\":\"0\"}}}",
	                        &a, &e),
	                 0);
	assert_true(json_is_object(a.meta));
	assert_string_equal(a.op, "");
	lxd_answer_release(&a);
	assert_int_equal(answer(202,
	                        "{\"type\":\"async\",\"status\":\"Operation created\","
	                        "\"status_code\":100,\"operation\":\"/1.0/operations/" OP_ID
	                        "\",\"error_code\":0,\"error\":\"\",\"metadata\":{\"id\":\"" OP_ID
	                        "\",\"class\":\"task\",\"status\":\"Running\"}}",
	                        &a, &e),
	                 0);
	assert_string_equal(a.op, OP_ID);
	lxd_answer_release(&a);
	/* a sync answer without metadata is an answer */
	assert_int_equal(answer(200, "{\"type\":\"sync\",\"metadata\":null}", &a, &e), 0);
	assert_true(json_is_null(a.meta));
	lxd_answer_release(&a);
}

/* Operation ids that could steer a URL elsewhere are refused. */
static void test_answer_bad_operation(void **state)
{
	static const char *const ops[] = {
	        "\"/1.0/operations/../instances/x\"",
	        "\"/1.0/operations/0B0B0B0B-0000-4000-8000-000000000001\"",
	        "\"/1.0/operations/\"",
	        "\"/1.0/instances/x\"",
	        "\"0b0b0b0b-0000-4000-8000-000000000001\"",
	        "\"/1.0/operations/0b0b?x=1\"",
	        "\"/1.0/operations/"
	        "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"
	        "\"",
	        "42",
	        "null",
	};
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		char body[512];
		struct lxd_answer a = {.op = "untouched"};
		struct err e = {0};
		snprintf(body, sizeof(body), "{\"type\":\"async\",\"operation\":%s}", ops[i]);
		assert_int_equal(answer(202, body, &a, &e), -EBADMSG);
		assert_string_equal(a.op, "untouched");
		assert_non_null(strstr(e.msg, "without an operation"));
	}
}

/* Error answers: LXD's errno and text, bounded and printable. */
static void test_answer_errors(void **state)
{
	static const struct {
		long status;
		const char *body;
		int want;
		const char *text;
	} cases[] = {
	        {404,
	         "{\"type\":\"error\",\"status\":\"\",\"status_code\":0,\"operation\":\"\","
	         "\"error_code\":404,\"error\":\"Instance not found\",\"metadata\":null}",
	         -ENOENT, "Instance not found"},
	        {409, "{\"type\":\"error\",\"error_code\":409,\"error\":\"already exists\"}",
	         -EEXIST, "already exists"},
	        {400, "{\"type\":\"error\",\"error\":\"bad\"}", -EINVAL, "bad"},
	        {403, "{\"type\":\"error\",\"error\":\"not authorized\"}", -EACCES,
	         "not authorized"},
	        {412, "{\"type\":\"error\",\"error\":\"ETag mismatch\"}", -EAGAIN, "ETag mismatch"},
	        {503, "", -EAGAIN, "HTTP 503"},
	        {500, "<html>Internal Server Error</html>", -EIO, "HTTP 500"},
	        /* error_code wins over the HTTP status */
	        {500, "{\"type\":\"error\",\"error_code\":404,\"error\":\"gone\"}", -ENOENT,
	         "gone"},
	        /* an error type on a 200 */
	        {200, "{\"type\":\"error\",\"error_code\":409,\"error\":\"busy\"}", -EEXIST,
	         "busy"},
	        {200, "{\"type\":\"error\"}", -EIO, "HTTP 200"},
	        {200, "not json", -EBADMSG, "unparsable answer (HTTP 200)"},
	        {200, "", -EBADMSG, "unparsable"},
	        {200, "[]", -EBADMSG, "unparsable"},
	        {200, "{\"metadata\":{}}", -EBADMSG, "unparsable"},
	        {200, "{\"type\":7}", -EBADMSG, "unparsable"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct lxd_answer a = {0};
		struct err e = {0};
		assert_int_equal(answer(cases[i].status, cases[i].body, &a, &e), cases[i].want);
		assert_non_null(strstr(e.msg, cases[i].text));
		assert_non_null(strstr(e.msg, "GET /1.0/x"));
		assert_null(a.root);
	}
}

/* LXD's own text is cut short and its control characters are blanked. */
static void test_answer_error_text(void **state)
{
	char body[2048], text[1200];
	struct lxd_answer a = {0};
	struct err e = {0};

	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	snprintf(body, sizeof(body), "{\"type\":\"error\",\"error\":\"line\\nbreak\\u001b[31m%s\"}",
	         text);
	assert_int_equal(answer(500, body, &a, &e), -EIO);
	assert_null(strchr(e.msg, '\n'));
	assert_null(strchr(e.msg, 0x1b));
	assert_non_null(strstr(e.msg, "line break"));
	assert_non_null(strstr(e.msg, "..."));
	assert_true(strlen(e.msg) < LXD_ERRTEXT_MAX + 64);
}

/* Operation objects (a wait's metadata). */
static void test_operation(void **state)
{
	static const struct {
		const char *op;
		int want;
		const char *text;
	} cases[] = {
	        {"{\"id\":\"" OP_ID "\",\"class\":\"task\",\"description\":\"Creating instance\","
	         "\"status\":\"Success\",\"status_code\":200,\"resources\":{\"instances\":"
	         "[\"/1.0/instances/ci-000000000001\"]},\"metadata\":null,\"may_cancel\":false,"
	         "\"err\":\"\",\"location\":\"none\"}",
	         0, ""},
	        {"{\"status\":\"Running\",\"status_code\":103}", 1, ""},
	        {"{\"status\":\"Pending\",\"status_code\":105}", 1, ""},
	        {"{\"status\":\"Failure\",\"status_code\":400,\"err\":\"Failed creating instance "
	         "record: Instance \\\"ci-000000000001\\\" already exists\"}",
	         -EIO, "already exists"},
	        {"{\"status\":\"Failure\",\"status_code\":400,\"err\":\"\"}", -EIO, "failed"},
	        {"{\"status\":\"Cancelled\",\"status_code\":401}", -EIO, "cancelled"},
	        {"{\"status\":\"Success\",\"status_code\":\"200\"}", -EBADMSG, "unparsable"},
	        {"{\"status\":\"Success\"}", -EBADMSG, "unparsable"},
	        {"[200]", -EBADMSG, "unparsable"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *op = load(cases[i].op);
		struct err e = {0};
		assert_int_equal(lxd_parse_operation(op, "create ci-000000000001", &e),
		                 cases[i].want);
		assert_non_null(strstr(e.msg, cases[i].text));
		json_decref(op);
	}
	assert_int_equal(lxd_parse_operation(NULL, "x", NULL), -EBADMSG);
}

/* An exec operation: its return code and its logs, only the instance's own. */
static void test_exec(void **state)
{
	json_t *op = load("{\"id\":\"" OP_ID "\",\"class\":\"task\",\"description\":"
	                  "\"Executing command\",\"status\":\"Success\",\"status_code\":200,"
	                  "\"metadata\":{\"output\":{\"1\":\"/1.0/instances/ci-000000000001/logs/"
	                  "exec_" OP_ID ".stdout?project=runnerd-test\",\"2\":\"/1.0/instances/"
	                  "ci-000000000001/logs/exec_" OP_ID ".stderr\"},\"return\":3}}");
	char logs[2][LXD_LOG_PATH_MAX];
	int rc = -1;

	assert_int_equal(lxd_parse_exec_return(op, &rc), 0);
	assert_int_equal(rc, 3);
	lxd_parse_exec_logs(op, "ci-000000000001", logs);
	assert_string_equal(logs[0], "/1.0/instances/ci-000000000001/logs/exec_" OP_ID ".stdout");
	assert_string_equal(logs[1], "/1.0/instances/ci-000000000001/logs/exec_" OP_ID ".stderr");
	/* the logs of another instance are not ours to read or delete */
	lxd_parse_exec_logs(op, "ci-000000000002", logs);
	assert_string_equal(logs[0], "");
	assert_string_equal(logs[1], "");
	lxd_parse_exec_logs(op, "ci-00000000000", logs);
	assert_string_equal(logs[0], "");
	json_decref(op);
}

static void test_exec_broken(void **state)
{
	static const char *const paths[] = {
	        "/1.0/instances/ci-000000000001/logs/",
	        "/1.0/instances/ci-000000000001/logs/../../ci-000000000002/logs/x",
	        "/1.0/instances/ci-000000000001/logs/x%2f..",
	        "/1.0/instances/ci-000000000001/logs/x y",
	        "/1.0/instances/ci-000000000001/x",
	        "http://evil/1.0/instances/ci-000000000001/logs/x",
	        "/1.0/instances/ci-000000000001/logs/"
	        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	        "xxxx"
	        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	        "xxxx"
	        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	        "xxxx",
	};
	char logs[2][LXD_LOG_PATH_MAX];
	int rc = 7;

	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		json_t *op = json_pack("{s:{s:{s:s}, s:s}}", "metadata", "output", "1", paths[i],
		                       "return", "0");
		lxd_parse_exec_logs(op, "ci-000000000001", logs);
		assert_string_equal(logs[0], "");
		assert_string_equal(logs[1], "");
		assert_int_equal(lxd_parse_exec_return(op, &rc), -EBADMSG);
		assert_int_equal(rc, 7);
		json_decref(op);
	}
	lxd_parse_exec_logs(NULL, "ci-000000000001", logs);
	assert_string_equal(logs[0], "");
	assert_int_equal(lxd_parse_exec_return(NULL, &rc), -EBADMSG);
}

/* The listing script's output: its files (plain names only) and their count. */
static void test_listing(void **state)
{
	static const char out[] = "0 1502 0 -\n"
	                          "1 1700000100 6 Runner_1.log\n"
	                          "\n"
	                          "1 1700000000 2 Worker_2.log\n"
	                          "2 1700000200 1 .\n"
	                          "2 1700000200 1 ..\n"
	                          "2 1700000200 1 a/b\n"
	                          "2 1700000200 1 bell\a\n"
	                          "2 1700000200 1 nul\0byte\n"
	                          "2 1700000200 -1 negative-size\n"
	                          "3 1700000200 1 bad-rank\n"
	                          "2 x 1 bad-time\n"
	                          "2 1700000200 1\n"
	                          "2 -5 3 before 1970 \n"
	                          "2 1700000300 4 .hidden\n"
	                          "2 1700000200 1 last";
	static const char *const prefer[] = {"Runner_", NULL};
	struct provider_list_query q = {.max = 10, .prefer = prefer};
	struct provider_file_list v = {0};

	assert_int_equal(lxd_parse_listing(out, sizeof(out) - 1, &q, &v), 0);
	assert_int_equal(v.n, 5);
	assert_int_equal(v.total, 1502);
	/* a heap until the front sorts it: look each up */
	for (size_t i = 0; i < v.n; i++) {
		const struct provider_file *f = &v.v[i];
		if (strcmp(f->name, "Runner_1.log") == 0)
			assert_true(f->preferred && f->size == 6 && f->mtime == 1700000100);
		else if (strcmp(f->name, "Worker_2.log") == 0)
			assert_true(!f->preferred && f->size == 2);
		else if (strcmp(f->name, "before 1970 ") == 0)
			assert_true(f->mtime == 0 && f->size == 3);
		else if (strcmp(f->name, ".hidden") == 0)
			assert_int_equal(f->size, 4);
		else
			assert_string_equal(f->name, "last");
	}
	provider_file_list_release(&v);
	assert_int_equal(lxd_parse_listing(NULL, 0, &q, &v), 0);
	assert_int_equal(v.n, 0);
	assert_int_equal(v.total, 0);
}

/* Whatever the instance prints, what is kept is bounded by the query. */
static void test_listing_limits(void **state)
{
	struct buf b = BUF_INIT(1 << 20);
	struct provider_list_query q = {.max = 3};
	struct provider_file_list v = {0};
	char name[300];

	/* a name over 255 bytes is no file name */
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(buf_printf(&b, "2 1 1 %s\n", name), 0);
	assert_int_equal(lxd_parse_listing(b.data, b.len, &q, &v), 0);
	assert_int_equal(v.n, 0);
	/* more lines than asked (a count that says fewer): the newest stay, all are counted */
	buf_reset(&b);
	assert_int_equal(buf_puts(&b, "0 2 0 -\n"), 0);
	for (int i = 0; i < 5000; i++)
		assert_int_equal(buf_printf(&b, "2 %d 1 f%d\n", 1000 + i, i), 0);
	assert_int_equal(lxd_parse_listing(b.data, b.len, &q, &v), 0);
	assert_int_equal(v.n, 3);
	assert_int_equal(v.total, 5000);
	for (size_t i = 0; i < v.n; i++)
		assert_true(v.v[i].mtime >= 1000 + 4997);
	provider_file_list_release(&v);
	buf_release(&b);
}

/* The files API's answer for a directory. */
static void test_dir(void **state)
{
	static const char ok[] =
	        "{\"type\":\"sync\",\"status\":\"Success\",\"status_code\":200,"
	        "\"operation\":\"\",\"error_code\":0,\"error\":\"\",\"metadata\":"
	        "[\"reg\",\"empty\",\"fifo\",\"lnk\",\"d\",\"..\",\"x/y\",7,null]}";
	static const char *const bad[] = {"", "[]", "{\"metadata\":{}}", "{\"metadata\":\"reg\"}",
	                                  "not json"};
	struct buf b = BUF_INIT(1 << 20);
	struct strv v = {0};

	assert_int_equal(lxd_parse_dir(ok, strlen(ok), &v), 0);
	assert_int_equal(v.n, 5);
	assert_string_equal(v.v[0], "reg");
	assert_string_equal(v.v[4], "d");
	strv_release(&v);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(lxd_parse_dir(bad[i], strlen(bad[i]), &v), -EBADMSG);
	assert_int_equal(v.n, 0);
	/* however many entries: the answer's size is the bound */
	assert_int_equal(buf_puts(&b, "{\"metadata\":["), 0);
	for (int i = 0; i < 5000; i++)
		assert_int_equal(buf_printf(&b, "%s\"f%d\"", i ? "," : "", i), 0);
	assert_int_equal(buf_puts(&b, "]}"), 0);
	assert_int_equal(lxd_parse_dir(b.data, b.len, &v), 0);
	assert_int_equal(v.n, 5000);
	strv_release(&v);
	buf_release(&b);
}

/* An ACL's used_by: the networks, nothing else. */
static void test_used_by(void **state)
{
	json_t *u = load("[\"/1.0/networks/rdtestbr0\",\"/1.0/instances/x\","
	                 "\"/1.0/networks/lxdbr1?project=east\",\"/1.0/networks/\",42,"
	                 "\"/1.0/networks/br2/x\",\"/1.0/profiles/default\"]");
	char nets[2][LXD_NET_NAME_MAX];
	size_t n = 99;

	lxd_parse_used_by(u, nets, ARRAY_SIZE(nets), &n);
	assert_int_equal(n, 2);
	assert_string_equal(nets[0], "rdtestbr0");
	assert_string_equal(nets[1], "lxdbr1");
	lxd_parse_used_by(NULL, nets, ARRAY_SIZE(nets), &n);
	assert_int_equal(n, 0);
	json_decref(u);
}

/* security.acls: comma-separated, blanks around items, ours added or removed, others kept. */
static void test_acl_lists(void **state)
{
	struct buf b = BUF_INIT(4096);

	assert_true(lxd_list_has("a, runnerd-ci-deny ,b", "runnerd-ci-deny"));
	assert_false(lxd_list_has("a,runnerd-ci-deny-x", "runnerd-ci-deny"));
	assert_false(lxd_list_has("", "a"));
	assert_false(lxd_list_has(NULL, "a"));
	assert_int_equal(lxd_list_edit("a, b ,,c", "ours", true, &b), 0);
	assert_string_equal(buf_str(&b), "a,b,c,ours");
	assert_int_equal(lxd_list_edit("ours,a, ours ", "ours", true, &b), 0);
	assert_string_equal(buf_str(&b), "a,ours");
	assert_int_equal(lxd_list_edit("a, ours ,b", "ours", false, &b), 0);
	assert_string_equal(buf_str(&b), "a,b");
	assert_int_equal(lxd_list_edit("ours", "ours", false, &b), 0);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(lxd_list_edit(NULL, "ours", true, &b), 0);
	assert_string_equal(buf_str(&b), "ours");
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_instance_real),
	        cmocka_unit_test(test_instance_states),
	        cmocka_unit_test(test_instance_times),
	        cmocka_unit_test(test_instance_broken),
	        cmocka_unit_test(test_instance_odd_fields),
	        cmocka_unit_test(test_instances_filter),
	        cmocka_unit_test(test_instances_broken),
	        cmocka_unit_test(test_answer_ok),
	        cmocka_unit_test(test_answer_bad_operation),
	        cmocka_unit_test(test_answer_errors),
	        cmocka_unit_test(test_answer_error_text),
	        cmocka_unit_test(test_operation),
	        cmocka_unit_test(test_exec),
	        cmocka_unit_test(test_exec_broken),
	        cmocka_unit_test(test_listing),
	        cmocka_unit_test(test_listing_limits),
	        cmocka_unit_test(test_dir),
	        cmocka_unit_test(test_used_by),
	        cmocka_unit_test(test_acl_lists),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
