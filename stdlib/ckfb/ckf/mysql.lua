--- ckfb.ckf.mysql: the CKF databases (mysql-k8s: kfp-db, katib-db) as the
-- charm's sources define them (canonical/mysql-k8s-operator; each rule names
-- its file): how many units a backup needs, the cluster's topology, its
-- backups and where they are written, and the backup and restore actions.
local juju = require "ckfb.juju"
local task = require "ckfb.task"
local log = require "ckfb.log"
local errors = require "ckfb.error"

local M = {}

-- From rev 300 (commit 7cb1839) create-backup needs the cluster status ok or
-- ok_partial (lib/charms/mysql/v0/backups.py, _can_cluster_perform_backup).
-- MySQL Shell reports one or two members as ok_no_tolerance, so such a
-- cluster needs three. force=true would skip the primary check too, so ckfb
-- never uses it.
M.HEALTH_CHECK_REV = 300
M.HEALTHY_MEMBERS = 3
M.UNHEALTHY = "Cluster is not in a healthy state"

-- How long a list-backups or get-cluster-status action may take: they read
-- S3 or ask MySQL Shell, never minutes.
M.QUERY_WAIT = 300

--- The units a database needs for a backup, and why: (status entry of the app, configured minimum).
function M.units_needed(app, min_units)
  local rev = type(app) == "table" and math.tointeger(app["charm-rev"]) or nil
  if rev and rev >= M.HEALTH_CHECK_REV then
    return math.max(M.HEALTHY_MEMBERS, min_units), string.format("mysql-k8s rev %d backs up only a healthy "
      .. "cluster (3 members; 2 report ok_no_tolerance)", rev)
  end
  return math.max(2, min_units), "a backup runs on a non-primary unit"
end

