/* The shared words' spellings (util/words.h). */
#include "util/common.h"
#include "util/words.h"

static const char *const cloud_names[] = {
        [CLOUD_CREATED] = "created", [CLOUD_ACTIVE] = "active",   [CLOUD_STOPPED] = "stopped",
        [CLOUD_ERROR] = "error",     [CLOUD_DELETED] = "deleted", [CLOUD_UNKNOWN] = "unknown",
};

static const char *const github_names[] = {
        [GH_ABSENT] = "absent",   [GH_IDLE] = "idle",       [GH_BUSY] = "busy",
        [GH_OFFLINE] = "offline", [GH_UNKNOWN] = "unknown",
};

static const char *const health_names[] = {
        [HEALTH_UNKNOWN] = "unknown",
        [HEALTH_HEALTHY] = "healthy",
        [HEALTH_UNHEALTHY] = "unhealthy",
};

const char *const words_arch_names[ARCH_COUNT + 1] = {
        [ARCH_X64] = "x64", [ARCH_ARM64] = "arm64", [ARCH_COUNT] = NULL};

static const char *name_of(const char *const *names, size_t n, unsigned i)
{
	return i < n ? names[i] : "invalid";
}

static int index_of(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

const char *cloud_state_name(enum cloud_state s)
{
	return name_of(cloud_names, ARRAY_SIZE(cloud_names), (unsigned)s);
}

const char *github_state_name(enum github_state s)
{
	return name_of(github_names, ARRAY_SIZE(github_names), (unsigned)s);
}

const char *health_name(enum health h)
{
	return name_of(health_names, ARRAY_SIZE(health_names), (unsigned)h);
}

const char *arch_name(enum arch a)
{
	return name_of(words_arch_names, ARCH_COUNT, (unsigned)a);
}

int cloud_state_from_name(const char *s)
{
	return index_of(cloud_names, ARRAY_SIZE(cloud_names), s);
}

int github_state_from_name(const char *s)
{
	return index_of(github_names, ARRAY_SIZE(github_names), s);
}

int health_from_name(const char *s)
{
	return index_of(health_names, ARRAY_SIZE(health_names), s);
}

enum health health_from_state(enum cloud_state s)
{
	switch (s) {
	case CLOUD_ACTIVE:
		return HEALTH_HEALTHY;
	case CLOUD_STOPPED:
	case CLOUD_ERROR:
	case CLOUD_DELETED:
		return HEALTH_UNHEALTHY;
	default:
		return HEALTH_UNKNOWN;
	}
}

void words_implied_labels(enum arch a, const char *ret[WORDS_IMPLIED_LABELS])
{
	ret[0] = "self-hosted";
	ret[1] = "linux";
	ret[2] = arch_name(a);
}
