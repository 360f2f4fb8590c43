/*
** A libFuzzer harness around the whole runtime: the embedded stdlib boots
** as in ckfb, then every input goes to the Lua function of one target
** (tests/fuzz/<target>.lua, named by $CKFB_FUZZ_TARGET). A target returns
** normally for any input; an error it raises, a Lua panic or a sanitizer
** report is a crash that libFuzzer keeps.
**
** libFuzzer instruments only C. So that it also steers by the Lua it runs
** (the parsers of S3 XML, juju JSON and configuration are Lua), a line hook
** counts each edge between two Lua lines, AFL's way, in libFuzzer's extra
** counters: an input that reaches a new Lua path is new coverage.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckfb.h"
#include "embedded.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const unsigned char *data, size_t size);

static lua_State *L;

#define LUA_EDGES 65536
__attribute__((section("__libfuzzer_extra_counters")))
static uint8_t lua_edges[LUA_EDGES];
static uintptr_t previous_line;


/* A Lua line is (its chunk, its number); an edge is the pair of two in a row. */
static void count_edge (lua_State *state, lua_Debug *ar) {
  if (!lua_getinfo(state, "S", ar))
    return;
  uintptr_t here = ((uintptr_t)ar->source * 31u) ^ ((uintptr_t)ar->currentline * 2654435761u);
  size_t edge = (size_t)((here ^ previous_line) % LUA_EDGES);
  if (lua_edges[edge] < 255)
    lua_edges[edge]++;
  previous_line = here >> 1;
}


static int boot (const char *target) {
  for (const struct ckfb_embedded *e = ckfb_embedded; e->path != NULL; e++) {
    if (strcmp(e->path, "stdlib/ckfb/_boot.lua") != 0)
      continue;
    if (luaL_loadbuffer(L, e->source, e->size, "@stdlib/ckfb/_boot.lua") != LUA_OK)
      return 0;
    char code[256];
    snprintf(code, sizeof code, "fuzz_target = require('tests.fuzz.%s')", target);
    lua_createtable(L, 3, 1);
    const char *args[] = {"ckfb-fuzz", "-q", "-e", code};
    for (int i = 0; i < 4; i++) {
      lua_pushstring(L, args[i]);
      lua_rawseti(L, -2, i);
    }
    return ckfb_pcall(L, 1, 1) == LUA_OK && lua_tointeger(L, -1) == 0;
  }
  return 0;
}


int LLVMFuzzerInitialize (int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  const char *target = getenv("CKFB_FUZZ_TARGET");
  L = ckfb_newstate();
  if (target == NULL || L == NULL || !boot(target)) {
    fprintf(stderr, "ckfb-fuzz: set CKFB_FUZZ_TARGET to a module of tests/fuzz (%s)\n",
            L && lua_isstring(L, -1) ? lua_tostring(L, -1) : "boot failed");
    exit(2);
  }
  lua_settop(L, 0);
  lua_sethook(L, count_edge, LUA_MASKLINE, 0);
  return 0;
}


int LLVMFuzzerTestOneInput (const unsigned char *data, size_t size) {
  previous_line = 0;
  lua_getglobal(L, "fuzz_target");
  lua_pushlstring(L, (const char *)data, size);
  if (ckfb_pcall(L, 1, 0) != LUA_OK) {
    fprintf(stderr, "ckfb-fuzz: the target raised: %s\n%s\n", lua_tostring(L, -1), ckfb_last_traceback(L));
    abort();
  }
  lua_settop(L, 0);
  return 0;
}
