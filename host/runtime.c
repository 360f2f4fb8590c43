/*
** runtime.c: the Lua state, the one message handler every protected call
** uses, SIGINT handling, and the preload table of the C modules.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdarg.h>
#include <string.h>

#include <lualib.h>
#include <lua-cjson.h>

#include "ckfb.h"

#define TRACEBACK_KEY "ckfb.traceback"

static volatile sig_atomic_t interrupted = 0;  /* the signal that stopped the run */
static volatile sig_atomic_t acknowledged = 0; /* the stop has unwound: cleanups may wait */
static lua_State *interruptible = NULL;


/* Preloaded C modules: nothing on disk overrides them. */
static const luaL_Reg c_modules[] = {
  {"cjson", luaopen_cjson},
  {"ckfb.core.loop", luaopen_ckfb_core_loop},
  {"ckfb.core.proc", luaopen_ckfb_core_proc},
  {"ckfb.core.http", luaopen_ckfb_core_http},
  {"ckfb.core.yaml", luaopen_ckfb_core_yaml},
  {"ckfb.core.sys", luaopen_ckfb_core_sys},
  {"ckfb.core.file", luaopen_ckfb_core_file},
  {"ckfb.core.hash", luaopen_ckfb_core_hash},
  {"ckfb.core.repl", luaopen_ckfb_core_repl},
  {NULL, NULL}
};


/*
** Turns any error object into a message and keeps the traceback aside, so
** the caller decides whether to print it (-v) or only the message.
** [-1, +1, -]
*/
int ckfb_msghandler (lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {  /* not a string: use __tostring, else describe it */
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, NULL, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, TRACEBACK_KEY);
  lua_pushstring(L, msg);
  return 1;
}


/* ckfb_pcall (L, nargs, nresults)  [-(nargs+1), +(nresults|1), -] */
int ckfb_pcall (lua_State *L, int nargs, int nresults) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, ckfb_msghandler);
  lua_insert(L, base);
  int status = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  return status;
}


/* The traceback of the last error that went through the handler, or "". */
const char *ckfb_last_traceback (lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, TRACEBACK_KEY);
  const char *tb = lua_tostring(L, -1);
  lua_pop(L, 1);  /* the registry keeps the string alive */
  return tb ? tb : "";
}


static const char *stop_message (void) {
  return interrupted == SIGTERM ? "terminated" : "interrupted!";
}


/* Raises inside the VM at the next instruction, as lua.c's lstop does. */
static void stop_hook (lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "%s", stop_message());
}


/*
** SIGINT and SIGTERM stop the run the same way: the error unwinds, the
** state closes, children are killed and reaped, and ckfb exits 128 + signal.
** Async-signal-safe: only a flag and a hook, never a longjmp from here.
*/
static void on_stop_signal (int sig) {
  if (interrupted == SIGINT && sig == SIGINT)
    _exit(128 + SIGINT);  /* a second Ctrl-C: at once (children die with us: PDEATHSIG) */
  interrupted = sig;
  acknowledged = 0;       /* a signal during the cleanups stops them too */
  if (interruptible != NULL)
    lua_sethook(interruptible, stop_hook,
                LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}


/* Hooks belong to one thread: the handler's hook on the main state never reaches a
** coroutine (a task), so each task checks the flag every 1000 instructions. */
static void thread_hook (lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (interrupted && !acknowledged) {
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "%s", stop_message());
  }
}


void ckfb_watch_thread (lua_State *co) {
  lua_sethook(co, thread_hook, LUA_MASKCOUNT, 1000);
}


void ckfb_watch_interrupts (lua_State *L) {
  interruptible = L;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}


/* The signal that stopped the run (SIGINT, SIGTERM), or 0. */
int ckfb_interrupted (void) {
  return interrupted;
}


/* The REPL goes on after a cancelled command: forget the signal and its hook. */
void ckfb_clear_interrupt (void) {
  interrupted = 0;
  acknowledged = 0;
  if (interruptible != NULL)
    lua_sethook(interruptible, NULL, 0, 0);
}


/* The stop has unwound the run: from now on waiting is allowed again, so that
** cleanups (aborting an upload) can talk to servers; the exit code still
** names the signal, and a new signal stops the cleanups. */
void ckfb_acknowledge_interrupt (void) {
  acknowledged = 1;
  if (interruptible != NULL)
    lua_sethook(interruptible, NULL, 0, 0);
}


/* Called by code that waits (the loop), which the count hook cannot reach. */
void ckfb_check_interrupt (lua_State *L) {
  if (interrupted && !acknowledged)
    luaL_error(L, "%s", stop_message());
}


/* os.tmpname honours $TMPDIR as mktemp(1) does (Lua's own always uses /tmp):
** the operator, and a test run, decide where temporary files go. */
static int os_tmpname (lua_State *L) {
  const char *dir = getenv("TMPDIR");
  if (dir == NULL || dir[0] == '\0')
    dir = "/tmp";
  luaL_Buffer b;
  char *path = luaL_buffinitsize(L, &b, strlen(dir) + sizeof "/lua_XXXXXX");
  snprintf(path, strlen(dir) + sizeof "/lua_XXXXXX", "%s/lua_XXXXXX", dir);
  int fd = mkstemp(path);
  if (fd < 0)
    return luaL_error(L, "unable to generate a unique filename in %s", dir);
  close(fd);
  luaL_pushresultsize(&b, strlen(path));
  return 1;
}


lua_State *ckfb_newstate (void) {
  lua_State *L = luaL_newstate();
  if (L == NULL)
    return NULL;
  luaL_checkversion(L);
  luaL_openlibs(L);
  lua_getglobal(L, "os");
  lua_pushcfunction(L, os_tmpname);
  lua_setfield(L, -2, "tmpname");
  lua_pop(L, 1);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (const luaL_Reg *m = c_modules; m->name != NULL; m++) {
    lua_pushcfunction(L, m->func);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 1);
  /* SIGPIPE would kill ckfb when a child or a peer closes early: handle EPIPE. */
  signal(SIGPIPE, SIG_IGN);
  return L;
}


/* "code: message", as the house style's error objects print. */
static int error_tostring (lua_State *L) {
  lua_getfield(L, 1, "code");
  lua_getfield(L, 1, "message");
  if (lua_isstring(L, -2) && lua_isstring(L, -1))
    lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
  else if (!lua_isstring(L, -1))
    lua_pushliteral(L, "error");
  return 1;
}


/* The one metatable of ckfb's structured errors.  [-0, +1, m] */
void ckfb_push_error_meta (lua_State *L) {
  if (luaL_newmetatable(L, "ckfb.Error")) {
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "ckfb.Error");
    lua_setfield(L, -2, "__name");
  }
}


/* Pushes nil and a new error table: the `return nil, err` convention.  [-0, +2, m] */
int ckfb_push_error (lua_State *L, const char *code, const char *fmt, ...) {
  lua_pushnil(L);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_setfield(L, -2, "message");
  ckfb_push_error_meta(L);
  lua_setmetatable(L, -2);
  return 2;
}
