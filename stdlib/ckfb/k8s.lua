--- ckfb.k8s: the Kubernetes API over HTTPS (ckfb.http on the one loop),
-- configured as kubectl is: KUBECONFIG (several files merged), a context,
-- tokens, token files, client certificates, exec credential plugins, and the
-- in-cluster service account.
--
-- Module-level calls use the default client (from the kubeconfig, or the
-- service account inside a pod); k8s.client{kubeconfig =, context =} makes
-- others. Failures are `nil, err`: err.code is k8s.<reason> (k8s.not_found,
-- k8s.forbidden, k8s.conflict, k8s.already_exists, k8s.expired,
-- k8s.invalid, k8s.unauthorized, k8s.too_many_requests, k8s.server_error,
-- k8s.config) or an http.* transport code; err.detail is the API's Status.
-- 429 and 5xx are retried with backoff, honouring Retry-After; a 409 is
-- returned at once. Tokens and keys are registered as log secrets.
local http = require "ckfb.http"
local json = require "ckfb.json"
local yaml = require "ckfb.yaml"
local proc = require "ckfb.proc"
local task = require "ckfb.task"
local errors = require "ckfb.error"
local log = require "ckfb.log"
local loop = require "ckfb.core.loop"
local read_file = require("ckfb.file").read

local M = {}

local SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
local PAGE = 500          -- kubectl's chunk size
local RETRIES = 10          -- client-go's maxRetries
local TOKEN_FILE_TTL = 60  -- seconds before a token file is read again
local EXEC_TIMEOUT = 60            -- seconds for an exec plugin that does not prompt
local EXEC_LOGIN_TIMEOUT = 900     -- seconds for one that does (a device-code login)
local MAX_LINE = 16 * 1024 * 1024  -- a watch event or log line; objects are at most ~1.5 MB in etcd

-------------------------------------------------------------------- helpers

local B64 = {}
for i, c in ipairs { string.byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 1, -1) } do
  B64[c] = i - 1
end

--- Decodes standard base64 (padding and whitespace allowed); nil if malformed.
local function base64_decode(text)
  text = text:gsub("%s", ""):gsub("=+$", "")
  local out, bits, nbits = {}, 0, 0
  for i = 1, #text do
    local v = B64[text:byte(i)]
    if not v then return nil end
    bits, nbits = (bits << 6) | v, nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      out[#out + 1] = string.char((bits >> nbits) & 0xFF)
    end
  end
  return table.concat(out)
end
M._base64_decode = base64_decode


local function config_error(fmt, ...)
  return nil, errors.new("k8s.config", string.format(fmt, ...))
end

local function urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function query_string(q)
  local keys = {}
  for k in pairs(q) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = urlencode(k) .. "=" .. urlencode(q[k]) end
  return #parts > 0 and ("?" .. table.concat(parts, "&")) or ""
end

--- "2026-11-25T18:00:00Z" -> seconds since the epoch (UTC), or nil.
local function parse_rfc3339(s)
  local y, mo, d, h, mi, sec = tostring(s):match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)")
  if not y then return nil end
  local t = os.time { year = y, month = mo, day = d, hour = h, min = mi, sec = sec, isdst = false }
  local utc_offset = os.time(os.date("!*t", t)) - t   -- os.time read the fields as local time
  return t - utc_offset
end

-------------------------------------------------------------------- kubeconfig

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

local function resolve_path(path, base)
  if not path or path:sub(1, 1) == "/" then return path end
  return base .. "/" .. path
end

--- v when it is a table, else an empty one: a kubeconfig may hold anything.
local function table_or_empty(v)
  return type(v) == "table" and v or {}
end

local function by_name(list, what, file, into)
  for _, entry in ipairs(table_or_empty(list)) do
    if type(entry) == "table" and type(entry.name) == "string" and type(entry[what]) == "table" then
      if not into[entry.name] then  -- the first file to define a name wins, as kubectl merges
        into[entry.name] = { value = entry[what], dir = dirname(file) }
      end
    end
  end
end

--- Reads and merges kubeconfig files as kubectl does.
local function load_kubeconfig(files)
  local merged = { clusters = {}, users = {}, contexts = {} }
  local found = false
  for _, file in ipairs(files) do
    local text = read_file(file)
    if text then
      found = true
      local doc, err = yaml.decode(text)
      if doc == nil and err then return config_error("kubeconfig %s: %s", file, err.message) end
      if type(doc) ~= "table" then return config_error("kubeconfig %s: not a kubeconfig (expected a mapping)", file) end
      by_name(doc.clusters, "cluster", file, merged.clusters)
      by_name(doc.users, "user", file, merged.users)
      by_name(doc.contexts, "context", file, merged.contexts)
      if not merged.current and type(doc["current-context"]) == "string" and doc["current-context"] ~= "" then
        merged.current = doc["current-context"]
      end
    end
  end
  if not found then return nil end
  return merged
end

