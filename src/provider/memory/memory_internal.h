/*
 * Shared by the memory provider's files (provider/memory.h is its API): the
 * instances, their hash table (table.c), the backend (ops.c) and the test
 * hooks (hooks.c). Private to src/provider/memory/.
 */
#ifndef RUNNERD_PROVIDER_MEMORY_INTERNAL_H
#define RUNNERD_PROVIDER_MEMORY_INTERNAL_H

#include "util/common.h"
#include "provider/backend.h"
#include "provider/memory.h"

struct mem_file {
	char *path;
	char *data;
	size_t len;
	time_t mtime; /* what list_files says (memory_put_file: now) */
};

struct mem_inst {
	struct instance in;
	enum health health; /* what health() answers for a running instance; UNKNOWN: from state */
	char *secret_env;   /* wiped on free */
	char *startup_script;
	struct mem_file *files;
	size_t n_files;
};

struct mem_fail {
	int err;
	int times; /* < 0: until cleared */
};

struct memory {
	pthread_mutex_t lock;
	struct mem_inst *v; /* dense */
	size_t n, cap;
	uint32_t *index; /* slot -> 1 + position in v; 0 = empty; size is a power of two */
	size_t index_cap;
	uint64_t seq;
	struct mem_fail fail[MEMORY_OP_COUNT];
	enum cloud_state create_leaves;
	uint64_t calls[MEMORY_OP_COUNT];
	int64_t latency_us[MEMORY_OP_COUNT];
	bool lie; /* answer as a broken backend would */
};

/* The memory provider's state, or NULL when p is another backend's. */
struct memory *mem_of(struct provider *p);

/* The instance named name, NULL when none (m->lock held, as for all below). */
struct mem_inst *mem_find(const struct memory *m, const char *name);
/* Insert (name must be absent); the new entry is returned zeroed but for in. NULL: no memory. */
struct mem_inst *mem_insert(struct memory *m, const struct instance *in);
/* Free what mi holds (its secret wiped), not mi. */
void mem_inst_release(struct mem_inst *mi);
/* Remove mi (an entry of m->v; the last entry moves into its place). */
void mem_remove(struct memory *m, struct mem_inst *mi);

#endif
