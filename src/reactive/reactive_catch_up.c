/*
 * The catch-up after a reboot. With webhook.answer_after write the intake
 * answers a delivery once it is written to its journal, and the store's
 * synced commit follows (reactive_journal.c): a crash of runnerd loses
 * nothing, but a power cut can lose what was answered in the last
 * millisecond or so, and GitHub, having had its 202, sends it no more.
 *
 * So the store remembers the boot it flushed behind in (the kernel's
 * boot id). When runnerd starts in another boot, the first pass lists the
 * hook's deliveries since the newest one the store kept (less a margin for
 * clocks and for the commits in flight), whatever their status, and asks
 * GitHub to redeliver each workflow_job one the store does not know; the
 * redeliveries come through the intake like any delivery, and one that
 * was kept after all is a duplicate. Only then is the new boot written
 * down, so a catch-up cut short runs again at the next start.
 *
 * It must never redeliver what the store has, one delivery twice in a
 * catch-up, nor anything older than the window.
 */
#include "util/common.h"
#include "reactive/reactive_internal.h"
#include "util/fileutil.h"
#include "util/log.h"
#include "util/strutil.h"

#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"
/* The store's record of the boot whose intake commits were flushed behind. */
#define KV_UNSYNCED_BOOT "intake.unsynced_boot"
/* Before the newest delivery kept: GitHub's clock against ours, and the commits in flight. */
#define CATCH_UP_MARGIN_S 300
/* Deliveries looked at in one catch-up at most (ten pages). */
#define CATCH_UP_LIST_MAX 1000
/* Further back than this the backfill's own limit holds: such jobs are long decided. */
#define CATCH_UP_MAX_AGE_S (6 * 3600)
/* How long a reload to answer_after flush waits for the journal's last records. */
#define SETTLE_MS 5000

