/*
 * The local backend's operations (its struct provider_ops): create, get,
 * list, delete, health and gc, made of the steps of the other files. The
 * front has checked names already. It must never start a script before
 * its record holds the script's pid and uid, never remove a record (and so
 * free its uid) before the instance's processes are gone, and never touch
 * an instance of a name this manager does not own.
 */
#include "util/common.h"
#include "provider/local/local_internal.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#include <dirent.h>
#include <signal.h>
#include <sys/pidfd.h>

int local_check_name(const char *name, struct err *e)
{
	if (!name || !name_is_valid(name, INSTANCE_NAME_MAX - 1))
		return err_set(e, -EINVAL, "invalid instance name");
	return 0;
}

/*
 * Undo a create that failed (dir and rpath: what it made, NULL when not):
 * a B not told "go" exits by itself once "go" is closed, one that was is
 * killed, then the dir and the record go. The stop is bounded by the
 * call's deadline but not given up when the call is cancelled: it is the
 * cleanup of a call that gave up. False when what it started was not seen
 * gone: the record (its pid and start time) and the dir then stay, for a
 * delete to stop it.
 */
static bool create_undo(struct local *l, const struct provider_call *c,
                        struct local_spawn_handle *h, const struct local_record *rec,
                        const char *dir, const char *rpath)
{
	if (h->go >= 0) {
		close(h->go);
		h->go = -1;
	}
	if (h->pidfd >= 0)
		(void)pidfd_send_signal(h->pidfd, SIGKILL, NULL, 0);
	if (rec->pid > 0 && local_stop(l, rec, 0, c, NULL) < 0)
		return false;
	if (dir)
		(void)rm_rf(dir, NULL);
	if (rpath)
		(void)unlink(rpath);
	return true;
}

static int local_create(struct provider *p, const struct provider_call *c,
                        const struct instance_spec *spec, struct instance *ret, struct err *e)
{
	struct local *l = p->priv;
	struct local_spawn_handle h = {.pidfd = -1, .rep = -1, .go = -1};
	struct local_record rec = {0};
	struct local_env env = {0};
	struct local_spawn_plan *pl = NULL;
	enum cloud_state state;
	char dir[PATH_MAX], rpath[PATH_MAX];
	bool registered = false, recorded = false, made_dir = false, isolate;
	struct stat st;
	int r;

	if (local_path_join(dir, sizeof(dir), l->work_dir, spec->name, "") < 0 ||
	    local_record_path(l, spec->name, rpath, sizeof(rpath)) < 0)
		return err_set(e, -ENAMETOOLONG, "create %s: path too long", spec->name);

	/* USER: the uid has no account; its instance's name is what it is known by */
	if (local_env_base(&env, dir, spec->name, spec->runner_tarball != NULL) < 0) {
		r = err_set(e, -ENOMEM, "create %s: out of memory", spec->name);
		goto out;
	}
	if (spec->secret_env && (r = local_env_add_secrets(&env, spec->secret_env, e)) < 0) {
		err_prefix(e, "create %s", spec->name);
		goto out;
	}

	pthread_mutex_lock(&l->lock);
	r = local_creating_add(l, spec->name);
	isolate = l->isolate;
	pthread_mutex_unlock(&l->lock);
	if (r < 0) {
		r = err_set(e, r, "create %s: %s", spec->name,
		            r == -EEXIST ? "already being created" : strerror(-r));
		goto out;
	}
	registered = true;
	if (lstat(rpath, &st) == 0 || lstat(dir, &st) == 0) {
		r = err_set(e, -EEXIST, "create %s: already exists", spec->name);
		goto out;
	}

	/*
	 * Recorded, with the uid it holds from now on, before anything
	 * exists, so a crash leaves nothing unaccounted for.
	 */
	str_copy(rec.name, spec->name, sizeof(rec.name));
	if (spec->flavor && spec->flavor->name)
		str_copy(rec.flavor, spec->flavor->name, sizeof(rec.flavor));
	rec.isolated = isolate;
	rec.created_at = time(NULL);
	r = local_uid_claim(l, c, &rec, e);
	if (r < 0)
		goto out;
	recorded = true;
	if (mkdir(dir, 0700) < 0) {
		r = err_set(e, -errno, "create %s: mkdir %s: %s", spec->name, dir, strerror(errno));
		goto out;
	}
	made_dir = true;
	r = local_instance_populate(dir, spec, rec.uid, e);
	if (r < 0)
		goto out;

	r = local_spawn_plan_new(spec->name, l, isolate, dir, rec.uid, env.v, &pl, e);
	if (r < 0)
		goto out;
	r = local_spawn_start(spec->name, pl, c, &h, e);
	if (r < 0)
		goto out;
	rec.pid = h.pid;
	rec.starttime = h.starttime;
	r = local_record_write(l, &rec, e);
	if (r < 0)
		goto out;
	r = local_spawn_go(spec->name, &h, c, e);
	if (r < 0)
		goto out;
	r = local_record_state(l, &rec, &state, e);
	if (r < 0)
		goto out;
	local_record_to_instance(&rec, state, ret);
out:
	if (r < 0 && !create_undo(l, c, &h, &rec, made_dir ? dir : NULL, recorded ? rpath : NULL)) {
		r = PROVIDER_EMAYREMAIN;
		if (e) {
			err_prefix(e, "create %s: what it started may remain", spec->name);
			e->code = r;
		}
	}
	local_spawn_close(&h);
	local_spawn_plan_free(pl);
	local_env_wipe(&env);
	if (registered) {
		pthread_mutex_lock(&l->lock);
		local_creating_remove(l, spec->name);
		pthread_mutex_unlock(&l->lock);
	}
	return r;
}

