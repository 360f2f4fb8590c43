--- ckfb.ckf: what ckfb knows of Charmed Kubeflow's charms, read from their
-- sources (each rule names its file; ../shared/reference/juju-and-charms.md
-- §12), shared by the backup, restore and list scripts.
local juju = require "ckfb.juju"
local k8s = require "ckfb.k8s"
local errors = require "ckfb.error"

local M = {}

-------------------------------------------------------------------- mysql-k8s

-- From rev 300 (canonical/mysql-k8s-operator commit 7cb1839) create-backup
-- needs the cluster status ok or ok_partial (lib/charms/mysql/v0/backups.py,
-- _can_cluster_perform_backup). MySQL Shell reports one or two members as
-- ok_no_tolerance, so such a cluster needs three. force=true would skip the
-- primary check too, so ckfb never uses it.
M.MYSQL_HEALTH_CHECK_REV = 300
M.MYSQL_UNHEALTHY = "Cluster is not in a healthy state"

--- The units a database needs for a backup, and why: (status entry of the app, configured minimum).
function M.database_units(app, min_units)
  local rev = type(app) == "table" and math.tointeger(app["charm-rev"]) or nil
  if rev and rev >= M.MYSQL_HEALTH_CHECK_REV then
    return math.max(3, min_units), string.format("mysql-k8s rev %d backs up only a healthy cluster "
      .. "(3 members; 2 report ok_no_tolerance)", rev)
  end
  return math.max(2, min_units), "a backup runs on a non-primary unit"
end

-- After a restore the charm refuses to write to the same S3 repository
-- (backups.py _on_restore sets the s3-block-message, src/charm.py shows it as
-- the application's Blocked status); create-backup then fails with "S3
-- relation is blocked for write", whatever its params.
local S3_BLOCKS = { "Move restored cluster to another S3 repository", "S3 repository claimed by another cluster" }

--- The S3 block message on a mysql-k8s application's status, or nil.
function M.s3_block(app)
  local st = type(app) == "table" and app["application-status"]
  local message = type(st) == "table" and st.current == "blocked" and st.message
  for _, block in ipairs(S3_BLOCKS) do
    if message == block then return message end
  end
end

--- The database backups in a list-backups result: {backup-id = "finished" | "failed" | "in progress"}
-- (backups.py _format_backups_list: a header, a line of dashes, then `id | type | status` rows).
function M.parse_mysql_backups(text)
  local out = {}
  for line in tostring(text or ""):gmatch("[^\n]+") do
    local id, status = line:match("^%s*(%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ)%s*|[^|]*|%s*(.-)%s*$")
    if id then out[id] = status end
  end
  return out
end

--- list_mysql(cfg, db) -> {backup-id = status} | nil, err
function M.list_mysql(cfg, db)
  local t, err = juju.run(db .. "/leader", "list-backups", nil, { model = cfg.models.kubeflow, wait = 300 })
  if not t then return nil, err end
  return M.parse_mysql_backups(t.results.backups)
end

--- database_storage(cfg, status, db) -> {integrator, bucket, path} of the s3-integrator related
-- to a database now | nil, err (never a bucket read from a manifest).
function M.database_storage(cfg, status, db)
  local app = type(status) == "table" and type(status.applications) == "table" and status.applications[db]
  local rels = type(app) == "table" and type(app.relations) == "table" and app.relations["s3-parameters"]
  local integrator = type(rels) == "table" and type(rels[1]) == "table" and rels[1]["related-application"]
  if type(integrator) ~= "string" then
    return nil, errors.new("ckf.no_storage", "no s3-integrator is related to it (the guide's step 1)")
  end
  local settings, err = juju.config(integrator, nil, { model = cfg.models.kubeflow })
  if not settings then return nil, err end
  if type(settings.bucket) ~= "string" or settings.bucket == "" then
    return nil, errors.new("ckf.no_storage", integrator .. " has no bucket configured")
  end
  local path = tostring(settings.path or ""):gsub("^/+", ""):gsub("/+$", "")
  return { integrator = integrator, bucket = settings.bucket, path = path }
end

--- The object key of a database backup's checksum (s3_helpers.py: pathlib.Path(path) / id).
function M.mysql_key(path, backup_id)
  path = tostring(path or ""):gsub("^/+", ""):gsub("/+$", "")
  return (path ~= "" and path .. "/" or "") .. backup_id .. ".md5"
end

-------------------------------------------------------------------- velero-operator

--- list_velero(cfg) -> {backup name = {uid, phase, start}} | nil, err: the Velero backups
-- made for the Kubeflow model. Without model= the charm lists only its own model's
-- (src/charm.py on_list_backups_action); an empty list has no `backups` key.
function M.list_velero(cfg)
  local t, err = juju.run(cfg.velero.app .. "/leader", "list-backups", { model = M.kubeflow_model(cfg) },
    { model = cfg.models.velero, wait = 300 })
  if not t then return nil, err end
  local out = {}
  for uid, b in pairs(type(t.results.backups) == "table" and t.results.backups or {}) do
    if type(b) == "table" and type(b.name) == "string" then
      out[b.name] = { uid = uid, phase = b.phase, start = b["start-timestamp"] }
    end
  end
  return out
end

--- The key of a Velero backup's metadata: the s3-integrator path is the backup location's
-- prefix (velero-operator src/velero/core.py --prefix; velero object_store_layout.go).
function M.velero_key(path, name)
  path = tostring(path or ""):gsub("^/+", ""):gsub("/+$", "")
  return (path ~= "" and path .. "/" or "") .. "backups/" .. name .. "/velero-backup.json"
end

-- Velero's default backup TTL (vmware-tanzu/velero pkg/cmd/server/config/config.go
-- defaultBackupTTL); neither velero-operator nor the CKF charms set another.
M.VELERO_DEFAULT_TTL = 30 * 86400

