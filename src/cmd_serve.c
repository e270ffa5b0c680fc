/*
 * runnerd serve: the daemon. One thread, the pass loop, runs every reconcile
 * pass: every reconcile_interval (plus up to 25% random delay, so many
 * managers do not hit GitHub in step) and whenever triggered; triggers that
 * arrive during a pass merge into one next pass, in the strongest mode asked
 * (flush busy > flush idle > normal). A control request that acts (reconcile,
 * flush) triggers the loop and waits, bounded, for the report of a pass that
 * started after it; status waits the same way for an observation on the
 * status loop (requests that arrive during one share the next), and, when a
 * running pass holds observations up too long, gets the last pass's report.
 * Those that wait are deferred: they hold no HTTP thread, so a burst of them
 * never keeps another request from being served. drain and resume set the
 * flag and trigger. SIGTERM/SIGINT stop it within seconds and leave
 * instances running (a restart adopts them); SIGHUP opens the events log
 * again (logrotate) and reloads the config on
 * the pass loop, between two passes, keeping the old one when the new one
 * is invalid. It must never run a pass or an observation on an HTTP thread,
 * nor make the signal thread wait for a pass (SIGTERM would wait behind it).
 */
#include "util/common.h"
#include "cmd.h"
#include "control.h"
#include "daemon/serve_metrics.h"
#include "http/server.h"
#include "manager/manager.h"
#include "reactive/reactive.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strutil.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/resource.h>

/*
 * How long a control request waits for its pass: below the CLI's own 600 s,
 * so it hears why rather than timing out itself. The pass goes on.
 */
#define CONTROL_WAIT_MS (570 * 1000)
/*
 * How long status waits for a fresh observation (one waits behind a running
 * pass) before it gets the last pass's report: well below the CLI's 30 s.
 */
#define STATUS_WAIT_MS (15 * 1000)
#define REPORT_MAX     (64 << 20)
/* The control socket: handlers are short (those that wait are deferred). */
#define CONTROL_THREADS         8
#define CONTROL_MAX_CONNECTIONS 512

/* A control request set aside until a run of its lane ends. */
struct waiter {
	uint64_t run;              /* the first run that starts after the request */
	struct http_deferred *def; /* where its answer goes */
	struct waiter *next;
};

/*
 * Runs of one kind, one at a time on their own thread: passes, or the
 * observations status asks for. Requests that arrive during a run share
 * the next one.
 */
struct lane {
	bool trigger;
	uint64_t started;       /* runs started; run n is the n-th */
	struct waiter *waiters; /* requests for a run not yet ended */
};

struct daemon {
	struct manager *m;
	struct reactive *rx;           /* webhooks -> queue -> waiting jobs */
	struct serve_metrics *metrics; /* /metrics and /healthz; told of every pass */
	struct config *cfg;
	const char *config_path; /* what SIGHUP reloads */
	pthread_mutex_t lock;    /* guards everything below */
	pthread_cond_t cond;     /* to the loops: triggered, or stop (CLOCK_MONOTONIC) */
	bool stop;
	bool reload;         /* SIGHUP: the pass loop reloads before its next pass */
	enum plan_mode mode; /* of the next pass: the strongest asked */
	struct lane passes;
	struct lane looks; /* observations for status */
	struct manager_report last;
	bool have_last;
	struct buf last_json; /* last as JSON, once status needed it; empty: not yet */
};

/* An absolute CLOCK_MONOTONIC time ms from now, for the conditions above. */
static struct timespec deadline_in(int64_t ms)
{
	int64_t at = clock_mono_ms() + ms;
	return (struct timespec){.tv_sec = at / 1000, .tv_nsec = (at % 1000) * 1000000L};
}

static void cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

static void keep_report(struct daemon *d, struct manager_report *r)
{
	pthread_mutex_lock(&d->lock);
	manager_report_release(&d->last);
	d->last = *r;
	d->have_last = true;
	buf_reset(&d->last_json);
	pthread_mutex_unlock(&d->lock);
	memset(r, 0, sizeof(*r));
}

