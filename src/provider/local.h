/*
 * The `local` provider: each instance is the startup script running on this
 * machine as a uid of its own (and the gid of that number, no other group)
 * from providers.<name>.uid_range, in its own session and, where the kernel
 * allows it, its own PID and mount namespaces, in its own directory
 * work_dir/<name>/ (owned by that uid, 0700). Instances outlive the daemon:
 * a new provider lists what an earlier process started.
 *
 * Layout (work_dir is root-owned 0711, so instances cannot list it):
 *   work_dir/<name>/            HOME of the instance, its uid's, 0700:
 *     startup.sh runner.tar.gz  root's, read-only: the job cannot change them
 *     startup.log tmp/          the uid's (tmp is its /tmp when isolated)
 *   work_dir/.state/<name>.json runnerd's record (root 0600): pid, process
 *                               start time, uid, flavor, created_at
 *   work_dir/.state/uids        root 0600: the lock of uid claims, and where
 *                               the next one starts (least recently used first)
 *   work_dir/.state/empty       root 0400, empty: bound read-only over
 *                               runnerd's secret files inside isolated instances
 *
 * Uids: one per live instance, held from its record's writing (before
 * anything exists) to its removal (once every process of it is gone), and
 * given out again only when no process has it (as any of its uids or
 * gids), least recently used first. A job cannot change its uid (no
 * privileges, no_new_privs), so instances cannot read each other's
 * /proc/<pid>/environ (their secrets) or files, nor signal each other, in
 * either mode; and an instance's processes are found by uid wherever they
 * went (a new session, a cleared or forged environment). The range must be
 * this provider's alone: opening refuses one holding an account's uid, a
 * group's gid or subordinate ids (/etc/subuid, /etc/subgid).
 *
 * Namespace mode (isolated): state_dir, log_dir and work_dir are empty tmpfs
 * inside (the instance's own dir bound back), every secret file the config
 * names (github.token_file, github.app.private_key_file,
 * webhook.secret_file, queue.uri_file, runner.repo_policy_compliance
 * .token_file) reads as that empty root-only file, /tmp and /var/tmp are
 * its own tmp/, and deleting the instance kills its PID namespace's init,
 * which takes every process in it.
 * Fallback mode (no namespaces: the kernel refuses them, or
 * RUNNERD_LOCAL_NO_NAMESPACES=1 at open): jobs see every process of the
 * machine, share /tmp, /var/tmp and /dev/shm with the host, and runnerd's
 * secret files are protected by their mode only. Opening refuses it unless
 * providers.<name>.allow_weak_isolation is true.
 *
 * gc sweeps: processes of the range's uids that no record holds are killed,
 * whatever they say of themselves. Nothing of another uid, or of a mixed
 * one, is ever signalled. Legacy: instances an older runnerd started as the
 * shared providers.<name>.user (version 1 records) are adopted, stopped by
 * their session or namespace, and that user's processes outside them are
 * swept as before.
 *
 * policy: its hidden_dirs and secret_files are what isolated instances
 * cannot see (above); the denylist is not enforced by this provider.
 *
 * Flavor resources (vcpu, memory, disk) are not enforced: no cgroups here.
 *
 * Deadlines and cancel: every wait (a uid claim's lock, the start
 * handshake, a stop's grace and KILL rounds, the sweep's pauses) ends at
 * the call's deadline. A create cancelled during its handshake gives up and
 * removes what it made (PROVIDER_EMAYREMAIN, record kept, when its
 * processes are not seen gone); a stop, once begun, is finished even when
 * the call is cancelled. A delete's deadline is at least stop_timeout and
 * the KILL rounds.
 *
 * Secrets reach the script only through its environment (never argv, never
 * a file). Requires root: opening fails otherwise, and creates the legacy
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
/*
 * Turn namespaces off for instances created from now on (tests of the
 * fallback path; allow_weak_isolation is not asked); it cannot turn them on
 * where the kernel refuses or RUNNERD_LOCAL_NO_NAMESPACES=1 turned them off.
 */
void local_set_isolated(struct provider *p, bool on);

#endif
