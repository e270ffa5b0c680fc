/*
 * Reactive mode's counters as Prometheus families (reactive.h): what the
 * intake answered, why jobs got no runner, what the consumer did. A scrape
 * builds them afresh from a copy of the counters taken under their own
 * mutex (held for one struct copy), so it never waits for a pass nor a
 * pass for it. The jobs waiting per flavor are not here: that gauge is in
 * the snapshot of each pass (runnerd_jobs_waiting, the planner's input).
 * It must never read anything but the counters.
 */
#include "util/common.h"
#include "reactive/reactive_internal.h"

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})
#define V(...) ((const char *const[]){__VA_ARGS__})

/* u - d, never below 0 (each counter is copied at once, so only a bug could make it so) */
static double minus(uint64_t u, uint64_t d)
{
	return u > d ? (double)(u - d) : 0;
}

static int put_deliveries(const struct reactive_stats *st, struct prom_registry *reg)
{
	struct prom_family *d, *refused;
	uint64_t ignored = 0;
	int rc;

	for (size_t i = 0; i < ARRAY_SIZE(st->ignored); i++)
		ignored += st->ignored[i];
	rc = prom_family_new(reg, PROM_COUNTER, "runnerd_webhook_deliveries_total",
	                     "Signed, well-formed webhook deliveries the intake answered, by event "
	                     "(workflow_job, ping, other) and result (queued, known: a job queued "
	                     "already, done: in_progress/completed ended a wait, ignored, "
	                     "duplicate: a delivery id seen before, error: not recorded, 500).",
	                     L("event", "result"), NULL, 0, &d);
	if (rc == 0)
		rc = prom_family_new(reg, PROM_COUNTER, "runnerd_webhook_refusals_total",
		                     "Webhook requests refused before anything was stored, by HTTP "
		                     "status (401: signature missing or wrong; 400/413/415: "
		                     "malformed). Bodies over webhook.max_body are refused by the "
		                     "HTTP server unread and not counted here.",
		                     L("status"), NULL, 0, &refused);
	if (rc == 0)
		rc = prom_set(d, V("workflow_job", "queued"), (double)st->queued);
	if (rc == 0)
		rc = prom_set(d, V("workflow_job", "known"), (double)st->known);
	if (rc == 0)
		rc = prom_set(d, V("workflow_job", "done"), (double)st->acked);
	if (rc == 0)
		rc = prom_set(d, V("workflow_job", "ignored"), (double)ignored);
	if (rc == 0)
		rc = prom_set(d, V("workflow_job", "duplicate"), (double)st->duplicates);
	if (rc == 0)
		rc = prom_set(d, V("workflow_job", "error"), (double)st->errors);
	if (rc == 0)
		rc = prom_set(d, V("ping", "ok"), (double)st->pings);
	if (rc == 0)
		rc = prom_set(d, V("other", "ignored"), (double)st->other_events);
	if (rc == 0)
		rc = prom_set(refused, V("401"), (double)st->unauthorized);
	if (rc == 0)
		rc = prom_set(refused, V("400"), (double)st->refused_400);
	if (rc == 0)
		rc = prom_set(refused, V("413"), (double)st->refused_413);
	if (rc == 0)
		rc = prom_set(refused, V("415"), (double)st->refused_415);
	if (rc == 0)
		rc = prom_set(refused, V("other"), (double)st->refused_other);
	return rc;
}

