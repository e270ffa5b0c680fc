/*
 * The manager: the original's RunnerManager. It owns one reconcile pass at a
 * time (observe -> plan -> execute -> record) and the operations built on it:
 * create/delete runners, flush (idle | busy), cleanup, drain and resume, and
 * the runner listing used by `runnerd status`.
 *
 * Passes never overlap: every entry point that observes or acts takes the
 * pass lock (the drain flag does not). The manager borrows the config,
 * store, GitHub client and providers it is given (manager_open builds them
 * all for the commands and the daemon). It never touches a name not owned
 * by the configured manager name.
 */
#ifndef RUNNERD_MANAGER_H
#define RUNNERD_MANAGER_H

#include "util/common.h"
#include "util/buf.h"
#include "util/err.h"
#include "config/config.h"
#include "github/github.h"
#include "manager/planner.h"
#include "metrics/metrics_event.h"
#include "provider/provider.h"
#include "store/store.h"

struct manager;

/* The most providers one manager reaches. */
#define MANAGER_MAX_PROVIDERS 8

/* One line of what a pass did. */
struct manager_event {
	char action[24]; /* create, delete, delete-runner, adopt, forget */
	char name[INSTANCE_NAME_MAX];
	char flavor[64];
	char provider[PROVIDER_NAME_MAX]; /* of a create or delete; "" when none or unknown */
	char reason[24];
	char outcome[256]; /* "ok", "busy", or an error message */
	bool ok;
};

/* What the manager keeps of its instances on disk, as the pass left it, and its bounds. */
struct manager_disk {
	bool measured; /* false: error says why */
	char error[256];
	size_t metrics_dirs; /* state_dir/metrics/<name>/ */
	uint64_t metrics_bytes;
	int64_t metrics_retention; /* seconds */
	size_t logs_dirs;          /* log_dir/<name>/ */
	uint64_t logs_bytes;
	uint64_t logs_max_bytes;
	int64_t log_retention; /* seconds */
};

/* A provider as the pass left it: what it is, how it isolates, what the front counted. */
struct manager_provider_view {
	char name[PROVIDER_NAME_MAX];
	char type[32];
	struct provider_traits traits; /* its note among them */
	struct provider_stats stats;
	char quota_error[256];  /* creates held: its cloud's quota is used up ("" not held) */
	int64_t quota_since;    /* the first refusal (unix s) */
	int64_t quota_retry_at; /* one create tries it again then (unix s) */
};

/* The runner software's versions as the manager last knew them (runner_version.c). */
struct manager_flavor_runner {
	char flavor[FLAVOR_NAME_MAX];
	char refused[32];      /* degraded: GitHub refused this runner version ("" not) */
	int64_t refused_at;    /* when it was learned (unix s) */
	int64_t retry_at;      /* when runners are tried again anyway */
	char last_refused[32]; /* the last version refused (kept once the hold ends) */
	char image[32];        /* the image's runner was this old and was replaced ("" no) */
	int64_t image_at;      /* when an instance last said so */
};
struct manager_runner_versions {
	char in_use[32];             /* the package new instances get, "" not known yet */
	int64_t in_use_published_at; /* its release (0 unknown) */
	int64_t behind_since;        /* a newer release came out then (0: none, or unknown) */
	char latest[32];             /* GitHub's newest release, "" unknown */
	int64_t latest_published_at;
	char image_floor[32]; /* an image's runner older than this is replaced ("" none) */
	int64_t checked_at;   /* the releases were last read (unix s), 0 never */
	char error[256];      /* why the last check failed, "" when it did not */
	struct manager_flavor_runner flavors[64]; /* flavors with a refusal or an old image */
	size_t n_flavors;
};

struct manager_report {
	struct manager_event *events;
	size_t n_events;
	size_t cap_events;
	bool deletions_blocked;          /* a list was incomplete */
	char github_error[256];          /* "" when the GitHub list was complete */
	char provider_error[256];        /* "" when every provider list was complete */
	struct plan plan;                /* the plan that was executed (views, counts) */
	int64_t started_at, finished_at; /* unix ms */
	struct manager_disk disk;
	struct manager_provider_view providers[MANAGER_MAX_PROVIDERS];
	size_t n_providers;
	struct github_stats github; /* the GitHub client's counters and budgets as the pass ended */
	/* reactive mode: waiting jobs were counted (a hook) and jobs can come (an intake with
	 * a secret, or a queue shared with other managers); plan.counts[].waiting says how many */
	bool reactive;
	int64_t spooled; /* jobs taken but not yet handed to the shared queue (the hook's) */
	int64_t ahead; /* runners created before the lists (webhooks' passes); plan has the rest */
	struct manager_runner_versions runner; /* versions in use, degraded flavors */
};

void manager_report_release(struct manager_report *r);

/* Hooks that later issues fill (tests may set them). */
struct manager_hooks {
	/* Queued jobs routed to a flavor (the reactive issue); NULL = 0. */
	int64_t (*waiting_jobs)(void *ctx, const char *flavor);
	/* Jobs taken while the shared queue could not (the amqp spool); NULL = 0. */
	int64_t (*spooled)(void *ctx);
	void *ctx;
};

