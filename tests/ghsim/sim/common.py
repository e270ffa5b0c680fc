"""What every part of ghsim shares: GitHub's constants, the request log, the
answer and error types handlers return or raise, and small formatting
helpers. It holds no state but the log file, and must never write a secret
to that log.
"""

import base64
import hashlib
import json
import threading
import time
import urllib.parse

RUNNER_VERSION = "2.321.0"
API_VERSIONS = ("2022-11-28",)
DOCS = "https://docs.github.com/rest"
RATE_LIMIT = 5000
JOB_ID_BASE = 30_000_000_000  # GitHub's job ids are far above 2^31 (and 2^32)
RUN_ID_BASE = 12_000_000_000
ARCH_LABEL = {"x64": "X64", "arm64": "ARM64", "arm": "ARM"}
LOOPBACK = ("127.0.0.1", "localhost", "::1")


LOG_FILE = None  # set by main() from --log
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


def need(cond, status, message):
    if not cond:
        raise HttpError(status, message)


def loopback_url(url):
    try:
        u = urllib.parse.urlsplit(url)
        return u.scheme in ("http", "https") and u.hostname in LOOPBACK
    except ValueError:
        return False
