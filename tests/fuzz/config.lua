-- Fuzz target: the configuration file of the CKF scripts.
local config = require "ckfb.config"
local sets = require "ckfb.sets"
local path = os.tmpname()
return function(data)
  assert(require("ckfb.file").write(path, data))
  local cfg, err = config.load(sets.DEFAULTS, { file = path })
  assert(cfg or err, "neither a configuration nor an error")
end
