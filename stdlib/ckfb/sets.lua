--- ckfb.sets: what the CKF scripts share: the configuration (the guide's
-- names as defaults), where backup-set manifests live (a local state
-- directory, and S3 when configured), and finding them again.
local json = require "ckfb.json"
local config = require "ckfb.config"
local errors = require "ckfb.error"
local sys = require "ckfb.core.sys"
local file = require "ckfb.file"
local log = require "ckfb.log"

local M = {}

-- The guide's names; every one can be changed in the configuration file.
M.DEFAULTS = {
  models = { kubeflow = "kubeflow", velero = "velero" },
  velero = { app = "velero-operator", offer = "velero-backups", endpoint = "velero-backups", wait = 900 },
  targets = { "minio:velero-backup-config", "mlmd:velero-backup-config",
    "kubeflow-profiles:profiles-backup-config", "kubeflow-profiles:user-workloads-backup-config" },
  databases = { "kfp-db", "katib-db" },
  volumes = { minio = "minio-data", mlmd = "mlmd-data" },  -- apps whose storage a restore re-imports
  database = { min_units = 2, wait = 900, retries = 3 },
  kubernetes = { kubeconfig = "", context = "", required = true },
  s3 = json.null,   -- optional: endpoint, region, bucket, prefix, access_key, secret_key, profile
  hooks = json.array(),  -- site hook files
  state_dir = "",   -- manifests and the lock; default $XDG_STATE_HOME/ckfb (~/.local/state/ckfb)
  signing_key_file = "",  -- a file holding a key: manifests are signed, unsigned ones untrusted
  metrics = { textfile = "", pushgateway = "" },  -- a node_exporter textfile (.prom), a Pushgateway's URL
  deployments = json.array(),  -- several CKFs: {models = {kubeflow, velero}, s3 = {...}} each, backed up at once
  poll = 2,         -- seconds between status polls
}

