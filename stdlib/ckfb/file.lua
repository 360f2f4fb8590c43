--- ckfb.file: whole-file reads and writes, with the `nil, err` convention,
-- atomic writes and directories that only their owner can change (host/file.c).
local errors = require "ckfb.error"
local sys = require "ckfb.core.sys"
local core = require "ckfb.core.file"

local M = {}

--- read(path) -> the contents | nil, "path: reason"
function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text, rerr = f:read("a")
  f:close()
  if not text then return nil, path .. ": " .. tostring(rerr) end
  return text
end

--- write(path, text) -> true | nil, err (code "io"; a full disk shows at the write or the close)
function M.write(path, text)
  local f, err = io.open(path, "wb")
  if not f then return nil, errors.new("io", "cannot write " .. tostring(err)) end
  local ok, werr = f:write(text)
  local closed, cerr = f:close()
  if not ok or not closed then
    return nil, errors.new("io", "cannot write " .. path .. ": " .. tostring(werr or cerr))
  end
  return true
end

--- write_atomic(path, text) -> true | nil, err: a new 0600 file beside path, fsynced, renamed
-- over it; never through a link at path, never a half-written file on a full disk.
function M.write_atomic(path, text)
  local ok, err = core.write_atomic(path, text)
  if not ok then return nil, errors.new("io", "cannot write " .. err) end
  return true
end

--- trusted_dir(path) -> true | nil, err: a real directory (not a link) of this user that
-- nobody else can write, as ssh requires of ~/.ssh.
function M.trusted_dir(path)
  local st, err = core.stat(path)
  if not st then return nil, errors.new("io", "cannot use " .. err) end
  if st.type ~= "directory" then
    return nil, errors.new("file.untrusted", string.format("%s is a %s, not a directory", path, st.type))
  end
  local uid = core.getuid()
  if st.uid ~= uid then
    return nil, errors.new("file.untrusted", string.format("%s belongs to uid %d, not to this user (uid %d)",
      path, st.uid, uid))
  end
  if st.mode & 18 ~= 0 then  -- 022: group or others may write
    return nil, errors.new("file.untrusted", string.format("%s is writable by others (mode %o): chmod go-w %s",
      path, st.mode, path))
  end
  return true
end

--- private_dir(path) -> true | nil, err: makes the directory (0700) and checks it is trusted.
function M.private_dir(path)
  local ok, err = M.mkdir_p(path)
  if not ok then return nil, err end
  return M.trusted_dir(path)
end

--- mkdir_p(path) -> true | nil, err: makes a directory and its parents (0700).
function M.mkdir_p(path)
  local prefix = path:sub(1, 1) == "/" and "" or "."
  for part in path:gmatch("[^/]+") do
    prefix = prefix .. "/" .. part
    local ok, msg, why = sys.mkdir(prefix)
    if not ok and why ~= "exists" then return nil, errors.new("io", "cannot create " .. msg) end
  end
  return true
end

return M
