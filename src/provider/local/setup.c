/*
 * Opening the local provider: the legacy user (created when missing), the
 * uid range, work_dir and its state dir, whether namespaces work on this
 * host (or are turned off by RUNNERD_LOCAL_NO_NAMESPACES=1), the delete
 * deadline its stop_timeout needs, the policy (what isolated instances
 * must not see) and the note that says what isolation is in force.
 * Settings come from the config alone. It must never accept a legacy user
 * that is root or the daemon's, a uid range that is anyone else's, a
 * work_dir or state dir that is not root's, nor open in fallback mode
 * unless allow_weak_isolation says the operator accepts what it loses.
 */
#include "util/common.h"
#include "provider/local/local_internal.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>

#define LOCAL_EMPTY_FILE "empty" /* in state_dir: bound over secret files */

/* What a delete allows for removing an instance's files (its _work tree may be large). */
#define DELETE_FILES_MS (60 * 1000)

/* a is b or inside b (both canonical absolute paths). */
static bool path_under(const char *a, const char *b)
{
	size_t n = strlen(b);
	if (strcmp(b, "/") == 0)
		return true;
	return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}
static bool user_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > LOCAL_USER_MAX || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return !(s[0] >= '0' && s[0] <= '9');
}

/* 0 found, -ENOENT missing. */
static int user_lookup(struct local *l, struct err *e)
{
	struct passwd pw, *res = NULL;
	char buf[16384];
	int r;

	r = getpwnam_r(l->user, &pw, buf, sizeof(buf), &res);
	if (r != 0)
		return err_set(e, -r, "user %s: %s", l->user, strerror(r));
	if (!res)
		return -ENOENT;
	l->uid = pw.pw_uid;
	l->gid = pw.pw_gid;
	/* its processes are killed as leftovers: it must not be anyone else's */
	if (l->uid == 0 || l->uid == geteuid() || l->gid == 0)
		return err_set(e, -EPERM, "user %s: must not be root or the daemon's user",
		               l->user);
	return 0;
}

static int user_create(const char *user, struct err *e)
{
	char *const argv[] = {"useradd",      "--system",       "--no-create-home",  "--home-dir",
	                      "/nonexistent", "--shell",        "/usr/sbin/nologin", "--user-group",
	                      "--comment",    "runnerd runner", (char *)user,        NULL};
	char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", NULL};
	char out[400];
	size_t len = 0;
	int pfd[2], status = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return err_set(e, -errno, "useradd: pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return err_set(e, -errno, "useradd: fork: %s", strerror(errno));
	}
	if (pid == 0) {
		int in = local_fd_above2(open("/dev/null", O_RDONLY | O_CLOEXEC));
		int w = local_fd_above2(pfd[1]);
		if (in < 0 || w < 0 || dup2(in, 0) < 0 || dup2(w, 1) < 0 || dup2(w, 2) < 0)
			_exit(127);
		close_range(3, ~0U, 0);
		execve("/usr/sbin/useradd", argv, envp);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		char tmp[256];
		ssize_t n = read(pfd[0], tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n && len + 1 < sizeof(out); i++)
			out[len++] = tmp[i] == '\n' ? ' ' : tmp[i];
	}
	out[len] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return err_set(e, -EIO, "useradd %s failed (status %d): %s", user, status, out);
	return 0;
}

static int user_setup(struct local *l, struct err *e)
{
	static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;
	int r = user_lookup(l, e);

	if (r != -ENOENT)
		return r;
	pthread_mutex_lock(&create_lock);
	r = user_lookup(l, e);
	if (r == -ENOENT) {
		r = user_create(l->user, e);
		if (r == 0)
			r = user_lookup(l, e);
		if (r == -ENOENT)
			r = err_set(e, -ENOENT, "user %s: missing after useradd", l->user);
	}
	pthread_mutex_unlock(&create_lock);
	return r;
}

/* A root-owned directory (not a symlink) with exactly this mode. */
static int dir_own(int parent, const char *name, const char *shown, mode_t mode, struct err *e)
{
	struct stat st;
	int fd, r = 0;

	if (mkdirat(parent, name, mode) < 0 && errno != EEXIST)
		return err_set(e, -errno, "mkdir %s: %s", shown, strerror(errno));
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, -errno, "%s: %s", shown, strerror(errno));
	if (fstat(fd, &st) < 0)
		r = err_set(e, -errno, "%s: %s", shown, strerror(errno));
	else if (st.st_uid != 0)
		r = err_set(e, -EPERM, "%s: not owned by root", shown);
	else if ((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0)
		r = err_set(e, -errno, "%s: chmod: %s", shown, strerror(errno));
	close(fd);
	return r;
}

