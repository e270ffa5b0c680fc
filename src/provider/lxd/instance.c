/*
 * Instances: get, list (only the manager's), state changes, stop, remove,
 * exec without websockets (and the recorded output it leaves on the
 * host), and the health probe. It must never touch an instance whose name
 * is not the manager's or whose user.runnerd.manager says another manager
 * made it, and never call an instance gone on the word of a DELETE alone:
 * only a fetch that answers 404 says so.
 */
#include "util/common.h"
#include "provider/lxd/lxd_internal.h"

/*
 * Exit 0: the runner process runs; 1: it does not, though the runner was
 * installed (it died); 2: not yet installed (booting). The [R] keeps this
 * command's own command line from matching.
 */
static const char lxd_health_script[] =
        "pgrep -f '[R]unner.Listener' >/dev/null 2>&1 && exit 0; "
        "grep -qs '[R]unner.Listener' /proc/[0-9]*/cmdline && exit 0; "
        "[ -e " LXD_HOME "/" METRICS_DIR "/" METRICS_RUNNER_INSTALLED " ] && exit 1; exit 2";

/* ---- instances ------------------------------------------------------ */

int lxd_check_name(const char *name, struct err *e)
{
	if (!name || !name_is_valid(name, INSTANCE_NAME_MAX - 1))
		return err_set(e, -EINVAL, "lxd: invalid instance name");
	return 0;
}

/* GET one instance: -ENOENT when missing. *ret_owner points into *ret_ans (release it). */
int lxd_instance_fetch(struct lxd *l, const struct provider_call *c, const char *name,
                       struct instance *ret, const char **ret_owner, struct lxd_answer *ret_ans,
                       struct err *e)
{
	struct buf path = BUF_INIT(512);
	struct lxd_answer a = {0};
	int r;

	if (lxd_path_of(&path, "instances", name, NULL) < 0)
		return err_set(e, -ENAMETOOLONG, "lxd: name too long");
	struct lxd_req q = {.path = buf_str(&path)};
	r = lxd_call(l, c, &q, &a, e);
	if (r == -ENOENT) {
		r = err_set(e, -ENOENT, "lxd: instance %s: not found", name);
		goto out;
	}
	if (r < 0)
		goto out;
	if (lxd_parse_instance(a.meta, ret, ret_owner) < 0) {
		r = err_set(e, -EBADMSG, "lxd: instance %s: unparsable answer", name);
		goto out;
	}
	*ret_ans = a;
	a.root = NULL;
out:
	lxd_answer_release(&a);
	buf_release(&path);
	return r;
}

static bool owner_is(const struct lxd *l, const char *owner)
{
	return !l->manager[0] || (owner && strcmp(owner, l->manager) == 0);
}

int lxd_get(struct provider *p, const struct provider_call *c, const char *name,
            struct instance *ret, struct err *e)
{
	struct lxd *l = p->priv;
	struct lxd_answer a = {0};
	struct instance in;
	const char *owner;
	int r;

	if (lxd_check_name(name, e) < 0)
		return -EINVAL;
	if (l->manager[0] && !name_is_owned(l->manager, name))
		return err_set(e, -ENOENT, "lxd: %s is not a name of manager %s", name, l->manager);
	r = lxd_instance_fetch(l, c, name, &in, &owner, &a, e);
	if (r < 0)
		return r;
	if (!owner_is(l, owner)) {
		lxd_answer_release(&a);
		return err_set(e, -ENOENT, "lxd: instance %s: not made by manager %s", name,
		               l->manager);
	}
	lxd_answer_release(&a);
	*ret = in;
	return 0;
}

int lxd_list(struct provider *p, const struct provider_call *c, struct instance_list *ret,
             struct err *e)
{
	struct lxd *l = p->priv;
	struct instance_list out = {0};
	struct lxd_answer a = {0};
	int r;

