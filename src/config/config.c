/*
 * The config loader's public face (config.h): loading a file or a buffer,
 * freeing a config (its secrets wiped), the lookups of flavors and
 * providers, a provider implied by its type, and the secret files a job must
 * never read. The loading itself is config_loader.c's. It must never parse
 * or check a value itself: every key's meaning is in the table
 * (config_table.c), so a key added there is loaded, freed and compared
 * without a change here.
 */
#include "util/common.h"
#include "config/config.h"
#include "config/config_internal.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#define CONFIG_FILE_MAX (1024 * 1024) /* an operator's file; anything larger is a mistake */

int config_load_string(const char *name, const char *text, size_t len, struct config **ret,
                       struct config_errors *errs)
{
	return config_load_text(name, text, len, 0, ret, errs);
}

int config_load(const char *path, struct config **ret, struct config_errors *errs)
{
	struct buf b = BUF_INIT(CONFIG_FILE_MAX);
	struct err e = {0};
	struct stat st;
	int r;

	r = file_read(path, CONFIG_FILE_MAX, false, &b, &e);
	if (r < 0) {
		char *line = NULL;
		char **v = errs ? reallocarray(errs->v, errs->n + 1, sizeof(*v)) : NULL;
		if (v) {
			errs->v = v;
			/* e.msg starts with the path already */
			if (asprintf(&line, "%s", e.msg) >= 0)
				errs->v[errs->n++] = line;
		}
		return r;
	}
	/* only for a warning: a file swapped since it was read costs a warning, no more */
	if (stat(path, &st) < 0)
		st.st_mode = 0;
	r = config_load_text(path, buf_str(&b), b.len, st.st_mode, ret, errs);
	buf_release(&b);
	return r;
}

static void free_scope(enum config_scope scope, void *base)
{
	for (size_t i = 0; i < config_n_fields; i++) {
		const struct config_field *f = &config_fields[i];

		if (f->scope != scope)
			continue;
		switch (f->type) {
		case CONFIG_T_STR:
		case CONFIG_T_PATH:
			free(*(char **)config_at(base, f->off));
			*(char **)config_at(base, f->off) = NULL;
			break;
		case CONFIG_T_STRV:
			strv_release(config_at(base, f->off));
			break;
		case CONFIG_T_LIST:
		case CONFIG_T_MAP: {
			char *arr = *(char **)config_at(base, f->off);
			size_t n = *(size_t *)config_at(base, f->aux);
			for (size_t j = 0; arr && j < n; j++) {
				free_scope(f->elem, arr + j * f->elem_size);
				/* a map item's key is its first member */
				if (f->type == CONFIG_T_MAP)
					free(*(char **)(arr + j * f->elem_size));
			}
			free(arr);
			*(char **)config_at(base, f->off) = NULL;
			*(size_t *)config_at(base, f->aux) = 0;
			break;
		}
		default:
			break;
		}
		/* every secret has a *_file key: wipe it once, from there */
		if (f->flags & CONFIG_F_SECRET_FILE)
			config_secret_wipe(config_at(base, f->aux));
	}
}

void config_free(struct config *c)
{
	if (!c)
		return;
	free_scope(CONFIG_SCOPE_ROOT, c);
	strv_release(&c->warnings);
	free(c->path);
	free(c);
}

void config_errors_release(struct config_errors *errs)
{
	if (!errs)
		return;
	for (size_t i = 0; i < errs->n; i++)
		free(errs->v[i]);
	free(errs->v);
	errs->v = NULL;
	errs->n = 0;
}

const struct config_provider *config_provider_find(const struct config *c, const char *name)
{
	for (size_t i = 0; c && name && i < c->n_providers; i++)
		if (c->providers[i].name && strcmp(c->providers[i].name, name) == 0)
			return &c->providers[i];
	return NULL;
}

