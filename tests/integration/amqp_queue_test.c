/*
 * Integration tests of the amqp queue backend against a real RabbitMQ that
 * tests/lib/rabbitmq.py starts on 127.0.0.1 (RUNNERD_TEST_AMQP_URI; skipped
 * without it): push with confirms, count, list, update, ack, the dedupe of
 * a job known here, redelivery to another consumer after the first one's
 * process is killed, the reconnect after a broker restart
 * (RUNNERD_TEST_AMQP_RESTART) with nothing lost, a state change on one
 * manager freeing the job another one holds, the retry count carried by a
 * redelivered message, pushes spooled while the broker is away, and a
 * reload's flavors. Each test uses flavors of its own, so their queues
 * never mix; two queue handles are two managers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/clock.h"
#include "util/strutil.h"
#include "queue/queue.h"
#include "store/store.h"
#include "util/fileutil.h"

#include <signal.h>
#include <sys/wait.h>

struct cfg {
	struct config c;
	struct config_flavor f;
	char name[32];
};

static void cfg_init(struct cfg *k, const char *flavor, int64_t max)
{
	memset(k, 0, sizeof(*k));
	str_copy(k->name, flavor, sizeof(k->name));
	k->f.name = k->name;
	k->f.max = max;
	k->c.flavors = &k->f;
	k->c.n_flavors = 1;
	k->c.queue.kind = QUEUE_AMQP;
	k->c.queue.uri.value = getenv("RUNNERD_TEST_AMQP_URI");
}

static struct queue_job job(int64_t id, const char *flavor, int64_t at)
{
	struct queue_job j = {.job_id = id, .run_id = id + 1, .received_at = at};
	str_copy(j.repo, "octo/hello", sizeof(j.repo));
	str_copy(j.labels, "[\"self-hosted\",\"small\"]", sizeof(j.labels));
	str_copy(j.flavor, flavor, sizeof(j.flavor));
	snprintf(j.delivery_id, sizeof(j.delivery_id), "d-%" PRId64, id);
	return j;
}

static int64_t count(struct queue *q, const char *flavor)
{
	int64_t n = -1;
	assert_int_equal(queue_count(q, flavor, INT64_MAX, &n, NULL), 0);
	return n;
}

/* Wait up to ms for count(flavor) == want; its last value. */
static int64_t wait_count(struct queue *q, const char *flavor, int64_t want, int64_t ms)
{
	int64_t end = clock_mono_ms() + ms, n;

	while ((n = count(q, flavor)) != want && clock_mono_ms() < end)
		usleep(50 * 1000);
	return n;
}

/* What the broker itself holds (RUNNERD_TEST_AMQP_QUEUES), to stderr: for a failure's log. */
static void show_broker(const char *why)
{
	const char *cmd = getenv("RUNNERD_TEST_AMQP_QUEUES");

	fprintf(stderr, "-- %s; the broker's queues:\n", why);
	if (cmd && *cmd && system(cmd) != 0)
		fprintf(stderr, "-- (could not ask the broker)\n");
}

static bool wait_healthy(struct queue *q, int64_t ms)
{
	int64_t end = clock_mono_ms() + ms;
	struct err e = {0};

	while (queue_health(q, &e) != 0) {
		if (clock_mono_ms() >= end) {
			fprintf(stderr, "not healthy: %s\n", e.msg);
			return false;
		}
		usleep(50 * 1000);
	}
	return true;
}

static void open_q(struct cfg *k, struct queue **q)
{
	struct err e = {0};

	assert_int_equal(queue_open(&k->c, NULL, q, &e), 0);
	assert_string_equal(queue_name(*q), "amqp");
	assert_true(wait_healthy(*q, 10000));
}

static int notified;
static void on_arrival(void *ctx)
{
	__atomic_add_fetch(&notified, 1, __ATOMIC_SEQ_CST);
}

