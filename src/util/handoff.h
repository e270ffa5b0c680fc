/*
 * One-time hand-off of an instance's secrets (its secret.env: the JIT
 * config or registration token) to a provider that has no files API
 * (openstack): the provider puts the secret here under a random token and
 * writes only the token's URL into the instance's user data; the instance
 * fetches it once from runnerd's webhook listener (GET
 * /v1/handoff/<token>), which takes it from here. A secret is given out
 * once, and only within its time to live; then it is wiped. The table is
 * this process's memory: secrets put by a process that does not serve
 * the listener (or one that restarted) are never fetched, and their
 * instances never register (the manager's bootstrap timeout removes them).
 */
#ifndef RUNNERD_HANDOFF_H
#define RUNNERD_HANDOFF_H

#include "util/common.h"
#include "util/buf.h"
#include "util/err.h"

#define HANDOFF_TOKEN_LEN  64 /* hex characters: 32 random bytes */
#define HANDOFF_SECRET_MAX (256 * 1024)
#define HANDOFF_MAX        4096 /* secrets waiting at once */

/*
 * Keep secret (len bytes) for ttl_ms under a new token, written to token
 * (HANDOFF_TOKEN_LEN + 1 bytes). -E2BIG over HANDOFF_SECRET_MAX, -ENOSPC
 * when HANDOFF_MAX wait already, -ENOMEM, -EIO when no randomness.
 */
int handoff_put(const void *secret, size_t len, int64_t ttl_ms, char *token, struct err *e);
/*
 * The secret under token, once: it is then gone. -ENOENT when there is
 * none (never put, taken already, expired, not a token). *ret (a secret
 * buf, replaced) holds it.
 */
int handoff_take(const char *token, struct buf *ret);
/* Wipe the secret under token, if any (its instance was not made). */
void handoff_drop(const char *token);
/* Secrets waiting now (expired ones not counted). */
size_t handoff_count(void);

#endif
