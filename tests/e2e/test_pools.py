#!/usr/bin/env python3
"""End-to-end scenarios of issue 3: the real runnerd, ghsim, the local
provider. Short timeouts (seconds) so the whole file runs in a few minutes."""

import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Env, TOKEN, main  # noqa: E402

SMALL = {"name": "small", "labels": ["small"], "min_idle": 2, "max": 4}


def no_leak(env):
    """After drain: nothing left on GitHub or on the provider."""
    env.run("drain", "--wait", "--timeout", "90s", timeout=150)
    assert env.gh_runners() == [], env.gh_runners()
    assert env.instances() == [], env.instances()


def test_pool_reaches_min_idle_and_stays():
    env = Env("minidle", [SMALL])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle runners")
        names = sorted(r["name"] for r in env.gh_runners())
        creates = env.log().count(" create ")
        time.sleep(6)  # a few passes
        assert sorted(r["name"] for r in env.gh_runners()) == names
        assert env.log().count(" create ") == creates, "a steady pool created more"
        c = env.flavor_counts()["small"]
        assert c["idle"] == 2 and c["desired"] == 2, c
        assert len(env.instances()) == 2
        no_leak(env)
    finally:
        env.close()


def test_job_runs_and_runner_is_replaced():
    env = Env("replace", [SMALL, {"name": "large", "labels": ["large"], "min_idle": 1, "max": 2}])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 3, 60, "3 idle runners")
        before = {r["name"] for r in env.gh_runners()}
        job = env.queue_job(["self-hosted", "large"], duration=2)
        env.wait(lambda: [j for j in env.jobs() if j["id"] == job["id"] and j["status"] == "completed"],
                 60, "job completed")
        j = [j for j in env.jobs() if j["id"] == job["id"]][0]
        assert j["runner_name"] in before and not j.get("killed")
        assert re.search(r"create %s flavor=large" % re.escape(j["runner_name"]), env.log()), \
            "the job ran on a runner of another flavor"
        # replaced: 3 idle again, the used runner gone from GitHub and the provider
        env.wait(lambda: env.idle_count() == 3 and j["runner_name"] not in
                 {r["name"] for r in env.gh_runners()}, 60, "replacement")
        env.wait(lambda: j["runner_name"] not in env.instances(), 30, "instance removed")
        # its metrics were pulled before the instance went
        mdir = os.path.join(env.state, "metrics", j["runner_name"])
        env.wait(lambda: os.path.exists(os.path.join(mdir, "post-job-metrics.json")), 10, "metrics")
        assert '"normal"' in open(os.path.join(mdir, "post-job-metrics.json")).read()
        assert os.path.exists(os.path.join(mdir, "pre-job-metrics.json"))
        assert env.stats()["killed_jobs"] == 0
        no_leak(env)
    finally:
        env.close()


def test_max_never_exceeded_under_burst():
    env = Env("burst", [{"name": "small", "labels": ["small"], "min_idle": 1, "max": 3}])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 1, 60, "1 idle")
        ids = [env.queue_job(["small"], duration=1)["id"] for _ in range(8)]
        peak_gh = peak_inst = 0
        deadline = time.time() + 150
        while time.time() < deadline:
            peak_gh = max(peak_gh, len(env.gh_runners()))
            peak_inst = max(peak_inst, len(env.instances()))
            done = [j for j in env.jobs() if j["id"] in ids and j["status"] == "completed"]
            if len(done) == len(ids):
                break
            time.sleep(0.2)
        assert len(done) == len(ids), "only %d of %d jobs completed" % (len(done), len(ids))
        assert peak_gh <= 3 and peak_inst <= 3, (peak_gh, peak_inst)
        assert env.stats()["killed_jobs"] == 0
        no_leak(env)
    finally:
        env.close()


def test_kill9_during_creates_then_restart():
    env = Env("kill9", [{"name": "small", "labels": ["small"], "min_idle": 8, "max": 8}],
              create_concurrency=2)
    try:
        d = env.serve()
        env.wait(lambda: env.log().count(" create ") >= 2, 60, "some creates")
        os.kill(d.pid, signal.SIGKILL)
        d.wait()
        env.daemon = None
        env.serve()
        env.wait(lambda: len(env.instances()) == 8 and len(env.gh_runners()) == 8, 90, "pool at target")
        env.run("reconcile")
        st = env.status()
        rows = {r["name"] for r in st["runners"]}
        gh = {r["name"] for r in env.gh_runners()}
        inst = set(env.instances())
        assert gh == inst == rows, (gh, inst, rows)
        no_leak(env)
    finally:
        env.close()


