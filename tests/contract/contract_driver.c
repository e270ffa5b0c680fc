/*
 * contract_driver: runs ONE operation of runnerd's GitHub client (github.h)
 * against a given API URL and prints what the client made of the answer, so
 * tests/contract/client.js can check every request the client sends against
 * GitHub's published REST description (Prism) and see whether the client
 * accepts the description's own example answers. It is a test tool: it never
 * talks to anything but the URL it is given (a 127.0.0.1 proxy), and it never
 * takes a secret on its command line (the token comes from CONTRACT_TOKEN, the
 * App key from a file) nor prints one.
 *
 * usage: contract_driver --api URL --path owner/repo|org
 *                        [--app-id N --installation-id N --app-key-file FILE]
 *                        OP [ARGS...]
 * OP: check_scope | list_runners | list_runners_twice | get_runner ID | delete_runner ID |
 *     registration_token |
 *     remove_token | generate_jitconfig NAME GROUP_ID LABEL,LABEL [WORK] |
 *     list_runner_applications | runner_group_id NAME | get_job OWNER/REPO ID |
 *     list_run_jobs OWNER/REPO RUN_ID
 *     list_runs OWNER/REPO STATUS MAX
 * Prints "result: ..." and exits 0, or "error: ..." and exits 1 (2: usage).
 */
#include "util/common.h"
#include "util/err.h"
#include "util/fileutil.h"
#include "util/strutil.h"
#include "config/config.h"
#include "github/github.h"

static int usage(void)
{
	fprintf(stderr, "usage: contract_driver --api URL --path P [--app-id N --installation-id N "
	                "--app-key-file F] OP [ARGS...]\n");
	return 2;
}

static int parse_id(const char *s, int64_t *ret)
{
	return parse_int64(s, 0, INT64_MAX, ret);
}

static void print_labels(char **v, size_t n)
{
	printf(" labels=");
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i ? "," : "", v[i]);
}

static void print_runner(const char *tag, const struct github_runner *r)
{
	printf(" %s=%" PRId64 ":%s:%s:%s", tag, r->id, r->name,
	       r->status == GITHUB_RUNNER_ONLINE ? "online" : "offline", r->busy ? "busy" : "idle");
	print_labels(r->labels, r->n_labels);
}

static void print_job(const struct github_job *j)
{
	printf(" job=%" PRId64 " run=%" PRId64 " status=%s conclusion=%s name=%s runner=%" PRId64
	       ":%s created=%lld started=%lld completed=%lld",
	       j->id, j->run_id, j->status, j->conclusion, j->name, j->runner_id, j->runner_name,
	       (long long)j->created_at, (long long)j->started_at, (long long)j->completed_at);
	print_labels(j->labels, j->n_labels);
}

/* "a,b,c" -> strv (the caller frees v[i] and v). */
static int split_labels(const char *s, struct strv *ret)
{
	struct strv l = {NULL, 0};
	const char *p = s;

	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char **v = realloc(l.v, (l.n + 1) * sizeof(*v));
		if (!v)
			goto fail;
		l.v = v;
		l.v[l.n] = strndup(p, n);
		if (!l.v[l.n])
			goto fail;
		l.n++;
		p += n;
		if (*p == ',')
			p++;
	}
	*ret = l;
	return 0;
fail:
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
	return -ENOMEM;
}

