"""The routing table: handlers register themselves with @route (or
@scope_routes for the repository and organization forms of a runner
endpoint); a Request is what a handler gets; paginate() pages a list with
GitHub's per_page/page and Link header. A route's kind says who may call
it: "api" (GitHub's REST API, authenticated), "download" (runner packages),
"control" (tests, /_ghsim/) or "runner" (the runner package's protocol).
"""

import re
import urllib.parse

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
