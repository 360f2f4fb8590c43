#ifndef CKFB_EMBEDDED_H
#define CKFB_EMBEDDED_H

#include <stddef.h>

/* One Lua source file compiled into the binary (see host/tools/embed.c). */
struct ckfb_embedded {
  const char *path;     /* as in the source tree: "stdlib/ckfb/log.lua" */
  const char *source;
  size_t size;
};

/* Terminated by an entry whose path is NULL. */
extern const struct ckfb_embedded ckfb_embedded[];

#endif
