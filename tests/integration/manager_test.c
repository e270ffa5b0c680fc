/*
 * The manager against ghsim with the in-memory provider: what a pass does
 * when creates fail, when a list fails, when a runner finishes, and that the
 * secret reaches only the instance's secret environment. Driven by
 * tests/integration/test_manager (GHSIM_URL, GH_TOKEN_FILE); prints
 * "N passed, N failed" last.
 */
#include "util/common.h"
#include "testlib.h"
#include "config/config.h"
#include "github/github.h"
#include "manager/manager.h"
#include "provider/memory.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/fileutil.h"
#include "util/httpc.h"
#include "util/log.h"
#include "util/strutil.h"

#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>

static const char *url, *token_file;

struct fx {
	char dir[64];
	struct config *cfg;
	struct provider *mem;
	struct store *store;
	struct github *gh;
	struct manager *m;
};

static json_t *ctl(const char *method, const char *path, const char *body)
{
	return test_ghsim(url, method, path, body);
}

/* Runners on ghsim whose name starts with "mt-". */
static size_t sim_runners(void)
{
	json_t *a = ctl("GET", "/_ghsim/runners", NULL), *v;
	size_t i, n = 0;
	json_array_foreach(a, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		n += name && strncmp(name, "mt-", 3) == 0;
	}
	json_decref(a);
	return n;
}

/* Extra top-level YAML for the next fixture (a case sets it, run() clears it). */
static const char *fx_extra = "";
/* Extra keys of the next fixture's manager map (", key: value"; run() clears it). */
static const char *fx_manager = "";
/* github.request_timeout of the next fixture (run() puts back 5s). */
static const char *fx_request_timeout = "5s";

/* Remove ghsim's first runner as if its machine vanished. */
static void sim_delete_first_runner(void)
{
	json_t *a = ctl("GET", "/_ghsim/runners", NULL);
	char p[128];
	snprintf(p, sizeof(p), "/_ghsim/runners/%" JSON_INTEGER_FORMAT,
	         json_integer_value(json_object_get(json_array_get(a, 0), "id")));
	json_decref(a);
	json_decref(ctl("DELETE", p, NULL));
}

/* What the local backend is, for the memory one that plays it. */
static const struct provider_traits local_traits = {
        .runner_from_host = true,
        .host_process = true,
        .pull_files = true,
        .health_probe = true,
};

static int fx_open(struct fx *f, int min_idle, int max)
{
	char yaml[2048];
	struct config_errors errs = {0};
	struct err e = {0};

	memset(f, 0, sizeof(*f));
	json_decref(ctl("POST", "/_ghsim/reset", "{}"));
	snprintf(f->dir, sizeof(f->dir), "/tmp/runnerd-mt.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(yaml, sizeof(yaml),
	         "github: {api_url: \"%s\", path: octo/hello, token_file: \"%s\", request_timeout: "
	         "%s}\n"
	         "manager: {name: mt, state_dir: \"%s/state\", log_dir: \"%s/logs\", "
	         "log_retention: 1h, bootstrap_timeout: 30s%s}\n"
	         "flavors:\n  - {name: small, provider: local, labels: [small], min_idle: %d, max: "
	         "%d}\n"
	         "providers: {local: {work_dir: \"%s/work\"}}\n%s",
	         url, token_file, fx_request_timeout, f->dir, f->dir, fx_manager, min_idle, max,
	         f->dir, fx_extra);
	if (config_load_string("mt.yaml", yaml, strlen(yaml), &f->cfg, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		config_errors_release(&errs);
		return -1;
	}
	/* the flavors' provider "local", played by the memory backend with its traits */
	if (memory_new("local", "mt", &f->mem, &e) < 0 ||
	    memory_set_traits(f->mem, &local_traits) < 0 ||
	    store_open(f->cfg->manager.state_dir, &f->store, &e) < 0 ||
	    github_new(f->cfg, NULL, &f->gh, &e) < 0 ||
	    manager_new(f->cfg, f->store, f->gh, &f->mem, 1, &f->m, &e) < 0) {
		fprintf(stderr, "fixture: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static void fx_close(struct fx *f)
{
	manager_free(f->m);
	github_free(f->gh);
	store_close(f->store);
	provider_free(f->mem);
	config_free(f->cfg);
	rm_rf(f->dir, NULL);
}

static int pass(struct fx *f, enum plan_mode mode, struct manager_report *rep)
{
	struct err e = {0};
	int r = manager_reconcile(f->m, mode, rep, &e);
	if (r < 0)
		fprintf(stderr, "  pass: %s\n", e.msg);
	return r;
}

static size_t rows(struct fx *f)
{
	struct store_instance_list l = {0};
	size_t n = 0;
	if (store_instance_list(f->store, &l, NULL) == 0)
		n = l.n;
	store_instance_list_release(&l);
	return n;
}

/* The name of the one instance the memory provider holds. */
static int only_instance(struct fx *f, char name[INSTANCE_NAME_MAX])
{
	struct instance_list l = {0};
	int r = provider_list(f->mem, &l, NULL) == 0 && l.n == 1 ? 0 : -1;

	if (r == 0)
		str_copy(name, l.v[0].name, INSTANCE_NAME_MAX);
	instance_list_release(&l);
	return r;
}

/* A failed create leaves nothing: no instance, no JIT runner on GitHub, no row. */
static int case_failed_create_leaves_nothing(struct fx *f)
{
	struct manager_report rep;
	memory_fail(f->mem, MEMORY_OP_CREATE, -EIO, 2);
	memory_fail_create_leaves(f->mem, CLOUD_ACTIVE); /* the cloud made half an instance */
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	size_t bad = 0;
	for (size_t i = 0; i < rep.n_events; i++)
		bad += !rep.events[i].ok && strcmp(rep.events[i].action, "create") == 0;
	manager_report_release(&rep);
	REQUIRE(bad == 2);
	REQUIRE(memory_count(f->mem) == 0);
	REQUIRE(sim_runners() == 0);
	REQUIRE(rows(f) == 0);
	/* the next pass creates them for real */
	memory_fail_create_leaves(f->mem, CLOUD_UNKNOWN);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(memory_count(f->mem) == 2 && sim_runners() == 2 && rows(f) == 2);
	return 0;
}

/*
 * Passes that webhooks alone asked for sweep for leftovers at most once a
 * MANAGER_LEFTOVERS_GAP_S; the first pass, and every other one, sweep.
 */
static int case_webhook_passes_sweep_less(struct fx *f)
{
	struct manager_report rep;

	manager_next_pass_quick(f->m); /* the first pass sweeps all the same */
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(memory_calls(f->mem, MEMORY_OP_GC) == 1);
	for (int i = 0; i < 5; i++) {
		manager_next_pass_quick(f->m);
		REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
		manager_report_release(&rep);
	}
	REQUIRE(memory_calls(f->mem, MEMORY_OP_GC) == 1);
	/* the mark is taken by one pass: the next one sweeps */
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(memory_calls(f->mem, MEMORY_OP_GC) == 2);
	/* an observation (status) takes no mark and sweeps nothing */
	manager_next_pass_quick(f->m);
	REQUIRE(manager_observe(f->m, &rep, NULL) == 0);
	manager_report_release(&rep);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(memory_calls(f->mem, MEMORY_OP_GC) == 2);
	return 0;
}

/* The JIT config goes only into the secret environment, never the script or the store. */
static int case_secret_only_in_secret_env(struct fx *f)
{
	struct manager_report rep;
	struct instance_list l = {0};
	struct buf env = BUF_INIT(1 << 20), script = BUF_INIT(1 << 20);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(provider_list(f->mem, &l, NULL) == 0 && l.n == 1);
	REQUIRE(memory_get_secret_env(f->mem, l.v[0].name, &env) == 0);
	REQUIRE(memory_get_startup_script(f->mem, l.v[0].name, &script) == 0);
	const char *p = strstr(buf_str(&env), "ACTIONS_RUNNER_INPUT_JITCONFIG='");
	REQUIRE(p);
	char jit[64];
	str_copy(jit, p + strlen("ACTIONS_RUNNER_INPUT_JITCONFIG='"), 40); /* a prefix is enough */
	REQUIRE(strlen(jit) > 20);
	REQUIRE(!strstr(buf_str(&script), jit));
	struct buf db = BUF_INIT(64 << 20);
	char path[256];
	snprintf(path, sizeof(path), "%s/state/state.db", f->dir);
	REQUIRE(file_read(path, db.max, true, &db, NULL) == 0);
	REQUIRE(!memmem(db.data, db.len, jit, strlen(jit)));
	buf_release(&db);
	buf_release(&env);
	buf_release(&script);
	instance_list_release(&l);
	return 0;
}

/* What a manager's metrics sink heard. */
struct heard {
	pthread_mutex_t lock;
	struct metrics_event ev[32];
	size_t n;
	size_t quarantined;
};

static void heard_event(void *ctx, const struct metrics_event *ev)
{
	struct heard *h = ctx;

	pthread_mutex_lock(&h->lock);
	if (h->n < ARRAY_SIZE(h->ev))
		h->ev[h->n++] = *ev;
	pthread_mutex_unlock(&h->lock);
}

static void heard_quarantine(void *ctx, const char *flavor, const char *cause)
{
	struct heard *h = ctx;

	pthread_mutex_lock(&h->lock);
	h->quarantined++;
	pthread_mutex_unlock(&h->lock);
}

static const struct metrics_event *heard_kind(const struct heard *h, enum metrics_event_kind k)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->ev[i].kind == k)
			return &h->ev[i];
	return NULL;
}

/*
 * A finished runner's instance is deleted with its metrics pulled first;
 * the storage becomes its events (to the sink the manager was given, with
 * the flavor of its row) and goes; every pass ends with a reconciliation
 * event per flavor.
 */
static int case_finished_runner_metrics_pulled(struct fx *f)
{
	struct heard h = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct metrics_sink sink = {heard_event, heard_quarantine, &h};
	struct manager_report rep;
	char name[INSTANCE_NAME_MAX], path[512];
	const struct metrics_event *ev;

	manager_set_metrics_sink(f->m, &sink);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(h.n == 1 && h.ev[0].kind == METRICS_EVENT_RECONCILIATION);
	REQUIRE(strcmp(h.ev[0].flavor, "small") == 0 && h.ev[0].expected_runners == 1);
	REQUIRE(only_instance(f, name) == 0);
	/* GitHub shows the runner (seen), then it takes a job and deregisters */
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	static const char *const files[][2] = {
	        {"metrics/runner-installation-start.timestamp", "100\n"},
	        {"metrics/runner-installed.timestamp", "110\n"},
	        {"metrics/pre-job-metrics.json",
	         "{\"timestamp\": 130, \"workflow\": \"ci\", \"workflow_run_id\": \"1\", "
	         "\"repository\": \"octo/hello\", \"event\": \"push\"}"},
	        {"metrics/post-job-metrics.json",
	         "{\"timestamp\": 190, \"status\": \"normal\", \"status_info\": {\"code\": 0}}"},
	};
	for (size_t k = 0; k < ARRAY_SIZE(files); k++)
		memory_put_file(f->mem, name, files[k][0], files[k][1], strlen(files[k][1]));
	json_t *a = ctl("GET", "/_ghsim/runners", NULL), *v;
	size_t i;
	json_array_foreach(a, i, v)
	{
		char p[128];
		snprintf(p, sizeof(p), "/_ghsim/runners/%" JSON_INTEGER_FORMAT,
		         json_integer_value(json_object_get(v, "id")));
		json_decref(ctl("DELETE", p, NULL));
	}
	json_decref(a);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	bool finished = false;
	for (size_t k = 0; k < rep.n_events; k++)
		finished = finished ||
		           (strcmp(rep.events[k].name, name) == 0 &&
		            strcmp(rep.events[k].reason, "finished") == 0 && rep.events[k].ok);
	manager_report_release(&rep);
	REQUIRE(finished);
	REQUIRE((ev = heard_kind(&h, METRICS_EVENT_RUNNER_INSTALLED)) && ev->duration == 10 &&
	        strcmp(ev->flavor, "small") == 0);
	REQUIRE((ev = heard_kind(&h, METRICS_EVENT_RUNNER_START)) && ev->idle == 20 &&
	        strcmp(ev->repo, "octo/hello") == 0 && !ev->has_queue_duration); /* no such run */
	REQUIRE((ev = heard_kind(&h, METRICS_EVENT_RUNNER_STOP)) && ev->job_duration == 60 &&
	        strcmp(ev->status, "normal") == 0 && ev->has_status_code);
	REQUIRE(h.quarantined == 0);
	/* the pass issued a start and its stop: no runner crashed */
	REQUIRE(h.ev[h.n - 1].kind == METRICS_EVENT_RECONCILIATION &&
	        h.ev[h.n - 1].crashed_runners == 0);
	/* processed: the storage is gone */
	snprintf(path, sizeof(path), "%s/state/metrics/%s", f->dir, name);
	struct stat st;
	REQUIRE(lstat(path, &st) < 0 && errno == ENOENT);
	manager_set_metrics_sink(f->m, NULL);
	return 0;
}

/*
 * A runner whose machine stopped in the middle of its job: its storage has
 * the pre-job file and no post-job file, so the pass issues its start and
 * no stop, and the reconciliation event of that pass says crashed_runners
 * 1 (starts minus stops); the next pass, with nothing issued, says 0.
 */
static int case_crashed_runner_counted(struct fx *f)
{
	struct heard h = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct metrics_sink sink = {heard_event, heard_quarantine, &h};
	struct manager_report rep;
	char name[INSTANCE_NAME_MAX];
	const struct metrics_event *ev;
	bool stopped = false;

	manager_set_metrics_sink(f->m, &sink);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(only_instance(f, name) == 0);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0); /* GitHub shows the runner */
	manager_report_release(&rep);
	static const char *const files[][2] = {
	        {"metrics/runner-installed.timestamp", "110\n"},
	        {"metrics/pre-job-metrics.json",
	         "{\"timestamp\": 130, \"workflow\": \"ci\", \"workflow_run_id\": \"1\", "
	         "\"repository\": \"octo/hello\", \"event\": \"push\"}"},
	};
	for (size_t k = 0; k < ARRAY_SIZE(files); k++)
		REQUIRE(memory_put_file(f->mem, name, files[k][0], files[k][1],
		                        strlen(files[k][1])) == 0);
	REQUIRE(memory_set_state(f->mem, name, CLOUD_STOPPED) == 0); /* the machine went down */
	pthread_mutex_lock(&h.lock);
	h.n = 0;
	pthread_mutex_unlock(&h.lock);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	for (size_t k = 0; k < rep.n_events; k++)
		stopped = stopped ||
		          (strcmp(rep.events[k].name, name) == 0 &&
		           strcmp(rep.events[k].action, "delete") == 0 && rep.events[k].ok);
	manager_report_release(&rep);
	REQUIRE(stopped);
	REQUIRE((ev = heard_kind(&h, METRICS_EVENT_RUNNER_START)) &&
	        strcmp(ev->flavor, "small") == 0 && strcmp(ev->workflow, "ci") == 0);
	REQUIRE(!heard_kind(&h, METRICS_EVENT_RUNNER_STOP));
	REQUIRE(h.quarantined == 0);
	REQUIRE(h.n > 0 && h.ev[h.n - 1].kind == METRICS_EVENT_RECONCILIATION &&
	        strcmp(h.ev[h.n - 1].flavor, "small") == 0 && h.ev[h.n - 1].crashed_runners == 1);
	/* the count is the pass's own: the next one issued no start (a reused tally slot
	 * kept the last pass's counts: every later pass said crashed_runners 1) */
	pthread_mutex_lock(&h.lock);
	h.n = 0;
	pthread_mutex_unlock(&h.lock);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(!heard_kind(&h, METRICS_EVENT_RUNNER_START));
	REQUIRE((ev = heard_kind(&h, METRICS_EVENT_RECONCILIATION)) && ev->crashed_runners == 0);
	manager_set_metrics_sink(f->m, NULL);
	return 0;
}

/* dir/name holding text (dir made). */
static int put_text(const char *dir, const char *name, const char *text)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return mkdir_p(dir, 0700, NULL) < 0
	               ? -1
	               : file_write_atomic(path, text, strlen(text), 0600, NULL);
}

