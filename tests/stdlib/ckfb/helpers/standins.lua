-- The stand-ins tests/run starts (juju emulator, S3, Kubernetes) as end-to-end
-- specs see them, and ckfb run as a command against them.
local proc = require "ckfb.proc"

local M = {}

M.CKFB = assert(os.getenv("CKFB"))
M.TMP = assert(os.getenv("CKFB_TEST_TMP"))
M.STANDINS = assert(os.getenv("CKFB_TEST_STANDINS"))
M.STATE = M.TMP .. "/juju-state.standin.json"  -- the juju emulator's state
M.CONFIG = M.STANDINS .. "/ckfb.yaml"

--- ckfb(args...) -> the finished process {code, stdout, stderr} of `ckfb args...`.
function M.ckfb(...)
  return assert(proc.run({ M.CKFB, ... }, { timeout = 120 }))
end

return M
