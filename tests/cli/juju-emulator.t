# The juju emulator (tests/emulators/juju) answers as Juju 3.6 does
# (../shared/reference/juju-and-charms.md §1-§4, §12, §13). These pin its formats.

$ export FAKE_JUJU_STATE=$(mktemp) FAKE_JUJU_LOG=/dev/null; cp ../emulators/ckf-state.json $FAKE_JUJU_STATE
> J=../emulators/juju
> $J run -m kubeflow kfp-db/leader list-backups --format json 2>&1 >/dev/null
> $J run -m kubeflow kfp-db/9 list-backups --format json; echo "exit $?"
> $J run -m kubeflow kfp-db/0 frobnicate --format json 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
> $J status -m nope --format json; echo "exit $?"
> $J scale-application -m kubeflow kfp-db 2
> $J run -m kubeflow kfp-db/1 create-backup --format json 2>/dev/null | grep -o '"message":"[^"]*"'
> $J scale-application -m kubeflow kfp-db 3
> $J run -m kubeflow kfp-db/0 create-backup --format json 2>/dev/null | grep -o '"message":"[^"]*","results":{"return-code":0},"status":"failed"'
> echo '{"model": "kubeflow"}' > $FAKE_JUJU_STATE.params; $J run -m velero velero-operator/0 list-backups --params $FAKE_JUJU_STATE.params; echo "exit $?"; rm $FAKE_JUJU_STATE.params
> $J run -m velero velero-operator/0 restore --format json 2>&1; echo "exit $?"
> $J storage -m velero --format json; echo "exit $?"
> $J offer velero.velero-operator:velero-backups velero-backups
> $J consume -m kubeflow velero.velero-backups
> $J integrate -m kubeflow minio velero-backups; $J integrate -m kubeflow minio velero-backups; echo "exit $?"
> rm -f $FAKE_JUJU_STATE
Running operation 100 with 1 task
  - task 101 on unit-kfp-db-0
(blank)
Waiting for task 101...
Operation 102 failed to schedule any tasks:
unit "kfp-db/9" not found
exit 0
action "frobnicate" not defined on unit "kfp-db/0"
exit 0
{}
ERROR model microk8s-localhost:admin/nope not found
exit 1
kfp-db scaled to 2 units
"message":"Cluster is not in a healthy state"
kfp-db scaled to 3 units
"message":"Unit cannot perform backups as it is the cluster primary","results":{"return-code":0},"status":"failed"
ERROR open /tmp/(.*/)?tmp\.[A-Za-z0-9]+\.params: no such file or directory (re)
exit 1
Operation 110 failed to schedule any tasks:
validation failed: (root) : backup-uid is required
exit 0
exit 0
Application "velero-operator" endpoints [velero-backups] available at "admin/velero.velero-backups"
Added admin/velero.velero-backups as velero-backups
ERROR cannot add relation "minio:velero-backup-config velero-backups:velero-backups": relation minio:velero-backup-config velero-backups:velero-backups (already exists)
(blank)
Use 'juju status --relations' to view the current relations.
exit 1
