/*
** yaml.c: YAML on libyaml (module "ckfb.core.yaml").
** decode: every document of a stream, anchors and aliases (an alias is the
** same Lua table, so "billion laughs" input costs no memory here; the nodes
** aliases stand for are still counted and capped, because whoever walks the
** result walks them all; an alias inside its own anchor is a cycle and an
** error), merge keys, the
** YAML 1.2 core schema for plain scalars; no tag ever runs code.
** encode: block style, sorted keys, strings quoted whenever they would read
** back as something else.
*/
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "buf.h"
#include "ckfb.h"

#define YAML_META "ckfb.yaml.state"
#define MAX_DEPTH 256
#define MAX_ALIASED_NODES 1000000L  /* nodes that aliases may add to a stream (yaml.alias_limit) */
#define ARRAY_MARK "__ckfb_array"  /* metafield set by json.array() */

/* Owns libyaml's state so that an error raised mid-way leaks nothing. */
typedef struct {
  yaml_parser_t parser;
  yaml_emitter_t emitter;
  yaml_event_t event;
  int has_parser, has_emitter, has_event;
  buf out;
  char error[256];
  const char *code;     /* the error's code: yaml.parse unless a limit was passed */
  int line, column;
  int anchors, sizes;   /* stack indices: anchor -> value, anchor -> nodes it stands for */
  long nodes, expanded; /* nodes read, and nodes once every alias is expanded */
} yaml_state;

static char open_anchor_mark;  /* an anchored collection being parsed */


static int state_gc (lua_State *L) {
  yaml_state *s = luaL_checkudata(L, 1, YAML_META);
  if (s->has_event)
    yaml_event_delete(&s->event);
  if (s->has_parser)
    yaml_parser_delete(&s->parser);
  if (s->has_emitter)
    yaml_emitter_delete(&s->emitter);
  s->has_event = s->has_parser = s->has_emitter = 0;
  buf_free(&s->out);
  return 0;
}


static yaml_state *new_state (lua_State *L) {
  yaml_state *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  if (luaL_newmetatable(L, YAML_META)) {
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return s;
}


static void fail (yaml_state *s, int line, int column, const char *fmt, const char *arg) {
  if (s->error[0] != '\0')
    return;
  snprintf(s->error, sizeof s->error, fmt, arg ? arg : "");
  s->line = line + 1;
  s->column = column + 1;
}


static int next_event (yaml_state *s) {
  if (s->has_event)
    yaml_event_delete(&s->event);
  s->has_event = 0;
  if (!yaml_parser_parse(&s->parser, &s->event)) {
    yaml_parser_t *p = &s->parser;
    fail(s, (int)p->problem_mark.line, (int)p->problem_mark.column, "%s",
         p->problem ? p->problem : "invalid YAML");
    if (p->context != NULL && strlen(s->error) + strlen(p->context) + 4 < sizeof s->error) {
      strcat(s->error, " (");
      strcat(s->error, p->context);
      strcat(s->error, ")");
    }
    return 0;
  }
  s->has_event = 1;
  return 1;
}


/* YAML 1.2 core schema: does the whole of s read as an integer? */
static int push_int (lua_State *L, const char *v, size_t len) {
  const char *digits = v + (*v == '-' || *v == '+');
  int base = 10;
  if (digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'o') && v == digits) {
    base = digits[1] == 'x' ? 16 : 8;
    digits += 2;
  }
  if (*digits == '\0')
    return 0;
  for (const char *c = digits; *c; c++) {
    int ok = base == 16 ? strchr("0123456789abcdefABCDEF", *c) != NULL
           : (*c >= '0' && *c <= (base == 8 ? '7' : '9'));
    if (!ok)
      return 0;
  }
  errno = 0;
  long long n = strtoll(base == 10 ? v : digits, NULL, base);
  if (errno == ERANGE) {
    lua_pushnumber(L, strtod(v, NULL));  /* too big for an integer: a float */
    return 1;
  }
  (void)len;
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}


