"""The runner protocol: what ghsim's runner package (runner/, POSIX sh)
speaks under /_ghsim/runner/ in place of the real actions/runner's
protocol. It registers with a registration token, connects, long-polls for
a job, heartbeats, completes and disconnects; answers are key=value text
lines, and errors are answered 200 with result=error (the package reads
them as GitHub's messages). A credential is never logged.
"""

import base64
import json
import time
import urllib.parse

from .common import ARCH_LABEL, RUNNER_VERSION, HttpError, Resp, log, need, stable_id, text_value
from .releases import version_refusal
from .routes import route
from .runners import runner_files


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
