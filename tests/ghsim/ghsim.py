#!/usr/bin/env python3
"""ghsim: a stateful stand-in for the parts of GitHub that runnerd uses.

It serves the self-hosted runner REST operations with GitHub's status codes and
JSON shapes (held to the official OpenAPI description), GitHub's rate limits,
ETags, pagination and App (RS256 JWT) authentication; it queues workflow jobs,
hands them to runners (its own runner package, or simulated runners), and sends
signed workflow_job webhooks. Tests drive it through a control API under
/_ghsim/. The contract is PROTOCOL.md next to this file.

It must never listen on anything but 127.0.0.1, never send traffic to a
non-loopback address, never log a secret (tokens, JWTs, runner credentials),
and never die on bad input: every request is answered (4xx/5xx) and logged.
Python 3 standard library only, plus the `openssl` command for RS256 checks.
"""

import argparse
import base64
import gzip
import hashlib
import hmac
import io
import json
import os
import queue
import random
import re
import secrets
import signal
import socket
import string
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RUNNER_VERSION = "2.321.0"
API_VERSIONS = ("2022-11-28",)
DOCS = "https://docs.github.com/rest"
RATE_LIMIT = 5000
HOOK_ID = 498765  # the one webhook ghsim delivers through (X-GitHub-Hook-ID, the deliveries API)
JOB_ID_BASE = 30_000_000_000  # GitHub's job ids are far above 2^31 (and 2^32)
RUN_ID_BASE = 12_000_000_000
MAX_BODY = 1 << 20
MONITOR_TICK = 0.2  # seconds between the monitor's looks at heartbeats and simulated jobs
PACKAGES = (("linux", "x64"), ("linux", "arm64"), ("linux", "arm"), ("osx", "x64"), ("osx", "arm64"))
ARCH_LABEL = {"x64": "X64", "arm64": "ARM64", "arm": "ARM"}
RUNNER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runner")
LOOPBACK = ("127.0.0.1", "localhost", "::1")

# Installation tokens come in two formats since GitHub's 2026 change (changelog
# 2026-04-24 "Notice about upcoming new format for GitHub App installation tokens"):
# "stateless" is ghs_<APP ID>_<JWT>, about 520 characters and varying with what the JWT
# holds; "classic" is ghs_ and 36 letters and digits. GitHub picks one by its rollout
# unless the exchange carries X-GitHub-Stateless-S2S-Token: enabled (stateless) or
# disabled (classic); any other value is ignored (changelog 2026-05-15). Both are
# accepted until they expire.
S2S_HEADER = "X-GitHub-Stateless-S2S-Token"
S2S_VALUES = {"enabled": "stateless", "disabled": "classic"}
TOKEN_FORMATS = ("stateless", "classic")
TOKEN_HISTORY = 1000  # tokens GET /_ghsim/app lists, for tests that look for them in output

LOG_FILE = None
LOG_LOCK = threading.Lock()


def log(msg):
    if LOG_FILE is None:
        return
    line = "%s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), msg)
    with LOG_LOCK:
        try:
            LOG_FILE.write(line)
            LOG_FILE.flush()
        except OSError:
            pass


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def iso_pacific(t):
    # Registration tokens carry a local offset on github.com, e.g. "...123-08:00".
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t - 8 * 3600)) + ".%03d-08:00" % int((t % 1) * 1000)


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def stable_id(text, lo=100_000_000):
    return lo + int(hashlib.sha256(text.lower().encode()).hexdigest()[:8], 16) % 800_000_000


def text_value(v):
    return str(v).replace("\r", " ").replace("\n", " ")


class HttpError(Exception):
    def __init__(self, status, message, doc=None, headers=None, errors=None):
        super().__init__(message)
        self.status, self.message, self.doc, self.headers, self.errors = status, message, doc, headers or {}, errors


class Resp:
    def __init__(self, status, body=None, headers=None, ctype="application/json; charset=utf-8"):
        self.status, self.headers, self.ctype = status, dict(headers or {}), ctype
        self.cut = None  # a fault's truncation: (bytes of the body sent, whether the connection then drops)
        if body is None or isinstance(body, bytes):
            self.body = body
        elif isinstance(body, str):
            self.body = body.encode()
        else:
            self.body = json.dumps(body, separators=(",", ":")).encode()


def error_body(status, message, doc=None, errors=None):
    body = {"message": message, "documentation_url": doc or DOCS, "status": str(status)}
    if errors is not None:
        body["errors"] = errors
    return body


# ---------------------------------------------------------------- objects

def simple_user(login, base, html, kind="User"):
    uid = stable_id("user:" + login, 1_000_000)
    u = "%s/users/%s" % (base, login)
    return {
        "login": login, "id": uid, "node_id": ("U_kgDO%X" if kind == "User" else "O_kgDO%X") % uid,
        "avatar_url": "%s/avatars/u/%d?v=4" % (html, uid), "gravatar_id": "", "url": u,
        "html_url": "%s/%s" % (html, login), "followers_url": u + "/followers",
        "following_url": u + "/following{/other_user}", "gists_url": u + "/gists{/gist_id}",
        "starred_url": u + "/starred{/owner}{/repo}", "subscriptions_url": u + "/subscriptions",
        "organizations_url": u + "/orgs", "repos_url": u + "/repos", "events_url": u + "/events{/privacy}",
        "received_events_url": u + "/received_events", "type": kind, "site_admin": False,
    }


def repo_obj(full, base, html, permissions=True):
    owner, name = full.split("/", 1)
    rid = stable_id("repo:" + full)
    u = "%s/repos/%s" % (base, full)
    h = "%s/%s" % (html, full)
    created = 1609459200
    r = {
        "id": rid, "node_id": "R_kgDO%X" % rid, "name": name, "full_name": full,
        "private": True, "owner": simple_user(owner, base, html, "Organization"), "html_url": h,
        "description": None, "fork": False, "url": u, "forks_url": u + "/forks",
        "keys_url": u + "/keys{/key_id}", "collaborators_url": u + "/collaborators{/collaborator}",
        "teams_url": u + "/teams", "hooks_url": u + "/hooks", "issue_events_url": u + "/issues/events{/number}",
        "events_url": u + "/events", "assignees_url": u + "/assignees{/user}",
        "branches_url": u + "/branches{/branch}", "tags_url": u + "/tags", "blobs_url": u + "/git/blobs{/sha}",
        "git_tags_url": u + "/git/tags{/sha}", "git_refs_url": u + "/git/refs{/sha}",
        "trees_url": u + "/git/trees{/sha}", "statuses_url": u + "/statuses/{sha}",
        "languages_url": u + "/languages", "stargazers_url": u + "/stargazers",
        "contributors_url": u + "/contributors", "subscribers_url": u + "/subscribers",
        "subscription_url": u + "/subscription", "commits_url": u + "/commits{/sha}",
        "git_commits_url": u + "/git/commits{/sha}", "comments_url": u + "/comments{/number}",
        "issue_comment_url": u + "/issues/comments{/number}", "contents_url": u + "/contents/{+path}",
        "compare_url": u + "/compare/{base}...{head}", "merges_url": u + "/merges",
        "archive_url": u + "/{archive_format}{/ref}", "downloads_url": u + "/downloads",
        "issues_url": u + "/issues{/number}", "pulls_url": u + "/pulls{/number}",
        "milestones_url": u + "/milestones{/number}",
        "notifications_url": u + "/notifications{?since,all,participating}", "labels_url": u + "/labels{/name}",
        "releases_url": u + "/releases{/id}", "deployments_url": u + "/deployments",
        "created_at": iso(created), "updated_at": iso(created + 3600), "pushed_at": iso(created + 7200),
        "git_url": "git://%s/%s.git" % (html.split("://", 1)[-1], full),
        "ssh_url": "git@%s:%s.git" % (html.split("://", 1)[-1].split(":")[0], full),
        "clone_url": h + ".git", "svn_url": h, "homepage": None, "size": 1, "stargazers_count": 0,
        "watchers_count": 0, "language": None, "has_issues": True, "has_projects": True,
        "has_downloads": True, "has_wiki": True, "has_pages": False, "has_discussions": False,
        "forks_count": 0, "mirror_url": None, "archived": False, "disabled": False, "open_issues_count": 0,
        "license": None, "allow_forking": False, "is_template": False, "web_commit_signoff_required": False,
        "topics": [], "visibility": "private", "custom_properties": {}, "forks": 0, "open_issues": 0, "watchers": 0,
        "default_branch": "main",
    }
    if permissions:
        r["permissions"] = {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True}
        r["network_count"] = 0
        r["subscribers_count"] = 0
    return r


def org_obj(login, base, html, full=True):
    oid = stable_id("user:" + login, 1_000_000)
    u = "%s/orgs/%s" % (base, login)
    o = {
        "login": login, "id": oid, "node_id": "O_kgDO%X" % oid, "url": u, "repos_url": u + "/repos",
        "events_url": u + "/events", "hooks_url": u + "/hooks", "issues_url": u + "/issues",
        "members_url": u + "/members{/member}", "public_members_url": u + "/public_members{/member}",
        "avatar_url": "%s/avatars/u/%d?v=4" % (html, oid), "description": None,
    }
    if full:
        o.update({
            "name": login, "twitter_username": None, "is_verified": False, "has_organization_projects": True,
            "has_repository_projects": True, "public_repos": 0, "public_gists": 0, "followers": 0,
            "following": 0, "html_url": "%s/%s" % (html, login), "type": "Organization",
            "created_at": iso(1577836800), "updated_at": iso(1609459200), "archived_at": None,
        })
    return o


# ---------------------------------------------------------------- runner package

def build_packages(version=RUNNER_VERSION):
    """One tar.gz per (os, arch) of runner version `version`, built in memory
    from runner/ with fixed metadata so the bytes (and their sha256) are the
    same on every start."""
    files = []
    for dirpath, dirnames, filenames in os.walk(RUNNER_DIR):
        dirnames.sort()
        for fn in sorted(filenames):
            p = os.path.join(dirpath, fn)
            with open(p, "rb") as f:
                files.append((os.path.relpath(p, RUNNER_DIR), f.read()))
    out = {}
    for osname, arch in PACKAGES:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            pkg = "RUNNER_PKG_OS=%s\nRUNNER_PKG_ARCH=%s\nRUNNER_PKG_VERSION=%s\n" % (osname, arch, version)
            entries = files + [("bin/package.env", pkg.encode())]
            dirs = sorted({os.path.dirname(n) for n, _ in entries if os.path.dirname(n)})
            for d in dirs:
                ti = tarfile.TarInfo("./" + d)
                ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1704067200
                tar.addfile(ti)
            for name, data in sorted(entries):
                ti = tarfile.TarInfo("./" + name)
                ti.size, ti.mtime = len(data), 1704067200
                ti.mode = 0o755 if name.endswith(".sh") or name.startswith("bin/Runner.") else 0o644
                tar.addfile(ti, io.BytesIO(data))
        gz = io.BytesIO()
        with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
            g.write(raw.getvalue())
        data = gz.getvalue()
        fname = "actions-runner-%s-%s-%s.tar.gz" % (osname, arch, version)
        out[fname] = (osname, arch, data, hashlib.sha256(data).hexdigest())
    return out


