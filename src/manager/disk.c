/*
 * What the manager keeps of its instances on disk, within bounds: saved
 * logs (log_dir) and metrics folders (state_dir/metrics) past their
 * retention go, saved logs past their total cap go oldest first, and the
 * action log is pruned with the logs. The metrics module does the work;
 * this file decides when, keeps one sweep at a time, and logs once what
 * it did or could not do. It must never remove anything itself.
 */
#include "util/common.h"
#include "manager/manager_internal.h"
#include "util/log.h"

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

void manager_disk_retention(struct manager *m, int64_t now)
{
	struct metrics_opts mo;
	struct err e = {0};
	int n;

	if (m->retention_at && now - m->retention_at < RETENTION_EVERY_S)
		return;
	m->retention_at = now;
	if (store_prune_actions(m->store, now - m->cfg->manager.log_retention, &e) < 0)
		log_warn("action log retention: %s (old entries stay until the next sweep)", e.msg);
	manager_metrics_opts(m, &mo);
	pthread_mutex_lock(&m->disk_lock);
	err_clear(&e);
	n = metrics_prune_logs(&mo, now, &e);
	if (n < 0)
		log_warn("%s (retried in an hour)", e.msg);
	else if (n > 0)
		log_info("log retention: removed the saved logs of %d instances", n);
	err_clear(&e);
	n = metrics_prune_storage(&mo, now, &e);
	if (n < 0)
		log_warn("%s (retried in an hour)", e.msg);
	else if (n > 0)
		log_info("metrics retention: removed the metrics of %d instances", n);
	cap_logs(m, &mo);
	pthread_mutex_unlock(&m->disk_lock);
}
