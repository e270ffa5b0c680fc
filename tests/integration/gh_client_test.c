/*
 * The GitHub client against ghsim, fault by fault: retries on 5xx, 429 and
 * an exhausted rate limit (fail fast, no request sent until the reset), a
 * bar on one rate-limit resource leaving the others alone, dropped
 * connections, timeouts, the per-call deadline, cancellation from another
 * thread, malformed and oversized bodies, 304s served from cache, bad
 * credentials, a list failing on page 2, busy runners, JIT 409s (looked up by
 * name, repo and org scope), the job a runner ran found in bounded pages
 * (never asked of a repository out of scope), App authentication and its
 * token margin, a GHES-style /api/v3 base URL, and the runner tarball.
 * Started by test_github_client, which runs ghsim; the environment names it:
 *   GHSIM_URL  GH_TOKEN_FILE  GH_APP_ID  GH_INSTALLATION_ID  GH_APP_KEY_FILE
 *   GH_APP_BADKEY_FILE  GH_STATE_DIR
 * Arguments, if any, select cases by name. Last line: "N passed, N failed".
 */
#include "util/common.h"
#include "testlib.h"
#include "github/github.h"
#include "util/clock.h"
#include "util/fileutil.h"
#include "util/httpc.h"
#include "util/strutil.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/time.h>
#include <jansson.h>

static const char *ghsim;
static char *token, *app_key, *bad_key;
static int64_t app_id, installation_id;
static const char *state_dir;

/* ---- ghsim's control API ---- */

static json_t *ctl(const char *method, const char *path, const char *body)
{
	return test_ghsim(ghsim, method, path, body);
}

static bool ctl_ok(const char *method, const char *path, const char *body)
{
	return test_ghsim_ok(ghsim, method, path, body);
}

/* A counter of /_ghsim/stats ("requests", "rate_counted", "not_modified"), -1 on error. */
static int64_t sim_stat(const char *key)
{
	json_t *j = ctl("GET", "/_ghsim/stats", NULL);
	int64_t v = -1;
	if (j && json_is_integer(json_object_get(j, key)))
		v = json_integer_value(json_object_get(j, key));
	json_decref(j);
	return v;
}

/* The calls ghsim saw on routes whose name contains part. */
/* Wait (up to secs) until ghsim holds a runner of that name. */
static bool sim_has_runner(const char *name, int secs)
{
	for (int i = 0; i < secs * 10; i++) {
		json_t *a = ctl("GET", "/_ghsim/runners", NULL), *v;
		size_t k;
		bool found = false;
		json_array_foreach(a, k, v)
		{
			const char *n = json_string_value(json_object_get(v, "name"));
			found = found || (n && strcmp(n, name) == 0);
		}
		json_decref(a);
		if (found)
			return true;
		usleep(100 * 1000);
	}
	return false;
}

static int64_t sim_route(const char *part)
{
	json_t *j = ctl("GET", "/_ghsim/stats", NULL), *by, *v;
	const char *k;
	int64_t n = 0;

	by = j ? json_object_get(j, "by_route") : NULL;
	json_object_foreach(by, k, v)
	{
		if (strstr(k, part))
			n += json_integer_value(v);
	}
	json_decref(j);
	return n;
}

static bool fault(const char *json)
{
	return ctl_ok("POST", "/_ghsim/faults", json);
}

/*
 * The "skip" left on fault number id (1-based), -1 on error. A fault with a
 * large skip is a counter: each request it matches lowers it by one.
 */
static int64_t fault_skip(size_t id)
{
	json_t *j = ctl("GET", "/_ghsim/faults", NULL);
	int64_t v = -1;
	if (j && json_is_array(j) && id >= 1 && id <= json_array_size(j))
		v = json_integer_value(json_object_get(json_array_get(j, id - 1), "skip"));
	json_decref(j);
	return v;
}

/* Add runners; returns the id of the first, -1 on error. */
static int64_t add_runners(const char *json)
{
	json_t *j = ctl("POST", "/_ghsim/runners", json), *a;
	int64_t id = -1;
	a = j ? json_object_get(j, "runners") : NULL;
	if (a && json_array_size(a) > 0)
		id = json_integer_value(json_object_get(json_array_get(a, 0), "id"));
	json_decref(j);
	return id;
}

/* ---- clients ---- */

struct client {
	struct config cfg;
	struct github *gh;
	char api_url[256], path[64], empty[1];
};

struct client_opts {
	bool org;
	bool app;
	const char *token;   /* NULL: the good one */
	const char *key;     /* App key, NULL: the good one */
	int timeout;         /* request timeout, 0: 5 s */
	int retries;         /* 0: default, -1: none */
	long backoff_ms;     /* 0: 50..200 ms */
	size_t max_response; /* 0: default */
	const char *api_url; /* NULL: ghsim */
	const char *proxy;   /* NULL: "" (the environment's) */
	const char *ca_file; /* NULL: "" (the system store) */
};

static int client_new(struct client *c, const struct client_opts *o, struct err *e)
{
	struct github_opts go;

	memset(c, 0, sizeof(*c));
	str_copy(c->api_url, o->api_url ? o->api_url : ghsim, sizeof(c->api_url));
	str_copy(c->path, o->org ? "octo-org" : "octo/hello", sizeof(c->path));
	c->cfg.github.api_url = c->api_url;
	c->cfg.github.path = c->path;
	c->cfg.github.is_org = o->org;
	c->cfg.github.ca_file = (char *)(o->ca_file ? o->ca_file : c->empty);
	c->cfg.github.proxy = (char *)(o->proxy ? o->proxy : c->empty);
	c->cfg.github.connect_timeout = 2;
	c->cfg.github.request_timeout = o->timeout ? o->timeout : 5;
	if (o->app) {
		c->cfg.github.use_app = true;
		c->cfg.github.app.app_id = app_id;
		c->cfg.github.app.installation_id = installation_id;
		c->cfg.github.app.private_key.value = (char *)(o->key ? o->key : app_key);
	} else {
		/* as given: a copy into a fixed buffer could cut a long token short */
		c->cfg.github.token.value = (char *)(o->token ? o->token : token);
	}
	github_opts_default(&go);
	go.backoff_base_ms = o->backoff_ms ? o->backoff_ms : 50;
	go.backoff_max_ms = o->backoff_ms ? o->backoff_ms : 200;
	if (o->retries)
		go.max_retries = o->retries < 0 ? 0 : o->retries;
	if (o->max_response)
		go.max_response = o->max_response;
	return github_new(&c->cfg, &go, &c->gh, e);
}

static void client_free(struct client *c)
{
	github_free(c->gh);
	c->gh = NULL;
}

#define CLIENT(c, ...)                                                                             \
	struct client c;                                                                           \
	do {                                                                                       \
		struct err ce_ = {0};                                                              \
		REQUIREF(client_new(&c, &(struct client_opts){__VA_ARGS__}, &ce_) == 0, "%s",      \
		         ce_.msg);                                                                 \
	} while (0)

static double now_s(void)
{
	return (double)clock_mono_ms() / 1000;
}

/* The installation tokens ghsim minted so far, in both formats (JSON array of {token, format}). */
static json_t *sim_tokens(void)
{
	json_t *j = ctl("GET", "/_ghsim/app", NULL), *a = NULL;
	if (j)
		a = json_incref(json_object_get(j, "tokens"));
	json_decref(j);
	return a;
}

/* The last installation token ghsim minted ("" when none); format gets its format. */
static const char *sim_last_token(json_t *tokens, const char **format)
{
	json_t *t = json_array_get(tokens, json_array_size(tokens) - 1);
	const char *f = json_string_value(json_object_get(t, "format"));
	const char *v = json_string_value(json_object_get(t, "token"));

	if (format)
		*format = f ? f : "";
	return v ? v : "";
}

/* A counter of GET /_ghsim/app ("issued" or "s2s_header", then the key), -1 on error. */
static int64_t sim_app(const char *group, const char *key)
{
	json_t *j = ctl("GET", "/_ghsim/app", NULL);
	json_t *v = json_object_get(json_object_get(j, group), key);
	int64_t n = json_is_integer(v) ? json_integer_value(v) : -1;
	json_decref(j);
	return n;
}

/* Whether any 12 bytes in a row of s occur in msg. */
static bool holds_part_of(const char *msg, const char *s)
{
	char win[13];
	size_t n = strlen(s);

	for (size_t i = 0; i + 12 <= n; i++) {
		memcpy(win, s + i, 12);
		win[12] = '\0';
		if (strstr(msg, win))
			return true;
	}
	return false;
}

/*
 * No secret in msg: not the PAT, nothing that starts a GitHub token ("ghs_")
 * or a JWT ("eyJ"), and no piece of any installation token ghsim minted,
 * whichever format (a token cut anywhere leaves its pieces elsewhere).
 */
static bool secret_free(const char *msg)
{
	json_t *tokens = sim_tokens(), *t;
	bool ok = tokens && !strstr(msg, token) && !strstr(msg, "ghs_") && !strstr(msg, "eyJ");
	size_t i;

	json_array_foreach(tokens, i, t)
	{
		ok = ok && !holds_part_of(msg, json_string_value(json_object_get(t, "token")));
	}
	json_decref(tokens);
	return ok;
}

/* ---- cases ---- */

