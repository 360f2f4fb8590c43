# The ckfb command line: options, scripts, exit codes, one-line errors.

$ ckfb --version
ckfb [0-9]+\.[0-9]+\.[0-9]+ \(commit [0-9a-f]+(-dirty)?, Lua 5\.4\) (re)

$ ckfb --help | head -1
usage: ckfb [options] COMMAND [ARGS...]

$ echo '1 + 1' | ckfb
2

$ ckfb -e 'print(1 + 1)'
2

$ ckfb -e 'x = 2' -e 'print(x * 3)'
6

$ ckfb -l ckfb.json -e 'print(json.encode({b = 1, a = 2}))'
{"a":2,"b":1}

$ ckfb fixtures/args.lua one two
arg[0]=fixtures/args.lua	#arg=2	...=one,two
arg[-1]=ckfb

$ ckfb -v fixtures/args.lua -v
arg[0]=fixtures/args.lua	#arg=1	...=-v
arg[-1]=-v

$ echo 'print("from stdin", ...)' | ckfb - a b
from stdin	a	b

$ ckfb fixtures/exit_code.lua
[7]

# Usage errors: exit 2, one line naming the problem.
$ ckfb --bogus
ckfb: unknown option '--bogus' (try 'ckfb --help')
[2]

$ ckfb -e
ckfb: option '-e' needs an argument (try 'ckfb --help')
[2]

$ ckfb no-such-thing
ckfb: 'no-such-thing' is neither a file nor a shipped script (shipped: backup, demo, describe, drill, help, list, prune, restore, stdlib, version) (try 'ckfb --help')
[2]

$ ckfb missing.lua
ckfb: cannot open script 'missing.lua': no such file (try 'ckfb --help')
[2]

$ ckfb fixtures
ckfb: 'fixtures' is a directory, not a script (try 'ckfb --help')
[2]

$ ckfb -e 'print(1)' $'\xff\xfe'
ckfb: argument 3 is not valid UTF-8 (try 'ckfb --help')
[2]

# Failures: exit 1, one line; the rest and the traceback with -v.
$ ckfb fixtures/syntax_error.lua
ckfb: fixtures/syntax_error.lua:1: unexpected symbol near '='
[1]

$ ckfb fixtures/fails.lua
ckfb: demo.failed: the step failed
[1]

$ ckfb -v fixtures/fails.lua 2>&1 | grep -c 'fixtures/fails.lua:2: in'
1

$ ckfb -e 'error({code = 1})'
ckfb: (error object is a table value)
[1]

$ ckfb fixtures/leaks_global.lua
ckfb: fixtures/leaks_global.lua:1: assignment to undeclared global 'leaked'
[1]

$ ckfb -e 'print(undeclared_name)'
ckfb: (command line):1: undeclared global 'undeclared_name'
[1]

$ ckfb -l ckfb.yaml -e 'local f = io.open("fixtures/bad.yaml"); assert(yaml.decode(f:read("a")))'
ckfb: yaml.parse: line 3, column 1: did not find expected ',' or ']' (while parsing a flow sequence)
[1]

$ ckfb -l ckfb.json -e 'local f = io.open("fixtures/bad.json"); assert(json.decode(f:read("a")))'
ckfb: json.parse: invalid JSON: Expected value but found T_COMMA at character 13
[1]

# Secrets never reach the output, the log or the error line.
$ ckfb fixtures/secret.lua 2>&1 | sed 's/^[0-9TZ:-]* /TIME /'
token is ***
TIME WARN using ***
ckfb: fixtures/secret.lua:5: failed with ***
[0]

# Overrides: a module on disk wins over the embedded one, without a rebuild.
$ ckfb --lib-dir fixtures/lib -e 'print(require("ckfb.json").overridden)'
true

$ CKFB_PATH=$PWD/fixtures/lib ckfb stdlib list | grep -E '^ckfb\.(json|log) '
ckfb.json                file /.+/fixtures/lib/ckfb/json.lua (re)
ckfb.log                 embedded stdlib/ckfb/log.lua

$ ckfb stdlib cat ckfb.error | head -1
--- ckfb.error: the structured errors every binding returns.

$ ckfb stdlib cat ckfb.nope
ckfb stdlib: no module named 'ckfb.nope' (see 'ckfb stdlib list')
[2]

$ ckfb stdlib frobnicate
ckfb stdlib: usage: ckfb stdlib list | stdlib cat MODULE
[2]

# Ctrl-C (SIGINT) and SIGTERM: exit 128 + signal, one line, and no child left behind.
$ pidfile=$(mktemp)
> ckfb -e "require('ckfb.proc').run({'sh', '-c', 'echo \$\$ > $pidfile; exec sleep 30'})" &
> until [ -s "$pidfile" ]; do sleep 0.05; done; kill -INT $!; wait $!; echo "ckfb exited $?"
> case $(ps -o stat= -p "$(cat "$pidfile")") in ""|Z*) echo "child gone" ;; *) echo "child alive" ;; esac
> rm -f "$pidfile"
ckfb: interrupted!
ckfb exited 130
child gone

