-- ckfb help [COMMAND]: the overall help, or a command's own (what COMMAND --help prints).
local cli = require "ckfb.cli"
local command = ...
if not command then
  print(cli.usage())
  return 0
end
for _, c in ipairs(cli.COMMANDS) do
  if c[1] == command and command ~= "help" and command ~= "version" then
    return require("ckfb.cli").run_command(command, { "--help" })
  end
end
if command == "help" or command == "version" then print(cli.usage()) return 0 end
io.stderr:write("ckfb help: no command '", command, "' (try 'ckfb help')\n")
return 2
