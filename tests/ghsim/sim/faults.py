"""Fault injection: the faults tests register through POST /_ghsim/faults
(a status, a delay, a dropped connection, a truncated or cut answer, a
page that lost runners, a job assigned just before a DELETE), and how the
server applies the first one that matches a request. A fault only changes
what one request sees; it never corrupts ghsim's state.
"""

import json
import time

from .common import DOCS, Resp, error_body, need
from .routes import route


def match_fault(st, method, raw):
    """The fault this request meets, counted as applied, or None (caller holds st.lock)."""
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


def fault_answer(st, fault, method, path):
    """Apply what a fault does before the API answers. Returns (True, answer)
    when the fault answers in the API's place (None: the connection is
    dropped), or (False, None) when the API answers, maybe cut (fault_cut)."""
    if fault.get("delay"):
        time.sleep(float(fault["delay"]))
    if fault.get("assign_job") is not None:
        st.assign_before_delete(fault["assign_job"], method, path)
    if fault.get("drop"):
        return True, None
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
        return True, Resp(s, b, hdrs)
    return False, None


def fault_cut(fault):
    """An answer's cut, Resp.cut: (bytes sent, whether the connection then drops), or None."""
    if fault is not None and (fault.get("truncate") is not None or fault.get("drop_after") is not None):
        return (fault["truncate"], False) if fault.get("truncate") is not None else (fault["drop_after"], True)
    return None


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
