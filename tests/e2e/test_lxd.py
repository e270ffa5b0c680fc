#!/usr/bin/env python3
"""End-to-end scenarios on a real LXD: the real runnerd, ghsim, flavors with
`provider: lxd` in a dedicated LXD project (tests/lib/lxd.sh prepares LXD and
the images; tests/e2e/lxd_harness.py drives it). The busybox image runs the
`exec` bootstrap, the Debian image the default `cloud-init` one. Every
scenario ends with no instance and no runner left, and the project is
removed at the end. A run where LXD cannot be had fails; it never skips."""

import glob
import os
import re
import signal
import sys
import tarfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import NotRun, make_workdir  # noqa: E402
from lxd_harness import LxdEnv, LxdError, SocketForwarder, run_lxd_tests  # noqa: E402

SETUP = None
POOL = {"name": "pool", "labels": ["lxd"], "min_idle": 3, "max": 3}
DELETE_RE = re.compile(r" (delete|delete-runner) ([a-z0-9-]+)")
# In the instance (busybox has no pkill): SIGKILL the startup script and the
# runner, by their command lines, so that nothing powers the instance off.
# the runner's _diag logs in an instance that say it listens for jobs
LISTENING = r"""find / -xdev -path '*/_diag/Runner_*.log' -exec grep -l 'Listening for Jobs' {} \; 2>/dev/null"""
KILL_RUNNER = r"""
kill_matching() {
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" = $$ ] && continue
        grep -qs "$1" "$p/cmdline" && kill -9 "${p#/proc/}" 2>/dev/null
    done
}
kill_matching '[s]tartup.sh'
kill_matching '[r]un.sh'
kill_matching '[R]unner.Listener'
sleep 0.5
grep -qs '[R]unner.Listener' /proc/[0-9]*/cmdline && echo alive || echo gone
"""


def no_leak(env):
    """After drain: nothing left on GitHub or in LXD."""
    env.run("drain", "--wait", "--timeout", "120s", timeout=180)
    assert env.gh_runners() == [], env.gh_runners()
    assert env.lxd_instances() == {}, env.lxd_instances()


def gh_names(env):
    return {r["name"] for r in env.gh_runners()}


def deletions(env):
    return DELETE_RE.findall(env.log())


def check_job_events(env, done, flavor):
    """Each job's runner_start and runner_stop in the events log, with what
    the runner wrote (workflow, repository, event, exit status) and what
    GitHub says (queue time, conclusion); a runner_installed per runner."""
    by_wf = {"lxd-%d" % i: None for i in range(len(done))}

    def events_of(kind, wf):
        return [ev for ev in env.events(kind) if ev.get("workflow") == wf]
    for wf in by_wf:
        st = env.wait(lambda: events_of("runner_start", wf), 30, "runner_start of " + wf)
        sp = env.wait(lambda: events_of("runner_stop", wf), 30, "runner_stop of " + wf)
        assert len(st) == 1 and len(sp) == 1, (st, sp)
        st, sp = st[0], sp[0]
        assert st["flavor"] == flavor and st["repo"] == "octo/hello" and st["github_event"] == "push", st
        assert st["idle"] >= 0 and st["queue_duration"] >= 0, st
        assert sp["status"] == "normal" and sp["status_info"] == {"code": 0}, sp
        assert sp["job_conclusion"] == "success" and sp["job_duration"] >= 0, sp
    installed = [ev for ev in env.events("runner_installed") if ev["flavor"] == flavor]
    assert len(installed) >= len(done) and all(ev["duration"] >= 0 for ev in installed), installed
    assert [ev for ev in env.events("reconciliation") if ev["flavor"] == flavor]


