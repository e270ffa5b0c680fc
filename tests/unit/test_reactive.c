/*
 * Unit tests of src/reactive/ without a daemon: the intake on a real
 * listener on 127.0.0.1 over a real state store, spoken to with plain
 * sockets. What is refused stores nothing; a queued job is pushed, counted
 * for the planner and triggers a pass; in_progress ends its wait; a reload
 * takes a new secret; the consumer gives the runners a pass made to the
 * oldest waiting jobs of their flavor; a flavor the last pass left at its
 * max asks for no pass; a duplicate is known with or without the intake's
 * memory of recent deliveries. (GitHub rechecks: tests/e2e/test_webhooks.py;
 * reactive_assign alone: test_reactive_assign.c.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/fileutil.h"
#include "util/handoff.h"
#include "util/httpc.h"
#include "util/strutil.h"
#include "reactive/reactive.h"
#include "reactive/reactive_internal.h" /* the journal's limit, made small */
#include "webhook/webhook.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/socket.h>

#define SECRET  "unit webhook secret"
#define SECRET2 "the next secret"

struct fixture {
	char dir[PATH_MAX];
	struct store *store;
	struct config *cfg;
	struct reactive *rx;
	int port;
	atomic_int triggers;
	atomic_int later; /* passes asked for within a second */
};

static void on_trigger(void *ctx)
{
	struct fixture *f = ctx;
	atomic_fetch_add(&f->triggers, 1);
}