/*
 * Storages of runners no longer known (no row: a kill between a delete and
 * its processing) are processed after the pass's actions: their events
 * issued (no flavor known), a bad one quarantined (the sink hears of it),
 * a foreign name's never touched.
 */
static int case_orphan_storages(struct fx *f)
{
	struct heard h = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct metrics_sink sink = {heard_event, heard_quarantine, &h};
	struct manager_report rep;
	char good[200], bad[200], foreign[200], archive[300];
	const struct metrics_event *ev;
	struct stat st;

	snprintf(good, sizeof(good), "%s/state/metrics/mt-0000000000aa", f->dir);
	snprintf(bad, sizeof(bad), "%s/state/metrics/mt-0000000000bb", f->dir);
	snprintf(foreign, sizeof(foreign), "%s/state/metrics/mt-east-0000000000aa", f->dir);
	REQUIRE(put_text(good, "runner-installation-start.timestamp", "5") == 0);
	REQUIRE(put_text(good, "runner-installed.timestamp", "7") == 0);
	REQUIRE(put_text(bad, "runner-installed.timestamp", "7") == 0);
	REQUIRE(put_text(bad, "pre-job-metrics.json", "{\"timestamp\": 9}") == 0); /* schema */
	REQUIRE(put_text(foreign, "runner-installed.timestamp", "7") == 0);
	manager_set_metrics_sink(f->m, &sink);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE((ev = heard_kind(&h, METRICS_EVENT_RUNNER_INSTALLED)) && ev->duration == 2 &&
	        ev->flavor[0] == '\0');
	REQUIRE(h.quarantined == 1);
	REQUIRE(lstat(good, &st) < 0 && lstat(bad, &st) < 0 && lstat(foreign, &st) == 0);
	snprintf(archive, sizeof(archive), "%s/state/metrics-quarantine/mt-0000000000bb.tar.gz",
	         f->dir);
	REQUIRE(stat(archive, &st) == 0 && (st.st_mode & 0777) == 0600);
	manager_set_metrics_sink(f->m, NULL);
	return 0;
}

/*
 * A kill between the provider's delete and the storage's processing
 * leaves a DELETING row with nothing behind it and the pulled storage: the
 * pass that forgets the row processes the storage first, so its events
 * name the row's flavor (regression: found by test_chaos, they named none).
 */
static int case_forgotten_row_storage_keeps_flavor(struct fx *f)
{
	struct heard h = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct metrics_sink sink = {heard_event, heard_quarantine, &h};
	struct store_instance row = {0};
	struct manager_report rep;
	char dir[200];
	const struct metrics_event *ev;
	struct stat st;

	str_copy(row.name, "mt-00000000f1a0", sizeof(row.name));
	str_copy(row.flavor, "small", sizeof(row.flavor));
	str_copy(row.provider, "local", sizeof(row.provider));
	row.phase = PHASE_DELETING;
	row.created_at = time(NULL) - 60;
	row.cloud_state = CLOUD_ACTIVE;
	REQUIRE(store_instance_put(f->store, &row, NULL) == 0);
	snprintf(dir, sizeof(dir), "%s/state/metrics/%s", f->dir, row.name);
	REQUIRE(put_text(dir, "runner-installation-start.timestamp", "5") == 0);
	REQUIRE(put_text(dir, "runner-installed.timestamp", "8") == 0);
	manager_set_metrics_sink(f->m, &sink);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	bool forgot = false;
	for (size_t i = 0; i < rep.n_events; i++)
		forgot = forgot || (strcmp(rep.events[i].action, "forget") == 0 &&
		                    strcmp(rep.events[i].name, row.name) == 0 && rep.events[i].ok);
	manager_report_release(&rep);
	manager_set_metrics_sink(f->m, NULL);
	REQUIRE(forgot);
	REQUIRE(store_instance_get(f->store, row.name, &row, NULL) == -ENOENT);
	REQUIRE((ev = heard_kind(&h, METRICS_EVENT_RUNNER_INSTALLED)) && ev->duration == 3);
	REQUIREF(strcmp(ev->flavor, "small") == 0, "flavor '%s'", ev->flavor);
	REQUIRE(lstat(dir, &st) < 0 && errno == ENOENT);

	/*
	 * A kill after the row went: an orphan's storage, which no pass knows;
	 * the flavor noted at its pull names its events (one not a plain name
	 * is not taken).
	 */
	const char *notes[][2] = {{"mt-00000000f1a1", "small"}, {"mt-00000000f1a2", "../small"}};
	h.n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(notes); i++) {
		snprintf(dir, sizeof(dir), "%s/state/metrics/%s", f->dir, notes[i][0]);
		REQUIRE(put_text(dir, "runner-installation-start.timestamp", "5") == 0);
		REQUIRE(put_text(dir, "runner-installed.timestamp", i ? "9" : "8") == 0);
		REQUIRE(put_text(dir, ".runnerd-flavor", notes[i][1]) == 0);
	}
	manager_set_metrics_sink(f->m, &sink);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	manager_set_metrics_sink(f->m, NULL);
	size_t seen = 0;
	for (size_t i = 0; i < h.n; i++) {
		if (h.ev[i].kind != METRICS_EVENT_RUNNER_INSTALLED)
			continue;
		seen++;
		REQUIREF(strcmp(h.ev[i].flavor, h.ev[i].duration == 3 ? "small" : "") == 0,
		         "duration %g: flavor '%s'", h.ev[i].duration, h.ev[i].flavor);
	}
	REQUIRE(seen == 2);
	return 0;
}