static int case_list_pages_and_etag(void)
{
	struct github_runner_list l = {0};
	struct github_stats st;
	struct err e = {0};
	int r;

	REQUIREF(add_runners(
	                 "{\"scope\":\"repos/octo/hello\",\"name\":\"ci-{hex}\",\"count\":230}") >
	                 0,
	         "add");
	REQUIREF(add_runners("{\"scope\":\"repos/octo/"
	                     "hello\",\"name\":\"ci-east-{hex}\",\"count\":15}") > 0,
	         "add");
	REQUIREF(add_runners("{\"scope\":\"orgs/octo-org\",\"name\":\"ci-{hex}\",\"count\":3}") > 0,
	         "add");
	CLIENT(c);
	r = github_list_runners(c.gh, "ci", &l, &e);
	REQUIREF(r == 0, "%s", e.msg);
	REQUIREF(l.complete && l.n == 230, "n=%zu", l.n);
	github_runner_list_release(&l);
	github_get_stats(c.gh, &st);
	REQUIREF(st.requests_sent == 3 && st.requests_counted == 3,
	         "sent %" PRIu64 " counted %" PRIu64, st.requests_sent, st.requests_counted);
	REQUIREF(st.rate_limit == 5000 && st.rate_remaining == 4997, "rate %" PRId64 "/%" PRId64,
	         st.rate_remaining, st.rate_limit);

	/* unchanged: three 304s, answered from the cache, nothing counted */
	r = github_list_runners(c.gh, NULL, &l, &e);
	REQUIREF(r == 0 && l.complete && l.n == 245, "r=%d n=%zu %s", r, l.n, e.msg);
	github_runner_list_release(&l);
	github_get_stats(c.gh, &st);
	REQUIREF(st.requests_sent == 6 && st.requests_counted == 3 && st.not_modified == 3,
	         "sent %" PRIu64 " counted %" PRIu64 " 304 %" PRIu64, st.requests_sent,
	         st.requests_counted, st.not_modified);
	REQUIREF(sim_stat("not_modified") == 3 && sim_stat("rate_counted") == 3, "ghsim disagrees");

	/* a change on page 3 is seen; pages 1-2 still come from the cache */
	REQUIREF(add_runners("{\"scope\":\"repos/octo/hello\",\"name\":\"ci-{hex}\"}") > 0, "add");
	r = github_list_runners(c.gh, "ci", &l, &e);
	REQUIREF(r == 0 && l.n == 231, "r=%d n=%zu %s", r, l.n, e.msg);
	github_runner_list_release(&l);
	client_free(&c);

	/* organization scope is its own list */
	CLIENT(o, .org = true);
	r = github_list_runners(o.gh, "ci", &l, &e);
	REQUIREF(r == 0 && l.n == 3, "r=%d n=%zu %s", r, l.n, e.msg);
	github_runner_list_release(&l);
	client_free(&o);
	return 0;
}

static int case_5xx_then_success(void)
{
	struct github_runner_list l = {0};
	struct github_stats st;
	struct err e = {0};
	int r;

	REQUIREF(add_runners("{\"scope\":\"repos/octo/hello\",\"name\":\"ci-{hex}\",\"count\":3}") >
	                 0,
	         "add");
	REQUIREF(fault("{\"match\":\"/actions/"
	               "runners\",\"method\":\"GET\",\"status\":500,\"count\":2}"),
	         "fault");
	CLIENT(c);
	r = github_list_runners(c.gh, "ci", &l, &e);
	REQUIREF(r == 0 && l.complete && l.n == 3, "r=%d %s", r, e.msg);
	github_runner_list_release(&l);
	github_get_stats(c.gh, &st);
	REQUIREF(st.retries == 2 && st.requests_sent == 3, "retries %" PRIu64 " sent %" PRIu64,
	         st.retries, st.requests_sent);

	/* more 5xx than retries: an error that says so, and no list */
	REQUIREF(fault("{\"match\":\"/actions/"
	               "runners\",\"method\":\"GET\",\"status\":502,\"count\":10}"),
	         "fault");
	l.complete = true;
	r = github_list_runners(c.gh, "ci", &l, &e);
	REQUIREF(r == -EIO && !l.complete && l.n == 0, "r=%d n=%zu", r, l.n);
	REQUIREF(strstr(e.msg, "list runners") && strstr(e.msg, "502") &&
	                 strstr(e.msg, "4 attempts"),
	         "msg: %s", e.msg);
	client_free(&c);

	/* a non-idempotent POST (JIT) is not repeated after a 5xx */
	REQUIREF(ctl_ok("DELETE", "/_ghsim/faults", NULL), "clear");
	REQUIREF(fault("{\"match\":\"generate-jitconfig\",\"status\":500,\"count\":1}"), "fault");
	CLIENT(j);
	struct github_jit jit = {0};
	struct strv labels = {(char *[]){"self-hosted"}, 1};
	int64_t before = sim_stat("requests");
	r = github_generate_jitconfig(j.gh, "ci-00000000000a", 1, &labels, NULL, &jit, &e);
	REQUIREF(r == -EIO && !jit.encoded_jit_config, "r=%d", r);
	REQUIREF(sim_stat("requests") == before + 1, "sent again?");
	client_free(&j);
	return 0;
}

static int case_retry_after(void)
{
	struct github_runner_list l = {0};
	struct github_stats st;
	struct err e = {0};
	int64_t before;
	int r;

	REQUIREF(fault("{\"match\":\"/actions/"
	               "runners\",\"status\":429,\"retry_after\":2,\"count\":1}"),
	         "fault");
	CLIENT(c);
	r = github_list_runners(c.gh, NULL, &l, &e);
	REQUIREF(r == -EAGAIN && !l.complete, "r=%d %s", r, e.msg);
	REQUIREF(strstr(e.msg, "429"), "msg: %s", e.msg);
	github_get_stats(c.gh, &st);
	REQUIREF(st.barred_until > time(NULL) && st.barred_until <= time(NULL) + 2, "barred %lld",
	         (long long)st.barred_until);
	/* while barred: fail fast, nothing sent */
	before = sim_stat("requests");
	double t0 = now_s();
	r = github_list_runners(c.gh, NULL, &l, &e);
	REQUIREF(r == -EAGAIN && now_s() - t0 < 0.5, "r=%d", r);
	struct github_token tok = {0};
	REQUIREF(github_registration_token(c.gh, &tok, &e) == -EAGAIN, "token while barred");
	REQUIREF(strstr(e.msg, "not calling GitHub"), "msg: %s", e.msg);
	REQUIREF(sim_stat("requests") == before, "a request went out while barred");
	/* then it works again */
	while (time(NULL) < st.barred_until)
		usleep(100000);
	r = github_list_runners(c.gh, NULL, &l, &e);
	REQUIREF(r == 0 && l.complete, "r=%d %s", r, e.msg);
	github_runner_list_release(&l);
	client_free(&c);
	return 0;
}

static int case_secondary_limit(void)
{
	struct github_runner_list l = {0};
	struct github_stats st;
	struct err e = {0};
	int r;

	/* a 403 that says "secondary rate limit", with no header: a minute's pause, not -EACCES */
	REQUIREF(fault("{\"match\":\"/actions/runners\",\"status\":403,\"count\":1}"), "fault");
	CLIENT(c);
	r = github_list_runners(c.gh, NULL, &l, &e);
	REQUIREF(r == -EAGAIN && strstr(e.msg, "secondary limit"), "r=%d %s", r, e.msg);
	github_get_stats(c.gh, &st);
	REQUIREF(st.barred_until >= time(NULL) + 55, "barred %lld", (long long)st.barred_until);
	client_free(&c);

	/* a 403 about permissions is not a rate limit */
	REQUIREF(fault("{\"match\":\"/actions/runners\",\"status\":403,\"count\":1,"
	               "\"body\":{\"message\":\"Resource not accessible by integration\"}}"),
	         "fault");
	CLIENT(d);
	r = github_list_runners(d.gh, NULL, &l, &e);
	REQUIREF(r == -EACCES && strstr(e.msg, "Resource not accessible"), "r=%d %s", r, e.msg);
	github_get_stats(d.gh, &st);
	REQUIREF(st.barred_until == 0, "barred");
	client_free(&d);
	return 0;
}

static int case_rate_limit_exhausted(void)
{
	struct github_runner_list l = {0};
	struct github_stats st;
	struct err e = {0};
	int64_t before;
	int r;

	REQUIREF(ctl_ok("POST", "/_ghsim/ratelimit", "{\"remaining\":0,\"reset_in\":2}"),
	         "ratelimit");
	CLIENT(c);
	r = github_list_runners(c.gh, NULL, &l, &e);
	REQUIREF(r == -EAGAIN, "r=%d %s", r, e.msg);
	REQUIREF(strstr(e.msg, "rate limit") && strstr(e.msg, "403"), "msg: %s", e.msg);
	github_get_stats(c.gh, &st);
	REQUIREF(st.rate_remaining == 0 && st.barred_until >= time(NULL), "remaining %" PRId64,
	         st.rate_remaining);
	before = sim_stat("requests");
	for (int i = 0; i < 5; i++)
		REQUIREF(github_list_runners(c.gh, NULL, &l, &e) == -EAGAIN, "call %d", i);
	REQUIREF(sim_stat("requests") == before, "requests were sent before the reset");
	while (time(NULL) < st.barred_until)
		usleep(100000);
	r = github_list_runners(c.gh, NULL, &l, &e);
	REQUIREF(r == 0, "after the reset: r=%d %s", r, e.msg);
	github_runner_list_release(&l);
	client_free(&c);

	/* the last unit spent on a success: the next call is not even tried */
	REQUIREF(ctl_ok("POST", "/_ghsim/ratelimit", "{\"remaining\":1,\"reset_in\":30}"),
	         "ratelimit");
	CLIENT(d);
	r = github_list_runners(d.gh, NULL, &l, &e);
	REQUIREF(r == 0, "r=%d %s", r, e.msg);
	github_runner_list_release(&l);
	before = sim_stat("requests");
	r = github_delete_runner(d.gh, 12345, &e);
	REQUIREF(r == -EAGAIN, "r=%d", r);
	REQUIREF(sim_stat("requests") == before, "a request was sent with 0 left");
	client_free(&d);
	return 0;
}

