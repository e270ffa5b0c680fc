/*
 * The lxd provider against a real LXD (driven by test_lxd_provider, which
 * makes the project, the network and the image): create with both
 * bootstraps, what landed in the instance (files, modes, config keys,
 * devices), where the secret went (every request is traced), list
 * filtering, get/health/pull_file/list_files, delete, the denylist ACL,
 * listings that fail (wrong socket, a fake LXD that answers garbage),
 * waits held to the call's deadline and ended by its cancel flag, and two
 * providers of one manager on two projects.
 * Every check prints "ok" or "FAIL"; the last line is "N passed, N failed".
 *
 * Env: LXD_SOCKET, LXD_TEST_PROJECT, LXD_TEST_PROJECT2 (a second project,
 * for two providers of one manager), LXD_TEST_POOL, LXD_TEST_NETWORK (a
 * bridge of this test only: the ACL cases change it), LXD_TEST_IMAGE (the
 * busybox image's alias in both projects), LXD_TEST_MANAGER.
 */
#include "util/common.h"
#include "testlib.h"
#include "util/clock.h"
#include "util/httpc.h"
#include "util/strutil.h"
#include "provider/provider.h"
#include "provider/lxd.h"

#include <jansson.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

#define SECRET   "ACTIONS_RUNNER_INPUT_JITCONFIG='s3cr3t-jit-4f1d9c'"
#define SECRET_V "s3cr3t-jit-4f1d9c"
#define MiB      (1024 * 1024)

static const char *sock, *project, *pool, *network, *image, *manager;
static struct httpc *raw;

/* ---- the trace of every request the provider sends ----------------- */

struct traced {
	char method[8];
	char *url;
	char *body;
	size_t len;
};

static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static struct traced *trace_v;
static size_t trace_n, trace_cap;

static void trace_fn(void *arg, const char *method, const char *url, const void *body, size_t len)
{
	pthread_mutex_lock(&trace_lock);
	if (trace_n == trace_cap) {
		size_t ncap = trace_cap ? trace_cap * 2 : 64;
		struct traced *v = realloc(trace_v, ncap * sizeof(*v));
		if (!v)
			abort();
		trace_v = v;
		trace_cap = ncap;
	}
	struct traced *t = &trace_v[trace_n++];
	str_copy(t->method, method, sizeof(t->method));
	t->url = strdup(url);
	t->body = malloc(len + 1);
	if (!t->url || !t->body)
		abort();
	memcpy(t->body, body ? body : "", len);
	t->body[len] = '\0';
	t->len = len;
	pthread_mutex_unlock(&trace_lock);
}

static void trace_clear(void)
{
	pthread_mutex_lock(&trace_lock);
	for (size_t i = 0; i < trace_n; i++) {
		free(trace_v[i].url);
		free(trace_v[i].body);
	}
	trace_n = 0;
	pthread_mutex_unlock(&trace_lock);
}

/* ---- the raw API, to look behind the provider's back ---------------- */

static long api(const char *method, const char *path, const char *body, json_t **ret,
                struct httpc_response *ret_resp)
{
	static const char *const want[] = {"X-LXD-type", "X-LXD-mode", "X-LXD-uid", "X-LXD-gid",
	                                   NULL};
	static const char *const json_hdr[] = {"Content-Type: application/json", NULL};
	char url[4096];
	struct httpc_response resp = {0};
	struct err e = {0};
	long st;

	snprintf(url, sizeof(url), "http://lxd%s%sproject=%s", path, strchr(path, '?') ? "&" : "?",
	         project);
	struct httpc_request req = {.method = method,
	                            .url = url,
	                            .unix_socket = sock,
	                            .headers = body ? json_hdr : NULL,
	                            .body = body,
	                            .body_len = body ? strlen(body) : 0,
	                            .timeout_ms = 60000,
	                            .max_body = 16 * MiB,
	                            .want_headers = want};
	if (httpc_perform(raw, &req, &resp, &e) < 0) {
		printf("# api %s %s: %s\n", method, path, e.msg);
		return -1;
	}
	st = resp.status;
	if (ret) {
		json_error_t je;
		*ret = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &je);
	}
	if (ret_resp)
		*ret_resp = resp;
	else
		httpc_response_release(&resp);
	return st;
}

/* Wait for the operation an async answer started; its final object (new reference). */
static json_t *api_wait(json_t *ans)
{
	const char *op = json_string_value(json_object_get(ans, "operation"));
	char path[256];
	json_t *w = NULL, *meta;

	if (!op || !*op)
		return NULL;
	snprintf(path, sizeof(path), "%s/wait?timeout=60", op);
	if (api("GET", path, NULL, &w, NULL) != 200) {
		json_decref(w);
		return NULL;
	}
	meta = json_incref(json_object_get(w, "metadata"));
	json_decref(w);
	return meta;
}

/* POST/PUT/DELETE that starts an operation; true when it succeeded. */
static bool api_op(const char *method, const char *path, const char *body)
{
	json_t *ans = NULL, *op;
	long st = api(method, path, body, &ans, NULL);
	bool ok = false;

	if (st >= 200 && st < 300 && (op = api_wait(ans))) {
		ok = json_integer_value(json_object_get(op, "status_code")) == 200;
		if (!ok)
			printf("# %s %s: %s\n", method, path,
			       json_string_value(json_object_get(op, "err")));
		json_decref(op);
	} else {
		printf("# %s %s: HTTP %ld\n", method, path, st);
	}
	json_decref(ans);
	return ok;
}

/* A request whose answer is sync or starts an operation; true when it succeeded. */
static bool api_do(const char *method, const char *path, const char *body)
{
	json_t *ans = NULL, *op;
	long st = api(method, path, body, &ans, NULL);
	bool ok = st >= 200 && st < 300;

	if (ok && json_string_value(json_object_get(ans, "operation")) &&
	    *json_string_value(json_object_get(ans, "operation"))) {
		op = api_wait(ans);
		ok = op && json_integer_value(json_object_get(op, "status_code")) == 200;
		json_decref(op);
	}
	if (!ok)
		printf("# %s %s: HTTP %ld\n", method, path, st);
	json_decref(ans);
	return ok;
}

/* Run a command in an instance; its exit status, -1 when it could not run. */
static int api_exec(const char *name, const char *cmd)
{
	char path[256];
	json_t *body = json_pack("{s:[s,s,s], s:b, s:b, s:b}", "command", "/bin/sh", "-c", cmd,
	                         "wait-for-websocket", 0, "interactive", 0, "record-output", 0);
	char *s = json_dumps(body, JSON_COMPACT);
	json_t *ans = NULL, *op = NULL;
	int rc = -1;

	snprintf(path, sizeof(path), "/1.0/instances/%s/exec", name);
	if (api("POST", path, s, &ans, NULL) == 202 && (op = api_wait(ans)) &&
	    json_is_integer(json_object_get(json_object_get(op, "metadata"), "return")))
		rc = (int)json_integer_value(
		        json_object_get(json_object_get(op, "metadata"), "return"));
	json_decref(op);
	json_decref(ans);
	json_decref(body);
	free(s);
	return rc;
}

/* GET /1.0/instances/NAME: its metadata (new reference) or NULL when missing. */
static json_t *api_instance(const char *name)
{
	char path[256];
	json_t *ans = NULL, *meta = NULL;

	snprintf(path, sizeof(path), "/1.0/instances/%s", name);
	if (api("GET", path, NULL, &ans, NULL) == 200)
		meta = json_incref(json_object_get(ans, "metadata"));
	json_decref(ans);
	return meta;
}

static bool instance_exists(const char *name)
{
	json_t *m = api_instance(name);
	json_decref(m);
	return m != NULL;
}

/* A file read through the API: body, mode, uid; false when it cannot be read. */
static bool api_file(const char *name, const char *fpath, struct buf *ret, char *mode, size_t mcap,
                     char *uid, size_t ucap, char *type, size_t tcap)
{
	char path[1024];
	struct httpc_response resp = {0};
	const char *v;

	snprintf(path, sizeof(path), "/1.0/instances/%s/files?path=%s", name, fpath);
	if (api("GET", path, NULL, NULL, &resp) != 200) {
		httpc_response_release(&resp);
		return false;
	}
	v = httpc_response_header(&resp, "X-LXD-mode");
	str_copy(mode, v ? v : "", mcap);
	v = httpc_response_header(&resp, "X-LXD-uid");
	str_copy(uid, v ? v : "", ucap);
	v = httpc_response_header(&resp, "X-LXD-type");
	str_copy(type, v ? v : "", tcap);
	buf_release(ret);
	*ret = resp.body;
	resp.body.data = NULL;
	httpc_response_release(&resp);
	return true;
}

/* Network config value (malloc'ed, NULL when unset). */
static char *net_key(const char *net, const char *key)
{
	char path[256];
	json_t *ans = NULL;
	char *v = NULL;
	const char *s;

	snprintf(path, sizeof(path), "/1.0/networks/%s", net);
	if (api("GET", path, NULL, &ans, NULL) == 200 &&
	    (s = json_string_value(json_object_get(
	             json_object_get(json_object_get(ans, "metadata"), "config"), key))))
		v = strdup(s);
	json_decref(ans);
	return v;
}

static bool net_key_is(const char *net, const char *key, const char *want)
{
	char *v = net_key(net, key);
	bool ok = want ? v && strcmp(v, want) == 0 : v == NULL;
	if (!ok)
		printf("# network %s: %s = %s (want %s)\n", net, key, v ? v : "(unset)",
		       want ? want : "(unset)");
	free(v);
	return ok;
}

/* The egress destinations of an ACL, comma-joined; "" when missing, "-" on odd rules. */
static void acl_egress(const char *acl, char *out, size_t cap)
{
	char path[256];
	json_t *ans = NULL, *eg, *r;
	size_t i;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/1.0/network-acls/%s", acl);
	if (api("GET", path, NULL, &ans, NULL) != 200) {
		json_decref(ans);
		return;
	}
	eg = json_object_get(json_object_get(ans, "metadata"), "egress");
	json_array_foreach(eg, i, r)
	{
		const char *d = json_string_value(json_object_get(r, "destination"));
		const char *a = json_string_value(json_object_get(r, "action"));
		const char *s = json_string_value(json_object_get(r, "state"));
		size_t n = strlen(out);
		if (!d || !a || !s || strcmp(a, "reject") != 0 || strcmp(s, "enabled") != 0) {
			str_copy(out, "-", cap);
			break;
		}
		snprintf(out + n, cap - n, "%s%s", n ? "," : "", d);
	}
	json_decref(ans);
}

static bool acl_exists(const char *acl)
{
	char path[256];
	snprintf(path, sizeof(path), "/1.0/network-acls/%s", acl);
	return api("GET", path, NULL, NULL, NULL) == 200;
}

/* ---- fixtures ------------------------------------------------------- */

static struct config_flavor flavor = {
        .name = "small",
        .provider = "lxd",
        .resources = {.vcpu = 1, .memory = 256 * MiB, .disk = 1024 * MiB},
};

static char *profiles_default[] = {"default"};

/* providers.lxd as the config table would fill it, on the test LXD. */
static void config_init(struct config_provider *c, enum lxd_bootstrap b)
{
	memset(c, 0, sizeof(*c));
	c->name = (char *)"lxd";
	c->type = (char *)"lxd";
	c->concurrency = 10;
	c->lxd.socket = (char *)sock;
	c->lxd.project = (char *)project;
	c->lxd.network = (char *)network;
	c->lxd.storage_pool = (char *)pool;
	c->lxd.profiles.v = profiles_default;
	c->lxd.profiles.n = 1;
	c->lxd.type = LXD_CONTAINER;
	c->lxd.bootstrap = b;
	c->lxd.stop_timeout = 2;
	c->lxd.operation_timeout = 60;
}

static int set_denylist(struct provider *p, const struct strv *deny, struct err *e)
{
	return provider_policy(p, &(struct provider_policy){.denylist = deny}, e);
}

/*
 * Open the provider pc describes for mgr, as the manager does: then its
 * knobs (opts, may be NULL) and the policy (deny, may be NULL: none; a
 * policy that cannot be applied now is remembered, not a failure).
 */
