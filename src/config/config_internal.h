/*
 * What the files of src/config share: the one table that describes
 * runnerd.yaml (config_table.c), so the loader and the printer can never
 * disagree on a key's name, type, default or place; the loader's state
 * (struct loader); and what each file offers the others, declared file by
 * file. Private to src/config: nothing outside this folder may include it
 * (but the config unit test and fuzzer, should they need to).
 */
#ifndef RUNNERD_CONFIG_INTERNAL_H
#define RUNNERD_CONFIG_INTERNAL_H

#include "config/config.h"

/* What a field's offset is relative to. */
enum config_scope {
	CONFIG_SCOPE_ROOT = 0,   /* struct config */
	CONFIG_SCOPE_FLAVOR,     /* struct config_flavor, one per flavors[] item */
	CONFIG_SCOPE_SSH_DEBUG,  /* struct config_ssh_debug, one per runner.ssh_debug[] item */
	CONFIG_SCOPE_PROVIDER,   /* struct config_provider, one per providers.<name> entry */
	CONFIG_SCOPE_SNAP,       /* struct config_snap, one per runner.install.snaps[] item */
	CONFIG_SCOPE_EXECUTABLE, /* struct config_executable, one per runner.install.executables[]
	                          */
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
	CONFIG_F_LINES = 1 << 7,        /* strings: newlines and tabs allowed (a script) */
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

/* ---- config_table.c: the table and its lookups ---- */

extern const struct config_field config_fields[];
extern const size_t config_n_fields;
/* The provider types whose instances start from an image the flavor names. */
extern const char *const config_image_types[];
/* The provider types a flavor cannot imply: they need keys of their own. */
extern const char *const config_explicit_types[];
/* The LXD instance types, in enum lxd_type order. */
extern const char *const config_lxd_type_names[];

const struct config_field *config_field_find(enum config_scope scope, const char *path);
/* The key path of scope as items of this kind have it (NULL: they have none). */
const struct config_field *config_field_find_kind(enum config_scope scope, const char *path,
                                                  const char *kind);
/* The section a field sits in (NULL at the top of its scope). */
const struct config_field *config_field_parent(const struct config_field *f);
/* The CONFIG_T_LIST or _MAP field whose items have the given scope (NULL for the root). */
const struct config_field *config_field_list_of(enum config_scope scope);
/* Whether field f is a key of items of this kind (the provider type; NULL: items without one). */
bool config_field_applies(const struct config_field *f, const char *kind);
/* The kind of an item of scope at base (a provider's type), NULL when the scope has none. */
const char *config_scope_kind(enum config_scope scope, const void *base);
/* The `type` key of a provider entry: settled before the entry's other keys, by its name. */
bool config_field_is_provider_type(const struct config_field *f);
size_t config_provider_type_count(void);
/* The index of s in a NULL-ended list of names; -1 when it is not there. */
int config_name_index(const char *const *names, const char *s);
/* "a, b, c" into out (cap bytes, always terminated). */
void config_names_list(const char *const *names, char *out, size_t cap);

/* The value of a field: off bytes into base. */
static inline void *config_at(const void *base, size_t off)
{
	return (char *)base + off;
}

/* ---- config_check.c: single values, for .check (false and a message when s is refused) ---- */

bool config_check_api_url(const char *s, char *msg, size_t cap);
bool config_check_http_url_opt(const char *s, char *msg, size_t cap);
bool config_check_https_url_opt(const char *s, char *msg, size_t cap);
bool config_check_proxy_opt(const char *s, char *msg, size_t cap);
bool config_check_github_path(const char *s, char *msg, size_t cap);
bool config_check_env_name_opt(const char *s, char *msg, size_t cap);
bool config_check_manager_name(const char *s, char *msg, size_t cap);
bool config_check_flavor_name(const char *s, char *msg, size_t cap);
bool config_check_queue_prefix(const char *s, char *msg, size_t cap);
bool config_check_provider_name(const char *s, char *msg, size_t cap);
bool config_check_user(const char *s, char *msg, size_t cap);
bool config_check_uid_range(const char *s, char *msg, size_t cap);
bool config_check_label(const char *s, char *msg, size_t cap);
bool config_check_nonempty(const char *s, char *msg, size_t cap);
bool config_check_os_name(const char *s, char *msg, size_t cap);
bool config_check_os_name_opt(const char *s, char *msg, size_t cap);
bool config_check_listen_opt(const char *s, char *msg, size_t cap);
bool config_check_cidr(const char *s, char *msg, size_t cap);
bool config_check_cidr4(const char *s, char *msg, size_t cap);
bool config_check_port(const char *s, char *msg, size_t cap);
bool config_check_ipv4_port_opt(const char *s, char *msg, size_t cap);
/* config_check_install.c: what runner.install names. */
bool config_check_snap_name(const char *s, char *msg, size_t cap);
bool config_check_snap_channel(const char *s, char *msg, size_t cap);
bool config_check_executable_url(const char *s, char *msg, size_t cap);
bool config_check_command_name(const char *s, char *msg, size_t cap);
bool config_check_sha256(const char *s, char *msg, size_t cap);

/* ---- config_loader.c: one run of the loader ---- */

#define CONFIG_SHOWN_MAX 40 /* how much of a (non-secret) value a message quotes */

struct fy_node;

struct pos {
	int line, col; /* 1-based */
};

struct cerr {
	struct pos p;
	size_t seq; /* keeps the order of errors at the same position */
	char *msg;
};

/* A key found in the file: where it is, and whether its value was usable. */
struct seen {
	const struct config_field *f;
	const void *base; /* the struct the field lives in; for a list item, the item */
	struct pos key, val;
	struct fy_node *node; /* the value */
	bool ok;
};

struct loader {
	const char *name;
	char *basedir;    /* where relative paths start; NULL keeps them relative */
	mode_t file_mode; /* of the config file; 0 when it did not come from one */
	struct config *c;
	struct cerr *errs;
	size_t n_errs, cap_errs;
	bool errs_dropped;
	struct cerr *warns;
	size_t n_warns, cap_warns;
	struct seen **seen;
	size_t n_seen, cap_seen;
	struct pos root;
	bool nomem;
};

/*
 * Load text (len bytes, named name in messages) as config_load_string()
 * does; file_mode is the mode of the file it came from, 0 when none.
 */
int config_load_text(const char *name, const char *text, size_t len, mode_t file_mode,
                     struct config **ret, struct config_errors *errs);
/*
 * Free what l still holds: errors and warnings not handed over, the seen
 * keys, basedir; all of it is reset but l->name, l->root and l->c (which
 * is the caller's).
 */
void config_loader_release(struct loader *l);
/* An error "FILE:LINE:COLUMN: path: message" at p (path NULL or "": no path). */
void config_error(struct loader *l, struct pos p, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* A warning: the config loads, and whoever loaded it shows this once. */
void config_warn(struct loader *l, struct pos p, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* Key f of the struct at base as found in the file; NULL when it was not. */
struct seen *config_seen_find(const struct loader *l, const struct config_field *f,
                              const void *base);
/*
 * Whether text is not well-formed UTF-8 (or holds a NUL), and where the
 * first bad byte is: libfyaml 0.7.12 loops forever on some malformed
 * bytes, so no text that fails this may reach it.
 */
bool config_utf8_bad(const char *text, size_t len, struct pos *ret_pos);
/* Record key f of base; the entry stays put (callers keep it across later adds). */
struct seen *config_seen_add(struct loader *l, const struct config_field *f, const void *base,
                             struct pos key, struct pos val, struct fy_node *node);
/* "flavors[1]" for a list item, "providers.lxd-east" for a map item, "" for the root. */
void config_scope_prefix(const struct loader *l, enum config_scope scope, const void *base,
                         char *out, size_t cap);
/* The full key path of f in base, e.g. "flavors[1].resources.vcpu". */
void config_field_display(const struct loader *l, const struct config_field *f, const void *base,
                          char *out, size_t cap);
/* Where to point for f in base: its value, else the nearest enclosing mapping given. */
struct pos config_field_pos(const struct loader *l, const struct config_field *f, const void *base);
/* s cut to CONFIG_SHOWN_MAX characters, for a message; buf needs CONFIG_SHOWN_MAX + 8 bytes. */
const char *config_shown(const char *s, char *buf, size_t cap);

/* ---- config_value.c: text to typed values ---- */

/* Put value (NULL: out of memory) in *slot, freeing what was there. */
int config_set_string(struct loader *l, char **slot, char *value);
/*
 * Parse text as the value of f and store it in base; -errno and a message
 * (cap bytes) when it is not acceptable.
 */
int config_set_from_text(struct loader *l, const struct config_field *f, void *base,
                         const char *text, char *msg, size_t cap);
/* Every default of scope (and of base's kind) into base. */
void config_apply_defaults(struct loader *l, enum config_scope scope, void *base);
/*
 * pv (zeroed) as the provider a flavor naming type implies: named after the
 * type, of that type, every default of it. Failures are the loader's
 * (l->nomem, or an error for a bad built-in default).
 */
void config_provider_imply(struct loader *l, struct config_provider *pv, const char *type);

/* ---- config_walk.c: the YAML walk ---- */

/* Where a node starts: its own token for a scalar, its first entry for a collection. */
struct pos config_node_pos(struct fy_node *n, struct pos fallback);
/*
 * The document's root (NULL for an empty document) into l->c, every problem
 * reported; l->root is set to where the root starts. False when the root is
 * not a mapping (or not usable), so no key is missing from it as well.
 */
bool config_walk(struct loader *l, struct fy_node *root);

/* ---- config_validate.c: the file as a whole ---- */

/*
 * After the walk: every required key missing, then (when root_ok: the top
 * level was a mapping) derived values, rules across keys, flavors and
 * providers; last, key by key, secrets are loaded, files that must be
 * readable checked and URLs holding a password looked at.
 */
void config_validate(struct loader *l, bool root_ok);

/* ---- config_secrets.c: secrets, and OpenSSL ---- */

/* Read the secret the *_file or *_env field f names into its struct secret. */
void config_secret_load(struct loader *l, const struct config_field *f);
/* Wipe and free s; it is then empty. */
void config_secret_wipe(struct secret *s);

/* ---- config_print.c ---- */

/*
 * Where the password of url is: true and its offset and length (maybe 0,
 * for "user:@host") when the authority (after "scheme://", up to the first
 * '/', '?' or '#') has "user:password@" (the last '@' ends it); false when
 * it has none.
 */
bool config_url_password(const char *url, size_t *ret_off, size_t *ret_len);

#endif
