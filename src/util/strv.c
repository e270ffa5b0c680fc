/* The string vector (util/strv.h). */
#include "util/common.h"
#include "util/strv.h"

int strv_push_n(struct strv *l, const char *s, size_t n)
{
	char *copy = strndup(s, n);
	char **v;

	if (!copy)
		return -ENOMEM;
	v = reallocarray(l->v, l->n + 1, sizeof(*v));
	if (!v) {
		free(copy);
		return -ENOMEM;
	}
	v[l->n++] = copy;
	l->v = v;
	return 0;
}

int strv_push(struct strv *l, const char *s)
{
	return strv_push_n(l, s, strlen(s));
}

bool strv_contains(const struct strv *l, const char *s, bool nocase)
{
	for (size_t i = 0; l && s && i < l->n; i++)
		if ((nocase ? strcasecmp(l->v[i], s) : strcmp(l->v[i], s)) == 0)
			return true;
	return false;
}

void strv_release(struct strv *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	*l = (struct strv){0};
}
