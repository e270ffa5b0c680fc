/*
 * The cloud's resources a server needs and what runnerd leaves beside
 * servers: the image, flavor and network resolved from names (or ids) once
 * and cached; the security group made when missing (only one whose name
 * has the manager's prefix); the key pair and ports of an instance removed
 * with it; and gc() of key pairs and ports named as an instance of this
 * manager that has no server, and of the security groups runnerd made for
 * this manager (its prefix and description) that no openstack provider of
 * the config uses any more. Nothing without the manager's prefix is ever
 * deleted.
 */
#include "util/common.h"
#include "provider/openstack/os_internal.h"

/* GET path (escaped), the answer's body into *ret. */
static int get(struct os *o, const struct provider_call *c, enum os_service svc, const char *path,
               const char *what, struct httpc_response *ret, struct err *e)
{
	const struct os_req q = {.svc = svc, .path = path, .what = what, .max_body = OS_PAGE_MAX};
	return os_call(o, c, &q, ret, e);
}

/* The id of ref in the listing at path?name=ref, or ref itself when it is an id there. */
static int pick(struct os *o, const struct provider_call *c, enum os_service svc, const char *coll,
                const char *list_path, bool by_query, const char *ref, char id[OS_ID_MAX],
                struct err *e)
{
	struct buf path = BUF_INIT(OS_URL_MAX);
	struct httpc_response resp = {0};
	int r;

	if (buf_puts(&path, list_path) < 0 ||
	    (by_query && (buf_puts(&path, "?name=") < 0 || os_escape(&path, ref) < 0))) {
		buf_release(&path);
		return err_set(e, -ENAMETOOLONG, "%s: a name too long", coll);
	}
	r = get(o, c, svc, buf_str(&path), coll, &resp, e);
	if (r == 0)
		r = os_parse_pick(resp.body.data, resp.body.len, coll, ref, id, e);
	httpc_response_release(&resp);
	/* not by name: an id the listing did not show (another page, a private one) */
	if (r == -ENOENT) {
		struct err e2 = {0};
		buf_reset(&path);
		if (buf_printf(&path, "%s/", list_path) == 0 && os_escape(&path, ref) == 0 &&
		    get(o, c, svc, buf_str(&path), coll, &resp, &e2) == 0) {
			char key[32];
			snprintf(key, sizeof(key), "%.*s", (int)strlen(coll) - 1, coll);
			if (os_parse_id(resp.body.data, resp.body.len, key, id, &e2) == 0)
				r = 0;
		}
		httpc_response_release(&resp);
	}
	buf_release(&path);
	return r;
}

/* ref's id from the cache, or resolved and cached (o->lock is not held across requests). */
static int cached(struct os *o, const struct provider_call *c, struct os_ref *slot,
                  enum os_service svc, const char *coll, const char *list_path, bool by_query,
                  const char *ref, char id[OS_ID_MAX], struct err *e)
{
	int r;

	pthread_mutex_lock(&o->lock);
	if (slot->id[0] && strcmp(slot->name, ref) == 0) {
		str_copy(id, slot->id, OS_ID_MAX);
		pthread_mutex_unlock(&o->lock);
		return 0;
	}
	pthread_mutex_unlock(&o->lock);
	r = pick(o, c, svc, coll, list_path, by_query, ref, id, e);
	if (r < 0)
		return r;
	pthread_mutex_lock(&o->lock);
	str_copy(slot->name, ref, sizeof(slot->name));
	str_copy(slot->id, id, sizeof(slot->id));
	pthread_mutex_unlock(&o->lock);
	return 0;
}

int os_resolve(struct os *o, const struct provider_call *c, const char *image,
               char image_id[OS_ID_MAX], char flavor_id[OS_ID_MAX], char network_id[OS_ID_MAX],
               struct err *e)
{
	struct os_ref *slot = NULL;
	int r;

	/* Nova lists every flavor in one page (no name filter); Neutron and Glance filter */
	r = cached(o, c, &o->flavor_ref, OS_COMPUTE, "flavors", "/flavors", false, o->flavor,
	           flavor_id, e);
	if (r == 0)
		r = cached(o, c, &o->network_ref, OS_NETWORK, "networks", "/networks", true,
		           o->network, network_id, e);
	if (r < 0)
		return r;
	pthread_mutex_lock(&o->lock);
	for (size_t i = 0; i < o->n_images && !slot; i++)
		if (strcmp(o->images[i].name, image) == 0)
			slot = &o->images[i];
	if (!slot)
		slot = &o->images[o->n_images < ARRAY_SIZE(o->images) ? o->n_images++
		                                                      : ARRAY_SIZE(o->images) - 1];
	if (strcmp(slot->name, image) != 0)
		memset(slot, 0, sizeof(*slot));
	pthread_mutex_unlock(&o->lock);
	return cached(o, c, slot, OS_IMAGE, "images", "/images", true, image, image_id, e);
}

