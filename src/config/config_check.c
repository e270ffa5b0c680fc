/*
 * Checks of single values (URLs, names, labels, listen addresses, CIDRs,
 * environment variable names, user names, uid ranges), as the table's
 * .check hooks and the walk call them: true, or false and a message fit to
 * follow "key: "; and the one parser of a uid range (config.h), which the
 * validation and the local provider use too. Pure: a check never looks at
 * another key, the file system or the environment, and its message never
 * quotes the value (it may be a secret written under the wrong key).
 */
#include "util/common.h"
#include "config/config_internal.h"
#include "util/strutil.h"

#include <arpa/inet.h>
#include <ctype.h>

static bool is_env_name(const char *s)
{
	if (!(isalpha((unsigned char)*s) || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return false;
	return true;
}

/* "scheme://host..." with a non-empty host and no whitespace. */
static bool url_ok(const char *s, const char *const *schemes)
{
	for (size_t i = 0; schemes[i]; i++) {
		size_t n = strlen(schemes[i]);
		if (strncmp(s, schemes[i], n) != 0)
			continue;
		if (s[n] == '\0' || s[n] == '/' || s[n] == ':' || s[n] == '?' || s[n] == '#')
			return false;
		for (const char *p = s + n; *p; p++)
			if (isspace((unsigned char)*p))
				return false;
		return true;
	}
	return false;
}

static const char *const http_schemes[] = {"https://", "http://", NULL};
static const char *const https_schemes[] = {"https://", NULL};
static const char *const proxy_schemes[] = {"http://",   "https://",   "socks4://", "socks4a://",
                                            "socks5://", "socks5h://", NULL};

bool config_check_api_url(const char *s, char *msg, size_t cap)
{
	if (url_ok(s, http_schemes))
		return true;
	snprintf(msg, cap,
	         "must be an https:// URL (http:// is allowed for tests), such as "
	         "https://api.github.com or https://HOST/api/v3");
	return false;
}

bool config_check_http_url_opt(const char *s, char *msg, size_t cap)
{
	if (!*s || url_ok(s, http_schemes))
		return true;
	snprintf(msg, cap, "must be an http:// or https:// URL");
	return false;
}

bool config_check_https_url_opt(const char *s, char *msg, size_t cap)
{
	if (!*s || url_ok(s, https_schemes))
		return true;
	snprintf(msg, cap, "must be an https:// URL");
	return false;
}

/* A host after "scheme://" and any "user:password@" ("http://u:p@:1" has none). */
static bool url_has_host(const char *s)
{
	const char *start = strstr(s, "://"), *end, *host;

	if (!start)
		return false;
	start += 3;
	end = start + strcspn(start, "/?#");
	host = start;
	for (const char *p = start; p < end; p++)
		if (*p == '@')
			host = p + 1;
	return host < end && *host != ':';
}

bool config_check_proxy_opt(const char *s, char *msg, size_t cap)
{
	if (!*s || (url_ok(s, proxy_schemes) && url_has_host(s)))
		return true;
	snprintf(msg, cap, "must be a proxy URL such as http://proxy.example:3128");
	return false;
}

static bool github_name_ok(const char *s, size_t n, size_t max, bool dots)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' ||
		      (dots && s[i] == '.')))
			return false;
	return true;
}

bool config_check_github_path(const char *s, char *msg, size_t cap)
{
	const char *slash = strchr(s, '/');
	bool ok;

	if (slash)
		ok = github_name_ok(s, (size_t)(slash - s), 39, false) &&
		     github_name_ok(slash + 1, strlen(slash + 1), 100, true) &&
		     strcmp(slash + 1, ".") != 0 && strcmp(slash + 1, "..") != 0;
	else
		ok = github_name_ok(s, strlen(s), 39, false);
	if (!ok)
		snprintf(msg, cap, "must be OWNER/REPO or an organization name");
	return ok;
}