--- The kubeconfig files to merge: opts.kubeconfig (a path, a list, or a
-- ":"-separated string as KUBECONFIG is), else $KUBECONFIG, else ~/.kube/config.
local function kubeconfig_files(explicit)
  if type(explicit) == "table" then return explicit end
  local spec = explicit or os.getenv("KUBECONFIG")
  if spec and spec ~= "" then
    local files = {}
    for f in spec:gmatch("[^:]+") do files[#files + 1] = f end
    return files
  end
  return { (os.getenv("HOME") or "") .. "/.kube/config" }
end

--- A string field of a kubeconfig entry; null, empty or another type is absent.
local function text(entry, key)
  local v = entry[key]
  if type(v) == "string" and v ~= "" then return v end
end

local function cluster_settings(cfg, cluster, dir)
  if not text(cluster, "server") then return config_error("cluster has no server") end
  cfg.server = cluster.server:gsub("/+$", "")
  cfg.insecure = cluster["insecure-skip-tls-verify"] == true
  if text(cluster, "certificate-authority-data") then
    cfg.ca_data = base64_decode(cluster["certificate-authority-data"])
    if not cfg.ca_data then return config_error("certificate-authority-data is not valid base64") end
  elseif text(cluster, "certificate-authority") then
    cfg.ca_file = resolve_path(cluster["certificate-authority"], dir)
  end
  cfg.proxy = text(cluster, "proxy-url")
  cfg.tls_server_name = text(cluster, "tls-server-name")
  cfg.cluster_entry = cluster  -- what an exec plugin with provideClusterInfo is told
  return cfg
end

-- An exec plugin's interactiveMode (clientcmd/api/v1 defaults.go: v1beta1 defaults to
-- IfAvailable; v1 must say, validation.go).
local EXEC_MODES = { Never = true, IfAvailable = true, Always = true }
local EXEC_DEFAULT_MODE = { ["client.authentication.k8s.io/v1beta1"] = "IfAvailable",
  ["client.authentication.k8s.io/v1alpha1"] = "IfAvailable" }

local function exec_settings(exec, dir)
  if not text(exec, "command") then return config_error("user exec has no command") end
  if not text(exec, "apiVersion") then return config_error("apiVersion must be specified to use an exec plugin") end
  local mode = text(exec, "interactiveMode") or EXEC_DEFAULT_MODE[exec.apiVersion]
  if not mode then
    return config_error("interactiveMode must be specified for %s to use the exec plugin %s", exec.apiVersion,
      exec.command)
  end
  if not EXEC_MODES[mode] then return config_error("invalid interactiveMode %q", mode) end
  local settings = setmetatable({ mode = mode }, { __index = exec })
  -- a command with a "/" in it is a path, relative to the kubeconfig's folder; a bare
  -- name is looked up in PATH (clientcmd/loader.go GetAuthInfoFileReferences)
  if exec.command:find("/", 1, true) then settings.command = resolve_path(exec.command, dir) end
  return settings
end

local function user_settings(cfg, user, dir)
  if text(user, "token") then
    cfg.token = log.secret(user.token)
  elseif text(user, "tokenFile") then
    cfg.token_file = resolve_path(user.tokenFile, dir)
  end
  for _, kind in ipairs { "certificate", "key" } do
    local data = text(user, "client-" .. kind .. "-data")
    if data then
      local pem = base64_decode(data)
      if not pem then return config_error("client-%s-data is not valid base64", kind) end
      cfg["client_" .. kind .. "_data"] = kind == "key" and log.secret(pem) or pem
    elseif text(user, "client-" .. kind) then
      cfg["client_" .. kind] = resolve_path(user["client-" .. kind], dir)
    end
  end
  if type(user.exec) == "table" then
    local exec, err = exec_settings(user.exec, dir)
    if not exec then return nil, err end
    cfg.exec = exec
  end
  return cfg
end

--- The settings of one context of a merged kubeconfig.
local function from_kubeconfig(merged, context_name)
  local name = context_name or merged.current
  if not name then return config_error("the kubeconfig sets no current-context; name one with context =") end
  local ctx = merged.contexts[name]
  if not ctx then return config_error("context '%s' is not in the kubeconfig", name) end
  local cluster = merged.clusters[text(ctx.value, "cluster") or ""]
  if not cluster then return config_error("context '%s' names cluster '%s', which is not defined", name,
    tostring(ctx.value.cluster)) end
  local user_name = text(ctx.value, "user")
  local user = user_name and merged.users[user_name]
  if user_name and not user then return config_error("context '%s' names user '%s', which is not defined",
    name, user_name) end
  local cfg = { context = name, namespace = text(ctx.value, "namespace") or "default" }
  local ok, err = cluster_settings(cfg, cluster.value, cluster.dir)
  if not ok then return nil, err end
  if user then
    ok, err = user_settings(cfg, user.value, user.dir)
    if not ok then return nil, err end
  end
  return cfg
