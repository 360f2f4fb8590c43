/*
** loop.c: the event loop and the operations it drives (module
** "ckfb.core.loop"): step, timer, now, and the methods every op shares.
** Scheduling of coroutines lives in stdlib/ckfb/task.lua.
*/
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "ckfb.h"
#include "lcurl.h"
#include "loop.h"

#define OP_META "ckfb.op"
#define MULTI_META "ckfb.loop.multi"

static struct {
  loop_op pending;        /* sentinel of the circular list of pending ops */
  loop_op *finished;      /* finished since the last step, linked by next */
  loop_op *progressed;    /* streaming ops with new data, linked by next_progressed */
  CURLM *multi;           /* created with the first HTTP request */
  int npending;
} loop = {
  .pending = {.prev = &loop.pending, .next = &loop.pending},
};


double loop_now (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}


static void unlink_pending (loop_op *op) {
  if (!op->pending)
    return;
  op->prev->next = op->next;
  op->next->prev = op->prev;
  op->prev = op->next = NULL;
  op->pending = 0;
  loop.npending--;
}


static void ensure_op_meta (lua_State *L);


/* Pushes a new op userdata with the shared metatable.  [-0, +1, m] */
loop_op *loop_op_new (lua_State *L, size_t size, const op_class *cls) {
  ensure_op_meta(L);
  loop_op *op = lua_newuserdatauv(L, size, 0);
  memset(op, 0, size);
  op->cls = cls;
  op->ref = LUA_NOREF;
  luaL_setmetatable(L, OP_META);
  return op;
}


/* Links the op at idx into the loop and keeps it alive until it finishes. */
void loop_op_start (lua_State *L, int idx) {
  loop_op *op = luaL_checkudata(L, idx, OP_META);
  lua_pushvalue(L, idx);
  op->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  op->pending = 1;
  op->next = &loop.pending;
  op->prev = loop.pending.prev;
  loop.pending.prev->next = op;
  loop.pending.prev = op;
  loop.npending++;
}


/* Called by a streaming binding when data arrived; step() reports the op. */
void loop_op_progress (loop_op *op) {
  op->progressed = 1;
  if (op->listed || !op->pending)
    return;
  op->listed = 1;
  op->next_progressed = loop.progressed;
  loop.progressed = op;
}


static void unlist_progressed (loop_op *op) {
  for (loop_op **p = &loop.progressed; *p != NULL; p = &(*p)->next_progressed)
    if (*p == op) {
      *p = op->next_progressed;
      break;
    }
  op->listed = 0;
}


/* Called by a binding when its op has its result; step() reports it. */
void loop_op_finish (loop_op *op) {
  if (op->finished)
    return;
  unlink_pending(op);
  op->finished = 1;
  op->next = loop.finished;
  loop.finished = op;
}


static int multi_gc (lua_State *L) {
  (void)L;
  if (loop.multi != NULL) {
    lcurl.multi_cleanup(loop.multi);
    loop.multi = NULL;
  }
  return 0;
}


/*
** The multi handle is made on first use so that scripts which never speak
** HTTP do not pay for loading libcurl (lcurl.h). A userdata owns it: state close
** frees it after every op made later (finalizers run in reverse order).
*/
CURLM *loop_multi (lua_State *L) {
  if (loop.multi != NULL)
    return loop.multi;
  const char *why = lcurl_load();
  if (why != NULL)
    luaL_error(L, "cannot load libcurl: %s", why);
  if (lcurl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    luaL_error(L, "cannot initialise libcurl");
  loop.multi = lcurl.multi_init();
  if (loop.multi == NULL)
    luaL_error(L, "cannot create a curl multi handle");
  lua_newuserdatauv(L, 1, 0);
  luaL_newmetatable(L, MULTI_META);
  lua_pushcfunction(L, multi_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, MULTI_META);
  return loop.multi;
}


/* The multi handle if one exists: for cleanup, which must not create it. */
CURLM *loop_multi_if_any (void) {
  return loop.multi;
}


static void drain_curl (void) {
  int running, left;
  lcurl.multi_perform(loop.multi, &running);
  CURLMsg *msg;
  while ((msg = lcurl.multi_info_read(loop.multi, &left)) != NULL) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    loop_op *op = NULL;
    lcurl.easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&op);
    CURLcode rc = msg->data.result;
    if (op != NULL && op->cls->on_curl_done != NULL)
      op->cls->on_curl_done(op, rc);
  }
}