static void on_later(void *ctx)
{
	struct fixture *f = ctx;
	atomic_fetch_add(&f->later, 1);
}

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static struct config *load(int port, const char *max_body, const char *webhook_extra)
{
	struct config_errors errs = {0};
	struct config *c = NULL;
	char text[2048];

	snprintf(text, sizeof(text),
	         "github:\n  path: octo/hello\n  token_env: RUNNERD_TEST_TOKEN\n"
	         "manager:\n  name: ci\n"
	         "flavors:\n  - {name: small, provider: local, labels: [small], max: 4}\n"
	         "  - {name: large, provider: local, labels: [large], max: 4}\n"
	         "webhook:\n  listen: 127.0.0.1:%d\n  secret_env: RUNNERD_TEST_WEBHOOK\n"
	         "  max_body: %s\n%s",
	         port, max_body, webhook_extra);
	if (config_load_string("t.yaml", text, strlen(text), &c, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			print_error("%s\n", errs.v[i]);
		fail();
	}
	config_errors_release(&errs);
	return c;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct err e = {0};

	if (!f)
		return -1;
	setenv("RUNNERD_TEST_TOKEN", "ghp_test", 1);
	setenv("RUNNERD_TEST_WEBHOOK", SECRET, 1);
	snprintf(f->dir, sizeof(f->dir), "/tmp/runnerd-test-reactive-XXXXXX");
	if (!mkdtemp(f->dir) || store_open(f->dir, &f->store, &e) < 0)
		return -1;
	f->port = free_port();
	f->cfg = load(f->port, "64KiB", "");
	if (reactive_start(
	            f->cfg, f->store,
	            &(struct reactive_triggers){.now = on_trigger, .later = on_later, .ctx = f},
	            &f->rx, &e) < 0) {
		print_error("reactive_start: %s\n", e.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	reactive_stop(f->rx);
	config_free(f->cfg);
	store_close(f->store);
	rm_rf(f->dir, NULL);
	free(f);
	return 0;
}

/* The status of one request; sig NULL: none, "" signs body with SECRET. */
static int request(struct fixture *f, const char *method, const char *path, const char *event,
                   const char *delivery, const char *body, const char *sig, const char *key)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)f->port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char head[1024], sigbuf[80] = "", resp[256] = "";
	unsigned char md[32];
	unsigned int mdlen = 0;
	size_t blen = body ? strlen(body) : 0;
	int fd, status = -1;
	ssize_t n;

	if (sig && !*sig) {
		HMAC(EVP_sha256(), key ? key : SECRET, (int)strlen(key ? key : SECRET),
		     (const unsigned char *)(body ? body : ""), blen, md, &mdlen);
		int o = snprintf(sigbuf, sizeof(sigbuf), "sha256=");
		for (unsigned i = 0; i < mdlen; i++)
			o += snprintf(sigbuf + o, sizeof(sigbuf) - (size_t)o, "%02x", md[i]);
		sig = sigbuf;
	}
	snprintf(head, sizeof(head),
	         "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: "
	         "application/json\r\n"
	         "%s%s%s%s%s%s%s%s%sContent-Length: %zu\r\n\r\n",
	         method, path, event ? "X-GitHub-Event: " : "", event ? event : "",
	         event ? "\r\n" : "", delivery ? "X-GitHub-Delivery: " : "",
	         delivery ? delivery : "", delivery ? "\r\n" : "",
	         sig ? "X-Hub-Signature-256: " : "", sig ? sig : "", sig ? "\r\n" : "", blen);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_true(write(fd, head, strlen(head)) == (ssize_t)strlen(head));
	if (blen)
		(void)!write(fd, body, blen);
	n = read(fd, resp, sizeof(resp) - 1);
	if (n > 12 && sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
		status = -1;
	close(fd);
	return status;
}

#define QUEUED(id, labels)                                                                         \
	"{\"action\":\"queued\",\"workflow_job\":{\"id\":" id ",\"run_id\":5,\"labels\":" labels   \
	"},\"repository\":{\"full_name\":\"octo/hello\"}}"
#define ACTION(action, id)                                                                         \
	"{\"action\":\"" action "\",\"workflow_job\":{\"id\":" id ",\"run_id\":5,\"labels\":[]},"  \
	"\"repository\":{\"full_name\":\"octo/hello\"}}"

static int64_t waiting(struct fixture *f, const char *flavor)
{
	struct manager_hooks h;
	reactive_manager_hooks(f->rx, &h);
	return h.waiting_jobs(h.ctx, flavor);
}

static void test_intake(void **state)
{
	struct fixture *f = *state;
	struct reactive_stats st;
	struct store_job j;

	assert_true(reactive_port(f->rx) == f->port);
	assert_int_equal(request(f, "GET", "/healthz", NULL, NULL, NULL, NULL, NULL), 200);
	/* refused, and nothing stored */
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "d1",
	                         QUEUED("9007199254740993", "[\"small\"]"), NULL, NULL),
	                 401);
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "d1",
	                         QUEUED("9007199254740993", "[\"small\"]"), "", "wrong"),
	                 401);
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "d1", "{", "", NULL), 400);
	assert_int_equal(request(f, "POST", "/webhook", NULL, "d1", "{}", "", NULL), 400);
	assert_int_equal(store_job_get(f->store, INT64_C(9007199254740993), &j, NULL), -ENOENT);
	assert_int_equal(store_delivery_add(f->store, "d1", 1, NULL), 0); /* d1 was not recorded */
	assert_int_equal(atomic_load(&f->triggers), 0);
	/* over max_body (64 KiB): 413 before the body is read */
	char *big = malloc(70000);
	memset(big, ' ', 69999);
	big[69999] = '\0';
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "d9", big, "", NULL), 413);
	free(big);

	/* queued: pushed, counted, a pass triggered */
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "d2",
	                         QUEUED("9007199254740993", "[\"Small\",\"self-hosted\"]"), "",
	                         NULL),
	                 202);
	assert_int_equal(atomic_load(&f->triggers), 1);
	assert_int_equal(store_job_get(f->store, INT64_C(9007199254740993), &j, NULL), 0);
	assert_string_equal(j.flavor, "small");
	assert_string_equal(j.labels, "[\"Small\",\"self-hosted\"]");
	assert_string_equal(j.delivery_id, "d2");
	assert_int_equal(waiting(f, "small"), 1);
	assert_int_equal(waiting(f, "large"), 0);
	/* the same delivery again: ignored; another delivery of the job: known */
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "d2",
	                         QUEUED("9007199254740993", "[\"small\"]"), "", NULL),
	                 200);
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "d3",
	                         QUEUED("9007199254740993", "[\"small\"]"), "", NULL),
	                 200);
	assert_int_equal(waiting(f, "small"), 1);
	/* not ours: no flavor; ping; another event */
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "d4",
	                         QUEUED("77", "[\"windows\"]"), "", NULL),
	                 200);
	assert_int_equal(request(f, "POST", "/webhook", "ping", "d5", "{\"zen\":\"z\"}", "", NULL),
	                 200);
	assert_int_equal(request(f, "POST", "/webhook", "push", "d6", "{}", "", NULL), 202);
	/* in_progress: it waits no more */
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "d7",
	                         ACTION("in_progress", "9007199254740993"), "", NULL),
	                 200);
	assert_int_equal(waiting(f, "small"), 0);
	assert_int_equal(store_job_get(f->store, INT64_C(9007199254740993), &j, NULL), 0);
	assert_string_equal(j.done_why, "in_progress");

	reactive_get_stats(f->rx, &st);
	assert_int_equal(st.unauthorized, 2);
	assert_int_equal(st.malformed, 2);
	assert_int_equal(st.queued, 1);
	assert_int_equal(st.duplicates, 1);
	assert_int_equal(st.known, 1);
	assert_int_equal(st.ignored[WEBHOOK_SKIP_NO_FLAVOR], 1);
	assert_int_equal(st.pings, 1);
	assert_int_equal(st.other_events, 1);
	assert_int_equal(st.acked, 1);
	assert_int_equal(st.refused_400, 2);
}

