"""Webhooks: the signed workflow_job deliveries ghsim sends (one sender
thread, a bounded queue, a short timeout), the hook deliveries API that
lists and redelivers them, and the control calls that point them at a
receiver. A slow or dead receiver only costs a counter and a log line;
deliveries go only to loopback URLs and the secret is never logged.
"""

import hashlib
import hmac
import json
import queue
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from .common import DOCS, HttpError, Resp, log, loopback_url, need, stable_id
from .control import str_list
from .objects import job_obj, org_obj, repo_obj, simple_user
from .routes import route

HOOK_ID = 498765  # the one webhook ghsim delivers through (X-GitHub-Hook-ID, the deliveries API)


def webhook_job(st, action, j):
    """Queue a workflow_job delivery for job j (or record it lost, for a skipped action)."""
    if not st.webhook_url:
        return
    skipped = action in st.webhook_skip
    base = st.default_base()
    owner = j.repo.split("/")[0]
    payload = {"action": action, "workflow_job": job_obj(j, base, base),
               "repository": repo_obj(j.repo, base, base, permissions=False),
               "organization": org_obj(owner, base, base, full=False),
               "sender": simple_user("octocat", base, base)}
    if st.args.app_id:
        payload["installation"] = {"id": st.args.installation_id,
                                   "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u%d" % st.args.installation_id}
    body = json.dumps(payload, separators=(",", ":")).encode()
    guid = str(uuid.uuid4())
    if skipped:  # lost on the way: GitHub lists it as a failed delivery
        st.stats["webhooks"]["skipped"] = st.stats["webhooks"].get("skipped", 0) + 1
        record_delivery(st, guid, "workflow_job", action, j.id, body, j.repo, None, "ConnectionError", 0.0,
                        False)
        log("webhook %s for job %d not sent (skip_actions)" % (action, j.id))
        return
    try:
        st.wh_queue.put_nowait((guid, "workflow_job", action, j.id, body, j.repo, False))
    except queue.Full:
        st.stats["webhooks"]["dropped"] += 1


def record_delivery(st, guid, event, action, job_id, body, repo, status, err, seconds, redelivery):
    """One attempt, as the deliveries API lists it (caller holds the lock or is the only writer)."""
    st.deliveries.append({"guid": guid, "event": event, "action": action, "job_id": job_id,
                            "status": status, "error": err, "seconds": seconds})
    del st.deliveries[:-1000]
    ok = status is not None and 200 <= status < 300
    st.next_delivery_id += 1
    st.hook_deliveries.append({
        "id": st.next_delivery_id, "guid": guid,
        "delivered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "redelivery": redelivery, "duration": seconds,
        "status": "OK" if ok else ("Invalid HTTP Response: %d" % status if status else "failed to connect to host"),
        "status_code": status or 0, "event": event, "action": action,
        "installation_id": st.args.installation_id if st.args.app_id else None,
        "repository_id": stable_id("repo:" + repo), "throttled_at": None,
        "_body": body, "_repo": repo, "_job_id": job_id})
    del st.hook_deliveries[:-1000]


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
            record_delivery(state, guid, event, action, job_id, body, repo, status, err, round(time.time() - t0, 3),
                            redelivery)
        if not ok:
            log("webhook %s %s for job %d failed: %s" % (guid, action, job_id, err or status))


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
