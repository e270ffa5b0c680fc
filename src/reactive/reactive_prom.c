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

enum fam {
	F_DELIVERIES,
	F_REFUSALS,
	F_ROUTED,
	F_IGNORED,
	F_MADE,
	F_RECHECKS,
	F_RETRIES,
	F_DROPPED,
	F_REDELIVERED,
	F_CAUGHT_UP,
	F_LISTED,
	F_JOURNAL_FAILED,
	F__COUNT
};

/* Every family a counter, in this order. */
static const struct {
	const char *name, *help;
	const char *const *labels;
} fams[F__COUNT] = {
        [F_DELIVERIES] = {"runnerd_webhook_deliveries_total",
                          "Signed, well-formed webhook deliveries the intake answered, by event "
                          "(workflow_job, ping, other) and result (queued, known: a job queued "
                          "already, done: in_progress/completed ended a wait, ignored, "
                          "duplicate: a delivery id seen before, error: not recorded, 500).",
                          L("event", "result")},
        [F_REFUSALS] = {"runnerd_webhook_refusals_total",
                        "Webhook requests refused before anything was stored, by HTTP status "
                        "(401: signature missing or wrong; 400/413/415: malformed). Bodies over "
                        "webhook.max_body are refused by the HTTP server unread and not counted "
                        "here.",
                        L("status")},
        [F_ROUTED] = {"runnerd_reactive_jobs_routed_total",
                      "Queued jobs routed to a flavor and pushed to the job queue.", NULL},
        [F_IGNORED] = {"runnerd_reactive_jobs_ignored_total",
                       "workflow_job deliveries that need no runner of this manager, by reason "
                       "(other-repository: not of github.path; no-flavor: no flavor has every "
                       "label; action: waiting, or an action runnerd does not act on).",
                       L("reason")},
        [F_MADE] = {"runnerd_reactive_runners_made_total",
                    "Runners assigned to waiting jobs (made, or idle, by a pass).", NULL},
        [F_RECHECKS] = {"runnerd_reactive_rechecks_total",
                        "Waiting jobs asked of GitHub because no in_progress/completed webhook "
                        "came, by result (ended: in_progress or completed; gone: GitHub no "
                        "longer knows it; other: still queued or no answer).",
                        L("result")},
        [F_RETRIES] = {"runnerd_reactive_job_retries_total",
                       "Jobs still queued after a runner was made for them, backed off to be "
                       "counted again.",
                       NULL},
        [F_DROPPED] = {"runnerd_reactive_jobs_dropped_total",
                       "Jobs taken off the queue unserved, by reason (gone: GitHub no longer "
                       "knows them; retries: queue.max_attempts runners were made for them).",
                       L("reason")},
        [F_REDELIVERED] = {"runnerd_reactive_backfill_redeliveries_total",
                           "Failed workflow_job deliveries the backfill asked GitHub to "
                           "redeliver (webhook.hook_id).",
                           NULL},
        [F_CAUGHT_UP] = {"runnerd_reactive_catch_up_redeliveries_total",
                         "workflow_job deliveries answered before their fsync and lost with a "
                         "power cut, which the catch-up after the reboot asked GitHub to "
                         "redeliver (webhook.answer_after write, webhook.hook_id).",
                         NULL},
        [F_LISTED] = {"runnerd_reactive_jobs_listed_total",
                      "Jobs queued on GitHub that no webhook brought, found in the "
                      "repository's queued and in-progress runs and queued (repository "
                      "scope, the sqlite queue; every webhook.backfill_interval).",
                      NULL},
        [F_JOURNAL_FAILED] = {"runnerd_webhook_journal_failures_total",
                              "Commits of the intake journal's thread into the state "
                              "database that failed (webhook.answer_after write): the "
                              "deliveries stay in the journal and are tried again.",
                              NULL},
};

/* One series: its family, its label values (NULL: none), its value. */
struct series {
	enum fam f;
	const char *v[2];
	uint64_t n;
};

