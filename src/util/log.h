/*
 * The daemon's log: one line per event on stderr, human-readable by default
 * or JSON (--log-format json). Only command-level code logs above debug.
 * Never pass a secret to these functions.
 */
#ifndef RUNNERD_LOG_H
#define RUNNERD_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON };

void log_setup(enum log_level level, enum log_format format);
/* What log_setup set last (a command may override the global options). */
enum log_level log_current_level(void);
enum log_format log_current_format(void);
int log_parse_level(const char *s, enum log_level *ret);
int log_parse_format(const char *s, enum log_format *ret);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/*
 * on: this thread's debug and info lines are gathered, and written together
 * once they would pass PIPE_BUF bytes (whole lines; a pipe writes that much
 * in one piece), or before a warning or error of the thread; off: what is
 * gathered is written. For a loop that logs a line per item (the intake's
 * answers to a batch): one write(2) for several lines.
 */
void log_gather(bool on);

#endif