--- The configuration files searched, in order, when no --config is given. Never the
-- current directory: a checkout or a download there must not configure a run.
function M.config_search()
  local out = {}
  local explicit = os.getenv("CKFB_CONFIG")
  if explicit and explicit ~= "" then return nil, explicit end
  local xdg = os.getenv("XDG_CONFIG_HOME")
  local home = os.getenv("HOME")
  if xdg and xdg ~= "" then out[#out + 1] = xdg .. "/ckfb/ckfb.yaml"
  elseif home and home ~= "" then out[#out + 1] = home .. "/.config/ckfb/ckfb.yaml" end
  out[#out + 1] = "/etc/ckfb/ckfb.yaml"
  return out
end

--- The configuration of one deployment of cfg.deployments: the shared settings with its
-- models (and its S3, when it names one).
function M.deployment(cfg, d)
  local one = json.copy(cfg)
  one.deployments = json.array()
  one.models = { kubeflow = d.models.kubeflow, velero = d.models.velero }
  if d.s3 ~= nil then one.s3 = d.s3 end
  return one
end

--- Each deployment names its two models (a list of mappings is not checked by the schema).
local function check_deployments(cfg)
  for i, d in ipairs(cfg.deployments) do
    local m = type(d) == "table" and d.models
    if type(m) ~= "table" or type(m.kubeflow) ~= "string" or type(m.velero) ~= "string" then
      return nil, errors.new("config", string.format("deployments[%d] must give models: {kubeflow: ..., velero: ...}",
        i))
    end
  end
  return cfg
end

--- load(path [, defaults [, {model}]]) -> config, the file read (or nil) | nil, err:
-- --config FILE, else $CKFB_CONFIG, else
-- $XDG_CONFIG_HOME/ckfb/ckfb.yaml (~/.config), else /etc/ckfb/ckfb.yaml, checked against
-- defaults (M.DEFAULTS unless a script has its own).
function M.load(path, defaults, overrides)
  local search, explicit = M.config_search()
  local cfg, file_or_err = config.load(defaults or M.DEFAULTS, { file = path or explicit, search = search })
  if not cfg then return nil, file_or_err end
  if overrides and overrides.model then cfg.models.kubeflow = overrides.model end  -- -m, as juju spells it
  local checked, err = check_deployments(cfg)
  if not checked then return nil, err end
  return checked, file_or_err
end

-- The options every command shares (as ckfb.options declares options).
M.CONFIG_OPTION = { "--config", "FILE", "configuration (default $CKFB_CONFIG, ~/.config/ckfb/ckfb.yaml, "
  .. "/etc/ckfb/ckfb.yaml)" }
M.MODEL_OPTION = { "-m", "MODEL", "the Kubeflow model ([controller:]model, as juju's -m), over the configuration's" }

--- state_dir(cfg) -> the state directory | nil, err. It is made (0700) if missing and must
-- belong to this user and be writable by nobody else; there is no fallback under /tmp.
function M.state_dir(cfg)
  local dir = cfg.state_dir
  if dir == "" then
    local xdg, home = os.getenv("XDG_STATE_HOME"), os.getenv("HOME")
    local base = (xdg and xdg ~= "" and xdg) or (home and home ~= "" and home .. "/.local/state")
    if not base then
      return nil, errors.new("state.none", "no state directory: set HOME or XDG_STATE_HOME, or state_dir")
    end
    dir = base .. "/ckfb"
  end
  local ok, err = file.private_dir(dir)
  if not ok then return nil, errors.new("state.untrusted", "the state directory: " .. err.message) end
  ok, err = file.private_dir(dir .. "/sets")
  if not ok then return nil, errors.new("state.untrusted", "the state directory: " .. err.message) end
  return dir
end

--- A set id unique even for runs in the same second: ckf-<UTC time>-<12 random hex digits>
-- (48 bits: two thousand ids in one second collide once in 10^8 runs).
function M.new_id()
  local f = io.open("/dev/urandom", "rb")
  if not f then error("sets.new_id: /dev/urandom cannot be read: no unique set id can be made", 2) end
  local bytes = f:read(6)
  f:close()
  return "ckf-" .. os.date("!%Y%m%dT%H%M%SZ") .. "-" .. bytes:gsub(".", function(c)
    return string.format("%02x", c:byte())
  end)
end

--- The configuration's S3 client, where sets are stored too (nil when none is configured).
function M.s3(cfg)
  return require("ckfb.ckf").s3_client(cfg)
end

function M.s3_key(cfg, id)
  return (cfg.s3.prefix or "ckfb/"):gsub("^/+", "") .. "sets/" .. id .. ".json"
end

-------------------------------------------------------------------- the manifest schema

-- A manifest comes from a file or a bucket others may write: every field a
-- command could act on is checked before it is used.
local ID = "^ckf%-%d%d%d%d%d%d%d%dT%d%d%d%d%d%dZ%-%x%x%x%x%x%x%x?%x?%x?%x?%x?%x?$"
local LEGACY_ID = "^ckf%-%d%d%d%d%d%d%d%dT%d%d%d%d%d%dZ$"
local SET_STATUS = { complete = true, partial = true, failed = true, interrupted = true }
local PART_STATUS = { created = true, failed = true, running = true, interrupted = true }

local function is_name(v)  -- a Kubernetes object name (RFC 1123 subdomain)
  return type(v) == "string" and #v <= 253 and v:match("^[a-z0-9][a-z0-9%.%-]*$") ~= nil
    and v:match("[a-z0-9]$") ~= nil
end

local function is_app(v)  -- a juju application name
  return type(v) == "string" and #v <= 63 and v:match("^[a-z][a-z0-9%-]*$") ~= nil
end

local function is_backup_id(v)  -- mysql-k8s: %Y-%m-%dT%H:%M:%SZ
  return type(v) == "string" and v:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$") ~= nil
end

local function optional(v, check) return v == nil or check(v) end

local function check_velero(v)
  if type(v) ~= "table" then return "a velero entry is not a mapping" end
  local app, endpoint = tostring(v.target):match("^([^:]+):([^:]+)$")
  if not (is_app(app) and is_app(endpoint)) then
    return "velero target " .. tostring(v.target) .. " is not app:endpoint"
  end
  if not PART_STATUS[v.status] then return "velero " .. v.target .. ": unknown status" end
  if not optional(v.backup_name, is_name) then return "velero " .. v.target .. ": a backup name Velero never makes" end
  if not optional(v.backup_uid, function(u) return type(u) == "string" and u:match("^[%w%-]+$") end) then
    return "velero " .. v.target .. ": a malformed UID"
  end
  if v.status == "created" and v.backup_name == nil then return "velero " .. v.target .. ": created, with no name" end
end

local function check_database(d)
  if type(d) ~= "table" then return "a database entry is not a mapping" end
  if not is_app(d.app) then return "database " .. tostring(d.app) .. " is not an application name" end
  if not PART_STATUS[d.status] then return "database " .. d.app .. ": unknown status" end
  if not optional(d.backup_id, is_backup_id) then
    return "database " .. d.app .. ": a backup id mysql-k8s never makes"
  end
  if d.status == "created" and d.backup_id == nil then return "database " .. d.app .. ": created, with no backup id" end
end

--- validate(m) -> true | nil, why: the manifest's schema, and a time that is not in the future.
function M.validate(m, now)
  if type(m) ~= "table" or m.kind ~= "ckfb.backup-set" then return nil, "not a ckfb backup-set manifest" end
  if type(m.id) ~= "string" or not (m.id:match(ID) or m.id:match(LEGACY_ID)) then
    return nil, "a malformed set id"
  end
  if not SET_STATUS[m.status] then return nil, "unknown status " .. tostring(m.status) end
  local stamp = require("ckfb.ckf").epoch(m.id:match("%d+T%d+Z"))
  if not stamp or stamp > (now or os.time()) + 300 then return nil, "dated in the future" end
  for _, key in ipairs { "velero", "databases" } do
    if m[key] ~= nil and (type(m[key]) ~= "table" or (next(m[key]) ~= nil and #m[key] == 0)) then
      return nil, key .. " is not a list"
    end
  end
  for _, v in ipairs(m.velero or {}) do
    local why = check_velero(v)
    if why then return nil, why end
  end
  for _, d in ipairs(m.databases or {}) do
    local why = check_database(d)
    if why then return nil, why end
  end
  return true
end

--- build(run) -> a manifest: the set's schema (the fields validate checks), from a run's
-- {id, status, started, models, velero, databases, skipped, scaled, changes}.
function M.build(run)
  return {
    kind = "ckfb.backup-set", version = 1, id = run.id, status = run.status, ckfb = sys.version,
    started = run.started, finished = os.date("!%Y-%m-%dT%H:%M:%SZ"), models = run.models,
    velero = json.array(run.velero), databases = json.array(run.databases), skipped = json.array(run.skipped),
    scaled = run.scaled, changes = json.array(run.changes),
  }
end

-------------------------------------------------------------------- signing

--- The signing key of the configuration, or nil (none configured) | false, err.
local function signing_key(cfg)
  if cfg.signing_key_file == "" then return nil end
  local key, err = file.read(cfg.signing_key_file)
  if not key or #key < 16 then
    return false, errors.new("sets.key", "cannot use the signing key " .. cfg.signing_key_file .. ": "
      .. tostring(err or "shorter than 16 bytes"))
  end
  return require("ckfb.log").secret(key)
end

--- The manifest's HMAC-SHA256 over its canonical JSON, without the signature: sorted keys,
-- and the values as they read back from JSON (so the manifest written and the manifest
-- read give the same text).
local function signature(key, m)
  local copy = {}
  for k, v in pairs(m) do if k ~= "signature" then copy[k] = v end end
  local canonical = json.encode(json.decode(json.encode(copy)))
  return require("ckfb.core.hash").hmac_sha256(key, canonical, true)
end

--- The backups a set names, as keys "velero:<name>" and "<app>:<backup id>" -> true.
function M.parts(m)
  local out = {}
  for _, v in ipairs(m.velero or {}) do if v.backup_name then out["velero:" .. v.backup_name] = true end end
  for _, d in ipairs(m.databases or {}) do if d.backup_id then out[d.app .. ":" .. d.backup_id] = true end end
  return out
end

--- save(cfg, dir, manifest [, store]) -> the local path, the S3 url | nil, err: atomically,
-- locally, then in S3 when configured.
function M.save(cfg, dir, m, store)
  local key, kerr = signing_key(cfg)
  if key == false then return nil, kerr end
  if key then m.signature = signature(key, m) end
  local text = json.encode(m, { pretty = true }) .. "\n"
  local path = dir .. "/sets/" .. m.id .. ".json"
  local ok, err = file.write_atomic(path, text)
  if not ok then return nil, err end
  if not store then return path end
  local object = M.s3_key(cfg, m.id)
  local put, perr = store:put(cfg.s3.bucket, object, { body = text }, { content_type = "application/json" })
  if not put then return nil, perr end
  return path, "s3://" .. cfg.s3.bucket .. "/" .. object
end

-------------------------------------------------------------------- finding sets

local function read(path)
  return json.decode(file.read(path) or "")
end

--- Every recorded set, local and in S3, newest first: {manifest, where = {"local", "s3"},
-- trusted = bool, problem = why not}. A manifest that fails the schema, or lacks a valid
-- signature when a signing key is configured, is listed as untrusted: restore and prune
-- never act on it. Where the S3 copy of a set differs from the
-- local one, the local one is used. With {s3_optional = true} (list, describe, finding a
-- set to restore) an unreachable S3 only warns; prune must see every set, so it fails.
function M.list(cfg, store, opts)
  local dir, derr = M.state_dir(cfg)
  if not dir then return nil, derr end
  local key, kerr = signing_key(cfg)
  if key == false then return nil, kerr end
  local by_id, order = {}, {}
  local function add(m, where, name, unreadable)
    local ok, why = nil, unreadable
    if not unreadable then ok, why = M.validate(m) end
    if ok and key and m.signature ~= signature(key, m) then
      ok, why = nil, m.signature and "its signature does not match: altered, or signed with another key"
        or "it is not signed"
    end
    local claimed = type(m) == "table" and type(m.id) == "string" and (m.id:match(ID) or m.id:match(LEGACY_ID))
    local id = (ok or claimed) and m.id or (where .. ":" .. name)
    local entry = by_id[id]
    if not entry then
      entry = { manifest = ok and m or { id = id, status = "untrusted" }, where = {}, trusted = ok == true,
        problem = why, text = json.encode(m) }
      by_id[id] = entry
      order[#order + 1] = entry
    elseif entry.text ~= json.encode(m) then  -- the local copy, in a directory only we can write, wins
      entry.conflict = where .. " copy differs from the local one (ignored)"
      log.warn("backup set %s: its %s", entry.manifest.id, entry.conflict)
    end
    entry.where[#entry.where + 1] = where
  end
  for _, name in ipairs(sys.listdir(dir .. "/sets") or {}) do
    local id = name:match("^(.+)%.json$")
    if id then
      local m = read(dir .. "/sets/" .. name)
      if type(m) == "table" and m.id ~= id then m = { kind = "mismatch" } end  -- a file named for another set
      add(m, "local", name)
    end
  end
  if store then
    local prefix = M.s3_key(cfg, ""):gsub("%.json$", "")
    local listed, err = store:list(cfg.s3.bucket, { prefix = prefix })
    if not listed and not (opts and opts.s3_optional) then return nil, err end
    if not listed then  -- what is recorded here is still worth showing
      log.warn("S3 is unreachable (%s): the local manifests only", err.message)
      listed = { objects = {} }
    end
    for _, o in ipairs(listed.objects) do
      local name = o.key:sub(#prefix + 1)
      local id = name:match("^([^/]+)%.json$")
      if id then
        local body, gerr = false, nil
        if (o.size or 0) <= M.MAX_MANIFEST then  -- and read no more than that: the listed size may lie
          body, gerr = store:get(cfg.s3.bucket, o.key, { max_size = M.MAX_MANIFEST })
        end
        local m = body and json.decode(body)
        if type(m) == "table" and m.id ~= id then m = { kind = "mismatch" } end
        local unreadable = not body and (gerr and gerr.code ~= "http.too_large" and "cannot be read: " .. gerr.message
          or "larger than the 1 MiB manifest limit (sets.manifest_too_large)")
        add(m, "s3", name, unreadable)
      end
    end
  end
  table.sort(order, function(a, b) return a.manifest.id > b.manifest.id end)
  for _, e in ipairs(order) do e.text = nil end
  return order
end

-- A manifest is a few kilobytes: a bigger object under the prefix is not read
-- (nor more than this of one whose listing claims it is small).
M.MAX_MANIFEST = 1024 * 1024

--- find(cfg, store, id | nil for the latest trusted) -> entry | nil, err
function M.find(cfg, store, id)
  local all, err = M.list(cfg, store, { s3_optional = true })
  if not all then return nil, err end
  for _, entry in ipairs(all) do
    if id == nil and entry.trusted then return entry end
    if id ~= nil and entry.manifest.id == id then
      if not entry.trusted then
        return nil, errors.new("sets.untrusted", "backup set '" .. id .. "' is untrusted: " .. entry.problem)
      end
      return entry
    end
  end
  return nil, errors.new("sets.not_found", id and ("no backup set '" .. id .. "' (see ckfb list)")
    or "no backup set recorded yet")
end

--- Removes a trusted set's manifest, locally and in S3 (its id is validated: never a path).
function M.forget(cfg, store, m)
  assert(M.validate(m))
  local dir, err = M.state_dir(cfg)
  if not dir then return nil, err end
  os.remove(dir .. "/sets/" .. m.id .. ".json")
  if store then return store:delete(cfg.s3.bucket, M.s3_key(cfg, m.id)) end
  return true
end

return M