/*
 * Build a manager over existing parts (used by tests and benchmarks with the
 * memory provider). A flavor is served by the provider of its provider name
 * (provider_name()). The manager's cancel flag reaches every provider.
 */
int manager_new(const struct config *cfg, struct store *store, struct github *gh,
                struct provider **providers, size_t n_providers, struct manager **ret,
                struct err *e);

/*
 * Build everything from cfg: lock the state dir (fails with -EWOULDBLOCK
 * while another runnerd holds it), open the store, the GitHub client, the
 * providers (of the flavors, and those still holding instances of ours),
 * and apply the config's policy (denylist, hidden paths) to them.
 */
int manager_open(const struct config *cfg, struct manager **ret, struct err *e);
void manager_free(struct manager *m);
/* Log, once at start, how each provider protects the host and what of the
 * policy it could not apply (the daemon calls it). */
void manager_log_setup(struct manager *m);

void manager_set_hooks(struct manager *m, const struct manager_hooks *h);
/*
 * Who hears of the events the metrics extraction issues and of its
 * quarantines, besides the events log (the daemon's Prometheus metrics).
 * s is copied (set it before the first pass); NULL: none (the default).
 * Its callbacks run on the threads of a pass (the deletes' collecting lane
 * and the pass's own).
 */
void manager_set_metrics_sink(struct manager *m, const struct metrics_sink *s);

/*
 * The events log (metrics.events_log of the config in use): opened again
 * by path, for logrotate (the daemon calls it on SIGHUP). manager_open
 * enables the log (opened when the first event comes); a manager built
 * with manager_new logs events only once this was called. On failure the
 * old file stays in use.
 */
int manager_reopen_events_log(struct manager *m, struct err *e);

/*
 * The state store and the GitHub client the manager uses (borrowed: valid
 * until manager_free; the client may be replaced by manager_reload, so ask
 * again after one). For the daemon's reactive mode, on the pass loop.
 */
struct store *manager_store(struct manager *m);
struct github *manager_github(struct manager *m);

/* Stop starting new actions (shutdown). Actions under way finish (bounded by timeouts). */
void manager_cancel(struct manager *m);

/* One reconcile pass in the given mode. The report is filled even on failure. */
int manager_reconcile(struct manager *m, enum plan_mode mode, struct manager_report *ret,
                      struct err *e);

/*
 * The next manager_reconcile was asked for by webhooks alone (a job queued,
 * or one that began or ended). It creates the runners its waiting jobs call
 * for before it lists the providers and GitHub, from the counts the last
 * pass left (planner_creates_ahead; none before a first pass, after a
 * reload or while draining), then observes and plans as any pass; a flavor
 * whose create failed ahead is not tried again in that pass. It may leave
 * out the providers' sweep for leftovers (the OpenStack one lists servers,
 * key pairs, ports and security groups) when one ran within the last
 * MANAGER_LEFTOVERS_GAP_S seconds: a burst of webhooks starts a pass every
 * 25 ms. Any other pass sweeps and creates only after its lists. Any
 * thread.
 */
#define MANAGER_LEFTOVERS_GAP_S 60
void manager_next_pass_quick(struct manager *m);

/* Observe and plan, execute nothing (status without a daemon). */
int manager_observe(struct manager *m, struct manager_report *ret, struct err *e);

/*
 * The original's narrower operations, each one pass under the pass lock:
 * cleanup() runs only the deletions a normal pass would (finished, dangling,
 * orphaned, errored, offline), creating nothing; create_runners() adds n
 * runners to a flavor (never past its max); delete_runners() removes up to
 * n idle runners, newest first (GitHub first; a runner that became busy is
 * kept); get_runners() lists the runners whose GitHub state bit
 * (1 << enum github_state) and cloud state bit (1 << enum cloud_state) are in
 * the masks (0 = any), *ret malloc'ed.
 */
int manager_cleanup(struct manager *m, struct manager_report *ret, struct err *e);
int manager_create_runners(struct manager *m, const char *flavor, int64_t n,
                           struct manager_report *ret, struct err *e);
int manager_delete_runners(struct manager *m, int64_t n, struct manager_report *ret, struct err *e);
int manager_get_runners(struct manager *m, unsigned github_states, unsigned cloud_states,
                        struct plan_view **ret, size_t *ret_n, struct err *e);

/*
 * Drain: pools go to zero until resume; persisted in the store. It does not
 * wait for a pass under way (the next pass's plan sees it) and is safe to
 * call from any thread.
 */
int manager_set_draining(struct manager *m, bool on, struct err *e);
bool manager_draining(struct manager *m);
/* True when nothing this manager owns is left (no rows, instances or runners) per the last pass. */
bool manager_is_empty(const struct manager_report *r);

/* Swap in a new config (SIGHUP). manager.name and state_dir cannot change. */
int manager_reload(struct manager *m, const struct config *cfg, struct err *e);

/*
 * The report as JSON (control API and `status --json`), appended to out.
 * -E2BIG when it would pass out's bound, -ENOMEM: out is then untouched
 * (never half a report).
 */
int manager_report_json(const struct manager_report *r, bool draining, struct buf *out);

#endif