static int case_dropped_connection(void)
{
	struct github_runner_list l = {0};
	struct github_stats st;
	struct github_token tok = {0};
	struct err e = {0};
	int r;

	REQUIREF(fault("{\"match\":\"/actions/"
	               "runners\",\"method\":\"GET\",\"drop\":true,\"count\":1}"),
	         "fault");
	CLIENT(c);
	r = github_list_runners(c.gh, NULL, &l, &e);
	REQUIREF(r == 0 && l.complete, "r=%d %s", r, e.msg);
	github_runner_list_release(&l);
	github_get_stats(c.gh, &st);
	REQUIREF(st.retries == 1, "retries %" PRIu64, st.retries);
	client_free(&c);

	/* tokens are harmless to ask for again */
	REQUIREF(fault("{\"match\":\"registration-token\",\"drop\":true,\"count\":1}"), "fault");
	CLIENT(t);
	r = github_registration_token(t.gh, &tok, &e);
	REQUIREF(r == 0 && tok.token && tok.expires_at > time(NULL), "r=%d %s", r, e.msg);
	github_token_release(&tok);
	client_free(&t);

	/* a JIT request that may have reached GitHub is not sent twice */
	REQUIREF(fault("{\"match\":\"generate-jitconfig\",\"drop\":true,\"count\":1}"), "fault");
	CLIENT(j);
	struct github_jit jit = {0};
	struct strv labels = {(char *[]){"self-hosted"}, 1};
	r = github_generate_jitconfig(j.gh, "ci-00000000000b", 1, &labels, NULL, &jit, &e);
	REQUIREF(r == -ECONNRESET, "r=%d %s", r, e.msg);
	github_get_stats(j.gh, &st);
	REQUIREF(st.requests_sent == 1, "sent %" PRIu64, st.requests_sent);
	client_free(&j);

	/* nobody listening: a transport error, retried, then reported */
	CLIENT(dead, .api_url = "http://127.0.0.1:1", .retries = 1);
	r = github_list_runners(dead.gh, NULL, &l, &e);
	REQUIREF(r == -ECONNREFUSED && strstr(e.msg, "2 attempts"), "r=%d %s", r, e.msg);
	client_free(&dead);
	return 0;
}

static int case_timeout(void)
{
	struct github_runner_list l = {0};
	struct err e = {0};
	double t0;
	int r;

	REQUIREF(fault("{\"match\":\"/actions/runners\",\"delay\":4,\"count\":1}"), "fault");
	CLIENT(c, .timeout = 1, .retries = -1);
	t0 = now_s();
	r = github_list_runners(c.gh, NULL, &l, &e);
	REQUIREF(r == -ETIMEDOUT, "r=%d %s", r, e.msg);
	REQUIREF(now_s() - t0 < 2.5, "took %.1fs", now_s() - t0);
	REQUIREF(strstr(e.msg, "timed out"), "msg: %s", e.msg);
	client_free(&c);

	/* a retry gets through */
	REQUIREF(fault("{\"match\":\"/actions/runners\",\"delay\":4,\"count\":1}"), "fault");
	CLIENT(d, .timeout = 1, .retries = 2);
	t0 = now_s();
	r = github_list_runners(d.gh, NULL, &l, &e);
	REQUIREF(r == 0 && now_s() - t0 < 3.5, "r=%d %s (%.1fs)", r, e.msg, now_s() - t0);
	github_runner_list_release(&l);

	/*
	 * A POST that timed out on a reused (keep-alive) connection did leave: it
	 * is a timeout, not "never sent", so a JIT request is not sent again.
	 * (libcurl reports no connect time for a reused connection.)
	 */
	struct strv labels = {(char *[]){"self-hosted"}, 1};
	struct github_jit jit = {0};
	int64_t jits = sim_route("generate-jitconfig");
	REQUIREF(fault("{\"match\":\"generate-jitconfig\",\"delay\":3,\"count\":1}"), "fault");
	r = github_generate_jitconfig(d.gh, "ci-0000000000f0", 1, &labels, NULL, &jit, &e);
	REQUIREF(r == -ETIMEDOUT && strstr(e.msg, "timed out"), "r=%d %s", r, e.msg);
	REQUIREF(sim_route("generate-jitconfig") == jits + 1, "JIT sent %" PRId64 " times",
	         sim_route("generate-jitconfig") - jits);
	client_free(&d);
	/* ghsim finishes the delayed JIT after we gave up on it: wait for that
	 * here, or it registers its runner in the middle of a later case */
	REQUIREF(sim_has_runner("ci-0000000000f0", 30), "the delayed JIT never completed");
	return 0;
}

static int case_malformed(void)
{
	struct github_runner_list l = {0};
	struct github_runner one = {0};
	struct github_jit jit = {0};
	struct err e = {0};
	int r;

	REQUIREF(fault("{\"match\":\"/actions/runners\",\"status\":200,\"body\":\"{not json\","
	               "\"count\":1}"),
	         "fault");
	CLIENT(c);
	r = github_list_runners(c.gh, NULL, &l, &e);
	REQUIREF(r == -EPROTO && !l.complete, "r=%d %s", r, e.msg);
	REQUIREF(strstr(e.msg, "list runners") && strstr(e.msg, "malformed JSON"), "msg: %s",
	         e.msg);

	REQUIREF(fault("{\"match\":\"/actions/runners\",\"status\":200,\"body\":"
	               "{\"total_count\":1,\"runners\":[{\"id\":\"7\",\"name\":\"x\"}]},\"count\":"
	               "1}"),
	         "fault");
	r = github_list_runners(c.gh, NULL, &l, &e);
	REQUIREF(r == -EPROTO && strstr(e.msg, "runners[0].id is not an integer"), "r=%d %s", r,
	         e.msg);

	REQUIREF(fault("{\"match\":\"/actions/runners/"
	               "5\",\"status\":200,\"body\":[1,2],\"count\":1}"),
	         "fault");
	r = github_get_runner(c.gh, 5, &one, &e);
	REQUIREF(r == -EPROTO && strstr(e.msg, "get runner 5"), "r=%d %s", r, e.msg);

	/* a JIT answer with the wrong shape: no secret in the message */
	REQUIREF(fault("{\"match\":\"generate-jitconfig\",\"status\":201,\"body\":"
	               "{\"runner\":{\"id\":0},\"encoded_jit_config\":\"eyJTOPSECRET\"},\"count\":"
	               "1}"),
	         "fault");
	struct strv labels = {(char *[]){"self-hosted"}, 1};
	r = github_generate_jitconfig(c.gh, "ci-00000000000c", 1, &labels, NULL, &jit, &e);
	REQUIREF(r == -EPROTO && !strstr(e.msg, "TOPSECRET"), "r=%d %s", r, e.msg);
	client_free(&c);
	return 0;
}

static int case_too_big(void)
{
	struct github_runner_list l = {0};
	struct err e = {0};
	int r;

	REQUIREF(add_runners(
	                 "{\"scope\":\"repos/octo/hello\",\"name\":\"ci-{hex}\",\"count\":50}") > 0,
	         "add");
	CLIENT(c, .max_response = 4096);
	r = github_list_runners(c.gh, "ci", &l, &e);
	REQUIREF(r == -E2BIG && !l.complete && l.n == 0, "r=%d %s", r, e.msg);
	REQUIREF(strstr(e.msg, "larger than 4096 bytes"), "msg: %s", e.msg);
	client_free(&c);
	return 0;
}

static int case_bad_token(void)
{
	struct github_runner_list l = {0};
	struct github_stats st;
	struct err e = {0};
	int r;

	CLIENT(c, .token = "ghp_wrong_token_0000");
	r = github_list_runners(c.gh, NULL, &l, &e);
	REQUIREF(r == -EACCES, "r=%d %s", r, e.msg);
	REQUIREF(strcmp(e.msg, "GitHub rejected the credentials (401 Bad credentials)") == 0,
	         "msg: %s", e.msg);
	REQUIREF(!strstr(e.msg, "ghp_wrong"), "token in message");
	github_get_stats(c.gh, &st);
	REQUIREF(st.requests_sent == 1, "401 retried: %" PRIu64, st.requests_sent);
	REQUIREF(github_check_scope(c.gh, &e) == -EACCES, "check scope");
	client_free(&c);

	CLIENT(g);
	REQUIREF(github_check_scope(g.gh, &e) == 0, "%s", e.msg);
	client_free(&g);
	return 0;
}

static int case_page2_fails(void)
{
	struct github_runner_list l = {0};
	struct err e = {0};
	int r;

	REQUIREF(add_runners(
	                 "{\"scope\":\"repos/octo/hello\",\"name\":\"ci-{hex}\",\"count\":150}") >
	                 0,
	         "add");
	REQUIREF(fault("{\"match\":\"page=2\",\"status\":500,\"count\":100}"), "fault");
	CLIENT(c);
	l.complete = true;
	r = github_list_runners(c.gh, "ci", &l, &e);
	REQUIREF(r == -EIO && !l.complete && l.n == 0, "r=%d complete=%d n=%zu", r, l.complete,
	         l.n);
	REQUIREF(strstr(e.msg, "page 2"), "msg: %s", e.msg);
	/* the same failure from the cache path: page 1 is a 304 now */
	r = github_list_runners(c.gh, "ci", &l, &e);
	REQUIREF(r == -EIO && !l.complete && l.n == 0, "r=%d", r);
	REQUIREF(ctl_ok("DELETE", "/_ghsim/faults", NULL), "clear");
	r = github_list_runners(c.gh, "ci", &l, &e);
	REQUIREF(r == 0 && l.complete && l.n == 150, "r=%d n=%zu %s", r, l.n, e.msg);
	github_runner_list_release(&l);
	client_free(&c);
	return 0;
}

static int case_delete(void)
{
	struct github_runner one = {0};
	struct err e = {0};
	int64_t busy, idle;
	int r;

	busy = add_runners("{\"scope\":\"repos/octo/hello\",\"name\":\"ci-{hex}\",\"busy\":true}");
	idle = add_runners("{\"scope\":\"repos/octo/hello\",\"name\":\"ci-{hex}\"}");
	REQUIREF(busy > 0 && idle > 0, "add");
	CLIENT(c);
	r = github_delete_runner(c.gh, busy, &e);
	REQUIREF(r == -EBUSY && strstr(e.msg, "running a job"), "r=%d %s", r, e.msg);
	r = github_get_runner(c.gh, busy, &one, &e);
	REQUIREF(r == 0 && one.busy && one.id == busy, "r=%d %s", r, e.msg);
	github_runner_release(&one);
	REQUIREF(github_delete_runner(c.gh, idle, &e) == 0, "%s", e.msg);
	r = github_get_runner(c.gh, idle, &one, &e);
	REQUIREF(r == -ENOENT, "r=%d", r);
	/* already gone is success */
	REQUIREF(github_delete_runner(c.gh, idle, &e) == 0, "%s", e.msg);
	client_free(&c);
	return 0;
}

