--- ckfb.s3: S3-compatible object storage (AWS S3, MinIO, Ceph RGW) over
-- ckfb.http, signed with SigV4 by ckfb itself (ckfb.aws.sigv4), as botocore
-- and s3transfer behave:
--   * credentials from ckfb.aws.credentials (botocore's chain: the table, the
--     environment, profiles with roles and web identity, credential_process,
--     container credentials, IMDSv2), refreshed before they expire;
--   * the endpoint from the table, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or the
--     profile's endpoint_url; path-style for a custom endpoint and for a bucket
--     name that is not a DNS label over https (botocore utils.check_dns_name);
--     a wrong region followed once the server names the right one, and kept;
--   * uploads with Content-MD5 (Object Lock buckets demand it), binary/octet-stream
--     by default, multipart parts of at least 5 MiB and at most 10,000 of them;
--   * retries with backoff and jitter of dropped connections, timeouts, 408, 429,
--     500, 502, 503, 504, RequestTimeout and SlowDown, and of a 200 answer that
--     holds an <Error> (botocore handlers.py _handle_200_error);
--   * downloads to a temporary file renamed on success; ranges pinned by If-Match.
--
-- Failures are `nil, err`: err.code is s3.<S3 code in snake case>
-- (s3.no_such_key, s3.no_such_bucket, s3.access_denied,
-- s3.signature_does_not_match, s3.clock_skew, ...) or an http.* code;
-- err.detail has the status, S3's Code, Message and request id, the
-- endpoint and the bucket. Secrets are registered as log secrets.
local hash = require "ckfb.core.hash"
local http = require "ckfb.http"
local task = require "ckfb.task"
local errors = require "ckfb.error"
local log = require "ckfb.log"
local sys = require "ckfb.core.sys"
local xml = require "ckfb.aws.xml"
local sigv4 = require "ckfb.aws.sigv4"
local credentials = require "ckfb.aws.credentials"
local read_file = require("ckfb.file").read
local env = require("ckfb.sys").env

local M = {}

local MIB = 1024 * 1024
M.PART_SIZE = 64 * MIB          -- multipart above this, in parts of this (s3transfer: 8 MiB)
M.MIN_PART = 5 * MIB            -- S3's smallest part (but the last)
M.MAX_PARTS = 10000             -- S3's most parts in one upload
M.MAX_SINGLE = 5 * 1024 * MIB   -- the largest PUT or CopyObject; above it, multipart (UploadPartCopy)
M.MAX_OBJECT = 5 * 1024 * 1024 * MIB
M.DELETE_BATCH = 1000           -- keys per DeleteObjects
M.MAX_ATTEMPTS = 5              -- AWS_MAX_ATTEMPTS overrides (botocore legacy mode: 5)
M.MAX_BACKOFF = 20              -- seconds (botocore standard mode)

local uri_encode = sigv4.uri_encode
M._uri_encode = uri_encode
local xml_parse, child, children, child_text, xml_escape = xml.parse, xml.child, xml.children, xml.text, xml.escape
M._xml_parse = xml_parse