def pool_runs_jobs_and_replaces(env, flavor, boot_timeout):
    """A pool of 3 reaches target, runs 3 jobs (one per runner), every used
    runner is replaced, metrics are pulled, nothing leaks."""
    env.serve()
    env.wait(lambda: env.idle_count() == 3, boot_timeout, "3 idle runners")
    first = gh_names(env)
    assert set(env.instances()) == first, (env.instances(), first)
    # what the provider put on each instance
    # every JIT config is base64 of a JSON object that starts {".runner"
    jit_prefix = "eyIucnVubmVyIj"
    for name in first:
        inst = env.api.instance(name)
        cfg = inst["config"]
        assert cfg.get("user.runnerd.manager") == env.manager, cfg
        assert cfg.get("user.runnerd.flavor") == flavor, cfg
        assert inst["status"] == "Running", inst["status"]
        assert all(jit_prefix not in v for v in cfg.values()), "a JIT config in the instance config"
        rc, out = env.api.exec(name, ["sh", "-c", "test -e /opt/runnerd/secret.env; echo $?"])
        assert out.strip() == "1", "secret.env still in %s (%r)" % (name, out)
    jobs = [env.queue_job(["self-hosted", "lxd"], duration=1, workflow="lxd-%d" % i) for i in range(3)]
    ids = {j["id"] for j in jobs}

    def completed():
        got = [j for j in env.jobs() if j["id"] in ids and j["status"] == "completed"]
        return got if len(got) == len(ids) else None
    done = env.wait(completed, 90, "3 jobs completed")
    used = {j["runner_name"] for j in done}
    assert used == first, "jobs ran on %s, pool was %s" % (used, first)
    assert all(j["conclusion"] == "success" and not j.get("killed") for j in done), done
    # each runner replaced, each used instance gone from LXD
    env.wait(lambda: env.idle_count() == 3 and not (gh_names(env) & first), boot_timeout, "3 replacements")
    env.wait(lambda: not (set(env.instances()) & first), 30, "used instances removed")
    # their metrics were pulled before the instances went and became events (issue 9)
    check_job_events(env, done, flavor)
    for name in first:
        env.wait(lambda: not os.path.exists(os.path.join(env.state, "metrics", name)), 20,
                 "the metrics of %s processed" % name)
    assert env.stats()["killed_jobs"] == 0
    no_leak(env)


def test_busybox_exec_pool_of_3_runs_jobs_and_is_replaced():
    env = LxdEnv(SETUP, "bbpool", [POOL], image="busybox", bootstrap="exec")
    try:
        pool_runs_jobs_and_replaces(env, "pool", 90)
    finally:
        env.close()


def test_debian_cloud_init_pool_of_3_runs_jobs_and_is_replaced():
    env = LxdEnv(SETUP, "debpool", [POOL], image="debian", bootstrap="cloud-init", bootstrap_timeout="240s")
    try:
        pool_runs_jobs_and_replaces(env, "pool", 240)
    finally:
        env.close()


# A job's step that writes a pre-job metrics file over the 1024-byte limit.
HOSTILE = 'head -c 4000 /dev/zero | tr "\\0" x > "$RUNNERD_HOME/metrics/pre-job-metrics.json"'