static int push_float (lua_State *L, const char *v) {
  const char *m = v + (*v == '-' || *v == '+');
  if (!strcmp(m, ".inf") || !strcmp(m, ".Inf") || !strcmp(m, ".INF")) {
    lua_pushnumber(L, *v == '-' ? -HUGE_VAL : HUGE_VAL);
    return 1;
  }
  if (m == v && (!strcmp(v, ".nan") || !strcmp(v, ".NaN") || !strcmp(v, ".NAN"))) {
    lua_pushnumber(L, NAN);
    return 1;
  }
  /* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
  const char *c = m;
  int digits = 0;
  while (*c >= '0' && *c <= '9') c++, digits++;
  if (*c == '.') {
    c++;
    while (*c >= '0' && *c <= '9') c++, digits++;
  }
  if (digits == 0)
    return 0;
  if (*c == 'e' || *c == 'E') {
    c++;
    if (*c == '-' || *c == '+') c++;
    if (!(*c >= '0' && *c <= '9')) return 0;
    while (*c >= '0' && *c <= '9') c++;
  }
  if (*c != '\0')
    return 0;
  lua_pushnumber(L, strtod(v, NULL));
  return 1;
}


/* Pushes the typed value of a plain scalar; returns 0 if it is just a string. */
static int push_typed (lua_State *L, const char *v, size_t len) {
  if (len == 0 || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL")) {
    lua_pushlightuserdata(L, NULL);  /* json.null, shared with cjson */
    return 1;
  }
  if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE")) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE")) {
    lua_pushboolean(L, 0);
    return 1;
  }
  return push_int(L, v, len) || push_float(L, v);
}


static int push_scalar (lua_State *L, yaml_state *s) {
  yaml_event_t *e = &s->event;
  const char *v = (const char *)e->data.scalar.value;
  size_t len = e->data.scalar.length;
  const char *tag = (const char *)e->data.scalar.tag;
  int plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
  static const char core[] = "tag:yaml.org,2002:";
  int core_tag = tag != NULL && strncmp(tag, core, sizeof core - 1) == 0;
  const char *kind = core_tag ? tag + sizeof core - 1 : NULL;
  if (strlen(v) != len && (kind == NULL || strcmp(kind, "binary") != 0)) {
    lua_pushlstring(L, v, len);  /* embedded NUL: only ever a string */
    return 1;
  }
  if (kind != NULL && strcmp(kind, "str") != 0 && strcmp(kind, "binary") != 0) {
    if (push_typed(L, v, len))
      return 1;
    fail(s, (int)e->start_mark.line, (int)e->start_mark.column, "invalid !!%s value", kind);
    return 0;
  }
  /* untagged and unknown tags alike: a tag never changes what runs */
  if (!(plain && kind == NULL && push_typed(L, v, len)))
    lua_pushlstring(L, v, len);
  return 1;
}


static int parse_node (lua_State *L, yaml_state *s, int depth);


/* Pushes the anchor's name (or nil) and marks the anchor open: an alias to it
** from inside the collection would make the result a cycle. */
static void open_anchor (lua_State *L, yaml_state *s, const unsigned char *anchor) {
  if (anchor == NULL) {
    lua_pushnil(L);
    return;
  }
  lua_pushstring(L, (const char *)anchor);
  lua_pushvalue(L, -1);
  lua_pushlightuserdata(L, &open_anchor_mark);
  lua_rawset(L, s->anchors);
}


/* Binds the name at `name` to the value on top, with the nodes it stands for
** (counted from `start`), and removes the name from the stack. */
static void close_anchor (lua_State *L, yaml_state *s, int name, long start) {
  if (!lua_isnil(L, name)) {
    lua_pushvalue(L, name);
    lua_pushvalue(L, -2);
    lua_rawset(L, s->anchors);
    lua_pushvalue(L, name);
    lua_pushinteger(L, s->expanded - start + 1);
    lua_rawset(L, s->sizes);
  }
  lua_remove(L, name);
}


