/*
 * Runner versions as GitHub enforces them (since 2026): a runner below a
 * minimum version is refused, and one whose next release came out more than
 * 30 days ago gets no job. These pure functions compare versions, say how far
 * a version is behind a list of releases, and read the note the startup
 * script leaves about the runner it ran (metrics/runner-version). No I/O.
 */
#ifndef RUNNERD_RUNNER_VERSION_H
#define RUNNERD_RUNNER_VERSION_H

#include "util/common.h"

#define RUNNER_VERSION_MAX 32 /* "2.321.0" and a margin */

/* The note the script writes next to the metrics files, and its bound. */
#define RUNNER_VERSION_NOTE     "runner-version"
#define RUNNER_VERSION_NOTE_MAX 256

/*
 * A version as GitHub names runner releases: 1 to 4 dot-separated numbers of
 * at most 9 digits each, an optional leading 'v' ("v2.321.0"). false for
 * anything else.
 */
bool runner_version_valid(const char *s);
/* <0, 0, >0 as a is older than, the same as, newer than b; invalid ones sort first. */
int runner_version_cmp(const char *a, const char *b);

/* One release: its version (no 'v') and when it was published (unix s). */
struct runner_release {
	char version[RUNNER_VERSION_MAX];
	int64_t published_at;
};

/*
 * Since when version has been behind (the publication of the oldest release
 * newer than it), 0 when none of rel (n of them, any order) is newer. A
 * version GitHub's rule would refuse jobs on is one behind for more than 30
 * days.
 */
int64_t runner_version_behind_since(const struct runner_release *rel, size_t n,
                                    const char *version);
/*
 * The oldest version that is not more than max_behind seconds behind at now:
 * the newest release published at or before now - max_behind (every older
 * version has been superseded by it for longer than that). "" when none is
 * that old (every version in the list is still fine). out has cap bytes.
 */
void runner_version_floor(const struct runner_release *rel, size_t n, int64_t now,
                          int64_t max_behind, char *out, size_t cap);

/*
 * What the startup script noted of its runner (the file RUNNER_VERSION_NOTE,
 * written by a machine a job may have controlled: parsed strictly). Lines
 * "image=V" (the image's runner was too old and was replaced from the
 * package) and "refused=V" (GitHub refused the runner's version). Fields
 * not given stay "". -EBADMSG for anything else (an unknown key, a bad
 * version, a line too long, NUL), -E2BIG over RUNNER_VERSION_NOTE_MAX.
 */
struct runner_version_note {
	char image[RUNNER_VERSION_MAX];
	char refused[RUNNER_VERSION_MAX];
};
int runner_version_note_parse(const char *data, size_t len, struct runner_version_note *ret);

#endif
