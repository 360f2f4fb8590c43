--- ckfb.metrics: Prometheus metrics in the text exposition format, written for
-- node_exporter's textfile collector (atomically: the collector must never read
-- half a file). https://prometheus.io/docs/instrumenting/exposition_formats/
local file = require "ckfb.file"

local M = {}

local function escape(value)
  return (tostring(value):gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub('"', '\\"'))
end

local function labels(set)
  local keys = {}
  for k in pairs(set or {}) do keys[#keys + 1] = k end
  if #keys == 0 then return "" end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = k .. '="' .. escape(set[k]) .. '"' end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function number(v)
  if math.type(v) == "integer" then return tostring(v) end
  return string.format("%.17g", v)
end

--- render({ {name, help, type = "gauge", samples = { {labels = {...}, value = n}, ...} }, ...}) -> text
function M.render(families)
  local out = {}
  for _, f in ipairs(families) do
    out[#out + 1] = "# HELP " .. f.name .. " " .. f.help:gsub("\\", "\\\\"):gsub("\n", "\\n")
    out[#out + 1] = "# TYPE " .. f.name .. " " .. (f.type or "gauge")
    for _, s in ipairs(f.samples) do out[#out + 1] = f.name .. labels(s.labels) .. " " .. number(s.value) end
  end
  return table.concat(out, "\n") .. "\n"
end

--- write_textfile(path, families) -> true | nil, err (a temporary name, then a rename)
function M.write_textfile(path, families)
  return file.write_atomic(path, M.render(families))
end

-------------------------------------------------------------------- a backup's

M.STATUSES = { "complete", "partial", "failed", "refused", "interrupted" }

local function sample(value, base, extra)
  local l = {}
  for k, v in pairs(base) do l[k] = v end
  for k, v in pairs(extra or {}) do l[k] = v end
  return { labels = l, value = value }
end

--- What the backup sets recorded here say: the newest complete one's end, and counts by status.
local function recorded(cfg, dep)
  local sets, ckf = require "ckfb.sets", require "ckfb.ckf"
  local last, by = nil, {}
  for _, entry in ipairs(sets.list(cfg, nil) or {}) do
    local m = entry.manifest
    if entry.trusted then
      by[m.status] = (by[m.status] or 0) + 1
      local t = m.status == "complete" and ckf.epoch(m.finished)
      if t and (not last or t > last) then last = t end
    end
  end
  local counts = {}
  for _, s in ipairs(M.STATUSES) do
    if s ~= "refused" then counts[#counts + 1] = sample(by[s] or 0, dep, { status = s }) end
  end
  return last, counts
end

--- The families of a backup run: its end, outcome, durations (whole and per step), and
-- the sets recorded, labelled with the deployment (the Kubeflow model).
function M.backup_families(cfg, status, plan)
  local dep = { deployment = cfg.models.kubeflow }
  local outcome, steps = {}, {}
  for _, s in ipairs(M.STATUSES) do outcome[#outcome + 1] = sample(s == status and 1 or 0, dep, { status = s }) end
  for _, step in ipairs(plan.steps) do
    if step.duration then steps[#steps + 1] = sample(step.duration, dep, { step = step.id }) end
  end
  local last_success, counts = recorded(cfg, dep)
  local families = {
    { name = "ckfb_backup_last_run_timestamp_seconds", help = "When the last backup run ended.",
      samples = { sample(os.time(), dep) } },
    { name = "ckfb_backup_last_run_status", help = "The last run's outcome: 1 for the status it ended with.",
      samples = outcome },
    { name = "ckfb_backup_last_run_duration_seconds", help = "How long the last run took.",
      samples = { sample(require("ckfb.sys").now() - plan.started, dep) } },
    { name = "ckfb_backup_step_duration_seconds", help = "How long each step of the last run took.",
      samples = steps },
    { name = "ckfb_backup_sets", help = "The backup sets recorded here, by status.", samples = counts },
  }
  if last_success then
    table.insert(families, 2, { name = "ckfb_backup_last_success_timestamp_seconds",
      help = "When the newest complete backup set was finished.", samples = { sample(last_success, dep) } })
  end
  return families
end

--- record_backup(cfg, status, plan): writes the run's metrics to cfg.metrics.textfile, if one
-- is configured; a failure to write only warns (the backup is what matters).
function M.record_backup(cfg, status, plan)
  local path = cfg.metrics and cfg.metrics.textfile or ""
  if path == "" then return end
  local ok, err = M.write_textfile(path, M.backup_families(cfg, status, plan))
  if not ok then require("ckfb.log").warn("the metrics were not written to %s: %s", path, err.message) end
end

return M
