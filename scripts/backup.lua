-- ckfb backup: the whole Charmed Kubeflow backup in one safe command.
--
-- The procedure of the CKF backup guide, made safe and verifiable:
--   1. preflight: every check runs, then one table; a failure stops the run
--      before anything changes (--force overrides those safe to override);
--   2. plan: every change and action, in order, with what runs in parallel
--      (--dry-run prints it and stops);
--   3. setup, idempotent: the velero offer, its consumption, the four
--      integrations, only what is missing;
--   4. databases: at least two units, healthy, and create-backup on a
--      non-primary unit read from the real topology (retried if it moves);
--   5. velero: create-backup for every target; all six backups start together;
--   6. verify: list-backups everywhere, and the objects in S3 when configured;
--   7. record: one backup-set manifest, locally and in S3; a report.
--
-- This file is meant to be copied and changed by a site: `ckfb stdlib cat`
-- is not needed, `ckfb backup` runs the shipped copy, `ckfb ./backup.lua`
-- a site's own. Exit codes: 0 ok, 1 failed, 2 usage or configuration,
-- 3 refused by preflight, 4 partial (some backups failed), 130 interrupted.
local juju = require "ckfb.juju"
local ckf = require "ckfb.ckf"
local s3 = require "ckfb.s3"
local json = require "ckfb.json"
local task = require "ckfb.task"
local log = require "ckfb.log"
local errors = require "ckfb.error"
local hooks = require "ckfb.hooks"
local options = require "ckfb.options"
local progress = require "ckfb.progress"
local plan = require "ckfb.plan"
local sets = require "ckfb.sets"
local file = require "ckfb.file"
local write_file = file.write
local sys = require "ckfb.core.sys"
local loop = require "ckfb.core.loop"

local EXIT = { ok = 0, failed = 1, usage = 2, refused = 3, partial = 4 }

local OPTIONS = {
  usage = "ckfb backup [options]",
  summary = "Backs up Charmed Kubeflow: velero backups of its targets and MySQL backups of its databases, "
    .. "started together, verified, and recorded as one backup set.",
  { "--config", "FILE", "configuration (default $CKFB_CONFIG, ~/.config/ckfb/ckfb.yaml, /etc/ckfb/ckfb.yaml)" },
  { "--dry-run", nil, "run the preflight, print the plan, change nothing" },
  { "--json", nil, "print the plan (--dry-run) or the report as JSON on stdout" },
  { "--report", "FILE", "also write the JSON report to FILE" },
  { "--force", nil, "go on despite preflight failures that are safe to override" },
  { "--restore-scale", nil, "scale the databases back to their size before the run" },
  epilog = { "", "exit codes: 0 ok, 1 failed, 2 usage or configuration error, 3 refused by preflight,",
    "            4 partial (some backups failed), 130 interrupted" },
}

-- The configuration: the guide's names as defaults (stdlib/ckfb/sets.lua).
local DEFAULTS = sets.DEFAULTS

local function usage_error(message)
  io.stderr:write("ckfb backup: ", message, " (try 'ckfb backup --help')\n")
  return EXIT.usage
end

-------------------------------------------------------------------- preflight

--- What every hook sees, in every event: one view of the run, as copies.
local function context(run, event, step)
  return { event = event, kind = "backup", id = run.id, status = run.status, config = plan.snapshot(run.cfg),
    plan = run.plan and run.plan:describe(), step = step, checks = plan.snapshot(run.checks),
    velero = plan.snapshot(run.velero), databases = plan.snapshot(run.databases), k8s = run.k8s }
end

local function run_hooks(run, event)
  return hooks.run(event, context(run, event))
end


