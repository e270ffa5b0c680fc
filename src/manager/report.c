/*
 * What a pass did, for people and programs: the events of its actions (each
 * logged once here, the one place that logs an action's outcome, and
 * written to the store's action log), the state of the disk and of each
 * provider as the pass ends, and the report as JSON for the control API
 * and `status --json`. It must never decide anything: it records.
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

void manager_report_snapshot(struct manager *m, struct manager_report *r)
{
	manager_disk_measure(m, &r->disk);
	r->n_providers = 0;
	for (size_t i = 0; i < m->n_providers && i < MANAGER_MAX_PROVIDERS; i++) {
		struct manager_provider_view *v = &r->providers[r->n_providers++];
		str_copy(v->name, provider_name(m->providers[i]), sizeof(v->name));
		str_copy(v->type, provider_type(m->providers[i]), sizeof(v->type));
		v->traits = *provider_traits(m->providers[i]);
		provider_stats(m->providers[i], &v->stats);
		manager_quota_view(m, v->name, v);
	}
	github_get_stats(m->gh, &r->github);
	manager_runner_version_view(m, clock_wall_ms() / 1000, &r->runner);
}

/* The event in r (under the report lock); false when there was no memory for it. */
static bool keep_event(struct manager *m, struct manager_report *r, const char *provider,
                       const char *action, const char *name, const char *flavor, const char *reason,
                       bool ok, const char *outcome)
{
	struct manager_event *ev;
	bool kept = false;

	pthread_mutex_lock(&m->report_lock);
	if (r->n_events == r->cap_events) {
		size_t ncap = r->cap_events ? r->cap_events * 2 : 16;
		struct manager_event *nv = realloc(r->events, ncap * sizeof(*nv));
		if (!nv)
			goto out;
		r->events = nv;
		r->cap_events = ncap;
	}
	ev = &r->events[r->n_events++];
	memset(ev, 0, sizeof(*ev));
	str_copy(ev->action, action, sizeof(ev->action));
	str_copy(ev->name, name, sizeof(ev->name));
	str_copy(ev->flavor, flavor, sizeof(ev->flavor));
	str_copy(ev->provider, provider, sizeof(ev->provider));
	str_copy(ev->reason, reason, sizeof(ev->reason));
	str_copy(ev->outcome, outcome, sizeof(ev->outcome));
	ev->ok = ok;
	kept = true;
out:
	pthread_mutex_unlock(&m->report_lock);
	return kept;
}

void manager_report_add(struct manager *m, struct manager_report *r, const char *action,
                        const char *name, const char *flavor, const char *reason, bool ok,
                        const char *outcome)
{
	manager_report_add_on(m, r, "", action, name, flavor, reason, ok, outcome);
}

void manager_report_add_on(struct manager *m, struct manager_report *r, const char *provider,
                           const char *action, const char *name, const char *flavor,
                           const char *reason, bool ok, const char *outcome)
{
	struct err e = {0};

	provider = provider ? provider : "";
	name = name ? name : "";
	flavor = flavor ? flavor : "";
	reason = reason ? reason : "";
	outcome = outcome ? outcome : "ok";
	if (!keep_event(m, r, provider, action, name, flavor, reason, ok, outcome))
		log_warn("report: out of memory: %s %s is missing from this pass's report (its "
		         "outcome follows in the log)",
		         action, name);
	/* the action log is best effort: a full disk must not stop cleanup */
	if (store_log_action(m->store, clock_wall_ms() / 1000, action, name, reason, outcome, &e) <
	    0)
		log_warn("action log: %s (the entry for %s %s is lost; its outcome follows in the "
		         "log)",
		         e.msg, action, name);
	if (ok)
		log_info("%s %s%s%s%s%s%s%s", action, name, *flavor ? " flavor=" : "", flavor,
		         *reason ? " reason=" : "", reason, strcmp(outcome, "ok") != 0 ? ": " : "",
		         strcmp(outcome, "ok") != 0 ? outcome : "");
	else
		log_warn("%s %s%s%s failed: %s", action, name, *reason ? " reason=" : "", reason,
		         outcome);
}

/*
 * The JSON is written through a writer that remembers its first failure
 * (the buffer's bound, or memory) and then writes nothing more, so the
 * report is either whole or an error.
 */
struct jw {
	struct buf b;
	int r;
};

static void jw_puts(struct jw *w, const char *s)
{
	if (!w->r)
		w->r = buf_puts(&w->b, s);
}