/* A failing provider list deletes nothing, even with every runner gone from GitHub. */
static int case_list_failure_deletes_nothing(struct fx *f)
{
	struct manager_report rep;
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0); /* seen on GitHub */
	manager_report_release(&rep);
	size_t before = memory_count(f->mem);
	REQUIRE(before == 2);
	json_decref(ctl("POST", "/_ghsim/faults",
	                "{\"match\":\"/actions/"
	                "runners\",\"method\":\"DELETE\",\"status\":500,\"count\":0}"));
	memory_fail(f->mem, MEMORY_OP_LIST, -EIO, 1);
	REQUIRE(pass(f, PLAN_FLUSH_IDLE, &rep) == 0);
	REQUIRE(rep.deletions_blocked);
	manager_report_release(&rep);
	REQUIRE(memory_count(f->mem) == before);
	REQUIRE(memory_calls(f->mem, MEMORY_OP_DELETE) == 0);
	return 0;
}

/* Drain empties the pool and stays empty; resume refills it. */
static int case_drain_and_resume(struct fx *f)
{
	struct manager_report rep;
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(manager_set_draining(f->m, true, NULL) == 0);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	bool empty = manager_is_empty(&rep);
	manager_report_release(&rep);
	REQUIRE(memory_count(f->mem) == 0 && sim_runners() == 0 && rows(f) == 0);
	REQUIRE(empty);
	REQUIRE(manager_set_draining(f->m, false, NULL) == 0);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(memory_count(f->mem) == 2);
	return 0;
}

/* The original's narrower operations: create n, delete n, cleanup, get_runners. */
static int case_create_delete_cleanup_get(struct fx *f)
{
	struct manager_report rep;
	struct err e = {0};
	struct plan_view *v = NULL;
	size_t n = 0;

	/* min_idle 0, max 3: create 5 is clamped to 3 */
	REQUIRE(manager_create_runners(f->m, "small", 5, &rep, &e) == 0);
	manager_report_release(&rep);
	REQUIRE(memory_count(f->mem) == 3 && sim_runners() == 3);
	REQUIRE(manager_create_runners(f->m, "nope", 1, &rep, &e) < 0);
	manager_report_release(&rep);
	/* cleanup alone neither creates nor deletes a healthy pool */
	REQUIRE(manager_cleanup(f->m, &rep, &e) == 0);
	manager_report_release(&rep);
	REQUIRE(memory_count(f->mem) == 3);
	/* a runner that goes away from GitHub after being seen: cleanup removes its instance */
	sim_delete_first_runner();
	REQUIRE(manager_cleanup(f->m, &rep, &e) == 0);
	manager_report_release(&rep);
	REQUIRE(memory_count(f->mem) == 2);
	/* the two left are offline on ghsim (no runner process): mark them online = idle */
	char p[128];
	json_t *a = ctl("GET", "/_ghsim/runners", NULL);
	for (size_t i = 0; i < json_array_size(a); i++) {
		snprintf(p, sizeof(p), "/_ghsim/runners/%" JSON_INTEGER_FORMAT "/online",
		         json_integer_value(json_object_get(json_array_get(a, i), "id")));
		json_decref(ctl("POST", p, "{}"));
	}
	json_decref(a);
	REQUIRE(manager_get_runners(f->m, 1u << GH_IDLE, 0, &v, &n, &e) == 0);
	REQUIRE(n == 2);
	free(v);
	REQUIRE(manager_get_runners(f->m, 1u << GH_BUSY, 0, &v, &n, &e) == 0);
	REQUIRE(n == 0);
	free(v);
	/* delete 1 idle: one left */
	REQUIRE(manager_delete_runners(f->m, 1, &rep, &e) == 0);
	manager_report_release(&rep);
	REQUIRE(memory_count(f->mem) == 1 && sim_runners() == 1);
	return 0;
}

/* mkdir dir/name (with a file in it, or a symlink to target), mtime age_s seconds ago. */
static int put_aged(const char *dir, const char *name, const char *target, int64_t age_s)
{
	char path[512], file[600];
	struct timespec ts[2];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (target) {
		if (symlink(target, path) < 0)
			return -1;
	} else {
		snprintf(file, sizeof(file), "%s/startup.log", path);
		if (mkdir(path, 0700) < 0 || file_write_atomic(file, "x\n", 2, 0600, NULL) < 0)
			return -1;
	}
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - age_s;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	return utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
}

static bool exists(const char *dir, const char *name)
{
	char path[512];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

/* Log retention: a pass removes the saved logs of owned names older than
 * log_retention (1h here), and nothing else. */
static int case_log_retention(struct fx *f)
{
	struct manager_report rep;
	char logs[128], outside[128];
	const int64_t old = 2 * 3600;

	snprintf(logs, sizeof(logs), "%s/logs", f->dir);
	snprintf(outside, sizeof(outside), "%s/outside", f->dir);
	REQUIRE(mkdir(logs, 0700) == 0);
	REQUIRE(put_aged(logs, "mt-0123456789ab", NULL, old) == 0);      /* owned, old: removed */
	REQUIRE(put_aged(logs, "mt-aaaaaaaaaaaa", NULL, 60) == 0);       /* owned, recent: kept */
	REQUIRE(put_aged(logs, "other-0123456789ab", NULL, old) == 0);   /* another manager */
	REQUIRE(put_aged(logs, "mt-east-0123456789ab", NULL, old) == 0); /* "mt" does not own it */
	REQUIRE(put_aged(logs, "mt-0123456789AB", NULL, old) == 0);      /* not lowercase hex */
	REQUIRE(put_aged(logs, "mt-0123456789abc", NULL, old) == 0);     /* 13 hex digits */
	REQUIRE(put_aged(logs, "keep-me", NULL, old) == 0);
	/* an owned name that is a symlink to an old directory: neither is touched */
	REQUIRE(put_aged(f->dir, "outside", NULL, old) == 0);
	REQUIRE(put_aged(logs, "mt-bbbbbbbbbbbb", outside, old) == 0);
	REQUIRE(exists(logs, "mt-0123456789ab"));

	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(!exists(logs, "mt-0123456789ab"));
	REQUIRE(exists(logs, "mt-aaaaaaaaaaaa"));
	REQUIRE(exists(logs, "other-0123456789ab"));
	REQUIRE(exists(logs, "mt-east-0123456789ab"));
	REQUIRE(exists(logs, "mt-0123456789AB"));
	REQUIRE(exists(logs, "mt-0123456789abc"));
	REQUIRE(exists(logs, "keep-me"));
	REQUIRE(exists(logs, "mt-bbbbbbbbbbbb"));
	REQUIRE(exists(f->dir, "outside/startup.log"));
	return 0;
}

/* The events of a report with this action and reason (and ok). */
static size_t events(const struct manager_report *rep, const char *action, const char *reason)
{
	size_t n = 0;
	for (size_t i = 0; i < rep->n_events; i++)
		n += rep->events[i].ok && strcmp(rep->events[i].action, action) == 0 &&
		     (!reason || strcmp(rep->events[i].reason, reason) == 0);
	return n;
}

static int row_backdate(struct fx *f, const char *name, int64_t secs)
{
	struct store_instance row;
	REQUIRE(store_instance_get(f->store, name, &row, NULL) == 0);
	row.created_at -= secs;
	REQUIRE(store_instance_put(f->store, &row, NULL) == 0);
	REQUIRE(memory_set_created_at(f->mem, name, (time_t)row.created_at) == 0);
	return 0;
}

/* dir/name/big.log of size bytes (sparse), the folder changed age_s seconds ago. */
static int put_sized_folder(const char *dir, const char *name, off_t size, int64_t age_s)
{
	char path[512], file[600];
	struct timespec ts[2] = {{.tv_sec = time(NULL) - age_s}, {.tv_sec = time(NULL) - age_s}};
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(file, sizeof(file), "%s/big.log", path);
	if (mkdir_p(path, 0700, NULL) < 0)
		return -1;
	fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, size) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
}

/*
 * Bounded disk: metrics folders of runners no longer known (no row) are
 * processed at once as orphans (these hold no installed timestamp: nothing
 * to issue, they go), a foreign name's is never touched (the retention of
 * what waits for a delete is test_metrics's); saved logs past
 * logs_max_size lose their oldest folders then, and again after each save.
 */
static int case_disk_bounds(struct fx *f)
{
	struct manager_report rep;
	char metrics[128], logs[128], name[INSTANCE_NAME_MAX];
	const off_t mib = 1 << 20;

	snprintf(metrics, sizeof(metrics), "%s/state/metrics", f->dir);
	snprintf(logs, sizeof(logs), "%s/logs", f->dir);
	REQUIRE(put_sized_folder(metrics, "mt-00000000000a", 100, 2 * 3600) == 0); /* old */
	REQUIRE(put_sized_folder(metrics, "mt-00000000000b", 100, 600) == 0);      /* recent */
	REQUIRE(put_sized_folder(metrics, "mt-east-00000000000a", 100, 2 * 3600) == 0);
	/* 90 MiB of saved logs, all within log_retention (1h), over the 64 MiB cap */
	REQUIRE(put_sized_folder(logs, "mt-000000000001", 30 * mib, 50 * 60) == 0);
	REQUIRE(put_sized_folder(logs, "mt-000000000002", 30 * mib, 40 * 60) == 0);
	REQUIRE(put_sized_folder(logs, "mt-000000000003", 30 * mib, 30 * 60) == 0);
	REQUIRE(put_sized_folder(logs, "keep-me", 300 * mib, 50 * 60) == 0);

	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(!exists(metrics, "mt-00000000000a"));
	REQUIRE(!exists(metrics, "mt-00000000000b"));
	REQUIRE(exists(metrics, "mt-east-00000000000a"));
	REQUIRE(!exists(logs, "mt-000000000001")); /* the oldest: 60 MiB left */
	REQUIRE(exists(logs, "mt-000000000002") && exists(logs, "mt-000000000003"));
	REQUIRE(exists(logs, "keep-me"));

	/* a dead runner's 7 MiB of logs are saved: 67 MiB, the oldest goes again */
	REQUIRE(only_instance(f, name) == 0);
	char *big = calloc(1, 7 * mib);
	REQUIRE(big);
	memory_put_file(f->mem, name, "startup.log", big, 7 * mib);
	free(big);
	REQUIRE(memory_set_health(f->mem, name, HEALTH_UNHEALTHY) == 0);
	REQUIRE(row_backdate(f, name, 15) == 0);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	REQUIRE(events(&rep, "delete", "dead") == 1);
	manager_report_release(&rep);
	char saved[256];
	snprintf(saved, sizeof(saved), "%s/startup.log", name);
	REQUIRE(exists(logs, saved));
	REQUIRE(!exists(logs, "mt-000000000002"));
	REQUIRE(exists(logs, "mt-000000000003"));
	return 0;
}

/* The pid of a process that has ended (a child, reaped). */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return pid;
}

