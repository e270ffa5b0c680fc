"""Start and drive ghsim (tests/ghsim/ghsim.py) from Python tests.

    from ghsim import Ghsim            # with tests/lib on sys.path
    with Ghsim(workdir, "--heartbeat-timeout", "2") as gh:
        status, headers, body = gh.api("GET", "/repos/o/r/actions/runners")
        gh.control("POST", "/_ghsim/jobs", {"repo": "o/r", "labels": ["self-hosted"]})

Each instance listens on its own ephemeral 127.0.0.1 port with a fresh token
(or the one given) in WORKDIR/token (0600); its output goes to
WORKDIR/ghsim.out, its request log to WORKDIR/ghsim.log; it is stopped by its
pid. Nothing here ever talks to an address other than 127.0.0.1, and the
token never reaches argv or stdout. Standard library only; built on
harness.py (waiting, stopping processes).
"""

import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request

from harness import poll, stop_process

GHSIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ghsim", "ghsim.py")


class _NoRedirect(urllib.request.HTTPErrorProcessor):
    def http_response(self, request, response):
        return response

    https_response = http_response


_RAW = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def http(method, url, body=None, headers=None, timeout=30):
    """One request; returns (status, headers dict with lowercase keys, body bytes).
    Raises OSError on transport failure (e.g. a dropped connection)."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with _RAW.open(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


class ControlError(OSError):
    """A non-2xx answer of ghsim's control API (an OSError, as urllib's
    HTTPError is: callers that retry on transport errors retry on it too)."""


class Ghsim:
    def __init__(self, workdir, *args, env=None, token=None, token_file=None):
        """token: the PAT ghsim accepts (default: a fresh one); token_file:
        where it is written (default WORKDIR/token)."""
        self.workdir = workdir
        self.args = list(args)
        self.env = env
        self.proc = None
        self.pid = None
        self.port = None
        self.url = None
        self.token_file = token_file or os.path.join(workdir, "token")
        self.token = token
        self.log = self.args[self.args.index("--log") + 1] if "--log" in self.args else \
            os.path.join(workdir, "ghsim.log")
        self.out = os.path.join(workdir, "ghsim.out")

    def start(self, timeout=10):
        os.makedirs(self.workdir, exist_ok=True)
        self.token = self.token or "ghp_" + secrets.token_hex(18)
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.token + "\n")
        port_file = os.path.join(self.workdir, "ghsim.port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        cmd = [sys.executable, GHSIM, "--port", "0", "--port-file", port_file, "--token-file", self.token_file]
        if "--log" not in self.args:
            cmd += ["--log", self.log]
        with open(self.out, "ab") as out:
            self.proc = subprocess.Popen(cmd + self.args, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, env=self.env)
        self.pid = self.proc.pid

        def port():
            if self.proc.poll() is not None:
                raise RuntimeError("ghsim exited with %s: %s" % (self.proc.returncode, self.output()))
            try:
                with open(port_file) as f:
                    return int(f.read().strip())
            except (OSError, ValueError):
                return None
        self.port = poll(port, timeout, 0.02)
        if not self.port:
            self.stop()
            raise RuntimeError("ghsim did not start within %gs: %s" % (timeout, self.output()))
        self.url = "http://127.0.0.1:%d" % self.port
        return self

    def output(self, limit=2000):
        """The end of what ghsim wrote to stdout and stderr."""
        try:
            with open(self.out, errors="replace") as f:
                return f.read()[-limit:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc, timeout=5)
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def api(self, method, path, body=None, token=None, headers=None, timeout=30):
        """A GitHub API call with the PAT (or `token`), GitHub's usual headers."""
        hdrs = {"Accept": "application/vnd.github+json", "User-Agent": "ghsim-test",
                "X-GitHub-Api-Version": "2022-11-28",
                "Authorization": "Bearer " + (token if token is not None else self.token)}
        hdrs.update(headers or {})
        hdrs = {k: v for k, v in hdrs.items() if v is not None}
        return http(method, self.url + path, body, hdrs, timeout)

    def api_json(self, method, path, body=None, **kw):
        status, headers, data = self.api(method, path, body, **kw)
        return status, headers, (json.loads(data) if data else None)

    def control(self, method, path, body=None, timeout=30):
        """A control API call; raises ControlError on a non-2xx answer,
        returns the JSON."""
        status, _, data = http(method, self.url + path, body, timeout=timeout)
        if not 200 <= status < 300:
            raise ControlError("%s %s -> %d %s" % (method, path, status, data[:200]))
        return json.loads(data) if data else None


def ghsim_start(workdir, *args, **kw):
    return Ghsim(workdir, *args, **kw).start()