static void log_pass(const struct manager_report *r)
{
	for (size_t i = 0; i < r->plan.n_counts; i++) {
		const struct plan_flavor_count *c = &r->plan.counts[i];
		log_info("flavor %s: desired %" PRId64 ", idle %" PRId64 ", busy %" PRId64
		         ", pending %" PRId64 ", offline %" PRId64,
		         c->name, c->desired, c->idle, c->busy, c->pending, c->offline);
	}
}

/* Under d->lock: the waiters of l for run n or earlier (all of them for UINT64_MAX). */
static struct waiter *lane_take(struct lane *l, uint64_t n)
{
	struct waiter *taken = NULL, **wp = &l->waiters;

	while (*wp) {
		struct waiter *w = *wp;
		if (w->run > n) {
			wp = &w->next;
			continue;
		}
		*wp = w->next;
		w->next = taken;
		taken = w;
	}
	return taken;
}

/* Answer every waiter of list with resp, and free them. */
static void answer_list(struct waiter *list, const struct http_response *resp)
{
	while (list) {
		struct waiter *w = list;
		list = w->next;
		/* -EALREADY: its deadline passed, or the client is gone */
		(void)http_deferred_answer(w->def, resp);
		free(w);
	}
}

static void answer_error(struct waiter *list, int status, const char *msg)
{
	struct http_response resp;

	http_response_init(&resp);
	http_response_error(&resp, status, msg);
	answer_list(list, &resp);
	http_response_release(&resp);
}

/* resp := r as JSON, or why not. */
static void report_response(struct daemon *d, const struct manager_report *r,
                            struct http_response *resp)
{
	struct buf json = BUF_INIT(REPORT_MAX);
	int jr = manager_report_json(r, manager_draining(d->m), &json);

	if (jr < 0) {
		log_error("control: the report: %s", strerror(-jr));
		http_response_error(resp, 500, strerror(-jr));
	} else {
		http_response_json(resp, 200, buf_str(&json));
	}
	buf_release(&json);
}

/* Hand run n's report to the requests of l that wait for it. */
static void answer_waiters(struct daemon *d, struct lane *l, uint64_t n,
                           const struct manager_report *r)
{
	struct http_response resp;
	struct waiter *list;

	/* who waits for run n registered before it started: none can join now */
	pthread_mutex_lock(&d->lock);
	list = lane_take(l, n);
	pthread_mutex_unlock(&d->lock);
	if (!list)
		return;
	http_response_init(&resp);
	report_response(d, r, &resp);
	answer_list(list, &resp);
	http_response_release(&resp);
}

static void run_pass(struct daemon *d, uint64_t n, enum plan_mode mode)
{
	struct manager_report r;
	struct err e = {0};

	int rc = manager_reconcile(d->m, mode, &r, &e);

	if (rc < 0)
		log_error("reconcile: %s", e.msg);
	log_pass(&r);
	reactive_after_pass(d->rx, manager_github(d->m), &r);
	/* d->cfg is changed only on this thread (reload), between passes */
	serve_metrics_pass(d->metrics, d->cfg, &r, manager_draining(d->m), rc, e.msg);
	answer_waiters(d, &d->passes, n, &r);
	keep_report(d, &r);
}

/*
 * resp := the last pass's report: what status says when it cannot observe
 * (or not in time); 503 (why) when no pass has ended yet. Every status
 * request holds it ready, so it is rendered once a pass, not once a request.
 */
static void last_report_response(struct daemon *d, const char *why, struct http_response *resp)
{
	int jr = 0;

	pthread_mutex_lock(&d->lock);
	if (d->have_last && d->last_json.len == 0)
		jr = manager_report_json(&d->last, manager_draining(d->m), &d->last_json);
	if (!d->have_last)
		http_response_error(resp, 503, why);
	else if (jr < 0)
		http_response_error(resp, 500, strerror(-jr));
	else
		http_response_json(resp, 200, buf_str(&d->last_json));
	pthread_mutex_unlock(&d->lock);
}

