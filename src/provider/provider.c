/*
 * The provider front (provider.h): picks a backend by type, and stands
 * between the manager and it on every call. It checks names and paths going
 * in, validates everything coming back as untrusted, gives each call its
 * deadline and the cancel flag, bounds creates and deletes per provider,
 * and counts. It must never grow backend-specific code: a backend's
 * differences are its traits, and a new backend adds one line to the table.
 */
#include "util/common.h"
#include "provider/backend.h"
#include "provider/local.h"
#include "provider/lxd.h"
#include "provider/openstack.h"
#include "util/strutil.h"

static const struct provider_ops *const provider_backends[] = {&local_ops, &lxd_ops,
                                                               &openstack_ops};

/* Default deadlines (seconds) per operation; a backend may set its own at open. */
static const int64_t default_deadline_s[PROVIDER_OP_COUNT] = {
        [PROVIDER_OP_CREATE] = 600,    [PROVIDER_OP_GET] = 60,     [PROVIDER_OP_LIST] = 120,
        [PROVIDER_OP_DELETE] = 300,    [PROVIDER_OP_HEALTH] = 60,  [PROVIDER_OP_PULL_FILE] = 60,
        [PROVIDER_OP_LIST_FILES] = 60, [PROVIDER_OP_POLICY] = 120, [PROVIDER_OP_GC] = 60,
};

static const char *const op_names[PROVIDER_OP_COUNT] = {
        [PROVIDER_OP_CREATE] = "create",
        [PROVIDER_OP_GET] = "get",
        [PROVIDER_OP_LIST] = "list",
        [PROVIDER_OP_DELETE] = "delete",
        [PROVIDER_OP_HEALTH] = "health",
        [PROVIDER_OP_PULL_FILE] = "pull_file",
        [PROVIDER_OP_LIST_FILES] = "list_files",
        [PROVIDER_OP_POLICY] = "policy",
        [PROVIDER_OP_GC] = "gc",
};

/* How long a wait for a create/delete slot sleeps before it looks at the cancel flag. */
#define SLOT_POLL_MS 100
/* A creation time further ahead than this is not a clock skew but a broken answer. */
#define CREATED_AHEAD_MAX (24 * 3600)

const char *provider_op_name(enum provider_op op)
{
	return (unsigned)op < PROVIDER_OP_COUNT ? op_names[op] : "invalid";
}

/* ---- the call context backends see -------------------------------------- */

int64_t provider_call_left_ms(const struct provider_call *c)
{
	int64_t left = c->deadline - clock_mono_ms();
	return left > 0 ? left : 0;
}

int64_t provider_call_bound_ms(const struct provider_call *c, int64_t ms)
{
	int64_t left = provider_call_left_ms(c);
	if (left < ms)
		ms = left;
	return ms > 0 ? ms : 1;
}

bool provider_call_cancelled(const struct provider_call *c)
{
	return atomic_load(c->cancel);
}

bool provider_call_sleep(const struct provider_call *c, int64_t ms)
{
	int64_t end = clock_mono_ms() + provider_call_bound_ms(c, ms);

	for (;;) {
		int64_t left = end - clock_mono_ms();
		if (provider_call_cancelled(c))
			return false;
		if (left <= 0)
			return true;
		clock_sleep_ms(left < 50 ? left : 50);
	}
}

/* ---- opening ------------------------------------------------------------ */

static const struct provider_ops *backend_of(const char *type)
{
	for (size_t i = 0; type && i < ARRAY_SIZE(provider_backends); i++)
		if (strcmp(provider_backends[i]->type, type) == 0)
			return provider_backends[i];
	return NULL;
}

bool provider_type_known(const char *type)
{
	return backend_of(type) != NULL;
}

int provider_open_ops(const struct provider_ops *ops, const struct config_provider *pc,
                      const char *manager, struct provider **ret, struct err *e)
{
	struct provider *p;
	int r;

	if (!pc || !pc->name || !name_is_valid(pc->name, PROVIDER_NAME_MAX - 1))
		return err_set(e, -EINVAL, "provider: invalid name");
	if (!manager || !name_is_valid(manager, MANAGER_NAME_MAX))
		return err_set(e, -EINVAL, "provider %s: invalid manager name", pc->name);
	p = calloc(1, sizeof(*p));
	if (!p)
		return err_set(e, -ENOMEM, "provider %s: out of memory", pc->name);
	p->ops = ops;
	str_copy(p->name, pc->name, sizeof(p->name));
	str_copy(p->manager, manager, sizeof(p->manager));
	for (size_t i = 0; i < PROVIDER_OP_COUNT; i++)
		p->deadline_ms[i] = default_deadline_s[i] * 1000;
	p->slots = pc->concurrency > 0 ? pc->concurrency : 10;
	atomic_init(&p->never, false);
	p->cancel = &p->never;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->slot_free, NULL);
	r = ops->open(p, pc, e);
	if (r < 0) {
		pthread_cond_destroy(&p->slot_free);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return r;
	}
	*ret = p;
	return 0;
}

