"""A private, real, minimal OpenStack for tests: keystone, glance-api,
placement-api, nova-api (uwsgi), nova-conductor, nova-scheduler, nova-compute
(python3-nova with the fake virt driver: no guest boots, see
openstack_guest.py) and neutron-server (API only, an ML2 driver that binds
every port), on SQLite and a private RabbitMQ (tests/lib/rabbitmq.py), all
on 127.0.0.1 free ports, with their own files under one root, each started
in its own session and stopped by its pid. It must never touch a service it
did not start nor listen anywhere but loopback. Installed by
scripts/deps-openstack.sh.

Populated with: a project `runnerd-test` with a user (password) and an
application credential, quotas -1, an image `runnerd-test-image`, flavors
`runnerd-test-small` and `runnerd-test-large`, a network `runnerd-test-net`
with a subnet; ROOT/clouds.yaml names three clouds: `runnerd-test`
(password), `runnerd-test-appcred` (application credential) and
`runnerd-admin` (the cloud's admin).

As a library: c = Cloud(root); c.start(); c.restart("nova-api");
c.revoke_tokens(); c.stop(); c.session() / c.admin() give REST sessions.
As a command (run everything OpenStack with /usr/bin/python3):
  openstack.py run ROOT [--guest PREFIX] -- CMD...   start, run CMD with
      OS_CLIENT_CONFIG_FILE and RUNNERD_TEST_OPENSTACK_ROOT set, stop
  openstack.py start ROOT [--guest PREFIX]     start and leave running
      (both: --token-expiration SECONDS, keystone's token lifetime, default 3600)
  openstack.py stop ROOT                       stop what ROOT's cloud runs
  openstack.py restart ROOT SERVICE            e.g. nova-api
  openstack.py revoke-tokens ROOT [USER]       every token of USER (default
      the test user) stops working now
"""

import grp
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import openstack_conf as conf  # noqa: E402
import openstack_rest as rest  # noqa: E402
import rabbitmq  # noqa: E402

PY = "/usr/bin/python3"  # the python with the OpenStack modules
SHIMS = os.path.join(HERE, "openstack_shims")
PREFIX = "runnerd-test"
PROJECT = PREFIX
USER = PREFIX + "-user"
IMAGE = PREFIX + "-image"
NETWORK = PREFIX + "-net"
FLAVORS = {PREFIX + "-small": (1, 512, 1), PREFIX + "-large": (2, 2048, 10)}

# the services: (kind, what runs, the catalog's service type or None)
SERVICES = {
    "keystone": ("uwsgi", "/usr/bin/keystone-wsgi-public", "identity"),
    "placement-api": ("uwsgi", "/usr/bin/placement-api", "placement"),
    "glance-api": ("uwsgi", "/usr/bin/glance-wsgi-api", "image"),
    "nova-api": ("uwsgi", "/usr/bin/nova-api-wsgi", "compute"),
    "neutron-server": ("uwsgi", "/usr/bin/neutron-api", "network"),
    "nova-conductor": ("py", "nova.cmd.conductor", None),
    "nova-scheduler": ("py", "nova.cmd.scheduler", None),
    "nova-compute": ("py", "nova.cmd.compute", None),
}
URL_SUFFIX = {"identity": "/v3", "compute": "/v2.1", "placement": "", "image": "", "network": ""}
SERVICE_NAMES = {"identity": "keystone", "compute": "nova", "placement": "placement",
                 "image": "glance", "network": "neutron"}
NEEDED = ["/usr/bin/keystone-manage", "/usr/bin/nova-api-wsgi", "/usr/bin/neutron-api",
          "/usr/bin/placement-api", "/usr/bin/glance-wsgi-api", "/usr/bin/uwsgi",
          "/usr/lib/uwsgi/plugins/python3_plugin.so", "/usr/bin/openstack", PY]


def available():
    """None when everything is installed, else what is missing."""
    miss = [p for p in NEEDED if not os.path.exists(p)]
    if not rabbitmq.available():
        miss.append(rabbitmq.SERVER)
    return ", ".join(miss) or None


