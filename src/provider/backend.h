/*
 * What a backend implements, and what the front keeps of each provider.
 * Private to src/provider/ and its backend folders: the manager sees only
 * provider.h. A new backend is a table of these functions plus one line in
 * provider.c's list of backends.
 *
 * The front has already checked what goes in (owned names, plain paths,
 * bounded sizes) and checks what comes out, so a backend need not repeat
 * those checks, but it must never touch an instance whose name this
 * manager does not own. Every function gets the call's deadline and cancel
 * flag (struct provider_call): waits are bounded by the deadline and end
 * early, with -ECANCELED, once the flag is set.
 */
#ifndef RUNNERD_PROVIDER_BACKEND_H
#define RUNNERD_PROVIDER_BACKEND_H

#include "provider/provider.h"
#include "util/clock.h"

#include <pthread.h>

struct provider_call {
	int64_t deadline;          /* clock_mono_ms() by which the call should end */
	const atomic_bool *cancel; /* never NULL */
};

/* Milliseconds left before the deadline (0 when past it). */
int64_t provider_call_left_ms(const struct provider_call *c);
/* ms, or what is left of the call when that is less (at least 1). */
int64_t provider_call_bound_ms(const struct provider_call *c, int64_t ms);
bool provider_call_cancelled(const struct provider_call *c);
/* Sleep ms (bounded by the deadline) unless cancelled; false when cancelled. */
bool provider_call_sleep(const struct provider_call *c, int64_t ms);

struct provider_ops {
	const char *type;
	/*
	 * Set p->priv and p->traits from pc (p->name and p->manager are set);
	 * may change p->deadline_ms for operations whose time its config
	 * bounds. Fails only on what cannot work (a bad setting, no root).
	 */
	int (*open)(struct provider *p, const struct config_provider *pc, struct err *e);
	int (*create)(struct provider *p, const struct provider_call *c,
	              const struct instance_spec *spec, struct instance *ret, struct err *e);
	int (*get)(struct provider *p, const struct provider_call *c, const char *name,
	           struct instance *ret, struct err *e);
	/* Only names owned by p->manager; on success *ret holds exactly this listing. */
	int (*list)(struct provider *p, const struct provider_call *c, struct instance_list *ret,
	            struct err *e);
	int (*delete)(struct provider *p, const struct provider_call *c, const char *name,
	              struct err *e);
	int (*health)(struct provider *p, const struct provider_call *c, const char *name,
	              enum health *ret, struct err *e);
	/* NULL: unsupported (-ENOTSUP). */
	int (*pull_file)(struct provider *p, const struct provider_call *c, const char *name,
	                 const char *path, size_t max_bytes, struct buf *ret, struct err *e);
	/*
	 * NULL: unsupported (-ENOTSUP). At most q->max entries, the most
	 * useful (provider_file_list_offer keeps them), in any order: the front
	 * sorts them; ret->total counts every regular file seen.
	 */
	int (*list_files)(struct provider *p, const struct provider_call *c, const char *name,
	                  const char *dir, const struct provider_list_query *q,
	                  struct provider_file_list *ret, struct err *e);
	/* NULL: nothing to enforce. */
	int (*policy)(struct provider *p, const struct provider_call *c,
	              const struct provider_policy *pol, struct err *e);
	/* NULL: nothing to collect. */
	int (*gc)(struct provider *p, const struct provider_call *c, struct err *e);
	/* Free p->priv (not p); NULL-safe on a half-opened priv. */
	void (*close)(struct provider *p);
};

struct provider {
	const struct provider_ops *ops;
	void *priv; /* the backend's */
	char name[PROVIDER_NAME_MAX];
	char manager[MANAGER_NAME_MAX + 1];
	struct provider_traits traits;
	int64_t deadline_ms[PROVIDER_OP_COUNT];

	/* The front's own, under lock: */
	pthread_mutex_t lock;
	pthread_cond_t slot_free;
	int64_t slots;  /* creates and deletes at once (providers.<name>.concurrency) */
	int64_t in_use; /* of them */
	const atomic_bool *cancel;
	atomic_bool never; /* the cancel flag until provider_set_cancel */
	struct provider_stats stats;

	/* During a gc call only (provider_gc_peers): every provider of the
	 * manager's config; NULL when the caller did not say. */
	const struct config_provider *peers;
	size_t n_peers;
};

/*
 * For a backend that sees every file of a listing one by one: count f in
 * l->total and keep it when it is among the q->max most useful seen so far
 * (l holds them as a heap, least useful first, until the front sorts it).
 * f->preferred is set here from q. -ENOMEM leaves l as it was.
 */
int provider_file_list_offer(struct provider_file_list *l, const struct provider_list_query *q,
                             const struct provider_file *f);

/* The front's checks (provider_files.c). A query: -EINVAL unless q is one list_files may be asked.
 */
int provider_file_query_check(const struct provider *p, const struct provider_list_query *q,
                              struct err *e);
/*
 * A backend's listing: NULL when l is a listing as asked (at most q->max
 * entries, a total that counts them, plain names each once, plausible sizes
 * and times), then sorted most useful first with its flags set; else why not.
 */
const char *provider_file_list_check(struct provider_file_list *l,
                                     const struct provider_list_query *q);

/*
 * Open a provider on ops, not found by type (the memory test double, tests
 * of one backend). pc->name and pc->concurrency are used; the rest is the
 * backend's.
 */
int provider_open_ops(const struct provider_ops *ops, const struct config_provider *pc,
                      const char *manager, struct provider **ret, struct err *e);

#endif
