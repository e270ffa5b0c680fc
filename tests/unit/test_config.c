/*
 * Unit tests of src/config: the loader's errors (exact text and position,
 * every error, in file order), defaults, ranges, secrets (loaded, never
 * shown; the App key parsed; a secret file others can read warned about),
 * URL passwords (redacted), relative paths, and the print -> load -> print
 * round trip.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/common.h"
#include "config/config.h"
#include "util/buf.h"
#include "util/fileutil.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#define TOKEN_VALUE "unit-token-not-real"

/* Two lines every valid case starts with; flavors follow on line 3. */
#define HEAD                                                                                       \
	"github: {path: octo/hello, token_env: RUNNERD_UNIT_TOKEN}\n"                              \
	"manager: {name: ci}\n"
#define FLAVOR "flavors: [{name: small}]\n"

static struct config *load_ok(const char *name, const char *text)
{
	struct config_errors errs = {0};
	struct config *c = NULL;
	int r = config_load_string(name, text, strlen(text), &c, &errs);

	for (size_t i = 0; i < errs.n; i++)
		print_error("unexpected: %s\n", errs.v[i]);
	assert_int_equal(r, 0);
	assert_int_equal(errs.n, 0);
	assert_non_null(c);
	config_errors_release(&errs);
	return c;
}

/* Load text, expect failure, return the errors joined with '\n'. */
static char *load_errors(const char *text)
{
	struct config_errors errs = {0};
	struct config *c = (struct config *)(uintptr_t)0x1; /* must stay untouched */
	struct buf b = BUF_INIT(1 << 20);
	int r = config_load_string("t.yaml", text, strlen(text), &c, &errs);

	assert_int_equal(r, -EINVAL);
	assert_ptr_equal(c, (struct config *)(uintptr_t)0x1);
	assert_true(errs.n > 0);
	for (size_t i = 0; i < errs.n; i++)
		assert_int_equal(buf_printf(&b, "%s%s", i ? "\n" : "", errs.v[i]), 0);
	config_errors_release(&errs);
	return buf_detach(&b, NULL);
}

