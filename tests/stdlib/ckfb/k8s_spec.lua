local k8s = require "ckfb.k8s"
local http = require "ckfb.http"
local json = require "ckfb.json"
local proc = require "ckfb.proc"
local task = require "ckfb.task"
local loop = require "ckfb.core.loop"

local SERVER = assert(os.getenv("CKFB_TEST_K8S"), "tests/run starts the Kubernetes test server")
local CERTS = assert(os.getenv("CKFB_TEST_CERTS"))
local TMP = assert(os.getenv("CKFB_TEST_TMP"))

local capture = require "tests.stdlib.ckfb.helpers.capture"
local read = capture.read

local function write(path, text, mode)
  capture.write(path, text)
  if mode then assert(proc.run({ "chmod", mode, path })) end
  return path
end

local function b64(path)
  return (assert(proc.run({ "base64", "-w0", path })).stdout)
end

local function control(what, body)
  return assert(http.request { method = "POST", url = SERVER .. "/__control/" .. what, body = json.encode(body or {}),
    tls = { ca_file = CERTS .. "/ca.crt" } })
end

local function requests()
  local r = assert(http.get(SERVER .. "/__control/requests", { tls = { ca_file = CERTS .. "/ca.crt" } }))
  return json.decode(r.body)
end

--- Writes a kubeconfig with one context "test" for `user` (a kubeconfig user table).
local function kubeconfig(name, user, cluster_extra, namespace)
  local cluster = { server = SERVER, ["certificate-authority"] = CERTS .. "/ca.crt" }
  for k, v in pairs(cluster_extra or {}) do cluster[k] = v end
  local doc = {
    apiVersion = "v1", kind = "Config", ["current-context"] = "test",
    clusters = { { name = "c", cluster = cluster } },
    users = { { name = "u", user = user } },
    contexts = { { name = "test", context = { cluster = "c", user = "u", namespace = namespace or "user-0" } } },
  }
  return write(TMP .. "/" .. name .. ".kubeconfig", json.encode(doc))
end

local function client(user, cluster_extra, opts)
  return assert(k8s.client { kubeconfig = kubeconfig("k", user, cluster_extra), max_line = opts and opts.max_line })
end

local function names(items)
  local out = {}
  for i, item in ipairs(items) do out[i] = item.metadata.namespace .. "/" .. item.metadata.name end
  table.sort(out)
  return out
end