static int open_lxd(const struct config_provider *pc, const char *mgr, const struct lxd_opts *opts,
                    const struct strv *deny, struct provider **ret, struct err *e)
{
	struct provider *p = NULL;
	int r = provider_open(pc, mgr, &p, e);

	if (r < 0)
		return r;
	if (opts)
		lxd_set_opts(p, opts);
	(void)set_denylist(p, deny, NULL);
	*ret = p;
	return 0;
}

static void name_make(char *out, size_t cap, const char *mgr, unsigned n)
{
	snprintf(out, cap, "%s-%04x%08x", mgr, (unsigned)getpid() & 0xffff, n);
}

/* What the test instances run: a fake runner, metrics, logs, a symlink, a big file. */
static const char script_main[] =
        "#!/bin/sh\n"
        "h=/opt/runnerd\n"
        "mkdir -p $h/metrics $h/_diag/sub $h/bin\n"
        "printf '{\"ok\":true}' > $h/metrics/pre-job-metrics.json\n"
        "ln -s /etc/passwd $h/metrics/leak\n"
        "head -c 5000 /dev/zero > $h/metrics/big\n"
        "printf one > $h/_diag/Runner_1.log\n"
        "printf two > $h/_diag/Worker_2.log\n"
        "ln -s /etc/passwd $h/_diag/leak.log\n"
        "printf '#!/bin/sh\\nwhile :; do sleep 1; done\\n' > $h/bin/Runner.Listener\n"
        "echo started > $h/started\n"
        "exec sh $h/bin/Runner.Listener\n";

/* Powers off, leaving files of every kind behind for the reads of a stopped instance. */
static const char script_poweroff[] = "#!/bin/sh\n"
                                      "m=/opt/runnerd/m2\n"
                                      "mkdir -p $m/d\n"
                                      "printf data > $m/reg\n"
                                      ": > $m/empty\n"
                                      "mkfifo $m/fifo\n"
                                      "ln -s /etc/passwd $m/lnk\n"
                                      "echo started > /opt/runnerd/started\n"
                                      "sleep 1\n"
                                      "poweroff 2>/dev/null || halt 2>/dev/null || kill -USR2 1\n";

static void spec_init(struct instance_spec *s, const char *name, const char *script,
                      const char *secret)
{
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->flavor = &flavor;
	s->startup_script = script;
	s->secret_env = secret;
}

static bool wait_pull(struct provider *p, const char *name, const char *path, long ms)
{
	int64_t end = clock_mono_ms() + ms;
	while (clock_mono_ms() < end) {
		struct buf b = BUF_INIT(4096);
		int r = provider_pull_file(p, name, path, 4096, &b, NULL);
		buf_release(&b);
		if (r == 0)
			return true;
		clock_sleep_ms(100);
	}
	return false;
}

