-- ckfb prune: deletes whole backup sets, never part of one: the velero
-- backups (through the charm's run-cli action), the database backup objects
-- in S3, then the set's manifest. Without --yes it only shows what it would
-- delete.
--
-- A manifest is untrusted input: only sets that pass the schema are counted
-- or deleted, and a set deletes only what the charms themselves list now
-- (velero's and mysql-k8s's list-backups), in the bucket and path the live
-- s3-integrator configures, and nothing another kept set still names.
--   ckfb prune --keep N | --older-than DURATION [--yes] [--config FILE] [--format table|json|yaml]
-- --keep N (N >= 1) keeps the newest N complete sets and everything newer;
-- with --older-than too, a set goes only when both allow it; --older-than
-- alone never deletes the newest complete set.
-- DURATION: 30d, 12h, 2w. Exit codes: 0 ok, 1 failed, 2 usage or configuration.
local juju = require "ckfb.juju"
local ckf = require "ckfb.ckf"
local json = require "ckfb.json"
local log = require "ckfb.log"
local options = require "ckfb.options"
local plan = require "ckfb.plan"
local sets = require "ckfb.sets"

local OPTIONS = {
  usage = "ckfb prune --keep N | --older-than DURATION [options]",
  summary = "Deletes old backup sets whole: velero backups, database backup objects in S3, manifests.",
  sets.CONFIG_OPTION,
  sets.MODEL_OPTION,
  { "--keep", "N", "keep the newest N complete sets (N >= 1), and every newer set" },
  { "--older-than", "DURATION", "delete only sets older than DURATION (30d, 12h, 2w)" },
  { "--yes", nil, "really delete (otherwise only show what would go)" },
  options.FORMAT, options.FORMAT_SHORT, options.JSON,
}

local UNITS = { s = 1, m = 60, h = 3600, d = 86400, w = 604800 }

local function seconds(duration)
  local n, unit = tostring(duration):match("^(%d+)([smhdw])$")
  return n and tonumber(n) * UNITS[unit] or nil
end

--- The trusted sets to delete, newest first: each allowed by --keep and by --older-than.
local function doomed(all, keep, age, now)
  local out, complete = {}, 0
  for _, entry in ipairs(all) do
    local m = entry.manifest
    if entry.trusted then
      local kept_by_count = keep and complete < keep
      if m.status == "complete" then complete = complete + 1 end
      local newest_good = not keep and m.status == "complete" and complete == 1
      local old = not age or now - ckf.epoch(m.id:match("%d+T%d+Z")) > age
      if not kept_by_count and not newest_good and old then out[#out + 1] = entry end
    end
  end
  return out
end

--- What the charms list now: velero backups by name; per database, its bucket, path and backups.
local function live_state(cfg)
  local velero, err = ckf.velero.list(cfg)
  if not velero then return nil, err end
  local st, serr = juju.status { model = cfg.models.kubeflow }
  if not st then return nil, serr end
  local databases = {}
  for _, db in ipairs(cfg.databases) do
    local storage = ckf.mysql.storage(cfg, st, db)
    local backups = storage and ckf.mysql.list(cfg, db)
    if storage and backups then databases[db] = { bucket = storage.bucket, path = storage.path, backups = backups } end
  end
  return { velero = velero, databases = databases }
end

--- The objects of one database backup: <path>/<id>.md5, .metadata, .backup.log and <path>/<id>/...
local function backup_objects(store, db, backup_id)
  local base = ckf.mysql.key_base(db.path, backup_id)
  local listed, err = store:list(db.bucket, { prefix = base })
  if not listed then return nil, err end
  local keys = {}
  for _, o in ipairs(listed.objects) do
    local rest = o.key:sub(#base + 1)
    if rest == ".md5" or rest == ".metadata" or rest == ".backup.log" or rest:sub(1, 1) == "/" then
      keys[#keys + 1] = o.key
    end
  end
  return keys
end

--- Deletes one set's parts that the charms list and no kept set names, the manifest last.
local function delete_set(cfg, store, m, live, kept)
  for _, v in ipairs(m.velero or {}) do
    if v.backup_name and live.velero[v.backup_name] and not kept["velero:" .. v.backup_name] then
      local ok, err = ckf.velero.delete(cfg, v.backup_name)
      if not ok then return nil, err end
    end
  end
  for _, d in ipairs(m.databases or {}) do
    local db = live.databases[d.app]
    if store and d.backup_id and db and db.backups[d.backup_id] and not kept[d.app .. ":" .. d.backup_id] then
      local keys, err = backup_objects(store, db, d.backup_id)
      if not keys then return nil, err end
      local result = store:delete_many(db.bucket, keys)
      if next(result.errors) then return nil, select(2, next(result.errors)) end
    end
  end
  return sets.forget(cfg, store, m)
end

local function parse(args)
  local ok, opts = pcall(options.parse, OPTIONS, args)
  if not ok then return nil, tostring(opts.message or opts) end
  if opts.help then return opts end
  if not opts.keep and not opts.older_than then return nil, "give --keep N or --older-than DURATION" end
  local keep = opts.keep and math.tointeger(tonumber(opts.keep))
  if opts.keep and not (tostring(opts.keep):match("^%d+$") and keep >= 1) then
    return nil, "--keep takes a number of complete sets to keep, at least 1"
  end
  if opts.older_than and not seconds(opts.older_than) then
    return nil, "--older-than takes a duration such as 30d, 12h or 2w"
  end
  opts.keep_n, opts.age = keep, opts.older_than and seconds(opts.older_than)
  return opts
end

--- The commands that delete a set by hand (what delete_set does), for its next steps.
local function by_hand(cfg, m)
  local out = {}
  for _, v in ipairs(m.velero or {}) do
    if v.backup_name then
      out[#out + 1] = string.format("juju run -m %s %s/leader run-cli command='backup delete %s --confirm'",
        cfg.models.velero, cfg.velero.app, v.backup_name)
    end
  end
  for _, d in ipairs(m.databases or {}) do
    if d.backup_id then
      out[#out + 1] = string.format("(%s) delete %s.md5, .metadata, .backup.log and %s/ under its s3-integrator's "
        .. "bucket and path", d.app, d.backup_id, d.backup_id)
    end
  end
  out[#out + 1] = "ckfb prune again, or remove the manifest " .. m.id .. ".json (local and S3)"
  return out
end

--- One step per set to delete, one after another; a set that cannot go whole is kept
-- whole, and the others still go.
local function declare(p, cfg, store, victims, kept, live)
  for _, entry in ipairs(victims) do
    local m = entry.manifest
    p:stage("delete " .. m.id, { keep_going = true })
    p:add { stage = "delete " .. m.id, id = m.id, label = "delete backup set " .. m.id .. " ("
      .. tostring(m.status) .. ")", by_hand = by_hand(cfg, m),
      on_error = function(err) log.error("could not delete %s (kept whole): %s", m.id, err.message) end,
      run = function()
        local done, err = delete_set(cfg, store, m, live, kept)
        if not done then return nil, err end
        return { detail = "deleted" }
      end }
  end
end

--- The parts of every trusted set that stays: never deleted.
local function kept_parts(all, victims)
  local doomed_ids, kept = {}, {}
  for _, entry in ipairs(victims) do doomed_ids[entry.manifest.id] = true end
  for _, entry in ipairs(all) do
    if entry.trusted and not doomed_ids[entry.manifest.id] then
      for part in pairs(sets.parts(entry.manifest)) do kept[part] = true end
    end
  end
  return kept
end

local function main(args)
  local opts, perr = parse(args)
  if not opts then return options.fail(OPTIONS, 2, perr, true) end
  if opts.help then print(options.help(OPTIONS)); return 0 end
  local cfg, cerr = sets.load(opts.config, nil, { model = opts.m })
  if not cfg then return options.fail(OPTIONS, 2, cerr.message) end
  local store = sets.s3(cfg)
  local all, err = sets.list(cfg, store)
  if not all then return options.fail(OPTIONS, 1, err.message) end
  for _, entry in ipairs(all) do
    if not entry.trusted then log.warn("ignored %s: %s", entry.manifest.id, entry.problem) end
  end
  local victims = doomed(all, opts.keep_n, opts.age, os.time())
  local report = { deleted = json.array(), kept = #all - #victims, dry_run = not opts.yes }
  if not opts.yes then
    for _, entry in ipairs(victims) do
      io.stderr:write("would delete ", entry.manifest.id, " (", tostring(entry.manifest.status), ")\n")
      report.deleted[#report.deleted + 1] = entry.manifest.id
    end
    if #victims > 0 then io.stderr:write("(nothing deleted: add --yes)\n") end
    options.output(opts, report)
    return 0
  end
  local live, lerr
  if #victims > 0 then
    live, lerr = live_state(cfg)
    if not live then return options.fail(OPTIONS, 1, lerr.message .. " (nothing deleted)") end
  end
  local p = plan.new { kind = "prune", config = cfg, state = function() return { deleted = report.deleted } end }
  declare(p, cfg, store, victims, kept_parts(all, victims), live)
  p:run_stages()
  for _, step in ipairs(p.steps) do
    if step.status == "ok" then
      report.deleted[#report.deleted + 1] = step.id
      log.info("deleted backup set %s", step.id)
    end
  end
  report.plan, report.next_steps = p:describe(), p:next_steps()
  options.output(opts, report)
  return p:failed_step() and 1 or 0
end

return main({ ... })