/* A file dir/name (dir made), changed age_s seconds ago. */
static int put_file_aged(const char *dir, const char *name, int64_t age_s)
{
	char path[600];
	struct timespec ts[2] = {{.tv_sec = time(NULL) - age_s}, {.tv_sec = time(NULL) - age_s}};

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (mkdir_p(dir, 0700, NULL) < 0 || file_write_atomic(path, "t", 1, 0600, NULL) < 0)
		return -1;
	return utimensat(AT_FDCWD, path, ts, 0);
}

/*
 * kill -9 between an atomic write and its rename leaves a temporary: the
 * first pass removes those of processes that are gone (and a runner
 * download untouched for an hour), in the state dir, the metrics and saved
 * logs folders and the runner package's; a live writer's stay.
 */
static int case_temporaries_swept_at_start(struct fx *f)
{
	struct manager_report rep;
	char state[128], metrics[160], logs[160], bin[160], name[128], live[128];
	pid_t dead = dead_pid();
	struct {
		const char *dir;
		const char *pre,
		        *post; /* the name: pre, the dead pid, post; pre alone without post */
		int64_t age_s;
		bool stays;
	} files[] = {
	        {state, ".drain.runnerd-tmp.", ".0000000a", 0, false},
	        {metrics, ".pre-job-metrics.json.runnerd-tmp.", ".0000000b", 0, false},
	        {metrics, "post-job-metrics.json.tmp.", "", 0, false}, /* the old naming */
	        {logs, ".Runner_1.log.runnerd-tmp.", ".0000000c", 0, false},
	        {bin, ".current-x64.runnerd-tmp.", ".0000000d", 0, false},
	        {bin, ".download-x64-AbC123", NULL, 2 * 3600, false},
	        {bin, ".download-x64-XyZ789", NULL, 60, true}, /* a download under way */
	        {bin, "current-x64", NULL, 2 * 3600, true},
	};

	REQUIRE(dead > 0);
	snprintf(state, sizeof(state), "%s/state", f->dir);
	snprintf(metrics, sizeof(metrics), "%s/state/metrics/mt-0123456789ab", f->dir);
	snprintf(logs, sizeof(logs), "%s/logs/mt-0123456789ab/_diag", f->dir);
	snprintf(bin, sizeof(bin), "%s/state/runner-bin", f->dir);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(name, sizeof(name), "%s%.0d%s", files[i].pre,
		         files[i].post ? (int)dead : 0, files[i].post ? files[i].post : "");
		REQUIRE(put_file_aged(files[i].dir, name, files[i].age_s) == 0);
	}
	snprintf(live, sizeof(live), ".post-job-metrics.json.runnerd-tmp.%d.0000000e",
	         (int)getpid());
	REQUIRE(put_file_aged(metrics, live, 0) == 0);

	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(name, sizeof(name), "%s%.0d%s", files[i].pre,
		         files[i].post ? (int)dead : 0, files[i].post ? files[i].post : "");
		if (exists(files[i].dir, name) != files[i].stays)
			fprintf(stderr, "  %s/%s: %s\n", files[i].dir, name,
			        files[i].stays ? "removed" : "left");
		REQUIRE(exists(files[i].dir, name) == files[i].stays);
	}
	REQUIRE(exists(metrics, live));
	return 0;
}

/*
 * A runner that died while booting (the provider's check: installed, not
 * running) is replaced once past the health grace, not after the bootstrap
 * timeout; within the grace it is left to start.
 */
static int case_dead_runner_replaced(struct fx *f)
{
	struct manager_report rep;
	char name[INSTANCE_NAME_MAX];

	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(only_instance(f, name) == 0);
	REQUIRE(memory_set_health(f->mem, name, HEALTH_UNHEALTHY) == 0);
	/* within the grace (10 s for a 30 s bootstrap timeout): kept */
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	REQUIRE(events(&rep, "delete", NULL) == 0);
	manager_report_release(&rep);
	REQUIRE(memory_count(f->mem) == 1);
	/* past it: deleted as dead (its logs saved) and replaced in the same pass */
	REQUIRE(row_backdate(f, name, 15) == 0);
	uint64_t probes = memory_calls(f->mem, MEMORY_OP_HEALTH);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	REQUIRE(memory_calls(f->mem, MEMORY_OP_HEALTH) == probes + 1);
	REQUIRE(events(&rep, "delete", "dead") == 1);
	REQUIRE(events(&rep, "create", NULL) == 1);
	manager_report_release(&rep);
	REQUIRE(memory_count(f->mem) == 1);
	REQUIRE(provider_get(f->mem, name, &(struct instance){0}, NULL) == -ENOENT);
	REQUIRE(sim_runners() == 1);
	/* a healthy booting runner is probed and kept */
	REQUIRE(only_instance(f, name) == 0);
	REQUIRE(row_backdate(f, name, 15) == 0);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	REQUIRE(events(&rep, "delete", NULL) == 0);
	manager_report_release(&rep);
	return 0;
}

/*
 * A provider whose health() only maps the cloud state (no health_probe
 * trait: OpenStack) is never asked about a booting instance: the listing
 * said it already, and a call per booting instance each pass is what made
 * a steady pass of 100 booting OpenStack servers cost 100 Nova requests.
 */
static int case_no_probe_without_the_trait(struct fx *f)
{
	struct provider_traits t = local_traits;
	struct manager_report rep;
	char name[INSTANCE_NAME_MAX];

	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(only_instance(f, name) == 0);
	REQUIRE(row_backdate(f, name, 15) == 0); /* past the 10 s health grace */
	t.health_probe = false;
	REQUIRE(memory_set_traits(f->mem, &t) == 0);
	REQUIRE(memory_set_health(f->mem, name, HEALTH_UNHEALTHY) == 0);
	uint64_t probes = memory_calls(f->mem, MEMORY_OP_HEALTH);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	REQUIRE(memory_calls(f->mem, MEMORY_OP_HEALTH) == probes);
	REQUIRE(events(&rep, "delete", NULL) == 0);
	manager_report_release(&rep);
	/* with the trait, the same pass probes it and replaces it as dead */
	REQUIRE(memory_set_traits(f->mem, &local_traits) == 0);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	REQUIRE(memory_calls(f->mem, MEMORY_OP_HEALTH) == probes + 1);
	REQUIRE(events(&rep, "delete", "dead") == 1);
	manager_report_release(&rep);
	return 0;
}

/*
 * A create that failed and whose cleanup failed too leaves its row DELETING:
 * the next pass deletes the leftover instance instead of adopting it as a
 * runner that would hold a slot until the bootstrap timeout.
 */
static int case_failed_cleanup_is_retried(struct fx *f)
{
	struct manager_report rep;
	struct store_instance_list l = {0};

	memory_fail_create_leaves(f->mem, CLOUD_ACTIVE);
	memory_fail(f->mem, MEMORY_OP_CREATE, -EIO, 1);
	memory_fail(f->mem, MEMORY_OP_DELETE, -EIO, 1);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(memory_count(f->mem) == 1);
	REQUIRE(store_instance_list(f->store, &l, NULL) == 0 && l.n == 1);
	REQUIRE(l.v[0].phase == PHASE_DELETING);
	char left[INSTANCE_NAME_MAX];
	str_copy(left, l.v[0].name, sizeof(left));
	store_instance_list_release(&l);
	REQUIRE(sim_runners() == 0); /* its JIT runner went at once */
	memory_fail_create_leaves(f->mem, CLOUD_DELETED);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	REQUIRE(events(&rep, "adopt", NULL) == 0);
	REQUIRE(events(&rep, "delete", "retry") == 1);
	manager_report_release(&rep);
	REQUIRE(provider_get(f->mem, left, &(struct instance){0}, NULL) == -ENOENT);
	REQUIRE(memory_count(f->mem) == 1 && rows(f) == 1 && sim_runners() == 1);
	return 0;
}

/* An instance found with no row is adopted with its own age, not "now". */
static int case_adopt_keeps_age(struct fx *f)
{
	struct manager_report rep;
	struct instance in = {0};
	struct store_instance row;
	time_t born = time(NULL) - 20;

	str_copy(in.name, "mt-0123456789ab", sizeof(in.name));
	str_copy(in.flavor, "small", sizeof(in.flavor));
	str_copy(in.provider_id, "x", sizeof(in.provider_id));
	in.state = CLOUD_ACTIVE;
	in.created_at = born;
	REQUIRE(memory_add(f->mem, &in) == 0);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	REQUIRE(events(&rep, "adopt", NULL) == 1);
	manager_report_release(&rep);
	REQUIRE(store_instance_get(f->store, in.name, &row, NULL) == 0);
	REQUIRE(row.created_at == (int64_t)born);
	REQUIRE(strcmp(row.provider, "local") == 0);
	/* past the bootstrap timeout with no runner: an orphan, deleted */
	REQUIRE(row_backdate(f, in.name, 20) == 0);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	REQUIRE(events(&rep, "delete", "orphan") == 1);
	manager_report_release(&rep);
	REQUIRE(provider_get(f->mem, in.name, &(struct instance){0}, NULL) == -ENOENT);
	return 0;
}

/*
 * Two providers: when a flavor leaves the config, its instances are still
 * deleted on the provider that holds them -- never on another one, where a
 * delete "succeeds" and the instance would leak.
 */
static int case_delete_goes_to_the_right_provider(struct fx *f)
{
	char yaml[2048];
	struct config_errors errs = {0};
	struct config *c2 = NULL, *c3 = NULL;
	struct provider *lxd = NULL;
	struct manager *m2 = NULL;
	struct manager_report rep;
	struct err e = {0};
	struct provider *provs[2];
	int r = -1;

	snprintf(yaml, sizeof(yaml),
	         "github: {api_url: \"%s\", path: octo/hello, token_file: \"%s\"}\n"
	         "manager: {name: mt, state_dir: \"%s/state\", bootstrap_timeout: 30s}\n"
	         "flavors:\n"
	         "  - {name: small, provider: local, labels: [small], min_idle: 1, max: 1}\n"
	         "  - {name: big, provider: lxd, image: img, labels: [big], min_idle: 1, max: 1}\n"
	         "providers: {local: {work_dir: \"%s/work\"}}\n",
	         url, token_file, f->dir, f->dir);
	if (config_load_string("two.yaml", yaml, strlen(yaml), &c2, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "  %s\n", errs.v[i]);
		config_errors_release(&errs);
		return -1;
	}
	/* the same without "big" */
	char *cut = strstr(yaml, "  - {name: big");
	memmove(cut, strchr(cut, '\n') + 1, strlen(strchr(cut, '\n') + 1) + 1);
	REQUIRE(config_load_string("one.yaml", yaml, strlen(yaml), &c3, &errs) == 0);
	REQUIRE(memory_new("lxd", "mt", &lxd, &e) == 0);
	provs[0] = f->mem;
	provs[1] = lxd;
	if (manager_new(c2, f->store, f->gh, provs, 2, &m2, &e) < 0)
		goto out;
	if (manager_reconcile(m2, PLAN_NORMAL, &rep, &e) < 0)
		goto out;
	manager_report_release(&rep);
	if (memory_count(f->mem) != 1 || memory_count(lxd) != 1)
		goto out;
	if (manager_reload(m2, c3, &e) < 0)
		goto out;
	if (manager_reconcile(m2, PLAN_NORMAL, &rep, &e) < 0)
		goto out;
	manager_report_release(&rep);
	/* big's instance is gone from lxd; local's is untouched and never asked */
	r = memory_count(lxd) == 0 && memory_count(f->mem) == 1 &&
	                    memory_calls(f->mem, MEMORY_OP_DELETE) == 0 && rows(f) == 1
	            ? 0
	            : -1;
out:
	if (r < 0)
		fprintf(stderr, "  two providers: %s (local %zu, lxd %zu)\n", e.msg,
		        memory_count(f->mem), memory_count(lxd));
	manager_free(m2);
	provider_free(lxd);
	config_free(c2);
	config_free(c3);
	config_errors_release(&errs);
	return r;
}

