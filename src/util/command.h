/*
 * A short helper command (useradd and the like) run to its end within a
 * deadline, its output kept for the error message. It must never wait past
 * the deadline for the command, nor for what the command left running.
 */
#ifndef RUNNERD_COMMAND_H
#define RUNNERD_COMMAND_H

#include "util/common.h"
#include "util/err.h"

/*
 * Run path with argv and envp, stdin from /dev/null, stdout and stderr
 * captured together into out (at most cap - 1 bytes, newlines as spaces,
 * NUL-terminated), and wait for it at most timeout_ms. On 0, *ret_status is
 * its status as waitpid gives it. -ETIMEDOUT when it was still running at
 * the deadline: it is then killed (SIGKILL) and reaped, and e says so. The
 * call ends when the command exits, even when something it started still
 * holds its output open. Other failures: -errno of pipe, fork or poll.
 */
int command_run(const char *path, char *const argv[], char *const envp[], int64_t timeout_ms,
                char *out, size_t cap, int *ret_status, struct err *e);

#endif
