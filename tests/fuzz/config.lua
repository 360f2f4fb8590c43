-- Fuzz target: the configuration file of the CKF scripts.
local config = require "ckfb.config"
local sets = require "ckfb.sets"
local path = os.tmpname()
return function(data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  local cfg, err = config.load(sets.DEFAULTS, { file = path })
  assert(cfg or err, "neither a configuration nor an error")
end
