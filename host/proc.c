/*
** proc.c: child processes on the loop (module "ckfb.core.proc").
** Never through a shell: argv goes to execve as given. Each child gets its
** own process group (so a timeout or a cancel kills what it started), dies
** with ckfb (PR_SET_PDEATHSIG), and inherits no descriptor but 0, 1 and 2:
** Debian's libcurl 7.88 leaves its sockets without CLOEXEC.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "ckfb.h"
#include "loop.h"

extern char **environ;

#define DEFAULT_MAX_OUTPUT (16 * 1024 * 1024)
#define DRAIN_AFTER_EXIT 1.0   /* seconds to wait for EOF once the child exited */

typedef struct {
  buf data;
  int fd;
  int truncated;
} stream;

typedef struct {
  loop_op base;
  pid_t pid;
  int pidfd;
  int exited, status;
  int term_sent, timed_out;
  double started, ended, grace;
  size_t max_output;
  stream out, err;
  int in_fd;
  char *in_data;
  size_t in_len, in_off;
  int terminal;  /* shares ckfb's stdin, stderr and process group (an interactive login) */
} proc_op;

typedef struct {
  char **argv, **envp;
  char *path, *cwd;
  int terminal;
} spawn_args;


/*
** Where pidfd_open is missing (Linux < 5.3, valgrind, some seccomp
** sandboxes), a SIGCHLD self-pipe tells the loop that some child exited;
** each op then asks waitpid about its own child.
*/
static int chld_pipe[2] = {-1, -1};


static void on_sigchld (int sig) {
  (void)sig;
  int saved = errno;
  ssize_t w = write(chld_pipe[1], "x", 1);  /* async-signal-safe; a full pipe is fine */
  (void)w;
  errno = saved;
}


