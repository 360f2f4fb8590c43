--- ckfb.ckf.drill: a rehearsal of a backup set's restore that leaves the running CKF alone.
-- Each velero backup is restored by a Velero Restore (velero.io/v1, in Velero's namespace)
-- into scratch namespaces "ckfb-drill-<set>-<namespace>", and what was restored is compared
-- with what the backup holds (vmware-tanzu/velero pkg/apis/velero/v1/restore_types.go and
-- backup_types.go: status.phase, status.progress, warnings, errors). Nothing here calls
-- juju, and the only Kubernetes writes are the Restores (labelled ckfb.io/drill) and the
-- deletion of the scratch namespaces.
local juju = require "ckfb.juju"
local task = require "ckfb.task"
local errors = require "ckfb.error"
local hash = require "ckfb.core.hash"

local M = {}

M.PREFIX = "ckfb-drill-"
M.LABEL = "ckfb.io/drill"
M.GONE_WAIT = 300   -- seconds a scratch namespace may take to go (its finalizers run first)

-- restore_types.go: the phases after which a Restore does nothing more.
local FINAL = { Completed = true, PartiallyFailed = true, Failed = true, FailedValidation = true }

--- tag(set_id) -> the set's id as names carry it: "ckf-20261205T120000Z-a1b2c3" -> "20261205t120000za1b2c3"
-- (no dash inside, so "ckfb-drill-<tag>-" of one set is never the start of another's names)
function M.tag(set_id)
  return (set_id:gsub("^ckf%-", ""):gsub("%-", ""):lower())
end

--- scratch(tag, namespace) -> the namespace a drill restores `namespace` into: an RFC 1123
-- label of at most 63 characters (a long one is cut, and keeps a hash of the whole).
function M.scratch(tag, namespace)
  local name = M.PREFIX .. tag .. "-" .. namespace
  if #name <= 63 then return name end
  return name:sub(1, 56):gsub("%-+$", "") .. "-" .. hash.sha256_hex(namespace):sub(1, 6)
end

function M.restore_name(tag, target)
  return M.PREFIX .. tag .. "-" .. target:lower():gsub("[^a-z0-9]+", "-")
end

function M.velero_namespace(cfg)
  return select(2, juju.split_model(cfg.models.velero))
end

local function counts(status)
  local st = type(status) == "table" and status or {}
  local p = type(st.progress) == "table" and st.progress or {}
  return { phase = st.phase or "New", total = math.tointeger(p.totalItems) or 0,
    done = math.tointeger(p.itemsBackedUp or p.itemsRestored) or 0,
    warnings = math.tointeger(st.warnings) or 0, errors = math.tointeger(st.errors) or 0 }
end

--- The Restore of one backup into scratch namespaces: existing objects are left as they
-- are, and nothing cluster-wide is restored (a drill must not change the running CKF).
local function restore_object(ns, name, tag, backup_name, included, mapping)
  return { apiVersion = "velero.io/v1", kind = "Restore",
    metadata = { name = name, namespace = ns, labels = { [M.LABEL] = tag } },
    spec = { backupName = backup_name, includedNamespaces = included, namespaceMapping = mapping,
      includeClusterResources = false, existingResourcePolicy = "none" } }
end

--- Polls a Restore until Velero is done with it. -> its status | nil, err
local function wait_restore(client, ns, name, opts)
  local deadline = os.time() + (opts.wait or 900)
  while true do
    local r, err = client:get("restores.velero.io", name, { namespace = ns })
    if not r then return nil, err end
    local st = counts(r.status)
    if opts.on_progress then opts.on_progress(string.format("%s %d/%d items", st.phase, st.done, st.total)) end
    if FINAL[st.phase] then return r.status end
    if os.time() > deadline then
      return nil, errors.new("drill.timeout", "the Restore " .. name .. " was still " .. st.phase .. " after "
        .. (opts.wait or 900) .. " s")
    end
    task.sleep(opts.poll or 2)
  end
end

--- What Velero says of a finished Restore, against what its backup held. -> restorable, reason
local function judge(backup, status)
  local st = counts(status)
  if st.phase == "FailedValidation" then
    return false, "Velero refused the Restore: " .. table.concat(status.validationErrors or {}, "; ")
  end
  if st.phase == "Failed" then return false, "the Restore failed: " .. tostring(status.failureReason) end
  local text = string.format("restored %d of %d items (the backup holds %d)", st.done, st.total, backup.done)
  if st.phase ~= "Completed" or st.errors > 0 or st.done < st.total then
    return false, string.format("%s: %s, %d errors", st.phase, text, st.errors)
  end
  if st.total < backup.done then   -- Velero's final status counts only what it restored
    text = text .. string.format("; %d not restored here (cluster-wide items and volume data are not rehearsed)",
      backup.done - st.total)
  end
  return true, text .. (st.warnings > 0 and string.format(", %d warnings", st.warnings) or "")
end

--- rehearse(client, cfg, tag, entry, opts) -> {target, backup_name, restorable, reason, backup,
-- restore, namespaces}: the set's velero entry restored into scratch namespaces and judged.
-- opts: wait, poll (seconds), on_progress(text).
function M.rehearse(client, cfg, tag, entry, opts)
  local ns, r = M.velero_namespace(cfg), { target = entry.target, backup_name = entry.backup_name,
    restorable = false, namespaces = {} }
  local backup, err = client:get("backups.velero.io", entry.backup_name, { namespace = ns })
  if not backup then
    r.reason = errors.is(err, "k8s.not_found") and ("the velero backup " .. entry.backup_name .. " no longer exists")
      or err.message
    return r
  end
  r.backup = counts(backup.status)
  if r.backup.phase ~= "Completed" then
    r.reason = string.format("the velero backup is %s (%d errors, %d warnings)", r.backup.phase, r.backup.errors,
      r.backup.warnings)
    return r
  end
  local included = type(backup.spec) == "table" and backup.spec.includedNamespaces
  -- Velero expands *, ? and [..] (pkg/util/wildcard): a pattern is no namespace a mapping can name
  if type(included) ~= "table" or #included == 0 or table.concat(included, ","):find("[%*%?%[]") then
    r.reason = "the backup covers every namespace: a drill cannot keep its restore off the running CKF"
    return r
  end
  local mapping = {}
  for _, n in ipairs(included) do
    mapping[n] = M.scratch(tag, n)
    r.namespaces[#r.namespaces + 1] = mapping[n]
  end
  local name = M.restore_name(tag, entry.target)
  local made, cerr = client:create("restores.velero.io", restore_object(ns, name, tag, entry.backup_name, included,
    mapping), { namespace = ns })
  if not made then r.reason = "the Restore could not be created: " .. cerr.message; return r end
  local status, werr = wait_restore(client, ns, name, opts)
  if not status then r.reason = werr.message; return r end
  r.restore = counts(status)
  r.restore.name = name
  r.restorable, r.reason = judge(r.backup, status)
  return r
end

--- Waits until an object is gone (its finalizers done). -> true | nil, err
local function gone(client, resource, name, namespace)
  local deadline = os.time() + M.GONE_WAIT
  while true do
    local obj, err = client:get(resource, name, { namespace = namespace })
    if not obj and errors.is(err, "k8s.not_found") then return true end
    if not obj then return nil, err end
    if os.time() > deadline then
      return nil, errors.new("drill.left", resource .. " " .. name .. " was still there after " .. M.GONE_WAIT .. " s")
    end
    task.sleep(1)
  end
end

--- What a drill of the set left: its scratch namespaces and its Restores. -> {namespaces, restores} | nil, err
function M.leftovers(client, cfg, tag)
  local all, err = client:list("namespaces")
  if not all then return nil, err end
  local out = { namespaces = {}, restores = {} }
  for _, n in ipairs(all) do
    if n.metadata.name:sub(1, #M.PREFIX + #tag + 1) == M.PREFIX .. tag .. "-" then
      out.namespaces[#out.namespaces + 1] = n.metadata.name
    end
  end
  local restores, rerr = client:list("restores.velero.io", { namespace = M.velero_namespace(cfg),
    label_selector = M.LABEL .. "=" .. tag })
  if not restores then return nil, rerr end
  for _, r in ipairs(restores) do out.restores[#out.restores + 1] = r.metadata.name end
  return out
end

--- clean(client, cfg, tag) -> {namespaces, restores} deleted | nil, err: what a drill of
-- this set left (only names it gave), deleted, then checked gone.
function M.clean(client, cfg, tag)
  local left, err = M.leftovers(client, cfg, tag)
  if not left then return nil, err end
  -- every delete first (a stopped run has seconds for this), the Restores before the namespaces
  local ns = M.velero_namespace(cfg)
  for _, name in ipairs(left.restores) do
    local ok, derr = client:delete("restores.velero.io", name, { namespace = ns })
    if not ok and not errors.is(derr, "k8s.not_found") then return nil, derr end
  end
  for _, name in ipairs(left.namespaces) do
    local ok, derr = client:delete("namespaces", name)
    if not ok and not errors.is(derr, "k8s.not_found") then return nil, derr end
  end
  local jobs = {}
  for i, name in ipairs(left.namespaces) do jobs[i] = function() return gone(client, "namespaces", name) end end
  for _, name in ipairs(left.restores) do
    jobs[#jobs + 1] = function() return gone(client, "restores.velero.io", name, ns) end
  end
  local done = table.pack(task.all(jobs))
  for i = 1, #jobs do
    if not done[i] then return nil, errors.new("drill.left", "what a drill made did not go after " .. M.GONE_WAIT
      .. " s: " .. table.concat(left.namespaces, ", ") .. " " .. table.concat(left.restores, ", ")) end
  end
  local after, aerr = M.leftovers(client, cfg, tag)
  if not after then return nil, aerr end
  if #after.namespaces + #after.restores > 0 then
    return nil, errors.new("drill.left", "still there: " .. table.concat(after.namespaces, ", ")
      .. (#after.restores > 0 and (" restores " .. table.concat(after.restores, ", ")) or ""))
  end
  return left
end

return M
