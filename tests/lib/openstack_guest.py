"""The guest stand-in of the test OpenStack (tests/lib/openstack.py): nova's
fake driver boots no guest, so this watches Nova (REST, as the cloud's
admin) for ACTIVE servers whose name starts with a prefix and, once for each,
does what a booted cloud-init would do: runs the server's user data as a
process on the host, in a directory of its own (ROOT/guests/ID/) and in its
own session and PID namespace, with an environment like cloud-init's and
RUNNERD_HOME=ROOT/guests/ID/home (the user data honours it: the guest's
files, runner and metrics live there, not in /opt/runnerd). The process is
killed (its whole session) when its server is deleted or leaves ACTIVE. It
runs nothing for a server not named with the prefix.

A guest powers itself off as a machine would: `poweroff` and `halt` on its
PATH (ROOT/guests/ID/bin, first) signal the guest's own init (PID 1 of its
namespace, a shell that waits after the user data), and a `kill -TERM 1`
reaches that init too, never the host's. When the init ends so, the
stand-in stops the server through Nova (os-stop: SHUTOFF), as a guest that
powered off shows. The user data ending by itself powers nothing off.

Each guest's directory holds: user-data (the script), meta_data.json (as a
config drive's openstack/latest/meta_data.json), pid, out (stdout+stderr),
home/ (RUNNERD_HOME), poweroff (when it powered itself off), exit (its
status, when it ended) and killed (when it was killed).

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

# PID 1 of a guest's namespace: runs the user data, then waits as a booted
# machine does until something powers it off (SIGTERM to PID 1).
INIT = """trap 'echo "$(date +%s)" >"$RUNNERD_TEST_GUEST_DIR/poweroff"; exit 0' TERM
"$@"
echo "user data: exit $?"
while :; do sleep 3600 & wait $!; done
"""
# poweroff and halt inside a guest: its own init, never the host's
POWEROFF = "#!/bin/sh\nkill -TERM 1\n"


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
        bindir = os.path.join(self.dir, "bin")
        os.makedirs(bindir, exist_ok=True)
        for cmd in ("poweroff", "halt"):
            with open(os.path.join(bindir, cmd), "w") as f:
                f.write(POWEROFF)
            os.chmod(os.path.join(bindir, cmd), 0o755)
        run = [path] if script.startswith(b"#!") else ["/bin/sh", path]
        # a PID namespace of its own: the guest's `kill -TERM 1` is its init's
        argv = ["unshare", "--pid", "--fork", "--kill-child", "/bin/sh", "-c", INIT, "init"] + run
        env = {"PATH": bindir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": self.dir, "LANG": "C.UTF-8", "USER": "root", "LOGNAME": "root",
               "INSTANCE_ID": self.id, "RUNNERD_TEST_GUEST_DIR": self.dir,
               "RUNNERD_HOME": os.path.join(self.dir, "home")}
        out = open(os.path.join(self.dir, "out"), "ab")
        self.proc = subprocess.Popen(argv, cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=out, start_new_session=True)
        out.close()
        with open(os.path.join(self.dir, "pid"), "w") as f:
            f.write("%d\n" % self.proc.pid)

    def reap(self):
        """True once when the guest has ended by powering itself off."""
        if self.proc is not None and self.proc.poll() is not None:
            with open(os.path.join(self.dir, "exit"), "w") as f:
                f.write("%d\n" % self.proc.returncode)
            self.proc = None
            return os.path.exists(os.path.join(self.dir, "poweroff"))
        return False

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
            if guests[sid].reap():
                print("guest: %s powered off: stopping its server" % sid, flush=True)
                try:
                    admin.post("compute", "/servers/%s/action" % sid, {"os-stop": None})
                except (rest.HTTPError, OSError) as e:  # deleted meanwhile, say
                    print("guest: stopping %s: %s" % (sid, e), flush=True)
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
