-- ckfb restore: restores a backup set in the order of Canonical's restore
-- guide, with its trap fixed: mysql-k8s restores only with one unit and a
-- backup-id, so each database is scaled to one unit, restored from the
-- set's backup-id, then scaled back to its size.
--   1. scale minio and mlmd to 0 and remove their storage;
--   2. velero restores, in the guide's order, of the set's backups (found by
--      name: a Velero resync gives each Backup a new UID);
--   3. re-import the restored persistent volumes and add the units back;
--   4. each database: one unit, restore backup-id=, back to its size.
-- Before anything destructive, the preflight proves the restore can finish:
-- every backup of the set is listed and complete, juju can import storage
-- on a Kubernetes model, no database is blocked for S3 writes. Every step is
-- verified before the next. On a failure it stops and says where, with the
-- commands to continue by hand.
--   ckfb restore SET_ID | --latest [--components LIST] [--dry-run] [--json] [--report FILE]
-- Exit codes: 0 restored, 1 failed, 2 usage or configuration, 3 refused by preflight.
local juju = require "ckfb.juju"
local ckf = require "ckfb.ckf"
local json = require "ckfb.json"
local log = require "ckfb.log"
local errors = require "ckfb.error"
local hooks = require "ckfb.hooks"
local options = require "ckfb.options"
local progress = require "ckfb.progress"
local sets = require "ckfb.sets"
local file = require "ckfb.file"
local sys = require "ckfb.core.sys"

local OPTIONS = {
  usage = "ckfb restore SET_ID | --latest [options]",
  summary = "Restores a backup set recorded by ckfb backup (see ckfb list).",
  { "--config", "FILE", "configuration (default $CKFB_CONFIG, ~/.config/ckfb/ckfb.yaml, /etc/ckfb/ckfb.yaml)" },
  { "--latest", nil, "restore the newest set" },
  { "--components", "LIST", "restore only these (comma-separated: minio, mlmd, the velero targets, the databases)" },
  { "--dry-run", nil, "run the preflight, print the plan, change nothing" },
  { "--json", nil, "print the plan (--dry-run) or the report as JSON on stdout" },
  { "--report", "FILE", "also write the JSON report to FILE" },
  { "--yes", nil, "do not ask for the set id to be typed (required without a terminal)" },
  epilog = { "", "exit codes: 0 restored, 1 failed, 2 usage or configuration error, 3 refused by preflight" },
}

local GUIDE_ORDER = { "minio", "mlmd", "profiles-backup-config", "user-workloads-backup-config" }

local function order_of(target)
  for i, key in ipairs(GUIDE_ORDER) do
    if target:find(key, 1, true) then return i end
  end
  return #GUIDE_ORDER + 1
end

--- The components of a set that the run restores ({} = all of them).
local function selected(opts)
  if not opts.components then return nil end
  local pick = {}
  for name in opts.components:gmatch("[^,%s]+") do pick[name] = true end
  return pick
end

local function wanted(pick, ...)
  if not pick then return true end
  for i = 1, select("#", ...) do if pick[select(i, ...)] then return true end end
  return false
end

-------------------------------------------------------------------- steps

local function wait_for(cfg, app, predicate, what)
  local st, err = juju.wait(function(s) return predicate(s, app) end,
    { model = cfg.models.kubeflow, timeout = cfg.database.wait, delay = cfg.poll })
  if not st then return nil, errors.new(err.code, app .. ": " .. what .. ": " .. err.message) end
  return true
end

local function units_are(n)
  return function(s, app)
    return #juju.units(s, app) == n and (n == 0 or juju.is_active_idle(s, app))
  end
end

--- n units, each active and idle; the application active, or blocked only by the S3
-- block a restore leaves (mysql-k8s backups.py _on_restore).
local function database_units_are(n)
  return function(s, app)
    if #juju.units(s, app) ~= n then return false end
    if juju.is_active_idle(s, app) then return true end
    local a = s.applications[app]
    if not ckf.s3_block(a) then return false end
    for _, unit in pairs(a.units or {}) do
      if (unit["workload-status"] or {}).current ~= "active" or (unit["juju-status"] or {}).current ~= "idle" then
        return false
      end
    end
    return true
  end
end

