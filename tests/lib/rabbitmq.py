"""A private RabbitMQ for tests: 127.0.0.1 only, free ports, its own dirs,
its own epmd, stopped by pid. It must never touch a broker it did not start
nor listen anywhere but loopback.

As a library: b = Broker(dir); b.start(); b.uri; b.restart(); b.stop().
Broker(dir, tls=True) also listens for amqps on 127.0.0.1 with a certificate
(IP and name 127.0.0.1) of a CA made here by openssl: b.uri_tls, b.ca_file,
and b.other_ca_file (a CA that did not sign it).
As a command (for tests in other languages):
  python3 tests/lib/rabbitmq.py run DIR -- CMD...   start (with TLS), run CMD
      with RUNNERD_TEST_AMQP_URI, RUNNERD_TEST_AMQP_RESTART,
      RUNNERD_TEST_AMQPS_URI, RUNNERD_TEST_AMQP_CA and
      RUNNERD_TEST_AMQP_OTHER_CA set, stop
  python3 tests/lib/rabbitmq.py restart DIR           restart the broker of DIR
  python3 tests/lib/rabbitmq.py queues DIR            print its queues (name ready unacked)
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"  # not /usr/sbin's: that one becomes user rabbitmq
EPMD = shutil.which("epmd") or "/usr/bin/epmd"


def available():
    return os.path.exists(SERVER) and os.path.exists(EPMD)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _zombie(pid):
    """Dead but not reaped (its parent may be another process: `restart`)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _wait_gone(pid, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if _zombie(pid):
            return True
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.1)
    return False


