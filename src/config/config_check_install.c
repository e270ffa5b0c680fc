/*
 * Checks of what runner.install names (snaps and executables the startup
 * script installs before the runner starts): a snap's name and channel, an
 * executable's URL, command name and sha256. Each value ends up inside an
 * instance's shell script and command line (quoted, but still): these
 * checks keep them to forms snapd and a file system take, so a bad config
 * fails at check-config with its FILE:LINE:COLUMN, never in an instance.
 * Pure, and a message never quotes the value.
 */
#include "util/common.h"
#include "config/config_internal.h"
#include "util/strutil.h"

bool config_check_snap_name(const char *s, char *msg, size_t cap)
{
	if (name_is_valid(s, 40))
		return true;
	snprintf(msg, cap, "must be a snap name: 1 to 40 of a-z, 0-9 and '-', not at either end");
	return false;
}

static bool is_risk(const char *s, size_t n)
{
	static const char *const risks[] = {"stable", "candidate", "beta", "edge"};

	for (size_t i = 0; i < ARRAY_SIZE(risks); i++)
		if (strlen(risks[i]) == n && strncmp(s, risks[i], n) == 0)
			return true;
	return false;
}

/* A track or a branch: [a-z0-9], then [a-z0-9.+_-], at most 64. */
static bool is_word(const char *s, size_t n)
{
	if (n == 0 || n > 64 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		      s[i] == '+' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

bool config_check_snap_channel(const char *s, char *msg, size_t cap)
{
	const char *part[4];
	size_t len[4], n = 0;
	bool ok = false;

	for (const char *p = s;; p++) {
		const char *slash = strchr(p, '/');
		size_t l = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 3)
			goto out;
		part[n] = p;
		len[n++] = l;
		if (!slash)
			break;
		p = slash;
	}
	/* RISK, TRACK/RISK, RISK/BRANCH, TRACK/RISK/BRANCH, as snapd names channels */
	if (n == 1)
		ok = is_risk(part[0], len[0]);
	else if (n == 2)
		ok = (is_word(part[0], len[0]) && is_risk(part[1], len[1])) ||
		     (is_risk(part[0], len[0]) && is_word(part[1], len[1]));
	else
		ok = is_word(part[0], len[0]) && is_risk(part[1], len[1]) &&
		     is_word(part[2], len[2]);
out:
	if (!ok)
		snprintf(msg, cap,
		         "must be a snap channel: RISK, TRACK/RISK, RISK/BRANCH or "
		         "TRACK/RISK/BRANCH, RISK one of stable, candidate, beta, edge "
		         "(e.g. latest/stable, 3.x/edge)");
	return ok;
}

/* https://, or http:// to this machine only (a test server on loopback). */
bool config_check_executable_url(const char *s, char *msg, size_t cap)
{
	static const char *const loopback[] = {"http://127.0.0.1:", "http://127.0.0.1/",
	                                       "http://localhost:", "http://localhost/",
	                                       "http://[::1]:",     "http://[::1]/"};
	bool ok = str_has_prefix(s, "https://") && s[8] && s[8] != '/';

	for (size_t i = 0; !ok && i < ARRAY_SIZE(loopback); i++)
		ok = str_has_prefix(s, loopback[i]);
	for (const char *p = s; ok && *p; p++)
		ok = (unsigned char)*p > ' ' && *p != 0x7f;
	if (!ok)
		snprintf(msg, cap,
		         "must be an https:// URL (http:// only to 127.0.0.1, localhost or [::1], "
		         "for tests)");
	return ok;
}

bool config_check_command_name(const char *s, char *msg, size_t cap)
{
	size_t n = strlen(s);
	bool ok = n > 0 && n <= 64 && s[0] != '.' && s[0] != '-';

	for (size_t i = 0; ok && i < n; i++)
		ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		     (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-';
	if (!ok)
		snprintf(msg, cap,
		         "must be a command name: 1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-', not "
		         "starting with '.' or '-'");
	return ok;
}

bool config_check_sha256(const char *s, char *msg, size_t cap)
{
	size_t n = 0;

	while (s[n] && hex_digit_value(s[n]) >= 0)
		n++;
	if (n == 64 && !s[n])
		return true;
	snprintf(msg, cap, "must be a sha256: 64 hex digits");
	return false;
}