static void jw_printf(struct jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void jw_printf(struct jw *w, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	if (w->r)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* every format here is a few fixed words and numbers: it fits */
	w->r = n < 0 || (size_t)n >= sizeof(line) ? -EOVERFLOW : buf_puts(&w->b, line);
}

static void jw_string(struct jw *w, const char *s)
{
	if (!w->r)
		w->r = buf_json_string(&w->b, s);
}

/* ,"key":"s" */
static void jw_field(struct jw *w, const char *key, const char *s)
{
	jw_printf(w, ",\"%s\":", key);
	jw_string(w, s);
}

/* The start of element i of an array of objects: {"key":"s" */
static void jw_object(struct jw *w, size_t i, const char *key, const char *s)
{
	jw_printf(w, "%s{\"%s\":", i ? "," : "", key);
	jw_string(w, s);
}

/* ,"disk":{...}: what the folders hold and their bounds. */
static void json_disk(struct jw *w, const struct manager_disk *d)
{
	jw_printf(w,
	          ",\"disk\":{\"measured\":%s,\"metrics\":{\"dirs\":%zu,\"bytes\":%" PRIu64
	          ",\"retention_s\":%" PRId64 "},\"logs\":{\"dirs\":%zu,\"bytes\":%" PRIu64
	          ",\"max_bytes\":%" PRIu64 ",\"retention_s\":%" PRId64 "}",
	          d->measured ? "true" : "false", d->metrics_dirs, d->metrics_bytes,
	          d->metrics_retention, d->logs_dirs, d->logs_bytes, d->logs_max_bytes,
	          d->log_retention);
	jw_field(w, "error", d->error);
	jw_puts(w, "}");
}

/* ,"providers":[...]: each one's name, type, traits, note and the front's counters. */
static void json_providers(struct jw *w, const struct manager_report *r)
{
	jw_puts(w, ",\"providers\":[");
	for (size_t i = 0; i < r->n_providers; i++) {
		const struct manager_provider_view *v = &r->providers[i];
		const struct provider_traits *t = &v->traits;
		jw_object(w, i, "name", v->name);
		jw_field(w, "type", v->type);
		jw_field(w, "note", t->note);
		jw_puts(w, ",\"quota\":{");
		jw_printf(w, "\"held\":%s,\"since\":%" PRId64 ",\"retry_at\":%" PRId64,
		          v->quota_error[0] ? "true" : "false", v->quota_since, v->quota_retry_at);
		jw_field(w, "error", v->quota_error);
		jw_puts(w, "}");
		jw_printf(w,
		          ",\"traits\":{\"runner_from_host\":%s,\"host_process\":%s,"
		          "\"pull_files\":%s,\"list_files\":%s,\"health_probe\":%s,"
		          "\"denylist\":%s}",
		          t->runner_from_host ? "true" : "false",
		          t->host_process ? "true" : "false", t->pull_files ? "true" : "false",
		          t->list_files ? "true" : "false", t->health_probe ? "true" : "false",
		          t->denylist ? "true" : "false");
		jw_puts(w, ",\"stats\":{");
		for (int op = 0; op < PROVIDER_OP_COUNT; op++) {
			const struct provider_op_stats *st = &v->stats.op[op];
			jw_printf(w,
			          "%s\"%s\":{\"calls\":%" PRIu64 ",\"failures\":%" PRIu64
			          ",\"overruns\":%" PRIu64 ",\"refused\":%" PRIu64
			          ",\"total_ms\":%" PRIu64 "}",
			          op ? "," : "", provider_op_name((enum provider_op)op), st->calls,
			          st->failures, st->overruns, st->refused, st->total_ms);
		}
		jw_puts(w, "}}");
	}
	jw_puts(w, "]");
}

/* The runner entry of flavor in v, NULL when it has none. */
static const struct manager_flavor_runner *flavor_runner(const struct manager_runner_versions *v,
                                                         const char *flavor)
{
	for (size_t i = 0; i < v->n_flavors; i++)
		if (strcmp(v->flavors[i].flavor, flavor) == 0)
			return &v->flavors[i];
	return NULL;
}

/* ,"runner":{...}: the version new instances get, its age, GitHub's latest. */
static void json_runner(struct jw *w, const struct manager_runner_versions *v, int64_t now)
{
	jw_puts(w, ",\"runner\":{");
	jw_printf(w, "\"checked_at\":%" PRId64, v->checked_at);
	jw_field(w, "in_use", v->in_use);
	jw_printf(
	        w,
	        ",\"in_use_published_at\":%" PRId64 ",\"age_s\":%" PRId64 ",\"behind_s\":%" PRId64,
	        v->in_use_published_at, v->in_use_published_at ? now - v->in_use_published_at : -1,
	        v->behind_since ? now - v->behind_since : 0);
	jw_field(w, "latest", v->latest);
	jw_printf(w, ",\"latest_published_at\":%" PRId64, v->latest_published_at);
	jw_field(w, "image_floor", v->image_floor);
	jw_field(w, "error", v->error);
	jw_puts(w, "}");
}

int manager_report_json(const struct manager_report *r, bool draining, struct buf *out)
{
	struct jw w = {.b = BUF_INIT(out->max > out->len ? out->max - out->len : 0)};
	int64_t now = r->finished_at / 1000;

	jw_printf(&w,
	          "{\"draining\":%s,\"empty\":%s,\"deletions_blocked\":%s,\"reactive\":%s,"
	          "\"spooled\":%" PRId64 ",\"started_at_ms\":%" PRId64 ",\"duration_ms\":%" PRId64,
	          draining ? "true" : "false", manager_is_empty(r) ? "true" : "false",
	          r->deletions_blocked ? "true" : "false", r->reactive ? "true" : "false",
	          r->spooled, r->started_at, r->finished_at - r->started_at);
	jw_field(&w, "github_error", r->github_error);
	jw_field(&w, "provider_error", r->provider_error);
	json_disk(&w, &r->disk);
	json_runner(&w, &r->runner, now);
	json_providers(&w, r);
	jw_puts(&w, ",\"flavors\":[");
	for (size_t i = 0; i < r->plan.n_counts; i++) {
		const struct plan_flavor_count *c = &r->plan.counts[i];
		const struct manager_flavor_runner *fr = flavor_runner(&r->runner, c->name);
		char why[160] = "";
		jw_object(&w, i, "name", c->name);
		jw_printf(&w,
		          ",\"online\":%" PRId64 ",\"offline\":%" PRId64 ",\"busy\":%" PRId64
		          ",\"idle\":%" PRId64 ",\"unknown\":%" PRId64 ",\"pending\":%" PRId64
		          ",\"desired\":%" PRId64 ",\"waiting\":%" PRId64,
		          c->online, c->offline, c->busy, c->idle, c->unknown, c->pending,
		          c->desired, c->waiting);
		/* degraded: why no runner is made; image_runner: the image's too old runner */
		if (fr && fr->refused[0])
			snprintf(
			        why, sizeof(why),
			        "GitHub refused runner version %s (deprecated); held until a newer "
			        "release",
			        fr->refused);
		jw_field(&w, "degraded", why);
		jw_field(&w, "image_runner", fr ? fr->image : "");
		jw_puts(&w, "}");
	}
	jw_puts(&w, "],\"runners\":[");
	for (size_t i = 0; i < r->plan.n_views; i++) {
		const struct plan_view *v = &r->plan.views[i];
		jw_object(&w, i, "name", v->name);
		jw_field(&w, "flavor", v->flavor);
		jw_printf(&w,
		          ",\"github_state\":\"%s\",\"cloud_state\":\"%s\",\"health\":\"%s\","
		          "\"runner_id\":%" PRId64 ",\"age_s\":%" PRId64 "}",
		          github_state_name(v->github_state), cloud_state_name(v->cloud_state),
		          health_name(v->health), v->runner_id,
		          v->created_at ? now - v->created_at : 0);
	}
	jw_puts(&w, "],\"actions\":[");
	for (size_t i = 0; i < r->n_events; i++) {
		const struct manager_event *ev = &r->events[i];
		jw_object(&w, i, "action", ev->action);
		jw_field(&w, "name", ev->name);
		jw_field(&w, "flavor", ev->flavor);
		jw_field(&w, "reason", ev->reason);
		jw_printf(&w, ",\"ok\":%s", ev->ok ? "true" : "false");
		jw_field(&w, "outcome", ev->outcome);
		jw_puts(&w, "}");
	}
	jw_puts(&w, "]}\n");
	if (!w.r)
		w.r = buf_append(out, w.b.data ? w.b.data : "", w.b.len);
	buf_release(&w.b);
	return w.r;
}
