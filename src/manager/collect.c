/*
 * Metrics and logs out of an instance before it goes, and log retention.
 */
#include "util/common.h"
#include "manager/manager_internal.h"
#include "runner/runner_script.h"
#include "util/clock.h"
#include "util/fileutil.h"
#include "util/log.h"
#include "util/strutil.h"

#include <dirent.h>

#define METRICS_FILE_MAX (64 * 1024)

/*
 * Pull the metrics files an instance wrote into state_dir/metrics/<name>/
 * (best effort). A runner leaves GitHub's list a moment before its wrapper
 * writes post-job-metrics.json: for a finished runner whose job started
 * (pre-job file present), wait up to POST_JOB_WAIT_MS for it while the
 * instance still runs.
 */
#define POST_JOB_WAIT_MS 15000

static int pull_post_job(struct manager *m, struct provider *p, const char *name, const char *file,
                         struct buf *b, struct err *e)
{
	int r = provider_pull_file(p, name, file, METRICS_FILE_MAX, b, e);

	for (int waited = 0; r == -ENOENT && waited < POST_JOB_WAIT_MS && !atomic_load(&m->cancel);
	     waited += 500) {
		struct instance in;
		bool running = provider_get(p, name, &in, NULL) == 0 && in.state == CLOUD_ACTIVE;
		if (running)
			clock_sleep_ms(500);
		err_clear(e);
		r = provider_pull_file(p, name, file, METRICS_FILE_MAX, b, e);
		if (!running)
			break;
	}
	return r;
}

void manager_extract_metrics(struct manager *m, struct provider *p, const char *name, bool finished)
{
	static const char *const files[] = {
	        "metrics/pre-job-metrics.json",
	        "metrics/post-job-metrics.json",
	        "metrics/runner-installed.timestamp",
	        "metrics/runner-installation-start.timestamp",
	};
	char dir[PATH_MAX], path[PATH_MAX + 64];
	struct err e = {0};
	bool made = false, job_started = false;

	snprintf(dir, sizeof(dir), "%s/metrics/%s", m->cfg->manager.state_dir, name);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		struct buf b = BUF_INIT(METRICS_FILE_MAX);
		err_clear(&e);
		int r = i == 1 && finished && job_started
		                ? pull_post_job(m, p, name, files[i], &b, &e)
		                : provider_pull_file(p, name, files[i], METRICS_FILE_MAX, &b, &e);
		if (r < 0) {
			if (r != -ENOENT)
				log_warn("metrics %s: %s: %s", name, files[i], e.msg);
			buf_release(&b);
			continue;
		}
		job_started = job_started || i == 0;
		if (!made && mkdir_p(dir, 0700, &e) < 0) {
			log_warn("metrics %s: %s", name, e.msg);
			buf_release(&b);
			return;
		}
		made = true;
		snprintf(path, sizeof(path), "%s/%s", dir, strrchr(files[i], '/') + 1);
		if (file_write_atomic(path, b.data ? b.data : "", b.len, 0600, &e) < 0)
			log_warn("metrics %s: %s", name, e.msg);
		buf_release(&b);
	}
}

/*
 * An unhealthy instance's logs, saved to log_dir/<name>/ before it goes: the
 * runner's _diag logs, the startup script's log and the system log where the
 * provider can read them. Best effort and bounded: the files come from a
 * machine the job controlled.
 */
#define LOG_FILE_MAX  (8 << 20)
#define LOG_TOTAL_MAX (64 << 20)

static void save_one_log(struct manager *m, struct provider *p, const char *name, const char *src,
                         const char *dst_dir, const char *dst_name, size_t *budget)
{
	struct buf b = BUF_INIT(LOG_FILE_MAX);
	char path[PATH_MAX];
	struct err e = {0};

	if (*budget == 0)
		return;
	if (provider_pull_file(p, name, src, *budget < LOG_FILE_MAX ? *budget : LOG_FILE_MAX, &b,
	                       &e) < 0) {
		if (e.code != -ENOENT)
			log_debug("logs %s: %s: %s", name, src, e.msg);
		buf_release(&b);
		return;
	}
	if (mkdir_p(dst_dir, 0700, &e) == 0) {
		snprintf(path, sizeof(path), "%s/%s", dst_dir, dst_name);
		if (file_write_atomic(path, b.data ? b.data : "", b.len, 0600, &e) < 0)
			log_warn("logs %s: %s", name, e.msg);
	}
	*budget -= b.len < *budget ? b.len : *budget;
	buf_release(&b);
}

