/*
 * runnerd's records of its local instances (work_dir/.state/<name>.json,
 * root's, 0600: name, flavor, leader pid and start time, uid, isolation)
 * and the names this process is creating right now: what a new daemon
 * knows of the instances an earlier one started, which uids are held, and
 * where /proc says each one is. A record is written before anything it speaks of
 * exists and removed only once that is gone (by ops.c); this file must
 * never remove a record, nor signal anything.
 */
#include "util/common.h"
#include "provider/local/local_internal.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#include <dirent.h>
#include <jansson.h>
#include <sys/wait.h>

#define LOCAL_RECORD_MAX 4096

int local_record_path(const struct local *l, const char *name, char *out, size_t cap)
{
	return local_path_join(out, cap, l->state_dir, name, ".json");
}

int local_records_open(const struct local *l, DIR **ret)
{
	int fd = open(l->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		int r = -errno;
		close(fd);
		return r;
	}
	*ret = d;
	return 0;
}

bool local_record_name(const char *file, char name[INSTANCE_NAME_MAX])
{
	size_t n = strlen(file);

	if (n <= 5 || n - 5 >= INSTANCE_NAME_MAX || strcmp(file + n - 5, ".json") != 0)
		return false;
	memcpy(name, file, n - 5);
	name[n - 5] = '\0';
	return true;
}

int local_record_write(const struct local *l, const struct local_record *r, struct err *e)
{
	char path[PATH_MAX];
	char *s = NULL;
	json_t *j;
	int ret;

	if (local_record_path(l, r->name, path, sizeof(path)) < 0)
		return err_set(e, -ENAMETOOLONG, "instance %s: record path too long", r->name);
	if (r->legacy)
		return err_set(e, -EINVAL, "instance %s: a legacy record is never written",
		               r->name);
	j = json_pack("{s:i, s:s, s:s, s:I, s:I, s:I, s:s, s:I}", "version", 2, "name", r->name,
	              "flavor", r->flavor, "pid", (json_int_t)r->pid, "starttime",
	              (json_int_t)r->starttime, "uid", (json_int_t)r->uid, "isolation",
	              r->isolated ? "pidns" : "none", "created_at", (json_int_t)r->created_at);
	if (j)
		s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		return err_set(e, -ENOMEM, "instance %s: out of memory", r->name);
	ret = file_write_atomic(path, s, strlen(s), 0600, e);
	free(s);
	return ret;
}

/* -ENOENT when there is no record, -EBADMSG when it cannot be understood. */
int local_record_read(const struct local *l, const char *name, struct local_record *ret,
                      struct err *e)
{
	struct buf b = BUF_INIT(LOCAL_RECORD_MAX);
	struct local_record rec = {0};
	char path[PATH_MAX];
	const char *rname = NULL, *flavor = NULL, *iso = NULL;
	json_int_t version = 0, pid = -1, start = -1, created = 0, uid = -1;
	json_error_t je;
	json_t *j = NULL;
	int r;

	if (local_record_path(l, name, path, sizeof(path)) < 0)
		return err_set(e, -ENAMETOOLONG, "instance %s: record path too long", name);
	r = file_read(path, LOCAL_RECORD_MAX, true, &b, e);
	if (r == -ENOENT)
		return err_set(e, -ENOENT, "instance %s: not found", name);
	if (r == -E2BIG)
		r = -EBADMSG;
	if (r < 0)
		goto out;
	j = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &je);
	/*
	 * Version 1: no uid, the shared user's (an older runnerd's instance).
	 * A uid outside today's range (uid_range changed meanwhile) is still
	 * the instance's: it is stopped by it.
	 */
	if (!j ||
	    json_unpack_ex(j, &je, 0, "{s:I, s:s, s:s, s:I, s:I, s?I, s:s, s:I}", "version",
	                   &version, "name", &rname, "flavor", &flavor, "pid", &pid, "starttime",
	                   &start, "uid", &uid, "isolation", &iso, "created_at", &created) < 0 ||
	    (version == 1 && uid != -1) || (version == 2 && (uid < 1 || uid > CONFIG_UID_MAX)) ||
	    (version != 1 && version != 2) || strcmp(rname, name) != 0 || pid < 0 ||
	    pid > INT_MAX || start < 0 || strlen(flavor) >= sizeof(rec.flavor) ||
	    (strcmp(iso, "pidns") != 0 && strcmp(iso, "none") != 0)) {
		r = err_set(e, -EBADMSG, "instance %s: %s: malformed record", name, path);
		goto out;
	}
	str_copy(rec.name, name, sizeof(rec.name));
	str_copy(rec.flavor, flavor, sizeof(rec.flavor));
	rec.pid = (pid_t)pid;
	rec.starttime = (uint64_t)start;
	rec.legacy = version == 1;
	rec.uid = rec.legacy ? l->uid : (uid_t)uid;
	rec.isolated = strcmp(iso, "pidns") == 0;
	rec.created_at = (time_t)created;
	*ret = rec;
