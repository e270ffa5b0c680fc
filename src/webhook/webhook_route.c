/*
 * Which jobs are ours and which flavor runs them (DESIGN.md section 3).
 * Pure: the config in, an answer out. It must never route a job to a
 * flavor whose runners GitHub would not hand it to (a label missing), and
 * compares labels as GitHub does, case-insensitively.
 */
#include "util/common.h"
#include "webhook/webhook.h"

static const char *const skip_names[] = {
        [WEBHOOK_SKIP_NONE] = "none",
        [WEBHOOK_SKIP_REPO] = "other-repository",
        [WEBHOOK_SKIP_NO_FLAVOR] = "no-flavor",
};

const char *webhook_skip_name(enum webhook_skip s)
{
	return (unsigned)s < ARRAY_SIZE(skip_names) ? skip_names[s] : "invalid";
}

static bool flavor_has(const struct config_flavor *f, const char *label)
{
	const char *implied[WORDS_IMPLIED_LABELS];

	words_implied_labels(f->arch, implied);
	for (size_t i = 0; i < WORDS_IMPLIED_LABELS; i++)
		if (strcasecmp(implied[i], label) == 0)
			return true;
	return strv_contains(&f->labels, label, true);
}

int webhook_route(const struct config *cfg, const struct strv *labels, size_t *ret_index)
{
	/* runs-on is never empty; a job asking nothing is not one for self-hosted runners */
	if (labels->n == 0)
		return -ENOENT;
	for (size_t i = 0; i < cfg->n_flavors; i++) {
		const struct config_flavor *f = &cfg->flavors[i];
		size_t j;

		for (j = 0; j < labels->n; j++)
			if (!flavor_has(f, labels->v[j]))
				break;
		if (j == labels->n) {
			*ret_index = i;
			return 0;
		}
	}
	return -ENOENT;
}