# ---------------------------------------------------------------- state

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
        self.webhook_job("in_progress", j)

    def finish_job(self, j, conclusion, killed=False):
        j.status, j.conclusion, j.killed, j.completed_at = "completed", conclusion, killed, time.time()
        if killed:
            self.stats["killed_jobs"] += 1
            log("job %d killed (runner %s vanished)" % (j.id, j.runner_name))
        r = self.runners.get(j.runner_id)
        if r is not None and r.job == j.id:
            r.busy, r.job = False, None
        self.webhook_job("completed", j)
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
        self.webhook_job("queued", j)
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

    # -- objects
    def runner_obj(self, r):
        return {"id": r.id, "name": r.name, "os": r.os, "status": "online" if r.online() else "offline",
                "busy": r.busy, "ephemeral": r.ephemeral, "version": r.version,
                "labels": [{"id": i, "name": n, "type": t} for i, n, t in r.labels],
                "runner_group_id": r.group_id}

    def job_obj(self, j, base, html):
        created = iso(j.created_at)
        started = iso(j.started_at) if j.started_at else created
        steps = []
        if j.status == "in_progress":
            steps = [{"name": "Set up job", "status": "in_progress", "conclusion": None, "number": 1,
                      "started_at": started, "completed_at": None}]
        elif j.status == "completed" and j.started_at:
            done = iso(j.completed_at)
            steps = [{"name": "Set up job", "status": "completed", "conclusion": "success", "number": 1,
                      "started_at": started, "completed_at": started},
                     {"name": "Run job", "status": "completed",
                      "conclusion": "cancelled" if j.killed else j.conclusion, "number": 2,
                      "started_at": started, "completed_at": done}]
            if not j.killed:
                steps.append({"name": "Complete job", "status": "completed", "conclusion": "success",
                              "number": 3, "started_at": done, "completed_at": done})
        u = "%s/repos/%s" % (base, j.repo)
        d = {
            "id": j.id, "run_id": j.run_id, "workflow_name": j.workflow, "head_branch": j.head_branch,
            "run_url": "%s/actions/runs/%d" % (u, j.run_id), "run_attempt": 1,
            "node_id": "CR_kwDO%X" % j.id, "head_sha": j.head_sha,
            "url": "%s/actions/jobs/%d" % (u, j.id),
            "html_url": "%s/%s/actions/runs/%d/job/%d" % (html, j.repo, j.run_id, j.id),
            "status": j.status, "conclusion": j.conclusion, "created_at": created, "started_at": started,
            "completed_at": iso(j.completed_at) if j.completed_at else None, "name": j.name, "steps": steps,
            "check_run_url": "%s/check-runs/%d" % (u, j.id), "labels": list(j.labels),
            "runner_id": j.runner_id, "runner_name": j.runner_name, "runner_group_id": j.runner_group_id,
            "runner_group_name": j.runner_group_name,
        }
        return d

    # -- webhooks
    def default_base(self):
        return self.args.public_url or "http://127.0.0.1:%d" % self.port

    def runner_base(self):
        # Runners and downloads talk to ghsim itself, even when API clients go through a proxy.
        return self.args.runner_url or "http://127.0.0.1:%d" % self.port

    def webhook_job(self, action, j):
        if not self.webhook_url:
            return
        skipped = action in self.webhook_skip
        base = self.default_base()
        owner = j.repo.split("/")[0]
        payload = {"action": action, "workflow_job": self.job_obj(j, base, base),
                   "repository": repo_obj(j.repo, base, base, permissions=False),
                   "organization": org_obj(owner, base, base, full=False),
                   "sender": simple_user("octocat", base, base)}
        if self.args.app_id:
            payload["installation"] = {"id": self.args.installation_id,
                                       "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u%d" % self.args.installation_id}
        body = json.dumps(payload, separators=(",", ":")).encode()
        guid = str(uuid.uuid4())
        if skipped:  # lost on the way: GitHub lists it as a failed delivery
            self.stats["webhooks"]["skipped"] = self.stats["webhooks"].get("skipped", 0) + 1
            self.record_delivery(guid, "workflow_job", action, j.id, body, j.repo, None, "ConnectionError", 0.0,
                                 False)
            log("webhook %s for job %d not sent (skip_actions)" % (action, j.id))
            return
        try:
            self.wh_queue.put_nowait((guid, "workflow_job", action, j.id, body, j.repo, False))
        except queue.Full:
            self.stats["webhooks"]["dropped"] += 1

    def record_delivery(self, guid, event, action, job_id, body, repo, status, err, seconds, redelivery):
        """One attempt, as the deliveries API lists it (caller holds the lock or is the only writer)."""
        self.deliveries.append({"guid": guid, "event": event, "action": action, "job_id": job_id,
                                "status": status, "error": err, "seconds": seconds})
        del self.deliveries[:-1000]
        ok = status is not None and 200 <= status < 300
        self.next_delivery_id += 1
        self.hook_deliveries.append({
            "id": self.next_delivery_id, "guid": guid,
            "delivered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "redelivery": redelivery, "duration": seconds,
            "status": "OK" if ok else ("Invalid HTTP Response: %d" % status if status else "failed to connect to host"),
            "status_code": status or 0, "event": event, "action": action,
            "installation_id": self.args.installation_id if self.args.app_id else None,
            "repository_id": stable_id("repo:" + repo), "throttled_at": None,
            "_body": body, "_repo": repo, "_job_id": job_id})
        del self.hook_deliveries[:-1000]


