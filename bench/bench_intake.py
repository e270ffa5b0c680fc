#!/usr/bin/env python3
"""The webhook intake's throughput (a benchmark, not a test: it prints, it
does not judge): signed workflow_job deliveries to runnerd's POST /webhook
against nginx answering a static 200 on the same machine, both loaded by
wrk with the same script, the same requests and the same connections, in
one run, and the ratio of the two rates (target >= 0.5).

The payload is GitHub's own queued workflow_job example
(@octokit/webhooks-examples, pinned in tests/contract/package.json), moved
into our repository with the labels of flavor small, about 7 KiB as GitHub
sends it; each request has a new X-GitHub-Delivery and a new job id and is
signed with HMAC-SHA256. Whole requests are prepared here beforehand, N
of them, more than a run at runnerd's rate sends (the answers by status
show it: 202 = first seen, 200 = a duplicate): wrk's Lua cannot sign at
its rate, and a request built in Lua for each send cost wrk more CPU than
nginx spent answering it (its heap churned through fresh pages), which
capped both servers at wrk's rate. So every runnerd request of the first
run takes the first-seen path: signature, parse, routed, the delivery and
its job written to the state database in one transaction shared with the deliveries that arrive meanwhile (the
intake's group commit). A second runnerd run sends deliveries of the
first again (the first DUP_LINES of each thread's): the duplicate path
(signature, the delivery remembered, no parse: 200). Each run lasts
SECONDS; wrk's requests/s, and the p50 and p99 of the latencies measured
(bench_intake.lua takes out the samples wrk makes up for coordinated
omission; wrk's own p99 is printed beside, as "corrected", and the slowest
answer). The first-seen run is made twice, each
time with a fresh runnerd: with webhook.answer_after flush (the 202 once
the commit is fsynced, the default) and write (once its record is written
to the intake's journal, by the HTTP thread itself; a thread of its own
writes the journal into the state database behind it); the duplicates
run follows
the second. runnerd is drained (no runner is made),
as a manager whose flavors are at their max in a burst: a queued job asks
for a pass within a second, not at once (no pass could make its runner).

After each first-seen run it prints what /healthz counted of the commits
(the group commit's, or the journal's applier's: deliveries a commit, a
commit's time: what bounds the first-seen rate with flush)
and where a written delivery's time went inside runnerd (parse, the wait
for the commit under way, its own commit, then to its answer),
the disk's own share of a commit (a 16 KiB write and its fdatasync in the
state dir's filesystem, measured before the runs on the idle machine),
and runnerd's CPU a delivery, after the second runnerd's CPU a request,
and at the end the CPU of one parse of the same body (bench_webhook_parse:
the intake's one-pass scan against the jansson tree it replaced).

nginx runs with a config and prefix of its own in a temp dir on 127.0.0.1
and a free port, in the foreground as our child, stopped by its pid.
wrk keeps to 16 connections (BENCH_CONNECTIONS=N: N), for both servers:
GitHub's deliveries come from many addresses, or side by side through a
proxy (the listener has no limit per address unless
webhook.max_connections_per_address sets one), and its
webhook.max_connections leaves room for them (at the limit the listener
cuts the oldest idle keep-alive connections, which wrk counts as errors).
At 64 connections the commits are larger (about 12 deliveries, 0.7-0.9
ms) and the first-seen rate higher (32,000-48,000/s here), with a longer
tail; give a larger N, as that run sends more.

BENCH_SERVE_ARGS adds global options to runnerd serve (say --log-level
warn, to see what the log lines of the answers cost).

    bench_intake.py [N]     deliveries prepared (default 160000: about 1.2 GB of
                            request files in a temp dir, removed at the end, and
                            as much in wrk's memory)
"""

import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
from harness import BIN, free_port, make_workdir, stop_process  # noqa: E402
from test_webhooks import EXAMPLES, SECRET, get, reactive_env, wait_intake  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
THREADS, CONNECTIONS, SECONDS = 2, int(os.environ.get("BENCH_CONNECTIONS", "16")), 5
DUP_LINES = 1000
JOB_ID_BASE = 7_000_000_000


