-- ckfb backup: the whole Charmed Kubeflow backup in one safe command.
--
-- The procedure of the CKF backup guide, made safe and verifiable:
--   1. preflight (ckfb.ckf.checks): every check runs, then one table; a failure
--      stops the run before anything changes (--force overrides those safe to);
--   2. plan (ckfb.plan): every step below, in order, with what runs in
--      parallel (--dry-run prints it and stops);
--   3. setup, idempotent: the velero offer, its consumption, the integrations;
--   4. backup: each database (ckfb.ckf.mysql) on a non-primary unit read from
--      the real topology, and velero (ckfb.ckf.velero) for every target, all
--      chains started together;
--   5. verify: list-backups everywhere, and the objects in S3 when configured;
--   6. record: one backup-set manifest (ckfb.sets), locally and in S3; a report.
--
-- A site copies this file and changes the declarations (docs/ARCHITECTURE.md, "Forking
-- ckfb"): `ckfb ./backup.lua` runs its copy. Exit codes: 0 ok, 1 failed,
-- 2 usage or configuration, 3 refused by preflight, 4 partial, 130 interrupted.
local juju = require "ckfb.juju"
local ckf = require "ckfb.ckf"
local checks = require "ckfb.ckf.checks"
local mysql = require "ckfb.ckf.mysql"
local velero = require "ckfb.ckf.velero"
local task = require "ckfb.task"
local log = require "ckfb.log"
local errors = require "ckfb.error"
local hooks = require "ckfb.hooks"
local options = require "ckfb.options"
local json = require "ckfb.json"
local progress = require "ckfb.progress"
local plan = require "ckfb.plan"
local metrics = require "ckfb.metrics"
local sets = require "ckfb.sets"
local sys = require "ckfb.sys"

local EXIT = { ok = 0, failed = 1, usage = 2, refused = 3, partial = 4 }

local OPTIONS = {
  usage = "ckfb backup [options]",
  summary = "Backs up Charmed Kubeflow: velero backups of its targets and MySQL backups of its databases, "
    .. "started together, verified, and recorded as one backup set.",
  sets.CONFIG_OPTION,
  sets.MODEL_OPTION,
  { "--dry-run", nil, "run the preflight, print the plan, change nothing" },
  options.FORMAT, options.FORMAT_SHORT, options.JSON,
  { "--report", "FILE", "also write the JSON report to FILE" },
  { "--force", nil, "go on despite preflight failures that are safe to override" },
  { "--restore-scale", nil, "scale the databases back to their size before the run" },
  epilog = { "", "exit codes: 0 ok, 1 failed, 2 usage or configuration error, 3 refused by preflight,",
    "            4 partial (some backups failed), 130 interrupted" },
}

--- The record of one component in the run, made by its first step when it starts (an
-- interrupt finds it); before that, an empty one.
local function component(list, key, name, starting)
  for _, r in ipairs(list) do
    if r[key] == name then return r end
  end
  if not starting then return {} end
  local r = { [key] = name, status = "running" }
  list[#list + 1] = r
  return r
end

-------------------------------------------------------------------- the steps

--- setup: the velero offer, its consumption, one integration per target; each step is
-- already done when juju status shows it (a re-run changes nothing).
local function setup_steps(run, p)
  local cfg, found = run.cfg, run.checks.found
  local kf, vm, v, st = cfg.models.kubeflow, cfg.models.velero, cfg.velero, found.kubeflow_status
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
    found.velero_status and (found.velero_status.offers or {})[v.offer] ~= nil,
    string.format("juju offer %s.%s:%s %s", vm, v.app, v.endpoint, v.offer),
    function() return juju.offer(v.app .. ":" .. v.endpoint, v.offer, { model = vm }) end)
  change("consume", string.format("consume %s.%s (model %s)", vm, v.offer, kf),
    st and (st["application-endpoints"] or {})[v.offer] ~= nil,
    string.format("juju consume -m %s %s.%s %s", kf, vm, v.offer, v.offer),
    function() return juju.consume(vm .. "." .. v.offer, v.offer, { model = kf }) end)
  for _, target in ipairs(cfg.targets) do
    local app, ep = ckf.split_target(target)
    change("integrate " .. target, string.format("integrate %s with %s", target, v.offer),
      ckf.related(st, app, ep, v.offer), string.format("juju integrate -m %s %s %s", kf, target, v.offer),
      function() return juju.integrate(target, v.offer, { model = kf }) end)
  end
end

--- One database's chain: enough units, all ready, then create-backup on a non-primary one.
local function database_steps(run, p, db)
  local cfg, kf, found = run.cfg, run.cfg.models.kubeflow, run.checks.found
  local need, chain = found.units[db], "db:" .. db
  local have = found.kubeflow_status and #juju.units(found.kubeflow_status, db) or 0
  local result = function() return component(run.databases, "app", db) end
  local function failed(err) result().status, result().error = "failed", err.message end
  p:add { stage = "backup", chain = chain, id = "scale " .. db, on_error = failed,
    label = string.format("scale %s to %d units (has %d; %s)", db, need.needed, have, need.why),
    by_hand = string.format("juju scale-application -m %s %s %d", kf, db, need.needed),
    follow_up = function()
      local before = run.scaled[db]
      if before and not run.scaled_back[db] then
        return string.format("juju scale-application -m %s %s %d   (this run scaled it up)", kf, db, before)
      end
    end,
    run = function()
      component(run.databases, "app", db, true)
      local had, err = mysql.grow(cfg, db, need.needed, run.scaled)
      if not had then return nil, err end
      return { detail = had >= need.needed and had .. " units already" or string.format("%d -> %d units", had,
        need.needed) }
    end }
  p:add { stage = "backup", chain = chain, id = "ready " .. db, on_error = failed,
    label = "wait until every " .. db .. " unit is active and idle",
    by_hand = string.format("juju wait-for application -m %s %s --query='status==\"active\"' --timeout %s", kf, db,
      juju.go_duration(cfg.database.wait)),
    run = function()
      local s, err = mysql.wait_ready(cfg, db, need.needed)
      if not s then return nil, err end
      return { detail = #juju.units(s, db) .. " units active and idle" }
    end }
  p:add { stage = "backup", chain = chain, id = "backup " .. db, on_error = failed,
    label = "create-backup on a non-primary " .. db .. " unit",
    by_hand = function()
      local lines = { mysql.backup_command(cfg, db) }
      if result().status == "interrupted" then
        table.insert(lines, 1, string.format("juju run -m %s %s/leader list-backups   (a backup was being made when "
          .. "ckfb stopped: it may exist)", kf, db))
      end
      return lines
    end,
    run = function()
      local b, err = mysql.backup(cfg, db, run.scaled)
      if not b then return nil, err end
      local r = result()
      r.status, r.unit, r.primary, r.backup_id = "created", b.unit, b.primary, b.backup_id
      return b
    end }
end

--- One velero target. Velero's create-backups are one chain: velero runs its actions
-- one at a time on its unit (its charmcraft.yaml declares no `parallel`), each polling
-- its Backup for up to five minutes, so the targets go in order, each with the whole
-- wait, rather than all at once racing one --wait.
local function velero_step(run, p, target)
  local cfg = run.cfg
  local result = function() return component(run.velero, "target", target) end
  p:add { stage = "backup", chain = "velero", id = "backup " .. target,
    label = string.format("velero create-backup target=%s model=%s", target, velero.model(cfg)),
    by_hand = function()
      local r = result()
      if r.status == "running" and r.task_id then
        return string.format("juju show-task -m %s %s   (%s: still running)", cfg.models.velero, r.task_id, target)
      end
      local lines = { velero.backup_command(cfg, target) }
      if r.status == "interrupted" then
        table.insert(lines, 1, velero.list_command(cfg) .. "   (" .. target .. " was being backed up when ckfb "
          .. "stopped: its backup may exist)")
      end
      return lines
    end,
    run = function(step)
      local r = component(run.velero, "target", target, true)
      local client, phase = run.checks.found.k8s, nil
      local watcher = client and task.spawn(velero.watch, client, cfg, target, function(text, now)
        p:note(step, text, now ~= phase)
        phase = now
      end)
      local b, err = velero.backup(cfg, target)
      if watcher then watcher:cancel() end
      if not b then
        r.status, r.error = "failed", err.message
        if errors.is(err, "ckf.still_running") then r.status, r.task_id = "running", err.detail.task_id end
        return nil, err
      end
      r.status, r.backup_name = "created", b.backup_name
      return b
    end }
end

--- verify: each backup is listed by its charm and complete, and its object is in S3.
local function verify(run)
  local cfg, found, s3 = run.cfg, run.checks.found, run.checks.found.s3
  local storage = s3 and velero.storage(cfg, found.velero_status)
  local jobs = { function()
    local listed, err = velero.list(cfg)
    if not listed then return nil, err end
    for _, r in ipairs(run.velero) do
      local b = r.backup_name and listed[r.backup_name]
      r.backup_uid, r.phase, r.started = b and b.uid, b and b.phase, b and b.start
      r.verified = b ~= nil and b.phase == "Completed"
      if r.verified and storage then
        r.bucket, r.s3_key = storage.bucket, velero.key(storage.path, r.backup_name)
        r.verified = s3:stat(r.bucket, r.s3_key) ~= nil
      end
    end
    return true
  end }
  for _, r in ipairs(run.databases) do
    jobs[#jobs + 1] = function()
      if not r.backup_id then return true end
      local listed, err = mysql.list(cfg, r.app)
      if not listed then return nil, err end
      r.verified = listed[r.backup_id] == "finished"
      local where = found.storage[r.app]
      if r.verified and s3 and where then
        r.bucket, r.s3_key = where.bucket, mysql.key(where.path, r.backup_id)
        r.verified = s3:stat(r.bucket, r.s3_key) ~= nil
      end
      return true
    end
  end
  local answers = { task.all(jobs) }
  for i = 1, #jobs do
    if not answers[i] then return nil, errors.new("backup.verify", "a list-backups call failed") end
  end
  local bad = 0
  for _, list in ipairs { run.velero, run.databases } do
    for _, r in ipairs(list) do if not r.verified then bad = bad + 1 end end
  end
  if bad > 0 then return nil, errors.new("backup.unverified", bad .. " backup(s) not found or not complete") end
  return { detail = "every backup listed and complete" .. (s3 and ", objects in S3" or "") }
end

--- Writes the manifest (atomically, locally; then to S3 unless the loop is stopping).
local function save_manifest(run, store)
  local path, where = sets.save(run.cfg, run.state_dir, sets.build(run), store)
  if not path then return nil, where end
  run.manifest_path, run.manifest_s3 = path, where
  return { detail = path .. (where and (", " .. where) or "") }
end

--- Every step, in order: setup, then every chain of the backup stage at once.
local function declare(run, p)
  local s3 = run.checks.found.s3
  p:stage("backup", { keep_going = true })   -- each chain records its components as it goes
  p:stage("verify", { keep_going = true })   -- its verdict is on each component
  setup_steps(run, p)
  for _, db in ipairs(run.cfg.databases) do database_steps(run, p, db) end
  for _, target in ipairs(run.checks.found.targets) do velero_step(run, p, target) end
  p:add { stage = "verify", id = "verify", run = function() return verify(run) end,
    label = "list-backups on velero and each database" .. (s3 and "; objects in S3" or "") }
  p:add { stage = "record", id = "record", run = function() return save_manifest(run, s3) end,
    label = "write the backup-set manifest" .. (s3 and " (local and S3)" or " (local)") }
end

-------------------------------------------------------------------- the outcome

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

local function next_steps(run)
  local out = run.plan:next_steps()
  if #out > 0 and run.status ~= "complete" then
    table.insert(out, 1, "run `ckfb backup` again (setup is idempotent), or by hand:")
  end
  return out
end

local function report(run)
  local r = sets.build(run)
  r.checks, r.plan, r.next_steps, r.error = run.checks:list(), run.plan:describe(), next_steps(run), run.error
  r.manifest_path, r.manifest_s3 = run.manifest_path, run.manifest_s3
  return r
end

--- With -q: nothing on success; on anything else, one line.
local function quiet_summary(run)
  if run.status == "complete" then return end
  local bad, started = {}, {}
  for _, list in ipairs { run.velero, run.databases } do
    for _, r in ipairs(list) do
      started[r.target or r.app] = true
      if r.status ~= "created" or r.verified == false then bad[#bad + 1] = r.target or r.app end
    end
  end
  for _, name in ipairs(run.checks.found.targets) do  -- a chain stopped before them
    if not started[name] then bad[#bad + 1] = name end
  end
  log.say("error", string.format("ckfb backup: set %s %s%s%s", run.id, run.status,
    #bad > 0 and (": " .. table.concat(bad, ", ") .. " not backed up") or "",
    run.error and (" (" .. run.error:match("^[^\n]*") .. ")") or ""))
end

local function summary(run)
  if not log.enabled("info") then return quiet_summary(run) end
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
  if #steps > 0 then lines[#lines + 1] = "next:" end
  for _, s in ipairs(steps) do lines[#lines + 1] = "  " .. s end
  log.say(run.status == "complete" and "info" or "error", table.concat(lines, "\n"))
end

-------------------------------------------------------------------- the run

local function restore_scale(run)
  for db, n in pairs(run.scaled) do
    if juju.scale(db, n, { model = run.cfg.models.kubeflow }) then run.scaled_back[db] = true end
  end
end

--- The run after the plan: hooks, the backup, its outcome, the record. -> exit code
local function execute(run)
  local ok, err = run.plan:hook("before_backup")
  if ok then ok, err = run.plan:run_stages(run.plan:stages_before("record")) end
  if not ok then return nil, err end
  if run.opts.restore_scale then restore_scale(run) end
  local code
  run.status, code = outcome(run)
  local recorded, rerr = run.plan:run_step(run.plan:get("record"))
  if not recorded then run.error = rerr.message; code = code == EXIT.ok and EXIT.partial or code end
  if code == EXIT.ok then
    local hooked, herr = run.plan:hook("after_backup")
    if not hooked then  -- a site's check after the backup is part of the backup
      run.status, run.error, code = "failed", herr.message, EXIT.failed
      save_manifest(run, run.checks.found.s3)
    end
  end
  if code ~= EXIT.ok then run.plan:hook("on_failure") end
  return code
end

--- An error escaped the run (an interrupt, or a bug): record what is known.
local function stopped(run, err)
  run.status, run.error = sys.interrupted() and "interrupted" or "failed", tostring(err)
  for _, list in ipairs { run.velero, run.databases } do
    for _, r in ipairs(list) do
      if r.status == "running" and not r.task_id then r.status = "interrupted" end
    end
  end
  if sys.interrupted() then return save_manifest(run, nil) end  -- the loop is stopping: the local file only
  if run.opts.restore_scale then restore_scale(run) end
  run.plan:run_step(run.plan:get("record"))
  run.plan:hook("on_failure")
end

--- The report printed and written as asked; with several deployments, kept for the one
-- report of them all. -> false when the report file could not be written
local function emit(run)
  local r = report(run)
  if run.opts.reports then run.opts.reports[#run.opts.reports + 1] = r end
  return plan.emit(r, run.opts)
end

local function finish(run, code)
  run.checks.found.lock:release()
  run.plan:close()
  metrics.record_backup(run.cfg, run.status, run.plan, run.opts.collect_metrics)
  summary(run)
  if not emit(run) and code == EXIT.ok then code = EXIT.failed end  -- asked, not delivered
  local ok, err = run.plan:hook("on_end")  -- notifications: the run is over, so their errors only warn
  if not ok then log.warn("%s", err.message) end
  return code
end

local function refuse(run)
  run.status = "refused"
  if run.checks.found.lock then run.checks.found.lock:release() end
  metrics.record_backup(run.cfg, run.status, run.plan, run.opts.collect_metrics)
  emit(run)
  local failed = {}
  for _, c in ipairs(run.checks) do
    if c.status == "fail" then failed[#failed + 1] = c.name end
  end
  log.say("error", "ckfb backup: refused by preflight (" .. table.concat(failed, ", ") .. "): nothing was changed")
  local ok, err = run.plan:hook("on_end")
  if not ok then log.warn("%s", err.message) end
  return EXIT.refused
end

local function new_run(cfg, opts, state_dir)
  local run = { cfg = cfg, opts = opts, id = sets.new_id(), started = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    state_dir = state_dir, models = cfg.models, checks = checks.new { force = opts.force }, velero = {},
    databases = {}, scaled = {}, scaled_back = {}, changes = {}, status = "running" }
  run.skipped = run.checks.found.skipped
  run.plan = plan.new { kind = "backup", id = run.id, config = cfg, state = function()
    return { status = run.status, checks = run.checks:list(), velero = run.velero, databases = run.databases }
  end }
  return run
end

--- One deployment's backup, start to end. -> exit code
local function backup(cfg, opts, state_dir, live)
  local run = new_run(cfg, opts, state_dir)
  run.checks:backup(cfg, state_dir, run.id)
  run.plan.k8s = run.checks.found.k8s
  local hooked, perr = run.plan:hook("preflight")
  if not hooked then run.checks:add("hooks", "fail", perr.message) end
  if log.enabled("info") or run.checks:refused() then run.checks:print() end
  if run.checks:refused() then return refuse(run) end
  declare(run, run.plan)
  if not opts.dry_run then run.plan:show(progress.new { title = "ckfb backup " .. run.id, live = live }) end
  if opts.dry_run then
    run.checks.found.lock:release()
    options.output(opts, { checks = run.checks:list(), plan = run.plan:describe() },
      function() print(run.plan:text()) end)
    return EXIT.ok
  end
  if not run.plan.view.live and log.enabled("info") then  -- the live view shows it itself
    log.say("info", run.plan:text())
  end
  local called, code, err = xpcall(execute, function(e) return e end, run)
  if called and code then return finish(run, code) end
  local failure = called and err or code   -- execute's nil, err, or what it raised
  stopped(run, failure)
  code = finish(run, EXIT.failed)
  if sys.interrupted() then error(failure, 0) end  -- 130 or 143 from the host
  return code
end

-- Several deployments' codes make one: the worst of them.
local SEVERITY = { [EXIT.ok] = 0, [EXIT.partial] = 1, [EXIT.refused] = 2, [EXIT.failed] = 3 }

--- Every deployment of the configuration at once, each its own set and lock; their output
-- is plain lines (two live views cannot share a terminal) and their reports one list.
-- -> the worst exit code
local function backup_all(cfg, opts, state_dir)
  local reports, families = json.array(), {}
  local each = setmetatable({ format = "table", json = false, report = false, reports = reports,
    collect_metrics = families }, { __index = opts })
  local jobs = {}
  for i, d in ipairs(cfg.deployments) do
    jobs[i] = function() return backup(sets.deployment(cfg, d), each, state_dir, false) end
  end
  local codes, worst = { task.all(jobs) }, EXIT.ok
  for _, code in ipairs(codes) do
    if (SEVERITY[code] or 3) > (SEVERITY[worst] or 3) then worst = code end
  end
  metrics.write_configured(cfg, metrics.merge(families))
  if not plan.emit(reports, opts) and worst == EXIT.ok then worst = EXIT.failed end
  return worst
end

local function main(args)
  local ok, opts = pcall(options.parse, OPTIONS, args)
  if not ok then return options.fail(OPTIONS, EXIT.usage, opts.message or tostring(opts), true) end
  if opts.help then print(options.help(OPTIONS)); return EXIT.ok end
  local cfg, cerr = sets.load(opts.config, nil, { model = opts.m })
  if not cfg then return options.fail(OPTIONS, EXIT.usage, cerr.message, true) end
  local loaded, herr = hooks.load_all(cfg.hooks)
  if not loaded then return options.fail(OPTIONS, EXIT.usage, herr.message, true) end
  local state_dir, serr = sets.state_dir(cfg)
  if not state_dir then return options.fail(OPTIONS, EXIT.usage, serr.message, true) end
  if #cfg.deployments > 0 and not opts.m then return backup_all(cfg, opts, state_dir) end
  return backup(cfg, opts, state_dir)
end

return main({ ... })
