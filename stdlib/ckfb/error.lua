--- ckfb.error: the structured errors every binding returns.
-- Expected failures return `nil, err`; err is a table {code, message, detail}
-- whose tostring is "code: message". Misuse raises instead.
local sys = require "ckfb.core.sys"

local M = {}
local meta = sys.error_meta()

--- A new error: code is a stable dotted name ("proc.timeout"), message one line.
function M.new(code, message, detail)
  assert(type(code) == "string", "error code must be a string")
  return setmetatable({ code = code, message = tostring(message or code), detail = detail }, meta)
end

--- True when v is a ckfb error, and (given a code) its code or a parent of it:
-- is(err, "http") matches "http.timeout".
function M.is(v, code)
  if getmetatable(v) ~= meta then return false end
  if code == nil then return true end
  return v.code == code or v.code:sub(1, #code + 1) == code .. "."
end

--- Raises a new error (for scripts whose policy is to stop).
function M.raise(code, message, detail)
  error(M.new(code, message, detail), 2)
end

--- Like assert, for `nil, err` results: returns the values or raises err.
function M.check(value, err, ...)
  if value == nil or value == false then error(err or "check failed", 2) end
  return value, err, ...
end

return M