static int case_jit(void)
{
	struct strv labels = {(char *[]){"self-hosted", "linux", "x64"}, 3};
	struct github_runner_list l = {0};
	struct github_jit a = {0}, b = {0};
	struct github_runner one = {0};
	struct github_token t = {0};
	struct err e = {0};
	int r;

	int64_t lists;

	/* 250 other runners: listing them all would take 3 pages */
	REQUIREF(add_runners("{\"scope\":\"repos/octo/hello\",\"name\":\"other-{hex}\","
	                     "\"count\":250}") > 0,
	         "add");
	CLIENT(c);
	r = github_generate_jitconfig(c.gh, "ci-0000000000aa", 1, &labels, "_work", &a, &e);
	REQUIREF(r == 0 && a.runner_id > 0 && a.encoded_jit_config && a.encoded_jit_config[0],
	         "r=%d %s", r, e.msg);
	/* the same name again (a crash between JIT and record): the idle one is replaced,
	 * found with one GET ?name= (a fault with a large skip counts those requests) */
	REQUIREF(fault("{\"match\":\"/repos/octo/hello/actions/runners?name=ci-0000000000aa&\","
	               "\"method\":\"GET\",\"status\":500,\"skip\":1000,\"count\":1}"),
	         "fault");
	lists = sim_route("GET /repos/{owner}/{repo}/actions/runners");
	r = github_generate_jitconfig(c.gh, "ci-0000000000aa", 1, &labels, "_work", &b, &e);
	REQUIREF(r == 0 && b.runner_id > 0 && b.runner_id != a.runner_id, "r=%d %s", r, e.msg);
	REQUIREF(fault_skip(1) == 999, "lookups by name: %" PRId64, 1000 - fault_skip(1));
	REQUIREF(sim_route("GET /repos/{owner}/{repo}/actions/runners") == lists + 1,
	         "list requests: %" PRId64,
	         sim_route("GET /repos/{owner}/{repo}/actions/runners") - lists);
	REQUIREF(ctl_ok("DELETE", "/_ghsim/faults", NULL), "clear");
	REQUIREF(github_list_runners(c.gh, "ci", &l, &e) == 0 && l.n == 1 &&
	                 l.v[0].id == b.runner_id,
	         "n=%zu", l.n);
	REQUIREF(l.v[0].n_labels == 3, "labels %zu", l.v[0].n_labels);
	github_runner_list_release(&l);
	github_jit_release(&a);
	github_jit_release(&b);

	/* a busy one is left alone */
	REQUIREF(add_runners("{\"scope\":\"repos/octo/hello\",\"name\":\"ci-0000000000bb\","
	                     "\"busy\":true}") > 0,
	         "add");
	r = github_generate_jitconfig(c.gh, "ci-0000000000bb", 1, &labels, NULL, &a, &e);
	REQUIREF(r == -EBUSY && !a.encoded_jit_config, "r=%d %s", r, e.msg);

	/* registration and remove tokens */
	REQUIREF(github_registration_token(c.gh, &t, &e) == 0 && t.token &&
	                 t.expires_at > time(NULL),
	         "%s", e.msg);
	github_token_release(&t);
	REQUIREF(github_remove_token(c.gh, &t, &e) == 0 && t.token, "%s", e.msg);
	github_token_release(&t);
	client_free(&c);

	/* organization scope: the same, with its own list */
	REQUIREF(add_runners("{\"scope\":\"orgs/octo-org\",\"name\":\"other-{hex}\","
	                     "\"count\":150}") > 0,
	         "add");
	CLIENT(o, .org = true);
	r = github_generate_jitconfig(o.gh, "ci-0000000000cc", 1, &labels, "_work", &a, &e);
	REQUIREF(r == 0 && a.runner_id > 0, "r=%d %s", r, e.msg);
	REQUIREF(fault("{\"match\":\"/orgs/octo-org/actions/runners?name=ci-0000000000cc&\","
	               "\"method\":\"GET\",\"status\":500,\"skip\":1000,\"count\":1}"),
	         "fault");
	lists = sim_route("GET /orgs/{org}/actions/runners");
	r = github_generate_jitconfig(o.gh, "ci-0000000000cc", 1, &labels, "_work", &b, &e);
	REQUIREF(r == 0 && b.runner_id > 0 && b.runner_id != a.runner_id, "r=%d %s", r, e.msg);
	REQUIREF(fault_skip(1) == 999, "lookups by name: %" PRId64, 1000 - fault_skip(1));
	REQUIREF(sim_route("GET /orgs/{org}/actions/runners") == lists + 1,
	         "list requests: %" PRId64, sim_route("GET /orgs/{org}/actions/runners") - lists);
	REQUIREF(ctl_ok("DELETE", "/_ghsim/faults", NULL), "clear");
	r = github_get_runner(o.gh, a.runner_id, &one, &e);
	github_runner_release(&one);
	REQUIREF(r == -ENOENT, "the stale registration is still there: r=%d", r);
	github_jit_release(&a);
	github_jit_release(&b);
	/* busy in org scope: left alone */
	REQUIREF(add_runners("{\"scope\":\"orgs/octo-org\",\"name\":\"ci-0000000000dd\","
	                     "\"busy\":true}") > 0,
	         "add");
	r = github_generate_jitconfig(o.gh, "ci-0000000000dd", 1, &labels, NULL, &a, &e);
	REQUIREF(r == -EBUSY && !a.encoded_jit_config && strstr(e.msg, "busy"), "r=%d %s", r,
	         e.msg);
	client_free(&o);
	return 0;
}

static int case_groups_and_jobs(void)
{
	struct github_job job = {0};
	struct github_job_list jobs = {0};
	struct err e = {0};
	int64_t id = 0, job_id, run_id;
	json_t *j;

	REQUIREF(ctl_ok("POST", "/_ghsim/runner-groups", "{\"org\":\"octo-org\",\"name\":\"gpu\"}"),
	         "group");
	CLIENT(o, .org = true);
	REQUIREF(github_runner_group_id(o.gh, "GPU", &id, &e) == 0 && id > 1, "%s", e.msg);
	REQUIREF(github_runner_group_id(o.gh, "default", &id, &e) == 0 && id == 1, "%s", e.msg);
	REQUIREF(github_runner_group_id(o.gh, "nope", &id, &e) == -ENOENT, "%s", e.msg);
	client_free(&o);
	CLIENT(c);
	REQUIREF(github_runner_group_id(c.gh, "whatever", &id, &e) == 0 && id == 1, "repo scope");

	j = ctl("POST", "/_ghsim/jobs",
	        "{\"repo\":\"octo/hello\",\"labels\":[\"self-hosted\",\"gpu\"]}");
	REQUIREF(j, "job");
	job_id = json_integer_value(json_object_get(j, "id"));
	run_id = json_integer_value(json_object_get(j, "run_id"));
	json_decref(j);
	REQUIREF(job_id > INT32_MAX, "job id %" PRId64, job_id);
	REQUIREF(github_get_job(c.gh, "octo/hello", job_id, &job, &e) == 0, "%s", e.msg);
	REQUIREF(job.id == job_id && job.run_id == run_id && strcmp(job.status, "queued") == 0 &&
	                 job.n_labels == 2 && job.created_at > 0,
	         "status %s", job.status);
	github_job_release(&job);
	REQUIREF(github_get_job(c.gh, "octo/hello", 1, &job, &e) == -ENOENT, "%s", e.msg);
	REQUIREF(github_get_job(c.gh, "../x", 1, &job, &e) == -EINVAL, "bad repo accepted");
	REQUIREF(github_list_run_jobs(c.gh, "octo/hello", run_id, &jobs, &e) == 0, "%s", e.msg);
	REQUIREF(jobs.n == 1 && jobs.v[0].id == job_id, "n=%zu", jobs.n);
	github_job_list_release(&jobs);
	client_free(&c);
	return 0;
}

/* Queue a job of octo/hello with these labels in run_id (0: a new run); its id, -1 on error. */
static int64_t queue_job(const char *labels, int64_t *run_id)
{
	char body[256];
	int64_t id = -1;
	json_t *j;

	if (*run_id)
		snprintf(body, sizeof(body),
		         "{\"repo\":\"octo/"
		         "hello\",\"labels\":%s,\"duration\":600,\"run_id\":%" PRId64 "}",
		         labels, *run_id);
	else
		snprintf(body, sizeof(body),
		         "{\"repo\":\"octo/hello\",\"labels\":%s,\"duration\":600}", labels);
	j = ctl("POST", "/_ghsim/jobs", body);
	if (j && json_is_integer(json_object_get(j, "id"))) {
		id = json_integer_value(json_object_get(j, "id"));
		*run_id = json_integer_value(json_object_get(j, "run_id"));
	}
	json_decref(j);
	return id;
}

/*
 * github_find_run_job, what the metrics events ask: the job a runner ran
 * is looked for in at most max_pages pages of its run's jobs (a match on
 * page 2 is not found within 1 page), a repeated lookup is answered by
 * 304s that cost no rate limit, and a repository that is no owner/repo or
 * is outside the configured scope sends no request at all.
 */
