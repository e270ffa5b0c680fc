#!/usr/bin/env python3
"""Self-tests of ghsim, the GitHub simulator (tests/ghsim/): the REST
behaviours runnerd relies on (pagination, ETags, rate limits, auth, App JWTs),
its runner package driven as a real child process (registration token and JIT
flows, hooks, root refusal, busybox), job routing, signed webhooks, faults and
heartbeat loss.

Each case starts its own ghsim on an ephemeral 127.0.0.1 port and stops it by
pid; nothing here talks to any other address. Standard library only. The last
line is `N passed, N failed`; the exit code is non-zero when a case failed.
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
import uuid
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOP = os.environ.get("RUNNERD_TOP") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
from ghsim import Ghsim, http  # noqa: E402
from harness import free_port, make_workdir, remove_workdir, run_tests, stop_process, summary, wait_until  # noqa: E402

WORK = make_workdir("test_ghsim")
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def workdir(name):
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    return d


def eq(a, b, what=""):
    if a != b:
        raise AssertionError("%s: %r != %r" % (what, a, b))


def job(gh, jid):
    return gh.control("GET", "/_ghsim/jobs/%d" % jid)


def links(header):
    out = {}
    for part in (header or "").split(","):
        url, _, rel = part.partition(";")
        out[rel.strip().split("=")[1].strip('"')] = url.strip()[1:-1]
    return out


def fetch_package(gh, dest, arch="x64"):
    """Download the runner package the way runnerd does: from the downloads
    list, checked against its sha256, then unpacked."""
    s, _, apps = gh.api_json("GET", "/repos/o/r/actions/runners/downloads")
    eq(s, 200, "downloads")
    app = [a for a in apps if a["os"] == "linux" and a["architecture"] == arch][0]
    eq(app["filename"], "actions-runner-linux-%s-2.321.0.tar.gz" % arch, "filename")
    s, _, data = http("GET", app["download_url"])
    eq(s, 200, "download")
    eq(hashlib.sha256(data).hexdigest(), app["sha256_checksum"], "sha256")
    os.makedirs(dest, exist_ok=True)
    with tarfile.open(fileobj=__import__("io").BytesIO(data)) as t:
        t.extractall(dest)
    for f in ("config.sh", "run.sh", "bin/Runner.Listener"):
        assert os.access(os.path.join(dest, f), os.X_OK), f + " not executable"
    return dest


def reg_token(gh, scope="repos/o/r"):
    s, _, b = gh.api_json("POST", "/%s/actions/runners/registration-token" % scope)
    eq(s, 201, "registration-token")
    return b["token"]


def busybox_path(d):
    bb = shutil.which("busybox")
    assert bb, "busybox is not installed (scripts/deps.sh installs busybox-static)"
    bindir = os.path.join(d, "bb")
    if not os.path.isdir(bindir):
        os.makedirs(bindir)
        subprocess.run([bb, "--install", "-s", bindir], check=True)
    return bindir


def start_runner(pkg, env_extra, args=(), log="run.out", path=None):
    # TMPDIR inside the work directory: a runner killed by a test cannot clean up after itself.
    env = {"HOME": pkg, "PATH": path or os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", "TMPDIR": pkg}
    env.update(env_extra)
    out = open(os.path.join(pkg, log), "w")
    shell = os.path.join(path, "sh") if path else "sh"
    p = subprocess.Popen([shell, "run.sh"] + list(args), cwd=pkg, env=env, stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    p.out_path = out.name
    return p


def stop_proc(p):
    """A runner and everything it started (its session), killed."""
    stop_process(p, signal.SIGKILL, group=True)


def write_hook(d, name):
    path = os.path.join(d, name + ".sh")
    with open(path, "w") as f:
        f.write("env > '%s/%s.env'\necho %s-hook-output\n" % (d, name, name))
    return path


def read_env(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            out[k] = v
    return out


def runner_by_name(gh, name):
    return [r for r in gh.control("GET", "/_ghsim/runners") if r["name"] == name]


# ---------------------------------------------------------------- REST behaviour

@case
def test_pagination_250_runners():
    with Ghsim(workdir("pagination")) as gh:
        gh.control("POST", "/_ghsim/runners", {"scope": "repos/o/r", "name": "p", "count": 250})
        seen = []
        url = "/repos/o/r/actions/runners?per_page=100"
        pages = 0
        while url:
            s, h, b = gh.api_json("GET", url)
            eq(s, 200, "page status")
            eq(b["total_count"], 250, "total_count")
            pages += 1
            seen += [r["id"] for r in b["runners"]]
            lk = links(h.get("link"))
            if pages == 1:
                assert "prev" not in lk and "first" not in lk, lk
                assert lk["last"].startswith(gh.url + "/repos/o/r/actions/runners?") and "page=3" in lk["last"], lk
            if pages == 2:
                assert {"prev", "next", "last", "first"} <= set(lk), lk
            if pages == 3:
                assert "next" not in lk and "prev" in lk and "first" in lk, lk
                eq(len(b["runners"]), 50, "last page size")
            url = lk["next"][len(gh.url):] if "next" in lk else None
            assert pages <= 3, "too many pages"
        eq(pages, 3, "pages")
        eq(len(set(seen)), 250, "distinct runners")
        eq(seen, sorted(seen), "stable order")
        _, _, b = gh.api_json("GET", "/repos/o/r/actions/runners")
        eq(len(b["runners"]), 30, "default per_page")
        _, _, b = gh.api_json("GET", "/repos/o/r/actions/runners?per_page=1000")
        eq(len(b["runners"]), 100, "per_page capped at 100")
        _, _, b = gh.api_json("GET", "/repos/o/r/actions/runners?per_page=100&page=9")
        eq(b["runners"], [], "page past the end")
        s, h, b = gh.api_json("GET", "/api/v3/repos/o/r/actions/runners?per_page=100")
        assert links(h["link"])["next"].startswith(gh.url + "/api/v3/repos/o/r/"), "GHES prefix kept in Link"
        r = b["runners"][0]
        assert {"id", "name", "os", "status", "busy", "labels"} <= set(r), r
        eq([(lbl["name"], lbl["type"]) for lbl in r["labels"]],
           [("self-hosted", "read-only"), ("Linux", "read-only"), ("X64", "read-only")], "default labels")


@case
def test_etag_304_not_counted():
    with Ghsim(workdir("etag")) as gh:
        gh.control("POST", "/_ghsim/runners", {"scope": "orgs/acme", "name": "e", "count": 3})
        s, h, _ = gh.api("GET", "/orgs/acme/actions/runners")
        eq(s, 200, "first")
        etag = h["etag"]
        left = int(h["x-ratelimit-remaining"])
        for _ in range(3):
            s, h2, body = gh.api("GET", "/orgs/acme/actions/runners", headers={"If-None-Match": etag})
            eq(s, 304, "conditional")
            eq(body, b"", "304 body")
            eq(int(h2["x-ratelimit-remaining"]), left, "304 must not spend the budget")
            eq(h2["etag"], etag, "etag on 304")
        st = gh.control("GET", "/_ghsim/stats")
        eq(st["not_modified"], 3, "not_modified")
        eq(st["rate_counted"], 1, "rate_counted")
        eq(st["requests"], 4, "requests")
        gh.control("POST", "/_ghsim/runners", {"scope": "orgs/acme", "name": "e-new"})
        s, h3, _ = gh.api("GET", "/orgs/acme/actions/runners", headers={"If-None-Match": etag})
        eq(s, 200, "changed list")
        assert h3["etag"] != etag
        eq(int(h3["x-ratelimit-remaining"]), left - 1, "200 spends one")


@case
def test_auth_errors():
    with Ghsim(workdir("auth")) as gh:
        s, h, b = gh.api_json("GET", "/repos/o/r/actions/runners", token="ghp_wrong")
        eq(s, 401, "bad token")
        eq(b["message"], "Bad credentials", "message")
        assert "documentation_url" in b
        s, _, _ = gh.api("GET", "/repos/o/r/actions/runners", headers={"Authorization": None})
        eq(s, 401, "no token")
        c = __import__("http.client").client.HTTPConnection("127.0.0.1", gh.port, timeout=10)
        c.putrequest("GET", "/repos/o/r/actions/runners", skip_accept_encoding=True)
        c.putheader("Authorization", "Bearer " + gh.token)
        c.endheaders()
        eq(c.getresponse().status, 403, "no User-Agent")
        c.close()
        s, _, _ = gh.api("GET", "/repos/o/r/actions/runners", headers={"X-GitHub-Api-Version": "1999-01-01"})
        eq(s, 400, "unsupported API version")
        s, h, _ = gh.api("GET", "/repos/o/r/actions/runners", headers={"Authorization": "token " + gh.token})
        eq(s, 200, "token scheme")
        for k in ("limit", "remaining", "reset", "used", "resource"):
            assert "x-ratelimit-" + k in h, k
        # the token file is re-read when it changes (rotation)
        with open(gh.token_file, "w") as f:
            f.write("ghp_rotated\n")
        eq(gh.api("GET", "/repos/o/r/actions/runners")[0], 401, "old token after rotation")
        eq(gh.api("GET", "/repos/o/r/actions/runners", token="ghp_rotated")[0], 200, "new token")


@case
def test_rate_limit_exhaustion():
    with Ghsim(workdir("ratelimit")) as gh:
        gh.control("POST", "/_ghsim/ratelimit", {"remaining": 1, "reset_in": 1.5})
        s, h, _ = gh.api("GET", "/repos/o/r/actions/runners")
        eq(s, 200, "last request of the budget")
        eq(h["x-ratelimit-remaining"], "0", "remaining")
        s, h, b = gh.api_json("GET", "/repos/o/r/actions/runners")
        eq(s, 403, "exhausted")
        eq(h["x-ratelimit-remaining"], "0", "remaining on 403")
        assert b["message"].startswith("API rate limit exceeded"), b
        reset = int(h["x-ratelimit-reset"])
        assert reset >= int(time.time()), "reset in the future"
        s, _, b = gh.api_json("GET", "/rate_limit")
        eq(s, 200, "rate_limit is free")
        eq(b["resources"]["core"]["remaining"], 0, "core remaining")
        wait_until(lambda: time.time() > reset + 0.05, 5, "reset")
        s, h, _ = gh.api("GET", "/repos/o/r/actions/runners")
        eq(s, 200, "after the reset")
        eq(h["x-ratelimit-remaining"], str(int(h["x-ratelimit-limit"]) - 1), "budget refilled")


def make_jwt(key, app_id, iat_off=-30, exp_off=540):
    now = int(time.time())

    def b64(o):
        return base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()
    signing_input = b64({"alg": "RS256", "typ": "JWT"}) + "." + b64({"iat": now + iat_off, "exp": now + exp_off,
                                                                      "iss": app_id})
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input.encode(),
                         capture_output=True, check=True).stdout
    return signing_input + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


@case
def test_app_jwt_flow():
    d = workdir("app")
    key, other, pub = (os.path.join(d, n) for n in ("app.pem", "other.pem", "app.pub"))
    for k in (key, other):
        subprocess.run(["openssl", "genrsa", "-out", k, "2048"], check=True, capture_output=True)
    subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-out", pub], check=True, capture_output=True)
    with Ghsim(d, "--app-id", "4242", "--app-public-key", pub, "--installation-id", "77") as gh:
        path = "/app/installations/77/access_tokens"
        s, _, b = gh.api_json("POST", path, token=make_jwt(key, 4242))
        eq(s, 201, "good JWT")
        assert b["token"].startswith("ghs_"), "installation token prefix"
        assert b["expires_at"].endswith("Z") and "permissions" in b and b["repository_selection"] == "all", b
        inst = b["token"]
        s, h, _ = gh.api("GET", "/orgs/acme/actions/runners", token=inst)
        eq(s, 200, "installation token accepted")
        s, _, b = gh.api_json("POST", path, token=make_jwt(other, 4242))
        eq(s, 401, "JWT signed by another key")
        eq(gh.api("POST", path, token=make_jwt(key, 4242, iat_off=-700, exp_off=-60))[0], 401, "expired JWT")
        eq(gh.api("POST", path, token=make_jwt(key, 4242, iat_off=0, exp_off=900))[0], 401, "exp - iat > 600")
        eq(gh.api("POST", path, token=make_jwt(key, 4243))[0], 401, "wrong iss")
        eq(gh.api("POST", "/app/installations/78/access_tokens", token=make_jwt(key, 4242))[0], 404,
           "unknown installation")
        jwt = make_jwt(key, 4242)
        tampered = jwt.rsplit(".", 1)[0][:-2] + "xx." + jwt.rsplit(".", 1)[1]
        eq(gh.api("POST", path, token=tampered)[0], 401, "tampered payload")
        eq(gh.api("GET", "/repos/o/r/actions/runners", token=jwt)[0], 403, "JWT on a runner endpoint")
        eq(gh.api("POST", path, token=gh.token)[0], 401, "PAT on an App endpoint")
        s, _, b = gh.api_json("GET", "/repos/o/r/installation", token=jwt)
        eq((s, b["id"]), (200, 77), "repository installation")
        eq(gh.api("DELETE", "/installation/token", token=inst)[0], 204, "revoke")
        eq(gh.api("GET", "/orgs/acme/actions/runners", token=inst)[0], 401, "revoked token")


# ---------------------------------------------------------------- the runner package

@case
def test_root_is_refused():
    d = workdir("root")
    with Ghsim(d) as gh:
        pkg = fetch_package(gh, os.path.join(d, "pkg"))
        tok = reg_token(gh)
        env = {"PATH": os.environ["PATH"], "HOME": d, "ACTIONS_RUNNER_INPUT_TOKEN": tok}
        cfg = ["sh", "config.sh", "--url", gh.url + "/o/r", "--name", "rootless", "--unattended"]
        if os.geteuid() == 0:
            p = subprocess.run(cfg, cwd=pkg, env=env, capture_output=True, text=True)
            eq(p.returncode, 1, "config.sh as root")
            assert "Must not run with sudo" in p.stdout, p.stdout
            p = subprocess.run(["sh", "run.sh"], cwd=pkg, env=env, capture_output=True, text=True)
            eq(p.returncode, 1, "run.sh as root")
            assert "Must not run with sudo" in p.stdout, p.stdout
            eq(gh.control("GET", "/_ghsim/runners"), [], "nothing registered")
            env["RUNNER_ALLOW_RUNASROOT"] = "1"
        p = subprocess.run(cfg, cwd=pkg, env=env, capture_output=True, text=True)
        eq(p.returncode, 0, "config.sh allowed: " + p.stdout + p.stderr)
        eq(len(runner_by_name(gh, "rootless")), 1, "registered")
        eq(os.stat(os.path.join(pkg, ".credentials")).st_mode & 0o777, 0o600, ".credentials mode")


@case
def test_registration_token_flow():
    d = workdir("regflow")
    with Ghsim(d, "--heartbeat-timeout", "5") as gh:
        pkg = fetch_package(gh, os.path.join(d, "pkg"))
        tok = reg_token(gh)
        env = {"RUNNER_ALLOW_RUNASROOT": "1", "ACTIONS_RUNNER_INPUT_TOKEN": tok, "PATH": os.environ["PATH"],
               "HOME": d}
        p = subprocess.run(["sh", "config.sh", "--url", gh.url + "/o/r", "--name", "reg-1", "--labels",
                            "gpu,Big", "--ephemeral", "--unattended"], cwd=pkg, env=env, capture_output=True,
                           text=True)
        eq(p.returncode, 0, "config.sh: " + p.stdout + p.stderr)
        assert tok not in p.stdout + p.stderr, "token echoed"
        s, _, b = gh.api_json("GET", "/repos/o/r/actions/runners")
        eq((s, b["total_count"]), (200, 1), "listed")
        r = b["runners"][0]
        eq((r["name"], r["status"], r["busy"]), ("reg-1", "offline", False), "registered, not started")
        eq([(lbl["name"], lbl["type"]) for lbl in r["labels"]],
           [("self-hosted", "read-only"), ("Linux", "read-only"), ("X64", "read-only"), ("gpu", "custom"),
            ("Big", "custom")], "labels")
        hooks = {"ACTIONS_RUNNER_HOOK_JOB_STARTED": write_hook(d, "started"),
                 "ACTIONS_RUNNER_HOOK_JOB_COMPLETED": write_hook(d, "completed")}
        with open(os.path.join(pkg, ".env"), "w") as f:  # the runner reads its .env like the real one
            f.write("ACTIONS_RUNNER_HOOK_JOB_STARTED=%s\n" % hooks["ACTIONS_RUNNER_HOOK_JOB_STARTED"])
        proc = start_runner(pkg, {"RUNNER_ALLOW_RUNASROOT": "1",
                                  "ACTIONS_RUNNER_HOOK_JOB_COMPLETED": hooks["ACTIONS_RUNNER_HOOK_JOB_COMPLETED"]})
        try:
            wait_until(lambda: runner_by_name(gh, "reg-1")[0]["status"] == "online", 10, "runner online")
            other = gh.control("POST", "/_ghsim/jobs", {"repo": "o/r", "labels": ["self-hosted", "nvidia"]})
            jb = gh.control("POST", "/_ghsim/jobs", {"repo": "o/r", "labels": ["SELF-HOSTED", "linux", "big"],
                                                     "duration": 1, "workflow": "release", "event": "pull_request",
                                                     "name": "unit tests", "job": "unit",
                                                     "run": "echo step-output > marker"})
            eq(proc.wait(20), 0, "run.sh exit status")
        finally:
            stop_proc(proc)
        out = open(proc.out_path).read()
        assert "Listening for Jobs" in out and "Running job: unit tests" in out, out
        assert "completed with result: Succeeded" in out, out
        j = job(gh, jb["id"])
        eq((j["status"], j["conclusion"], j["runner_name"], j["killed"]), ("completed", "success", "reg-1", False),
           "job")
        eq(job(gh, other["id"])["status"], "queued", "non-matching job stays queued")
        eq(runner_by_name(gh, "reg-1"), [], "ephemeral runner deregistered")
        assert not os.path.exists(os.path.join(pkg, ".runner")), ".runner removed"
        for name in ("started", "completed"):
            env = read_env(os.path.join(d, name + ".env"))
            want = {"GITHUB_WORKFLOW": "release", "GITHUB_REPOSITORY": "o/r", "GITHUB_EVENT_NAME": "pull_request",
                    "GITHUB_RUN_ID": str(jb["run_id"]), "GITHUB_JOB": "unit", "GITHUB_ACTIONS": "true",
                    "RUNNER_NAME": "reg-1", "CI": "true", "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64"}
            eq({k: env.get(k) for k in want}, want, name + " hook env")
            assert os.path.isfile(env["GITHUB_EVENT_PATH"]), "event payload file"
            json.load(open(env["GITHUB_EVENT_PATH"]))
        ws = read_env(os.path.join(d, "started.env"))["GITHUB_WORKSPACE"]
        eq(open(os.path.join(ws, "marker")).read(), "step-output\n", "job step ran in the workspace")
        diag = os.listdir(os.path.join(pkg, "_diag"))
        runner_logs = [f for f in diag if f.startswith("Runner_") and f.endswith("-utc.log")]
        worker_logs = [f for f in diag if f.startswith("Worker_") and f.endswith("-utc.log")]
        assert runner_logs and worker_logs, diag
        wl = open(os.path.join(pkg, "_diag", worker_logs[0])).read()
        assert "started-hook-output" in wl and "completed-hook-output" in wl, wl
        logs = "".join(open(os.path.join(pkg, "_diag", f)).read() for f in diag) + out
        assert tok not in logs, "registration token in a log"


@case
def test_jit_flow_under_busybox():
    d = workdir("jit")
    with Ghsim(d, "--heartbeat-timeout", "5") as gh:
        pkg = fetch_package(gh, os.path.join(d, "pkg"), arch="arm64")
        s, _, b = gh.api_json("POST", "/orgs/acme/actions/runners/generate-jitconfig",
                              {"name": "jit-1", "runner_group_id": 1, "labels": ["self-hosted", "arm64", "fast"],
                               "work_folder": "_work"})
        eq(s, 201, "generate-jitconfig")
        jit = b["encoded_jit_config"]
        eq((b["runner"]["name"], b["runner"]["status"], b["runner"]["busy"]), ("jit-1", "offline", False),
           "JIT runner exists, offline")
        eq(gh.api("POST", "/orgs/acme/actions/runners/generate-jitconfig",
                  {"name": "jit-1", "runner_group_id": 1, "labels": ["x"]})[0], 409, "existing name")
        hook = write_hook(d, "started")
        bb = busybox_path(d)
        proc = start_runner(pkg, {"RUNNER_ALLOW_RUNASROOT": "1", "ACTIONS_RUNNER_INPUT_JITCONFIG": jit,
                                  "ACTIONS_RUNNER_HOOK_JOB_STARTED": hook}, path=bb)
        try:
            wait_until(lambda: runner_by_name(gh, "jit-1")[0]["status"] == "online", 10, "JIT runner online")
            s, _, lst = gh.api_json("GET", "/orgs/acme/actions/runners")
            r = lst["runners"][0]
            eq((r["status"], r["os"]), ("online", "Linux"), "listed online")
            assert "ARM64" in [lbl["name"] for lbl in r["labels"]], r["labels"]
            jb = gh.control("POST", "/_ghsim/jobs", {"repo": "acme/app", "labels": ["self-hosted", "ARM64", "fast"],
                                                     "duration": 0.5})
            eq(proc.wait(20), 0, "run.sh exit status under busybox")
        finally:
            stop_proc(proc)
        eq((job(gh, jb["id"])["status"], job(gh, jb["id"])["conclusion"]), ("completed", "success"), "job done")
        eq(runner_by_name(gh, "jit-1"), [], "deregistered")
        env = read_env(os.path.join(d, "started.env"))
        eq((env.get("GITHUB_REPOSITORY"), env.get("RUNNER_NAME"), env.get("RUNNER_ARCH")),
           ("acme/app", "jit-1", "ARM64"), "hook env")
        out = open(proc.out_path).read()
        assert jit not in out, "JIT config printed"
        assert "completed with result: Succeeded" in out, out


@case
def test_heartbeat_loss_kills_job():
    d = workdir("heartbeat")
    with Ghsim(d, "--heartbeat-timeout", "1.5") as gh:
        pkg = fetch_package(gh, os.path.join(d, "pkg"))
        s, _, b = gh.api_json("POST", "/repos/o/r/actions/runners/generate-jitconfig",
                              {"name": "hb-1", "runner_group_id": 1, "labels": ["self-hosted"]})
        eq(s, 201, "jit")
        proc = start_runner(pkg, {"RUNNER_ALLOW_RUNASROOT": "1",
                                  "ACTIONS_RUNNER_INPUT_JITCONFIG": b["encoded_jit_config"]})
        try:
            jb = gh.control("POST", "/_ghsim/jobs", {"repo": "o/r", "labels": ["self-hosted"], "duration": 60})
            wait_until(lambda: job(gh, jb["id"])["status"] == "in_progress", 10, "job running")
            rid = runner_by_name(gh, "hb-1")[0]["id"]
            time.sleep(2)  # heartbeats keep a busy runner online past the timeout
            s, _, r = gh.api_json("GET", "/repos/o/r/actions/runners/%d" % rid)
            eq((r["status"], r["busy"]), ("online", True), "busy runner heartbeating")
            eq(gh.api("DELETE", "/repos/o/r/actions/runners/%d" % rid)[0], 422, "delete busy runner")
        finally:
            stop_proc(proc)  # the machine vanishes: no completion, no more heartbeats
        wait_until(lambda: job(gh, jb["id"])["killed"], 6, "job recorded as killed")
        j = job(gh, jb["id"])
        eq((j["status"], j["conclusion"]), ("completed", "failure"), "killed job")
        s, _, r = gh.api_json("GET", "/repos/o/r/actions/runners/%d" % rid)
        eq((r["status"], r["busy"]), ("offline", False), "runner offline")
        eq(gh.control("GET", "/_ghsim/stats")["killed_jobs"], 1, "killed_jobs")
        eq(gh.api("DELETE", "/repos/o/r/actions/runners/%d" % rid)[0], 204, "delete offline runner")


@case
def test_runner_deleted_while_idle_exits():
    d = workdir("idle-delete")
    with Ghsim(d, "--heartbeat-timeout", "3") as gh:
        pkg = fetch_package(gh, os.path.join(d, "pkg"))
        s, _, b = gh.api_json("POST", "/repos/o/r/actions/runners/generate-jitconfig",
                              {"name": "idle-1", "runner_group_id": 1, "labels": ["self-hosted"]})
        eq(s, 201, "jit")
        proc = start_runner(pkg, {"RUNNER_ALLOW_RUNASROOT": "1",
                                  "ACTIONS_RUNNER_INPUT_JITCONFIG": b["encoded_jit_config"]})
        try:
            wait_until(lambda: runner_by_name(gh, "idle-1")[0]["status"] == "online", 10, "online")
            eq(gh.api("DELETE", "/repos/o/r/actions/runners/%d" % b["runner"]["id"])[0], 204, "delete idle")
            eq(proc.wait(10), 1, "run.sh exits when its registration is deleted")
        finally:
            stop_proc(proc)
        assert "deleted from the server" in open(proc.out_path).read()


# ---------------------------------------------------------------- jobs, webhooks

@case
def test_job_routing_labels_and_scope():
    with Ghsim(workdir("routing")) as gh:
        mk = gh.control
        a = mk("POST", "/_ghsim/runners", {"scope": "repos/o/r", "name": "a", "labels": ["gpu"]})["runners"][0]
        org = mk("POST", "/_ghsim/runners", {"scope": "orgs/o", "name": "org", "labels": ["big"]})["runners"][0]
        mk("POST", "/_ghsim/runners", {"scope": "repos/o/other", "name": "c", "labels": ["big"]})
        j1 = mk("POST", "/_ghsim/jobs", {"repo": "o/r", "labels": ["self-hosted", "tpu"], "duration": 0.2})
        j2 = mk("POST", "/_ghsim/jobs", {"repo": "o/r", "labels": ["Self-Hosted", "GPU", "linux", "x64"],
                                         "duration": 0.2})
        j3 = mk("POST", "/_ghsim/jobs", {"repo": "o/r", "labels": ["big"], "duration": 0.2})
        j4 = mk("POST", "/_ghsim/jobs", {"repo": "x/r", "labels": ["big"], "duration": 0.2})
        wait_until(lambda: job(gh, j2["id"])["status"] == "completed" and job(gh, j3["id"])["status"] == "completed",
             5, "matching jobs done")
        eq(job(gh, j2["id"])["runner_id"], a["id"], "repo runner took the GPU job")
        eq(job(gh, j3["id"])["runner_id"], org["id"], "org runner took the org repo's job")
        time.sleep(0.5)
        eq(job(gh, j1["id"])["status"], "queued", "unmatched labels stay queued")
        eq(job(gh, j4["id"])["status"], "queued", "no runner covers x/r")
        assert job(gh, j2["id"])["id"] > 2 ** 31, "job ids exceed 2^31"
        s, _, b = gh.api_json("GET", "/repos/o/r/actions/jobs/%d" % j2["id"])
        eq((s, b["status"], b["conclusion"], b["runner_name"]), (200, "completed", "success", "a"), "REST job")
        assert [st["name"] for st in b["steps"]], "steps"
        s, _, b = gh.api_json("GET", "/repos/o/r/actions/runs/%d/jobs" % j1["run_id"])
        eq((s, b["total_count"], b["jobs"][0]["status"], b["jobs"][0]["runner_id"]), (200, 1, "queued", None),
           "run jobs")
        eq(gh.api("GET", "/repos/o/elsewhere/actions/jobs/%d" % j2["id"])[0], 404, "job of another repo")
        # FIFO: two queued jobs, one runner appears: the older job goes first
        k1 = mk("POST", "/_ghsim/jobs", {"repo": "q/r", "labels": ["z"], "duration": 5})
        k2 = mk("POST", "/_ghsim/jobs", {"repo": "q/r", "labels": ["z"], "duration": 5})
        mk("POST", "/_ghsim/runners", {"scope": "repos/q/r", "name": "z", "labels": ["z"]})
        wait_until(lambda: job(gh, k1["id"])["status"] == "in_progress", 5, "oldest job first")
        eq(job(gh, k2["id"])["status"], "queued", "younger job waits")


class Receiver:
    """A local webhook receiver that records every delivery."""

    def __init__(self, status=200, hang=False):
        got = self.got = []
        lock = self.lock = threading.Lock()

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hang:
                    time.sleep(3)
                with lock:
                    got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass
        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.url = "http://127.0.0.1:%d/webhook" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@case
def test_webhooks_signed():
    d = workdir("webhooks")
    rcv = Receiver()
    secret = "It's a Secret to Everybody"
    with open(os.path.join(d, "secret"), "w") as f:
        f.write(secret + "\n")
    try:
        with Ghsim(d, "--webhook-url", rcv.url, "--webhook-secret-file", os.path.join(d, "secret"),
                   "--app-id", "9", "--installation-id", "5") as gh:
            gh.control("POST", "/_ghsim/runners", {"scope": "repos/octo/app", "name": "w", "labels": ["gpu"],
                                                   "ephemeral": True})
            jb = gh.control("POST", "/_ghsim/jobs", {"repo": "octo/app", "labels": ["gpu"], "duration": 0.2})
            wait_until(lambda: len(rcv.got) >= 3, 5, "three deliveries")
            actions = []
            guids = set()
            for headers, body in rcv.got:
                eq(headers["x-github-event"], "workflow_job", "event header")
                eq(str(uuid.UUID(headers["x-github-delivery"])), headers["x-github-delivery"], "delivery is a UUID")
                guids.add(headers["x-github-delivery"])
                assert headers["user-agent"].startswith("GitHub-Hookshot/"), headers["user-agent"]
                eq(headers["content-type"], "application/json", "content type")
                want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                assert hmac.compare_digest(headers["x-hub-signature-256"], want), "signature"
                p = json.loads(body)
                actions.append(p["action"])
                wj = p["workflow_job"]
                eq(wj["id"], jb["id"], "job id")
                eq(p["repository"]["full_name"], "octo/app", "repository")
                eq(p["repository"]["owner"]["login"], "octo", "owner")
                assert p["sender"]["login"] and p["organization"]["login"] == "octo"
                eq(p["installation"]["id"], 5, "installation")
                eq(wj["status"], p["action"], "status follows the action")
                eq(wj["labels"], ["gpu"], "labels")
                if p["action"] == "queued":
                    eq(wj["runner_name"], None, "no runner while queued")
                else:
                    eq(wj["runner_name"], "w", "runner name")
            eq(actions, ["queued", "in_progress", "completed"], "actions in order")
            eq(len(guids), 3, "distinct deliveries")
            eq(json.loads(rcv.got[2][1])["workflow_job"]["conclusion"], "success", "conclusion")
            wait_until(lambda: gh.control("GET", "/_ghsim/stats")["webhooks"]["sent"] == 3, 3, "stats")
    finally:
        rcv.close()


@case
def test_webhook_receiver_failures_do_not_block():
    d = workdir("webhook-fail")
    dead = "http://127.0.0.1:%d/" % free_port()
    hang = Receiver(hang=True)
    try:
        with Ghsim(d, "--webhook-url", dead, "--webhook-timeout", "0.5") as gh:
            t0 = time.time()
            for _ in range(5):
                gh.control("POST", "/_ghsim/jobs", {"repo": "o/r", "labels": ["none"]})
            assert time.time() - t0 < 2, "queuing jobs blocked on a dead receiver"
            wait_until(lambda: gh.control("GET", "/_ghsim/stats")["webhooks"]["failed"] == 5, 5, "failures counted")
            gh.control("POST", "/_ghsim/webhook", {"url": hang.url, "secret": "s"})
            t0 = time.time()
            for _ in range(3):
                gh.control("POST", "/_ghsim/jobs", {"repo": "o/r", "labels": ["none"]})
            eq(gh.api("GET", "/repos/o/r/actions/runners")[0], 200, "API answers")
            assert time.time() - t0 < 1, "a hanging receiver blocked ghsim"
            wait_until(lambda: gh.control("GET", "/_ghsim/stats")["webhooks"]["failed"] >= 6, 5, "timeout counted")
            s, _, _ = http("POST", gh.url + "/_ghsim/webhook", {"url": "http://192.0.2.1/"})
            eq(s, 400, "non-loopback webhook URL refused")
    finally:
        hang.close()


# ---------------------------------------------------------------- faults, deletes, bad input

@case
def test_faults():
    with Ghsim(workdir("faults")) as gh:
        gh.control("POST", "/_ghsim/faults", {"match": "/actions/runners", "method": "GET", "status": 502,
                                              "count": 2, "skip": 1})
        seq = [gh.api("GET", "/repos/o/r/actions/runners")[0] for _ in range(4)]
        eq(seq, [200, 502, 502, 200], "skip then count")
        eq(gh.api("POST", "/repos/o/r/actions/runners/registration-token")[0], 201, "method filter")
        gh.control("POST", "/_ghsim/faults", {"match": "registration-token", "status": 429, "retry_after": 7})
        s, h, b = gh.api_json("POST", "/repos/o/r/actions/runners/registration-token")
        eq((s, h.get("retry-after")), (429, "7"), "429 with Retry-After")
        assert "message" in b and "documentation_url" in b, b
        gh.control("POST", "/_ghsim/faults", {"match": "/downloads", "status": 500, "body": {"x": 1}})
        s, _, b = gh.api_json("GET", "/repos/o/r/actions/runners/downloads")
        eq((s, b), (500, {"x": 1}), "custom body")
        gh.control("POST", "/_ghsim/faults", {"match": "/orgs/slow/", "delay": 1.0})
        t0 = time.time()
        eq(gh.api("GET", "/orgs/slow/actions/runners")[0], 200, "delayed answer")
        assert time.time() - t0 >= 0.95, "delay applied"
        gh.control("POST", "/_ghsim/faults", {"match": "/orgs/drop/", "drop": True})
        try:
            gh.api("GET", "/orgs/drop/actions/runners", timeout=5)
            raise AssertionError("dropped connection answered")
        except (OSError, __import__("http.client").client.HTTPException):
            pass
        eq(gh.api("GET", "/orgs/drop/actions/runners")[0], 200, "drop count used up")
        gh.control("POST", "/_ghsim/faults", {"match": "/repos/", "status": 503, "count": 100})
        eq(gh.api("GET", "/repos/o/r/actions/runners")[0], 503, "active fault")
        gh.control("DELETE", "/_ghsim/faults")
        eq(gh.api("GET", "/repos/o/r/actions/runners")[0], 200, "faults cleared")
        eq(gh.control("GET", "/_ghsim/stats")["faults_applied"], 7, "faults applied")
        # runner offline on demand; a busy one loses its job
        r = gh.control("POST", "/_ghsim/runners", {"scope": "repos/o/r", "name": "off", "labels": ["l"]})
        rid = r["runners"][0]["id"]
        jb = gh.control("POST", "/_ghsim/jobs", {"repo": "o/r", "labels": ["l"], "duration": 30})
        wait_until(lambda: job(gh, jb["id"])["status"] == "in_progress", 5, "job running")
        gh.control("POST", "/_ghsim/runners/%d/offline" % rid)
        s, _, b = gh.api_json("GET", "/repos/o/r/actions/runners/%d" % rid)
        eq((b["status"], b["busy"]), ("offline", False), "runner offline")
        eq(job(gh, jb["id"])["killed"], True, "its job killed")


def raw_get(gh, path, etag=None):
    """One GET on a connection of its own, read as the bytes arrive:
    (status, headers, body bytes, whether the body was whole). A connection
    closed before the announced Content-Length is not an exception here."""
    c = HTTPConnection("127.0.0.1", gh.port, timeout=10)
    hdrs = {"Authorization": "Bearer " + gh.token, "User-Agent": "ghsim-test",
            "X-GitHub-Api-Version": "2022-11-28"}
    if etag:
        hdrs["If-None-Match"] = etag
    try:
        c.request("GET", path, headers=hdrs)
        r = c.getresponse()
        try:
            body, whole = r.read(), True
        except __import__("http.client").client.IncompleteRead as e:
            body, whole = e.partial, False
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body, whole
    finally:
        c.close()


@case
def test_faults_that_cut_answers():
    """truncate, drop_after and omit_runners change the real answer: a cut
    document, a connection lost mid-body, a page with fewer runners than its
    total_count. Each takes effect even when the client holds the ETag."""
    with Ghsim(workdir("cut")) as gh:
        gh.control("POST", "/_ghsim/runners", {"scope": "repos/o/r", "name": "r{i}", "count": 5})
        path = "/repos/o/r/actions/runners"
        s, h, full, whole = raw_get(gh, path)
        eq((s, whole, len(json.loads(full)["runners"])), (200, True, 5), "the whole page")
        etag = h["etag"]
        eq(raw_get(gh, path, etag)[0], 304, "unchanged")

        gh.control("POST", "/_ghsim/faults", {"match": "/actions/runners", "method": "GET", "truncate": 40})
        s, h, body, whole = raw_get(gh, path, etag)
        eq((s, whole, body, h["content-length"]), (200, True, full[:40], "40"), "truncate: a whole answer, cut")
        try:
            json.loads(body)
            raise AssertionError("a cut document parsed")
        except ValueError:
            pass

        gh.control("POST", "/_ghsim/faults", {"match": "/actions/runners", "method": "GET", "drop_after": 30})
        s, h, body, whole = raw_get(gh, path, etag)
        eq((s, whole, body, h["content-length"]), (200, False, full[:30], str(len(full))),
           "drop_after: the connection lost after 30 bytes of the announced body")

        gh.control("POST", "/_ghsim/faults", {"match": "/actions/runners", "method": "GET", "omit_runners": 2})
        s, h, body, whole = raw_get(gh, path, etag)
        page = json.loads(body)
        eq((s, page["total_count"], [r["name"] for r in page["runners"]]), (200, 5, ["r1", "r2", "r3"]),
           "omit_runners: fewer runners than total_count")
        assert h["etag"] != etag, "a short page has an ETag of its own"
        eq(raw_get(gh, path, etag)[0], 304, "faults used up")
        eq(gh.control("GET", "/_ghsim/stats")["faults_applied"], 3, "faults applied")
        for bad in ({"truncate": -1}, {"truncate": 5, "drop_after": 5}, {"omit_runners": "x"},
                    {"status": 500, "truncate": 3}):
            eq(http("POST", gh.url + "/_ghsim/faults", dict(bad, match="x"))[0], 400, "refused: %s" % bad)


@case
def test_pause_does_not_cost_heartbeats():
    """A ghsim stopped with SIGSTOP keeps its runners' sessions: the time it
    could not run does not count against their heartbeats (tests pause it
    to make clients time out, not to take runners away), while a runner
    that stops heartbeating afterwards still goes offline."""
    with Ghsim(workdir("pause"), "--heartbeat-timeout", "1") as gh:
        s, _, b = gh.api_json("POST", "/repos/o/r/actions/runners/generate-jitconfig",
                              {"name": "p-1", "runner_group_id": 1, "labels": ["self-hosted"]})
        eq(s, 201, "jit")
        files = json.loads(base64.b64decode(b["encoded_jit_config"]))
        cred = json.loads(base64.b64decode(files[".credentials"]))["data"]["token"]
        s, _, ans = http("POST", gh.url + "/_ghsim/runner/connect", {"credential": cred})
        assert b"result=ok" in ans, ans
        online = lambda: runner_by_name(gh, "p-1")[0]["status"] == "online"  # noqa: E731
        assert online(), "connected"
        os.kill(gh.pid, signal.SIGSTOP)
        try:
            time.sleep(2.5)
        finally:
            os.kill(gh.pid, signal.SIGCONT)
        time.sleep(0.2)
        assert online(), "offline after a pause of ghsim itself"
        wait_until(lambda: not online(), 3, "offline once its heartbeats stop")


@case
def test_delete_busy_runner_422():
    with Ghsim(workdir("busy")) as gh:
        busy = gh.control("POST", "/_ghsim/runners", {"scope": "orgs/acme", "name": "busy", "busy": True})
        idle = gh.control("POST", "/_ghsim/runners", {"scope": "orgs/acme", "name": "idle"})
        bid, iid = busy["runners"][0]["id"], idle["runners"][0]["id"]
        s, _, b = gh.api_json("DELETE", "/orgs/acme/actions/runners/%d" % bid)
        eq(s, 422, "busy runner")
        assert "still running a job" in b["message"], b
        eq(gh.api("DELETE", "/orgs/acme/actions/runners/%d" % iid)[0], 204, "idle runner")
        eq(gh.api("DELETE", "/orgs/acme/actions/runners/%d" % iid)[0], 404, "already gone")
        eq(gh.api("GET", "/orgs/acme/actions/runners/%d" % iid)[0], 404, "get gone runner")
        eq(gh.api("DELETE", "/orgs/other/actions/runners/%d" % bid)[0], 404, "runner of another scope")
        # a forced delete (machine destroyed) of a runner in the middle of a job kills the job
        r = gh.control("POST", "/_ghsim/runners", {"scope": "orgs/acme", "name": "w", "labels": ["w"]})
        jb = gh.control("POST", "/_ghsim/jobs", {"repo": "acme/x", "labels": ["w"], "duration": 30})
        wait_until(lambda: job(gh, jb["id"])["status"] == "in_progress", 5, "running")
        gh.control("DELETE", "/_ghsim/runners/%d" % r["runners"][0]["id"])
        eq((job(gh, jb["id"])["killed"], gh.control("GET", "/_ghsim/stats")["killed_jobs"]), (True, 1), "killed")


def announce_huge_body(url, path):
    """Send only the headers of a 2 MiB POST and read the status line.
    A server that refuses a body by its Content-Length must answer without
    reading it; sending the body too would race its close (EPIPE/RST)."""
    host, port = urllib.parse.urlsplit(url).netloc.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\n\r\n" % (path, host, 2 << 20)).encode())
        status = s.makefile("rb").readline().split()
        return int(status[1]) if len(status) > 1 else 0


@case
def test_bad_input_is_answered():
    with Ghsim(workdir("badinput")) as gh:
        path = "/repos/o/r/actions/runners/generate-jitconfig"
        eq(gh.api("POST", path, b"{not json")[0], 400, "bad JSON")
        s, _, b = gh.api_json("POST", path, {"name": "x", "runner_group_id": 1})
        eq(s, 422, "labels missing")
        eq(gh.api("POST", path, {"name": "x", "runner_group_id": "1", "labels": ["a"]})[0], 422, "group id type")
        eq(gh.api("POST", path, {"name": "x", "runner_group_id": 1, "labels": []})[0], 422, "no labels")
        eq(gh.api("POST", path, {"name": "x", "runner_group_id": 7, "labels": ["a"]})[0], 404, "unknown group")
        eq(announce_huge_body(gh.url, path), 413, "huge body")
        eq(gh.api("GET", "/repos/o/r/no/such/thing")[0], 404, "unknown route")
        eq(gh.api("GET", "/repos/o/r/actions/runners/12345678901")[0], 404, "unknown runner")
        eq(http("POST", gh.url + "/_ghsim/jobs", b"[1,2")[0], 400, "control: bad JSON")
        eq(http("POST", gh.url + "/_ghsim/jobs", {"repo": "no-slash"})[0], 400, "control: bad repo")
        eq(http("POST", gh.url + "/_ghsim/jobs", {"repo": "o/r", "duration": "x"})[0], 400, "control: duration")
        eq(http("POST", gh.url + "/_ghsim/runners/999/offline")[0], 404, "control: unknown runner")
        s, _, body = http("POST", gh.url + "/_ghsim/runner/poll", {"credential": "nope"})
        eq((s, body), (200, b"result=gone\n"), "runner side: unknown credential")
        with socket.create_connection(("127.0.0.1", gh.port)) as c:
            c.sendall(b"GARBAGE\r\n\r\n")
            c.recv(1024)
        s, _, b = gh.api_json("GET", "/repos/o/r/actions/runners")
        eq(s, 200, "still serving")


@case
def test_keep_alive_answers_without_nagle_stall():
    """A keep-alive client gets each answer at once: headers and body leave
    in one write with TCP_NODELAY, so no answer waits for a delayed ACK
    (~40 ms a request before), and benchmarks against ghsim measure runnerd."""
    with Ghsim(workdir("keepalive")) as gh:
        c = HTTPConnection("127.0.0.1", gh.port, timeout=10)
        hdrs = {"Authorization": "Bearer " + gh.token, "Accept": "application/vnd.github+json",
                "User-Agent": "ghsim-test", "X-GitHub-Api-Version": "2022-11-28"}
        c.request("GET", "/repos/o/r/actions/runners", headers=hdrs)
        c.getresponse().read()
        t0 = time.monotonic()
        for _ in range(20):
            c.request("GET", "/repos/o/r/actions/runners", headers=hdrs)
            r = c.getresponse()
            r.read()
            eq(r.status, 200, "answered")
        per = (time.monotonic() - t0) / 20 * 1000
        c.close()
        eq(per < 20, True, "%.1f ms a request on one keep-alive connection (a Nagle stall is ~40)" % per)


def main():
    passed, failed, skipped = run_tests(CASES)
    remove_workdir(WORK, keep=failed > 0)
    return summary(passed, failed, skipped)


if __name__ == "__main__":
    sys.exit(main())
