-- The three worked forks of docs/ARCHITECTURE.md ("Forking ckfb"): each applies its edit to
-- a copy of the shipped scripts/backup.lua and runs the copy, as a site would with
-- `ckfb ./backup.lua`, against the stand-ins tests/run starts.
local proc = require "ckfb.proc"
local json = require "ckfb.json"
local k8s = require "ckfb.k8s"
local fake = require "tests.stdlib.ckfb.helpers.fake_juju"

local standins = require "tests.stdlib.ckfb.helpers.standins"
local CKFB, TMP, STANDINS, CONFIG = standins.CKFB, standins.TMP, standins.STANDINS, standins.CONFIG
local FORK = TMP .. "/backup-fork.lua"
local REPORT = TMP .. "/fork-report.json"

--- Copies the shipped script with `anchor` (which must occur exactly once) replaced.
local function fork(anchor, replacement)
  local text = assert(require("ckfb.file").read("scripts/backup.lua"))
  local at = text:find(anchor, 1, true)
  assert(at and not text:find(anchor, at + 1, true), "the anchor must occur once in scripts/backup.lua: " .. anchor)
  text = text:sub(1, at - 1) .. replacement .. text:sub(at + #anchor)
  assert(require("ckfb.file").write(FORK, text))
end

local function run_fork(...)
  os.remove(REPORT)
  local r = assert(proc.run({ CKFB, FORK, "--config", CONFIG, "--report", REPORT, ... }, { timeout = 120 }))
  local text = require("ckfb.file").read(REPORT)
  r.report = text and json.decode(text)
  return r
end

--- The create-backup calls the run made, as command lines.
local function backups_made()
  local out = {}
  for _, c in ipairs(fake.calls()) do
    if c.argv[1] == "run" and c.argv[5] == "create-backup" then out[#out + 1] = table.concat(c.argv, " ") end
  end
  return out
end

describe("forking ckfb backup", function()
  before_each(function() fake.reset(nil, TMP .. "/juju-state.standin.json") end)
  after_each(function() os.remove(FORK); os.remove(REPORT) end)

  it("1. adds a site step between two stages", function()
    fork("  setup_steps(run, p)\n", [[
  setup_steps(run, p)
  p:add { stage = "site", id = "annotate kubeflow", label = "annotate namespace kubeflow with the set id",
    by_hand = "kubectl annotate namespace kubeflow ckfb.io/backup-set=" .. run.id,
    run = function()
      local ok, err = run.checks.found.k8s:patch("namespaces", "kubeflow",
        { metadata = { annotations = { ["ckfb.io/backup-set"] = run.id } } })
      if not ok then return nil, err end
      return { detail = "annotated" }
    end }
]])
    local r = run_fork()
    assert.equal(0, r.code, r.stderr)
    local stages = {}
    for _, s in ipairs(r.report.plan) do
      if stages[#stages] ~= s.stage then stages[#stages + 1] = s.stage end
    end
    assert.same({ "setup", "site", "backup", "verify", "record" }, stages)
    local site = r.stderr:find("annotate namespace kubeflow with the set id: ok", 1, true)
    assert.truthy(site, r.stderr)
    assert.truthy(r.stderr:find("stage 2/5: site", 1, true) < site)
    assert.truthy(site < r.stderr:find("stage 3/5: backup", 1, true))
    local ns = assert(k8s.client { kubeconfig = STANDINS .. "/kubeconfig" }):get("namespaces", "kubeflow")
    assert.equal(r.report.id, ns.metadata.annotations["ckfb.io/backup-set"])
  end)

  it("2. drops a target", function()
    fork("  for _, target in ipairs(run.checks.found.targets) do velero_step(run, p, target) end\n", [[
  for _, target in ipairs(run.checks.found.targets) do
    if target ~= "mlmd:velero-backup-config" then velero_step(run, p, target) end
  end
]])
    local r = run_fork()
    assert.equal(0, r.code, r.stderr)
    assert.equal("complete", r.report.status)
    local targets = {}
    for _, v in ipairs(r.report.velero) do targets[#targets + 1] = v.target end
    table.sort(targets)
    assert.same({ "kubeflow-profiles:profiles-backup-config", "kubeflow-profiles:user-workloads-backup-config",
      "minio:velero-backup-config" }, targets)
    for _, call in ipairs(backups_made()) do assert.is_nil(call:find("target=mlmd", 1, true), call) end
  end)

  it("3. changes a wait and a database", function()
    local anchor = "  local cfg, cerr = sets.load(opts.config, nil, { model = opts.m })\n"
      .. "  if not cfg then return options.fail(OPTIONS, EXIT.usage, cerr.message, true) end\n"
    fork(anchor, anchor .. "  cfg.databases, cfg.database.wait = { \"kfp-db\" }, 1200\n")
    local dry = assert(proc.run({ CKFB, FORK, "--config", CONFIG, "--dry-run", "--json" }, { timeout = 120 }))
    assert.equal(0, dry.code, dry.stderr)
    local by_hand = {}
    for _, s in ipairs(json.decode(dry.stdout).plan) do by_hand[s.id] = s.by_hand end
    assert.matches("%-%-timeout 1200s$", by_hand["ready kfp-db"])      -- the commands follow the values
    assert.is_nil(by_hand["ready katib-db"])
    local r = run_fork()
    assert.equal(0, r.code, r.stderr)
    assert.equal(1, #r.report.databases)
    assert.equal("kfp-db", r.report.databases[1].app)
    local db_backups = {}
    for _, call in ipairs(backups_made()) do
      if call:find("db/", 1, true) then db_backups[#db_backups + 1] = call end
    end
    assert.equal(1, #db_backups)
    assert.matches("kfp%-db/%d create%-backup.*%-%-wait 1200s", db_backups[1])
  end)
end)
