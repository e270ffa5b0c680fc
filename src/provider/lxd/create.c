/*
 * create(): the instance's body (config keys, devices, the cloud-init user
 * data around the startup script), the create operation, the pushes, the
 * start and the bootstrap, and the cleanup of a create that failed. It
 * must never put a secret anywhere but the body of the push that writes
 * secret.env (no config key, no user data, no exec argument, no error
 * message), and never leave what it made without either deleting it (seen
 * gone) or saying that it may remain.
 */
#include "util/common.h"
#include "provider/lxd/lxd_internal.h"

/*
 * Start the pushed script detached, immune to SIGHUP (what nohup does; not
 * every image has nohup: busybox builds often lack it). The exec bootstrap
 * runs this once the files are there.
 */
static const char lxd_launch_cmd[] = "(trap '' HUP; exec sh " LXD_HOME
                                     "/startup.sh) </dev/null >" LXD_HOME "/startup.log 2>&1 &";

/*
 * The cloud-init user data (run once, at first boot) around the startup
 * script: it writes the script, a quoted here-document (nothing expands),
 * to startup.sh and starts it detached once the marker is there. The
 * marker is pushed last, after secret.env: a container's files are there
 * before it boots, a VM's come through its agent after it booted, so the
 * wait is 10 min at most. The startup script holds no secret
 * (runner/runner_script.h), so neither does the user data.
 */
#define LXD_MARKER        LXD_HOME "/.pushed"
#define LXD_EOF           "RUNNERD_STARTUP_EOF"
#define LXD_USER_DATA_MAX (1u << 20)
static const char lxd_user_data_head[] =
        "#!/bin/sh\n"
        "# runnerd: writes the startup script below to " LXD_HOME "/startup.sh and starts\n"
        "# it once runnerd has pushed its files (" LXD_MARKER " comes last).\n"
        "mkdir -p " LXD_HOME " || exit 1\n"
        "(umask 077 && cat >" LXD_HOME "/startup.sh.new) <<'%s'\n";
static const char lxd_user_data_tail[] =
        "%s\n"
        "chmod 0700 " LXD_HOME "/startup.sh.new &&\n"
        "\tmv -f " LXD_HOME "/startup.sh.new " LXD_HOME "/startup.sh || exit 1\n"
        "(\n"
        "\ttrap '' HUP\n"
        "\ti=0\n"
        "\twhile [ ! -e " LXD_MARKER " ] && [ $i -lt 600 ]; do sleep 1; i=$((i + 1)); done\n"
        "\texec sh " LXD_HOME "/startup.sh\n"
        ") </dev/null >" LXD_HOME "/startup.log 2>&1 &\n";

/* ---- create --------------------------------------------------------- */

/* The cloud-init user data for script (malloc'ed), NULL when out of memory or too big. */
static char *user_data(const char *script)
{
	struct buf b = BUF_INIT(LXD_USER_DATA_MAX);
	size_t n = strlen(script);
	char eof[48];

	/* a delimiter that is no line of the script */
	str_copy(eof, LXD_EOF, sizeof(eof));
	for (unsigned i = 1; str_has_line(script, eof); i++)
		snprintf(eof, sizeof(eof), "%s_%u", LXD_EOF, i);
	if (buf_printf(&b, lxd_user_data_head, eof) < 0 || buf_append(&b, script, n) < 0 ||
	    (n > 0 && script[n - 1] != '\n' && buf_puts(&b, "\n") < 0) ||
	    buf_printf(&b, lxd_user_data_tail, eof) < 0) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

static json_t *instance_body(const struct lxd *l, const struct instance_spec *spec)
{
	const struct config_flavor *f = spec->flavor;
	char cpu[24], mem[24], disk[24];
	json_t *config, *devices, *profiles = json_array(), *body = NULL;

	snprintf(cpu, sizeof(cpu), "%" PRId64, f->resources.vcpu);
	snprintf(mem, sizeof(mem), "%" PRId64, f->resources.memory);
	snprintf(disk, sizeof(disk), "%" PRId64, f->resources.disk);
	for (size_t i = 0; profiles && i < l->n_profiles; i++)
		if (json_array_append_new(profiles, json_string(l->profiles[i])) < 0) {
			json_decref(profiles);
			profiles = NULL;
		}
	if (!profiles)
		return NULL;
	config = json_pack("{s:s, s:s, s:s, s:s}", "limits.cpu", cpu, "limits.memory", mem,
	                   LXD_KEY_MANAGER, l->manager, LXD_KEY_FLAVOR, f->name ? f->name : "");
	if (config && l->bootstrap == LXD_BOOTSTRAP_CLOUD_INIT) {
		char *ud = user_data(spec->startup_script);
		if (!ud ||
		    json_object_set_new(config, "cloud-init.user-data", json_string(ud)) < 0 ||
		    json_object_set_new(config, "user.user-data", json_string(ud)) < 0) {
			json_decref(config);
			config = NULL;
		}
		free(ud);
	}
	devices = json_pack("{s:{s:s, s:s, s:s, s:s}, s:{s:s, s:s}}", "root", "type", "disk",
	                    "path", "/", "pool", l->pool, "size", disk, "eth0", "type", "nic",
	                    "network", l->network);
	if (config && devices)
		body = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o, s:o, s:o}", "name", spec->name,
		                 "type", l->type == LXD_VM ? "virtual-machine" : "container",
		                 "source", "type", "image", "alias", f->image, "profiles", profiles,
		                 "config", config, "devices", devices);
	else {
		json_decref(profiles);
		json_decref(config);
		json_decref(devices);
	}
	return body;
}

