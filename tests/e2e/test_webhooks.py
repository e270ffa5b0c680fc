#!/usr/bin/env python3
"""End-to-end scenarios of reactive mode (issue 10): the real runnerd with
its webhook intake on 127.0.0.1, ghsim, the local provider, `min_idle: 0`.

- the intake, request by request: every workflow_job example of
  @octokit/webhooks-examples (pinned in tests/contract/package.json), signed,
  as sent and moved into our repository; bad and missing signatures,
  duplicates, ping, other events, oversized, malformed, form-encoded, ids
  above 2^53; nothing stored for what is refused; the secret never logged;
- ghsim sends real signed webhooks: each queued job gets a runner of its
  flavor and completes, with job ids above 2^53 end to end; the latency
  from the webhook to the create being issued (the name reserved in the
  store) is measured and printed;
- cancelled jobs leave no runner behind;
- missed webhooks: the job's state is rechecked with GitHub (conditional
  requests), a job GitHub does not know is dropped, a job no runner takes
  is retried with backoff and then dropped;
- a lost queued delivery is found among the hook's failed deliveries and
  redelivered (webhook.hook_id), at no rate-limit cost while nothing changes;
- under concurrent load, deliveries share commits, and every one answered
  202 before a kill -9 is in the state database after it, with its job.
"""

import calendar
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import TOP, Env, free_port, integrity_check, main  # noqa: E402

SECRET = "e2e webhook secret " + uuid.uuid4().hex
EXAMPLES = os.path.join(TOP, ".deps", "npm", "node_modules", "@octokit", "webhooks-examples",
                        "api.github.com", "index.json")
ABOVE_2_53 = 9007199254740993  # 2^53 + 1: a double cannot hold it


def reactive_env(name, flavors, ghsim_args=(), queue_lines=(), webhook_extra=None, **kw):
    port = free_port()
    opts = {"listen": "127.0.0.1:%d" % port, "secret_env": "RUNNERD_E2E_WEBHOOK_SECRET"}
    opts.update(webhook_extra or {})
    env = Env(name, flavors, ghsim_args=ghsim_args, webhook_opts=opts,
              extra_lines=["queue:", "  kind: sqlite"] + list(queue_lines), **kw)
    os.environ["RUNNERD_E2E_WEBHOOK_SECRET"] = SECRET
    env.hook_port = port
    return env


