-- ckfb list: the recorded backup sets, newest first, each with its
-- components and their live status (velero's and each database's
-- list-backups); a set with a missing or failed component is marked, and
-- a warning names velero backups that are gone or expire within a week
-- (Velero deletes a backup after its TTL, 30 days by default).
--   ckfb list [--config FILE] [--format table|json|yaml]
-- Exit codes: 0 ok, 1 failed, 2 usage or configuration error.
local ckf = require "ckfb.ckf"
local json = require "ckfb.json"
local log = require "ckfb.log"
local options = require "ckfb.options"
local sets = require "ckfb.sets"

local OPTIONS = {
  usage = "ckfb list [options]",
  summary = "Lists the backup sets ckfb recorded (locally and in S3), with the live status of every component.",
  sets.CONFIG_OPTION,
  sets.MODEL_OPTION,
  options.FORMAT, options.FORMAT_SHORT, options.JSON,
  { "--orphans", nil, "list the backups the charms hold that belong to no set instead" },
}

local WEEK = 7 * 86400

--- Warnings for a set whose velero backups are gone or expire within a week.
local function expiry_warnings(m, velero, now)
  local out = {}
  for _, v in ipairs(m.velero or {}) do
    local found = v.backup_name and velero[v.backup_name]
    if v.backup_name and not found then
      out[#out + 1] = string.format("%s: velero backup %s is gone (expired, or deleted)", m.id, v.backup_name)
    elseif found then
      local started = ckf.epoch(found.start)
      local left = started and started + ckf.velero.DEFAULT_TTL - now
      if left and left < WEEK then
        out[#out + 1] = string.format("%s: velero backup %s expires in %.1f days (Velero's default TTL of 30 days)",
          m.id, v.backup_name, left / 86400)
      end
    end
  end
  return out
end

--- Backups the charms list that no trusted set names: velero's for the Kubeflow model, and
-- each database's (an interrupted or unrecorded run leaves them).
local function orphans(all, velero, databases)
  local named = {}
  for _, entry in ipairs(all) do
    if entry.trusted then
      for part in pairs(sets.parts(entry.manifest)) do named[part] = true end
    end
  end
  local out = {}
  for name, b in pairs(velero) do
    if not named["velero:" .. name] then
      out[#out + 1] = { kind = "velero", name = name, uid = b.uid, phase = b.phase }
    end
  end
  for db, backups in pairs(databases) do
    for id, status in pairs(backups) do
      if not named[db .. ":" .. id] then out[#out + 1] = { kind = db, name = id, status = status } end
    end
  end
  table.sort(out, function(a, b) return a.kind .. a.name < b.kind .. b.name end)
  return out
end

local function print_orphans(list)
  if #list == 0 then print("no backups outside the recorded sets"); return end
  for _, o in ipairs(list) do print(string.format("%-10s %s", o.kind, o.name)) end
end

local function print_sets(out, now)
  if #out == 0 then print("no backup sets recorded yet (ckfb backup makes one)"); return end
  print(string.format("%-36s %-10s %-6s %-9s %s", "SET", "STATUS", "AGE", "STORED", "COMPONENTS"))
  for _, m in ipairs(out) do
    print(string.format("%-36s %-10s %-6s %-9s %s", m.id, m.state, ckf.age(m.id, now), table.concat(m.stored, "+"),
      m.trusted and ckf.components_text(m) or m.problem))
  end
end

local function main(args)
  local ok, opts = pcall(options.parse, OPTIONS, args)
  if not ok then return options.fail(OPTIONS, 2, opts.message or opts) end
  if opts.help then print(options.help(OPTIONS)); return 0 end
  local cfg, cerr = sets.load(opts.config, nil, { model = opts.m })
  if not cfg then return options.fail(OPTIONS, 2, cerr.message) end
  local store = sets.s3(cfg)
  local all, err = sets.list(cfg, store, { s3_optional = true })
  if not all then return options.fail(OPTIONS, 1, err.message) end
  local velero, databases = ckf.live(cfg)
  if opts.orphans then
    options.output(opts, json.array(orphans(all, velero, databases)), print_orphans)
    return 0
  end
  local out, now = {}, os.time()
  for _, entry in ipairs(all) do
    local m = entry.manifest
    m.complete = entry.trusted and ckf.mark_live(m, velero, databases)
    m.state = ckf.set_state(m, entry.trusted)
    m.stored, m.trusted, m.problem = entry.where, entry.trusted, entry.problem
    if not entry.trusted then log.warn("%s is untrusted: %s", m.id, entry.problem) end
    m.warnings = json.array(expiry_warnings(m, velero, now))
    for _, w in ipairs(m.warnings) do log.warn("%s", w) end
    out[#out + 1] = m
  end
  options.output(opts, json.array(out), function() print_sets(out, now) end)
  return 0
end

return main({ ... })