int config_provider_implied(const char *type, struct config_provider **ret)
{
	struct loader l = {.name = "(defaults)", .root = {1, 1}};
	struct config_provider *pv;
	int r = 0;

	if (!type || config_name_index(config_provider_types, type) < 0 ||
	    config_name_index(config_explicit_types, type) >= 0)
		return -EINVAL;
	pv = calloc(1, sizeof(*pv));
	if (!pv)
		return -ENOMEM;
	config_provider_imply(&l, pv, type);
	if (l.nomem)
		r = -ENOMEM;
	else if (l.n_errs)
		r = -EINVAL; /* a bad built-in default: every test would see it */
	config_loader_release(&l);
	if (r < 0) {
		config_provider_free(pv);
		return r;
	}
	*ret = pv;
	return 0;
}

void config_provider_free(struct config_provider *pv)
{
	if (!pv)
		return;
	free_scope(CONFIG_SCOPE_PROVIDER, pv);
	free(pv->name);
	free(pv);
}

static bool strv_same(const struct strv *a, const struct strv *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return false;
	return true;
}

bool config_provider_same(const struct config_provider *a, const struct config_provider *b)
{
	if (!a || !b || !a->type || !b->type || strcmp(a->type, b->type) != 0)
		return false;
	for (size_t i = 0; i < config_n_fields; i++) {
		const struct config_field *f = &config_fields[i];
		const void *x = config_at(a, f->off), *y = config_at(b, f->off);
		bool same = true;

		if (f->scope != CONFIG_SCOPE_PROVIDER || !config_field_applies(f, a->type))
			continue;
		switch (f->type) {
		case CONFIG_T_STR:
		case CONFIG_T_PATH:
			same = str_eq(*(char *const *)x, *(char *const *)y);
			break;
		case CONFIG_T_INT:
		case CONFIG_T_DURATION:
		case CONFIG_T_SIZE:
			same = *(const int64_t *)x == *(const int64_t *)y;
			break;
		case CONFIG_T_BOOL:
			same = *(const bool *)x == *(const bool *)y;
			break;
		case CONFIG_T_ENUM:
			same = *(const int *)x == *(const int *)y;
			break;
		case CONFIG_T_STRV:
			same = strv_same(x, y);
			break;
		default:
			break;
		}
		if (!same)
			return false;
	}
	return true;
}

int config_secret_files(const struct config *c, struct strv *ret)
{
	for (size_t i = 0; i < config_n_fields; i++) {
		const struct config_field *f = &config_fields[i];
		const char *v;

		if (f->scope != CONFIG_SCOPE_ROOT || !(f->flags & CONFIG_F_SECRET_FILE))
			continue;
		v = *(char *const *)config_at(c, f->off);
		if (v && *v && !strv_contains(ret, v, false) && strv_push(ret, v) < 0)
			return -ENOMEM;
	}
	return 0;
}

const char *config_path(const char *explicit_path)
{
	const char *env;

	if (explicit_path && *explicit_path)
		return explicit_path;
	env = getenv("RUNNERD_CONFIG");
	if (env && *env)
		return env;
	return CONFIG_DEFAULT_PATH;
}

const struct config_flavor *config_flavor_find(const struct config *c, const char *name)
{
	for (size_t i = 0; c && name && i < c->n_flavors; i++)
		if (strcmp(c->flavors[i].name, name) == 0)
			return &c->flavors[i];
	return NULL;
}

bool config_answer_after_write(const struct config *c)
{
	return c->webhook.answer_after == ANSWER_AFTER_WRITE;
}

bool config_catch_up_after_reboot(const struct config *c)
{
	return config_answer_after_write(c) && c->queue.kind == QUEUE_SQLITE;
}

bool config_repo_in_scope(const struct config *c, const char *repo)
{
	const char *path = c && c->github.path ? c->github.path : "";
	size_t n = strlen(path);

	if (!repo || !*path)
		return false;
	if (!c->github.is_org)
		return strcasecmp(repo, path) == 0;
	/* "org/name": the owner is the organization, and there is a name after it */
	return strncasecmp(repo, path, n) == 0 && repo[n] == '/' && repo[n + 1] != '\0' &&
	       !strchr(repo + n + 1, '/');
}
