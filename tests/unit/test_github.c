/*
 * Unit tests of src/github without GitHub: Link headers, JSON shapes (good,
 * malformed, unexpected), the App JWT (its signature checked with OpenSSL),
 * backoff bounds, rate-limit bookkeeping, and, against a one-thread HTTP
 * server on 127.0.0.1, the headers we send and the runner tarball verifier.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "github/github_internal.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

static struct buf mkbuf(const char *s)
{
	struct buf b = BUF_INIT(1 << 20);
	assert_int_equal(buf_puts(&b, s), 0);
	return b;
}

/* A body as github_call_json hands it to the parsers: parsed. */
static json_t *mkjson(const char *s)
{
	json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(j);
	return j;
}

/* ---- Link ---- */

static void test_link_next(void **state)
{
	char out[256];

	assert_int_equal(github_link_next("<https://api.github.com/r?page=2>; rel=\"next\", "
	                                  "<https://api.github.com/r?page=5>; rel=\"last\"",
	                                  out, sizeof(out)),
	                 0);
	assert_string_equal(out, "https://api.github.com/r?page=2");
	/* order does not matter, and rel may hold several words */
	assert_int_equal(github_link_next("<https://h/x?page=1>; rel=\"prev first\", "
	                                  "<https://h/x?page=3>; rel=\"next\"",
	                                  out, sizeof(out)),
	                 0);
	assert_string_equal(out, "https://h/x?page=3");
	assert_int_equal(
	        github_link_next("<https://h/x?a=1,2&page=3>; rel=\"last next\"", out, sizeof(out)),
	        0);
	assert_string_equal(out, "https://h/x?a=1,2&page=3");
	assert_int_equal(github_link_next("<https://h/x?page=4>;rel=next", out, sizeof(out)), 0);
	assert_string_equal(out, "https://h/x?page=4");
	assert_int_equal(github_link_next("<https://h/x?page=4>; title=\"a, b\"; rel=\"next\"", out,
	                                  sizeof(out)),
	                 0);
	assert_string_equal(out, "https://h/x?page=4");
	/* the last page: no next */
	assert_int_equal(github_link_next("<https://h/x?page=1>; rel=\"first\", "
	                                  "<https://h/x?page=4>; rel=\"prev\"",
	                                  out, sizeof(out)),
	                 0);
	assert_string_equal(out, "");
	assert_int_equal(
	        github_link_next("<https://h/x?page=9>; rel=\"nextpage\"", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(github_link_next(NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(github_link_next("", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	/* malformed */
	assert_int_equal(github_link_next("https://h/x; rel=\"next\"", out, sizeof(out)), -EPROTO);
	assert_int_equal(github_link_next("<https://h/x; rel=\"next\"", out, sizeof(out)), -EPROTO);
	assert_int_equal(github_link_next("<https://h/x>; rel=\"next", out, sizeof(out)), -EPROTO);
	/* too long for the caller's buffer */
	assert_int_equal(github_link_next("<https://h/xxxxxxxx>; rel=\"next\"", out, 10), -E2BIG);
}

/* ---- JSON shapes ---- */

static const char page1[] =
        "{\"total_count\": 3, \"runners\": ["
        "{\"id\": 1, \"name\": \"ci-0123456789ab\", \"os\": \"linux\", \"status\": \"online\","
        " \"busy\": false, \"labels\": [{\"id\": 1, \"name\": \"self-hosted\", \"type\": "
        "\"read-only\"}, {\"id\": 2, \"name\": \"x64\"}]},"
        "{\"id\": 2, \"name\": \"ci-east-0123456789ab\", \"status\": \"offline\", \"busy\": true,"
        " \"labels\": []},"
        "{\"id\": 3000000000, \"name\": \"ci-aaaaaaaaaaaa\", \"status\": \"offline\", \"busy\": "
        "true,"
        " \"labels\": [{\"name\": \"gpu\"}]}]}";

static void test_json_runners_page(void **state)
{
	struct github_runner_list l = {0};
	json_t *root = mkjson(page1);
	struct err e = {0};
	int64_t total = -1;
	size_t seen = 0;

	assert_int_equal(github_json_runners_page("list", root, NULL, &l, &total, &seen, &e), 0);
	assert_int_equal(total, 3);
	assert_int_equal(seen, 3);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.v[0].id, 1);
	assert_string_equal(l.v[0].name, "ci-0123456789ab");
	assert_int_equal(l.v[0].status, GITHUB_RUNNER_ONLINE);
	assert_false(l.v[0].busy);
	assert_int_equal(l.v[0].n_labels, 2);
	assert_string_equal(l.v[0].labels[1], "x64");
	assert_int_equal(l.v[1].status, GITHUB_RUNNER_OFFLINE);
	assert_true(l.v[1].busy);
	assert_int_equal(l.v[1].n_labels, 0);
	assert_true(l.v[2].id == 3000000000LL);
	github_runner_list_release(&l);
	assert_null(l.v);

	/* only our runners: ci-east-... is not manager ci's */
	assert_int_equal(github_json_runners_page("list", root, "ci", &l, &total, &seen, &e), 0);
	assert_int_equal(seen, 3);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].id, 1);
	assert_int_equal(l.v[1].id, 3000000000LL);
	github_runner_list_release(&l);
	json_decref(root);
}

struct bad_case {
	const char *body;
	const char *expect; /* a substring of the message */
};

static void test_json_runners_malformed(void **state)
{
	static const struct bad_case cases[] = {
	        {"", "empty body"},
	        {"{\"total_count\": 1, \"runners\": [", "malformed JSON"},
	        {"[1,2]", "not a JSON object"},
	        {"{\"runners\": []}", "total_count is missing"},
	        {"{\"total_count\": \"3\", \"runners\": []}", "total_count is not an integer"},
	        {"{\"total_count\": 1}", "runners is missing"},
	        {"{\"total_count\": 1, \"runners\": {}}", "runners is not an array"},
	        {"{\"total_count\": 1, \"runners\": [7]}", "runners[0] is not an object"},
	        {"{\"total_count\": 1, \"runners\": [{\"id\": \"1\", \"name\": \"a\", \"status\": "
	         "\"online\", \"busy\": false, \"labels\": []}]}",
	         "runners[0].id is not an integer"},
	        {"{\"total_count\": 1, \"runners\": [{\"id\": 1, \"name\": \"a\", \"status\": "
	         "\"online\", \"busy\": \"no\", \"labels\": []}]}",
	         "runners[0].busy is not a boolean"},
	        {"{\"total_count\": 1, \"runners\": [{\"id\": 1, \"name\": \"a\", \"status\": "
	         "\"sleeping\", \"busy\": false, \"labels\": []}]}",
	         "runners[0].status is neither online nor offline"},
	        {"{\"total_count\": 1, \"runners\": [{\"id\": 1, \"name\": \"a\", \"status\": "
	         "\"online\", \"busy\": false, \"labels\": \"x64\"}]}",
	         "runners[0].labels is not an array"},
	        {"{\"total_count\": 1, \"runners\": [{\"id\": 1, \"name\": \"a\", \"status\": "
	         "\"online\", \"busy\": false, \"labels\": [{\"id\": 3}]}]}",
	         "runners[0].labels[0].name is missing"},
	        {"{\"total_count\": 1, \"runners\": [{\"id\": 1, \"name\": 5, \"status\": "
	         "\"online\", \"busy\": false, \"labels\": []}]}",
	         "runners[0].name is not a string"},
	        {"{\"total_count\": 1, \"total_count\": 2, \"runners\": []}", "malformed JSON"},
	};
	struct github_runner_list l = {0};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf b = BUF_INIT(1 << 20);
		struct err e = {0};
		int64_t total = 77;
		size_t seen = 77;
		json_t *root = NULL;
		int r;
		if (cases[i].body[0])
			assert_int_equal(buf_puts(&b, cases[i].body), 0);
		/* as github_call_json hands a body to the parser: loaded first */
		r = github_json_load("list runners", &b, &root, &e);
		if (r == 0)
			r = github_json_runners_page("list runners", root, NULL, &l, &total, &seen,
			                             &e);
		json_decref(root);
		assert_int_equal(r, -EPROTO);
		if (!strstr(e.msg, cases[i].expect) || !str_has_prefix(e.msg, "list runners: "))
			fail_msg("case %zu: message '%s' lacks '%s'", i, e.msg, cases[i].expect);
		assert_int_equal(l.n, 0); /* nothing half-appended */
		assert_int_equal(total, 77);
		buf_release(&b);
	}
	github_runner_list_release(&l);
}

static void test_json_page_failure_keeps_acc(void **state)
{
	struct github_runner_list l = {0};
	json_t *good = mkjson(page1);
	json_t *bad = mkjson("{\"total_count\": 2, \"runners\": [{\"id\": 9, \"name\": \"x\", "
	                     "\"status\": \"online\", \"busy\": false, \"labels\": []}, 3]}");
	int64_t total;
	size_t seen;

	assert_int_equal(github_json_runners_page("l", good, NULL, &l, &total, &seen, NULL), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(github_json_runners_page("l", bad, NULL, &l, &total, &seen, NULL),
	                 -EPROTO);
	assert_int_equal(l.n, 3); /* the good page is intact, the bad one left no trace */
	assert_int_equal(l.v[2].id, 3000000000LL);
	github_runner_list_release(&l);
	json_decref(good);
	json_decref(bad);
}

static void test_json_foreign_runner_skipped(void **state)
{
	/* A foreign runner with an odd shape does not break the list of manager ci. */
	json_t *root = mkjson("{\"total_count\": 2, \"runners\": ["
	                      "{\"id\": \"odd\", \"name\": \"someone-else\", \"status\": 3},"
	                      "{\"id\": 5, \"name\": \"ci-00000000000f\", \"status\": \"online\","
	                      " \"busy\": false, \"labels\": []}]}");
	struct github_runner_list l = {0};
	int64_t total;
	size_t seen;

	assert_int_equal(github_json_runners_page("l", root, "ci", &l, &total, &seen, NULL), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].id, 5);
	assert_int_equal(seen, 2);
	github_runner_list_release(&l);
	assert_int_equal(github_json_runners_page("l", root, NULL, &l, &total, &seen, NULL),
	                 -EPROTO);
	assert_int_equal(l.n, 0);
	github_runner_list_release(&l);
	json_decref(root);
}

static void test_json_token_and_jit(void **state)
{
	struct github_token t = {0};
	struct github_jit j = {0};
	struct err e = {0};
	json_t *root = mkjson("{\"token\": \"AABBCC\", \"expires_at\": \"2024-01-02T03:04:05Z\"}");

	assert_int_equal(github_json_token("t", root, &t, &e), 0);
	assert_string_equal(t.token, "AABBCC");
	assert_int_equal(t.expires_at, 1704164645);
	github_token_release(&t);
	assert_null(t.token);
	json_decref(root);

	root = mkjson("{\"token\": \"AABBCC\", \"expires_at\": \"tomorrow\"}");
	assert_int_equal(github_json_token("t", root, &t, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "expires_at is not an ISO 8601 time"));
	assert_null(t.token);
	json_decref(root);
	root = mkjson("{\"token\": 12, \"expires_at\": \"2024-01-02T03:04:05Z\"}");
	assert_int_equal(github_json_token("t", root, &t, &e), -EPROTO);
	json_decref(root);

	root = mkjson("{\"runner\": {\"id\": 42, \"name\": \"ci-0123456789ab\"}, "
	              "\"encoded_jit_config\": \"SECRETJIT\"}");
	assert_int_equal(github_json_jit("jit", root, &j, &e), 0);
	assert_int_equal(j.runner_id, 42);
	assert_string_equal(j.encoded_jit_config, "SECRETJIT");
	json_decref(root);
	/* a bad answer leaves the earlier result alone and never quotes the body */
	root = mkjson("{\"runner\": {\"id\": 43}, \"encoded_jit_config\": [\"SECRETJIT2\"]}");
	assert_int_equal(github_json_jit("jit", root, &j, &e), -EPROTO);
	assert_null(strstr(e.msg, "SECRETJIT"));
	assert_int_equal(j.runner_id, 42);
	json_decref(root);
	{
		/* malformed: github_call_json's load refuses it before any parser */
		struct buf b = mkbuf(
		        "{\"runner\": {\"id\": 43}, \"encoded_jit_config\": \"SECRETJIT2\"x}");
		json_t *bad = NULL;
		assert_int_equal(github_json_load("jit", &b, &bad, &e), -EPROTO);
		assert_null(bad);
		assert_null(strstr(e.msg, "SECRETJIT"));
		buf_release(&b);
	}
	root = mkjson("{\"runner\": 43, \"encoded_jit_config\": \"S\"}");
	assert_int_equal(github_json_jit("jit", root, &j, &e), -EPROTO);
	json_decref(root);
	github_jit_release(&j);
	assert_null(j.encoded_jit_config);
	github_jit_release(NULL);
}

/* ---- tokens of any length (GitHub's 2026 installation tokens) ---- */

/* 40 (classic), ~520 (GitHub's stateless format), a few KB, and the most we take. */
static const size_t token_lens[] = {40, 532, 4096, GITHUB_TOKEN_MAX};

/*
 * A token of len bytes: at 40, a classic installation token ("ghs_" and 36
 * letters and digits); longer, GitHub's stateless shape "ghs_<APP ID>_<JWT>",
 * base64url with two dots. salt makes tokens differ. Free it.
 */
static char *make_token(size_t len, unsigned salt)
{
	static const char b64[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *t = malloc(len + 1);
	bool classic = len == 40;

	assert_non_null(t);
	assert_true(len >= 40);
	memcpy(t, classic ? "ghs_" : "ghs_4242_eyJ", classic ? 4 : 12);
	for (size_t k = classic ? 4 : 12; k < len; k++)
		t[k] = b64[(k * 7 + salt) % (classic ? 62 : 64)];
	if (!classic) {
		t[len / 3] = '.';
		t[2 * len / 3] = '.';
	}
	t[len] = '\0';
	return t;
}

/* No trace of a token of make_token's: neither its start nor its end. */
static bool no_token_in(const char *s)
{
	return !strstr(s, "ghs_") && !strstr(s, "eyJ") && !strstr(s, "-_");
}

static void test_json_token_any_length(void **state)
{
	static const char *const bad[] = {"ghs_abc def", "ghs_abc\r\nX-Evil: 1",
	                                  "ghs_abc\t",   "ghs_caf\xc3\xa9",
	                                  "ghs_a\"b",    "ghs_a,b"};
	struct github_token t = {0};
	struct err e = {0};
	json_t *root;
	char *tok;

	for (size_t i = 0; i < ARRAY_SIZE(token_lens); i++) {
		tok = make_token(token_lens[i], (unsigned)i);
		root = json_pack("{s:s, s:s}", "token", tok, "expires_at", "2024-01-02T03:04:05Z");
		assert_non_null(root);
		assert_int_equal(github_json_token("t", root, &t, &e), 0);
		assert_int_equal(strlen(t.token), token_lens[i]);
		assert_string_equal(t.token, tok);
		json_decref(root);
		free(tok);
	}
	/* over GITHUB_TOKEN_MAX: refused, not cut; the earlier token stays; nothing quoted */
	tok = make_token(GITHUB_TOKEN_MAX + 1, 9);
	root = json_pack("{s:s, s:s}", "token", tok, "expires_at", "2024-01-02T03:04:05Z");
	assert_int_equal(github_json_token("t", root, &t, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "token is longer than 16384 bytes"));
	assert_true(no_token_in(e.msg));
	assert_int_equal(strlen(t.token), GITHUB_TOKEN_MAX);
	json_decref(root);
	free(tok);
	github_token_release(&t);
	/* what would end or add a header line, or is not a bearer token's character */
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		root = json_pack("{s:s, s:s}", "token", bad[i], "expires_at",
		                 "2024-01-02T03:04:05Z");
		assert_non_null(root);
		assert_int_equal(github_json_token("t", root, &t, &e), -EPROTO);
		assert_non_null(strstr(e.msg, "token holds a character a bearer token cannot"));
		assert_null(strstr(e.msg, "ghs_"));
		assert_null(t.token);
		json_decref(root);
	}
}

static void test_json_apps(void **state)
{
	struct github_app_list l = {0};
	struct err e = {0};
	json_t *root = mkjson(
	        "[{\"os\": \"osx\", \"architecture\": \"x64\", \"download_url\": \"https://x/a\","
	        " \"filename\": \"a.tar.gz\"},"
	        "{\"os\": \"linux\", \"architecture\": \"arm64\", \"download_url\": "
	        "\"https://x/b\","
	        " \"filename\": \"b.tar.gz\", \"sha256_checksum\": "
	        "\"ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789\"}]");

	assert_int_equal(github_json_apps("apps", root, &l, &e), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].sha256, "");
	assert_string_equal(l.v[1].os, "linux");
	assert_string_equal(l.v[1].architecture, "arm64");
	assert_string_equal(l.v[1].sha256,
	                    "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	json_decref(root);
	root = mkjson("[{\"os\": \"linux\", \"architecture\": \"x64\", \"download_url\": \"u\","
	              " \"filename\": \"f\", \"sha256_checksum\": \"xyz\"}]");
	assert_int_equal(github_json_apps("apps", root, &l, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "[0].sha256_checksum is not 64 hex digits"));
	assert_int_equal(l.n, 2); /* untouched */
	json_decref(root);
	root = mkjson("{\"apps\": []}");
	assert_int_equal(github_json_apps("apps", root, &l, &e), -EPROTO);
	json_decref(root);
	github_app_list_release(&l);
}

static void test_json_groups(void **state)
{
	json_t *root = mkjson("{\"total_count\": 2, \"runner_groups\": [{\"id\": 1, \"name\": "
	                      "\"Default\"}, {\"id\": 7, \"name\": \"gpu\"}]}");
	int64_t id = -1;

	assert_int_equal(github_json_group_page("g", root, "default", &id, NULL), 0);
	assert_int_equal(id, 1);
	assert_int_equal(github_json_group_page("g", root, "GPU", &id, NULL), 0);
	assert_int_equal(id, 7);
	assert_int_equal(github_json_group_page("g", root, "none", &id, NULL), 0);
	assert_int_equal(id, 0);
	json_decref(root);
	root = mkjson("{\"runner_groups\": [{\"id\": \"1\", \"name\": \"Default\"}]}");
	assert_int_equal(github_json_group_page("g", root, "default", &id, NULL), -EPROTO);
	json_decref(root);
}

static void test_json_deliveries(void **state)
{
	struct github_hook_delivery_list l = {0};
	struct err e = {0};
	json_t *root =
	        mkjson("[{\"id\": 31000000002, \"guid\": \"0b989ba4-242f-11e5-81e1-c7b6966d2516\","
	               " \"delivered_at\": \"2024-01-02T03:04:05Z\", \"redelivery\": true, "
	               "\"duration\": 0.27,"
	               " \"status\": \"failed to connect to host\", \"status_code\": 0, \"event\": "
	               "\"workflow_job\","
	               " \"action\": \"queued\", \"installation_id\": null, \"repository_id\": 7,"
	               " \"throttled_at\": null},"
	               " {\"id\": 31000000001, \"guid\": \"g2\", \"delivered_at\": \"x\", "
	               "\"redelivery\": false,"
	               " \"duration\": 1, \"status\": \"Invalid HTTP Response: 503\", "
	               "\"status_code\": 503,"
	               " \"event\": \"push\", \"action\": null, \"installation_id\": 1, "
	               "\"repository_id\": 7}]");
	(void)state;

	assert_int_equal(github_json_deliveries("d", root, &l, &e), 0);
	assert_int_equal(l.n, 2);
	assert_true(l.v[0].id == 31000000002LL);
	assert_string_equal(l.v[0].guid, "0b989ba4-242f-11e5-81e1-c7b6966d2516");
	assert_string_equal(l.v[0].event, "workflow_job");
	assert_string_equal(l.v[0].action, "queued");
	assert_true(l.v[0].redelivery);
	assert_int_equal(l.v[0].status_code, 0);
	assert_int_equal(l.v[0].delivered_at, 1704164645);
	assert_string_equal(l.v[1].action, "");
	assert_int_equal(l.v[1].status_code, 503);
	assert_int_equal(l.v[1].delivered_at, 0); /* unreadable: 0, not an error */
	json_decref(root);
	/* a field of the wrong type, not a list: -EPROTO, the list untouched */
	root = mkjson("[{\"id\": \"1\", \"guid\": \"g\", \"event\": \"e\", \"status_code\": 0,"
	              " \"redelivery\": false}]");
	assert_int_equal(github_json_deliveries("d", root, &l, &e), -EPROTO);
	assert_int_equal(l.n, 2);
	json_decref(root);
	root = mkjson("{\"message\": \"Not Found\"}");
	assert_int_equal(github_json_deliveries("d", root, &l, &e), -EPROTO);
	json_decref(root);
	github_hook_delivery_list_release(&l);
}

static void test_json_jobs(void **state)
{
	struct github_job j = {0};
	struct github_job_list l = {0};
	struct err e = {0};
	json_t *root = mkjson(
	        "{\"id\": 21474836470, \"run_id\": 5, \"status\": \"queued\", \"conclusion\": null,"
	        " \"name\": \"build\", \"labels\": [\"self-hosted\", \"gpu\"], \"runner_id\": null,"
	        " \"runner_name\": null, \"created_at\": \"2024-01-02T03:04:05Z\","
	        " \"started_at\": \"2024-01-02T03:05:05.123+01:00\", \"completed_at\": null}");

	assert_int_equal(github_json_job("job", root, &j, &e), 0);
	assert_true(j.id == 21474836470LL);
	assert_string_equal(j.status, "queued");
	assert_string_equal(j.conclusion, "");
	assert_int_equal(j.runner_id, 0);
	assert_int_equal(j.n_labels, 2);
	assert_string_equal(j.labels[1], "gpu");
	assert_int_equal(j.created_at, 1704164645);
	assert_int_equal(j.started_at, 1704164645 + 60 - 3600);
	assert_int_equal(j.completed_at, 0);
	json_decref(root);
	root = mkjson("{\"id\": 1, \"run_id\": 5, \"status\": \"queued\", \"name\": \"b\","
	              " \"labels\": [{\"name\": \"x\"}]}");
	assert_int_equal(github_json_job("job", root, &j, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "labels[0] is not a non-empty string"));
	assert_true(j.id == 21474836470LL); /* untouched */
	github_job_release(&j);
	json_decref(root);

	root = mkjson(
	        "{\"total_count\": 2, \"jobs\": [{\"id\": 1, \"run_id\": 5, \"status\": "
	        "\"completed\", \"conclusion\": \"success\", \"name\": \"a\", \"labels\": [],"
	        " \"runner_id\": 9, \"runner_name\": \"ci-0123456789ab\"}, {\"id\": 2, \"run_id\":"
	        " 5, \"status\": \"in_progress\", \"name\": \"b\", \"labels\": [\"x\"]}]}");
	assert_int_equal(github_json_jobs_page("jobs", root, &l, &e), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].runner_id, 9);
	assert_string_equal(l.v[0].runner_name, "ci-0123456789ab");
	assert_string_equal(l.v[0].conclusion, "success");
	json_decref(root);
	root = mkjson("{\"total_count\": 1, \"jobs\": [{\"id\": 3}]}");
	assert_int_equal(github_json_jobs_page("jobs", root, &l, &e), -EPROTO);
	assert_int_equal(l.n, 2);
	json_decref(root);
	github_job_list_release(&l);
}

static void test_json_error_message(void **state)
{
	struct buf b = mkbuf("{\"message\": \"Bad\\ncredentials\\u0001\", \"documentation_url\": "
	                     "\"x\"}");
	char msg[64];

	github_json_error_message(&b, msg, sizeof(msg));
	assert_string_equal(msg, "Bad?credentials?");
	buf_release(&b);
	b = mkbuf("<html>oops</html>");
	github_json_error_message(&b, msg, sizeof(msg));
	assert_string_equal(msg, "");
	buf_release(&b);
	b = mkbuf("{\"message\": \"0123456789abcdef\"}");
	github_json_error_message(&b, msg, 8);
	assert_string_equal(msg, "0123456");
	buf_release(&b);
}

/* ---- JWT ---- */

static size_t b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
	size_t o = 0, bits = 0;
	uint32_t acc = 0;
	for (size_t i = 0; i < n; i++) {
		const char *tab =
		        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		const char *p = strchr(tab, s[i]);
		assert_non_null(p); /* url alphabet only, no padding */
		acc = (acc << 6) | (uint32_t)(p - tab);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			assert_true(o < cap);
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return o;
}

static char *pem_of(EVP_PKEY *k)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p, *s;
	long n;

	assert_int_equal(PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(bio, &p);
	s = strndup(p, (size_t)n);
	BIO_free(bio);
	return s;
}

static void test_jwt(void **state)
{
	EVP_PKEY *gen = EVP_RSA_gen(2048), *key = NULL, *ec;
	char *pem = pem_of(gen), *jwt = NULL, *dot1, *dot2;
	unsigned char dec[1024];
	json_t *j;
	size_t n;
	EVP_MD_CTX *ctx;
	struct err e = {0};

	assert_int_equal(github_auth_load_key(pem, &key, &e), 0);
	assert_int_equal(github_auth_jwt(key, 12345, 1700000000, &jwt, &e), 0);
	dot1 = strchr(jwt, '.');
	assert_non_null(dot1);
	dot2 = strchr(dot1 + 1, '.');
	assert_non_null(dot2);
	assert_null(strchr(dot2 + 1, '.'));

	n = b64url_decode(jwt, (size_t)(dot1 - jwt), dec, sizeof(dec));
	j = json_loadb((char *)dec, n, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "alg")), "RS256");
	assert_string_equal(json_string_value(json_object_get(j, "typ")), "JWT");
	json_decref(j);
	n = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), dec, sizeof(dec));
	j = json_loadb((char *)dec, n, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "iat")), 1700000000 - 60);
	assert_int_equal(json_integer_value(json_object_get(j, "exp")), 1700000000 + 540);
	assert_int_equal(json_integer_value(json_object_get(j, "iss")), 12345);
	json_decref(j);

	/* The signature verifies with the public half over "header.payload"... */
	n = b64url_decode(dot2 + 1, strlen(dot2 + 1), dec, sizeof(dec));
	assert_int_equal(n, 256);
	ctx = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, gen), 1);
	assert_int_equal(EVP_DigestVerify(ctx, dec, n, (unsigned char *)jwt, (size_t)(dot2 - jwt)),
	                 1);
	EVP_MD_CTX_free(ctx);
	/* ...and not over anything else. */
	ctx = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, gen), 1);
	jwt[1] ^= 1;
	assert_int_not_equal(
	        EVP_DigestVerify(ctx, dec, n, (unsigned char *)jwt, (size_t)(dot2 - jwt)), 1);
	EVP_MD_CTX_free(ctx);
	free(jwt);
	free(pem);

	/* keys we cannot use */
	EVP_PKEY *k2 = NULL;
	assert_int_equal(github_auth_load_key("not a key", &k2, &e), -EINVAL);
	assert_int_equal(github_auth_load_key("", &k2, &e), -EINVAL);
	assert_int_equal(github_auth_load_key(NULL, &k2, &e), -EINVAL);
	ec = EVP_EC_gen("P-256");
	pem = pem_of(ec);
	assert_int_equal(github_auth_load_key(pem, &k2, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "not an RSA key"));
	assert_null(k2);
	free(pem);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(key);
	EVP_PKEY_free(gen);
}

