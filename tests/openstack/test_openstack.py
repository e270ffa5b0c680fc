#!/usr/bin/python3
"""The test OpenStack itself (tests/lib/openstack.py), before runnerd uses it:
one cloud is brought up (127.0.0.1 only, stopped by pid at the end) and

- both clouds.yaml entries (password, application credential) get a token
  whose catalog has the five APIs, all on 127.0.0.1;
- a server made through the REST API (urllib) with user data, metadata, a
  security group, a key pair and a port on the test network turns ACTIVE;
  the guest stand-in runs its user data (which writes a file) with the
  server's id; deleting the server kills that process, and the server, its
  port, key pair and security group are gone;
- a server from an image that does not exist is refused, and nothing stays;
- after revoke_tokens() a token held before is refused (401), a new one works;
- after restart("nova-api") the API answers again and still lists servers.

/usr/bin/python3: the cloud's own programs need Debian's python.
"""

import base64
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from harness import make_workdir, remove_workdir, run_tests, summary, wait_until  # noqa: E402
import openstack  # noqa: E402
import openstack_rest as rest  # noqa: E402

PREFIX = "runnerd-smoke-"
CLOUD = None


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_clouds_yaml_and_catalog():
    text = open(CLOUD.clouds_yaml).read()
    assert oct(os.stat(CLOUD.clouds_yaml).st_mode & 0o777) == "0o600"
    for name in ("runnerd-test:", "runnerd-test-appcred:", "runnerd-admin:",
                 "application_credential_secret", "auth_type: v3applicationcredential"):
        assert name in text, name
    for s in (CLOUD.session(), CLOUD.session(appcred=True)):
        s.login()
        assert s.project_id == CLOUD.ids["project"], s.project_id
        types = {e["type"] for e in s.catalog}
        assert {"identity", "compute", "image", "network", "placement"} <= types, types
        for svc in s.catalog:
            for e in svc["endpoints"]:
                assert e["url"].startswith("http://127.0.0.1:"), e["url"]
        flavors = {f["name"] for f in s.get("compute", "/flavors")["flavors"]}
        assert set(openstack.FLAVORS) <= flavors, flavors
    q = CLOUD.admin().get("compute", "/os-quota-sets/%s" % CLOUD.ids["project"])["quota_set"]
    assert q["instances"] == -1 and q["cores"] == -1, q


