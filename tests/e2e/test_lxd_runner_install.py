#!/usr/bin/env python3
"""What the startup script installs and prepares, proven inside the Debian
cloud-init image on a real LXD (issue 12), in one pool of one container:

- runner.storage memory: the job sees its _work on a tmpfs of the configured
  size (/proc/mounts, statfs, df) that refuses a write larger than it;
- runner.install.executables: a test HTTP server on 127.0.0.1 (reached
  through an LXD proxy device) serves a program, the job runs it by its cmd;
  then the server serves tampered bytes and the next instance ends before
  its runner, unhealthy, the sha256 refusal in its saved startup log;
- runner.install.snaps: a recording stand-in `snap` (the image has no snapd,
  and snaps cannot run in the test container) bound into the instance by the
  test's profile, which proves the exact invocations, as root, before the
  runner starts;
- runner.pre_job_script: its output in the job's log (the runner's Worker
  log), before the step's.

Test traffic stays on this machine: the container reaches ghsim and the tool
server through LXD proxy devices on 127.0.0.1."""

import glob
import hashlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lxd_harness import LxdEnv, run_lxd_tests  # noqa: E402
from tool_server import TOOL, ToolServer  # noqa: E402

SETUP = None
REPO = "octo/hello"
WORK = "/opt/runnerd/runner/_work"  # the downloaded runner's work folder (no runner in the image)
SIZE = 64 << 20
TAMPERED = TOOL + b"# tampered\n"
SNAP_LOG = "/var/log/runnerd-test-snap.log"
SNAP_STAND_IN = ("#!/bin/sh\n# runnerd test: a recording stand-in for snap (no snapd in the test image)\n"
                 "printf 'uid=%%s %%s\\n' \"$(id -u)\" \"$*\" >>%s\n" % SNAP_LOG)

# The job's step: what it sees of its work folder and PATH, then it waits to
# be released so the test can read it.
STEP = r"""echo "runnerd step ran"
w=$(dirname "$RUNNER_TEMP")
{
	echo "work=$w"
	echo "fstype=$(stat -f -c %T "$GITHUB_WORKSPACE")"
	echo "df=$(df -B1 --output=size "$GITHUB_WORKSPACE" | tail -n 1 | tr -d ' ')"
	echo "owner=$(stat -c %u:%g "$w")"
	echo "job=$(id -u):$(id -g)"
	echo "tool=$(runnerd-e2e-tool hello)"
	echo "toolpath=$(command -v runnerd-e2e-tool)"
	if dd if=/dev/zero of="$GITHUB_WORKSPACE/fill" bs=1M count=80 2>/dev/null; then
		echo fill=ok
	else
		echo fill=refused
	fi
	rm -f "$GITHUB_WORKSPACE/fill"
} >/tmp/runnerd-job.out 2>&1
cat /proc/mounts >/tmp/runnerd-job.mounts
touch /tmp/runnerd-job-done
i=0; while [ ! -e /tmp/runnerd-release ] && [ $i -lt 240 ]; do sleep 0.5; i=$((i+1)); done
"""


def read_in(env, name, path):
    rc, out = env.api.exec(name, ["sh", "-c", "cat %s" % path])
    assert rc == 0, (name, path, rc, out)
    return out


