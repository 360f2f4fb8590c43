local proc = require "ckfb.proc"
local task = require "ckfb.task"
local loop = require "ckfb.core.loop"
local errors = require "ckfb.error"

local function zombies_of(pid)
  local r = proc.run({ "ps", "-o", "stat=", "--ppid", tostring(pid) })
  return select(2, r.stdout:gsub("Z", ""))
end

local function my_pid()
  return math.tointeger(tonumber(assert(io.open("/proc/self/stat")):read("a"):match("^(%d+)")))
end

describe("ckfb.proc", function()
  it("returns code, stdout and stderr", function()
    local r = assert(proc.run({ "sh", "-c", "echo out; echo err >&2; exit 3" }))
    assert.equal(3, r.code)
    assert.equal("out\n", r.stdout)
    assert.equal("err\n", r.stderr)
    assert.is_nil(r.signal)
    assert.is_false(r.timed_out)
  end)

  it("never goes through a shell: metacharacters are plain arguments", function()
    local r = assert(proc.run({ "printf", "%s|", "$(id)", "a b", ";", "*" }))
    assert.equal("$(id)|a b|;|*|", r.stdout)
  end)

  it("reports a signal", function()
    local r = assert(proc.run({ "sh", "-c", "kill -TERM $$" }))
    assert.equal(15, r.signal)
    assert.is_nil(r.code)
  end)

  it("feeds stdin, larger than a pipe buffer", function()
    local input = string.rep("0123456789abcdef", 64 * 1024)  -- 1 MiB
    local r = assert(proc.run({ "wc", "-c" }, { stdin = input }))
    assert.equal(#input, tonumber(r.stdout))
  end)

  it("sets cwd and adds to, removes from or replaces the environment", function()
    local r = assert(proc.run({ "sh", "-c", 'pwd; echo "$CKFB_A|${HOME-unset}"' },
      { cwd = "/tmp", env = { CKFB_A = "x", HOME = false } }))
    assert.equal("/tmp\nx|unset\n", r.stdout)
    local clean = assert(proc.run({ "/usr/bin/env" }, { clear_env = true, env = { ONLY = "1" } }))
    assert.equal("ONLY=1\n", clean.stdout)
  end)

  it("returns nil and an error for a missing program or directory", function()
    local r, err = proc.run({ "ckfb-no-such-program" })
    assert.is_nil(r)
    assert.equal("proc.not_found", err.code)
    assert.equal("proc.not_found: cannot run 'ckfb-no-such-program': not found on PATH", tostring(err))
    local _, cwd_err = proc.run({ "true" }, { cwd = "/nonexistent" })
    assert.equal("proc.exec", cwd_err.code)
    local _, perm = proc.run({ "/etc/hostname" })
    assert.equal("proc.exec", perm.code)
  end)

  it("terminates on timeout, then kills after the grace period", function()
    local t0 = loop.now()
    local r, err = proc.run({ "sleep", "10" }, { timeout = 0.2 })
    assert.is_nil(r)
    assert.is_true(errors.is(err, "proc.timeout"))
    assert.equal(15, err.detail.signal)
    local _, stubborn = proc.run({ "sh", "-c", "trap '' TERM; sleep 10" }, { timeout = 0.2, grace = 0.2 })
    assert.equal(9, stubborn.detail.signal)
    assert.is_true(loop.now() - t0 < 2)
  end)

  it("caps output with max_output and says so", function()
    local r = assert(proc.run({ "head", "-c", "100000", "/dev/zero" }, { max_output = 1000 }))
    assert.equal(1000, #r.stdout)
    assert.is_true(r.truncated)
    assert.equal(0, r.code)
  end)

  it("passes no descriptor but 0, 1 and 2 to children, even after HTTP", function()
    -- never skipped: tests/run always starts the HTTP test server
    local server = assert(os.getenv("CKFB_TEST_HTTP"), "CKFB_TEST_HTTP: run the specs through tests/run")
    assert(require("ckfb.http").get(server .. "/echo"))
    local r = assert(proc.run({ "sh", "-c", "ls /proc/$$/fd" }))
    local fds = {}
    for fd in r.stdout:gmatch("%d+") do fds[#fds + 1] = tonumber(fd) end
    table.sort(fds)
    assert.same({ 0, 1, 2 }, fds)
  end)

  it("waits in poll, not in a busy loop, once curl is in use", function()
    require("ckfb.http").get(assert(os.getenv("CKFB_TEST_HTTP")) .. "/echo")
    local cpu, wall = os.clock(), loop.now()
    assert(proc.run({ "sleep", "0.5" }))
    local share = (os.clock() - cpu) / (loop.now() - wall)
    assert.is_true(share < 0.5, string.format("ckfb used %.0f%% of a core while waiting", share * 100))
  end)

  it("runs 50 children at once and leaves no zombie", function()
    local jobs = {}
    for i = 1, 50 do jobs[i] = function() return proc.run({ "sh", "-c", "sleep 0.2; echo " .. i }).stdout end end
    local t0 = loop.now()
    local out = { task.all(jobs) }
    assert.is_true(loop.now() - t0 < 2)
    for i = 1, 50 do assert.equal(i .. "\n", out[i]) end
    assert.equal(0, zombies_of(my_pid()))
  end)

  it("does not wait for a grandchild that keeps the pipe open for long", function()
    local t0 = loop.now()
    local r = assert(proc.run({ "sh", "-c", "sleep 3 & echo started" }))
    assert.equal("started\n", r.stdout)
    assert.is_true(loop.now() - t0 < 2.5)
  end)

  it("raises on misuse", function()
    assert.has_error(function() proc.run({}) end)
    assert.has_error(function() proc.run("ls") end)
    assert.has_error(function() proc.run({ "ls", 42 }) end)
  end)
end)