struct late_runner {
	const char *name;
};

/* Registers a busy runner by that name a moment later (GitHub is held meanwhile). */
static void *register_late(void *arg)
{
	const struct late_runner *lr = arg;
	char body[256];

	usleep(300 * 1000);
	snprintf(body, sizeof(body),
	         "{\"scope\":\"repos/octo/hello\",\"name\":\"%s\",\"labels\":[\"small\"],"
	         "\"status\":\"online\",\"busy\":true}",
	         lr->name);
	json_decref(ctl("POST", "/_ghsim/runners", body));
	return NULL;
}

/*
 * Without JIT a booting runner registers itself. A scale-down victim that
 * was not registered when GitHub was listed may have registered and taken a
 * job since: runnerd asks GitHub for it by name before deleting, and keeps
 * it when it is busy.
 */
static int case_nojit_victim_that_took_a_job_is_kept(struct fx *f)
{
	struct manager_report rep;
	struct config_errors errs = {0};
	struct config *c2 = NULL;
	struct err e = {0};
	struct late_runner lr;
	char name[INSTANCE_NAME_MAX], yaml[4096];
	pthread_t th;

	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(only_instance(f, name) == 0);
	REQUIRE(sim_runners() == 0); /* nothing runs in a memory instance: not registered */
	/* min_idle 1 -> 0: the booting instance is a scale-down victim */
	snprintf(yaml, sizeof(yaml),
	         "github: {api_url: \"%s\", path: octo/hello, token_file: \"%s\"}\n"
	         "manager: {name: mt, state_dir: \"%s/state\", log_dir: \"%s/logs\", "
	         "bootstrap_timeout: 30s}\n"
	         "flavors:\n  - {name: small, provider: local, labels: [small], min_idle: 0, max: "
	         "1}\n"
	         "providers: {local: {work_dir: \"%s/work\"}}\nrunner: {jit: false}\n",
	         url, token_file, f->dir, f->dir, f->dir);
	REQUIRE(config_load_string("nojit2.yaml", yaml, strlen(yaml), &c2, &errs) == 0);
	if (manager_reload(f->m, c2, &e) < 0) {
		config_free(c2);
		fprintf(stderr, "  reload: %s\n", e.msg);
		return -1;
	}
	config_free(f->cfg);
	f->cfg = c2;
	/* the lookup by name is held 1.5 s; the runner registers, busy, meanwhile */
	json_decref(ctl("POST", "/_ghsim/faults",
	                "{\"match\":\"name=mt-\",\"method\":\"GET\",\"delay\":1.5,\"count\":1}"));
	lr.name = name;
	REQUIRE(pthread_create(&th, NULL, register_late, &lr) == 0);
	int r = pass(f, PLAN_NORMAL, &rep);
	pthread_join(th, NULL);
	REQUIRE(r == 0);
	bool kept = false;
	for (size_t i = 0; i < rep.n_events; i++)
		kept = kept || (strcmp(rep.events[i].name, name) == 0 && rep.events[i].ok &&
		                strstr(rep.events[i].outcome, "kept"));
	manager_report_release(&rep);
	REQUIRE(kept);
	REQUIRE(provider_get(f->mem, name, &(struct instance){0}, NULL) == 0);
	struct store_instance row;
	REQUIRE(store_instance_get(f->store, name, &row, NULL) == 0 && row.phase == PHASE_CREATED);
	REQUIRE(sim_runners() == 1);
	/* gone from GitHub again (never seen by a pass): the victim goes now */
	sim_delete_first_runner();
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(provider_get(f->mem, name, &(struct instance){0}, NULL) == -ENOENT);
	REQUIRE(rows(f) == 0);
	return 0;
}

/* When the memory provider was first asked to pull a file and to create, after a start. */
struct call_watch {
	struct provider *mem;
	uint64_t pulls0, creates0;
	atomic_bool done;
	int64_t t_pull, t_create; /* clock_mono_ms(), 0 until seen */
};

static void *watch_calls(void *arg)
{
	struct call_watch *w = arg;

	while (!atomic_load(&w->done)) {
		int64_t now = clock_mono_ms();
		if (!w->t_pull && memory_calls(w->mem, MEMORY_OP_PULL_FILE) > w->pulls0)
			w->t_pull = now;
		if (!w->t_create && memory_calls(w->mem, MEMORY_OP_CREATE) > w->creates0)
			w->t_create = now;
		usleep(1000);
	}
	return NULL;
}

/*
 * Creates never wait behind slow deletes (DESIGN.md section 2): with one
 * worker per lane (create_concurrency 1), the create decided in the same
 * pass as the delete of a finished runner whose metrics pull is slow
 * starts at once, not after the pull.
 */
static int case_create_not_behind_slow_metrics_pull(struct fx *f)
{
	struct manager_report rep;
	struct call_watch w = {.mem = f->mem};
	char name[INSTANCE_NAME_MAX];
	pthread_t th;

	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(only_instance(f, name) == 0);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0); /* seen on GitHub */
	manager_report_release(&rep);
	/* its job done, the runner leaves GitHub; its instance answers slowly */
	sim_delete_first_runner();
	REQUIRE(memory_set_latency(f->mem, MEMORY_OP_PULL_FILE, 700 * 1000) == 0);
	w.pulls0 = memory_calls(f->mem, MEMORY_OP_PULL_FILE);
	w.creates0 = memory_calls(f->mem, MEMORY_OP_CREATE);
	atomic_init(&w.done, false);
	REQUIRE(pthread_create(&th, NULL, watch_calls, &w) == 0);
	int64_t t0 = clock_mono_ms();
	int r = pass(f, PLAN_NORMAL, &rep);
	int64_t took = clock_mono_ms() - t0;
	atomic_store(&w.done, true);
	pthread_join(th, NULL);
	memory_set_latency(f->mem, MEMORY_OP_PULL_FILE, 0);
	REQUIRE(r == 0);
	size_t finished = events(&rep, "delete", "finished"),
	       created = events(&rep, "create", NULL);
	manager_report_release(&rep);
	REQUIRE(finished == 1 && created == 1);
	REQUIRE(provider_get(f->mem, name, &(struct instance){0}, NULL) == -ENOENT);
	/* the pull was slow indeed (4 files), and the create did not wait for it */
	REQUIRE(took >= 2000);
	REQUIRE(w.t_pull > 0 && w.t_create > 0);
	if (getenv("MT_VERBOSE") || w.t_create - w.t_pull >= 100)
		fprintf(stderr, "  the create started %" PRId64 " ms after the metrics pull\n",
		        w.t_create - w.t_pull);
	REQUIRE(w.t_create - w.t_pull < 100);
	return 0;
}

/*
 * An HTTP server that answers every request with a 100 MB file it sends at
 * 2.5 KiB/s: never stalled (over the 1 KiB/s a download must keep up), never
 * done. Its port in port; stop it with trickle_stop.
 */
struct trickle {
	int fd;
	int port;
	pthread_t th;
	atomic_bool stop;
	atomic_int accepted;
};

static void *trickle_main(void *arg)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
	                           "Content-Length: 100000000\r\n\r\n";
	struct trickle *t = arg;

	while (!atomic_load(&t->stop)) {
		struct pollfd p = {.fd = t->fd, .events = POLLIN};
		char req[4096], chunk[512];
		int c;

		if (poll(&p, 1, 100) <= 0)
			continue;
		c = accept4(t->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		atomic_fetch_add(&t->accepted, 1);
		(void)!read(c, req, sizeof(req));
		memset(chunk, 'x', sizeof(chunk));
		if (send(c, head, strlen(head), MSG_NOSIGNAL) > 0)
			while (!atomic_load(&t->stop) &&
			       send(c, chunk, sizeof(chunk), MSG_NOSIGNAL) ==
			               (ssize_t)sizeof(chunk))
				usleep(200 * 1000);
		close(c);
	}
	return NULL;
}

static int trickle_start(struct trickle *t)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);

	memset(t, 0, sizeof(*t));
	t->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (t->fd < 0 || bind(t->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(t->fd, 8) < 0 || getsockname(t->fd, (struct sockaddr *)&a, &len) < 0)
		return -1;
	t->port = ntohs(a.sin_port);
	atomic_init(&t->stop, false);
	atomic_init(&t->accepted, 0);
	return pthread_create(&t->th, NULL, trickle_main, t) == 0 ? 0 : -1;
}

static void trickle_stop(struct trickle *t)
{
	atomic_store(&t->stop, true);
	pthread_join(t->th, NULL);
	close(t->fd);
}

struct timed_pass {
	struct fx *f;
	struct manager_report rep;
	int r;
	atomic_bool done;
};

static void *timed_pass_main(void *arg)
{
	struct timed_pass *tp = arg;
	tp->r = pass(tp->f, PLAN_NORMAL, &tp->rep);
	atomic_store(&tp->done, true);
	return NULL;
}

/*
 * One pass, given at most limit_ms: past that the manager is cancelled (so
 * a pass that would have gone on for half an hour ends now) and -1 is
 * returned. *took_ms is how long it ran.
 */
static int pass_within(struct fx *f, int64_t limit_ms, struct manager_report *rep, int64_t *took_ms)
{
	struct timed_pass tp = {.f = f};
	int64_t t0 = clock_mono_ms();
	pthread_t th;

	atomic_init(&tp.done, false);
	if (pthread_create(&th, NULL, timed_pass_main, &tp) != 0)
		return -1;
	while (!atomic_load(&tp.done) && clock_mono_ms() - t0 < limit_ms)
		usleep(10 * 1000);
	*took_ms = clock_mono_ms() - t0;
	if (!atomic_load(&tp.done))
		manager_cancel(f->m);
	pthread_join(th, NULL);
	*rep = tp.rep;
	return *took_ms < limit_ms ? tp.r : -1;
}

/*
 * docs/deadlines.md, row "runnerd's runner package download": a
 * download that trickles on (never stalled, never done: up to 30 minutes)
 * goes on beside the passes. The pass that starts it waits for it at most
 * 2 x request_timeout (1 s here), creates for the local provider are
 * refused meanwhile ("no verified runner package yet"), and the next pass
 * does not wait at all.
 */
