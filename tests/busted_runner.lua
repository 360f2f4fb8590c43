-- Runs busted inside ckfb, so specs exercise the real C bindings and the
-- embedded stdlib (neovim's test/busted_runner.lua does the same).
-- Usage: ckfb tests/busted_runner.lua [busted options] SPEC...
require("ckfb.strict").disable(_G)  -- busted and its helpers use globals freely

local code = 0
local real_exit = os.exit
os.exit = function(c) -- luacheck: ignore 122
  code = (c == true or c == nil) and 0 or (c == false and 1 or c)
  error("__busted_exit__", 0)
end
local ok, err = pcall(require("busted.runner"), { standalone = false })
os.exit = real_exit -- luacheck: ignore 122
if not ok and err ~= "__busted_exit__" then error(err, 0) end
return code