/* Milliseconds until the nearest deadline, capped by max_wait (< 0: none). */
static int wait_ms (double max_wait) {
  if (loop.finished != NULL || loop.progressed != NULL)
    return 0;
  double now = loop_now(), wait = max_wait;  /* < 0: no limit so far */
  for (loop_op *op = loop.pending.next; op != &loop.pending; op = op->next) {
    if (op->deadline <= 0)
      continue;
    double left = op->deadline > now ? op->deadline - now : 0;  /* overdue: no wait */
    if (wait < 0 || left < wait)
      wait = left;
  }
  if (wait < 0)
    return -1;
  double ms = wait * 1000.0 + 0.999;  /* round up: never wake before a deadline */
  return ms > INT_MAX ? INT_MAX : (int)ms;
}


typedef struct {
  struct curl_waitfd *fds;
  loop_op **owner;
  int *count;
  int n;
} fdset;


static int collect_fds (fdset *set) {
  size_t room = (size_t)loop.npending * LOOP_OP_MAX_FDS + 1;
  set->fds = calloc(room, sizeof *set->fds);
  set->owner = calloc(room, sizeof *set->owner);
  set->count = calloc(room, sizeof *set->count);
  set->n = 0;
  if (set->fds == NULL || set->owner == NULL || set->count == NULL)
    return 0;
  for (loop_op *op = loop.pending.next; op != &loop.pending; op = op->next) {
    if (op->cls->add_fds == NULL)
      continue;
    int k = op->cls->add_fds(op, set->fds + set->n);
    set->owner[set->n] = op;
    set->count[set->n] = k;
    set->n += k;
  }
  return 1;
}


static void free_fds (fdset *set) {
  free(set->fds);
  free(set->owner);
  free(set->count);
}


static void poll_fds (fdset *set, int timeout) {
  if (loop.multi != NULL) {
    /* curl_multi_poll rejects a negative timeout: wait a minute, then loop */
    int ms = timeout < 0 || timeout > 60000 ? 60000 : timeout;
    if (lcurl.multi_poll(loop.multi, set->fds, (unsigned)set->n, ms, NULL) == CURLM_OK)
      return;
  }
  struct pollfd *p = calloc((size_t)set->n + 1, sizeof *p);
  if (p == NULL)
    return;
  for (int i = 0; i < set->n; i++) {
    p[i].fd = set->fds[i].fd;
    p[i].events = (short)set->fds[i].events;
  }
  if (poll(p, (nfds_t)set->n, timeout) > 0)
    for (int i = 0; i < set->n; i++)
      set->fds[i].revents = (unsigned short)p[i].revents;
  free(p);
}


/* Calls on_fds only for ops that have an event: with many children
** waiting, one exit must not cost a read on every pipe. */
static void dispatch_fds (fdset *set) {
  for (int i = 0; i < set->n; i++) {
    loop_op *op = set->owner[i];
    int k = set->count[i], events = 0;
    for (int j = 0; j < k; j++)
      events |= set->fds[i + j].revents;
    if (op != NULL && k > 0 && events && op->pending)
      op->cls->on_fds(op, set->fds + i, k);
    if (k > 0)
      i += k - 1;
  }
}


static void expire_deadlines (void) {
  double now = loop_now();
  loop_op *op = loop.pending.next;
  while (op != &loop.pending) {
    loop_op *next = op->next;  /* op may finish and unlink itself */
    if (op->deadline > 0 && op->deadline <= now && op->cls->on_deadline != NULL)
      op->cls->on_deadline(op, now);
    op = next;
  }
}


/*
** Pushes a table of the ops that finished or streamed data since the last
** step; finished ones lose their registry reference (the table holds them).
*/
static void push_finished (lua_State *L) {
  lua_newtable(L);
  int i = 0;
  while (loop.progressed != NULL) {
    loop_op *op = loop.progressed;
    loop.progressed = op->next_progressed;
    op->listed = 0;
    if (op->pending) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, op->ref);
      lua_rawseti(L, -2, ++i);
    }
  }
  while (loop.finished != NULL) {
    loop_op *op = loop.finished;
    loop.finished = op->next;
    op->next = NULL;
    lua_rawgeti(L, LUA_REGISTRYINDEX, op->ref);
    lua_rawseti(L, -2, ++i);
    luaL_unref(L, LUA_REGISTRYINDEX, op->ref);
    op->ref = LUA_NOREF;
  }
}


/*
** loop.step([max_wait]) -> {op, ...}: waits once for any pending op to make
** progress (at most max_wait seconds; nil waits for the nearest deadline or
** event) and returns the ops that finished.
*/
static int l_step (lua_State *L) {
  double max_wait = luaL_optnumber(L, 1, -1);
  if (loop.multi != NULL)
    drain_curl();
  fdset set;
  if (!collect_fds(&set)) {
    free_fds(&set);
    return luaL_error(L, "not enough memory");
  }
  int nothing_to_wait_for = set.n == 0 && loop.npending == 0;
  poll_fds(&set, nothing_to_wait_for ? 0 : wait_ms(max_wait));
  dispatch_fds(&set);
  free_fds(&set);
  if (loop.multi != NULL)
    drain_curl();
  expire_deadlines();
  push_finished(L);
  ckfb_check_interrupt(L);
  return 1;
}


