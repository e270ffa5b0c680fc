/*
 * The runner's environment and the support services around it, as values
 * of the startup script: the job's .env (proxy, Docker Hub mirror, tmate
 * server), Docker's daemon and client configuration (registry mirror,
 * proxy drop-in, client proxies) as ready JSON and unit text the script
 * merges in, and aproxy's redirect (target, ports, excluded ranges) that
 * the script installs with nft. Every value goes through runner_sh_quote();
 * nothing here is a secret.
 */
#include "util/common.h"
#include "runner/runner.h"
#include "runner/runner_internal.h"

/* What aproxy leaves alone and redirects when the config says nothing. */
static const char *const aproxy_default_exclude[] = {"10.0.0.0/8", "172.16.0.0/12",
                                                     "192.168.0.0/16"};
static const char *const aproxy_default_ports[] = {"80", "443"};

static bool is_set(const char *s)
{
	return s && *s;
}

int runner_put_var(struct buf *b, const char *name, const char *value)
{
	int r = buf_printf(b, "%s=", name);
	if (r == 0)
		r = runner_sh_quote(value ? value : "", b);
	return r < 0 ? r : buf_puts(b, "\n");
}

/* A tab-indented `runnerd_env NAME 'value'` line of runnerd_write_env(). */
static int put_env(struct buf *b, const char *name, const char *value)
{
	int r;

	if (!is_set(value))
		return 0;
	r = buf_printf(b, "\trunnerd_env %s ", name);
	if (r == 0)
		r = runner_sh_quote(value, b);
	return r < 0 ? r : buf_puts(b, "\n");
}

/*
 * One of the tmate servers per runner, spread by the runner's name (FNV-1a):
 * every server takes a share, and a runner's choice is reproducible.
 */
static size_t ssh_debug_pick(const char *name, size_t n)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % n;
}

int runner_env_render(const struct config_runner *rc, const char *name, struct buf *b)
{
	const struct config_proxy *px = &rc->proxy;
	int r;

	r = buf_puts(b, "\n# The runner's environment (.env), from the config.\n"
	                "runnerd_write_env() {\n"
	                "\t(umask 077 && : >\"$RUNNERD_HOME/.env\") || return\n"
	                "\trunnerd_env PATH \"$PATH\"\n");
	if (r == 0)
		r = put_env(b, "LANG", "C.UTF-8");
	if (r == 0)
		r = put_env(b, "HTTP_PROXY", px->http);
	if (r == 0)
		r = put_env(b, "http_proxy", px->http);
	if (r == 0)
		r = put_env(b, "HTTPS_PROXY", px->https);
	if (r == 0)
		r = put_env(b, "https_proxy", px->https);
	if (r == 0)
		r = put_env(b, "NO_PROXY", px->no_proxy);
	if (r == 0)
		r = put_env(b, "no_proxy", px->no_proxy);
	if (r == 0)
		r = put_env(b, "DOCKERHUB_MIRROR", rc->dockerhub_mirror);
	if (r == 0)
		r = put_env(b, "CONTAINER_REGISTRY_URL", rc->dockerhub_mirror);
	if (r == 0 && rc->n_ssh_debug > 0 && rc->ssh_debug) {
		const struct config_ssh_debug *d =
		        &rc->ssh_debug[ssh_debug_pick(name, rc->n_ssh_debug)];
		char port[32];
		snprintf(port, sizeof(port), "%" PRId64, d->port);
		r = put_env(b, "TMATE_SERVER_HOST", d->host);
		if (r == 0)
			r = put_env(b, "TMATE_SERVER_PORT", port);
		if (r == 0)
			r = put_env(b, "TMATE_SERVER_RSA_FINGERPRINT", d->rsa_fingerprint);
		if (r == 0)
			r = put_env(b, "TMATE_SERVER_ED25519_FINGERPRINT", d->ed25519_fingerprint);
	}
	if (r == 0)
		r = buf_puts(b, "\trunnerd_env ACTIONS_RUNNER_HOOK_JOB_STARTED "
		                "\"$RUNNERD_HOME/hooks/pre-job.sh\"\n"
		                "\trunnerd_env ACTIONS_RUNNER_HOOK_JOB_COMPLETED "
		                "\"$RUNNERD_HOME/hooks/post-job.sh\"\n"
		                "}\n");
	return r;
}

/* ,"key": "value" (JSON), when value is set; *first says whether to skip the comma. */
static int json_member(struct buf *b, bool *first, const char *key, const char *value)
{
	int r;

	if (!is_set(value))
		return 0;
	r = buf_printf(b, "%s\"%s\": ", *first ? "" : ", ", key);
	*first = false;
	return r < 0 ? r : buf_json_string(b, value);
}

/* {"registry-mirrors": ["<mirror>"]}, merged into daemon.json. */
static int daemon_json(const struct config_runner *rc, struct buf *out)
{
	int r;

	if (!is_set(rc->dockerhub_mirror))
		return 0;
	r = buf_puts(out, "{\"registry-mirrors\": [");
	if (r == 0)
		r = buf_json_string(out, rc->dockerhub_mirror);
	return r < 0 ? r : buf_puts(out, "]}");
}

/* {"proxies": {"default": {...}}}, merged into the client's config.json. */
static int client_json(const struct config_proxy *px, struct buf *out)
{
	bool first = true;
	int r;

	if (!is_set(px->http) && !is_set(px->https))
		return 0;
	r = buf_puts(out, "{\"proxies\": {\"default\": {");
	if (r == 0)
		r = json_member(out, &first, "httpProxy", px->http);
	if (r == 0)
		r = json_member(out, &first, "httpsProxy", px->https);
	if (r == 0)
		r = json_member(out, &first, "noProxy", px->no_proxy);
	return r < 0 ? r : buf_puts(out, "}}}");
}

