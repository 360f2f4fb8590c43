local yaml = require "ckfb.yaml"
local json = require "ckfb.json"
local errors = require "ckfb.error"

describe("ckfb.yaml", function()
  it("types plain scalars by the YAML 1.2 core schema", function()
    local v = yaml.decode([[
int: 42
neg: -7
hex: 0x1F
oct: 0o17
float: 2.5
exp: 1e3
inf: -.inf
yes_is_a_string: yes
bool: true
null1: ~
null2:
quoted: "42"
single: 'true'
tagged: !!str 12
version: 1.10
]])
    assert.equal(42, v.int); assert.equal("integer", math.type(v.int))
    assert.equal(-7, v.neg)
    assert.equal(31, v.hex)
    assert.equal(15, v.oct)
    assert.equal(2.5, v.float)
    assert.equal(1000.0, v.exp); assert.equal("float", math.type(v.exp))
    assert.equal(-math.huge, v.inf)
    assert.equal("yes", v.yes_is_a_string)
    assert.is_true(v.bool)
    assert.equal(yaml.null, v.null1)
    assert.equal(yaml.null, v.null2)
    assert.equal("42", v.quoted)
    assert.equal("true", v.single)
    assert.equal("12", v.tagged)
    assert.equal(1.1, v.version)
  end)

  it("returns every document of a stream", function()
    local a, b, c = yaml.decode("a: 1\n---\n- 2\n---\nplain\n")
    assert.same({ a = 1 }, a)
    assert.same({ 2 }, b)
    assert.equal("plain", c)
    assert.equal(3, #yaml.decode_all("1\n---\n2\n---\n3\n"))
    assert.equal(0, select("#", yaml.decode("")))
  end)

  it("resolves anchors, aliases and merge keys", function()
    local v = yaml.decode([[
base: &base {model: kubeflow, timeout: 300}
one:
  <<: *base
  timeout: 600
list: [*base, *base]
]])
    assert.same({ model = "kubeflow", timeout = 600 }, v.one)
    assert.equal(v.list[1], v.list[2])  -- an alias is the same table
    assert.equal(v.base, v.list[1])
  end)

  local function bomb(levels)
    local lines = { "a0: &a0 [x, x, x, x, x, x, x, x, x, x]" }
    for i = 1, levels do
      lines[#lines + 1] = string.format("a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]",
        i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1)
    end
    return table.concat(lines, "\n")
  end

  it("shares what aliases name, up to a million nodes they stand for", function()
    local v = assert(yaml.decode(bomb(4)))  -- about 120,000 nodes once expanded
    assert.equal(v.a3, v.a4[1])
  end)

  it("refuses an alias bomb with yaml.alias_limit, before anything walks it", function()
    local v, err = yaml.decode(bomb(20))
    assert.is_nil(v)
    assert.equal("yaml.alias_limit", err.code)
    assert.matches("^line 6, column %d+: aliases stand for more than 1000000 nodes %(at %*a4%)$", err.message)
  end)

  it("refuses an alias inside the node it names (a cycle)", function()
    for _, text in ipairs({ "a: &a [*a]", "a: &a {b: [1, *a]}", "a: &a {<<: *a}" }) do
      local v, err = yaml.decode(text)
      assert.is_nil(v, text)
      assert.equal("yaml.parse", err.code)
      assert.matches("alias %*a is inside the node it names %(a cycle%)", err.message)
    end
    local ok = assert(yaml.decode("a: &a false\nb: *a\nc: &n ~\nd: *n\n"))  -- false and null anchor fine
    assert.is_false(ok.b)
    assert.equal(yaml.null, ok.d)
  end)

  it("never runs code for a tag", function()
    local v = yaml.decode("x: !!python/object/apply:os.system ['touch /tmp/ckfb-pwned']\ny: !custom 3\n")
    assert.same({ "touch /tmp/ckfb-pwned" }, v.x)
    assert.equal(3, v.y)
    assert.is_nil(io.open("/tmp/ckfb-pwned"))
  end)

  it("names line and column in parse errors", function()
    local v, err = yaml.decode("a: 1\nb: [1, 2\nc: 3\n")
    assert.is_nil(v)
    assert.is_true(errors.is(err, "yaml.parse"))
    assert.equal(3, err.line)
    assert.matches("^line 3, column %d+: did not find expected ',' or ']'", err.message)
    local _, alias = yaml.decode("a: *missing\n")
    assert.equal("line 1, column 4: unknown alias *missing", alias.message)
    local _, tab = yaml.decode("a:\n\t- 1\n")
    assert.matches("^line 2, column 1: ", tab.message)
    local _, bad_int = yaml.decode("a: !!int nope\n")
    assert.matches("invalid !!int value", bad_int.message)
    local _, key = yaml.decode("? [1, 2]\n: v\n")
    assert.matches("unsupported mapping key", key.message)
  end)

  it("refers to deep nesting with an error, not a crash", function()
    local _, err = yaml.decode(string.rep("[", 10000) .. string.rep("]", 10000))
    assert.matches("nested too deeply", err.message)
  end)

  it("encodes with sorted keys and quotes what would read back differently", function()
    local text = yaml.encode({ b = { "true", "", "007", 1.0, 3 }, a = json.null, c = "plain", d = "multi\nline\n" })
    assert.equal('a: null\nb:\n- "true"\n- ""\n- "007"\n- 1.0\n- 3\nc: plain\nd: |\n  multi\n  line\n', text)
    assert.same({ b = { "true", "", "007", 1.0, 3 }, a = json.null, c = "plain", d = "multi\nline\n" },
      yaml.decode(text))
  end)

  it("round-trips awkward strings", function()
    local values = { "- dash", "a: b", "#hash", "  lead", "trail  ", "null", "~", "0x10", "é ü", "'q'", '"dq"', "%pct" }
    assert.same(values, yaml.decode(yaml.encode(values)))
  end)

  it("raises on values it cannot encode", function()
    assert.has_error(function() yaml.encode({ f = print }) end)
    local t = {}
    t.self = t
    assert.has_error(function() yaml.encode(t) end)
  end)
end)

describe("ckfb.yaml, from fuzzing", function()
  it("encodes numeric keys", function()
    assert.equal('"1": a\n"2.5": b\nx: c\n', yaml.encode({ [1] = "a", [2.5] = "b", x = "c" }))
  end)

  it("refuses keys that would print alike, instead of losing one", function()
    assert.has_error(function() yaml.encode({ [1] = "a", ["1"] = "b" }) end)
  end)

  it("refuses a NaN mapping key with a line and column", function()
    local v, err = yaml.decode("? .nan\n: 1\n")
    assert.is_nil(v)
    assert.matches("unsupported mapping key %(NaN%)", err.message)
  end)

  it("refuses a merge list holding anything but mappings, with one clear error", function()
    local texts = { "a: {<<: [{b: 1}, 5]}\n", "a: {<<: [{b: 1}, text]}\n", "a: {<<: [{b: 1}, [1, 2], {c: 3}]}\n" }
    for _, text in ipairs(texts) do
      local v, err = yaml.decode(text)
      assert.is_nil(v)
      assert.equal("yaml.parse", err.code)
      assert.matches("a merge key %(<<%) list may hold only mappings", err.message)
    end
  end)
end)
