"""The shared test harness: what the Python tests, the demo and the scripts
need to drive the real runnerd and its test servers, written once.

Plumbing (standard library only; importing starts nothing):
  TOP, BIN                  the tree and the runnerd binary (RUNNERD_TOP, RUNNERD_BIN)
  poll, wait_until          a condition polled until a deadline
  stop_process              a child stopped by its pid: a signal, then SIGKILL
  signal_pids               a signal sent to processes by pid, those gone skipped
  free_port                 a free TCP port on 127.0.0.1
  make_workdir, remove_workdir   a scenario's temp dir, kept on request
  run_tests, summary, main  run test functions, count them, "N passed, N failed"
  NotRun                    a test that could not run here (never counted passed)
  store_rows                a state database's rows, read only
  integrity_check           a state database's PRAGMA integrity_check
  temp_files                runnerd's temporary files left under some directories
  processes, Proc           the processes of this machine, from /proc
The end-to-end environment:
  Env                       a temp dir, its own ghsim (tests/lib/ghsim.py) and
                            its own runnerd with the local provider
Shell tests reach the same code through tests/lib/harness.sh (which calls
`python3 tests/lib/harness.py free-port`).

Everything started here listens on 127.0.0.1 only and is stopped by its pid;
nothing here talks to any address off this machine.
"""

import json
import os
import random
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback

TOP = os.environ.get("RUNNERD_TOP") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("RUNNERD_BIN") or os.path.join(TOP, "build", "runnerd")
TOKEN = "e2e-token-value-0123456789abcdef"
RUNNER_USER = os.environ.get("RUNNERD_E2E_USER", "runnerd-e2e")


# ---- waiting and processes ----------------------------------------------------

def _poll(pred, timeout, interval, retry):
    deadline = time.time() + timeout
    while True:
        try:
            last = pred()
            if last:
                return True, last
        except retry as e:
            last = e
        if time.time() >= deadline:
            return False, last
        time.sleep(interval)


def poll(pred, timeout, interval=0.05, retry=()):
    """Call pred() every interval seconds until it returns something true or
    timeout seconds pass; return its last value (false on a timeout). An
    exception of a type in `retry` counts as a false answer."""
    ok, last = _poll(pred, timeout, interval, retry)
    return last if ok or not isinstance(last, BaseException) else None


def wait_until(pred, timeout=10, what="condition", interval=0.05, retry=()):
    """poll(), but a timeout is an AssertionError naming what was awaited
    and pred's last answer."""
    ok, last = _poll(pred, timeout, interval, retry)
    if not ok:
        raise AssertionError("timed out after %gs waiting for %s (last: %r)" % (timeout, what, last))
    return last


def stop_process(proc, sig=signal.SIGTERM, timeout=5, group=False):
    """Stop a child (a subprocess.Popen) by its pid: sig to it (to its process
    group with group=True), then SIGKILL when it has not exited within
    timeout seconds. Returns (exit status, whether it had to be killed)."""
    if proc.poll() is not None:
        return proc.returncode, False

    def send(s):
        try:
            if group:
                os.killpg(proc.pid, s)
            else:
                proc.send_signal(s)
        except OSError:
            pass  # gone meanwhile
    send(sig)
    try:
        return proc.wait(timeout), False
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        return proc.wait(), True


def signal_pids(pids, sig):
    """Send sig to each process of pids; one that is gone meanwhile is skipped."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def prom_sample(text, series):
    """The value of the exact series line (name{labels}) in Prometheus exposition text, or None."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split(" ", 1)[1])
    return None


def free_port():
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_workdir(name, mode=None):
    """A fresh temp dir for one scenario (mode: chmod it)."""
    d = tempfile.mkdtemp(prefix="runnerd-%s-" % name)
    if mode is not None:
        os.chmod(d, mode)
    return d