static int case_slow_runner_package_does_not_hold_the_pass(struct fx *f)
{
	struct manager_report rep;
	struct trickle t;
	char fault[1024];
	int64_t took;
	bool refused = false;

	REQUIRE(trickle_start(&t) == 0);
	snprintf(fault, sizeof(fault),
	         "{\"match\":\"/actions/runners/downloads\",\"method\":\"GET\",\"status\":200,"
	         "\"count\":-1,\"body\":[{\"os\":\"linux\",\"architecture\":\"x64\","
	         "\"download_url\":\"http://127.0.0.1:%d/actions-runner-linux-x64-2.321.0.tar.gz\","
	         "\"filename\":\"actions-runner-linux-x64-2.321.0.tar.gz\",\"sha256_checksum\":"
	         "\"%064d\"}]}",
	         t.port, 0);
	json_decref(ctl("POST", "/_ghsim/faults", fault));
	int r = pass_within(f, 8000, &rep, &took);
	for (size_t i = 0; i < rep.n_events; i++)
		refused = refused ||
		          (!rep.events[i].ok && strcmp(rep.events[i].action, "create") == 0 &&
		           strstr(rep.events[i].outcome, "no verified runner package"));
	manager_report_release(&rep);
	if (r < 0)
		trickle_stop(&t);
	REQUIREF(r == 0, "the pass took %" PRId64 " ms", took);
	REQUIREF(took < 4000, "the pass waited %" PRId64 " ms for the download", took);
	REQUIRE(refused);
	REQUIRE(memory_count(f->mem) == 0);
	REQUIRE(atomic_load(&t.accepted) == 1);
	/* the download goes on; the next pass does not wait for it */
	r = pass_within(f, 8000, &rep, &took);
	manager_report_release(&rep);
	trickle_stop(&t);
	REQUIREF(r == 0 && took < 1000, "the second pass took %" PRId64 " ms", took);
	return 0;
}

/* Whether the verified runner package is in f's state dir (runner-bin/current-x64). */
static bool package_kept(struct fx *f)
{
	char path[PATH_MAX];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/state/runner-bin/current-x64", f->dir);
	return stat(path, &sb) == 0;
}

/*
 * A fresh manager with nothing to create (min_idle 0, the reactive case)
 * fetches the verified runner package in its first pass that hears
 * GitHub, so that the first job's create does not wait for it; a pass
 * whose runner list fails fetches nothing, and the next one does.
 */
static int case_first_pass_makes_the_package_ready(struct fx *f)
{
	struct manager_report rep;
	int r;

	json_decref(ctl("POST", "/_ghsim/faults",
	                "{\"match\":\"/actions/runners\",\"method\":\"GET\",\"status\":500,"
	                "\"count\":-1}"));
	r = pass(f, PLAN_NORMAL, &rep);
	manager_report_release(&rep);
	json_decref(ctl("DELETE", "/_ghsim/faults", NULL));
	REQUIRE(r == 0);
	REQUIRE(!package_kept(f));
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	r = (int)rep.plan.n_actions;
	manager_report_release(&rep);
	REQUIREF(r == 0, "%d actions", r);
	REQUIRE(memory_count(f->mem) == 0);
	REQUIRE(package_kept(f));
	return 0;
}

/* ---- docs/deadlines.md: each counterpart held silent, each state leaves ---- */

/* Whether the report has an event of action (reason NULL: any) that ok or failed as given. */
static bool has_event(const struct manager_report *rep, const char *action, const char *reason,
                      bool ok)
{
	for (size_t i = 0; i < rep->n_events; i++)
		if (rep->events[i].ok == ok && strcmp(rep->events[i].action, action) == 0 &&
		    (!reason || strcmp(rep->events[i].reason, reason) == 0))
			return true;
	return false;
}

/*
 * The memory provider's op answers nothing before its deadline (ms): a
 * read comes back too late (the front refuses it as stale), a create or a
 * delete gives up at it (-ETIMEDOUT), as a backend whose counterpart is
 * silent does. heard() ends it.
 */
static void silence(struct fx *f, enum memory_op op, enum provider_op pop, int64_t ms, bool write)
{
	memory_set_deadline(f->mem, pop, ms);
	memory_set_latency(f->mem, op, 60 * 1000 * 1000);
	if (write)
		memory_fail(f->mem, op, -ETIMEDOUT, -1);
}

static void heard(struct fx *f, enum memory_op op, enum provider_op pop)
{
	memory_set_latency(f->mem, op, 0);
	memory_fail(f->mem, op, 0, 0);
	memory_set_deadline(f->mem, pop, 60 * 1000);
}

static int row_phase(struct fx *f, const char *name)
{
	struct store_instance row;
	return store_instance_get(f->store, name, &row, NULL) == 0 ? (int)row.phase : -1;
}

/* The pool's one instance (min_idle 1), seen on GitHub by a second pass. */
static int one_instance(struct fx *f, char name[INSTANCE_NAME_MAX])
{
	struct manager_report rep;

	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(only_instance(f, name) == 0);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	return 0;
}

/* Whether the provider still has name. */
static bool present(struct fx *f, const char *name)
{
	return provider_get(f->mem, name, &(struct instance){0}, NULL) == 0;
}

/* The pool's one instance, stopped: the next pass with both lists complete deletes it. */
static int stopped_instance(struct fx *f, char name[INSTANCE_NAME_MAX])
{
	REQUIRE(one_instance(f, name) == 0);
	REQUIRE(memory_set_state(f->mem, name, CLOUD_STOPPED) == 0);
	return 0;
}

/* ... and that pass: the stopped instance and its row go. */
static int stopped_instance_goes(struct fx *f, const char *name)
{
	struct manager_report rep;

	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	bool deleted = has_event(&rep, "delete", "stopped", true);
	manager_report_release(&rep);
	REQUIRE(deleted);
	REQUIRE(!present(f, name) && row_phase(f, name) == -1);
	return 0;
}

/*
 * One pass over the stopped instance name while a list is held silent (the
 * caller did it; unhush undoes it after the pass): it ends within max_ms,
 * deletes nothing and says why in the report's GitHub error (github) or
 * provider error, which holds want; the next pass, heard, deletes it.
 */
static int silent_list_pass(struct fx *f, const char *name, void (*unhush)(struct fx *),
                            int64_t max_ms, bool github, const char *want)
{
	struct manager_report rep;
	int64_t took;
	int r = pass_within(f, max_ms + 4000, &rep, &took);
	const char *why = github ? rep.github_error : rep.provider_error;
	bool blocked = rep.deletions_blocked && strstr(why, want);

	manager_report_release(&rep);
	unhush(f);
	REQUIREF(r == 0 && took < max_ms, "the pass took %" PRId64 " ms", took);
	REQUIRE(blocked && present(f, name));
	return stopped_instance_goes(f, name);
}

static void github_heard(struct fx *f)
{
	json_decref(ctl("DELETE", "/_ghsim/faults", NULL));
}

static void list_heard(struct fx *f)
{
	heard(f, MEMORY_OP_LIST, PROVIDER_OP_LIST);
}

/*
 * Rows "GitHub API request" and "GitHub state unknown": GitHub answers
 * nothing (every runner list held 5 s, request_timeout 1 s). The pass
 * ends within 2 x request_timeout per page with GitHub's error, deletes
 * nothing (a stopped instance stays), and the next pass after GitHub
 * answers again deletes it.
 */
static int case_github_silent(struct fx *f)
{
	char name[INSTANCE_NAME_MAX];

	REQUIRE(stopped_instance(f, name) == 0);
	json_decref(ctl("POST", "/_ghsim/faults",
	                "{\"match\":\"/actions/runners\",\"method\":\"GET\",\"delay\":5,"
	                "\"count\":-1}"));
	return silent_list_pass(f, name, github_heard, 3500, true, "timed out");
}

/*
 * Rows "Provider call" (list) and "provider list failing": the
 * provider's list answers only after its deadline (300 ms): the answer is
 * refused as stale, the pass ends at once with the provider's error and
 * deletes nothing; once the provider answers in time, the stopped
 * instance goes.
 */
static int case_provider_list_silent(struct fx *f)
{
	char name[INSTANCE_NAME_MAX];

	REQUIRE(stopped_instance(f, name) == 0);
	silence(f, MEMORY_OP_LIST, PROVIDER_OP_LIST, 300, false);
	return silent_list_pass(f, name, list_heard, 1500, false, "deadline");
}

/*
 * Rows "Provider call" (delete) and "row DELETING": a delete that gets no
 * answer gives up at its deadline (300 ms); the row stays DELETING and
 * every pass tries again (each a failed event, logged), until the
 * provider answers: then the row goes.
 */
static int case_provider_delete_silent(struct fx *f)
{
	struct manager_report rep;
	char name[INSTANCE_NAME_MAX];
	int64_t took;

	REQUIRE(stopped_instance(f, name) == 0);
	silence(f, MEMORY_OP_DELETE, PROVIDER_OP_DELETE, 300, true);
	for (int i = 0; i < 2; i++) {
		int r = pass_within(f, 5000, &rep, &took);
		bool failed = has_event(&rep, "delete", "stopped", false);
		manager_report_release(&rep);
		REQUIREF(r == 0 && took < 1500, "pass %d took %" PRId64 " ms", i, took);
		REQUIRE(failed);
		REQUIRE(row_phase(f, name) == PHASE_DELETING);
	}
	heard(f, MEMORY_OP_DELETE, PROVIDER_OP_DELETE);
	return stopped_instance_goes(f, name);
}

/*
 * Rows "Provider call" (create) and "row CREATING": a create that gets no
 * answer gives up at its deadline (300 ms); its row and its JIT runner go
 * at once (nothing is left CREATING), and the next pass creates anew.
 */
static int case_provider_create_silent(struct fx *f)
{
	struct manager_report rep;
	int64_t took;

	silence(f, MEMORY_OP_CREATE, PROVIDER_OP_CREATE, 300, true);
	int r = pass_within(f, 5000, &rep, &took);
	bool failed = has_event(&rep, "create", NULL, false);
	manager_report_release(&rep);
	heard(f, MEMORY_OP_CREATE, PROVIDER_OP_CREATE);
	REQUIREF(r == 0 && took < 1500, "the pass took %" PRId64 " ms", took);
	REQUIRE(failed);
	REQUIRE(rows(f) == 0 && memory_count(f->mem) == 0 && sim_runners() == 0);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(rows(f) == 1 && memory_count(f->mem) == 1);
	return 0;
}

/*
 * Row "row CREATING after a crash": a row left CREATING (runnerd killed
 * between writing the name and the create) leaves it in the next pass:
 * CREATED when its instance is listed, deleted as stale when it is not.
 */
