/*
 * Unit tests of the log (src/util/log.c), stderr made a pipe: a line is
 * written as it is logged; while a thread gathers, its info lines wait and
 * are written together (whole lines, in order) when it stops, when they
 * would pass PIPE_BUF bytes, or before a warning, which is written at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "util/log.h"

#include <fcntl.h>
#include <limits.h>

struct pipe_fixture {
	int rd, saved_stderr;
	char got[64 * 1024];
	size_t len;
};

static int setup(void **state)
{
	struct pipe_fixture *f = calloc(1, sizeof(*f));
	int p[2];

	if (!f || pipe2(p, O_CLOEXEC) < 0)
		return -1;
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	fcntl(p[1], F_SETPIPE_SZ, 1024 * 1024);
	f->rd = p[0];
	f->saved_stderr = dup(STDERR_FILENO);
	dup2(p[1], STDERR_FILENO);
	close(p[1]);
	log_setup(LOG_INFO, LOG_FORMAT_TEXT);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct pipe_fixture *f = *state;

	log_gather(false);
	dup2(f->saved_stderr, STDERR_FILENO);
	close(f->saved_stderr);
	close(f->rd);
	free(f);
	return 0;
}

/* What the pipe holds now (appended to f->got); its length. */
static size_t drain(struct pipe_fixture *f)
{
	size_t before = f->len;
	ssize_t n;

	while ((n = read(f->rd, f->got + f->len, sizeof(f->got) - 1 - f->len)) > 0)
		f->len += (size_t)n;
	f->got[f->len] = '\0';
	return f->len - before;
}

static void test_a_line_as_it_is_logged(void **state)
{
	struct pipe_fixture *f = *state;

	log_info("first %d", 1);
	assert_true(drain(f) > 0);
	assert_non_null(strstr(f->got, " info  first 1\n"));
	log_debug("not at info");
	assert_int_equal(drain(f), 0);
}

static void test_gathered_lines_wait_for_the_end(void **state)
{
	struct pipe_fixture *f = *state;
	char *a, *b, *c;

	log_gather(true);
	log_info("job %d queued", 1);
	log_info("job %d queued", 2);
	log_info("job %d queued", 3);
	assert_int_equal(drain(f), 0);
	log_gather(false);
	assert_true(drain(f) > 0);
	a = strstr(f->got, "job 1 queued\n");
	b = strstr(f->got, "job 2 queued\n");
	c = strstr(f->got, "job 3 queued\n");
	assert_true(a && b && c && a < b && b < c);
	/* off again: a line at once */
	log_info("after");
	assert_true(drain(f) > 0);
}

static void test_a_warning_is_written_at_once_after_the_lines_before_it(void **state)
{
	struct pipe_fixture *f = *state;
	char *a, *w;

	log_gather(true);
	log_info("before the warning");
	log_warn("the warning");
	assert_true(drain(f) > 0);
	a = strstr(f->got, "before the warning\n");
	w = strstr(f->got, " warn  the warning\n");
	assert_true(a && w && a < w);
	log_info("after the warning");
	assert_int_equal(drain(f), 0);
	log_gather(false);
	assert_true(drain(f) > 0);
	assert_non_null(strstr(w, "after the warning\n"));
}

static void test_gathered_lines_go_out_a_pipe_buffer_at_a_time(void **state)
{
	struct pipe_fixture *f = *state;
	char want[64];
	size_t early;
	char *at;

	log_gather(true);
	for (int i = 0; i < 100; i++)
		log_info("line %03d of a hundred, long enough that a hundred pass PIPE_BUF", i);
	early = drain(f);
	/* some written already, each write whole lines and no more than PIPE_BUF */
	assert_true(early > 0);
	assert_int_equal(f->got[f->len - 1], '\n');
	log_gather(false);
	/* and the rest, under PIPE_BUF, held until then */
	assert_true(drain(f) > 0);
	assert_true(f->len - early < PIPE_BUF);
	at = f->got;
	for (int i = 0; i < 100; i++) {
		snprintf(want, sizeof(want), "line %03d of a hundred", i);
		at = strstr(at, want);
		assert_non_null(at);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_a_line_as_it_is_logged, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_gathered_lines_wait_for_the_end, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_a_warning_is_written_at_once_after_the_lines_before_it, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(test_gathered_lines_go_out_a_pipe_buffer_at_a_time,
	                                        setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
