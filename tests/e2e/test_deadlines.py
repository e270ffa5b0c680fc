#!/usr/bin/env python3
"""End-to-end proofs of docs/deadlines.md: the real runnerd against a
counterpart held silent (ghsim stopped with SIGSTOP, a job that hangs and
ignores SIGTERM) leaves each state within its deadline. Each test names
the rows of the table it proves. Short timeouts (seconds) throughout."""

import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import Env, main  # noqa: E402

# The harness's github.request_timeout: one GitHub request ends within twice it.
REQUEST_TIMEOUT = 5
EMPTY = {"name": "small", "labels": ["small"], "min_idle": 0, "max": 1}
ONE = {"name": "small", "labels": ["small"], "min_idle": 1, "max": 2}


class Silenced:
    """ghsim stopped (SIGSTOP) for the block: its socket still accepts
    connections, nothing is ever answered. SIGCONT on the way out."""

    def __init__(self, env):
        self.env = env

    def __enter__(self):
        os.kill(self.env.ghsim.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc):
        os.kill(self.env.ghsim.pid, signal.SIGCONT)


def stop_time(env, sig=signal.SIGTERM):
    """Seconds runnerd took to exit after sig (it must exit 0)."""
    t0 = time.time()
    rc = env.stop(sig, timeout=30)
    assert rc == 0, "runnerd exited %s" % rc
    return time.time() - t0


def test_shutdown_while_github_is_silent():
    """Row "Daemon shutdown": with GitHub silent, a pass waits on GitHub;
    SIGTERM ends runnerd at once, also right after a SIGHUP (the reload
    must not hold the signal thread behind that pass)."""
    env = Env("dl-stop", [EMPTY], reconcile_interval="1s")
    try:
        for hup in (False, True):
            env.serve()
            env.wait(lambda: " flavor small: desired 0" in env.log(), 20, "a first pass")
            with Silenced(env):
                time.sleep(2.5)  # a pass is now waiting on GitHub's runner list
                if hup:
                    env.daemon.send_signal(signal.SIGHUP)
                    time.sleep(0.5)
                took = stop_time(env)
            assert took < 3, "SIGTERM took %.1fs (after SIGHUP: %s)" % (took, hup)
    finally:
        env.close()


def test_status_while_github_is_silent():
    """Rows "GitHub API request", "GitHub state unknown" and "Control
    socket, daemon side": with GitHub silent, `runnerd status` through the
    daemon still answers (after the pass under way, each waiting at most
    2 x request_timeout on GitHub), says why and that nothing is deleted;
    once GitHub answers, the same pool is back, untouched."""
    env = Env("dl-status", [ONE])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 1, 60, "1 idle runner")
        before = env.instances()
        with Silenced(env):
            t0 = time.time()
            st = json.loads(env.run("status", "--json", timeout=60).stdout)
            took = time.time() - t0
        assert took < 4 * REQUEST_TIMEOUT + 5, "status took %.1fs" % took
        assert st["github_error"] and st["deletions_blocked"], st
        assert env.instances() == before
        env.wait(lambda: not env.status()["github_error"] and env.idle_count() == 1, 60,
                 "GitHub heard again")
        assert env.instances() == before
    finally:
        env.close()


def test_stuck_job_that_ignores_term():
    """Rows "busy past job_timeout", "CLI" (drain --wait) and "local
    provider: start, stop, leftovers": a job that hangs and ignores SIGTERM is reported
    unhealthy once it is busy past job_timeout, every pass, and kept; a
    drain waiting for it gives up at its --timeout and says what is left;
    `flush --busy` removes it within stop_timeout (TERM, then KILL; in
    namespace mode the namespace goes with its init) and leaves no process
    behind."""
    env = Env("dl-stuck", [ONE], job_timeout="3s")
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 1, 60, "1 idle runner")
        jid = env.gh("POST", "/_ghsim/jobs", {"repo": "octo/hello", "labels": ["small"], "duration": 600,
                                              "run": "trap '' TERM; exec sleep 600"})["id"]
        name = env.wait(lambda: env.gh("GET", "/_ghsim/jobs/%d" % jid)["runner_name"], 60, "job taken")
        env.wait(lambda: [p for p in env.runner_user_processes() if "sleep 600" in p[1]], 30,
                 "the job's step running")
        env.wait(lambda: re.search(r"runner %s: busy for longer than job_timeout" % name, env.log()),
                 30, "the stuck runner said in the log")
        runners = {r["name"]: r for r in env.status()["runners"]}
        assert runners[name]["github_state"] == "busy" and runners[name]["health"] == "unhealthy", runners
        assert name in env.instances(), "a busy runner was removed without flush --busy"
        t0 = time.time()
        p = env.run("drain", "--wait", "--timeout", "3s", check=False, timeout=60)
        took = time.time() - t0
        assert p.returncode != 0 and "timed out" in p.stderr and name in p.stderr, (p.stdout, p.stderr)
        assert took < 3 + 10, "drain --wait --timeout 3s took %.1fs" % took
        assert name in env.instances()
        t0 = time.time()
        env.run("flush", "--busy")
        took = time.time() - t0
        assert name not in env.instances()
        # the step ignores TERM: it goes with its namespace's init at once (namespace mode),
        # else at the KILL after stop_timeout (2 s)
        assert took < 2 + 10, "flush --busy took %.1fs" % took
        assert not [p for p in env.runner_user_processes() if "sleep 600" in p[1]], env.runner_user_processes()
    finally:
        env.close()


if __name__ == "__main__":
    main([test_shutdown_while_github_is_silent, test_status_while_github_is_silent,
          test_stuck_job_that_ignores_term])