--- The restored persistent volume of a storage: the newest claim Juju labelled with its
-- name in the model's namespace (sidecar claims are named <app>-<storage>-<id>-<app>-<n>,
-- juju caas/kubernetes/provider/application/application.go), and the volume bound to it.
local function restored_pv(cfg, storage_name)
  local client, err = ckf.k8s_client(cfg)
  if not client then return nil, err end
  local claims, lerr = client:list("persistentvolumeclaims", { namespace = ckf.kubeflow_model(cfg),
    label_selector = "storage.juju.is/name=" .. storage_name })
  if not claims then return nil, lerr end
  table.sort(claims, function(a, b)
    return (a.metadata.creationTimestamp or "") > (b.metadata.creationTimestamp or "")
  end)
  local claim = claims[1]
  local volume = claim and claim.spec and claim.spec.volumeName
  if type(volume) ~= "string" or volume == "" then
    return nil, errors.new("restore.no_volume", string.format("no restored volume claim labelled "
      .. "storage.juju.is/name=%s and bound in namespace %s", storage_name, ckf.kubeflow_model(cfg)))
  end
  return volume
end

--- Every step of the restore: {id, label, command (to run by hand), run = fn -> ok | nil, err}.
--- What the run restores: the set's velero backups in the guide's order, the volumes
-- they bring back, and the databases.
local function components(cfg, set, pick)
  local velero, volumes, databases = {}, {}, {}
  for _, v in ipairs(set.velero or {}) do
    if wanted(pick, v.target, (v.target:match("^[^:]+")), (v.target:match(":(.+)$"))) then velero[#velero + 1] = v end
  end
  table.sort(velero, function(a, b) return order_of(a.target) < order_of(b.target) end)
  for _, v in ipairs(velero) do
    local app = v.target:match("^[^:]+")
    if cfg.volumes[app] then volumes[#volumes + 1] = { app = app, storage = cfg.volumes[app] } end
  end
  for _, d in ipairs(set.databases or {}) do
    if wanted(pick, d.app) then databases[#databases + 1] = d end
  end
  return velero, volumes, databases
end

local function make_plan(cfg, set, state, pick)
  local kf, vm = cfg.models.kubeflow, cfg.models.velero
  local plan = {}
  local function add(id, label, command, run)
    plan[#plan + 1] = { id = id, label = label, command = command, run = run }
  end
  local velero, volumes, databases = components(cfg, set, pick)
  for _, vol in ipairs(volumes) do
    add("scale " .. vol.app .. " 0", "scale " .. vol.app .. " to 0",
      "juju scale-application -m " .. kf .. " " .. vol.app .. " 0", function()
        local ok, err = juju.scale(vol.app, 0, { model = kf })
        if not ok then return nil, err end
        return wait_for(cfg, vol.app, units_are(0), "scaling to 0")
      end)
    local ids = state.storage_of[vol.storage] or {}
    add("remove " .. vol.storage, "remove the storage " .. (#ids > 0 and table.concat(ids, ", ") or vol.storage),
      "juju remove-storage -m " .. kf .. " " .. table.concat(ids, " "), function()
        if #ids == 0 then return true end
        return juju.remove_storage(ids, { model = kf })
      end)
  end
  for _, v in ipairs(velero) do
    local uid = state.velero_uid[v.backup_name]
    add("restore " .. v.target, "velero restore " .. v.target .. " from " .. v.backup_name .. " (" .. uid .. ")",
      string.format("juju run -m %s %s/leader restore backup-uid=%s --wait %s", vm, cfg.velero.app, uid,
        juju.go_duration(cfg.velero.wait)),
      function()
        return juju.run(cfg.velero.app .. "/leader", "restore", { ["backup-uid"] = uid },
          { model = vm, wait = cfg.velero.wait })
      end)
  end
  for _, vol in ipairs(volumes) do
    local imported
    add("import " .. vol.storage, "re-import the restored volume of " .. vol.storage,
      string.format("kubectl get pvc -n %s -l storage.juju.is/name=%s (the newest, its VOLUME); "
        .. "juju import-filesystem -m %s kubernetes <volume> %s --force", kf, vol.storage, kf, vol.storage), function()
        local pv, err = restored_pv(cfg, vol.storage)
        if not pv then return nil, err end
        imported, err = juju.import_filesystem("kubernetes", pv, vol.storage, { model = kf })
        return imported, err
      end)
    add("add " .. vol.app, "add a " .. vol.app .. " unit with that storage",
      "juju add-unit -m " .. kf .. " " .. vol.app .. " --attach-storage <storage id>", function()
        local ok, err = juju.add_unit(vol.app, { model = kf, attach_storage = imported })
        if not ok then return nil, err end
        return wait_for(cfg, vol.app, units_are(1), "adding the unit")
      end)
  end
  for _, d in ipairs(databases) do
    local size = math.max(state.db_units[d.app] or 1, 1)
    add("scale " .. d.app .. " 1", "scale " .. d.app .. " to 1 unit (mysql-k8s restores only with one)",
      "juju scale-application -m " .. kf .. " " .. d.app .. " 1", function()
        local ok, err = juju.scale(d.app, 1, { model = kf })
        if not ok then return nil, err end
        return wait_for(cfg, d.app, units_are(1), "scaling to 1")
      end)
    add("restore " .. d.app, "restore " .. d.app .. " backup-id=" .. tostring(d.backup_id),
      string.format("juju run -m %s %s/leader restore backup-id=%s --wait %s", kf, d.app, tostring(d.backup_id),
        juju.go_duration(cfg.database.wait)),
      function()
        local t, err = juju.run(d.app .. "/leader", "restore", { ["backup-id"] = d.backup_id },
          { model = kf, wait = cfg.database.wait })
        if not t then return nil, err end
        state.restored[#state.restored + 1] = d.app
        return wait_for(cfg, d.app, database_units_are(1), "after the restore")
      end)
    if size > 1 then
      add("scale " .. d.app .. " back", "scale " .. d.app .. " back to " .. size .. " units",
        "juju scale-application -m " .. kf .. " " .. d.app .. " " .. size, function()
          local ok, err = juju.scale(d.app, size, { model = kf })
          if not ok then return nil, err end
          return wait_for(cfg, d.app, database_units_are(size), "scaling back")
        end)
    end
  end
  return plan
end

-------------------------------------------------------------------- preflight

--- Every velero backup of the run is listed by the charm, by name, and Completed;
-- its UID today is the one to restore (a Velero resync gives a new one).
local function check_velero(cfg, velero, state, check)
  if #velero == 0 then return end
  local listed, err = ckf.list_velero(cfg)
  if not listed then return check("velero", "fail", err.message) end
  local bad = {}
  for _, v in ipairs(velero) do
    local found = listed[v.backup_name]
    if not found then
      bad[#bad + 1] = v.backup_name .. " is gone (Velero deletes a backup after its TTL, 30 days by default)"
    elseif found.phase ~= "Completed" then
      bad[#bad + 1] = v.backup_name .. " is " .. tostring(found.phase)
    else
      state.velero_uid[v.backup_name] = found.uid
    end
  end
  if #bad > 0 then return check("velero", "fail", table.concat(bad, "; ")) end
  check("velero", "ok", #velero .. " backup(s) listed and Completed")
end

--- Every database backup is listed by its charm as finished; no database is blocked for S3.
local function check_databases(cfg, st, databases, check)
  for _, d in ipairs(databases) do
    local block = ckf.s3_block(st.applications[d.app])
    local listed, err = ckf.list_mysql(cfg, d.app)
    if block then
      check(d.app, "fail", block .. ": move it to a new S3 path first (juju config -m " .. cfg.models.kubeflow
        .. " <its s3-integrator> path=<new path>)")
    elseif not listed then
      check(d.app, "fail", err.message)
    elseif listed[d.backup_id] ~= "finished" then
      check(d.app, "fail", "backup " .. tostring(d.backup_id) .. " is " .. (listed[d.backup_id] or "not listed")
        .. " in " .. d.app .. " list-backups")
    else
      check(d.app, "ok", "backup " .. d.backup_id .. " listed, finished")
    end
  end
end

--- Re-importing volumes needs juju able to import storage on Kubernetes, and the claims readable.
local function check_volumes(cfg, st, volumes, check)
  if #volumes == 0 then return end
  local client_version, err = juju.version()
  if not client_version then return check("storage", "fail", err.message) end
  local flags = os.getenv("JUJU_DEV_FEATURE_FLAGS")
  local gated = ckf.storage_import_gate(client_version, flags)
    or ckf.storage_import_gate(tostring((st.model or {}).version), flags)
  if gated then return check("storage", "fail", gated) end
  local client, kerr = ckf.k8s_client(cfg)
  local claims
  if client then
    claims, kerr = client:list("persistentvolumeclaims", { namespace = ckf.kubeflow_model(cfg), limit = 1 })
  end
  if not claims then
    return check("storage", "fail", "cannot read the volume claims of namespace " .. ckf.kubeflow_model(cfg) .. ": "
      .. kerr.message)
  end
  check("storage", "ok", "juju " .. client_version .. " imports storage on Kubernetes; claims readable")
end

local function preflight(cfg, set, pick, opts)
  local checks = {}
  local state = { storage_of = {}, db_units = {}, velero_uid = {}, restored = {}, integrator = {} }
  local function check(name, status, detail) checks[#checks + 1] = { name = name, status = status, detail = detail } end
  local st, err = juju.status { model = cfg.models.kubeflow }
  if not st then check("juju", "fail", err.message); return checks, state end
  check("juju", "ok", "model " .. cfg.models.kubeflow .. " reachable")
  for _, d in ipairs(set.databases or {}) do
    state.db_units[d.app] = #juju.units(st, d.app)
    local rels = ((st.applications[d.app] or {}).relations or {})["s3-parameters"]
    state.integrator[d.app] = rels and rels[1] and rels[1]["related-application"] or "<its s3-integrator>"
  end
  local storage = juju.storage { model = cfg.models.kubeflow } or {}
  for id in pairs(storage) do
    local name = id:match("^(.+)/%d+$")
    if name then
      state.storage_of[name] = state.storage_of[name] or {}
      table.insert(state.storage_of[name], id)
    end
  end
  local velero, volumes, databases = components(cfg, set, pick)
  local missing = {}
  for _, v in ipairs(velero) do
    if v.status ~= "created" or type(v.backup_name) ~= "string" then missing[#missing + 1] = v.target end
  end
  for _, d in ipairs(databases) do
    if d.status ~= "created" or type(d.backup_id) ~= "string" then missing[#missing + 1] = d.app end
  end
  if #missing > 0 then
    check("set", "fail", "the set lacks " .. table.concat(missing, ", ")
      .. (pick and "" or ": name what to restore with --components"))
    return checks, state
  end
  check("set", "ok", set.id .. " (" .. tostring(set.status) .. ")"
    .. (pick and ", components " .. opts.components or ""))
  check_velero(cfg, velero, state, check)
  check_databases(cfg, st, databases, check)
  check_volumes(cfg, st, volumes, check)
  return checks, state
end

-------------------------------------------------------------------- confirmation

--- A restore scales minio and mlmd to 0 and removes their storage: on a terminal the
-- operator types the set id; without one, --yes must say so. -> true | nil, message, exit code
local function confirm(set, plan, opts)
  if opts.yes then return true end
  if not sys.isatty(0) or not sys.isatty(2) then
    return nil, "a restore changes the running CKF: give --yes to run it without a terminal", 2
  end
  io.stderr:write(string.format("This restore runs %d steps on the live deployment, starting with:\n", #plan))
  for i = 1, math.min(3, #plan) do io.stderr:write("  ", plan[i].label, "\n") end
  io.stderr:write("Type the set id (", set.id, ") to go on: ")
  local answer = io.stdin:read("l")
  if answer ~= set.id then return nil, "not confirmed: nothing was changed", 1 end
  return true
end

-------------------------------------------------------------------- the run

local function main(args)
  local ok, opts, rest = pcall(options.parse, OPTIONS, args)
  if not ok then io.stderr:write("ckfb restore: ", tostring(opts.message or opts), "\n"); return 2 end
  if opts.help then print(options.help(OPTIONS)); return 0 end
  local id = rest[1]
  if not id and not opts.latest then
    io.stderr:write("ckfb restore: name a backup set (see ckfb list) or give --latest\n")
    return 2
  end
  local cfg, cerr = sets.load(opts.config)
  if not cfg then io.stderr:write("ckfb restore: ", cerr.message, "\n"); return 2 end
  for _, hook_file in ipairs(cfg.hooks) do
    local loaded, herr = hooks.load(hook_file)
    if not loaded then io.stderr:write("ckfb restore: ", herr.message, "\n"); return 2 end
  end
  local state_dir, serr = sets.state_dir(cfg)
  if not state_dir then io.stderr:write("ckfb restore: ", serr.message, "\n"); return 2 end
  local entry, ferr = sets.find(cfg, sets.s3(cfg), id)
  if not entry then io.stderr:write("ckfb restore: ", ferr.message, "\n"); return 2 end
  local set, pick = entry.manifest, selected(opts)
  local checks, state = preflight(cfg, set, pick, opts)
  local held, lerr = ckf.lock(cfg, state_dir, ckf.k8s_client(cfg), { set = set.id, restore = true })
  checks[#checks + 1] = { name = "lock", status = held and "ok" or "fail", detail = held and "no other ckfb run"
    or lerr.message }
  io.stderr:write("preflight:\n")
  local refused = false
  for _, c in ipairs(checks) do
    io.stderr:write(string.format("  %-5s %-8s %s\n", c.status:upper(), c.name, c.detail))
    refused = refused or c.status == "fail"
  end
  if refused then
    if held then held:release() end
    io.stderr:write("ckfb restore: refused by preflight: nothing was changed\n")
    return 3
  end
  local plan = make_plan(cfg, set, state, pick)
  if opts.dry_run then
    held:release()
    if opts.json then
      local out = {}
      for i, s in ipairs(plan) do out[i] = { id = s.id, label = s.label, command = s.command } end
      print(json.encode({ set = set.id, checks = checks, plan = out }, { pretty = true }))
    else
      for i, s in ipairs(plan) do io.stderr:write(string.format("%3d. %s\n       %s\n", i, s.label, s.command)) end
    end
    return 0
  end
  local confirmed, why, code = confirm(set, plan, opts)
  if not confirmed then
    held:release()
    io.stderr:write("ckfb restore: ", why, "\n")
    return code
  end
  local run = { set = set, plan = plan, done = {}, cfg = cfg }
  local hok, herr = hooks.run("before_restore", run)
  local failed, failure = nil, hok and nil or herr
  local view = progress.new()
  for _, s in ipairs(plan) do view:add(s.id, s.label) end
  for i, s in ipairs(plan) do
    if failure then break end
    view:start(s.id)
    local result, err = s.run()
    if not result then
      view:finish(s.id, "failed", err and err.message)
      failed, failure = i, err or errors.new("restore.failed", s.label .. " failed")
    else
      view:finish(s.id, "ok")
      run.done[#run.done + 1] = s.id
    end
  end
  held:release()
  local report = { set = set.id, status = failure and "failed" or "restored", done = run.done,
    failed_step = failed and plan[failed].label, error = failure and failure.message, next_steps = {} }
  if failure then
    for i = failed or 1, #plan do report.next_steps[#report.next_steps + 1] = plan[i].command end
  end
  for _, db in ipairs(state.restored) do  -- mysql-k8s backups.py _on_restore blocks S3 writes
    local move = string.format("juju config -m %s %s path=%s-restored-%s   (%s backs up again only to an S3 path "
      .. "of its own: the charm blocks the one it restored from)", cfg.models.kubeflow, state.integrator[db], db,
      os.date("!%Y%m%d"), db)
    report.next_steps[#report.next_steps + 1] = move
    log.warn("%s", move)
  end
  if failure then
    hooks.run("on_failure", run)
    io.stderr:write("ckfb restore: stopped at step ", tostring(failed), " (", report.failed_step or "hooks", "): ",
      report.error, "\nto continue by hand:\n")
    for _, c in ipairs(report.next_steps) do io.stderr:write("  ", c, "\n") end
  else
    hooks.run("after_restore", run)
    log.info("restored backup set %s", set.id)
  end
  local text = json.encode(report, { pretty = true })
  if opts.report then
    local written, werr = file.write(opts.report, text .. "\n")
    if not written then log.error("the report was not written: %s", werr.message) end
  end
  if opts.json then print(text) end
  return failure and 1 or 0
end

return main({ ... })
