#!/usr/bin/env python3
"""End-to-end: runnerd's metrics listener (metrics.listen) as Prometheus
and an operator's probe see it. The real runnerd against ghsim with the
local provider; `promtool check metrics` on /metrics; a real Prometheus
(Debian's, our own process with its own config and data dir on a free
port of 127.0.0.1, stopped by pid) scrapes runnerd and its query API must
return the pool's series with their values; /healthz is 200 while passes
succeed and 503 with a JSON reason once GitHub has failed for more than
three reconcile intervals; a scrape while a pass is stuck (ghsim stopped
with SIGSTOP) answers at once."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import BIN, Env, NotRun, free_port, main, prom_sample, stop_process, wait_until  # noqa: E402

SMALL = {"name": "small", "labels": ["small"], "min_idle": 2, "max": 4}


def http(method, url, timeout=5):
    """(status, headers, body text) of one request; HTTP errors are answers too."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def metrics_env(name, **opts):
    env = Env(name, [SMALL], **opts)
    env.metrics_port = free_port()
    env.metrics_listen = "127.0.0.1:%d" % env.metrics_port
    env.write_config()
    return env


def base(env):
    return "http://127.0.0.1:%d" % env.metrics_port


sample = prom_sample


def need(tool):
    path = shutil.which(tool)
    if not path:
        raise NotRun("%s is not installed (Debian package prometheus; scripts/deps.sh installs it)" % tool)
    return path


class Prometheus:
    """Our own Prometheus: its own config and data dir, 127.0.0.1, a free port."""

    def __init__(self, workdir, target):
        self.port = free_port()
        self.dir = os.path.join(workdir, "prometheus")
        os.makedirs(os.path.join(self.dir, "data"))
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: runnerd\n    static_configs:\n"
                    "      - targets: ['%s']\n" % target)
        self.log = os.path.join(self.dir, "prometheus.log")
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [need("prometheus"), "--config.file=" + self.config,
                 "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                 "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)
        wait_until(lambda: http("GET", self.url("/-/ready"), timeout=2)[0] == 200, 60,
                   "prometheus ready", retry=(OSError,))

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def query(self, q):
        status, _, body = http("GET", self.url("/api/v1/query?query=" + urllib.parse.quote(q)))
        assert status == 200, body
        j = json.loads(body)
        assert j["status"] == "success", j
        return j["data"]["result"]

    def stop(self):
        stop_process(self.proc, signal.SIGTERM, 15)


def test_metrics_promtool_and_a_real_prometheus():
    promtool = need("promtool")
    need("prometheus")
    env = metrics_env("prom")
    prom = None
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle runners")
        # a pass after they came online has published them
        env.wait(lambda: sample(http("GET", base(env) + "/metrics")[2],
                                'runnerd_runners{flavor="small",github_state="idle",cloud_state="active"}') == 2,
                 20, "2 idle active runners in /metrics")
        status, headers, text = http("GET", base(env) + "/metrics")
        assert status == 200
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers["Content-Type"]
        p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
            "promtool check metrics: %s %s" % (p.stdout, p.stderr)
        assert sample(text, 'runnerd_runners_desired{flavor="small"}') == 2
        assert sample(text, 'runnerd_build_info{version="0.1.0"}') == 1
        assert sample(text, 'runnerd_creates_total{provider="local",flavor="small",result="ok"}') >= 2
        assert sample(text, 'runnerd_provider_calls_total{provider="local",operation="list"}') >= 1
        # routes are templated paths, never the repository's name
        assert 'route="/repos/{owner}/{repo}/actions/runners",method="GET",status="200"' in text \
            or 'route="/repos/{owner}/{repo}/actions/runners",method="GET",status="304"' in text, text
        assert "octo/hello" not in text
        assert sample(text, 'runnerd_github_rate_limit_remaining{resource="core"}') is not None
        assert sample(text, "runnerd_pass_duration_seconds_count") >= 1
        # reactive mode is off (no intake): its counters are there at 0, status has no WAITING
        assert sample(text, 'runnerd_webhook_refusals_total{status="401"}') == 0
        assert sample(text, 'runnerd_jobs_waiting{flavor="small"}') == 0
        assert env.status()["reactive"] is False
        assert "WAITING" not in env.run("status").stdout
        # HEAD, 404 and 405
        assert http("HEAD", base(env) + "/metrics")[0] == 200
        assert http("GET", base(env) + "/nope")[0] == 404
        s, h, _ = http("POST", base(env) + "/metrics")
        assert s == 405 and "GET" in h.get("Allow", ""), (s, dict(h))

        prom = Prometheus(env.tmp, "127.0.0.1:%d" % env.metrics_port)

        def query_value(q):
            r = prom.query(q)
            return float(r[0]["value"][1]) if len(r) == 1 else None

        wait_until(lambda: query_value('runnerd_runners{flavor="small",github_state="idle",'
                                       'cloud_state="active"}') == 2, 30, "Prometheus sees 2 idle runners",
                   interval=0.5, retry=(OSError, ValueError, KeyError, AssertionError))
        series = prom.query("runnerd_runners")
        # every flavor x GitHub state x cloud state, scraped from runnerd
        assert len(series) == 5 * 6, len(series)
        by = {(s["metric"]["github_state"], s["metric"]["cloud_state"]): float(s["value"][1]) for s in series}
        assert by[("idle", "active")] == 2 and sum(by.values()) == 2, by
        assert all(s["metric"]["job"] == "runnerd" and s["metric"]["flavor"] == "small" for s in series)
        assert query_value('runnerd_runners_desired{flavor="small"}') == 2
        assert query_value('up{job="runnerd"}') == 1
        assert query_value("sum(runnerd_creates_total)") >= 2
        # a histogram Prometheus can take a quantile of (of the buckets as they are: rate()
        # needs more than the few seconds this test scrapes)
        p50 = query_value("histogram_quantile(0.5, sum by (le) (runnerd_pass_duration_seconds_bucket))")
        assert p50 is not None and 0 < p50 <= 300, p50
    finally:
        if prom:
            prom.stop()
        env.close()


