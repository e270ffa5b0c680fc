"""The control API's shared pieces: validation of scopes and label lists
as tests send them, and the calls that concern all of ghsim (its counters,
a reset). The control API is for tests only: GitHub has no such thing.
"""

from .common import Resp, need
from .routes import route


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


def str_list(v, what):
    need(isinstance(v, list) and all(isinstance(x, str) and x.strip() for x in v), 400,
         "%s must be a list of non-empty strings" % what)
    return [x.strip() for x in v]


@route("GET", "/_ghsim/stats", kind="control")
def c_stats(h, req):
    return Resp(200, h.server.state.stats)


@route("POST", "/_ghsim/reset", kind="control")
def c_reset(h, req):
    h.server.state.reset()
    return Resp(200, {})
