/*
 * Client of the control socket and the commands built on it: status,
 * reconcile, flush, drain, resume. Each tries the daemon first and falls back
 * to doing the work itself when no daemon runs. It must never change the
 * report it prints: people get a view of the same JSON programs read.
 */
#include "util/common.h"
#include "cmd.h"
#include "control.h"
#include "manager/manager.h"
#include "queue/queue.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strutil.h"

#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>

void control_socket_path(const struct config *cfg, char *out, size_t cap)
{
	snprintf(out, cap, "%s/control.sock", cfg->manager.state_dir);
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
	return buf_append(ud, p, sz * nm) == 0 ? sz * nm : 0;
}

static int control_timeout(struct err *e, long timeout_s, const char *sock)
{
	return err_set(e, -ETIMEDOUT,
	               "the daemon did not answer within %lds (control socket %s); is it stuck? "
	               "see its log",
	               timeout_s, sock);
}

/*
 * curl connects without waiting: on a unix socket whose listen queue is
 * full that fails at once, and curl 7.88 reports it with no errno (a
 * refused connect says ECONNREFUSED, a missing socket ENOENT). A burst of
 * requests must queue, not fail: such a connect is tried again, with short
 * pauses, within the call's time.
 */
static bool queue_full(CURL *c, CURLcode code)
{
	long os_errno = 0;

	if (code != CURLE_COULDNT_CONNECT)
		return false;
	curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
	return os_errno == 0 || os_errno == EAGAIN;
}

int control_call(const struct config *cfg, const char *method, const char *path, long timeout_s,
                 struct buf *ret_body, long *ret_status, struct err *e)
{
	char sock[PATH_MAX], url[512];
	int64_t deadline = clock_mono_ms() + (int64_t)timeout_s * 1000, pause = 10;
	long os_errno = 0;
	struct stat st;
	CURL *c;
	CURLcode code;
	int r = 0;

	control_socket_path(cfg, sock, sizeof(sock));
	if (stat(sock, &st) < 0 || !S_ISSOCK(st.st_mode))
		return -ENOENT;
	c = curl_easy_init();
	if (!c)
		return err_set(e, -ENOMEM, "curl init failed");
	snprintf(url, sizeof(url), "http://runnerd%s", path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	}
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, ret_body);
	for (;;) {
		int64_t left = deadline - clock_mono_ms();

		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(left > 1 ? left : 1));
		code = curl_easy_perform(c);
		if (!queue_full(c, code) || clock_mono_ms() + pause >= deadline)
			break;
		clock_sleep_ms(pause);
		pause = pause < 200 ? pause * 2 : 200;
	}
	curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
	if (code == CURLE_OPERATION_TIMEDOUT || queue_full(c, code))
		r = control_timeout(e, timeout_s, sock);
	else if (code == CURLE_COULDNT_CONNECT && (os_errno == ECONNREFUSED || os_errno == ENOENT))
		r = -ECONNREFUSED; /* nobody listens: no daemon */
	else if (code == CURLE_COULDNT_CONNECT)
		r = err_set(e, -EIO, "control socket %s: connect: %s", sock,
		            strerror((int)os_errno));
	else if (code != CURLE_OK)
		r = err_set(e, -EIO, "control socket %s: %s", sock, curl_easy_strerror(code));
	else
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, ret_status);
	curl_easy_cleanup(c);
	return r;
}

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static long long jint(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static void age_str(long long s, char *out, size_t cap)
{
	if (s >= 86400)
		snprintf(out, cap, "%lldd%lldh", s / 86400, (s % 86400) / 3600);
	else if (s >= 3600)
		snprintf(out, cap, "%lldh%lldm", s / 3600, (s % 3600) / 60);
	else if (s >= 60)
		snprintf(out, cap, "%lldm%llds", s / 60, s % 60);
	else
		snprintf(out, cap, "%llds", s);
}

/* "1.2 MiB": bytes for people. */
static void size_str(long long bytes, char *out, size_t cap)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, cap, "%lld B", bytes);
	else
		snprintf(out, cap, "%.1f %s", v, units[u]);
}

