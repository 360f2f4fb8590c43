-- Operating ckfb: quiet runs, metrics for Prometheus, the version and help an
-- operator expects, and the Debian package (man pages, completions, systemd
-- units), against the stand-ins tests/run starts.
local proc = require "ckfb.proc"
local json = require "ckfb.json"
local file = require "ckfb.file"
local fake = require "tests.stdlib.ckfb.helpers.fake_juju"

local standins = require "tests.stdlib.ckfb.helpers.standins"
local CKFB, TMP, STANDINS, STATE, ckfb = standins.CKFB, standins.TMP, standins.STANDINS, standins.STATE, standins.ckfb

local function have(program)
  return assert(proc.run({ "sh", "-c", "command -v " .. program })).code == 0
end

-- The Pushgateway tests/run starts where Debian's prometheus-pushgateway is installed.
local PUSHGATEWAY = os.getenv("CKFB_TEST_PUSHGATEWAY")

--- The stand-ins' configuration with a metrics textfile, the Pushgateway if there is one,
-- its own state directory, and extra lines.
local function config_with_metrics(prom, extra)
  local text = assert(file.read(STANDINS .. "/ckfb.yaml"))
  text = text:gsub("state_dir: [^\n]+", "state_dir: " .. TMP .. "/ops-state")
    .. "metrics: {textfile: " .. prom .. (PUSHGATEWAY and ", pushgateway: " .. PUSHGATEWAY or "") .. "}\n"
  return assert(file.write(TMP .. "/ops.yaml", text .. (extra or ""))) and TMP .. "/ops.yaml"
end

--- What the Pushgateway serves now (its /metrics).
local function pushed()
  local r = assert(require("ckfb.http").get(PUSHGATEWAY .. "/metrics"))
  assert.equal(200, r.status)
  return r.body
end

--- The value of a sample, its name and labels given as they are written.
local function sample(text, series)
  return tonumber(text:match("\n" .. series:gsub("%p", "%%%0") .. " (%S+)"))
end

