/*
** main.c: the ckfb binary. Everything runs inside one protected call of the
** embedded boot script (stdlib/ckfb/_boot.lua), which parses the command
** line and returns the exit code; C only reports what escapes it.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckfb.h"
#include "embedded.h"

#define BOOT_PATH "stdlib/ckfb/_boot.lua"


static int load_boot (lua_State *L) {
  for (const struct ckfb_embedded *e = ckfb_embedded; e->path != NULL; e++)
    if (strcmp(e->path, BOOT_PATH) == 0)
      return luaL_loadbuffer(L, e->source, e->size, "@" BOOT_PATH);
  lua_pushliteral(L, "the embedded " BOOT_PATH " is missing");
  return LUA_ERRFILE;
}


/* Prints the first line of an escaped error; the whole of it and the traceback with -v. */
static void report (lua_State *L, const char *msg, int verbose) {
  size_t len = strcspn(msg, "\n");
  fprintf(stderr, "ckfb: %.*s\n", (int)len, msg);
  if (verbose)
    fprintf(stderr, "%s\n%s\n", msg + len, ckfb_last_traceback(L));
}


int main (int argc, char **argv) {
  lua_State *L = ckfb_newstate();
  if (L == NULL) {
    fprintf(stderr, "ckfb: cannot create the Lua state: not enough memory\n");
    return CKFB_EXIT_ERROR;
  }
  ckfb_watch_interrupts(L);
  int status = load_boot(L);
  if (status == LUA_OK) {
    lua_createtable(L, argc, 0);
    for (int i = 0; i < argc; i++) {
      lua_pushstring(L, argv[i]);
      lua_rawseti(L, -2, i);
    }
    status = ckfb_pcall(L, 1, 1);
  }
  int code;
  if (status == LUA_OK) {
    code = (int)luaL_optinteger(L, -1, CKFB_EXIT_OK);
  } else {
    int verbose = getenv("CKFB_TRACEBACK") != NULL;
    lua_getfield(L, LUA_REGISTRYINDEX, "ckfb.verbose");
    verbose = verbose || lua_toboolean(L, -1);
    lua_pop(L, 1);
    report(L, lua_tostring(L, -1), verbose);
    code = ckfb_interrupted() ? 128 + ckfb_interrupted() : CKFB_EXIT_ERROR;
  }
  lua_close(L);  /* runs __gc: children are killed and reaped, handles freed */
  return code;
}
