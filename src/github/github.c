/*
 * The GitHub client's life cycle: options, github_new() and github_free(),
 * the counters, cancellation, and the scope and URL every call is built on.
 * It holds no request logic (github_request.c does) and no endpoint beyond
 * the scope check; it must never accept a path that is not an owner, a
 * repository or an organization name, since the scope ends up in every URL.
 */
#include "util/common.h"
#include "github/github_internal.h"
#include "util/strutil.h"

#include <sys/random.h>

void github_opts_default(struct github_opts *o)
{
	o->max_retries = 3;
	o->backoff_base_ms = 500;
	o->backoff_max_ms = 4000;
	o->max_response = 32u << 20;
}

/* Owner, repository and organization names as GitHub allows them (no URL syntax). */
static bool path_part_ok(const char *s, size_t n)
{
	if (n == 0 || n > 100)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return false;
	return !(n <= 2 && s[0] == '.' && (n == 1 || s[1] == '.'));
}

/* "owner/repo" */
int github_repo_check(const struct github *gh, const char *repo, bool scoped, const char *op,
                      struct err *e)
{
	if (!github_repo_ok(repo))
		return err_set(e, -EINVAL, "%s: not an owner/repo", op);
	if (scoped && !config_repo_in_scope(gh->cfg, repo))
		return err_set(e, -EPERM, "%s: not a repository of %s", op, gh->cfg->github.path);
	return 0;
}

bool github_repo_ok(const char *s)
{
	const char *slash = s ? strchr(s, '/') : NULL;
	return slash && path_part_ok(s, (size_t)(slash - s)) &&
	       path_part_ok(slash + 1, strlen(slash + 1));
}

int github_new(const struct config *cfg, const struct github_opts *opts, struct github **ret,
               struct err *e)
{
	const struct config_github *g = &cfg->github;
	struct github *gh;
	uint64_t seed = 0;
	size_t n;
	int r;

	if (!g->api_url || !g->api_url[0] || !g->path)
		return err_set(e, -EINVAL, "github: api_url and path are required");
	if (g->is_org ? !path_part_ok(g->path, strlen(g->path)) : !github_repo_ok(g->path))
		return err_set(e, -EINVAL, "github: path '%s' is not %s", g->path,
		               g->is_org ? "an organization name" : "owner/repo");
	if (!str_has_prefix(g->api_url, "https://") && !str_has_prefix(g->api_url, "http://"))
		return err_set(e, -EINVAL, "github: api_url must be an http(s) URL");
	gh = calloc(1, sizeof(*gh));
	if (!gh)
		return err_set(e, -ENOMEM, "out of memory");
	gh->cfg = cfg;
	if (opts)
		gh->opts = *opts;
	else
		github_opts_default(&gh->opts);
	if (gh->opts.max_response == 0)
		gh->opts.max_response = 32u << 20;
	if (gh->opts.max_retries < 0)
		gh->opts.max_retries = 0;
	pthread_mutex_init(&gh->mu, NULL);
	pthread_mutex_init(&gh->refresh_mu, NULL);
	atomic_init(&gh->cancelled, false);
	github_rate_init(gh);
	n = str_copy(gh->base, g->api_url, sizeof(gh->base));
	if (n >= sizeof(gh->base)) {
		r = err_set(e, -ENAMETOOLONG, "github: api_url is too long");
		goto fail;
	}
	while (n > 0 && gh->base[n - 1] == '/')
		gh->base[--n] = '\0';
	snprintf(gh->scope, sizeof(gh->scope), "%s/%s", g->is_org ? "orgs" : "repos", g->path);
	if (g->use_app) {
		if (g->app.app_id <= 0 || g->app.installation_id <= 0) {
			r = err_set(e, -EINVAL,
			            "GitHub App: app_id and installation_id are required");
			goto fail;
		}
		r = github_auth_load_key(g->app.private_key.value, &gh->app_key, e);
		if (r < 0)
			goto fail;
	}
	r = httpc_new(&gh->http, e);
	if (r < 0)
		goto fail;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)gh;
	gh->rng = seed | 1;
	*ret = gh;
	return 0;
