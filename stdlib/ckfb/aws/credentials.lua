--- ckfb.aws.credentials: where AWS credentials come from, in botocore's order
-- (botocore/credentials.py create_credential_resolver), each source giving the
-- key, the secret and the token together (never a key from one place and a
-- token from another), refreshed before they expire:
--   1. the configuration's access_key/secret_key (a table given to ckfb.s3);
--   2. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
--      (skipped when a profile is named in the configuration);
--   3. the profile (AWS_PROFILE, else default) in ~/.aws/config and ~/.aws/credentials:
--      role_arn with source_profile or credential_source (STS AssumeRole, signed);
--      role_arn with web_identity_token_file (STS AssumeRoleWithWebIdentity);
--   4. AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE (EKS IRSA);
--   5. the profile's static keys (credentials file, then config file);
--   6. the profile's credential_process;
--   7. container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI
--      (ECS, EKS Pod Identity), with AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE);
--   8. the EC2 instance profile through IMDSv2 (AWS_EC2_METADATA_DISABLED=true skips it).
local http = require "ckfb.http"
local json = require "ckfb.json"
local log = require "ckfb.log"
local errors = require "ckfb.error"
local xml = require "ckfb.aws.xml"
local sigv4 = require "ckfb.aws.sigv4"
local read_file = require("ckfb.file").read
local env = require("ckfb.sys").env

local M = {}

-- botocore refreshes temporary credentials 15 minutes before they expire
-- (_advisory_refresh_timeout) and must have new ones 10 minutes before (mandatory).
M.ADVISORY_REFRESH = 15 * 60
M.MANDATORY_REFRESH = 10 * 60
M.METADATA_TIMEOUT = 1          -- seconds: botocore's metadata_service_timeout
M.IMDS_TOKEN_TTL = 21600        -- seconds: the IMDSv2 session token botocore asks for
M.ECS_HOST = "http://169.254.170.2"
-- The hosts a full container-credentials URI may name over http (botocore ContainerMetadataFetcher).
M.CONTAINER_HOSTS = { ["127.0.0.1"] = true, ["localhost"] = true, ["[::1]"] = true, ["169.254.170.2"] = true,
  ["169.254.170.23"] = true, ["[fd00:ec2::23]"] = true }

local function failure(code, message, detail)
  return nil, errors.new("aws." .. code, message, detail)
end

--- "2026-12-05T08:00:00Z" (fractions allowed) -> seconds since the epoch, or nil.
function M.parse_time(stamp)
  local y, mo, d, h, mi, s = tostring(stamp):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)")
  if not y then return nil end
  local t = os.time { year = y, month = mo, day = d, hour = h, min = mi, sec = s, isdst = false }
  return t - (os.time(os.date("!*t", t)) - t)
end

--- A set of credentials: the three together, their expiry (nil: they do not expire).
local function creds(key, secret, token, expiration, source)
  if type(key) ~= "string" or key == "" or type(secret) ~= "string" or secret == "" then
    return failure("credentials", source .. ": gave no access key and secret key")
  end
  log.secret(secret)
  if token then log.secret(token) end
  return { access_key = key, secret_key = secret, session_token = token, expiration = expiration, source = source }
end

-------------------------------------------------------------------- files

--- Reads an AWS ini file: {section = {key = value}}; "profile x" sections as "x".
function M.read_ini(path)
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

--- The shared files: {config = sections, credentials = sections}.
function M.files()
  local home = env("HOME") or ""
  return { config = M.read_ini(env("AWS_CONFIG_FILE") or (home .. "/.aws/config")),
    credentials = M.read_ini(env("AWS_SHARED_CREDENTIALS_FILE") or (home .. "/.aws/credentials")) }
end

-------------------------------------------------------------------- STS

--- The STS endpoint: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, else the regional one.
local function sts_endpoint(region)
  return (env("AWS_ENDPOINT_URL_STS") or env("AWS_ENDPOINT_URL") or ("https://sts." .. region .. ".amazonaws.com"))
    :gsub("/+$", "")
end

