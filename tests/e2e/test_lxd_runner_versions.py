#!/usr/bin/env python3
"""End-to-end on a real LXD: an image that carries an old runner at
/home/ubuntu/actions-runner (the busybox test image with ghsim's runner
package of 2.300.0 put there, published as an image of the test project).
GitHub's (ghsim's) releases make 2.300.0 too old: the startup script
replaces it from the checked download, the runner that comes online is the
new one, and once an instance is gone runnerd warns to rebuild the image
(log, status text and JSON). Then a version the floor allows but GitHub
refuses (its minimum raised): the first runner is refused, the flavor is
held (degraded), an image runner of the refused version is replaced from
then on, and jobs run again. A run where LXD cannot be had fails."""
import base64
import os
import signal
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run_tests, summary  # noqa: E402
from lxd_harness import LxdEnv, LxdError, LxdSetup  # noqa: E402

SETUP = None
FLAVOR = {"name": "old", "labels": ["lxd"], "min_idle": 1, "max": 1}
RELEASES = "/_ghsim/runner-releases"
OLD = "2.300.0"


def online_versions(env):
    return sorted({r["version"] for r in env.gh_runners() if r["status"] == "online"})


def old_runner_image(env, alias):
    """The busybox test image with ghsim's runner package of OLD in
    /home/ubuntu/actions-runner, published as alias in the test project."""
    url = "%s/_ghsim/downloads/actions-runner-linux-x64-%s.tar.gz" % (env.url, OLD)
    with urllib.request.urlopen(url, timeout=10) as r:
        pkg = base64.b64encode(r.read()).decode()
    api, name = SETUP.api, "rvimg-" + env.manager
    api.call("POST", "/1.0/instances", {"name": name, "source": {"type": "image", "alias": SETUP.image("busybox")}},
             timeout=120)
    try:
        api.call("PUT", "/1.0/instances/%s/state" % name, {"action": "start", "timeout": 30}, timeout=60)
        rc, out = api.exec(name, ["/bin/sh", "-c", "mkdir -p /home/ubuntu/actions-runner && printf %s \"$0\" | "
                                  "base64 -d | tar -xzf - -C /home/ubuntu/actions-runner && "
                                  "/home/ubuntu/actions-runner/bin/Runner.Listener --version", pkg])
        assert rc == 0 and out.strip() == OLD, (rc, out)
        api.stop(name)
        try:
            api.call("DELETE", "/1.0/images/aliases/%s" % alias)
        except LxdError:
            pass
        api.call("POST", "/1.0/images", {"source": {"type": "instance", "name": name}, "aliases": [{"name": alias}]},
                 timeout=300)
    finally:
        api.delete(name)


def test_old_image_runner_replaced_then_a_refused_version_held():
    env = LxdEnv(SETUP, "rver", [FLAVOR], image="busybox", bootstrap="exec")
    try:
        # 2.321.0 superseded OLD 40 days ago: GitHub gives OLD no job, and it is past
        # image_runner_max_behind (21d): instances must not use the image's runner as is
        env.gh("POST", RELEASES, {"releases": [{"version": "2.321.0", "days_ago": 40},
                                               {"version": OLD, "days_ago": 100}]})
        alias = "runnerd-test-oldrunner"
        old_runner_image(env, alias)
        env.extra_lines = ["runner:", "  version_check_interval: 2s"]
        env.write_config(flavors=[dict(FLAVOR, provider="lxd", image=alias)])
        env.serve()
        env.wait(lambda: online_versions(env) == ["2.321.0"], 120, "a runner of 2.321.0 online")
        job = env.queue_job(["lxd"], duration=1)["id"]
        env.wait(lambda: [j for j in env.jobs() if j["id"] == job][0]["status"] == "completed", 120, "the job")
        env.wait(lambda: env.flavor_counts()["old"]["image_runner"] == OLD, 60, "status: the image's runner")
        assert ("flavor old: the image's runner %s is older than 2.321.0" % OLD) in env.log()
        text = env.run("status").stdout
        assert "WARNING flavor old: its image's runner %s is too old" % OLD in text, text
        assert env.gh("GET", RELEASES)["refused"] == 0

        # the floor allows OLD (30 days), its successor is 25 days old, but GitHub's
        # minimum is now above it: refused, held, then replaced above the refused version
        env.gh("POST", RELEASES, {"releases": [{"version": "2.321.0", "days_ago": 25},
                                               {"version": OLD, "days_ago": 100}],
                                  "min_version": "2.310.0"})
        env.extra_lines = ["runner:", "  version_check_interval: 2s", "  image_runner_max_behind: 30d"]
        env.write_config()
        env.run("drain", "--wait", "--timeout", "120s", timeout=180)
        env.daemon.send_signal(signal.SIGHUP)
        env.run("resume")
        env.wait(lambda: "flavor old is degraded: GitHub refused runner version %s" % OLD in env.log(), 120,
                 "the refusal held the flavor")
        env.wait(lambda: online_versions(env) == ["2.321.0"], 120, "a runner of 2.321.0 online again")
        job = env.queue_job(["lxd"], duration=1)["id"]
        env.wait(lambda: [j for j in env.jobs() if j["id"] == job][0]["status"] == "completed", 120, "a job")
        refused = env.gh("GET", RELEASES)["refused"]
        assert 1 <= refused <= 2, refused
        assert "making runners again" in env.log()
        env.run("drain", "--wait", "--timeout", "120s", timeout=180)
        assert env.gh_runners() == [] and env.lxd_instances() == {}
        try:
            SETUP.api.call("DELETE", "/1.0/images/aliases/%s" % alias)
        except LxdError:
            pass
    finally:
        env.close()


def run():
    global SETUP
    SETUP = LxdSetup()
    try:
        SETUP.start()
    except Exception as e:
        print("LXD could not be set up: %s" % e, flush=True)
        sys.exit(summary(0, 1))
    passed = failed = skipped = 0
    try:
        passed, failed, skipped = run_tests([test_old_image_runner_replaced_then_a_refused_version_held])
    finally:
        if not SETUP.close():
            print("not ok - LXD cleanup (project, test network/pool, LXD stop)", flush=True)
            failed += 1
    sys.exit(summary(passed, failed, skipped))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    run()
