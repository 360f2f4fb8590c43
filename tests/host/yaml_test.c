/*
** C unit tests for host/yaml.c's scalar rules: the YAML 1.2 core schema
** (what a plain scalar means) and the float text that must read back
** exactly. The file is included so its static functions can be reached.
*/
#include "../../host/yaml.c"

#include <lualib.h>

#include "tap.h"


/* The Lua type push_typed gives a plain scalar, or "string". */
static const char *typed (lua_State *L, const char *v) {
  int top = lua_gettop(L);
  const char *kind = push_typed(L, v, strlen(v)) ? luaL_typename(L, -1) : "string";
  if (lua_type(L, -1) == LUA_TNUMBER && lua_gettop(L) > top)
    kind = lua_isinteger(L, -1) ? "integer" : "float";
  lua_settop(L, top);
  return kind;
}


static void test_core_schema (lua_State *L) {
  static const struct { const char *text, *kind; } cases[] = {
    {"", "userdata"}, {"~", "userdata"}, {"null", "userdata"}, {"NULL", "userdata"},
    {"nULL", "string"}, {"true", "boolean"}, {"False", "boolean"}, {"yes", "string"},
    {"on", "string"}, {"0", "integer"}, {"-12", "integer"}, {"+7", "integer"},
    {"0x1f", "integer"}, {"0o17", "integer"}, {"0o8", "string"}, {"-0x1f", "string"},
    {"1_000", "string"}, {"1.5", "float"}, {".5", "float"}, {"5.", "float"},
    {"1e3", "float"}, {"1e", "string"}, {"-.inf", "float"}, {".NaN", "float"},
    {"-.nan", "string"}, {"9223372036854775808", "float"}, {"1.2.3", "string"},
    {"0.0.0.0", "string"}, {"12:30", "string"}, {".", "string"}, {"-", "string"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *got = typed(L, cases[i].text);
    ok(strcmp(got, cases[i].kind) == 0, "plain '%s' is %s (got %s)", cases[i].text,
       cases[i].kind, got);
  }
}


/* emit_number's text for d, through a real emitter. */
static int float_roundtrips (lua_State *L, double d) {
  lua_pushcfunction(L, l_encode);
  lua_pushnumber(L, d);
  lua_call(L, 1, 1);
  const char *text = lua_tostring(L, -1);
  int top = lua_gettop(L) - 1;
  size_t len = strcspn(text, "\n");
  char *line = strndup(text, len);
  int same = push_typed(L, line, len) && lua_type(L, -1) == LUA_TNUMBER &&
             !lua_isinteger(L, -1) && lua_tonumber(L, -1) == d;
  free(line);
  lua_settop(L, top);
  return same;
}


static void test_float_text (lua_State *L) {
  double values[] = {0.1, 1.0, 1e300, -2.5e-10, 123456789.125, 1.0 / 3.0};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
    ok(float_roundtrips(L, values[i]), "float %.17g reads back exactly and stays a float", values[i]);
}


int main (void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  test_core_schema(L);
  test_float_text(L);
  lua_close(L);
  return tap_done();
}
