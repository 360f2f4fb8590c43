-- Fuzz target: loading a kubeconfig (a file, as kubectl reads it).
local k8s = require "ckfb.k8s"
return function(data)
  local path = os.tmpname()  -- one file per input, removed before anything can fail
  local written = require("ckfb.file").write(path, data)
  local cfg, err = k8s.load_config { kubeconfig = path }
  os.remove(path)
  assert(written, "cannot write the input")
  assert(cfg or err, "neither settings nor an error")
end