def webhook_sender(state):
    """Deliver webhooks one by one with a short timeout; a failing receiver
    only costs a log line and a counter."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        guid, event, action, job_id, body, repo, redelivery = state.wh_queue.get()
        with state.lock:
            url, secret = state.webhook_url, state.webhook_secret
        if not url:
            continue
        headers = {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/ghsim",
                   "X-GitHub-Event": event, "X-GitHub-Delivery": guid, "X-GitHub-Hook-ID": str(HOOK_ID),
                   "X-GitHub-Hook-Installation-Target-Type": "repository",
                   "X-GitHub-Hook-Installation-Target-ID": str(stable_id("repo:" + repo)),
                   "Accept": "*/*"}
        if secret:
            key = secret.encode()
            headers["X-Hub-Signature"] = "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest()
            headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        status, err = None, None
        t0 = time.time()
        try:
            req = urllib.request.Request(url, data=body, headers=headers, method="POST")
            with opener.open(req, timeout=state.args.webhook_timeout) as resp:
                status = resp.status
                resp.read(65536)
        except urllib.error.HTTPError as e:
            status = e.code
        except Exception as e:  # the receiver may be down, slow or broken
            err = type(e).__name__
        ok = status is not None and 200 <= status < 300
        with state.lock:
            state.stats["webhooks"]["sent" if ok else "failed"] += 1
            state.record_delivery(guid, event, action, job_id, body, repo, status, err, round(time.time() - t0, 3),
                                  redelivery)
        if not ok:
            log("webhook %s %s for job %d failed: %s" % (guid, action, job_id, err or status))


def monitor(state):
    while True:
        time.sleep(MONITOR_TICK)
        try:
            state.tick()
        except Exception:
            log("monitor: " + traceback.format_exc())


# ---------------------------------------------------------------- HTTP

ROUTES = []


def route(method, template, kind="api", auth="token", doc=None):
    """Register a handler. `{x_id}`/`{id}` match digits, other `{x}` one path segment."""
    def rx(m):
        name = m.group(1)
        return "(?P<%s>%s)" % (name, r"\d+" if name.endswith("id") else r"[^/]+")
    pattern = re.compile("^" + re.sub(r"\{(\w+)\}", rx, template) + "$")

    def deco(fn):
        ROUTES.append((method, pattern, "%s %s" % (method, template), fn, kind, auth, doc))
        return fn
    return deco


def scope_routes(method, suffix, **kw):
    def deco(fn):
        route(method, "/repos/{owner}/{repo}/actions/runners" + suffix, **kw)(fn)
        route(method, "/orgs/{org}/actions/runners" + suffix, **kw)(fn)
        return fn
    return deco


class Request:
    def __init__(self, handler, method, path, query, params, body, prefix):
        self.h, self.method, self.path, self.query, self.params, self.body = handler, method, path, query, params, body
        host = handler.headers.get("Host") or "127.0.0.1:%d" % handler.server.state.port
        root = handler.server.state.args.public_url or "http://" + host
        self.html = root.rstrip("/")
        self.base = self.html + prefix
        self.auth = None

    def q(self, name, default=None):
        v = self.query.get(name)
        return v[-1] if v else default

    def scope(self):
        p = self.params
        st = self.h.server.state
        if "org" in p:
            key = "orgs/" + p["org"].lower()
            st.names.setdefault(key, p["org"])
        else:
            key = "repos/%s/%s" % (p["owner"].lower(), p["repo"].lower())
            st.names.setdefault(key, "%s/%s" % (p["owner"], p["repo"]))
        return key


def paginate(req, items):
    """Slice items per GitHub's per_page/page; returns (page items, Link header or None)."""
    def num(name, default):
        try:
            v = int(req.q(name, default))
        except (TypeError, ValueError):
            return default
        return v if v > 0 else default
    per_page = min(num("per_page", 30), 100)
    page = num("page", 1)
    last = max(1, (len(items) + per_page - 1) // per_page)
    chunk = items[(page - 1) * per_page: page * per_page]
    links = []

    def url(p):
        q = {k: v[-1] for k, v in req.query.items()}
        q["per_page"], q["page"] = str(per_page), str(p)
        return "<%s%s?%s>" % (req.base, req.path, urllib.parse.urlencode(q))
    if page > 1:
        links.append(url(min(page - 1, last)) + '; rel="prev"')
    if page < last:
        links.append(url(page + 1) + '; rel="next"')
        links.append(url(last) + '; rel="last"')
    if page > 1:
        links.append(url(1) + '; rel="first"')
    return chunk, (", ".join(links) if links else None)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def version_string(self):
        return "GitHub.com"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.handle_any("GET")

    def do_HEAD(self):
        self.handle_any("HEAD")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
                if len(data) > MAX_BODY:
                    raise HttpError(413, "Payload too large")
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self.close_connection = True
            raise HttpError(413, "Payload too large")
        return self.rfile.read(n) if n > 0 else b""

    def setup(self):
        super().setup()
        # answers go out whole at once: no Nagle wait for the client's delayed ACK
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, resp):
        self.send_response(resp.status)
        if resp.body is not None or resp.status not in (204, 304):
            body = resp.body if resp.body is not None else b""
            length = len(body)
            if resp.cut is not None:
                # truncate: a whole answer carrying a cut document; drop_after: the
                # connection is lost after that many bytes of the announced body
                body = body[:resp.cut[0]]
                length = length if resp.cut[1] else len(body)
            self.send_header("Content-Type", resp.ctype)
            self.send_header("Content-Length", str(length))
        else:
            body = b""
        for k, v in resp.headers.items():
            self.send_header(k, v)
        # headers and body in one write (end_headers would flush the headers alone)
        self._headers_buffer.append(b"\r\n")
        out = b"".join(self._headers_buffer)
        self._headers_buffer = []
        if body and self.command != "HEAD":
            out += body
        self.wfile.write(out)
        if resp.cut is not None and resp.cut[1]:
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_any(self, method):
        t0 = time.time()
        status = None
        try:
            resp = self.process(method)
            if resp is None:  # dropped on purpose
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
                status = "dropped"
                return
            status = resp.status
            self.send(resp)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            log("internal error on %s %s: %s" % (method, self.path.split("?")[0], traceback.format_exc()))
            status = 500
            try:
                self.close_connection = True
                self.send(Resp(500, error_body(500, "Server Error")))
            except OSError:
                pass
        finally:
            log("%s %s -> %s (%.3fs)" % (method, self.path.split("?")[0], status, time.time() - t0))

    def process(self, method):
        st = self.server.state
        raw = self.path
        parts = urllib.parse.urlsplit(raw)
        path = urllib.parse.unquote(parts.path) or "/"
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        try:
            body = self.read_body()
        except HttpError as e:
            return Resp(e.status, error_body(e.status, e.message))
        except (ValueError, OSError):
            self.close_connection = True
            return Resp(400, error_body(400, "Bad request"))
        if path.startswith("/_ghsim/") and not path.startswith("/_ghsim/downloads/"):
            return self.process_internal(method, path, query, body)
        prefix = ""
        if path == "/api/v3" or path.startswith("/api/v3/"):
            prefix, path = "/api/v3", path[len("/api/v3"):] or "/"
        if len(path) > 1:
            path = path.rstrip("/")
        m_route = None
        for rmethod, pattern, name, fn, kind, auth, doc in ROUTES:
            if kind not in ("api", "download"):
                continue
            m = pattern.match(path)
            if m and (rmethod == method or (rmethod == "GET" and method == "HEAD")):
                m_route = (name, fn, kind, auth, doc, m.groupdict())
                break
        with st.lock:
            st.stats["requests"] += 1
            if m_route:
                st.stats["by_route"][m_route[0]] = st.stats["by_route"].get(m_route[0], 0) + 1
            fault = self.match_fault(method, raw)
        if fault is not None:
            if fault.get("delay"):
                time.sleep(float(fault["delay"]))
            if fault.get("assign_job") is not None:
                st.assign_before_delete(fault["assign_job"], method, path)
            if fault.get("drop"):
                return None
            if fault.get("status"):
                s = int(fault["status"])
                hdrs = {}
                if fault.get("retry_after") is not None:
                    hdrs["Retry-After"] = str(int(fault["retry_after"]))
                b = fault.get("body")
                if b is None:
                    msg = {429: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                           403: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                           502: "Server Error", 503: "Service Unavailable"}.get(s, "Server Error" if s >= 500 else "Fault")
                    b = error_body(s, msg, DOCS + "/using-the-rest-api/rate-limits-for-the-rest-api"
                                   if s in (403, 429) else None)
                return Resp(s, b, hdrs)
        return self.api_call(method, path, query, body, prefix, m_route, m_route[5] if m_route else {}, fault)

    def match_fault(self, method, raw):
        st = self.server.state
        for f in st.faults:
            if f["count"] == 0:  # a negative count never runs out
                continue
            if f.get("method") and f["method"].upper() != method:
                continue
            if f.get("match", "") not in raw:
                continue
            if f["skip"] > 0:
                f["skip"] -= 1
                return None
            if f["count"] > 0:
                f["count"] -= 1
            st.stats["faults_applied"] += 1
            return f
        return None

    # -- GitHub API
    def api_call(self, method, path, query, body, prefix, m_route, params, fault=None):
        st = self.server.state
        req = Request(self, method, path, query, params, None, prefix)
        if m_route is not None and m_route[2] == "download":
            return m_route[1](self, req)
        if not self.headers.get("User-Agent"):
            return Resp(403, "Request forbidden by administrative rules. Please make sure your request has "
                             "a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-"
                             "rest-api#user-agent-required). Check https://developer.github.com for other "
                             "possible causes.\n", ctype="text/plain; charset=utf-8")
        ver = self.headers.get("X-GitHub-Api-Version")
        if ver is not None and ver not in API_VERSIONS:
            return Resp(400, error_body(400, "API version '%s' is not supported." % ver[:40]))
        auth_kind = m_route[3] if m_route else "token"
        try:
            auth = self.authenticate(auth_kind)
        except HttpError as e:
            return Resp(e.status, error_body(e.status, e.message, e.doc))
        req.auth = auth
        if body.strip():
            try:
                req.body = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                return Resp(400, error_body(400, "Problems parsing JSON", m_route[4] if m_route else None))
        counted = not (m_route and m_route[0] == "GET /rate_limit")
        with st.lock:
            res = st.resource_for(path)
            rate = st.rates[res]
            now = time.time()
            if now >= rate["reset"]:
                rate.update(remaining=rate["limit"], used=0, reset=int(now) + 3600)
            if rate["remaining"] <= 0 and counted:
                who = "installation ID %d" % st.args.installation_id if auth[0] != "pat" else "user ID 1"
                return Resp(403, error_body(
                    403, "API rate limit exceeded for %s. If you reach out to GitHub Support for help, please "
                         "include the request ID %s and timestamp %s." % (who, self.request_id(), iso(now)),
                    DOCS + "/overview/rate-limits-for-the-rest-api"), self.rate_headers(res))
        if m_route is None:
            resp = Resp(404, error_body(404, "Not Found", DOCS))
        else:
            try:
                with st.lock:
                    resp = m_route[1](self, req)
            except HttpError as e:
                resp = Resp(e.status, error_body(e.status, e.message, e.doc or m_route[4], e.errors), e.headers)
        if fault is not None and fault.get("omit_runners"):
            omit_runners(resp, fault["omit_runners"])
        cut = None
        if fault is not None and (fault.get("truncate") is not None or fault.get("drop_after") is not None):
            cut = (fault["truncate"], False) if fault.get("truncate") is not None else (fault["drop_after"], True)
        if method in ("GET", "HEAD") and resp.status == 200 and resp.body is not None:
            etag = 'W/"%s"' % hashlib.sha256(resp.body).hexdigest()
            resp.headers["ETag"] = etag
            resp.headers["Cache-Control"] = "private, max-age=60, s-maxage=60"
            resp.headers["Vary"] = "Accept, Authorization, Cookie, X-GitHub-OTP"
            inm = self.headers.get("If-None-Match")
            # a cut answer is cut whatever the client holds: it gets the body to cut
            if inm and cut is None and self.etag_match(inm, etag):
                with st.lock:
                    st.stats["not_modified"] += 1
                resp = Resp(304, None, {k: v for k, v in resp.headers.items() if k != "Link"})
                counted = False
        with st.lock:
            if counted:
                rate["remaining"] = max(0, rate["remaining"] - 1)
                rate["used"] += 1
                st.stats["rate_counted"] += 1
        if cut is not None and resp.body is not None:
            resp.cut = cut
        resp.headers.update(self.rate_headers(res))
        resp.headers["X-GitHub-Media-Type"] = "github.v3; format=json"
        resp.headers["X-GitHub-Api-Version-Selected"] = API_VERSIONS[0]
        resp.headers["X-GitHub-Request-Id"] = self.request_id()
        return resp

    @staticmethod
    def etag_match(inm, etag):
        want = etag[2:] if etag.startswith("W/") else etag
        for t in inm.split(","):
            t = t.strip()
            if t == "*" or (t[2:] if t.startswith("W/") else t) == want:
                return True
        return False

    def request_id(self):
        return "%04X:%04X:%06X:%06X:%08X" % tuple(random.getrandbits(b) for b in (16, 16, 24, 24, 32))

    def rate_headers(self, res="core"):
        r = self.server.state.rates[res]
        return {"X-RateLimit-Limit": str(r["limit"]), "X-RateLimit-Remaining": str(r["remaining"]),
                "X-RateLimit-Reset": str(r["reset"]), "X-RateLimit-Used": str(r["used"]),
                "X-RateLimit-Resource": res}

    def authenticate(self, kind):
        st = self.server.state
        h = self.headers.get("Authorization")
        if not h:
            raise HttpError(401, "Requires authentication", DOCS)
        scheme, _, cred = h.strip().partition(" ")
        scheme, cred = scheme.lower(), cred.strip()
        if scheme == "basic":
            try:
                cred = base64.b64decode(cred).decode().partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                raise HttpError(401, "Bad credentials", DOCS)
        elif scheme not in ("token", "bearer"):
            raise HttpError(401, "Bad credentials", DOCS)
        if cred.count(".") == 2 and cred.startswith("eyJ"):
            self.verify_jwt(cred)
            if kind != "jwt":
                raise HttpError(403, "Resource not accessible by integration", DOCS)
            return ("jwt", None)
        if kind == "jwt":
            raise HttpError(401, "A JSON web token could not be decoded", DOCS)
        with st.lock:
            st.reload_tokens()
            if cred in st.tokens:
                return ("pat", None)
            exp = st.inst_tokens.get(cred)
            if exp is not None and exp > time.time():
                return ("installation", None)
        raise HttpError(401, "Bad credentials", DOCS)

    def verify_jwt(self, jwt):
        st = self.server.state
        bad = HttpError(401, "A JSON web token could not be decoded", DOCS)
        if not st.args.app_public_key or not st.args.app_id:
            raise bad
        h64, p64, s64 = jwt.split(".")
        try:
            header = json.loads(b64url_decode(h64))
            claims = json.loads(b64url_decode(p64))
            sig = b64url_decode(s64)
        except (ValueError, UnicodeDecodeError):
            raise bad
        if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(claims, dict):
            raise bad
        key = hashlib.sha256(jwt.encode()).hexdigest()
        with st.lock:
            cached = key in st.jwt_cache
        if not cached:
            with tempfile.TemporaryDirectory(prefix="ghsim-jwt-") as d:
                with open(os.path.join(d, "in"), "wb") as f:
                    f.write(("%s.%s" % (h64, p64)).encode())
                with open(os.path.join(d, "sig"), "wb") as f:
                    f.write(sig)
                with open(st.args.app_public_key, "rb") as f:
                    private = b"PRIVATE KEY" in f.read()
                try:
                    rc = subprocess.run(["openssl", "dgst", "-sha256", "-prverify" if private else "-verify",
                                         st.args.app_public_key, "-signature", os.path.join(d, "sig"),
                                         os.path.join(d, "in")], capture_output=True, timeout=10).returncode
                except (OSError, subprocess.SubprocessError):
                    rc = 1
            if rc != 0:
                raise bad
            with st.lock:
                if len(st.jwt_cache) > 1000:
                    st.jwt_cache.clear()
                st.jwt_cache[key] = True
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, (int, float)) or isinstance(iat, bool):
            raise HttpError(401, "'Issued at' claim ('iat') must be an Integer representing the time that the "
                                 "assertion was issued.", DOCS)
        if not isinstance(exp, (int, float)) or isinstance(exp, bool):
            raise HttpError(401, "'Expiration time' claim ('exp') must be a numeric value representing the "
                                 "future time at which the assertion expires.", DOCS)
        if str(claims.get("iss")) != str(st.args.app_id):
            raise HttpError(401, "'Issuer' claim ('iss') must be an Integer or a String (client ID) "
                                 "identifying this GitHub App.", DOCS)
        now = time.time()
        if exp <= now:
            raise HttpError(401, "'Expiration time' claim ('exp') must be a numeric value representing the "
                                 "future time at which the assertion expires.", DOCS)
        if exp - iat > 600 or exp > now + 660:
            raise HttpError(401, "'Expiration time' claim ('exp') is too far in the future", DOCS)
        if iat > now + 60:
            raise HttpError(401, "'Issued at' claim ('iat') must be an Integer representing a time in the "
                                 "past.", DOCS)

    # -- control API and runner side
    def process_internal(self, method, path, query, body):
        st = self.server.state
        for rmethod, pattern, name, fn, kind, auth, doc in ROUTES:
            if kind not in ("control", "runner") or rmethod != method:
                continue
            m = pattern.match(path.rstrip("/"))
            if not m:
                continue
            try:
                data = json.loads(body.decode("utf-8"), strict=False) if body.strip() else {}
            except (ValueError, UnicodeDecodeError):
                return Resp(400, {"message": "Problems parsing JSON"}) if kind == "control" else \
                    Resp(400, "result=error\nmessage=bad request\n", ctype="text/plain")
            if not isinstance(data, dict):
                return Resp(400, {"message": "body must be a JSON object"})
            req = Request(self, method, path, query, m.groupdict(), data, "")
            try:
                with st.lock:
                    return fn(self, req)
            except HttpError as e:
                if kind == "runner":
                    return Resp(200, "result=error\nmessage=%s\n" % text_value(e.message), ctype="text/plain")
                return Resp(e.status, {"message": e.message})
        return Resp(404, {"message": "Not Found"})