/* ---- backoff and rate limits ---- */

static void test_backoff_bounds(void **state)
{
	struct github_opts o;
	static const uint32_t rnds[] = {0, 1, 250, 12345, 0x7fffffff, 0xffffffff};

	github_opts_default(&o);
	for (int a = 0; a < 40; a++) {
		long d = 500;
		for (int i = 0; i < a && d < 4000; i++)
			d *= 2;
		if (d > 4000)
			d = 4000;
		for (size_t k = 0; k < ARRAY_SIZE(rnds); k++) {
			long v = github_backoff_ms(&o, a, rnds[k]);
			if (v < d / 2 || v > d)
				fail_msg("attempt %d rnd %u: %ld outside [%ld, %ld]", a, rnds[k], v,
				         d / 2, d);
		}
	}
	assert_int_equal(github_backoff_ms(&o, 0, 0), 250);
	assert_int_equal(github_backoff_ms(&o, 0, 250), 500);
	assert_int_equal(github_backoff_ms(&o, 30, 0xffffffff) <= 4000, 1);
	o.backoff_base_ms = 10;
	o.backoff_max_ms = 25;
	assert_true(github_backoff_ms(&o, 5, 999) <= 25);
	assert_true(github_backoff_ms(&o, 5, 999) >= 12);
	o.backoff_base_ms = 0; /* never zero or negative */
	assert_true(github_backoff_ms(&o, 0, 7) >= 1);
}

