-- ckfb.lock: flock(2), so two runs never hold it at once and a dead holder's lock is free.
local proc = require "ckfb.proc"
local task = require "ckfb.task"
local lock = require "ckfb.lock"

local CKFB = assert(os.getenv("CKFB"))
local TMP = assert(os.getenv("CKFB_TEST_TMP"))

describe("ckfb.lock", function()
  it("is held by one run at a time, over many rounds of racing processes", function()
    local dir, log = TMP .. "/lock-race", TMP .. "/lock-race.log"
    os.remove(log)
    -- each contender tries at once; a holder writes "+pid", keeps it 30 ms, writes "-pid"
    local contender = [[
      local lock, sys = require "ckfb.lock", require "ckfb.core.sys"
      local held = lock.acquire(arg[1], "race")
      if not held then return end
      local f = assert(io.open(arg[2], "a")); f:write("+", sys.getpid(), "\n"); f:close()
      require("ckfb.task").sleep(0.03)
      f = assert(io.open(arg[2], "a")); f:write("-", sys.getpid(), "\n"); f:close()
      held:release()
    ]]
    for _ = 1, 25 do
      local jobs = {}
      for _ = 1, 4 do
        jobs[#jobs + 1] = function() return assert(proc.run({ CKFB, "-", dir, log }, { stdin = contender })) end
      end
      task.all(jobs)
    end
    local holder, holds = nil, 0
    for line in io.lines(log) do
      local sign, pid = line:match("^([+-])(%d+)$")
      if sign == "+" then
        assert.is_nil(holder, "two holders at once: " .. tostring(holder) .. " and " .. pid)
        holder, holds = pid, holds + 1
      else
        assert.equal(holder, pid)
        holder = nil
      end
    end
    assert.is_true(holds >= 25)                      -- at least one winner each round
  end)

  it("is free again when its holder is killed, with no stale lock to guess about", function()
    local dir = TMP .. "/lock-killed"
    -- the holder says when it holds the lock; then it is killed with SIGKILL
    local holder = [[local l = assert(require("ckfb.lock").acquire(arg[1], "k")); print("held"); io.stdout:flush()
      require("ckfb.task").sleep(30)]]
    local r = assert(proc.run({ "sh", "-c", 'printf "%s" "$2" | "$0" - "$1" > "$1.out" & pid=$!; '
      .. 'until grep -q held "$1.out" 2>/dev/null; do sleep 0.05; done; kill -9 $pid; wait $pid; echo $?',
      CKFB, dir, holder }, { timeout = 20 }))
    assert.equal("137\n", r.stdout)
    local held = assert(lock.acquire(dir, "k"))
    held:release()
  end)

  it("says who holds it", function()
    local dir = TMP .. "/lock-who"
    local held = assert(lock.acquire(dir, "w", { set = "ckf-x" }))
    local again, err = lock.acquire(dir, "w")
    assert.is_nil(again)
    assert.equal("lock.held", err.code)
    assert.matches("another ckfb run %(pid %d+, since ", err.message)
    assert.equal("ckf-x", err.detail.set)
    held:release()
  end)
end)