static int post(struct os *o, const struct provider_call *c, enum os_service svc, const char *path,
                const char *body, const char *what, struct httpc_response *ret, struct err *e)
{
	const struct os_req q = {
	        .method = "POST", .svc = svc, .path = path, .body = body, .what = what};
	return os_call(o, c, &q, ret, e);
}

/* ICMP and tcp/22 in; Neutron gives a new group its egress rules (all, v4 and v6). */
static int add_rules(struct os *o, const struct provider_call *c, const char *sg_id, struct err *e)
{
	static const char *const rules[] = {
	        "\"protocol\":\"icmp\"",
	        "\"protocol\":\"tcp\",\"port_range_min\":22,\"port_range_max\":22",
	};

	for (size_t i = 0; i < ARRAY_SIZE(rules); i++) {
		struct httpc_response resp = {0};
		struct buf body = BUF_INIT(1024);
		int r;

		/* the id came from Neutron: quoted as JSON, never pasted */
		if (buf_puts(&body, "{\"security_group_rule\":{\"security_group_id\":") < 0 ||
		    buf_json_string(&body, sg_id) < 0 ||
		    buf_printf(&body, ",\"direction\":\"ingress\",\"ethertype\":\"IPv4\",%s}}",
		               rules[i]) < 0) {
			buf_release(&body);
			return err_set(e, -ENOMEM, "neutron: out of memory");
		}
		r = post(o, c, OS_NETWORK, "/security-group-rules", buf_str(&body),
		         "a security group rule", &resp, e);
		httpc_response_release(&resp);
		buf_release(&body);
		if (r < 0 && r != -EEXIST)
			return r;
	}
	return 0;
}

static int secgroup_ensure(struct os *o, const struct provider_call *c, char id[OS_ID_MAX],
                           struct err *e)
{
	struct httpc_response resp = {0};
	struct buf body = BUF_INIT(4096);
	bool ours =
	        str_has_prefix(o->secgroup, o->manager) && o->secgroup[strlen(o->manager)] == '-';
	int r;

	pthread_mutex_lock(&o->lock);
	r = o->secgroup_ref.id[0] ? 1 : 0;
	if (r)
		str_copy(id, o->secgroup_ref.id, OS_ID_MAX);
	pthread_mutex_unlock(&o->lock);
	if (r)
		return 0;
	r = pick(o, c, OS_NETWORK, "security_groups", "/security-groups", true, o->secgroup, id, e);
	if (r == -ENOENT && ours) {
		char desc[MANAGER_NAME_MAX + 64];
		os_secgroup_description(o->manager, desc, sizeof(desc));
		if (buf_puts(&body, "{\"security_group\":{\"name\":") < 0 ||
		    buf_json_string(&body, o->secgroup) < 0 ||
		    buf_puts(&body, ",\"description\":") < 0 || buf_json_string(&body, desc) < 0 ||
		    buf_puts(&body, "}}") < 0) {
			buf_release(&body);
			return err_set(e, -ENOMEM, "neutron: out of memory");
		}
		r = post(o, c, OS_NETWORK, "/security-groups", buf_str(&body), "a security group",
		         &resp, e);
		if (r == 0)
			r = os_parse_id(resp.body.data, resp.body.len, "security_group", id, e);
		httpc_response_release(&resp);
		if (r == 0)
			r = add_rules(o, c, id, e);
	} else if (r == -ENOENT) {
		err_prefix(e, "security_group %s (runnerd makes only one named %s-...)",
		           o->secgroup, o->manager);
	}
	buf_release(&body);
	if (r < 0)
		return r;
	pthread_mutex_lock(&o->lock);
	str_copy(o->secgroup_ref.name, o->secgroup, sizeof(o->secgroup_ref.name));
	str_copy(o->secgroup_ref.id, id, sizeof(o->secgroup_ref.id));
	pthread_mutex_unlock(&o->lock);
	return 0;
}

int os_secgroup_ensure(struct os *o, const struct provider_call *c, char id[OS_ID_MAX],
                       struct err *e)
{
	int r;

	pthread_mutex_lock(&o->sg_lock);
	r = secgroup_ensure(o, c, id, e);
	pthread_mutex_unlock(&o->sg_lock);
	return r;
}

static int del(struct os *o, const struct provider_call *c, enum os_service svc,
               const char *coll_path, const char *ref, const char *what, struct err *e)
{
	struct buf path = BUF_INIT(OS_URL_MAX);
	struct httpc_response resp = {0};
	int r;

	if (buf_printf(&path, "%s/", coll_path) < 0 || os_escape(&path, ref) < 0) {
		buf_release(&path);
		return err_set(e, -ENAMETOOLONG, "%s: too long", what);
	}
	const struct os_req q = {
	        .method = "DELETE", .svc = svc, .path = buf_str(&path), .what = what};
	r = os_call(o, c, &q, &resp, e);
	httpc_response_release(&resp);
	buf_release(&path);
	return r == -ENOENT ? 0 : r;
}