def healthz(env):
    status, _, body = http("GET", base(env) + "/healthz")
    return status, json.loads(body)


def test_healthz_and_a_scrape_during_a_stuck_pass():
    # 3 reconcile intervals = 6 s; GitHub calls give up within 2 x 1 s
    env = metrics_env("healthz", github_opts={"request_timeout": "1s", "connect_timeout": "1s"})
    try:
        env.serve()
        env.wait(lambda: healthz(env)[1]["status"] == "ok", 30, "/healthz ok")
        s, j = healthz(env)
        assert s == 200 and j["last_error"] == "" and j["window_s"] == 6, j

        # GitHub fails every runner list: no pass succeeds; > 3 intervals later, 503
        env.gh("POST", "/_ghsim/faults", {"match": "/actions/runners", "method": "GET", "status": 500,
                                          "count": -1})
        t0 = time.time()
        env.wait(lambda: healthz(env)[0] == 503, 40, "/healthz 503")
        assert time.time() - t0 >= 5, "503 before 3 intervals had passed"
        s, j = healthz(env)
        assert j["status"] == "unhealthy" and "3 reconcile intervals" in j["reason"], j
        assert "500" in j["last_error"] or "list runners" in j["last_error"], j
        text = http("GET", base(env) + "/metrics")[2]
        assert sample(text, 'runnerd_passes_total{result="failed"}') >= 1
        assert 'method="GET",status="500"' in text
        env.gh("DELETE", "/_ghsim/faults")
        env.wait(lambda: healthz(env)[0] == 200, 30, "/healthz back to 200")

        # a pass stuck on a GitHub that does not answer: scrapes do not wait for it
        env.ghsim.proc.send_signal(signal.SIGSTOP)
        try:
            rec = subprocess.Popen([BIN, "reconcile", "-c", env.config], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            worst = 0.0
            for _ in range(10):
                t = time.time()
                s, _, text = http("GET", base(env) + "/metrics", timeout=5)
                worst = max(worst, time.time() - t)
                assert s == 200 and "runnerd_runners{" in text
                t = time.time()
                assert healthz(env)[0] in (200, 503)
                worst = max(worst, time.time() - t)
                time.sleep(0.1)
            assert worst < 0.5, "a scrape waited %.2fs during a stuck pass" % worst
            print("worst scrape or probe during a stuck pass: %.1f ms" % (worst * 1000))
        finally:
            env.ghsim.proc.send_signal(signal.SIGCONT)
        rec.wait(timeout=120)
    finally:
        env.close()


if __name__ == "__main__":
    main([test_metrics_promtool_and_a_real_prometheus, test_healthz_and_a_scrape_during_a_stuck_pass])