static const struct error_case {
	const char *name;
	const char *yaml;
	const char *errors; /* every line, exactly, in order */
} error_cases[] = {
        {"unknown top-level key", HEAD FLAVOR "colour: blue\n", "t.yaml:4:1: colour: unknown key"},
        {"a dotted key is not a path", "\"github.path\": octo/x\n" HEAD FLAVOR,
         "t.yaml:1:1: github.path: unknown key"},
        {"unknown nested key", HEAD "flavors:\n  - name: small\n    resources: {cpu: 2}\n",
         "t.yaml:5:17: flavors[0].resources.cpu: unknown key"},
        {"mapping where a string is expected",
         "github:\n  path: {owner: octo}\n  token_env: RUNNERD_UNIT_TOKEN\nmanager: {name: "
         "ci}\n" FLAVOR,
         "t.yaml:2:3: github.path: expected a string, got a mapping"},
        {"quoted integer", HEAD "flavors: [{name: small, max: \"10\"}]\n",
         "t.yaml:3:30: flavors[0].max: expected an integer, got a string"},
        {"float for an integer", HEAD "flavors: [{name: small, max: 10.5}]\n",
         "t.yaml:3:30: flavors[0].max: expected an integer, got a float"},
        {"yes is not a boolean", HEAD FLAVOR "runner: {jit: yes}\n",
         "t.yaml:4:15: runner.jit: expected true or false, got a string"},
        {"missing top-level section", "manager: {name: ci}\n" FLAVOR,
         "t.yaml:1:1: github: missing required key"},
        {"missing key points at its mapping",
         "github: {path: octo/hello, token_env: RUNNERD_UNIT_TOKEN}\nmanager:\n  log_dir: "
         "/x\n" FLAVOR,
         "t.yaml:2:1: manager.name: missing required key"},
        {"missing flavor name points at the item", HEAD "flavors:\n  - name: a\n  - max: 2\n",
         "t.yaml:5:5: flavors[1].name: missing required key"},
        {"create_concurrency out of range",
         "github: {path: octo/hello, token_env: RUNNERD_UNIT_TOKEN}\n"
         "manager: {name: ci, create_concurrency: 0}\n" FLAVOR,
         "t.yaml:2:41: manager.create_concurrency: must be between 1 and 100"},
        {"min_idle above max", HEAD "flavors: [{name: small, min_idle: 3, max: 2}]\n",
         "t.yaml:3:35: flavors[0].min_idle: min_idle (3) must not exceed max (2)"},
        {"min_idle above the default max", HEAD "flavors: [{name: small, min_idle: 3}]\n",
         "t.yaml:3:35: flavors[0].min_idle: min_idle (3) must not exceed max (1)"},
        {"duplicate flavor names", HEAD "flavors:\n  - name: a\n  - name: b\n  - name: a\n",
         "t.yaml:6:11: flavors[2].name: duplicate flavor name 'a' (first at line 4)"},
        {"duplicate YAML key", HEAD FLAVOR "runner:\n  jit: true\n  jit: false\n",
         "t.yaml:6:3: runner.jit: duplicate key (first at line 5)"},
        {"inline token",
         "github: {path: octo/hello, token_env: RUNNERD_UNIT_TOKEN, token: inline-not-real}\n"
         "manager: {name: ci}\n" FLAVOR,
         "t.yaml:1:59: github.token: secrets are never inline; use token_file or token_env"},
        {"secret variable not set",
         "github: {path: octo/hello, token_env: RUNNERD_UNIT_UNSET}\nmanager: {name: ci}\n" FLAVOR,
         "t.yaml:1:39: github.token_env: environment variable RUNNERD_UNIT_UNSET is not set"},
        {"secret file missing",
         "github: {path: octo/hello, token_file: /nonexistent/runnerd/token}\n"
         "manager: {name: ci}\n" FLAVOR,
         "t.yaml:1:40: github.token_file: cannot read secret file /nonexistent/runnerd/token: No "
         "such file or directory"},
        {"secret file is a directory",
         "github: {path: octo/hello, token_file: /}\nmanager: {name: ci}\n" FLAVOR,
         "t.yaml:1:40: github.token_file: cannot read secret file /: not a regular file"},
        {"plain http mirror", HEAD FLAVOR "runner: {dockerhub_mirror: \"http://m.example\"}\n",
         "t.yaml:4:28: runner.dockerhub_mirror: must be an https:// URL"},
        {"bad CIDRs", HEAD FLAVOR "runner: {denylist: [10.0.0.0/8, 10.0.0.0/40, ::/129, x]}\n",
         "t.yaml:4:33: runner.denylist[1]: prefix length must be 0-32\n"
         "t.yaml:4:46: runner.denylist[2]: prefix length must be 0-128\n"
         "t.yaml:4:54: runner.denylist[3]: must be an IPv4 or IPv6 address or CIDR, such as "
         "10.0.0.0/8 or fd00::/8"},
        {"duration without a unit",
         "github: {path: octo/hello, token_env: RUNNERD_UNIT_TOKEN}\n"
         "manager: {name: ci, job_timeout: 3600}\n" FLAVOR,
         "t.yaml:2:34: manager.job_timeout: invalid duration '3600'; expected a number and a "
         "unit: 30s, 5m, 6h, 7d"},
        {"zero duration",
         "github: {path: octo/hello, token_env: RUNNERD_UNIT_TOKEN, request_timeout: 0s}\n"
         "manager: {name: ci}\n" FLAVOR,
         "t.yaml:1:76: github.request_timeout: must be between 1s and 365d"},
        {"bad size", HEAD "flavors: [{name: small, resources: {memory: 7G1B}}]\n",
         "t.yaml:3:45: flavors[0].resources.memory: invalid size '7G1B'; expected a number and a "
         "unit such as 512MiB or 7GiB"},
        {"size too small", HEAD "flavors: [{name: small, resources: {disk: 1KiB}}]\n",
         "t.yaml:3:43: flavors[0].resources.disk: must be between 1MiB and 1024TiB"},
        {"a label that contradicts the arch",
         HEAD "flavors: [{name: small, arch: arm64, labels: [Linux, X64, a]}]\n",
         "t.yaml:3:54: flavors[0].labels[1]: label 'X64' contradicts arch arm64"},
        {"every error, in file order (not in the order found)",
         "github:\n  path: octo/hello\n  token_env: RUNNERD_UNIT_TOKEN\n  runner_group: g\n"
         "manager:\n  nam: ci\nflavors:\n  - name: Bad\n    max: 0\nbogus: 1\n",
         "t.yaml:4:17: github.runner_group: runner groups are for organizations only; "
         "github.path names a repository\n"
         "t.yaml:5:1: manager.name: missing required key\n"
         "t.yaml:6:3: manager.nam: unknown key\n"
         "t.yaml:8:11: flavors[0].name: must be 1-63 characters of a-z, 0-9 and '-', not starting "
         "or ending with '-'\n"
         "t.yaml:9:10: flavors[0].max: must be between 1 and 10000\n"
         "t.yaml:10:1: bogus: unknown key"},
        {"syntax error", "github:\n  path: [octo\nmanager: {name: ci}\n",
         "t.yaml:4:1: syntax error: flow sequence without a closing bracket"},
        {"two documents", HEAD FLAVOR "---\nfoo: 1\n",
         "t.yaml:4:1: only one YAML document is allowed"},
        {"aliases",
         "github: &g {path: octo/hello, token_env: RUNNERD_UNIT_TOKEN}\nmanager: *g\n" FLAVOR,
         "t.yaml:2:1: manager: YAML aliases are not supported"},
        {"control character", HEAD FLAVOR "runner: {proxy: {no_proxy: \"a\\nb\"}}\n",
         "t.yaml:4:28: runner.proxy.no_proxy: must not contain control characters"},
        {"amqp without a URI", HEAD FLAVOR "queue: {kind: amqp}\n",
         "t.yaml:4:1: queue: one of uri_file or uri_env is required for kind amqp"},
        {"two credentials",
         "github: {path: octo, token_env: RUNNERD_UNIT_TOKEN, app: {app_id: 1, installation_id: 2, "
         "private_key_file: /nonexistent/k}}\nmanager: {name: ci}\n" FLAVOR,
         "t.yaml:1:53: github.app: conflicts with github.token_env; give only one of token_file, "
         "token_env or app\n"
         "t.yaml:1:108: github.app.private_key_file: cannot read secret file /nonexistent/k: No "
         "such file or directory"},
        {"app without installation_id",
         "github: {path: octo, app: {app_id: 1, private_key_file: /nonexistent/k}}\n"
         "manager: {name: ci}\n" FLAVOR,
         "t.yaml:1:22: github.app.installation_id: missing required key\n"
         "t.yaml:1:57: github.app.private_key_file: cannot read secret file /nonexistent/k: No "
         "such file or directory"},
        {"bad listen", HEAD FLAVOR "webhook: {listen: \"8080\"}\nmetrics: {listen: \"[::1]:x\"}\n",
         "t.yaml:4:19: webhook.listen: must be HOST:PORT (such as 127.0.0.1:8080 or [::1]:8080), "
         "or \"\" to disable\n"
         "t.yaml:5:19: metrics.listen: must be HOST:PORT (such as 127.0.0.1:8080 or [::1]:8080), "
         "or \"\" to disable"},
        {"empty document", "",
         "t.yaml:1:1: github: missing required key\n"
         "t.yaml:1:1: manager: missing required key\n"
         "t.yaml:1:1: flavors: missing required key"},
        {"top level not a mapping", "just a string\n",
         "t.yaml:1:1: the top level must be a mapping"},
        {"no flavors", HEAD "flavors: []\n",
         "t.yaml:3:1: flavors: at least one flavor is required"},
        {"null section", HEAD FLAVOR "runner:\n",
         "t.yaml:4:1: runner: expected a mapping, got null"},
        {"a provider that is neither configured nor a type",
         HEAD "flavors: [{name: small, provider: docker}]\n",
         "t.yaml:3:35: flavors[0].provider: no provider named 'docker' under providers, and it "
         "is not a provider type of this runnerd (local, lxd, openstack)"},
        {"a provider type a flavor cannot imply",
         HEAD "flavors: [{name: small, provider: openstack, image: i}]\n",
         "t.yaml:3:35: flavors[0].provider: type openstack needs keys of its own: add an entry "
         "under providers with type: openstack"},
        {"a provider entry of an unknown type",
         HEAD "flavors: [{name: small, provider: os}]\n"
              "providers: {os: {type: docker, auth_url: x}}\n",
         "t.yaml:4:24: providers.os.type: 'docker' is not a provider type of this runnerd "
         "(local, lxd, openstack)"},
        {"an openstack provider: required keys, bad values",
         HEAD "flavors: [{name: small, provider: os}]\n"
              "providers: {os: {type: openstack, network: 'a/b', interface: outside,\n"
              "  region: \"\", security_group: \"x\\ty\", socket: /s}}\n",
         "t.yaml:3:12: flavors[0].image: required for a flavor on an openstack provider\n"
         "t.yaml:4:13: providers.os.clouds_yaml: missing required key\n"
         "t.yaml:4:13: providers.os.cloud: missing required key\n"
         "t.yaml:4:13: providers.os.flavor: missing required key\n"
         "t.yaml:4:44: providers.os.network: must not hold control characters, '/', '?', '#' "
         "or '%'\n"
         "t.yaml:4:62: providers.os.interface: 'outside' is not one of: public, internal, admin\n"
         "t.yaml:5:31: providers.os.security_group: must not contain control characters\n"
         "t.yaml:5:39: providers.os.socket: not a key of openstack providers"},
        {"a provider entry without a type",
         HEAD "flavors: [{name: small, provider: lxd-east}]\n"
              "providers:\n  lxd-east: {socket: /s}\n",
         "t.yaml:5:3: providers.lxd-east: missing required key type ('lxd-east' is not a "
         "provider type: local, lxd, openstack)"},
        {"a key of another provider type",
         HEAD FLAVOR "providers: {local: {socket: /s, concurrency: 0}}\n",
         "t.yaml:4:21: providers.local.socket: not a key of local providers\n"
         "t.yaml:4:46: providers.local.concurrency: must be between 1 and 100"},
        {"a bad provider name and a duplicate",
         HEAD FLAVOR "providers:\n  Big_One: {type: lxd}\n  local: {}\n  local: {}\n",
         "t.yaml:5:3: providers: 'Big_One': must be 1-31 characters of a-z, 0-9 and '-', not "
         "starting or ending with '-'\n"
         "t.yaml:7:3: providers.local: duplicate key (first at line 6)"},
        {"a provider name with a control character",
         HEAD FLAVOR "providers: {\"lxd\\tx\": {type: lxd}}\n",
         "t.yaml:4:13: providers: keys must not contain control characters"},
        {"an image is required on an lxd provider, whatever its name",
         HEAD "flavors: [{name: small, provider: east}]\nproviders: {east: {type: lxd}}\n",
         "t.yaml:3:12: flavors[0].image: required for a flavor on an lxd provider"},
        {"bad github path",
         "github: {path: a/b/c, token_env: RUNNERD_UNIT_TOKEN}\nmanager: {name: ci}\n" FLAVOR,
         "t.yaml:1:16: github.path: must be OWNER/REPO or an organization name"},
        {"manager name too long",
         "github: {path: o/r, token_env: RUNNERD_UNIT_TOKEN}\n"
         "manager: {name: abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij}\n" FLAVOR,
         "t.yaml:2:17: manager.name: must be 1-50 characters of a-z, 0-9 and '-', not starting or "
         "ending with '-'"},
        {"ssh_debug port and host", HEAD FLAVOR "runner:\n  ssh_debug:\n    - {port: 0}\n",
         "t.yaml:6:8: runner.ssh_debug[0].host: missing required key\n"
         "t.yaml:6:14: runner.ssh_debug[0].port: must be between 1 and 65535"},
        {"proxy credentials without a host",
         HEAD FLAVOR "runner: {proxy: {http: \"http://u:pw-not-real@\", "
                     "https: \"http://u:pw-not-real@:3128/\"}}\n",
         "t.yaml:4:24: runner.proxy.http: must be a proxy URL such as http://proxy.example:3128\n"
         "t.yaml:4:56: runner.proxy.https: must be a proxy URL such as "
         "http://proxy.example:3128"},
};

