/*
 * runnerd: keeps pools of ephemeral GitHub Actions self-hosted runners alive.
 * This file is the command table and the global options; each subcommand
 * lives in cmd_<name>.c.
 */
#include "util/common.h"
#include "cmd.h"
#include "util/log.h"

#include <getopt.h>

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
        {"check-config", cmd_check_config,
         "validate the config file (--print: the normalized config)"},
        {"github-check", cmd_github_check,
         "verify GitHub credentials and permissions for the path"},
        {"update-runner-bin", cmd_update_runner_bin,
         "download and verify the latest runner binary"},
        {"serve", cmd_serve, "run the daemon: reconcile on a timer and on request"},
        {"status", cmd_status, "per flavor counts, then each runner (--json)"},
        {"reconcile", cmd_reconcile, "run one reconcile pass now and print what it did"},
        {"flush", cmd_flush, "remove idle and offline runners (--busy: every runner)"},
        {"drain", cmd_drain, "pools go to zero until resume (--wait: until nothing is left)"},
        {"resume", cmd_drain, "undo drain"},
        {"metrics", cmd_metrics,
         "metrics extract DIR...: a runner's metrics storage as the events log gets it"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: runnerd [--log-level LEVEL] [--log-format text|json] COMMAND [-c FILE] "
	           "[ARGS]\n\n"
	           "commands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-20s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nThe config is -c FILE, else $RUNNERD_CONFIG, else %s.\n",
	        CONFIG_DEFAULT_PATH);
}

int main(int argc, char **argv)
{
	enum log_level level = LOG_INFO;
	enum log_format format = LOG_FORMAT_TEXT;
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--version") == 0) {
			printf("runnerd %s\n", RUNNERD_VERSION);
			return 0;
		} else if (strcmp(a, "--log-level") == 0 && i + 1 < argc) {
			if (log_parse_level(argv[++i], &level) < 0) {
				fprintf(stderr,
				        "runnerd: --log-level: expected debug|info|warn|error\n");
				return 2;
			}
		} else if (strcmp(a, "--log-format") == 0 && i + 1 < argc) {
			if (log_parse_format(argv[++i], &format) < 0) {
				fprintf(stderr, "runnerd: --log-format: expected text|json\n");
				return 2;
			}
		} else {
			fprintf(stderr, "runnerd: unknown option %s\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	log_setup(level, format);
	for (size_t c = 0; c < ARRAY_SIZE(commands); c++)
		if (strcmp(argv[i], commands[c].name) == 0)
			return commands[c].fn(argc - i, argv + i);
	fprintf(stderr, "runnerd: unknown command '%s'\n", argv[i]);
	usage(stderr);
	return 2;
}
