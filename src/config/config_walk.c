/*
 * The walk over the YAML document: each key looked up in the table for its
 * scope, its node's YAML type checked, its text handed to config_value.c;
 * sections, lists of mappings (flavors), maps of named entries (providers,
 * whose type is settled before their keys), string lists; keys that would
 * hold a secret inline refused; the old providers.lxd.type read as
 * instance_type. It must never follow a YAML alias (an alias can make the
 * document a cycle, and nothing here needs one) nor accept a tag, and never
 * stops at a bad key: every problem of the file is reported.
 */
#include "util/common.h"
#include "config/config_internal.h"

#include <ctype.h>
#include <libfyaml.h>

/* ---- YAML nodes ---- */

enum kind { K_NULL, K_BOOL, K_INT, K_FLOAT, K_STRING, K_MAPPING, K_SEQUENCE, K_ALIAS };

static const char *kind_name(enum kind k)
{
	static const char *const names[] = {"null",     "a boolean", "an integer", "a float",
	                                    "a string", "a mapping", "a sequence", "an alias"};
	return names[k];
}

static bool text_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(s, word, n) == 0;
}

static bool text_is_int(const char *s, size_t n)
{
	size_t i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;

	if (i == n)
		return false;
	for (; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* YAML 1.2 core schema floats: [-+]?(.digits|digits[.digits])([eE][-+]?digits)?, .inf, .nan */
static bool text_is_float(const char *s, size_t n)
{
	size_t i = 0, digits = 0;

	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	if (text_is(s + i, n - i, ".inf") || text_is(s + i, n - i, ".Inf") ||
	    text_is(s + i, n - i, ".INF") || text_is(s, n, ".nan") || text_is(s, n, ".NaN") ||
	    text_is(s, n, ".NAN"))
		return true;
	for (; i < n && isdigit((unsigned char)s[i]); i++)
		digits++;
	if (i < n && s[i] == '.')
		for (i++; i < n && isdigit((unsigned char)s[i]); i++)
			digits++;
	if (digits == 0)
		return false;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t e = 0;
		i++;
		if (i < n && (s[i] == '-' || s[i] == '+'))
			i++;
		for (; i < n && isdigit((unsigned char)s[i]); i++)
			e++;
		if (e == 0)
			return false;
	}
	return i == n;
}

static enum kind node_kind(struct fy_node *n)
{
	const char *s;
	size_t len = 0;

	if (!n)
		return K_NULL;
	if (fy_node_is_alias(n))
		return K_ALIAS;
	if (fy_node_get_type(n) == FYNT_MAPPING)
		return K_MAPPING;
	if (fy_node_get_type(n) == FYNT_SEQUENCE)
		return K_SEQUENCE;
	if (fy_node_get_style(n) != FYNS_PLAIN)
		return K_STRING;
	s = fy_node_get_scalar(n, &len);
	if (!s || len == 0 || text_is(s, len, "~") || text_is(s, len, "null") ||
	    text_is(s, len, "Null") || text_is(s, len, "NULL"))
		return K_NULL;
	if (text_is(s, len, "true") || text_is(s, len, "false") || text_is(s, len, "True") ||
	    text_is(s, len, "False") || text_is(s, len, "TRUE") || text_is(s, len, "FALSE"))
		return K_BOOL;
	if (text_is_int(s, len))
		return K_INT;
	if (text_is_float(s, len))
		return K_FLOAT;
	return K_STRING;
}

/* Where a node starts: its own token for a scalar, its first entry for a collection. */
struct pos config_node_pos(struct fy_node *n, struct pos fallback)
{
	for (int depth = 0; n && depth < 8; depth++) {
		void *it = NULL;

		if (fy_node_is_alias(n))
			return fallback;
		switch (fy_node_get_type(n)) {
		case FYNT_SCALAR: {
			struct fy_token *t = fy_node_get_scalar_token(n);
			const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
			enum fy_node_style st = fy_node_get_style(n);
			if (!m)
				return fallback;
			/* libfyaml marks a quoted scalar at its text; point at the quote */
			if ((st == FYNS_SINGLE_QUOTED || st == FYNS_DOUBLE_QUOTED) && m->column > 0)
				return (struct pos){m->line + 1, m->column};
			return (struct pos){m->line + 1, m->column + 1};
		}
		case FYNT_MAPPING: {
			struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
			n = p ? fy_node_pair_key(p) : NULL;
			break;
		}
		default:
			n = fy_node_sequence_iterate(n, &it);
			break;
		}
	}
	return fallback;
}

/*
 * The text of a scalar as a new string. Control characters (NUL included)
 * are refused: values end up in env files, paths and argv of helpers, where
 * a newline could inject a line. Returns NULL and sets *ret_bad for those.
 */
static char *scalar_dup_lines(struct loader *l, struct fy_node *n, bool lines, bool *ret_bad)
{
	size_t len = 0;
	const char *s = fy_node_get_scalar(n, &len);
	char *r;

	*ret_bad = false;
	if (!s)
		s = "";
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] < 0x20 || s[i] == 0x7f) &&
		    !(lines && (s[i] == '\n' || s[i] == '\t'))) {
			*ret_bad = true;
			return NULL;
		}
	r = strndup(s, len);
	if (!r)
		l->nomem = true;
	return r;
}