describe("operating ckfb", function()
  before_each(function() fake.reset(nil, STATE) end)
  after_each(function() proc.run({ "rm", "-rf", TMP .. "/ops-state", TMP .. "/ops.yaml", TMP .. "/ckfb.prom" }) end)

  it("prints nothing with -q when the backup succeeds, and one line when it does not", function()
    local ok = ckfb("-q", "backup", "--config", STANDINS .. "/ckfb.yaml")
    assert.equal(0, ok.code, ok.stderr)
    assert.equal("", ok.stdout)
    assert.equal("", ok.stderr)
    fake.edit(function(state)
      state.behaviour["velero-operator/create-backup/mlmd:velero-backup-config"] = { fail = "Velero Backup failed" }
    end)
    local partial = ckfb("-q", "backup", "--config", STANDINS .. "/ckfb.yaml")
    assert.equal(4, partial.code)
    assert.matches("^ckfb backup: set ckf%-%S+ partial: mlmd:velero%-backup%-config, "
      .. "kubeflow%-profiles:profiles%-backup%-config, kubeflow%-profiles:user%-workloads%-backup%-config "
      .. "not backed up\n$", partial.stderr)
  end)

  it("writes metrics a Prometheus textfile collector accepts, for a success, a partial and a refusal", function()
    local prom = TMP .. "/ckfb.prom"
    local config = config_with_metrics(prom)
    local function run_and_check(expected_code, status)
      assert.equal(expected_code, ckfb("-q", "backup", "--config", config).code)
      local text = assert(file.read(prom))
      assert.equal(1, sample(text, 'ckfb_backup_last_run_status{deployment="kubeflow",status="' .. status .. '"}'))
      if have("promtool") then
        local check = assert(proc.run({ "promtool", "check", "metrics" }, { stdin = text }))
        assert.equal(0, check.code, check.stdout .. check.stderr)
      end
      if PUSHGATEWAY then  -- the same run, pushed: it replaced the last one's group
        local group = 'deployment="kubeflow",instance="",job="ckfb",status="'
        local on_gateway = pushed()
        assert.equal(1, sample(on_gateway, "ckfb_backup_last_run_status{" .. group .. status .. '"}'), on_gateway)
        assert.is_number(sample(on_gateway, 'push_time_seconds{deployment="kubeflow",instance="",job="ckfb"}'))
        for _, other in ipairs { "complete", "partial", "refused" } do
          if other ~= status then
            assert.equal(0, sample(on_gateway, "ckfb_backup_last_run_status{" .. group .. other .. '"}'))
          end
        end
      end
      return text
    end
    local first = run_and_check(0, "complete")
    assert.equal(1, sample(first, 'ckfb_backup_sets{deployment="kubeflow",status="complete"}'))
    local success = sample(first, 'ckfb_backup_last_success_timestamp_seconds{deployment="kubeflow"}')
    assert.is_true(math.abs(success - os.time()) < 120)
    assert.truthy(first:find('ckfb_backup_step_duration_seconds{deployment="kubeflow",step="backup kfp-db"}', 1, true))
    fake.edit(function(state)
      state.behaviour["velero-operator/create-backup/mlmd:velero-backup-config"] = { fail = "Velero Backup failed" }
    end)
    local partial = run_and_check(4, "partial")
    assert.equal(success, sample(partial, 'ckfb_backup_last_success_timestamp_seconds{deployment="kubeflow"}'))
    fake.edit(function(state) state.models.kubeflow.applications["kfp-db"].status = "blocked" end)
    run_and_check(3, "refused")
    if not have("promtool") then pending("promtool is not installed here: the format was not checked by it") end
    if not PUSHGATEWAY then pending("prometheus-pushgateway is not installed here: nothing was pushed") end
  end)

  it("says its version and each command's help as operators expect", function()
    local v = ckfb("version")
    assert.matches("^ckfb %d+%.%d+%.%d+ %(commit %S+, Lua 5%.4%)\n$", v.stdout)
    assert.equal(v.stdout, ckfb("--version").stdout)
    assert.equal(ckfb("backup", "--help").stdout, ckfb("help", "backup").stdout)
    assert.matches("^usage: ckfb %[options%] COMMAND", ckfb("help").stdout)
    assert.equal(ckfb("help").stdout, ckfb("--help").stdout)
    local bad = ckfb("help", "frobnicate")
    assert.equal(2, bad.code)
    assert.matches("no command 'frobnicate'", bad.stderr)
  end)

  it("generates man pages and completions from the options each command declares", function()
    local out = TMP .. "/docs"
    assert.equal(0, ckfb("tools/docs.lua", out).code)
    for _, page in ipairs { "ckfb", "ckfb-backup", "ckfb-restore", "ckfb-list", "ckfb-prune", "ckfb-drill" } do
      local r = assert(proc.run({ "man", "--warnings", "-l", out .. "/man/" .. page .. ".1" },
        { env = { MANPAGER = "cat", MANWIDTH = "80" } }))
      assert.equal(0, r.code, page)
      assert.equal("", r.stderr, page)
    end
    local backup_man = assert(file.read(out .. "/man/ckfb-backup.1"))
    local spec = json.decode(ckfb("backup", "--options-json").stdout)
    for _, o in ipairs(spec.options) do assert.truthy(backup_man:find(o.flag:gsub("%-", "\\-"), 1, true), o.flag) end
    local complete = assert(proc.run({ "bash", "-c", 'source "$0"; COMP_WORDS=(ckfb backup --dr); COMP_CWORD=2; '
      .. '_ckfb; echo "${COMPREPLY[*]}"; COMP_WORDS=(ckfb pr); COMP_CWORD=1; _ckfb; echo "${COMPREPLY[*]}"',
      out .. "/bash/ckfb" }))
    assert.equal("--dry-run\nprune\n", complete.stdout)
    proc.run({ "rm", "-rf", out })
  end)

  it("builds a Debian package whose systemd units verify and which lintian passes", function()
    local out = TMP .. "/deb"
    assert(file.mkdir_p(out))
    local built = assert(proc.run({ "packaging/build-deb", CKFB, out }, { timeout = 120 }))
    assert.equal(0, built.code, built.stderr)
    local deb = built.stdout:match("(%S+%.deb)")
    local info = assert(proc.run({ "dpkg-deb", "-I", deb })).stdout
    assert.matches("Depends: libc6 %(>= [%d.]+%), libyaml%-0%-2, libcurl4 %(>= 7%.88%), libedit2", info)
    local root = out .. "/root"
    assert.equal(0, assert(proc.run({ "dpkg-deb", "-x", deb, root })).code)
    assert(proc.run({ "cp", "-r", "/lib/systemd/system", root .. "/lib/systemd/system-host" }))
    assert(proc.run({ "sh", "-c", 'cp -rn "$0"/lib/systemd/system-host/. "$0"/lib/systemd/system/', root }))
    local verify = assert(proc.run({ "systemd-analyze", "verify", "--man=no", "--root=" .. root,
      "ckfb-backup.timer", "ckfb-backup.service", "ckfb-drill.timer", "ckfb-drill.service" }))
    assert.equal(0, verify.code, verify.stderr)
    assert.equal("", verify.stderr)
    if have("lintian") then
      local lint_tmp = out .. "/lintian-tmp"   -- lintian leaves files in its TMPDIR
      assert(file.mkdir_p(lint_tmp))
      local lint = assert(proc.run({ "lintian", "--fail-on", "error,warning", deb },
        { timeout = 300, env = { TMPDIR = lint_tmp } }))
      assert.equal(0, lint.code, lint.stdout .. lint.stderr)
    end
    proc.run({ "rm", "-rf", out })
    if not have("lintian") then pending("lintian is not installed here: the package was not checked by it") end
  end)

  it("lists and describes sets in the same words, from the local manifests when S3 is down", function()
    local config = config_with_metrics(TMP .. "/ckfb.prom")
    assert.equal(0, ckfb("-q", "backup", "--config", config).code)
    local listed = ckfb("list", "--config", config)
    assert.equal(0, listed.code, listed.stderr)
    assert.matches("\nckf%-%S+ +complete +%d+m +local%+s3 +minio ok, mlmd ok, profiles ok, user%-workloads ok, "
      .. "kfp%-db ok, katib%-db ok\n", listed.stdout)
    local described = ckfb("describe", "--latest", "--config", config)
    assert.equal(0, described.code, described.stderr)
    assert.matches("^set ckf%-%S+: complete, %d+m old, stored local%+s3\n", described.stdout)
    assert.matches("\n  kfp%-db +ok +%d%d%d%d%-%d%d%-%d%dT%S+ +on kfp%-db/%d, s3://ckf%-db%-backups/kfp%-db/%S+%.md5 "
      .. "%(%d+ bytes%)\n", described.stdout)
    assert.matches("\n  minio +ok +minio%-velero%-backup%-config%-%w+ +expires in 30%.0 days", described.stdout)
    -- S3 down: the same sets, from here, with a warning
    local down = assert(file.read(config)):gsub("endpoint: [^\n]+", "endpoint: http://127.0.0.1:1", 1)
    assert(file.write(TMP .. "/ops-down.yaml", down))
    local offline = ckfb("list", "--config", TMP .. "/ops-down.yaml")
    assert.equal(0, offline.code, offline.stderr)
    assert.matches("S3 is unreachable", offline.stderr)
    assert.matches("\nckf%-%S+ +complete +%d+m +local ", offline.stdout)
    assert.equal(0, ckfb("describe", "--latest", "--config", TMP .. "/ops-down.yaml").code)
    local dry = ckfb("restore", "--latest", "--dry-run", "--config", TMP .. "/ops-down.yaml")
    assert.equal(0, dry.code, dry.stderr)
    os.remove(TMP .. "/ops-down.yaml")
  end)

  it("prints every command's result as a table, JSON or YAML, with --format or -o", function()
    local yaml = require "ckfb.yaml"
    local config = config_with_metrics(TMP .. "/ckfb.prom")
    assert.equal(0, ckfb("-q", "backup", "--config", config).code)
    local commands = { { "list" }, { "describe", "--latest" }, { "version" }, { "prune", "--keep", "9" },
      { "backup", "--dry-run" }, { "restore", "--latest", "--dry-run" } }
    for _, command in ipairs(commands) do
      local function run(...)
        local args = { table.unpack(command) }
        if command[1] ~= "version" then table.move({ "--config", config }, 1, 2, #args + 1, args) end
        local r = ckfb(table.unpack(table.move({ ... }, 1, select("#", ...), #args + 1, args)))
        assert.equal(0, r.code, command[1] .. ": " .. r.stderr)
        return r.stdout
      end
      local as_json, as_yaml = json.decode(run("-o", "json")), yaml.decode(run("--format", "yaml"))
      assert.same(json.decode(run("--json")), as_json)
      if command[1] == "backup" or command[1] == "restore" then  -- the plan, whose checks carry times
        as_json, as_yaml = as_json.plan, as_yaml.plan
      end
      assert.same(as_json, as_yaml, command[1])
      local parsed, value = pcall(json.decode, run("--format=table"))
      assert.is_true(not parsed or value == nil, command[1] .. " prints a table for people")
      local bad = ckfb(command[1], "-o", "xml")
      assert.equal(2, bad.code)
      assert.matches("^ckfb " .. command[1] .. ": unknown format 'xml' %(table, json or yaml%)[^\n]*\n$", bad.stderr)
    end
  end)

  it("writes every line of stderr as one JSON object with --log-format json", function()
    local function objects(stderr)
      local list = {}
      for line in stderr:gmatch("[^\n]+") do
        local o = json.decode(line)
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", o.time, line)
        assert.is_string(o.msg, line)
        list[#list + 1] = o
      end
      return list
    end
    local ok = ckfb("--log-format", "json", "backup", "--config", STANDINS .. "/ckfb.yaml")
    assert.equal(0, ok.code, ok.stderr)
    local seen = {}
    for _, o in ipairs(objects(ok.stderr)) do seen[o.level .. " " .. o.msg:match("^[^\n]*")] = true end
    assert.is_true(seen["info preflight:"], ok.stderr)                   -- the table is one object
    local summary
    for line in pairs(seen) do summary = summary or line:match("^info backup set ckf%-%S+: complete$") end
    assert.truthy(summary, ok.stderr)
    local bad = proc.run({ CKFB, "describe", "no-such-set", "--config", STANDINS .. "/ckfb.yaml" },
      { env = { CKFB_LOG_FORMAT = "json" }, timeout = 60 })
    assert.equal(2, bad.code)
    local errs = objects(bad.stderr)
    assert.equal(1, #errs, bad.stderr)
    assert.equal("error", errs[1].level)
    assert.matches("^ckfb describe: ", errs[1].msg)
    local unknown = ckfb("--log-format=xml", "version")
    assert.equal(2, unknown.code)
    assert.equal("ckfb: unknown log format 'xml' (text or json) (try 'ckfb --help')\n", unknown.stderr)
  end)

  it("takes -m for the Kubeflow model, as juju does", function()
    local r = ckfb("backup", "-m", "no-such-model", "--config", STANDINS .. "/ckfb.yaml")
    assert.equal(3, r.code)
    assert.matches("model 'no%-such%-model' not found", r.stderr)
  end)

  it("reads JSON whole numbers as integers (a pid is 30356, not 30356.0)", function()
    local r = ckfb("-e", [[local v = require("ckfb.json").decode('{"pid": 30356, "ratio": 0.5}')
print(v.pid, math.type(v.pid), v.ratio)]])
    assert.equal("30356\tinteger\t0.5\n", r.stdout)
  end)

  it("has the prompt's globals in ckfb -e, tells a script which module to require, and help at the prompt", function()
    assert.equal('{"a":1}\n', ckfb("-e", "print(json.encode({a = 1}))").stdout)
    local script = TMP .. "/needs-json.lua"
    assert(file.write(script, "print(json.encode({}))\n"))
    local r = ckfb(script)
    os.remove(script)
    assert.equal(1, r.code)
    assert.matches("undeclared global 'json' %(local json = require \"ckfb%.json\"", r.stderr)
    local prompt = assert(proc.run({ CKFB }, { stdin = "help\n", timeout = 30 }))
    assert.matches("^The prompt runs Lua 5%.4 with ckfb's bindings ready as globals", prompt.stdout)
  end)

  it("ships a CronJob set (service account, least-privilege roles) the API server accepts", function()
    local kubectl = function(...)
      return assert(proc.run({ "kubectl", "--kubeconfig", STANDINS .. "/kubeconfig", ... },
        { env = { HOME = TMP }, timeout = 60 }))
    end
    local r = kubectl("apply", "--dry-run=server", "--validate=false", "-f", "examples/kubernetes/ckfb-cronjob.yaml")
    assert.equal(0, r.code, r.stderr)
    for _, object in ipairs { "serviceaccount/ckfb", "clusterrole.rbac.authorization.k8s.io/ckfb-preflight",
      "role.rbac.authorization.k8s.io/ckfb", "cronjob.batch/ckfb-backup" } do
      assert.truthy(r.stdout:find(object .. " created (server dry run)", 1, true), object .. "\n" .. r.stdout)
    end
    local drill = kubectl("apply", "--dry-run=server", "--validate=false", "-f",
      "examples/kubernetes/ckfb-drill-cronjob.yaml")
    assert.equal(0, drill.code, drill.stderr)
    for _, object in ipairs { "serviceaccount/ckfb-drill", "role.rbac.authorization.k8s.io/ckfb-drill",
      "clusterrole.rbac.authorization.k8s.io/ckfb-drill", "cronjob.batch/ckfb-drill" } do
      assert.truthy(drill.stdout:find(object .. " created (server dry run)", 1, true), object .. "\n" .. drill.stdout)
    end
    assert.equal("", kubectl("get", "cronjobs", "-n", "kubeflow", "-o", "name").stdout)   -- a dry run kept nothing
  end)

  it("backs up several deployments at once, each with its own set and lock", function()
    fake.edit(function(state)
      local function copy(v) return json.decode(json.encode(v)) end
      state.models["kubeflow-b"], state.models["velero-b"] = copy(state.models.kubeflow), copy(state.models.velero)
      for _, app in pairs(state.models["kubeflow-b"].applications) do
        if app.charm == "s3-integrator" then app.config.path = app.config.path .. "-b" end
      end
    end)
    local text = assert(file.read(STANDINS .. "/ckfb.yaml"))
      :gsub("state_dir: [^\n]+", "state_dir: " .. TMP .. "/ops-state")
    local config = TMP .. "/ops-two.yaml"
    assert(file.write(config, text .. "deployments:\n  - models: {kubeflow: kubeflow, velero: velero}\n"
      .. "  - models: {kubeflow: kubeflow-b, velero: velero-b}\n" .. "metrics: {textfile: " .. TMP .. "/ckfb.prom}\n"))
    local r = ckfb("-q", "backup", "--config", config, "-o", "json", "--report", TMP .. "/ops-two.json")
    os.remove(config)
    assert.equal(0, r.code, r.stderr)
    assert.equal("", r.stderr)
    local reports = json.decode(r.stdout)                -- one JSON document: a report per deployment
    assert.equal(2, #reports)
    assert.are_not.equal(reports[1].id, reports[2].id)
    assert.same(reports, json.decode(assert(file.read(TMP .. "/ops-two.json"))))
    os.remove(TMP .. "/ops-two.json")
    local models = {}
    for _, name in ipairs(require("ckfb.core.sys").listdir(TMP .. "/ops-state/sets")) do
      local m = json.decode(assert(file.read(TMP .. "/ops-state/sets/" .. name)))
      assert.equal("complete", m.status)
      models[#models + 1] = m.models.kubeflow .. "/" .. m.models.velero
    end
    table.sort(models)
    assert.same({ "kubeflow-b/velero-b", "kubeflow/velero" }, models)
    local prom = assert(file.read(TMP .. "/ckfb.prom"))     -- one textfile: both deployments, each its own sets
    for _, dep in ipairs { "kubeflow", "kubeflow-b" } do
      assert.equal(1, sample(prom, 'ckfb_backup_last_run_status{deployment="' .. dep .. '",status="complete"}'), prom)
      assert.equal(1, sample(prom, 'ckfb_backup_sets{deployment="' .. dep .. '",status="complete"}'), prom)
    end
    if have("promtool") then
      local check = assert(proc.run({ "promtool", "check", "metrics" }, { stdin = prom }))
      assert.equal(0, check.code, check.stdout .. check.stderr)
    end
    local bad = ckfb("backup", "--config", (function()
      assert(file.write(TMP .. "/ops-bad.yaml", text .. "deployments:\n  - {models: {kubeflow: x}}\n"))
      return TMP .. "/ops-bad.yaml"
    end)())
    os.remove(TMP .. "/ops-bad.yaml")
    assert.equal(2, bad.code)
    assert.matches("deployments%[1%] must give models: {kubeflow: %.%.%., velero: %.%.%.}", bad.stderr)
  end)
end)