/* One cmocka test per row of error_cases (its row is the initial state). */
static void test_error_case(void **state)
{
	const struct error_case *t = *state;
	char *got = load_errors(t->yaml);

	if (strcmp(got, t->errors) != 0)
		print_error("case '%s':\n  want: %s\n  got:  %s\n", t->name, t->errors, got);
	assert_string_equal(got, t->errors);
	free(got);
}

/* The messages never contain a value given inline for a secret key. */
static void test_inline_secret_never_shown(void **state)
{
	char *got = load_errors("github: {path: octo, token: inline-not-real-1}\n"
	                        "manager: {name: ci, password: inline-not-real-2}\n"
	                        "flavors: [{name: s}]\nwebhook: {secret: inline-not-real-3}\n"
	                        "queue: {kind: amqp, uri: inline-not-real-4}\n");

	assert_null(strstr(got, "inline-not-real"));
	assert_non_null(strstr(got, "webhook.secret: secrets are never inline; use secret_file "
	                            "or secret_env"));
	assert_non_null(
	        strstr(got, "queue.uri: secrets are never inline; use uri_file or uri_env"));
	assert_non_null(strstr(got, "manager.password: secrets are never inline"));
	free(got);
}

/*
 * Regression (found by tests/fuzz/fuzz_config): libfyaml 0.7.12 loops
 * forever on a directive line with a malformed byte ("%\x9c"); the loader
 * must refuse bytes that are not UTF-8 before libfyaml sees them, with the
 * position of the first bad one.
 */
