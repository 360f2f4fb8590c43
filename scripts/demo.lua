-- ckfb demo: the shipped example job until scripts/backup.lua exists. It
-- shows the bindings at work against whatever this machine has: it looks for
-- the tools a backup needs, asks them for their versions concurrently, fans
-- out child processes on the one loop, optionally fetches a URL, and prints a
-- report for people (or --json for programs).
--
--   ckfb demo [--json] [--url URL] [--children N]
local proc = require "ckfb.proc"
local http = require "ckfb.http"
local task = require "ckfb.task"
local json = require "ckfb.json"
local log = require "ckfb.log"
local sys = require "ckfb.sys"

local function parse_args(args)
  local o = { children = 20 }
  local i = 1
  while args[i] do
    local a = args[i]
    if a == "--json" then o.json = true
    elseif a == "--url" and args[i + 1] then o.url = args[i + 1]; i = i + 1
    elseif a == "--children" and math.tointeger(tonumber(args[i + 1])) then
      o.children = math.tointeger(tonumber(args[i + 1]))
      i = i + 1
    elseif a == "--help" then
      print("usage: ckfb demo [--json] [--url URL] [--children N]")
      os.exit(0)
    else
      io.stderr:write("ckfb demo: unknown argument '", a, "' (try 'ckfb demo --help')\n")
      os.exit(2)
    end
    i = i + 1
  end
  return o
end

-- Each tool: how to ask its version; a missing tool is reported, not fatal.
local TOOLS = {
  { name = "juju", argv = { os.getenv("CKFB_JUJU") or "juju", "version" } },
  { name = "kubectl", argv = { "kubectl", "version", "--client", "-o", "json" } },
  { name = "lua5.4", argv = { "lua5.4", "-v" } },
}

local function probe(tool)
  local r, err = proc.run(tool.argv, { timeout = 10 })
  if not r then return { tool = tool.name, ok = false, detail = err.message } end
  local out = (r.stdout ~= "" and r.stdout or r.stderr)
  local parsed = json.decode(out)
  local version = parsed and parsed.clientVersion and parsed.clientVersion.gitVersion or out:match("[^\n]*")
  return { tool = tool.name, ok = r.code == 0, detail = version }
end

local function fan_out(n)
  local jobs = {}
  for i = 1, n do jobs[i] = function() return proc.run({ "sleep", "0.2" }).code end end
  local start = sys.now()
  local codes = { task.all(jobs) }
  local failed = 0
  for _, c in ipairs(codes) do if c ~= 0 then failed = failed + 1 end end
  return { children = n, failed = failed, seconds = sys.now() - start }
end

local function fetch(url)
  local r, err = http.get(url, { timeout = 10 })
  if not r then return { url = url, ok = false, detail = err.message } end
  return { url = url, ok = r.status < 400, status = r.status, bytes = #r.body, seconds = r.time }
end

local o = parse_args({ ... })
log.info("probing tools and running %d children concurrently", o.children)
local jobs = {}
for i, tool in ipairs(TOOLS) do jobs[i] = function() return probe(tool) end end
jobs[#jobs + 1] = function() return fan_out(o.children) end
if o.url then jobs[#jobs + 1] = function() return fetch(o.url) end end
local results = { task.all(jobs) }

local report = { tools = {}, fan_out = results[#TOOLS + 1], fetch = o.url and results[#TOOLS + 2] or nil }
for i = 1, #TOOLS do report.tools[i] = results[i] end

if o.json then
  print(json.encode(report, { pretty = true }))
else
  for _, t in ipairs(report.tools) do
    print(string.format("%-8s %-4s %s", t.tool, t.ok and "ok" or "--", t.detail))
  end
  local f = report.fan_out
  print(string.format("%d children of 'sleep 0.2' at once: %.2fs wall, %d failed", f.children, f.seconds, f.failed))
  if report.fetch then
    local r = report.fetch
    print(string.format("GET %s: %s", r.url, r.ok and (r.status .. ", " .. r.bytes .. " bytes") or r.detail))
  end
end
return report.fan_out.failed == 0 and 0 or 1
