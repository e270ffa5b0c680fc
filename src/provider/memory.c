/*
 * The in-memory provider (see memory.h): instances in a dense array indexed
 * by an open-addressing hash of their names, so get/create/delete stay O(1)
 * and list O(n) at benchmark sizes. It must never touch the system: no
 * processes, no files; everything it "runs" is a struct in memory.
 */
#include "util/common.h"
#include "provider/backend.h"
#include "provider/memory.h"
#include "util/strutil.h"

struct mem_file {
	char *path;
	char *data;
	size_t len;
	time_t mtime; /* what list_files says (memory_put_file: now) */
};

struct mem_inst {
	struct instance in;
	enum health health; /* what health() answers for a running instance; UNKNOWN: from state */
	char *secret_env;   /* wiped on free */
	char *startup_script;
	struct mem_file *files;
	size_t n_files;
};

struct mem_fail {
	int err;
	int times; /* < 0: until cleared */
};

struct memory {
	pthread_mutex_t lock;
	struct mem_inst *v; /* dense */
	size_t n, cap;
	uint32_t *index; /* slot -> 1 + position in v; 0 = empty; size is a power of two */
	size_t index_cap;
	uint64_t seq;
	struct mem_fail fail[MEMORY_OP_COUNT];
	enum cloud_state create_leaves;
	uint64_t calls[MEMORY_OP_COUNT];
	int64_t latency_us[MEMORY_OP_COUNT];
	bool lie; /* answer as a broken backend would */
};

static const struct provider_ops memory_ops;

static struct memory *mem_of(struct provider *p)
{
	return p && p->ops == &memory_ops ? p->priv : NULL;
}

static size_t mem_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)h;
}

/* Slot holding name, or the empty slot where it would go. */
static size_t mem_slot(const struct memory *m, const char *name)
{
	size_t mask = m->index_cap - 1, i = mem_hash(name) & mask;
	while (m->index[i] && strcmp(m->v[m->index[i] - 1].in.name, name) != 0)
		i = (i + 1) & mask;
	return i;
}

static struct mem_inst *mem_find(const struct memory *m, const char *name)
{
	size_t i;
	if (!m->index_cap || !name)
		return NULL;
	i = mem_slot(m, name);
	return m->index[i] ? &m->v[m->index[i] - 1] : NULL;
}

