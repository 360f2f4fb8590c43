-- Watch latency: a task creates 20 ConfigMaps, one every 50 ms; the watch
-- handler notes when each event reaches Lua. Latency is counted from just
-- before the create request is sent (an upper bound on "from the server
-- sending it"). Run by bench/k8s.
local k8s = require "ckfb.k8s"
local task = require "ckfb.task"
local loop = require "ckfb.core.loop"

local N = 20
local sent, latencies = {}, {}
task.spawn(function()
  task.sleep(0.3)
  for i = 1, N do
    local name = "bench-watch-" .. i
    sent[name] = loop.now()
    assert(k8s.create("configmaps", { metadata = { name = name, namespace = "default" }, data = {} }))
    task.sleep(0.05)
  end
end)
assert(k8s.watch("configmaps", { namespace = "default", timeout = 30 }, function(kind, obj)
  local t0 = sent[obj.metadata.name]
  if kind == "ADDED" and t0 then latencies[#latencies + 1] = (loop.now() - t0) * 1000 end
  return #latencies < N
end))
table.sort(latencies)
print(string.format("k8s_watch: %d events, latency from send to Lua median %.1f ms, max %.1f ms (target < 50)",
  #latencies, latencies[#latencies // 2 + 1], latencies[#latencies]))
