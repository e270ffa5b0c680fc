/*
 * runnerd serve: the daemon. It starts the manager, the reactive intake and
 * queue, the metrics listener, the control socket (cmd_serve_control.c) and
 * the two loops (cmd_serve_loops.c), then waits for signals on this thread.
 * A control request that acts (reconcile, flush) triggers the pass loop and
 * waits, bounded, for the report of a pass that started after it; drain and
 * resume set the flag and trigger. SIGTERM/SIGINT stop it within seconds and
 * leave instances running (a restart adopts them); SIGHUP opens the events
 * log again (logrotate) and reloads the config on the pass loop, between two
 * passes, keeping the old one when the new one is invalid. It must never run
 * a pass or an observation on an HTTP thread, nor make the signal thread
 * wait for a pass (SIGTERM would wait behind it).
 */
#include "util/common.h"
#include "cmd.h"
#include "cmd_serve.h"
#include "control.h"
#include "daemon/serve_metrics.h"
#include "reactive/reactive.h"
#include "util/log.h"

#include <getopt.h>
#include <signal.h>

static void cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
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

void serve_reload(struct daemon *d)
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
	serve_trigger(d);
}

/* Reactive mode: the queue, and the intake when a secret is configured. */
static int start_reactive(struct daemon *d)
{
	struct manager_hooks hooks;
	struct err e = {0};
	int r;

	r = reactive_start(d->cfg, manager_store(d->m),
	                   &(struct reactive_triggers){.now = serve_trigger_cb,
	                                               .later = serve_trigger_later_cb,
	                                               .ctx = d},
	                   &d->rx, &e);
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
	serve_control_options(&copts);
	if (http_server_start_unix_opts(sock, 0600, geteuid(), serve_control_routes,
	                                serve_n_control_routes, &d, &copts, &ctl, &e) < 0) {
		log_error("control socket %s: %s", sock, e.msg);
		goto out;
	}
	log_info("runnerd %s serving: manager %s, %zu flavors, control %s", RUNNERD_VERSION,
	         d.cfg->manager.name, d.cfg->n_flavors, sock);

	d.passes.trigger = true; /* a first pass at once */
	d.full_asked = true;
	if (pthread_create(&loop, NULL, serve_pass_loop, &d) != 0) {
		log_error("cannot start the reconcile loop");
		goto stop;
	}
	looping = true;
	if (pthread_create(&looker, NULL, serve_status_loop, &d) != 0) {
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
	pthread_mutex_unlock(&d.lock);
	serve_answer_stopping(&d);
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