int provider_open(const struct config_provider *pc, const char *manager, struct provider **ret,
                  struct err *e)
{
	const struct provider_ops *ops = pc ? backend_of(pc->type) : NULL;

	if (!ops)
		return err_set(e, -ENOENT, "provider %s: type %s is not built into this runnerd",
		               pc && pc->name ? pc->name : "?", pc && pc->type ? pc->type : "?");
	return provider_open_ops(ops, pc, manager, ret, e);
}

void provider_free(struct provider *p)
{
	if (!p)
		return;
	if (p->ops->close)
		p->ops->close(p);
	pthread_cond_destroy(&p->slot_free);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

const char *provider_name(const struct provider *p)
{
	return p->name;
}

const char *provider_type(const struct provider *p)
{
	return p->ops->type;
}

const struct provider_traits *provider_traits(const struct provider *p)
{
	return &p->traits;
}

void provider_set_cancel(struct provider *p, const atomic_bool *cancel)
{
	pthread_mutex_lock(&p->lock);
	p->cancel = cancel ? cancel : &p->never;
	pthread_cond_broadcast(&p->slot_free);
	pthread_mutex_unlock(&p->lock);
}

void provider_stats(struct provider *p, struct provider_stats *ret)
{
	pthread_mutex_lock(&p->lock);
	*ret = p->stats;
	pthread_mutex_unlock(&p->lock);
}

/* ---- one call ----------------------------------------------------------- */

struct call {
	struct provider *p;
	enum provider_op op;
	struct provider_call c;
	int64_t started;
	bool slot;     /* holds a create/delete slot */
	struct err le; /* what the backend said */
};

static int call_begin(struct call *k, struct provider *p, enum provider_op op, struct err *e)
{
	*k = (struct call){.p = p, .op = op};
	pthread_mutex_lock(&p->lock);
	k->c.cancel = p->cancel;
	pthread_mutex_unlock(&p->lock);
	k->started = clock_mono_ms();
	k->c.deadline = k->started + p->deadline_ms[op];
	if (atomic_load(k->c.cancel))
		return err_set(e, -ECANCELED, "provider %s: %s: cancelled", p->name,
		               provider_op_name(op));
	return 0;
}

/* Creates and deletes wait for one of the provider's slots (cancellable, within the deadline). */
static int call_take_slot(struct call *k, struct err *e)
{
	struct provider *p = k->p;
	int r = 0;

	pthread_mutex_lock(&p->lock);
	while (p->in_use >= p->slots) {
		struct timespec ts;
		int64_t wake;

		if (atomic_load(k->c.cancel)) {
			r = -ECANCELED;
			break;
		}
		if (provider_call_left_ms(&k->c) == 0) {
			r = -ETIMEDOUT;
			break;
		}
		wake = clock_wall_ms() + provider_call_bound_ms(&k->c, SLOT_POLL_MS);
		ts.tv_sec = wake / 1000;
		ts.tv_nsec = (wake % 1000) * 1000000L;
		pthread_cond_timedwait(&p->slot_free, &p->lock, &ts);
	}
	if (r == 0) {
		p->in_use++;
		k->slot = true;
	}
	pthread_mutex_unlock(&p->lock);
	if (r == -ECANCELED)
		return err_set(e, r, "provider %s: %s: cancelled while waiting for a slot", p->name,
		               provider_op_name(k->op));
	if (r < 0)
		return err_set(e, r,
		               "provider %s: %s: no slot within its deadline (%" PRId64
		               " calls at once at most)",
		               p->name, provider_op_name(k->op), p->slots);
	return 0;
}

/* Who settled a call's result. */
enum settled {
	BY_BACKEND = 0, /* r is what the backend returned, its message in k->le */
	BY_FRONT,       /* the call did not reach the backend (bad input, cancelled); e is set */
	BY_REFUSAL,     /* the front refused the backend's answer; e is set */
};

/*
 * Count the call and settle its result. A read that ended past its
 * deadline is stale and refused too.
 */
static int call_end(struct call *k, int r, enum settled by, struct err *e)
{
	struct provider *p = k->p;
	int64_t now = clock_mono_ms();
	bool late = now >= k->c.deadline;
	/* what a late read says is stale; what a late create, delete, policy or gc did stands */
	bool read = k->op == PROVIDER_OP_GET || k->op == PROVIDER_OP_LIST ||
	            k->op == PROVIDER_OP_HEALTH || k->op == PROVIDER_OP_PULL_FILE ||
	            k->op == PROVIDER_OP_LIST_FILES;
	bool refused = by == BY_REFUSAL;
	struct provider_op_stats *st;

	if (by != BY_BACKEND) {
		/* e holds the front's message */
	} else if (r < 0) {
		/* a backend that failed without saying why still gets a message */
		if (!k->le.msg[0])
			err_set(&k->le, r, "provider %s: %s failed: %s", p->name,
			        provider_op_name(k->op), strerror(-r));
		k->le.code = r;
		if (e)
			*e = k->le;
	} else if (r > 0) {
		refused = true;
		r = err_set(e, -EBADMSG, "provider %s: %s answered %d, not 0 or -errno", p->name,
		            provider_op_name(k->op), r);
	} else if (late && read) {
		r = err_set(e, -ETIMEDOUT,
		            "provider %s: %s took %" PRId64 " ms, past its deadline of %" PRId64
		            " ms: its answer is stale",
		            p->name, provider_op_name(k->op), now - k->started,
		            p->deadline_ms[k->op]);
	}
	pthread_mutex_lock(&p->lock);
	st = &p->stats.op[k->op];
	st->calls++;
	st->failures += r < 0;
	st->overruns += late;
	st->refused += refused;
	st->total_ms += (uint64_t)(now - k->started);
	if (k->slot) {
		p->in_use--;
		pthread_cond_signal(&p->slot_free);
	}
	pthread_mutex_unlock(&p->lock);
	return r;
}

/* ---- what goes in ------------------------------------------------------- */

static int check_name(const struct provider *p, const char *name, const char *op, struct err *e)
{
	if (!name || !name_is_owned(p->manager, name))
		return err_set(e, -EINVAL, "provider %s: %s: %s is not a name of manager %s",
		               p->name, op, name ? name : "(null)", p->manager);
	return 0;
}

/* A path inside an instance: relative or absolute, printable, no "..", bounded. */
static int check_path(const struct provider *p, const char *path, struct err *e)
{
	size_t n = path ? strlen(path) : 0;

	if (n == 0 || n >= PATH_MAX)
		return err_set(e, -EINVAL, "provider %s: empty or over-long path", p->name);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f)
			return err_set(e, -EINVAL, "provider %s: control character in a path",
			               p->name);
	for (const char *s = path; s;) {
		const char *slash = strchr(s, '/');
		size_t len = slash ? (size_t)(slash - s) : strlen(s);
		if (len == 2 && s[0] == '.' && s[1] == '.')
			return err_set(e, -EINVAL, "provider %s: %s: \"..\" is refused", p->name,
			               path);
		s = slash ? slash + 1 : NULL;
	}
	return 0;
}