def test_hostile_metrics_quarantined_daemon_goes_on():
    """A job that overwrites its runner's pre-job metrics with 4000 bytes: the
    storage pulled from the container is quarantined as a .tar.gz (0600),
    nothing is issued from it, it is logged once, and the next job's events
    arrive as usual."""
    one = {"name": "one", "labels": ["lxd"], "min_idle": 1, "max": 1}
    env = LxdEnv(SETUP, "hostile", [one], image="busybox", bootstrap="exec")
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 1, 90, "1 idle runner")
        bad = env.queue_job(["self-hosted", "lxd"], duration=0.5, workflow="lxd-hostile", run=HOSTILE)
        done = env.wait(lambda: [j for j in env.jobs() if j["id"] == bad["id"] and j["status"] == "completed"],
                        90, "the hostile job completed")
        name = done[0]["runner_name"]
        archive = os.path.join(env.state, "metrics-quarantine", name + ".tar.gz")
        # the archive, then the storage gone, then the warning: wait for the last
        env.wait(lambda: [ln for ln in env.log().splitlines() if "metrics of %s" % name in ln], 60,
                 "the quarantine of " + name)
        assert os.stat(archive).st_mode & 0o777 == 0o600
        with tarfile.open(archive) as t:
            sizes = {m.name: m.size for m in t.getmembers()}
        assert sizes.get("pre-job-metrics.json") == 4000, sizes
        lines = [ln for ln in env.log().splitlines() if "metrics of %s" % name in ln]
        assert len(lines) == 1 and "too_big" in lines[0], lines
        assert not [ev for ev in env.events() if ev.get("workflow") == "lxd-hostile"], env.events()
        good = env.queue_job(["self-hosted", "lxd"], duration=0.5, workflow="lxd-0")
        done = env.wait(lambda: [j for j in env.jobs() if j["id"] == good["id"] and j["status"] == "completed"],
                        120, "the next job completed")
        check_job_events(env, done, "one")
        assert env.daemon.poll() is None
        no_leak(env)
    finally:
        env.close()


def test_instance_deleted_behind_our_back_is_replaced():
    env = LxdEnv(SETUP, "gone", [dict(POOL, min_idle=2, max=2)])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 90, "2 idle")
        victim = env.instances()[0]
        env.api.delete(victim)
        env.wait(lambda: victim not in gh_names(env) and env.idle_count() == 2, 90,
                 "dangling runner removed and replaced")
        assert victim not in env.instances()
        assert len(env.instances()) == 2
        no_leak(env)
    finally:
        env.close()


def test_stopped_instance_is_deleted_at_once_and_replaced():
    env = LxdEnv(SETUP, "stopped", [dict(POOL, min_idle=2, max=2)], bootstrap_timeout="300s")
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 90, "2 idle")
        victim = env.instances()[0]
        env.api.stop(victim, force=True)
        t0 = time.time()
        # reconcile_interval is 2 s and the bootstrap timeout 300 s: only the
        # stopped rule can remove it this fast
        env.wait(lambda: victim not in env.instances(), 20, "stopped instance deleted")
        took = time.time() - t0
        # the line is written once the delete returned and the action log took it: a moment
        # after LXD let go of the instance
        env.wait(lambda: any(n == victim for _, n in deletions(env)), 10, "delete of %s logged" % victim)
        env.wait(lambda: victim not in gh_names(env) and env.idle_count() == 2, 90, "replacement")
        print("# stopped instance deleted %.1fs after the stop" % took)
        no_leak(env)
    finally:
        env.close()


def test_lxd_unreachable_means_no_deletions_then_recovery():
    sockdir = make_workdir("e2e-lxdsock")
    fwd = SocketForwarder(os.path.join(sockdir, "lxd.socket"), SETUP.vars["LXD_SOCKET"])
    env = LxdEnv(SETUP, "unreach", [dict(POOL, min_idle=2, max=2)], socket_path=fwd.path)
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 90, "2 idle")
        names = set(env.instances())
        before = len(deletions(env))
        log_len = len(env.log())
        fwd.down()
        t0 = time.time()
        r = env.run("reconcile", check=False)
        while time.time() - t0 < 8:  # several passes (reconcile_interval 2 s)
            assert gh_names(env) == names, "a runner went while LXD was unreachable"
            time.sleep(0.5)
        assert "no deletions this pass" in env.log()[log_len:], "the failed list was not reported:\n" + \
            env.log()[log_len:][-2000:]
        assert len(deletions(env)) == before, "deleted while LXD was unreachable: %s" % deletions(env)[before:]
        assert r.returncode != 0 or "fail" in (r.stdout + r.stderr).lower(), (r.stdout, r.stderr)
        fwd.up()
        time.sleep(5)  # passes with LXD back
        assert set(env.instances()) == names == gh_names(env), (env.instances(), names, gh_names(env))
        assert len(deletions(env)) == before, deletions(env)[before:]
        assert env.idle_count() == 2
        # and it works as before: a job runs, its runner is replaced
        job = env.queue_job(["lxd"], duration=1)
        env.wait(lambda: [j for j in env.jobs() if j["id"] == job["id"] and j["status"] == "completed"], 60,
                 "job completed")
        env.wait(lambda: env.idle_count() == 2 and len(gh_names(env) - names) == 1, 90, "replacement")
        no_leak(env)
    finally:
        env.close()
        fwd.close()
        os.rmdir(sockdir)