static int parse_sequence (lua_State *L, yaml_state *s, int depth) {
  int name = lua_gettop(L) + 1;
  open_anchor(L, s, s->event.data.sequence_start.anchor);
  long start = s->expanded;
  lua_newtable(L);
  for (lua_Integer i = 1;; i++) {
    if (!next_event(s))
      return 0;
    if (s->event.type == YAML_SEQUENCE_END_EVENT)
      break;
    if (!parse_node(L, s, depth + 1))
      return 0;
    lua_rawseti(L, -2, i);
  }
  close_anchor(L, s, name, start);
  return 1;
}


/* Applies "<<: *base" (a map or a list of maps) without overriding explicit keys. */
static void apply_merges (lua_State *L, int map, int merges) {
  lua_Integer n = luaL_len(L, merges);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, merges, i);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pushvalue(L, -2);
      if (lua_rawget(L, map) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, map);
      } else {
        lua_pop(L, 2);
      }
    }
    lua_pop(L, 1);
  }
}


static int add_merge (lua_State *L, yaml_state *s, int merges) {
  int line = (int)s->event.start_mark.line, col = (int)s->event.start_mark.column;
  if (lua_type(L, -1) != LUA_TTABLE) {
    fail(s, line, col, "a merge key (<<) needs a mapping or a list of mappings%s", NULL);
    return 0;
  }
  lua_rawgeti(L, -1, 1);
  int is_list = lua_istable(L, -1);
  lua_pop(L, 1);
  if (!is_list) {
    lua_rawseti(L, merges, luaL_len(L, merges) + 1);
    return 1;
  }
  lua_Integer n = luaL_len(L, -1);  /* earlier maps in the list win: add them first */
  for (lua_Integer i = 1; i <= n; i++) {
    int mapping = lua_rawgeti(L, -1, i) == LUA_TTABLE;  /* apply_merges walks each as a mapping */
    if (mapping) {  /* a sequence is not one (the list test above: a first element) */
      mapping = lua_rawgeti(L, -1, 1) == LUA_TNIL;
      lua_pop(L, 1);
    }
    if (!mapping) {
      lua_pop(L, 1);
      fail(s, line, col, "a merge key (<<) list may hold only mappings%s", NULL);
      return 0;
    }
    lua_rawseti(L, merges, luaL_len(L, merges) + 1);
  }
  lua_pop(L, 1);
  return 1;
}


static int parse_mapping (lua_State *L, yaml_state *s, int depth) {
  int name = lua_gettop(L) + 1;
  open_anchor(L, s, s->event.data.mapping_start.anchor);
  long start = s->expanded;
  lua_newtable(L);
  int map = lua_gettop(L);
  lua_newtable(L);
  int merges = lua_gettop(L);
  for (;;) {
    if (!next_event(s))
      return 0;
    if (s->event.type == YAML_MAPPING_END_EVENT)
      break;
    int line = (int)s->event.start_mark.line, col = (int)s->event.start_mark.column;
    int is_merge = s->event.type == YAML_SCALAR_EVENT && s->event.data.scalar.plain_implicit &&
                   strcmp((const char *)s->event.data.scalar.value, "<<") == 0;
    if (!parse_node(L, s, depth + 1))
      return 0;
    int kt = lua_type(L, -1);
    int nan = kt == LUA_TNUMBER && lua_tonumber(L, -1) != lua_tonumber(L, -1);
    if (kt == LUA_TTABLE || kt == LUA_TLIGHTUSERDATA || nan) {
      fail(s, line, col, "unsupported mapping key (%s)",
           kt == LUA_TTABLE ? "a collection" : (nan ? "NaN" : "null"));
      return 0;
    }
    if (!next_event(s) || !parse_node(L, s, depth + 1))
      return 0;
    if (is_merge) {
      lua_remove(L, -2);
      if (!add_merge(L, s, merges))
        return 0;
    } else {
      lua_rawset(L, map);
    }
  }
  apply_merges(L, map, merges);
  lua_settop(L, map);
  close_anchor(L, s, name, start);
  return 1;
}


