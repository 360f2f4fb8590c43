# An exec credential plugin that prompts, as kubelogin's device-code login does
# (AKS with Entra ID): with interactiveMode Always, on a terminal, its prompt
# (on stderr) reaches the operator and it reads the answer from the terminal
# (client-go plugin/pkg/client/auth/exec/exec.go). Run by tests/run, which
# starts the Kubernetes test server.

$ D=$(mktemp -d) R=./repl-session
> printf '%s\n' '#!/bin/sh' 'printf "To sign in, enter the code shown: " >&2' 'read code' \
>   '[ "$code" = "ABCD-1234" ] || exit 4' \
>   'echo "{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"admin-token\"}}"' > "$D/login.sh"
> chmod +x "$D/login.sh"
> printf '%s\n' 'apiVersion: v1' 'kind: Config' 'current-context: t' \
>   "clusters: [{name: c, cluster: {server: \"$CKFB_TEST_K8S\", certificate-authority: \"$CKFB_TEST_CERTS/ca.crt\"}}]" \
>   'users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: ./login.sh, interactiveMode: Always}}}]' \
>   'contexts: [{name: t, context: {cluster: c, user: u}}]' > "$D/config"
> printf '%s\n' 'local c = assert(require("ckfb.k8s").client { kubeconfig = os.getenv("KC") })' \
>   'print("signed in: " .. assert(c:get("namespaces", "kubeflow")).metadata.name)' > "$D/login.lua"
> export KC=$D/config
> $R start login "$D/login.lua"
> $R wait login 'To sign in, enter the code shown:' 20 && echo "the prompt reached the terminal"
> $R type login ABCD-1234
> $R wait login '^signed in: kubeflow$' 20 && echo "the answer reached the plugin"
> $R stop login; rm -rf "$D"
the prompt reached the terminal
the answer reached the plugin
