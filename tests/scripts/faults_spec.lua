-- Faults, end to end: juju killed mid-action, an action hanging past its
-- wait, SIGTERM mid-run, S3 down, the disk full when the report is written.
-- Each: the right exit code, a report that says what happened, no orphaned
-- process, the lock released.
local proc = require "ckfb.proc"
local json = require "ckfb.json"
local task = require "ckfb.task"
local fake = require "tests.stdlib.ckfb.helpers.fake_juju"

local standins = require "tests.stdlib.ckfb.helpers.standins"
local CKFB, TMP, STANDINS, STATE = standins.CKFB, standins.TMP, standins.STANDINS, standins.STATE
local REPORT = TMP .. "/fault-report.json"

local variant = require("tests.stdlib.ckfb.helpers.configs").variant

local function config(change)
  return variant(change or function() end)
end

local function report()
  local f = io.open(REPORT)
  if not f then return nil end
  local r = json.decode(f:read("a"))
  f:close()
  return r
end

--- The juju calls this spec started that are still running (by their recorded PIDs).
local function juju_children()
  return fake.running("^run ")
end

--- True when no process holds the backup lock (flock: taking it is the only test).
local function lock_free()
  local held = require("ckfb.lock").acquire(STANDINS .. "/state", "backup-kubeflow-velero")
  if held then held:release() end
  return held ~= nil
end

--- Runs `ckfb backup ARGS` while `meanwhile(pid)` runs in another task.
local function backup_with(args, meanwhile)
  os.remove(REPORT)
  local pidfile = TMP .. "/fault.pid"
  os.remove(pidfile)
  local argv = { "sh", "-c", 'echo $$ > "$0"; exec "$@"', pidfile, CKFB, "backup", "--report", REPORT }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local result
  task.all {
    function() result = assert(proc.run(argv, { timeout = 120 })) end,
    function()
      if not meanwhile then return end
      for _ = 1, 50 do
        local f = io.open(pidfile)
        if f then f:close(); break end
        task.sleep(0.05)
      end
      meanwhile(assert(io.open(pidfile)):read("a"):match("%d+"))
    end,
  }
  return result
end

describe("faults", function()
  before_each(function() fake.reset(nil, STATE) end)

  it("juju killed in the middle of an action: that backup fails, the others are made (exit 4)", function()
    fake.edit(function(state)
      state.behaviour["velero-operator/create-backup/mlmd:velero-backup-config"] = { latency = 3 }
    end)
    local r = backup_with({ "--config", config() }, function()
      -- mlmd's create-backup is velero's second: kill that juju process (by its PID) mid-action
      local pid
      repeat
        local calls = fake.matching("^run %-m velero velero%-operator/leader create%-backup")
        for _, c in ipairs(fake.calls()) do
          if type(c.params) == "table" and c.params.target == "mlmd:velero-backup-config" then pid = c.pid end
        end
        if not pid then task.sleep(0.05) end
      until pid or #calls > 4
      proc.run({ "kill", "-KILL", tostring(math.tointeger(pid)) })
    end)
    assert.equal(4, r.code, r.stderr)
    local rep = report()
    assert.equal("partial", rep.status)
    local failed = 0
    for _, b in ipairs(rep.velero) do if b.status ~= "created" then failed = failed + 1 end end
    assert.is_true(failed >= 1)
    assert.is_true(lock_free())
    assert.same({}, juju_children())
  end)

  it("an action hanging past its wait and more: followed, then reported as still running, exit 4", function()
    fake.edit(function(state)
      state.behaviour["velero-operator/create-backup/minio:velero-backup-config"] = { latency = 30 }
    end)
    local r = backup_with({ "--config", config(function(c) c.velero = { wait = 2 } end) })
    assert.equal(4, r.code, r.stderr)
    local found = false
    for _, b in ipairs(report().velero) do
      if b.target == "minio:velero-backup-config" then
        found = true
        assert.equal("running", b.status)               -- not "failed": the charm is still at it
        assert.matches("task %d+ is still running after 4s; follow it with juju show%-task %-m velero %d+", b.error)
        assert.matches("juju show%-task %-m velero " .. b.task_id, table.concat(report().next_steps, "\n"))
      end
    end
    assert.is_true(found)
    assert.is_true(lock_free())
  end)

  it("an action past its --wait that then completes: followed with show-task, the backup counts", function()
    fake.edit(function(state)
      state.behaviour["velero-operator/create-backup/minio:velero-backup-config"] = { latency = 2.5 }
    end)
    local r = backup_with({ "--config", config(function(c) c.velero = { wait = 1.5 } end) })
    assert.equal(0, r.code, r.stderr)
    assert.matches("following task %d+", r.stderr)
    for _, b in ipairs(report().velero) do assert.equal("created", b.status) end
    local waits = {}
    for _, argv in ipairs(fake.argvs("run")) do
      for i, a in ipairs(argv) do if a == "--wait" then waits[argv[i + 1]] = true end end
    end
    assert.is_true(waits["1500ms"])                     -- a Go duration, not a rounded-up 2s
  end)

  it("SIGTERM mid-run: exit 143, the report says interrupted, no child left, lock released", function()
    fake.edit(function(state) state.behaviour["velero-operator/create-backup"] = { latency = 20 } end)
    local r = backup_with({ "--config", config() }, function(pid)
      while #fake.matching(" create%-backup ") == 0 do task.sleep(0.05) end   -- a juju action is running
      proc.run({ "kill", "-TERM", pid })
    end)
    assert.equal(143, r.code, r.stderr)
    assert.matches("terminated", r.stderr)
    assert.equal("interrupted", report().status)
    assert.is_true(lock_free())
    assert.same({}, juju_children())                  -- ckfb killed and reaped its children before exiting
  end)

  it("S3 down: the preflight refuses (exit 3); with --force the backup goes on without S3", function()
    local down = config(function(c) c.s3.endpoint = "http://127.0.0.1:1" end)
    local refused = backup_with({ "--config", down })
    assert.equal(3, refused.code)
    assert.matches("FAIL  s3 .*127%.0%.0%.1:1.*%(%-%-force overrides%)", refused.stderr)
    local forced = backup_with({ "--config", down, "--force" })
    assert.equal(0, forced.code, forced.stderr)
    local rep = report()
    assert.equal("complete", rep.status)
    assert.is_nil(rep.manifest_s3)
    assert.is_not_nil(rep.manifest_path)
  end)

  it("the disk full when the report is written: one line, exit 1, the manifest kept", function()
    local r = assert(proc.run({ CKFB, "backup", "--config", config(), "--report", "/dev/full" }, { timeout = 120 }))
    assert.equal(1, r.code)
    assert.matches("the report was not written: .*No space left on device %(the manifest is .-%.json%)", r.stderr)
    assert.is_true(lock_free())
  end)
end)
