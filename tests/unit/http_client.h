/*
 * A raw-socket HTTP client for the tests of src/http (http_client.c): the
 * tests control every byte they send, so they can be slow, malformed or
 * pipelined clients, and read the answer as it came.
 */
#ifndef RUNNERD_TEST_HTTP_CLIENT_H
#define RUNNERD_TEST_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

/* Monotonic seconds. */
double now_s(void);
/* Connected to 127.0.0.1:port (the test fails otherwise). */
int connect_tcp(int port);
/* fd, or -errno so a test can check why a connect was refused. */
int connect_unix(const char *path);
/* A connect as curl makes it, without waiting: fd, or -errno (-EAGAIN: the queue was full). */
int connect_unix_nowait(const char *path);
/* All of p, or as much as the server took before it closed. */
void send_all(int fd, const void *p, size_t n);
void send_str(int fd, const char *s);
/*
 * Read into out (NUL-terminated) until the peer closes, timeout_ms passes,
 * out is full, or (want not NULL) out holds want; returns the length.
 */
size_t read_into(int fd, char *out, size_t cap, const char *want, int timeout_ms);
/* Until EOF, reset or timeout. */
size_t read_all(int fd, char *out, size_t cap, int timeout_ms);
/* Until out holds want (keep-alive: the connection stays open); false on timeout. */
bool read_until(int fd, char *out, size_t cap, const char *want, int timeout_ms);
/* Wait until the server closes fd; seconds waited, or -1 on timeout. */
double wait_closed(int fd, double timeout_s);
/* The status of an answer, -1 if it is none. */
int status_of(const char *resp);
const char *body_of(const char *resp);
/* Is "Name: value" one of the answer's header lines (name case-insensitive)? */
bool has_header(const char *resp, const char *name, const char *value);
/* One request on a fresh connection; the answer lands in out; its status. */
int request(int port, const char *req, char *out, size_t cap);

#endif