/* Observation n, for the status requests that wait for it. */
static void run_observation(struct daemon *d, uint64_t n)
{
	struct http_response resp;
	struct manager_report r;
	struct waiter *list;
	struct err e = {0};

	/* status is now, not the last pass: an unchanged GitHub list costs no rate limit */
	if (manager_observe(d->m, &r, &e) == 0) {
		answer_waiters(d, &d->looks, n, &r);
	} else {
		pthread_mutex_lock(&d->lock);
		list = lane_take(&d->looks, n);
		pthread_mutex_unlock(&d->lock);
		http_response_init(&resp);
		last_report_response(d, e.msg, &resp);
		answer_list(list, &resp);
		http_response_release(&resp);
	}
	manager_report_release(&r);
}

static int64_t jittered_ms(int64_t interval_s)
{
	uint32_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd = 0;
	int64_t base = interval_s * 1000;
	return base + (int64_t)(rnd % (uint32_t)(base / 4 + 1));
}

static void reload(struct daemon *d);

/*
 * Seconds between timed passes: reconcile_interval, or backfill_interval
 * when the backfill of missed webhooks (after a pass) needs them sooner.
 */
static int64_t pass_interval(const struct config *cfg)
{
	int64_t s = cfg->manager.reconcile_interval;

	if (cfg->webhook.hook_id > 0 && cfg->webhook.backfill_interval < s)
		s = cfg->webhook.backfill_interval;
	return s;
}

/* The pass loop: the one thread that runs passes, and reloads between them. */
static void *loop_main(void *arg)
{
	struct daemon *d = arg;
	struct timespec deadline;
	bool timer = false; /* deadline is the next timed pass (kept across a reload) */

	for (;;) {
		enum plan_mode mode;
		uint64_t n;

		pthread_mutex_lock(&d->lock);
		if (!timer) {
			deadline = deadline_in(jittered_ms(pass_interval(d->cfg)));
			timer = true;
		}
		while (!d->stop && !d->passes.trigger && !d->reload) {
			if (pthread_cond_timedwait(&d->cond, &d->lock, &deadline) == ETIMEDOUT)
				break;
		}
		if (d->reload && !d->stop) {
			d->reload = false;
			pthread_mutex_unlock(&d->lock);
			reload(d); /* a reload that took triggers the next pass */
			continue;
		}
		timer = false;
		bool stop = d->stop;
		/* every trigger so far is served by this pass, in the strongest mode asked */
		d->passes.trigger = false;
		mode = d->mode;
		d->mode = PLAN_NORMAL;
		n = ++d->passes.started;
		pthread_mutex_unlock(&d->lock);
		if (stop)
			break;
		run_pass(d, n, mode);
	}
	return NULL;
}

/* The status loop: observations, only when a status request waits for one. */
static void *status_main(void *arg)
{
	struct daemon *d = arg;
	for (;;) {
		uint64_t n;

		pthread_mutex_lock(&d->lock);
		while (!d->stop && !d->looks.trigger)
			pthread_cond_wait(&d->cond, &d->lock);
		bool stop = d->stop;
		d->looks.trigger = false;
		n = ++d->looks.started;
		pthread_mutex_unlock(&d->lock);
		if (stop)
			break;
		run_observation(d, n);
	}
	return NULL;
}

