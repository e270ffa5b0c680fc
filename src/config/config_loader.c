/*
 * One run of the loader over a config's text: its state (struct loader),
 * the errors and warnings it collects (each at a file position, handed over
 * in file order, errors at most ERRORS_MAX), the record of every key seen,
 * where a key's message points, and the run itself: the UTF-8 guard,
 * libfyaml's parse of the one document, the walk (config_walk.c), then the
 * checks of the whole (config_validate.c). It must never stop at the first
 * error, never put a secret (or free text that might be one) in a message,
 * and never hand libfyaml text that is not UTF-8.
 */
#include "util/common.h"
#include "config/config.h"
#include "config/config_internal.h"

#include <libfyaml.h>

#define ERRORS_MAX 200 /* enough to fix a file; bounded for a hostile one */

/* ---- errors and warnings ---- */

static void *grow(struct loader *l, void *v, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *nv;

	if (n < *cap)
		return v;
	ncap = *cap ? *cap * 2 : 16;
	nv = reallocarray(v, ncap, size);
	if (!nv) {
		l->nomem = true;
		return NULL;
	}
	*cap = ncap;
	return nv;
}

/* "FILE:LINE:COLUMN: [tag]path: message" added to *v. */
static void msg_add(struct loader *l, struct cerr **v, size_t *n, size_t *cap, struct pos p,
                    const char *tag, const char *path, const char *fmt, va_list ap)
        __attribute__((format(printf, 8, 0)));

static void msg_add(struct loader *l, struct cerr **v, size_t *n, size_t *cap, struct pos p,
                    const char *tag, const char *path, const char *fmt, va_list ap)
{
	char *line = NULL, msg[512];
	struct cerr *nv;
	int len;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (path && *path)
		len = asprintf(&line, "%s:%d:%d: %s%s: %s", l->name, p.line, p.col, tag, path, msg);
	else
		len = asprintf(&line, "%s:%d:%d: %s%s", l->name, p.line, p.col, tag, msg);
	nv = grow(l, *v, cap, *n, sizeof(*nv));
	if (len < 0 || !nv) {
		if (len >= 0)
			free(line);
		l->nomem = true;
		return;
	}
	*v = nv;
	(*v)[*n] = (struct cerr){p, *n, line};
	(*n)++;
}

void config_error(struct loader *l, struct pos p, const char *path, const char *fmt, ...)
{
	va_list ap;

	if (l->n_errs >= ERRORS_MAX) {
		l->errs_dropped = true;
		return;
	}
	va_start(ap, fmt);
	msg_add(l, &l->errs, &l->n_errs, &l->cap_errs, p, "", path, fmt, ap);
	va_end(ap);
}

/* A warning: the config loads, and whoever loaded it shows this once. */
void config_warn(struct loader *l, struct pos p, const char *path, const char *fmt, ...)
{
	va_list ap;

	if (l->n_warns >= ERRORS_MAX)
		return;
	va_start(ap, fmt);
	msg_add(l, &l->warns, &l->n_warns, &l->cap_warns, p, "warning: ", path, fmt, ap);
	va_end(ap);
}

