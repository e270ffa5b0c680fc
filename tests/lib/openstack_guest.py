"""The guest stand-in of the test OpenStack (tests/lib/openstack.py): nova's
fake driver boots no guest, so this watches Nova (REST, as the cloud's
admin) for ACTIVE servers whose name starts with a prefix and, once for each,
does what a booted cloud-init would do: runs the server's user data as a
process on the host, in a directory of its own (ROOT/guests/ID/) and in its
own session, with an environment like cloud-init's. The process is killed
(its whole session) when its server is deleted or leaves ACTIVE. It runs
nothing for a server not named with the prefix.

Each guest's directory holds: user-data (the script), meta_data.json (as a
config drive's openstack/latest/meta_data.json), pid, out (stdout+stderr),
exit (its status, when it ended) and killed (when it was killed).

Command: openstack_guest.py ROOT PREFIX   (started by Cloud.start_guest)
"""

import base64
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import openstack_rest as rest  # noqa: E402

POLL = 0.5


def guests_dir(root):
    return os.path.join(root, "guests")


def _read_pid(d):
    try:
        with open(os.path.join(d, "pid")) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def kill_guest(d):
    pid = _read_pid(d)
    if not pid:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
        with open(os.path.join(d, "killed"), "w") as f:
            f.write("%d\n" % int(time.time()))
    except ProcessLookupError:
        pass


def stop_guests(root):
    """Kill every guest process the stand-in started (by their recorded pids),
    even when the stand-in itself is gone."""
    g = guests_dir(root)
    if os.path.isdir(g):
        for sid in os.listdir(g):
            kill_guest(os.path.join(g, sid))


class Guest:
    def __init__(self, root, server):
        self.id = server["id"]
        self.dir = os.path.join(guests_dir(root), self.id)
        self.proc = None
        os.makedirs(self.dir, exist_ok=True)
        ud = server.get("OS-EXT-SRV-ATTR:user_data")
        script = base64.b64decode(ud) if ud else b""
        path = os.path.join(self.dir, "user-data")
        with open(path, "wb") as f:
            f.write(script)
        os.chmod(path, 0o700)
        meta = {"uuid": self.id, "name": server["name"], "hostname": server["name"],
                "meta": server.get("metadata", {}), "project_id": server.get("tenant_id"),
                "availability_zone": server.get("OS-EXT-AZ:availability_zone")}
        with open(os.path.join(self.dir, "meta_data.json"), "w") as f:
            json.dump(meta, f)
        if not script:
            return  # a server without user data: cloud-init has nothing to run
        argv = [path] if script.startswith(b"#!") else ["/bin/sh", path]
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": self.dir, "LANG": "C.UTF-8", "USER": "root", "LOGNAME": "root",
               "INSTANCE_ID": self.id, "RUNNERD_TEST_GUEST_DIR": self.dir}
        out = open(os.path.join(self.dir, "out"), "ab")
        self.proc = subprocess.Popen(argv, cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=out, start_new_session=True)
        out.close()
        with open(os.path.join(self.dir, "pid"), "w") as f:
            f.write("%d\n" % self.proc.pid)

    def reap(self):
        if self.proc is not None and self.proc.poll() is not None:
            with open(os.path.join(self.dir, "exit"), "w") as f:
                f.write("%d\n" % self.proc.returncode)
            self.proc = None

    def kill(self):
        if self.proc is not None:
            kill_guest(self.dir)
            self.proc.wait()
            self.proc = None


def watch(root, prefix):
    with open(os.path.join(root, "cloud.json")) as f:
        st = json.load(f)
    admin = rest.Session("http://127.0.0.1:%d/v3" % st["ports"]["keystone"],
                         rest.password_auth("admin", st["admin_password"], "admin"))
    guests = {}
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    while not stopping:
        try:
            servers = admin.get("compute", "/servers/detail?all_tenants=1")["servers"]
        except (rest.HTTPError, OSError) as e:
            print("guest: listing servers: %s" % e, flush=True)  # nova restarting, say
            time.sleep(POLL)
            continue
        active = {s["id"]: s for s in servers
                  if s["name"].startswith(prefix) and s["status"] == "ACTIVE"}
        for sid, s in active.items():
            if sid not in guests:
                print("guest: %s (%s) is ACTIVE: running its user data" % (s["name"], sid), flush=True)
                guests[sid] = Guest(root, s)
        for sid in list(guests):
            guests[sid].reap()
            if sid not in active:
                print("guest: %s is gone or no longer ACTIVE: killed" % sid, flush=True)
                guests.pop(sid).kill()
        time.sleep(POLL)
    for g in guests.values():
        g.kill()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    watch(sys.argv[1], sys.argv[2])
