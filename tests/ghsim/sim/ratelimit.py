"""Rate limits: GET /rate_limit as GitHub answers it, and the control call
that sets a resource's budget or moves API paths onto another resource.
The server (server.py) spends the budgets and sends the X-RateLimit headers.
"""

import time

from .common import DOCS, Resp, need
from .routes import route


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