# ---------------------------------------------------------------- API handlers

def omit_runners(resp, n):
    """The omit_runners fault: a page of runners loses its last n entries
    while its total_count stays (a list that moved under the reader)."""
    if resp.status != 200 or not resp.body:
        return
    try:
        doc = json.loads(resp.body)
    except ValueError:
        return
    if isinstance(doc, dict) and isinstance(doc.get("runners"), list):
        doc["runners"] = doc["runners"][:max(0, len(doc["runners"]) - n)]
        resp.body = json.dumps(doc, separators=(",", ":")).encode()


def need(cond, status, message):
    if not cond:
        raise HttpError(status, message)


@scope_routes("GET", "", doc=DOCS + "/actions/self-hosted-runners#list-self-hosted-runners-for-a-repository")
def h_list_runners(h, req):
    st = h.server.state
    runners = st.scope_runners(req.scope())
    name = req.q("name")
    if name:
        runners = [r for r in runners if r.name == name]
    page, link = paginate(req, runners)
    return Resp(200, {"total_count": len(runners), "runners": [st.runner_obj(r) for r in page]},
                {"Link": link} if link else {})


def scoped_runner(h, req):
    st = h.server.state
    r = st.runners.get(int(req.params["runner_id"]))
    if r is None or r.scope != req.scope():
        raise HttpError(404, "Not Found")
    return r


@scope_routes("GET", "/{runner_id}", doc=DOCS + "/actions/self-hosted-runners#get-a-self-hosted-runner-for-a-repository")
def h_get_runner(h, req):
    return Resp(200, h.server.state.runner_obj(scoped_runner(h, req)))


@scope_routes("DELETE", "/{runner_id}",
              doc=DOCS + "/actions/self-hosted-runners#delete-a-self-hosted-runner-from-a-repository")
def h_delete_runner(h, req):
    st = h.server.state
    r = scoped_runner(h, req)
    if r.busy:
        raise HttpError(422, 'Bad request - Runner "%s" is still running a job"' % r.name)
    st.remove_runner(r, "deleted through the API")
    return Resp(204)


def make_reg_token(h, req, kind):
    st = h.server.state
    tok = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(29))
    exp = time.time() + 3600
    st.reg_tokens[tok] = (kind, req.scope(), exp)
    return Resp(201, {"token": tok, "expires_at": iso_pacific(exp)})


@scope_routes("POST", "/registration-token",
              doc=DOCS + "/actions/self-hosted-runners#create-a-registration-token-for-a-repository")
def h_registration_token(h, req):
    return make_reg_token(h, req, "registration")


@scope_routes("POST", "/remove-token", doc=DOCS + "/actions/self-hosted-runners#create-a-remove-token-for-a-repository")
def h_remove_token(h, req):
    return make_reg_token(h, req, "remove")


def runner_files(st, r, base, html, work):
    scope_name = st.names.get(r.scope, r.scope.split("/", 1)[1])
    runner = {"agentId": r.id, "agentName": r.name, "poolId": r.group_id, "poolName": r.group_name,
              "serverUrl": base, "gitHubUrl": "%s/%s" % (html, scope_name), "workFolder": work or "_work",
              "ephemeral": r.ephemeral}
    creds = {"scheme": "OAuth", "data": {"clientId": str(uuid.uuid5(uuid.NAMESPACE_URL, r.credential)),
                                         "authorizationUrl": base + "/_ghsim/runner", "token": r.credential}}
    return (json.dumps(runner, indent=2) + "\n").encode(), (json.dumps(creds, indent=2) + "\n").encode()


@scope_routes("POST", "/generate-jitconfig",
              doc=DOCS + "/actions/self-hosted-runners#create-configuration-for-a-just-in-time-runner-for-a-repository")
def h_generate_jitconfig(h, req):
    st = h.server.state
    b = req.body
    need(isinstance(b, dict), 400, "Problems parsing JSON")
    for field in ("name", "runner_group_id", "labels"):
        need(field in b, 422, 'Invalid request.\n\n"%s" wasn\'t supplied.' % field)
    need(isinstance(b["name"], str) and b["name"].strip() != "", 422,
         "Invalid request.\n\nFor 'properties/name', %s is not a string." % json.dumps(b["name"]))
    need(isinstance(b["runner_group_id"], int) and not isinstance(b["runner_group_id"], bool), 422,
         "Invalid request.\n\nFor 'properties/runner_group_id', %s is not an integer." % json.dumps(b["runner_group_id"]))
    labels = b["labels"]
    need(isinstance(labels, list) and 1 <= len(labels) <= 100 and
         all(isinstance(x, str) and x.strip() for x in labels), 422,
         "Invalid request.\n\nFor 'properties/labels', the value must be an array of 1 to 100 non-empty strings.")
    work = b.get("work_folder", "_work")
    need(isinstance(work, str), 422, "Invalid request.\n\nFor 'properties/work_folder', it is not a string.")
    scope = req.scope()
    name = b["name"]
    if any(r.name.lower() == name.lower() for r in st.scope_runners(scope)):
        raise HttpError(409, "Already exists - A runner with the name %s already exists." % name)
    group = st.find_group(scope, gid=b["runner_group_id"])
    if group is None:
        raise HttpError(404, "Not Found")
    arch = "x64"
    for lbl in labels:
        if lbl.lower() in ("arm64", "arm"):
            arch = lbl.lower()
    r = st.add_runner(scope, name, arch, labels, group, True, False)
    r.os, r.version = "unknown", None
    runner_f, creds_f = runner_files(st, r, st.runner_base(), req.html, work)
    enc = base64.b64encode(json.dumps({".runner": base64.b64encode(runner_f).decode(),
                                       ".credentials": base64.b64encode(creds_f).decode()}).encode()).decode()
    log("runner %d (%s) registered by JIT config in %s" % (r.id, name, scope))
    return Resp(201, {"runner": st.runner_obj(r), "encoded_jit_config": enc})


@scope_routes("GET", "/downloads", doc=DOCS + "/actions/self-hosted-runners#list-runner-applications-for-a-repository")
def h_downloads(h, req):
    st = h.server.state
    out = []
    latest = st.releases[0][0]
    for fname, (osname, arch, _, digest) in st.packages.items():
        if not fname.endswith("-%s.tar.gz" % latest):
            continue  # an older release's package: still downloadable, no longer listed
        out.append({"os": osname, "architecture": arch, "download_url": "%s/_ghsim/downloads/%s" % (st.runner_base(), fname),
                    "filename": fname, "sha256_checksum": digest})
    return Resp(200, out)


def version_key(v):
    """2.321.0 -> (2, 321, 0); None for anything else."""
    parts = str(v or "").lstrip("v").split(".")
    if not parts or len(parts) > 4 or not all(p.isdigit() and len(p) <= 9 for p in parts):
        return None
    return tuple(int(p) for p in parts)


