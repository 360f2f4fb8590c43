#!/usr/bin/python3
"""An S3 server that misbehaves on purpose, for ckfb.s3's tests (Python stdlib only).

Usage: s3_faults.py PORTFILE. Binds 127.0.0.1 on a free port. Path-style only; it
checks no signature but records each request's signing region and Content-MD5.
What it does, by bucket and key:
  bucket "far":   in eu-west-1: a request signed for another region gets 301
                  PermanentRedirect with x-amz-bucket-region (as S3 answers a HEAD or a
                  GET to the wrong regional endpoint)
  key "drop*":    the first upload of part 2 reads half the part, then the connection
                  drops with no answer (a load balancer restarting)
  key "error200*": CompleteMultipartUpload answers 200 with an <Error> body, as S3 may
                  (botocore handlers.py _handle_200_error)
  key "broken*":  GET answers 500 InternalError every time
  key "norange*": GET ignores Range and sends the whole object with 200
  key "flaky-N*": the first two GETs answer status N (408, 429, 501, 502, 504, ...)
Objects, multipart uploads (create, parts, complete, abort) and HEAD work otherwise; a
Content-MD5 that does not match its body is refused with 400 BadDigest, as S3 does.
  GET /__requests  [{method, path, region, content_md5}]
"""
import base64
import hashlib
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit, unquote

from loopback import reply, serve

LOCK = threading.Lock()
OBJECTS = {}    # (bucket, key) -> bytes
UPLOADS = {}    # upload id -> {part number: bytes}
DROPPED = set()
FLAKY = {}      # key -> failures answered so far
REQUESTS = []


def error_xml(code, message):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
            '<RequestId>fault-1</RequestId></Error>' % (code, message)).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, code, body=b"", headers=()):
        reply(self, code, body, headers)

    def digest_ok(self, data):
        """As S3: a Content-MD5 that does not match the body is refused (400 BadDigest)."""
        given = self.headers.get("Content-MD5")
        return given is None or given == base64.b64encode(hashlib.md5(data).digest()).decode()

    def handle_any(self):
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if url.path == "/__requests":
            with LOCK:
                return self.answer(200, json.dumps(REQUESTS).encode())
        parts = url.path.lstrip("/").split("/", 1)
        bucket, key = unquote(parts[0]), unquote(parts[1]) if len(parts) > 1 else None
        m = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/s3/", self.headers.get("Authorization", ""))
        region = m.group(1) if m else None
        with LOCK:
            REQUESTS.append({"method": self.command, "path": url.path, "query": url.query, "region": region,
                             "content_md5": self.headers.get("Content-MD5")})
        length = int(self.headers.get("Content-Length") or 0)
        if bucket == "far" and region != "eu-west-1":
            self.rfile.read(length)
            return self.answer(301, error_xml("PermanentRedirect", "The bucket is in this region: eu-west-1."),
                               [("x-amz-bucket-region", "eu-west-1"), ("Content-Type", "application/xml")])
        if self.command == "PUT" and "partNumber" in query:
            number = int(query["partNumber"])
            if key.startswith("drop") and number == 2 and query["uploadId"] not in DROPPED:
                DROPPED.add(query["uploadId"])
                self.rfile.read(length // 2)
                self.close_connection = True
                self.connection.shutdown(2)
                return None
            data = self.rfile.read(length)
            if not self.digest_ok(data):
                return self.answer(400, error_xml("BadDigest", "The Content-MD5 you specified did not match."))
            with LOCK:
                UPLOADS[query["uploadId"]][number] = data
            return self.answer(200, b"", [("ETag", '"%s"' % hashlib.md5(data).hexdigest())])
        body = self.rfile.read(length)
        if not self.digest_ok(body):
            return self.answer(400, error_xml("BadDigest", "The Content-MD5 you specified did not match."))
        if self.command == "POST" and "uploads" in query:
            upload_id = "upload-%d" % (len(UPLOADS) + 1)
            with LOCK:
                UPLOADS[upload_id] = {}
            return self.answer(200, ("<InitiateMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s"
                                     "</UploadId></InitiateMultipartUploadResult>" % (bucket, key, upload_id)).encode())
        if self.command == "POST" and "uploadId" in query:
            if key.startswith("error200"):
                return self.answer(200, error_xml("InternalError", "We encountered an internal error."))
            with LOCK:
                pieces = UPLOADS.pop(query["uploadId"])
                OBJECTS[(bucket, key)] = b"".join(pieces[n] for n in sorted(pieces))
            return self.answer(200, ("<CompleteMultipartUploadResult><ETag>\"done\"</ETag>"
                                     "</CompleteMultipartUploadResult>").encode())
        if self.command == "DELETE" and "uploadId" in query:
            with LOCK:
                UPLOADS.pop(query["uploadId"], None)
            return self.answer(204)
        if self.command == "PUT":
            with LOCK:
                OBJECTS[(bucket, key)] = body
            return self.answer(200, b"", [("ETag", '"%s"' % hashlib.md5(body).hexdigest())])
        if key is None:
            return self.answer(200)
        if self.command in ("GET", "HEAD"):
            flaky = re.match(r"flaky-(\d{3})", key)
            if flaky and self.command == "GET":
                with LOCK:
                    FLAKY[key] = FLAKY.get(key, 0) + 1
                    failing = FLAKY[key] <= 2
                if failing:
                    code = int(flaky.group(1))
                    return self.answer(code, error_xml({408: "RequestTimeout", 429: "SlowDown"}.get(code, "Flaky"),
                                                       "injected %d" % code))
            if key.startswith("broken") and self.command == "GET":
                return self.answer(500, error_xml("InternalError", "We encountered an internal error."))
            with LOCK:
                data = OBJECTS.get((bucket, key))
            if data is None:
                return self.answer(404, error_xml("NoSuchKey", "The specified key does not exist."))
            etag = '"%s"' % hashlib.md5(data).hexdigest()
            rng = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
            if rng and not key.startswith("norange"):
                a, b = int(rng.group(1)), int(rng.group(2))
                return self.answer(206, data[a:b + 1], [("ETag", etag), ("Content-Range", "bytes %d-%d/%d" % (
                    a, min(b, len(data) - 1), len(data)))])
            return self.answer(200, data, [("ETag", etag)])
        return self.answer(405, error_xml("MethodNotAllowed", "no"))

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main():
    serve(Handler, sys.argv[1])


if __name__ == "__main__":
    main()