-- After a restore the charm refuses to write to the same S3 repository
-- (backups.py _on_restore sets the s3-block-message, src/charm.py shows it as
-- the application's Blocked status); create-backup then fails with "S3
-- relation is blocked for write", whatever its params.
local S3_BLOCKS = { "Move restored cluster to another S3 repository", "S3 repository claimed by another cluster" }

--- The S3 block message on a mysql-k8s application's status, or nil.
function M.s3_block(app)
  local st = type(app) == "table" and app["application-status"]
  local message = type(st) == "table" and st.current == "blocked" and st.message
  for _, block in ipairs(S3_BLOCKS) do
    if message == block then return message end
  end
end

--- The backups in a list-backups result: {backup-id = "finished" | "failed" | "in progress"}
-- (backups.py _format_backups_list: a header, a line of dashes, then `id | type | status` rows).
function M.parse_backups(text)
  local out = {}
  for line in tostring(text or ""):gmatch("[^\n]+") do
    local id, status = line:match("^%s*(%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ)%s*|[^|]*|%s*(.-)%s*$")
    if id then out[id] = status end
  end
  return out
end

--- list(cfg, db) -> {backup-id = status} | nil, err
function M.list(cfg, db)
  local t, err = juju.run(db .. "/leader", "list-backups", nil, { model = cfg.models.kubeflow, wait = M.QUERY_WAIT })
  if not t then return nil, err end
  return M.parse_backups(t.results.backups)
end

--- The s3-integrator related to a database in a juju status, or nil.
function M.integrator(status, db)
  local app = type(status) == "table" and type(status.applications) == "table" and status.applications[db]
  local rels = type(app) == "table" and type(app.relations) == "table" and app.relations["s3-parameters"]
  local name = type(rels) == "table" and type(rels[1]) == "table" and rels[1]["related-application"]
  return type(name) == "string" and name or nil
end

local function trim_slashes(path)
  return (tostring(path or ""):gsub("^/+", ""):gsub("/+$", ""))
end

--- storage(cfg, status, db) -> {integrator, bucket, path} of the s3-integrator related
-- to a database now | nil, err (never a bucket read from a manifest).
function M.storage(cfg, status, db)
  local integrator = M.integrator(status, db)
  if not integrator then
    return nil, errors.new("ckf.no_storage", "no s3-integrator is related to it (the guide's step 1)")
  end
  local settings, err = juju.config_get(integrator, { model = cfg.models.kubeflow })
  if not settings then return nil, err end
  if type(settings.bucket) ~= "string" or settings.bucket == "" then
    return nil, errors.new("ckf.no_storage", integrator .. " has no bucket configured")
  end
  return { integrator = integrator, bucket = settings.bucket, path = trim_slashes(settings.path) }
end

--- The object key prefix of a backup (s3_helpers.py: pathlib.Path(path) / id).
function M.key_base(path, backup_id)
  path = trim_slashes(path)
  return (path ~= "" and path .. "/" or "") .. backup_id
end

--- The object key of a backup's checksum.
function M.key(path, backup_id)
  return M.key_base(path, backup_id) .. ".md5"
end

--- The primary and the healthy non-primary units, from get-cluster-status's result.
function M.topology(results)
  local status = type(results) == "table" and results.status
  local topo = type(status) == "table" and type(status.defaultreplicaset) == "table"
    and status.defaultreplicaset.topology
  if type(topo) ~= "table" then return nil end
  local primary, others = nil, {}
  for label, member in pairs(topo) do
    local unit = tostring(label):gsub("%-(%d+)$", "/%1")
    if type(member) ~= "table" then -- luacheck: ignore 542
    elseif member.memberrole == "primary" or member.mode == "r/w" then primary = unit
    elseif member.status == "online" and unit:match("/%d+$") then others[#others + 1] = unit end
  end
  table.sort(others, function(a, b) return tonumber(a:match("%d+$")) < tonumber(b:match("%d+$")) end)
  return primary, others
end

--- cluster(cfg, db) -> {primary =, others = {healthy non-primary units}} | nil, err
function M.cluster(cfg, db)
  local t, err = juju.run(db .. "/leader", "get-cluster-status", nil,
    { model = cfg.models.kubeflow, wait = M.QUERY_WAIT })
  if not t then return nil, err end
  local primary, others = M.topology(t.results)
  if not others or #others == 0 then
    return nil, errors.new("ckf.no_secondary", db .. ": no healthy non-primary unit in the cluster topology")
  end
  return { primary = primary, others = others }
end

--- grow(cfg, db, n, scaled) -> the units it had | nil, err: scales up to n units (never
-- down), remembering in scaled[db] the size it had before the run first grew it.
function M.grow(cfg, db, n, scaled)
  local model = { model = cfg.models.kubeflow }
  local s, err = juju.status(model)
  if not s then return nil, err end
  local have = #juju.units(s, db)
  if have >= n then return have end
  if scaled[db] == nil then scaled[db] = have end
  local ok, serr = juju.scale(db, n, model)
  if not ok then return nil, serr end
  return have
end

--- wait_ready(cfg, db, n) -> juju status | nil, err: n units or more, all active and idle.
function M.wait_ready(cfg, db, n)
  return juju.wait(function(s) return juju.is_active_idle(s, db) and #juju.units(s, db) >= n end,
    { model = cfg.models.kubeflow, timeout = cfg.database.wait, delay = cfg.poll })
end

--- The answers of create-backup worth another try: the primary moved, or a backup runs.
local function transient(why)
  return why:find("primary", 1, true) or why:find("in progress", 1, true)
end

--- backup(cfg, db, scaled) -> {unit, primary, backup_id, detail} | nil, err: create-backup on
-- a healthy non-primary unit, the topology read again when the primary moves or another
-- backup runs; a cluster the charm finds too small grows to three (recorded in scaled).
function M.backup(cfg, db, scaled)
  local kf, last = cfg.models.kubeflow, nil
  for attempt = 1, cfg.database.retries do
    local cluster, cerr = M.cluster(cfg, db)
    if not cluster and not errors.is(cerr, "ckf.no_secondary") then return nil, cerr end
    if cluster then
      local unit = cluster.others[1]
      local b, bfail = juju.run(unit, "create-backup", nil, { model = kf, wait = cfg.database.wait })
      if b then
        local id = b.results["backup-id"]
        return { unit = unit, primary = cluster.primary, backup_id = id,
          detail = "backup " .. tostring(id) .. " on " .. unit }
      end
      last = bfail
      local why = bfail.detail and bfail.detail.task and bfail.detail.task.message or ""
      if why == M.UNHEALTHY and #cluster.others + 1 < M.HEALTHY_MEMBERS then
        log.warn("%s: the charm refused a backup: %s; scaling to %d units (attempt %d of %d)", db, why,
          M.HEALTHY_MEMBERS, attempt, cfg.database.retries)
        local grown, gerr = M.grow(cfg, db, M.HEALTHY_MEMBERS, scaled)
        if grown then grown, gerr = M.wait_ready(cfg, db, M.HEALTHY_MEMBERS) end
        if not grown then return nil, gerr end
      elseif not transient(why) then
        return nil, bfail
      else
        log.warn("%s: %s; reading the topology again (attempt %d of %d)", db, why, attempt, cfg.database.retries)
      end
    else
      last = cerr
    end
    task.sleep(cfg.poll)
  end
  return nil, last
end

--- The by-hand form of M.backup.
function M.backup_command(cfg, db)
  return string.format("juju run -m %s %s/leader get-cluster-status   (then create-backup on a non-primary unit, "
    .. "--wait %s)", cfg.models.kubeflow, db, juju.go_duration(cfg.database.wait))
end

--- A predicate for juju.wait: n units, each active and idle; the application active,
-- or blocked only by the S3 block a restore leaves (backups.py _on_restore).
function M.units_are(n)
  return function(s, app)
    if #juju.units(s, app) ~= n then return false end
    if juju.is_active_idle(s, app) then return true end
    local a = s.applications[app]
    if not M.s3_block(a) then return false end
    for _, unit in pairs(a.units or {}) do
      if (unit["workload-status"] or {}).current ~= "active" or (unit["juju-status"] or {}).current ~= "idle" then
        return false
      end
    end
    return true
  end
end

--- restore(cfg, db, backup_id) -> the finished task | nil, err
function M.restore(cfg, db, backup_id)
  return juju.run(db .. "/leader", "restore", { ["backup-id"] = backup_id },
    { model = cfg.models.kubeflow, wait = cfg.database.wait })
end

function M.restore_command(cfg, db, backup_id)
  return string.format("juju run -m %s %s/leader restore backup-id=%s --wait %s", cfg.models.kubeflow, db,
    tostring(backup_id), juju.go_duration(cfg.database.wait))
end

--- The command that moves a restored database's backups to an S3 path of its own.
function M.move_command(cfg, db, integrator)
  return string.format("juju config -m %s %s path=%s-restored-%s   (%s backs up again only to an S3 path of its "
    .. "own: the charm blocks the one it restored from)", cfg.models.kubeflow, integrator or "<its s3-integrator>",
    db, os.date("!%Y%m%d"), db)
end

return M
