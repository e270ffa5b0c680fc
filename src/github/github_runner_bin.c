/*
 * runnerd's own copy of the runner software: the applications GitHub offers
 * (the downloads endpoint), and the tarball for linux/<arch>, downloaded
 * into <state_dir>/runner-bin/ and checked against the sha256 the API gives
 * before it replaces anything. A file whose checksum does not match (or that
 * comes with no checksum) is never installed; the previous copy stays in
 * place. The download itself carries no credentials: it may be redirected
 * to another host.
 */
#include "util/common.h"
#include "github/github_internal.h"
#include "util/fileutil.h"
#include "util/strutil.h"

#include <openssl/evp.h>

#define RUNNER_BIN_MAX_DOWNLOAD     (1ull << 30) /* today's tarball is ~200 MB */
#define RUNNER_BIN_TOTAL_TIMEOUT_MS (30L * 60 * 1000)

const char *github_bin_outcome_name(enum github_bin_outcome o)
{
	switch (o) {
	case GITHUB_BIN_INSTALLED:
		return "installed";
	case GITHUB_BIN_UPDATED:
		return "updated";
	case GITHUB_BIN_REPAIRED:
		return "repaired";
	case GITHUB_BIN_UNCHANGED:
		break;
	}
	return "unchanged";
}

void github_runner_bin_version(const char *filename, char *out, size_t cap)
{
	static const char *const exts[] = {".tar.gz", ".tgz", ".zip"};
	const char *dash = strrchr(filename, '-');
	size_t n;

	str_copy(out, filename, cap);
	if (!dash || !dash[1] || dash[1] < '0' || dash[1] > '9')
		return;
	n = strlen(dash + 1);
	for (size_t i = 0; i < ARRAY_SIZE(exts); i++) {
		size_t el = strlen(exts[i]);
		if (n > el && strcmp(dash + 1 + n - el, exts[i]) == 0) {
			n -= el;
			break;
		}
	}
	if (n + 1 <= cap) {
		memcpy(out, dash + 1, n);
		out[n] = '\0';
	}
}

/* A plain file name we are willing to create in our directory. */
static bool filename_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 200 || s[0] == '.' || str_has_prefix(s, "current"))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return false;
	return true;
}

static int sha256_fd(int fd, char out[65], struct err *e)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char *chunk = malloc(1 << 16);
	int r = 0;

	if (!ctx || !chunk || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		r = err_set(e, -ENOMEM, "sha256: cannot start a digest");
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, 1 << 16);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = err_set(e, -errno, "sha256: read: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(ctx, chunk, (size_t)n) != 1) {
			r = err_set(e, -EIO, "sha256: digest failed");
			goto out;
		}
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
		r = err_set(e, -EIO, "sha256: digest failed");
		goto out;
	}
	for (unsigned int i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
out:
	free(chunk);
	EVP_MD_CTX_free(ctx);
	return r;
}

/* sha256 of path; -ENOENT when it is missing. */
static int sha256_path(const char *path, char out[65], struct err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int r;

	if (fd < 0)
		return err_set(e, -errno, "%s: %s", path, strerror(errno));
	r = sha256_fd(fd, out, e);
	close(fd);
	if (r < 0)
		err_prefix(e, "%s", path);
	return r;
}

/* The file name recorded in current-<arch>, "" when none (or not a name we wrote). */
static void read_current(const char *path, char *out, size_t cap)
{
	struct buf b = BUF_INIT(512);
	out[0] = '\0';
	if (file_read(path, b.max, true, &b, NULL) < 0)
		return;
	while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' '))
		b.data[--b.len] = '\0';
	if (filename_ok(buf_str(&b)))
		str_copy(out, buf_str(&b), cap);
	buf_release(&b);
}

static int download(struct github *gh, const struct github_runner_app *app, int fd, struct err *e)
{
	const struct config_github *g = &gh->cfg->github;
	const char *hdrs[] = {"User-Agent: runnerd/" RUNNERD_VERSION, NULL};
	struct httpc_response resp = {0};
	int r;

	/* No credentials: the URL is public, and a redirect may lead to another host. */
	r = httpc_perform(
	        gh->http,
	        &(struct httpc_request){
	                .url = app->download_url,
	                .headers = hdrs,
	                .ca_file = g->ca_file,
	                .proxy = g->proxy,
	                .connect_timeout_ms =
	                        (g->connect_timeout > 0 ? g->connect_timeout : 10) * 1000L,
	                .timeout_ms = RUNNER_BIN_TOTAL_TIMEOUT_MS,
	                .low_speed_time_s = g->request_timeout > 0 ? g->request_timeout : 30,
	                .max_body = 64 * 1024,
	                .to_fd = true,
	                .fd = fd,
	                .max_download = RUNNER_BIN_MAX_DOWNLOAD,
	                .follow_redirects = true,
	                .cancel = &gh->cancelled,
	        },
	        &resp, e);
	pthread_mutex_lock(&gh->mu);
	gh->stats.requests_sent++;
	pthread_mutex_unlock(&gh->mu);
	if (r < 0)
		return err_prefix(e, "download %s", app->filename);
	if (resp.status != 200)
		r = err_set(e, -EIO, "download %s: the server answered %ld", app->filename,
		            resp.status);
	else if (resp.downloaded == 0)
		r = err_set(e, -EIO, "download %s: empty file", app->filename);
	httpc_response_release(&resp);
	return r;
}

int github_runner_bin_install(struct github *gh, const struct github_runner_app *app,
                              const char *dir, const char *arch, struct github_bin_result *ret,
                              struct err *e)
{
	char cur_path[PATH_MAX], target[PATH_MAX], tmp[PATH_MAX], old[256], got[65];
	enum github_bin_outcome outcome = GITHUB_BIN_UNCHANGED;
	int fd = -1, r;

