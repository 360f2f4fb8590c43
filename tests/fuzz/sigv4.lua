-- Fuzz target: SigV4 canonicalisation: any bytes as key, query and header values.
local s3 = require "ckfb.s3"
local client = assert(s3.client { endpoint = "http://127.0.0.1:9000", access_key = "AK", secret_key = "SK" })
local vhost = assert(s3.client { access_key = "AK", secret_key = "SK", region = "eu-west-1" })
return function(data)
  local key, name, value = data:match("^([^\0]*)%z?([^\0]*)%z?(.*)$")
  for _, c in ipairs { client, vhost } do
    local url, headers = c:sign("GET", "bucket", key, { [name ~= "" and name or "q"] = value, flag = true },
      { ["x-amz-meta-note"] = value }, "UNSIGNED-PAYLOAD", 0)
    assert(url:find("^https?://[^%s]*$"), "a URL with spaces: " .. url)
    assert(headers.Authorization:find("Signature=%x+$"))
    assert(c:presign("bucket", key, { now = 0 }):find("X%-Amz%-Signature=%x+$"))
  end
end