/* Each answer time in the first bucket whose bound is not below it, the rest only counted. */
static void test_answer_buckets(void **state)
{
	struct reactive_stats st = {0};

	(void)state;
	reactive_stats_answered(&st, 300);      /* 0.3 ms: <= 0.5 ms */
	reactive_stats_answered(&st, 1000);     /* 1 ms: <= 1 ms, bounds are inclusive */
	reactive_stats_answered(&st, 1001);     /* <= 2.5 ms */
	reactive_stats_answered(&st, 12000000); /* 12 s: above them all */
	reactive_stats_answered(&st, -5);       /* a clock that went back: 0 */
	assert_int_equal(st.answer_in[0], 2);
	assert_int_equal(st.answer_in[1], 1);
	assert_int_equal(st.answer_in[2], 1);
	for (size_t i = 3; i < REACTIVE_ANSWER_BOUNDS; i++)
		assert_int_equal(st.answer_in[i], 0);
	assert_int_equal(st.answered, 5);
	assert_int_equal(st.answer_us, 300 + 1000 + 1001 + 12000000);
	assert_true(reactive_answer_bounds[REACTIVE_ANSWER_BOUNDS - 1] == 10);
}

/* The value of one series of family name in reg. */
static double series(struct prom_registry *reg, const char *name, const char *const *values)
{
	struct prom_family *fam = prom_family_find(reg, name);
	double v = -1;

	if (!fam)
		fail_msg("no family %s", name);
	if (prom_get(fam, values, &v) < 0)
		fail_msg("no series of %s", name);
	return v;
}

#define S(...) ((const char *const[]){__VA_ARGS__})

