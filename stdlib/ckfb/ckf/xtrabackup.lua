--- ckfb.ckf.xtrabackup: a mysql-k8s backup as it lies in S3, read back without the charm.
-- mysql-k8s streams `xtrabackup --stream=xbstream | xbcloud put --md5 <path>/<id>`
-- (lib/charms/mysql/v0/mysql.py execute_backup_commands) after writing <path>/<id>.metadata
-- (lib/charms/mysql/v0/backups.py). xbcloud leaves each file of the stream as objects
-- <path>/<id>/<file>.<20-digit sequence> of whole xbstream chunks, the last one the file's
-- end-of-file chunk, and <path>/<id>.md5 with an md5sum line per object. That layout is
-- xbcloud's (percona-xtrabackup storage/innobase/xtrabackup/src/xbcloud), which could not be
-- read here (too large to fetch): ckfb checks what it can state and says which rule failed.
local task = require "ckfb.task"
local hash = require "ckfb.core.hash"

local M = {}

M.PARALLEL = 16   -- objects checked at once

local MAGIC = "XBSTCK01"   -- xbstream.h XB_STREAM_CHUNK_MAGIC
local HEADER = #MAGIC + 1 + 1 + 4   -- magic, flags, type, path length (CHUNK_HEADER_CONSTANT_LEN)

