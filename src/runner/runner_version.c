/*
 * Runner versions: comparison, how long a version has been behind GitHub's
 * releases, the floor an image's runner must reach, and the startup
 * script's note about its runner read as hostile input (see
 * runner_version.h). Pure: it must never do I/O nor trust the note.
 */
#include "util/common.h"
#include "runner/runner_version.h"
#include "util/strutil.h"

#define PARTS_MAX 4

/* Split a version into its numbers; false when it is not one. */
static bool parse(const char *s, int64_t out[PARTS_MAX], int *ret_n)
{
	int n = 0;

	if (!s)
		return false;
	if (*s == 'v')
		s++;
	for (;;) {
		int64_t v = 0;
		int digits = 0;

		while (*s >= '0' && *s <= '9' && digits < 10) {
			v = v * 10 + (*s++ - '0');
			digits++;
		}
		if (digits == 0 || digits > 9 || n == PARTS_MAX)
			return false;
		out[n++] = v;
		if (*s == '\0')
			break;
		if (*s++ != '.')
			return false;
	}
	for (int i = n; i < PARTS_MAX; i++)
		out[i] = 0;
	*ret_n = n;
	return true;
}

bool runner_version_valid(const char *s)
{
	int64_t p[PARTS_MAX];
	int n;

	return parse(s, p, &n) && strlen(s) < RUNNER_VERSION_MAX;
}

int runner_version_cmp(const char *a, const char *b)
{
	int64_t pa[PARTS_MAX], pb[PARTS_MAX];
	int na, nb;
	bool va = parse(a, pa, &na), vb = parse(b, pb, &nb);

	if (!va || !vb)
		return (int)va - (int)vb;
	for (int i = 0; i < PARTS_MAX; i++)
		if (pa[i] != pb[i])
			return pa[i] < pb[i] ? -1 : 1;
	return 0;
}

int64_t runner_version_behind_since(const struct runner_release *rel, size_t n, const char *version)
{
	int64_t since = 0;

	for (size_t i = 0; i < n; i++)
		if (runner_version_cmp(rel[i].version, version) > 0 &&
		    (since == 0 || rel[i].published_at < since))
			since = rel[i].published_at;
	return since;
}

void runner_version_floor(const struct runner_release *rel, size_t n, int64_t now,
                          int64_t max_behind, char *out, size_t cap)
{
	const struct runner_release *best = NULL;

	for (size_t i = 0; i < n; i++)
		if (rel[i].published_at <= now - max_behind &&
		    runner_version_valid(rel[i].version) &&
		    (!best || runner_version_cmp(rel[i].version, best->version) > 0))
			best = &rel[i];
	str_copy(out, best ? best->version : "", cap);
}

int runner_version_note_parse(const char *data, size_t len, struct runner_version_note *ret)
{
	struct runner_version_note note = {{0}, {0}};
	size_t i = 0;

	if (len > RUNNER_VERSION_NOTE_MAX)
		return -E2BIG;
	while (i < len) {
		char line[64];
		size_t n = 0;
		char *eq, *field;

		while (i < len && data[i] != '\n') {
			if (data[i] == '\0' || n + 1 >= sizeof(line))
				return -EBADMSG;
			line[n++] = data[i++];
		}
		line[n] = '\0';
		i++; /* the newline */
		if (n == 0)
			continue;
		eq = strchr(line, '=');
		if (!eq)
			return -EBADMSG;
		*eq = '\0';
		if (strcmp(line, "image") == 0)
			field = note.image;
		else if (strcmp(line, "refused") == 0)
			field = note.refused;
		else
			return -EBADMSG;
		if (!runner_version_valid(eq + 1))
			return -EBADMSG;
		str_copy(field, eq[1] == 'v' ? eq + 2 : eq + 1, RUNNER_VERSION_MAX);
	}
	*ret = note;
	return 0;
}