static void test_rate_limit(void **state)
{
	struct github_rate s = {.limit = -1, .remaining = -1};
	time_t now = 1700000000;

	/* an ordinary answer: numbers recorded, nothing barred */
	assert_false(github_rate_update(&s, 200, "5000", "4999", "1700003600", NULL, false, now));
	assert_int_equal(s.limit, 5000);
	assert_int_equal(s.remaining, 4999);
	assert_int_equal(s.reset, 1700003600);
	assert_int_equal(s.barred_until, 0);
	/* a 403 that is not about the rate limit (permissions) bars nothing */
	assert_false(github_rate_update(&s, 403, "5000", "4998", "1700003600", NULL, false, now));
	assert_int_equal(s.barred_until, 0);
	/* junk is ignored, the last good values stay */
	assert_false(github_rate_update(&s, 200, "lots", "-3", "soon", "x", false, now));
	assert_int_equal(s.limit, 5000);
	assert_int_equal(s.remaining, 4998);
	/* exhausted: barred until the reset */
	assert_true(github_rate_update(&s, 403, "5000", "0", "1700000030", NULL, false, now));
	assert_int_equal(s.barred_until, 1700000030);
	assert_int_equal(s.remaining, 0);

	/* Retry-After on a 429 */
	s = (struct github_rate){.limit = -1, .remaining = -1};
	assert_true(github_rate_update(&s, 429, NULL, NULL, NULL, "7", false, now));
	assert_int_equal(s.barred_until, now + 7);
	/* a shorter bar never shortens a longer one */
	assert_true(github_rate_update(&s, 403, NULL, NULL, NULL, "2", false, now));
	assert_int_equal(s.barred_until, now + 7);
	/* a bare 429: a minute */
	s = (struct github_rate){.limit = -1, .remaining = -1};
	assert_true(github_rate_update(&s, 429, NULL, NULL, NULL, NULL, false, now));
	assert_int_equal(s.barred_until, now + 60);
	/* the last unit spent on a success: barred until the reset, but the call succeeded */
	s = (struct github_rate){.limit = -1, .remaining = -1};
	assert_false(github_rate_update(&s, 200, "60", "0", "1700000100", NULL, false, now));
	assert_int_equal(s.barred_until, 1700000100);
	/* a reset in the past (clock skew) with remaining 0 on a 403: a minute, not forever */
	s = (struct github_rate){.limit = -1, .remaining = -1};
	assert_true(github_rate_update(&s, 403, "60", "0", "1600000000", NULL, false, now));
	assert_int_equal(s.barred_until, now + 60);
	/* a reset absurdly far away is capped */
	s = (struct github_rate){.limit = -1, .remaining = -1};
	assert_true(github_rate_update(&s, 403, "60", "0", "1800000000", NULL, false, now));
	assert_int_equal(s.barred_until, now + GITHUB_MAX_BAR);
	/* a secondary limit: a 403 that says so, without headers: a minute */
	s = (struct github_rate){.limit = -1, .remaining = -1};
	assert_true(github_rate_update(&s, 403, NULL, NULL, NULL, NULL, true, now));
	assert_int_equal(s.barred_until, now + 60);
	/* 5xx with Retry-After is not a rate-limit refusal */
	s = (struct github_rate){.limit = -1, .remaining = -1};
	assert_false(github_rate_update(&s, 503, NULL, NULL, NULL, "30", false, now));
	assert_int_equal(s.barred_until, 0);
}

