/*
 * What the planner's two files share: one owned name of the input joined
 * into an entry, and how planner_classify.c classifies it for planner.c to
 * turn into actions. Pure, like the planner. Never included from outside
 * src/manager/planner*.c: the rest of runnerd has planner.h.
 */
#ifndef RUNNERD_PLANNER_INTERNAL_H
#define RUNNERD_PLANNER_INTERNAL_H

#include "manager/planner.h"

enum src_kind { SRC_ROW = 0, SRC_INST, SRC_RUNNER, SRC_FLIGHT };

/* One owned name from one of the four inputs, sorted to group by name. */
struct src {
	const char *name;
	enum src_kind kind;
	size_t idx;
};

/* What a name contributes to its flavor's pool. */
enum slot { SLOT_NONE = 0, SLOT_BUSY, SLOT_IDLE, SLOT_PENDING, SLOT_UNKNOWN };

/* Scale-down / flush-idle candidates, in the order they are given up. */
enum rank { RANK_NONE = 0, RANK_BOOTING, RANK_IDLE };

#define F_METRICS 0x1u
#define F_LOGS    0x2u
#define F_CONFIRM 0x4u

struct entry {
	const char *name;
	const struct store_instance *row;
	const struct instance *inst; /* the newest listed */
	const struct src *insts;     /* every listed instance of this name */
	size_t n_insts;
	const struct plan_runner *runner;
	bool in_flight;

	const char *flavor;
	long fl; /* index in in->flavors, -1: not configured (surplus) */
	int64_t created_at;
	int64_t runner_id; /* listed, or the row's while GitHub's list is incomplete */
	enum github_state gh;
	enum cloud_state cloud;
	enum health health;
	enum slot slot;
	enum rank rank;
	bool adopt;

	/* the cleanup rules' verdict (kind ACTION_CREATE: none) */
	enum action_kind ck;
	enum delete_reason cwhy;
	unsigned cflags;
};

/*
 * Every owned name of in, one entry each, in name order: ents and srcs hold
 * room for every row, instance, runner and in-flight name of in. Returns
 * how many entries were filled. Extra rows or runners of one name are ignored.
 */
size_t planner_join(const struct plan_input *in, struct src *srcs, struct entry *ents);
/* Classify one joined entry: states, health, slot, rank, the cleanup verdict. */
void planner_classify(const struct plan_input *in, struct entry *e);
/* What the planner concluded about an entry, for status and metrics. */
void planner_view(struct plan_view *w, const struct entry *e);
/* The index of a configured flavor in in->flavors, -1 when it is not configured. */
long planner_flavor_index(const struct plan_input *in, const char *name);

#endif