/* This boot's id (RUNNERD_BOOT_ID_FILE names another file: the tests' reboots). */
static int boot_id(char *out, size_t cap)
{
	const char *path = getenv("RUNNERD_BOOT_ID_FILE");
	char buf[128];
	ssize_t n;
	int fd;

	fd = open(path && *path ? path : BOOT_ID_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	buf[strcspn(buf, " \t\r\n")] = '\0';
	if (!buf[0])
		return -EIO;
	str_copy(out, buf, cap);
	return 0;
}

void reactive_catch_up_plan(struct reactive *rx, const struct config *cfg)
{
	char *last = NULL;
	struct err e = {0};
	int r;

	rx->catch_up_since = 0;
	r = boot_id(rx->boot, sizeof(rx->boot));
	if (r < 0) {
		log_warn("catch-up: cannot read the boot id (%s): a power cut's lost deliveries "
		         "are not asked of GitHub again",
		         strerror(-r));
		rx->boot[0] = '\0';
		return;
	}
	r = store_kv_get(rx->store, KV_UNSYNCED_BOOT, &last, &e);
	if (r == 0 && strcmp(last, rx->boot) != 0 && store_deliveries_newest_at_open(rx->store)) {
		if (cfg->webhook.hook_id > 0) {
			rx->catch_up_since = store_deliveries_newest_at_open(rx->store) / 1000 -
			                     CATCH_UP_MARGIN_S;
			log_info("catch-up: the machine restarted since deliveries were last "
			         "answered before their fsync: those GitHub sent since %" PRId64
			         " (unix s) are looked at",
			         rx->catch_up_since);
		} else if (!cfg->github.is_org) {
			log_info("catch-up: the machine restarted since deliveries were last "
			         "answered before their fsync; without webhook.hook_id none lost "
			         "can be asked of GitHub again, and the sweep of the repository's "
			         "runs finds the jobs they queued");
		} else {
			log_warn("catch-up: the machine restarted since deliveries were last "
			         "answered before their fsync, and without webhook.hook_id none "
			         "lost can be asked of GitHub again");
		}
	}
	free(last);
	if (rx->catch_up_since == 0)
		reactive_catch_up_mark(rx, cfg);
}

void reactive_catch_up_mark(struct reactive *rx, const struct config *cfg)
{
	struct err e = {0};
	int r;

	if (!rx->boot[0] || rx->catch_up_since)
		return; /* a catch-up to make first: the old boot stays written down */
	if (config_catch_up_after_reboot(cfg))
		r = store_kv_set(rx->store, KV_UNSYNCED_BOOT, rx->boot, &e);
	else if (reactive_journal_settle(rx->journal, SETTLE_MS) == 0) /* what a reload left */
		r = store_kv_delete(rx->store, KV_UNSYNCED_BOOT, &e);
	else
		r = 0; /* a sync behind failed: keep the mark, a reboot then catches up */
	if (r < 0)
		log_warn("catch-up: %s", e.msg);
}

/* Whether guid is at i for the first time in l (newest first: its newest attempt). */
static bool newest_attempt(const struct github_hook_delivery_list *l, size_t i)
{
	for (size_t k = 0; k < i; k++)
		if (strcmp(l->v[k].guid, l->v[i].guid) == 0)
			return false;
	return true;
}

/* 0 when the catch-up is done; < 0 to try again later. */
static int catch_up_run(struct reactive *rx, const struct config *cfg, struct github *gh,
                        int64_t now_s)
{
	struct github_hook_delivery_list l = {0};
	int64_t since = rx->catch_up_since;
	size_t asked = 0, kept = 0;
	struct err e = {0};
	int r;

	if (since < now_s - CATCH_UP_MAX_AGE_S)
		since = now_s - CATCH_UP_MAX_AGE_S;
	r = github_list_deliveries_since(gh, cfg->webhook.hook_id, since, CATCH_UP_LIST_MAX, &l,
	                                 &e);
	if (r < 0) {
		log_warn("catch-up: %s (tried again in %" PRId64 " s)", e.msg,
		         cfg->webhook.backfill_interval);
		return r;
	}
	for (size_t i = 0; i < l.n && r == 0; i++) {
		const struct github_hook_delivery *d = &l.v[i];
		bool seen = false;

		if (strcmp(d->event, "workflow_job") != 0 || !d->guid[0] || !newest_attempt(&l, i))
			continue;
		/* one asked again by a catch-up cut short, since it began: it is on its way */
		if (d->redelivery && d->delivered_at >= rx->catch_up_began)
			continue;
		r = store_delivery_seen(rx->store, d->guid, &seen, &e);
		if (r < 0) {
			log_warn("catch-up: %s", e.msg);
			break;
		}
		if (seen) {
			kept++;
			continue;
		}
		r = github_redeliver(gh, cfg->webhook.hook_id, d->id, &e);
		if (r == -ENOENT) {
			r = 0; /* GitHub no longer has it */
			continue;
		}
		if (r < 0) {
			log_warn("catch-up: %s (the rest in %" PRId64 " s)", e.msg,
			         cfg->webhook.backfill_interval);
			break;
		}
		asked++;
		REACTIVE_COUNT(rx, caught_up, 1);
		log_info("catch-up: delivery %s (%s %s, %s %" PRId64
		         " before the restart) redelivered",
		         d->guid, d->event, d->action,
		         d->status_code >= 200 && d->status_code < 300 ? "answered" : "failed with",
		         d->status_code);
	}
	if (r == 0)
		log_info("catch-up: done: %zu workflow_job deliveries since %" PRId64
		         " kept, %zu redelivered",
		         kept, since, asked);
	github_hook_delivery_list_release(&l);
	return r;
}

bool reactive_catch_up(struct reactive *rx, const struct config *cfg, struct github *gh,
                       int64_t now)
{
	if (!rx->catch_up_since || cfg->webhook.hook_id <= 0 || !gh)
		return false;
	/* after a failure, tried again as the backfill is: every backfill_interval */
	if (rx->catch_up_tried_at &&
	    now - rx->catch_up_tried_at < cfg->webhook.backfill_interval * 1000)
		return false;
	rx->catch_up_tried_at = now;
	if (!rx->catch_up_began)
		rx->catch_up_began = now / 1000;
	if (catch_up_run(rx, cfg, gh, now / 1000) < 0)
		return false;
	rx->catch_up_since = 0;
	reactive_catch_up_mark(rx, cfg);
	return true;
}
