/*
 * GitHub's JSON answers -> our structs. A body is loaded once
 * (github_json_load: bounded by the reply buffer, duplicate keys refused),
 * then each parser reads the root it is handed. Every field's presence and
 * type is checked; anything unexpected is a clean -EPROTO that names the
 * operation and the field, never a crash or a silently wrong value.
 * Messages never quote the body (a JIT config or a token may be in it).
 */
#include "util/common.h"
#include "github/github_internal.h"
#include "util/strutil.h"

#define MAX_LABELS 256

static int jfail(struct err *e, const char *op, const char *where, const char *key,
                 const char *what)
{
	return err_set(e, -EPROTO, "%s: unexpected answer from GitHub: %s%s%s %s", op, where,
	               where[0] && key[0] ? "." : "", key, what);
}

/* optional: missing or null gives the default (0, "", false). */
static int get_int(const char *op, const char *where, json_t *o, const char *key, bool optional,
                   int64_t *ret, struct err *e)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v)) {
		if (!optional)
			return jfail(e, op, where, key, "is missing");
		*ret = 0;
		return 0;
	}
	if (!json_is_integer(v))
		return jfail(e, op, where, key, "is not an integer");
	*ret = (int64_t)json_integer_value(v);
	return 0;
}

static int get_bool(const char *op, const char *where, json_t *o, const char *key, bool *ret,
                    struct err *e)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return jfail(e, op, where, key, "is missing");
	if (!json_is_boolean(v))
		return jfail(e, op, where, key, "is not a boolean");
	*ret = json_is_true(v);
	return 0;
}

/* A string field; -EPROTO when it does not fit unless truncate. */
static int get_str(const char *op, const char *where, json_t *o, const char *key, bool optional,
                   bool truncate, char *dst, size_t cap, struct err *e)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v)) {
		if (!optional)
			return jfail(e, op, where, key, "is missing");
		dst[0] = '\0';
		return 0;
	}
	if (!json_is_string(v))
		return jfail(e, op, where, key, "is not a string");
	if (json_string_length(v) != strlen(json_string_value(v)))
		return jfail(e, op, where, key, "holds a NUL byte");
	if (json_string_length(v) >= cap && !truncate)
		return jfail(e, op, where, key, "is too long");
	str_copy(dst, json_string_value(v), cap);
	return 0;
}

static int get_strdup(const char *op, const char *where, json_t *o, const char *key, char **ret,
                      struct err *e)
{
	json_t *v = json_object_get(o, key);
	char *s;

	if (!v)
		return jfail(e, op, where, key, "is missing");
	if (!json_is_string(v))
		return jfail(e, op, where, key, "is not a string");
	if (json_string_length(v) == 0 || json_string_length(v) != strlen(json_string_value(v)))
		return jfail(e, op, where, key, "is empty or holds a NUL byte");
	s = strdup(json_string_value(v));
	if (!s)
		return err_set(e, -ENOMEM, "%s: out of memory", op);
	*ret = s;
	return 0;
}

static int get_time(const char *op, const char *where, json_t *o, const char *key, bool optional,
                    time_t *ret, struct err *e)
{
	char s[64];
	int r = get_str(op, where, o, key, optional, false, s, sizeof(s), e);
	if (r < 0)
		return r;
	if (!s[0]) {
		*ret = 0;
		return 0;
	}
	int64_t t;
	if (clock_parse_rfc3339(s, &t) < 0)
		return jfail(e, op, where, key, "is not an ISO 8601 time");
	*ret = (time_t)t;
	return 0;
}

static int get_array(const char *op, const char *where, json_t *o, const char *key, json_t **ret,
                     struct err *e)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return jfail(e, op, where, key, "is missing");
	if (!json_is_array(v))
		return jfail(e, op, where, key, "is not an array");
	*ret = v;
	return 0;
}