class Broker:
    def __init__(self, root, tls=False):
        self.root = os.path.abspath(root)
        self.state_file = os.path.join(self.root, "broker.json")
        self.tls = tls
        self.port = self.dist_port = self.epmd_port = self.tls_port = 0
        self.pid = self.epmd_pid = 0
        if os.path.exists(self.state_file):
            with open(self.state_file) as f:
                self.__dict__.update(json.load(f))

    @property
    def uri(self):
        return "amqp://guest:guest@127.0.0.1:%d" % self.port  # no path: the vhost "/"

    @property
    def uri_tls(self):
        return "amqps://guest:guest@127.0.0.1:%d" % self.tls_port

    @property
    def ca_file(self):
        return os.path.join(self.root, "tls", "ca.pem")

    @property
    def other_ca_file(self):
        return os.path.join(self.root, "tls", "other-ca.pem")

    def _make_tls(self):
        """A CA, the broker's key and certificate (127.0.0.1) signed by it, another CA;
        the broker's config to listen for amqps with them."""
        d = os.path.join(self.root, "tls")
        os.makedirs(d, exist_ok=True)

        def ssl(*args):
            subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True, timeout=60)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for ca in ("ca", "other-ca"):
            ssl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2",
                "-subj", "/CN=runnerd test %s" % ca)
        ssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
        with open(os.path.join(d, "ext.cnf"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                    "extendedKeyUsage=serverAuth\n")
        ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
        with open(os.path.join(self.root, "rabbitmq.conf"), "w") as f:
            f.write("listeners.ssl.default = 127.0.0.1:%d\n" % self.tls_port)
            f.write("ssl_options.cacertfile = %s\n" % os.path.join(d, "ca.pem"))
            f.write("ssl_options.certfile = %s\n" % os.path.join(d, "server.pem"))
            f.write("ssl_options.keyfile = %s\n" % os.path.join(d, "server.key"))
            f.write("ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n")

    def _save(self):
        with open(self.state_file, "w") as f:
            json.dump({k: getattr(self, k) for k in
                       ("port", "dist_port", "epmd_port", "pid", "epmd_pid", "tls", "tls_port")}, f)

    def _env(self):
        env = dict(os.environ)
        env.update({
            "HOME": self.root,  # the Erlang cookie lives here, not in ~
            "RABBITMQ_NODENAME": "runnerd%d@localhost" % self.port,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_MNESIA_BASE": os.path.join(self.root, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.root, "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.root, "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": os.path.join(self.root, "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(self.root, "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(self.root, "rabbitmq-env.conf"),
        })
        return env

    def start(self, timeout=90):
        os.makedirs(os.path.join(self.root, "log"), exist_ok=True)
        os.makedirs(os.path.join(self.root, "mnesia"), exist_ok=True)
        with open(os.path.join(self.root, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        if not self.port:
            self.port, self.dist_port, self.epmd_port = free_port(), free_port(), free_port()
        if self.tls and not self.tls_port:
            self.tls_port = free_port()
            self._make_tls()
        env = self._env()
        log = open(os.path.join(self.root, "server.out"), "ab")
        if not self.epmd_pid or not _alive(self.epmd_pid):
            epmd = subprocess.Popen([EPMD, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                                    env=env, stdout=log, stderr=log, start_new_session=True)
            self.epmd_pid = epmd.pid
        srv = subprocess.Popen([SERVER], env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                               start_new_session=True)
        self.pid = srv.pid
        self._save()
        end = time.time() + timeout
        while time.time() < end:
            if srv.poll() is not None:
                raise RuntimeError("rabbitmq-server exited %s (see %s/server.out)"
                                   % (srv.returncode, self.root))
            if _amqp_ready(self.port) and (not self.tls or _listening(self.tls_port)):
                return self
            time.sleep(0.2)
        raise RuntimeError("rabbitmq-server not ready in %ds" % timeout)

    def _kill(self, attr):
        pid = getattr(self, attr)
        if pid:
            # its whole session: the script, beam and its helpers (erl_child_setup)
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _wait_gone(pid)
            setattr(self, attr, 0)
            self._save()

    def stop_server(self):
        self._kill("pid")

    def _ctl(self, *args):
        """rabbitmqctl ARGS... against this broker; its completed process."""
        env = self._env()
        return subprocess.run([CTL, "-n", env["RABBITMQ_NODENAME"]] + list(args), env=env,
                              capture_output=True, text=True, timeout=60, check=True)

    def queues(self):
        """{name: (messages ready, unacknowledged)}, asked of the broker itself."""
        out = self._ctl("list_queues", "-q", "--no-table-headers", "name", "messages_ready",
                        "messages_unacknowledged")
        got = {}
        for line in out.stdout.splitlines():
            f = line.split()
            if len(f) == 3:
                got[f[0]] = (int(f[1]), int(f[2]))
        return got

    def sync_definitions(self):
        """Have the broker write its definitions (Mnesia's transaction log) to
        disk now. A queue declared in the last moment before a crash is
        otherwise lost with its messages: Mnesia writes its log lazily, and
        what the broker recovers is only the queues it finds there. runnerd
        declares its queues when it starts, long before any crash that
        matters; a test that declares one and crashes the broker a moment
        later must first do what time would have done."""
        self._ctl("eval", "mnesia:sync_log().")

    def restart(self):
        """A crash (SIGKILL of the whole broker) and a start on the same data."""
        self.sync_definitions()
        self.stop_server()
        return self.start()

    def stop(self):
        self.stop_server()
        self._kill("epmd_pid")


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _amqp_ready(port):
    """The broker answers the AMQP 0-9-1 header with its connection.start."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"AMQP\x00\x00\x09\x01")
            data = s.recv(7)
            return len(data) == 7 and data[0] == 1
    except OSError:
        return False


def main(argv):
    if len(argv) >= 2 and argv[0] == "restart":
        Broker(argv[1]).restart()
        return 0
    if len(argv) >= 2 and argv[0] == "queues":
        for name, (ready, unacked) in sorted(Broker(argv[1]).queues().items()):
            print("%s ready=%d unacked=%d" % (name, ready, unacked))
        return 0
    if len(argv) >= 4 and argv[0] == "run" and argv[2] == "--":
        if not available():
            print("rabbitmq: rabbitmq-server is not installed: skipped", file=sys.stderr)
            return 77
        root = argv[1]
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        b = Broker(root, tls=True)
        try:
            b.start()
            env = dict(os.environ)
            env["RUNNERD_TEST_AMQP_URI"] = b.uri
            env["RUNNERD_TEST_AMQPS_URI"] = b.uri_tls
            env["RUNNERD_TEST_AMQP_CA"] = b.ca_file
            env["RUNNERD_TEST_AMQP_OTHER_CA"] = b.other_ca_file
            env["RUNNERD_TEST_AMQP_RESTART"] = "%s %s restart %s" % (
                sys.executable, os.path.abspath(__file__), root)
            env["RUNNERD_TEST_AMQP_QUEUES"] = "%s %s queues %s" % (
                sys.executable, os.path.abspath(__file__), root)
            return subprocess.call(argv[3:], env=env)
        finally:
            Broker(root).stop()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
