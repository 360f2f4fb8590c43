-- ckfb stdlib list | stdlib cat MODULE
-- Shows where each module resolves (a file that overrides it, or the copy
-- built into ckfb), and prints a module's source so a site can fork it:
--   ckfb stdlib cat ckfb.s3 > /etc/ckfb/lib/ckfb/s3.lua
local stdlib = require "ckfb.stdlib"

local function fail(fmt, ...)
  io.stderr:write("ckfb stdlib: ", string.format(fmt, ...), "\n")
  os.exit(2)
end

local verb, name = ...
if verb == "list" then
  for _, mod in ipairs(stdlib.modules()) do
    local kind, where = stdlib.resolve(mod)
    print(string.format("%-24s %s", mod, kind == "preload" and "built-in C module" or (kind .. " " .. where)))
  end
elseif verb == "cat" and name then
  local kind, where = stdlib.resolve(name)
  if kind == "file" then
    io.write(assert(require("ckfb.file").read(where)))
  elseif kind == "embedded" then
    io.write(stdlib.source(where))
  elseif kind == "preload" then
    fail("'%s' is a C module: it has no Lua source", name)
  else
    fail("no module named '%s' (see 'ckfb stdlib list')", name)
  end
else
  fail("usage: ckfb stdlib list | stdlib cat MODULE")
end
