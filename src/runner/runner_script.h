/*
 * The startup script: one POSIX sh program (it also runs under busybox sh)
 * that every provider starts inside an instance (cloud-init user data on
 * LXD and OpenStack, a plain process for `local`). It writes the runner's
 * environment and job hooks, installs or finds the runner software, starts
 * the runner for one job with its secret in the environment only, writes the
 * metrics files runnerd reads back, then ends the instance.
 *
 * The rendered script holds no secret: the JIT config or registration token
 * (and a repo-policy token) come from $RUNNERD_HOME/secret.env, which the
 * script sources and deletes at once, or from its environment (see
 * runner_secret_env in runner/runner.h). Every configured value is rendered
 * as one single-quoted shell word, so no value can become code.
 *
 * Files under $RUNNERD_HOME (the script's directory unless the variable or
 * opts.home says otherwise): .env, hooks/pre-job.sh, hooks/post-job.sh,
 * runner/ (when unpacked here), metrics/runner-installation-start.timestamp,
 * metrics/runner-installed.timestamp, metrics/pre-job-metrics.json,
 * metrics/post-job-metrics.json.
 */
#ifndef RUNNERD_RUNNER_SCRIPT_H
#define RUNNERD_RUNNER_SCRIPT_H

#include "util/common.h"
#include "util/buf.h"
#include "util/err.h"
#include "config/config.h"

/* How the instance ends once the runner is done. */
enum runner_end {
	RUNNER_END_EXIT = 0, /* exit with run.sh's status (the local provider) */
	RUNNER_END_POWEROFF, /* poweroff, else halt, else kill -TERM 1 (VMs, containers) */
};

/* The most a rendered script may take; far above what any config yields. */
#define RUNNER_SCRIPT_MAX (256 * 1024)

struct runner_script_opts {
	/* github.api_url/path/is_org/runner_group and the runner section. */
	const struct config *cfg;
	const struct config_flavor *flavor; /* labels, arch */
	const char *name;                   /* the runner's (and instance's) name */
	enum runner_end end;
	/* RUNNERD_HOME when the environment does not set it; NULL or "" =
	 * the directory the script is in. */
	const char *home;
	/* Where the runner software may come from, tried in this order: */
	const char *image_dir;    /* already in the image: used if <dir>/run.sh exists */
	const char *tarball;      /* a package on the instance ($RUNNERD_RUNNER_TARBALL wins) */
	const char *download_url; /* downloaded with curl or wget; needs sha256 */
	/* 64 hex digits; checks both a package and a download. NULL: a package is
	 * trusted as given (the local provider's copy is already verified). */
	const char *sha256;
	/*
	 * Deadlines inside the instance, in seconds (0 = the default below).
	 * The download: each curl attempt ends by it and no retry starts
	 * after it (so all of them within twice it), and a transfer that
	 * stalls (under 1 KiB/s) for a minute ends at once; wget runs under
	 * timeout(1) where the instance has one. The repo-policy check: its
	 * one request.
	 */
	int64_t download_timeout_s;
	int64_t policy_timeout_s;
	/*
	 * The oldest runner version the image's may be to be used as is
	 * (runner_version_floor); an older one is replaced from the package or
	 * download above and noted in metrics/runner-version. NULL or "": the
	 * image's runner is used whatever its version.
	 */
	const char *image_min_version;
};

#define RUNNER_DOWNLOAD_TIMEOUT_S 1200 /* the default bootstrap_timeout */
#define RUNNER_POLICY_TIMEOUT_S   60

/*
 * Render the script into out (appended; bounded by RUNNER_SCRIPT_MAX).
 * -EINVAL (with a message in e) for missing or malformed options: no config,
 * flavor or name, a sha256 that is not 64 hex digits, a download URL without
 * a sha256, labels runner_labels() refuses, an unknown end action.
 */
int runner_script_render(const struct runner_script_opts *opts, struct buf *out, struct err *e);

/*
 * Where things live inside a VM or container (providers other than local):
 * RUNNERD_HOME, a runner package a provider may push there, and where
 * images built like the original's keep the runner (the fast path).
 */
#define RUNNER_INSTANCE_HOME    "/opt/runnerd"
#define RUNNER_INSTANCE_TARBALL RUNNER_INSTANCE_HOME "/runner.tar.gz"
#define RUNNER_IMAGE_DIR        "/home/ubuntu/actions-runner"

/*
 * The standard script for a flavor. local: end with exit, RUNNERD_HOME and
 * the package come from the local provider's environment. Otherwise: end
 * with poweroff, home RUNNER_INSTANCE_HOME, the runner from RUNNER_IMAGE_DIR
 * or RUNNER_INSTANCE_TARBALL, else downloaded from download_url and
 * checked against sha256 (both NULL: no download fallback), within the
 * bootstrap timeout (an instance whose runner is not up by then is removed
 * anyway). image_min_version: opts.image_min_version (ignored when local).
 */
int runner_script_for(const struct config *cfg, const struct config_flavor *flavor,
                      const char *name, bool local, const char *download_url, const char *sha256,
                      const char *image_min_version, struct buf *out, struct err *e);

/* "exit" / "poweroff". */
const char *runner_end_name(enum runner_end end);

#endif
