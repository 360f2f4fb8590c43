local http = require "ckfb.http"
local json = require "ckfb.json"
local task = require "ckfb.task"
local proc = require "ckfb.proc"
local loop = require "ckfb.core.loop"

local BASE = assert(os.getenv("CKFB_TEST_HTTP"), "tests/run starts the test servers")
local TLS = assert(os.getenv("CKFB_TEST_HTTPS"))
local MTLS = assert(os.getenv("CKFB_TEST_MTLS"))
local CERTS = assert(os.getenv("CKFB_TEST_CERTS"))

local read = require("tests.stdlib.ckfb.helpers.capture").read

local function sha256_of(path)
  return assert(proc.run({ "sha256sum", path })).stdout:match("^%x+")
end

describe("ckfb.http", function()
  it("gets, with lower-case response headers", function()
    local r = assert(http.get(BASE .. "/echo?x=1"))
    assert.equal(200, r.status)
    assert.equal("application/json", r.headers["content-type"])
    local echo = json.decode(r.body)
    assert.equal("GET", echo.method)
    assert.equal("x=1", echo.query)
  end)

  it("sends a method, headers and a body", function()
    local r = assert(http.request { method = "POST", url = BASE .. "/echo",
      headers = { ["X-Ckfb"] = "yes", ["Content-Type"] = "text/plain" }, body = "hello" })
    local echo = json.decode(r.body)
    assert.equal("POST", echo.method)
    assert.equal("yes", echo.headers["x-ckfb"])
    assert.equal("hello", echo.body)
  end)

  it("returns 4xx and 5xx as responses, not errors", function()
    assert.equal(404, assert(http.get(BASE .. "/status/404")).status)
    assert.equal(503, assert(http.get(BASE .. "/status/503")).status)
  end)

  it("joins repeated headers and follows redirects only when asked", function()
    assert.equal("a=1, b=2", assert(http.get(BASE .. "/multi-header")).headers["set-cookie"])
    assert.equal(302, assert(http.get(BASE .. "/redirect")).status)
    assert.equal(200, assert(http.get(BASE .. "/redirect", { follow = true })).status)
  end)

  it("answers HEAD without a body", function()
    local r = assert(http.request { method = "HEAD", url = BASE .. "/bytes/100" })
    assert.equal("100", r.headers["content-length"])
    assert.equal("", r.body)
  end)

  it("streams an upload from a file and a download to a file", function()
    local src = os.getenv("CKFB_TEST_TMP") .. "/upload.bin"
    assert(proc.run({ "sh", "-c", "head -c 3000000 /dev/urandom > " .. src }))
    local r = assert(http.request { method = "PUT", url = BASE .. "/echo", body_file = src })
    local echo = json.decode(r.body)
    assert.equal(3000000, echo.body_length)
    assert.equal(sha256_of(src), echo.body_sha256)
    local dst = os.getenv("CKFB_TEST_TMP") .. "/download.bin"
    local d = assert(http.request { url = BASE .. "/bytes/2000000", sink = dst })
    assert.equal("", d.body)
    assert.equal(2000000, #read(dst))
  end)

  it("reports transport failures as nil, err without the query string", function()
    local r, err = http.get("http://127.0.0.1:1/x?X-Amz-Signature=SECRET")
    assert.is_nil(r)
    assert.equal("http.connect", err.code)
    assert.is_nil(tostring(err):find("SECRET"))
    local _, slow = http.get(BASE .. "/slow/2", { timeout = 0.2 })
    assert.equal("http.timeout", slow.code)
    local _, io_err = http.request { url = BASE .. "/echo", body_file = "/nonexistent/file", method = "PUT" }
    assert.equal("http.io", io_err.code)
  end)

  it("runs requests concurrently with processes on one loop", function()
    local t0 = loop.now()
    local a, b, c = task.all {
      function() return http.get(BASE .. "/slow/0.5").status end,
      function() return http.get(BASE .. "/slow/0.5").status end,
      function() return proc.run({ "sleep", "0.5" }).code end,
    }
    assert.same({ 200, 200, 0 }, { a, b, c })
    assert.is_true(loop.now() - t0 < 1.2)
  end)

  describe("TLS", function()
    it("verifies the server against a CA file or CA data", function()
      assert.equal(200, assert(http.get(TLS .. "/echo", { tls = { ca_file = CERTS .. "/ca.crt" } })).status)
      assert.equal(200, assert(http.get(TLS .. "/echo", { tls = { ca_data = read(CERTS .. "/ca.crt") } })).status)
    end)

    it("refuses an unknown CA unless insecure is asked for", function()
      local _, err = http.get(TLS .. "/echo")
      assert.equal("http.tls", err.code)
      assert.equal(200, assert(http.get(TLS .. "/echo", { tls = { insecure = true } })).status)
    end)

    it("presents a client certificate from files or data", function()
      local ca = CERTS .. "/ca.crt"
      local r, err = http.get(MTLS .. "/echo", { tls = { ca_file = ca } })
      assert.is_true(r == nil or r.status ~= 200, "the server must demand a client certificate")
      assert.is_true(r ~= nil or err ~= nil)
      assert.equal(200, assert(http.get(MTLS .. "/echo", { tls = { ca_file = ca,
        cert = CERTS .. "/client.crt", key = CERTS .. "/client.key" } })).status)
      assert.equal(200, assert(http.get(MTLS .. "/echo", { tls = { ca_file = ca,
        cert_data = read(CERTS .. "/client.crt"), key_data = read(CERTS .. "/client.key") } })).status)
    end)
  end)

  it("raises on misuse", function()
    assert.has_error(function() http.request { } end, "http.request: 'url' is required")
    assert.has_error(function() http.request { url = BASE, bogus = 1 } end, "http.request: unknown field 'bogus'")
    assert.has_error(function() http.request { url = BASE, body = "a", body_file = "b" } end)
    assert.has_error(function() http.request { url = BASE, timeout = "soon" } end)
  end)

  it("raises in C on a field that must be a string but is not (no conversion freed under it)", function()
    local core = require "ckfb.core.http"
    assert.has_error(function() core.request { url = BASE, method = 42 } end,
      "http.request: 'method' must be a string, not a number")
    assert.has_error(function() core.request { url = BASE, proxy = 8080 } end,
      "http.request: 'proxy' must be a string, not a number")
  end)

  it("refuses a header that would smuggle another header or a request (a line break)", function()
    local core = require "ckfb.core.http"
    assert.has_error(function() core.request { url = BASE, headers = { ["X-Note"] = "a\r\nX-Injected: 1" } } end,
      "http: a header value may not hold a line break (or a NUL)")
    assert.has_error(function() core.request { url = BASE, headers = { ["X-Note\nX-Injected"] = "1" } } end,
      "http: a header name may not hold a line break (or a NUL)")
    assert.has_error(function() core.request { url = BASE, headers = { ["X-Note"] = { "a" } } } end,
      "http: a header value must be a string, not a table")
    local r = assert(http.request { url = BASE .. "/echo", headers = { [1] = "numbered", ["X-Count"] = 3 } })
    assert.equal(200, r.status)  -- numbers are written as text; the traversal survives the conversion
  end)

  it("stops an endless body at its in-memory limit with http.too_large", function()
    local r, err = http.request { url = BASE .. "/endless", max_body = 4 * 1024 * 1024, timeout = 30 }
    assert.is_nil(r)
    assert.equal("http.too_large", err.code)
    assert.matches("passed the 4194304%-byte limit", err.message)
    local ok = assert(http.request { url = BASE .. "/bytes/1000", max_body = 1000 })
    assert.equal(1000, #ok.body)
  end)
end)
