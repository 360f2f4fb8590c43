--- ckfb.sets: what the CKF scripts share: the configuration (the guide's
-- names as defaults), where backup-set manifests live (a local state
-- directory, and S3 when configured), and finding them again.
local json = require "ckfb.json"
local config = require "ckfb.config"
local errors = require "ckfb.error"
local sys = require "ckfb.core.sys"
local file = require "ckfb.file"

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
  hooks = {},       -- site hook files
  state_dir = "",   -- manifests and the lock; default ~/.local/state/ckfb
  poll = 2,         -- seconds between status polls
}

--- load(path [, defaults]) -> config | nil, err: --config FILE, else ./ckfb.yaml, else
-- /etc/ckfb/ckfb.yaml, checked against defaults (M.DEFAULTS unless a script has its own).
function M.load(path, defaults)
  return config.load(defaults or M.DEFAULTS, { file = path, search = { "./ckfb.yaml", "/etc/ckfb/ckfb.yaml" } })
end

function M.state_dir(cfg)
  if cfg.state_dir ~= "" then return cfg.state_dir end
  return (os.getenv("XDG_STATE_HOME") or ((os.getenv("HOME") or "/tmp") .. "/.local/state")) .. "/ckfb"
end

--- The S3 client of the configuration, or nil when it has no s3 section.
function M.s3(cfg)
  if cfg.s3 == json.null then return nil end
  return require("ckfb.s3").client(cfg.s3)
end

function M.s3_key(cfg, id)
  return (cfg.s3.prefix or "ckfb/"):gsub("^/+", "") .. "sets/" .. id .. ".json"
end

local function read(path)
  return json.decode(file.read(path) or "")
end

--- Every recorded set, local and in S3, newest first: {manifest, where = {"local", "s3"}}.
function M.list(cfg, store)
  local by_id, order = {}, {}
  local function add(m, where)
    if type(m) ~= "table" or m.kind ~= "ckfb.backup-set" or type(m.id) ~= "string" then return end
    local entry = by_id[m.id]
    if not entry then
      entry = { manifest = m, where = {} }
      by_id[m.id] = entry
      order[#order + 1] = entry
    end
    entry.where[#entry.where + 1] = where
  end
  local dir = M.state_dir(cfg) .. "/sets"
  for _, name in ipairs(sys.listdir(dir) or {}) do
    if name:match("%.json$") then add(read(dir .. "/" .. name), "local") end
  end
  if store then
    local listed, err = store:list { bucket = cfg.s3.bucket, prefix = M.s3_key(cfg, ""):gsub("%.json$", "") }
    if not listed then return nil, err end
    for _, o in ipairs(listed.objects) do
      local id = o.key:match("([^/]+)%.json$")
      if not by_id[id] then add(json.decode(store:get(cfg.s3.bucket, o.key) or ""), "s3")
      else by_id[id].where[#by_id[id].where + 1] = "s3" end
    end
  end
  table.sort(order, function(a, b) return a.manifest.id > b.manifest.id end)
  return order
end

--- find(cfg, store, id | nil for the latest) -> entry | nil, err
function M.find(cfg, store, id)
  local all, err = M.list(cfg, store)
  if not all then return nil, err end
  for _, entry in ipairs(all) do
    if id == nil or entry.manifest.id == id then return entry end
  end
  return nil, errors.new("sets.not_found", id and ("no backup set '" .. id .. "' (see ckfb list)")
    or "no backup set recorded yet")
end

--- Removes a set's manifest, locally and in S3.
function M.forget(cfg, store, id)
  os.remove(M.state_dir(cfg) .. "/sets/" .. id .. ".json")
  if store then return store:delete(cfg.s3.bucket, M.s3_key(cfg, id)) end
  return true
end

return M
