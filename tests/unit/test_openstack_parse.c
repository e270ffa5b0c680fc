/*
 * Unit tests of what the openstack backend makes of the APIs' answers
 * (src/provider/openstack/parse.c) and of what it sends (build.c), without
 * a cloud: Keystone's token and catalog, Nova's server listings (owned
 * names only, duplicates, pages and where a next link may point), error
 * answers (quota among them), name lookups, key pair and port listings;
 * the auth body, the server body and its user data (no secret in either);
 * clouds.yaml's cloud (config_clouds.c) and the hand-off table
 * (util/handoff.c). Hostile answers get a clean error, never a half-filled
 * result.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/fileutil.h"
#include "util/handoff.h"

#include <sys/stat.h>
#include "provider/openstack/os_internal.h"

#define S(x) x, strlen(x)

/* POST /v3/auth/tokens: Keystone's answer, cut to what matters (two regions). */
static const char token_ok[] =
        "{\"token\":{\"methods\":[\"password\"],\"expires_at\":\"2026-12-03T20:00:00.000000Z\","
        "\"issued_at\":\"2026-12-03T19:00:00.000000Z\",\"project\":{\"id\":\"p1\",\"name\":"
        "\"admin\"},"
        "\"catalog\":["
        "{\"type\":\"identity\",\"name\":\"keystone\",\"endpoints\":[{\"interface\":\"public\","
        "\"region\":\"RegionOne\",\"region_id\":\"RegionOne\",\"url\":\"http://127.0.0.1:5000/v3/"
        "\"}]},"
        "{\"type\":\"compute\",\"name\":\"nova\",\"endpoints\":["
        "{\"interface\":\"internal\",\"region_id\":\"RegionOne\",\"url\":\"http://10.0.0.1:8774/"
        "v2.1\"},"
        "{\"interface\":\"public\",\"region_id\":\"RegionTwo\",\"url\":\"http://127.0.0.2:8774/"
        "v2.1\"},"
        "{\"interface\":\"public\",\"region_id\":\"RegionOne\",\"url\":\"http://127.0.0.1:8774/"
        "v2.1/\"}]},"
        "{\"type\":\"network\",\"name\":\"neutron\",\"endpoints\":[{\"interface\":\"public\","
        "\"region_id\":\"RegionOne\",\"url\":\"http://127.0.0.1:9696\"},{\"interface\":\"public\","
        "\"region_id\":\"RegionTwo\",\"url\":\"http://127.0.0.2:9696/v2.0\"}]},"
        "{\"type\":\"image\",\"name\":\"glance\",\"endpoints\":[{\"interface\":\"public\","
        "\"region_id\":\"RegionOne\",\"url\":\"http://127.0.0.1:9292\"},{\"interface\":\"public\","
        "\"region_id\":\"RegionTwo\",\"url\":\"http://127.0.0.2:9292\"}]}]}}";

static void test_token_catalog(void **state)
{
	char ep[OS_SERVICES][OS_URL_MAX];
	struct err e = {0};
	int64_t exp, want;

	assert_int_equal(os_parse_token(S(token_ok), "public", "RegionOne", &exp, ep, &e), 0);
	assert_int_equal(clock_parse_rfc3339("2026-12-03T20:00:00Z", &want), 0);
	assert_int_equal(exp, want * 1000);
	assert_string_equal(ep[OS_COMPUTE], "http://127.0.0.1:8774/v2.1");
	assert_string_equal(ep[OS_NETWORK], "http://127.0.0.1:9696/v2.0");
	assert_string_equal(ep[OS_IMAGE], "http://127.0.0.1:9292/v2");
	assert_int_equal(os_parse_token(S(token_ok), "public", "RegionTwo", &exp, ep, &e), 0);
	assert_string_equal(ep[OS_COMPUTE], "http://127.0.0.2:8774/v2.1");
	assert_string_equal(ep[OS_NETWORK], "http://127.0.0.2:9696/v2.0");
	assert_int_equal(os_parse_token(S(token_ok), "internal", "RegionOne", &exp, ep, &e),
	                 -ENOENT);
	assert_non_null(strstr(e.msg, "network"));
	assert_int_equal(os_parse_token(S(token_ok), "public", "Nowhere", &exp, ep, &e), -ENOENT);
}

