#!/usr/bin/python3
"""End-to-end: the openstack provider against the real test OpenStack
(tests/lib/openstack.py: Keystone, Nova, Neutron, Glance, Placement on
127.0.0.1), the real runnerd and ghsim, all scenarios on one cloud.

- test_pool_up_and_down (no guest runs: the test takes the hand-off
  itself): a pool comes up (servers with runnerd's metadata, its security
  group made with its rules, no secret in user data or metadata), each
  server's secrets are handed off once through the webhook listener,
  servers of other managers are never touched, an ERROR server is
  replaced, and a drain leaves no server of ours.
- The rest have the guest stand-in (tests/lib/openstack_guest.py) run each
  server's user data on the host with RUNNERD_HOME in the guest's own
  directory, so runners really come online on ghsim and run jobs: a job
  per runner on its flavor (two providers, two Nova flavors), each run
  once, each used server gone after its job, and the security group of a
  provider taken out of the config removed; Keystone tokens revoked
  mid-run (one new token, no failed call) and nova-api restarted while
  servers are being made (no server leaked or lost); runnerd killed with
  SIGKILL while making servers (the next start leaves no server, key
  pair or runner unaccounted for); the instances quota at 0 (the create
  fails as a quota error, shown in status, not retried every pass; the
  pool fills once the quota is back).
- test_two_managers_never_touch_each_other (no guest): managers e2emm and
  e2emm-ab (the first's name a prefix of the second's and of all its
  names) on one project, network and repository (one ghsim), key pairs
  on: both pools come up; A scales down, is killed with SIGKILL while it
  makes servers and restarted, a whole pass of it (gc included) after
  each, and B's servers, key pairs, ports (one named as its instance)
  and security group are unchanged, its runners still registered; B
  drains and removes all of its own and nothing of A's; with B's servers
  gone A's gc still keeps off B's group; A drains. A server made by hand
  and two decoys (B's shape of name with A's metadata, A's with B's)
  survive it all; A's planted leftovers (a key pair, a port) go at once.
A run where the cloud cannot be had fails; it never skips."""

import base64
import json
import os
import re
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from harness import make_workdir, remove_workdir, run_tests, summary  # noqa: E402
import openstack  # noqa: E402
import openstack_rest as rest  # noqa: E402
from openstack_e2e import (OsEnv, clean_project, fetch, foreign_server, keypairs, ours,  # noqa: E402
                           owned_name, running, security_groups, servers, set_instances_quota,
                           ssh_public_key, wait)

MANAGER = "e2eos"   # no guest runs its servers' user data
GUEST = "e2eosg"    # the guest stand-in runs its servers' user data
CLOUD = None
SMALL, LARGE = openstack.PREFIX + "-small", openstack.PREFIX + "-large"


def test_pool_up_and_down():
    admin, sess = CLOUD.admin(), CLOUD.session()
    clean_project(sess, MANAGER + "-")
    # another manager's (a longer name with our prefix), and an owned name with
    # another manager's metadata: neither may be touched
    f1 = foreign_server(sess, MANAGER + "-east-00000000000a", MANAGER + "-east")
    f2 = foreign_server(sess, MANAGER + "-00000000000b", "someone-else")
    env = OsEnv(CLOUD, "os-pool", [{"name": "small", "provider": "os", "image": openstack.IMAGE,
                                    "labels": ["small"], "min_idle": 2, "max": 3}],
                MANAGER, bootstrap_timeout="10m")
    try:
        env.serve()
        # ACTIVE: a reset to ERROR while Nova still builds one is undone when the build ends
        def two_active():
            got = ours(sess, MANAGER)
            return len(got) == 2 and all(s["status"] == "ACTIVE" for s in got) and got
        got = wait(two_active, 120, "2 ACTIVE servers of ours")
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
        wait(lambda: victim["id"] not in [s["id"] for s in ours(sess, MANAGER)] and len(ours(sess, MANAGER)) == 2,
             120, "the ERROR server replaced")
        # down: a drain removes every server of ours, and nothing else
        env.run("drain", "--wait", "--timeout", "120s", timeout=180)
        wait(lambda: not ours(sess, MANAGER), 120, "no server of ours")
        left = {s["id"] for s in servers(sess, MANAGER + "-")}
        assert f1 in left and f2 in left, left
        log = env.log()
        # no API call of the backend failed along the way (gc's included)
        assert not env.bad_lines(), env.bad_lines()
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
        clean_project(sess, MANAGER + "-")


