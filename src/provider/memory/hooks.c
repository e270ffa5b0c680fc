/*
 * The memory provider's test hooks (memory.h): what tests and benchmarks
 * steer and read behind the backend's back. Each takes the lock the
 * operations take; none goes through the front.
 */
#include "provider/memory/memory_internal.h"
#include "util/strutil.h"

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
