/*
 * Asks the repo-policy-compliance service for a one-time token (see
 * runner_policy.h). Both tokens are secrets: they go into secret buffers and
 * to libcurl only, never into an error message or the log.
 */
#include "util/common.h"
#include "util/buf.h"
#include "runner/runner_policy.h"

#include <ctype.h>

static bool token_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       strchr("._~+/=-", c) != NULL;
}

int runner_policy_token(struct httpc *h, const char *base, const char *token, long timeout_ms,
                        char **ret, struct err *e)
{
	struct buf url = BUF_INIT(8192), auth = BUF_INIT_SECRET(8192);
	struct httpc_response resp = {0};
	size_t n, start = 0, end;
	char *out;
	int r;

	if (!base || !*base || !token || !*token)
		return err_set(e, -EINVAL, "repo-policy: no service URL or token");
	n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	r = buf_append(&url, base, n);
	if (r == 0)
		r = buf_puts(&url, "/one-time-token");
	if (r == 0)
		r = buf_printf(&auth, "Authorization: Bearer %s", token);
	if (r < 0) {
		r = err_set(e, r, "repo-policy: the URL or token is too long");
		goto out;
	}
	const char *headers[] = {buf_str(&auth), "Accept: text/plain", NULL};
	struct httpc_request req = {
	        .url = buf_str(&url),
	        .headers = headers,
	        .connect_timeout_ms =
	                timeout_ms > 0 ? timeout_ms : RUNNER_POLICY_REQUEST_TIMEOUT_MS,
	        .timeout_ms = timeout_ms > 0 ? timeout_ms : RUNNER_POLICY_REQUEST_TIMEOUT_MS,
	        .max_body = RUNNER_POLICY_TOKEN_MAX,
	        .secret = true,
	};
	r = httpc_perform(h, &req, &resp, e);
	if (r < 0) {
		err_prefix(e, "repo-policy: one-time token");
		goto out;
	}
	if (resp.status < 200 || resp.status > 299) {
		r = err_set(e, -EIO, "repo-policy: one-time token: HTTP %ld", resp.status);
		goto out;
	}
	end = resp.body.len;
	while (start < end && isspace((unsigned char)resp.body.data[start]))
		start++;
	while (end > start && isspace((unsigned char)resp.body.data[end - 1]))
		end--;
	for (size_t i = start; i < end; i++)
		if (!token_char(resp.body.data[i]))
			end = 0;
	if (end <= start) {
		r = err_set(e, -EPROTO, "repo-policy: one-time token: not a token");
		goto out;
	}
	out = strndup(resp.body.data + start, end - start);
	if (!out) {
		r = err_set(e, -ENOMEM, "repo-policy: out of memory");
		goto out;
	}
	*ret = out;
	r = 0;
out:
	httpc_response_release(&resp);
	buf_release(&url);
	buf_wipe(&auth);
	return r;
}
