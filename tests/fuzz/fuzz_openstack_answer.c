/*
 * libFuzzer target: what the openstack backend reads from Keystone, Nova,
 * Neutron and Glance, from untrusted bytes: a token answer and its catalog,
 * a page of servers (its next link), an error answer at several statuses,
 * a name lookup, a created resource's id, owned key pairs and ports; and a
 * clouds.yaml. Each either fills its result or returns a clean error; an
 * endpoint is an http(s) URL, a next link stays on the compute endpoint,
 * every listed server is owned by the manager, messages are printable;
 * nothing crashes or leaks.
 */
#include "util/common.h"
#include "provider/openstack/os_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = {400, 403, 404, 409, 413, 500, 503};
	static const char base[] = "http://127.0.0.1:8774/v2.1";
	char ep[OS_SERVICES][OS_URL_MAX], next[OS_URL_MAX], id[OS_ID_MAX];
	struct instance_list l = {0};
	struct os_ref refs[8];
	struct err e = {0};
	int64_t exp;
	size_t n;

	if (size > OS_RESPONSE_MAX)
		return 0;
	if (os_parse_token(data, size, "public", "", &exp, ep, &e) == 0)
		for (int s = 0; s < OS_SERVICES; s++)
			if (!str_has_prefix(ep[s], "http://") && !str_has_prefix(ep[s], "https://"))
				abort();
	for (int keep = 0; keep < 2; keep++) {
		if (os_parse_servers(data, size, "ci", base, keep, &l, next, &e) == 0) {
			if (next[0] && !str_has_prefix(next, base))
				abort();
			for (size_t i = 0; i < l.n; i++)
				if (!name_is_owned("ci", l.v[i].name) || !l.v[i].provider_id[0])
					abort();
		}
		instance_list_release(&l);
	}
	for (size_t i = 0; i < ARRAY_SIZE(statuses); i++) {
		int r = os_parse_error("fuzz", statuses[i], data, size, &e);
		if (r >= 0)
			abort();
		printable(e.msg);
	}
	if (os_parse_pick(data, size, "networks", "runners", id, &e) == 0 && !id[0])
		abort();
	(void)os_parse_id(data, size, "server", id, &e);
	if (os_parse_owned(data, size, "keypairs", "keypair", "ci", refs, ARRAY_SIZE(refs), &n,
	                   &e) == 0)
		for (size_t i = 0; i < n; i++)
			if (!name_is_owned("ci", refs[i].name))
				abort();
	{
		struct config_cloud c = {0};
		if (config_cloud_parse("fuzz.yaml", (const char *)data, size, "test", &c, &e) ==
		    0) {
			if (!c.secret || !c.auth_url)
				abort();
			config_cloud_release(&c);
		}
	}
	return 0;
}
