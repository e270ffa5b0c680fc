/* The shared part of the C test drivers (testlib.h). */
#include "util/common.h"
#include "testlib.h"
#include "util/clock.h"
#include "util/httpc.h"

int test_passed, test_failed;

void test_failed_at(const char *func, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	printf("    %s:%d: check failed: %s", func, line, cond);
	if (fmt) {
		printf(": ");
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	printf("\n");
	fflush(stdout);
}

void test_count(bool ok, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		test_passed++;
	else
		test_failed++;
	printf(ok ? "ok   " : "FAIL ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

void test_case_done(const char *name, int r, int64_t started_ms)
{
	if (r == 0)
		test_count(true, "%s (%.1fs)", name, (double)(clock_mono_ms() - started_ms) / 1000);
	else
		test_count(false, "%s", name);
}

int test_summary(void)
{
	printf("%d passed, %d failed\n", test_passed, test_failed);
	fflush(stdout);
	return test_failed ? 1 : 0;
}

json_t *test_ghsim(const char *base, const char *method, const char *path, const char *body)
{
	static const char *const hdrs[] = {"Content-Type: application/json", NULL};
	struct httpc_response resp = {0};
	struct httpc *h = NULL;
	struct err e = {0};
	json_t *j = NULL;
	char url[1024];

	snprintf(url, sizeof(url), "%s%s", base, path);
	if (httpc_new(&h, &e) < 0 ||
	    httpc_perform(h,
	                  &(struct httpc_request){.method = method,
	                                          .url = url,
	                                          .headers = hdrs,
	                                          .body = body,
	                                          .body_len = body ? strlen(body) : 0,
	                                          .timeout_ms = 300000,
	                                          .max_body = 64 << 20},
	                  &resp, &e) < 0) {
		printf("    ghsim %s %s: %s\n", method, path, e.msg);
	} else if (resp.status < 200 || resp.status >= 300) {
		printf("    ghsim %s %s: %ld %.200s\n", method, path, resp.status,
		       buf_str(&resp.body));
	} else {
		j = resp.body.len
		            ? json_loadb(buf_str(&resp.body), resp.body.len, JSON_DECODE_ANY, NULL)
		            : json_null();
		if (!j)
			printf("    ghsim %s %s: an answer that is not JSON\n", method, path);
	}
	httpc_response_release(&resp);
	httpc_free(h);
	return j;
}

bool test_ghsim_ok(const char *base, const char *method, const char *path, const char *body)
{
	json_t *j = test_ghsim(base, method, path, body);
	json_decref(j);
	return j != NULL;
}

int test_scratch_dir(const char *prefix, char *out, size_t cap)
{
	if ((size_t)snprintf(out, cap, "/tmp/%s.XXXXXX", prefix) >= cap)
		return -ENAMETOOLONG;
	return mkdtemp(out) ? 0 : -errno;
}
