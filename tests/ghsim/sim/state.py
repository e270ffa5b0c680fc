"""ghsim's model: runners, workflow jobs and everything else GitHub would
hold (tokens, rate budgets, groups, faults, counters), behind one lock; the
dispatcher that hands queued jobs to matching idle runners, and the monitor
that expires heartbeats and finishes simulated runners' jobs. Callers hold
State.lock; nothing here does network I/O (webhooks are only queued).
"""

import os
import queue
import random
import re
import secrets
import threading
import time
import traceback

from .auth import TOKEN_FORMATS
from .common import ARCH_LABEL, RATE_LIMIT, RUN_ID_BASE, RUNNER_VERSION, log
from .releases import build_packages, version_refusal
from .webhooks import webhook_job

MONITOR_TICK = 0.2  # seconds between the monitor's looks at heartbeats and simulated jobs


class Runner:
    def __init__(self, rid, name, scope, labels, group, ephemeral, simulated):
        self.id, self.name, self.scope = rid, name, scope
        self.labels = labels  # [(id, name, type)]
        self.group_id, self.group_name = group
        self.ephemeral, self.simulated = ephemeral, simulated
        self.os, self.version = "Linux", RUNNER_VERSION
        self.credential = None
        self.session = False  # process runners: connected and heartbeating
        self.gone = False  # process treated as gone: its credential no longer works
        self.sim_online = False  # simulated runners: status set by the control API
        self.busy = False
        self.job = None  # job id assigned to this runner
        self.last_seen = 0.0
        self.created = time.time()

    def online(self):
        return self.sim_online if self.simulated else (self.session and not self.gone)


