/*
 * The provider registry: picks a backend's constructor by name and holds the
 * small helpers every backend shares (instance lists, state and health
 * names). It knows nothing about any backend's internals and must never
 * grow backend-specific code: a new backend adds one line to the table.
 */
#include "util/common.h"
#include "provider/provider.h"
#include "provider/local.h"
#include "provider/lxd.h"
#include "provider/memory.h"

struct provider_backend {
	const char *name;
	int (*new)(const struct config *cfg, struct provider **ret, struct err *e);
};

static const struct provider_backend provider_backends[] = {
        {"local", local_new},
        {"lxd", lxd_new},
        {"memory", memory_new},
};

int provider_new(const char *name, const struct config *cfg, struct provider **ret, struct err *e)
{
	if (!name)
		return err_set(e, -EINVAL, "provider: no name given");
	for (size_t i = 0; i < ARRAY_SIZE(provider_backends); i++)
		if (strcmp(provider_backends[i].name, name) == 0)
			return provider_backends[i].new(cfg, ret, e);
	return err_set(e, -ENOENT, "provider %s: unknown (or not built in)", name);
}

bool provider_known(const char *name)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(provider_backends); i++)
		if (strcmp(provider_backends[i].name, name) == 0)
			return true;
	return false;
}

void provider_free(struct provider *p)
{
	if (p && p->ops && p->ops->free)
		p->ops->free(p);
}

int instance_list_add(struct instance_list *l, const struct instance *in)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		struct instance *v;

		if (ncap > SIZE_MAX / sizeof(*v))
			return -ENOMEM;
		v = realloc(l->v, ncap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = ncap;
	}
	l->v[l->n++] = *in;
	return 0;
}

void instance_list_release(struct instance_list *l)
{
	if (!l)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
	l->cap = 0;
}
