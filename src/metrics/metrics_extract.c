/*
 * The metrics files out of an instance before it goes, into
 * state_dir/metrics/<name>/, waiting for post-job-metrics.json of a finished
 * runner while its instance still runs. It must never parse what it pulls
 * (the files are untrusted; whoever reads them later bounds and checks
 * them), never write outside the folder of an owned name, and never wait
 * past its budget or a cancel.
 */
#include "util/common.h"
#include "metrics/metrics.h"
#include "util/clock.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#define POLL_MS 500
/* A file the others say was written, looked for again: this many times, this far apart. */
#define EXPECTED_LOOKS   3
#define EXPECTED_LOOK_MS 1000

static const char *const file_names[METRICS_FILE_COUNT] = {
        [METRICS_FILE_PRE_JOB] = METRICS_PRE_JOB,
        [METRICS_FILE_POST_JOB] = METRICS_POST_JOB,
        [METRICS_FILE_RUNNER_INSTALLED] = METRICS_RUNNER_INSTALLED,
        [METRICS_FILE_INSTALLATION_STARTED] = METRICS_INSTALLATION_STARTED,
};

const char *metrics_file_name(enum metrics_file f)
{
	return (unsigned)f < METRICS_FILE_COUNT ? file_names[f] : "invalid";
}

static bool cancelled(const struct metrics_opts *o)
{
	return o->cancel && atomic_load(o->cancel);
}

/*
 * A runner leaves GitHub's list a moment before its wrapper writes
 * post-job-metrics.json: ask again every POLL_MS while the instance runs,
 * until the file is there or the budget is spent.
 */
static int pull_post_job(const struct metrics_opts *o, struct provider *p, const char *name,
                         const char *path, struct buf *b, int64_t *waited_ms, struct err *e)
{
	int64_t wait = o->post_job_wait_ms > 0 ? o->post_job_wait_ms : METRICS_POST_JOB_WAIT_MS;
	int64_t start = clock_mono_ms(), deadline = start + wait;
	int r = provider_pull_file(p, name, path, METRICS_FILE_MAX, b, e);

	while (r == -ENOENT && !cancelled(o)) {
		struct instance in;
		int64_t left = deadline - clock_mono_ms();
		bool running;

		if (left <= 0)
			break;
		running = provider_get(p, name, &in, NULL) == 0 && in.state == CLOUD_ACTIVE;
		if (running)
			clock_sleep_ms(left < POLL_MS ? left : POLL_MS);
		err_clear(e);
		r = provider_pull_file(p, name, path, METRICS_FILE_MAX, b, e);
		if (!running)
			break; /* it may have written the file as it ended: one last look */
	}
	*waited_ms = clock_mono_ms() - start;
	return r;
}

/*
 * Whether file f must be there, given the files found (bits of enum
 * metrics_file): the runner's script writes installation-started, then
 * runner-installed, and the pre-job hook pre-job-metrics.json after both;
 * a runner that finished a job ran that hook.
 */
static bool expected(int f, unsigned found, bool finished)
{
	switch (f) {
	case METRICS_FILE_INSTALLATION_STARTED:
		return found &
		       ((1u << METRICS_FILE_RUNNER_INSTALLED) | (1u << METRICS_FILE_PRE_JOB));
	case METRICS_FILE_RUNNER_INSTALLED:
		return found & (1u << METRICS_FILE_PRE_JOB);
	case METRICS_FILE_PRE_JOB:
		return finished && (found & (1u << METRICS_FILE_RUNNER_INSTALLED));
	default:
		return false;
	}
}

struct extraction {
	const struct metrics_opts *o;
	struct provider *p;
	const char *name;
	char dir[PATH_MAX];
	bool made, finished, job_started;
	unsigned missing; /* bits: files the instance said were not there */
	struct metrics_extracted got;
	struct err first;
};

/* Pull file f into the storage; wait: for post-job-metrics.json of a finished job. */
static void pull_one(struct extraction *x, int f, bool wait)
{
	struct buf b = BUF_INIT(METRICS_FILE_MAX);
	char src[64], path[PATH_MAX + 64];
	struct err fe = {0};
	int r;

	snprintf(src, sizeof(src), "%s/%s", METRICS_DIR, file_names[f]);
	if (wait)
		r = pull_post_job(x->o, x->p, x->name, src, &b, &x->got.waited_ms, &fe);
	else
		r = provider_pull_file(x->p, x->name, src, METRICS_FILE_MAX, &b, &fe);
	if (r == -ENOENT) {
		x->missing |= 1u << f; /* not written: the instance never got that far */
		buf_release(&b);
		return;
	}
	x->missing &= ~(1u << f);
	x->job_started = x->job_started || (r == 0 && f == METRICS_FILE_PRE_JOB);
	if (r == 0 && !x->made) {
		r = mkdir_p(x->dir, 0700, &fe);
		x->made = r == 0;
	}
	if (r == 0) {
		snprintf(path, sizeof(path), "%s/%s", x->dir, file_names[f]);
		r = file_write_atomic(path, b.data ? b.data : "", b.len, 0600, &fe);
	}
	if (r == 0) {
		x->got.saved |= 1u << f;
		x->got.bytes += b.len;
	} else if (!x->first.code) {
		err_set(&x->first, r, "metrics %s: %s: %s", x->name, file_names[f], fe.msg);
	}
	buf_release(&b);
}