static const struct instance *list_find(const struct instance_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

static const struct provider_list_query all_files = {.max = PROVIDER_LIST_FILES_MAX};

static bool listed(const struct provider_file_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return true;
	return false;
}

/* ---- cases ---------------------------------------------------------- */

static void test_create_exec(struct provider *p, const char *a)
{
	struct instance_spec s;
	struct instance in = {0};
	struct instance_list l = {0};
	struct buf b = BUF_INIT(0);
	struct err e = {0};
	char mode[16], uid[16], type[16];
	time_t t0 = time(NULL);
	json_t *m;
	int r;

	trace_clear();
	spec_init(&s, a, script_main, SECRET "\n");
	int64_t c0 = clock_mono_ms();
	r = provider_create(p, &s, &in, &e);
	EXPECTF(r == 0 && in.state == CLOUD_ACTIVE && strcmp(in.name, a) == 0,
	        "create (exec bootstrap) -> active (%d %s, %" PRId64 " ms)", r, e.msg,
	        clock_mono_ms() - c0);

	r = provider_list(p, &l, &e);
	const struct instance *li = r == 0 ? list_find(&l, a) : NULL;
	EXPECTF(li && li->state == CLOUD_ACTIVE && strcmp(li->flavor, "small") == 0 &&
	                strcmp(li->provider_id, a) == 0 && li->created_at >= t0 - 5 &&
	                li->created_at <= time(NULL) + 5,
	        "list shows it active, flavor small, created_at now (%d %s)", r, e.msg);
	instance_list_release(&l);

	m = api_instance(a);
	json_t *cfg = json_object_get(m, "config"), *dev = json_object_get(m, "devices");
	json_t *root = json_object_get(dev, "root"), *nic = json_object_get(dev, "eth0");
	const char *k_mgr = json_string_value(json_object_get(cfg, "user.runnerd.manager"));
	const char *k_fl = json_string_value(json_object_get(cfg, "user.runnerd.flavor"));
	EXPECTF(k_mgr && strcmp(k_mgr, manager) == 0 && k_fl && strcmp(k_fl, "small") == 0,
	        "config keys user.runnerd.manager and user.runnerd.flavor");
	EXPECTF(str_eq(json_string_value(json_object_get(cfg, "limits.cpu")), "1") &&
	                str_eq(json_string_value(json_object_get(cfg, "limits.memory")),
	                       "268435456"),
	        "limits.cpu and limits.memory (bytes)");
	EXPECTF(str_eq(json_string_value(json_object_get(root, "type")), "disk") &&
	                str_eq(json_string_value(json_object_get(root, "path")), "/") &&
	                str_eq(json_string_value(json_object_get(root, "pool")), pool) &&
	                str_eq(json_string_value(json_object_get(root, "size")), "1073741824"),
	        "root disk on the pool with its size");
	EXPECTF(str_eq(json_string_value(json_object_get(nic, "type")), "nic") &&
	                str_eq(json_string_value(json_object_get(nic, "network")), network),
	        "eth0 on the configured network");
	EXPECTF(str_eq(json_string_value(json_object_get(m, "type")), "container") &&
	                json_array_size(json_object_get(m, "profiles")) == 1 &&
	                str_eq(json_string_value(json_array_get(json_object_get(m, "profiles"), 0)),
	                       "default"),
	        "type container, profiles [default]");
	EXPECTF(!json_object_get(cfg, "cloud-init.user-data") &&
	                !json_object_get(cfg, "user.user-data"),
	        "exec bootstrap: no cloud-init user data");
	char *dump = json_dumps(m, 0);
	EXPECTF(dump && !strstr(dump, SECRET_V), "the secret is in no config key or device");
	free(dump);
	json_decref(m);

	EXPECTF(wait_pull(p, a, "started", 10000), "the startup script ran (detached exec)");
	EXPECTF(api_file(a, "/opt/runnerd/startup.sh", &b, mode, sizeof(mode), uid, sizeof(uid),
	                 type, sizeof(type)) &&
	                b.len == strlen(script_main) && memcmp(b.data, script_main, b.len) == 0 &&
	                strcmp(mode, "0700") == 0 && strcmp(uid, "0") == 0,
	        "startup.sh pushed: content, mode 0700, owner root (mode %s uid %s, %zu bytes)",
	        mode, uid, b.len);
	EXPECTF(api_file(a, "/opt/runnerd/secret.env", &b, mode, sizeof(mode), uid, sizeof(uid),
	                 type, sizeof(type)) &&
	                strcmp(buf_str(&b), SECRET "\n") == 0 && strcmp(mode, "0600") == 0 &&
	                strcmp(uid, "0") == 0,
	        "secret.env pushed: content, mode 0600, owner root (mode %s uid %s, %zu bytes)",
	        mode, uid, b.len);
	EXPECTF(api_file(a, "/opt/runnerd/startup.log", &b, mode, sizeof(mode), uid, sizeof(uid),
	                 type, sizeof(type)) &&
	                strcmp(type, "file") == 0,
	        "startup.log written by the detached launch");
	buf_release(&b);

	/* where the secret went: one request body, the push of secret.env */
	size_t with_secret = 0, execs = 0, bad = 0, no_project = 0;
	char want_project[128];
	snprintf(want_project, sizeof(want_project), "project=%s", project);
	pthread_mutex_lock(&trace_lock);
	for (size_t i = 0; i < trace_n; i++) {
		const char *q = strstr(trace_v[i].url, want_project);
		if (!q || (q[strlen(want_project)] != '\0' && q[strlen(want_project)] != '&'))
			no_project++;
		bool push = strcmp(trace_v[i].method, "POST") == 0 &&
		            strstr(trace_v[i].url, "/files?path=/opt/runnerd/secret.env&");
		if (strstr(trace_v[i].url, "/exec?"))
			execs++;
		if (strstr(trace_v[i].url, SECRET_V))
			bad++;
		if (memmem(trace_v[i].body, trace_v[i].len, SECRET_V, strlen(SECRET_V))) {
			with_secret++;
			if (!push)
				bad++;
		}
	}
	size_t n_req = trace_n;
	pthread_mutex_unlock(&trace_lock);
	EXPECTF(with_secret == 1 && bad == 0 && execs >= 2,
	        "the secret travels only in the secret.env push (%zu requests, %zu execs, %zu with "
	        "it, "
	        "%zu elsewhere)",
	        n_req, execs, with_secret, bad);
	EXPECTF(no_project == 0, "every request names the project (%zu do not)", no_project);

	struct instance again = {0};
	r = provider_create(p, &s, &again, &e);
	EXPECTF(r == -EEXIST && again.name[0] == '\0' && provider_get(p, a, &in, NULL) == 0 &&
	                in.state == CLOUD_ACTIVE,
	        "a second create of the name: -EEXIST, the first left alone (%d %s)", r, e.msg);
}

static void test_list_filters(struct provider *p, const char *a)
{
	char east[80], nokey[80], other[80], body[1024];
	struct instance_list l = {0};
	struct instance in;
	struct err e = {0};
	bool made = true;
	int r;

	snprintf(east, sizeof(east), "%s-east-%04x00000001", manager, (unsigned)getpid() & 0xffff);
	name_make(nokey, sizeof(nokey), manager, 0x77);
	name_make(other, sizeof(other), manager, 0x78);
	const char *names[] = {east, nokey, other};
	const char *owners[] = {NULL, NULL, "someone-else"};
	char east_mgr[64];
	snprintf(east_mgr, sizeof(east_mgr), "%s-east", manager);
	owners[0] = east_mgr;
	for (size_t i = 0; i < 3; i++) {
		if (owners[i])
			snprintf(
			        body, sizeof(body),
			        "{\"name\":\"%s\",\"source\":{\"type\":\"image\",\"alias\":\"%s\"},"
			        "\"config\":{\"user.runnerd.manager\":\"%s\"},\"devices\":{"
			        "\"eth0\":{"
			        "\"type\":\"nic\",\"network\":\"%s\"}}}",
			        names[i], image, owners[i], network);
		else
			snprintf(
			        body, sizeof(body),
			        "{\"name\":\"%s\",\"source\":{\"type\":\"image\",\"alias\":\"%s\"},"
			        "\"devices\":{\"eth0\":{\"type\":\"nic\",\"network\":\"%s\"}}}",
			        names[i], image, network);
		made = api_op("POST", "/1.0/instances", body) && made;
	}
	EXPECTF(made, "made foreign instances behind the provider's back");

	/* a sentinel: a failed list must leave it alone, a good one replace it */
	r = provider_list(p, &l, &e);
	EXPECTF(r == 0 && l.n == 1 && list_find(&l, a),
	        "list(%s) ignores %s, and instances without our user.runnerd.manager (%d, %zu "
	        "listed)",
	        manager, east, r, l.n);
	instance_list_release(&l);
	{
		struct config_provider pc;
		struct provider *pe = NULL;
		config_init(&pc, LXD_BOOTSTRAP_EXEC);
		r = open_lxd(&pc, east_mgr, NULL, NULL, &pe, &e);
		if (r == 0)
			r = provider_list(pe, &l, &e);
		EXPECTF(r == 0 && l.n == 1 && list_find(&l, east), "list(%s) finds only its own",
		        east_mgr);
		instance_list_release(&l);
		provider_free(pe);
	}

	r = provider_get(p, nokey, &in, &e);
	EXPECTF(r == -ENOENT, "get of an instance without our key: -ENOENT (%d)", r);
	r = provider_delete(p, nokey, &e);
	EXPECTF(r == -EPERM && instance_exists(nokey),
	        "delete refuses an instance without our key (%d %s)", r, e.msg);
	r = provider_delete(p, other, &e);
	EXPECTF(r == -EPERM && instance_exists(other),
	        "delete refuses another manager's instance (%d)", r);
	r = provider_delete(p, east, &e);
	EXPECTF(r == -EINVAL && instance_exists(east),
	        "the front refuses %s, not a name of %s, before LXD is asked (%d)", east, manager,
	        r);
	for (size_t i = 0; i < 3; i++) {
		char path[128];
		snprintf(path, sizeof(path), "/1.0/instances/%s", names[i]);
		api_op("DELETE", path, NULL);
	}
}

static void test_health(struct provider *p, const char *a)
{
	enum health h = HEALTH_UNKNOWN;
	struct instance in;
	struct err e = {0};
	char missing[80];
	int r;

	r = provider_get(p, a, &in, &e);
	EXPECTF(r == 0 && in.state == CLOUD_ACTIVE && strcmp(in.flavor, "small") == 0,
	        "get: active (%d)", r);
	name_make(missing, sizeof(missing), manager, 0xdead);
	r = provider_get(p, missing, &in, &e);
	EXPECTF(r == -ENOENT, "get of a missing instance: -ENOENT (%d)", r);

	r = provider_health(p, a, &h, &e);
	EXPECTF(r == 0 && h == HEALTH_HEALTHY, "health: runner process seen -> healthy (%d %s)", r,
	        health_name(h));
	EXPECTF(api_exec(a, "for d in /proc/[0-9]*; do grep -qs '[R]unner.Listener' $d/cmdline && "
	                    "kill ${d#/proc/}; done; sleep 0.3; ! grep -qs '[R]unner.Listener' "
	                    "/proc/[0-9]*/cmdline") == 0,
	        "stopped the fake runner");
	r = provider_health(p, a, &h, &e);
	EXPECTF(r == 0 && h == HEALTH_UNKNOWN,
	        "health: no runner, not installed yet -> unknown (%d %s)", r, health_name(h));
	EXPECTF(api_exec(a, "touch /opt/runnerd/metrics/runner-installed.timestamp") == 0,
	        "marked the runner installed");
	r = provider_health(p, a, &h, &e);
	EXPECTF(r == 0 && h == HEALTH_UNHEALTHY,
	        "health: installed runner gone -> unhealthy (%d %s)", r, health_name(h));
	r = provider_health(p, missing, &h, &e);
	EXPECTF(r == 0 && h == HEALTH_UNKNOWN,
	        "health of a missing instance: unknown, no error (%d)", r);
}

static void test_pull(struct provider *p, const char *a)
{
	struct buf b = BUF_INIT(0);
	struct provider_file_list v = {0};
	struct err e = {0};
	int r;

	r = provider_pull_file(p, a, "metrics/pre-job-metrics.json", 1024, &b, &e);
	EXPECTF(r == 0 && strcmp(buf_str(&b), "{\"ok\":true}") == 0,
	        "pull_file relative to /opt/runnerd (%d %s)", r, e.msg);
	buf_release(&b);
	r = provider_pull_file(p, a, "/opt/runnerd/metrics/pre-job-metrics.json", 1024, &b, &e);
	EXPECTF(r == 0 && b.len == 11, "pull_file with an absolute path (%d)", r);
	buf_release(&b);
	r = provider_pull_file(p, a, "metrics/big", 5000, &b, &e);
	EXPECTF(r == 0 && b.len == 5000, "pull_file of exactly max_bytes (%d, %zu)", r, b.len);
	buf_release(&b);
	r = provider_pull_file(p, a, "metrics/big", 4999, &b, &e);
	EXPECTF(r == -E2BIG && !b.data, "pull_file over max_bytes: -E2BIG, ret untouched (%d %s)",
	        r, e.msg);
	r = provider_pull_file(p, a, "metrics/leak", 1 << 20, &b, &e);
	EXPECTF(r == -EINVAL && !b.data, "pull_file refuses a symlink (%d %s)", r, e.msg);
	r = provider_pull_file(p, a, "metrics", 1 << 20, &b, &e);
	EXPECTF(r == -EINVAL && !b.data, "pull_file refuses a directory (%d %s)", r, e.msg);
	r = provider_pull_file(p, a, "metrics/missing.json", 1024, &b, &e);
	EXPECTF(r == -ENOENT, "pull_file of a missing file: -ENOENT (%d %s)", r, e.msg);
	r = provider_pull_file(p, a, "../../etc/passwd", 1 << 20, &b, &e);
	int r2 = provider_pull_file(p, a, "/opt/runnerd/metrics/../../../etc/passwd", 1 << 20, &b,
	                            &e);
	int r3 = provider_pull_file(p, a, "", 1024, &b, &e);
	EXPECTF(r == -EINVAL && r2 == -EINVAL && r3 == -EINVAL && !b.data,
	        "pull_file refuses '..' and '' (%d %d %d)", r, r2, r3);

	/*
	 * What LXD 5.0's files API calls "file" though it is none, and blocks
	 * on (a FIFO wedges LXD's file server for good): a FIFO, a unix socket
	 * (a proxy device's), a device node (a unix-char device), next to
	 * names with a space and a newline.
	 */
	char path[256], body[1024];
	snprintf(path, sizeof(path), "/1.0/instances/%s", a);
	snprintf(body, sizeof(body),
	         "{\"devices\":{\"rdsock\":{\"type\":\"proxy\",\"bind\":\"instance\","
	         "\"listen\":\"unix:/opt/runnerd/_diag/sock.log\",\"connect\":\"tcp:127.0.0.1:9\"},"
	         "\"rdzero\":{\"type\":\"unix-char\",\"source\":\"/dev/zero\","
	         "\"path\":\"/opt/runnerd/_diag/zero.log\"}}}");
	bool dev = api_do("PATCH", path, body);
	EXPECTF(api_exec(
	                a,
	                "cd /opt/runnerd && mkfifo metrics/fifo _diag/fifo.log && "
	                ": > metrics/empty && printf x > '_diag/with space.log' && "
	                "printf y > \"_diag/$(printf 'new\\nline.log')\" && [ -p metrics/fifo ]") ==
	                0,
	        "a FIFO, an empty file and odd names in the instance");
	EXPECTF(dev && api_exec(a, "[ -S /opt/runnerd/_diag/sock.log ] && [ -c "
	                           "/opt/runnerd/_diag/zero.log ]") == 0,
	        "a unix socket and a device node in the instance (%s)",
	        dev ? "devices added" : "no");
	static const char *const odd[] = {"metrics/fifo",   "_diag/fifo.log", "_diag/sock.log",
	                                  "_diag/zero.log", "/dev/null",      "_diag/leak.log"};
	for (size_t i = 0; i < ARRAY_SIZE(odd); i++) {
		int64_t t0 = clock_mono_ms();
		r = provider_pull_file(p, a, odd[i], 1 << 20, &b, &e);
		int64_t took = clock_mono_ms() - t0;
		EXPECTF(r == -EINVAL && !b.data && took < 8000,
		        "pull_file refuses %s at once (%d %s, %" PRId64 " ms)", odd[i], r, e.msg,
		        took);
	}
	r = provider_pull_file(p, a, "metrics/empty", 1024, &b, &e);
	EXPECTF(r == 0 && b.len == 0, "pull_file of an empty regular file (%d %s)", r, e.msg);
	buf_release(&b);
	r = provider_pull_file(p, a, "_diag/with space.log", 1024, &b, &e);
	EXPECTF(r == 0 && strcmp(buf_str(&b), "x") == 0, "pull_file of a name with a space (%d %s)",
	        r, e.msg);
	buf_release(&b);
	EXPECTF(api_exec(a, "head -c 4 /opt/runnerd/metrics/pre-job-metrics.json >/dev/null") == 0,
	        "LXD still reads and runs after all that");

	EXPECTF(provider_traits(p)->list_files && provider_traits(p)->pull_files &&
	                provider_traits(p)->health_probe && provider_traits(p)->denylist &&
	                !provider_traits(p)->runner_from_host && !provider_traits(p)->host_process,
	        "traits: files, health probe, denylist; the runner from the image");
	int64_t t0 = clock_mono_ms();
	r = provider_list_files(p, a, "_diag", &all_files, &v, &e);
	EXPECTF(r == 0 && v.n == 3 && v.total == 3 && !v.cut && listed(&v, "Runner_1.log") &&
	                listed(&v, "Worker_2.log") && listed(&v, "with space.log") &&
	                clock_mono_ms() - t0 < 8000,
	        "list_files: regular files only: no symlink, directory, FIFO, socket, device, name "
	        "with a newline (%d %s, %zu)",
	        r, e.msg, v.n);
	for (size_t i = 0; i < v.n; i++)
		printf("#   %s (%" PRId64 " bytes, %" PRId64 ")\n", v.v[i].name, v.v[i].size,
		       v.v[i].mtime);
	EXPECTF(r == 0 && v.v[0].size > 0 && v.v[0].mtime > time(NULL) - 3600 &&
	                v.v[0].mtime <= time(NULL) + 60,
	        "list_files: sizes and times from the instance");
	provider_file_list_release(&v);
	r = provider_list_files(p, a, "/opt/runnerd/_diag", &all_files, &v, &e);
	EXPECTF(r == 0 && v.n == 3, "list_files with an absolute path (%d)", r);
	provider_file_list_release(&v);
	r = provider_list_files(p, a, "_diag/fifo.log", &all_files, &v, &e);
	EXPECTF(r == -ENOTDIR && !v.v, "list_files of a FIFO: -ENOTDIR, at once (%d %s)", r, e.msg);
	r = provider_list_files(p, a, "_diag/leak.log", &all_files, &v, &e);
	EXPECTF(r == -ENOTDIR && !v.v, "list_files of a symlink: -ENOTDIR (%d %s)", r, e.msg);

	r = provider_list_files(p, a, "_diag/Runner_1.log", &all_files, &v, &e);
	int m = provider_list_files(p, a, "_nodiag", &all_files, &v, &e);
	EXPECTF(r == -ENOTDIR && m == -ENOENT && !v.v,
	        "list_files of a file / a missing dir (%d %d)", r, m);

	/*
	 * A job that fills a folder with 1,500 files hides nothing: the
	 * instance sorts and cuts its listing (the runner's own logs first,
	 * then the newest), and says how many there were.
	 */
	static const char *const prefer[] = {"Runner_", "Worker_", NULL};
	struct provider_list_query q = {.max = 10, .prefer = prefer};
	EXPECTF(api_exec(a, "mkdir /opt/runnerd/many && cd /opt/runnerd/many && "
	                    "printf r > Runner_1.log && touch -d @1000 Runner_1.log && i=0 && "
	                    "while [ $i -lt 1500 ]; do printf j > junk-$i.log; i=$((i+1)); done && "
	                    "touch -d @2000000000 junk-77.log") == 0,
	        "1,500 files in a folder of the instance");
	t0 = clock_mono_ms();
	r = provider_list_files(p, a, "many", &q, &v, &e);
	EXPECTF(r == 0 && v.n == 10 && v.total == 1501 && v.cut &&
	                strcmp(v.v[0].name, "Runner_1.log") == 0 && v.v[0].preferred &&
	                strcmp(v.v[1].name, "junk-77.log") == 0 && v.v[1].mtime == 2000000000 &&
	                clock_mono_ms() - t0 < 8000,
	        "list_files of 1,501 files: the runner's log, then the newest, 10 of 1501 (%d %s, "
	        "%zu of %zu, %" PRId64 " ms)",
	        r, e.msg, v.n, v.total, clock_mono_ms() - t0);
	provider_file_list_release(&v);
}

static void test_stopped(struct provider *p, const char *b)
{
	struct instance_spec s;
	struct instance in = {0};
	struct instance_list l = {0};
	enum health h = HEALTH_UNKNOWN;
	struct err e = {0};
	int64_t end;
	int r;

	spec_init(&s, b, script_poweroff, NULL);
	r = provider_create(p, &s, &in, &e);
	EXPECTF(r == 0, "create an instance whose script powers it off (%d %s)", r, e.msg);
	end = clock_mono_ms() + 20000;
	while (clock_mono_ms() < end && provider_get(p, b, &in, NULL) == 0 &&
	       in.state != CLOUD_STOPPED)
		clock_sleep_ms(200);
	EXPECTF(in.state == CLOUD_STOPPED, "it powered itself off -> stopped (%s)",
	        cloud_state_name(in.state));
	r = provider_list(p, &l, &e);
	const struct instance *li = r == 0 ? list_find(&l, b) : NULL;
	EXPECTF(li && li->state == CLOUD_STOPPED, "list shows it stopped");
	instance_list_release(&l);
	r = provider_health(p, b, &h, &e);
	EXPECTF(r == 0 && h == HEALTH_UNHEALTHY, "health of a stopped instance: unhealthy (%d)", r);
	EXPECTF(!api_file(b, "/opt/runnerd/secret.env", &(struct buf)BUF_INIT(0), (char[8]){0}, 8,
	                  (char[8]){0}, 8, (char[8]){0}, 8),
	        "no secret.env pushed when there are no secrets");

	/*
	 * Stopped: no exec, so the files API, whose GET of a FIFO blocks in
	 * open() (and, given up, wedges LXD's file server and the delete).
	 */
	struct buf fb = BUF_INIT(0);
	struct provider_file_list v = {0};
	r = provider_pull_file(p, b, "m2/reg", 1024, &fb, &e);
	EXPECTF(r == 0 && strcmp(buf_str(&fb), "data") == 0, "stopped: pull_file of a file (%d %s)",
	        r, e.msg);
	buf_release(&fb);
	r = provider_pull_file(p, b, "m2/empty", 1024, &fb, &e);
	EXPECTF(r == 0 && fb.len == 0, "stopped: pull_file of an empty file (%d %s)", r, e.msg);
	buf_release(&fb);
	for (int i = 0; i < 2; i++) {
		int64_t f0 = clock_mono_ms();
		r = provider_pull_file(p, b, "m2/fifo", 1024, &fb, &e);
		EXPECTF(r == -EINVAL && !fb.data && clock_mono_ms() - f0 < 8000,
		        "stopped: pull_file refuses a FIFO without hanging, #%d (%d %s, %" PRId64
		        " ms)",
		        i + 1, r, e.msg, clock_mono_ms() - f0);
	}
	r = provider_pull_file(p, b, "m2/lnk", 1024, &fb, &e);
	int r2 = provider_pull_file(p, b, "m2/d", 1024, &fb, &e);
	int r3 = provider_pull_file(p, b, "m2/missing", 1024, &fb, &e);
	EXPECTF(r == -EINVAL && r2 == -EINVAL && r3 == -ENOENT && !fb.data,
	        "stopped: a symlink, a directory refused, a missing file -ENOENT (%d %d %d)", r, r2,
	        r3);
	r = provider_pull_file(p, b, "m2/reg", 1024, &fb, &e);
	EXPECTF(r == 0 && strcmp(buf_str(&fb), "data") == 0,
	        "stopped: LXD still reads the instance after the FIFO (%d %s)", r, e.msg);
	buf_release(&fb);
	r = provider_list_files(p, b, "m2", &all_files, &v, &e);
	EXPECTF(r == 0 && v.n == 3 && listed(&v, "reg") && listed(&v, "empty") &&
	                listed(&v, "fifo"),
	        "stopped: list_files leaves out the directory and the symlink (LXD calls the FIFO "
	        "a "
	        "file) (%d %s, %zu)",
	        r, e.msg, v.n);
	provider_file_list_release(&v);
	struct provider_list_query two = {.max = 2};
	r = provider_list_files(p, b, "m2", &two, &v, &e);
	EXPECTF(r == 0 && v.n == 2 && v.total >= 3 && v.cut,
	        "stopped: list_files of more files than asked: no failure, the cut said (%d %s, "
	        "%zu of %zu)",
	        r, e.msg, v.n, v.total);
	provider_file_list_release(&v);
	r = provider_list_files(p, b, "m2/fifo", &all_files, &v, &e);
	EXPECTF(r == -ENOTDIR, "stopped: list_files of a FIFO: -ENOTDIR (%d %s)", r, e.msg);
	int64_t t0 = clock_mono_ms();
	r = provider_delete(p, b, &e);
	EXPECTF(r == 0 && !instance_exists(b),
	        "delete of a stopped instance (%d %s, %" PRId64 " ms)", r, e.msg,
	        clock_mono_ms() - t0);
}

static void test_delete(struct provider *p, const char *a)
{
	struct instance_list l = {0};
	struct instance in;
	struct err e = {0};
	int64_t t0 = clock_mono_ms();
	int r;

	r = provider_delete(p, a, &e);
	EXPECTF(r == 0 && !instance_exists(a),
	        "delete of a running instance (%d %s, %" PRId64 " ms)", r, e.msg,
	        clock_mono_ms() - t0);
	r = provider_get(p, a, &in, &e);
	EXPECTF(r == -ENOENT, "get after delete: -ENOENT (%d)", r);
	r = provider_list(p, &l, &e);
	EXPECTF(r == 0 && !list_find(&l, a), "list after delete does not show it");
	instance_list_release(&l);
	r = provider_delete(p, a, &e);
	EXPECTF(r == 0, "delete of a missing instance: success (%d %s)", r, e.msg);
	r = provider_delete(p, "ci-not-ours", &e);
	EXPECTF(r < 0, "delete of a name that is not the manager's is refused (%d)", r);
}

/* A script whose own lines include the user data's here-document delimiter. */
static const char script_eof[] = "#!/bin/sh\n"
                                 "cat >/opt/runnerd/heredoc <<'RUNNERD_STARTUP_EOF'\n"
                                 "RUNNERD_STARTUP_EOF_1\n"
                                 "$HOME `x` \\n\n"
                                 "RUNNERD_STARTUP_EOF\n"
                                 "echo started > /opt/runnerd/started\n"
                                 "exec sleep 600";

static void test_cloud_init(const char *c)
{
	struct config_provider cfg;
	struct provider *p = NULL;
	struct instance_spec s;
	struct instance in;
	struct err e = {0};
	struct buf b = BUF_INIT(0);
	char mode[16], uid[16], type[16], c2[80];
	int r;

	config_init(&cfg, LXD_BOOTSTRAP_CLOUD_INIT);
	r = open_lxd(&cfg, manager, NULL, NULL, &p, &e);
	EXPECTF(r == 0, "provider_new(lxd), cloud-init bootstrap (%d %s)", r, e.msg);
	if (r < 0)
		return;
	lxd_set_trace(p, trace_fn, NULL);
	trace_clear();
	spec_init(&s, c, script_main, SECRET "\n");
	r = provider_create(p, &s, &in, &e);
	EXPECTF(r == 0, "create (cloud-init bootstrap) (%d %s)", r, e.msg);
	json_t *m = api_instance(c), *cfgj = json_object_get(m, "config");
	const char *ud = json_string_value(json_object_get(cfgj, "cloud-init.user-data"));
	const char *ud2 = json_string_value(json_object_get(cfgj, "user.user-data"));
	EXPECTF(ud && ud2 && strcmp(ud, ud2) == 0 && str_has_prefix(ud, "#!/bin/sh\n") &&
	                strstr(ud, script_main) && !strstr(ud, SECRET_V),
	        "cloud-init.user-data = user.user-data = a #!/bin/sh script holding the startup "
	        "script, no secret");
	size_t pushed_script = 0;
	pthread_mutex_lock(&trace_lock);
	for (size_t i = 0; i < trace_n; i++)
		pushed_script += strcmp(trace_v[i].method, "POST") == 0 &&
		                 strstr(trace_v[i].url, "/files?path=/opt/runnerd/startup.sh&");
	pthread_mutex_unlock(&trace_lock);
	EXPECTF(pushed_script == 0 && !api_file(c, "/opt/runnerd/startup.sh", &b, mode,
	                                        sizeof(mode), uid, sizeof(uid), type, sizeof(type)),
	        "cloud-init: startup.sh is not pushed (the user data carries it)");
	EXPECTF(api_file(c, "/opt/runnerd/.pushed", &b, mode, sizeof(mode), uid, sizeof(uid), type,
	                 sizeof(type)),
	        "cloud-init: the marker the user data waits for was pushed");
	EXPECTF(api_file(c, "/opt/runnerd/secret.env", &b, mode, sizeof(mode), uid, sizeof(uid),
	                 type, sizeof(type)) &&
	                strcmp(buf_str(&b), SECRET "\n") == 0 && strcmp(mode, "0600") == 0,
	        "cloud-init: secret.env pushed before the start");
	/* what cloud-init would do with it (the busybox image has no cloud-init) */
	EXPECTF(ud && api_exec(c, ud) == 0 && wait_pull(p, c, "started", 10000),
	        "the user data, run as cloud-init would, starts the startup script");
	json_decref(m);
	EXPECTF(api_file(c, "/opt/runnerd/startup.sh", &b, mode, sizeof(mode), uid, sizeof(uid),
	                 type, sizeof(type)) &&
	                strcmp(mode, "0700") == 0 && strcmp(uid, "0") == 0 &&
	                b.len == strlen(script_main) && memcmp(b.data, script_main, b.len) == 0,
	        "cloud-init: the user data wrote startup.sh: the script, 0700, root (mode %s, %zu "
	        "bytes)",
	        mode, b.len);
	r = provider_delete(p, c, &e);
	EXPECTF(r == 0 && !instance_exists(c), "delete it (%d %s)", r, e.msg);

	/* no start before the marker; a script holding the delimiter comes out whole */
	name_make(c2, sizeof(c2), manager, 0x35);
	spec_init(&s, c2, script_eof, NULL);
	r = provider_create(p, &s, &in, &e);
	m = api_instance(c2);
	ud = json_string_value(json_object_get(json_object_get(m, "config"), "user.user-data"));
	EXPECTF(r == 0 && ud && api_exec(c2, "rm /opt/runnerd/.pushed") == 0 &&
	                api_exec(c2, ud) == 0,
	        "second instance: marker removed, user data run (%d %s)", r, e.msg);
	clock_sleep_ms(2500);
	EXPECTF(!api_file(c2, "/opt/runnerd/started", &b, mode, sizeof(mode), uid, sizeof(uid),
	                  type, sizeof(type)),
	        "the user data does not start the script before the marker is there");
	EXPECTF(api_exec(c2, "touch /opt/runnerd/.pushed") == 0 &&
	                wait_pull(p, c2, "started", 10000),
	        "... and starts it once the marker is there");
	EXPECTF(api_file(c2, "/opt/runnerd/startup.sh", &b, mode, sizeof(mode), uid, sizeof(uid),
	                 type, sizeof(type)) &&
	                b.len == strlen(script_eof) + 1 &&
	                memcmp(b.data, script_eof, b.len - 1) == 0,
	        "a script with the delimiter as a line of its own comes out whole (%zu bytes)",
	        b.len);
	EXPECTF(api_file(c2, "/opt/runnerd/heredoc", &b, mode, sizeof(mode), uid, sizeof(uid), type,
	                 sizeof(type)) &&
	                strcmp(buf_str(&b), "RUNNERD_STARTUP_EOF_1\n$HOME `x` \\n\n") == 0,
	        "... and runs as written (%s)", buf_str(&b));
	json_decref(m);
	buf_release(&b);
	r = provider_delete(p, c2, &e);
	EXPECTF(r == 0 && !instance_exists(c2), "delete it (%d %s)", r, e.msg);
	provider_free(p);
}

static void test_create_failures(const char *d)
{
	struct config_provider cfg;
	struct provider *p = NULL;
	struct instance_spec s;
	struct instance in;
	struct err e = {0};
	struct config_flavor fl = flavor;
	char *profs[] = {"default", "rdbroken"};
	char body[512];
	int r;

	config_init(&cfg, LXD_BOOTSTRAP_EXEC);
	r = open_lxd(&cfg, manager, NULL, NULL, &p, &e);
	if (r < 0) {
		EXPECTF(0, "provider_new (%s)", e.msg);
		return;
	}
	fl.image = "no-such-image-alias";
	spec_init(&s, d, script_main, SECRET "\n");
	s.flavor = &fl;
	r = provider_create(p, &s, &in, &e);
	EXPECTF(r < 0 && !instance_exists(d) && !strstr(e.msg, SECRET_V),
	        "create from a missing image fails, leaves nothing (%d %s)", r, e.msg);
	s.flavor = &flavor;
	s.name = "other-000000000001";
	r = provider_create(p, &s, &in, &e);
	EXPECTF(r == -EINVAL && !instance_exists(s.name),
	        "create of a name that is not the manager's: -EINVAL");
	s.name = d;
	provider_free(p);

	/* made, then the start fails: the half-made instance goes */
	snprintf(body, sizeof(body),
	         "{\"name\":\"rdbroken\",\"config\":{},\"devices\":{\"bad\":{\"type\":"
	         "\"unix-char\",\"source\":\"/dev/nonexistent-runnerd-test-%d\",\"path\":"
	         "\"/dev/rdx\"}}}",
	         (int)getpid());
	EXPECTF(api("POST", "/1.0/profiles", body, NULL, NULL) == 201 ||
	                api("GET", "/1.0/profiles/rdbroken", NULL, NULL, NULL) == 200,
	        "a profile whose device cannot start");
	cfg.lxd.profiles.v = profs;
	cfg.lxd.profiles.n = 2;
	r = open_lxd(&cfg, manager, NULL, NULL, &p, &e);
	if (r < 0) {
		EXPECTF(0, "provider_new (%s)", e.msg);
		return;
	}
	trace_clear();
	lxd_set_trace(p, trace_fn, NULL);
	r = provider_create(p, &s, &in, &e);
	bool posted = false, deleted = false;
	pthread_mutex_lock(&trace_lock);
	for (size_t i = 0; i < trace_n; i++) {
		if (strcmp(trace_v[i].method, "POST") == 0 &&
		    strstr(trace_v[i].url, "/1.0/instances?"))
			posted = true;
		if (strcmp(trace_v[i].method, "DELETE") == 0 && strstr(trace_v[i].url, d))
			deleted = true;
	}
	pthread_mutex_unlock(&trace_lock);
	EXPECTF(r < 0 && posted && deleted && !instance_exists(d) && !strstr(e.msg, SECRET_V),
	        "a create whose start fails deletes what it made (%d %s)", r, e.msg);
	provider_free(p);
	api("DELETE", "/1.0/profiles/rdbroken", NULL, NULL, NULL);

	/* a denylist that cannot be put in place blocks creates */
	struct strv deny = {(char *[]){"192.0.2.0/24"}, 1};
	config_init(&cfg, LXD_BOOTSTRAP_EXEC);
	cfg.lxd.network = "rdnonexist0";
	r = open_lxd(&cfg, manager, NULL, &deny, &p, &e);
	EXPECTF(r == 0, "provider_new succeeds while the denylist cannot be applied (%d %s)", r,
	        e.msg);
	if (r == 0) {
		r = provider_create(p, &s, &in, &e);
		EXPECTF(r < 0 && strstr(e.msg, "denylist") && !instance_exists(d),
		        "create fails while the denylist is not in place (%d %s)", r, e.msg);
		provider_free(p);
	}
	char acl[128];
	lxd_deny_acl_name(manager, acl, sizeof(acl));
	char path[256];
	snprintf(path, sizeof(path), "/1.0/network-acls/%s", acl);
	api("DELETE", path, NULL, NULL, NULL);
}

struct par_arg {
	struct provider *p;
	char name[80];
	int r;
	char msg[512];
};

static void *par_create(void *arg)
{
	struct par_arg *x = arg;
	struct instance_spec s;
	struct instance in;
	struct err e = {0};
	spec_init(&s, x->name, "#!/bin/sh\nexec sleep 600\n", "K='v'\n");
	x->r = provider_create(x->p, &s, &in, &e);
	str_copy(x->msg, e.msg, sizeof(x->msg));
	return NULL;
}

static void *par_delete(void *arg)
{
	struct par_arg *x = arg;
	struct err e = {0};
	x->r = provider_delete(x->p, x->name, &e);
	str_copy(x->msg, e.msg, sizeof(x->msg));
	return NULL;
}

static void test_parallel(struct provider *p)
{
	struct par_arg x[3];
	pthread_t t[3];
	struct instance_list l = {0};
	struct err e = {0};
	int ok = 0, n = 0;
	int64_t t0 = clock_mono_ms();

	for (int i = 0; i < 3; i++) {
		x[i].p = p;
		name_make(x[i].name, sizeof(x[i].name), manager, 0x100 + (unsigned)i);
		pthread_create(&t[i], NULL, par_create, &x[i]);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		ok += x[i].r == 0;
		if (x[i].r)
			printf("# %s: %s\n", x[i].name, x[i].msg);
	}
	EXPECTF(ok == 3, "3 creates in parallel (%" PRId64 " ms)", clock_mono_ms() - t0);
	if (provider_list(p, &l, &e) == 0)
		for (int i = 0; i < 3; i++)
			n += list_find(&l, x[i].name) != NULL;
	EXPECTF(n == 3, "list shows all 3");
	instance_list_release(&l);
	t0 = clock_mono_ms();
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, par_delete, &x[i]);
	ok = 0;
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		ok += x[i].r == 0 && !instance_exists(x[i].name);
	}
	EXPECTF(ok == 3, "3 deletes in parallel (%" PRId64 " ms)", clock_mono_ms() - t0);
}