static int case_find_run_job(void)
{
	struct github_job job = {0};
	struct github_job_list jobs = {0};
	struct github_stats st0, st;
	struct err e = {0};
	int64_t run_id = 0, want = -1, counted, sent;
	char path[96];
	json_t *j;
	int r;

	/* a run of 101 jobs: 100 nobody takes, then one ghx-finder takes (page 2 of 100) */
	for (int i = 0; i < 100; i++)
		REQUIREF(queue_job("[\"nobody\"]", &run_id) > 0, "job %d", i);
	want = queue_job("[\"finder\"]", &run_id);
	REQUIREF(want > 0, "the finder's job");
	REQUIREF(add_runners("{\"scope\":\"repos/octo/hello\",\"name\":\"ghx-finder\","
	                     "\"labels\":[\"finder\"]}") > 0,
	         "runner");
	snprintf(path, sizeof(path), "/_ghsim/jobs/%" PRId64, want);
	j = ctl("GET", path, NULL);
	REQUIREF(j && json_string_value(json_object_get(j, "runner_name")) &&
	                 strcmp(json_string_value(json_object_get(j, "runner_name")),
	                        "ghx-finder") == 0,
	         "the runner did not take its job");
	json_decref(j);

	CLIENT(c);
	/* beyond the bound: one page asked, no match */
	github_get_stats(c.gh, &st0);
	r = github_find_run_job(c.gh, "octo/hello", run_id, "ghx-finder", 1, &job, &e);
	github_get_stats(c.gh, &st);
	REQUIREF(r == -ENOENT && strstr(e.msg, "ghx-finder"), "r=%d %s", r, e.msg);
	REQUIREF(st.requests_sent - st0.requests_sent == 1, "%" PRIu64 " requests for 1 page",
	         st.requests_sent - st0.requests_sent);
	/* within the bound: found on page 2, the search stops there */
	github_get_stats(c.gh, &st0);
	r = github_find_run_job(c.gh, "octo/hello", run_id, "ghx-finder", 3, &job, &e);
	github_get_stats(c.gh, &st);
	REQUIREF(r == 0, "%s", e.msg);
	REQUIREF(job.id == want && job.run_id == run_id &&
	                 strcmp(job.runner_name, "ghx-finder") == 0 &&
	                 strcmp(job.status, "in_progress") == 0 && job.started_at > 0,
	         "id %" PRId64 " runner %s status %s", job.id, job.runner_name, job.status);
	REQUIREF(st.requests_sent - st0.requests_sent == 2, "%" PRIu64 " requests for 2 pages",
	         st.requests_sent - st0.requests_sent);
	github_job_release(&job);
	/* again: both pages unchanged, two 304s, nothing counted against the rate limit */
	counted = sim_stat("rate_counted");
	github_get_stats(c.gh, &st0);
	r = github_find_run_job(c.gh, "octo/hello", run_id, "ghx-finder", 3, &job, &e);
	github_get_stats(c.gh, &st);
	REQUIREF(r == 0 && job.id == want, "r=%d %s", r, e.msg);
	github_job_release(&job);
	REQUIREF(st.not_modified - st0.not_modified == 2 &&
	                 st.requests_counted == st0.requests_counted,
	         "304s %" PRIu64 ", counted %" PRIu64, st.not_modified - st0.not_modified,
	         st.requests_counted - st0.requests_counted);
	REQUIREF(counted >= 0 && sim_stat("rate_counted") == counted, "ghsim counted the lookup");

	/* out of scope, or no owner/repo: refused before any request */
	sent = sim_stat("requests");
	github_get_stats(c.gh, &st0);
	r = github_find_run_job(c.gh, "other/hello", run_id, "ghx-finder", 3, &job, &e);
	REQUIREF(r == -EPERM && strstr(e.msg, "other/hello"), "r=%d %s", r, e.msg);
	REQUIREF(github_find_run_job(c.gh, "octo/hello2", run_id, "ghx-finder", 3, &job, &e) ==
	                 -EPERM,
	         "another repository of the owner");
	REQUIREF(github_find_run_job(c.gh, "octo/hello/../x", run_id, "ghx-finder", 3, &job, &e) ==
	                 -EINVAL,
	         "not an owner/repo");
	REQUIREF(github_list_run_jobs(c.gh, "other/hello", run_id, &jobs, &e) == -EPERM,
	         "a run's jobs");
	REQUIREF(github_find_run_job(c.gh, "octo/hello", run_id, "", 3, &job, &e) == -EINVAL,
	         "no runner name");
	github_get_stats(c.gh, &st);
	REQUIREF(st.requests_sent == st0.requests_sent && sim_stat("requests") == sent,
	         "a refused lookup sent a request");
	client_free(&c);

	/* organization scope: any repository of the organization, none of another */
	CLIENT(o, .org = true);
	github_get_stats(o.gh, &st0);
	REQUIREF(github_find_run_job(o.gh, "octo/hello", run_id, "ghx-finder", 3, &job, &e) ==
	                 -EPERM,
	         "a repository of another owner");
	github_get_stats(o.gh, &st);
	REQUIREF(st.requests_sent == st0.requests_sent, "sent a request out of scope");
	r = github_find_run_job(o.gh, "octo-org/hello", run_id, "ghx-finder", 3, &job, &e);
	github_get_stats(o.gh, &st);
	REQUIREF(r == -ENOENT && st.requests_sent == st0.requests_sent + 1,
	         "in scope: asked (ghsim has no such run): r=%d %s", r, e.msg);
	client_free(&o);
	return 0;
}

/*
 * github_list_runs, what the sweep for jobs without a webhook reads: the
 * queued runs only (a run a runner took a job of is in progress), newest
 * first, at most max of them over pages of up to 100; the same list again
 * is 304s that cost no rate limit; a status that is no word, a repository
 * that is no owner/repo or outside the scope sends nothing.
 */
static int case_list_runs(void)
{
	struct github_run_list l = {0};
	struct github_stats st0, st;
	struct err e = {0};
	int64_t a = 0, b = 0, c2 = 0, sent, counted;
	int r;

	REQUIRE(queue_job("[\"nobody\"]", &a) > 0 && queue_job("[\"nobody\"]", &a) > 0);
	REQUIRE(queue_job("[\"nobody\"]", &b) > 0);
	REQUIRE(queue_job("[\"taken\"]", &c2) > 0);
	REQUIREF(add_runners("{\"scope\":\"repos/octo/hello\",\"name\":\"ghx-runs\","
	                     "\"labels\":[\"taken\"]}") > 0,
	         "runner");
	CLIENT(c);
	r = github_list_runs(c.gh, "octo/hello", "queued", 100, &l, &e);
	REQUIREF(r == 0, "%s", e.msg);
	REQUIREF(l.n == 2 && l.v[0].id == b && l.v[1].id == a &&
	                 strcmp(l.v[0].status, "queued") == 0 && l.v[0].created_at > 0,
	         "n=%zu", l.n);
	/* at most max: one run, one request */
	github_get_stats(c.gh, &st0);
	REQUIRE(github_list_runs(c.gh, "octo/hello", "queued", 1, &l, &e) == 0);
	github_get_stats(c.gh, &st);
	REQUIREF(l.n == 1 && l.v[0].id == b && st.requests_sent == st0.requests_sent + 1, "n=%zu",
	         l.n);
	/* the run a runner took a job of */
	REQUIRE(github_list_runs(c.gh, "octo/hello", "in_progress", 100, &l, &e) == 0);
	REQUIREF(l.n == 1 && l.v[0].id == c2, "n=%zu", l.n);
	/* unchanged: a 304, nothing counted */
	counted = sim_stat("rate_counted");
	github_get_stats(c.gh, &st0);
	REQUIRE(github_list_runs(c.gh, "octo/hello", "queued", 100, &l, &e) == 0);
	github_get_stats(c.gh, &st);
	REQUIREF(l.n == 2 && st.not_modified == st0.not_modified + 1 &&
	                 st.requests_counted == st0.requests_counted &&
	                 sim_stat("rate_counted") == counted,
	         "n=%zu 304s %" PRIu64, l.n, st.not_modified - st0.not_modified);
	/* refused before any request */
	sent = sim_stat("requests");
	REQUIRE(github_list_runs(c.gh, "other/hello", "queued", 100, &l, &e) == -EPERM);
	REQUIRE(github_list_runs(c.gh, "octo/hello/../x", "queued", 100, &l, &e) == -EINVAL);
	REQUIRE(github_list_runs(c.gh, "octo/hello", "queued&x=1", 100, &l, &e) == -EINVAL);
	REQUIREF(sim_stat("requests") == sent, "a refused list sent a request");
	REQUIRE(l.n == 2); /* a refusal leaves the list as it was */
	github_run_list_release(&l);
	client_free(&c);
	return 0;
}

static int case_app_auth(void)
{
	struct github_runner_list l = {0};
	struct github_token t = {0};
	struct err e = {0};
	int r;

	REQUIREF(add_runners("{\"scope\":\"repos/octo/hello\",\"name\":\"ci-{hex}\",\"count\":2}") >
	                 0,
	         "add");
	CLIENT(c, .app = true);
	r = github_list_runners(c.gh, "ci", &l, &e);
	REQUIREF(r == 0 && l.n == 2, "r=%d %s", r, e.msg);
	github_runner_list_release(&l);
	REQUIREF(sim_route("access_tokens") == 1, "exchanges %" PRId64, sim_route("access_tokens"));
	/* the installation token is cached */
	REQUIREF(github_registration_token(c.gh, &t, &e) == 0, "%s", e.msg);
	github_token_release(&t);
	REQUIREF(github_check_scope(c.gh, &e) == 0, "%s", e.msg);
	REQUIREF(sim_route("access_tokens") == 1, "exchanges %" PRId64, sim_route("access_tokens"));

	/* the installation token revoked behind our back (ghsim forgets it): one fresh exchange */
	REQUIREF(ctl_ok("POST", "/_ghsim/reset", "{}"), "reset");
	r = github_list_runners(c.gh, NULL, &l, &e);
	REQUIREF(r == 0 && l.complete, "r=%d %s", r, e.msg);
	github_runner_list_release(&l);
	REQUIREF(sim_route("access_tokens") == 1, "exchanges %" PRId64, sim_route("access_tokens"));
	REQUIREF(sim_stat("requests") == 3, "requests %" PRId64,
	         sim_stat("requests")); /* 401, exchange, list */
	client_free(&c);

	/* a key GitHub does not know */
	CLIENT(b, .app = true, .key = bad_key);
	r = github_list_runners(b.gh, NULL, &l, &e);
	REQUIREF(r == -EACCES && strstr(e.msg, "JWT") && secret_free(e.msg), "r=%d %s", r, e.msg);
	client_free(&b);
	return 0;
}

/* Set ghsim's installation-token format (and ttl, when > 0) after a reset, which revokes every
 * token. */
