# The bad-input catalogue: each bad input gets one clear line naming the
# problem and a non-zero exit, never a crash (also under the sanitizer build).

# Command lines.
$ ckfb --frobnicate
ckfb: unknown option '--frobnicate' (try 'ckfb --help')
[2]

$ ckfb -l
ckfb: option '-l' needs an argument (try 'ckfb --help')
[2]

$ ckfb backup --frobnicate
ckfb backup: unknown option '--frobnicate' (try 'ckfb backup --help')
[2]

$ ckfb backup --config
ckfb backup: option '--config' needs a value (FILE) (try 'ckfb backup --help')
[2]

$ ckfb backup --config does-not-exist.yaml
ckfb backup: cannot read the configuration: does-not-exist.yaml: No such file or directory (try 'ckfb backup --help')
[2]

$ ckfb restore
ckfb restore: name a backup set (see ckfb list) or give --latest
[2]

$ ckfb prune --keep many
ckfb prune: --keep takes a number of complete sets to keep, at least 1 (try 'ckfb prune --help')
[2]

$ ckfb prune --older-than 3 --yes
ckfb prune: --older-than takes a duration such as 30d, 12h or 2w (try 'ckfb prune --help')
[2]

# Configuration files.
$ ckfb backup --config fixtures/bad/unknown-key.yaml
ckfb backup: fixtures/bad/unknown-key.yaml: unknown key 'models.velro' (try 'ckfb backup --help')
[2]

$ ckfb backup --config fixtures/bad/nested-unknown.yaml
ckfb backup: fixtures/bad/nested-unknown.yaml: unknown key 'velero.apps' (try 'ckfb backup --help')
[2]

$ ckfb backup --config fixtures/bad/wrong-type.yaml
ckfb backup: fixtures/bad/wrong-type.yaml: poll must be a number, not a string (try 'ckfb backup --help')
[2]

$ ckfb backup --config fixtures/bad/not-mapping.yaml
ckfb backup: fixtures/bad/not-mapping.yaml: the configuration must be a mapping, not a list (try 'ckfb backup --help')
[2]

$ ckfb backup --config fixtures/bad/targets-string.yaml
ckfb backup: fixtures/bad/targets-string.yaml: targets must be a list, not a string (try 'ckfb backup --help')
[2]

$ ckfb backup --config fixtures/bad/s3-number.yaml
ckfb backup: fixtures/bad/s3-number.yaml: s3 must be a mapping (try 'ckfb backup --help')
[2]

$ ckfb backup --config fixtures/bad/malformed.yaml
ckfb backup: fixtures/bad/malformed.yaml: line 2, column 1: did not find expected node content (while parsing a flow node) (try 'ckfb backup --help')
[2]

# Hook files.
$ ckfb backup --config fixtures/bad/hook-missing.yaml
ckfb backup: cannot open missing-hook.lua: No such file or directory (try 'ckfb backup --help')
[2]

$ ckfb backup --config fixtures/bad/hook-syntax.yaml
ckfb backup: fixtures/bad/hook-syntax.lua:2: <name> or '...' expected near 'end' (try 'ckfb backup --help')
[2]

$ ckfb backup --config fixtures/bad/hook-event.yaml
ckfb backup: fixtures/bad/hook-event.lua: fixtures/bad/hook-event.lua:2: hooks.on: unknown event 'before_lunch' (try 'ckfb backup --help')
[2]

$ ckfb backup --config fixtures/bad/hook-raises.yaml
ckfb backup: fixtures/bad/hook-raises.lua: fixtures/bad/hook-raises.lua:1: this site hook is broken (try 'ckfb backup --help')
[2]

$ ckfb backup --config fixtures/bad/hook-notfn.yaml
ckfb backup: fixtures/bad/hook-notfn.lua: fixtures/bad/hook-notfn.lua:2: hooks.on: expected a function (try 'ckfb backup --help')
[2]

# Kubeconfigs.
$ ckfb -e 'assert(require("ckfb.k8s").client{kubeconfig = "fixtures/bad/kube-nocontext.yaml"})'
ckfb: k8s.config: the kubeconfig sets no current-context; name one with context =
[1]

$ ckfb -e 'assert(require("ckfb.k8s").client{kubeconfig = "fixtures/bad/kube-nocluster.yaml"})'
ckfb: k8s.config: context 'a' names cluster 'missing', which is not defined
[1]

$ ckfb -e 'assert(require("ckfb.k8s").client{kubeconfig = "fixtures/bad/kube-nouser.yaml"})'
ckfb: k8s.config: context 'a' names user 'ghost', which is not defined
[1]

$ ckfb -e 'assert(require("ckfb.k8s").client{kubeconfig = "fixtures/bad/kube-badca.yaml"})'
ckfb: k8s.config: certificate-authority-data is not valid base64
[1]

$ ckfb -e 'assert(require("ckfb.k8s").client{kubeconfig = "fixtures/bad/kube-noserver.yaml"})'
ckfb: k8s.config: cluster has no server
[1]

