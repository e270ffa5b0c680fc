/*
 * What the openstack backend sends: the Keystone auth body (the only one
 * that holds a secret, built in a secret buf), the user data around the
 * startup script, and the body of POST /servers. Pure functions: no I/O.
 * The user data and the server body must never hold a secret: the
 * instance's secrets reach it through the hand-off URL only.
 */
#include "util/common.h"
#include "provider/openstack/os_internal.h"

void os_secgroup_name(const char *configured, const char *manager, char *out, size_t cap)
{
	if (configured && *configured)
		str_copy(out, configured, cap);
	else
		snprintf(out, cap, "%s-runners", manager);
}

void os_secgroup_description(const char *manager, char *out, size_t cap)
{
	snprintf(out, cap, "runnerd %s: its runners", manager);
}

/* {"id": id} or {"name": name, "domain": {...}} of a user or project. */
static json_t *scoped(const char *id, const char *name, const char *dom_id, const char *dom_name)
{
	json_t *o = json_object(), *d;

	if (!o)
		return NULL;
	if (id) {
		json_object_set_new(o, "id", json_string(id));
		return o;
	}
	json_object_set_new(o, "name", json_string(name ? name : ""));
	d = json_object();
	if (dom_id)
		json_object_set_new(d, "id", json_string(dom_id));
	else
		json_object_set_new(d, "name", json_string(dom_name ? dom_name : ""));
	json_object_set_new(o, "domain", d);
	return o;
}

int os_build_auth(const struct config_cloud *c, struct buf *ret)
{
	json_t *root = json_object(), *auth = json_object(), *ident = json_object();
	json_t *methods = json_array(), *m = json_object(), *user;
	char *text = NULL;
	int r = -ENOMEM;

	if (!root || !auth || !ident || !methods || !m || !c->secret)
		goto out;
	if (c->app_cred) {
		json_array_append_new(methods, json_string("application_credential"));
		if (c->app_cred_id) {
			json_object_set_new(m, "id", json_string(c->app_cred_id));
		} else {
			json_object_set_new(m, "name", json_string(c->app_cred_name));
			json_object_set_new(m, "user",
			                    scoped(c->user_id, c->username, c->user_domain_id,
			                           c->user_domain_name));
		}
		json_object_set_new(m, "secret", json_string(c->secret));
		json_object_set_new(ident, "application_credential", m);
	} else {
		json_array_append_new(methods, json_string("password"));
		user = scoped(c->user_id, c->username, c->user_domain_id, c->user_domain_name);
		if (user)
			json_object_set_new(user, "password", json_string(c->secret));
		json_object_set_new(m, "user", user);
		json_object_set_new(ident, "password", m);
	}
	m = NULL;
	json_object_set_new(ident, "methods", methods);
	methods = NULL;
	json_object_set_new(auth, "identity", ident);
	ident = NULL;
	/* an application credential carries its own scope */
	if (!c->app_cred) {
		json_t *scope = json_object();
		json_object_set_new(scope, "project",
		                    scoped(c->project_id, c->project_name, c->project_domain_id,
		                           c->project_domain_name));
		json_object_set_new(auth, "scope", scope);
	}
	json_object_set_new(root, "auth", auth);
	auth = NULL;
	text = json_dumps(root, JSON_COMPACT);
	if (!text)
		goto out;
	buf_release(ret);
	buf_init_secret(ret, OS_TOKEN_MAX * 4);
	r = buf_puts(ret, text);
	explicit_bzero(text, strlen(text));
	free(text);
out:
	json_decref(m);
	json_decref(methods);
	json_decref(ident);
	json_decref(auth);
	json_decref(root); /* jansson does not wipe: the password's copies live as long as this */
	return r;
}

/*
 * The user data (cloud-init runs it once, at first boot, as root): fetch
 * the hand-off (once: a second fetch gets 404) into secret.env, write the
 * startup script (a quoted here-document: nothing expands) and run it
 * detached. curl or wget, whichever the image has; a fetch that fails is
 * retried for 5 minutes (the network may come up late).
 */
#define OS_EOF "RUNNERD_STARTUP_EOF"
#define H      "\"$RUNNERD_HOME\""
static const char os_user_data_head[] =
        "#!/bin/sh\n"
        "# runnerd: fetches this instance's secrets once, writes the startup script\n"
        "# below to $RUNNERD_HOME/startup.sh and starts it. RUNNERD_HOME is " OS_HOME "\n"
        "# (cloud-init does not set it; a stand-in that runs this on a host may).\n"
        "RUNNERD_HOME=${RUNNERD_HOME:-" OS_HOME "}\n"
        "export RUNNERD_HOME\n"
        "mkdir -p " H " && chmod 0755 " H " || exit 1\n";