static bool sim_app_reset(const char *format, int ttl)
{
	char body[96];

	if (ttl > 0)
		snprintf(body, sizeof(body), "{\"token_format\":\"%s\",\"token_ttl\":%d}", format,
		         ttl);
	else
		snprintf(body, sizeof(body), "{\"token_format\":\"%s\"}", format);
	return ctl_ok("POST", "/_ghsim/reset", "{}") && ctl_ok("POST", "/_ghsim/app", body);
}

/* The last token ghsim minted has that format and its shape (copied into *ret, freed by the
 * caller). */
static bool sim_last_token_is(const char *format, char **ret)
{
	json_t *toks = sim_tokens();
	const char *f, *tok = sim_last_token(toks, &f);
	size_t len = strlen(tok), dots = 0;
	bool ok;

	for (const char *p = tok; *p; p++)
		dots += *p == '.';
	if (strcmp(format, "stateless") == 0)
		ok = len >= 400 && dots == 2 && strncmp(tok, "ghs_4242_eyJ", 12) == 0;
	else
		ok = len == 40 && dots == 0 && strncmp(tok, "ghs_", 4) == 0;
	ok = ok && strcmp(f, format) == 0;
	*ret = ok ? strdup(tok) : NULL;
	json_decref(toks);
	return ok && *ret;
}

/*
 * Installation tokens in both of GitHub's formats (the stateless
 * "ghs_<APP ID>_<JWT>", ~530 bytes in ghsim, its default; the classic 40),
 * each used whole: ghsim knows a token only byte for byte, so a client that
 * cut one short would get 401s here. The client's token survives refresh --
 * after a revocation (into the other format, under the same client) and
 * while each token expires within the 5-minute margin -- and the client
 * never asks for a format (no X-GitHub-Stateless-S2S-Token; see
 * installation_header). A token cut short, used as a PAT, is refused, and
 * no message holds a piece of any token.
 */
static int case_app_token_formats(void)
{
	static const char *const formats[] = {"stateless", "classic"};
	struct github_runner_list l = {0};
	struct github_token t = {0};
	struct err e = {0};
	char *tok = NULL;
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
		const char *f = formats[i], *other = formats[1 - i];

		REQUIREF(sim_app_reset(f, 0), "%s: control", f);
		REQUIREF(add_runners("{\"scope\":\"repos/octo/hello\",\"name\":\"ci-{hex}\","
		                     "\"count\":2}") > 0,
		         "add");
		CLIENT(c, .app = true);
		r = github_list_runners(c.gh, "ci", &l, &e);
		REQUIREF(r == 0 && l.n == 2, "%s: r=%d %s", f, r, e.msg);
		github_runner_list_release(&l);
		REQUIREF(github_registration_token(c.gh, &t, &e) == 0, "%s: %s", f, e.msg);
		github_token_release(&t);
		REQUIREF(github_check_scope(c.gh, &e) == 0, "%s: %s", f, e.msg);
		REQUIREF(sim_app("issued", f) == 1 && sim_app("issued", other) == 0,
		         "%s: issued %" PRId64 " + %" PRId64, f, sim_app("issued", f),
		         sim_app("issued", other));
		REQUIREF(sim_last_token_is(f, &tok), "%s: not a token of that format", f);
		REQUIREF(sim_app("s2s_header", "enabled") == 0 &&
		                 sim_app("s2s_header", "disabled") == 0 &&
		                 sim_app("s2s_header", "other") == 0,
		         "%s: the client asked for a token format", f);

		/* revoked, and GitHub now mints the other format: one fresh exchange, used whole */
		REQUIREF(sim_app_reset(other, 0), "%s: control", f);
		r = github_list_runners(c.gh, NULL, &l, &e);
		REQUIREF(r == 0 && l.complete, "%s -> %s: r=%d %s", f, other, r, e.msg);
		github_runner_list_release(&l);
		REQUIREF(sim_app("issued", other) == 1 && sim_app("issued", f) == 0,
		         "%s -> %s: issued %" PRId64, f, other, sim_app("issued", other));
		client_free(&c);

		/* each token within the margin: every call exchanges again, each token whole */
		REQUIREF(sim_app_reset(f, 250), "%s: control", f);
		CLIENT(d, .app = true);
		for (int k = 0; k < 3; k++) {
			REQUIREF(github_registration_token(d.gh, &t, &e) == 0, "%s: %s", f, e.msg);
			github_token_release(&t);
		}
		REQUIREF(sim_app("issued", f) == 3, "%s: issued %" PRId64, f, sim_app("issued", f));
		REQUIREF(sim_app("s2s_header", "enabled") == 0 &&
		                 sim_app("s2s_header", "disabled") == 0,
		         "%s: the client asked for a token format", f);
		client_free(&d);

		/* ghsim takes the last token whole, and refuses it one byte short or cut to 40 */
		free(tok);
		REQUIREF(sim_last_token_is(f, &tok), "%s: last token", f);
		CLIENT(w, .token = tok);
		REQUIREF(github_check_scope(w.gh, &e) == 0, "%s: the whole token: %s", f, e.msg);
		client_free(&w);
		size_t cuts[] = {strlen(tok) - 1,
		                 40}; /* a byte short; what a 40-byte buffer keeps */
		for (size_t k = 0; k < ARRAY_SIZE(cuts) && cuts[k] < strlen(tok); k++) {
			tok[cuts[k]] = '\0';
			CLIENT(x, .token = tok, .retries = -1);
			r = github_check_scope(x.gh, &e);
			client_free(&x);
			REQUIREF(r == -EACCES && strstr(e.msg, "401 Bad credentials") &&
			                 secret_free(e.msg),
			         "%s: a token cut to %zu bytes: r=%d", f, cuts[k], r);
		}
		free(tok);
		tok = NULL;
	}
	return 0;
}

struct thread_arg {
	struct github *gh;
	int failures;
	char msg[512];
};

static void *worker(void *p)
{
	struct thread_arg *a = p;
	for (int i = 0; i < 5; i++) {
		struct github_runner_list l = {0};
		struct github_token t = {0};
		struct err e = {0};
		if (github_list_runners(a->gh, "ci", &l, &e) < 0 || l.n != 120 ||
		    github_registration_token(a->gh, &t, &e) < 0) {
			a->failures++;
			snprintf(a->msg, sizeof(a->msg), "n=%zu %s", l.n, e.msg);
		}
		github_runner_list_release(&l);
		github_token_release(&t);
	}
	return NULL;
}

static int case_threads(void)
{
	struct thread_arg args[4];
	pthread_t th[4];
	struct github_stats st;

	REQUIREF(add_runners(
	                 "{\"scope\":\"repos/octo/hello\",\"name\":\"ci-{hex}\",\"count\":120}") >
	                 0,
	         "add");
	CLIENT(c, .app = true);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){.gh = c.gh};
		pthread_create(&th[i], NULL, worker, &args[i]);
	}
	/* every thread joined before a check may end the case: they use c */
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++)
		REQUIREF(args[i].failures == 0, "thread %d: %s", i, args[i].msg);
	github_get_stats(c.gh, &st);
	/* 4 x 5 x (2 pages + 1 token) + exchanges, and ghsim saw exactly what we sent */
	REQUIREF(sim_route("access_tokens") == 1, "exchanges %" PRId64, sim_route("access_tokens"));
	REQUIREF((int64_t)st.requests_sent == sim_stat("requests"),
	         "sent %" PRIu64 " ghsim %" PRId64, st.requests_sent, sim_stat("requests"));
	client_free(&c);
	return 0;
}

static int count_temp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += strncmp(de->d_name, ".download", 9) == 0;
	closedir(d);
	return n;
}

static int case_runner_bin(void)
{
	char dir[PATH_MAX], path[PATH_MAX], old[PATH_MAX], cur[PATH_MAX];
	struct buf b = BUF_INIT(1 << 20);
	struct err e = {0};
	bool changed = false;
	struct stat st;
	int r;

	snprintf(dir, sizeof(dir), "%s/bin1", state_dir);
	CLIENT(c);
	r = github_update_runner_bin(c.gh, ARCH_X64, dir, &changed, path, sizeof(path), &e);
	REQUIREF(r == 0 && changed, "r=%d %s", r, e.msg);
	REQUIREF(strstr(path, "/runner-bin/actions-runner-linux-x64-") && stat(path, &st) == 0 &&
	                 st.st_size > 100 && (st.st_mode & 0777) == 0600,
	         "path %s", path);
	r = github_update_runner_bin(c.gh, ARCH_X64, dir, &changed, path, sizeof(path), &e);
	REQUIREF(r == 0 && !changed, "r=%d %s", r, e.msg);
	r = github_update_runner_bin(c.gh, ARCH_ARM64, dir, &changed, path, sizeof(path), &e);
	REQUIREF(r == 0 && changed && strstr(path, "linux-arm64-"), "r=%d %s", r, e.msg);

	/* A download whose bytes do not match: refused, the old copy stays */
	snprintf(dir, sizeof(dir), "%s/bin2/runner-bin", state_dir);
	REQUIREF(mkdir_p(dir, 0700, &e) == 0, "%s", e.msg);
	snprintf(old, sizeof(old), "%s/actions-runner-linux-x64-2.300.0.tar.gz", dir);
	snprintf(cur, sizeof(cur), "%s/current-x64", dir);
	REQUIREF(file_write_atomic(old, "old runner", 10, 0600, &e) == 0, "%s", e.msg);
	REQUIREF(file_write_atomic(cur, "actions-runner-linux-x64-2.300.0.tar.gz\n", 40, 0600,
	                           &e) == 0,
	         "%s", e.msg);
	REQUIREF(fault("{\"match\":\"/_ghsim/downloads/\",\"status\":200,\"body\":\"not the "
	               "runner\","
	               "\"count\":1}"),
	         "fault");
	snprintf(dir, sizeof(dir), "%s/bin2", state_dir);
	changed = true;
	r = github_update_runner_bin(c.gh, ARCH_X64, dir, &changed, path, sizeof(path), &e);
	REQUIREF(r == -EBADMSG && strstr(e.msg, "sha256 mismatch"), "r=%d %s", r, e.msg);
	REQUIREF(file_read(cur, 4096, true, &b, NULL) == 0 &&
	                 strcmp(buf_str(&b), "actions-runner-linux-x64-2.300.0.tar.gz\n") == 0,
	         "current changed: %s", buf_str(&b));
	REQUIREF(file_read(old, 4096, true, &b, NULL) == 0 &&
	                 strcmp(buf_str(&b), "old runner") == 0,
	         "old copy damaged");
	snprintf(dir, sizeof(dir), "%s/bin2/runner-bin", state_dir);
	REQUIREF(count_temp(dir) == 0, "temp file left");
	/* without the fault the update goes through and the old copy goes away */
	snprintf(dir, sizeof(dir), "%s/bin2", state_dir);
	struct github_bin_result res;
	r = github_runner_bin_update(c.gh, ARCH_X64, dir, &res, &e);
	REQUIREF(r == 0 && res.outcome == GITHUB_BIN_UPDATED, "r=%d %s", r, e.msg);
	REQUIREF(strcmp(res.old_version, "2.300.0") == 0 && strcmp(res.version, "2.321.0") == 0,
	         "%s -> %s", res.old_version, res.version);
	REQUIREF(stat(old, &st) < 0 && errno == ENOENT, "old copy still there");
	/* the cached copy damaged: the same version again, a repair */
	REQUIREF(file_write_atomic(res.path, "damaged", 7, 0600, &e) == 0, "%s", e.msg);
	r = github_runner_bin_update(c.gh, ARCH_X64, dir, &res, &e);
	REQUIREF(r == 0 && res.outcome == GITHUB_BIN_REPAIRED &&
	                 strcmp(res.old_version, res.version) == 0,
	         "r=%d outcome %s %s", r, github_bin_outcome_name(res.outcome), e.msg);
	r = github_runner_bin_update(c.gh, ARCH_X64, dir, &res, &e);
	REQUIREF(r == 0 && res.outcome == GITHUB_BIN_UNCHANGED, "r=%d %s", r, e.msg);
	buf_release(&b);
	client_free(&c);
	return 0;
}