def version_refusal(st, version):
    """The message GitHub gives a runner of this version, or None when it may take jobs."""
    key = version_key(version)
    msg = "Runner version v%s is deprecated and cannot receive messages." % version
    if key is None:
        return msg
    if st.min_version and key < version_key(st.min_version):
        return msg
    # the release that superseded this one: the oldest of those newer than it
    newer = [t for v, t in st.releases if version_key(v) > key]
    if newer and time.time() - min(newer) > st.max_behind_days * 86400:
        return msg
    return None


def release_obj(st, req, version, published):
    rid = stable_id("release:" + version)
    u = "%s/repos/actions/runner/releases/%d" % (req.base, rid)
    assets = [{"name": fname, "size": len(data), "browser_download_url": "%s/_ghsim/downloads/%s" % (st.runner_base(), fname),
               "content_type": "application/gzip", "state": "uploaded"}
              for fname, (_, _, data, _) in sorted(st.packages.items()) if fname.endswith("-%s.tar.gz" % version)]
    return {"url": u, "html_url": "%s/actions/runner/releases/tag/v%s" % (req.html, version), "id": rid,
            "tag_name": "v" + version, "target_commitish": "main", "name": "v" + version, "draft": False,
            "prerelease": False, "created_at": iso(published), "published_at": iso(published),
            "assets": assets, "body": "runner %s (ghsim)" % version}


@route("GET", "/repos/actions/runner/releases", doc=DOCS + "/releases/releases#list-releases")
def h_runner_releases(h, req):
    st = h.server.state
    try:
        per_page = min(max(int((req.query.get("per_page") or ["30"])[0]), 1), 100)
    except ValueError:
        per_page = 30
    return Resp(200, [release_obj(st, req, v, t) for v, t in st.releases[:per_page]])


@route("GET", "/repos/actions/runner/releases/latest", doc=DOCS + "/releases/releases#get-the-latest-release")
def h_runner_release_latest(h, req):
    st = h.server.state
    v, t = st.releases[0]
    return Resp(200, release_obj(st, req, v, t))


@route("POST", "/_ghsim/runner-releases", kind="control")
def c_runner_releases(h, req):
    """{"releases": [{"version", "published_at" (unix s) | "days_ago"}], "min_version": V|null,
    "max_behind_days": N}: each field optional; a new release's package is built at once."""
    st = h.server.state
    b = req.body if isinstance(req.body, dict) else {}
    if "releases" in b:
        rel = []
        for x in b["releases"] or []:
            need(isinstance(x, dict) and version_key(x.get("version")) is not None, 400, "bad release")
            t = x.get("published_at")
            if t is None:
                t = time.time() - float(x.get("days_ago", 0)) * 86400
            rel.append((str(x["version"]), int(t)))
        need(rel, 400, "at least one release")
        rel.sort(key=lambda r: version_key(r[0]), reverse=True)
        for v, _ in rel:
            if not any(f.endswith("-%s.tar.gz" % v) for f in st.packages):
                st.packages.update(build_packages(v))
        st.releases = rel
    if "min_version" in b:
        need(b["min_version"] is None or version_key(b["min_version"]) is not None, 400, "bad min_version")
        st.min_version = b["min_version"]
    if "max_behind_days" in b:
        st.max_behind_days = float(b["max_behind_days"])
    log("runner releases: %s, minimum %s" % (", ".join(v for v, _ in st.releases), st.min_version))
    return c_runner_releases_get(h, req)


@route("GET", "/_ghsim/runner-releases", kind="control")
def c_runner_releases_get(h, req):
    st = h.server.state
    return Resp(200, {"releases": [{"version": v, "published_at": t} for v, t in st.releases],
                      "min_version": st.min_version, "max_behind_days": st.max_behind_days,
                      "refused": st.stats.get("version_refused", 0)})


@route("GET", "/_ghsim/downloads/{filename}", kind="download")
def h_download_file(h, req):
    pkg = h.server.state.packages.get(req.params["filename"])
    if pkg is None:
        return Resp(404, "Not Found\n", ctype="text/plain")
    return Resp(200, pkg[2], {"Content-Disposition": "attachment; filename=" + req.params["filename"]},
                ctype="application/octet-stream")


@route("GET", "/orgs/{org}/actions/runner-groups",
       doc=DOCS + "/actions/self-hosted-runner-groups#list-self-hosted-runner-groups-for-an-organization")
def h_runner_groups(h, req):
    st = h.server.state
    req.scope()
    groups = st.org_groups(req.params["org"].lower())
    page, link = paginate(req, groups)
    out = []
    for g in page:
        g = dict(g)
        g["runners_url"] = req.base + g["runners_url"]
        out.append(g)
    return Resp(200, {"total_count": len(groups), "runner_groups": out}, {"Link": link} if link else {})


def repo_job(h, req, jid):
    j = h.server.state.jobs.get(jid)
    if j is None or j.repo.lower() != ("%s/%s" % (req.params["owner"], req.params["repo"])).lower():
        raise HttpError(404, "Not Found")
    return j


@route("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}",
       doc=DOCS + "/actions/workflow-jobs#get-a-job-for-a-workflow-run")
def h_get_job(h, req):
    return Resp(200, h.server.state.job_obj(repo_job(h, req, int(req.params["job_id"])), req.base, req.html))


@route("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
       doc=DOCS + "/actions/workflow-jobs#list-jobs-for-a-workflow-run")
def h_run_jobs(h, req):
    st = h.server.state
    repo = ("%s/%s" % (req.params["owner"], req.params["repo"])).lower()
    run_id = int(req.params["run_id"])
    jobs = [j for j in st.jobs.values() if j.run_id == run_id and j.repo.lower() == repo]
    if not jobs:
        raise HttpError(404, "Not Found")
    page, link = paginate(req, jobs)
    return Resp(200, {"total_count": len(jobs), "jobs": [st.job_obj(j, req.base, req.html) for j in page]},
                {"Link": link} if link else {})


def hook_deliveries_of(h, req):
    """The deliveries of ghsim's hook in the route's scope (404 for another hook id)."""
    st = h.server.state
    need(int(req.params["hook_id"]) == HOOK_ID, 404, "Not Found")
    if "org" in req.params:
        org = req.params["org"].lower()
        return [d for d in st.hook_deliveries if d["_repo"].split("/")[0].lower() == org]
    repo = ("%s/%s" % (req.params["owner"], req.params["repo"])).lower()
    return [d for d in st.hook_deliveries if d["_repo"].lower() == repo]


def h_hook_deliveries(h, req):
    """Newest first, per_page (at most 100) and an opaque cursor in the Link header, as GitHub pages them."""
    status = req.q("status", None)
    need(status in (None, "success", "failure"), 422, "status must be success or failure")
    try:
        per_page = min(max(int(req.q("per_page", 30)), 1), 100)
    except (TypeError, ValueError):
        per_page = 30
    with h.server.state.lock:
        items = list(reversed(hook_deliveries_of(h, req)))
    if status:
        items = [d for d in items if (200 <= d["status_code"] < 300) == (status == "success")]
    cursor = req.q("cursor", None)
    if cursor:
        try:
            below = int(cursor[3:] if cursor.startswith("v1_") else cursor)
        except ValueError:
            raise HttpError(400, "Bad cursor")
        items = [d for d in items if d["id"] < below]
    page = items[:per_page]
    headers = {}
    if len(items) > per_page:
        q = {k: v[-1] for k, v in req.query.items()}
        q["per_page"], q["cursor"] = str(per_page), "v1_%d" % page[-1]["id"]
        headers["Link"] = '<%s%s?%s>; rel="next"' % (req.base, req.path, urllib.parse.urlencode(q))
    return Resp(200, [{k: v for k, v in d.items() if not k.startswith("_")} for d in page], headers)


def h_hook_redeliver(h, req):
    """Deliver again, with the same X-GitHub-Delivery; listed as a redelivery."""
    st = h.server.state
    with st.lock:
        ds = [d for d in hook_deliveries_of(h, req) if d["id"] == int(req.params["delivery_id"])]
        need(ds, 404, "Not Found")
        d = ds[0]
        try:
            st.wh_queue.put_nowait((d["guid"], d["event"], d["action"], d["_job_id"], d["_body"], d["_repo"], True))
        except queue.Full:
            raise HttpError(422, "Too many deliveries queued")
        log("delivery %d (%s) redelivered" % (d["id"], d["guid"]))
    return Resp(202, {})


route("GET", "/repos/{owner}/{repo}/hooks/{hook_id}/deliveries",
      doc=DOCS + "/repos/webhooks#list-deliveries-for-a-repository-webhook")(h_hook_deliveries)
route("GET", "/orgs/{org}/hooks/{hook_id}/deliveries",
      doc=DOCS + "/orgs/webhooks#list-deliveries-for-an-organization-webhook")(h_hook_deliveries)
route("POST", "/repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts",
      doc=DOCS + "/repos/webhooks#redeliver-a-delivery-for-a-repository-webhook")(h_hook_redeliver)
route("POST", "/orgs/{org}/hooks/{hook_id}/deliveries/{delivery_id}/attempts",
      doc=DOCS + "/orgs/webhooks#redeliver-a-delivery-for-an-organization-webhook")(h_hook_redeliver)


@route("GET", "/rate_limit", doc=DOCS + "/rate-limit/rate-limit#get-rate-limit-status-for-the-authenticated-user")
def h_rate_limit(h, req):
    st = h.server.state
    r = st.rate
    core = {"limit": r["limit"], "used": r["used"], "remaining": r["remaining"], "reset": r["reset"]}
    reset = int(time.time()) + 3600

    def other(limit, name=None):
        if name in st.rates:
            x = st.rates[name]
            return {"limit": x["limit"], "used": x["used"], "remaining": x["remaining"], "reset": x["reset"]}
        return {"limit": limit, "used": 0, "remaining": limit, "reset": reset}
    return Resp(200, {"resources": {"core": core, "search": other(30), "graphql": other(5000),
                                    "integration_manifest": other(5000), "source_import": other(100),
                                    "code_scanning_upload": other(1000),
                                    "actions_runner_registration": other(10000, "actions_runner_registration"),
                                    "scim": other(15000),
                                    "dependency_snapshots": other(100), "code_search": other(10)},
                      "rate": core})


