-- ckfb.ckf: the rules read from the CKF charms' and juju's sources, one by one.
local ckf = require "ckfb.ckf"

describe("ckfb.ckf", function()
  it("needs three mysql-k8s units from rev 300, two before, and never less than configured", function()
    assert.equal(2, (ckf.mysql.units_needed({ ["charm-rev"] = 299 }, 2)))
    assert.equal(3, (ckf.mysql.units_needed({ ["charm-rev"] = 300 }, 2)))
    assert.equal(3, (ckf.mysql.units_needed({ ["charm-rev"] = 313.0 }, 0)))   -- JSON numbers arrive as floats
    assert.equal(2, (ckf.mysql.units_needed({}, 0)))                          -- no revision: the charm will say
    assert.equal(5, (ckf.mysql.units_needed({ ["charm-rev"] = 313 }, 5)))
    local _, why = ckf.mysql.units_needed({ ["charm-rev"] = 313 }, 2)
    assert.matches("rev 313 backs up only a healthy cluster", why)
  end)

  it("reads the S3 block a restore leaves, and nothing else, from an application's status", function()
    local function app(current, message)
      return { ["application-status"] = { current = current, message = message } }
    end
    assert.equal("Move restored cluster to another S3 repository",
      ckf.mysql.s3_block(app("blocked", "Move restored cluster to another S3 repository")))
    assert.equal("S3 repository claimed by another cluster",
      ckf.mysql.s3_block(app("blocked", "S3 repository claimed by another cluster")))
    assert.is_nil(ckf.mysql.s3_block(app("blocked", "Missing relation")))
    assert.is_nil(ckf.mysql.s3_block(app("active")))
    assert.is_nil(ckf.mysql.s3_block(nil))
  end)

  it("parses mysql-k8s list-backups, every status, 'in progress' included", function()
    local text = table.concat({
      "backup-id             | backup-type  | backup-status",
      "----------------------------------------------------",
      "2026-01-01T10:00:00Z  | physical     | finished",
      "2026-01-02T10:00:00Z  | physical     | failed",
      "2026-01-03T10:00:00Z  | physical     | in progress",
    }, "\n")
    assert.same({ ["2026-01-01T10:00:00Z"] = "finished", ["2026-01-02T10:00:00Z"] = "failed",
      ["2026-01-03T10:00:00Z"] = "in progress" }, ckf.mysql.parse_backups(text))
    assert.same({}, ckf.mysql.parse_backups(nil))
  end)

  it("keys backups as the charms write them: velero under the path, mysql beside its id", function()
    assert.equal("velero/backups/b1/velero-backup.json", ckf.velero.key("/velero/", "b1"))
    assert.equal("backups/b1/velero-backup.json", ckf.velero.key("", "b1"))
    assert.equal("a/b/2026-01-01T10:00:00Z.md5", ckf.mysql.key("a/b/", "2026-01-01T10:00:00Z"))
  end)

  it("gates storage import on Kubernetes below juju 3.6.12 unless the client has the flag", function()
    assert.matches("k8s%-attach%-storage feature flag", ckf.storage_import_gate("3.6.8-genericlinux-amd64"))
    assert.matches("k8s%-attach%-storage feature flag", ckf.storage_import_gate("3.6.11"))
    assert.matches("k8s%-attach%-storage feature flag", ckf.storage_import_gate("2.9.49"))
    assert.is_nil(ckf.storage_import_gate("3.6.12-genericlinux-amd64"))
    assert.is_nil(ckf.storage_import_gate("3.7.0"))
    assert.is_nil(ckf.storage_import_gate("4.0.1"))
    assert.is_nil(ckf.storage_import_gate("3.6.8", "developer-mode,k8s-attach-storage"))
    assert.matches("cannot read the juju version", ckf.storage_import_gate("latest"))
  end)

  it("finds a target's endpoint in juju status, or names the charm version that has it", function()
    local status = { applications = {
      minio = { ["charm-channel"] = "ckf-1.10/stable", ["charm-rev"] = 400.0,
        ["endpoint-bindings"] = { [""] = "alpha" } },
      mlmd = { ["endpoint-bindings"] = { [""] = "alpha", ["velero-backup-config"] = "alpha" } },
    } }
    assert.is_nil(ckf.missing_endpoint(status, "mlmd:velero-backup-config"))
    assert.equal("minio (ckf-1.10/stable rev 400) has no velero-backup-config endpoint; it is in "
      .. ckf.ENDPOINT_SINCE["minio:velero-backup-config"], ckf.missing_endpoint(status, "minio:velero-backup-config"))
    assert.equal("kubeflow-profiles is not deployed",
      ckf.missing_endpoint(status, "kubeflow-profiles:profiles-backup-config"))
  end)

  it("reads UTC timestamps and set ids", function()
    assert.equal(0, ckf.epoch("1970-01-01T00:00:00Z"))
    assert.equal(86400 + 3661, ckf.epoch("19700102T010101Z"))
    assert.is_nil(ckf.epoch("yesterday"))
  end)

  it("reads a Velero Backup's phase and items as backup_types.go defines them", function()
    assert.equal("InProgress 2/7 items",
      ckf.velero.progress { status = { phase = "InProgress", progress = { totalItems = 7, itemsBackedUp = 2 } } })
    assert.equal("InProgress 0/7 items", ckf.velero.progress { status = { phase = "InProgress",
      progress = { totalItems = 7.0 } } })
    assert.equal("New", ckf.velero.progress { metadata = {} })
    assert.equal("Completed", ckf.velero.progress { status = { phase = "Completed", progress = "junk" } })
    assert.equal("New", ckf.velero.progress("junk"))
  end)
end)
