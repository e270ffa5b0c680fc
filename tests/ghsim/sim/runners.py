"""Runners as the REST API and the control API see them: list, get and
delete; registration and remove tokens; just-in-time configurations;
runner groups; and the control calls that add simulated runners, set them
online or offline, force-delete them, and add groups. A runner's
credential appears only in the files a registration returns, never in a log.
"""

import base64
import json
import secrets
import string
import time
import uuid

from .common import ARCH_LABEL, DOCS, HttpError, Resp, iso_pacific, log, need
from .control import c_scope, str_list
from .objects import runner_obj
from .routes import paginate, route, scope_routes


@scope_routes("GET", "", doc=DOCS + "/actions/self-hosted-runners#list-self-hosted-runners-for-a-repository")
def h_list_runners(h, req):
    st = h.server.state
    runners = st.scope_runners(req.scope())
    name = req.q("name")
    if name:
        runners = [r for r in runners if r.name == name]
    page, link = paginate(req, runners)
    return Resp(200, {"total_count": len(runners), "runners": [runner_obj(r) for r in page]},
                {"Link": link} if link else {})


def scoped_runner(h, req):
    st = h.server.state
    r = st.runners.get(int(req.params["runner_id"]))
    if r is None or r.scope != req.scope():
        raise HttpError(404, "Not Found")
    return r


@scope_routes("GET", "/{runner_id}", doc=DOCS + "/actions/self-hosted-runners#get-a-self-hosted-runner-for-a-repository")
def h_get_runner(h, req):
    return Resp(200, runner_obj(scoped_runner(h, req)))


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
    return Resp(201, {"runner": runner_obj(r), "encoded_jit_config": enc})


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


def c_runner_obj(r):
    return {"id": r.id, "name": r.name, "scope": r.scope, "status": "online" if r.online() else "offline",
            "busy": r.busy, "labels": [n for _, n, _ in r.labels], "ephemeral": r.ephemeral, "os": r.os,
            "version": r.version, "runner_group_id": r.group_id, "job_id": r.job, "simulated": r.simulated,
            "last_seen": round(time.time() - r.last_seen, 3) if r.last_seen else None}


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
