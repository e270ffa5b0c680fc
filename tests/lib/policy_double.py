"""The repo-policy-compliance service's double for the tests, and the event
payloads it judges: GitHub's own examples (@octokit/webhooks-examples, from
scripts/deps.sh) aimed at a test's repository."""

import http.server
import json
import os
import secrets
import threading

from harness import TOP, free_port

EXAMPLES = os.path.join(TOP, ".deps", "npm", "node_modules", "@octokit", "webhooks-examples",
                        "api.github.com", "index.json")


class PolicyDouble:
    """repo-policy-compliance's two calls: GET /one-time-token (runnerd, with
    the service's token as Bearer) hands out a token; POST /<event>/check-run
    (the pre-job hook, with a one-time token as Bearer) answers 204, or 403
    for a pull request from a fork. Every request is recorded."""

    def __init__(self):
        self.token = "policy-charm-" + secrets.token_hex(16)
        self.issued = []
        self.checks = []
        self.lock = threading.Lock()
        double = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, code, body=b""):
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != "/one-time-token":
                    return self.reply(404)
                if self.headers.get("Authorization") != "Bearer " + double.token:
                    return self.reply(401)
                tok = secrets.token_hex(20)
                with double.lock:
                    double.issued.append(tok)
                self.reply(200, tok.encode())

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                auth = self.headers.get("Authorization") or ""
                tok = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with double.lock:
                    used = [c["token"] for c in double.checks]
                    ok_token = tok in double.issued and tok not in used
                    double.checks.append({"path": self.path, "token": tok, "body": body,
                                          "ok_token": ok_token})
                if not ok_token:
                    return self.reply(401)
                fork = isinstance(body, dict) and body.get("source_repository_name") not in (
                    None, body.get("repository_name"))
                self.reply(403 if fork else 204, b"forks are not allowed" if fork else b"")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def payloads(repo, fork):
    with open(EXAMPLES) as f:
        examples = {e["name"]: e["examples"] for e in json.load(f)}
    pr = [x for x in examples["pull_request"] if x["action"] == "opened"][0]
    pr = json.loads(json.dumps(pr))
    # from a fork: the head repository is another owner's
    pr["pull_request"]["base"]["repo"]["full_name"] = repo
    pr["pull_request"]["head"]["repo"]["full_name"] = fork
    pr["repository"]["full_name"] = repo
    push = json.loads(json.dumps(examples["push"][0]))
    push["repository"]["full_name"] = repo
    push["ref"] = "refs/heads/main"
    # GitHub sends no webhook for schedule; its event file is this shape
    schedule = {"schedule": "*/15 * * * *", "repository": push["repository"], "workflow": ".github/workflows/ci.yml"}
    return pr, push, schedule
