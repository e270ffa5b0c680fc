/*
 * The lxd backend's table of operations (provider_ops), its opening and
 * closing, what each operation may take (the deadlines the front puts on
 * it), and the knobs tests turn. It must never do an operation's work
 * itself: that lives in the file of its concern.
 */
#include "util/common.h"
#include "provider/lxd/lxd_internal.h"

static void lxd_close(struct provider *p)
{
	struct lxd *l = p->priv;

	if (!l)
		return;
	httpc_free(l->http);
	free(l->socket);
	free(l->project);
	free(l->network);
	free(l->pool);
	lxd_strings_free(l->profiles, l->n_profiles);
	lxd_strings_free(l->deny, l->n_deny);
	pthread_mutex_destroy(&l->trace_lock);
	pthread_mutex_destroy(&l->deny_lock);
	pthread_mutex_destroy(&l->stuck_lock);
	free(l);
	p->priv = NULL;
}

static bool lxd_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f || s[i] == '/' || s[i] == '?' ||
		    s[i] == '#' || s[i] == '%')
			return false;
	return true;
}

/*
 * What each operation may take, from the timeouts it is made of: a create
 * is a create, pushes, a start and, when it fails, waiting the create out
 * and a delete; a delete is a stop (graceful, then forced) and a delete.
 */
static void lxd_deadlines(struct provider *p)
{
	const struct lxd *l = p->priv;
	int64_t op = l->op_timeout * 1000, stop = l->stop_timeout * 1000, req = l->request_ms;

	p->deadline_ms[PROVIDER_OP_CREATE] = 4 * op + 2 * stop + 4 * req;
	p->deadline_ms[PROVIDER_OP_DELETE] = 2 * op + stop + 2 * req;
	p->deadline_ms[PROVIDER_OP_HEALTH] = op + req;
	p->deadline_ms[PROVIDER_OP_PULL_FILE] = op + 2 * req;
	p->deadline_ms[PROVIDER_OP_LIST_FILES] = op + 2 * req;
	p->deadline_ms[PROVIDER_OP_GET] = 2 * req;
	p->deadline_ms[PROVIDER_OP_LIST] = 2 * req;
}

/* Settings come from the config table (their defaults too); none are guessed here. */
static int lxd_open(struct provider *p, const struct config_provider *pc, struct err *e)
{
	const struct config_lxd *c = &pc->lxd;
	struct lxd *l = NULL;
	int r;

	if (!c->socket || !*c->socket || !c->project || !lxd_name_ok(c->project) || !c->network ||
	    !lxd_name_ok(c->network) || !c->storage_pool || !lxd_name_ok(c->storage_pool) ||
	    c->operation_timeout <= 0 || c->stop_timeout <= 0)
		return err_set(e, -EINVAL,
		               "providers.%s: a socket, project, network and storage pool (names) "
		               "and timeouts are needed",
		               pc->name);
	l = calloc(1, sizeof(*l));
	if (!l)
		return err_set(e, -ENOMEM, "lxd: out of memory");
	pthread_mutex_init(&l->trace_lock, NULL);
	pthread_mutex_init(&l->deny_lock, NULL);
	pthread_mutex_init(&l->stuck_lock, NULL);
	p->priv = l;
	l->socket = strdup(c->socket);
	l->project = strdup(c->project);
	l->network = strdup(c->network);
	l->pool = strdup(c->storage_pool);
	if (!l->socket || !l->project || !l->network || !l->pool) {
		r = err_set(e, -ENOMEM, "lxd: out of memory");
		goto fail;
	}
	if (c->profiles.n > 0) {
		l->profiles = calloc(c->profiles.n, sizeof(*l->profiles));
		if (!l->profiles) {
			r = err_set(e, -ENOMEM, "lxd: out of memory");
			goto fail;
		}
		for (; l->n_profiles < c->profiles.n; l->n_profiles++) {
			l->profiles[l->n_profiles] = strdup(c->profiles.v[l->n_profiles]);
			if (!l->profiles[l->n_profiles]) {
				r = err_set(e, -ENOMEM, "lxd: out of memory");
				goto fail;
			}
		}
	}
	l->type = c->type;
	l->bootstrap = c->bootstrap;
	str_copy(l->manager, p->manager, sizeof(l->manager));
	l->connect_ms = LXD_CONNECT_TIMEOUT_MS;
	l->request_ms = LXD_REQUEST_TIMEOUT_MS;
	l->op_timeout = c->operation_timeout;
	l->stop_timeout = c->stop_timeout;
	l->max_list = LXD_LIST_MAX;
	r = httpc_new(&l->http, e);
	if (r < 0)
		goto fail;
	lxd_deadlines(p);
	p->traits = (struct provider_traits){
	        .pull_files = true,
	        .list_files = true,
	        .health_probe = true,
	        .denylist = true,
	};
	return 0;
fail:
	lxd_close(p);
	return r;
}

const struct provider_ops lxd_ops = {
        .type = "lxd",
        .open = lxd_open,
        .create = lxd_create,
        .get = lxd_get,
        .list = lxd_list,
        .delete = lxd_delete,
        .health = lxd_health,
        .pull_file = lxd_pull_file,
        .list_files = lxd_list_files,
        .policy = lxd_policy,
        .close = lxd_close,
};

int lxd_set_trace(struct provider *p, lxd_trace_fn fn, void *arg)
{
	struct lxd *l;

	if (!p || p->ops != &lxd_ops)
		return -EINVAL;
	l = p->priv;
	pthread_mutex_lock(&l->trace_lock);
	l->trace = fn;
	l->trace_arg = arg;
	pthread_mutex_unlock(&l->trace_lock);
	return 0;
}

int lxd_set_opts(struct provider *p, const struct lxd_opts *opts)
{
	struct lxd *l;

	if (!p || p->ops != &lxd_ops || !opts)
		return -EINVAL;
	l = p->priv;
	if (opts->connect_timeout_ms > 0)
		l->connect_ms = opts->connect_timeout_ms;
	if (opts->request_timeout_ms > 0)
		l->request_ms = opts->request_timeout_ms;
	if (opts->operation_timeout > 0)
		l->op_timeout = opts->operation_timeout;
	if (opts->stop_timeout > 0)
		l->stop_timeout = opts->stop_timeout;
	if (opts->max_list_body > 0)
		l->max_list = opts->max_list_body;
	lxd_deadlines(p);
	return 0;
}
