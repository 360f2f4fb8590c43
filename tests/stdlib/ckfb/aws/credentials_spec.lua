-- ckfb.aws.credentials: botocore's chain, each source against a stand-in of what
-- it asks (moto's STS, tests/servers/aws_metadata.py for IMDSv2 and container
-- credentials), in a child ckfb with only the environment the test gives.
local proc = require "ckfb.proc"
local json = require "ckfb.json"
local file = require "ckfb.file"
local http = require "ckfb.http"

local CKFB = assert(os.getenv("CKFB"))
local TMP = assert(os.getenv("CKFB_TEST_TMP"))
local META = assert(os.getenv("CKFB_TEST_AWS_METADATA"), "tests/run starts the metadata stand-in")
local MOTO = os.getenv("CKFB_TEST_MOTO")
local HOME = TMP .. "/aws-home"

-- What the child prints: the source, the key's first 8 characters, whether a token and an expiry came.
local SHOW = [[
local p, err = require("ckfb.aws.credentials").resolve{}
local c = p and p:get()
if p and not c then c, err = p:get() end
if not c then print("error", err.code, err.message) return end
print(p.source, c.access_key:sub(1, 8), c.session_token ~= nil, c.expiration ~= nil)
]]

local function child(env, code)
  local e = { HOME = HOME, PATH = os.getenv("PATH"), AWS_EC2_METADATA_DISABLED = "true" }
  for k, v in pairs(env) do e[k] = v end
  local r = assert(proc.run({ CKFB, "-e", code or SHOW }, { env = e, clear_env = true, timeout = 30 }))
  assert(r.code == 0, r.stderr)
  return r.stdout
end

local function write(path, text)
  assert(file.write(path, text))
  return path
end

local function control(body)
  assert(http.request { method = "POST", url = META .. "/__control", body = json.encode(body) })
end

local function requests()
  return json.decode(assert(http.get(META .. "/__requests")).body)
end

