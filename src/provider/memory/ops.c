/*
 * The in-memory provider's backend (see memory.h): the operations the
 * front calls, over the table of table.c, each counted, slowed and failed
 * as the hooks say. It must never touch the system: no processes, no files;
 * everything it "runs" is a struct in memory.
 */
#include "provider/memory/memory_internal.h"
#include "util/strutil.h"

static const struct provider_ops memory_ops;

struct memory *mem_of(struct provider *p)
{
	return p && p->ops == &memory_ops ? p->priv : NULL;
}

/*
 * Count the call, sleep its latency (a slow cloud: bounded by the call's
 * deadline, cut short by its cancel flag), take the lock, and return the
 * injected error or 0.
 */
static int mem_enter(struct memory *m, const struct provider_call *c, enum memory_op op)
{
	int64_t lat;
	int r = 0;

	pthread_mutex_lock(&m->lock);
	m->calls[op]++;
	lat = m->latency_us[op];
	pthread_mutex_unlock(&m->lock);
	if (lat > 0 && !provider_call_sleep(c, (lat + 999) / 1000)) {
		pthread_mutex_lock(&m->lock);
		return -ECANCELED;
	}
	pthread_mutex_lock(&m->lock);
	if (m->fail[op].err < 0 && m->fail[op].times != 0) {
		r = m->fail[op].err;
		if (m->fail[op].times > 0 && --m->fail[op].times == 0)
			m->fail[op].err = 0;
	}
	return r;
}

static char *dup_or_empty(const char *s)
{
	return str_dup(s ? s : "");
}

