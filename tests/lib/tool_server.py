"""A test HTTP server on 127.0.0.1 serving one small program at /tool, for
runner.install.executables: it counts requests, and serve() swaps what it
serves (a tampered download, which the sha256 check must refuse)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOOL = b"#!/bin/sh\necho \"runnerd e2e tool says $1\"\n"


class ToolServer:
    def __init__(self, body=TOOL):
        hits = self.hits = []
        self.body = body
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                if self.path != "/tool":
                    self.send_error(404)
                    return
                body = server.body
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d/tool" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, body):
        """From now on, serve body at /tool."""
        self.body = body

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