int github_json_load(const char *op, const struct buf *body, json_t **ret, struct err *e)
{
	json_error_t jerr;
	json_t *j;

	if (!body->data || body->len == 0)
		return err_set(e, -EPROTO, "%s: unexpected answer from GitHub: empty body", op);
	j = json_loadb(body->data, body->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		/* jerr.text may quote the body: give the position only. */
		return err_set(e, -EPROTO, "%s: GitHub sent malformed JSON (line %d, column %d)",
		               op, jerr.line, jerr.column);
	*ret = j;
	return 0;
}

/* The root a parser expects: an object (the lists are objects that hold an array). */
static int want_object(const char *op, const json_t *root, struct err *e)
{
	return json_is_object(root)
	               ? 0
	               : err_set(e, -EPROTO, "%s: unexpected answer from GitHub: not a JSON object",
	                         op);
}

static void strs_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* labels: [{"name": ...}, ...] (runners) or ["...", ...] (jobs). */
static int get_labels(const char *op, const char *where, json_t *o, bool objects, char ***ret_v,
                      size_t *ret_n, struct err *e)
{
	char sub[96], **v = NULL;
	size_t n = 0;
	json_t *arr, *it;
	int r = get_array(op, where, o, "labels", &arr, e);

	if (r < 0)
		return r;
	if (json_array_size(arr) > MAX_LABELS)
		return jfail(e, op, where, "labels", "has too many entries");
	if (json_array_size(arr) > 0) {
		v = calloc(json_array_size(arr), sizeof(*v));
		if (!v)
			return err_set(e, -ENOMEM, "%s: out of memory", op);
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		it = json_array_get(arr, i);
		snprintf(sub, sizeof(sub), "%s%slabels[%zu]", where, where[0] ? "." : "", i);
		if (objects) {
			if (!json_is_object(it)) {
				r = jfail(e, op, sub, "", "is not an object");
				goto fail;
			}
			r = get_strdup(op, sub, it, "name", &v[n], e);
		} else if (!json_is_string(it) || json_string_length(it) == 0 ||
		           json_string_length(it) != strlen(json_string_value(it))) {
			r = jfail(e, op, sub, "", "is not a non-empty string");
		} else if (!(v[n] = strdup(json_string_value(it)))) {
			r = err_set(e, -ENOMEM, "%s: out of memory", op);
		}
		if (r < 0)
			goto fail;
		n++;
	}
	*ret_v = v;
	*ret_n = n;
	return 0;
fail:
	strs_free(v, n);
	return r;
}

void github_runner_release(struct github_runner *r)
{
	if (!r)
		return;
	strs_free(r->labels, r->n_labels);
	r->labels = NULL;
	r->n_labels = 0;
}

void github_runner_list_release(struct github_runner_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		github_runner_release(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/*
 * One runner object. When manager is set and the name is not ours, *ret_skip
 * is true and nothing is parsed beyond the name (foreign runners are not our
 * business, so their oddities must not break our list).
 */
static int parse_runner(const char *op, const char *where, json_t *o, const char *manager,
                        struct github_runner *ret, bool *ret_skip, struct err *e)
{
	struct github_runner rr = {0};
	char status[32];
	json_t *nm;
	int r;

	if (!json_is_object(o))
		return jfail(e, op, where, "", "is not an object");
	nm = json_object_get(o, "name");
	if (manager && nm && json_is_string(nm) && !name_is_owned(manager, json_string_value(nm))) {
		*ret_skip = true;
		return 0;
	}
	if ((r = get_int(op, where, o, "id", false, &rr.id, e)) < 0 ||
	    (r = get_str(op, where, o, "name", false, false, rr.name, sizeof(rr.name), e)) < 0 ||
	    (r = get_str(op, where, o, "status", false, false, status, sizeof(status), e)) < 0 ||
	    (r = get_bool(op, where, o, "busy", &rr.busy, e)) < 0)
		return r;
	if (strcmp(status, "online") == 0)
		rr.status = GITHUB_RUNNER_ONLINE;
	else if (strcmp(status, "offline") == 0)
		rr.status = GITHUB_RUNNER_OFFLINE;
	else
		return jfail(e, op, where, "status", "is neither online nor offline");
	if (rr.id <= 0)
		return jfail(e, op, where, "id", "is not positive");
	r = get_labels(op, where, o, true, &rr.labels, &rr.n_labels, e);
	if (r < 0)
		return r;
	*ret_skip = false;
	*ret = rr;
	return 0;
}

int github_json_runner(const char *op, json_t *root, struct github_runner *ret, struct err *e)
{
	struct github_runner rr;
	bool skip = false;
	int r = want_object(op, root, e);

	if (r < 0)
		return r;
	r = parse_runner(op, "", root, NULL, &rr, &skip, e);
	if (r < 0)
		return r;
	github_runner_release(ret);
	*ret = rr;
	return 0;
}

int github_json_runners_page(const char *op, json_t *root, const char *manager,
                             struct github_runner_list *acc, int64_t *ret_total, size_t *ret_seen,
                             struct err *e)
{
	size_t n0 = acc->n, cap;
	char where[48];
	int64_t total;
	json_t *arr;
	int r = want_object(op, root, e);

	if (r < 0)
		return r;
	if ((r = get_int(op, "", root, "total_count", false, &total, e)) < 0 ||
	    (r = get_array(op, "", root, "runners", &arr, e)) < 0)
		goto out;
	if (total < 0) {
		r = jfail(e, op, "", "total_count", "is negative");
		goto out;
	}
	cap = n0 + json_array_size(arr);
	if (cap > n0) {
		struct github_runner *nv = realloc(acc->v, cap * sizeof(*nv));
		if (!nv) {
			r = err_set(e, -ENOMEM, "%s: out of memory", op);
			goto out;
		}
		acc->v = nv;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		bool skip = false;
		snprintf(where, sizeof(where), "runners[%zu]", i);
		r = parse_runner(op, where, json_array_get(arr, i), manager, &acc->v[acc->n], &skip,
		                 e);
		if (r < 0)
			goto out;
		if (!skip)
			acc->n++;
	}
	*ret_total = total;
	*ret_seen = json_array_size(arr);
out:
	if (r < 0) {
		/* Leave acc as it was: a page is taken whole or not at all. */
		for (size_t i = n0; i < acc->n; i++)
			github_runner_release(&acc->v[i]);
		acc->n = n0;
	}
	return r;
}

void github_token_release(struct github_token *t)
{
	if (!t)
		return;
	github_secret_free(&t->token);
	t->expires_at = 0;
}

/*
 * RFC 6750's b64token, what a bearer token may hold: the token goes into an
 * Authorization header, where a space, CR or LF would end it or add another
 * header. Nothing else about its shape is assumed.
 */
static bool bearer_token_ok(const char *s)
{
	for (; *s; s++) {
		bool alnum = (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		             (*s >= '0' && *s <= '9');
		if (!alnum && !strchr("-._~+/=", *s))
			return false;
	}
	return true;
}

int github_json_token(const char *op, json_t *root, struct github_token *ret, struct err *e)
{
	struct github_token t = {0};
	json_t *v;
	int r = want_object(op, root, e);

	if (r < 0)
		return r;
	v = json_object_get(root, "token");
	if (json_is_string(v) && json_string_length(v) > GITHUB_TOKEN_MAX)
		return err_set(e, -EPROTO,
		               "%s: unexpected answer from GitHub: token is longer than %d bytes",
		               op, GITHUB_TOKEN_MAX);
	if ((r = get_time(op, "", root, "expires_at", false, &t.expires_at, e)) < 0 ||
	    (r = get_strdup(op, "", root, "token", &t.token, e)) < 0)
		goto out;
	if (!bearer_token_ok(t.token)) {
		r = jfail(e, op, "", "token", "holds a character a bearer token cannot");
		goto out;
	}
	github_token_release(ret);
	*ret = t;
	t.token = NULL;
out:
	github_token_release(&t);
	return r;
}

void github_jit_release(struct github_jit *jit)
{
	if (!jit)
		return;
	github_secret_free(&jit->encoded_jit_config);
	jit->runner_id = 0;
}

int github_json_jit(const char *op, json_t *root, struct github_jit *ret, struct err *e)
{
	struct github_jit jit = {0};
	json_t *runner;
	int r = want_object(op, root, e);

	if (r < 0)
		return r;
	runner = json_object_get(root, "runner");
	if (!runner || !json_is_object(runner)) {
		r = jfail(e, op, "", "runner", "is not an object");
		goto out;
	}
	if ((r = get_int(op, "runner", runner, "id", false, &jit.runner_id, e)) < 0)
		goto out;
	if (jit.runner_id <= 0) {
		r = jfail(e, op, "runner", "id", "is not positive");
		goto out;
	}
	if ((r = get_strdup(op, "", root, "encoded_jit_config", &jit.encoded_jit_config, e)) < 0)
		goto out;
	github_jit_release(ret);
	*ret = jit;
out:
	return r;
}

void github_app_list_release(struct github_app_list *l)
{
	if (!l)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static bool is_hex64(const char *s)
{
	size_t i;
	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return i == 64;
}

int github_json_apps(const char *op, json_t *root, struct github_app_list *ret, struct err *e)
{
	struct github_app_list l = {0};
	char where[32];
	int r = 0;

	if (!json_is_array(root)) {
		r = err_set(e, -EPROTO, "%s: unexpected answer from GitHub: not a JSON array", op);
		goto out;
	}
	if (json_array_size(root) > 0) {
		l.v = calloc(json_array_size(root), sizeof(*l.v));
		if (!l.v) {
			r = err_set(e, -ENOMEM, "%s: out of memory", op);
			goto out;
		}
	}
	for (size_t i = 0; i < json_array_size(root); i++) {
		struct github_runner_app *a = &l.v[l.n];
		json_t *o = json_array_get(root, i);
		snprintf(where, sizeof(where), "[%zu]", i);
		if (!json_is_object(o)) {
			r = jfail(e, op, where, "", "is not an object");
			goto out;
		}
		if ((r = get_str(op, where, o, "os", false, false, a->os, sizeof(a->os), e)) < 0 ||
		    (r = get_str(op, where, o, "architecture", false, false, a->architecture,
		                 sizeof(a->architecture), e)) < 0 ||
		    (r = get_str(op, where, o, "download_url", false, false, a->download_url,
		                 sizeof(a->download_url), e)) < 0 ||
		    (r = get_str(op, where, o, "filename", false, false, a->filename,
		                 sizeof(a->filename), e)) < 0 ||
		    (r = get_str(op, where, o, "sha256_checksum", true, false, a->sha256,
		                 sizeof(a->sha256), e)) < 0)
			goto out;
		if (a->sha256[0] && !is_hex64(a->sha256)) {
			r = jfail(e, op, where, "sha256_checksum", "is not 64 hex digits");
			goto out;
		}
		for (char *p = a->sha256; *p; p++)
			if (*p >= 'A' && *p <= 'F')
				*p = (char)(*p - 'A' + 'a');
		l.n++;
	}
	github_app_list_release(ret);
	*ret = l;
	l.v = NULL;
out:
	free(l.v);
	return r;
}

int github_json_group_page(const char *op, json_t *root, const char *name, int64_t *ret_id,
                           struct err *e)
{
	char where[40], gname[256];
	int64_t id, found = 0;
	json_t *arr;
	int r = want_object(op, root, e);

	if (r < 0)
		return r;
	if ((r = get_array(op, "", root, "runner_groups", &arr, e)) < 0)
		goto out;
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *o = json_array_get(arr, i);
		snprintf(where, sizeof(where), "runner_groups[%zu]", i);
		if (!json_is_object(o)) {
			r = jfail(e, op, where, "", "is not an object");
			goto out;
		}
		if ((r = get_int(op, where, o, "id", false, &id, e)) < 0 ||
		    (r = get_str(op, where, o, "name", false, true, gname, sizeof(gname), e)) < 0)
			goto out;
		if (!found && strcasecmp(gname, name) == 0)
			found = id;
	}
	*ret_id = found;
out:
	return r;
}

void github_job_release(struct github_job *j)
{
	if (!j)
		return;
	strs_free(j->labels, j->n_labels);
	j->labels = NULL;
	j->n_labels = 0;
}

void github_job_list_release(struct github_job_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		github_job_release(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int parse_job(const char *op, const char *where, json_t *o, struct github_job *ret,
                     struct err *e)
{
	struct github_job jj = {0};
	int r;

	if (!json_is_object(o))
		return jfail(e, op, where, "", "is not an object");
	if ((r = get_int(op, where, o, "id", false, &jj.id, e)) < 0 ||
	    (r = get_int(op, where, o, "run_id", false, &jj.run_id, e)) < 0 ||
	    (r = get_str(op, where, o, "status", false, false, jj.status, sizeof(jj.status), e)) <
	            0 ||
	    (r = get_str(op, where, o, "conclusion", true, false, jj.conclusion,
	                 sizeof(jj.conclusion), e)) < 0 ||
	    (r = get_str(op, where, o, "name", false, true, jj.name, sizeof(jj.name), e)) < 0 ||
	    (r = get_int(op, where, o, "runner_id", true, &jj.runner_id, e)) < 0 ||
	    (r = get_str(op, where, o, "runner_name", true, false, jj.runner_name,
	                 sizeof(jj.runner_name), e)) < 0 ||
	    (r = get_time(op, where, o, "created_at", true, &jj.created_at, e)) < 0 ||
	    (r = get_time(op, where, o, "started_at", true, &jj.started_at, e)) < 0 ||
	    (r = get_time(op, where, o, "completed_at", true, &jj.completed_at, e)) < 0)
		return r;
	r = get_labels(op, where, o, false, &jj.labels, &jj.n_labels, e);
	if (r < 0)
		return r;
	*ret = jj;
	return 0;
}

int github_json_job(const char *op, json_t *root, struct github_job *ret, struct err *e)
{
	struct github_job jj;
	int r = want_object(op, root, e);

	if (r < 0)
		return r;
	r = parse_job(op, "", root, &jj, e);
	if (r < 0)
		return r;
	github_job_release(ret);
	*ret = jj;
	return 0;
}

int github_json_jobs_page(const char *op, json_t *root, struct github_job_list *acc, struct err *e)
{
	size_t n0 = acc->n, cap;
	char where[40];
	json_t *arr;
	int r = want_object(op, root, e);

	if (r < 0)
		return r;
	if ((r = get_array(op, "", root, "jobs", &arr, e)) < 0)
		goto out;
	cap = n0 + json_array_size(arr);
	if (cap > n0) {
		struct github_job *nv = realloc(acc->v, cap * sizeof(*nv));
		if (!nv) {
			r = err_set(e, -ENOMEM, "%s: out of memory", op);
			goto out;
		}
		acc->v = nv;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		snprintf(where, sizeof(where), "jobs[%zu]", i);
		r = parse_job(op, where, json_array_get(arr, i), &acc->v[acc->n], e);
		if (r < 0)
			goto out;
		acc->n++;
	}
out:
	if (r < 0) {
		for (size_t i = n0; i < acc->n; i++)
			github_job_release(&acc->v[i]);
		acc->n = n0;
	}
	return r;
}

void github_json_error_message(const struct buf *body, char *out, size_t cap)
{
	json_t *j, *m;
	size_t n = 0;

	out[0] = '\0';
	if (!body->data || body->len == 0 || cap == 0)
		return;
	j = json_loadb(body->data, body->len, 0, NULL);
	if (!j)
		return;
	m = json_is_object(j) ? json_object_get(j, "message") : NULL;
	if (m && json_is_string(m)) {
		for (const char *p = json_string_value(m); *p && n + 1 < cap; p++)
			out[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
		out[n] = '\0';
	}
	json_decref(j);
}

int github_json_field_int(const char *op, const char *where, json_t *o, const char *key,
                          bool optional, int64_t *ret, struct err *e)
{
	return get_int(op, where, o, key, optional, ret, e);
}

int github_json_field_bool(const char *op, const char *where, json_t *o, const char *key, bool *ret,
                           struct err *e)
{
	return get_bool(op, where, o, key, ret, e);
}

int github_json_field_str(const char *op, const char *where, json_t *o, const char *key,
                          bool optional, char *dst, size_t cap, struct err *e)
{
	return get_str(op, where, o, key, optional, false, dst, cap, e);
}
