# ckfb backup on a terminal: a live view of every step, its state and elapsed
# time, redrawn in place (run by tests/run, which starts the stand-ins).

$ cp "$CKFB_TEST_TMP/juju-state.standin.json" "$FAKE_JUJU_STATE"
> sed -i 's/"behaviour": {}/"behaviour": {"velero-operator\/create-backup": {"latency": 1}}/' "$FAKE_JUJU_STATE"
> R=./repl-session
> $R start progress backup --config "$CKFB_TEST_STANDINS/ckfb.yaml"
> $R wait progress '… velero create-backup target=minio' 20 && echo "running steps shown"
> $R wait progress 'backup set ckf-[0-9TZ]+-[0-9a-f]+: complete' 30 && echo "finished"
> $R screen progress | grep -cE '^ ✓ .* [0-9]+\.[0-9]s'
> $R stop progress
running steps shown
finished
18
