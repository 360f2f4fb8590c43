#!/usr/bin/python3
"""A Kubernetes API server stand-in for ckfb's tests (Python stdlib only).

Faithful where ckfb and kubectl use the API (../shared/reference/
deps-and-test-servers.md §3.3): TLS with its own CA; bearer tokens and client
certificates (CN is the user); discovery (/version, /api, /api/v1, /apis,
/apis/<g>/<v>); lists with limit/continue, remainingItemCount and 410 for an
expired token; resourceVersion on every object and list; watch streams
(chunked JSON lines, BOOKMARKs, an ERROR event with 410 for a compacted
resourceVersion, timeoutSeconds); metav1.Status errors; create, replace
(409 Conflict on a stale resourceVersion), patch (merge, strategic, JSON
patch, server-side apply), delete; pod logs, followed or not.

Usage: kube_apiserver.py PORTFILE CERT KEY CA [--pods N] [--namespaces N] [--profiles N]
Tokens: "admin-token" (user admin) and "alice-token" (user alice, who is
forbidden everything in the namespace "forbidden").

Test control (no auth; loopback only):
  POST /__control/fail      {"path": prefix, "status": 429|500|503|504|0, "count": n, "retry_after": s}
                            (status 0: the connection drops with no answer; no retry_after:
                            no Retry-After header)
                            (count 0 clears the faults of that path)
  POST /__control/expire    continue tokens issued so far become too old (410)
  POST /__control/compact   watches from resourceVersions so far get 410 Expired
  POST /__control/tokens    {"token": "user" | null} adds (or removes) tokens
  POST /__control/watch_limit {"seconds": s} ends every watch stream after s seconds
  POST /__control/flood     {"mode": "noline" | "bookmarks" | null}: watches and followed
                            logs ignore timeoutSeconds and send, until the client hangs
                            up, 64 KiB pieces with no newline, or a BOOKMARK every 0.1 s
  POST /__control/drop      {"after": n, "count": k}: the next k watch streams each send n events,
                            then the connection drops (no end of the chunked body), as a load
                            balancer or an API server restarting drops it
  POST /__control/velero    {"items": n, "item_delay": s, "restore_fail_after": k | null}: how the
                            Velero controller stand-in runs a Backup (default 5 items, no delay)
                            and a Restore (with restore_fail_after, k items restored, the rest
                            errors: PartiallyFailed)
  GET  /__control/requests  every request seen: [{"method", "path", "user", "auth"}]

A Velero controller stand-in (vmware-tanzu/velero pkg/apis/velero/v1/backup_types.go,
pkg/controller/backup_controller.go): a Backup created without a status goes to phase
InProgress with status.progress {totalItems, itemsBackedUp}, one item backed up per
item_delay, then to Completed with completionTimestamp.
And for a Restore (pkg/apis/velero/v1/restore_types.go, pkg/controller/restore_controller.go):
one created without a status whose backup is missing goes to FailedValidation with the
controller's validationErrors ("Error retrieving backup: can't find backup NS/NAME: ...");
otherwise InProgress with status.progress {totalItems, itemsRestored}, the namespaces of the
backup's includedNamespaces created under spec.namespaceMapping's names (or their own: as
Velero would, into production), one ConfigMap per item restored there, labelled
velero.io/backup-name and velero.io/restore-name (pkg/restore/restore.go addRestoreLabels),
then Completed, or PartiallyFailed with status.errors. Deleting a namespace deletes what is
in it (the namespace controller's work, done at once here).
"""
import base64
import copy
import socket
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit, unquote
from loopback import reply

