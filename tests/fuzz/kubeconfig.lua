-- Fuzz target: loading a kubeconfig (a file, as kubectl reads it).
local k8s = require "ckfb.k8s"
local path = os.tmpname()
return function(data)
  assert(require("ckfb.file").write(path, data))
  local cfg, err = k8s.load_config { kubeconfig = path }
  assert(cfg or err, "neither settings nor an error")
end
