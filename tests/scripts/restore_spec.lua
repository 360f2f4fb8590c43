-- End-to-end tests of scripts/restore.lua, list.lua and prune.lua against the
-- stand-ins, each on its own state directory and S3 prefix.
local proc = require "ckfb.proc"
local json = require "ckfb.json"
local k8s = require "ckfb.k8s"
local s3 = require "ckfb.s3"
local fake = require "tests.stdlib.ckfb.helpers.fake_juju"

local standins = require "tests.stdlib.ckfb.helpers.standins"
local CKFB, STANDINS, STATE, ckfb = standins.CKFB, standins.STANDINS, standins.STATE, standins.ckfb

local isolated_config = require("tests.stdlib.ckfb.helpers.configs").isolated

local calls = fake.matching

--- Changes velero's backups: change(backups, uid, backup) for each one.
local function edit_velero_backups(change)
  fake.edit(function(state)
    local backups = state.models.velero.applications["velero-operator"].backups
    for uid, b in pairs(backups) do change(backups, uid, b) end
  end)
end

local function store()
  return assert(s3.client { endpoint = os.getenv("CKFB_TEST_S3"), access_key = "AKIDTEST", secret_key = "testsecret" })
end

-- What Velero brings back for the sidecar charms minio and mlmd: claims named as Juju names
-- them (<app>-<storage>-<8 hex>-<app>-<n>, juju caas/kubernetes/provider/application/
-- application.go) with its storage label, each bound to a volume; and an older claim of
-- the same storage, which the restore must not pick.
local CLAIMS = {
  { app = "minio", storage = "minio-data", id = "1a2b3c4d", volume = "pvc-restored-minio",
    at = "2026-12-01T10:00:00Z" },
  { app = "minio", storage = "minio-data", id = "0badc0de", volume = "pvc-old-minio", at = "2026-01-01T10:00:00Z" },
  { app = "mlmd", storage = "mlmd-data", id = "5e6f7a8b", volume = "pvc-restored-mlmd", at = "2026-12-01T10:00:00Z" },
}

local function claim_name(c) return string.format("%s-%s-%s-%s-0", c.app, c.storage, c.id, c.app) end

local function kube()
  return assert(k8s.client { kubeconfig = STANDINS .. "/kubeconfig" })
end

--- A fresh emulator world, and the claims Velero restores.
local function restored_world()
  fake.reset(nil, STATE)
  local c = kube()
  for _, claim in ipairs(CLAIMS) do
    assert(c:create("persistentvolumeclaims", { metadata = { name = claim_name(claim), namespace = "kubeflow",
      creationTimestamp = claim.at, labels = { ["storage.juju.is/name"] = claim.storage,
        ["app.kubernetes.io/managed-by"] = "juju", ["app.kubernetes.io/name"] = claim.app } },
      spec = { volumeName = claim.volume } }, { namespace = "kubeflow" }))
    assert(c:create("persistentvolumes", { metadata = { name = claim.volume, creationTimestamp = claim.at },
      spec = { claimRef = { name = claim_name(claim), namespace = "kubeflow" } } }))
  end
end

local function forget_claims()
  local c = kube()
  for _, claim in ipairs(CLAIMS) do
    c:delete("persistentvolumeclaims", claim_name(claim), { namespace = "kubeflow" })
    c:delete("persistentvolumes", claim.volume)
  end
end