CORE = [  # (plural, kind, namespaced, shortNames)
    ("pods", "Pod", True, ["po"]), ("namespaces", "Namespace", False, ["ns"]),
    ("nodes", "Node", False, ["no"]), ("persistentvolumes", "PersistentVolume", False, ["pv"]),
    ("persistentvolumeclaims", "PersistentVolumeClaim", True, ["pvc"]),
    ("configmaps", "ConfigMap", True, ["cm"]), ("secrets", "Secret", True, []),
    ("serviceaccounts", "ServiceAccount", True, ["sa"]),
]
GROUPS = {  # group -> {version: [(plural, kind, namespaced)]}, first version preferred
    "storage.k8s.io": {"v1": [("storageclasses", "StorageClass", False)]},
    "argoproj.io": {"v1alpha1": [("workflows", "Workflow", True)]},
    "kubeflow.org": {"v1": [("notebooks", "Notebook", True), ("profiles", "Profile", False)],
                     "v1beta1": [("experiments", "Experiment", True), ("notebooks", "Notebook", True)]},
    "velero.io": {"v1": [("backups", "Backup", True), ("restores", "Restore", True)]},
    "coordination.k8s.io": {"v1": [("leases", "Lease", True)]},
    "batch": {"v1": [("cronjobs", "CronJob", True), ("jobs", "Job", True)]},
    "rbac.authorization.k8s.io": {"v1": [("roles", "Role", True), ("rolebindings", "RoleBinding", True),
                                         ("clusterroles", "ClusterRole", False),
                                         ("clusterrolebindings", "ClusterRoleBinding", False)]},
}
EXPIRED_CONTINUE = ("The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter, or use the continue token "
                    "in this response to retrieve the remainder of the results. Continuing with the provided "
                    "token results in an inconsistent list - objects that were created, modified, or deleted "
                    "between the time the first chunk was returned and now may show up in the list.")


class Store:
    def __init__(self):
        self.lock = threading.Condition()
        self.rv = 1000
        self.objects = {}      # (resource key) -> {(ns, name): obj}
        self.encoded = {}      # id(obj) -> bytes, so big lists are cheap to serve
        self.events = []       # (rv, key, type, obj)
        self.compacted = 0
        self.continue_floor = 0
        self.faults = []
        self.tokens = {"admin-token": "admin", "alice-token": "alice"}
        self.requests = []
        self.watch_limit = None
        self.flood = None
        self.velero = {"items": 5, "item_delay": 0}
        self.drop = {"after": 0, "count": 0}

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    def put(self, key, obj, event):
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = self.next_rv()
        meta.setdefault("uid", "uid-%d" % self.rv)
        meta.setdefault("creationTimestamp", "2026-11-25T00:00:00Z")
        self.objects.setdefault(key, {})[(meta.get("namespace"), meta["name"])] = obj
        self.encoded[id(obj)] = json.dumps(obj, separators=(",", ":")).encode()
        self.events.append((int(meta["resourceVersion"]), key, event, copy.deepcopy(obj)))
        self.lock.notify_all()


STORE = Store()


SHORT_NAMES = {"storageclasses": ["sc"], "workflows": ["wf"], "experiments": [], "leases": []}  # as the real ones


def resource_table():
    """(group or None, version) -> [(plural, kind, namespaced, short)]"""
    table = {(None, "v1"): CORE}
    for g, versions in GROUPS.items():
        for v, res in versions.items():
            table[(g, v)] = [(p, k, n, SHORT_NAMES.get(p, [])) for p, k, n in res]
    return table


RESOURCES = resource_table()


def resource_key(group, plural):
    return (group or "") + "/" + plural


