/*
** sys.c: host facts for the boot script and the stdlib (module
** "ckfb.core.sys"): the embedded sources, the environment, terminals,
** file types, and the one message handler.
*/
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckfb.h"
#include "version.h"
#include "embedded.h"

extern char **environ;


/* sys.embedded() -> {path, ...}  [-0, +1, m] */
static int sys_embedded (lua_State *L) {
  lua_newtable(L);
  int i = 0;
  for (const struct ckfb_embedded *e = ckfb_embedded; e->path != NULL; e++) {
    lua_pushstring(L, e->path);
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}


/* sys.embedded_source(path) -> source | nil  [-1, +1, m] */
static int sys_embedded_source (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  for (const struct ckfb_embedded *e = ckfb_embedded; e->path != NULL; e++)
    if (strcmp(e->path, path) == 0) {
      lua_pushlstring(L, e->source, e->size);
      return 1;
    }
  lua_pushnil(L);
  return 1;
}


/* sys.environ() -> {NAME = value, ...}  [-0, +1, m] */
static int sys_environ (lua_State *L) {
  lua_newtable(L);
  for (char **e = environ; *e != NULL; e++) {
    const char *eq = strchr(*e, '=');
    if (eq == NULL || eq == *e)
      continue;
    lua_pushlstring(L, *e, (size_t)(eq - *e));
    lua_pushstring(L, eq + 1);
    lua_rawset(L, -3);
  }
  return 1;
}


/* sys.isatty(fd) -> boolean */
static int sys_isatty (lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}


/* sys.term_size(fd) -> rows, columns of the terminal, or nil */
static int sys_term_size (lua_State *L) {
  struct winsize ws;
  if (ioctl((int)luaL_checkinteger(L, 1), TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0 || ws.ws_col == 0)
    return 0;
  lua_pushinteger(L, ws.ws_row);
  lua_pushinteger(L, ws.ws_col);
  return 2;
}


/* sys.filetype(path) -> "file" | "directory" | "other" | nil */
static int sys_filetype (lua_State *L) {
  struct stat st;
  if (stat(luaL_checkstring(L, 1), &st) != 0)
    lua_pushnil(L);
  else if (S_ISREG(st.st_mode))
    lua_pushliteral(L, "file");
  else if (S_ISDIR(st.st_mode))
    lua_pushliteral(L, "directory");
  else
    lua_pushliteral(L, "other");
  return 1;
}


/* sys.set_verbose(flag): lets the C fallback reporter show tracebacks. */
static int sys_set_verbose (lua_State *L) {
  lua_pushboolean(L, lua_toboolean(L, 1));
  lua_setfield(L, LUA_REGISTRYINDEX, "ckfb.verbose");
  return 0;
}


/* sys.traceback() -> the traceback of the last error the handler saw */
static int sys_traceback (lua_State *L) {
  lua_pushstring(L, ckfb_last_traceback(L));
  return 1;
}


/* sys.interrupted() -> the number of the signal that stopped the run, or nil */
static int sys_interrupted (lua_State *L) {
  if (ckfb_interrupted())
    lua_pushinteger(L, ckfb_interrupted());
  else
    lua_pushnil(L);
  return 1;
}


/* sys.acknowledge_interrupt(): the stop has unwound; cleanups may wait again */
static int sys_acknowledge_interrupt (lua_State *L) {
  (void)L;
  ckfb_acknowledge_interrupt();
  return 0;
}


/* sys.mkdir(path [, mode]) -> true | nil, message, "exists"|"other": atomic, so a lock can be one */
static int sys_mkdir (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  mode_t mode = (mode_t)luaL_optinteger(L, 2, 0700);
  if (mkdir(path, mode) == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  int e = errno;
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", path, strerror(e));
  lua_pushstring(L, e == EEXIST ? "exists" : "other");
  return 3;
}


/* sys.listdir(path) -> {names...} sorted by the caller | nil, message */
static int sys_listdir (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  DIR *dir = opendir(path);
  if (dir == NULL) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  lua_newtable(L);
  int i = 0;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    lua_pushstring(L, e->d_name);  /* may raise on memory: the DIR would leak, once */
    lua_rawseti(L, -2, ++i);
  }
  closedir(dir);
  return 1;
}


/* sys.getpid() -> this process's id */
static int sys_getpid (lua_State *L) {
  lua_pushinteger(L, getpid());
  return 1;
}


/* sys.alive(pid) -> true when a process with that id exists */
static int sys_alive (lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  lua_pushboolean(L, pid > 0 && (kill(pid, 0) == 0 || errno == EPERM));
  return 1;
}


/* sys.watch(co): the coroutine stops on SIGINT and SIGTERM too, even in a loop that never waits */
static int sys_watch (lua_State *L) {
  luaL_checktype(L, 1, LUA_TTHREAD);
  ckfb_watch_thread(lua_tothread(L, 1));
  return 0;
}


/* sys.undumpable(): no core dump and no ptrace by other processes of the
** user from now on (PR_SET_DUMPABLE 0): the memory holds secrets. */
static int sys_undumpable (lua_State *L) {
  lua_pushboolean(L, prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0);
  return 1;
}


/* sys.error_meta() -> the metatable of ckfb's structured errors */
static int sys_error_meta (lua_State *L) {
  ckfb_push_error_meta(L);
  return 1;
}


static const luaL_Reg sys_funcs[] = {
  {"error_meta", sys_error_meta},
  {"mkdir", sys_mkdir},
  {"listdir", sys_listdir},
  {"getpid", sys_getpid},
  {"alive", sys_alive},
  {"undumpable", sys_undumpable},
  {"watch", sys_watch},
  {"embedded", sys_embedded},
  {"embedded_source", sys_embedded_source},
  {"environ", sys_environ},
  {"isatty", sys_isatty},
  {"term_size", sys_term_size},
  {"filetype", sys_filetype},
  {"set_verbose", sys_set_verbose},
  {"traceback", sys_traceback},
  {"interrupted", sys_interrupted},
  {"acknowledge_interrupt", sys_acknowledge_interrupt},
  {"msghandler", ckfb_msghandler},
  {NULL, NULL}
};


int luaopen_ckfb_core_sys (lua_State *L) {
  luaL_newlib(L, sys_funcs);
  lua_pushliteral(L, CKFB_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushliteral(L, CKFB_COMMIT);
  lua_setfield(L, -2, "commit");
  return 1;
}
