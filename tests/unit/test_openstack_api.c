/*
 * The openstack backend through the provider front against a small
 * in-process stand-in of Keystone, Nova, Neutron and Glance on 127.0.0.1
 * (runnerd's own HTTP server, canned answers shaped like the real APIs'):
 * the token got once and renewed on a 401, names resolved once, the
 * security group made with its rules, the server's body (metadata, no
 * secret in it or in its user data, the secrets handed off once), every
 * page of a listing and a next link that leaves the endpoint refused, a
 * quota error, a delete seen gone, and a cloud that is silent (each request
 * ends at request_timeout). The real APIs are the e2e test's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/handoff.h"
#include "http/server.h"
#include "provider/openstack/os_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#define SECRET "ACTIONS_RUNNER_INPUT_JITCONFIG=very-secret-jit\n"

struct cloud {
	pthread_mutex_t lock;
	int port;
	int auths;        /* tokens given */
	int revoke;       /* answer 401 to this token number once */
	int flavor_lists; /* GET /flavors */
	int sg_posts, rule_posts;
	bool sg_exists;
	bool quota;     /* POST /servers: 403 quota */
	bool evil_next; /* the first page's next link points elsewhere */
	char last_server[64 * 1024];
	int deleted; /* servers deleted */
	char keypair_post[4096];
	char deleted_extras[1024]; /* the paths of key pairs and ports deleted, a line each */
	int gets_after_delete;
	char stall[96]; /* "METHOD PATH" answered only after STALL_MS ("" none) */
	bool groups;    /* GET /security-groups (no name): groups of several kinds */
};

/* Longer than the tests' request_timeout (1 s), short enough to keep the test quick. */
#define STALL_MS 2500