static void test_resource_names(void **state)
{
	assert_true(github_resource_name_ok("core"));
	assert_true(github_resource_name_ok("actions_runner_registration"));
	assert_true(github_resource_name_ok("code_search"));
	assert_false(github_resource_name_ok(NULL));
	assert_false(github_resource_name_ok(""));
	assert_false(github_resource_name_ok("Core"));
	assert_false(github_resource_name_ok("core\r\nX-Evil: 1"));
	assert_false(github_resource_name_ok("a-b"));
	assert_false(github_resource_name_ok(
	        "a_name_far_longer_than_any_resource_github_has_ever_used"));
}

/* ---- a tiny HTTP server on 127.0.0.1 ---- */

struct mini {
	int fd;
	int port;
	pthread_t th;
	pthread_mutex_t mu;
	char last_request[32768]; /* room for a GITHUB_TOKEN_MAX token in a header */
	int requests;
	const char *status_line; /* "200 OK" */
	const char *extra_headers;
	const void *body;
	size_t body_len;
	/* A request whose first line holds alt_match gets this answer instead (mini_alt). */
	const char *alt_match;
	const char *alt_status;
	const void *alt_body;
	size_t alt_len;
	char alt_request[32768]; /* the last such request */
	bool stop;
	char unix_path[108]; /* "" = TCP on 127.0.0.1 */
};