def gen_env(name, flavors, **kw):
    """A runnerd whose servers the guest stand-in boots (manager GUEST) on an empty project."""
    clean_project(CLOUD.session(), GUEST + "-")
    kw.setdefault("bootstrap_timeout", "3m")
    return OsEnv(CLOUD, name, flavors, GUEST, **kw)


def small_pool(min_idle, mx=3):
    return [{"name": "small", "provider": "os", "image": openstack.IMAGE, "labels": ["small"],
             "min_idle": min_idle, "max": mx}]


def guest_dir(sid):
    return os.path.join(CLOUD.root, "guests", sid)


def run_job(env, labels, tag, timeout=120):
    """Queue a job whose step appends a line to a file of the test's; wait
    until it completed. Returns (the job as ghsim says, the file's lines)."""
    steps = os.path.join(env.tmp, "steps")
    os.makedirs(steps, mode=0o755, exist_ok=True)
    out = os.path.join(steps, tag)
    job = env.queue_job(labels, duration=1, workflow=tag, run="echo \"ran $GITHUB_WORKFLOW\" >>%s\n" % out)
    done = env.wait(lambda: [j for j in env.jobs() if j["id"] == job["id"] and j["status"] == "completed"],
                    timeout, "job %s completed" % tag)[0]
    with open(out) as f:
        return done, f.read().splitlines()


def settled(env, sess, n):
    """n servers of GUEST, all ACTIVE, each with a runner online on ghsim,
    and nothing else: no other runner, no store row but theirs. Returns the
    servers' names, or None while it is not so."""
    got = ours(sess, GUEST)
    names = {s["name"] for s in got}
    runners = {r["name"]: r for r in env.gh_runners()}
    if len(got) != n or any(s["status"] != "ACTIVE" for s in got):
        return None
    if set(runners) != names or not all(r["status"] == "online" for r in runners.values()):
        return None
    if set(env.store_rows()) != names:
        return None
    return names


def drain_and_check(env, sess):
    """A drain leaves nothing of GUEST's: no server, key pair, runner or store row."""
    env.run("drain", "--wait", "--timeout", "120s", timeout=180)
    wait(lambda: not ours(sess, GUEST), 120, "no server of ours")
    assert not env.gh_runners(), env.gh_runners()
    assert not env.store_rows(), env.store_rows()
    wait(lambda: not keypairs(sess, GUEST + "-"), 30, "no key pair of ours")


