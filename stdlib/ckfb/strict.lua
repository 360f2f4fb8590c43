--- ckfb.strict: undeclared globals are errors (after Lua's etc/strict.lua
-- and nmap's nselib/strict.lua). A main chunk may still declare a global by
-- assigning it; a function may not, and reading one never declared raises.
local M = {}

--- enable(env [, modules]): modules = {global name = module}: the globals the prompt
-- preloads; reading one loads it (ckfb -e), or the error says which module to require.
function M.enable(env, modules)
  env = env or _G
  local declared = {}
  for k in pairs(env) do declared[k] = true end
  local function caller_is_c()
    local info = debug.getinfo(3, "S")
    return info == nil or info.what == "C"
  end
  setmetatable(env, {
    __newindex = function(t, k, v)
      if not declared[k] then
        local info = debug.getinfo(2, "S")
        if info and info.what ~= "main" and info.what ~= "C" then
          error("assignment to undeclared global '" .. tostring(k) .. "'", 2)
        end
        declared[k] = true
      end
      rawset(t, k, v)
    end,
    __index = function(t, k)
      if declared[k] or caller_is_c() then return nil end
      if modules and modules[k] then
        declared[k] = true
        rawset(t, k, require(modules[k]))
        return rawget(t, k)
      end
      local hint = require("ckfb.repl").GLOBALS[k]
      error("undeclared global '" .. tostring(k) .. "'" .. (hint and string.format(
        " (local %s = require \"%s\"; the prompt and ckfb -e have it ready)", k, hint) or ""), 2)
    end,
  })
  return env
end

function M.disable(env)
  setmetatable(env or _G, nil)
end

return M
