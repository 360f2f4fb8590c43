--- ckfb.ckf.checks: the preflight of a backup or a restore. Every check runs,
-- each adds one line (ok, warn or fail, some overridable by --force), and the
-- run goes on only when nothing failed. What the checks learn of the
-- deployment (its juju status, storage, clients) is kept in `found`, so the
-- steps declared after the preflight use the same facts.
local juju = require "ckfb.juju"
local task = require "ckfb.task"
local errors = require "ckfb.error"
local ckf = require "ckfb.ckf"
local mysql = require "ckfb.ckf.mysql"
local velero = require "ckfb.ckf.velero"

local M = {}

local Checks = {}
Checks.__index = Checks

--- new{force = bool} -> a list of checks; c.found holds what they learnt.
function M.new(opts)
  return setmetatable({ force = opts and opts.force, found = { storage = {}, units = {}, targets = {},
    skipped = {} } }, Checks)
end

--- add(name, "ok" | "warn" | "fail", detail [, overridable by --force])
function Checks:add(name, status, detail, overridable)
  self[#self + 1] = { name = name, status = status, detail = detail, overridable = overridable or false }
end

--- True when a failure stands (one --force does not override).
function Checks:refused()
  for _, c in ipairs(self) do
    if c.status == "fail" and not (self.force and c.overridable) then return true end
  end
  return false
end

--- The checks as a JSON array.
function Checks:list()
  local out = {}
  for i, c in ipairs(self) do out[i] = c end
  return require("ckfb.json").array(out)
end

--- The table an operator reads, on stderr.
function Checks:print()
  local lines = { "preflight:" }
  for _, c in ipairs(self) do
    local forced = c.status == "fail" and self.force and c.overridable
    lines[#lines + 1] = string.format("  %-5s %-12s %s%s", forced and "FORCE" or c.status:upper(), c.name,
      c.detail or "", (c.status == "fail" and c.overridable and not forced) and " (--force overrides)" or "")
  end
  require("ckfb.log").say(self:refused() and "error" or "info", table.concat(lines, "\n"))
end

-------------------------------------------------------------------- the deployment

--- juju answers, and both models exist. -> true when the juju-side checks can go on
function Checks:juju(cfg)
  local version, err = juju.version()
  if not version then return self:add("juju", "fail", err.message) end
  self:add("juju", "ok", "juju " .. version)
  for _, m in ipairs { cfg.models.kubeflow, cfg.models.velero } do
    local controller, name = juju.split_model(m)
    local models, merr = juju.models { controller = controller }
    if not models then return self:add("models", "fail", merr.message) end
    local found = false
    for _, have in ipairs(models) do found = found or have == name end
    if not found then return self:add("models", "fail", "model '" .. m .. "' not found") end
  end
  self:add("models", "ok", cfg.models.kubeflow .. ", " .. cfg.models.velero)
  return true
end

--- velero-operator is deployed, active and idle, with a storage provider.
function Checks:velero(cfg)
  local st, err = juju.status { model = cfg.models.velero }
  if not st then return self:add("velero", "fail", err.message) end
  local app = cfg.velero.app
  if not st.applications[app] then
    return self:add("velero", "fail", app .. " is not deployed in " .. cfg.models.velero)
  end
  if not juju.is_active_idle(st, app) then return self:add("velero", "fail", app .. " is not active and idle") end
  if not ckf.related_by(st.applications[app], velero.STORAGE_ENDPOINTS) then
    return self:add("velero", "fail", app .. " has no storage provider (integrate an s3-integrator)")
  end
  self.found.velero_status = st
  self:add("velero", "ok", app .. " active, with a storage provider")
end

--- One database: deployed, active, related to an s3-integrator whose bucket and path
-- mysql-k8s can list, not blocked for writes; and how many units its backup needs.
function Checks:database(cfg, st, db)
  local kf, app = cfg.models.kubeflow, st.applications[db]
  if not app then return self:add(db, "fail", "not deployed in " .. kf) end
  local block = mysql.s3_block(app)
  if block then
    return self:add(db, "fail", string.format("%s: the charm refuses backups to the S3 repository it restored "
      .. "from; point it at a new one: juju config -m %s %s path=%s-<date>", block, kf,
      mysql.integrator(st, db) or "<s3-integrator>", db))
  end
  if (app["application-status"] or {}).current ~= "active" then return self:add(db, "fail", "not active") end
  local storage, err = mysql.storage(cfg, st, db)
  if not storage then return self:add(db, "fail", err.message) end
  if storage.path == "" then  -- s3_helpers.py list_backups_in_s3_path indexes path[-1]
    return self:add(db, "fail", string.format("%s has an empty path, on which mysql-k8s cannot list its "
      .. "backups; set one: juju config -m %s %s path=%s", storage.integrator, kf, storage.integrator, db))
  end
  local units, why = mysql.units_needed(app, cfg.database.min_units)
  self.found.storage[db], self.found.units[db] = storage, { needed = units, why = why }
  self:add(db, "ok", string.format("active, %d unit(s) (a backup needs %d: %s), backups to s3://%s/%s",
    #juju.units(st, db), units, why, storage.bucket, storage.path))
end

function Checks:databases(cfg)
  local st, err = juju.status { model = cfg.models.kubeflow }
  if not st then return self:add("databases", "fail", err.message) end
  self.found.kubeflow_status = st
  for _, db in ipairs(cfg.databases) do self:database(cfg, st, db) end
end

--- Each target's endpoint exists on its application; user workloads only with profiles.
-- found.targets: the targets to back up; found.skipped: {target, reason}.
function Checks:targets(cfg)
  local st, found = self.found.kubeflow_status, self.found
  if not st then return end
  for _, target in ipairs(cfg.targets) do
    local missing = ckf.missing_endpoint(st, target)
    local namespaces, err
    if not missing and target == ckf.USER_WORKLOADS and found.k8s then
      namespaces, err = ckf.profile_namespaces(found.k8s, velero.model(cfg))
    end
    if missing then
      self:add(target, "fail", missing)
    elseif err then
      self:add(target, "fail", "cannot list the profile namespaces: " .. err.message, true)
      found.targets[#found.targets + 1] = target
    elseif namespaces and #namespaces == 0 then
      local why = "no Kubeflow profile namespaces, so kubeflow-profiles sends no user-workloads spec"
      self:add(target, "warn", why .. ": skipped")
      found.skipped[#found.skipped + 1] = { target = target, reason = why }
    else
      found.targets[#found.targets + 1] = target
    end
  end
end

-------------------------------------------------------------------- Kubernetes

--- A CRD that is not installed counts as nothing running.
function Checks:running(name, counter, level, what)
  local n, err = counter(self.found.k8s)
  if n == nil and errors.is(err, "k8s.unknown_resource") then return self:add(name, "ok", "not installed") end
  if n == nil then return self:add(name, "fail", err.message, true) end
  if n > 0 then return self:add(name, level, string.format("%d %s", n, what), true) end
  self:add(name, "ok", "none running")
end

--- Pipelines, experiments and notebooks stopped (the guide's precondition); volumes noted.
function Checks:kubernetes(cfg)
  local client, err = ckf.k8s_client(cfg)
  if not client then
    return self:add("kubernetes", cfg.kubernetes.required and "fail" or "warn",
      err.message .. ": cannot check for running pipelines", true)
  end
  self.found.k8s = client
  self:running("pipelines", ckf.running_workflows, "fail", "pipeline run(s) running: stop them first")
  self:running("experiments", ckf.running_experiments, "fail", "Katib experiment(s) running: stop them first")
  self:running("notebooks", ckf.running_notebooks, "warn", "notebook(s) running (a hook can stop them)")
  local hostpath = ckf.hostpath_class(client)
  if hostpath then
    return self:add("volumes", "warn", "storage class " .. hostpath.metadata.name .. " (" .. hostpath.provisioner
      .. "): full volume backups are not supported here, as the guide says")
  end
  self:add("volumes", "ok", "no hostpath storage class")
end

--- The configured bucket answers (found.s3: its client).
function Checks:s3(cfg)
  if not ckf.s3_configured(cfg) then
    return self:add("s3", "ok", "not configured: S3 checks and manifest upload skipped")
  end
  local client, err = ckf.s3_client(cfg)
  if client then
    local ok, herr = client:head_bucket(cfg.s3.bucket)
    if ok then
      self.found.s3 = client
      return self:add("s3", "ok", "bucket " .. cfg.s3.bucket .. " reachable")
    end
    err = herr
  end
  self:add("s3", "fail", err.message, true)
end

--- No other ckfb run on these models (found.lock: the lock held).
function Checks:lock(cfg, state_dir, info)
  local held, err = ckf.lock(cfg, state_dir, self.found.k8s, info)
  if not held then return self:add("lock", "fail", err.message) end
  self.found.lock = held
  self:add("lock", "ok", "no other ckfb run on these models" .. (held.lease and " (here, or by the Lease "
    .. held.lease.namespace .. "/ckfb)" or ""))
end

--- Runs groups of checks at once, fn(checks) each; their lines come in the order of the
-- groups, whichever ends first, so a report and the table read the same on every run.
function Checks:all(groups)
  local lines, jobs = {}, {}
  for i, group in ipairs(groups) do
    lines[i] = setmetatable({}, { __index = self })   -- its own lines; self's found and force
    jobs[i] = function() group(lines[i]) end
  end
  task.all(jobs)
  for _, list in ipairs(lines) do table.move(list, 1, #list, #self + 1, self) end
end

--- A backup's checks: juju, then velero, databases, Kubernetes and S3 together, then the targets.
function Checks:backup(cfg, state_dir, id)
  if self:juju(cfg) then
    self:all { function(c) c:velero(cfg) end, function(c) c:databases(cfg) end,
      function(c) c:kubernetes(cfg) end, function(c) c:s3(cfg) end }
    self:targets(cfg)
  end
  self:lock(cfg, state_dir, { set = id })
end

-------------------------------------------------------------------- restore

--- Every velero backup to restore is listed by the charm, by name, and Completed;
-- found.velero_uid: its UID today (a Velero resync gives a new one).
function Checks:velero_backups(cfg, backups)
  self.found.velero_uid = {}
  if #backups == 0 then return end
  local listed, err = velero.list(cfg)
  if not listed then return self:add("velero", "fail", err.message) end
  local bad = {}
  for _, v in ipairs(backups) do
    local found = listed[v.backup_name]
    if not found then
      bad[#bad + 1] = v.backup_name .. " is gone (Velero deletes a backup after its TTL, 30 days by default)"
    elseif found.phase ~= "Completed" then
      bad[#bad + 1] = v.backup_name .. " is " .. tostring(found.phase)
    else
      self.found.velero_uid[v.backup_name] = found.uid
    end
  end
  if #bad > 0 then return self:add("velero", "fail", table.concat(bad, "; ")) end
  self:add("velero", "ok", #backups .. " backup(s) listed and Completed")
end

--- Every database backup is listed by its charm as finished; no database is blocked for S3.
function Checks:database_backups(cfg, st, backups)
  for _, d in ipairs(backups) do
    local block = mysql.s3_block(st.applications[d.app])
    local listed, err = mysql.list(cfg, d.app)
    if block then
      self:add(d.app, "fail", block .. ": move it to a new S3 path first (juju config -m " .. cfg.models.kubeflow
        .. " <its s3-integrator> path=<new path>)")
    elseif not listed then
      self:add(d.app, "fail", err.message)
    elseif listed[d.backup_id] ~= "finished" then
      self:add(d.app, "fail", "backup " .. tostring(d.backup_id) .. " is " .. (listed[d.backup_id] or "not listed")
        .. " in " .. d.app .. " list-backups")
    else
      self:add(d.app, "ok", "backup " .. d.backup_id .. " listed, finished")
    end
  end
end

--- Re-importing volumes needs juju able to import storage on Kubernetes, and the claims readable.
function Checks:storage_import(cfg, st)
  local client_version, err = juju.version()
  if not client_version then return self:add("storage", "fail", err.message) end
  local flags = os.getenv("JUJU_DEV_FEATURE_FLAGS")
  local gated = ckf.storage_import_gate(client_version, flags)
    or ckf.storage_import_gate(tostring((st.model or {}).version), flags)
  if gated then return self:add("storage", "fail", gated) end
  local client, kerr = ckf.k8s_client(cfg)
  local claims
  if client then
    claims, kerr = client:list("persistentvolumeclaims", { namespace = velero.model(cfg), limit = 1 })
  end
  if not claims then
    return self:add("storage", "fail", "cannot read the volume claims of namespace " .. velero.model(cfg) .. ": "
      .. kerr.message)
  end
  self:add("storage", "ok", "juju " .. client_version .. " imports storage on Kubernetes; claims readable")
end

--- storage ids by storage name ("minio-data" -> {"minio-data/0"}) from juju storage.
local function storage_ids(cfg)
  local out = {}
  for id in pairs(juju.storage { model = cfg.models.kubeflow } or {}) do
    local name = id:match("^(.+)/%d+$")
    if name then
      out[name] = out[name] or {}
      table.insert(out[name], id)
    end
  end
  for _, ids in pairs(out) do table.sort(ids) end
  return out
end

--- The parts of the set to restore ({velero, volumes, databases}, ckf.restore_parts) were made.
function Checks:set_parts(set, parts, components)
  local missing = {}
  for _, v in ipairs(parts.velero) do
    if v.status ~= "created" or type(v.backup_name) ~= "string" then missing[#missing + 1] = v.target end
  end
  for _, d in ipairs(parts.databases) do
    if d.status ~= "created" or type(d.backup_id) ~= "string" then missing[#missing + 1] = d.app end
  end
  if #missing > 0 then
    return self:add("set", "fail", "the set lacks " .. table.concat(missing, ", ")
      .. (components and "" or ": name what to restore with --components"))
  end
  self:add("set", "ok", set.id .. " (" .. tostring(set.status) .. ")" .. (components and ", components "
    .. components or ""))
  return true
end

--- A restore's checks. found: kubeflow_status, storage_ids, units (each database's size),
-- integrators, velero_uid, lock.
function Checks:restore(cfg, set, parts, opts)
  local st, err = juju.status { model = cfg.models.kubeflow }
  if st then
    self:add("juju", "ok", "model " .. cfg.models.kubeflow .. " reachable")
    local found = self.found
    found.kubeflow_status, found.storage_ids, found.integrators = st, storage_ids(cfg), {}
    for _, d in ipairs(set.databases or {}) do
      found.units[d.app] = #juju.units(st, d.app)
      found.integrators[d.app] = mysql.integrator(st, d.app)
    end
    if self:set_parts(set, parts, opts.components) then
      self:velero_backups(cfg, parts.velero)
      self:database_backups(cfg, st, parts.databases)
      if #parts.volumes > 0 then self:storage_import(cfg, st) end
    end
  else
    self:add("juju", "fail", err.message)
  end
  self.found.k8s = ckf.k8s_client(cfg)
  self:lock(cfg, opts.state_dir, { set = set.id, restore = true })
end

return M
