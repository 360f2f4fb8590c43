local juju = require "ckfb.juju"
local task = require "ckfb.task"
local log = require "ckfb.log"
local loop = require "ckfb.core.loop"
local fake = require "tests.stdlib.ckfb.helpers.fake_juju"
local capture = require "tests.stdlib.ckfb.helpers.capture"

local KF = { model = "kubeflow" }
local VELERO = { model = "velero" }

local function contains(list, value)
  for _, v in ipairs(list) do if v == value then return true end end
  return false
end

describe("ckfb.juju", function()
  before_each(function() fake.reset() end)

  describe("status", function()
    it("parses the model's status, with helpers for units, leader and readiness", function()
      local st = assert(juju.status(KF))
      assert.equal("kubeflow", st.model.name)
      assert.equal("mysql-k8s", st.applications["kfp-db"].charm)
      assert.same({ "kfp-db/0" }, juju.units(st, "kfp-db"))
      assert.equal("kfp-db/0", juju.leader(st, "kfp-db"))
      assert.is_true(juju.is_active_idle(st, "kfp-db"))
      assert.is_false(juju.is_active_idle(st, "no-such-app"))
      assert.same({}, juju.units(st, "no-such-app"))
      assert.same({ "status", "-m", "kubeflow", "--format", "json" }, fake.argvs("status")[1])
    end)

    it("reports juju's own failure with its stderr", function()
      local st, err = juju.status({ model = "nope" })
      assert.is_nil(st)
      assert.equal("juju.error", err.code)
      local text = tostring(err):gsub(os.getenv("CKFB_JUJU"):gsub("%p", "%%%0"), "juju")
      assert.equal("juju.error: 'juju status -m nope --format json' failed: "
        .. "model microk8s-localhost:admin/nope not found", text)
      assert.equal(1, err.detail.exit)
      assert.matches("^ERROR model", err.detail.stderr)
    end)

    it("says in one line when there is no juju CLI", function()
      local saved = juju.binary
      juju.binary = function() return "/nonexistent/juju" end
      local st, err = juju.status(KF)
      juju.binary = saved
      assert.is_nil(st)
      assert.equal("juju.missing", err.code)
      assert.is_nil(tostring(err):find("\n"))
      assert.matches("set CKFB_JUJU", err.message)
    end)
  end)

  describe("run", function()
    it("returns the task of a completed action, on app/leader", function()
      local t = assert(juju.run("kfp-db/leader", "get-cluster-status", nil, KF))
      assert.equal("completed", t.status)
      assert.equal("kfp-db/0", t.unit)
      assert.matches("^%d+$", t.id)
      assert.equal("primary", t.results.status.defaultreplicaset.topology["kfp-db-0"].memberrole)
      assert.equal("True", t.results.success)
    end)

    it("treats a failed action that exits 0 as a failure, with the task", function()
      juju.scale("kfp-db", 3, KF)  -- from rev 300 a smaller cluster is refused before the primary check
      local t, err = juju.run("kfp-db/0", "create-backup", nil, KF)
      assert.is_nil(t)
      assert.equal("juju.action_failed", err.code)
      assert.matches("Unit cannot perform backups as it is the cluster primary", err.message)
      assert.equal("failed", err.detail.task.status)
      assert.equal(0, err.detail.exit)
      assert.is_not_nil(err.detail.task_id)
    end)

    it("reports an action that crashed (exit 1 with JSON)", function()
      fake.behave("kfp-db/list-backups", { exception = "Traceback (most recent call last):\nKeyError: 'x'" })
      local t, err = juju.run("kfp-db/0", "list-backups", nil, KF)
      assert.is_nil(t)
      assert.equal("juju.action_failed", err.code)
      assert.equal(1, err.detail.exit)
      assert.matches("task failed", err.detail.stderr)
      assert.equal(1, err.detail.task.results["return-code"])
    end)

    it("times out when --wait runs out, keeps the task id, and show_task picks it up", function()
      fake.behave("kfp-db/list-backups", { latency = 2 })
      local t, err = juju.run("kfp-db/0", "list-backups", nil, { model = "kubeflow", wait = 1 })
      assert.is_nil(t)
      assert.equal("juju.timeout", err.code)
      assert.matches("^%d+$", err.detail.task_id)
      local later = assert(juju.show_task(err.detail.task_id, KF))
      assert.is_true(later.status == "running" or later.status == "completed")
      task.sleep(1.2)
      local done = assert(juju.show_task(err.detail.task_id, KF))
      assert.equal("completed", done.status)
      assert.matches("backup%-id", done.results.backups)
    end)

    it("returns juju.not_found for a unit Juju cannot schedule on (exit 0, no JSON)", function()
      local t, err = juju.run("kfp-db/7", "list-backups", nil, KF)
      assert.is_nil(t)
      assert.equal("juju.not_found", err.code)
      assert.matches('unit "kfp%-db/7" not found', err.message)
      assert.equal(0, err.detail.exit)
    end)

    it("returns juju.not_found for an action the charm does not define", function()
      local t, err = juju.run("kfp-db/0", "frobnicate", nil, KF)
      assert.is_nil(t)
      assert.equal("juju.not_found", err.code)
      assert.matches('action "frobnicate" not defined', err.message)
    end)

    it("reports a task Juju could not enqueue", function()
      fake.behave("kfp-db/list-backups", { unschedulable = "unit kfp-db/0 is not ready" })
      local _, err = juju.run("kfp-db/0", "list-backups", nil, KF)
      assert.equal("juju.error", err.code)
      assert.matches("not ready", err.message)
    end)

    it("passes params in a 0600 file, removed afterwards, never in argv or a log line", function()
      local secret = log.secret("TOPSECRET-s3-key-9f8e7d")
      local logged, t = capture.log(function()
        return juju.run("s3-integrator/leader", "sync-s3-credentials",
          { ["access-key"] = "AKIAEXAMPLE", ["secret-key"] = secret }, KF)
      end)
      assert.equal("Credentials successfully updated.", assert(t).results.ok)
      local call = fake.calls()[1]
      assert.equal(secret, call.params["secret-key"])          -- it did reach juju ...
      assert.equal("0o600", call.params_mode)
      for _, word in ipairs(call.argv) do
        assert.is_nil(word:find(secret, 1, true))              -- ... but not through argv
      end
      local params_path = call.argv[#call.argv]
      assert.equal("--params", call.argv[#call.argv - 1])
      assert.is_nil(io.open(params_path))                      -- and the file is gone
      assert.is_nil(logged:find(secret, 1, true))
      assert.matches("juju: .*sync%-s3%-credentials", logged)
    end)

    it("runs velero's create-backup with target and model", function()
      assert(juju.offer("velero-operator:velero-backups", "velero-backups", VELERO))
      assert(juju.consume("velero.velero-backups", nil, KF))
      assert(juju.integrate("minio", "velero-backups", KF))
      local t = assert(juju.run("velero-operator/0", "create-backup",
        { target = "minio:velero-backup-config", model = "kubeflow" }, { model = "velero", wait = 900 }))
      assert.matches("^minio%-velero%-backup%-config%-", t.results["backup-name"])
      local _, err = juju.run("velero-operator/0", "create-backup",
        { target = "mlmd:velero-backup-config", model = "kubeflow" }, VELERO)
      assert.equal("No backup spec found for target 'mlmd:velero-backup-config' in model 'kubeflow'",
        err.detail.task.message)
      local listed = assert(juju.run("velero-operator/0", "list-backups", { model = "kubeflow" }, VELERO))
      local uids = {}
      for uid in pairs(listed.results.backups) do uids[#uids + 1] = uid end
      assert.equal(1, #uids)
      local bare = assert(juju.run("velero-operator/0", "list-backups", nil, VELERO))
      assert.is_nil(next(bare.results.backups or {}))  -- velero lists its own model by default
    end)

    it("runs six one-second actions at once, on six units", function()
      fake.edit(function(state)
        for _, app in ipairs { "kfp-db", "katib-db" } do
          state.behaviour[app .. "/list-backups"] = { latency = 1 }
          local units = state.models.kubeflow.applications[app].units
          units[app .. "/1"], units[app .. "/2"] = {}, {}
        end
      end)
      local jobs = {}
      for _, app in ipairs { "kfp-db", "katib-db" } do
        for i = 0, 2 do
          jobs[#jobs + 1] = function() return assert(juju.run(app .. "/" .. i, "list-backups", nil, KF)).status end
        end
      end
      local t0 = loop.now()
      local results = { task.all(jobs) }
      assert.equal(6, #results)
      assert.is_true(loop.now() - t0 < 4, "six one-second actions took " .. (loop.now() - t0) .. "s")
    end)

    it("queues actions on one unit one after another, as Juju does", function()
      fake.behave("kfp-db/list-backups", { latency = 0.5 })
      local t0 = loop.now()
      task.all {
        function() return juju.run("kfp-db/0", "list-backups", nil, KF) end,
        function() return juju.run("kfp-db/0", "list-backups", nil, KF) end,
      }
      assert.is_true(loop.now() - t0 >= 1)
    end)

    it("raises on misuse", function()
      assert.has_error(function() juju.run("kfp-db/0", "list-backups", nil, {}) end)
      assert.has_error(function() juju.run("kfp-db", "list-backups", nil, KF) end)
      assert.has_error(function() juju.status() end)
      assert.has_error(function() juju.scale("kfp-db", -1, KF) end)
    end)
  end)

  describe("on a real juju 3.6 (its sources, as the emulator follows them)", function()
    local proc = require "ckfb.proc"
    local sys = require "ckfb.core.sys"
    local core_file = require "ckfb.core.file"
    local home = assert(os.getenv("HOME"))
    local LIST = { model = "kubeflow" }

    it("a snap-confined juju cannot read a params file in /tmp", function()
      local path = assert(core_file.mkstemp("/tmp", "ckfb-spec-params-"))
      local f = assert(io.open(path, "w"))
      f:write('{"model": "kubeflow"}')
      f:close()
      local r = assert(proc.run({ juju.binary(), "run", "-m", "velero", "velero-operator/0", "list-backups",
        "--format", "json", "--params", path }))
      os.remove(path)
      assert.equal(1, r.code)
      assert.equal("ERROR open " .. path .. ": no such file or directory\n", r.stderr)
    end)

    it("writes params under ~/snap/juju/common, 0600, and removes them after the call", function()
      local t = assert(juju.run("velero-operator/0", "list-backups", LIST, VELERO))
      assert.equal("success", t.results.status)
      local call = fake.calls()[1]
      local path = call.argv[#call.argv]
      assert.equal(home .. "/snap/juju/common/ckfb-params-" .. sys.getpid() .. "-", path:sub(1, #home + 31
        + #tostring(sys.getpid())))
      assert.equal("0o600", call.params_mode)
      assert.is_nil(io.open(path))
    end)

    it("removes the params files a killed ckfb left behind", function()
      local dir = home .. "/snap/juju/common"
      local stale = dir .. "/ckfb-params-4194305-AbCdEf"   -- above Linux's pid_max: never alive
      local mine = dir .. "/ckfb-params-" .. sys.getpid() .. "-keepme"
      for _, p in ipairs { stale, mine } do assert(io.open(p, "w")):close() end
      local ckfb = assert(os.getenv("CKFB"))
      local r = assert(proc.run({ ckfb, "-e", [[assert(require("ckfb.juju").run("velero-operator/0",
        "list-backups", {model = "kubeflow"}, {model = "velero"}))]] }))
      assert.equal(0, r.code, r.stderr)
      assert.is_nil(io.open(stale))
      assert.is_not_nil(io.open(mine))                  -- a live process's file is left alone
      os.remove(mine)
    end)

    it("uses TMPDIR when juju is not a snap", function()
      local ckfb = assert(os.getenv("CKFB"))
      local bare = os.getenv("CKFB_TEST_TMP") .. "/bare-home"
      assert(require("ckfb.file").mkdir_p(bare))
      local r = assert(proc.run({ ckfb, "-e", "print(require('ckfb.juju').params_dir())" },
        { env = { HOME = bare, TMPDIR = bare } }))
      assert.equal(bare .. "\n", r.stdout)
    end)

    it("reads an empty storage list: juju prints nothing at all", function()
      fake.edit(function(state)
        for _, app in pairs(state.models.kubeflow.applications) do app.storage = nil end
      end)
      assert.same({}, assert(juju.storage(KF)))
    end)

    it("accepts controller:model, and reports another controller as juju does", function()
      local st = assert(juju.status { model = "microk8s-localhost:kubeflow" })
      assert.equal("kubeflow", st.model.name)
      local _, err = juju.run("kfp-db/0", "list-backups", nil, { model = "elsewhere:kubeflow" })
      assert.equal("juju.error", err.code)
      assert.matches("controller elsewhere not found", err.message)
    end)

    it("reports a failure whose stdout is not a task as juju.error, with juju's stderr", function()
      local t, err = juju.run("kfp-db/0", "list-backups", nil, { model = "nosuch" })
      assert.is_nil(t)
      assert.equal("juju.error", err.code)                -- juju printed `{}` on stdout and exited 1
      assert.matches("model microk8s%-localhost:admin/nosuch not found", err.detail.stderr)
      assert.equal(1, err.detail.exit)
    end)

    it("gives --wait as a Go duration, fractions included", function()
      assert.equal("900s", juju.go_duration(900))
      assert.equal("500ms", juju.go_duration(0.5))
      assert.equal("1501ms", juju.go_duration(1.5004))
      assert(juju.run("kfp-db/0", "list-backups", nil, { model = "kubeflow", wait = 2.5 }))
      assert.is_true(contains(fake.calls()[1].argv, "2500ms"))
    end)

    it("exits 0 with no task for an action the charm does not define, or params its schema refuses", function()
      local _, err = juju.run("velero-operator/0", "restore", { ["backup-name"] = "x" }, VELERO)
      assert.equal("juju.error", err.code)
      assert.equal(0, err.detail.exit)
      assert.matches("validation failed: %(root%) : backup%-uid is required", err.message)
    end)
  end)

  describe("offer, consume and integrate", function()
    it("change only what is missing", function()
      assert.same({ changed = true }, juju.offer("velero-operator:velero-backups", "velero-backups", VELERO))
      assert.same({ changed = false }, juju.offer("velero-operator:velero-backups", "velero-backups", VELERO))
      assert.same({ changed = true }, juju.consume("velero.velero-backups", nil, KF))
      assert.same({ changed = false }, juju.consume("velero.velero-backups", nil, KF))
      local targets = { "minio", "mlmd", "kubeflow-profiles:profiles-backup-config",
        "kubeflow-profiles:user-workloads-backup-config" }
      for _, target in ipairs(targets) do
        assert.same({ changed = true }, juju.integrate(target, "velero-backups", KF))
      end
      for _, target in ipairs(targets) do
        assert.same({ changed = false }, juju.integrate(target, "velero-backups", KF))
      end
      assert.equal(1, #fake.argvs("offer"))
      assert.equal(1, #fake.argvs("consume"))
      assert.equal(4, #fake.argvs("integrate"))
      assert.same({ "offer", "velero.velero-operator:velero-backups", "velero-backups" }, fake.argvs("offer")[1])
      local st = assert(juju.status(VELERO))
      assert.equal(4, st.offers["velero-backups"]["total-connected-count"])
    end)

    it("returns juju's error for an integration that cannot be", function()
      juju.consume("velero.velero-backups", nil, KF)
      local r, err = juju.integrate("kubeflow-profiles", "nope", KF)
      assert.is_nil(r)
      assert.equal("juju.error", err.code)
      assert.matches('application "nope" not found', err.message)
    end)

    it("never switches the operator's current model", function()
      juju.offer("velero-operator:velero-backups", "velero-backups", VELERO)
      juju.consume("velero.velero-backups", nil, KF)
      juju.run("kfp-db/leader", "get-cluster-status", nil, KF)
      assert.same({}, fake.argvs("switch"))
      for _, c in ipairs(fake.calls()) do
        assert.is_true(c.argv[1] == "offer" or contains(c.argv, "-m"), table.concat(c.argv, " "))
      end
    end)
  end)

  describe("scale and wait", function()
    it("scales, and waits until the new units are active and idle", function()
      fake.edit(function(state) state.scale_delay = 1.5 end)
      assert.is_true(juju.scale("kfp-db", 2, KF))
      local st = assert(juju.status(KF))
      assert.same({ "kfp-db/0", "kfp-db/1" }, juju.units(st, "kfp-db"))
      assert.is_false(juju.is_active_idle(st, "kfp-db"))
      local ready = assert(juju.wait(function(s) return juju.is_active_idle(s, "kfp-db") end,
        { model = "kubeflow", timeout = 20, delay = 0.2 }))
      assert.is_true(juju.is_active_idle(ready, "kfp-db"))
    end)

    it("times out with juju.timeout", function()
      local st, err = juju.wait(function() return false end, { model = "kubeflow", timeout = 0.5, delay = 0.1 })
      assert.is_nil(st)
      assert.equal("juju.timeout", err.code)
    end)
  end)

  describe("config, models, version", function()
    it("reads and changes config through a file", function()
      assert.equal("ckf-db-backups", assert(juju.config_get("s3-integrator", KF)).bucket)
      assert.is_true(juju.config_set("s3-integrator", { bucket = "other-bucket" }, KF))
      assert.equal("other-bucket", juju.config_get("s3-integrator", KF).bucket)
      for _, argv in ipairs(fake.argvs("config")) do
        assert.is_false(contains(argv, "bucket=other-bucket"))
      end
    end)

    it("keeps the old joint config(app, changes, opts) for a release, saying so once", function()
      local said, warn = {}, log.warn
      log.warn = function(fmt, ...) said[#said + 1] = string.format(fmt, ...) end
      local ok, err = pcall(function()
        assert.is_true(juju.config("s3-integrator", { bucket = "third-bucket" }, KF))
        assert.equal("third-bucket", juju.config("s3-integrator", nil, KF).bucket)
      end)
      log.warn = warn
      assert(ok, err)
      assert.equal(1, #said)
      assert.matches("^juju%.config%(app, changes, opts%) is deprecated .*use juju%.config_get", said[1])
    end)

    it("lists models and reads the version", function()
      assert.same({ "kubeflow", "velero" }, assert(juju.models()))
      assert.matches("^3%.6%.", assert(juju.version()))
    end)
  end)
end)
