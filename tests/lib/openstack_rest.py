"""A small client for the test OpenStack's REST APIs (standard library only):
a Keystone v3 token and its catalog, then JSON calls to any service by its
type. Used by tests/lib/openstack.py to populate the cloud, by the guest
stand-in and by the tests; never by runnerd, which has its own client.
It refuses any endpoint that is not on 127.0.0.1."""

import json
import time
import urllib.error
import urllib.parse
import urllib.request

NOVA_MICROVERSION = "2.79"  # Zed has up to 2.93; 2.79 has every field the tests read


class HTTPError(Exception):
    def __init__(self, method, url, status, body):
        Exception.__init__(self, "%s %s: %d %s" % (method, url, status, body[:500]))
        self.status = status
        self.body = body


def _local(url):
    host = urllib.parse.urlsplit(url).hostname
    if host != "127.0.0.1":
        raise ValueError("not a test-cloud address (127.0.0.1 only): %s" % url)
    return url


def request(method, url, body=None, headers=None, timeout=30):
    """One HTTP call; returns (status, headers, parsed JSON or bytes)."""
    h = {"Accept": "application/json"}
    data = None
    if body is not None:
        if isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        else:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
    h.update(headers or {})
    req = urllib.request.Request(_local(url), data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, status, rh = r.read(), r.status, r.headers
    except urllib.error.HTTPError as e:
        raise HTTPError(method, url, e.code, e.read().decode(errors="replace")) from None
    if raw and "json" in (rh.get("Content-Type") or ""):
        return status, rh, json.loads(raw)
    return status, rh, raw


def password_auth(username, password, project, domain="Default"):
    return {"identity": {"methods": ["password"], "password": {"user": {
        "name": username, "password": password, "domain": {"name": domain}}}},
        "scope": {"project": {"name": project, "domain": {"name": domain}}}}


def appcred_auth(cred_id, secret):
    return {"identity": {"methods": ["application_credential"],
                         "application_credential": {"id": cred_id, "secret": secret}}}


class Session:
    """A token for one identity, renewed when it is near expiry or refused."""

    def __init__(self, auth_url, auth, region="RegionOne", interface="public"):
        self.auth_url = auth_url.rstrip("/")
        self.auth = auth
        self.region = region
        self.interface = interface
        self.token = None
        self.expires = 0
        self.catalog = []
        self.project_id = self.user_id = None

    def login(self):
        _, h, body = request("POST", self.auth_url + "/auth/tokens", {"auth": self.auth})
        tok = body["token"]
        self.token = h["X-Subject-Token"]
        self.catalog = tok.get("catalog", [])
        self.project_id = (tok.get("project") or {}).get("id")
        self.user_id = tok["user"]["id"]
        # renew a minute early; an expiry time looks like 2026-12-03T19:01:02.000000Z
        t = time.strptime(tok["expires_at"][:19], "%Y-%m-%dT%H:%M:%S")
        self.expires = time.mktime(t) - time.timezone - 60
        return self

    def endpoint(self, service_type):
        if self.token is None:
            self.login()
        for s in self.catalog:
            if s["type"] != service_type:
                continue
            for e in s["endpoints"]:
                if e["interface"] == self.interface and e.get("region_id", self.region) == self.region:
                    return e["url"].rstrip("/")
        raise KeyError("no %s endpoint in the catalog" % service_type)

    def call(self, service_type, method, path, body=None, headers=None, timeout=60):
        """A call to a service by type: returns the parsed JSON (or bytes)."""
        for attempt in (1, 2):
            if self.token is None or time.time() > self.expires:
                self.login()
            h = {"X-Auth-Token": self.token}
            if service_type == "compute":
                h["OpenStack-API-Version"] = "compute " + NOVA_MICROVERSION
            h.update(headers or {})
            try:
                return request(method, self.endpoint(service_type) + path, body, h, timeout)[2]
            except HTTPError as e:
                if e.status != 401 or attempt == 2:
                    raise
                self.token = None  # revoked or expired early: once more with a new one

    def get(self, service_type, path):
        return self.call(service_type, "GET", path)

    def post(self, service_type, path, body):
        return self.call(service_type, "POST", path, body)
