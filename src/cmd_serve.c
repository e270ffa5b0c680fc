/*
 * runnerd serve: the daemon. One thread, the pass loop, runs every reconcile
 * pass: every reconcile_interval (plus up to 25% random delay, so many
 * managers do not hit GitHub in step) and whenever triggered; triggers that
 * arrive during a pass merge into one next pass, in the strongest mode asked
 * (flush busy > flush idle > normal). A control request that acts (reconcile,
 * flush) triggers the loop and waits, bounded, for the report of a pass that
 * started after it; drain and resume set the flag and trigger. SIGTERM/SIGINT
 * stop it within seconds and leave instances running (a restart adopts
 * them); SIGHUP reloads the config on the pass loop, between two passes,
 * keeping the old one when the new one is invalid. It must never run a pass
 * on an HTTP thread, nor make the signal thread wait for a pass (SIGTERM
 * would wait behind it).
 */
#include "util/common.h"
#include "cmd.h"
#include "control.h"
#include "http/server.h"
#include "manager/manager.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strutil.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sys/random.h>

/*
 * How long a control request waits for its pass: below the CLI's own 600 s,
 * so it hears why rather than timing out itself. The pass goes on.
 */
#define CONTROL_WAIT_MS (570 * 1000)
#define REPORT_MAX      (64 << 20)

/* A control request waiting for a pass (it lives on its handler's stack). */
struct waiter {
	uint64_t pass;   /* the first pass that starts after the request */
	bool done;       /* that pass ended: status and json are set */
	int status;      /* 200, or 500 when its report could not be written */
	struct buf json; /* the report, or the error */
	struct waiter *next;
};

struct daemon {
	struct manager *m;
	struct config *cfg;
	const char *config_path; /* what SIGHUP reloads */
	pthread_mutex_t lock;    /* guards everything below */
	pthread_cond_t cond;     /* to the loop: triggered, or stop (CLOCK_MONOTONIC) */
	pthread_cond_t ended;    /* to waiters: a pass ended, or stop (CLOCK_MONOTONIC) */
	bool stop;
	bool trigger;
	bool reload;            /* SIGHUP: the loop reloads before its next pass */
	enum plan_mode mode;    /* of the next pass: the strongest asked */
	uint64_t started;       /* passes started; pass n is the n-th */
	struct waiter *waiters; /* requests for a pass not yet ended */
	struct manager_report last;
	bool have_last;
	uint64_t passes;
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
	d->passes++;
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

/* Hand pass n's report to the requests that wait for it. */
static void answer_waiters(struct daemon *d, uint64_t n, const struct manager_report *r)
{
	struct buf json = BUF_INIT(REPORT_MAX);
	struct waiter **wp;
	bool any = false;
	int jr = 0;

	/* who waits for pass n registered before it started: none can join now */
	pthread_mutex_lock(&d->lock);
	for (struct waiter *w = d->waiters; w && !any; w = w->next)
		any = w->pass <= n;
	pthread_mutex_unlock(&d->lock);
	if (!any)
		return;
	jr = manager_report_json(r, manager_draining(d->m), &json);
	if (jr < 0)
		log_error("control: the report of pass %" PRIu64 ": %s", n, strerror(-jr));
	pthread_mutex_lock(&d->lock);
	for (wp = &d->waiters; *wp;) {
		struct waiter *w = *wp;
		if (w->pass > n) {
			wp = &w->next;
			continue;
		}
		int ar = jr < 0 ? jr : buf_append(&w->json, json.data ? json.data : "", json.len);

		*wp = w->next;
		w->status = 200;
		if (ar < 0) {
			w->status = 500;
			buf_reset(&w->json);
			buf_printf(&w->json, "the report: %s", strerror(-ar));
		}
		w->done = true;
	}
	pthread_cond_broadcast(&d->ended);
	pthread_mutex_unlock(&d->lock);
	buf_release(&json);
}

static void run_pass(struct daemon *d, uint64_t n, enum plan_mode mode)
{
	struct manager_report r;
	struct err e = {0};

	if (manager_reconcile(d->m, mode, &r, &e) < 0)
		log_error("reconcile: %s", e.msg);
	log_pass(&r);
	answer_waiters(d, n, &r);
	keep_report(d, &r);
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
			deadline = deadline_in(jittered_ms(d->cfg->manager.reconcile_interval));
			timer = true;
		}
		while (!d->stop && !d->trigger && !d->reload) {
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
		d->trigger = false;
		mode = d->mode;
		d->mode = PLAN_NORMAL;
		n = ++d->started;
		pthread_mutex_unlock(&d->lock);
		if (stop)
			break;
		run_pass(d, n, mode);
	}
	return NULL;
}