static void test_token_hostile(void **state)
{
	static const char *const bad[] = {
	        "",
	        "null",
	        "[]",
	        "{\"token\":[]}",
	        "{\"token\":{\"catalog\":[]}}",
	        "{\"token\":{\"expires_at\":\"soon\",\"catalog\":[]}}",
	        "{\"token\":{\"expires_at\":\"2026-12-03T20:00:00Z\"}}",
	        "{\"token\":{\"expires_at\":\"2026-12-03T20:00:00Z\",\"catalog\":{}}}",
	};
	/* an endpoint that is not an http URL: refused, not used */
	static const char *const bad_url[] = {"file:///etc/passwd", "http://a b", "gopher://x",
	                                      "http://x\\n"};
	char ep[OS_SERVICES][OS_URL_MAX];
	struct err e = {0};
	int64_t exp = 7;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(os_parse_token(bad[i], strlen(bad[i]), "public", "", &exp, ep, &e),
		                 -EBADMSG);
	for (size_t i = 0; i < ARRAY_SIZE(bad_url); i++) {
		char body[1024];
		snprintf(
		        body, sizeof(body),
		        "{\"token\":{\"expires_at\":\"2026-12-03T20:00:00Z\",\"catalog\":[{"
		        "\"type\":"
		        "\"compute\",\"endpoints\":[{\"interface\":\"public\",\"url\":\"%s\"}]}]}}",
		        bad_url[i]);
		assert_int_equal(os_parse_token(S(body), "public", "", &exp, ep, &e), -EBADMSG);
	}
	assert_int_equal(exp, 7);
}

static void test_states(void **state)
{
	assert_int_equal(os_state("ACTIVE"), CLOUD_ACTIVE);
	assert_int_equal(os_state("BUILD"), CLOUD_CREATED);
	assert_int_equal(os_state("ERROR"), CLOUD_ERROR);
	assert_int_equal(os_state("SHUTOFF"), CLOUD_STOPPED);
	assert_int_equal(os_state("SHELVED_OFFLOADED"), CLOUD_STOPPED);
	assert_int_equal(os_state("SOFT_DELETED"), CLOUD_DELETED);
	assert_int_equal(os_state("REBOOT"), CLOUD_UNKNOWN);
	assert_int_equal(os_state("active"), CLOUD_UNKNOWN);
	assert_int_equal(os_state(NULL), CLOUD_UNKNOWN);
}

#define SRV(id, name, status, created, mgr)                                                        \
	"{\"id\":\"" id "\",\"name\":\"" name "\",\"status\":\"" status                            \
	"\",\"created\":\"" created "\",\"metadata\":{\"runnerd-manager\":\"" mgr                  \
	"\",\"runnerd-flavor\":\"small\"}}"

static const char page1[] =
        "{\"servers\":[" SRV("id-1", "ci-0123456789ab", "ACTIVE", "2026-12-03T10:00:00Z", "ci") ","
        /* another manager's, whose name has ours as a prefix */
        SRV("id-2", "ci-east-0123456789ab", "ACTIVE", "2026-12-03T10:00:00Z", "ci-east") ","
        /* our name, another manager's metadata: not ours */
        SRV("id-3", "ci-111111111111", "ACTIVE", "2026-12-03T10:00:00Z", "other") ","
        /* a name that is not an owned name */
        SRV("id-4", "ci-0123456789AB", "ACTIVE", "2026-12-03T10:00:00Z",
            "ci") "," SRV("id-5", "ci-222222222222", "ERROR", "2026-12-03T11:00:00Z", "ci") ","
        /* a duplicate of id-1, newer */
        SRV("id-6", "ci-0123456789ab", "BUILD", "2026-12-03T12:00:00Z",
            "ci") "],\"servers_links\":[{\"rel\":\"next\",\"href\":"
                  "\"http://127.0.0.1:8774/v2.1/servers/detail?marker=id-6&name=%5Eci-\"}]}";

