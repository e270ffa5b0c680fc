#!/usr/bin/env python3
"""End-to-end: runner.install.executables on the local provider, with the
real runnerd and ghsim. A test HTTP server on 127.0.0.1 serves a small
program; the startup script downloads it, checks its sha256 and puts it on
the runner's PATH, where a job's step finds it. With a wrong sha256 no
runner starts: each instance ends before its runner, the reason in its
saved startup log, and the pool never comes online. (Snaps cannot run
here: tests/unit/test_runner_install.c proves the `snap install` calls with a
recording stand-in.)"""

import glob
import hashlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import Env, main  # noqa: E402
from tool_server import TOOL, ToolServer  # noqa: E402

SMALL = {"name": "small", "labels": ["small"], "min_idle": 1, "max": 2}


def run_job(env, **kw):
    """Queue a job on small and wait for it to complete; the job as ghsim has it then."""
    job = env.queue_job(["small"], duration=1, **kw)["id"]
    env.wait(lambda: [j for j in env.jobs() if j["id"] == job][0]["status"] == "completed", 60, "the job")
    return [j for j in env.jobs() if j["id"] == job][0]


def install_lines(url, sha):
    return ["runner:", "  install:", "    executables:",
            "      - {url: \"%s\", cmd: runnerd-e2e-tool, sha256: %s}" % (url, sha)]


def test_executable_on_path_for_jobs():
    srv = ToolServer()
    env = Env("rinstall", [SMALL], extra_lines=install_lines(srv.url, hashlib.sha256(TOOL).hexdigest()))
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 1, 60, "a runner online")
        assert "/tool" in srv.hits
        done = run_job(env, run="runnerd-e2e-tool hello | grep -qx 'runnerd e2e tool says hello'")
        assert done["conclusion"] == "success", done
        # a step that runs a command that is not there fails: the check above can fail
        assert run_job(env, run="runnerd-e2e-no-such-tool")["conclusion"] == "failure"
        env.run("drain", "--wait")
        env.assert_nothing_left()
    finally:
        env.close()
        srv.close()


def test_wrong_sha256_no_runner_reason_logged():
    srv = ToolServer()
    env = Env("rinstbad", [SMALL], extra_lines=install_lines(srv.url, "0" * 64))
    try:
        env.serve()
        saved = os.path.join(env.log_dir, "*", "startup.log")

        def refused_logged():
            for p in glob.glob(saved):
                with open(p, errors="replace") as f:
                    if "executable runnerd-e2e-tool: sha256 of %s is %s, not %s: refusing it" % (
                            srv.url, hashlib.sha256(TOOL).hexdigest(), "0" * 64) in f.read():
                        return True
            return False

        env.wait(refused_logged, 60, "the refusal in a saved startup log")
        assert len(srv.hits) >= 1
        assert not [r for r in env.gh_runners() if r["status"] == "online"], env.gh_runners()
        env.run("drain", "--wait")
        env.assert_nothing_left()
    finally:
        env.close()
        srv.close()


def test_pre_job_script_runs_before_each_job():
    """runner.pre_job_script runs in the pre-job hook: a job's step sees what it
    wrote (for its own repository); a failing script fails the job."""
    lines = ["runner:", "  pre_job_script: |",
             "    #!/bin/sh",
             "    echo \"runnerd pre-job script for $GITHUB_REPOSITORY\"",
             "    [ \"$GITHUB_WORKFLOW\" = refused ] && exit 7",
             "    echo \"$GITHUB_REPOSITORY\" >\"$RUNNERD_HOME/pre-job.out\""]
    env = Env("rprejob", [SMALL], extra_lines=lines)
    try:
        env.serve()
        env.wait(lambda: env.idle_count() >= 1, 60, "a runner online")
        assert run_job(env, run="grep -qx octo/hello \"$RUNNERD_HOME/pre-job.out\"")["conclusion"] == "success"
        # the script fails (for the workflow "refused"): so does the job
        assert run_job(env, workflow="refused", run="true")["conclusion"] == "failure"
        env.run("drain", "--wait")
        env.assert_nothing_left()
    finally:
        env.close()


if __name__ == "__main__":
    main([test_executable_on_path_for_jobs, test_wrong_sha256_no_runner_reason_logged,
          test_pre_job_script_runs_before_each_job])
