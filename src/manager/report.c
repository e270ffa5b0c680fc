/*
 * What a pass did, for people and programs: the events of its actions (each
 * logged once here, the one place that logs an action's outcome, and
 * written to the store's action log) and the report as JSON for the control
 * API and `status --json`. It must never decide anything: it records.
 */
#include "util/common.h"
#include "manager/manager_internal.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strutil.h"

void manager_report_release(struct manager_report *r)
{
	if (!r)
		return;
	free(r->events);
	plan_release(&r->plan);
	memset(r, 0, sizeof(*r));
}

void manager_report_add(struct manager *m, struct manager_report *r, const char *action,
                        const char *name, const char *flavor, const char *reason, bool ok,
                        const char *outcome)
{
	pthread_mutex_lock(&m->report_lock);
	if (r->n_events == r->cap_events) {
		size_t ncap = r->cap_events ? r->cap_events * 2 : 16;
		struct manager_event *nv = realloc(r->events, ncap * sizeof(*nv));
		if (!nv) {
			pthread_mutex_unlock(&m->report_lock);
			return;
		}
		r->events = nv;
		r->cap_events = ncap;
	}
	struct manager_event *ev = &r->events[r->n_events++];
	memset(ev, 0, sizeof(*ev));
	str_copy(ev->action, action, sizeof(ev->action));
	str_copy(ev->name, name ? name : "", sizeof(ev->name));
	str_copy(ev->flavor, flavor ? flavor : "", sizeof(ev->flavor));
	str_copy(ev->reason, reason ? reason : "", sizeof(ev->reason));
	str_copy(ev->outcome, outcome ? outcome : "ok", sizeof(ev->outcome));
	ev->ok = ok;
	pthread_mutex_unlock(&m->report_lock);

	/* the action log is best effort: a full disk must not stop cleanup */
	struct err e = {0};
	if (store_log_action(m->store, clock_wall_ms() / 1000, action, name ? name : "",
	                     reason ? reason : "", outcome ? outcome : "ok", &e) < 0)
		log_debug("action log: %s", e.msg);
	if (ok)
		log_info("%s %s%s%s%s%s%s%s", action, name && *name ? name : "",
		         flavor && *flavor ? " flavor=" : "", flavor ? flavor : "",
		         reason && *reason ? " reason=" : "", reason ? reason : "",
		         outcome && strcmp(outcome, "ok") != 0 ? ": " : "",
		         outcome && strcmp(outcome, "ok") != 0 ? outcome : "");
	else
		log_warn("%s %s%s%s failed: %s", action, name ? name : "",
		         reason && *reason ? " reason=" : "", reason ? reason : "", outcome);
}

int manager_report_json(const struct manager_report *r, bool draining, struct buf *out)
{
	int64_t now = r->finished_at / 1000;

	buf_printf(
	        out,
	        "{\"draining\":%s,\"empty\":%s,\"deletions_blocked\":%s,\"started_at_ms\":%" PRId64
	        ",\"duration_ms\":%" PRId64 ",\"github_error\":",
	        draining ? "true" : "false", manager_is_empty(r) ? "true" : "false",
	        r->deletions_blocked ? "true" : "false", r->started_at,
	        r->finished_at - r->started_at);
	buf_json_string(out, r->github_error);
	buf_puts(out, ",\"provider_error\":");
	buf_json_string(out, r->provider_error);
	buf_puts(out, ",\"flavors\":[");
	for (size_t i = 0; i < r->plan.n_counts; i++) {
		const struct plan_flavor_count *c = &r->plan.counts[i];
		buf_printf(out, "%s{\"name\":", i ? "," : "");
		buf_json_string(out, c->name);
		buf_printf(out,
		           ",\"online\":%" PRId64 ",\"offline\":%" PRId64 ",\"busy\":%" PRId64
		           ",\"idle\":%" PRId64 ",\"unknown\":%" PRId64 ",\"pending\":%" PRId64
		           ",\"desired\":%" PRId64 "}",
		           c->online, c->offline, c->busy, c->idle, c->unknown, c->pending,
		           c->desired);
	}
	buf_puts(out, "],\"runners\":[");
	for (size_t i = 0; i < r->plan.n_views; i++) {
		const struct plan_view *v = &r->plan.views[i];
		buf_printf(out, "%s{\"name\":", i ? "," : "");
		buf_json_string(out, v->name);
		buf_puts(out, ",\"flavor\":");
		buf_json_string(out, v->flavor);
		buf_printf(out,
		           ",\"github_state\":\"%s\",\"cloud_state\":\"%s\",\"health\":\"%s\","
		           "\"runner_id\":%" PRId64 ",\"age_s\":%" PRId64 "}",
		           github_state_name(v->github_state), cloud_state_name(v->cloud_state),
		           health_name(v->health), v->runner_id,
		           v->created_at ? now - v->created_at : 0);
	}
	buf_puts(out, "],\"actions\":[");
	for (size_t i = 0; i < r->n_events; i++) {
		const struct manager_event *ev = &r->events[i];
		buf_printf(out, "%s{\"action\":", i ? "," : "");
		buf_json_string(out, ev->action);
		buf_puts(out, ",\"name\":");
		buf_json_string(out, ev->name);
		buf_puts(out, ",\"flavor\":");
		buf_json_string(out, ev->flavor);
		buf_puts(out, ",\"reason\":");
		buf_json_string(out, ev->reason);
		buf_printf(out, ",\"ok\":%s,\"outcome\":", ev->ok ? "true" : "false");
		buf_json_string(out, ev->outcome);
		buf_puts(out, "}");
	}
	return buf_puts(out, "]}\n");
}