static bool instance_exists_in(const char *proj, const char *name)
{
	const char *saved = project;
	bool there;

	project = proj;
	there = instance_exists(name);
	project = saved;
	return there;
}

/*
 * Two providers of one manager (providers.lxd-a and providers.lxd-b, both
 * of type lxd) on two projects: each creates in its own, and lists, gets
 * and deletes only what is there, even for a name of this manager that
 * lives in the other project.
 */
static void test_two_projects(void)
{
	const char *project2 = getenv("LXD_TEST_PROJECT2");
	struct config_provider ca, cb;
	struct provider *pa = NULL, *pb = NULL;
	struct instance_list la = {0}, lb = {0};
	struct instance_spec sp;
	struct instance in = {0};
	struct err e = {0};
	char a[80], b[80];
	int r;

	if (!project2 || !*project2) {
		EXPECTF(0, "LXD_TEST_PROJECT2 is not set");
		return;
	}
	config_init(&ca, LXD_BOOTSTRAP_EXEC);
	ca.name = "lxd-a";
	config_init(&cb, LXD_BOOTSTRAP_EXEC);
	cb.name = "lxd-b";
	cb.lxd.project = (char *)project2;
	r = open_lxd(&ca, manager, NULL, NULL, &pa, &e);
	if (r == 0)
		r = open_lxd(&cb, manager, NULL, NULL, &pb, &e);
	EXPECTF(r == 0, "two lxd providers of one manager, on projects %s and %s (%d %s)", project,
	        project2, r, e.msg);
	if (r < 0) {
		provider_free(pa);
		return;
	}
	name_make(a, sizeof(a), manager, 0x40);
	name_make(b, sizeof(b), manager, 0x41);
	spec_init(&sp, a, "#!/bin/sh\nexec sleep 600\n", NULL);
	r = provider_create(pa, &sp, &in, &e);
	EXPECTF(r == 0 && strcmp(in.provider, "lxd-a") == 0 && instance_exists_in(project, a) &&
	                !instance_exists_in(project2, a),
	        "lxd-a creates in %s only (%d %s)", project, r, e.msg);
	spec_init(&sp, b, "#!/bin/sh\nexec sleep 600\n", NULL);
	r = provider_create(pb, &sp, &in, &e);
	EXPECTF(r == 0 && strcmp(in.provider, "lxd-b") == 0 && instance_exists_in(project2, b) &&
	                !instance_exists_in(project, b),
	        "lxd-b creates in %s only (%d %s)", project2, r, e.msg);

	r = provider_list(pa, &la, &e);
	EXPECTF(r == 0 && list_find(&la, a) && !list_find(&la, b) &&
	                strcmp(list_find(&la, a)->provider, "lxd-a") == 0,
	        "lxd-a lists its own, not lxd-b's (%d %s, %zu)", r, e.msg, la.n);
	r = provider_list(pb, &lb, &e);
	EXPECTF(r == 0 && list_find(&lb, b) && !list_find(&lb, a) &&
	                strcmp(list_find(&lb, b)->provider, "lxd-b") == 0,
	        "lxd-b lists its own, not lxd-a's (%d %s, %zu)", r, e.msg, lb.n);

	r = provider_get(pa, b, &in, &e);
	EXPECTF(r == -ENOENT, "lxd-a does not find lxd-b's instance (%d %s)", r, e.msg);
	r = provider_get(pb, a, &in, &e);
	EXPECTF(r == -ENOENT, "lxd-b does not find lxd-a's instance (%d %s)", r, e.msg);
	r = provider_get(pa, a, &in, &e);
	EXPECTF(r == 0 && strcmp(in.name, a) == 0 && strcmp(in.provider, "lxd-a") == 0,
	        "lxd-a gets its own (%d %s)", r, e.msg);
	r = provider_get(pb, b, &in, &e);
	EXPECTF(r == 0 && strcmp(in.name, b) == 0 && strcmp(in.provider, "lxd-b") == 0,
	        "lxd-b gets its own (%d %s)", r, e.msg);

	/* a delete through the other provider finds nothing there: done, the instance untouched */
	r = provider_delete(pa, b, &e);
	EXPECTF(r == 0 && instance_exists_in(project2, b),
	        "a delete of lxd-b's instance through lxd-a leaves it be (%d %s)", r, e.msg);
	r = provider_delete(pb, a, &e);
	EXPECTF(r == 0 && instance_exists_in(project, a),
	        "a delete of lxd-a's instance through lxd-b leaves it be (%d %s)", r, e.msg);
	r = provider_delete(pa, a, &e);
	EXPECTF(r == 0 && !instance_exists_in(project, a), "lxd-a deletes its own (%d %s)", r,
	        e.msg);
	r = provider_delete(pb, b, &e);
	EXPECTF(r == 0 && !instance_exists_in(project2, b), "lxd-b deletes its own (%d %s)", r,
	        e.msg);
	r = provider_list(pa, &la, &e);
	int r2 = provider_list(pb, &lb, &e);
	EXPECTF(r == 0 && r2 == 0 && !list_find(&la, a) && !list_find(&lb, b),
	        "both listings are empty of them again (%d %d)", r, r2);
	instance_list_release(&la);
	instance_list_release(&lb);
	provider_free(pa);
	provider_free(pb);
}

