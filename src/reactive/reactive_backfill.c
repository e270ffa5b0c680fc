/*
 * The backfill of missed webhooks, every backfill_interval: the sweep of
 * the queued runs (reactive_runs.c), and with webhook.hook_id the hook's
 * failed deliveries. GitHub does not
 * redeliver a failed delivery by itself, so every backfill_interval the
 * pass loop lists the hook's failed deliveries (a conditional request: free
 * while none failed anew) and asks GitHub to redeliver each workflow_job
 * one the intake never recorded; the redelivery comes through the intake
 * like any delivery. It must never redeliver what the intake has seen, one
 * delivery more than once a run, nor more than a few a run.
 */
#include "util/common.h"
#include "reactive/reactive_internal.h"
#include "util/clock.h"
#include "util/log.h"

/* Redeliveries asked in one run at most. */
#define BACKFILL_PER_RUN 20
/* Attempts of one delivery (the first and redeliveries) before the backfill gives up on it. */
#define BACKFILL_ATTEMPTS_MAX 5
/* Deliveries older than this are left alone: their jobs are long decided. */
#define BACKFILL_MAX_AGE_S (6 * 3600)

/* Attempts of guid in the list, and whether one is younger than since (unix s). */
static size_t attempts_of(const struct github_hook_delivery_list *l, const char *guid,
                          int64_t since, bool *ret_recent)
{
	size_t n = 0;

	*ret_recent = false;
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].guid, guid) != 0)
			continue;
		n++;
		if (l->v[i].redelivery && l->v[i].delivered_at >= since)
			*ret_recent = true;
	}
	return n;
}

static void backfill_run(struct reactive *rx, const struct config *cfg, struct github *gh,
                         int64_t now_s)
{
	struct github_hook_delivery_list l = {0};
	struct err e = {0};
	size_t asked = 0;
	int r;

	r = github_list_failed_deliveries(gh, cfg->webhook.hook_id, &l, &e);
	if (r < 0) {
		log_warn("backfill: %s (tried again in %" PRId64 " s)", e.msg,
		         cfg->webhook.backfill_interval);
		return;
	}
	for (size_t i = 0; i < l.n && asked < BACKFILL_PER_RUN; i++) {
		const struct github_hook_delivery *d = &l.v[i];
		bool seen = false, recent, first = true;
		size_t n;

		if (strcmp(d->event, "workflow_job") != 0 || !d->guid[0] ||
		    now_s - d->delivered_at > BACKFILL_MAX_AGE_S)
			continue;
		/* newest first: only the newest attempt of a delivery is looked at */
		for (size_t k = 0; k < i && first; k++)
			first = strcmp(l.v[k].guid, d->guid) != 0;
		if (!first)
			continue;
		if (store_delivery_seen(rx->store, d->guid, &seen, &e) < 0) {
			log_warn("backfill: %s", e.msg);
			break;
		}
		if (seen)
			continue; /* it reached the intake (later, or GitHub timed out on it) */
		n = attempts_of(&l, d->guid, now_s - cfg->webhook.backfill_interval, &recent);
		if (recent || n >= BACKFILL_ATTEMPTS_MAX)
			continue;
		asked++;
		if (github_redeliver(gh, cfg->webhook.hook_id, d->id, &e) < 0) {
			/* the rest wait for the next run: a silent GitHub holds no pass loop */
			log_warn("backfill: %s", e.msg);
			break;
		}
		REACTIVE_COUNT(rx, redelivered, 1);
		log_info("backfill: delivery %s (%s %s, failed with %" PRId64 ") redelivered",
		         d->guid, d->event, d->action, d->status_code);
	}
	github_hook_delivery_list_release(&l);
}

bool reactive_backfills(const struct reactive *rx, const struct config *cfg)
{
	return cfg->webhook.hook_id > 0 || reactive_runs_wanted(rx, cfg);
}

void reactive_backfill(struct reactive *rx, const struct config *cfg, struct github *gh,
                       int64_t now)
{
	bool hook = cfg->webhook.hook_id > 0, runs = reactive_runs_wanted(rx, cfg);

	if (!gh || (!hook && !runs))
		return;
	/* a catch-up just made covered the failed deliveries too: the backfill's turn is next */
	if (hook && reactive_catch_up(rx, cfg, gh, now)) {
		rx->backfilled_at = now;
		return;
	}
	if (rx->backfilled_at && now - rx->backfilled_at < cfg->webhook.backfill_interval * 1000)
		return;
	rx->backfilled_at = now;
	if (hook)
		backfill_run(rx, cfg, gh, now / 1000);
	if (runs)
		reactive_runs_sweep(rx, cfg, gh, now);
}
