-- Drives the juju emulator (tests/emulators/juju) from specs: resets its
-- state, sets per-action behaviour, and reads back the calls ckfb made.
local json = require "ckfb.json"

local M = {}

M.state_path = assert(os.getenv("FAKE_JUJU_STATE"), "tests/run sets FAKE_JUJU_STATE")
M.log_path = assert(os.getenv("FAKE_JUJU_LOG"), "tests/run sets FAKE_JUJU_LOG")

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

--- Restores a CKF world (by default tests/emulators/ckf-state.json) and empties the call log.
function M.reset(change, from)
  local state = json.decode(assert(read(from or "tests/emulators/ckf-state.json")))
  if change then change(state) end
  write(M.state_path, json.encode(state))
  write(M.log_path, "")
end

--- Edits the live state.
function M.edit(change)
  local state = json.decode(assert(read(M.state_path)))
  change(state)
  write(M.state_path, json.encode(state))
end

-- The emulator's profiles (tests/emulators/juju): the fixture is the strict one (juju
-- 3.6.12, a snap, mysql-k8s rev 313); "old" is juju 3.6.8 (storage import on Kubernetes
-- behind a feature flag) with mysql-k8s rev 255 (backs up from a 2-unit cluster).
M.PROFILES = {
  strict = function() end,
  old = function(state)
    state.version = "3.6.8"
    for _, model in pairs(state.models) do
      for _, app in pairs(model.applications) do
        if app.charm == "mysql-k8s" then app.rev = 255 end
      end
    end
  end,
}

--- Switches the live state to a profile.
function M.profile(name)
  M.edit(assert(M.PROFILES[name], "no such profile"))
end

--- Sets how "app/action" behaves: {latency =, fail =, exception =, unschedulable =}.
function M.behave(key, behaviour)
  M.edit(function(state) state.behaviour[key] = behaviour end)
end

--- Every recorded invocation: {argv = {...}, params = {...} | json.null, params_mode = "0o600"}.
function M.calls()
  local calls = {}
  for line in (read(M.log_path) or ""):gmatch("[^\n]+") do calls[#calls + 1] = json.decode(line) end
  return calls
end

--- The recorded calls whose command line matches a Lua pattern: {line = "...", params}.
function M.matching(pattern)
  local out = {}
  for _, c in ipairs(M.calls()) do
    local line = table.concat(c.argv, " ")
    if line:find(pattern) then out[#out + 1] = { line = line, params = c.params } end
  end
  return out
end

--- The PIDs of the recorded calls matching a Lua pattern that are still running.
function M.running(pattern)
  local sys = require "ckfb.core.sys"
  local out = {}
  for _, c in ipairs(M.calls()) do
    local pid = math.tointeger(c.pid)
    if table.concat(c.argv, " "):find(pattern) and pid and sys.alive(pid) then out[#out + 1] = pid end
  end
  return out
end

--- The recorded argv lists whose first word is `command`.
function M.argvs(command)
  local out = {}
  for _, c in ipairs(M.calls()) do
    if c.argv[1] == command then out[#out + 1] = c.argv end
  end
  return out
end

return M
