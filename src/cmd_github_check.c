/*
 * runnerd github-check: prove, before the daemon starts, that the configured
 * credentials work for the configured repository or organization and carry
 * the permission runnerd needs. It reads the scope, lists its runners, and
 * asks for a registration token (the one write it makes: the token is
 * discarded at once and expires on its own within an hour; it is the cheapest
 * call that proves the "administration: write" / "organization self-hosted
 * runners: write" permission that creating runners needs). In organization
 * scope it also resolves the configured runner group. It prints one line
 * either way and never prints a secret.
 */
#include "util/common.h"
#include "cmd.h"
#include "github/github.h"
#include "util/strutil.h"

int cmd_github_check(int argc, char **argv)
{
	struct github_runner_list runners = {0};
	struct github_token token = {0};
	struct github_stats st;
	struct config *cfg = NULL;
	struct github *gh = NULL;
	struct err e = {0};
	size_t owned = 0;
	int64_t group = 0;
	char group_note[160] = "", rate[128] = "rate limit unknown";
	int rc = 1;

	int early = cmd_config_only(argc, argv, "runnerd github-check [-c FILE]", &cfg);
	if (early >= 0)
		return early;
	if (github_new(cfg, NULL, &gh, &e) < 0 || github_check_scope(gh, &e) < 0 ||
	    github_list_runners(gh, NULL, &runners, &e) < 0 ||
	    github_registration_token(gh, &token, &e) < 0)
		goto out;
	if (cfg->github.is_org) {
		const char *g = cfg->github.runner_group ? cfg->github.runner_group : "default";
		if (github_runner_group_id(gh, g, &group, &e) < 0)
			goto out;
		snprintf(group_note, sizeof(group_note), "; runner group '%s' = %" PRId64, g,
		         group);
	}
	for (size_t i = 0; i < runners.n; i++)
		if (cfg->manager.name && name_is_owned(cfg->manager.name, runners.v[i].name))
			owned++;
	github_get_stats(gh, &st);
	if (st.rate_remaining >= 0 && st.rate_limit >= 0) {
		long long left = (long long)(st.rate_reset - time(NULL));
		snprintf(rate, sizeof(rate), "rate limit %" PRId64 "/%" PRId64 ", resets in %llds",
		         st.rate_remaining, st.rate_limit, left > 0 ? left : 0);
	}
	printf("github: ok: %s: %zu runner%s (%zu owned by %s)%s; %s\n", github_scope(gh),
	       runners.n, runners.n == 1 ? "" : "s", owned,
	       cfg->manager.name ? cfg->manager.name : "?", group_note, rate);
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "github: error: %s\n", e.msg[0] ? e.msg : "unknown failure");
	github_token_release(&token);
	github_runner_list_release(&runners);
	github_free(gh);
	config_free(cfg);
	return rc;
}
