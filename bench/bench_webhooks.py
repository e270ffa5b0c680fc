#!/usr/bin/env python3
"""Reactive mode's latencies (a benchmark, not a test: it prints, it does not
judge): the real runnerd with its webhook intake, ghsim sending signed
webhooks, the local provider.

1. webhook received -> create issued (the runner's name reserved in the
   store, the first durable step of a create), one job at a time on a quiet
   daemon (`min_idle: 0`), N jobs: p50 and p99 (target: p99 < 10 ms), with
   `webhook.answer_after` flush (the default) and write. "Received" is the
   intake's log line of the queued job, which comes once the job is in the
   state database (with write, once the journal's thread wrote it there);
   so with write the journal's hop to that thread and its commit are left
   out, and step 2 is the end-to-end figure;
2. job wait, queued -> in_progress as ghsim saw it, N jobs one after the
   other with `min_idle: 0` (every runner made for its job) and with a warm
   pool (`min_idle: 2`): p50 and p95.

    bench_webhooks.py [N]     (default 50)
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
from test_webhooks import SECRET, RowWatch, log_time, reactive_env, wait_intake  # noqa: E402


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def job(env, jid):
    return env.gh("GET", "/_ghsim/jobs/%d" % jid)


def hook(env):
    env.gh("POST", "/_ghsim/webhook", {"url": "http://127.0.0.1:%d/webhook" % env.hook_port, "secret": SECRET})


def create_latency(n, answer_after="flush"):
    env = reactive_env("bench-wh-create", [{"name": "small", "labels": ["small"], "min_idle": 0, "max": 2}],
                       reconcile_interval="10m", webhook_extra={"answer_after": answer_after})
    watch = None
    lat = []
    try:
        env.serve()
        wait_intake(env)
        hook(env)
        watch = RowWatch(env)
        for _ in range(n):
            seen = set(watch.first)
            jid = env.queue_job(["small"], duration=0)["id"]
            env.wait(lambda: set(watch.first) - seen, 20, "a create for job %d" % jid)
            t_create = min(watch.first[x] for x in set(watch.first) - seen)
            t_hook = env.wait(lambda: log_time(env, r"webhook: job %d .* queued for flavor" % jid), 5, "webhook")
            lat.append((t_create - t_hook) * 1000)
            env.wait(lambda: job(env, jid)["status"] == "completed", 60, "job %d" % jid)
            env.wait(lambda: not env.instances(), 30, "runner removed")
            time.sleep(0.3)
    finally:
        if watch:
            watch.close()
        env.close()
    print("webhook received -> create issued, answer_after %s, %d jobs one at a time: p50 %.1f ms, p99 %.1f ms, "
          "max %.1f ms (target p99 < 10 ms)" % (answer_after, n, pct(lat, 50), pct(lat, 99), max(lat)))


def job_wait(n, min_idle):
    env = reactive_env("bench-wh-wait%d" % min_idle,
                       [{"name": "small", "labels": ["small"], "min_idle": min_idle, "max": 4}],
                       reconcile_interval="10m")
    waits = []
    try:
        env.serve()
        wait_intake(env)
        hook(env)
        if min_idle:
            env.wait(lambda: env.idle_count() == min_idle, 60, "a warm pool")
        for _ in range(n):
            jid = env.queue_job(["small"], duration=0)["id"]
            j = env.wait(lambda: job(env, jid) if job(env, jid)["started_at"] else None, 60, "job %d" % jid)
            waits.append(j["started_at"] - j["created_at"])
            env.wait(lambda: job(env, jid)["status"] == "completed", 60, "job %d" % jid)
            if min_idle:  # the pool back to its size before the next job
                env.wait(lambda: env.idle_count() == min_idle, 60, "the pool refilled")
    finally:
        env.close()
    print("job wait (queued -> in_progress), %d jobs, min_idle %d: p50 %.2f s, p95 %.2f s" %
          (n, min_idle, pct(waits, 50), pct(waits, 95)))


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    create_latency(n)
    create_latency(n, "write")
    job_wait(n, 0)
    job_wait(n, 2)
