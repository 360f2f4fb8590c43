# Sourced by tests/run and demo/run: starts the local stand-ins for a real
# CKF (the Kubernetes API test server, the S3 server, the juju emulator) in
# $STANDINS (a directory that must exist) and exports what points ckfb and
# the tests at them (HOME among them: see below). Every process started is
# listed in $standin_pids.
standin_pids=()

# start_server NAME COMMAND...: runs a server in the background, with the word
# PORTFILE in COMMAND replaced by the file where it writes its port, and sets
# $port once it listens.
start_server() {
  local name=$1; shift
  local portfile=$STANDINS/$name.port args=()
  for a in "$@"; do args+=("${a/#PORTFILE/$portfile}"); done
  "${args[@]}" > "$STANDINS/$name.log" 2>&1 &
  standin_pids+=($!)
  for _ in $(seq 200); do
    if [ -s "$portfile" ]; then port=$(cat "$portfile"); return; fi
    sleep 0.05
  done
  echo "the $name stand-in did not start:" >&2
  cat "$STANDINS/$name.log" >&2
  return 1
}

stop_standins() {
  for pid in "${standin_pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  standin_pids=()
}

# start_standins: certificates, Kubernetes, S3, and a juju emulator state
# wired to that S3 server; writes $STANDINS/kubeconfig and $STANDINS/ckfb.yaml.
start_standins() {
  local here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  "$here/servers/make-certs" "$STANDINS/certs" || return 1
  start_server k8s /usr/bin/python3 "$here/servers/kube_apiserver.py" PORTFILE "$STANDINS/certs/server.crt" \
    "$STANDINS/certs/server.key" "$STANDINS/certs/ca.crt" --pods 30 --profiles 1 || return 1
  export CKFB_TEST_K8S=https://127.0.0.1:$port
  cat > "$STANDINS/kubeconfig" <<YAML
apiVersion: v1
kind: Config
current-context: standin
clusters: [{name: standin, cluster: {server: "$CKFB_TEST_K8S", certificate-authority: "$STANDINS/certs/ca.crt"}}]
users: [{name: admin, user: {token: admin-token}}]
contexts: [{name: standin, context: {cluster: standin, user: admin, namespace: kubeflow}}]
YAML
  mkdir -p "$STANDINS/s3data"
  S3_BUCKETS=ckf-db-backups,ckf-velero start_server s3rver node --openssl-legacy-provider \
    "$here/servers/s3rver/start.js" PORTFILE "$STANDINS/s3data" || return 1
  export CKFB_TEST_S3=http://127.0.0.1:$port
  export CKFB_JUJU=$here/emulators/juju
  # The emulator is a strictly confined juju snap (its state's "snap"): it reads
  # only non-hidden files under $HOME. A home of the stand-ins' own, where the
  # juju snap has run (~/snap/juju exists, as the snap makes it on first use).
  export HOME=$STANDINS/home
  mkdir -p "$HOME/snap/juju"
  export FAKE_JUJU_STATE=$STANDINS/juju-state.json FAKE_JUJU_LOG=$STANDINS/juju-calls.log
  /usr/bin/python3 - "$here/emulators/ckf-state.json" "$FAKE_JUJU_STATE" "$CKFB_TEST_S3" "$CKFB_TEST_K8S" \
    "$STANDINS/certs/ca.crt" <<'PY'
import json, sys
state = json.load(open(sys.argv[1]))
endpoint = sys.argv[3]
state["s3"] = {"endpoint": endpoint, "access_key": "AKIDTEST", "secret_key": "testsecret"}
state["k8s"] = {"server": sys.argv[4], "ca": sys.argv[5], "token": "admin-token"}
for model in state["models"].values():
    for app in model["applications"].values():
        if app["charm"] == "s3-integrator":
            app["config"]["endpoint"] = endpoint
json.dump(state, open(sys.argv[2], "w"), indent=1)
PY
  cat > "$STANDINS/ckfb.yaml" <<YAML
# ckfb's configuration for the local stand-ins (see README: Configuration).
kubernetes:
  kubeconfig: $STANDINS/kubeconfig
s3:
  endpoint: $CKFB_TEST_S3
  bucket: testbkt
  prefix: ckfb/
  access_key: AKIDTEST
  secret_key: testsecret
state_dir: $STANDINS/state
poll: 0.2
YAML
}
