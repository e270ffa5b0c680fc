/*
 * The control API of runnerd serve (status, reconcile, flush, drain,
 * resume) on the control socket, and the requests that wait for a run of a
 * loop: reconcile and flush for a pass that started after them, status for
 * an observation (requests during one share the next) or, when a running
 * pass holds observations up too long, the last pass's report. Those that
 * wait are deferred: they hold no HTTP thread, so a burst of them never
 * keeps another request from being served.
 */
#include "util/common.h"
#include "cmd_serve.h"
#include "util/log.h"
#include "util/strutil.h"

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
/* The control socket: handlers are short (those that wait are deferred). */
#define CONTROL_THREADS         8
#define CONTROL_MAX_CONNECTIONS 512

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

void serve_answer_waiters(struct daemon *d, struct lane *l, uint64_t n,
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

void serve_answer_unobserved(struct daemon *d, uint64_t n, const char *why)
{
	struct http_response resp;
	struct waiter *list;

	pthread_mutex_lock(&d->lock);
	list = lane_take(&d->looks, n);
	pthread_mutex_unlock(&d->lock);
	http_response_init(&resp);
	last_report_response(d, why, &resp);
	answer_list(list, &resp);
	http_response_release(&resp);
}

void serve_answer_stopping(struct daemon *d)
{
	struct waiter *passes, *looks;

	pthread_mutex_lock(&d->lock);
	passes = lane_take(&d->passes, UINT64_MAX);
	looks = lane_take(&d->looks, UINT64_MAX);
	pthread_mutex_unlock(&d->lock);
	answer_error(passes, 503, "runnerd is stopping");
	answer_error(looks, 503, "runnerd is stopping");
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
		if (l == &d->passes)
			d->full_asked = true; /* what an operator asks for: everything */
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
	serve_trigger(d);
	http_response_json(resp, 200, on ? "{\"draining\":true}\n" : "{\"draining\":false}\n");
}

const struct http_route serve_control_routes[] = {
        {"GET", "/v1/status", h_status, 0},    {"POST", "/v1/reconcile", h_reconcile, 0},
        {"POST", "/v1/flush", h_reconcile, 0}, {"POST", "/v1/drain", h_drain, 0},
        {"POST", "/v1/resume", h_drain, 0},
};

const size_t serve_n_control_routes = ARRAY_SIZE(serve_control_routes);

/*
 * The control socket's limits: room for a burst of CLI requests and of
 * requests waiting for a pass (each holds a connection, not a thread), at
 * most a quarter of the descriptors this process may open; more wait in the
 * listen queue.
 */
void serve_control_options(struct http_server_options *o)
{
	struct rlimit rl;
	unsigned max = CONTROL_MAX_CONNECTIONS;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 4 < max)
		max = rl.rlim_cur / 4 < 16 ? 16 : (unsigned)(rl.rlim_cur / 4);
	*o = (struct http_server_options){.threads = CONTROL_THREADS, .max_connections = max};
}
