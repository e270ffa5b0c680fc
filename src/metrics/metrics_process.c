/*
 * The original's extraction of one runner's metrics storage, start to end:
 * read it (metrics_read.c), quarantine it when it is bad
 * (metrics_quarantine.c), otherwise issue its runner_installed,
 * runner_start and runner_stop events, with what GitHub says of the job
 * the runner ran, and remove it. It must never issue anything from a bad
 * storage, never issue runner_stop without runner_start's file, and never
 * let a storage be processed twice when it could remove it.
 */
#include "util/common.h"
#include "metrics/metrics_storage.h"
#include "util/fileutil.h"
#include "util/strutil.h"

static double nonneg(double v)
{
	return v > 0 ? v : 0;
}

static void event_init(struct metrics_event *ev, enum metrics_event_kind k, const char *flavor)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = k;
	str_copy(ev->flavor, flavor ? flavor : "", sizeof(ev->flavor));
}

static void job_fields(struct metrics_event *ev, const struct metrics_pre_job *pre)
{
	str_copy(ev->workflow, pre->workflow, sizeof(ev->workflow));
	str_copy(ev->repo, pre->repository, sizeof(ev->repo));
	str_copy(ev->github_event, pre->event, sizeof(ev->github_event));
}

static int emit(const struct metrics_process_opts *o, struct metrics_processed *p,
                const struct metrics_event *ev, struct err *e)
{
	int r = o->emit ? o->emit(o->ctx, ev, e) : 0;

	if (r == 0) {
		p->issued++;
		p->issued_kind[ev->kind] = true;
	}
	return r;
}

/* The events of a good storage s, in the original's order; the first failure stops them. */
static int issue(const char *name, const struct metrics_storage *s,
                 const struct metrics_process_opts *o, struct metrics_processed *p, struct err *e)
{
	struct metrics_job job = {0};
	bool have_job = false;
	struct metrics_event ev;
	int r;

	if (s->has_installation_start) {
		event_init(&ev, METRICS_EVENT_RUNNER_INSTALLED, o->flavor);
		ev.timestamp = s->installed;
		ev.duration = nonneg(s->installed - s->installation_start);
		if ((r = emit(o, p, &ev, e)) < 0)
			return r;
	}
	if (!s->has_pre_job)
		return 0;
	if (o->lookup)
		have_job = o->lookup(o->ctx, name, &s->pre, &job) == 0;
	event_init(&ev, METRICS_EVENT_RUNNER_START, o->flavor);
	ev.timestamp = s->pre.timestamp;
	job_fields(&ev, &s->pre);
	ev.idle = nonneg(s->pre.timestamp - s->installed);
	if (have_job && job.has_queue_duration) {
		ev.has_queue_duration = true;
		ev.queue_duration = nonneg(job.queue_duration);
	}
	if ((r = emit(o, p, &ev, e)) < 0)
		return r;
	if (!s->has_post_job)
		return 0;
	event_init(&ev, METRICS_EVENT_RUNNER_STOP, o->flavor);
	ev.timestamp = s->post.timestamp;
	job_fields(&ev, &s->pre);
	str_copy(ev.status, s->post.status, sizeof(ev.status));
	ev.has_status_code = s->post.has_code;
	ev.status_code = s->post.code;
	ev.job_duration = nonneg(s->post.timestamp - s->pre.timestamp);
	if (have_job)
		str_copy(ev.job_conclusion, job.conclusion, sizeof(ev.job_conclusion));
	return emit(o, p, &ev, e);
}

static int remove_storage(const char *dir, struct metrics_processed *p, struct err *e)
{
	int r = rm_rf(dir, e);

	if (r < 0)
		return err_prefix(e, "metrics storage: not removed");
	p->removed = true;
	return 0;
}

int metrics_storage_process(const char *dir, const char *name, const struct metrics_process_opts *o,
                            struct metrics_processed *ret, struct err *e)
{
	struct metrics_processed p = {0};
	struct metrics_storage s;
	struct err re = {0};
	int r, rr;

	r = metrics_storage_read(dir, &s, &p.bad, e);
	if (r == -EBADMSG) {
		struct metrics_quarantined q;
		struct err qe = {0};

		if (o->quarantine_dir) {
			if (metrics_quarantine(dir, o->quarantine_dir, name, &q, &qe) == 0) {
				p.quarantined = p.removed = true;
				str_copy(p.quarantine_path, q.path, sizeof(p.quarantine_path));
				err_prefix(e, "%s: %s: quarantined in %s",
				           metrics_cause_name(p.bad.cause), name, q.path);
			} else {
				err_prefix(e, "%s: %s: %s", metrics_cause_name(p.bad.cause), name,
				           qe.msg);
			}
		} else {
			err_prefix(e, "%s: %s", metrics_cause_name(p.bad.cause), name);
		}
		goto out;
	}
	if (r < 0)
		goto out;
	/* without the installed timestamp the runner never ran: nothing to issue */
	if (s.has_installed)
		r = issue(name, &s, o, &p, e);
	if (!o->keep) {
		rr = remove_storage(dir, &p, r < 0 ? &re : e);
		if (r == 0)
			r = rr;
	}
out:
	*ret = p;
	return r;
}
