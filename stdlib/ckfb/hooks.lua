--- ckfb.hooks: site Lua files that run at named points of a run.
-- A hook file receives this module as `...` (and as the global `hooks`
-- inside its own environment) and registers functions:
--
--   local hooks = ...
--   hooks.on("before_backup", function(ctx) ... end)
--   hooks.on("after_backup", notify, { advisory = true })  -- its error only warns
--
-- Events: preflight, before_backup, before_step, after_step, after_backup,
-- before_restore, after_restore, on_failure, and on_end, which runs last in
-- every run, refusals included (for notifications). Each function gets the
-- run's context (plan, results so far). An error in a hook fails the run
-- unless the hook was registered advisory (on_end's errors only warn: the
-- run is over).
local errors = require "ckfb.error"
local log = require "ckfb.log"

local M = {}

M.EVENTS = { preflight = true, before_backup = true, before_step = true, after_step = true,
             after_backup = true, on_failure = true, before_restore = true, after_restore = true, on_end = true }

local registered = {}

function M.on(event, fn, opts)
  if not M.EVENTS[event] then error("hooks.on: unknown event '" .. tostring(event) .. "'", 2) end
  if type(fn) ~= "function" then error("hooks.on: expected a function", 2) end
  registered[event] = registered[event] or {}
  local info = debug.getinfo(2, "S")
  table.insert(registered[event], { fn = fn, advisory = opts and opts.advisory, source = info.short_src })
end

--- Loads a hook file in its own environment; errors while loading are fatal.
function M.load(path)
  local env = setmetatable({ hooks = M }, { __index = _G })
  local chunk, err = loadfile(path, "t", env)
  if not chunk then return nil, errors.new("hooks.load", err) end
  local ok, lerr = pcall(chunk, M)
  if not ok then return nil, errors.new("hooks.load", path .. ": " .. tostring(lerr)) end
  return true
end

--- Loads every hook file of a configuration's list. -> true | nil, err (the first that failed)
function M.load_all(paths)
  for _, path in ipairs(paths or {}) do
    local ok, err = M.load(path)
    if not ok then return nil, err end
  end
  return true
end

--- Runs every function registered for event; returns true | nil, err (the first non-advisory failure).
function M.run(event, ctx)
  for _, h in ipairs(registered[event] or {}) do
    local ok, err = pcall(h.fn, ctx)
    if not ok then
      local message = string.format("hook %s (%s) failed: %s", event, h.source, tostring(err))
      if not h.advisory then return nil, errors.new("hooks.failed", message) end
      log.warn("%s (advisory: the run goes on)", message)
    end
  end
  return true
end

--- Forgets every registration (tests).
function M.reset()
  registered = {}
end

return M
