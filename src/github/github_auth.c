/*
 * Credentials for GitHub calls: a personal access token as is, or a GitHub
 * App's RS256 JWT exchanged for an installation token that is cached until
 * five minutes before it expires. Tokens, JWTs and the key live only in
 * memory that is wiped after use; they never reach a message or a log.
 * A token is opaque: its length (40 characters, ~520 since GitHub's 2026
 * format, or more) and shape are never assumed, and it is never cut.
 */
#include "util/common.h"
#include "github/github_internal.h"
#include "util/strutil.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#define INSTALLATION_TOKEN_MARGIN 300 /* seconds before expiry when we stop using it */

int github_auth_load_key(const char *pem, EVP_PKEY **ret, struct err *e)
{
	EVP_PKEY *key = NULL;
	BIO *bio;

	if (!pem || !pem[0])
		return err_set(e, -EINVAL, "GitHub App: no private key");
	bio = BIO_new_mem_buf(pem, -1);
	if (!bio)
		return err_set(e, -ENOMEM, "out of memory");
	/* An encrypted key would make OpenSSL prompt on the terminal: give it no passphrase. */
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	BIO_free(bio);
	ERR_clear_error();
	if (!key)
		return err_set(e, -EINVAL, "GitHub App: the private key is not a PEM private key");
	if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
		EVP_PKEY_free(key);
		return err_set(e, -EINVAL, "GitHub App: the private key is not an RSA key");
	}
	*ret = key;
	return 0;
}

/* base64url without padding, appended to b. */
static int b64url(struct buf *b, const unsigned char *p, size_t n)
{
	static const char tab[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char out[4];
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t k = n - i >= 3 ? 3 : n - i;
		if (k > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (k > 2)
			v |= p[i + 2];
		out[0] = tab[(v >> 18) & 63];
		out[1] = tab[(v >> 12) & 63];
		out[2] = tab[(v >> 6) & 63];
		out[3] = tab[v & 63];
		r = buf_append(b, out, k + 1);
	}
	return r;
}

int github_auth_jwt(EVP_PKEY *key, int64_t app_id, time_t now, char **ret, struct err *e)
{
	static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
	struct buf b = BUF_INIT_SECRET(16384); /* a JWT is a credential */
	unsigned char *sig = NULL;
	EVP_MD_CTX *ctx = NULL;
	char payload[128];
	size_t siglen = 0;
	int n, r = -ENOMEM;

	/* iat a minute in the past against clock drift; GitHub caps exp at 10 minutes. */
	n = snprintf(payload, sizeof(payload),
	             "{\"iat\":%" PRId64 ",\"exp\":%" PRId64 ",\"iss\":%" PRId64 "}",
	             (int64_t)now - 60, (int64_t)now + 540, app_id);
	if (n < 0 || (size_t)n >= sizeof(payload))
		return err_set(e, -EINVAL, "GitHub App: cannot build the JWT");
	if (b64url(&b, (const unsigned char *)header, strlen(header)) < 0 ||
	    buf_puts(&b, ".") < 0 || b64url(&b, (const unsigned char *)payload, (size_t)n) < 0)
		goto fail;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		goto fail;
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(ctx, NULL, &siglen, (const unsigned char *)b.data, b.len) != 1) {
		r = -EINVAL;
		goto fail;
	}
	sig = malloc(siglen);
	if (!sig)
		goto fail;
	if (EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)b.data, b.len) != 1) {
		r = -EINVAL;
		goto fail;
	}
	if (buf_puts(&b, ".") < 0 || b64url(&b, sig, siglen) < 0)
		goto fail;
	EVP_MD_CTX_free(ctx);
	free(sig);
	*ret = buf_detach(&b, NULL);
	return 0;
fail:
	ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	free(sig);
	buf_wipe(&b);
	return err_set(e, r, "GitHub App: cannot sign the JWT%s",
	               r == -ENOMEM ? ": out of memory" : "");
}

/*
 * "Authorization: Bearer <secret>" in one allocation of its exact size: the
 * secret is taken whole whatever its length (no buffer it could outgrow, no
 * growing copy left behind unwiped), or refused when over GITHUB_TOKEN_MAX.
 */
static int bearer(const char *secret, char **ret, struct err *e)
{
	static const char prefix[] = "Authorization: Bearer ";
	size_t n = strlen(secret);
	char *s;

	if (n > GITHUB_TOKEN_MAX)
		return err_set(e, -E2BIG, "GitHub credentials: the token is longer than %d bytes",
		               GITHUB_TOKEN_MAX);
	s = malloc(sizeof(prefix) + n);
	if (!s)
		return err_set(e, -ENOMEM, "out of memory");
	memcpy(s, prefix, sizeof(prefix) - 1);
	memcpy(s + sizeof(prefix) - 1, secret, n + 1);
	*ret = s;
	return 0;
}