end

--- The service account of the pod ckfb runs in.
local function in_cluster(opts)
  local dir = opts.service_account_dir or SA_DIR
  local host, port = os.getenv("KUBERNETES_SERVICE_HOST"), os.getenv("KUBERNETES_SERVICE_PORT")
  local server = opts.server or (host and ("https://" .. (host:find(":") and "[" .. host .. "]" or host)
    .. ":" .. (port or "443")))
  if not server then return nil end
  if not read_file(dir .. "/token") then return nil end
  -- POD_NAMESPACE first, as client-go's in-cluster loader does (clientcmd inClusterClientConfig.Namespace)
  local namespace = os.getenv("POD_NAMESPACE")
  if not namespace or namespace == "" then
    namespace = (read_file(dir .. "/namespace") or "default"):gsub("%s+$", "")
  end
  return { context = "in-cluster", server = server, token_file = dir .. "/token", ca_file = dir .. "/ca.crt",
           namespace = namespace }
end

--- load_config{kubeconfig =, context =, in_cluster = bool, ...} -> settings | nil, err
function M.load_config(opts)
  opts = opts or {}
  if opts.in_cluster then
    local cfg = in_cluster(opts)
    if not cfg then return config_error("not in a cluster: no service account token in %s",
      opts.service_account_dir or SA_DIR) end
    return cfg
  end
  local files = kubeconfig_files(opts.kubeconfig)
  local merged, err = load_kubeconfig(files)
  if err then return nil, err end
  if merged then return from_kubeconfig(merged, opts.context) end
  if opts.kubeconfig then  -- a file named and missing is an error, never a fallback (kubectl: "no such file")
    return config_error("the kubeconfig %s does not exist", table.concat(files, ", "))
  end
  local cfg = in_cluster(opts)
  if cfg then return cfg end
  return config_error("no kubeconfig (looked at %s) and not running in a cluster", table.concat(files, ", "))
end

-------------------------------------------------------------------- credentials

local Client = { __name = "ckfb.k8s.client" }
Client.__index = Client