static void test_not_utf8(void **state)
{
	static const struct {
		const char *text;
		size_t len;
		const char *want;
	} cases[] = {
	        {"%\x9c", 2, "u.yaml:1:2: not valid UTF-8 text (a config file is UTF-8)"},
	        {"a: b\n%%%\x9c\n", 10,
	         "u.yaml:2:4: not valid UTF-8 text (a config file is UTF-8)"},
	        {"a: \xc0\xaf\n", 6, "u.yaml:1:4: not valid UTF-8 text (a config file is UTF-8)"},
	        {"a: \xed\xa0\x80\n", 7,
	         "u.yaml:1:4: not valid UTF-8 text (a config file is UTF-8)"},
	        {"a: b\0c\n", 7, "u.yaml:1:5: not valid UTF-8 text (a config file is UTF-8)"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct config *c = NULL;
		struct config_errors errs = {0};
		assert_int_equal(
		        config_load_string("u.yaml", cases[i].text, cases[i].len, &c, &errs),
		        -EINVAL);
		assert_null(c);
		assert_int_equal(errs.n, 1);
		assert_string_equal(errs.v[0], cases[i].want);
		config_errors_release(&errs);
	}
	/* valid UTF-8 beyond ASCII goes through to the YAML checks */
	struct config *c = NULL;
	struct config_errors errs = {0};
	const char *ok = "caf\xc3\xa9: 1\n";
	assert_int_equal(config_load_string("u.yaml", ok, strlen(ok), &c, &errs), -EINVAL);
	assert_true(errs.n >= 1);
	assert_null(strstr(errs.v[0], "UTF-8"));
	config_errors_release(&errs);
}

static void test_defaults(void **state)
{
	struct config *c = load_ok("t.yaml", HEAD FLAVOR);
	const struct config_flavor *f = &c->flavors[0];

	assert_string_equal(c->path, "t.yaml");
	assert_string_equal(c->github.api_url, "https://api.github.com");
	assert_string_equal(c->github.path, "octo/hello");
	assert_false(c->github.is_org);
	assert_false(c->github.use_app);
	assert_string_equal(c->github.token.value, TOKEN_VALUE);
	assert_string_equal(c->github.token.source, "env:RUNNERD_UNIT_TOKEN");
	assert_string_equal(c->github.token_file, "");
	assert_string_equal(c->github.runner_group, "default");
	assert_string_equal(c->github.ca_file, "");
	assert_string_equal(c->github.proxy, "");
	assert_int_equal(c->github.connect_timeout, 10);
	assert_int_equal(c->github.request_timeout, 30);
	assert_string_equal(c->manager.name, "ci");
	assert_string_equal(c->manager.state_dir, "/var/lib/runnerd");
	assert_string_equal(c->manager.log_dir, "/var/log/runnerd");
	assert_int_equal(c->manager.log_retention, 7 * 86400);
	assert_int_equal(c->manager.reconcile_interval, 300);
	assert_int_equal(c->manager.bootstrap_timeout, 1200);
	assert_int_equal(c->manager.job_timeout, 6 * 3600);
	assert_int_equal(c->manager.create_concurrency, 10);
	assert_int_equal(c->n_flavors, 1);
	assert_string_equal(f->name, "small");
	assert_string_equal(f->provider, "local");
	assert_string_equal(f->image, "");
	assert_int_equal(f->arch, ARCH_X64);
	assert_int_equal(f->labels.n, 0);
	assert_int_equal(f->min_idle, 0);
	assert_int_equal(f->max, 1);
	assert_int_equal(f->resources.vcpu, 2);
	assert_int_equal(f->resources.memory, 7LL << 30);
	assert_int_equal(f->resources.disk, 10LL << 30);
	assert_int_equal(f->line, 3);
	/* the flavor's provider "local" is implied: an instance of type local, all defaults */
	assert_int_equal(c->n_providers, 1);
	assert_ptr_equal(config_provider_find(c, "local"), &c->providers[0]);
	assert_string_equal(c->providers[0].type, "local");
	assert_true(c->providers[0].implied);
	assert_int_equal(c->providers[0].concurrency, 10);
	assert_string_equal(c->providers[0].local.work_dir, "/var/lib/runnerd/local");
	assert_string_equal(c->providers[0].local.user, "runnerd-runner");
	assert_int_equal(c->providers[0].local.stop_timeout, 10);
	assert_null(c->providers[0].lxd.socket);
	assert_null(config_provider_find(c, "lxd"));
	assert_true(c->runner.jit);
	assert_false(c->runner.proxy.aproxy);
	assert_string_equal(c->runner.dockerhub_mirror, "");
	assert_int_equal(c->runner.n_ssh_debug, 0);
	assert_int_equal(c->runner.denylist.n, 0);
	assert_null(c->runner.repo_policy_token.value);
	assert_string_equal(c->webhook.listen, "127.0.0.1:8080");
	assert_null(c->webhook.secret.value);
	assert_int_equal(c->queue.kind, QUEUE_SQLITE);
	assert_null(c->queue.uri.value);
	assert_string_equal(c->metrics.events_log, "/var/log/runnerd/metrics.log");
	assert_string_equal(c->metrics.listen, "127.0.0.1:9464");
	config_free(c);
}

static const char full_yaml[] =
        "github:\n"
        "  api_url: http://127.0.0.1:8900//\n"
        "  path: octo-org\n"
        "  token_env: RUNNERD_UNIT_TOKEN\n"
        "  runner_group: pool-1\n"
        "  proxy: http://proxy:3128\n"
        "  connect_timeout: 2s\n"
        "  request_timeout: 1m\n"
        "manager:\n"
        "  name: ci-east\n"
        "  state_dir: /srv/state\n"
        "  log_retention: 1w\n"
        "  reconcile_interval: 90s\n"
        "  bootstrap_timeout: 1380s\n"
        "  job_timeout: 2d\n"
        "  create_concurrency: 100\n"
        "flavors:\n"
        "  - name: big\n"
        "    provider: lxd\n"
        "    image: img\n"
        "    arch: arm64\n"
        "    labels: [gpu, \"2204\", 'x:y']\n"
        "    min_idle: 3\n"
        "    max: 3\n"
        "    resources: {vcpu: 8, memory: 512MiB, disk: 1073741824}\n"
        "  - name: small\n"
        "providers:\n"
        "  local: {work_dir: /w, user: runner_1, stop_timeout: 1s}\n"
        "  lxd: {socket: /s, project: p, network: n, storage_pool: sp, profiles: [a, b],\n"
        "        type: lxd, instance_type: virtual-machine, bootstrap: exec, concurrency: 3}\n"
        "runner:\n"
        "  jit: false\n"
        "  proxy: {http: http://p:1, https: http://p:2, no_proxy: \".x,.y\", aproxy: true}\n"
        "  dockerhub_mirror: https://mirror\n"
        "  ssh_debug: [{host: h1, rsa_fingerprint: r, ed25519_fingerprint: e}, {host: h2, port: "
        "22}]\n"
        "  denylist: [10.0.0.0/8, \"::1\", 192.168.0.1]\n"
        "webhook: {listen: \"[::1]:9000\", secret_env: RUNNERD_UNIT_TOKEN}\n"
        "queue: {kind: amqp, uri_env: RUNNERD_UNIT_TOKEN}\n"
        "metrics: {events_log: /e.log, listen: \"\"}\n";

static void test_every_key(void **state)
{
	struct config *c = load_ok("t.yaml", full_yaml);

	assert_string_equal(c->github.api_url, "http://127.0.0.1:8900");
	assert_true(c->github.is_org);
	assert_string_equal(c->github.runner_group, "pool-1");
	assert_int_equal(c->github.connect_timeout, 2);
	assert_int_equal(c->github.request_timeout, 60);
	assert_int_equal(c->manager.log_retention, 7 * 86400);
	assert_int_equal(c->manager.bootstrap_timeout, 1380);
	assert_int_equal(c->manager.job_timeout, 2 * 86400);
	assert_int_equal(c->manager.create_concurrency, 100);
	assert_int_equal(c->n_flavors, 2);
	assert_string_equal(c->flavors[0].provider, "lxd");
	assert_int_equal(c->flavors[0].arch, ARCH_ARM64);
	assert_int_equal(c->flavors[0].labels.n, 3);
	assert_string_equal(c->flavors[0].labels.v[1], "2204");
	assert_string_equal(c->flavors[0].labels.v[2], "x:y");
	assert_int_equal(c->flavors[0].min_idle, 3);
	assert_int_equal(c->flavors[0].resources.memory, 512LL << 20);
	assert_int_equal(c->flavors[0].resources.disk, 1LL << 30);
	assert_int_equal(c->flavors[1].line, 26);
	assert_int_equal(c->n_providers, 2);
	assert_int_equal(config_provider_find(c, "local")->local.stop_timeout, 1);
	assert_string_equal(config_provider_find(c, "local")->local.user, "runner_1");
	assert_int_equal(config_provider_find(c, "lxd")->lxd.profiles.n, 2);
	assert_int_equal(config_provider_find(c, "lxd")->lxd.type, LXD_VM);
	assert_int_equal(config_provider_find(c, "lxd")->lxd.bootstrap, LXD_BOOTSTRAP_EXEC);
	assert_int_equal(config_provider_find(c, "lxd")->concurrency, 3);
	assert_false(config_provider_find(c, "lxd")->implied);
	assert_false(c->runner.jit);
	assert_true(c->runner.proxy.aproxy);
	assert_string_equal(c->runner.proxy.no_proxy, ".x,.y");
	assert_int_equal(c->runner.n_ssh_debug, 2);
	assert_int_equal(c->runner.ssh_debug[0].port, 10022);
	assert_string_equal(c->runner.ssh_debug[0].ed25519_fingerprint, "e");
	assert_int_equal(c->runner.ssh_debug[1].port, 22);
	assert_string_equal(c->runner.ssh_debug[1].rsa_fingerprint, "");
	assert_int_equal(c->runner.denylist.n, 3);
	assert_string_equal(c->webhook.secret.value, TOKEN_VALUE);
	assert_int_equal(c->queue.kind, QUEUE_AMQP);
	assert_string_equal(c->queue.uri.value, TOKEN_VALUE);
	assert_string_equal(c->queue.uri.source, "env:RUNNERD_UNIT_TOKEN");
	assert_string_equal(c->metrics.listen, "");
	assert_ptr_equal(config_flavor_find(c, "small"), &c->flavors[1]);
	assert_null(config_flavor_find(c, "smal"));
	assert_string_equal(arch_name(c->flavors[0].arch), "arm64");
	assert_string_equal(arch_name(ARCH_X64), "x64");
	config_free(c);
}

/* What a successful load warned about, joined with '\n' ("" for none). */
static char *load_warnings(const char *text)
{
	struct config *c = load_ok("t.yaml", text);
	struct buf b = BUF_INIT(1 << 20);

	for (size_t i = 0; i < c->warnings.n; i++)
		assert_int_equal(buf_printf(&b, "%s%s", i ? "\n" : "", c->warnings.v[i]), 0);
	config_free(c);
	return buf_detach(&b, NULL);
}

/* Harmless repetitions load, with a warning each: refuse what is wrong, not what is redundant. */
static void test_redundant_labels_warn(void **state)
{
	char *w = load_warnings(
	        HEAD "flavors: [{name: small, arch: arm64, labels: [Linux, ARM64, a, A]}]\n");

	assert_string_equal(w,
	                    "t.yaml:3:47: warning: flavors[0].labels[0]: label 'Linux' is "
	                    "implied; it can be removed\n"
	                    "t.yaml:3:54: warning: flavors[0].labels[1]: label 'ARM64' is "
	                    "implied; it can be removed\n"
	                    "t.yaml:3:64: warning: flavors[0].labels[3]: duplicate label 'A'; it "
	                    "can be removed");
	free(w);
}

/*
 * Providers are named instances: two LXD hosts in one manager, each flavor
 * routed to its own; a key that is a type name keeps working as before
 * (the old providers.lxd.type: virtual-machine included, with a warning).
 */
static void test_named_providers(void **state)
{
	struct config *c =
	        load_ok("t.yaml", HEAD "flavors:\n"
	                               "  - {name: east, provider: lxd-east, image: i}\n"
	                               "  - {name: west, provider: lxd-west, image: i}\n"
	                               "  - {name: here}\n"
	                               "providers:\n"
	                               "  lxd-east: {type: lxd, socket: /a.sock, project: east}\n"
	                               "  lxd-west: {type: lxd, socket: /b.sock, project: west, "
	                               "concurrency: 2}\n");
	const struct config_provider *e = config_provider_find(c, "lxd-east");
	const struct config_provider *w = config_provider_find(c, "lxd-west");
	char *warn;

	assert_int_equal(c->n_providers, 3);
	assert_non_null(e);
	assert_non_null(w);
	assert_string_equal(e->type, "lxd");
	assert_string_equal(e->lxd.socket, "/a.sock");
	assert_string_equal(e->lxd.project, "east");
	assert_string_equal(e->lxd.network, "lxdbr0"); /* the type's defaults */
	assert_int_equal(e->concurrency, 10);
	assert_int_equal(w->concurrency, 2);
	assert_string_equal(w->lxd.project, "west");
	assert_int_equal(e->line, 8);
	assert_null(e->local.work_dir); /* only its type's part is filled */
	assert_true(config_provider_find(c, "local")->implied);
	assert_string_equal(c->flavors[1].provider, "lxd-west");
	config_free(c);

	/* the old form: providers.lxd.type was the instance type */
	warn = load_warnings(HEAD "flavors: [{name: vm, provider: lxd, image: i}]\n"
	                          "providers:\n  lxd:\n    type: virtual-machine\n");
	assert_string_equal(warn, "t.yaml:6:5: warning: providers.lxd.type: read as "
	                          "instance_type (the LXD instance type); type now names the "
	                          "provider type: write type: lxd and instance_type");
	free(warn);
	c = load_ok("t.yaml", HEAD "flavors: [{name: vm, provider: lxd, image: i}]\n"
	                           "providers:\n  lxd:\n    type: virtual-machine\n");
	assert_int_equal(c->providers[0].lxd.type, LXD_VM);
	assert_string_equal(c->providers[0].type, "lxd");
	assert_false(c->providers[0].implied);
	config_free(c);

	/* what a reload compares, and the defaults of a provider that left the config */
	{
		struct config *c1 =
		        load_ok("t.yaml", HEAD FLAVOR "providers: {local: {user: a}}\n");
		struct config *c2 =
		        load_ok("t.yaml", HEAD FLAVOR "providers: {local: {user: b}}\n");
		struct config *c3 =
		        load_ok("t.yaml", HEAD FLAVOR "providers: {local: {user: a}}\n");
		struct config_provider *d = NULL;

		assert_false(config_provider_same(&c1->providers[0], &c2->providers[0]));
		assert_true(config_provider_same(&c1->providers[0], &c3->providers[0]));
		assert_int_equal(config_provider_implied("lxd", &d), 0);
		assert_string_equal(d->name, "lxd");
		assert_true(d->implied);
		assert_string_equal(d->lxd.socket, "/var/lib/lxd/unix.socket");
		assert_int_equal(d->lxd.operation_timeout, 120);
		assert_false(config_provider_same(d, &c1->providers[0]));
		config_provider_free(d);
		assert_int_equal(config_provider_implied("openstack", &d), -EINVAL);
		config_free(c1);
		config_free(c2);
		config_free(c3);
	}

	/* a provider no flavor uses is harmless: a warning */
	warn = load_warnings(HEAD FLAVOR "providers:\n  spare: {type: lxd}\n");
	assert_string_equal(warn, "t.yaml:5:3: warning: providers.spare: no flavor uses this "
	                          "provider (runnerd opens it only to remove instances it still "
	                          "holds there)");
	free(warn);
}

static char *print_config(const struct config *c)
{
	struct buf b = BUF_INIT(1 << 20);
	assert_int_equal(config_print(c, &b), 0);
	return buf_detach(&b, NULL);
}

static void test_round_trip(void **state)
{
	struct config *c = load_ok("t.yaml", full_yaml);
	char *one = print_config(c), *two;
	struct config *c2 = load_ok("other.yaml", one);

	two = print_config(c2);
	assert_string_equal(one, two);
	/* the printed text names the secret's source, never its value */
	assert_null(strstr(one, TOKEN_VALUE));
	assert_non_null(strstr(one, "  token_env: RUNNERD_UNIT_TOKEN\n"));
	assert_non_null(strstr(one, "    labels: [gpu, \"2204\", \"x:y\"]\n"));
	assert_non_null(strstr(one, "  bootstrap_timeout: 23m\n"));
	assert_non_null(strstr(one, "      disk: 1GiB\n"));
	assert_non_null(strstr(one, "  listen: \"\"\n"));
	free(one);
	free(two);
	config_free(c);
	config_free(c2);

	/* the defaults print and load back too */
	c = load_ok("t.yaml", HEAD FLAVOR);
	one = print_config(c);
	c2 = load_ok("t.yaml", one);
	two = print_config(c2);
	assert_string_equal(one, two);
	free(one);
	free(two);
	config_free(c);
	config_free(c2);
}

static void test_printed_strings_are_quoted_when_needed(void **state)
{
	struct config *c =
	        load_ok("t.yaml", HEAD "flavors: [{name: s, image: \"true\"}, "
	                               "{name: t, image: \"a: b #c\"}, {name: u, image: \"12\"},"
	                               " {name: v, image: \"q\\\"\\\\\"}]\n");
	char *out = print_config(c);
	struct config *c2 = load_ok("t.yaml", out);

	assert_non_null(strstr(out, "    image: \"true\"\n"));
	assert_non_null(strstr(out, "    image: \"a: b #c\"\n"));
	assert_non_null(strstr(out, "    image: \"12\"\n"));
	assert_non_null(strstr(out, "    image: \"q\\\"\\\\\"\n"));
	assert_string_equal(c2->flavors[0].image, "true");
	assert_string_equal(c2->flavors[1].image, "a: b #c");
	assert_string_equal(c2->flavors[3].image, "q\"\\");
	free(out);
	config_free(c);
	config_free(c2);
}

/* Relative paths start at the config file's directory. */
static void test_relative_paths(void **state)
{
	char cwd[PATH_MAX], want[PATH_MAX + 64];
	char dir[] = "/tmp/runnerd-test-config-XXXXXX";
	char path[PATH_MAX + 64], yaml[PATH_MAX + 256];
	struct config *c;
	FILE *f;

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	c = load_ok("etc/runnerd.yaml",
	            "github: {path: o/r, token_env: RUNNERD_UNIT_TOKEN}\n"
	            "manager: {name: ci, state_dir: state, log_dir: ./././logs}\n" FLAVOR
	            "metrics: {events_log: ../m.log}\n");
	snprintf(want, sizeof(want), "%s/etc/state", cwd);
	assert_string_equal(c->manager.state_dir, want);
	snprintf(want, sizeof(want), "%s/etc/logs", cwd);
	assert_string_equal(c->manager.log_dir, want);
	snprintf(want, sizeof(want), "%s/etc/../m.log", cwd);
	assert_string_equal(c->metrics.events_log, want);
	config_free(c);

	c = load_ok("/etc/runnerd/runnerd.yaml",
	            "github: {path: o/r, token_env: RUNNERD_UNIT_TOKEN}\n"
	            "manager: {name: ci, state_dir: s}\n" FLAVOR);
	assert_string_equal(c->manager.state_dir, "/etc/runnerd/s");
	assert_string_equal(c->manager.log_dir, "/var/log/runnerd");
	config_free(c);

	/* a secret file next to the config, named relatively, loaded by config_load */
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/token", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("file-token-not-real\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/runnerd.yaml", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	snprintf(yaml, sizeof(yaml),
	         "github: {path: o/r, token_file: token}\nmanager: {name: ci}\n" FLAVOR);
	fputs(yaml, f);
	fclose(f);
	{
		struct config_errors errs = {0};
		assert_int_equal(config_load(path, &c, &errs), 0);
		assert_int_equal(errs.n, 0);
	}
	assert_string_equal(c->github.token.value, "file-token-not-real");
	snprintf(want, sizeof(want), "file:%s/token", dir);
	assert_string_equal(c->github.token.source, want);
	config_free(c);
	snprintf(path, sizeof(path), "%s/token", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/runnerd.yaml", dir);
	unlink(path);
	rmdir(dir);
}

static void test_load_missing_file(void **state)
{
	struct config_errors errs = {0};
	struct config *c = NULL;

	assert_int_equal(config_load("/nonexistent/runnerd.yaml", &c, &errs), -ENOENT);
	assert_null(c);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.v[0], "/nonexistent/runnerd.yaml: No such file or directory");
	config_errors_release(&errs);
	assert_int_equal(errs.n, 0);
	config_errors_release(&errs); /* twice is fine */
	config_errors_release(NULL);
	config_free(NULL);
}