/* What runnerd keeps on disk and how each provider isolates its instances. */
static void print_disk_and_providers(json_t *root, FILE *f)
{
	json_t *d = json_object_get(root, "disk"), *v;
	json_t *dm = json_object_get(d, "metrics"), *dl = json_object_get(d, "logs");
	char mb[32], lb[32], lmax[32], mret[32], lret[32];
	size_t i;

	if (json_is_object(d) && !json_is_true(json_object_get(d, "measured"))) {
		fprintf(f, "disk: not measured: %s\n", jstr(d, "error"));
	} else if (json_is_object(d)) {
		size_str(jint(dm, "bytes"), mb, sizeof(mb));
		size_str(jint(dl, "bytes"), lb, sizeof(lb));
		size_str(jint(dl, "max_bytes"), lmax, sizeof(lmax));
		format_duration(jint(dm, "retention_s"), mret, sizeof(mret));
		format_duration(jint(dl, "retention_s"), lret, sizeof(lret));
		fprintf(f,
		        "disk: metrics %lld folders, %s (kept %s); saved logs %lld folders, %s of "
		        "%s (kept %s)\n",
		        jint(dm, "dirs"), mb, mret, jint(dl, "dirs"), lb, lmax, lret);
	}
	json_array_foreach(json_object_get(root, "providers"), i, v)
	{
		json_t *q = json_object_get(v, "quota");
		fprintf(f, "provider %s (%s)%s%s\n", jstr(v, "name"), jstr(v, "type"),
		        *jstr(v, "note") ? ": " : "", jstr(v, "note"));
		if (json_is_true(json_object_get(q, "held"))) {
			long long in = jint(q, "retry_at") - (long long)time(NULL);
			char since[32];
			age_str(time(NULL) - jint(q, "since"), since, sizeof(since));
			fprintf(f,
			        "QUOTA provider %s: %s (for %s; no create until one tries it again "
			        "in %llds)\n",
			        jstr(v, "name"), jstr(q, "error"), since, in > 0 ? in : 0);
		}
	}
}

/*
 * The runner version new instances get and its age, then each flavor
 * GitHub's version rule holds back (degraded) or whose image needs a rebuild.
 */
static void print_runner_version(json_t *root, FILE *f)
{
	json_t *rv = json_object_get(root, "runner"), *v;
	char age[32], behind[32];
	size_t i;

	if (*jstr(rv, "in_use")) {
		fprintf(f, "runner %s", jstr(rv, "in_use"));
		if (jint(rv, "age_s") >= 0) {
			age_str(jint(rv, "age_s"), age, sizeof(age));
			fprintf(f, ", released %s ago", age);
		}
		if (jint(rv, "behind_s") > 0) {
			age_str(jint(rv, "behind_s"), behind, sizeof(behind));
			fprintf(f,
			        ", %s behind the latest %s (GitHub gives no job to a runner "
			        "30 days behind)",
			        behind, jstr(rv, "latest"));
		} else if (*jstr(rv, "latest")) {
			fprintf(f, " (the latest)");
		}
		fprintf(f, "\n");
	}
	if (*jstr(rv, "error"))
		fprintf(f, "runner releases: %s\n", jstr(rv, "error"));
	json_array_foreach(json_object_get(root, "flavors"), i, v)
	{
		if (*jstr(v, "degraded"))
			fprintf(f, "DEGRADED flavor %s: %s\n", jstr(v, "name"),
			        jstr(v, "degraded"));
		if (*jstr(v, "image_runner"))
			fprintf(f,
			        "WARNING flavor %s: its image's runner %s is too old (older than "
			        "%s): "
			        "instances update it at each start; rebuild the image\n",
			        jstr(v, "name"), jstr(v, "image_runner"),
			        *jstr(rv, "image_floor") ? jstr(rv, "image_floor") : "the floor");
	}
}

