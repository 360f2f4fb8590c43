--- ckfb.options: command-line options declared as data, so a script's
-- --help is generated from the same table that parses its arguments.
--
--   local spec = {
--     usage = "ckfb backup [options]", summary = "...",
--     { "--config", "FILE", "read the configuration from FILE" },
--     { "--dry-run", nil, "print the plan and stop" },
--   }
--   local opts, rest = options.parse(spec, { ... })  -- opts.config, opts.dry_run
--
-- A usage error raises a ckfb.error with code "usage" (the scripts map it
-- to exit code 2). An option may name the key it sets (`key = "format"`), so
-- -o and --format are one option, as in kubectl.
local errors = require "ckfb.error"

local M = {}

local function key_of(o)
  return o.key or (o[1]:gsub("^%-+", ""):gsub("%-", "_"))
end

--- The output options every command takes: --format (-o) table|json|yaml, and --json
-- for --format json.
M.FORMATS = { table = true, json = true, yaml = true }
M.FORMAT = { "--format", "FORMAT", "print the result as a table (the default), json or yaml" }
M.FORMAT_SHORT = { "-o", "FORMAT", "the same as --format", key = "format" }
M.JSON = { "--json", nil, "the same as --format json" }

--- The format asked for: --format wins over --json; checked against M.FORMATS.
local function resolve_format(opts)
  if opts.json and opts.format and opts.format ~= "json" then
    errors.raise("usage", "--json and --format " .. opts.format .. " disagree: give one")
  end
  opts.format = opts.format or (opts.json and "json") or "table"
  if not M.FORMATS[opts.format] then
    errors.raise("usage", "unknown format '" .. opts.format .. "' (table, json or yaml)")
  end
  opts.json = opts.format == "json"
end

--- parse(spec, args) -> opts, positional arguments
function M.parse(spec, args)
  local by_flag = {}
  for _, o in ipairs(spec) do by_flag[o[1]] = o end
  local opts, rest = {}, {}
  local i = 1
  while args[i] do
    local a = args[i]
    local flag, inline = a:match("^(%-%-[%w%-]+)=(.*)$")
    flag = flag or a
    local o = by_flag[flag]
    if a == "-h" or a == "--help" then
      opts.help = true
    elseif a == "--options-json" then  -- for the man pages and completions (tools/docs.lua)
      print(M.describe(spec))
      os.exit(0)
    elseif o and o[2] then
      local value = inline or args[i + 1]
      if value == nil then errors.raise("usage", "option '" .. flag .. "' needs a value (" .. o[2] .. ")") end
      if not inline then i = i + 1 end
      opts[key_of(o)] = value
    elseif o and not inline then
      opts[key_of(o)] = true
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      errors.raise("usage", "unknown option '" .. a .. "'")
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  if by_flag["--format"] then resolve_format(opts) end
  return opts, rest
end

--- output(opts, value[, as_table]): prints value in the format asked for; the table is
-- as_table(value)'s to print, for people (nothing without it).
function M.output(opts, value, as_table)
  local format = opts.format or (opts.json and "json") or "table"
  if format == "json" then
    print(require("ckfb.json").encode(value, { pretty = true }))
  elseif format == "yaml" then
    local text = require("ckfb.yaml").encode(value)
    io.stdout:write(text, text:sub(-1) == "\n" and "" or "\n")
  elseif as_table then
    as_table(value)
  end
end

--- describe(spec) -> the options as JSON: {usage, summary, options = [{flag, value, text}], epilog}
function M.describe(spec)
  local json = require "ckfb.json"
  local list = json.array()
  for _, o in ipairs(spec) do list[#list + 1] = { flag = o[1], value = o[2], text = o[3] } end
  return json.encode { usage = spec.usage, summary = spec.summary, options = list,
    epilog = json.array(spec.epilog or {}) }
end

--- fail(spec, code, message[, hint]) -> code, once "ckfb CMD: message" is on stderr
-- (CMD from spec.usage); with hint, "(try 'ckfb CMD --help')" follows.
function M.fail(spec, code, message, hint)
  local command = spec.usage:match("^ckfb %S+") or "ckfb"
  local line = command .. ": " .. tostring(message) .. (hint and (" (try '" .. command .. " --help')") or "")
  require("ckfb.log").say("error", line)
  return code
end

--- help(spec) -> the text of --help
function M.help(spec)
  local lines = { "usage: " .. spec.usage, "" }
  if spec.summary then lines[#lines + 1] = spec.summary; lines[#lines + 1] = "" end
  lines[#lines + 1] = "options:"
  for _, o in ipairs(spec) do
    local left = o[1] .. (o[2] and (" " .. o[2]) or "")
    lines[#lines + 1] = string.format("  %-22s %s", left, o[3])
  end
  lines[#lines + 1] = string.format("  %-22s %s", "-h, --help", "print this help")
  for _, extra in ipairs(spec.epilog or {}) do lines[#lines + 1] = extra end
  return table.concat(lines, "\n")
end

return M
