/*
 * policy(): runner.denylist as one network ACL of this manager's
 * (runnerd-<manager>-deny), attached to the configured network next to
 * any other ACL there, and kept in sync on every reload; create() makes
 * sure it is in place first. It must never touch an ACL whose name is not
 * ours, never drop another ACL from a network, and never change a
 * network's default ACL actions unless it set them itself.
 */
#include "util/common.h"
#include "provider/lxd/lxd_internal.h"

#include <arpa/inet.h>

/* ---- the denylist ACL ----------------------------------------------- */

int lxd_deny_acl_name(const char *manager, char *out, size_t cap)
{
	if (!manager || !*manager)
		return -EINVAL;
	if ((size_t)snprintf(out, cap, "runnerd-%s-deny", manager) >= cap)
		return -ENAMETOOLONG;
	return 0;
}

/* "10.1.2.3/8" -> "10.0.0.0/8", "fd00::1" -> "fd00::1/128". */
static int cidr_canon(const char *in, char *out, size_t cap)
{
	unsigned char a[16];
	char ip[INET6_ADDRSTRLEN + 1], txt[INET6_ADDRSTRLEN];
	const char *slash = strchr(in, '/');
	size_t n = slash ? (size_t)(slash - in) : strlen(in);
	int64_t prefix;
	int fam, bits;

	if (n == 0 || n >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, in, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, a) == 1)
		fam = AF_INET, bits = 32;
	else if (inet_pton(AF_INET6, ip, a) == 1)
		fam = AF_INET6, bits = 128;
	else
		return -EINVAL;
	prefix = bits;
	if (slash && parse_int64(slash + 1, 0, bits, &prefix) < 0)
		return -EINVAL;
	for (int i = (int)prefix; i < bits; i++)
		a[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
	if (!inet_ntop(fam, a, txt, sizeof(txt)))
		return -EINVAL;
	if ((size_t)snprintf(out, cap, "%s/%" PRId64, txt, prefix) >= cap)
		return -ENAMETOOLONG;
	return 0;
}

void lxd_strings_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Canonical, deduplicated copy of cidrs. */
static int deny_copy(const struct strv *cidrs, char ***ret, size_t *ret_n, struct err *e)
{
	size_t n = cidrs ? cidrs->n : 0, k = 0;
	char **v = calloc(n + 1, sizeof(*v));

	if (!v)
		return err_set(e, -ENOMEM, "lxd: out of memory");
	for (size_t i = 0; i < n; i++) {
		char c[INET6_ADDRSTRLEN + 8];
		bool dup = false;
		if (cidr_canon(cidrs->v[i], c, sizeof(c)) < 0) {
			lxd_strings_free(v, k);
			return err_set(e, -EINVAL,
			               "lxd: runner.denylist: %s: not an address or CIDR",
			               cidrs->v[i]);
		}
		for (size_t j = 0; j < k; j++)
			dup = dup || strcmp(v[j], c) == 0;
		if (dup)
			continue;
		v[k] = strdup(c);
		if (!v[k]) {
			lxd_strings_free(v, k);
			return err_set(e, -ENOMEM, "lxd: out of memory");
		}
		k++;
	}
	*ret = v;
	*ret_n = k;
	return 0;
}

/*
 * PUT body (taken over, NULL: out of memory) to path, If-Match etag when
 * LXD gave one: -EAGAIN (412) when someone changed the object meanwhile.
 */
static int put_if_match(struct lxd *l, const struct provider_call *c, const char *path,
                        json_t *body, const char *etag, struct err *e)
{
	char ifmatch[200];
	const char *hdrs[] = {ifmatch, NULL};
	struct lxd_answer a = {0};
	int r;

	if (!body)
		return err_set(e, -ENOMEM, "lxd: out of memory");
	snprintf(ifmatch, sizeof(ifmatch), "If-Match: %s", etag);
	r = lxd_call(l, c,
	             &(struct lxd_req){.method = "PUT",
	                               .path = path,
	                               .json = body,
	                               .headers = etag[0] ? hdrs : NULL},
	             &a, e);
	lxd_answer_release(&a);
	json_decref(body);
	return r;
}

/*
 * Attach (or detach) acl to network net in security.acls, keeping every
 * other ACL; see lxd.h for the default actions. Optimistic: If-Match on the
 * network's ETag, retried when someone else changed it meanwhile.
 */