def test_server_with_user_data_runs_and_goes():
    s = CLOUD.session(appcred=True)
    sg = s.post("network", "/v2.0/security-groups",
                {"security_group": {"name": PREFIX + "sg"}})["security_group"]
    s.post("network", "/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp",
        "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "127.0.0.1/32"}})
    kp = s.post("compute", "/os-keypairs", {"keypair": {"name": PREFIX + "kp"}})["keypair"]
    assert kp["public_key"].startswith("ssh-"), kp
    script = b"#!/bin/sh\necho \"ran $INSTANCE_ID\" > ran\nexec sleep 600\n"
    t0 = time.time()
    srv = s.post("compute", "/servers", {"server": {
        "name": PREFIX + "one", "imageRef": CLOUD.ids["image"],
        "flavorRef": CLOUD.ids[openstack.PREFIX + "-small"],
        "networks": [{"uuid": CLOUD.ids["network"]}],
        "user_data": base64.b64encode(script).decode(),
        "metadata": {"runnerd-manager": "smoke", "runnerd-flavor": "small"},
        "security_groups": [{"name": PREFIX + "sg"}], "key_name": PREFIX + "kp"}})["server"]
    sid = srv["id"]

    def active():
        st = s.get("compute", "/servers/" + sid)["server"]
        assert st["status"] in ("BUILD", "ACTIVE"), st
        return st if st["status"] == "ACTIVE" else None
    st = wait_until(active, 180, "ACTIVE", 0.25)  # 2 shared cores: slow when busy
    print("ACTIVE in %.1f s" % (time.time() - t0))
    assert st["metadata"] == {"runnerd-manager": "smoke", "runnerd-flavor": "small"}, st["metadata"]
    assert st["key_name"] == PREFIX + "kp"
    assert [g["name"] for g in st["security_groups"]] == [PREFIX + "sg"], st["security_groups"]
    ports = s.get("network", "/v2.0/ports?device_id=" + sid)["ports"]
    assert len(ports) == 1 and ports[0]["network_id"] == CLOUD.ids["network"], ports
    assert ports[0]["security_groups"] == [sg["id"]] and ports[0]["status"] == "ACTIVE", ports[0]

    gdir = os.path.join(CLOUD.root, "guests", sid)
    ran = os.path.join(gdir, "ran")
    wait_until(lambda: os.path.exists(ran) and os.path.getsize(ran), 20, "the user data to run", 0.1)
    assert open(ran).read() == "ran %s\n" % sid
    pid = int(open(os.path.join(gdir, "pid")).read())
    assert alive(pid)

    s.call("compute", "DELETE", "/servers/" + sid)
    wait_until(lambda: not s.get("compute", "/servers?name=" + PREFIX)["servers"], 120, "the server to go", 0.25)
    wait_until(lambda: not alive(pid), 20, "the guest to be killed", 0.1)
    assert os.path.exists(os.path.join(gdir, "killed"))
    wait_until(lambda: not s.get("network", "/v2.0/ports?device_id=" + sid)["ports"], 120, "its port to go", 0.25)
    s.call("compute", "DELETE", "/os-keypairs/" + PREFIX + "kp")
    s.call("network", "DELETE", "/v2.0/security-groups/" + sg["id"])
    assert not [k for k in s.get("compute", "/os-keypairs")["keypairs"] if k["keypair"]["name"].startswith(PREFIX)]


def test_missing_image_is_refused():
    s = CLOUD.session()
    try:
        s.post("compute", "/servers", {"server": {
            "name": PREFIX + "noimage", "imageRef": "00000000-0000-0000-0000-000000000000",
            "flavorRef": CLOUD.ids[openstack.PREFIX + "-small"], "networks": "none"}})
        raise AssertionError("a server from a missing image was accepted")
    except rest.HTTPError as e:
        assert e.status == 400, e
    assert not s.get("compute", "/servers?name=" + PREFIX)["servers"]


def test_token_revocation():
    s = CLOUD.session()
    s.login()
    old = s.token
    url = s.endpoint("compute") + "/servers"
    rest.request("GET", url, headers={"X-Auth-Token": old})
    CLOUD.revoke_tokens()
    try:
        rest.request("GET", url, headers={"X-Auth-Token": old})
        raise AssertionError("a revoked token still works")
    except rest.HTTPError as e:
        assert e.status == 401, e
    s.get("compute", "/servers")  # the session logs in again on the 401
    assert s.token != old


def test_nova_api_restart():
    s = CLOUD.session()
    before = CLOUD.pids["nova-api"]
    t0 = time.time()
    CLOUD.restart("nova-api")
    print("nova-api restarted in %.1f s" % (time.time() - t0))
    assert CLOUD.pids["nova-api"] != before and not alive(before)
    assert s.get("compute", "/servers")["servers"] == []
    assert s.get("compute", "/flavors")["flavors"]


TESTS = [test_clouds_yaml_and_catalog, test_server_with_user_data_runs_and_goes,
         test_missing_image_is_refused, test_token_revocation, test_nova_api_restart]


def run_on_given(root):
    """The cloud `openstack.py start|run ROOT` started (scripts/check.sh
    starts one for all the OpenStack tests): a guest stand-in of our own for
    PREFIX's servers, stopped at the end; the cloud is left running."""
    global CLOUD
    CLOUD = openstack.Cloud(root)
    before = CLOUD.guest_pid
    CLOUD.start_guest(PREFIX)
    try:
        return summary(*run_tests(TESTS))
    finally:
        CLOUD.stop_guest(before)


def main():
    global CLOUD
    why = openstack.available()
    if why:
        print("not run - the test OpenStack is not installed (missing %s)" % why)
        print("0 passed, 1 failed")
        return 1
    given = os.environ.get("RUNNERD_TEST_OPENSTACK_ROOT")
    if given:
        return run_on_given(given)
    root = make_workdir("openstack")
    CLOUD = openstack.Cloud(root)
    ok = False
    try:
        try:
            CLOUD.start(guest_prefix=PREFIX)
        except Exception as e:
            print("not ok - the test cloud did not come up: %s" % e)
            for f in ("setup.log", "nova-api.out", "nova-compute.log"):
                p = os.path.join(root, "log", f)
                if os.path.exists(p):
                    print("--- %s (end)\n%s" % (p, open(p, errors="replace").read()[-3000:]))
            print("0 passed, 1 failed")
            return 1
        passed, failed, skipped = run_tests(TESTS)
        ok = failed == 0
        return summary(passed, failed, skipped)
    finally:
        CLOUD.stop()
        remove_workdir(root, keep=not ok)


if __name__ == "__main__":
    sys.exit(main())