static int watch_sigchld (void) {
  if (chld_pipe[0] < 0) {
    if (pipe2(chld_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
      return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
  }
  on_sigchld(SIGCHLD);  /* the child may have exited already: look once */
  return 1;
}


static void drain_sigchld (void) {
  char sink[64];
  while (chld_pipe[0] >= 0 && read(chld_pipe[0], sink, sizeof sink) > 0) {}
}


static void close_fd (int *fd) {
  if (*fd >= 0) {
    close(*fd);
    *fd = -1;
  }
}


static void read_stream (proc_op *p, stream *s) {
  char chunk[65536];
  while (s->fd >= 0) {
    ssize_t n = read(s->fd, chunk, sizeof chunk);
    if (n > 0) {
      size_t room = p->max_output > s->data.len ? p->max_output - s->data.len : 0;
      size_t keep = (size_t)n < room ? (size_t)n : room;
      if (!buf_append(&s->data, chunk, keep) || keep < (size_t)n)
        s->truncated = 1;  /* keep reading so the child never blocks */
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return;
    } else {
      close_fd(&s->fd);  /* EOF or a real error */
    }
  }
}


static void write_stdin (proc_op *p) {
  while (p->in_fd >= 0 && p->in_off < p->in_len) {
    ssize_t n = write(p->in_fd, p->in_data + p->in_off, p->in_len - p->in_off);
    if (n > 0)
      p->in_off += (size_t)n;
    else if (n < 0 && errno == EINTR)
      continue;
    else if (n < 0 && errno == EAGAIN)
      return;
    else
      break;  /* EPIPE: the child does not read its input */
  }
  close_fd(&p->in_fd);
}


static void reap (proc_op *p) {
  if (p->exited || p->pid <= 0)
    return;
  if (waitpid(p->pid, &p->status, WNOHANG) == p->pid) {
    p->exited = 1;
    p->ended = loop_now();
    close_fd(&p->pidfd);
  }
}


static void finish_if_complete (proc_op *p) {
  if (!p->exited)
    return;
  if (p->out.fd < 0 && p->err.fd < 0) {
    close_fd(&p->in_fd);
    loop_op_finish(&p->base);
  } else if (p->base.deadline == 0 || p->base.deadline > p->ended + DRAIN_AFTER_EXIT) {
    p->base.deadline = p->ended + DRAIN_AFTER_EXIT;  /* a grandchild holds the pipe */
  }
}


static int proc_add_fds (loop_op *op, struct curl_waitfd *fds) {
  proc_op *p = (proc_op *)op;
  int n = 0;
  int exit_fd = p->pidfd >= 0 ? p->pidfd : (p->exited ? -1 : chld_pipe[0]);
  int readers[] = {exit_fd, p->out.fd, p->err.fd};
  for (int i = 0; i < 3; i++)
    if (readers[i] >= 0)
      fds[n++] = (struct curl_waitfd){.fd = readers[i], .events = CURL_WAIT_POLLIN};
  if (p->in_fd >= 0)
    fds[n++] = (struct curl_waitfd){.fd = p->in_fd, .events = CURL_WAIT_POLLOUT};
  return n;
}


/*
** Called when any of the op's descriptors has an event. Reads every stream
** whatever its own revents says: curl_multi_poll does not report POLLHUP
** for extra descriptors, and a pipe at EOF sets only that; the pidfd's
** POLLIN at exit then brings us here to see the EOFs.
*/
static void proc_on_fds (loop_op *op, const struct curl_waitfd *fds, int n) {
  (void)fds;
  (void)n;
  proc_op *p = (proc_op *)op;
  if (p->pidfd < 0)
    drain_sigchld();
  write_stdin(p);
  read_stream(p, &p->out);
  read_stream(p, &p->err);
  reap(p);
  finish_if_complete(p);
}


/* Its process group, or the child alone when it shares ckfb's. */
static void signal_child (proc_op *p, int sig) {
  kill(p->terminal ? p->pid : -p->pid, sig);
}


static void proc_on_deadline (loop_op *op, double now) {
  proc_op *p = (proc_op *)op;
  if (p->exited) {  /* waited long enough for EOF after exit */
    close_fd(&p->out.fd);
    close_fd(&p->err.fd);
    finish_if_complete(p);
  } else if (!p->term_sent) {
    p->timed_out = p->term_sent = 1;
    signal_child(p, SIGTERM);
    p->base.deadline = now + p->grace;
  } else {
    signal_child(p, SIGKILL);
    p->base.deadline = 0;  /* the pidfd (or SIGCHLD) reports the exit */
  }
}


static void set_field_str (lua_State *L, const char *k, const buf *b) {
  lua_pushlstring(L, b->data ? b->data : "", b->len);
  lua_setfield(L, -2, k);
}


static int proc_result (loop_op *op, lua_State *L) {
  proc_op *p = (proc_op *)op;
  if (op->cancelled)
    return ckfb_push_error(L, "proc.cancelled", "process %d was cancelled", (int)p->pid);
  lua_createtable(L, 0, 8);
  if (WIFEXITED(p->status)) {
    lua_pushinteger(L, WEXITSTATUS(p->status));
    lua_setfield(L, -2, "code");
  } else if (WIFSIGNALED(p->status)) {
    lua_pushinteger(L, WTERMSIG(p->status));
    lua_setfield(L, -2, "signal");
  }
  set_field_str(L, "stdout", &p->out.data);
  set_field_str(L, "stderr", &p->err.data);
  lua_pushboolean(L, p->out.truncated || p->err.truncated);
  lua_setfield(L, -2, "truncated");
  lua_pushboolean(L, p->timed_out);
  lua_setfield(L, -2, "timed_out");
  lua_pushinteger(L, p->pid);
  lua_setfield(L, -2, "pid");
  lua_pushnumber(L, p->ended - p->started);
  lua_setfield(L, -2, "duration");
  return 1;
}


/* Kills a child still running (a cancel, or ckfb closing) and reaps it. */
static void proc_release (loop_op *op) {
  proc_op *p = (proc_op *)op;
  if (p->pid > 0 && !p->exited) {
    signal_child(p, SIGKILL);
    kill(p->pid, SIGKILL);  /* in case it left its group */
    while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR) {}
    p->exited = 1;
    p->ended = loop_now();
  }
  close_fd(&p->pidfd);
  close_fd(&p->out.fd);
  close_fd(&p->err.fd);
  close_fd(&p->in_fd);
  buf_free(&p->out.data);
  buf_free(&p->err.data);
  free(p->in_data);
  p->in_data = NULL;
}


static const op_class proc_class = {
  .kind = "process",
  .add_fds = proc_add_fds,
  .on_fds = proc_on_fds,
  .on_deadline = proc_on_deadline,
  .push_result = proc_result,
  .release = proc_release,
};


/* A malloc'ed copy of the file execve should run, found on PATH as execvp would. */
static char *find_program (const char *name, const char *path) {
  if (strchr(name, '/') != NULL)
    return access(name, F_OK) == 0 ? strdup(name) : NULL;
  if (path == NULL)
    path = "/usr/local/bin:/usr/bin:/bin";
  size_t nlen = strlen(name);
  while (*path != '\0') {
    size_t dlen = strcspn(path, ":");
    char *full = malloc(dlen + nlen + 2);
    if (full == NULL)
      return NULL;
    memcpy(full, dlen ? path : ".", dlen ? dlen : 1);
    size_t off = dlen ? dlen : 1;
    full[off] = '/';
    memcpy(full + off + 1, name, nlen + 1);
    if (access(full, X_OK) == 0)
      return full;
    free(full);
    path += dlen + (path[dlen] == ':');
  }
  return NULL;
}


/* Runs in the child between fork and exec: async-signal-safe calls only. */
static void child (const spawn_args *a, const int in[2], const int out[2],
                   const int err[2], int report, pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(127);  /* ckfb died before the line above */
  if (!a->terminal)
    setpgid(0, 0);  /* a terminal child stays in the foreground group, so it may read the terminal */
  signal(SIGPIPE, SIG_DFL);  /* ignored dispositions survive exec */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (dup2(out[1], 1) < 0 || (!a->terminal && (dup2(in[0], 0) < 0 || dup2(err[1], 2) < 0)))
    goto fail;
  if (a->cwd != NULL && chdir(a->cwd) != 0)
    goto fail;
  /* everything from 3 up closes at exec; `report` reports a failed exec */
  syscall(SYS_close_range, 3, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
  execve(a->path, a->argv, a->envp);
fail:;
  int e = errno;
  ssize_t w = write(report, &e, sizeof e);
  (void)w;
  _exit(127);
}


/* A NULL-terminated array of the strings in table idx (pointers into Lua), or NULL. */
static char **string_array (lua_State *L, int idx) {
  lua_Integer n = luaL_len(L, idx);
  char **arr = calloc((size_t)n + 1, sizeof *arr);
  for (lua_Integer i = 1; arr != NULL && i <= n; i++) {
    lua_rawgeti(L, idx, i);
    arr[i - 1] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1);  /* the table keeps the string alive */
  }
  return arr;
}


/* Raises unless every item of the list at idx is a string; nothing is held yet. */
static void check_strings (lua_State *L, int idx, const char *what) {
  lua_Integer n = luaL_len(L, idx);
  for (lua_Integer i = 1; i <= n; i++)
    if (lua_rawgeti(L, idx, i) != LUA_TSTRING)
      luaL_error(L, "%s[%d] must be a string", what, (int)i);
    else
      lua_pop(L, 1);
}


static const char *env_path (char **envp) {
  for (char **e = envp; *e != NULL; e++)
    if (strncmp(*e, "PATH=", 5) == 0)
      return *e + 5;
  return NULL;
}


static int make_pipes (int fds[4][2]) {
  for (int i = 0; i < 4; i++)
    if (pipe2(fds[i], O_CLOEXEC) != 0) {
      for (int j = 0; j < i; j++) {
        close(fds[j][0]);
        close(fds[j][1]);
      }
      return 0;
    }
  return 1;
}


/* Forks and execs; returns 0 or the errno the child or fork reported. */
static int start_child (proc_op *p, const spawn_args *a) {
  int fds[4][2];  /* stdin, stdout, stderr, exec report */
  if (!make_pipes(fds))
    return errno;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0)
    child(a, fds[0], fds[1], fds[2], fds[3][1], parent);
  int e = pid < 0 ? errno : 0;
  close(fds[0][0]);
  close(fds[1][1]);
  close(fds[2][1]);
  close(fds[3][1]);
  if (pid > 0) {
    if (!a->terminal)
      setpgid(pid, pid);  /* both sides set it, so kill(-pid) works at once */
    int reported;
    ssize_t n;
    while ((n = read(fds[3][0], &reported, sizeof reported)) < 0 && errno == EINTR) {}
    if (n == sizeof reported) {
      e = reported;
      waitpid(pid, NULL, 0);
    }
  }
  close(fds[3][0]);
  if (e != 0) {
    close(fds[0][1]);
    close(fds[1][0]);
    close(fds[2][0]);
    return e;
  }
  p->pid = pid;
  p->terminal = a->terminal;
  p->in_fd = fds[0][1];
  p->out.fd = fds[1][0];
  p->err.fd = fds[2][0];
  for (int i = 0; i < 3; i++)
    fcntl(i == 0 ? p->in_fd : (i == 1 ? p->out.fd : p->err.fd), F_SETFL, O_NONBLOCK);
  if (a->terminal) {  /* its stdin and stderr are ckfb's own */
    close_fd(&p->in_fd);
    close_fd(&p->err.fd);
  }
  p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (p->pidfd < 0 && !watch_sigchld()) {  /* no way left to see the exit */
    int saved = errno;
    proc_release(&p->base);
    return saved;
  }
  return 0;
}


