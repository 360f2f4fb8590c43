--- ckfb.lock: a lock shared by every ckfb run on this machine (a directory,
-- made atomically, holding who took it). A lock whose process is gone is
-- stale and is taken over.
local sys = require "ckfb.core.sys"
local json = require "ckfb.json"
local errors = require "ckfb.error"
local file = require "ckfb.file"

local M = {}

local Lock = { __name = "ckfb.lock" }
Lock.__index = Lock

local function read_owner(dir)
  local owner = json.decode(file.read(dir .. "/owner.json") or "")
  return type(owner) == "table" and owner or nil
end

--- acquire(dir, name, info) -> lock | nil, err (code "lock.held", detail = the owner)
function M.acquire(dir, name, info)
  local ok, err = file.mkdir_p(dir)
  if not ok then return nil, err end
  local path = dir .. "/" .. name .. ".lock"
  for _ = 1, 2 do
    if sys.mkdir(path) then
      local owner = { pid = sys.getpid(), started = os.date("!%Y-%m-%dT%H:%M:%SZ") }
      for k, v in pairs(info or {}) do owner[k] = v end
      assert(file.write(path .. "/owner.json", json.encode(owner)))
      return setmetatable({ path = path, owner = owner }, Lock)
    end
    local owner = read_owner(path)
    if owner and sys.alive(math.tointeger(owner.pid) or -1) then
      return nil, errors.new("lock.held", string.format("another ckfb run (pid %s, since %s) holds %s",
        tostring(owner.pid), tostring(owner.started), path), owner)
    end
    os.remove(path .. "/owner.json")  -- stale: its process is gone
    os.remove(path)
  end
  return nil, errors.new("lock.held", "cannot take the lock " .. path)
end

function Lock:release()
  if self.released then return end
  self.released = true
  os.remove(self.path .. "/owner.json")
  os.remove(self.path)
end

Lock.__close = Lock.release
Lock.__gc = Lock.release

return M