static void *mini_main(void *arg)
{
	struct mini *m = arg;
	for (;;) {
		char req[32768], head[512], *eol;
		const char *status, *body;
		size_t n = 0, len;
		int c = accept(m->fd, NULL, NULL);
		if (c < 0)
			continue;
		pthread_mutex_lock(&m->mu);
		bool stop = m->stop;
		pthread_mutex_unlock(&m->mu);
		if (stop) {
			close(c);
			break;
		}
		while (n < sizeof(req) - 1) {
			ssize_t k = read(c, req + n, sizeof(req) - 1 - n);
			if (k <= 0)
				break;
			n += (size_t)k;
			req[n] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		req[n] = '\0';
		pthread_mutex_lock(&m->mu);
		m->requests++;
		eol = strstr(req, "\r\n");
		status = m->status_line;
		body = m->body;
		len = m->body_len;
		if (m->alt_match && eol &&
		    memmem(req, (size_t)(eol - req), m->alt_match, strlen(m->alt_match))) {
			memcpy(m->alt_request, req, n + 1);
			status = m->alt_status;
			body = m->alt_body;
			len = m->alt_len;
		} else {
			memcpy(m->last_request, req, n + 1);
		}
		int hn = snprintf(
		        head, sizeof(head),
		        "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
		        len, m->extra_headers ? m->extra_headers : "");
		if (write(c, head, (size_t)hn) < 0 || write(c, body, len) < 0) {
			/* the client went away: fine */
		}
		pthread_mutex_unlock(&m->mu);
		close(c);
	}
	return NULL;
}

static void mini_start_at(struct mini *m, const char *unix_path)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_un u = {.sun_family = AF_UNIX};
	socklen_t al = sizeof(a);

	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
	m->status_line = "200 OK";
	m->body = "";
	if (unix_path) {
		str_copy(m->unix_path, unix_path, sizeof(m->unix_path));
		str_copy(u.sun_path, unix_path, sizeof(u.sun_path));
		m->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(m->fd >= 0);
		assert_int_equal(bind(m->fd, (struct sockaddr *)&u, sizeof(u)), 0);
	} else {
		m->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(m->fd >= 0);
		assert_int_equal(bind(m->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	}
	assert_int_equal(listen(m->fd, 16), 0);
	if (!unix_path) {
		assert_int_equal(getsockname(m->fd, (struct sockaddr *)&a, &al), 0);
		m->port = ntohs(a.sin_port);
	}
	assert_int_equal(pthread_create(&m->th, NULL, mini_main, m), 0);
}

static void mini_start(struct mini *m)
{
	mini_start_at(m, NULL);
}

static void mini_set(struct mini *m, const char *status, const char *hdrs, const void *body,
                     size_t len)
{
	pthread_mutex_lock(&m->mu);
	m->status_line = status;
	m->extra_headers = hdrs;
	m->body = body;
	m->body_len = len;
	pthread_mutex_unlock(&m->mu);
}

/* Requests whose first line holds match get this answer; the others mini_set's. */
static void mini_alt(struct mini *m, const char *match, const char *status, const void *body,
                     size_t len)
{
	pthread_mutex_lock(&m->mu);
	m->alt_match = match;
	m->alt_status = status;
	m->alt_body = body;
	m->alt_len = len;
	pthread_mutex_unlock(&m->mu);
}

static void mini_stop(struct mini *m)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	                        .sin_port = htons((uint16_t)m->port)};
	struct sockaddr_un u = {.sun_family = AF_UNIX};
	int c = socket(m->unix_path[0] ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	pthread_mutex_lock(&m->mu);
	m->stop = true;
	pthread_mutex_unlock(&m->mu);
	if (m->unix_path[0]) {
		str_copy(u.sun_path, m->unix_path, sizeof(u.sun_path));
		assert_int_equal(connect(c, (struct sockaddr *)&u, sizeof(u)), 0);
	} else {
		assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	}
	pthread_join(m->th, NULL);
	close(c);
	close(m->fd);
	if (m->unix_path[0])
		unlink(m->unix_path);
	pthread_mutex_destroy(&m->mu);
}

/* ---- httpc (util), first used here ---- */

static void test_httpc_unix_socket_headers_fd(void **state)
{
	static const char *const want[] = {"ETag", "X-Missing", NULL};
	static const char *const hdrs[] = {"X-Test: 1", NULL};
	char dir[] = "/tmp/test-httpc-XXXXXX", sock[128], file[160];
	struct httpc_response resp = {0};
	struct buf b = BUF_INIT(4096);
	struct err e = {0};
	struct mini m;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/s", dir);
	mini_start_at(&m, sock);
	mini_set(&m, "200 OK", "ETag: \"abc\"  \r\nEtag: \"last\"\r\n", "{\"ok\":1}", 8);
	/* a unix socket: the host in the URL is only a name */
	assert_int_equal(httpc_perform(NULL,
	                               &(struct httpc_request){.method = "PUT",
	                                                       .url = "http://lxd/1.0/x?secret=1",
	                                                       .unix_socket = sock,
	                                                       .headers = hdrs,
	                                                       .body = "{}",
	                                                       .body_len = 2,
	                                                       .max_body = 100,
	                                                       .want_headers = want},
	                               &resp, &e),
	                 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(buf_str(&resp.body), "{\"ok\":1}");
	assert_string_equal(httpc_response_header(&resp, "etag"), "\"last\"");
	assert_null(httpc_response_header(&resp, "X-Missing"));
	pthread_mutex_lock(&m.mu);
	assert_non_null(strstr(m.last_request, "PUT /1.0/x?secret=1 HTTP/1.1\r\n"));
	assert_non_null(strstr(m.last_request, "\r\nX-Test: 1\r\n"));
	assert_null(strstr(m.last_request, "Expect:"));
	pthread_mutex_unlock(&m.mu);

	/* over max_body: -E2BIG, *ret untouched, and no query string in the message */
	assert_int_equal(httpc_perform(NULL,
	                               &(struct httpc_request){.url = "http://lxd/big?secret=1",
	                                                       .unix_socket = sock,
	                                                       .max_body = 4},
	                               &resp, &e),
	                 -E2BIG);
	assert_int_equal(resp.status, 200);
	assert_string_equal(buf_str(&resp.body), "{\"ok\":1}");
	assert_non_null(strstr(e.msg, "http://lxd/big:"));
	assert_null(strstr(e.msg, "secret"));

	/* to_fd: a 2xx body goes to the file, bounded by max_download */
	snprintf(file, sizeof(file), "%s/f", dir);
	fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(httpc_perform(NULL,
	                               &(struct httpc_request){.url = "http://lxd/f",
	                                                       .unix_socket = sock,
	                                                       .max_body = 16,
	                                                       .to_fd = true,
	                                                       .fd = fd},
	                               &resp, &e),
	                 0);
	assert_int_equal(resp.downloaded, 8);
	assert_int_equal(resp.body.len, 0);
	assert_int_equal(file_read(file, 100, true, &b, NULL), 0);
	assert_string_equal(buf_str(&b), "{\"ok\":1}");
	assert_int_equal(httpc_perform(NULL,
	                               &(struct httpc_request){.url = "http://lxd/f",
	                                                       .unix_socket = sock,
	                                                       .max_body = 16,
	                                                       .to_fd = true,
	                                                       .fd = fd,
	                                                       .max_download = 5},
	                               &resp, &e),
	                 -E2BIG);
	assert_non_null(strstr(e.msg, "download larger than 5 bytes"));
	/* a non-2xx body stays in memory, the file is not written */
	mini_set(&m, "404 Not Found", "", "gone", 4);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(httpc_perform(NULL,
	                               &(struct httpc_request){.url = "http://lxd/f",
	                                                       .unix_socket = sock,
	                                                       .max_body = 16,
	                                                       .to_fd = true,
	                                                       .fd = fd},
	                               &resp, &e),
	                 0);
	assert_int_equal(resp.status, 404);
	assert_string_equal(buf_str(&resp.body), "gone");
	assert_int_equal(resp.downloaded, 0);
	assert_int_equal(lseek(fd, 0, SEEK_END), 0);
	close(fd);
	httpc_response_release(&resp);
	buf_release(&b);
	mini_stop(&m);

	/* nothing listening: the request never left */
	assert_int_equal(httpc_perform(NULL,
	                               &(struct httpc_request){.url = "http://lxd/",
	                                                       .unix_socket = sock,
	                                                       .max_body = 16},
	                               &resp, &e),
	                 -ECONNREFUSED);
	assert_int_equal(
	        httpc_perform(NULL, &(struct httpc_request){.url = "http://x/"}, &resp, &e),
	        -EINVAL); /* no max_body */
	assert_int_equal(rm_rf(dir, NULL), 0);
}

static char api_url[64], path_repo[] = "octo/hello", token[] = "ghp_SECRETTOKEN123", empty[] = "";

static void fill_config(struct config *cfg, int port)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(api_url, sizeof(api_url), "http://127.0.0.1:%d/", port);
	cfg->github.api_url = api_url;
	cfg->github.path = path_repo;
	cfg->github.token.value = token;
	cfg->github.ca_file = empty;
	cfg->github.proxy = empty;
	cfg->github.connect_timeout = 2;
	cfg->github.request_timeout = 3;
}

static void test_new_validation(void **state)
{
	struct config cfg;
	struct github *gh = (struct github *)0x1;
	struct err e = {0};
	char bad_path[] = "octo/../x", org[] = "my-org", bad_url[] = "ftp://x";

	fill_config(&cfg, 1);
	cfg.github.path = bad_path;
	assert_int_equal(github_new(&cfg, NULL, &gh, &e), -EINVAL);
	assert_ptr_equal(gh, (struct github *)0x1);
	cfg.github.path = org; /* an org name in repository scope */
	assert_int_equal(github_new(&cfg, NULL, &gh, &e), -EINVAL);
	cfg.github.is_org = true;
	assert_int_equal(github_new(&cfg, NULL, &gh, &e), 0);
	assert_string_equal(github_scope(gh), "orgs/my-org");
	char url[128];
	assert_int_equal(github_url(gh, url, sizeof(url), "test", NULL, "%s/x", github_scope(gh)),
	                 0);
	assert_string_equal(url, "http://127.0.0.1:1/orgs/my-org/x"); /* no double slash */
	assert_int_equal(github_url(gh, url, 20, "test", NULL, "%s/x", github_scope(gh)),
	                 -ENAMETOOLONG);
	github_free(gh);
	github_free(NULL);
	fill_config(&cfg, 1);
	cfg.github.api_url = bad_url;
	assert_int_equal(github_new(&cfg, NULL, &gh, &e), -EINVAL);
	fill_config(&cfg, 1);
	cfg.github.use_app = true;
	cfg.github.app.app_id = 1;
	cfg.github.app.installation_id = 2;
	assert_int_equal(github_new(&cfg, NULL, &gh, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "private key"));
}

static void test_request_headers_and_secrecy(void **state)
{
	static const char body[] = "{\"message\": \"Bad credentials\"}";
	struct config cfg;
	struct github *gh;
	struct github_runner r = {0};
	struct github_stats st;
	struct err e = {0};
	struct mini m;

	mini_start(&m);
	fill_config(&cfg, m.port);
	assert_int_equal(github_new(&cfg, NULL, &gh, &e), 0);
	mini_set(&m, "401 Unauthorized", "X-RateLimit-Limit: 60\r\nX-RateLimit-Remaining: 59\r\n",
	         body, strlen(body));
	assert_int_equal(github_get_runner(gh, 7, &r, &e), -EACCES);
	assert_string_equal(e.msg, "GitHub rejected the credentials (401 Bad credentials)");
	pthread_mutex_lock(&m.mu);
	assert_non_null(strstr(m.last_request, "GET /repos/octo/hello/actions/runners/7 HTTP/1.1"));
	assert_non_null(strstr(m.last_request, "\r\nAuthorization: Bearer ghp_SECRETTOKEN123\r\n"));
	assert_non_null(strstr(m.last_request, "\r\nAccept: application/vnd.github+json\r\n"));
	assert_non_null(strstr(m.last_request, "\r\nX-GitHub-Api-Version: 2022-11-28\r\n"));
	assert_non_null(strstr(m.last_request, "\r\nUser-Agent: runnerd/" RUNNERD_VERSION "\r\n"));
	pthread_mutex_unlock(&m.mu);
	github_get_stats(gh, &st);
	assert_int_equal(st.requests_sent, 1); /* 401 is not retried */
	assert_int_equal(st.rate_remaining, 59);

	/* a body over the limit is a clean -E2BIG */
	github_free(gh);
	struct github_opts o;
	github_opts_default(&o);
	o.max_response = 16;
	assert_int_equal(github_new(&cfg, &o, &gh, &e), 0);
	static const char big[] =
	        "{\"id\": 7, \"name\": \"ci-0123456789ab\", \"status\": \"online\"}";
	mini_set(&m, "200 OK", "", big, strlen(big));
	assert_int_equal(github_get_runner(gh, 7, &r, &e), -E2BIG);
	assert_non_null(strstr(e.msg, "larger than 16 bytes"));
	assert_null(strstr(e.msg, "SECRET"));
	github_free(gh);
	mini_stop(&m);
}

static void test_link_to_other_host_refused(void **state)
{
	static const char page[] = "{\"total_count\": 2, \"runners\": [{\"id\": 1, \"name\": "
	                           "\"ci-0123456789ab\", \"status\": \"online\", \"busy\": false, "
	                           "\"labels\": []}]}";
	struct github_runner_list l = {0};
	struct config cfg;
	struct github *gh;
	struct err e = {0};
	char hdr[256];
	struct mini m;

	mini_start(&m);
	fill_config(&cfg, m.port);
	assert_int_equal(github_new(&cfg, NULL, &gh, &e), 0);
	/* our token must not follow a Link to another host, nor to a look-alike port */
	mini_set(&m, "200 OK",
	         "Link: <http://evil.example/repos/octo/hello/actions/runners?page=2>; "
	         "rel=\"next\"\r\n",
	         page, strlen(page));
	assert_int_equal(github_list_runners(gh, NULL, &l, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "not under"));
	assert_false(l.complete);
	snprintf(hdr, sizeof(hdr),
	         "Link: <http://127.0.0.1:%d0/repos/octo/hello/actions/runners?page=2>; "
	         "rel=\"next\"\r\n",
	         m.port);
	mini_set(&m, "200 OK", hdr, page, strlen(page));
	assert_int_equal(github_list_runners(gh, NULL, &l, &e), -EPROTO);
	/* a page count that does not add up (the list moved while read): not a complete list */
	mini_set(&m, "200 OK", "", page, strlen(page));
	assert_int_equal(github_list_runners(gh, NULL, &l, &e), -EAGAIN);
	assert_non_null(strstr(e.msg, "changed while it was read"));
	assert_false(l.complete);
	assert_int_equal(l.n, 0);
	github_free(gh);
	mini_stop(&m);
}

/* ---- runner tarball verifier ---- */

static void sha_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;
	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' || strncmp(de->d_name, ".download", 9) == 0)
			n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

static double mono_s(void)
{
	return (double)clock_mono_ms() / 1000.0;
}

static int mini_requests(struct mini *m)
{
	pthread_mutex_lock(&m->mu);
	int n = m->requests;
	pthread_mutex_unlock(&m->mu);
	return n;
}

/* Retries stop at the call's deadline (2 x request_timeout), not after max_retries x timeout. */
static void test_deadline_bounds_retries(void **state)
{
	static const char body[] = "{\"message\": \"Service Unavailable\"}";
	struct github_runner r = {0};
	struct github_opts o;
	struct config cfg;
	struct github *gh;
	struct err e = {0};
	struct mini m;
	double t0, took;

	mini_start(&m);
	fill_config(&cfg, m.port);
	cfg.github.request_timeout = 1;
	github_opts_default(&o);
	o.max_retries = 50; /* far more than fit: the deadline must decide */
	o.backoff_base_ms = 300;
	o.backoff_max_ms = 300;
	assert_int_equal(github_new(&cfg, &o, &gh, &e), 0);
	mini_set(&m, "503 Service Unavailable", "", body, strlen(body));
	t0 = mono_s();
	assert_int_equal(github_get_runner(gh, 7, &r, &e), -EIO);
	took = mono_s() - t0;
	/* 2 x 1 s, with generous slack for a loaded machine; retries went on until then */
	assert_true(took < 2.8);
	assert_true(took > 1.0);
	assert_true(mini_requests(&m) >= 3 && mini_requests(&m) < 50);
	assert_non_null(strstr(e.msg, "no time left for another attempt"));
	assert_non_null(strstr(e.msg, "503"));
	github_free(gh);
	mini_stop(&m);
}

/* An installation token's answer: token, expires_at ttl seconds from now. Free it. */
static char *token_answer(const char *tok, long ttl)
{
	time_t t = time(NULL) + ttl;
	char when[32], *body = NULL;
	struct tm tm;

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	assert_true(asprintf(&body,
	                     "{\"token\": \"%s\", \"expires_at\": \"%s\", \"permissions\": "
	                     "{\"administration\": \"write\"}, \"repository_selection\": \"all\"}",
	                     tok, when) > 0);
	return body;
}

/*
 * The App flow with installation tokens of every length: each is sent whole
 * in the next call's Authorization header, a fresh one replaces the last
 * (refresh), and the exchange asks for no format (no
 * X-GitHub-Stateless-S2S-Token: see installation_header). A token over
 * GITHUB_TOKEN_MAX, from GitHub or configured, is an error, never cut.
 */
static void test_app_token_any_length(void **state)
{
	static const char runner[] = "{\"id\": 7, \"name\": \"ci-0123456789ab\", \"status\": "
	                             "\"online\", \"busy\": false, \"labels\": []}";
	static char want[GITHUB_TOKEN_MAX + 64];
	EVP_PKEY *gen = EVP_RSA_gen(2048);
	char *pem = pem_of(gen), *tok, *body;
	struct github_runner r = {0};
	struct config cfg;
	struct github *gh;
	struct err e = {0};
	struct mini m;
	int sent;

	mini_start(&m);
	fill_config(&cfg, m.port);
	cfg.github.use_app = true;
	cfg.github.app.app_id = 4242;
	cfg.github.app.installation_id = 777;
	cfg.github.app.private_key.value = pem;
	assert_int_equal(github_new(&cfg, NULL, &gh, &e), 0);
	mini_set(&m, "200 OK", "", runner, strlen(runner));
	for (size_t i = 0; i < ARRAY_SIZE(token_lens); i++) {
		/* 2 minutes left: inside the 5-minute margin, so each call exchanges again */
		tok = make_token(token_lens[i], (unsigned)i);
		body = token_answer(tok, 120);
		mini_alt(&m, "/access_tokens", "201 Created", body, strlen(body));
		assert_int_equal(github_get_runner(gh, 7, &r, &e), 0);
		github_runner_release(&r);
		snprintf(want, sizeof(want), "\r\nAuthorization: Bearer %s\r\n", tok);
		pthread_mutex_lock(&m.mu);
		assert_non_null(strstr(m.last_request, "GET /repos/octo/hello/actions/runners/7 "));
		assert_non_null(strstr(m.last_request, want));
		assert_non_null(strstr(m.alt_request,
		                       "POST /app/installations/777/access_tokens HTTP/1.1\r\n"));
		assert_non_null(strstr(m.alt_request, "\r\nAuthorization: Bearer eyJ"));
		assert_null(strcasestr(m.alt_request, "X-GitHub-Stateless-S2S-Token"));
		pthread_mutex_unlock(&m.mu);
		assert_int_equal(mini_requests(&m), 2 * (int)(i + 1));
		free(body);
		free(tok);
	}
	/* an hour left: the long token is kept and reused, whole, with no exchange */
	tok = make_token(532, 7);
	body = token_answer(tok, 3600);
	mini_alt(&m, "/access_tokens", "201 Created", body, strlen(body));
	sent = mini_requests(&m);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(github_get_runner(gh, 7, &r, &e), 0);
		github_runner_release(&r);
	}
	assert_int_equal(mini_requests(&m), sent + 1 + 3);
	snprintf(want, sizeof(want), "\r\nAuthorization: Bearer %s\r\n", tok);
	pthread_mutex_lock(&m.mu);
	assert_non_null(strstr(m.last_request, want));
	pthread_mutex_unlock(&m.mu);
	free(body);
	free(tok);
	github_free(gh);

	/* over GITHUB_TOKEN_MAX: the exchange fails cleanly, and no call goes out with it */
	assert_int_equal(github_new(&cfg, NULL, &gh, &e), 0);
	tok = make_token(GITHUB_TOKEN_MAX + 1, 3);
	body = token_answer(tok, 3600);
	mini_alt(&m, "/access_tokens", "201 Created", body, strlen(body));
	sent = mini_requests(&m);
	assert_int_equal(github_get_runner(gh, 7, &r, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "GitHub App: installation token: unexpected answer from "
	                              "GitHub: token is longer than 16384 bytes"));
	assert_true(no_token_in(e.msg));
	assert_int_equal(mini_requests(&m), sent + 1);
	free(body);
	github_free(gh);

	/* a configured token over it: refused before anything is sent */
	fill_config(&cfg, m.port);
	cfg.github.token.value = tok;
	assert_int_equal(github_new(&cfg, NULL, &gh, &e), 0);
	sent = mini_requests(&m);
	assert_int_equal(github_get_runner(gh, 7, &r, &e), -E2BIG);
	assert_non_null(strstr(e.msg, "the token is longer than 16384 bytes"));
	assert_true(no_token_in(e.msg));
	assert_int_equal(mini_requests(&m), sent);
	github_free(gh);
	free(tok);
	mini_stop(&m);
	free(pem);
	EVP_PKEY_free(gen);
}

