"""End-to-end harness for the LXD provider: the real runnerd against ghsim
and a real LXD. The LXD side is prepared by tests/lib/lxd.sh (started when
it was not running, test bridge and pool, one dedicated project with the
test images); each scenario gets its own ghsim, its own manager name and a
proxy profile through which its containers reach that ghsim on 127.0.0.1 (so
test traffic never leaves loopback). Everything the tests made in LXD is
removed at the end; anything else in LXD is never touched."""

import http.client
import signal
import sys
import json
import os
import select
import socket
import subprocess
import threading
import time
import urllib.parse

from harness import Env, TOP, run_tests, summary

LIB = os.path.join(TOP, "tests", "lib", "lxd.sh")
PROJECT = os.environ.get("RUNNERD_E2E_LXD_PROJECT", "runnerd-e2e")


def lib(*cmds, env=None, timeout=900):
    """Run `. tests/lib/lxd.sh && CMD && ...` in bash; returns (rc, stdout, stderr)."""
    script = ". %s && %s" % (sh_quote(LIB), " && ".join(cmds))
    e = dict(os.environ)
    e["RUNNERD_TOP"] = TOP
    e.update(env or {})
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=e, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


# --- LXD REST API over its unix socket -------------------------------------

class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("lxd", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class LxdError(Exception):
    pass


class Lxd:
    """A minimal LXD client: every call in one project unless told otherwise."""

    def __init__(self, socket_path, project):
        self.socket = socket_path
        self.project = project

    def call(self, method, path, body=None, project=True, timeout=60, raw=False):
        if project and self.project:
            path += ("&" if "?" in path else "?") + "project=" + urllib.parse.quote(self.project)
        c = _UnixConnection(self.socket, timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
            r = c.getresponse()
            out = r.read()
        finally:
            c.close()
        if raw:
            return r.status, out
        j = json.loads(out) if out else {}
        if r.status >= 400:
            raise LxdError("%s %s -> %d %s" % (method, path, r.status, j.get("error", out[:200])))
        if j.get("type") == "async":
            op = self.call("GET", "/1.0/operations/%s/wait?timeout=%d" % (j["metadata"]["id"], timeout),
                           project=False, timeout=timeout + 10)
            if op.get("status") != "Success":
                raise LxdError("%s %s: operation %s: %s" % (method, path, op.get("status"), op.get("err")))
            return op
        return j.get("metadata")

    def instances(self, prefix=""):
        """Name -> status of the project's instances whose name starts with prefix."""
        got = self.call("GET", "/1.0/instances?recursion=1")
        return {i["name"]: i["status"] for i in got if i["name"].startswith(prefix)}

    def instance(self, name):
        return self.call("GET", "/1.0/instances/%s" % name)

    def stop(self, name, force=True):
        self.call("PUT", "/1.0/instances/%s/state" % name, {"action": "stop", "force": force, "timeout": 30})

    def delete(self, name, tries=10):
        """Stop (forced) and delete; retried while another operation (a stop
        by runnerd, say) holds the instance."""
        for i in range(tries):
            try:
                st = self.instance(name)["status"]
            except LxdError:
                return
            try:
                if st != "Stopped":
                    self.stop(name)
                self.call("DELETE", "/1.0/instances/%s" % name)
                return
            except LxdError:
                if i == tries - 1:
                    raise
                time.sleep(1)

    def exec(self, name, command, timeout=60):
        """Run command in the instance; returns (exit code, stdout)."""
        op = self.call("POST", "/1.0/instances/%s/exec" % name,
                       {"command": command, "wait-for-websocket": False, "interactive": False,
                        "record-output": True}, timeout=timeout)
        md = op.get("metadata") or {}
        out = b""
        logs = md.get("output") or {}
        if "1" in logs:
            status, out = self.call("GET", logs["1"], project="project=" not in logs["1"], raw=True)
        return md.get("return"), out.decode(errors="replace")

    def pull(self, name, path):
        status, out = self.call("GET", "/1.0/instances/%s/files?path=%s" % (name, urllib.parse.quote(path)),
                                raw=True)
        return out if status == 200 else None


# --- a unix-socket forwarder that can play a dead LXD ---------------------

class SocketForwarder:
    """Listens on PATH and pipes every connection to the real LXD socket.
    down(): every open connection is cut and the path stops answering (it
    refuses connections, as the socket of a dead daemon does); up(): back."""

    def __init__(self, path, target):
        self.path = path
        self.target = target
        self.lock = threading.Lock()
        self.conns = []
        self.listener = None
        self.stopping = False
        self.thread = None
        self.up()

    def up(self):
        with self.lock:
            if self.listener is not None:
                return
            if os.path.exists(self.path):
                os.unlink(self.path)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(self.path)
            os.chmod(self.path, 0o600)
            s.listen(64)
            self.listener = s
            self.thread = threading.Thread(target=self._accept, args=(s,), daemon=True)
            self.thread.start()

    def down(self):
        with self.lock:
            s, self.listener = self.listener, None
            conns, self.conns = self.conns, []
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for a, b in conns:
            for x in (a, b):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                x.close()
        # a socket file nobody listens on: connect() is refused
        if os.path.exists(self.path):
            os.unlink(self.path)
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dead.bind(self.path)
        dead.close()

    def close(self):
        self.down()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def _accept(self, s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            try:
                t = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                t.connect(self.target)
            except OSError:
                c.close()
                continue
            with self.lock:
                if self.listener is not s:
                    c.close()
                    t.close()
                    return
                self.conns.append((c, t))
            threading.Thread(target=self._pipe, args=(c, t), daemon=True).start()

    def _pipe(self, a, b):
        try:
            while True:
                r, _, _ = select.select([a, b], [], [], 1.0)
                for x in r:
                    data = x.recv(65536)
                    if not data:
                        raise OSError("closed")
                    (b if x is a else a).sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            for x in (a, b):
                try:
                    x.close()
                except OSError:
                    pass
            with self.lock:
                if (a, b) in self.conns:
                    self.conns.remove((a, b))


# --- the environment ------------------------------------------------------

class LxdSetup:
    """LXD for a whole test file: lxd_setup (unless the caller's environment
    says it is done: LXD_TEST_READY=1), one project, the images."""

    def __init__(self, project=PROJECT):
        self.project = project
        self.own_setup = False
        self.vars = {}
        self.images = set()
        self.debian_build = None

    def start(self):
        if os.environ.get("LXD_TEST_READY") == "1":
            rc, out, err = lib("lxd_env")
        else:
            rc, out, err = lib("lxd_setup", "lxd_env")
            self.own_setup = True
        if rc != 0:
            raise RuntimeError("LXD could not be set up:\n" + err)
        for line in out.splitlines():
            k, _, v = line.partition("=")
            self.vars[k] = v
        os.environ.update(self.vars)
        rc, out, err = lib("lxd_project_create %s" % sh_quote(self.project))
        if rc != 0:
            raise RuntimeError("project %s: %s" % (self.project, err))
        self.api = Lxd(self.vars["LXD_SOCKET"], self.project)
        return self

    @property
    def started_by_tests(self):
        return os.environ.get("LXD_STARTED_BY_TESTS") == "1"

    def build_debian_in_background(self):
        """The Debian image takes minutes on a fresh clone: start building it
        while the busybox scenarios run."""
        cache = self.vars.get("RUNNERD_LXD_CACHE") or os.path.join(TOP, ".cache", "lxd")
        os.makedirs(cache, exist_ok=True)
        log = open(os.path.join(cache, "build-debian.log"), "w")
        self.debian_build = subprocess.Popen(["bash", "-c", ". %s && lxd_image_build debian" % sh_quote(LIB)],
                                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                             env=dict(os.environ, RUNNERD_TOP=TOP))

    def image(self, kind):
        """The alias of image kind (busybox|debian) in the project, imported once."""
        alias = "runnerd-test-" + kind
        if kind in self.images:
            return alias
        if kind == "debian" and self.debian_build is not None:
            self.debian_build.wait()
            self.debian_build = None
        t0 = time.time()
        rc, out, err = lib("lxd_image_%s %s %s" % (kind, alias, sh_quote(self.project)))
        if rc != 0:
            raise RuntimeError("image %s: %s" % (kind, err))
        print("# image %s ready in %.1fs" % (kind, time.time() - t0), flush=True)
        self.images.add(kind)
        return alias

    def restart_lxd(self):
        rc, out, err = lib("lxd_restart")
        if rc != 0:
            raise RuntimeError("LXD restart failed: " + err)

    def close(self):
        if self.debian_build is not None and self.debian_build.poll() is None:
            self.debian_build.wait()
        rc, out, err = lib("lxd_project_delete %s" % sh_quote(self.project))
        ok = rc == 0
        if not ok:
            print("# project cleanup failed: " + err, flush=True)
        if self.own_setup:
            rc, out, err = lib("lxd_teardown --owner")
            if rc != 0:
                print("# LXD teardown: " + err, flush=True)
                ok = False
        return ok


class LxdEnv(Env):
    """Env whose flavors run on LXD in the setup's project."""

    def __init__(self, setup, name, flavors, image="busybox", bootstrap="exec", denylist=None, socket_path=None,
                 heartbeat=3, **manager_opts):
        self.setup = setup
        self.api = setup.api
        self.image_alias = setup.image(image)
        self.bootstrap = bootstrap
        self.denylist = denylist
        self.lxd_socket = socket_path or setup.vars["LXD_SOCKET"]
        manager = "lx" + name.replace("_", "-")
        self.profile = "ghsim-" + manager
        flavors = [dict(f, provider="lxd", image=self.image_alias) for f in flavors]
        opts = dict(bootstrap_timeout="60s")
        opts.update(manager_opts)
        super().__init__(name, flavors, manager=manager, heartbeat=heartbeat, **opts)
        try:
            self.api.call("DELETE", "/1.0/profiles/%s" % self.profile)
        except LxdError:
            pass
        rc, out, err = lib("lxd_proxy_profile %s %s %d" % (sh_quote(setup.project), self.profile, self.ghsim.port))
        if rc != 0:
            raise RuntimeError(err)

    def provider_lines(self):
        lines = ["providers:", "  lxd:", "    socket: %s" % self.lxd_socket,
                 "    project: %s" % self.setup.project, "    network: %s" % self.setup.vars["LXD_TEST_NETWORK"],
                 "    storage_pool: %s" % self.setup.vars["LXD_TEST_POOL"],
                 "    profiles: [default, %s]" % self.profile, "    bootstrap: %s" % self.bootstrap,
                 "    stop_timeout: 2s"]
        if self.denylist:
            lines += ["runner:", "  denylist: [%s]" % ", ".join(self.denylist)]
        return lines

    def add_profile_devices(self, devices):
        """More devices in the manager's profile (so in every instance it makes
        from now on): name -> LXD device."""
        prof = self.api.call("GET", "/1.0/profiles/%s" % self.profile)
        merged = dict(prof["devices"])
        merged.update(devices)
        self.api.call("PUT", "/1.0/profiles/%s" % self.profile,
                      {"config": prof["config"], "description": prof["description"], "devices": merged})

    def add_proxy_devices(self, ports):
        """Instances also reach these host ports (name -> port) on 127.0.0.1, as
        they reach ghsim: through LXD proxy devices, so traffic stays on loopback."""
        self.add_profile_devices({name: {"type": "proxy", "bind": "instance", "listen": "tcp:127.0.0.1:%d" % port,
                                         "connect": "tcp:127.0.0.1:%d" % port} for name, port in ports.items()})

    def lxd_instances(self):
        """Name -> LXD status of this manager's instances."""
        return self.api.instances(self.manager + "-")

    def instances(self):
        return sorted(self.lxd_instances())

    def acl_name(self):
        return "runnerd-%s-deny" % self.manager

    def close(self):
        try:
            super().close()
        finally:
            # whatever runnerd left: our instances, the proxy profile, our ACL
            for name in list(self.lxd_instances() if os.path.exists(self.setup.vars["LXD_SOCKET"]) else []):
                try:
                    self.api.delete(name)
                except LxdError as e:
                    print("# could not delete %s: %s" % (name, e))
            net = self.setup.vars["LXD_TEST_NETWORK"]
            try:
                n = self.api.call("GET", "/1.0/networks/%s" % net)
                acls = [a for a in n["config"].get("security.acls", "").split(",") if a and a != self.acl_name()]
                if acls != [a for a in n["config"].get("security.acls", "").split(",") if a]:
                    cfg = dict(n["config"])
                    cfg["security.acls"] = ",".join(acls)
                    if not acls:
                        for k in list(cfg):
                            if k.startswith("security.acls.default.") or k.startswith("user.runnerd."):
                                del cfg[k]
                    self.api.call("PUT", "/1.0/networks/%s" % net, {"config": cfg, "description": n["description"]})
            except LxdError as e:
                print("# network %s: %s" % (net, e))
            for path in ("/1.0/network-acls/%s" % self.acl_name(), "/1.0/profiles/%s" % self.profile):
                try:
                    self.api.call("DELETE", path)
                except LxdError:
                    pass


def run_lxd_tests(tests, setup_ready, build_debian=lambda: True):
    """main() of an LXD test file: LxdSetup started (setup_ready(setup) gets it
    before any test runs), the Debian image built in the background when
    build_debian() says so, the tests (those named on the command line), the
    cleanup, the summary line and the exit status. No LXD is a failure."""
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    setup = LxdSetup()
    try:
        setup.start()
    except Exception as e:
        print("LXD could not be set up: %s" % e, flush=True)
        sys.exit(summary(0, 1))
    setup_ready(setup)
    passed = failed = skipped = 0
    try:
        if build_debian():
            setup.build_debian_in_background()
        passed, failed, skipped = run_tests(tests)
    finally:
        if not setup.close():
            print("not ok - LXD cleanup (project, test network/pool, LXD stop)", flush=True)
            failed += 1
    sys.exit(summary(passed, failed, skipped))
