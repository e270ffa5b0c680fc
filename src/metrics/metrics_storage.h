/*
 * A runner's metrics storage (state_dir/metrics/<name>/, what
 * metrics_extract pulled out of its instance) turned into events, as the
 * original's metrics/runner.py does: read and checked as hostile input
 * (metrics_read.c), quarantined as a .tar.gz when anything in it is bad
 * (metrics_quarantine.c), issued as runner_installed / runner_start /
 * runner_stop events and removed (metrics_process.c).
 *
 * The files were written by a machine a job controlled: each is at most
 * METRICS_STORAGE_FILE_MAX bytes, must be a regular file (never followed
 * through a symlink, never read when it is a FIFO or a device), and must
 * hold exactly the shape below; anything else is a cause for quarantine,
 * never a crash, a partial read or a cut string. Nothing here logs above
 * debug; functions return 0 or a negative errno and fill the caller's
 * struct err.
 */
#ifndef RUNNERD_METRICS_STORAGE_H
#define RUNNERD_METRICS_STORAGE_H

#include "util/common.h"
#include "util/err.h"
#include "metrics/metrics_event.h"

/* One file of a storage, at most (the original's limit). */
#define METRICS_STORAGE_FILE_MAX 1024
#define METRICS_RUN_ID_MAX       32 /* workflow_run_id, a string of digits on GitHub */

/* Why a storage is quarantined: a short fixed word for the log and the sink. */
enum metrics_cause {
	METRICS_CAUSE_NONE = 0,
	METRICS_CAUSE_TOO_BIG,      /* "too_big": over METRICS_STORAGE_FILE_MAX */
	METRICS_CAUSE_NOT_REGULAR,  /* "not_regular": a symlink, FIFO, device, folder, ... */
	METRICS_CAUSE_INVALID_JSON, /* "invalid_json" (duplicate keys and NUL included) */
	METRICS_CAUSE_NOT_OBJECT,   /* "not_object": JSON, but not an object */
	METRICS_CAUSE_SCHEMA, /* "schema": a field missing, of the wrong type, too long, bad */
	METRICS_CAUSE_BAD_TIMESTAMP, /* "bad_timestamp": not a finite non-negative number */
	METRICS_CAUSE_UNREADABLE,    /* "unreadable": present, but reading it failed */
};

const char *metrics_cause_name(enum metrics_cause c);

/* pre-job-metrics.json: {"timestamp", "workflow", "workflow_run_id", "repository", "event"} */
struct metrics_pre_job {
	double timestamp;
	char workflow[METRICS_WORKFLOW_MAX];
	char workflow_run_id[METRICS_RUN_ID_MAX];
	char repository[METRICS_REPO_MAX]; /* "owner/repo" */
	char event[METRICS_GH_EVENT_MAX];
};

/* post-job-metrics.json: {"timestamp", "status", "status_info": {"code"}?} */
struct metrics_post_job {
	double timestamp;
	char status[METRICS_STATUS_MAX]; /* normal | abnormal | repo-policy-check-failure */
	bool has_code;
	int64_t code;
};

/* What a storage holds, each file when present. */
struct metrics_storage {
	bool has_installation_start, has_installed, has_pre_job, has_post_job;
	double installation_start, installed;
	struct metrics_pre_job pre;
	struct metrics_post_job post;
};

/* What is wrong with a storage (filled on -EBADMSG). */
struct metrics_bad {
	enum metrics_cause cause;
	char file[40]; /* the file at fault */
};

/*
 * The pure parsers (the fuzz target's entry points): data need not be
 * NUL-terminated. 0, or -EBADMSG with *ret_bad's cause (e says what).
 * A timestamp file holds one number (surrounding blanks allowed).
 */
int metrics_parse_timestamp(const char *data, size_t len, double *ret, enum metrics_cause *ret_bad,
                            struct err *e);
int metrics_parse_pre_job(const char *data, size_t len, struct metrics_pre_job *ret,
                          enum metrics_cause *ret_bad, struct err *e);
int metrics_parse_post_job(const char *data, size_t len, struct metrics_post_job *ret,
                           enum metrics_cause *ret_bad, struct err *e);

/*
 * Read the storage folder dir (itself never followed through a symlink).
 * A missing file is no error. -EBADMSG with *ret_bad for hostile content;
 * -ENOENT when dir is not there; -ENOTDIR when it is not a folder.
 */