static void read_options (lua_State *L, proc_op *p, spawn_args *a) {
  lua_getfield(L, 2, "cwd");
  a->cwd = (char *)luaL_optstring(L, -1, NULL);
  lua_getfield(L, 2, "timeout");
  double timeout = luaL_optnumber(L, -1, 0);
  lua_getfield(L, 2, "grace");
  p->grace = luaL_optnumber(L, -1, 5);
  lua_getfield(L, 2, "max_output");
  p->max_output = (size_t)luaL_optinteger(L, -1, DEFAULT_MAX_OUTPUT);
  lua_getfield(L, 2, "stdin");
  size_t len = 0;
  const char *in = luaL_optlstring(L, -1, NULL, &len);
  lua_getfield(L, 2, "terminal");
  a->terminal = lua_toboolean(L, -1);
  lua_pop(L, 5);  /* cwd stays on the stack: a->cwd points into it */
  p->started = loop_now();
  p->base.deadline = timeout > 0 ? p->started + timeout : 0;
  if (in != NULL && len > 0) {
    p->in_data = malloc(len);
    if (p->in_data == NULL)
      luaL_error(L, "not enough memory");
    memcpy(p->in_data, in, len);
    p->in_len = len;
  }
}


/*
** proc.spawn(argv, opts) -> op | nil, err
** opts: cwd, env (list of "NAME=value", or nil to inherit), stdin (string),
** timeout (seconds; SIGTERM, then SIGKILL after `grace`), max_output (bytes
** kept per stream), terminal (the child reads ckfb's stdin and writes ckfb's
** stderr, in ckfb's process group: an interactive login prompt).
*/
static int l_spawn (lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_newtable(L);
  }
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_argcheck(L, luaL_len(L, 1) > 0, 1, "argv must not be empty");
  proc_op *p = (proc_op *)loop_op_new(L, sizeof(proc_op), &proc_class);
  int op_idx = lua_gettop(L);
  p->pidfd = p->in_fd = p->out.fd = p->err.fd = -1;
  spawn_args a = {0};
  read_options(L, p, &a);
  lua_getfield(L, 2, "env");
  int env_idx = lua_istable(L, -1) ? lua_gettop(L) : 0;
  check_strings(L, 1, "argv");
  if (env_idx)
    check_strings(L, env_idx, "env");
  lua_rawgeti(L, 1, 1);
  const char *name = lua_tostring(L, -1);
  a.argv = string_array(L, 1);
  a.envp = env_idx ? string_array(L, env_idx) : environ;
  a.path = find_program(name, env_idx ? env_path(a.envp) : getenv("PATH"));
  int e = a.argv == NULL || a.envp == NULL ? ENOMEM : (a.path ? start_child(p, &a) : ENOENT);
  free(a.argv);
  free(a.path);
  if (env_idx)
    free(a.envp);
  if (e == ENOENT && a.path == NULL)
    return ckfb_push_error(L, "proc.not_found", "cannot run '%s': not found%s", name,
                           strchr(name, '/') ? "" : " on PATH");
  if (e != 0)
    return ckfb_push_error(L, "proc.exec", "cannot run '%s': %s", name, strerror(e));
  lua_pushvalue(L, op_idx);
  loop_op_start(L, -1);
  return 1;
}


static const luaL_Reg proc_funcs[] = {
  {"spawn", l_spawn},
  {NULL, NULL}
};


int luaopen_ckfb_core_proc (lua_State *L) {
  luaL_newlib(L, proc_funcs);
  return 1;
}
