-- Configurations for end-to-end specs: the stand-ins' ckfb.yaml, each copy
-- with a state directory and an S3 prefix of its own.
local yaml = require "ckfb.yaml"

local M = {}

local standins = require "tests.stdlib.ckfb.helpers.standins"
local TMP, STANDINS = standins.TMP, standins.STANDINS
local counter = 0

--- isolated([change]) -> the path of a new configuration file, and its table.
function M.isolated(change)
  local name, path, taken
  repeat  -- each spec file loads this module afresh: a name an earlier file took has its file
    counter = counter + 1
    name = string.format("iso-%d-%d", require("ckfb.core.sys").getpid(), counter)
    path = TMP .. "/ckfb-" .. name .. ".yaml"
    taken = io.open(path)
    if taken then taken:close() end
  until not taken
  local cfg = yaml.decode(assert(io.open(STANDINS .. "/ckfb.yaml")):read("a"))
  cfg.state_dir = TMP .. "/state-" .. name
  cfg.s3.prefix = name .. "/"
  if change then change(cfg) end
  local f = assert(io.open(path, "w"))
  f:write(yaml.encode(cfg))
  f:close()
  return path, cfg
end

--- variant(change) -> the path of a copy of the stand-ins' configuration, changed by
-- change(cfg), that keeps their state directory and S3 prefix.
function M.variant(change)
  counter = counter + 1
  local cfg = yaml.decode(assert(io.open(STANDINS .. "/ckfb.yaml")):read("a"))
  change(cfg)
  local path = string.format("%s/ckfb-variant-%d-%d.yaml", TMP, require("ckfb.core.sys").getpid(), counter)
  local f = assert(io.open(path, "w"))
  f:write(yaml.encode(cfg))
  f:close()
  return path
end

return M