/* Pushes the value an alias names; counts the nodes it stands for. */
static int push_alias (lua_State *L, yaml_state *s) {
  const char *anchor = (const char *)s->event.data.alias.anchor;
  int line = (int)s->event.start_mark.line, col = (int)s->event.start_mark.column;
  int type = lua_getfield(L, s->anchors, anchor);
  if (type == LUA_TNIL) {
    fail(s, line, col, "unknown alias *%s", anchor);
    return 0;
  }
  if (type == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == &open_anchor_mark) {
    fail(s, line, col, "alias *%s is inside the node it names (a cycle)", anchor);
    return 0;
  }
  lua_getfield(L, s->sizes, anchor);
  s->expanded += (long)lua_tointeger(L, -1) - 1;  /* parse_node counted the alias itself */
  lua_pop(L, 1);
  if (s->expanded - s->nodes > MAX_ALIASED_NODES) {
    s->code = "yaml.alias_limit";
    fail(s, line, col, "aliases stand for more than 1000000 nodes (at *%s)", anchor);
    return 0;
  }
  return 1;
}


/* Pushes the node that starts with the current event; 0 and s->error on failure. */
static int parse_node (lua_State *L, yaml_state *s, int depth) {
  yaml_event_t *e = &s->event;
  if (depth > MAX_DEPTH) {
    fail(s, (int)e->start_mark.line, (int)e->start_mark.column, "nested too deeply%s", NULL);
    return 0;
  }
  luaL_checkstack(L, 8, "yaml nesting");
  s->nodes++;
  s->expanded++;
  switch (e->type) {
    case YAML_SCALAR_EVENT:
      if (!push_scalar(L, s))
        return 0;
      if (e->data.scalar.anchor != NULL) {
        int name = lua_gettop(L);
        lua_pushstring(L, (const char *)e->data.scalar.anchor);
        lua_insert(L, name);
        close_anchor(L, s, name, s->expanded);
      }
      return 1;
    case YAML_SEQUENCE_START_EVENT:
      return parse_sequence(L, s, depth);
    case YAML_MAPPING_START_EVENT:
      return parse_mapping(L, s, depth);
    case YAML_ALIAS_EVENT:
      return push_alias(L, s);
    default:
      fail(s, (int)e->start_mark.line, (int)e->start_mark.column, "unexpected YAML event%s", NULL);
      return 0;
  }
}


/* Decodes every document into the table at docs; 0 and s->error on failure. */
static int parse_stream (lua_State *L, yaml_state *s, int docs) {
  lua_Integer n = 0;
  for (;;) {
    if (!next_event(s))
      return 0;
    if (s->event.type == YAML_STREAM_END_EVENT)
      return 1;
    if (s->event.type != YAML_DOCUMENT_START_EVENT)
      continue;  /* STREAM_START */
    lua_newtable(L);  /* anchors are per document */
    s->anchors = lua_gettop(L);
    lua_newtable(L);
    s->sizes = lua_gettop(L);
    if (!next_event(s) || !parse_node(L, s, 0) || !next_event(s))
      return 0;
    lua_rawseti(L, docs, ++n);
    lua_pop(L, 2);
  }
}


/* decode(text) -> {doc, ...} | nil, err */
static int l_decode (lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  yaml_state *s = new_state(L);
  if (!yaml_parser_initialize(&s->parser))
    return luaL_error(L, "not enough memory");
  s->has_parser = 1;
  yaml_parser_set_input_string(&s->parser, (const unsigned char *)text, len);
  lua_newtable(L);
  int docs = lua_gettop(L);
  int ok = parse_stream(L, s, docs);
  lua_settop(L, docs);
  if (ok)
    return 1;
  int nret = ckfb_push_error(L, s->code ? s->code : "yaml.parse", "line %d, column %d: %s", s->line, s->column, s->error);
  lua_pushinteger(L, s->line);
  lua_setfield(L, -2, "line");
  lua_pushinteger(L, s->column);
  lua_setfield(L, -2, "column");
  return nret;
}