/* A bar on one resource fails fast only the routes GitHub counted against it. */
static void test_rate_limit_per_resource(void **state)
{
	static const char body[] = "{\"message\": \"API rate limit exceeded\"}";
	static const char one[] = "{\"id\": 7, \"name\": \"ci-0123456789ab\", \"status\": "
	                          "\"online\", \"busy\": false, \"labels\": []}";
	struct github_runner r = {0};
	struct github_token t = {0};
	struct github_stats st;
	struct config cfg;
	struct github *gh;
	struct err e = {0};
	char hdrs[256];
	struct mini m;
	int n;

	mini_start(&m);
	fill_config(&cfg, m.port);
	assert_int_equal(github_new(&cfg, NULL, &gh, &e), 0);
	snprintf(hdrs, sizeof(hdrs),
	         "X-RateLimit-Limit: 10000\r\nX-RateLimit-Remaining: 0\r\n"
	         "X-RateLimit-Reset: %lld\r\nX-RateLimit-Resource: actions_runner_registration\r\n",
	         (long long)time(NULL) + 120);
	mini_set(&m, "403 Forbidden", hdrs, body, strlen(body));
	assert_int_equal(github_registration_token(gh, &t, &e), -EAGAIN);
	assert_non_null(strstr(e.msg, "'actions_runner_registration'"));
	/* the same route again: not sent */
	n = mini_requests(&m);
	assert_int_equal(github_registration_token(gh, &t, &e), -EAGAIN);
	assert_non_null(strstr(e.msg, "not calling GitHub"));
	assert_int_equal(mini_requests(&m), n);
	/* another route (never counted against that resource) still goes out */
	mini_set(&m, "200 OK",
	         "X-RateLimit-Limit: 5000\r\nX-RateLimit-Remaining: 4000\r\n"
	         "X-RateLimit-Reset: 1\r\nX-RateLimit-Resource: core\r\n",
	         one, strlen(one));
	assert_int_equal(github_get_runner(gh, 7, &r, &e), 0);
	assert_int_equal(mini_requests(&m), n + 1);
	github_runner_release(&r);
	github_get_stats(gh, &st);
	assert_int_equal(st.n_resources, 2);
	assert_string_equal(st.resources[0].resource, "core");
	assert_int_equal(st.resources[0].barred_until, 0);
	assert_int_equal(st.rate_remaining, 4000);
	assert_int_equal(st.barred_until, 0);
	assert_string_equal(st.resources[1].resource, "actions_runner_registration");
	assert_int_equal(st.resources[1].remaining, 0);
	assert_int_equal(st.resources[1].limit, 10000);
	assert_true(st.resources[1].barred_until > time(NULL));

	/* a junk resource name counts as core: core is barred, that route too */
	snprintf(hdrs, sizeof(hdrs),
	         "X-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: %lld\r\n"
	         "X-RateLimit-Resource: Not-A-Name\r\n",
	         (long long)time(NULL) + 120);
	mini_set(&m, "403 Forbidden", hdrs, body, strlen(body));
	assert_int_equal(github_delete_runner(gh, 7, &e), -EAGAIN);
	assert_non_null(strstr(e.msg, "'core'"));
	n = mini_requests(&m);
	assert_int_equal(github_get_runner(gh, 7, &r, &e), -EAGAIN);
	assert_int_equal(mini_requests(&m), n);
	github_get_stats(gh, &st);
	assert_int_equal(st.n_resources, 2);
	assert_true(st.barred_until > time(NULL));
	github_free(gh);
	mini_stop(&m);
}