def test_jobs_run_once_on_their_flavor():
    sess = CLOUD.session()
    env = gen_env("os-jobs", [
        {"name": "small", "provider": "os-small", "image": openstack.IMAGE, "labels": ["small"],
         "min_idle": 1, "max": 2},
        {"name": "large", "provider": "os-large", "image": openstack.IMAGE, "labels": ["large"],
         "min_idle": 1, "max": 2}],
        providers={"os-small": {"flavor": SMALL, "security_group": GUEST + "-small"},
                   "os-large": {"flavor": LARGE, "security_group": GUEST + "-large"}})
    with running(env, sess, GUEST + "-"):
        env.serve()
        first = env.wait(lambda: settled(env, sess, 2), 180, "2 runners online")
        by_name = {s["name"]: s for s in ours(sess, GUEST)}
        nova_flavor = {n: s["flavor"]["original_name"] for n, s in by_name.items()}
        flavor = {n: s["metadata"]["runnerd-flavor"] for n, s in by_name.items()}
        assert sorted(flavor.values()) == ["large", "small"], flavor
        for n in first:
            assert nova_flavor[n] == (SMALL if flavor[n] == "small" else LARGE), (n, nova_flavor, flavor)
            sg = [g["name"] for g in by_name[n]["security_groups"]]
            assert sg == [GUEST + "-" + flavor[n]], sg
            # the guest's files are in its own RUNNERD_HOME; the secrets' file is gone
            home = os.path.join(guest_dir(by_name[n]["id"]), "home")
            assert os.path.exists(os.path.join(home, "startup.sh")), os.listdir(guest_dir(by_name[n]["id"]))
            assert not os.path.exists(os.path.join(home, "secret.env"))
        # a job each: on a runner of its flavor, its step run once
        for label in ("small", "large"):
            done, lines = run_job(env, ["self-hosted", label], "job-" + label)
            assert done["conclusion"] == "success" and not done["killed"], done
            assert lines == ["ran job-" + label], lines
            assert done["runner_name"] in first and flavor[done["runner_name"]] == label, (done, flavor)
            # the startup script ran to its end in the guest (metrics written, then poweroff)
            sid = by_name[done["runner_name"]]["id"]
            post = os.path.join(guest_dir(sid), "home", "metrics", "post-job-metrics.json")
            metrics = json.loads(env.wait(lambda: open(post).read(), 30, "post-job metrics"))
            assert metrics["status"] == "normal", metrics
        # ephemeral: each used server goes, and each flavor gets a new runner
        now = env.wait(lambda: settled(env, sess, 2), 180, "2 new runners online")
        assert not (now & first), (now, first)
        assert sorted(s["metadata"]["runnerd-flavor"] for s in ours(sess, GUEST)) == ["large", "small"]
        assert len(env.jobs()) == 2 and env.stats()["killed_jobs"] == 0
        # os-small and os-large list each other's servers (one project): the
        # same server seen twice is no duplicate to delete (that killed jobs)
        assert "reason=duplicate" not in env.log(), env.log()[-3000:]
        drain_and_check(env, sess)
        # os-large leaves the config: the group runnerd made for it goes at a
        # later pass's gc; the one os-small uses, and one made by hand, stay
        sess.post("network", "/v2.0/security-groups", {"security_group": {"name": GUEST + "-hand"}})
        env.os_providers.pop("os-large")
        env.write_config(flavors=env.flavors[:1])
        env.daemon.send_signal(signal.SIGHUP)
        groups = lambda: sorted(g["name"] for g in security_groups(sess, GUEST + "-"))  # noqa: E731
        wait(lambda: GUEST + "-large" not in groups(), 60, "the unused group removed")
        assert groups() == [GUEST + "-hand", GUEST + "-small"], groups()
        assert not env.bad_lines(), env.bad_lines()


def test_token_revoked_and_nova_api_restarted():
    sess = CLOUD.session()
    env = gen_env("os-faults", small_pool(1))
    with running(env, sess, GUEST + "-"):
        env.serve(global_args=["--log-level", "debug"])
        first = env.wait(lambda: settled(env, sess, 1), 180, "1 runner online")
        # Keystone revokes every token of runnerd's user mid-run. runnerd is
        # paused meanwhile: Keystone revokes to the second, so a token it got
        # in the revocation's second (the services' cache of its old token
        # lapsing just then) would be refused as well and the count below
        # would tell nothing about runnerd
        mark = env.log_size()
        stale = CLOUD.session().login().token
        env.daemon.send_signal(signal.SIGSTOP)
        try:
            CLOUD.revoke_tokens()
        finally:
            env.daemon.send_signal(signal.SIGCONT)
        try:
            rest.request("GET", CLOUD.url("keystone") + "/v3/auth/tokens",
                         headers={"X-Auth-Token": CLOUD.admin().login().token, "X-Subject-Token": stale})
            raise AssertionError("a revoked token is still valid")
        except rest.HTTPError as e:
            assert e.status == 404, e
        # runnerd's next call is refused once; it gets one new token and goes on:
        # a job runs, its runner is replaced
        done, lines = run_job(env, ["self-hosted", "small"], "after-revoke")
        assert done["conclusion"] == "success" and lines == ["ran after-revoke"], (done, lines)
        second = env.wait(lambda: settled(env, sess, 1), 180, "the used runner replaced")
        assert not (second & first)
        log = env.log(mark)
        renewed = log.count("the token was refused (401): authenticating again")
        assert renewed == 1, "new tokens after the revocation: %d" % renewed
        assert not env.bad_lines(mark), env.bad_lines(mark)
        # nova-api restarts while the pool grows: passes in between may fail
        # (nothing is deleted then), no server is leaked or lost
        env.write_config(flavors=small_pool(3))
        env.daemon.send_signal(signal.SIGHUP)
        wait(lambda: len(ours(sess, GUEST)) >= 2, 60, "a server being made", 0.1)
        CLOUD.restart("nova-api")
        got = env.wait(lambda: settled(env, sess, 3), 240, "3 runners online after the restart")
        assert second <= got, (second, got)
        time.sleep(5)  # and it stays so: no late duplicate
        assert settled(env, sess, 3) == got
        drain_and_check(env, sess)