-------------------------------------------------------------------- targets

-- Where each backup target's endpoint first shipped, for a deployment whose charm lacks it.
M.ENDPOINT_SINCE = {
  ["minio:velero-backup-config"] = "minio 1.10/stable (rev 555 on; CKF 1.10 bundles from December 2025, "
    .. "CKF 1.11); the podspec charm of ckf-1.10/stable has none",
  ["mlmd:velero-backup-config"] = "mlmd ckf-1.10/stable rev 417 on (CKF 1.10 from February 2026, CKF 1.11)",
  ["kubeflow-profiles:profiles-backup-config"] = "kubeflow-profiles 2.0 (track/2.0); 1.10/stable has none",
  ["kubeflow-profiles:user-workloads-backup-config"] = "kubeflow-profiles 2.0 (track/2.0); 1.10/stable has none",
}

--- nil when the application of "app:endpoint" has that endpoint, else why not, in one line.
-- juju status lists every endpoint of an application under endpoint-bindings.
function M.missing_endpoint(status, target)
  local app_name, endpoint = target:match("^([^:]+):(.+)$")
  local app = type(status) == "table" and type(status.applications) == "table" and status.applications[app_name]
  if type(app) ~= "table" then return app_name .. " is not deployed" end
  local bindings = app["endpoint-bindings"]
  if type(bindings) ~= "table" or bindings[endpoint] then return nil end
  local since = M.ENDPOINT_SINCE[app_name .. ":" .. endpoint]
  local rev = app["charm-rev"]
  return string.format("%s (%s rev %s) has no %s endpoint%s", app_name, tostring(app["charm-channel"]),
    tostring(math.tointeger(rev) or rev), endpoint, since and ("; it is in " .. since) or "")
end

-- kubeflow-profiles publishes the user-workloads spec only when profile
-- namespaces exist (kubeflow-profiles-operator src/charm.py: `if
-- profile_namespaces:`, namespaces labelled app.kubernetes.io/part-of=kubeflow-profile
-- other than its own); otherwise velero has no spec for that target.
M.USER_WORKLOADS = "kubeflow-profiles:user-workloads-backup-config"