static int local_get(struct provider *p, const struct provider_call *c, const char *name,
                     struct instance *ret, struct err *e)
{
	struct local *l = p->priv;
	struct local_record rec = {0};
	enum cloud_state state = CLOUD_ERROR;
	int r;

	if (local_check_name(name, e) < 0)
		return -EINVAL;
	r = local_record_read(l, name, &rec, e);
	if (r == -EBADMSG) {
		/* Unreadable record: report it so the manager deletes it. */
		str_copy(rec.name, name, sizeof(rec.name));
	} else if (r < 0) {
		return r;
	} else {
		r = local_record_state(l, &rec, &state, e);
		if (r < 0)
			return r;
	}
	local_record_to_instance(&rec, state, ret);
	return 0;
}

static int local_list(struct provider *p, const struct provider_call *c, struct instance_list *ret,
                      struct err *e)
{
	struct local *l = p->priv;
	struct instance_list out = {0};
	struct dirent *de;
	DIR *d = NULL;
	int r = local_records_open(l, &d);

	if (r < 0)
		return err_set(e, r, "list: %s: %s", l->state_dir, strerror(-r));
	for (;;) {
		char name[INSTANCE_NAME_MAX];
		struct local_record rec = {0};
		struct instance in;
		enum cloud_state state = CLOUD_ERROR;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				r = err_set(e, -errno, "list: %s: %s", l->state_dir,
				            strerror(errno));
			break;
		}
		if (!local_record_name(de->d_name, name) || !name_is_owned(p->manager, name))
			continue;
		r = local_record_read(l, name, &rec, e);
		if (r == -ENOENT) { /* deleted while we listed */
			r = 0;
			continue;
		}
		if (r == -EBADMSG) {
			str_copy(rec.name, name, sizeof(rec.name));
			r = 0;
		} else if (r < 0 || (r = local_record_state(l, &rec, &state, e)) < 0) {
			break;
		}
		local_record_to_instance(&rec, state, &in);
		if (instance_list_add(&out, &in) < 0) {
			r = err_set(e, -ENOMEM, "list: out of memory");
			break;
		}
	}
	closedir(d);
	if (r < 0) {
		instance_list_release(&out);
		return r;
	}
	instance_list_release(ret);
	*ret = out;
	return 0;
}

static int local_delete(struct provider *p, const struct provider_call *c, const char *name,
                        struct err *e)
{
	struct local *l = p->priv;
	struct local_record rec = {0};
	char dir[PATH_MAX], rpath[PATH_MAX];
	bool busy;
	int r;

	if (local_check_name(name, e) < 0)
		return -EINVAL;
	if (local_path_join(dir, sizeof(dir), l->work_dir, name, "") < 0 ||
	    local_record_path(l, name, rpath, sizeof(rpath)) < 0)
		return err_set(e, -ENAMETOOLONG, "delete %s: path too long", name);
	pthread_mutex_lock(&l->lock);
	busy = local_creating_has(l, name);
	pthread_mutex_unlock(&l->lock);
	if (busy)
		return err_set(e, -EBUSY, "delete %s: being created", name);
	r = local_record_read(l, name, &rec, e);
	if (r == 0 && rec.pid > 0) {
		/*
		 * Even when the call is cancelled meanwhile, a delete finishes
		 * the stop it began rather than leave a job that was sent TERM
		 * running on with its record: TERM, the grace, KILL, all within
		 * the call's deadline (local_open makes it long enough).
		 */
		r = local_stop(l, &rec, l->stop_timeout_ms, c, e);
		if (r < 0)
			return r;
	} else if (r < 0 && r != -ENOENT && r != -EBADMSG) {
		return r;
	}
	/* Every process is gone: nothing races rm_rf, which never follows symlinks anyway. */
	r = rm_rf(dir, e);
	if (r < 0) {
		if (e)
			err_prefix(e, "delete %s", name);
		return r;
	}
	if (unlink(rpath) < 0 && errno != ENOENT)
		return err_set(e, -errno, "delete %s: %s: %s", name, rpath, strerror(errno));
	/* The uid is free again: every process of it was seen gone (or the record was unreadable,
	 * and gc kills what still has it; no create takes a uid a process has). */
	return 0;
}

static int local_health(struct provider *p, const struct provider_call *c, const char *name,
                        enum health *ret, struct err *e)
{
	struct instance in;
	int r = local_get(p, c, name, &in, e);

	if (r == -ENOENT) {
		err_clear(e);
		*ret = HEALTH_UNKNOWN;
		return 0;
	}
	if (r < 0)
		return r;
	*ret = health_from_state(in.state);
	return 0;
}

/* Leftovers: processes of the range's uids that no record holds (and the legacy user's). */
static int local_gc(struct provider *p, const struct provider_call *c, struct err *e)
{
	int r = local_sweep(p->priv, c);
	if (r < 0)
		return err_set(e, r, "local: sweeping leftover processes: %s", strerror(-r));
	return 0;
}

const struct provider_ops local_ops = {
        .type = "local",
        .open = local_open,
        .create = local_create,
        .get = local_get,
        .list = local_list,
        .delete = local_delete,
        .health = local_health,
        .pull_file = local_pull_file,
        .list_files = local_list_files,
        .policy = local_policy,
        .gc = local_gc,
        .close = local_close,
};
