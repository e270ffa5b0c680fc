/*
 * Renders the startup script and its job hooks (see runner_script.h). The
 * shell text is fixed; only the value block, the environment list and the
 * repo-policy URL vary, and each value goes through runner_sh_quote(). Never
 * render a secret here: secrets reach the instance only through
 * runner_secret_env(). Keep the script POSIX sh that busybox runs, and keep
 * its every step safe to fail: metrics are written and the instance ends
 * whatever happens.
 */
#include "util/common.h"
#include "util/strutil.h"
#include "runner/runner.h"
#include "runner/runner_script.h"
#include "runner/runner_internal.h"
#include "runner/runner_version.h"

const char *runner_end_name(enum runner_end end)
{
	switch (end) {
	case RUNNER_END_EXIT:
		return "exit";
	case RUNNER_END_POWEROFF:
		return "poweroff";
	}
	return NULL;
}

static bool is_set(const char *s)
{
	return s && *s;
}

static bool sha256_ok(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n == 64;
}

/*
 * A here-document delimiter that no line of text equals, so the text ends
 * where we mean it to whatever a rendered value holds.
 */
static void heredoc_delim(const char *text, const char *base, char *out, size_t cap)
{
	for (unsigned i = 0;; i++) {
		size_t n;
		const char *p;
		bool clash = false;

		if (i == 0)
			snprintf(out, cap, "%s", base);
		else
			snprintf(out, cap, "%s_%u", base, i);
		n = strlen(out);
		for (p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
			if (strncmp(p, out, n) == 0 && (p[n] == '\n' || p[n] == '\0')) {
				clash = true;
				break;
			}
		}
		if (!clash)
			return;
	}
}

static int put_heredoc(struct buf *b, const char *path, const char *text, const char *base)
{
	char delim[64];
	int r;

	heredoc_delim(text, base, delim, sizeof(delim));
	r = buf_printf(b, "\tcat >\"$RUNNERD_HOME/hooks/%s\" <<'%s' || return\n", path, delim);
	if (r == 0)
		r = buf_puts(b, text);
	return r < 0 ? r : buf_printf(b, "%s\n", delim);
}

/* runner.pre_job_script as hooks/pre-job-script.sh (run by the pre-job hook). */
static int put_pre_job_script(struct buf *b, const char *text)
{
	size_t n = strlen(text);
	char *t = malloc(n + 2);
	int r;

	if (!t)
		return -ENOMEM;
	/* a heredoc's text ends at a newline: a script without a final one gets it */
	memcpy(t, text, n + 1);
	if (n && t[n - 1] != '\n')
		memcpy(t + n, "\n", 2);
	r = put_heredoc(b, "pre-job-script.sh", t, "RUNNERD_PRE_JOB_SCRIPT_EOF");
	free(t);
	return r == 0 ? buf_puts(b, "\tchmod 755 \"$RUNNERD_HOME/hooks/pre-job-script.sh\"\n") : r;
}

