--- ckfb.s3: S3-compatible object storage (AWS S3, MinIO, Ceph RGW) over
-- ckfb.http, signed with SigV4 by ckfb itself (host/hash.c says why).
--
-- Configuration as the AWS tools do it: a table, else the environment
-- (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION or
-- AWS_DEFAULT_REGION, AWS_ENDPOINT_URL, AWS_CA_BUNDLE, AWS_PROFILE), else the
-- profile in ~/.aws/credentials and ~/.aws/config. Path-style addressing for
-- a custom endpoint, virtual-host style for AWS (path_style overrides).
--
-- Failures are `nil, err`: err.code is s3.<S3 code in snake case>
-- (s3.no_such_key, s3.no_such_bucket, s3.access_denied,
-- s3.signature_does_not_match, s3.clock_skew, ...) or an http.* code;
-- err.detail has the status, S3's Code, Message and request id, the
-- endpoint and the bucket. 500, 503 and SlowDown are retried with backoff.
-- The secret key and session token are registered as log secrets.
local core = require "ckfb.core.hash"
local http = require "ckfb.http"
local task = require "ckfb.task"
local errors = require "ckfb.error"
local log = require "ckfb.log"
local sys = require "ckfb.core.sys"
local read_file = require("ckfb.file").read

local M = {}

local UNSIGNED = "UNSIGNED-PAYLOAD"
local EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
local RETRIES = 5
local MIB = 1024 * 1024

-------------------------------------------------------------------- encoding

--- AWS URI encoding: unreserved bytes stay, the rest is %XX in upper case;
-- "/" stays too when keep_slash (object keys in paths).
local function uri_encode(s, keep_slash)
  local pattern = keep_slash and "[^%w%-%._~/]" or "[^%w%-%._~]"
  return (tostring(s):gsub(pattern, function(c) return string.format("%%%02X", c:byte()) end))
end
M._uri_encode = uri_encode

