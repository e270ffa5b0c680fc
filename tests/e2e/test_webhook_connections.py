#!/usr/bin/env python3
"""End-to-end: how many deliveries the webhook listener takes at once from
one address (webhook.max_connections_per_address). Behind a reverse proxy
or a load balancer (the README's set-up) every delivery comes from its
address, and GitHub sends a burst's deliveries side by side.

- the default (no per-address limit): 40 connections from 127.0.0.1 held
  open at once, each with a signed delivery all but sent, are all answered
  (the listener's earlier fixed limit of 16 an address closed the other 24
  unanswered: the proxy's 502, GitHub's failed delivery);
- max_connections_per_address: 4: of 6 such connections 4 are answered
  and the other 2 closed unanswered; the listener serves again once they
  are gone.
"""

import json
import os
import socket
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import main  # noqa: E402
from test_webhooks import job_payload, post, reactive_env, sign  # noqa: E402

FLAVORS = [{"name": "small", "labels": ["small"], "min_idle": 0, "max": 1}]


def request(job_id):
    """A signed queued workflow_job delivery for labels no flavor has: 200,
    ignored (its delivery id remembered), nothing made."""
    body = json.dumps(job_payload("queued", job_id, ["self-hosted", "nowhere"])).encode()
    head = ("POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "X-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: %s\r\nX-Hub-Signature-256: %s\r\n"
            "User-Agent: GitHub-Hookshot/e2e\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (uuid.uuid4(), sign(body), len(body)))
    return head.encode() + body


def healthz_closed(env):
    """GET /healthz on a connection the listener closes after its answer,
    read to its end: the status, and the listener counts the connection no
    more (it unlinks a connection before closing it). A keep-alive
    connection's close reaches the listener's loop a moment after the client
    made it, and the count of those held at once would include it."""
    with socket.create_connection(("127.0.0.1", env.hook_port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return int(data.split()[1]) if data.startswith(b"HTTP/1.1 ") else None


def wait_intake(env):
    env.wait(lambda: healthz_closed(env) == 200, 20, "the webhook intake")


def held_at_once(env, n):
    """n connections from 127.0.0.1 open at once, each with a delivery sent
    but for its last byte; then the last bytes. The status of each answer,
    None where the listener closed the connection unanswered."""
    held = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", env.hook_port), timeout=10)
        req = request(7000 + i)
        try:
            s.sendall(req[:-1])
        except OSError:
            pass  # closed at once: over the limit
        held.append((s, req[-1:]))
    time.sleep(0.5)  # every one accepted, or closed, by now
    got = []
    for s, last in held:
        data = b""
        try:
            s.sendall(last)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        s.close()
        got.append(int(data.split()[1]) if data.startswith(b"HTTP/1.1 ") else None)
    return got


def test_no_limit_an_address_by_default():
    env = reactive_env("wh-conns", FLAVORS)
    try:
        env.serve()
        wait_intake(env)
        got = held_at_once(env, 40)
        assert got == [200] * 40, got
    finally:
        env.close()


def test_limit_an_address():
    env = reactive_env("wh-conns-limit", FLAVORS,
                       webhook_extra={"max_connections": 16, "max_connections_per_address": 4})
    try:
        env.serve()
        wait_intake(env)
        got = held_at_once(env, 6)
        assert sorted(got, key=str) == [200] * 4 + [None] * 2, got
        assert post(env, job_payload("queued", 7100, ["self-hosted", "nowhere"]))[0] == 200
    finally:
        env.close()


if __name__ == "__main__":
    main([test_no_limit_an_address_by_default, test_limit_an_address])
