/*
 * The memory provider's instances (memory_internal.h): a dense array indexed
 * by an open-addressing hash of their names, so get/create/delete stay O(1)
 * and list O(n) at benchmark sizes. Callers hold the lock; nothing here
 * locks, sleeps or counts.
 */
#include "provider/memory/memory_internal.h"

static size_t mem_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)h;
}

/* Slot holding name, or the empty slot where it would go. */
static size_t mem_slot(const struct memory *m, const char *name)
{
	size_t mask = m->index_cap - 1, i = mem_hash(name) & mask;
	while (m->index[i] && strcmp(m->v[m->index[i] - 1].in.name, name) != 0)
		i = (i + 1) & mask;
	return i;
}

struct mem_inst *mem_find(const struct memory *m, const char *name)
{
	size_t i;
	if (!m->index_cap || !name)
		return NULL;
	i = mem_slot(m, name);
	return m->index[i] ? &m->v[m->index[i] - 1] : NULL;
}

static int mem_reindex(struct memory *m, size_t cap)
{
	uint32_t *idx = calloc(cap, sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	free(m->index);
	m->index = idx;
	m->index_cap = cap;
	for (size_t k = 0; k < m->n; k++)
		m->index[mem_slot(m, m->v[k].in.name)] = (uint32_t)(k + 1);
	return 0;
}

struct mem_inst *mem_insert(struct memory *m, const struct instance *in)
{
	struct mem_inst *mi;

	if (m->n >= UINT32_MAX - 1)
		return NULL;
	if ((m->n + 1) * 2 > m->index_cap &&
	    mem_reindex(m, m->index_cap ? m->index_cap * 2 : 64) < 0)
		return NULL;
	if (m->n == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		struct mem_inst *v = realloc(m->v, ncap * sizeof(*v));
		if (!v)
			return NULL;
		m->v = v;
		m->cap = ncap;
	}
	mi = &m->v[m->n];
	memset(mi, 0, sizeof(*mi));
	mi->in = *in;
	m->index[mem_slot(m, in->name)] = (uint32_t)(m->n + 1);
	m->n++;
	return mi;
}

void mem_inst_release(struct mem_inst *mi)
{
	if (mi->secret_env) {
		explicit_bzero(mi->secret_env, strlen(mi->secret_env));
		free(mi->secret_env);
	}
	free(mi->startup_script);
	for (size_t i = 0; i < mi->n_files; i++) {
		free(mi->files[i].path);
		free(mi->files[i].data);
	}
	free(mi->files);
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
void mem_remove(struct memory *m, struct mem_inst *mi)
{
	size_t mask = m->index_cap - 1, pos = (size_t)(mi - m->v);
	size_t i = mem_slot(m, mi->in.name), j = i;

	for (;;) {
		size_t k;
		j = (j + 1) & mask;
		if (!m->index[j])
			break;
		k = mem_hash(m->v[m->index[j] - 1].in.name) & mask;
		/* Move j back to i unless its home k lies cyclically in (i, j]. */
		if ((i <= j) ? (k <= i || k > j) : (k <= i && k > j)) {
			m->index[i] = m->index[j];
			i = j;
		}
	}
	m->index[i] = 0;
	mem_inst_release(mi);
	m->n--;
	if (pos != m->n) {
		m->v[pos] = m->v[m->n];
		m->index[mem_slot(m, m->v[pos].in.name)] = (uint32_t)(pos + 1);
	}
}