static void test_long_name(void)
{
	/* a 50-character manager makes 63-character names, LXD's limit */
	char mgr[51], name[80];
	struct config_provider cfg;
	struct provider *p = NULL;
	struct instance_spec s;
	struct instance in;
	struct err e = {0};
	int r;

	snprintf(mgr, sizeof(mgr), "%s-%s", manager,
	         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	mgr[50] = '\0';
	name_make(name, sizeof(name), mgr, 1);
	config_init(&cfg, LXD_BOOTSTRAP_EXEC);
	if (open_lxd(&cfg, mgr, NULL, NULL, &p, &e) < 0) {
		EXPECTF(0, "provider_new (%s)", e.msg);
		return;
	}
	spec_init(&s, name, "#!/bin/sh\nexec sleep 600\n", NULL);
	r = provider_create(p, &s, &in, &e);
	EXPECTF(r == 0 && strlen(name) == 63, "create with a 63-character name (%d %s)", r, e.msg);
	r = provider_delete(p, name, &e);
	EXPECTF(r == 0 && !instance_exists(name), "delete it (%d %s)", r, e.msg);
	provider_free(p);
}

static void test_denylist(void)
{
	struct config_provider cfg;
	struct provider *p = NULL;
	struct err e = {0};
	char acl[128], eg[512], body[512], marker[128], other_acl[64];
	int r;

	lxd_deny_acl_name(manager, acl, sizeof(acl));
	snprintf(marker, sizeof(marker), "user.runnerd.%s.acl-defaults", manager);
	snprintf(other_acl, sizeof(other_acl), "rdtest-other-%d", (int)getpid());

	config_init(&cfg, LXD_BOOTSTRAP_EXEC);
	struct strv v1 = {(char *[]){"10.99.0.0/16", "192.0.2.7"}, 2};
	r = open_lxd(&cfg, manager, NULL, &v1, &p, &e);
	EXPECTF(r == 0, "provider_new with a denylist (%d %s)", r, e.msg);
	if (r < 0)
		return;
	acl_egress(acl, eg, sizeof(eg));
	EXPECTF(strcmp(eg, "10.99.0.0/16,192.0.2.7/32") == 0,
	        "provider_new created ACL %s: reject egress per CIDR (%s)", acl, eg);
	EXPECTF(net_key_is(network, "security.acls", acl) &&
	                net_key_is(network, "security.acls.default.egress.action", "allow") &&
	                net_key_is(network, "security.acls.default.ingress.action", "allow") &&
	                net_key_is(network, marker, "true"),
	        "attached to %s, default actions allow (so the rest keeps working)", network);

	struct strv v2 = {(char *[]){"10.1.2.3/8", "2001:db8::1/32", "10.0.0.0/8"}, 3};
	r = set_denylist(p, &v2, &e);
	acl_egress(acl, eg, sizeof(eg));
	EXPECTF(r == 0 && strcmp(eg, "10.0.0.0/8,2001:db8::/32") == 0,
	        "a changed list updates the ACL (canonical, deduplicated) (%d %s: %s)", r, e.msg,
	        eg);
	r = set_denylist(p, &v2, &e);
	EXPECTF(r == 0 && net_key_is(network, "security.acls", acl),
	        "a sync with no change is a no-op");

	/* another ACL, not ours, attached next to it: kept */
	snprintf(body, sizeof(body),
	         "{\"name\":\"%s\",\"egress\":[{\"action\":\"reject\",\"destination\":\"198.51.100."
	         "0/"
	         "24\",\"state\":\"enabled\"}]}",
	         other_acl);
	long st = api("POST", "/1.0/network-acls", body, NULL, NULL);
	char joined[256], path[256];
	snprintf(joined, sizeof(joined), "%s,%s", acl, other_acl);
	snprintf(path, sizeof(path), "/1.0/networks/%s", network);
	snprintf(body, sizeof(body), "{\"config\":{\"security.acls\":\"%s\"}}", joined);
	long st2 = api("PATCH", path, body, NULL, NULL);
	EXPECTF(st < 300 && st2 < 300 && net_key_is(network, "security.acls", joined),
	        "attached a foreign ACL too (%ld %ld)", st, st2);
	r = set_denylist(p, &v2, &e);
	EXPECTF(r == 0 && net_key_is(network, "security.acls", joined),
	        "sync keeps the foreign ACL");

	r = set_denylist(p, NULL, &e);
	acl_egress(other_acl, eg, sizeof(eg));
	EXPECTF(r == 0 && !acl_exists(acl) && net_key_is(network, "security.acls", other_acl) &&
	                strcmp(eg, "198.51.100.0/24") == 0 &&
	                net_key_is(network, "security.acls.default.egress.action", "allow"),
	        "an empty list detaches and deletes ours, leaves the foreign ACL and the defaults "
	        "it "
	        "relies on (%d %s)",
	        r, e.msg);

	/* alone again: the last ACL takes the defaults it set with it */
	snprintf(body, sizeof(body), "{\"config\":{\"security.acls\":\"\"}}");
	api("PATCH", path, body, NULL, NULL);
	snprintf(path, sizeof(path), "/1.0/network-acls/%s", other_acl);
	api("DELETE", path, NULL, NULL, NULL);
	struct strv v3 = {(char *[]){"203.0.113.0/24"}, 1};
	r = set_denylist(p, &v3, &e);
	EXPECTF(r == 0 && net_key_is(network, "security.acls", acl), "attached again (%d %s)", r,
	        e.msg);
	r = set_denylist(p, &(struct strv){0}, &e);
	EXPECTF(r == 0 && !acl_exists(acl) && net_key_is(network, "security.acls", NULL) &&
	                net_key_is(network, "security.acls.default.egress.action", NULL) &&
	                net_key_is(network, "security.acls.default.ingress.action", NULL) &&
	                net_key_is(network, marker, NULL),
	        "the last ACL removed: defaults and marker gone too (%d %s)", r, e.msg);
	r = set_denylist(p, NULL, &e);
	EXPECTF(r == 0, "removing an absent ACL is a no-op (%d %s)", r, e.msg);
	provider_free(p);
}

/* ---- a fake LXD that answers what it is told ------------------------ */

/*
 * A route: requests whose first line starts with line ("GET /1.0/x") get
 * answer; from its next hit on, then (when set). Routes are tried in order.
 */
struct route {
	const char *line;
	const char *answer, *then; /* "STATUS|BODY", or fake_hang: never answered */
	int hits;
};

/* An answer that never comes: the connection is held open until fake_stop. */
static const char fake_hang[] = "hang";

struct fake {
	char path[108];
	int fd;
	pthread_t th;
	const char *answer; /* full HTTP response when no route matches */
	size_t answer_len;
	pthread_mutex_t lock;
	struct route *routes; /* lock */
	size_t n_routes;
	int held[64]; /* connections left unanswered (fake_hang) */
	size_t n_held;
	/* fake_instance's: */
	char inst[1024];    /* "200 OK|<the instance>" */
	char get_line[256]; /* its GET */
	char store[4096];   /* the default answer (404) */
};

static void fake_write(int c, const char *s, size_t n)
{
	size_t off = 0;
	while (off < n) {
		ssize_t k = write(c, s + off, n - off);
		if (k <= 0)
			break;
		off += (size_t)k;
	}
}

static void *fake_serve(void *arg)
{
	struct fake *f = arg;
	for (;;) {
		char req[8192], out[8192];
		const char *ans = NULL;
		size_t n = 0;
		int c = accept(f->fd, NULL, NULL);
		if (c < 0)
			return NULL;
		while (n < sizeof(req) - 1) {
			ssize_t k = read(c, req + n, sizeof(req) - 1 - n);
			if (k <= 0)
				break;
			n += (size_t)k;
			req[n] = '\0';
			char *h = strstr(req, "\r\n\r\n"), *cl = strcasestr(req, "Content-Length:");
			if (h && (!cl || cl > h ||
			          (size_t)(h + 4 - req) + strtoul(cl + 15, NULL, 10) <= n))
				break;
		}
		pthread_mutex_lock(&f->lock);
		for (size_t i = 0; i < f->n_routes && !ans; i++)
			if (str_has_prefix(req, f->routes[i].line)) {
				struct route *rt = &f->routes[i];
				ans = rt->hits++ > 0 && rt->then ? rt->then : rt->answer;
			}
		pthread_mutex_unlock(&f->lock);
		if (ans == fake_hang) {
			if (f->n_held < ARRAY_SIZE(f->held))
				f->held[f->n_held++] = c;
			else
				close(c);
			continue;
		}
		if (ans) {
			const char *bar = strchr(ans, '|');
			snprintf(out, sizeof(out),
			         "HTTP/1.1 %.*s\r\nContent-Type: "
			         "application/json\r\nContent-Length: "
			         "%zu\r\nConnection: close\r\n\r\n%s",
			         (int)(bar - ans), ans, strlen(bar + 1), bar + 1);
			fake_write(c, out, strlen(out));
		} else {
			fake_write(c, f->answer, f->answer_len);
		}
		close(c);
	}
}

static bool fake_start(struct fake *f)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	static int seq;

	snprintf(f->path, sizeof(f->path), "/tmp/runnerd-fake-lxd-%d-%d.sock", (int)getpid(),
	         seq++);
	unlink(f->path);
	str_copy(sa.sun_path, f->path, sizeof(sa.sun_path));
	pthread_mutex_init(&f->lock, NULL);
	f->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->fd < 0 || bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(f->fd, 8) < 0)
		return false;
	return pthread_create(&f->th, NULL, fake_serve, f) == 0;
}