int reactive_prom_put(const struct reactive_stats *st, struct prom_registry *reg)
{
	uint64_t ignored = 0, other;
	struct prom_family *f[F__COUNT], *answers;
	int rc = 0;

	for (size_t i = 0; i < ARRAY_SIZE(st->ignored); i++)
		ignored += st->ignored[i];
	/* (each counter is copied at once: only a bug could make this negative) */
	other = st->rechecks > st->recheck_done + st->gone
	                ? st->rechecks - st->recheck_done - st->gone
	                : 0;
	const struct series s[] = {
	        {F_DELIVERIES, {"workflow_job", "queued"}, st->queued},
	        {F_DELIVERIES, {"workflow_job", "known"}, st->known},
	        {F_DELIVERIES, {"workflow_job", "done"}, st->acked},
	        {F_DELIVERIES, {"workflow_job", "ignored"}, ignored},
	        {F_DELIVERIES, {"workflow_job", "duplicate"}, st->duplicates},
	        {F_DELIVERIES, {"workflow_job", "error"}, st->errors},
	        {F_DELIVERIES, {"ping", "ok"}, st->pings},
	        {F_DELIVERIES, {"other", "ignored"}, st->other_events},
	        {F_REFUSALS, {"401"}, st->unauthorized},
	        {F_REFUSALS, {"400"}, st->refused_400},
	        {F_REFUSALS, {"413"}, st->refused_413},
	        {F_REFUSALS, {"415"}, st->refused_415},
	        {F_REFUSALS, {"other"}, st->refused_other},
	        {F_ROUTED, {NULL}, st->queued},
	        {F_IGNORED, {webhook_skip_name(WEBHOOK_SKIP_REPO)}, st->ignored[WEBHOOK_SKIP_REPO]},
	        {F_IGNORED,
	         {webhook_skip_name(WEBHOOK_SKIP_NO_FLAVOR)},
	         st->ignored[WEBHOOK_SKIP_NO_FLAVOR]},
	        {F_IGNORED, {"action"}, st->ignored[WEBHOOK_SKIP__MAX]},
	        {F_MADE, {NULL}, st->runners_made},
	        {F_RECHECKS, {"ended"}, st->recheck_done},
	        {F_RECHECKS, {"gone"}, st->gone},
	        {F_RECHECKS, {"other"}, other},
	        {F_RETRIES, {NULL}, st->retries},
	        {F_DROPPED, {"gone"}, st->gone},
	        {F_DROPPED, {"retries"}, st->dropped},
	        {F_REDELIVERED, {NULL}, st->redelivered},
	        {F_CAUGHT_UP, {NULL}, st->caught_up},
	        {F_LISTED, {NULL}, st->listed},
	        {F_JOURNAL_FAILED, {NULL}, st->journal_failed},
	};
	struct prom_family *behind;

	for (size_t i = 0; i < F__COUNT && rc == 0; i++)
		rc = prom_family_new(reg, PROM_COUNTER, fams[i].name, fams[i].help, fams[i].labels,
		                     NULL, 0, &f[i]);
	for (size_t i = 0; i < ARRAY_SIZE(s) && rc == 0; i++)
		rc = prom_set(f[s[i].f], s[i].v[0] ? s[i].v : NULL, (double)s[i].n);
	if (rc == 0)
		rc = prom_family_new(
		        reg, PROM_HISTOGRAM, "runnerd_webhook_answer_duration_seconds",
		        "Time from a POST /webhook read whole to its answer sent or handed to its "
		        "connection, every request the intake handled (refusals too). A new "
		        "delivery is answered once it is written (webhook.answer_after); GitHub "
		        "gives up after 10 s.",
		        NULL, reactive_answer_bounds, REACTIVE_ANSWER_BOUNDS, &answers);
	if (rc == 0)
		rc = prom_histogram_set(answers, NULL, st->answer_in, st->answered,
		                        (double)st->answer_us / 1e6);
	if (rc == 0)
		rc = prom_family_new(reg, PROM_GAUGE, "runnerd_webhook_journal_behind",
		                     "Deliveries answered from the intake's journal and not in the "
		                     "state database yet (webhook.answer_after write); it stays up "
		                     "while the journal's commits fail.",
		                     NULL, NULL, 0, &behind);
	if (rc == 0)
		rc = prom_set(behind, NULL, (double)st->journal_behind);
	return rc;
}

int reactive_prom_collect(void *ctx, struct prom_registry *reg)
{
	struct reactive_stats st;

	reactive_get_stats(ctx, &st);
	return reactive_prom_put(&st, reg);
}
