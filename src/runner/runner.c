/*
 * Runner labels, shell quoting, the secret environment and the web URL.
 * Everything here ends up inside an instance, where a job's code runs: a
 * value must never be able to become code (hence one quoting function for
 * all), and a secret must never be written anywhere but the buffer the
 * caller handed in.
 */
#include "util/common.h"
#include "util/strutil.h"
#include "runner/runner.h"

int runner_labels(const struct config_flavor *flavor, struct strv *ret)
{
	const char *implied[WORDS_IMPLIED_LABELS];
	size_t total = ARRAY_SIZE(implied) + flavor->labels.n;
	struct strv l = {NULL, 0};
	int r = 0;

	words_implied_labels(flavor->arch, implied);
	l.v = calloc(total, sizeof(*l.v));
	if (!l.v)
		return -ENOMEM;
	for (size_t i = 0; i < total; i++) {
		const char *s = i < ARRAY_SIZE(implied) ? implied[i]
		                                        : flavor->labels.v[i - ARRAY_SIZE(implied)];
		if (!s || !*s || strchr(s, ',')) {
			r = -EINVAL;
			goto out;
		}
		if (strv_contains(&l, s, true))
			continue;
		l.v[l.n] = strdup(s);
		if (!l.v[l.n]) {
			r = -ENOMEM;
			goto out;
		}
		l.n++;
	}
	strv_release(ret);
	*ret = l;
	l.v = NULL;
	l.n = 0;
out:
	strv_release(&l);
	return r;
}

int runner_sh_quote(const char *s, struct buf *out)
{
	int r = buf_puts(out, "'");

	for (const char *p = s; r == 0 && *p; p++) {
		if (*p == '\'')
			r = buf_puts(out, "'\\''");
		else
			r = buf_append(out, p, 1);
	}
	return r < 0 ? r : buf_puts(out, "'");
}

static bool env_name_ok(const char *name)
{
	if (!name || !(*name == '_' || (*name >= 'A' && *name <= 'Z')))
		return false;
	for (const char *p = name; *p; p++)
		if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			return false;
	return true;
}

int runner_secret_env_var(const char *name, const char *value, struct buf *out)
{
	size_t mark = out->len;
	int r;

	if (!env_name_ok(name) || !value || !*value)
		return -EINVAL;
	r = buf_printf(out, "%s=", name);
	if (r == 0)
		r = runner_sh_quote(value, out);
	if (r == 0)
		r = buf_puts(out, "\n");
	if (r < 0 && out->data) {
		/* Leave no half a secret behind. */
		explicit_bzero(out->data + mark, out->len - mark);
		out->len = mark;
		out->data[mark] = '\0';
	}
	return r;
}

int runner_secret_env(const char *secret, bool jit, struct buf *out)
{
	return runner_secret_env_var(
	        jit ? "ACTIONS_RUNNER_INPUT_JITCONFIG" : "ACTIONS_RUNNER_INPUT_TOKEN", secret, out);
}

int runner_html_url(const char *api_url, const char *path, struct buf *out)
{
	static const char ghes_suffix[] = "/api/v3";
	size_t n, slen = sizeof(ghes_suffix) - 1;
	int r;

	if (!api_url || !*api_url || !path || !*path)
		return -EINVAL;
	n = strlen(api_url);
	while (n > 0 && api_url[n - 1] == '/')
		n--;
	if ((n == strlen("https://api.github.com") &&
	     strncasecmp(api_url, "https://api.github.com", n) == 0)) {
		r = buf_puts(out, "https://github.com");
	} else {
		if (n > slen && strncasecmp(api_url + n - slen, ghes_suffix, slen) == 0)
			n -= slen;
		r = buf_append(out, api_url, n);
	}
	while (r == 0 && *path == '/')
		path++;
	if (r == 0)
		r = buf_printf(out, "/%s", path);
	return r;
}
