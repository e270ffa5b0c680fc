/*
 * What the scale benchmarks share: a pool of N idle runners of ours on
 * ghsim (GHSIM_URL, GH_TOKEN_FILE), their N instances in the in-memory
 * provider (behind the same vtable as the real ones), a store and a
 * manager over them, min_idle = max = N, in a scratch directory removed
 * again at close.
 */
#ifndef RUNNERD_BENCH_POOL_H
#define RUNNERD_BENCH_POOL_H

#include "util/common.h"
#include "config/config.h"
#include "github/github.h"
#include "manager/manager.h"
#include "provider/memory.h"
#include "store/store.h"

struct bench_pool {
	char dir[64];
	struct config *cfg;
	struct provider *mem;
	struct store *store;
	struct github *gh;
	struct manager *m;
};

/* 0, or -1 with what failed on stderr. Close it either way. */
int bench_pool_open(struct bench_pool *p, const char *name, long n);
void bench_pool_close(struct bench_pool *p);

#endif
