#!/usr/bin/python3
"""End-to-end: the openstack provider against the real test OpenStack
(tests/lib/openstack.py: Keystone, Nova, Neutron, Glance, Placement on
127.0.0.1), the real runnerd and ghsim. No guest stand-in runs here (no
user data runs on this host): the scenario checks what runnerd does through
the real APIs. A pool comes up (servers with runnerd's metadata, its
security group made with its rules, no secret in user data or metadata),
each server's secrets are handed off once through the webhook listener,
servers of other managers (a longer name with our prefix, an owned name
with another manager's metadata) are never touched, an ERROR server is
replaced, and a drain leaves no server of ours. A run where the cloud
cannot be had fails; it never skips."""

import base64
import os
import re
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from harness import Env, free_port, make_workdir, remove_workdir, run_tests, summary  # noqa: E402
import openstack  # noqa: E402

MANAGER = "e2eos"
CLOUD = None


class OsEnv(Env):
    """Env with one openstack provider on the test cloud; the webhook
    listener is on (it serves the secrets' hand-off)."""

    def __init__(self, name, flavors, **manager_opts):
        os.environ["RUNNERD_E2E_WEBHOOK_SECRET"] = "e2e-webhook-secret"
        self.wh_port = free_port()
        super().__init__(name, flavors, manager=MANAGER,
                         webhook_opts={"listen": "127.0.0.1:%d" % self.wh_port,
                                       "secret_env": "RUNNERD_E2E_WEBHOOK_SECRET"},
                         **manager_opts)

    def provider_lines(self):
        return ["providers:", "  os:", "    type: openstack",
                "    clouds_yaml: %s" % CLOUD.clouds_yaml, "    cloud: runnerd-test",
                "    flavor: %s-small" % openstack.PREFIX, "    network: %s" % openstack.NETWORK,
                "    secret_url: http://127.0.0.1:%d" % self.wh_port, "    request_timeout: 20s"]


def servers(sess, prefix=MANAGER + "-"):
    """Nova's servers (detail) whose name starts with prefix."""
    got = sess.get("compute", "/servers/detail")["servers"]
    return [s for s in got if s["name"].startswith(prefix)]


def ours(sess):
    return [s for s in servers(sess) if (s.get("metadata") or {}).get("runnerd-manager") == MANAGER]


def wait(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.5)
    raise AssertionError("timed out waiting for " + what)


def ids(sess, coll, path, name):
    got = sess.get(coll, path)
    key = [k for k in got if isinstance(got[k], list)][0]
    return [x["id"] for x in got[key] if x.get("name") == name]


def foreign_server(sess, name, manager):
    img = ids(sess, "image", "/v2/images", openstack.IMAGE)[0]
    fl = ids(sess, "compute", "/flavors", openstack.PREFIX + "-small")[0]
    net = ids(sess, "network", "/v2.0/networks", openstack.NETWORK)[0]
    return sess.post("compute", "/servers", {"server": {
        "name": name, "imageRef": img, "flavorRef": fl, "networks": [{"uuid": net}],
        "metadata": {"runnerd-manager": manager}}})["server"]["id"]