def sign(body, secret=SECRET):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(env, body, event="workflow_job", signature=True, delivery=None, headers=None):
    """POST /webhook: (status, parsed JSON answer or None)."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    h = {"Content-Type": "application/json", "X-GitHub-Event": event,
         "X-GitHub-Delivery": str(uuid.uuid4()) if delivery is None else delivery, "User-Agent": "GitHub-Hookshot/e2e"}
    if signature is True:
        h["X-Hub-Signature-256"] = sign(body)
    elif signature:
        h["X-Hub-Signature-256"] = signature
    h.update(headers or {})
    c = http.client.HTTPConnection("127.0.0.1", env.hook_port, timeout=10)
    try:
        c.request("POST", "/webhook", body=body, headers=h)
        r = c.getresponse()
        data = r.read()
    finally:
        c.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, None


def post_oversized(env, length):
    """Only the head of a POST whose Content-Length is length: the answer
    comes before any of the body is sent."""
    with socket.create_connection(("127.0.0.1", env.hook_port), timeout=10) as c:
        c.sendall(("POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   "X-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: %s\r\n"
                   "X-Hub-Signature-256: sha256=%s\r\nContent-Length: %d\r\n\r\n"
                   % (uuid.uuid4(), "0" * 64, length)).encode())
        head = c.recv(4096).decode(errors="replace")
    return int(head.split(" ", 2)[1])


def get(env, path):
    c = http.client.HTTPConnection("127.0.0.1", env.hook_port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def rows(env, sql):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(env.state, "state.db"), uri=True, timeout=5)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def job_rows(env):
    """{job_id: (flavor, done_at, done_why, attempts)}"""
    return {r[0]: r[1:] for r in rows(env, "SELECT job_id, flavor, done_at, done_why, attempts FROM jobs")}


def n_deliveries(env):
    return rows(env, "SELECT count(*) FROM deliveries")[0][0]


def job_payload(action, job_id, labels, repo="octo/hello", run_id=7, status=None):
    return {"action": action, "repository": {"full_name": repo},
            "workflow_job": {"id": job_id, "run_id": run_id, "status": status or action, "labels": labels}}


def wait_intake(env):
    env.wait(lambda: get(env, "/healthz")[0] == 200, 20, "the webhook intake")


def scrape(env):
    c = http.client.HTTPConnection("127.0.0.1", env.metrics_port, timeout=10)
    try:
        c.request("GET", "/metrics")
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def samples(text):
    """{series: value} of exposition text."""
    return {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1])
            for ln in text.splitlines() if ln and not ln.startswith("#")}


def check_metrics(env, want):
    """/metrics shows every series of want at its value (gauges of the snapshot: once a pass
    counted them), and `promtool check metrics` finds nothing when promtool is installed."""
    got = {}

    def ok():
        st, text = scrape(env)
        got.update(samples(text), _text=text)
        return st == 200 and all(got.get(k) == v for k, v in want.items())
    try:
        env.wait(ok, 20, "the reactive metrics")
    except AssertionError:
        raise AssertionError("metrics: %s" % {k: got.get(k) for k in want})
    promtool = shutil.which("promtool")
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=got["_text"], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
            "promtool check metrics: %s %s" % (p.stdout, p.stderr)


def test_intake_requests():
    env = reactive_env("wh-intake", [{"name": "small", "labels": ["small"], "min_idle": 0, "max": 2},
                                     {"name": "k8s", "labels": ["k8s"], "min_idle": 0, "max": 1}])
    env.metrics_port = free_port()
    env.metrics_listen = "127.0.0.1:%d" % env.metrics_port
    env.write_config()
    try:
        env.serve()
        wait_intake(env)
        env.run("drain")  # nothing is created: this scenario is about what is stored
        st, body = get(env, "/healthz")
        assert st == 200 and json.loads(body)["queue"] == "sqlite", (st, body)
        # each thread named for what it does (top -H, perf, gdb show it)
        names = set()
        for t in os.listdir("/proc/%d/task" % env.daemon.pid):
            with open("/proc/%d/task/%s/comm" % (env.daemon.pid, t)) as f:
                names.add(f.read().strip())
        assert {"pass-loop", "observe-loop", "commit", "commit-report"} <= names, names
        assert any(n.startswith("http-loop-") for n in names), names

        # every workflow_job example GitHub publishes
        examples = [e for e in json.load(open(EXAMPLES)) if e["name"] == "workflow_job"][0]["examples"]
        assert len(examples) >= 8, len(examples)
        for ex in examples:  # as sent: not a repository of ours
            st, ans = post(env, ex)
            assert st == 200 and ans == {"ignored": "not a repository of github.path"}, (st, ans)
        assert job_rows(env) == {}
        expect = {}
        for ex in examples:  # the same, in our repository
            ex = json.loads(json.dumps(ex))
            ex["repository"]["full_name"] = "octo/hello"
            st, ans = post(env, ex)
            wj, action = ex["workflow_job"], ex["action"]
            routed = "k8s" in wj["labels"]
            if action == "queued" and routed:
                assert st == 202 and ans == {"queued": True}, (action, st, ans)
                expect[wj["id"]] = ("k8s", 0, "", 0)
            elif action == "queued":
                assert st == 200 and "no flavor" in ans["ignored"], (action, st, ans)
            elif action in ("in_progress", "completed"):
                assert st == 200 and ans == {"done": True}, (action, st, ans)
            else:
                assert action == "waiting" and st == 200 and "ignored" in ans, (action, st, ans)
        got = job_rows(env)
        # the queued one (status "waiting": the action counts) waits for flavor k8s, id exact;
        # the "waiting" that came after it changed nothing
        assert got[12877621891] == ("k8s", 0, "", 0), got
        for jid in (2832853555, 289782451, 14541957942):  # in_progress/completed: tombstones
            assert got[jid][1] > 0 and got[jid][2] in ("in_progress", "completed"), got[jid]

        # refused: nothing stored
        before = (n_deliveries(env), job_rows(env))
        good = job_payload("queued", 4242, ["small"])
        body = json.dumps(good).encode()
        assert post(env, body, signature=None)[0] == 401
        assert post(env, body, signature="sha256=" + "0" * 64)[0] == 401
        assert post(env, body, signature=sign(body, "another secret"))[0] == 401
        assert post(env, body, signature=sign(body)[:-2])[0] == 401
        assert post(env, body + b" ", signature=sign(body))[0] == 401
        assert post(env, b"{not json", signature=True)[0] == 400
        assert post(env, job_payload("queued", 0, ["small"]))[0] == 400
        assert post(env, {"action": "queued", "workflow_job": {"id": 5}})[0] == 400
        assert post(env, body, headers={"Content-Type": "application/x-www-form-urlencoded"})[0] == 415
        assert post(env, body, delivery="")[0] == 400
        assert post_oversized(env, (1 << 20) + 1) == 413
        # at the cap itself the body is read (and refused here for its signature)
        assert post(env, b" " * (1 << 20), signature=sign(b"x"))[0] == 401
        assert (n_deliveries(env), job_rows(env)) == before

        # ping, other events
        assert post(env, {"zen": "Design for failure.", "hook_id": 1}, event="ping") == (200, {"pong": True})
        st, ans = post(env, {"ref": "refs/heads/main"}, event="push")
        assert st == 202 and ans == {"ignored": "event"}, (st, ans)

        # a job id above 2^53, exact in the store; its duplicate delivery is ignored
        did = str(uuid.uuid4())
        big_id = json.dumps(job_payload("queued", ABOVE_2_53, ["Self-Hosted", "SMALL"],
                                        run_id=ABOVE_2_53 + 2)).encode()
        assert post(env, big_id, delivery=did) == (202, {"queued": True})
        assert post(env, big_id, delivery=did) == (200, {"duplicate": True})
        assert job_rows(env)[ABOVE_2_53] == ("small", 0, "", 0), job_rows(env)
        assert rows(env, "SELECT run_id FROM jobs WHERE job_id = %d" % ABOVE_2_53) == [(ABOVE_2_53 + 2,)]
        # the same job in another delivery: known already
        assert post(env, big_id) == (200, {"known": True})
        # a completed arriving before its queued: the late queued does not revive it
        assert post(env, job_payload("completed", ABOVE_2_53 + 10, ["small"]))[0] == 200
        assert post(env, job_payload("queued", ABOVE_2_53 + 10, ["small"])) == (200, {"known": True})
        # what the intake counted, by reason
        st, body = get(env, "/healthz")
        h = json.loads(body)
        assert st == 200 and h["status"] == "ok", (st, h)
        assert h["unauthorized"] == 6 and h["malformed"] == 5 and h["duplicates"] == 1, h
        assert h["pings"] == 1 and h["other_events"] == 1, h
        assert h["ignored"]["other-repository"] == len(examples), h
        assert h["ignored"]["no-flavor"] == 1 and h["ignored"]["action"] == 1, h
        assert h["queued"] == 2 and h["known"] == 2, h
        # every request answered was timed; those the group commit wrote, step by step
        assert h["answered"] == h["deliveries"] and 0 < h["staged"] < h["answered"], h
        assert h["answer_us"] >= sum(h["stage_us"].values()) > 0, h
        assert SECRET not in env.log(), "the webhook secret is in the log"
        assert "webhook intake on 127.0.0.1:%d" % env.hook_port in env.log()
        # the same counts on /metrics, and the jobs waiting per flavor as the last pass saw them
        check_metrics(env, {
            'runnerd_webhook_refusals_total{status="401"}': 6,
            'runnerd_webhook_refusals_total{status="400"}': 4,
            'runnerd_webhook_refusals_total{status="415"}': 1,
            'runnerd_webhook_deliveries_total{event="workflow_job",result="queued"}': 2,
            'runnerd_webhook_deliveries_total{event="workflow_job",result="known"}': 2,
            'runnerd_webhook_deliveries_total{event="workflow_job",result="duplicate"}': 1,
            'runnerd_webhook_deliveries_total{event="ping",result="ok"}': 1,
            'runnerd_webhook_deliveries_total{event="other",result="ignored"}': 1,
            'runnerd_reactive_jobs_routed_total': 2,
            'runnerd_reactive_jobs_ignored_total{reason="other-repository"}': len(examples),
            'runnerd_reactive_jobs_ignored_total{reason="no-flavor"}': 1,
            'runnerd_reactive_jobs_dropped_total{reason="retries"}': 0,
            'runnerd_reactive_jobs_listed_total': 0,
            'runnerd_jobs_waiting{flavor="small"}': 1,
            'runnerd_jobs_waiting{flavor="k8s"}': 1,
            'runnerd_webhook_answer_duration_seconds_count': h["deliveries"],
            'runnerd_webhook_answer_duration_seconds_bucket{le="+Inf"}': h["deliveries"],
        })
        # status shows them too: a WAITING column, and waiting per flavor in --json
        st = env.status()
        assert st["reactive"] is True, st
        c = env.flavor_counts(st)
        assert c["small"]["waiting"] == 1 and c["k8s"]["waiting"] == 1, c
        text = env.run("status").stdout.splitlines()
        head = text.index(next(ln for ln in text if ln.startswith("FLAVOR")))
        assert text[head].split()[-1] == "WAITING", text
        assert {ln.split()[0]: ln.split()[-1] for ln in text[head + 1:head + 3]} == {"small": "1", "k8s": "1"}, \
            text
        # with no daemon, a pass run by a command counts the queued jobs too
        env.stop()
        env.run("resume")
        c = env.flavor_counts()
        assert c["small"]["desired"] == 1 and c["k8s"]["desired"] == 1, c
        assert c["small"]["waiting"] == 1 and c["k8s"]["waiting"] == 1, c
        env.run("flush", "--busy")
    finally:
        env.close()


class RowWatch:
    """Polls the instances table every millisecond: when each name first appeared."""

    def __init__(self, env):
        self.env, self.first, self.stop = env, {}, False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        path = os.path.join(self.env.state, "state.db")
        while not self.stop:
            try:
                db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=1)
                try:
                    while not self.stop:
                        now = time.time()
                        for (name,) in db.execute("SELECT name FROM instances"):
                            self.first.setdefault(name, now)
                        time.sleep(0.001)
                finally:
                    db.close()
            except sqlite3.Error:
                time.sleep(0.01)

    def close(self):
        self.stop = True
        self.t.join(5)


def log_time(env, pattern):
    """The time (epoch s) of the first log line matching pattern, or None."""
    for ln in env.log().splitlines():
        if re.search(pattern, ln):
            ts = ln.split(" ", 1)[0]
            return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + int(ts[20:23]) / 1000.0
    return None


def test_webhook_jobs_get_runners():
    flavors = [{"name": "small", "labels": ["small"], "min_idle": 0, "max": 3},
               {"name": "large", "labels": ["large"], "min_idle": 0, "max": 2}]
    env = reactive_env("wh-jobs", flavors, ghsim_args=["--job-id-base", str(ABOVE_2_53)],
                       reconcile_interval="10s")  # most passes here are ones a webhook asked for
    watch = None
    try:
        env.serve()
        wait_intake(env)
        env.gh("POST", "/_ghsim/webhook", {"url": "http://127.0.0.1:%d/webhook" % env.hook_port,
                                           "secret": SECRET})
        watch = RowWatch(env)
        time.sleep(1)
        assert env.instances() == [] and env.gh_runners() == []
        # one job at a time: the latency of each, webhook received -> create issued
        lat, ids = [], []
        for labels in (["self-hosted", "small"], ["large"], ["SMALL", "linux", "x64"], ["small"],
                       ["self-hosted", "Large"]):
            seen = set(watch.first)
            jid = env.queue_job(labels, duration=1)["id"]
            assert jid > ABOVE_2_53
            ids.append((jid, "large" if "large" in [x.lower() for x in labels] else "small"))
            env.wait(lambda: set(watch.first) - seen, 20, "a create for job %d" % jid)
            t_create = min(watch.first[n] for n in set(watch.first) - seen)
            t_hook = env.wait(lambda: log_time(env, r"webhook: job %d .* queued for flavor" % jid), 5,
                              "the webhook of job %d in the log" % jid)
            lat.append((t_create - t_hook) * 1000)
            env.wait(lambda: env.gh("GET", "/_ghsim/jobs/%d" % jid)["status"] == "completed", 60,
                     "job %d completed" % jid)
            # measured on a quiet daemon: a pass under way (the last job's cleanup) would
            # hold the next one, as passes never overlap (see the burst below)
            env.wait(lambda: not env.instances(), 30, "the runner of job %d removed" % jid)
            time.sleep(0.5)
        for jid, flavor in ids:
            j = env.gh("GET", "/_ghsim/jobs/%d" % jid)
            assert j["conclusion"] == "success" and not j["killed"], j
            assert flavor in [x.lower() for x in j["runner_labels"]], (flavor, j["runner_labels"])
        # runnerd stored the ids exactly and marked each job done by its webhooks
        got = job_rows(env)
        for jid, flavor in ids:
            assert got[jid][0] == flavor and got[jid][1] > 0 and got[jid][2] in ("in_progress", "completed"), \
                got[jid]
        # a burst: each job gets a runner and completes
        seen = set(watch.first)
        t0 = time.time()
        burst = [env.queue_job(["small"] if i % 2 else ["large"], duration=1)["id"] for i in range(6)]
        env.wait(lambda: len(set(watch.first) - seen) >= 5, 30, "creates for the burst")
        firsts = sorted(watch.first[n] for n in set(watch.first) - seen)
        print("burst of 6 jobs: first create issued %.1f ms, fifth %.1f ms after the first job was queued" %
              ((firsts[0] - t0) * 1000, (firsts[4] - t0) * 1000))
        env.wait(lambda: all(env.gh("GET", "/_ghsim/jobs/%d" % j)["status"] == "completed" for j in burst),
                 120, "the burst completed")
        # and nothing stays behind once the jobs are done (min_idle 0)
        env.wait(lambda: not env.instances() and not env.gh_runners(), 60, "pools back to zero")
        lat.sort()
        print("webhook -> create issued (ms): p50 %.1f, max %.1f, all %s" %
              (statistics.median(lat), lat[-1], ", ".join("%.1f" % x for x in lat)))
        hooks = env.gh("GET", "/_ghsim/webhooks")
        assert all(d["status"] in (200, 202) for d in hooks), [d for d in hooks if d["status"] not in (200, 202)]
        env.run("drain", "--wait", "--timeout", "60s", timeout=90)
        env.assert_nothing_left()
    finally:
        if watch:
            watch.close()
        env.close()


def test_cancelled_jobs_leave_no_runner():
    env = reactive_env("wh-cancel", [{"name": "small", "labels": ["small"], "min_idle": 0, "max": 3}])
    try:
        env.serve()
        wait_intake(env)
        env.gh("POST", "/_ghsim/webhook", {"url": "http://127.0.0.1:%d/webhook" % env.hook_port,
                                           "secret": SECRET})
        # a job that never finishes on its own, cancelled before or after its runner came
        jids = [env.queue_job(["small"], duration=3600)["id"] for _ in range(3)]
        env.gh("POST", "/_ghsim/jobs/%d/cancel" % jids[0])
        env.wait(lambda: env.instances(), 20, "runners for the jobs")
        for j in jids[1:]:
            env.gh("POST", "/_ghsim/jobs/%d/cancel" % j)
        env.wait(lambda: all(env.gh("GET", "/_ghsim/jobs/%d" % j)["status"] == "completed" for j in jids),
                 20, "the jobs cancelled")
        env.wait(lambda: not env.instances() and not env.gh_runners(), 60, "no runner left")
        time.sleep(3)  # a few passes: none comes back
        assert not env.instances() and not env.gh_runners()
        assert all(r[1] > 0 for r in job_rows(env).values()), job_rows(env)
        env.run("drain", "--wait", "--timeout", "60s", timeout=90)
        env.assert_nothing_left(killed=env.stats()["killed_jobs"])
    finally:
        env.close()


def test_missed_webhooks_are_rechecked():
    env = reactive_env("wh-missed", [{"name": "small", "labels": ["small"], "min_idle": 0, "max": 2}],
                       queue_lines=["  recheck_interval: 2s", "  max_attempts: 2"], reconcile_interval="1s")
    ok = False
    try:
        env.serve()
        wait_intake(env)
        # in_progress and completed never arrive: the recheck finds the job done
        env.gh("POST", "/_ghsim/webhook", {"url": "http://127.0.0.1:%d/webhook" % env.hook_port,
                                           "secret": SECRET, "skip_actions": ["in_progress", "completed"]})
        jid = env.queue_job(["small"], duration=1)["id"]
        env.wait(lambda: env.gh("GET", "/_ghsim/jobs/%d" % jid)["status"] == "completed", 60, "job completed")
        # a recheck while the job still ran (its runner late on a busy machine) finds it
        # in_progress: no longer waiting either
        env.wait(lambda: job_rows(env)[jid][2] in ("in_progress", "completed"), 30,
                 "the recheck found it started or completed")
        assert "queue: job %d is %s (its webhook never came)" % (jid, job_rows(env)[jid][2]) in env.log()
        env.wait(lambda: not env.instances() and not env.gh_runners(), 30, "no runner left")
        # asking again about an unchanged job is a conditional request (304, free)
        assert env.stats()["not_modified"] > 0 or "queue: job" in env.log()

        # a job GitHub does not know: dropped
        ghost = 31_000_000_000_000
        assert post(env, job_payload("queued", ghost, ["small"]))[0] == 202
        env.wait(lambda: job_rows(env)[ghost][2] == "gone", 30, "the unknown job dropped")

        # a job no runner of ours takes (the webhook says "small", the job asks for more):
        # retried with backoff, then dropped after max_attempts runners
        real = env.queue_job(["self-hosted", "gpu-only"], duration=1)["id"]
        assert post(env, job_payload("queued", real, ["small"]))[0] == 202
        env.wait(lambda: job_rows(env)[real][2] == "dropped", 90, "the job no runner takes dropped")
        assert job_rows(env)[real][3] == 2, job_rows(env)[real]
        assert re.search(r"queue: job %d .* still queued after 2 runners were made for it: dropped" % real,
                         env.log()), "no log line for the dropped job"
        env.wait(lambda: not env.instances() and not env.gh_runners(), 30, "no runner left")
        env.run("drain", "--wait", "--timeout", "60s", timeout=90)
        env.assert_nothing_left()
        ok = True
    finally:
        env.close(keep=not ok)


def job_without_its_queued_webhook(env):
    """A job whose queued delivery ghsim never sends (its others it does), run to its end by
    whatever finds it: (its id, seconds from queued to completed)."""
    env.gh("POST", "/_ghsim/webhook", {"url": "http://127.0.0.1:%d/webhook" % env.hook_port, "secret": SECRET,
                                       "skip_actions": ["queued"]})
    t0 = time.time()
    jid = env.queue_job(["small"], duration=1)["id"]
    env.wait(lambda: env.gh("GET", "/_ghsim/jobs/%d" % jid)["status"] == "completed", 60, "job completed")
    return jid, time.time() - t0


def assert_looks_cost_nothing(env, route):
    """Over 7 s of nothing new, GitHub was asked on a route ending in route at least twice,
    and no request counted against the rate limit."""
    before = env.stats()
    time.sleep(7)
    after = env.stats()
    looks = sum(v for k, v in after["by_route"].items() if k.endswith(route)) - \
        sum(v for k, v in before["by_route"].items() if k.endswith(route))
    assert looks >= 2, (before["by_route"], after["by_route"])
    assert after["rate_counted"] - before["rate_counted"] == 0, (before, after)
    return before, after


def test_lost_queued_delivery_is_backfilled():
    env = reactive_env("wh-backfill", [{"name": "small", "labels": ["small"], "min_idle": 0, "max": 2}],
                       webhook_extra={"hook_id": 498765, "backfill_interval": "2s"},
                       reconcile_interval="1h")  # the backfill's own interval paces the passes
    ok = False
    try:
        env.serve()
        wait_intake(env)
        # the queued delivery is lost on the way (GitHub lists it as failed)
        jid, took = job_without_its_queued_webhook(env)
        redelivered = re.findall(r"backfill: delivery (\S+) \(workflow_job queued, failed with 0\) redelivered",
                                 env.log())
        assert len(redelivered) == 1, env.log()[-3000:]
        print("a lost queued delivery: redelivered, the job ran and completed %.1f s after it was queued" % took)
        env.wait(lambda: not env.instances() and not env.gh_runners(), 30, "no runner left")
        # nothing changed since: the backfill's looks (and the passes) cost no rate limit
        assert_looks_cost_nothing(env, "/deliveries")
        assert len(re.findall(r"backfill: delivery .* redelivered", env.log())) == 1
        env.run("drain", "--wait", "--timeout", "60s", timeout=90)
        env.assert_nothing_left()
        ok = True
    finally:
        env.close(keep=not ok)


def test_job_without_webhook_is_found_in_the_runs():
    # no hook_id: nothing can be redelivered; the queued runs are swept every backfill_interval
    env = reactive_env("wh-sweep", [{"name": "small", "labels": ["small"], "min_idle": 0, "max": 2}],
                       webhook_extra={"backfill_interval": "2s"}, reconcile_interval="1h")
    env.metrics_port = free_port()
    env.metrics_listen = "127.0.0.1:%d" % env.metrics_port
    env.write_config()
    ok = False
    try:
        env.serve()
        wait_intake(env)
        # the queued deliveries never come (the job's run stays queued on GitHub)
        jid, took = job_without_its_queued_webhook(env)
        found = re.findall(r"sweep: job (\d+) of \S+ \(run \d+\) is queued on GitHub and no webhook brought "
                           r"it: queued for flavor small", env.log())
        assert found == [str(jid)], env.log()[-3000:]
        print("a job whose queued webhook never came: found in the queued runs, ran and completed "
              "%.1f s after it was queued" % took)
        assert json.loads(get(env, "/healthz")[1])["listed"] == 1
        env.wait(lambda: not env.instances() and not env.gh_runners(), 30, "no runner left")
        # a run whose other job began (a GitHub-hosted one, say) is in progress, not queued
        env.gh("POST", "/_ghsim/runners", {"scope": "repos/octo/hello", "name": "hosted-1", "labels": ["hosted"]})
        hosted = env.queue_job(["hosted"], duration=600)
        env.wait(lambda: env.gh("GET", "/_ghsim/jobs/%d" % hosted["id"])["status"] == "in_progress", 10,
                 "the hosted job began")
        mine = env.gh("POST", "/_ghsim/jobs", {"repo": "octo/hello", "labels": ["small"], "duration": 1,
                                               "run_id": hosted["run_id"]})
        assert mine["run_id"] == hosted["run_id"], mine
        env.wait(lambda: env.gh("GET", "/_ghsim/jobs/%d" % mine["id"])["status"] == "completed", 60,
                 "the job of the run in progress completed")
        assert json.loads(get(env, "/healthz")[1])["listed"] == 2
        check_metrics(env, {"runnerd_reactive_jobs_listed_total": 2})
        env.wait(lambda: not env.instances() and not env.gh_runners(), 30, "no runner left")
        # a job whose webhook came is not taken again from the list
        env.gh("POST", "/_ghsim/webhook", {"url": "http://127.0.0.1:%d/webhook" % env.hook_port, "secret": SECRET})
        j2 = env.queue_job(["small"], duration=3)["id"]
        # nor is one no flavor serves (it stays queued on GitHub)
        other = env.queue_job(["gpu"], duration=1)
        env.wait(lambda: env.gh("GET", "/_ghsim/jobs/%d" % j2)["status"] == "completed", 60, "job 2 completed")
        assert json.loads(get(env, "/healthz")[1])["listed"] == 2
        env.wait(lambda: not env.instances() and not env.gh_runners(), 30, "no runner left")
        time.sleep(3)
        # runs still queued or in progress whose jobs the sweep settled are not read again,
        # and the sweeps' looks (and the passes) cost no rate limit
        before, after = assert_looks_cost_nothing(env, "/actions/runs")
        run_jobs = "GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs"
        assert after["by_route"].get(run_jobs, 0) == before["by_route"].get(run_jobs, 0) > 0, \
            (before["by_route"], after["by_route"])
        assert env.gh("GET", "/_ghsim/jobs/%d" % other["id"])["status"] == "queued"
        assert json.loads(get(env, "/healthz")[1])["listed"] == 2
        for j in (other, hosted):
            env.gh("POST", "/_ghsim/jobs/%d/cancel" % j["id"])
        env.run("drain", "--wait", "--timeout", "60s", timeout=90)
        env.assert_nothing_left()
        ok = True
    finally:
        env.close(keep=not ok)


def test_reload_takes_the_new_secret():
    env = reactive_env("wh-reload", [{"name": "small", "labels": ["small"], "min_idle": 0, "max": 1}])
    secret_file = os.path.join(env.secrets, "webhook-secret")
    del env.webhook_opts["secret_env"]
    env.webhook_opts["secret_file"] = secret_file
    env.write_config()
    try:
        with open(os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(SECRET + "\n")
        env.serve()
        wait_intake(env)
        ping = json.dumps({"zen": "Speak like a human."}).encode()
        assert post(env, ping, event="ping")[0] == 200
        new = "the next secret " + uuid.uuid4().hex
        with open(secret_file, "w") as f:
            f.write(new + "\n")
        since = env.log_size()
        env.daemon.send_signal(signal.SIGHUP)
        env.wait(lambda: "reloaded:" in env.log(since), 20, "the reload")
        # while requests come in: the old secret is refused, the new one taken
        assert post(env, ping, event="ping")[0] == 401
        assert post(env, ping, event="ping", signature=sign(ping, new))[0] == 200
        assert new not in env.log() and SECRET not in env.log()
        env.stop()
    finally:
        env.close()


def test_acknowledged_deliveries_survive_kill9():
    """Deliveries answered 202 under concurrent load are on disk: 8 clients
    post new queued jobs as fast as they are answered (their writes share
    commits: fewer commits than deliveries), runnerd is killed with SIGKILL
    mid-stream, and every delivery it acknowledged, and its job, is in the
    state database afterwards (and the restarted daemon counts the jobs as
    waiting). A 202 is only sent once the delivery is on disk."""
    acknowledged_survive_kill9("flush")


def test_acknowledged_deliveries_survive_kill9_answered_after_write():
    """The same with webhook.answer_after write: a 202 is sent once the
    delivery is written to the intake's journal, the state database's
    commit behind it; a kill -9 loses none of it: what the database lacks
    at the kill is in the journal, and the restart writes it there."""
    acknowledged_survive_kill9("write")


def acknowledged_survive_kill9(answer_after):
    env = reactive_env("wh-kill9", [{"name": "small", "labels": ["small"], "min_idle": 0, "max": 2}],
                       webhook_extra={"answer_after": answer_after}, reconcile_interval="10m")
    acked, lock, stop = {}, threading.Lock(), threading.Event()
    counts = {"posted": 0, "refused": 0}

    def client(k):
        c = http.client.HTTPConnection("127.0.0.1", env.hook_port, timeout=10)
        i = 0
        while not stop.is_set():
            i += 1
            job_id = ABOVE_2_53 + k * 1_000_000 + i
            body = json.dumps(job_payload("queued", job_id, ["self-hosted", "small"])).encode()
            delivery = str(uuid.uuid4())
            try:
                c.request("POST", "/webhook", body=body, headers={
                    "Content-Type": "application/json", "X-GitHub-Event": "workflow_job",
                    "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sign(body)})
                r = c.getresponse()
                r.read()
            except (OSError, http.client.HTTPException):
                return  # the daemon is gone: what it acknowledged before counts
            with lock:
                counts["posted"] += 1
                if r.status == 202:
                    acked[delivery] = job_id
                else:
                    counts["refused"] += 1

    try:
        env.serve()
        wait_intake(env)
        env.run("drain")  # no runner is made: the jobs stay waiting
        threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(8)]
        for t in threads:
            t.start()
        env.wait(lambda: len(acked) >= 300, 60, "300 deliveries acknowledged")
        health = json.loads(get(env, "/healthz")[1])
        assert health["answer_after"] == answer_after, health
        env.daemon.send_signal(signal.SIGKILL)  # mid-stream: clients are waiting for answers
        env.daemon.wait(10)
        env.daemon = None
        stop.set()
        for t in threads:
            t.join(15)
        with lock:
            acked_now = dict(acked)
        assert counts["refused"] == 0, "answers other than 202: %d" % counts["refused"]
        # they shared commits: one fsync for several deliveries
        assert 0 < health["commits"] < health["written"], health
        print("%d deliveries acknowledged before the kill; before it /healthz said %d written in %d commits "
              "(at most %d in one)" % (len(acked_now), health["written"], health["commits"], health["commit_max"]))
        assert integrity_check(env.state) == "ok"
        if answer_after == "write":
            # what the journal holds goes into the database before the intake listens again
            since = env.log_size()
            in_db = len(rows(env, "SELECT id FROM deliveries"))
            env.serve()
            wait_intake(env)
            env.stop()
            m = re.search(r"webhook journal: (\d+) deliveries answered before the restart", env.log(since))
            print("%d in the database at the kill, %s more from the journal at the restart" %
                  (in_db, m.group(1) if m else "none"))
        deliveries = {r[0] for r in rows(env, "SELECT id FROM deliveries")}
        jobs = {r[0]: r[1:] for r in rows(env, "SELECT job_id, delivery_id, done_at, flavor FROM jobs")}
        lost = [d for d in acked_now if d not in deliveries]
        assert not lost, "%d acknowledged deliveries lost, e.g. %s" % (len(lost), lost[:3])
        lost_jobs = [j for d, j in acked_now.items() if j not in jobs or jobs[j][0] != d]
        assert not lost_jobs, "%d acknowledged jobs lost, e.g. %s" % (len(lost_jobs), lost_jobs[:3])
        assert all(jobs[j][1] == 0 and jobs[j][2] == "small" for j in acked_now.values())
        # the restarted daemon finds them waiting
        env.serve()
        wait_intake(env)
        env.wait(lambda: env.flavor_counts()["small"].get("waiting", 0) >= len(acked_now), 30,
                 "the jobs counted as waiting after the restart")
        env.stop()
    finally:
        stop.set()
        env.close()


def series_total(env, family, having=""):
    """The sum of family's series on /metrics (those whose labels hold having)."""
    return sum(v for k, v in samples(scrape(env)[1]).items() if k.startswith(family) and having in k)