--- profile_namespaces(client, kubeflow namespace) -> {names...} | nil, err
function M.profile_namespaces(client, own)
  local items, err = client:list("namespaces", { label_selector = "app.kubernetes.io/part-of=kubeflow-profile" })
  if not items then return nil, err end
  local out = {}
  for _, ns in ipairs(items) do
    local name = ns.metadata and ns.metadata.name
    if name and name ~= own then out[#out + 1] = name end
  end
  return out
end

--- The Kubeflow model's name without its controller: the namespace of its workloads,
-- and the `model` velero-operator's actions take (its Backups' label).
function M.kubeflow_model(cfg)
  return select(2, juju.split_model(cfg.models.kubeflow))
end

--- The Kubernetes client of the configuration | nil, err.
function M.k8s_client(cfg)
  local kc = cfg.kubernetes
  return k8s.client { kubeconfig = kc.kubeconfig ~= "" and kc.kubeconfig or nil,
    context = kc.context ~= "" and kc.context or nil }
end

--- "2026-11-25T19:07:06Z" (or "20261125T190706Z", a set id's) -> seconds since the epoch, or nil
function M.epoch(stamp)
  local y, mo, d, h, mi, s = tostring(stamp):gsub("[-:]", ""):match("^(%d%d%d%d)(%d%d)(%d%d)T(%d%d)(%d%d)(%d%d)Z$")
  if not y then return nil end
  local t = os.time { year = y, month = mo, day = d, hour = h, min = mi, sec = s, isdst = false }
  return t - (os.time(os.date("!*t", t)) - t)  -- os.time read it as local time
end

-------------------------------------------------------------------- locks

local function hostname()
  local text = require("ckfb.file").read("/proc/sys/kernel/hostname") or "unknown-host"
  return (text:gsub("%s+$", ""))
end

--- lock(cfg, state_dir, client, info) -> lock | nil, err: this machine's lock on the CKF's
-- models and, given a Kubernetes client, the Lease "ckfb" in the Kubeflow namespace, so
-- that runs on two machines do not back up or restore the same CKF at once.
function M.lock(cfg, state_dir, client, info)
  local lock = require "ckfb.lock"
  local held, err = lock.acquire(state_dir, "backup-" .. cfg.models.kubeflow .. "-" .. cfg.models.velero, info)
  if not held then return nil, err end
  if client then
    local holder = string.format("%s/%d/%s", hostname(), require("ckfb.core.sys").getpid(), tostring(info.set))
    local lease, lerr = lock.lease(client, M.kubeflow_model(cfg), "ckfb", holder)
    if not lease then held:release(); return nil, lerr end
    held.lease = lease
  end
  return held
end

-------------------------------------------------------------------- juju

-- Storage import and attach on Kubernetes models are gated by the
-- k8s-attach-storage feature flag, on the client (cmd/juju/storage/import.go,
-- cmd/juju/application/addunit.go) and the controller (the storage facade),
-- in juju 3.6 up to 3.6.11 (whose release notes still ask for the flag; the
-- flag was removed after it, juju PR #20634).
M.ATTACH_STORAGE_UNGATED = { 3, 6, 12 }

local function version_numbers(text)
  local a, b, c = tostring(text):match("^(%d+)%.(%d+)%.(%d+)")
  return a and { tonumber(a), tonumber(b), tonumber(c) } or nil
end

local function at_least(v, min)
  for i = 1, 3 do
    if v[i] ~= min[i] then return v[i] > min[i] end
  end
  return true
end

--- nil when juju VERSION can import a filesystem into a Kubernetes model, else why not.
-- flags: the client's JUJU_DEV_FEATURE_FLAGS (the controller's cannot be read from here).
function M.storage_import_gate(version, flags)
  local v = version_numbers(version)
  if not v then return "cannot read the juju version '" .. tostring(version) .. "'" end
  if at_least(v, M.ATTACH_STORAGE_UNGATED) then return nil end
  if ("," .. tostring(flags or "") .. ","):find(",k8s-attach-storage,", 1, true) then return nil end
  return string.format("juju %s imports and attaches storage on Kubernetes models only with the "
    .. "k8s-attach-storage feature flag (client and controller): upgrade juju to 3.6.12 or later, or set "
    .. "JUJU_DEV_FEATURE_FLAGS=k8s-attach-storage where the controller was bootstrapped with it", version)
end

return M
