/*
 * Unit tests of src/webhook/: the signature (GitHub's published test
 * vector, and every way a header can be wrong), the parse of a delivery
 * (ping, other events, workflow_job by action not status, ids above 2^53,
 * every missing field, malformed JSON, form encoding) and the routing of a
 * job to a flavor (case, implied labels, config order, arch, scope).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/buf.h"
#include "util/strutil.h"
#include "webhook/webhook.h"
#include "webhook_reference.h"

/* docs.github.com, "Validating webhook deliveries": the published test values */
#define VEC_SECRET "It's a Secret to Everybody"
#define VEC_BODY   "Hello, World!"
#define VEC_SIG    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

static int verify(const char *key, const char *body, const char *sig)
{
	struct err e = {0};
	int r = webhook_verify(key, key ? strlen(key) : 0, body, strlen(body), sig, &e);
	if (r < 0) {
		assert_true(e.msg[0] != '\0');
		assert_null(strstr(e.msg, VEC_SECRET)); /* never the secret */
	}
	return r;
}

static void test_verify_github_vector(void **state)
{
	(void)state;
	assert_int_equal(verify(VEC_SECRET, VEC_BODY, VEC_SIG), 0);
	/* hex digits in either case */
	assert_int_equal(
	        verify(VEC_SECRET, VEC_BODY,
	               "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17"),
	        0);
}

static void test_verify_refuses(void **state)
{
	(void)state;
	/* absent, empty, wrong algorithm, short, long, not hex */
	assert_int_equal(verify(VEC_SECRET, VEC_BODY, NULL), -EACCES);
	assert_int_equal(verify(VEC_SECRET, VEC_BODY, ""), -EACCES);
	assert_int_equal(
	        verify(VEC_SECRET, VEC_BODY, "sha1=01eb3a1e9c8e0f8f3ab2c28f4e2c1d0b5f4d7a11"),
	        -EACCES);
	assert_int_equal(verify(VEC_SECRET, VEC_BODY, "sha256=757107ea"), -EACCES);
	assert_int_equal(verify(VEC_SECRET, VEC_BODY, VEC_SIG "00"), -EACCES);
	assert_int_equal(
	        verify(VEC_SECRET, VEC_BODY,
	               "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1g"),
	        -EACCES);
	/* one bit of the digest, of the body, of the secret */
	assert_int_equal(
	        verify(VEC_SECRET, VEC_BODY,
	               "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e16"),
	        -EACCES);
	assert_int_equal(verify(VEC_SECRET, "Hello, World?", VEC_SIG), -EACCES);
	assert_int_equal(verify("It's a Secret to Everybodz", VEC_BODY, VEC_SIG), -EACCES);
	/* no secret: never "valid" */
	assert_int_equal(verify(NULL, VEC_BODY, VEC_SIG), -EINVAL);
	assert_int_equal(webhook_http_status(-EACCES), 401);
}

static int parse(const char *event, const char *delivery, const char *ctype, const char *body,
                 struct webhook_delivery *ret)
{
	struct webhook_headers h = {.event = event, .delivery = delivery, .content_type = ctype};
	struct err e = {0};
	int r = webhook_parse(&h, body, strlen(body), ret, &e);
	if (r < 0)
		assert_true(e.msg[0] != '\0');
	return r;
}

#define JOB(action, status, id, run, labels, repo)                                                 \
	"{\"action\":\"" action "\",\"workflow_job\":{\"id\":" id ",\"run_id\":" run               \
	",\"status\":\"" status "\",\"labels\":" labels "},\"repository\":{\"full_name\":\"" repo  \
	"\"}}"

