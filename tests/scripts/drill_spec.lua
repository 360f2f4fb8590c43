-- ckfb drill against the stand-ins: a set's velero backups restored into scratch
-- namespaces by the Velero controller stand-in (tests/servers/kube_apiserver.py), its
-- database backups read back from S3, and the proof that the running CKF was not
-- touched: no juju call, no Kubernetes write outside the drill's own names.
local json = require "ckfb.json"
local http = require "ckfb.http"
local k8s = require "ckfb.k8s"
local s3 = require "ckfb.s3"
local file = require "ckfb.file"
local proc = require "ckfb.proc"
local task = require "ckfb.task"
local fake = require "tests.stdlib.ckfb.helpers.fake_juju"
local isolated_config = require("tests.stdlib.ckfb.helpers.configs").isolated

local standins = require "tests.stdlib.ckfb.helpers.standins"
local TMP, STANDINS, STATE, ckfb = standins.TMP, standins.STANDINS, standins.STATE, standins.ckfb
local K8S = assert(os.getenv("CKFB_TEST_K8S"))

local function kube()
  return assert(k8s.client { kubeconfig = STANDINS .. "/kubeconfig" })
end

local function control(what, body)
  assert(http.request { method = "POST", url = K8S .. "/__control/" .. what, body = json.encode(body),
    tls = { ca_file = STANDINS .. "/certs/ca.crt" } })
end

--- The Kubernetes requests seen so far.
local function requests()
  local r = assert(http.get(K8S .. "/__control/requests", { tls = { ca_file = STANDINS .. "/certs/ca.crt" } }))
  return json.decode(r.body)
end

local function backed_up(change)
  local config, cfg = isolated_config(function(c)
    c.metrics = { textfile = TMP .. "/drill-" .. tostring(c.s3.prefix):gsub("/", "") .. ".prom",
      pushgateway = os.getenv("CKFB_TEST_PUSHGATEWAY") or "" }
    if change then change(c) end
  end)
  local r = ckfb("-q", "backup", "--config", config)
  assert.equal(0, r.code, r.stderr)
  return config, cfg
end

local function drill(config, ...)
  local r = ckfb("drill", "--latest", "--config", config, "-o", "json", ...)
  local ok, report = pcall(json.decode, r.stdout)
  return r, ok and report or nil
end

local function component(report, name)
  for _, c in ipairs(report.components) do
    if c.component == name then return c end
  end
  error("no component " .. name)
end