static int case_creating_row_after_crash(struct fx *f)
{
	struct manager_report rep;
	struct store_instance row = {0};
	struct instance in = {0};
	const char *names[] = {"mt-00000000c0de", "mt-00000000dead"};

	for (size_t i = 0; i < 2; i++) {
		str_copy(row.name, names[i], sizeof(row.name));
		str_copy(row.flavor, "small", sizeof(row.flavor));
		str_copy(row.provider, "local", sizeof(row.provider));
		row.phase = PHASE_CREATING;
		row.created_at = time(NULL);
		row.cloud_state = CLOUD_CREATED;
		REQUIRE(store_instance_put(f->store, &row, NULL) == 0);
	}
	str_copy(in.name, names[0], sizeof(in.name));
	str_copy(in.flavor, "small", sizeof(in.flavor));
	str_copy(in.provider_id, "x", sizeof(in.provider_id));
	in.state = CLOUD_ACTIVE;
	in.created_at = time(NULL);
	REQUIRE(memory_add(f->mem, &in) == 0);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	bool stale = has_event(&rep, "delete", "stale", true);
	manager_report_release(&rep);
	REQUIRE(stale);
	REQUIRE(row_phase(f, names[0]) == PHASE_CREATED);
	REQUIRE(row_phase(f, names[1]) == -1);
	return 0;
}

/*
 * Rows "Provider call" (health) and "booting: absent from GitHub, never
 * seen": a booting instance's probe that answers too
 * late is refused as stale and counts as unknown: the instance is kept
 * (not taken for dead) and the pass is not held; once the probe answers,
 * the dead runner is replaced.
 */
static int case_health_probe_silent(struct fx *f)
{
	struct manager_report rep;
	char name[INSTANCE_NAME_MAX];
	int64_t took;

	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(only_instance(f, name) == 0);
	REQUIRE(memory_set_health(f->mem, name, HEALTH_UNHEALTHY) == 0);
	REQUIRE(row_backdate(f, name, 15) == 0); /* past the 10 s health grace */
	silence(f, MEMORY_OP_HEALTH, PROVIDER_OP_HEALTH, 300, false);
	int r = pass_within(f, 5000, &rep, &took);
	bool deleted = has_event(&rep, "delete", NULL, true);
	manager_report_release(&rep);
	heard(f, MEMORY_OP_HEALTH, PROVIDER_OP_HEALTH);
	REQUIREF(r == 0 && took < 1500, "the pass took %" PRId64 " ms", took);
	REQUIRE(!deleted && memory_count(f->mem) == 1);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	deleted = has_event(&rep, "delete", "dead", true);
	manager_report_release(&rep);
	REQUIRE(deleted);
	return 0;
}

/*
 * Row "Metrics and logs pulls": a finished runner's instance whose files
 * answer too late: each pull ends at its deadline (300 ms), the metrics
 * are given up and the delete goes on in the same pass.
 */
static int case_metrics_pull_silent(struct fx *f)
{
	struct manager_report rep;
	char name[INSTANCE_NAME_MAX];
	int64_t took;

	REQUIRE(one_instance(f, name) == 0);
	sim_delete_first_runner(); /* its job done, the runner left GitHub */
	silence(f, MEMORY_OP_PULL_FILE, PROVIDER_OP_PULL_FILE, 300, false);
	int r = pass_within(f, 8000, &rep, &took);
	bool deleted = has_event(&rep, "delete", "finished", true);
	manager_report_release(&rep);
	heard(f, MEMORY_OP_PULL_FILE, PROVIDER_OP_PULL_FILE);
	REQUIREF(r == 0 && took < 3000, "the pass took %" PRId64 " ms", took);
	REQUIRE(deleted);
	REQUIRE(!present(f, name) && row_phase(f, name) == -1);
	return 0;
}

/*
 * Row "row on a provider that is not open": runnerd cannot see the
 * instance, so nothing is deleted anywhere, every pass says so (the
 * provider error names the provider and the row) and tries again; once
 * the provider is open, the row leaves (here: its instance is gone).
 */
static int case_row_on_provider_not_open(struct fx *f)
{
	struct manager_report rep;
	struct store_instance row = {0};
	struct provider *gone = NULL, *provs[2];
	struct manager *m2 = NULL;
	struct err e = {0};
	int r = -1;

	str_copy(row.name, "mt-0000000000aa", sizeof(row.name));
	str_copy(row.flavor, "old", sizeof(row.flavor));
	str_copy(row.provider, "gone", sizeof(row.provider));
	row.phase = PHASE_CREATED;
	row.created_at = time(NULL) - 3600;
	row.cloud_state = CLOUD_ACTIVE;
	REQUIRE(store_instance_put(f->store, &row, NULL) == 0);
	for (int i = 0; i < 2; i++) {
		REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
		bool said = rep.deletions_blocked && strstr(rep.provider_error, "gone") &&
		            strstr(rep.provider_error, "not open");
		manager_report_release(&rep);
		REQUIRE(said);
		REQUIRE(row_phase(f, row.name) == PHASE_CREATED);
	}
	if (memory_new("gone", "mt", &gone, &e) < 0)
		goto out;
	provs[0] = f->mem;
	provs[1] = gone;
	if (manager_new(f->cfg, f->store, f->gh, provs, 2, &m2, &e) < 0 ||
	    manager_reconcile(m2, PLAN_NORMAL, &rep, &e) < 0)
		goto out;
	r = !rep.deletions_blocked && has_event(&rep, "delete", "vanished", true) &&
	                    row_phase(f, row.name) == -1
	            ? 0
	            : -1;
	manager_report_release(&rep);
out:
	if (r < 0)
		fprintf(stderr, "  provider opened: %s\n", e.msg);
	manager_free(m2);
	provider_free(gone);
	return r;
}

/*
 * Row "busy past job_timeout": a runner busy for longer than
 * job_timeout (5 s here) is reported unhealthy and kept (jobs may run
 * long; GitHub's own job timeout ends them), every pass; `flush --busy`
 * removes it.
 */
static int case_stuck_busy(struct fx *f)
{
	struct manager_report rep;
	struct store_instance row;
	char name[INSTANCE_NAME_MAX], p[128];
	json_t *a;

	REQUIRE(one_instance(f, name) == 0);
	/* the runner comes online (simulated) and takes a job that runs on */
	a = ctl("GET", "/_ghsim/runners", NULL);
	snprintf(p, sizeof(p), "/_ghsim/runners/%" JSON_INTEGER_FORMAT "/online",
	         json_integer_value(json_object_get(json_array_get(a, 0), "id")));
	json_decref(a);
	json_decref(ctl("POST", p, "{}"));
	json_decref(ctl("POST", "/_ghsim/jobs",
	                "{\"repo\":\"octo/hello\",\"labels\":[\"small\"],\"duration\":600}"));
	for (int i = 0; i < 50; i++) {
		a = ctl("GET", "/_ghsim/runners", NULL);
		bool busy = json_is_true(json_object_get(json_array_get(a, 0), "busy"));
		json_decref(a);
		if (busy)
			break;
		usleep(100 * 1000);
	}
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	manager_report_release(&rep);
	REQUIRE(store_instance_get(f->store, name, &row, NULL) == 0 && row.busy_since > 0);
	row.busy_since -= 10; /* busy for 10 s: past the 5 s job_timeout */
	REQUIRE(store_instance_put(f->store, &row, NULL) == 0);
	for (int i = 0; i < 2; i++) {
		bool unhealthy = false;
		REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
		for (size_t k = 0; k < rep.plan.n_views; k++)
			unhealthy = unhealthy || (strcmp(rep.plan.views[k].name, name) == 0 &&
			                          rep.plan.views[k].github_state == GH_BUSY &&
			                          rep.plan.views[k].health == HEALTH_UNHEALTHY);
		bool deleted = has_event(&rep, "delete", NULL, true);
		manager_report_release(&rep);
		REQUIRE(unhealthy && !deleted);
		REQUIRE(memory_count(f->mem) == 1);
	}
	REQUIRE(pass(f, PLAN_FLUSH_BUSY, &rep) == 0);
	bool flushed = has_event(&rep, "delete", NULL, true);
	manager_report_release(&rep);
	REQUIRE(flushed);
	REQUIRE(memory_count(f->mem) == 0 && rows(f) == 0);
	return 0;
}

/* The report as JSON is whole or an error: a buffer too small for it is left as it was. */
static int case_report_json_whole_or_error(struct fx *f)
{
	struct manager_report rep;
	struct buf whole = BUF_INIT(1 << 20), exact, small, tiny = BUF_INIT(64);
	json_t *j;
	int r = -1;

	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0); /* two creates */
	if (rep.n_events != 2 || manager_report_json(&rep, false, &whole) != 0)
		goto out;
	j = json_loads(buf_str(&whole), 0, NULL);
	if (!j || json_array_size(json_object_get(j, "actions")) != 2) {
		json_decref(j);
		goto out;
	}
	json_decref(j);
	/* exactly its size fits; a byte less is an error and writes nothing */
	buf_init(&exact, whole.len);
	buf_init(&small, whole.len - 1);
	buf_puts(&tiny, "before");
	r = manager_report_json(&rep, false, &exact) == 0 && exact.len == whole.len &&
	                    manager_report_json(&rep, false, &small) == -E2BIG && small.len == 0 &&
	                    manager_report_json(&rep, false, &tiny) == -E2BIG &&
	                    strcmp(buf_str(&tiny), "before") == 0
	            ? 0
	            : -1;
	buf_release(&exact);
	buf_release(&small);
out:
	buf_release(&whole);
	buf_release(&tiny);
	manager_report_release(&rep);
	return r;
}

/*
 * status --json: what runnerd keeps on disk and its bounds, and each
 * provider's name, type, traits, note and the front's counters.
 */
