--- ckfb.juju: Juju through its CLI, as Canonical's jubilant does: `juju` runs
-- as a child process on the loop (never through a shell) and its JSON is
-- parsed. Every call names its model (`model` or `controller:model`); ckfb
-- never runs `juju switch`. Action params go through a 0600 --params file
-- that a snap-confined juju can read, never argv (see params_file).
--
-- The binary is $CKFB_JUJU, else `juju` on PATH. Failures are `nil, err`
-- with err.code one of: juju.missing (no CLI), juju.error (juju failed),
-- juju.not_found (no such unit or action), juju.action_failed (the action
-- ran and failed), juju.timeout (a --wait or a wait() ran out), juju.output
-- (output ckfb cannot read). err.detail has the command line, juju's
-- stderr, its exit code and, for actions, the task and its id.
local proc = require "ckfb.proc"
local json = require "ckfb.json"
local task = require "ckfb.task"
local errors = require "ckfb.error"
local log = require "ckfb.log"
local file = require "ckfb.file"
local loop = require "ckfb.core.loop"
local sys = require "ckfb.core.sys"
local core_file = require "ckfb.core.file"

local M = {}

local DEFAULT_WAIT = 60   -- juju run's own default --wait

--- The juju CLI ckfb runs.
function M.binary()
  local configured = os.getenv("CKFB_JUJU")
  return (configured and configured ~= "") and configured or "juju"
end

local function need_model(opts, fn)
  if type(opts) ~= "table" or type(opts.model) ~= "string" or opts.model == "" then
    error("juju." .. fn .. ": opts.model is required (ckfb never relies on the current model)", 3)
  end
  return opts.model
end

--- The line of juju's stderr that says what went wrong.
local function problem(stderr)
  local first
  for line in stderr:gmatch("[^\n]+") do
    local msg = line:match("^ERROR (.*)")
    if msg then return msg end
    first = first or line
  end
  return first or "no error message"
end

local function failure(code, message, argv, r, extra)
  local detail = { command = proc.describe(argv), stderr = r and r.stderr, exit = r and r.code }
  for k, v in pairs(extra or {}) do detail[k] = v end
  return nil, errors.new(code, message, detail)
end

--- Runs `juju ARGS...`; returns the process result (any exit code) or nil, err.
local function call(args, timeout)
  local argv = { M.binary() }
  for i, a in ipairs(args) do argv[i + 1] = a end
  local started = loop.now()
  local r, err = proc.run(argv, { timeout = timeout })
  if not r then
    if err.code == "proc.not_found" then
      return nil, errors.new("juju.missing", string.format(
        "cannot run the juju CLI '%s': not found (install juju, or set CKFB_JUJU to its path)", argv[1]))
    end
    if err.code == "proc.timeout" then
      return failure("juju.timeout", string.format("'%s' did not finish in %gs", proc.describe(argv), timeout), argv)
    end
    return nil, err
  end
  log.debug("juju: %s (exit %s, %.2fs)", proc.describe(argv), tostring(r.code), loop.now() - started)
  return r, argv
end

--- Runs juju and requires exit 0; returns the result and argv, or nil, err.
local function call_ok(args, timeout)
  local r, argv = call(args, timeout)
  if not r then return nil, argv end
  if r.code ~= 0 then
    return failure("juju.error", string.format("'%s' failed: %s", proc.describe(argv), problem(r.stderr)), argv, r)
  end
  return r, argv
end

local function decode(r, argv)
  local value, err = json.decode(r.stdout)
  if value == nil then
    return failure("juju.output", string.format("'%s' printed output that is not JSON (%s)",
      proc.describe(argv), err.message), argv, r)
  end
  return value
end

local function call_json(args, timeout)
  local r, argv = call_ok(args, timeout)
  if not r then return nil, argv end
  return decode(r, argv)
end

-------------------------------------------------------------------- status

--- status{model = M} -> the parsed `juju status --format json` | nil, err
function M.status(opts)
  local model = need_model(opts, "status")
  return call_json({ "status", "-m", model, "--format", "json" }, opts.timeout or 120)
end

local function unit_number(name)
  return tonumber(name:match("/(%d+)$")) or math.huge
end