static void test_parse_job(void **state)
{
	struct webhook_delivery d;
	(void)state;

	/* above 2^53 (9007199254740992): a double would round these */
	assert_int_equal(parse("workflow_job", "72d3162e-cc78-11e3-81ab-4c9367dc0958",
	                       "application/json",
	                       JOB("queued", "queued", "9007199254740993", "9223372036854775807",
	                           "[\"self-hosted\",\"Small\"]", "octo/hello"),
	                       &d),
	                 0);
	assert_int_equal(d.kind, WEBHOOK_JOB);
	assert_int_equal(d.job.action, WEBHOOK_QUEUED);
	assert_true(d.job.job_id == INT64_C(9007199254740993));
	assert_true(d.job.run_id == INT64_MAX);
	assert_string_equal(d.job.repo, "octo/hello");
	assert_string_equal(d.id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
	assert_int_equal(d.job.labels.n, 2);
	assert_string_equal(d.job.labels.v[1], "Small");
	webhook_delivery_release(&d);

	/* the action counts, not the status (one of GitHub's examples is queued/waiting) */
	assert_int_equal(parse("workflow_job", "d1", NULL,
	                       JOB("queued", "waiting", "1", "2", "[]", "o/r"), &d),
	                 0);
	assert_int_equal(d.job.action, WEBHOOK_QUEUED);
	webhook_delivery_release(&d);
	assert_int_equal(parse("workflow_job", "d1", "application/json; charset=utf-8",
	                       JOB("in_progress", "queued", "1", "2", "[]", "o/r"), &d),
	                 0);
	assert_int_equal(d.job.action, WEBHOOK_IN_PROGRESS);
	webhook_delivery_release(&d);
	assert_int_equal(parse("workflow_job", "d1", NULL,
	                       JOB("completed", "completed", "1", "2", "[]", "o/r"), &d),
	                 0);
	assert_int_equal(d.job.action, WEBHOOK_COMPLETED);
	webhook_delivery_release(&d);
	assert_int_equal(parse("workflow_job", "d1", NULL,
	                       JOB("waiting", "waiting", "1", "2", "[]", "o/r"), &d),
	                 0);
	assert_int_equal(d.job.action, WEBHOOK_WAITING);
	webhook_delivery_release(&d);
	assert_int_equal(parse("workflow_job", "d1", NULL,
	                       JOB("requested", "queued", "1", "2", "[]", "o/r"), &d),
	                 0);
	assert_int_equal(d.job.action, WEBHOOK_ACTION_OTHER);
	webhook_delivery_release(&d);
}

static void test_parse_ping_and_others(void **state)
{
	struct webhook_delivery d;
	(void)state;

	assert_int_equal(
	        parse("ping", "p1", "application/json", "{\"zen\":\"Keep it simple.\"}", &d), 0);
	assert_int_equal(d.kind, WEBHOOK_PING);
	webhook_delivery_release(&d);
	/* any other event: no field of it is required */
	assert_int_equal(parse("push", "p2", NULL, "{\"ref\":\"refs/heads/main\"}", &d), 0);
	assert_int_equal(d.kind, WEBHOOK_OTHER);
	assert_string_equal(d.event, "push");
	webhook_delivery_release(&d);
}

static void test_parse_refuses(void **state)
{
	struct webhook_delivery d = {.id = "untouched"};
	const char *good = JOB("queued", "queued", "1", "2", "[\"a\"]", "o/r");
	static const char *const bad_jobs[] = {
	        "",
	        "{",
	        "{not json",
	        "[]",
	        "{\"a\":1} {}",
	        "{\"a\":1,\"a\":2}",
	        "{\"workflow_job\":{\"id\":1,\"run_id\":2,\"labels\":[]},"
	        "\"repository\":{\"full_name\":\"o/r\"}}",
	        "{\"action\":\"queued\",\"repository\":{\"full_name\":\"o/r\"}}",
	        JOB("queued", "queued", "\"1\"", "2", "[]", "o/r"),
	        JOB("queued", "queued", "1.0", "2", "[]", "o/r"),
	        JOB("queued", "queued", "1e3", "2", "[]", "o/r"),
	        JOB("queued", "queued", "0", "2", "[]", "o/r"),
	        JOB("queued", "queued", "-5", "2", "[]", "o/r"),
	        JOB("queued", "queued", "99999999999999999999", "2", "[]", "o/r"),
	        JOB("queued", "queued", "1", "null", "[]", "o/r"),
	        JOB("queued", "queued", "1", "2", "null", "o/r"),
	        JOB("queued", "queued", "1", "2", "[1]", "o/r"),
	        JOB("queued", "queued", "1", "2", "[\"\"]", "o/r"),
	        JOB("queued", "queued", "1", "2", "[\"a\\u0000b\"]", "o/r"),
	        JOB("queued", "queued", "1", "2", "[]", "norepo"),
	        JOB("queued", "queued", "1", "2", "[]", ""),
	        "{\"action\":\"queued\",\"workflow_job\":{\"id\":1,\"run_id\":2,\"labels\":[]}}",
	};
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(bad_jobs); i++) {
		struct webhook_headers h = {.event = "workflow_job", .delivery = "d1"};
		struct err e = {0};
		int r = webhook_parse(&h, bad_jobs[i], strlen(bad_jobs[i]), &d, &e);
		if (r != -EINVAL)
			fail_msg("case %zu: %d", i, r);
		/* the message says where, never what the body holds */
		assert_null(strstr(e.msg, "not json"));
		assert_null(strstr(e.msg, "\"o/r\""));
		assert_int_equal(webhook_http_status(r), 400);
		assert_string_equal(d.id, "untouched");
	}
	/* headers */
	assert_int_equal(parse(NULL, "d1", NULL, good, &d), -EINVAL);
	assert_int_equal(parse("workflow_job", NULL, NULL, good, &d), -EINVAL);
	assert_int_equal(parse("workflow_job", "", NULL, good, &d), -EINVAL);
	assert_int_equal(parse("workflow job", "d1", NULL, good, &d), -EINVAL);
	assert_int_equal(parse("workflow_job", "d1\r\nX: y", NULL, good, &d), -EINVAL);
	char longid[WEBHOOK_DELIVERY_MAX + 1];
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	assert_int_equal(parse("workflow_job", longid, NULL, good, &d), -EINVAL);
	/* a hook set to form encoding */
	int r = parse("workflow_job", "d1", "application/x-www-form-urlencoded", "payload=%7B%7D",
	              &d);
	assert_int_equal(r, -EPROTONOSUPPORT);
	assert_int_equal(webhook_http_status(r), 415);
	/* too many labels */
	struct buf many = BUF_INIT(4096);
	buf_puts(&many,
	         "{\"action\":\"queued\",\"workflow_job\":{\"id\":1,\"run_id\":2,\"labels\":[");
	for (int i = 0; i <= WEBHOOK_LABELS_MAX; i++)
		buf_puts(&many, i ? ",\"x\"" : "\"x\"");
	buf_puts(&many, "]},\"repository\":{\"full_name\":\"o/r\"}}");
	assert_int_equal(parse("workflow_job", "d1", NULL, buf_str(&many), &d), -EINVAL);
	buf_release(&many);
	assert_string_equal(d.id, "untouched");
}

