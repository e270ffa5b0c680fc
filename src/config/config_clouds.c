/*
 * One cloud of an OpenStack clouds.yaml (the file the openstack client and
 * openstacksdk read), for the openstack provider and for check-config:
 * auth_url, the password or application-credential auth, region_name,
 * cacert and verify. Every problem is "FILE:LINE:COLUMN: clouds.<name>.<key>:
 * message". The file holds secrets: it is read into wiped memory, and no
 * message ever quotes a value of it (only key names and positions).
 */
#include "util/common.h"
#include "config/config.h"
#include "config/config_internal.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#include <libfyaml.h>

#define CLOUD_VALUE_MAX 4096

static void diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
}

static int node_err(struct err *e, const char *name, struct fy_node *n, const char *cloud,
                    const char *key, const char *msg)
{
	struct pos p = config_node_pos(n, (struct pos){1, 1});

	return err_set(e, -EINVAL, "%s:%d:%d: clouds.%s%s%s: %s", name, p.line, p.col, cloud,
	               key ? "." : "", key ? key : "", msg);
}

/* A scalar member's text (NULL when absent); -EINVAL when it is there but not a usable scalar. */
static int member(const char *name, struct fy_node *map, const char *cloud, const char *pre,
                  const char *key, char **ret, struct err *e)
{
	char disp[96];
	struct fy_node *v = map ? fy_node_mapping_lookup_by_string(map, key, FY_NT) : NULL;
	const char *s;
	size_t len;

	*ret = NULL;
	if (!v)
		return 0;
	snprintf(disp, sizeof(disp), "%s%s", pre, key);
	key = disp;
	if (fy_node_get_type(v) != FYNT_SCALAR || fy_node_is_alias(v))
		return node_err(e, name, v, cloud, key, "must be a string");
	s = fy_node_get_scalar(v, &len);
	if (!s || len == 0 || len > CLOUD_VALUE_MAX || memchr(s, '\0', len))
		return node_err(e, name, v, cloud, key,
		                "must be a non-empty string of at most 4096 bytes");
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20)
			return node_err(e, name, v, cloud, key, "must not hold control characters");
	*ret = strndup(s, len);
	return *ret ? 0 : err_set(e, -ENOMEM, "%s: out of memory", name);
}

