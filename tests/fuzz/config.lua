-- Fuzz target: the configuration file of the CKF scripts.
local config = require "ckfb.config"
local sets = require "ckfb.sets"
return function(data)
  local path = os.tmpname()  -- one file per input, removed before anything can fail
  local written = require("ckfb.file").write(path, data)
  local cfg, err = config.load(sets.DEFAULTS, { file = path })
  os.remove(path)
  assert(written, "cannot write the input")
  assert(cfg or err, "neither a configuration nor an error")
end
