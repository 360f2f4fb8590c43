--- ckfb.http: HTTP(S) on curl_multi, on the same loop as processes (host/http.c).
-- Any HTTP status is a response; only transport failures (connection,
-- TLS, timeout, local I/O, a connection dropped: http.dropped) are `nil, err`. Bindings on top (k8s, s3) turn
-- statuses into errors. Query strings never appear in error messages.
local core = require "ckfb.core.http"
local task = require "ckfb.task"

local M = {}

local FIELDS = {
  method = "string", url = "string", headers = "table", body = "string", body_file = "string",
  sink = "string", timeout = "number", connect_timeout = "number", follow = "boolean",
  proxy = "string", tls = "table", stream = "boolean",
  body_offset = "number", body_length = "number", sink_offset = "number", accept_encoding = "boolean",
  max_body = "number", path_as_is = "boolean", connect_to = "string",
}

local function check(req)
  if type(req) ~= "table" then error("http.request: expected a table", 3) end
  for k, v in pairs(req) do
    if not FIELDS[k] then error("http.request: unknown field '" .. tostring(k) .. "'", 3) end
    if type(v) ~= FIELDS[k] then
      error(string.format("http.request: '%s' must be a %s, got %s", k, FIELDS[k], type(v)), 3)
    end
  end
  if not req.url then error("http.request: 'url' is required", 3) end
  if req.body and req.body_file then error("http.request: give 'body' or 'body_file', not both", 3) end
end

--- request{method, url, headers, body | body_file, sink, timeout, connect_timeout,
--           follow, proxy, tls = {ca_file, ca_data, cert, key, cert_data, key_data, insecure},
--           body_offset, body_length (send a range of body_file),
--           sink_offset (write the body into sink from there, keeping the rest of the file),
--           accept_encoding = false (no compressed transfer: bodies byte for byte),
--           max_body (bytes of body kept in memory, default 64 MiB: past it, http.too_large),
--           path_as_is (send "." and ".." path segments as they are),
--           connect_to ("NAME:PORT:HOST:PORT": TLS checks the URL's NAME, the connection goes to HOST)}
-- -> {status, headers (lower-case names), body, time} | nil, err
function M.request(req)
  check(req)
  local op, err = core.request(req)
  if not op then return nil, err end
  return task.await(op)
end

local Stream = { __name = "ckfb.http.stream" }
Stream.__index = Stream

--- stream(req) -> a stream | nil, err: the body arrives piece by piece.
-- stream:read() -> the next piece, or nil (then stream.response has status
-- and headers) | nil, err. stream:close() stops the transfer; a to-be-closed
-- variable does it too. For watches and followed logs.
function M.stream(req)
  check(req)
  local r = {}
  for k, v in pairs(req) do r[k] = v end
  r.stream = true
  local op, err = core.request(r)
  if not op then return nil, err end
  return setmetatable({ op = op, status = 0 }, Stream)
end

function Stream:read()
  while true do
    if self.op:ready() then
      local data, status = self.op:take()
      self.status = status
      if data ~= "" then return data end
      if self.op:done() then
        if self.response or self.failure then return nil, self.failure end
        local response, err = self.op:result()
        self.response, self.failure = response, err
        return nil, err
      end
    end
    task.wait_ready(self.op)
  end
end

function Stream:close()
  self.op:cancel()
end

Stream.__close = Stream.close

--- get(url [, req]) -> response | nil, err
function M.get(url, req)
  local r = {}
  for k, v in pairs(req or {}) do r[k] = v end
  r.url, r.method = url, "GET"
  return M.request(r)
end

return M