local function check(run, name, status, detail, overridable)
  run.checks[#run.checks + 1] = { name = name, status = status, detail = detail, overridable = overridable or false }
end

local function has_relation(app, endpoints)
  for _, ep in ipairs(endpoints) do
    if app and app.relations and app.relations[ep] and #app.relations[ep] > 0 then return app.relations[ep] end
  end
end

local function check_juju(run)
  local cfg = run.cfg
  local version, err = juju.version()
  if not version then return check(run, "juju", "fail", err.message) end
  check(run, "juju", "ok", "juju " .. version)
  for _, m in ipairs { cfg.models.kubeflow, cfg.models.velero } do
    local controller, name = juju.split_model(m)
    local models, merr = juju.models { controller = controller }
    if not models then return check(run, "models", "fail", merr.message) end
    local found = false
    for _, have in ipairs(models) do found = found or have == name end
    if not found then return check(run, "models", "fail", "model '" .. m .. "' not found") end
  end
  check(run, "models", "ok", cfg.models.kubeflow .. ", " .. cfg.models.velero)
  return true
end

local function check_velero(run)
  local cfg = run.cfg
  local st, err = juju.status { model = cfg.models.velero }
  if not st then return check(run, "velero", "fail", err.message) end
  local app = st.applications[cfg.velero.app]
  if not app then return check(run, "velero", "fail", cfg.velero.app .. " is not deployed in " .. cfg.models.velero) end
  if not juju.is_active_idle(st, cfg.velero.app) then
    return check(run, "velero", "fail", cfg.velero.app .. " is not active and idle")
  end
  if not has_relation(app, { "s3-credentials", "azure-storage", "azure-service-principal", "gcs-credentials" }) then
    return check(run, "velero", "fail", cfg.velero.app .. " has no storage provider (integrate an s3-integrator)")
  end
  run.velero_status = st
  check(run, "velero", "ok", cfg.velero.app .. " active, with a storage provider")
end

--- One database: deployed, active, related to an s3-integrator whose bucket
-- and path mysql-k8s can list, not blocked for writes, and how many units
-- its backup needs.
local function check_database(run, st, db)
  local kf = run.cfg.models.kubeflow
  local app = st.applications[db]
  if not app then return check(run, db, "fail", "not deployed in " .. kf) end
  local block = ckf.s3_block(app)
  if block then
    local s3rel = has_relation(app, { "s3-parameters" })
    return check(run, db, "fail", string.format("%s: the charm refuses backups to the S3 repository it restored "
      .. "from; point it at a new one: juju config -m %s %s path=%s-<date>", block, kf,
      s3rel and s3rel[1]["related-application"] or "<s3-integrator>", db))
  end
  if (app["application-status"] or {}).current ~= "active" then return check(run, db, "fail", "not active") end
  local storage, err = ckf.database_storage(run.cfg, st, db)
  if not storage then return check(run, db, "fail", err.message) end
  if storage.path == "" then  -- s3_helpers.py list_backups_in_s3_path indexes path[-1]
    return check(run, db, "fail", string.format("%s has an empty path, on which mysql-k8s cannot list its "
      .. "backups; set one: juju config -m %s %s path=%s", storage.integrator, kf, storage.integrator, db))
  end
  local units, why = ckf.database_units(app, run.cfg.database.min_units)
  run.db_storage[db] = storage
  run.db_units[db] = { needed = units, why = why }
  check(run, db, "ok", string.format("active, %d unit(s) (a backup needs %d: %s), backups to s3://%s/%s",
    #juju.units(st, db), units, why, storage.bucket, storage.path))
end

local function check_databases(run)
  local st, err = juju.status { model = run.cfg.models.kubeflow }
  if not st then return check(run, "databases", "fail", err.message) end
  run.kubeflow_status = st
  for _, db in ipairs(run.cfg.databases) do check_database(run, st, db) end
end

--- Each target's endpoint exists on its application; user workloads only with profiles.
local function check_targets(run)
  local st = run.kubeflow_status
  if not st then return end
  for _, target in ipairs(run.cfg.targets) do
    local missing = ckf.missing_endpoint(st, target)
    if missing then
      check(run, target, "fail", missing)
    elseif target == ckf.USER_WORKLOADS and run.k8s then
      local namespaces, err = ckf.profile_namespaces(run.k8s, ckf.kubeflow_model(run.cfg))
      if not namespaces then
        check(run, target, "fail", "cannot list the profile namespaces: " .. err.message, true)
        run.targets[#run.targets + 1] = target
      elseif #namespaces == 0 then
        local why = "no Kubeflow profile namespaces, so kubeflow-profiles sends no user-workloads spec"
        check(run, target, "warn", why .. ": skipped")
        run.skipped[#run.skipped + 1] = { target = target, reason = why }
      else
        run.targets[#run.targets + 1] = target
      end
    else
      run.targets[#run.targets + 1] = target
    end
  end
end

local function running_workflows(client)
  local items, err = client:list("workflows.argoproj.io", { all_namespaces = true })
  if not items then return nil, err end
  local n = 0
  for _, w in ipairs(items) do
    local phase = w.status and w.status.phase
    if phase == nil or phase == "Running" or phase == "Pending" then n = n + 1 end
  end
  return n
end

local function running_experiments(client)
  local items, err = client:list("experiments.kubeflow.org", { all_namespaces = true })
  if not items then return nil, err end
  local n = 0
  for _, e in ipairs(items) do
    local done = false
    for _, c in ipairs(e.status and e.status.conditions or {}) do
      if (c.type == "Succeeded" or c.type == "Failed") and c.status == "True" then done = true end
    end
    if not done then n = n + 1 end
  end
  return n
end

local function running_notebooks(client)
  local items, err = client:list("notebooks.kubeflow.org", { all_namespaces = true })
  if not items then return nil, err end
  local n = 0
  for _, nb in ipairs(items) do
    local ann = nb.metadata.annotations or {}
    if not ann["kubeflow-resource-stopped"] then n = n + 1 end
  end
  return n
end

--- A CRD that is not installed counts as nothing running.
local function count_or_absent(run, name, counter, client, level, what)
  local n, err = counter(client)
  if n == nil and errors.is(err, "k8s.unknown_resource") then return check(run, name, "ok", "not installed") end
  if n == nil then return check(run, name, "fail", err.message, true) end
  if n > 0 then return check(run, name, level, string.format("%d %s", n, what), true) end
  check(run, name, "ok", "none running")
end

local function check_kubernetes(run)
  local kcfg = run.cfg.kubernetes
  local client, err = ckf.k8s_client(run.cfg)
  if not client then
    return check(run, "kubernetes", kcfg.required and "fail" or "warn",
      err.message .. ": cannot check for running pipelines", true)
  end
  run.k8s = client
  count_or_absent(run, "pipelines", running_workflows, client, "fail", "pipeline run(s) running: stop them first")
  count_or_absent(run, "experiments", running_experiments, client, "fail",
    "Katib experiment(s) running: stop them first")
  count_or_absent(run, "notebooks", running_notebooks, client, "warn", "notebook(s) running (a hook can stop them)")
  local classes = client:list("storageclasses.storage.k8s.io") or {}
  for _, sc in ipairs(classes) do
    if (sc.provisioner or ""):find("microk8s", 1, true) or (sc.provisioner or ""):find("hostpath", 1, true) then
      return check(run, "volumes", "warn", "storage class " .. sc.metadata.name .. " (" .. sc.provisioner
        .. "): full volume backups are not supported here, as the guide says")
    end
  end
  check(run, "volumes", "ok", "no hostpath storage class")
end

local function check_s3(run)
  local s = run.cfg.s3
  if s == json.null then return check(run, "s3", "ok", "not configured: S3 checks and manifest upload skipped") end
  local client, err = s3.client(s)
  if client then
    local ok, herr = client:head_bucket(s.bucket)
    if ok then
      run.s3 = client
      return check(run, "s3", "ok", "bucket " .. s.bucket .. " reachable")
    end
    err = herr
  end
  check(run, "s3", "fail", err.message, true)
end

local function check_lock(run)
  local held, err = ckf.lock(run.cfg, run.state_dir, run.k8s, { set = run.id })
  if not held then return check(run, "lock", "fail", err.message) end
  run.lock = held
  check(run, "lock", "ok", "no other ckfb run on these models" .. (held.lease and " (here, or by the Lease "
    .. held.lease.namespace .. "/ckfb)" or ""))
end

local function preflight(run)
  -- the juju-side checks run together; each writes its own lines
  if check_juju(run) then
    task.all { function() check_velero(run) end, function() check_databases(run) end,
      function() check_kubernetes(run) end, function() check_s3(run) end }
    check_targets(run)
  end
  check_lock(run)
  local ok, herr = run_hooks(run, "preflight")
  if not ok then check(run, "hooks", "fail", herr.message) end
  local refused = false
  for _, c in ipairs(run.checks) do
    if c.status == "fail" and not (run.opts.force and c.overridable) then refused = true end
  end
  return not refused
end

local function print_checks(run)
  io.stderr:write("preflight:\n")
  for _, c in ipairs(run.checks) do
    local forced = c.status == "fail" and run.opts.force and c.overridable
    io.stderr:write(string.format("  %-5s %-12s %s%s\n", forced and "FORCE" or c.status:upper(), c.name, c.detail or "",
      (c.status == "fail" and c.overridable and not forced) and " (--force overrides)" or ""))
  end
end

-------------------------------------------------------------------- plan

local function split(target)
  return target:match("^([^:]+):(.+)$")
end

local function related(st, app, endpoint, other)
  local a = st and st.applications[app]
  for _, r in ipairs(a and a.relations and a.relations[endpoint] or {}) do
    if r["related-application"] == other then return true end
  end
  return false
end

-- forward: the step functions below
local grow, wait_ready, create_database_backup, backup_velero, verify, save_manifest

local function velero_command(cfg, target)
  return string.format("juju run -m %s %s/leader create-backup target=%s model=%s --wait %s", cfg.models.velero,
    cfg.velero.app, target, ckf.kubeflow_model(cfg), juju.go_duration(cfg.velero.wait))
end

--- The database's record in the run (made when its chain starts: an interrupt finds it).
local function database_result(run, db)
  for _, r in ipairs(run.databases) do
    if r.app == db then return r end
  end
  local r = { app = db, status = "running" }
  run.databases[#run.databases + 1] = r
  return r
end

local function setup_steps(run, p)
  local cfg, st = run.cfg, run.kubeflow_status
  local kf, vm, v = cfg.models.kubeflow, cfg.models.velero, cfg.velero
  local function change(id, label, already_done, by_hand, fn)
    p:add { stage = "setup", chain = "setup", id = id, label = label, already_done = already_done,
      by_hand = by_hand, run = function()
        local r, err = fn()
        if not r then return nil, err end
        run.changes[#run.changes + 1] = id
        return { detail = r.changed and "done" or "already there" }
      end }
  end
  change("offer", string.format("offer %s:%s as %s (model %s)", v.app, v.endpoint, v.offer, vm),
    run.velero_status and (run.velero_status.offers or {})[v.offer] ~= nil,
    string.format("juju offer %s.%s:%s %s", vm, v.app, v.endpoint, v.offer),
    function() return juju.offer(v.app .. ":" .. v.endpoint, v.offer, { model = vm }) end)
  change("consume", string.format("consume %s.%s (model %s)", vm, v.offer, kf),
    st and (st["application-endpoints"] or {})[v.offer] ~= nil,
    string.format("juju consume -m %s %s.%s %s", kf, vm, v.offer, v.offer),
    function() return juju.consume(vm .. "." .. v.offer, v.offer, { model = kf }) end)
  for _, target in ipairs(cfg.targets) do
    local app, ep = split(target)
    change("integrate " .. target, string.format("integrate %s with %s", target, v.offer),
      related(st, app, ep, v.offer), string.format("juju integrate -m %s %s %s", kf, target, v.offer),
      function() return juju.integrate(target, v.offer, { model = kf }) end)
  end
end

local function database_steps(run, p, db)
  local cfg, kf = run.cfg, run.cfg.models.kubeflow
  local units, need = run.kubeflow_status and #juju.units(run.kubeflow_status, db) or 0, run.db_units[db]
  local function failed(err)
    local r = database_result(run, db)
    r.status, r.error = "failed", err.message
  end
  local chain = "db:" .. db
  p:add { stage = "backup", chain = chain, id = "scale " .. db, on_error = failed,
    label = string.format("scale %s to %d units (has %d; %s)", db, need.needed, units, need.why),
    by_hand = string.format("juju scale-application -m %s %s %d", kf, db, need.needed),
    run = function()
      database_result(run, db)
      local had, serr = grow(run, db, need.needed)
      if not had then return nil, serr end
      if had >= need.needed then return { detail = had .. " units already" } end
      return { detail = string.format("%d -> %d units", had, need.needed) }
    end }
  p:add { stage = "backup", chain = chain, id = "ready " .. db, on_error = failed,
    label = "wait until every " .. db .. " unit is active and idle",
    by_hand = string.format("juju wait-for application -m %s %s --query='status==\"active\"' --timeout %s", kf, db,
      juju.go_duration(cfg.database.wait)),
    run = function()
      local s, werr = wait_ready(run, db, need.needed)
      if not s then return nil, werr end
      return { detail = #juju.units(s, db) .. " units active and idle" }
    end }
  p:add { stage = "backup", chain = chain, id = "backup " .. db, on_error = failed,
    label = "create-backup on a non-primary " .. db .. " unit",
    by_hand = string.format("juju run -m %s %s/leader get-cluster-status   (then create-backup on a "
      .. "non-primary unit, --wait %s)", kf, db, juju.go_duration(cfg.database.wait)),
    run = function()
      local r, berr = create_database_backup(run, db)
      if not r then return nil, berr end
      local result = database_result(run, db)
      result.status, result.unit, result.primary, result.backup_id = "created", r.unit, r.primary, r.backup_id
      return r
    end }
end

--- Every step, in order: the chains of a stage run in parallel. Velero's create-backups
-- are one chain: velero runs its actions one at a time on its unit (its charmcraft.yaml
-- declares no `parallel`), each polling its Backup for up to five minutes, so the targets
-- go in order, each with the whole wait, rather than all at once racing one --wait.
local function make_plan(run, view)
  local p = plan.new { view = view, context = function(event, step) return context(run, event, step) end }
  setup_steps(run, p)
  for _, db in ipairs(run.cfg.databases) do database_steps(run, p, db) end
  for _, target in ipairs(run.targets) do
    p:add { stage = "backup", chain = "velero", id = "backup " .. target, by_hand = velero_command(run.cfg, target),
      label = string.format("velero create-backup target=%s model=%s", target, ckf.kubeflow_model(run.cfg)),
      run = function() return backup_velero(run, target) end }
  end
  p:add { stage = "verify", id = "verify", run = function() return verify(run) end,
    label = "list-backups on velero and each database" .. (run.s3 and "; objects in S3" or "") }
  p:add { stage = "record", id = "record", run = function() return save_manifest(run, run.s3) end,
    label = "write the backup-set manifest" .. (run.s3 and " (local and S3)" or " (local)") }
  return p
end

-------------------------------------------------------------------- steps

--- The primary and the healthy non-primary units, from get-cluster-status.
local function topology(t)
  local status = t.results.status
  local topo = type(status) == "table" and status.defaultreplicaset and status.defaultreplicaset.topology
  if type(topo) ~= "table" then return nil end
  local primary, others = nil, {}
  for label, member in pairs(topo) do
    local unit = label:gsub("%-(%d+)$", "/%1")
    if member.memberrole == "primary" or member.mode == "r/w" then primary = unit
    elseif member.status == "online" then others[#others + 1] = unit end
  end
  table.sort(others, function(a, b) return tonumber(a:match("%d+$")) < tonumber(b:match("%d+$")) end)
  return primary, others
end

--- Scales a database up to n units, remembering the size it had; -> the units it had | nil, err.
function grow(run, db, n)
  local model = { model = run.cfg.models.kubeflow }
  local s, err = juju.status(model)
  if not s then return nil, err end
  local have = #juju.units(s, db)
  if have >= n then return have end
  if run.scaled[db] == nil then run.scaled[db] = have end
  local ok, serr = juju.scale(db, n, model)
  if not ok then return nil, serr end
  return have
end

function wait_ready(run, db, n)
  return juju.wait(function(s) return juju.is_active_idle(s, db) and #juju.units(s, db) >= n end,
    { model = run.cfg.models.kubeflow, timeout = run.cfg.database.wait, delay = run.cfg.poll })
end

--- create-backup on a healthy non-primary unit, the topology read again when the primary
-- moves or another backup runs; a cluster the charm finds too small grows to three.
function create_database_backup(run, db)
  local cfg, kf = run.cfg, run.cfg.models.kubeflow
  local last
  for attempt = 1, cfg.database.retries do
    local t, terr = juju.run(db .. "/leader", "get-cluster-status", nil, { model = kf, wait = 300 })
    if not t then return nil, terr end
    local primary, candidates = topology(t)
    if not candidates or #candidates == 0 then
      last = errors.new("backup.no_secondary", db .. ": no healthy non-primary unit in the cluster topology")
    else
      local b, bfail = juju.run(candidates[1], "create-backup", nil, { model = kf, wait = cfg.database.wait })
      if b then
        return { unit = candidates[1], primary = primary, backup_id = b.results["backup-id"],
                 detail = "backup " .. tostring(b.results["backup-id"]) .. " on " .. candidates[1] }
      end
      last = bfail
      local why = bfail.detail and bfail.detail.task and bfail.detail.task.message or ""
      if why == ckf.MYSQL_UNHEALTHY and #candidates + 1 < 3 then
        log.warn("%s: the charm refused a backup: %s; scaling to 3 units (attempt %d of %d)", db, why, attempt,
          cfg.database.retries)
        local grown, gerr = grow(run, db, 3)
        if grown then grown, gerr = wait_ready(run, db, 3) end
        if not grown then return nil, gerr end
      elseif not (why:find("primary", 1, true) or why:find("in progress", 1, true)) then
        return nil, bfail
      else
        log.warn("%s: %s; reading the topology again (attempt %d of %d)", db, why, attempt, cfg.database.retries)
      end
    end
    task.sleep(cfg.poll)
  end
  return nil, last
end

--- Follows a create-backup that outlived its --wait (the action keeps running on the
-- unit): -> the finished task | nil, err (code backup.running while it still runs).
local function follow_task(run, id)
  local opts = { model = run.cfg.models.velero }
  local deadline = loop.now() + run.cfg.velero.wait
  while true do
    local t, err = juju.show_task(id, opts)
    if not t then return nil, err end
    if t.status == "completed" then return t end
    if t.status ~= "running" and t.status ~= "pending" then
      return nil, errors.new("juju.action_failed", string.format("task %s %s: %s", id, tostring(t.status),
        tostring(t.message or "")), { task = t, task_id = id })
    end
    if loop.now() + run.cfg.poll > deadline then
      return nil, errors.new("backup.running", string.format("task %s is still %s after %s; follow it with "
        .. "juju show-task -m %s %s", id, t.status, juju.go_duration(2 * run.cfg.velero.wait), opts.model, id),
        { task_id = id })
    end
    task.sleep(run.cfg.poll)
  end
end

function backup_velero(run, target)
  local cfg = run.cfg
  local result = { target = target, status = "running" }   -- recorded now: an interrupt finds it
  run.velero[#run.velero + 1] = result
  local t, err = juju.run(cfg.velero.app .. "/leader", "create-backup",
    { target = target, model = ckf.kubeflow_model(cfg) }, { model = cfg.models.velero, wait = cfg.velero.wait })
  if not t and errors.is(err, "juju.timeout") and err.detail.task_id then
    log.warn("%s: no result within its wait; following task %s", target, err.detail.task_id)
    t, err = follow_task(run, err.detail.task_id)
  end
  if not t then
    result.status, result.error = "failed", err.message
    if errors.is(err, "backup.running") then result.status, result.task_id = "running", err.detail.task_id end
    return nil, err
  end
  result.status, result.backup_name = "created", t.results["backup-name"]
  return { backup_name = result.backup_name, detail = tostring(result.backup_name) }
end

-------------------------------------------------------------------- verify and record

local function verify_velero(run)
  local by_name, err = ckf.list_velero(run.cfg)
  if not by_name then return nil, err end
  local storage = run.velero_storage
  for _, r in ipairs(run.velero) do
    local found = r.backup_name and by_name[r.backup_name]
    r.backup_uid, r.phase, r.started = found and found.uid, found and found.phase, found and found.start
    r.verified = found ~= nil and found.phase == "Completed"
    if r.verified and run.s3 and storage then
      r.bucket, r.s3_key = storage.bucket, ckf.velero_key(storage.path, r.backup_name)
      r.verified = run.s3:stat(r.bucket, r.s3_key) ~= nil
    end
  end
  return true
end

local function verify_database(run, r)
  if not r.backup_id then return true end
  local backups, err = ckf.list_mysql(run.cfg, r.app)
  if not backups then return nil, err end
  r.verified = backups[r.backup_id] == "finished"
  local storage = run.db_storage[r.app]
  if r.verified and run.s3 and storage then
    r.bucket, r.s3_key = storage.bucket, ckf.mysql_key(storage.path, r.backup_id)
    r.verified = run.s3:stat(r.bucket, r.s3_key) ~= nil
  end
  return true
end

--- The bucket and path of velero's s3-integrator: Velero writes under that path.
local function velero_storage(run)
  local st = run.velero_status
  local rel = st and has_relation(st.applications[run.cfg.velero.app], { "s3-credentials" })
  if not rel then return nil end
  local settings = juju.config(rel[1]["related-application"], nil, { model = run.cfg.models.velero })
  return settings and settings.bucket and { bucket = settings.bucket, path = settings.path or "" }
end

function verify(run)
  run.velero_storage = run.s3 and velero_storage(run)
  local jobs = { function() return verify_velero(run) end }
  for _, r in ipairs(run.databases) do jobs[#jobs + 1] = function() return verify_database(run, r) end end
  local results = { task.all(jobs) }
  for i = 1, #jobs do
    if not results[i] then return nil, errors.new("backup.verify", "a list-backups call failed") end
  end
  local bad = 0
  for _, r in ipairs(run.velero) do if not r.verified then bad = bad + 1 end end
  for _, r in ipairs(run.databases) do if not r.verified then bad = bad + 1 end end
  if bad > 0 then return nil, errors.new("backup.unverified", bad .. " backup(s) not found or not complete") end
  return { detail = "every backup listed and complete" .. (run.s3 and ", objects in S3" or "") }
end

local function manifest(run)
  return {
    kind = "ckfb.backup-set", version = 1, id = run.id, status = run.status, ckfb = sys.version,
    started = run.started, finished = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    models = run.cfg.models, velero = json.array(run.velero), databases = json.array(run.databases),
    skipped = json.array(run.skipped), scaled = run.scaled, changes = json.array(run.changes),
  }
end


--- Writes the manifest (atomically, locally; then to S3 unless the loop is stopping).
function save_manifest(run, store)
  local path, where = sets.save(run.cfg, run.state_dir, manifest(run), store)
  if not path then return nil, where end
  run.manifest_path, run.manifest_s3 = path, where
  return { detail = path .. (where and (", " .. where) or "") }
end

local function record(run)
  return run.plan:run_step(run.plan:get("record"))
end

-------------------------------------------------------------------- report

local function next_steps(run)
  local out, cfg, retry = {}, run.cfg, false
  for _, r in ipairs(run.velero) do
    if r.status == "running" then
      out[#out + 1] = string.format("juju show-task -m %s %s   (%s: still running)", cfg.models.velero, r.task_id,
        r.target)
    elseif r.status ~= "created" then
      retry = true
      if r.status == "interrupted" then
        out[#out + 1] = string.format("juju run -m %s %s/leader list-backups model=%s   (%s was being backed up "
          .. "when ckfb stopped: its backup may exist)", cfg.models.velero, cfg.velero.app, ckf.kubeflow_model(cfg),
          r.target)
      end
      out[#out + 1] = velero_command(cfg, r.target)
    end
  end
  for _, target in ipairs(run.targets) do
    local started = false
    for _, r in ipairs(run.velero) do started = started or r.target == target end
    if not started and run.status ~= "refused" then retry = true; out[#out + 1] = velero_command(cfg, target) end
  end
  for _, r in ipairs(run.databases) do
    if r.status ~= "created" then
      retry = true
      if r.status == "interrupted" then
        out[#out + 1] = string.format("juju run -m %s %s/leader list-backups   (a backup was being made when ckfb "
          .. "stopped: it may exist)", cfg.models.kubeflow, r.app)
      end
      out[#out + 1] = string.format("juju run -m %s %s/leader get-cluster-status   (then create-backup on a "
        .. "non-primary unit)", cfg.models.kubeflow, r.app)
    end
  end
  for db, n in pairs(run.scaled) do
    if not run.scaled_back[db] then
      out[#out + 1] = string.format("juju scale-application -m %s %s %d   (this run scaled it up)", cfg.models.kubeflow,
        db, n)
    end
  end
  if retry or run.status == "failed" or run.status == "interrupted" then
    table.insert(out, 1, "run `ckfb backup` again (setup is idempotent), or by hand:")
  end
  return out
end

local function report(run)
  local r = manifest(run)
  r.checks, r.plan, r.next_steps, r.error = run.checks, run.plan and run.plan:describe(), json.array(next_steps(run)),
    run.error
  r.manifest_path, r.manifest_s3 = run.manifest_path, run.manifest_s3
  return r
end

local function summary(run)
  local lines = { string.format("backup set %s: %s", run.id, run.status) }
  for _, r in ipairs(run.velero) do
    lines[#lines + 1] = string.format("  velero   %-48s %-8s %s%s", r.target, r.status, r.backup_name or r.error or "",
      r.verified and " (verified)" or "")
  end
  for _, r in ipairs(run.databases) do
    lines[#lines + 1] = string.format("  database %-48s %-8s %s%s", r.app .. (r.unit and (" on " .. r.unit) or ""),
      r.status, r.backup_id or r.error or "", r.verified and " (verified)" or "")
  end
  if run.manifest_path then lines[#lines + 1] = "manifest: " .. run.manifest_path end
  local steps = next_steps(run)
  if #steps > 0 then
    lines[#lines + 1] = "next:"
    for _, s in ipairs(steps) do lines[#lines + 1] = "  " .. s end
  end
  io.stderr:write(table.concat(lines, "\n"), "\n")
end

--- Writes the report where asked; false when the report file could not be written.
local function emit_report(run)
  local r = report(run)
  local text = json.encode(r, { pretty = true })
  local written = true
  if run.opts.report then
    local ok, err = write_file(run.opts.report, text .. "\n")
    if not ok then
      log.error("the report was not written: %s (the manifest is %s)", err.message, tostring(run.manifest_path))
      written = false
    end
  end
  if run.opts.json then print(text) end
  return written
end

-------------------------------------------------------------------- the run

local function restore_scale(run)
  for db, n in pairs(run.scaled) do
    if juju.scale(db, n, { model = run.cfg.models.kubeflow }) then run.scaled_back[db] = true end
  end
end

local function execute(run)
  local ok, err = run_hooks(run, "before_backup")
  if not ok then return nil, err end
  ok, err = run.plan:run_stage("setup")
  if not ok then return nil, err end
  run.plan:run_stage("backup")   -- every chain starts now; each records its components as it goes
  run.plan:run_stage("verify")   -- its verdict is on each component
  return true
end

local function outcome(run)
  local created, failed = 0, 0
  for _, list in ipairs { run.velero, run.databases } do
    for _, r in ipairs(list) do
      if r.status == "created" and r.verified ~= false then created = created + 1 else failed = failed + 1 end
    end
  end
  if failed == 0 and created > 0 then return "complete", EXIT.ok end
  if created > 0 then return "partial", EXIT.partial end
  return "failed", EXIT.failed
end

--- The on_end hooks (notifications): the run is over, so their errors only warn.
local function end_hooks(run)
  local ok, err = run_hooks(run, "on_end")
  if not ok then log.warn("%s", err.message) end
end

local function new_run(cfg, opts, state_dir)
  return {
    cfg = cfg, opts = opts, id = sets.new_id(), started = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    state_dir = state_dir, checks = {}, db_storage = {}, db_units = {}, targets = {}, skipped = {}, velero = {},
    databases = {}, scaled = {}, scaled_back = {}, changes = {}, status = "running",
  }
end

local function main(args)
  local ok, opts = pcall(options.parse, OPTIONS, args)
  if not ok then return usage_error(opts.message or tostring(opts)) end
  if opts.help then print(options.help(OPTIONS)); return EXIT.ok end
  local cfg, cerr = sets.load(opts.config, DEFAULTS)
  if not cfg then return usage_error(cerr.message) end
  for _, hook_file in ipairs(cfg.hooks) do
    local loaded, herr = hooks.load(hook_file)
    if not loaded then return usage_error(herr.message) end
  end
  local state_dir, serr = sets.state_dir(cfg)
  if not state_dir then return usage_error(serr.message) end
  local run = new_run(cfg, opts, state_dir)
  local passed = preflight(run)
  print_checks(run)
  if not passed then
    run.status = "refused"
    if run.lock then run.lock:release() end
    emit_report(run)
    io.stderr:write("ckfb backup: refused by preflight: nothing was changed\n")
    end_hooks(run)
    return EXIT.refused
  end
  local view = not opts.dry_run and progress.new { title = "ckfb backup " .. run.id } or nil
  run.plan = make_plan(run, view)
  if opts.dry_run then
    run.lock:release()
    if opts.json then print(json.encode({ checks = run.checks, plan = run.plan:describe() }, { pretty = true }))
    else print(run.plan:text()) end
    return EXIT.ok
  end
  if not view.live then io.stderr:write(run.plan:text(), "\n") end  -- the live view shows the plan itself
  local called, result, failure = xpcall(execute, function(e) return e end, run)
  local done = called and result == true
  local err = called and failure or result   -- execute's nil, err, or what it raised
  local code
  if done then
    if opts.restore_scale then restore_scale(run) end
    run.status, code = outcome(run)
    local recorded, rerr = record(run)
    if not recorded then run.error = rerr.message; code = code == EXIT.ok and EXIT.partial or code end
    if code == EXIT.ok then
      local hooked, herr = run_hooks(run, "after_backup")
      if not hooked then  -- a site's check after the backup is part of the backup
        run.status, run.error, code = "failed", herr.message, EXIT.failed
        save_manifest(run, run.s3)
      end
    end
    if code ~= EXIT.ok then run_hooks(run, "on_failure") end
  else
    run.status = sys.interrupted() and "interrupted" or "failed"
    run.error = tostring(err)
    for _, list in ipairs { run.velero, run.databases } do
      for _, r in ipairs(list) do
        if r.status == "running" and not r.task_id then r.status = "interrupted" end
      end
    end
    if not sys.interrupted() then
      if opts.restore_scale then restore_scale(run) end
      record(run)
      run_hooks(run, "on_failure")
    else
      save_manifest(run, nil)  -- the loop is stopping: keep to the local file
    end
    code = EXIT.failed
  end
  run.lock:release()
  view:close()
  summary(run)
  if not emit_report(run) and code == EXIT.ok then code = EXIT.failed end  -- asked for, not delivered
  end_hooks(run)
  if not done and sys.interrupted() then error(err, 0) end  -- 130 or 143 from the host
  return code
end

return main({ ... })
