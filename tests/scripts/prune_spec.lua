-- ckfb prune against planted manifests and operators' accidents: manifests are
-- untrusted input, and prune deletes only what the charms list and no kept set names.
local json = require "ckfb.json"
local s3 = require "ckfb.s3"
local fake = require "tests.stdlib.ckfb.helpers.fake_juju"
local isolated_config = require("tests.stdlib.ckfb.helpers.configs").isolated

local standins = require "tests.stdlib.ckfb.helpers.standins"
local TMP, STATE, ckfb = standins.TMP, standins.STATE, standins.ckfb

local function store()
  return assert(s3.client { endpoint = os.getenv("CKFB_TEST_S3"), access_key = "AKIDTEST", secret_key = "testsecret" })
end

local function stamp(seconds_ago)
  return os.date("!%Y%m%dT%H%M%SZ", os.time() - seconds_ago)
end

--- A valid manifest with no backups behind it, dated `seconds_ago`.
local function manifest(seconds_ago, status, suffix)
  return { kind = "ckfb.backup-set", version = 1, id = "ckf-" .. stamp(seconds_ago) .. "-" .. (suffix or "0000aa"),
    status = status, velero = json.array({}), databases = json.array({}) }
end

local function plant_local(cfg, m)
  local dir = cfg.state_dir .. "/sets"
  assert(require("ckfb.file").private_dir(cfg.state_dir))
  assert(require("ckfb.file").private_dir(dir))
  local f = assert(io.open(dir .. "/" .. (m.file or m.id) .. ".json", "w"))
  m.file = nil
  f:write(json.encode(m))
  f:close()
end

local function plant_s3(cfg, name, m)
  assert(store():put(cfg.s3.bucket, cfg.s3.prefix .. "sets/" .. name .. ".json", { body = json.encode(m) }))
end

local function pruned(config, ...)
  local r = ckfb("prune", "--config", config, "--json", ...)
  return r, r.stdout ~= "" and json.decode(r.stdout) or nil
end

describe("ckfb prune, attacked", function()
  before_each(function() fake.reset(nil, STATE) end)

  it("never touches a bucket or a velero backup a planted manifest names", function()
    local config, cfg = isolated_config()
    assert.equal(0, ckfb("backup", "--config", config).code)
    local victim = store()
    assert(victim:put("ckf-velero", "precious/data.bin", { body = "do not delete" }))
    plant_s3(cfg, "ckf-20200101T000000Z-0000ab", {
      kind = "ckfb.backup-set", version = 1, id = "ckf-20200101T000000Z-0000ab", status = "complete",
      velero = { { target = "minio:velero-backup-config", status = "created", backup_name = "x" } },
      databases = { { app = "kfp-db", status = "created", backup_id = "2020-01-01T00:00:00Z", bucket = "ckf-velero",
        s3_key = "" } } })
    plant_s3(cfg, "ckf-20200102T000000Z-0000ac", {
      kind = "ckfb.backup-set", version = 1, id = "ckf-20200102T000000Z-0000ac", status = "complete",
      velero = { { target = "minio:velero-backup-config", status = "created",
        backup_name = "foo --all --selector app=x" } }, databases = {} })
    local r, out = pruned(config, "--keep", "1", "--yes")
    assert.equal(0, r.code, r.stderr)
    assert.same({ "ckf-20200101T000000Z-0000ab" }, out.deleted)   -- only the manifest: it named nothing real
    assert.equal("do not delete", victim:get("ckf-velero", "precious/data.bin"))
    assert.matches("ignored ckf%-20200102T000000Z%-0000ac: velero minio:velero%-backup%-config: a backup "
      .. "name Velero never makes", r.stderr)
    for _, c in ipairs(fake.matching("run%-cli")) do
      assert.is_nil(c.params.command:find("--all", 1, true))
    end
    assert.is_true(victim:delete("ckf-velero", "precious/data.bin"))
    local listed = json.decode(ckfb("list", "--config", config, "--json").stdout)
    local complete = 0
    for _, m in ipairs(listed) do if m.trusted and m.complete then complete = complete + 1 end end
    assert.equal(1, complete)                                        -- the real set is kept whole
  end)

  it("does not let a set dated in the future push the real ones out of --keep", function()
    local config, cfg = isolated_config()
    plant_local(cfg, manifest(3600, "complete", "0000b1"))
    local future = manifest(-(86400 * 365 * 900), "complete", "0000ff")
    plant_s3(cfg, future.id, future)
    local r, out = pruned(config, "--keep", "1", "--yes")
    assert.equal(0, r.code, r.stderr)
    assert.same({}, out.deleted)
    assert.matches("dated in the future", r.stderr)
  end)

  it("deletes no file outside its state directory, whatever id a manifest claims", function()
    local config, cfg = isolated_config()
    local outside = cfg.state_dir .. "/victim.json"
    plant_local(cfg, manifest(7200, "complete", "0000c1"))
    plant_local(cfg, manifest(3600, "complete", "0000c2"))
    local f = assert(io.open(outside, "w")); f:write("{}"); f:close()
    local evil = manifest(86400, "complete")
    evil.id = "../victim"
    plant_s3(cfg, "evil", evil)
    local r = pruned(config, "--keep", "1", "--yes")
    assert.equal(0, r.code, r.stderr)
    assert.is_not_nil(io.open(outside))
    os.remove(outside)
  end)

  it("uses the local copy of a set when its S3 copy was changed", function()
    local config, cfg = isolated_config()
    assert.equal(0, ckfb("backup", "--config", config).code)
    local real = json.decode(ckfb("list", "--config", config, "--json").stdout)[1]
    local forged = json.decode(assert(store():get(cfg.s3.bucket, cfg.s3.prefix .. "sets/" .. real.id .. ".json")))
    forged.databases[1].backup_id = "2020-01-01T00:00:00Z"
    plant_s3(cfg, real.id, forged)
    local r = ckfb("list", "--config", config, "--json")
    assert.matches("its s3 copy differs from the local one", r.stderr)
    local listed = json.decode(r.stdout)[1]
    assert.is_true(listed.trusted)
    assert.equal(real.databases[1].backup_id, listed.databases[1].backup_id)
  end)
end)