static void test_push_count_ack(void **state)
{
	struct cfg k;
	struct queue *q, *q2;
	struct queue_job a = job(INT64_C(9007199254740993), "t1", 1000);
	struct queue_job b = job(7, "t1", 3000), c = job(8, "t1", 2000);
	struct queue_job_list l = {0};
	struct err e = {0};

	cfg_init(&k, "t1", 5);
	open_q(&k, &q);
	queue_set_notify(q, on_arrival, NULL);
	assert_int_equal(queue_push(q, &a, &e), 0);
	assert_int_equal(queue_push(q, &b, &e), 0);
	assert_int_equal(queue_push(q, &c, &e), 0);
	assert_int_equal(wait_count(q, "t1", 3, 5000), 3);
	assert_true(__atomic_load_n(&notified, __ATOMIC_SEQ_CST) >= 1);
	assert_int_equal(count(q, "other"), 0);
	/* held here already: a repeated "queued" is known */
	assert_int_equal(queue_push(q, &b, &e), -EEXIST);

	/* oldest first, every field through the broker, 64-bit ids whole */
	assert_int_equal(queue_list(q, 10, &l, &e), 0);
	assert_int_equal(l.n, 3);
	assert_true(l.v[0].job_id == a.job_id);
	assert_true(l.v[1].job_id == 8 && l.v[2].job_id == 7);
	assert_string_equal(l.v[0].labels, a.labels);
	assert_string_equal(l.v[0].repo, "octo/hello");
	assert_string_equal(l.v[0].delivery_id, a.delivery_id);
	assert_true(l.v[0].run_id == a.run_id && l.v[0].received_at == 1000);

	/* bookkeeping: a backoff hides a job from the count until it passes */
	l.v[1].next_at = 5000;
	l.v[1].attempts = 1;
	assert_int_equal(queue_update(q, &l.v[1], &e), 0);
	usleep(500 * 1000); /* a retry: its message is republished with it, and comes back */
	int64_t n = -1;
	assert_int_equal(queue_count(q, "t1", 4000, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_int_equal(queue_count(q, "t1", 5000, &n, &e), 0);
	assert_int_equal(n, 3);

	/* ack: gone here, and from the broker */
	assert_int_equal(queue_ack(q, a.job_id, "in_progress", 10, &e), 0);
	assert_int_equal(queue_ack(q, a.job_id, "in_progress", 10, &e), 0); /* idempotent */
	assert_int_equal(queue_ack(q, 12345, "completed", 10, &e), 0);      /* unknown: fine */
	assert_int_equal(count(q, "t1"), 2);
	assert_int_equal(queue_push(q, &a, &e), -EEXIST); /* a late "queued" never revives it */
	usleep(500 * 1000); /* the basic.ack leaves within the consumer's poll */
	queue_free(q);

	/* the other two were never acked: the broker gives them to the next consumer */
	open_q(&k, &q2);
	assert_int_equal(wait_count(q2, "t1", 2, 5000), 2);
	assert_int_equal(queue_list(q2, 10, &l, &e), 0);
	assert_int_equal(l.n, 2);
	assert_true(l.v[0].job_id == 8 && l.v[1].job_id == 7);
	/* a retry's bookkeeping travels in the message: the redelivery keeps it */
	assert_int_equal(l.v[0].attempts, 1);
	assert_true(l.v[0].next_at == 5000);
	assert_int_equal(l.v[1].attempts, 0);
	assert_int_equal(queue_ack(q2, 7, "completed", 10, &e), 0);
	assert_int_equal(queue_ack(q2, 8, "completed", 10, &e), 0);
	assert_int_equal(count(q2, "t1"), 0);
	queue_job_list_release(&l);
	usleep(500 * 1000);
	queue_free(q2);
}

static void ack_held(struct queue *q)
{
	struct queue_job_list l = {0};

	assert_int_equal(queue_list(q, 100, &l, NULL), 0);
	for (size_t i = 0; i < l.n; i++)
		assert_int_equal(queue_ack(q, l.v[i].job_id, "completed", 1, NULL), 0);
	queue_job_list_release(&l);
}

static int64_t wait_total(struct queue *q, struct queue *q2, const char *flavor, int64_t want,
                          int64_t ms)
{
	int64_t end = clock_mono_ms() + ms, n;

	while ((n = count(q, flavor) + count(q2, flavor)) != want && clock_mono_ms() < end)
		usleep(50 * 1000);
	return n;
}

/* The prefetch bounds what one manager holds: the flavor's max. */
static void test_prefetch(void **state)
{
	struct cfg k;
	struct queue *q, *q2;
	struct err e = {0};

	cfg_init(&k, "t2", 2);
	open_q(&k, &q);
	for (int64_t i = 1; i <= 5; i++) {
		struct queue_job j = job(100 + i, "t2", i);
		assert_int_equal(queue_push(q, &j, &e), 0);
	}
	assert_int_equal(wait_count(q, "t2", 2, 5000), 2);
	usleep(300 * 1000);
	assert_int_equal(count(q, "t2"), 2);
	/* a second manager takes some of the rest */
	open_q(&k, &q2);
	assert_int_equal(wait_count(q2, "t2", 2, 5000), 2);
	/* acks free room: the fifth arrives (acking only what each holds: an ack of
	 * a job not delivered yet marks it done, and its delivery is dropped) */
	ack_held(q);
	ack_held(q2);
	assert_int_equal(wait_total(q, q2, "t2", 1, 5000), 1);
	ack_held(q);
	ack_held(q2);
	assert_int_equal(count(q, "t2") + count(q2, "t2"), 0);
	usleep(500 * 1000);
	queue_free(q);
	queue_free(q2);
}

/* A manager killed holding messages loses none: the other one gets them. */
static void test_redelivery_after_kill(void **state)
{
	struct cfg k;
	struct queue *q;
	struct err e = {0};
	int p[2];
	char c;
	pid_t pid;

	cfg_init(&k, "t3", 10);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct queue *cq;
		close(p[0]);
		if (queue_open(&k.c, NULL, &cq, NULL) < 0 || !wait_healthy(cq, 10000))
			_exit(1);
		for (int64_t i = 1; i <= 4; i++) {
			struct queue_job j = job(200 + i, "t3", i);
			if (queue_push(cq, &j, NULL) < 0)
				_exit(2);
		}
		if (wait_count(cq, "t3", 4, 5000) != 4)
			_exit(3);
		if (write(p[1], "x", 1) != 1)
			_exit(4);
		for (;;)
			pause(); /* holding them, unacked, until killed */
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	open_q(&k, &q);
	usleep(300 * 1000);
	assert_int_equal(count(q, "t3"), 0); /* the other one holds them all */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_int_equal(wait_count(q, "t3", 4, 10000), 4);
	for (int64_t i = 1; i <= 4; i++)
		assert_int_equal(queue_ack(q, 200 + i, "completed", 1, &e), 0);
	usleep(500 * 1000);
	queue_free(q);
}

/* A broker restart: unhealthy meanwhile, back by itself, nothing lost. */
static void test_broker_restart(void **state)
{
	const char *restart = getenv("RUNNERD_TEST_AMQP_RESTART");
	struct cfg k;
	struct queue *q;
	struct err e = {0};
	bool saw_down = false;
	int status;
	pid_t pid;

	if (!restart || !*restart)
		skip();
	cfg_init(&k, "t4", 10);
	open_q(&k, &q);
	for (int64_t i = 1; i <= 3; i++) {
		struct queue_job j = job(300 + i, "t4", i);
		assert_int_equal(queue_push(q, &j, &e), 0);
	}
	assert_int_equal(wait_count(q, "t4", 3, 5000), 3);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", restart, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (queue_health(q, NULL) < 0)
			saw_down = true;
		usleep(50 * 1000);
	}
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(saw_down);
	assert_true(wait_healthy(q, 20000));
	/* durable queue, persistent messages: the three are delivered again */
	if (wait_count(q, "t4", 3, 10000) != 3)
		show_broker("after the restart, not the three messages back");
	assert_int_equal(count(q, "t4"), 3);
	/* and the publisher's stale link recovers on its own */
	struct queue_job j = job(304, "t4", 4);
	int r = -1;
	for (int i = 0; i < 50 && (r = queue_push(q, &j, &e)) == -EAGAIN; i++)
		usleep(200 * 1000);
	assert_int_equal(r, 0);
	assert_int_equal(wait_count(q, "t4", 4, 5000), 4);
	for (int64_t i = 1; i <= 4; i++)
		assert_int_equal(queue_ack(q, 300 + i, "completed", 1, &e), 0);
	usleep(500 * 1000);
	queue_free(q);
}

/* Two managers: a job done at one (its webhook came there) is let go at once by the other. */
static void test_state_change_frees_the_other(void **state)
{
	struct cfg k;
	struct queue *a, *b, *c;
	struct queue_job_list l = {0};
	struct err e = {0};
	int64_t held_by_b, t0;

	cfg_init(&k, "t6", 1); /* prefetch 1: each manager holds one job */
	open_q(&k, &a);
	open_q(&k, &b);
	for (int64_t i = 1; i <= 2; i++) {
		struct queue_job j = job(600 + i, "t6", i);
		assert_int_equal(queue_push(a, &j, &e), 0);
	}
	assert_int_equal(wait_count(a, "t6", 1, 5000), 1);
	assert_int_equal(wait_count(b, "t6", 1, 5000), 1);
	assert_int_equal(queue_list(b, 10, &l, &e), 0);
	assert_int_equal(l.n, 1);
	held_by_b = l.v[0].job_id;
	/* the completed webhook of b's job reaches a */
	t0 = clock_mono_ms();
	assert_int_equal(queue_ack(a, held_by_b, "completed", 10, &e), 0);
	assert_int_equal(wait_count(b, "t6", 0, 1000), 0);
	fprintf(stderr, "b let job %" PRId64 " go %" PRId64 " ms after a's ack\n", held_by_b,
	        clock_mono_ms() - t0);
	assert_int_equal(count(a, "t6"), 1);                   /* a's own job is untouched */
	assert_int_equal(queue_push(b, &l.v[0], &e), -EEXIST); /* b knows it is done */
	ack_held(a);
	usleep(500 * 1000); /* the basic.acks leave within the consumers' poll */
	queue_free(a);
	queue_free(b);
	/* both messages were acked on the broker: nothing is delivered again */
	open_q(&k, &c);
	usleep(700 * 1000);
	assert_int_equal(count(c, "t6"), 0);
	queue_job_list_release(&l);
	queue_free(c);
}

/* A retry's count survives the job's move to another manager, in one message. */
static void test_retry_count_carried(void **state)
{
	struct cfg k;
	struct queue *a, *b;
	struct queue_job j = job(701, "t7", 1);
	struct queue_job_list l = {0};
	struct err e = {0};

	cfg_init(&k, "t7", 5);
	open_q(&k, &a);
	assert_int_equal(queue_push(a, &j, &e), 0);
	assert_int_equal(wait_count(a, "t7", 1, 5000), 1);
	/* a runner was made for it (attempts 1, runner_at set): nothing travels yet */
	assert_int_equal(queue_list(a, 10, &l, &e), 0);
	l.v[0].attempts = 1;
	l.v[0].runner_at = 50;
	assert_int_equal(queue_update(a, &l.v[0], &e), 0);
	/* still queued after it: a retry, counted again from next_at */
	l.v[0].runner_at = 0;
	l.v[0].next_at = 123456;
	l.v[0].checked_at = 99;
	assert_int_equal(queue_update(a, &l.v[0], &e), 0);
	usleep(700 * 1000);
	/* the copy came back here; the old message is gone (one job, once) */
	assert_int_equal(queue_list(a, 10, &l, &e), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].attempts, 1);
	assert_true(l.v[0].next_at == 123456 && l.v[0].checked_at == 99);
	assert_true(l.v[0].runner_at == 0);
	queue_free(a);
	/* a dies: another manager gets the job with its count */
	open_q(&k, &b);
	assert_int_equal(wait_count(b, "t7", 1, 5000), 1);
	usleep(500 * 1000);
	assert_int_equal(queue_list(b, 10, &l, &e), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].attempts, 1);
	assert_true(l.v[0].next_at == 123456);
	assert_int_equal(queue_ack(b, 701, "dropped", 10, &e), 0);
	queue_job_list_release(&l);
	usleep(500 * 1000);
	queue_free(b);
}