static void fake_stop(struct fake *f)
{
	pthread_mutex_lock(&f->lock);
	f->n_routes = 0;
	pthread_mutex_unlock(&f->lock);
	shutdown(f->fd, SHUT_RDWR);
	close(f->fd);
	pthread_join(f->th, NULL);
	for (size_t i = 0; i < f->n_held; i++)
		close(f->held[i]);
	f->n_held = 0;
	unlink(f->path);
	pthread_mutex_destroy(&f->lock);
}

static void fake_answer(struct fake *f, const char *status, const char *body, char *store,
                        size_t cap)
{
	snprintf(store, cap,
	         "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	         "Connection: close\r\n\r\n%s",
	         status, strlen(body), body);
	f->answer = store;
	f->answer_len = strlen(store);
}

/* What the fake answers from now on (routes tried in order). */
static void fake_routes(struct fake *f, struct route *routes, size_t n)
{
	pthread_mutex_lock(&f->lock);
	f->routes = routes;
	f->n_routes = n;
	pthread_mutex_unlock(&f->lock);
}

/* An operation started; LXD's 404 for an instance. */
static const char fake_op_async[] = "202 Accepted|{\"type\":\"async\",\"status_code\":100,"
                                    "\"operation\":\"/1.0/operations/"
                                    "0b0b0b0b-0000-4000-8000-000000000001\",\"metadata\":{}}";
static const char fake_not_found[] = "404 Not Found|{\"type\":\"error\",\"error\":\"Instance "
                                     "not found\",\"error_code\":404}";

/*
 * A fake LXD on which name is an instance of this manager in status
 * (answered by the route {f->get_line, f->inst}; anything unrouted is a
 * 404), and a provider on it with o. False (a failed check) when either
 * cannot be had.
 */
static bool fake_instance(struct fake *f, const char *name, const char *status,
                          const struct lxd_opts *o, struct provider **ret)
{
	struct config_provider cfg;
	struct err e = {0};

	snprintf(f->inst, sizeof(f->inst),
	         "200 OK|{\"type\":\"sync\",\"metadata\":{\"name\":\"%s\",\"status\":\"%s\","
	         "\"config\":{\"user.runnerd.manager\":\"%s\"}}}",
	         name, status, manager);
	snprintf(f->get_line, sizeof(f->get_line), "GET /1.0/instances/%s?", name);
	fake_answer(f, "404 Not Found",
	            "{\"type\":\"error\",\"error\":\"not found\",\"error_code\":404}", f->store,
	            sizeof(f->store));
	if (!fake_start(f)) {
		EXPECTF(0, "fake LXD socket: %s", strerror(errno));
		return false;
	}
	config_init(&cfg, LXD_BOOTSTRAP_EXEC);
	cfg.lxd.socket = f->path;
	if (open_lxd(&cfg, manager, o, NULL, ret, &e) < 0) {
		EXPECTF(0, "lxd_new_opts (%s)", e.msg);
		fake_stop(f);
		return false;
	}
	return true;
}

