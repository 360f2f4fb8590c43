-- End-to-end tests of scripts/backup.lua against the stand-ins that tests/run
-- starts: the juju emulator (wired to s3rver), the Kubernetes API test
-- server and s3rver. Each runs `ckfb backup` as an operator would.
local proc = require "ckfb.proc"
local json = require "ckfb.json"
local task = require "ckfb.task"
local k8s = require "ckfb.k8s"
local s3 = require "ckfb.s3"
local fake = require "tests.stdlib.ckfb.helpers.fake_juju"

local CKFB = assert(os.getenv("CKFB"))
local TMP = assert(os.getenv("CKFB_TEST_TMP"))
local STANDINS = assert(os.getenv("CKFB_TEST_STANDINS"))
local STATE = TMP .. "/juju-state.standin.json"
local CONFIG = STANDINS .. "/ckfb.yaml"
local REPORT = TMP .. "/report.json"

local CHANGES = { offer = true, consume = true, integrate = true, ["scale-application"] = true }

local function backup(...)
  os.remove(REPORT)
  local r = assert(proc.run({ CKFB, "backup", "--config", CONFIG, "--report", REPORT, ... }, { timeout = 120 }))
  local f = io.open(REPORT)
  r.report = f and json.decode(f:read("a"))
  if f then f:close() end
  return r
end