/* What the intake counted, as a scrape reads it: every series from 0, then the counts. */
static void test_prom(void **state)
{
	struct fixture *f = *state;
	struct prom_registry *reg;
	struct reactive_stats st = {0};
	struct buf b = BUF_INIT(1 << 20);

	assert_int_equal(prom_registry_new(&reg), 0);
	assert_int_equal(reactive_prom_collect(f->rx, reg), 0);
	assert_true(series(reg, "runnerd_webhook_deliveries_total", S("workflow_job", "queued")) ==
	            0);
	assert_true(series(reg, "runnerd_webhook_refusals_total", S("401")) == 0);
	assert_true(series(reg, "runnerd_reactive_jobs_dropped_total", S("retries")) == 0);
	prom_registry_free(reg);

	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "p1",
	                         QUEUED("11", "[\"small\"]"), NULL, NULL),
	                 401);
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "p1", "[", "", NULL), 400);
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "p2",
	                         QUEUED("11", "[\"small\"]"), "", NULL),
	                 202);
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "p2",
	                         QUEUED("11", "[\"small\"]"), "", NULL),
	                 200);
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "p3",
	                         QUEUED("12", "[\"gpu\"]"), "", NULL),
	                 200);
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "p4",
	                         ACTION("waiting", "13"), "", NULL),
	                 200);
	assert_int_equal(request(f, "POST", "/webhook", "ping", "p5", "{}", "", NULL), 200);
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "p6",
	                         ACTION("completed", "11"), "", NULL),
	                 200);

	assert_int_equal(prom_registry_new(&reg), 0);
	assert_int_equal(reactive_prom_collect(f->rx, reg), 0);
	assert_true(series(reg, "runnerd_webhook_deliveries_total", S("workflow_job", "queued")) ==
	            1);
	assert_true(series(reg, "runnerd_webhook_deliveries_total",
	                   S("workflow_job", "duplicate")) == 1);
	assert_true(series(reg, "runnerd_webhook_deliveries_total", S("workflow_job", "ignored")) ==
	            2);
	assert_true(series(reg, "runnerd_webhook_deliveries_total", S("workflow_job", "done")) ==
	            1);
	assert_true(series(reg, "runnerd_webhook_deliveries_total", S("ping", "ok")) == 1);
	assert_true(series(reg, "runnerd_webhook_refusals_total", S("401")) == 1);
	assert_true(series(reg, "runnerd_webhook_refusals_total", S("400")) == 1);
	assert_true(series(reg, "runnerd_reactive_jobs_routed_total", NULL) == 1);
	assert_true(series(reg, "runnerd_reactive_jobs_ignored_total", S("no-flavor")) == 1);
	assert_true(series(reg, "runnerd_reactive_jobs_ignored_total", S("action")) == 1);
	/* the exposition is well formed: every family has its HELP and TYPE */
	assert_int_equal(prom_render(reg, &b), 0);
	assert_non_null(strstr(buf_str(&b), "# TYPE runnerd_webhook_deliveries_total counter\n"));
	assert_non_null(strstr(buf_str(&b), "# TYPE runnerd_reactive_rechecks_total counter\n"));
	/* every request to /webhook answered, refused or not, in the answer times */
	assert_non_null(
	        strstr(buf_str(&b), "# TYPE runnerd_webhook_answer_duration_seconds histogram\n"));
	assert_non_null(strstr(buf_str(&b), "runnerd_webhook_answer_duration_seconds_bucket{le="
	                                    "\"+Inf\"} 8\n"));
	assert_non_null(strstr(buf_str(&b), "runnerd_webhook_answer_duration_seconds_count 8\n"));
	buf_release(&b);
	prom_registry_free(reg);
	/* the four the group commit wrote (p2 first, p3, p4, p6) passed each step; a
	 * duplicate, a refusal and a ping did not */
	reactive_get_stats(f->rx, &st);
	assert_int_equal(st.answered, 8);
	assert_int_equal(st.staged, 4);
	assert_true(st.stage_write_us > 0);
	assert_true(st.answer_us >=
	            st.stage_parse_us + st.stage_wait_us + st.stage_write_us + st.stage_report_us);
	memset(&st, 0, sizeof(st));

	/* the consumer's counters, from counts a pass loop would have made */
	st.rechecks = 5;
	st.recheck_done = 2;
	st.gone = 1;
	st.dropped = 3;
	st.retries = 4;
	st.runners_made = 6;
	st.redelivered = 7;
	assert_int_equal(prom_registry_new(&reg), 0);
	assert_int_equal(reactive_prom_put(&st, reg), 0);
	assert_true(series(reg, "runnerd_reactive_rechecks_total", S("ended")) == 2);
	assert_true(series(reg, "runnerd_reactive_rechecks_total", S("gone")) == 1);
	assert_true(series(reg, "runnerd_reactive_rechecks_total", S("other")) == 2);
	assert_true(series(reg, "runnerd_reactive_jobs_dropped_total", S("gone")) == 1);
	assert_true(series(reg, "runnerd_reactive_jobs_dropped_total", S("retries")) == 3);
	assert_true(series(reg, "runnerd_reactive_job_retries_total", NULL) == 4);
	assert_true(series(reg, "runnerd_reactive_runners_made_total", NULL) == 6);
	assert_true(series(reg, "runnerd_reactive_backfill_redeliveries_total", NULL) == 7);
	prom_registry_free(reg);
}

static void test_reload_secret(void **state)
{
	struct fixture *f = *state;
	struct config *old = f->cfg;

	setenv("RUNNERD_TEST_WEBHOOK", SECRET2, 1);
	f->cfg = load(f->port, "64KiB", "");
	reactive_reload(f->rx, f->cfg);
	config_free(old);
	assert_int_equal(request(f, "POST", "/webhook", "ping", "p1", "{}", "", SECRET), 401);
	assert_int_equal(request(f, "POST", "/webhook", "ping", "p2", "{}", "", SECRET2), 200);
}

