#!/usr/bin/env python3
"""End-to-end: runner versions as GitHub enforces them since 2026, with the
real runnerd, ghsim and the local provider. ghsim lists runner releases and
refuses a runner below its minimum version or more than 30 days behind (the
runner exits saying "Runner version vX is deprecated and cannot receive
messages."). runnerd reads the releases with conditional requests, shows the
version in use and its age (status text and --json, Prometheus), takes a new
release for new instances at once, and holds a flavor whose runners GitHub
refuses (degraded, with the reason) instead of making and deleting runners in
a loop, until a newer release is out."""

import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import Env, free_port, main, prom_sample  # noqa: E402

SMALL = {"name": "small", "labels": ["small"], "min_idle": 1, "max": 2}
RELEASES = "/_ghsim/runner-releases"
ROUTE = "GET /repos/actions/runner/releases"


def metrics(env):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % env.metrics_port, timeout=5) as r:
        return r.read().decode()


sample = prom_sample


def online_versions(env):
    return sorted({r["version"] for r in env.gh_runners() if r["status"] == "online"})


def refused(env):
    return env.gh("GET", RELEASES)["refused"]


def test_versions_new_release_and_a_refused_one():
    env = Env("rversions", [SMALL], extra_lines=["runner:", "  version_check_interval: 2s"])
    try:
        env.metrics_port = free_port()
        env.metrics_listen = "127.0.0.1:%d" % env.metrics_port
        env.write_config()
        env.gh("POST", RELEASES, {"releases": [{"version": "2.321.0", "days_ago": 10},
                                               {"version": "2.320.0", "days_ago": 40}]})
        env.serve()
        env.wait(lambda: online_versions(env) == ["2.321.0"], 60, "a runner of 2.321.0 online")
        env.wait(lambda: env.status()["runner"]["in_use"] == "2.321.0", 20, "status: version in use")
        rv = env.status()["runner"]
        assert rv["latest"] == "2.321.0", rv
        assert 9 * 86400 < rv["age_s"] < 11 * 86400, rv
        assert rv["behind_s"] == 0, rv
        text = env.run("status").stdout
        assert "runner 2.321.0, released 10d" in text and "(the latest)" in text, text
        m = metrics(env)
        assert sample(m, 'runnerd_runner_version_info{version="2.321.0",latest="2.321.0"}') == 1, m
        assert 9 * 86400 < sample(m, "runnerd_runner_version_age_seconds") < 11 * 86400
        assert sample(m, 'runnerd_flavor_degraded{flavor="small"}') == 0
        # the releases are read again every 2 s, conditionally: 304s, not full answers
        before = env.stats()["by_route"].get(ROUTE, 0)
        nm = env.stats()["not_modified"]
        time.sleep(5)
        assert env.stats()["by_route"].get(ROUTE, 0) >= before + 2, env.stats()["by_route"]
        assert env.stats()["not_modified"] >= nm + 2

        # a new release: runnerd fetches its package at once and new runners run it
        env.gh("POST", RELEASES, {"releases": [{"version": "2.322.0", "days_ago": 0},
                                               {"version": "2.321.0", "days_ago": 10}]})
        env.wait(lambda: env.status()["runner"]["in_use"] == "2.322.0", 30, "2.322.0 in use")
        env.queue_job(["small"], duration=1)
        env.queue_job(["small"], duration=1)
        env.wait(lambda: all(j["status"] == "completed" for j in env.jobs()), 60, "jobs done")
        env.wait(lambda: "2.322.0" in online_versions(env), 60, "a runner of 2.322.0 online")
        assert "runner release 2.322.0 is out" in env.log()

        # GitHub now refuses everything below 2.400.0: the runners exit, the flavor is
        # held with the reason, and no more runners are made and refused
        env.gh("POST", RELEASES, {"min_version": "2.400.0"})
        env.wait(lambda: env.flavor_counts()["small"]["degraded"], 60, "flavor small degraded")
        st = env.flavor_counts()["small"]
        assert "GitHub refused runner version 2.32" in st["degraded"], st
        time.sleep(4)  # a create already under way when the refusal was noted ends
        n = refused(env)
        time.sleep(10)  # five passes
        assert refused(env) == n, "runners were still made and refused: %d -> %d" % (n, refused(env))
        assert not env.instances(), env.instances()
        text = env.run("status").stdout
        assert "DEGRADED flavor small: GitHub refused runner version" in text, text
        assert "flavor small is degraded" in env.log()
        assert sample(metrics(env), 'runnerd_flavor_degraded{flavor="small"}') == 1

        # a newer release that GitHub takes: the hold ends, runners of it take jobs
        env.gh("POST", RELEASES, {"releases": [{"version": "2.400.0", "days_ago": 0},
                                               {"version": "2.322.0", "days_ago": 1}]})
        env.wait(lambda: online_versions(env) == ["2.400.0"], 60, "a runner of 2.400.0 online")
        env.wait(lambda: not env.flavor_counts()["small"]["degraded"], 20, "hold ended")
        job = env.queue_job(["small"], duration=1)
        env.wait(lambda: [j for j in env.jobs() if j["id"] == job["id"]][0]["status"] == "completed",
                 60, "a job on 2.400.0")
        assert "making runners again" in env.log()
        env.run("drain", "--wait")
        env.assert_nothing_left()
    finally:
        env.close()


def test_runner_30_days_behind_gets_no_job():
    """ghsim's 30-day rule itself: a runner whose next release is older than 30
    days is refused. runnerd's copy then is such a runner until the package of
    the new release arrives: the refusal holds the flavor, the new release's
    package lifts it."""
    env = Env("rbehind", [SMALL], extra_lines=["runner:", "  version_check_interval: 2s"])
    try:
        env.serve()
        env.wait(lambda: online_versions(env) == ["2.321.0"], 60, "a runner online")
        # 2.321.0 is now superseded by a release 31 days old: its runners get no job
        env.gh("POST", RELEASES, {"releases": [{"version": "2.330.0", "days_ago": 31},
                                               {"version": "2.321.0", "days_ago": 60}]})
        job = env.queue_job(["small"], duration=1)
        env.wait(lambda: [j for j in env.jobs() if j["id"] == job["id"]][0]["status"] == "completed",
                 90, "the job, on a runner of 2.330.0")
        done = [j for j in env.jobs() if j["id"] == job["id"]][0]
        ran_on = done.get("runner_name")
        assert env.status()["runner"]["in_use"] == "2.330.0"
        assert refused(env) >= 1, "the old runner was not refused"
        print("job ran on %s; refusals %d" % (ran_on, refused(env)))
        env.run("drain", "--wait")
        env.assert_nothing_left()
    finally:
        env.close()


if __name__ == "__main__":
    main([test_versions_new_release_and_a_refused_one, test_runner_30_days_behind_gets_no_job])