/*
 * docs/deadlines.md, row "runnerd's runner package download": a
 * download that stalls (no byte for 5 s here) ends after request_timeout
 * (1 s) below 1 KiB/s, not when the server speaks again nor at the
 * download's own 30 minutes; no temporary file is left.
 */
static int case_runner_bin_stall(void)
{
	char dir[PATH_MAX];
	struct github_bin_result res;
	struct err e = {0};
	double t0, took;
	int r;

	snprintf(dir, sizeof(dir), "%s/bin-stall", state_dir);
	REQUIREF(fault("{\"match\":\"/_ghsim/downloads/\",\"delay\":5,\"count\":1}"), "fault");
	CLIENT(c, .timeout = 1);
	t0 = now_s();
	r = github_runner_bin_update(c.gh, ARCH_X64, dir, &res, &e);
	took = now_s() - t0;
	REQUIREF(r == -ETIMEDOUT && took < 3.5, "r=%d %s (%.1fs)", r, e.msg, took);
	snprintf(dir, sizeof(dir), "%s/bin-stall/runner-bin", state_dir);
	REQUIREF(count_temp(dir) == 0, "temp file left");
	client_free(&c);
	return 0;
}

struct call_arg {
	struct github *gh;
	int r;
	size_t n;
	double done;
	struct err e;
};

static void *list_worker(void *p)
{
	struct call_arg *a = p;
	struct github_runner_list l = {0};

	a->r = github_list_runners(a->gh, NULL, &l, &a->e);
	a->n = l.n;
	a->done = now_s();
	github_runner_list_release(&l);
	return NULL;
}

/* github_cancel from another thread ends a call that waits for GitHub's answer. */
static int case_cancel(void)
{
	struct github_runner_list l = {0};
	struct call_arg a = {0};
	struct github_stats st;
	struct err e = {0};
	int64_t before;
	double t_cancel;
	pthread_t th;
	int r;

	REQUIREF(add_runners("{\"scope\":\"repos/octo/hello\",\"name\":\"ci-{hex}\",\"count\":2}") >
	                 0,
	         "add");
	/* ghsim holds the answer 8 s, within the 10 s request timeout */
	REQUIREF(fault("{\"match\":\"/actions/runners\",\"delay\":8,\"count\":1}"), "fault");
	CLIENT(c, .timeout = 10);
	before = sim_stat("requests");
	a.gh = c.gh;
	REQUIREF(pthread_create(&th, NULL, list_worker, &a) == 0, "thread");
	for (int i = 0; i < 500 && sim_stat("requests") == before; i++)
		usleep(10000);
	usleep(200000); /* the request is at ghsim, which sleeps on it */
	t_cancel = now_s();
	github_cancel(c.gh);
	pthread_join(th, NULL);
	REQUIREF(a.r == -ECANCELED, "r=%d %s", a.r, a.e.msg);
	REQUIREF(a.done - t_cancel < 1.0, "took %.2fs after github_cancel", a.done - t_cancel);
	REQUIREF(strstr(a.e.msg, "list runners: cancelled while waiting for GitHub's answer"),
	         "msg: %s", a.e.msg);
	/* while cancelled: at once, nothing sent */
	before = sim_stat("requests");
	r = github_list_runners(c.gh, NULL, &l, &e);
	REQUIREF(r == -ECANCELED && strstr(e.msg, "before the request was sent"), "r=%d %s", r,
	         e.msg);
	REQUIREF(sim_stat("requests") == before, "a request went out while cancelled");
	github_get_stats(c.gh, &st);
	REQUIREF(st.requests_sent == 1, "sent %" PRIu64, st.requests_sent);
	/* uncancelled: works again (the delay fault is used up) */
	github_uncancel(c.gh);
	r = github_list_runners(c.gh, NULL, &l, &e);
	REQUIREF(r == 0 && l.complete && l.n == 2, "r=%d n=%zu %s", r, l.n, e.msg);
	github_runner_list_release(&l);
	client_free(&c);

	/* the App's installation-token exchange is cancelled too */
	REQUIREF(fault("{\"match\":\"/access_tokens\",\"delay\":8,\"count\":1}"), "fault");
	CLIENT(p, .app = true, .timeout = 10);
	memset(&a, 0, sizeof(a));
	a.gh = p.gh;
	before = sim_stat("requests");
	REQUIREF(pthread_create(&th, NULL, list_worker, &a) == 0, "thread");
	for (int i = 0; i < 500 && sim_stat("requests") == before; i++)
		usleep(10000);
	usleep(200000);
	t_cancel = now_s();
	github_cancel(p.gh);
	pthread_join(th, NULL);
	REQUIREF(a.r == -ECANCELED && a.done - t_cancel < 1.0, "r=%d (%.2fs) %s", a.r,
	         a.done - t_cancel, a.e.msg);
	REQUIREF(strstr(a.e.msg, "installation token") && secret_free(a.e.msg), "msg: %s", a.e.msg);
	client_free(&p);
	return 0;
}

/* Retries end at the call's deadline (2 x request_timeout), whatever max_retries says. */
static int case_deadline(void)
{
	struct github_runner_list l = {0};
	struct err e = {0};
	int64_t before;
	double t0, took;
	int r;

	/* every answer is a 500 after 0.7 s: each attempt costs 0.7 s */
	REQUIREF(fault("{\"match\":\"/actions/runners\",\"delay\":0.7,\"status\":500,"
	               "\"count\":-1}"),
	         "fault");
	CLIENT(c, .timeout = 1, .retries = 20);
	before = sim_stat("requests");
	t0 = now_s();
	r = github_list_runners(c.gh, NULL, &l, &e);
	took = now_s() - t0;
	REQUIREF(r == -EIO || r == -ETIMEDOUT, "r=%d %s", r, e.msg);
	REQUIREF(took < 2.8, "took %.2fs, beyond 2 x request_timeout", took);
	REQUIREF(sim_stat("requests") - before >= 2 && sim_stat("requests") - before <= 4,
	         "%" PRId64 " attempts", sim_stat("requests") - before);
	REQUIREF(strstr(e.msg, "no time left for another attempt"), "msg: %s", e.msg);
	client_free(&c);
	return 0;
}

/* A bar on one rate-limit resource leaves the calls GitHub counts against another alone. */
static int case_rate_limit_resources(void)
{
	static const char *const labels_v[] = {"self-hosted"};
	struct strv labels = {(char **)labels_v, 1};
	struct github_runner_list l = {0};
	struct github_token t = {0};
	struct github_jit jit = {0};
	struct github_stats st;
	struct err e = {0};
	int64_t before;
	int r;

	/* JIT and registration tokens counted against a second budget, which is spent */
	REQUIREF(ctl_ok("POST", "/_ghsim/ratelimit",
	                "{\"resource\":\"actions_runner_registration\",\"routes\":"
	                "[\"generate-jitconfig\",\"registration-token\"],\"remaining\":0,"
	                "\"reset_in\":60}"),
	         "ratelimit");
	CLIENT(c);
	r = github_generate_jitconfig(c.gh, "ci-0000000000e1", 1, &labels, NULL, &jit, &e);
	REQUIREF(r == -EAGAIN && strstr(e.msg, "'actions_runner_registration'"), "r=%d %s", r,
	         e.msg);
	/* core is untouched: lists go out and succeed */
	before = sim_stat("requests");
	r = github_list_runners(c.gh, NULL, &l, &e);
	REQUIREF(r == 0 && l.complete, "r=%d %s", r, e.msg);
	github_runner_list_release(&l);
	REQUIREF(sim_stat("requests") == before + 1, "list not sent");
	/* the JIT route is known to be barred now: not sent again */
	before = sim_stat("requests");
	r = github_generate_jitconfig(c.gh, "ci-0000000000e1", 1, &labels, NULL, &jit, &e);
	REQUIREF(r == -EAGAIN && strstr(e.msg, "not calling GitHub"), "r=%d %s", r, e.msg);
	REQUIREF(sim_stat("requests") == before, "JIT sent while its resource is barred");
	github_get_stats(c.gh, &st);
	REQUIREF(st.barred_until == 0 && st.rate_remaining > 0, "core barred");
	REQUIREF(st.n_resources == 2 &&
	                 strcmp(st.resources[1].resource, "actions_runner_registration") == 0 &&
	                 st.resources[1].remaining == 0 &&
	                 st.resources[1].barred_until > time(NULL),
	         "resources %zu", st.n_resources);
	client_free(&c);

	/* the other way round: core spent, registration calls still made */
	REQUIREF(ctl_ok("POST", "/_ghsim/ratelimit",
	                "{\"resource\":\"actions_runner_registration\",\"remaining\":100}"),
	         "ratelimit");
	CLIENT(d);
	REQUIREF(github_registration_token(d.gh, &t, &e) == 0, "%s", e.msg);
	github_token_release(&t);
	REQUIREF(ctl_ok("POST", "/_ghsim/ratelimit", "{\"remaining\":0,\"reset_in\":60}"),
	         "ratelimit");
	r = github_list_runners(d.gh, NULL, &l, &e);
	REQUIREF(r == -EAGAIN && strstr(e.msg, "'core'"), "r=%d %s", r, e.msg);
	before = sim_stat("requests");
	REQUIREF(github_registration_token(d.gh, &t, &e) == 0, "token while core is spent: %s",
	         e.msg);
	github_token_release(&t);
	REQUIREF(sim_stat("requests") == before + 1, "token not sent");
	github_get_stats(d.gh, &st);
	REQUIREF(st.barred_until > time(NULL) && st.resources[1].remaining == 98 &&
	                 st.resources[1].barred_until == 0,
	         "core barred %lld, registration left %" PRId64, (long long)st.barred_until,
	         st.resources[1].remaining);
	client_free(&d);
	return 0;
}

