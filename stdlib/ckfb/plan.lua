--- ckfb.plan: a procedure as data, and the one runner for it.
-- A step is a table:
--   id, label, stage      names; the stage groups steps run together
--   chain                 steps of one chain run in order (default: its own chain)
--   run(step)             -> a result table ({detail = text, ...}) | nil, err
--   already_done          done before this run: shown, not run
--   by_hand               what an operator would type instead: a string, or
--                         function(step) -> string | {strings} | nil (read when the
--                         step did not succeed, so it can say what its result left)
--   follow_up(step)       -> string | nil: a command to run after the run, even on success
--   retries, retry_if(err), retry_delay: run again up to `retries` more times when
--                         retry_if says the failure is worth it
--   on_error(err, step)   called once the step has failed for good
-- Stages run in the order their first step was added (run_stages); the chains of a
-- stage run in parallel; a failed step stops its chain (the rest: "not run"), and a
-- failed stage stops the run unless declared keep_going (p:stage). The runner owns the
-- live view, hooks (one context for every event, M.context), timing, retries, the
-- per-step record that reports show, and the next steps.
local task = require "ckfb.task"
local loop = require "ckfb.core.loop"
local json = require "ckfb.json"
local errors = require "ckfb.error"
local hooks = require "ckfb.hooks"

local M = {}

local Plan = {}
Plan.__index = Plan

--- new{kind = "backup" | "restore" | ..., id = the run's id, config = cfg,
--   view = a ckfb.progress view (optional), k8s = a Kubernetes client (optional),
--   state = function() -> {status =, checks =, results...}: what hooks see of the run}
function M.new(opts)
  opts = opts or {}
  return setmetatable({ steps = {}, by_id = {}, stages = {}, keep_going = {}, view = opts.view, kind = opts.kind,
    id = opts.id, config = opts.config, k8s = opts.k8s, state = opts.state, started = loop.now() }, Plan)
end

--- Declares how a stage ends: keep_going = the stages after it run even when it failed.
function Plan:stage(name, opts)
  self.keep_going[name] = opts and opts.keep_going or nil
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
  step.index = #self.steps
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

--- A step's command by hand now: a string, a list of strings, or nil.
local function by_hand(step)
  if type(step.by_hand) == "function" then return step.by_hand(step) end
  return step.by_hand
end

--- What a report and a hook see of a step: plain data, a copy.
local function describe(step)
  return { id = step.id, stage = step.stage, chain = step.chain, label = step.label,
    already_done = step.already_done == true, status = step.status, started = step.started_at,
    duration = step.duration, detail = step.detail, error = step.error, by_hand = json.copy(by_hand(step)) }
end

--- The plan as data (JSON-ready): every step with its status, start, duration and result.
function Plan:describe()
  local out = {}
  for i, step in ipairs(self.steps) do out[i] = describe(step) end
  return json.array(out)
end

