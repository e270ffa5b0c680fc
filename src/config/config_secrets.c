/*
 * Secrets: read from the files (*_file) or environment variables (*_env)
 * the config names, a warning for a file other users can reach, the GitHub
 * App key checked offline as github_auth will use it, and wiped when the
 * config is freed. The only file of the loader that opens a secret file or
 * calls OpenSSL. It must never put any part of a secret in a message, nor an
 * OpenSSL error (which could quote the key), and never ask for a passphrase.
 */
#include "util/common.h"
#include "config/config.h"
#include "config/config_internal.h"
#include "util/fileutil.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

/* Never asked: an encrypted key is refused before OpenSSL could prompt for its passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/*
 * The GitHub App key as a whole, as github_auth will use it: one PEM private
 * key, unencrypted, RSA (GitHub signs App JWTs with RS256). Offline; no
 * message shows any of the file, nor an OpenSSL error (which could quote it).
 */
static void check_app_key(struct loader *l, const struct config_field *f, struct pos p,
                          const char *path, const char *pem)
{
	EVP_PKEY *key;
	BIO *bio;

	if (strstr(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
	    strstr(pem, "Proc-Type: 4,ENCRYPTED")) {
		config_error(l, p, f->path,
		             "%s is an encrypted private key; runnerd needs it unencrypted "
		             "(openssl pkey -in KEY -out NEW)",
		             path);
		return;
	}
	bio = BIO_new_mem_buf(pem, -1);
	if (!bio) {
		l->nomem = true;
		return;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (!key)
		config_error(l, p, f->path,
		             "%s is not a PEM private key (the .pem file GitHub gives for the App)",
		             path);
	else if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
		config_error(
		        l, p, f->path, "%s holds a key of type %s; a GitHub App key is RSA", path,
		        EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "unknown");
	EVP_PKEY_free(key);
}

/*
 * A secret file other users may read (or write) leaks the secret, or lets
 * them swap it. A warning, not an error: group access is the usual way to
 * let runnerd's user read a file root owns, and is left alone.
 */
static void check_secret_mode(struct loader *l, const struct config_field *f, struct pos p,
                              const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0 || !(st.st_mode & 007))
		return;
	config_warn(l, p, f->path, "secret file %s is %s by others (mode %04o); chmod o-rwx", path,
	            (st.st_mode & 004)   ? "readable"
	            : (st.st_mode & 002) ? "writable"
	                                 : "accessible",
	            (unsigned)(st.st_mode & 07777));
}

void config_secret_load(struct loader *l, const struct config_field *f)
{
	struct secret *sec = config_at(l->c, f->aux);
	const char *v = *(char **)config_at(l->c, f->off);
	struct seen *s = config_seen_find(l, f, l->c);
	struct pos p = config_field_pos(l, f, l->c);
	char *value = NULL, *source = NULL;
	struct err e = {0};

	if (!*v || !s || !s->ok || sec->value)
		return;
	if (f->flags & CONFIG_F_SECRET_FILE) {
		if (file_read_secret(v, &value, &e) < 0) {
			config_error(l, p, f->path, "cannot read secret file %s", e.msg);
			return;
		}
		check_secret_mode(l, f, p, v);
		if (strcmp(f->path, "github.app.private_key_file") == 0)
			check_app_key(l, f, p, v, value);
		if (asprintf(&source, "file:%s", v) < 0)
			source = NULL;
	} else {
		const char *env = getenv(v);
		if (!env || !*env) {
			config_error(l, p, f->path, "environment variable %s is %s", v,
			             env ? "empty" : "not set");
			return;
		}
		value = strdup(env);
		if (asprintf(&source, "env:%s", v) < 0)
			source = NULL;
	}
	if (!value || !source) {
		if (value)
			explicit_bzero(value, strlen(value));
		free(value);
		free(source);
		l->nomem = true;
		return;
	}
	sec->value = value;
	sec->source = source;
}

void config_secret_wipe(struct secret *s)
{
	if (s->value) {
		explicit_bzero(s->value, strlen(s->value));
		free(s->value);
	}
	free(s->source);
	*s = (struct secret){0};
}
