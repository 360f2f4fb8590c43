#ifndef CKFB_H
#define CKFB_H

#include <lua.h>
#include <lauxlib.h>

/* Exit codes shared by the host and the shipped scripts. */
enum {
  CKFB_EXIT_OK = 0,
  CKFB_EXIT_ERROR = 1,        /* a run failed: uncaught error, failed step */
  CKFB_EXIT_USAGE = 2         /* bad command line; a signal gives 128 + its number */
};

/* runtime.c: the state, protected calls and the C modules' preload table. */
lua_State *ckfb_newstate (void);
int ckfb_pcall (lua_State *L, int nargs, int nresults);
int ckfb_msghandler (lua_State *L);
const char *ckfb_last_traceback (lua_State *L);
void ckfb_watch_interrupts (lua_State *L);
void ckfb_watch_thread (lua_State *co);
int ckfb_interrupted (void);
void ckfb_check_interrupt (lua_State *L);
void ckfb_clear_interrupt (void);
void ckfb_acknowledge_interrupt (void);

/* One luaopen per binding, registered in package.preload by runtime.c. */
int luaopen_ckfb_core_loop (lua_State *L);
int luaopen_ckfb_core_proc (lua_State *L);
int luaopen_ckfb_core_http (lua_State *L);
int luaopen_ckfb_core_yaml (lua_State *L);
int luaopen_ckfb_core_sys (lua_State *L);
int luaopen_ckfb_core_file (lua_State *L);
int luaopen_ckfb_core_hash (lua_State *L);
int luaopen_ckfb_core_repl (lua_State *L);



/* runtime.c: structured errors, {code=, message=, detail=} with __tostring. */
int ckfb_push_error (lua_State *L, const char *code, const char *fmt, ...);
void ckfb_push_error_meta (lua_State *L);
#endif
