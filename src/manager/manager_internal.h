/*
 * What the files of the manager share: the manager's state and the steps of
 * a pass (observe.c, execute.c, report.c, runner_pkg.c) that pass.c strings
 * together. Declarations go by file, in the order a pass uses them. Never
 * included from outside src/manager/: the rest of runnerd has manager.h.
 */
#ifndef RUNNERD_MANAGER_INTERNAL_H
#define RUNNERD_MANAGER_INTERNAL_H

#include "manager/manager.h"
#include "metrics/metrics.h"
#include "metrics/metrics_event.h"
#include "manager/quota_hold.h"

#include <pthread.h>
#include <stdatomic.h>

struct manager {
	const struct config *cfg;
	struct store *store;
	struct github *gh;
	struct provider *providers[MANAGER_MAX_PROVIDERS];
	size_t n_providers;
	bool owns_parts; /* manager_open built them: free them too */
	bool owns_gh;    /* gh too (built by manager_open or by a reload) */
	int lock_fd;

	pthread_mutex_t pass_lock;
	pthread_mutex_t report_lock; /* guards report events during execution */
	atomic_bool cancel;          /* shutdown: no new action; providers and GitHub give up */
	pthread_mutex_t drain_lock;  /* the drain flag and its store row change together */
	atomic_bool draining;        /* written under drain_lock; read anywhere */
	struct manager_hooks hooks;

	pthread_mutex_t disk_lock; /* one sweep of state_dir/metrics and log_dir at a time */

	struct github_app_list apps; /* runner downloads for instances that fetch it themselves */
	int64_t apps_at;             /* when apps was fetched (unix s), 0 never */
	int64_t retention_at;        /* last retention sweep of logs and metrics (unix s) */
	bool temporaries_swept;      /* by the first pass that acts */
	atomic_bool pass_quick;      /* manager_next_pass_quick: taken by the next pass that acts */
	int64_t leftovers_at;        /* the last sweep for leftovers (unix s; 0: none yet) */
	int64_t runner_group_id;     /* resolved once (org scope), 0 until then */
	bool warmed;                 /* manager_runner_pkg_warm done since start or reload */
	char group_error[256];       /* why it did not resolve */
	/* ahead.c: each flavor's counts as the last acting pass left them, creating = the
	 * runners made since; none until a first plan, and after a reload (the pass lock) */
	struct plan_flavor_count *ahead;
	size_t n_ahead;

	/* runnerd's verified runner package, fetched on a thread of its own (runner_pkg.c) */
	pthread_mutex_t pkg_lock;      /* guards what follows */
	pthread_cond_t pkg_done;       /* a fetch ended (CLOCK_MONOTONIC) */
	char runner_tarball[PATH_MAX]; /* verified runner package for local instances, "" none */
	int64_t runner_bin_at;         /* when runner_tarball was last confirmed (unix s) */
	int64_t runner_bin_tried_at;   /* last attempt to fetch it (unix s) */
	bool pkg_running;              /* a fetch is under way */
	bool pkg_joinable;             /* pkg_thread is to be joined */
	pthread_t pkg_thread;
	struct github *pkg_gh; /* the fetch's own client: cancelling it stops the fetch */

	/* runner versions (runner_version.c): the pass writes, the deletes' lane notes */
	pthread_mutex_t ver_lock;                /* guards what follows */
	struct github_runner_releases releases;  /* newest first; n = 0 unknown */
	int64_t releases_tried_at;               /* last check (unix s) */
	struct manager_runner_versions versions; /* what status and metrics show */

	/* quota holds (quota.c): the creates' lane notes, the pass and status read */
	pthread_mutex_t quota_lock;
	struct quota_holds quota;

