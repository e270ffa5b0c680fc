/*
 * The subcommands. Each cmd_<name>(argc, argv) gets argv[0] == "<name>",
 * parses its own options, and returns the process exit code. Only this
 * level prints to stdout or decides to exit.
 */
#ifndef RUNNERD_CMD_H
#define RUNNERD_CMD_H

#include "config/config.h"

int cmd_check_config(int argc, char **argv);
int cmd_github_check(int argc, char **argv);
int cmd_update_runner_bin(int argc, char **argv);

/* Shared by commands: load the config named by -c/RUNNERD_CONFIG, printing every error to stderr. */
int cmd_load_config(const char *explicit_path, struct config **ret);

/* Parse the options every command accepts; returns 1 if the option was one of them. */
struct cmd_common_opts {
	const char *config_path;
};

#endif