	if (!app->sha256[0])
		return err_set(e, -EPROTO,
		               "%s: GitHub gave no sha256_checksum: refusing an unverified runner",
		               app->filename);
	if (!filename_ok(app->filename))
		return err_set(e, -EPROTO, "runner application: unusable file name from GitHub");
	if ((size_t)snprintf(cur_path, sizeof(cur_path), "%s/current-%s", dir, arch) >=
	            sizeof(cur_path) ||
	    (size_t)snprintf(target, sizeof(target), "%s/%s", dir, app->filename) >=
	            sizeof(target) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.download-%s-XXXXXX", dir, arch) >= sizeof(tmp))
		return err_set(e, -ENAMETOOLONG, "%s: path too long", dir);
	r = mkdir_p(dir, 0700, e);
	if (r < 0)
		return r;
	read_current(cur_path, old, sizeof(old));

	/* Already there and intact: nothing to fetch. */
	if (strcmp(old, app->filename) == 0 && sha256_path(target, got, NULL) == 0 &&
	    strcmp(got, app->sha256) == 0)
		goto done;
	/* Same version named but missing or damaged: a repair. */
	outcome = !old[0]                           ? GITHUB_BIN_INSTALLED
	          : strcmp(old, app->filename) == 0 ? GITHUB_BIN_REPAIRED
	                                            : GITHUB_BIN_UPDATED;

	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return err_set(e, -errno, "%s: %s", tmp, strerror(errno));
	if (fchmod(fd, 0600) < 0) {
		r = err_set(e, -errno, "%s: chmod: %s", tmp, strerror(errno));
		goto out;
	}
	r = download(gh, app, fd, e);
	if (r < 0)
		goto out;
	if (fsync(fd) < 0) {
		r = err_set(e, -errno, "%s: fsync: %s", tmp, strerror(errno));
		goto out;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		r = err_set(e, -errno, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	r = sha256_fd(fd, got, e);
	if (r < 0)
		goto out;
	if (strcmp(got, app->sha256) != 0) {
		r = err_set(
		        e, -EBADMSG,
		        "%s: sha256 mismatch (GitHub says %s, the download is %s); the old copy "
		        "is kept",
		        app->filename, app->sha256, got);
		goto out;
	}
	if (rename(tmp, target) < 0) {
		r = err_set(e, -errno, "%s: rename: %s", target, strerror(errno));
		goto out;
	}
	tmp[0] = '\0';
	{
		char line[260];
		int n = snprintf(line, sizeof(line), "%s\n", app->filename);
		r = file_write_atomic(cur_path, line, (size_t)n, 0600, e);
		if (r < 0)
			goto out;
	}
	/* The previous version is no longer referenced. */
	if (old[0] && strcmp(old, app->filename) != 0) {
		char oldpath[PATH_MAX];
		if ((size_t)snprintf(oldpath, sizeof(oldpath), "%s/%s", dir, old) < sizeof(oldpath))
			unlink(oldpath);
	}
done:
	memset(ret, 0, sizeof(*ret));
	ret->outcome = outcome;
	github_runner_bin_version(app->filename, ret->version, sizeof(ret->version));
	if (old[0])
		github_runner_bin_version(old, ret->old_version, sizeof(ret->old_version));
	str_copy(ret->path, target, sizeof(ret->path));
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tmp[0] && fd >= 0 && r < 0)
		unlink(tmp);
	return r;
}

int github_list_runner_applications(struct github *gh, struct github_app_list *ret, struct err *e)
{
	char url[GITHUB_URL_MAX], op[GITHUB_OP_MAX];
	json_t *root = NULL;
	int r;

	github_scope_op(gh, "list runner applications", op, sizeof(op));
	r = github_url(gh, url, sizeof(url), op, e, "%s/actions/runners/downloads", gh->scope);
	if (r < 0)
		goto out;
	r = github_get_json(gh, "downloads", op, url, NULL, &root, e);
	if (r == 0)
		r = github_json_apps(op, root, ret, e);
out:
	json_decref(root);
	return r;
}

int github_runner_bin_update(struct github *gh, enum arch arch, const char *state_dir,
                             struct github_bin_result *ret, struct err *e)
{
	struct github_app_list apps = {0};
	const struct github_runner_app *app = NULL;
	const char *a = arch_name(arch);
	char dir[PATH_MAX];
	int r;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/runner-bin", state_dir) >= sizeof(dir))
		return err_set(e, -ENAMETOOLONG, "%s: path too long", state_dir);
	r = github_list_runner_applications(gh, &apps, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < apps.n; i++)
		if (strcmp(apps.v[i].os, "linux") == 0 && strcmp(apps.v[i].architecture, a) == 0) {
			app = &apps.v[i];
			break;
		}
	if (!app)
		r = err_set(e, -ENOENT, "%s: GitHub offers no linux/%s runner application",
		            gh->scope, a);
	else
		r = github_runner_bin_install(gh, app, dir, a, ret, e);
	github_app_list_release(&apps);
	return r;
}

int github_update_runner_bin(struct github *gh, enum arch arch, const char *state_dir,
                             bool *ret_changed, char *ret_path, size_t cap, struct err *e)
{
	struct github_bin_result res;
	int r = github_runner_bin_update(gh, arch, state_dir, &res, e);

	if (r < 0)
		return r;
	*ret_changed = res.outcome != GITHUB_BIN_UNCHANGED;
	if (ret_path && cap)
		str_copy(ret_path, res.path, cap);
	return 0;
}