--- The plan as text, for --dry-run and for a run without a live view; with
-- {by_hand = true}, each step's command by hand under it.
function Plan:text(opts)
  local out, stage, chain = { "plan (steps in a chain run in order; chains of a stage run in parallel):" }, nil, nil
  for i, s in ipairs(self.steps) do
    if s.stage ~= stage then out[#out + 1] = "  " .. s.stage .. ":"; stage, chain = s.stage, nil end
    if s.chain ~= chain then out[#out + 1] = "    [" .. s.chain .. "]"; chain = s.chain end
    out[#out + 1] = string.format("      %2d. %s%s", i, s.label, s.already_done and "  (already done: skipped)" or "")
    if opts and opts.by_hand and type(s.by_hand) == "string" then out[#out + 1] = "          $ " .. s.by_hand end
  end
  return table.concat(out, "\n")
end

--- Shows the plan in a live view from now on (steps declared before it too).
function Plan:show(view)
  self.view = view
  for _, s in ipairs(self.steps) do view:add(s.id, s.label, s.stage) end
end

--- The context every hook gets, in every event: a read-only view of the run, as copies
-- (a hook cannot change the run through it). event, kind, id, status, config, plan
-- (every step, as describe() gives it), step (the current one, in before_step and
-- after_step), checks and the results so far (what the plan's state() gives), k8s
-- (the configuration's Kubernetes client, not a copy).
function Plan:context(event, step, extra)
  local ctx = json.copy(self.state and self.state() or {})
  ctx.event, ctx.kind, ctx.id, ctx.config = event, self.kind, self.id, json.copy(self.config)
  ctx.plan, ctx.step, ctx.k8s = self:describe(), step and describe(step), self.k8s
  for k, v in pairs(extra or {}) do ctx[k] = v end
  return ctx
end

--- Runs the hooks of an event with the context. -> true | nil, err
function Plan:hook(event, step, extra)
  return hooks.run(event, self:context(event, step, extra))
end

local function attempt(step)
  local result, err = step.run(step)
  if not result and not errors.is(err) then
    err = errors.new("plan.step_failed", step.id .. ": " .. tostring(err or "failed without a reason"))
  end
  return result, err
end

--- step.run, again while its retry_if says a failure is worth another try.
local function run_with_retries(step)
  local result, err = attempt(step)
  for n = 1, step.retries or 0 do
    if result or not (step.retry_if and step.retry_if(err)) then break end
    require("ckfb.log").warn("%s: %s; again (%d of %d)", step.id, err.message, n, step.retries)
    task.sleep(step.retry_delay or 0)
    result, err = attempt(step)
  end
  return result, err
end

--- note(step, detail [, milestone]): what a running step is doing now, for the view.
function Plan:note(step, detail, milestone)
  step.progress = detail
  if self.view then self.view:note(step.id, detail, milestone) end
end

--- Runs one step: hooks, view, timing, retries; -> its result | nil, err.
function Plan:run_step(step)
  if step.already_done then
    if self.view then self.view:finish(step.id, "skipped", "already done") end
    step.detail = "already done"
    return { detail = "already done" }
  end
  step.status, step.started, step.started_at = "running", loop.now(), os.date("!%Y-%m-%dT%H:%M:%SZ")
  if self.view then self.view:start(step.id) end
  local ok, herr = self:hook("before_step", step)
  local result, err
  if ok then result, err = run_with_retries(step) else err = herr end
  step.duration = loop.now() - step.started
  step.status = result and "ok" or "failed"
  step.detail = result and type(result) == "table" and result.detail or nil
  step.error = err and err.message
  if self.view then self.view:finish(step.id, step.status, step.detail or step.error) end
  self:hook("after_step", step, { result = json.copy(result), error = err })
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

--- Runs the stages in order (default: every stage). -> true when the run went to its end
-- (a stage declared keep_going may have failed: its steps say so) | nil, the error of
-- the stage that stopped it.
function Plan:run_stages(stages)
  for _, stage in ipairs(stages or self.stages) do
    local ok, err = self:run_stage(stage)
    if not ok and not self.keep_going[stage] then return nil, err end
  end
  return true
end

--- The stages declared before `stage`, in order (a site's stages among them).
function Plan:stages_before(stage)
  local out = {}
  for _, s in ipairs(self.stages) do
    if s == stage then break end
    out[#out + 1] = s
  end
  return out
end

function Plan:stage_number(stage)
  for i, s in ipairs(self.stages) do
    if s == stage then return i end
  end
end

local function append(out, v)
  if type(v) == "table" then
    for _, line in ipairs(v) do out[#out + 1] = line end
  elseif v then
    out[#out + 1] = v
  end
end

--- The next steps, in plan order: by_hand of every step that did not succeed, then every
-- follow_up. A JSON array of strings.
function Plan:next_steps()
  local out = json.array()
  for _, step in ipairs(self.steps) do
    if step.status ~= "ok" and step.status ~= "skipped" then
      append(out, by_hand(step))
    end
  end
  for _, step in ipairs(self.steps) do
    if step.follow_up then append(out, step.follow_up(step)) end
  end
  return out
end

--- The first step that failed, or nil.
function Plan:failed_step()
  for _, step in ipairs(self.steps) do
    if step.status == "failed" then return step end
  end
end

--- The run is over: the live view stays as last drawn.
function Plan:close()
  if self.view then self.view:close() end
end

-------------------------------------------------------------------- reports

--- emit(report, {format = "json" | "yaml" | "table", report = FILE}) -> false when the report
-- file could not be written: prints the report as JSON or YAML when asked (a table is the
-- script's to print), writes it to FILE (JSON) when asked.
function M.emit(report, opts)
  local text = json.encode(report, { pretty = true })
  local written = true
  if opts.report then
    local ok, err = require("ckfb.file").write(opts.report, text .. "\n")
    if not ok then
      require("ckfb.log").error("the report was not written: %s%s", err.message,
        report.manifest_path and " (the manifest is " .. report.manifest_path .. ")" or "")
      written = false
    end
  end
  require("ckfb.options").output(opts, report)
  return written
end

return M