static void trigger(struct daemon *d)
{
	pthread_mutex_lock(&d->lock);
	d->trigger = true;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

/*
 * Trigger a pass in mode and wait (bounded) for the report of a pass that
 * started after now, which covers mode: the next one to start takes the
 * strongest mode asked. Fills resp with it, or says why not.
 */
static void request_pass(struct daemon *d, enum plan_mode mode, struct http_response *resp)
{
	struct waiter w = {.json = BUF_INIT(REPORT_MAX)};
	struct timespec deadline = deadline_in(CONTROL_WAIT_MS);
	bool stopping;

	pthread_mutex_lock(&d->lock);
	if (!d->stop) {
		w.pass = d->started + 1;
		if (mode > d->mode)
			d->mode = mode;
		d->trigger = true;
		w.next = d->waiters;
		d->waiters = &w;
		pthread_cond_broadcast(&d->cond);
		while (!w.done && !d->stop) {
			if (pthread_cond_timedwait(&d->ended, &d->lock, &deadline) == ETIMEDOUT)
				break;
		}
		if (!w.done) {
			/* not answered: leave the list before the stack frame goes */
			for (struct waiter **wp = &d->waiters; *wp; wp = &(*wp)->next) {
				if (*wp == &w) {
					*wp = w.next;
					break;
				}
			}
		}
	}
	stopping = d->stop;
	pthread_mutex_unlock(&d->lock);
	if (w.done && w.status == 200)
		http_response_json(resp, 200, buf_str(&w.json));
	else if (w.done)
		http_response_error(resp, w.status, buf_str(&w.json));
	else if (stopping)
		http_response_error(resp, 503, "runnerd is stopping");
	else
		http_response_error(resp, 504,
		                    "no pass ended in time: the pass goes on (see runnerd status)");
	buf_release(&w.json);
}

/* ---- control API ------------------------------------------------------ */

static void h_status(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct daemon *d = ctx;
	struct buf out = BUF_INIT(64 << 20);
	struct manager_report r;
	struct err e = {0};
	bool have = true;
	int jr;

	/* status is now, not the last pass: observe (after a running pass
	 * ends); an unchanged GitHub list costs no rate limit */
	if (manager_observe(d->m, &r, &e) == 0) {
		jr = manager_report_json(&r, manager_draining(d->m), &out);
	} else {
		pthread_mutex_lock(&d->lock);
		have = d->have_last;
		jr = have ? manager_report_json(&d->last, manager_draining(d->m), &out) : 0;
		pthread_mutex_unlock(&d->lock);
	}
	manager_report_release(&r);
	if (!have)
		http_response_error(resp, 503, e.msg);
	else if (jr < 0)
		http_response_error(resp, 500, strerror(-jr));
	else
		http_response_json(resp, 200, buf_str(&out));
	buf_release(&out);
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
	request_pass(d, mode, resp);
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

/* What the loader found doubtful (open secret files, ...): logged, not fatal. */
static void log_config_warnings(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->warnings.n; i++)
		log_warn("%s", cfg->warnings.v[i]);
}

/* SIGHUP, on the pass loop between two passes (a status request observing ends first). */
static void reload(struct daemon *d)
{
	const char *path = d->config_path;
	struct config *ncfg = NULL;
	struct err e = {0};

	log_info("SIGHUP: reloading %s", path);
	if (cmd_load_config(path, &ncfg) < 0) {
		log_error("reload refused: the new config is invalid; keeping the old one");
		return;
	}
	log_config_warnings(ncfg);
	if (manager_reload(d->m, ncfg, &e) < 0) {
		log_error("reload refused: %s; keeping the old one", e.msg);
		config_free(ncfg);
		return;
	}
	pthread_mutex_lock(&d->lock);
	struct config *old = d->cfg;
	d->cfg = ncfg;
	pthread_mutex_unlock(&d->lock);
	config_free(old);
	log_info("reloaded: %zu flavors", ncfg->n_flavors);
	trigger(d);
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
	struct daemon d = {0};
	struct http_server *ctl = NULL;
	const char *cpath = NULL;
	char sock[PATH_MAX];
	struct err e = {0};
	sigset_t set;
	pthread_t loop;
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
	cond_init_mono(&d.ended);

	control_socket_path(d.cfg, sock, sizeof(sock));
	if (http_server_start_unix(sock, 0600, geteuid(), control_routes,
	                           ARRAY_SIZE(control_routes), &d, &ctl, &e) < 0) {
		log_error("control socket %s: %s", sock, e.msg);
		goto out;
	}
	log_info("runnerd %s serving: manager %s, %zu flavors, control %s", RUNNERD_VERSION,
	         d.cfg->manager.name, d.cfg->n_flavors, sock);

	d.trigger = true; /* a first pass at once */
	if (pthread_create(&loop, NULL, loop_main, &d) != 0) {
		log_error("cannot start the reconcile loop");
		goto out;
	}
	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			/* the loop reloads: this thread stays free for SIGTERM */
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
	pthread_mutex_lock(&d.lock);
	d.stop = true;
	pthread_cond_broadcast(&d.cond);
	pthread_cond_broadcast(&d.ended);
	pthread_mutex_unlock(&d.lock);
	manager_cancel(d.m);
	http_server_stop(ctl);
	ctl = NULL;
	pthread_join(loop, NULL);
	rc = 0;
out:
	http_server_stop(ctl);
	manager_report_release(&d.last);
	manager_free(d.m);
	config_free(d.cfg);
	pthread_mutex_destroy(&d.lock);
	pthread_cond_destroy(&d.cond);
	pthread_cond_destroy(&d.ended);
	log_info("stopped");
	return rc;
}