/* One Environment="NAME=value" assignment of a unit file: \ " % escaped. */
static int unit_env(struct buf *b, const char *name, const char *value)
{
	int r;

	if (!is_set(value))
		return 0;
	r = buf_printf(b, "Environment=\"%s=", name);
	for (const char *p = value; r == 0 && *p; p++) {
		if (*p == '\\' || *p == '"')
			r = buf_printf(b, "\\%c", *p);
		else if (*p == '%')
			r = buf_puts(b, "%%");
		else
			r = buf_printf(b, "%c", *p);
	}
	return r < 0 ? r : buf_puts(b, "\"\n");
}

/* docker.service.d/http-proxy.conf: the daemon's proxy (any Docker version). */
static int dropin(const struct config_proxy *px, struct buf *out)
{
	int r;

	if (!is_set(px->http) && !is_set(px->https))
		return 0;
	r = buf_puts(out, "# runnerd: the Docker daemon's proxy (runner.proxy)\n[Service]\n");
	if (r == 0)
		r = unit_env(out, "HTTP_PROXY", px->http);
	if (r == 0)
		r = unit_env(out, "HTTPS_PROXY", px->https);
	if (r == 0)
		r = unit_env(out, "NO_PROXY", px->no_proxy);
	return r;
}

/*
 * host and port of a proxy URL (scheme://[user:pass@]host[:port][/...]);
 * no port: 80 for http, else 443. Only what config_check_proxy_opt let by.
 */
static void proxy_host_port(const char *url, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *p = strstr(url, "://"), *end, *at, *colon;
	size_t n;

	host[0] = port[0] = '\0';
	if (!p)
		return;
	snprintf(port, pcap, "%s", strncmp(url, "http://", 7) == 0 ? "80" : "443");
	p += 3;
	end = p + strcspn(p, "/?#");
	at = memchr(p, '@', (size_t)(end - p));
	if (at)
		p = at + 1;
	colon = memchr(p, ':', (size_t)(end - p));
	n = (size_t)((colon ? colon : end) - p);
	if (n >= hcap)
		return;
	memcpy(host, p, n);
	host[n] = '\0';
	if (colon && (size_t)(end - colon - 1) < pcap) {
		memcpy(port, colon + 1, (size_t)(end - colon - 1));
		port[end - colon - 1] = '\0';
	}
}

/* items (or the defaults when there are none) joined by spaces. */
static int join(const struct strv *items, const char *const *def, size_t n_def, struct buf *out)
{
	size_t n = items->n ? items->n : n_def;
	int r = 0;

	for (size_t i = 0; r == 0 && i < n; i++)
		r = buf_printf(out, "%s%s", i ? " " : "", items->n ? items->v[i] : def[i]);
	return r;
}

static int aproxy_values(const struct config_proxy *px, struct buf *b)
{
	struct buf ports = BUF_INIT(8192), exclude = BUF_INIT(64 * 1024);
	char host[256] = "", port[16] = "";
	int r;

	if (!px->aproxy)
		return buf_puts(b, "RUNNERD_APROXY=0\n");
	if (is_set(px->aproxy_address)) {
		const char *colon = strrchr(px->aproxy_address, ':');
		size_t n = colon ? (size_t)(colon - px->aproxy_address) : 0;
		if (colon && n < sizeof(host)) {
			memcpy(host, px->aproxy_address, n);
			host[n] = '\0';
			snprintf(port, sizeof(port), "%s", colon + 1);
		}
	} else {
		proxy_host_port(is_set(px->http) ? px->http
		                : px->https      ? px->https
		                                 : "",
		                host, sizeof(host), port, sizeof(port));
	}
	r = join(&px->aproxy_ports, aproxy_default_ports, ARRAY_SIZE(aproxy_default_ports), &ports);
	if (r == 0)
		r = join(&px->aproxy_exclude, aproxy_default_exclude,
		         ARRAY_SIZE(aproxy_default_exclude), &exclude);
	if (r == 0)
		r = buf_puts(b, "RUNNERD_APROXY=1\n");
	if (r == 0)
		r = runner_put_var(b, "RUNNERD_APROXY_HOST", host);
	if (r == 0)
		r = runner_put_var(b, "RUNNERD_APROXY_PORT", port);
	if (r == 0)
		r = runner_put_var(b, "RUNNERD_APROXY_PORTS", buf_str(&ports));
	if (r == 0)
		r = runner_put_var(b, "RUNNERD_APROXY_EXCLUDE", buf_str(&exclude));
	buf_release(&ports);
	buf_release(&exclude);
	return r;
}

int runner_env_values(const struct config_runner *rc, struct buf *b)
{
	struct buf daemon = BUF_INIT(16 * 1024), client = BUF_INIT(64 * 1024),
	           unit = BUF_INIT(64 * 1024);
	int r;

	r = daemon_json(rc, &daemon);
	if (r == 0)
		r = client_json(&rc->proxy, &client);
	if (r == 0)
		r = dropin(&rc->proxy, &unit);
	if (r == 0)
		r = runner_put_var(b, "RUNNERD_DOCKER_DAEMON_JSON", buf_str(&daemon));
	if (r == 0)
		r = runner_put_var(b, "RUNNERD_DOCKER_CLIENT_JSON", buf_str(&client));
	if (r == 0)
		r = runner_put_var(b, "RUNNERD_DOCKER_DROPIN", buf_str(&unit));
	if (r == 0)
		r = aproxy_values(&rc->proxy, b);
	buf_release(&daemon);
	buf_release(&client);
	buf_release(&unit);
	return r;
}
