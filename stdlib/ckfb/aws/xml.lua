--- ckfb.aws.xml: the XML documents S3 and STS answer with, read into
-- {name, text, children} (namespaces dropped), and text escaped for requests.
local M = {}

local ENTITIES = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'" }

--- Replaces XML's entities; a malformed or out-of-range character reference
-- (&#xp1; or &#99999999999;) stays as it was.
local function unescape(s)
  return (s:gsub("&(#?x?)(%w+);", function(kind, name)
    if kind == "" then return ENTITIES[name] end
    if kind == "x" then return nil end
    local code = math.tointeger(tonumber(name, kind == "#x" and 16 or 10))
    if code and code >= 0 and code <= 0x10FFFF then return utf8.char(code) end
  end))
end

function M.escape(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;", ["'"] = "&apos;" }))
end

--- Parses the XML documents S3 answers with into {name, text, children}.
-- Linear in the input: a node's text is gathered in pieces and joined once
-- when it closes, and a tag cannot span another '<' (so "<a<a<a..." is not
-- rescanned to the end from every '<').
function M.parse(text)
  local root = { name = "#root", children = {}, pieces = {} }
  local stack = { root }
  local function close(node)
    node.text = unescape(table.concat(node.pieces))
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

function M.child(node, name)
  for _, c in ipairs(node and node.children or {}) do
    if c.name == name then return c end
  end
end

function M.children(node, name)
  local out = {}
  for _, c in ipairs(node and node.children or {}) do
    if c.name == name then out[#out + 1] = c end
  end
  return out
end

function M.text(node, name)
  local c = M.child(node, name)
  return c and c.text
end

--- path(node, "A", "B", "C") -> the text of A/B/C below node, or nil.
function M.path_text(node, ...)
  local names = { ... }
  for i = 1, #names - 1 do node = M.child(node, names[i]) end
  return M.text(node, names[#names])
end

return M