def test_lxd_restarted_during_creates_next_pass_recovers():
    if not SETUP.started_by_tests:
        raise NotRun("LXD was already running when the tests started; they restart only an LXD they started")
    env = LxdEnv(SETUP, "restart", [dict(POOL, min_idle=6, max=6)], create_concurrency=3,
                 bootstrap_timeout="30s")
    try:
        env.serve()
        env.wait(lambda: env.log().count(" create ") >= 1 or env.instances(), 60, "creates under way")
        SETUP.restart_lxd()
        env.wait(lambda: env.idle_count() == 6, 180, "pool at target after the LXD restart")
        # what failed half-way (instances made while LXD went down, runners
        # registered for creates that failed) is cleaned up: the store,
        # GitHub and LXD agree on exactly the pool

        def agree():
            env.run("reconcile")
            rows = {r["name"] for r in env.status()["runners"]}
            inst = set(env.instances())
            return len(inst) == 6 and rows == gh_names(env) == inst or (rows, gh_names(env), inst)
        env.wait(lambda: agree() is True, 90, "store, GitHub and LXD agree")
        assert all(s == "Running" for s in env.lxd_instances().values()), env.lxd_instances()
        assert env.idle_count() == 6
        no_leak(env)
    finally:
        env.close()


def test_unhealthy_instance_diag_logs_saved_before_removal():
    # the dead runner goes offline (heartbeat 3 s); offline past the
    # bootstrap timeout is unhealthy: logs saved, instance deleted
    env = LxdEnv(SETUP, "diag", [dict(POOL, min_idle=1, max=1)], bootstrap_timeout="15s")
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 1, 90, "1 idle")
        victim = env.instances()[0]
        # online on GitHub comes a moment before the runner logs that it
        # listens: the kill waits for the line the saved log must have
        env.wait(lambda: env.api.exec(victim, ["sh", "-c", LISTENING])[1].strip(), 30,
                 "the runner's log says it listens for jobs")
        # the runner dies, the instance keeps running (nothing powers it off)
        rc, out = env.api.exec(victim, ["sh", "-c", KILL_RUNNER])
        assert "gone" in out, out
        env.wait(lambda: victim not in env.instances(), 60, "unhealthy instance removed")
        logdir = os.path.join(env.tmp, "logs", victim)
        found = glob.glob(os.path.join(logdir, "**", "Runner_*.log"), recursive=True)
        assert found, "no _diag Runner log saved under %s (%s)" % (
            logdir, sorted(os.listdir(logdir)) if os.path.isdir(logdir) else "missing")
        text = open(found[0], errors="replace").read()
        assert "Listening for Jobs" in text, text[-1000:]
        env.wait(lambda: env.idle_count() == 1 and victim not in gh_names(env), 90, "replacement")
        no_leak(env)
    finally:
        env.close()


