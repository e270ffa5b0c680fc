#!/usr/bin/python3
"""The baseline of issue 11's OpenStack benchmark (a benchmark, not a test:
it prints, it does not judge): N servers made one after the other with
`openstack server create --wait` (python3-openstackclient, as a person or a
script would make them) against the test OpenStack (tests/lib/openstack.py),
each like a runner's: image, flavor, network, user data, metadata, security
group and key pair. Prints the wall time of the loop, per server, and the
CPU the CLI used. runnerd's side (the same servers through its provider,
target <= 0.3 of this) is added by the provider's work.

    bench_openstack_cli.py [N]      (default 20)
    RUNNERD_TEST_OPENSTACK_ROOT=DIR  use a cloud already up (openstack.py start DIR)
                                     rather than start and stop one here
Run with /usr/bin/python3: the CLI and the cloud need Debian's python.
"""

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
import openstack  # noqa: E402

PREFIX = "runnerd-bench-"
CLI = ["/usr/bin/python3", "/usr/bin/openstack", "--os-cloud", "runnerd-test"]


def cli(env, *args):
    return subprocess.run(CLI + list(args), env=env, check=True, capture_output=True, text=True,
                          timeout=300).stdout


def bench(cloud, n):
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=cloud.clouds_yaml)
    env.pop("OS_CLOUD", None)
    work = tempfile.mkdtemp(prefix="runnerd-bench-os-")
    ud = os.path.join(work, "user-data")
    with open(ud, "w") as f:
        f.write("#!/bin/sh\necho runner would start here\n")
    cli(env, "security", "group", "create", PREFIX + "sg")
    cli(env, "keypair", "create", PREFIX + "kp", "--private-key", os.path.join(work, "key"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    times = []
    t0 = time.time()
    for i in range(n):
        t = time.time()
        out = cli(env, "server", "create", "--wait", "-f", "value", "-c", "status",
                  "--image", openstack.IMAGE, "--flavor", openstack.PREFIX + "-small",
                  "--network", openstack.NETWORK, "--user-data", ud, "--security-group", PREFIX + "sg",
                  "--key-name", PREFIX + "kp", "--property", "runnerd-manager=bench",
                  "--property", "runnerd-flavor=small", "%s%02d" % (PREFIX, i))
        if out.strip() != "ACTIVE":
            raise SystemExit("bench: server %d is %s" % (i, out.strip()))
        times.append(time.time() - t)
    total = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    times.sort()
    print("openstack server create --wait, %d servers one after the other: %.1f s "
          "(%.2f s each: min %.2f, median %.2f, max %.2f); CLI CPU %.1f s"
          % (n, total, total / n, times[0], times[n // 2], times[-1], cpu), flush=True)
    # clean up through the admin's REST API: quicker than n CLI calls
    s = cloud.session()
    for srv in s.get("compute", "/servers?name=" + PREFIX)["servers"]:
        s.call("compute", "DELETE", "/servers/" + srv["id"])
    end = time.time() + 120
    while s.get("compute", "/servers?name=" + PREFIX)["servers"] and time.time() < end:
        time.sleep(0.5)
    s.call("compute", "DELETE", "/os-keypairs/" + PREFIX + "kp")
    for sg in s.get("network", "/v2.0/security-groups?name=" + PREFIX + "sg")["security_groups"]:
        s.call("network", "DELETE", "/v2.0/security-groups/" + sg["id"])
    return total


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    root = os.environ.get("RUNNERD_TEST_OPENSTACK_ROOT")
    if root:
        bench(openstack.Cloud(root), n)
        return 0
    why = openstack.available()
    if why:
        print("bench: the test OpenStack is not installed (missing %s): scripts/deps-openstack.sh" % why)
        return 1
    root = tempfile.mkdtemp(prefix="runnerd-bench-openstack-")
    cloud = openstack.Cloud(root)
    try:
        cloud.start()
        bench(cloud, n)
    finally:
        cloud.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
