/*
 * runner_policy_token against a one-shot HTTP server on 127.0.0.1 (a forked
 * child that records the request and sends one canned answer): the URL and
 * the Bearer header it sends, the token it takes, and what it refuses (a
 * non-2xx answer, a body that is not one token, no server, a silent one past
 * its timeout) without either token in the error.
 */
#include "util/common.h"
#include "runner/runner_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <setjmp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <cmocka.h>

#define CHARM "charm-token-0123456789"

struct one_shot {
	int port;
	pid_t pid;
	char request[PATH_MAX];
};

/* A child that accepts one connection, writes what it read to request, answers. */
static void one_shot_start(struct one_shot *s, const char *answer)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	s->port = ntohs(a.sin_port);
	snprintf(s->request, sizeof(s->request), "/tmp/runnerd-test-policy-%d.req", (int)getpid());
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		char buf[8192];
		size_t n = 0;
		int c = accept(fd, NULL, NULL);
		FILE *f;
		if (c < 0)
			_exit(1);
		while (n < sizeof(buf) - 1) {
			ssize_t r = read(c, buf + n, sizeof(buf) - 1 - n);
			if (r <= 0)
				break;
			n += (size_t)r;
			buf[n] = '\0';
			if (strstr(buf, "\r\n\r\n"))
				break;
		}
		f = fopen(s->request, "w");
		if (f) {
			fwrite(buf, 1, n, f);
			fclose(f);
		}
		if (write(c, answer, strlen(answer)) < 0)
			_exit(1);
		close(c);
		_exit(0);
	}
	close(fd);
}

static char *one_shot_finish(struct one_shot *s)
{
	static char req[8192];
	int st;
	FILE *f;
	size_t n;

	assert_int_equal(waitpid(s->pid, &st, 0), s->pid);
	f = fopen(s->request, "r");
	assert_non_null(f);
	n = fread(req, 1, sizeof(req) - 1, f);
	req[n] = '\0';
	fclose(f);
	unlink(s->request);
	return req;
}

static int ask(struct one_shot *s, const char *path, char **tok, struct err *e)
{
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", s->port, path);
	return runner_policy_token(NULL, url, CHARM, 0, tok, e);
}

static void test_token_taken(void **state)
{
	struct one_shot s;
	struct err e = {0};
	char *tok = NULL, *req;

	one_shot_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 18\r\nConnection: close\r\n\r\n"
	                   "  one.time-TOKEN=\n\n");
	assert_int_equal(ask(&s, "/policy//", &tok, &e), 0);
	req = one_shot_finish(&s);
	assert_string_equal(tok, "one.time-TOKEN=");
	assert_non_null(strstr(req, "GET /policy/one-time-token HTTP/1.1\r\n"));
	assert_non_null(strstr(req, "\r\nAuthorization: Bearer " CHARM "\r\n"));
	free(tok);
}

static void test_refusals(void **state)
{
	static const struct {
		const char *answer;
		int code;
		const char *msg;
	} cases[] = {
	        {"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\nConnection: "
	         "close\r\n\r\nforbidden",
	         -EIO, "HTTP 403"},
	        {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nbad token!",
	         -EPROTO, "not a token"},
	        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", -EPROTO,
	         "not a token"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct one_shot s;
		struct err e = {0};
		char *tok = NULL;

		one_shot_start(&s, cases[i].answer);
		assert_int_equal(ask(&s, "", &tok, &e), cases[i].code);
		one_shot_finish(&s);
		assert_null(tok);
		assert_non_null(strstr(e.msg, cases[i].msg));
		assert_null(strstr(e.msg, CHARM));
	}
}

static void test_no_server(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	struct err e = {0};
	char url[128], *tok = NULL;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* a port nothing listens on: bound, never listened, then closed */
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
	close(fd);
	assert_true(runner_policy_token(NULL, url, CHARM, 0, &tok, &e) < 0);
	assert_null(tok);
	assert_null(strstr(e.msg, CHARM));
	assert_int_equal(runner_policy_token(NULL, "", CHARM, 0, &tok, &e), -EINVAL);
	assert_int_equal(runner_policy_token(NULL, url, "", 0, &tok, &e), -EINVAL);
}

/*
 * docs/deadlines.md, "repo-policy one-time token": a service that accepts
 * the connection and never answers holds the create no longer than the
 * request's timeout (here 500 ms in place of the 15 s default).
 */
static void test_silent_server(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	struct err e = {0};
	struct timespec t0, t1;
	char url[128], *tok = NULL;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	long ms;

	/* listening, never accepting: the kernel completes the connect, nobody answers */
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(runner_policy_token(NULL, url, CHARM, 500, &tok, &e), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 450 && ms < 3000);
	assert_null(tok);
	assert_null(strstr(e.msg, CHARM));
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_token_taken),
	        cmocka_unit_test(test_refusals),
	        cmocka_unit_test(test_no_server),
	        cmocka_unit_test(test_silent_server),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
