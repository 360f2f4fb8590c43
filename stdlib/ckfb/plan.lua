--- ckfb.plan: a procedure as data, and the one runner for it.
-- A step is a table: {id, label, stage, chain, run = function(step) -> result | nil, err,
-- already_done = bool (done before this run: shown, not run), by_hand = the command an
-- operator would type instead, on_error = function(err, step)}. Stages run in the order
-- their first step was added; the chains of a stage run in parallel; the steps of a chain
-- run one after another, and a failed step stops its chain (the rest: "not run").
-- The runner owns the live view, the before_step/after_step hooks, timing and the
-- per-step record that reports show.
local task = require "ckfb.task"
local loop = require "ckfb.core.loop"
local json = require "ckfb.json"
local errors = require "ckfb.error"
local hooks = require "ckfb.hooks"

local M = {}

local Plan = {}
Plan.__index = Plan

--- new{view = a ckfb.progress view (optional), context = function(event, step) -> hook context}
function M.new(opts)
  opts = opts or {}
  return setmetatable({ steps = {}, by_id = {}, stages = {}, view = opts.view, context = opts.context,
    started = loop.now() }, Plan)
end

--- A deep copy of plain data (tables shared stay shared): what a hook is handed, so that
-- a hook reading the run cannot change it.
function M.snapshot(v, seen)
  if type(v) ~= "table" then return v end
  seen = seen or {}
  if seen[v] then return seen[v] end
  local out = {}
  seen[v] = out
  for k, x in pairs(v) do out[k] = M.snapshot(x, seen) end
  return setmetatable(out, getmetatable(v))
end

local REQUIRED = { id = "string", label = "string", stage = "string", run = "function" }

function Plan:add(step)
  for field, kind in pairs(REQUIRED) do
    if type(step[field]) ~= kind then error(string.format("plan:add: '%s' must be a %s", field, kind), 2) end
  end
  if self.by_id[step.id] then error("plan:add: a second step '" .. step.id .. "'", 2) end
  step.chain = step.chain or step.id
  step.status = step.already_done and "skipped" or "pending"
  self.steps[#self.steps + 1] = step
  self.by_id[step.id] = step
  if not self.stages[step.stage] then
    self.stages[step.stage] = true
    self.stages[#self.stages + 1] = step.stage
  end
  if self.view then self.view:add(step.id, step.label, step.stage) end
  return step
end

function Plan:get(id)
  return self.by_id[id]
end

--- What a report and a hook see of a step: plain data, a copy.
local function describe(step)
  return { id = step.id, stage = step.stage, chain = step.chain, label = step.label,
    already_done = step.already_done == true, status = step.status, started = step.started_at,
    duration = step.duration, detail = step.detail, error = step.error, by_hand = step.by_hand }
end

--- The plan as data (JSON-ready): every step with its status, start, duration and result.
function Plan:describe()
  local out = {}
  for i, step in ipairs(self.steps) do out[i] = describe(step) end
  return json.array(out)
end

--- The plan as text, for --dry-run and for a run without a live view.
function Plan:text()
  local out, stage, chain = { "plan (steps in a chain run in order; chains of a stage run in parallel):" }, nil, nil
  for i, s in ipairs(self.steps) do
    if s.stage ~= stage then out[#out + 1] = "  " .. s.stage .. ":"; stage, chain = s.stage, nil end
    if s.chain ~= chain then out[#out + 1] = "    [" .. s.chain .. "]"; chain = s.chain end
    out[#out + 1] = string.format("      %2d. %s%s", i, s.label, s.already_done and "  (already done: skipped)" or "")
  end
  return table.concat(out, "\n")
end

local function hook(self, event, step, extra)
  local ctx = self.context and self.context(event, describe(step)) or { event = event, step = describe(step) }
  for k, v in pairs(extra or {}) do ctx[k] = v end
  return hooks.run(event, ctx)
end

--- Runs one step: hooks, view, timing; -> its result | nil, err.
function Plan:run_step(step)
  if step.already_done then
    if self.view then self.view:finish(step.id, "skipped", "already done") end
    step.detail = "already done"
    return { detail = "already done" }
  end
  step.status, step.started, step.started_at = "running", loop.now(), os.date("!%Y-%m-%dT%H:%M:%SZ")
  if self.view then self.view:start(step.id) end
  local ok, herr = hook(self, "before_step", step)
  local result, err
  if ok then result, err = step.run(step) else err = herr end
  if not result and not errors.is(err) then
    err = errors.new("plan.step_failed", step.id .. ": " .. tostring(err or "failed without a reason"))
  end
  step.duration = loop.now() - step.started
  step.status = result and "ok" or "failed"
  step.detail = result and type(result) == "table" and result.detail or nil
  step.error = err and err.message
  if self.view then self.view:finish(step.id, step.status, step.detail or step.error) end
  hook(self, "after_step", step, { result = result, error = err })
  if not result and step.on_error then step.on_error(err, step) end
  return result, err
end

local function chains_of(self, stage)
  local order, steps = {}, {}
  for _, step in ipairs(self.steps) do
    if step.stage == stage then
      if not steps[step.chain] then order[#order + 1] = step.chain; steps[step.chain] = {} end
      table.insert(steps[step.chain], step)
    end
  end
  return order, steps
end

--- Runs a chain's steps in order; the first failure stops it. -> true | nil, err
function Plan:run_chain(steps)
  for i, step in ipairs(steps) do
    if i > 1 and self.view and not step.already_done then self.view:queue(step.id) end
  end
  for i, step in ipairs(steps) do
    local result, err = self:run_step(step)
    if not result then
      for j = i + 1, #steps do
        steps[j].status = "not run"
        if self.view then self.view:finish(steps[j].id, "not run", "after " .. step.id .. " failed") end
      end
      return nil, err
    end
  end
  return true
end

--- Runs a stage: its chains in parallel. -> true | nil, the first chain's error (every chain runs to its end).
function Plan:run_stage(stage)
  local order, steps = chains_of(self, stage)
  if self.view then self.view:stage(stage, self:stage_number(stage), #self.stages) end
  local failures, jobs = {}, {}
  for i, chain in ipairs(order) do
    jobs[i] = function()
      local ok, err = self:run_chain(steps[chain])
      if not ok then failures[#failures + 1] = err end
      return true
    end
  end
  task.all(jobs)
  if #failures > 0 then return nil, failures[1] end
  return true
end

function Plan:stage_number(stage)
  for i, s in ipairs(self.stages) do
    if s == stage then return i end
  end
end

--- The commands to finish by hand: by_hand of every step that did not succeed, in plan order.
function Plan:by_hand()
  local out = {}
  for _, step in ipairs(self.steps) do
    if step.by_hand and step.status ~= "ok" and step.status ~= "skipped" then out[#out + 1] = step.by_hand end
  end
  return out
end

return M
