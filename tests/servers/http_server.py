#!/usr/bin/python3
"""Loopback HTTP(S) server for the ckfb.http specs (Python stdlib only).

Usage: http_server.py PORTFILE [CERT KEY [CLIENT_CA]]
Binds 127.0.0.1 on a free port and writes the port to PORTFILE once it
listens. With CERT and KEY it speaks TLS; with CLIENT_CA it also requires a
client certificate signed by that CA.

Endpoints (any method):
  /echo            JSON of the method, path, query, headers and body it got
  /status/N        answers status N
  /slow/S          waits S seconds, then 200
  /bytes/N         N bytes of "x"
  /endless         a chunked body that never ends
  /multi-header    two Set-Cookie headers
  /redirect        302 to /echo
  /record/NAME     keeps the body it gets (a webhook's target); GET /recorded/NAME returns them, one per line
"""
import hashlib
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit
from loopback import reply


RECORDED = {}
RECORD_LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _endless(self):
        """A chunked body that never ends, until the client hangs up."""
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"x" * 65536
        try:
            while True:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            self.close_connection = True

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status, body=b"", headers=()):
        reply(self, status, body, headers)

    def _handle(self):
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        body = self._body()
        if parts[0] == "echo":
            info = {
                "method": self.command, "path": url.path, "query": url.query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace") if len(body) < 4096 else "",
                "body_length": len(body), "body_sha256": hashlib.sha256(body).hexdigest(),
            }
            self._send(200, json.dumps(info).encode(), [("Content-Type", "application/json")])
        elif parts[0] == "status":
            self._send(int(parts[1]), b"status " + parts[1].encode())
        elif parts[0] == "slow":
            time.sleep(float(parts[1]))
            self._send(200, b"slow")
        elif parts[0] == "bytes":
            self._send(200, b"x" * int(parts[1]))
        elif parts[0] == "endless":
            self._endless()
        elif parts[0] == "multi-header":
            self._send(200, b"", [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
        elif parts[0] == "record":
            with RECORD_LOCK:
                RECORDED.setdefault(parts[1], []).append(body.decode("utf-8", "replace"))
            self._send(200, b"recorded")
        elif parts[0] == "recorded":
            with RECORD_LOCK:
                data = "\n".join(RECORDED.get(parts[1], [])).encode()
            self._send(200, data)
        elif parts[0] == "redirect":
            self._send(302, b"", [("Location", "/echo")])
        else:
            self._send(404, b"not found")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


def main():
    portfile = sys.argv[1]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if len(sys.argv) >= 4:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        if len(sys.argv) >= 5:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(sys.argv[4])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, portfile)
    server.serve_forever()


if __name__ == "__main__":
    main()