static int cerr_cmp(const void *a, const void *b)
{
	const struct cerr *x = a, *y = b;

	if (x->p.line != y->p.line)
		return x->p.line < y->p.line ? -1 : 1;
	if (x->p.col != y->p.col)
		return x->p.col < y->p.col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Move the collected errors, sorted into file order, to errs. */
static void hand_errors(struct loader *l, struct config_errors *errs)
{
	char **v;
	size_t extra = l->errs_dropped ? 1 : 0;

	if (l->n_errs == 0 && !extra)
		return;
	if (l->n_errs > 1)
		qsort(l->errs, l->n_errs, sizeof(*l->errs), cerr_cmp);
	if (!errs)
		goto drop;
	v = reallocarray(errs->v, errs->n + l->n_errs + extra, sizeof(*v));
	if (!v) {
		l->nomem = true;
		goto drop;
	}
	errs->v = v;
	for (size_t i = 0; i < l->n_errs; i++)
		errs->v[errs->n++] = l->errs[i].msg;
	if (extra && asprintf(&errs->v[errs->n], "%s: too many errors; only the first %d are shown",
	                      l->name, ERRORS_MAX) >= 0)
		errs->n++;
	free(l->errs);
	l->errs = NULL;
	return;
drop:
	for (size_t i = 0; i < l->n_errs; i++)
		free(l->errs[i].msg);
	free(l->errs);
	l->errs = NULL;
}

/* Move the warnings, sorted into file order, to c->warnings. */
static void hand_warnings(struct loader *l, struct config *c)
{
	char **v = NULL;

	if (l->n_warns > 1)
		qsort(l->warns, l->n_warns, sizeof(*l->warns), cerr_cmp);
	if (c && l->n_warns > 0)
		v = reallocarray(NULL, l->n_warns, sizeof(*v));
	for (size_t i = 0; i < l->n_warns; i++) {
		if (v)
			v[i] = l->warns[i].msg;
		else
			free(l->warns[i].msg);
	}
	if (v)
		c->warnings = (struct strv){v, l->n_warns};
	free(l->warns);
	l->warns = NULL;
	l->n_warns = 0;
}

/* ---- keys seen, and where messages point ---- */

struct seen *config_seen_find(const struct loader *l, const struct config_field *f,
                              const void *base)
{
	for (size_t i = 0; i < l->n_seen; i++)
		if (l->seen[i]->f == f && l->seen[i]->base == base)
			return l->seen[i];
	return NULL;
}

/* Each entry is its own allocation: callers keep pointers across later adds. */
struct seen *config_seen_add(struct loader *l, const struct config_field *f, const void *base,
                             struct pos key, struct pos val, struct fy_node *node)
{
	struct seen **v = grow(l, l->seen, &l->cap_seen, l->n_seen, sizeof(*v));
	struct seen *s;

	if (!v)
		return NULL;
	l->seen = v;
	s = malloc(sizeof(*s));
	if (!s) {
		l->nomem = true;
		return NULL;
	}
	*s = (struct seen){f, base, key, val, node, false};
	l->seen[l->n_seen++] = s;
	return s;
}

/* "flavors[1]" for a list item, "providers.lxd-east" for a map item, "" for the root. */
void config_scope_prefix(const struct loader *l, enum config_scope scope, const void *base,
                         char *out, size_t cap)
{
	const struct config_field *lf = config_field_list_of(scope);
	size_t i;

	out[0] = '\0';
	if (scope == CONFIG_SCOPE_ROOT || !lf)
		return;
	if (lf->type == CONFIG_T_MAP) {
		const struct config_provider *pv = base;
		snprintf(out, cap, "%s.%s", lf->path, pv->name ? pv->name : "");
		return;
	}
	i = (size_t)((const char *)base - (const char *)*(void **)config_at(l->c, lf->off)) /
	    lf->elem_size;
	snprintf(out, cap, "%s[%zu]", lf->path, i);
}

/* The full key path of f in base, e.g. "flavors[1].resources.vcpu". */
void config_field_display(const struct loader *l, const struct config_field *f, const void *base,
                          char *out, size_t cap)
{
	char pre[160];

	config_scope_prefix(l, f->scope, base, pre, sizeof(pre));
	snprintf(out, cap, "%s%s%s", pre, *pre ? "." : "", f->path);
}

/* Where to point for f in base: its value, else the nearest enclosing mapping given. */
struct pos config_field_pos(const struct loader *l, const struct config_field *f, const void *base)
{
	for (const struct config_field *p = f; p; p = config_field_parent(p)) {
		struct seen *s = config_seen_find(l, p, base);
		if (s)
			return p == f ? s->val : s->key;
	}
	if (f->scope != CONFIG_SCOPE_ROOT) {
		struct seen *s = config_seen_find(l, config_field_list_of(f->scope), base);
		if (s)
			return s->val;
	}
	return l->root;
}

/* A short, printable rendering of a non-secret value for a message. */
const char *config_shown(const char *s, char *buf, size_t cap)
{
	size_t n = strlen(s);

	if (n <= CONFIG_SHOWN_MAX) {
		snprintf(buf, cap, "%s", s);
	} else {
		snprintf(buf, cap, "%.*s...", CONFIG_SHOWN_MAX, s);
	}
	return buf;
}

/* ---- the run ---- */

/*
 * The first byte that is not well-formed UTF-8 (or a NUL), *ret_pos its
 * line and column; false when the text is clean. A config is UTF-8 text,
 * and libfyaml 0.7.12 loops forever on some malformed bytes (a directive
 * line such as "%\x9c"), so nothing else reaches it.
 */
bool config_utf8_bad(const char *text, size_t len, struct pos *ret_pos)
{
	const unsigned char *s = (const unsigned char *)text;
	struct pos p = {1, 1};
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n = c < 0x80             ? 1
		           : (c & 0xe0) == 0xc0 ? 2
		           : (c & 0xf0) == 0xe0 ? 3
		           : (c & 0xf8) == 0xf0 ? 4
		                                : 0;
		uint32_t cp = n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
		if (c == 0 || n == 0 || i + n > len)
			goto bad;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		/* overlong forms, surrogates and values past U+10FFFF */
		if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			goto bad;
		if (c == '\n') {
			p.line++;
			p.col = 1;
		} else {
			p.col++;
		}
		i += n;
	}
	return false;
bad:
	*ret_pos = p;
	return true;
}

static void diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
}

