-- End-to-end tests of scripts/backup.lua against the stand-ins that tests/run
-- starts: the juju emulator (wired to s3rver), the Kubernetes API test
-- server and s3rver. Each runs `ckfb backup` as an operator would.
local proc = require "ckfb.proc"
local json = require "ckfb.json"
local task = require "ckfb.task"
local k8s = require "ckfb.k8s"
local s3 = require "ckfb.s3"
local fake = require "tests.stdlib.ckfb.helpers.fake_juju"

local standins = require "tests.stdlib.ckfb.helpers.standins"
local CKFB, TMP, STANDINS, STATE = standins.CKFB, standins.TMP, standins.STANDINS, standins.STATE
local CONFIG = standins.CONFIG
local REPORT = TMP .. "/report.json"

local CHANGES = { offer = true, consume = true, integrate = true, ["scale-application"] = true }

--- Runs `ckfb backup` with a configuration file; the result has the JSON report.
local function backup_config(path, ...)
  os.remove(REPORT)
  local r = assert(proc.run({ CKFB, "backup", "--config", path, "--report", REPORT, ... }, { timeout = 120 }))
  local f = io.open(REPORT)
  r.report = f and json.decode(f:read("a"))
  if f then f:close() end
  return r
end

local function backup(...)
  return backup_config(CONFIG, ...)
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

--- True when no process holds the backup lock (flock: taking it is the only test).
local function lock_free()
  local held = require("ckfb.lock").acquire(STANDINS .. "/state", "backup-kubeflow-velero")
  if held then held:release() end
  return held ~= nil
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
    assert.is_true(lock_free())                 -- the lock is released
    assert.matches("backup set ckf%-%d+T%d+Z%-%x+: complete", r.stderr)
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
    assert.is_true(lock_free())
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
    assert.is_true(lock_free())
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

