/*
 * The words every layer shares (DESIGN.md section 1): how long names may be,
 * the states an instance and a runner can be in, and their spellings. The
 * provider, the store and the planner all speak these; none of them owns
 * them. Pure data: no I/O, no allocation.
 */
#ifndef RUNNERD_WORDS_H
#define RUNNERD_WORDS_H

#include "util/common.h"

#define INSTANCE_NAME_MAX 64  /* 63 characters + NUL (LXD's limit) */
#define FLAVOR_NAME_MAX   64  /* 63 characters + NUL */
#define PROVIDER_NAME_MAX 32  /* 31 characters + NUL: a provider instance's name */
#define PROVIDER_ID_MAX   128 /* a provider's own id of an instance (pid, LXD name, uuid) */

/* An instance as its provider sees it. */
enum cloud_state {
	CLOUD_CREATED = 0, /* being built, not yet running */
	CLOUD_ACTIVE,      /* running */
	CLOUD_STOPPED,     /* ended (the runner exited, or stopped behind our back) */
	CLOUD_ERROR,
	CLOUD_DELETED,
	CLOUD_UNKNOWN,
};
#define CLOUD_STATE_COUNT (CLOUD_UNKNOWN + 1)

/* A runner as GitHub sees it. */
enum github_state { GH_ABSENT = 0, GH_IDLE, GH_BUSY, GH_OFFLINE, GH_UNKNOWN };
#define GITHUB_STATE_COUNT (GH_UNKNOWN + 1)

enum health { HEALTH_UNKNOWN = 0, HEALTH_HEALTHY, HEALTH_UNHEALTHY };
#define HEALTH_COUNT (HEALTH_UNHEALTHY + 1)

enum arch { ARCH_X64 = 0, ARCH_ARM64 };
#define ARCH_COUNT (ARCH_ARM64 + 1)

/* The arches' names by value, NULL-ended (the config's enum of them); use arch_name(). */
extern const char *const words_arch_names[ARCH_COUNT + 1];

/* Names as they appear in status, logs, the store and the config; "invalid" out of range. */
const char *cloud_state_name(enum cloud_state s);
const char *github_state_name(enum github_state s);
const char *health_name(enum health h);
const char *arch_name(enum arch a); /* "x64" / "arm64": GitHub's architecture label too */

/* The reverse: the enum value of a name, -1 when it is none of them. */
int cloud_state_from_name(const char *s);
int github_state_from_name(const char *s);
int health_from_name(const char *s);

/*
 * Health from the cloud state alone, as every provider reports it without
 * looking inside: active -> healthy, stopped/error/deleted -> unhealthy,
 * created/unknown -> unknown.
 */
enum health health_from_state(enum cloud_state s);

/*
 * The labels every runner of this arch carries whether or not its flavor
 * names them (GitHub adds them to a self-hosted runner): self-hosted,
 * linux, the arch label. Always WORDS_IMPLIED_LABELS of them, in that order.
 */
#define WORDS_IMPLIED_LABELS 3
void words_implied_labels(enum arch a, const char *ret[WORDS_IMPLIED_LABELS]);

/*
 * The files the startup script writes under $RUNNERD_HOME/metrics/ for
 * runnerd to read back (untrusted: the job controlled the machine).
 */
#define METRICS_DIR                  "metrics"
#define METRICS_PRE_JOB              "pre-job-metrics.json"
#define METRICS_POST_JOB             "post-job-metrics.json"
#define METRICS_RUNNER_INSTALLED     "runner-installed.timestamp"
#define METRICS_INSTALLATION_STARTED "runner-installation-start.timestamp"

#endif
