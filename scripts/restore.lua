-- ckfb restore: restores a backup set in the order of Canonical's restore
-- guide, with its trap fixed: mysql-k8s restores only with one unit and a
-- backup-id, so each database is scaled to one unit, restored from the
-- set's backup-id, then scaled back to its size.
--   1. stop: scale minio and mlmd to 0 and remove their storage;
--   2. velero: restores, in the guide's order, of the set's backups (found by
--      name: a Velero resync gives each Backup a new UID);
--   3. volumes: re-import the restored persistent volumes, add the units back;
--   4. databases: each at one unit, restore backup-id=, back to its size.
-- Before anything destructive, the preflight (ckfb.ckf.checks) proves the
-- restore can finish: every backup of the set is listed and complete, juju
-- can import storage on a Kubernetes model, no database is blocked for S3
-- writes. Every step is verified before the next; on a failure the run stops
-- and says where, with the commands to continue by hand.
--   ckfb restore SET_ID | --latest [--components LIST] [--dry-run] [--format table|json|yaml] [--report FILE]
-- Exit codes: 0 restored, 1 failed, 2 usage or configuration, 3 refused by preflight.
local juju = require "ckfb.juju"
local ckf = require "ckfb.ckf"
local checks = require "ckfb.ckf.checks"
local mysql = require "ckfb.ckf.mysql"
local velero = require "ckfb.ckf.velero"
local json = require "ckfb.json"
local log = require "ckfb.log"
local hooks = require "ckfb.hooks"
local options = require "ckfb.options"
local progress = require "ckfb.progress"
local plan = require "ckfb.plan"
local sets = require "ckfb.sets"
local sys = require "ckfb.sys"

local EXIT = { ok = 0, failed = 1, usage = 2, refused = 3 }

local OPTIONS = {
  usage = "ckfb restore SET_ID | --latest [options]",
  summary = "Restores a backup set recorded by ckfb backup (see ckfb list).",
  sets.CONFIG_OPTION,
  sets.MODEL_OPTION,
  { "--latest", nil, "restore the newest set" },
  { "--components", "LIST", "restore only these (comma-separated: minio, mlmd, the velero targets, the databases)" },
  { "--dry-run", nil, "run the preflight, print the plan, change nothing" },
  options.FORMAT, options.FORMAT_SHORT, options.JSON,
  { "--report", "FILE", "also write the JSON report to FILE" },
  { "--yes", nil, "do not ask for the set id to be typed (required without a terminal)" },
  epilog = { "", "exit codes: 0 restored, 1 failed, 2 usage or configuration error, 3 refused by preflight" },
}

-------------------------------------------------------------------- the steps

--- A step's end: wait until the application's units satisfy a predicate.
local function wait_for(cfg, app, predicate, what)
  local st, err = juju.wait(function(s) return predicate(s, app) end,
    { model = cfg.models.kubeflow, timeout = cfg.database.wait, delay = cfg.poll })
  if not st then return nil, require("ckfb.error").new(err.code, app .. ": " .. what .. ": " .. err.message) end
  return { detail = what .. ": done" }
end

local function units_are(n)
  return function(s, app) return #juju.units(s, app) == n and (n == 0 or juju.is_active_idle(s, app)) end
end

local function scale_step(p, cfg, stage, app, n, predicate, label)
  local kf = cfg.models.kubeflow
  p:add { stage = stage, chain = stage, id = "scale " .. app .. " " .. n, label = label or ("scale " .. app .. " to "
    .. n), by_hand = string.format("juju scale-application -m %s %s %d", kf, app, n), run = function()
      local ok, err = juju.scale(app, n, { model = kf })
      if not ok then return nil, err end
      return wait_for(cfg, app, predicate or units_are(n), "scaling to " .. n)
    end }
end