static int network_acl_set(struct lxd *l, const struct provider_call *c, const char *net,
                           const char *acl, bool attach, struct err *e)
{
	static const char *const defaults[] = {"security.acls.default.egress.action",
	                                       "security.acls.default.ingress.action"};
	struct buf path = BUF_INIT(512), list = BUF_INIT(64 * 1024);
	char marker[MANAGER_NAME_MAX + 48];
	int r = 0;

	snprintf(marker, sizeof(marker), "user.runnerd.%s.acl-defaults", l->manager);
	if (lxd_path_of(&path, "networks", net, NULL) < 0)
		return err_set(e, -ENAMETOOLONG, "lxd: network name too long");
	for (int t = 0; t < LXD_ETAG_TRIES; t++) {
		struct lxd_answer a = {0};
		json_t *config, *nc = NULL, *body;
		const char *acls, *desc;
		bool has, changed = false;

		r = lxd_call(l, c, &(struct lxd_req){.path = buf_str(&path)}, &a, e);
		if (r < 0)
			break;
		config = json_object_get(a.meta, "config");
		desc = lxd_jstr(a.meta, "description");
		acls = lxd_jstr(config, "security.acls");
		if (!json_is_object(config)) {
			lxd_answer_release(&a);
			r = err_set(e, -EBADMSG, "lxd: network %s: unparsable answer", net);
			break;
		}
		has = acls && lxd_list_has(acls, acl);
		nc = json_deep_copy(config);
		if (!nc || lxd_list_edit(acls, acl, attach, &list) < 0) {
			json_decref(nc);
			lxd_answer_release(&a);
			r = err_set(e, -ENOMEM, "lxd: out of memory");
			break;
		}
		if (attach && !has) {
			bool first = !acls || !*acls, set = false;
			json_object_set_new(nc, "security.acls", json_string(buf_str(&list)));
			for (size_t i = 0; first && i < ARRAY_SIZE(defaults); i++)
				if (!lxd_jstr(config, defaults[i])) {
					json_object_set_new(nc, defaults[i], json_string("allow"));
					set = true;
				}
			if (set)
				json_object_set_new(nc, marker, json_string("true"));
			changed = true;
		} else if (!attach && has) {
			if (list.len) {
				json_object_set_new(nc, "security.acls",
				                    json_string(buf_str(&list)));
			} else {
				/* The last ACL: the defaults go too, if we set them. */
				json_object_del(nc, "security.acls");
				if (lxd_jstr(config, marker))
					for (size_t i = 0; i < ARRAY_SIZE(defaults); i++)
						json_object_del(nc, defaults[i]);
				json_object_del(nc, marker);
			}
			changed = true;
		}
		if (!changed) {
			json_decref(nc);
			lxd_answer_release(&a);
			r = 0;
			break;
		}
		body = json_pack("{s:o, s:s}", "config", nc, "description", desc ? desc : "");
		r = put_if_match(l, c, buf_str(&path), body, a.etag, e);
		lxd_answer_release(&a);
		if (r != -EAGAIN)
			break;
	}
	if (r < 0 && e)
		err_prefix(e, "%s ACL %s %s network %s", attach ? "attach" : "detach", acl,
		           attach ? "to" : "from", net);
	buf_release(&path);
	buf_release(&list);
	return r;
}