int control_print_report(const char *json, bool show_runners, bool show_actions, FILE *f)
{
	json_error_t je;
	json_t *root = json_loads(json, 0, &je), *v;
	size_t i;

	if (!root || !json_is_object(root)) {
		json_decref(root);
		fprintf(stderr, "runnerd: the daemon answered something that is not a report\n");
		return -EPROTO;
	}
	if (json_is_true(json_object_get(root, "draining")))
		fprintf(f, "DRAINING: pools are held at zero until `runnerd resume`\n");
	if (*jstr(root, "github_error"))
		fprintf(f, "github: %s (no deletions)\n", jstr(root, "github_error"));
	if (*jstr(root, "provider_error"))
		fprintf(f, "provider: %s (no deletions)\n", jstr(root, "provider_error"));
	if (jint(root, "spooled") > 0)
		fprintf(f,
		        "SPOOLED: %lld jobs wait here for the broker (published when it is back)\n",
		        jint(root, "spooled"));
	print_runner_version(root, f);
	/* reactive mode: the jobs that wait for a runner, per flavor (what desired answers) */
	bool reactive = json_is_true(json_object_get(root, "reactive"));
	fprintf(f, "%-20s %7s %7s %7s %7s %7s %7s %7s%s\n", "FLAVOR", "ONLINE", "OFFLINE", "BUSY",
	        "IDLE", "UNKNOWN", "PENDING", "DESIRED", reactive ? "  WAITING" : "");
	json_array_foreach(json_object_get(root, "flavors"), i, v)
	{
		fprintf(f, "%-20s %7lld %7lld %7lld %7lld %7lld %7lld %7lld", jstr(v, "name"),
		        jint(v, "online"), jint(v, "offline"), jint(v, "busy"), jint(v, "idle"),
		        jint(v, "unknown"), jint(v, "pending"), jint(v, "desired"));
		if (reactive)
			fprintf(f, " %8lld", jint(v, "waiting"));
		fprintf(f, "\n");
	}
	if (show_runners && json_array_size(json_object_get(root, "runners"))) {
		fprintf(f, "\n%-40s %-12s %-8s %-9s %-9s %s\n", "RUNNER", "FLAVOR", "GITHUB",
		        "CLOUD", "HEALTH", "AGE");
		json_array_foreach(json_object_get(root, "runners"), i, v)
		{
			char age[32];
			age_str(jint(v, "age_s"), age, sizeof(age));
			fprintf(f, "%-40s %-12s %-8s %-9s %-9s %s\n", jstr(v, "name"),
			        jstr(v, "flavor"), jstr(v, "github_state"), jstr(v, "cloud_state"),
			        jstr(v, "health"), age);
		}
	}
	if (show_runners) {
		/* the status view: a blank line, then the disk and the providers */
		fprintf(f, "\n");
		print_disk_and_providers(root, f);
	}
	if (show_actions) {
		json_t *acts = json_object_get(root, "actions");
		if (json_array_size(acts) == 0)
			fprintf(f, "\nno actions\n");
		else
			fprintf(f, "\n");
		json_array_foreach(acts, i, v)
		{
			fprintf(f, "%-13s %-32s %-10s %-11s %s\n", jstr(v, "action"),
			        jstr(v, "name"), jstr(v, "flavor"), jstr(v, "reason"),
			        jstr(v, "outcome"));
		}
	}
	json_decref(root);
	return 0;
}

/* ---- commands --------------------------------------------------------- */

/* How long a command waits for the daemon's answer, unless --timeout says. */
#define STATUS_TIMEOUT_S 30  /* the daemon answers within 15 s (STATUS_WAIT_MS) */
#define PASS_TIMEOUT_S   600 /* the daemon answers within 570 s (CONTROL_WAIT_MS) */
#define DRAIN_TIMEOUT_S  30
#define DRAIN_WAIT_S     3600 /* drain --wait, in all */

struct cli {
	const char *command; /* for messages: "status", ... */
	const char *config;
	bool json;
	bool busy;
	bool wait;
	long timeout; /* --timeout in seconds, 0 when not given */
};

static int parse(int argc, char **argv, struct cli *o, const char *usage)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {"busy", no_argument, NULL, 'b'},
	                                     {"wait", no_argument, NULL, 'w'},
	                                     {"timeout", required_argument, NULL, 't'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	int c;
	o->command = argv[0];
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'b':
			o->busy = true;
			break;
		case 'w':
			o->wait = true;
			break;
		case 't': {
			int64_t s;
			if (parse_duration(optarg, &s) < 0 || s < 1) {
				fprintf(stderr, "runnerd: --timeout: a duration like 10m\n");
				return -1;
			}
			o->timeout = (long)s;
			break;
		}
		default:
			fprintf(stderr, "usage: %s\n", usage);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "usage: %s\n", usage);
		return -1;
	}
	return 0;
}

