#!/usr/bin/env python3
"""End-to-end: two runnerd (managers e2ea and e2eb) share one RabbitMQ
(queue.kind amqp, tests/lib/rabbitmq.py: 127.0.0.1, free ports, its own
dirs, stopped by pid) and one ghsim, whose signed webhooks go to e2ea; e2ea
publishes, both consume. A burst of 23 jobs:

- every job is served exactly once (one runner ran it, to success), and
  both managers served some;
- e2ea (drained: it holds messages and serves none) is killed (-9) mid-burst
  holding messages: they go to e2eb; e2ea comes back, resumes and cleans up
  after itself;
- the broker restarts mid-burst: /healthz says 503 meanwhile, both managers
  reconnect, nothing is lost; webhooks that come while it is away are
  answered 202 and spooled by e2ea (/healthz "spooled"), then published;
- at the end nothing is left on either manager, nor in the broker's queue.

A broker that stops answering (SIGSTOP: its sockets stay open, nothing
comes back) does not hold webhooks: each is answered 202 within the push's
budget (4 s) plus its write, its job spooled, and published once the broker
answers again.

And a state change crosses managers: with both managers holding jobs they
do not serve (both drained) and rechecks too far off to matter, the
completed webhooks of every job go to e2ea only, and e2eb lets go of the
jobs it holds within a second (the fanout <prefix>.state).
"""

import http.client
import json
import os
import signal
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Env, NotRun, free_port, main, make_workdir, remove_workdir  # noqa: E402
import rabbitmq  # noqa: E402
from test_webhooks import ABOVE_2_53, SECRET, get, job_payload, sign  # noqa: E402

URI_ENV = "RUNNERD_E2E_AMQP_URI"
FLAVORS = [{"name": "small", "labels": ["small"], "min_idle": 0, "max": 4}]


class SharedGhsim:
    """Another Env's ghsim: usable, but stopped only by its owner."""

    def __init__(self, g):
        self.g = g

    def __getattr__(self, name):
        return getattr(self.g, name)

    def stop(self):
        pass


def amqp_env(name, manager, ghsim_of=None, recheck="3s"):
    port = free_port()
    env = Env(name, FLAVORS, manager=manager, reconcile_interval="2s",
              webhook_opts={"listen": "127.0.0.1:%d" % port, "secret_env": "RUNNERD_E2E_WEBHOOK_SECRET"},
              extra_lines=["queue:", "  kind: amqp", "  uri_env: %s" % URI_ENV,
                           "  recheck_interval: %s" % recheck])
    env.hook_port = port
    if ghsim_of is not None:
        # one GitHub for both managers: this Env's own ghsim goes, the other's serves
        env.ghsim.stop()
        env.ghsim, env.url, env.token_file = SharedGhsim(ghsim_of.ghsim), ghsim_of.url, ghsim_of.token_file
        env.write_config()
    return env


def healthz(env):
    try:
        return get(env, "/healthz")[0]
    except OSError:
        return 0


def job(env, jid):
    return env.gh("GET", "/_ghsim/jobs/%d" % jid)


def broker_queue(broker):
    """(messages ready, unacked) of runnerd.small."""
    return broker.queues()["runnerd.small"]


def two_managers(tag, scenario, recheck="3s"):
    """A broker, e2ea and e2eb on it sharing e2ea's ghsim, whose webhooks go to
    e2ea; scenario(broker, a, b); everything stopped by pid (kept on failure)."""
    if not rabbitmq.available():
        raise NotRun("rabbitmq-server is not installed")
    root = make_workdir("e2e-amqp-%s" % tag)
    broker = rabbitmq.Broker(os.path.join(root, "b"))
    a = b = None
    ok = False
    try:
        broker.start()
        os.environ[URI_ENV] = broker.uri
        os.environ["RUNNERD_E2E_WEBHOOK_SECRET"] = SECRET
        a = amqp_env("amqp-%sa" % tag, "e2ea", recheck=recheck)
        b = amqp_env("amqp-%sb" % tag, "e2eb", ghsim_of=a, recheck=recheck)
        a.serve()
        b.serve()
        for e in (a, b):
            e.wait(lambda: healthz(e) == 200, 20, "the intake of %s healthy" % e.manager)
        assert broker.uri not in a.log() + b.log() and "guest:guest" not in a.log() + b.log()
        a.gh("POST", "/_ghsim/webhook", {"url": "http://127.0.0.1:%d/webhook" % a.hook_port, "secret": SECRET})
        scenario(broker, a, b)
        ok = True
    finally:
        for e in (b, a):
            if e is not None:
                e.close(keep=not ok)
        broker.stop()
        remove_workdir(root, keep=not ok)


