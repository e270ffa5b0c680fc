/*
 * What a runner is registered as, and how values reach an instance safely:
 * the runner's labels (implied ones first), the secret environment handed to
 * the startup script, the GitHub web URL config.sh wants, and the shell
 * quoting every rendered value goes through. Pure functions: no I/O.
 */
#ifndef RUNNERD_RUNNER_H
#define RUNNERD_RUNNER_H

#include "util/common.h"
#include "util/buf.h"
#include "config/config.h"

/*
 * The labels a runner of this flavor is registered with: self-hosted, linux,
 * the arch label, then the flavor's labels in config order, without
 * duplicates (compared case-insensitively; the first spelling is kept).
 * *ret is replaced on success (release with strv_release), untouched
 * on failure. -EINVAL for an empty label or one with a ',' (config.sh takes
 * the labels as one comma-separated list), -ENOMEM.
 */
int runner_labels(const struct config_flavor *flavor, struct strv *ret);

/*
 * Append s to out as one POSIX shell word: single quotes, each ' written as
 * '\''. Whatever s holds ($(...), backticks, newlines), the word is inert.
 */
int runner_sh_quote(const char *s, struct buf *out);

/*
 * The secret environment for the startup script (written by a provider to
 * $RUNNERD_HOME/secret.env, or put in the script's environment):
 * "ACTIONS_RUNNER_INPUT_JITCONFIG='...'\n" when jit, else
 * "ACTIONS_RUNNER_INPUT_TOKEN='...'\n" (a registration token). Appended to
 * out, which the caller wipes (buf_wipe) when done. -EINVAL for an empty
 * secret.
 */
int runner_secret_env(const char *secret, bool jit, struct buf *out);
/* One more "NAME='value'\n" line (e.g. RUNNERD_REPO_POLICY_TOKEN); NAME is [A-Z_][A-Z0-9_]*. */
int runner_secret_env_var(const char *name, const char *value, struct buf *out);

/* The environment variable that carries a repo-policy token to the instance. */
#define RUNNER_REPO_POLICY_TOKEN_ENV "RUNNERD_REPO_POLICY_TOKEN"

/*
 * The web URL of the runner scope for config.sh --url, from the API URL:
 * https://api.github.com -> https://github.com, https://HOST/api/v3 ->
 * https://HOST, anything else (e.g. the simulator) as is; then "/" + path.
 * Appended to out. -EINVAL for an empty api_url or path.
 */
int runner_html_url(const char *api_url, const char *path, struct buf *out);

#endif