	/* events (events.c) */
	pthread_mutex_t events_lock;           /* what follows */
	struct metrics_events_log *events_log; /* NULL until first needed */
	bool events_enabled;                   /* manager_open, or a reopen, asked for it */
	bool events_failing;                   /* said once until it works again */
	struct metrics_sink sink;
	struct manager_tally {
		char flavor[FLAVOR_NAME_MAX];
		int64_t starts, stops; /* runner_start and runner_stop issued this pass */
	} tally[64];
	size_t n_tally;
};

/* manager.c: the open provider of that name, NULL when none. */
struct provider *manager_provider_named(struct manager *m, const char *name);
/* Where metrics and logs go, from the config (valid until the next reload). */
void manager_metrics_opts(const struct manager *m, struct metrics_opts *ret);

/* observe.c: what one pass saw, joined against the store. */
struct observation {
	struct store_instance_list rows;
	struct instance_list instances;
	bool instances_complete;
	struct github_runner_list gh;
	bool runners_complete;
	struct plan_runner *runners;
	struct plan_flavor *flavors;
};

/* Fill o (always release it), fold what was seen into the store. */
int manager_observation_take(struct manager *m, struct observation *o, struct manager_report *rep,
                             int64_t now);
void manager_observation_release(struct observation *o);
/* The planner's input from o; the plan in *ret. */
int manager_observation_plan(struct manager *m, struct observation *o, enum plan_mode mode,
                             int64_t now, struct plan *ret);

/*
 * runner_pkg.c: what creates need before the pass's workers start. The
 * verified runner package is fetched beside the passes: the pass that
 * starts a fetch while there is no package waits for it at most 2 x
 * github.request_timeout, no other pass waits for it.
 */
void manager_runner_pkg_prepare(struct manager *m, const struct plan *plan);
/*
 * What the first create will need, made ready before any job asks for one
 * (a pass that acts, GitHub answering): the runner group, the downloads
 * list the first time, and a first fetch of the verified package. Done
 * once after a start or reload; prepare keeps them current.
 */
void manager_runner_pkg_warm(struct manager *m, int64_t now);
void manager_runner_pkg_init(struct manager *m);
/* Cancel a fetch under way (shutdown); it ends within about 100 ms. */
void manager_runner_pkg_cancel(struct manager *m);
/* Cancel and wait for a fetch under way, drop its client (reload, free). */
void manager_runner_pkg_stop(struct manager *m);
/*
 * A new runner release is out: fetch the package (local instances) and the
 * downloads list (the others) again now, whatever the plan (the pass's thread).
 */
void manager_runner_pkg_refresh(struct manager *m, int64_t now);
/* The verified package's path into out; false when there is none yet. */
bool manager_runner_tarball(struct manager *m, char *out, size_t cap);
/* GitHub's download of the runner for arch a, NULL when none is known. */
const struct github_runner_app *manager_runner_download(const struct manager *m, enum arch a);

/*
 * runner_version.c: GitHub's runner releases, checked every
 * runner.version_check_interval (a conditional request) in each pass; a new
 * latest release makes the package and downloads be fetched again and lifts
 * the hold on degraded flavors.
 */
void manager_runner_version_init(struct manager *m);
void manager_runner_version_check(struct manager *m, int64_t now);
/* The version of the package new instances get (the fetch and the downloads tell it). */
void manager_runner_version_in_use(struct manager *m, const char *version);
/*
 * The oldest runner an image of flavor may carry to be used as is, into out
 * ("" none): runner.image_runner_max_behind behind the releases, and above
 * a version GitHub refused for the flavor.
 */
void manager_runner_image_floor(struct manager *m, const char *flavor, char *out, size_t cap);
/* After an instance's metrics were pulled: its startup script's note (old image, refusal). */
void manager_runner_version_note(struct manager *m, struct provider *p, const char *name,
                                 const char *flavor);
/*
 * quota.c: a create's outcome on provider (r == -EDQUOT holds it, 0 ends
 * its hold), the pass's creates of held providers dropped (or cut to one
 * probe once the hold is over), and a provider's hold for status.
 */
