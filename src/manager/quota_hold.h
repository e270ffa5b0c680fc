/*
 * The quota hold: a provider whose cloud refused a create for quota
 * (-EDQUOT: Nova's 403 "Quota exceeded", 413) gets no create for a while,
 * so a full project is not asked again every pass (nor every webhook);
 * then one create probes it. A probe that fails holds it twice as long
 * (30 s, 60 s, ... at most 10 min); a create that succeeds ends the hold.
 * Pure: state in, counts out, no I/O, no clock, no lock (the manager holds
 * its own around it). It must never hold a provider no quota error named.
 */
#ifndef RUNNERD_MANAGER_QUOTA_HOLD_H
#define RUNNERD_MANAGER_QUOTA_HOLD_H

#include "util/common.h"
#include "provider/provider.h"

#define QUOTA_HOLD_FIRST_S 30
#define QUOTA_HOLD_MAX_S   600
#define QUOTA_HOLDS_MAX    8 /* MANAGER_MAX_PROVIDERS */

struct quota_hold {
	char provider[PROVIDER_NAME_MAX];
	char error[256];  /* the cloud's words, as the create failed */
	int64_t since;    /* the first refusal of this hold (unix s) */
	int64_t retry_at; /* no create before this; then one probe */
	int64_t hold_s;   /* how long the last refusal held it */
	bool probing;     /* a probe was let through and has not been refused */
};

struct quota_holds {
	struct quota_hold h[QUOTA_HOLDS_MAX];
	size_t n;
};

/*
 * A quota refusal of provider at now: held for QUOTA_HOLD_FIRST_S when it
 * was not; a refused probe holds it twice as long as last time; another
 * refusal while held (creates of the same pass) changes only the error.
 * Returns the seconds it is held for from its last change (0: no room to
 * note it).
 */
int64_t quota_hold_note(struct quota_holds *q, const char *provider, const char *error,
                        int64_t now);
/* A create of provider succeeded: its hold ends. True when there was one. */
bool quota_hold_clear(struct quota_holds *q, const char *provider);
/*
 * How many of want creates provider may make now: want when not held, 0
 * while held, 1 (the probe) once retry_at has come, after which retry_at
 * moves on by the last hold, so that a probe whose answer is slow in
 * coming is not followed by another in the next pass.
 */
int64_t quota_hold_allow(struct quota_holds *q, const char *provider, int64_t want, int64_t now);
/* The hold of provider, NULL when none. */
const struct quota_hold *quota_hold_find(const struct quota_holds *q, const char *provider);

#endif
