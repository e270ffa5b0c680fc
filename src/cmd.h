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
int cmd_drain(int argc, char **argv); /* drain and resume */

/* Shared by commands: load the config named by -c/RUNNERD_CONFIG, printing every error to stderr.
 */
int cmd_load_config(const char *explicit_path, struct config **ret);

#endif