describe("ckfb restore", function()
  before_each(restored_world)
  after_each(forget_claims)

  it("restores a set in the guide's order, each database scaled to one unit and back", function()
    local config = isolated_config()
    assert.equal(0, ckfb("backup", "--config", config).code)
    local set = json.decode(ckfb("list", "--config", config, "--json").stdout)[1]
    local log = io.open(fake.log_path, "w")
    log:close()
    local r = ckfb("restore", "--latest", "--yes", "--config", config, "--json")
    assert.equal(0, r.code, r.stderr)
    assert.equal("restored", json.decode(r.stdout).status)
    local order = {}
    for _, c in ipairs(calls("^[%w-]+ %-m")) do
      local line, p = c.line, c.params
      if line:find("^scale%-application") or line:find("^remove%-storage") or line:find("^import%-filesystem")
        or line:find("^add%-unit") then
        order[#order + 1] = line:gsub(" %-m %S+", ""):gsub(" %-%-force", "")
      elseif line:find(" restore ") then
        local db = line:match("(%S+)/leader restore")
        order[#order + 1] = "restore " .. (p["backup-uid"] and "uid" or ("backup-id " .. db))
      end
    end
    assert.same({
      "scale-application minio 0", "remove-storage minio-data/0",
      "scale-application mlmd 0", "remove-storage mlmd-data/1",
      "restore uid", "restore uid", "restore uid", "restore uid",
      "import-filesystem kubernetes pvc-restored-minio minio-data", "add-unit minio --attach-storage minio-data/100",
      "import-filesystem kubernetes pvc-restored-mlmd mlmd-data", "add-unit mlmd --attach-storage mlmd-data/101",
      "scale-application kfp-db 1", "restore backup-id kfp-db", "scale-application kfp-db 3",
      "scale-application katib-db 1", "restore backup-id katib-db", "scale-application katib-db 3",
    }, order)
    local uids = {}
    for _, c in ipairs(calls(" restore ")) do
      if c.params["backup-uid"] then uids[#uids + 1] = c.params["backup-uid"] end
      if c.params["backup-id"] then  -- each database restores its own backup, whatever second it was made in
        local db = c.line:match("(%S+)/leader restore")
        for _, d in ipairs(set.databases) do
          if d.app == db then assert.equal(d.backup_id, c.params["backup-id"]) end
        end
      end
    end
    local by_target = {}
    for _, v in ipairs(set.velero) do by_target[v.target] = v.backup_uid end
    assert.same({ by_target["minio:velero-backup-config"], by_target["mlmd:velero-backup-config"],
      by_target["kubeflow-profiles:profiles-backup-config"],
      by_target["kubeflow-profiles:user-workloads-backup-config"] }, uids)
  end)

  it("refuses a set with a failed component unless the components are named", function()
    local config = isolated_config()
    fake.edit(function(state)
      state.behaviour["velero-operator/create-backup/mlmd:velero-backup-config"] = { fail = "Velero Backup failed" }
    end)
    assert.equal(4, ckfb("backup", "--config", config).code)
    local log = io.open(fake.log_path, "w")
    log:close()
    local refused = ckfb("restore", "--latest", "--yes", "--config", config)
    assert.equal(3, refused.code)
    assert.matches("lacks mlmd:velero%-backup%-config", refused.stderr)
    assert.same({}, calls("^scale") )
    assert.same({}, calls(" restore "))
    local chosen = ckfb("restore", "--latest", "--yes", "--config", config, "--components", "kfp-db", "--dry-run",
      "--json")
    assert.equal(0, chosen.code, chosen.stderr)
    local plan = json.decode(chosen.stdout).plan
    assert.equal(3, #plan)
    assert.equal("scale kfp-db 1", plan[1].id)
  end)

  it("stops at a failing step and says how to continue by hand", function()
    local config = isolated_config()
    assert.equal(0, ckfb("backup", "--config", config).code)
    fake.edit(function(state) state.behaviour["kfp-db/restore"] = { fail = "Invalid backup-id" } end)
    local r = ckfb("restore", "--latest", "--yes", "--config", config)
    assert.equal(1, r.code)
    assert.matches("stopped at step 14 %(restore kfp%-db backup%-id=", r.stderr)
    assert.matches("juju run %-m kubeflow kfp%-db/leader restore backup%-id=", r.stderr)
    assert.matches("juju scale%-application %-m kubeflow katib%-db 1", r.stderr)
  end)
end)

--- The juju calls a restore makes that change something: none may come before the proof.
local function destructive_calls()
  local out = {}
  for _, c in ipairs(calls("^[%w-]+ %-m")) do
    if c.line:find("^scale%-application") or c.line:find("^remove%-storage") or c.line:find("^import%-filesystem")
      or c.line:find("^add%-unit") or c.line:find(" restore ") then
      out[#out + 1] = c.line
    end
  end
  return out
end

local function empty_log()
  local log = io.open(fake.log_path, "w")
  log:close()
end

-- Before it scales anything to 0 or removes storage, a restore proves it can finish.
describe("ckfb restore proves itself first", function()
  before_each(restored_world)
  after_each(forget_claims)

  it("runs without a terminal only with --yes: exit 2, nothing changed", function()
    local config = isolated_config()
    assert.equal(0, ckfb("backup", "--config", config).code)
    empty_log()
    local r = ckfb("restore", "--latest", "--config", config)
    assert.equal(2, r.code, r.stderr)
    assert.matches("give %-%-yes to run it without a terminal", r.stderr)
    assert.same({}, destructive_calls())
  end)

  it("on a terminal, goes on only when the set id is typed", function()
    local config = isolated_config()
    assert.equal(0, ckfb("backup", "--config", config).code)
    local id = json.decode(ckfb("list", "--config", config, "--json").stdout)[1].id
    empty_log()
    local function on_terminal(typed)  -- script(1) gives ckfb a pseudo-terminal; stdin is typed into it
      return assert(proc.run({ "script", "-qec", CKFB .. " restore --latest --config " .. config, "/dev/null" },
        { stdin = typed .. "\n", timeout = 120 }))
    end
    local wrong = on_terminal("ckf-nope")
    assert.equal(1, wrong.code, wrong.stdout)
    assert.matches("Type the set id %(" .. id:gsub("%p", "%%%0") .. "%) to go on", wrong.stdout)
    assert.matches("not confirmed: nothing was changed", wrong.stdout)
    assert.same({}, destructive_calls())
    local right = on_terminal(id)
    assert.equal(0, right.code, right.stdout)
    assert.is_true(#destructive_calls() > 0)
  end)

  it("refuses on juju 3.6.8, where Kubernetes storage import needs a feature flag: exit 3, nothing run", function()
    local config = isolated_config()
    assert.equal(0, ckfb("backup", "--config", config).code)
    fake.profile("old")
    empty_log()
    local r = ckfb("restore", "--latest", "--yes", "--config", config)
    assert.equal(3, r.code, r.stderr)
    assert.matches("FAIL  storage +juju 3%.6%.8%-genericlinux%-amd64 imports and attaches storage on Kubernetes "
      .. "models only with the k8s%-attach%-storage feature flag", r.stderr)
    assert.same({}, destructive_calls())
  end)

  it("restores velero backups by name: Velero gave them new UIDs (a resync into a fresh cluster)", function()
    local config = isolated_config()
    assert.equal(0, ckfb("backup", "--config", config).code)
    local set = json.decode(ckfb("list", "--config", config, "--json").stdout)[1]
    local renewed = {}
    fake.edit(function(state)
      local app = state.models.velero.applications["velero-operator"]
      local fresh = {}
      for _, b in pairs(app.backups) do
        local uid = "resynced-" .. b.name
        fresh[uid], renewed[b.name] = b, uid
      end
      app.backups = fresh
    end)
    empty_log()
    local r = ckfb("restore", "--latest", "--yes", "--config", config, "--json")
    assert.equal(0, r.code, r.stderr)
    local uids = {}
    for _, c in ipairs(calls(" restore ")) do
      if type(c.params) == "table" and c.params["backup-uid"] then uids[#uids + 1] = c.params["backup-uid"] end
    end
    assert.equal(4, #uids)
    for _, v in ipairs(set.velero) do
      assert.not_equal(v.backup_uid, renewed[v.backup_name])
      assert.is_true(uids[1] == renewed[v.backup_name] or uids[2] == renewed[v.backup_name]
        or uids[3] == renewed[v.backup_name] or uids[4] == renewed[v.backup_name])
    end
  end)

  it("refuses when a velero backup of the set is gone or not Completed", function()
    local config = isolated_config()
    assert.equal(0, ckfb("backup", "--config", config).code)
    edit_velero_backups(function(backups, uid, b)
      if b.app == "minio" then backups[uid] = nil end
      if b.app == "mlmd" then b.phase = "PartiallyFailed" end
    end)
    empty_log()
    local r = ckfb("restore", "--latest", "--yes", "--config", config)
    assert.equal(3, r.code, r.stderr)
    assert.matches("FAIL  velero +minio%-velero%-backup%-config%-%w+ is gone %(Velero deletes a backup after its TTL",
      r.stderr)
    assert.matches("mlmd%-velero%-backup%-config%-%w+ is PartiallyFailed", r.stderr)
    assert.same({}, destructive_calls())
  end)

  it("refuses when the charm no longer lists a database backup", function()
    local config = isolated_config()
    assert.equal(0, ckfb("backup", "--config", config).code)
    fake.edit(function(state) state.models.kubeflow.applications["katib-db"].backups = {} end)
    empty_log()
    local r = ckfb("restore", "--latest", "--yes", "--config", config)
    assert.equal(3, r.code, r.stderr)
    assert.matches("FAIL  katib%-db +backup %S+ is not listed in katib%-db list%-backups", r.stderr)
    assert.same({}, destructive_calls())
  end)

  it("after a database restore, says to move it to a new S3 path; the next backup refuses until then", function()
    local config = isolated_config()
    assert.equal(0, ckfb("backup", "--config", config).code)
    local r = ckfb("restore", "--latest", "--yes", "--config", config, "--json")
    assert.equal(0, r.code, r.stderr)
    local steps = table.concat(json.decode(r.stdout).next_steps, "\n")
    assert.matches("juju config %-m kubeflow s3%-integrator path=kfp%-db%-restored%-%d+", steps)
    assert.matches("juju config %-m kubeflow katib%-s3 path=katib%-db%-restored%-%d+", steps)
    local blocked = ckfb("backup", "--config", config)
    assert.equal(3, blocked.code, blocked.stderr)
    assert.matches("FAIL  kfp%-db +Move restored cluster to another S3 repository", blocked.stderr)
    local juju = require "ckfb.juju"
    assert(juju.config_set("s3-integrator", { path = "kfp-db-restored" }, { model = "kubeflow" }))
    assert(juju.config_set("katib-s3", { path = "katib-db-restored" }, { model = "kubeflow" }))
    local again = ckfb("backup", "--config", config)
    assert.equal(0, again.code, again.stderr)
  end)
end)

describe("ckfb list and prune", function()
  before_each(function() fake.reset(nil, STATE) end)

  it("list the sets stored locally and in S3, and prune whole sets", function()
    local config, cfg = isolated_config()
    assert.equal(0, ckfb("backup", "--config", config).code)
    proc.run({ "sleep", "1.1" })  -- set ids are per second
    assert.equal(0, ckfb("backup", "--config", config).code)
    local listed = json.decode(ckfb("list", "--config", config, "--json").stdout)
    assert.equal(2, #listed)
    assert.is_true(listed[1].id > listed[2].id)
    for _, m in ipairs(listed) do
      assert.is_true(m.complete)
      assert.same({ "local", "s3" }, m.stored)
    end
    local old = listed[2]
    local dry = ckfb("prune", "--keep", "1", "--config", config)
    assert.equal(0, dry.code)
    assert.matches("would delete " .. old.id:gsub("%p", "%%%0"), dry.stderr)
    assert.equal(2, #json.decode(ckfb("list", "--config", config, "--json").stdout))
    local pruned = ckfb("prune", "--keep", "1", "--yes", "--config", config, "--json")
    assert.equal(0, pruned.code, pruned.stderr)
    assert.same({ old.id }, json.decode(pruned.stdout).deleted)
    local after = json.decode(ckfb("list", "--config", config, "--json").stdout)
    assert.equal(1, #after)
    assert.equal(listed[1].id, after[1].id)
    assert.is_true(after[1].complete)  -- the kept set lost nothing
    local st = store()
    assert.is_nil((st:stat(cfg.s3.bucket, cfg.s3.prefix .. "sets/" .. old.id .. ".json")))
    for _, d in ipairs(old.databases) do
      if d.backup_id ~= after[1].databases[1].backup_id then
        assert.is_nil((st:stat(d.bucket, d.s3_key)))
      end
    end
    local velero = calls("run%-cli")
    assert.equal(4, #velero)
    assert.matches("^backup delete " .. old.velero[1].backup_name:gsub("%p", "%%%0"), velero[1].params.command)
  end)

  it("list warns of velero backups that are gone or expire within a week", function()
    local config = isolated_config()
    assert.equal(0, ckfb("backup", "--config", config).code)
    edit_velero_backups(function(backups, uid, b)
      if b.app == "minio" then backups[uid] = nil end
      if b.app == "mlmd" then b["start-timestamp"] = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - 27 * 86400) end
    end)
    local r = ckfb("list", "--config", config, "--json")
    assert.equal(0, r.code, r.stderr)
    local warnings = table.concat(json.decode(r.stdout)[1].warnings, "\n")
    assert.matches("velero backup minio%-velero%-backup%-config%-%w+ is gone", warnings)
    assert.matches("velero backup mlmd%-velero%-backup%-config%-%w+ expires in 3%.0 days", warnings)
    assert.matches("WARN.*is gone", r.stderr)
  end)

  it("list --orphans finds the backups the charms hold that belong to no set", function()
    local config, cfg = isolated_config()
    assert.equal(0, ckfb("backup", "--config", config).code)
    local set = json.decode(ckfb("list", "--config", config, "--json").stdout)[1]
    assert.equal("no backups outside the recorded sets\n", ckfb("list", "--config", config, "--orphans").stdout)
    os.remove(cfg.state_dir .. "/sets/" .. set.id .. ".json")          -- as if the run had recorded nothing
    assert(store():delete(cfg.s3.bucket, cfg.s3.prefix .. "sets/" .. set.id .. ".json"))
    local orphans = json.decode(ckfb("list", "--config", config, "--orphans", "--json").stdout)
    local found = {}
    for _, o in ipairs(orphans) do found[o.kind .. " " .. o.name] = true end
    for _, v in ipairs(set.velero) do assert.is_true(found["velero " .. v.backup_name]) end
    for _, d in ipairs(set.databases) do assert.is_true(found[d.app .. " " .. d.backup_id]) end
  end)

  it("refuses a prune without --keep or --older-than", function()
    local r = ckfb("prune")
    assert.equal(2, r.code)
    assert.matches("give %-%-keep N or %-%-older%-than", r.stderr)
  end)
end)
