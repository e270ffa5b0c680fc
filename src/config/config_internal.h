/*
 * The one table that describes runnerd.yaml, shared by the loader
 * (config.c) and the printer (config_print.c) so the two can never disagree
 * on a key's name, type, default or place. Private to src/config: nothing
 * outside this folder may include it.
 */
#ifndef RUNNERD_CONFIG_INTERNAL_H
#define RUNNERD_CONFIG_INTERNAL_H

#include "config/config.h"

/* What a field's offset is relative to. */
enum config_scope {
	CONFIG_SCOPE_ROOT = 0,  /* struct config */
	CONFIG_SCOPE_FLAVOR,    /* struct config_flavor, one per flavors[] item */
	CONFIG_SCOPE_SSH_DEBUG, /* struct config_ssh_debug, one per runner.ssh_debug[] item */
	CONFIG_SCOPE_PROVIDER,  /* struct config_provider, one per providers.<name> entry */
};

enum config_type {
	CONFIG_T_SECTION,  /* a mapping of further fields */
	CONFIG_T_LIST,     /* a sequence of mappings, each a struct of scope elem */
	CONFIG_T_MAP,      /* a mapping of names to mappings, each a struct of scope elem */
	CONFIG_T_STR,      /* char * */
	CONFIG_T_PATH,     /* char *, relative values resolved against the config's directory */
	CONFIG_T_INT,      /* int64_t, a plain YAML integer */
	CONFIG_T_BOOL,     /* bool, true or false */
	CONFIG_T_DURATION, /* int64_t seconds, "30s", "5m", "6h", "7d" */
	CONFIG_T_SIZE,     /* int64_t bytes, "512MiB", "7GiB" */
	CONFIG_T_ENUM,     /* an enum stored as int; names[i] is value i */
	CONFIG_T_STRV,     /* struct strv, a sequence of strings */
};

enum {
	CONFIG_F_REQUIRED = 1 << 0,    /* must be given when its parent mapping is */
	CONFIG_F_OPTIONAL = 1 << 1,    /* CONFIG_T_SECTION whose presence is recorded at aux */
	CONFIG_F_NONEMPTY = 1 << 2,    /* strings: "" is refused */
	CONFIG_F_SECRET_FILE = 1 << 3, /* the value names a secret file; struct secret at aux */
	CONFIG_F_SECRET_ENV = 1 << 4,  /* the value names a secret variable; struct secret at aux */
	CONFIG_F_READABLE = 1 << 5,    /* paths: when set, must be a readable regular file */
	CONFIG_F_URL_PASSWORD = 1 << 6, /* a URL whose "user:password@" config_print() redacts */
};

struct config_field {
	enum config_scope scope;
	const char *path; /* dotted, relative to the scope: "github.app.app_id", "resources.vcpu" */
	enum config_type type;
	size_t off;      /* of the value inside the scope's struct */
	const char *def; /* default as YAML text, parsed like a value; NULL = "" / 0 / false / [] */
	int64_t min, max; /* CONFIG_T_INT, _DURATION, _SIZE; CONFIG_T_LIST, _MAP: item count */
	unsigned flags;
	const char *const
	        *names; /* CONFIG_T_ENUM names; CONFIG_T_STR allowed values (NULL-ended) */
	/* Strings and CONFIG_T_STRV items: false and a message when s is not acceptable. */
	bool (*check)(const char *s, char *msg, size_t cap);
	size_t aux; /* F_OPTIONAL: bool; F_SECRET_*: struct secret; _LIST, _MAP: size_t count */
	enum config_scope elem; /* CONFIG_T_LIST, CONFIG_T_MAP */
	size_t elem_size;       /* CONFIG_T_LIST, CONFIG_T_MAP */
	/* CONFIG_SCOPE_PROVIDER: the provider type the key belongs to; NULL = every type */
	const char *kind;
};

extern const struct config_field config_fields[];
extern const size_t config_n_fields;

/*
 * Where the password of url is: true and its offset and length (maybe 0,
 * for "user:@host") when the authority (after "scheme://", up to the first
 * '/', '?' or '#') has "user:password@" (the last '@' ends it); false when
 * it has none.
 */
bool config_url_password(const char *url, size_t *ret_off, size_t *ret_len);

/* The CONFIG_T_LIST or _MAP field whose items have the given scope (NULL for the root). */
const struct config_field *config_field_list_of(enum config_scope scope);

/* Whether field f is a key of items of this kind (the provider type; NULL: items without one). */
bool config_field_applies(const struct config_field *f, const char *kind);

/* The kind of an item of scope at base (a provider's type), NULL when the scope has none. */
const char *config_scope_kind(enum config_scope scope, const void *base);

#endif
