-- Hook: post the outcome of every backup to a webhook (Slack, Mattermost,
-- Teams or any HTTP endpoint that takes JSON): success, failure, and a
-- preflight refusal alike (the on_end event ends every run).
-- The URL comes from $CKFB_WEBHOOK_URL, so it stays out of the config file.
-- Advisory: a webhook that is down never fails a backup.
--
-- Use it: list this file under `hooks:` in ckfb.yaml and export CKFB_WEBHOOK_URL.
local hooks = ...
local http = require "ckfb.http"
local json = require "ckfb.json"
local log = require "ckfb.log"

local function post(ctx)
  local url = os.getenv("CKFB_WEBHOOK_URL")
  if not url or url == "" then return end
  log.secret(url)  -- webhook URLs carry their token
  local lines = { string.format("ckfb backup %s: %s", ctx.id, ctx.status) }
  for _, b in ipairs(ctx.velero or {}) do
    lines[#lines + 1] = string.format("velero %s: %s", b.target, b.status)
  end
  for _, b in ipairs(ctx.databases or {}) do
    lines[#lines + 1] = string.format("database %s: %s", b.app, b.status)
  end
  local r, err = http.request { method = "POST", url = url, timeout = 15,
    headers = { ["Content-Type"] = "application/json" },
    body = json.encode({ text = table.concat(lines, "\n"), set = ctx.id, status = ctx.status }) }
  if not r or r.status >= 300 then
    error("the webhook answered " .. (r and r.status or tostring(err)), 0)
  end
end

hooks.on("on_end", post, { advisory = true })