int metrics_storage_read(const char *dir, struct metrics_storage *ret, struct metrics_bad *ret_bad,
                         struct err *e);

/* Bounds of what a quarantine archive takes from a storage. */
#define METRICS_QUARANTINE_ENTRIES_MAX 64
#define METRICS_QUARANTINE_FILE_MAX    (64 * 1024)
#define METRICS_QUARANTINE_BYTES_MAX   (1 << 20)

struct metrics_quarantined {
	size_t entries; /* archived (files and symlinks, as symlinks) */
	size_t skipped; /* left out: FIFOs, devices, folders, past the bounds, unreadable */
	char path[PATH_MAX];
};

/*
 * Move the storage dir (of runner name) into qdir/<name>.tar.gz (0600,
 * written through a temporary and renamed; qdir made 0700 when missing):
 * the regular files of dir (each cut at METRICS_QUARANTINE_FILE_MAX, all
 * at most METRICS_QUARANTINE_BYTES_MAX, at most
 * METRICS_QUARANTINE_ENTRIES_MAX entries), symlinks as symlink entries
 * (never followed), anything else skipped; then dir is removed. name must
 * be a plain name (no '/', not starting with '.').
 */
int metrics_quarantine(const char *dir, const char *qdir, const char *name,
                       struct metrics_quarantined *ret, struct err *e);

/* What GitHub says of the job a runner ran (metrics_process's lookup). */
struct metrics_job {
	bool has_queue_duration;
	double queue_duration;                   /* max(started_at - created_at, 0) */
	char conclusion[METRICS_CONCLUSION_MAX]; /* "" unknown */
};

struct metrics_process_opts {
	const char *flavor;         /* of the runner; "" unknown */
	const char *quarantine_dir; /* NULL: a bad storage is reported and left where it is */
	bool keep;                  /* leave a processed storage where it is */
	/*
	 * The GitHub job runner name ran (run pre->workflow_run_id of
	 * pre->repository); NULL or a failure: the events go without job fields.
	 */
	int (*lookup)(void *ctx, const char *name, const struct metrics_pre_job *pre,
	              struct metrics_job *ret);
	/* Where each event goes, in order; a failure stops the issuing. */
	int (*emit)(void *ctx, const struct metrics_event *ev, struct err *e);
	void *ctx;
};

/* What metrics_storage_process did (filled whatever it returns). */
struct metrics_processed {
	size_t issued;                              /* events emitted */
	bool issued_kind[METRICS_EVENT_KIND_COUNT]; /* which */
	bool quarantined;                           /* moved to the quarantine */
	struct metrics_bad bad;                     /* why, when -EBADMSG */
	bool removed;                               /* the storage is gone */
	char quarantine_path[PATH_MAX];             /* "" none */
};

/*
 * The original's extraction of one storage dir of runner name: read it;
 * when bad (-EBADMSG) quarantine it (when quarantine_dir) and issue
 * nothing; without runner-installed.timestamp issue nothing; else issue
 * runner_installed (when the installation start is there), runner_start
 * (when the pre-job file is there) and runner_stop (pre-job and post-job),
 * in that order. Then the storage is removed (unless keep), also after an
 * emit failed part way (what was issued stays issued, as in the original).
 * Returns 0, -EBADMSG, -ENOENT (no such dir), or the failure of a read,
 * an emit or the removal.
 */
int metrics_storage_process(const char *dir, const char *name, const struct metrics_process_opts *o,
                            struct metrics_processed *ret, struct err *e);

/*
 * The lookup over GitHub (metrics_github.c): ctx is a struct
 * metrics_github. Only runs of the configured scope are asked about (the
 * repository itself, or a repository of the organization: the client's
 * -EPERM): a runner's file cannot send runnerd to ask about anything else. Bounded: at most
 * max_pages pages of the run's jobs, each a conditional request under the
 * client's timeouts.
 */
#define METRICS_GITHUB_PAGES_MAX 3

struct github;
struct metrics_github {
	struct github *gh; /* refuses repositories outside github.path's scope */
	int max_pages;     /* 0: METRICS_GITHUB_PAGES_MAX */
};

int metrics_github_lookup(void *ctx, const char *name, const struct metrics_pre_job *pre,
                          struct metrics_job *ret);

#endif