static void test_consumer_assigns_runners(void **state)
{
	struct fixture *f = *state;
	struct manager_event ev[3] = {
	        {.action = "create", .flavor = "small", .ok = true},
	        {.action = "create", .flavor = "small", .ok = false},
	        {.action = "delete", .flavor = "small", .ok = true},
	};
	struct manager_report rep = {.events = ev, .n_events = 3};
	struct store_job j;

	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "q1",
	                         QUEUED("101", "[\"small\"]"), "", NULL),
	                 202);
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "q2",
	                         QUEUED("102", "[\"small\"]"), "", NULL),
	                 202);
	/* one runner made: the oldest job has it; nothing is due for a recheck (2m) */
	reactive_after_pass(f->rx, NULL, &rep);
	assert_int_equal(store_job_get(f->store, 101, &j, NULL), 0);
	assert_int_equal(j.attempts, 1);
	assert_true(j.runner_at > 0);
	assert_int_equal(store_job_get(f->store, 102, &j, NULL), 0);
	assert_int_equal(j.attempts, 0);
	/* the next pass's runner goes to the next job */
	reactive_after_pass(f->rx, NULL, &rep);
	assert_int_equal(store_job_get(f->store, 101, &j, NULL), 0);
	assert_int_equal(j.attempts, 1);
	assert_int_equal(store_job_get(f->store, 102, &j, NULL), 0);
	assert_int_equal(j.attempts, 1);
	/* both still count for the planner until they are taken */
	assert_int_equal(waiting(f, "small"), 2);

	/* idle runners count too, but not those the jobs given one hold */
	struct plan_flavor_count counts[1] = {{.name = "small", .idle = 2}};
	struct manager_report idle = {.plan = {.counts = counts, .n_counts = 1}};
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "q3",
	                         QUEUED("103", "[\"small\"]"), "", NULL),
	                 202);
	reactive_after_pass(f->rx, NULL, &idle);
	assert_int_equal(store_job_get(f->store, 103, &j, NULL), 0);
	assert_int_equal(j.attempts, 0);
	counts[0].idle = 3;
	reactive_after_pass(f->rx, NULL, &idle);
	assert_int_equal(store_job_get(f->store, 103, &j, NULL), 0);
	assert_int_equal(j.attempts, 1);
}

/* A pass's report that leaves small at its max (4) and large with room (1 of 4). */
static struct manager_report room_report(struct plan_flavor_count counts[2])
{
	memset(counts, 0, 2 * sizeof(*counts));
	str_copy(counts[0].name, "small", sizeof(counts[0].name));
	counts[0].desired = 4;
	str_copy(counts[1].name, "large", sizeof(counts[1].name));
	counts[1].desired = 1;
	return (struct manager_report){.plan = {.counts = counts, .n_counts = 2}};
}

/* Post a queued job (202), then check the passes asked so far: now, and within a second. */
static void queue_then_count(struct fixture *f, const char *delivery, const char *body, int now,
                             int later)
{
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", delivery, body, "", NULL),
	                 202);
	assert_int_equal(atomic_load(&f->triggers), now);
	assert_int_equal(atomic_load(&f->later), later);
}

/*
 * A job queued for a flavor the last pass left at its max (or while the
 * manager drains) is stored and answered 202 but asks for no pass now,
 * only for one within a second (merged by the pass loop); one with room
 * asks for one now; a runner leaving (in_progress) always does; a reload
 * forgets what the last pass said.
 */
