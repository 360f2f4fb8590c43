-- Fuzz target: an object of a database backup read back by ckfb drill (S3 data):
-- its xbstream chunks are read, or one line says why not; nothing else happens.
local xtrabackup = require "ckfb.ckf.xtrabackup"
return function(data)
  local chunks, why = xtrabackup.chunks(data)
  if chunks then
    for _, c in ipairs(chunks) do assert(c.type == "P" or c.type == "E", "an unknown chunk type read") end
  else
    assert(type(why) == "string" and not why:find("\n"), "no one-line reason")
  end
end
