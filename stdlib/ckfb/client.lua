--- ckfb.client: the module-level calls of a binding (k8s.list, s3.get, ...)
-- on a default client made on first use, as the bindings document it.
local M = {}

--- Adds module.default() and module.<method>(...) for each method name:
-- each calls the method on module.client() (made once, with no options).
-- When the default client cannot be made, a call returns nil, err (an
-- iterator method yields false, err once).
function M.install(module, methods, iterators)
  local default
  function module.default()
    if not default then
      local c, err = module.client()
      if not c then return nil, err end
      default = c
    end
    return default
  end
  for _, method in ipairs(methods) do
    module[method] = function(...)
      local c, err = module.default()
      if c then return c[method](c, ...) end
      if not (iterators and iterators[method]) then return nil, err end
      local told = false
      return function()
        if told then return nil end
        told = true
        return false, err
      end
    end
  end
end

return M
