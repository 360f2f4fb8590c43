-- Fuzz target: juju's JSON: a run's output read as a task, a status read by the helpers.
local juju = require "ckfb.juju"
local json = require "ckfb.json"
return function(data)
  juju._read_task(data)
  local status = json.decode(data)
  for _, app in ipairs { "kfp-db", "a", "1" } do
    juju.units(status, app)
    juju.leader(status, app)
    juju.is_active_idle(status, app)
  end
end