def status(code, reason, message, details=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return code, body


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    target = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = merge_patch(target.get(k), v)
    return target


def json_patch(target, ops):
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        if op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif op["op"] == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        elif op["op"] == "test":
            value = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if value != op["value"]:
                raise ValueError("testing value %s failed" % op["path"])
    return doc


def label_match(labels, selector):
    for term in filter(None, (selector or "").split(",")):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def field_match(obj, selector):
    for term in filter(None, (selector or "").split(",")):
        neg = "!=" in term
        k, v = term.split("!=" if neg else "=", 1)
        value = obj
        for part in k.split("."):
            value = value.get(part, {}) if isinstance(value, dict) else {}
        value = value if isinstance(value, str) else ""
        if (value == v) == neg:
            return False
    return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    # ------------------------------------------------------------ plumbing
    def send_json(self, code, body, extra=()):
        data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        reply(self, code, data, [("Content-Type", "application/json"), *extra])

    def start_chunked(self, content_type):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunked(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def user(self):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return STORE.tokens.get(auth[7:])
        cert = self.connection.getpeercert() if hasattr(self.connection, "getpeercert") else None
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        return v
        return None

    # ------------------------------------------------------------ dispatch
    def handle_any(self):
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        path = url.path
        if path.startswith("/__control/"):
            return self.control(path[len("/__control/"):])
        user = self.user()
        with STORE.lock:
            STORE.requests.append({"method": self.command, "path": self.path, "user": user,
                                   "auth": "token" if self.headers.get("Authorization") else
                                   ("cert" if user else "none")})
            fault = next((f for f in STORE.faults if path.startswith(f["path"]) and f["count"] > 0), None)
            if fault:
                fault["count"] -= 1
        if user is None:
            return self.send_json(*status(401, "Unauthorized", "Unauthorized"))
        if fault:  # what the request sent is read first, or it would be taken for the next request
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if fault and fault["status"] == 0:  # the connection drops before any answer
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if fault:
            extra = [("Retry-After", str(fault["retry_after"]))] if fault.get("retry_after") is not None else []
            reason = "TooManyRequests" if fault["status"] == 429 else "InternalError"
            code, body = status(fault["status"], reason, "injected failure")
            return self.send_json(code, body, extra)
        code_body = self.route(path, query, user)
        if code_body is not None:
            self.send_json(*code_body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    def control(self, what):
        raw = self.body()
        data = json.loads(raw) if raw else {}
        with STORE.lock:
            if what == "fail":  # count 0 clears the faults of that path
                data.setdefault("count", 1)
                STORE.faults = [f for f in STORE.faults if f["path"] != data["path"]]
                if data["count"] > 0:
                    STORE.faults.append(data)
            elif what == "expire":
                STORE.continue_floor = STORE.rv + 1
            elif what == "compact":
                STORE.compacted = STORE.rv
            elif what == "tokens":
                for token, user in data.items():
                    if user is None:
                        STORE.tokens.pop(token, None)
                    else:
                        STORE.tokens[token] = user
            elif what == "watch_limit":
                STORE.watch_limit = data["seconds"]
            elif what == "flood":
                STORE.flood = data["mode"]
            elif what == "velero":
                STORE.velero.update(data)
            elif what == "drop":
                STORE.drop = {"after": int(data.get("after", 0)), "count": int(data.get("count", 0))}
            elif what == "requests":
                return self.send_json(200, STORE.requests)
            else:
                return self.send_json(404, {"error": "unknown control"})
        self.send_json(200, {"ok": True})

    def route(self, path, query, user):
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        if path == "/version":
            return 200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-ckfb-test", "platform": "linux/amd64"}
        if parts == ["api"]:
            return 200, {"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
        if parts == ["apis"]:
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": "%s/%s" % (g, v), "version": v} for v in vs],
                 "preferredVersion": {"groupVersion": "%s/%s" % (g, next(iter(vs))), "version": next(iter(vs))}}
                for g, vs in GROUPS.items()]}
        if parts[:1] == ["api"] and len(parts) == 2:
            return self.resource_list(None, parts[1])
        if parts[:1] == ["apis"] and len(parts) == 3:
            return self.resource_list(parts[1], parts[2])
        group, version, rest = (None, parts[1], parts[2:]) if parts[:1] == ["api"] else \
            (parts[1] if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None, parts[3:])
        if (group, version) not in RESOURCES or not rest:
            return status(404, "NotFound", "the server could not find the requested resource")
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        plural, name, sub = rest[0], (rest[1] if len(rest) > 1 else None), (rest[2] if len(rest) > 2 else None)
        info = next((r for r in RESOURCES[(group, version)] if r[0] == plural), None)
        if info is None:
            return status(404, "NotFound", "the server could not find the requested resource")
        if namespace == "forbidden" and user == "alice":
            return status(403, "Forbidden", '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" '
                          'in the namespace "%s"' % (plural, user, self.command.lower(), plural, group or "", namespace),
                          {"kind": plural})
        key = resource_key(group, plural)
        if sub == "log":
            return self.pod_log(key, namespace, name, query)
        if self.command == "GET" and name is None:
            if query.get("watch") in ("true", "1"):
                return self.watch(key, namespace, query)
            return self.list(key, info, group, version, namespace, query)
        return self.write(key, info, group, version, namespace, name, query)

    def resource_list(self, group, version):
        res = RESOURCES.get((group, version))
        if res is None:
            return status(404, "NotFound", "the server could not find the requested resource")
        gv = "%s/%s" % (group, version) if group else version
        return 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": [
            {"name": p, "singularName": k.lower(), "namespaced": n, "kind": k, "shortNames": s,
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]} for p, k, n, s in res]}

    # ------------------------------------------------------------ reads
    def list(self, key, info, group, version, namespace, query):
        limit = int(query.get("limit") or 0)
        start = 0
        with STORE.lock:
            if query.get("continue"):
                try:
                    token = json.loads(base64.b64decode(query["continue"]))
                except Exception:
                    return status(400, "BadRequest", "continue key is not valid")
                if token["rv"] < STORE.continue_floor:
                    return status(410, "Expired", EXPIRED_CONTINUE)
                start, list_rv = token["start"], token["rv"]
            else:
                list_rv = STORE.rv
            objs = [o for (ns, _), o in sorted(STORE.objects.get(key, {}).items(), key=lambda kv: (kv[0][0] or "", kv[0][1]))
                    if (namespace is None or ns == namespace)
                    and label_match(o["metadata"].get("labels", {}), query.get("labelSelector"))
                    and field_match(o, query.get("fieldSelector"))]
            page = objs[start:start + limit] if limit else objs[start:]
            encoded = [STORE.encoded[id(o)] for o in page]
        meta = {"resourceVersion": str(list_rv)}
        end = start + len(page)
        if limit and end < len(objs):
            meta["continue"] = base64.b64encode(json.dumps({"rv": list_rv, "start": end}).encode()).decode()
            meta["remainingItemCount"] = len(objs) - end
        head = json.dumps({"kind": info[1] + "List", "apiVersion": "%s/%s" % (group, version) if group else version,
                           "metadata": meta}, separators=(",", ":"))[:-1]
        self.send_json(200, head.encode() + b',"items":[' + b",".join(encoded) + b"]}")
        return None

    def flood(self, mode):
        """A misbehaving server: a stream that never ends, with or without newlines."""
        self.start_chunked("application/json")
        mark = json.dumps({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
                                                          "metadata": {"resourceVersion": str(STORE.rv)}}})
        try:
            while True:
                if mode == "noline":
                    self.chunk(b"x" * 65536)
                else:
                    self.chunk(mark.encode() + b"\n")
                    time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        return None

    def watch(self, key, namespace, query):
        if STORE.flood:
            return self.flood(STORE.flood)
        since = int(query.get("resourceVersion") or 0) or STORE.rv
        deadline = time.time() + float(query.get("timeoutSeconds") or 30)
        if STORE.watch_limit is not None:
            deadline = min(deadline, time.time() + STORE.watch_limit)
        bookmarks = query.get("allowWatchBookmarks") == "true"
        self.start_chunked("application/json")
        try:
            with STORE.lock:
                if since < STORE.compacted:
                    gone = status(410, "Expired", "too old resource version: %d (%d)" % (since, STORE.compacted))[1]
                    self.chunk(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
                    self.end_chunked()
                    return None
                sent = since
                drop_after = None
                if STORE.drop["count"] > 0:
                    STORE.drop["count"] -= 1
                    drop_after = STORE.drop["after"]
                while time.time() < deadline:
                    for rv, k, kind, obj in STORE.events:
                        if rv > sent and k == key and (namespace is None or obj["metadata"].get("namespace") == namespace) \
                                and label_match(obj["metadata"].get("labels", {}), query.get("labelSelector")):
                            if drop_after is not None and drop_after == 0:
                                self.close_connection = True
                                self.connection.shutdown(socket.SHUT_RDWR)  # mid-stream, no last chunk
                                return None
                            self.chunk(json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n")
                            if drop_after is not None:
                                drop_after -= 1
                        sent = max(sent, rv)
                    STORE.lock.wait(timeout=min(1.0, max(0.01, deadline - time.time())))
                if bookmarks:
                    mark = {"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
                                                           "metadata": {"resourceVersion": str(STORE.rv)}}}
                    self.chunk(json.dumps(mark).encode() + b"\n")
            self.end_chunked()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass
        return None

    def pod_log(self, key, namespace, name, query):
        with STORE.lock:
            pod = STORE.objects.get(key, {}).get((namespace, name))
        if pod is None:
            return status(404, "NotFound", 'pods "%s" not found' % name, {"name": name, "kind": "pods"})
        lines = pod.get("logs", ["log line %d of %s" % (i, name) for i in range(3)])
        if query.get("tailLines"):
            lines = lines[-int(query["tailLines"]):]
        if query.get("follow") == "true" and STORE.flood:
            return self.flood(STORE.flood)
        if query.get("follow") != "true":
            data = "".join(l + "\n" for l in lines).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        self.start_chunked("text/plain")
        for line in lines:
            self.chunk((line + "\n").encode())
            time.sleep(0.05)
        self.end_chunked()
        return None

    # ------------------------------------------------------------ writes
    def write(self, key, info, group, version, namespace, name, query):
        plural, kind, namespaced, _ = info
        self.dry_run = query.get("dryRun") == "All"
        objs = STORE.objects.setdefault(key, {})
        api_version = "%s/%s" % (group, version) if group else version
        raw = self.body()
        with STORE.lock:
            current = objs.get((namespace, name)) if name else None
            if self.command == "GET":
                if current is None:
                    return status(404, "NotFound", '%s "%s" not found' % (plural, name), {"name": name, "kind": plural})
                return 200, STORE.encoded[id(current)]
            if self.command == "DELETE":
                if current is None:
                    return status(404, "NotFound", '%s "%s" not found' % (plural, name), {"name": name, "kind": plural})
                del objs[(namespace, name)]
                if key == resource_key(None, "namespaces"):
                    delete_contents(name)
                gone = copy.deepcopy(current)
                gone["metadata"]["resourceVersion"] = STORE.next_rv()
                STORE.events.append((STORE.rv, key, "DELETED", gone))
                STORE.lock.notify_all()
                return 200, gone
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                return status(400, "BadRequest", "the body of the request was in an unknown format")
            if self.command == "POST":
                meta = body.get("metadata") or {}
                if not meta.get("name") and meta.get("generateName"):
                    meta["name"] = generate_name(meta["generateName"])  # apiserver names.SimpleNameGenerator
                    body["metadata"] = meta
                if not meta.get("name"):
                    return status(422, "Invalid", '%s "" is invalid: metadata.name: Required value: name is required'
                                  % kind, {"kind": kind})
                if (namespace, meta["name"]) in objs:
                    return status(409, "AlreadyExists", '%s "%s" already exists' % (plural, meta["name"]),
                                  {"name": meta["name"], "kind": plural})
                created = self.store_obj(key, body, kind, api_version, namespace, meta["name"], 201, "ADDED")
                if key == resource_key("velero.io", "backups") and not body.get("status"):
                    threading.Thread(target=run_velero_backup, args=(key, namespace, meta["name"]), daemon=True).start()
                if key == resource_key("velero.io", "restores") and not body.get("status"):
                    threading.Thread(target=run_velero_restore, args=(key, namespace, meta["name"]), daemon=True).start()
                return created
            if self.command == "PUT":
                if current is None:
                    return status(404, "NotFound", '%s "%s" not found' % (plural, name), {"name": name, "kind": plural})
                sent_rv = (body.get("metadata") or {}).get("resourceVersion")
                if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                    return status(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the object has been '
                                  'modified; please apply your changes to the latest version and try again'
                                  % (plural, name), {"name": name, "kind": plural})
                return self.store_obj(key, body, kind, api_version, namespace, name, 200, "MODIFIED")
            if self.command == "PATCH":
                ctype = self.headers.get("Content-Type", "")
                if "apply-patch" in ctype and not query.get("fieldManager"):
                    return status(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required "
                                  "value: is required for apply patch")
                if current is None and "apply-patch" not in ctype:
                    return status(404, "NotFound", '%s "%s" not found' % (plural, name), {"name": name, "kind": plural})
                base = copy.deepcopy(current) if current else {"metadata": {"name": name}}
                try:
                    if "json-patch" in ctype:
                        patched = json_patch(base, body)
                    elif "merge-patch" in ctype or "apply-patch" in ctype:
                        patched = merge_patch(base, body)
                    else:
                        return status(415, "UnsupportedMediaType", "the body of the request was in an unknown format")
                except (ValueError, KeyError, IndexError) as e:
                    return status(422, "Invalid", str(e))
                return self.store_obj(key, patched, kind, api_version, namespace, name,
                                      200 if current else 201, "MODIFIED" if current else "ADDED")
        return status(405, "MethodNotAllowed", "method not allowed")

    def store_obj(self, key, obj, kind, api_version, namespace, name, code, event):
        obj = copy.deepcopy(obj)
        obj.setdefault("kind", kind)
        obj.setdefault("apiVersion", api_version)
        meta = obj.setdefault("metadata", {})
        meta["name"] = name
        if namespace:
            meta["namespace"] = namespace
        if self.dry_run:  # ?dryRun=All: answered as if done, nothing stored (kubectl --dry-run=server)
            return code, json.dumps(obj).encode()
        STORE.put(key, obj, event)
        return code, STORE.encoded[id(obj)]


NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apiserver names.go: no vowels, no 0, 1, 3


def generate_name(prefix):
    import random
    return prefix[:58] + "".join(random.choice(NAME_CHARS) for _ in range(5))


def now_stamp():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def run_velero_backup(key, namespace, name):
    """The Velero server's part: InProgress, one item per item_delay, then Completed."""
    with STORE.lock:
        items, delay = int(STORE.velero["items"]), float(STORE.velero["item_delay"])
    for done in range(items + 1):
        with STORE.lock:
            obj = STORE.objects.get(key, {}).get((namespace, name))
            if obj is None:
                return
            obj = copy.deepcopy(obj)
            st = obj.setdefault("status", {})
            st.update({"phase": "InProgress", "startTimestamp": st.get("startTimestamp", now_stamp()),
                       "progress": {"totalItems": items, "itemsBackedUp": done}})
            if done == items:
                st.update({"phase": "Completed", "completionTimestamp": now_stamp()})
            STORE.put(key, obj, "MODIFIED")
        if done < items:
            time.sleep(delay)


def delete_contents(namespace):
    """What the namespace controller deletes with a namespace: everything in it (STORE locked)."""
    for key, objs in STORE.objects.items():
        for ns, name in [k for k in objs if k[0] == namespace]:
            gone = objs.pop((ns, name))
            STORE.events.append((int(STORE.next_rv()), key, "DELETED", copy.deepcopy(gone)))


def set_status(key, namespace, name, update):
    """Merges update into an object's status (STORE locked); False when it is gone."""
    obj = STORE.objects.get(key, {}).get((namespace, name))
    if obj is None:
        return False
    obj = copy.deepcopy(obj)
    obj.setdefault("status", {}).update(update)
    STORE.put(key, obj, "MODIFIED")
    return True


def run_velero_restore(key, namespace, name):
    """The Velero server's part of a Restore (restore_controller.go validateAndComplete,
    runValidatedRestore): validation, then the items, into the mapped namespaces."""
    with STORE.lock:
        restore = STORE.objects.get(key, {}).get((namespace, name))
        spec = (restore or {}).get("spec") or {}
        backup_name = spec.get("backupName", "")
        backup = STORE.objects.get(resource_key("velero.io", "backups"), {}).get((namespace, backup_name))
        if backup is None:
            set_status(key, namespace, name, {"phase": "FailedValidation", "validationErrors": [
                "Error retrieving backup: can't find backup %s/%s: backups.velero.io \"%s\" not found"
                % (namespace, backup_name, backup_name)]})
            return
        total = int(((backup.get("status") or {}).get("progress") or {}).get("itemsBackedUp") or 0)
        fail_after = STORE.velero.get("restore_fail_after")
        delay = float(STORE.velero["item_delay"])
        mapping = spec.get("namespaceMapping") or {}
        targets = [mapping.get(ns, ns) for ns in (backup.get("spec") or {}).get("includedNamespaces") or []]
        labels = {"velero.io/backup-name": backup_name, "velero.io/restore-name": name}
        for target in targets:
            if (None, target) not in STORE.objects.get(resource_key(None, "namespaces"), {}):
                STORE.put(resource_key(None, "namespaces"), {"kind": "Namespace", "apiVersion": "v1", "metadata": {
                    "name": target, "labels": dict(labels)}}, "ADDED")
        set_status(key, namespace, name, {"phase": "InProgress", "startTimestamp": now_stamp(),
                                          "progress": {"totalItems": total, "itemsRestored": 0}})
    restored = 0
    for i in range(total):
        if fail_after is not None and restored >= int(fail_after):
            break
        with STORE.lock:
            if targets:
                STORE.put(resource_key(None, "configmaps"), {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {
                    "name": "%s-item-%d" % (backup_name[:40], i), "namespace": targets[i % len(targets)],
                    "labels": dict(labels)}, "data": {"item": str(i)}}, "ADDED")
            restored += 1
            if not set_status(key, namespace, name, {"progress": {"totalItems": total, "itemsRestored": restored}}):
                return
        time.sleep(delay)
    with STORE.lock:
        # pkg/restore/restore.go: the last progress update counts what was restored, as both
        final = {"phase": "Completed", "completionTimestamp": now_stamp(), "warnings": 0, "errors": 0,
                 "progress": {"totalItems": restored, "itemsRestored": restored}}
        if restored < total:
            final.update(phase="PartiallyFailed", errors=total - restored)
        set_status(key, namespace, name, final)


def seed(pods, namespaces, profiles):
    with STORE.lock:
        for n in ["default", "kubeflow", "kube-system", "forbidden"] + ["user-%d" % i for i in range(namespaces)]:
            STORE.put(resource_key(None, "namespaces"), {"kind": "Namespace", "apiVersion": "v1",
                                                         "metadata": {"name": n}}, "ADDED")
        # Kubeflow user profiles: namespaces the profile controller labels so
        # (kubeflow-profiles-operator src/charm.py _get_profile_namespaces)
        for i in range(profiles):
            STORE.put(resource_key(None, "namespaces"), {"kind": "Namespace", "apiVersion": "v1", "metadata": {
                "name": "profile-%d" % i, "labels": {"app.kubernetes.io/part-of": "kubeflow-profile"}}}, "ADDED")
        for i in range(pods):
            ns = "user-%d" % (i % namespaces) if namespaces else "default"
            STORE.put(resource_key(None, "pods"), {
                "kind": "Pod", "apiVersion": "v1",
                "metadata": {"name": "pod-%05d" % i, "namespace": ns, "labels": {"app": "app-%d" % (i % 7),
                             "ckfb-test": "yes"}},
                "spec": {"containers": [{"name": "main", "image": "registry.example/app:%d" % (i % 3)}],
                         "nodeName": "node-%d" % (i % 3)},
                "status": {"phase": "Running" if i % 10 else "Pending", "podIP": "10.1.%d.%d" % (i // 250, i % 250)},
            }, "ADDED")
        STORE.put(resource_key("storage.k8s.io", "storageclasses"), {
            "kind": "StorageClass", "apiVersion": "storage.k8s.io/v1",
            "metadata": {"name": "microk8s-hostpath"}, "provisioner": "microk8s.io/hostpath"}, "ADDED")


def main():
    args = sys.argv[1:]
    opts = {"--pods": 20, "--namespaces": 2, "--profiles": 0}
    for flag in list(opts):
        if flag in args:
            i = args.index(flag)
            opts[flag] = int(args[i + 1])
            del args[i:i + 2]
    portfile, cert, key, ca = args
    seed(opts["--pods"], opts["--namespaces"], opts["--profiles"])
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.verify_mode = ssl.CERT_OPTIONAL  # a token or a client certificate, on one port
    ctx.load_verify_locations(ca)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(portfile + ".tmp", portfile)
    server.serve_forever()


if __name__ == "__main__":
    main()
