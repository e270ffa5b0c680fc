"""Authentication as GitHub does it: personal access tokens (re-read from
--token-file when it changes), GitHub App JWTs (RS256, checked with the
`openssl` command, with GitHub's claim rules), and the installations and
installation tokens an App exchanges its JWT for, in both token formats.
Never logs a token, a JWT or a key.
"""

import base64
import hashlib
import json
import os
import secrets
import string
import subprocess
import tempfile
import time

from .common import DOCS, HttpError, Resp, b64url_decode, iso, need
from .objects import simple_user
from .routes import route

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


def authenticate(handler, kind):
    """The caller's credential kind: (\"pat\" | \"installation\" | \"jwt\", None); raises HttpError."""
    st = handler.server.state
    h = handler.headers.get("Authorization")
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
        verify_jwt(st, cred)
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


def verify_jwt(st, jwt):
    """Check an App JWT's RS256 signature (cached by its hash) and GitHub's claim rules; raises HttpError."""
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
