--- ckfb.aws.sigv4: AWS Signature Version 4, for S3 and STS (botocore/auth.py
-- SigV4Auth, S3SigV4Auth, S3SigV4QueryAuth). ckfb signs itself: Debian's
-- libcurl 7.88 signs the query unsorted, valueless parameters without "=",
-- the path without re-encoding, and cannot presign (host/hash.c).
local hash = require "ckfb.core.hash"

local M = {}

M.UNSIGNED = "UNSIGNED-PAYLOAD"
M.EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

--- AWS URI encoding: unreserved bytes stay, the rest is %XX in upper case;
-- "/" stays too when keep_slash (object keys in paths).
function M.uri_encode(s, keep_slash)
  local pattern = keep_slash and "[^%w%-%._~/]" or "[^%w%-%._~]"
  return (tostring(s):gsub(pattern, function(c) return string.format("%%%02X", c:byte()) end))
end

--- The canonical query string: encoded, sorted, "k=" for valueless parameters.
function M.canonical_query(query)
  local pairs_ = {}
  for k, v in pairs(query or {}) do
    pairs_[#pairs_ + 1] = M.uri_encode(k) .. "=" .. M.uri_encode(v == true and "" or v)
  end
  table.sort(pairs_)
  return table.concat(pairs_, "&")
end

local function clean_header_value(v)
  return (tostring(v):gsub("^%s+", ""):gsub("%s+$", ""):gsub("%s+", " "))
end

-- Signing keys are the same for a day, a region and a service: kept per secret.
local keys = setmetatable({}, { __mode = "k" })

local function signing_key(credentials, date, region, service)
  local id = date .. "/" .. region .. "/" .. service
  keys[credentials] = keys[credentials] or {}
  local cache = keys[credentials]
  if not cache[id] then
    local k = hash.hmac_sha256("AWS4" .. credentials.secret_key, date)
    k = hash.hmac_sha256(k, region)
    k = hash.hmac_sha256(k, service)
    cache[id] = hash.hmac_sha256(k, "aws4_request")
  end
  return cache[id]
end

--- sign{method, host, path (encoded), query, headers, payload_hash, region, service,
-- credentials = {access_key, secret_key, session_token}, now} -> the canonical query
-- string, the headers to send (host excluded: the URL gives it).
function M.sign(r)
  local creds = r.credentials
  local amz_date = os.date("!%Y%m%dT%H%M%SZ", r.now)
  local date = amz_date:sub(1, 8)
  local all = { host = r.host, ["x-amz-date"] = amz_date }
  if r.service == "s3" then all["x-amz-content-sha256"] = r.payload_hash end
  if creds.session_token then all["x-amz-security-token"] = creds.session_token end
  for k, v in pairs(r.headers or {}) do all[k:lower()] = v end
  local names = {}
  for k in pairs(all) do names[#names + 1] = k end
  table.sort(names)
  local lines = {}
  for i, k in ipairs(names) do lines[i] = k .. ":" .. clean_header_value(all[k]) .. "\n" end
  local signed = table.concat(names, ";")
  local cq = M.canonical_query(r.query)
  local canonical = table.concat({ r.method, r.path, cq, table.concat(lines), signed, r.payload_hash }, "\n")
  local scope = date .. "/" .. r.region .. "/" .. r.service .. "/aws4_request"
  local to_sign = table.concat({ "AWS4-HMAC-SHA256", amz_date, scope, hash.sha256_hex(canonical) }, "\n")
  local signature = hash.hmac_sha256(signing_key(creds, date, r.region, r.service), to_sign, "hex")
  local send = {}
  for k, v in pairs(all) do if k ~= "host" then send[k] = v end end
  send.Authorization = string.format("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
    creds.access_key, scope, signed, signature)
  return cq, send
end

--- presign{method, host, path, region, service, credentials, expires, now} -> the query string
-- of a presigned URL (X-Amz-Signature last).
function M.presign(r)
  local creds = r.credentials
  local amz_date = os.date("!%Y%m%dT%H%M%SZ", r.now)
  local date = amz_date:sub(1, 8)
  local scope = date .. "/" .. r.region .. "/" .. r.service .. "/aws4_request"
  local query = {
    ["X-Amz-Algorithm"] = "AWS4-HMAC-SHA256", ["X-Amz-Credential"] = creds.access_key .. "/" .. scope,
    ["X-Amz-Date"] = amz_date, ["X-Amz-Expires"] = tostring(math.tointeger(r.expires or 3600)),
    ["X-Amz-SignedHeaders"] = "host", ["X-Amz-Security-Token"] = creds.session_token,
  }
  local cq = M.canonical_query(query)
  local canonical = table.concat({ r.method or "GET", r.path, cq, "host:" .. r.host .. "\n", "host", M.UNSIGNED },
    "\n")
  local to_sign = table.concat({ "AWS4-HMAC-SHA256", amz_date, scope, hash.sha256_hex(canonical) }, "\n")
  return cq .. "&X-Amz-Signature=" .. hash.hmac_sha256(signing_key(creds, date, r.region, r.service), to_sign, "hex")
end

return M
