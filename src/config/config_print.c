/*
 * config_print(): the effective configuration as YAML, driven by the same
 * field table as the loader, so every key appears (defaults filled in) in
 * the table's order, and the output loads back to the same config. It must
 * never print a secret: secrets live in struct secret, which this file never
 * reads; only the *_file / *_env keys that name them are printed. The one
 * secret a config may hold itself, a URL's password (a proxy's), is printed
 * as CONFIG_REDACTED, which prints the same when loaded back (the round trip
 * keeps its text, not the password).
 */
#include "util/common.h"
#include "config/config.h"
#include "config/config_internal.h"
#include "util/strutil.h"

#include <ctype.h>

/* A plain YAML scalar would be read back as something else, or not at all. */
static bool needs_quotes(const char *s, bool flow)
{
	static const char *const words[] = {"true", "false", "yes", "no",   "on",
	                                    "off",  "y",     "n",   "null", "~"};
	char *end;

	if (!*s || !(isalnum((unsigned char)s[0]) || s[0] == '/' || s[0] == '_'))
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		if (strcasecmp(s, words[i]) == 0)
			return true;
	for (const char *p = s; *p; p++) {
		if (isalnum((unsigned char)*p) || strchr("_./@+-=", *p))
			continue;
		if (*p == ':' && !flow && p[1] != '\0')
			continue;
		return true;
	}
	/* numbers stay strings when read back, but quoting keeps a reader from doubt */
	errno = 0;
	(void)strtod(s, &end);
	return *end == '\0';
}

static int put_string(struct buf *out, const char *s, bool flow)
{
	int r = 0;

	if (!needs_quotes(s, flow))
		return buf_puts(out, s);
	r = buf_puts(out, "\"");
	for (const char *p = s; *p && r == 0; p++) {
		if (*p == '"' || *p == '\\')
			r = buf_printf(out, "\\%c", *p);
		else if ((unsigned char)*p < 0x20 || *p == 0x7f)
			r = buf_printf(out, "\\x%02x", (unsigned char)*p);
		else
			r = buf_append(out, p, 1);
	}
	return r < 0 ? r : buf_puts(out, "\"");
}

bool config_url_password(const char *url, size_t *ret_off, size_t *ret_len)
{
	const char *start = url, *p = url, *end, *at = NULL, *colon;

	/* a scheme is [A-Za-z][A-Za-z0-9+.-]* then "://"; without one, all is authority */
	if (isalpha((unsigned char)*p)) {
		while (isalnum((unsigned char)*p) || *p == '+' || *p == '.' || *p == '-')
			p++;
		if (strncmp(p, "://", 3) == 0)
			start = p + 3;
	}
	end = start + strcspn(start, "/?#");
	for (p = start; p < end; p++)
		if (*p == '@')
			at = p;
	if (!at)
		return false;
	colon = memchr(start, ':', (size_t)(at - start));
	if (!colon)
		return false;
	*ret_off = (size_t)(colon + 1 - url);
	*ret_len = (size_t)(at - (colon + 1));
	return true;
}

/* Append n bytes of s to buf (cap bytes, *len used, room kept for the NUL). */
static void put_cut(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
	if (n > cap - 1 - *len)
		n = cap - 1 - *len;
	memcpy(buf + *len, s, n);
	*len += n;
}

const char *config_redact_url(const char *url, char *buf, size_t cap)
{
	size_t off, plen, len = 0;

	if (cap == 0)
		return "";
	if (!url)
		url = "";
	/* an empty password ("user:@host") has nothing to hide and stays as written */
	if (config_url_password(url, &off, &plen) && plen > 0) {
		put_cut(buf, cap, &len, url, off);
		put_cut(buf, cap, &len, CONFIG_REDACTED, strlen(CONFIG_REDACTED));
		put_cut(buf, cap, &len, url + off + plen, strlen(url + off + plen));
	} else {
		put_cut(buf, cap, &len, url, strlen(url));
	}
	buf[len] = '\0';
	return buf;
}

/* The parent of "a.b.c" is "a.b"; of "a" it is "". */
static bool is_child_of(const struct config_field *f, const char *prefix)
{
	const char *dot = strrchr(f->path, '.');
	size_t n = dot ? (size_t)(dot - f->path) : 0;

	return strlen(prefix) == n && strncmp(f->path, prefix, n) == 0;
}

static const char *last_key(const struct config_field *f)
{
	const char *dot = strrchr(f->path, '.');
	return dot ? dot + 1 : f->path;
}

static int print_scope(struct buf *out, enum config_scope scope, const void *base,
                       const char *prefix, int indent, bool first_dash);

