/*
 * A raw-socket HTTP client for the tests of src/http: the tests control
 * every byte they send and read every byte of the answer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "http_client.h"
#include "util/strutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int connect_tcp(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* -errno on failure, so a test can check why a connect was refused. */
int connect_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	str_copy(sa.sun_path, path, sizeof(sa.sun_path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/*
 * A connect as curl makes it, without waiting: fd, or -errno. On a unix
 * socket -EAGAIN means the server's queue was full: a client sees a refusal.
 */
int connect_unix_nowait(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	str_copy(sa.sun_path, path, sizeof(sa.sun_path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

void send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* the server may close early; the response tells */
		c += w;
		n -= (size_t)w;
	}
}

void send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

/*
 * Read into out (NUL-terminated) until the peer closes, timeout_ms passes,
 * out is full, or (want not NULL) out holds want; returns the length.
 */
size_t read_into(int fd, char *out, size_t cap, const char *want, int timeout_ms)
{
	size_t len = 0;
	double end = now_s() + timeout_ms / 1000.0;

	out[0] = '\0';
	while (len + 1 < cap && !(want && strstr(out, want))) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int left = (int)((end - now_s()) * 1000);
		ssize_t n;

		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		n = read(fd, out + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		out[len] = '\0';
	}
	return len;
}

/* Read until EOF, reset or timeout; returns bytes read (out NUL-terminated). */
size_t read_all(int fd, char *out, size_t cap, int timeout_ms)
{
	return read_into(fd, out, cap, NULL, timeout_ms);
}

/* Read until out holds want (keep-alive: the connection stays open); false on timeout. */
bool read_until(int fd, char *out, size_t cap, const char *want, int timeout_ms)
{
	read_into(fd, out, cap, want, timeout_ms);
	return strstr(out, want) != NULL;
}

/* Wait until the server closes fd; returns seconds waited, or -1 on timeout. */
double wait_closed(int fd, double timeout_s)
{
	double start = now_s();
	char tmp[4096];

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int left = (int)((start + timeout_s - now_s()) * 1000);
		ssize_t n;

		if (left <= 0 || poll(&p, 1, left) <= 0)
			return -1;
		n = read(fd, tmp, sizeof(tmp));
		if (n <= 0)
			return now_s() - start;
	}
}

int status_of(const char *resp)
{
	int64_t st;
	char code[4] = "";

	if (strncmp(resp, "HTTP/1.", 7) != 0 || strlen(resp) < 12)
		return -1;
	memcpy(code, resp + 9, 3);
	return parse_int64(code, 100, 599, &st) == 0 ? (int)st : -1;
}

const char *body_of(const char *resp)
{
	const char *p = strstr(resp, "\r\n\r\n");
	return p ? p + 4 : "";
}

/* Is "Name: value" one of the response's header lines (name case-insensitive)? */
bool has_header(const char *resp, const char *name, const char *value)
{
	const char *end = strstr(resp, "\r\n\r\n");
	const char *line = strstr(resp, "\r\n");
	size_t nlen = strlen(name), vlen = strlen(value);

	while (line && end && line < end) {
		line += 2;
		if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':' &&
		    strncmp(line + nlen + 2, value, vlen) == 0 &&
		    strncmp(line + nlen + 2 + vlen, "\r\n", 2) == 0)
			return true;
		line = strstr(line, "\r\n");
	}
	return false;
}

/* One request on a fresh connection; the response lands in out. */
int request(int port, const char *req, char *out, size_t cap)
{
	int fd = connect_tcp(port);
	send_str(fd, req);
	read_all(fd, out, cap, 5000);
	close(fd);
	return status_of(out);
}
