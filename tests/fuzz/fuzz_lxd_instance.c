/*
 * libFuzzer target: LXD instance objects and listings from untrusted
 * bytes (a broken or hostile LXD). The bytes go the way an answer does:
 * through the envelope (lxd_parse_answer), then the instance parser on
 * its metadata, and the listing parser with its ownership filter. Each
 * either fills its result (a terminated, bounded instance) or returns a
 * clean error; nothing crashes or leaks.
 */
#include "util/common.h"
#include "provider/lxd/lxd_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the front checks of every instance a backend gives it. */
static void check(const struct instance *in)
{
	if (!memchr(in->name, '\0', sizeof(in->name)) ||
	    !memchr(in->provider_id, '\0', sizeof(in->provider_id)) ||
	    !memchr(in->flavor, '\0', sizeof(in->flavor)) ||
	    (unsigned)in->state >= CLOUD_STATE_COUNT)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lxd_answer a = {0};
	struct instance_list l = {0};
	struct instance in;
	const char *owner;
	json_error_t je;
	json_t *root;

	if (size > LXD_RESPONSE_MAX)
		return 0;
	/* an instance object as it is (a listing's entry) */
	root = json_loadb((const char *)data, size, JSON_DECODE_ANY, &je);
	if (root && lxd_parse_instance(root, &in, &owner) == 0) {
		check(&in);
		if (owner && strlen(owner) > size)
			abort();
	}
	if (root && lxd_parse_instances(root, "lxdt", &l, NULL) == 0)
		for (size_t i = 0; i < l.n; i++)
			check(&l.v[i]);
	instance_list_release(&l);
	json_decref(root);
	/* the envelope around it, as GET /1.0/instances[/<name>] answers */
	if (lxd_parse_answer("GET", "/1.0/instances", 200, data, size, &a, NULL) == 0) {
		if (lxd_parse_instance(a.meta, &in, &owner) == 0)
			check(&in);
		if (lxd_parse_instances(a.meta, "lxdt", &l, NULL) == 0)
			for (size_t i = 0; i < l.n; i++)
				check(&l.v[i]);
		instance_list_release(&l);
		lxd_answer_release(&a);
	}
	return 0;
}
