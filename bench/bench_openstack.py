#!/usr/bin/python3
"""Issue 11's OpenStack benchmark (it prints, it does not judge): the real
runnerd, with its own ghsim, brings a pool of N runners (min_idle = max =
N) up on the test OpenStack (tests/lib/openstack.py). Prints the wall time
from `runnerd serve` to N servers ACTIVE in Nova (polled every 2 s) and,
with --guest (the guest stand-in runs each server's user data on this
host, as a booted cloud-init would; it polls Nova too, which slows it), to
N runners online on ghsim; runnerd's CPU over that
time; the API calls of one steady pass; then the time a drain takes. The
ratio is against the serial CLI baseline (bench/bench_openstack_cli.py:
`openstack server create --wait` one after the other), given as
--baseline SECONDS (default 278, its figure for 20 on this machine).

    bench_openstack.py [N] [--baseline S] [--guest] [--concurrency C]
        (default N 20; C is providers.os.concurrency, default 4: the test
        cloud's nova-api has two single-threaded workers, and creates that
        queue there past request_timeout (60 s here) fail and are redone)
    RUNNERD_TEST_OPENSTACK_ROOT=DIR  use a cloud already up (openstack.py start DIR)
Run with /usr/bin/python3 (the cloud needs Debian's python), after a build.
"""

import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
from harness import make_workdir, remove_workdir  # noqa: E402
import openstack  # noqa: E402
from openstack_e2e import OsEnv, clean_project, ours  # noqa: E402

MANAGER = "benchos"
# nova-api has two single-threaded workers here: polling it harder would slow
# what is measured (the figures are this coarse)
POLL = 2.0


