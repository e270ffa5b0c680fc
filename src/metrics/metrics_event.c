/*
 * An event as the line the events log gets: one JSON object with the
 * original's field names (github-runner-operator's metrics/events.py,
 * written there with exclude_none), numbers as Python prints its floats.
 * It must never write past its bound nor a line that is not whole.
 */
#include "util/common.h"
#include "metrics/metrics_event.h"
#include "util/buf.h"

#include <math.h>

static const char *const kind_names[] = {
        [METRICS_EVENT_RUNNER_INSTALLED] = "runner_installed",
        [METRICS_EVENT_RUNNER_START] = "runner_start",
        [METRICS_EVENT_RUNNER_STOP] = "runner_stop",
        [METRICS_EVENT_RECONCILIATION] = "reconciliation",
};

const char *metrics_event_name(enum metrics_event_kind k)
{
	return (size_t)k < ARRAY_SIZE(kind_names) ? kind_names[k] : "invalid";
}

/*
 * A float as Python's repr gives it: in plain notation from 1e-4 to 1e16,
 * with the fewest decimals (at least one) that read back the same
 * (1700000000.0, 30.5); elsewhere the shortest %g that does. Not finite:
 * 0.0 (JSON has no infinity; the fields are clamped before they get here).
 */
static int put_float(struct buf *b, double v)
{
	char text[48];
	double a = fabs(v);

	if (!isfinite(v))
		v = a = 0;
	if (a == 0 || (a >= 1e-4 && a < 1e16)) {
		for (int d = 1; d <= 17; d++) {
			snprintf(text, sizeof(text), "%.*f", d, v);
			if (strtod(text, NULL) == v)
				return buf_puts(b, text);
		}
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(text, sizeof(text), "%.*g", prec, v);
		if (strtod(text, NULL) == v)
			break;
	}
	return buf_puts(b, text);
}

static int key(struct buf *b, const char *k)
{
	return buf_printf(b, ",\"%s\":", k);
}

static int put_str(struct buf *b, const char *k, const char *v)
{
	int r = key(b, k);
	return r < 0 ? r : buf_json_string(b, v);
}

static int put_num(struct buf *b, const char *k, double v)
{
	int r = key(b, k);
	return r < 0 ? r : put_float(b, v);
}

static int put_int(struct buf *b, const char *k, int64_t v)
{
	return buf_printf(b, ",\"%s\":%" PRId64, k, v);
}

static int job_fields(struct buf *b, const struct metrics_event *ev)
{
	int r;

	if ((r = put_str(b, "workflow", ev->workflow)) < 0 ||
	    (r = put_str(b, "repo", ev->repo)) < 0 ||
	    (r = put_str(b, "github_event", ev->github_event)) < 0)
		return r;
	return 0;
}

static int fields(struct buf *b, const struct metrics_event *ev)
{
	int r;

	if ((r = buf_puts(b, "{\"event\":")) < 0 ||
	    (r = buf_json_string(b, metrics_event_name(ev->kind))) < 0 ||
	    (r = put_num(b, "timestamp", ev->timestamp)) < 0 ||
	    (r = put_str(b, "flavor", ev->flavor)) < 0)
		return r;
	switch (ev->kind) {
	case METRICS_EVENT_RUNNER_INSTALLED:
		r = put_num(b, "duration", ev->duration);
		break;
	case METRICS_EVENT_RUNNER_START:
		if ((r = job_fields(b, ev)) < 0 || (r = put_num(b, "idle", ev->idle)) < 0)
			break;
		if (ev->has_queue_duration)
			r = put_num(b, "queue_duration", ev->queue_duration);
		break;
	case METRICS_EVENT_RUNNER_STOP:
		if ((r = job_fields(b, ev)) < 0 || (r = put_str(b, "status", ev->status)) < 0)
			break;
		if (ev->has_status_code &&
		    (r = buf_printf(b, ",\"status_info\":{\"code\":%" PRId64 "}",
		                    ev->status_code)) < 0)
			break;
		if ((r = put_num(b, "job_duration", ev->job_duration)) < 0)
			break;
		if (ev->job_conclusion[0])
			r = put_str(b, "job_conclusion", ev->job_conclusion);
		break;
	case METRICS_EVENT_RECONCILIATION:
		if ((r = put_int(b, "crashed_runners", ev->crashed_runners)) < 0 ||
		    (r = put_int(b, "idle_runners", ev->idle_runners)) < 0 ||
		    (r = put_int(b, "active_runners", ev->active_runners)) < 0 ||
		    (r = put_int(b, "expected_runners", ev->expected_runners)) < 0)
			break;
		r = put_num(b, "duration", ev->duration);
		break;
	default:
		r = -EINVAL;
	}
	return r < 0 ? r : buf_puts(b, "}\n");
}

int metrics_event_json(const struct metrics_event *ev, char *out, size_t cap)
{
	struct buf b;
	int r;

	if (cap == 0)
		return -E2BIG;
	out[0] = '\0';
	buf_init(&b, cap - 1);
	r = fields(&b, ev);
	if (r == 0) {
		memcpy(out, buf_str(&b), b.len + 1);
		r = (int)b.len;
	} else if (r == -E2BIG || r == -ENOMEM) {
		r = r == -ENOMEM ? -ENOMEM : -E2BIG;
	}
	buf_release(&b);
	return r;
}
