-- Fuzz target: juju's JSON: a run's output read as a task, a status read by the
-- helpers and by the CKF readers (cluster topology, S3 block, endpoints,
-- integrators, list-backups).
local juju = require "ckfb.juju"
local json = require "ckfb.json"
local ckf = require "ckfb.ckf"
return function(data)
  juju._read_task(data)
  ckf.mysql.parse_backups(data)
  local status = json.decode(data)
  ckf.mysql.topology(type(status) == "table" and status.results or status)
  for _, app in ipairs { "kfp-db", "a", "1" } do
    juju.units(status, app)
    juju.leader(status, app)
    juju.is_active_idle(status, app)
    local entry = type(status) == "table" and type(status.applications) == "table" and status.applications[app]
    ckf.mysql.units_needed(entry, 2)
    ckf.mysql.s3_block(entry)
    ckf.mysql.integrator(status, app)
    ckf.missing_endpoint(status, app .. ":velero-backup-config")
  end
end
