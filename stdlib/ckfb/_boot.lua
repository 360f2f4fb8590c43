-- The first Lua ckfb runs (host/main.c calls it with the raw argv and exits
-- with what it returns). It installs the module searchers, then hands over
-- to ckfb.cli. Search order, so that a site can override any shipped module
-- without a rebuild:
--   preload (C modules only) -> --lib-dir, $CKFB_PATH, user config dir,
--   /etc/ckfb/lib -> the copy embedded in the binary -> Lua's own paths.
assert(_VERSION == "Lua 5.4", "ckfb needs Lua 5.4")
local argv = ...
local sys = require "ckfb.core.sys"

-- --lib-dir must be known before anything else is required.
local function lib_dirs_from_argv()
  local dirs = {}
  local i = 1
  while argv[i] do
    local a = argv[i]
    if a == "--" or a == "-" or a:sub(1, 1) ~= "-" then break end
    if a == "--lib-dir" then
      dirs[#dirs + 1] = argv[i + 1]
      i = i + 1
    elseif a:match("^%-%-lib%-dir=") then
      dirs[#dirs + 1] = a:sub(11)
    elseif a == "-e" or a == "-l" then
      i = i + 1
    end
    i = i + 1
  end
  return dirs
end

local function override_dirs()
  local dirs = lib_dirs_from_argv()
  for dir in (os.getenv("CKFB_PATH") or ""):gmatch("[^:]+") do
    dirs[#dirs + 1] = dir
  end
  local config = os.getenv("XDG_CONFIG_HOME")
  if not config and os.getenv("HOME") then config = os.getenv("HOME") .. "/.config" end
  if config then dirs[#dirs + 1] = config .. "/ckfb/lib" end
  dirs[#dirs + 1] = "/etc/ckfb/lib"
  return dirs
end

local dirs = override_dirs()

-- "stdlib/ckfb/log.lua" -> "ckfb.log"; "stdlib/ckfb/init.lua" -> "ckfb"
local embedded = {}
local scripts = {}
for _, path in ipairs(sys.embedded()) do
  local mod = path:match("^stdlib/(.+)%.lua$")
  if path == "stdlib/ckfb/_boot.lua" then -- luacheck: ignore 542
  elseif mod then
    embedded[(mod:gsub("/init$", ""):gsub("/", "."))] = path
  else
    local name = path:match("^scripts/(.+)%.lua$")
    if name then scripts[name] = path end
  end
end

local function find_override(name)
  local rel = name:gsub("%.", "/")
  for _, dir in ipairs(dirs) do
    for _, candidate in ipairs { dir .. "/" .. rel .. ".lua", dir .. "/" .. rel .. "/init.lua" } do
      if sys.filetype(candidate) == "file" then return candidate end
    end
  end
end

local function override_searcher(name)
  local file = find_override(name)
  if not file then return "\n\tno override file for '" .. name .. "'" end
  local chunk, err = loadfile(file)
  if not chunk then error(err, 0) end
  return chunk, file
end

local function embedded_searcher(name)
  local path = embedded[name]
  if not path then return "\n\tno embedded module '" .. name .. "'" end
  local chunk = assert(load(sys.embedded_source(path), "@" .. path))
  return chunk, "embedded:" .. path
end

local searchers = package.searchers
table.insert(searchers, 2, override_searcher)
table.insert(searchers, 3, embedded_searcher)

-- What `ckfb stdlib list|cat` and the CLI need to know about resolution.
package.loaded["ckfb.stdlib"] = {
  dirs = dirs,
  scripts = scripts,
  -- name -> "file", path | "embedded", path | "preload" | nil
  resolve = function(name)
    local file = find_override(name)
    if file then return "file", file end
    if embedded[name] then return "embedded", embedded[name] end
    if package.preload[name] then return "preload" end
  end,
  modules = function()
    local names = {}
    for name in pairs(embedded) do names[#names + 1] = name end
    for name in pairs(package.preload) do names[#names + 1] = name end
    table.sort(names)
    return names
  end,
  source = function(path) return sys.embedded_source(path) end,
}

return require("ckfb.cli").main(argv)
