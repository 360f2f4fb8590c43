-- Benchmark: N concurrent `sleep 1` children through task.all and proc.run.
-- Prints the wall time, its ratio to the ideal (1 s) and to bash's `&` +
-- `wait` (the peer), and ckfb's CPU use while the children sleep.
--   ckfb bench/proc_fanout.lua [N]
local proc = require "ckfb.proc"
local task = require "ckfb.task"
local loop = require "ckfb.core.loop"

local n = math.tointeger(tonumber((...) or "100")) or 100

local function bash_peer()
  local script = string.format("for i in $(seq %d); do sleep 1 & done; wait", n)
  local t0 = loop.now()
  assert(proc.run({ "bash", "-c", script }))
  return loop.now() - t0
end

local jobs = {}
for i = 1, n do jobs[i] = function() return proc.run({ "sleep", "1" }).code end end
local sample = {}
jobs[#jobs + 1] = function()  -- CPU from when every child runs until just before they exit
  task.sleep(0.25)
  local cpu, wall = os.clock(), loop.now()
  task.sleep(0.6)
  sample.wait = (os.clock() - cpu) / (loop.now() - wall)
end

local t0, cpu0 = loop.now(), os.clock()
local codes = { task.all(jobs) }
local wall = loop.now() - t0
local total_cpu = (os.clock() - cpu0) / wall
for i = 1, n do assert(codes[i] == 0, "a child failed") end

local peer = bash_peer()
print(string.format("proc_fanout: %d x 'sleep 1': ckfb %.3fs wall, ratio to ideal 1s %.2f (target < 1.30)",
  n, wall, wall / 1.0))
print(string.format("proc_fanout: peer bash '&'+wait %.3fs, ratio ckfb/bash %.2f", peer, wall / peer))
print(string.format("proc_fanout: ckfb CPU while the children wait %.2f%% (target < 2%%); over the whole run "
  .. "(fork, exec, reaping included) %.2f%%", sample.wait * 100, total_cpu * 100))