def test_kill9_mid_create_leaves_nothing_unaccounted():
    sess = CLOUD.session()
    env = gen_env("os-kill", small_pool(0, 4), bootstrap_timeout="60s")
    env.os_providers = {"os": {"ssh_key": ssh_public_key(env.tmp)}}
    env.write_config()
    with running(env, sess, GUEST + "-"):
        env.serve()
        env.wait(lambda: env.status()["flavors"], 30, "a first pass")
        env.write_config(flavors=small_pool(4, 4))
        env.daemon.send_signal(signal.SIGHUP)
        # SIGKILL twice: as soon as GitHub has the first runner of the pass
        # (made before its server: the creates are cut before Nova is asked),
        # then, started again, as soon as Nova has a server of ours (the
        # others in flight, none recorded as made yet, or only some)
        for when, pred in (("a runner registered", env.gh_runners),
                           ("a server in Nova", lambda: ours(sess, GUEST))):
            wait(pred, 60, when, 0.01)
            env.kill9()
            time.sleep(2)  # what Nova was asked for before the kill is there now
            made = {s["name"] for s in ours(sess, GUEST)}
            registered = {r["name"] for r in env.gh_runners()}
            print("killed at %s: %d runners registered, %d servers made" % (when, len(registered), len(made)))
            env.serve()
        # what the crashes left is adopted (its runner comes online) or deleted
        # (a server whose secrets died with runnerd never registers: gone after
        # the bootstrap timeout; a runner with no server: dangling), then the
        # pool is whole, with nothing else
        got = env.wait(lambda: settled(env, sess, 4), 240, "4 runners online after the restarts")
        assert keypairs(sess, GUEST + "-") == sorted(got), (keypairs(sess, GUEST + "-"), got)
        print("kept of the last kill's servers: %d" % len(made & got))
        drain_and_check(env, sess)


def quota(env):
    return env.status()["providers"][0]["quota"]


def test_quota_zero_held_then_filled():
    sess = CLOUD.session()
    env = gen_env("os-quota", small_pool(2))
    set_instances_quota(CLOUD, 0)
    with running(env, sess, GUEST + "-"):
        try:
            env.serve()
            q = env.wait(lambda: quota(env)["held"] and quota(env), 60, "a quota hold")
            assert "quota" in q["error"].lower(), q
            assert q["retry_at"] - q["since"] >= 25, q
            human = env.run("status").stdout
            assert re.search(r"QUOTA provider os: .*[Qq]uota", human), human
            assert not ours(sess, GUEST)
            # not retried every pass (reconcile_interval 2s): no refusal in 12 s but
            # those of the first pass's creates
            def refusals():
                return len([ln for ln in env.log().splitlines() if " failed: " in ln and "quota exceeded" in ln])
            first = refusals()
            assert 1 <= first <= 2, env.log()[-4000:]
            time.sleep(12)
            assert refusals() == first, env.log()[-4000:]
            assert env.status()["providers"][0]["quota"]["retry_at"] == q["retry_at"]
            assert not env.gh_runners(), "a refused create left its runner: %s" % env.gh_runners()
            # the quota back: the probe at the end of the hold succeeds, the pool fills
            set_instances_quota(CLOUD, -1)
            env.wait(lambda: settled(env, sess, 2), 120, "the pool filled")
            assert not quota(env)["held"], quota(env)
            assert "QUOTA" not in env.run("status").stdout
            drain_and_check(env, sess)
        finally:
            set_instances_quota(CLOUD, -1)


# Two managers on one project, network and repository (one ghsim): A's name
# is a prefix of B's, and of every name of B's, so a match by prefix (with
# or without the dash) anywhere in A makes A take B's for its own.
MGR_A, MGR_B = "e2emm", "e2emm-ab"


def port(sess, name):
    net = sess.get("network", "/v2.0/networks?name=" + openstack.NETWORK)["networks"][0]["id"]
    return sess.post("network", "/v2.0/ports", {"port": {"network_id": net, "name": name}})["port"]["id"]


def keypair(sess, name, d):
    with open(ssh_public_key(d)) as f:
        sess.post("compute", "/os-keypairs", {"keypair": {"name": name, "public_key": f.read().strip()}})


