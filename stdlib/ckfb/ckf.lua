--- ckfb.ckf: Charmed Kubeflow as a library, what ckfb knows of its charms read
-- from their sources (each rule names its file; ../shared/reference/
-- juju-and-charms.md §12): the deployment's targets and workloads, its
-- Kubernetes and S3 clients, the lock on it, and what a restore brings back.
-- The databases are ckfb.ckf.mysql, Velero ckfb.ckf.velero, the preflight
-- ckfb.ckf.checks; the backup set's manifest is ckfb.sets.
local k8s = require "ckfb.k8s"
local json = require "ckfb.json"

local M = {}

M.mysql = require "ckfb.ckf.mysql"
M.velero = require "ckfb.ckf.velero"

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

--- The Kubeflow model's name without its controller: the namespace of its workloads.
M.kubeflow_model = M.velero.model

--- "app:endpoint" -> app, endpoint
function M.split_target(target)
  return target:match("^([^:]+):(.+)$")
end

--- The relations of a juju status application on the first of endpoints it has, or nil.
function M.related_by(app, endpoints)
  for _, ep in ipairs(endpoints) do
    local rels = type(app) == "table" and type(app.relations) == "table" and app.relations[ep]
    if type(rels) == "table" and #rels > 0 then return rels end
  end
end

--- True when app's endpoint is related to other in a juju status.
function M.related(status, app, endpoint, other)
  local a = status and status.applications[app]
  for _, r in ipairs(M.related_by(a, { endpoint }) or {}) do
    if r["related-application"] == other then return true end
  end
  return false
end

-------------------------------------------------------------------- workloads

local function count(client, resource, running)
  local items, err = client:list(resource, { all_namespaces = true })
  if not items then return nil, err end
  local n = 0
  for _, item in ipairs(items) do
    if running(item) then n = n + 1 end
  end
  return n
end

--- Argo workflows not finished (Kubeflow Pipelines runs) | nil, err
function M.running_workflows(client)
  return count(client, "workflows.argoproj.io", function(w)
    local phase = w.status and w.status.phase
    return phase == nil or phase == "Running" or phase == "Pending"
  end)
end

--- Katib experiments without a Succeeded or Failed condition | nil, err
function M.running_experiments(client)
  return count(client, "experiments.kubeflow.org", function(e)
    for _, c in ipairs(e.status and e.status.conditions or {}) do
      if (c.type == "Succeeded" or c.type == "Failed") and c.status == "True" then return false end
    end
    return true
  end)
end

