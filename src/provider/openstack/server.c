/*
 * Servers: create (the key pair when configured, the hand-off of the
 * secrets, POST /servers), list (every page of GET /servers/detail by name
 * prefix, then exact owned names and runnerd-manager), get, delete (every
 * server of the name, seen gone, then its key pair and ports) and health
 * (from the state). A create never puts a secret in the server's body,
 * and never leaves what it made without deleting it or saying that it may
 * remain.
 */
#include "util/common.h"
#include "provider/openstack/os_internal.h"
#include "util/handoff.h"

int os_list_servers(struct os *o, const struct provider_call *c, const char *name, bool keep_dups,
                    struct instance_list *ret, struct err *e)
{
	struct instance_list l = {0};
	struct buf path = BUF_INIT(OS_URL_MAX), re = BUF_INIT(256);
	char base[OS_URL_MAX], next[OS_URL_MAX] = "", prev[OS_URL_MAX] = "";
	int r;

	r = os_endpoint(o, c, OS_COMPUTE, base, sizeof(base), e);
	if (r < 0)
		return r;
	/* Nova's name filter is a regular expression: ^<manager>- or ^<name>$ */
	if (buf_printf(&re, "^%s%s", *name ? name : o->manager, *name ? "$" : "-") < 0 ||
	    buf_puts(&path, "/servers/detail?name=") < 0 || os_escape(&path, buf_str(&re)) < 0) {
		r = err_set(e, -ENAMETOOLONG, "nova: a name too long");
		goto out;
	}
	for (int page = 0;; page++) {
		struct httpc_response resp = {0};
		const struct os_req q = {
		        .svc = OS_COMPUTE,
		        .path = buf_str(&path),
		        .url = page ? next : NULL,
		        .max_body = OS_PAGE_MAX,
		        .what = "the server listing",
		};

		if (page >= OS_PAGES_MAX) {
			r = err_set(e, -EBADMSG, "nova: a server listing of more than %d pages",
			            OS_PAGES_MAX);
			goto out;
		}
		r = os_call(o, c, &q, &resp, e);
		if (r == 0)
			r = os_parse_servers(resp.body.data, resp.body.len, o->manager, base,
			                     keep_dups, &l, next, e);
		httpc_response_release(&resp);
		if (r < 0) {
			err_prefix(e, "page %d", page + 1);
			goto out;
		}
		if (!next[0])
			break;
		if (strcmp(next, prev) == 0) {
			r = err_set(e, -EBADMSG,
			            "nova: a server listing whose next page is itself");
			goto out;
		}
		str_copy(prev, next, sizeof(prev));
	}
	instance_list_release(ret);
	*ret = l;
	memset(&l, 0, sizeof(l));
out:
	instance_list_release(&l);
	buf_release(&path);
	buf_release(&re);
	return r;
}

int os_list(struct provider *p, const struct provider_call *c, struct instance_list *ret,
            struct err *e)
{
	return os_list_servers(p->priv, c, "", false, ret, e);
}

int os_get(struct provider *p, const struct provider_call *c, const char *name,
           struct instance *ret, struct err *e)
{
	struct instance_list l = {0};
	int r = os_list_servers(p->priv, c, name, false, &l, e);

	if (r == 0 && l.n == 0)
		r = err_set(e, -ENOENT, "nova: no server %s", name);
	if (r == 0)
		*ret = l.v[0];
	instance_list_release(&l);
	return r;
}

int os_health(struct provider *p, const struct provider_call *c, const char *name, enum health *ret,
              struct err *e)
{
	struct instance in;
	int r = os_get(p, c, name, &in, e);

	if (r == -ENOENT) {
		*ret = HEALTH_UNKNOWN;
		return 0;
	}
	if (r == 0)
		*ret = health_from_state(in.state);
	return r;
}