static int mem_reindex(struct memory *m, size_t cap)
{
	uint32_t *idx = calloc(cap, sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	free(m->index);
	m->index = idx;
	m->index_cap = cap;
	for (size_t k = 0; k < m->n; k++)
		m->index[mem_slot(m, m->v[k].in.name)] = (uint32_t)(k + 1);
	return 0;
}

/* Insert (name must be absent); the new entry is returned zeroed but for in. */
static struct mem_inst *mem_insert(struct memory *m, const struct instance *in)
{
	struct mem_inst *mi;

	if (m->n >= UINT32_MAX - 1)
		return NULL;
	if ((m->n + 1) * 2 > m->index_cap &&
	    mem_reindex(m, m->index_cap ? m->index_cap * 2 : 64) < 0)
		return NULL;
	if (m->n == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		struct mem_inst *v = realloc(m->v, ncap * sizeof(*v));
		if (!v)
			return NULL;
		m->v = v;
		m->cap = ncap;
	}
	mi = &m->v[m->n];
	memset(mi, 0, sizeof(*mi));
	mi->in = *in;
	m->index[mem_slot(m, in->name)] = (uint32_t)(m->n + 1);
	m->n++;
	return mi;
}

static void mem_inst_release(struct mem_inst *mi)
{
	if (mi->secret_env) {
		explicit_bzero(mi->secret_env, strlen(mi->secret_env));
		free(mi->secret_env);
	}
	free(mi->startup_script);
	for (size_t i = 0; i < mi->n_files; i++) {
		free(mi->files[i].path);
		free(mi->files[i].data);
	}
	free(mi->files);
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void mem_remove(struct memory *m, struct mem_inst *mi)
{
	size_t mask = m->index_cap - 1, pos = (size_t)(mi - m->v);
	size_t i = mem_slot(m, mi->in.name), j = i;

	for (;;) {
		size_t k;
		j = (j + 1) & mask;
		if (!m->index[j])
			break;
		k = mem_hash(m->v[m->index[j] - 1].in.name) & mask;
		/* Move j back to i unless its home k lies cyclically in (i, j]. */
		if ((i <= j) ? (k <= i || k > j) : (k <= i && k > j)) {
			m->index[i] = m->index[j];
			i = j;
		}
	}
	m->index[i] = 0;
	mem_inst_release(mi);
	m->n--;
	if (pos != m->n) {
		m->v[pos] = m->v[m->n];
		m->index[mem_slot(m, m->v[pos].in.name)] = (uint32_t)(pos + 1);
	}
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

int memory_set_traits(struct provider *p, const struct provider_traits *t)
{
	if (!mem_of(p) || !t)
		return -EINVAL;
	p->traits = *t;
	return 0;
}

int memory_set_concurrency(struct provider *p, int64_t slots)
{
	if (!mem_of(p) || slots < 1)
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	p->slots = slots;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int memory_set_deadline(struct provider *p, enum provider_op op, int64_t ms)
{
	if (!mem_of(p) || (unsigned)op >= PROVIDER_OP_COUNT || ms < 1)
		return -EINVAL;
	p->deadline_ms[op] = ms;
	return 0;
}

int memory_lie(struct provider *p, bool on)
{
	struct memory *m = mem_of(p);

	if (!m)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	m->lie = on;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* ---- test hooks ----------------------------------------------------- */

int memory_fail(struct provider *p, enum memory_op op, int err, int times)
{
	struct memory *m = mem_of(p);

	if (!m || (unsigned)op >= MEMORY_OP_COUNT || err > 0)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	m->fail[op].err = times == 0 ? 0 : err;
	m->fail[op].times = err == 0 ? 0 : times;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int memory_fail_create_leaves(struct provider *p, enum cloud_state s)
{
	struct memory *m = mem_of(p);

	if (!m)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	m->create_leaves = s;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int memory_set_latency(struct provider *p, enum memory_op op, int64_t usec)
{
	struct memory *m = mem_of(p);

	if (!m || (unsigned)op >= MEMORY_OP_COUNT || usec < 0)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	m->latency_us[op] = usec;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int memory_add(struct provider *p, const struct instance *in)
{
	struct memory *m = mem_of(p);
	struct mem_inst *mi;
	int r = 0;

	if (!m || !in || !name_is_valid(in->name, INSTANCE_NAME_MAX - 1))
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	if (mem_find(m, in->name)) {
		r = -EEXIST;
	} else {
		mi = mem_insert(m, in);
		if (!mi)
			r = -ENOMEM;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* Set one field of one instance, under the lock. */
enum mem_field { MEM_STATE, MEM_HEALTH, MEM_CREATED_AT };

static int mem_set(struct provider *p, const char *name, enum mem_field f, int64_t v)
{
	struct memory *m = mem_of(p);
	struct mem_inst *mi;

	if (!m)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	mi = mem_find(m, name);
	if (mi && f == MEM_STATE)
		mi->in.state = (enum cloud_state)v;
	else if (mi && f == MEM_HEALTH)
		mi->health = (enum health)v;
	else if (mi)
		mi->in.created_at = (time_t)v;
	pthread_mutex_unlock(&m->lock);
	return mi ? 0 : -ENOENT;
}

int memory_set_state(struct provider *p, const char *name, enum cloud_state s)
{
	return mem_set(p, name, MEM_STATE, s);
}

int memory_set_health(struct provider *p, const char *name, enum health h)
{
	return mem_set(p, name, MEM_HEALTH, h);
}

int memory_set_created_at(struct provider *p, const char *name, time_t t)
{
	return mem_set(p, name, MEM_CREATED_AT, t);
}

int memory_put_file(struct provider *p, const char *name, const char *path, const void *data,
                    size_t len)
{
	struct memory *m = mem_of(p);
	struct mem_inst *mi;
	struct mem_file *f = NULL;
	char *copy;
	int r = 0;

	if (!m || !path || (!data && len))
		return -EINVAL;
	copy = malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, data, len);
	copy[len] = '\0';
	pthread_mutex_lock(&m->lock);
	mi = mem_find(m, name);
	if (!mi) {
		r = -ENOENT;
		goto out;
	}
	for (size_t i = 0; i < mi->n_files; i++)
		if (strcmp(mi->files[i].path, path) == 0)
			f = &mi->files[i];
	if (!f) {
		struct mem_file *v = realloc(mi->files, (mi->n_files + 1) * sizeof(*v));
		char *pc = str_dup(path);
		if (!v || !pc) {
			if (v)
				mi->files = v;
			free(pc);
			r = -ENOMEM;
			goto out;
		}
		mi->files = v;
		f = &mi->files[mi->n_files++];
		f->path = pc;
		f->data = NULL;
	}
	free(f->data);
	f->data = copy;
	f->len = len;
	f->mtime = time(NULL);
	copy = NULL;
out:
	pthread_mutex_unlock(&m->lock);
	free(copy);
	return r;
}

int memory_set_file_time(struct provider *p, const char *name, const char *path, time_t mtime)
{
	struct memory *m = mem_of(p);
	struct mem_inst *mi;
	int r = -ENOENT;

	if (!m || !path)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	mi = mem_find(m, name);
	for (size_t i = 0; mi && i < mi->n_files; i++)
		if (strcmp(mi->files[i].path, path) == 0) {
			mi->files[i].mtime = mtime;
			r = 0;
		}
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int mem_get_string(struct provider *p, const char *name, bool secret, struct buf *ret)
{
	struct memory *m = mem_of(p);
	struct buf b = BUF_INIT(SIZE_MAX / 2);
	struct mem_inst *mi;
	int r = 0;

	if (!m)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	mi = mem_find(m, name);
	if (!mi)
		r = -ENOENT;
	else
		r = buf_puts(&b, secret ? (mi->secret_env ? mi->secret_env : "")
		                        : (mi->startup_script ? mi->startup_script : ""));
	pthread_mutex_unlock(&m->lock);
	if (r == 0 && !b.data)
		r = buf_append(&b, "", 0);
	if (r < 0) {
		buf_wipe(&b);
		return r;
	}
	buf_wipe(ret);
	*ret = b;
	return 0;
}

int memory_get_secret_env(struct provider *p, const char *name, struct buf *ret)
{
	return mem_get_string(p, name, true, ret);
}

int memory_get_startup_script(struct provider *p, const char *name, struct buf *ret)
{
	return mem_get_string(p, name, false, ret);
}

size_t memory_count(struct provider *p)
{
	struct memory *m = mem_of(p);
	size_t n;

	if (!m)
		return 0;
	pthread_mutex_lock(&m->lock);
	n = m->n;
	pthread_mutex_unlock(&m->lock);
	return n;
}

uint64_t memory_calls(struct provider *p, enum memory_op op)
{
	struct memory *m = mem_of(p);
	uint64_t n;

	if (!m || (unsigned)op >= MEMORY_OP_COUNT)
		return 0;
	pthread_mutex_lock(&m->lock);
	n = m->calls[op];
	pthread_mutex_unlock(&m->lock);
	return n;
}
