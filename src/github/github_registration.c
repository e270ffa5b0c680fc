/*
 * How a runner gets registered: registration and remove tokens for
 * config.sh, just-in-time configs (with the 409 of a name already taken),
 * and runner groups by name. A JIT POST that GitHub may have received is
 * never sent again, and no token or JIT config reaches a message.
 */
#include "util/common.h"
#include "github/github_internal.h"
#include "util/strutil.h"

static int token_call(struct github *gh, const char *what, struct github_token *ret, struct err *e)
{
	struct github_answer ans = {0};
	char url[GITHUB_URL_MAX], op[GITHUB_OP_MAX];
	int r;

	github_scope_op(gh, what, op, sizeof(op));
	r = github_url(gh, url, sizeof(url), op, e, "%s/actions/runners/%s", gh->scope, what);
	if (r < 0)
		goto out;
	/* Asking twice only mints a second short-lived token: safe to retry. */
	r = github_call_json(gh,
	                     &(struct github_call){.route = what,
	                                           .op = op,
	                                           .method = "POST",
	                                           .url = url,
	                                           .retry = GITHUB_RETRY_ALL,
	                                           .secret = true},
	                     &ans, e);
	if (r == 0)
		r = github_json_token(op, ans.root, ret, e);
out:
	github_answer_release(&ans);
	return r;
}

int github_registration_token(struct github *gh, struct github_token *ret, struct err *e)
{
	return token_call(gh, "registration-token", ret, e);
}

int github_remove_token(struct github *gh, struct github_token *ret, struct err *e)
{
	return token_call(gh, "remove-token", ret, e);
}

static int jit_body(const char *name, int64_t group, const struct strv *labels,
                    const char *work_folder, char **ret)
{
	json_t *arr = json_array(), *o = NULL;
	int r = -ENOMEM;

	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; labels && i < labels->n; i++)
		if (json_array_append_new(arr, json_string(labels->v[i])) < 0)
			goto out;
	o = json_pack("{s:s, s:I, s:O, s:s}", "name", name, "runner_group_id", (json_int_t)group,
	              "labels", arr, "work_folder", work_folder ? work_folder : "_work");
	if (!o)
		goto out;
	*ret = json_dumps(o, JSON_COMPACT);
	r = *ret ? 0 : -ENOMEM;
out:
	json_decref(o);
	json_decref(arr);
	return r;
}

/*
 * The 409 case: find the registration that holds name and clear it if it is
 * idle. Found nothing (it went away meanwhile): 0, and the caller simply
 * tries again.
 */
static int jit_resolve_conflict(struct github *gh, const char *op, const char *name, struct err *e)
{
	struct github_runner gr = {0};
	int r = github_find_runner(gh, name, &gr, e);

	if (r == -ENOENT) {
		err_clear(e);
		return 0;
	}
	if (r < 0) {
		err_prefix(e, "%s: resolving a 409", op);
		return r;
	}
	if (gr.busy)
		r = err_set(e, -EBUSY, "%s: runner %s is already registered and busy", op, name);
	else if ((r = github_delete_runner(gh, gr.id, e)) < 0)
		err_prefix(e, "%s: clearing the stale registration", op);
	github_runner_release(&gr);
	return r;
}

int github_generate_jitconfig(struct github *gh, const char *name, int64_t runner_group_id,
                              const struct strv *labels, const char *work_folder,
                              struct github_jit *ret, struct err *e)
{
	static const int accept[] = {409, 0};
	struct github_answer ans = {0};
	char url[GITHUB_URL_MAX], op[GITHUB_OP_MAX];
	char *body = NULL;
	int r;

	snprintf(op, sizeof(op), "%s: generate JIT config for %s", gh->scope, name ? name : "?");
	if (!name || !name[0]) {
		r = err_set(e, -EINVAL, "%s: no runner name", op);
		goto out;
	}
	r = github_url(gh, url, sizeof(url), op, e, "%s/actions/runners/generate-jitconfig",
	               gh->scope);
	if (r < 0)
		goto out;
	r = jit_body(name, runner_group_id > 0 ? runner_group_id : 1, labels, work_folder, &body);
	if (r < 0) {
		r = err_set(e, r, "%s: cannot build the request", op);
		goto out;
	}
	for (int round = 0; round < 2; round++) {
		/* Not repeated after an answer: GitHub may have registered the runner already. */
		r = github_call_json(gh,
		                     &(struct github_call){.route = "generate-jitconfig",
		                                           .op = op,
		                                           .method = "POST",
		                                           .url = url,
		                                           .body = body,
		                                           .retry = GITHUB_RETRY_UNSENT,
		                                           .accept = accept,
		                                           .secret = true},
		                     &ans, e);
		if (r < 0)
			break;
		if (ans.status != 409) {
			r = github_json_jit(op, ans.root, ret, e);
			break;
		}
		if (round == 1) {
			r = err_set(e, -EEXIST, "%s: the name is still taken after clearing it",
			            op);
			break;
		}
		r = jit_resolve_conflict(gh, op, name, e);
		if (r < 0)
			break;
	}
out:
	free(body);
	github_answer_release(&ans);
	return r;
}

/* A runner group looked up by name, page by page. */
struct group_search {
	const char *name;
	int64_t id; /* 0 until found */
};

/* One page of runner groups: done once the name is found. */
static int groups_take(struct github_pager *pg, json_t *root, const struct buf *body, struct err *e)
{
	struct group_search *g = pg->ctx;
	int r = github_json_group_page(pg->page_op, root, g->name, &g->id, e);

	pg->done = r == 0 && g->id > 0;
	return r;
}

int github_runner_group_id(struct github *gh, const char *name, int64_t *ret, struct err *e)
{
	struct group_search g = {.name = name};
	struct github_pager pg = {.route = "runner groups", .take = groups_take, .ctx = &g};
	char url[GITHUB_URL_MAX], op[GITHUB_OP_MAX];
	int r = 0;

	if (!gh->cfg->github.is_org) {
		*ret = 1;
		goto out;
	}
	pg.op = github_scope_op(gh, "list runner groups", op, sizeof(op));
	r = github_url(gh, url, sizeof(url), op, e, "%s/actions/runner-groups?per_page=100",
	               gh->scope);
	if (r < 0)
		goto out;
	r = github_paginate(gh, &pg, url, e);
	if (r == 0 && g.id <= 0)
		r = err_set(e, -ENOENT, "%s: no runner group named '%s'", op, name);
	if (r == 0)
		*ret = g.id;
out:
	return r;
}