static struct cloud cl = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void answer(struct http_response *resp, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void answer(struct http_response *resp, int status, const char *fmt, ...)
{
	va_list ap;
	char body[16384];

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	http_response_json(resp, status, body);
}

#define SRV(id, name, status)                                                                      \
	"{\"id\":\"" id "\",\"name\":\"" name "\",\"status\":\"" status                            \
	"\",\"created\":\"2026-12-03T10:00:00Z\",\"metadata\":{\"runnerd-manager\":\"ost\","       \
	"\"runnerd-flavor\":\"small\"}}"

static void h_all(void *ctx, const struct http_request *req, struct http_response *resp)
{
	const char *p = req->path, *m = req->method;
	const char *tok = http_request_header(req, "X-Auth-Token");
	char want[32], stall[96];

	pthread_mutex_lock(&cl.lock);
	snprintf(stall, sizeof(stall), "%s %s", m, p);
	if (cl.stall[0] && strcmp(stall, cl.stall) == 0) {
		/* a cloud that answers too late: this thread is held, the client gives up */
		pthread_mutex_unlock(&cl.lock);
		clock_sleep_ms(STALL_MS);
		pthread_mutex_lock(&cl.lock);
	}
	if (strcmp(m, "POST") == 0 && strcmp(p, "/identity/v3/auth/tokens") == 0) {
		char t[32];
		assert_non_null(strstr(req->body, "\"password\":\"pw-never-logged\""));
		snprintf(t, sizeof(t), "tok-%d", ++cl.auths);
		http_response_header(resp, "X-Subject-Token", t);
		answer(resp, 201,
		       "{\"token\":{\"expires_at\":\"2099-01-01T00:00:00Z\",\"catalog\":["
		       "{\"type\":\"compute\",\"endpoints\":[{\"interface\":\"public\",\"region_"
		       "id\":"
		       "\"R1\",\"url\":\"http://127.0.0.1:%d/compute/v2.1\"}]},"
		       "{\"type\":\"network\",\"endpoints\":[{\"interface\":\"public\",\"region_"
		       "id\":"
		       "\"R1\",\"url\":\"http://127.0.0.1:%d/network\"}]},"
		       "{\"type\":\"image\",\"endpoints\":[{\"interface\":\"public\",\"region_id\":"
		       "\"R1\",\"url\":\"http://127.0.0.1:%d/image\"}]}]}}",
		       cl.port, cl.port, cl.port);
		goto out;
	}
	snprintf(want, sizeof(want), "tok-%d", cl.auths);
	if (!tok || strcmp(tok, want) != 0 || cl.revoke == cl.auths) {
		cl.revoke = 0;
		answer(resp, 401,
		       "{\"error\":{\"code\":401,\"message\":\"The request you have made "
		       "requires authentication.\"}}");
		goto out;
	}
	if (strcmp(p, "/compute/v2.1/flavors") == 0) {
		cl.flavor_lists++;
		answer(resp, 200, "{\"flavors\":[{\"id\":\"f1\",\"name\":\"m1.small\"}]}");
	} else if (strcmp(p, "/network/v2.0/networks") == 0) {
		answer(resp, 200, "{\"networks\":[{\"id\":\"n1\",\"name\":\"%s\"}]}",
		       http_request_arg(req, "name"));
	} else if (strcmp(p, "/image/v2/images") == 0) {
		answer(resp, 200, "{\"images\":[{\"id\":\"i1\",\"name\":\"%s\"}]}",
		       http_request_arg(req, "name"));
	} else if (strcmp(p, "/network/v2.0/security-groups") == 0 && strcmp(m, "GET") == 0 &&
	           cl.groups && !http_request_arg(req, "name")) {
		/* ours in use, ours no longer used, one a peer uses, one a port holds,
		 * one made by hand, another manager's */
		answer(resp, 200,
		       "{\"security_groups\":["
		       "{\"id\":\"sg1\",\"name\":\"ost-runners\",\"description\":\"runnerd ost: "
		       "its "
		       "runners\"},"
		       "{\"id\":\"gold\",\"name\":\"ost-old\",\"description\":\"runnerd ost: its "
		       "runners\"},"
		       "{\"id\":\"glarge\",\"name\":\"ost-large\",\"description\":\"runnerd ost: "
		       "its "
		       "runners\"},"
		       "{\"id\":\"gbusy\",\"name\":\"ost-busy\",\"description\":\"runnerd ost: its "
		       "runners\"},"
		       "{\"id\":\"ghand\",\"name\":\"ost-hand\",\"description\":\"by hand\"},"
		       "{\"id\":\"geast\",\"name\":\"ost-east-runners\",\"description\":\"runnerd "
		       "ost-east: its runners\"}]}");
	} else if (strcmp(m, "DELETE") == 0 &&
	           str_has_prefix(p, "/network/v2.0/security-groups/")) {
		size_t n = strlen(cl.deleted_extras);
		if (strcmp(p, "/network/v2.0/security-groups/gbusy") == 0) {
			answer(resp, 409,
			       "{\"NeutronError\":{\"type\":\"SecurityGroupInUse\",\"message\":"
			       "\"Security Group gbusy in use.\"}}");
		} else {
			snprintf(cl.deleted_extras + n, sizeof(cl.deleted_extras) - n, "%s\n", p);
			answer(resp, 204, "{}");
		}
	} else if (strcmp(p, "/network/v2.0/security-groups") == 0 && strcmp(m, "GET") == 0) {
		answer(resp, 200,
		       cl.sg_exists ? "{\"security_groups\":[{\"id\":\"sg1\",\"name\":"
		                      "\"ost-runners\"}]}"
		                    : "{\"security_groups\":[]}");
	} else if (strcmp(p, "/network/v2.0/security-groups") == 0) {
		assert_non_null(strstr(req->body, "\"name\":\"ost-runners\""));
		cl.sg_posts++;
		cl.sg_exists = true;
		answer(resp, 201, "{\"security_group\":{\"id\":\"sg1\",\"name\":\"ost-runners\"}}");
	} else if (strcmp(p, "/network/v2.0/security-group-rules") == 0) {
		assert_non_null(strstr(req->body, "\"security_group_id\":\"sg1\""));
		assert_non_null(strstr(req->body, "\"direction\":\"ingress\""));
		cl.rule_posts++;
		answer(resp, 201, "{\"security_group_rule\":{\"id\":\"r%d\"}}", cl.rule_posts);
	} else if (strcmp(p, "/network/v2.0/ports") == 0) {
		/* a leftover of ours, one of a live server, one of another manager */
		answer(resp, 200,
		       "{\"ports\":[{\"id\":\"p1\",\"name\":\"ost-00000000000f\"},{\"id\":\"p2\","
		       "\"name\":\"ost-000000000002\"},{\"id\":\"p3\",\"name\":"
		       "\"ost-east-00000000000f\"},{\"id\":\"p4\",\"name\":\"\"}]}");
	} else if (strcmp(p, "/compute/v2.1/os-keypairs") == 0 && strcmp(m, "POST") == 0) {
		str_copy(cl.keypair_post, req->body, sizeof(cl.keypair_post));
		answer(resp, 200, "{\"keypair\":{\"name\":\"x\"}}");
	} else if (strcmp(p, "/compute/v2.1/os-keypairs") == 0) {
		answer(resp, 200,
		       "{\"keypairs\":[{\"keypair\":{\"name\":\"ost-00000000000e\"}},{\"keypair\":"
		       "{\"name\":\"ost-000000000001\"}},{\"keypair\":{\"name\":\"mine\"}}]}");
	} else if (strcmp(m, "DELETE") == 0 && (str_has_prefix(p, "/compute/v2.1/os-keypairs/") ||
	                                        str_has_prefix(p, "/network/v2.0/ports/"))) {
		size_t n = strlen(cl.deleted_extras);
		snprintf(cl.deleted_extras + n, sizeof(cl.deleted_extras) - n, "%s\n", p);
		answer(resp, 204, "{}");
	} else if (strcmp(p, "/compute/v2.1/servers") == 0 && strcmp(m, "POST") == 0) {
		str_copy(cl.last_server, req->body, sizeof(cl.last_server));
		if (cl.quota)
			answer(resp, 403,
			       "{\"forbidden\":{\"code\":403,\"message\":\"Quota exceeded "
			       "for instances: Requested 1, but already used 2 of 2\"}}");
		else
			answer(resp, 202, "{\"server\":{\"id\":\"new-1\",\"links\":[]}}");
	} else if (strcmp(p, "/compute/v2.1/servers/detail") == 0) {
		const char *marker = http_request_arg(req, "marker");
		const char *name = http_request_arg(req, "name");
		if (name && strchr(name, '$'))
			answer(resp, 200, "{\"servers\":[%s]}",
			       strcmp(name, "^ost-000000000001$") == 0
			               ? SRV("s1", "ost-000000000001", "ACTIVE")
			               : "");
		else if (!marker)
			answer(resp, 200,
			       "{\"servers\":[" SRV(
			               "s1", "ost-000000000001",
			               "ACTIVE") "],"
			                         "\"servers_links\":[{\"rel\":\"next\",\"href\":"
			                         "\"http://%s:%d/compute/"
			                         "v2.1/servers/detail?name=%%5Eost-&marker=s1\"}]}",
			       cl.evil_next ? "127.0.0.2" : "127.0.0.1", cl.port);
		else
			answer(resp, 200,
			       "{\"servers\":[" SRV("s2", "ost-000000000002", "ERROR") "," SRV(
			               "s3", "ost-east-000000000003", "ACTIVE") "]}");
	} else if (strcmp(p, "/compute/v2.1/servers/s1") == 0 && strcmp(m, "DELETE") == 0) {
		cl.deleted++;
		answer(resp, 204, "{}");
	} else if (strcmp(p, "/compute/v2.1/servers/s1") == 0) {
		/* in deletion for one poll, then gone */
		if (cl.gets_after_delete++ == 0)
			answer(resp, 200,
			       "{\"server\":" SRV("s1", "ost-000000000001", "ACTIVE") "}");
		else
			answer(resp, 404, "{\"itemNotFound\":{\"code\":404,\"message\":\"gone\"}}");
	} else {
		answer(resp, 404, "{\"itemNotFound\":{\"code\":404,\"message\":\"no %s %s\"}}", m,
		       p);
	}
out:
	pthread_mutex_unlock(&cl.lock);
}

static const struct http_route routes[] = {
        {"GET", "/*", h_all, 0},
        {"POST", "/*", h_all, 1 << 20},
        {"DELETE", "/*", h_all, 0},
};

static struct http_server *srv;
static char dir[] = "/tmp/runnerd-ostest.XXXXXX";
static char clouds[256];

/* A clouds.yaml at path whose cloud "t" authenticates at 127.0.0.1:port. */
static void write_clouds(const char *path, int port)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f,
	        "clouds:\n  t:\n    region_name: R1\n    auth:\n"
	        "      auth_url: http://127.0.0.1:%d/identity/v3\n"
	        "      username: u\n      password: pw-never-logged\n      project_name: p\n",
	        port);
	fclose(f);
}