def held(sess, manager):
    """What manager holds on the cloud, by the exact rule: its servers (with
    what a change to one would alter), its key pairs, the ports of its
    servers and those named as its instances, its security groups."""
    rx = owned_name(manager)
    srv = {s["id"]: (s["name"], s["status"], json.dumps(s.get("metadata"), sort_keys=True), s.get("key_name"),
                     tuple(sorted(g["name"] for g in s.get("security_groups") or [])))
           for s in ours(sess, manager)}
    ports = {p["id"]: (p["name"], p["device_id"]) for p in sess.get("network", "/v2.0/ports")["ports"]
             if p["device_id"] in srv or rx.fullmatch(p["name"])}
    groups = {g["id"]: g["name"] for g in security_groups(sess, manager + "-")
              if g["description"] == "runnerd %s: its runners" % manager}
    return {"servers": srv, "key pairs": [k for k in keypairs(sess, manager + "-") if rx.fullmatch(k)],
            "ports": ports, "groups": groups}


def registered(env, manager):
    """manager's runners on the shared ghsim, by the exact rule."""
    rx = owned_name(manager)
    return {r["name"] for r in env.gh("GET", "/_ghsim/runners") if rx.fullmatch(r["name"])}


def up(sess, env, manager, n):
    """n servers of manager, all ACTIVE, each with its key pair and its
    runner registered, and nothing more: their names, or None."""
    got = ours(sess, manager)
    names = {s["name"] for s in got}
    if len(got) != n or any(s["status"] != "ACTIVE" for s in got):
        return None
    rx = owned_name(manager)
    if {k for k in keypairs(sess, manager + "-") if rx.fullmatch(k)} != names:
        return None
    return names if registered(env, manager) == names else None


