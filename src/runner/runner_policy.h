/*
 * The repo-policy-compliance service's one-time tokens: runnerd asks for one
 * per runner with its own token (runner.repo_policy_compliance.token_file)
 * and hands it to the instance like the other secrets; the pre-job hook
 * spends it on one check. The service's own token never leaves runnerd.
 */
#ifndef RUNNERD_RUNNER_POLICY_H
#define RUNNERD_RUNNER_POLICY_H

#include "util/common.h"
#include "util/err.h"
#include "util/httpc.h"

/* The longest one-time token taken; the service's are far shorter. */
#define RUNNER_POLICY_TOKEN_MAX 4096
/* The one request's whole deadline (connect included) unless the caller gives one. */
#define RUNNER_POLICY_REQUEST_TIMEOUT_MS 15000

/*
 * GET <base>/one-time-token with "Authorization: Bearer <token>", ended
 * with -ETIMEDOUT after timeout_ms (0: RUNNER_POLICY_REQUEST_TIMEOUT_MS),
 * connect included. On success
 * *ret is the token (malloc'ed; the caller wipes and frees it). -EIO for an
 * answer other than 2xx (the status in e), -EPROTO for a body that is not one
 * token of [A-Za-z0-9._~+/=-] (surrounding whitespace aside), the errors of
 * httpc_perform otherwise. h may be NULL. e never holds either token.
 */
int runner_policy_token(struct httpc *h, const char *base, const char *token, long timeout_ms,
                        char **ret, struct err *e);

#endif