def waiting(env):
    return env.flavor_counts()["small"]["waiting"]


def burst(broker, a, b):
    # the first half of the burst; e2ea is killed while it holds some of it. Drained, it
    # makes no runners: what it takes it holds (each in_progress webhook, through the
    # state fanout, lets e2eb ack its own at once, so e2ea gets its share)
    a.run("drain")
    jobs = [a.queue_job(["small"], duration=3)["id"] for _ in range(10)]
    # every queued webhook taken (published) before the kill: ghsim sends them one after
    # another, and one sent to the dead daemon would be lost (no backfill here)
    a.wait(lambda: {d["job_id"] for d in a.gh("GET", "/_ghsim/webhooks")
                    if d["action"] == "queued" and d["status"] == 202} >= set(jobs), 20,
           "the first half's webhooks taken")
    a.wait(lambda: waiting(a) >= 1, 20, "e2ea holding messages")
    a.daemon.send_signal(signal.SIGKILL)
    a.daemon.wait()
    a.daemon = None
    # e2eb serves what e2ea held (its in_progress webhooks went to the dead one: rechecks)
    b.wait(lambda: all(job(b, j)["status"] == "completed" for j in jobs), 90, "the first half served")
    a.serve()
    a.wait(lambda: healthz(a) == 200, 20, "e2ea back")
    a.run("resume")

    # the second half; the broker restarts while it is being served
    jobs2 = [a.queue_job(["small"], duration=3)["id"] for _ in range(10)]
    a.wait(lambda: {d["job_id"] for d in a.gh("GET", "/_ghsim/webhooks")
                    if d["action"] == "queued" and d["status"] == 202} >= set(jobs2), 20,
           "the second half's webhooks taken")
    saw_503 = []
    broker.stop_server()
    a.wait(lambda: saw_503.append(healthz(a)) or 503 in saw_503, 20, "/healthz 503 without the broker")
    # jobs queued while the broker is away: answered 202, spooled by e2ea
    jobs3 = [a.queue_job(["small"], duration=1)["id"] for _ in range(3)]
    a.wait(lambda: {d["job_id"] for d in a.gh("GET", "/_ghsim/webhooks")
                    if d["action"] == "queued" and d["status"] == 202} >= set(jobs3), 20,
           "the webhooks of jobs queued without the broker answered 202")
    assert json.loads(get(a, "/healthz")[1])["spooled"] == 3
    assert a.status()["spooled"] == 3 and b.status()["spooled"] == 0
    assert "SPOOLED: 3 jobs" in a.run("status").stdout
    broker.start()
    for e in (a, b):
        e.wait(lambda: healthz(e) == 200, 30, "%s reconnected" % e.manager)
    a.wait(lambda: json.loads(get(a, "/healthz")[1])["spooled"] == 0, 30, "the spool published")
    jobs += jobs2 + jobs3
    a.wait(lambda: all(job(a, j)["status"] == "completed" for j in jobs), 120, "every job served")

    # exactly once: one runner ran each job, to success, and both managers served
    by = {}
    for j in jobs:
        g = job(a, j)
        assert g["conclusion"] == "success" and g["runner_name"], g
        by.setdefault(g["runner_name"].split("-")[0], []).append(j)
    assert set(by) == {"e2ea", "e2eb"}, by
    assert len({job(a, j)["runner_name"] for j in jobs}) == len(jobs), "a runner ran two jobs"
    print("%d jobs: e2ea served %d, e2eb %d" % (len(jobs), len(by["e2ea"]), len(by["e2eb"])))

    for e in (a, b):
        e.wait(lambda: not e.instances() and not e.gh_runners(), 90, "%s back to zero" % e.manager)
    # every message acknowledged: nothing waits in the broker
    a.wait(lambda: broker_queue(broker) == (0, 0), 30, "the broker's queue empty")
    killed = a.stats()["killed_jobs"]
    for e in (a, b):
        e.run("drain", "--wait", "--timeout", "60s", timeout=90)
        e.assert_nothing_left(killed=killed)


def test_two_managers_share_a_burst():
    two_managers("burst", burst)