/* The ports named name (runnerd's: none other has such a name). */
static int remove_ports(struct os *o, const struct provider_call *c, const char *name,
                        struct err *e)
{
	struct buf path = BUF_INIT(OS_URL_MAX);
	struct httpc_response resp = {0};
	struct os_ref ports[64];
	size_t n = 0;
	int r;

	if (buf_puts(&path, "/ports?name=") < 0 || os_escape(&path, name) < 0) {
		buf_release(&path);
		return err_set(e, -ENAMETOOLONG, "neutron: a name too long");
	}
	r = get(o, c, OS_NETWORK, buf_str(&path), "ports", &resp, e);
	buf_release(&path);
	if (r == 0)
		r = os_parse_owned(resp.body.data, resp.body.len, "ports", "", o->manager, ports,
		                   ARRAY_SIZE(ports), &n, e);
	httpc_response_release(&resp);
	for (size_t i = 0; r == 0 && i < n; i++)
		if (strcmp(ports[i].name, name) == 0 && ports[i].id[0])
			r = del(o, c, OS_NETWORK, "/ports", ports[i].id, "a port", e);
	return r;
}

int os_remove_extras(struct os *o, const struct provider_call *c, const char *name, struct err *e)
{
	int r = 0;

	if (o->ssh_pubkey)
		r = del(o, c, OS_COMPUTE, "/os-keypairs", name, "a key pair", e);
	if (r == 0)
		r = remove_ports(o, c, name, e);
	return r;
}

/* Is name a server of the listing? */
static bool listed(const struct instance_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return true;
	return false;
}

/* Is name the security group an openstack provider among peers uses? */
static bool group_in_use(const struct provider *p, const char *name)
{
	char used[256];

	for (size_t i = 0; i < p->n_peers; i++) {
		const struct config_provider *pc = &p->peers[i];
		if (!pc->type || strcmp(pc->type, "openstack") != 0)
			continue;
		os_secgroup_name(pc->openstack.security_group, p->manager, used, sizeof(used));
		if (strcmp(used, name) == 0)
			return true;
	}
	return false;
}

/*
 * The security groups runnerd made for this manager that no provider of
 * its config uses any more (one a port still uses: Neutron says 409, it
 * stays for a later pass). Only when the caller said what the config is.
 */
static int gc_groups(struct provider *p, const struct provider_call *c, struct os_ref *found,
                     size_t cap, struct err *e)
{
	struct os *o = p->priv;
	struct httpc_response resp = {0};
	size_t n = 0;
	int r;

	if (!p->peers)
		return 0;
	r = get(o, c, OS_NETWORK, "/security-groups", "security groups", &resp, e);
	if (r == 0)
		r = os_parse_groups(resp.body.data, resp.body.len, o->manager, found, cap, &n, e);
	httpc_response_release(&resp);
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (strcmp(found[i].name, o->secgroup) == 0 || group_in_use(p, found[i].name))
			continue;
		r = del(o, c, OS_NETWORK, "/security-groups", found[i].id, "a security group", e);
		if (r == -EEXIST) { /* in use by a port */
			err_clear(e);
			r = 0;
		}
	}
	return r;
}

int os_gc(struct provider *p, const struct provider_call *c, struct err *e)
{
	struct os *o = p->priv;
	struct instance_list servers = {0};
	struct httpc_response resp = {0};
	struct os_ref *found = calloc(256, sizeof(*found));
	size_t n = 0;
	int r, first = 0;

	if (!found)
		return err_set(e, -ENOMEM, "openstack: out of memory");
	/* the servers first: what has one is no leftover (a partial listing: do nothing) */
	r = os_list_servers(o, c, "", true, &servers, e);
	if (r < 0)
		goto out;
	if (o->ssh_pubkey) {
		r = get(o, c, OS_COMPUTE, "/os-keypairs", "key pairs", &resp, e);
		if (r == 0)
			r = os_parse_owned(resp.body.data, resp.body.len, "keypairs", "keypair",
			                   o->manager, found, 256, &n, e);
		httpc_response_release(&resp);
		for (size_t i = 0; r == 0 && i < n; i++)
			if (!listed(&servers, found[i].name))
				r = del(o, c, OS_COMPUTE, "/os-keypairs", found[i].name,
				        "a key pair", e);
		first = r;
	}
	r = get(o, c, OS_NETWORK, "/ports", "ports", &resp, e);
	if (r == 0)
		r = os_parse_owned(resp.body.data, resp.body.len, "ports", "", o->manager, found,
		                   256, &n, e);
	httpc_response_release(&resp);
	for (size_t i = 0; r == 0 && i < n; i++)
		if (!listed(&servers, found[i].name) && found[i].id[0])
			r = del(o, c, OS_NETWORK, "/ports", found[i].id, "a port", e);
	if (first == 0)
		first = r;
	/* after the ports: a leftover port may be what held a group */
	r = gc_groups(p, c, found, 256, e);
	if (first < 0)
		r = first;
out:
	instance_list_release(&servers);
	free(found);
	return r;
}
