--- ckfb.metrics: Prometheus metrics in the text exposition format, written for
-- node_exporter's textfile collector (atomically: the collector must never read
-- half a file) and pushed to a Pushgateway (a CronJob's pod has no node_exporter).
-- https://prometheus.io/docs/instrumenting/exposition_formats/
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

--- merge({families, ...}) -> families: the samples of the families of one name together,
-- in the order they first came (one textfile for several deployments).
function M.merge(lists)
  local out, by_name = {}, {}
  for _, families in ipairs(lists) do
    for _, f in ipairs(families) do
      local into = by_name[f.name]
      if not into then
        into = { name = f.name, help = f.help, type = f.type, samples = {} }
        by_name[f.name], out[#out + 1] = into, into
      end
      table.move(f.samples, 1, #f.samples, #into.samples + 1, into.samples)
    end
  end
  return out
end

--- A grouping label as a path segment: plain, or base64url (label@base64/...) when the
-- value holds what a path segment cannot (pushgateway README, "URL").
local function grouping_segment(name, value)
  if value:match("^[%w%-_.:]+$") then return name .. "/" .. value end
  local b64 = require("ckfb.core.hash").base64(value):gsub("+", "-"):gsub("/", "_")
  return name .. "@base64/" .. b64
end

--- push(gateway, job, grouping, families) -> true | nil, err: PUT to a Prometheus Pushgateway
-- under the job ("ckfb", "ckfb-drill") and the grouping labels ({deployment = ...}): it
-- replaces what that group held, so a deployment's last run is all it shows.
function M.push(gateway, job, grouping, families)
  local keys = {}
  for k in pairs(grouping) do keys[#keys + 1] = k end
  table.sort(keys)
  local url = gateway:gsub("/+$", "") .. "/metrics/job/" .. job
  for _, k in ipairs(keys) do url = url .. "/" .. grouping_segment(k, tostring(grouping[k])) end
  local r, err = require("ckfb.http").request { method = "PUT", url = url, body = M.render(families),
    headers = { ["Content-Type"] = "text/plain; version=0.0.4" }, timeout = 30 }
  if not r then return nil, err end
  if r.status >= 300 then
    return nil, require("ckfb.error").new("metrics.push", string.format("the Pushgateway answered %d: %s", r.status,
      (r.body or ""):match("^[^\n]*")))
  end
  return true
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
    local mine = type(m.models) ~= "table" or m.models.kubeflow == cfg.models.kubeflow  -- several share a directory
    if entry.trusted and mine then
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

--- The textfile of a kind of run: cfg.metrics.textfile for backups, beside it
-- "<name>-drill.prom" for drills (node_exporter reads every *.prom of its directory). -> path | nil
local function textfile(cfg, kind)
  local path = cfg.metrics and cfg.metrics.textfile or ""
  if path == "" then return nil end
  if kind == "drill" then return path:gsub("%.prom$", "") .. "-drill.prom" end
  return path
end

--- write_configured(cfg, families [, kind]): to the textfile configured for that kind of run,
-- if any; a failure only warns (the backup is what matters).
function M.write_configured(cfg, families, kind)
  local path = textfile(cfg, kind)
  if not path then return end
  local ok, err = M.write_textfile(path, families)
  if not ok then require("ckfb.log").warn("the metrics were not written to %s: %s", path, err.message) end
end

--- Pushes a run's families to cfg.metrics.pushgateway, if one is configured; a failure only warns.
local function push_configured(cfg, job, families)
  local gateway = cfg.metrics and cfg.metrics.pushgateway or ""
  if gateway == "" then return end
  local ok, err = M.push(gateway, job, { deployment = cfg.models.kubeflow }, families)
  if not ok then
    require("ckfb.log").warn("the metrics were not pushed to %s: %s", gateway:gsub("//[^/@]*@", "//"), err.message)
  end
end

--- record_backup(cfg, status, plan [, collected]): the run's metrics pushed to
-- cfg.metrics.pushgateway and written to cfg.metrics.textfile, where configured; with
-- collected (a list), kept there instead of written, for the one textfile of several
-- deployments. A failure only warns.
function M.record_backup(cfg, status, plan, collected)
  local families = M.backup_families(cfg, status, plan)
  push_configured(cfg, "ckfb", families)
  if collected then collected[#collected + 1] = families else M.write_configured(cfg, families) end
end

--- The newest time a set of this deployment was drilled restorable, from the manifests here.
local function last_restorable_drill(cfg)
  local sets, ckf = require "ckfb.sets", require "ckfb.ckf"
  local last
  for _, entry in ipairs(sets.list(cfg, nil) or {}) do
    local m, d = entry.manifest, entry.manifest.drilled
    local mine = type(m.models) ~= "table" or m.models.kubeflow == cfg.models.kubeflow
    local t = entry.trusted and mine and type(d) == "table" and d.verdict == "restorable" and ckf.epoch(d.time)
    if t and (not last or t > last) then last = t end
  end
  return last
end

--- record_drill(cfg, restorable, plan): a drill's metrics, to "<textfile>-drill.prom" and the
-- Pushgateway (job "ckfb-drill"), where configured.
function M.record_drill(cfg, restorable, plan)
  local dep = { deployment = cfg.models.kubeflow }
  local families = {
    { name = "ckfb_drill_last_run_timestamp_seconds", help = "When the last drill ended.",
      samples = { sample(os.time(), dep) } },
    { name = "ckfb_drill_last_run_restorable", help = "Whether the last drill found its set restorable (1) or not (0).",
      samples = { sample(restorable and 1 or 0, dep) } },
    { name = "ckfb_drill_last_run_duration_seconds", help = "How long the last drill took.",
      samples = { sample(require("ckfb.sys").now() - plan.started, dep) } },
  }
  local last = last_restorable_drill(cfg)
  if last then
    families[#families + 1] = { name = "ckfb_drill_last_success_timestamp_seconds",
      help = "When a drill last found a backup set restorable.", samples = { sample(last, dep) } }
  end
  push_configured(cfg, "ckfb-drill", families)
  M.write_configured(cfg, families, "drill")
end

return M