/* The file bound over secret files: root's, 0400, empty, not a symlink. */
static int empty_setup(const char *path, struct err *e)
{
	struct stat st;
	int fd, r = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0400);
	if (fd < 0)
		return err_set(e, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0)
		r = err_set(e, -errno, "%s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode) || st.st_uid != 0)
		r = err_set(e, -EPERM, "%s: not a regular file of root's", path);
	else if ((st.st_size != 0 && ftruncate(fd, 0) < 0) ||
	         ((st.st_mode & 07777) != 0400 && fchmod(fd, 0400) < 0))
		r = err_set(e, -errno, "%s: %s", path, strerror(errno));
	close(fd);
	return r;
}

static int work_dir_setup(struct local *l, const char *work, struct err *e)
{
	char real[PATH_MAX];
	int r;

	if (work[0] != '/')
		return err_set(e, -EINVAL, "providers.local.work_dir %s: must be absolute", work);
	r = mkdir_p(work, 0711, e);
	if (r < 0)
		return r;
	r = dir_own(AT_FDCWD, work, work, 0711, e);
	if (r < 0)
		return r;
	if (!realpath(work, real))
		return err_set(e, -errno, "%s: %s", work, strerror(errno));
	str_copy(l->work_dir, real, sizeof(l->work_dir));
	if (local_path_join(l->state_dir, sizeof(l->state_dir), real, ".state", "") < 0 ||
	    local_path_join(l->empty, sizeof(l->empty), l->state_dir, LOCAL_EMPTY_FILE, "") < 0)
		return err_set(e, -ENAMETOOLONG, "%s: path too long", work);
	r = dir_own(AT_FDCWD, l->state_dir, l->state_dir, 0700, e);
	if (r < 0)
		return r;
	return empty_setup(l->empty, e);
}

/*
 * The policy (provider_policy): what an isolated instance must not see.
 * runnerd's state and log dirs and the other instances (a tmpfs over each;
 * the instance's own dir is bound back), and runnerd's secret files
 * wherever they are (the empty file over each: their directory, /etc/runnerd
 * say, may hold more than runnerd's). A directory holding system paths is
 * never hidden; paths missing now are not hidden. The denylist is not
 * enforced here (traits.denylist is false).
 */