/* The count of (route, method, status) in st, 0 when absent. */
static uint64_t route_count(const struct github_stats *st, const char *route, const char *method,
                            int status)
{
	for (size_t i = 0; i < st->n_requests; i++)
		if (strcmp(st->requests[i].route, route) == 0 &&
		    strcmp(st->requests[i].method, method) == 0 && st->requests[i].status == status)
			return st->requests[i].n;
	return 0;
}

/*
 * Requests are counted by the route's templated path (never a real owner,
 * repository or id), method and status; a client that replaces another
 * (a reload) takes its counters over.
 */
static void test_request_counts_by_route(void **state)
{
	static const char one[] = "{\"id\": 7, \"name\": \"ci-0123456789ab\", \"status\": "
	                          "\"online\", \"busy\": false, \"labels\": []}";
	static const char busy[] = "{\"message\": \"Runner is busy\"}";
	static const char *const rt = "/repos/{owner}/{repo}/actions/runners/{runner_id}";
	struct github_runner r = {0};
	struct github_stats st;
	struct config cfg;
	struct github *gh, *gh2;
	struct err e = {0};
	struct mini m;

	mini_start(&m);
	fill_config(&cfg, m.port);
	assert_int_equal(github_new(&cfg, NULL, &gh, &e), 0);
	mini_set(&m, "200 OK", "", one, strlen(one));
	assert_int_equal(github_get_runner(gh, 7, &r, &e), 0);
	github_runner_release(&r);
	assert_int_equal(github_get_runner(gh, 7, &r, &e), 0);
	github_runner_release(&r);
	mini_set(&m, "422 Unprocessable Entity", "", busy, strlen(busy));
	assert_int_equal(github_delete_runner(gh, 7, &e), -EBUSY);
	github_get_stats(gh, &st);
	assert_int_equal(route_count(&st, rt, "GET", 200), 2);
	assert_int_equal(route_count(&st, rt, "DELETE", 422), 1);
	for (size_t i = 0; i < st.n_requests; i++)
		assert_null(strstr(st.requests[i].route, "/7"));
	assert_int_equal(st.requests_overflow, 0);

	assert_int_equal(github_new(&cfg, NULL, &gh2, &e), 0);
	github_adopt_counters(gh2, gh);
	github_free(gh);
	mini_set(&m, "200 OK", "", one, strlen(one));
	assert_int_equal(github_get_runner(gh2, 7, &r, &e), 0);
	github_runner_release(&r);
	github_get_stats(gh2, &st);
	assert_int_equal(route_count(&st, rt, "GET", 200), 3);
	assert_int_equal(route_count(&st, rt, "DELETE", 422), 1);
	assert_int_equal(st.requests_sent, 4);
	github_free(gh2);
	mini_stop(&m);
}

struct cancel_arg {
	struct github *gh;
	int r;
	double done;
	struct err e;
};

static void *cancel_worker(void *p)
{
	struct cancel_arg *a = p;
	struct github_runner r = {0};

	a->r = github_get_runner(a->gh, 7, &r, &a->e);
	a->done = mono_s();
	github_runner_release(&r);
	return NULL;
}

/* github_cancel cuts a backoff sleep short; later calls fail at once until uncancelled. */
static void test_cancel_backoff(void **state)
{
	static const char body[] = "{\"message\": \"Service Unavailable\"}";
	static const char one[] = "{\"id\": 7, \"name\": \"ci-0123456789ab\", \"status\": "
	                          "\"online\", \"busy\": false, \"labels\": []}";
	struct cancel_arg a = {0};
	struct github_runner r = {0};
	struct github_opts o;
	struct config cfg;
	struct github *gh;
	struct err e = {0};
	struct mini m;
	pthread_t th;
	double t_cancel;
	int n;

	mini_start(&m);
	fill_config(&cfg, m.port);
	cfg.github.request_timeout = 30;
	github_opts_default(&o);
	o.max_retries = 3;
	o.backoff_base_ms = 8000; /* the worker sleeps 4-8 s after the first 503 */
	o.backoff_max_ms = 8000;
	assert_int_equal(github_new(&cfg, &o, &gh, &e), 0);
	assert_false(github_is_cancelled(gh));
	mini_set(&m, "503 Service Unavailable", "", body, strlen(body));
	a.gh = gh;
	assert_int_equal(pthread_create(&th, NULL, cancel_worker, &a), 0);
	for (int i = 0; i < 200 && mini_requests(&m) == 0; i++)
		usleep(10000);
	usleep(100000); /* now in the backoff sleep */
	t_cancel = mono_s();
	github_cancel(gh);
	pthread_join(th, NULL);
	assert_int_equal(a.r, -ECANCELED);
	assert_true(a.done - t_cancel < 1.5);
	assert_non_null(strstr(a.e.msg, "cancelled while waiting to retry"));
	assert_non_null(strstr(a.e.msg, "get runner 7"));
	assert_int_equal(mini_requests(&m), 1);

	/* cancelled: nothing is sent */
	assert_true(github_is_cancelled(gh));
	n = mini_requests(&m);
	assert_int_equal(github_get_runner(gh, 7, &r, &e), -ECANCELED);
	assert_non_null(strstr(e.msg, "cancelled before the request was sent"));
	assert_int_equal(mini_requests(&m), n);
	/* uncancelled: calls go through again */
	github_uncancel(gh);
	mini_set(&m, "200 OK", "", one, strlen(one));
	assert_int_equal(github_get_runner(gh, 7, &r, &e), 0);
	assert_int_equal(r.id, 7);
	github_runner_release(&r);
	github_free(gh);
	mini_stop(&m);
}