/*
 * The _diag folders (runnerd's own unpacked runner, then the image's), the
 * startup log, cloud-init's output and the syslog. Bounded in files and in
 * time as well as in bytes: a job can fill _diag with thousands of entries,
 * and the pass waits for this.
 */
#define LOG_DIAG_FILES_MAX 64
#define LOG_SAVE_BUDGET_MS 60000

void manager_save_logs(struct manager *m, struct provider *p, const char *name)
{
	static const char *const diag_dirs[] = {"runner/_diag", RUNNER_IMAGE_DIR "/_diag"};
	static const struct {
		const char *src, *dst;
	} singles[] = {
	        {"startup.log", "startup.log"},
	        {"/var/log/cloud-init-output.log", "cloud-init-output.log"},
	        {"/var/log/syslog", "syslog"},
	};
	char dir[PATH_MAX], diag[PATH_MAX], src[PATH_MAX];
	size_t budget = LOG_TOTAL_MAX, taken = 0;
	int64_t deadline = clock_wall_ms() + LOG_SAVE_BUDGET_MS;

	snprintf(dir, sizeof(dir), "%s/%s", m->cfg->manager.log_dir, name);
	snprintf(diag, sizeof(diag), "%s/_diag", dir);
	for (size_t d = 0; d < ARRAY_SIZE(diag_dirs) && provider_traits(p)->list_files; d++) {
		struct strv files = {0};
		struct err e = {0};
		if (provider_list_files(p, name, diag_dirs[d], &files, &e) < 0) {
			strv_release(&files);
			continue;
		}
		for (size_t i = 0; i < files.n && taken < LOG_DIAG_FILES_MAX; i++) {
			/* names from the instance: plain file names only */
			if (strchr(files.v[i], '/') || files.v[i][0] == '.')
				continue;
			if (clock_wall_ms() > deadline || atomic_load(&m->cancel))
				break;
			snprintf(src, sizeof(src), "%s/%s", diag_dirs[d], files.v[i]);
			save_one_log(m, p, name, src, diag, files.v[i], &budget);
			taken++;
		}
		if (files.n > LOG_DIAG_FILES_MAX)
			log_warn("logs %s: %s holds %zu files, saved %zu", name, diag_dirs[d],
			         files.n, taken);
		strv_release(&files);
	}
	for (size_t i = 0;
	     i < ARRAY_SIZE(singles) && clock_wall_ms() <= deadline && !atomic_load(&m->cancel);
	     i++)
		save_one_log(m, p, name, singles[i].src, dir, singles[i].dst, &budget);
	if (clock_wall_ms() > deadline)
		log_warn("logs %s: stopped after %d s, some logs were not saved", name,
		         LOG_SAVE_BUDGET_MS / 1000);
	log_info("logs of %s saved in %s", name, dir);
}

/* Remove saved logs and action log entries older than log_retention (at most once an hour). */
void manager_prune_logs(struct manager *m, int64_t now)
{
	DIR *d;
	struct dirent *de;

	if (m->logs_pruned_at && now - m->logs_pruned_at < 3600)
		return;
	m->logs_pruned_at = now;
	/* the store's action log follows the same retention */
	struct err pe = {0};
	if (store_prune_actions(m->store, now - m->cfg->manager.log_retention, &pe) < 0)
		log_warn("action log retention: %s", pe.msg);
	d = opendir(m->cfg->manager.log_dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		struct stat st;
		if (!name_is_owned(m->cfg->manager.name, de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", m->cfg->manager.log_dir, de->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
		    now - st.st_mtime > m->cfg->manager.log_retention) {
			struct err e = {0};
			if (rm_rf(path, &e) < 0)
				log_warn("log retention: %s", e.msg);
			else
				log_info("log retention: removed %s", path);
		}
	}
	closedir(d);
}
