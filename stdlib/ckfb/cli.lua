--- ckfb.cli: the command line. Parses options (as lua5.4 does: options
-- first, then a script and its arguments), resolves the script (a file, `-`
-- for stdin, or the name of a shipped script), runs it, and turns the
-- outcome into an exit code: 0 ok, 1 failed, 2 usage, 130 interrupted.
local sys = require "ckfb.core.sys"
local stdlib = require "ckfb.stdlib"

-- Loaded only when used: `ckfb -e` must start about as fast as lua5.4.
local function log()
  return require "ckfb.log"
end

local M = {}

local EXIT = { ok = 0, error = 1, usage = 2 }  -- and 128 + signal: 130 (SIGINT), 143 (SIGTERM)

local function shipped_names()
  local names = {}
  for name in pairs(stdlib.scripts) do names[#names + 1] = name end
  table.sort(names)
  return table.concat(names, ", ")
end

--- The commands an operator runs, in the order the help lists them.
M.COMMANDS = {
  { "backup", "back up Charmed Kubeflow: velero and database backups, verified, recorded as one set" },
  { "list", "the recorded backup sets, with the live status of every component" },
  { "describe", "one backup set: components, live status, objects, sizes, expiry" },
  { "restore", "restore a backup set, in the order of Canonical's guide" },
  { "drill", "prove a backup set restores, into scratch namespaces, without touching CKF" },
  { "prune", "delete old backup sets whole" },
  { "help", "this help, or a command's (ckfb help backup)" },
  { "version", "ckfb's version and the commit it was built from" },
}

--- "ckfb 0.5.0 (commit 0cdcc33, Lua 5.4)"
function M.version_line()
  return string.format("ckfb %s (commit %s, %s)", sys.version, sys.commit, _VERSION)
end

function M.usage()
  local lines = {
    "usage: ckfb [options] COMMAND [ARGS...]",
    "",
    "Backs up and restores Charmed Kubeflow (CKF) safely: one command instead of the guide's twenty.",
    "",
    "commands:",
  }
  for _, c in ipairs(M.COMMANDS) do lines[#lines + 1] = string.format("  %-9s %s", c[1], c[2]) end
  for _, more in ipairs {
    "",
    "options (before the command):",
    "  -q, --quiet     nothing on success; one summary line on failure (and warnings)",
    "  -v, --verbose   more detail; repeat for more (-vv: trace)",
    "  --log-format F  text (the default) or json: one object per log line ($CKFB_LOG_FORMAT)",
    "  --version       print the version (as ckfb version)",
    "  -h, --help      print this help",
    "",
    "For scripting ckfb itself (Lua 5.4 with ckfb's bindings: juju, k8s, s3, proc, http, json, yaml, task, log):",
    "  ckfb [-e CODE] [-l MODULE] [-i] [--lib-dir DIR] [SCRIPT | - ] [ARGS...]",
    "  ckfb                         the prompt (on a terminal)",
    "  ckfb stdlib list | stdlib cat MODULE",
    "SCRIPT is a file (a site's copy of a command: ckfb ./backup.lua);",
    "shipped scripts: " .. shipped_names() .. ".",
    "",
    "Exit codes: 0 ok, 1 failed, 2 usage error, 130 interrupted (SIGINT), 143 terminated (SIGTERM);",
    "each command adds its own (ckfb help COMMAND).",
  } do lines[#lines + 1] = more end
  return table.concat(lines, "\n")
end

local UsageError = {}

local function usage_error(fmt, ...)
  error(setmetatable({ message = string.format(fmt, ...) }, UsageError), 0)
end

local function check_utf8(argv)
  for i = 1, #argv do
    if not utf8.len(argv[i]) then
      usage_error("argument %d is not valid UTF-8", i)
    end
  end
end

--- Parses argv[1..] into {actions = {{"e"|"l", value}}, verbose, quiet,
-- script, script_index}.
local function parse(argv)
  local o = { actions = {}, verbose = 0, quiet = false }
  local i = 1
  local function value(opt)
    i = i + 1
    if argv[i] == nil then usage_error("option '%s' needs an argument", opt) end
    return argv[i]
  end
  while argv[i] do
    local a = argv[i]
    if a == "--" then i = i + 1; break
    elseif a == "-" or a:sub(1, 1) ~= "-" then break
    elseif a == "-e" or a == "-l" then o.actions[#o.actions + 1] = { a:sub(2), value(a) }
    elseif a:match("^%-[el].") then o.actions[#o.actions + 1] = { a:sub(2, 2), a:sub(3) }
    elseif a == "-v" or a == "--verbose" then o.verbose = o.verbose + 1
    elseif a:match("^%-v+$") then o.verbose = o.verbose + #a - 1
    elseif a == "-q" or a == "--quiet" then o.quiet = true
    elseif a == "--log-format" then o.log_format = value(a)
    elseif a:match("^%-%-log%-format=") then o.log_format = a:match("=(.*)")
    elseif a == "-i" then o.interactive = true
    elseif a == "--lib-dir" then value(a)  -- _boot.lua already used it
    elseif a:match("^%-%-lib%-dir=.") then -- luacheck: ignore 542
    elseif a == "--version" then o.version = true
    elseif a == "-h" or a == "--help" then o.help = true
    else usage_error("unknown option '%s'", a) end
    i = i + 1
  end
  o.script_index = argv[i] and i or nil
  o.script = argv[i]
  return o
end

--- The global `arg`, as lua.c builds it: script at 0, its arguments from 1.
local function make_arg(argv, index)
  local t = {}
  for j = 0, #argv do t[j - index] = argv[j] end
  return t
end

local function load_script(name)
  if name == "-" then
    return load(io.read("a"), "=stdin")
  end
  -- a shipped name always means the shipped script: a file of that name in the current
  -- directory runs only by a path (`ckfb ./backup`)
  local path = stdlib.scripts[name]
  if path then return load(stdlib.source(path), "@" .. path) end
  local kind = sys.filetype(name)
  if kind == "file" then return loadfile(name) end
  if kind == "directory" then usage_error("'%s' is a directory, not a script", name) end
  if name:find("[/.]") then usage_error("cannot open script '%s': no such file", name) end
  usage_error("'%s' is neither a file nor a shipped script (shipped: %s)", name, shipped_names())
end

local function describe(err)
  local mt = getmetatable(err)
  if type(err) == "table" and not (mt and mt.__tostring) then
    if type(err.message) ~= "string" then return "(error object is a table value)" end
    return (err.code and tostring(err.code) .. ": " or "") .. err.message
  end
  return tostring(err)
end

local function report(err, verbose)
  local redact = log().redact
  local text = redact(describe(err))
  local first = text:match("^[^\n]*")
  log().say("error", "ckfb: " .. first)
  if verbose then
    local task = package.loaded["ckfb.task"]
    local origin = task and task.traceback_of(err)   -- a task's error: where it failed, not where it was waited for
    io.stderr:write(redact(text:sub(#first + 2)), redact(origin or sys.traceback()), "\n")
  end
end

local function run_actions(actions)
  for _, act in ipairs(actions) do
    if act[1] == "l" then
      rawset(_G, act[2]:match("[^.]+$"), require(act[2]))
    else
      local chunk, err = load(act[2], "=(command line)")
      if not chunk then error(err, 0) end
      chunk()
    end
  end
end

-- os.exit closes the state by default, so children are killed and reaped.
local function install_exit()
  local exit = os.exit
  os.exit = function(code, close) -- luacheck: ignore 122
    if close == nil then close = true end
    exit(code, close)
  end
end

local function run(o, argv)
  local chunk, err
  if o.script then
    chunk, err = load_script(o.script)
    if not chunk then error(err, 0) end
  end
  _G.arg = make_arg(argv, o.script_index or #argv + 1)
  install_exit()
  -- ckfb -e has the prompt's globals (json, juju, k8s, ...) ready; a script requires them
  require("ckfb.strict").enable(_G, not chunk and require("ckfb.repl").GLOBALS or nil)
  run_actions(o.actions)
  local code = EXIT.ok
  if chunk then
    local results = table.pack(chunk(table.unpack(_G.arg, 1, #_G.arg)))
    if math.type(results[1]) == "integer" then code = results[1] end
  end
  if package.loaded["ckfb.task"] then package.loaded["ckfb.task"].finish() end
  if o.interactive then return M.prompt(true) end
  return code
end

--- run_command(name, args) -> its exit code: a shipped command run from another (ckfb help).
function M.run_command(name, args)
  local chunk = assert(load(stdlib.source(stdlib.scripts[name]), "@" .. stdlib.scripts[name]))
  local code = chunk(table.unpack(args))
  return math.type(code) == "integer" and code or EXIT.ok
end

--- The REPL: interactive on a terminal, chunks from stdin otherwise.
function M.prompt(interactive)
  require("ckfb.strict").disable(_G)
  return require("ckfb.repl").run { interactive = interactive }
end

--- print redacts registered secrets, in scripts and at the prompt alike, and escapes
-- control characters on a terminal (ckfb.log.print). Secrets can only be registered
-- through ckfb.log: until it is loaded, print to a pipe needs nothing.
local function install_print()
  local plain_print = print
  local terminal = sys.isatty(1)
  _G.print = function(...)
    local loaded = package.loaded["ckfb.log"] or (terminal and require("ckfb.log"))
    if loaded then return loaded.print(...) end
    return plain_print(...)
  end
end

function M.main(argv)
  install_print()
  local ok, result = xpcall(function()
    check_utf8(argv)
    local o = parse(argv)
    local log_format = o.log_format or os.getenv("CKFB_LOG_FORMAT")
    if log_format and log_format ~= "" and not pcall(log().set_format, log_format) then
      usage_error("unknown log format '%s' (text or json)", log_format)
    end
    if o.quiet then log().set_level("warn") end
    if o.verbose > 0 then log().set_level(3 + o.verbose) end
    sys.set_verbose(o.verbose > 0)
    M.verbose = o.verbose > 0
    if o.help then print(M.usage()); return EXIT.ok end
    if o.version then print(M.version_line()); return EXIT.ok end
    if not o.script and #o.actions == 0 then return M.prompt(o.interactive or sys.isatty(0)) end
    return run(o, argv)
  end, function(e)
    sys.msghandler(e)  -- keeps the traceback aside for -v
    return e
  end)
  if ok then return result end
  if getmetatable(result) == UsageError then
    log().say("error", "ckfb: " .. result.message .. " (try 'ckfb --help')")
    return EXIT.usage
  end
  local task = package.loaded["ckfb.task"]
  if task then
    pcall(task.cancel_all)
    pcall(task.run_cleanups)
  end
  report(result, M.verbose)
  local signal = sys.interrupted()
  return signal and 128 + signal or EXIT.error
end

return M