void config_cloud_release(struct config_cloud *c)
{
	char **strs[] = {&c->auth_url,
	                 &c->username,
	                 &c->user_id,
	                 &c->user_domain_name,
	                 &c->user_domain_id,
	                 &c->project_name,
	                 &c->project_id,
	                 &c->project_domain_name,
	                 &c->project_domain_id,
	                 &c->app_cred_id,
	                 &c->app_cred_name,
	                 &c->region_name,
	                 &c->cacert};

	for (size_t i = 0; i < ARRAY_SIZE(strs); i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
	if (c->secret) {
		explicit_bzero(c->secret, strlen(c->secret));
		free(c->secret);
		c->secret = NULL;
	}
}

static int read_cloud(const char *name, struct fy_node *cn, const char *cloud,
                      struct config_cloud *c, struct err *e)
{
	struct fy_node *auth = fy_node_mapping_lookup_by_string(cn, "auth", FY_NT);
	char *auth_type = NULL, *verify = NULL, *password = NULL, *appsecret = NULL;
	char *dom_name = NULL, *dom_id = NULL;
	int r;

	if (!auth || fy_node_get_type(auth) != FYNT_MAPPING)
		return node_err(e, name, auth ? auth : cn, cloud, "auth", "a mapping is required");
#define M(map, key, slot)                                                                          \
	do {                                                                                       \
		r = member(name, map, cloud, map == auth ? "auth." : "", key, slot, e);            \
		if (r < 0)                                                                         \
			goto out;                                                                  \
	} while (0)
	M(cn, "auth_type", &auth_type);
	M(cn, "region_name", &c->region_name);
	M(cn, "cacert", &c->cacert);
	M(cn, "verify", &verify);
	M(auth, "auth_url", &c->auth_url);
	M(auth, "username", &c->username);
	M(auth, "user_id", &c->user_id);
	M(auth, "user_domain_name", &c->user_domain_name);
	M(auth, "user_domain_id", &c->user_domain_id);
	M(auth, "project_name", &c->project_name);
	M(auth, "project_id", &c->project_id);
	M(auth, "project_domain_name", &c->project_domain_name);
	M(auth, "project_domain_id", &c->project_domain_id);
	M(auth, "domain_name", &dom_name);
	M(auth, "domain_id", &dom_id);
	M(auth, "application_credential_id", &c->app_cred_id);
	M(auth, "application_credential_name", &c->app_cred_name);
	M(auth, "password", &password);
	M(auth, "application_credential_secret", &appsecret);
#undef M
	r = -EINVAL;
	if (!c->auth_url ||
	    !(str_has_prefix(c->auth_url, "http://") || str_has_prefix(c->auth_url, "https://"))) {
		node_err(e, name, auth, cloud, "auth.auth_url",
		         "an http:// or https:// URL is required");
		goto out;
	}
	while (strlen(c->auth_url) > 8 && c->auth_url[strlen(c->auth_url) - 1] == '/')
		c->auth_url[strlen(c->auth_url) - 1] = '\0';
	if (verify && strcmp(verify, "true") != 0 && strcmp(verify, "false") != 0) {
		node_err(e, name, cn, cloud, "verify", "must be true or false");
		goto out;
	}
	c->verify = !verify || strcmp(verify, "true") == 0;
	if (!auth_type || strcmp(auth_type, "password") == 0 ||
	    strcmp(auth_type, "v3password") == 0) {
		c->app_cred = false;
		if (!password) {
			node_err(e, name, auth, cloud, "auth.password",
			         "required for password auth");
			goto out;
		}
		if (!c->username && !c->user_id) {
			node_err(e, name, auth, cloud, "auth.username",
			         "username or user_id is required for password auth");
			goto out;
		}
		if (!c->project_name && !c->project_id) {
			node_err(e, name, auth, cloud, "auth.project_name",
			         "project_name or project_id is required for password auth");
			goto out;
		}
		c->secret = password;
		password = NULL;
	} else if (strcmp(auth_type, "v3applicationcredential") == 0) {
		c->app_cred = true;
		if (!appsecret) {
			node_err(e, name, auth, cloud, "auth.application_credential_secret",
			         "required for application-credential auth");
			goto out;
		}
		if (!c->app_cred_id && !(c->app_cred_name && (c->username || c->user_id))) {
			node_err(
			        e, name, auth, cloud, "auth.application_credential_id",
			        "application_credential_id, or its name and the user, is required");
			goto out;
		}
		c->secret = appsecret;
		appsecret = NULL;
	} else {
		node_err(e, name, cn, cloud, "auth_type",
		         "must be password, v3password or v3applicationcredential");
		goto out;
	}
	/* domain_* is the default of both; Keystone's own default domain last */
	if (!c->user_domain_name && !c->user_domain_id) {
		c->user_domain_name = dom_name ? strdup(dom_name) : NULL;
		c->user_domain_id = !dom_name ? strdup(dom_id ? dom_id : "default") : NULL;
	}
	if (!c->project_domain_name && !c->project_domain_id) {
		c->project_domain_name = dom_name ? strdup(dom_name) : NULL;
		c->project_domain_id = !dom_name ? strdup(dom_id ? dom_id : "default") : NULL;
	}
	if ((!c->user_domain_name && !c->user_domain_id) ||
	    (!c->project_domain_name && !c->project_domain_id)) {
		r = err_set(e, -ENOMEM, "%s: out of memory", name);
		goto out;
	}
	r = 0;
out:
	free(auth_type);
	free(verify);
	free(dom_name);
	free(dom_id);
	if (password) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	if (appsecret) {
		explicit_bzero(appsecret, strlen(appsecret));
		free(appsecret);
	}
	return r;
}

int config_cloud_parse(const char *name, const char *text, size_t len, const char *cloud,
                       struct config_cloud *ret, struct err *e)
{
	struct fy_diag_cfg dcfg;
	struct fy_parse_cfg pcfg = {0};
	struct fy_diag *diag = NULL;
	struct fy_parser *fyp = NULL;
	struct fy_document *doc = NULL;
	struct fy_node *root, *clouds, *cn = NULL;
	struct config_cloud c = {0};
	struct pos bad;
	int r;

	if (config_utf8_bad(text, len, &bad))
		return err_set(e, -EINVAL, "%s:%d:%d: not valid UTF-8 text (clouds.yaml is UTF-8)",
		               name, bad.line, bad.col);
	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.output_fn = diag_discard;
	diag = fy_diag_create(&dcfg);
	if (!diag)
		return err_set(e, -ENOMEM, "%s: out of memory", name);
	fy_diag_set_collect_errors(diag, true);
	pcfg.flags = FYPCF_QUIET | FYPCF_COLLECT_DIAG;
	pcfg.diag = diag;
	fyp = fy_parser_create(&pcfg);
	if (!fyp || fy_parser_set_string(fyp, text, len) < 0) {
		r = err_set(e, -ENOMEM, "%s: out of memory", name);
		goto out;
	}
	doc = fy_parse_load_document(fyp);
	if (!doc || fy_diag_got_error(diag)) {
		struct fy_diag_error *de;
		void *it = NULL;
		int line = 1, col = 1;

		while ((de = fy_diag_errors_iterate(diag, &it)))
			if (de->type >= FYET_ERROR) {
				line = de->line > 0 ? de->line : 1;
				col = de->column > 0 ? de->column : 1;
				break;
			}
		r = err_set(e, -EINVAL, "%s:%d:%d: not a YAML document clouds.yaml can be", name,
		            line, col);
		goto out;
	}
	root = fy_document_root(doc);
	clouds = root && fy_node_get_type(root) == FYNT_MAPPING
	                 ? fy_node_mapping_lookup_by_string(root, "clouds", FY_NT)
	                 : NULL;
	if (!clouds || fy_node_get_type(clouds) != FYNT_MAPPING) {
		r = err_set(e, -EINVAL, "%s:1:1: clouds: a mapping of clouds is required", name);
		goto out;
	}
	cn = fy_node_mapping_lookup_by_string(clouds, cloud, FY_NT);
	if (!cn) {
		r = node_err(e, name, clouds, cloud, NULL, "no such cloud in the file");
		goto out;
	}
	if (fy_node_get_type(cn) != FYNT_MAPPING) {
		r = node_err(e, name, cn, cloud, NULL, "must be a mapping");
		goto out;
	}
	r = read_cloud(name, cn, cloud, &c, e);
	if (r < 0)
		goto out;
	*ret = c;
	memset(&c, 0, sizeof(c));
out:
	config_cloud_release(&c);
	if (doc)
		fy_parse_document_destroy(fyp, doc);
	fy_parser_destroy(fyp);
	fy_diag_destroy(diag);
	return r;
}

int config_cloud_load(const char *path, const char *cloud, struct config_cloud *ret, struct err *e)
{
	char *text = NULL;
	size_t len;
	int r = file_read_secret(path, &text, e);

	if (r < 0)
		return r;
	len = strlen(text);
	r = config_cloud_parse(path, text, len, cloud, ret, e);
	explicit_bzero(text, len);
	free(text);
	return r;
}
