#ifndef CKFB_BUF_H
#define CKFB_BUF_H

#include <stdlib.h>
#include <string.h>

/* A growable byte buffer, owned by the op that holds it. */
typedef struct {
  char *data;
  size_t len, cap;
} buf;

/* Returns 0 when memory ran out (the buffer is left as it was). */
static inline int buf_append (buf *b, const char *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
      cap *= 2;
    char *data = realloc(b->data, cap);
    if (data == NULL)
      return 0;
    b->data = data;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 1;
}

static inline void buf_free (buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

#endif