/* The directory relative paths start from: the config file's, made absolute. */
static char *config_basedir(const char *name)
{
	const char *slash = strrchr(name, '/');
	char cwd[PATH_MAX], *r = NULL;
	size_t n;

	if (slash == name)
		return strdup("/");
	if (name[0] == '/')
		return strndup(name, (size_t)(slash - name));
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	if (!slash)
		return strdup(cwd);
	n = (size_t)(slash - name);
	while (n >= 2 && name[0] == '.' && name[1] == '/') {
		name += 2;
		n -= 2;
	}
	if (n == 0 || (n == 1 && name[0] == '.'))
		return strdup(cwd);
	if (asprintf(&r, "%s/%.*s", strcmp(cwd, "/") == 0 ? "" : cwd, (int)n, name) < 0)
		return NULL;
	return r;
}

static void report_diag(struct loader *l, struct fy_diag *diag)
{
	struct fy_diag_error *de;
	void *it = NULL;

	while ((de = fy_diag_errors_iterate(diag, &it)))
		if (de->type >= FYET_ERROR)
			config_error(l,
			             (struct pos){de->line > 0 ? de->line : 1,
			                          de->column > 0 ? de->column : 1},
			             NULL, "syntax error: %s", de->msg ? de->msg : "invalid YAML");
}

/* Parse the first document; a second one is an error. */
static void parse_and_walk(struct loader *l, const char *text, size_t len)
{
	struct fy_diag_cfg dcfg;
	struct fy_parse_cfg pcfg = {0};
	struct fy_diag *diag = NULL;
	struct fy_parser *fyp = NULL;
	struct fy_document *doc = NULL, *doc2 = NULL;
	bool root_ok;

	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.output_fn = diag_discard;
	diag = fy_diag_create(&dcfg);
	if (!diag)
		goto nomem;
	fy_diag_set_collect_errors(diag, true);
	/* Duplicate keys are ours to find, so every error of the file is reported. */
	pcfg.flags = FYPCF_QUIET | FYPCF_COLLECT_DIAG | FYPCF_ALLOW_DUPLICATE_KEYS;
	pcfg.diag = diag;
	fyp = fy_parser_create(&pcfg);
	if (!fyp || fy_parser_set_string(fyp, text, len) < 0)
		goto nomem;
	doc = fy_parse_load_document(fyp);
	if (doc && !fy_diag_got_error(diag)) {
		doc2 = fy_parse_load_document(fyp);
		if (doc2) {
			struct fy_document_state *st = fy_document_get_document_state(doc2);
			const struct fy_mark *m = st ? fy_document_state_start_mark(st) : NULL;
			config_error(l, (struct pos){m ? m->line + 1 : 1, m ? m->column + 1 : 1},
			             NULL, "only one YAML document is allowed");
		}
	}
	if (fy_diag_got_error(diag)) {
		report_diag(l, diag);
		goto out;
	}
	if (doc2)
		goto out;
	root_ok = config_walk(l, doc ? fy_document_root(doc) : NULL);
	if (!l->nomem)
		config_validate(l, root_ok);
	goto out;
nomem:
	l->nomem = true;
out:
	if (doc2)
		fy_parse_document_destroy(fyp, doc2);
	if (doc)
		fy_parse_document_destroy(fyp, doc);
	fy_parser_destroy(fyp);
	if (diag)
		fy_diag_destroy(diag);
}

/* file_mode: of the file text came from, 0 when none. */
int config_load_text(const char *name, const char *text, size_t len, mode_t file_mode,
                     struct config **ret, struct config_errors *errs)
{
	struct loader l = {.name = name, .root = {1, 1}, .file_mode = file_mode};
	int r = 0;

	l.c = calloc(1, sizeof(*l.c));
	l.basedir = config_basedir(name);
	if (!l.c || !(l.c->path = strdup(name))) {
		l.nomem = true;
		goto out;
	}
	config_apply_defaults(&l, CONFIG_SCOPE_ROOT, l.c);
	struct pos bad;
	if (!l.nomem && config_utf8_bad(text, len, &bad))
		config_error(&l, bad, NULL, "not valid UTF-8 text (a config file is UTF-8)");
	else if (!l.nomem)
		parse_and_walk(&l, text, len);
out:
	if (l.nomem)
		r = -ENOMEM;
	else if (l.n_errs > 0)
		r = -EINVAL;
	hand_errors(&l, errs);
	if (r == 0 && l.nomem)
		r = -ENOMEM;
	/* a warning lost to a failed allocation is only a warning: the config stands */
	hand_warnings(&l, r == 0 ? l.c : NULL);
	if (r == 0)
		*ret = l.c;
	else
		config_free(l.c);
	config_loader_release(&l);
	return r;
}

void config_loader_release(struct loader *l)
{
	for (size_t i = 0; l->errs && i < l->n_errs; i++)
		free(l->errs[i].msg);
	free(l->errs);
	for (size_t i = 0; l->warns && i < l->n_warns; i++)
		free(l->warns[i].msg);
	free(l->warns);
	for (size_t i = 0; i < l->n_seen; i++)
		free(l->seen[i]);
	free(l->seen);
	free(l->basedir);
	*l = (struct loader){.name = l->name, .c = l->c, .root = l->root};
}
