-- Fuzz target: S3's XML answers: parsing, and an error answer turned into one line.
local s3 = require "ckfb.s3"
local client = assert(s3.client { endpoint = "http://127.0.0.1:1", access_key = "AK", secret_key = "SK" })
return function(data)
  s3._xml_parse(data)
  for _, status in ipairs { 403, 404, 503 } do
    local err = client:failure("GET", "bucket", "key", { status = status, body = data, headers = {} })
    assert(not tostring(err):find("\n"), "an error of more than one line")
  end
end
