/*
 * What runnerd collects from an instance before it goes, and keeps on disk:
 * the metrics files its startup script and hooks wrote (pulled into
 * state_dir/metrics/<name>/, waiting for post-job-metrics.json of a finished
 * runner), the logs of an unhealthy one (saved to log_dir/<name>/, bounded in
 * files, bytes and time), and the bounds of both on disk (retention, a total
 * cap for saved logs, their usage); what the metrics folders hold becomes
 * events through metrics_storage.h (and the events log, metrics_events_log.h). It must never trust
 * what it reads from an instance, write or remove outside the folders of names this manager owns,
 * nor wait past its budgets or a cancel.
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
	int64_t metrics_retention; /* seconds a metrics folder is kept */
	uint64_t logs_max_bytes;   /* saved logs of all instances, 0: no cap */
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
	unsigned saved;        /* bit (1u << enum metrics_file) per file saved */
	size_t bytes;          /* in all of them */
	int64_t waited_ms;     /* spent waiting for post-job-metrics.json */
	unsigned looked_again; /* bits: files found only when looked for again */
};

/*
 * Pull the metrics files instance name (on p) wrote into
 * state_dir/metrics/<name>/ (0700, files 0600, written atomically). A file
 * the instance lacks is no error. When finished (its runner left GitHub
 * after its job) and the job started (the pre-job file is there), wait for
 * post-job-metrics.json, which the runner's wrapper writes a moment after
 * the runner deregisters, while the instance still runs, up to
 * post_job_wait_ms. A file found missing that the others say was written
 * (the script writes installation-started, runner-installed, then the
 * pre-job hook its file; a finished runner ran that hook) is looked for
 * again up to 3 times a second apart: an instance powering off can answer
 * "not found" for a file it has. Returns 0 when every file the instance
 * holds was saved;
 * otherwise the first failure (e names the file; the other files were still
 * tried): -EINVAL for a name not owned, -ENOTSUP when p cannot pull files,
 * -E2BIG for a file over METRICS_FILE_MAX, the provider's or the disk's error.
 */
int metrics_extract(const struct metrics_opts *o, struct provider *p, const char *name,
                    bool finished, struct metrics_extracted *ret, struct err *e);

/*
 * runnerd's note in state_dir/metrics/<name>/ of the flavor name's runner
 * served, written when its metrics are pulled (never from the instance):
 * a storage processed after its row went (a kill in between) still has
 * its events name their flavor. noted_flavor gives "" when there is none
 * or it is not a plain name.
 */
int metrics_storage_note_flavor(const struct metrics_opts *o, const char *name, const char *flavor,
                                struct err *e);
void metrics_storage_noted_flavor(const struct metrics_opts *o, const char *name, char *out,
                                  size_t cap);

/*
 * What metrics_save_logs saved, and what it did not, by reason. The files
 * there were to save: the regular files of the _diag folders (however many)
 * and the single logs present.
 */
struct metrics_logs {
	size_t files;      /* saved */
	size_t bytes;      /* in them */
	size_t found;      /* there were to save */
	size_t cut;        /* _diag files the listing left out (only the most useful are listed) */
	size_t over_files; /* _diag files past log_diag_files_max */
	size_t too_big;    /* over log_file_max */
	size_t over_bytes; /* that would have passed log_bytes_max */
	size_t empty;      /* empty _diag files (nothing to save) */
	size_t unreadable; /* present but not pulled: refused, vanished, failed */
	size_t unlisted;   /* _diag folders whose listing failed (a missing one is no failure) */
	size_t late;       /* files and folders not looked at: out of time, or cancelled */
	bool out_of_time;  /* log_budget_ms ran out */
	bool cancelled;    /* the cancel flag was set */
	char why[200];     /* the first failure to pull or list, "" none */
};

/*
 * Save the logs of instance name (on p) to log_dir/<name>/: the startup
 * log, cloud-init's output and the syslog, then the runner's _diag folders
 * (where p can list files): the runner's own logs (Runner_*, Worker_*)
 * first, then newest first, then largest, whatever else a job put there
 * and however many files it made. Each file at most log_file_max, all at
 * most log_bytes_max, at most log_diag_files_max _diag files, within
 * log_budget_ms; what those bounds leave out is counted by reason in *ret
 * (metrics_logs_describe says it). Missing files are no error, and an
 * instance with no logs at all saves nothing and returns 0. A collection
 * that saved nothing of what was there (or could not look) fails: -E2BIG
 * when the bounds left out everything, -ETIMEDOUT or -ECANCELED, or the
 * provider's error (e says what was left out and why). Otherwise 0, or the
 * first failure to write (e says which; the other files were still tried),
 * or -EINVAL for a name not owned.
 */
int metrics_save_logs(const struct metrics_opts *o, struct provider *p, const char *name,
                      struct metrics_logs *ret, struct err *e);

/*
 * What l left out and why, for the log ("12 past the 64-file cap, 3 over
 * 8 MiB each, ..."), into out; "" when it left out nothing. Returns the
 * length it wanted (as snprintf).
 */
size_t metrics_logs_describe(const struct metrics_opts *o, const struct metrics_logs *l, char *out,
                             size_t cap);

/*
 * The bounds on disk (metrics_disk.c). Only the folders of owned names in
 * state_dir/metrics and log_dir are ever counted or removed; symlinks and
 * other names are never touched. A folder's age is its last change. Each
 * returns how many folders went (0 when its directory does not exist), or
 * the first failure (the others were still tried). Run one at a time per
 * directory (the caller serializes them).
 */

/* Remove the saved log folders older than log_retention seconds before now (unix s). */
int metrics_prune_logs(const struct metrics_opts *o, int64_t now, struct err *e);
/* Remove the metrics folders older than metrics_retention seconds before now (unix s). */
int metrics_prune_storage(const struct metrics_opts *o, int64_t now, struct err *e);
/* Remove the quarantined archives older than metrics_retention seconds before now. */
int metrics_prune_quarantine(const struct metrics_opts *o, int64_t now, struct err *e);
/*
 * Keep saved logs within logs_max_bytes in all: remove whole folders,
 * oldest first, until the rest fits (nothing when the cap is 0).
 */
int metrics_cap_logs(const struct metrics_opts *o, struct err *e);
/*
 * Remove state_dir/metrics/<name>/ once what it holds is processed (its
 * events emitted): the one way a metrics folder goes before its retention.
 * 0 when it is gone (or was never there); -EINVAL for a name not owned.
 */
int metrics_storage_remove(const struct metrics_opts *o, const char *name, struct err *e);

/* What the folders of owned names hold now: bytes of their regular files. */
struct metrics_disk {
	size_t metrics_dirs;
	uint64_t metrics_bytes;
	size_t logs_dirs;
	uint64_t logs_bytes;
};

int metrics_disk_usage(const struct metrics_opts *o, struct metrics_disk *ret, struct err *e);

#endif
