-- Hook: stop every running Kubeflow notebook before the backup, and start
-- the ones it stopped again afterwards (also when the backup fails).
-- Kubeflow stops a notebook when it carries the annotation
-- kubeflow-resource-stopped (the notebook controller scales it to zero),
-- which is what the "Stop" button of the dashboard sets.
--
-- Use it: list this file under `hooks:` in ckfb.yaml.
local hooks = ...
local k8s = require "ckfb.k8s"
local log = require "ckfb.log"

local ANNOTATION = "kubeflow-resource-stopped"
local stopped = {}   -- the notebooks this hook stopped: {namespace, name}

local function client(ctx)
  return ctx.k8s or assert(k8s.default())
end

local function set_stopped(c, nb, value)
  return c:patch("notebooks.kubeflow.org", nb.name,
    { metadata = { annotations = { [ANNOTATION] = value } } }, { namespace = nb.namespace })
end

hooks.on("before_backup", function(ctx)
  local c = client(ctx)
  local items = assert(c:list("notebooks.kubeflow.org", { all_namespaces = true }))
  for _, item in ipairs(items) do
    local ann = item.metadata.annotations or {}
    if not ann[ANNOTATION] then
      local nb = { namespace = item.metadata.namespace, name = item.metadata.name }
      assert(set_stopped(c, nb, os.date("!%Y-%m-%dT%H:%M:%SZ")))
      stopped[#stopped + 1] = nb
      log.info("stopped notebook %s/%s for the backup", nb.namespace, nb.name)
    end
  end
end)

local function restart(ctx)
  local c = client(ctx)
  for _, nb in ipairs(stopped) do
    local ok, err = set_stopped(c, nb, require("ckfb.json").null)  -- null removes the annotation
    if ok then log.info("started notebook %s/%s again", nb.namespace, nb.name)
    else log.warn("could not start notebook %s/%s again: %s", nb.namespace, nb.name, err.message) end
  end
  stopped = {}
end

hooks.on("after_backup", restart, { advisory = true })
hooks.on("on_failure", restart, { advisory = true })