$ ckfb -e 'assert(require("ckfb.k8s").client{kubeconfig = "fixtures/bad/kube-notyaml.yaml"})'
ckfb: k8s.config: kubeconfig fixtures/bad/kube-notyaml.yaml: line 2, column 1: did not find expected ',' or '}' (while parsing a flow mapping)
[1]

$ ckfb -e 'assert(require("ckfb.k8s").client{kubeconfig = "fixtures/bad/kube-noexeccmd.yaml"})'
ckfb: k8s.config: user exec has no command
[1]

$ ckfb -e 'assert(require("ckfb.k8s").client{kubeconfig = "fixtures/bad/kube-scalar.yaml"})'
ckfb: k8s.config: kubeconfig fixtures/bad/kube-scalar.yaml: not a kubeconfig (expected a mapping)
[1]

# What juju prints.
$ CKFB_JUJU=fixtures/bad/juju-garbage.sh ckfb -e 'assert(require("ckfb.juju").status{model = "kubeflow"})'
ckfb: juju.output: 'fixtures/bad/juju-garbage.sh status -m kubeflow --format json' printed output that is not JSON (invalid JSON: Expected value but found invalid token at character 1)
[1]

$ CKFB_JUJU=fixtures/bad/juju-fails.sh ckfb -e 'assert(require("ckfb.juju").models())'
ckfb: juju.error: 'fixtures/bad/juju-fails.sh models --format json' failed: controller microk8s-localhost not found
[1]

$ CKFB_JUJU=fixtures/bad/juju-number.sh ckfb -e 'assert(require("ckfb.juju").run("a/0", "x", nil, {model = "m"}))'
ckfb: juju.output: juju run printed no task: 42
[1]

$ CKFB_JUJU=fixtures/bad/juju-unscheduled.sh ckfb -e 'assert(require("ckfb.juju").run("a/0", "x", nil, {model = "m"}))'
ckfb: juju.error: a/0 x: unit not ready
[1]

$ CKFB_JUJU=fixtures/bad/juju-silent.sh ckfb -e 'assert(require("ckfb.juju").version())'
ckfb: juju.output: 'fixtures/bad/juju-silent.sh version --format json --all' printed output that is not JSON (invalid JSON: Expected value but found T_END at character 1)
[1]

$ CKFB_JUJU=/nonexistent/juju ckfb -e 'assert(require("ckfb.juju").version())'
ckfb: juju.missing: cannot run the juju CLI '/nonexistent/juju': not found (install juju, or set CKFB_JUJU to its path)
[1]

# HTTP bodies and data.
$ ckfb -e 'error(require("ckfb.k8s")._api_error(500, "<html>oops</html>", "GET /api/v1/pods"))'
ckfb: k8s.server_error: GET /api/v1/pods: HTTP 500
[1]

$ ckfb -e 'error(require("ckfb.k8s")._api_error(404, "{\"kind\":\"Status\",\"reason\":\"NotFound\",\"message\":\"pods \\\"x\\\" not found\"}", "GET /x"))'
ckfb: k8s.not_found: GET /x: pods "x" not found
[1]

$ ckfb -e 'local c = require("ckfb.s3").client{endpoint = "http://h:1", access_key = "a", secret_key = "b"}; error(c:failure("GET", "bkt", "k", {status = 403, body = "<html>forbidden", headers = {}}))'
ckfb: s3.access_denied: GET http://h:1 (bucket bkt, key k): AccessDenied: HTTP 403
[1]

$ ckfb -e 'assert(require("ckfb.json").decode("{\"a\": [1, 2"))'
ckfb: json.parse: invalid JSON: Expected comma or array end but found T_END at character 12
[1]

$ ckfb -e 'assert(require("ckfb.yaml").decode("a: b: c"))'
ckfb: yaml.parse: line 1, column 5: mapping values are not allowed in this context
[1]

$ ckfb -e 'assert(require("ckfb.yaml").decode("a: *nowhere"))'
ckfb: yaml.parse: line 1, column 4: unknown alias *nowhere
[1]

$ ckfb -e 'assert(require("ckfb.yaml").decode("&a [*a]"))'
ckfb: yaml.parse: line 1, column 5: alias *a is inside the node it names (a cycle)
[1]

$ ckfb -e 'assert(require("ckfb.yaml").decode("a: {<<: [{b: 1}, 5]}"))'
ckfb: yaml.parse: line 1, column 19: a merge key (<<) list may hold only mappings
[1]

$ ckfb -e 'assert(require("ckfb.s3").client{access_key = "a", secret_key = "b", endpoint = "s3.example.com"})'
ckfb: s3.config: the endpoint must look like https://host[:port], got 's3.example.com'
[1]

$ ckfb -e 'assert(require("ckfb.http").get("http://127.0.0.1:1/"))'
ckfb: http.connect: GET http://127.0.0.1:1/: Failed to connect to 127.0.0.1 port 1 after 0 ms: Couldn't connect to server
[1]