static void test_runner_bin_verify(void **state)
{
	static const char v1[] = "runner tarball version one";
	static const char v2[] = "runner tarball version two!";
	char tmpl[] = "/tmp/test-github-XXXXXX", dir[PATH_MAX], cur[PATH_MAX];
	struct github_runner_app app = {0};
	struct github_bin_result res, old;
	struct buf content = BUF_INIT(1024);
	struct config cfg;
	struct github *gh;
	struct err e = {0};
	struct stat st;
	struct mini m;
	int sent;

	assert_non_null(mkdtemp(tmpl));
	snprintf(dir, sizeof(dir), "%s/runner-bin", tmpl);
	snprintf(cur, sizeof(cur), "%s/current-x64", dir);
	mini_start(&m);
	fill_config(&cfg, m.port);
	assert_int_equal(github_new(&cfg, NULL, &gh, &e), 0);

	/* v1 installed: nothing was cached */
	mini_set(&m, "200 OK", "", v1, strlen(v1));
	str_copy(app.os, "linux", sizeof(app.os));
	snprintf(app.download_url, sizeof(app.download_url), "http://127.0.0.1:%d/v1.tar.gz",
	         m.port);
	str_copy(app.filename, "actions-runner-linux-x64-1.0.0.tar.gz", sizeof(app.filename));
	sha_hex(v1, strlen(v1), app.sha256);
	assert_int_equal(github_runner_bin_install(gh, &app, dir, "x64", &res, &e), 0);
	assert_int_equal(res.outcome, GITHUB_BIN_INSTALLED);
	assert_string_equal(res.version, "1.0.0");
	assert_string_equal(res.old_version, "");
	assert_string_equal(strrchr(res.path, '/') + 1, app.filename);
	assert_int_equal(stat(res.path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(file_read(res.path, 1024, true, &content, NULL), 0);
	assert_string_equal(buf_str(&content), v1);
	assert_int_equal(file_read(cur, 1024, true, &content, NULL), 0);
	assert_string_equal(buf_str(&content), "actions-runner-linux-x64-1.0.0.tar.gz\n");

	/* same version again: no download at all */
	pthread_mutex_lock(&m.mu);
	sent = m.requests;
	pthread_mutex_unlock(&m.mu);
	assert_int_equal(github_runner_bin_install(gh, &app, dir, "x64", &res, &e), 0);
	assert_int_equal(res.outcome, GITHUB_BIN_UNCHANGED);
	assert_string_equal(res.version, "1.0.0");
	assert_string_equal(res.old_version, "1.0.0");
	pthread_mutex_lock(&m.mu);
	assert_int_equal(m.requests, sent);
	pthread_mutex_unlock(&m.mu);

	/* v2 whose download does not match the checksum: refused, v1 kept, ret untouched */
	struct github_runner_app app2 = app;
	str_copy(app2.filename, "actions-runner-linux-x64-2.0.0.tar.gz", sizeof(app2.filename));
	sha_hex(v2, strlen(v2), app2.sha256);
	mini_set(&m, "200 OK", "", v1, strlen(v1)); /* the wrong bytes */
	old = res;
	assert_int_equal(github_runner_bin_install(gh, &app2, dir, "x64", &res, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "sha256 mismatch"));
	assert_memory_equal(&res, &old, sizeof(res));
	assert_int_equal(file_read(cur, 1024, true, &content, NULL), 0);
	assert_string_equal(buf_str(&content), "actions-runner-linux-x64-1.0.0.tar.gz\n");
	assert_int_equal(count_entries(dir), 2); /* v1 + current; no temp file left */

	/* an error status is not installed either */
	mini_set(&m, "404 Not Found", "", "nope", 4);
	assert_int_equal(github_runner_bin_install(gh, &app2, dir, "x64", &res, &e), -EIO);
	assert_int_equal(count_entries(dir), 2);

	/* the right bytes: v2 replaces v1, an update from 1.0.0 */
	mini_set(&m, "200 OK", "", v2, strlen(v2));
	assert_int_equal(github_runner_bin_install(gh, &app2, dir, "x64", &res, &e), 0);
	assert_int_equal(res.outcome, GITHUB_BIN_UPDATED);
	assert_string_equal(res.old_version, "1.0.0");
	assert_string_equal(res.version, "2.0.0");
	assert_int_equal(file_read(res.path, 1024, true, &content, NULL), 0);
	assert_string_equal(buf_str(&content), v2);
	assert_int_equal(count_entries(dir), 2); /* v1 removed */

	/* a damaged cached copy is fetched again: a repair of the same version */
	assert_int_equal(file_write_atomic(res.path, "x", 1, 0600, NULL), 0);
	assert_int_equal(github_runner_bin_install(gh, &app2, dir, "x64", &res, &e), 0);
	assert_int_equal(res.outcome, GITHUB_BIN_REPAIRED);
	assert_string_equal(res.old_version, "2.0.0");
	assert_string_equal(res.version, "2.0.0");
	assert_int_equal(file_read(res.path, 1024, true, &content, NULL), 0);
	assert_string_equal(buf_str(&content), v2);
	/* and so is a missing one */
	assert_int_equal(unlink(res.path), 0);
	assert_int_equal(github_runner_bin_install(gh, &app2, dir, "x64", &res, &e), 0);
	assert_int_equal(res.outcome, GITHUB_BIN_REPAIRED);

	/* no checksum, or a name that is not a plain file name: refused before any download */
	app2.sha256[0] = '\0';
	assert_int_equal(github_runner_bin_install(gh, &app2, dir, "x64", &res, &e), -EPROTO);
	sha_hex(v2, strlen(v2), app2.sha256);
	str_copy(app2.filename, "../evil.tar.gz", sizeof(app2.filename));
	assert_int_equal(github_runner_bin_install(gh, &app2, dir, "x64", &res, &e), -EPROTO);
	str_copy(app2.filename, "current-x64", sizeof(app2.filename));
	assert_int_equal(github_runner_bin_install(gh, &app2, dir, "x64", &res, &e), -EPROTO);

	buf_release(&content);
	github_free(gh);
	mini_stop(&m);
	assert_int_equal(rm_rf(tmpl, NULL), 0);
}

static void test_runner_bin_version(void **state)
{
	char v[64];

	github_runner_bin_version("actions-runner-linux-x64-2.321.0.tar.gz", v, sizeof(v));
	assert_string_equal(v, "2.321.0");
	github_runner_bin_version("actions-runner-osx-arm64-2.300.1.zip", v, sizeof(v));
	assert_string_equal(v, "2.300.1");
	/* nothing that looks like a version: the name itself */
	github_runner_bin_version("runner.tar.gz", v, sizeof(v));
	assert_string_equal(v, "runner.tar.gz");
	github_runner_bin_version("actions-runner-linux-x64-latest.tar.gz", v, sizeof(v));
	assert_string_equal(v, "actions-runner-linux-x64-latest.tar.gz");
	assert_string_equal(github_bin_outcome_name(GITHUB_BIN_UNCHANGED), "unchanged");
	assert_string_equal(github_bin_outcome_name(GITHUB_BIN_INSTALLED), "installed");
	assert_string_equal(github_bin_outcome_name(GITHUB_BIN_UPDATED), "updated");
	assert_string_equal(github_bin_outcome_name(GITHUB_BIN_REPAIRED), "repaired");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_link_next),
	        cmocka_unit_test(test_json_runners_page),
	        cmocka_unit_test(test_json_runners_malformed),
	        cmocka_unit_test(test_json_page_failure_keeps_acc),
	        cmocka_unit_test(test_json_foreign_runner_skipped),
	        cmocka_unit_test(test_json_token_and_jit),
	        cmocka_unit_test(test_json_token_any_length),
	        cmocka_unit_test(test_json_apps),
	        cmocka_unit_test(test_json_groups),
	        cmocka_unit_test(test_json_jobs),
	        cmocka_unit_test(test_json_deliveries),
	        cmocka_unit_test(test_json_error_message),
	        cmocka_unit_test(test_jwt),
	        cmocka_unit_test(test_backoff_bounds),
	        cmocka_unit_test(test_rate_limit),
	        cmocka_unit_test(test_resource_names),
	        cmocka_unit_test(test_httpc_unix_socket_headers_fd),
	        cmocka_unit_test(test_new_validation),
	        cmocka_unit_test(test_request_headers_and_secrecy),
	        cmocka_unit_test(test_link_to_other_host_refused),
	        cmocka_unit_test(test_app_token_any_length),
	        cmocka_unit_test(test_deadline_bounds_retries),
	        cmocka_unit_test(test_rate_limit_per_resource),
	        cmocka_unit_test(test_request_counts_by_route),
	        cmocka_unit_test(test_cancel_backoff),
	        cmocka_unit_test(test_runner_bin_verify),
	        cmocka_unit_test(test_runner_bin_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