--- Notebooks not stopped (the dashboard's Stop sets the annotation) | nil, err
function M.running_notebooks(client)
  return count(client, "notebooks.kubeflow.org", function(nb)
    return not (nb.metadata.annotations or {})["kubeflow-resource-stopped"]
  end)
end

--- The first storage class whose provisioner keeps volumes on a node's disk, or nil.
function M.hostpath_class(client)
  for _, sc in ipairs(client:list("storageclasses.storage.k8s.io") or {}) do
    local p = type(sc.provisioner) == "string" and sc.provisioner or ""
    if p:find("microk8s", 1, true) or p:find("hostpath", 1, true) then return sc end
  end
end

-------------------------------------------------------------------- clients

--- The Kubernetes client of the configuration | nil, err.
function M.k8s_client(cfg)
  local kc = cfg.kubernetes
  return k8s.client { kubeconfig = kc.kubeconfig ~= "" and kc.kubeconfig or nil,
    context = kc.context ~= "" and kc.context or nil }
end

function M.s3_configured(cfg)
  return cfg.s3 ~= json.null and cfg.s3 ~= nil
end

--- The S3 client of the configuration (nil when none is configured) | nil, err.
function M.s3_client(cfg)
  if not M.s3_configured(cfg) then return nil end
  return require("ckfb.s3").client(cfg.s3)
end

-------------------------------------------------------------------- restore

-- Canonical's restore guide restores the velero backups in this order.
M.RESTORE_ORDER = { "minio", "mlmd", "profiles-backup-config", "user-workloads-backup-config" }

local function restore_rank(target)
  for i, key in ipairs(M.RESTORE_ORDER) do
    if target:find(key, 1, true) then return i end
  end
  return #M.RESTORE_ORDER + 1
end

local function wanted(pick, ...)
  if not pick then return true end
  for i = 1, select("#", ...) do if pick[select(i, ...)] then return true end end
  return false
end

--- restore_parts(cfg, set, pick) -> {velero, volumes, databases}: the set's velero backups
-- in the guide's order, the volumes they bring back (cfg.volumes), and its databases;
-- pick (a set of names: app, endpoint, app:endpoint, database) narrows it, nil = all.
function M.restore_parts(cfg, set, pick)
  local parts = { velero = {}, volumes = {}, databases = {} }
  for _, v in ipairs(set.velero or {}) do
    local app, endpoint = M.split_target(v.target)
    if wanted(pick, v.target, app, endpoint) then parts.velero[#parts.velero + 1] = v end
  end
  table.sort(parts.velero, function(a, b) return restore_rank(a.target) < restore_rank(b.target) end)
  for _, v in ipairs(parts.velero) do
    local app = M.split_target(v.target)
    if cfg.volumes[app] then parts.volumes[#parts.volumes + 1] = { app = app, storage = cfg.volumes[app] } end
  end
  for _, d in ipairs(set.databases or {}) do
    if wanted(pick, d.app) then parts.databases[#parts.databases + 1] = d end
  end
  return parts
end

--- The restored persistent volume of a storage: the newest claim Juju labelled with its
-- name in the model's namespace (sidecar claims are named <app>-<storage>-<id>-<app>-<n>,
-- juju caas/kubernetes/provider/application/application.go), and the volume bound to it.
function M.restored_volume(cfg, storage_name)
  local client, err = M.k8s_client(cfg)
  if not client then return nil, err end
  local ns = M.kubeflow_model(cfg)
  local claims, lerr = client:list("persistentvolumeclaims", { namespace = ns,
    label_selector = "storage.juju.is/name=" .. storage_name })
  if not claims then return nil, lerr end
  table.sort(claims, function(a, b)
    return (a.metadata.creationTimestamp or "") > (b.metadata.creationTimestamp or "")
  end)
  local claim = claims[1]
  local volume = claim and claim.spec and claim.spec.volumeName
  if type(volume) ~= "string" or volume == "" then
    return nil, require("ckfb.error").new("ckf.no_volume", string.format("no restored volume claim labelled "
      .. "storage.juju.is/name=%s and bound in namespace %s", storage_name, ns))
  end
  return volume
end

--- "2026-11-25T19:07:06Z" (or "20261125T190706Z", a set id's) -> seconds since the epoch, or nil
function M.epoch(stamp)
  local y, mo, d, h, mi, s = tostring(stamp):gsub("[-:]", ""):match("^(%d%d%d%d)(%d%d)(%d%d)T(%d%d)(%d%d)(%d%d)Z$")
  if not y then return nil end
  local t = os.time { year = y, month = mo, day = d, hour = h, min = mi, sec = s, isdst = false }
  return t - (os.time(os.date("!*t", t)) - t)  -- os.time read it as local time
end

-------------------------------------------------------------------- sets, as operators read them

--- live(cfg) -> velero backups by name, database backups by app and id: what the charms
-- list now (an unreachable charm lists nothing).
function M.live(cfg)
  local velero, databases = {}, {}
  local jobs = { function() velero = M.velero.list(cfg) or {} end }
  for _, db in ipairs(cfg.databases) do
    jobs[#jobs + 1] = function() databases[db] = M.mysql.list(cfg, db) or {} end
  end
  require("ckfb.task").all(jobs)
  return velero, databases
end

--- Marks each component of a set ok, missing or failed (c.live); -> whether all are ok.
function M.mark_live(m, velero, databases)
  local complete = m.status == "complete"
  for _, v in ipairs(m.velero or {}) do
    local found = v.backup_name and velero[v.backup_name]
    v.live = found and (found.phase == "Completed" and "ok" or "failed") or "missing"
    v.expires = found and M.epoch(found.start) and M.epoch(found.start) + M.velero.DEFAULT_TTL or nil
    complete = complete and v.live == "ok"
  end
  for _, d in ipairs(m.databases or {}) do
    local status = d.backup_id and (databases[d.app] or {})[d.backup_id]
    d.live = status and (status == "finished" and "ok" or "failed") or "missing"
    complete = complete and d.live == "ok"
  end
  return complete
end

--- A velero target's short name: its application, or its endpoint for an application
-- with several ("kubeflow-profiles:user-workloads-backup-config" -> "user-workloads").
function M.short_target(target)
  local app, endpoint = M.split_target(target)
  if not endpoint or endpoint == "velero-backup-config" then return app or target end
  return (endpoint:gsub("%-backup%-config$", ""))
end

--- "minio ok, mlmd ok, profiles missing, kfp-db ok": a set's components and their live status.
function M.components_text(m)
  local parts = {}
  for _, v in ipairs(m.velero or {}) do parts[#parts + 1] = M.short_target(v.target) .. " " .. tostring(v.live) end
  for _, d in ipairs(m.databases or {}) do parts[#parts + 1] = d.app .. " " .. tostring(d.live) end
  return table.concat(parts, ", ") .. M.drilled_text(m, "; ")
end

--- What the last drill of a set found ("drilled restorable 2h ago"), after sep; "" if never drilled.
function M.drilled_text(m, sep, now)
  local d = type(m.drilled) == "table" and m.drilled
  if not d or type(d.verdict) ~= "string" then return "" end
  local t = M.epoch(d.time)
  return sep .. "drilled " .. d.verdict .. (t and (" " .. M.age(os.date("!%Y%m%dT%H%M%SZ", t), now) .. " ago") or "")
end

--- One word for a set, the same everywhere: complete, partial (some components usable),
-- failed (none), interrupted, untrusted.
function M.set_state(m, trusted)
  if not trusted then return "untrusted" end
  if m.status == "interrupted" then return "interrupted" end
  local ok, all = 0, 0
  for _, list in ipairs { m.velero or {}, m.databases or {} } do
    for _, c in ipairs(list) do
      all = all + 1
      if c.live == nil and c.status == "created" or c.live == "ok" then ok = ok + 1 end
    end
  end
  if all > 0 and ok == all and m.status == "complete" then return "complete" end
  return ok > 0 and "partial" or "failed"
end

--- A set's age from its id ("3h", "2d", "5m").
function M.age(id, now)
  local t = M.epoch(tostring(id):match("%d+T%d+Z"))
  if not t then return "?" end
  local s = math.max(0, (now or os.time()) - t)
  if s < 3600 then return string.format("%dm", s // 60) end
  if s < 2 * 86400 then return string.format("%dh", s // 3600) end
  return string.format("%dd", s // 86400)
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