local function url_decode(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- The canonical query string: encoded, sorted, "k=" for valueless parameters.
local function canonical_query(query)
  local pairs_ = {}
  for k, v in pairs(query or {}) do
    pairs_[#pairs_ + 1] = uri_encode(k) .. "=" .. uri_encode(v == true and "" or v)
  end
  table.sort(pairs_)
  return table.concat(pairs_, "&")
end

local ENTITIES = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'" }

--- Replaces XML's entities; a malformed or out-of-range character reference
-- (&#xp1; or &#99999999999;) stays as it was.
local function xml_unescape(s)
  return (s:gsub("&(#?x?)(%w+);", function(kind, name)
    if kind == "" then return ENTITIES[name] end
    if kind == "x" then return nil end
    local code = math.tointeger(tonumber(name, kind == "#x" and 16 or 10))
    if code and code >= 0 and code <= 0x10FFFF then return utf8.char(code) end
  end))
end

local function xml_escape(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;", ["'"] = "&apos;" }))
end

--- Parses the XML documents S3 answers with into {name, text, children}.
-- Linear in the input: a node's text is gathered in pieces and joined once
-- when it closes, and a tag cannot span another '<' (so "<a<a<a..." is not
-- rescanned to the end from every '<').
local function xml_parse(text)
  local root = { name = "#root", children = {}, pieces = {} }
  local stack = { root }
  local function close(node)
    node.text = xml_unescape(table.concat(node.pieces))
    node.pieces = nil
  end
  local pos = 1
  while true do
    local s, e, slash, name, attrs = text:find("<(/?)([%w:_%-%.]+)([^<>]*)>", pos)
    local top = stack[#stack]
    top.pieces[#top.pieces + 1] = text:sub(pos, (s or #text + 1) - 1)
    if not s then break end
    if slash == "/" then
      if #stack > 1 then close(top); stack[#stack] = nil end
    else
      local node = { name = name:gsub("^.*:", ""), children = {}, pieces = {} }
      top.children[#top.children + 1] = node
      if attrs:find("/$") then close(node) else stack[#stack + 1] = node end
    end
    pos = e + 1
  end
  for i = #stack, 1, -1 do close(stack[i]) end
  return root
end
M._xml_parse = xml_parse

local function child(node, name)
  for _, c in ipairs(node and node.children or {}) do
    if c.name == name then return c end
  end
end

local function children(node, name)
  local out = {}
  for _, c in ipairs(node and node.children or {}) do
    if c.name == name then out[#out + 1] = c end
  end
  return out
end

local function child_text(node, name)
  local c = child(node, name)
  return c and c.text
end

-------------------------------------------------------------------- configuration


--- Reads an AWS ini file: {section = {key = value}}.
local function read_ini(path)
  local text = path and read_file(path)
  local sections, current = {}, nil
  for line in (text or ""):gmatch("[^\r\n]+") do
    local section = line:match("^%s*%[%s*(.-)%s*%]%s*$")
    if section then
      current = {}
      sections[section:gsub("^profile%s+", "")] = current
    elseif current and not line:match("^%s*[#;]") then
      local k, v = line:match("^%s*([%w_%-%.]+)%s*=%s*(.-)%s*$")
      if k then current[k] = v end
    end
  end
  return sections
end

local function env(name)
  local v = os.getenv(name)
  if v and v ~= "" then return v end
end

--- The settings of a client: the table, then the environment, then the profile.
function M.load_config(opts)
  opts = opts or {}
  local home = env("HOME") or ""
  local profile_name = opts.profile or env("AWS_PROFILE") or "default"
  local creds = read_ini(env("AWS_SHARED_CREDENTIALS_FILE") or (home .. "/.aws/credentials"))[profile_name] or {}
  local conf = read_ini(env("AWS_CONFIG_FILE") or (home .. "/.aws/config"))[profile_name] or {}
  local function pick(key, env_name, ini_key)
    return opts[key] or env(env_name) or creds[ini_key] or conf[ini_key]
  end
  local cfg = {
    access_key = pick("access_key", "AWS_ACCESS_KEY_ID", "aws_access_key_id"),
    secret_key = pick("secret_key", "AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"),
    session_token = pick("session_token", "AWS_SESSION_TOKEN", "aws_session_token"),
    region = opts.region or env("AWS_REGION") or env("AWS_DEFAULT_REGION") or conf.region or "us-east-1",
    endpoint = pick("endpoint", "AWS_ENDPOINT_URL", "endpoint_url"),
    ca_file = opts.ca_file or env("AWS_CA_BUNDLE") or conf.ca_bundle,
    insecure = opts.insecure == true,
  }
  if not cfg.access_key or not cfg.secret_key then
    return nil, errors.new("s3.config", "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
      .. "a profile in ~/.aws/credentials, or access_key and secret_key")
  end
  log.secret(cfg.secret_key)
  if cfg.session_token then log.secret(cfg.session_token) end
  cfg.path_style = opts.path_style
  if cfg.path_style == nil then cfg.path_style = cfg.endpoint ~= nil end
  cfg.endpoint = (cfg.endpoint or ("https://s3." .. cfg.region .. ".amazonaws.com")):gsub("/+$", "")
  local scheme, host = cfg.endpoint:match("^(https?)://([^/]+)$")
  if not scheme then
    return nil, errors.new("s3.config", "the endpoint must look like https://host[:port], got '" .. cfg.endpoint .. "'")
  end
  cfg.scheme, cfg.host = scheme, host:gsub(scheme == "https" and ":443$" or ":80$", "")
  return cfg
end

-------------------------------------------------------------------- signing

local Client = { __name = "ckfb.s3.client" }
Client.__index = Client

local function hmac(key, data)
  return core.hmac_sha256(key, data)
end

function Client:signing_key(date)
  self.keys = self.keys or {}
  if not self.keys[date] then
    local k = hmac("AWS4" .. self.cfg.secret_key, date)
    k = hmac(k, self.cfg.region)
    k = hmac(k, "s3")
    self.keys[date] = hmac(k, "aws4_request")
  end
  return self.keys[date]
end

--- Host and canonical path of an object (or a bucket when key is nil).
function Client:locate(bucket, key)
  local cfg = self.cfg
  local path = key and ("/" .. uri_encode(key, true)) or "/"
  if not bucket then return cfg.host, "/" end
  if cfg.path_style then
    return cfg.host, "/" .. uri_encode(bucket) .. (key and path or "")
  end
  return bucket .. "." .. cfg.host, path
end

local function clean_header_value(v)
  return (tostring(v):gsub("^%s+", ""):gsub("%s+$", ""):gsub("%s+", " "))
end

--- Signs a request; returns the URL and the headers to send.
function Client:sign(method, bucket, key, query, headers, payload_hash, now)
  local cfg = self.cfg
  local host, path = self:locate(bucket, key)
  local amz_date = os.date("!%Y%m%dT%H%M%SZ", now)
  local date = amz_date:sub(1, 8)
  local all = { host = host, ["x-amz-date"] = amz_date, ["x-amz-content-sha256"] = payload_hash }
  if cfg.session_token then all["x-amz-security-token"] = cfg.session_token end
  for k, v in pairs(headers or {}) do all[k:lower()] = v end
  local names = {}
  for k in pairs(all) do names[#names + 1] = k end
  table.sort(names)
  local lines = {}
  for i, k in ipairs(names) do lines[i] = k .. ":" .. clean_header_value(all[k]) .. "\n" end
  local signed = table.concat(names, ";")
  local cq = canonical_query(query)
  local canonical = table.concat({ method, path, cq, table.concat(lines), signed, payload_hash }, "\n")
  local scope = date .. "/" .. cfg.region .. "/s3/aws4_request"
  local to_sign = table.concat({ "AWS4-HMAC-SHA256", amz_date, scope, core.sha256_hex(canonical) }, "\n")
  local signature = core.hmac_sha256(self:signing_key(date), to_sign, "hex")
  local send = {}
  for k, v in pairs(all) do if k ~= "host" then send[k] = v end end
  send.Authorization = string.format("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
    cfg.access_key, scope, signed, signature)
  return cfg.scheme .. "://" .. host .. path .. (cq ~= "" and ("?" .. cq) or ""), send
end

--- presign(bucket, key, {expires = 3600, method = "GET"}) -> URL
function Client:presign(bucket, key, opts)
  opts = opts or {}
  local cfg = self.cfg
  local host, path = self:locate(bucket, key)
  local amz_date = os.date("!%Y%m%dT%H%M%SZ", opts.now)
  local date = amz_date:sub(1, 8)
  local scope = date .. "/" .. cfg.region .. "/s3/aws4_request"
  local query = {
    ["X-Amz-Algorithm"] = "AWS4-HMAC-SHA256", ["X-Amz-Credential"] = cfg.access_key .. "/" .. scope,
    ["X-Amz-Date"] = amz_date, ["X-Amz-Expires"] = tostring(math.tointeger(opts.expires or 3600)),
    ["X-Amz-SignedHeaders"] = "host", ["X-Amz-Security-Token"] = cfg.session_token,
  }
  local cq = canonical_query(query)
  local canonical = table.concat({ opts.method or "GET", path, cq, "host:" .. host .. "\n", "host", UNSIGNED }, "\n")
  local to_sign = table.concat({ "AWS4-HMAC-SHA256", amz_date, scope, core.sha256_hex(canonical) }, "\n")
  local signature = core.hmac_sha256(self:signing_key(date), to_sign, "hex")
  return cfg.scheme .. "://" .. host .. path .. "?" .. cq .. "&X-Amz-Signature=" .. signature
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
    text = string.format("%s: SignatureDoesNotMatch: check the secret key for access key %s",
      where, self.cfg.access_key)
  else
    text = string.format("%s: %s: %s", where, code, message)
  end
  if request_id then text = text .. " (request id " .. request_id .. ")" end
  local err_code = code == "RequestTimeTooSkewed" and "s3.clock_skew" or ("s3." .. snake((code:gsub("%W", ""))))
  return errors.new(err_code, text, { status = response.status, s3_code = code, s3_message = message,
    request_id = request_id, endpoint = self.cfg.endpoint, bucket = bucket, key = key })
end

local function retryable(response)
  if response.status == 500 or response.status == 503 then return true end
  return response.status == 400 and (response.body or ""):find("<Code>SlowDown</Code>", 1, true) ~= nil
end

--- request{method, bucket, key, query, headers, body | body_file (+ body_offset,
--  body_length), sink (+ sink_offset), ok = {status = true}} -> response | nil, err
function Client:request(r)
  local payload = r.payload_hash or (r.body and core.sha256_hex(r.body)) or (r.body_file and UNSIGNED)
    or EMPTY_SHA256
  for attempt = 1, RETRIES do
    local url, headers = self:sign(r.method, r.bucket, r.key, r.query, r.headers, payload)
    local response, err = http.request {
      method = r.method, url = url, headers = headers, body = r.body, body_file = r.body_file,
      body_offset = r.body_offset, body_length = r.body_length, sink = r.sink, sink_offset = r.sink_offset,
      timeout = r.timeout or self.timeout, accept_encoding = false, max_body = r.max_body,
      tls = { ca_file = self.cfg.ca_file, insecure = self.cfg.insecure or nil },
    }
    if not response then return nil, err end
    if response.status >= 200 and response.status < 300 or (r.ok and r.ok[response.status]) then
      return response
    end
    if r.sink and response.status >= 300 then  -- the error document went to the file
      response.body = read_file(r.sink) or ""
    end
    if not retryable(response) or attempt == RETRIES then
      return nil, self:failure(r.method, r.bucket, r.key, response)
    end
    local delay = math.min(0.2 * 2 ^ (attempt - 1), 5)
    log.debug("s3: %s %s answered %d, retrying in %gs", r.method, tostring(r.key or r.bucket), response.status, delay)
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

--- get(bucket, key [, {file = path, part_size, parallel, max_size}]) -> the body | (to a file) true | nil, err
-- A body kept in memory past max_size (64 MiB by default) is http.too_large.
-- Big objects download to a file in parallel ranges.
function Client:get(bucket, key, opts)
  opts = opts or {}
  if not opts.file then
    local r, err = self:request { method = "GET", bucket = bucket, key = key, max_body = opts.max_size }
    if not r then return nil, err end
    return r.body
  end
  local part = opts.part_size or 64 * MIB
  local info, err = self:stat(bucket, key)
  if not info then return nil, err end
  if info.size <= part then
    local r, gerr = self:request { method = "GET", bucket = bucket, key = key, sink = opts.file }
    if not r then return nil, gerr end
    return true
  end
  local f, oerr = io.open(opts.file, "wb")
  if not f then return nil, errors.new("s3.local_file", "cannot write '" .. opts.file .. "': " .. oerr) end
  f:close()
  local jobs = {}
  for i, range in ipairs(ranges(info.size, part)) do
    jobs[i] = function()
      local r, rerr = self:request { method = "GET", bucket = bucket, key = key, sink = opts.file,
        sink_offset = range[1], headers = { Range = string.format("bytes=%d-%d", range[1], range[1] + range[2] - 1) } }
      if not r then error(rerr, 0) end
    end
  end
  local ok, perr = pcall(pool, jobs, opts.parallel or 4)
  if not ok then return nil, perr end
  return true
end

local function put_headers(opts)
  local headers = { ["Content-Type"] = opts.content_type }
  for k, v in pairs(opts.metadata or {}) do headers["x-amz-meta-" .. k] = v end
  return headers
end

function Client:multipart(bucket, key, file, size, opts)
  local start, err = self:request { method = "POST", bucket = bucket, key = key, query = { uploads = true },
    headers = put_headers(opts) }
  if not start then return nil, err end
  local upload_id = child_text(child(xml_parse(start.body), "InitiateMultipartUploadResult"), "UploadId")
  if not upload_id then return nil, errors.new("s3.output", "InitiateMultipartUpload returned no UploadId") end
  local function abort()  -- so that no orphaned parts keep costing storage
    return self:request { method = "DELETE", bucket = bucket, key = key, query = { uploadId = upload_id } }
  end
  local forget = task.cleanup(function()  -- a stopped run (SIGTERM, Ctrl-C) aborts it too
    if abort() then log.warn("aborted the unfinished upload of s3://%s/%s", bucket, key) end
  end)
  local etags, jobs = {}, {}
  for i, range in ipairs(ranges(size, opts.part_size or 64 * MIB)) do
    jobs[i] = function()
      local r, perr = self:request { method = "PUT", bucket = bucket, key = key,
        query = { partNumber = tostring(i), uploadId = upload_id },
        body_file = file, body_offset = range[1], body_length = range[2] }
      if not r then error(perr, 0) end
      etags[i] = r.headers.etag
    end
  end
  local ok, perr = pcall(pool, jobs, opts.parallel or 4)
  if ok then
    local parts = {}
    for i, etag in ipairs(etags) do
      parts[i] = string.format("<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i, xml_escape(etag))
    end
    local body = "<CompleteMultipartUpload>" .. table.concat(parts) .. "</CompleteMultipartUpload>"
    local done, cerr = self:request { method = "POST", bucket = bucket, key = key, query = { uploadId = upload_id },
      body = body }
    if done then
      forget()
      return { etag = (child_text(child(xml_parse(done.body), "CompleteMultipartUploadResult"), "ETag") or "")
        :gsub('"', ""), parts = #etags }
    end
    perr = cerr
  end
  abort()
  forget()
  return nil, perr
end

--- put(bucket, key, {body = string} | {file = path}, {content_type, metadata,
--  part_size, parallel}) -> {etag} | nil, err. Files stream from disk; above
-- part_size (64 MiB) they go up as a multipart upload with parallel parts,
-- aborted on failure.
function Client:put(bucket, key, source, opts)
  opts = opts or {}
  if type(source) ~= "table" or (source.body == nil) == (source.file == nil) then
    error("s3.put: give {body = string} or {file = path}", 2)
  end
  if source.file then
    local kind = sys.filetype(source.file)
    if kind ~= "file" then
      return nil, errors.new("s3.local_file", "cannot upload '" .. source.file .. "': not a readable file")
    end
    local f, oerr = io.open(source.file, "rb")
    if not f then return nil, errors.new("s3.local_file", "cannot upload '" .. source.file .. "': " .. oerr) end
    local size = f:seek("end")
    f:close()
    if size > (opts.part_size or 64 * MIB) then return self:multipart(bucket, key, source.file, size, opts) end
  end
  local r, err = self:request { method = "PUT", bucket = bucket, key = key, body = source.body,
    body_file = source.file, headers = put_headers(opts) }
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

--- delete_many(bucket, {key, ...}) -> {deleted = {...}, errors = {key = err}}: eight
-- DELETEs at a time (DeleteObjects would need Content-MD5).
function Client:delete_many(bucket, keys)
  if type(keys) ~= "table" then error("s3.delete_many: a list of keys is required", 2) end
  local result, jobs = { deleted = {}, errors = {} }, {}
  for i, key in ipairs(keys) do
    jobs[i] = function()
      local ok, err = self:delete(bucket, key)
      if ok then result.deleted[#result.deleted + 1] = key else result.errors[key] = err end
    end
  end
  pool(jobs, 8)
  table.sort(result.deleted)
  return result
end

--- copy(src_bucket, src_key, dst_bucket, dst_key) -> {etag} | nil, err
function Client:copy(src_bucket, src_key, dst_bucket, dst_key)
  local r, err = self:request { method = "PUT", bucket = dst_bucket, key = dst_key,
    headers = { ["x-amz-copy-source"] = "/" .. uri_encode(src_bucket) .. "/" .. uri_encode(src_key, true) } }
  if not r then return nil, err end
  local result = child(xml_parse(r.body), "CopyObjectResult")
  if not result then return nil, self:failure("PUT", dst_bucket, dst_key, r) end
  return { etag = (child_text(result, "ETag") or ""):gsub('"', "") }
end

-------------------------------------------------------------------- clients

--- client{endpoint, region, access_key, secret_key, session_token, profile,
--  path_style, ca_file, insecure, timeout} -> a client | nil, err
function M.client(opts)
  local cfg, err = M.load_config(opts)
  if not cfg then return nil, err end
  return setmetatable({ cfg = cfg, timeout = (opts or {}).timeout or 300 }, Client)
end

require("ckfb.client").install(M, { "head_bucket", "list", "pages", "stat", "get", "put", "delete", "copy",
  "presign", "request" }, { pages = true })

return M
