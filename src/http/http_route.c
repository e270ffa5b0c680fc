/*
 * What runnerd reads of a request itself, as pure functions over strings
 * (no I/O, no allocation but the query's one copy): the route a method and
 * path select, the Allow list of a 405, whether a body may come, and the
 * query's arguments. http_parse.c has parsed the request line and headers
 * before; these take its strings as untrusted, and
 * tests/fuzz/fuzz_http_request.c drives them with any bytes. They must never
 * read past a string, write past a caller's buffer, or accept what they
 * cannot represent exactly (a query value with a NUL in it, a length that
 * overflows).
 */
#include "util/common.h"
#include "http/http_internal.h"
#include "util/strutil.h"

/* ---- routes ------------------------------------------------------------- */

/* An exact path, or "/prefix/" followed by "*": a non-empty rest. */
static bool path_matches(const char *pattern, const char *path)
{
	size_t n = strlen(pattern);

	if (n >= 2 && pattern[n - 2] == '/' && pattern[n - 1] == '*')
		return strncmp(path, pattern, n - 1) == 0 && path[n - 1] != '\0';
	return strcmp(pattern, path) == 0;
}

static bool method_matches(const char *route_method, const char *method)
{
	return strcmp(route_method, method) == 0 ||
	       (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

int http_route_find(const struct http_route *routes, size_t n_routes, const char *method,
                    const char *path, const struct http_route **ret)
{
	bool path_known = false;

	for (size_t i = 0; i < n_routes; i++) {
		if (!path_matches(routes[i].path, path))
			continue;
		path_known = true;
		if (method_matches(routes[i].method, method)) {
			*ret = &routes[i];
			return 0;
		}
	}
	return path_known ? -EOPNOTSUPP : -ENOENT;
}

/* Append ", " (unless first) and word, whole or not at all. */
static bool allow_add(char *out, size_t cap, size_t *used, const char *word)
{
	size_t sep = *used ? 2 : 0, n = strlen(word);

	if (*used + sep + n + 1 > cap)
		return false;
	memcpy(out + *used, ", ", sep);
	memcpy(out + *used + sep, word, n);
	*used += sep + n;
	out[*used] = '\0';
	return true;
}

size_t http_route_allow(const struct http_route *routes, size_t n_routes, const char *path,
                        char *out, size_t cap)
{
	size_t used = 0;

	if (cap == 0)
		return 0;
	out[0] = '\0';
	for (size_t i = 0; i < n_routes; i++) {
		const char *m = routes[i].method;
		bool seen = false;

		if (!path_matches(routes[i].path, path))
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(routes[j].method, m) == 0 &&
			       path_matches(routes[j].path, path);
		if (seen || !allow_add(out, cap, &used, m))
			continue;
		if (strcmp(m, "GET") == 0)
			(void)allow_add(out, cap, &used, "HEAD");
	}
	return used;
}

int http_body_admit(const struct http_route *route, const char *content_length,
                    const char *transfer_encoding)
{
	uint64_t n;

	if (content_length) {
		int r = http_parse_length(content_length, &n);
		if (r == -EINVAL)
			return 400;
		if (r < 0 || n > route->max_body)
			return 413;
	}
	/* A chunked body's size is unknown up front: refused only where none may come. */
	if (transfer_encoding && route->max_body == 0)
		return 413;
	return 0;
}

/* ---- query -------------------------------------------------------------- */

/* Decode s[0..n) in place (%XX; nothing else changes) and NUL-terminate it. */
static int decode_in_place(char *s, size_t n)
{
	size_t w = 0;

	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (s[i] != '%') {
			s[w++] = s[i];
			continue;
		}
		if (i + 2 >= n)
			return -EINVAL;
		hi = hex_digit_value(s[i + 1]);
		lo = hex_digit_value(s[i + 2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -EINVAL;
		s[w++] = (char)(hi << 4 | lo);
		i += 2;
	}
	s[w] = '\0';
	return 0;
}

int http_query_parse(const char *raw, struct http_query *ret)
{
	struct http_query q = {0};
	char *p, *end;
	int r = 0;

	if (!raw || !*raw) {
		*ret = q;
		return 0;
	}
	q.text = strdup(raw);
	if (!q.text)
		return -ENOMEM;
	p = q.text;
	end = q.text + strlen(q.text);
	while (p < end && r == 0) {
		char *amp = memchr(p, '&', (size_t)(end - p));
		char *stop = amp ? amp : end;
		char *eq = memchr(p, '=', (size_t)(stop - p));

		if (stop == p) { /* "a=1&&b": an empty argument is no argument */
			p = stop + 1;
			continue;
		}
		if (q.n == HTTP_QUERY_MAX_ARGS) {
			r = -E2BIG;
			break;
		}
		if (eq) {
			r = decode_in_place(eq + 1, (size_t)(stop - eq - 1));
			if (r == 0)
				r = decode_in_place(p, (size_t)(eq - p));
			q.args[q.n].value = eq + 1;
		} else {
			r = decode_in_place(p, (size_t)(stop - p));
			q.args[q.n].value = "";
		}
		q.args[q.n].name = p;
		q.n++;
		p = stop + 1;
	}
	if (r < 0) {
		free(q.text);
		return r;
	}
	*ret = q;
	return 0;
}

const char *http_query_get(const struct http_query *q, const char *name)
{
	for (size_t i = 0; i < q->n; i++)
		if (strcmp(q->args[i].name, name) == 0)
			return q->args[i].value;
	return NULL;
}

void http_query_release(struct http_query *q)
{
	if (!q)
		return;
	free(q->text);
	memset(q, 0, sizeof(*q));
}