--- Calls an STS action (a form POST, as botocore's query protocol sends it) ->
-- {access_key, ...} from its <Credentials> | nil, err. signer: credentials to sign with,
-- or nil for AssumeRoleWithWebIdentity (botocore sends it unsigned).
local function sts_call(region, action, params, signer, ca_file)
  local form = { "Action=" .. action, "Version=2011-06-15" }
  local names = {}
  for k in pairs(params) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do form[#form + 1] = sigv4.uri_encode(k) .. "=" .. sigv4.uri_encode(params[k]) end
  local body = table.concat(form, "&")
  local url = sts_endpoint(region)
  local scheme, host, path = url:match("^(https?)://([^/]+)(.*)$")
  if not scheme then return failure("config", "the STS endpoint must look like https://host, got '" .. url .. "'") end
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" }
  if signer then
    local _, signed = sigv4.sign { method = "POST", host = host, path = path ~= "" and path or "/", headers = headers,
      payload_hash = require("ckfb.core.hash").sha256_hex(body), region = region, service = "sts",
      credentials = signer }
    headers = signed
    headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
  end
  local r, err = http.request { method = "POST", url = url .. "/", headers = headers, body = body, timeout = 30,
    tls = { ca_file = ca_file } }
  if not r then return nil, err end
  local doc = xml.parse(r.body or "")
  if r.status ~= 200 then
    local code = xml.path_text(doc, "ErrorResponse", "Error", "Code") or ("HTTP " .. r.status)
    local message = xml.path_text(doc, "ErrorResponse", "Error", "Message") or ""
    return failure("sts", string.format("STS %s at %s: %s: %s", action, url, code, (message:gsub("%s+", " "))),
      { status = r.status, code = code })
  end
  local c = xml.child(xml.child(xml.child(doc, action .. "Response"), action .. "Result"), "Credentials")
  return creds(xml.text(c, "AccessKeyId"), xml.text(c, "SecretAccessKey"), xml.text(c, "SessionToken"),
    M.parse_time(xml.text(c, "Expiration")), "sts:" .. action)
end

local function session_name(given)
  return given or ("ckfb-" .. os.time())
end

-------------------------------------------------------------------- sources

local Chain = {}   -- the sources, by name: function(ctx) -> fetch function | nil (not configured)

function Chain.config(ctx)
  local o = ctx.opts
  if o.access_key or o.secret_key then
    return function() return creds(o.access_key, o.secret_key, o.session_token, nil, "configuration") end
  end
end

function Chain.env(ctx)
  if ctx.opts.profile then return nil end  -- botocore: an explicit profile skips the environment
  local key, secret = env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")
  if key or secret then
    return function()
      return creds(key, secret, env("AWS_SESSION_TOKEN") or env("AWS_SECURITY_TOKEN"), nil, "environment")
    end
  end
end

--- The static keys of a profile (credentials file, then config file), or nil.
local function static_keys(ctx, name)
  for _, where in ipairs { "credentials", "config" } do
    local file = ctx.files[where][name]
    if file and file.aws_access_key_id then
      return function()
        return creds(file.aws_access_key_id, file.aws_secret_access_key, file.aws_session_token, nil,
          "profile " .. name)
      end
    end
  end
end

local profile_source  -- forward: a profile's credentials, for source_profile chains

--- role_arn with source_profile or credential_source: STS AssumeRole, signed with those.
function Chain.assume_role(ctx, name, seen)
  name = name or ctx.profile
  local p = ctx.files.config[name] or ctx.files.credentials[name]
  if not (p and p.role_arn) or p.web_identity_token_file then return nil end
  local source
  if p.source_profile then
    seen = seen or {}
    if seen[name] then
      return function() return failure("config", "profile " .. name .. ": a source_profile loop") end
    end
    seen[name] = true
    source = p.source_profile == name and static_keys(ctx, name) or profile_source(ctx, p.source_profile, seen)
  elseif p.credential_source == "Environment" then
    source = Chain.env { opts = {} }
  elseif p.credential_source == "EcsContainer" then
    source = Chain.container(ctx)
  elseif p.credential_source == "Ec2InstanceMetadata" then
    source = Chain.imds(ctx)
  end
  if not source then
    return function() return failure("config", "profile " .. name .. ": role_arn without a usable source_profile or "
      .. "credential_source") end
  end
  return function()
    local base, err = source()
    if not base then return nil, err end
    local params = { RoleArn = p.role_arn, RoleSessionName = session_name(p.role_session_name),
      ExternalId = p.external_id, DurationSeconds = p.duration_seconds }
    return sts_call(ctx.region, "AssumeRole", params, base, ctx.opts.ca_file)
  end
end

local function web_identity(ctx, role_arn, token_file, session)
  return function()
    local token, err = read_file(token_file)  -- read at every refresh: the kubelet rotates it
    if not token then return failure("credentials", "cannot read the web identity token " .. token_file .. ": "
      .. tostring(err)) end
    log.secret((token:gsub("%s+$", "")))
    return sts_call(ctx.region, "AssumeRoleWithWebIdentity", { RoleArn = role_arn,
      RoleSessionName = session_name(session), WebIdentityToken = (token:gsub("%s+$", "")) }, nil, ctx.opts.ca_file)
  end
end

--- role_arn with web_identity_token_file in the profile, else AWS_ROLE_ARN and
-- AWS_WEB_IDENTITY_TOKEN_FILE (EKS IRSA): STS AssumeRoleWithWebIdentity.
function Chain.web_identity(ctx)
  local p = ctx.files.config[ctx.profile] or {}
  if p.role_arn and p.web_identity_token_file then
    return web_identity(ctx, p.role_arn, p.web_identity_token_file, p.role_session_name)
  end
  local arn, file = env("AWS_ROLE_ARN"), env("AWS_WEB_IDENTITY_TOKEN_FILE")
  if arn and file then return web_identity(ctx, arn, file, env("AWS_ROLE_SESSION_NAME")) end
end

function Chain.shared_files(ctx)
  return static_keys(ctx, ctx.profile)
end

--- credential_process: a command printing {Version: 1, AccessKeyId, SecretAccessKey,
-- SessionToken, Expiration} (botocore ProcessProvider; run without a shell, split as shlex).
function Chain.process(ctx)
  local p = ctx.files.config[ctx.profile]
  local command = p and p.credential_process
  if not command then return nil end
  return function()
    local argv = {}
    for word in command:gmatch("%S+") do argv[#argv + 1] = (word:gsub("^\"(.*)\"$", "%1")) end
    local r, err = require("ckfb.proc").run(argv, { timeout = 60 })
    if not r then return nil, err end
    if r.code ~= 0 then
      return failure("credentials", "credential_process " .. argv[1] .. " exited " .. r.code .. ": "
        .. (r.stderr:match("[^\n]*") or ""))
    end
    local v = json.decode(r.stdout)
    if type(v) ~= "table" or v.Version ~= 1 then
      return failure("credentials", "credential_process " .. argv[1] .. " printed no Version 1 JSON")
    end
    return creds(v.AccessKeyId, v.SecretAccessKey, v.SessionToken, M.parse_time(v.Expiration), "credential_process")
  end
end

local function from_json(body, source)
  local v = json.decode(body or "")
  if type(v) ~= "table" then return failure("credentials", source .. " answered no JSON") end
  return creds(v.AccessKeyId, v.SecretAccessKey, v.Token, M.parse_time(v.Expiration), source)
end

--- Container credentials (ECS task roles, EKS Pod Identity).
function Chain.container()
  local relative, full = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), env("AWS_CONTAINER_CREDENTIALS_FULL_URI")
  local url = relative and (M.ECS_HOST .. relative) or full
  if not url then return nil end
  return function()
    local scheme, host = url:match("^(https?)://([^/:]+)")
    if not scheme or (scheme == "http" and not relative and not M.CONTAINER_HOSTS[host]) then
      return failure("config", "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback or "
        .. "container-metadata address")
    end
    local headers = {}
    local token_file, token = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"), env("AWS_CONTAINER_AUTHORIZATION_TOKEN")
    if token_file then token = (read_file(token_file) or ""):gsub("%s+$", "") end
    if token then
      if token:find("[\r\n]") then return failure("config", "the container authorization token holds a newline") end
      log.secret(token)
      headers.Authorization = token
    end
    local r, err = http.request { url = url, headers = headers, timeout = 5 }
    if not r then return nil, err end
    if r.status ~= 200 then
      return failure("credentials", "container credentials at " .. url .. ": HTTP " .. r.status)
    end
    return from_json(r.body, "container credentials")
  end
end

--- The EC2 instance profile through IMDSv2 (a session token first; IMDSv1 where the
-- token call is refused with 403, 404 or 405, as botocore does).
function Chain.imds(ctx)
  if (env("AWS_EC2_METADATA_DISABLED") or ""):lower() == "true" then return nil end
  local base = (env("AWS_EC2_METADATA_SERVICE_ENDPOINT") or (ctx.files.config[ctx.profile] or {})
    .ec2_metadata_service_endpoint or "http://169.254.169.254"):gsub("/+$", "")
  return function()
    local t = M.METADATA_TIMEOUT
    local headers = {}
    local r, err = http.request { method = "PUT", url = base .. "/latest/api/token", timeout = t, connect_timeout = t,
      headers = { ["X-aws-ec2-metadata-token-ttl-seconds"] = tostring(M.IMDS_TOKEN_TTL) } }
    if not r then return nil, err end
    if r.status == 200 then
      headers["X-aws-ec2-metadata-token"] = r.body
    elseif r.status ~= 403 and r.status ~= 404 and r.status ~= 405 then
      return failure("credentials", "the instance metadata service refused a token: HTTP " .. r.status)
    end
    local path = base .. "/latest/meta-data/iam/security-credentials/"
    local roles, rerr = http.request { url = path, headers = headers, timeout = t, connect_timeout = t }
    if not roles then return nil, rerr end
    local role = roles.status == 200 and roles.body:match("^%s*([%w%+=,%.@_%-]+)")
    if not role then return failure("credentials", "no instance profile role (HTTP " .. roles.status .. ")") end
    local c, cerr = http.request { url = path .. role, headers = headers, timeout = t, connect_timeout = t }
    if not c then return nil, cerr end
    if c.status ~= 200 then return failure("credentials", "instance profile " .. role .. ": HTTP " .. c.status) end
    return from_json(c.body, "instance profile")
  end
end

local ORDER = { "config", "env", "assume_role", "web_identity", "shared_files", "process", "container", "imds" }

function profile_source(ctx, name, seen)
  local sub = setmetatable({ profile = name }, { __index = ctx })
  return Chain.assume_role(sub, name, seen) or Chain.web_identity(sub) or static_keys(ctx, name)
    or Chain.process(sub)
end

-------------------------------------------------------------------- the provider

local Provider = {}
Provider.__index = Provider

--- get() -> {access_key, secret_key, session_token} | nil, err: the current credentials,
-- fetched again once they are within ADVISORY_REFRESH of their expiry.
function Provider:get(now)
  now = now or os.time()
  local c = self.current
  if c and (not c.expiration or c.expiration - now > M.ADVISORY_REFRESH) then return c end
  local fresh, err = self.fetch()
  if fresh then
    self.current = fresh
    return fresh
  end
  if c and c.expiration - now > M.MANDATORY_REFRESH then  -- still good for a while: keep them, say so
    log.warn("aws: could not refresh the %s credentials (%s); using the current ones", c.source, err.message)
    return c
  end
  return nil, err
end

--- resolve{access_key, secret_key, session_token, profile, region, ca_file} -> provider | nil, err:
-- the first source of the chain that is configured (it is asked when first needed).
function M.resolve(opts)
  opts = opts or {}
  local files = M.files()
  local profile = opts.profile or env("AWS_PROFILE") or "default"
  local ctx = { opts = opts, files = files, profile = profile,
    region = opts.region or env("AWS_REGION") or env("AWS_DEFAULT_REGION")
      or (files.config[profile] or {}).region or "us-east-1" }
  for _, name in ipairs(ORDER) do
    local fetch = Chain[name](ctx)
    if fetch then
      local provider = setmetatable({ fetch = fetch, source = name }, Provider)
      if name == "config" or name == "env" then  -- no network: a partial setting is an error now
        local c, err = fetch()
        if not c then return nil, err end
        provider.current = c
      end
      return provider
    end
  end
  return failure("no_credentials", "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile "
    .. "in ~/.aws/credentials, IRSA (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE), or access_key and secret_key")
end

return M