static int render_hooks(const struct config_runner *rc, int64_t policy_timeout_s, struct buf *b)
{
	struct buf pre = BUF_INIT(RUNNER_SCRIPT_MAX);
	int r;

	r = buf_puts(&pre, runner_hook_pre_head);
	if (r == 0 && is_set(rc->pre_job_script))
		r = buf_puts(&pre, runner_hook_pre_job_script);
	if (r == 0 && is_set(rc->repo_policy_url)) {
		/* The hook appends "/<event>/check-run". */
		char *url = strdup(rc->repo_policy_url);
		size_t n = url ? strlen(url) : 0;
		while (n > 1 && url[n - 1] == '/')
			url[--n] = '\0';
		r = url ? runner_put_var(&pre, "RUNNERD_REPO_POLICY_URL", url) : -ENOMEM;
		free(url);
		if (r == 0)
			r = buf_printf(&pre, "RUNNERD_REPO_POLICY_TIMEOUT=%" PRId64 "\n",
			               policy_timeout_s > 0 ? policy_timeout_s
			                                    : (int64_t)RUNNER_POLICY_TIMEOUT_S);
		if (r == 0)
			r = buf_puts(&pre, runner_hook_policy_on);
	} else if (r == 0) {
		r = buf_puts(&pre, runner_hook_policy_off);
	}
	if (r == 0)
		r = buf_puts(b, "\n# The job hooks the runner calls around the job.\n"
		                "runnerd_write_hooks() {\n"
		                "\tmkdir -p \"$RUNNERD_HOME/hooks\" || return\n");
	if (r == 0)
		r = put_heredoc(b, "pre-job.sh", buf_str(&pre), "RUNNERD_PRE_JOB_EOF");
	if (r == 0)
		r = put_heredoc(b, "post-job.sh", runner_hook_post, "RUNNERD_POST_JOB_EOF");
	if (r == 0 && is_set(rc->pre_job_script))
		r = put_pre_job_script(b, rc->pre_job_script);
	if (r == 0)
		r = buf_puts(b, "\tchmod 755 \"$RUNNERD_HOME/hooks/pre-job.sh\" "
		                "\"$RUNNERD_HOME/hooks/post-job.sh\"\n"
		                "}\n");
	buf_release(&pre);
	return r;
}

static int render_values(const struct runner_script_opts *o, const struct strv *labels,
                         struct buf *b, struct err *e)
{
	const struct config *cfg = o->cfg;
	const struct config_runner *rc = &cfg->runner;
	struct buf url = BUF_INIT(4096), joined = BUF_INIT(64 * 1024);
	const char *group = "";
	int r;

	r = runner_html_url(cfg->github.api_url, cfg->github.path, &url);
	if (r < 0) {
		r = err_set(e, r, "runner script: GitHub URL: %s",
		            r == -EINVAL ? "no api_url or path" : "too long");
		goto out;
	}
	for (size_t i = 0; r == 0 && i < labels->n; i++)
		r = buf_printf(&joined, "%s%s", i ? "," : "", labels->v[i]);
	if (r < 0) {
		r = err_set(e, r, "runner script: a value is too long");
		goto out;
	}
	/* The group is part of the JIT config; config.sh needs it otherwise. */
	if (cfg->github.is_org && is_set(cfg->github.runner_group))
		group = cfg->github.runner_group;

	r = runner_put_var(b, "RUNNERD_NAME", o->name);
	if (r == 0)
		r = runner_put_var(b, "RUNNERD_URL", buf_str(&url));
	if (r == 0)
		r = runner_put_var(b, "RUNNERD_LABELS", buf_str(&joined));
	if (r == 0)
		r = runner_put_var(b, "RUNNERD_RUNNER_GROUP", group);
	if (r == 0)
		r = buf_printf(b, "RUNNERD_JIT=%d\n", rc->jit ? 1 : 0);
	if (r == 0)
		r = buf_printf(b, "RUNNERD_END=%s\n", runner_end_name(o->end));
	if (r == 0)
		r = runner_put_var(b, "RUNNERD_HOME_DEFAULT", o->home);
	if (r == 0)
		r = runner_put_var(b, "RUNNERD_IMAGE_DIR", o->image_dir);
	if (r == 0)
		r = runner_put_var(b, "RUNNERD_TARBALL", o->tarball);
	if (r == 0)
		r = runner_put_var(b, "RUNNERD_DOWNLOAD_URL", o->download_url);
	if (r == 0)
		r = runner_put_var(b, "RUNNERD_SHA256", o->sha256);
	if (r == 0)
		r = runner_put_var(b, "RUNNERD_RUNNER_MIN_VERSION", o->image_min_version);
	if (r == 0)
		r = buf_printf(b, "RUNNERD_DOWNLOAD_TIMEOUT=%" PRId64 "\n",
		               o->download_timeout_s > 0 ? o->download_timeout_s
		                                         : (int64_t)RUNNER_DOWNLOAD_TIMEOUT_S);
	if (r == 0)
		r = runner_env_values(rc, b);
	if (r == 0)
		r = buf_printf(b, "RUNNERD_REPO_POLICY=%d\n\n",
		               is_set(rc->repo_policy_url) ? 1 : 0);
	if (r < 0)
		r = err_set(e, r, "runner script: too large");
out:
	buf_release(&url);
	buf_release(&joined);
	return r;
}