class Job:
    def __init__(self, jid, run_id, repo, spec):
        self.id, self.run_id, self.repo = jid, run_id, repo
        self.labels = spec["labels"]
        self.duration = spec["duration"]
        self.workflow = spec["workflow"]
        self.event = spec["event"]
        self.name = spec["name"]
        self.job_key = spec["job"]
        self.head_branch = spec["head_branch"]
        self.head_sha = spec["head_sha"]
        self.run = spec["run"]
        self.event_payload = spec["event_payload"]
        self.status, self.conclusion, self.killed = "queued", None, False
        self.created_at = time.time()
        self.started_at = self.completed_at = None
        self.runner_id = self.runner_name = self.runner_group_id = self.runner_group_name = None
        self.started = False  # the runner picked it up
        self.runner_labels = None  # the labels of the runner that picked it up (kept after it is deleted)


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Condition(threading.RLock())
        self.port = 0
        self.tokens, self.tokens_mtime = set(), None
        self.webhook_url = args.webhook_url
        self.webhook_secret = None
        self.webhook_skip = set()  # actions whose deliveries are not sent (a missed webhook)
        self.hook_deliveries = []  # what the deliveries API lists: the last 1000 attempts, oldest first
        self.next_delivery_id = 31_000_000_000
        if args.webhook_secret_file:
            with open(args.webhook_secret_file) as f:
                self.webhook_secret = f.read().strip()
        self.packages = build_packages()
        self.wh_queue = queue.Queue(maxsize=10000)
        self.jwt_cache = {}
        self.token_history = []  # installation tokens minted since start (not forgotten by reset)
        self.last_tick = time.time()
        self.reset()

    def reset(self):
        with self.lock:
            self.runners = {}  # id -> Runner
            self.creds = {}  # credential -> runner id
            self.jobs = {}  # id -> Job (insertion order = FIFO)
            self.reg_tokens = {}  # token -> (kind, scope, expires)
            self.inst_tokens = {}  # token -> expires
            self.faults = []
            self.label_ids = {}
            self.next_runner_id = 1
            self.next_job_id = self.args.job_id_base + random.randint(1, 999_999)
            self.next_run_id = RUN_ID_BASE + random.randint(1, 999_999)
            self.next_group_id = 2
            self.groups = {}  # org key -> [group dicts]
            self.names = {}  # scope key -> display name
            self.rate = {"limit": RATE_LIMIT, "remaining": RATE_LIMIT, "reset": int(time.time()) + 3600, "used": 0}
            # One budget per rate-limit resource. As on github.com every REST call counts
            # against core (registration-token and generate-jitconfig included);
            # actions_runner_registration is spent by config.sh's registration (runner side).
            self.rates = {"core": self.rate,
                          "actions_runner_registration": {"limit": 10000, "remaining": 10000,
                                                          "reset": int(time.time()) + 3600, "used": 0}}
            self.rate_routes = []  # [(path substring, resource)] set by POST /_ghsim/ratelimit "routes"
            self.inst_token_ttl = 3600  # seconds an installation token lives (POST /_ghsim/app)
            self.inst_token_format = "stateless"  # when the exchange does not ask (POST /_ghsim/app)
            self.app_stats = {"issued": {f: 0 for f in TOKEN_FORMATS},
                              "s2s_header": {"enabled": 0, "disabled": 0, "other": 0}}
            self.stats = {"requests": 0, "rate_counted": 0, "not_modified": 0, "by_route": {},
                          "killed_jobs": 0, "faults_applied": 0,
                          "webhooks": {"sent": 0, "failed": 0, "dropped": 0}}
            self.deliveries = []
            # Runner releases, newest first: [(version, published_at)]; what the
            # downloads list offers is the newest. A runner below min_version, or
            # one whose next release is more than max_behind_days old, gets no
            # job (GitHub's rule since 2026): its session is refused.
            self.releases = [(RUNNER_VERSION, int(time.time()) - 5 * 86400)]
            self.min_version = None
            self.max_behind_days = 30.0
            self.lock.notify_all()

    # -- tokens
    def reload_tokens(self):
        path = self.args.token_file
        if not path:
            return
        try:
            st = os.stat(path)
        except OSError:
            return
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if key == self.tokens_mtime:
            return
        try:
            with open(path) as f:
                toks = {ln.strip() for ln in f if ln.strip() and not ln.startswith("#")}
        except OSError:
            return
        self.tokens, self.tokens_mtime = toks, key

    def resource_for(self, path):
        """The rate-limit resource an API path counts against: core unless a test moved it."""
        for match, res in self.rate_routes:
            if match in path:
                return res
        return "core"

    # -- labels, groups, scopes
    def label_id(self, name):
        k = name.lower()
        if k not in self.label_ids:
            self.label_ids[k] = len(self.label_ids) + 1
        return self.label_ids[k]

    def make_labels(self, arch, custom):
        fixed = ["self-hosted", "Linux", ARCH_LABEL.get(arch, "X64")]
        seen = {x.lower() for x in fixed}
        out = [(self.label_id(n), n, "read-only") for n in fixed]
        for n in custom:
            if n.lower() in seen or n.lower() in ("x64", "arm64", "arm"):
                continue
            seen.add(n.lower())
            out.append((self.label_id(n), n, "custom"))
        return out

    def org_groups(self, org_key):
        if org_key not in self.groups:
            self.groups[org_key] = [self.group_dict(org_key, 1, "Default", True, "all")]
        return self.groups[org_key]

    def group_dict(self, org_key, gid, name, default, visibility):
        org = self.names.get("orgs/" + org_key, org_key)
        return {"id": gid, "name": name, "visibility": visibility, "default": default,
                "runners_url": "/orgs/%s/actions/runner_groups/%d/runners" % (org, gid),
                "inherited": False, "allows_public_repositories": False, "restricted_to_workflows": False,
                "selected_workflows": [], "workflow_restrictions_read_only": False}

    def find_group(self, scope, gid=None, name=None):
        if scope.startswith("repos/"):  # repositories have only the Default group; config.sh ignores --runnergroup
            return (1, "Default") if gid in (None, 1) else None
        for g in self.org_groups(scope[5:]):
            if (gid is not None and g["id"] == gid) or (name is not None and g["name"].lower() == name.lower()):
                return (g["id"], g["name"])
        return None

    def scope_runners(self, scope):
        return sorted((r for r in self.runners.values() if r.scope == scope), key=lambda r: r.id)

    def add_runner(self, scope, name, arch, custom, group, ephemeral, simulated):
        r = Runner(self.next_runner_id, name, scope, self.make_labels(arch, custom), group, ephemeral, simulated)
        self.next_runner_id += 1
        if not simulated:
            r.credential = secrets.token_hex(24)
            self.creds[r.credential] = r.id
        self.runners[r.id] = r
        return r

    def remove_runner(self, r, why):
        """Delete a registration. A job it was running is recorded as killed."""
        if r.job is not None:
            j = self.jobs.get(r.job)
            if j is not None and j.status != "completed":
                if j.started:
                    self.finish_job(j, "failure", killed=True)
                else:
                    self.unassign(j)
        self.runners.pop(r.id, None)
        if r.credential:
            self.creds.pop(r.credential, None)
        log("runner %d (%s) removed: %s" % (r.id, r.name, why))
        self.lock.notify_all()

    # -- jobs
    def runner_matches(self, r, j):
        owner = j.repo.split("/")[0].lower()
        if r.scope != "repos/" + j.repo.lower() and r.scope != "orgs/" + owner:
            return False
        have = {name.lower() for _, name, _ in r.labels}
        return all(lbl.lower() in have for lbl in j.labels)

    def dispatch(self):
        """Hand queued jobs (FIFO) to online idle runners whose labels and scope match."""
        # a runner GitHub deems too old gets no job (its next poll is refused)
        idle = [r for r in sorted(self.runners.values(), key=lambda x: x.id)
                if r.online() and not r.busy and r.job is None
                and (r.simulated or not version_refusal(self, r.version))]
        if not idle:
            return
        for j in self.jobs.values():
            if j.status != "queued" or j.runner_id is not None:
                continue
            for r in idle:
                if self.runner_matches(r, j):
                    idle.remove(r)
                    r.busy, r.job = True, j.id
                    j.runner_id, j.runner_name = r.id, r.name
                    j.runner_group_id, j.runner_group_name = r.group_id, r.group_name
                    log("job %d assigned to runner %d (%s)" % (j.id, r.id, r.name))
                    if r.simulated:
                        self.start_job(j)
                    break
            if not idle:
                break
        self.lock.notify_all()

    def unassign(self, j):
        r = self.runners.get(j.runner_id)
        if r is not None and r.job == j.id:
            r.busy, r.job = False, None
        j.runner_id = j.runner_name = j.runner_group_id = j.runner_group_name = None

    def start_job(self, j):
        j.started, j.status, j.started_at = True, "in_progress", time.time()
        r = self.runners.get(j.runner_id)
        if r is not None:
            j.runner_labels = [name for _, name, _ in r.labels]
        webhook_job(self, "in_progress", j)

    def finish_job(self, j, conclusion, killed=False):
        j.status, j.conclusion, j.killed, j.completed_at = "completed", conclusion, killed, time.time()
        if killed:
            self.stats["killed_jobs"] += 1
            log("job %d killed (runner %s vanished)" % (j.id, j.runner_name))
        r = self.runners.get(j.runner_id)
        if r is not None and r.job == j.id:
            r.busy, r.job = False, None
        webhook_job(self, "completed", j)
        self.lock.notify_all()

    def assign_before_delete(self, job_id, method, path):
        """The assign_job fault: the queued job is handed to the runner a
        DELETE names, just before the DELETE is handled (a job that arrives
        between a client's list and its delete: the delete then gets 422)."""
        m = re.search(r"/actions/runners/(\d+)$", path)
        with self.lock:
            j = self.jobs.get(job_id)
            r = self.runners.get(int(m.group(1))) if m and method == "DELETE" else None
            if r is None or j is None or j.status != "queued" or j.runner_id is not None:
                return
            if not r.online() or r.busy or r.job is not None:
                return
            r.busy, r.job = True, j.id
            j.runner_id, j.runner_name = r.id, r.name
            j.runner_group_id, j.runner_group_name = r.group_id, r.group_name
            log("job %d assigned to runner %d (%s) by a fault, before its DELETE" % (j.id, r.id, r.name))
            if r.simulated:
                self.start_job(j)
            self.lock.notify_all()

    def new_job(self, repo, spec):
        jid = self.next_job_id
        self.next_job_id += random.randint(1, 9)
        run_id = spec.get("run_id")
        if run_id is None or not any(x.run_id == run_id and x.repo.lower() == repo.lower() for x in self.jobs.values()):
            run_id = self.next_run_id
            self.next_run_id += random.randint(1, 9)
        j = Job(jid, run_id, repo, spec)
        self.jobs[jid] = j
        webhook_job(self, "queued", j)
        self.dispatch()
        return j

    def tick(self):
        """Heartbeat expiry and simulated runners' job completion (monitor thread)."""
        now = time.time()
        with self.lock:
            # ghsim itself was paused (SIGSTOP): no runner could reach it meanwhile,
            # so the pause does not count against their heartbeats
            paused = now - self.last_tick - MONITOR_TICK
            self.last_tick = now
            if paused > 1.0:
                log("ghsim was paused for %.1fs: heartbeats moved forward" % paused)
                for r in self.runners.values():
                    if r.last_seen:
                        r.last_seen += paused
            for r in list(self.runners.values()):
                if not r.simulated and r.session and now - r.last_seen > self.args.heartbeat_timeout:
                    r.session = False
                    log("runner %d (%s) lost its heartbeat: offline" % (r.id, r.name))
                    self.runner_vanished(r)
                if r.simulated and r.job is not None:
                    j = self.jobs.get(r.job)
                    if j is not None and j.started and now - j.started_at >= j.duration:
                        self.finish_job(j, "success")
                        if r.ephemeral:
                            self.remove_runner(r, "ephemeral runner finished its job")
            for t in [t for t, (_, _, exp) in self.reg_tokens.items() if exp < now]:
                del self.reg_tokens[t]
            for t in [t for t, exp in self.inst_tokens.items() if exp < now]:
                del self.inst_tokens[t]
            self.dispatch()

    def runner_vanished(self, r):
        if r.job is None:
            return
        j = self.jobs.get(r.job)
        if j is None or j.status == "completed":
            r.busy, r.job = False, None
        elif j.started:
            self.finish_job(j, "failure", killed=True)
        else:
            self.unassign(j)

    # -- the base URLs of the objects ghsim hands out
    def default_base(self):
        return self.args.public_url or "http://127.0.0.1:%d" % self.port

    def runner_base(self):
        # Runners and downloads talk to ghsim itself, even when API clients go through a proxy.
        return self.args.runner_url or "http://127.0.0.1:%d" % self.port


def monitor(state):
    while True:
        time.sleep(MONITOR_TICK)
        try:
            state.tick()
        except Exception:
            log("monitor: " + traceback.format_exc())
