/*
 * What the manager keeps of its instances on disk, within bounds: saved
 * logs (log_dir) and metrics folders (state_dir/metrics) past their
 * retention go, saved logs past their total cap go oldest first, the
 * action log is pruned with the logs, and the temporaries a kill left
 * behind go at start; and what those folders hold, for the report. The
 * metrics module and fileutil do the work; this file decides when and
 * where, keeps one sweep at a time, and logs once what it did or could not
 * do. It must never remove anything itself.
 */
#include "util/common.h"
#include "manager/manager_internal.h"
#include "util/fileutil.h"
#include "util/log.h"
#include "util/strutil.h"

/* A retention sweep runs at most this often (seconds). */
#define RETENTION_EVERY_S 3600

/* Saved logs back within logs_max_size; the caller holds disk_lock. */
static void cap_logs(struct manager *m, const struct metrics_opts *mo)
{
	struct err e = {0};
	int n = metrics_cap_logs(mo, &e);

	if (n < 0)
		log_warn("%s (tried again after the next save)", e.msg);
	else if (n > 0)
		log_info("saved logs past %" PRId64 " MiB in all: removed the oldest %d instance "
		         "folders",
		         m->cfg->manager.logs_max_size >> 20, n);
}

void manager_disk_after_save(struct manager *m)
{
	struct metrics_opts mo;

	manager_metrics_opts(m, &mo);
	pthread_mutex_lock(&m->disk_lock);
	cap_logs(m, &mo);
	pthread_mutex_unlock(&m->disk_lock);
}

/* What one retention sweep removed (n folders of what), or why it failed. */
static void swept(const char *retention, const char *what, int n, const struct err *e)
{
	if (n < 0)
		log_warn("%s (retried in an hour)", e->msg);
	else if (n > 0)
		log_info("%s retention: removed the %s of %d instances", retention, what, n);
}

void manager_disk_retention(struct manager *m, int64_t now)
{
	struct metrics_opts mo;
	struct err e = {0};

	if (m->retention_at && now - m->retention_at < RETENTION_EVERY_S)
		return;
	m->retention_at = now;
	if (store_prune_actions(m->store, now - m->cfg->manager.log_retention, &e) < 0)
		log_warn("action log retention: %s (old entries stay until the next sweep)", e.msg);
	manager_metrics_opts(m, &mo);
	pthread_mutex_lock(&m->disk_lock);
	err_clear(&e);
	swept("log", "saved logs", metrics_prune_logs(&mo, now, &e), &e);
	err_clear(&e);
	swept("metrics", "metrics", metrics_prune_storage(&mo, now, &e), &e);
	err_clear(&e);
	swept("quarantine", "quarantined metrics", metrics_prune_quarantine(&mo, now, &e), &e);
	cap_logs(m, &mo);
	pthread_mutex_unlock(&m->disk_lock);
}

/* Where atomic writes happen below state_dir (or log_dir), and how deep. */
static const struct {
	bool logs;        /* below log_dir, not state_dir */
	const char *sub;  /* "" the directory itself */
	int depth;        /* levels below it */
	const char *aged; /* another writer's temporaries, by age (file_tmp_sweep) */
} tmp_dirs[] = {
        {false, "", 0, NULL},                    /* the drain flag's and store's neighbours */
        {false, "/metrics", 1, NULL},            /* metrics/<name>/<file> */
        {false, "/metrics-quarantine", 0, NULL}, /* <name>.tar.gz being written */
        {false, "/runner-bin", 0, ".download-"}, /* current-<arch>, and GitHub downloads */
        {true, "", 2, NULL},                     /* <name>/<file>, <name>/_diag/<file> */
};

void manager_disk_sweep_temporaries(struct manager *m, int64_t now)
{
	const struct config_manager *c = &m->cfg->manager;
	int total = 0;

	for (size_t i = 0; i < ARRAY_SIZE(tmp_dirs); i++) {
		struct file_tmp_sweep o = {
		        .depth = tmp_dirs[i].depth, .now = now, .aged_prefix = tmp_dirs[i].aged};
		char dir[PATH_MAX];
		struct err e = {0};
		int n;

		snprintf(dir, sizeof(dir), "%s%s", tmp_dirs[i].logs ? c->log_dir : c->state_dir,
		         tmp_dirs[i].sub);
		n = file_tmp_sweep(dir, &o, &e);
		if (n < 0)
			log_warn("temporary files: %s (left where they are)", e.msg);
		else
			total += n;
	}
	if (total > 0)
		log_info("removed %d temporary files that ended processes left behind", total);
	m->temporaries_swept = true;
}

void manager_disk_measure(struct manager *m, struct manager_disk *ret)
{
	const struct config_manager *c = &m->cfg->manager;
	struct metrics_disk d = {0};
	struct metrics_opts mo;
	struct err e = {0};

	*ret = (struct manager_disk){
	        .metrics_retention = c->metrics_retention,
	        .logs_max_bytes = (uint64_t)c->logs_max_size,
	        .log_retention = c->log_retention,
	};
	manager_metrics_opts(m, &mo);
	if (metrics_disk_usage(&mo, &d, &e) < 0) {
		str_copy(ret->error, e.msg, sizeof(ret->error));
		return;
	}
	ret->measured = true;
	ret->metrics_dirs = d.metrics_dirs;
	ret->metrics_bytes = d.metrics_bytes;
	ret->logs_dirs = d.logs_dirs;
	ret->logs_bytes = d.logs_bytes;
}
