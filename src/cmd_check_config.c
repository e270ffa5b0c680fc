/*
 * `runnerd check-config [-c FILE] [--print]`: load and validate the config.
 * Exit 0 when valid ("FILE: ok", or the normalized config with --print;
 * warnings, if any, on stderr), 1 when not (every error on stderr, one per
 * line, in file order) and on a usage error: 0 or 1, nothing else, so a
 * script can tell "valid" from "not" without knowing why. It never prints a
 * secret: config_print() never reads them (a URL's password it redacts) and
 * the loader's messages never contain one.
 */
#include "util/common.h"
#include "cmd.h"
#include "util/buf.h"

#include <getopt.h>

#define PRINT_MAX (4 * 1024 * 1024)

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: runnerd check-config [-c FILE] [--print]\n"
	        "  -c, --config FILE  the config (default $RUNNERD_CONFIG, else %s)\n"
	        "  -p, --print        print the normalized config instead of \"FILE: ok\"\n",
	        CONFIG_DEFAULT_PATH);
}

int cmd_check_config(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"print", no_argument, NULL, 'p'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *path = NULL;
	struct config *c = NULL;
	struct buf out = BUF_INIT(PRINT_MAX);
	bool print = false;
	int opt, r, rc = 1;

	optind = 0; /* full reset: main may have used getopt before */
	while ((opt = getopt_long(argc, argv, "+c:ph", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'p':
			print = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "check-config: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 1;
	}
	if (cmd_load_config(path, &c) < 0)
		return 1;
	for (size_t i = 0; i < c->warnings.n; i++)
		fprintf(stderr, "%s\n", c->warnings.v[i]);
	if (!print) {
		printf("%s: ok\n", config_path(path));
		rc = 0;
		goto out;
	}
	r = config_print(c, &out);
	if (r < 0) {
		fprintf(stderr, "check-config: cannot print the config: %s\n", strerror(-r));
		goto out;
	}
	fputs(buf_str(&out), stdout);
	rc = 0;
out:
	if (fflush(stdout) != 0 && rc == 0) {
		fprintf(stderr, "check-config: cannot write the output: %s\n", strerror(errno));
		rc = 1;
	}
	buf_release(&out);
	config_free(c);
	return rc;
}