	struct lxd_req q = {
	        .path = "/1.0/instances", .query = "recursion=1", .max_body = l->max_list};
	r = lxd_call(l, c, &q, &a, e);
	if (r < 0)
		return r;
	r = lxd_parse_instances(a.meta, p->manager, &out, e);
	if (r == 0) {
		instance_list_release(ret);
		*ret = out;
		out.v = NULL;
	}
	instance_list_release(&out);
	lxd_answer_release(&a);
	return r;
}

/* PUT .../state {"action": action, ...} and wait. */
int lxd_instance_state_change(struct lxd *l, const struct provider_call *c, const char *name,
                              json_t *body, int64_t timeout_s, const char *what, struct err *e)
{
	struct buf path = BUF_INIT(512);
	char w[INSTANCE_NAME_MAX + 32];
	int r;

	if (!body)
		return err_set(e, -ENOMEM, "lxd: out of memory");
	snprintf(w, sizeof(w), "%s %s", what, name);
	if (lxd_path_of(&path, "instances", name, "/state") < 0)
		r = err_set(e, -ENAMETOOLONG, "lxd: name too long");
	else
		r = lxd_run(
		        l, c,
		        &(struct lxd_req){.method = "PUT", .path = buf_str(&path), .json = body},
		        timeout_s, w, NULL, e);
	json_decref(body);
	buf_release(&path);
	return r;
}

/* Status of name right now: -ENOENT when missing. */
static int instance_status(struct lxd *l, const struct provider_call *c, const char *name,
                           enum cloud_state *ret, struct err *e)
{
	struct lxd_answer a = {0};
	struct instance in;
	const char *owner;
	int r = lxd_instance_fetch(l, c, name, &in, &owner, &a, e);

	if (r == 0)
		*ret = in.state;
	lxd_answer_release(&a);
	return r;
}

/*
 * Stop name: gracefully for stop_timeout seconds when graceful, then by
 * force. 0 once it is stopped (or gone).
 */
static int instance_stop(struct lxd *l, const struct provider_call *c, const char *name,
                         bool graceful, struct err *e)
{
	enum cloud_state s;
	int r;

	if (graceful && l->stop_timeout > 0) {
		/* Its failure (timed out, already stopped) is judged by the state. */
		(void)lxd_instance_state_change(l, c, name,
		                                json_pack("{s:s, s:I}", "action", "stop", "timeout",
		                                          (json_int_t)l->stop_timeout),
		                                l->stop_timeout + LXD_WAIT_SLACK_MS / 1000, "stop",
		                                NULL);
		r = instance_status(l, c, name, &s, e);
		if (r == -ENOENT || (r == 0 && s == CLOUD_STOPPED))
			return 0;
	}
	r = lxd_instance_state_change(l, c, name,
	                              json_pack("{s:s, s:b}", "action", "stop", "force", 1),
	                              l->op_timeout, "force stop", e);
	if (r < 0) {
		struct err e2 = {0};
		int r2 = instance_status(l, c, name, &s, &e2);
		if (r2 == -ENOENT || (r2 == 0 && s == CLOUD_STOPPED))
			return 0; /* "already stopped" */
	}
	return r;
}

/*
 * Stop and delete name. Success only once a fetch of it answers 404: the
 * answer to a DELETE alone is not trusted (its operation may be lost in
 * an LXD restart, and the instance left). Refuses (-EPERM) an instance
 * another manager made. Retried for up to LXD_RETRY_S seconds: LXD 5.0
 * keeps an instance "busy running a stop operation" for a moment after a
 * graceful stop timed out, an image's init may restart it between the stop
 * and the delete, and LXD may be restarting.
 */
