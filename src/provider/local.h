/*
 * The `local` provider: each instance is the startup script running on this
 * machine as the unprivileged providers.local.user, in its own session and,
 * where the kernel allows it, its own PID and mount namespaces, in its own
 * directory work_dir/<name>/ (owned by that user, 0700). Instances outlive
 * the daemon: a new provider lists what an earlier process started.
 *
 * Layout (work_dir is root-owned 0711, so runner users cannot list it):
 *   work_dir/<name>/            HOME of the instance, runner-owned 0700:
 *     startup.sh startup.log runner.tar.gz tmp/  (tmp is its /tmp when isolated)
 *   work_dir/.state/<name>.json runnerd's record (root 0600): pid, process
 *                               start time, flavor, created_at
 *   work_dir/.state/empty       root 0400, empty: bound read-only over
 *                               runnerd's secret files inside isolated instances
 *
 * Isolated (namespaces): state_dir, log_dir and work_dir are empty tmpfs
 * inside (the instance's own dir bound back), every secret file the config
 * names (github.token_file, github.app.private_key_file,
 * webhook.secret_file, queue.uri_file, runner.repo_policy_compliance
 * .token_file) reads as that empty root-only file, and deleting the
 * instance kills its PID namespace's init, which takes every process in it.
 * Not isolated (fallback): secrets are protected by their file mode only;
 * delete stops the leader's session and the processes whose RUNNERD_HOME is
 * the instance's dir, even after the leader is gone.
 *
 * gc sweeps: processes of the runner user that belong to no recorded
 * instance (not in a recorded session or PID namespace, not naming a
 * recorded instance in RUNNERD_HOME) are killed. The user must therefore
 * be runnerd's alone. Nothing of another uid is ever signalled.
 *
 * policy: its hidden_dirs and secret_files are what isolated instances
 * cannot see (above); the denylist is not enforced by this provider.
 *
 * Flavor resources (vcpu, memory, disk) are not enforced: no cgroups here.
 *
 * Deadlines and cancel: every wait (the start handshake, a stop's grace
 * and KILL rounds, the sweep's pauses) ends at the call's deadline. A
 * create cancelled during its handshake gives up and removes what it made
 * (PROVIDER_EMAYREMAIN, record kept, when its processes are not seen gone);
 * a stop, once begun, is finished even when the call is cancelled. A
 * delete's deadline is at least stop_timeout and the KILL rounds.
 *
 * Secrets reach the script only through its environment (never argv, never
 * a file). Requires root: opening fails otherwise, and creates the runner
 * user (system user, own group, no password, nologin) if missing.
 *
 * The implementation lives in src/provider/local/ (one concern a file; its
 * private header is local_internal.h).
 */
#ifndef RUNNERD_PROVIDER_LOCAL_H
#define RUNNERD_PROVIDER_LOCAL_H

#include "provider/provider.h"

/* The backend (provider_open picks it for type local). */
extern const struct provider_ops local_ops;

/* True when instances get their own PID and mount namespaces. */
bool local_isolated(const struct provider *p);
/* Turn namespaces off for instances created from now on (tests of the
 * fallback path); it cannot turn them on where the kernel refuses. */
void local_set_isolated(struct provider *p, bool on);
/* The uid instances run as. */
uid_t local_runner_uid(const struct provider *p);

#endif
