/*
 * How long the intake takes to answer: every POST /webhook's time from
 * read whole to answered, counted in buckets for the Prometheus histogram
 * (runnerd_webhook_answer_duration_seconds), and for the deliveries the
 * group commit writes, where that time went (/healthz), so a slow disk
 * (the commit) tells itself apart from a busy machine (the wait for it,
 * the answer after it). Counting takes the counters' mutex for a few adds.
 */
#include "util/common.h"
#include "reactive/reactive_internal.h"
#include "util/clock.h"

/* From well under a millisecond (a duplicate) to GitHub's 10 s limit. */
const double reactive_answer_bounds[REACTIVE_ANSWER_BOUNDS] = {
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

void reactive_stats_answered(struct reactive_stats *st, int64_t us)
{
	double s;

	if (us < 0)
		us = 0; /* not on a monotonic clock, but cheap to guard */
	s = (double)us / 1e6;
	for (size_t i = 0; i < REACTIVE_ANSWER_BOUNDS; i++)
		if (s <= reactive_answer_bounds[i]) {
			st->answer_in[i]++;
			break;
		}
	st->answered++;
	st->answer_us += (uint64_t)us;
}

void reactive_answered(struct reactive *rx, int64_t since_us)
{
	int64_t us = clock_mono_us() - since_us;

	pthread_mutex_lock(&rx->stats_lock);
	reactive_stats_answered(&rx->stats, us);
	pthread_mutex_unlock(&rx->stats_lock);
}

static uint64_t span(int64_t from, int64_t to)
{
	return to > from ? (uint64_t)(to - from) : 0;
}

void reactive_staged(struct reactive *rx, const struct reactive_stages *t, int64_t answered)
{
	pthread_mutex_lock(&rx->stats_lock);
	reactive_stats_answered(&rx->stats, answered - t->received);
	rx->stats.staged++;
	rx->stats.stage_parse_us += span(t->received, t->submitted);
	rx->stats.stage_wait_us += span(t->submitted, t->began);
	rx->stats.stage_write_us += span(t->began, t->ended);
	rx->stats.stage_report_us += span(t->ended, answered);
	pthread_mutex_unlock(&rx->stats_lock);
}
