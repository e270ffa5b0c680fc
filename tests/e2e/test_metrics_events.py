#!/usr/bin/env python3
"""End-to-end: metrics events (issue 9) with the real runnerd, ghsim and the
local provider. Jobs run on ghsim; their runners' metrics storages become
runner_installed / runner_start / runner_stop events in metrics.events_log
with the workflow, repository, event, GitHub's queue time and conclusion;
every pass writes one reconciliation event per flavor; a job that writes a
hostile metrics file gets its runner's storage quarantined while the daemon
goes on; a storage no runner is known for is processed too; SIGHUP reopens
the log (logrotate); `runnerd metrics extract` prints what the log would get."""

import os
import signal
import subprocess
import sys
import re
import tarfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import BIN, Env, free_port, main  # noqa: E402

SMALL = {"name": "small", "labels": ["small"], "min_idle": 1, "max": 2}


def with_metrics(env):
    """The daemon's Prometheus listener on a free port (it hears the events through the sink)."""
    env.metrics_port = free_port()
    env.metrics_listen = "127.0.0.1:%d" % env.metrics_port
    env.write_config()
    return env


def scrape(env):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % env.metrics_port, timeout=5) as r:
        return r.read().decode()


def sample(text, name, **labels):
    """The value of one series of the scrape (0 when absent)."""
    for ln in text.splitlines():
        m = re.match(r"^%s\{([^}]*)\} (\S+)$" % re.escape(name), ln)
        if m and all('%s="%s"' % kv in m.group(1) for kv in labels.items()):
            return float(m.group(2))
    return 0.0


def completed(env, ids):
    got = [j for j in env.jobs() if j["id"] in ids and j["status"] == "completed"]
    return got if len(got) == len(ids) else None


def by_workflow(env, kind, workflow):
    return [ev for ev in env.events(kind) if ev.get("workflow") == workflow]


def no_leak(env):
    env.run("drain", "--wait", "--timeout", "90s", timeout=150)
    env.assert_nothing_left()


def check_job_events(env, job, workflow, event, flavor="small"):
    """The runner_start and runner_stop of the job that ran workflow, as GitHub saw it."""
    starts = env.wait(lambda: by_workflow(env, "runner_start", workflow), 60, "runner_start of " + workflow)
    stops = env.wait(lambda: by_workflow(env, "runner_stop", workflow), 30, "runner_stop of " + workflow)
    assert len(starts) == 1 and len(stops) == 1, (starts, stops)
    st, sp = starts[0], stops[0]
    assert set(st) == {"event", "timestamp", "flavor", "workflow", "repo", "github_event", "idle",
                       "queue_duration"}, st
    assert st["flavor"] == flavor and st["repo"] == "octo/hello" and st["github_event"] == event, st
    assert st["idle"] >= 0 and st["queue_duration"] >= 0, st
    # GitHub's job times are whole seconds: its queue time, give or take one
    queued = job["started_at"] - job["created_at"]
    assert abs(st["queue_duration"] - queued) <= 1.5, (st, job)
    assert set(sp) == {"event", "timestamp", "flavor", "workflow", "repo", "github_event", "status",
                       "status_info", "job_duration", "job_conclusion"}, sp
    assert sp["status"] == "normal" and sp["status_info"] == {"code": 0}, sp
    assert sp["job_conclusion"] == job["conclusion"] == "success", (sp, job)
    assert sp["job_duration"] >= 0 and sp["timestamp"] >= st["timestamp"], (st, sp)
    assert sp["flavor"] == flavor and sp["github_event"] == event, sp