static int setup(void **state)
{
	struct err e = {0};

	assert_int_equal(
	        http_server_start_tcp("127.0.0.1:0", routes, ARRAY_SIZE(routes), NULL, &srv, &e),
	        0);
	cl.port = http_server_port(srv);
	assert_non_null(mkdtemp(dir));
	snprintf(clouds, sizeof(clouds), "%s/clouds.yaml", dir);
	write_clouds(clouds, cl.port);
	return 0;
}

static int teardown(void **state)
{
	http_server_stop(srv);
	unlink(clouds);
	rmdir(dir);
	return 0;
}

static struct provider *open_os_in(const char *clouds_yaml, const char *key, const char *url,
                                   int64_t request_timeout)
{
	struct config_provider pc = {
	        .name = (char *)"os",
	        .type = (char *)"openstack",
	        .concurrency = 4,
	        .openstack =
	                {
	                        .clouds_yaml = (char *)clouds_yaml,
	                        .cloud = (char *)"t",
	                        .region = (char *)"",
	                        .interface = (char *)"public",
	                        .flavor = (char *)"m1.small",
	                        .network = (char *)"runners-net",
	                        .security_group = (char *)"",
	                        .ssh_key = (char *)key,
	                        .secret_url = (char *)url,
	                        .request_timeout = request_timeout,
	                },
	};
	struct provider *p = NULL;
	struct err e = {0};

	assert_int_equal(provider_open(&pc, "ost", &p, &e), 0);
	return p;
}

