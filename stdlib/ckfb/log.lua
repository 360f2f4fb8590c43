--- ckfb.log: levelled, timestamped logging to stderr, with every registered
-- secret redacted from everything ckfb prints (log lines, print, errors).
local sys = require "ckfb.core.sys"

local M = {}

local LEVELS = { "error", "warn", "info", "debug", "trace" }
local RANK = {}
for i, name in ipairs(LEVELS) do RANK[name] = i end
local COLOURS = { error = "\27[31m", warn = "\27[33m", info = "\27[32m", debug = "\27[36m", trace = "\27[90m" }

local threshold = RANK.info
local secrets = {}
local sink = io.stderr
local line_format = "text"

--- Colour only on a terminal and never when NO_COLOR is set (no-color.org).
local function use_colour()
  local no_color = os.getenv("NO_COLOR")
  return sys.isatty(2) and (no_color == nil or no_color == "")
end
local colour = use_colour()

--- Sets the level by name ("error" .. "trace") or rank (1 .. 5).
function M.set_level(level)
  local rank = RANK[level] or tonumber(level)
  if not rank then error("unknown log level '" .. tostring(level) .. "'", 2) end
  threshold = math.max(1, math.min(#LEVELS, rank))
end

function M.level()
  return LEVELS[threshold]
end

--- set_format("text" | "json"): json writes each line as one object {time, level, msg}
-- for a log collector (journald, Loki, a Kubernetes node's agent).
function M.set_format(name)
  if name ~= "text" and name ~= "json" then error("unknown log format '" .. tostring(name) .. "' (text or json)", 2) end
  line_format = name
end

function M.format()
  return line_format
end

function M.enabled(level)
  return RANK[level] <= threshold
end

--- Registers a value that must never be printed; returns it unchanged.
-- Values under four bytes are not real credentials and would turn every
-- line into stars, so they are not registered.
function M.secret(value)
  if type(value) == "string" and #value >= 4 and not secrets[value] then
    if #secrets == 0 then sys.undumpable() end  -- no core dump of a memory that holds it
    secrets[value] = true
    secrets[#secrets + 1] = value
    table.sort(secrets, function(a, b) return #a > #b end)  -- longest first
  end
  return value
end

--- Replaces every registered secret in text with "***".
function M.redact(text)
  text = tostring(text)
  for i = 1, #secrets do
    local s = secrets[i]
    local at = text:find(s, 1, true)
    while at do
      text = text:sub(1, at - 1) .. "***" .. text:sub(at + #s)
      at = text:find(s, at + 3, true)
    end
  end
  return text
end

--- text with every control character but newline and tab shown as \xNN: data from juju,
-- Kubernetes or S3 (a set id, a charm's message) must not drive the terminal.
function M.printable(text)
  return (tostring(text):gsub("[%z\1-\8\11-\31\127]", function(c) return string.format("\\x%02X", c:byte()) end))
end

--- Where log lines go (a file handle); tests point it at a temporary file.
function M.set_sink(handle)
  sink = handle or io.stderr
  colour = sink == io.stderr and use_colour()
end

local overlay  -- a live view on the terminal that log lines must go above

--- set_overlay(view | nil): a view with :clear() and :draw() (ckfb.progress); each log line
-- to the terminal erases it, is written, and redraws it below, so the two never overlap.
function M.set_overlay(view)
  overlay = view
end

local function format(fmt, ...)
  if select("#", ...) > 0 then return string.format(fmt, ...) end
  return tostring(fmt)
end

local function write(level, fmt, ...)
  if RANK[level] > threshold then return end
  io.stdout:flush()  -- keeps output and log lines in order on a shared pipe
  local stamp = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local text = M.redact(format(fmt, ...))
  local line
  if line_format == "json" then
    line = require("ckfb.json").encode { time = stamp, level = level, msg = text }
  else
    local tag = level:upper()
    if colour then tag = COLOURS[level] .. tag .. "\27[0m" end
    line = stamp .. " " .. tag .. " " .. M.printable(text)
  end
  local above = overlay and sink == io.stderr and overlay
  if above then above:clear() end
  sink:write(line, "\n")
  sink:flush()
  if above then above:draw() end
end

for _, level in ipairs(LEVELS) do
  M[level] = function(fmt, ...) write(level, fmt, ...) end
end

--- say(level, text): what a command tells the operator on stderr (a summary, an error,
-- the preflight table): the text as it is, whatever the level; in the json format one
-- log object at that level, so a collector reads every line of stderr alike.
function M.say(level, text)
  if line_format == "json" then return write(level, "%s", (text:gsub("\n$", ""))) end
  io.stdout:flush()
  io.stderr:write(M.redact(text), text:sub(-1) == "\n" and "" or "\n")
end

local to_terminal

--- print() with redaction (and, on a terminal, control characters escaped): the CLI
-- installs it as the global print.
function M.print(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  local text = M.redact(table.concat(parts, "\t"))
  if to_terminal == nil then to_terminal = sys.isatty(1) end
  io.stdout:write(to_terminal and M.printable(text) or text, "\n")  -- a pipe gets the bytes as they are
end

local deprecated_seen = {}

--- deprecated(old, new): once per run and per old form, a warning that old still works
-- for this release and new replaces it.
function M.deprecated(old, new)
  if deprecated_seen[old] then return end
  deprecated_seen[old] = true
  M.warn("%s is deprecated (it goes in the next release): use %s", old, new)
end

return M
