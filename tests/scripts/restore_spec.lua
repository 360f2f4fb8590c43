-- End-to-end tests of scripts/restore.lua, list.lua and prune.lua against the
-- stand-ins, each on its own state directory and S3 prefix.
local proc = require "ckfb.proc"
local json = require "ckfb.json"
local yaml = require "ckfb.yaml"
local k8s = require "ckfb.k8s"
local s3 = require "ckfb.s3"
local fake = require "tests.stdlib.ckfb.helpers.fake_juju"

local CKFB = assert(os.getenv("CKFB"))
local TMP = assert(os.getenv("CKFB_TEST_TMP"))
local STANDINS = assert(os.getenv("CKFB_TEST_STANDINS"))
local STATE = TMP .. "/juju-state.standin.json"

local counter = 0

--- A configuration of its own: a fresh state directory and S3 prefix.
local function isolated_config()
  counter = counter + 1
  local cfg = yaml.decode(assert(io.open(STANDINS .. "/ckfb.yaml")):read("a"))
  cfg.state_dir = TMP .. "/state-" .. counter
  cfg.s3.prefix = "iso-" .. counter .. "/"
  local path = TMP .. "/ckfb-" .. counter .. ".yaml"
  local f = assert(io.open(path, "w"))
  f:write(yaml.encode(cfg))
  f:close()
  return path, cfg
end

local function ckfb(...)
  return assert(proc.run({ CKFB, ... }, { timeout = 120 }))
end

local function calls(pattern)
  local out = {}
  for _, c in ipairs(fake.calls()) do
    local line = table.concat(c.argv, " ")
    if line:find(pattern) then out[#out + 1] = { line = line, params = c.params } end
  end
  return out
end

local function store()
  return assert(s3.client { endpoint = os.getenv("CKFB_TEST_S3"), access_key = "AKIDTEST", secret_key = "testsecret" })
end

describe("ckfb restore", function()
  -- What Velero brings back for the sidecar charms minio and mlmd: claims named as Juju names
  -- them (<app>-<storage>-<8 hex>-<app>-<n>, juju caas/kubernetes/provider/application/
  -- application.go) with its storage label, each bound to a volume; and an older claim of
  -- the same storage, which the restore must not pick.
  local kube
  local CLAIMS = {
    { app = "minio", storage = "minio-data", id = "1a2b3c4d", volume = "pvc-restored-minio",
      at = "2026-12-01T10:00:00Z" },
    { app = "minio", storage = "minio-data", id = "0badc0de", volume = "pvc-old-minio", at = "2026-01-01T10:00:00Z" },
    { app = "mlmd", storage = "mlmd-data", id = "5e6f7a8b", volume = "pvc-restored-mlmd", at = "2026-12-01T10:00:00Z" },
  }
  local function claim_name(c) return string.format("%s-%s-%s-%s-0", c.app, c.storage, c.id, c.app) end
  before_each(function()
    fake.reset(nil, STATE)
    kube = assert(k8s.client { kubeconfig = STANDINS .. "/kubeconfig" })
    for _, c in ipairs(CLAIMS) do
      assert(kube:create("persistentvolumeclaims", { metadata = { name = claim_name(c), namespace = "kubeflow",
        creationTimestamp = c.at, labels = { ["storage.juju.is/name"] = c.storage,
          ["app.kubernetes.io/managed-by"] = "juju", ["app.kubernetes.io/name"] = c.app } },
        spec = { volumeName = c.volume } }, { namespace = "kubeflow" }))
      assert(kube:create("persistentvolumes", { metadata = { name = c.volume, creationTimestamp = c.at },
        spec = { claimRef = { name = claim_name(c), namespace = "kubeflow" } } }))
    end
  end)
  after_each(function()
    for _, c in ipairs(CLAIMS) do
      kube:delete("persistentvolumeclaims", claim_name(c), { namespace = "kubeflow" })
      kube:delete("persistentvolumes", c.volume)
    end
  end)

  it("restores a set in the guide's order, each database scaled to one unit and back", function()
    local config = isolated_config()
    assert.equal(0, ckfb("backup", "--config", config).code)
    local set = json.decode(ckfb("list", "--config", config, "--json").stdout)[1]
    local log = io.open(fake.log_path, "w")
    log:close()
    local r = ckfb("restore", "--latest", "--config", config, "--json")
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
      if c.params["backup-id"] then assert.equal(set.databases[1].backup_id, c.params["backup-id"]) end
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
    local refused = ckfb("restore", "--latest", "--config", config)
    assert.equal(3, refused.code)
    assert.matches("lacks mlmd:velero%-backup%-config", refused.stderr)
    assert.same({}, calls("^scale") )
    assert.same({}, calls(" restore "))
    local chosen = ckfb("restore", "--latest", "--config", config, "--components", "kfp-db", "--dry-run", "--json")
    assert.equal(0, chosen.code, chosen.stderr)
    local plan = json.decode(chosen.stdout).plan
    assert.equal(3, #plan)
    assert.equal("scale kfp-db 1", plan[1].id)
  end)

  it("stops at a failing step and says how to continue by hand", function()
    local config = isolated_config()
    assert.equal(0, ckfb("backup", "--config", config).code)
    fake.edit(function(state) state.behaviour["kfp-db/restore"] = { fail = "Invalid backup-id" } end)
    local r = ckfb("restore", "--latest", "--config", config)
    assert.equal(1, r.code)
    assert.matches("stopped at step 14 %(restore kfp%-db backup%-id=", r.stderr)
    assert.matches("juju run %-m kubeflow kfp%-db/leader restore backup%-id=", r.stderr)
    assert.matches("juju scale%-application %-m kubeflow katib%-db 1", r.stderr)
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

  it("refuses a prune without --keep or --older-than", function()
    local r = ckfb("prune")
    assert.equal(2, r.code)
    assert.matches("give %-%-keep N or %-%-older%-than", r.stderr)
  end)
end)