def test_two_managers_never_touch_each_other():
    sess = CLOUD.session()
    clean_project(sess, MGR_A + "-")  # B's names start so too
    tmp = make_workdir("os-two", 0o700)
    pool = lambda n: [{"name": "small", "provider": "os", "image": openstack.IMAGE,  # noqa: E731
                       "labels": ["small"], "min_idle": n, "max": max(n, 1)}]
    a = b = None
    others = {}

    def others_there():
        left = {s["id"] for s in servers(sess, "")}
        assert all(sid in left for sid in others.values()), (others, left)

    def untouched(before, manager):
        now = held(sess, manager)
        assert now == before, "%s's changed: %s -> %s" % (manager, before, now)
        names = {s[0] for s in before["servers"].values()}
        assert registered(a, manager) == names, (manager, names)
        others_there()

    try:
        # what neither may touch: a server of no manager, and two made to fool a
        # loose match: B's shape of name with A's metadata, A's with B's
        others = {"by hand": foreign_server(sess, "byhand-0000000000aa", None),
                  "B's name, A's metadata": foreign_server(sess, MGR_B + "-0000000000d1", MGR_A),
                  "A's name, B's metadata": foreign_server(sess, MGR_A + "-0000000000d2", MGR_B)}
        # A's leftovers (no server of the name): its gc removes them
        keypair(sess, MGR_A + "-0000000000f0", tmp)
        port(sess, MGR_A + "-0000000000f1")
        keys = {}
        for m in (MGR_A, MGR_B):
            os.makedirs(os.path.join(tmp, m))
            keys[m] = ssh_public_key(os.path.join(tmp, m))
        # the bootstrap timeout outlasts the scenario: no guest runs, runners stay offline
        a = OsEnv(CLOUD, "os-two-a", pool(2), MGR_A, bootstrap_timeout="5m",
                  providers={"os": {"ssh_key": keys[MGR_A]}})
        b = OsEnv(CLOUD, "os-two-b", pool(2), MGR_B, bootstrap_timeout="5m", ghsim=a.ghsim,
                  providers={"os": {"ssh_key": keys[MGR_B]}})
        a.serve()
        b.serve()
        first_b = wait(lambda: up(sess, b, MGR_B, 2), 120, "B's pool up")
        wait(lambda: up(sess, a, MGR_A, 2), 60, "A's pool up")
        a.run("reconcile")  # a pass of A's, its gc included, with B's pool there
        assert held(sess, MGR_A)["key pairs"] == sorted(s["name"] for s in ours(sess, MGR_A)), \
            "A's leftover key pair is still there"
        assert not sess.get("network", "/v2.0/ports?name=%s-0000000000f1" % MGR_A)["ports"], \
            "A's leftover port is still there"
        # a port named as one of B's instances (as runnerd would make one):
        # B's, though A has no server of that name
        port(sess, sorted(first_b)[0])
        b_before = held(sess, MGR_B)
        assert len(b_before["ports"]) == 3 and len(b_before["groups"]) == 1, b_before
        # A scales down, then is killed with SIGKILL while it makes servers and
        # restarted (its first pass cleans up after the crash): B keeps all
        a.write_config(flavors=pool(1))
        a.daemon.send_signal(signal.SIGHUP)
        wait(lambda: up(sess, a, MGR_A, 1), 60, "A scaled down to 1")
        a.run("reconcile")
        untouched(b_before, MGR_B)
        a.write_config(flavors=pool(3))
        a.daemon.send_signal(signal.SIGHUP)
        wait(lambda: len(registered(a, MGR_A)) > 1, 30, "A making a server", 0.01)
        a.kill9()
        a.serve()
        wait(lambda: up(sess, a, MGR_A, 3), 120, "A's pool whole after the crash")
        a.run("reconcile")
        untouched(b_before, MGR_B)
        # B drains: it removes all of its own (the port named as its instance
        # too) and nothing of A's
        a_before = held(sess, MGR_A)
        b.run("drain", "--wait", "--timeout", "120s", timeout=180)
        wait(lambda: not ours(sess, MGR_B), 60, "no server of B's")
        b_after = held(sess, MGR_B)
        assert not b_after["key pairs"] and not b_after["ports"] and not registered(a, MGR_B), b_after
        assert list(b_after["groups"].values()) == [MGR_B + "-runners"], b_after  # its config still has it
        untouched(a_before, MGR_A)
        # with none of B's servers left, B's group holds no port: A's gc still keeps off it
        b.stop()
        a.run("reconcile")
        assert held(sess, MGR_B)["groups"] == b_after["groups"]
        # A drains: its own gone, B's group and the others still there
        a.run("drain", "--wait", "--timeout", "120s", timeout=180)
        wait(lambda: not ours(sess, MGR_A), 60, "no server of A's")
        a_after = held(sess, MGR_A)
        assert not a_after["key pairs"] and not a_after["ports"] and not registered(a, MGR_A), a_after
        assert held(sess, MGR_B)["groups"] == b_after["groups"]
        others_there()
        assert not a.bad_lines() and not b.bad_lines(), a.bad_lines() + b.bad_lines()
    except Exception:
        for env in (a, b):
            if env:
                print("--- %s:\n%s" % (env.manager, env.log()[-5000:]), file=sys.stderr)
        raise
    finally:
        if b:
            b.close()
        if a:
            a.close()  # its ghsim last: b's close flushes through it
        for sid in others.values():
            try:
                sess.call("compute", "DELETE", "/servers/%s" % sid)
            except Exception:
                pass
        clean_project(sess, MGR_A + "-")
        clean_project(sess, "byhand-")
        for p in sess.get("network", "/v2.0/ports")["ports"]:
            if p["name"].startswith(MGR_A + "-"):
                sess.call("network", "DELETE", "/v2.0/ports/" + p["id"])
        remove_workdir(tmp)


TESTS = [test_pool_up_and_down, test_jobs_run_once_on_their_flavor,
         test_token_revoked_and_nova_api_restarted, test_kill9_mid_create_leaves_nothing_unaccounted,
         test_quota_zero_held_then_filled, test_two_managers_never_touch_each_other]


def main():
    """A cloud of its own, or the one `openstack.py run ROOT -- ...` started;
    a guest stand-in of its own for GUEST's servers either way."""
    global CLOUD
    given = os.environ.get("RUNNERD_TEST_OPENSTACK_ROOT")
    root = given or make_workdir("os-cloud", 0o700)
    CLOUD = openstack.Cloud(root)
    before = CLOUD.guest_pid
    try:
        if not given:
            CLOUD.start()
        CLOUD.start_guest(GUEST + "-")
        passed, failed, skipped = run_tests(TESTS)
    finally:
        if not given:
            CLOUD.stop()
            remove_workdir(root)
        else:
            CLOUD.stop_guest(before)
    sys.exit(summary(passed, failed, skipped))


if __name__ == "__main__":
    main()