class Cloud:
    def __init__(self, root, token_expiration=3600):
        self.root = os.path.abspath(root)
        self.state_file = os.path.join(self.root, "cloud.json")
        self.token_expiration = token_expiration
        self.region = "RegionOne"
        self.compute_host = PREFIX + "-compute"
        self.admin_password = self.user_password = ""
        self.appcred_id = self.appcred_secret = ""
        self.ports = {}
        self.pids = {}
        self.ids = {}
        self.guest_pid = 0
        if os.path.exists(self.state_file):
            with open(self.state_file) as f:
                self.__dict__.update(json.load(f))
        self.broker = rabbitmq.Broker(self.path("rabbitmq"))

    # ---- files and addresses ---------------------------------------------

    def path(self, *p):
        return os.path.join(self.root, *p)

    def url(self, svc):
        return "http://127.0.0.1:%d" % self.ports[svc]

    @property
    def transport_url(self):
        return "rabbit://guest:guest@127.0.0.1:%d/" % self.broker.port

    @property
    def clouds_yaml(self):
        return self.path("clouds.yaml")

    def _save(self):
        keep = ("token_expiration", "admin_password", "user_password", "appcred_id",
                "appcred_secret", "ports", "pids", "ids", "guest_pid")
        tmp = self.state_file + ".tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump({k: getattr(self, k) for k in keep}, f)
        os.replace(tmp, self.state_file)

    # ---- processes ---------------------------------------------------------

    def _env(self, svc, shim=True):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_") and k != "PYTHONPATH"}
        env["HOME"] = self.root
        if svc.startswith("nova"):
            if shim:  # not for nova-manage: its migrations begin their own transactions
                env["PYTHONPATH"] = os.path.join(SHIMS, "nova")
            env["OS_NOVA_CONFIG_DIR"] = self.path("etc", "nova")
        elif svc == "neutron-server":
            env["PYTHONPATH"] = os.path.join(SHIMS, "neutron")
            env["OS_NEUTRON_CONFIG_DIR"] = self.path("etc", "neutron")
        elif svc == "keystone":
            env["OS_KEYSTONE_CONFIG_DIR"] = self.path("etc", "keystone")
        elif svc == "placement-api":
            env["OS_PLACEMENT_CONFIG_DIR"] = self.path("etc", "placement")
        elif svc == "glance-api":
            env["OS_GLANCE_CONFIG_DIR"] = self.path("etc", "glance")
        return env

    def _argv(self, svc):
        kind, what, _ = SERVICES[svc]
        log = self.path("log", svc + ".out")
        if kind == "uwsgi":
            # one thread per process: keystone on SQLite fails across threads
            # ("SQLite objects created in a thread can only be used in that same
            # thread") and nova and neutron, eventlet inside, hang ("greenlet.error:
            # cannot switch to a different thread"). The two busiest get two.
            procs = "2" if svc in ("keystone", "nova-api") else "1"
            return ["/usr/bin/uwsgi", "--plugins", "python3", "--master", "--processes", procs,
                    "--threads", "1", "--enable-threads", "--lazy-apps", "--need-app",
                    "--die-on-term", "--buffer-size", "65535",
                    "--http-socket", "127.0.0.1:%d" % self.ports[svc],
                    # uwsgi's http-socket closes every connection without saying so
                    "--add-header", "Connection: close",
                    "--wsgi-file", what, "--logto", log]
        return [PY, "-c", "import sys; from %s import main; sys.exit(main())" % what,
                "--config-file", self.path("etc", "nova", "nova.conf"),
                "--log-file", self.path("log", svc + ".log")]

    def _spawn(self, svc):
        out = open(self.path("log", svc + ".out"), "ab")
        p = subprocess.Popen(self._argv(svc), env=self._env(svc), cwd=self.root, stdin=subprocess.DEVNULL,
                             stdout=out, stderr=out, start_new_session=True)
        out.close()
        self.pids[svc] = p.pid
        self._save()
        return p

    def _kill(self, pid):
        if not pid:
            return
        try:
            os.killpg(pid, signal.SIGTERM)  # the whole session: uwsgi's master and workers
        except ProcessLookupError:
            return
        if not rabbitmq._wait_gone(pid, 10):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            rabbitmq._wait_gone(pid, 10)

    def _wait_http(self, svc, path, deadline):
        while time.time() < deadline:
            pid = self.pids.get(svc)
            if pid and rabbitmq._zombie(pid):
                raise RuntimeError("%s exited (see %s)" % (svc, self.path("log", svc + ".out")))
            try:
                rest.request("GET", self.url(svc) + path, timeout=5)
                return
            except rest.HTTPError:
                return  # it answers (401/300 are fine)
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("%s not answering in time (see %s)" % (svc, self.path("log", svc + ".out")))

    # ---- the steps of start() ----------------------------------------------

    def _run(self, argv, svc, **kw):
        with open(self.path("log", "setup.log"), "ab") as log:
            log.write(("$ %s\n" % " ".join(argv)).encode())
            log.flush()
            r = subprocess.run(argv, env=self._env(svc, shim=False), cwd=self.root, stdout=log, stderr=log,
                               stdin=subprocess.DEVNULL, timeout=300, **kw)
        if r.returncode:
            raise RuntimeError("%s failed (%d): see %s" % (argv[0], r.returncode, self.path("log", "setup.log")))

    def _keystone_setup(self):
        ks = ["/usr/bin/keystone-manage", "--config-file", self.path("etc", "keystone", "keystone.conf")]
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        self._run(ks + ["db_sync"], "keystone")
        self._wal("keystone")
        for what in ("fernet_setup", "credential_setup"):
            self._run(ks + [what, "--keystone-user", user, "--keystone-group", group], "keystone")
        ku = self.url("keystone") + "/v3"
        self._run(ks + ["bootstrap", "--bootstrap-password", self.admin_password,
                        "--bootstrap-admin-url", ku, "--bootstrap-public-url", ku,
                        "--bootstrap-internal-url", ku, "--bootstrap-region-id", self.region], "keystone")

    def _db_setup(self, svc):
        """Each service's schema, in a thread of its own (they are independent)."""
        etc = self.path("etc")
        if svc == "placement":
            self._run(["/usr/bin/placement-manage", "--config-file",
                       os.path.join(etc, "placement", "placement.conf"), "db", "sync"], "placement-api")
            self._wal("placement")
        elif svc == "glance":
            self._run(["/usr/bin/glance-manage", "--config-file",
                       os.path.join(etc, "glance", "glance-api.conf"), "db_sync"], "glance-api")
            self._wal("glance")
        elif svc == "nova":
            nm = ["/usr/bin/nova-manage", "--config-file", os.path.join(etc, "nova", "nova.conf")]
            self._run(nm + ["api_db", "sync"], "nova-api")
            self._run(nm + ["cell_v2", "map_cell0", "--database_connection",
                            "sqlite:///" + self.path("nova_cell0.db")], "nova-api")
            self._run(nm + ["cell_v2", "create_cell", "--name", "cell1", "--database_connection",
                            "sqlite:///" + self.path("nova.db"), "--transport-url", self.transport_url],
                      "nova-api")
            self._run(nm + ["db", "sync"], "nova-api")
            for db in ("nova_api", "nova_cell0", "nova"):
                self._wal(db)
        elif svc == "neutron":
            # neutron's migrations fail on SQLite (ALTERs of constraints):
            # the schema from the models, then stamped as current
            code = ("import sys; from oslo_db.sqlalchemy import engines; "
                    "from neutron.db.migration.models import head; "
                    "from neutron_lib.db import model_base; "
                    "model_base.BASEV2.metadata.create_all(engines.create_engine(sys.argv[1]))")
            self._run([PY, "-c", code, "sqlite:///" + self.path("neutron.db")], "neutron-server")
            self._run(["/usr/bin/neutron-db-manage", "--config-file", self.path("etc", "neutron", "neutron.conf"),
                       "--config-file", self.path("etc", "neutron", "plugins", "ml2", "ml2_conf.ini"),
                       "stamp", "heads"], "neutron-server")
            self._wal("neutron")

    def _wal(self, db):
        # without WAL, keystone (and others) fail writes with "database is locked"
        subprocess.run(["sqlite3", self.path(db + ".db"), "PRAGMA journal_mode=WAL;"],
                       check=True, stdout=subprocess.DEVNULL, timeout=30)

    def _catalog(self, admin):
        """A service and its three endpoints for each API but keystone's
        (keystone-manage bootstrap made those)."""
        for svc, (_, _, stype) in SERVICES.items():
            if stype is None or stype == "identity":
                continue
            s = admin.post("identity", "/services", {"service": {"type": stype, "name": SERVICE_NAMES[stype]}})
            for iface in ("public", "internal", "admin"):
                admin.post("identity", "/endpoints", {"endpoint": {
                    "service_id": s["service"]["id"], "interface": iface, "region_id": self.region,
                    "url": self.url(svc) + URL_SUFFIX[stype]}})
        admin.login()  # a token with the whole catalog

    def _identity(self, admin):
        """The test project, its user (role member) and an application credential."""
        pid = admin.post("identity", "/projects", {"project": {"name": PROJECT, "domain_id": "default"}})
        self.ids["project"] = pid = pid["project"]["id"]
        uid = admin.post("identity", "/users", {"user": {"name": USER, "domain_id": "default",
                                                         "password": self.user_password,
                                                         "default_project_id": pid}})
        self.ids["user"] = uid = uid["user"]["id"]
        roles = admin.get("identity", "/roles?name=member")["roles"]
        admin.call("identity", "PUT", "/projects/%s/users/%s/roles/%s" % (pid, uid, roles[0]["id"]))
        user = self.session()
        ac = user.post("identity", "/users/%s/application_credentials" % uid, {"application_credential": {
            "name": PREFIX + "-appcred", "description": "runnerd's tests"}})["application_credential"]
        self.appcred_id, self.appcred_secret = ac["id"], ac["secret"]
        self._save()

    def _resources(self, admin):
        pid = self.ids["project"]
        admin.call("compute", "PUT", "/os-quota-sets/" + pid, {"quota_set": {
            k: -1 for k in ("instances", "cores", "ram", "key_pairs", "metadata_items",
                            "server_groups", "server_group_members")}})
        admin.call("network", "PUT", "/v2.0/quotas/" + pid, {"quota": {
            k: -1 for k in ("network", "subnet", "port", "router", "floatingip",
                            "security_group", "security_group_rule")}})
        for name, (vcpus, ram, disk) in FLAVORS.items():
            f = admin.post("compute", "/flavors", {"flavor": {"name": name, "vcpus": vcpus, "ram": ram,
                                                              "disk": disk, "os-flavor-access:is_public": True}})
            self.ids[name] = f["flavor"]["id"]
        img = admin.post("image", "/v2/images", {"name": IMAGE, "disk_format": "raw",
                                                 "container_format": "bare", "visibility": "public"})
        admin.call("image", "PUT", "/v2/images/%s/file" % img["id"], b"runnerd test image\n" * 64,
                   {"Content-Type": "application/octet-stream"})
        self.ids["image"] = img["id"]
        admin.get("network", "/v2.0/networks")  # before any port call: loads every extension
        net = admin.post("network", "/v2.0/networks", {"network": {"name": NETWORK, "project_id": pid,
                                                                   "shared": False}})["network"]
        admin.post("network", "/v2.0/subnets", {"subnet": {
            "name": NETWORK + "-subnet", "network_id": net["id"], "project_id": pid, "ip_version": 4,
            "cidr": "10.241.0.0/16", "enable_dhcp": False}})
        self.ids["network"] = net["id"]
        self._save()

    def _discover_compute(self, admin, deadline):
        """Wait for the fake compute node's record (in cell1's database: the
        API lists no node before it is mapped), then map it into cell1."""
        import sqlite3
        while time.time() < deadline:
            if rabbitmq._zombie(self.pids["nova-compute"]):
                raise RuntimeError("nova-compute exited (see %s)" % self.path("log", "nova-compute.log"))
            db = sqlite3.connect(self.path("nova.db"), timeout=10)
            try:
                n = db.execute("SELECT count(*) FROM compute_nodes WHERE deleted = 0").fetchone()[0]
            finally:
                db.close()
            if n:
                self._run(["/usr/bin/nova-manage", "--config-file", self.path("etc", "nova", "nova.conf"),
                           "cell_v2", "discover_hosts"], "nova-api")
                if admin.get("compute", "/os-hypervisors")["hypervisors"]:
                    return
            time.sleep(0.5)
        raise RuntimeError("no compute node in time (see %s)" % self.path("log", "nova-compute.log"))

    def write_clouds_yaml(self):
        ku = self.url("keystone") + "/v3"
        text = """# the test OpenStack of %s (tests/lib/openstack.py)
clouds:
  runnerd-test:
    auth_type: password
    auth:
      auth_url: %s
      username: %s
      password: "%s"
      project_name: %s
      user_domain_name: Default
      project_domain_name: Default
    region_name: %s
    interface: public
    identity_api_version: 3
  runnerd-test-appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: %s
      application_credential_id: "%s"
      application_credential_secret: "%s"
    region_name: %s
    interface: public
    identity_api_version: 3
  runnerd-admin:
    auth_type: password
    auth:
      auth_url: %s
      username: admin
      password: "%s"
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: %s
    interface: public
    identity_api_version: 3
""" % (self.root, ku, USER, self.user_password, PROJECT, self.region, ku, self.appcred_id,
            self.appcred_secret, self.region, ku, self.admin_password, self.region)
        fd = os.open(self.clouds_yaml, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)

    # ---- the API -------------------------------------------------------------

    def admin(self):
        return rest.Session(self.url("keystone") + "/v3",
                            rest.password_auth("admin", self.admin_password, "admin"), self.region)

    def session(self, appcred=False):
        """A REST session as the test user (password, or its application credential)."""
        auth = (rest.appcred_auth(self.appcred_id, self.appcred_secret) if appcred
                else rest.password_auth(USER, self.user_password, PROJECT))
        return rest.Session(self.url("keystone") + "/v3", auth, self.region)

    def start(self, guest_prefix=None, timeout=300):
        """Bring the whole cloud up; prints how long it took."""
        why = available()
        if why:
            raise RuntimeError("the test OpenStack is not installed (missing %s): run scripts/deps-openstack.sh"
                               % why)
        t0 = time.time()
        deadline = t0 + timeout
        for d in ("log", "lock", "etc", "keystone", "nova", "neutron"):
            os.makedirs(self.path(d), exist_ok=True)
        os.chmod(self.root, 0o700)
        self.admin_password = secrets.token_hex(16)
        self.user_password = secrets.token_hex(16)
        self.ports = {svc: rabbitmq.free_port() for svc, s in SERVICES.items() if s[0] == "uwsgi"}
        self.broker.port = self.broker.dist_port = self.broker.epmd_port = 0
        self.broker.port = rabbitmq.free_port()  # the transport URL is in nova's config
        self.broker.dist_port, self.broker.epmd_port = rabbitmq.free_port(), rabbitmq.free_port()
        os.makedirs(self.broker.root, exist_ok=True)
        self._save()
        errors = []

        def bg(fn, *a):
            def body():
                try:
                    fn(*a)
                except Exception as e:  # reported by the joiner
                    errors.append("%s: %s" % (fn.__name__, e))
            t = threading.Thread(target=body)
            t.start()
            return t

        broker = bg(self.broker.start)
        conf.keystone(self)
        for write in (conf.placement, conf.glance, conf.nova, conf.neutron):
            write(self)
        dbs = [bg(self._db_setup, s) for s in ("nova", "neutron", "placement", "glance")]
        self._keystone_setup()
        self._spawn("keystone")
        self._wait_http("keystone", "/v3", deadline)
        admin = self.admin().login()
        self._catalog(admin)
        self._identity(admin)
        for t in dbs + [broker]:
            t.join()
        if errors:
            raise RuntimeError("; ".join(errors))
        for svc in SERVICES:
            if svc != "keystone":
                self._spawn(svc)
        for svc, path in (("placement-api", "/"), ("glance-api", "/versions"), ("nova-api", "/"),
                          ("neutron-server", "/")):
            self._wait_http(svc, path, deadline)
        self._resources(admin)
        self._discover_compute(admin, deadline)
        self.write_clouds_yaml()
        if guest_prefix:
            self.start_guest(guest_prefix)
        print("openstack: the test cloud is up in %.1f s (%s)" % (time.time() - t0, self.root), flush=True)
        return self

    def start_guest(self, prefix):
        """The guest stand-in (openstack_guest.py) for servers named PREFIX*."""
        out = open(self.path("log", "guest.out"), "ab")
        p = subprocess.Popen([PY, os.path.join(HERE, "openstack_guest.py"), self.root, prefix],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        out.close()
        self.guest_pid = p.pid
        self._save()

    def stop_guest(self, restore=0):
        """Stop the guest stand-in start_guest() started; restore: the pid
        recorded before it (a test program on a cloud it was given puts
        back what the cloud had)."""
        self._kill(self.guest_pid)
        self.guest_pid = restore
        self._save()

    def restart(self, svc):
        """Stop one service by its pid and start it again on the same port."""
        self._kill(self.pids.get(svc))
        self._spawn(svc)
        if SERVICES[svc][0] == "uwsgi":
            self._wait_http(svc, "/", time.time() + 60)

    def revoke_tokens(self, user=USER):
        """Every token USER holds stops working (keystone records a
        revocation event when a user is disabled; the services see it once
        their cache of validated tokens lapses, which this waits for); the
        user can log in again at once."""
        admin = self.admin()
        uid = admin.get("identity", "/users?name=" + user)["users"][0]["id"]
        admin.call("identity", "PATCH", "/users/" + uid, {"user": {"enabled": False}})
        admin.call("identity", "PATCH", "/users/" + uid, {"user": {"enabled": True}})
        # revocations are to the second (a token from the same second is
        # revoked too), and the services trust a token for TOKEN_CACHE_TIME
        time.sleep(conf.TOKEN_CACHE_TIME + 1.1)

    def stop(self):
        from openstack_guest import stop_guests
        self.stop_guest()
        stop_guests(self.root)
        for svc in list(SERVICES)[::-1]:
            self._kill(self.pids.get(svc))
            self.pids.pop(svc, None)
        self._save()
        self.broker.stop()


def _option(argv, name, default=None):
    """--name VALUE taken out of argv (before any "--")."""
    head = argv[:argv.index("--")] if "--" in argv else argv
    if name not in head:
        return default
    i = argv.index(name)
    v = argv[i + 1]
    del argv[i:i + 2]
    return v


def main(argv):
    guest = _option(argv, "--guest")
    expiration = int(_option(argv, "--token-expiration", "3600"))
    if len(argv) >= 2 and argv[0] in ("start", "run"):
        root = argv[1]
        if argv[0] == "run" and (len(argv) < 4 or argv[2] != "--"):
            print(__doc__, file=sys.stderr)
            return 2
        why = available()
        if why:
            print("openstack: not installed (missing %s): skipped" % why, file=sys.stderr)
            return 77
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        c = Cloud(root, token_expiration=expiration)
        try:
            c.start(guest)
        except Exception:
            Cloud(root).stop()
            raise
        if argv[0] == "start":
            return 0
        try:
            env = dict(os.environ)
            env["OS_CLIENT_CONFIG_FILE"] = c.clouds_yaml
            env["RUNNERD_TEST_OPENSTACK_ROOT"] = c.root
            return subprocess.call(argv[3:], env=env)
        finally:
            Cloud(root).stop()
    if len(argv) == 2 and argv[0] == "stop":
        Cloud(argv[1]).stop()
        return 0
    if len(argv) == 3 and argv[0] == "restart":
        Cloud(argv[1]).restart(argv[2])
        return 0
    if len(argv) in (2, 3) and argv[0] == "revoke-tokens":
        Cloud(argv[1]).revoke_tokens(*argv[2:])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