void github_secret_free(char **s)
{
	if (*s) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void github_auth_invalidate(struct github *gh)
{
	pthread_mutex_lock(&gh->mu);
	github_secret_free(&gh->inst_token);
	gh->inst_expires = 0;
	pthread_mutex_unlock(&gh->mu);
}

/* The cached installation token as a header line; -ENOENT when there is no fresh one. */
static int cached_header(struct github *gh, char **ret, struct err *e)
{
	int r = -ENOENT;
	pthread_mutex_lock(&gh->mu);
	if (gh->inst_token && time(NULL) < gh->inst_expires - INSTALLATION_TOKEN_MARGIN)
		r = bearer(gh->inst_token, ret, e);
	pthread_mutex_unlock(&gh->mu);
	return r;
}

/* Lock refresh_mu, waiting no later than deadline (clock_mono_ms() time). */
static int lock_refresh(struct github *gh, int64_t deadline, struct err *e)
{
	int64_t left = deadline - clock_mono_ms();
	struct timespec ts;
	int r;

	if (left < 0)
		left = 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(left / 1000);
	ts.tv_nsec += (long)(left % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	r = pthread_mutex_timedlock(&gh->refresh_mu, &ts);
	if (r == ETIMEDOUT)
		return err_set(e, -ETIMEDOUT,
		               "GitHub App: installation token: another exchange did not finish "
		               "within the call's deadline");
	if (r != 0)
		return err_set(e, -r, "GitHub App: installation token: %s", strerror(r));
	return 0;
}

static int installation_header(struct github *gh, int64_t deadline, char **ret, struct err *e)
{
	static const char op[] = "GitHub App: installation token";
	struct github_answer ans = {0};
	struct github_token tok = {0};
	char url[GITHUB_URL_MAX];
	int r;

	r = cached_header(gh, ret, e);
	if (r != -ENOENT)
		return r;
	/* One exchange at a time: the threads that queue here then find it cached. */
	r = lock_refresh(gh, deadline, e);
	if (r < 0)
		return r;
	r = cached_header(gh, ret, e);
	if (r != -ENOENT)
		goto out;
	r = github_url(gh, url, sizeof(url), op, e, "app/installations/%" PRId64 "/access_tokens",
	               gh->cfg->github.app.installation_id);
	if (r < 0)
		goto out;
	/*
	 * No X-GitHub-Stateless-S2S-Token header. GitHub documents it as a
	 * temporary override for testing an App before its staged rollout of
	 * the ~520-character "ghs_<APP ID>_<JWT>" format reaches it (changelog
	 * 2026-05-15; the format: changelog 2026-04-24); without it GitHub
	 * answers as its rollout says, which is what an App in production
	 * should get. The client takes either format whole (github_json_token,
	 * bearer), so forcing one buys nothing: "enabled" would only move our
	 * date, "disabled" would hold on to the format GitHub is retiring, and
	 * both tie us to a header GitHub will drop (and GHES does not know).
	 * The tests force each format through ghsim instead.
	 *
	 * Asking again only mints another token: harmless to retry.
	 */
	r = github_call_json(gh,
	                     &(struct github_call){.op = op,
	                                           .route = "app access token",
	                                           .method = "POST",
	                                           .url = url,
	                                           .retry = GITHUB_RETRY_ALL,
	                                           .use_jwt = true,
	                                           .deadline = deadline,
	                                           .secret = true},
	                     &ans, e);
	if (r < 0)
		goto out;
	r = github_json_token(op, ans.root, &tok, e);
	if (r < 0)
		goto out;
	r = bearer(tok.token, ret, e);
	if (r < 0)
		goto out;
	pthread_mutex_lock(&gh->mu);
	github_secret_free(&gh->inst_token);
	gh->inst_token = tok.token;
	gh->inst_expires = tok.expires_at;
	tok.token = NULL;
	pthread_mutex_unlock(&gh->mu);
out:
	pthread_mutex_unlock(&gh->refresh_mu);
	github_token_release(&tok);
	github_answer_release(&ans);
	return r;
}

int github_auth_header(struct github *gh, bool use_jwt, int64_t deadline, char **ret, struct err *e)
{
	const struct config_github *g = &gh->cfg->github;
	char *jwt = NULL;
	int r;

	if (use_jwt || g->use_app) {
		if (!gh->app_key)
			return err_set(e, -EINVAL, "GitHub App: no private key loaded");
		if (!use_jwt)
			return installation_header(gh, deadline, ret, e);
		r = github_auth_jwt(gh->app_key, g->app.app_id, time(NULL), &jwt, e);
		if (r < 0)
			return r;
		r = bearer(jwt, ret, e);
		github_secret_free(&jwt);
		return r;
	}
	if (!g->token.value || !g->token.value[0])
		return err_set(e, -EINVAL, "no GitHub token configured");
	return bearer(g->token.value, ret, e);
}
