/*
 * A value's text made a typed value through its field: strings and paths
 * (relative ones resolved against the config's directory), integers,
 * durations and sizes within the field's range, booleans, enums, string
 * lists; and the defaults, which go through exactly the parse a written
 * value does. It must never look at the YAML (the walk hands it text), and
 * a message quotes a value only cut short, through config_shown().
 */
#include "util/common.h"
#include "config/config_internal.h"
#include "util/strutil.h"

int config_set_string(struct loader *l, char **slot, char *value)
{
	if (!value) {
		l->nomem = true;
		return -ENOMEM;
	}
	free(*slot);
	*slot = value;
	return 0;
}

/* A relative path joined to the config's directory; "" and absolute paths as they are. */
static char *resolve_path(struct loader *l, const char *v)
{
	char *r = NULL;

	if (!*v || v[0] == '/' || !l->basedir)
		return strdup(v);
	while (v[0] == '.' && v[1] == '/')
		for (v += 2; *v == '/'; v++)
			;
	if (!*v || strcmp(v, ".") == 0)
		return strdup(l->basedir);
	if (asprintf(&r, "%s/%s", strcmp(l->basedir, "/") == 0 ? "" : l->basedir, v) < 0)
		return NULL;
	return r;
}

static void range_message(const struct config_field *f, char *msg, size_t cap)
{
	char lo[32], hi[32];

	if (f->type == CONFIG_T_DURATION) {
		format_duration(f->min, lo, sizeof(lo));
		format_duration(f->max, hi, sizeof(hi));
	} else if (f->type == CONFIG_T_SIZE) {
		format_size(f->min, lo, sizeof(lo));
		format_size(f->max, hi, sizeof(hi));
	} else {
		snprintf(lo, sizeof(lo), "%" PRId64, f->min);
		snprintf(hi, sizeof(hi), "%" PRId64, f->max);
	}
	if (f->max == INT64_MAX)
		snprintf(msg, cap, "must be at least %s", lo);
	else
		snprintf(msg, cap, "must be between %s and %s", lo, hi);
}

static int set_int_ranged(const struct config_field *f, void *base, int r, int64_t v,
                          const char *text, const char *what, char *msg, size_t cap)
{
	char b[CONFIG_SHOWN_MAX + 8];

	if (r == -ERANGE || (r == 0 && (v < f->min || v > f->max))) {
		range_message(f, msg, cap);
		return -ERANGE;
	}
	if (r < 0) {
		snprintf(msg, cap, "invalid %s '%s'", what, config_shown(text, b, sizeof(b)));
		return -EINVAL;
	}
	*(int64_t *)config_at(base, f->off) = v;
	return 0;
}

/* A duration or a size: parse's -EINVAL says what was expected, in the unit's words. */
static int set_unit(const struct config_field *f, void *base, const char *text,
                    int (*parse)(const char *s, int64_t *ret), const char *what,
                    const char *expected, char *msg, size_t cap)
{
	char b[CONFIG_SHOWN_MAX + 8];
	int64_t v = 0;
	int r = parse(text, &v);

	if (r == -EINVAL) {
		snprintf(msg, cap, "invalid %s '%s'; expected a number and a unit%s", what,
		         config_shown(text, b, sizeof(b)), expected);
		return r;
	}
	return set_int_ranged(f, base, r, v, text, what, msg, cap);
}

/* The index of text in f->names; -1 and a message listing them when it is none of them. */
static int name_of(const struct config_field *f, const char *text, char *msg, size_t cap)
{
	char all[128], b[CONFIG_SHOWN_MAX + 8];
	int i = config_name_index(f->names, text);

	if (i < 0) {
		config_names_list(f->names, all, sizeof(all));
		snprintf(msg, cap, "'%s' is not one of: %s", config_shown(text, b, sizeof(b)), all);
	}
	return i;
}

/*
 * Parse text as the value of f and store it in base. Used for the file's
 * values (after the node's YAML type was checked) and for the defaults, so a
 * default goes through exactly the checks a written value does.
 */
int config_set_from_text(struct loader *l, const struct config_field *f, void *base,
                         const char *text, char *msg, size_t cap)
{
	int64_t v = 0;
	int r, i;

	switch (f->type) {
	case CONFIG_T_STR:
	case CONFIG_T_PATH:
		if ((f->flags & CONFIG_F_NONEMPTY) && !*text) {
			snprintf(msg, cap, "must not be empty");
			return -EINVAL;
		}
		if (f->names && name_of(f, text, msg, cap) < 0)
			return -EINVAL;
		if (f->check && !f->check(text, msg, cap))
			return -EINVAL;
		return config_set_string(l, (char **)config_at(base, f->off),
		                         f->type == CONFIG_T_PATH ? resolve_path(l, text)
		                                                  : strdup(text));
	case CONFIG_T_INT:
		r = parse_int64(text, INT64_MIN, INT64_MAX, &v);
		return set_int_ranged(f, base, r, v, text, "integer", msg, cap);
	case CONFIG_T_DURATION:
		return set_unit(f, base, text, parse_duration, "duration", ": 30s, 5m, 6h, 7d", msg,
		                cap);
	case CONFIG_T_SIZE:
		return set_unit(f, base, text, parse_size, "size", " such as 512MiB or 7GiB", msg,
		                cap);
	case CONFIG_T_BOOL:
		if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0) {
			snprintf(msg, cap, "expected true or false");
			return -EINVAL;
		}
		*(bool *)config_at(base, f->off) = strcmp(text, "true") == 0;
		return 0;
	case CONFIG_T_ENUM:
		i = name_of(f, text, msg, cap);
		if (i < 0)
			return -EINVAL;
		*(int *)config_at(base, f->off) = i;
		return 0;
	case CONFIG_T_STRV: {
		struct strv *sv = config_at(base, f->off);
		char *item = strdup(text);
		char **nv = item ? reallocarray(sv->v, sv->n + 1, sizeof(*nv)) : NULL;
		if (!nv) {
			free(item);
			l->nomem = true;
			return -ENOMEM;
		}
		sv->v = nv;
		sv->v[sv->n++] = item;
		return 0;
	}
	default:
		return 0;
	}
}

void config_apply_defaults(struct loader *l, enum config_scope scope, void *base)
{
	const char *kind = config_scope_kind(scope, base);

	for (size_t i = 0; i < config_n_fields; i++) {
		const struct config_field *f = &config_fields[i];
		char msg[256];

		if (f->scope != scope || f->type == CONFIG_T_SECTION || f->type == CONFIG_T_LIST ||
		    f->type == CONFIG_T_MAP || !config_field_applies(f, kind))
			continue;
		if (config_field_is_provider_type(f))
			continue; /* set from the entry before its defaults */
		if (!f->def && f->type == CONFIG_T_STRV)
			continue;
		if (!f->def && f->type != CONFIG_T_STR && f->type != CONFIG_T_PATH)
			continue;
		/* A NULL default of a string is "", which is not checked: "" means unset. */
		if (!f->def) {
			config_set_string(l, (char **)config_at(base, f->off), strdup(""));
			continue;
		}
		if (config_set_from_text(l, f, base, f->def, msg, sizeof(msg)) < 0 && !l->nomem)
			config_error(l, (struct pos){1, 1}, f->path, "bad built-in default: %s",
			             msg);
	}
}

void config_provider_imply(struct loader *l, struct config_provider *pv, const char *type)
{
	pv->implied = true;
	if (config_set_string(l, &pv->name, strdup(type)) == 0 &&
	    config_set_string(l, &pv->type, strdup(type)) == 0)
		config_apply_defaults(l, CONFIG_SCOPE_PROVIDER, pv);
}
