"""End-to-end harness: the real runnerd binary against ghsim with the local
provider. Each scenario gets a fresh temp dir, its own ghsim on 127.0.0.1 and
its own runnerd; everything is stopped by pid and every instance removed at
the end. Nothing here talks to any address off this machine."""

import json
import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

TOP = os.environ.get("RUNNERD_TOP") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("RUNNERD_BIN") or os.path.join(TOP, "build", "runnerd")
GHSIM = os.path.join(TOP, "tests", "ghsim", "ghsim.py")
TOKEN = "e2e-token-value-0123456789abcdef"
RUNNER_USER = os.environ.get("RUNNERD_E2E_USER", "runnerd-e2e")


class Env:
    def __init__(self, name, flavors, manager="e2e", heartbeat=3, extra_lines=(), **manager_opts):
        self.name = name
        self.extra_lines = list(extra_lines)  # more top-level config (e.g. a runner: section)
        self.manager = manager
        self.tmp = tempfile.mkdtemp(prefix="runnerd-e2e-%s-" % name)
        os.chmod(self.tmp, 0o711)  # the runner user must reach work/ (only)
        self.secrets = os.path.join(self.tmp, "secrets")
        self.state = os.path.join(self.tmp, "state")
        self.work = os.path.join(self.tmp, "work")
        os.makedirs(self.secrets, mode=0o700)
        self.token_file = os.path.join(self.secrets, "token")
        with open(os.open(self.token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(TOKEN + "\n")
        self.ghsim_log = os.path.join(self.tmp, "ghsim.log")
        self.log_path = os.path.join(self.tmp, "runnerd.log")
        self.ghsim = None
        self.daemon = None
        self._start_ghsim(heartbeat)
        self.flavors = flavors
        self.manager_opts = dict(reconcile_interval="2s", bootstrap_timeout="20s", job_timeout="1h",
                                 create_concurrency=10)
        self.manager_opts.update(manager_opts)
        self.config = os.path.join(self.tmp, "runnerd.yaml")
        self.write_config()

    # --- ghsim ---------------------------------------------------------
    def _start_ghsim(self, heartbeat):
        port_file = os.path.join(self.tmp, "ghsim.port")
        self.ghsim = subprocess.Popen(
            [sys.executable, GHSIM, "--port-file", port_file, "--token-file", self.token_file,
             "--heartbeat-timeout", str(heartbeat), "--log", self.ghsim_log],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(self.ghsim_log + ".err", "w"))
        deadline = time.time() + 20
        while time.time() < deadline:
            if os.path.exists(port_file):
                port = open(port_file).read().strip()
                if port:
                    self.url = "http://127.0.0.1:%s" % port
                    return
            if self.ghsim.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("ghsim did not start: %s" % open(self.ghsim_log + ".err").read())

    def gh(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def queue_job(self, labels, duration=1, repo="octo/hello"):
        return self.gh("POST", "/_ghsim/jobs", {"repo": repo, "labels": labels, "duration": duration,
                                                "workflow": "ci", "event": "push"})

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
                 "  token_file: %s" % self.token_file, "  request_timeout: 5s", "  connect_timeout: 2s",
                 "manager:", "  name: %s" % self.manager, "  state_dir: %s" % self.state,
                 "  log_dir: %s" % os.path.join(self.tmp, "logs")]
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
        lines += ["webhook:", "  listen: \"\"", "metrics:", "  listen: \"\"",
                  "  events_log: %s" % os.path.join(self.tmp, "metrics.log")]
        lines += self.extra_lines
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def provider_lines(self):
        """The config's providers: section (and any other top-level section a
        subclass needs); flavors name their provider (default local)."""
        return ["providers:", "  local:", "    work_dir: %s" % self.work, "    user: %s" % RUNNER_USER,
                "    stop_timeout: 2s"]

    def run(self, *args, check=True, timeout=120):
        p = subprocess.run([BIN] + list(args) + ["-c", self.config], capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        with open(self.log_path, "a") as f:
            f.write("$ runnerd %s -> %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
        if check and p.returncode != 0:
            raise AssertionError("runnerd %s failed (%d): %s %s" % (args, p.returncode, p.stdout, p.stderr))
        return p

    def serve(self, global_args=(), log_path=None):
        """Start runnerd serve (global_args go before the command, e.g.
        ["--log-format", "json"]); its output goes to log_path, by default
        the log that env.log() reads."""
        assert self.daemon is None
        self.daemon = subprocess.Popen([BIN] + list(global_args) + ["serve", "-c", self.config],
                                       stdin=subprocess.DEVNULL, stdout=open(log_path or self.log_path, "a"),
                                       stderr=subprocess.STDOUT)
        sock = os.path.join(self.state, "control.sock")
        self.wait(lambda: os.path.exists(sock), 20, "control socket")
        return self.daemon

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.daemon is None:
            return None
        self.daemon.send_signal(sig)
        try:
            rc = self.daemon.wait(timeout)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()
            raise AssertionError("runnerd did not stop within %ds of signal %d" % (timeout, sig))
        self.daemon = None
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
        db = os.path.join(self.state, "state.db")
        if not os.path.exists(db):
            return {}
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
        try:
            c.row_factory = sqlite3.Row
            return {r["name"]: dict(r) for r in c.execute("SELECT * FROM instances")}
        finally:
            c.close()

    def state_files(self):
        """The local provider's records (work_dir/.state/<name>.json) of names this manager owns."""
        d = os.path.join(self.work, ".state")
        if not os.path.isdir(d):
            return []
        return sorted(n for n in os.listdir(d) if n.startswith(self.manager + "-"))

    def runner_user_processes(self):
        """Processes of the runner user that belong to this scenario: their
        working directory, command line or RUNNERD_HOME is under its work dir
        (other scenarios may run as the same user at the same time)."""
        uid = pwd.getpwnam(RUNNER_USER).pw_uid
        out = []
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                if os.stat("/proc/" + p).st_uid != uid:
                    continue
                cmd = open("/proc/%s/cmdline" % p, "rb").read().replace(b"\0", b" ").decode(errors="replace")
                environ = open("/proc/%s/environ" % p, "rb").read().decode(errors="replace").split("\0")
                try:
                    cwd = os.readlink("/proc/%s/cwd" % p)
                except OSError:
                    cwd = ""
            except OSError:
                continue  # gone meanwhile
            home = [kv[len("RUNNERD_HOME="):] for kv in environ if kv.startswith("RUNNERD_HOME=")]
            if self.work in cmd or cwd.startswith(self.work) or any(h.startswith(self.work) for h in home):
                out.append((int(p), cmd.strip()))
        return out

    def log(self):
        return open(self.log_path, errors="replace").read() if os.path.exists(self.log_path) else ""

    def wait(self, pred, timeout, what):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = pred()
                if last:
                    return last
            except (OSError, ValueError, KeyError, AssertionError) as e:
                last = e
            time.sleep(0.3)
        raise AssertionError("timed out after %ds waiting for %s (last: %r)" % (timeout, what, last))

    def idle_count(self):
        return sum(1 for r in self.gh_runners() if r["status"] == "online" and not r["busy"])

    def close(self):
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
            for pid, _ in self.runner_user_processes():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        except Exception:
            pass
        if self.ghsim:
            self.ghsim.terminate()
            try:
                self.ghsim.wait(5)
            except subprocess.TimeoutExpired:
                self.ghsim.kill()
        if os.environ.get("RUNNERD_E2E_KEEP"):
            print("kept", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


class NotRun(Exception):
    """A scenario that could not run here, with the reason: reported and
    counted as skipped, never as passed."""


def main(tests, exit=True):
    """Run the tests (or those named on the command line); print the counts
    last. exit=False: return (passed, failed, skipped) instead of exiting."""
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
            traceback.print_exc()
    if not exit:
        return passed, failed, skipped
    print("%d passed, %d failed" % (passed, failed) + (", %d skipped" % skipped if skipped else ""))
    sys.exit(1 if failed else 0)
