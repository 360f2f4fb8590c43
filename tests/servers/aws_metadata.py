#!/usr/bin/python3
"""Stand-ins for the AWS credential endpoints a pod or an instance asks (Python stdlib only).

Usage: aws_metadata.py PORTFILE. Binds 127.0.0.1 on a free port.

  EC2 instance metadata, IMDSv2 (botocore utils.py InstanceMetadataFetcher):
    PUT /latest/api/token                  needs X-aws-ec2-metadata-token-ttl-seconds; a session token
    GET /latest/meta-data/iam/security-credentials/        the role name   (401 without the token)
    GET /latest/meta-data/iam/security-credentials/ROLE    the credentials (401 without the token)
  Container credentials (ECS, EKS Pod Identity; botocore ContainerMetadataFetcher):
    GET /container/creds                   needs Authorization: the configured token (401 otherwise)
  Control:
    POST /__control {"lifetime": s, "token": t}  credentials expire s seconds after they are issued;
                                           the container token expected
    GET  /__requests                       [{method, path, token_header, authorization}]
Each answer gives new credentials (AccessKeyId ASIA<source><n>), so a refresh shows.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

from loopback import reply, serve

STATE = {"lifetime": 3600, "token": "container-secret", "issued": 0, "requests": [], "session": "imds-session-1"}
LOCK = threading.Lock()
ROLE = "ckfb-node-role"


def credentials(source):
    with LOCK:
        STATE["issued"] += 1
        n, lifetime = STATE["issued"], STATE["lifetime"]
    expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + lifetime))
    return {"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "ASIA%s%04d" % (source, n),
            "SecretAccessKey": "secret-%s-%d" % (source, n), "Token": "token-%s-%d" % (source, n),
            "Expiration": expiry, "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, code, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else (json.dumps(body) if not isinstance(body, str) else body).encode()
        reply(self, code, data, [("Content-Type", ctype)])

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with LOCK:
            STATE["requests"].append({"method": self.command, "path": self.path,
                                      "token_header": self.headers.get("X-aws-ec2-metadata-token"),
                                      "authorization": self.headers.get("Authorization")})
        if self.path == "/__control":
            with LOCK:
                STATE.update(json.loads(body or b"{}"))
            return self.answer(200, {"ok": True})
        if self.path == "/__requests":
            with LOCK:
                return self.answer(200, STATE["requests"])
        if self.path == "/latest/api/token":
            if self.command != "PUT" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return self.answer(400, "", "text/plain")
            return self.answer(200, STATE["session"], "text/plain")
        if self.path.startswith("/latest/meta-data/iam/security-credentials/"):
            if self.headers.get("X-aws-ec2-metadata-token") != STATE["session"]:
                return self.answer(401, "", "text/plain")   # IMDSv2 required, as on a hardened instance
            role = self.path[len("/latest/meta-data/iam/security-credentials/"):]
            if role == "":
                return self.answer(200, ROLE, "text/plain")
            if role != ROLE:
                return self.answer(404, "", "text/plain")
            return self.answer(200, credentials("IMDS"))
        if self.path == "/container/creds":
            if self.headers.get("Authorization") != STATE["token"]:
                return self.answer(401, {"message": "missing or wrong authorization token"})
            return self.answer(200, credentials("CTNR"))
        return self.answer(404, "", "text/plain")

    do_GET = do_PUT = do_POST = handle_any


def main():
    serve(Handler, sys.argv[1])


if __name__ == "__main__":
    main()