/* DELETE each server of name, then wait until Nova answers 404 for each. */
static int remove_servers(struct os *o, const struct provider_call *c, const char *name,
                          struct err *e)
{
	struct instance_list l = {0};
	int r = os_list_servers(o, c, name, true, &l, e);

	for (size_t i = 0; r == 0 && i < l.n; i++) {
		struct buf path = BUF_INIT(OS_URL_MAX);
		struct httpc_response resp = {0};

		if (buf_puts(&path, "/servers/") < 0 || os_escape(&path, l.v[i].provider_id) < 0) {
			buf_release(&path);
			r = err_set(e, -ENAMETOOLONG, "nova: an id too long");
			break;
		}
		const struct os_req del = {.method = "DELETE",
		                           .svc = OS_COMPUTE,
		                           .path = buf_str(&path),
		                           .what = name};
		r = os_call(o, c, &del, &resp, e);
		httpc_response_release(&resp);
		if (r == -ENOENT)
			r = 0;
		/* seen gone: a 404 for its id (a server in deletion still answers 200) */
		while (r == 0) {
			const struct os_req get = {
			        .svc = OS_COMPUTE, .path = buf_str(&path), .what = name};
			r = os_call(o, c, &get, &resp, e);
			httpc_response_release(&resp);
			if (r == -ENOENT) {
				r = 0;
				break;
			}
			if (r == 0 && !provider_call_sleep(c, OS_POLL_MS))
				r = err_set(e, -ECANCELED,
				            "nova: %s: cancelled while it is deleted", name);
			if (r == 0 && provider_call_left_ms(c) == 0)
				r = err_set(e, -ETIMEDOUT, "nova: %s: not gone within the deadline",
				            name);
		}
		buf_release(&path);
	}
	instance_list_release(&l);
	return r;
}

int os_delete(struct provider *p, const struct provider_call *c, const char *name, struct err *e)
{
	struct os *o = p->priv;
	int r = remove_servers(o, c, name, e);

	if (r == 0)
		r = os_remove_extras(o, c, name, e);
	return r;
}

static int add_keypair(struct os *o, const struct provider_call *c, const char *name, struct err *e)
{
	struct buf body = BUF_INIT(64 * 1024);
	struct httpc_response resp = {0};
	int r;

	if (buf_puts(&body, "{\"keypair\":{\"name\":") < 0 || buf_json_string(&body, name) < 0 ||
	    buf_puts(&body, ",\"public_key\":") < 0 || buf_json_string(&body, o->ssh_pubkey) < 0 ||
	    buf_puts(&body, "}}") < 0) {
		buf_release(&body);
		return err_set(e, -E2BIG, "nova: the ssh key is too long");
	}
	const struct os_req q = {.method = "POST",
	                         .svc = OS_COMPUTE,
	                         .path = "/os-keypairs",
	                         .body = buf_str(&body),
	                         .what = "the key pair"};
	r = os_call(o, c, &q, &resp, e);
	httpc_response_release(&resp);
	buf_release(&body);
	return r == -EEXIST ? 0 : r; /* a leftover of this name: the same key */
}

/* The user data: the hand-off's URL (the secrets put there) and the script. */
static int make_user_data(struct os *o, const struct instance_spec *spec, char *token, char **ret,
                          struct err *e)
{
	struct buf url = BUF_INIT(OS_URL_MAX + HANDOFF_TOKEN_LEN + 32);
	int r;

	token[0] = '\0';
	if (spec->secret_env && *spec->secret_env) {
		if (!o->secret_url[0])
			return err_set(
			        e, -ENOTSUP,
			        "openstack: the instance has secrets and secret_url is not set: "
			        "they cannot reach it");
		r = handoff_put(spec->secret_env, strlen(spec->secret_env), OS_HANDOFF_TTL_MS,
		                token, e);
		if (r < 0)
			return r;
		if (buf_printf(&url, "%s/v1/handoff/%s", o->secret_url, token) < 0) {
			handoff_drop(token);
			return err_set(e, -ENAMETOOLONG, "openstack: secret_url too long");
		}
	}
	*ret = os_build_user_data(spec->startup_script, url.len ? buf_str(&url) : NULL);
	buf_release(&url);
	if (!*ret) {
		handoff_drop(token);
		return err_set(e, -E2BIG,
		               "openstack: the user data is too big (or secret_url unusable)");
	}
	return 0;
}