/* errs is appended to, never cleared by the loader. */
static void test_errors_append(void **state)
{
	struct config_errors errs = {0};
	struct config *c = NULL;
	const char *bad = "nope: 1\n";

	assert_int_equal(config_load_string("a.yaml", bad, strlen(bad), &c, &errs), -EINVAL);
	assert_int_equal(config_load_string("b.yaml", bad, strlen(bad), &c, &errs), -EINVAL);
	assert_null(c);
	assert_true(errs.n >= 2);
	assert_true(strncmp(errs.v[0], "a.yaml:", 7) == 0);
	assert_true(strncmp(errs.v[errs.n - 1], "b.yaml:", 7) == 0);
	config_errors_release(&errs);
}

/* A hostile file cannot make the error list grow without bound. */
static void test_too_many_errors(void **state)
{
	struct buf b = BUF_INIT(1 << 20);
	struct config_errors errs = {0};
	struct config *c = NULL;

	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_printf(&b, "k%d: 1\n", i), 0);
	assert_int_equal(config_load_string("t.yaml", buf_str(&b), b.len, &c, &errs), -EINVAL);
	assert_true(errs.n <= 201);
	assert_string_equal(errs.v[errs.n - 1], "t.yaml: too many errors; only the first 200 are "
	                                        "shown");
	assert_string_equal(errs.v[0], "t.yaml:1:1: k0: unknown key");
	config_errors_release(&errs);
	buf_release(&b);
}

