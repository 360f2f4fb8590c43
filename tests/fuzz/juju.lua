-- Fuzz target: juju's JSON: a run's output read as a task, a status read by the
-- helpers and by the CKF readers (topology, S3 block, endpoints, list-backups).
local juju = require "ckfb.juju"
local json = require "ckfb.json"
local ckf = require "ckfb.ckf"
return function(data)
  juju._read_task(data)
  ckf.parse_mysql_backups(data)
  local status = json.decode(data)
  for _, app in ipairs { "kfp-db", "a", "1" } do
    juju.units(status, app)
    juju.leader(status, app)
    juju.is_active_idle(status, app)
    local entry = type(status) == "table" and type(status.applications) == "table" and status.applications[app]
    ckf.database_units(entry, 2)
    ckf.s3_block(entry)
    ckf.missing_endpoint(status, app .. ":velero-backup-config")
  end
end