static int run_op(struct github *gh, int argc, char **argv, struct err *e)
{
	const char *op = argv[0];
	int64_t id = 0;
	int r;

	if (str_eq(op, "check_scope") && argc == 1) {
		r = github_check_scope(gh, e);
		if (r < 0)
			return r;
		printf("result: scope %s ok\n", github_scope(gh));
		return 0;
	}
	if (str_eq(op, "list_runners_twice") && argc == 1) {
		/* The second list is conditional (If-None-Match from the first one's ETag). */
		struct github_runner_list a = {0}, b = {0};
		struct github_stats st;
		bool same;
		r = github_list_runners(gh, NULL, &a, e);
		if (r == 0)
			r = github_list_runners(gh, NULL, &b, e);
		same = r == 0 && a.n == b.n;
		for (size_t i = 0; same && i < a.n; i++)
			same = a.v[i].id == b.v[i].id && str_eq(a.v[i].name, b.v[i].name);
		github_get_stats(gh, &st);
		if (r == 0)
			printf("result: runners n=%zu complete=%d again n=%zu complete=%d same=%d "
			       "sent=%" PRIu64 " not_modified=%" PRIu64 "\n",
			       a.n, a.complete ? 1 : 0, b.n, b.complete ? 1 : 0, same ? 1 : 0,
			       st.requests_sent, st.not_modified);
		github_runner_list_release(&a);
		github_runner_list_release(&b);
		return r;
	}
	if (str_eq(op, "list_runners") && argc == 1) {
		struct github_runner_list l = {0};
		r = github_list_runners(gh, NULL, &l, e);
		if (r < 0)
			return r;
		printf("result: runners n=%zu complete=%d", l.n, l.complete ? 1 : 0);
		for (size_t i = 0; i < l.n; i++)
			print_runner("runner", &l.v[i]);
		printf("\n");
		github_runner_list_release(&l);
		return 0;
	}
	if (str_eq(op, "get_runner") && argc == 2) {
		struct github_runner run = {0};
		if (parse_id(argv[1], &id) < 0)
			return err_set(e, -EINVAL, "bad runner id");
		r = github_get_runner(gh, id, &run, e);
		if (r < 0)
			return r;
		printf("result:");
		print_runner("runner", &run);
		printf("\n");
		github_runner_release(&run);
		return 0;
	}
	if (str_eq(op, "delete_runner") && argc == 2) {
		if (parse_id(argv[1], &id) < 0)
			return err_set(e, -EINVAL, "bad runner id");
		r = github_delete_runner(gh, id, e);
		if (r < 0)
			return r;
		printf("result: deleted %" PRId64 "\n", id);
		return 0;
	}
	if ((str_eq(op, "registration_token") || str_eq(op, "remove_token")) && argc == 1) {
		struct github_token t = {0};
		r = str_eq(op, "registration_token") ? github_registration_token(gh, &t, e)
		                                     : github_remove_token(gh, &t, e);
		if (r < 0)
			return r;
		/* The token itself is a secret: say only that there is one. */
		printf("result: token len=%zu expires_at=%lld\n", t.token ? strlen(t.token) : 0,
		       (long long)t.expires_at);
		github_token_release(&t);
		return 0;
	}
	if (str_eq(op, "generate_jitconfig") && (argc == 4 || argc == 5)) {
		struct github_jit j = {0};
		struct strv labels;
		int64_t group;
		if (parse_id(argv[2], &group) < 0)
			return err_set(e, -EINVAL, "bad runner group id");
		if (split_labels(argv[3], &labels) < 0)
			return err_set(e, -ENOMEM, "out of memory");
		r = github_generate_jitconfig(gh, argv[1], group, &labels,
		                              argc == 5 ? argv[4] : NULL, &j, e);
		for (size_t i = 0; i < labels.n; i++)
			free(labels.v[i]);
		free(labels.v);
		if (r < 0)
			return r;
		printf("result: jit runner_id=%" PRId64 " config_len=%zu\n", j.runner_id,
		       j.encoded_jit_config ? strlen(j.encoded_jit_config) : 0);
		github_jit_release(&j);
		return 0;
	}
	if (str_eq(op, "list_runner_applications") && argc == 1) {
		struct github_app_list l = {0};
		r = github_list_runner_applications(gh, &l, e);
		if (r < 0)
			return r;
		printf("result: applications n=%zu", l.n);
		for (size_t i = 0; i < l.n; i++)
			printf(" app=%s/%s:%s:sha256=%s", l.v[i].os, l.v[i].architecture,
			       l.v[i].filename, l.v[i].sha256[0] ? l.v[i].sha256 : "-");
		printf("\n");
		github_app_list_release(&l);
		return 0;
	}
	if (str_eq(op, "runner_group_id") && argc == 2) {
		r = github_runner_group_id(gh, argv[1], &id, e);
		if (r < 0)
			return r;
		printf("result: group %s id=%" PRId64 "\n", argv[1], id);
		return 0;
	}
	if (str_eq(op, "get_job") && argc == 3) {
		struct github_job j = {0};
		if (parse_id(argv[2], &id) < 0)
			return err_set(e, -EINVAL, "bad job id");
		r = github_get_job(gh, argv[1], id, &j, e);
		if (r < 0)
			return r;
		printf("result:");
		print_job(&j);
		printf("\n");
		github_job_release(&j);
		return 0;
	}
	if (str_eq(op, "list_run_jobs") && argc == 3) {
		struct github_job_list l = {0};
		if (parse_id(argv[2], &id) < 0)
			return err_set(e, -EINVAL, "bad run id");
		r = github_list_run_jobs(gh, argv[1], id, &l, e);
		if (r < 0)
			return r;
		printf("result: jobs n=%zu", l.n);
		for (size_t i = 0; i < l.n; i++)
			print_job(&l.v[i]);
		printf("\n");
		github_job_list_release(&l);
		return 0;
	}
	if (str_eq(op, "list_runs") && argc == 4) {
		struct github_run_list l = {0};
		if (parse_id(argv[3], &id) < 0)
			return err_set(e, -EINVAL, "bad max");
		r = github_list_runs(gh, argv[1], argv[2], (size_t)id, &l, e);
		if (r < 0)
			return r;
		printf("result: runs n=%zu", l.n);
		for (size_t i = 0; i < l.n; i++)
			printf(" [id=%" PRId64 " attempt=%" PRId64
			       " status=%s at=%lld updated=%lld]",
			       l.v[i].id, l.v[i].attempt, l.v[i].status,
			       (long long)l.v[i].created_at, (long long)l.v[i].updated_at);
		printf("\n");
		github_run_list_release(&l);
		return 0;
	}
	if ((str_eq(op, "list_failed_deliveries") && argc == 2) ||
	    (str_eq(op, "list_deliveries_since") && argc == 3)) {
		struct github_hook_delivery_list l = {0};
		int64_t since = 0;
		if (parse_id(argv[1], &id) < 0 || (argc == 3 && parse_id(argv[2], &since) < 0))
			return err_set(e, -EINVAL, "bad hook id or time");
		r = argc == 2 ? github_list_failed_deliveries(gh, id, &l, e)
		              : github_list_deliveries_since(gh, id, since, 1000, &l, e);
		if (r < 0)
			return r;
		printf("result: deliveries n=%zu", l.n);
		for (size_t i = 0; i < l.n; i++)
			printf(" [id=%" PRId64 " guid=%s event=%s action=%s status=%" PRId64
			       " redelivery=%d at=%" PRId64 "]",
			       l.v[i].id, l.v[i].guid, l.v[i].event, l.v[i].action,
			       l.v[i].status_code, l.v[i].redelivery, l.v[i].delivered_at);
		printf("\n");
		github_hook_delivery_list_release(&l);
		return 0;
	}
	if (str_eq(op, "redeliver") && argc == 3) {
		int64_t delivery;
		if (parse_id(argv[1], &id) < 0 || parse_id(argv[2], &delivery) < 0)
			return err_set(e, -EINVAL, "bad hook or delivery id");
		r = github_redeliver(gh, id, delivery, e);
		if (r < 0)
			return r;
		printf("result: redelivered %" PRId64 "\n", delivery);
		return 0;
	}
	return -ENOTSUP;
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct github_opts opts;
	struct github *gh = NULL;
	struct err e;
	const char *key_file = NULL;
	char *key = NULL;
	int i, r = 0, rc = 1;

	memset(&cfg, 0, sizeof(cfg));
	err_clear(&e);
	cfg.github.runner_group = (char *)"default";
	cfg.github.ca_file = (char *)"";
	/* "" takes HTTPS_PROXY/NO_PROXY from the environment: run.sh clears them. */
	cfg.github.proxy = (char *)"";
	cfg.github.connect_timeout = 5;
	cfg.github.request_timeout = 30;
	cfg.manager.name = (char *)"contract";

	for (i = 1; i < argc && str_has_prefix(argv[i], "--"); i++) {
		int64_t v;
		if (i + 1 >= argc)
			return usage();
		if (str_eq(argv[i], "--api")) {
			cfg.github.api_url = argv[++i];
		} else if (str_eq(argv[i], "--path")) {
			cfg.github.path = argv[++i];
		} else if (str_eq(argv[i], "--app-id") && parse_id(argv[i + 1], &v) == 0) {
			cfg.github.app.app_id = v;
			i++;
		} else if (str_eq(argv[i], "--installation-id") && parse_id(argv[i + 1], &v) == 0) {
			cfg.github.app.installation_id = v;
			i++;
		} else if (str_eq(argv[i], "--app-key-file")) {
			key_file = argv[++i];
		} else {
			return usage();
		}
	}
	if (i >= argc || !cfg.github.api_url || !cfg.github.path)
		return usage();
	cfg.github.is_org = strchr(cfg.github.path, '/') == NULL;

	if (key_file) {
		r = file_read_secret(key_file, &key, &e);
		if (r < 0)
			goto out;
		cfg.github.use_app = true;
		cfg.github.app.private_key_file = (char *)key_file;
		cfg.github.app.private_key.value = key;
		cfg.github.app.private_key.source = (char *)"file";
	} else {
		cfg.github.token.value = getenv("CONTRACT_TOKEN");
		cfg.github.token.source = (char *)"env:CONTRACT_TOKEN";
		cfg.github.token_env = (char *)"CONTRACT_TOKEN";
		if (!cfg.github.token.value) {
			fprintf(stderr, "contract_driver: CONTRACT_TOKEN is not set\n");
			return 2;
		}
	}

	github_opts_default(&opts);
	/* One attempt per call: every request in the proxy log is one client decision. */
	opts.max_retries = 0;
	opts.backoff_base_ms = 10;
	opts.backoff_max_ms = 20;

	r = github_new(&cfg, &opts, &gh, &e);
	if (r < 0)
		goto out;
	r = run_op(gh, argc - i, argv + i, &e);
	if (r == -ENOTSUP) {
		rc = usage();
		goto out;
	}
	if (r < 0)
		goto out;
	rc = 0;
out:
	if (rc == 1)
		printf("error: %s (%s)\n", e.msg[0] ? e.msg : "failed", strerror(r < 0 ? -r : EIO));
	github_free(gh);
	if (key) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
	return rc;
}
