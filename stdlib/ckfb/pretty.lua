--- ckfb.pretty: values printed for people (the REPL's output): nested
-- tables indented, keys sorted, long lists cut with a count, json.null as
-- null, every registered secret redacted.
local json = require "ckfb.json"
local log = require "ckfb.log"

local M = {}

M.max_items = 30    -- list entries and map keys shown per table
M.max_depth = 6

local function is_identifier(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
end

local function sort_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta == "number" end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return keys
end

local render

local function render_table(t, indent, depth, seen)
  if seen[t] then return "<cycle>" end
  if depth >= M.max_depth then return "{...}" end
  if next(t) == nil then return "{}" end
  seen[t] = true
  local pad = string.rep("  ", indent + 1)
  local lines, n = {}, #t
  local keys = sort_keys(t)
  local shown = 0
  for _, k in ipairs(keys) do
    shown = shown + 1
    if shown > M.max_items then
      lines[#lines + 1] = pad .. string.format("-- %d more", #keys - M.max_items)
      break
    end
    local label = ""
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then
      label = (is_identifier(k) and k or ("[" .. render(k, 0, depth + 1, seen) .. "]")) .. " = "
    end
    lines[#lines + 1] = pad .. label .. render(t[k], indent + 1, depth + 1, seen) .. ","
  end
  seen[t] = nil
  return "{\n" .. table.concat(lines, "\n") .. "\n" .. string.rep("  ", indent) .. "}"
end

function render(v, indent, depth, seen)
  if v == json.null then return "null" end
  local tv = type(v)
  if tv == "string" then return string.format("%q", v):gsub("\\\n", "\\n") end
  if tv == "table" then
    local mt = getmetatable(v)
    if mt and mt.__tostring then return tostring(v) end
    return render_table(v, indent, depth, seen)
  end
  return tostring(v)
end

--- format(...) -> the text of every value, one per line, redacted.
function M.format(...)
  local out = {}
  for i = 1, select("#", ...) do out[i] = render((select(i, ...)), 0, 0, {}) end
  return log.redact(table.concat(out, "\n"))
end

return M
