/*
** repl.c: line editing for the REPL (module "ckfb.core.repl"), on libedit
** (BSD-licensed, readline-compatible; GNU readline would make the binary
** GPL). libedit is loaded with dlopen when the prompt opens: scripts never
** pay for it, and a machine without it still gets a plain prompt.
** Completion calls back into Lua (protected) for the candidates.
*/
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>

#include "ckfb.h"

typedef char **completion_fn (const char *, int, int);
typedef char *generator_fn (const char *, int);

static struct {
  void *lib;
  char *(*readline) (const char *);
  int (*add_history) (const char *);
  int (*read_history) (const char *);
  int (*write_history) (const char *);
  void (*stifle_history) (int);
  char **(*completion_matches) (const char *, generator_fn *);
  completion_fn **attempted_completion;
  const char **word_break;
  int *append_character;
  int *completion_over;
} edit;

static lua_State *completer_state;
static int completer_ref = LUA_NOREF;
static char **candidates;  /* for the generator, owned here until handed out */
static size_t ncandidates, next_candidate;


static int load_libedit (void) {
  if (edit.lib != NULL)
    return 1;
  void *lib = dlopen("libedit.so.2", RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL)
    return 0;
  edit.readline = (char *(*) (const char *))dlsym(lib, "readline");
  edit.add_history = (int (*) (const char *))dlsym(lib, "add_history");
  edit.read_history = (int (*) (const char *))dlsym(lib, "read_history");
  edit.write_history = (int (*) (const char *))dlsym(lib, "write_history");
  edit.stifle_history = (void (*) (int))dlsym(lib, "stifle_history");
  edit.completion_matches = (char **(*) (const char *, generator_fn *))dlsym(lib, "rl_completion_matches");
  edit.attempted_completion = (completion_fn **)dlsym(lib, "rl_attempted_completion_function");
  edit.word_break = (const char **)dlsym(lib, "rl_basic_word_break_characters");
  edit.append_character = (int *)dlsym(lib, "rl_completion_append_character");
  edit.completion_over = (int *)dlsym(lib, "rl_attempted_completion_over");
  if (!edit.readline || !edit.add_history || !edit.read_history || !edit.write_history ||
      !edit.completion_matches || !edit.attempted_completion || !edit.word_break) {
    dlclose(lib);
    return 0;
  }
  edit.lib = lib;
  return 1;
}


static void free_candidates (void) {
  for (size_t i = next_candidate; i < ncandidates; i++)
    free(candidates[i]);
  free(candidates);
  candidates = NULL;
  ncandidates = next_candidate = 0;
}


/* libedit's generator protocol: one malloc'ed match per call, then NULL. */
static char *next_match (const char *text, int state) {
  (void)text;
  (void)state;
  if (next_candidate < ncandidates)
    return candidates[next_candidate++];
  free_candidates();
  return NULL;
}


/* Asks the Lua completer (text, whole line) for candidates; errors give none. */
static char **complete (const char *text, int start, int end) {
  (void)start;
  (void)end;
  if (edit.completion_over)
    *edit.completion_over = 1;  /* no file-name completion as a fallback */
  lua_State *L = completer_state;
  free_candidates();
  lua_rawgeti(L, LUA_REGISTRYINDEX, completer_ref);
  lua_pushstring(L, text);
  if (ckfb_pcall(L, 1, 1) == LUA_OK && lua_istable(L, -1)) {
    size_t n = (size_t)lua_rawlen(L, -1);
    candidates = calloc(n + 1, sizeof *candidates);
    for (size_t i = 0; candidates != NULL && i < n; i++) {
      lua_rawgeti(L, -1, (lua_Integer)i + 1);
      const char *c = lua_tostring(L, -1);
      if (c != NULL && (candidates[ncandidates] = strdup(c)) != NULL)
        ncandidates++;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  if (ncandidates == 0)
    return NULL;
  return edit.completion_matches(text, next_match);
}


/* repl.open(completer, history_file) -> true when line editing is on */
static int l_open (lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  const char *history = luaL_optstring(L, 2, NULL);
  if (!load_libedit()) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushvalue(L, 1);
  completer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  completer_state = L;
  *edit.attempted_completion = complete;
  *edit.word_break = " \t\n\"'><=;|&({[,+-*/%^~#";  /* not '.' or ':': juju.st<TAB> is one word */
  if (edit.append_character)
    *edit.append_character = '\0';
  if (edit.stifle_history)
    edit.stifle_history(1000);
  if (history != NULL)
    edit.read_history(history);
  lua_pushboolean(L, 1);
  return 1;
}


/* Reads a line without libedit: a plain prompt. */
static char *plain_readline (const char *prompt) {
  char buffer[4096];
  fputs(prompt, stdout);
  fflush(stdout);
  if (fgets(buffer, sizeof buffer, stdin) == NULL)
    return NULL;
  buffer[strcspn(buffer, "\n")] = '\0';
  return strdup(buffer);
}


/* repl.readline(prompt) -> line | false when Ctrl-C dropped the line | nil
** at end of input (Ctrl-D). Ctrl-C at the prompt is not a stop: the
** interrupt is cleared before Lua runs again, as shells and lua.c do. */
static int l_readline (lua_State *L) {
  const char *prompt = luaL_checkstring(L, 1);
  char *line = edit.lib ? edit.readline(prompt) : plain_readline(prompt);
  if (line == NULL && ckfb_interrupted() == SIGINT) {
    ckfb_clear_interrupt();
    fputs("\n", stdout);
    lua_pushboolean(L, 0);
    return 1;
  }
  if (line == NULL)
    return 0;
  lua_pushstring(L, line);
  free(line);
  return 1;
}


/* repl.remember(line, history_file): adds to the history and saves it */
static int l_remember (lua_State *L) {
  const char *line = luaL_checkstring(L, 1);
  const char *history = luaL_optstring(L, 2, NULL);
  if (edit.lib && line[0] != '\0') {
    edit.add_history(line);
    if (history != NULL)
      edit.write_history(history);
  }
  return 0;
}


/* repl.clear_interrupt(): a cancelled command must not cancel the next one */
static int l_clear_interrupt (lua_State *L) {
  (void)L;
  ckfb_clear_interrupt();
  return 0;
}


static const luaL_Reg repl_funcs[] = {
  {"open", l_open},
  {"readline", l_readline},
  {"remember", l_remember},
  {"clear_interrupt", l_clear_interrupt},
  {NULL, NULL}
};


int luaopen_ckfb_core_repl (lua_State *L) {
  luaL_newlib(L, repl_funcs);
  return 1;
}