static const char *const CONFIG = "github:\n"
                                  "  path: Octo/Hello\n"
                                  "  token_env: RUNNERD_TEST_TOKEN\n"
                                  "manager:\n"
                                  "  name: ci\n"
                                  "flavors:\n"
                                  "  - name: small\n"
                                  "    provider: local\n"
                                  "    labels: [small]\n"
                                  "    max: 2\n"
                                  "  - name: large\n"
                                  "    provider: local\n"
                                  "    labels: [large, gpu]\n"
                                  "    max: 2\n"
                                  "  - name: arm\n"
                                  "    provider: local\n"
                                  "    arch: arm64\n"
                                  "    labels: [small]\n"
                                  "    max: 2\n";

static struct config *load(const char *text)
{
	struct config_errors errs = {0};
	struct config *c = NULL;

	setenv("RUNNERD_TEST_TOKEN", "ghp_test", 1);
	if (config_load_string("t.yaml", text, strlen(text), &c, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			print_error("%s\n", errs.v[i]);
		fail();
	}
	config_errors_release(&errs);
	return c;
}

/* The flavor the labels (comma-separated) route to, or "-" for none. */
static const char *route(const struct config *c, const char *csv)
{
	struct strv l = {0};
	char buf[256], *save = NULL;
	size_t i = 0;
	int r;

	str_copy(buf, csv, sizeof(buf));
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		assert_int_equal(strv_push(&l, t), 0);
	r = webhook_route(c, &l, &i);
	strv_release(&l);
	return r == 0 ? c->flavors[i].name : "-";
}

static void test_route(void **state)
{
	struct config *c = load(CONFIG);
	(void)state;

	assert_string_equal(route(c, "small"), "small");
	assert_string_equal(route(c, "self-hosted,small"), "small");
	assert_string_equal(route(c, "SELF-HOSTED,Linux,X64,SMALL"), "small");
	/* the first flavor in config order that holds every label */
	assert_string_equal(route(c, "self-hosted,linux,arm64,small"), "arm");
	assert_string_equal(route(c, "large"), "large");
	assert_string_equal(route(c, "gpu,large,self-hosted"), "large");
	/* implied labels alone: the first flavor */
	assert_string_equal(route(c, "self-hosted"), "small");
	assert_string_equal(route(c, "self-hosted,linux"), "small");
	/* none */
	assert_string_equal(route(c, "ubuntu-latest"), "-");
	assert_string_equal(route(c, "small,large"), "-");
	assert_string_equal(route(c, "self-hosted,windows,small"), "-");
	assert_string_equal(route(c, "arm64,large"), "-");
	assert_string_equal(route(c, ""), "-");

	assert_true(config_repo_in_scope(c, "octo/hello"));
	assert_true(config_repo_in_scope(c, "OCTO/HELLO"));
	assert_false(config_repo_in_scope(c, "octo/hello2"));
	assert_false(config_repo_in_scope(c, "octo/other"));
	assert_false(config_repo_in_scope(c, NULL));
	config_free(c);
}

static void test_route_org_scope(void **state)
{
	char text[2048];
	struct config *c;
	(void)state;

	str_copy(text, CONFIG, sizeof(text));
	memcpy(strstr(text, "Octo/Hello"), "octo      ", 10);
	c = load(text);
	assert_true(c->github.is_org);
	assert_true(config_repo_in_scope(c, "octo/hello"));
	assert_true(config_repo_in_scope(c, "Octo/any-repo"));
	assert_false(config_repo_in_scope(c, "octopus/hello"));
	assert_false(config_repo_in_scope(c, "octo/"));
	assert_false(config_repo_in_scope(c, "octo"));
	assert_false(config_repo_in_scope(c, "other/hello"));
	config_free(c);
}

/* A delivery shaped as GitHub sends one: nesting, escapes, UTF-8, numbers of each kind. */
static const char SAMPLE[] =
        "{\"action\":\"queued\",\"workflow_job\":{\"id\":9007199254740993,\"run_id\":42,"
        "\"name\":\"build \\\"x\\\" \\u00e9\\ud83d\\ude00 caf\xc3\xa9 \xe2\x82\xac "
        "\xf0\x9f\x98\x80\","
        "\"steps\":[{\"id\":1,\"n\":-0,\"r\":1.5e-3,\"ok\":true},{\"id\":2,\"x\":null,\"f\":false}]"
        ","
        "\"labels\":[\"self-hosted\",\"sm\\u0061ll\"],\"status\":\"queued\",\"t\":\"a\\/b\\n\\t\"},"
        "\"repository\":{\"id\":7,\"full_name\":\"octo/hello\",\"owner\":{\"login\":\"octo\","
        "\"e\":{}},\"topics\":[],\"size\":0.0,\"w\":2E+2},\"sender\":{\"id\":-9223372036854775808}"
        "}";

static void expect_same(const char *event, const char *body, size_t len)
{
	struct webhook_headers h = {.event = event, .delivery = "d1", .content_type = NULL};
	char why[512];

	if (webhook_parse_compare(&h, body, len, why, sizeof(why)) < 0)
		fail_msg("%s on %.*s", why, (int)(len < 200 ? len : 200), body);
}

static void same(const char *body)
{
	expect_same("workflow_job", body, strlen(body));
	expect_same("ping", body, strlen(body));
}

/* {"a": and depth arrays around inner: an object at the top, or either parse refuses it */
static char *nested(int depth, const char *inner)
{
	size_t n = strlen(inner);
	char *b = malloc(2 * (size_t)depth + n + 7);

	assert_non_null(b);
	memcpy(b, "{\"a\":", 5);
	memset(b + 5, '[', (size_t)depth);
	memcpy(b + 5 + depth, inner, n);
	memset(b + 5 + depth + n, ']', (size_t)depth);
	memcpy(b + 5 + 2 * depth + n, "}", 2);
	return b;
}

/*
 * The one-pass scan accepts exactly what the jansson tree it replaced
 * accepted (JSON_REJECT_DUPLICATES) and reads the same job out of it:
 * the hard corners by hand, then 30,000 byte-level mutations of a
 * realistic delivery (a fixed seed: the same run every time).
 */
static void test_scan_matches_jansson(void **state)
{
	static const char *const bodies[] = {
	        SAMPLE,
	        /* duplicate keys, also spelled differently, at any depth */
	        "{\"a\":1,\"a\":2}",
	        "{\"a\":1,\"\\u0061\":2}",
	        "{\"x\":{\"b\":1,\"b\":1}}",
	        "{\"x\":[{\"b\":1},{\"b\":1}]}",
	        "{\"\":1,\"\":2}",
	        "{\"a\\u00e9\":1,\"a\xc3\xa9\":2}",
	        "{\"action\":\"queued\",\"action\":\"completed\"}",
	        /* strings */
	        "{\"a\":\"\\u0000\"}",
	        "{\"a\":\"\\ud800\"}",
	        "{\"a\":\"\\udc00\"}",
	        "{\"a\":\"\\ud800\\u0041\"}",
	        "{\"a\":\"\\ud800\\udbff\"}",
	        "{\"a\":\"\\uD83D\\uDE00\"}",
	        "{\"a\":\"\\x\"}",
	        "{\"a\":\"\\u12\"}",
	        "{\"a\":\"\\u12G4\"}",
	        "{\"a\":\"\x01\"}",
	        "{\"a\":\"\x7f\"}",
	        "{\"a\":\"\xc0\x80\"}",
	        "{\"a\":\"\xc2\"}",
	        "{\"a\":\"\xe0\x80\x80\"}",
	        "{\"a\":\"\xed\xa0\x80\"}",
	        "{\"a\":\"\xf4\x90\x80\x80\"}",
	        "{\"a\":\"\xf5\x80\x80\x80\"}",
	        "{\"a\":\"\xef\xbf\xbf\"}",
	        "{\"a\":\"\xf0\x90\x80\x80\"}",
	        "{\"a\":\"unterminated}",
	        "{\"\xff\":1}",
	        "{\"a\":1}\xc3\xa9",
	        /* numbers */
	        "{\"a\":01}",
	        "{\"a\":-}",
	        "{\"a\":-01}",
	        "{\"a\":1.}",
	        "{\"a\":.5}",
	        "{\"a\":1e}",
	        "{\"a\":1e+}",
	        "{\"a\":+1}",
	        "{\"a\":9223372036854775807}",
	        "{\"a\":9223372036854775808}",
	        "{\"a\":-9223372036854775808}",
	        "{\"a\":-9223372036854775809}",
	        "{\"a\":99999999999999999999999}",
	        "{\"a\":1e308}",
	        "{\"a\":1e309}",
	        "{\"a\":-1e400}",
	        "{\"a\":1e-400}",
	        "{\"a\":123456789012345678901234567890123456789012345678901234567890123456789."
	        "5e300}",
	        "{\"a\":0x1}",
	        "{\"a\":Infinity}",
	        "{\"a\":NaN}",
	        /* literals, structure, the top */
	        "{\"a\":tru}",
	        "{\"a\":truex}",
	        "{\"a\":nul}",
	        "{\"a\":true1}",
	        "{\"a\":1,}",
	        "{,}",
	        "{\"a\" 1}",
	        "{\"a\":1 \"b\":2}",
	        "[1,2,]",
	        "[,]",
	        "[]",
	        "{}",
	        " \t\r\n{} \n",
	        "{} x",
	        "{}{}",
	        "",
	        "   ",
	        "1",
	        "\"s\"",
	        "null",
	        "{1:2}",
	        "{\"a\":[1,{\"b\":[]}]}",
	        "{\"a\":1}\0",
	        "\0{}",
	        "{\"a\":\"b\"\0}",
	        /* the job's fields */
	        "{\"action\":1,\"workflow_job\":{},\"repository\":{}}",
	        "{\"action\":\"queued\",\"workflow_job\":[]}",
	        "{\"action\":\"queued\",\"workflow_job\":{\"id\":1.0,\"run_id\":2,\"labels\":[]},"
	        "\"repository\":{\"full_name\":\"o/r\"}}",
	        "{\"action\":\"queued\",\"workflow_job\":{\"id\":1,\"run_id\":2,\"labels\":[]},"
	        "\"repository\":{\"full_name\":\"o\\/r\"}}",
	        "{\"action\":\"queu\\u0065d\",\"workflow_job\":{\"id\":1,\"run_id\":2,\"labels\":"
	        "[\"a\",\"\\u00e9\"]},\"repository\":{\"full_name\":\"o/r\"}}",
	        "{\"action\":\"queued\",\"workflow_job\":{\"id\":1,\"run_id\":2,\"labels\":"
	        "[\"\\b\\f\\r\\n\\t\\/\\\\\\\"\\u0041\"]},\"repository\":{\"full_name\":\"o/r\"}}",
	        "{\"action\":\"queued\",\"workflow_job\":{\"id\":1,\"run_id\":2,\"labels\":[\"a\","
	        "1]},"
	        "\"repository\":{\"full_name\":\"o/r\"}}",
	        "{\"action\":\"queued\",\"workflow_job\":{\"id\":1,\"run_id\":2,\"labels\":[\"\"]},"
	        "\"repository\":{\"full_name\":\"o/r\"}}",
	        "{\"action\":\"queued\",\"workflow_job\":{\"id\":1,\"run_id\":0,\"labels\":[]},"
	        "\"repository\":{\"full_name\":\"o/r\"}}",
	        "{\"action\":\"queued\",\"workflow_job\":{\"id\":1,\"run_id\":2,\"labels\":[]},"
	        "\"repository\":[{\"full_name\":\"o/r\"}]}",
	        "{\"action\":\"queued\",\"workflow_job\":{\"id\":1,\"run_id\":2,\"labels\":[],"
	        "\"x\":{\"id\":-1}},\"repository\":{\"full_name\":\"o/"
	        "r\",\"o\":{\"full_name\":1}}}",
	        "{\"action\":\"queued_and_then_a_very_long_tail_of_text\",\"workflow_job\":{\"id\":"
	        "1,"
	        "\"run_id\":2,\"labels\":[]},\"repository\":{\"full_name\":\"o/r\"}}",
	};
	char big[800];
	char *b;
	uint32_t seed = 12345;
	size_t n = sizeof(SAMPLE) - 1;
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(bodies); i++)
		same(bodies[i]);
	expect_same("workflow_job", "{\"a\":1}\0", 9);
	/* the one difference: jansson skips a NUL right after a number or literal; the scan refuses
	 * it */
	{
		struct webhook_headers h = {.event = "ping", .delivery = "d1"};
		struct webhook_delivery d;
		struct err e = {0};

		assert_int_equal(webhook_parse(&h, "{\"a\":1\0}", 8, &d, &e), -EINVAL);
		assert_int_equal(webhook_parse(&h, "{\"a\":true\0}", 11, &d, &e), -EINVAL);
		assert_int_equal(webhook_parse_reference(&h, "{\"a\":1\0}", 8, &d, &e), 0);
		webhook_delivery_release(&d);
		expect_same("workflow_job", "{\"a\":1\0}", 8);
	}
	expect_same("workflow_job", "{\"a\":\"b\0\"}", 10);
	/* labels and full_name at and past their bounds */
	for (int len = 254; len <= 257; len++) {
		int k = snprintf(
		        big, sizeof(big),
		        "{\"action\":\"queued\",\"workflow_job\":{\"id\":1,\"run_id\":2,"
		        "\"labels\":[\"%0*d\"]},\"repository\":{\"full_name\":\"o/%0*d\"}}",
		        len, 0, len - 2, 0);
		assert_true(k > 0 && (size_t)k < sizeof(big));
		same(big);
	}
	/* jansson's depth: 2048 levels (the object one of them), a scalar counting as one */
	for (int depth = 2045; depth <= 2049; depth++) {
		b = nested(depth, "1");
		same(b);
		free(b);
		b = nested(depth, "");
		same(b);
		free(b);
	}
	/* every prefix, in a buffer of its own size (ASan sees a read past it) */
	for (size_t len = 0; len < n; len++) {
		b = malloc(len ? len : 1);
		assert_non_null(b);
		memcpy(b, SAMPLE, len);
		expect_same("workflow_job", b, len);
		free(b);
	}
	/* mutations: a byte changed, deleted, or one of the JSON's own bytes put in */
	b = malloc(n + 8);
	assert_non_null(b);
	for (int round = 0; round < 30000; round++) {
		static const char special[] = "{}[]\",:\\u0123456789eE.-+ \x80\xc3\xed\xf0tfn";
		size_t len = n, k;

		memcpy(b, SAMPLE, n);
		for (int edits = 1 + round % 3; edits > 0; edits--) {
			seed = seed * 1103515245u + 12345u;
			k = (seed >> 8) % len;
			switch ((seed >> 4) % 3) {
			case 0:
				b[k] = special[(seed >> 16) % (sizeof(special) - 1)];
				break;
			case 1:
				memmove(b + k, b + k + 1, len - k - 1);
				len--;
				break;
			default:
				b[k] = (char)(seed >> 20);
				break;
			}
		}
		expect_same("workflow_job", b, len);
	}
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_verify_github_vector),
	        cmocka_unit_test(test_verify_refuses),
	        cmocka_unit_test(test_parse_job),
	        cmocka_unit_test(test_parse_ping_and_others),
	        cmocka_unit_test(test_parse_refuses),
	        cmocka_unit_test(test_scan_matches_jansson),
	        cmocka_unit_test(test_route),
	        cmocka_unit_test(test_route_org_scope),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