def fetch(url):
    try:
        with urllib.request.urlopen(urllib.request.Request(url), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""


def drop_groups(sess):
    """runnerd's security group: made by the scenario, removed after it."""
    for g in sess.get("network", "/v2.0/security-groups?name=%s-runners" % MANAGER)["security_groups"]:
        try:
            sess.call("network", "DELETE", "/v2.0/security-groups/%s" % g["id"])
        except Exception:
            pass


def test_pool_up_and_down():
    admin, sess = CLOUD.admin(), CLOUD.session()
    drop_groups(sess)
    # another manager's (a longer name with our prefix), and an owned name with
    # another manager's metadata: neither may be touched
    f1 = foreign_server(sess, MANAGER + "-east-00000000000a", MANAGER + "-east")
    f2 = foreign_server(sess, MANAGER + "-00000000000b", "someone-else")
    env = OsEnv("os-pool", [{"name": "small", "provider": "os", "image": openstack.IMAGE,
                             "labels": ["small"], "min_idle": 2, "max": 3}],
                bootstrap_timeout="10m")
    try:
        env.serve()
        got = wait(lambda: len(ours(sess)) == 2 and ours(sess), 120, "2 servers of ours")
        for s in got:
            assert re.fullmatch(MANAGER + r"-[0-9a-f]{12}", s["name"]), s["name"]
            assert s["metadata"]["runnerd-flavor"] == "small", s["metadata"]
            assert s["metadata"]["runner-name"] == s["name"], s["metadata"]
            assert not any("JIT" in v or "TOKEN" in v for v in s["metadata"].values()), s["metadata"]
        # its security group, made with the original's rules
        sgs = sess.get("network", "/v2.0/security-groups?name=%s-runners" % MANAGER)["security_groups"]
        assert len(sgs) == 1, sgs
        rules = {(r["direction"], r["protocol"], r["port_range_min"]) for r in sgs[0]["security_group_rules"]}
        assert ("ingress", "icmp", None) in rules and ("ingress", "tcp", 22) in rules, rules
        assert any(r[0] == "egress" for r in rules), rules
        # the user data (as the cloud's admin sees it): no secret, a hand-off URL given out once
        for s in got:
            full = admin.get("compute", "/servers/%s" % s["id"])["server"]
            ud = base64.b64decode(full["OS-EXT-SRV-ATTR:user_data"]).decode()
            url = re.search(r"url='(http://127\.0\.0\.1:%d/v1/handoff/[0-9a-f]{64})'" % env.wh_port, ud)
            assert url, ud
            status, body = fetch(url.group(1))
            assert status == 200 and body.startswith("ACTIONS_RUNNER_INPUT_JITCONFIG="), (status, len(body))
            assert fetch(url.group(1))[0] == 404
            # the startup script names the variable; its value is nowhere but the hand-off
            jit = body.split("=", 1)[1].strip().strip("'")
            assert len(jit) > 8 and jit not in ud
            assert jit not in str(full.get("metadata")) and jit not in env.log()
            assert "e2e-webhook-secret" not in ud
        # an ERROR server of ours is replaced (reset-state as the admin)
        victim = got[0]
        admin.post("compute", "/servers/%s/action" % victim["id"], {"os-resetState": {"state": "error"}})
        wait(lambda: victim["id"] not in [s["id"] for s in ours(sess)] and len(ours(sess)) == 2,
             120, "the ERROR server replaced")
        # down: a drain removes every server of ours, and nothing else
        env.run("drain", "--wait", "--timeout", "120s", timeout=180)
        wait(lambda: not ours(sess), 120, "no server of ours")
        left = {s["id"] for s in servers(sess)}
        assert f1 in left and f2 in left, left
        log = env.log()
        # no API call of the backend failed along the way (gc's included)
        bad = [ln for ln in log.splitlines()
               if re.search(r"\b(warn|error)\b.*\b(keystone|nova|neutron|glance)\b", ln)]
        assert not bad, bad
        assert "e2e-webhook-secret" not in log
        assert CLOUD.user_password not in log
    except Exception:
        print(env.log()[-6000:], file=sys.stderr)
        raise
    finally:
        env.close()
        for sid in (f1, f2):
            try:
                sess.call("compute", "DELETE", "/servers/%s" % sid)
            except Exception:
                pass
        wait(lambda: not servers(sess), 120, "every server gone")
        drop_groups(sess)


def main():
    """A cloud of its own, or the one `openstack.py run ROOT -- ...` started."""
    global CLOUD
    given = os.environ.get("RUNNERD_TEST_OPENSTACK_ROOT")
    root = given or make_workdir("os-cloud", 0o700)
    CLOUD = openstack.Cloud(root)
    try:
        if not given:
            CLOUD.start()
        passed, failed, skipped = run_tests([test_pool_up_and_down])
    finally:
        if not given:
            CLOUD.stop()
            remove_workdir(root)
    sys.exit(summary(passed, failed, skipped))


if __name__ == "__main__":
    main()
