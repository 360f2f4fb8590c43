--- ckfb.sys: what scripts and hooks may ask of the host (host/sys.c; ckfb.core.*
-- is private to the stdlib): its version, terminals, the process, a stop.
local sys = require "ckfb.core.sys"
local loop = require "ckfb.core.loop"

local M = {}

--- ckfb's version (semver, "0.5.0") and the commit it was built from ("0cdcc33").
M.version = sys.version
M.commit = sys.commit

--- isatty(fd) -> whether file descriptor fd is a terminal.
M.isatty = sys.isatty

--- getpid() -> this process's id.
M.getpid = sys.getpid

--- interrupted() -> the signal number (SIGINT 2, SIGTERM 15) once the run was asked to stop, else nil.
M.interrupted = sys.interrupted

--- env(name) -> the environment variable's value, nil when it is unset or empty
-- (as botocore and the AWS CLI read theirs).
function M.env(name)
  local v = os.getenv(name)
  if v and v ~= "" then return v end
end

--- now() -> seconds on a monotonic clock (for durations, not dates).
M.now = loop.now

return M
