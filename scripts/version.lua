-- ckfb version: the version (semver), the commit it was built from, and Lua's.
local options = require "ckfb.options"
local sys = require "ckfb.sys"

local OPTIONS = {
  usage = "ckfb version [options]",
  summary = "Prints ckfb's version, the commit it was built from and the Lua it embeds.",
  options.FORMAT, options.FORMAT_SHORT, options.JSON,
}

local ok, opts = pcall(options.parse, OPTIONS, { ... })
if not ok then return options.fail(OPTIONS, 2, opts.message or opts) end
if opts.help then print(options.help(OPTIONS)); return 0 end
options.output(opts, { version = sys.version, commit = sys.commit, lua = _VERSION },
  function() print(require("ckfb.cli").version_line()) end)
return 0