--- The juju calls that change something (setup, scaling, backups).
local function changing_calls()
  local out = {}
  for _, c in ipairs(fake.calls()) do
    if CHANGES[c.argv[1]] or (c.argv[1] == "run" and c.argv[5] == "create-backup") then
      out[#out + 1] = table.concat(c.argv, " ")
    end
  end
  return out
end

local function lock_dir()
  return STANDINS .. "/state/backup-kubeflow-velero.lock"
end

local function kube()
  return assert(k8s.client { kubeconfig = STANDINS .. "/kubeconfig" })
end

describe("ckfb backup", function()
  before_each(function() fake.reset(nil, STATE) end)

  it("backs up everything, verifies it, and records one set locally and in S3", function()
    local r = backup()
    assert.equal(0, r.code, r.stderr)
    local rep = r.report
    assert.equal("complete", rep.status)
    assert.equal(4, #rep.velero)
    assert.equal(2, #rep.databases)
    for _, b in ipairs(rep.velero) do assert.is_true(b.verified, b.target) end
    for _, b in ipairs(rep.databases) do
      assert.is_true(b.verified, b.app)
      assert.equal(b.app .. "/1", b.unit)           -- the primary is unit 0 here
      assert.equal(b.app .. "/0", b.primary)
    end
    local manifest = json.decode(assert(io.open(rep.manifest_path)):read("a"))
    assert.equal(rep.id, manifest.id)
    local store = assert(s3.client { endpoint = os.getenv("CKFB_TEST_S3"), access_key = "AKIDTEST",
      secret_key = "testsecret" })
    local remote = json.decode(assert(store:get("testbkt", "ckfb/sets/" .. rep.id .. ".json")))
    assert.equal("complete", remote.status)
    assert.is_nil(io.open(lock_dir()))                 -- the lock is released
    assert.matches("backup set ckf%-%d+T%d+Z: complete", r.stderr)
  end)

  it("finds the primary wherever it is and backs up from another unit", function()
    fake.edit(function(state)
      local db = state.models.kubeflow.applications["kfp-db"]
      db.units["kfp-db/1"], db.units["kfp-db/2"] = {}, {}
      db.primary = "kfp-db/1"
    end)
    local r = backup()
    assert.equal(0, r.code, r.stderr)
    for _, b in ipairs(r.report.databases) do
      if b.app == "kfp-db" then
        assert.equal("kfp-db/1", b.primary)
        assert.equal("kfp-db/0", b.unit)
      end
    end
    for _, call in ipairs(changing_calls()) do
      assert.is_nil(call:find("scale%-application .* kfp%-db"), "kfp-db already had 3 units: " .. call)
    end
  end)

  it("changes nothing in the setup when it is already done", function()
    assert.equal(0, backup().code)
    fake.edit(function() end)
    local log = io.open(fake.log_path, "w")
    log:close()
    local again = backup()
    assert.equal(0, again.code, again.stderr)
    for _, call in ipairs(changing_calls()) do
      assert.is_nil(call:match("^%S+ (offer) ") or call:match("^%S+ (consume) ") or call:match("^%S+ (integrate) "),
        "a second run changed the setup: " .. call)
    end
  end)

  it("reports a partial backup (exit 4) and says which target failed", function()
    fake.edit(function(state)
      state.behaviour["velero-operator/create-backup/mlmd:velero-backup-config"] =
        { fail = "Velero Backup failed: Status is 'PartiallyFailed'" }
    end)
    local r = backup()
    assert.equal(4, r.code, r.stderr)
    assert.equal("partial", r.report.status)
    local failed = {}
    for _, b in ipairs(r.report.velero) do
      if b.status ~= "created" then failed[#failed + 1] = b.target .. ": " .. b.error end
    end
    assert.equal(1, #failed)
    assert.matches("^mlmd:velero%-backup%-config: .*PartiallyFailed", failed[1])
    assert.matches("create%-backup target=mlmd:velero%-backup%-config", table.concat(r.report.next_steps, "\n"))
  end)

  it("refuses to start while a pipeline runs (exit 3), and changes nothing", function()
    local c = kube()
    assert(c:create("workflows.argoproj.io", { apiVersion = "argoproj.io/v1alpha1", kind = "Workflow",
      metadata = { name = "training-run", namespace = "kubeflow" }, status = { phase = "Running" } }))
    local r = backup()
    assert(c:delete("workflows.argoproj.io", "training-run", { namespace = "kubeflow" }))
    assert.equal(3, r.code, r.stderr)
    assert.matches("FAIL  pipelines +1 pipeline run%(s%) running", r.stderr)
    assert.matches("nothing was changed", r.stderr)
    assert.same({}, changing_calls())
    assert.equal("refused", r.report.status)
    assert.is_nil(io.open(lock_dir()))
  end)

  it("stops on Ctrl-C (exit 130), releases the lock and writes the report", function()
    fake.edit(function(state)
      state.behaviour["velero-operator/create-backup"] = { latency = 20 }
    end)
    local pidfile = TMP .. "/backup.pid"
    local result
    task.all {
      function()
        result = assert(proc.run({ "sh", "-c", 'echo $$ > "$0"; exec "$@"', pidfile, CKFB, "backup",
          "--config", CONFIG, "--report", REPORT }, { timeout = 60 }))
      end,
      function()
        task.sleep(2.5)
        local pid = assert(io.open(pidfile)):read("a"):match("%d+")
        assert(proc.run({ "kill", "-INT", pid }))
      end,
    }
    assert.equal(130, result.code, result.stderr)
    assert.matches("interrupted", result.stderr)
    assert.is_nil(io.open(lock_dir()))
    local rep = json.decode(assert(io.open(REPORT)):read("a"))
    assert.equal("interrupted", rep.status)
  end)

  it("prints the plan with --dry-run and changes nothing", function()
    local r = assert(proc.run({ CKFB, "backup", "--config", CONFIG, "--dry-run", "--json" }))
    assert.equal(0, r.code, r.stderr)
    local out = json.decode(r.stdout)
    assert.equal(18, #out.plan)
    assert.same({}, changing_calls())
  end)

  it("names an unknown configuration key (exit 2)", function()
    local bad = TMP .. "/bad-ckfb.yaml"
    local f = assert(io.open(bad, "w"))
    f:write("models:\n  kubeflow: kubeflow\n  velro: velero\n")
    f:close()
    local r = assert(proc.run({ CKFB, "backup", "--config", bad }))
    assert.equal(2, r.code)
    assert.matches("unknown key 'models.velro'", r.stderr)
  end)
end)

describe("the example hooks", function()
  before_each(function() fake.reset(nil, STATE) end)

  it("stop running notebooks for the backup, start them again, and post the outcome", function()
    local c = kube()
    for _, name in ipairs { "nb-a", "nb-b" } do
      assert(c:create("notebooks.kubeflow.org", { apiVersion = "kubeflow.org/v1", kind = "Notebook",
        metadata = { name = name, namespace = "user-0" }, spec = {} }))
    end
    local config = TMP .. "/hooks-ckfb.yaml"
    local f = assert(io.open(config, "w"))
    f:write(assert(io.open(CONFIG)):read("a"), "hooks:\n  - examples/hooks/stop-notebooks.lua\n",
      "  - examples/hooks/webhook.lua\n")
    f:close()
    local web = assert(os.getenv("CKFB_TEST_HTTP"))
    local r = assert(proc.run({ CKFB, "backup", "--config", config },
      { env = { CKFB_WEBHOOK_URL = web .. "/record/backup" }, timeout = 120 }))
    assert.equal(0, r.code, r.stderr)
    assert.matches("stopped notebook user%-0/nb%-a", r.stderr)
    assert.matches("started notebook user%-0/nb%-b again", r.stderr)
    for _, name in ipairs { "nb-a", "nb-b" } do
      local nb = assert(c:get("notebooks.kubeflow.org", name, { namespace = "user-0" }))
      assert.is_nil((nb.metadata.annotations or {})["kubeflow-resource-stopped"])
      assert(c:delete("notebooks.kubeflow.org", name, { namespace = "user-0" }))
    end
    local posted = json.decode(assert(require("ckfb.http").get(web .. "/recorded/backup")).body)
    assert.equal("complete", posted.status)
    assert.matches("velero minio:velero%-backup%-config: created", posted.text)
  end)
end)