static void trigger(struct daemon *d)
{
	pthread_mutex_lock(&d->lock);
	d->passes.trigger = true;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

/* A webhook queued a job (an HTTP thread): a pass now, merged with any asked. */
static void trigger_cb(void *ctx)
{
	trigger(ctx);
}

/*
 * Set req aside for the next run of l to start (for passes, in at least
 * mode) and hand it that run's report. resp holds what it gets if none
 * ends within wait_ms; it is replaced by why not when the request cannot
 * wait.
 */
static void wait_for_run(struct daemon *d, struct lane *l, enum plan_mode mode,
                         const struct http_request *req, unsigned wait_ms,
                         struct http_response *resp)
{
	struct waiter *w = calloc(1, sizeof(*w));
	int r;

	if (!w) {
		http_response_error(resp, 500, strerror(ENOMEM));
		return;
	}
	r = http_request_defer(req, wait_ms, &w->def);
	if (r < 0) {
		free(w);
		if (r == -ESHUTDOWN) {
			http_response_error(resp, 503, "runnerd is stopping");
		} else if (r == -EBUSY) {
			http_response_error(resp, 503, "too many control requests wait: try again");
			(void)http_response_header(resp, "Retry-After", "5");
		} else {
			http_response_error(resp, 500, strerror(-r));
		}
		return;
	}
	pthread_mutex_lock(&d->lock);
	if (!d->stop) {
		w->run = l->started + 1;
		if (l == &d->passes && mode > d->mode)
			d->mode = mode;
		l->trigger = true;
		w->next = l->waiters;
		l->waiters = w;
		pthread_cond_broadcast(&d->cond);
		w = NULL;
	}
	pthread_mutex_unlock(&d->lock);
	if (w) /* stopping: its waiters were answered already */
		answer_error(w, 503, "runnerd is stopping");
}

/* ---- control API ------------------------------------------------------ */

static void h_status(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct daemon *d = ctx;

	last_report_response(d, "no observation ended in time and no pass has ended yet: try again",
	                     resp);
	wait_for_run(d, &d->looks, PLAN_NORMAL, req, STATUS_WAIT_MS, resp);
}

static void h_reconcile(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct daemon *d = ctx;
	enum plan_mode mode = PLAN_NORMAL;

	if (strcmp(req->path, "/v1/flush") == 0) {
		mode = str_eq(http_request_arg(req, "busy"), "1") ? PLAN_FLUSH_BUSY
		                                                  : PLAN_FLUSH_IDLE;
		log_info("control: flush %s requested", mode == PLAN_FLUSH_BUSY ? "busy" : "idle");
	}
	http_response_error(resp, 504,
	                    "no pass ended in time: the pass goes on (see runnerd status)");
	wait_for_run(d, &d->passes, mode, req, CONTROL_WAIT_MS, resp);
}

static void h_drain(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct daemon *d = ctx;
	bool on = strcmp(req->path, "/v1/drain") == 0;
	struct err e = {0};

	if (manager_set_draining(d->m, on, &e) < 0) {
		http_response_error(resp, 500, e.msg);
		return;
	}
	log_info("control: %s",
	         on ? "drain: pools go to zero" : "resume: pools back to their size");
	trigger(d);
	http_response_json(resp, 200, on ? "{\"draining\":true}\n" : "{\"draining\":false}\n");
}

static const struct http_route control_routes[] = {
        {"GET", "/v1/status", h_status, 0},    {"POST", "/v1/reconcile", h_reconcile, 0},
        {"POST", "/v1/flush", h_reconcile, 0}, {"POST", "/v1/drain", h_drain, 0},
        {"POST", "/v1/resume", h_drain, 0},
};

/* ---- main ------------------------------------------------------------- */

/*
 * The control socket's limits: room for a burst of CLI requests and of
 * requests waiting for a pass (each holds a connection, not a thread), at
 * most a quarter of the descriptors this process may open; more wait in the
 * listen queue.
 */
static void control_options(struct http_server_options *o)
{
	struct rlimit rl;
	unsigned max = CONTROL_MAX_CONNECTIONS;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 4 < max)
		max = rl.rlim_cur / 4 < 16 ? 16 : (unsigned)(rl.rlim_cur / 4);
	*o = (struct http_server_options){.threads = CONTROL_THREADS, .max_connections = max};
}

