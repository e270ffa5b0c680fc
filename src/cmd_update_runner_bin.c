/*
 * runnerd update-runner-bin: fetch the runner software for every
 * architecture the configured flavors use into <state_dir>/runner-bin/,
 * verified against GitHub's sha256 before it replaces the cached copy.
 * One line per architecture; exit 1 if any of them failed.
 */
#include "util/common.h"
#include "cmd.h"
#include "github/github.h"

int cmd_update_runner_bin(int argc, char **argv)
{
	static const enum arch arches[] = {ARCH_X64, ARCH_ARM64};
	static const char *const names[] = {"x64", "arm64"};
	struct config *cfg = NULL;
	struct github *gh = NULL;
	struct err e = {0};
	bool used[2] = {false, false};
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
		used[cfg->flavors[i].arch == ARCH_ARM64 ? 1 : 0] = true;
	if (cfg->n_flavors == 0)
		used[0] = true;
	for (size_t a = 0; a < ARRAY_SIZE(arches); a++) {
		char path[PATH_MAX];
		const char *base;
		bool changed = false;

		if (!used[a])
			continue;
		if (github_update_runner_bin(gh, arches[a], cfg->manager.state_dir, &changed, path,
		                             sizeof(path), &e) < 0) {
			fprintf(stderr, "%s: error: %s\n", names[a], e.msg);
			rc = 1;
			continue;
		}
		base = strrchr(path, '/');
		printf("%s: %s (%s)\n", names[a], base ? base + 1 : path,
		       changed ? "updated" : "unchanged");
	}
	github_free(gh);
	config_free(cfg);
	return rc;
}