static void test_failed_lists(void)
{
	struct config_provider cfg;
	struct provider *p = NULL;
	struct err e = {0};
	struct instance sentinel = {.name = "sentinel"};
	struct instance_list l = {0};
	struct fake f = {0};
	static char store[1 << 16];
	char big[4096];
	int r;

	instance_list_add(&l, &sentinel);
	config_init(&cfg, LXD_BOOTSTRAP_EXEC);
	cfg.lxd.socket = "/nonexistent/runnerd-test/lxd.socket";
	r = open_lxd(&cfg, manager, NULL, NULL, &p, &e);
	EXPECTF(r == 0, "provider_new with a wrong socket still succeeds (%d %s)", r, e.msg);
	if (r == 0) {
		r = provider_list(p, &l, &e);
		EXPECTF(r < 0 && l.n == 1 && strcmp(l.v[0].name, "sentinel") == 0,
		        "list against a wrong socket: an error, not an empty list (%d %s)", r,
		        e.msg);
		provider_free(p);
	}

	fake_answer(&f, "200 OK", "{}", store, sizeof(store));
	if (!fake_start(&f)) {
		EXPECTF(0, "fake LXD socket: %s", strerror(errno));
		return;
	}

	struct lxd_opts o = {
	        .max_list_body = 1000, .connect_timeout_ms = 2000, .request_timeout_ms = 5000};
	cfg.lxd.socket = f.path;
	r = open_lxd(&cfg, manager, &o, NULL, &p, &e);
	if (r < 0) {
		EXPECTF(0, "lxd_new_opts (%s)", e.msg);
		return;
	}
	static const struct {
		const char *status, *body, *what;
	} cases[] = {
	        {"500 Internal Server Error",
	         "{\"type\":\"error\",\"error\":\"database is locked\",\"error_code\":500}",
	         "an error answer"},
	        {"200 OK", "this is not json", "an unparsable body"},
	        {"200 OK", "{\"type\":\"sync\",\"metadata\":{\"not\":\"a list\"}}",
	         "metadata not a list"},
	        {"200 OK",
	         "{\"type\":\"sync\",\"metadata\":[{\"name\":\"x\",\"status\":\"Running\","
	         "\"config\":{}},{\"name\":42}]}",
	         "one malformed instance"},
	        {"200 OK", NULL, "a body over the size cap"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *body = cases[i].body;
		if (!body) {
			memset(big, ' ', sizeof(big) - 1);
			big[sizeof(big) - 1] = '\0';
			memcpy(big, "{\"type\":\"sync\",\"metadata\":[]", 28);
			big[sizeof(big) - 2] = '}';
			body = big;
		}
		fake_answer(&f, cases[i].status, body, store, sizeof(store));
		err_clear(&e);
		r = provider_list(p, &l, &e);
		EXPECTF(r < 0 && l.n == 1 && strcmp(l.v[0].name, "sentinel") == 0,
		        "list: %s is an error, never a shorter list (%d %s)", cases[i].what, r,
		        e.msg);
		if (i == 0)
			EXPECTF(strstr(e.msg, "database is locked") != NULL,
			        "LXD's error text is kept");
	}
	fake_answer(&f, "200 OK", "{\"type\":\"sync\",\"metadata\":[]}", store, sizeof(store));
	r = provider_list(p, &l, &e);
	EXPECTF(r == 0 && l.n == 0, "an empty listing replaces the old contents (%d)", r);
	provider_free(p);
	instance_list_release(&l);
	fake_stop(&f);
}

/* Wait until name exists and no operation holds it (its create ended); false on timeout. */
static bool wait_created(const char *name, long ms)
{
	int64_t end = clock_mono_ms() + ms;
	while (clock_mono_ms() < end) {
		json_t *m = api_instance(name);
		const char *st = json_string_value(json_object_get(m, "status"));
		bool ok = st && (strcmp(st, "Stopped") == 0 || strcmp(st, "Running") == 0);
		json_decref(m);
		if (ok) {
			char path[256];
			snprintf(path, sizeof(path), "/1.0/instances/%s", name);
			if (api_op("DELETE", path, NULL))
				return true;
		}
		clock_sleep_ms(250);
	}
	return false;
}

/*
 * A create that outlives the operation timeout: LXD goes on unpacking (it
 * cannot cancel a create), so deleting at once would race the unpack and
 * leave the instance behind while create() reported a plain failure. Now
 * either create() fails and the instance is gone for good, or create()
 * says it may remain (PROVIDER_EMAYREMAIN). The image takes seconds to unpack;
 * the operation timeout is set from one timed create: 1 s, then about two
 * thirds of it (so that the create ends within the extra wait).
 */
static void test_create_timeout(void)
{
	const char *big = getenv("LXD_TEST_BIG_IMAGE");
	struct config_flavor fl = flavor;
	char name[80], body[1024], path[256];
	int timed_out = 0;

	if (!big || !*big) {
		EXPECTF(0, "LXD_TEST_BIG_IMAGE is not set");
		return;
	}
	fl.image = (char *)big;
	name_make(name, sizeof(name), manager, 0x70);
	snprintf(body, sizeof(body),
	         "{\"name\":\"%s\",\"source\":{\"type\":\"image\",\"alias\":\"%s\"},"
	         "\"devices\":{\"root\":{\"type\":\"disk\",\"path\":\"/\",\"pool\":\"%s\"}}}",
	         name, big, pool);
	int64_t t0 = clock_mono_ms();
	bool made = api_op("POST", "/1.0/instances", body);
	int64_t took = clock_mono_ms() - t0;
	snprintf(path, sizeof(path), "/1.0/instances/%s", name);
	EXPECTF(made && api_op("DELETE", path, NULL),
	        "a create from the big image takes %" PRId64 " ms", took);
	int64_t op2 = (took * 2 / 3 + 500) / 1000;
	int64_t timeouts[] = {1, op2 > 1 ? op2 : 2};

	for (size_t i = 0; i < ARRAY_SIZE(timeouts); i++) {
		struct config_provider cfg;
		struct provider *p = NULL;
		struct lxd_opts o = {.operation_timeout = timeouts[i]};
		struct instance_spec sp;
		struct instance in;
		struct err e = {0};
		int r;

		name_make(name, sizeof(name), manager, 0x71 + (unsigned)i);
		config_init(&cfg, LXD_BOOTSTRAP_EXEC);
		if (open_lxd(&cfg, manager, &o, NULL, &p, &e) < 0) {
			EXPECTF(0, "lxd_new_opts (%s)", e.msg);
			return;
		}
		spec_init(&sp, name, "#!/bin/sh\nexec sleep 600\n", NULL);
		sp.flavor = &fl;
		t0 = clock_mono_ms();
		r = provider_create(p, &sp, &in, &e);
		took = clock_mono_ms() - t0;
		printf("# operation timeout %" PRId64 " s: create -> %d (%s) after %" PRId64
		       " ms\n",
		       timeouts[i], r, e.msg, took);
		if (r == 0) {
			bool there = instance_exists(name);
			r = provider_delete(p, name, &e);
			EXPECTF(there && r == 0,
			        "operation timeout %" PRId64
			        " s: the create made it in time (delete: "
			        "%d %s)",
			        timeouts[i], r, e.msg);
		} else if (r == PROVIDER_EMAYREMAIN) {
			timed_out++;
			EXPECTF(strstr(e.msg, "may remain") != NULL,
			        "operation timeout %" PRId64
			        " s: PROVIDER_EMAYREMAIN says the instance "
			        "may remain",
			        timeouts[i]);
			EXPECTF(wait_created(name, 120000),
			        "... and it is removed once its create ended");
		} else {
			timed_out++;
			bool gone = !instance_exists(name);
			clock_sleep_ms((long)(took > 3000 ? took : 3000));
			EXPECTF(gone && !instance_exists(name),
			        "operation timeout %" PRId64
			        " s: create failed (%d) and the instance "
			        "is gone, for good (%s)",
			        timeouts[i], r, gone ? "still gone later" : "there after create()");
			if (instance_exists(name))
				wait_created(name, 120000);
		}
		provider_free(p);
	}
	EXPECTF(timed_out > 0, "a create outlived its operation timeout at least once (%d)",
	        timed_out);
}

/*
 * Operations LXD no longer knows (a 404 on their wait: lost in an LXD
 * restart) are failures, never "gone"; a delete is success only once the
 * instance answers 404. A fake LXD plays each case.
 */
static void test_lost_operations(void)
{
	static const char op_lost[] = "404 Not Found|{\"type\":\"error\",\"error\":\"Operation not "
	                              "found\",\"error_code\":404}";
	static const char op_done[] = "200 OK|{\"type\":\"sync\",\"metadata\":{\"status\":"
	                              "\"Success\",\"status_code\":200}}";
	const char *op_async = fake_op_async, *not_found = fake_not_found;
	char del_line[256];
	struct provider *p = NULL;
	struct lxd_opts o = {.operation_timeout = 1, .request_timeout_ms = 5000};
	struct instance_spec sp;
	struct instance in;
	struct err e = {0};
	struct fake f = {0};
	char name[80];
	int r;

	name_make(name, sizeof(name), manager, 0x60);
	snprintf(del_line, sizeof(del_line), "DELETE /1.0/instances/%s?", name);
	if (!fake_instance(&f, name, "Stopped", &o, &p))
		return;
	const char *const get_line = f.get_line, *const inst = f.inst;
	struct {
		const char *what;
		struct route routes[4];
		int want; /* 0: success, 1: a failure */
		const char *text;
	} cases[] = {
	        {"delete whose operation is lost, the instance still there",
	         {{get_line, inst, NULL, 0},
	          {del_line, op_async, NULL, 0},
	          {"GET /1.0/operations/", op_lost, NULL, 0}},
	         1,
	         "operation lost"},
	        {"delete whose operation succeeded, the instance still there",
	         {{get_line, inst, NULL, 0},
	          {del_line, op_async, NULL, 0},
	          {"GET /1.0/operations/", op_done, NULL, 0}},
	         1,
	         "still there"},
	        {"delete whose operation succeeded, the instance then gone",
	         {{get_line, inst, not_found, 0},
	          {del_line, op_async, NULL, 0},
	          {"GET /1.0/operations/", op_done, NULL, 0}},
	         0,
	         ""},
	        {"delete whose operation is lost, the instance then gone",
	         {{get_line, inst, not_found, 0},
	          {del_line, op_async, NULL, 0},
	          {"GET /1.0/operations/", op_lost, NULL, 0}},
	         0,
	         ""},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		fake_routes(&f, cases[i].routes, 3);
		err_clear(&e);
		r = provider_delete(p, name, &e);
		EXPECTF(cases[i].want ? r < 0 && strstr(e.msg, cases[i].text) : r == 0,
		        "%s: %s (%d %s)", cases[i].what, cases[i].want ? "a failure" : "success", r,
		        e.msg);
	}

	/* a create whose operation is lost, and whose instance will not go */
	struct route cr[] = {
	        {get_line, not_found, inst, 0},
	        {"POST /1.0/instances?", op_async, NULL, 0},
	        {del_line, op_async, NULL, 0},
	        {"GET /1.0/operations/", op_lost, NULL, 0},
	};
	fake_routes(&f, cr, ARRAY_SIZE(cr));
	spec_init(&sp, name, "#!/bin/sh\n", NULL);
	err_clear(&e);
	r = provider_create(p, &sp, &in, &e);
	EXPECTF(r == PROVIDER_EMAYREMAIN && strstr(e.msg, "operation lost") &&
	                strstr(e.msg, "may remain"),
	        "a create whose operation is lost and whose instance cannot be deleted: "
	        "PROVIDER_EMAYREMAIN (%d %s)",
	        r, e.msg);
	/* ... and one whose instance goes */
	struct route cr2[] = {
	        {get_line, not_found, NULL, 0},
	        {"POST /1.0/instances?", op_async, NULL, 0},
	        {del_line, op_async, NULL, 0},
	        {"GET /1.0/operations/", op_lost, NULL, 0},
	};
	fake_routes(&f, cr2, ARRAY_SIZE(cr2));
	err_clear(&e);
	r = provider_create(p, &sp, &in, &e);
	EXPECTF(r == -EIO && strstr(e.msg, "operation lost") && !strstr(e.msg, "may remain"),
	        "a create whose operation is lost, nothing left: -EIO (%d %s)", r, e.msg);
	provider_free(p);
	fake_stop(&f);

	/* what the fake plays is what LXD answers for an operation it does not know */
	long st = api("GET", "/1.0/operations/0b0b0b0b-0000-4000-8000-000000000001/wait?timeout=1",
	              NULL, NULL, NULL);
	EXPECTF(st == 404, "LXD answers a wait on an unknown operation with 404 (%ld)", st);
}

/* Sets *flag after ms, on its own thread (a daemon being stopped meanwhile). */
struct later {
	atomic_bool *flag;
	long ms;
};

static void *set_later(void *arg)
{
	struct later *x = arg;
	clock_sleep_ms(x->ms);
	atomic_store(x->flag, true);
	return NULL;
}

/* Whether the trace holds a request of method whose URL holds what. */
static bool traced(const char *method, const char *what)
{
	bool hit = false;
	pthread_mutex_lock(&trace_lock);
	for (size_t i = 0; i < trace_n && !hit; i++)
		hit = strcmp(trace_v[i].method, method) == 0 && strstr(trace_v[i].url, what);
	pthread_mutex_unlock(&trace_lock);
	return hit;
}

/*
 * Every wait sees the call: a fake LXD that never answers an operation's
 * wait holds a call no longer than its deadline (not the wait's own
 * timeout), and the cancel flag ends requests in flight at once. A create
 * cancelled half-way sends nothing more (no cleanup: what kill -9 would
 * leave, its record makes the manager delete it) and says it may remain.
 */
static void test_deadlines_and_cancel(void)
{
	const char *op_async = fake_op_async, *not_found = fake_not_found;
	struct provider *p = NULL;
	/* health may take op + req = 3 s; its exec's own wait is 30 s */
	struct lxd_opts o = {.operation_timeout = 2, .request_timeout_ms = 1000};
	struct instance_spec sp;
	struct instance in;
	enum health h;
	struct err e = {0};
	struct fake f = {0};
	atomic_bool stop;
	pthread_t th;
	char name[80], exec_line[256];
	int64_t t0, took;
	int r;

	name_make(name, sizeof(name), manager, 0x50);
	snprintf(exec_line, sizeof(exec_line), "POST /1.0/instances/%s/exec?", name);
	if (!fake_instance(&f, name, "Running", &o, &p))
		return;
	struct route hang_exec[] = {
	        {f.get_line, f.inst, NULL, 0},
	        {exec_line, op_async, NULL, 0},
	        {"GET /1.0/operations/", fake_hang, NULL, 0},
	};
	fake_routes(&f, hang_exec, ARRAY_SIZE(hang_exec));
	t0 = clock_mono_ms();
	r = provider_health(p, name, &h, &e);
	took = clock_mono_ms() - t0;
	EXPECTF(r == -ETIMEDOUT && took >= 2500 && took < 6000 && strstr(e.msg, "deadline"),
	        "an exec whose wait never answers ends at the call's deadline (3 s), not after its "
	        "own 30 s (%d %s, %" PRId64 " ms)",
	        r, e.msg, took);

	/* the cancel flag ends a wait in flight */
	atomic_init(&stop, false);
	provider_set_cancel(p, &stop);
	struct later x = {&stop, 300};
	pthread_create(&th, NULL, set_later, &x);
	t0 = clock_mono_ms();
	r = provider_health(p, name, &h, &e);
	took = clock_mono_ms() - t0;
	pthread_join(th, NULL);
	EXPECTF(r == -ECANCELED && took < 1500,
	        "cancel ends a wait in flight (%d %s, %" PRId64 " ms)", r, e.msg, took);

	/* a create cancelled while LXD makes the instance: nothing more is sent */
	struct route hang_create[] = {
	        {f.get_line, not_found, NULL, 0},
	        {"POST /1.0/instances?", op_async, NULL, 0},
	        {"GET /1.0/operations/", fake_hang, NULL, 0},
	};
	fake_routes(&f, hang_create, ARRAY_SIZE(hang_create));
	atomic_store(&stop, false);
	trace_clear();
	lxd_set_trace(p, trace_fn, NULL);
	spec_init(&sp, name, "#!/bin/sh\n", SECRET "\n");
	pthread_create(&th, NULL, set_later, &x);
	t0 = clock_mono_ms();
	r = provider_create(p, &sp, &in, &e);
	took = clock_mono_ms() - t0;
	pthread_join(th, NULL);
	EXPECTF(r == PROVIDER_EMAYREMAIN && took < 1500 && strstr(e.msg, "cancelled") &&
	                strstr(e.msg, "may remain") && !strstr(e.msg, SECRET_V),
	        "a create cancelled half-way fails at once with PROVIDER_EMAYREMAIN (%d %s, "
	        "%" PRId64 " ms)",
	        r, e.msg, took);
	EXPECTF(traced("POST", "/1.0/instances?") && !traced("DELETE", name) &&
	                !traced("PUT", name),
	        "... and sends nothing after the cancel: no cleanup, as after kill -9");
	r = provider_delete(p, name, &e);
	EXPECTF(r == -ECANCELED, "a call made while cancelled fails at once (%d %s)", r, e.msg);
	provider_set_cancel(p, NULL);
	lxd_set_trace(p, NULL, NULL);
	provider_free(p);
	fake_stop(&f);
}

/* One call against a silent LXD: it fails, and within limit_ms. */
#define SILENT_CALL(what, limit_ms, call)                                                          \
	do {                                                                                       \
		int64_t t0_ = clock_mono_ms(), took_;                                              \
		int r_ = (call);                                                                   \
		took_ = clock_mono_ms() - t0_;                                                     \
		EXPECTF(r_ < 0 && took_ < (limit_ms),                                              \
		        "silent LXD: %s fails within its deadline (%d %s, %" PRId64 " ms)", what,  \
		        r_, e.msg, took_);                                                         \
		err_clear(&e);                                                                     \
	} while (0)

/*
 * docs/deadlines.md, rows "LXD requests and operation waits" and
 * "Provider call": an LXD that takes connections and never answers (one
 * stopped with SIGSTOP, or wedged) holds no call past its deadline, nor
 * for LXD's own 30 s request timeout: with request_timeout 1 s and
 * operation_timeout 2 s, list and get end by 2 x 1 s, health by 2 + 1 s,
 * delete by its retries' 2 s, create at its first request. An LXD that is
 * down (nothing listens on the socket) fails them at once.
 */
static void test_silent_lxd(void)
{
	struct lxd_opts o = {.operation_timeout = 2, .stop_timeout = 1, .request_timeout_ms = 1000};
	struct route all_hang[] = {{"", fake_hang, NULL, 0}};
	struct instance_list l = {0};
	struct provider *p = NULL;
	struct instance_spec sp;
	struct instance in;
	struct fake f = {0};
	struct err e = {0};
	enum health h;
	char name[80];

	name_make(name, sizeof(name), manager, 0x51);
	if (!fake_instance(&f, name, "Running", &o, &p))
		return;
	fake_routes(&f, all_hang, ARRAY_SIZE(all_hang));
	spec_init(&sp, name, "#!/bin/sh\n", SECRET "\n");
	SILENT_CALL("list", 3000, provider_list(p, &l, &e));
	SILENT_CALL("get", 3000, provider_get(p, name, &in, &e));
	SILENT_CALL("health", 4000, provider_health(p, name, &h, &e));
	SILENT_CALL("delete", 4500, provider_delete(p, name, &e));
	SILENT_CALL("create", 4500, provider_create(p, &sp, &in, &e));
	EXPECTF(f.n_held < ARRAY_SIZE(f.held), "silent LXD: every request was held (%zu)",
	        f.n_held);
	/* LXD down: its socket is there, nobody listens */
	fake_stop(&f);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	str_copy(sa.sun_path, f.path, sizeof(sa.sun_path));
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		SILENT_CALL("list (LXD down)", 500, provider_list(p, &l, &e));
		SILENT_CALL("delete (LXD down)", 3000, provider_delete(p, name, &e));
	}
	if (fd >= 0)
		close(fd);
	unlink(f.path);
	instance_list_release(&l);
	provider_free(p);
}