int lxd_instance_remove(struct lxd *l, const struct provider_call *c, const char *name,
                        bool graceful, struct err *e)
{
	struct buf path = BUF_INIT(512);
	char what[INSTANCE_NAME_MAX + 16];
	int64_t limit = l->op_timeout < LXD_RETRY_S ? l->op_timeout : LXD_RETRY_S;
	int64_t deadline = lxd_until(c, limit * 1000);
	int r = 0, act = 0;

	if (lxd_path_of(&path, "instances", name, NULL) < 0)
		return err_set(e, -ENAMETOOLONG, "lxd: name too long");
	snprintf(what, sizeof(what), "delete %s", name);
	for (int i = 0;; i++) {
		struct lxd_answer a = {0};
		struct instance in;
		const char *owner;

		if (provider_call_cancelled(c) ||
		    (i > 0 && act < 0 && !provider_call_sleep(c, LXD_RETRY_MS))) {
			r = err_set(e, -ECANCELED, "lxd: delete %s: cancelled", name);
			break;
		}
		r = lxd_instance_fetch(l, c, name, &in, &owner, &a, e);
		if (r == -ENOENT) {
			err_clear(e);
			r = 0;
			break;
		}
		if (r == 0 && !owner_is(l, owner)) {
			lxd_answer_release(&a);
			r = err_set(e, -EPERM, "lxd: delete %s: not made by manager %s", name,
			            l->manager);
			break;
		}
		lxd_answer_release(&a);
		if (clock_mono_ms() >= deadline) {
			if (r == 0 && act >= 0 && deadline == c->deadline)
				r = err_set(e, -EIO,
				            "lxd: delete %s: still there at the call's deadline",
				            name);
			else if (r == 0 && act >= 0)
				r = err_set(e, -EIO,
				            "lxd: delete %s: still there after %" PRId64 "s", name,
				            limit);
			else if (r == 0)
				r = act; /* its message is in e */
			break;
		}
		if (r < 0) {
			act = r; /* LXD unreachable, restarting: try again */
			continue;
		}
		if (in.state != CLOUD_STOPPED) {
			act = instance_stop(l, c, name, graceful && i == 0, e);
			if (act == -ETIMEDOUT || act == -ECANCELED) {
				r = act;
				break;
			}
			if (graceful && i == 0) /* the retries' time starts after it */
				deadline = lxd_until(c, limit * 1000);
			if (act < 0)
				continue;
		}
		act = lxd_run(l, c, &(struct lxd_req){.method = "DELETE", .path = buf_str(&path)},
		              l->op_timeout, what, NULL, e);
		if (act == -ENOENT)
			act = 0;
		/* Either way, the next fetch tells whether it is gone. */
	}
	buf_release(&path);
	return r;
}

int lxd_delete(struct provider *p, const struct provider_call *c, const char *name, struct err *e)
{
	struct lxd *l = p->priv;

	if (lxd_check_name(name, e) < 0)
		return -EINVAL;
	if (l->manager[0] && !name_is_owned(l->manager, name))
		return err_set(e, -EPERM, "lxd: delete %s: not a name of manager %s", name,
		               l->manager);
	return lxd_instance_remove(l, c, name, true, e);
}

/*
 * GET then DELETE the exec output logs an operation names (its stdout into
 * ret_out, at most ret_out's cap); -E2BIG over the cap. The logs live on
 * the host until deleted, so they are deleted whatever happens, but for a
 * call cancelled or out of time, which sends nothing more: those go with
 * the instance.
 */
static int exec_output(struct lxd *l, const struct provider_call *c, const char *name,
                       const json_t *op, struct buf *ret_out, struct err *e)
{
	char paths[2][LXD_LOG_PATH_MAX];
	int r = 0;

	lxd_parse_exec_logs(op, name, paths);
	if (!paths[0][0]) {
		r = err_set(e, -EBADMSG, "lxd: exec in %s: no output log", name);
	} else {
		struct httpc_response resp = {0};
		r = lxd_http(l, c, &(struct lxd_req){.path = paths[0], .max_body = ret_out->max},
		             &resp, e);
		if (r == 0 && resp.status != 200)
			r = err_set(e, lxd_status_errno(resp.status),
			            "lxd: exec in %s: output log: HTTP %ld", name, resp.status);
		if (r == 0 &&
		    buf_append(ret_out, resp.body.data ? resp.body.data : "", resp.body.len) < 0)
			r = err_set(e, -E2BIG, "lxd: exec in %s: output too large", name);
		httpc_response_release(&resp);
	}
	for (int i = 0; i < 2; i++) {
		struct lxd_answer a = {0};
		if (paths[i][0] &&
		    lxd_call(l, c, &(struct lxd_req){.method = "DELETE", .path = paths[i]}, &a,
		             NULL) == 0)
			lxd_answer_release(&a);
	}
	return r;
}