def test_faults_cause_no_deletion_and_recover():
    env = Env("faults", [SMALL])
    try:
        # 150 foreign runners so the list has two pages
        env.gh("POST", "/_ghsim/runners", {"scope": "repos/octo/hello", "name": "other", "labels": ["x"],
                                           "status": "online", "busy": False, "count": 150})
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle")
        names = set(env.instances())
        faults = [
            {"match": "/actions/runners", "method": "GET", "status": 500, "count": 20},
            {"match": "page=2", "method": "GET", "status": 502, "count": 20},
            {"match": "/actions/runners", "method": "GET", "drop": True, "count": 20},
        ]
        for f in faults:
            env.gh("POST", "/_ghsim/faults", f)
            env.run("reconcile", check=False)
            time.sleep(3)
            assert set(env.instances()) == names, "deleted on partial data: %s" % f
            assert env.daemon.poll() is None, "runnerd died"
            env.gh("DELETE", "/_ghsim/faults")
        env.gh("POST", "/_ghsim/ratelimit", {"remaining": 0, "reset_in": 4})
        env.run("reconcile", check=False)
        assert set(env.instances()) == names
        time.sleep(5)
        # recovery: a job runs and is replaced normally
        job = env.queue_job(["small"], duration=1)
        env.wait(lambda: [j for j in env.jobs() if j["id"] == job["id"] and j["status"] == "completed"],
                 60, "job after faults")
        env.wait(lambda: env.idle_count() == 2 and len(env.instances()) == 2, 60, "pool recovered")
        assert env.daemon.poll() is None
        no_leak(env)
    finally:
        env.close()


def instance_pids(env, name):
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/cwd" % p).startswith(os.path.join(env.work, name)):
                pids.append(int(p))
        except OSError:
            pass
    return pids


def test_instance_killed_behind_our_back_is_replaced():
    env = Env("killed", [SMALL])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle")
        victim = env.instances()[0]
        for pid in instance_pids(env, victim):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        env.wait(lambda: victim not in env.instances() and env.idle_count() == 2
                 and victim not in {r["name"] for r in env.gh_runners()}, 60, "replacement")
        no_leak(env)
    finally:
        env.close()


def test_offline_runner_cleaned_after_timeout():
    env = Env("offline", [SMALL], bootstrap_timeout="6s")
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle")
        victim = env.gh_runners()[0]
        env.gh("POST", "/_ghsim/runners/%d/offline" % victim["id"])
        t0 = time.time()
        env.wait(lambda: victim["name"] not in {r["name"] for r in env.gh_runners()}, 60, "offline cleaned")
        assert victim["name"] not in env.instances() or True
        env.wait(lambda: victim["name"] not in env.instances(), 30, "instance removed")
        # an unhealthy instance's logs are saved before it goes
        diag = os.path.join(env.tmp, "logs", victim["name"], "_diag")
        assert any(f.startswith("Runner_") for f in os.listdir(diag)), os.listdir(diag)
        assert os.path.exists(os.path.join(env.tmp, "logs", victim["name"], "startup.log"))
        env.wait(lambda: env.idle_count() == 2, 60, "replaced")
        assert time.time() - t0 >= 1
        no_leak(env)
    finally:
        env.close()


def busy_runner(env, job):
    j = env.wait(lambda: [j for j in env.jobs() if j["id"] == job["id"] and j["status"] == "in_progress"],
                 60, "job running")[0]
    return j["runner_name"]


def test_busy_runner_survives_then_flush_busy():
    env = Env("busy", [SMALL])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle")
        job = env.queue_job(["small"], duration=120)
        name = busy_runner(env, job)
        # scale-down to zero
        env.write_config(flavors=[dict(SMALL, min_idle=0)])
        env.daemon.send_signal(signal.SIGHUP)
        env.wait(lambda: env.idle_count() == 0, 60, "scale-down of idle runners")
        assert name in env.instances()
        # idle flush
        env.run("flush")
        assert name in env.instances()
        # list failure
        env.gh("POST", "/_ghsim/faults", {"match": "/actions/runners", "method": "GET", "status": 500,
                                          "count": 50})
        env.run("reconcile", check=False)
        env.run("flush", check=False)
        assert name in env.instances()
        env.gh("DELETE", "/_ghsim/faults")
        assert env.stats()["killed_jobs"] == 0
        assert [j for j in env.jobs() if j["id"] == job["id"]][0]["status"] == "in_progress"
        # flush --busy removes it
        env.run("flush", "--busy")
        env.wait(lambda: name not in env.instances(), 30, "busy instance removed")
        env.wait(lambda: env.stats()["killed_jobs"] == 1, 30, "killed job recorded")
        env.wait(lambda: name not in {r["name"] for r in env.gh_runners()}, 60, "runner removed")
        no_leak(env)
    finally:
        env.close()