describe("ckfb.k8s", function()
  describe("authentication", function()
    it("sends a bearer token", function()
      local c = client({ token = "admin-token" })
      assert.equal(15, #assert(c:list("pods")))
      assert.equal("token", requests()[#requests()].auth)
    end)

    it("reads a token file again when the token rotates (401, then a fresh read)", function()
      control("tokens", { ["rot-1"] = "admin" })
      local file = write(TMP .. "/token", "rot-1\n")
      local c = client({ tokenFile = file })
      assert(c:get("namespaces", "default"))
      control("tokens", { ["rot-1"] = json.null, ["rot-2"] = "admin" })
      write(file, "rot-2\n")
      assert(c:get("namespaces", "default"))
    end)

    it("presents a client certificate from files or from data", function()
      local files = client({ ["client-certificate"] = CERTS .. "/client.crt", ["client-key"] = CERTS .. "/client.key" })
      assert(files:get("namespaces", "default"))
      local last = requests()[#requests()]
      assert.equal("cert", last.auth)
      assert.equal("ckfb test client", last.user)
      local data = client({ ["client-certificate-data"] = b64(CERTS .. "/client.crt"),
        ["client-key-data"] = b64(CERTS .. "/client.key") })
      assert(data:get("namespaces", "default"))
    end)

    for _, api in ipairs { "client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1" } do
      it("runs an exec credential plugin (" .. api .. ") and caches its token until it expires", function()
        local counter = TMP .. "/exec-count"
        write(counter, "")
        local plugin = write(TMP .. "/plugin.sh", table.concat({
          "#!/bin/sh",
          "echo x >> " .. counter,
          'case "$KUBERNETES_EXEC_INFO" in *ExecCredential*) ;; *) exit 3 ;; esac',
          'printf \'{"apiVersion":"%s","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"%s"}}\' '
            .. '"' .. api .. '" "$TOKEN" "$EXPIRES"',
        }, "\n"), "0755")
        local mode = api:match("/v1$") and "Never" or nil   -- v1 must say (v1beta1 defaults to IfAvailable)
        local c = client({ exec = { apiVersion = api, command = plugin, interactiveMode = mode,
          env = { { name = "TOKEN", value = "admin-token" }, { name = "EXPIRES", value = "2099-01-01T00:00:00Z" } } } })
        assert(c:get("namespaces", "default"))
        assert(c:get("namespaces", "kubeflow"))
        assert.equal(1, select(2, read(counter):gsub("x", "")))
        local expired = client({ exec = { apiVersion = api, command = plugin, interactiveMode = mode,
          env = { { name = "TOKEN", value = "admin-token" }, { name = "EXPIRES", value = "2001-01-01T00:00:00Z" } } } })
        assert(expired:get("namespaces", "default"))
        assert(expired:get("namespaces", "kubeflow"))
        -- discovery and two reads: three requests, each needing a fresh token
        assert.equal(4, select(2, read(counter):gsub("x", "")))
      end)
    end

    it("reports a failing exec plugin with its install hint", function()
      local c = client({ exec = { apiVersion = "client.authentication.k8s.io/v1", command = "ckfb-no-such-plugin",
        interactiveMode = "Never", installHint = "install it from example.com" } })
      local v, err = c:get("namespaces", "default")
      assert.is_nil(v)
      assert.equal("k8s.credentials", err.code)
      assert.matches("install it from example.com", err.message)
    end)

    it("uses the in-cluster service account and namespace", function()
      local dir = TMP .. "/sa"
      proc.run({ "mkdir", "-p", dir })
      write(dir .. "/token", "admin-token")
      write(dir .. "/ca.crt", read(CERTS .. "/ca.crt"))
      write(dir .. "/namespace", "user-1\n")
      local c = assert(k8s.client { in_cluster = true, service_account_dir = dir, server = SERVER })
      assert.equal("user-1", c.cfg.namespace)
      local pods = assert(c:list("pods"))
      assert.equal("user-1", pods[1].metadata.namespace)
    end)

    it("answers 401 for a wrong token as k8s.unauthorized, and never logs a token", function()
      local c = client({ token = "wrong-secret-token" })
      local logged, v, err = capture.log(function() return c:list("pods") end)
      assert.is_nil(v)
      assert.equal("k8s.unauthorized", err.code)
      assert.is_nil(logged:find("wrong-secret-token", 1, true))
      assert.is_nil(tostring(err):find("wrong-secret-token", 1, true))
    end)
  end)

  describe("configuration", function()
    it("merges several kubeconfig files as kubectl does", function()
      local first = write(TMP .. "/first.kubeconfig", json.encode {
        ["current-context"] = "a",
        clusters = { { name = "c", cluster = { server = SERVER, ["certificate-authority"] = CERTS .. "/ca.crt" } } },
        users = { { name = "u", user = { token = "admin-token" } } },
        contexts = { { name = "a", context = { cluster = "c", user = "u", namespace = "user-1" } } },
      })
      local second = write(TMP .. "/second.kubeconfig", json.encode {
        ["current-context"] = "b",
        clusters = { { name = "c", cluster = { server = "https://127.0.0.1:1" } } },  -- first file wins
        users = { { name = "alice", user = { token = "alice-token" } } },
        contexts = { { name = "b", context = { cluster = "c", user = "alice", namespace = "forbidden" } } },
      })
      local merged = assert(k8s.client { kubeconfig = first .. ":" .. second })
      assert.equal("a", merged.cfg.context)
      assert.equal("user-1", merged.cfg.namespace)
      local alice = assert(k8s.client { kubeconfig = { second, first }, context = "b" })
      assert.equal("https://127.0.0.1:1", alice.cfg.server)
      local via_first = assert(k8s.client { kubeconfig = { first, second }, context = "b" })
      assert.equal(SERVER, via_first.cfg.server)
      local _, forbidden = via_first:list("pods")
      assert.equal("k8s.forbidden", forbidden.code)
    end)

    it("says what is wrong with a kubeconfig, in one line", function()
      local _, missing = k8s.client { kubeconfig = kubeconfig("x", { token = "t" }), context = "nope" }
      assert.equal("k8s.config: context 'nope' is not in the kubeconfig", tostring(missing))
      local bad = write(TMP .. "/bad.kubeconfig", "clusters: [\n  - name: c\n    cluster: {server: x\n")
      local _, yaml_err = k8s.client { kubeconfig = bad }
      assert.equal("k8s.config", yaml_err.code)
      assert.matches("line %d+, column %d+", yaml_err.message)
      local _, none = k8s.client { kubeconfig = TMP .. "/does-not-exist" }
      assert.equal("k8s.config", none.code)
    end)

    it("verifies TLS unless the kubeconfig says insecure-skip-tls-verify", function()
      local unverified = client({ token = "admin-token" }, { ["certificate-authority"] = json.null })
      local _, err = unverified:list("pods")
      assert.equal("http.tls", err.code)
      local insecure = client({ token = "admin-token" }, { ["certificate-authority"] = json.null,
        ["insecure-skip-tls-verify"] = true })
      assert(insecure:list("pods"))
      local data = client({ token = "admin-token" }, { ["certificate-authority"] = json.null,
        ["certificate-authority-data"] = b64(CERTS .. "/ca.crt") })
      assert(data:list("pods"))
    end)

    it("honours proxy-url", function()
      local c = client({ token = "admin-token" }, { ["proxy-url"] = "http://127.0.0.1:1" })
      local _, err = c:list("pods")
      assert.equal("http.connect", err.code)
    end)
  end)

  describe("reading", function()
    local c
    before_each(function() c = client({ token = "admin-token" }) end)

    it("lists every item across pages, as kubectl does", function()
      local items, rv = assert(c:list("pods", { all_namespaces = true, limit = 7 }))
      assert.equal(30, #items)
      assert.matches("^%d+$", rv)
      local pages = 0
      for _, r in ipairs(requests()) do
        if r.path:match("^/api/v1/pods%?") then pages = pages + 1 end
      end
      assert.is_true(pages >= 5)
      local kc = assert(proc.run({ "kubectl", "--kubeconfig", kubeconfig("kc", { token = "admin-token" }),
        "get", "pods", "-A", "-o", "json", "--chunk-size", "4" }, { env = { HOME = TMP } }))
      assert.equal(0, kc.code, kc.stderr)
      assert.same(names(json.decode(kc.stdout).items), names(items))
    end)

    it("streams page by page with pages()", function()
      local sizes = {}
      for page, err in c:pages("pods", { all_namespaces = true, limit = 8 }) do
        assert(page, err)
        sizes[#sizes + 1] = #page
      end
      assert.same({ 8, 8, 8, 6 }, sizes)
    end)

    it("returns 410 when a continue token expired between pages", function()
      local iter = c:pages("pods", { all_namespaces = true, limit = 10 })
      assert.equal(10, #assert(iter()))
      control("expire")
      local page, err = iter()
      assert.is_false(page)
      assert.equal("k8s.expired", err.code)
      assert.matches("continue parameter is too old", err.message)
      assert.is_nil(iter())
    end)

    it("selects by label and field", function()
      assert.equal(5, #assert(c:list("pods", { all_namespaces = true, label_selector = "app=app-1" })))
      assert.equal(3, #assert(c:list("pods", { all_namespaces = true, field_selector = "status.phase=Pending" })))
    end)

    it("resolves custom resources through discovery, once", function()
      assert.same({}, assert(c:list("workflows.argoproj.io")))
      assert.same({}, assert(c:list("experiments.kubeflow.org")))
      assert.equal("v1beta1", assert(c:resolve("experiments.kubeflow.org")).version)
      assert.equal("v1", assert(c:resolve("notebooks.kubeflow.org")).version)
      assert.equal("v1beta1", assert(c:resolve("notebooks.v1beta1.kubeflow.org")).version)
      assert.equal(1, #assert(c:list("storageclasses.storage.k8s.io")))
      local before = #requests()
      c:list("experiments.kubeflow.org")
      assert.equal(before + 1, #requests())
      local _, err = c:list("frobs.example.com")
      assert.equal("k8s.unknown_resource", err.code)
    end)

    it("reads pod logs, whole or followed line by line", function()
      assert.equal("log line 0 of pod-00000\nlog line 1 of pod-00000\nlog line 2 of pod-00000\n",
        assert(c:logs("pod-00000")))
      local lines = {}
      assert(c:logs("pod-00000", { follow = true, tail_lines = 2 }, function(line) lines[#lines + 1] = line end))
      assert.same({ "log line 1 of pod-00000", "log line 2 of pod-00000" }, lines)
    end)
  end)

  describe("errors", function()
    local c
    before_each(function() c = client({ token = "admin-token" }) end)

    it("carries the API's Status", function()
      local _, nf = c:get("pods", "nope")
      assert.equal("k8s.not_found", nf.code)
      assert.equal(404, nf.detail.status)
      assert.equal("NotFound", nf.detail.reason)
      assert.equal('k8s.not_found: GET /api/v1/namespaces/user-0/pods/nope: pods "nope" not found', tostring(nf))
      local alice = client({ token = "alice-token" })
      local _, forbidden = alice:list("pods", { namespace = "forbidden" })
      assert.equal("k8s.forbidden", forbidden.code)
      local _, invalid = c:create("pods", { metadata = {} })
      assert.equal("k8s.invalid", invalid.code)
    end)

    it("retries 429 and 5xx that come with Retry-After, then succeeds", function()
      control("fail", { path = "/api/v1/namespaces/user-0/pods", status = 429, retry_after = 1, count = 1 })
      local t0 = loop.now()
      assert(c:list("pods"))
      assert.is_true(loop.now() - t0 >= 1)
      control("fail", { path = "/api/v1/namespaces/user-0/pods", status = 503, retry_after = 0, count = 2 })
      control("fail", { path = "/api/v1/namespaces/user-0/pods", status = 500, retry_after = 0, count = 1 })
      assert(c:list("pods"))
    end)

    it("gives up on a server that keeps failing", function()
      control("fail", { path = "/api/v1/namespaces/user-0/pods", status = 503, retry_after = 0, count = 10 })
      local v, err = c:list("pods")
      assert.is_nil(v)
      assert.equal("k8s.server_error", err.code)
      control("fail", { path = "/api/v1/namespaces/user-0/pods", status = 503, count = 0 })
    end)

    it("returns a 409 at once: AlreadyExists and Conflict", function()
      local obj = { metadata = { name = "cm-conflict" }, data = { a = "1" } }
      local created = assert(c:create("configmaps", obj))
      local _, exists = c:create("configmaps", obj)
      assert.equal("k8s.already_exists", exists.code)
      created.data.a = "2"
      assert(c:replace("configmaps", created))
      created.data.a = "3"  -- created still holds the old resourceVersion
      local _, conflict = c:replace("configmaps", created)
      assert.equal("k8s.conflict", conflict.code)
      assert.matches("the object has been modified", conflict.message)
      assert(c:delete("configmaps", "cm-conflict"))
      local _, gone = c:get("configmaps", "cm-conflict")
      assert.equal("k8s.not_found", gone.code)
    end)
  end)

  describe("patching", function()
    it("applies merge, strategic, JSON and server-side apply patches", function()
      local c = client({ token = "admin-token" })
      assert(c:create("configmaps", { metadata = { name = "cm-patch" }, data = { a = "1", b = "2" } }))
      local merged = assert(c:patch("configmaps", "cm-patch", { data = { b = json.null, c = "3" } }))
      assert.same({ a = "1", c = "3" }, merged.data)
      local strategic = assert(c:patch("configmaps", "cm-patch", { data = { d = "4" } }, { type = "strategic" }))
      assert.equal("4", strategic.data.d)
      local jp = assert(c:patch("configmaps", "cm-patch",
        { { op = "replace", path = "/data/a", value = "10" }, { op = "remove", path = "/data/c" } }, { type = "json" }))
      assert.same({ a = "10", d = "4" }, jp.data)
      local applied = assert(c:patch("configmaps", "cm-apply", { apiVersion = "v1", kind = "ConfigMap",
        metadata = { name = "cm-apply" }, data = { x = "y" } }, { type = "apply", field_manager = "ckfb-test" }))
      assert.equal("y", applied.data.x)
      local last = requests()[#requests()]
      assert.matches("fieldManager=ckfb%-test", last.path)
      assert.has_error(function() c:patch("configmaps", "cm-patch", {}, { type = "yaml" }) end)
    end)
  end)

  describe("watch", function()
    local c
    before_each(function() c = client({ token = "admin-token" }) end)
    after_each(function()
      control("watch_limit", { seconds = json.null })
      control("flood", { mode = json.null })
    end)

    it("hands events to Lua as they arrive", function()
      local seen = {}
      task.spawn(function()
        task.sleep(0.2)
        assert(c:create("configmaps", { metadata = { name = "cm-watch" }, data = {} }))
        assert(c:patch("configmaps", "cm-watch", { data = { k = "v" } }))
        assert(c:delete("configmaps", "cm-watch"))
      end)
      assert(c:watch("configmaps", { timeout = 5 }, function(kind, obj)
        seen[#seen + 1] = kind .. " " .. obj.metadata.name
        return #seen < 3
      end))
      assert.same({ "ADDED cm-watch", "MODIFIED cm-watch", "DELETED cm-watch" }, seen)
    end)

    it("resumes from the last resourceVersion when the server ends the stream", function()
      control("watch_limit", { seconds = 0.3 })
      local seen = {}
      task.spawn(function()
        for i = 1, 3 do
          task.sleep(0.4)
          assert(c:create("configmaps", { metadata = { name = "cm-resume-" .. i }, data = {} }))
        end
      end)
      assert(c:watch("configmaps", { timeout = 5 }, function(kind, obj)
        seen[#seen + 1] = kind .. " " .. obj.metadata.name
        return #seen < 3
      end))
      assert.same({ "ADDED cm-resume-1", "ADDED cm-resume-2", "ADDED cm-resume-3" }, seen)
      local watches = 0
      for _, r in ipairs(requests()) do
        if r.path:match("watch=true") and r.path:match("configmaps") then watches = watches + 1 end
      end
      assert.is_true(watches >= 3)
    end)

    it("lists again after 410 Expired and hands the items over", function()
      local _, rv = assert(c:list("pods"))
      assert(c:create("configmaps", { metadata = { name = "cm-after-compact" }, data = {} }))
      control("compact")
      local seen = {}
      assert(c:watch("pods", { resource_version = tostring(tonumber(rv) - 5), timeout = 5 }, function(kind, obj)
        seen[#seen + 1] = kind .. " " .. obj.metadata.name
        return #seen < 15
      end))
      assert.equal(15, #seen)
      assert.equal("ADDED pod-00000", seen[1])
    end)

    it("stops a line with no newline at max_line (k8s.line_too_long), in watches and followed logs", function()
      control("flood", { mode = "noline" })
      local small = client({ token = "admin-token" }, nil, { max_line = 1024 * 1024 })
      local before = collectgarbage("count")
      local ok, err = small:watch("configmaps", { timeout = 30 }, function() return true end)
      assert.is_nil(ok)
      assert.equal("k8s.line_too_long", err.code)
      assert.equal(1024 * 1024, err.detail.limit)
      assert.is_true(collectgarbage("count") - before < 16 * 1024, "held no more than a few lines' worth")
      local lok, lerr = small:logs("pod-00000", { follow = true, timeout = 30 }, function() end)
      assert.is_nil(lok)
      assert.equal("k8s.line_too_long", lerr.code)
    end)

    it("ends at its timeout even when the server keeps the stream open", function()
      control("flood", { mode = "bookmarks" })
      local started = loop.now()
      assert.is_true(c:watch("configmaps", { timeout = 1 }, function() return true end))
      -- the server never ends this stream: before, the watch ran until curl's timeout (31 s)
      assert.is_true(loop.now() - started < 4, "ended near its 1 s deadline")
    end)

    it("raises on misuse", function()
      assert.has_error(function() c:watch("pods", {}) end)
    end)
  end)

  describe("at client-go's level (kubectl as the peer)", function()
    local kc_path
    before_each(function() kc_path = kubeconfig("peer", { token = "admin-token" }, nil, "kubeflow") end)

    local function kubectl(...)
      return assert(proc.run({ "kubectl", "--kubeconfig", kc_path, ... }, { env = { HOME = TMP }, timeout = 60 }))
    end

    --- The requests the server saw since `mark` whose method and path match.
    local function seen_since(mark, method, prefix)
      local n = 0
      local all = requests()
      for i = mark + 1, #all do
        if all[i].method == method and all[i].path:sub(1, #prefix) == prefix then n = n + 1 end
      end
      return n
    end

    local function configmap(name)
      return { apiVersion = "v1", kind = "ConfigMap", metadata = { name = name }, data = { k = "v" } }
    end

    it("sends a write once on 504 without Retry-After, as kubectl does, and again when it comes", function()
      local c = assert(k8s.client { kubeconfig = kc_path })
      local path = "/api/v1/namespaces/kubeflow/configmaps"
      control("fail", { path = path, status = 504, count = 2 })
      local mark = #requests()
      local _, err = c:create("configmaps", configmap("retry-ckfb"))
      assert.equal("k8s.server_error", err.code)
      local ckfb_posts = seen_since(mark, "POST", path)
      control("fail", { path = path, status = 504, count = 0 })
      control("fail", { path = path, status = 504, count = 2 })
      mark = #requests()
      local spec = write(TMP .. "/cm.json", json.encode(configmap("retry-kubectl")))
      local kc = kubectl("create", "--validate=false", "-f", spec)
      assert.equal(1, kc.code)
      assert.matches("injected failure", kc.stderr)
      assert.equal(1, ckfb_posts)
      assert.equal(ckfb_posts, seen_since(mark, "POST", path))       -- the same count as kubectl's
      control("fail", { path = path, status = 504, count = 0 })
      control("fail", { path = path, status = 503, retry_after = 0, count = 2 })
      mark = #requests()
      assert(c:create("configmaps", configmap("retry-after")))
      assert.equal(3, seen_since(mark, "POST", path))
      control("fail", { path = path, status = 503, retry_after = 0, count = 2 })
      mark = #requests()
      spec = write(TMP .. "/cm.json", json.encode(configmap("retry-after-kubectl")))
      assert.equal(0, kubectl("create", "--validate=false", "-f", spec).code)
      assert.equal(3, seen_since(mark, "POST", path))                  -- kubectl: the same three
      c:delete("configmaps", "retry-after")
      c:delete("configmaps", "retry-after-kubectl")
    end)

    it("sends a GET again when the connection drops, as kubectl does", function()
      local c = assert(k8s.client { kubeconfig = kc_path })
      local path = "/api/v1/namespaces/kubeflow/configmaps"
      -- two drops: an HTTP client tries a dropped reused connection once more by itself;
      -- the second is client-go's to retry (a GET on IsProbableEOF)
      control("fail", { path = path, status = 0, count = 2 })
      local mark = #requests()
      assert(c:list("configmaps"))
      local ckfb_gets = seen_since(mark, "GET", path)
      control("fail", { path = path, status = 0, count = 2 })
      mark = #requests()
      assert.equal(0, kubectl("get", "configmaps", "-o", "name").code)
      assert.equal(3, ckfb_gets)
      assert.equal(ckfb_gets, seen_since(mark, "GET", path))
    end)

    it("resumes a watch through three dropped connections, losing and repeating no event", function()
      local c = assert(k8s.client { kubeconfig = kc_path })
      local _, rv = assert(c:list("configmaps", { limit = 1 }))
      local made = {}
      for i = 1, 8 do
        made[i] = "watched-" .. i
        assert(c:create("configmaps", configmap(made[i])))
      end
      control("drop", { after = 2, count = 3 })
      local mark = #requests()
      local got = {}
      assert(c:watch("configmaps", { resource_version = rv, timeout = 20 }, function(kind, obj)
        if kind == "ADDED" and obj.metadata.name:match("^watched%-") then got[#got + 1] = obj.metadata.name end
        return #got < #made
      end))
      assert.same(made, got)
      assert.equal(4, seen_since(mark, "GET", "/api/v1/namespaces/kubeflow/configmaps?"))  -- 3 drops, 4 streams
      for _, name in ipairs(made) do c:delete("configmaps", name) end
    end)

    it("lists whole again when a continue token expired between pages (pager FullListIfExpired)", function()
      local c = assert(k8s.client { kubeconfig = kc_path })
      local pages = 0
      local request = c.request
      c.request = function(self, method, path, opts)
        if path == "/api/v1/pods" and opts.query.continue then
          pages = pages + 1
          if pages == 1 then control("expire") end
        end
        return request(self, method, path, opts)
      end
      local items = assert(c:list("pods", { all_namespaces = true, limit = 10 }))
      assert.equal(30, #items)
      assert.equal(30, #assert(k8s.client { kubeconfig = kc_path }):list("pods", { all_namespaces = true }))
    end)

    it("resolves names as kubectl does: storageclasses, sc, and a group's resources", function()
      local c = assert(k8s.client { kubeconfig = kc_path })
      local sc = assert(c:resolve("storageclasses"))
      assert.equal("storage.k8s.io", sc.group)
      assert.equal("storageclasses", assert(c:resolve("sc")).plural)
      assert.equal("argoproj.io", assert(c:resolve("workflows")).group)
      assert.equal(1, #assert(c:list("sc")))
      assert.equal(0, kubectl("get", "sc", "-o", "name").code)
      local _, err = c:resolve("frobs")
      assert.equal("k8s.unknown_resource", err.code)
    end)

    it("resolves a relative exec command against the kubeconfig's folder, and passes its stderr on", function()
      local dir = TMP .. "/kc-folder"
      assert(proc.run({ "mkdir", "-p", dir .. "/bin" }))
      write(dir .. "/bin/plugin.sh", table.concat({
        "#!/bin/sh",
        "echo 'plugin: signing in as ckfb' >&2",
        'case "$KUBERNETES_EXEC_INFO" in *\'"server":"' .. SERVER .. '"\'*) ;;',
        '  *) echo "no cluster info" >&2; exit 3 ;; esac',
        'echo \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
          .. '"status":{"token":"admin-token"}}\'',
      }, "\n"), "0755")
      local doc = json.decode(read(kubeconfig("relative", { exec = { apiVersion = "client.authentication.k8s.io/v1",
        command = "./bin/plugin.sh", interactiveMode = "Never", provideClusterInfo = true } })))
      local path = write(dir .. "/config", json.encode(doc))
      local r = assert(proc.run({ os.getenv("CKFB"), "-e", [[
local c = assert(require("ckfb.k8s").client { kubeconfig = os.getenv("KC") })
print(assert(c:get("namespaces", "kubeflow")).metadata.name)]] }, { cwd = "/", timeout = 30, env = { KC = path } }))
      assert.equal(0, r.code, r.stderr)
      assert.equal("kubeflow\n", r.stdout)
      assert.matches("plugin: signing in as ckfb", r.stderr)
      local kc = assert(proc.run({ "kubectl", "--kubeconfig", path, "get", "ns", "kubeflow", "-o", "name" },
        { cwd = "/", env = { HOME = TMP } }))
      assert.equal(0, kc.code, kc.stderr)
      proc.run({ "rm", "-rf", dir })
    end)

    it("refuses an exec plugin of v1 that does not say its interactiveMode, as kubectl does", function()
      local path = kubeconfig("nomode", { exec = { apiVersion = "client.authentication.k8s.io/v1", command = "true" } })
      local c, err = k8s.client { kubeconfig = path }
      assert.is_nil(c)
      assert.matches("interactiveMode must be specified", err.message)
      local kc = assert(proc.run({ "kubectl", "--kubeconfig", path, "get", "ns" }, { env = { HOME = TMP } }))
      assert.not_equal(0, kc.code)
      assert.matches("interactiveMode must be specified", kc.stderr)
      local always = kubeconfig("always", { exec = { apiVersion = "client.authentication.k8s.io/v1",
        command = "true", interactiveMode = "Always" } })
      local _, aerr = assert(k8s.client { kubeconfig = always }):get("namespaces", "kubeflow")
      assert.matches("standard input is not a terminal", aerr.message)
    end)

    it("fails an explicit kubeconfig that does not exist, never falling back to the pod's account", function()
      local _, err = k8s.client { kubeconfig = TMP .. "/no-such.kubeconfig", server = SERVER }
      assert.equal("k8s.config", err.code)
      assert.matches("no%-such%.kubeconfig does not exist", err.message)
    end)

    it("takes POD_NAMESPACE in the cluster", function()
      local dir = TMP .. "/sa-ns"
      proc.run({ "mkdir", "-p", dir })
      write(dir .. "/token", "admin-token")
      write(dir .. "/namespace", "kubeflow")
      local r = assert(proc.run({ os.getenv("CKFB"), "-e", [[
local c = assert(require("ckfb.k8s").client { in_cluster = true, service_account_dir = os.getenv("SA"),
  server = "https://x" })
print(c.cfg.namespace)]] }, { env = { POD_NAMESPACE = "user-0", SA = dir } }))
      assert.equal("user-0\n", r.stdout)
      proc.run({ "rm", "-rf", dir })
    end)

    --- A Kubernetes test server of this test's own, with another certificate; -> its URL, stop()
    local function own_server(name, cert, key)
      local portfile = TMP .. "/" .. name .. ".port"
      local server = task.spawn(proc.run, { "/usr/bin/python3", "tests/servers/kube_apiserver.py", portfile,
        CERTS .. "/" .. cert, CERTS .. "/" .. key, CERTS .. "/ca.crt" }, { timeout = 300 })
      local deadline = loop.now() + 10
      while not io.open(portfile) and loop.now() < deadline do task.sleep(0.05) end
      local port = assert(read(portfile), "the server did not start"):match("%d+")
      return "https://127.0.0.1:" .. port, function() server:cancel(); os.remove(portfile) end
    end

    local function verdict(path, argv_prefix)
      local code = [[
local c, err = require("ckfb.k8s").client { kubeconfig = os.getenv("KC") }
local ns
if c then ns, err = c:get("namespaces", "kubeflow") end
print(ns and "ok" or ("refused " .. err.code))]]
      local argv = { table.unpack(argv_prefix or {}) }
      for _, a in ipairs { os.getenv("CKFB"), "-e", code } do argv[#argv + 1] = a end
      local ckfb = assert(proc.run(argv, { env = { KC = path, HOME = TMP }, timeout = 60 })).stdout
      argv = { table.unpack(argv_prefix or {}) }
      for _, a in ipairs { "kubectl", "--kubeconfig", path, "get", "ns", "kubeflow", "-o", "name" } do
        argv[#argv + 1] = a
      end
      local kc = assert(proc.run(argv, { env = { HOME = TMP }, timeout = 60 }))
      return ckfb:gsub("\n$", ""), kc.code == 0 and "ok" or "refused"
    end

    it("checks the certificate against tls-server-name, as kubectl does", function()
      local url, stop = own_server("named", "named.crt", "named.key")
      local named = kubeconfig("named", { token = "admin-token" },
        { server = url, ["tls-server-name"] = "kube.internal" })
      local plain = kubeconfig("unnamed", { token = "admin-token" }, { server = url })
      local with_ckfb, with_kubectl = verdict(named)
      local without_ckfb, without_kubectl = verdict(plain)
      stop()
      assert.same({ "ok", "ok" }, { with_ckfb, with_kubectl })
      assert.same({ "refused http.tls", "refused" }, { without_ckfb, without_kubectl })
    end)

    it("trusts only the kubeconfig's CA, not the system's store, as kubectl does", function()
      -- a private mount namespace where the system's store holds another CA, which signed
      -- the certificate of this server (a TLS-intercepting proxy trusted by the system)
      if assert(proc.run({ "unshare", "-rm", "true" })).code ~= 0 then
        pending("user namespaces are not allowed on this machine (unshare -rm)")
        return
      end
      local store = TMP .. "/fake-system-store"
      assert(proc.run({ "mkdir", "-p", store }))
      write(store .. "/ca-certificates.crt", read(CERTS .. "/other-ca.crt"))
      write(store .. "/other-ca.pem", read(CERTS .. "/other-ca.crt"))
      assert.equal(0, assert(proc.run({ "openssl", "rehash", store })).code)
      local url, stop = own_server("intercept", "intercept.crt", "intercept.key")
      local own_ca = kubeconfig("own-ca", { token = "admin-token" }, { server = url })
      local no_ca = write(TMP .. "/no-ca.kubeconfig", json.encode { apiVersion = "v1", kind = "Config",
        ["current-context"] = "t", clusters = { { name = "c", cluster = { server = url } } },
        users = { { name = "u", user = { token = "admin-token" } } },
        contexts = { { name = "t", context = { cluster = "c", user = "u" } } } })
      local in_ns = { "unshare", "-rm", "sh", "-c", 'mount --bind "$0" /etc/ssl/certs && exec "$@"', store }
      local ca_ckfb, ca_kubectl = verdict(own_ca, in_ns)
      local sys_ckfb, sys_kubectl = verdict(no_ca, in_ns)
      stop()
      proc.run({ "rm", "-rf", store })
      assert.same({ "ok", "ok" }, { sys_ckfb, sys_kubectl })          -- the fake store is the system's there
      assert.same({ "refused http.tls", "refused" }, { ca_ckfb, ca_kubectl })
    end)
  end)
end)
