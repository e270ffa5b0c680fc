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
int cmd_serve(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_reconcile(int argc, char **argv);
int cmd_flush(int argc, char **argv);
int cmd_drain(int argc, char **argv);   /* drain and resume */
int cmd_metrics(int argc, char **argv); /* metrics extract */

/*
 * For commands whose only option is -c FILE: parse it and load the config
 * into *ret. -1 to go on; otherwise the exit code (0 after -h, 2 for a bad
 * option, 1 for a config that does not load).
 */
int cmd_config_only(int argc, char **argv, const char *usage, struct config **ret);

/* Shared by commands: load the config named by -c/RUNNERD_CONFIG, printing every error to stderr.
 */
int cmd_load_config(const char *explicit_path, struct config **ret);

#endif