--- What a plugin with provideClusterInfo gets as spec.cluster (client-go
-- clientauthentication Cluster: the cluster's connection settings, the CA as data).
local function cluster_info(cfg)
  local c = cfg.cluster_entry or {}
  local ca = cfg.ca_data or (cfg.ca_file and read_file(cfg.ca_file))
  local ext = type(c.extensions) == "table" and c.extensions or {}
  local config
  for _, e in ipairs(ext) do
    if type(e) == "table" and e.name == "client.authentication.k8s.io/exec" then config = e.extension end
  end
  return { server = cfg.server, ["tls-server-name"] = cfg.tls_server_name,
    ["insecure-skip-tls-verify"] = cfg.insecure or nil, ["proxy-url"] = cfg.proxy, config = config,
    ["certificate-authority-data"] = ca and require("ckfb.core.hash").base64(ca) or nil }
end

--- Runs the exec plugin as client-go does (plugin/pkg/client/auth/exec/exec.go): its
-- stderr reaches the operator; interactive (Always, or IfAvailable on a terminal), it
-- also reads the terminal, so a device-code login can prompt and wait.
local function run_exec_plugin(self)
  local exec = self.cfg.exec
  local on_terminal = require("ckfb.core.sys").isatty(0)
  if exec.mode == "Always" and not on_terminal then
    return nil, errors.new("k8s.credentials", "exec plugin '" .. exec.command .. "' cannot support interactive "
      .. "mode: standard input is not a terminal")
  end
  local interactive = exec.mode == "Always" or (exec.mode == "IfAvailable" and on_terminal)
  local argv = { exec.command }
  for _, a in ipairs(table_or_empty(exec.args)) do argv[#argv + 1] = tostring(a) end
  local spec = { interactive = interactive }
  if exec.provideClusterInfo == true then spec.cluster = cluster_info(self.cfg) end
  local env = { KUBERNETES_EXEC_INFO = json.encode({ apiVersion = exec.apiVersion, kind = "ExecCredential",
    spec = spec }) }
  for _, e in ipairs(table_or_empty(exec.env)) do
    if type(e) == "table" and type(e.name) == "string" then env[e.name] = tostring(e.value) end
  end
  local r, err = proc.run(argv, { env = env, terminal = interactive,
    timeout = interactive and EXEC_LOGIN_TIMEOUT or EXEC_TIMEOUT })
  if not r then
    local hint = exec.installHint and (": " .. exec.installHint:gsub("\n.*", "")) or ""
    return nil, errors.new("k8s.credentials", string.format("exec plugin '%s' failed: %s%s",
      exec.command, err.message, hint))
  end
  if r.stderr ~= "" then io.stderr:write(log.redact(r.stderr)) end  -- its messages are the operator's
  if r.code ~= 0 then
    return nil, errors.new("k8s.credentials", string.format("exec plugin '%s' exited %d: %s",
      exec.command, r.code, (r.stderr:match("[^\n]+") or "")))
  end
  local cred = json.decode(r.stdout)
  if type(cred) ~= "table" or cred.kind ~= "ExecCredential" or type(cred.status) ~= "table" then
    return nil, errors.new("k8s.credentials", "exec plugin '" .. exec.command .. "' printed no ExecCredential")
  end
  return cred.status
end

--- The token and client certificate for the next request, refreshed when due.
function Client:credentials()
  local cfg, now = self.cfg, loop.now()
  local c = { token = cfg.token, cert = cfg.client_certificate, key = cfg.client_key,
              cert_data = cfg.client_certificate_data, key_data = cfg.client_key_data }
  if cfg.token_file then
    if not self.file_token or now - self.file_token_read > TOKEN_FILE_TTL then
      local token, err = read_file(cfg.token_file)
      if not token then return nil, errors.new("k8s.credentials", "cannot read token file: " .. tostring(err)) end
      self.file_token, self.file_token_read = log.secret((token:gsub("%s+$", ""))), now
    end
    c.token = self.file_token
  end
  if cfg.exec then
    local cached = self.exec_cache
    if not cached or (cached.expires and os.time() >= cached.expires) then
      local status, err = run_exec_plugin(self)
      if not status then return nil, err end
      cached = {
        token = status.token and log.secret(status.token),
        cert_data = status.clientCertificateData,
        key_data = status.clientKeyData and log.secret(status.clientKeyData),
        expires = status.expirationTimestamp and parse_rfc3339(status.expirationTimestamp),
      }
      self.exec_cache = cached
    end
    c.token = cached.token or c.token
    c.cert_data, c.key_data = cached.cert_data or c.cert_data, cached.key_data or c.key_data
  end
  return c
end

--- Forgets cached credentials after a 401: the token may have rotated.
function Client:forget_credentials()
  self.file_token, self.exec_cache = nil, nil
end

-------------------------------------------------------------------- requests

local REASON_CODES = {
  NotFound = "k8s.not_found", Forbidden = "k8s.forbidden", Conflict = "k8s.conflict",
  AlreadyExists = "k8s.already_exists", Expired = "k8s.expired", Gone = "k8s.expired",
  Invalid = "k8s.invalid", Unauthorized = "k8s.unauthorized", TooManyRequests = "k8s.too_many_requests",
  BadRequest = "k8s.bad_request", MethodNotAllowed = "k8s.method_not_allowed",
}

local STATUS_CODES = {
  [400] = "k8s.bad_request", [401] = "k8s.unauthorized", [403] = "k8s.forbidden", [404] = "k8s.not_found",
  [405] = "k8s.method_not_allowed", [409] = "k8s.conflict", [410] = "k8s.expired", [422] = "k8s.invalid",
  [429] = "k8s.too_many_requests",
}

--- An error from a metav1.Status (or from a bare HTTP status).
local function api_error(status_code, body, where)
  local st = json.decode(body or "")
  if type(st) ~= "table" or st.kind ~= "Status" then st = nil end
  local reason = st and st.reason
  local code = REASON_CODES[reason] or STATUS_CODES[status_code]
    or (status_code >= 500 and "k8s.server_error" or "k8s.error")
  local message = st and st.message or string.format("HTTP %d", status_code)
  return errors.new(code, string.format("%s: %s", where, message),
    { status = status_code, reason = reason, api_status = st })
end
M._api_error = api_error

-- What client-go retries (rest/with_retry.go IsNextRetry, checkWait; rest/request.go):
-- any verb, when a 429 or a 5xx comes with Retry-After (the server says the request was
-- not done); a GET, also when the connection dropped (IsConnectionReset, IsProbableEOF).
-- A write is never sent again on a transport error: it may have been done.
local RETRY_TRANSPORT_GET = { ["http.dropped"] = true }
local MAX_RETRY_AFTER = 30   -- seconds: a longer Retry-After is capped

local function retry_after(response)
  local status = response.status
  if status ~= 429 and status < 500 then return nil end
  local after = tonumber(response.headers["retry-after"] or "")
  return after and math.min(math.max(after, 0), MAX_RETRY_AFTER)
end

local function transport_backoff(attempt)
  return math.min(0.2 * 2 ^ (attempt - 1), 10)
end

--- The http.request table for a call, with credentials and TLS.
function Client:http_request(method, path, opts, creds)
  local cfg = self.cfg
  local headers = { Accept = "application/json" }
  if creds.token then headers.Authorization = "Bearer " .. creds.token end
  if opts.content_type then headers["Content-Type"] = opts.content_type end
  local server, connect_to = cfg.server, nil
  if cfg.tls_server_name then
    -- the name TLS sends and checks differs from the address (kubeconfig tls-server-name,
    -- client-go TLSClientConfig.ServerName): the URL names it, the connection goes to the server
    local scheme, host, port = server:match("^(https?)://(%[?[^/]-%]?):?(%d*)$")
    port = port ~= "" and port or (scheme == "https" and "443" or "80")
    headers.Host = host .. ":" .. port
    server = scheme .. "://" .. cfg.tls_server_name .. ":" .. port
    connect_to = cfg.tls_server_name .. ":" .. port .. ":" .. host .. ":" .. port
  end
  return {
    method = method, url = server .. path .. query_string(opts.query or {}), headers = headers,
    connect_to = connect_to,
    body = opts.body, timeout = opts.timeout or self.timeout, proxy = cfg.proxy, stream = opts.stream,
    tls = { ca_file = cfg.ca_file, ca_data = cfg.ca_data, insecure = cfg.insecure or nil,
            cert = creds.cert, key = creds.key, cert_data = creds.cert_data, key_data = creds.key_data },
  }
end

--- request(method, path, {query, body, content_type, timeout}) -> decoded body | nil, err
-- Retries as client-go does (RETRY_TRANSPORT_GET, retry_after), and a 401 once with fresh
-- credentials.
function Client:request(method, path, opts)
  opts = opts or {}
  local where = method .. " " .. path
  local refreshed = false
  for attempt = 1, RETRIES do
    local creds, cerr = self:credentials()
    if not creds then return nil, cerr end
    local response, err = http.request(self:http_request(method, path, opts, creds))
    if not response then
      if method ~= "GET" or not RETRY_TRANSPORT_GET[err.code] or attempt == RETRIES then return nil, err end
      log.debug("k8s: %s: %s; again", where, err.message)
      task.sleep(transport_backoff(attempt))
      goto continue
    end
    local status = response.status
    if status >= 200 and status < 300 then
      if opts.raw then return response.body end
      local value = json.decode(response.body)
      if value == nil then return nil, errors.new("k8s.output", where .. ": the answer is not JSON") end
      return value
    end
    if status == 401 and not refreshed and (self.cfg.token_file or self.cfg.exec) then
      refreshed = true
      self:forget_credentials()
    elseif retry_after(response) and attempt < RETRIES then
      local delay = retry_after(response)
      log.debug("k8s: %s answered %d with Retry-After: again in %gs", where, status, delay)
      task.sleep(delay)
    else
      return nil, api_error(status, response.body, where)
    end
    ::continue::
  end
  return nil, errors.new("k8s.error", where .. ": gave up after " .. RETRIES .. " attempts")
end

-------------------------------------------------------------------- discovery

local names_match  -- below: how a discovery entry answers to a name

local function split_resource(name)
  local plural, rest = name:match("^([^.]+)%.?(.*)$")
  if rest == "" then return plural, nil, nil end
  local version, group = rest:match("^(v%d+%w*)%.(.+)$")
  if version then return plural, group, version end
  return plural, rest, nil
end

function Client:group_versions(group)
  self.discovery = self.discovery or {}
  if self.discovery.groups == nil then
    local groups, err = self:request("GET", "/apis")
    if not groups then return nil, err end
    local by, order = {}, {}
    for _, g in ipairs(groups.groups or {}) do
      if type(g) == "table" and type(g.name) == "string" and type(g.versions) == "table" then
        by[g.name] = g
        order[#order + 1] = g
      end
    end
    self.discovery.groups, self.discovery.group_order = by, order
  end
  local g = self.discovery.groups[group]
  if not g then return nil end
  local versions = { g.preferredVersion and g.preferredVersion.version }
  for _, v in ipairs(g.versions or {}) do
    if v.version ~= versions[1] then versions[#versions + 1] = v.version end
  end
  return versions
end

function Client:resource_list(group, version)
  self.discovery = self.discovery or {}
  local key = (group or "") .. "/" .. version
  if self.discovery[key] == nil then
    local path = group and ("/apis/" .. group .. "/" .. version) or ("/api/" .. version)
    local list, err = self:request("GET", path)
    if not list then return nil, err end
    self.discovery[key] = list.resources or {}
  end
  return self.discovery[key]
end

--- Every group's preferred version, the core group first, in the order the server lists
-- them (kubectl's RESTMapper searches them so for a name without a group).
function Client:all_groups()
  local out = { { nil, "v1" } }
  local _, err = self:group_versions("")
  if err then return nil, err end
  for _, g in ipairs(self.discovery.group_order) do
    out[#out + 1] = { g.name, g.preferredVersion and g.preferredVersion.version or (g.versions[1] or {}).version }
  end
  return out
end

--- A discovery entry answers to its plural; without a group, also to its singular and
-- short names (kubectl get sc), and never as a subresource (pods/log).
function names_match(r, name, unqualified)
  if type(r.name) ~= "string" or r.name:find("/", 1, true) then return false end
  if r.name == name then return true end
  if not unqualified then return false end
  if r.singularName == name then return true end
  for _, short in ipairs(type(r.shortNames) == "table" and r.shortNames or {}) do
    if short == name then return true end
  end
  return false
end

--- The first discovery entry among candidates ({group, version}...) answering to name:
-- {group, version, plural, namespaced, kind} | false (none) | nil, err
function Client:find_in(candidates, name, unqualified)
  for _, c in ipairs(candidates) do
    local resources, err = self:resource_list(c[1], c[2])
    if not resources then
      if not errors.is(err, "k8s.not_found") then return nil, err end
    else
      for _, r in ipairs(resources) do
        if names_match(r, name, unqualified) then
          return { group = c[1], version = c[2], plural = r.name, namespaced = r.namespaced, kind = r.kind }
        end
      end
    end
  end
  return false
end

--- resolve("pods" | "storageclasses" | "sc" | "workflows.argoproj.io" | "experiments.v1beta1.kubeflow.org")
-- -> {group, version, plural, namespaced, kind} | nil, err (cached per client)
function Client:resolve(name)
  self.resolved = self.resolved or {}
  if self.resolved[name] then return self.resolved[name] end
  local plural, group, version = split_resource(name)
  local info, err
  if group then
    local versions = { version }
    if not version then versions, err = self:group_versions(group) end
    if err then return nil, err end
    local candidates = {}
    for _, v in ipairs(versions or {}) do candidates[#candidates + 1] = { group, v } end
    info, err = self:find_in(candidates, plural, false)
  else
    info, err = self:find_in({ { nil, "v1" } }, plural, true)  -- the core group first
    if info == false then
      local all
      all, err = self:all_groups()
      if not all then return nil, err end
      info, err = self:find_in(all, plural, true)
    end
  end
  if info == nil then return nil, err end
  if info then
    self.resolved[name] = info
    return info
  end
  return nil, errors.new("k8s.unknown_resource", string.format(
    "the server does not know the resource '%s' (name it as plural.group, e.g. workflows.argoproj.io)", name))
end

--- The URL path of a resource (collection, or one object when name is given).
local function resource_path(info, namespace, name, subresource)
  local base = info.group and ("/apis/" .. info.group .. "/" .. info.version) or ("/api/" .. info.version)
  if info.namespaced and namespace then base = base .. "/namespaces/" .. urlencode(namespace) end
  base = base .. "/" .. info.plural
  if name then base = base .. "/" .. urlencode(name) end
  if subresource then base = base .. "/" .. subresource end
  return base
end

local function namespace_for(self, info, opts)
  if not info.namespaced or opts.all_namespaces then return nil end
  return opts.namespace or self.cfg.namespace
end

-------------------------------------------------------------------- API

function Client:get(resource, name, opts)
  opts = opts or {}
  local info, err = self:resolve(resource)
  if not info then return nil, err end
  return self:request("GET", resource_path(info, namespace_for(self, info, opts), name))
end

local function list_query(opts, continue)
  local limit = opts.limit or PAGE
  return { limit = limit > 0 and limit or nil, labelSelector = opts.label_selector, fieldSelector = opts.field_selector,
           continue = continue, resourceVersion = not continue and opts.resource_version or nil }
end

--- pages(resource, opts) -> iterator over pages: `for items, err in client:pages("pods") do`.
-- Memory stays at one page; a failure yields false, err and ends the loop.
function Client:pages(resource, opts)
  opts = opts or {}
  local continue, done = nil, false
  return function()
    if done then return nil end
    local info, err = self:resolve(resource)
    if not info then done = true; return false, err end
    local page, perr = self:request("GET", resource_path(info, namespace_for(self, info, opts)),
      { query = list_query(opts, continue) })
    if not page then done = true; return false, perr end
    local meta = page.metadata or {}
    continue = meta.continue ~= "" and meta.continue or nil
    done = continue == nil
    return page.items or {}, meta.resourceVersion
  end
end

--- list(resource, {namespace, all_namespaces, label_selector, field_selector, limit})
-- -> items (every page), resourceVersion | nil, err
-- When the continue token of a later page has expired (410), the list is asked again
-- whole, in one request, as client-go's pager does (tools/pager FullListIfExpired).
function Client:list(resource, opts)
  opts = opts or {}
  local items, rv, pages = {}, nil, 0
  for page, err_or_rv in self:pages(resource, opts) do
    if not page then
      if pages == 0 or not errors.is(err_or_rv, "k8s.expired") then return nil, err_or_rv end
      log.debug("k8s: the list of %s expired between pages: listing it whole", resource)
      local whole = setmetatable({ limit = 0 }, { __index = opts })
      return self:list(resource, whole)
    end
    pages = pages + 1
    table.move(page, 1, #page, #items + 1, items)
    rv = err_or_rv
  end
  return items, rv
end

local function body_namespace(obj, opts)
  return opts.namespace or (type(obj.metadata) == "table" and obj.metadata.namespace) or nil
end

function Client:create(resource, obj, opts)
  opts = opts or {}
  local info, err = self:resolve(resource)
  if not info then return nil, err end
  local ns = info.namespaced and (body_namespace(obj, opts) or self.cfg.namespace) or nil
  return self:request("POST", resource_path(info, ns), { body = json.encode(obj), content_type = "application/json" })
end

function Client:replace(resource, obj, opts)
  opts = opts or {}
  local info, err = self:resolve(resource)
  if not info then return nil, err end
  local ns = info.namespaced and (body_namespace(obj, opts) or self.cfg.namespace) or nil
  local name = type(obj.metadata) == "table" and obj.metadata.name
  if type(name) ~= "string" then error("k8s.replace: the object has no metadata.name", 2) end
  return self:request("PUT", resource_path(info, ns, name),
    { body = json.encode(obj), content_type = "application/json" })
end

local PATCH_TYPES = {
  merge = "application/merge-patch+json", strategic = "application/strategic-merge-patch+json",
  json = "application/json-patch+json", apply = "application/apply-patch+yaml",
}

--- patch(resource, name, patch, {namespace, type = "merge"|"strategic"|"json"|"apply",
--  field_manager, force}) -> object | nil, err
function Client:patch(resource, name, patch, opts)
  opts = opts or {}
  local content_type = PATCH_TYPES[opts.type or "merge"]
  if not content_type then error("k8s.patch: unknown patch type '" .. tostring(opts.type) .. "'", 2) end
  local info, err = self:resolve(resource)
  if not info then return nil, err end
  local query = {}
  if opts.type == "apply" then
    query.fieldManager = opts.field_manager or "ckfb"
    if opts.force then query.force = "true" end
  elseif opts.field_manager then
    query.fieldManager = opts.field_manager
  end
  return self:request("PATCH", resource_path(info, namespace_for(self, info, opts), name),
    { body = json.encode(patch), content_type = content_type, query = query })
end

function Client:delete(resource, name, opts)
  opts = opts or {}
  local info, err = self:resolve(resource)
  if not info then return nil, err end
  local body = opts.propagation and json.encode({ kind = "DeleteOptions", apiVersion = "v1",
    propagationPolicy = opts.propagation }) or nil
  return self:request("DELETE", resource_path(info, namespace_for(self, info, opts), name),
    { body = body, content_type = body and "application/json" or nil })
end

-------------------------------------------------------------------- streams (watch, logs)

--- Opens a streaming GET; returns the stream, or nil, err from a non-2xx answer.
function Client:open_stream(path, query, timeout)
  local creds, err = self:credentials()
  if not creds then return nil, err end
  local req = self:http_request("GET", path, { query = query, stream = true, timeout = timeout }, creds)
  local s, serr = http.stream(req)
  if not s then return nil, serr end
  return s
end

--- Reads lines from a stream, calling on_line for each complete one.
-- Returns "stopped" when on_line returned false, "ended", "deadline" when
-- the time given has passed, or nil, err. A line (or an error body) longer
-- than max_line is k8s.line_too_long: a stream with no newline must not
-- take the memory. Pieces are joined once per line, so a long line costs
-- its length, not its length squared.
local function each_line(s, where, on_line, max_line, deadline)
  local pieces, held = {}, 0
  local function take(upto)
    local line = table.concat(pieces) .. upto
    pieces, held = {}, 0
    return line
  end
  while true do
    local data, err = s:read()
    if deadline and loop.now() >= deadline then s:close(); return "deadline" end
    if s.status ~= 0 and (s.status < 200 or s.status >= 300) then
      while data and held <= max_line do pieces[#pieces + 1] = data; held = held + #data; data = s:read() end
      s:close()
      return nil, api_error(s.status, take(""):sub(1, max_line), where)
    end
    if not data then
      if err then return nil, err end
      if held > 0 and on_line(take("")) == false then return "stopped" end
      return "ended"
    end
    local start = 1
    while true do
      local nl = data:find("\n", start, true)
      if not nl then break end
      if on_line(take(data:sub(start, nl - 1))) == false then s:close(); return "stopped" end
      start = nl + 1
    end
    if start <= #data then
      pieces[#pieces + 1] = data:sub(start)
      held = held + #data - start + 1
      if held > max_line then
        s:close()
        return nil, errors.new("k8s.line_too_long", string.format(
          "%s: a line passed the %d-byte limit (max_line)", where, max_line), { limit = max_line })
      end
    end
  end
end

-- A watch stream that drops (a load balancer's idle timeout, an API server restarting
-- during an upgrade) resumes; so does one that could not be opened for the same reasons.
local WATCH_RESUMES = { ["http.dropped"] = true, ["http.timeout"] = true, ["http.connect"] = true,
  ["k8s.server_error"] = true, ["k8s.too_many_requests"] = true }
local WATCH_MAX_FAILURES = 10      -- in a row, with no event between
local WATCH_RESTART_DELAY = 0.2    -- seconds, growing with each failure in a row

--- watch(resource, {namespace, all_namespaces, label_selector, field_selector,
--  resource_version, timeout}, handler) -> true | nil, err
-- handler(type, object) is called for each event as it arrives (ADDED,
-- MODIFIED, DELETED; bookmarks only move the resourceVersion on); returning
-- false stops the watch. With a timeout the watch ends (true) when it has
-- passed, however the server keeps the stream open. The watch
-- resumes from the last resourceVersion when the server ends a stream or it
-- drops (WATCH_RESUMES), and after 410 Expired it lists again and hands every
-- item over as ADDED.
function Client:watch(resource, opts, handler)
  opts = opts or {}
  if type(handler) ~= "function" then error("k8s.watch: handler must be a function", 2) end
  local info, err = self:resolve(resource)
  if not info then return nil, err end
  local path = resource_path(info, namespace_for(self, info, opts))
  local deadline = opts.timeout and (loop.now() + opts.timeout)
  local rv = opts.resource_version
  if not rv then
    local _, list_rv = self:list(resource, { namespace = opts.namespace, all_namespaces = opts.all_namespaces,
      label_selector = opts.label_selector, field_selector = opts.field_selector, limit = 1 })
    rv = list_rv
  end
  local failures = 0   -- transport failures in a row, with no event between them
  while true do
    local remaining = deadline and math.max(1, math.ceil(deadline - loop.now())) or 300
    local s, serr = self:open_stream(path, {
      watch = "true", resourceVersion = rv, allowWatchBookmarks = "true", timeoutSeconds = remaining,
      labelSelector = opts.label_selector, fieldSelector = opts.field_selector }, remaining + 5)
    local expired, event_err, outcome, lerr = false, nil, nil, serr
    if s then outcome, lerr = each_line(s, "WATCH " .. path, function(line)
      if line == "" then return true end
      failures = 0
      local event = json.decode(line)
      if type(event) ~= "table" or type(event.object) ~= "table" then return true end
      if event.type == "ERROR" then
        if event.object.code == 410 then expired = true; return false end
        event_err = api_error(event.object.code or 500, json.encode(event.object), "WATCH " .. path)
        return false
      end
      local meta = event.object.metadata
      if type(meta) == "table" and meta.resourceVersion then rv = meta.resourceVersion end
      if event.type == "BOOKMARK" then return true end  -- only moves the resourceVersion on
      return handler(event.type, event.object) ~= false
    end, self.max_line, deadline) end
    if outcome == "deadline" then return true end
    if not outcome and WATCH_RESUMES[lerr.code] and failures < WATCH_MAX_FAILURES then
      -- client-go tools/watch/retrywatcher.go: a dropped stream resumes from the last resourceVersion
      failures = failures + 1
      log.debug("k8s: %s: %s; resuming from resourceVersion %s", path, lerr.message, tostring(rv))
      task.sleep(math.min(WATCH_RESTART_DELAY * failures, 5))
      outcome = "ended"
    end
    if not outcome then return nil, lerr end
    if event_err then return nil, event_err end
    if outcome == "stopped" and not expired then return true end
    if expired then
      local items, list_rv = self:list(resource, opts)
      if not items then return nil, list_rv end
      for _, item in ipairs(items) do
        if handler("ADDED", item) == false then return true end
      end
      rv = list_rv
    end
    if deadline and loop.now() >= deadline then return true end
  end
end

--- logs(pod, {namespace, container, tail_lines, since_seconds, follow, timeout}[, on_line])
-- -> the text | (with on_line, each line as it comes) true | nil, err
function Client:logs(pod, opts, on_line)
  opts = opts or {}
  local info, err = self:resolve("pods")
  if not info then return nil, err end
  local path = resource_path(info, namespace_for(self, info, opts), pod, "log")
  local query = { container = opts.container, tailLines = opts.tail_lines, sinceSeconds = opts.since_seconds,
                  follow = opts.follow and "true" or nil }
  if not on_line then
    return self:request("GET", path, { query = query, raw = true, timeout = opts.timeout })
  end
  local s, serr = self:open_stream(path, query, opts.timeout)
  if not s then return nil, serr end
  local outcome, lerr = each_line(s, "GET " .. path, on_line, self.max_line,
    opts.timeout and loop.now() + opts.timeout)
  if not outcome then return nil, lerr end
  return true
end

-------------------------------------------------------------------- clients

--- client{kubeconfig =, context =, in_cluster =, service_account_dir =, server =, timeout =,
--         max_line =} -> a client | nil, err. Settings load now; nothing is sent until a call.
function M.client(opts)
  opts = opts or {}
  local cfg, err = M.load_config(opts)
  if not cfg then return nil, err end
  return setmetatable({ cfg = cfg, timeout = opts.timeout or 60, max_line = opts.max_line or MAX_LINE }, Client)
end

require("ckfb.client").install(M, { "get", "list", "pages", "create", "replace", "patch", "delete", "watch",
  "logs", "resolve", "request" }, { pages = true })

return M