def payload_template():
    """GitHub's queued workflow_job example, ours: repository octo/hello, labels of flavor small."""
    ex = [e for e in json.load(open(EXAMPLES)) if e["name"] == "workflow_job"][0]["examples"]
    q = json.loads(json.dumps([e for e in ex if e["action"] == "queued" and e["workflow_job"]["status"] == "queued"][0]))
    q["repository"]["full_name"] = "octo/hello"
    q["workflow_job"]["labels"] = ["self-hosted", "small"]
    return q


def http_request(delivery, sig, body):
    """One delivery as the bytes of its HTTP request (the same to runnerd and nginx)."""
    head = ("POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "X-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: %s\r\nX-Hub-Signature-256: %s\r\n"
            "User-Agent: GitHub-Hookshot/bench\r\nContent-Length: %d\r\n\r\n" % (delivery, sig, len(body)))
    return head.encode() + body


def write_requests(prefix, n):
    """n signed deliveries, each a new delivery id and job id, split over THREADS files, each a
    request as "LENGTH\n" and its LENGTH bytes (wrk's Lua sends them as they are)."""
    tmpl = payload_template()
    files = [open("%s.%d" % (prefix, t + 1), "wb") for t in range(THREADS)]
    size = 0
    for i in range(n):
        tmpl["workflow_job"]["id"] = JOB_ID_BASE + i
        body = json.dumps(tmpl, separators=(",", ":")).encode()
        size = len(body)
        sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        req = http_request(uuid.uuid4(), sig, body)
        files[i % THREADS].write(b"%d\n" % len(req) + req)
    for f in files:
        f.close()
    return size


def parse_figures(tmp):
    """bench_webhook_parse (built beside runnerd) on the same body: the scan against jansson."""
    tool = os.path.join(os.path.dirname(BIN), "bench", "bench_webhook_parse")
    if not os.access(tool, os.X_OK):
        return "  (bench_webhook_parse is not built: no parse figures)"
    body = os.path.join(tmp, "body.json")
    with open(body, "w") as f:
        f.write(json.dumps(payload_template(), separators=(",", ":")))
    return subprocess.run([tool, body, "3000"], capture_output=True, text=True, timeout=120).stdout.rstrip()


def commit_figures(env):
    """What /healthz counted of the intake's commits: the group commit's, or with answer_after
    write the journal's applier's."""
    h = json.loads(get(env, "/healthz")[1])
    n = max(h["commits"], 1)
    behind = h.get("answer_after") == "write"
    return ("  runnerd's %s: %d deliveries in %d commits (%.1f a commit, at most %d), "
            "a commit %.0f us on average, fsync included" %
            ("journal's applier (answered after the journal's write)" if behind else "group commit",
             h["written"], h["commits"], h["written"] / n, h["commit_max"], h.get("commit_us", 0) / n) +
            answer_figures(h))


def answer_figures(h):
    """Where a written delivery's time went, as runnerd timed it (/healthz's stage_us): what
    the wrk figures cannot tell apart. With answer_after write none waits for a commit."""
    line = "\n  runnerd's answers: %.0f us on average from read whole to answered" % (
        h["answer_us"] / max(h["answered"], 1))
    if not h["staged"]:
        return line
    n = h["staged"]
    st = h["stage_us"]
    return line + ("; a written delivery %.0f us: parse %.0f, wait for the commit under way %.0f, its "
                   "commit %.0f, then to its answer %.0f" %
                   (sum(st.values()) / n, st["parse"] / n, st["wait"] / n, st["write"] / n,
                    st["report"] / n))