@route("GET", "/repos/{owner}/{repo}", doc=DOCS + "/repos/repos#get-a-repository")
def h_repo(h, req):
    req.scope()
    return Resp(200, repo_obj("%s/%s" % (req.params["owner"], req.params["repo"]), req.base, req.html))


@route("GET", "/orgs/{org}", doc=DOCS + "/orgs/orgs#get-an-organization")
def h_org(h, req):
    req.scope()
    return Resp(200, org_obj(req.params["org"], req.base, req.html))


def installation_obj(h, req, account):
    st = h.server.state
    iid = st.args.installation_id
    acct = simple_user(account, req.base, req.html, "Organization")
    # GitHub's description of the installation list wants the account to be a user and an enterprise at once.
    acct.update(name=account, slug=account, created_at=iso(1577836800), updated_at=iso(1609459200))
    return {"id": iid, "account": acct, "repository_selection": "all",
            "access_tokens_url": "%s/app/installations/%d/access_tokens" % (req.base, iid),
            "repositories_url": req.base + "/installation/repositories",
            "html_url": "%s/organizations/%s/settings/installations/%d" % (req.html, account, iid),
            "app_id": int(st.args.app_id), "app_slug": "ghsim-app", "target_id": acct["id"],
            "target_type": "Organization", "permissions": INSTALLATION_PERMISSIONS,
            "events": ["workflow_job"], "created_at": iso(1609459200), "updated_at": iso(1609459200),
            "single_file_name": None, "has_multiple_single_files": False, "single_file_paths": [],
            "suspended_by": None, "suspended_at": None}


INSTALLATION_PERMISSIONS = {"actions": "read", "administration": "write", "metadata": "read",
                            "organization_self_hosted_runners": "write"}


@route("GET", "/repos/{owner}/{repo}/installation", auth="jwt", doc=DOCS + "/apps/apps#get-a-repository-installation-for-the-authenticated-app")
def h_repo_installation(h, req):
    return Resp(200, installation_obj(h, req, req.params["owner"]))


@route("GET", "/orgs/{org}/installation", auth="jwt", doc=DOCS + "/apps/apps#get-an-organization-installation-for-the-authenticated-app")
def h_org_installation(h, req):
    return Resp(200, installation_obj(h, req, req.params["org"]))


@route("GET", "/app/installations", auth="jwt", doc=DOCS + "/apps/apps#list-installations-for-the-authenticated-app")
def h_app_installations(h, req):
    return Resp(200, [installation_obj(h, req, "ghsim")])


def classic_installation_token():
    return "ghs_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(36))