local function declare(run, p)
  local cfg, parts, found, kf = run.cfg, run.parts, run.checks.found, run.cfg.models.kubeflow
  for _, vol in ipairs(parts.volumes) do
    scale_step(p, cfg, "stop", vol.app, 0)
    local ids = found.storage_ids[vol.storage] or {}
    p:add { stage = "stop", chain = "stop", id = "remove " .. vol.storage, label = "remove the storage "
      .. (#ids > 0 and table.concat(ids, ", ") or vol.storage), already_done = #ids == 0,
      by_hand = "juju remove-storage -m " .. kf .. " " .. table.concat(ids, " "),
      run = function() return juju.remove_storage(ids, { model = kf }) end }
  end
  for _, v in ipairs(parts.velero) do
    local uid = found.velero_uid[v.backup_name]
    p:add { stage = "velero", chain = "velero", id = "restore " .. v.target, by_hand = velero.restore_command(cfg, uid),
      label = "velero restore " .. v.target .. " from " .. v.backup_name .. " (" .. uid .. ")",
      run = function() return velero.restore(cfg, uid) end }
  end
  for _, vol in ipairs(parts.volumes) do
    local imported
    p:add { stage = "volumes", chain = "volumes", id = "import " .. vol.storage,
      label = "re-import the restored volume of " .. vol.storage,
      by_hand = string.format("kubectl get pvc -n %s -l storage.juju.is/name=%s (the newest, its VOLUME); "
        .. "juju import-filesystem -m %s kubernetes <volume> %s --force", kf, vol.storage, kf, vol.storage),
      run = function()
        local pv, err = ckf.restored_volume(cfg, vol.storage)
        if not pv then return nil, err end
        imported, err = juju.import_filesystem("kubernetes", pv, vol.storage, { model = kf })
        return imported and { detail = pv .. " as " .. imported }, err
      end }
    p:add { stage = "volumes", chain = "volumes", id = "add " .. vol.app, label = "add a " .. vol.app
      .. " unit with that storage", by_hand = "juju add-unit -m " .. kf .. " " .. vol.app
      .. " --attach-storage <storage id>", run = function()
        local ok, err = juju.add_unit(vol.app, { model = kf, attach_storage = imported })
        if not ok then return nil, err end
        return wait_for(cfg, vol.app, units_are(1), "adding the unit")
      end }
  end
  for _, d in ipairs(parts.databases) do
    local size = math.max(found.units[d.app] or 1, 1)
    scale_step(p, cfg, "databases", d.app, 1, nil, "scale " .. d.app .. " to 1 unit (mysql-k8s restores only with one)")
    p:add { stage = "databases", chain = "databases", id = "restore " .. d.app,
      label = "restore " .. d.app .. " backup-id=" .. tostring(d.backup_id),
      by_hand = mysql.restore_command(cfg, d.app, d.backup_id),
      follow_up = function(step)  -- backups.py _on_restore blocks S3 writes to that path
        if step.status == "ok" then return mysql.move_command(cfg, d.app, found.integrators[d.app]) end
      end,
      run = function()
        local t, err = mysql.restore(cfg, d.app, d.backup_id)
        if not t then return nil, err end
        log.warn("%s", mysql.move_command(cfg, d.app, found.integrators[d.app]))
        return wait_for(cfg, d.app, mysql.units_are(1), "after the restore")
      end }
    if size > 1 then
      scale_step(p, cfg, "databases", d.app, size, mysql.units_are(size), "scale " .. d.app .. " back to " .. size
        .. " units")
    end
  end
end

-------------------------------------------------------------------- the run

--- The components of a set that the run restores (nil = all of them).
local function selected(opts)
  if not opts.components then return nil end
  local pick = {}
  for name in opts.components:gmatch("[^,%s]+") do pick[name] = true end
  return pick
end

--- A restore scales minio and mlmd to 0 and removes their storage: on a terminal the
-- operator types the set id; without one, --yes must say so. -> true | nil, message, exit code
local function confirm(run)
  if run.opts.yes then return true end
  if not sys.isatty(0) or not sys.isatty(2) then
    return nil, "a restore changes the running CKF: give --yes to run it without a terminal", EXIT.usage
  end
  local steps = run.plan.steps
  io.stderr:write(string.format("This restore runs %d steps on the live deployment, starting with:\n", #steps))
  for i = 1, math.min(3, #steps) do io.stderr:write("  ", steps[i].label, "\n") end
  io.stderr:write("Type the set id (", run.set.id, ") to go on: ")
  if io.stdin:read("l") ~= run.set.id then return nil, "not confirmed: nothing was changed", EXIT.failed end
  return true
end

local function report(run)
  local p, failed = run.plan, run.plan:failed_step()
  local done = json.array()
  for _, s in ipairs(p.steps) do if s.status == "ok" then done[#done + 1] = s.id end end
  return { kind = "ckfb.restore", set = run.set.id, status = run.status, checks = run.checks:list(),
    plan = p:describe(), done = done, failed_step = failed and failed.label, error = run.error,
    next_steps = p:next_steps() }
end

local function finish(run, code)
  run.checks.found.lock:release()
  run.plan:close()
  local r = report(run)
  if run.status == "failed" then
    local failed = run.plan:failed_step()
    local lines = { string.format("ckfb restore: stopped at step %s (%s): %s", tostring(failed and failed.index),
      r.failed_step or "hooks", r.error), "to continue by hand:" }
    for _, c in ipairs(r.next_steps) do lines[#lines + 1] = "  " .. c end
    log.say("error", table.concat(lines, "\n"))
  else
    log.info("restored backup set %s", run.set.id)
  end
  if not plan.emit(r, run.opts) and code == EXIT.ok then code = EXIT.failed end
  local ok, err = run.plan:hook("on_end")
  if not ok then log.warn("%s", err.message) end
  return code
end

local function execute(run)
  local ok, err = run.plan:hook("before_restore")
  if ok then ok, err = run.plan:run_stages() end
  run.status, run.error = ok and "restored" or "failed", err and err.message
  run.plan:hook(ok and "after_restore" or "on_failure")
  return finish(run, ok and EXIT.ok or EXIT.failed)
end

local function main(args)
  local ok, opts, rest = pcall(options.parse, OPTIONS, args)
  if not ok then return options.fail(OPTIONS, EXIT.usage, tostring(opts.message or opts)) end
  if opts.help then print(options.help(OPTIONS)); return EXIT.ok end
  if not rest[1] and not opts.latest then
    return options.fail(OPTIONS, EXIT.usage, "name a backup set (see ckfb list) or give --latest")
  end
  local cfg, cerr = sets.load(opts.config, nil, { model = opts.m })
  if not cfg then return options.fail(OPTIONS, EXIT.usage, cerr.message) end
  local loaded, herr = hooks.load_all(cfg.hooks)
  if not loaded then return options.fail(OPTIONS, EXIT.usage, herr.message) end
  local state_dir, serr = sets.state_dir(cfg)
  if not state_dir then return options.fail(OPTIONS, EXIT.usage, serr.message) end
  local entry, ferr = sets.find(cfg, sets.s3(cfg), rest[1])
  if not entry then return options.fail(OPTIONS, EXIT.usage, ferr.message) end
  local run = { cfg = cfg, opts = opts, set = entry.manifest, checks = checks.new(), status = "running" }
  run.parts = ckf.restore_parts(cfg, run.set, selected(opts))
  run.checks:restore(cfg, run.set, run.parts, { components = opts.components, state_dir = state_dir })
  run.plan = plan.new { kind = "restore", id = run.set.id, config = cfg, k8s = run.checks.found.k8s, state = function()
    return { status = run.status, checks = run.checks:list(), set = run.set } end }
  run.checks:print()
  if run.checks:refused() then
    if run.checks.found.lock then run.checks.found.lock:release() end
    return options.fail(OPTIONS, EXIT.refused, "refused by preflight: nothing was changed")
  end
  declare(run, run.plan)
  if opts.dry_run then
    run.checks.found.lock:release()
    options.output(opts, { set = run.set.id, checks = run.checks:list(), plan = run.plan:describe() },
      function() print(run.plan:text { by_hand = true }) end)
    return EXIT.ok
  end
  local confirmed, why, code = confirm(run)
  if not confirmed then
    run.checks.found.lock:release()
    return options.fail(OPTIONS, code, why)
  end
  run.plan:show(progress.new { title = "ckfb restore " .. run.set.id })
  return execute(run)
end

return main({ ... })
