/*
 * libFuzzer target: the local provider's parsers from untrusted bytes. The
 * secret env (instance_spec.secret_env) either parses or is refused with a
 * clean error; what it accepts leaves the provider's own entries (HOME,
 * PATH, ...) as they were, holds each key once, and re-quoted as
 * runner_secret_env quotes it parses back to the same values. /proc's
 * stat and status text, which a process partly chooses, parse without
 * reading past what they are given.
 */
#include "util/common.h"
#include "util/buf.h"
#include "provider/local/local_internal.h"

#define HOME "/var/lib/runnerd/local/ci-000000000001"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int key_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t nx = strcspn(x, "="), ny = strcspn(y, "=");
	int c = memcmp(x, y, nx < ny ? nx : ny);

	return c ? c : (nx > ny) - (nx < ny);
}

/* Every entry KEY=value with a well-formed key, no key twice. */
static void check_keys(const struct local_env *env)
{
	char **v;

	if (env->n == 0)
		return;
	v = malloc(env->n * sizeof(*v));
	if (!v)
		return;
	memcpy(v, env->v, env->n * sizeof(*v));
	for (size_t i = 0; i < env->n; i++) {
		size_t k = strcspn(v[i], "=");
		if (k == 0 || v[i][k] != '=' || (v[i][0] >= '0' && v[i][0] <= '9') ||
		    strspn(v[i],
		           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != k)
			abort();
	}
	qsort(v, env->n, sizeof(*v), key_cmp);
	for (size_t i = 1; i < env->n; i++)
		if (key_cmp(&v[i - 1], &v[i]) == 0)
			abort();
	free(v);
}

/* entries [from, n) of env as KEY='value' lines ('it'\''s'), as runner_secret_env writes. */
static int requote(const struct local_env *env, size_t from, struct buf *out)
{
	int r = 0;

	for (size_t i = from; r == 0 && i < env->n; i++) {
		const char *eq = strchr(env->v[i], '=');
		r = buf_append(out, env->v[i], (size_t)(eq - env->v[i]) + 1);
		if (r == 0)
			r = buf_puts(out, "'");
		for (const char *c = eq + 1; r == 0 && *c; c++)
			r = *c == '\'' ? buf_puts(out, "'\\''") : buf_append(out, c, 1);
		if (r == 0)
			r = buf_puts(out, "'\n");
	}
	return r;
}

static void fuzz_secret_env(const char *s, bool tarball)
{
	struct local_env env = {0}, base = {0}, again = {0};
	struct buf q = BUF_INIT(4 * (size_t)LOCAL_SECRET_MAX + 16);
	struct err e = {0};

	if (local_env_base(&env, HOME, "runnerd-runner", tarball) < 0 ||
	    local_env_base(&base, HOME, "runnerd-runner", tarball) < 0)
		goto out;
	if (local_env_add_secrets(&env, s, &e) < 0) {
		if (e.code >= 0 || !e.msg[0])
			abort(); /* a refusal says why */
		goto out;
	}
	if (env.n < base.n || env.v[env.n] != NULL)
		abort();
	for (size_t i = 0; i < base.n; i++)
		if (strcmp(env.v[i], base.v[i]) != 0)
			abort();
	check_keys(&env);
	/* quoted again, the values come back the same (when the quoting still fits) */
	if (requote(&env, base.n, &q) < 0 || q.len > LOCAL_SECRET_MAX)
		goto out;
	if (local_env_base(&again, HOME, "runnerd-runner", tarball) < 0)
		goto out;
	if (local_env_add_secrets(&again, buf_str(&q), NULL) != 0 || again.n != env.n)
		abort();
	for (size_t i = 0; i < env.n; i++)
		if (strcmp(env.v[i], again.v[i]) != 0)
			abort();
out:
	buf_wipe(&q);
	local_env_wipe(&env);
	local_env_wipe(&base);
	local_env_wipe(&again);
}

static void fuzz_proc(const char *s)
{
	struct local_proc_info pi;
	struct local_proc_ids ids;
	uid_t uid;

	(void)local_proc_parse_stat(s, &pi);
	(void)local_proc_parse_uid(s, &uid);
	(void)local_proc_parse_ids(s, &ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	fuzz_secret_env(s, size % 2 == 1);
	fuzz_proc(s);
	free(s);
	return 0;
}