static int put_jobs(const struct reactive_stats *st, struct prom_registry *reg)
{
	struct prom_family *routed, *ignored, *made, *rechecks, *retries, *dropped, *redelivered;
	int rc = prom_family_new(reg, PROM_COUNTER, "runnerd_reactive_jobs_routed_total",
	                         "Queued jobs routed to a flavor and pushed to the job queue.",
	                         NULL, NULL, 0, &routed);

	if (rc == 0)
		rc = prom_family_new(
		        reg, PROM_COUNTER, "runnerd_reactive_jobs_ignored_total",
		        "workflow_job deliveries that need no runner of this manager, by "
		        "reason (other-repository: not of github.path; no-flavor: no "
		        "flavor has every label; action: waiting, or an action runnerd "
		        "does not act on).",
		        L("reason"), NULL, 0, &ignored);
	if (rc == 0)
		rc = prom_family_new(reg, PROM_COUNTER, "runnerd_reactive_runners_made_total",
		                     "Runners assigned to waiting jobs (made, or idle, by a pass).",
		                     NULL, NULL, 0, &made);
	if (rc == 0)
		rc = prom_family_new(
		        reg, PROM_COUNTER, "runnerd_reactive_rechecks_total",
		        "Waiting jobs asked of GitHub because no in_progress/completed "
		        "webhook came, by result (ended: in_progress or completed; gone: "
		        "GitHub no longer knows it; other: still queued or no answer).",
		        L("result"), NULL, 0, &rechecks);
	if (rc == 0)
		rc = prom_family_new(
		        reg, PROM_COUNTER, "runnerd_reactive_job_retries_total",
		        "Jobs still queued after a runner was made for them, backed off "
		        "to be counted again.",
		        NULL, NULL, 0, &retries);
	if (rc == 0)
		rc = prom_family_new(
		        reg, PROM_COUNTER, "runnerd_reactive_jobs_dropped_total",
		        "Jobs taken off the queue unserved, by reason (gone: GitHub no "
		        "longer knows them; retries: queue.max_attempts runners were "
		        "made for them).",
		        L("reason"), NULL, 0, &dropped);
	if (rc == 0)
		rc = prom_family_new(reg, PROM_COUNTER,
		                     "runnerd_reactive_backfill_redeliveries_total",
		                     "Failed workflow_job deliveries the backfill asked GitHub to "
		                     "redeliver (webhook.hook_id).",
		                     NULL, NULL, 0, &redelivered);
	if (rc == 0)
		rc = prom_set(routed, NULL, (double)st->queued);
	if (rc == 0)
		rc = prom_set(ignored, V(webhook_skip_name(WEBHOOK_SKIP_REPO)),
		              (double)st->ignored[WEBHOOK_SKIP_REPO]);
	if (rc == 0)
		rc = prom_set(ignored, V(webhook_skip_name(WEBHOOK_SKIP_NO_FLAVOR)),
		              (double)st->ignored[WEBHOOK_SKIP_NO_FLAVOR]);
	if (rc == 0)
		rc = prom_set(ignored, V("action"), (double)st->ignored[WEBHOOK_SKIP__MAX]);
	if (rc == 0)
		rc = prom_set(made, NULL, (double)st->runners_made);
	if (rc == 0)
		rc = prom_set(rechecks, V("ended"), (double)st->recheck_done);
	if (rc == 0)
		rc = prom_set(rechecks, V("gone"), (double)st->gone);
	if (rc == 0)
		rc = prom_set(rechecks, V("other"),
		              minus(st->rechecks, st->recheck_done + st->gone));
	if (rc == 0)
		rc = prom_set(retries, NULL, (double)st->retries);
	if (rc == 0)
		rc = prom_set(dropped, V("gone"), (double)st->gone);
	if (rc == 0)
		rc = prom_set(dropped, V("retries"), (double)st->dropped);
	if (rc == 0)
		rc = prom_set(redelivered, NULL, (double)st->redelivered);
	return rc;
}

int reactive_prom_put(const struct reactive_stats *st, struct prom_registry *reg)
{
	int rc = put_deliveries(st, reg);

	return rc < 0 ? rc : put_jobs(st, reg);
}

int reactive_prom_collect(void *ctx, struct prom_registry *reg)
{
	struct reactive_stats st;

	reactive_get_stats(ctx, &st);
	return reactive_prom_put(&st, reg);
}
