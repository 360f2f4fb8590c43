--- ckfb.progress: what a run is doing. On a terminal, a live view (every
-- step, its state and elapsed time, redrawn in place); otherwise plain
-- timestamped lines through ckfb.log.
local sys = require "ckfb.core.sys"
local loop = require "ckfb.core.loop"
local log = require "ckfb.log"

local M = {}

local View = {}
View.__index = View

local MARKS = { pending = "·", running = "…", ok = "✓", failed = "✗", skipped = "-" }

--- new{live = bool (default: stderr is a terminal and NO_COLOR/-q allow it)}
function M.new(opts)
  opts = opts or {}
  local live = opts.live
  if live == nil then live = sys.isatty(2) and log.enabled("info") end
  return setmetatable({ steps = {}, by_id = {}, live = live, drawn = 0 }, View)
end

function View:draw()
  if not self.live then return end
  local rows, cols = sys.term_size(2)
  if rows and #self.steps + 2 > rows then  -- cannot redraw in place: plain lines from here
    self.live = false
    return
  end
  local out = {}
  if self.drawn > 0 then out[1] = string.format("\27[%dA", self.drawn) end
  local now = loop.now()
  for _, s in ipairs(self.steps) do
    local elapsed = s.started and ((s.finished or now) - s.started) or nil
    local line = string.format(" %s %-52s %6s  %s", MARKS[s.state], log.printable(s.label),
      elapsed and string.format("%.1fs", elapsed) or "", log.printable(s.detail or ""))
    if cols and (utf8.len(line) or #line) >= cols then  -- a wrapped line would break the redraw
      line = line:sub(1, (utf8.offset(line, cols) or cols) - 1)
    end
    out[#out + 1] = "\27[2K" .. line .. "\n"
  end
  io.stderr:write(table.concat(out))
  io.stderr:flush()
  self.drawn = #self.steps
end

--- Declares the steps up front (the plan), so the view shows what is to come.
function View:add(id, label)
  local s = { id = id, label = label, state = "pending" }
  self.steps[#self.steps + 1] = s
  self.by_id[id] = s
  self:draw()
end

function View:start(id)
  local s = self.by_id[id]
  s.state, s.started = "running", loop.now()
  if not self.live then log.info("%s: started", s.label) end
  self:draw()
end

--- Marks a step ok, failed or skipped, with a short detail.
function View:finish(id, state, detail)
  local s = self.by_id[id]
  s.state, s.finished, s.detail = state, loop.now(), detail
  if not self.live then
    local took = s.started and string.format(" (%.1fs)", s.finished - s.started) or ""
    local say = state == "failed" and log.error or log.info
    say("%s: %s%s%s", s.label, state, took, detail and (": " .. detail) or "")
  end
  self:draw()
end

return M