int local_policy(struct provider *p, const struct provider_call *c,
                 const struct provider_policy *pol, struct err *e)
{
	static const char *const system[] = {"/bin",  "/dev", "/etc", "/lib", "/lib64",  "/proc",
	                                     "/sbin", "/sys", "/tmp", "/usr", "/var/tmp"};
	static const char *const tmps[] = {"/tmp", "/var/tmp"};
	struct local *l = p->priv;
	struct local_hiding h = {.hide_root = -1};
	const struct strv *dirs = pol->hidden_dirs, *secrets = pol->secret_files;
	char cand[LOCAL_HIDE_MAX][PATH_MAX];
	size_t n = 0, n_in = (dirs ? dirs->n : 0) + 1;

	if (n_in > LOCAL_HIDE_MAX || (secrets && secrets->n > LOCAL_SECRETS_MAX))
		return err_set(e, -E2BIG,
		               "local: at most %d directories and %d secret files to hide",
		               LOCAL_HIDE_MAX - 1, LOCAL_SECRETS_MAX);
	for (size_t i = 0; i < n_in; i++) {
		const char *in = i + 1 < n_in ? dirs->v[i] : l->work_dir;
		bool skip = false;
		if (!in || in[0] != '/' || !realpath(in, cand[n]))
			continue;
		for (size_t k = 0; k < ARRAY_SIZE(system); k++)
			if (path_under(system[k], cand[n]))
				skip = true;
		if (!skip)
			n++;
	}
	for (size_t i = 0; i < n; i++) {
		bool inner = false;
		for (size_t k = 0; k < n; k++)
			if (k != i && path_under(cand[i], cand[k]) &&
			    (strcmp(cand[i], cand[k]) != 0 || k < i))
				inner = true;
		if (inner)
			continue;
		if (path_under(l->work_dir, cand[i]))
			h.hide_root = (int)h.n_hide;
		str_copy(h.hide[h.n_hide++], cand[i], PATH_MAX);
	}
	for (size_t i = 0; secrets && i < secrets->n; i++) {
		char real[PATH_MAX];
		struct stat st;
		bool skip = false;
		if (!secrets->v[i] || !*secrets->v[i] || !realpath(secrets->v[i], real) ||
		    stat(real, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		for (size_t k = 0; k < h.n_hide; k++)
			if (path_under(real, h.hide[k]))
				skip = true; /* under a tmpfs already */
		for (size_t k = 0; k < h.n_secrets; k++)
			if (strcmp(real, h.secrets[k]) == 0)
				skip = true;
		if (!skip)
			str_copy(h.secrets[h.n_secrets++], real, PATH_MAX);
	}
	for (size_t i = 0; i < ARRAY_SIZE(tmps); i++) {
		struct stat st;
		bool ok = lstat(tmps[i], &st) == 0 && S_ISDIR(st.st_mode) &&
		          !path_under(l->work_dir, tmps[i]);
		for (size_t k = 0; ok && k < h.n_hide; k++)
			if (path_under(h.hide[k], tmps[i]))
				ok = false;
		if (ok)
			h.tmp_targets[h.n_tmp++] = tmps[i];
	}
	pthread_mutex_lock(&l->lock);
	l->hiding = h;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

/* Can we give an instance its own PID and mount namespaces here? Try it. */
static bool isolation_probe(const struct local *l)
{
	int status = 0;
	pid_t a = fork();

	if (a < 0)
		return false;
	if (a == 0) {
		pid_t b;
		close_range(3, ~0U, 0);
		if (unshare(CLONE_NEWPID | CLONE_NEWNS) < 0)
			_exit(1);
		b = _Fork();
		if (b < 0)
			_exit(1);
		if (b == 0) {
			if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
			    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) <
			            0 ||
			    mount("tmpfs", l->work_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			          "size=4k") < 0)
				_exit(1);
			_exit(getpid() == 1 ? 0 : 1);
		}
		while (waitpid(b, &status, 0) < 0 && errno == EINTR)
			;
		_exit(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1);
	}
	while (waitpid(a, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/*
 * A delete is a stop (the configured grace, then at most two KILL rounds)
 * and removing files; its waits end at the call's deadline, which must
 * therefore not cut the grace short. The front's default stands where it
 * is longer.
 */
static void local_deadlines(struct provider *p, const struct local *l)
{
	int64_t grace = l->stop_timeout_ms < INT64_MAX / 4 ? l->stop_timeout_ms : INT64_MAX / 4;
	int64_t need = grace + 2 * LOCAL_KILL_TIMEOUT_MS + DELETE_FILES_MS;

	if (p->deadline_ms[PROVIDER_OP_DELETE] < need)
		p->deadline_ms[PROVIDER_OP_DELETE] = need;
}

/*
 * traits.note: the isolation in force, in one line the manager logs at
 * start (and `status` shows): what every instance gets, and in fallback
 * mode what is lost and why it runs so.
 */
static void local_traits(struct provider *p, const struct local *l, bool isolated)
{
	char uids[32];

	p->traits = (struct provider_traits){
	        .runner_from_host = true,
	        .host_process = true,
	        .pull_files = true,
	        .list_files = true,
	};
	snprintf(uids, sizeof(uids), "%" PRIu32 "-%" PRIu32, l->uid_first, l->uid_last);
	if (isolated)
		snprintf(
		        p->traits.note, sizeof(p->traits.note),
		        "namespace mode: each instance runs as a uid and gid of its own (%s) in "
		        "its "
		        "own PID and mount namespaces with its own /tmp; runnerd's state, logs and "
		        "secret files are hidden",
		        uids);
	else
		snprintf(p->traits.note, sizeof(p->traits.note),
		         "fallback mode (%s; allow_weak_isolation): each instance runs as a uid "
		         "and gid "
		         "of its own (%s), but jobs see every process, share /tmp with the host, "
		         "and "
		         "runnerd's secret files are protected by their mode only",
		         l->forced_fallback ? "RUNNERD_LOCAL_NO_NAMESPACES" : "no namespaces here",
		         uids);
}

/* The uid range (checked by the config already; a hand-made config is checked again). */
static int uid_range_setup(struct local *l, const struct config_provider *pc, struct err *e)
{
	if (config_uid_range_parse(pc->local.uid_range, &l->uid_first, &l->uid_last) < 0)
		return err_set(e, -EINVAL, "providers.%s.uid_range %s: not FIRST-LAST", pc->name,
		               pc->local.uid_range ? pc->local.uid_range : "(none)");
	return local_uids_check(l, pc->name, e);
}

/*
 * Namespace mode where the kernel gives them and RUNNERD_LOCAL_NO_NAMESPACES
 * is not 1; fallback mode only where the operator allowed what it loses.
 */
static int isolation_setup(struct local *l, const struct config_provider *pc, struct err *e)
{
	const char *no_ns = getenv("RUNNERD_LOCAL_NO_NAMESPACES");

	l->forced_fallback = no_ns && strcmp(no_ns, "1") == 0;
	l->can_isolate = !l->forced_fallback && isolation_probe(l);
	l->isolate = l->can_isolate;
	if (l->can_isolate || pc->local.allow_weak_isolation)
		return 0;
	return err_set(e, -EPERM,
	               "providers.%s: %s: fallback mode (no PID and mount namespaces: jobs see "
	               "every process of the machine, share /tmp with it, and runnerd's secret "
	               "files are protected by their mode only) needs "
	               "providers.%s.allow_weak_isolation: true",
	               pc->name,
	               l->forced_fallback ? "RUNNERD_LOCAL_NO_NAMESPACES=1"
	                                  : "this kernel refuses the namespaces",
	               pc->name);
}

/* A record of a name this manager owns (file_remove_temps' filter). */
static bool owned_record(const char *file, void *manager)
{
	char name[INSTANCE_NAME_MAX];

	return local_record_name(file, name) && name_is_owned(manager, name);
}

/* Settings come from the config table (their defaults too); none are guessed here. */
int local_open(struct provider *p, const struct config_provider *pc, struct err *e)
{
	const struct config_local *cl = &pc->local;
	struct local *l = NULL;
	int r;

	if (!cl->work_dir || !*cl->work_dir || !cl->user || cl->stop_timeout <= 0)
		return err_set(e, -EINVAL,
		               "providers.%s: work_dir, user and stop_timeout are needed",
		               pc->name);
	if (!user_name_valid(cl->user))
		return err_set(e, -EINVAL, "providers.%s.user %s: not a valid user name", pc->name,
		               cl->user);
	if (geteuid() != 0)
		return err_set(e, -EPERM,
		               "local provider: runnerd must run as root to start instances as "
		               "other uids");
	l = calloc(1, sizeof(*l));
	if (!l) {
		r = err_set(e, -ENOMEM, "out of memory");
		goto fail;
	}
	str_copy(l->user, cl->user, sizeof(l->user));
	l->stop_timeout_ms =
	        cl->stop_timeout > INT64_MAX / 1000 ? INT64_MAX : cl->stop_timeout * 1000;
	r = user_setup(l, e);
	if (r < 0)
		goto fail;
	r = uid_range_setup(l, pc, e);
	if (r < 0)
		goto fail;
	r = work_dir_setup(l, cl->work_dir, e);
	if (r < 0)
		goto fail;
	/*
	 * What a runnerd killed while it wrote a record left: its temporary.
	 * Opened under the manager's state-dir lock, before any create, so
	 * every temporary of our names is a dead writer's. (void): one that
	 * stays is tried again at the next start.
	 */
	(void)file_remove_temps(l->state_dir, owned_record, p->manager, NULL);
	r = isolation_setup(l, pc, e);
	if (r < 0)
		goto fail;
	r = pthread_mutex_init(&l->lock, NULL);
	if (r != 0) {
		r = err_set(e, -r, "mutex: %s", strerror(r));
		goto fail;
	}
	p->priv = l;
	/* until the manager's policy: the other instances at least are hidden */
	r = local_policy(p, NULL, &(struct provider_policy){0}, e);
	if (r < 0) {
		pthread_mutex_destroy(&l->lock);
		p->priv = NULL;
		goto fail;
	}
	local_traits(p, l, l->isolate);
	local_deadlines(p, l);
	return 0;
fail:
	free(l);
	if (e)
		err_prefix(e, "local provider");
	return r;
}

bool local_isolated(const struct provider *p)
{
	struct local *l = p->priv;
	bool on;

	pthread_mutex_lock(&l->lock);
	on = l->isolate;
	pthread_mutex_unlock(&l->lock);
	return on;
}

void local_set_isolated(struct provider *p, bool on)
{
	struct local *l = p->priv;

	pthread_mutex_lock(&l->lock);
	l->isolate = on && l->can_isolate;
	pthread_mutex_unlock(&l->lock);
	local_traits(p, l, on && l->can_isolate);
}

void local_close(struct provider *p)
{
	struct local *l = p->priv;

	if (!l)
		return;
	pthread_mutex_destroy(&l->lock);
	free(l->creating);
	free(l);
	p->priv = NULL;
}