bool config_check_env_name_opt(const char *s, char *msg, size_t cap)
{
	if (!*s || is_env_name(s))
		return true;
	snprintf(msg, cap, "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
	return false;
}

/* A name of runnerd's own (manager, flavor, provider): [a-z0-9-], 1-max characters. */
static bool name_ok(const char *s, size_t max, char *msg, size_t cap)
{
	if (name_is_valid(s, max))
		return true;
	snprintf(msg, cap,
	         "must be 1-%zu characters of a-z, 0-9 and '-', not starting or ending with '-'",
	         max);
	return false;
}

bool config_check_manager_name(const char *s, char *msg, size_t cap)
{
	return name_ok(s, MANAGER_NAME_MAX, msg, cap);
}

bool config_check_flavor_name(const char *s, char *msg, size_t cap)
{
	return name_ok(s, 63, msg, cap);
}

/* The broker's names are "<prefix>.<flavor>": the prefix is a name of ours too. */
bool config_check_queue_prefix(const char *s, char *msg, size_t cap)
{
	return name_ok(s, QUEUE_PREFIX_MAX, msg, cap);
}

bool config_check_provider_name(const char *s, char *msg, size_t cap)
{
	return name_ok(s, PROVIDER_NAME_MAX - 1, msg, cap);
}

bool config_check_user(const char *s, char *msg, size_t cap)
{
	size_t n = strlen(s);
	bool ok = n >= 1 && n <= 32 && (islower((unsigned char)s[0]) || s[0] == '_');

	for (size_t i = 1; ok && i < n; i++)
		ok = islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_' ||
		     s[i] == '-';
	if (!ok)
		snprintf(msg, cap,
		         "must be a user name ([a-z_][a-z0-9_-]*, at most 32 characters)");
	return ok;
}

/* "FIRST-LAST"; the reason it is not one in why (NULL when it is). */
static int uid_range_parse(const char *s, uint32_t *first, uint32_t *last, const char **why)
{
	const char *dash = strchr(s, '-');
	char a[16];
	int64_t lo, hi;

	*why = "must be FIRST-LAST, two decimal uids";
	if (!dash || (size_t)(dash - s) >= sizeof(a) || dash == s)
		return -EINVAL;
	memcpy(a, s, (size_t)(dash - s));
	a[dash - s] = '\0';
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p) && p != dash)
			return -EINVAL;
	if (parse_int64(a, 0, INT64_MAX, &lo) < 0 || parse_int64(dash + 1, 0, INT64_MAX, &hi) < 0)
		return -EINVAL;
	*why = "must lie within 1-2147483646, FIRST not above LAST";
	if (lo < 1 || hi > CONFIG_UID_MAX || lo > hi)
		return -EINVAL;
	*why = "must not include 65534 (nobody) or 65535 (the 16-bit -1)";
	if (lo <= 65535 && hi >= 65534)
		return -EINVAL;
	*why = NULL;
	*first = (uint32_t)lo;
	*last = (uint32_t)hi;
	return 0;
}

int config_uid_range_parse(const char *s, uint32_t *ret_first, uint32_t *ret_last)
{
	const char *why;

	return s ? uid_range_parse(s, ret_first, ret_last, &why) : -EINVAL;
}

bool config_check_uid_range(const char *s, char *msg, size_t cap)
{
	uint32_t first, last;
	const char *why;

	if (uid_range_parse(s, &first, &last, &why) == 0)
		return true;
	snprintf(msg, cap, "%s", why);
	return false;
}

bool config_check_label(const char *s, char *msg, size_t cap)
{
	size_t n = strlen(s);

	if (n == 0 || n > 256) {
		snprintf(msg, cap, "must be 1-256 characters");
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (s[i] == ',' || isspace((unsigned char)s[i])) {
			snprintf(msg, cap, "must not contain ',' or whitespace");
			return false;
		}
	return true;
}

/* An OpenStack resource name or id: 1-255 printable characters, no '/', '?', '#' or '%'. */
bool config_check_os_name(const char *s, char *msg, size_t cap)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || strchr("/?#%", s[i])) {
			snprintf(msg, cap,
			         "must not hold control characters, '/', '?', '#' or '%%'");
			return false;
		}
	if (n == 0 || n > 255) {
		snprintf(msg, cap, "must be 1-255 characters");
		return false;
	}
	return true;
}

