#!/usr/bin/env python3
"""End-to-end proofs of docs/deadlines.md: the real runnerd against a
counterpart held silent (ghsim stopped with SIGSTOP, a job that hangs and
ignores SIGTERM) leaves each state within its deadline. Each test names
the rows of the table it proves. Short timeouts (seconds) throughout."""

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
    """Rows "daemon shutdown" and "SIGHUP reload": with GitHub silent, a
    pass waits on GitHub; SIGTERM ends runnerd at once, also right after a
    SIGHUP (the reload must not hold the signal thread behind that pass)."""
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


if __name__ == "__main__":
    main([test_shutdown_while_github_is_silent])
