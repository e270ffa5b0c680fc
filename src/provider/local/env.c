/*
 * The environment an instance's script starts with: the entries the
 * provider sets and the secrets of instance_spec.secret_env parsed into it.
 * Pure: no I/O and no logging. It must never put a secret's value into a
 * message, nor let a secret replace an entry the provider sets (HOME,
 * PATH, ...).
 */
#include "util/common.h"
#include "provider/local/local_internal.h"
#include "util/buf.h"

#define ENV_PATH "/usr/local/bin:/usr/bin:/bin"
#define ENV_LANG "C.UTF-8"

void local_env_wipe(struct local_env *env)
{
	for (size_t i = 0; i < env->n; i++) {
		explicit_bzero(env->v[i], strlen(env->v[i]));
		free(env->v[i]);
	}
	free(env->v);
	env->v = NULL;
	env->n = env->cap = 0;
}

static bool env_has(const struct local_env *env, const char *key, size_t klen)
{
	for (size_t i = 0; i < env->n; i++)
		if (strncmp(env->v[i], key, klen) == 0 && env->v[i][klen] == '=')
			return true;
	return false;
}

static int env_add(struct local_env *env, const char *key, size_t klen, const char *val,
                   size_t vlen)
{
	char *s;

	if (env->n + 1 >= env->cap) {
		size_t ncap = env->cap ? env->cap * 2 : 16;
		char **v = realloc(env->v, ncap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		env->v = v;
		env->cap = ncap;
	}
	s = malloc(klen + vlen + 2);
	if (!s)
		return -ENOMEM;
	memcpy(s, key, klen);
	s[klen] = '=';
	memcpy(s + klen + 1, val, vlen);
	s[klen + 1 + vlen] = '\0';
	env->v[env->n++] = s;
	env->v[env->n] = NULL;
	return 0;
}

static int env_addz(struct local_env *env, const char *key, const char *val)
{
	return env_add(env, key, strlen(key), val, strlen(val));
}

int local_env_base(struct local_env *env, const char *home, const char *user, bool tarball)
{
	size_t n = strlen(home) + sizeof("/" LOCAL_TARBALL_FILE);
	char *tb;
	int r;

	if (env_addz(env, "PATH", ENV_PATH) < 0 || env_addz(env, "HOME", home) < 0 ||
	    env_addz(env, "LANG", ENV_LANG) < 0 || env_addz(env, "USER", user) < 0 ||
	    env_addz(env, "RUNNERD_HOME", home) < 0)
		return -ENOMEM;
	if (!tarball)
		return 0;
	/* sized to home, not to PATH_MAX: the caller has bounded home already */
	tb = malloc(n);
	if (!tb)
		return -ENOMEM;
	snprintf(tb, n, "%s/" LOCAL_TARBALL_FILE, home);
	r = env_addz(env, "RUNNERD_RUNNER_TARBALL", tb);
	free(tb);
	return r;
}

static bool env_key_char(char c, bool first)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
	       (!first && c >= '0' && c <= '9');
}

/*
 * One POSIX shell word made of '...' runs and \x escapes, from *pp up to
 * the end of the line (a quoted run may span lines) -> v; *pp is left at
 * the '\n' or NUL that ends it. -EINVAL on a syntax error, -E2BIG/-ENOMEM.
 */
static int env_unquote(const char **pp, struct buf *v)
{
	const char *p = *pp;

	while (*p && *p != '\n') {
		const char *q;
		int r;

		if (*p == '\\' && p[1]) {
			r = buf_append(v, p + 1, 1);
			p += 2;
		} else if (*p == '\'' && (q = strchr(p + 1, '\''))) {
			r = buf_append(v, p + 1, (size_t)(q - p - 1));
			p = q + 1;
		} else {
			return -EINVAL; /* unterminated quote, or text outside quotes */
		}
		if (r < 0)
			return r;
	}
	*pp = p;
	return 0;
}

/*
 * spec->secret_env -> environment entries: "KEY=value" lines, value either
 * literal to the end of the line or one single-quoted word (what
 * runner_secret_env writes). Messages name the line and the key, never the
 * value. Keys the provider sets itself (and repeated keys) are refused: a
 * secret must not redirect HOME or PATH.
 */
int local_env_add_secrets(struct local_env *env, const char *s, struct err *e)
{
	struct buf v = BUF_INIT_SECRET(LOCAL_SECRET_MAX);
	size_t lineno = 1;
	int r = 0;

	if (strlen(s) > LOCAL_SECRET_MAX)
		return err_set(e, -E2BIG, "secret_env: larger than %d bytes", LOCAL_SECRET_MAX);
	while (*s) {
		const char *key = s, *p = s;
		size_t klen;

		if (*s == '\n') {
			s++;
			lineno++;
			continue;
		}
		while (env_key_char(*p, p == key))
			p++;
		klen = (size_t)(p - key);
		if (klen == 0 || *p != '=') {
			r = err_set(e, -EINVAL, "secret_env: line %zu: expected KEY=value", lineno);
			goto out;
		}
		if (env_has(env, key, klen)) {
			r = err_set(e, -EINVAL,
			            "secret_env: line %zu: %.*s is reserved or repeated", lineno,
			            (int)klen, key);
			goto out;
		}
		p++;
		buf_reset(&v);
		if (*p == '\'') {
			r = env_unquote(&p, &v);
		} else {
			const char *end = strchrnul(p, '\n');
			r = buf_append(&v, p, (size_t)(end - p));
			p = end;
		}
		if (r == 0)
			r = env_add(env, key, klen, buf_str(&v), v.len);
		if (r < 0) {
			r = err_set(e, r, "secret_env: line %zu: %.*s: %s", lineno, (int)klen, key,
			            r == -EINVAL ? "bad quoting" : strerror(-r));
			goto out;
		}
		for (const char *c = s; c < p; c++)
			lineno += *c == '\n';
		s = p;
	}
out:
	buf_wipe(&v);
	return r;
}