/* ---- what comes back ---------------------------------------------------- */

static bool terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

/* Whether in is a well-formed instance of this manager (and, when want, the one asked for). */
static int check_instance(struct provider *p, const struct instance *in, const char *want,
                          struct err *e)
{
	const char *why = NULL;

	if (!terminated(in->name, sizeof(in->name)) ||
	    !terminated(in->provider_id, sizeof(in->provider_id)) ||
	    !terminated(in->flavor, sizeof(in->flavor)))
		why = "an unterminated field";
	else if (!name_is_owned(p->manager, in->name))
		why = "a name this manager does not own";
	else if (want && strcmp(in->name, want) != 0)
		why = "another instance than the one asked for";
	else if ((unsigned)in->state >= CLOUD_STATE_COUNT)
		why = "an unknown state";
	else if (in->flavor[0] && !name_is_valid(in->flavor, FLAVOR_NAME_MAX - 1))
		why = "an invalid flavor name";
	else if (in->created_at < 0 || in->created_at > time(NULL) + CREATED_AHEAD_MAX)
		why = "an impossible creation time";
	if (!why)
		return 0;
	return err_set(e, -EBADMSG, "provider %s: refused an instance with %s%s%.64s", p->name, why,
	               terminated(in->name, sizeof(in->name)) ? ": " : "",
	               terminated(in->name, sizeof(in->name)) ? in->name : "");
}

