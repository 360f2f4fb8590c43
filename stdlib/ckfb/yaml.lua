--- ckfb.yaml: YAML on libyaml (host/yaml.c).
-- decode returns every document of a stream; aliases share one table; the
-- YAML 1.2 core schema types plain scalars; no tag runs code. Null is
-- json.null, so a key with an empty value is still present.
local core = require "ckfb.core.yaml"
local json = require "ckfb.json"

local M = {}

M.null = json.null

--- decode_all(text) -> {doc, ...} | nil, err (err names line and column)
function M.decode_all(text)
  if type(text) ~= "string" then error("yaml.decode: expected a string, got " .. type(text), 2) end
  return core.decode(text)
end

--- decode(text) -> doc1, doc2, ... (nothing for an empty stream) | nil, err
function M.decode(text)
  if type(text) ~= "string" then error("yaml.decode: expected a string, got " .. type(text), 2) end
  local docs, err = core.decode(text)
  if not docs then return nil, err end
  return table.unpack(docs, 1, #docs)
end

--- encode(value) -> text: block style, sorted keys, ambiguous strings quoted.
function M.encode(value)
  return core.encode(value)
end

return M
