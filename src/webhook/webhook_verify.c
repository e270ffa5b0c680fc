/*
 * The signature of a delivery: X-Hub-Signature-256 is "sha256=" and the hex
 * HMAC-SHA256 of the raw body under the hook's secret. It must never compare
 * digests in a time that depends on where they differ, nor put the secret
 * or the expected digest in a message.
 */
#include "util/common.h"
#include "webhook/webhook.h"
#include "util/strutil.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SIG_PREFIX "sha256="
#define DIGEST_LEN 32

int webhook_verify(const char *key, size_t key_len, const void *body, size_t len, const char *sig,
                   struct err *e)
{
	unsigned char want[DIGEST_LEN], got[EVP_MAX_MD_SIZE];
	unsigned int got_len = 0;
	size_t plen = strlen(SIG_PREFIX);
	int r = 0;

	if (!key || key_len == 0)
		return err_set(e, -EINVAL, "webhook: no secret to check signatures with");
	if (!sig)
		return err_set(e, -EACCES, "webhook: no X-Hub-Signature-256 header");
	/* the header's shape says nothing of the secret: checking it first leaks nothing */
	if (strncasecmp(sig, SIG_PREFIX, plen) != 0 || strlen(sig) != plen + 2 * DIGEST_LEN)
		return err_set(e, -EACCES,
		               "webhook: X-Hub-Signature-256 is not sha256=<64 hex digits>");
	for (size_t i = 0; i < DIGEST_LEN; i++) {
		int hi = hex_digit_value(sig[plen + 2 * i]),
		    lo = hex_digit_value(sig[plen + 2 * i + 1]);
		if (hi < 0 || lo < 0)
			return err_set(
			        e, -EACCES,
			        "webhook: X-Hub-Signature-256 is not sha256=<64 hex digits>");
		want[i] = (unsigned char)(hi << 4 | lo);
	}
	if (!HMAC(EVP_sha256(), key, (int)key_len, body ? body : "", len, got, &got_len) ||
	    got_len != DIGEST_LEN) {
		r = err_set(e, -EIO, "webhook: HMAC-SHA256 failed");
		goto out;
	}
	if (CRYPTO_memcmp(want, got, DIGEST_LEN) != 0)
		r = err_set(e, -EACCES, "webhook: X-Hub-Signature-256 does not match the body");
out:
	OPENSSL_cleanse(got, sizeof(got));
	return r;
}
