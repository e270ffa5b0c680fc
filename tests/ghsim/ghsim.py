#!/usr/bin/env python3
"""ghsim: a stateful stand-in for the parts of GitHub that runnerd uses.

It serves the self-hosted runner REST operations with GitHub's status codes and
JSON shapes (held to the official OpenAPI description), GitHub's rate limits,
ETags, pagination and App (RS256 JWT) authentication; it queues workflow jobs,
hands them to runners (its own runner package, or simulated runners), and sends
signed workflow_job webhooks. Tests drive it through a control API under
/_ghsim/. The contract is PROTOCOL.md next to this file.

It must never listen on anything but 127.0.0.1, never send traffic to a
non-loopback address, never log a secret (tokens, JWTs, runner credentials),
and never die on bad input: every request is answered (4xx/5xx) and logged.
Python 3 standard library only, plus the `openssl` command for RS256 checks.

This file is the command line; the simulator is the package sim/, one
concern a module:
  common.py       constants, the log, Resp/HttpError, formatting helpers
  state.py        the model (runners, jobs, tokens, budgets), dispatch, monitor
  routes.py       the routing table (@route), Request, pagination
  server.py       the HTTP server: auth, rate limits, ETags, faults applied
  objects.py      GitHub's JSON objects (users, repos, orgs, runners, jobs)
  runners.py      runner REST calls, registration/JIT, groups, their control calls
  jobs.py         job and run REST calls, the control calls that queue jobs
  runner_side.py  the runner package's protocol (/_ghsim/runner/)
  webhooks.py     workflow_job deliveries, the hook deliveries API
  releases.py     runner packages and releases, the version rule
  auth.py         PATs, App JWTs, installations and installation tokens
  ratelimit.py    GET /rate_limit and the budget control call
  faults.py       fault injection
  control.py      the control API's shared validation, stats, reset
"""

import argparse
import os
import signal
import sys
import threading

# sim/ sits next to this file; found even when Python leaves the script's
# directory off sys.path (-P, PYTHONSAFEPATH)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The handler modules register their routes when imported.
from sim import auth, control, faults, jobs, objects, ratelimit, releases, runner_side, runners  # noqa: F401
from sim import common
from sim.common import JOB_ID_BASE, log, loopback_url
from sim.server import Handler, Server
from sim.state import State, monitor
from sim.webhooks import webhook_sender


def main(argv=None):
    ap = argparse.ArgumentParser(description="GitHub simulator for runnerd tests (see PROTOCOL.md)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--token-file")
    ap.add_argument("--app-id")
    ap.add_argument("--app-public-key")
    ap.add_argument("--installation-id", type=int, default=1000001)
    ap.add_argument("--webhook-url")
    ap.add_argument("--webhook-secret-file")
    ap.add_argument("--webhook-timeout", type=float, default=3.0)
    ap.add_argument("--job-id-base", type=int, default=JOB_ID_BASE,
                    help="job ids start above this (e.g. past 2^53, where a double rounds them)")
    ap.add_argument("--heartbeat-timeout", type=float, default=10.0)
    ap.add_argument("--public-url", help="base URL for API objects and Link headers instead of the request's Host")
    ap.add_argument("--runner-url", help="base URL runners and downloads use (default http://127.0.0.1:PORT)")
    ap.add_argument("--log")
    args = ap.parse_args(argv)
    if args.webhook_url and not loopback_url(args.webhook_url):
        ap.error("--webhook-url must be http(s) on a loopback address")
    for name in ("public_url", "runner_url"):
        if getattr(args, name):
            setattr(args, name, getattr(args, name).rstrip("/"))
    if args.log:
        common.LOG_FILE = open(args.log, "a")
    state = State(args)
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.state = state
    state.port = srv.server_address[1]
    for fn, name in ((monitor, "monitor"), (webhook_sender, "webhooks")):
        threading.Thread(target=fn, args=(state,), name=name, daemon=True).start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % state.port)
        os.replace(tmp, args.port_file)
    log("ghsim listening on 127.0.0.1:%d" % state.port)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    try:
        srv.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        log("ghsim stopping")
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
