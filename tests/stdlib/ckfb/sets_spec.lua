-- ckfb.sets: where manifests and configuration come from, and which manifests are trusted.
local proc = require "ckfb.proc"
local sets = require "ckfb.sets"
local json = require "ckfb.json"

local CKFB = assert(os.getenv("CKFB"))
local TMP = assert(os.getenv("CKFB_TEST_TMP"))

local function valid()
  return { kind = "ckfb.backup-set", version = 1, id = "ckf-20261201T100000Z-a1b2c3", status = "complete",
    velero = { { target = "minio:velero-backup-config", status = "created", backup_name = "minio-velero-backup-x1" } },
    databases = { { app = "kfp-db", status = "created", backup_id = "2026-12-01T10:00:01Z" } } }
end

describe("ckfb.sets", function()
  it("makes set ids unique within one second", function()
    local seen = {}
    for _ = 1, 2000 do
      local id = sets.new_id()
      assert.matches("^ckf%-%d+T%d+Z%-" .. ("%x"):rep(12) .. "$", id)
      assert.is_nil(seen[id])
      seen[id] = true
    end
  end)

  it("validates a manifest as untrusted input", function()
    assert.is_true(sets.validate(valid()))
    local cases = {
      { function(m) m.id = "../../etc/passwd" end, "malformed set id" },
      { function(m) m.id = "ckf-29990101T000000Z-a1b2c3" end, "dated in the future" },
      { function(m) m.velero[1].backup_name = "x --all --selector app=y" end, "a backup name Velero never makes" },
      { function(m) m.velero[1].target = "minio" end, "is not app:endpoint" },
      { function(m) m.databases[1].backup_id = "" end, "a backup id mysql%-k8s never makes" },
      { function(m) m.databases[1].app = "-m" end, "is not an application name" },
      { function(m) m.status = "done" end, "unknown status" },
      { function(m) m.databases = { x = 1 } end, "databases is not a list" },
      { function(m) m.kind = "other" end, "not a ckfb backup%-set manifest" },
    }
    for _, case in ipairs(cases) do
      local m = valid()
      case[1](m)
      local ok, why = sets.validate(m)
      assert.is_nil(ok)
      assert.matches(case[2], why)
    end
  end)

  it("refuses a state directory another user owns, or others can write, or that is a link", function()
    local base = TMP .. "/state-trust"
    assert(require("ckfb.file").private_dir(base))
    local function state(dir) return sets.state_dir { state_dir = dir } end
    assert.equal(base .. "/mine", state(base .. "/mine"))
    assert(proc.run({ "mkdir", "-m", "0777", base .. "/open" }))
    local _, err = state(base .. "/open")
    assert.matches("writable by others %(mode 777%)", err.message)
    local theirs, owner = "/", 0       -- as another user: root's; as root: nobody's
    if require("ckfb.core.file").getuid() == 0 then
      theirs, owner = base .. "/theirs", 65534
      assert(proc.run({ "mkdir", theirs }))
      assert.equal(0, assert(proc.run({ "chown", "65534", theirs })).code)
    end
    _, err = state(theirs)
    assert.matches("belongs to uid " .. owner .. ", not to this user", err.message)
    assert(proc.run({ "ln", "-s", base .. "/mine", base .. "/link" }))
    _, err = state(base .. "/link")
    assert.matches("is a link, not a directory", err.message)
  end)

  it("has no state directory under /tmp when HOME is unset", function()
    local r = assert(proc.run({ CKFB, "-e", [[print(select(2, require("ckfb.sets").state_dir { state_dir = "" }))]] },
      { env = { HOME = false, XDG_STATE_HOME = false } }))
    assert.matches("no state directory: set HOME or XDG_STATE_HOME", r.stdout)
  end)

  it("reads no configuration from the current directory", function()
    local dir = TMP .. "/cwd-config"
    assert(require("ckfb.file").private_dir(dir))
    local f = assert(io.open(dir .. "/ckfb.yaml", "w"))
    f:write("hooks: [evil.lua]\n")
    f:close()
    local probe = [[local cfg, file = assert(require("ckfb.sets").load()); print(file, #cfg.hooks)]]
    local r = assert(proc.run({ CKFB, "-e", probe }, { cwd = dir, env = { XDG_CONFIG_HOME = dir .. "/none" } }))
    assert.equal("nil\t0\n", r.stdout)
    r = assert(proc.run({ CKFB, "-e", probe }, { cwd = dir, env = { CKFB_CONFIG = dir .. "/ckfb.yaml" } }))
    assert.equal(dir .. "/ckfb.yaml\t1\n", r.stdout)
  end)

  it("writes manifests atomically, replacing a planted link instead of following it", function()
    local dir = TMP .. "/atomic"
    assert(require("ckfb.file").private_dir(dir))
    local target = dir .. "/precious"
    local f = assert(io.open(target, "w")); f:write("precious"); f:close()
    assert(proc.run({ "ln", "-s", target, dir .. "/manifest.json" }))
    assert.is_true(require("ckfb.file").write_atomic(dir .. "/manifest.json", json.encode(valid())))
    assert.equal("precious", assert(io.open(target)):read("a"))
    assert.equal("file", require("ckfb.core.file").stat(dir .. "/manifest.json").type)
    assert.equal(384, require("ckfb.core.file").stat(dir .. "/manifest.json").mode)   -- 0600
  end)

  it("reads no more than 1 MiB of a manifest from S3, whatever the listing claims", function()
    local cfg = assert(sets.load((require("tests.stdlib.ckfb.helpers.configs").isolated())))
    local store = assert(require("ckfb.s3").client { endpoint = os.getenv("CKFB_TEST_S3"),
      access_key = "AKIDTEST", secret_key = "testsecret" })
    local big = valid()
    big.id = "ckf-20261201T100000Z-0000d1"
    big.padding = string.rep("x", 1536 * 1024)
    local key = sets.s3_key(cfg, big.id)
    assert(store:put(cfg.s3.bucket, key, { body = json.encode(big) }))
    local liar = setmetatable({ list = function(_, q)  -- a listing that says every object is tiny
      local listed = assert(store.list(store, q))
      for _, o in ipairs(listed.objects) do o.size = 10 end
      return listed
    end }, { __index = store })
    for _, s in ipairs({ store, liar }) do
      local entry = assert(sets.list(cfg, s))[1]
      assert.is_false(entry.trusted)
      assert.equal("larger than the 1 MiB manifest limit (sets.manifest_too_large)", entry.problem)
    end
    assert(store:delete(cfg.s3.bucket, key))
  end)
end)
