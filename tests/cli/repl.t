# The prompt, driven through a pseudo-terminal (tmux). HOME is a fresh
# directory, so the history file starts empty.

# Completion of globals, fields and methods.
$ export HOME=$(mktemp -d) R=./repl-session
> $R start complete
> $R literal complete 'juju.sta'; $R keys complete Tab
> $R wait complete 'ckfb> juju.status' 15 && echo completed
> $R keys complete C-u; $R literal complete 'jso'; $R keys complete Tab
> $R wait complete 'ckfb> json' 15 && echo global completed
> $R stop complete; rm -rf "$HOME"
completed
global completed

# A multi-line function definition, continued while the chunk is incomplete.
$ export HOME=$(mktemp -d) R=./repl-session
> $R start multi
> $R type multi 'function twice(x)' '  return x * 2' 'end' 'twice(21)'
> $R wait multi '^42$' && $R screen multi | grep -E '^(ckfb>|42$)'
> $R stop multi; rm -rf "$HOME"
ckfb> function twice(x)
ckfb>>   return x * 2
ckfb>> end
ckfb> twice(21)
42
ckfb>

# History is kept across restarts.
$ export HOME=$(mktemp -d) R=./repl-session
> $R start first
> $R type first 'answer = 6 * 7' 'answer'
> $R wait first '^42$' && $R keys first C-d && sleep 0.3 && $R stop first
> $R start second
> $R keys second Up Up
> $R wait second 'ckfb> answer = 6 \* 7' && echo recalled
> $R stop second
> grep -c answer "$HOME/.ckfb_history"; rm -rf "$HOME"
recalled
2

# Ctrl-C at an idle prompt drops the line being typed (and an unfinished
# multi-line chunk) and gives a fresh prompt; the REPL stays.
$ export HOME=$(mktemp -d) R=./repl-session
> $R start idle
> $R wait idle '^ckfb>'
> $R literal idle 'half typed'; $R keys idle C-c
> $R type idle 'function f()'; $R keys idle C-c
> $R type idle '6 * 7'; $R wait idle '^42$' && $R screen idle | grep -E '^(ckfb>|42)'
> $R stop idle; rm -rf "$HOME"
ckfb> half typed
ckfb> function f()
ckfb>>
ckfb> 6 * 7
42
ckfb>

# Ctrl-C cancels a long juju call, returns to the prompt, and leaves no child.
$ export HOME=$(mktemp -d) R=./repl-session
> export CKFB_JUJU=$PWD/../emulators/juju FAKE_JUJU_STATE=$HOME/state.json FAKE_JUJU_LOG=$HOME/calls.log
> cp ../emulators/ckf-state.json $FAKE_JUJU_STATE
> sed -i 's/"behaviour": {}/"behaviour": {"kfp-db\/list-backups": {"latency": 30}}/' $FAKE_JUJU_STATE
> $R start cancel
> $R type cancel 'juju.run("kfp-db/0", "list-backups", nil, {model = "kubeflow", wait = 60})'
> until [ -s $FAKE_JUJU_LOG ]; do sleep 0.05; done; pid=$(grep -o '"pid": [0-9]*' $FAKE_JUJU_LOG | grep -o '[0-9]*$')
> kill -0 $pid && echo "juju running"
> $R keys cancel C-c
> $R wait cancel 'interrupted' && echo cancelled
> kill -0 $pid 2>/dev/null && echo "juju left behind" || echo "no juju left"
> $R type cancel '1 + 1'; $R wait cancel '^2$' && echo "prompt back"
> $R stop cancel; rm -rf "$HOME"
juju running
cancelled
no juju left
prompt back

# Without a terminal, chunks from stdin, results printed.
$ printf 'x = {a = 1, list = {1, 2, 3}}\nx\nerror("boom")\n1, "two", json.null\n' | ckfb
{
  a = 1,
  list = {
    1,
    2,
    3,
  },
}
stdin:1: boom   (:traceback for more)
1
"two"
null

# A line holding a registered secret never reaches the history file, and
# print at the prompt redacts it.
$ export HOME=$(mktemp -d) R=./repl-session
> $R start secret
> $R type secret 'key = require("ckfb.log").secret("hunter2-token")' 'print("the key is " .. key)' 'shown = 1'
> $R wait secret '^the key is \*\*\*$' && echo redacted
> $R keys secret C-d && sleep 0.3 && $R stop secret
> grep -c hunter2 "$HOME/.ckfb_history"; grep -c shown "$HOME/.ckfb_history"; rm -rf "$HOME"
redacted
0
1
