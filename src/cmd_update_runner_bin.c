/*
 * runnerd update-runner-bin: fetch the runner software for every
 * architecture the configured flavors use into <state_dir>/runner-bin/,
 * verified against GitHub's sha256 before it replaces the cached copy.
 * One line per architecture saying exactly what happened:
 *   x64: 2.321.0 (installed)            nothing was cached
 *   x64: 2.300.0 -> 2.321.0 (updated)   another version was cached
 *   x64: 2.321.0 (repaired)             the cached copy of this version was
 *                                       missing or failed its checksum
 *   x64: 2.321.0 (unchanged)            the cached copy is current and intact
 * Errors go to stderr as "x64: error: ..."; exit 1 if any architecture failed.
 */
#include "util/common.h"
#include "cmd.h"
#include "github/github.h"

int cmd_update_runner_bin(int argc, char **argv)
{
	struct config *cfg = NULL;
	struct github *gh = NULL;
	struct err e = {0};
	bool used[ARCH_COUNT] = {false};
	int rc = 0;

	int early = cmd_config_only(argc, argv, "runnerd update-runner-bin [-c FILE]", &cfg);
	if (early >= 0)
		return early;
	if (github_new(cfg, NULL, &gh, &e) < 0) {
		fprintf(stderr, "update-runner-bin: %s\n", e.msg);
		config_free(cfg);
		return 1;
	}
	for (size_t i = 0; i < cfg->n_flavors; i++)
		if ((unsigned)cfg->flavors[i].arch < ARCH_COUNT)
			used[cfg->flavors[i].arch] = true;
	if (cfg->n_flavors == 0)
		used[ARCH_X64] = true;
	for (int a = 0; a < ARCH_COUNT; a++) {
		const char *name = arch_name((enum arch)a);
		struct github_bin_result res;

		if (!used[a])
			continue;
		if (github_runner_bin_update(gh, (enum arch)a, cfg->manager.state_dir, &res, &e) <
		    0) {
			fprintf(stderr, "%s: error: %s\n", name, e.msg);
			rc = 1;
			continue;
		}
		if (res.outcome == GITHUB_BIN_UPDATED)
			printf("%s: %s -> %s (%s)\n", name, res.old_version, res.version,
			       github_bin_outcome_name(res.outcome));
		else
			printf("%s: %s (%s)\n", name, res.version,
			       github_bin_outcome_name(res.outcome));
	}
	github_free(gh);
	config_free(cfg);
	return rc;
}
