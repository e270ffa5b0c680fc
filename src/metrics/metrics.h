/*
 * What runnerd collects from an instance before it goes, and keeps on disk:
 * the metrics files its startup script and hooks wrote (pulled into
 * state_dir/metrics/<name>/, waiting for post-job-metrics.json of a finished
 * runner), the logs of an unhealthy one (saved to log_dir/<name>/, bounded in
 * files, bytes and time), and the retention of saved logs; the events log
 * and the Prometheus gauges will be built on what these return. It must
 * never trust what it reads from an instance, write outside the folder of a
 * name this manager owns, nor wait past its budgets or a cancel.
 *
 * Everything read from an instance is untrusted (the job controlled the
 * machine): every file is bounded, names listed inside the instance are used
 * only when they are plain file names, and only names this manager owns
 * (^<manager>-[0-9a-f]{12}$) become folders. Every time budget is on the
 * monotonic clock and ends early when the cancel flag is set.
 *
 * Functions return 0 (or a count) or a negative errno and, on failure, fill
 * the caller's struct err (nothing here logs above debug); output
 * parameters are untouched on failure. They keep no state: they may run
 * from several threads at once, on different instances.
 */
#ifndef RUNNERD_METRICS_H
#define RUNNERD_METRICS_H

#include "util/common.h"
#include "util/err.h"
#include "provider/provider.h"

#include <stdatomic.h>

/* The metrics files, in the order they are pulled (util/words.h names them). */
enum metrics_file {
	METRICS_FILE_PRE_JOB = 0,          /* METRICS_PRE_JOB: the job started */
	METRICS_FILE_POST_JOB,             /* METRICS_POST_JOB: the job ended */
	METRICS_FILE_RUNNER_INSTALLED,     /* METRICS_RUNNER_INSTALLED */
	METRICS_FILE_INSTALLATION_STARTED, /* METRICS_INSTALLATION_STARTED */
};
#define METRICS_FILE_COUNT (METRICS_FILE_INSTALLATION_STARTED + 1)

/* "pre-job-metrics.json", ...; "invalid" out of range. */
const char *metrics_file_name(enum metrics_file f);

/* Defaults of the bounds below (a zero field takes them). */
#define METRICS_FILE_MAX           (64 * 1024) /* one metrics file */
#define METRICS_POST_JOB_WAIT_MS   15000       /* for post-job-metrics.json of a finished runner */
#define METRICS_LOG_FILE_MAX       (8 << 20)   /* one log file */
#define METRICS_LOG_BYTES_MAX      (64 << 20)  /* one instance's logs */
#define METRICS_LOG_DIAG_FILES_MAX 64          /* files of one instance's _diag folders */
#define METRICS_LOG_BUDGET_MS      60000       /* saving one instance's logs */

/* Where things go and what they may take. The strings belong to the caller. */
struct metrics_opts {
	const char *manager;       /* the manager name: only its names are collected */
	const char *state_dir;     /* metrics go to state_dir/metrics/<name>/ */
	const char *log_dir;       /* logs go to log_dir/<name>/ */
	int64_t log_retention;     /* seconds a saved log folder is kept */
	const atomic_bool *cancel; /* stop waiting and pulling when set (NULL: never) */
	/* bounds, 0 = the default */
	int64_t post_job_wait_ms;
	int64_t log_budget_ms;
	size_t log_file_max;
	size_t log_bytes_max;
	size_t log_diag_files_max;
};

/* What metrics_extract saved. */
struct metrics_extracted {
	unsigned saved;    /* bit (1u << enum metrics_file) per file saved */
	size_t bytes;      /* in all of them */
	int64_t waited_ms; /* spent waiting for post-job-metrics.json */
};

/*
 * Pull the metrics files instance name (on p) wrote into
 * state_dir/metrics/<name>/ (0700, files 0600, written atomically). A file
 * the instance lacks is no error. When finished (its runner left GitHub
 * after its job) and the job started (the pre-job file is there), wait for
 * post-job-metrics.json, which the runner's wrapper writes a moment after
 * the runner deregisters, while the instance still runs, up to
 * post_job_wait_ms. Returns 0 when every file the instance holds was saved;
 * otherwise the first failure (e names the file; the other files were still
 * tried): -EINVAL for a name not owned, -ENOTSUP when p cannot pull files,
 * -E2BIG for a file over METRICS_FILE_MAX, the provider's or the disk's error.
 */
int metrics_extract(const struct metrics_opts *o, struct provider *p, const char *name,
                    bool finished, struct metrics_extracted *ret, struct err *e);

/* What metrics_save_logs saved, and what its bounds left out. */
struct metrics_logs {
	size_t files;      /* saved */
	size_t bytes;      /* in them */
	size_t unreadable; /* present or listed but not pulled (too big, refused, failed) */
	size_t left_out;   /* _diag files past log_diag_files_max */
	bool out_of_bytes; /* log_bytes_max was reached */
	bool out_of_time;  /* log_budget_ms ran out before the end */
	bool cancelled;    /* the cancel flag stopped it before the end */
};

/*
 * Save the logs of instance name (on p) to log_dir/<name>/: the runner's
 * _diag folders (where p can list files), the startup log, cloud-init's
 * output and the syslog, each at most log_file_max, all at most
 * log_bytes_max, within log_budget_ms. Missing files are no error; a file
 * the instance refuses is counted in unreadable. Returns 0, or the first
 * failure to write (e says which; the other files were still tried) or
 * -EINVAL for a name not owned.
 */
int metrics_save_logs(const struct metrics_opts *o, struct provider *p, const char *name,
                      struct metrics_logs *ret, struct err *e);

/*
 * Remove the saved log folders in log_dir of owned names whose folder was
 * last changed more than log_retention seconds before now (unix s); symlinks
 * and other names are never touched. Returns how many went (0 when log_dir
 * does not exist), or the first failure (the others were still tried).
 */
int metrics_prune_logs(const struct metrics_opts *o, int64_t now, struct err *e);

/*
 * Remove what a runnerd killed while it saved metrics or logs left: the
 * temporaries of the files it was writing, in state_dir/metrics/<name>/
 * and log_dir/<name>/ (and its _diag/) of owned names. Only under the
 * state-dir lock, before the first pass (see file_remove_temps). Returns
 * how many went, or the first failure (the other folders were still tried).
 */
int metrics_remove_temps(const struct metrics_opts *o, struct err *e);

#endif
