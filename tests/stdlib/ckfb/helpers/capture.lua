-- Spec helpers: files and what ckfb.log writes.
local log = require "ckfb.log"

local M = {}

function M.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

function M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

--- Runs fn with every log line (trace level) going to a file; returns the
-- log text and fn's results.
function M.log(fn)
  local path = os.tmpname()
  local sink = assert(io.open(path, "w+"))
  log.set_sink(sink)
  log.set_level("trace")
  local results = table.pack(pcall(fn))
  log.set_level("info")
  log.set_sink(nil)
  sink:seek("set")
  local text = sink:read("a")
  sink:close()
  os.remove(path)
  assert(results[1], results[2])
  return text, table.unpack(results, 2, results.n)
end

return M
