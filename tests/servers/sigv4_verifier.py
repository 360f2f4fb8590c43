#!/usr/bin/python3
"""SigV4 oracle for ckfb's S3 signing, built on Debian's python3-botocore.

It canonicalises the request it received the way S3 does (decode, then
re-encode path and query, sort, "k=" for valueless), lets botocore sign it
for the SignedHeaders the client listed, and compares. It also checks what
@20minutes/s3rver does not: the payload hash against the body, header
whitespace, virtual-host style, and a signed session token.
Answers 200 {"ok": true} or 403 {"errors": [...], "expected_canonical_request": [...]}.
For fault tests, a path containing "/slowdown-N/" answers SlowDown N times
(503), and "/skewed/" answers RequestTimeTooSkewed.

Usage: sigv4_verifier.py PORTFILE   (keys: AKIDTEST / testsecret)
"""
import hashlib
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials
from loopback import reply

SECRETS = {"AKIDTEST": "testsecret"}
TOKEN = "FQoGZXIvYXdzEXAMPLETOKEN+/="
FAULTS = {}
LOCK = threading.Lock()


def enc(s):
    return quote(s, safe="-_.~")


def canon_query(q):
    pairs = []
    for p in q.split("&"):
        if not p:
            continue
        k, _, v = p.partition("=")
        pairs.append((enc(unquote(k)), enc(unquote(v))))
    return "&".join("%s=%s" % kv for kv in sorted(pairs))


class Ref(S3SigV4Auth):
    signed = []

    def headers_to_sign(self, request):
        hm = HTTPHeaders()
        for n in self.signed:
            if n in request.headers:
                hm[n] = request.headers[n]
        return hm


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _reply(self, code, obj, content_type="application/json"):
        b = obj if isinstance(obj, bytes) else (json.dumps(obj, indent=1) + "\n").encode()
        reply(self, code, b, [("Content-Type", content_type)])

    def _s3_error(self, status, code, message):
        xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code><Message>%s</Message>"
               "<RequestId>verifier-1</RequestId></Error>" % (code, message)).encode()
        self._reply(status, xml, "application/xml")

    def _fault(self):
        m = re.search(r"/slowdown-(\d+)/", self.path)
        if m:
            with LOCK:
                seen = FAULTS.get(self.path, 0)
                FAULTS[self.path] = seen + 1
            if seen < int(m.group(1)):
                self._s3_error(503, "SlowDown", "Please reduce your request rate.")
                return True
        if "/skewed/" in self.path:
            self._s3_error(403, "RequestTimeTooSkewed",
                           "The difference between the request time and the current time is too large.")
            return True
        return False

    def handle_any(self):
        body = self._body()
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return self._reply(403, {"errors": ["NoAuth"]})
        comps = dict(c.strip().split("=", 1) for c in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        akid, _, region, service, _ = comps["Credential"].split("/")
        signed = comps["SignedHeaders"].split(";")
        errs = []
        csha = self.headers.get("x-amz-content-sha256")
        if csha is None:
            errs.append("MissingXAmzContentSha256")
        elif csha != "UNSIGNED-PAYLOAD" and csha != hashlib.sha256(body).hexdigest():
            errs.append("XAmzContentSHA256Mismatch")
        tok = self.headers.get("x-amz-security-token")
        if tok is not None and (tok != TOKEN or "x-amz-security-token" not in signed):
            errs.append("InvalidToken/unsigned")
        missing = [h for h in signed if h not in self.headers]
        if missing:
            errs.append("SignedHeaderNotSent:" + ",".join(missing))
        u = urlsplit(self.path)
        url = "http://%s%s" % (self.headers.get("Host"), quote(unquote(u.path), safe="/-_.~")) + \
            ("?" + canon_query(u.query) if u.query else "")
        req = AWSRequest(method=self.command, url=url, data=body,
                         headers={k.lower(): v for k, v in self.headers.items()})
        ref = Ref(Credentials(akid, SECRETS.get(akid, "?")), service, region)
        ref.signed = signed
        req.context["timestamp"] = self.headers.get("x-amz-date")
        if csha is None:
            req.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
        cr = ref.canonical_request(req)
        if ref.signature(ref.string_to_sign(req, cr), req) != comps["Signature"]:
            errs.append("SignatureDoesNotMatch")
        if akid not in SECRETS:
            errs.append("InvalidAccessKeyId")
        if errs:
            return self._reply(403, {"errors": errs, "expected_canonical_request": cr.split("\n")})
        if self._fault():
            return None
        return self._reply(200, {"ok": True, "host": self.headers.get("Host"), "path": u.path})

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_any


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()