--- The status entry of an application, or nil (also for status-errors and odd shapes).
local function app_of(status, app)
  local apps = type(status) == "table" and status.applications
  local a = type(apps) == "table" and apps[app]
  return type(a) == "table" and a or nil
end

local function units_of(a)
  return a and type(a.units) == "table" and a.units or {}
end

--- The unit names of an application in numeric order ({} when there is none).
function M.units(status, app)
  local names = {}
  for name in pairs(units_of(app_of(status, app))) do
    if type(name) == "string" then names[#names + 1] = name end
  end
  table.sort(names, function(x, y) return unit_number(x) < unit_number(y) end)
  return names
end

--- The leader unit of an application, or nil.
function M.leader(status, app)
  for name, unit in pairs(units_of(app_of(status, app))) do
    if type(unit) == "table" and unit.leader == true then return name end
  end
end

--- True when the application and every unit are active, and every agent idle.
local function current(entry, key)
  local st = type(entry) == "table" and entry[key]
  return type(st) == "table" and st.current or nil
end

function M.is_active_idle(status, app)
  local a = app_of(status, app)
  if current(a, "application-status") ~= "active" then return false end
  local units = units_of(a)
  if next(units) == nil then return false end
  for _, unit in pairs(units) do
    if current(unit, "workload-status") ~= "active" or current(unit, "juju-status") ~= "idle" then return false end
  end
  return true
end

-------------------------------------------------------------------- actions

local function as_task(view)
  if type(view) ~= "table" then return nil end
  local function text(v) return type(v) == "string" and v or nil end
  return {
    id = text(view.id), unit = text(view.unit), status = text(view.status),
    results = type(view.results) == "table" and view.results or {},
    message = text(view.message), log = type(view.log) == "table" and view.log or {}, timing = view.timing,
  }
end

--- The task in `juju run --format json` output ({unit: task}), or nil.
function M._read_task(stdout)
  local map = json.decode(stdout)
  if type(map) ~= "table" then return nil end
  local _, view = next(map)
  return as_task(view)
end

-------------------------------------------------------------------- params files

-- `juju run --params` reads a file and nothing else (juju/cmd's FileVar
-- reads stdin only where a command sets a marker, and `juju run` sets none).
-- A strictly confined juju snap sees neither /tmp nor the hidden folders of
-- $HOME: as canonical/jubilant does (_juju.py, _temp_dir), the file goes
-- under ~/snap/juju/common when juju is a snap. It is 0600, named for this
-- process, and removed when the call ends, also when the call is cancelled;
-- one left behind by a ckfb that was killed is removed by the next run.
local PARAMS_PREFIX = "ckfb-params-"

local function on_path(name)
  if name:find("/", 1, true) then return name end
  for dir in (os.getenv("PATH") or ""):gmatch("[^:]+") do
    if sys.filetype(dir .. "/" .. name) == "file" then return dir .. "/" .. name end
  end
end

--- The folder for params files: the snap's own when juju is (or was run as) a snap.
function M.params_dir()
  local home = os.getenv("HOME")
  local path = on_path(M.binary())
  local snap = (path or ""):find("/snap/", 1, true) or sys.filetype((home or "") .. "/snap/juju") == "directory"
  if home and home ~= "" and snap then
    local dir = home .. "/snap/juju/common"
    local ok, err = file.mkdir_p(dir)
    if not ok then return nil, err end
    return dir
  end
  return os.getenv("TMPDIR") or "/tmp"
end

--- Removes the params files of ckfb processes that are gone.
local swept = {}
local function sweep(dir)
  if swept[dir] then return end
  swept[dir] = true
  for _, name in ipairs(sys.listdir(dir) or {}) do
    local pid = tonumber(name:match("^" .. PARAMS_PREFIX:gsub("%-", "%%-") .. "(%d+)%-"))
    if pid and not sys.alive(pid) then os.remove(dir .. "/" .. name) end
  end
end

--- A params file, removed when the variable goes out of scope; false for no
-- params | nil, err.
local function params_file(params)
  if params == nil or next(params) == nil then return false end
  local dir, err = M.params_dir()
  if not dir then return nil, err end
  sweep(dir)
  local path, merr = core_file.mkstemp(dir, PARAMS_PREFIX .. sys.getpid() .. "-")
  if not path then return nil, errors.new("juju.params", "cannot write the params file: " .. merr) end
  local handle = setmetatable({ path = path }, { __close = function(t) os.remove(t.path) end })
  local ok, werr = file.write(path, json.encode(params))  -- JSON is YAML, and juju reads --params as YAML
  if not ok then os.remove(path); return nil, werr end
  return handle
end

--- A --wait value that juju parses as a Go duration (0.5 -> "500ms", 900 -> "900s").
function M.go_duration(seconds)
  if seconds == math.floor(seconds) then return string.format("%ds", seconds) end
  return string.format("%dms", math.ceil(seconds * 1000))
end

local function check_run_args(unit, action, params)
  if type(unit) ~= "string" or not unit:match("^[%w%-]+/[%w]+$") then
    error("juju.run: unit must look like 'app/0' or 'app/leader'", 3)
  end
  if type(action) ~= "string" or action == "" then error("juju.run: action must be a string", 3) end
  if params ~= nil and type(params) ~= "table" then error("juju.run: params must be a table", 3) end
end

local function run_failure(argv, r, wait)
  local stderr = r.stderr
  local task_id = stderr:match("task (%d+) on ")
  local extra = { task_id = task_id }
  if stderr:find("timed out waiting for results", 1, true) then
    return failure("juju.timeout", string.format(
      "no result from '%s' within %gs (task %s keeps running; juju.show_task picks it up)",
      proc.describe(argv), wait, tostring(task_id)), argv, r, extra)
  end
  if stderr:find("(not found)", 1, true) or stderr:find("not defined", 1, true) then
    return failure("juju.not_found", problem(stderr), argv, r, extra)
  end
  return failure("juju.error", string.format("'%s' failed: %s", proc.describe(argv), problem(stderr)), argv, r, extra)
end

--- Juju 3.6 exits 0 with no task when it could not enqueue one (common.go,
-- "Operation N failed to schedule any tasks:"): no such unit or action, or
-- params the action's schema refuses.
local function unscheduled(unit, action, argv, r)
  local why = r.stderr:match("failed to schedule any tasks:%s*\n?([^\n]*)") or problem(r.stderr)
  local missing = why:find("not defined", 1, true) or why:find(" not found", 1, true)
  return failure(missing and "juju.not_found" or "juju.error", string.format("%s %s: %s", unit, action, why), argv, r)
end

--- run(unit, action, params, {model, wait}) -> task | nil, err
-- task = {id, unit, status, results, message, log}; `app/leader` works.
function M.run(unit, action, params, opts)
  check_run_args(unit, action, params)
  local model = need_model(opts, "run")
  local wait = opts.wait or DEFAULT_WAIT
  local args = { "run", "-m", model, unit, action, "--format", "json", "--wait", M.go_duration(wait) }
  local handle <close>, perr = params_file(params)
  if handle == nil then return nil, perr end
  if handle then
    args[#args + 1] = "--params"
    args[#args + 1] = handle.path
  end
  local r, argv = call(args, wait + 60)
  if not r then return nil, argv end
  -- a failed command asked for JSON prints `{}` (juju/cmd handleErrorForMachineFormats)
  local stdout = r.stdout:match("^%s*(.-)%s*$")
  local t = (stdout ~= "" and stdout ~= "{}") and M._read_task(stdout) or nil
  if not t then
    if r.code ~= 0 then return run_failure(argv, r, wait) end
    if stdout == "" or stdout == "{}" then return unscheduled(unit, action, argv, r) end
    return failure("juju.output", "juju run printed no task: " .. problem(r.stdout), argv, r)
  end
  if t.status ~= "completed" or r.code ~= 0 then
    local why = t.message or (t.results.stderr and problem(t.results.stderr)) or t.status
    return failure("juju.action_failed", string.format("%s %s on %s failed: %s", action, unit, t.unit or "?", why),
      argv, r, { task = t, task_id = t.id })
  end
  return t
end

--- show_task(id, {model}) -> task (its status may still be "running") | nil, err
function M.show_task(id, opts)
  local model = need_model(opts, "show_task")
  local view, err = call_json({ "show-task", "-m", model, tostring(id), "--format", "json" }, opts.timeout or 60)
  if not view then return nil, err end
  return as_task(view)
end

-------------------------------------------------------------------- cross-model and scale

local function split_endpoint(spec)
  local app, endpoint = spec:match("^([^:]+):?(.*)$")
  return app, endpoint ~= "" and endpoint or nil
end

--- offer("app:endpoint", name, {model}) -> {changed = bool} | nil, err
-- Looks at the model's offers first: an existing matching offer is left alone.
function M.offer(app_endpoint, name, opts)
  local model = need_model(opts, "offer")
  local app, endpoint = split_endpoint(app_endpoint)
  if not endpoint then error("juju.offer: expected 'app:endpoint', got '" .. tostring(app_endpoint) .. "'", 2) end
  name = name or app
  local status, err = M.status(opts)
  if not status then return nil, err end
  local existing = (status.offers or {})[name]
  if existing and existing.application == app and (existing.endpoints or {})[endpoint] then
    return { changed = false }
  end
  -- offer is not a model command: the model goes in front of the application
  local controller, short = M.split_model(model)
  local args = { "offer", short .. "." .. app .. ":" .. endpoint, name }
  if controller then table.insert(args, 2, "-c"); table.insert(args, 3, controller) end
  local r, failed = call_ok(args, opts.timeout or 120)
  if not r then return nil, failed end
  return { changed = true }
end

--- consume("othermodel.offer", alias, {model}) -> {changed = bool} | nil, err
function M.consume(url, alias, opts)
  local model = need_model(opts, "consume")
  alias = alias or url:match("([^.]+)$")
  local status, err = M.status(opts)
  if not status then return nil, err end
  if (status["application-endpoints"] or {})[alias] then return { changed = false } end
  local r, failed = call_ok({ "consume", "-m", model, url, alias }, opts.timeout or 120)
  if not r then return nil, failed end
  return { changed = true }
end

local function related(status, app, endpoint, other)
  local a = (status.applications or {})[app]
  for ep, rels in pairs(a and a.relations or {}) do
    if endpoint == nil or ep == endpoint then
      for _, rel in ipairs(rels) do
        if rel["related-application"] == other then return true end
      end
    end
  end
  return false
end

--- integrate("app[:endpoint]", "app[:endpoint]", {model}) -> {changed = bool} | nil, err
-- An integration that already exists is success, not an error.
function M.integrate(a, b, opts)
  local model = need_model(opts, "integrate")
  local a_app, a_ep = split_endpoint(a)
  local b_app, b_ep = split_endpoint(b)
  local status, err = M.status(opts)
  if not status then return nil, err end
  if related(status, a_app, a_ep, b_app) or related(status, b_app, b_ep, a_app) then
    return { changed = false }
  end
  local r, argv = call({ "integrate", "-m", model, a, b }, opts.timeout or 120)
  if not r then return nil, argv end
  if r.code == 0 then return { changed = true } end
  if r.stderr:find("(already exists)", 1, true) then return { changed = false } end
  return failure("juju.error", string.format("'%s' failed: %s", proc.describe(argv), problem(r.stderr)), argv, r)
end

--- scale(app, n, {model}) -> true | nil, err
function M.scale(app, n, opts)
  local model = need_model(opts, "scale")
  if math.type(n) ~= "integer" or n < 0 then error("juju.scale: n must be an integer >= 0", 2) end
  local r, err = call_ok({ "scale-application", "-m", model, app, tostring(n) }, opts.timeout or 120)
  if not r then return nil, err end
  return true
end

--- wait(predicate, {model, timeout = 600, delay = 1, successes = 3, error = fn})
-- -> the status that satisfied predicate `successes` times in a row | nil, err
function M.wait(predicate, opts)
  need_model(opts, "wait")
  local timeout, delay, needed = opts.timeout or 600, opts.delay or 1, opts.successes or 3
  local deadline, streak = loop.now() + timeout, 0
  while true do
    local status, err = M.status(opts)
    if not status then return nil, err end
    if opts.error and opts.error(status) then
      return nil, errors.new("juju.wait_error", "the model reached an error state while waiting", { status = status })
    end
    streak = predicate(status) and streak + 1 or 0
    if streak >= needed then return status end
    if loop.now() + delay > deadline then
      local message = string.format("model %s: condition not met within %gs", opts.model, timeout)
      return nil, errors.new("juju.timeout", message, { status = status })
    end
    task.sleep(delay)
  end
end

--- config_get(app, {model}) -> {key = value} | nil, err
function M.config_get(app, opts)
  local model = need_model(opts, "config_get")
  local v, err = call_json({ "config", "-m", model, app, "--format", "json" }, opts.timeout or 60)
  if not v then return nil, err end
  local settings = {}
  for k, s in pairs(v.settings or {}) do settings[k] = s.value end
  return settings
end

--- config_set(app, {key = value}, {model}) -> true | nil, err (values go in a file, not argv)
function M.config_set(app, changes, opts)
  local model = need_model(opts, "config_set")
  if type(changes) ~= "table" then error("juju.config_set: expected a table of changes", 2) end
  local handle <close>, perr = params_file({ [app] = changes })
  if not handle then return nil, perr or errors.new("juju.config", "no changes given") end
  local r, err = call_ok({ "config", "-m", model, app, "--file", handle.path }, opts.timeout or 60)
  if not r then return nil, err end
  return true
end

--- config(app, nil | changes, opts): the old joint form of config_get and config_set.
function M.config(app, changes, opts)
  require("ckfb.log").deprecated("juju.config(app, changes, opts)", "juju.config_get(app, opts) or "
    .. "juju.config_set(app, changes, opts)")
  if changes == nil then return M.config_get(app, opts) end
  return M.config_set(app, changes, opts)
end

--- storage{model} -> {id = {kind, status, attachments, ...}} | nil, err
function M.storage(opts)
  local model = need_model(opts, "storage")
  local r, argv = call_ok({ "storage", "-m", model, "--format", "json" }, opts.timeout or 60)
  if not r then return nil, argv end
  if r.stdout:match("^%s*$") then return {} end  -- no storage: juju prints nothing (storage/list.go)
  local v, derr = decode(r, argv)
  if v == nil then return nil, derr end
  return type(v.storage) == "table" and v.storage or {}
end

--- remove_storage({ids...}, {model}) -> true | nil, err
function M.remove_storage(ids, opts)
  local model = need_model(opts, "remove_storage")
  local args = { "remove-storage", "-m", model }
  for _, id in ipairs(ids) do args[#args + 1] = id end
  local r, err = call_ok(args, opts.timeout or 120)
  if not r then return nil, err end
  return true
end

--- import_filesystem(provider, provider_id, storage_name, {model}) -> the new storage id | nil, err
function M.import_filesystem(provider, provider_id, name, opts)
  local model = need_model(opts, "import_filesystem")
  local r, err = call_ok({ "import-filesystem", "-m", model, provider, provider_id, name, "--force" },
    opts.timeout or 120)
  if not r then return nil, err end
  local id = (r.stdout .. r.stderr):match("imported storage (%S+)")
  if not id then return nil, errors.new("juju.output", "import-filesystem did not say which storage it made") end
  return id
end

--- add_unit(app, {model, attach_storage = id}) -> true | nil, err
function M.add_unit(app, opts)
  local model = need_model(opts, "add_unit")
  local args = { "add-unit", "-m", model, app }
  if opts.attach_storage then
    args[#args + 1] = "--attach-storage"
    args[#args + 1] = opts.attach_storage
  end
  local r, err = call_ok(args, opts.timeout or 120)
  if not r then return nil, err end
  return true
end

--- split_model("controller:model") -> "controller", "model"; split_model("model") -> nil, "model"
-- (juju's -m accepts both: cmd/modelcmd/modelcommand.go SplitModelName)
function M.split_model(id)
  local controller, name = id:match("^([^:]+):(.+)$")
  if controller then return controller, name end
  return nil, id
end

--- models{controller = name | nil} -> {short names...}, the parsed output | nil, err
function M.models(opts)
  opts = opts or {}
  local args = opts.controller and { "models", "-c", opts.controller, "--format", "json" }
    or { "models", "--format", "json" }
  local v, err = call_json(args, opts.timeout or 60)
  if not v then return nil, err end
  local names = {}
  for i, m in ipairs(v.models or {}) do names[i] = m["short-name"] or m.name end
  return names, v
end

--- version() -> "3.6.11-genericlinux-amd64" | nil, err
function M.version(opts)
  local v, err = call_json({ "version", "--format", "json", "--all" }, (opts or {}).timeout or 60)
  if not v then return nil, err end
  return v.version
end

return M