def test_debian_storage_memory_executables_snaps_pre_job_script():
    srv = ToolServer()
    env = None
    good = hashlib.sha256(TOOL).hexdigest()
    try:
        env = LxdEnv(SETUP, "rinst", [{"name": "insttest", "labels": ["insttest"], "min_idle": 1, "max": 1}],
                     image="debian", bootstrap="cloud-init", bootstrap_timeout="240s")
        snap = os.path.join(env.tmp, "snap-stand-in")
        with open(snap, "w") as f:
            f.write(SNAP_STAND_IN)
        os.chmod(snap, 0o755)
        env.add_proxy_devices({"tools": srv.port})
        env.add_profile_devices({"snap": {"type": "disk", "source": snap, "path": "/usr/local/bin/snap",
                                          "readonly": "true"}})
        env.extra_lines = [
            "runner:",
            "  storage: memory",
            "  storage_size: 64MiB",
            "  install:",
            "    snaps:",
            "      - {name: charmcraft, channel: latest/stable}",
            "      - {name: lxd, channel: 5.0/stable, revision: 24322}",
            "    executables:",
            "      - {url: \"%s\", cmd: runnerd-e2e-tool, sha256: %s}" % (srv.url, good),
            "  pre_job_script: |",
            "    #!/bin/sh",
            "    echo \"runnerd pre-job script on LXD for $GITHUB_REPOSITORY\"",
        ]
        env.write_config()
        env.run("check-config")
        env.serve()
        env.wait(lambda: env.idle_count() == 1, 300, "an idle Debian runner")
        assert srv.hits.count("/tool") == 1, srv.hits

        job = env.queue_job(["insttest"], duration=1, run=STEP)["id"]

        def running():
            j = [j for j in env.jobs() if j["id"] == job][0]
            return j if j.get("runner_name") and j["status"] == "in_progress" else None
        name = env.wait(running, 120, "the job running")["runner_name"]
        env.wait(lambda: env.api.exec(name, ["test", "-e", "/tmp/runnerd-job-done"])[0] == 0, 90,
                 "the job's step done")
        seen = dict(ln.split("=", 1) for ln in read_in(env, name, "/tmp/runnerd-job.out").splitlines()
                    if "=" in ln)

        # --- runner.storage memory: _work is a tmpfs of 64MiB, the runner user's
        assert seen.get("work") == WORK, seen
        assert seen.get("fstype") == "tmpfs", seen
        assert seen.get("df") == str(SIZE), seen
        assert seen.get("owner") == seen.get("job"), seen
        assert seen.get("fill") == "refused", seen  # 80MiB does not fit
        mounts = [ln.split() for ln in read_in(env, name, "/tmp/runnerd-job.mounts").splitlines()]
        work = [m for m in mounts if len(m) >= 4 and m[1] == WORK]
        assert len(work) == 1, mounts
        assert work[0][0] == "runnerd-work" and work[0][2] == "tmpfs", work
        assert "size=%dk" % (SIZE >> 10) in work[0][3].split(","), work

        # --- runner.install.executables: on the job's PATH as its cmd
        assert seen.get("tool") == "runnerd e2e tool says hello", seen
        assert seen.get("toolpath") == "/opt/runnerd/bin/runnerd-e2e-tool", seen

        # --- runner.install.snaps: the exact calls, as root, in config order
        assert read_in(env, name, SNAP_LOG) == ("uid=0 install charmcraft --channel=latest/stable\n"
                                                "uid=0 install lxd --channel=5.0/stable --revision=24322\n")

        # --- runner.pre_job_script: its output in the job's log, before the step's
        log = read_in(env, name, "/opt/runnerd/runner/_diag/Worker_*.log")
        pre = log.find("runnerd pre-job script on LXD for %s" % REPO)
        step = log.find("runnerd step ran")
        assert 0 <= pre < step, log

        # From now on the server hands out something else: the next instance
        # must refuse it and end before its runner.
        srv.serve(TAMPERED)
        env.api.exec(name, ["touch", "/tmp/runnerd-release"])
        done = env.wait(lambda: [j for j in env.jobs() if j["id"] == job and j["status"] == "completed"], 120,
                        "the job completed")[0]
        assert done["conclusion"] == "success", done
        refusal = "executable runnerd-e2e-tool: sha256 of %s is %s, not %s: refusing it" % (
            srv.url, hashlib.sha256(TAMPERED).hexdigest(), good)

        def refused_logged():
            for p in glob.glob(os.path.join(env.log_dir, "*", "startup.log")):
                with open(p, errors="replace") as f:
                    if refusal in f.read():
                        return os.path.basename(os.path.dirname(p))
            return None
        bad = env.wait(refused_logged, 300, "the refusal in a saved startup log")
        assert bad != name and bad.startswith(env.manager + "-"), bad
        assert srv.hits.count("/tool") >= 2, srv.hits
        assert bad not in [r["name"] for r in env.gh_runners() if r["status"] == "online"], env.gh_runners()
        env.run("drain", "--wait", "--timeout", "120s", timeout=180)
        assert env.lxd_instances() == {}, env.lxd_instances()
    finally:
        if env is not None:
            env.close()
        srv.close()


def set_setup(setup):
    global SETUP
    SETUP = setup


if __name__ == "__main__":
    run_lxd_tests([test_debian_storage_memory_executables_snaps_pre_job_script], set_setup)