static int print_value(struct buf *out, const struct config_field *f, const void *base)
{
	char tmp[64];
	int r = 0;

	switch (f->type) {
	case CONFIG_T_STR:
	case CONFIG_T_PATH: {
		const char *s = *(char *const *)config_at(base, f->off);
		size_t cap = strlen(s) + sizeof(CONFIG_REDACTED);
		char *red;

		if (!(f->flags & CONFIG_F_URL_PASSWORD))
			return put_string(out, s, false);
		red = malloc(cap);
		if (!red)
			return -ENOMEM;
		r = put_string(out, config_redact_url(s, red, cap), false);
		free(red);
		return r;
	}
	case CONFIG_T_INT:
		return buf_printf(out, "%" PRId64, *(const int64_t *)config_at(base, f->off));
	case CONFIG_T_BOOL:
		return buf_puts(out, *(const bool *)config_at(base, f->off) ? "true" : "false");
	case CONFIG_T_DURATION:
		format_duration(*(const int64_t *)config_at(base, f->off), tmp, sizeof(tmp));
		return buf_puts(out, tmp);
	case CONFIG_T_SIZE:
		format_size(*(const int64_t *)config_at(base, f->off), tmp, sizeof(tmp));
		return buf_puts(out, tmp);
	case CONFIG_T_ENUM:
		return buf_puts(out, f->names[*(const int *)config_at(base, f->off)]);
	case CONFIG_T_STRV: {
		const struct strv *sv = config_at(base, f->off);
		r = buf_puts(out, "[");
		for (size_t i = 0; i < sv->n && r == 0; i++) {
			if (i > 0)
				r = buf_puts(out, ", ");
			if (r == 0)
				r = put_string(out, sv->v[i], true);
		}
		return r < 0 ? r : buf_puts(out, "]");
	}
	default:
		return 0;
	}
}

/*
 * The items of a list (each a "- " item) or of a map of named entries (each
 * its name, then its fields, those of its kind, indented under it).
 */
static int print_items(struct buf *out, const struct config_field *f, const void *base, int indent)
{
	const char *arr = *(char *const *)config_at(base, f->off);
	size_t n = *(const size_t *)config_at(base, f->aux);
	bool map = f->type == CONFIG_T_MAP;
	int r;

	if (n == 0)
		return buf_puts(out, map ? " {}\n" : " []\n");
	r = buf_puts(out, "\n");
	for (size_t i = 0; i < n && r == 0; i++) {
		const void *item = arr + i * f->elem_size;
		if (map) {
			r = buf_printf(out, "%*s", indent + 2, "");
			if (r == 0)
				r = put_string(out, *(char *const *)item, false);
			if (r == 0)
				r = buf_puts(out, ":\n");
		}
		if (r == 0)
			r = print_scope(out, f->elem, item, "", indent + 4, !map);
	}
	return r;
}

/*
 * The fields of scope directly under prefix, at indent. For a list item
 * (first_dash) the first line carries the "- " in its last two columns.
 */
static int print_scope(struct buf *out, enum config_scope scope, const void *base,
                       const char *prefix, int indent, bool first_dash)
{
	const char *kind = config_scope_kind(scope, base);
	int r = 0;

	for (size_t i = 0; i < config_n_fields && r == 0; i++) {
		const struct config_field *f = &config_fields[i];

		if (f->scope != scope || !is_child_of(f, prefix) || !config_field_applies(f, kind))
			continue;
		if (f->type == CONFIG_T_SECTION && (f->flags & CONFIG_F_OPTIONAL) &&
		    !*(const bool *)config_at(base, f->aux))
			continue;
		if (first_dash)
			r = buf_printf(out, "%*s- %s:", indent - 2, "", last_key(f));
		else
			r = buf_printf(out, "%*s%s:", indent, "", last_key(f));
		first_dash = false;
		if (r < 0)
			break;
		if (f->type == CONFIG_T_SECTION) {
			r = buf_puts(out, "\n");
			if (r == 0)
				r = print_scope(out, scope, base, f->path, indent + 2, false);
		} else if (f->type == CONFIG_T_LIST || f->type == CONFIG_T_MAP) {
			r = print_items(out, f, base, indent);
		} else {
			r = buf_puts(out, " ");
			if (r == 0)
				r = print_value(out, f, base);
			if (r == 0)
				r = buf_puts(out, "\n");
		}
	}
	return r;
}

int config_print(const struct config *c, struct buf *out)
{
	return print_scope(out, CONFIG_SCOPE_ROOT, c, "", 0, false);
}
