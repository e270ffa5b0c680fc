/*
 * Unit tests of how src/http shares connections among its event loops: a
 * burst of connections, as a client that opens them side by side makes,
 * is spread over every loop instead of landing on the one the kernel woke
 * for the listen socket, and a loop whose connections closed gets the next.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "http/server.h"
#include "http_client.h"
#include "util/strutil.h"

#define LOOPS    4
#define RESP_MAX 4096

/* Answers with the name of the loop thread that runs it. */
static void h_loop(void *ctx, const struct http_request *req, struct http_response *resp)
{
	char name[32] = "", text[64];

	pthread_getname_np(pthread_self(), name, sizeof(name));
	snprintf(text, sizeof(text), "loop=%s end\n", name);
	http_response_text(resp, 200, text);
}

static const struct http_route routes[] = {
        {"GET", "/loop", h_loop, 0},
};

/* The loop that serves fd (a keep-alive request on it), as a thread name. */
static void loop_of(int fd, char *out, size_t cap)
{
	char resp[RESP_MAX];
	const char *p, *end;

	send_str(fd, "GET /loop HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(read_until(fd, resp, sizeof(resp), " end\n", 5000));
	assert_int_equal(status_of(resp), 200);
	p = strstr(body_of(resp), "loop=");
	assert_non_null(p);
	p += 5;
	end = strchr(p, ' ');
	assert_non_null(end);
	assert_true((size_t)(end - p) < cap);
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
}

/* How many of names[0..n) are name. */
static int count_of(char names[][32], int n, const char *name)
{
	int k = 0;

	for (int i = 0; i < n; i++)
		k += strcmp(names[i], name) == 0;
	return k;
}

static void test_burst_spread_over_loops(void **state)
{
	struct http_server_options o = {.threads = LOOPS};
	struct http_server *s = NULL;
	struct err e = {0};
	int fds[2 * LOOPS], port;
	char names[2 * LOOPS][32];

	assert_int_equal(http_server_start_tcp_opts("127.0.0.1:0", routes, ARRAY_SIZE(routes), NULL,
	                                            &o, &s, &e),
	                 0);
	port = http_server_port(s);
	/* all connected before any request: the kernel queues them for one loop */
	for (int i = 0; i < 2 * LOOPS; i++)
		fds[i] = connect_tcp(port);
	for (int i = 0; i < 2 * LOOPS; i++)
		loop_of(fds[i], names[i], sizeof(names[i]));
	/* none closed meanwhile: every loop has two */
	for (int i = 0; i < 2 * LOOPS; i++) {
		assert_int_equal(strncmp(names[i], "http-loop-", 10), 0);
		assert_int_equal(count_of(names, 2 * LOOPS, names[i]), 2);
	}

	/* the two of the first connection's loop close: the next two go to that loop */
	char freed[32], again[32];
	int closed = 0;

	str_copy(freed, names[0], sizeof(freed));
	for (int i = 0; i < 2 * LOOPS; i++)
		if (strcmp(names[i], freed) == 0) {
			close(fds[i]);
			fds[i] = -1;
			closed++;
		}
	assert_int_equal(closed, 2);
	usleep(300 * 1000); /* the loop sees them go */
	for (int k = 0; k < 2; k++) {
		int fd = connect_tcp(port);

		loop_of(fd, again, sizeof(again));
		assert_string_equal(again, freed);
		for (int i = 0; i < 2 * LOOPS; i++)
			if (fds[i] < 0) {
				fds[i] = fd;
				break;
			}
	}
	for (int i = 0; i < 2 * LOOPS; i++)
		close(fds[i]);
	http_server_stop(s);
}

/* Descriptors this process has open. */
static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

struct connector {
	int port;
	atomic_bool stop;
	int fds[256];
	int n;
	atomic_int made; /* n, for the other thread */
};

/* Connects again and again (keeping each open) until told to stop or refused. */
static void *connect_loop(void *arg)
{
	struct connector *k = arg;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)k->port)};

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	while (!atomic_load(&k->stop) && k->n < (int)ARRAY_SIZE(k->fds)) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			break;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(fd);
			break; /* the server stopped */
		}
		k->fds[k->n++] = fd;
		atomic_store(&k->made, k->n);
	}
	return NULL;
}

/*
 * A server stopped while connections pour in (some accepted by one loop
 * for another) closes every socket it accepted: none is left open in this
 * process, and each client sees its connection end (once it writes: the
 * kernel ends a handshake the listener's close cut short only then).
 */
static void test_stop_while_connections_come(void **state)
{
	for (int round = 0; round < 5; round++) {
		struct http_server_options o = {.threads = LOOPS, .max_connections = 512};
		struct http_server *s = NULL;
		struct connector k = {0};
		struct err e = {0};
		pthread_t th;
		int before = open_fds();

		assert_int_equal(http_server_start_tcp_opts("127.0.0.1:0", routes,
		                                            ARRAY_SIZE(routes), NULL, &o, &s, &e),
		                 0);
		k.port = http_server_port(s);
		assert_int_equal(pthread_create(&th, NULL, connect_loop, &k), 0);
		/* the connections under way when it stops (on a busy machine the
		 * connector may not have run yet after a few milliseconds) */
		for (int t = 0; t < 5000 && atomic_load(&k.made) == 0; t++)
			usleep(1000);
		usleep((useconds_t)(2000 + round * 3000));
		http_server_stop(s);
		atomic_store(&k.stop, true);
		pthread_join(th, NULL);
		assert_true(k.n > 0);
		for (int i = 0; i < k.n; i++) {
			/* a byte first: a handshake the listener's close cut short left no
			 * socket on the server's side to end it, and a write draws its reset */
			(void)!send(k.fds[i], "x", 1, MSG_NOSIGNAL);
			assert_true(wait_closed(k.fds[i], 2.0) >= 0);
			close(k.fds[i]);
		}
		assert_int_equal(open_fds(), before);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_burst_spread_over_loops),
	        cmocka_unit_test(test_stop_while_connections_come),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