/*
 * /opt, /opt/runnerd, startup.sh (the exec bootstrap: the cloud-init user
 * data carries it) and secret.env, then for cloud-init the marker; into a
 * container while it is stopped.
 */
static int instance_populate(struct lxd *l, const struct provider_call *c,
                             const struct instance_spec *spec, struct err *e)
{
	char type[32];
	int r;

	/* The files API makes no parents; an existing /opt keeps its mode. */
	r = lxd_file_type(l, c, spec->name, "/opt", type, sizeof(type), e);
	if (r < 0) {
		err_clear(e);
		r = lxd_file_push(l, c, spec->name, "/opt", true, "0755", NULL, 0, e);
	}
	if (r < 0)
		return r;
	r = lxd_file_push(l, c, spec->name, LXD_HOME, true, "0755", NULL, 0, e);
	if (r < 0)
		return r;
	if (l->bootstrap == LXD_BOOTSTRAP_EXEC)
		r = lxd_file_push(l, c, spec->name, LXD_HOME "/startup.sh", false, "0700",
		                  spec->startup_script, strlen(spec->startup_script), e);
	if (r < 0)
		return r;
	if (spec->secret_env && *spec->secret_env)
		r = lxd_file_push(l, c, spec->name, LXD_HOME "/secret.env", false, "0600",
		                  spec->secret_env, strlen(spec->secret_env), e);
	if (r == 0 && l->bootstrap == LXD_BOOTSTRAP_CLOUD_INIT)
		r = lxd_file_push(l, c, spec->name, LXD_MARKER, false, "0600", "", 0, e);
	return r;
}

/* Wait until the instance runs commands (a VM: until its agent is up). */
static int instance_exec_wait(struct lxd *l, const struct provider_call *c, const char *name,
                              struct err *e)
{
	static const char *const probe[] = {"/bin/sh", "-c", "exit 0", NULL};
	int64_t deadline = lxd_until(c, l->op_timeout * 1000);
	int r, rc = -1;

	for (;;) {
		struct err e2 = {0};
		r = lxd_instance_exec(l, c, name, probe, LXD_EXEC_TIMEOUT, &rc, &e2);
		if (r == 0 && rc == 0)
			return 0;
		if (clock_mono_ms() >= deadline) {
			if (r < 0 && e)
				*e = e2;
			else
				r = err_set(e, -ETIMEDOUT, "lxd: %s: exec not working (status %d)",
				            name, rc);
			if (e)
				err_prefix(e, "waiting for exec");
			return r < 0 ? r : -ETIMEDOUT;
		}
		if (!provider_call_sleep(c, LXD_POLL_MS))
			return err_set(e, -ECANCELED, "lxd: %s: cancelled while waiting for exec",
			               name);
	}
}

/* Exec bootstrap: the script, started detached. */
static int instance_exec_launch(struct lxd *l, const struct provider_call *c, const char *name,
                                struct err *e)
{
	const char *const launch[] = {"/bin/sh", "-c", lxd_launch_cmd, NULL};
	int r, rc = -1;

	r = lxd_instance_exec(l, c, name, launch, LXD_EXEC_TIMEOUT, &rc, e);
	if (r < 0)
		return r;
	if (rc != 0)
		return err_set(e, -EIO, "lxd: %s: starting the startup script: status %d", name,
		               rc);
	return 0;
}

int lxd_create(struct provider *p, const struct provider_call *c, const struct instance_spec *spec,
               struct instance *ret, struct err *e)
{
	struct lxd *l = p->priv;
	char what[INSTANCE_NAME_MAX + 16];
	struct lxd_answer a = {0};
	struct instance in;
	const char *owner;
	json_t *body = NULL;
	struct err e2 = {0};
	bool made = false;
	int r;

