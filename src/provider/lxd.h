/*
 * The `lxd` provider: each instance is an LXD container (or virtual
 * machine) made from a local image alias, driven through LXD's REST API on
 * its unix socket, every call in providers.<name>.project (no `lxc` command,
 * no remote image server).
 *
 * An instance carries the config keys user.runnerd.manager and
 * user.runnerd.flavor: list() returns only names owned by the manager whose
 * user.runnerd.manager is that manager, and delete() refuses an instance
 * another manager made. create() writes, when there are secrets,
 * /opt/runnerd/secret.env (root, 0600) through the files API, into a
 * container before it first starts (a VM's files can only go through its
 * agent: after it booted); the secrets go nowhere else (no config key, no
 * exec argument). The startup script (which holds no secret) is started
 * by cloud-init (providers.<name>.bootstrap: cloud-init, the default): it is
 * in cloud-init.user-data and user.user-data, a #!/bin/sh user-data script
 * that writes it to /opt/runnerd/startup.sh (root, 0700) and starts it
 * once the marker /opt/runnerd/.pushed, pushed after secret.env, is there.
 * With bootstrap: exec (images without cloud-init) it is pushed to
 * /opt/runnerd/startup.sh and started by one detached exec once the
 * instance answers execs. Either way it runs detached, output in
 * /opt/runnerd/startup.log. spec->runner_tarball is not pushed: the script
 * finds the runner in the image or downloads it.
 *
 * A create that fails deletes what it made. LXD cannot cancel a create
 * whose operation timed out (it goes on unpacking): it is given as long
 * again to end before the delete, so that the delete does not race it.
 * When what was made cannot be deleted (and seen gone), create() fails
 * with PROVIDER_EMAYREMAIN, its message ending in "may remain".
 *
 * LXD status -> cloud state: Running, Ready -> active; Starting -> created;
 * Stopped, Stopping -> stopped (the runner is done: the script powers the
 * instance off); Error, Aborting -> error; Frozen, Freezing, Thawed ->
 * unknown (paused by an operator, treated as running); anything else ->
 * unknown.
 *
 * health(): not running -> from the state (missing -> unknown). Running ->
 * one exec (no websocket, no recorded output) looks for the runner process
 * (Runner.Listener): found -> healthy; not found while
 * metrics/runner-installed.timestamp exists -> unhealthy (the runner died);
 * not found before that -> unknown (still booting: the manager's age rules
 * decide); an exec LXD refuses (a VM whose agent is not up) -> unknown.
 *
 * pull_file() and list_files(): paths are relative to /opt/runnerd unless
 * absolute, `..` is refused, everything read is capped. They never read a
 * FIFO, a socket or a device: LXD 5.0's files API calls those "file" and
 * opens what it reads, and a FIFO wedges it (its file server blocks, then
 * spins and holds the instance until LXD restarts). So while the instance
 * runs commands, one exec per call does the work inside it: `[ -f ]` and
 * `[ ! -L ]`, then `head -c` whose recorded output is the content; a
 * listing with only regular files. Without exec (a stopped instance, a VM
 * without its agent) they use the files API: types by HEAD (which does not
 * open), then a GET under a short timeout that, when it does not answer
 * within 2 s, opens the same path for appending (nothing written; a
 * missing path is not made) so that a FIFO's blocked open returns, and the
 * empty answer is refused; a read that times out all the same stops reads
 * from that instance for 10 minutes. That listing includes FIFOs, sockets
 * and devices (LXD calls them files); pull_file refuses them.
 *
 * policy(): runner.denylist is enforced by one network ACL owned by this manager,
 * runnerd-<manager>-deny (egress reject per CIDR), attached to
 * providers.<name>.network through the network's security.acls (LXD 5.0
 * refuses ACLs on an instance's bridged NIC), next to any ACL already
 * there. When it is the first ACL there, the network's default ACL
 * actions are set to allow (marked by user.runnerd.<manager>.acl-defaults)
 * so that everything not denied keeps working; they are removed with the
 * last ACL. ACLs without our name are never touched. While a non-empty
 * denylist is not in place, create() fails (it retries the sync first).
 * The ACL applies to every instance on that network, runnerd's or not.
 *
 * Every request has a connect and a total timeout, each cut to what is left
 * of the call's deadline; asynchronous operations are waited on with
 * /1.0/operations/<id>/wait under the operation timeout or the call's
 * deadline, whichever comes first (in whole-second long polls that end
 * before it). Once the call's cancel flag is set, requests in flight stop,
 * waits end and nothing more is sent (-ECANCELED); a create cancelled after
 * it asked LXD for the instance does not clean up (every request is
 * refused by then) and fails with PROVIDER_EMAYREMAIN: what remains is what
 * kill -9 would leave, and the record the manager wrote first makes it
 * delete the instance later.
 * An operation LXD no longer knows (404: lost in an LXD restart) is a
 * failure (-EIO), never "gone"; delete() succeeds only once a fetch of the
 * instance answers 404.
 * LXD's errors come back as -ENOENT (404), -EEXIST (409), -EINVAL (400),
 * -EACCES (403), -EAGAIN (412, 503) or -EIO with LXD's own text. All
 * functions may be called from several threads at once; nothing logs.
 */
#ifndef RUNNERD_PROVIDER_LXD_H
#define RUNNERD_PROVIDER_LXD_H

#include "provider/provider.h"

#define LXD_HOME "/opt/runnerd"

/* The backend (provider_open picks it for type lxd). */
extern const struct provider_ops lxd_ops;

/* Knobs for tests: each 0 keeps the provider's setting. */
struct lxd_opts {
	long connect_timeout_ms;   /* 5000 */
	long request_timeout_ms;   /* plain requests, 30000 */
	int64_t operation_timeout; /* seconds, else providers.<name>.operation_timeout */
	int64_t stop_timeout;      /* seconds, else providers.<name>.stop_timeout */
	size_t max_list_body;      /* bytes of one instance listing, 64 MiB */
};

/* Change an open lxd provider's knobs (and so its deadlines); -EINVAL for another provider. */
int lxd_set_opts(struct provider *p, const struct lxd_opts *opts);

/* "runnerd-<manager>-deny" into out; -ENAMETOOLONG when it does not fit. */
int lxd_deny_acl_name(const char *manager, char *out, size_t cap);

/*
 * Tests: fn sees every request before it is sent (method, full URL, body).
 * It runs on the calling thread, so it must be thread-safe. NULL turns it off.
 */
typedef void (*lxd_trace_fn)(void *arg, const char *method, const char *url, const void *body,
                             size_t body_len);
int lxd_set_trace(struct provider *p, lxd_trace_fn fn, void *arg);

#endif
