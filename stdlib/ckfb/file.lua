--- ckfb.file: whole-file reads and writes, with the `nil, err` convention.
local errors = require "ckfb.error"
local sys = require "ckfb.core.sys"

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