/* The files found missing that the others say were written. */
static unsigned missing_expected(const struct extraction *x)
{
	unsigned m = 0;

	for (int f = 0; f < METRICS_FILE_COUNT; f++)
		if ((x->missing & (1u << f)) && expected(f, x->got.saved, x->finished))
			m |= 1u << f;
	return m;
}

int metrics_extract(const struct metrics_opts *o, struct provider *p, const char *name,
                    bool finished, struct metrics_extracted *ret, struct err *e)
{
	struct extraction x = {.o = o, .p = p, .name = name, .finished = finished};

	if (!name_is_owned(o->manager, name))
		return err_set(e, -EINVAL, "metrics: %s is not a name of manager %s", name,
		               o->manager);
	if (!provider_traits(p)->pull_files)
		return err_set(e, -ENOTSUP, "metrics: provider %s cannot read files in instances",
		               provider_name(p));
	if ((size_t)snprintf(x.dir, sizeof(x.dir), "%s/metrics/%s", o->state_dir, name) >=
	    sizeof(x.dir))
		return err_set(e, -ENAMETOOLONG, "metrics: state_dir is too long");

	for (int f = 0; f < METRICS_FILE_COUNT; f++)
		pull_one(&x, f, f == METRICS_FILE_POST_JOB && finished && x.job_started);
	/*
	 * An instance between running and stopped (powering off at its runner's
	 * end) can answer "not found" for a file it has: LXD's exec has gone and
	 * its files API has not the stopped root yet. A file the others say was
	 * written is looked for again, a moment later.
	 */
	for (int i = 0; i < EXPECTED_LOOKS && !cancelled(o); i++) {
		unsigned again = missing_expected(&x);

		if (!again)
			break;
		clock_sleep_ms(EXPECTED_LOOK_MS);
		for (int f = 0; f < METRICS_FILE_COUNT; f++)
			if (again & (1u << f))
				pull_one(&x, f, false);
		x.got.looked_again |= again & x.got.saved;
	}
	if (x.first.code) {
		if (e)
			*e = x.first;
		return x.first.code;
	}
	if (ret)
		*ret = x.got;
	return 0;
}

/* runnerd's own note in a storage; never a name an instance's file is pulled to. */
#define FLAVOR_NOTE ".runnerd-flavor"

int metrics_storage_note_flavor(const struct metrics_opts *o, const char *name, const char *flavor,
                                struct err *e)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	int r;

	if (!name_is_owned(o->manager, name))
		return err_set(e, -EINVAL, "metrics: %s is not a name of manager %s", name,
		               o->manager);
	if (!flavor || !name_is_valid(flavor, FLAVOR_NAME_MAX - 1))
		return 0; /* nothing worth noting: not a flavor name config_check accepts */
	if ((size_t)snprintf(dir, sizeof(dir), "%s/metrics/%s", o->state_dir, name) >= sizeof(dir))
		return err_set(e, -ENAMETOOLONG, "metrics: state_dir is too long");
	r = mkdir_p(dir, 0700, e);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/%s", dir, FLAVOR_NOTE);
	return file_write_atomic(path, flavor, strlen(flavor), 0600, e);
}

void metrics_storage_noted_flavor(const struct metrics_opts *o, const char *name, char *out,
                                  size_t cap)
{
	char path[PATH_MAX];
	struct buf b = BUF_INIT(FLAVOR_NAME_MAX);

	if (cap)
		out[0] = '\0';
	if (!name_is_owned(o->manager, name) ||
	    (size_t)snprintf(path, sizeof(path), "%s/metrics/%s/%s", o->state_dir, name,
	                     FLAVOR_NOTE) >= sizeof(path))
		return;
	if (file_read(path, FLAVOR_NAME_MAX, true, &b, NULL) == 0 && b.len < cap) {
		memcpy(out, b.data, b.len);
		out[b.len] = '\0';
		if (!name_is_valid(out, FLAVOR_NAME_MAX - 1))
			out[0] = '\0';
	}
	buf_release(&b);
}