/* A scalar with no control character at all. */
static char *scalar_dup(struct loader *l, struct fy_node *n, bool *ret_bad)
{
	return scalar_dup_lines(l, n, false, ret_bad);
}

/* ---- the walk ---- */

/* Common checks of a value node: no aliases, no tags. */
static bool value_usable(struct loader *l, struct fy_node *v, struct pos p, const char *path)
{
	size_t tl = 0;

	if (v && fy_node_is_alias(v)) {
		config_error(l, p, path, "YAML aliases are not supported");
		return false;
	}
	if (v && fy_node_get_tag(v, &tl) && tl > 0) {
		config_error(l, p, path, "YAML tags are not supported");
		return false;
	}
	return true;
}

static void walk_mapping(struct loader *l, struct fy_node *map, enum config_scope scope, void *base,
                         const char *prefix);

/*
 * Every item is stored, a bad one too (as "" when it is not a string), so
 * item i of the strv is item i of the file for the checks that come later.
 */
static void parse_strv(struct loader *l, const struct config_field *f, void *base,
                       struct fy_node *v, struct seen *s, const char *disp)
{
	struct strv *sv = config_at(base, f->off);
	struct fy_node *item;
	void *it = NULL;
	size_t i = 0;

	/* What was written replaces the default. */
	for (size_t j = 0; j < sv->n; j++)
		free(sv->v[j]);
	free(sv->v);
	*sv = (struct strv){0};
	while ((item = fy_node_sequence_iterate(v, &it)) && !l->nomem) {
		char ipath[256], msg[256];
		struct pos p = config_node_pos(item, s->val);
		enum kind k = node_kind(item);
		bool bad = false;
		char *text = NULL;

		snprintf(ipath, sizeof(ipath), "%s[%zu]", disp, i++);
		if (!value_usable(l, item, p, ipath)) {
			bad = true;
		} else if (k == K_NULL || k == K_MAPPING || k == K_SEQUENCE) {
			config_error(l, p, ipath, "expected a string, got %s", kind_name(k));
			bad = true;
		} else {
			text = scalar_dup(l, item, &bad);
			if (bad)
				config_error(l, p, ipath, "must not contain control characters");
		}
		if (!bad && text && f->check && !f->check(text, msg, sizeof(msg)))
			config_error(l, p, ipath, "%s", msg);
		config_set_from_text(l, f, base, text ? text : "", msg, sizeof(msg));
		free(text);
	}
	s->ok = true;
}

/*
 * The array for the n items of a list or map field, and room more, zeroed;
 * NULL when n is over the field's bound (reported: what the items are
 * called) or there is no memory.
 */
static char *items_new(struct loader *l, const struct config_field *f, size_t n, size_t room,
                       const char *what, const struct seen *s, const char *disp)
{
	char *arr;

	if (n > (size_t)f->max) {
		config_error(l, s->val, disp, "at most %" PRId64 " %s are allowed", f->max, what);
		return NULL;
	}
	arr = calloc(n + room ? n + room : 1, f->elem_size);
	if (!arr)
		l->nomem = true;
	return arr;
}