int os_create(struct provider *p, const struct provider_call *c, const struct instance_spec *spec,
              struct instance *ret, struct err *e)
{
	struct os *o = p->priv;
	char image[OS_ID_MAX], flavor[OS_ID_MAX], network[OS_ID_MAX], id[OS_ID_MAX];
	char sg[OS_ID_MAX];
	char token[HANDOFF_TOKEN_LEN + 1] = "";
	struct buf body = BUF_INIT(OS_USER_DATA_MAX * 2);
	struct httpc_response resp = {0};
	struct err e2 = {0};
	char *ud = NULL;
	bool keyed = false;
	int r;

	r = os_resolve(o, c, spec->flavor->image, image, flavor, network, e);
	if (r == 0)
		r = os_secgroup_ensure(o, c, sg, e);
	if (r == 0)
		r = make_user_data(o, spec, token, &ud, e);
	if (r < 0)
		goto out;
	const struct os_server_req q = {
	        .name = spec->name,
	        .flavor_name = spec->flavor->name,
	        .image_id = image,
	        .flavor_id = flavor,
	        .network_id = network,
	        .secgroup = sg, /* Nova takes a name or an id: the id is never ambiguous */
	        .key_name = o->ssh_pubkey ? spec->name : NULL,
	        .config_drive = o->config_drive,
	        .user_data = ud,
	        .manager = o->manager,
	};
	r = os_build_server(&q, &body);
	if (r < 0) {
		err_set(e, r, "openstack: the server's body is too big");
		goto out;
	}
	if (o->ssh_pubkey) {
		r = add_keypair(o, c, spec->name, e);
		if (r < 0)
			goto out;
		keyed = true;
	}
	const struct os_req post = {.method = "POST",
	                            .svc = OS_COMPUTE,
	                            .path = "/servers",
	                            .body = buf_str(&body),
	                            .what = "create a server"};
	r = os_request(o, c, &post, &resp, e);
	if (r < 0) {
		/* it may have been made: the manager deletes it by name later */
		err_prefix(e, "%s may remain", spec->name);
		r = PROVIDER_EMAYREMAIN;
		keyed = false;
		token[0] = '\0'; /* the instance may yet fetch its secrets */
		goto out;
	}
	if (resp.status >= 400) {
		r = os_parse_error("nova: create a server", resp.status, resp.body.data,
		                   resp.body.len, e);
		goto out;
	}
	r = os_parse_id(resp.body.data, resp.body.len, "server", id, e);
	if (r < 0) {
		err_prefix(e, "%s may remain", spec->name);
		r = PROVIDER_EMAYREMAIN;
		keyed = false;
		token[0] = '\0';
		goto out;
	}
	memset(ret, 0, sizeof(*ret));
	str_copy(ret->name, spec->name, sizeof(ret->name));
	str_copy(ret->provider_id, id, sizeof(ret->provider_id));
	str_copy(ret->flavor, spec->flavor->name, sizeof(ret->flavor));
	ret->state = CLOUD_CREATED;
	ret->created_at = (time_t)(clock_wall_ms() / 1000);
	token[0] = '\0'; /* handed over: the instance takes it */
	keyed = false;
out:
	if (keyed && os_remove_extras(o, c, spec->name, &e2) < 0 && r != PROVIDER_EMAYREMAIN) {
		err_prefix(e, "(its key pair may remain)");
	}
	if (token[0])
		handoff_drop(token);
	httpc_response_release(&resp);
	buf_release(&body);
	free(ud);
	return r;
}
