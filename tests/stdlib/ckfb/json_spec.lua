local json = require "ckfb.json"
local errors = require "ckfb.error"

describe("ckfb.json", function()
  it("round-trips values, with null distinct from nil", function()
    local v = json.decode('{"a":[1,2.5,"x",null,true],"b":{"c":null}}')
    assert.same({ 1, 2.5, "x", json.null, true }, v.a)
    assert.equal(json.null, v.b.c)
    assert.is_not_nil(v.b.c)
    assert.same(v, json.decode(json.encode(v)))
  end)

  it("sorts keys, so the same table always gives the same text", function()
    assert.equal('{"a":1,"b":2,"c":{"x":true,"y":false}}',
      json.encode({ c = { y = false, x = true }, b = 2, a = 1 }))
  end)

  it("indents for people with pretty", function()
    assert.equal('{\n  "a": [\n    1,\n    2\n  ],\n  "b": {}\n}',
      json.encode({ a = { 1, 2 }, b = {} }, { pretty = true }))
  end)

  it("encodes marked empty arrays as []", function()
    assert.equal('{"items":[]}', json.encode({ items = json.array() }))
  end)

  it("keeps integers and floats apart and floats exact", function()
    assert.equal("[1,1.5,0.1,1e+300]", json.encode({ 1, 1.5, 0.1, 1e300 }))
    assert.equal(0.1, json.decode(json.encode(0.1)))
    assert.equal("math.huge", json.encode(math.huge) == "null" and "math.huge")
  end)

  it("escapes strings", function()
    assert.equal('"a\\"b\\n\\u0001é"', json.encode('a"b\n\1é'))
  end)

  it("returns nil and a json.parse error for malformed input", function()
    local v, err = json.decode('{"a": }')
    assert.is_nil(v)
    assert.is_true(errors.is(err, "json.parse"))
    assert.matches("invalid JSON: .*character 7", err.message)
    assert.is_nil((json.decode("")))
    assert.is_nil((json.decode("[1,2")))
  end)

  it("raises on misuse", function()
    assert.has_error(function() json.decode(nil) end)
    assert.has_error(function() json.encode({ f = print }) end, "json.encode: cannot encode a function")
    local t = {}
    t.self = t
    assert.has_error(function() json.encode(t) end, "json.encode: a table contains itself")
  end)
end)
