-- ckfb drill: proves that a backup set restores, without touching the running CKF.
--   1. each velero backup of the set is restored by a Velero Restore into scratch
--      namespaces (ckfb-drill-<set>-<namespace>) and what came back is compared with
--      what the backup holds (ckfb.ckf.drill);
--   2. each database backup is read back from S3: the charm would list it as finished,
--      every object its .md5 file names matches, the xbstream framing is whole
--      (ckfb.ckf.xtrabackup);
--   3. the scratch namespaces and Restores are deleted (unless --keep) and checked gone;
--   4. the verdict is recorded in the set's manifest (drilled: {time, verdict}) and as
--      metrics (ckfb_drill_last_success_timestamp_seconds).
-- No juju command runs; the only Kubernetes writes are the Restores (in Velero's
-- namespace, labelled ckfb.io/drill) and the scratch namespaces.
--   ckfb drill SET_ID | --latest [--keep] [--format table|json|yaml] [--report FILE]
-- Exit codes: 0 restorable, 1 not restorable (or the drill failed), 2 usage or
-- configuration, 3 refused (Kubernetes or Velero's namespace unreachable).
local ckf = require "ckfb.ckf"
local drill = require "ckfb.ckf.drill"
local xtrabackup = require "ckfb.ckf.xtrabackup"
local json = require "ckfb.json"
local errors = require "ckfb.error"
local log = require "ckfb.log"
local metrics = require "ckfb.metrics"
local options = require "ckfb.options"
local progress = require "ckfb.progress"
local plan = require "ckfb.plan"
local sets = require "ckfb.sets"
local task = require "ckfb.task"

local EXIT = { ok = 0, failed = 1, usage = 2, refused = 3 }

local OPTIONS = {
  usage = "ckfb drill SET_ID | --latest [options]",
  summary = "Proves that a backup set restores: velero backups into scratch namespaces, database backups "
    .. "read back from S3; the running CKF is not touched.",
  sets.CONFIG_OPTION,
  sets.MODEL_OPTION,
  { "--latest", nil, "the newest trusted set" },
  { "--keep", nil, "leave the scratch namespaces and Restores for a look (a later drill of the set removes them)" },
  options.FORMAT, options.FORMAT_SHORT, options.JSON,
  { "--report", "FILE", "also write the JSON report to FILE" },
  epilog = { "", "exit codes: 0 restorable, 1 not restorable or the drill failed, 2 usage or configuration error,",
    "            3 refused (Kubernetes or Velero's namespace unreachable)" },
}

--- Kubernetes answers and Velero's namespace can be read: without them nothing can be rehearsed.
local function preflight(cfg)
  local client, err = ckf.k8s_client(cfg)
  if not client then return nil, "Kubernetes: " .. err.message end
  local listed, lerr = client:list("backups.velero.io", { namespace = drill.velero_namespace(cfg), limit = 1 })
  if not listed then return nil, "Velero's backups cannot be read: " .. lerr.message end
  return client
end

--- A component's verdict as the step reports it: ok when restorable, else its reason.
local function step_result(result)
  if result.restorable then return { detail = result.reason } end
  return nil, errors.new("drill.not_restorable", result.reason)
end

local function velero_step(run, p, entry)
  local result = { component = entry.target, kind = "velero", restorable = false, reason = "not drilled" }
  run.components[#run.components + 1] = result
  if entry.status ~= "created" or not entry.backup_name then
    result.reason = "the backup set holds no backup of it (" .. tostring(entry.status) .. ")"
    return
  end
  local step
  step = p:add { stage = "drill", chain = entry.target, id = "rehearse " .. entry.target,
    label = "restore " .. entry.backup_name .. " into scratch namespaces", run = function()
      local r = drill.rehearse(run.k8s, run.cfg, run.tag, entry, { wait = run.cfg.velero.wait, poll = run.cfg.poll,
        on_progress = function(text) p:note(step, text) end })
      for k, v in pairs(r) do result[k] = v end
      return step_result(result)
    end }
end

local function database_step(run, p, d)
  local result = { component = d.app, kind = "database", restorable = false, reason = "not drilled" }
  run.components[#run.components + 1] = result
  local path = type(d.s3_key) == "string" and d.backup_id and d.s3_key:match("^(.-)/?" .. d.backup_id:gsub("%p", "%%%0")
    .. "%.md5$")
  if d.status ~= "created" or not path or type(d.bucket) ~= "string" then
    result.reason = "the backup set records no finished backup of it in S3"
    return
  end
  if not run.store then result.reason = "no S3 is configured: its objects cannot be read back"; return end
  p:add { stage = "drill", chain = d.app, id = "read back " .. d.app,
    label = string.format("read back %s backup %s from s3://%s", d.app, d.backup_id, d.bucket), run = function()
      local r = xtrabackup.check(run.store, d.bucket, path, d.backup_id)
      result.backup_id, result.restorable, result.reason, result.objects, result.bytes =
        d.backup_id, r.restorable, r.reason, r.objects, r.bytes
      return step_result(result)
    end }
end

local function declare(run, p)
  p:stage("drill", { keep_going = true })
  p:add { stage = "prepare", id = "clear", label = "remove what an earlier drill of this set left", run = function()
    local left, err = drill.clean(run.k8s, run.cfg, run.tag)
    if not left then return nil, err end
    local n = #left.namespaces + #left.restores
    return { detail = n > 0 and (n .. " removed") or "nothing left" }
  end }
  for _, v in ipairs(run.set.velero or {}) do velero_step(run, p, v) end
  for _, d in ipairs(run.set.databases or {}) do database_step(run, p, d) end
  p:stage("clean up", { keep_going = true })
  p:add { stage = "clean up", id = "clean up", label = "delete the scratch namespaces and Restores, check them gone",
    already_done = run.opts.keep, run = function()
      local left, err = drill.clean(run.k8s, run.cfg, run.tag)
      if not left then return nil, err end
      run.cleaned = left
      return { detail = string.format("deleted: %d namespace(s), %d Restore(s)", #left.namespaces, #left.restores) }
    end }
  p:add { stage = "record", id = "record", label = "record the verdict in the set's manifest", run = function()
    local m = json.copy(run.set)
    m.drilled = { time = run.finished, verdict = run.verdict, components = json.array(run.brief) }
    local path, where = sets.save(run.cfg, run.state_dir, m, run.store)
    if not path then return nil, where end
    return { detail = path .. (where and (", " .. where) or "") }
  end }
end

--- The set's verdict: restorable when every component is, and the run cleaned up after itself.
local function verdict(run)
  run.brief = {}
  local ok = #run.components > 0
  for _, c in ipairs(run.components) do
    ok = ok and c.restorable
    run.brief[#run.brief + 1] = { component = c.component, restorable = c.restorable, reason = c.reason }
  end
  local cleaned = run.opts.keep or run.plan:get("clean up").status == "ok"
  return ok and cleaned and "restorable" or "not restorable"
end

local function report(run)
  return { kind = "ckfb.drill", set = run.set.id, verdict = run.verdict, started = run.started,
    finished = run.finished, components = json.array(run.components), kept = run.opts.keep or false,
    plan = run.plan:describe() }
end

local function print_summary(run)
  local lines = { string.format("drill of %s: %s", run.set.id, run.verdict) }
  for _, c in ipairs(run.components) do
    lines[#lines + 1] = string.format("  %-9s %-40s %-15s %s", c.kind, c.component,
      c.restorable and "restorable" or "not restorable", c.reason)
  end
  local clean = run.plan:get("clean up")
  if clean.status == "failed" then lines[#lines + 1] = "  left behind: " .. tostring(clean.error) end
  if run.opts.keep then
    local names = {}
    for _, c in ipairs(run.components) do
      for _, n in ipairs(c.namespaces or {}) do names[#names + 1] = n end
    end
    lines[#lines + 1] = "  kept (--keep): " .. (#names > 0 and table.concat(names, ", ") or "nothing was restored")
  end
  log.say(run.verdict == "restorable" and "info" or "error", table.concat(lines, "\n"))
end

local function execute(run)
  run.plan:show(progress.new { title = "ckfb drill " .. run.set.id })
  -- stopped (Ctrl-C, SIGTERM) before its clean-up, a drill still removes what it made
  local forget = run.opts.keep and function() end or task.cleanup(function() drill.clean(run.k8s, run.cfg, run.tag) end)
  run.plan:run_stages(run.plan:stages_before("record"))
  forget()
  run.finished = os.date("!%Y-%m-%dT%H:%M:%SZ")
  run.verdict = verdict(run)
  local recorded, rerr = run.plan:run_step(run.plan:get("record"))
  run.plan:close()
  if not recorded then log.error("the verdict was not recorded: %s", rerr.message) end
  metrics.record_drill(run.cfg, run.verdict == "restorable", run.plan)
  print_summary(run)
  local written = plan.emit(report(run), run.opts)
  return (run.verdict == "restorable" and recorded and written) and EXIT.ok or EXIT.failed
end

local function main(args)
  local ok, opts, rest = pcall(options.parse, OPTIONS, args)
  if not ok then return options.fail(OPTIONS, EXIT.usage, opts.message or opts) end
  if opts.help then print(options.help(OPTIONS)); return EXIT.ok end
  if not rest[1] and not opts.latest then
    return options.fail(OPTIONS, EXIT.usage, "name a backup set (see ckfb list) or give --latest")
  end
  local cfg, cerr = sets.load(opts.config, nil, { model = opts.m })
  if not cfg then return options.fail(OPTIONS, EXIT.usage, cerr.message) end
  local state_dir, serr = sets.state_dir(cfg)
  if not state_dir then return options.fail(OPTIONS, EXIT.usage, serr.message) end
  local store = sets.s3(cfg)
  local entry, ferr = sets.find(cfg, store, rest[1])
  if not entry then return options.fail(OPTIONS, EXIT.usage, ferr.message) end
  local client, why = preflight(cfg)
  if not client then return options.fail(OPTIONS, EXIT.refused, "refused: " .. why .. " (nothing was changed)") end
  local run = { cfg = cfg, opts = opts, set = entry.manifest, tag = drill.tag(entry.manifest.id), k8s = client,
    store = store, state_dir = state_dir, components = {}, started = os.date("!%Y-%m-%dT%H:%M:%SZ") }
  run.plan = plan.new { kind = "drill", id = run.set.id, config = cfg, k8s = client, state = function()
    return { set = run.set, components = run.components } end }
  declare(run, run.plan)
  return execute(run)
end

return main({ ... })