describe("signed manifests", function()
  before_each(function() fake.reset(nil, STATE) end)

  it("with a signing key, a manifest that is unsigned or altered is untrusted and never used", function()
    local key = TMP .. "/signing.key"
    local f = assert(io.open(key, "w")); f:write("a key of more than sixteen bytes"); f:close()
    local config, cfg = isolated_config(function(c) c.signing_key_file = key end)
    assert.equal(0, ckfb("backup", "--config", config).code)
    local real = json.decode(ckfb("list", "--config", config, "--json").stdout)[1]
    assert.is_true(real.trusted)
    assert.matches("^%x+$", real.signature)
    local unsigned = manifest(86400, "complete", "0000a7")               -- well formed, but unsigned
    local unsigned_id = unsigned.id
    plant_local(cfg, unsigned)
    local altered = json.decode(assert(io.open(real.manifest_path or (cfg.state_dir .. "/sets/" .. real.id
      .. ".json"))):read("a"))
    altered.id = "ckf-" .. stamp(7200) .. "-0000a8"
    plant_local(cfg, altered)                                          -- signed for another id
    local r = ckfb("list", "--config", config)
    assert.matches("ckf%-%d+T%d+Z%-0000a7 is untrusted: it is not signed", r.stderr)
    assert.matches("ckf%-%d+T%d+Z%-0000a8 is untrusted: its signature does not match", r.stderr)
    local restore = ckfb("restore", unsigned_id, "--yes", "--dry-run", "--config", config)
    assert.equal(2, restore.code)
    assert.matches("is untrusted: it is not signed", restore.stderr)
  end)
end)

describe("ckfb prune, by accident", function()
  it("keeps the newest complete sets, not the newest sets, with --keep", function()
    local config, cfg = isolated_config()
    for i = 1, 3 do plant_local(cfg, manifest(86400 * (10 - i), "complete", "0000d" .. i)) end
    for i = 1, 3 do plant_local(cfg, manifest(3600 * (4 - i), "failed", "0000e" .. i)) end
    local r, out = pruned(config, "--keep", "3", "--yes")
    assert.equal(0, r.code, r.stderr)
    assert.same({}, out.deleted)
    local _, fewer = pruned(config, "--keep", "1")
    assert.equal(2, #fewer.deleted)
    for _, id in ipairs(fewer.deleted) do assert.matches("%-0000d[12]$", id) end
  end)

  it("deletes a set only when --keep and --older-than both allow it", function()
    local config, cfg = isolated_config()
    for i = 1, 3 do plant_local(cfg, manifest(60 * i, "complete", "0000f" .. i)) end
    local r, out = pruned(config, "--keep", "1", "--older-than", "30d", "--yes")
    assert.equal(0, r.code, r.stderr)
    assert.same({}, out.deleted)
  end)

  it("keeps the newest complete set with --older-than alone", function()
    local config, cfg = isolated_config()
    for i = 1, 2 do plant_local(cfg, manifest(86400 * 40 * i, "complete", "00001" .. i)) end
    local _, out = pruned(config, "--older-than", "30d")
    assert.equal(1, #out.deleted)
    assert.matches("%-000012$", out.deleted[1])
  end)

  it("refuses --keep 0", function()
    local r = ckfb("prune", "--keep", "0")
    assert.equal(2, r.code)
    assert.matches("at least 1", r.stderr)
  end)
end)