static void test_config_path(void **state)
{
	unsetenv("RUNNERD_CONFIG");
	assert_string_equal(config_path(NULL), CONFIG_DEFAULT_PATH);
	setenv("RUNNERD_CONFIG", "/from/env.yaml", 1);
	assert_string_equal(config_path(NULL), "/from/env.yaml");
	assert_string_equal(config_path("/explicit.yaml"), "/explicit.yaml");
	setenv("RUNNERD_CONFIG", "", 1);
	assert_string_equal(config_path(NULL), CONFIG_DEFAULT_PATH);
	unsetenv("RUNNERD_CONFIG");
}

/* Strings are lenient (any scalar is its text); integers and booleans are not. */
static void test_scalar_types(void **state)
{
	struct config *c = load_ok("t.yaml", HEAD "flavors: [{name: \"22\", image: 2204, max: +5, "
	                                          "min_idle: 0005}]\nrunner: {jit: false}\n");

	assert_string_equal(c->flavors[0].name, "22");
	assert_string_equal(c->flavors[0].image, "2204");
	assert_int_equal(c->flavors[0].max, 5);
	assert_int_equal(c->flavors[0].min_idle, 5);
	assert_false(c->runner.jit);
	config_free(c);
}

/* ---- URL passwords ---- */

static void test_redact_url(void **state)
{
	static const struct {
		const char *url, *want;
	} cases[] = {
	        {"http://user:pw@proxy:3128", "http://user:REDACTED@proxy:3128"},
	        {"http://proxy:3128", "http://proxy:3128"},
	        {"http://user@proxy:3128", "http://user@proxy:3128"},  /* no password */
	        {"http://user:@proxy", "http://user:@proxy"},          /* an empty one */
	        {"http://a:b@c@proxy/x", "http://a:REDACTED@proxy/x"}, /* the last '@' ends it */
	        {"http://a:b%40c@proxy", "http://a:REDACTED@proxy"},
	        {"socks5h://u:p@h:1080", "socks5h://u:REDACTED@h:1080"},
	        {"amqp://runnerd:pw@127.0.0.1:5672/%2f",
	         "amqp://runnerd:REDACTED@127.0.0.1:5672/%2f"},
	        {"user:pw@proxy:3128", "user:REDACTED@proxy:3128"}, /* no scheme */
	        /* an '@' past the authority is no user info */
	        {"http://proxy/a:b@c", "http://proxy/a:b@c"},
	        {"http://proxy?q=a:b@c", "http://proxy?q=a:b@c"},
	        {"http://proxy#a:b@c", "http://proxy#a:b@c"},
	        {"http://user:REDACTED@proxy", "http://user:REDACTED@proxy"},
	        {"", ""},
	};
	char b[128], b2[128];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_ptr_equal(config_redact_url(cases[i].url, b, sizeof(b)), b);
		assert_string_equal(b, cases[i].want);
		/* redacting twice changes nothing: --print's output prints the same */
		assert_string_equal(config_redact_url(b, b2, sizeof(b2)), cases[i].want);
	}
	assert_string_equal(config_redact_url(NULL, b, sizeof(b)), "");
	/* a short buffer cuts the redacted text: the password never shows */
	assert_string_equal(config_redact_url("http://user:secret-pw@host", b, 20),
	                    "http://user:REDACTE");
	assert_string_equal(config_redact_url("http://user:secret-pw@host", b, 13), "http://user:");
	assert_string_equal(config_redact_url("http://user:secret-pw@host", b, 1), "");
	assert_string_equal(config_redact_url("http://user:secret-pw@host", b, 0), "");
}

static void test_url_passwords_printed_redacted(void **state)
{
	struct config *c = load_ok(
	        "t.yaml",
	        "github: {path: octo/hello, token_env: RUNNERD_UNIT_TOKEN,\n"
	        "  proxy: \"http://gh:pw-not-real-1@proxy:3128\"}\n"
	        "manager: {name: ci}\n" FLAVOR "runner:\n"
	        "  proxy: {http: \"http://u:pw-not-real-2@p:1/\", https: http://only-user@p:2}\n"
	        "  dockerhub_mirror: https://m:pw-not-real-3@mirror\n");
	char *one = print_config(c), *two;
	struct config *c2;

	/* the config keeps the real password: curl and the instances need it */
	assert_string_equal(c->github.proxy, "http://gh:pw-not-real-1@proxy:3128");
	assert_string_equal(c->runner.proxy.http, "http://u:pw-not-real-2@p:1/");
	/* from text, not a file: no mode to judge, no warning */
	assert_int_equal(c->warnings.n, 0);
	assert_null(strstr(one, "pw-not-real"));
	assert_non_null(strstr(one, "  proxy: http://gh:REDACTED@proxy:3128\n"));
	assert_non_null(strstr(one, "    http: http://u:REDACTED@p:1/\n"));
	assert_non_null(strstr(one, "    https: http://only-user@p:2\n"));
	assert_non_null(strstr(one, "  dockerhub_mirror: https://m:REDACTED@mirror\n"));

	/* the printed text loads back, prints the same, and warns about the placeholders */
	c2 = load_ok("p.yaml", one);
	two = print_config(c2);
	assert_string_equal(one, two);
	assert_int_equal(c2->warnings.n, 3);
	assert_string_equal(c2->warnings.v[0],
	                    "p.yaml:8:10: warning: github.proxy: the password is REDACTED, as "
	                    "check-config --print writes it; put the real one back");
	assert_non_null(strstr(c2->warnings.v[1], ": warning: runner.proxy.http: the password is "
	                                          "REDACTED"));
	assert_non_null(strstr(c2->warnings.v[2], ": warning: runner.dockerhub_mirror: the "
	                                          "password is REDACTED"));
	free(one);
	free(two);
	config_free(c);
	config_free(c2);
}