def completed_at_a(broker, a, b):
    for e in (a, b):
        e.run("drain")  # no runners: the jobs stay held, waiting
    # 6 jobs, each manager holds at most 4 (its prefetch): e2eb holds 2 or more
    jobs = [a.queue_job(["small"], duration=3)["id"] for _ in range(6)]
    a.wait(lambda: waiting(a) + waiting(b) == 6, 20, "every job held")
    held_b = waiting(b)
    assert held_b >= 2, held_b
    t0 = time.time()
    for j in jobs:  # cancelled: their completed webhooks go to e2ea alone
        a.gh("POST", "/_ghsim/jobs/%d/cancel" % j)
    b.wait(lambda: waiting(b) == 0, 10, "e2eb lets its jobs go")
    took = time.time() - t0
    print("e2eb let go of %d jobs %.3f s after their cancel (the webhooks went to e2ea)" % (held_b, took))
    assert took < 1.0, took
    assert waiting(a) == 0
    assert json.loads(get(a, "/healthz")[1])["done"] == 6
    assert json.loads(get(b, "/healthz")[1])["done"] == 0
    # acknowledged on the broker, not merely forgotten
    a.wait(lambda: broker_queue(broker) == (0, 0), 30, "the broker's queue empty")
    for e in (a, b):
        e.run("resume")
        e.run("drain", "--wait", "--timeout", "60s", timeout=90)
        e.assert_nothing_left()


def test_completed_at_a_frees_b():
    # rechecks 10 minutes off: only the state change can free e2eb's jobs in time
    two_managers("state", completed_at_a, recheck="10m")


def post_queued(env, job_id):
    """(status, seconds) of one signed queued webhook for job_id."""
    body = json.dumps(job_payload("queued", job_id, ["self-hosted", "small"])).encode()
    c = http.client.HTTPConnection("127.0.0.1", env.hook_port, timeout=20)
    t0 = time.monotonic()
    c.request("POST", "/webhook", body=body, headers={
        "Content-Type": "application/json", "X-GitHub-Event": "workflow_job",
        "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": sign(body)})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status, time.monotonic() - t0


def test_silent_broker_does_not_hold_webhooks():
    if not rabbitmq.available():
        raise NotRun("rabbitmq-server is not installed")
    root = make_workdir("e2e-amqp-silent")
    broker = rabbitmq.Broker(os.path.join(root, "b"))
    a = None
    ok = stopped = False
    try:
        broker.start()
        os.environ[URI_ENV] = broker.uri
        os.environ["RUNNERD_E2E_WEBHOOK_SECRET"] = SECRET
        # rechecks far off: these jobs are not ghsim's, and must stay queued
        a = amqp_env("amqp-silent", "e2ea", recheck="10m")
        a.serve()
        a.wait(lambda: healthz(a) == 200, 20, "the intake healthy")
        a.run("drain")  # it holds what it consumes: every job stays in the broker
        status, took = post_queued(a, ABOVE_2_53 + 1)
        assert status == 202, status
        os.killpg(broker.pid, signal.SIGSTOP)
        stopped = True
        results = []
        threads = [threading.Thread(target=lambda k=k: results.append(post_queued(a, ABOVE_2_53 + 10 + k)))
                   for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        print("webhooks with the broker silent: %s" % ", ".join("%d in %.2f s" % r for r in results))
        assert len(results) == 4 and all(st == 202 for st, _ in results), results
        # GitHub gives up after 10 s: the push's budget is 4 s, then the job is spooled
        assert max(took for _, took in results) < 6.5, results
        assert json.loads(get(a, "/healthz")[1])["spooled"] == 4
        os.killpg(broker.pid, signal.SIGCONT)
        stopped = False
        a.wait(lambda: json.loads(get(a, "/healthz")[1])["spooled"] == 0, 60, "the spool published")
        # nothing lost: a publish whose confirm did not come in time may be there twice
        # (published again from the spool; consumers dedupe by job)
        a.wait(lambda: sum(broker_queue(broker)) >= 5, 30, "the five jobs in the broker")
        ok = True
    finally:
        if stopped:
            os.killpg(broker.pid, signal.SIGCONT)
        if a is not None:
            a.close(keep=not ok)
        broker.stop()
        remove_workdir(root, keep=not ok)


if __name__ == "__main__":
    main([test_completed_at_a_frees_b, test_two_managers_share_a_burst,
          test_silent_broker_does_not_hold_webhooks])