/* ---------------------------------------------------------------- encode */

static int on_output (void *ud, unsigned char *data, size_t size) {
  return buf_append(&((yaml_state *)ud)->out, (const char *)data, size);
}


static void emit (lua_State *L, yaml_state *s) {
  if (!yaml_emitter_emit(&s->emitter, &s->event))
    luaL_error(L, "yaml.encode: %s", s->emitter.problem ? s->emitter.problem : "emitter error");
}


static void emit_scalar (lua_State *L, yaml_state *s, const char *v, size_t len,
                         yaml_scalar_style_t style) {
  yaml_scalar_event_initialize(&s->event, NULL, NULL, (yaml_char_t *)v, (int)len,
                               1, 1, style);
  emit(L, s);
}


/* A string that would read back as another type, or as nothing, is quoted. */
static void emit_string (lua_State *L, yaml_state *s, int idx) {
  size_t len;
  const char *v = lua_tolstring(L, idx, &len);
  int top = lua_gettop(L);
  int ambiguous = strlen(v) != len || push_typed(L, v, len);
  lua_settop(L, top);
  yaml_scalar_style_t style = ambiguous ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                            : memchr(v, '\n', len) ? YAML_LITERAL_SCALAR_STYLE
                            : YAML_ANY_SCALAR_STYLE;
  emit_scalar(L, s, v, len, style);
}


static void emit_number (lua_State *L, yaml_state *s, int idx) {
  char text[64];
  if (lua_isinteger(L, idx)) {
    snprintf(text, sizeof text, LUA_INTEGER_FMT, lua_tointeger(L, idx));
  } else {
    double d = lua_tonumber(L, idx);
    if (isnan(d))
      strcpy(text, ".nan");
    else if (isinf(d))
      strcpy(text, d > 0 ? ".inf" : "-.inf");
    else {
      for (int prec = 15; prec <= 17; prec++) {  /* shortest text that reads back exactly */
        snprintf(text, sizeof text, "%.*g", prec, d);
        if (strtod(text, NULL) == d)
          break;
      }
      if (strspn(text, "-0123456789") == strlen(text))
        strcat(text, ".0");  /* stays a float when read back */
    }
  }
  emit_scalar(L, s, text, strlen(text), YAML_PLAIN_SCALAR_STYLE);
}


static int is_sequence (lua_State *L, int idx) {
  if (luaL_getmetafield(L, idx, ARRAY_MARK) != LUA_TNIL) {
    lua_pop(L, 1);
    return 1;
  }
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  if (n == 0)
    return 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
      lua_pop(L, 1);
      return 0;
    }
    count++;
  }
  return count == n;
}


static void emit_value (lua_State *L, yaml_state *s, int idx, int depth);


static void emit_sequence (lua_State *L, yaml_state *s, int idx, int depth) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  yaml_sequence_start_event_initialize(&s->event, NULL, NULL, 1,
                                       n ? YAML_BLOCK_SEQUENCE_STYLE : YAML_FLOW_SEQUENCE_STYLE);
  emit(L, s);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    emit_value(L, s, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
  }
  yaml_sequence_end_event_initialize(&s->event);
  emit(L, s);
}


static int compare_keys (const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}


