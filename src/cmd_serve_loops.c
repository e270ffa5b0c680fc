/*
 * The two loops of runnerd serve. The pass loop is the one thread that runs
 * reconcile passes: every reconcile_interval (plus up to 25% random delay,
 * so many managers do not hit GitHub in step) and whenever triggered;
 * triggers that arrive during a pass merge into one next pass, in the
 * strongest mode asked (flush busy > flush idle > normal); a reload (SIGHUP)
 * runs on it between two passes. The status loop runs observations, only
 * when a status request waits for one. Neither ever runs on an HTTP thread.
 */
#include "util/common.h"
#include "cmd_serve.h"
#include "reactive/reactive.h"
#include "daemon/serve_metrics.h"
#include "util/clock.h"
#include "util/log.h"

#include <sys/random.h>

/* An absolute CLOCK_MONOTONIC time ms from now, for d->cond. */
static struct timespec deadline_in(int64_t ms)
{
	int64_t at = clock_mono_ms() + ms;
	return (struct timespec){.tv_sec = at / 1000, .tv_nsec = (at % 1000) * 1000000L};
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

static void run_pass(struct daemon *d, uint64_t n, enum plan_mode mode, bool full)
{
	struct manager_report r;
	struct err e = {0};

	if (!full)
		manager_next_pass_quick(d->m);
	int rc = manager_reconcile(d->m, mode, &r, &e);

	if (rc < 0)
		log_error("reconcile: %s", e.msg);
	log_pass(&r);
	reactive_after_pass(d->rx, manager_github(d->m), &r);
	reactive_note_room(d->rx, &r, manager_draining(d->m));
	/* d->cfg is changed only on this thread (reload), between passes */
	serve_metrics_pass(d->metrics, d->cfg, &r, manager_draining(d->m), rc, e.msg);
	serve_answer_waiters(d, &d->passes, n, &r);
	keep_report(d, &r);
}

/* Observation n, for the status requests that wait for it. */
static void run_observation(struct daemon *d, uint64_t n)
{
	struct manager_report r;
	struct err e = {0};

	/* status is now, not the last pass: an unchanged GitHub list costs no rate limit */
	if (manager_observe(d->m, &r, &e) == 0)
		serve_answer_waiters(d, &d->looks, n, &r);
	else
		serve_answer_unobserved(d, n, e.msg);
	manager_report_release(&r);
}

/*
 * Under a stream of triggers, passes start at most this often, with a burst
 * of two allowed: a trigger that finds the loop idle for a while starts a
 * pass at once, and one that came during that pass starts the next at once
 * too; from then on each starts PASS_GAP_MS after the one before, until the
 * stream pauses long enough to earn the burst back (two gaps). Over any span
 * of T ms at most 2 + T / PASS_GAP_MS passes start, however the triggers
 * come. Otherwise every pass would list the provider's instances and ask
 * GitHub for its runners hundreds of times a second, for jobs that wait a
 * pass's length at most anyway.
 */
#define PASS_BURST  2
#define PASS_GAP_MS 25

static int64_t jittered_ms(int64_t interval_s)
{
	uint32_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd = 0;
	int64_t base = interval_s * 1000;
	return base + (int64_t)(rnd % (uint32_t)(base / 4 + 1));
}

/*
 * Seconds between timed passes: reconcile_interval, or backfill_interval
 * when the backfill of missed webhooks (after a pass) needs them sooner.
 */
static int64_t pass_interval(const struct daemon *d)
{
	const struct config *cfg = d->cfg;
	int64_t s = cfg->manager.reconcile_interval;

	if (reactive_backfills(d->rx, cfg) && cfg->webhook.backfill_interval < s)
		s = cfg->webhook.backfill_interval;
	return s;
}

/*
 * Under d->lock, triggered: wait until a pass may start (the rate above,
 * kept as the time the next pass would be due if they came evenly: *due_ms),
 * unless stop or a reload comes first. Triggers that arrive meanwhile join
 * the pass that follows.
 */
static void space_passes(struct daemon *d, int64_t due_ms)
{
	struct timespec until;
	int64_t at = due_ms - (PASS_BURST - 1) * PASS_GAP_MS;

	if (clock_mono_ms() >= at)
		return;
	until = (struct timespec){.tv_sec = at / 1000, .tv_nsec = (at % 1000) * 1000000L};
	while (!d->stop && !d->reload) {
		if (pthread_cond_timedwait(&d->cond, &d->lock, &until) == ETIMEDOUT)
			break;
	}
}

/* The earlier of the timed pass (deadline) and a pass asked for later. Under d->lock. */
static struct timespec next_wake(const struct daemon *d, const struct timespec *deadline)
{
	int64_t at = (int64_t)deadline->tv_sec * 1000 + deadline->tv_nsec / 1000000;