static void test_no_pass_for_a_full_flavor(void **state)
{
	struct fixture *f = *state;
	struct plan_flavor_count counts[2];
	struct manager_report rep = room_report(counts);
	struct config *old = f->cfg;

	/* before any pass, every queued job asks for one */
	queue_then_count(f, "r1", QUEUED("201", "[\"small\"]"), 1, 0);
	/* small at its max: stored all the same, and a pass soon counts it (merged) */
	reactive_note_room(f->rx, &rep, false);
	queue_then_count(f, "r2", QUEUED("202", "[\"small\"]"), 1, 1);
	assert_int_equal(waiting(f, "small"), 2);
	queue_then_count(f, "r3", QUEUED("203", "[\"large\"]"), 2, 1);
	/* a runner of small took a job: the pass that follows may make another */
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "r4",
	                         ACTION("in_progress", "201"), "", NULL),
	                 200);
	assert_int_equal(atomic_load(&f->triggers), 3);

	/* draining: no flavor has room */
	reactive_note_room(f->rx, &rep, true);
	queue_then_count(f, "r5", QUEUED("204", "[\"large\"]"), 3, 2);
	/* a pass with room again */
	counts[0].desired = 3;
	reactive_note_room(f->rx, &rep, false);
	queue_then_count(f, "r6", QUEUED("205", "[\"small\"]"), 4, 2);

	/* a reload: the flavors may differ, so every job asks for a pass until the next one */
	counts[0].desired = 4;
	reactive_note_room(f->rx, &rep, false);
	f->cfg = load(f->port, "64KiB", "");
	reactive_reload(f->rx, f->cfg);
	config_free(old);
	queue_then_count(f, "r7", QUEUED("206", "[\"small\"]"), 5, 2);
}

/*
 * A duplicate is answered as one, unparsed, whether this process recorded
 * it or an earlier one did (the store's index of the deliveries is loaded
 * with it), and nothing is queued twice.
 */
static void test_duplicate_known_from_the_store(void **state)
{
	struct fixture *f = *state;
	struct reactive_stats st;
	struct store_job j;

	/* recorded before this process */
	assert_int_equal(store_delivery_add(f->store, "old-1", 1700000000000, NULL), 0);
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "old-1",
	                         QUEUED("301", "[\"small\"]"), "", NULL),
	                 200);
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "old-1", "{", "", NULL),
	                 200);
	assert_int_equal(store_job_get(f->store, 301, &j, NULL), -ENOENT);
	/* recorded by this process, then again */
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "new-1",
	                         QUEUED("302", "[\"small\"]"), "", NULL),
	                 202);
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "new-1",
	                         QUEUED("302", "[\"small\"]"), "", NULL),
	                 200);
	/* even with a body that would not parse: a recorded delivery is not read again */
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "new-1", "{", "", NULL),
	                 200);
	assert_int_equal(waiting(f, "small"), 1);
	reactive_get_stats(f->rx, &st);
	assert_int_equal(st.duplicates, 4);
	assert_int_equal(st.queued, 1);
	assert_int_equal(st.malformed, 0);
}

/* Wait up to 15 s for flavor's waiting jobs to be n (the journal's applier behind). */
static void wait_waiting(struct fixture *f, const char *flavor, int64_t n)
{
	for (int i = 0; i < 1500 && waiting(f, flavor) != n; i++)
		usleep(10 * 1000);
	assert_int_equal(waiting(f, flavor), n);
}

/*
 * answer_after write: a delivery is answered once in the journal, before
 * the state store has it (its write lock held here by another connection);
 * a duplicate of one not in the store yet is still a duplicate; the
 * applier's commit that meets the lock fails (counted, and on /metrics
 * with the deliveries behind); an applier too far behind has appends wait,
 * then answered 503; once the store takes writes again the
 * applier writes them, and only then are they counted, a job waiting, and
 * a pass asked for. A queued job known already
 * is answered 202 (that is known only in the store), and counted as known.
 */