/* The instance as the manager gets it: the provider's name set, no probe yet. */
static void stamp(const struct provider *p, struct instance *in)
{
	str_copy(in->provider, p->name, sizeof(in->provider));
	in->probe = HEALTH_UNKNOWN;
}

/* ---- the operations ----------------------------------------------------- */

int provider_create(struct provider *p, const struct instance_spec *spec, struct instance *ret,
                    struct err *e)
{
	struct instance in = {0};
	struct call k;
	int r;

	r = call_begin(&k, p, PROVIDER_OP_CREATE, e);
	if (r == 0 && (!spec || !spec->startup_script || !spec->flavor))
		r = err_set(e, -EINVAL, "provider %s: create: incomplete instance spec", p->name);
	if (r == 0)
		r = check_name(p, spec->name, "create", e);
	if (r == 0)
		r = call_take_slot(&k, e);
	if (r < 0)
		return call_end(&k, r, BY_FRONT, e);
	r = p->ops->create(p, &k.c, spec, &in, &k.le);
	/* the instance exists: a broken answer is an error the caller cleans up after */
	if (r == 0 && check_instance(p, &in, spec->name, e) < 0)
		return call_end(&k, -EBADMSG, BY_REFUSAL, e);
	r = call_end(&k, r, BY_BACKEND, e);
	if (r == 0) {
		stamp(p, &in);
		*ret = in;
	}
	return r;
}

int provider_get(struct provider *p, const char *name, struct instance *ret, struct err *e)
{
	struct instance in = {0};
	struct call k;
	int r;

	r = call_begin(&k, p, PROVIDER_OP_GET, e);
	if (r == 0)
		r = check_name(p, name, "get", e);
	if (r < 0)
		return call_end(&k, r, BY_FRONT, e);
	r = p->ops->get(p, &k.c, name, &in, &k.le);
	if (r == 0 && check_instance(p, &in, name, e) < 0)
		return call_end(&k, -EBADMSG, BY_REFUSAL, e);
	r = call_end(&k, r, BY_BACKEND, e);
	if (r == 0) {
		stamp(p, &in);
		*ret = in;
	}
	return r;
}

int provider_list(struct provider *p, struct instance_list *ret, struct err *e)
{
	struct instance_list l = {0};
	struct call k;
	int r;

	r = call_begin(&k, p, PROVIDER_OP_LIST, e);
	if (r < 0)
		return call_end(&k, r, BY_FRONT, e);
	r = p->ops->list(p, &k.c, &l, &k.le);
	/* one broken entry makes the whole listing untrustworthy: no deletions on it */
	for (size_t i = 0; r == 0 && i < l.n; i++)
		if (check_instance(p, &l.v[i], NULL, e) < 0) {
			instance_list_release(&l);
			return call_end(&k, -EBADMSG, BY_REFUSAL, e);
		}
	r = call_end(&k, r, BY_BACKEND, e);
	if (r < 0) {
		instance_list_release(&l);
		return r;
	}
	for (size_t i = 0; i < l.n; i++)
		stamp(p, &l.v[i]);
	instance_list_release(ret);
	*ret = l;
	return 0;
}

int provider_delete(struct provider *p, const char *name, struct err *e)
{
	struct call k;
	int r;

	r = call_begin(&k, p, PROVIDER_OP_DELETE, e);
	if (r == 0)
		r = check_name(p, name, "delete", e);
	if (r == 0)
		r = call_take_slot(&k, e);
	if (r < 0)
		return call_end(&k, r, BY_FRONT, e);
	r = p->ops->delete (p, &k.c, name, &k.le);
	return call_end(&k, r, BY_BACKEND, e);
}

int provider_health(struct provider *p, const char *name, enum health *ret, struct err *e)
{
	enum health h = HEALTH_UNKNOWN;
	struct call k;
	int r;

	r = call_begin(&k, p, PROVIDER_OP_HEALTH, e);
	if (r == 0)
		r = check_name(p, name, "health", e);
	if (r < 0)
		return call_end(&k, r, BY_FRONT, e);
	r = p->ops->health(p, &k.c, name, &h, &k.le);
	if (r == 0 && (unsigned)h >= HEALTH_COUNT) {
		err_set(e, -EBADMSG, "provider %s: refused health %d of %s", p->name, (int)h, name);
		return call_end(&k, -EBADMSG, BY_REFUSAL, e);
	}
	r = call_end(&k, r, BY_BACKEND, e);
	if (r == 0)
		*ret = h;
	return r;
}

int provider_pull_file(struct provider *p, const char *name, const char *path, size_t max_bytes,
                       struct buf *ret, struct err *e)
{
	struct buf b = BUF_INIT(max_bytes);
	struct call k;
	int r;

