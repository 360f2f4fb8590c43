--- ckfb.repl: the interactive prompt (`ckfb` alone on a terminal, or -i).
-- Every binding is a global, loaded on first use; a line that is an
-- expression prints its values; input continues while a chunk is
-- incomplete, as in lua5.4; Ctrl-C cancels the running command (its child
-- processes and requests too) and Ctrl-D leaves. Without a terminal it reads
-- chunks from stdin and prints results, so it can be scripted.
local core = require "ckfb.core.repl"
local sys = require "ckfb.core.sys"
local pretty = require "ckfb.pretty"

local M = {}

M.GLOBALS = { juju = "ckfb.juju", k8s = "ckfb.k8s", s3 = "ckfb.s3", json = "ckfb.json", yaml = "ckfb.yaml",
  task = "ckfb.task", proc = "ckfb.proc", http = "ckfb.http", log = "ckfb.log" }

M.HELP = table.concat({
  "The prompt runs Lua 5.4 with ckfb's bindings ready as globals:",
  "  juju k8s s3 json yaml task proc http log   (each a ckfb module; docs/ARCHITECTURE.md, The stdlib)",
  "  juju.status{model = 'kubeflow'}    k8s.list('pods')    s3.list('bucket', {prefix = 'ckfb/'})",
  "A value typed alone is printed; :traceback shows the last error's traceback; Ctrl-C stops a call;",
  "Ctrl-D leaves. The commands are outside the prompt: ckfb help.",
}, "\n")

--- The configuration file's kubernetes and s3 sections, when there is one.
local function site_config()
  local search, explicit = require("ckfb.sets").config_search()
  for _, path in ipairs(explicit and { explicit } or search) do
    local text = require("ckfb.file").read(path)
    if text then
      local doc = require("ckfb.yaml").decode(text)
      return type(doc) == "table" and doc or {}
    end
  end
  return {}
end

--- Loads a binding on first use (the prompt opens even when the cluster or
-- the bucket is unreachable), with the default client from the config file.
local function lazy(env)
  setmetatable(env, { __index = function(t, name)
    local module = M.GLOBALS[name]
    if not module then return nil end
    local m = require(module)
    local cfg = site_config()
    if name == "s3" and type(cfg.s3) == "table" then
      local made = m.client
      m.client = function(opts) return made(opts or cfg.s3) end
    elseif name == "k8s" and type(cfg.kubernetes) == "table" then
      local made, k = m.client, cfg.kubernetes
      m.client = function(opts)
        return made(opts or { kubeconfig = k.kubeconfig ~= "" and k.kubeconfig or nil,
                               context = k.context ~= "" and k.context or nil })
      end
    end
    rawset(t, name, m)
    return m
  end })
end

local function history_file()
  local home = os.getenv("HOME")
  return home and (home .. "/.ckfb_history") or nil
end

--- Candidates for completing `text` ("juju.st" -> {"juju.status", ...}).
function M.complete(text, env)
  env = env or _G
  local path, sep, partial = text:match("^(.*)([.:])([%w_]*)$")
  local scope, prefix = env, ""
  if path then
    for name in path:gmatch("[^.:]+") do
      if type(scope) ~= "table" then return {} end
      scope = scope[name]
    end
    prefix = path .. sep
  else
    partial = text
  end
  local names, seen = {}, {}
  local function add(tbl)
    if type(tbl) ~= "table" then return end
    for k, v in pairs(tbl) do
      if type(k) == "string" and k:sub(1, #partial) == partial and not seen[k] and k:match("^[%a_][%w_]*$")
        and (sep ~= ":" or type(v) == "function") then
        seen[k] = true
        names[#names + 1] = prefix .. k
      end
    end
  end
  add(scope)
  if not path then add(M.GLOBALS) end
  local mt = type(scope) == "table" and getmetatable(scope)
  if mt and type(mt.__index) == "table" then add(mt.__index) end
  table.sort(names)
  return names
end

--- Compiles input: an expression (or "=expr") first, then a statement.
-- Returns the chunk, or nil and "incomplete" | the syntax error.
function M.compile(source, env)
  local expr = source:gsub("^%s*=", "")
  local chunk = load("return " .. expr, "=stdin", "t", env)
  if chunk then return chunk end
  local err
  chunk, err = load(source, "=stdin", "t", env)
  if chunk then return chunk end
  if err:find("<eof>$") then return nil, "incomplete" end
  return nil, err
end

local last_traceback = ""

--- Runs a chunk as a task; Ctrl-C cancels it, with its children and requests.
local function execute(chunk)
  local task = require "ckfb.task"
  local t = task.spawn(chunk)
  local results = table.pack(xpcall(function() return t:wait() end, function(e)
    last_traceback = task.traceback_of(e) or debug.traceback(tostring(e), 2)
    return e
  end))
  if not t:done() then t:cancel() end  -- interrupted while it waited
  if sys.interrupted() then
    task.cancel_all()
    task.run_cleanups()
    core.clear_interrupt()
    return false, "interrupted"
  end
  return table.unpack(results, 1, results.n)
end

local function show(ok, ...)
  io.stdout:flush()
  if not ok then
    local err = ...
    local text = require("ckfb.log").redact(tostring(err))
    io.stderr:write(text:match("^[^\n]*"), "   (:traceback for more)\n")
    return
  end
  if select("#", ...) > 0 then print(pretty.format(...)) end
end

--- One chunk of input (several lines when incomplete), or nil at the end.
-- Ctrl-C while typing (read gives false) drops the chunk: an empty one.
local function read_chunk(read, env)
  local line = read("ckfb> ")
  if line == false then return "" end
  if not line then return nil end
  local source = line
  while true do
    if source:match("^%s*:traceback%s*$") then return source end
    local chunk, err = M.compile(source, env)
    if chunk or err ~= "incomplete" then return source, chunk, err end
    local more = read("ckfb>> ")
    if more == false then return "" end
    if not more then return source, nil, err end
    source = source .. "\n" .. more
  end
end

--- run{interactive = bool}: the prompt loop; returns the exit code.
function M.run(opts)
  local env = _G
  lazy(env)
  local history = history_file()
  local editing = opts.interactive and core.open(function(text) return M.complete(text, env) end, history)
  local read
  if opts.interactive then
    read = core.readline
  else
    read = function() return io.read("l") end
  end
  if opts.interactive then
    io.stderr:write("ckfb ", sys.version, " (", _VERSION, "): juju, k8s, s3, json, yaml, task, proc, http and log "
      .. "are ready; Ctrl-D leaves\n")
  end
  while true do
    local source, chunk, err = read_chunk(read, env)
    if not source then break end
    if source:match("^%s*:traceback%s*$") then
      io.stderr:write(last_traceback, "\n")
    elseif source:match("^%s*help%s*$") or source:match("^%s*help%(%)%s*$") then
      print(M.HELP)
    elseif source:match("^%s*$") then -- luacheck: ignore 542
    elseif not chunk then
      io.stderr:write(err, "\n")
    else
      show(execute(chunk))
    end
    -- after it ran: a line holding a secret (even one it registered) never reaches the history
    if editing and require("ckfb.log").redact(source) == source then core.remember(source:gsub("\n", " "), history) end
  end
  if opts.interactive then io.stderr:write("\n") end
  return 0
end

return M