describe("ckfb.aws.credentials", function()
  before_each(function()
    proc.run({ "rm", "-rf", HOME })
    assert(file.private_dir(HOME .. "/.aws"))
    control { lifetime = 3600, token = "container-secret" }
  end)
  after_each(function() proc.run({ "rm", "-rf", HOME }) end)

  it("takes the key, secret and token from one source: never the environment's key with a file's token", function()
    write(HOME .. "/.aws/credentials", "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = filesecret\n"
      .. "aws_session_token = token-from-the-file\n")
    assert.equal("env\tAKIDENVI\tfalse\tfalse\n",
      child { AWS_ACCESS_KEY_ID = "AKIDENVIRONMENT", AWS_SECRET_ACCESS_KEY = "envsecret" })
    assert.equal("shared_files\tAKIDFILE\ttrue\tfalse\n", child {})
    local partial = child { AWS_ACCESS_KEY_ID = "AKIDALONE" }
    assert.matches("^error\taws%.credentials\tenvironment: gave no access key and secret key", partial)
  end)

  it("assumes the role of IRSA (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE) through STS", function()
    if not MOTO then pending("moto is not installed on this machine") return end
    local token = write(TMP .. "/web-identity-token", "eyJhbGciOiJSUzI1NiJ9.a-projected-token.sig\n")
    local out = child { AWS_ROLE_ARN = "arn:aws:iam::123456789012:role/ckfb-irsa", AWS_WEB_IDENTITY_TOKEN_FILE = token,
      AWS_ENDPOINT_URL_STS = MOTO, AWS_REGION = "eu-west-1" }
    os.remove(token)
    assert.equal("web_identity\tASIA", out:sub(1, 17))
    assert.matches("\ttrue\ttrue\n$", out)
  end)

  it("assumes a profile's role_arn with its source_profile's keys (AssumeRole, signed)", function()
    if not MOTO then pending("moto is not installed on this machine") return end
    write(HOME .. "/.aws/config", "[profile base]\naws_access_key_id = AKIDBASE\n"
      .. "aws_secret_access_key = basesecret\n\n[profile ops]\nrole_arn = arn:aws:iam::123456789012:role/ops\n"
      .. "source_profile = base\nrole_session_name = ckfb-test\n")
    local out = child { AWS_PROFILE = "ops", AWS_ENDPOINT_URL_STS = MOTO }
    assert.equal("assume_role\tASIA", out:sub(1, 16))
    assert.matches("\ttrue\ttrue\n$", out)
    write(HOME .. "/.aws/config", "[profile loop]\nrole_arn = arn:aws:iam::123456789012:role/x\n"
      .. "source_profile = other\n[profile other]\nrole_arn = arn:aws:iam::123456789012:role/y\n"
      .. "source_profile = loop\n")
    assert.matches("^error\taws%.config\tprofile %w+: a source_profile loop",
      child { AWS_PROFILE = "loop", AWS_ENDPOINT_URL_STS = MOTO })
  end)

  it("runs a profile's credential_process, without a shell", function()
    local script = write(TMP .. "/creds.sh", "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROCESS\", "
      .. "\"SecretAccessKey\": \"s\", \"SessionToken\": \"t\", \"Expiration\": \"2099-01-01T00:00:00Z\"}'\n")
    assert(proc.run({ "chmod", "+x", script }))
    write(HOME .. "/.aws/config", "[default]\ncredential_process = " .. script .. " --profile x\n")
    local out = child {}
    os.remove(script)
    assert.equal("process\tAKIDPROC\ttrue\ttrue\n", out)
  end)

  it("reads container credentials (EKS Pod Identity) with the authorization token file", function()
    local token = write(TMP .. "/pod-identity-token", "container-secret\n")
    local out = child { AWS_CONTAINER_CREDENTIALS_FULL_URI = META .. "/container/creds",
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = token }
    assert.equal("container\tASIACTNR\ttrue\ttrue\n", out)
    write(token, "a-wrong-token\n")
    assert.matches("^error\taws%.credentials\tcontainer credentials at .*: HTTP 401",
      child { AWS_CONTAINER_CREDENTIALS_FULL_URI = META .. "/container/creds",
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = token })
    os.remove(token)
    assert.matches("^error\taws%.config\tAWS_CONTAINER_CREDENTIALS_FULL_URI must be https",
      child { AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://metadata.example.com/creds" })
  end)

  it("reads the instance profile through IMDSv2, with its session token, and refreshes before expiry", function()
    local before = #requests()
    local refresh = [[
local p = assert(require("ckfb.aws.credentials").resolve{})
local a = assert(p:get())
local b = assert(p:get())
print(p.source, a.access_key:sub(1, 8), a.access_key == b.access_key)
]]
    local env = { AWS_EC2_METADATA_DISABLED = false, AWS_EC2_METADATA_SERVICE_ENDPOINT = META }
    assert.equal("imds\tASIAIMDS\ttrue\n", child(env, refresh))        -- an hour left: kept
    control { lifetime = 600 }                                            -- ten minutes: inside the refresh window
    assert.equal("imds\tASIAIMDS\tfalse\n", child(env, refresh))
    local seen, all = {}, requests()
    for i = before + 1, #all do
      local r = all[i]
      seen[#seen + 1] = r.method .. " " .. r.path .. (type(r.token_header) == "string" and " +token" or "")
    end
    assert.same("PUT /latest/api/token", seen[1])
    assert.same("GET /latest/meta-data/iam/security-credentials/ +token", seen[2])
    assert.same("GET /latest/meta-data/iam/security-credentials/ckfb-node-role +token", seen[3])
  end)

  it("says where it looked when nothing gives credentials", function()
    assert.matches("^error\taws%.no_credentials\tno AWS credentials", child({},
      [[local _, err = require("ckfb.aws.credentials").resolve{} print("error", err.code, err.message)]]))
  end)
end)