static void test_answered_after_the_journal(void **state)
{
	struct fixture *f = *state;
	struct reactive_stats st;
	struct store_job j;
	char path[PATH_MAX];
	sqlite3 *db = NULL;

	config_free(f->cfg);
	f->cfg = load(f->port, "64KiB", "  answer_after: write\n");
	reactive_reload(f->rx, f->cfg);
	snprintf(path, sizeof(path), "%s/state.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "j-1",
	                         QUEUED("401", "[\"small\"]"), "", NULL),
	                 202);
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "j-1",
	                         QUEUED("401", "[\"small\"]"), "", NULL),
	                 200);
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "j-2",
	                         ACTION("in_progress", "402"), "", NULL),
	                 200);
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "j-3",
	                         QUEUED("403", "[\"gpu\"]"), "", NULL),
	                 200); /* no flavor: ignored, its delivery still journaled */
	/* the applier's first commit meets the lock (SQLite's busy timeout) and fails */
	reactive_get_stats(f->rx, &st);
	for (int i = 0; i < 1500 && st.journal_failed == 0; i++) {
		usleep(10 * 1000);
		reactive_get_stats(f->rx, &st);
	}
	assert_true(st.journal_failed >= 1);
	assert_int_equal(st.journal_behind, 3);
	/* the applier too far behind (a limit of one byte here): an append waits, then 503 */
	reactive_journal_set_behind_max(f->rx->journal, 1);
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "j-5",
	                         QUEUED("405", "[\"small\"]"), "", NULL),
	                 503);
	reactive_get_stats(f->rx, &st);
	assert_int_equal(st.errors, 1);
	assert_int_equal(st.journal_behind, 3);
	reactive_journal_set_behind_max(f->rx->journal, 8u << 20);
	assert_int_equal(st.duplicates, 1);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.acked, 0);
	assert_int_equal(atomic_load(&f->triggers), 0);
	assert_int_equal(store_job_get(f->store, 401, &j, NULL), -ENOENT);

	{
		struct prom_registry *reg;

		assert_int_equal(prom_registry_new(&reg), 0);
		assert_int_equal(reactive_prom_collect(f->rx, reg), 0);
		assert_true(series(reg, "runnerd_webhook_journal_behind", NULL) == 3);
		prom_registry_free(reg);
	}
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	wait_waiting(f, "small", 1);
	reactive_get_stats(f->rx, &st);
	assert_int_equal(st.queued, 1);
	assert_int_equal(st.acked, 1);
	assert_int_equal(st.written, 3);
	assert_true(atomic_load(&f->triggers) >= 1);
	assert_int_equal(store_job_get(f->store, 402, &j, NULL), 0);
	assert_true(j.done_at > 0);
	assert_string_equal(j.done_why, "in_progress");
	/* in the store now: a duplicate there too, and a queued job known already */
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "j-3",
	                         QUEUED("403", "[\"gpu\"]"), "", NULL),
	                 200);
	assert_int_equal(request(f, "POST", "/webhook", "workflow_job", "j-4",
	                         QUEUED("401", "[\"small\"]"), "", NULL),
	                 202);
	for (int i = 0; i < 1500 && st.known == 0; i++) {
		usleep(10 * 1000);
		reactive_get_stats(f->rx, &st);
	}
	assert_int_equal(st.known, 1);
	assert_int_equal(st.duplicates, 2);
	assert_int_equal(st.journal_behind, 0);
	assert_int_equal(st.queued, 1);
	assert_int_equal(waiting(f, "small"), 1);
	sqlite3_close(db);
}

/* GET /v1/handoff/<token>: an instance's secrets, once; a HEAD takes nothing. */
static void test_handoff(void **state)
{
	struct fixture *f = *state;
	char token[HANDOFF_TOKEN_LEN + 1], url[256];
	struct httpc_response r = {0};
	struct err e = {0};

	assert_int_equal(handoff_put("JIT=secret\n", 11, 60000, token, &e), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/handoff/%s", f->port, token);
	struct httpc_request q = {.url = url, .max_body = 4096, .secret = true};
	q.method = "HEAD";
	assert_int_equal(httpc_perform(NULL, &q, &r, &e), 0);
	assert_int_equal(r.status, 405);
	q.method = "GET";
	assert_int_equal(httpc_perform(NULL, &q, &r, &e), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(buf_str(&r.body), "JIT=secret\n");
	assert_int_equal(httpc_perform(NULL, &q, &r, &e), 0);
	assert_int_equal(r.status, 404);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/handoff/../../etc/passwd", f->port);
	assert_int_equal(httpc_perform(NULL, &q, &r, &e), 0);
	assert_true(r.status == 404 || r.status == 400);
	httpc_response_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_intake, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_handoff, setup, teardown),
	        cmocka_unit_test(test_answer_buckets),
	        cmocka_unit_test_setup_teardown(test_prom, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_reload_secret, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_consumer_assigns_runners, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_no_pass_for_a_full_flavor, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_duplicate_known_from_the_store, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_answered_after_the_journal, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
