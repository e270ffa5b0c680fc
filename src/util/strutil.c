/* Strict parsers and string helpers. None of them allocate except str_dup. */
#include "util/common.h"
#include "util/strutil.h"

#include <ctype.h>

int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
	char *end;
	long long v;

	if (!s || !*s || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end != '\0')
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*ret = (int64_t)v;
	return 0;
}

/* Split "<digits><unit>"; the unit is returned as a pointer into s. */
static int split_number(const char *s, uint64_t *ret_n, const char **ret_unit)
{
	uint64_t n = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (n > (UINT64_MAX - d) / 10)
			return -ERANGE;
		n = n * 10 + d;
	}
	*ret_n = n;
	*ret_unit = p;
	return 0;
}

struct unit {
	const char *name;
	uint64_t mul;
};

/* "<digits><unit>" with the unit one of units: the number times its multiplier. */
static int parse_with_unit(const char *s, const struct unit *units, size_t n_units, int64_t *ret)
{
	const char *unit;
	uint64_t n;
	int r;

	if (!s)
		return -EINVAL;
	r = split_number(s, &n, &unit);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_units; i++) {
		if (strcmp(unit, units[i].name) != 0)
			continue;
		if (n > (uint64_t)INT64_MAX / units[i].mul)
			return -ERANGE;
		*ret = (int64_t)(n * units[i].mul);
		return 0;
	}
	return -EINVAL;
}

int parse_duration(const char *s, int64_t *ret_seconds)
{
	static const struct unit units[] = {
	        {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}, {"w", 604800}};

	return parse_with_unit(s, units, ARRAY_SIZE(units), ret_seconds);
}

int parse_size(const char *s, int64_t *ret_bytes)
{
	static const struct unit units[] = {
	        {"", 1},
	        {"B", 1},
	        {"K", 1000},
	        {"KB", 1000},
	        {"KiB", 1024},
	        {"M", 1000000},
	        {"MB", 1000000},
	        {"MiB", 1024 * 1024},
	        {"G", 1000000000},
	        {"GB", 1000000000},
	        {"GiB", 1024ULL * 1024 * 1024},
	        {"T", 1000000000000ULL},
	        {"TB", 1000000000000ULL},
	        {"TiB", 1024ULL * 1024 * 1024 * 1024},
	};

	return parse_with_unit(s, units, ARRAY_SIZE(units), ret_bytes);
}

void format_duration(int64_t seconds, char *out, size_t cap)
{
	if (seconds > 0 && seconds % 86400 == 0)
		snprintf(out, cap, "%" PRId64 "d", seconds / 86400);
	else if (seconds > 0 && seconds % 3600 == 0)
		snprintf(out, cap, "%" PRId64 "h", seconds / 3600);
	else if (seconds > 0 && seconds % 60 == 0)
		snprintf(out, cap, "%" PRId64 "m", seconds / 60);
	else
		snprintf(out, cap, "%" PRId64 "s", seconds);
}

void format_size(int64_t bytes, char *out, size_t cap)
{
	static const char *const names[] = {"TiB", "GiB", "MiB", "KiB"};
	static const int64_t muls[] = {1LL << 40, 1LL << 30, 1LL << 20, 1LL << 10};

	for (size_t i = 0; i < ARRAY_SIZE(muls); i++)
		if (bytes > 0 && bytes % muls[i] == 0) {
			snprintf(out, cap, "%" PRId64 "%s", bytes / muls[i], names[i]);
			return;
		}
	snprintf(out, cap, "%" PRId64 "B", bytes);
}

size_t str_copy(char *dst, const char *src, size_t cap)
{
	size_t n = strlen(src);
	if (cap) {
		size_t c = n < cap - 1 ? n : cap - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

bool str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *c = text; (c = strstr(c, line)); c++)
		if ((c == text || c[-1] == '\n') && (c[n] == '\n' || c[n] == '\0'))
			return true;
	return false;
}

bool str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

char *str_dup(const char *s)
{
	return s ? strdup(s) : NULL;
}

bool name_is_valid(const char *s, size_t maxlen)
{
	size_t n = 0;

	if (!s || !*s || *s == '-')
		return false;
	for (const char *p = s; *p; p++, n++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
	}
	return n <= maxlen && s[n - 1] != '-';
}

bool name_is_owned(const char *manager, const char *s)
{
	size_t m = strlen(manager);

	if (strncmp(s, manager, m) != 0 || s[m] != '-')
		return false;
	s += m + 1;
	for (int i = 0; i < 12; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[12] == '\0';
}

bool mem_equal_ct(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = 0;
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(x[i] ^ y[i]);
	return d == 0;
}

int hex_digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
