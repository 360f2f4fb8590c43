-- ckfb.config: a YAML configuration checked against a schema of defaults.
local config = require "ckfb.config"
local json = require "ckfb.json"

local TMP = assert(os.getenv("CKFB_TEST_TMP"))

local function write(text)
  local path = TMP .. "/config_spec.yaml"
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

local DEFAULTS = { model = "kubeflow", wait = 900, targets = json.array(), labels = {}, hooks = json.null }

describe("ckfb.config", function()
  after_each(function() os.remove(TMP .. "/config_spec.yaml") end)

  it("merges a file over the defaults and names an unknown key by its path", function()
    local cfg = assert(config.load(DEFAULTS, { file = write("wait: 60\ntargets: [a, b]\n") }))
    assert.same({ model = "kubeflow", wait = 60, targets = { "a", "b" }, labels = {}, hooks = json.null }, cfg)
    local _, err = config.load(DEFAULTS, { file = write("hooks: {x: 1}\nwiat: 60\n") })
    assert.equal("config", err.code)
    assert.matches("unknown key 'wiat'$", err.message)
  end)

  it("keeps what aliases share shared, so a config alias bomb costs no memory", function()
    local lines = { "items: &t0 [x, x, x, x, x, x, x, x, x, x]", "hooks:" }
    for i = 1, 4 do
      lines[#lines + 1] = string.format("  l%d: &t%d [*t%d, *t%d, *t%d, *t%d, *t%d, *t%d, *t%d, *t%d, *t%d, *t%d]",
        i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1)
    end
    lines[#lines + 1] = "targets: *t4"
    local path = write(table.concat(lines, "\n") .. "\n")
    local schema = { items = json.array(), targets = json.array(), hooks = json.null }
    collectgarbage()
    local before = collectgarbage("count")
    local cfg = assert(config.load(schema, { file = path }))
    assert.equal(cfg.targets[1], cfg.targets[2])  -- a list copied once, not ten times
    assert.equal(cfg.targets[1][1], cfg.targets[2][9])
    assert.is_true(collectgarbage("count") - before < 2048, "well under the 111,111 tables of an expansion")
  end)

  it("takes lists where the schema declares them, and any keys in an empty mapping", function()
    local cfg = assert(config.load(DEFAULTS, { file = write("labels: {team: a, tier: gold}\ntargets: []\n") }))
    assert.same({ team = "a", tier = "gold" }, cfg.labels)      -- a key ending in "s" is not a list
    assert.is_true(json.is_array(cfg.targets))
    local _, err = config.load(DEFAULTS, { file = write("targets: {a: 1}\n") })
    assert.matches("targets must be a list, not a mapping$", err.message)
    _, err = config.load(DEFAULTS, { file = write("labels: [a]\n") })
    assert.matches("labels must be a mapping, not a list$", err.message)
  end)

  it("refuses a file of several YAML documents (found by the fuzzer: the second was taken for an error)", function()
    local _, err = config.load(DEFAULTS, { file = write("wait: 60\n---\nwait: 30\n") })
    assert.equal("config", err.code)
    assert.matches("config_spec.yaml: holds 2 YAML documents; a configuration is one$", err.message)
    assert.same(DEFAULTS.model, assert(config.load(DEFAULTS, { file = write("") })).model)
  end)

  it("reports a self-referencing alias as a config error", function()
    local _, err = config.load(DEFAULTS, { file = write("hooks: &h {again: *h}\n") })
    assert.equal("config", err.code)
    assert.matches("config_spec.yaml: line 1, column %d+: alias %*h is inside the node it names %(a cycle%)$",
      err.message)
  end)
end)
