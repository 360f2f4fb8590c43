-- Run by bench/juju, which points CKFB_JUJU and FAKE_JUJU_STATE at the emulator.
local juju = require "ckfb.juju"
local json = require "ckfb.json"
local proc = require "ckfb.proc"
local task = require "ckfb.task"
local loop = require "ckfb.core.loop"

local tmp = assert(..., "usage: ckfb bench/juju.lua TMPDIR")
local state_path = assert(os.getenv("FAKE_JUJU_STATE"))
local KF = { model = "kubeflow" }

local function edit_state(change)
  local f = assert(io.open(state_path))
  local state = json.decode(f:read("a"))
  f:close()
  change(state)
  f = assert(io.open(state_path, "w"))
  f:write(json.encode(state))
  f:close()
end

-- 1. Six one-second actions, as the guide's six backups: at once, then one by one.
local UNITS = {}
edit_state(function(state)
  for _, app in ipairs { "kfp-db", "katib-db" } do
    state.behaviour[app .. "/list-backups"] = { latency = 1 }
    local units = state.models.kubeflow.applications[app].units
    for i = 0, 2 do
      units[app .. "/" .. i] = units[app .. "/" .. i] or {}
      UNITS[#UNITS + 1] = app .. "/" .. i
    end
  end
end)
local jobs = {}
for i, unit in ipairs(UNITS) do jobs[i] = function() return assert(juju.run(unit, "list-backups", nil, KF)) end end
local t0 = loop.now()
task.all(jobs)
local concurrent = loop.now() - t0
t0 = loop.now()
for _, unit in ipairs(UNITS) do assert(juju.run(unit, "list-backups", nil, KF)) end
local sequential = loop.now() - t0
print(string.format("juju_actions: 6 x 1 s actions at once %.3fs (target < 1.30), one by one as the guide "
  .. "types them %.3fs, ratio %.2f", concurrent, sequential, concurrent / sequential))

-- 2. Decoding a 2,000-unit status.
edit_state(function(state)
  local units = {}
  for i = 0, 1999 do units["big/" .. i] = i == 0 and { leader = true } or {} end
  state.models.kubeflow.applications.big = { charm = "big", units = units }
end)
local r = assert(proc.run({ os.getenv("CKFB_JUJU"), "status", "-m", "kubeflow", "--format", "json" }))
local text_path = tmp .. "/status.json"
local f = assert(io.open(text_path, "w"))
f:write(r.stdout)
f:close()
local rounds = 20
local c0 = os.clock()
for _ = 1, rounds do assert(json.decode(r.stdout)) end
local ckfb_ms = (os.clock() - c0) / rounds * 1000
local peer = assert(proc.run({ "lua5.4", "-e", string.format([[
  local cjson = require "cjson"
  local f = io.open(%q); local text = f:read("a"); f:close()
  local c0 = os.clock()
  for _ = 1, %d do cjson.decode(text) end
  io.write((os.clock() - c0) / %d * 1000)]], text_path, rounds, rounds) }))
local peer_ms = tonumber(peer.stdout)
local st = assert(juju.status(KF))
assert(#juju.units(st, "big") == 2000)
print(string.format("juju_status: decoding a 2,000-unit status (%d KB) %.1f ms (target < 50), "
  .. "lua5.4 + cjson %.1f ms, ratio %.2f", #r.stdout // 1024, ckfb_ms, peer_ms or -1, ckfb_ms / (peer_ms or 1)))
