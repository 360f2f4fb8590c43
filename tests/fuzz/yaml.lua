-- Fuzz target: YAML decoding (every document), then encoding what came out.
local yaml = require "ckfb.yaml"
return function(data)
  local docs = yaml.decode_all(data)
  for _, doc in ipairs(docs or {}) do
    local ok, err = pcall(yaml.encode, doc)
    -- what encode refuses: a self-referencing alias (&a [*a]), and keys
    -- that print alike (1 and "1")
    local refused = tostring(err):find("nested too deeply", 1, true) or tostring(err):find("print as", 1, true)
    if not ok and not refused then error(err, 0) end
  end
end