static struct provider *open_os_key(const char *key, const char *url)
{
	return open_os_in(clouds, key, url, 5);
}

static struct provider *open_os(void)
{
	return open_os_key("", "http://10.0.0.1:8080/");
}

static const struct config_flavor flavor = {.name = (char *)"small", .image = (char *)"runner-img"};

/* The user data of the last POST /servers, decoded. */
static char *last_user_data(void)
{
	static const char tab[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	json_t *j;
	const char *b64;
	char *out;
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	assert_int_equal(os_json(cl.last_server, strlen(cl.last_server), &j), 0);
	b64 = os_jstr(json_object_get(j, "server"), "user_data");
	assert_non_null(b64);
	out = calloc(1, strlen(b64) + 1);
	for (const char *c = b64; *c && *c != '='; c++) {
		acc = (acc << 6) | (uint32_t)(strchr(tab, *c) - tab);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	json_decref(j);
	return out;
}

static void test_create(void **state)
{
	struct provider *p = open_os();
	struct instance_spec spec = {.name = "ost-0123456789ab",
	                             .flavor = &flavor,
	                             .startup_script = "#!/bin/sh\necho hi\n",
	                             .secret_env = SECRET};
	struct instance in;
	struct err e = {0};
	struct buf b = BUF_INIT(0);
	char *ud, *url, token[HANDOFF_TOKEN_LEN + 1];
	json_t *j, *s;

	assert_int_equal(provider_create(p, &spec, &in, &e), 0);
	assert_string_equal(in.provider_id, "new-1");
	assert_int_equal(in.state, CLOUD_CREATED);
	assert_int_equal(cl.auths, 1);
	assert_int_equal(cl.sg_posts, 1);
	assert_int_equal(cl.rule_posts, 2);
	/* the body: ids resolved, metadata, the group; no secret anywhere */
	assert_null(strstr(cl.last_server, "very-secret-jit"));
	assert_int_equal(os_json(cl.last_server, strlen(cl.last_server), &j), 0);
	s = json_object_get(j, "server");
	assert_string_equal(os_jstr(s, "imageRef"), "i1");
	assert_string_equal(os_jstr(s, "flavorRef"), "f1");
	assert_string_equal(os_jstr(json_array_get(json_object_get(s, "networks"), 0), "uuid"),
	                    "n1");
	assert_string_equal(os_jstr(json_object_get(s, "metadata"), "runnerd-manager"), "ost");
	assert_string_equal(os_jstr(json_object_get(s, "metadata"), "runnerd-flavor"), "small");
	assert_null(json_object_get(s, "key_name"));
	json_decref(j);
	ud = last_user_data();
	assert_null(strstr(ud, "very-secret-jit"));
	assert_non_null(strstr(ud, "echo hi"));
	url = strstr(ud, "url='http://10.0.0.1:8080/v1/handoff/");
	assert_non_null(url);
	str_copy(token, url + strlen("url='http://10.0.0.1:8080/v1/handoff/"), sizeof(token));
	/* the hand-off gives the secrets once */
	assert_int_equal(handoff_take(token, &b), 0);
	assert_string_equal(buf_str(&b), SECRET);
	assert_int_equal(handoff_take(token, &b), -ENOENT);
	buf_release(&b);
	free(ud);

	/* a second create: nothing looked up again, no new token or group */
	spec.name = "ost-0123456789ac";
	assert_int_equal(provider_create(p, &spec, &in, &e), 0);
	assert_int_equal(cl.flavor_lists, 1);
	assert_int_equal(cl.auths, 1);
	assert_int_equal(cl.sg_posts, 1);
	ud = last_user_data();
	url = strstr(ud, "/v1/handoff/");
	str_copy(token, url + strlen("/v1/handoff/"), sizeof(token));
	free(ud);
	/* quota: reported as such; the secrets put for it are dropped */
	cl.quota = true;
	spec.name = "ost-0123456789ad";
	size_t waiting = handoff_count();
	assert_int_equal(provider_create(p, &spec, &in, &e), -EDQUOT);
	assert_non_null(strstr(e.msg, "quota exceeded"));
	assert_null(strstr(e.msg, "very-secret-jit"));
	assert_int_equal(handoff_count(), waiting);
	cl.quota = false;
	/* no secret_url: secrets cannot go, a create is refused */
	handoff_drop(token);
	provider_free(p);
}

static void test_list_pages_and_401(void **state)
{
	struct provider *p = open_os();
	struct instance_list l = {0};
	struct err e = {0};
	int auths;

	assert_int_equal(provider_list(p, &l, &e), 0);
	assert_int_equal(l.n, 2); /* ost-east-... is another manager's */
	assert_string_equal(l.v[0].name, "ost-000000000001");
	assert_int_equal(l.v[0].state, CLOUD_ACTIVE);
	assert_string_equal(l.v[1].name, "ost-000000000002");
	assert_int_equal(l.v[1].state, CLOUD_ERROR);
	/* the token revoked: one new token, the listing still whole */
	auths = cl.auths;
	cl.revoke = cl.auths;
	assert_int_equal(provider_list(p, &l, &e), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(cl.auths, auths + 1);
	/* a next link elsewhere: the listing fails, nothing half-used */
	cl.evil_next = true;
	assert_int_equal(provider_list(p, &l, &e), -EBADMSG);
	assert_non_null(strstr(e.msg, "not on the compute endpoint"));
	assert_int_equal(l.n, 2); /* untouched */
	cl.evil_next = false;
	instance_list_release(&l);
	provider_free(p);
}

static void test_delete(void **state)
{
	struct provider *p = open_os();
	struct err e = {0};

	assert_int_equal(provider_delete(p, "ost-000000000001", &e), 0);
	assert_int_equal(cl.deleted, 1);
	assert_int_equal(cl.gets_after_delete, 2); /* polled until 404 */
	/* a server that is not there: nothing to do, success */
	assert_int_equal(provider_delete(p, "ost-0000000000ff", &e), 0);
	assert_int_equal(cl.deleted, 1);
	provider_free(p);
}

/* Without secret_url, a create with secrets is refused before anything is made. */
static void test_no_secret_url(void **state)
{
	struct provider *p = open_os_key("", "");
	struct instance_spec spec = {.name = "ost-0123456789ae",
	                             .flavor = &flavor,
	                             .startup_script = "true\n",
	                             .secret_env = SECRET};
	struct instance in;
	struct err e = {0};

	cl.last_server[0] = '\0';
	assert_int_equal(provider_create(p, &spec, &in, &e), -ENOTSUP);
	assert_non_null(strstr(e.msg, "secret_url"));
	assert_string_equal(cl.last_server, "");
	provider_free(p);
}

/* ssh_key: a key pair per server; gc removes only leftovers that are ours. */
static void test_keypair_and_gc(void **state)
{
	char key[300];
	FILE *f;
	struct provider *p;
	struct instance_spec spec = {
	        .name = "ost-0123456789af", .flavor = &flavor, .startup_script = "true\n"};
	struct instance in;
	struct err e = {0};

	snprintf(key, sizeof(key), "%s/id.pub", dir);
	f = fopen(key, "w");
	assert_non_null(f);
	fputs("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG3 runner@test\n", f);
	fclose(f);
	p = open_os_key(key, "");
	assert_int_equal(provider_create(p, &spec, &in, &e), 0);
	assert_non_null(strstr(cl.keypair_post, "\"name\":\"ost-0123456789af\""));
	assert_non_null(
	        strstr(cl.keypair_post,
	               "\"public_key\":\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG3 runner@test\""));
	assert_non_null(strstr(cl.last_server, "\"key_name\":\"ost-0123456789af\""));
	cl.deleted_extras[0] = '\0';
	assert_int_equal(provider_gc(p, &e), 0);
	/* servers ost-...01 and ...02 exist: their key pair and port stay */
	assert_string_equal(cl.deleted_extras, "/compute/v2.1/os-keypairs/ost-00000000000e\n"
	                                       "/network/v2.0/ports/p1\n");
	provider_free(p);
	unlink(key);
}

/*
 * gc told the config: a group runnerd made that no openstack provider of it
 * uses goes (one a port holds stays, quietly); its own, a peer's, one made
 * by hand and another manager's stay. Not told: no group goes.
 */
static void test_gc_groups(void **state)
{
	struct config_provider peers[3] = {
	        {.name = (char *)"os", .type = (char *)"openstack"},
	        {.name = (char *)"os-large",
	         .type = (char *)"openstack",
	         .openstack = {.security_group = (char *)"ost-large"}},
	        {.name = (char *)"local", .type = (char *)"local"},
	};
	struct provider *p = open_os();
	struct err e = {0};

	(void)state;
	cl.groups = true;
	cl.deleted_extras[0] = '\0';
	assert_int_equal(provider_gc(p, &e), 0);
	assert_null(strstr(cl.deleted_extras, "security-groups"));
	cl.deleted_extras[0] = '\0';
	assert_int_equal(provider_gc_peers(p, peers, ARRAY_SIZE(peers), &e), 0);
	assert_string_equal(cl.deleted_extras,
	                    "/network/v2.0/ports/p1\n/network/v2.0/security-groups/gold\n");
	/* the peer gone from the config: its group goes too */
	cl.deleted_extras[0] = '\0';
	assert_int_equal(provider_gc_peers(p, peers, 1, &e), 0);
	assert_string_equal(cl.deleted_extras, "/network/v2.0/ports/p1\n"
	                                       "/network/v2.0/security-groups/gold\n"
	                                       "/network/v2.0/security-groups/glarge\n");
	cl.groups = false;
	provider_free(p);
}

/* Creates at once make one security group, not one each. */
static void *create_one(void *arg)
{
	struct provider *p = arg;
	static atomic_int n;
	char name[32];
	struct instance_spec spec = {.flavor = &flavor, .startup_script = "true\n"};
	struct instance in;
	struct err e = {0};

	snprintf(name, sizeof(name), "ost-00000000010%d", atomic_fetch_add(&n, 1));
	spec.name = name;
	return (void *)(intptr_t)provider_create(p, &spec, &in, &e);
}

static void test_parallel_creates_one_group(void **state)
{
	struct provider *p = open_os_key("", "");
	pthread_t t[4];
	void *rc;

	pthread_mutex_lock(&cl.lock);
	cl.sg_exists = false;
	cl.sg_posts = 0;
	pthread_mutex_unlock(&cl.lock);
	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		assert_int_equal(pthread_create(&t[i], NULL, create_one, p), 0);
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		assert_int_equal(pthread_join(t[i], &rc), 0);
		assert_int_equal((intptr_t)rc, 0);
	}
	assert_int_equal(cl.sg_posts, 1);
	provider_free(p);
}

/*
 * docs/deadlines.md, "OpenStack API requests": each request ends at
 * request_timeout (here 1 s) whoever holds it: a Keystone that accepts
 * connections and never answers, a Nova that answers a listing or a POST
 * /servers too late. A create whose POST got no answer says the server may
 * remain (the manager deletes it by name) and keeps its hand-off, which
 * the server may yet fetch until its time to live ends.
 */
static void test_silent_cloud(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	struct instance_spec spec = {.name = "ost-00000000babe",
	                             .flavor = &flavor,
	                             .startup_script = "#!/bin/sh\necho hi\n",
	                             .secret_env = SECRET};
	struct instance_list l = {0};
	struct instance in;
	struct err e = {0};
	char silent_yaml[300];
	struct provider *p;
	int64_t t0, took;
	size_t waiting;
	int ls, r;

	/* Keystone silent: the kernel accepts the connection, nobody reads it */
	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(ls >= 0);
	assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(ls, 16), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
	snprintf(silent_yaml, sizeof(silent_yaml), "%s/silent.yaml", dir);
	write_clouds(silent_yaml, ntohs(a.sin_port));
	p = open_os_in(silent_yaml, "", "http://10.0.0.1:8080/", 1);
	t0 = clock_mono_ms();
	r = provider_list(p, &l, &e);
	took = clock_mono_ms() - t0;
	assert_int_equal(r, -ETIMEDOUT);
	assert_true(took >= 900 && took < 2500);
	assert_null(strstr(e.msg, "pw-never-logged"));
	provider_free(p);
	close(ls);
	unlink(silent_yaml);

	/* Nova silent on a listing */
	p = open_os_in(clouds, "", "http://10.0.0.1:8080/", 1);
	str_copy(cl.stall, "GET /compute/v2.1/servers/detail", sizeof(cl.stall));
	t0 = clock_mono_ms();
	r = provider_list(p, &l, &e);
	took = clock_mono_ms() - t0;
	assert_int_equal(r, -ETIMEDOUT);
	assert_true(took >= 900 && took < 2500);

	/* Nova silent on POST /servers: may remain, the hand-off kept for the server */
	str_copy(cl.stall, "POST /compute/v2.1/servers", sizeof(cl.stall));
	cl.quota = false;
	waiting = handoff_count();
	t0 = clock_mono_ms();
	r = provider_create(p, &spec, &in, &e);
	took = clock_mono_ms() - t0;
	assert_int_equal(r, PROVIDER_EMAYREMAIN);
	assert_non_null(strstr(e.msg, "may remain"));
	assert_true(took >= 900 && took < 2500);
	assert_int_equal(handoff_count(), waiting + 1);
	cl.stall[0] = '\0';
	provider_free(p);
	clock_sleep_ms(STALL_MS); /* the stalled handlers end before the server stops */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_create),
	        cmocka_unit_test(test_list_pages_and_401),
	        cmocka_unit_test(test_delete),
	        cmocka_unit_test(test_no_secret_url),
	        cmocka_unit_test(test_keypair_and_gc),
	        cmocka_unit_test(test_gc_groups),
	        cmocka_unit_test(test_parallel_creates_one_group),
	        cmocka_unit_test(test_silent_cloud),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