/*
 * The jobs the queue holds, for a pass run here: without them a pass with
 * no daemon would size the pools as if none waited (and scale down the
 * runners made for them).
 */
static int64_t queued_jobs(void *ctx, const char *flavor)
{
	int64_t n = 0;

	return queue_count(ctx, flavor, clock_wall_ms(), &n, NULL) == 0 ? n : 0;
}

/* What the amqp queue spooled while its broker was away (published by this pass's queue too). */
static int64_t spooled_jobs(void *ctx)
{
	int64_t n = 0;

	return queue_spooled(ctx, &n, NULL) == 0 ? n : 0;
}

/*
 * Do it through the daemon, waiting for its answer at most timeout_s, or
 * directly. *ret_json gets the report.
 */
static int dispatch(const struct cli *o, const struct config *cfg, const char *method,
                    const char *path, enum plan_mode mode, bool act, long timeout_s,
                    struct buf *ret_json)
{
	struct err e = {0};
	long status = 0;
	int r = control_call(cfg, method, path, timeout_s, ret_json, &status, &e);

	if (r == 0) {
		if (status != 200) {
			fprintf(stderr, "runnerd %s: daemon answered %ld: %s\n", o->command, status,
			        buf_str(ret_json));
			return -EIO;
		}
		return 0;
	}
	if (r != -ENOENT && r != -ECONNREFUSED) {
		fprintf(stderr, "runnerd %s: %s\n", o->command, e.msg);
		return r;
	}
	/* no daemon: do the work here, under the same state-dir lock */
	struct manager *m = NULL;
	struct manager_report rep;
	buf_reset(ret_json);
	if (manager_open(cfg, &m, &e) < 0) {
		if (e.code == -EWOULDBLOCK)
			fprintf(stderr,
			        "runnerd: a daemon holds %s but its control socket does not "
			        "answer\n",
			        cfg->manager.state_dir);
		else
			fprintf(stderr, "runnerd: %s\n", e.msg);
		return -EIO;
	}
	struct queue *q = NULL;
	if (queue_open(cfg, manager_store(m), &q, &e) == 0)
		manager_set_hooks(m, &(struct manager_hooks){.waiting_jobs = queued_jobs,
		                                             .spooled = spooled_jobs,
		                                             .ctx = q});
	else
		fprintf(stderr, "runnerd: %s (waiting jobs not counted)\n", e.msg);
	err_clear(&e);
	if (strcmp(path, "/v1/drain") == 0 || strcmp(path, "/v1/resume") == 0) {
		r = manager_set_draining(m, strcmp(path, "/v1/drain") == 0, &e);
		if (r == 0)
			r = manager_reconcile(m, PLAN_NORMAL, &rep, &e);
		else
			memset(&rep, 0, sizeof(rep));
	} else {
		r = act ? manager_reconcile(m, mode, &rep, &e) : manager_observe(m, &rep, &e);
	}
	if (r < 0)
		fprintf(stderr, "runnerd: %s\n", e.msg);
	int jr = manager_report_json(&rep, manager_draining(m), ret_json);
	if (jr < 0) {
		fprintf(stderr, "runnerd: the report: %s\n", strerror(-jr));
		r = r < 0 ? r : jr;
	}
	manager_report_release(&rep);
	manager_free(m);
	queue_free(q);
	return r;
}

static int finish(const struct cli *o, struct buf *json, int r, bool runners, bool actions)
{
	if (r == 0 || json->len) {
		if (o->json)
			fputs(buf_str(json), stdout);
		else if (json->len)
			control_print_report(buf_str(json), runners, actions, stdout);
	}
	buf_release(json);
	return r < 0 ? 1 : 0;
}