def test_denylist_acl_attached_then_follows_reloads():
    deny = ["192.0.2.0/24", "198.51.100.0/24"]  # never sent any traffic
    env = LxdEnv(SETUP, "deny", [dict(POOL, min_idle=1, max=1)], denylist=deny)
    net = SETUP.vars["LXD_TEST_NETWORK"]
    try:
        try:
            env.api.call("GET", "/1.0/network-acls/%s" % env.acl_name())
            raise AssertionError("the ACL exists before runnerd started")
        except LxdError:
            pass
        env.serve()
        env.wait(lambda: env.idle_count() == 1, 90, "1 idle")
        acl = env.api.call("GET", "/1.0/network-acls/%s" % env.acl_name())
        egress = acl.get("egress") or []
        rejected = {r.get("destination") for r in egress if r.get("action") == "reject"
                    and r.get("state", "enabled") == "enabled"}
        assert rejected == set(deny), egress
        assert not [r for r in egress if r.get("action") != "reject"], egress
        n = env.api.call("GET", "/1.0/networks/%s" % net)
        acls = n["config"].get("security.acls", "").split(",")
        assert env.acl_name() in acls, n["config"]
        # the only ACL there: what is not denied keeps working
        if acls == [env.acl_name()]:
            assert n["config"].get("security.acls.default.egress.action") == "allow", n["config"]
            assert n["config"].get("security.acls.default.ingress.action") == "allow", n["config"]

        # a changed runner.denylist reaches the ACL on SIGHUP
        deny2 = ["203.0.113.0/24", "2001:db8::/32"]  # never sent any traffic
        env.denylist = deny2
        env.write_config()
        env.daemon.send_signal(signal.SIGHUP)
        env.wait(lambda: acl_rejects(env) == set(deny2), 30, "the ACL's rules follow the new denylist")
        assert env.acl_name() in net_acls(net), env.api.call("GET", "/1.0/networks/%s" % net)["config"]

        # an empty one: the ACL is detached from the network and deleted
        env.denylist = None
        env.write_config()
        env.daemon.send_signal(signal.SIGHUP)
        env.wait(lambda: env.acl_name() not in net_acls(net) and acl_rejects(env) is None, 30,
                 "the ACL detached and deleted")
        if acls == [env.acl_name()]:
            cfg = env.api.call("GET", "/1.0/networks/%s" % net)["config"]
            assert not [k for k in cfg if k.startswith("security.acls")], cfg
        assert env.daemon.poll() is None, "runnerd exited on SIGHUP"
        # creates go on without a denylist: a job runs, its runner is replaced
        before = gh_names(env)
        job = env.queue_job(["lxd"], duration=1)
        env.wait(lambda: [j for j in env.jobs() if j["id"] == job["id"] and j["status"] == "completed"], 60,
                 "job completed")
        env.wait(lambda: env.idle_count() == 1 and not (gh_names(env) & before), 90, "replacement")
        no_leak(env)
    finally:
        env.close()


def acl_rejects(env):
    """The destinations our ACL rejects (enabled egress rules), None when it does not exist."""
    try:
        acl = env.api.call("GET", "/1.0/network-acls/%s" % env.acl_name())
    except LxdError:
        return None
    egress = acl.get("egress") or []
    assert not [r for r in egress if r.get("action") != "reject"], egress
    return {r.get("destination") for r in egress if r.get("state", "enabled") == "enabled"}


def net_acls(net):
    n = SETUP.api.call("GET", "/1.0/networks/%s" % net)
    return [a for a in n["config"].get("security.acls", "").split(",") if a]


def set_setup(setup):
    global SETUP
    SETUP = setup


def run():
    # the Debian image takes minutes on a fresh clone: only when its scenario is to run
    run_lxd_tests(
        [test_busybox_exec_pool_of_3_runs_jobs_and_is_replaced,
         test_instance_deleted_behind_our_back_is_replaced,
         test_stopped_instance_is_deleted_at_once_and_replaced,
         test_lxd_unreachable_means_no_deletions_then_recovery,
         test_unhealthy_instance_diag_logs_saved_before_removal,
         test_denylist_acl_attached_then_follows_reloads,
         test_lxd_restarted_during_creates_next_pass_recovers,
         test_hostile_metrics_quarantined_daemon_goes_on,
         test_debian_cloud_init_pool_of_3_runs_jobs_and_is_replaced],
        set_setup,
        lambda: not sys.argv[1:] or "test_debian_cloud_init_pool_of_3_runs_jobs_and_is_replaced" in sys.argv[1:])


if __name__ == "__main__":
    run()
