local task = require "ckfb.task"
local proc = require "ckfb.proc"
local errors = require "ckfb.error"
local loop = require "ckfb.core.loop"

describe("ckfb.task", function()
  it("sleeps outside a task without ceremony", function()
    local t0 = loop.now()
    task.sleep(0.05)
    assert.is_true(loop.now() - t0 >= 0.05)
  end)

  it("returns from a zero sleep, even with a child pending", function()
    local t = task.spawn(function() return proc.run({ "sleep", "0.3" }) end)
    task.sleep(0)  -- an overdue deadline must not turn into an endless wait
    assert.is_false(t:done())
    t:wait()
  end)

  it("runs task.all concurrently and returns results in order", function()
    local t0 = loop.now()
    local a, b, c = task.all {
      function() task.sleep(0.3) return "slow" end,
      function() task.sleep(0.1) return "fast" end,
      function() return "now" end,
    }
    local elapsed = loop.now() - t0
    assert.same({ "slow", "fast", "now" }, { a, b, c })
    assert.is_true(elapsed < 0.5, "took " .. elapsed .. "s: not concurrent")
  end)

  it("cancels the others on the first error and raises it", function()
    local reached = false
    local t0 = loop.now()
    local ok, err = pcall(task.all, {
      function() task.sleep(0.05); error(errors.new("step.failed", "first failure")) end,
      function() task.sleep(5); reached = true end,
    })
    assert.is_false(ok)
    assert.equal("step.failed", err.code)
    assert.is_true(loop.now() - t0 < 1)
    task.sleep(0.05)
    assert.is_false(reached)
  end)

  it("kills a child process when its task is cancelled", function()
    local pidfile = os.tmpname()
    local ok = pcall(task.all, {
      function() proc.run({ "sh", "-c", "echo $$ > " .. pidfile .. "; exec sleep 30" }) end,
      function() task.sleep(0.2); error("stop") end,
    })
    assert.is_false(ok)
    local pid = assert(io.open(pidfile)):read("n")
    os.remove(pidfile)
    assert.is_number(pid)
    local alive = proc.run({ "kill", "-0", tostring(pid) })
    assert.is_not.equal(0, alive.code)
  end)

  it("runs <close> variables of a cancelled task", function()
    local closed = false
    local t = task.spawn(function()
      local _ <close> = setmetatable({}, { __close = function() closed = true end })
      task.sleep(10)
    end)
    task.sleep(0.01)
    t:cancel()
    assert.is_true(closed)
    assert.has_error(function() t:wait() end)
  end)

  it("bounds a call with task.timeout", function()
    local v, err = task.timeout(0.1, function() task.sleep(5) return 1 end)
    assert.is_nil(v)
    assert.equal("task.timeout", err.code)
    assert.equal(42, task.timeout(1, function() return 42 end))
  end)

  it("spawned tasks run when the caller waits, and wait() returns their results", function()
    local order = {}
    local t = task.spawn(function(x) order[#order + 1] = "task"; return x * 2 end, 21)
    order[#order + 1] = "main"
    assert.equal(42, t:wait())
    assert.same({ "main", "task" }, order)
  end)

  it("nests task.all inside a task", function()
    local outer = task.spawn(function()
      return task.all { function() task.sleep(0.01) return 1 end, function() return 2 end }
    end)
    assert.equal(1, outer:wait())
  end)

  it("lets plain coroutines call waiting functions", function()
    local co = coroutine.wrap(function() task.sleep(0.01); return "done" end)
    assert.equal("done", co())
  end)

  it("reports a deadlock instead of hanging", function()
    local t
    t = task.spawn(function() t:wait() end)
    local ok, err = pcall(function() t:wait() end)
    assert.is_false(ok)
    assert.matches("task.deadlock", tostring(err))
    t:cancel()
  end)

  it("runs the cleanups still pending after a stop, newest first, and may wait in them", function()
    local ran = {}
    task.cleanup(function() task.sleep(0.01); ran[#ran + 1] = "first" end)
    local forget = task.cleanup(function() ran[#ran + 1] = "forgotten" end)
    task.cleanup(function() error("a cleanup that fails does not stop the others") end)
    task.cleanup(function() ran[#ran + 1] = "second" end)
    forget()
    assert.equal(3, task.run_cleanups(5))
    assert.same({ "second", "first" }, ran)
    assert.equal(0, task.run_cleanups(5))
  end)

  it("raises on misuse", function()
    assert.has_error(function() task.cleanup(42) end)
    assert.has_error(function() task.spawn(42) end)
    assert.has_error(function() task.sleep(-1) end)
    assert.has_error(function() task.all(nil) end)
  end)

  it("keeps the traceback of the task frame that failed, for -v", function()
    local tmp = assert(os.getenv("CKFB_TEST_TMP"))
    local script = tmp .. "/failing_task.lua"
    assert(require("ckfb.file").write(script, table.concat({
      "local task = require 'ckfb.task'",
      "local function deep(t)",
      "  return t.missing.field",
      "end",
      "task.all { function() task.sleep(0) return deep({}) end }",
    }, "\n") .. "\n"))
    local r = assert(proc.run({ assert(os.getenv("CKFB")), "-v", script }, { timeout = 30 }))
    os.remove(script)
    assert.equal(1, r.code)
    assert.matches("failing_task%.lua:3: in ", r.stderr)   -- the frame in the task, not only task.lua's wait
    local first = r.stderr:match("^[^\n]*")
    assert.matches("^ckfb: .*failing_task%.lua:3: attempt to index", first)
  end)

  it("returns from task.all as soon as its tasks finish, whatever else is pending on the loop", function()
    local sleeper = task.spawn(task.sleep, 5)     -- a timer pending, as a lock's renewal is
    task.sleep(0)
    assert.same({ 1, 2 }, { task.all { function() return 1 end, function() return 2 end } })
    assert.is_false(sleeper:done())              -- task.all did not wait for the timer
    sleeper:cancel()
  end)
end)