out:
	json_decref(j);
	buf_release(&b);
	return r;
}

int local_records_each(struct local *l, int (*fn)(const struct local_record *rec, void *arg),
                       void *arg)
{
	struct dirent *de;
	DIR *d;
	int r = local_records_open(l, &d);

	if (r < 0)
		return r;
	while (r == 0 && (errno = 0, de = readdir(d))) {
		char name[INSTANCE_NAME_MAX];
		struct local_record rec;

		if (local_record_name(de->d_name, name) &&
		    name_is_valid(name, INSTANCE_NAME_MAX - 1) &&
		    local_record_read(l, name, &rec, NULL) == 0)
			r = fn(&rec, arg);
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(d);
	return r;
}

bool local_creating_has(const struct local *l, const char *name)
{
	for (size_t i = 0; i < l->n_creating; i++)
		if (strcmp(l->creating[i], name) == 0)
			return true;
	return false;
}

/* Call with l->lock held. */
int local_creating_add(struct local *l, const char *name)
{
	if (local_creating_has(l, name))
		return -EEXIST;
	if (l->n_creating == l->cap_creating) {
		size_t ncap = l->cap_creating ? l->cap_creating * 2 : 8;
		char(*v)[INSTANCE_NAME_MAX] = realloc(l->creating, ncap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->creating = v;
		l->cap_creating = ncap;
	}
	str_copy(l->creating[l->n_creating++], name, INSTANCE_NAME_MAX);
	return 0;
}

void local_creating_remove(struct local *l, const char *name)
{
	for (size_t i = 0; i < l->n_creating; i++) {
		if (strcmp(l->creating[i], name) != 0)
			continue;
		memmove(l->creating[i], l->creating[l->n_creating - 1], INSTANCE_NAME_MAX);
		l->n_creating--;
		return;
	}
}

/*
 * Where the record says the instance is. An error (not "gone") means /proc
 * could not be read: the caller must not conclude the instance stopped.
 */
int local_record_state(struct local *l, const struct local_record *rec, enum cloud_state *ret,
                       struct err *e)
{
	struct local_proc_info pi;
	int r;

	if (rec->pid == 0) {
		/* Recorded before its process started: being created here, or a crash
		 * interrupted the create (the process never ran, see the header). */
		pthread_mutex_lock(&l->lock);
		*ret = local_creating_has(l, rec->name) ? CLOUD_CREATED : CLOUD_ERROR;
		pthread_mutex_unlock(&l->lock);
		return 0;
	}
	r = local_proc_info_read(rec->pid, &pi);
	if (r == -ENOENT || (r == 0 && pi.starttime != rec->starttime)) {
		*ret = CLOUD_STOPPED;
		return 0;
	}
	if (r < 0)
		return err_set(e, r, "instance %s: reading /proc/%d: %s", rec->name, (int)rec->pid,
		               strerror(-r));
	if (local_proc_dead_state(pi.state)) {
		/* Our child only where runnerd is a subreaper; ECHILD otherwise. */
		(void)waitpid(rec->pid, NULL, WNOHANG);
		*ret = CLOUD_STOPPED;
		return 0;
	}
	*ret = CLOUD_ACTIVE;
	return 0;
}

void local_record_to_instance(const struct local_record *rec, enum cloud_state s,
                              struct instance *ret)
{
	memset(ret, 0, sizeof(*ret));
	str_copy(ret->name, rec->name, sizeof(ret->name));
	snprintf(ret->provider_id, sizeof(ret->provider_id), "%d", (int)rec->pid);
	str_copy(ret->flavor, rec->flavor, sizeof(ret->flavor));
	ret->state = s;
	ret->created_at = rec->created_at;
}