static void parse_list(struct loader *l, const struct config_field *f, void *base,
                       struct fy_node *v, struct seen *s, const char *disp)
{
	size_t n = (size_t)fy_node_sequence_item_count(v), i = 0;
	struct fy_node *item;
	void *it = NULL;
	char *arr;

	arr = items_new(l, f, n, 0, "items", s, disp);
	if (!arr)
		return;
	*(void **)config_at(base, f->off) = arr;
	*(size_t *)config_at(base, f->aux) = n;
	for (i = 0; i < n; i++)
		config_apply_defaults(l, f->elem, arr + i * f->elem_size);
	s->ok = true;
	for (i = 0; (item = fy_node_sequence_iterate(v, &it)) && i < n; i++) {
		void *elem = arr + i * f->elem_size;
		struct pos p = config_node_pos(item, s->val);
		struct seen *es = config_seen_add(l, f, elem, p, p, item);
		char ipath[160];
		enum kind k = node_kind(item);

		if (!es)
			return;
		if (f->elem == CONFIG_SCOPE_FLAVOR)
			((struct config_flavor *)elem)->line = p.line;
		snprintf(ipath, sizeof(ipath), "%s[%zu]", disp, i);
		if (!value_usable(l, item, p, ipath))
			continue;
		if (k != K_MAPPING) {
			config_error(l, p, ipath, "expected a mapping, got %s", kind_name(k));
			continue;
		}
		es->ok = true;
		walk_mapping(l, item, f->elem, elem, "");
	}
}

/*
 * The type of providers.<name>: its `type` key, else its name when that is a
 * type. Before 0.2, providers.lxd.type was the LXD instance type: an entry
 * named lxd whose type is container or virtual-machine is that old form
 * (*ret_legacy; walk_mapping reads the key as instance_type). A bad `type`
 * is reported here (walk_mapping does not parse it again); the entry is
 * still walked as the type its name says, if any, so its other keys are
 * checked too. NULL when there is no type to walk it as.
 */
static const char *entry_type(struct loader *l, const char *name, struct fy_node *map,
                              struct pos kp, const char *disp, bool *ret_legacy)
{
	struct fy_node *tn = fy_node_mapping_lookup_by_string(map, "type", FY_NT);
	char all[128], b[CONFIG_SHOWN_MAX + 8], tdisp[300];
	const char *kind = NULL;
	bool bad = false;
	char *text;

	*ret_legacy = false;
	config_names_list(config_provider_types, all, sizeof(all));
	if (!tn) {
		if (config_name_index(config_provider_types, name) >= 0)
			return config_provider_types[config_name_index(config_provider_types,
			                                               name)];
		config_error(l, kp, disp,
		             "missing required key type ('%s' is not a provider type: %s)",
		             config_shown(name, b, sizeof(b)), all);
		return NULL;
	}
	snprintf(tdisp, sizeof(tdisp), "%s.type", disp);
	if (!value_usable(l, tn, config_node_pos(tn, kp), tdisp))
		return NULL;
	if (node_kind(tn) != K_STRING) {
		config_error(l, config_node_pos(tn, kp), tdisp, "expected one of: %s, got %s", all,
		             kind_name(node_kind(tn)));
		return NULL;
	}
	text = scalar_dup(l, tn, &bad);
	if (!text) {
		if (bad)
			config_error(l, config_node_pos(tn, kp), tdisp,
			             "must not contain control characters");
		return NULL;
	}
	if (config_name_index(config_provider_types, text) >= 0) {
		kind = config_provider_types[config_name_index(config_provider_types, text)];
	} else if (strcmp(name, "lxd") == 0 &&
	           config_name_index(config_lxd_type_names, text) >= 0) {
		kind = "lxd";
		*ret_legacy = true;
	} else {
		config_error(l, config_node_pos(tn, kp), tdisp,
		             "'%s' is not a provider type of this runnerd (%s)%s",
		             config_shown(text, b, sizeof(b)), all,
		             strcmp(name, "lxd") == 0
		                     ? ", nor an LXD instance type (container, virtual-machine)"
		                     : "");
		if (config_name_index(config_provider_types, name) >= 0)
			kind = config_provider_types[config_name_index(config_provider_types,
			                                               name)];
	}
	free(text);
	return kind;
}

