/*
 * The file listings of the provider front (provider_files.h): the heap a
 * backend fills with the most useful files of a directory inside an
 * instance, and the front's checks of a list_files query and of the
 * listing a backend returns. Pure: it must never do I/O or know a backend.
 */
#include "util/common.h"
#include "provider/backend.h"
#include "util/strutil.h"

/* A plain file name: printable, no '/', not "." or "..". */
static bool plain_file_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > PROVIDER_FILE_NAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* <0 when a is more useful than b: preferred, newer, larger, then by name. */
static int file_order(const struct provider_file *a, const struct provider_file *b)
{
	if (a->preferred != b->preferred)
		return a->preferred ? -1 : 1;
	if (a->mtime != b->mtime)
		return a->mtime > b->mtime ? -1 : 1;
	if (a->size != b->size)
		return a->size > b->size ? -1 : 1;
	return strcmp(a->name, b->name);
}

static int file_order_cmp(const void *a, const void *b)
{
	return file_order(a, b);
}

static int file_name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct provider_file *)a)->name,
	              ((const struct provider_file *)b)->name);
}

static bool preferred(const struct provider_list_query *q, const char *name)
{
	for (size_t i = 0; q->prefer && q->prefer[i]; i++)
		if (str_has_prefix(name, q->prefer[i]))
			return true;
	return false;
}

static void file_swap(struct provider_file *a, struct provider_file *b)
{
	struct provider_file t = *a;
	*a = *b;
	*b = t;
}

/* The heap of provider_file_list_offer: each parent no more useful than its children. */
static void heap_up(struct provider_file *v, size_t i)
{
	while (i > 0 && file_order(&v[(i - 1) / 2], &v[i]) < 0) {
		file_swap(&v[(i - 1) / 2], &v[i]);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct provider_file *v, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && file_order(&v[l], &v[m]) > 0)
			m = l;
		if (r < n && file_order(&v[r], &v[m]) > 0)
			m = r;
		if (m == i)
			return;
		file_swap(&v[i], &v[m]);
		i = m;
	}
}

int provider_file_list_offer(struct provider_file_list *l, const struct provider_list_query *q,
                             const struct provider_file *f)
{
	struct provider_file x = *f;

	x.preferred = preferred(q, x.name);
	if (l->n < q->max) {
		if (l->n == l->cap) {
			size_t ncap = l->cap ? l->cap * 2 : 16;
			struct provider_file *v;
			if (ncap > q->max)
				ncap = q->max;
			v = reallocarray(l->v, ncap, sizeof(*v));
			if (!v)
				return -ENOMEM;
			l->v = v;
			l->cap = ncap;
		}
		l->v[l->n] = x;
		heap_up(l->v, l->n++);
	} else if (l->n > 0 && file_order(&x, &l->v[0]) < 0) {
		l->v[0] = x; /* the least useful kept so far goes */
		heap_down(l->v, l->n, 0);
	}
	l->total++;
	return 0;
}

void provider_file_list_release(struct provider_file_list *l)
{
	if (!l)
		return;
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* A bound, and prefixes that are plain and few. */
int provider_file_query_check(const struct provider *p, const struct provider_list_query *q,
                              struct err *e)
{
	size_t i;

	if (!q || q->max == 0 || q->max > PROVIDER_LIST_FILES_MAX)
		return err_set(e, -EINVAL, "provider %s: list_files: 1 to %d entries", p->name,
		               PROVIDER_LIST_FILES_MAX);
	for (i = 0; q->prefer && q->prefer[i]; i++) {
		size_t n = strlen(q->prefer[i]);
		bool ok =
		        n > 0 && n <= PROVIDER_PREFER_LEN_MAX &&
		        strspn(q->prefer[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		                             "0123456789._-") == n;
		if (!ok || i == PROVIDER_PREFER_MAX)
			return err_set(e, -EINVAL, "provider %s: list_files: bad name prefixes",
			               p->name);
	}
	return 0;
}

/* Its entries are checked before sorting, names sorted to find doubles, then by use. */
const char *provider_file_list_check(struct provider_file_list *l,
                                     const struct provider_list_query *q)
{
	if (l->n > q->max)
		return "more entries than asked for";
	if (l->total < l->n)
		return "a total below its entries";
	for (size_t i = 0; i < l->n; i++) {
		struct provider_file *f = &l->v[i];
		if (!memchr(f->name, '\0', sizeof(f->name)) || !plain_file_name(f->name))
			return "a name that is not a plain file name";
		if (f->size < -1 || f->mtime < 0)
			return "an impossible size or time";
		f->preferred = preferred(q, f->name);
	}
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), file_name_cmp);
	for (size_t i = 1; i < l->n; i++)
		if (strcmp(l->v[i - 1].name, l->v[i].name) == 0)
			return "a name twice";
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), file_order_cmp);
	l->cut = l->total > l->n;
	return NULL;
}