def cpu_s(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def api_log_size(cloud, svc):
    """Where the uwsgi log of svc (nova-api, neutron-server) ends now."""
    try:
        return os.path.getsize(cloud.path("log", svc + ".out"))
    except OSError:
        return 0


def api_requests(cloud, svc, since):
    """The requests svc logged after byte offset since (uwsgi's request
    lines), as "METHOD /path?key&key" (the query's keys, not its values), in order."""
    with open(cloud.path("log", svc + ".out"), "rb") as f:
        f.seek(since)
        text = f.read().decode(errors="replace")
    out = []
    for ln in text.splitlines():
        m = re.search(r"\] (GET|POST|PUT|DELETE) (/[^ ?]*)(\S*)", ln)
        # the guest stand-in polls as the admin with all_tenants: not runnerd's
        if m and "all_tenants" not in m.group(3):
            keys = sorted(kv.split("=")[0] for kv in m.group(3).lstrip("?").split("&") if kv)
            out.append("%s %s%s" % (m.group(1), m.group(2), "?" + "&".join(keys) if keys else ""))
    return out


def tally(reqs):
    """"GET /v2.1/servers/detail x2, ..." (most first)."""
    counts = {}
    for r in reqs:
        counts[r] = counts.get(r, 0) + 1
    return ", ".join("%s x%d" % (r, n) for r, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def bench(cloud, n, baseline, guest, concurrency):
    sess = cloud.session()
    clean_project(sess, MANAGER + "-")
    env = OsEnv(cloud, "bench-os", [{"name": "small", "provider": "os", "image": openstack.IMAGE,
                                     "labels": ["small"], "min_idle": n, "max": n}],
                MANAGER, bootstrap_timeout="10m", reconcile_interval="10s",
                providers={"os": {"concurrency": concurrency, "request_timeout": "60s"}})
    try:
        t0 = time.time()
        daemon = env.serve()
        t_active = t_online = None
        while time.time() - t0 < 900:
            got = ours(sess, MANAGER)
            if t_active is None and len(got) >= n and all(s["status"] == "ACTIVE" for s in got):
                t_active = time.time() - t0
                cpu_active = cpu_s(daemon.pid)
                if not guest:
                    break
            if guest and t_active is not None:
                online = [r for r in env.gh_runners() if r["status"] == "online"]
                if len(online) >= n:
                    t_online = time.time() - t0
                    cpu_online = cpu_s(daemon.pid)
                    break
            time.sleep(POLL)
        if t_active is None or (guest and t_online is None):
            raise SystemExit("bench: the pool did not come up in 900 s:\n" + env.log()[-3000:])
        # one steady pass: the calls it makes
        time.sleep(3)
        # (the bench's own polling of Nova stops meanwhile)
        before = {svc: api_log_size(cloud, svc) for svc in ("nova-api", "neutron-server")}
        env.run("reconcile", timeout=120)
        steady = {svc: api_requests(cloud, svc, at) for svc, at in before.items()}
        cpu_steady = cpu_s(daemon.pid)
        t1 = time.time()
        env.run("drain", "--wait", "--timeout", "300s", timeout=400)
        while ours(sess, MANAGER) and time.time() - t1 < 300:
            time.sleep(POLL)
        t_drain = time.time() - t1
        log = env.log().splitlines()
        creates = [ln for ln in log if re.search(r"\bcreate %s-[0-9a-f]{12}\b" % MANAGER, ln)]
        failed = [ln for ln in creates if " failed: " in ln]
        print("bench_openstack: %d servers, runnerd %s, provider concurrency %d" %
              (n, "with the guest stand-in" if guest else "(no guest)", concurrency))
        print("  ACTIVE in Nova:   %6.1f s (%.2f s a server); runnerd CPU %.2f s" %
              (t_active, t_active / n, cpu_active))
        if guest:
            print("  runners online:   %6.1f s; runnerd CPU %.2f s" % (t_online, cpu_online))
        print("  serial CLI:       %6.1f s (bench_openstack_cli.py, given)" % baseline)
        print("  ratio ACTIVE/CLI: %6.3f (target <= 0.3)" % (t_active / baseline))
        if guest:
            print("  ratio online/CLI: %6.3f" % (t_online / baseline))
        print("  one steady pass:  %d nova-api requests (%d servers); runnerd CPU so far %.2f s" %
              (len(steady["nova-api"]), n, cpu_steady))
        for svc, reqs in steady.items():
            print("    %-15s %s" % (svc + ":", tally(reqs) or "none"))
        print("    (nova-api itself asks neutron for each listing's ports by device_id and their"
              " security groups by id)")
        print("  drain:            %6.1f s" % t_drain)
        print("  creates:          %d logged, %d failed%s" % (len(creates), len(failed),
                                                            (": " + failed[0][-200:]) if failed else ""))
    finally:
        env.close()
        clean_project(sess, MANAGER + "-")


def main(argv):
    guest = "--guest" in argv
    argv = [a for a in argv if a != "--guest"]
    baseline = 278.0
    if "--baseline" in argv:
        i = argv.index("--baseline")
        baseline = float(argv[i + 1])
        del argv[i:i + 2]
    concurrency = 4
    if "--concurrency" in argv:
        i = argv.index("--concurrency")
        concurrency = int(argv[i + 1])
        del argv[i:i + 2]
    n = int(argv[0]) if argv else 20
    root = os.environ.get("RUNNERD_TEST_OPENSTACK_ROOT")
    given = bool(root)
    if not given:
        why = openstack.available()
        if why:
            print("bench: the test OpenStack is not installed (missing %s): scripts/deps-openstack.sh" % why)
            return 1
        root = make_workdir("bench-os-cloud", 0o700)
    cloud = openstack.Cloud(root)
    before = cloud.guest_pid
    try:
        if not given:
            cloud.start()
        if guest:
            cloud.start_guest(MANAGER + "-")
        bench(cloud, n, baseline, guest, concurrency)
    finally:
        if not given:
            cloud.stop()
            remove_workdir(root)
        elif guest:
            cloud._kill(cloud.guest_pid)
            cloud.guest_pid = before
            cloud._save()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