/*
 * A mapping of names to entries (providers). Each entry's type is settled
 * first, since it decides which keys the entry may have and their defaults.
 * Room is kept for the implied entries a flavor may add later (one per type
 * at most): the seen table keeps pointers into the array, so it never moves.
 * An entry without a usable type is kept, nameless of type, so a flavor that
 * names it is not reported twice; its keys are not walked.
 */
static void parse_map(struct loader *l, const struct config_field *f, void *base, struct fy_node *v,
                      struct seen *s, const char *disp)
{
	size_t n = (size_t)fy_node_mapping_item_count(v), count = 0;
	struct fy_node_pair *pair;
	void *it = NULL;
	char *arr;

	arr = items_new(l, f, n, config_provider_type_count(), "entries", s, disp);
	if (!arr)
		return;
	*(void **)config_at(base, f->off) = arr;
	s->ok = true;
	while ((pair = fy_node_mapping_iterate(v, &it)) && !l->nomem) {
		struct fy_node *k = fy_node_pair_key(pair), *val = fy_node_pair_value(pair);
		struct config_provider *pv = (struct config_provider *)(arr + count * f->elem_size);
		struct pos kp = config_node_pos(k, s->key);
		char ipath[160], msg[256], b[CONFIG_SHOWN_MAX + 8];
		bool bad = false, legacy;
		const char *kind;
		struct seen *es;
		char *key;

		if (!k || fy_node_get_type(k) != FYNT_SCALAR || fy_node_is_alias(k)) {
			config_error(l, kp, disp, "keys must be strings");
			continue;
		}
		key = scalar_dup(l, k, &bad);
		if (!key) {
			/* scalar_dup refuses a control character by handing out nothing */
			if (bad)
				config_error(l, kp, disp,
				             "keys must not contain control characters");
			continue;
		}
		snprintf(ipath, sizeof(ipath), "%s.%s", disp, key);
		if (!config_check_provider_name(key, msg, sizeof(msg))) {
			config_error(l, kp, disp, "'%s': %s", config_shown(key, b, sizeof(b)), msg);
			free(key);
			continue;
		}
		for (size_t j = 0; j < count; j++) {
			const struct config_provider *o = (const void *)(arr + j * f->elem_size);
			if (strcmp(o->name, key) == 0) {
				config_error(l, kp, ipath, "duplicate key (first at line %d)",
				             o->line);
				bad = true;
				break;
			}
		}
		if (bad || !value_usable(l, val, kp, ipath)) {
			free(key);
			continue;
		}
		if (node_kind(val) != K_MAPPING) {
			config_error(l, kp, ipath, "expected a mapping, got %s",
			             kind_name(node_kind(val)));
			free(key);
			continue;
		}
		pv->name = key;
		pv->line = kp.line;
		*(size_t *)config_at(base, f->aux) = ++count;
		es = config_seen_add(l, f, pv, kp, kp, val);
		if (!es)
			return;
		es->ok = true;
		kind = entry_type(l, key, val, kp, ipath, &legacy);
		if (!kind)
			continue;
		if (config_set_string(l, &pv->type, strdup(kind)) < 0)
			return;
		config_apply_defaults(l, f->elem, pv);
		walk_mapping(l, val, f->elem, pv, "");
	}
}

#define KB(k) (1u << (k))