def test_job_events_in_the_log():
    env = with_metrics(Env("events", [SMALL]))
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 1, 60, "1 idle runner")
        jobs = [env.queue_job(["small"], duration=1, workflow="wf-push", event="push"),
                env.queue_job(["small"], duration=1, workflow="wf-pr", event="pull_request")]
        done = env.wait(lambda: completed(env, {j["id"] for j in jobs}), 90, "2 jobs completed")
        by_id = {j["id"]: j for j in done}
        check_job_events(env, by_id[jobs[0]["id"]], "wf-push", "push")
        check_job_events(env, by_id[jobs[1]["id"]], "wf-pr", "pull_request")
        installed = env.events("runner_installed")
        assert len(installed) >= 2 and all(ev["flavor"] == "small" and ev["duration"] >= 0 and
                                           set(ev) == {"event", "timestamp", "flavor", "duration"}
                                           for ev in installed), installed
        # the storages of the runners that ran them are gone once processed
        for j in done:
            env.wait(lambda: not os.path.exists(os.path.join(env.state, "metrics", j["runner_name"])),
                     30, "storage of %s removed" % j["runner_name"])
        recs = env.events("reconciliation")
        assert recs and all(ev["flavor"] == "small" for ev in recs), recs
        assert set(recs[-1]) == {"event", "timestamp", "flavor", "crashed_runners", "idle_runners",
                                 "active_runners", "expected_runners", "duration"}, recs[-1]
        assert all(ev["crashed_runners"] == 0 for ev in recs), recs
        # the same events reached the daemon's Prometheus side through the sink
        text = env.wait(lambda: (lambda t: t if sample(t, "runnerd_events_total", event="runner_stop") >= 2
                                 else None)(scrape(env)), 20, "runner_stop counted by /metrics")
        assert sample(text, "runnerd_events_total", event="runner_start") >= 2, text
        assert sample(text, "runnerd_job_startup_duration_seconds_count", flavor="small") >= 2, text
        assert os.stat(env.events_log).st_mode & 0o777 == 0o600
        # logrotate: the log is moved away, SIGHUP, the next pass writes to a new file
        moved = env.events_log + ".1"
        os.rename(env.events_log, moved)
        n_moved = len(env.events(path=moved))
        env.daemon.send_signal(signal.SIGHUP)
        env.wait(lambda: env.events("reconciliation"), 30, "a reconciliation in the new log")
        time.sleep(0.5)
        assert len(env.events(path=moved)) == n_moved, "written to the moved log after SIGHUP"
        assert "events log" not in env.log().lower() or "cannot" not in env.log().lower()
        no_leak(env)
    finally:
        env.close()


HOSTILE = 'head -c 4000 /dev/zero | tr "\\0" x > "$RUNNERD_HOME/metrics/pre-job-metrics.json"'


def test_hostile_metrics_quarantined():
    env = with_metrics(Env("hostile", [SMALL]))
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 1, 60, "1 idle runner")
        bad = env.queue_job(["small"], duration=0.5, workflow="wf-hostile", run=HOSTILE)
        j = env.wait(lambda: completed(env, {bad["id"]}), 90, "the hostile job completed")[0]
        name = j["runner_name"]
        archive = os.path.join(env.state, "metrics-quarantine", name + ".tar.gz")
        # the archive, then the storage gone, then the warning: wait for the last
        env.wait(lambda: [ln for ln in env.log().splitlines() if "metrics of %s" % name in ln], 60,
                 "the quarantine of " + name)
        assert os.stat(archive).st_mode & 0o777 == 0o600
        with tarfile.open(archive) as t:
            members = {m.name: m for m in t.getmembers()}
        assert members["pre-job-metrics.json"].size == 4000, members
        assert "runner-installed.timestamp" in members, members
        assert not os.path.exists(os.path.join(env.state, "metrics", name))
        lines = [ln for ln in env.log().splitlines() if "metrics of %s" % name in ln]
        assert len(lines) == 1 and "too_big" in lines[0] and "quarantined" in lines[0], lines
        # nothing issued from it but what came before its bad file was read
        assert not by_workflow(env, "runner_start", "wf-hostile")
        assert not by_workflow(env, "runner_stop", "wf-hostile")
        assert sample(scrape(env), "runnerd_quarantines_total", cause="too_big") == 1
        # the daemon goes on: the next job's events arrive
        good = env.queue_job(["small"], duration=0.5, workflow="wf-after")
        j2 = env.wait(lambda: completed(env, {good["id"]}), 90, "the next job completed")[0]
        check_job_events(env, j2, "wf-after", "push")
        assert env.daemon.poll() is None
        no_leak(env)
    finally:
        env.close()