static const char os_user_data_fetch[] =
        "url='%s'\n"
        "umask 077\n"
        "i=0\n"
        "while [ $i -lt 60 ]; do\n"
        "\tif command -v curl >/dev/null; then\n"
        "\t\tcurl -fsS --max-time 20 -o " H "/secret.env.new \"$url\" && break\n"
        "\telse\n"
        "\t\twget -q -T 20 -O " H "/secret.env.new \"$url\" && break\n"
        "\tfi\n"
        "\ti=$((i + 1)); sleep 5\n"
        "done\n"
        "mv -f " H "/secret.env.new " H "/secret.env || exit 1\n";
static const char os_user_data_script[] = "(umask 077 && cat >" H "/startup.sh.new) <<'%s'\n";
static const char os_user_data_tail[] =
        "%s\n"
        "chmod 0700 " H "/startup.sh.new &&\n"
        "\tmv -f " H "/startup.sh.new " H "/startup.sh || exit 1\n"
        "(trap '' HUP; exec sh " H "/startup.sh) </dev/null >" H "/startup.log 2>&1 &\n";

char *os_build_user_data(const char *script, const char *url)
{
	struct buf b = BUF_INIT(OS_USER_DATA_MAX);
	size_t n = strlen(script);
	char eof[48];

	/* the URL goes between single quotes: it must hold none (nor a newline) */
	if (url && (strchr(url, '\'') || strchr(url, '\n') || strchr(url, '\\')))
		return NULL;
	str_copy(eof, OS_EOF, sizeof(eof));
	for (unsigned i = 1; str_has_line(script, eof); i++)
		snprintf(eof, sizeof(eof), "%s_%u", OS_EOF, i);
	if (buf_puts(&b, os_user_data_head) < 0 ||
	    (url && buf_printf(&b, os_user_data_fetch, url) < 0) ||
	    buf_printf(&b, os_user_data_script, eof) < 0 || buf_append(&b, script, n) < 0 ||
	    (n > 0 && script[n - 1] != '\n' && buf_puts(&b, "\n") < 0) ||
	    buf_printf(&b, os_user_data_tail, eof) < 0) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

int os_base64(const void *data, size_t len, struct buf *ret)
{
	static const char tab[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	char q[4];

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t k = len - i;
		if (k > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (k > 2)
			v |= p[i + 2];
		q[0] = tab[(v >> 18) & 63];
		q[1] = tab[(v >> 12) & 63];
		q[2] = k > 1 ? tab[(v >> 6) & 63] : '=';
		q[3] = k > 2 ? tab[v & 63] : '=';
		if (buf_append(ret, q, 4) < 0)
			return -E2BIG;
	}
	if (!ret->data && buf_append(ret, "", 0) < 0)
		return -ENOMEM;
	return 0;
}

int os_build_server(const struct os_server_req *q, struct buf *ret)
{
	struct buf ud = BUF_INIT(OS_USER_DATA_MAX);
	json_t *root = json_object(), *s = json_object(), *nets = json_array(),
	       *net = json_object();
	json_t *meta = json_object(), *sgs = json_array(), *sg = json_object();
	char *text = NULL;
	int r = -ENOMEM;

	if (!root || !s || !nets || !net || !meta || !sgs || !sg)
		goto out;
	r = os_base64(q->user_data, strlen(q->user_data), &ud);
	if (r < 0)
		goto out;
	json_object_set_new(s, "name", json_string(q->name));
	json_object_set_new(s, "imageRef", json_string(q->image_id));
	json_object_set_new(s, "flavorRef", json_string(q->flavor_id));
	json_object_set_new(net, "uuid", json_string(q->network_id));
	json_array_append_new(nets, net);
	net = NULL;
	json_object_set_new(s, "networks", nets);
	nets = NULL;
	json_object_set_new(s, "user_data", json_string(buf_str(&ud)));
	json_object_set_new(meta, OS_KEY_MANAGER, json_string(q->manager));
	json_object_set_new(meta, OS_KEY_FLAVOR, json_string(q->flavor_name));
	json_object_set_new(meta, OS_KEY_RUNNER, json_string(q->name));
	json_object_set_new(s, "metadata", meta);
	meta = NULL;
	json_object_set_new(sg, "name", json_string(q->secgroup));
	json_array_append_new(sgs, sg);
	sg = NULL;
	json_object_set_new(s, "security_groups", sgs);
	sgs = NULL;
	if (q->key_name)
		json_object_set_new(s, "key_name", json_string(q->key_name));
	if (q->config_drive)
		json_object_set_new(s, "config_drive", json_true());
	json_object_set_new(root, "server", s);
	s = NULL;
	r = -ENOMEM;
	text = json_dumps(root, JSON_COMPACT);
	if (text) {
		buf_reset(ret);
		r = buf_puts(ret, text) < 0 ? -E2BIG : 0;
	}
out:
	free(text);
	buf_release(&ud);
	json_decref(sg);
	json_decref(sgs);
	json_decref(meta);
	json_decref(net);
	json_decref(nets);
	json_decref(s);
	json_decref(root);
	return r;
}