	if (!spec || lxd_check_name(spec->name, e) < 0)
		return -EINVAL;
	if (!name_is_owned(l->manager, spec->name))
		return err_set(e, -EINVAL, "lxd: create: %s is not a name of manager %s",
		               spec->name, l->manager);
	if (!spec->flavor || !spec->flavor->image || !*spec->flavor->image)
		return err_set(e, -EINVAL, "lxd: create %s: the flavor names no image", spec->name);
	if (!spec->startup_script)
		return err_set(e, -EINVAL, "lxd: create %s: no startup script", spec->name);
	if (strlen(spec->startup_script) > LXD_USER_DATA_MAX / 2)
		return err_set(e, -E2BIG, "lxd: create %s: startup script larger than %u bytes",
		               spec->name, LXD_USER_DATA_MAX / 2);
	if (spec->secret_env && strlen(spec->secret_env) > LXD_SECRET_MAX)
		return err_set(e, -E2BIG, "lxd: create %s: secrets larger than %d bytes",
		               spec->name, LXD_SECRET_MAX);
	r = lxd_deny_ensure(l, c, e);
	if (r < 0) {
		if (e)
			err_prefix(e, "create %s: runner.denylist not in place", spec->name);
		return r;
	}
	body = instance_body(l, spec);
	if (!body)
		return err_set(e, -ENOMEM, "lxd: create %s: out of memory", spec->name);

	snprintf(what, sizeof(what), "create %s", spec->name);
	/*
	 * An instance already there is never cleaned up: LXD 5.0 reports the
	 * clash only as a failed operation, after which the name's instance is
	 * the old one. So look first, and read the failure's text as well.
	 */
	r = lxd_instance_fetch(l, c, spec->name, &in, &owner, &a, e);
	lxd_answer_release(&a);
	if (r == 0) {
		r = err_set(e, -EEXIST, "lxd: %s: already exists", what);
		goto out;
	}
	if (r != -ENOENT)
		goto out;
	err_clear(e);
	r = lxd_call(l, c,
	             &(struct lxd_req){.method = "POST", .path = "/1.0/instances", .json = body},
	             &a, e);
	if (r == -EEXIST)
		goto out;
	made = true; /* even a failed POST may have left something */
	if (r < 0)
		goto out;
	if (!a.op[0]) {
		r = err_set(e, -EBADMSG, "lxd: %s: expected an operation", what);
		goto out;
	}
	r = lxd_wait(l, c, a.op, l->op_timeout, false, what, NULL, &e2);
	if (r == -ETIMEDOUT) {
		/*
		 * LXD cannot cancel a create: it goes on unpacking, and a delete
		 * now would race it (the instance appearing after the delete
		 * found nothing). Give it as long again to end first.
		 */
		(void)lxd_wait(l, c, a.op, l->op_timeout, false, what, NULL, NULL);
	}
	lxd_answer_release(&a);
	if (r < 0) {
		if (strstr(e2.msg, "already exists")) {
			r = -EEXIST;
			made = false;
		}
		e2.code = r;
		if (e)
			*e = e2;
		goto out;
	}
	/* LXD writes into a stopped container, but a VM's files go through its agent. */
	if (l->type != LXD_VM) {
		r = instance_populate(l, c, spec, e);
		if (r < 0)
			goto out;
	}
	r = lxd_instance_state_change(l, c, spec->name, json_pack("{s:s}", "action", "start"),
	                              l->op_timeout, "start", e);
	if (r < 0)
		goto out;
	if (l->type == LXD_VM || l->bootstrap == LXD_BOOTSTRAP_EXEC) {
		r = instance_exec_wait(l, c, spec->name, e);
		if (r < 0)
			goto out;
	}
	if (l->type == LXD_VM) {
		r = instance_populate(l, c, spec, e);
		if (r < 0)
			goto out;
	}
	if (l->bootstrap == LXD_BOOTSTRAP_EXEC) {
		r = instance_exec_launch(l, c, spec->name, e);
		if (r < 0)
			goto out;
	}
	r = lxd_instance_fetch(l, c, spec->name, &in, &owner, &a, e);
	if (r < 0)
		goto out;
	*ret = in;
out:
	if (r < 0 && made && provider_call_cancelled(c)) {
		/*
		 * Cancelled half-way (runnerd is stopping): no cleanup. Every
		 * request is refused now, and waiting LXD's create out before a
		 * delete would hold the shutdown for minutes. What is left is what
		 * kill -9 at this point would leave: an instance (still being
		 * unpacked, stopped, or started) that carries user.runnerd.manager,
		 * and the record the manager wrote before it asked for the create
		 * (names are durable first), which makes a later pass delete it.
		 * Saying that it may remain keeps that record.
		 */
		char msg[sizeof(e2.msg)];
		str_copy(msg, e && e->msg[0] ? e->msg : "cancelled", sizeof(msg));
		r = err_set(e, PROVIDER_EMAYREMAIN, "%s; not deleted (cancelled): %s may remain",
		            msg, spec->name);
	} else if (r < 0 && made) {
		struct err e3 = {0};
		if (lxd_instance_remove(l, c, spec->name, false, &e3) < 0) {
			char msg[sizeof(e3.msg)];
			str_copy(msg, e && e->msg[0] ? e->msg : "failed", sizeof(msg));
			r = err_set(e, PROVIDER_EMAYREMAIN,
			            "%s; deleting it failed too (%s): %s may remain", msg, e3.msg,
			            spec->name);
		}
	}
	lxd_answer_release(&a);
	json_decref(body);
	return r;
}
