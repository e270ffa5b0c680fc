/*
 * The scale benchmarks' pool (bench_pool.h): ghsim's runners, the memory
 * provider's instances, a store and a manager, all for N.
 */
#include "util/common.h"
#include "bench_pool.h"
#include "testlib.h"
#include "util/fileutil.h"

#include <jansson.h>

/* N idle runners named bench-<12 hex> on ghsim; their names in *ret_runners. */
static int ghsim_runners(const char *url, long n, json_t **ret)
{
	char body[256];
	json_t *root, *arr;

	if (!test_ghsim_ok(url, "POST", "/_ghsim/reset", "{}"))
		return -1;
	snprintf(body, sizeof(body),
	         "{\"scope\":\"repos/octo/hello\",\"name\":\"bench-{hex}\",\"labels\":[\"small\"],"
	         "\"status\":\"online\",\"count\":%ld}",
	         n);
	root = test_ghsim(url, "POST", "/_ghsim/runners", body);
	arr = json_object_get(root, "runners");
	if (!json_is_array(arr) || json_array_size(arr) != (size_t)n) {
		fprintf(stderr, "bench: ghsim did not add %ld runners\n", n);
		json_decref(root);
		return -1;
	}
	*ret = root;
	return 0;
}

int bench_pool_open(struct bench_pool *p, const char *name, long n)
{
	const char *url = getenv("GHSIM_URL"), *token = getenv("GH_TOKEN_FILE");
	struct config_errors errs = {0};
	struct err e = {0};
	json_t *root = NULL, *arr;
	char yaml[4096];
	int rc = -1;

	memset(p, 0, sizeof(*p));
	snprintf(p->dir, sizeof(p->dir), "/tmp/runnerd-%s.XXXXXX", name);
	if (!url || !token || !mkdtemp(p->dir)) {
		p->dir[0] = '\0';
		fprintf(stderr, "bench: GHSIM_URL and GH_TOKEN_FILE are needed, and /tmp\n");
		return -1;
	}
	snprintf(yaml, sizeof(yaml),
	         "github: {api_url: \"%s\", path: octo/hello, token_file: \"%s\", request_timeout: "
	         "120s}\n"
	         "manager: {name: bench, state_dir: \"%s/state\", reconcile_interval: 1m}\n"
	         "flavors:\n  - {name: small, provider: local, labels: [small], min_idle: %ld, "
	         "max: %ld}\n"
	         "providers: {local: {work_dir: \"%s/work\"}}\n",
	         url, token, p->dir, n, n, p->dir);
	if (config_load_string("bench.yaml", yaml, strlen(yaml), &p->cfg, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		goto out;
	}
	if (ghsim_runners(url, n, &root) < 0)
		goto out;
	arr = json_object_get(root, "runners");
	if (memory_new("local", "bench", &p->mem, &e) < 0 ||
	    store_open(p->cfg->manager.state_dir, &p->store, &e) < 0 ||
	    github_new(p->cfg, NULL, &p->gh, &e) < 0)
		goto out;
	for (size_t i = 0; i < (size_t)n; i++) {
		struct instance in = {.state = CLOUD_ACTIVE, .created_at = time(NULL) - 60};
		snprintf(in.name, sizeof(in.name), "%s",
		         json_string_value(json_object_get(json_array_get(arr, i), "name")));
		snprintf(in.provider_id, sizeof(in.provider_id), "mem-%zu", i);
		snprintf(in.flavor, sizeof(in.flavor), "small");
		memory_add(p->mem, &in);
	}
	if (manager_new(p->cfg, p->store, p->gh, &p->mem, 1, &p->m, &e) < 0)
		goto out;
	rc = 0;
out:
	if (rc && e.msg[0])
		fprintf(stderr, "bench: %s\n", e.msg);
	json_decref(root);
	config_errors_release(&errs);
	return rc;
}

void bench_pool_close(struct bench_pool *p)
{
	manager_free(p->m);
	github_free(p->gh);
	store_close(p->store);
	provider_free(p->mem);
	config_free(p->cfg);
	if (p->dir[0])
		rm_rf(p->dir, NULL);
	memset(p, 0, sizeof(*p));
}
