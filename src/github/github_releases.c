/*
 * GitHub's releases of the runner software (actions/runner): each one's
 * version and publication time, newest first, read with a conditional
 * request so that an unchanged list costs no rate limit. It is what tells
 * how far behind a runner version is, which GitHub enforces since 2026. It
 * must never take a draft or a prerelease for a release, nor a tag that is
 * not a version.
 */
#include "util/common.h"
#include "github/github_internal.h"
#include "util/clock.h"
#include "util/strutil.h"

/* "v2.321.0" -> "2.321.0" when it is 1 to 4 dot-separated numbers; false otherwise. */
static bool tag_version(const char *tag, char *out, size_t cap)
{
	const char *s = tag[0] == 'v' ? tag + 1 : tag;
	int parts = 1, digits = 0;

	for (const char *p = s; *p; p++) {
		if (*p == '.') {
			if (digits == 0 || ++parts > 4)
				return false;
			digits = 0;
		} else if (*p >= '0' && *p <= '9') {
			if (++digits > 9)
				return false;
		} else {
			return false;
		}
	}
	if (digits == 0 || strlen(s) >= cap)
		return false;
	str_copy(out, s, cap);
	return true;
}

int github_json_runner_releases(const char *op, json_t *root, struct github_runner_releases *ret,
                                struct err *e)
{
	struct github_runner_releases l = {.n = 0};

	if (!json_is_array(root))
		return err_set(e, -EPROTO, "%s: unexpected answer from GitHub: not a JSON array",
		               op);
	for (size_t i = 0; i < json_array_size(root) && l.n < GITHUB_RELEASES_MAX; i++) {
		json_t *o = json_array_get(root, i);
		const char *tag = json_string_value(json_object_get(o, "tag_name"));
		const char *at = json_string_value(json_object_get(o, "published_at"));
		struct github_runner_release *rel = &l.v[l.n];
		int64_t t;

		if (!json_is_object(o))
			return err_set(e, -EPROTO, "%s: [%zu] is not an object", op, i);
		if (json_is_true(json_object_get(o, "draft")) ||
		    json_is_true(json_object_get(o, "prerelease")))
			continue;
		if (!tag || !tag_version(tag, rel->version, sizeof(rel->version)))
			continue; /* not a runner version: not ours to judge by */
		if (!at || clock_parse_rfc3339(at, &t) < 0)
			return err_set(e, -EPROTO, "%s: [%zu].published_at is not an ISO 8601 time",
			               op, i);
		rel->published_at = t;
		l.n++;
	}
	*ret = l;
	return 0;
}

int github_runner_releases(struct github *gh, struct github_runner_releases *ret, struct err *e)
{
	const char *op = "list runner releases (actions/runner)";
	char url[GITHUB_URL_MAX];
	json_t *root = NULL;
	int r;

	r = github_url(gh, url, sizeof(url), op, e, "repos/actions/runner/releases?per_page=%d",
	               GITHUB_RELEASES_MAX);
	if (r == 0)
		r = github_get_json_conditional(
		        gh, "runner releases", op, url,
		        "no such repository here (GitHub Enterprise Server?)", &root, e);
	if (r == 0)
		r = github_json_runner_releases(op, root, ret, e);
	json_decref(root);
	return r;
}