	if (d->later_at > 0 && d->later_at < at)
		return (struct timespec){.tv_sec = d->later_at / 1000,
		                         .tv_nsec = (d->later_at % 1000) * 1000000L};
	return *deadline;
}

/* The pass loop: the one thread that runs passes, and reloads between them. */
void *serve_pass_loop(void *arg)
{
	struct daemon *d = arg;
	struct timespec deadline;
	bool timer = false; /* deadline is the next timed pass (kept across a reload) */
	int64_t due_ms = 0; /* when the next pass is due at the steady rate (mono ms) */

	pthread_setname_np(pthread_self(), "pass-loop");
	for (;;) {
		enum plan_mode mode;
		uint64_t n;

		pthread_mutex_lock(&d->lock);
		if (!timer) {
			deadline = deadline_in(jittered_ms(pass_interval(d)));
			timer = true;
		}
		while (!d->stop && !d->passes.trigger && !d->reload) {
			struct timespec wake = next_wake(d, &deadline);

			/* woken early (a pass asked for later): wait again, for the earlier time */
			if (pthread_cond_timedwait(&d->cond, &d->lock, &wake) == ETIMEDOUT)
				break;
		}
		if (d->passes.trigger && !d->stop && !d->reload)
			space_passes(d, due_ms);
		if (d->reload && !d->stop) {
			d->reload = false;
			pthread_mutex_unlock(&d->lock);
			serve_reload(d); /* a reload that took triggers the next pass */
			continue;
		}
		/* the timed pass is due (not one a webhook asked for later): a full one */
		if (clock_mono_ms() >= (int64_t)deadline.tv_sec * 1000 + deadline.tv_nsec / 1000000)
			d->full_asked = true;
		bool full = d->full_asked;
		d->full_asked = false;
		timer = false;
		bool stop = d->stop;
		/* every trigger so far is served by this pass, in the strongest mode asked */
		d->passes.trigger = false;
		d->later_at = 0;
		mode = d->mode;
		d->mode = PLAN_NORMAL;
		n = ++d->passes.started;
		pthread_mutex_unlock(&d->lock);
		if (stop)
			break;
		int64_t now = clock_mono_ms();
		due_ms = (due_ms > now ? due_ms : now) + PASS_GAP_MS;
		run_pass(d, n, mode, full);
	}
	return NULL;
}

/* The status loop: observations, only when a status request waits for one. */
void *serve_status_loop(void *arg)
{
	struct daemon *d = arg;

	pthread_setname_np(pthread_self(), "observe-loop");
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

/* A pass now, merged with any asked; full: asked for by more than webhooks. */
static void trigger(struct daemon *d, bool full)
{
	pthread_mutex_lock(&d->lock);
	if (full)
		d->full_asked = true;
	/* one pending trigger: those that find it set were woken for already */
	if (!d->passes.trigger) {
		d->passes.trigger = true;
		pthread_cond_broadcast(&d->cond);
	}
	pthread_mutex_unlock(&d->lock);
}

void serve_trigger(struct daemon *d)
{
	trigger(d, true);
}

/*
 * A webhook queued a job, or one began or ended (an HTTP thread, or the
 * queue's): a pass now, merged with any asked. Passes that webhooks alone
 * asked for may leave out the sweep for leftovers (manager_next_pass_quick).
 */
void serve_trigger_cb(void *ctx)
{
	trigger(ctx, false);
}

void serve_trigger_later_cb(void *ctx)
{
	struct daemon *d = ctx;
	int64_t at = clock_mono_ms() + SERVE_LATER_MS;

	pthread_mutex_lock(&d->lock);
	/* the first asks: those after it are served by the same pass */
	if (d->later_at == 0) {
		d->later_at = at;
		pthread_cond_broadcast(&d->cond);
	}
	pthread_mutex_unlock(&d->lock);
}
