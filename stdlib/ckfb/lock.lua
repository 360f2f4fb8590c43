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
  if self.lease then self.lease:release() end
  self.handle:release()
end

Lock.__close = Lock.release

-------------------------------------------------------------------- a Lease, across machines

-- Where Kubernetes is configured, a coordination.k8s.io Lease in the Kubeflow
-- namespace keeps two operators on two machines from running on the same CKF:
-- one that is held and renewed within its duration refuses the other; one left
-- by a ckfb that died expires and is taken over. Renewed every third of its
-- duration while held, deleted on release.
local LEASES = "leases.coordination.k8s.io"
local Lease = { __name = "ckfb.lease" }
Lease.__index = Lease

local function micro_time(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. string.format(".%06dZ", math.floor((t % 1) * 1e6))
end

--- True when a Lease's holder can no longer hold it: not renewed within its duration, or
-- held by a process of this host that is gone (a ckfb stopped by Ctrl-C cannot reach the
-- API server to delete it; our own flock, taken first, proves no run of this host is alive).
local function expired(spec, now, host)
  local renewed = require("ckfb.ckf").epoch(tostring(spec.renewTime or ""):gsub("%.%d+Z$", "Z"))
  if not renewed or renewed + (math.tointeger(spec.leaseDurationSeconds) or 0) < now then return true end
  local their_host, pid = tostring(spec.holderIdentity):match("^([^/]+)/(%d+)/")
  return their_host == host and not sys.alive(tonumber(pid))
end

--- lease(client, namespace, name, holder [, {duration = 120}]) -> lease | nil, err (code lock.held)
-- holder: "<host>/<pid>/<what>".
function M.lease(client, namespace, name, holder, opts)
  local duration = (opts or {}).duration or 120
  local now = os.time()
  local spec = { holderIdentity = holder, leaseDurationSeconds = duration, acquireTime = micro_time(now),
    renewTime = micro_time(now) }
  local current, err = client:get(LEASES, name, { namespace = namespace })
  local taken
  if current then
    local theirs = current.spec or {}
    if theirs.holderIdentity ~= holder and not expired(theirs, now, holder:match("^[^/]+")) then
      return nil, errors.new("lock.held", string.format("another ckfb (%s) holds the Lease %s/%s, renewed %s",
        tostring(theirs.holderIdentity), namespace, name, tostring(theirs.renewTime)), theirs)
    end
    current.spec = spec
    taken, err = client:replace(LEASES, current, { namespace = namespace })
  elseif errors.is(err, "k8s.not_found") then
    taken, err = client:create(LEASES, { apiVersion = "coordination.k8s.io/v1", kind = "Lease",
      metadata = { name = name, namespace = namespace }, spec = spec }, { namespace = namespace })
  end
  if not taken then
    if errors.is(err, "k8s.conflict") or errors.is(err, "k8s.already_exists") then
      return nil, errors.new("lock.held", "another ckfb took the Lease " .. namespace .. "/" .. name .. " first")
    end
    return nil, err
  end
  local lease = setmetatable({ client = client, namespace = namespace, name = name, holder = holder, object = taken },
    Lease)
  local task = require "ckfb.task"
  lease.renewer = task.spawn(function()
    while true do
      task.sleep(duration / 3)
      lease.object.spec.renewTime = micro_time(os.time())
      local renewed = client:replace(LEASES, lease.object, { namespace = namespace })
      if renewed then lease.object = renewed end
    end
  end)
  return lease
end

--- Deletes the Lease if it is still ours. Never raises: when the run was interrupted the
-- loop is stopping and the Lease stays, for this host's next run (its holder is gone) or
-- its expiry to free.
function Lease:release()
  if self.released then return end
  self.released = true
  self.renewer:cancel()
  if sys.interrupted() then return end
  pcall(function()
    local current = self.client:get(LEASES, self.name, { namespace = self.namespace })
    if current and (current.spec or {}).holderIdentity == self.holder then
      self.client:delete(LEASES, self.name, { namespace = self.namespace })
    end
  end)
end

return M
