"""What the end-to-end tests of the openstack provider share
(tests/openstack/test_openstack_provider.py): the real runnerd and its own
ghsim with openstack providers on the test cloud (tests/lib/openstack.py),
and REST look-ups of what runnerd made there. The cloud is one per test
program, given by the caller; every scenario cleans up after itself by
name, so the next one starts on an empty project. Nothing here talks to an
address other than 127.0.0.1.
"""

import contextlib
import os
import re
import sys
import time
import urllib.error
import urllib.request

from harness import Env, free_port
import openstack

WEBHOOK_SECRET = "e2e-webhook-secret"


class OsEnv(Env):
    """Env whose flavors run on openstack providers of one cloud; the
    webhook listener is on (it serves the secrets' hand-off).
    providers: {name: {"flavor": NOVA_FLAVOR, "security_group": NAME,
    "ssh_key": PATH, "concurrency": N, "request_timeout": DURATION}}
    (default: one provider `os` on the small flavor). The test cloud's
    nova-api and keystone serve two requests at a time: a provider's
    concurrency is 4 and its request_timeout 60 s unless given, so calls
    that queue there on a slow machine are not cut at 20 s and redone (two
    managers at the product's default of 10 each timed out half their creates
    and replaced servers the scenarios count on)."""

    def __init__(self, cloud, name, flavors, manager, providers=None, **manager_opts):
        os.environ["RUNNERD_E2E_WEBHOOK_SECRET"] = WEBHOOK_SECRET
        self.cloud = cloud
        self.wh_port = free_port()
        self.os_providers = providers or {"os": {}}
        super().__init__(name, flavors, manager=manager,
                         webhook_opts={"listen": "127.0.0.1:%d" % self.wh_port,
                                       "secret_env": "RUNNERD_E2E_WEBHOOK_SECRET"},
                         **manager_opts)

    def provider_lines(self):
        lines = ["providers:"]
        for name, p in self.os_providers.items():
            lines += ["  %s:" % name, "    type: openstack",
                      "    clouds_yaml: %s" % self.cloud.clouds_yaml, "    cloud: runnerd-test",
                      "    flavor: %s" % p.get("flavor", openstack.PREFIX + "-small"),
                      "    network: %s" % openstack.NETWORK,
                      "    secret_url: http://127.0.0.1:%d" % self.wh_port,
                      "    request_timeout: %s" % p.get("request_timeout", "60s"),
                      "    concurrency: %d" % p.get("concurrency", 4)]
            for k in ("security_group", "ssh_key"):
                if p.get(k):
                    lines.append("    %s: %s" % (k, p[k]))
        return lines

    def kill9(self):
        """SIGKILL the daemon (a crash): nothing of it runs any more."""
        self.stop(9, timeout=10)

    def bad_lines(self, since=0):
        """Log lines where a call of the backend failed (warn or error naming a service)."""
        return [ln for ln in self.log(since).splitlines()
                if re.search(r"\b(warn|error)\b.*\b(keystone|nova|neutron|glance)\b", ln)]


@contextlib.contextmanager
def running(env, sess, prefix):
    """A scenario's body: on failure the end of runnerd's log is printed;
    whatever happens runnerd and ghsim stop, and nothing named with prefix
    is left on the cloud."""
    try:
        yield env
    except Exception:
        print(env.log()[-8000:], file=sys.stderr)
        raise
    finally:
        env.close()
        clean_project(sess, prefix)


def servers(sess, prefix):
    """Nova's servers (detail) whose name starts with prefix."""
    got = sess.get("compute", "/servers/detail")["servers"]
    return [s for s in got if s["name"].startswith(prefix)]


def owned_name(manager):
    """The names runnerd's manager owns, exactly: <manager>-<12 hex>."""
    return re.compile(re.escape(manager) + r"-[0-9a-f]{12}")


def ours(sess, manager):
    """The servers of manager: a name it owns (exactly) and its runnerd-manager metadata."""
    rx = owned_name(manager)
    return [s for s in servers(sess, manager + "-")
            if rx.fullmatch(s["name"]) and (s.get("metadata") or {}).get("runnerd-manager") == manager]


def wait(pred, timeout, what, interval=0.5):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out waiting for " + what)


def ids(sess, coll, path, name):
    got = sess.get(coll, path)
    key = [k for k in got if isinstance(got[k], list)][0]
    return [x["id"] for x in got[key] if x.get("name") == name]


def foreign_server(sess, name, manager):
    """A server made through the API, with runnerd-manager: manager (None: no metadata)."""
    img = ids(sess, "image", "/v2/images", openstack.IMAGE)[0]
    fl = ids(sess, "compute", "/flavors", openstack.PREFIX + "-small")[0]
    net = ids(sess, "network", "/v2.0/networks", openstack.NETWORK)[0]
    return sess.post("compute", "/servers", {"server": {
        "name": name, "imageRef": img, "flavorRef": fl, "networks": [{"uuid": net}],
        "metadata": {"runnerd-manager": manager} if manager else {}}})["server"]["id"]


def fetch(url):
    try:
        with urllib.request.urlopen(urllib.request.Request(url), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""


def keypairs(sess, prefix):
    return sorted(k["keypair"]["name"] for k in sess.get("compute", "/os-keypairs")["keypairs"]
                  if k["keypair"]["name"].startswith(prefix))


def security_groups(sess, prefix):
    return [g for g in sess.get("network", "/v2.0/security-groups")["security_groups"]
            if g["name"].startswith(prefix)]


def clean_project(sess, prefix):
    """Whatever a scenario left of names starting with prefix: servers (and
    their ports with them), key pairs, security groups."""
    for s in servers(sess, prefix):
        try:
            sess.call("compute", "DELETE", "/servers/%s" % s["id"])
        except Exception:
            pass
    wait(lambda: not servers(sess, prefix), 120, "every server of %s gone" % prefix)
    for k in keypairs(sess, prefix):
        try:
            sess.call("compute", "DELETE", "/os-keypairs/%s" % k)
        except Exception:
            pass
    for g in security_groups(sess, prefix):
        try:
            sess.call("network", "DELETE", "/v2.0/security-groups/%s" % g["id"])
        except Exception:
            pass


def set_instances_quota(cloud, n):
    """The test project's instances quota (-1: none), as the cloud's admin."""
    cloud.admin().call("compute", "PUT", "/os-quota-sets/" + cloud.ids["project"],
                       {"quota_set": {"instances": n}})


def ssh_public_key(d):
    """A fresh OpenSSH public key file in d (for ssh_key), made with the
    cryptography module that the OpenStack packages bring."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    pub = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path = os.path.join(d, "id_ed25519.pub")
    with open(path, "wb") as f:
        f.write(pub + b" runnerd-e2e\n")
    return path