static int memory_create(struct provider *p, const struct provider_call *c,
                         const struct instance_spec *spec, struct instance *ret, struct err *e)
{
	struct memory *m = p->priv;
	struct instance in = {0};
	struct mem_inst *mi;
	int injected, r = 0;

	injected = mem_enter(m, c, MEMORY_OP_CREATE);
	if (mem_find(m, spec->name)) {
		r = err_set(e, -EEXIST, "create %s: already exists", spec->name);
		goto out;
	}
	str_copy(in.name, spec->name, sizeof(in.name));
	snprintf(in.provider_id, sizeof(in.provider_id), "mem-%" PRIu64, ++m->seq);
	if (spec->flavor && spec->flavor->name)
		str_copy(in.flavor, spec->flavor->name, sizeof(in.flavor));
	in.state = CLOUD_ACTIVE;
	in.created_at = time(NULL);
	if (injected < 0) {
		r = err_set(e, injected, "create %s: injected failure", spec->name);
		if (m->create_leaves == CLOUD_DELETED)
			goto out;
		in.state = m->create_leaves;
	}
	mi = mem_insert(m, &in);
	if (!mi) {
		r = err_set(e, -ENOMEM, "create %s: out of memory", spec->name);
		goto out;
	}
	mi->secret_env = dup_or_empty(spec->secret_env);
	mi->startup_script = dup_or_empty(spec->startup_script);
	if (!mi->secret_env || !mi->startup_script) {
		mem_remove(m, mi);
		r = err_set(e, -ENOMEM, "create %s: out of memory", spec->name);
		goto out;
	}
	if (r == 0)
		*ret = in;
out:
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int memory_get(struct provider *p, const struct provider_call *c, const char *name,
                      struct instance *ret, struct err *e)
{
	struct memory *m = p->priv;
	struct mem_inst *mi;
	int r = mem_enter(m, c, MEMORY_OP_GET);

	if (r < 0) {
		r = err_set(e, r, "get %s: injected failure", name ? name : "");
		goto out;
	}
	mi = mem_find(m, name);
	if (!mi) {
		r = err_set(e, -ENOENT, "instance %s: not found", name ? name : "");
		goto out;
	}
	*ret = mi->in;
out:
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int memory_list(struct provider *p, const struct provider_call *c, struct instance_list *ret,
                       struct err *e)
{
	struct memory *m = p->priv;
	struct instance_list out = {0};
	int r;

	r = mem_enter(m, c, MEMORY_OP_LIST);
	if (r < 0) {
		r = err_set(e, r, "list: injected failure (partial listing)");
		goto out;
	}
	for (size_t i = 0; i < m->n; i++) {
		if (!m->lie && !name_is_owned(p->manager, m->v[i].in.name))
			continue;
		if (instance_list_add(&out, &m->v[i].in) < 0) {
			r = err_set(e, -ENOMEM, "list: out of memory");
			goto out;
		}
	}
	instance_list_release(ret);
	*ret = out;
	out.v = NULL;
out:
	pthread_mutex_unlock(&m->lock);
	instance_list_release(&out);
	return r;
}

static int memory_delete(struct provider *p, const struct provider_call *c, const char *name,
                         struct err *e)
{
	struct memory *m = p->priv;
	struct mem_inst *mi;
	int r = mem_enter(m, c, MEMORY_OP_DELETE);

	if (r < 0) {
		r = err_set(e, r, "delete %s: injected failure", name ? name : "");
		goto out;
	}
	mi = mem_find(m, name);
	if (mi)
		mem_remove(m, mi);
out:
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int memory_health(struct provider *p, const struct provider_call *c, const char *name,
                         enum health *ret, struct err *e)
{
	struct memory *m = p->priv;
	struct mem_inst *mi;
	int r = mem_enter(m, c, MEMORY_OP_HEALTH);

	if (r < 0) {
		r = err_set(e, r, "health %s: injected failure", name ? name : "");
		goto out;
	}
	mi = mem_find(m, name);
	*ret = !mi ? HEALTH_UNKNOWN
	       : mi->health != HEALTH_UNKNOWN && mi->in.state == CLOUD_ACTIVE
	               ? mi->health
	               : health_from_state(mi->in.state);
out:
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int memory_pull_file(struct provider *p, const struct provider_call *c, const char *name,
                            const char *path, size_t max_bytes, struct buf *ret, struct err *e)
{
	struct memory *m = p->priv;
	struct buf b = BUF_INIT(max_bytes);
	struct mem_inst *mi;
	int r = mem_enter(m, c, MEMORY_OP_PULL_FILE);

	if (r < 0) {
		r = err_set(e, r, "pull %s: injected failure", name ? name : "");
		goto out;
	}
	mi = mem_find(m, name);
	if (!mi || !path) {
		r = err_set(e, -ENOENT, "pull %s: no such instance", name ? name : "");
		goto out;
	}
	for (size_t i = 0; i < mi->n_files; i++) {
		if (strcmp(mi->files[i].path, path) != 0)
			continue;
		if (m->lie)
			b.max = mi->files[i].len; /* a broken backend ignores the bound */
		else if (mi->files[i].len > max_bytes) {
			r = err_set(e, -E2BIG, "pull %s: %s: larger than %zu bytes", name, path,
			            max_bytes);
			goto out;
		}
		if (buf_append(&b, mi->files[i].data, mi->files[i].len) < 0) {
			r = err_set(e, -ENOMEM, "pull %s: out of memory", name);
			goto out;
		}
		buf_release(ret);
		*ret = b;
		b.data = NULL;
		goto out;
	}
	r = err_set(e, -ENOENT, "pull %s: %s: no such file", name, path);
out:
	pthread_mutex_unlock(&m->lock);
	buf_release(&b);
	return r;
}

/* The files put at dir/<plain name>, as the front asks (a liar: every one of them, unsorted). */
static int memory_list_files(struct provider *p, const struct provider_call *c, const char *name,
                             const char *dir, const struct provider_list_query *q,
                             struct provider_file_list *ret, struct err *e)
{
	struct memory *m = p->priv;
	struct provider_file_list out = {0};
	size_t dl = strlen(dir);
	struct mem_inst *mi;
	int r = mem_enter(m, c, MEMORY_OP_LIST_FILES);

	if (r < 0) {
		r = err_set(e, r, "list files %s: injected failure", name);
		goto out;
	}
	mi = mem_find(m, name);
	if (!mi) {
		r = err_set(e, -ENOENT, "list files %s: no such instance", name);
		goto out;
	}
	for (size_t i = 0; i < mi->n_files; i++) {
		const char *path = mi->files[i].path;
		struct provider_file f = {.size = (int64_t)mi->files[i].len,
		                          .mtime = mi->files[i].mtime};
		if (strncmp(path, dir, dl) != 0 || path[dl] != '/' || strchr(path + dl + 1, '/'))
			continue;
		str_copy(f.name, path + dl + 1, sizeof(f.name));
		if (m->lie) {
			struct provider_list_query all = {.max = SIZE_MAX};
			r = provider_file_list_offer(&out, &all, &f);
		} else {
			r = provider_file_list_offer(&out, q, &f);
		}
		if (r < 0) {
			r = err_set(e, r, "list files %s: out of memory", name);
			goto out;
		}
	}
	if (out.total == 0) {
		/* a directory is there when a file under it is */
		bool any = false;
		for (size_t i = 0; i < mi->n_files && !any; i++)
			any = strncmp(mi->files[i].path, dir, dl) == 0 &&
			      mi->files[i].path[dl] == '/';
		if (!any) {
			r = err_set(e, -ENOENT, "list files %s: %s: no such directory", name, dir);
			goto out;
		}
	}
	provider_file_list_release(ret);
	*ret = out;
	memset(&out, 0, sizeof(out));
out:
	pthread_mutex_unlock(&m->lock);
	provider_file_list_release(&out);
	return r;
}

static int memory_gc(struct provider *p, const struct provider_call *c, struct err *e)
{
	struct memory *m = p->priv;
	int r = mem_enter(m, c, MEMORY_OP_GC);

	if (r < 0)
		err_set(e, r, "gc: injected failure");
	pthread_mutex_unlock(&m->lock);
	return r;
}

static void memory_close(struct provider *p)
{
	struct memory *m = p->priv;

	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		mem_inst_release(&m->v[i]);
	free(m->v);
	free(m->index);
	pthread_mutex_destroy(&m->lock);
	free(m);
	p->priv = NULL;
}

static int memory_open(struct provider *p, const struct config_provider *pc, struct err *e)
{
	struct memory *m = calloc(1, sizeof(*m));

	if (!m || pthread_mutex_init(&m->lock, NULL) != 0) {
		free(m);
		return err_set(e, -ENOMEM, "memory provider: out of memory");
	}
	m->create_leaves = CLOUD_DELETED;
	p->priv = m;
	/* like a cloud whose instances can be looked into: every path of the manager runs */
	p->traits = (struct provider_traits){
	        .pull_files = true, .list_files = true, .health_probe = true};
	return 0;
}

static const struct provider_ops memory_ops = {
        .type = "memory",
        .open = memory_open,
        .create = memory_create,
        .get = memory_get,
        .list = memory_list,
        .delete = memory_delete,
        .health = memory_health,
        .pull_file = memory_pull_file,
        .list_files = memory_list_files,
        .gc = memory_gc,
        .close = memory_close,
};

int memory_new(const char *name, const char *manager, struct provider **ret, struct err *e)
{
	struct config_provider pc = {
	        .name = (char *)name, .type = (char *)"memory", .concurrency = 10};

	return provider_open_ops(&memory_ops, &pc, manager, ret, e);
}
