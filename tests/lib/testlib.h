/*
 * What the C test drivers share (tests/integration, tests/contract, bench):
 * counted checks and cases, the "N passed, N failed" line scripts/check.sh
 * reads, ghsim's control API, and scratch directories. Unit tests use
 * cmocka; these drivers run against real services (ghsim, LXD) and report
 * case by case. Output is line-buffered stdout, so a crash keeps what was
 * printed.
 */
#ifndef RUNNERD_TESTLIB_H
#define RUNNERD_TESTLIB_H

#include "util/common.h"

#include <jansson.h>

extern int test_passed, test_failed;

/* Print "    FUNC:LINE: check failed: COND[: MESSAGE]" (the message may be NULL). */
void test_failed_at(const char *func, int line, const char *cond, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* Count one check: print "ok   MESSAGE" or "FAIL MESSAGE". */
void test_count(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A check that ends the case when it fails: the enclosing function returns -1. */
#define REQUIRE(cond)                                                                              \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			test_failed_at(__func__, __LINE__, #cond, NULL);                           \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)
/* The same, saying more. */
#define REQUIREF(cond, ...)                                                                        \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			test_failed_at(__func__, __LINE__, #cond, __VA_ARGS__);                    \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)
/* A check that is counted on its own and lets the case go on. */
#define EXPECTF(cond, ...) test_count((cond), __VA_ARGS__)

/* Count a case by its result (0: passed), printing "ok   NAME (Ns)" or "FAIL NAME". */
void test_case_done(const char *name, int r, int64_t started_ms);
/* Print the last line, "N passed, N failed"; the process's exit code. */
int test_summary(void);

/*
 * ghsim's control API at base (http://127.0.0.1:PORT): the answer's JSON
 * when it is 2xx (JSON null for an empty body), else NULL with a line
 * printed. Release with json_decref.
 */
json_t *test_ghsim(const char *base, const char *method, const char *path, const char *body);
/* Whether the call answered 2xx. */
bool test_ghsim_ok(const char *base, const char *method, const char *path, const char *body);

/* A fresh scratch directory /tmp/<prefix>.XXXXXX (mode 0700) into out; -errno. */
int test_scratch_dir(const char *prefix, char *out, size_t cap);

#endif