/* The YAML a value of each type may be, and what a message says instead. */
static const struct {
	unsigned kinds;       /* KB(K_...) */
	const char *expected; /* NULL: one of the field's names */
} accepted[] = {
        [CONFIG_T_SECTION] = {KB(K_MAPPING), "a mapping"},
        [CONFIG_T_LIST] = {KB(K_SEQUENCE), "a sequence of mappings"},
        [CONFIG_T_MAP] = {KB(K_MAPPING), "a mapping of names to mappings"},
        [CONFIG_T_STRV] = {KB(K_SEQUENCE), "a sequence of strings"},
        /* lenient: any scalar is its text, so `image: 2204` is the string "2204" */
        [CONFIG_T_STR] = {~(KB(K_NULL) | KB(K_MAPPING) | KB(K_SEQUENCE)), "a string"},
        [CONFIG_T_PATH] = {~(KB(K_NULL) | KB(K_MAPPING) | KB(K_SEQUENCE)), "a string"},
        [CONFIG_T_INT] = {KB(K_INT), "an integer"},
        [CONFIG_T_BOOL] = {KB(K_BOOL), "true or false"},
        [CONFIG_T_DURATION] = {KB(K_STRING) | KB(K_INT), "a duration such as 30s, 5m, 6h or 7d"},
        [CONFIG_T_SIZE] = {KB(K_STRING) | KB(K_INT), "a size such as 512MiB or 7GiB"},
        [CONFIG_T_ENUM] = {KB(K_STRING), NULL},
};
_Static_assert(ARRAY_SIZE(accepted) == CONFIG_T_STRV + 1, "a config type without its YAML");

static void parse_value(struct loader *l, const struct config_field *f, void *base,
                        struct fy_node *v, struct seen *s, const char *disp)
{
	enum kind k = node_kind(v);
	char msg[256];
	char *text;
	bool bad;

	if (!(accepted[f->type].kinds & KB(k))) {
		const char *expected = accepted[f->type].expected;
		char all[128], one_of[160];

		if (!expected) {
			config_names_list(f->names, all, sizeof(all));
			snprintf(one_of, sizeof(one_of), "one of: %s", all);
			expected = one_of;
		}
		config_error(l, s->val, disp, "expected %s, got %s", expected, kind_name(k));
		return;
	}
	switch (f->type) {
	case CONFIG_T_SECTION:
		s->ok = true;
		if (f->flags & CONFIG_F_OPTIONAL)
			*(bool *)config_at(base, f->aux) = true;
		walk_mapping(l, v, f->scope, base, f->path);
		return;
	case CONFIG_T_LIST:
		parse_list(l, f, base, v, s, disp);
		return;
	case CONFIG_T_MAP:
		parse_map(l, f, base, v, s, disp);
		return;
	case CONFIG_T_STRV:
		parse_strv(l, f, base, v, s, disp);
		return;
	default:
		break;
	}
	text = scalar_dup_lines(l, v, f->flags & CONFIG_F_LINES, &bad);
	if (bad)
		config_error(l, s->val, disp,
		             f->flags & CONFIG_F_LINES
		                     ? "must not contain control characters but newlines and tabs"
		                     : "must not contain control characters");
	if (!text)
		return;
	if (config_set_from_text(l, f, base, text, msg, sizeof(msg)) == 0)
		s->ok = true;
	else if (!l->nomem)
		config_error(l, s->val, disp, "%s", msg);
	free(text);
}

/* providers.lxd.type: container (or virtual-machine), the form before named providers. */
static bool legacy_instance_type(struct loader *l, const struct config_field *f, const void *base,
                                 struct fy_node *v)
{
	const struct config_provider *pv = base;
	bool bad = false, legacy;
	char *text;

	if (!config_field_is_provider_type(f) || !v || fy_node_get_type(v) != FYNT_SCALAR ||
	    strcmp(pv->name, "lxd") != 0 || !pv->type || strcmp(pv->type, "lxd") != 0)
		return false;
	text = scalar_dup(l, v, &bad);
	legacy = text && config_name_index(config_lxd_type_names, text) >= 0;
	free(text);
	return legacy;
}

/* Keys that would hold a secret inline; refused wherever they appear. */
static const char *const inline_secret_keys[] = {"token", "secret", "password", "uri",
                                                 "private_key"};

