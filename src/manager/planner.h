/*
 * The planner: observed state in, actions out. Pure — no I/O, no clock, no
 * allocation besides the result — so every rule of DESIGN.md §3 is a table
 * test. It is where the hard cases live.
 *
 * Rules in brief (the headers of planner_classify.c and planner.c have them
 * in full):
 * - join store rows, provider instances and GitHub runners by name; only
 *   names owned by the manager count;
 * - a pass whose provider or GitHub list is incomplete deletes nothing
 *   (PLAN_FLUSH_BUSY aside, which deletes what it can see);
 * - never delete a busy runner on a scale-down or an idle flush; idle
 *   runners are deleted on GitHub first and their instance only if GitHub
 *   confirmed (ACTION_DELETE with confirm_github set);
 * - desired = clamp(busy + max(min_idle, waiting), 0, max) per flavor;
 *   drain makes every flavor's desired 0.
 */
#ifndef RUNNERD_PLANNER_H
#define RUNNERD_PLANNER_H

#include "util/common.h"
#include "provider/provider.h"
#include "store/store.h"

/* In rising strength: the daemon runs one pass in the strongest mode asked. */
enum plan_mode {
	PLAN_NORMAL = 0,
	PLAN_FLUSH_IDLE, /* remove idle and offline runners too (not busy ones) */
	PLAN_FLUSH_BUSY, /* remove every runner, busy ones included */
};

struct plan_flavor {
	const char *name;
	int64_t min_idle;
	int64_t max;
	int64_t waiting_jobs; /* queued jobs routed to this flavor */
};

struct plan_runner {
	int64_t id;
	const char *name;
	bool online;
	bool busy;
};

struct plan_input {
	const char *manager;
	int64_t now;
	int64_t bootstrap_timeout; /* seconds */
	int64_t job_timeout;       /* seconds */
	int64_t health_grace;      /* seconds: a failed health probe counts only past this age */
	enum plan_mode mode;
	bool draining;

	const struct plan_flavor *flavors;
	size_t n_flavors;

	const struct store_instance *records;
	size_t n_records;

	const struct instance *instances; /* as listed by the providers */
	size_t n_instances;
	bool instances_complete;

	const struct plan_runner *runners; /* as listed on GitHub */
	size_t n_runners;
	bool runners_complete;

	/* names whose create is under way in this process (never stale) */
	const char *const *in_flight;
	size_t n_in_flight;
};

enum action_kind {
	ACTION_CREATE = 0,    /* flavor, count */
	ACTION_DELETE,        /* an instance (and its runner), see the flags */
	ACTION_DELETE_RUNNER, /* a GitHub runner with no instance (dangling) */
	ACTION_ADOPT,         /* an instance of ours with no store row: record it */
	ACTION_FORGET,        /* a store row with nothing behind it: drop it */
};

enum delete_reason {
	WHY_NONE = 0,
	WHY_FINISHED, /* the runner was seen and is gone: its job is done */
	WHY_ORPHAN,   /* the runner never appeared within the bootstrap timeout */
	WHY_ERROR,    /* the instance is in error */
	WHY_STOPPED,  /* the instance stopped */
	WHY_OFFLINE,  /* offline, not busy, past the bootstrap timeout */
	WHY_DANGLING, /* a runner of ours on GitHub without an instance */
	WHY_VANISHED, /* the instance went away behind our back */
	WHY_STALE,    /* a create that never finished (crash) */
	WHY_SCALE_DOWN,
	WHY_FLUSH,
	WHY_DRAIN,
	WHY_DUPLICATE, /* an older instance with the same name */
	WHY_RETRY,     /* a delete decided earlier (row in PHASE_DELETING) did not finish */
	WHY_DEAD,      /* booting past the health grace, and the provider's check found
	                  the runner installed but not running */
};

const char *action_kind_name(enum action_kind k);
const char *delete_reason_name(enum delete_reason w);

struct action {
	enum action_kind kind;
	enum delete_reason why;
	char name[INSTANCE_NAME_MAX]; /* instance / runner name ("" for CREATE) */
	char flavor[64];       /* CREATE, ADOPT; DELETE/FORGET: the name's flavor, for counts */
	char provider_id[128]; /* DELETE of a duplicate: which one */
	char provider[32];  /* the provider of the instance ("" unknown: the row's or flavor's) */
	int64_t created_at; /* ADOPT: the instance's creation time (0 unknown) */
	enum cloud_state cloud; /* ADOPT: its state */
	int64_t count;          /* CREATE */
	int64_t runner_id;      /* DELETE / DELETE_RUNNER: 0 when none on GitHub */
	bool extract_metrics;   /* pull metrics before the instance goes */
	bool pull_logs;         /* unhealthy: save _diag logs first */
	bool confirm_github;    /* delete the runner first; keep the instance on 422 */
	bool delete_instance;   /* DELETE: the instance too (false: runner only) */
};

/* What the planner concluded about each name, for status and metrics. */
struct plan_view {
	char name[INSTANCE_NAME_MAX];
	char flavor[64];
	enum github_state github_state;
	enum cloud_state cloud_state;
	enum health health;
	int64_t created_at;
	int64_t runner_id;
};

struct plan_flavor_count {
	char name[64];
	int64_t online, offline, busy, idle, unknown, pending, desired, creating, deleting;
	int64_t waiting; /* the input's waiting_jobs (0 when negative) */
};

struct plan {
	struct action *actions;
	size_t n_actions;
	struct plan_view *views;
	size_t n_views;
	struct plan_flavor_count *counts; /* one per input flavor, same order */
	size_t n_counts;
	bool deletions_blocked; /* a list was incomplete: nothing was deleted */
};

/* 0, or -ENOMEM. *ret is filled only on success. */
int planner_plan(const struct plan_input *in, struct plan *ret);
/*
 * The runners flavor f's waiting jobs call for before a pass lists the
 * providers and GitHub (planner.c, "Ahead of the lists"): last is the
 * flavor's counts as the last plan left them, with creating = every
 * runner created for it since (that plan's creates and those made ahead).
 * f->waiting_jobs is read now. 0 when none; never more than f->max allows.
 */
int64_t planner_creates_ahead(const struct plan_flavor *f, const struct plan_flavor_count *last,
                              bool draining);
/*
 * Each create of the plan cut to allow(ctx, a) runners (no more than it
 * asked for): 0 drops it. Every other action stays, in order.
 */
void plan_limit_creates(struct plan *p, int64_t (*allow)(void *ctx, const struct action *a),
                        void *ctx);
void plan_release(struct plan *p);

#endif