def stateless_installation_token(app_id, installation_id, iat, exp):
    """ghs_<APP ID>_<JWT>, the JWT in base64url (so '-', '_' and two '.' occur). Its
    signature is random bytes: a client must treat the token as opaque, and ghsim knows
    a token only by its exact bytes, so a truncated one is refused."""
    def b64(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def part(obj):
        return b64(json.dumps(obj, separators=(",", ":")).encode())
    claims = {"iss": "ghsim", "aid": int(app_id), "iid": int(installation_id), "iat": int(iat),
              "exp": int(exp), "jti": secrets.token_urlsafe(12), "rsl": "all"}
    return "ghs_%d_%s.%s.%s" % (int(app_id), part({"alg": "RS256", "typ": "JWT"}), part(claims),
                                b64(secrets.token_bytes(256)))


@route("POST", "/app/installations/{installation_id}/access_tokens", auth="jwt",
       doc=DOCS + "/apps/apps#create-an-installation-access-token-for-an-app")
def h_access_token(h, req):
    st = h.server.state
    if int(req.params["installation_id"]) != st.args.installation_id:
        raise HttpError(404, "Not Found")
    asked = h.headers.get(S2S_HEADER)
    if asked is not None:
        key = asked.strip() if asked.strip() in S2S_VALUES else "other"
        st.app_stats["s2s_header"][key] += 1
    fmt = S2S_VALUES.get((asked or "").strip(), st.inst_token_format)
    now = time.time()
    exp = now + st.inst_token_ttl
    if fmt == "stateless":
        tok = stateless_installation_token(st.args.app_id, st.args.installation_id, now, exp)
    else:
        tok = classic_installation_token()
    st.inst_tokens[tok] = exp
    st.app_stats["issued"][fmt] += 1
    st.token_history.append({"token": tok, "format": fmt})
    del st.token_history[:-TOKEN_HISTORY]
    perms = dict(INSTALLATION_PERMISSIONS)
    if isinstance(req.body, dict) and isinstance(req.body.get("permissions"), dict):
        perms = {k: v for k, v in req.body["permissions"].items() if k in perms}
    return Resp(201, {"token": tok, "expires_at": iso(exp), "permissions": perms, "repository_selection": "all"})


@route("DELETE", "/installation/token", doc=DOCS + "/apps/installations#revoke-an-installation-access-token")
def h_revoke_token(h, req):
    cred = h.headers.get("Authorization", "").partition(" ")[2].strip()
    h.server.state.inst_tokens.pop(cred, None)
    return Resp(204)


# ---------------------------------------------------------------- control API

def c_scope(st, value):
    need(isinstance(value, str) and value, 400, "scope must be repos/OWNER/REPO or orgs/ORG")
    parts = value.strip("/").split("/")
    if len(parts) == 2 and parts[0] not in ("repos", "orgs"):
        parts = ["repos"] + parts
    need((parts[0] == "repos" and len(parts) == 3) or (parts[0] == "orgs" and len(parts) == 2), 400,
         "scope must be repos/OWNER/REPO or orgs/ORG")
    key = "/".join([parts[0]] + [p.lower() for p in parts[1:]])
    st.names.setdefault(key, "/".join(parts[1:]))
    return key


def c_runner_obj(r):
    return {"id": r.id, "name": r.name, "scope": r.scope, "status": "online" if r.online() else "offline",
            "busy": r.busy, "labels": [n for _, n, _ in r.labels], "ephemeral": r.ephemeral, "os": r.os,
            "version": r.version, "runner_group_id": r.group_id, "job_id": r.job, "simulated": r.simulated,
            "last_seen": round(time.time() - r.last_seen, 3) if r.last_seen else None}


def c_job_obj(j):
    return {"id": j.id, "run_id": j.run_id, "repo": j.repo, "labels": j.labels, "name": j.name,
            "workflow": j.workflow, "event": j.event, "status": j.status, "conclusion": j.conclusion,
            "runner_name": j.runner_name, "runner_id": j.runner_id, "killed": j.killed,
            "runner_labels": j.runner_labels, "duration": j.duration, "created_at": j.created_at,
            "started_at": j.started_at, "completed_at": j.completed_at}


def str_list(v, what):
    need(isinstance(v, list) and all(isinstance(x, str) and x.strip() for x in v), 400,
         "%s must be a list of non-empty strings" % what)
    return [x.strip() for x in v]


@route("POST", "/_ghsim/jobs", kind="control")
def c_new_job(h, req):
    st = h.server.state
    b = req.body
    repo = b.get("repo")
    need(isinstance(repo, str) and re.match(r"^[^/\s]+/[^/\s]+$", repo or ""), 400, "repo must be OWNER/REPO")
    labels = str_list(b.get("labels", ["self-hosted"]), "labels")
    dur = b.get("duration", 1)
    need(isinstance(dur, (int, float)) and not isinstance(dur, bool) and 0 <= dur <= 86400, 400,
         "duration must be a number of seconds")
    for k in ("workflow", "event", "name", "job", "head_branch", "head_sha", "run"):
        need(b.get(k) is None or isinstance(b.get(k), str), 400, "%s must be a string" % k)
    need(b.get("event_payload") is None or isinstance(b["event_payload"], dict), 400, "event_payload must be an object")
    name = b.get("name") or "build"
    spec = {"labels": labels, "duration": float(dur), "workflow": b.get("workflow") or "ci",
            "event": b.get("event") or "push", "name": name, "job": b.get("job") or name,
            "head_branch": b.get("head_branch") or "main", "head_sha": b.get("head_sha") or secrets.token_hex(20),
            "run": b.get("run") or "", "event_payload": b.get("event_payload"), "run_id": b.get("run_id")}
    j = st.new_job(repo, spec)
    return Resp(200, {"id": j.id, "run_id": j.run_id, "status": j.status})


@route("GET", "/_ghsim/jobs", kind="control")
def c_jobs(h, req):
    return Resp(200, [c_job_obj(j) for j in h.server.state.jobs.values()])


@route("GET", "/_ghsim/jobs/{job_id}", kind="control")
def c_job(h, req):
    j = h.server.state.jobs.get(int(req.params["job_id"]))
    need(j is not None, 404, "no such job")
    return Resp(200, c_job_obj(j))


@route("POST", "/_ghsim/jobs/{job_id}/cancel", kind="control")
def c_job_cancel(h, req):
    """Cancel a job as a user does in the Actions UI: a queued job completes at
    once (conclusion cancelled, a completed webhook); a running one too, and its
    runner hears "cancelled" at its next heartbeat."""
    st = h.server.state
    with st.lock:
        j = st.jobs.get(int(req.params["job_id"]))
        need(j is not None, 404, "no such job")
        if j.status != "completed":
            st.finish_job(j, "cancelled")
            log("job %d cancelled" % j.id)
            st.dispatch()
        return Resp(200, c_job_obj(j))


@route("GET", "/_ghsim/runners", kind="control")
def c_runners(h, req):
    st = h.server.state
    return Resp(200, [c_runner_obj(r) for r in sorted(st.runners.values(), key=lambda x: x.id)])


@route("POST", "/_ghsim/runners", kind="control")
def c_add_runners(h, req):
    st = h.server.state
    b = req.body
    scope = c_scope(st, b.get("scope"))
    count = b.get("count", 1)
    need(isinstance(count, int) and 1 <= count <= 100000, 400, "count must be 1..100000")
    base = b.get("name") or "runner"
    need(isinstance(base, str), 400, "name must be a string")
    labels = str_list(b.get("labels", []), "labels")
    status = b.get("status", "online")
    need(status in ("online", "offline"), 400, "status must be online or offline")
    arch = b.get("arch", "x64")
    need(arch in ARCH_LABEL, 400, "arch must be x64, arm64 or arm")
    group = st.find_group(scope, gid=b.get("runner_group_id", 1))
    need(group is not None, 400, "no such runner group")
    out = []
    taken = {r.name.lower() for r in st.runners.values() if r.scope == scope}
    for i in range(1, count + 1):
        name = base.replace("{i}", str(i))
        while "{hex}" in name:
            name = name.replace("{hex}", secrets.token_hex(6), 1)
        if count > 1 and "{i}" not in base and "{hex}" not in base:
            name = "%s-%d" % (base, i)
        need(name.lower() not in taken, 409, "a runner named %s exists" % name)
        taken.add(name.lower())
        r = st.add_runner(scope, name, arch, labels, group, bool(b.get("ephemeral", False)), True)
        r.sim_online, r.busy = status == "online", bool(b.get("busy", False))
        out.append({"id": r.id, "name": r.name})
    st.dispatch()
    return Resp(200, {"runners": out})


def c_get_runner(st, req):
    r = st.runners.get(int(req.params["runner_id"]))
    need(r is not None, 404, "no such runner")
    return r


@route("POST", "/_ghsim/runners/{runner_id}/offline", kind="control")
def c_runner_offline(h, req):
    st = h.server.state
    r = c_get_runner(st, req)
    if r.simulated:
        r.sim_online = False
    else:
        r.session, r.gone = False, True
    st.runner_vanished(r)
    st.lock.notify_all()
    log("runner %d (%s) set offline by the control API" % (r.id, r.name))
    return Resp(200, c_runner_obj(r))


@route("POST", "/_ghsim/runners/{runner_id}/online", kind="control")
def c_runner_online(h, req):
    st = h.server.state
    r = c_get_runner(st, req)
    # A process runner that is connected speaks for itself; a registration
    # with no process behind it (tests with an in-memory provider) becomes a
    # simulated runner that takes jobs on its own.
    need(r.simulated or not r.session, 400, "a connected process runner sets its own status")
    r.simulated, r.sim_online = True, True
    st.dispatch()
    return Resp(200, c_runner_obj(r))


@route("DELETE", "/_ghsim/runners/{runner_id}", kind="control")
def c_runner_delete(h, req):
    st = h.server.state
    r = c_get_runner(st, req)
    st.remove_runner(r, "force-deleted by the control API")
    return Resp(200, {})


@route("GET", "/_ghsim/stats", kind="control")
def c_stats(h, req):
    return Resp(200, h.server.state.stats)


@route("POST", "/_ghsim/faults", kind="control")
def c_add_fault(h, req):
    st = h.server.state
    b = req.body
    f = {"match": b.get("match", ""), "method": b.get("method"), "status": b.get("status"),
         "count": b.get("count", 1), "skip": b.get("skip", 0), "delay": b.get("delay", 0),
         "drop": bool(b.get("drop", False)), "body": b.get("body"), "retry_after": b.get("retry_after"),
         "assign_job": b.get("assign_job"), "truncate": b.get("truncate"), "drop_after": b.get("drop_after"),
         "omit_runners": b.get("omit_runners")}
    need(isinstance(f["match"], str), 400, "match must be a string")
    need(f["method"] is None or isinstance(f["method"], str), 400, "method must be a string")
    need(f["status"] is None or (isinstance(f["status"], int) and 100 <= f["status"] <= 599), 400, "bad status")
    need(isinstance(f["count"], int) and isinstance(f["skip"], int) and f["skip"] >= 0, 400, "bad count/skip")
    need(isinstance(f["delay"], (int, float)) and 0 <= f["delay"] <= 600, 400, "bad delay")
    need(f["assign_job"] is None or (isinstance(f["assign_job"], int) and f["assign_job"] in st.jobs), 400,
         "assign_job must name a job")
    for k in ("truncate", "drop_after", "omit_runners"):
        need(f[k] is None or (isinstance(f[k], int) and not isinstance(f[k], bool) and f[k] >= 0), 400,
             "%s must be a number of bytes or runners" % k)
    need(f["truncate"] is None or f["drop_after"] is None, 400, "truncate or drop_after, not both")
    need(not f["status"] or (f["truncate"] is None and f["drop_after"] is None and not f["omit_runners"]), 400,
         "truncate, drop_after and omit_runners change the real answer: not with status")
    need(f["status"] or f["delay"] or f["drop"] or f["assign_job"] or f["truncate"] is not None
         or f["drop_after"] is not None or f["omit_runners"], 400,
         "a fault needs status, delay, drop, truncate, drop_after, omit_runners or assign_job")
    need(f["retry_after"] is None or isinstance(f["retry_after"], int), 400, "bad retry_after")
    f["id"] = len(st.faults) + 1
    st.faults.append(f)
    return Resp(200, {"id": f["id"]})


@route("GET", "/_ghsim/faults", kind="control")
def c_faults(h, req):
    return Resp(200, h.server.state.faults)


@route("DELETE", "/_ghsim/faults", kind="control")
def c_clear_faults(h, req):
    h.server.state.faults = []
    return Resp(200, {})


@route("POST", "/_ghsim/ratelimit", kind="control")
def c_ratelimit(h, req):
    st = h.server.state
    b = req.body
    res = b.get("resource", "core")
    need(res in st.rates, 400, "resource must be one of " + ", ".join(sorted(st.rates)))
    routes = b.get("routes")
    if routes is not None:
        need(res != "core" and isinstance(routes, list) and all(isinstance(x, str) and x for x in routes), 400,
             "routes must be a list of path substrings, for a resource other than core")
        st.rate_routes = [(m, r) for m, r in st.rate_routes if r != res] + [(m, res) for m in routes]
    rate = st.rates[res]
    limit = b.get("limit", rate["limit"])
    rem = b.get("remaining", limit)
    reset_in = b.get("reset_in", 3600)
    need(isinstance(limit, int) and limit > 0 and isinstance(rem, int) and 0 <= rem <= limit, 400,
         "bad limit/remaining")
    need(isinstance(reset_in, (int, float)) and reset_in > 0, 400, "bad reset_in")
    rate.update(limit=limit, remaining=rem, used=limit - rem, reset=int(time.time() + reset_in + 0.999))
    return Resp(200, dict(rate, resource=res, routes=[m for m, r in st.rate_routes if r == res]))


def app_state(st):
    return {"token_ttl": st.inst_token_ttl, "token_format": st.inst_token_format,
            "issued": dict(st.app_stats["issued"]), "s2s_header": dict(st.app_stats["s2s_header"])}


@route("POST", "/_ghsim/app", kind="control")
def c_app(h, req):
    st = h.server.state
    ttl = req.body.get("token_ttl", st.inst_token_ttl)
    fmt = req.body.get("token_format", st.inst_token_format)
    need(isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and 1 <= ttl <= 86400, 400,
         "token_ttl must be 1..86400 seconds")
    need(fmt in TOKEN_FORMATS, 400, "token_format must be one of: " + ", ".join(TOKEN_FORMATS))
    st.inst_token_ttl, st.inst_token_format = ttl, fmt
    return Resp(200, app_state(st))


@route("GET", "/_ghsim/app", kind="control")
def c_app_get(h, req):
    st = h.server.state
    return Resp(200, dict(app_state(st), tokens=list(st.token_history)))


@route("POST", "/_ghsim/runner-groups", kind="control")
def c_add_group(h, req):
    st = h.server.state
    b = req.body
    scope = c_scope(st, "orgs/%s" % b.get("org") if isinstance(b.get("org"), str) else None)
    name = b.get("name")
    need(isinstance(name, str) and name.strip(), 400, "name must be a string")
    groups = st.org_groups(scope[5:])
    need(not any(g["name"].lower() == name.lower() for g in groups), 409, "group exists")
    g = st.group_dict(scope[5:], st.next_group_id, name, False, b.get("visibility", "all"))
    st.next_group_id += 1
    groups.append(g)
    return Resp(200, g)


@route("POST", "/_ghsim/webhook", kind="control")
def c_webhook(h, req):
    st = h.server.state
    url, secret = req.body.get("url"), req.body.get("secret")
    if url:
        need(isinstance(url, str) and loopback_url(url), 400, "webhook URL must be http(s) on a loopback address")
    need(secret is None or isinstance(secret, str), 400, "secret must be a string")
    skip = str_list(req.body.get("skip_actions", []), "skip_actions")
    st.webhook_url, st.webhook_secret = url or None, secret or None
    st.webhook_skip = set(skip)
    return Resp(200, {})


@route("GET", "/_ghsim/webhooks", kind="control")
def c_deliveries(h, req):
    return Resp(200, h.server.state.deliveries)


@route("POST", "/_ghsim/reset", kind="control")
def c_reset(h, req):
    h.server.state.reset()
    return Resp(200, {})


# ---------------------------------------------------------------- runner side

def as_int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


def r_text(**kw):
    return Resp(200, "".join("%s=%s\n" % (k, text_value(v)) for k, v in kw.items()), ctype="text/plain")


def r_runner(st, req):
    rid = st.creds.get(str(req.body.get("credential", "")))
    r = st.runners.get(rid) if rid is not None else None
    if r is None or r.gone:
        return None
    return r


def scope_from_url(url):
    path = urllib.parse.urlsplit(url).path.strip("/")
    if path.startswith("api/v3/"):
        path = path[7:]
    parts = [p for p in path.split("/") if p]
    if len(parts) == 2:
        return "repos/%s/%s" % (parts[0].lower(), parts[1].lower())
    if len(parts) == 1:
        return "orgs/" + parts[0].lower()
    return None


@route("POST", "/_ghsim/runner/register", kind="runner")
def rn_register(h, req):
    st = h.server.state
    b = req.body
    tok = st.reg_tokens.get(str(b.get("token", "")))
    if tok is None or tok[0] != "registration" or tok[2] < time.time():
        raise HttpError(404, "Http response code: NotFound from 'POST %s/actions/runner-registration' "
                             "(the registration token is invalid or expired)" % req.html)
    scope = tok[1]
    budget = st.rates["actions_runner_registration"]  # what config.sh's registration spends on GitHub
    if time.time() >= budget["reset"]:
        budget.update(remaining=budget["limit"], used=0, reset=int(time.time()) + 3600)
    if budget["remaining"] <= 0:
        raise HttpError(403, "API rate limit exceeded for runner registration (actions_runner_registration)")
    budget["remaining"] -= 1
    budget["used"] += 1
    if b.get("url") and scope_from_url(str(b["url"])) != scope:
        raise HttpError(404, "The registration token is not valid for %s" % b["url"])
    name = str(b.get("name") or "").strip()
    need(name and len(name) <= 64, 400, "The runner name must be 1 to 64 characters")
    labels = [str(x).strip() for x in (b.get("labels") or []) if str(x).strip()]
    group = st.find_group(scope, name=str(b.get("runner_group") or "Default"))
    if group is None:
        raise HttpError(404, 'Could not find any self-hosted runner group named "%s".' % b.get("runner_group"))
    for r in st.scope_runners(scope):
        if r.name.lower() == name.lower():
            if not b.get("replace"):
                raise HttpError(409, "A runner exists with the same name %s." % name)
            st.remove_runner(r, "replaced by a new registration")
    arch = str(b.get("arch") or "x64")
    r = st.add_runner(scope, name, arch, labels, group, bool(b.get("ephemeral")), False)
    r.version = str(b.get("version") or RUNNER_VERSION)
    runner_f, creds_f = runner_files(st, r, st.runner_base(), req.html, str(b.get("work") or "_work"))
    log("runner %d (%s) registered with a registration token in %s" % (r.id, name, scope))
    return r_text(result="ok", id=r.id, name=r.name, runner_file=base64.b64encode(runner_f).decode(),
                  credentials_file=base64.b64encode(creds_f).decode())


@route("POST", "/_ghsim/runner/remove", kind="runner")
def rn_remove(h, req):
    st = h.server.state
    tok = st.reg_tokens.get(str(req.body.get("token", "")))
    r = r_runner(st, req)
    if r is None:
        return r_text(result="gone")
    if tok is None or tok[0] != "remove" or tok[2] < time.time() or tok[1] != r.scope:
        raise HttpError(404, "the remove token is invalid or expired")
    if r.busy:
        raise HttpError(422, 'Runner "%s" is still running a job' % r.name)
    st.remove_runner(r, "removed by config.sh remove")
    return r_text(result="ok")


@route("POST", "/_ghsim/runner/connect", kind="runner")
def rn_connect(h, req):
    st = h.server.state
    r = r_runner(st, req)
    if r is None:
        return r_text(result="gone")
    b = req.body
    arch = str(b.get("arch") or "x64")
    if arch in ARCH_LABEL:
        r.labels = [lbl for lbl in r.labels if lbl[1].lower() not in ("x64", "arm64", "arm")]
        r.labels.insert(2, (st.label_id(ARCH_LABEL[arch]), ARCH_LABEL[arch], "read-only"))
    r.os, r.version = "Linux", str(b.get("version") or RUNNER_VERSION)
    refused = version_refusal(st, r.version)
    if refused:
        st.stats["version_refused"] = st.stats.get("version_refused", 0) + 1
        log("runner %d (%s) refused: %s" % (r.id, r.name, refused))
        return r_text(result="deprecated", message=refused)
    r.session, r.last_seen = True, time.time()
    log("runner %d (%s) connected" % (r.id, r.name))
    st.dispatch()
    hb = max(0.2, st.args.heartbeat_timeout / 3.0)
    return r_text(result="ok", id=r.id, name=r.name, ephemeral=1 if r.ephemeral else 0,
                  labels=",".join(n for _, n, _ in r.labels), runner_group=r.group_name,
                  heartbeat_interval="%.2f" % hb, poll_wait="%.2f" % hb)


def job_message(j, req):
    html = req.html
    owner = j.repo.split("/")[0]
    env = {
        "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKFLOW": j.workflow,
        "GITHUB_WORKFLOW_REF": "%s/.github/workflows/%s.yml@refs/heads/%s" % (j.repo, j.workflow, j.head_branch),
        "GITHUB_REPOSITORY": j.repo, "GITHUB_REPOSITORY_OWNER": owner,
        "GITHUB_REPOSITORY_ID": stable_id("repo:" + j.repo), "GITHUB_EVENT_NAME": j.event,
        "GITHUB_RUN_ID": j.run_id, "GITHUB_RUN_NUMBER": j.run_id % 10000, "GITHUB_RUN_ATTEMPT": 1,
        "GITHUB_JOB": j.job_key, "GITHUB_SHA": j.head_sha, "GITHUB_REF": "refs/heads/" + j.head_branch,
        "GITHUB_REF_NAME": j.head_branch, "GITHUB_REF_TYPE": "branch", "GITHUB_HEAD_REF": "",
        "GITHUB_BASE_REF": "", "GITHUB_ACTOR": "octocat", "GITHUB_TRIGGERING_ACTOR": "octocat",
        "GITHUB_SERVER_URL": html, "GITHUB_API_URL": html, "GITHUB_GRAPHQL_URL": html + "/graphql",
        "GITHUB_RETENTION_DAYS": 90, "RUNNER_ENVIRONMENT": "self-hosted",
    }
    if j.event == "pull_request":
        env["GITHUB_HEAD_REF"], env["GITHUB_BASE_REF"] = j.head_branch, "main"
    payload = j.event_payload
    if payload is None:
        payload = {"ref": "refs/heads/" + j.head_branch, "after": j.head_sha,
                   "repository": {"full_name": j.repo, "name": j.repo.split("/")[1], "owner": {"login": owner}},
                   "sender": {"login": "octocat"}}
    lines = {"result": "job", "job_id": j.id, "run_id": j.run_id, "job_name": j.name, "workflow": j.workflow,
             "repository": j.repo, "duration_ms": int(j.duration * 1000),
             "run_b64": base64.b64encode(j.run.encode()).decode(),
             "event_payload_b64": base64.b64encode(json.dumps(payload).encode()).decode()}
    text = "".join("%s=%s\n" % (k, text_value(v)) for k, v in lines.items())
    text += "".join("env_%s=%s\n" % (k, text_value(v)) for k, v in env.items())
    return Resp(200, text, ctype="text/plain")


@route("POST", "/_ghsim/runner/poll", kind="runner")
def rn_poll(h, req):
    st = h.server.state
    r = r_runner(st, req)
    if r is None:
        return r_text(result="gone")
    try:
        wait = min(max(float(req.body.get("wait", 0)), 0.0), 30.0)
    except (TypeError, ValueError):
        wait = 0.0
    deadline = time.time() + wait
    if not r.session:  # came back after a heartbeat loss
        r.session = True
        log("runner %d (%s) reconnected" % (r.id, r.name))
    r.last_seen = time.time()
    st.dispatch()
    while True:
        if r.gone or st.runners.get(r.id) is not r:
            return r_text(result="gone")
        if r.job is None and version_refusal(st, r.version):  # (fell) too far behind
            st.stats["version_refused"] = st.stats.get("version_refused", 0) + 1
            r.session = False
            return r_text(result="deprecated", message=version_refusal(st, r.version))
        if r.job is not None:
            j = st.jobs.get(r.job)
            if j is not None and j.status != "completed":
                if not j.started:
                    st.start_job(j)
                return job_message(j, req)
        left = deadline - time.time()
        if left <= 0:
            return r_text(result="idle")
        st.lock.wait(min(left, 0.5))
        if r.session:
            r.last_seen = time.time()


@route("POST", "/_ghsim/runner/heartbeat", kind="runner")
def rn_heartbeat(h, req):
    st = h.server.state
    r = r_runner(st, req)
    if r is None:
        return r_text(result="gone")
    j = st.jobs.get(as_int(req.body.get("job_id")))
    if j is None or j.status == "completed" or j.runner_id != r.id:
        return r_text(result="cancelled")  # e.g. killed after a heartbeat loss: the runner must give up
    r.last_seen, r.session = time.time(), True
    return r_text(result="ok")


@route("POST", "/_ghsim/runner/complete", kind="runner")
def rn_complete(h, req):
    st = h.server.state
    r = r_runner(st, req)
    if r is None:
        return r_text(result="gone")
    j = st.jobs.get(as_int(req.body.get("job_id")))
    if j is None or j.status == "completed" or j.runner_id != r.id:
        return r_text(result="cancelled")
    conclusion = req.body.get("conclusion")
    if conclusion not in ("success", "failure", "cancelled"):
        conclusion = "failure"
    r.last_seen = time.time()
    # The runner package reports "cancelled" only when it is shut down in the
    # middle of a job (SIGTERM from a delete): the job was killed, as when
    # its heartbeat stops.
    st.finish_job(j, conclusion, killed=conclusion == "cancelled")
    dereg = 0
    if r.ephemeral:
        st.remove_runner(r, "ephemeral runner finished its job")
        dereg = 1
    st.dispatch()
    return r_text(result="ok", deregistered=dereg)


@route("POST", "/_ghsim/runner/disconnect", kind="runner")
def rn_disconnect(h, req):
    st = h.server.state
    r = r_runner(st, req)
    if r is None:
        return r_text(result="gone")
    r.session = False
    st.runner_vanished(r)
    log("runner %d (%s) disconnected" % (r.id, r.name))
    return r_text(result="ok")


# ---------------------------------------------------------------- main

def loopback_url(url):
    try:
        u = urllib.parse.urlsplit(url)
        return u.scheme in ("http", "https") and u.hostname in LOOPBACK
    except ValueError:
        return False


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        log("connection error: " + traceback.format_exc().strip().splitlines()[-1])


def main(argv=None):
    global LOG_FILE
    ap = argparse.ArgumentParser(description="GitHub simulator for runnerd tests (see PROTOCOL.md)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--token-file")
    ap.add_argument("--app-id")
    ap.add_argument("--app-public-key")
    ap.add_argument("--installation-id", type=int, default=1000001)
    ap.add_argument("--webhook-url")
    ap.add_argument("--webhook-secret-file")
    ap.add_argument("--webhook-timeout", type=float, default=3.0)
    ap.add_argument("--job-id-base", type=int, default=JOB_ID_BASE,
                    help="job ids start above this (e.g. past 2^53, where a double rounds them)")
    ap.add_argument("--heartbeat-timeout", type=float, default=10.0)
    ap.add_argument("--public-url", help="base URL for API objects and Link headers instead of the request's Host")
    ap.add_argument("--runner-url", help="base URL runners and downloads use (default http://127.0.0.1:PORT)")
    ap.add_argument("--log")
    args = ap.parse_args(argv)
    if args.webhook_url and not loopback_url(args.webhook_url):
        ap.error("--webhook-url must be http(s) on a loopback address")
    for name in ("public_url", "runner_url"):
        if getattr(args, name):
            setattr(args, name, getattr(args, name).rstrip("/"))
    if args.log:
        LOG_FILE = open(args.log, "a")
    state = State(args)
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.state = state
    state.port = srv.server_address[1]
    for fn, name in ((monitor, "monitor"), (webhook_sender, "webhooks")):
        threading.Thread(target=fn, args=(state,), name=name, daemon=True).start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % state.port)
        os.replace(tmp, args.port_file)
    log("ghsim listening on 127.0.0.1:%d" % state.port)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    try:
        srv.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        log("ghsim stopping")
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
