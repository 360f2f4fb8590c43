-- ckfb.ckf.xtrabackup: a mysql-k8s backup read back from S3, against an in-memory
-- bucket (the end-to-end drill against S3 itself is tests/scripts/drill_spec.lua).
local xtrabackup = require "ckfb.ckf.xtrabackup"
local hash = require "ckfb.core.hash"

local ID = "2026-12-05T10:00:00Z"

--- One xbstream chunk, as percona-xtrabackup's xbstream.h frames it.
local function chunk(kind, path, payload)
  local head = "XBSTCK01\0" .. kind .. string.pack("<I4", #path) .. path
  if kind == "E" then return head end
  return head .. string.pack("<I8I8I4", #payload, 0, 0) .. payload
end

local function hex(bytes)
  return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

--- A bucket in memory with the store's calls: list, stat (ETag = MD5), get.
local function bucket(objects, etag_of)
  local store = {}
  function store.list(_, _, opts)
    local out = { objects = {} }
    for key in pairs(objects) do
      if key:sub(1, #opts.prefix) == opts.prefix and not key:find("/", #opts.prefix + 1, true) then
        out.objects[#out.objects + 1] = { key = key }
      end
    end
    return out
  end
  function store.stat(_, _, key)
    if not objects[key] then return nil, { message = "no such key" } end
    return { etag = '"' .. (etag_of or function(body) return hex(hash.md5(body)) end)(objects[key]) .. '"',
      size = #objects[key] }
  end
  function store.get(_, _, key)
    if not objects[key] then return nil, { message = "no such key " .. key } end
    return objects[key]
  end
  return store
end

--- A whole backup under path "db": metadata, chunk objects, and the .md5 naming them relative
-- to the backup, as xbcloud does.
local function backup(edit)
  local parts = {
    [ID .. "/ibdata1.00000000000000000000"] = chunk("P", "ibdata1", string.rep("x", 100)),
    [ID .. "/ibdata1.00000000000000000001"] = chunk("E", "ibdata1"),
  }
  if edit then edit(parts) end
  local objects, lines = { ["db/" .. ID .. ".metadata"] = "{}" }, {}
  for name, body in pairs(parts) do
    objects["db/" .. name] = body
    lines[#lines + 1] = hex(hash.md5(body)) .. "  " .. name:sub(#ID + 2)
  end
  table.sort(lines)
  objects["db/" .. ID .. ".md5"] = table.concat(lines, "\n") .. "\n"
  return objects
end

describe("ckfb.ckf.xtrabackup", function()
  it("reads the xbstream chunks of an object, and says where a stream is cut", function()
    local stream = chunk("P", "ibdata1", "abc") .. chunk("E", "ibdata1")
    assert.same({ { type = "P", path = "ibdata1" }, { type = "E", path = "ibdata1" } }, xtrabackup.chunks(stream))
    assert.same({ nil, "a payload header is cut short" }, { xtrabackup.chunks(stream:sub(1, 30)) })
    assert.same({ nil, "a payload is cut short" }, { xtrabackup.chunks(stream:sub(1, 43)) })
    assert.same({ nil, "a chunk header is cut short" }, { xtrabackup.chunks("XBSTCK01\0P") })
    assert.same({ nil, "no xbstream chunk at byte 0" }, { xtrabackup.chunks("PK\3\4") })
    assert.same({ nil, "a chunk of type 'S', which ckfb does not read" },
      { xtrabackup.chunks(chunk("E", "f"):gsub("E", "S", 1)) })
    assert.same({ nil, "the object is empty" }, { xtrabackup.chunks("") })
    local cut_path = "XBSTCK01\0E" .. string.pack("<I4", 100) .. "ibd"
    assert.same({ nil, "a chunk's path is cut short" }, { xtrabackup.chunks(cut_path) })
    local back = "XBSTCK01\0P" .. string.pack("<I4", 1) .. "a" .. string.pack("<i8I8I4", -35, 0, 0)  -- would loop back
    assert.same({ nil, "a payload is cut short" }, { xtrabackup.chunks(back .. back) })
  end)

  it("finds a whole backup restorable, whatever its ETags say and however the .md5 names it", function()
    local v = xtrabackup.check(bucket(backup()), "b", "db", ID)
    assert.is_true(v.restorable, v.reason)
    assert.equal(2, v.objects)
    local encrypted = xtrabackup.check(bucket(backup(), function() return string.rep("f", 32) end), "b", "db", ID)
    assert.is_true(encrypted.restorable, encrypted.reason)   -- SSE: an ETag that is no MD5, the bytes hashed
    local prefixed = backup()
    prefixed["db/" .. ID .. ".md5"] = prefixed["db/" .. ID .. ".md5"]:gsub("  ", "  " .. ID .. "/")
    assert.is_true(xtrabackup.check(bucket(prefixed), "b", "db", ID).restorable)
  end)

  it("finds each kind of damage, in the words of the rule it breaks", function()
    local function reason(objects) return xtrabackup.check(bucket(objects), "b", "/db/", ID).reason end
    local no_md5 = backup()
    no_md5["db/" .. ID .. ".md5"] = nil
    assert.equal("the charm would list it as in progress", reason(no_md5))
    local no_metadata = backup()
    no_metadata["db/" .. ID .. ".metadata"] = nil
    assert.equal("the charm would not list it: no db/" .. ID .. ".metadata", reason(no_metadata))
    local changed = backup()
    changed["db/" .. ID .. "/ibdata1.00000000000000000000"] = chunk("P", "ibdata1", "y")
    assert.equal("object " .. ID .. "/ibdata1.00000000000000000000 does not match its MD5 in the .md5 file",
      reason(changed))
    assert.equal("ibdata1 has no end-of-file chunk: the stream was cut short", reason(backup(function(parts)
      parts[ID .. "/ibdata1.00000000000000000001"] = chunk("P", "ibdata1", "more")
    end)))
    assert.equal("ibdata1: object 1 of its sequence is missing", reason(backup(function(parts)
      parts[ID .. "/ibdata1.00000000000000000002"] = parts[ID .. "/ibdata1.00000000000000000001"]
      parts[ID .. "/ibdata1.00000000000000000001"] = nil
    end)))
    local planted = backup()
    planted["db/" .. ID .. ".md5"] = string.rep("0", 32) .. "  ../other/secret.00000000000000000000\n"
    assert.equal("the .md5 file names an object outside the backup: ../other/secret.00000000000000000000",
      reason(planted))
  end)
end)