fail:
	github_free(gh);
	return r;
}

void github_free(struct github *gh)
{
	if (!gh)
		return;
	httpc_free(gh->http);
	EVP_PKEY_free(gh->app_key);
	github_secret_free(&gh->inst_token);
	github_cache_release(gh);
	pthread_mutex_destroy(&gh->mu);
	pthread_mutex_destroy(&gh->refresh_mu);
	free(gh);
}

void github_get_stats(struct github *gh, struct github_stats *ret)
{
	time_t now = time(NULL);

	pthread_mutex_lock(&gh->mu);
	*ret = gh->stats;
	ret->n_resources = gh->n_rates;
	for (size_t i = 0; i < gh->n_rates; i++) {
		ret->resources[i] = gh->rates[i];
		if (ret->resources[i].barred_until <= now)
			ret->resources[i].barred_until = 0;
	}
	pthread_mutex_unlock(&gh->mu);
	ret->rate_limit = ret->resources[0].limit;
	ret->rate_remaining = ret->resources[0].remaining;
	ret->rate_reset = ret->resources[0].reset;
	ret->barred_until = ret->resources[0].barred_until;
}

void github_adopt_counters(struct github *gh, struct github *old)
{
	struct github_stats st;

	pthread_mutex_lock(&old->mu);
	st = old->stats;
	pthread_mutex_unlock(&old->mu);
	pthread_mutex_lock(&gh->mu);
	gh->stats.requests_sent += st.requests_sent;
	gh->stats.requests_counted += st.requests_counted;
	gh->stats.not_modified += st.not_modified;
	gh->stats.retries += st.retries;
	for (size_t i = 0; i < st.n_requests; i++) {
		const struct github_request_count *c = &st.requests[i];
		github_count_request(gh, c->route, c->method, c->status, c->n);
	}
	gh->stats.requests_overflow += st.requests_overflow;
	pthread_mutex_unlock(&gh->mu);
}

void github_cancel(struct github *gh)
{
	atomic_store(&gh->cancelled, true);
}

void github_uncancel(struct github *gh)
{
	atomic_store(&gh->cancelled, false);
}

bool github_is_cancelled(const struct github *gh)
{
	return atomic_load(&gh->cancelled);
}

long github_request_timeout_ms(const struct github *gh)
{
	int64_t t = gh->cfg->github.request_timeout;
	return (t > 0 && t < LONG_MAX / 1000 ? (long)t : 30) * 1000L;
}

const char *github_scope(const struct github *gh)
{
	return gh->scope;
}

int github_url(const struct github *gh, char *out, size_t cap, const char *op, struct err *e,
               const char *fmt, ...)
{
	char path[GITHUB_URL_MAX];
	va_list ap;
	int n, r = 0;

	va_start(ap, fmt);
	n = vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(path))
		r = -ENAMETOOLONG;
	else if ((n = snprintf(out, cap, "%s/%s", gh->base, path)) < 0 || (size_t)n >= cap)
		r = -ENAMETOOLONG;
	return r < 0 ? err_set(e, r, "%s: URL too long", op) : 0;
}

const char *github_scope_op(const struct github *gh, const char *what, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s: %s", gh->scope, what);
	return buf;
}

int github_check_scope(struct github *gh, struct err *e)
{
	char url[GITHUB_URL_MAX], op[GITHUB_OP_MAX];
	json_t *root = NULL;
	int r;

	github_scope_op(gh, "read", op, sizeof(op));
	r = github_url(gh, url, sizeof(url), op, e, "%s", gh->scope);
	if (r < 0)
		goto out;
	r = github_get_json(gh, "scope", op, url, NULL, &root, e);
	if (r == 0 && !json_is_object(root))
		r = err_set(e, -EPROTO, "%s: unexpected answer from GitHub: not an object", op);
out:
	json_decref(root);
	return r;
}