--- chunks(bytes) -> {{type = "P" | "E", path}...} | nil, why: the xbstream chunks of an
-- object, each whole (xbstream.h: a payload chunk's path is followed by its length and
-- offset, 8 bytes LE each, a CRC32 of 4 bytes, then the payload).
function M.chunks(bytes)
  local out, pos = {}, 1
  while pos <= #bytes do
    if bytes:sub(pos, pos + #MAGIC - 1) ~= MAGIC then
      return nil, string.format("no xbstream chunk at byte %d", pos - 1)
    end
    if #bytes < pos + HEADER - 1 then return nil, "a chunk header is cut short" end
    local kind = bytes:sub(pos + #MAGIC + 1, pos + #MAGIC + 1)
    local path_length = string.unpack("<I4", bytes, pos + #MAGIC + 2)
    if pos + HEADER + path_length - 1 > #bytes then return nil, "a chunk's path is cut short" end
    local path = bytes:sub(pos + HEADER, pos + HEADER + path_length - 1)
    pos = pos + HEADER + path_length
    if kind == "P" then
      if #bytes < pos + 19 then return nil, "a payload header is cut short" end
      local length = string.unpack("<i8", bytes, pos)   -- signed: a huge length must not wrap back
      if length < 0 or length > #bytes - pos - 19 then return nil, "a payload is cut short" end
      pos = pos + 20 + length
    elseif kind ~= "E" then
      local shown = kind:match("^%g$") and ("'" .. kind .. "'") or string.format("0x%02X", kind:byte())
      return nil, "a chunk of type " .. shown .. ", which ckfb does not read"
    end
    out[#out + 1] = { type = kind, path = path }
  end
  if #out == 0 then return nil, "the object is empty" end
  return out
end

local function hex(bytes)
  return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

--- The directory of a backup's objects: "<path>/" (or "" for none).
local function dir_of(path)
  path = tostring(path or ""):gsub("^/+", ""):gsub("/+$", "")
  return path ~= "" and path .. "/" or ""
end

--- listed(store, bucket, path, backup_id) -> "finished" | "failed" | "in progress" | nil (not
-- listed) | nil, err: the charm's list-backups of this backup, from S3 as the charm reads it
-- (lib/charms/mysql/v0/s3_helpers.py list_backups_in_s3_path, _compile_backups_from_file_ids).
function M.listed(store, bucket, path, backup_id)
  local dir = dir_of(path)
  local found, err = store:list(bucket, { prefix = dir .. backup_id, delimiter = "/" })
  if not found then return nil, err end
  local names = {}
  for _, o in ipairs(found.objects) do names[o.key:sub(#dir + 1)] = true end
  if not names[backup_id .. ".metadata"] then return nil end
  if names[backup_id .. ".md5"] then return "finished" end
  if names[backup_id .. ".backup.log"] then return "failed" end
  return "in progress"
end

--- The objects the .md5 file names, in order: {{name, md5, file, seq}...} | nil, why. xbcloud
-- names them relative to the backup ("<file>.<seq>"); a "<id>/" before that is taken too. Every
-- object must lie under "<id>/" (the file is data from S3, not a list of keys to trust).
local function md5_entries(text, backup_id)
  local out = {}
  local own = "^" .. backup_id:gsub("%p", "%%%0") .. "/"
  for line in text:gmatch("[^\n]+") do
    local sum, name = line:match("^(%x+)%s+%*?(.-)%s*$")
    if not sum or #sum ~= 32 then return nil, "a line of the .md5 file is not \"<md5>  <object>\"" end
    local relative = name:gsub(own, "", 1)
    local file, seq = relative:match("^(.+)%.(%d+)$")
    if not file or #seq ~= 20 or file:find("%.%.") or file:find("^/") then
      return nil, "the .md5 file names an object outside the backup: " .. name
    end
    out[#out + 1] = { name = backup_id .. "/" .. relative, md5 = sum:lower(), file = file, seq = tonumber(seq) }
  end
  if #out == 0 then return nil, "the .md5 file names no object" end
  return out
end

--- An object's MD5 as S3 keeps it (a single-part ETag), else from its bytes.
-- -> {md5 = hex, size} | nil, err
local function object_md5(store, bucket, key, expected)
  local st, err = store:stat(bucket, key)
  if not st then return nil, err end
  local etag = tostring(st.etag or ""):gsub('"', "")
  if etag:match("^%x+$") and #etag == 32 and etag:lower() == expected then return { md5 = expected, size = st.size } end
  local body, gerr = store:get(bucket, key)   -- multipart, or encrypted (SSE-KMS, SSE-C): the ETag is no MD5
  if not body then return nil, gerr end
  return { md5 = hex(hash.md5(body)), size = #body }
end

--- Every object the .md5 file names is there with that MD5. -> bytes in all | nil, why
local function check_sums(store, bucket, dir, entries)
  local answers, total = {}, 0
  for first = 1, #entries, M.PARALLEL do   -- a few at a time: a big backup has thousands
    local jobs = {}
    for i = first, math.min(first + M.PARALLEL - 1, #entries) do
      jobs[#jobs + 1] = function() return object_md5(store, bucket, dir .. entries[i].name, entries[i].md5) end
    end
    table.move({ task.all(jobs) }, 1, #jobs, first, answers)
  end
  for i, e in ipairs(entries) do
    local got = answers[i]
    if not got then return nil, "object " .. e.name .. " is missing or unreadable" end
    if got.md5 ~= e.md5 then return nil, "object " .. e.name .. " does not match its MD5 in the .md5 file" end
    total = total + (math.tointeger(got.size) or 0)
  end
  return total
end

--- Each file's objects run 0..n-1, the first object of the stream starts with a chunk, and
-- each file's last object ends with its end-of-file chunk. -> true | nil, why
local function check_framing(store, bucket, dir, entries)
  local by_file, order = {}, {}
  for _, e in ipairs(entries) do
    if not by_file[e.file] then by_file[e.file] = {}; order[#order + 1] = e.file end
    table.insert(by_file[e.file], e)
  end
  for _, file in ipairs(order) do
    local list = by_file[file]
    table.sort(list, function(a, b) return a.seq < b.seq end)
    for i, e in ipairs(list) do
      if e.seq ~= i - 1 then return nil, string.format("%s: object %d of its sequence is missing", file, i - 1) end
    end
    for _, e in ipairs { list[1], list[#list] } do
      local body, err = store:get(bucket, dir .. e.name)
      if not body then return nil, err.message end
      local chunks, why = M.chunks(body)
      if not chunks then return nil, e.name .. ": " .. why end
      if e == list[#list] and chunks[#chunks].type ~= "E" then
        return nil, file .. " has no end-of-file chunk: the stream was cut short"
      end
    end
  end
  return true
end

--- check(store, bucket, path, backup_id) -> {restorable = bool, reason, objects, bytes}: what S3
-- holds of one backup, read back: the charm would list it as finished, every object the .md5
-- file names is there with that MD5, and the xbstream framing is whole.
function M.check(store, bucket, path, backup_id)
  local function verdict(ok, reason, extra)
    local v = { restorable = ok, reason = reason }
    for k, x in pairs(extra or {}) do v[k] = x end
    return v
  end
  local dir = dir_of(path)
  local status, lerr = M.listed(store, bucket, path, backup_id)
  if lerr then return verdict(false, "S3 could not be listed: " .. lerr.message) end
  if status ~= "finished" then
    return verdict(false, status and ("the charm would list it as " .. status)
      or ("the charm would not list it: no " .. dir .. backup_id .. ".metadata"))
  end
  local text, gerr = store:get(bucket, dir .. backup_id .. ".md5")
  if not text then return verdict(false, "its .md5 file could not be read: " .. gerr.message) end
  local entries, why = md5_entries(text, backup_id)
  if not entries then return verdict(false, why) end
  local bytes, serr = check_sums(store, bucket, dir, entries)
  if not bytes then return verdict(false, serr) end
  local framed, ferr = check_framing(store, bucket, dir, entries)
  if not framed then return verdict(false, ferr) end
  return verdict(true, string.format("%d objects, %d bytes: MD5s and xbstream framing whole", #entries, bytes),
    { objects = #entries, bytes = bytes })
end

return M
