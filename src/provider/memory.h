/*
 * The `memory` provider: a test double behind the provider vtable. Instances
 * are entries in a hash table (tens of thousands stay cheap); nothing runs.
 * Tests and benchmarks steer it with the hooks below: inject failures, move
 * an instance to another state, add files for pull_file, count calls, add
 * latency. It must never be chosen by an operator's config for real work.
 *
 * Every hook takes the struct provider returned by memory_new() and
 * returns -EINVAL when handed any other provider. Calls go through the
 * provider front like every backend's, so tests see what the manager sees.
 */
#ifndef RUNNERD_PROVIDER_MEMORY_H
#define RUNNERD_PROVIDER_MEMORY_H

#include "provider/provider.h"

enum memory_op {
	MEMORY_OP_CREATE = 0,
	MEMORY_OP_GET,
	MEMORY_OP_LIST,
	MEMORY_OP_DELETE,
	MEMORY_OP_HEALTH,
	MEMORY_OP_PULL_FILE,
	MEMORY_OP_LIST_FILES,
	MEMORY_OP_GC, /* nothing to collect: counted, slowed and failed like the rest */
	MEMORY_OP_COUNT,
};

/*
 * A memory provider named name (what flavors name, as "local" in a test
 * config) for manager. Its traits: files can be pulled and listed, health
 * is probed; memory_set_traits changes them.
 */
int memory_new(const char *name, const char *manager, struct provider **ret, struct err *e);
/* Answer with these traits (a test of what the manager does per trait). */
int memory_set_traits(struct provider *p, const struct provider_traits *t);
/* At most slots creates and deletes at once (the front's bound; default 10). */
int memory_set_concurrency(struct provider *p, int64_t slots);
/* The front's deadline for op, in ms (default: the front's). */
int memory_set_deadline(struct provider *p, enum provider_op op, int64_t ms);
/*
 * Answer as a broken backend would (tests of the front): list every
 * instance whatever its name, pull_file whole files past max_bytes, and
 * list_files every file however many were asked for.
 */
int memory_lie(struct provider *p, bool on);

/*
 * The next `times` calls of op fail with err (a negative errno); times < 0:
 * every call until memory_fail(p, op, 0, 0) clears it. A failing list is a
 * partial listing; a failing delete leaves the instance; a failing create
 * leaves nothing unless memory_fail_create_leaves() says otherwise.
 */
int memory_fail(struct provider *p, enum memory_op op, int err, int times);
/* A failing create still leaves the instance behind in state s, as a cloud
 * that timed out would; CLOUD_DELETED (the default) leaves nothing. */
int memory_fail_create_leaves(struct provider *p, enum cloud_state s);
/* Sleep this long in every call of op (outside the lock; cut short by the
 * call's deadline and cancel flag: then -ECANCELED), 0 = none. */
int memory_set_latency(struct provider *p, enum memory_op op, int64_t usec);

/* Add an instance directly (no create call is counted), whatever its
 * name and state (the front judges them when they come back); -EEXIST if present. */
int memory_add(struct provider *p, const struct instance *in);
/* -ENOENT when there is no such instance. */
int memory_set_state(struct provider *p, const char *name, enum cloud_state s);
int memory_set_created_at(struct provider *p, const char *name, time_t t);
/* What health() answers while the instance runs (the runner process check);
 * HEALTH_UNKNOWN (the default): derived from the state. */
int memory_set_health(struct provider *p, const char *name, enum health h);
/*
 * A file pull_file(name, path) returns (replaces an earlier one), changed
 * now. list_files(name, dir) lists the files put at dir/<plain name>; a
 * directory is there while a file is under it.
 */
int memory_put_file(struct provider *p, const char *name, const char *path, const void *data,
                    size_t len);
/* When the file at path was last changed, as list_files says; -ENOENT when none. */
int memory_set_file_time(struct provider *p, const char *name, const char *path, time_t mtime);
/* What create() received: a copy of spec->secret_env / startup_script ("" when NULL). */
int memory_get_secret_env(struct provider *p, const char *name, struct buf *ret);
int memory_get_startup_script(struct provider *p, const char *name, struct buf *ret);

/* Instances held right now, and how many times op was called (failed calls included). */
size_t memory_count(struct provider *p);
uint64_t memory_calls(struct provider *p, enum memory_op op);

#endif