int cmd_status(int argc, char **argv)
{
	struct cli o = {0};
	struct config *cfg = NULL;
	struct buf json = BUF_INIT(64 << 20);
	int r;

	if (parse(argc, argv, &o, "runnerd status [-c FILE] [--json] [--timeout 30s]") < 0)
		return 2;
	if (cmd_load_config(o.config, &cfg) < 0)
		return 1;
	r = dispatch(&o, cfg, "GET", "/v1/status", PLAN_NORMAL, false,
	             o.timeout ? o.timeout : STATUS_TIMEOUT_S, &json);
	r = finish(&o, &json, r, true, false);
	config_free(cfg);
	return r;
}

int cmd_reconcile(int argc, char **argv)
{
	struct cli o = {0};
	struct config *cfg = NULL;
	struct buf json = BUF_INIT(64 << 20);
	int r;

	if (parse(argc, argv, &o, "runnerd reconcile [-c FILE] [--json] [--timeout 10m]") < 0)
		return 2;
	if (cmd_load_config(o.config, &cfg) < 0)
		return 1;
	r = dispatch(&o, cfg, "POST", "/v1/reconcile", PLAN_NORMAL, true,
	             o.timeout ? o.timeout : PASS_TIMEOUT_S, &json);
	r = finish(&o, &json, r, false, true);
	config_free(cfg);
	return r;
}

int cmd_flush(int argc, char **argv)
{
	struct cli o = {0};
	struct config *cfg = NULL;
	struct buf json = BUF_INIT(64 << 20);
	int r;

	if (parse(argc, argv, &o, "runnerd flush [-c FILE] [--busy] [--json] [--timeout 10m]") < 0)
		return 2;
	if (cmd_load_config(o.config, &cfg) < 0)
		return 1;
	r = dispatch(&o, cfg, "POST", o.busy ? "/v1/flush?busy=1" : "/v1/flush",
	             o.busy ? PLAN_FLUSH_BUSY : PLAN_FLUSH_IDLE, true,
	             o.timeout ? o.timeout : PASS_TIMEOUT_S, &json);
	r = finish(&o, &json, r, false, true);
	config_free(cfg);
	return r;
}

/* The daemon (or manager_report_json) says whether nothing we own is left. */
static bool report_empty(const char *json)
{
	json_error_t je;
	json_t *root = json_loads(json, 0, &je);
	bool empty = root && json_is_true(json_object_get(root, "empty"));
	json_decref(root);
	return empty;
}

int cmd_drain(int argc, char **argv)
{
	bool resume = strcmp(argv[0], "resume") == 0;
	struct cli o = {0};
	struct config *cfg = NULL;
	struct buf json = BUF_INIT(64 << 20);
	time_t deadline;
	int r;

	if (parse(argc, argv, &o,
	          resume ? "runnerd resume [-c FILE]"
	                 : "runnerd drain [-c FILE] [--wait] [--timeout 1h]") < 0)
		return 2;
	if (cmd_load_config(o.config, &cfg) < 0)
		return 1;
	r = dispatch(&o, cfg, "POST", resume ? "/v1/resume" : "/v1/drain", PLAN_NORMAL, true,
	             DRAIN_TIMEOUT_S, &json);
	if (r < 0 || resume || !o.wait) {
		if (r == 0)
			printf("%s\n", resume ? "resumed: pools return to their configured size"
			                      : "draining: pools go to zero; busy runners finish "
			                        "their jobs");
		buf_release(&json);
		config_free(cfg);
		return r < 0 ? 1 : 0;
	}
	/* --wait: reconcile until nothing this manager owns is left */
	deadline = time(NULL) + (o.timeout ? o.timeout : DRAIN_WAIT_S);
	for (;;) {
		buf_reset(&json);
		r = dispatch(&o, cfg, "POST", "/v1/reconcile", PLAN_NORMAL, true, PASS_TIMEOUT_S,
		             &json);
		if (r == 0 && report_empty(buf_str(&json))) {
			printf("drained: nothing left\n");
			break;
		}
		if (time(NULL) >= deadline) {
			fprintf(stderr, "runnerd: drain --wait: timed out; still owned:\n");
			control_print_report(buf_str(&json), true, false, stderr);
			r = -ETIMEDOUT;
			break;
		}
		sleep(2);
	}
	buf_release(&json);
	config_free(cfg);
	return r < 0 ? 1 : 0;
}
