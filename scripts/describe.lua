-- ckfb describe SET | --latest: one backup set, as an operator reads it: its state,
-- age, where it is stored, each component with its backup, its live status (what the
-- charms list now), its object in S3 and size where known, and when Velero expires it.
--   ckfb describe SET | --latest [--config FILE] [-m MODEL] [--format table|json|yaml]
-- Exit codes: 0 ok, 1 failed, 2 usage or configuration (an unknown set).
local ckf = require "ckfb.ckf"
local options = require "ckfb.options"
local sets = require "ckfb.sets"

local OPTIONS = {
  usage = "ckfb describe SET | --latest [options]",
  summary = "Shows one backup set: its components, their live status, objects, sizes and expiry.",
  sets.CONFIG_OPTION,
  sets.MODEL_OPTION,
  { "--latest", nil, "the newest trusted set" },
  options.FORMAT, options.FORMAT_SHORT, options.JSON,
  epilog = { "", "exit codes: 0 ok, 1 failed, 2 usage or configuration error (or no such set)" },
}

--- The size of each component's object in S3, where a bucket and key were recorded.
local function sizes(m, store)
  if not store then return end
  for _, list in ipairs { m.velero or {}, m.databases or {} } do
    for _, c in ipairs(list) do
      local st = c.bucket and c.s3_key and store:stat(c.bucket, c.s3_key)
      c.size = st and st.size or nil
    end
  end
end

local function days(t, now)
  if not t then return "" end
  return string.format("expires in %.1f days", (t - now) / 86400)
end

local function show(m, entry, now)
  print(string.format("set %s: %s, %s old, stored %s", m.id, m.state, ckf.age(m.id, now),
    table.concat(entry.where, "+")))
  print(string.format("  %s to %s by ckfb %s; models %s, %s", tostring(m.started), tostring(m.finished),
    tostring(m.ckfb), tostring((m.models or {}).kubeflow), tostring((m.models or {}).velero)))
  local drilled = type(m.drilled) == "table" and m.drilled
  if drilled then
    print(string.format("drilled: %s, %s", tostring(drilled.verdict), tostring(drilled.time)))
    for _, c in ipairs(type(drilled.components) == "table" and drilled.components or {}) do
      if not c.restorable then print(string.format("  %-16s %s", tostring(c.component), tostring(c.reason))) end
    end
  end
  print("velero:")
  for _, v in ipairs(m.velero or {}) do
    print(string.format("  %-16s %-8s %-48s %s%s", ckf.short_target(v.target), v.live, tostring(v.backup_name),
      days(v.expires, now), v.size and string.format(", %d bytes of metadata", v.size) or ""))
  end
  print("databases:")
  for _, d in ipairs(m.databases or {}) do
    print(string.format("  %-16s %-8s %-22s %s%s", d.app, d.live, tostring(d.backup_id),
      d.unit and ("on " .. d.unit) or "", d.s3_key and string.format(", s3://%s/%s%s", d.bucket, d.s3_key,
        d.size and string.format(" (%d bytes)", d.size) or "") or ""))
  end
  for _, s in ipairs(m.skipped or {}) do print(string.format("skipped: %s (%s)", s.target, s.reason)) end
end

local function main(args)
  local ok, opts, rest = pcall(options.parse, OPTIONS, args)
  if not ok then return options.fail(OPTIONS, 2, tostring(opts.message or opts)) end
  if opts.help then print(options.help(OPTIONS)); return 0 end
  if not rest[1] and not opts.latest then
    return options.fail(OPTIONS, 2, "name a backup set (see ckfb list) or give --latest")
  end
  local cfg, cerr = sets.load(opts.config, nil, { model = opts.m })
  if not cfg then return options.fail(OPTIONS, 2, cerr.message) end
  local store = sets.s3(cfg)
  local entry, err = sets.find(cfg, store, rest[1])
  if not entry then return options.fail(OPTIONS, 2, err.message) end
  local m, now = entry.manifest, os.time()
  local velero, databases = ckf.live(cfg)
  m.complete = ckf.mark_live(m, velero, databases)
  m.state, m.stored = ckf.set_state(m, true), entry.where
  sizes(m, store)
  options.output(opts, m, function() show(m, entry, now) end)
  return 0
end

return main({ ... })
