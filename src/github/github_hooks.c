/*
 * Webhook deliveries of the configured scope's hook: the failed ones, those
 * since a time (the catch-up after a reboot), and a redelivery. GitHub
 * does not redeliver a failed delivery by itself; runnerd asks, as the
 * original's redeliver action did. Nothing here reads a
 * delivery's payload (the deliveries list carries none).
 */
#include "util/common.h"
#include "github/github_internal.h"
#include "util/clock.h"

static int delivery_of(const char *op, json_t *o, struct github_hook_delivery *d, struct err *e)
{
	char when[64];
	int r;

	memset(d, 0, sizeof(*d));
	if (!json_is_object(o))
		return err_set(e, -EPROTO,
		               "%s: unexpected answer from GitHub: a delivery is not an object",
		               op);
	r = github_json_field_int(op, "delivery", o, "id", false, &d->id, e);
	if (r == 0)
		r = github_json_field_str(op, "delivery", o, "guid", false, d->guid,
		                          sizeof(d->guid), e);
	if (r == 0)
		r = github_json_field_str(op, "delivery", o, "event", false, d->event,
		                          sizeof(d->event), e);
	if (r == 0)
		r = github_json_field_str(op, "delivery", o, "action", true, d->action,
		                          sizeof(d->action), e);
	if (r == 0)
		r = github_json_field_int(op, "delivery", o, "status_code", false, &d->status_code,
		                          e);
	if (r == 0)
		r = github_json_field_bool(op, "delivery", o, "redelivery", &d->redelivery, e);
	if (r == 0)
		r = github_json_field_str(op, "delivery", o, "delivered_at", true, when,
		                          sizeof(when), e);
	if (r == 0 && clock_parse_rfc3339(when, &d->delivered_at) < 0)
		d->delivered_at = 0;
	return r;
}

int github_json_deliveries(const char *op, json_t *root, struct github_hook_delivery_list *ret,
                           struct err *e)
{
	struct github_hook_delivery_list l = {0};
	json_t *o;
	size_t i;
	int r = 0;

	if (!json_is_array(root) || json_array_size(root) > GITHUB_DELIVERIES_MAX)
		return err_set(e, -EPROTO,
		               "%s: unexpected answer from GitHub: not a list of at most %d", op,
		               GITHUB_DELIVERIES_MAX);
	if (json_array_size(root) && !(l.v = calloc(json_array_size(root), sizeof(*l.v))))
		return err_set(e, -ENOMEM, "%s: out of memory", op);
	json_array_foreach(root, i, o)
	{
		r = delivery_of(op, o, &l.v[l.n], e);
		if (r < 0) {
			github_hook_delivery_list_release(&l);
			return r;
		}
		l.n++;
	}
	github_hook_delivery_list_release(ret);
	*ret = l;
	return 0;
}

int github_list_failed_deliveries(struct github *gh, int64_t hook_id,
                                  struct github_hook_delivery_list *ret, struct err *e)
{
	char url[GITHUB_URL_MAX], op[GITHUB_OP_MAX];
	json_t *root = NULL;
	int r;

	github_scope_op(gh, "list failed webhook deliveries", op, sizeof(op));
	if (hook_id <= 0)
		return err_set(e, -EINVAL, "%s: no hook id", op);
	r = github_url(gh, url, sizeof(url), op, e,
	               "%s/hooks/%" PRId64 "/deliveries?per_page=%d&status=failure", gh->scope,
	               hook_id, GITHUB_DELIVERIES_MAX);
	if (r < 0)
		return r;
	r = github_get_json_conditional(gh, "hook deliveries", op, url, "no such hook", &root, e);
	if (r == 0)
		r = github_json_deliveries(op, root, ret, e);
	json_decref(root);
	return r;
}

/* A page of the hook's deliveries, appended to the list in ctx; done at one older than since. */
struct since_pager {
	struct github_hook_delivery_list l;
	int64_t since;
	size_t max;
};

static int since_take(struct github_pager *pg, json_t *root, const struct buf *body, struct err *e)
{
	struct since_pager *sp = pg->ctx;
	struct github_hook_delivery_list page = {0};
	struct github_hook_delivery *nv;
	int r;

	(void)body;
	r = github_json_deliveries(pg->page_op, root, &page, e);
	if (r < 0)
		return r;
	if (page.n && !(nv = realloc(sp->l.v, (sp->l.n + page.n) * sizeof(*nv)))) {
		github_hook_delivery_list_release(&page);
		return err_set(e, -ENOMEM, "%s: out of memory", pg->page_op);
	}
	if (page.n)
		sp->l.v = nv;
	for (size_t i = 0; i < page.n; i++) {
		/* newest first: one older than since ends the list */
		if (page.v[i].delivered_at && page.v[i].delivered_at < sp->since) {
			pg->done = true;
			break;
		}
		sp->l.v[sp->l.n++] = page.v[i];
	}
	if (sp->l.n >= sp->max)
		pg->done = true;
	github_hook_delivery_list_release(&page);
	return 0;
}

int github_list_deliveries_since(struct github *gh, int64_t hook_id, int64_t since, size_t max,
                                 struct github_hook_delivery_list *ret, struct err *e)
{
	char url[GITHUB_URL_MAX], op[GITHUB_OP_MAX];
	struct since_pager sp = {.since = since, .max = max};
	struct github_pager pg = {.route = "hook deliveries", .take = since_take, .ctx = &sp};
	int r;

	github_scope_op(gh, "list webhook deliveries", op, sizeof(op));
	pg.op = op;
	if (hook_id <= 0)
		return err_set(e, -EINVAL, "%s: no hook id", op);
	r = github_url(gh, url, sizeof(url), op, e, "%s/hooks/%" PRId64 "/deliveries?per_page=%d",
	               gh->scope, hook_id, GITHUB_DELIVERIES_MAX);
	if (r == 0)
		r = github_paginate(gh, &pg, url, e);
	if (r < 0) {
		github_hook_delivery_list_release(&sp.l);
		return r;
	}
	github_hook_delivery_list_release(ret);
	*ret = sp.l;
	return 0;
}

void github_hook_delivery_list_release(struct github_hook_delivery_list *l)
{
	if (!l)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int github_redeliver(struct github *gh, int64_t hook_id, int64_t delivery_id, struct err *e)
{
	static const int accept[] = {404, 0};
	char url[GITHUB_URL_MAX], op[GITHUB_OP_MAX], what[96];
	struct github_answer ans = {0};
	int r;

	snprintf(what, sizeof(what), "redeliver webhook delivery %" PRId64, delivery_id);
	github_scope_op(gh, what, op, sizeof(op));
	if (hook_id <= 0 || delivery_id <= 0)
		return err_set(e, -EINVAL, "%s: no hook or delivery id", op);
	r = github_url(gh, url, sizeof(url), op, e,
	               "%s/hooks/%" PRId64 "/deliveries/%" PRId64 "/attempts", gh->scope, hook_id,
	               delivery_id);
	if (r < 0)
		return r;
	/* a repeated redelivery is harmless: the intake drops a delivery it has seen */
	r = github_call_json(gh,
	                     &(struct github_call){.route = "redeliver",
	                                           .op = op,
	                                           .method = "POST",
	                                           .url = url,
	                                           .retry = GITHUB_RETRY_ALL,
	                                           .accept = accept,
	                                           .no_body = true},
	                     &ans, e);
	if (r == 0 && ans.status == 404)
		r = err_set(e, -ENOENT, "%s: no such delivery", op);
	github_answer_release(&ans);
	return r;
}
