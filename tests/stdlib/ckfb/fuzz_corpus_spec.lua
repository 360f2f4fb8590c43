-- Every seed of the fuzz corpus (tests/fuzz/corpus/<target>), crashes found
-- by fuzzing included once fixed, goes through its fuzz target on every test
-- run: a target returns normally for any input.
local sys = require "ckfb.core.sys"

describe("fuzz corpus", function()
  for _, target in ipairs(sys.listdir("tests/fuzz/corpus")) do
    local run = require("tests.fuzz." .. target)
    local files = sys.listdir("tests/fuzz/corpus/" .. target)
    table.sort(files)
    it(target .. ": " .. #files .. " inputs", function()
      for _, name in ipairs(files) do
        local f = assert(io.open("tests/fuzz/corpus/" .. target .. "/" .. name, "rb"))
        local data = f:read("a")
        f:close()
        local ok, err = pcall(run, data)
        assert(ok, name .. ": " .. tostring(err))
      end
    end)
  end
end)
