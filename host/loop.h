#ifndef CKFB_LOOP_H
#define CKFB_LOOP_H

#include <curl/curl.h>
#include <lua.h>

/*
** One single-threaded event loop for the whole process (house-style §10):
** curl_multi_poll waits on curl's sockets plus the descriptors of pending
** operations (child pipes, pidfds), and the nearest deadline bounds the wait.
**
** An operation ("op") is a userdata whose struct starts with loop_op. While
** pending it is linked here and referenced from the registry, so Lua cannot
** collect it; loop.step() hands finished ops back to the Lua scheduler.
*/

#define LOOP_OP_MAX_FDS 4

typedef struct loop_op loop_op;

typedef struct op_class {
  const char *kind;
  /* Fills at most LOOP_OP_MAX_FDS descriptors to wait on; returns how many. */
  int (*add_fds) (loop_op *op, struct curl_waitfd *fds);
  /* After each poll, with the same descriptors and their revents. */
  void (*on_fds) (loop_op *op, const struct curl_waitfd *fds, int n);
  /* When op->deadline has passed. */
  void (*on_deadline) (loop_op *op, double now);
  /* When curl finished the op's easy handle. */
  void (*on_curl_done) (loop_op *op, CURLcode rc);
  /* Pushes the op's results; returns how many. */
  int (*push_result) (loop_op *op, lua_State *L);
  /* Cancels work still running and frees resources; must be idempotent. */
  void (*release) (loop_op *op);
  /* Optional, for ops that stream: pushes what arrived so far; returns how many values. */
  int (*take) (loop_op *op, lua_State *L);
} op_class;

struct loop_op {
  const op_class *cls;
  int pending;        /* started and not finished */
  int finished;
  int cancelled;
  double deadline;    /* monotonic seconds; 0 = none */
  int ref;            /* registry reference while pending */
  int progressed;     /* a streaming op has data its waiter has not taken */
  int listed;         /* linked in the loop's list of progressed ops */
  loop_op *prev, *next, *next_progressed;
};

double loop_now (void);
loop_op *loop_op_new (lua_State *L, size_t size, const op_class *cls);
void loop_op_start (lua_State *L, int idx);
void loop_op_finish (loop_op *op);
void loop_op_progress (loop_op *op);
CURLM *loop_multi (lua_State *L);
CURLM *loop_multi_if_any (void);

#endif
