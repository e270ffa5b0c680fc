/* Helpers shared by the subcommands. */
#include "util/common.h"
#include "cmd.h"
#include "util/log.h"

int cmd_load_config(const char *explicit_path, struct config **ret)
{
	struct config_errors errs = {0};
	const char *path = config_path(explicit_path);
	int r = config_load(path, ret, &errs);

	if (r < 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		if (errs.n == 0)
			fprintf(stderr, "%s: cannot load: %s\n", path, strerror(-r));
	}
	config_errors_release(&errs);
	return r;
}

int cmd_config_only(int argc, char **argv, const char *usage, struct config **ret)
{
	const char *path = NULL;

	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf("usage: %s\n", usage);
			return 0;
		} else {
			fprintf(stderr, "usage: %s\n", usage);
			return 2;
		}
	}
	return cmd_load_config(path, ret) < 0 ? 1 : -1;
}