def passes_total(env):
    return series_total(env, "runnerd_passes_total")


def sweeps(env):
    """The providers' sweeps for leftovers so far (their gc calls)."""
    return series_total(env, "runnerd_provider_calls_total", 'operation="gc"')


def reconcile_over_control(env):
    """POST /v1/reconcile on the control socket: answered when its pass ended."""
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(30)
    c.connect(os.path.join(env.state, "control.sock"))
    c.sendall(b"POST /v1/reconcile HTTP/1.1\r\nHost: runnerd\r\nContent-Length: 0\r\n"
              b"Connection: close\r\n\r\n")
    head = c.recv(64)
    while c.recv(65536):
        pass
    c.close()
    assert head.startswith(b"HTTP/1.1 200"), head


def test_burst_passes_are_spaced():
    """Two streams of triggers on a drained manager (its flavor at no room,
    so no runner is made), with no timed pass (reconcile_interval 10m) to
    help. Queued jobs (8 clients posting as fast as they are answered) of a
    flavor with no room ask for a pass within a second, not now: at most
    one a second comes of them, and still the pass after the last delivery
    counts every job (runnerd_jobs_waiting, the last pass's view) within
    2 s. Reconciles asked back to back (8 clients on the control socket)
    start passes merged and spaced: in any span T at most 2 + T / 25 ms,
    however the machine's load breaks the stream up (unspaced, they would
    list the provider and GitHub hundreds of times a second). The webhooks'
    passes leave out the providers' sweep for leftovers (one ran within a
    minute); the reconciles' passes sweep."""
    env = reactive_env("wh-spaced", [{"name": "small", "labels": ["small"], "min_idle": 0, "max": 2}],
                       reconcile_interval="10m")
    env.metrics_port = free_port()
    env.metrics_listen = "127.0.0.1:%d" % env.metrics_port
    env.write_config()
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def client(k):
        c = http.client.HTTPConnection("127.0.0.1", env.hook_port, timeout=10)
        i = 0
        while not stop.is_set():
            i += 1
            body = json.dumps(job_payload("queued", ABOVE_2_53 + k * 1_000_000 + i,
                                          ["self-hosted", "small"])).encode()
            c.request("POST", "/webhook", body=body, headers={
                "Content-Type": "application/json", "X-GitHub-Event": "workflow_job",
                "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": sign(body)})
            r = c.getresponse()
            r.read()
            assert r.status == 202, r.status
            with lock:
                acked.append(1)

    def reconciler():
        while not stop.is_set():
            reconcile_over_control(env)
            with lock:
                acked.append(1)

    def stream(target, seconds):
        stop.clear()
        del acked[:]
        threads = [threading.Thread(target=target, args=(k,) if target is client else (), daemon=True)
                   for k in range(8)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(30)
        return len(acked)

    try:
        env.serve()
        wait_intake(env)
        env.run("drain")  # no runner is made: the jobs stay waiting
        env.wait(lambda: passes_total(env) >= 1, 20, "a first pass")
        time.sleep(0.2)
        reconcile_over_control(env)  # a pass that ended, and swept: nothing asked is pending
        before, t0, swept = passes_total(env), time.monotonic(), sweeps(env)
        assert swept >= 1, swept
        n = stream(client, 3)
        assert n >= 200, "only %d deliveries in 3 s" % n
        env.wait(lambda: samples(scrape(env)[1]).get('runnerd_jobs_waiting{flavor="small"}') == n, 2,
                 "a pass that counts all %d jobs" % n)
        passes, elapsed = passes_total(env) - before, time.monotonic() - t0
        print("%d deliveries for a flavor with no room: %d passes in %.2f s (at most %d allowed)" %
              (n, passes, elapsed, elapsed + 2))
        assert 1 <= passes <= elapsed + 2, (passes, elapsed)
        # the passes webhooks alone asked for left out the sweep for leftovers (one ran just now)
        assert sweeps(env) == swept, (sweeps(env), swept, passes)

        before, t0, swept = passes_total(env), time.monotonic(), sweeps(env)
        n = stream(reconciler, 2)
        passes, elapsed = passes_total(env) - before, time.monotonic() - t0
        # what an operator asks for sweeps (but a webhooks' pass left over from the stream before)
        assert passes - 1 <= sweeps(env) - swept <= passes, (sweeps(env) - swept, passes)
        print("%d reconciles asked back to back: %d passes in %.2f s (at most %d allowed)" %
              (n, passes, elapsed, elapsed / 0.025 + 3))
        assert n >= 20, "only %d reconciles in 2 s" % n
        assert 2 <= passes <= elapsed / 0.025 + 3, (passes, elapsed)
        # merged: the 8 clients shared passes
        assert passes < n, (passes, n)
        env.stop()
    finally:
        stop.set()
        env.close()


if __name__ == "__main__":
    main([test_intake_requests, test_webhook_jobs_get_runners, test_cancelled_jobs_leave_no_runner,
          test_missed_webhooks_are_rechecked, test_lost_queued_delivery_is_backfilled,
          test_job_without_webhook_is_found_in_the_runs,
          test_reload_takes_the_new_secret, test_acknowledged_deliveries_survive_kill9,
          test_acknowledged_deliveries_survive_kill9_answered_after_write, test_burst_passes_are_spaced])