def remove_workdir(path, keep=False):
    """Remove a scenario's temp dir, unless keep (say, the scenario failed) or
    RUNNERD_E2E_KEEP is set: then say where it is."""
    if keep or os.environ.get("RUNNERD_E2E_KEEP"):
        print("kept", path, flush=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


class Proc:
    """One process seen in /proc; a field it can no longer be read for (the
    process is gone, or not ours to read) is empty."""

    def __init__(self, pid):
        self.pid = pid

    def _read(self, name):
        try:
            with open("/proc/%d/%s" % (self.pid, name), "rb") as f:
                return f.read()
        except OSError:
            return b""

    @property
    def uid(self):
        try:
            return os.stat("/proc/%d" % self.pid).st_uid
        except OSError:
            return None

    @property
    def cmdline(self):
        """The command line, its arguments separated (and ended) by spaces."""
        return self._read("cmdline").replace(b"\0", b" ").decode(errors="replace")

    @property
    def environ(self):
        """The environment it was started with, as ["KEY=value", ...]."""
        return self._read("environ").decode(errors="replace").split("\0")

    @property
    def cwd(self):
        try:
            return os.readlink("/proc/%d/cwd" % self.pid)
        except OSError:
            return ""


def processes():
    """Every process on this machine, as a Proc."""
    for p in os.listdir("/proc"):
        if p.isdigit():
            yield Proc(int(p))


def store_rows(state_dir, table="instances"):
    """A state database's rows of one table, {name: {column: value}}, read
    only; {} when there is no database yet."""
    db = os.path.join(state_dir, "state.db")
    if not os.path.exists(db):
        return {}
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        c.row_factory = sqlite3.Row
        return {r["name"]: dict(r) for r in c.execute("SELECT * FROM %s" % table)}
    finally:
        c.close()


def integrity_check(state_dir):
    """PRAGMA integrity_check of a state database, read only: "ok" when whole."""
    c = sqlite3.connect("file:%s?mode=ro" % os.path.join(state_dir, "state.db"), uri=True, timeout=10)
    try:
        return "\n".join(r[0] for r in c.execute("PRAGMA integrity_check"))
    finally:
        c.close()


# runnerd's temporaries: <path>.tmp.<pid> until now, .<name>.runnerd-tmp.<pid>... soon
TEMP_FILE_RE = re.compile(r"(\.tmp\.\d+$)|(^\..+\.runnerd-tmp\.)")


def temp_files(*dirs):
    """The temporary files (either spelling) anywhere under dirs."""
    out = []
    for top in dirs:
        for d, subdirs, files in os.walk(top):
            out += [os.path.join(d, n) for n in subdirs + files if TEMP_FILE_RE.search(n)]
    return sorted(out)


# ---- counting -----------------------------------------------------------------

class NotRun(Exception):
    """A scenario that could not run here, with the reason: reported and
    counted as skipped, never as passed."""


def run_tests(tests, only=None):
    """Run test functions, each on its own: one line for each, "ok - NAME
    (1.2s)", "not ok - NAME (1.2s)" and its traceback, or "not run - NAME:
    why". `only`: the names to run (default: the command line's arguments;
    [] runs all). Returns (passed, failed, skipped)."""
    if only is None:
        only = sys.argv[1:]
    passed = failed = skipped = 0
    for fn in tests:
        if only and fn.__name__ not in only:
            continue
        start = time.time()
        try:
            fn()
            passed += 1
            print("ok - %s (%.1fs)" % (fn.__name__, time.time() - start), flush=True)
        except NotRun as e:
            skipped += 1
            print("not run - %s: %s" % (fn.__name__, e), flush=True)
        except Exception:
            failed += 1
            print("not ok - %s (%.1fs)" % (fn.__name__, time.time() - start), flush=True)
            traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
    return passed, failed, skipped


def summary(passed, failed, skipped=0):
    """Print the last line, "N passed, N failed" (", N skipped" when some
    were); return the exit status: 1 when something failed."""
    print("%d passed, %d failed" % (passed, failed) + (", %d skipped" % skipped if skipped else ""), flush=True)
    return 1 if failed else 0


def main(tests):
    """run_tests (those named on the command line), summary, exit."""
    sys.exit(summary(*run_tests(tests)))


# ---- the end-to-end environment -----------------------------------------------

class Env:
    """The real runnerd binary against its own ghsim, with the local provider:
    a fresh temp dir, everything stopped by pid and every instance removed
    at close()."""

    def __init__(self, name, flavors, manager="e2e", heartbeat=3, extra_lines=(), github_opts=None,
                 ghsim_args=(), webhook_opts=None, ghsim=None, **manager_opts):
        """ghsim: another Env's ghsim to share (two managers on one
        repository); it stays up at close(), its owner stops it."""
        # ghsim.py is built on this module: import it once this one is whole
        from ghsim import Ghsim

        self.name = name
        # the local provider's uids: a block of this scenario's own, so two runs at once
        # (or a leftover of an earlier one) never see each other's instances as leftovers
        self.uid_first = 1900000000 + random.randrange(0, 80000) * 1000
        self.uid_last = self.uid_first + 999
        self.extra_lines = list(extra_lines)  # more top-level config (e.g. a runner: section)
        self.manager = manager
        self.tmp = make_workdir("e2e-%s" % name, 0o711)  # the runner user must reach work/ (only)
        self.secrets = os.path.join(self.tmp, "secrets")
        self.state = os.path.join(self.tmp, "state")
        self.work = os.path.join(self.tmp, "work")
        os.makedirs(self.secrets, mode=0o700)
        self.token_file = os.path.join(self.secrets, "token")
        self.log_path = os.path.join(self.tmp, "runnerd.log")
        self.log_dir = os.path.join(self.tmp, "logs")
        self.daemon = None
        self.own_ghsim = ghsim is None
        if ghsim is None:
            ghsim = Ghsim(self.tmp, "--heartbeat-timeout", str(heartbeat), *ghsim_args, token=TOKEN,
                          token_file=self.token_file).start(timeout=20)
        else:
            fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(ghsim.token + "\n")
        self.ghsim = ghsim
        self.ghsim_log = self.ghsim.log
        self.url = self.ghsim.url
        self.flavors = flavors
        self.manager_opts = dict(reconcile_interval="2s", bootstrap_timeout="20s", job_timeout="1h",
                                 create_concurrency=10)
        self.manager_opts.update(manager_opts)
        self.github_opts = dict(request_timeout="5s", connect_timeout="2s")
        self.github_opts.update(github_opts or {})
        # webhook: keys (reactive mode, tests/e2e/test_webhooks.py); off by default
        self.webhook_opts = dict(webhook_opts or {"listen": '""'})
        self.config = os.path.join(self.tmp, "runnerd.yaml")
        self.metrics_listen = ""  # metrics.listen: "" (none) unless a test sets it
        self.write_config()

    # --- ghsim ---------------------------------------------------------
    def gh(self, method, path, body=None):
        """ghsim's control API (raises on a non-2xx answer)."""
        return self.ghsim.control(method, path, body, timeout=10)

    def queue_job(self, labels, duration=1, repo="octo/hello", workflow="ci", event="push", run=None):
        """A job on ghsim (run: a shell script its runner runs as the job's step)."""
        body = {"repo": repo, "labels": labels, "duration": duration, "workflow": workflow, "event": event}
        if run is not None:
            body["run"] = run
        return self.gh("POST", "/_ghsim/jobs", body)

    @property
    def events_log(self):
        """Where the config sends metrics events (metrics.events_log)."""
        return os.path.join(self.tmp, "metrics.log")

    def events(self, kind=None, path=None):
        """The events log's events (of one kind), each a dict, in order; a
        line that is not a whole JSON object fails the test."""
        try:
            with open(path or self.events_log) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = [json.loads(ln) for ln in lines]
        assert all(isinstance(ev, dict) and "event" in ev for ev in out), lines
        return [ev for ev in out if kind is None or ev["event"] == kind]

    def jobs(self):
        return self.gh("GET", "/_ghsim/jobs")

    def gh_runners(self):
        return [r for r in self.gh("GET", "/_ghsim/runners") if r["name"].startswith(self.manager + "-")]

    def stats(self):
        return self.gh("GET", "/_ghsim/stats")

    # --- runnerd -------------------------------------------------------
    def write_config(self, flavors=None, **manager_opts):
        if flavors is not None:
            self.flavors = flavors
        self.manager_opts.update(manager_opts)
        lines = ["github:", "  api_url: %s" % self.url, "  path: octo/hello",
                 "  token_file: %s" % self.token_file]
        lines += ["  %s: %s" % kv for kv in self.github_opts.items()]
        lines += ["manager:", "  name: %s" % self.manager, "  state_dir: %s" % self.state,
                  "  log_dir: %s" % self.log_dir]
        for k, v in self.manager_opts.items():
            lines.append("  %s: %s" % (k, v))
        lines.append("flavors:")
        for f in self.flavors:
            lines += ["  - name: %s" % f["name"], "    provider: %s" % f.get("provider", "local"),
                      "    labels: [%s]" % ", ".join(f.get("labels", [])),
                      "    min_idle: %d" % f.get("min_idle", 1), "    max: %d" % f.get("max", 3)]
            if f.get("image"):
                lines.append("    image: %s" % f["image"])
        lines += self.provider_lines()
        lines += ["webhook:"] + ["  %s: %s" % kv for kv in self.webhook_opts.items()]
        lines += ["metrics:", "  listen: \"%s\"" % self.metrics_listen,
                  "  events_log: %s" % self.events_log]
        lines += self.extra_lines
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def provider_lines(self):
        """The config's providers: section (and any other top-level section a
        subclass needs); flavors name their provider (default local)."""
        return ["providers:", "  local:", "    work_dir: %s" % self.work, "    user: %s" % RUNNER_USER,
                "    stop_timeout: 2s", "    uid_range: \"%d-%d\"" % (self.uid_first, self.uid_last)]

    def run(self, *args, check=True, timeout=120):
        p = subprocess.run([BIN] + list(args) + ["-c", self.config], capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        with open(self.log_path, "a") as f:
            f.write("$ runnerd %s -> %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
        if check and p.returncode != 0:
            raise AssertionError("runnerd %s failed (%d): %s %s" % (args, p.returncode, p.stdout, p.stderr))
        return p

    def serve(self, global_args=(), log_path=None, wait=True):
        """Start runnerd serve (global_args go before the command, e.g.
        ["--log-format", "json"]); its output goes to log_path, by default
        the log that env.log() reads. wait: until its control socket answers
        (the socket file of a daemon killed earlier may still be there)."""
        assert self.daemon is None
        with open(log_path or self.log_path, "a") as out:
            self.daemon = subprocess.Popen([BIN] + list(global_args) + ["serve", "-c", self.config],
                                           stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        if wait:
            self.wait(self.control_answers, 20, "control socket")
        return self.daemon

    def control_answers(self):
        """Whether a daemon accepts connections on the control socket."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            return s.connect_ex(os.path.join(self.state, "control.sock")) == 0

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.daemon is None:
            return None
        rc, killed = stop_process(self.daemon, sig, timeout)
        self.daemon = None
        if killed:
            raise AssertionError("runnerd did not stop within %ds of signal %d" % (timeout, sig))
        return rc

    def status(self):
        return json.loads(self.run("status", "--json").stdout)

    def flavor_counts(self, st=None):
        st = st or self.status()
        return {f["name"]: f for f in st["flavors"]}

    def instances(self):
        """Instance dirs the local provider holds (names owned by this manager)."""
        if not os.path.isdir(self.work):
            return []
        return sorted(n for n in os.listdir(self.work) if n.startswith(self.manager + "-"))

    def store_rows(self):
        """The state store's instance rows: {name: {column: value}} (read only)."""
        return store_rows(self.state)

    def state_files(self):
        """The local provider's records (work_dir/.state/<name>.json) of names this manager owns."""
        d = os.path.join(self.work, ".state")
        if not os.path.isdir(d):
            return []
        return sorted(n for n in os.listdir(d) if n.startswith(self.manager + "-"))

    def runner_user_processes(self):
        """Processes of this scenario's instances: every instance runs as a uid
        of the scenario's own uid_range (the runner user itself runs nothing
        any more; a process of it under this scenario's work dir counts too)."""
        try:
            user = pwd.getpwnam(RUNNER_USER).pw_uid
        except KeyError:
            user = None
        out = []
        for p in processes():
            uid = p.uid
            if uid is None:
                continue
            if self.uid_first <= uid <= self.uid_last or \
                    (uid == user and (self.work in p.cmdline or p.cwd.startswith(self.work))):
                out.append((p.pid, p.cmdline.strip()))
        return out

    def temp_files(self):
        """runnerd's temporary files left in its state, log and work dirs."""
        return temp_files(self.state, self.log_dir, self.work)

    def daemon_processes(self):
        """runnerd processes (serve, a command, or what they forked) of this
        scenario's config, but the daemon it runs now."""
        running = self.daemon.pid if self.daemon is not None and self.daemon.poll() is None else None
        return [(p.pid, p.cmdline.strip()) for p in processes()
                if p.pid != running and p.cmdline.startswith(BIN + " ")
                and " %s " % self.config in p.cmdline + " "]

    def leftovers(self):
        """What is left of this scenario, by kind (each list empty when nothing is)."""
        return {"runners on GitHub": [r["name"] for r in self.gh_runners()], "instances": self.instances(),
                "provider records": self.state_files(), "store rows": sorted(self.store_rows()),
                "processes": self.runner_user_processes() + self.daemon_processes(),
                "temporary files": self.temp_files()}

    def assert_nothing_left(self, killed=0):
        """Once drained: nothing on GitHub or on the provider (instances,
        its records, processes of the runner user), no store row, no runnerd
        process of this scenario but its daemon, no temporary file, a whole
        database, and no job killed mid-run (but the `killed` a scenario
        caused on purpose)."""
        poll(lambda: not self.runner_user_processes(), 15, 0.3)
        left = {k: v for k, v in self.leftovers().items() if v}
        assert not left, "left behind: %s" % left
        assert integrity_check(self.state) == "ok", integrity_check(self.state)
        assert self.stats()["killed_jobs"] == killed, "jobs killed: %d" % self.stats()["killed_jobs"]

    def log(self, since=0):
        """The daemon's log (from byte offset `since`)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self):
        """Where the daemon's log ends now (a byte offset for log(since))."""
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def wait(self, pred, timeout, what):
        """wait_until, polling every 0.3 s; an error in pred counts as not yet."""
        return wait_until(pred, timeout, what, interval=0.3, retry=(OSError, ValueError, KeyError, AssertionError))

    def idle_count(self):
        return sum(1 for r in self.gh_runners() if r["status"] == "online" and not r["busy"])

    def close(self, keep=False):
        """Stop everything by pid, remove every instance, and the temp dir
        (unless keep: a failed scenario's dir is kept for a look)."""
        try:
            if self.daemon is not None:
                self.stop(signal.SIGTERM)
        except Exception:
            pass
        # remove whatever is left, through runnerd itself (direct mode)
        try:
            subprocess.run([BIN, "flush", "--busy", "-c", self.config], capture_output=True, timeout=60)
        except Exception:
            pass
        # last resort: processes of the instances, by pid
        try:
            signal_pids([pid for pid, _ in self.runner_user_processes()], signal.SIGKILL)
        except Exception:
            pass
        if self.own_ghsim:
            self.ghsim.stop()
        remove_workdir(self.tmp, keep=keep)


if __name__ == "__main__":
    # for shell tests (tests/lib/harness.sh)
    if sys.argv[1:] == ["free-port"]:
        print(free_port())
    else:
        sys.exit("usage: harness.py free-port")
