#!/usr/bin/env python3
"""The runner's environment and support services, proven inside the Debian
cloud-init image on a real LXD (issue 12): the proxy (the job's environment,
Docker's daemon drop-in and client config, aproxy's nftables redirect to a
real tinyproxy), the Docker Hub mirror merged into the image's own
daemon.json, the tmate server in the job's environment, and the
repo-policy check against a compliance-service double, with ghsim jobs
carrying real event payloads (@octokit/webhooks-examples): a push, a
pull_request from a fork (refused), a schedule.

Test traffic stays on this machine: the containers reach ghsim, the
compliance double and tinyproxy through LXD proxy devices on 127.0.0.1; the
address aproxy redirects is inside a network namespace this test makes
(excluded ranges are set so that it is not excluded), and the excluded one is
the test bridge's own address on the host. Docker itself is not in the image
(too large for CI): its files are proven, not a running daemon."""

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import free_port, stop_process, wait_until  # noqa: E402
from lxd_harness import LxdEnv, run_lxd_tests  # noqa: E402
from policy_double import PolicyDouble, payloads  # noqa: E402

SETUP = None
REPO = "octo/hello"
FORK = "forker/hello"
NETNS_ADDR = "172.31.254.2"  # inside the namespace this test makes
NETNS_HOST = "172.31.254.1"
MIRROR = "https://127.0.0.1:5000"  # only written into configs: nothing connects to it


# --- test HTTP servers: one in a namespace, one on the bridge's address ------

SERVER = r"""
import http.server, json, sys
addr, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        with open(log, "a") as f:
            f.write(json.dumps({"path": self.path, "client": self.client_address[0],
                                "via": self.headers.get("Via")}) + "\n")
        body = ("hello from %s%s\n" % (addr, self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer((addr, port), H).serve_forever()
"""


def wait_serving(proc, addr, what):
    """Until the test server proc answers on addr:80 from the host (a path
    the assertions never look for), so that what the job's requests meet is
    the path under test, not a server still starting."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def answers():
        assert proc.poll() is None, "%s exited with %s" % (what, proc.returncode)
        with opener.open("http://%s/_ready" % addr, timeout=2) as r:
            return r.status == 200
    wait_until(answers, 30, what, interval=0.2, retry=(OSError,))


class Netns:
    """A network namespace of this test's own with a veth to the host:
    NETNS_HOST on the host side, NETNS_ADDR inside, an HTTP server on
    NETNS_ADDR:80 logging what reaches it."""

    def __init__(self, tmp):
        tag = "%d" % (os.getpid() % 100000)
        self.ns = "runnerd-env-" + tag
        self.veth = "rdenv%sh" % tag
        self.log = os.path.join(tmp, "netns-http.log")
        open(self.log, "w").close()
        self.proc = None
        sh = ["ip", "netns", "add", self.ns], \
            ["ip", "link", "add", self.veth, "type", "veth", "peer", "name", "rdenv%sn" % tag], \
            ["ip", "link", "set", "rdenv%sn" % tag, "netns", self.ns], \
            ["ip", "addr", "add", NETNS_HOST + "/30", "dev", self.veth], \
            ["ip", "link", "set", self.veth, "up"], \
            ["ip", "-n", self.ns, "addr", "add", NETNS_ADDR + "/30", "dev", "rdenv%sn" % tag], \
            ["ip", "-n", self.ns, "link", "set", "rdenv%sn" % tag, "up"], \
            ["ip", "-n", self.ns, "link", "set", "lo", "up"]
        for cmd in sh:
            subprocess.run(cmd, check=True, capture_output=True)
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, sys.executable, "-c", SERVER, NETNS_ADDR,
                                      "80", self.log], stdin=subprocess.DEVNULL)
        wait_serving(self.proc, NETNS_ADDR, "the namespace's HTTP server")

    def hits(self):
        with open(self.log) as f:
            return [json.loads(ln) for ln in f if ln.strip()]

    def state(self):
        """What a failed assertion shows of the namespace: its server's
        exit status (None: running), its links and the host's route."""
        links = subprocess.run(["ip", "-n", self.ns, "-br", "addr"], capture_output=True, text=True).stdout
        route = subprocess.run(["ip", "route", "get", NETNS_ADDR], capture_output=True, text=True).stdout
        return {"server_exit": self.proc.poll(), "links": links, "route": route, "hits": self.hits()}

    def close(self):
        if self.proc:
            stop_process(self.proc)
        subprocess.run(["ip", "link", "del", self.veth], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


class BridgeServer:
    """An HTTP server on the test bridge's host address, port 80: what the
    container reaches there directly (an excluded range)."""

    def __init__(self, addr, tmp):
        self.log = os.path.join(tmp, "bridge-http.log")
        open(self.log, "w").close()
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, addr, "80", self.log], stdin=subprocess.DEVNULL)
        wait_serving(self.proc, addr, "the bridge address's HTTP server")

    def hits(self):
        with open(self.log) as f:
            return [json.loads(ln) for ln in f if ln.strip()]

    def close(self):
        stop_process(self.proc)