$ pidfile=$(mktemp)
> ckfb -e "require('ckfb.proc').run({'sh', '-c', 'echo \$\$ > $pidfile; exec sleep 30'})" &
> until [ -s "$pidfile" ]; do sleep 0.05; done; kill -TERM $!; wait $!; echo "ckfb exited $?"
> case $(ps -o stat= -p "$(cat "$pidfile")") in ""|Z*) echo "child gone" ;; *) echo "child alive" ;; esac
> rm -f "$pidfile"
ckfb: terminated
ckfb exited 143
child gone

# Even SIGKILL, which ckfb cannot catch, takes its children with it (PR_SET_PDEATHSIG).
# (A killed child may linger as a zombie of whichever process adopts it: that counts as gone.)
$ pidfile=$(mktemp)
> ckfb -e "require('ckfb.proc').run({'sh', '-c', 'echo \$\$ > $pidfile; exec sleep 30'})" &
> until [ -s "$pidfile" ]; do sleep 0.05; done; kill -KILL $!; wait $! 2>/dev/null; echo "ckfb exited $?"
> for _ in $(seq 100); do case $(ps -o stat= -p "$(cat "$pidfile")") in ""|Z*) break ;; esac; sleep 0.02; done
> case $(ps -o stat= -p "$(cat "$pidfile")") in ""|Z*) echo "child gone" ;; *) echo "child alive" ;; esac
> rm -f "$pidfile"
ckfb exited 137
child gone

# A shipped command is always the shipped one: a file of that name in the
# current directory runs only by its path.
$ d=$(mktemp -d) && cd "$d" && echo 'print("planted")' > backup && ckfb backup --help | head -1; ckfb ./backup; cd / && rm -rf "$d"
usage: ckfb backup [options]
planted

# Children do not inherit ckfb's S3 secret or session token.
$ AWS_SECRET_ACCESS_KEY=s3cr3t AWS_SESSION_TOKEN=t0k3n AWS_ACCESS_KEY_ID=AKID ckfb -e 'io.write(require("ckfb.proc").run({"env"}).stdout)' | grep -E '^AWS_(SECRET|SESSION|ACCESS)' 
AWS_ACCESS_KEY_ID=AKID

# Ctrl-C stops a busy loop inside a task (hooks are per coroutine), and a
# second Ctrl-C exits at once even when the first one was caught. ckfb writes
# its pid to $F when it is busy; timeout(1) only guards against a hang.
$ export F=$(mktemp -u); timeout -s KILL 20 ckfb -e 'require("ckfb.task").spawn(function() local f = io.open(os.getenv("F") .. ".tmp", "w"); f:write(require("ckfb.core.sys").getpid()); f:close(); os.rename(os.getenv("F") .. ".tmp", os.getenv("F")); while true do end end)' & p=$!; until [ -e "$F" ]; do sleep 0.05; done; kill -INT "$(cat "$F")"; wait $p; echo "exit $?"; rm -f "$F"
ckfb: .*interrupted! (re)
exit 130

$ export F=$(mktemp -u); timeout -s KILL 20 ckfb -e 'local function mark(name) local f = io.open(name .. ".tmp", "w"); f:write(require("ckfb.core.sys").getpid()); f:close(); os.rename(name .. ".tmp", name) end; pcall(function() mark(os.getenv("F")); while true do end end); mark(os.getenv("F") .. ".caught"); while true do end' & p=$!; until [ -e "$F" ]; do sleep 0.05; done; kill -INT "$(cat "$F")"; until [ -e "$F.caught" ]; do sleep 0.05; done; kill -INT "$(cat "$F")"; wait $p; echo "exit $?"; rm -f "$F" "$F.caught"
exit 130

# print escapes control characters on a terminal (script(1) gives it one); a pipe gets the bytes.
$ script -qec "ckfb -e 'print(\"a\" .. string.char(27) .. \"[2Jb\")'" /dev/null | tr -d '\r'; ckfb -e 'print("a" .. string.char(27) .. "[2Jb")' | od -An -c | tr -s ' '
a\x1B[2Jb
 a 033 [ 2 J b \n

$ export F=$(mktemp -u); timeout -s KILL 20 ckfb -e 'local f = io.open(os.getenv("F") .. ".tmp", "w"); f:write(require("ckfb.core.sys").getpid()); f:close(); os.rename(os.getenv("F") .. ".tmp", os.getenv("F")); local n = 0; while true do n = n + 1 end' & p=$!; until [ -e "$F" ]; do sleep 0.05; done; kill -TERM "$(cat "$F")"; wait $p; echo "exit $?"; rm -f "$F"
ckfb: .*terminated (re)
exit 143
