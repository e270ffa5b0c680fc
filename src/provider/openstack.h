/*
 * The `openstack` provider: each instance is a Nova server booted from the
 * flavor's image (Glance, by name or id) with providers.<name>.flavor (a
 * Nova flavor) on providers.<name>.network (Neutron), through the
 * Keystone v3, Nova, Neutron and Glance REST APIs, credentials from a
 * clouds.yaml (password or application-credential auth).
 *
 * Keystone: one token (POST /v3/auth/tokens) with its catalog, cached,
 * renewed five minutes before it expires and once when an API answers
 * 401. Endpoints come from the catalog by interface and region. Names of
 * the image, flavor and network are resolved once and cached.
 *
 * A server carries the metadata runnerd-manager, runnerd-flavor and
 * runner-name; list() returns only servers whose name is owned by the
 * manager (^<manager>-[0-9a-f]{12}$, exactly) and whose runnerd-manager
 * is the manager, every page of GET /servers/detail (servers_links next,
 * on the compute endpoint only; a page missing is an error). Two servers
 * of one name: the newest is listed. delete() removes every server of
 * that name that is ours and waits until Nova answers 404 for each, then
 * the key pair of that name (when ssh_key is set) and any port of that
 * name. A quota error (403 "Quota exceeded", 413) is -EDQUOT.
 *
 * The user data (cloud-init runs it: a #!/bin/sh script) holds no secret:
 * when the instance has secrets (spec->secret_env) they are handed to it
 * once through runnerd's webhook listener (util/handoff.h): the user data
 * fetches secret_url/v1/handoff/<token> (a random, one-time token) into
 * /opt/runnerd/secret.env (0600) and starts the startup script. Without
 * secret_url a create with secrets is refused.
 *
 * Nova state -> cloud state: ACTIVE -> active; BUILD -> created; ERROR ->
 * error; SHUTOFF, STOPPED, SUSPENDED, PAUSED, SHELVED, SHELVED_OFFLOADED
 * -> stopped; DELETED, SOFT_DELETED -> deleted; anything else -> unknown.
 * health() maps the state (no probe inside). The security group
 * (security_group, default <manager>-runners) is created when missing and
 * its name has the manager's prefix: ICMP and tcp/22 in, all egress
 * (Neutron's default egress rules), with the description "runnerd
 * <manager>: its runners". gc() removes key pairs and ports named as an
 * instance of this manager that has no server and, when it is told the
 * config (provider_gc_peers), the security groups with that description
 * and the manager's prefix that no openstack provider of the config uses
 * (one a port still holds stays until a later pass).
 *
 * Every request has a connect and a total timeout, cut to what is left
 * of the call's deadline, and stops once the call's cancel flag is set.
 * Nothing logs but one debug line when a token is refused (401) and a new
 * one is got; no secret (password, token, secret env) is ever in a
 * message.
 */
#ifndef RUNNERD_PROVIDER_OPENSTACK_H
#define RUNNERD_PROVIDER_OPENSTACK_H

#include "provider/provider.h"

/* The backend (provider_open picks it for type openstack). */
extern const struct provider_ops openstack_ops;

#endif