void manager_quota_init(struct manager *m);
void manager_quota_noted(struct manager *m, const char *provider, int r, const char *error);
void manager_quota_hold(struct manager *m, struct plan *plan, int64_t now);
void manager_quota_view(struct manager *m, const char *provider, struct manager_provider_view *v);

/* Drop the creates of flavors held for a refused runner version (logged). */
void manager_runner_version_hold(struct manager *m, struct plan *plan, int64_t now);
/* What status and metrics show, into *ret. */
void manager_runner_version_view(struct manager *m, int64_t now,
                                 struct manager_runner_versions *ret);

/*
 * ahead.c: creates ahead of the lists. create: the runners the waiting jobs
 * call for now, from the counts kept (planner_creates_ahead), made before
 * the pass observes; returns how many were started (the pass lock, a pass
 * that acts and that webhooks alone asked for). keep: a plan that acted
 * leaves its counts, with its creates (after the holds and the narrower
 * operations rewrote them). release: none kept.
 */
int64_t manager_ahead_create(struct manager *m, struct manager_report *rep, int64_t now);
void manager_ahead_keep(struct manager *m, const struct plan *plan);
void manager_ahead_release(struct manager *m);

/* execute.c: run the plan's actions; each outcome goes to rep. */
int manager_execute(struct manager *m, const struct plan *plan, struct manager_report *rep);
/* Each provider's leftovers, once a pass after its actions. */
void manager_collect_leftovers(struct manager *m);
/*
 * Whether r is a provider call cut short because the daemon is stopping
 * (-ECANCELED with the cancel flag set): no failure to warn about.
 */
bool manager_stopping(struct manager *m, int r);

/*
 * disk.c: what the manager keeps of its instances on disk. Each logs what
 * it did or could not do, once. Saved logs back within their total cap
 * (after a save; from any thread):
 */
void manager_disk_after_save(struct manager *m);
/*
 * Saved logs, metrics folders and action log entries past their retention
 * go, and the logs' total cap is checked, at most once an hour (the pass).
 */
void manager_disk_retention(struct manager *m, int64_t now);
/*
 * Once, before the first pass acts: remove the temporaries of atomic writes
 * that a kill left in the state dir, the metrics and saved logs folders and
 * the runner package's folder (those of processes that are gone, and old
 * ones; a runner download's after an hour unchanged).
 */
void manager_disk_sweep_temporaries(struct manager *m, int64_t now);
/* What the metrics and saved logs folders hold now, and their bounds. */
void manager_disk_measure(struct manager *m, struct manager_disk *ret);

/*
 * events.c: the metrics storage of runner name (its flavor, "" unknown),
 * pulled before its delete, processed into events or quarantined, and
 * logged once; nothing when there is none. On the collecting lane.
 */
void manager_events_process(struct manager *m, const char *name, const char *flavor);
/* After a pass's actions: storages of runners with no row left (bounded per pass). */
void manager_events_orphans(struct manager *m, const struct plan *plan);
/* A pass starts: its counts of runner_start and runner_stop begin at 0. */
void manager_events_pass_start(struct manager *m);
/* A pass ends: one reconciliation event per flavor of its plan. */
void manager_events_reconciliation(struct manager *m, const struct manager_report *rep);
void manager_events_release(struct manager *m);

/* report.c: the state of the disk and of each provider as the pass ends, into r. */
void manager_report_snapshot(struct manager *m, struct manager_report *r);
/* One event of the pass (thread-safe), logged and put in the action log. */
void manager_report_add(struct manager *m, struct manager_report *r, const char *action,
                        const char *name, const char *flavor, const char *reason, bool ok,
                        const char *outcome);
/* The same, for an action on an instance of the provider named provider. */
void manager_report_add_on(struct manager *m, struct manager_report *r, const char *provider,
                           const char *action, const char *name, const char *flavor,
                           const char *reason, bool ok, const char *outcome);

#endif