--- The --params files of the recorded `juju run` calls.
local function params_paths()
  local out = {}
  for _, c in ipairs(fake.calls()) do
    for i, a in ipairs(c.argv) do if a == "--params" then out[#out + 1] = c.argv[i + 1] end end
  end
  return out
end

local config_with = require("tests.stdlib.ckfb.helpers.configs").variant

-- The rules of a real CKF, from the sources of juju and the charms (tests/emulators/juju
-- cites each): every test here failed against ckfb before it followed them.
describe("ckfb backup on a real CKF's rules", function()
  before_each(function() fake.reset(nil, STATE) end)

  it("passes action params where a snap-confined juju can read them, and leaves none behind", function()
    local r = backup()
    assert.equal(0, r.code, r.stderr)
    local home = assert(os.getenv("HOME"))
    local paths = params_paths()
    assert.equal(5, #paths)                           -- velero's four create-backup and its list-backups
    for _, path in ipairs(paths) do
      assert.equal(home .. "/snap/juju/common/", path:sub(1, #home + 18))
      assert.is_nil(io.open(path))
    end
  end)

  it("backs up mysql-k8s from rev 300 on three units (two report ok_no_tolerance), never with force", function()
    local r = backup()
    assert.equal(0, r.code, r.stderr)
    assert.equal(2, #fake.matching("^scale%-application %-m kubeflow %S+%-db 3$"))
    for _, c in ipairs(fake.matching(" create%-backup ")) do
      assert.is_true(type(c.params) ~= "table" or c.params.force == nil)
    end
  end)

  it("backs up on the old profile too: juju 3.6.8, mysql-k8s rev 255 on two units", function()
    fake.profile("old")
    local r = backup()
    assert.equal(0, r.code, r.stderr)
    assert.equal("complete", r.report.status)
    assert.equal(2, #fake.matching("^scale%-application %-m kubeflow %S+%-db 2$"))
  end)

  it("grows a cluster the charm finds too small to three, when its revision cannot be read", function()
    fake.edit(function(state)
      for _, db in ipairs { "kfp-db", "katib-db" } do state.models.kubeflow.applications[db].origin = "local" end
    end)
    local r = backup()
    assert.equal(0, r.code, r.stderr)
    assert.matches("the charm refused a backup: Cluster is not in a healthy state; scaling to 3 units", r.stderr)
    assert.equal(2, #fake.matching("^scale%-application %-m kubeflow %S+%-db 3$"))
    local grown = {}
    for _, db in pairs(r.report.scaled) do grown[#grown + 1] = db end
    assert.same({ 1, 1 }, grown)                      -- what to scale back to: the size before the run
  end)

  it("verifies Velero's objects under the s3-integrator path, its backup location's prefix", function()
    local r = backup()
    assert.equal(0, r.code, r.stderr)
    for _, b in ipairs(r.report.velero) do
      assert.equal("velero/backups/" .. b.backup_name .. "/velero-backup.json", b.s3_key)
      assert.is_true(b.verified)
    end
  end)

  it("refuses an s3-integrator with an empty path (mysql-k8s cannot list it) and names the fix", function()
    fake.edit(function(state) state.models.kubeflow.applications["s3-integrator"].config.path = "" end)
    local r = backup()
    assert.equal(3, r.code, r.stderr)
    assert.matches("FAIL  kfp%-db +s3%-integrator has an empty path.-juju config %-m kubeflow s3%-integrator "
      .. "path=kfp%-db", r.stderr)
    assert.same({}, changing_calls())
  end)

  it("skips the user-workloads target with a warning when there are no profiles, and says why", function()
    local c = kube()
    assert(c:delete("namespaces", "profile-0"))
    fake.edit(function(state) state.models.kubeflow.applications["kubeflow-profiles"].profile_namespaces = {} end)
    local r = backup()
    assert(c:create("namespaces", { metadata = { name = "profile-0",
      labels = { ["app.kubernetes.io/part-of"] = "kubeflow-profile" } } }))
    assert.equal(0, r.code, r.stderr)
    assert.equal("complete", r.report.status)
    assert.matches("WARN  kubeflow%-profiles:user%-workloads%-backup%-config no Kubeflow profile namespaces", r.stderr)
    assert.equal(3, #r.report.velero)
    assert.equal(1, #r.report.skipped)
    assert.equal("kubeflow-profiles:user-workloads-backup-config", r.report.skipped[1].target)
    assert.matches("no Kubeflow profile namespaces", r.report.skipped[1].reason)
  end)

  it("refuses a target whose charm lacks its endpoint, and names the charm version that has it", function()
    fake.edit(function(state)
      local minio = state.models.kubeflow.applications.minio
      minio.channel, minio.rev, minio.endpoints = "ckf-1.10/stable", 400, {}
    end)
    local r = backup()
    assert.equal(3, r.code, r.stderr)
    assert.matches("FAIL  minio:velero%-backup%-config minio %(ckf%-1%.10/stable rev 400%) has no "
      .. "velero%-backup%-config endpoint; it is in minio 1%.10/stable", r.stderr)
    assert.same({}, changing_calls())
  end)

  it("runs velero's create-backups one after another, each with its whole wait", function()
    fake.edit(function(state) state.behaviour["velero-operator/create-backup"] = { latency = 1 } end)
    local r = backup_config(config_with(function(c) c.velero = { wait = 1.5 } end))
    assert.equal(0, r.code, r.stderr)                  -- four queued at once, three would time out
    local started = {}
    for _, c in ipairs(fake.calls()) do
      if c.argv[5] == "create-backup" and c.argv[3] == "velero" then started[#started + 1] = c.time end
    end
    assert.equal(4, #started)
    for i = 2, 4 do assert.is_true(started[i] - started[i - 1] >= 0.9, "sent while the last one ran") end
  end)

  it("refuses a database the charm blocked for S3 writes after a restore, with the fix", function()
    fake.edit(function(state)
      state.models.kubeflow.applications["kfp-db"].s3_block = "Move restored cluster to another S3 repository"
    end)
    local r = backup()
    assert.equal(3, r.code, r.stderr)
    assert.matches("FAIL  kfp%-db +Move restored cluster to another S3 repository: .*juju config %-m kubeflow "
      .. "s3%-integrator path=kfp%-db%-", r.stderr)
  end)

  it("names its models as controller:model, as juju's -m accepts them", function()
    local r = backup_config(config_with(function(c)
      c.models = { kubeflow = "microk8s-localhost:kubeflow", velero = "microk8s-localhost:velero" }
    end))
    assert.equal(0, r.code, r.stderr)
    for _, c in ipairs(fake.matching(" create%-backup ")) do
      if type(c.params) == "table" and c.params.target then assert.equal("kubeflow", c.params.model) end
    end
    assert.is_true(#fake.matching("%-m microk8s%-localhost:kubeflow") > 0)
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

  it("posts a preflight refusal too (on_end ends every run)", function()
    local c = kube()
    assert(c:create("workflows.argoproj.io", { apiVersion = "argoproj.io/v1alpha1", kind = "Workflow",
      metadata = { name = "busy-run", namespace = "kubeflow" }, status = { phase = "Running" } }))
    local web = assert(os.getenv("CKFB_TEST_HTTP"))
    local config = config_with(function(cfg) cfg.hooks = { "examples/hooks/webhook.lua" } end)
    local r = assert(proc.run({ CKFB, "backup", "--config", config },
      { env = { CKFB_WEBHOOK_URL = web .. "/record/refusal" }, timeout = 120 }))
    assert(c:delete("workflows.argoproj.io", "busy-run", { namespace = "kubeflow" }))
    assert.equal(3, r.code)
    local posted = json.decode(assert(require("ckfb.http").get(web .. "/recorded/refusal")).body)
    assert.equal("refused", posted.status)
  end)
end)

describe("ckfb backup keeps a true record", function()
  before_each(function() fake.reset(nil, STATE) end)

  it("fails the run when a non-advisory after_backup hook fails, and names it", function()
    local hook = TMP .. "/failing-hook.lua"
    local f = assert(io.open(hook, "w"))
    f:write('local hooks = ...\nhooks.on("after_backup", function() error("the site check found no backup") end)\n')
    f:close()
    local r = backup_config(config_with(function(cfg) cfg.hooks = { hook } end))
    assert.equal(1, r.code, r.stderr)
    assert.equal("failed", r.report.status)
    assert.matches("hook after_backup %(.*failing%-hook%.lua%) failed: .*the site check found no backup",
      r.report.error)
    local m = json.decode(assert(io.open(r.report.manifest_path)):read("a"))
    assert.equal("failed", m.status)
  end)

  it("records what finished when interrupted: names, ids, what was running, real next steps", function()
    fake.edit(function(state)
      state.behaviour["velero-operator/create-backup/mlmd:velero-backup-config"] = { latency = 30 }
    end)
    local out, pidfile = TMP .. "/interrupted.err", TMP .. "/interrupted.pid"
    os.remove(out)
    local result
    task.all {
      function()
        result = assert(proc.run({ "sh", "-c", 'echo $$ > "$4"; exec "$0" backup --config "$1" --report "$2" 2> "$3"',
          CKFB, CONFIG, REPORT, out, pidfile }, { timeout = 60 }))
      end,
      function()  -- wait for both databases and minio's backup to be made, then Ctrl-C
        for _ = 1, 600 do
          local f = io.open(out)
          local text = f and f:read("a") or ""
          if f then f:close() end
          local dbs = select(2, text:gsub("create%-backup on a non%-primary %S+ unit: ok", ""))
          if dbs == 2 and text:find("target=minio:velero%-backup%-config model=kubeflow: ok") then break end
          task.sleep(0.05)
        end
        assert(proc.run({ "kill", "-INT", assert(io.open(pidfile)):read("a"):match("%d+") }))
      end,
    }
    assert.equal(130, result.code)
    local rep = json.decode(assert(io.open(REPORT)):read("a"))
    assert.equal("interrupted", rep.status)
    local m = json.decode(assert(io.open(rep.manifest_path)):read("a"))
    assert.equal(2, #m.databases)
    for _, d in ipairs(m.databases) do
      assert.equal("created", d.status)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT", d.backup_id)
    end
    assert.equal("created", m.velero[1].status)
    assert.matches("^minio%-velero%-backup%-config%-", m.velero[1].backup_name)
    assert.equal("interrupted", m.velero[2].status)
    local steps = table.concat(rep.next_steps, "\n")
    assert.matches("list%-backups model=kubeflow   %(mlmd:velero%-backup%-config was being backed up", steps)
    assert.matches("create%-backup target=kubeflow%-profiles:profiles%-backup%-config model=kubeflow %-%-wait 900s",
      steps)
  end)

  it("shows each velero Backup's phase and items as Velero reports them, watched through Kubernetes", function()
    local http = require "ckfb.http"
    local function velero_speed(items, delay)
      assert(http.request { method = "POST", url = os.getenv("CKFB_TEST_K8S") .. "/__control/velero",
        body = json.encode { items = items, item_delay = delay }, tls = { ca_file = STANDINS .. "/certs/ca.crt" } })
    end
    velero_speed(3, 0.1)
    local r = backup()
    velero_speed(5, 0)
    assert.equal(0, r.code, r.stderr)
    local label = "velero create%-backup target=minio:velero%-backup%-config model=kubeflow: "
    local started = r.stderr:find(label .. "started")
    local progress = r.stderr:find(label .. "InProgress 0/3 items")
    local completed = r.stderr:find(label .. "Completed 3/3 items")
    local ok = r.stderr:find(label .. "ok")
    assert.truthy(started and progress and completed and ok, r.stderr)
    assert.truthy(started < progress and progress < completed and completed < ok)
    local backups = kube():list("backups.velero.io", { namespace = "velero",
      label_selector = "app=minio,endpoint=velero-backup-config,model=kubeflow" })
    local names = {}
    for _, b in ipairs(backups) do names[b.metadata.name] = b.status.phase end
    assert.equal("Completed", names[r.report.velero[1].backup_name])
  end)

  it("refuses while another machine's ckfb holds the CKF's Lease, and takes over an expired one", function()
    local c = kube()
    local now = os.date("!%Y-%m-%dT%H:%M:%S.000000Z")
    c:delete("leases.coordination.k8s.io", "ckfb", { namespace = "kubeflow" })  -- one an interrupted run left
    assert(c:create("leases.coordination.k8s.io", { apiVersion = "coordination.k8s.io/v1", kind = "Lease",
      metadata = { name = "ckfb", namespace = "kubeflow" }, spec = { holderIdentity = "other-host/4242/ckf-x",
        leaseDurationSeconds = 120, renewTime = now, acquireTime = now } }, { namespace = "kubeflow" }))
    local r = backup()
    assert.equal(3, r.code, r.stderr)
    assert.matches("FAIL  lock +another ckfb %(other%-host/4242/ckf%-x%) holds the Lease kubeflow/ckfb", r.stderr)
    assert.same({}, changing_calls())
    local lease = assert(c:get("leases.coordination.k8s.io", "ckfb", { namespace = "kubeflow" }))
    lease.spec.renewTime = "2026-01-01T00:00:00.000000Z"             -- its holder died long ago
    assert(c:replace("leases.coordination.k8s.io", lease, { namespace = "kubeflow" }))
    r = backup()
    assert.equal(0, r.code, r.stderr)
    local _, err = c:get("leases.coordination.k8s.io", "ckfb", { namespace = "kubeflow" })
    assert.equal("k8s.not_found", err.code)                          -- released at the end
  end)

  it("make run never touches a real juju, even where one is on PATH", function()
    local bin = TMP .. "/real-juju-bin"
    assert(require("ckfb.file").private_dir(bin))
    local f = assert(io.open(bin .. "/juju", "w"))
    f:write("#!/bin/sh\ntouch '" .. bin .. "/touched'\nexit 1\n")
    f:close()
    assert(proc.run({ "chmod", "+x", bin .. "/juju" }))
    local r = assert(proc.run({ "demo/run" }, { timeout = 120,
      env = { PATH = bin .. ":" .. os.getenv("PATH"), CKFB_JUJU = false, CKFB = CKFB } }))
    assert.equal(0, r.code, r.stderr)
    assert.matches("never a real CKF", r.stderr)
    assert.is_nil(io.open(bin .. "/touched"))
  end)
end)