/*
 * Run argv in the instance: no websocket, no terminal. *ret_rc is its exit
 * status. Its standard output is recorded into *ret_out (appended, at most
 * its cap) when ret_out is not NULL; otherwise it is not kept.
 */
int lxd_instance_exec_out(struct lxd *l, const struct provider_call *c, const char *name,
                          const char *const *argv, int64_t timeout_s, int *ret_rc,
                          struct buf *ret_out, struct err *e)
{
	struct buf path = BUF_INIT(512);
	char what[INSTANCE_NAME_MAX + 16];
	json_t *body = NULL, *cmd = json_array(), *op = NULL;
	int r, rc;

	for (const char *const *a = argv; cmd && *a; a++)
		if (json_array_append_new(cmd, json_string(*a)) < 0) {
			json_decref(cmd);
			cmd = NULL;
		}
	if (cmd)
		body = json_pack("{s:o, s:b, s:b, s:b}", "command", cmd, "wait-for-websocket", 0,
		                 "interactive", 0, "record-output", ret_out != NULL);
	if (!body) {
		r = err_set(e, -ENOMEM, "lxd: out of memory");
		goto out;
	}
	if (lxd_path_of(&path, "instances", name, "/exec") < 0) {
		r = err_set(e, -ENAMETOOLONG, "lxd: name too long");
		goto out;
	}
	snprintf(what, sizeof(what), "exec in %s", name);
	r = lxd_run(l, c, &(struct lxd_req){.method = "POST", .path = buf_str(&path), .json = body},
	            timeout_s, what, &op, e);
	if (r < 0)
		goto out;
	if (lxd_parse_exec_return(op, &rc) < 0) {
		r = err_set(e, -EBADMSG, "lxd: %s: no return code", what);
		goto out;
	}
	if (ret_out) {
		r = exec_output(l, c, name, op, ret_out, e);
		if (r < 0)
			goto out;
	}
	*ret_rc = rc;
out:
	json_decref(op);
	json_decref(body);
	buf_release(&path);
	return r;
}

int lxd_instance_exec(struct lxd *l, const struct provider_call *c, const char *name,
                      const char *const *argv, int64_t timeout_s, int *ret_rc, struct err *e)
{
	return lxd_instance_exec_out(l, c, name, argv, timeout_s, ret_rc, NULL, e);
}

int lxd_health(struct provider *p, const struct provider_call *c, const char *name,
               enum health *ret, struct err *e)
{
	static const char *const argv[] = {"/bin/sh", "-c", lxd_health_script, NULL};
	struct lxd *l = p->priv;
	struct instance in;
	int r, rc = -1;

	r = lxd_get(p, c, name, &in, e);
	if (r == -ENOENT) {
		err_clear(e);
		*ret = HEALTH_UNKNOWN;
		return 0;
	}
	if (r < 0)
		return r;
	if (in.state != CLOUD_ACTIVE) {
		*ret = health_from_state(in.state);
		return 0;
	}
	r = lxd_instance_exec(l, c, name, argv, LXD_EXEC_TIMEOUT, &rc, e);
	if (r == -EIO || r == -EINVAL || r == -EAGAIN || r == -ENOENT) {
		/* LXD refused the exec (a VM whose agent is not up yet): nothing known. */
		err_clear(e);
		*ret = HEALTH_UNKNOWN;
		return 0;
	}
	if (r < 0)
		return r;
	*ret = rc == 0 ? HEALTH_HEALTHY : rc == 1 ? HEALTH_UNHEALTHY : HEALTH_UNKNOWN;
	return 0;
}