/*
 * The broker goes away: pushes are spooled in the state store (the webhook
 * still gets its 202), the spool is published when the broker is back and
 * emptied, each job delivered once.
 */
static void test_spool_while_away(void **state)
{
	const char *restart = getenv("RUNNERD_TEST_AMQP_RESTART");
	char dir[] = "/tmp/runnerd-amqp-spool-XXXXXX";
	struct store *st = NULL;
	struct cfg k;
	struct queue *q;
	struct err e = {0};
	int64_t n = -1;
	int status;
	pid_t pid;

	if (!restart || !*restart)
		skip();
	assert_non_null(mkdtemp(dir));
	assert_int_equal(store_open(dir, &st, &e), 0);
	cfg_init(&k, "t9", 10);
	assert_int_equal(queue_open(&k.c, st, &q, &e), 0);
	assert_true(wait_healthy(q, 10000));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", restart, (char *)NULL);
		_exit(127);
	}
	/* the broker is down (the consumer saw it) and not back yet */
	for (int i = 0; i < 200 && queue_health(q, NULL) == 0; i++)
		usleep(50 * 1000);
	assert_true(queue_health(q, NULL) < 0);
	for (int64_t i = 1; i <= 3; i++) {
		struct queue_job j = job(900 + i, "t9", i);
		assert_int_equal(queue_push(q, &j, &e), 0);
		assert_int_equal(queue_push(q, &j, &e), -EEXIST); /* spooled already */
	}
	assert_int_equal(queue_spooled(q, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_int_equal(store_spool_count(st, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_true(waitpid(pid, &status, 0) == pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(wait_healthy(q, 20000));
	/* published, confirmed, then deleted */
	for (int i = 0; i < 300 && (queue_spooled(q, &n, NULL), n) != 0; i++)
		usleep(50 * 1000);
	assert_int_equal(n, 0);
	assert_int_equal(store_spool_count(st, &n, &e), 0);
	assert_int_equal(n, 0);
	assert_int_equal(wait_count(q, "t9", 3, 10000), 3);
	usleep(500 * 1000);
	assert_int_equal(count(q, "t9"), 3); /* no duplicate */
	for (int64_t i = 1; i <= 3; i++)
		assert_int_equal(queue_ack(q, 900 + i, "completed", 1, &e), 0);
	usleep(500 * 1000);
	queue_free(q);
	store_close(st);
	rm_rf(dir, NULL);
}

/* A reload's flavors: a new one is consumed at once, a removed one given back. */
static void test_reload_flavors(void **state)
{
	struct cfg k, k2;
	struct queue *q, *other;
	struct queue_job ja = job(801, "t8a", 1), jb = job(802, "t8b", 2), ja2 = job(803, "t8a", 3);
	struct err e = {0};

	cfg_init(&k, "t8a", 5);
	cfg_init(&k2, "t8b", 5);
	open_q(&k, &q);
	assert_int_equal(queue_push(q, &ja, &e), 0);
	assert_int_equal(wait_count(q, "t8a", 1, 5000), 1);
	/* t8b's queue exists (another manager published to it) before this one serves it */
	assert_int_equal(queue_push(q, &jb, &e), 0);
	usleep(300 * 1000);
	assert_int_equal(count(q, "t8b"), 0);
	assert_int_equal(queue_reload(q, &k2.c, &e), 0);
	assert_int_equal(wait_count(q, "t8b", 1, 5000), 1);
	/* t8a's held job went back to the broker: a manager of t8a gets it */
	assert_int_equal(wait_count(q, "t8a", 0, 5000), 0);
	open_q(&k, &other);
	assert_int_equal(wait_count(other, "t8a", 1, 5000), 1);
	assert_int_equal(queue_push(q, &ja2, &e), 0);
	assert_int_equal(wait_count(other, "t8a", 2, 5000), 2);
	assert_int_equal(count(q, "t8a"), 0);
	ack_held(q);
	ack_held(other);
	usleep(500 * 1000);
	queue_free(q);
	queue_free(other);
}

/*
 * amqps: the broker's TLS listener, its certificate (127.0.0.1) checked against
 * queue.ca_file; another CA, or a file of no certificates, is refused with a
 * reason and no secret.
 */
static void test_amqps(void **state)
{
	const char *uri = getenv("RUNNERD_TEST_AMQPS_URI"), *ca = getenv("RUNNERD_TEST_AMQP_CA");
	const char *other = getenv("RUNNERD_TEST_AMQP_OTHER_CA");
	struct cfg k;
	struct queue *q;
	struct queue_job j = job(1001, "t10", 1);
	struct err e = {0};

	if (!uri || !ca || !other)
		skip();
	cfg_init(&k, "t10", 2);
	k.c.queue.uri.value = (char *)uri;
	k.c.queue.ca_file = (char *)ca;
	open_q(&k, &q);
	assert_int_equal(queue_push(q, &j, &e), 0);
	assert_int_equal(wait_count(q, "t10", 1, 5000), 1);
	assert_int_equal(queue_ack(q, 1001, "completed", 1, &e), 0);
	usleep(500 * 1000);
	queue_free(q);

	/* a CA that did not sign the broker's certificate: never healthy */
	k.c.queue.ca_file = (char *)other;
	assert_int_equal(queue_open(&k.c, NULL, &q, &e), 0);
	usleep(1500 * 1000);
	assert_true(queue_health(q, &e) < 0);
	fprintf(stderr, "another CA: %s\n", e.msg);
	assert_non_null(strstr(e.msg, "amqps"));
	assert_null(strstr(e.msg, "guest:guest"));
	queue_free(q);

	/* no certificates in the file: said so, naming it */
	k.c.queue.ca_file = "/dev/null";
	assert_int_equal(queue_open(&k.c, NULL, &q, &e), 0);
	usleep(500 * 1000);
	assert_true(queue_health(q, &e) < 0);
	assert_non_null(strstr(e.msg, "queue.ca_file /dev/null"));
	queue_free(q);
}

/* No broker: open works, health says why, push fails fast, nothing leaks. */
static void test_unreachable(void **state)
{
	struct cfg k;
	struct queue *q;
	struct queue_job j = job(1, "t5", 1);
	struct err e = {0};

	cfg_init(&k, "t5", 1);
	k.c.queue.uri.value = "amqp://guest:sekrit@127.0.0.1:1/";
	assert_int_equal(queue_open(&k.c, NULL, &q, &e), 0);
	usleep(300 * 1000);
	assert_true(queue_health(q, &e) < 0);
	assert_null(strstr(e.msg, "sekrit"));
	assert_true(queue_push(q, &j, &e) < 0);
	assert_null(strstr(e.msg, "sekrit"));
	queue_free(q);
	k.c.queue.uri.value = "";
	assert_int_equal(queue_open(&k.c, NULL, &q, &e), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_unreachable),
	        cmocka_unit_test(test_push_count_ack),
	        cmocka_unit_test(test_prefetch),
	        cmocka_unit_test(test_redelivery_after_kill),
	        cmocka_unit_test(test_broker_restart),
	        cmocka_unit_test(test_state_change_frees_the_other),
	        cmocka_unit_test(test_retry_count_carried),
	        cmocka_unit_test(test_reload_flavors),
	        cmocka_unit_test(test_spool_while_away),
	        cmocka_unit_test(test_amqps),
	};

	if (!getenv("RUNNERD_TEST_AMQP_URI")) {
		fprintf(stderr, "test_queue_amqp: no RUNNERD_TEST_AMQP_URI (tests/lib/rabbitmq.py "
		                "run): skipped\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
