local repl = require "ckfb.repl"
local pretty = require "ckfb.pretty"
local json = require "ckfb.json"
local log = require "ckfb.log"

describe("ckfb.repl", function()
  it("completes globals, fields and methods", function()
    local env = { juju = { status = 1, run = 2, show_task = 3 }, jam = true,
      obj = setmetatable({}, { __index = { close = function() end, size = 5 } }) }
    assert.same({ "juju.run" }, repl.complete("juju.r", env))
    assert.same({ "jam", "json", "juju" }, repl.complete("j", env))
    assert.same({ "obj:close" }, repl.complete("obj:", env))
    assert.same({}, repl.complete("nothing.here", env))
  end)

  it("compiles expressions, =expr, statements, and knows an incomplete chunk", function()
    assert.equal(3, repl.compile("1 + 2", {})())
    assert.equal(4, repl.compile("= 2 * 2", {})())
    assert.is_function((repl.compile("x = 1", {})))
    local chunk, why = repl.compile("function f()", {})
    assert.is_nil(chunk)
    assert.equal("incomplete", why)
    local _, err = repl.compile("x = = 1", {})
    assert.matches("unexpected symbol", err)
  end)
end)

describe("ckfb.pretty", function()
  it("indents, sorts keys, shows null, and cuts long lists with a count", function()
    assert.equal('{\n  a = 1,\n  b = {\n    "x",\n  },\n  c = null,\n}',
      pretty.format({ b = { "x" }, a = 1, c = json.null }))
    local long = {}
    for i = 1, 40 do long[i] = i end
    assert.matches("%-%- 10 more\n}$", pretty.format(long))
    assert.equal("1\n\"two\"", pretty.format(1, "two"))
  end)

  it("never prints a registered secret", function()
    log.secret("pretty-secret-123")
    assert.equal('{\n  token = "***",\n}', pretty.format({ token = "pretty-secret-123" }))
  end)
end)