static void test_servers_page(void **state)
{
	struct instance_list l = {0};
	char next[OS_URL_MAX];
	struct err e = {0};
	int64_t t;

	assert_int_equal(
	        os_parse_servers(S(page1), "ci", "http://127.0.0.1:8774/v2.1", false, &l, next, &e),
	        0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].name, "ci-0123456789ab");
	assert_string_equal(l.v[0].provider_id, "id-6"); /* the newest */
	assert_int_equal(l.v[0].state, CLOUD_CREATED);
	assert_int_equal(clock_parse_rfc3339("2026-12-03T12:00:00Z", &t), 0);
	assert_int_equal((int64_t)l.v[0].created_at, t);
	assert_string_equal(l.v[0].flavor, "small");
	assert_string_equal(l.v[1].name, "ci-222222222222");
	assert_int_equal(l.v[1].state, CLOUD_ERROR);
	assert_string_equal(next,
	                    "http://127.0.0.1:8774/v2.1/servers/detail?marker=id-6&name=%5Eci-");
	instance_list_release(&l);

	/* keep_dups (delete): both servers of the name */
	assert_int_equal(
	        os_parse_servers(S(page1), "ci", "http://127.0.0.1:8774/v2.1", true, &l, next, &e),
	        0);
	assert_int_equal(l.n, 3);
	instance_list_release(&l);
}

/* A duplicate on a later page replaces the older one of an earlier page. */
static void test_servers_dup_across_pages(void **state)
{
	static const char p2[] =
	        "{\"servers\":[" SRV("id-0", "ci-0123456789ab", "ACTIVE", "2026-12-03T09:00:00Z",
	                             "ci") "," SRV("id-9", "ci-222222222222", "ACTIVE",
	                                           "2026-12-03T13:00:00Z", "ci") "]}";
	struct instance_list l = {0};
	char next[OS_URL_MAX];
	struct err e = {0};

	assert_int_equal(
	        os_parse_servers(S(page1), "ci", "http://127.0.0.1:8774/v2.1", false, &l, next, &e),
	        0);
	assert_int_equal(
	        os_parse_servers(S(p2), "ci", "http://127.0.0.1:8774/v2.1", false, &l, next, &e),
	        0);
	assert_string_equal(next, "");
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].provider_id, "id-6"); /* older id-0 did not replace it */
	assert_string_equal(l.v[1].provider_id, "id-9"); /* newer id-9 did */
	instance_list_release(&l);
}

static void test_servers_hostile(void **state)
{
	static const char *const bad[] = {
	        "",
	        "{}",
	        "{\"servers\":{}}",
	        "{\"servers\":[1]}",
	        "{\"servers\":[{}]}",
	        "{\"servers\":[{\"id\":\"x\"}]}",
	        "{\"servers\":[{\"id\":\"\",\"name\":\"ci-0123456789ab\"}]}",
	        "{\"servers\":[{\"id\":\"x\",\"name\":\"ci-0123456789ab\",\"status\":5}]}",
	        "{\"servers\":[{\"id\":\"x\",\"name\":\"ci-0123456789ab\",\"metadata\":[]}]}",
	        "{\"servers\":[],\"servers_links\":{}}",
	        /* next pages elsewhere: the token must not follow them */
	        "{\"servers\":[],\"servers_links\":[{\"rel\":\"next\",\"href\":\"http://evil/\"}]}",
	        "{\"servers\":[],\"servers_links\":[{\"rel\":\"next\",\"href\":"
	        "\"http://127.0.0.1:8774/v2.1.evil.example/servers\"}]}",
	        "{\"servers\":[],\"servers_links\":[{\"rel\":\"next\",\"href\":"
	        "\"http://127.0.0.1:87745/v2.1/servers\"}]}",
	        "{\"servers\":[],\"servers_links\":[{\"rel\":\"next\",\"href\":5}]}",
	        "{\"servers\":[], \"servers\":[]}",
	};
	struct instance_list l = {0};
	char next[OS_URL_MAX] = "kept";
	struct err e = {0};
	struct instance in = {.name = "ci-aaaaaaaaaaaa"};

	assert_int_equal(instance_list_add(&l, &in), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		/* a good server before the bad part: nothing of the page is kept */
		assert_int_equal(os_parse_servers(bad[i], strlen(bad[i]), "ci",
		                                  "http://127.0.0.1:8774/v2.1", false, &l, next,
		                                  &e),
		                 -EBADMSG);
		assert_int_equal(l.n, 1);
		assert_string_equal(next, "kept");
	}
	instance_list_release(&l);
	/* a name too long for an instance, an id too long */
	char big[1024];
	snprintf(big, sizeof(big),
	         "{\"servers\":[{\"id\":\"%0300d\",\"name\":\"ci-0123456789ab\"}]}", 1);
	assert_int_equal(
	        os_parse_servers(S(big), "ci", "http://127.0.0.1:8774/v2.1", false, &l, next, &e),
	        -EBADMSG);
	assert_int_equal(l.n, 0);
}