/* Keys are written sorted, as text, so output is stable for people and diffs. */
static void emit_mapping (lua_State *L, yaml_state *s, int idx, int depth) {
  lua_newtable(L);  /* key text -> original key */
  int keys = lua_gettop(L);
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {  /* stack: key, value */
    lua_pop(L, 1);
    int kt = lua_type(L, -1);
    if (kt != LUA_TSTRING && kt != LUA_TNUMBER && kt != LUA_TBOOLEAN)
      luaL_error(L, "yaml.encode: cannot encode a %s key", lua_typename(L, kt));
    luaL_tolstring(L, -1, NULL);  /* stack: key, text (the key itself stays as it is for lua_next) */
    lua_pushvalue(L, -1);
    if (lua_rawget(L, keys) != LUA_TNIL)  /* 1 and "1", or two floats printed alike */
      luaL_error(L, "yaml.encode: two keys of a mapping print as '%s'", lua_tostring(L, -2));
    lua_pop(L, 1);
    lua_pushvalue(L, -2);
    lua_rawset(L, keys);          /* keys[text] = key */
    n++;
  }
  const char **sorted = lua_newuserdatauv(L, (n ? n : 1) * sizeof *sorted, 0);
  size_t i = 0;
  lua_pushnil(L);
  while (lua_next(L, keys)) {
    lua_pop(L, 1);
    sorted[i++] = lua_tostring(L, -1);
  }
  qsort(sorted, n, sizeof *sorted, compare_keys);
  yaml_mapping_start_event_initialize(&s->event, NULL, NULL, 1,
                                      n ? YAML_BLOCK_MAPPING_STYLE : YAML_FLOW_MAPPING_STYLE);
  emit(L, s);
  for (i = 0; i < n; i++) {
    lua_pushstring(L, sorted[i]);
    emit_string(L, s, lua_gettop(L));
    lua_rawget(L, keys);
    lua_rawget(L, idx);
    emit_value(L, s, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
  }
  yaml_mapping_end_event_initialize(&s->event);
  emit(L, s);
  lua_settop(L, keys - 1);
}


static void emit_value (lua_State *L, yaml_state *s, int idx, int depth) {
  if (depth > MAX_DEPTH)
    luaL_error(L, "yaml.encode: nested too deeply (a cycle?)");
  luaL_checkstack(L, 10, "yaml nesting");
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: emit_string(L, s, idx); break;
    case LUA_TNUMBER: emit_number(L, s, idx); break;
    case LUA_TBOOLEAN:
      emit_scalar(L, s, lua_toboolean(L, idx) ? "true" : "false", lua_toboolean(L, idx) ? 4 : 5,
                  YAML_PLAIN_SCALAR_STYLE);
      break;
    case LUA_TNIL: emit_scalar(L, s, "null", 4, YAML_PLAIN_SCALAR_STYLE); break;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) {
        emit_scalar(L, s, "null", 4, YAML_PLAIN_SCALAR_STYLE);
        break;
      }
      /* fall through */
    case LUA_TTABLE:
      if (lua_istable(L, idx)) {
        if (is_sequence(L, idx))
          emit_sequence(L, s, idx, depth);
        else
          emit_mapping(L, s, idx, depth);
        break;
      }
      /* fall through */
    default:
      luaL_error(L, "yaml.encode: cannot encode a %s", luaL_typename(L, idx));
  }
}


/* encode(value) -> text */
static int l_encode (lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  yaml_state *s = new_state(L);
  if (!yaml_emitter_initialize(&s->emitter))
    return luaL_error(L, "not enough memory");
  s->has_emitter = 1;
  yaml_emitter_set_output(&s->emitter, on_output, s);
  yaml_emitter_set_unicode(&s->emitter, 1);
  yaml_emitter_set_width(&s->emitter, -1);
  yaml_stream_start_event_initialize(&s->event, YAML_UTF8_ENCODING);
  emit(L, s);
  yaml_document_start_event_initialize(&s->event, NULL, NULL, NULL, 1);
  emit(L, s);
  emit_value(L, s, 1, 0);
  yaml_document_end_event_initialize(&s->event, 1);
  emit(L, s);
  yaml_stream_end_event_initialize(&s->event);
  emit(L, s);
  lua_pushlstring(L, s->out.data ? s->out.data : "", s->out.len);
  return 1;
}


static const luaL_Reg yaml_funcs[] = {
  {"decode", l_decode},
  {"encode", l_encode},
  {NULL, NULL}
};


int luaopen_ckfb_core_yaml (lua_State *L) {
  luaL_newlib(L, yaml_funcs);
  return 1;
}
