/*
 * Which waiting jobs the runners of a pass go to (reactive_assign in
 * reactive.h): pure, no I/O, in O(n log n) over the jobs looked at (up to
 * a few thousand a pass), so a long queue never makes the pass loop crawl.
 * It must give exactly what the rule says, in list order: a flavor's
 * runners (those the pass made, and its idle ones that no job given one
 * earlier holds) to its oldest jobs that have none.
 */
#include "util/common.h"
#include "reactive/reactive.h"

/* Per flavor of the list: what it may give, and what it gave. */
struct flavor_tally {
	int64_t made, idle; /* from the pass's report */
	int64_t held;       /* jobs given a runner before this pass */
	int64_t given;      /* jobs given one by this call */
	bool asked;         /* made and idle were read */
};

/* Successful creates of flavor in the pass, and the runners it saw idle. */
static void runners_for(const struct manager_report *rep, const char *flavor, int64_t *ret_made,
                        int64_t *ret_idle)
{
	*ret_made = *ret_idle = 0;
	for (size_t i = 0; i < rep->n_events; i++) {
		const struct manager_event *ev = &rep->events[i];
		if (ev->ok && strcmp(ev->action, "create") == 0 && strcmp(ev->flavor, flavor) == 0)
			(*ret_made)++;
	}
	for (size_t i = 0; i < rep->plan.n_counts; i++)
		if (strcmp(rep->plan.counts[i].name, flavor) == 0)
			*ret_idle = rep->plan.counts[i].idle;
}

/* A job's flavor and place in the list, sorted by flavor then place (a total order). */
struct place {
	const char *flavor;
	size_t i;
};

static int by_flavor(const void *a, const void *b)
{
	const struct place *x = a, *y = b;
	int c = strcmp(x->flavor, y->flavor);

	if (c)
		return c;
	return x->i < y->i ? -1 : x->i > y->i;
}

/*
 * group[i] := the number of v[i]'s flavor among the list's distinct
 * flavors; *ret_n their count. One sort: O(n log n).
 */
static int group_by_flavor(const struct queue_job *v, size_t n, size_t *group, size_t *ret_n)
{
	struct place *pl = malloc((n ? n : 1) * sizeof(*pl));
	size_t g = 0;

	if (!pl)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		pl[i] = (struct place){.flavor = v[i].flavor, .i = i};
	qsort(pl, n, sizeof(*pl), by_flavor);
	for (size_t k = 0; k < n; k++) {
		if (k > 0 && strcmp(pl[k].flavor, pl[k - 1].flavor) != 0)
			g++;
		group[pl[k].i] = g;
	}
	free(pl);
	*ret_n = n ? g + 1 : 0;
	return 0;
}

int reactive_assign(const struct manager_report *rep, struct queue_job *v, size_t n, int64_t now,
                    size_t *ret_given, size_t *ret_n)
{
	struct flavor_tally *tally = NULL;
	size_t *group, n_groups = 0, n_given = 0;
	int r;

	group = malloc((n ? n : 1) * sizeof(*group));
	if (!group)
		return -ENOMEM;
	r = group_by_flavor(v, n, group, &n_groups);
	if (r < 0)
		goto out;
	tally = calloc(n_groups ? n_groups : 1, sizeof(*tally));
	if (!tally) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct flavor_tally *t = &tally[group[i]];

		/* the report is read once per flavor */
		if (!t->asked) {
			runners_for(rep, v[i].flavor, &t->made, &t->idle);
			t->asked = true;
		}
		if (v[i].runner_at != 0)
			t->held++;
	}
	for (size_t i = 0; i < n; i++) {
		struct queue_job *j = &v[i];
		struct flavor_tally *t = &tally[group[i]];
		int64_t free_idle = t->idle > t->held ? t->idle - t->held : 0;

		if (j->runner_at != 0 || j->next_at > now)
			continue;
		if (t->given >= t->made + free_idle)
			continue;
		j->runner_at = now;
		j->attempts++;
		t->given++;
		ret_given[n_given++] = i;
	}
	*ret_n = n_given;
out:
	free(tally);
	free(group);
	return r;
}