def flush_figure(directory, n=300):
    """The disk's own share of a commit: a 16 KiB write and its fdatasync in directory (the
    state dir's filesystem), on an idle machine; the median, in us."""
    path = os.path.join(directory, "flush-probe")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    block, took = b"\x5a" * 16384, []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            os.pwrite(fd, block, (i % 64) * len(block))
            os.fdatasync(fd)
            took.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        os.unlink(path)
    took.sort()
    return ("  the state dir's disk, idle: a 16 KiB write and its fdatasync take %.0f us (median of %d)" %
            (1e6 * took[n // 2], n))


def cpu_seconds(pid):
    """User + system CPU of a process so far (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dup_requests(prefix, dup_prefix):
    """The first DUP_LINES requests of each thread's file: sent by the first run, so duplicates after it."""
    for t in range(1, THREADS + 1):
        with open("%s.%d" % (prefix, t), "rb") as src, open("%s.%d" % (dup_prefix, t), "wb") as dst:
            for _ in range(DUP_LINES):
                length = src.readline()
                dst.write(length + src.read(int(length)))


def wrk(url, prefix):
    """(requests/s, p50 ms, p99 ms, {status: n}, errors, wrk's corrected p99 ms, slowest ms) of one
    wrk run (bench_intake.lua: the latencies measured, and wrk's own p99 with its made-up samples)."""
    for t in range(1, THREADS + 1):  # each thread's "requests read" of the run before
        try:
            os.unlink("%s.ready.%d" % (prefix, t))
        except FileNotFoundError:
            pass
    p = subprocess.run(["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", "%ds" % SECONDS,
                        "--timeout", "10s", "-s", os.path.join(HERE, "bench_intake.lua"), url, "--", prefix,
                        str(THREADS), str(CONNECTIONS)],
                       capture_output=True, text=True, timeout=120)
    m = re.search(r"result requests=(\d+) duration_us=(\d+) rps=([\d.]+) p50_ms=([\d.]+) p99_ms=([\d.]+) "
                  r"p99c_ms=([\d.]+) max_ms=([\d.]+) errors=(\d+)", p.stdout)
    if p.returncode != 0 or not m:
        raise RuntimeError("wrk: %s %s" % (p.stdout, p.stderr))
    st = re.search(r"statuses(.*)", p.stdout).group(1).split()
    statuses = {int(k): int(v) for k, v in (x.split("=") for x in st)}
    return (float(m.group(3)), float(m.group(4)), float(m.group(5)), statuses, int(m.group(8)),
            float(m.group(6)), float(m.group(7)))


def wrk_with_cpu(url, prefix, pid):
    """wrk(url, prefix), and the CPU seconds process pid used meanwhile."""
    cpu0 = cpu_seconds(pid)
    r = wrk(url, prefix)
    return r, cpu_seconds(pid) - cpu0


NGINX_CONF = """daemon off;
master_process on;
worker_processes auto;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    client_max_body_size 1m;
    server {
        listen 127.0.0.1:%(port)d;
        location / { default_type application/json; return 200 "{}\\n"; }
    }
}
"""


def nginx_start(tmp):
    d = os.path.join(tmp, "nginx")
    os.makedirs(d)
    port = free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF % {"dir": d, "port": port})
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([binary, "-p", d, "-c", conf], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "stderr"), "w"),
                            start_new_session=True)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            subprocess.run(["curl", "-sf", "-o", "/dev/null", "http://127.0.0.1:%d/" % port], check=True, timeout=2)
            return proc, port
        except subprocess.CalledProcessError:
            time.sleep(0.1)
    stop_process(proc, group=True)
    raise RuntimeError("nginx did not start: %s" % open(os.path.join(d, "stderr")).read())


def row(name, r):
    rps, p50, p99, statuses, errors, p99c, slowest = r
    print("  %-34s %9.0f req/s   p50 %6.2f ms   p99 %6.2f ms (wrk's corrected %.2f)   max %.1f ms   answers %s%s" %
          (name, rps, p50, p99, p99c, slowest, ", ".join("%d: %d" % kv for kv in sorted(statuses.items())),
           ("   errors %d" % errors) if errors else ""))