static int l_now (lua_State *L) {
  lua_pushnumber(L, loop_now());
  return 1;
}


static int l_pending (lua_State *L) {
  lua_pushinteger(L, loop.npending);
  return 1;
}


/* Timers: an op with a deadline and nothing else. */
static void timer_expired (loop_op *op, double now) {
  (void)now;
  loop_op_finish(op);
}

static int timer_result (loop_op *op, lua_State *L) {
  lua_pushboolean(L, !op->cancelled);
  return 1;
}

static void timer_release (loop_op *op) {
  (void)op;
}

static const op_class timer_class = {
  .kind = "timer",
  .on_deadline = timer_expired,
  .push_result = timer_result,
  .release = timer_release,
};


/* loop.timer(seconds) -> op */
static int l_timer (lua_State *L) {
  double seconds = luaL_checknumber(L, 1);
  luaL_argcheck(L, seconds >= 0, 1, "must not be negative");
  loop_op *op = loop_op_new(L, sizeof(loop_op), &timer_class);
  op->deadline = loop_now() + seconds;
  loop_op_start(L, -1);
  return 1;
}


static loop_op *check_op (lua_State *L) {
  return luaL_checkudata(L, 1, OP_META);
}


static int op_done (lua_State *L) {
  lua_pushboolean(L, check_op(L)->finished);
  return 1;
}


/* op:result() -> the op's results; an error if it has not finished. */
static int op_result (lua_State *L) {
  loop_op *op = check_op(L);
  if (!op->finished)
    return luaL_error(L, "%s operation has not finished", op->cls->kind);
  return op->cls->push_result(op, L);
}


/* op:cancel(): stops the work (kills a child, aborts a transfer). */
static int op_cancel (lua_State *L) {
  loop_op *op = check_op(L);
  if (op->finished)
    return 0;
  op->cancelled = 1;
  op->cls->release(op);
  unlink_pending(op);
  unlist_progressed(op);
  op->finished = 1;
  luaL_unref(L, LUA_REGISTRYINDEX, op->ref);
  op->ref = LUA_NOREF;
  return 0;
}


static int op_gc (lua_State *L) {
  loop_op *op = check_op(L);
  op->cls->release(op);
  unlink_pending(op);
  unlist_progressed(op);
  return 0;
}


/* op:ready() -> true when the op finished or has streamed data to take */
static int op_ready (lua_State *L) {
  loop_op *op = check_op(L);
  lua_pushboolean(L, op->finished || op->progressed);
  return 1;
}


/* op:take() -> what a streaming op received since the last take */
static int op_take (lua_State *L) {
  loop_op *op = check_op(L);
  if (op->cls->take == NULL)
    return luaL_error(L, "a %s operation does not stream", op->cls->kind);
  op->progressed = 0;
  return op->cls->take(op, L);
}


static int op_kind (lua_State *L) {
  lua_pushstring(L, check_op(L)->cls->kind);
  return 1;
}


static int op_tostring (lua_State *L) {
  loop_op *op = check_op(L);
  lua_pushfstring(L, "%s op (%s)", op->cls->kind,
                  op->finished ? (op->cancelled ? "cancelled" : "finished") : "pending");
  return 1;
}


static const luaL_Reg op_methods[] = {
  {"done", op_done},
  {"result", op_result},
  {"cancel", op_cancel},
  {"kind", op_kind},
  {"ready", op_ready},
  {"take", op_take},
  {NULL, NULL}
};

static const luaL_Reg op_meta[] = {
  {"__gc", op_gc},
  {"__close", op_cancel},
  {"__tostring", op_tostring},
  {"__index", NULL},
  {NULL, NULL}
};

static const luaL_Reg loop_funcs[] = {
  {"step", l_step},
  {"timer", l_timer},
  {"now", l_now},
  {"pending", l_pending},
  {NULL, NULL}
};


static void ensure_op_meta (lua_State *L) {
  if (luaL_newmetatable(L, OP_META)) {
    luaL_setfuncs(L, op_meta, 0);
    luaL_newlib(L, op_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}


int luaopen_ckfb_core_loop (lua_State *L) {
  ensure_op_meta(L);
  luaL_newlib(L, loop_funcs);
  return 1;
}
