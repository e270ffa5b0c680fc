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
	struct github_hook_delivery_list dl = {0};
	json_t *root;
	char msg[160];
	int64_t total, gid;
	size_t seen;

	if (buf_append(&body, data, size) < 0)
		return 0;
	/* The parsers see what github_call_json hands them: a body that loaded. */
	if (github_json_load("fuzz", &body, &root, NULL) == 0) {
		github_json_runners_page("fuzz", root, NULL, &l, &total, &seen, NULL);
		github_json_runners_page("fuzz", root, "ci", &l, &total, &seen, NULL);
		github_json_runner("fuzz", root, &r, NULL);
		github_json_token("fuzz", root, &t, NULL);
		github_json_job("fuzz", root, &j, NULL);
		github_json_jobs_page("fuzz", root, &jl, NULL);
		github_json_jit("fuzz", root, &jit, NULL);
		github_json_apps("fuzz", root, &apps, NULL);
		github_json_group_page("fuzz", root, "default", &gid, NULL);
		github_json_deliveries("fuzz", root, &dl, NULL);
		json_decref(root);
	}
	github_json_error_message(&body, msg, sizeof(msg));
	github_runner_list_release(&l);
	github_runner_release(&r);
	github_job_list_release(&jl);
	github_job_release(&j);
	github_token_release(&t);
	github_jit_release(&jit);
	github_app_list_release(&apps);
	github_hook_delivery_list_release(&dl);
	buf_release(&body);
	return 0;
}