def runnerd_runs(answer_after, prefix, with_dup):
    """A fresh runnerd with webhook.answer_after: the first-seen run (its wrk figures, and
    what /healthz counted with runnerd's CPU a delivery), then, with_dup, the duplicates run
    (its figures and runnerd's CPU a request)."""
    # room for wrk's connections and the probes beside them: at the listener's limit the
    # oldest idle keep-alive connections are cut to keep a reserve, which wrk counts as errors
    env = reactive_env("bench-intake", [{"name": "small", "labels": ["small"], "min_idle": 0, "max": 2}],
                       webhook_extra={"max_connections": max(64, 2 * CONNECTIONS), "answer_after": answer_after},
                       reconcile_interval="10m")
    dup = None
    try:
        env.serve(global_args=os.environ.get("BENCH_SERVE_ARGS", "").split())
        wait_intake(env)
        env.run("drain")  # no runner is made: this measures the intake
        url = "http://127.0.0.1:%d/webhook" % env.hook_port
        first, cpu = wrk_with_cpu(url, prefix, env.daemon.pid)
        commits = commit_figures(env) + "\n  runnerd's CPU (user+system, all threads) over the run: %.1f us a delivery" % (
            1e6 * cpu / max(first[3].get(202, 0), 1))
        if with_dup:
            d, cpu = wrk_with_cpu(url, prefix + "-dup", env.daemon.pid)
            dup = (d, "  runnerd's CPU over the duplicates run: %.1f us a request" % (
                1e6 * cpu / max(sum(d[3].values()), 1)))
        env.stop()
    finally:
        env.close()
    return first, commits, dup


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 160000
    for tool in ("wrk", "curl"):
        if not shutil.which(tool):
            print("bench_intake: %s is not installed (scripts/deps.sh installs it)" % tool, file=sys.stderr)
            return 1
    if not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")):
        print("bench_intake: nginx is not installed (scripts/deps.sh installs it)", file=sys.stderr)
        return 1
    tmp = make_workdir("bench-intake", 0o700)
    flush = flush_figure(tmp)
    prefix = os.path.join(tmp, "requests")
    size = write_requests(prefix, n)
    dup_requests(prefix, prefix + "-dup")
    print("  %d signed deliveries of a queued workflow_job (%d bytes each, GitHub's example), "
          "wrk -t%d -c%d" % (n, size, THREADS, CONNECTIONS))

    nginx = None
    try:
        # the first-seen path with each webhook.answer_after; the duplicates once
        flushed, flushed_commits, _ = runnerd_runs("flush", prefix, False)
        written, written_commits, dup = runnerd_runs("write", prefix, True)
        nginx, port = nginx_start(tmp)
        ng = wrk("http://127.0.0.1:%d/webhook" % port, prefix)
    finally:
        if nginx:
            stop_process(nginx, group=True)
        parse = parse_figures(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    row("runnerd, first seen, answer_after flush", flushed)
    print(flushed_commits)
    row("runnerd, first seen, answer_after write", written)
    print(written_commits)
    print(flush)
    row("runnerd, duplicates (200)", dup[0])
    print(dup[1])
    row("nginx, static 200", ng)
    print("  ratio runnerd/nginx: first seen %.2f answered after the flush, %.2f after the write; "
          "duplicates %.2f (target >= 0.5); p99 %.2f and %.2f ms vs %.2f ms" %
          (flushed[0] / ng[0], written[0] / ng[0], dup[0][0] / ng[0], flushed[2], written[2], ng[2]))
    print(parse)
    # a line wrk skipped in the first run (it regenerates the request of a connection the server
    # closed) is first seen in the second: a few 202s there are that, not duplicates
    ok = set(flushed[3]) == {202} and set(written[3]) == {202} and \
        dup[0][3].get(200, 0) >= 0.99 * sum(dup[0][3].values()) and set(ng[3]) == {200}
    if not ok:
        print("  unexpected answers: the first run should have only 202s (more than %d deliveries a run "
              "sends duplicates: give a larger N), the second and nginx 200s" % n, file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