class Tinyproxy:
    """Debian's tinyproxy on 127.0.0.1 (transparent mode compiled in), its
    own config and log in tmp, stopped by pid."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "tinyproxy")
        os.makedirs(self.dir)
        self.port = free_port()
        self.log = os.path.join(self.dir, "tinyproxy.log")
        open(self.log, "w").close()
        shutil.chown(self.log, "nobody")
        os.chmod(self.dir, 0o755)
        conf = os.path.join(self.dir, "tinyproxy.conf")
        with open(conf, "w") as f:
            f.write("User nobody\nGroup nogroup\nPort %d\nListen 127.0.0.1\nTimeout 30\n"
                    "LogFile \"%s\"\nLogLevel Info\nMaxClients 20\nAllow 127.0.0.1\n"
                    "ViaProxyName \"runnerd-test-proxy\"\n" % (self.port, self.log))
        self.proc = subprocess.Popen(["tinyproxy", "-d", "-c", conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def close(self):
        stop_process(self.proc)


def queue(env, event, payload, run, workflow, duration=1, head_branch="main", head_sha=None):
    body = {"repo": REPO, "labels": ["self-hosted", "envtest"], "duration": duration, "workflow": workflow,
            "event": event, "event_payload": payload, "run": run, "head_branch": head_branch}
    if head_sha:
        body["head_sha"] = head_sha
    return env.gh("POST", "/_ghsim/jobs", body)


def bridge_address():
    net = SETUP.vars["LXD_TEST_NETWORK"]
    cidr = SETUP.api.call("GET", "/1.0/networks/%s" % net)["config"]["ipv4.address"]
    addr, prefix = cidr.split("/")
    octets = [int(o) for o in addr.split(".")]
    bits = (octets[0] << 24 | octets[1] << 16 | octets[2] << 8 | octets[3]) & (~0 << (32 - int(prefix)))
    subnet = ".".join(str(bits >> s & 255) for s in (24, 16, 8, 0)) + "/" + prefix
    return addr, subnet


def read_in(env, name, path):
    rc, out = env.api.exec(name, ["sh", "-c", "cat %s" % path])
    assert rc == 0, (name, path, rc, out)
    return out


def test_debian_runner_env_proxy_aproxy_mirror_tmate_repo_policy():
    bridge, subnet = bridge_address()
    policy = PolicyDouble()
    env = tiny = ns = host_srv = None
    try:
        env = LxdEnv(SETUP, "renv", [{"name": "envtest", "labels": ["envtest"], "min_idle": 2, "max": 2}],
                     image="debian", bootstrap="cloud-init", bootstrap_timeout="240s")
        tiny = Tinyproxy(env.tmp)
        ns = Netns(env.tmp)
        host_srv = BridgeServer(bridge, env.tmp)
        env.add_proxy_devices({"policy": policy.port, "tinyproxy": tiny.port})
        policy_token_file = os.path.join(env.secrets, "policy-token")
        with open(policy_token_file, "w") as f:
            f.write(policy.token + "\n")
        os.chmod(policy_token_file, 0o600)
        proxy = "http://127.0.0.1:%d" % tiny.port
        env.extra_lines = [
            "runner:",
            "  proxy:",
            "    http: %s" % proxy,
            "    https: %s" % proxy,
            "    no_proxy: 127.0.0.1,localhost",
            "    aproxy: true",
            "    aproxy_ports: [80]",
            # the bridge's range is left alone; the namespace's address is not
            "    aproxy_exclude: [%s]" % subnet,
            "  dockerhub_mirror: %s" % MIRROR,
            "  ssh_debug:",
            "    - host: tmate.runnerd.test",
            "      port: 10022",
            "      rsa_fingerprint: SHA256:rsa-runnerd-test",
            "      ed25519_fingerprint: SHA256:ed25519-runnerd-test",
            "  repo_policy_compliance:",
            "    url: http://127.0.0.1:%d/" % policy.port,
            "    token_file: %s" % policy_token_file,
        ]
        env.write_config()
        env.run("check-config")
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 300, "2 idle Debian runners")
        # one one-time token per runner, asked with the service's token
        assert len(policy.issued) >= 2, policy.issued

        pr, push, schedule = payloads(REPO, FORK)
        step = ("env > /tmp/runnerd-job-env\n"
                "curl -sS --noproxy '*' -m 20 http://%(ns)s/via-aproxy > /tmp/aproxy.out 2>&1\n"
                "curl -sS -m 20 http://%(ns)s/via-env > /tmp/envproxy.out 2>&1\n"
                "curl -sS --noproxy '*' -m 20 http://%(br)s/excluded > /tmp/excluded.out 2>&1\n"
                "touch /tmp/runnerd-job-done\n"
                "i=0; while [ ! -e /tmp/runnerd-release ] && [ $i -lt 240 ]; do sleep 0.5; i=$((i+1)); done\n"
                % {"ns": NETNS_ADDR, "br": bridge})
        pj = queue(env, "push", push, step, "env-push", head_sha=push["after"])
        # a pull request from a fork: refused; its step must never run
        prh = pr["pull_request"]["head"]
        prj = queue(env, "pull_request", pr, "curl -s --noproxy '*' http://%s/pr-step-ran" % bridge,
                    "env-pr", head_branch=prh["ref"], head_sha=prh["sha"])

        def running(jid):
            j = [j for j in env.jobs() if j["id"] == jid][0]
            return j if j.get("runner_name") and j["status"] == "in_progress" else None
        name = env.wait(lambda: running(pj["id"]), 120, "the push job running")["runner_name"]
        env.wait(lambda: env.api.exec(name, ["test", "-e", "/tmp/runnerd-job-done"])[0] == 0, 90,
                 "the push job's step done")

        # --- the job's environment: proxy, mirror, tmate; no policy token
        job_env = dict(ln.split("=", 1) for ln in read_in(env, name, "/tmp/runnerd-job-env").splitlines()
                       if "=" in ln)
        for k in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
            assert job_env.get(k) == proxy, (k, job_env.get(k))
        assert job_env.get("NO_PROXY") == "127.0.0.1,localhost" == job_env.get("no_proxy"), job_env
        assert job_env.get("DOCKERHUB_MIRROR") == MIRROR == job_env.get("CONTAINER_REGISTRY_URL"), job_env
        assert job_env.get("TMATE_SERVER_HOST") == "tmate.runnerd.test", job_env
        assert job_env.get("TMATE_SERVER_PORT") == "10022", job_env
        assert job_env.get("TMATE_SERVER_RSA_FINGERPRINT") == "SHA256:rsa-runnerd-test", job_env
        assert job_env.get("TMATE_SERVER_ED25519_FINGERPRINT") == "SHA256:ed25519-runnerd-test", job_env
        assert not [k for k in job_env if "POLICY" in k], job_env
        assert not [v for v in job_env.values() if policy.token in v or any(t in v for t in policy.issued)]

        # --- Docker: the image's daemon.json merged, the daemon's drop-in, the client's proxies
        daemon = json.loads(read_in(env, name, "/etc/docker/daemon.json"))
        assert daemon == {"log-level": "warn", "registry-mirrors": [MIRROR]}, daemon
        dropin = read_in(env, name, "/etc/systemd/system/docker.service.d/runnerd-proxy.conf")
        for k in ("HTTP_PROXY", "HTTPS_PROXY"):
            assert 'Environment="%s=%s"' % (k, proxy) in dropin, dropin
        assert 'Environment="NO_PROXY=127.0.0.1,localhost"' in dropin, dropin
        client = json.loads(read_in(env, name, "/root/.docker/config.json"))
        assert client == {"proxies": {"default": {"httpProxy": proxy, "httpsProxy": proxy,
                                                  "noProxy": "127.0.0.1,localhost"}}}, client

        # --- aproxy: the rules nft holds, and where the job's curl went
        out = read_in(env, name, "/tmp/aproxy.out")
        assert out.strip() == "hello from %s/via-aproxy" % NETNS_ADDR, (out, ns.state(), tiny.text()[-2000:])
        hit = [h for h in ns.hits() if h["path"] == "/via-aproxy"]
        assert len(hit) == 1 and "runnerd-test-proxy" in (hit[0]["via"] or ""), ns.hits()
        assert "GET /via-aproxy HTTP/1.1" in tiny.text(), tiny.text()  # transparent: no absolute URL
        out = read_in(env, name, "/tmp/envproxy.out")
        assert out.strip() == "hello from %s/via-env" % NETNS_ADDR, (out, ns.state(), tiny.text()[-2000:])
        assert "GET http://%s/via-env HTTP/1.1" % NETNS_ADDR in tiny.text(), tiny.text()
        # the excluded range: straight to the bridge's address, not through the proxy
        out = read_in(env, name, "/tmp/excluded.out")
        assert out.strip() == "hello from %s/excluded" % bridge, out
        hit = [h for h in host_srv.hits() if h["path"] == "/excluded"]
        assert len(hit) == 1 and hit[0]["via"] is None and hit[0]["client"] != "127.0.0.1", host_srv.hits()
        assert "/excluded" not in tiny.text()
        rc, rules = env.api.exec(name, ["nft", "list", "table", "ip", "runnerd_aproxy"])
        assert rc == 0, rules
        assert "hook output" in rules and "tcp dport 80 dnat to 127.0.0.1:%d" % tiny.port in rules, rules
        assert "ip daddr %s return" % subnet in rules and "ip daddr 127.0.0.0/8 return" in rules, rules
        # ports as configured (no 443, but the proxy's own port may hold those digits); loopback proxy
        assert not re.search(r"(?<![\d.:])443(?!\d)", rules) and "prerouting" not in rules, rules
        env.api.exec(name, ["touch", "/tmp/runnerd-release"])

        # --- the repo-policy check: push allowed, the fork's PR refused, then a schedule
        def done(jid):
            j = [j for j in env.jobs() if j["id"] == jid][0]
            return j if j["status"] == "completed" else None
        pjd = env.wait(lambda: done(pj["id"]), 120, "the push job completed")
        prd = env.wait(lambda: done(prj["id"]), 120, "the PR job completed")
        assert pjd["conclusion"] == "success", pjd
        assert prd["conclusion"] == "failure", prd
        sj = queue(env, "schedule", schedule, "true", "env-schedule")
        sjd = env.wait(lambda: done(sj["id"]), 300, "the schedule job completed")
        assert sjd["conclusion"] == "success", sjd

        assert not [h for h in host_srv.hits() if h["path"] == "/pr-step-ran"], "the refused job's step ran"
        by_path = {}
        for c in policy.checks:
            by_path.setdefault(c["path"], []).append(c)
        assert sorted(by_path) == ["/pull_request/check-run", "/push/check-run", "/schedule/check-run"], by_path
        assert all(c["ok_token"] for c in policy.checks), policy.checks
        assert by_path["/push/check-run"][0]["body"] == {"repository_name": REPO}, by_path
        assert by_path["/schedule/check-run"][0]["body"] == {"repository_name": REPO}, by_path
        assert by_path["/pull_request/check-run"][0]["body"] == {
            "repository_name": REPO, "source_repository_name": FORK, "target_branch_name": "main",
            "source_branch_name": prh["ref"], "commit_sha": prh["sha"]}, by_path
        # the refusal: post-job metrics say so with the HTTP code; the instance ended
        stop = env.wait(lambda: [ev for ev in env.events("runner_stop") if ev.get("workflow") == "env-pr"], 120,
                        "the refused runner's runner_stop")
        assert stop[0]["status"] == "repo-policy-check-failure", stop
        assert stop[0]["status_info"] == {"code": 403}, stop
        env.wait(lambda: prd["runner_name"] not in env.lxd_instances(), 60, "the refused runner's instance gone")
        def allowed_stops():
            got = [ev for ev in env.events("runner_stop") if ev.get("workflow") in ("env-push", "env-schedule")]
            return got if len(got) >= 2 else None
        ok = env.wait(allowed_stops, 120, "the allowed jobs' runner_stop")
        assert [ev["status"] for ev in ok] == ["normal"] * 2, ok
        # no token in runnerd's log
        log = env.log()
        assert policy.token not in log and not [t for t in policy.issued if t in log]
        env.run("drain", "--wait", "--timeout", "120s", timeout=180)
        assert env.lxd_instances() == {}, env.lxd_instances()
    finally:
        for x in (env, tiny, ns, host_srv):
            if x is not None:
                try:
                    x.close()
                except Exception as e:  # the others still close
                    print("# close: %s" % e, flush=True)
        policy.close()


def set_setup(setup):
    global SETUP
    SETUP = setup


if __name__ == "__main__":
    run_lxd_tests([test_debian_runner_env_proxy_aproxy_mirror_tmate_repo_policy], set_setup)