def write_storage(d, pre_workflow="orphan-wf"):
    os.makedirs(d, 0o700)
    with open(os.path.join(d, "runner-installation-start.timestamp"), "w") as f:
        f.write("1700000000\n")
    with open(os.path.join(d, "runner-installed.timestamp"), "w") as f:
        f.write("1700000010\n")
    with open(os.path.join(d, "pre-job-metrics.json"), "w") as f:
        f.write('{"workflow": "%s", "repository": "octo/hello", "event": "schedule", '
                '"timestamp": 1700000040, "workflow_run_id": "99999"}\n' % pre_workflow)
    with open(os.path.join(d, "post-job-metrics.json"), "w") as f:
        f.write('{"timestamp": 1700000100, "status": "abnormal", "status_info": {"code": 2}}\n')


def test_orphan_storage_processed():
    env = Env("orphan", [SMALL])
    try:
        d = os.path.join(env.state, "metrics", "e2e-0000000000aa")
        write_storage(d)
        foreign = os.path.join(env.state, "metrics", "other-0000000000aa")
        write_storage(foreign, "foreign-wf")
        env.serve()
        stop = env.wait(lambda: by_workflow(env, "runner_stop", "orphan-wf"), 60, "the orphan's runner_stop")[0]
        assert stop["flavor"] == "" and stop["status"] == "abnormal" and stop["status_info"] == {"code": 2}, stop
        assert stop["job_duration"] == 60.0 and "job_conclusion" not in stop, stop
        start = by_workflow(env, "runner_start", "orphan-wf")[0]
        assert start["idle"] == 30.0 and "queue_duration" not in start, start  # no such run on GitHub
        assert [ev for ev in env.events("runner_installed") if ev["timestamp"] == 1700000010.0] == \
            [{"event": "runner_installed", "timestamp": 1700000010.0, "flavor": "", "duration": 10.0}]
        env.wait(lambda: not os.path.exists(d), 10, "the orphan's storage removed")
        # a name this manager does not own is never touched
        assert os.path.isdir(foreign) and not by_workflow(env, "runner_start", "foreign-wf")
        no_leak(env)
    finally:
        env.close()


def test_metrics_extract_command():
    env = Env("extract", [SMALL])
    try:
        d = os.path.join(env.tmp, "storages", "e2e-0000000000bb")
        write_storage(d)
        p = subprocess.run([BIN, "metrics", "extract", "--no-github", "--keep", "--flavor", "small", d],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p
        lines = p.stdout.splitlines()
        assert lines == [
            '{"event":"runner_installed","timestamp":1700000010.0,"flavor":"small","duration":10.0}',
            '{"event":"runner_start","timestamp":1700000040.0,"flavor":"small","workflow":"orphan-wf",'
            '"repo":"octo/hello","github_event":"schedule","idle":30.0}',
            '{"event":"runner_stop","timestamp":1700000100.0,"flavor":"small","workflow":"orphan-wf",'
            '"repo":"octo/hello","github_event":"schedule","status":"abnormal","status_info":{"code":2},'
            '"job_duration":60.0}'], lines
        assert os.path.isdir(d)  # --keep
        # with GitHub (the config's ghsim): the run is unknown there, so no job fields
        p = subprocess.run([BIN, "metrics", "extract", "-c", env.config, d], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0 and len(p.stdout.splitlines()) == 3, p
        assert not os.path.exists(d)  # processed: removed
        # a bad one: quarantined where asked, exit 1
        write_storage(d)
        with open(os.path.join(d, "post-job-metrics.json"), "w") as f:
            f.write("[]")
        q = os.path.join(env.tmp, "q")
        p = subprocess.run([BIN, "metrics", "extract", "--no-github", "--quarantine", q, d],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 1 and p.stdout == "" and "not_object" in p.stderr, p
        assert os.path.exists(os.path.join(q, "e2e-0000000000bb.tar.gz")) and not os.path.exists(d)
    finally:
        env.close()


TESTS = [test_job_events_in_the_log, test_hostile_metrics_quarantined, test_orphan_storage_processed,
         test_metrics_extract_command]

if __name__ == "__main__":
    main(TESTS)
