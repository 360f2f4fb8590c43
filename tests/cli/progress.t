# ckfb backup on a terminal of 80 columns: a live view with a header (stage
# counter, total time), every step with its state and time first, velero's
# second target queued behind the first, timers that tick while a step runs,
# and the Velero Backup's phase and items as it runs, watched through the
# Kubernetes API (the test server's Velero stand-in backs up one item per
# 0.4 s) (run by tests/run, which starts the stand-ins).

$ cp "$CKFB_TEST_TMP/juju-state.standin.json" "$FAKE_JUJU_STATE"
> sed -i 's/"behaviour": {}/"behaviour": {"velero-operator\/create-backup": {"latency": 3}}/' "$FAKE_JUJU_STATE"
> R=./repl-session; export CKFB_TEST_COLUMNS=80
> curl -sf --cacert "$CKFB_TEST_STANDINS/certs/ca.crt" -d '{"items": 8, "item_delay": 0.4}' "$CKFB_TEST_K8S/__control/velero" >/dev/null
> $R start progress backup --config "$CKFB_TEST_STANDINS/ckfb.yaml"
> $R wait progress '^ckfb backup ckf-.*stage 2/4 backup +[0-9]+s elapsed' 20 && echo "header with stage and time"
> $R wait progress '▶ +[0-9]+s +(.* · )?velero create-backup target=minio' 20 && echo "running step shown"
> $R screen progress | grep -qE '⋯ +queued velero create-backup target=mlmd' && echo "next velero target queued"
> $R wait progress '▶ +2s +InProgress [0-9]/8 items · velero create-backup target=minio' 20 && echo "its timer ticks, its Backup's items counted"
> $R wait progress 'backup set ckf-[0-9TZ]+-[0-9a-f]+: ' 120 && $R screen progress | grep -oE 'backup set ckf-[0-9TZ]+-[0-9a-f]+: [a-z]+' | sed 's/ckf-[^:]*/SET/'
> $R screen progress > "$CKFB_TEST_TMP/progress.screen"; $R stop progress
> curl -sf --cacert "$CKFB_TEST_STANDINS/certs/ca.crt" -d '{"items": 5, "item_delay": 0}' "$CKFB_TEST_K8S/__control/velero" >/dev/null
> grep -cE '^ ✓ +[0-9]+s +[a-z]' "$CKFB_TEST_TMP/progress.screen"; rm "$CKFB_TEST_TMP/progress.screen"
header with stage and time
running step shown
next velero target queued
its timer ticks, its Backup's items counted
backup set SET: complete
18