int runner_script_render(const struct runner_script_opts *o, struct buf *out, struct err *e)
{
	struct buf b = BUF_INIT(RUNNER_SCRIPT_MAX);
	struct strv labels = {NULL, 0};
	int r;

	if (!o || !o->cfg || !o->flavor || !is_set(o->name))
		return err_set(e, -EINVAL, "runner script: no config, flavor or runner name");
	if (!runner_end_name(o->end))
		return err_set(e, -EINVAL, "runner script: unknown end action %d", (int)o->end);
	if (is_set(o->sha256) && !sha256_ok(o->sha256))
		return err_set(e, -EINVAL, "runner script: sha256 must be 64 lowercase hex digits");
	if (is_set(o->image_min_version) && !runner_version_valid(o->image_min_version))
		return err_set(e, -EINVAL,
		               "runner script: the image's minimum runner version is "
		               "not a version");
	if (is_set(o->download_url) && !is_set(o->sha256))
		return err_set(e, -EINVAL, "runner script: a download URL needs its sha256");
	r = runner_labels(o->flavor, &labels);
	if (r < 0)
		return err_set(e, r, "runner script: flavor %s: %s",
		               o->flavor->name ? o->flavor->name : "?",
		               r == -EINVAL ? "empty label or a label with ','" : strerror(-r));

	r = buf_puts(&b, runner_sh_head);
	if (r == 0)
		r = render_values(o, &labels, &b, e);
	else
		r = err_set(e, r, "runner script: too large");
	if (r < 0)
		goto out;
	r = buf_puts(&b, runner_sh_funcs);
	if (r == 0)
		r = buf_puts(&b, runner_sh_version);
	if (r == 0)
		r = runner_render_install(&o->cfg->runner, &b);
	if (r == 0)
		r = runner_render_storage(&o->cfg->runner, &b);
	if (r == 0)
		r = runner_env_render(&o->cfg->runner, o->name, &b);
	if (r == 0)
		r = render_hooks(&o->cfg->runner, o->policy_timeout_s, &b);
	if (r == 0)
		r = buf_puts(&b, "\n");
	if (r == 0)
		r = buf_puts(&b, runner_sh_main);
	if (r == 0)
		r = buf_append(out, b.data, b.len);
	if (r < 0)
		r = err_set(e, r, "runner script: too large");
out:
	strv_release(&labels);
	buf_release(&b);
	return r;
}

int runner_script_for(const struct config *cfg, const struct config_flavor *flavor,
                      const char *name, bool local, const char *download_url, const char *sha256,
                      const char *image_min_version, struct buf *out, struct err *e)
{
	struct runner_script_opts o = {
	        .cfg = cfg,
	        .flavor = flavor,
	        .name = name,
	        .end = local ? RUNNER_END_EXIT : RUNNER_END_POWEROFF,
	        .home = local ? NULL : RUNNER_INSTANCE_HOME,
	        .image_dir = local ? NULL : RUNNER_IMAGE_DIR,
	        .tarball = local ? NULL : RUNNER_INSTANCE_TARBALL,
	        .download_url = local ? NULL : download_url,
	        .sha256 = local ? NULL : sha256,
	        .download_timeout_s = cfg->manager.bootstrap_timeout,
	        .image_min_version = local ? NULL : image_min_version,
	};
	return runner_script_render(&o, out, e);
}
