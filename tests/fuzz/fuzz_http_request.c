/*
 * libFuzzer target: what runnerd parses of an HTTP request itself, from
 * untrusted bytes. http_parse.c has split the request line and headers
 * (tests/fuzz/fuzz_http_head.c fuzzes that);
 * the server then picks the route for the method and path (404, or 405
 * with an Allow list), decides whether a body may come from Content-Length
 * and Transfer-Encoding, and splits the query that http_request_arg reads
 * (the control API's flush reads ?busy=1; its routes take no body, so no
 * JSON comes this way). Input: the method, the request target, the
 * Content-Length value and the Transfer-Encoding value, one per line
 * (a missing line is an absent header). Whatever the input, nothing
 * crashes, leaks or reads out of bounds (ASan+UBSan), every answer agrees
 * with the route table, and a parsed query encoded again parses back to
 * the same arguments.
 */
#include "util/common.h"
#include "http/server.h"
#include "util/buf.h"
#include "util/strutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void h_none(void *ctx, const struct http_request *req, struct http_response *resp)
{
}

/* The control API (src/cmd_serve.c), and what the same server serves on TCP. */
static const struct http_route routes[] = {
        {"GET", "/v1/status", h_none, 0},       {"POST", "/v1/reconcile", h_none, 0},
        {"POST", "/v1/flush", h_none, 0},       {"POST", "/v1/drain", h_none, 0},
        {"POST", "/v1/resume", h_none, 0},      {"POST", "/webhook", h_none, 25 << 20},
        {"GET", "/healthz", h_none, 0},         {"GET", "/metrics", h_none, 0},
        {"DELETE", "/v1/runners/*", h_none, 0}, {"POST", "/v1/runners/*", h_none, 16},
};

static bool path_matches(const char *pattern, const char *path)
{
	size_t n = strlen(pattern);

	if (n >= 2 && strcmp(pattern + n - 2, "/*") == 0)
		return strncmp(path, pattern, n - 1) == 0 && strlen(path) > n - 1;
	return strcmp(pattern, path) == 0;
}

static bool serves(const struct http_route *rt, const char *method)
{
	return strcmp(rt->method, method) == 0 ||
	       (strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0);
}

/* Every method in allow ("A, B") belongs to a route of path, none serves method. */
static void check_allow(const char *allow, const char *path, const char *method)
{
	char copy[256];
	char *p = copy;

	if (strlen(allow) >= sizeof(copy))
		abort();
	memcpy(copy, allow, strlen(allow) + 1);
	while (*p) {
		char *sep = strstr(p, ", ");
		bool known = false;

		if (sep)
			*sep = '\0';
		for (size_t i = 0; i < ARRAY_SIZE(routes); i++)
			if (path_matches(routes[i].path, path) &&
			    (strcmp(routes[i].method, p) == 0 ||
			     (strcmp(p, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)))
				known = true;
		if (!known || strcmp(p, method) == 0)
			abort();
		p = sep ? sep + 2 : p + strlen(p);
	}
}

static void check_route(const char *method, const char *path, const char *length,
                        const char *encoding)
{
	const struct http_route *rt = NULL;
	char allow[256];
	int r = http_route_find(routes, ARRAY_SIZE(routes), method, path, &rt);
	size_t n = http_route_allow(routes, ARRAY_SIZE(routes), path, allow, sizeof(allow));

	if (n != strlen(allow))
		abort();
	if (r == 0) {
		if (rt < routes || rt >= routes + ARRAY_SIZE(routes) ||
		    !path_matches(rt->path, path) || !serves(rt, method) || n == 0)
			abort();
		int st = http_body_admit(rt, length, encoding);
		if (st != 0 && st != 400 && st != 413)
			abort();
		if (st == 0 && length &&
		    (strspn(length, "0123456789") != strlen(length) ||
		     strtoull(length, NULL, 10) > rt->max_body))
			abort();
		if (st == 0 && encoding && rt->max_body == 0)
			abort();
	} else if (r == -EOPNOTSUPP) {
		if (n == 0)
			abort();
		for (size_t i = 0; i < ARRAY_SIZE(routes); i++)
			if (path_matches(routes[i].path, path) && serves(&routes[i], method))
				abort();
		check_allow(allow, path, method);
	} else if (r == -ENOENT) {
		if (n != 0)
			abort();
	} else {
		abort();
	}
}

/* Percent-encode all but unreserved characters, so the text parses back exactly. */
static void encode(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
			(void)buf_append(b, p, 1);
		} else {
			char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			(void)buf_append(b, esc, sizeof(esc));
		}
	}
}

static void check_query(const char *raw)
{
	struct http_query q, again;
	struct buf b = BUF_INIT(1 << 20);
	int r = http_query_parse(raw, &q);

	if (r == -EINVAL || r == -E2BIG || r == -ENOMEM)
		return;
	if (r != 0 || q.n > HTTP_QUERY_MAX_ARGS)
		abort();
	for (size_t i = 0; i < q.n; i++) {
		const char *first = http_query_get(&q, q.args[i].name);
		if (!first)
			abort();
		if (i)
			(void)buf_puts(&b, "&");
		encode(&b, q.args[i].name);
		/* "name" and "name=" both give "": the '=' keeps an empty name apart */
		(void)buf_puts(&b, "=");
		encode(&b, q.args[i].value);
	}
	/* the control API's flush reads busy like this */
	(void)str_eq(http_query_get(&q, "busy"), "1");
	if (http_query_parse(buf_str(&b), &again) != 0 || again.n != q.n)
		abort();
	for (size_t i = 0; i < q.n; i++)
		if (strcmp(again.args[i].name, q.args[i].name) != 0 ||
		    strcmp(again.args[i].value, q.args[i].value) != 0)
			abort();
	http_query_release(&again);
	http_query_release(&q);
	buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *field[4] = {NULL, NULL, NULL, NULL}, *p, *query;
	size_t n = 0;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	/* a NUL ends the input, as it ends a C string in the server */
	for (p = text; n < ARRAY_SIZE(field); n++) {
		char *nl = strchr(p, '\n');
		field[n] = p;
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	if (!field[1]) {
		free(text);
		return 0;
	}
	query = strchr(field[1], '?');
	if (query)
		*query++ = '\0';
	check_route(field[0], field[1], field[2], field[3]);
	check_query(query);
	free(text);
	return 0;
}