/* ---- files: a temporary directory per test ---- */

struct tdir {
	char path[64];
};

static void tdir_make(struct tdir *d)
{
	snprintf(d->path, sizeof(d->path), "/tmp/runnerd-test-config-XXXXXX");
	assert_non_null(mkdtemp(d->path));
}

/* d/name with content, mode; returns the full path in out. */
static void tdir_write(const struct tdir *d, const char *name, const char *content, mode_t mode,
                       char *out, size_t cap)
{
	FILE *f;

	snprintf(out, cap, "%s/%s", d->path, name);
	f = fopen(out, "w");
	assert_non_null(f);
	assert_true(fputs(content, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(out, mode), 0);
}

static void tdir_remove(struct tdir *d, const char *const *names, size_t n)
{
	char p[PATH_MAX];

	for (size_t i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/%s", d->path, names[i]);
		unlink(p);
	}
	assert_int_equal(rmdir(d->path), 0);
}

/* config_load of path: its result, errors and warnings each joined with '\n'. */
static int load_file(const char *path, char **ret_errs, char **ret_warns)
{
	struct config_errors errs = {0};
	struct config *c = NULL;
	struct buf e = BUF_INIT(1 << 20), w = BUF_INIT(1 << 20);
	int r = config_load(path, &c, &errs);

	for (size_t i = 0; i < errs.n; i++)
		assert_int_equal(buf_printf(&e, "%s%s", i ? "\n" : "", errs.v[i]), 0);
	for (size_t i = 0; c && i < c->warnings.n; i++)
		assert_int_equal(buf_printf(&w, "%s%s", i ? "\n" : "", c->warnings.v[i]), 0);
	assert_int_equal(buf_puts(&e, ""), 0);
	assert_int_equal(buf_puts(&w, ""), 0);
	*ret_errs = buf_detach(&e, NULL);
	*ret_warns = buf_detach(&w, NULL);
	config_errors_release(&errs);
	config_free(c);
	return r;
}

/* A secret file others can read or write loads, with a warning; group access is fine. */
static void test_secret_file_modes(void **state)
{
	static const struct {
		mode_t mode;
		const char *what; /* NULL: no warning */
	} cases[] = {
	        {0600, NULL},       {0400, NULL},       {0640, NULL},
	        {0660, NULL},       {0644, "readable"}, {0604, "readable"},
	        {0666, "readable"}, {0602, "writable"}, {0601, "accessible"},
	};
	static const char *const names[] = {"token", "hook", "runnerd.yaml"};
	char tok[PATH_MAX], hook[PATH_MAX], cfg[PATH_MAX], yaml[2 * PATH_MAX], want[3 * PATH_MAX];
	char *errs, *warns;
	struct tdir d;

	tdir_make(&d);
	tdir_write(&d, "token", "file-token-not-real\n", 0600, tok, sizeof(tok));
	tdir_write(&d, "hook", "hook-secret-not-real\n", 0600, hook, sizeof(hook));
	snprintf(yaml, sizeof(yaml),
	         "github: {path: o/r, token_file: token}\nmanager: {name: ci}\n" FLAVOR
	         "webhook: {secret_file: %s}\n",
	         hook);
	tdir_write(&d, "runnerd.yaml", yaml, 0644, cfg, sizeof(cfg));
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(chmod(tok, cases[i].mode), 0);
		assert_int_equal(load_file(cfg, &errs, &warns), 0);
		assert_string_equal(errs, "");
		if (cases[i].what)
			snprintf(want, sizeof(want),
			         "%s:1:33: warning: github.token_file: secret file %s is %s by "
			         "others (mode %04o); chmod o-rwx",
			         cfg, tok, cases[i].what, (unsigned)cases[i].mode);
		else
			want[0] = '\0';
		assert_string_equal(warns, want);
		free(errs);
		free(warns);
	}
	/* every secret file is checked, and the warnings come in file order */
	assert_int_equal(chmod(tok, 0644), 0);
	assert_int_equal(chmod(hook, 0604), 0);
	assert_int_equal(load_file(cfg, &errs, &warns), 0);
	snprintf(
	        want, sizeof(want),
	        "%s:1:33: warning: github.token_file: secret file %s is readable by others (mode "
	        "0644); chmod o-rwx\n"
	        "%s:4:24: warning: webhook.secret_file: secret file %s is readable by others (mode "
	        "0604); chmod o-rwx",
	        cfg, tok, cfg, hook);
	assert_string_equal(warns, want);
	assert_null(strstr(warns, "not-real"));
	free(errs);
	free(warns);
	/* the secret files a job must never read, as the providers' policy gets them */
	{
		struct config_errors ce = {0};
		struct config *c = NULL;
		struct strv sf = {0};
		assert_int_equal(config_load(cfg, &c, &ce), 0);
		assert_int_equal(config_secret_files(c, &sf), 0);
		assert_int_equal(sf.n, 2);
		assert_string_equal(sf.v[0], tok);
		assert_string_equal(sf.v[1], hook);
		strv_release(&sf);
		config_free(c);
	}
	/* an error elsewhere fails the load; the warnings go with the config */
	snprintf(yaml, sizeof(yaml),
	         "github: {path: o/r, token_file: token}\nmanager: {name: CI}\n" FLAVOR);
	tdir_write(&d, "runnerd.yaml", yaml, 0644, cfg, sizeof(cfg));
	assert_int_equal(load_file(cfg, &errs, &warns), -EINVAL);
	assert_non_null(strstr(errs, "manager.name"));
	assert_null(strstr(errs, "warning"));
	assert_string_equal(warns, "");
	free(errs);
	free(warns);
	tdir_remove(&d, names, ARRAY_SIZE(names));
}

/* A password in a URL of a config file others can read is a warning; 0600 or 0640 is fine. */
static void test_url_password_config_mode(void **state)
{
	static const char *const names[] = {"runnerd.yaml"};
	char cfg[PATH_MAX], want[2 * PATH_MAX];
	char *errs, *warns;
	struct tdir d;

	tdir_make(&d);
	tdir_write(
	        &d, "runnerd.yaml",
	        "github: {path: o/r, token_env: RUNNERD_UNIT_TOKEN}\nmanager: {name: ci}\n" FLAVOR
	        "runner: {proxy: {http: \"http://u:pw-not-real@p:1\", https: http://p:2}}\n",
	        0644, cfg, sizeof(cfg));
	assert_int_equal(load_file(cfg, &errs, &warns), 0);
	snprintf(
	        want, sizeof(want),
	        "%s:4:24: warning: runner.proxy.http: this URL holds a password and %s is readable "
	        "by others (mode 0644); chmod o-rwx",
	        cfg, cfg);
	assert_string_equal(warns, want);
	assert_null(strstr(warns, "pw-not-real"));
	free(errs);
	free(warns);
	for (mode_t m = 0600; m <= 0640; m += 040) {
		assert_int_equal(chmod(cfg, m), 0);
		assert_int_equal(load_file(cfg, &errs, &warns), 0);
		assert_string_equal(warns, "");
		free(errs);
		free(warns);
	}
	tdir_remove(&d, names, ARRAY_SIZE(names));
}

