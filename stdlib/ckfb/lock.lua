--- ckfb.lock: a lock shared by every ckfb run on this machine: flock(2) on a
-- file in the state directory. The kernel releases it when its holder exits
-- or dies, so there is no stale lock to guess about and take over.
local json = require "ckfb.json"
local errors = require "ckfb.error"
local file = require "ckfb.file"
local sys = require "ckfb.core.sys"
local core = require "ckfb.core.file"

local M = {}

local Lock = { __name = "ckfb.lock" }
Lock.__index = Lock

--- acquire(dir, name, info) -> lock | nil, err (code "lock.held", detail = the holder's info)
function M.acquire(dir, name, info)
  local ok, err = file.private_dir(dir)
  if not ok then return nil, err end
  local path = dir .. "/" .. name .. ".lock"
  local handle, msg, why = core.lock(path)
  if not handle then
    if why ~= "held" then return nil, errors.new("lock.error", "cannot take the lock " .. tostring(msg)) end
    local owner = json.decode(file.read(path) or "")
    owner = type(owner) == "table" and owner or {}
    return nil, errors.new("lock.held", string.format("another ckfb run (pid %s, since %s) holds %s",
      tostring(math.tointeger(owner.pid) or owner.pid), tostring(owner.started), path), owner)
  end
  local owner = { pid = sys.getpid(), started = os.date("!%Y-%m-%dT%H:%M:%SZ") }
  for k, v in pairs(info or {}) do owner[k] = v end
  handle:write(json.encode(owner))
  return setmetatable({ path = path, owner = owner, handle = handle }, Lock)
end

function Lock:release()
  if self.released then return end
  self.released = true
  self.handle:release()
end

Lock.__close = Lock.release

return M
