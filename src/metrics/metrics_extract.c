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

int metrics_extract(const struct metrics_opts *o, struct provider *p, const char *name,
                    bool finished, struct metrics_extracted *ret, struct err *e)
{
	struct metrics_extracted got = {0};
	char dir[PATH_MAX], src[64], path[PATH_MAX + 64];
	struct err first = {0};
	bool made = false, job_started = false;

	if (!name_is_owned(o->manager, name))
		return err_set(e, -EINVAL, "metrics: %s is not a name of manager %s", name,
		               o->manager);
	if (!provider_traits(p)->pull_files)
		return err_set(e, -ENOTSUP, "metrics: provider %s cannot read files in instances",
		               provider_name(p));
	if ((size_t)snprintf(dir, sizeof(dir), "%s/metrics/%s", o->state_dir, name) >= sizeof(dir))
		return err_set(e, -ENAMETOOLONG, "metrics: state_dir is too long");

	for (int f = 0; f < METRICS_FILE_COUNT; f++) {
		struct buf b = BUF_INIT(METRICS_FILE_MAX);
		struct err fe = {0};
		int r;

		snprintf(src, sizeof(src), "%s/%s", METRICS_DIR, file_names[f]);
		if (f == METRICS_FILE_POST_JOB && finished && job_started)
			r = pull_post_job(o, p, name, src, &b, &got.waited_ms, &fe);
		else
			r = provider_pull_file(p, name, src, METRICS_FILE_MAX, &b, &fe);
		if (r == -ENOENT) {
			buf_release(&b);
			continue; /* not written: the instance never got that far */
		}
		job_started = job_started || (r == 0 && f == METRICS_FILE_PRE_JOB);
		if (r == 0 && !made) {
			r = mkdir_p(dir, 0700, &fe);
			made = r == 0;
		}
		if (r == 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, file_names[f]);
			r = file_write_atomic(path, b.data ? b.data : "", b.len, 0600, &fe);
		}
		if (r == 0) {
			got.saved |= 1u << f;
			got.bytes += b.len;
		} else if (!first.code) {
			err_set(&first, r, "metrics %s: %s: %s", name, file_names[f], fe.msg);
		}
		buf_release(&b);
	}
	if (first.code) {
		if (e)
			*e = first;
		return first.code;
	}
	if (ret)
		*ret = got;
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