/* A key that names a secret: point at the *_file / *_env keys of the same mapping. */
static bool inline_secret(struct loader *l, enum config_scope scope, const char *rel,
                          const char *key, struct pos p, const char *disp)
{
	char alt[256];
	bool has_file, has_env;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(inline_secret_keys); i++)
		if (strcmp(key, inline_secret_keys[i]) == 0)
			break;
	if (i == ARRAY_SIZE(inline_secret_keys))
		return false;
	snprintf(alt, sizeof(alt), "%s_file", rel);
	has_file = config_field_find(scope, alt) != NULL;
	snprintf(alt, sizeof(alt), "%s_env", rel);
	has_env = config_field_find(scope, alt) != NULL;
	if (has_file && has_env)
		config_error(l, p, disp, "secrets are never inline; use %s_file or %s_env", key,
		             key);
	else if (has_file)
		config_error(l, p, disp, "secrets are never inline; use %s_file", key);
	else
		config_error(l, p, disp,
		             "secrets are never inline; read them from a file or the "
		             "environment");
	return true;
}

static void walk_mapping(struct loader *l, struct fy_node *map, enum config_scope scope, void *base,
                         const char *prefix)
{
	struct fy_node_pair *pair;
	char pre[160];
	void *it = NULL;

	config_scope_prefix(l, scope, base, pre, sizeof(pre));
	while ((pair = fy_node_mapping_iterate(map, &it)) && !l->nomem) {
		struct fy_node *k = fy_node_pair_key(pair), *v = fy_node_pair_value(pair);
		struct pos kp = config_node_pos(k, l->root), vp;
		char rel[256], disp[512];
		const struct config_field *f;
		const char *kind;
		struct seen *s;
		bool bad;
		char *key;

		if (node_kind(k) == K_ALIAS || !k || fy_node_get_type(k) != FYNT_SCALAR) {
			config_error(l, kp, prefix, "keys must be strings");
			continue;
		}
		key = scalar_dup(l, k, &bad);
		if (!key) {
			if (bad)
				config_error(l, kp, prefix,
				             "keys must not contain control characters");
			continue;
		}
		snprintf(rel, sizeof(rel), "%s%s%s", prefix, *prefix ? "." : "", key);
		snprintf(disp, sizeof(disp), "%s%s%s", pre, *pre ? "." : "", rel);
		/* read each time: walking the `type` key replaces the string */
		kind = config_scope_kind(scope, base);
		/* a quoted "a.b" key is one key, not a path into the table */
		f = strchr(key, '.') ? NULL : config_field_find_kind(scope, rel, kind);
		if (f && legacy_instance_type(l, f, base, v)) {
			config_warn(
			        l, kp, disp,
			        "read as instance_type (the LXD instance type); type now names the "
			        "provider type: write type: lxd and instance_type");
			f = config_field_find_kind(scope, "instance_type", kind);
		} else if (f && config_field_is_provider_type(f)) {
			/* settled (and any problem reported) by entry_type */
			if (!config_seen_find(l, f, base))
				config_seen_add(l, f, base, kp, kp, v);
			else
				config_error(l, kp, disp, "duplicate key (first at line %d)",
				             config_seen_find(l, f, base)->key.line);
			free(key);
			continue;
		}
		if (!f) {
			if (!strchr(key, '.') && config_field_find(scope, rel))
				config_error(l, kp, disp, "not a key of %s providers", kind);
			else if (!inline_secret(l, scope, rel, key, kp, disp))
				config_error(l, kp, disp, "unknown key");
			free(key);
			continue;
		}
		free(key);
		s = config_seen_find(l, f, base);
		if (s) {
			config_error(l, kp, disp, "duplicate key (first at line %d)", s->key.line);
			continue;
		}
		/* A collection's error points at its key; a scalar's at the value itself. */
		vp = (v && fy_node_get_type(v) == FYNT_SCALAR) ? config_node_pos(v, kp) : kp;
		s = config_seen_add(l, f, base, kp, vp, v);
		if (!s)
			return;
		if (!value_usable(l, v, vp, disp))
			continue;
		parse_value(l, f, base, v, s, disp);
	}
}

bool config_walk(struct loader *l, struct fy_node *root)
{
	l->root = config_node_pos(root, (struct pos){1, 1});
	if (!root)
		return true;
	if (!value_usable(l, root, l->root, NULL))
		return false;
	if (fy_node_get_type(root) != FYNT_MAPPING) {
		config_error(l, l->root, NULL, "the top level must be a mapping");
		return false;
	}
	walk_mapping(l, root, CONFIG_SCOPE_ROOT, l->c, "");
	return true;
}
