#!/usr/bin/env python3
"""End-to-end load on the control socket (issue 8, finding 5): the real
`runnerd serve` against its own ghsim and the local provider. 200 clients
drip their request heads into the control socket while a burst of 300
requests (status, and reconciles that wait for a pass) arrives: the
drippers are closed by the header deadline, no request is refused at
connect, every one is answered, and `runnerd status` answers within a few
seconds throughout. Then the CLI's bounded timeout when the daemon is
stopped with SIGSTOP (SIGCONT after)."""

import os
import selectors
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import Env, main  # noqa: E402

SMALL = {"name": "small", "labels": ["small"], "min_idle": 1, "max": 1}
DRIPPERS = 200
BURST = 300
HEADER_DEADLINE = 5  # the server's default (src/http/http_internal.h)


def control_sock(env):
    return os.path.join(env.state, "control.sock")


def connect_nowait(path):
    """A connect as curl makes it, without waiting: the socket, or None when
    the daemon's listen queue was full (a client sees a refusal)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(path)
    except BlockingIOError:
        s.close()
        return None
    return s


class Drippers(threading.Thread):
    """n connections that send a request line, then a header line every 2 s,
    never the end of their head. Records how long each stayed open."""

    def __init__(self, path, n):
        super().__init__(daemon=True)
        self.refused = 0
        self.socks = []
        for _ in range(n):
            s = connect_nowait(path)
            if s is None:
                self.refused += 1
                continue
            s.send(b"GET /v1/status HTTP/1.1\r\nHost: runnerd\r\n")
            self.socks.append((s, time.time()))
        self.lived = {}  # index -> seconds until the daemon closed it
        self.stop = threading.Event()

    def closed(self, i, s):
        try:
            while True:
                if not s.recv(4096):
                    return True
        except BlockingIOError:
            return False
        except OSError:
            return True

    def run(self):
        last = 0
        while not self.stop.is_set():
            for i, (s, opened) in enumerate(self.socks):
                if i in self.lived:
                    continue
                if self.closed(i, s):
                    self.lived[i] = time.time() - opened
                elif time.time() - last >= 2:
                    try:
                        s.send(b"X-Drip: x\r\n")
                    except OSError:
                        self.lived[i] = time.time() - opened
            if time.time() - last >= 2:
                last = time.time()
            self.stop.wait(0.1)

    def close(self):
        self.stop.set()
        self.join(5)
        for s, _ in self.socks:
            s.close()


def burst(path, requests, timeout=60):
    """Send every request at once on its own connection; return (refused at
    connect, [status or None], seconds)."""
    t0 = time.time()
    sel = selectors.DefaultSelector()
    refused, status, bufs = 0, [None] * len(requests), {}
    for i, req in enumerate(requests):
        s = connect_nowait(path)
        if s is None:
            refused += 1
            continue
        s.setblocking(True)
        s.sendall(req)
        s.setblocking(False)
        bufs[s] = (i, bytearray())
        sel.register(s, selectors.EVENT_READ)
    while bufs and time.time() - t0 < timeout:
        for key, _ in sel.select(1):
            s = key.fileobj
            i, b = bufs[s]
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if chunk:
                b += chunk
                continue
            if b.startswith(b"HTTP/1.1 "):
                status[i] = int(b[9:12])
            sel.unregister(s)
            s.close()
            del bufs[s]
    for s in list(bufs):
        s.close()
    return refused, status, time.time() - t0


def timed_status(env, *args):
    t0 = time.time()
    p = env.run("status", "--json", *args, check=False, timeout=120)
    return p, time.time() - t0


def test_slow_heads_and_a_burst_do_not_hold_status():
    env = Env("ctlload", [SMALL])
    drippers = None
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 1, 60, "1 idle runner")
        path = control_sock(env)
        p, took = timed_status(env)
        assert p.returncode == 0, p.stderr

        drippers = Drippers(path, DRIPPERS)
        drippers.start()
        time.sleep(1)
        # status while 200 slow heads are connected
        p, took = timed_status(env)
        assert p.returncode == 0 and took < 5, (p.returncode, took, p.stderr)

        # 300 at once: 250 status, 50 reconciles that wait for a pass; the CLI meanwhile
        reqs = [b"GET /v1/status HTTP/1.1\r\nHost: runnerd\r\nConnection: close\r\n\r\n"] * 250
        reqs += [b"POST /v1/reconcile HTTP/1.1\r\nHost: runnerd\r\nContent-Length: 0\r\n"
                 b"Connection: close\r\n\r\n"] * 50
        result = {}
        t = threading.Thread(target=lambda: result.update(r=burst(path, reqs)), daemon=True)
        t.start()
        time.sleep(0.2)
        p, took = timed_status(env)
        assert p.returncode == 0 and took < 5, (p.returncode, took, p.stderr)
        t.join(90)
        refused, status, secs = result["r"]
        print("burst: %d refused at connect, %d/%d answered 200 in %.2fs; CLI status in %.2fs"
              % (refused, status.count(200), len(reqs), secs, took), flush=True)
        assert refused == 0, "%d refused at connect" % refused
        assert status.count(200) == len(reqs), {s: status.count(s) for s in set(status)}

        # every dripper was closed by the header deadline
        env.wait(lambda: len(drippers.lived) == len(drippers.socks), HEADER_DEADLINE + 10,
                 "the slow heads closed")
        longest = max(drippers.lived.values())
        print("drippers: %d refused at connect, the last closed after %.2fs"
              % (drippers.refused, longest), flush=True)
        assert drippers.refused == 0
        assert longest < HEADER_DEADLINE + 3, longest
        p, took = timed_status(env)
        assert p.returncode == 0 and took < 5, (p.returncode, took, p.stderr)
    finally:
        if drippers:
            drippers.close()
        env.close()


def test_cli_timeout_when_the_daemon_is_stopped():
    env = Env("ctlstop", [SMALL])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 1, 60, "1 idle runner")
        path = control_sock(env)
        os.kill(env.daemon.pid, signal.SIGSTOP)
        try:
            for cmd in ("status", "reconcile"):
                t0 = time.time()
                p = env.run(cmd, "--timeout", "3s", check=False, timeout=60)
                took = time.time() - t0
                want = ("runnerd %s: the daemon did not answer within 3s (control socket %s); "
                        "is it stuck? see its log" % (cmd, path))
                assert p.returncode != 0, p.stdout
                assert want in p.stderr, p.stderr
                assert 2.5 < took < 10, took
        finally:
            os.kill(env.daemon.pid, signal.SIGCONT)
        # awake again: answers as before
        p, took = timed_status(env)
        assert p.returncode == 0 and took < 10, (p.returncode, took, p.stderr)
    finally:
        env.close()


if __name__ == "__main__":
    main([test_slow_heads_and_a_burst_do_not_hold_status, test_cli_timeout_when_the_daemon_is_stopped])