/* An installation token is reused while more than 5 minutes are left, exchanged again after. */
static int case_installation_token_margin(void)
{
	struct github_token t = {0};
	struct err e = {0};

	/* 400 s: more than the 300 s margin, reused */
	REQUIREF(ctl_ok("POST", "/_ghsim/app", "{\"token_ttl\":400}"), "ttl");
	CLIENT(c, .app = true);
	for (int i = 0; i < 3; i++) {
		REQUIREF(github_registration_token(c.gh, &t, &e) == 0, "%s", e.msg);
		github_token_release(&t);
	}
	REQUIREF(sim_route("access_tokens") == 1, "exchanges %" PRId64, sim_route("access_tokens"));
	client_free(&c);

	/* 250 s: inside the margin, so every call gets a fresh one */
	REQUIREF(ctl_ok("POST", "/_ghsim/app", "{\"token_ttl\":250}"), "ttl");
	CLIENT(d, .app = true);
	for (int i = 0; i < 3; i++) {
		REQUIREF(github_registration_token(d.gh, &t, &e) == 0, "%s", e.msg);
		github_token_release(&t);
	}
	REQUIREF(sim_route("access_tokens") == 1 + 3, "exchanges %" PRId64,
	         sim_route("access_tokens") - 1);
	client_free(&d);
	return 0;
}

/* GitHub Enterprise Server: the API under /api/v3, pages followed through its Link URLs. */
static int case_ghes_prefix(void)
{
	struct github_runner_list l = {0};
	struct github_stats st;
	struct github_token t = {0};
	struct err e = {0};
	char url[300];
	int r;

	REQUIREF(add_runners("{\"scope\":\"repos/octo/hello\",\"name\":\"ci-{hex}\","
	                     "\"count\":250}") > 0,
	         "add");
	snprintf(url, sizeof(url), "%s/api/v3/", ghsim);
	CLIENT(c, .api_url = url);
	r = github_list_runners(c.gh, "ci", &l, &e);
	REQUIREF(r == 0 && l.complete && l.n == 250, "r=%d n=%zu %s", r, l.n, e.msg);
	github_runner_list_release(&l);
	REQUIREF(sim_route("GET /repos/{owner}/{repo}/actions/runners") == 3, "pages %" PRId64,
	         sim_route("GET /repos/{owner}/{repo}/actions/runners"));
	/* unchanged: three 304s through the same Link URLs */
	r = github_list_runners(c.gh, "ci", &l, &e);
	REQUIREF(r == 0 && l.n == 250, "r=%d n=%zu %s", r, l.n, e.msg);
	github_runner_list_release(&l);
	github_get_stats(c.gh, &st);
	REQUIREF(st.requests_sent == 6 && st.not_modified == 3, "sent %" PRIu64 " 304 %" PRIu64,
	         st.requests_sent, st.not_modified);
	REQUIREF(github_registration_token(c.gh, &t, &e) == 0, "%s", e.msg);
	github_token_release(&t);
	REQUIREF(github_check_scope(c.gh, &e) == 0, "%s", e.msg);
	client_free(&c);
	return 0;
}

static int case_proxy(void)
{
	struct github_runner_list l = {0};
	struct err e = {0};
	int r;

	/* a configured proxy is used (nothing listens there); libcurl lets NO_PROXY exempt hosts */
	unsetenv("no_proxy");
	unsetenv("NO_PROXY");
	CLIENT(c, .proxy = "http://127.0.0.1:1", .retries = -1);
	r = github_list_runners(c.gh, NULL, &l, &e);
	REQUIREF(r == -ECONNREFUSED, "r=%d %s", r, e.msg);
	client_free(&c);

	/* proxy "" leaves it to the environment: http_proxy, unless no_proxy says otherwise */
	setenv("http_proxy", "http://127.0.0.1:1", 1);
	CLIENT(d, .retries = -1);
	r = github_list_runners(d.gh, NULL, &l, &e);
	REQUIREF(r == -ECONNREFUSED, "r=%d %s", r, e.msg);
	setenv("no_proxy", "127.0.0.1", 1);
	r = github_list_runners(d.gh, NULL, &l, &e);
	REQUIREF(r == 0, "r=%d %s", r, e.msg);
	github_runner_list_release(&l);
	unsetenv("http_proxy");
	client_free(&d);
	return 0;
}

/* GH_TLS_URL: an HTTPS server (openssl s_server -www) whose certificate GH_TLS_CA holds. */
static int case_tls_ca_file(void)
{
	const char *url = getenv("GH_TLS_URL"), *ca = getenv("GH_TLS_CA");
	struct err e = {0};
	int r;

	REQUIREF(url && ca, "GH_TLS_URL/GH_TLS_CA not set");
	/* not in the system store: refused, and not retried */
	CLIENT(c, .api_url = url);
	r = github_check_scope(c.gh, &e);
	REQUIREF(r == -EPROTO && strstr(e.msg, "TLS"), "r=%d %s", r, e.msg);
	client_free(&c);
	/* with ca_file the handshake succeeds (s_server then answers HTML, not GitHub's JSON) */
	CLIENT(d, .api_url = url, .ca_file = ca);
	r = github_check_scope(d.gh, &e);
	REQUIREF(r == -EPROTO && strstr(e.msg, "malformed JSON"), "r=%d %s", r, e.msg);
	client_free(&d);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(void);
} cases[] = {
        {"list_pages_and_etag", case_list_pages_and_etag},
        {"5xx_then_success", case_5xx_then_success},
        {"retry_after", case_retry_after},
        {"rate_limit_exhausted", case_rate_limit_exhausted},
        {"secondary_limit", case_secondary_limit},
        {"dropped_connection", case_dropped_connection},
        {"timeout", case_timeout},
        {"malformed", case_malformed},
        {"too_big", case_too_big},
        {"bad_token", case_bad_token},
        {"page2_fails", case_page2_fails},
        {"delete", case_delete},
        {"jit", case_jit},
        {"groups_and_jobs", case_groups_and_jobs},
        {"find_run_job", case_find_run_job},
        {"list_runs", case_list_runs},
        {"app_auth", case_app_auth},
        {"app_token_formats", case_app_token_formats},
        {"threads", case_threads},
        {"runner_bin", case_runner_bin},
        {"runner_bin_stall", case_runner_bin_stall},
        {"cancel", case_cancel},
        {"deadline", case_deadline},
        {"rate_limit_resources", case_rate_limit_resources},
        {"installation_token_margin", case_installation_token_margin},
        {"ghes_prefix", case_ghes_prefix},
        {"proxy", case_proxy},
        {"tls_ca_file", case_tls_ca_file},
};

static char *read_secret_env(const char *var)
{
	const char *p = getenv(var);
	char *s = NULL;
	struct err e = {0};
	if (!p || file_read_secret(p, &s, &e) < 0) {
		fprintf(stderr, "gh_client_test: %s: %s\n", var, p ? e.msg : "not set");
		exit(2);
	}
	return s;
}

int main(int argc, char **argv)
{
	int64_t v;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ghsim = getenv("GHSIM_URL");
	state_dir = getenv("GH_STATE_DIR");
	if (!ghsim || !state_dir) {
		fprintf(stderr, "gh_client_test: GHSIM_URL and GH_STATE_DIR must be set\n");
		return 2;
	}
	token = read_secret_env("GH_TOKEN_FILE");
	app_key = read_secret_env("GH_APP_KEY_FILE");
	bad_key = read_secret_env("GH_APP_BADKEY_FILE");
	if (parse_int64(getenv("GH_APP_ID") ? getenv("GH_APP_ID") : "", 1, INT64_MAX, &v) < 0)
		return 2;
	app_id = v;
	if (parse_int64(getenv("GH_INSTALLATION_ID") ? getenv("GH_INSTALLATION_ID") : "", 1,
	                INT64_MAX, &v) < 0)
		return 2;
	installation_id = v;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		bool selected = argc < 2;
		for (int a = 1; a < argc; a++)
			selected |= strcmp(argv[a], cases[i].name) == 0;
		if (!selected)
			continue;
		int64_t t0 = clock_mono_ms();
		int r = ctl_ok("POST", "/_ghsim/reset", "{}") ? cases[i].fn() : -1;
		test_case_done(cases[i].name, r, t0);
	}
	free(token);
	free(app_key);
	free(bad_key);
	return test_summary();
}