local function url_decode(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-------------------------------------------------------------------- configuration

--- The settings of a client: the table, then the environment, then the profile;
-- cfg.credentials is the ckfb.aws.credentials provider.
function M.load_config(opts)
  opts = opts or {}
  local files = credentials.files()
  local profile = opts.profile or env("AWS_PROFILE") or "default"
  local conf = files.config[profile] or {}
  local cfg = {
    region = opts.region or env("AWS_REGION") or env("AWS_DEFAULT_REGION") or conf.region or "us-east-1",
    endpoint = opts.endpoint or env("AWS_ENDPOINT_URL_S3") or env("AWS_ENDPOINT_URL") or conf.endpoint_url,
    ca_file = opts.ca_file or env("AWS_CA_BUNDLE") or conf.ca_bundle,
    insecure = opts.insecure == true,
    max_attempts = opts.max_attempts or math.tointeger(tonumber(env("AWS_MAX_ATTEMPTS") or conf.max_attempts))
      or M.MAX_ATTEMPTS,
  }
  local provider, err = credentials.resolve { access_key = opts.access_key, secret_key = opts.secret_key,
    session_token = opts.session_token, profile = opts.profile, region = cfg.region, ca_file = cfg.ca_file }
  if not provider then return nil, errors.new("s3.config", err.message, { cause = err.code }) end
  cfg.credentials = provider
  cfg.custom_endpoint = cfg.endpoint ~= nil
  cfg.path_style = opts.path_style
  if cfg.path_style == nil then cfg.path_style = cfg.custom_endpoint end
  cfg.endpoint = (cfg.endpoint or ("https://s3." .. cfg.region .. ".amazonaws.com")):gsub("/+$", "")
  local scheme, host = cfg.endpoint:match("^(https?)://([^/]+)$")
  if not scheme then
    return nil, errors.new("s3.config", "the endpoint must look like https://host[:port], got '" .. cfg.endpoint .. "'")
  end
  cfg.scheme, cfg.host = scheme, host:gsub(scheme == "https" and ":443$" or ":80$", "")
  cfg.proxy = scheme == "http" and M.http_proxy(cfg.host) or nil
  return cfg
end

--- The proxy for a plain-http endpoint: http_proxy, else HTTP_PROXY (which libcurl
-- ignores, against httpoxy), unless no_proxy names the host.
function M.http_proxy(host)
  local proxy = env("http_proxy") or env("HTTP_PROXY")
  if not proxy then return nil end
  local name = host:gsub(":%d+$", ""):lower()
  for entry in (env("no_proxy") or env("NO_PROXY") or ""):gmatch("[^,%s]+") do
    entry = entry:lower():gsub("^%.", "")
    if entry == "*" or name == entry or name:sub(-#entry - 1) == "." .. entry then return nil end
  end
  return proxy
end

-------------------------------------------------------------------- signing

local Client = { __name = "ckfb.s3.client" }
Client.__index = Client

--- True when a bucket can be a host name's first label: lower case, 3 to 63 characters,
-- not an IP address, and no dot over https, where the certificate is a one-label
-- wildcard (botocore utils.py check_dns_name; minio-go pkg/s3utils).
function M.dns_compatible(bucket, scheme)
  if #bucket < 3 or #bucket > 63 or not bucket:match("^[a-z0-9][a-z0-9%.%-]*[a-z0-9]$") then return false end
  if bucket:find("..", 1, true) or bucket:find(".-", 1, true) or bucket:find("-.", 1, true) then return false end
  if bucket:match("^%d+%.%d+%.%d+%.%d+$") then return false end
  return not (scheme == "https" and bucket:find(".", 1, true))
end

--- The region a bucket is signed for: the one its server named, else the configured one.
function Client:region_for(bucket)
  return bucket and self.regions[bucket] or self.cfg.region
end

--- Host and canonical path of an object (or a bucket when key is nil).
function Client:locate(bucket, key)
  local cfg = self.cfg
  if not bucket then return cfg.host, "/" end
  local host = cfg.host
  local region = self:region_for(bucket)
  if not cfg.custom_endpoint and region ~= cfg.region then host = "s3." .. region .. ".amazonaws.com" end
  local path = key and ("/" .. uri_encode(key, true)) or "/"
  if cfg.path_style or not M.dns_compatible(bucket, cfg.scheme) then
    return host, "/" .. uri_encode(bucket) .. (key and path or "")
  end
  return bucket .. "." .. host, path
end

--- The credentials now (refreshed when near their expiry) | nil, err.
function Client:credentials()
  return self.cfg.credentials:get()
end

--- Signs a request; returns the URL and the headers to send | nil, err.
function Client:sign(method, bucket, key, query, headers, payload_hash, now)
  local creds, err = self:credentials()
  if not creds then return nil, err end
  local host, path = self:locate(bucket, key)
  local cq, send = sigv4.sign { method = method, host = host, path = path, query = query, headers = headers,
    payload_hash = payload_hash, region = self:region_for(bucket), service = "s3", credentials = creds, now = now }
  return self.cfg.scheme .. "://" .. host .. path .. (cq ~= "" and ("?" .. cq) or ""), send
end

--- presign(bucket, key, {expires = 3600, method = "GET"}) -> URL | nil, err
function Client:presign(bucket, key, opts)
  opts = opts or {}
  local creds, err = self:credentials()
  if not creds then return nil, err end
  local host, path = self:locate(bucket, key)
  return self.cfg.scheme .. "://" .. host .. path .. "?" .. sigv4.presign { method = opts.method, host = host,
    path = path, region = self:region_for(bucket), service = "s3", credentials = creds, expires = opts.expires,
    now = opts.now }
end

-------------------------------------------------------------------- requests

local function snake(code)
  return (code:gsub("(%l)(%u)", "%1_%2"):gsub("(%u)(%u%l)", "%1_%2"):lower())
end

local STATUS_CODES = { [301] = "PermanentRedirect", [400] = "BadRequest", [403] = "AccessDenied",
  [404] = "NotFound", [409] = "Conflict", [412] = "PreconditionFailed", [416] = "InvalidRange",
  [500] = "InternalError", [503] = "ServiceUnavailable" }

--- The error of a failed answer, in one line, with S3's Code, Message and request id.
function Client:failure(method, bucket, key, response)
  local doc = xml_parse(response.body or "")
  local e = child(doc, "Error")
  local function field(name)  -- the server's text, on one line
    local text = child_text(e, name)
    return text and (text:gsub("[%c%s]+", " "))
  end
  local code = field("Code") or STATUS_CODES[response.status] or ("HTTP" .. response.status)
  if response.status == 404 and not e and not key then code = "NoSuchBucket" end
  if response.status == 404 and not e and key then code = "NoSuchKey" end
  local message = field("Message") or ("HTTP " .. response.status)
  local request_id = field("RequestId") or response.headers["x-amz-request-id"]
  local where = string.format("%s %s (bucket %s%s)", method, self.cfg.endpoint, tostring(bucket),
    key and (", key " .. key) or "")
  local text
  if code == "RequestTimeTooSkewed" then
    text = string.format("%s: the clock of this machine is off from the server's by more than 15 minutes "
      .. "(RequestTimeTooSkewed): fix the time (NTP)", where)
  elseif code == "SignatureDoesNotMatch" then
    local creds = self.cfg.credentials.current
    text = string.format("%s: SignatureDoesNotMatch: check the secret key for access key %s (from %s)",
      where, creds and creds.access_key or "?", self.cfg.credentials.source)
  else
    text = string.format("%s: %s: %s", where, code, message)
  end
  if request_id then text = text .. " (request id " .. request_id .. ")" end
  local err_code = code == "RequestTimeTooSkewed" and "s3.clock_skew" or ("s3." .. snake((code:gsub("%W", ""))))
  return errors.new(err_code, text, { status = response.status, s3_code = code, s3_message = message,
    request_id = request_id, endpoint = self.cfg.endpoint, bucket = bucket, key = key })
end

-- What botocore retries (retryhandler.py, standard mode): transient statuses and codes,
-- and connections that failed or dropped.
local RETRY_STATUS = { [408] = true, [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }
local RETRY_CODES = { RequestTimeout = true, RequestTimeoutException = true, SlowDown = true, Throttling = true,
  ThrottlingException = true, RequestThrottled = true, InternalError = true, PriorRequestNotComplete = true }
local RETRY_TRANSPORT = { ["http.connect"] = true, ["http.timeout"] = true, ["http.dropped"] = true }

local function s3_code(body)
  return body and body:match("<Code>([^<]*)</Code>")
end

local function retryable(response)
  return RETRY_STATUS[response.status] or RETRY_CODES[s3_code(response.body) or ""] or false
end

--- The region a wrong-region answer names (botocore S3RegionRedirectorv2): the
-- x-amz-bucket-region header, else the <Region> of the error.
local function redirect_region(response)
  if response.status ~= 301 and response.status ~= 400 and response.status ~= 307 then return nil end
  local region = response.headers["x-amz-bucket-region"] or (response.body or ""):match("<Region>([%w%-]+)</Region>")
  if region and region:match("^[a-z0-9%-]+$") then return region end
end

--- Full jitter (botocore standard mode): a random wait up to 2^attempt, at most MAX_BACKOFF.
local function backoff(attempt)
  return math.random() * math.min(M.MAX_BACKOFF, 0.1 * 2 ^ attempt)
end

--- One exchange, signed afresh. -> response | nil, err
function Client:send(r, payload)
  local given = r.headers
  if r.body and not (given and (given["Content-Type"] or given["content-type"])) then
    -- else libcurl sends a string body as a form (application/x-www-form-urlencoded), which
    -- a server may parse and consume (moto then sees it empty)
    given = { ["Content-Type"] = "application/octet-stream" }
    for k, v in pairs(r.headers or {}) do given[k] = v end
  end
  local url, headers = self:sign(r.method, r.bucket, r.key, r.query, given, payload)
  if not url then return nil, headers end
  return http.request {
    method = r.method, url = url, headers = headers, body = r.body, body_file = r.body_file,
    body_offset = r.body_offset, body_length = r.body_length, sink = r.sink, sink_offset = r.sink_offset,
    timeout = r.timeout or self.timeout, accept_encoding = false, max_body = r.max_body, path_as_is = true,
    proxy = self.cfg.proxy, tls = { ca_file = self.cfg.ca_file, insecure = self.cfg.insecure or nil },
  }
end

--- True when a body is an S3 error document.
local function error_document(body)
  body = body or ""
  return body:match("^%s*<%?xml.-%?>%s*<Error>") ~= nil or body:match("^%s*<Error>") ~= nil
end

--- request{method, bucket, key, query, headers, body | body_file (+ body_offset,
--  body_length), sink (+ sink_offset), ok = {status = true}, error_in_200 = bool,
--  once = bool (not idempotent: a transport failure is not retried)} -> response | nil, err
function Client:request(r)
  local payload = r.payload_hash or (r.body and hash.sha256_hex(r.body)) or (r.body_file and sigv4.UNSIGNED)
    or sigv4.EMPTY_SHA256
  local attempts = self.cfg.max_attempts
  for attempt = 1, attempts do
    local response, err = self:send(r, payload)
    if response then
      if r.sink and response.status >= 300 then  -- the error document went to the file
        response.body = read_file(r.sink) or ""
      end
      if r.error_in_200 and response.status == 200 and error_document(response.body) then
        response.status = 500   -- botocore handlers.py _handle_200_error: an error, and retried
      end
      if response.status >= 200 and response.status < 300 or (r.ok and r.ok[response.status]) then
        return response
      end
      local region = redirect_region(response)
      if region and r.bucket and not r.redirected and region ~= self:region_for(r.bucket) then
        log.debug("s3: bucket %s is in %s, not %s: signing for it", r.bucket, region, self:region_for(r.bucket))
        self.regions[r.bucket], r.redirected = region, true
        return self:request(r)
      end
      err = self:failure(r.method, r.bucket, r.key, response)
      if not retryable(response) then return nil, err end
    elseif not RETRY_TRANSPORT[err.code] or r.once then
      return nil, err
    end
    if attempt == attempts then return nil, err end
    local delay = backoff(attempt)
    log.debug("s3: %s %s: %s; again in %.2fs", r.method, tostring(r.key or r.bucket), err.message, delay)
    task.sleep(delay)
  end
end

-------------------------------------------------------------------- operations

--- head_bucket(bucket) -> true | nil, err
function Client:head_bucket(bucket)
  local ok, err = self:request { method = "HEAD", bucket = bucket }
  if not ok then return nil, err end
  return true
end

--- The (bucket, opts) of list and pages; the old single table still works, with a warning.
local function list_args(method, bucket, opts)
  if type(bucket) == "table" then
    require("ckfb.log").deprecated("s3:" .. method .. "{bucket = ...}", "s3:" .. method .. "(bucket, opts)")
    bucket, opts = bucket.bucket, bucket
  end
  if type(bucket) ~= "string" then error("s3." .. method .. ": a bucket name is required", 3) end
  return bucket, opts or {}
end

--- pages(bucket, {prefix, delimiter, start_after, max_keys}) -> iterator of
-- (objects, prefixes) per ListObjectsV2 page; a failure yields false, err.
function Client:pages(bucket, opts)
  bucket, opts = list_args("pages", bucket, opts)
  local token, done = nil, false
  return function()
    if done then return nil end
    -- encoding-type=url: S3 sends keys URL-encoded, so that any byte survives XML
    local query = { ["list-type"] = "2", ["encoding-type"] = "url", prefix = opts.prefix, delimiter = opts.delimiter,
      ["max-keys"] = opts.max_keys and tostring(opts.max_keys), ["continuation-token"] = token,
      ["start-after"] = not token and opts.start_after or nil }
    local response, err = self:request { method = "GET", bucket = bucket, query = query }
    if not response then done = true; return false, err end
    local result = child(xml_parse(response.body), "ListBucketResult")
    local decode = child_text(result, "EncodingType") == "url" and url_decode or function(v) return v end
    local objects, prefixes = {}, {}
    for _, c in ipairs(children(result, "Contents")) do
      objects[#objects + 1] = { key = decode(child_text(c, "Key")),
        size = math.tointeger(tonumber(child_text(c, "Size"))),
        etag = (child_text(c, "ETag") or ""):gsub('"', ""), last_modified = child_text(c, "LastModified") }
    end
    for _, p in ipairs(children(result, "CommonPrefixes")) do
      prefixes[#prefixes + 1] = decode(child_text(p, "Prefix"))
    end
    token = child_text(result, "IsTruncated") == "true" and child_text(result, "NextContinuationToken") or nil
    done = token == nil
    return objects, prefixes
  end
end

--- list(bucket, {prefix, delimiter, start_after}) -> {objects = {...}, prefixes = {...}} | nil, err
function Client:list(bucket, opts)
  bucket, opts = list_args("list", bucket, opts)
  local all = { objects = {}, prefixes = {} }
  for objects, prefixes in self:pages(bucket, opts) do
    if not objects then return nil, prefixes end
    table.move(objects, 1, #objects, #all.objects + 1, all.objects)
    table.move(prefixes, 1, #prefixes, #all.prefixes + 1, all.prefixes)
  end
  return all
end

--- stat(bucket, key) -> {size, etag, last_modified, content_type, metadata} | nil, err
function Client:stat(bucket, key)
  local r, err = self:request { method = "HEAD", bucket = bucket, key = key }
  if not r then return nil, err end
  local meta = {}
  for name, value in pairs(r.headers) do
    local m = name:match("^x%-amz%-meta%-(.+)$")
    if m then meta[m] = value end
  end
  return { size = math.tointeger(tonumber(r.headers["content-length"])), etag = (r.headers.etag or ""):gsub('"', ""),
    last_modified = r.headers["last-modified"], content_type = r.headers["content-type"], metadata = meta }
end

--- Runs jobs (functions) with at most `width` at once; the first error is raised.
local function pool(jobs, width)
  local next_job = 0
  local workers = {}
  for w = 1, math.min(width, #jobs) do
    workers[w] = function()
      while true do
        next_job = next_job + 1
        local job = jobs[next_job]
        if not job then return end
        job()
      end
    end
  end
  task.all(workers)
end

local function ranges(size, part)
  local out = {}
  for offset = 0, size - 1, part do out[#out + 1] = { offset, math.min(part, size - offset) } end
  return out
end

--- A name beside path for a download in progress: renamed over path only when whole.
local function temporary(path)
  local f = io.open("/dev/urandom", "rb")
  local salt = f and f:read(6) or tostring(os.time())
  if f then f:close() end
  return path .. ".ckfb-" .. salt:gsub(".", function(c) return string.format("%02x", c:byte()) end) .. ".part"
end

--- Downloads into a temporary file: one GET, or ranges pinned to the object's ETag by If-Match
-- (an object replaced meanwhile fails with 412 rather than mixing two versions) and each
-- checked to be 206 (a server that ignores Range would send the whole object each time).
function Client:download(bucket, key, tmp, info, opts)
  local part = opts.part_size or M.PART_SIZE
  if info.size <= part then
    return self:request { method = "GET", bucket = bucket, key = key, sink = tmp,
      headers = info.etag ~= "" and { ["If-Match"] = '"' .. info.etag .. '"' } or nil }
  end
  local f, oerr = io.open(tmp, "wb")
  if not f then return nil, errors.new("s3.local_file", "cannot write '" .. tmp .. "': " .. oerr) end
  f:close()
  local jobs = {}
  for i, range in ipairs(ranges(info.size, part)) do
    jobs[i] = function()
      local r, rerr = self:request { method = "GET", bucket = bucket, key = key, sink = tmp, sink_offset = range[1],
        headers = { Range = string.format("bytes=%d-%d", range[1], range[1] + range[2] - 1),
          ["If-Match"] = '"' .. info.etag .. '"' } }
      if not r then error(rerr, 0) end
      if r.status ~= 206 then
        error(errors.new("s3.range_ignored", string.format("GET %s (bucket %s, key %s): asked for a range, got "
          .. "HTTP %d", self.cfg.endpoint, bucket, key, r.status)), 0)
      end
    end
  end
  local ok, perr = pcall(pool, jobs, opts.parallel or 4)
  if not ok then return nil, perr end
  return true
end

--- get(bucket, key [, {file = path, part_size, parallel, max_size}]) -> the body | (to a file) true | nil, err
-- A body kept in memory past max_size (64 MiB by default) is http.too_large. To a file, the
-- object goes to a temporary name beside it, renamed over the file only when whole: a
-- failure leaves the file as it was. Big objects come in parallel ranges.
function Client:get(bucket, key, opts)
  opts = opts or {}
  if not opts.file then
    local r, err = self:request { method = "GET", bucket = bucket, key = key, max_body = opts.max_size }
    if not r then return nil, err end
    return r.body
  end
  local info, err = self:stat(bucket, key)
  if not info then return nil, err end
  local tmp = temporary(opts.file)
  local forget = task.cleanup(function() os.remove(tmp) end)
  local ok, derr = self:download(bucket, key, tmp, info, opts)
  local renamed, rerr
  if ok then renamed, rerr = os.rename(tmp, opts.file) end
  if not renamed then os.remove(tmp) end
  forget()
  if not ok then return nil, derr end
  if not renamed then return nil, errors.new("s3.local_file", "cannot write '" .. opts.file .. "': " .. rerr) end
  return true
end

local function put_headers(opts)
  local headers = { ["Content-Type"] = opts.content_type or "binary/octet-stream" }
  for k, v in pairs(opts.metadata or {}) do headers["x-amz-meta-" .. k] = v end
  return headers
end

--- part_size(size [, wanted]) -> the part size of a multipart upload: wanted (64 MiB), grown so
-- that the object needs at most 10,000 parts (s3transfer utils.py ChunksizeAdjuster) |
-- nil, err (a wanted size under 5 MiB, or an object over 5 TiB).
function M.part_size(size, wanted)
  wanted = wanted or M.PART_SIZE
  if wanted < M.MIN_PART then
    return nil, errors.new("s3.part_size", string.format("a part must be at least 5 MiB (S3's minimum), not %d bytes",
      wanted))
  end
  if size > M.MAX_OBJECT then
    return nil, errors.new("s3.too_large", string.format("%d bytes: S3 objects are at most 5 TiB", size))
  end
  local part = wanted
  while (size + part - 1) // part > M.MAX_PARTS do part = part * 2 end
  return part
end

local function md5_header(digest)
  return { ["Content-MD5"] = hash.base64(digest) }
end

--- The Content-MD5 of a range of a file | nil, err: hashed in a worker thread, so the
-- other transfers go on meanwhile.
local function file_md5(path, offset, length)
  local digest, err = task.await(hash.md5_file_op(path, offset, length))
  if not digest then return nil, errors.new("s3.local_file", "cannot read '" .. path .. "': " .. err) end
  return hash.base64(digest)
end

function Client:complete(bucket, key, upload_id, etags)
  local parts = {}
  for i, etag in ipairs(etags) do
    parts[i] = string.format("<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i, xml_escape(etag))
  end
  local body = "<CompleteMultipartUpload>" .. table.concat(parts) .. "</CompleteMultipartUpload>"
  local done, err = self:request { method = "POST", bucket = bucket, key = key, query = { uploadId = upload_id },
    body = body, headers = md5_header(hash.md5(body)), error_in_200 = true }
  if not done then return nil, err end
  return { etag = (child_text(child(xml_parse(done.body), "CompleteMultipartUploadResult"), "ETag") or "")
    :gsub('"', ""), parts = #etags }
end

--- A multipart upload: created, its parts sent by send_part(i, upload_id) -> etag, completed;
-- aborted on any failure or a stop, so that no orphaned parts keep costing storage.
function Client:multipart(bucket, key, count, opts, send_part)
  local start, err = self:request { method = "POST", bucket = bucket, key = key, query = { uploads = true },
    headers = put_headers(opts), once = true }
  if not start then return nil, err end
  local upload_id = child_text(child(xml_parse(start.body), "InitiateMultipartUploadResult"), "UploadId")
  if not upload_id then return nil, errors.new("s3.output", "InitiateMultipartUpload returned no UploadId") end
  local function abort()
    return self:request { method = "DELETE", bucket = bucket, key = key, query = { uploadId = upload_id } }
  end
  local forget = task.cleanup(function()  -- a stopped run (SIGTERM, Ctrl-C) aborts it too
    if abort() then log.warn("aborted the unfinished upload of s3://%s/%s", bucket, key) end
  end)
  local etags, jobs = {}, {}
  for i = 1, count do
    jobs[i] = function()
      local etag, perr = send_part(i, upload_id)
      if not etag then error(perr, 0) end
      etags[i] = etag
    end
  end
  local ok, perr = pcall(pool, jobs, opts.parallel or 4)
  local done
  if ok then done, perr = self:complete(bucket, key, upload_id, etags) end
  if not done then abort() end
  forget()
  if not done then return nil, perr end
  return done
end

--- Uploads a file in parts of part_size, each with its Content-MD5.
function Client:put_parts(bucket, key, file, size, opts)
  local part, err = M.part_size(size, opts.part_size)
  if not part then return nil, err end
  local list = ranges(size, part)
  return self:multipart(bucket, key, #list, opts, function(i, upload_id)
    local range = list[i]
    local md5, merr = file_md5(file, range[1], range[2])
    if not md5 then return nil, merr end
    local r, perr = self:request { method = "PUT", bucket = bucket, key = key,
      query = { partNumber = tostring(i), uploadId = upload_id }, headers = { ["Content-MD5"] = md5 },
      body_file = file, body_offset = range[1], body_length = range[2] }
    if not r then return nil, perr end
    return r.headers.etag
  end)
end

--- put(bucket, key, {body = string} | {file = path}, {content_type, metadata,
--  part_size, parallel}) -> {etag} | nil, err. Files stream from disk; above
-- part_size (64 MiB) they go up as a multipart upload with parallel parts,
-- aborted on failure. Every body goes with its Content-MD5.
function Client:put(bucket, key, source, opts)
  opts = opts or {}
  if type(source) ~= "table" or (source.body == nil) == (source.file == nil) then
    error("s3.put: give {body = string} or {file = path}", 2)
  end
  local headers = put_headers(opts)
  if source.file then
    if sys.filetype(source.file) ~= "file" then
      return nil, errors.new("s3.local_file", "cannot upload '" .. source.file .. "': not a readable file")
    end
    local f, oerr = io.open(source.file, "rb")
    if not f then return nil, errors.new("s3.local_file", "cannot upload '" .. source.file .. "': " .. oerr) end
    local size = f:seek("end")
    f:close()
    if size > (opts.part_size or M.PART_SIZE) then return self:put_parts(bucket, key, source.file, size, opts) end
    local md5, merr = file_md5(source.file, 0, size)
    if not md5 then return nil, merr end
    headers["Content-MD5"] = md5
  else
    headers["Content-MD5"] = hash.base64(hash.md5(source.body))
  end
  local r, err = self:request { method = "PUT", bucket = bucket, key = key, body = source.body,
    body_file = source.file, headers = headers }
  if not r then return nil, err end
  return { etag = (r.headers.etag or ""):gsub('"', "") }
end

--- delete(bucket, key) -> true | nil, err
function Client:delete(bucket, key)
  if type(key) == "table" then
    require("ckfb.log").deprecated("s3:delete(bucket, {keys})", "s3:delete_many(bucket, keys)")
    return self:delete_many(bucket, key)
  end
  if type(key) ~= "string" then error("s3.delete: a key is required", 2) end
  local r, err = self:request { method = "DELETE", bucket = bucket, key = key }
  if not r then return nil, err end
  return true
end

--- One DeleteObjects of at most 1,000 keys, quiet (only failures are listed).
function Client:delete_batch(bucket, keys, result)
  local objects = {}
  for i, key in ipairs(keys) do objects[i] = "<Object><Key>" .. xml_escape(key) .. "</Key></Object>" end
  local body = "<Delete><Quiet>true</Quiet>" .. table.concat(objects) .. "</Delete>"
  local r, err = self:request { method = "POST", bucket = bucket, query = { delete = true }, body = body,
    headers = md5_header(hash.md5(body)) }
  local failed = {}
  if r then
    for _, e in ipairs(children(child(xml_parse(r.body), "DeleteResult"), "Error")) do
      local key = child_text(e, "Key")
      if key then
        failed[key] = true
        result.errors[key] = errors.new("s3." .. snake((child_text(e, "Code") or "Error"):gsub("%W", "")),
          string.format("DELETE %s (bucket %s, key %s): %s: %s", self.cfg.endpoint, bucket, key,
            tostring(child_text(e, "Code")), (tostring(child_text(e, "Message")):gsub("[%c%s]+", " "))))
      end
    end
  end
  for _, key in ipairs(keys) do
    if not r then result.errors[key] = err
    elseif not failed[key] then result.deleted[#result.deleted + 1] = key end
  end
end

--- delete_many(bucket, {key, ...}) -> {deleted = {...}, errors = {key = err}}: DeleteObjects,
-- 1,000 keys a request, each with its Content-MD5.
function Client:delete_many(bucket, keys)
  if type(keys) ~= "table" then error("s3.delete_many: a list of keys is required", 2) end
  local result = { deleted = {}, errors = {} }
  for first = 1, #keys, M.DELETE_BATCH do
    self:delete_batch(bucket, table.move(keys, first, math.min(first + M.DELETE_BATCH - 1, #keys), 1, {}), result)
  end
  table.sort(result.deleted)
  return result
end

local function copy_source(bucket, key)
  return "/" .. uri_encode(bucket) .. "/" .. uri_encode(key, true)
end

--- copy(src_bucket, src_key, dst_bucket, dst_key [, {part_size, parallel, max_single}]) -> {etag} | nil, err:
-- CopyObject, or above 5 GiB (max_single) a multipart copy of UploadPartCopy ranges.
function Client:copy(src_bucket, src_key, dst_bucket, dst_key, opts)
  opts = opts or {}
  local info, err = self:stat(src_bucket, src_key)
  if not info then return nil, err end
  if info.size > (opts.max_single or M.MAX_SINGLE) then
    local part, perr = M.part_size(info.size, opts.part_size)
    if not part then return nil, perr end
    local list = ranges(info.size, part)
    return self:multipart(dst_bucket, dst_key, #list, { content_type = info.content_type, parallel = opts.parallel },
      function(i, upload_id)
        local range = list[i]
        local r, cerr = self:request { method = "PUT", bucket = dst_bucket, key = dst_key, error_in_200 = true,
          query = { partNumber = tostring(i), uploadId = upload_id }, headers = {
            ["x-amz-copy-source"] = copy_source(src_bucket, src_key), ["x-amz-copy-source-if-match"] = info.etag,
            ["x-amz-copy-source-range"] = string.format("bytes=%d-%d", range[1], range[1] + range[2] - 1) } }
        if not r then return nil, cerr end
        return child_text(child(xml_parse(r.body), "CopyPartResult"), "ETag")
      end)
  end
  local r, cerr = self:request { method = "PUT", bucket = dst_bucket, key = dst_key, error_in_200 = true,
    headers = { ["x-amz-copy-source"] = copy_source(src_bucket, src_key) } }
  if not r then return nil, cerr end
  local result = child(xml_parse(r.body), "CopyObjectResult")
  if not result then return nil, self:failure("PUT", dst_bucket, dst_key, r) end
  return { etag = (child_text(result, "ETag") or ""):gsub('"', "") }
end

-------------------------------------------------------------------- clients

--- client{endpoint, region, access_key, secret_key, session_token, profile,
--  path_style, ca_file, insecure, timeout, max_attempts} -> a client | nil, err
function M.client(opts)
  local cfg, err = M.load_config(opts)
  if not cfg then return nil, err end
  return setmetatable({ cfg = cfg, timeout = (opts or {}).timeout or 300, regions = {} }, Client)
end

require("ckfb.client").install(M, { "head_bucket", "list", "pages", "stat", "get", "put", "delete", "delete_many",
  "copy", "presign", "request" }, { pages = true })

return M