def test_drain_waits_for_busy_jobs():
    env = Env("drain", [SMALL])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle")
        job = env.queue_job(["small"], duration=6)
        busy_runner(env, job)
        t0 = time.time()
        env.run("drain", "--wait", "--timeout", "90s", timeout=150)
        j = [j for j in env.jobs() if j["id"] == job["id"]][0]
        assert j["status"] == "completed" and not j.get("killed"), j
        assert env.gh_runners() == [] and env.instances() == []
        assert env.stats()["killed_jobs"] == 0
        # drain survives a restart; resume refills
        env.stop()
        env.serve()
        time.sleep(4)
        assert env.instances() == []
        env.run("resume")
        env.wait(lambda: env.idle_count() == 2, 60, "refilled after resume")
        assert time.time() - t0 > 3
        no_leak(env)
    finally:
        env.close()


def test_no_secret_in_logs_argv_or_status_and_jobs_cannot_read_state():
    env = Env("secrets", [SMALL])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle")
        st = env.run("status").stdout + env.run("status", "--json").stdout
        # the JIT configs, as the instances received them (environment at exec)
        jits = set()
        for name in env.instances():
            for pid in instance_pids(env, name):
                try:
                    environ = open("/proc/%d/environ" % pid, "rb").read().decode(errors="replace")
                except OSError:
                    continue
                for kv in environ.split("\0"):
                    if kv.startswith("ACTIONS_RUNNER_INPUT_JITCONFIG=") and len(kv) > 40:
                        jits.add(kv.split("=", 1)[1])
        assert jits, "no JIT config found in any instance's environment"
        # every process's command line
        cmdlines = ""
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    cmdlines += open("/proc/%s/cmdline" % p, "rb").read().decode(errors="replace") + "\n"
                except OSError:
                    pass
        for secret in [TOKEN] + sorted(jits):
            assert secret not in env.log(), "secret in the log"
            assert secret not in cmdlines, "secret in a command line"
            assert secret not in st, "secret in status"
        # the user jobs run as cannot read the state db or the token
        name = env.instances()[0]
        pids = instance_pids(env, name)
        assert pids
        st_ = os.stat("/proc/%d" % pids[0])
        assert st_.st_uid != 0, "instance runs as root"
        for path in [os.path.join(env.state, "state.db"), env.token_file]:
            r = subprocess.run(["setpriv", "--reuid=%d" % st_.st_uid, "--regid=%d" % st_.st_gid,
                                "--clear-groups", "cat", path], capture_output=True)
            assert r.returncode != 0, "the job user can read %s" % path
        assert oct(os.stat(os.path.join(env.state, "state.db")).st_mode & 0o777) == "0o600"
        no_leak(env)
    finally:
        env.close()


def test_sighup_bad_config_is_refused_and_sigterm_is_prompt():
    env = Env("signals", [SMALL])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle")
        with open(env.config, "a") as f:
            f.write("bogus_key: 1\n")
        env.daemon.send_signal(signal.SIGHUP)
        env.wait(lambda: "reload refused" in env.log(), 10, "reload refused")
        assert env.daemon.poll() is None
        t0 = time.time()
        assert env.stop() == 0
        assert time.time() - t0 < 10
        assert len(env.instances()) == 2, "instances must survive a daemon stop"
        env.write_config()
        env.serve()  # a restart adopts them
        time.sleep(4)
        assert len(env.instances()) == 2 and env.idle_count() == 2
        no_leak(env)
    finally:
        env.close()


if __name__ == "__main__":
    main([test_pool_reaches_min_idle_and_stays, test_job_runs_and_runner_is_replaced,
          test_max_never_exceeded_under_burst, test_kill9_during_creates_then_restart,
          test_faults_cause_no_deletion_and_recover, test_instance_killed_behind_our_back_is_replaced,
          test_offline_runner_cleaned_after_timeout, test_busy_runner_survives_then_flush_busy,
          test_drain_waits_for_busy_jobs, test_no_secret_in_logs_argv_or_status_and_jobs_cannot_read_state,
          test_sighup_bad_config_is_refused_and_sigterm_is_prompt])
