--- ckfb.ckf.velero: Charmed Velero (canonical/velero-operator) as its sources
-- define it: the backups it lists, where they are written, its create-backup,
-- restore and run-cli actions, and the commands that do the same by hand.
local juju = require "ckfb.juju"
local task = require "ckfb.task"
local loop = require "ckfb.core.loop"
local errors = require "ckfb.error"

local M = {}

-- Velero's default backup TTL (vmware-tanzu/velero pkg/cmd/server/config/config.go
-- defaultBackupTTL); neither velero-operator nor the CKF charms set another.
M.DEFAULT_TTL = 30 * 86400

-- How long a list-backups or run-cli action may take: they ask the Velero server, never minutes.
M.QUERY_WAIT = 300

-- The endpoints by which velero-operator gets its storage (charmcraft.yaml requires).
M.STORAGE_ENDPOINTS = { "s3-credentials", "azure-storage", "azure-service-principal", "gcs-credentials" }

--- The Kubeflow model's name without its controller: the `model` velero-operator's
-- actions take (the label of its Backups), and the namespace of Kubeflow's workloads.
function M.model(cfg)
  return select(2, juju.split_model(cfg.models.kubeflow))
end

local function leader(cfg)
  return cfg.velero.app .. "/leader"
end

--- list(cfg) -> {backup name = {uid, phase, start}} | nil, err: the Velero backups made for
-- the Kubeflow model. Without model= the charm lists only its own model's (src/charm.py
-- on_list_backups_action); an empty list has no `backups` key.
function M.list(cfg)
  local t, err = juju.run(leader(cfg), "list-backups", { model = M.model(cfg) },
    { model = cfg.models.velero, wait = M.QUERY_WAIT })
  if not t then return nil, err end
  local out = {}
  for uid, b in pairs(type(t.results.backups) == "table" and t.results.backups or {}) do
    if type(b) == "table" and type(b.name) == "string" then
      out[b.name] = { uid = uid, phase = b.phase, start = b["start-timestamp"] }
    end
  end
  return out
end

function M.list_command(cfg)
  return string.format("juju run -m %s %s list-backups model=%s", cfg.models.velero, leader(cfg), M.model(cfg))
end

--- The key of a backup's metadata: the s3-integrator path is the backup location's
-- prefix (velero-operator src/velero/core.py --prefix; velero object_store_layout.go).
function M.key(path, name)
  path = tostring(path or ""):gsub("^/+", ""):gsub("/+$", "")
  return (path ~= "" and path .. "/" or "") .. "backups/" .. name .. "/velero-backup.json"
end

--- The bucket and path of velero's s3-integrator (from the velero model's juju status), or nil.
function M.storage(cfg, status)
  local app = type(status) == "table" and status.applications and status.applications[cfg.velero.app]
  local rels = type(app) == "table" and app.relations and app.relations["s3-credentials"]
  local integrator = type(rels) == "table" and rels[1] and rels[1]["related-application"]
  if type(integrator) ~= "string" then return nil end
  local settings = juju.config_get(integrator, { model = cfg.models.velero })
  return settings and settings.bucket and { bucket = settings.bucket, path = settings.path or "" }
end

--- Follows a create-backup that outlived its --wait (the action keeps running on the
-- unit): -> the finished task | nil, err (code ckf.still_running while it still runs).
local function follow(cfg, id)
  local opts = { model = cfg.models.velero }
  local deadline = loop.now() + cfg.velero.wait
  while true do
    local t, err = juju.show_task(id, opts)
    if not t then return nil, err end
    if t.status == "completed" then return t end
    if t.status ~= "running" and t.status ~= "pending" then
      return nil, errors.new("juju.action_failed", string.format("task %s %s: %s", id, tostring(t.status),
        tostring(t.message or "")), { task = t, task_id = id })
    end
    if loop.now() + cfg.poll > deadline then
      return nil, errors.new("ckf.still_running", string.format("task %s is still %s after %s; follow it with "
        .. "juju show-task -m %s %s", id, t.status, juju.go_duration(2 * cfg.velero.wait), opts.model, id),
        { task_id = id })
    end
    task.sleep(cfg.poll)
  end
