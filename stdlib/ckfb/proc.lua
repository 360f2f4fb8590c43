--- ckfb.proc: child processes, never through a shell (host/proc.c).
-- Children inherit no stray descriptors, are reaped (no zombies), run in
-- their own process group, and die with ckfb.
local core = require "ckfb.core.proc"
local sys = require "ckfb.core.sys"
local task = require "ckfb.task"
local errors = require "ckfb.error"
local log = require "ckfb.log"

local M = {}

local function check_argv(argv)
  if type(argv) ~= "table" or #argv == 0 then
    error("proc.run: argv must be a non-empty list of strings", 3)
  end
  for i, a in ipairs(argv) do
    if type(a) ~= "string" then
      error(string.format("proc.run: argv[%d] must be a string, got %s", i, type(a)), 3)
    end
  end
end

-- Credentials a child gets only when opts.env names them: juju, kubectl or a
-- hook's tool never needs ckfb's S3 keys.
M.SECRET_VARIABLES = { "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN" }

--- The child's environment as "NAME=value" strings: ours without the secret variables,
-- plus opts.env (a value of false removes a variable), or only opts.env when clear_env.
local function environment(opts)
  local vars = opts.clear_env and {} or sys.environ()
  for _, name in ipairs(M.SECRET_VARIABLES) do vars[name] = nil end
  for name, value in pairs(opts.env or {}) do
    vars[name] = value or nil
  end
  local list = {}
  for name, value in pairs(vars) do list[#list + 1] = name .. "=" .. tostring(value) end
  table.sort(list)
  return list
end

--- A command line for messages: words quoted when needed.
function M.describe(argv)
  local words = {}
  for i, a in ipairs(argv) do
    words[i] = a:match("^[%w%-%./_=:@,+]+$") and a or ("'" .. a:gsub("'", "'\\''") .. "'")
  end
  return table.concat(words, " ")
end

--- run(argv [, opts]) -> {code, signal, stdout, stderr, duration, truncated} | nil, err
-- opts: stdin (string), env (table; AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN reach
-- the child only through it), clear_env, cwd, timeout (seconds:
-- SIGTERM, then SIGKILL after `grace`, default 5), max_output (bytes kept
-- per stream, default 16 MiB), terminal (the child reads ckfb's stdin and writes to
-- ckfb's stderr directly: a login that prompts). A non-zero exit is a result, not an error;
-- a missing program, a timeout or a cancel is `nil, err`.
function M.run(argv, opts)
  check_argv(argv)
  opts = opts or {}
  log.trace("run: %s", M.describe(argv))
  local op, err = core.spawn(argv, {
    cwd = opts.cwd, env = environment(opts), stdin = opts.stdin, terminal = opts.terminal,
    timeout = opts.timeout, grace = opts.grace, max_output = opts.max_output,
  })
  if not op then return nil, err end
  local result, failure = task.await(op)
  if not result then return nil, failure end
  if result.timed_out then
    return nil, errors.new("proc.timeout",
      string.format("'%s' timed out after %gs", M.describe(argv), opts.timeout), result)
  end
  return result
end

return M