	r = call_begin(&k, p, PROVIDER_OP_PULL_FILE, e);
	if (r == 0 && !p->ops->pull_file)
		r = err_set(e, -ENOTSUP, "provider %s cannot read files inside instances", p->name);
	if (r == 0)
		r = check_name(p, name, "pull_file", e);
	if (r == 0)
		r = check_path(p, path, e);
	if (r == 0 && (max_bytes == 0 || max_bytes > PROVIDER_PULL_MAX))
		r = err_set(e, -EINVAL, "provider %s: pull_file: at most %d bytes", p->name,
		            PROVIDER_PULL_MAX);
	if (r < 0)
		return call_end(&k, r, BY_FRONT, e);
	r = p->ops->pull_file(p, &k.c, name, path, max_bytes, &b, &k.le);
	if (r == 0 && b.len > max_bytes) {
		buf_release(&b);
		err_set(e, -EBADMSG, "provider %s: refused %s of %s: more than the %zu bytes asked",
		        p->name, path, name, max_bytes);
		return call_end(&k, -EBADMSG, BY_REFUSAL, e);
	}
	r = call_end(&k, r, BY_BACKEND, e);
	if (r < 0) {
		buf_release(&b);
		return r;
	}
	buf_release(ret);
	*ret = b;
	return 0;
}

int provider_list_files(struct provider *p, const char *name, const char *dir,
                        const struct provider_list_query *q, struct provider_file_list *ret,
                        struct err *e)
{
	struct provider_file_list l = {0};
	const char *why;
	struct call k;
	int r;

	r = call_begin(&k, p, PROVIDER_OP_LIST_FILES, e);
	if (r == 0 && (!p->ops->list_files || !p->traits.list_files))
		r = err_set(e, -ENOTSUP, "provider %s cannot list files inside instances", p->name);
	if (r == 0)
		r = check_name(p, name, "list_files", e);
	if (r == 0)
		r = check_path(p, dir, e);
	if (r == 0)
		r = provider_file_query_check(p, q, e);
	if (r < 0)
		return call_end(&k, r, BY_FRONT, e);
	r = p->ops->list_files(p, &k.c, name, dir, q, &l, &k.le);
	if (r == 0 && (why = provider_file_list_check(&l, q))) {
		provider_file_list_release(&l);
		err_set(e, -EBADMSG, "provider %s: refused the listing of %s in %s: %s", p->name,
		        dir, name, why);
		return call_end(&k, -EBADMSG, BY_REFUSAL, e);
	}
	r = call_end(&k, r, BY_BACKEND, e);
	if (r < 0) {
		provider_file_list_release(&l);
		return r;
	}
	provider_file_list_release(ret);
	*ret = l;
	return 0;
}

int provider_policy(struct provider *p, const struct provider_policy *pol, struct err *e)
{
	struct call k;
	int r;

	r = call_begin(&k, p, PROVIDER_OP_POLICY, e);
	if (r == 0 && !pol)
		r = err_set(e, -EINVAL, "provider %s: no policy", p->name);
	if (r < 0)
		return call_end(&k, r, BY_FRONT, e);
	r = p->ops->policy ? p->ops->policy(p, &k.c, pol, &k.le) : 0;
	return call_end(&k, r, BY_BACKEND, e);
}

int provider_gc_peers(struct provider *p, const struct config_provider *peers, size_t n,
                      struct err *e)
{
	struct call k;
	int r;

	r = call_begin(&k, p, PROVIDER_OP_GC, e);
	if (r < 0)
		return call_end(&k, r, BY_FRONT, e);
	/* one gc at a time (the pass's thread): the peers live as long as the call */
	p->peers = peers;
	p->n_peers = peers ? n : 0;
	r = p->ops->gc ? p->ops->gc(p, &k.c, &k.le) : 0;
	p->peers = NULL;
	p->n_peers = 0;
	return call_end(&k, r, BY_BACKEND, e);
}

int provider_gc(struct provider *p, struct err *e)
{
	return provider_gc_peers(p, NULL, 0, e);
}

/* ---- instance lists ----------------------------------------------------- */

int instance_list_add(struct instance_list *l, const struct instance *in)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		struct instance *v;

		if (ncap > SIZE_MAX / sizeof(*v))
			return -ENOMEM;
		v = realloc(l->v, ncap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = ncap;
	}
	l->v[l->n++] = *in;
	return 0;
}

void instance_list_release(struct instance_list *l)
{
	if (!l)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
	l->cap = 0;
}
