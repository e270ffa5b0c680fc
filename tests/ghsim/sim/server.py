"""ghsim's HTTP server: one thread per connection, routing to the handlers
registered in routes.py, and what every GitHub API answer goes through
(User-Agent and API version checks, authentication, the rate limit, ETags
and 304s, faults, GitHub's response headers); the control API and the
runner protocol under /_ghsim/. Every request gets an answer and a log
line, whatever it holds: a handler's crash is a 500, never a dead server.
"""

import hashlib
import json
import random
import socket
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .auth import authenticate
from .common import API_VERSIONS, DOCS, HttpError, Resp, error_body, iso, log, text_value
from .faults import fault_answer, fault_cut, match_fault, omit_runners
from .routes import ROUTES, Request

MAX_BODY = 1 << 20


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "GitHub.com"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.handle_any("GET")

    def do_HEAD(self):
        self.handle_any("HEAD")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
                if len(data) > MAX_BODY:
                    raise HttpError(413, "Payload too large")
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self.close_connection = True
            raise HttpError(413, "Payload too large")
        return self.rfile.read(n) if n > 0 else b""

    def setup(self):
        super().setup()
        # answers go out whole at once: no Nagle wait for the client's delayed ACK
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, resp):
        self.send_response(resp.status)
        if resp.body is not None or resp.status not in (204, 304):
            body = resp.body if resp.body is not None else b""
            length = len(body)
            if resp.cut is not None:
                # truncate: a whole answer carrying a cut document; drop_after: the
                # connection is lost after that many bytes of the announced body
                body = body[:resp.cut[0]]
                length = length if resp.cut[1] else len(body)
            self.send_header("Content-Type", resp.ctype)
            self.send_header("Content-Length", str(length))
        else:
            body = b""
        for k, v in resp.headers.items():
            self.send_header(k, v)
        # headers and body in one write (end_headers would flush the headers alone)
        self._headers_buffer.append(b"\r\n")
        out = b"".join(self._headers_buffer)
        self._headers_buffer = []
        if body and self.command != "HEAD":
            out += body
        self.wfile.write(out)
        if resp.cut is not None and resp.cut[1]:
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_any(self, method):
        t0 = time.time()
        status = None
        try:
            resp = self.process(method)
            if resp is None:  # dropped on purpose
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
                status = "dropped"
                return
            status = resp.status
            self.send(resp)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            log("internal error on %s %s: %s" % (method, self.path.split("?")[0], traceback.format_exc()))
            status = 500
            try:
                self.close_connection = True
                self.send(Resp(500, error_body(500, "Server Error")))
            except OSError:
                pass
        finally:
            log("%s %s -> %s (%.3fs)" % (method, self.path.split("?")[0], status, time.time() - t0))

    def process(self, method):
        st = self.server.state
        raw = self.path
        parts = urllib.parse.urlsplit(raw)
        path = urllib.parse.unquote(parts.path) or "/"
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        try:
            body = self.read_body()
        except HttpError as e:
            return Resp(e.status, error_body(e.status, e.message))
        except (ValueError, OSError):
            self.close_connection = True
            return Resp(400, error_body(400, "Bad request"))
        if path.startswith("/_ghsim/") and not path.startswith("/_ghsim/downloads/"):
            return self.process_internal(method, path, query, body)
        prefix = ""
        if path == "/api/v3" or path.startswith("/api/v3/"):
            prefix, path = "/api/v3", path[len("/api/v3"):] or "/"
        if len(path) > 1:
            path = path.rstrip("/")
        m_route = None
        for rmethod, pattern, name, fn, kind, auth, doc in ROUTES:
            if kind not in ("api", "download"):
                continue
            m = pattern.match(path)
            if m and (rmethod == method or (rmethod == "GET" and method == "HEAD")):
                m_route = (name, fn, kind, auth, doc, m.groupdict())
                break
        with st.lock:
            st.stats["requests"] += 1
            if m_route:
                st.stats["by_route"][m_route[0]] = st.stats["by_route"].get(m_route[0], 0) + 1
            fault = match_fault(st, method, raw)
        if fault is not None:
            answered, resp = fault_answer(st, fault, method, path)
            if answered:
                return resp
        return self.api_call(method, path, query, body, prefix, m_route, m_route[5] if m_route else {}, fault)


    def api_call(self, method, path, query, body, prefix, m_route, params, fault=None):
        st = self.server.state
        req = Request(self, method, path, query, params, None, prefix)
        if m_route is not None and m_route[2] == "download":
            return m_route[1](self, req)
        if not self.headers.get("User-Agent"):
            return Resp(403, "Request forbidden by administrative rules. Please make sure your request has "
                             "a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-"
                             "rest-api#user-agent-required). Check https://developer.github.com for other "
                             "possible causes.\n", ctype="text/plain; charset=utf-8")
        ver = self.headers.get("X-GitHub-Api-Version")
        if ver is not None and ver not in API_VERSIONS:
            return Resp(400, error_body(400, "API version '%s' is not supported." % ver[:40]))
        auth_kind = m_route[3] if m_route else "token"
        try:
            auth = authenticate(self, auth_kind)
        except HttpError as e:
            return Resp(e.status, error_body(e.status, e.message, e.doc))
        req.auth = auth
        if body.strip():
            try:
                req.body = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                return Resp(400, error_body(400, "Problems parsing JSON", m_route[4] if m_route else None))
        counted = not (m_route and m_route[0] == "GET /rate_limit")
        with st.lock:
            res = st.resource_for(path)
            rate = st.rates[res]
            now = time.time()
            if now >= rate["reset"]:
                rate.update(remaining=rate["limit"], used=0, reset=int(now) + 3600)
            if rate["remaining"] <= 0 and counted:
                who = "installation ID %d" % st.args.installation_id if auth[0] != "pat" else "user ID 1"
                return Resp(403, error_body(
                    403, "API rate limit exceeded for %s. If you reach out to GitHub Support for help, please "
                         "include the request ID %s and timestamp %s." % (who, self.request_id(), iso(now)),
                    DOCS + "/overview/rate-limits-for-the-rest-api"), self.rate_headers(res))
        if m_route is None:
            resp = Resp(404, error_body(404, "Not Found", DOCS))
        else:
            try:
                with st.lock:
                    resp = m_route[1](self, req)
            except HttpError as e:
                resp = Resp(e.status, error_body(e.status, e.message, e.doc or m_route[4], e.errors), e.headers)
        if fault is not None and fault.get("omit_runners"):
            omit_runners(resp, fault["omit_runners"])
        cut = fault_cut(fault)
        if method in ("GET", "HEAD") and resp.status == 200 and resp.body is not None:
            etag = 'W/"%s"' % hashlib.sha256(resp.body).hexdigest()
            resp.headers["ETag"] = etag
            resp.headers["Cache-Control"] = "private, max-age=60, s-maxage=60"
            resp.headers["Vary"] = "Accept, Authorization, Cookie, X-GitHub-OTP"
            inm = self.headers.get("If-None-Match")
            # a cut answer is cut whatever the client holds: it gets the body to cut
            if inm and cut is None and self.etag_match(inm, etag):
                with st.lock:
                    st.stats["not_modified"] += 1
                resp = Resp(304, None, {k: v for k, v in resp.headers.items() if k != "Link"})
                counted = False
        with st.lock:
            if counted:
                rate["remaining"] = max(0, rate["remaining"] - 1)
                rate["used"] += 1
                st.stats["rate_counted"] += 1
        if cut is not None and resp.body is not None:
            resp.cut = cut
        resp.headers.update(self.rate_headers(res))
        resp.headers["X-GitHub-Media-Type"] = "github.v3; format=json"
        resp.headers["X-GitHub-Api-Version-Selected"] = API_VERSIONS[0]
        resp.headers["X-GitHub-Request-Id"] = self.request_id()
        return resp

    @staticmethod
    def etag_match(inm, etag):
        want = etag[2:] if etag.startswith("W/") else etag
        for t in inm.split(","):
            t = t.strip()
            if t == "*" or (t[2:] if t.startswith("W/") else t) == want:
                return True
        return False

    def request_id(self):
        return "%04X:%04X:%06X:%06X:%08X" % tuple(random.getrandbits(b) for b in (16, 16, 24, 24, 32))

    def rate_headers(self, res="core"):
        r = self.server.state.rates[res]
        return {"X-RateLimit-Limit": str(r["limit"]), "X-RateLimit-Remaining": str(r["remaining"]),
                "X-RateLimit-Reset": str(r["reset"]), "X-RateLimit-Used": str(r["used"]),
                "X-RateLimit-Resource": res}


    def process_internal(self, method, path, query, body):
        st = self.server.state
        for rmethod, pattern, name, fn, kind, auth, doc in ROUTES:
            if kind not in ("control", "runner") or rmethod != method:
                continue
            m = pattern.match(path.rstrip("/"))
            if not m:
                continue
            try:
                data = json.loads(body.decode("utf-8"), strict=False) if body.strip() else {}
            except (ValueError, UnicodeDecodeError):
                return Resp(400, {"message": "Problems parsing JSON"}) if kind == "control" else \
                    Resp(400, "result=error\nmessage=bad request\n", ctype="text/plain")
            if not isinstance(data, dict):
                return Resp(400, {"message": "body must be a JSON object"})
            req = Request(self, method, path, query, m.groupdict(), data, "")
            try:
                with st.lock:
                    return fn(self, req)
            except HttpError as e:
                if kind == "runner":
                    return Resp(200, "result=error\nmessage=%s\n" % text_value(e.message), ctype="text/plain")
                return Resp(e.status, {"message": e.message})
        return Resp(404, {"message": "Not Found"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        log("connection error: " + traceback.format_exc().strip().splitlines()[-1])