static void test_errors(void **state)
{
	struct err e = {0};
	char body[2048];

	assert_int_equal(os_parse_error("nova: x", 404,
	                                S("{\"itemNotFound\":{\"code\":404,\"message\":\"Instance "
	                                  "could not be found.\"}}"),
	                                &e),
	                 -ENOENT);
	assert_string_equal(e.msg, "nova: x: HTTP 404: Instance could not be found.");
	assert_int_equal(
	        os_parse_error("nova: create", 403,
	                       S("{\"forbidden\":{\"code\":403,\"message\":\"Quota exceeded "
	                         "for instances: Requested 1, but already used 10 of 10 "
	                         "instances\"}}"),
	                       &e),
	        -EDQUOT);
	assert_non_null(strstr(e.msg, "quota exceeded"));
	assert_int_equal(
	        os_parse_error("nova", 403, S("{\"forbidden\":{\"message\":\"Policy\"}}"), &e),
	        -EACCES);
	assert_int_equal(os_parse_error("nova", 413, S("{\"overLimit\":{\"message\":\"x\"}}"), &e),
	                 -EDQUOT);
	assert_int_equal(os_parse_error("neutron", 409,
	                                S("{\"NeutronError\":{\"type\":\"InUse\",\"message\":\"in "
	                                  "use\",\"detail\":\"\"}}"),
	                                &e),
	                 -EEXIST);
	assert_string_equal(e.msg, "neutron: HTTP 409: in use");
	assert_int_equal(os_parse_error("keystone", 401,
	                                S("{\"error\":{\"code\":401,\"message\":\"The request you "
	                                  "have made requires authentication.\",\"title\":"
	                                  "\"Unauthorized\"}}"),
	                                &e),
	                 -EACCES);
	assert_int_equal(os_parse_error("glance", 503, S("<html>busy\r\n\x1b[31m</html>"), &e),
	                 -EAGAIN);
	assert_null(strchr(e.msg, '\x1b'));
	assert_null(strchr(e.msg, '\n'));
	memset(body, 'x', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	assert_int_equal(os_parse_error("nova", 500, S(body), &e), -EIO);
	assert_true(strlen(e.msg) < OS_ERRTEXT_MAX + 40);
	assert_non_null(strstr(e.msg, "..."));
	assert_int_equal(os_parse_error("nova", 400, NULL, 0, &e), -EINVAL);
}

static void test_pick(void **state)
{
	static const char nets[] = "{\"networks\":[{\"id\":\"n1\",\"name\":\"runners\"},{\"id\":"
	                           "\"n2\",\"name\":\"dup\"},"
	                           "{\"id\":\"n3\",\"name\":\"dup\"},{\"id\":5,\"name\":"
	                           "\"runners\"},{\"name\":\"x\"}]}";
	char id[OS_ID_MAX] = "";
	struct err e = {0};

	assert_int_equal(os_parse_pick(S(nets), "networks", "runners", id, &e), 0);
	assert_string_equal(id, "n1");
	assert_int_equal(os_parse_pick(S(nets), "networks", "n3", id, &e), 0);
	assert_string_equal(id, "n3");
	assert_int_equal(os_parse_pick(S(nets), "networks", "dup", id, &e), -ENOTUNIQ);
	assert_int_equal(os_parse_pick(S(nets), "networks", "none", id, &e), -ENOENT);
	assert_int_equal(os_parse_pick(S(nets), "images", "runners", id, &e), -EBADMSG);
	assert_int_equal(os_parse_pick(S("[]"), "networks", "runners", id, &e), -EBADMSG);
	assert_int_equal(os_parse_id(S("{\"server\":{\"id\":\"abc\"}}"), "server", id, &e), 0);
	assert_string_equal(id, "abc");
	assert_int_equal(os_parse_id(S("{\"server\":{\"id\":7}}"), "server", id, &e), -EBADMSG);
	assert_int_equal(os_parse_id(S("{\"server\":{}}"), "server", id, &e), -EBADMSG);
}

static void test_owned(void **state)
{
	static const char kp[] = "{\"keypairs\":[{\"keypair\":{\"name\":\"ci-0123456789ab\"}},"
	                         "{\"keypair\":{\"name\":\"ci-east-0123456789ab\"}},"
	                         "{\"keypair\":{\"name\":\"mine\"}},{\"keypair\":5},{}]}";
	static const char ports[] = "{\"ports\":[{\"id\":\"p1\",\"name\":\"ci-0123456789ab\"},"
	                            "{\"id\":\"p2\",\"name\":\"\"},{\"id\":\"p3\",\"name\":"
	                            "\"ci-0123456789abc\"}]}";
	struct os_ref r[4];
	struct err e = {0};
	size_t n = 9;

	assert_int_equal(os_parse_owned(S(kp), "keypairs", "keypair", "ci", r, 4, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(r[0].name, "ci-0123456789ab");
	assert_int_equal(os_parse_owned(S(ports), "ports", "", "ci", r, 4, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(r[0].id, "p1");
	assert_int_equal(os_parse_owned(S("{\"ports\":{}}"), "ports", "", "ci", r, 4, &n, &e),
	                 -EBADMSG);
}

/* Security groups runnerd made: the manager's prefix and its description, both. */
static void test_groups(void **state)
{
	static const char sgs[] =
	        "{\"security_groups\":["
	        "{\"id\":\"g1\",\"name\":\"ci-runners\",\"description\":\"runnerd ci: its "
	        "runners\"},"
	        "{\"id\":\"g2\",\"name\":\"ci-old\",\"description\":\"runnerd ci: its runners\"},"
	        "{\"id\":\"g3\",\"name\":\"ci-hand\",\"description\":\"made by hand\"},"
	        "{\"id\":\"g4\",\"name\":\"ci-east-runners\",\"description\":"
	        "\"runnerd ci-east: its runners\"},"
	        "{\"id\":\"g5\",\"name\":\"cix\",\"description\":\"runnerd ci: its runners\"},"
	        "{\"id\":\"g6\",\"name\":\"default\",\"description\":\"runnerd ci: its runners\"},"
	        "{\"name\":\"ci-noid\",\"description\":\"runnerd ci: its runners\"},5]}";
	struct os_ref r[4];
	struct err e = {0};
	size_t n = 9;
	char name[64];

	(void)state;
	assert_int_equal(os_parse_groups(S(sgs), "ci", r, 4, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(r[0].name, "ci-runners");
	assert_string_equal(r[0].id, "g1");
	assert_string_equal(r[1].name, "ci-old");
	/* a manager whose name another's starts with sees only its own */
	assert_int_equal(os_parse_groups(S(sgs), "ci-east", r, 4, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(r[0].id, "g4");
	assert_int_equal(os_parse_groups(S("{\"security_groups\":{}}"), "ci", r, 4, &n, &e),
	                 -EBADMSG);
	os_secgroup_name("", "ci", name, sizeof(name));
	assert_string_equal(name, "ci-runners");
	os_secgroup_name("ci-large", "ci", name, sizeof(name));
	assert_string_equal(name, "ci-large");
}

static const struct config_cloud pw_cloud = {
        .auth_url = (char *)"http://127.0.0.1:5000/v3",
        .username = (char *)"admin",
        .user_domain_id = (char *)"default",
        .project_name = (char *)"runners",
        .project_domain_name = (char *)"Default",
        .secret = (char *)"pa\"ss",
};

static void test_build_auth(void **state)
{
	struct config_cloud ac = {.auth_url = (char *)"http://x/v3",
	                          .app_cred = true,
	                          .app_cred_id = (char *)"ac1",
	                          .secret = (char *)"s3"};
	struct buf b = BUF_INIT(0);
	json_t *j;

	assert_int_equal(os_build_auth(&pw_cloud, &b), 0);
	assert_true(b.secret);
	assert_int_equal(os_json(b.data, b.len, &j), 0);
	json_t *user = json_object_get(
	        json_object_get(json_object_get(json_object_get(j, "auth"), "identity"),
	                        "password"),
	        "user");
	assert_string_equal(os_jstr(user, "name"), "admin");
	assert_string_equal(os_jstr(user, "password"), "pa\"ss");
	assert_string_equal(os_jstr(json_object_get(user, "domain"), "id"), "default");
	json_t *proj =
	        json_object_get(json_object_get(json_object_get(j, "auth"), "scope"), "project");
	assert_string_equal(os_jstr(proj, "name"), "runners");
	assert_string_equal(os_jstr(json_object_get(proj, "domain"), "name"), "Default");
	json_decref(j);

	assert_int_equal(os_build_auth(&ac, &b), 0);
	assert_int_equal(os_json(b.data, b.len, &j), 0);
	json_t *id = json_object_get(json_object_get(j, "auth"), "identity");
	assert_string_equal(json_string_value(json_array_get(json_object_get(id, "methods"), 0)),
	                    "application_credential");
	assert_string_equal(os_jstr(json_object_get(id, "application_credential"), "id"), "ac1");
	assert_string_equal(os_jstr(json_object_get(id, "application_credential"), "secret"), "s3");
	assert_null(json_object_get(json_object_get(j, "auth"), "scope"));
	json_decref(j);
	buf_release(&b);
}

/* base64 of s, decoded back by a tiny decoder, equals s. */
static char *unbase64(const char *s)
{
	static const char tab[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(s), o = 0;
	char *out = calloc(1, n + 1);
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n && s[i] != '='; i++) {
		const char *p = strchr(tab, s[i]);
		assert_non_null(p);
		acc = (acc << 6) | (uint32_t)(p - tab);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	return out;
}

static void test_base64(void **state)
{
	static const char *const v[][2] = {
	        {"", ""},        {"f", "Zg=="},        {"fo", "Zm8="},
	        {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"foobar", "Zm9vYmFy"}};
	for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
		struct buf b = BUF_INIT(64);
		assert_int_equal(os_base64(v[i][0], strlen(v[i][0]), &b), 0);
		assert_string_equal(buf_str(&b), v[i][1]);
		buf_release(&b);
	}
}

static void test_build_server(void **state)
{
	static const char script[] = "#!/bin/sh\necho RUNNERD_STARTUP_EOF\nRUNNERD_STARTUP_EOF\n";
	char *ud = os_build_user_data(script, "http://10.0.0.1:8080/v1/handoff/abc");
	struct buf b = BUF_INIT(1 << 20);
	json_t *j, *s, *meta;
	char *decoded;

	assert_non_null(ud);
	/* the script's own line is no delimiter: another one is chosen */
	assert_non_null(strstr(ud, "<<'RUNNERD_STARTUP_EOF_1'"));
	assert_non_null(strstr(ud, "url='http://10.0.0.1:8080/v1/handoff/abc'"));
	assert_non_null(strstr(ud, "RUNNERD_HOME=${RUNNERD_HOME:-" OS_HOME "}"));
	assert_non_null(strstr(ud, "\"$RUNNERD_HOME\"/secret.env"));
	struct os_server_req q = {
	        .name = "ci-0123456789ab",
	        .flavor_name = "small",
	        .image_id = "img",
	        .flavor_id = "fl",
	        .network_id = "net",
	        .secgroup = "ci-runners",
	        .user_data = ud,
	        .manager = "ci",
	};
	assert_int_equal(os_build_server(&q, &b), 0);
	assert_int_equal(os_json(b.data, b.len, &j), 0);
	s = json_object_get(j, "server");
	assert_string_equal(os_jstr(s, "name"), "ci-0123456789ab");
	assert_string_equal(os_jstr(s, "imageRef"), "img");
	assert_string_equal(os_jstr(s, "flavorRef"), "fl");
	assert_string_equal(os_jstr(json_array_get(json_object_get(s, "networks"), 0), "uuid"),
	                    "net");
	assert_string_equal(
	        os_jstr(json_array_get(json_object_get(s, "security_groups"), 0), "name"),
	        "ci-runners");
	meta = json_object_get(s, "metadata");
	assert_string_equal(os_jstr(meta, "runnerd-manager"), "ci");
	assert_string_equal(os_jstr(meta, "runnerd-flavor"), "small");
	assert_string_equal(os_jstr(meta, "runner-name"), "ci-0123456789ab");
	assert_null(json_object_get(s, "key_name"));
	assert_null(json_object_get(s, "config_drive"));
	decoded = unbase64(os_jstr(s, "user_data"));
	assert_string_equal(decoded, ud);
	free(decoded);
	json_decref(j);

	q.key_name = "ci-0123456789ab";
	q.config_drive = true;
	assert_int_equal(os_build_server(&q, &b), 0);
	assert_int_equal(os_json(b.data, b.len, &j), 0);
	s = json_object_get(j, "server");
	assert_string_equal(os_jstr(s, "key_name"), "ci-0123456789ab");
	assert_true(json_is_true(json_object_get(s, "config_drive")));
	json_decref(j);
	free(ud);

	/* no hand-off: no fetch; a URL that would break out of its quotes: refused */
	ud = os_build_user_data("true\n", NULL);
	assert_non_null(ud);
	assert_null(strstr(ud, "secret.env"));
	free(ud);
	assert_null(os_build_user_data("true\n", "http://x/'; rm -rf / #"));
	assert_null(os_build_user_data("true\n", "http://x/\nrm"));
	/* too big for Nova */
	char *big = malloc(OS_USER_DATA_MAX + 1);
	memset(big, 'x', OS_USER_DATA_MAX);
	big[OS_USER_DATA_MAX] = '\0';
	assert_null(os_build_user_data(big, NULL));
	free(big);
	buf_release(&b);
}

/*
 * The user data runs: with RUNNERD_HOME set (as a stand-in on a host sets
 * it), it fetches the hand-off URL (curl, here a file:// URL) into
 * secret.env (0600), writes the startup script and starts it.
 */
static void test_user_data_runs(void **state)
{
	char dir[] = "/tmp/runnerd-osud.XXXXXX", path[256], url[300], cmd[600];
	struct buf b = BUF_INIT(4096);
	struct stat st;
	char *ud;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/handed", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("X=1\n", f);
	fclose(f);
	snprintf(url, sizeof(url), "file://%s", path);
	ud = os_build_user_data(
	        "#!/bin/sh\ncat \"$RUNNERD_HOME/secret.env\" >\"$RUNNERD_HOME/ran\"\n", url);
	assert_non_null(ud);
	snprintf(path, sizeof(path), "%s/user-data", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(ud, f);
	fclose(f);
	free(ud);
	snprintf(cmd, sizeof(cmd), "RUNNERD_HOME=%s/home sh %s/user-data", dir, dir);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/home/ran", dir);
	/* started detached: wait for what it wrote (5 s at most) */
	for (int i = 0; i < 100 && (file_read(path, 4096, true, &b, NULL) < 0 || b.len < 4); i++)
		clock_sleep_ms(50);
	assert_string_equal(buf_str(&b), "X=1\n");
	snprintf(path, sizeof(path), "%s/home/secret.env", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	buf_release(&b);
	assert_int_equal(rm_rf(dir, NULL), 0);
}

static void test_clouds_yaml(void **state)
{
	static const char y[] = "clouds:\n"
	                        "  pw:\n"
	                        "    region_name: RegionOne\n"
	                        "    auth:\n"
	                        "      auth_url: http://127.0.0.1:5000/v3/\n"
	                        "      username: admin\n"
	                        "      password: hunter2\n"
	                        "      project_name: admin\n"
	                        "      domain_name: Default\n"
	                        "  ac:\n"
	                        "    auth_type: v3applicationcredential\n"
	                        "    auth:\n"
	                        "      auth_url: https://keystone.example/v3\n"
	                        "      application_credential_id: abc\n"
	                        "      application_credential_secret: s3cr3t\n"
	                        "  nopw:\n"
	                        "    auth:\n"
	                        "      auth_url: http://x/v3\n"
	                        "      username: u\n"
	                        "      project_name: p\n"
	                        "  badtype:\n"
	                        "    auth_type: token\n"
	                        "    auth: {auth_url: 'http://x', password: hunter3}\n"
	                        "  seq:\n"
	                        "    auth:\n"
	                        "      auth_url: [http://x]\n";
	struct config_cloud c = {0};
	struct err e = {0};

	assert_int_equal(config_cloud_parse("c.yaml", S(y), "pw", &c, &e), 0);
	assert_string_equal(c.auth_url, "http://127.0.0.1:5000/v3");
	assert_string_equal(c.secret, "hunter2");
	assert_false(c.app_cred);
	assert_true(c.verify);
	assert_string_equal(c.user_domain_name, "Default");
	assert_string_equal(c.project_domain_name, "Default");
	assert_string_equal(c.region_name, "RegionOne");
	config_cloud_release(&c);
	assert_int_equal(config_cloud_parse("c.yaml", S(y), "ac", &c, &e), 0);
	assert_true(c.app_cred);
	assert_string_equal(c.app_cred_id, "abc");
	assert_string_equal(c.secret, "s3cr3t");
	config_cloud_release(&c);

	assert_int_equal(config_cloud_parse("c.yaml", S(y), "nopw", &c, &e), -EINVAL);
	assert_string_equal(e.msg,
	                    "c.yaml:18:7: clouds.nopw.auth.password: required for password auth");
	assert_int_equal(config_cloud_parse("c.yaml", S(y), "badtype", &c, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "c.yaml:22:5: clouds.badtype.auth_type"));
	assert_null(strstr(e.msg, "hunter3"));
	assert_int_equal(config_cloud_parse("c.yaml", S(y), "seq", &c, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "c.yaml:26:18: clouds.seq.auth.auth_url: must be a string"));
	assert_int_equal(config_cloud_parse("c.yaml", S(y), "none", &c, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "clouds.none: no such cloud"));
	assert_int_equal(config_cloud_parse("c.yaml", S("clouds: [\n"), "pw", &c, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "c.yaml:"));
	assert_int_equal(config_cloud_parse("c.yaml", S("a: 1\n"), "pw", &c, &e), -EINVAL);
	assert_null(c.auth_url);
}

static void test_handoff(void **state)
{
	char t1[HANDOFF_TOKEN_LEN + 1], t2[HANDOFF_TOKEN_LEN + 1];
	struct buf b = BUF_INIT(0);
	struct err e = {0};
	size_t before = handoff_count();

	assert_int_equal(handoff_put(S("ACTIONS_RUNNER_INPUT_JITCONFIG=abc\n"), 60000, t1, &e), 0);
	assert_int_equal(handoff_put(S("X=2\n"), 1, t2, &e), 0);
	assert_int_equal(strlen(t1), HANDOFF_TOKEN_LEN);
	assert_string_not_equal(t1, t2);
	clock_sleep_ms(5); /* t2 expires */
	assert_int_equal(handoff_take(t2, &b), -ENOENT);
	assert_int_equal(handoff_take("", &b), -ENOENT);
	assert_int_equal(handoff_take("../../etc", &b), -ENOENT);
	char c0 = t1[0];
	t1[0] = c0 == 'a' ? 'b' : 'a';
	assert_int_equal(handoff_take(t1, &b), -ENOENT); /* one character off */
	t1[0] = c0;
	assert_int_equal(handoff_count(), before + 1);
	buf_release(&b);
	/* the real one, taken once */
	char t3[HANDOFF_TOKEN_LEN + 1];
	assert_int_equal(handoff_put(S("SECRET=1\n"), 60000, t3, &e), 0);
	assert_int_equal(handoff_take(t3, &b), 0);
	assert_true(b.secret);
	assert_string_equal(buf_str(&b), "SECRET=1\n");
	assert_int_equal(handoff_take(t3, &b), -ENOENT);
	handoff_drop(t1);
	assert_int_equal(handoff_count(), before);
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_token_catalog),
	        cmocka_unit_test(test_token_hostile),
	        cmocka_unit_test(test_states),
	        cmocka_unit_test(test_servers_page),
	        cmocka_unit_test(test_servers_dup_across_pages),
	        cmocka_unit_test(test_servers_hostile),
	        cmocka_unit_test(test_errors),
	        cmocka_unit_test(test_pick),
	        cmocka_unit_test(test_owned),
	        cmocka_unit_test(test_build_auth),
	        cmocka_unit_test(test_base64),
	        cmocka_unit_test(test_build_server),
	        cmocka_unit_test(test_user_data_runs),
	        cmocka_unit_test(test_clouds_yaml),
	        cmocka_unit_test(test_handoff),
	        cmocka_unit_test(test_groups),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
