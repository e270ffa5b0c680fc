#!/usr/bin/env python3
"""End-to-end scenario of issue 8: the local provider in fallback mode,
forced with RUNNERD_LOCAL_NO_NAMESPACES=1 (and allowed by
allow_weak_isolation), against the real runnerd and ghsim. A steady pool
runs jobs; every instance runs as a uid of its own from uid_range, so one
cannot read another's environment (its JIT config) or write into its
directory; the log states the isolation in force; nothing leaks. Without
allow_weak_isolation the same config is refused."""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import TOKEN, Env, main, poll, processes  # noqa: E402

SMALL = {"name": "small", "labels": ["small"], "min_idle": 2, "max": 3}


class FallbackEnv(Env):
    """Env (whose local provider has a uid range of the scenario's own) that
    allows fallback mode."""

    weak = True

    def provider_lines(self):
        lines = super().provider_lines()
        if self.weak:
            lines.append("    allow_weak_isolation: true")
        return lines

    def range_processes(self):
        """Processes of a uid of the range: (pid, uid, cmdline)."""
        return [(p.pid, p.uid, p.cmdline.strip()) for p in processes()
                if p.uid is not None and self.uid_first <= p.uid <= self.uid_last]

    def instance_uids(self):
        """{instance: uid}, from the owner of each instance's directory."""
        return {n: os.stat(os.path.join(self.work, n)).st_uid for n in self.instances()}


def as_uid(uid, *argv):
    """Run argv as uid (and the gid of that number, no other group)."""
    return subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"]
                          + list(argv), capture_output=True, timeout=10)


def names(runners):
    return {r["name"] for r in runners}


def test_fallback_pool_runs_jobs_apart_and_leaves_nothing():
    os.environ["RUNNERD_LOCAL_NO_NAMESPACES"] = "1"
    env = FallbackEnv("fallback", [SMALL])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle runners")
        # the isolation in force, stated once at start
        m = re.search(r"provider local \(local\): (fallback mode .*)", env.log())
        assert m, env.log()
        note = m.group(1)
        assert "RUNNERD_LOCAL_NO_NAMESPACES" in note and "%d-%d" % (env.uid_first, env.uid_last) in note, note
        assert "every process" in note and "/tmp" in note, note

        # a uid of its own per instance, from the range; each instance's processes have it
        uids = env.instance_uids()
        assert len(set(uids.values())) == len(uids) == 2, uids
        assert all(env.uid_first <= u <= env.uid_last for u in uids.values()), uids
        (a, ua), (b, ub) = sorted(uids.items())
        pids_a = [pid for pid, uid, _ in env.range_processes() if uid == ua]
        assert pids_a, env.range_processes()
        # B's uid can neither read A's environment (its JIT config) nor write into A's directory
        for pid in pids_a:
            r = as_uid(ub, "cat", "/proc/%d/environ" % pid)
            assert r.returncode != 0 and b"ACTIONS_RUNNER_INPUT_JITCONFIG" not in r.stdout, pid
        r = as_uid(ub, "sh", "-c", "echo x > '%s/intruder'" % os.path.join(env.work, a))
        assert r.returncode != 0 and not os.path.exists(os.path.join(env.work, a, "intruder"))
        # and A's own uid reads its own (the check above is not vacuous)
        assert any(as_uid(ua, "cat", "/proc/%d/environ" % pid).returncode == 0 for pid in pids_a)

        # a steady pool: jobs complete, each runner is replaced, no more is created
        before = names(env.gh_runners())
        ids = [env.queue_job(["small"], duration=1)["id"] for _ in range(3)]
        env.wait(lambda: all(env.gh("GET", "/_ghsim/jobs/%d" % j)["status"] == "completed" for j in ids),
                 90, "3 jobs completed")
        for j in ids:
            job = env.gh("GET", "/_ghsim/jobs/%d" % j)
            assert job["conclusion"] == "success" and not job["killed"], job
        env.wait(lambda: env.idle_count() == 2 and len(env.instances()) == 2
                 and not before & set(env.instances()), 90, "pool replaced")
        creates = env.log().count(" create ")
        time.sleep(6)  # a few passes
        assert env.log().count(" create ") == creates, "a steady pool created more"
        uids = env.instance_uids()
        assert len(set(uids.values())) == 2 and all(env.uid_first <= u <= env.uid_last for u in uids.values())
        assert TOKEN not in env.log()

        # nothing leaks: no instance, record or process of the range is left
        env.run("drain", "--wait", "--timeout", "90s", timeout=150)
        assert env.gh_runners() == [] and env.instances() == [] and env.state_files() == []
        poll(lambda: not env.range_processes(), 15, 0.3)
        assert env.range_processes() == [], env.range_processes()
        assert env.stats()["killed_jobs"] == 0
    finally:
        env.close()
        os.environ.pop("RUNNERD_LOCAL_NO_NAMESPACES", None)


def test_fallback_refused_without_opt_in():
    os.environ["RUNNERD_LOCAL_NO_NAMESPACES"] = "1"
    env = FallbackEnv("fallback-refused", [SMALL])
    env.weak = False
    try:
        env.write_config()
        p = env.run("reconcile", check=False)
        out = p.stdout + p.stderr
        assert p.returncode != 0, out
        assert "allow_weak_isolation" in out and "fallback mode" in out, out
        assert env.instances() == [] and env.range_processes() == []
    finally:
        env.close()
        os.environ.pop("RUNNERD_LOCAL_NO_NAMESPACES", None)


if __name__ == "__main__":
    main([test_fallback_pool_runs_jobs_apart_and_leaves_nothing, test_fallback_refused_without_opt_in])
