--- ckfb.config: a YAML configuration checked against a schema of defaults.
-- Every key of the schema may be given; an unknown key is an error that
-- names it (with its path), and so is a value of the wrong type. The schema
-- says what is a list: a non-empty list, or json.array() for an empty one;
-- an empty mapping ({}) takes any keys (labels, say); json.null takes an
-- optional open mapping.
local yaml = require "ckfb.yaml"
local json = require "ckfb.json"
local errors = require "ckfb.error"
local sys = require "ckfb.core.sys"

local M = {}

local function describe(v)
  if v == json.null then return "null" end
  if type(v) == "table" then return #v > 0 and "list" or "mapping" end
  return type(v)
end

local copy = json.copy

local function is_list(schema)
  return #schema > 0 or json.is_array(schema)
end

--- Merges `given` over a copy of `defaults`, checking names and types.
-- A default of json.null accepts a mapping (an optional section, open).
local function merge(defaults, given, path)
  local out = copy(defaults)
  if given == nil or given == json.null then return out end
  local want_list = is_list(defaults)
  if type(given) ~= "table" or (#given > 0 and not want_list) or (want_list and next(given) ~= nil and #given == 0) then
    return nil, string.format("%s must be a %s, not a %s", path == "" and "the configuration" or path,
      want_list and "list" or "mapping", describe(given))
  end
  if want_list then return setmetatable(copy(given), getmetatable(defaults)) end  -- a list: replaced
  if next(defaults) == nil then return copy(given) end  -- an open mapping
  for k, v in pairs(given) do
    local where = path == "" and tostring(k) or (path .. "." .. tostring(k))
    local d = defaults[k]
    if d == nil then return nil, "unknown key '" .. where .. "'" end
    if d == json.null then
      if type(v) ~= "table" and v ~= json.null then return nil, where .. " must be a mapping" end
      out[k] = v
    elseif type(d) == "table" then
      local sub, err = merge(d, v, where)
      if not sub then return nil, err end
      out[k] = sub
    elseif type(v) ~= type(d) then
      return nil, string.format("%s must be a %s, not a %s", where, type(d), describe(v))
    else
      out[k] = v
    end
  end
  return out
end

--- load(defaults, {file =, search = {paths...}}) -> config, the file used (or nil) | nil, err
function M.load(defaults, opts)
  opts = opts or {}
  local file = opts.file
  if not file then
    for _, candidate in ipairs(opts.search or {}) do
      if sys.filetype(candidate) == "file" then file = candidate; break end
    end
  end
  if not file then return copy(defaults) end
  local text, ferr = require("ckfb.file").read(file)
  if not text then return nil, errors.new("config", "cannot read the configuration: " .. tostring(ferr)) end
  local docs, yerr = yaml.decode_all(text)
  if not docs then return nil, errors.new("config", file .. ": " .. yerr.message, { cause = yerr.code }) end
  if #docs > 1 then
    return nil, errors.new("config", string.format("%s: holds %d YAML documents; a configuration is one", file, #docs))
  end
  local doc = docs[1]
  local config, merr = merge(defaults, doc, "")
  if not config then return nil, errors.new("config", file .. ": " .. merr) end
  return config, file
end

return M
