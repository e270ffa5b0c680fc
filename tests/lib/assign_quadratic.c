/*
 * The quadratic assignment (assign_quadratic.h), the body of the consumer's
 * assign_runners before it became reactive_assign, its queue writes left
 * out. Not to be improved: it is the reference.
 */
#include "util/common.h"
#include "assign_quadratic.h"

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

int assign_quadratic(const struct manager_report *rep, struct queue_job *v, size_t n, int64_t now,
                     size_t *ret_given, size_t *ret_n)
{
	bool *now_given = calloc(n ? n : 1, sizeof(*now_given));
	size_t n_given = 0;

	if (!now_given)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct queue_job *j = &v[i];
		int64_t made, idle, given = 0, held = 0;

		if (j->runner_at != 0 || j->next_at > now)
			continue;
		runners_for(rep, j->flavor, &made, &idle);
		for (size_t k = 0; k < n; k++) {
			if (k == i || strcmp(v[k].flavor, j->flavor) != 0 || v[k].runner_at == 0)
				continue;
			if (now_given[k])
				given++; /* by this pass, earlier in this loop */
			else
				held++;
		}
		if (given >= made + (idle > held ? idle - held : 0))
			continue;
		j->runner_at = now;
		j->attempts++;
		now_given[i] = true;
		ret_given[n_given++] = i;
	}
	free(now_given);
	*ret_n = n_given;
	return 0;
}