static int case_report_disk_and_providers(struct fx *f)
{
	struct manager_report rep;
	struct buf out = BUF_INIT(1 << 20);
	struct provider_traits t = local_traits;
	char metrics[160];
	json_t *j = NULL, *d, *p, *st;
	int r = -1;

	snprintf(t.note, sizeof(t.note), "a note on isolation");
	REQUIRE(memory_set_traits(f->mem, &t) == 0);
	snprintf(metrics, sizeof(metrics), "%s/state/metrics", f->dir);
	REQUIRE(put_sized_folder(metrics, "mt-00000000000c", 1000, 60) == 0);
	/* a live writer's temporary (1 byte) keeps it from the orphans' processing */
	char live[128], dir[200];
	snprintf(dir, sizeof(dir), "%s/mt-00000000000c", metrics);
	snprintf(live, sizeof(live), ".pre-job-metrics.json.runnerd-tmp.%d.0000000f",
	         (int)getpid());
	REQUIRE(put_file_aged(dir, live, 0) == 0);
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	if (manager_report_json(&rep, false, &out) != 0)
		goto out;
	j = json_loads(buf_str(&out), 0, NULL);
	d = json_object_get(j, "disk");
	p = json_array_get(json_object_get(j, "providers"), 0);
	st = json_object_get(json_object_get(p, "stats"), "create");
	if (!json_is_true(json_object_get(d, "measured")) ||
	    json_integer_value(json_object_get(json_object_get(d, "metrics"), "dirs")) != 1 ||
	    json_integer_value(json_object_get(json_object_get(d, "metrics"), "bytes")) != 1001 ||
	    json_integer_value(json_object_get(json_object_get(d, "metrics"), "retention_s")) !=
	            7 * 86400 ||
	    json_integer_value(json_object_get(json_object_get(d, "logs"), "dirs")) != 0 ||
	    json_integer_value(json_object_get(json_object_get(d, "logs"), "max_bytes")) !=
	            1 << 30 ||
	    json_integer_value(json_object_get(json_object_get(d, "logs"), "retention_s")) != 3600)
		goto out;
	if (json_array_size(json_object_get(j, "providers")) != 1 ||
	    strcmp(json_string_value(json_object_get(p, "name")), "local") != 0 ||
	    strcmp(json_string_value(json_object_get(p, "type")), "memory") != 0 ||
	    strcmp(json_string_value(json_object_get(p, "note")), "a note on isolation") != 0 ||
	    !json_is_true(json_object_get(json_object_get(p, "traits"), "runner_from_host")) ||
	    !json_is_false(json_object_get(json_object_get(p, "traits"), "list_files")) ||
	    json_integer_value(json_object_get(st, "calls")) != 2 ||
	    json_integer_value(json_object_get(st, "failures")) != 0 ||
	    json_object_size(json_object_get(p, "stats")) != PROVIDER_OP_COUNT)
		goto out;
	r = 0;
out:
	if (r < 0)
		fprintf(stderr, "  %s\n", buf_str(&out));
	json_decref(j);
	buf_release(&out);
	manager_report_release(&rep);
	return r;
}

/* The jobs the queue says wait, for the manager's waiting_jobs hook. */
static int64_t fx_waiting;

static int64_t waiting_now(void *ctx, const char *flavor)
{
	return fx_waiting;
}

/* One pass that webhooks alone asked for, with `waiting` jobs queued. */
static int webhook_pass(struct fx *f, int64_t waiting, struct manager_report *rep)
{
	fx_waiting = waiting;
	manager_next_pass_quick(f->m);
	return pass(f, PLAN_NORMAL, rep);
}

/* Creates failed in a report (any reason). */
static size_t failed_creates(const struct manager_report *rep)
{
	size_t n = 0;
	for (size_t i = 0; i < rep->n_events; i++)
		n += !rep->events[i].ok && strcmp(rep->events[i].action, "create") == 0;
	return n;
}

/*
 * A pass webhooks asked for makes its jobs' runners before it lists the
 * providers and GitHub, from the counts the last pass left; its own plan
 * then sees them booting and makes no more. Never before a first plan,
 * never past max, never while draining; a flavor whose create failed
 * ahead is not tried again by the same pass.
 */
static int case_creates_ahead_of_the_lists(struct fx *f)
{
	struct manager_report rep;
	uint64_t lists;
	bool ok;

	manager_set_hooks(f->m, &(struct manager_hooks){.waiting_jobs = waiting_now});
	/* no plan yet: nothing ahead, the pass's plan makes the first job's runner */
	REQUIRE(webhook_pass(f, 1, &rep) == 0);
	ok = rep.ahead == 0 && rep.plan.counts[0].creating == 1 &&
	     events(&rep, "create", NULL) == 1;
	manager_report_release(&rep);
	REQUIRE(ok && memory_count(f->mem) == 1);
	/* a second job: made ahead, then the lists, and a plan that sees it booting */
	lists = memory_calls(f->mem, MEMORY_OP_LIST);
	REQUIRE(webhook_pass(f, 2, &rep) == 0);
	ok = rep.ahead == 1 && rep.plan.counts[0].creating == 0 &&
	     rep.plan.counts[0].pending == 2 && events(&rep, "create", NULL) == 1;
	manager_report_release(&rep);
	REQUIRE(ok && memory_count(f->mem) == 2 && rows(f) == 2);
	REQUIRE(memory_calls(f->mem, MEMORY_OP_LIST) == lists + 1);
	/* the same jobs again: nothing more, ahead or after */
	REQUIRE(webhook_pass(f, 2, &rep) == 0);
	ok = rep.ahead == 0 && rep.plan.counts[0].creating == 0 && rep.n_events == 0;
	manager_report_release(&rep);
	REQUIRE(ok && memory_count(f->mem) == 2);
	/* a timed pass (no mark) creates only after its lists */
	fx_waiting = 3;
	REQUIRE(pass(f, PLAN_NORMAL, &rep) == 0);
	ok = rep.ahead == 0 && rep.plan.counts[0].creating == 1;
	manager_report_release(&rep);
	REQUIRE(ok && memory_count(f->mem) == 3);
	/* a create that fails ahead: the pass's plan does not try that flavor again */
	memory_fail(f->mem, MEMORY_OP_CREATE, -EIO, 1);
	REQUIRE(webhook_pass(f, 4, &rep) == 0);
	ok = rep.ahead == 1 && failed_creates(&rep) == 1 && events(&rep, "create", NULL) == 0 &&
	     rep.plan.counts[0].creating == 1;
	manager_report_release(&rep);
	REQUIRE(ok && memory_count(f->mem) == 3);
	/* nine jobs, max 4: one more, never past max */
	REQUIRE(webhook_pass(f, 9, &rep) == 0);
	ok = rep.ahead == 1 && events(&rep, "create", NULL) == 1 && failed_creates(&rep) == 0;
	manager_report_release(&rep);
	REQUIRE(ok && memory_count(f->mem) == 4);
	/* draining: nothing ahead (and the pass scales the pool down) */
	REQUIRE(manager_set_draining(f->m, true, NULL) == 0);
	REQUIRE(webhook_pass(f, 20, &rep) == 0);
	ok = rep.ahead == 0 && events(&rep, "create", NULL) == 0;
	manager_report_release(&rep);
	REQUIRE(ok);
	return 0;
}

static void run(const char *name, int (*fn)(struct fx *), int min_idle, int max)
{
	struct fx f;
	int64_t t0 = clock_mono_ms();
	int r = fx_open(&f, min_idle, max);
	if (r == 0)
		r = fn(&f);
	fx_close(&f);
	fx_extra = "";
	fx_manager = "";
	fx_request_timeout = "5s";
	test_case_done(name, r, t0);
}

int main(void)
{
	url = getenv("GHSIM_URL");
	token_file = getenv("GH_TOKEN_FILE");
	if (!url || !token_file) {
		fprintf(stderr, "manager_test: GHSIM_URL and GH_TOKEN_FILE must be set\n");
		printf("0 passed, 1 failed\n");
		return 1;
	}
	log_setup(LOG_ERROR, LOG_FORMAT_TEXT);
	run("failed create leaves nothing behind", case_failed_create_leaves_nothing, 2, 2);
	run("JIT config only in the secret environment", case_secret_only_in_secret_env, 1, 1);
	run("passes webhooks alone asked for sweep for leftovers less often",
	    case_webhook_passes_sweep_less, 1, 1);
	run("passes webhooks asked for create ahead of the lists, from the last counts",
	    case_creates_ahead_of_the_lists, 0, 4);
	run("finished runner: metrics pulled, instance deleted",
	    case_finished_runner_metrics_pulled, 1, 1);
	run("a runner that stopped mid-job (pre-job, no post-job): crashed_runners 1",
	    case_crashed_runner_counted, 1, 1);
	run("orphan storages: processed, a bad one quarantined, a foreign one untouched",
	    case_orphan_storages, 1, 1);
	run("a forgotten row's storage, an orphan's: events name the flavor (row, note)",
	    case_forgotten_row_storage_keeps_flavor, 1, 1);
	run("provider list failure deletes nothing", case_list_failure_deletes_nothing, 2, 2);
	run("drain empties the pool, resume refills", case_drain_and_resume, 2, 2);
	run("create n (clamped to max), cleanup, get_runners, delete n",
	    case_create_delete_cleanup_get, 0, 3);
	run("log retention removes old logs of owned names only", case_log_retention, 0, 1);
	fx_manager = ", metrics_retention: 1h, logs_max_size: 64MiB";
	run("metrics retention; the saved logs' total cap removes the oldest first",
	    case_disk_bounds, 1, 1);
	run("temporaries of ended processes are removed at start, a live one's kept",
	    case_temporaries_swept_at_start, 0, 1);
	run("a runner that died while booting is replaced after the health grace",
	    case_dead_runner_replaced, 1, 1);
	run("a failed create whose cleanup failed is deleted next pass, not adopted",
	    case_failed_cleanup_is_retried, 1, 1);
	run("an adopted instance keeps its age and provider", case_adopt_keeps_age, 1, 1);
	run("deletes go to the provider that holds the instance",
	    case_delete_goes_to_the_right_provider, 1, 1);
	fx_extra = "runner: {jit: false}\n";
	run("without JIT, a scale-down victim that registered and took a job is kept",
	    case_nojit_victim_that_took_a_job_is_kept, 1, 1);
	run("the report as JSON is whole or an error", case_report_json_whole_or_error, 2, 2);
	run("the report carries the disk and the providers", case_report_disk_and_providers, 2, 2);
	fx_manager = ", create_concurrency: 1";
	run("a create does not wait behind the slow metrics pull of a delete",
	    case_create_not_behind_slow_metrics_pull, 1, 1);
	run("the first pass makes the runner package ready before any job asks for a runner",
	    case_first_pass_makes_the_package_ready, 0, 1);
	fx_request_timeout = "1s";
	run("a runner package download that trickles on does not hold the passes",
	    case_slow_runner_package_does_not_hold_the_pass, 1, 1);
	/* docs/deadlines.md: a counterpart held silent, the state leaves */
	fx_request_timeout = "1s";
	run("GitHub silent: the pass ends in 2 x request_timeout, deletes nothing, then recovers",
	    case_github_silent, 1, 1);
	run("provider list silent: refused as stale at its deadline, nothing deleted",
	    case_provider_list_silent, 1, 1);
	run("provider delete silent: ends at its deadline, the row stays DELETING and is retried",
	    case_provider_delete_silent, 1, 1);
	run("provider create silent: ends at its deadline, nothing left CREATING",
	    case_provider_create_silent, 1, 1);
	run("a row left CREATING by a crash leaves it next pass", case_creating_row_after_crash, 1,
	    1);
	run("health probe silent: unknown, the instance kept, the pass not held",
	    case_health_probe_silent, 1, 1);
	run("no health probe for a provider without the trait: no call per booting instance",
	    case_no_probe_without_the_trait, 1, 1);
	run("metrics pulls silent: given up at their deadline, the delete goes on",
	    case_metrics_pull_silent, 1, 1);
	run("a row on a provider that is not open blocks deletions, every pass says so",
	    case_row_on_provider_not_open, 0, 1);
	fx_manager = ", job_timeout: 5s";
	run("busy past job_timeout: unhealthy, kept, removed by flush --busy", case_stuck_busy, 1,
	    1);
	return test_summary();
}