local function scratch_namespaces()
  local out = {}
  for _, n in ipairs(assert(kube():list("namespaces"))) do
    if n.metadata.name:find("^ckfb%-drill%-") then out[#out + 1] = n.metadata.name end
  end
  return out
end

describe("ckfb drill", function()
  before_each(function()
    fake.reset(nil, STATE)
    control("velero", { items = 5, item_delay = 0, restore_fail_after = json.null })
  end)

  it("finds a complete set restorable, leaves nothing behind and never touches the running CKF", function()
    local config, cfg = backed_up()
    local seen_before = #requests()
    local log = io.open(fake.log_path, "w")
    log:close()
    local r, report = drill(config)
    assert.equal(0, r.code, r.stderr)
    assert.equal("restorable", report.verdict)
    assert.equal(6, #report.components)
    for _, c in ipairs(report.components) do assert.is_true(c.restorable, c.component .. ": " .. c.reason) end
    local minio = component(report, "minio:velero-backup-config")
    assert.equal(5, minio.restore.done)
    assert.matches("^ckfb%-drill%-%d+t%d+z%x+%-kubeflow$", minio.namespaces[1])
    assert.matches("MD5s and xbstream framing whole", component(report, "kfp-db").reason)
    -- production untouched: no juju call; every Kubernetes write is one of the drill's names
    assert.same({}, fake.calls())
    local writes, restores_made, seen = {}, 0, requests()
    for i = seen_before + 1, #seen do
      local q = seen[i]
      if q.method ~= "GET" then
        local path = q.path:gsub("%?.*", "")
        local ours = path == "/apis/velero.io/v1/namespaces/velero/restores"
          or path:match("^/apis/velero%.io/v1/namespaces/velero/restores/ckfb%-drill%-")
          or path:match("^/api/v1/namespaces/ckfb%-drill%-[^/]+$")
        if not ours then writes[#writes + 1] = q.method .. " " .. path end
        if q.method == "POST" then restores_made = restores_made + 1 end
      end
    end
    assert.same({}, writes)
    assert.equal(4, restores_made)
    -- and nothing restored where Velero would have put it without the mapping
    assert.same({}, assert(kube():list("configmaps", { all_namespaces = true,
      label_selector = "velero.io/restore-name" })))
    assert.same({}, scratch_namespaces())
    assert.same({}, assert(kube():list("restores.velero.io", { namespace = "velero" })))
    -- recorded in the manifest, shown by describe and list, exported as a metric
    local described = ckfb("describe", "--latest", "--config", config)
    assert.matches("\ndrilled: restorable, %d%d%d%d%-%d%d%-%d%dT", described.stdout)
    assert.matches(" drilled restorable", ckfb("list", "--config", config).stdout)
    local prom = assert(file.read(cfg.metrics.textfile:gsub("%.prom$", "-drill.prom")))
    assert.matches('\nckfb_drill_last_success_timestamp_seconds{deployment="kubeflow"} %d+\n', prom)
    assert.matches('\nckfb_drill_last_run_restorable{deployment="kubeflow"} 1\n', prom)
    if os.getenv("CKFB_TEST_PUSHGATEWAY") then  -- pushed too, in a group of its own beside the backup's
      local pushed = assert(http.get(os.getenv("CKFB_TEST_PUSHGATEWAY") .. "/metrics")).body
      local group = 'deployment="kubeflow",instance="",job='
      assert.matches("\nckfb_drill_last_run_restorable{" .. group .. '"ckfb%-drill"} 1\n', pushed)
      assert.matches("\nckfb_backup_last_run_status{" .. group .. '"ckfb",status="complete"} 1\n', pushed)
    end
    if assert(proc.run({ "sh", "-c", "command -v promtool" })).code == 0 then
      local check = assert(proc.run({ "promtool", "check", "metrics" }, { stdin = prom }))
      assert.equal(0, check.code, check.stdout .. check.stderr)
    end
  end)

  it("finds a set not restorable when a velero backup is gone or PartiallyFailed", function()
    local config = backed_up()
    local set = json.decode(ckfb("describe", "--latest", "--config", config, "-o", "json").stdout)
    local names = {}
    for _, v in ipairs(set.velero) do names[v.target] = v.backup_name end
    assert(kube():delete("backups.velero.io", names["minio:velero-backup-config"], { namespace = "velero" }))
    assert(kube():patch("backups.velero.io", names["mlmd:velero-backup-config"],
      { status = { phase = "PartiallyFailed", errors = 2 } }, { namespace = "velero" }))
    local r, report = drill(config)
    assert.equal(1, r.code)
    assert.equal("not restorable", report.verdict)
    assert.matches("no longer exists", component(report, "minio:velero-backup-config").reason)
    assert.equal("the velero backup is PartiallyFailed (2 errors, 0 warnings)",
      component(report, "mlmd:velero-backup-config").reason)
    assert.is_true(component(report, "kubeflow-profiles:profiles-backup-config").restorable)
    assert.matches("drill of ckf%-%S+: not restorable\n", r.stderr)
    assert.same({}, scratch_namespaces())
  end)

  it("finds a set not restorable when the Restore fails partway, and still cleans up", function()
    local config = backed_up()
    control("velero", { restore_fail_after = 2 })
    local r, report = drill(config)
    assert.equal(1, r.code)
    assert.equal("PartiallyFailed: restored 2 of 2 items (the backup holds 5), 3 errors",
      component(report, "minio:velero-backup-config").reason)
    assert.same({}, scratch_namespaces())
  end)

  it("finds a database backup not restorable when an object does not match its .md5", function()
    local config, cfg = backed_up()
    local set = json.decode(ckfb("describe", "--latest", "--config", config, "-o", "json").stdout)
    local kfp
    for _, d in ipairs(set.databases) do if d.app == "kfp-db" then kfp = d end end
    local store = assert(s3.client { endpoint = cfg.s3.endpoint, access_key = "AKIDTEST", secret_key = "testsecret" })
    local chunk = kfp.s3_key:gsub("%.md5$", "") .. "/ibdata1.00000000000000000000"
    assert(store:put(kfp.bucket, chunk, { body = "XBSTCK01 not what was backed up" }))
    local r, report = drill(config)
    assert.equal(1, r.code)
    assert.equal("object " .. kfp.backup_id .. "/ibdata1.00000000000000000000 does not match its MD5 in the "
      .. ".md5 file", component(report, "kfp-db").reason)
    assert.is_true(component(report, "katib-db").restorable)
  end)

  it("keeps the scratch namespaces with --keep, and a second drill starts by removing them", function()
    local config = backed_up()
    local r = drill(config, "--keep")
    assert.equal(0, r.code, r.stderr)
    assert.equal(1, #scratch_namespaces())
    local kept = assert(kube():list("restores.velero.io", { namespace = "velero" }))
    assert.equal(4, #kept)
    for _, restore in ipairs(kept) do   -- every namespace mapped away, nothing cluster-wide
      assert.same({ "kubeflow" }, restore.spec.includedNamespaces)
      assert.same({ kubeflow = scratch_namespaces()[1] }, restore.spec.namespaceMapping)
      assert.is_false(restore.spec.includeClusterResources)
      assert.equal("none", restore.spec.existingResourcePolicy)
    end
    local items = assert(kube():list("configmaps", { all_namespaces = true,
      label_selector = "velero.io/restore-name" }))
    assert.equal(20, #items)
    for _, item in ipairs(items) do assert.equal(scratch_namespaces()[1], item.metadata.namespace) end
    local again, report = drill(config)
    assert.equal(0, again.code, again.stderr)
    assert.equal("restorable", report.verdict)
    assert.same({}, scratch_namespaces())
  end)

  it("removes what it made when it is stopped mid-drill (SIGTERM: exit 143)", function()
    local config = backed_up()
    control("velero", { item_delay = 0.5 })   -- each Restore now takes 2.5 s
    local pidfile = TMP .. "/drill.pid"
    os.remove(pidfile)
    local result
    task.all {
      function()
        result = assert(proc.run({ "sh", "-c", 'echo $$ > "$0"; exec "$@"', pidfile, standins.CKFB, "drill",
          "--latest", "--config", config }, { timeout = 120 }))
      end,
      function()
        while #scratch_namespaces() == 0 do task.sleep(0.05) end   -- Velero is restoring into one
        proc.run({ "kill", "-TERM", assert(io.open(pidfile)):read("a"):match("%d+") })
      end,
    }
    os.remove(pidfile)
    assert.equal(143, result.code, result.stderr)
    assert.same({}, scratch_namespaces())
    assert.same({}, assert(kube():list("restores.velero.io", { namespace = "velero" })))
  end)

  it("refuses when Kubernetes cannot be reached, and says a set name is needed", function()
    local unreachable = TMP .. "/drill-unreachable.yaml"
    assert(file.write(unreachable, assert(file.read(backed_up())):gsub("kubeconfig: [^\n]+",
      "kubeconfig: " .. TMP .. "/no-such-kubeconfig")))
    local r = ckfb("drill", "--latest", "--config", unreachable)
    os.remove(unreachable)
    assert.equal(3, r.code)
    assert.matches("^ckfb drill: refused: Kubernetes: .*%(nothing was changed%)\n$", r.stderr)
    local usage = ckfb("drill", "--config", STANDINS .. "/ckfb.yaml")
    assert.equal(2, usage.code)
    assert.equal("ckfb drill: name a backup set (see ckfb list) or give --latest\n", usage.stderr)
  end)
end)