/* What the loader found doubtful (open secret files, ...): logged, not fatal. */
static void log_config_warnings(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->warnings.n; i++)
		log_warn("%s", cfg->warnings.v[i]);
}

/*
 * SIGHUP also means "logrotate moved the events log": it is opened again by
 * path, whether or not the new config takes.
 */
static void reopen_events_log(struct daemon *d)
{
	struct err e = {0};

	if (manager_reopen_events_log(d->m, &e) < 0)
		log_warn("events log: %s", e.msg[0] ? e.msg : "cannot be opened");
}

/* SIGHUP, on the pass loop between two passes. */
static void reload(struct daemon *d)
{
	const char *path = d->config_path;
	struct config *ncfg = NULL;
	struct err e = {0};

	log_info("SIGHUP: reloading %s", path);
	if (cmd_load_config(path, &ncfg) < 0) {
		log_error("reload refused: the new config is invalid; keeping the old one");
		reopen_events_log(d);
		return;
	}
	log_config_warnings(ncfg);
	if (manager_reload(d->m, ncfg, &e) < 0) {
		log_error("reload refused: %s; keeping the old one", e.msg);
		config_free(ncfg);
		reopen_events_log(d);
		return;
	}
	reactive_reload(d->rx, ncfg);
	reopen_events_log(d); /* by the new config's path */
	pthread_mutex_lock(&d->lock);
	struct config *old = d->cfg;
	d->cfg = ncfg;
	pthread_mutex_unlock(&d->lock);
	config_free(old);
	log_info("reloaded: %zu flavors", ncfg->n_flavors);
	trigger(d);
}

/* Reactive mode: the queue, and the intake when a secret is configured. */
static int start_reactive(struct daemon *d)
{
	struct manager_hooks hooks;
	struct err e = {0};
	int r;

	r = reactive_start(d->cfg, manager_store(d->m), trigger_cb, d, &d->rx, &e);
	if (r < 0) {
		log_error("reactive mode: %s", e.msg);
		return r;
	}
	reactive_manager_hooks(d->rx, &hooks);
	manager_set_hooks(d->m, &hooks);
	if (reactive_port(d->rx))
		log_info("webhook intake on %s (port %d): POST /webhook, GET /healthz; queue %s",
		         d->cfg->webhook.listen, reactive_port(d->rx),
		         d->cfg->queue.kind == QUEUE_SQLITE ? "sqlite" : "amqp");
	else if (*d->cfg->webhook.listen)
		log_info("webhook intake off: no webhook secret (webhook.secret_file or "
		         "secret_env)");
	return 0;
}

int cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"log-format", required_argument, NULL, 'F'},
	                                     {"log-level", required_argument, NULL, 'L'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	enum log_level level = log_current_level();
	enum log_format format = log_current_format();
	struct daemon d = {.last_json = BUF_INIT(REPORT_MAX)};
	struct http_server *ctl = NULL;
	const char *cpath = NULL;
	char sock[PATH_MAX];
	struct err e = {0};
	struct http_server_options copts;
	struct waiter *waiting[2];
	sigset_t set;
	pthread_t loop, looker;
	bool looping = false, looking = false;
	int c, rc = 1;

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		if (c == 'c')
			cpath = optarg;
		else if (c == 'F' && log_parse_format(optarg, &format) == 0)
			;
		else if (c == 'L' && log_parse_level(optarg, &level) == 0)
			;
		else {
			fprintf(stderr, "usage: runnerd serve [-c FILE] [--log-format text|json] "
			                "[--log-level debug|info|warn|error]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	/* also after the command: `runnerd serve --log-format json` */
	log_setup(level, format);
	cpath = config_path(cpath);
	d.config_path = cpath;
	if (cmd_load_config(cpath, &d.cfg) < 0)
		return 1;
	log_config_warnings(d.cfg);

	/* signals go to one thread (this one) through sigwait */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (manager_open(d.cfg, &d.m, &e) < 0) {
		if (e.code == -EWOULDBLOCK)
			log_error("another runnerd holds %s: %s", d.cfg->manager.state_dir, e.msg);
		else
			log_error("%s", e.msg);
		config_free(d.cfg);
		return 1;
	}
	manager_log_setup(d.m);
	pthread_mutex_init(&d.lock, NULL);
	cond_init_mono(&d.cond);
	if (start_reactive(&d) < 0)
		goto out;
	if (serve_metrics_new(d.cfg, &d.metrics) < 0) {
		log_error("metrics: out of memory");
		goto out;
	}
	{
		struct metrics_sink sink;
		serve_metrics_sink(d.metrics, &sink);
		manager_set_metrics_sink(d.m, &sink);
		serve_metrics_collector(d.metrics, reactive_prom_collect, d.rx);
	}
	/* a listener that cannot bind costs the metrics, not the runners */
	if (*d.cfg->metrics.listen &&
	    serve_metrics_listen(d.metrics, d.cfg->metrics.listen, &e) < 0)
		log_error("%s: serving no metrics (runners are managed as usual)", e.msg);
	else if (*d.cfg->metrics.listen)
		log_info("metrics: http://%s/metrics and /healthz", d.cfg->metrics.listen);
	err_clear(&e);

	control_socket_path(d.cfg, sock, sizeof(sock));
	control_options(&copts);
	if (http_server_start_unix_opts(sock, 0600, geteuid(), control_routes,
	                                ARRAY_SIZE(control_routes), &d, &copts, &ctl, &e) < 0) {
		log_error("control socket %s: %s", sock, e.msg);
		goto out;
	}
	log_info("runnerd %s serving: manager %s, %zu flavors, control %s", RUNNERD_VERSION,
	         d.cfg->manager.name, d.cfg->n_flavors, sock);

	d.passes.trigger = true; /* a first pass at once */
	if (pthread_create(&loop, NULL, loop_main, &d) != 0) {
		log_error("cannot start the reconcile loop");
		goto stop;
	}
	looping = true;
	if (pthread_create(&looker, NULL, status_main, &d) != 0) {
		log_error("cannot start the status loop");
		goto stop;
	}
	looking = true;
	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			/* the pass loop reloads: this thread stays free for SIGTERM */
			pthread_mutex_lock(&d.lock);
			d.reload = true;
			pthread_cond_broadcast(&d.cond);
			pthread_mutex_unlock(&d.lock);
			continue;
		}
		log_info("signal %d: stopping (instances keep running; a restart adopts them)",
		         sig);
		break;
	}
	rc = 0;
stop:
	pthread_mutex_lock(&d.lock);
	d.stop = true;
	pthread_cond_broadcast(&d.cond);
	waiting[0] = lane_take(&d.passes, UINT64_MAX);
	waiting[1] = lane_take(&d.looks, UINT64_MAX);
	pthread_mutex_unlock(&d.lock);
	answer_error(waiting[0], 503, "runnerd is stopping");
	answer_error(waiting[1], 503, "runnerd is stopping");
	manager_cancel(d.m);
	http_server_stop(ctl);
	ctl = NULL;
	if (looping)
		pthread_join(loop, NULL);
	if (looking)
		pthread_join(looker, NULL);
out:
	http_server_stop(ctl);
	serve_metrics_stop(d.metrics); /* after the pass loop; before rx, which scrapes read */
	reactive_stop(d.rx);
	manager_report_release(&d.last);
	buf_release(&d.last_json);
	manager_free(d.m);
	config_free(d.cfg);
	pthread_mutex_destroy(&d.lock);
	pthread_cond_destroy(&d.cond);
	log_info("stopped");
	return rc;
}
