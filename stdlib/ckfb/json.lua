--- ckfb.json: JSON on lua-cjson (decode, string escaping) with a
-- deterministic encoder: keys are always sorted, so reports and manifests
-- diff cleanly; `pretty` indents for people.
local cjson = require("cjson").new()

local M = {}

cjson.decode_max_depth(512)

--- The JSON null: distinct from nil, so it survives in tables.
M.null = cjson.null

local ARRAY = { __ckfb_array = true, __name = "json.array" }

--- Marks t as an array, so that an empty one encodes as [] (not {}).
function M.array(t)
  return setmetatable(t or {}, ARRAY)
end

--- True when t was marked by M.array.
function M.is_array(t)
  return getmetatable(t) == ARRAY
end

--- A deep copy of plain data that keeps what is shared shared (a table seen before is
-- the same copy again: a YAML alias costs one table, not its expansion) and keeps
-- metatables (an array stays an array).
function M.copy(v, seen)
  if type(v) ~= "table" then return v end
  seen = seen or {}
  if seen[v] then return seen[v] end
  local out = {}
  seen[v] = out
  for k, x in pairs(v) do out[k] = M.copy(x, seen) end
  return setmetatable(out, getmetatable(v))
end

-- lua-cjson reads every number as a float; a whole number within 2^53 (where a double
-- is exact) comes back as a Lua integer, so a pid prints as 30356, not 30356.0.
local EXACT = 2 ^ 53

local function as_integer(x)
  if math.type(x) ~= "float" or x ~= x or x < -EXACT or x > EXACT then return x end
  return math.tointeger(x) or x
end

local function integers(v)
  for k, x in pairs(v) do
    if type(x) == "table" then integers(x) elseif math.type(x) == "float" then v[k] = as_integer(x) end
  end
  return v
end

--- decode(text) -> value | nil, err
function M.decode(text)
  if type(text) ~= "string" then error("json.decode: expected a string, got " .. type(text), 2) end
  local ok, value = pcall(cjson.decode, text)
  if ok then return type(value) == "table" and integers(value) or as_integer(value) end
  local errors = require "ckfb.error"
  return nil, errors.new("json.parse", "invalid JSON: " .. tostring(value))
end

local encode_value

-- cjson escapes "/" as "\/"; JSON does not need it and people read these files.
local function string_text(s)
  return (cjson.encode(s):gsub("\\/", "/"))
end

local function number_text(n)
  if math.type(n) == "integer" then return string.format("%d", n) end
  if n ~= n or n == math.huge or n == -math.huge then return "null" end
  for precision = 15, 17 do  -- shortest text that reads back exactly
    local text = string.format("%." .. precision .. "g", n)
    if tonumber(text) == n then return text end
  end
end

local function is_array(t)
  if getmetatable(t) == ARRAY then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n
end

local function encode_table(t, out, indent, depth, seen)
  if seen[t] then error("json.encode: a table contains itself", 0) end
  if depth > 512 then error("json.encode: nested too deeply", 0) end
  seen[t] = true
  local pad = indent and ("\n" .. string.rep(indent, depth + 1)) or ""
  local close = indent and ("\n" .. string.rep(indent, depth)) or ""
  local sep = indent and ": " or ":"
  if is_array(t) then
    if #t == 0 then out[#out + 1] = "[]" else
      out[#out + 1] = "["
      for i = 1, #t do
        out[#out + 1] = (i > 1 and "," or "") .. pad
        encode_value(t[i], out, indent, depth + 1, seen)
      end
      out[#out + 1] = close .. "]"
    end
  else
    local keys = {}
    for k in pairs(t) do
      local kt = type(k)
      if kt ~= "string" and kt ~= "number" then error("json.encode: cannot encode a " .. kt .. " key", 0) end
      keys[#keys + 1] = kt == "number" and number_text(k) or k
    end
    table.sort(keys)
    if #keys == 0 then out[#out + 1] = "{}" else
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        local v = t[k]
        if v == nil then v = t[tonumber(k)] end
        out[#out + 1] = (i > 1 and "," or "") .. pad .. string_text(k) .. sep
        encode_value(v, out, indent, depth + 1, seen)
      end
      out[#out + 1] = close .. "}"
    end
  end
  seen[t] = nil
end

function encode_value(v, out, indent, depth, seen)
  local vt = type(v)
  if vt == "string" then out[#out + 1] = string_text(v)
  elseif vt == "number" then out[#out + 1] = number_text(v)
  elseif vt == "boolean" then out[#out + 1] = tostring(v)
  elseif v == nil or v == M.null then out[#out + 1] = "null"
  elseif vt == "table" then encode_table(v, out, indent, depth, seen)
  else error("json.encode: cannot encode a " .. vt, 0) end
end

--- encode(value [, {pretty = true, indent = "  "}]) -> text; keys sorted.
function M.encode(value, opts)
  local indent = opts and (opts.indent or (opts.pretty and "  ")) or nil
  local out = {}
  encode_value(value, out, indent, 0, {})
  return table.concat(out)
end

return M
