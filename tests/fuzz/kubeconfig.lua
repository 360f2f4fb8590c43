-- Fuzz target: loading a kubeconfig (a file, as kubectl reads it).
local k8s = require "ckfb.k8s"
local path = os.tmpname()
return function(data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  local cfg, err = k8s.load_config { kubeconfig = path }
  assert(cfg or err, "neither settings nor an error")
end