bool config_check_os_name_opt(const char *s, char *msg, size_t cap)
{
	return !*s || config_check_os_name(s, msg, cap);
}

bool config_check_nonempty(const char *s, char *msg, size_t cap)
{
	if (*s)
		return true;
	snprintf(msg, cap, "must not be empty");
	return false;
}

/*
 * "HOST:PORT": a numeric IPv4 address, [IPv6] or "localhost" (what the HTTP
 * server binds: it resolves no other name), and a port 1-65535.
 */
bool config_check_listen_opt(const char *s, char *msg, size_t cap)
{
	const char *colon = strrchr(s, ':');
	char host[256];
	unsigned char addr[sizeof(struct in6_addr)];
	int64_t port;
	size_t n;
	bool ok = false;

	if (!*s)
		return true;
	if (!colon || parse_int64(colon + 1, 1, 65535, &port) < 0)
		goto out;
	n = (size_t)(colon - s);
	if (n == 0 || n >= sizeof(host))
		goto out;
	memcpy(host, s, n);
	host[n] = '\0';
	if (host[0] == '[') {
		if (n < 3 || host[n - 1] != ']')
			goto out;
		host[n - 1] = '\0';
		ok = inet_pton(AF_INET6, host + 1, addr) == 1;
		goto out;
	}
	if (inet_pton(AF_INET, host, addr) == 1) {
		ok = true;
		goto out;
	}
	ok = strcmp(host, "localhost") == 0;
out:
	if (!ok)
		snprintf(msg, cap,
		         "must be HOST:PORT (such as 127.0.0.1:8080 or [::1]:8080), or \"\" "
		         "to disable");
	return ok;
}

/* An IPv4 or IPv6 address with an optional /prefix in range. */
bool config_check_cidr(const char *s, char *msg, size_t cap)
{
	const char *slash = strchr(s, '/');
	unsigned char addr[sizeof(struct in6_addr)];
	char ip[INET6_ADDRSTRLEN + 1];
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	int64_t prefix;
	int family;

	if (n == 0 || n >= sizeof(ip))
		goto bad;
	memcpy(ip, s, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, addr) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, ip, addr) == 1)
		family = AF_INET6;
	else
		goto bad;
	if (slash && parse_int64(slash + 1, 0, family == AF_INET ? 32 : 128, &prefix) < 0) {
		snprintf(msg, cap, "prefix length must be 0-%d", family == AF_INET ? 32 : 128);
		return false;
	}
	return true;
bad:
	snprintf(msg, cap,
	         "must be an IPv4 or IPv6 address or CIDR, such as 10.0.0.0/8 or fd00::/8");
	return false;
}

/* An IPv4 address or CIDR (aproxy's rules are IPv4 only). */
bool config_check_cidr4(const char *s, char *msg, size_t cap)
{
	if (strchr(s, ':')) {
		snprintf(msg, cap, "must be an IPv4 address or CIDR, such as 10.0.0.0/8");
		return false;
	}
	return config_check_cidr(s, msg, cap);
}

bool config_check_port(const char *s, char *msg, size_t cap)
{
	int64_t port;

	if (parse_int64(s, 1, 65535, &port) == 0)
		return true;
	snprintf(msg, cap, "must be a TCP port, 1-65535");
	return false;
}

/* IPv4:PORT, or "" (unset). */
bool config_check_ipv4_port_opt(const char *s, char *msg, size_t cap)
{
	const char *colon = strrchr(s, ':');
	unsigned char addr[sizeof(struct in_addr)];
	char host[INET_ADDRSTRLEN + 1];
	int64_t port;
	size_t n = colon ? (size_t)(colon - s) : 0;

	if (!*s)
		return true;
	if (colon && n > 0 && n < sizeof(host) && parse_int64(colon + 1, 1, 65535, &port) == 0) {
		memcpy(host, s, n);
		host[n] = '\0';
		if (inet_pton(AF_INET, host, addr) == 1)
			return true;
	}
	snprintf(msg, cap, "must be IPV4:PORT, such as 10.0.0.1:3128");
	return false;
}