end

--- backup(cfg, target) -> {backup_name, detail} | nil, err: create-backup for one target,
-- followed past its wait when the action outlives it (err.detail.task_id then says which).
function M.backup(cfg, target)
  local t, err = juju.run(leader(cfg), "create-backup", { target = target, model = M.model(cfg) },
    { model = cfg.models.velero, wait = cfg.velero.wait })
  if not t and errors.is(err, "juju.timeout") and err.detail.task_id then
    require("ckfb.log").warn("%s: no result within its wait; following task %s", target, err.detail.task_id)
    t, err = follow(cfg, err.detail.task_id)
  end
  if not t then return nil, err end
  local name = t.results["backup-name"]
  return { backup_name = name, detail = tostring(name) }
end

function M.backup_command(cfg, target)
  return string.format("juju run -m %s %s create-backup target=%s model=%s --wait %s", cfg.models.velero,
    leader(cfg), target, M.model(cfg), juju.go_duration(cfg.velero.wait))
end

--- progress(backup) -> "InProgress 12/40 items" | "Completed 40/40 items" | the phase alone
-- (velero pkg/apis/velero/v1/backup_types.go: status.phase, status.progress).
function M.progress(backup)
  local st = type(backup) == "table" and type(backup.status) == "table" and backup.status or {}
  local phase = type(st.phase) == "string" and st.phase or "New"
  local p = type(st.progress) == "table" and st.progress or {}
  local done, total = math.tointeger(p.itemsBackedUp) or 0, math.tointeger(p.totalItems)
  if total then return string.format("%s %d/%d items", phase, done, total) end
  return phase
end

--- watch(client, cfg, target, on_change) -> true | nil, err: calls on_change(text, phase)
-- as the Backup velero-operator creates for target moves on (the charm labels it app,
-- endpoint and model, charm.py _get_resource_labels, in velero's namespace). Backups
-- that existed before the watch began are not this run's. Runs until cancelled.
function M.watch(client, cfg, target, on_change)
  local app, endpoint = target:match("^([^:]+):(.+)$")
  local opts = { namespace = select(2, juju.split_model(cfg.models.velero)),
    label_selector = string.format("app=%s,endpoint=%s,model=%s", app, endpoint, M.model(cfg)) }
  local before, rv = client:list("backups.velero.io", opts)
  if not before then return nil, rv end
  local old = {}
  for _, b in ipairs(before) do old[b.metadata.name] = true end
  opts.resource_version = rv
  return client:watch("backups.velero.io", opts, function(kind, b)
    local name = type(b) == "table" and type(b.metadata) == "table" and b.metadata.name
    if kind ~= "DELETED" and name and not old[name] then on_change(M.progress(b), (b.status or {}).phase) end
  end)
end

--- restore(cfg, uid) -> the finished task | nil, err
function M.restore(cfg, uid)
  return juju.run(leader(cfg), "restore", { ["backup-uid"] = uid }, { model = cfg.models.velero,
    wait = cfg.velero.wait })
end

function M.restore_command(cfg, uid)
  return string.format("juju run -m %s %s restore backup-uid=%s --wait %s", cfg.models.velero, leader(cfg),
    tostring(uid), juju.go_duration(cfg.velero.wait))
end

--- delete(cfg, name) -> true | nil, err: through the charm's run-cli action.
function M.delete(cfg, name)
  local ok, err = juju.run(leader(cfg), "run-cli", { command = "backup delete " .. name .. " --confirm" },
    { model = cfg.models.velero, wait = M.QUERY_WAIT })
  if not ok then return nil, err end
  return true
end

return M
