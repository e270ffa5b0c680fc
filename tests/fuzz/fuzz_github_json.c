/*
 * libFuzzer target: GitHub API answers from untrusted bytes (a hostile or
 * broken server, or a proxy in between). Each parser either fills its
 * result or returns a clean error; nothing crashes or leaks.
 */
#include "util/common.h"
#include "github/github_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf body = BUF_INIT(1 << 20);
	struct github_runner_list l = {0};
	struct github_runner r = {0};
	struct github_job_list jl = {0};
	struct github_job j = {0};
	struct github_token t = {0};
	struct github_jit jit = {0};
	struct github_app_list apps = {0};
	char msg[160];
	int64_t total, gid;
	size_t seen;

	if (buf_append(&body, data, size) < 0)
		return 0;
	github_json_runners_page("fuzz", &body, NULL, &l, &total, &seen, NULL);
	github_json_runners_page("fuzz", &body, "ci", &l, &total, &seen, NULL);
	github_json_runner("fuzz", &body, &r, NULL);
	github_json_token("fuzz", &body, &t, NULL);
	github_json_job("fuzz", &body, &j, NULL);
	github_json_jobs_page("fuzz", &body, &jl, NULL);
	github_json_jit("fuzz", &body, &jit, NULL);
	github_json_apps("fuzz", &body, &apps, NULL);
	github_json_group_page("fuzz", &body, "default", &gid, NULL);
	github_json_error_message(&body, msg, sizeof(msg));
	github_runner_list_release(&l);
	github_runner_release(&r);
	github_job_list_release(&jl);
	github_job_release(&j);
	github_token_release(&t);
	github_jit_release(&jit);
	github_app_list_release(&apps);
	buf_release(&body);
	return 0;
}
