-- ckfb prune: deletes whole backup sets, never part of one: the velero
-- backups (through the charm's run-cli action), the database backup objects
-- in S3, then the set's manifest. Without --yes it only shows what it would
-- delete.
--   ckfb prune --keep N | --older-than DURATION [--yes] [--config FILE] [--json]
-- DURATION: 30d, 12h, 2w. Exit codes: 0 ok, 1 failed, 2 usage or configuration.
local juju = require "ckfb.juju"
local ckf = require "ckfb.ckf"
local json = require "ckfb.json"
local log = require "ckfb.log"
local options = require "ckfb.options"
local sets = require "ckfb.sets"

local OPTIONS = {
  usage = "ckfb prune --keep N | --older-than DURATION [options]",
  summary = "Deletes old backup sets whole: velero backups, database backup objects in S3, manifests.",
  { "--config", "FILE", "configuration (default ./ckfb.yaml, then /etc/ckfb/ckfb.yaml)" },
  { "--keep", "N", "keep the newest N sets" },
  { "--older-than", "DURATION", "delete the sets older than DURATION (30d, 12h, 2w)" },
  { "--yes", nil, "really delete (otherwise only show what would go)" },
  { "--json", nil, "print what was (or would be) deleted as JSON" },
}

local UNITS = { s = 1, m = 60, h = 3600, d = 86400, w = 604800 }

local function seconds(duration)
  local n, unit = tostring(duration):match("^(%d+)([smhdw])$")
  return n and tonumber(n) * UNITS[unit] or nil
end

local function doomed(all, opts)
  local out = {}
  local keep, age = tonumber(opts.keep), opts.older_than and seconds(opts.older_than)
  for i, entry in ipairs(all) do
    local when = ckf.epoch(tostring(entry.manifest.id):match("%d+T%d+Z"))
    if (keep and i > keep) or (age and when and os.time() - when > age) then out[#out + 1] = entry end
  end
  return out
end

--- Deletes one set's parts, the manifest last: a set is never half gone from the list.
local function delete_set(cfg, store, m)
  for _, v in ipairs(m.velero or {}) do
    if v.backup_name then
      local ok, err = juju.run(cfg.velero.app .. "/leader", "run-cli",
        { command = "backup delete " .. v.backup_name .. " --confirm" }, { model = cfg.models.velero, wait = 300 })
      if not ok then return nil, err end
    end
  end
  for _, d in ipairs(m.databases or {}) do
    if store and d.bucket and d.s3_key then
      local prefix = d.s3_key:gsub("%.md5$", "")
      local listed, err = store:list { bucket = d.bucket, prefix = prefix }
      if not listed then return nil, err end
      local keys = {}
      for _, o in ipairs(listed.objects) do keys[#keys + 1] = o.key end
      local result = store:delete(d.bucket, keys)
      if next(result.errors) then return nil, select(2, next(result.errors)) end
    end
  end
  return sets.forget(cfg, store, m.id)
end

local function main(args)
  local ok, opts = pcall(options.parse, OPTIONS, args)
  if not ok then io.stderr:write("ckfb prune: ", tostring(opts.message or opts), "\n"); return 2 end
  if opts.help then print(options.help(OPTIONS)); return 0 end
  if not opts.keep and not opts.older_than then
    io.stderr:write("ckfb prune: give --keep N or --older-than DURATION (try 'ckfb prune --help')\n")
    return 2
  end
  if (opts.keep and not tostring(opts.keep):match("^%d+$")) or (opts.older_than and not seconds(opts.older_than)) then
    io.stderr:write("ckfb prune: --keep takes a number, --older-than a duration such as 30d\n")
    return 2
  end
  local cfg, cerr = sets.load(opts.config)
  if not cfg then io.stderr:write("ckfb prune: ", cerr.message, "\n"); return 2 end
  local store = sets.s3(cfg)
  local all, err = sets.list(cfg, store)
  if not all then io.stderr:write("ckfb prune: ", err.message, "\n"); return 1 end
  local victims = doomed(all, opts)
  local report = { deleted = {}, kept = #all - #victims, dry_run = not opts.yes }
  local code = 0
  for _, entry in ipairs(victims) do
    local id = entry.manifest.id
    if not opts.yes then
      io.stderr:write("would delete ", id, " (", tostring(entry.manifest.status), ")\n")
      report.deleted[#report.deleted + 1] = id
    else
      local done, derr = delete_set(cfg, store, entry.manifest)
      if done then
        log.info("deleted backup set %s", id)
        report.deleted[#report.deleted + 1] = id
      else
        log.error("could not delete %s (kept whole): %s", id, derr.message)
        code = 1
      end
    end
  end
  if not opts.yes and #victims > 0 then io.stderr:write("(nothing deleted: add --yes)\n") end
  if opts.json then print(json.encode(report, { pretty = true })) end
  return code
end

return main({ ... })
