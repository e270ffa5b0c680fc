/*
 * What the openstack backend makes of Keystone's, Nova's, Neutron's and
 * Glance's answers: pure functions of the bytes, no I/O. Every answer is
 * hostile until checked: sizes are bounded, types checked, text that goes
 * into a message made printable and cut, URLs that a request would follow
 * held to the endpoint they came from; an answer that breaks the shape is
 * refused whole (-EBADMSG), never half-used.
 */
#include "util/common.h"
#include "provider/openstack/os_internal.h"

const char *os_jstr(const json_t *o, const char *key)
{
	const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int os_json(const void *body, size_t len, json_t **ret)
{
	json_error_t je;
	json_t *j;

	if (!body || len == 0)
		return -EBADMSG;
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(j)) {
		json_decref(j);
		return -EBADMSG;
	}
	*ret = j;
	return 0;
}

/* in, printable and cut, into out. */
static void errtext(const char *in, size_t len, char *out, size_t cap)
{
	size_t n = 0, i = 0;

	for (; i < len && in[i] && n + 1 < cap && n < OS_ERRTEXT_MAX; i++)
		out[n++] =
		        (unsigned char)in[i] < 0x20 || (unsigned char)in[i] >= 0x7f ? ' ' : in[i];
	if (i < len && in[i] && n + 4 < cap) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

/* The message of an error body: Nova's, Neutron's or Keystone's JSON, else the text. */
static void error_message(const void *body, size_t len, char *out, size_t cap)
{
	json_t *j = NULL;
	const char *m = NULL;

	out[0] = '\0';
	if (os_json(body, len, &j) == 0) {
		const char *k;
		json_t *v;
		json_object_foreach(j, k, v)
		{
			m = os_jstr(v, "message");
			if (m)
				break;
		}
		if (!m)
			m = os_jstr(j, "message");
		if (m)
			errtext(m, strlen(m), out, cap);
		json_decref(j);
		if (m)
			return;
	}
	if (body)
		errtext(body, len, out, cap);
}

int os_parse_error(const char *what, long status, const void *body, size_t len, struct err *e)
{
	char msg[OS_ERRTEXT_MAX + 8];
	int r;

	error_message(body, len, msg, sizeof(msg));
	switch (status) {
	case 400:
		r = -EINVAL;
		break;
	case 401:
		r = -EACCES;
		break;
	case 403:
		r = strcasestr(msg, "quota") ? -EDQUOT : -EACCES;
		break;
	case 404:
		r = -ENOENT;
		break;
	case 409:
		r = -EEXIST;
		break;
	case 413:
		r = -EDQUOT;
		break;
	case 429:
	case 502:
	case 503:
	case 504:
		r = -EAGAIN;
		break;
	default:
		r = -EIO;
	}
	return err_set(e, r, "%s: %s%s%ld%s%s", what, r == -EDQUOT ? "quota exceeded: " : "",
	               "HTTP ", status, msg[0] ? ": " : "", msg);
}

enum cloud_state os_state(const char *status)
{
	static const struct {
		const char *s;
		enum cloud_state st;
	} map[] = {
	        {"ACTIVE", CLOUD_ACTIVE},
	        {"BUILD", CLOUD_CREATED},
	        {"ERROR", CLOUD_ERROR},
	        {"SHUTOFF", CLOUD_STOPPED},
	        {"STOPPED", CLOUD_STOPPED},
	        {"SUSPENDED", CLOUD_STOPPED},
	        {"PAUSED", CLOUD_STOPPED},
	        {"SHELVED", CLOUD_STOPPED},
	        {"SHELVED_OFFLOADED", CLOUD_STOPPED},
	        {"DELETED", CLOUD_DELETED},
	        {"SOFT_DELETED", CLOUD_DELETED},
	};

	for (size_t i = 0; status && i < ARRAY_SIZE(map); i++)
		if (strcmp(status, map[i].s) == 0)
			return map[i].st;
	return CLOUD_UNKNOWN;
}

/* An http(s) URL of printable characters, no spaces, that fits. */
static bool url_ok(const char *u, size_t room)
{
	size_t n;

	if (!u || !(str_has_prefix(u, "http://") || str_has_prefix(u, "https://")))
		return false;
	n = strlen(u);
	if (n + 8 >= room) /* room for "/v2.0" */
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
			return false;
	return true;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const char *const os_service_types[OS_SERVICES] = {"compute", "network", "image"};

static int catalog_endpoint(const json_t *catalog, enum os_service svc, const char *interface,
                            const char *region, char *out, struct err *e)
{
	size_t i, j;
	json_t *s, *ep;

	json_array_foreach(catalog, i, s)
	{
		const json_t *eps = json_object_get(s, "endpoints");
		if (!str_eq(os_jstr(s, "type"), os_service_types[svc]) || !json_is_array(eps))
			continue;
		json_array_foreach(eps, j, ep)
		{
			const char *url = os_jstr(ep, "url");
			size_t n;
			if (!str_eq(os_jstr(ep, "interface"), interface))
				continue;
			if (*region && !str_eq(os_jstr(ep, "region_id"), region) &&
			    !str_eq(os_jstr(ep, "region"), region))
				continue;
			if (!url_ok(url, OS_URL_MAX))
				return err_set(e, -EBADMSG,
				               "keystone: the %s endpoint is not a URL",
				               os_service_types[svc]);
			n = str_copy(out, url, OS_URL_MAX);
			while (n > 8 && out[n - 1] == '/')
				out[--n] = '\0';
			if (svc == OS_NETWORK && !ends_with(out, "/v2.0"))
				str_copy(out + n, "/v2.0", OS_URL_MAX - n);
			if (svc == OS_IMAGE && !ends_with(out, "/v2"))
				str_copy(out + n, "/v2", OS_URL_MAX - n);
			return 0;
		}
	}
	return err_set(e, -ENOENT, "keystone: the catalog has no %s endpoint for interface %s%s%s",
	               os_service_types[svc], interface, *region ? " in region " : "", region);
}

int os_parse_token(const void *body, size_t len, const char *interface, const char *region,
                   int64_t *ret_expires, char ret_ep[OS_SERVICES][OS_URL_MAX], struct err *e)
{
	char ep[OS_SERVICES][OS_URL_MAX];
	json_t *j = NULL, *tok, *catalog;
	const char *exp;
	int64_t t;
	int r;

	if (os_json(body, len, &j) < 0)
		return err_set(e, -EBADMSG, "keystone: the token answer is not JSON");
	tok = json_object_get(j, "token");
	exp = os_jstr(tok, "expires_at");
	catalog = json_object_get(tok, "catalog");
	if (!exp || clock_parse_rfc3339(exp, &t) < 0 || t <= 0) {
		r = err_set(e, -EBADMSG, "keystone: the token has no expiry");
		goto out;
	}
	if (!json_is_array(catalog)) {
		r = err_set(e, -EBADMSG, "keystone: the token has no catalog (is it scoped?)");
		goto out;
	}
	for (int s = 0; s < OS_SERVICES; s++) {
		r = catalog_endpoint(catalog, (enum os_service)s, interface, region, ep[s], e);
		if (r < 0)
			goto out;
	}
	*ret_expires = t * 1000;
	memcpy(ret_ep, ep, sizeof(ep));
	r = 0;
out:
	json_decref(j);
	return r;
}

int os_parse_server(const json_t *o, struct os_server *ret)
{
	struct os_server s = {0};
	const char *id = os_jstr(o, "id"), *name = os_jstr(o, "name");
	const char *created = os_jstr(o, "created");
	const json_t *st = json_object_get(o, "status"), *meta = json_object_get(o, "metadata");
	const char *owner, *flavor;
	int64_t t;

	if (!json_is_object(o) || !id || !*id || strlen(id) >= sizeof(s.in.provider_id) || !name ||
	    strlen(name) >= sizeof(s.in.name) || (st && !json_is_string(st)) ||
	    (meta && !json_is_object(meta) && !json_is_null(meta)))
		return -EBADMSG;
	str_copy(s.in.name, name, sizeof(s.in.name));
	str_copy(s.in.provider_id, id, sizeof(s.in.provider_id));
	s.in.state = os_state(json_string_value(st));
	owner = os_jstr(meta, OS_KEY_MANAGER);
	if (owner && strlen(owner) < sizeof(s.owner))
		str_copy(s.owner, owner, sizeof(s.owner));
	flavor = os_jstr(meta, OS_KEY_FLAVOR);
	if (flavor && name_is_valid(flavor, FLAVOR_NAME_MAX - 1))
		str_copy(s.in.flavor, flavor, sizeof(s.in.flavor));
	if (created && clock_parse_rfc3339(created, &t) == 0 && t > 0)
		s.in.created_at = (time_t)t;
	*ret = s;
	return 0;
}

/* Is next on base's scheme, host and port (and under its path)? */
static bool link_on(const char *next, const char *base)
{
	size_t n = strlen(base);
	return strncmp(next, base, n) == 0 && (next[n] == '/' || next[n] == '?');
}

int os_parse_servers(const void *body, size_t len, const char *manager, const char *base,
                     bool keep_dups, struct instance_list *ret, char next[OS_URL_MAX],
                     struct err *e)
{
	struct instance_list l = {0};
	json_t *j = NULL, *servers, *links, *v;
	char nx[OS_URL_MAX] = "";
	size_t i;
	int r = -EBADMSG;

	if (os_json(body, len, &j) < 0)
		return err_set(e, -EBADMSG, "nova: a server listing that is not JSON");
	servers = json_object_get(j, "servers");
	links = json_object_get(j, "servers_links");
	if (!json_is_array(servers) || (links && !json_is_array(links))) {
		err_set(e, r, "nova: a server listing without servers");
		goto out;
	}
	json_array_foreach(links, i, v)
	{
		const char *href = os_jstr(v, "href");
		if (!str_eq(os_jstr(v, "rel"), "next"))
			continue;
		if (!url_ok(href, OS_URL_MAX) || !link_on(href, base)) {
			err_set(e, r, "nova: a next page that is not on the compute endpoint");
			goto out;
		}
		str_copy(nx, href, sizeof(nx));
	}
	json_array_foreach(servers, i, v)
	{
		struct os_server s;
		size_t k;

		if (os_parse_server(v, &s) < 0) {
			err_set(e, r, "nova: entry %zu of a server listing is not a server", i);
			goto out;
		}
		if (!name_is_owned(manager, s.in.name) || strcmp(s.owner, manager) != 0)
			continue;
		for (k = 0; !keep_dups && k < ret->n + l.n; k++) {
			struct instance *o = k < ret->n ? &ret->v[k] : &l.v[k - ret->n];
			if (strcmp(o->name, s.in.name) != 0)
				continue;
			if (s.in.created_at > o->created_at ||
			    (s.in.created_at == o->created_at &&
			     strcmp(s.in.provider_id, o->provider_id) > 0))
				*o = s.in; /* the newest stands */
			break;
		}
		if (!keep_dups && k < ret->n + l.n)
			continue;
		if (instance_list_add(&l, &s.in) < 0) {
			r = err_set(e, -ENOMEM, "nova: out of memory");
			goto out;
		}
	}
	for (i = 0; i < l.n; i++)
		if (instance_list_add(ret, &l.v[i]) < 0) {
			ret->n -= i; /* as it was */
			r = err_set(e, -ENOMEM, "nova: out of memory");
			goto out;
		}
	str_copy(next, nx, OS_URL_MAX);
	r = 0;
out:
	instance_list_release(&l);
	json_decref(j);
	return r;
}

int os_parse_pick(const void *body, size_t len, const char *coll, const char *ref,
                  char ret_id[OS_ID_MAX], struct err *e)
{
	json_t *j = NULL, *arr, *v;
	const char *by_id = NULL, *by_name = NULL;
	size_t i, named = 0;
	int r;

	if (os_json(body, len, &j) < 0 || !json_is_array(arr = json_object_get(j, coll))) {
		json_decref(j);
		return err_set(e, -EBADMSG, "a listing of %s that is not one", coll);
	}
	json_array_foreach(arr, i, v)
	{
		const char *id = os_jstr(v, "id"), *name = os_jstr(v, "name");
		if (!id || !*id || strlen(id) >= OS_ID_MAX)
			continue;
		if (strcmp(id, ref) == 0)
			by_id = id;
		else if (name && strcmp(name, ref) == 0) {
			by_name = id;
			named++;
		}
	}
	if (by_id) {
		str_copy(ret_id, by_id, OS_ID_MAX);
		r = 0;
	} else if (named == 1) {
		str_copy(ret_id, by_name, OS_ID_MAX);
		r = 0;
	} else if (named > 1) {
		r = err_set(e, -ENOTUNIQ, "%zu %s are named '%.64s': give its id", named, coll,
		            ref);
	} else {
		r = err_set(e, -ENOENT, "no %s named '%.64s'", coll, ref);
	}
	json_decref(j);
	return r;
}

int os_parse_id(const void *body, size_t len, const char *key, char ret_id[OS_ID_MAX],
                struct err *e)
{
	json_t *j = NULL;
	const char *id;
	int r = 0;

	if (os_json(body, len, &j) < 0)
		return err_set(e, -EBADMSG, "an answer without %s", key);
	id = os_jstr(json_object_get(j, key), "id");
	if (!id || !*id || strlen(id) >= OS_ID_MAX)
		r = err_set(e, -EBADMSG, "an answer without the id of its %s", key);
	else
		str_copy(ret_id, id, OS_ID_MAX);
	json_decref(j);
	return r;
}

int os_parse_groups(const void *body, size_t len, const char *manager, struct os_ref *ret,
                    size_t cap, size_t *ret_n, struct err *e)
{
	json_t *j = NULL, *arr, *v;
	char desc[MANAGER_NAME_MAX + 64];
	size_t i, n = 0, m = strlen(manager);

	if (os_json(body, len, &j) < 0 ||
	    !json_is_array(arr = json_object_get(j, "security_groups"))) {
		json_decref(j);
		return err_set(e, -EBADMSG, "a listing of security_groups that is not one");
	}
	os_secgroup_description(manager, desc, sizeof(desc));
	json_array_foreach(arr, i, v)
	{
		const char *name = os_jstr(v, "name"), *id = os_jstr(v, "id");
		const char *d = os_jstr(v, "description");
		if (n >= cap || !name || !id || !d || strncmp(name, manager, m) != 0 ||
		    name[m] != '-' || strcmp(d, desc) != 0 || strlen(name) >= sizeof(ret[n].name) ||
		    strlen(id) >= OS_ID_MAX)
			continue;
		memset(&ret[n], 0, sizeof(ret[n]));
		str_copy(ret[n].name, name, sizeof(ret[n].name));
		str_copy(ret[n].id, id, OS_ID_MAX);
		n++;
	}
	*ret_n = n;
	json_decref(j);
	return 0;
}

int os_parse_owned(const void *body, size_t len, const char *coll, const char *nest,
                   const char *manager, struct os_ref *ret, size_t cap, size_t *ret_n,
                   struct err *e)
{
	json_t *j = NULL, *arr, *v;
	size_t i, n = 0;

	if (os_json(body, len, &j) < 0 || !json_is_array(arr = json_object_get(j, coll))) {
		json_decref(j);
		return err_set(e, -EBADMSG, "a listing of %s that is not one", coll);
	}
	json_array_foreach(arr, i, v)
	{
		const json_t *o = *nest ? json_object_get(v, nest) : v;
		const char *name = os_jstr(o, "name"), *id = os_jstr(o, "id");
		if (n >= cap || !name || !name_is_owned(manager, name))
			continue;
		memset(&ret[n], 0, sizeof(ret[n]));
		str_copy(ret[n].name, name, sizeof(ret[n].name));
		if (id && strlen(id) < OS_ID_MAX)
			str_copy(ret[n].id, id, OS_ID_MAX);
		n++;
	}
	*ret_n = n;
	json_decref(j);
	return 0;
}