/* Call with deny_lock held. */
static int deny_sync_locked(struct lxd *l, const struct provider_call *c, struct err *e)
{
	struct buf path = BUF_INIT(512);
	char name[128], nets[16][LXD_NET_NAME_MAX];
	struct lxd_answer a = {0};
	json_t *egress = NULL, *body = NULL;
	size_t n_nets = 0;
	bool exists;
	int r;

	if (lxd_deny_acl_name(l->manager, name, sizeof(name)) < 0)
		return err_set(e, -EINVAL, "lxd: no manager name for the denylist ACL");
	if (lxd_path_of(&path, "network-acls", name, NULL) < 0)
		return err_set(e, -ENAMETOOLONG, "lxd: ACL name too long");
	r = lxd_call(l, c, &(struct lxd_req){.path = buf_str(&path)}, &a, e);
	if (r < 0 && r != -ENOENT)
		goto out;
	exists = r == 0;
	err_clear(e);
	if (exists)
		lxd_parse_used_by(json_object_get(a.meta, "used_by"), nets, ARRAY_SIZE(nets),
		                  &n_nets);

	if (l->n_deny == 0) {
		r = 0;
		if (!exists)
			goto done;
		for (size_t i = 0; i < n_nets && r == 0; i++)
			r = network_acl_set(l, c, nets[i], name, false, e);
		if (r == 0)
			r = network_acl_set(l, c, l->network, name, false, e);
		if (r < 0)
			goto out;
		struct lxd_answer a2 = {0};
		r = lxd_call(l, c, &(struct lxd_req){.method = "DELETE", .path = buf_str(&path)},
		             &a2, e);
		lxd_answer_release(&a2);
		if (r == -ENOENT)
			r = 0;
		if (r < 0)
			goto out;
		goto done;
	}

	egress = json_array();
	for (size_t i = 0; egress && i < l->n_deny; i++)
		if (json_array_append_new(egress, json_pack("{s:s, s:s, s:s}", "action", "reject",
		                                            "destination", l->deny[i], "state",
		                                            "enabled")) < 0) {
			json_decref(egress);
			egress = NULL;
		}
	if (!egress) {
		r = err_set(e, -ENOMEM, "lxd: out of memory");
		goto out;
	}
	if (!exists) {
		body = json_pack("{s:s, s:s, s:O, s:[], s:{}}", "name", name, "description",
		                 "runnerd: runner.denylist of manager (do not edit)", "egress",
		                 egress, "ingress", "config");
		struct lxd_answer a2 = {0};
		r = body ? lxd_call(l, c,
		                    &(struct lxd_req){.method = "POST",
		                                      .path = "/1.0/network-acls",
		                                      .json = body},
		                    &a2, e)
		         : err_set(e, -ENOMEM, "lxd: out of memory");
		lxd_answer_release(&a2);
		if (r < 0)
			goto out;
	} else {
		const json_t *cur = json_object_get(a.meta, "egress");
		const json_t *in = json_object_get(a.meta, "ingress");
		if (!json_equal((json_t *)cur, egress) || (in && json_array_size(in) > 0)) {
			json_t *cfg = json_object_get(a.meta, "config");
			r = put_if_match(
			        l, c, buf_str(&path),
			        json_pack("{s:s, s:O, s:[], s:o}", "description",
			                  "runnerd: runner.denylist of manager (do not edit)",
			                  "egress", egress, "ingress", "config",
			                  json_is_object(cfg) ? json_incref(cfg) : json_object()),
			        a.etag, e);
			if (r < 0)
				goto out;
		}
	}
	/* Attached to the configured network only (an earlier one is let go). */
	r = network_acl_set(l, c, l->network, name, true, e);
	for (size_t i = 0; i < n_nets && r == 0; i++)
		if (strcmp(nets[i], l->network) != 0)
			r = network_acl_set(l, c, nets[i], name, false, e);
	if (r < 0)
		goto out;
done:
	l->deny_synced = true;
out:
	if (r < 0 && e)
		err_prefix(e, "denylist");
	json_decref(body);
	json_decref(egress);
	lxd_answer_release(&a);
	buf_release(&path);
	return r;
}

/*
 * The policy: runner.denylist as the deny ACL (hidden_dirs and secret_files
 * concern the host, which an LXD instance cannot see anyway). The list is
 * kept even when LXD cannot be reached now: create() retries.
 */
int lxd_policy(struct provider *p, const struct provider_call *c, const struct provider_policy *pol,
               struct err *e)
{
	struct lxd *l = p->priv;
	char **v = NULL;
	size_t n = 0;
	int r;

	r = deny_copy(pol->denylist, &v, &n, e);
	if (r < 0)
		return r;
	pthread_mutex_lock(&l->deny_lock);
	lxd_strings_free(l->deny, l->n_deny);
	l->deny = v;
	l->n_deny = n;
	l->deny_synced = false;
	r = deny_sync_locked(l, c, e);
	pthread_mutex_unlock(&l->deny_lock);
	return r;
}

/*
 * Before a create: a denylist not yet in place is put in place now, and
 * failing that the create fails. An empty one is best effort (at worst a
 * stale ACL denies more than asked).
 */
int lxd_deny_ensure(struct lxd *l, const struct provider_call *c, struct err *e)
{
	struct err e2 = {0};
	int r = 0;

	pthread_mutex_lock(&l->deny_lock);
	if (!l->deny_synced) {
		r = deny_sync_locked(l, c, &e2);
		if (r < 0 && l->n_deny == 0)
			r = 0;
		else if (r < 0 && e)
			*e = e2;
	}
	pthread_mutex_unlock(&l->deny_lock);
	return r;
}
