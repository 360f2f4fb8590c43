--- ckfb.progress: what a run is doing. On a terminal, a live view (a header
-- with the stage and the total time, then every step: its state, its time,
-- its label and detail; redrawn in place and every second while a step
-- runs); otherwise plain timestamped lines through ckfb.log.
-- At any width the state and time columns come first, so they stay visible
-- when a long label is cut at 80 columns.
local sys = require "ckfb.core.sys"
local loop = require "ckfb.core.loop"
local log = require "ckfb.log"

local M = {}

local View = {}
View.__index = View

local MARKS = { pending = "·", queued = "⋯", running = "▶", ok = "✓", failed = "✗", skipped = "-",
                ["not run"] = "·" }
local TICK = 1  -- seconds between redraws while a step runs

--- new{live = bool (default: stderr is a terminal and the log level allows it), title = text}
function M.new(opts)
  opts = opts or {}
  local live = opts.live
  if live == nil then live = sys.isatty(2) and log.enabled("info") end
  local view = setmetatable({ steps = {}, by_id = {}, live = live, drawn = 0, title = opts.title or "ckfb",
    started = loop.now(), running = 0 }, View)
  if live then log.set_overlay(view) end
  return view
end

--- Erases the view (a log line is about to go where it was); draw() puts it back below.
function View:clear()
  if self.live and self.drawn > 0 then
    io.stderr:write(string.format("\27[%dA\27[J", self.drawn))
    self.drawn = 0
  end
end

--- The run is over: the view stays as last drawn, and log lines go below it again.
function View:close()
  self:draw()
  self.live = false
  log.set_overlay(nil)
end

local function clock(seconds)
  if not seconds then return "" end
  if seconds < 60 then return string.format("%.0fs", seconds) end
  return string.format("%dm%02ds", seconds // 60, math.floor(seconds % 60))
end

--- Cuts a line to the width: a wrapped line would break the redraw.
local function fit(line, cols)
  if cols and (utf8.len(line) or #line) >= cols then
    line = line:sub(1, (utf8.offset(line, cols) or cols) - 1)
  end
  return line
end

local function step_line(s, now)
  local elapsed = s.started and ((s.finished or now) - s.started) or nil
  local state = s.state == "queued" and "queued" or ""
  if s.state == "running" and s.detail then  -- what it is doing now goes before the label, so 80 columns show it
    return string.format(" %s %6s %-6s %s · %s", MARKS[s.state], clock(elapsed), state, log.printable(s.detail),
      log.printable(s.label))
  end
  return string.format(" %s %6s %-6s %s  %s", MARKS[s.state], clock(elapsed), state, log.printable(s.label),
    log.printable(s.detail or ""))
end

function View:header(now)
  local stage = self.stage_name and string.format("stage %d/%d %s", self.stage_index, self.stage_count,
    self.stage_name) or ""
  return string.format("%s  %s  %s elapsed", self.title, stage, clock(now - self.started))
end

function View:draw()
  if not self.live then return end
  local rows, cols = sys.term_size(2)
  if rows and #self.steps + 3 > rows then  -- cannot redraw in place: plain lines from here
    self.live = false
    return
  end
  local out = {}
  if self.drawn > 0 then out[1] = string.format("\27[%dA", self.drawn) end
  local now = loop.now()
  out[#out + 1] = "\27[2K" .. fit(self:header(now), cols) .. "\n"
  for _, s in ipairs(self.steps) do out[#out + 1] = "\27[2K" .. fit(step_line(s, now), cols) .. "\n" end
  io.stderr:write(table.concat(out))
  io.stderr:flush()
  self.drawn = #self.steps + 1
end

--- Redraws every second while a step runs, so that timers tick.
function View:tick()
  if not self.live or self.ticker then return end
  local task = require "ckfb.task"  -- loaded only by a live view
  self.ticker = task.spawn(function()
    while self.running > 0 and self.live do
      task.sleep(TICK)
      self:draw()
    end
    self.ticker = nil
  end)
end

--- Declares the steps up front (the plan), so the view shows what is to come.
function View:add(id, label)
  local s = { id = id, label = label, state = "pending" }
  self.steps[#self.steps + 1] = s
  self.by_id[id] = s
  self:draw()
end

--- The stage now running (the header's counter).
function View:stage(name, index, count)
  self.stage_name, self.stage_index, self.stage_count = name, index, count
  if not self.live then log.info("stage %d/%d: %s", index, count, name) end
  self:draw()
end

--- A step waiting for another to finish first (same chain, or one unit's queue).
function View:queue(id)
  local s = self.by_id[id]
  if s.state == "pending" then s.state = "queued" end
  self:draw()
end

function View:start(id)
  local s = self.by_id[id]
  s.state, s.started = "running", loop.now()
  self.running = self.running + 1
  if not self.live then log.info("%s: started", s.label) end
  self:draw()
  self:tick()
end

--- What a running step is doing now (a phase, a count); milestone: also logged when the
-- view is not live (a phase change, not every count).
function View:note(id, detail, milestone)
  local s = self.by_id[id]
  if s.state ~= "running" then return end
  s.detail = detail
  if not self.live and milestone then log.info("%s: %s", s.label, detail) end
  self:draw()
end

--- Marks a step ok, failed, skipped or not run, with a short detail.
function View:finish(id, state, detail)
  local s = self.by_id[id]
  if s.state == "running" then self.running = self.running - 1 end
  s.state, s.finished, s.detail = state, s.started and loop.now(), detail
  if not self.live and log.enabled("info") then  -- quiet (-q): the command's summary line says it
    local took = s.started and string.format(" (%.1fs)", s.finished - s.started) or ""
    local say = state == "failed" and log.error or log.info
    say("%s: %s%s%s", s.label, state, took, detail and (": " .. detail) or "")
  end
  self:draw()
end

return M
