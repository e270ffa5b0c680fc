/*
 * Log lines on stderr; one write(2) per line so concurrent threads never
 * interleave, or, while a thread gathers its lines (log_gather), one for
 * as many whole lines as fit in PIPE_BUF bytes, which a pipe also writes
 * whole.
 */
#include "util/common.h"
#include "util/log.h"

#include <limits.h>
#include <sys/time.h>

static enum log_level min_level = LOG_INFO;
static enum log_format out_format = LOG_FORMAT_TEXT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* This thread's gathered lines, not written yet (log_gather). */
static _Thread_local struct {
	bool on;
	size_t len;
	char buf[PIPE_BUF];
} gathered;

static void write_out(const char *p, size_t n)
{
	if (write(STDERR_FILENO, p, n) < 0) {
		/* nothing better to do: stderr is gone */
	}
}

static void write_gathered(void)
{
	if (gathered.len)
		write_out(gathered.buf, gathered.len);
	gathered.len = 0;
}

void log_gather(bool on)
{
	if (!on)
		write_gathered();
	gathered.on = on;
}

void log_setup(enum log_level level, enum log_format format)
{
	min_level = level;
	out_format = format;
}

enum log_level log_current_level(void)
{
	return min_level;
}

enum log_format log_current_format(void)
{
	return out_format;
}

int log_parse_level(const char *s, enum log_level *ret)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
		if (strcmp(s, level_names[i]) == 0) {
			*ret = (enum log_level)i;
			return 0;
		}
	return -EINVAL;
}

int log_parse_format(const char *s, enum log_format *ret)
{
	if (strcmp(s, "text") == 0)
		*ret = LOG_FORMAT_TEXT;
	else if (strcmp(s, "json") == 0)
		*ret = LOG_FORMAT_JSON;
	else
		return -EINVAL;
	return 0;
}

/* JSON-escape src into dst (always NUL-terminated, truncated if needed). */
static void json_escape(char *dst, size_t cap, const char *src)
{
	size_t o = 0;
	for (; *src && o + 7 < cap; src++) {
		unsigned char c = (unsigned char)*src;
		if (c == '"' || c == '\\') {
			dst[o++] = '\\';
			dst[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(dst + o, cap - o, "\\u%04x", c);
		} else {
			dst[o++] = (char)c;
		}
	}
	dst[o] = '\0';
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char msg[2048], line[4608], ts[40];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	int n;

	if (level < min_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = (int)strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - (size_t)n, ".%03ldZ", (long)(tv.tv_usec / 1000));

	if (out_format == LOG_FORMAT_JSON) {
		char esc[4096];
		json_escape(esc, sizeof(esc), msg);
		n = snprintf(line, sizeof(line),
		             "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n", ts,
		             level_names[level], esc);
	} else {
		n = snprintf(line, sizeof(line), "%s %-5s %s\n", ts, level_names[level], msg);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	if (gathered.on) {
		if (gathered.len + (size_t)n > sizeof(gathered.buf) || level >= LOG_WARN)
			write_gathered(); /* the lines before it first */
		if ((size_t)n <= sizeof(gathered.buf) && level < LOG_WARN) {
			memcpy(gathered.buf + gathered.len, line, (size_t)n);
			gathered.len += (size_t)n;
			return;
		}
	}
	write_out(line, (size_t)n);
}