/* ---- the GitHub App key ---- */

static void write_pem(const char *path, int (*w)(BIO *, const EVP_PKEY *), const EVP_PKEY *k)
{
	BIO *b = BIO_new_file(path, "w");

	assert_non_null(b);
	assert_int_equal(w(b, k), 1);
	assert_int_equal(BIO_free(b), 1);
	assert_int_equal(chmod(path, 0600), 0);
}

static int w_pkcs8(BIO *b, const EVP_PKEY *k)
{
	return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

static int w_traditional(BIO *b, const EVP_PKEY *k)
{
	return PEM_write_bio_PrivateKey_traditional(b, k, NULL, NULL, 0, NULL, NULL);
}

static int w_pkcs8_encrypted(BIO *b, const EVP_PKEY *k)
{
	return PEM_write_bio_PKCS8PrivateKey(b, k, EVP_aes_256_cbc(), "passphrase", 10, NULL, NULL);
}

static int w_traditional_encrypted(BIO *b, const EVP_PKEY *k)
{
	return PEM_write_bio_PrivateKey_traditional(b, k, EVP_aes_128_cbc(),
	                                            (unsigned char *)"passphrase", 10, NULL, NULL);
}

static int w_public(BIO *b, const EVP_PKEY *k)
{
	return PEM_write_bio_PUBKEY(b, k);
}

/* The App key: a readable file is not enough, it must be an unencrypted RSA PEM private key. */
static void test_app_key(void **state)
{
	static const char *const names[] = {"key.pem", "runnerd.yaml"};
	EVP_PKEY *rsa = EVP_RSA_gen(2048), *ec = EVP_EC_gen("P-256");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	char key[PATH_MAX], cfg[PATH_MAX], want[3 * PATH_MAX];
	char *errs, *warns, *pem;
	struct err e = {0};
	struct tdir d;
	const struct {
		const char *name;
		int (*write)(BIO *, const EVP_PKEY *);
		EVP_PKEY *key;
		const char
		        *error; /* after "CFG:6:23: github.app.private_key_file: KEY "; NULL: ok */
	} cases[] = {
	        {"PKCS#8 RSA", w_pkcs8, rsa, NULL},
	        {"PKCS#1 RSA", w_traditional, rsa, NULL},
	        {"EC", w_pkcs8, ec, "holds a key of type EC; a GitHub App key is RSA"},
	        {"Ed25519", w_pkcs8, ed, "holds a key of type ED25519; a GitHub App key is RSA"},
	        {"encrypted PKCS#8", w_pkcs8_encrypted, rsa,
	         "is an encrypted private key; runnerd needs it unencrypted (openssl pkey -in KEY "
	         "-out NEW)"},
	        {"encrypted PKCS#1", w_traditional_encrypted, rsa,
	         "is an encrypted private key; runnerd needs it unencrypted (openssl pkey -in KEY "
	         "-out NEW)"},
	        {"public key", w_public, rsa,
	         "is not a PEM private key (the .pem file GitHub gives for the App)"},
	};

	assert_non_null(rsa);
	assert_non_null(ec);
	assert_non_null(ed);
	tdir_make(&d);
	snprintf(key, sizeof(key), "%s/key.pem", d.path);
	tdir_write(&d, "runnerd.yaml",
	           "github:\n  path: octo-org\n  app:\n    app_id: 1\n    installation_id: 2\n"
	           "    private_key_file: key.pem\nmanager: {name: ci}\n" FLAVOR,
	           0600, cfg, sizeof(cfg));
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		write_pem(key, cases[i].write, cases[i].key);
		assert_int_equal(load_file(cfg, &errs, &warns), cases[i].error ? -EINVAL : 0);
		if (cases[i].error)
			snprintf(want, sizeof(want), "%s:6:23: github.app.private_key_file: %s %s",
			         cfg, key, cases[i].error);
		else
			want[0] = '\0';
		if (strcmp(errs, want) != 0)
			print_error("case '%s'\n", cases[i].name);
		assert_string_equal(errs, want);
		assert_string_equal(warns, "");
		free(errs);
		free(warns);
	}

	/* a PEM key cut short, and one base64 line of it (no PEM at all) */
	write_pem(key, w_pkcs8, rsa);
	assert_int_equal(file_read_secret(key, &pem, &e), 0);
	for (int cut = 0; cut < 2; cut++) {
		char *nl = strchr(pem + 40, '\n');
		FILE *f = fopen(key, "w");

		assert_non_null(f);
		assert_non_null(nl);
		/* cut 0: the key without its last 100 bytes; cut 1: its first base64 line only */
		if (cut == 0)
			assert_int_equal(fwrite(pem, 1, strlen(pem) - 100, f), strlen(pem) - 100);
		else
			assert_int_equal(fwrite(nl + 1, 1, 64, f), 64);
		assert_int_equal(fclose(f), 0);
		assert_int_equal(load_file(cfg, &errs, &warns), -EINVAL);
		snprintf(want, sizeof(want),
		         "%s:6:23: github.app.private_key_file: %s is not a PEM private key (the "
		         ".pem "
		         "file GitHub gives for the App)",
		         cfg, key);
		assert_string_equal(errs, want);
		free(errs);
		free(warns);
	}
	free(pem);

	/* a good key others can read: it loads, with the warning */
	write_pem(key, w_pkcs8, rsa);
	assert_int_equal(chmod(key, 0644), 0);
	assert_int_equal(load_file(cfg, &errs, &warns), 0);
	assert_string_equal(errs, "");
	snprintf(want, sizeof(want),
	         "%s:6:23: warning: github.app.private_key_file: secret file %s is readable by "
	         "others (mode 0644); chmod o-rwx",
	         cfg, key);
	assert_string_equal(warns, want);
	free(errs);
	free(warns);

	tdir_remove(&d, names, ARRAY_SIZE(names));
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ed);
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
	        cmocka_unit_test(test_inline_secret_never_shown),
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_every_key),
	        cmocka_unit_test(test_redundant_labels_warn),
	        cmocka_unit_test(test_named_providers),
	        cmocka_unit_test(test_round_trip),
	        cmocka_unit_test(test_printed_strings_are_quoted_when_needed),
	        cmocka_unit_test(test_relative_paths),
	        cmocka_unit_test(test_load_missing_file),
	        cmocka_unit_test(test_errors_append),
	        cmocka_unit_test(test_too_many_errors),
	        cmocka_unit_test(test_config_path),
	        cmocka_unit_test(test_scalar_types),
	        cmocka_unit_test(test_not_utf8),
	        cmocka_unit_test(test_redact_url),
	        cmocka_unit_test(test_url_passwords_printed_redacted),
	        cmocka_unit_test(test_secret_file_modes),
	        cmocka_unit_test(test_url_password_config_mode),
	        cmocka_unit_test(test_app_key),
	};
	struct CMUnitTest tests[ARRAY_SIZE(error_cases) + ARRAY_SIZE(fixed)];
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(error_cases); i++)
		tests[n++] = (struct CMUnitTest){error_cases[i].name, test_error_case, NULL, NULL,
		                                 (void *)&error_cases[i]};
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		tests[n++] = fixed[i];
	setenv("RUNNERD_UNIT_TOKEN", TOKEN_VALUE, 1);
	unsetenv("RUNNERD_UNIT_UNSET");
	return _cmocka_run_group_tests("config", tests, n, NULL, NULL);
}