/*
 * The same on the real LXD: a create from the big image (seconds of
 * unpacking) cancelled after 300 ms returns at once and says the instance
 * may remain; once LXD's create ended, a delete removes it.
 */
static void test_create_cancelled(void)
{
	const char *big = getenv("LXD_TEST_BIG_IMAGE");
	struct config_flavor fl = flavor;
	struct config_provider cfg;
	struct provider *p = NULL;
	struct instance_spec sp;
	struct instance in;
	struct err e = {0};
	atomic_bool stop;
	struct later x = {&stop, 300};
	pthread_t th;
	char name[80];
	int64_t t0, took;
	int r;

	if (!big || !*big) {
		EXPECTF(0, "LXD_TEST_BIG_IMAGE is not set");
		return;
	}
	fl.image = (char *)big;
	name_make(name, sizeof(name), manager, 0x51);
	config_init(&cfg, LXD_BOOTSTRAP_EXEC);
	if (open_lxd(&cfg, manager, NULL, NULL, &p, &e) < 0) {
		EXPECTF(0, "provider_new (%s)", e.msg);
		return;
	}
	atomic_init(&stop, false);
	provider_set_cancel(p, &stop);
	spec_init(&sp, name, "#!/bin/sh\nexec sleep 600\n", SECRET "\n");
	sp.flavor = &fl;
	pthread_create(&th, NULL, set_later, &x);
	t0 = clock_mono_ms();
	r = provider_create(p, &sp, &in, &e);
	took = clock_mono_ms() - t0;
	pthread_join(th, NULL);
	EXPECTF(r == PROVIDER_EMAYREMAIN && took < 2000 && strstr(e.msg, "may remain"),
	        "a create cancelled after 300 ms returns at once: may remain (%d %s, %" PRId64
	        " ms)",
	        r, e.msg, took);
	provider_set_cancel(p, NULL);
	/* what it left goes once LXD's create has ended (a delete before would race it) */
	bool left = instance_exists(name) && wait_created(name, 120000);
	r = provider_delete(p, name, &e);
	EXPECTF(r == 0 && !instance_exists(name),
	        "... and what it left is deleted later (left: %s; delete: %d %s)",
	        left ? "an instance" : "nothing", r, e.msg);
	provider_free(p);
}

int main(void)
{
	struct config_provider cfg;
	struct provider *p = NULL;
	struct err e = {0};
	char a[80], b[80], c[80], d[80];

	sock = getenv("LXD_SOCKET");
	project = getenv("LXD_TEST_PROJECT");
	pool = getenv("LXD_TEST_POOL");
	network = getenv("LXD_TEST_NETWORK");
	image = getenv("LXD_TEST_IMAGE");
	manager = getenv("LXD_TEST_MANAGER");
	if (!sock || !project || !pool || !network || !image || !manager) {
		printf("FAIL environment: LXD_SOCKET, LXD_TEST_PROJECT, LXD_TEST_POOL, "
		       "LXD_TEST_NETWORK, LXD_TEST_IMAGE, LXD_TEST_MANAGER\n0 passed, 1 failed\n");
		return 1;
	}
	flavor.image = (char *)image;
	if (httpc_new(&raw, &e) < 0) {
		printf("FAIL httpc: %s\n0 passed, 1 failed\n", e.msg);
		return 1;
	}
	name_make(a, sizeof(a), manager, 1);
	name_make(b, sizeof(b), manager, 2);
	name_make(c, sizeof(c), manager, 3);
	name_make(d, sizeof(d), manager, 4);

	config_init(&cfg, LXD_BOOTSTRAP_EXEC);
	int r = open_lxd(&cfg, manager, NULL, NULL, &p, &e);
	EXPECTF(r == 0 && p && strcmp(provider_type(p), "lxd") == 0,
	        "provider_new(\"lxd\") (%d %s)", r, e.msg);
	if (r < 0) {
		test_summary();
		return 1;
	}
	lxd_set_trace(p, trace_fn, NULL);

	test_create_exec(p, a);
	test_list_filters(p, a);
	test_health(p, a);
	test_pull(p, a);
	test_delete(p, a);
	test_stopped(p, b);
	test_parallel(p);
	test_two_projects();
	test_cloud_init(c);
	test_create_failures(d);
	test_create_timeout();
	test_long_name();
	test_denylist();
	test_failed_lists();
	test_lost_operations();
	test_deadlines_and_cancel();
	test_silent_lxd();
	test_create_cancelled();

	provider_free(p);
	trace_clear();
	free(trace_v);
	httpc_free(raw);
	return test_summary();
}
